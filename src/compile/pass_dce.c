/* Dead code elimination (compile/passes.h). */
#include "compile/builder.h"

static void dce_body(bld *b, srcmap *s) {
  const jx_jaxpr *src = s->src;
  char *live = jx_calloc((size_t)(src->nvars ? src->nvars : 1), 1);
  char *keep = jx_calloc((size_t)(src->neqn ? src->neqn : 1), 1);
  ibuf buf = {0};
  if (!live || !keep) {
    b_oom(b);
    goto done;
  }
  for (int i = 0; i < src->nout; i++) live[src->outvars[i]] = 1;
  for (int e = src->neqn - 1; e >= 0; e--) {
    const jx_eqn *q = &src->eqns[e];
    keep[e] = jx_eqn_has_effects(q); /* a print whose values nothing else reads */
    for (int k = 0; k < q->nout && !keep[e]; k++) keep[e] = live[q->out[k]];
    if (!keep[e]) {
      b->changed = true;
      continue;
    }
    for (int k = 0; k < q->nin; k++) live[q->in[k]] = 1;
  }
  for (int e = 0; e < src->neqn && !b->err; e++) {
    if (!keep[e]) continue;
    int *ins = map_ins(b, s, &src->eqns[e], &buf);
    if (ins) emit_copy(b, s, &src->eqns[e], ins);
  }
done:
  jx_free(live);
  jx_free(keep);
  jx_free(buf.v);
}

jx_jaxpr *jx_pass_dce(const jx_jaxpr *in, bool *changed, jx_t *err) {
  bool c = false;
  jx_jaxpr *j = run_pass(in, dce_body, false, &c, err);
  /* outputs are mapped last, so every constant still referenced is in */
  if (j && j->nconst < in->nconst) c = true;
  if (changed) *changed = j && c;
  return j;
}
