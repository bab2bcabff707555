/* Constant folding (compile/passes.h). */
#include "compile/builder.h"

static bool foldable(bld *b, const jx_jaxpr *src, const jx_eqn *q, const int *ins) {
  const jx_rules *r = jx_prim_rules[q->prim];
  /* a collective's value depends on the device that runs it */
  if (q->prim == JX_P_jit_call || !r->impl || r->nout < 0 || r->params_kind == JX_PK_COLL) return false;
  if (jx_eqn_has_effects(q)) return false; /* it acts when the program runs, not when it compiles */
  for (int k = 0; k < q->nin; k++)
    if (!jx_is_array(b->cval[ins[k]])) return false; /* a variable or a tracer constant */
  int64_t n = 0;
  for (int k = 0; k < q->nout; k++) {
    n += jx_aval_size(&src->avals[q->out[k]]);
    if (n > JX_FOLD_MAX_ELEMS) return false;
  }
  return true;
}

static void fold_body(bld *b, srcmap *s) {
  const jx_jaxpr *src = s->src;
  ibuf buf = {0};
  jx_t *vals = NULL, *outs = NULL;
  int capv = 0, capo = 0;
  for (int e = 0; e < src->neqn && !b->err; e++) {
    const jx_eqn *q = &src->eqns[e];
    int *ins = map_ins(b, s, q, &buf);
    if (!ins) break;
    if (!foldable(b, src, q, ins)) {
      emit_copy(b, s, q, ins);
      continue;
    }
    if (q->nin >= capv) {
      jx_t *v = jx_realloc(vals, sizeof(jx_t) * (size_t)(q->nin + 1));
      if (!v) {
        b_oom(b);
        break;
      }
      vals = v, capv = q->nin + 1;
    }
    if (q->nout >= capo) {
      jx_t *o = jx_realloc(outs, sizeof(jx_t) * (size_t)(q->nout + 1));
      if (!o) {
        b_oom(b);
        break;
      }
      outs = o, capo = q->nout + 1;
    }
    for (int k = 0; k < q->nin; k++) vals[k] = b->cval[ins[k]];
    bool ok = !jx_eval_prim(q->prim, q->nin, vals, &q->params, q->nout, outs);
    for (int k = 0; ok && k < q->nout; k++)
      ok = jx_is_array(outs[k]) && same_aval(&outs[k]->aval, &src->avals[q->out[k]]);
    if (!ok) { /* leave it to run time, which reports whatever went wrong */
      emit_copy(b, s, q, ins);
      continue;
    }
    for (int k = 0; k < q->nout && !b->err; k++) s->map[q->out[k]] = b_const(b, outs[k]);
    b->changed = true;
  }
  jx_free(vals);
  jx_free(outs);
  jx_free(buf.v);
}

jx_jaxpr *jx_pass_fold(const jx_jaxpr *in, bool *changed, jx_t *err) {
  return run_pass(in, fold_body, false, changed, err);
}
