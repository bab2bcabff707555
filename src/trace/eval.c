/* Evaluating a jaxpr: one bind per equation. Because bind dispatches to
 * the innermost trace, the same loop evaluates, differentiates, batches or
 * re-stages a jaxpr depending on what is active. */
#include "trace/trace.h"

jx_t jx_eval_eqn(const jx_eqn *q, jx_t *env) {
  jx_scratch *s = jx_scratch_here();
  jx_scratch_mark m = jx_scratch_save(s);
  jx_t *in = JX_SCRATCH(s, jx_t, (size_t)q->nin + (size_t)q->nout), err;
  if (!in)
    return jx_error_new("eval: out of memory for a %s with %d inputs and %d outputs", jx_prim_names[q->prim],
                        q->nin, q->nout);
  jx_t *out = in + q->nin;
  for (int k = 0; k < q->nin; k++) in[k] = env[q->in[k]];
  err = jx_bind(q->prim, q->nin, in, &q->params, q->nout, out);
  for (int k = 0; k < q->nout && !err; k++) env[q->out[k]] = out[k];
  jx_scratch_release(s, m);
  return err;
}

jx_t jx_eval_jaxpr(const jx_jaxpr *j, const jx_t *args, jx_t *outs) {
  jx_scratch *s = jx_scratch_here();
  jx_scratch_mark m = jx_scratch_save(s);
  jx_t *env = jx_scratch_zeros(s, (size_t)j->nvars, sizeof(jx_t)), err = NULL;
  if (!env) err = jx_error_new("eval_jaxpr: out of memory");
  for (int i = 0; i < j->nconst && !err; i++) env[j->constvars[i]] = j->consts[i];
  for (int i = 0; i < j->nin && !err; i++) env[j->invars[i]] = args[i];
  for (int e = 0; e < j->neqn && !err; e++) err = jx_eval_eqn(&j->eqns[e], env);
  for (int i = 0; i < j->nout; i++) outs[i] = err ? err : env[j->outvars[i]];
  jx_scratch_release(s, m);
  if (!err) err = jx_own_const_outputs(j, outs);
  return err;
}

static bool is_constvar(const jx_jaxpr *j, int v) {
  for (int i = 0; i < j->nconst; i++)
    if (j->constvars[i] == v) return true;
  return false;
}

/* Outputs that are j's constants belong to j, which its caller may release
 * before it is done with them (a transposed branch returning constant
 * zeros, released with the grad that derived it): each gets a reference
 * of its own in the current pool, like any other result. A table of the
 * constants' vars only when searching them per output would be long (this
 * runs at every step of an interpreted loop). */
jx_t jx_own_const_outputs(const jx_jaxpr *j, jx_t *outs) {
  if (!j->nconst || !j->nout) return NULL;
  bool big = (int64_t)j->nconst * j->nout > 4096;
  bool *is_const = big ? jx_calloc((size_t)j->nvars, sizeof(bool)) : NULL;
  if (big && !is_const) return jx_error_new("eval_jaxpr: out of memory");
  for (int i = 0; big && i < j->nconst; i++) is_const[j->constvars[i]] = true;
  jx_t err = NULL;
  for (int i = 0; i < j->nout && !err; i++) {
    int v = j->outvars[i];
    if (big ? !is_const[v] : !is_constvar(j, v)) continue;
    outs[i] = jx_pool_own(jx_retain(outs[i]));
    if (!jx_ok(outs[i])) err = outs[i];
  }
  jx_free(is_const);
  for (int i = 0; err && i < j->nout; i++) outs[i] = err;
  return err;
}
