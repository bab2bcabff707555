/* svd: lax.linalg.svd with full_matrices=False, with all its rules. An
 * operand x [..., m, n] (f32 or f64, leading dims a batch) gives, as JAX's
 * svd_p does, s [..., k] (descending, >= 0; k = min(m, n)) and, when
 * params.svd.compute_uv, u [..., m, k] and vt [..., k, n] with
 * x = u diag(s) vt.
 *
 * jvp is JAX's svd_jvp_rule: ds = diag(u^T dx v); for u and v the rule
 * with F[i, j] = 1 / (s_j^2 - s_i^2) off the diagonal (so the vectors'
 * derivatives need distinct singular values, as in JAX), plus the
 * components outside the span of u (tall) or v (wide). The diagonal term
 * of JAX's rule, (dS - dS^H) / s, is zero for real matrices. Reverse mode
 * comes from the jvp, which is linear in dx through dot_generals. vmap moves
 * the batch dim among the leading dims (the kernel loops over them); under
 * jit the primitive is a call of its impl. */
#include "prims/prims.h"

#define ERR(...) jx_rule_error("svd", in, nin, __VA_ARGS__)

static int nout_of(const jx_params *pa) { return pa->svd.compute_uv ? 3 : 1; }

static jx_t svd_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  (void)p;
  int r = in[0].ndim;
  if (r < 2) return ERR("operand must have rank >= 2 (a matrix, or a batch of them), not %d", r);
  if (in[0].dtype != JX_F32 && in[0].dtype != JX_F64)
    return ERR("operand must be f32 or f64, not %s", jx_dtype_name(in[0].dtype));
  int64_t m = in[0].shape[r - 2], n = in[0].shape[r - 1], k = m < n ? m : n;
  out[0] = (jx_aval){.dtype = in[0].dtype, .ndim = (int8_t)(r - 1)};
  memcpy(out[0].shape, in[0].shape, sizeof(int64_t) * (size_t)(r - 2));
  out[0].shape[r - 2] = k;
  if (!pa->svd.compute_uv) return NULL;
  out[1] = out[2] = in[0];
  out[1].weak = out[2].weak = false;
  out[1].shape[r - 1] = k, out[2].shape[r - 2] = k;
  return NULL;
}

static jx_t svd_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin;
  const jx_aval *a = &in[0]->aval;
  int r = a->ndim;
  int64_t m = a->shape[r - 2], n = a->shape[r - 1], batch = 1;
  for (int d = 0; d < r - 2; d++) batch *= a->shape[d];
  bool uv = pa->svd.compute_uv;
  if (jx_cpu_svd(a->dtype, batch, m, n, jx_data(in[0]), uv ? jx_data(out[1]) : NULL, jx_data(out[0]),
                 uv ? jx_data(out[2]) : NULL))
    return jx_error_new("svd: out of memory");
  return NULL;
}

/* x with its last two dims swapped */
static jx_t mT(jx_t x) {
  int r = x->aval.ndim, perm[JX_MAX_RANK];
  for (int d = 0; d < r; d++) perm[d] = d;
  perm[r - 2] = r - 1, perm[r - 1] = r - 2;
  return jx_lax_transpose(x, perm);
}
/* a [..., i, j] @ b [..., j, l], the leading dims a batch */
static jx_t bmm(jx_t a, jx_t b) {
  int r = a->aval.ndim, lc = r - 1, rc = r - 2, bd[JX_MAX_RANK];
  for (int d = 0; d < r - 2; d++) bd[d] = d;
  return jx_lax_dot_general(a, b, 1, &lc, &rc, r - 2, bd, bd);
}
static jx_t mul(jx_t a, jx_t b) { return jx_lax_binary(JX_P_mul, a, b); }
static jx_t add(jx_t a, jx_t b) { return jx_lax_binary(JX_P_add, a, b); }
static jx_t sub(jx_t a, jx_t b) { return jx_lax_binary(JX_P_sub, a, b); }

/* the identity [k, k] broadcast over s's leading dims (s [..., k]) */
static jx_t eye_like(jx_t s) {
  const jx_aval *a = &s->aval;
  int r = a->ndim;
  jx_aval e = {.dtype = a->dtype, .ndim = (int8_t)(r + 1)};
  memcpy(e.shape, a->shape, sizeof(int64_t) * (size_t)r);
  e.shape[r] = a->shape[r - 1];
  jx_t i = jx_lax_iota(JX_I32, e.ndim, e.shape, r - 1), j = jx_lax_iota(JX_I32, e.ndim, e.shape, r);
  return jx_lax_convert(jx_lax_binary(JX_P_eq, i, j), a->dtype);
}

/* s [..., k] as [..., 1, k] (row) or [..., k, 1] (col) */
static jx_t s_as(jx_t s, bool row) {
  int r = s->aval.ndim;
  int64_t shape[JX_MAX_RANK];
  memcpy(shape, s->aval.shape, sizeof(int64_t) * (size_t)r);
  shape[r] = 1;
  if (row) shape[r - 1] = 1, shape[r] = s->aval.shape[r - 1];
  return jx_lax_reshape(s, r + 1, shape);
}

/* JAX's rule for u and v: du = u (F o (dS s + (dS s)^T)), dv = v (F o (s dS
 * + (s dS)^T)), then the parts outside span(u) / span(v) */
static void uv_tangents(jx_t dx, jx_t s, jx_t u, jx_t vt, jx_t ds_mat, jx_t *du, jx_t *dvt) {
  const jx_aval *a = &dx->aval;
  int64_t m = a->shape[a->ndim - 2], n = a->shape[a->ndim - 1];
  jx_t v = mT(vt), srow = s_as(s, true), scol = s_as(s, false), eye = eye_like(s);
  jx_t diffs = mul(add(srow, scol), sub(srow, scol)); /* [i, j]: s_j^2 - s_i^2 */
  jx_t f = sub(jx_lax_binary(JX_P_div, jx_lax_const(s->aval.dtype, 1), add(diffs, eye)), eye);
  jx_t dss = mul(srow, ds_mat), sds = mul(scol, ds_mat);
  jx_t dU = bmm(u, mul(f, add(dss, mT(dss))));
  jx_t dV = bmm(v, mul(f, add(sds, mT(sds))));
  if (m > n) {
    jx_t dav = bmm(dx, v);
    dU = add(dU, jx_lax_binary(JX_P_div, sub(dav, bmm(u, bmm(mT(u), dav))), srow));
  }
  if (n > m) {
    jx_t dahu = bmm(mT(dx), u);
    dV = add(dV, jx_lax_binary(JX_P_div, sub(dahu, bmm(v, bmm(vt, dahu))), srow));
  }
  *du = dU, *dvt = mT(dV);
}

static jx_t svd_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                    jx_t *tout) {
  (void)nin;
  int no = nout_of(pa);
  jx_params full = *pa;
  full.svd.compute_uv = true;
  jx_t r[3];
  jx_t e = jx_bind(p, 1, x, &full, 3, r);
  for (int i = 0; i < no; i++) out[i] = r[i], tout[i] = NULL;
  if (e || !t[0]) return e;
  jx_t s = r[0], u = r[1], vt = r[2];
  jx_t ds_mat = bmm(bmm(mT(u), t[0]), mT(vt)); /* u^T dx v */
  tout[0] = jx_lax_reduce(JX_P_reduce_sum, mul(ds_mat, eye_like(s)), 1, (int[]){ds_mat->aval.ndim - 1});
  if (pa->svd.compute_uv) uv_tangents(t[0], s, u, vt, ds_mat, &tout[1], &tout[2]);
  for (int i = 0; i < no; i++)
    if (!jx_ok(tout[i])) return tout[i];
  return NULL;
}

/* vmap: a batch dim among the leading dims stays where it is (the kernel
 * treats every leading dim as batch); one among the matrix dims moves to
 * the front */
static jx_t svd_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                      int *obd) {
  (void)nin;
  int r = in[0]->aval.ndim, b = bd[0];
  jx_t x = in[0];
  if (b > r - 3) x = jx_moveaxis(x, b, 0), b = 0;
  int no = nout_of(pa);
  for (int i = 0; i < no; i++) obd[i] = b;
  return jx_bind(p, 1, &x, pa, no, out);
}

static void svd_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  jx_strbuf_put(b, " compute_uv=%s full_matrices=False", pa->svd.compute_uv ? "True" : "False");
}

const jx_rules jx_rules_svd = {.name = "svd",
                               .nin = 1,
                               .nout = -1, /* s, or (s, u, vt) with compute_uv */
                               .nout_of = nout_of,
                               .abstract_eval = svd_abstract,
                               .impl = svd_impl,
                               .jvp = svd_jvp,
                               .batch = svd_batch,
                               .params_kind = JX_PK_SVD,
                               .print_params = svd_print,
                               .lower = {.kind = JX_LOWER_CALL}};
