/* conv_general_dilated, as lax.conv_general_dilated: every rule.
 *
 * Params hold JAX's ConvDimensionNumbers as three specs (params.conv), so
 * any layout (NCHW, NHWC, OIHW, HWIO, ...) is one primitive. The rules are
 * JAX's: bilinear jvp; the transposes are convolutions themselves (the data
 * gradient convolves the cotangent with the flipped kernel, swapping the
 * roles of window strides and lhs dilation; the filter gradient convolves
 * the input with the cotangent, the batch dim playing the feature role);
 * batching folds the mapped axis into the batch dim or, with a mapped
 * kernel, into the feature groups -- one convolution, never a loop. */
#include "prims/conv.h"

#include "backend/cpu/conv.h"
#include "prims/prims.h"

#define OP "conv_general_dilated"

jx_t jx_lax_conv(jx_t lhs, jx_t rhs, const jx_params *p) {
  return jx_bind1(JX_P_conv_general_dilated, 2, (jx_t[]){lhs, rhs}, p);
}

void jx_vjp_lhs_padding(int64_t in, int64_t window, int64_t stride, int64_t out, int64_t lo, int64_t lhs_dil,
                        int64_t rhs_dil, int64_t *before, int64_t *after) {
  int64_t ld = jx_dilate_dim(in, lhs_dil), rd = jx_dilate_dim(window, rhs_dil),
          od = jx_dilate_dim(out, stride);
  *before = rd - lo - 1;
  *after = ld + rd - 1 - od - *before;
}

/* A spec is a permutation of 0..rank-1. */
static bool is_perm(const int8_t *spec, int rank) {
  bool seen[JX_MAX_RANK] = {0};
  for (int i = 0; i < rank; i++) {
    if (spec[i] < 0 || spec[i] >= rank || seen[spec[i]]) return false;
    seen[spec[i]] = true;
  }
  return true;
}

static jx_t conv_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  (void)p, (void)nin;
  const int nsp = pa->conv.nsp, rank = nsp + 2;
  const int8_t *ls = pa->conv.lhs, *rs = pa->conv.rhs, *os = pa->conv.out;
  if (in[0].dtype != in[1].dtype) return jx_rule_error(OP, in, 2, "operands must have the same dtype");
  if (in[0].dtype == JX_BOOL) return jx_rule_error(OP, in, 2, "bool operands are not supported");
  if (nsp < 0 || nsp > JX_MAX_RANK - 2 || in[0].ndim != rank || in[1].ndim != rank)
    return jx_rule_error(OP, in, 2, "lhs and rhs must both have rank %d (2 + %d spatial dims)", rank, nsp);
  if (!is_perm(ls, rank) || !is_perm(rs, rank) || !is_perm(os, rank))
    return jx_rule_error(OP, in, 2, "dimension numbers are not permutations of the %d dims", rank);
  const int64_t fgc = pa->conv.fgc, bgc = pa->conv.bgc;
  const int64_t N = in[0].shape[ls[0]], C = in[0].shape[ls[1]], O = in[1].shape[rs[0]],
                I = in[1].shape[rs[1]];
  if (fgc < 1 || bgc < 1 || (fgc > 1 && bgc > 1))
    return jx_rule_error(OP, in, 2,
                         "feature_group_count %lld and batch_group_count %lld: both >= 1, at most one > 1",
                         (long long)fgc, (long long)bgc);
  if (C != I * fgc)
    return jx_rule_error(OP, in, 2,
                         "lhs features (%lld) must equal rhs in-features (%lld) x feature_group_count (%lld)",
                         (long long)C, (long long)I, (long long)fgc);
  if (N % bgc)
    return jx_rule_error(OP, in, 2, "lhs batch (%lld) must be a multiple of batch_group_count (%lld)",
                         (long long)N, (long long)bgc);
  if (O % fgc || O % bgc)
    return jx_rule_error(OP, in, 2, "rhs out-features (%lld) must be a multiple of the group count (%lld)",
                         (long long)O, (long long)(fgc > bgc ? fgc : bgc));
  out[0] = (jx_aval){.dtype = in[0].dtype, .weak = in[0].weak && in[1].weak, .ndim = (int8_t)rank};
  out[0].shape[os[0]] = N / bgc, out[0].shape[os[1]] = O;
  for (int s = 0; s < nsp; s++) {
    int64_t st = pa->conv.stride[s], ldl = pa->conv.lhs_dil[s], rdl = pa->conv.rhs_dil[s];
    if (st < 1 || ldl < 1 || rdl < 1)
      return jx_rule_error(OP, in, 2, "spatial dim %d: stride %lld and dilations %lld, %lld must be >= 1", s,
                           (long long)st, (long long)ldl, (long long)rdl);
    int64_t padded = jx_dilate_dim(in[0].shape[ls[s + 2]], ldl) + pa->conv.lo[s] + pa->conv.hi[s];
    int64_t win = jx_dilate_dim(in[1].shape[rs[s + 2]], rdl);
    if (padded < 0)
      return jx_rule_error(OP, in, 2, "spatial dim %d: negative padding (%d, %d) crops more than the input",
                           s, pa->conv.lo[s], pa->conv.hi[s]);
    out[0].shape[os[s + 2]] = jx_window_out(padded, win, st);
  }
  return NULL;
}

/* The kernel's view of a convolution: canonical dims, strides of the
 * actual layouts. */
static void make_desc(const jx_aval *l, const jx_aval *r, const jx_aval *o, const jx_params *pa,
                      jx_cpu_conv_desc *d) {
  const int8_t *ls = pa->conv.lhs, *rs = pa->conv.rhs, *os = pa->conv.out;
  int64_t lst[JX_MAX_RANK], ost[JX_MAX_RANK], rst[JX_MAX_RANK];
  jx_strides(l->ndim, l->shape, lst);
  jx_strides(o->ndim, o->shape, ost);
  jx_strides(r->ndim, r->shape, rst);
  *d = (jx_cpu_conv_desc){.dt = l->dtype,
                          .nsp = pa->conv.nsp,
                          .N = l->shape[ls[0]],
                          .C = l->shape[ls[1]],
                          .O = r->shape[rs[0]],
                          .I = r->shape[rs[1]],
                          .fgc = pa->conv.fgc,
                          .bgc = pa->conv.bgc};
  for (int j = 0; j < l->ndim; j++) d->lst[j] = lst[ls[j]], d->ost[j] = ost[os[j]], d->rst[j] = rst[rs[j]];
  for (int s = 0; s < d->nsp; s++) {
    d->in[s] = l->shape[ls[s + 2]], d->k[s] = r->shape[rs[s + 2]], d->out[s] = o->shape[os[s + 2]];
    d->stride[s] = pa->conv.stride[s], d->lo[s] = pa->conv.lo[s];
    d->ldil[s] = pa->conv.lhs_dil[s], d->rdil[s] = pa->conv.rhs_dil[s];
  }
}

static int conv_run(jx_cpu_conv_desc *d, const void *x, const void *w, void *y) {
  int rc = d->dt == JX_F32 ? jx_cpu_conv_dnnl(d, x, w, y) : 1;
  return rc > 0 ? jx_cpu_conv(d, x, w, y) : rc;
}

static int conv_wide(void *ctx, const void *const *in, void *out) { return conv_run(ctx, in[0], in[1], out); }

/* #19's dtypes. bf16/f16: the operands widened exactly to f32, the f32
 * kernel, each output rounded once (XLA:CPU computes a bf16 convolution in
 * f32 after float normalization the same way). 8/16-bit integers: the i32
 * kernel, each output wrapped to the narrow type; u64: the i64 kernel on
 * the same bits (both wrap, as XLA's integer convolution does). */
static int conv_run_any(jx_cpu_conv_desc *d, const int64_t n[3], const void *x, const void *w, void *y) {
  const jx_dtype dt = d->dt;
  if (dt == JX_U64) d->dt = JX_I64;
  if (jx_dtype_size(dt) >= 4 && !jx_dtype_is_half(dt)) return conv_run(d, x, w, y);
  d->dt = jx_dtype_is_half(dt) ? JX_F32 : JX_I32;
  return jx_cpu_run_widened(dt, d->dt, 2, (const void *const[]){x, w}, n, y, n[2], conv_wide, d);
}

/* the kernels: oneDNN, else jx's own (after a canonical copy of the rhs) */
static jx_t conv_kernels(const jx_t *in, const jx_params *pa, jx_t *out, jx_cpu_conv_desc *dp) {
  const jx_aval *r = &in[1]->aval;
  jx_cpu_conv_desc d = *dp;
  const void *w = jx_data(in[1]);
  /* oneDNN reads the rhs in its own layout: the filter gradient's rhs is
   * the output cotangent, which a canonical copy would transpose whole */
  int rc = d.dt == JX_F32 ? jx_cpu_conv_dnnl(&d, jx_data(in[0]), w, jx_data(out[0])) : 1;
  if (rc < 0) return jx_rule_error(OP, (jx_aval[]){in[0]->aval, *r}, 2, "the kernel failed (out of memory)");
  if (rc == 0) return NULL;
  /* jx's kernel takes the rhs in canonical [O, I, window...] order */
  int64_t cshape[JX_MAX_RANK] = {d.O, d.I};
  for (int s = 0; s < d.nsp; s++) cshape[s + 2] = d.k[s];
  jx_strides(r->ndim, cshape, d.rst);
  jx_buffer *tmp = NULL;
  bool canonical = true;
  for (int j = 0; j < r->ndim; j++) canonical &= pa->conv.rhs[j] == j;
  if (!canonical) {
    int64_t st[JX_MAX_RANK], shape[JX_MAX_RANK], pst[JX_MAX_RANK];
    jx_strides(r->ndim, r->shape, st);
    for (int j = 0; j < r->ndim; j++) shape[j] = r->shape[pa->conv.rhs[j]], pst[j] = st[pa->conv.rhs[j]];
    size_t es = jx_dtype_size(r->dtype);
    tmp = jx_buffer_new((size_t)jx_aval_size(r) * es);
    if (!tmp)
      return jx_rule_error(OP, (jx_aval[]){in[0]->aval, *r}, 2, "out of memory for the kernel's layout");
    jx_cpu_strided_copy(es, r->ndim, shape, w, 0, pst, tmp->data);
    w = tmp->data;
  }
  const int64_t n[3] = {jx_aval_size(&in[0]->aval), jx_aval_size(r), jx_aval_size(&out[0]->aval)};
  if (d.dt != JX_F32)
    d.epi = NULL; /* a widened kernel's output is not the final one: the epilogue runs after */
  rc = d.dt == JX_F32 ? jx_cpu_conv(&d, jx_data(in[0]), w, jx_data(out[0]))
                      : conv_run_any(&d, n, jx_data(in[0]), w, jx_data(out[0]));
  jx_buffer_release(tmp);
  if (rc)
    return jx_rule_error(OP, (jx_aval[]){in[0]->aval, *r}, 2, "%s",
                         rc < 0 ? "the kernel failed (out of memory)" : "no kernel");
  return NULL;
}

/* the convolution into out[0], with epilogue epi (NULL: none) run on
 * every output element once it is final */
enum { EPI_GRAIN = 16384 }; /* elements per task of an epilogue run after */

static jx_t conv_exec(const jx_t *in, const jx_params *pa, jx_t *out, void (*epi)(void *, int64_t, int64_t),
                      void *epi_ctx) {
  const jx_aval *r = &in[1]->aval;
  jx_cpu_conv_desc d;
  bool epi_done = false;
  make_desc(&in[0]->aval, r, &out[0]->aval, pa, &d);
  d.epi = epi, d.epi_ctx = epi_ctx, d.epi_done = &epi_done;
  jx_t e = conv_kernels(in, pa, out, &d);
  if (!e && epi && !epi_done) jx_cpu_parallel_for(jx_aval_size(&out[0]->aval), EPI_GRAIN, epi, epi_ctx);
  return e;
}

static jx_t conv_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin;
  return conv_exec(in, pa, out, NULL, NULL);
}

/* Under jit a pointwise consumer of the output (bias, activation) runs as
 * the convolution's epilogue: oneDNN's batch parts each run it on their
 * images as soon as they are done, while they are in cache; the other
 * kernels run it after. Batch-major outputs only (NHWC, NCHW: each image
 * a contiguous block), one batch group. */
static bool conv_takes_epilogue(const jx_params *pa) { return pa->conv.out[0] == 0 && pa->conv.bgc == 1; }

static jx_t conv_impl_epilogue(const jx_t *in, const jx_params *pa, jx_t out,
                               void (*epi)(void *ctx, int64_t lo, int64_t hi), void *ctx) {
  return conv_exec(in, pa, &out, epi, ctx);
}

static jx_t conv_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                     jx_t *tout) {
  (void)p, (void)nin;
  jx_bind(JX_P_conv_general_dilated, 2, x, pa, 1, out);
  jx_t r = t[0] ? jx_lax_conv(t[0], x[1], pa) : NULL;
  if (t[1]) r = jx_lax_add_any(r, jx_lax_conv(x[0], t[1], pa));
  tout[0] = r;
  return NULL;
}

/* ------------------------------------------------ JAX's reshape helpers */
/* dim src of x split into (size1, rest) */
static jx_t axis_out_of(int src, int64_t size1, jx_t x) {
  if (jx_is_error(x)) return x;
  const jx_aval *a = &x->aval;
  int64_t shape[JX_MAX_RANK];
  if (a->ndim + 1 > JX_MAX_RANK) return jx_error_new(OP ": rank exceeds %d", JX_MAX_RANK);
  for (int i = 0, k = 0; i < a->ndim; i++) {
    if (i == src) {
      shape[k++] = size1, shape[k++] = a->shape[i] / size1;
    } else {
      shape[k++] = a->shape[i];
    }
  }
  return jx_lax_reshape(x, a->ndim + 1, shape);
}

/* dim src of x merged into dim dst (numbered without src), as its major part */
static jx_t axis_into(int src, int dst, jx_t x) {
  if (jx_is_error(x)) return x;
  const jx_aval *a = &x->aval;
  int perm[JX_MAX_RANK], k = 0;
  int64_t shape[JX_MAX_RANK];
  for (int i = 0; i < a->ndim; i++)
    if (i != src) {
      if (k == dst) perm[k++] = src;
      perm[k++] = i;
    }
  if (k == dst) perm[k++] = src;
  for (int i = 0, m = 0; i < a->ndim; i++)
    if (i != src) shape[m++] = a->shape[i];
  shape[dst] *= a->shape[src];
  return jx_lax_reshape(jx_lax_transpose(x, perm), a->ndim - 1, shape);
}

static void swap01(int8_t *dst, const int8_t *spec, int rank) {
  memcpy(dst, spec, (size_t)rank);
  dst[0] = spec[1], dst[1] = spec[0];
}

/* JAX's _conv_general_dilated_transpose_lhs */
static jx_t transpose_lhs(jx_t g, jx_t rhs, const jx_aval *lav, const jx_params *pa) {
  const int nsp = pa->conv.nsp, rank = nsp + 2;
  const int8_t *rs = pa->conv.rhs;
  int64_t G = pa->conv.fgc > 1 ? pa->conv.fgc : pa->conv.bgc;
  if (G > 1) rhs = axis_into(rs[0], rs[1], axis_out_of(rs[0], G, rhs));
  if (jx_is_error(rhs)) return rhs;
  jx_params q;
  jx_params_init(&q, JX_PK_CONV);
  q.conv.nsp = (int8_t)nsp, q.conv.fgc = (int32_t)G, q.conv.bgc = 1;
  memcpy(q.conv.lhs, pa->conv.out, (size_t)rank);
  swap01(q.conv.rhs, rs, rank);
  memcpy(q.conv.out, pa->conv.lhs, (size_t)rank);
  int revd[JX_MAX_RANK];
  for (int s = 0; s < nsp; s++) {
    int64_t before, after;
    jx_vjp_lhs_padding(lav->shape[pa->conv.lhs[s + 2]], rhs->aval.shape[rs[s + 2]], pa->conv.stride[s],
                       g->aval.shape[pa->conv.out[s + 2]], pa->conv.lo[s], pa->conv.lhs_dil[s],
                       pa->conv.rhs_dil[s], &before, &after);
    q.conv.lo[s] = (int32_t)before, q.conv.hi[s] = (int32_t)after;
    q.conv.stride[s] = pa->conv.lhs_dil[s], q.conv.lhs_dil[s] = pa->conv.stride[s];
    q.conv.rhs_dil[s] = pa->conv.rhs_dil[s];
    revd[s] = rs[s + 2];
  }
  jx_t out = jx_lax_conv(g, jx_lax_rev(rhs, nsp, revd), &q);
  if (pa->conv.bgc > 1)
    out = axis_into(pa->conv.lhs[1], pa->conv.lhs[0], axis_out_of(pa->conv.lhs[1], pa->conv.bgc, out));
  return out;
}

/* JAX's _conv_general_dilated_transpose_rhs */
static jx_t transpose_rhs(jx_t g, jx_t lhs, const jx_aval *rav, const jx_params *pa) {
  const int nsp = pa->conv.nsp, rank = nsp + 2;
  if (jx_aval_size(&g->aval) == 0) return jx_lax_zeros(rav);
  jx_params q;
  jx_params_init(&q, JX_PK_CONV);
  q.conv.nsp = (int8_t)nsp;
  q.conv.fgc = pa->conv.bgc, q.conv.bgc = pa->conv.fgc; /* the groups swap roles */
  swap01(q.conv.lhs, pa->conv.lhs, rank);
  swap01(q.conv.rhs, pa->conv.out, rank);
  swap01(q.conv.out, pa->conv.rhs, rank);
  for (int s = 0; s < nsp; s++) {
    int64_t ld = jx_dilate_dim(lhs->aval.shape[pa->conv.lhs[s + 2]], pa->conv.lhs_dil[s]);
    int64_t rd = jx_dilate_dim(rav->shape[pa->conv.rhs[s + 2]], pa->conv.rhs_dil[s]);
    int64_t od = jx_dilate_dim(g->aval.shape[pa->conv.out[s + 2]], pa->conv.stride[s]);
    q.conv.lo[s] = pa->conv.lo[s];
    q.conv.hi[s] = (int32_t)((od - ld) + (rd - pa->conv.lo[s] - 1));
    q.conv.stride[s] = pa->conv.rhs_dil[s], q.conv.lhs_dil[s] = pa->conv.lhs_dil[s];
    q.conv.rhs_dil[s] = pa->conv.stride[s];
  }
  return jx_lax_conv(lhs, g, &q);
}

static jx_t conv_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                           const jx_params *pa, jx_t *cts) {
  (void)p, (void)nin;
  if (!in[0] && !in[1]) return jx_error_new(OP ": transpose with both operands linear");
  if (!ct[0]) return NULL;
  if (!in[0]) cts[0] = transpose_lhs(ct[0], in[1], &av[0], pa);
  if (!in[1]) cts[1] = transpose_rhs(ct[0], in[0], &av[1], pa);
  for (int i = 0; i < 2; i++)
    if (cts[i] && jx_ok(cts[i]) && !jx_aval_eq(&cts[i]->aval, &av[i]))
      return jx_rule_error(OP " transpose", av, 2, "internal: cotangent of operand %d has the wrong shape",
                           i);
  return NULL;
}

/* ----------------------------------------------------------- batching */
/* A mapped axis of size 0: the result is the unbatched one's type with an
 * empty leading axis (the reshapes of the general rule cannot split a 0
 * dim: its other factor is unknown). */
static jx_t conv_batch_empty(jx_prim p, const jx_t *in, const int *bd, const jx_params *pa, jx_t *out,
                             int *obd) {
  jx_aval a[2], o;
  for (int i = 0; i < 2; i++) {
    a[i] = in[i]->aval;
    if (bd[i] == JX_NONE) continue;
    memmove(a[i].shape + bd[i], a[i].shape + bd[i] + 1, sizeof(int64_t) * (size_t)(a[i].ndim - bd[i] - 1));
    a[i].ndim--;
  }
  jx_t e = conv_abstract(p, a, 2, pa, &o);
  if (e) return e;
  memmove(o.shape + 1, o.shape, sizeof(int64_t) * (size_t)o.ndim);
  o.shape[0] = 0, o.ndim++;
  out[0] = jx_array_new(&o);
  obd[0] = 0;
  return jx_ok(out[0]) ? NULL : out[0];
}

static jx_t conv_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                       int *obd) {
  (void)nin;
  const int8_t *ls = pa->conv.lhs, *rs = pa->conv.rhs, *os = pa->conv.out;
  const int lb = bd[0], rb = bd[1];
  const int64_t fgc = pa->conv.fgc, bgc = pa->conv.bgc;
  jx_params q = *pa;
  jx_t lhs = in[0], rhs = in[1], r;
  if ((lb != JX_NONE ? lhs->aval.shape[lb] : rhs->aval.shape[rb]) == 0)
    return conv_batch_empty(p, in, bd, pa, out, obd);
  if (lb != JX_NONE && rb != JX_NONE) { /* the mapped axis becomes more groups */
    int64_t B = lhs->aval.shape[lb];
    if (bgc > 1) {
      lhs = axis_into(lb, ls[0], lhs), q.conv.bgc = (int32_t)(bgc * B);
    } else {
      lhs = axis_into(lb, ls[1], lhs), q.conv.fgc = (int32_t)(fgc * B);
    }
    r = axis_out_of(os[1], B, jx_lax_conv(lhs, axis_into(rb, rs[0], rhs), &q));
    obd[0] = os[1];
  } else if (lb != JX_NONE) { /* more images (inside each batch group) */
    int64_t B = lhs->aval.shape[lb];
    if (bgc == 1) {
      lhs = axis_into(lb, ls[0], lhs);
    } else {
      lhs = axis_out_of(ls[0] + (lb <= ls[0]), bgc, lhs);
      lhs = axis_into(lb + (ls[0] < lb), ls[0] + 1, lhs);
      lhs = axis_into(ls[0], ls[0], lhs);
    }
    r = axis_out_of(os[0], B, jx_lax_conv(lhs, rhs, pa));
    obd[0] = os[0];
  } else { /* more output features (inside each group) */
    int64_t B = rhs->aval.shape[rb];
    if (fgc == 1 && bgc == 1) {
      r = axis_out_of(os[1], B, jx_lax_conv(lhs, axis_into(rb, rs[0], rhs), pa));
    } else {
      int64_t G = fgc > 1 ? fgc : bgc;
      rhs = axis_out_of(rs[0] + (rb <= rs[0]), G, rhs);
      rhs = axis_into(rb + (rs[0] < rb), rs[0] + 1, rhs);
      rhs = axis_into(rs[0], rs[0], rhs);
      r = axis_out_of(os[1], G, jx_lax_conv(lhs, rhs, pa));
      r = axis_into(os[1], os[1] + 1, axis_out_of(os[1] + 1, B, r));
    }
    obd[0] = os[1];
  }
  out[0] = r;
  return NULL;
}

static void put_spec(jx_strbuf *b, const char *name, const int8_t *v, int n) {
  jx_strbuf_put(b, "%s=(", name);
  for (int i = 0; i < n; i++) jx_strbuf_put(b, "%s%d", i ? ", " : "", v[i]);
  jx_strbuf_put(b, n == 1 ? ",)" : ")");
}

static void conv_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  const int n = pa->conv.nsp;
  jx_put_i32s(b, "window_strides", pa->conv.stride, n);
  jx_strbuf_put(b, " padding=(");
  for (int s = 0; s < n; s++) jx_strbuf_put(b, "%s(%d, %d)", s ? ", " : "", pa->conv.lo[s], pa->conv.hi[s]);
  jx_strbuf_put(b, n == 1 ? ",)" : ")");
  jx_put_i32s(b, "lhs_dilation", pa->conv.lhs_dil, n);
  jx_put_i32s(b, "rhs_dilation", pa->conv.rhs_dil, n);
  jx_strbuf_put(b, " dimension_numbers=ConvDimensionNumbers(");
  put_spec(b, "lhs_spec", pa->conv.lhs, n + 2);
  put_spec(b, ", rhs_spec", pa->conv.rhs, n + 2);
  put_spec(b, ", out_spec", pa->conv.out, n + 2);
  jx_strbuf_put(b, ") feature_group_count=%d batch_group_count=%d", pa->conv.fgc, pa->conv.bgc);
}

const jx_rules jx_rules_conv_general_dilated = {
    .name = OP,
    .nin = 2,
    .nout = 1,
    .abstract_eval = conv_abstract,
    .impl = conv_impl,
    .jvp = conv_jvp,
    .transpose = conv_transpose,
    .batch = conv_batch,
    .params_kind = JX_PK_CONV,
    .print_params = conv_print,
    .lower = {.kind = JX_LOWER_CALL, .epilogue = conv_takes_epilogue, .impl_epilogue = conv_impl_epilogue}};
