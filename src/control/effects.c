/* Effects in derived jaxprs. jvp's tangent half (jx_derive_jvp without
 * the primal outputs: jit_call's, cond's and scan's tangent calls) runs
 * beside the primal half, which has already run every effect; it
 * recomputes primal values, so it would run them again (a second print
 * per forward pass, and more in the backward pass that transposes it).
 * JAX's partial evaluation keeps effects in the known (primal) jaxpr; here
 * the tangent jaxpr is made pure: its effectful equations dropped, and the
 * inner jaxprs of its control flow replaced by their pure copies (cached
 * on them). */
#include "control/effects.h"
#include "control/derive.h"

static jx_jaxpr *make_pure(jx_jaxpr *j, const void *arg, jx_t *err);

jx_jaxpr *jx_derive_pure(jx_jaxpr *j, jx_t *err) {
  *err = NULL;
  if (!jx_jaxpr_has_effects(j)) {
    jx_jaxpr_retain(j);
    return j;
  }
  return jx_derive_cached(j, "pure", make_pure, NULL, err);
}

/* q's params with each inner jaxpr replaced by its pure copy (references
 * in pure[], released by the caller); false with *err on failure */
static bool pure_params(const jx_eqn *q, jx_params *pa, jx_jaxpr **pure, int *n, jx_t *err) {
  *pa = q->params;
  *n = jx_params_jaxprs(&q->params, pure);
  for (int i = 0; i < *n; i++) {
    pure[i] = jx_derive_pure(pure[i], err);
    if (!pure[i]) {
      while (i-- > 0) jx_jaxpr_release(pure[i]);
      *n = 0;
      return false;
    }
  }
  jx_params_set_jaxprs(pa, pure);
  return true;
}

/* append q (not itself effectful) with its inputs mapped */
static bool copy_eqn(jx_jaxpr *r, const jx_jaxpr *j, const jx_eqn *q, int *map, jx_t *err) {
  jx_jaxpr *pure[2];
  int np = 0;
  jx_params pa;
  if (!pure_params(q, &pa, pure, &np, err)) return false;
  int *in = jx_malloc(sizeof(int) * (size_t)(q->nin + q->nout + 1));
  jx_aval *av = jx_malloc(sizeof(jx_aval) * (size_t)(q->nout + 1));
  bool ok = in && av;
  for (int k = 0; ok && k < q->nin; k++) in[k] = map[q->in[k]];
  for (int k = 0; ok && k < q->nout; k++) av[k] = j->avals[q->out[k]];
  ok = ok && !jx_jaxpr_add_eqn(r, q->prim, &pa, q->nin, in, q->nout, av, in + q->nin);
  for (int k = 0; ok && k < q->nout; k++) map[q->out[k]] = in[q->nin + k];
  for (int i = 0; i < np; i++) jx_jaxpr_release(pure[i]); /* the equation holds its own */
  jx_free(in);
  jx_free(av);
  if (!ok) *err = jx_error_new("jit: out of memory");
  return ok;
}

static jx_jaxpr *make_pure(jx_jaxpr *j, const void *arg, jx_t *err) {
  (void)arg;
  jx_jaxpr *r = jx_jaxpr_new();
  int *map = jx_malloc(sizeof(int) * (size_t)(j->nvars ? j->nvars : 1));
  bool ok = r && map;
  for (int i = 0; ok && i < j->nconst; i++)
    ok = (map[j->constvars[i]] = jx_jaxpr_add_const(r, j->consts[i])) >= 0;
  for (int i = 0; ok && i < j->nin; i++)
    ok = (map[j->invars[i]] = jx_jaxpr_add_invar(r, &j->avals[j->invars[i]])) >= 0;
  if (!ok) *err = jx_error_new("jit: out of memory");
  for (int e = 0; ok && e < j->neqn; e++) {
    const jx_eqn *q = &j->eqns[e];
    if (jx_prim_rules[q->prim]->effect && !q->nout) continue; /* a print: no outputs to map */
    ok = copy_eqn(r, j, q, map, err);
  }
  int *outs = ok ? jx_malloc(sizeof(int) * (size_t)(j->nout + 1)) : NULL;
  for (int i = 0; outs && i < j->nout; i++) outs[i] = map[j->outvars[i]];
  if (ok && (!outs || jx_jaxpr_set_outs(r, j->nout, outs)))
    ok = false, *err = jx_error_new("jit: out of memory");
  jx_free(outs);
  jx_free(map);
  if (!ok) jx_jaxpr_release(r);
  return ok ? r : NULL;
}
