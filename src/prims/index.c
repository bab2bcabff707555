/* Indexing primitives: gather (take along an axis), its transpose
 * scatter_add, and iota. Indices wrap once when negative and are then
 * clamped into range, so no index can read or write out of bounds. */
#include "prims/prims.h"

#define ERR(...) jx_rule_error(jx_prim_names[p], in, nin, __VA_ARGS__)

/* Shape of x with dimension `axis` replaced by the index array's shape. */
static jx_t indexed_shape(jx_prim p, const jx_aval *in, int nin, const jx_aval *x, const jx_aval *idx,
                          int axis, jx_aval *out) {
  if (!jx_dtype_is_int(idx->dtype)) return ERR("indices must have an integer dtype");
  if (axis < 0 || axis >= x->ndim) return ERR("axis %d out of range for rank %d", axis, x->ndim);
  if (x->ndim - 1 + idx->ndim > JX_MAX_RANK) return ERR("result rank exceeds %d", JX_MAX_RANK);
  *out = (jx_aval){.dtype = x->dtype, .weak = x->weak};
  for (int d = 0; d < axis; d++) out->shape[out->ndim++] = x->shape[d];
  for (int d = 0; d < idx->ndim; d++) out->shape[out->ndim++] = idx->shape[d];
  for (int d = axis + 1; d < x->ndim; d++) out->shape[out->ndim++] = x->shape[d];
  return NULL;
}

static jx_t gather_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  jx_t e = indexed_shape(p, in, nin, &in[0], &in[1], pa->gather.axis, out);
  if (e) return e;
  if (in[0].shape[pa->gather.axis] == 0 && jx_aval_size(&in[1]) > 0)
    return ERR("cannot take from an empty axis");
  return NULL;
}

/* idx (any int dtype) -> int64, wrapped once and clamped into [0, n). */
static int64_t *clamped_indices(jx_t idx, int64_t n) {
  int64_t k = jx_aval_size(&idx->aval);
  int64_t *r = jx_malloc(sizeof(int64_t) * (size_t)(k ? k : 1));
  if (!r) return NULL;
  jx_cpu_convert(idx->aval.dtype, JX_I64, k, jx_data(idx), r);
  for (int64_t i = 0; i < k; i++) {
    int64_t v = r[i] < 0 ? r[i] + n : r[i];
    r[i] = v < 0 ? 0 : v >= n ? n - 1 : v;
  }
  return r;
}

static void split3(const jx_aval *a, int axis, int64_t *outer, int64_t *inner) {
  *outer = *inner = 1;
  for (int d = 0; d < axis; d++) *outer *= a->shape[d];
  for (int d = axis + 1; d < a->ndim; d++) *inner *= a->shape[d];
}

static jx_t gather_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin;
  const jx_aval *x = &in[0]->aval;
  int64_t n = x->shape[pa->gather.axis], outer, inner;
  int64_t *idx = clamped_indices(in[1], n);
  if (!idx) return jx_error_new("gather: out of memory");
  split3(x, pa->gather.axis, &outer, &inner);
  jx_cpu_gather(jx_dtype_size(x->dtype), outer, n, inner, jx_data(in[0]), jx_aval_size(&in[1]->aval), idx,
                jx_data(out[0]));
  jx_free(idx);
  return NULL;
}

static jx_t gather_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                       jx_t *tout) {
  (void)nin;
  jx_bind(p, 2, x, pa, 1, out);
  tout[0] = t[0] ? jx_bind1(p, 2, (jx_t[]){t[0], x[1]}, pa) : NULL;
  return NULL;
}

static jx_t gather_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                             const jx_params *pa, jx_t *cts) {
  (void)p, (void)nin;
  if (!in[1]) return jx_error_new("gather: transpose with respect to the indices");
  if (ct[0]) cts[0] = jx_lax_scatter_add(ct[0], in[1], pa->gather.axis, av[0].ndim, av[0].shape);
  return NULL;
}

/* -------------------------------------------------------- scatter_add */
static jx_t scatter_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  char err[256];
  if (jx_shape_check(pa->scatter.ndim, pa->scatter.shape, in[0].dtype, err, sizeof err))
    return ERR("%s", err);
  if (in[0].dtype == JX_BOOL) return ERR("bool updates are not supported");
  jx_aval target = {.dtype = in[0].dtype, .ndim = pa->scatter.ndim}, expect;
  memcpy(target.shape, pa->scatter.shape, sizeof(int64_t) * (size_t)pa->scatter.ndim);
  jx_t e = indexed_shape(p, in, nin, &target, &in[1], pa->scatter.axis, &expect);
  if (e) return e;
  if (!jx_aval_eq(&expect, &in[0])) {
    char s[160];
    return ERR("updates must have shape %s", jx_aval_str(&expect, s, sizeof s));
  }
  if (target.shape[pa->scatter.axis] == 0 && jx_aval_size(&in[1]) > 0)
    return ERR("cannot scatter into an empty axis");
  out[0] = target;
  out[0].weak = in[0].weak;
  return NULL;
}

static jx_t scatter_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin;
  const jx_aval *o = &out[0]->aval;
  int64_t n = o->shape[pa->scatter.axis], outer, inner;
  jx_cpu_fill(o->dtype, jx_aval_size(o), 0, jx_data(out[0]));
  if (jx_aval_size(o) == 0) return NULL;
  int64_t *idx = clamped_indices(in[1], n);
  if (!idx) return jx_error_new("scatter_add: out of memory");
  split3(o, pa->scatter.axis, &outer, &inner);
  jx_cpu_scatter_add(o->dtype, outer, n, inner, jx_data(in[0]), jx_aval_size(&in[1]->aval), idx,
                     jx_data(out[0]));
  jx_free(idx);
  return NULL;
}

static jx_t scatter_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                              const jx_params *pa, jx_t *cts) {
  (void)p, (void)av, (void)nin;
  if (!in[1]) return jx_error_new("scatter_add: transpose with respect to the indices");
  if (ct[0]) cts[0] = jx_lax_gather(ct[0], in[1], pa->scatter.axis);
  return NULL;
}

/* --------------------------------------------------------------- iota */
static jx_t iota_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  char err[256];
  if (jx_shape_check(pa->iota.ndim, pa->iota.shape, pa->iota.dtype, err, sizeof err)) return ERR("%s", err);
  if (pa->iota.axis < 0 || pa->iota.axis >= pa->iota.ndim)
    return ERR("axis %d out of range for rank %d", pa->iota.axis, pa->iota.ndim);
  if (pa->iota.dtype == JX_BOOL) return ERR("iota of bool");
  out[0] = (jx_aval){.dtype = pa->iota.dtype, .ndim = pa->iota.ndim};
  memcpy(out[0].shape, pa->iota.shape, sizeof(int64_t) * (size_t)pa->iota.ndim);
  return NULL;
}

static jx_t iota_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)in, (void)nin;
  const jx_aval *o = &out[0]->aval;
  int64_t n = o->shape[pa->iota.axis], outer, inner;
  split3(o, pa->iota.axis, &outer, &inner);
  /* one row 0..n-1, then broadcast it with a strided copy */
  jx_buffer *row = jx_buffer_new(sizeof(double) * (size_t)(n ? n : 1));
  if (!row) return jx_error_new("iota: out of memory");
  double *r = row->data;
  for (int64_t i = 0; i < n; i++) r[i] = (double)i;
  size_t es = jx_dtype_size(o->dtype);
  jx_buffer *conv = jx_buffer_new(es * (size_t)(n ? n : 1));
  if (!conv) {
    jx_buffer_release(row);
    return jx_error_new("iota: out of memory");
  }
  jx_cpu_convert(JX_F64, o->dtype, n, r, conv->data);
  int64_t shape[3] = {outer, n, inner}, st[3] = {0, 1, 0};
  jx_cpu_strided_copy(es, 3, shape, conv->data, 0, st, jx_data(out[0]));
  jx_buffer_release(row);
  jx_buffer_release(conv);
  return NULL;
}

static jx_t nodiff_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                       jx_t *tout) {
  (void)t;
  jx_bind(p, nin, x, pa, 1, out);
  tout[0] = NULL;
  return NULL;
}

static jx_t scatter_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                        jx_t *tout) {
  (void)nin;
  jx_bind(p, 2, x, pa, 1, out);
  tout[0] = t[0] ? jx_bind1(p, 2, (jx_t[]){t[0], x[1]}, pa) : NULL;
  return NULL;
}

/* ------------------------------------------------------------ batching */
/* Per-example indices as i64, wrapped once and clamped into [0, n): the
 * same rule the kernels apply, written with ops so it batches. */
static jx_t clamp_wrap(jx_t idx, int64_t n) {
  idx = jx_lax_convert(idx, JX_I64);
  jx_t nn = jx_lax_const(JX_I64, (double)n), zero = jx_lax_const(JX_I64, 0);
  jx_t w = jx_lax_select(jx_lax_binary(JX_P_lt, idx, zero), jx_lax_binary(JX_P_add, idx, nn), idx);
  w = jx_lax_binary(JX_P_max, w, zero);
  return jx_lax_binary(JX_P_min, w, jx_lax_const(JX_I64, (double)(n > 0 ? n - 1 : 0)));
}

/* idx [B, ...] + b*n: indices into a [B*n, ...] flattening of batch and axis */
static jx_t flat_indices(jx_t idx, int64_t B, int64_t n) {
  jx_t off = jx_lax_binary(JX_P_mul, jx_lax_iota(JX_I64, 1, &B, 0), jx_lax_const(JX_I64, (double)n));
  int r = idx->aval.ndim;
  int64_t s[JX_MAX_RANK];
  s[0] = B;
  for (int d = 1; d < r; d++) s[d] = 1;
  return jx_lax_binary(JX_P_add, idx, jx_lax_reshape(off, r, s));
}

static jx_t gather_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                         int *obd) {
  (void)nin;
  int bx = bd[0], bi = bd[1], ax = pa->gather.axis;
  jx_params q = *pa;
  if (bi == JX_NONE) { /* only x batched: gather along the shifted axis */
    q.gather.axis = jx_bdim_shift(ax, bx);
    out[0] = jx_bind1(p, 2, in, &q);
    obd[0] = bx < q.gather.axis ? bx : bx - 1 + in[1]->aval.ndim;
    return NULL;
  }
  if (bx == JX_NONE) { /* only the indices batched: their dims land at axis */
    out[0] = jx_bind1(p, 2, in, pa);
    obd[0] = ax + bi;
    return NULL;
  }
  /* both: merge batch and axis into one dimension and offset the indices */
  if (in[0]->aval.ndim + in[1]->aval.ndim - 2 > JX_MAX_RANK) /* the result's (perm's) rank */
    return jx_error_new("gather: batched result rank exceeds %d", JX_MAX_RANK);
  int64_t B = jx_batch_size(in, bd, 2);
  jx_t x = jx_moveaxis(in[0], bx, 0); /* [B, before, n, after] */
  int rx = x->aval.ndim - 1, nid = in[1]->aval.ndim - 1;
  int64_t n = x->aval.shape[1 + ax];
  x = jx_moveaxis(x, 1 + ax, 1); /* [B, n, before, after] */
  int64_t s[JX_MAX_RANK];
  s[0] = B * n;
  for (int d = 2; d <= rx; d++) s[d - 1] = x->aval.shape[d];
  x = jx_lax_reshape(x, rx, s);
  jx_t idx = flat_indices(clamp_wrap(jx_moveaxis(in[1], bi, 0), n), B, n);
  q.gather.axis = 0;
  jx_t g = jx_bind1(p, 2, (jx_t[]){x, idx}, &q); /* [B, ids, before, after] */
  int perm[JX_MAX_RANK], k = 0;
  perm[k++] = 0;
  for (int d = 0; d < ax; d++) perm[k++] = 1 + nid + d;
  for (int d = 0; d < nid; d++) perm[k++] = 1 + d;
  for (int d = ax; d < rx - 1; d++) perm[k++] = 1 + nid + d;
  out[0] = jx_lax_transpose(g, perm);
  obd[0] = 0;
  return NULL;
}

static jx_t scatter_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                          int *obd) {
  (void)nin;
  int bu = bd[0], bi = bd[1], ax = pa->scatter.axis;
  int64_t B = jx_batch_size(in, bd, 2);
  jx_t u = jx_batch_to_front(in[0], bu, B); /* [B, before, ids, after] */
  jx_params q = *pa;
  if (pa->scatter.ndim + 1 > JX_MAX_RANK)
    return jx_error_new("scatter_add: batched rank exceeds %d", JX_MAX_RANK);
  obd[0] = 0;
  if (bi == JX_NONE) {
    q.scatter.axis = ax + 1;
    q.scatter.ndim = (int8_t)(pa->scatter.ndim + 1);
    q.scatter.shape[0] = B;
    memcpy(q.scatter.shape + 1, pa->scatter.shape, sizeof(int64_t) * (size_t)pa->scatter.ndim);
    out[0] = jx_bind1(p, 2, (jx_t[]){u, in[1]}, &q);
    return NULL;
  }
  int nid = in[1]->aval.ndim - 1, rt = pa->scatter.ndim;
  int64_t n = pa->scatter.shape[ax];
  jx_t idx = flat_indices(clamp_wrap(jx_moveaxis(in[1], bi, 0), n), B, n);
  int perm[JX_MAX_RANK], k = 0; /* u -> [B, ids, before, after] */
  perm[k++] = 0;
  for (int d = 0; d < nid; d++) perm[k++] = 1 + ax + d;
  for (int d = 0; d < ax; d++) perm[k++] = 1 + d;
  for (int d = ax + 1; d < rt; d++) perm[k++] = nid + d;
  u = jx_lax_transpose(u, perm);
  q.scatter.axis = 0;
  q.scatter.ndim = (int8_t)rt;
  q.scatter.shape[0] = B * n;
  k = 1;
  for (int d = 0; d < rt; d++)
    if (d != ax) q.scatter.shape[k++] = pa->scatter.shape[d];
  jx_t s = jx_bind1(p, 2, (jx_t[]){u, idx}, &q); /* [B*n, before, after] */
  int64_t sh[JX_MAX_RANK];
  sh[0] = B, sh[1] = n;
  for (int d = 1; d < rt; d++) sh[d + 1] = q.scatter.shape[d];
  out[0] = jx_moveaxis(jx_lax_reshape(s, rt + 1, sh), 1, 1 + ax);
  return NULL;
}

static void gather_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  jx_strbuf_put(b, " dimension=%d", pa->gather.axis);
}

static void scatter_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  jx_strbuf_put(b, " dimension=%d", pa->scatter.axis);
  jx_put_ints(b, "shape", pa->scatter.shape, pa->scatter.ndim);
}

static void iota_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  jx_strbuf_put(b, " dimension=%d dtype=%s", pa->iota.axis, jx_dtype_name(pa->iota.dtype));
  jx_put_ints(b, "shape", pa->iota.shape, pa->iota.ndim);
}

const jx_rules jx_rules_gather = {.name = "gather",
                                  .nin = 2,
                                  .nout = 1,
                                  .abstract_eval = gather_abstract,
                                  .impl = gather_impl,
                                  .jvp = gather_jvp,
                                  .transpose = gather_transpose,
                                  .batch = gather_batch,
                                  .params_kind = JX_PK_GATHER,
                                  .print_params = gather_print,
                                  .lower = {.kind = JX_LOWER_CALL}};
const jx_rules jx_rules_scatter_add = {.name = "scatter_add",
                                       .nin = 2,
                                       .nout = 1,
                                       .abstract_eval = scatter_abstract,
                                       .impl = scatter_impl,
                                       .jvp = scatter_jvp,
                                       .transpose = scatter_transpose,
                                       .batch = scatter_batch,
                                       .params_kind = JX_PK_SCATTER,
                                       .print_params = scatter_print,
                                       .lower = {.kind = JX_LOWER_CALL}};
const jx_rules jx_rules_iota = {.name = "iota",
                                .nin = 0,
                                .nout = 1,
                                .abstract_eval = iota_abstract,
                                .impl = iota_impl,
                                .jvp = nodiff_jvp,
                                .params_kind = JX_PK_IOTA,
                                .print_params = iota_print,
                                .lower = {.kind = JX_LOWER_IOTA}};
