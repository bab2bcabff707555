/* The jit pipeline (DESIGN §3): passes -> fusion -> buffer planning ->
 * rendering and building through a backend -> running. */
#ifndef JX_COMPILE_H
#define JX_COMPILE_H

#include "backend/backend.h"
#include "ir/jaxpr.h"
#include "ir/loop.h"

/* Fusion: jaxpr -> loop IR program (buffers planned: temps live from the
 * kernel that defines them to the last that reads them). */
jx_program *jx_fuse(const jx_jaxpr *j, jx_t *err);

/* A compiled jaxpr: the optimized jaxpr, its program and loaded module
 * (module NULL: no working compiler, run by interpretation). */
typedef struct jx_executable jx_executable;
/* Compile (once per jaxpr; cached on it) with the given backend. Never
 * fails for lack of a C compiler: falls back to interpretation. */
jx_executable *jx_compile(jx_jaxpr *j, const jx_backend *be, jx_t *err);
/* Run on concrete arrays (one per jaxpr input); fills outs. */
jx_t jx_executable_run(jx_executable *x, const jx_t *args, jx_t *outs);
void jx_executable_free(jx_executable *x);
/* How many executable runs so far (process-wide) ran generated code and
 * how many interpreted the optimized jaxpr (no module: the render, the
 * build or fusion failed). Internal, for tests: the rule harness fails a
 * jit it expected compiled that was interpreted. */
typedef struct {
  long compiled, interpreted;
} jx_exec_counts;
jx_exec_counts jx_exec_run_counts(void);

/* JX_LOG=profile (compile/profile.c): time per kernel of each program,
 * printed when its executable is freed or at exit. jx_profile_new returns
 * NULL when profiling is off. */
typedef struct jx_profile jx_profile;
jx_profile *jx_profile_new(const jx_program *p);
void jx_profile_add(jx_profile *pr, int kernel, int64_t ns);
void jx_profile_run(jx_profile *pr);
void jx_profile_free(jx_profile *pr);

/* JX_DUMP=dir: write text there (name gets a counter). */
void jx_dump(const char *name, const char *text);

#endif
