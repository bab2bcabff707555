/* Algebraic simplification (compile/passes.h). */
#include "compile/builder.h"

/* x is a concrete constant whose elements all have the same bytes; *v is
 * that element's value. */
static bool uniform_const(jx_t x, double *v) {
  if (!jx_is_array(x)) return false;
  int64_t n = jx_aval_size(&x->aval);
  if (n < 1) return false;
  size_t es = jx_dtype_size(x->aval.dtype);
  const char *d = jx_data(x);
  for (int64_t i = 1; i < n; i++)
    if (memcmp(d, d + (size_t)i * es, es)) return false;
  *v = jx_scalar_load(x->aval.dtype, d);
  return true;
}

/* the defining equation of new var v, if it is prim p */
static const jx_eqn *def_of(bld *b, int v, jx_prim p) {
  int d = b->def[v];
  if (d < 0 || b->j->eqns[d].prim != p) return NULL;
  return &b->j->eqns[d];
}

static bool is_identity_perm(const int32_t *perm, int n) {
  for (int i = 0; i < n; i++)
    if (perm[i] != i) return false;
  return true;
}

/* Emit q as prim p with params and inputs ins when abstract_eval gives
 * exactly q's output avals; false (nothing emitted) otherwise. The
 * callers only build params that are valid for the inputs, so
 * abstract_eval does not fail here. Scratch sized by the equation: any
 * width is rewritten as a narrow one would be. */
static bool emit_checked(bld *b, srcmap *s, const jx_eqn *q, jx_prim p, const jx_params *params,
                         const int *ins) {
  jx_aval *in = jx_malloc(sizeof(jx_aval) * (size_t)(q->nin + q->nout + 1)), *out = in ? in + q->nin : NULL;
  int *outs = jx_malloc(sizeof(int) * (size_t)(q->nout + 1));
  bool ok = in && outs;
  if (!ok) b_oom(b);
  for (int k = 0; ok && k < q->nin; k++) in[k] = b->j->avals[ins[k]];
  ok = ok && !jx_prim_rules[p]->abstract_eval(p, in, q->nin, params, out);
  for (int k = 0; ok && k < q->nout; k++) ok = same_aval(&out[k], &s->src->avals[q->out[k]]);
  ok = ok && b_eqn(b, p, params, q->nin, ins, q->nout, out, outs);
  for (int k = 0; ok && k < q->nout; k++) s->map[q->out[k]] = outs[k];
  if (ok) b->changed = true;
  jx_free(in);
  jx_free(outs);
  return ok;
}

/* map q's (single) output to new var v */
static bool alias(bld *b, srcmap *s, const jx_eqn *q, int v) {
  if (q->nout != 1 || !same_aval(&b->j->avals[v], &s->src->avals[q->out[0]])) return false;
  s->map[q->out[0]] = v;
  b->changed = true;
  return true;
}

/* numpy broadcasting of n avals gives exactly shape `want` */
static bool bcast_gives(const jx_aval *in, int n, const jx_aval *want) {
  int r = 0;
  for (int i = 0; i < n; i++)
    if (in[i].ndim > r) r = in[i].ndim;
  if (r != want->ndim) return false;
  for (int d = 0; d < r; d++) {
    int64_t m = 1;
    for (int i = 0; i < n; i++) {
      int k = d - (r - in[i].ndim);
      if (k < 0) continue;
      int64_t x = in[i].shape[k];
      if (x == m || x == 1) continue;
      if (m != 1) return false;
      m = x;
    }
    if (m != want->shape[d]) return false;
  }
  return true;
}

static bool is_elementwise_nary(jx_prim p) {
  switch (p) {
    case JX_P_add:
    case JX_P_sub:
    case JX_P_mul:
    case JX_P_div:
    case JX_P_pow:
    case JX_P_max:
    case JX_P_min:
    case JX_P_and:
    case JX_P_or:
    case JX_P_eq:
    case JX_P_ne:
    case JX_P_lt:
    case JX_P_le:
    case JX_P_gt:
    case JX_P_ge:
    case JX_P_select: return true;
    default: return false;
  }
}

/* Broadcast folding: an operand made by broadcast_in_dim whose dims are
 * numpy-aligned (trailing) is replaced by the broadcast's own operand when
 * numpy broadcasting inside the op still gives the same output. Rewrites
 * ins in place; true if any operand changed. */
static bool fold_broadcast_operands(bld *b, srcmap *s, const jx_eqn *q, int *ins) {
  enum { S = 4 }; /* operands on the stack; wider ones on the heap */
  if (!is_elementwise_nary(q->prim) || q->nout != 1) return false;
  jx_aval sav[S], *av = q->nin <= S ? sav : jx_malloc(sizeof(jx_aval) * (size_t)q->nin), out;
  if (!av) {
    b_oom(b);
    return false;
  }
  const jx_aval *want = &s->src->avals[q->out[0]];
  bool any = false;
  for (int k = 0; k < q->nin; k++) {
    const jx_eqn *d = def_of(b, ins[k], JX_P_broadcast_in_dim);
    if (!d) continue;
    int x = d->in[0];
    const jx_aval *xa = &b->j->avals[x], *ya = &b->j->avals[ins[k]];
    bool aligned = xa->ndim <= ya->ndim && xa->dtype == ya->dtype && xa->weak == ya->weak;
    for (int i = 0; aligned && i < xa->ndim; i++)
      aligned = d->params.bcast.axes[i] == ya->ndim - xa->ndim + i;
    if (!aligned) continue;
    for (int i = 0; i < q->nin; i++) av[i] = b->j->avals[i == k ? x : ins[i]];
    if (!bcast_gives(av, q->nin, want)) continue;
    /* confirm with the primitive's own rule */
    if (jx_prim_rules[q->prim]->abstract_eval(q->prim, av, q->nin, &q->params, &out) ||
        !same_aval(&out, want))
      continue;
    ins[k] = x;
    any = true;
  }
  if (av != sav) jx_free(av);
  if (any) b->changed = true;
  return any;
}

/* x op c -> x for the identities of add/sub/mul/div */
static bool simplify_identity(bld *b, srcmap *s, const jx_eqn *q, const int *ins) {
  double c;
  for (int k = 0; k < 2; k++) {
    if (!uniform_const(b->cval[ins[k]], &c)) continue;
    int other = ins[1 - k];
    bool id = false;
    switch (q->prim) {
      case JX_P_add: id = c == 0; break;
      case JX_P_sub: id = k == 1 && c == 0; break;
      case JX_P_mul: id = c == 1; break;
      case JX_P_div: id = k == 1 && c == 1; break;
      default: break;
    }
    if (id && alias(b, s, q, other)) return true;
  }
  return false;
}

static bool simplify_eqn(bld *b, srcmap *s, const jx_eqn *q, int *ins) {
  const jx_params *pa = &q->params;
  const jx_aval *xa = q->nin ? &b->j->avals[ins[0]] : NULL;
  switch (q->prim) {
    case JX_P_add:
    case JX_P_sub:
    case JX_P_mul:
    case JX_P_div: return simplify_identity(b, s, q, ins);
    case JX_P_neg: {
      const jx_eqn *d = def_of(b, ins[0], JX_P_neg);
      return d && alias(b, s, q, d->in[0]);
    }
    case JX_P_convert:
      return pa->convert.dtype == xa->dtype && pa->convert.weak == xa->weak && alias(b, s, q, ins[0]);
    case JX_P_transpose: {
      if (pa->perm.naxes != xa->ndim) return false;
      if (is_identity_perm(pa->perm.axes, pa->perm.naxes)) return alias(b, s, q, ins[0]);
      const jx_eqn *d = def_of(b, ins[0], JX_P_transpose);
      if (!d || d->params.perm.naxes != pa->perm.naxes) return false;
      /* out dim i = mid dim p2[i] = in dim p1[p2[i]] */
      jx_params np = *pa;
      for (int i = 0; i < pa->perm.naxes; i++) np.perm.axes[i] = d->params.perm.axes[pa->perm.axes[i]];
      if (is_identity_perm(np.perm.axes, np.perm.naxes)) return alias(b, s, q, d->in[0]);
      return emit_checked(b, s, q, JX_P_transpose, &np, &d->in[0]);
    }
    case JX_P_reshape: {
      if (alias(b, s, q, ins[0])) return true; /* same shape */
      const jx_eqn *d = def_of(b, ins[0], JX_P_reshape);
      if (!d) return false;
      if (alias(b, s, q, d->in[0])) return true;
      return emit_checked(b, s, q, JX_P_reshape, pa, &d->in[0]);
    }
    case JX_P_broadcast_in_dim: {
      if (pa->bcast.ndim == xa->ndim && pa->bcast.naxes == xa->ndim &&
          is_identity_perm(pa->bcast.axes, pa->bcast.naxes) && alias(b, s, q, ins[0]))
        return true;
      /* bid(bid(x)): x dim i -> mid dim a1[i] -> out dim a2[a1[i]] */
      const jx_eqn *d = def_of(b, ins[0], JX_P_broadcast_in_dim);
      if (!d || pa->bcast.naxes != xa->ndim) return false;
      const jx_aval *x0 = &b->j->avals[d->in[0]];
      jx_params np = *pa;
      np.bcast.naxes = d->params.bcast.naxes;
      memset(np.bcast.axes, 0, sizeof np.bcast.axes);
      for (int i = 0; i < np.bcast.naxes; i++) np.bcast.axes[i] = pa->bcast.axes[d->params.bcast.axes[i]];
      if (np.bcast.naxes != x0->ndim) return false;
      return emit_checked(b, s, q, JX_P_broadcast_in_dim, &np, &d->in[0]);
    }
    default: return false;
  }
}

static void simplify_body(bld *b, srcmap *s) {
  const jx_jaxpr *src = s->src;
  ibuf buf = {0};
  for (int e = 0; e < src->neqn && !b->err; e++) {
    const jx_eqn *q = &src->eqns[e];
    int *ins = map_ins(b, s, q, &buf);
    if (!ins) break;
    fold_broadcast_operands(b, s, q, ins);
    if (simplify_eqn(b, s, q, ins) || b->err) continue;
    emit_copy(b, s, q, ins);
  }
  jx_free(buf.v);
}

jx_jaxpr *jx_pass_simplify(const jx_jaxpr *in, bool *changed, jx_t *err) {
  return run_pass(in, simplify_body, false, changed, err);
}
