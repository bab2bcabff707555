/* Inlining: jit_call callees spliced into the caller (compile/passes.h);
 * also the functions of custom_jvp_call / custom_vjp_call and remat,
 * whose rules matter only to autodiff, which has run before jit compiles
 * (remat's recomputation reads its inputs through optimization_barrier,
 * so CSE does not merge it back into the forward pass). */
#include "compile/builder.h"

enum { MAX_INLINE_DEPTH = 256 };

static const jx_jaxpr *callee(const jx_eqn *q) {
  if (q->prim == JX_P_jit_call) return q->params.call.jaxpr;
  if (q->prim == JX_P_custom_jvp_call || q->prim == JX_P_custom_vjp_call) return q->params.custom.fun;
  if (q->prim == JX_P_remat) return q->params.remat.jaxpr;
  return NULL;
}

static void inline_rec(bld *b, srcmap *s, int depth) {
  const jx_jaxpr *src = s->src;
  ibuf buf = {0};
  for (int e = 0; e < src->neqn && !b->err; e++) {
    const jx_eqn *q = &src->eqns[e];
    int *ins = map_ins(b, s, q, &buf);
    if (!ins) break;
    const jx_jaxpr *sub = callee(q);
    if (!sub && q->prim != JX_P_jit_call) {
      emit_copy(b, s, q, ins);
      continue;
    }
    if (!sub || sub->nin != q->nin || sub->nout != q->nout) {
      b->err =
          jx_error_new("optimize: %s equation %d: callee takes %d inputs and gives %d "
                       "outputs, the call has %d and %d",
                       jx_prim_names[q->prim], e, sub ? sub->nin : -1, sub ? sub->nout : -1, q->nin, q->nout);
      break;
    }
    if (depth >= MAX_INLINE_DEPTH) {
      b->err = jx_error_new("optimize: jit_call nested more than %d deep", MAX_INLINE_DEPTH);
      break;
    }
    srcmap s2;
    if (!sm_init(b, &s2, sub)) break;
    for (int i = 0; i < sub->nin; i++) s2.map[sub->invars[i]] = ins[i];
    inline_rec(b, &s2, depth + 1);
    for (int k = 0; k < q->nout && !b->err; k++) s->map[q->out[k]] = sm_get(b, &s2, sub->outvars[k]);
    sm_free(&s2);
    b->changed = true;
  }
  jx_free(buf.v);
}

static void inline_body(bld *b, srcmap *s) { inline_rec(b, s, 0); }

jx_jaxpr *jx_pass_inline(const jx_jaxpr *in, bool *changed, jx_t *err) {
  return run_pass(in, inline_body, false, changed, err);
}
