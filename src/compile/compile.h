/* The jit pipeline (DESIGN §3), compile/compile.c: optimize (the passes,
 * compile/pass_*.c) -> typecheck -> fuse (fusion and buffer planning) ->
 * verify the program (compile/verify.c) -> render and build through a
 * backend; compile/exec.c runs the result. The checks between the steps
 * run in debug and sanitizer builds (JX_DEBUG_CHECKS). */
#ifndef JX_COMPILE_H
#define JX_COMPILE_H

#include "backend/backend.h"
#include "ir/jaxpr.h"
#include "ir/loop.h"

/* Fusion: jaxpr -> loop IR program (buffers planned: temps live from the
 * kernel that defines them to the last that reads them). */
jx_program *jx_fuse(const jx_jaxpr *j, jx_t *err);

/* The loop-IR verifier: NULL when p (and every loop body in it) is well
 * formed (buffer ids in range, every buffer written before it is read and
 * still live, kernels' shapes and dtypes consistent with their buffers,
 * expressions reading earlier expressions, CALL/LOOP counts matching their
 * primitive and bodies, loads inside their buffers); else an error value
 * naming the program, the kernel and what is wrong. */
jx_t jx_program_verify(const jx_program *p);
/* Whether jx_compile runs the checks between its steps in this build. */
bool jx_compile_checks_enabled(void);

/* What the compiler needs from the layers above it, handed in by its
 * caller (control/derive.c), so that compile/ never includes trace/ or
 * prims/: the interpreter (a jaxpr run without a working C compiler).
 * (A CALL with a fused epilogue runs through its primitive's
 * lower.impl_epilogue, core/core.h.) */
typedef struct jx_compile_host {
  jx_t (*eval_jaxpr)(const jx_jaxpr *j, const jx_t *args, jx_t *outs);
} jx_compile_host;

/* How many CALL kernels have run in place so far (exec.c, lower.inplace;
 * tests). */
int64_t jx_exec_inplace_calls(void);

/* A compiled jaxpr: the optimized jaxpr, its program and loaded module
 * (module NULL: no working compiler, run by interpretation). */
typedef struct jx_executable jx_executable;
/* Compile (once per jaxpr; cached on it) with the given backend. Never
 * fails for lack of a C compiler: falls back to interpretation. host must
 * outlive the executable. */
jx_executable *jx_compile(jx_jaxpr *j, const jx_backend *be, const jx_compile_host *host, jx_t *err);
/* Run on concrete arrays (one per jaxpr input); fills outs. */
jx_t jx_executable_run(jx_executable *x, const jx_t *args, jx_t *outs);
/* The same, where donate[i] says the caller gives up args[i] (jit's
 * donate_argnums): an output may be written into its buffer (see
 * plan_donation in exec.c). *reused (optional) counts the outputs that
 * were. The caller deletes the donated arrays afterwards. */
jx_t jx_executable_run_donated(jx_executable *x, const jx_t *args, const bool *donate, jx_t *outs,
                               int *reused);
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
