/* Evaluating a jaxpr: one bind per equation. Because bind dispatches to
 * the innermost trace, the same loop evaluates, differentiates, batches or
 * re-stages a jaxpr depending on what is active. */
#include "trace/trace.h"

jx_t jx_eval_jaxpr(const jx_jaxpr *j, const jx_t *args, jx_t *outs) {
  jx_t *env = jx_calloc((size_t)(j->nvars ? j->nvars : 1), sizeof(jx_t));
  if (!env) return jx_error_new("eval_jaxpr: out of memory");
  for (int i = 0; i < j->nconst; i++) env[j->constvars[i]] = j->consts[i];
  for (int i = 0; i < j->nin; i++) env[j->invars[i]] = args[i];
  jx_t err = NULL;
  jx_t small_in[16], small_out[16];
  for (int e = 0; e < j->neqn && !err; e++) {
    const jx_eqn *q = &j->eqns[e];
    jx_t *in = q->nin <= 16 ? small_in : jx_malloc(sizeof(jx_t) * (size_t)q->nin);
    jx_t *out = q->nout <= 16 ? small_out : jx_malloc(sizeof(jx_t) * (size_t)q->nout);
    if (!in || !out) {
      err = jx_error_new("eval_jaxpr: out of memory");
    } else {
      for (int k = 0; k < q->nin; k++) in[k] = env[q->in[k]];
      err = jx_bind(q->prim, q->nin, in, &q->params, q->nout, out);
      for (int k = 0; k < q->nout && !err; k++) env[q->out[k]] = out[k];
    }
    if (in && in != small_in) jx_free(in);
    if (out && out != small_out) jx_free(out);
  }
  for (int i = 0; i < j->nout; i++) outs[i] = err ? err : env[j->outvars[i]];
  jx_free(env);
  return err;
}
