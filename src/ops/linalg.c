/* dot and matmul with NumPy's rules, as dot_general; svd, as the svd primitive
 * (src/prims/linalg.c). */
#include "ops/ops.h"

static jx_t promote_pair(const char *op, jx_t *a, jx_t *b) {
  jx_t e = jx_op_check_array(op, *a);
  if (!e) e = jx_op_check_array(op, *b);
  if (e) return e;
  jx_dtype dt = jx_promote((*a)->aval.dtype, (*a)->aval.weak, (*b)->aval.dtype, (*b)->aval.weak, NULL);
  if (dt == JX_BOOL) dt = JX_I32; /* bool matrix products count, as integers */
  *a = jx_op_cast_for(op, *a, dt, (*a)->aval.weak);
  *b = jx_op_cast_for(op, *b, dt, (*b)->aval.weak);
  return NULL;
}

static jx_t shape_error(const char *op, jx_t a, jx_t b, const char *why) {
  char s1[160], s2[160];
  return jx_error_new("%s: shapes %s and %s are not aligned: %s", op, jx_aval_str(&a->aval, s1, sizeof s1),
                      jx_aval_str(&b->aval, s2, sizeof s2), why);
}

jx_t jx_dot(jx_t a, jx_t b) {
  jx_t e = promote_pair("dot", &a, &b);
  if (e) return e;
  int ra = a->aval.ndim, rb = b->aval.ndim;
  if (ra == 0 || rb == 0) return jx_lax_binary(JX_P_mul, a, b);
  int lc = ra - 1, rc = rb == 1 ? 0 : rb - 2;
  if (a->aval.shape[lc] != b->aval.shape[rc])
    return shape_error("dot", a, b, "contracting dimensions differ");
  if (ra - 1 + rb - 1 > JX_MAX_RANK) return shape_error("dot", a, b, "result rank too large");
  return jx_lax_dot_general(a, b, 1, &lc, &rc, 0, NULL, NULL);
}

jx_t jx_matmul(jx_t a, jx_t b) {
  jx_t e = promote_pair("matmul", &a, &b);
  if (e) return e;
  int ra = a->aval.ndim, rb = b->aval.ndim;
  if (ra == 0 || rb == 0) return shape_error("matmul", a, b, "operands must not be 0-d (use mul)");
  /* 1-D operands get a unit dimension that is dropped from the result */
  bool va = ra == 1, vb = rb == 1;
  if (va) a = jx_expand_dims(a, 0), ra = 2;
  if (vb) b = jx_expand_dims(b, 1), rb = 2;
  const int64_t *sa = a->aval.shape, *sb = b->aval.shape;
  if (sa[ra - 1] != sb[rb - 2]) return shape_error("matmul", a, b, "contracting dimensions differ");
  int nba = ra - 2, nbb = rb - 2, nbat = nba > nbb ? nba : nbb;
  if (nbat + 2 > JX_MAX_RANK) return shape_error("matmul", a, b, "result rank too large");
  jx_t r;
  if (nbb == 0) { /* [..., M, K] @ [K, N]: one GEMM over the flattened batch */
    int lc = ra - 1, rc = 0;
    r = jx_lax_dot_general(a, b, 1, &lc, &rc, 0, NULL, NULL);
  } else {
    /* broadcast the batch dims of both to their common shape */
    int64_t bs[JX_MAX_RANK];
    for (int i = 0; i < nbat; i++) {
      int ia = i - (nbat - nba), ib = i - (nbat - nbb);
      int64_t x = ia >= 0 ? sa[ia] : 1, y = ib >= 0 ? sb[ib] : 1;
      if (x != y && x != 1 && y != 1)
        return shape_error("matmul", a, b, "batch dimensions are not broadcastable");
      bs[i] = x == 1 ? y : x;
    }
    int64_t ta[JX_MAX_RANK], tb[JX_MAX_RANK];
    memcpy(ta, bs, sizeof(int64_t) * (size_t)nbat);
    memcpy(tb, bs, sizeof(int64_t) * (size_t)nbat);
    ta[nbat] = sa[ra - 2], ta[nbat + 1] = sa[ra - 1];
    tb[nbat] = sb[rb - 2], tb[nbat + 1] = sb[rb - 1];
    a = jx_broadcast_to(a, nbat + 2, ta);
    b = jx_broadcast_to(b, nbat + 2, tb);
    int bd[JX_MAX_RANK], lc = nbat + 1, rc = nbat;
    for (int i = 0; i < nbat; i++) bd[i] = i;
    r = jx_lax_dot_general(a, b, 1, &lc, &rc, nbat, bd, bd);
  }
  if (vb) r = jx_squeeze(r, -1);
  if (va) r = jx_squeeze(r, -2 + (vb ? 1 : 0));
  return r;
}

/* jnp.linalg.svd(x, full_matrices=False): ints promote to float, as jnp does */
jx_t jx_svd(jx_t x, bool compute_uv) {
  jx_t e = jx_op_check_array("svd", x);
  if (e) return e;
  x = jx_op_to_float(x);
  jx_params pa;
  jx_params_init(&pa, JX_PK_SVD);
  pa.svd.compute_uv = compute_uv;
  jx_t out[3];
  if ((e = jx_bind(JX_P_svd, 1, &x, &pa, compute_uv ? 3 : 1, out))) return e;
  return compute_uv ? JX_TUPLE(out[1], out[0], out[2]) : out[0];
}
