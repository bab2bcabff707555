/* Common subexpression elimination (compile/passes.h). */
#include "compile/builder.h"

static uint64_t eqn_hash(jx_prim p, const jx_params *params, int nin, const int *ins) {
  uint64_t h = jx_params_hash(params) ^ ((uint64_t)p * 0x9E3779B97F4A7C15ull);
  for (int k = 0; k < nin; k++) h = (h ^ (uint64_t)(uint32_t)ins[k]) * 1099511628211ull;
  return h ^ (h >> 29);
}

static void cse_body(bld *b, srcmap *s) {
  const jx_jaxpr *src = s->src;
  int cap = 16;
  while (cap < 2 * src->neqn + 2) cap *= 2;
  int *table = jx_malloc(sizeof(int) * (size_t)cap); /* new eqn index, -1 empty */
  ibuf buf = {0};
  if (!table) {
    b_oom(b);
    return;
  }
  for (int i = 0; i < cap; i++) table[i] = -1;
  for (int e = 0; e < src->neqn && !b->err; e++) {
    const jx_eqn *q = &src->eqns[e];
    int *ins = map_ins(b, s, q, &buf);
    if (!ins) break;
    if (jx_eqn_has_effects(q)) { /* two equal prints both print */
      emit_copy(b, s, q, ins);
      continue;
    }
    size_t h = (size_t)eqn_hash(q->prim, &q->params, q->nin, ins) & (size_t)(cap - 1);
    int hit = -1;
    for (;; h = (h + 1) & (size_t)(cap - 1)) {
      int k = table[h];
      if (k < 0) break;
      const jx_eqn *r = &b->j->eqns[k];
      if (r->prim == q->prim && r->nin == q->nin && r->nout == q->nout &&
          !memcmp(r->in, ins, sizeof(int) * (size_t)q->nin) &&
          !memcmp(&r->params, &q->params, sizeof q->params)) {
        hit = k;
        break;
      }
    }
    if (hit >= 0) {
      const jx_eqn *r = &b->j->eqns[hit];
      for (int k = 0; k < q->nout; k++) s->map[q->out[k]] = r->out[k];
      b->changed = true;
      continue;
    }
    if (emit_copy(b, s, q, ins)) table[h] = b->j->neqn - 1;
  }
  jx_free(table);
  jx_free(buf.v);
}

jx_jaxpr *jx_pass_cse(const jx_jaxpr *in, bool *changed, jx_t *err) {
  return run_pass(in, cse_body, true, changed, err);
}
