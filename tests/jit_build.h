/* What jit builds for a function at given arguments, stage by stage (the
 * traced and optimized jaxprs and the fused program), for tests that look
 * at the program or its rendered C rather than only at results. */
#ifndef JX_TEST_JIT_BUILD_H
#define JX_TEST_JIT_BUILD_H

#include "api/trace_fn.h"
#include "compile/compile.h"
#include "compile/passes.h"

/* The jaxpr of body at args (NULL, and a failed check, when tracing
 * fails); the caller releases it. Needs check.h included first. */
static inline jx_jaxpr *trace(jx_body body, int nargs, const jx_t *args, void *user) {
  jx_fn *f = jx_fn_new(body, nargs, user);
  jx_t err = NULL;
  jx_jaxpr *j = jx_trace_to_jaxpr(f, args, NULL, &err);
  CHECKF(j != NULL, "trace failed: %s", err ? jx_error(err) : "?");
  jx_fn_free(f);
  return j;
}

typedef struct {
  jx_jaxpr *j, *o;
  jx_program *p; /* NULL when a stage failed */
  jx_t err;      /* that stage's error */
} built;

static inline built build(jx_fn *f, const jx_t *args) {
  built b = {0};
  b.j = jx_trace_to_jaxpr(f, args, NULL, &b.err);
  b.o = b.j ? jx_optimize(b.j, &b.err) : NULL;
  b.p = b.o ? jx_fuse(b.o, &b.err) : NULL;
  return b;
}

static inline void built_free(built *b) {
  jx_program_free(b->p);
  if (b->o) jx_jaxpr_release(b->o);
  if (b->j) jx_jaxpr_release(b->j);
}

#endif
