/* Indexing ops: take, one_hot, dynamic slices, gather/scatter and the
 * .at[] updates, take_along_axis, segments, pad. */
#include "ops/ops.h"

#include <math.h>

static int norm_axis(int axis, int r) {
  int a = axis < 0 ? axis + r : axis;
  return a >= 0 && a < r ? a : -1;
}

jx_t jx_take(jx_t x, jx_t indices, int axis) {
  jx_t e = jx_op_check_array("take", x);
  if (!e) e = jx_op_check_array("take", indices);
  if (e) return e;
  char s[160];
  if (!jx_dtype_is_int(indices->aval.dtype))
    return jx_error_new("take: indices must be integers, got %s", jx_aval_str(&indices->aval, s, sizeof s));
  int r = x->aval.ndim, ax = axis < 0 ? axis + r : axis;
  if (ax < 0 || ax >= r)
    return jx_error_new("take: axis %d is out of bounds for an array of shape %s", axis,
                        jx_aval_str(&x->aval, s, sizeof s));
  return jx_lax_gather(x, indices, ax);
}

jx_t jx_one_hot(jx_t labels, int n) {
  jx_t e = jx_op_check_array("one_hot", labels);
  if (e) return e;
  if (n < 0) return jx_error_new("one_hot: number of classes must be >= 0, got %d", n);
  if (!jx_dtype_is_int(labels->aval.dtype)) return jx_error_new("one_hot: labels must be integers");
  /* the class iota counts in the labels' dtype: narrow ones (#19's i8 ...
   * u16) are widened first, exactly, so that it cannot wrap (u8 labels,
   * 300 classes: class 261 is not label 5) */
  if (jx_dtype_size(labels->aval.dtype) < 4) labels = jx_lax_convert(labels, JX_I32);
  const jx_aval *a = &labels->aval;
  if (a->ndim + 1 > JX_MAX_RANK) return jx_error_new("one_hot: result rank too large");
  int64_t shape[JX_MAX_RANK];
  memcpy(shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
  shape[a->ndim] = n;
  jx_t iota = jx_lax_iota(a->dtype, a->ndim + 1, shape, a->ndim);
  if (!jx_ok(iota)) return iota; /* (its aval is not a shape to broadcast to) */
  jx_t lab = jx_expand_dims(labels, -1);
  return jx_op_cast(jx_lax_binary(JX_P_eq, jx_lax_broadcast_to_aval(lab, &iota->aval), iota), JX_F32, false);
}

/* ------------------------------------------------------- dynamic slices */
/* Every start a 0-d integer array, negative ones wrapped once (JAX's
 * lax.dynamic_slice does; the primitive then clamps). */
static jx_t starts_of(const char *op, jx_t x, const jx_t *starts, jx_t *out) {
  const jx_aval *a = &x->aval;
  if (a->ndim > 0 && !starts)
    return jx_error_new("%s: start_indices is NULL for an operand of rank %d", op, a->ndim);
  for (int d = 0; d < a->ndim; d++) {
    jx_t s = starts[d], e = jx_op_check_array(op, s);
    if (e) return e;
    char sb[64], xb[160];
    if (s->aval.ndim != 0 || !jx_dtype_is_int(s->aval.dtype))
      return jx_error_new("%s: start index %d must be a 0-d integer array, got %s (operand %s)", op, d,
                          jx_aval_str(&s->aval, sb, sizeof sb), jx_aval_str(a, xb, sizeof xb));
    jx_dtype dt = s->aval.dtype;
    if (jx_has_exact(s)) s = jx_op_cast_for(op, s, dt, false);
    out[d] = jx_lax_wrap_index(s, a->shape[d]);
  }
  return NULL;
}

jx_t jx_dynamic_slice(jx_t x, const jx_t *start_indices, const int64_t *sizes) {
  jx_t e = jx_op_check_array("dynamic_slice", x), s[JX_MAX_RANK];
  if (e) return e;
  if (!sizes && x->aval.ndim > 0) return jx_error_new("dynamic_slice: slice sizes are NULL");
  e = starts_of("dynamic_slice", x, start_indices, s);
  return e ? e : jx_lax_dynamic_slice(x, s, sizes);
}

jx_t jx_dynamic_update_slice(jx_t x, jx_t update, const jx_t *start_indices) {
  jx_t e = jx_op_check_array("dynamic_update_slice", x), s[JX_MAX_RANK];
  if (!e) e = jx_op_check_array("dynamic_update_slice", update);
  if (e) return e;
  e = starts_of("dynamic_update_slice", x, start_indices, s);
  return e ? e : jx_lax_dynamic_update_slice(x, update, s);
}

/* starts: `start` at axis, 0 elsewhere */
static jx_t in_dim(const char *op, jx_t x, jx_t start, int *axis, jx_t *starts) {
  jx_t e = jx_op_check_array(op, x);
  if (e) return e;
  int r = x->aval.ndim, ax = norm_axis(*axis, r);
  char s[160];
  if (ax < 0)
    return jx_error_new("%s: axis %d is out of bounds for an array of shape %s", op, *axis,
                        jx_aval_str(&x->aval, s, sizeof s));
  for (int d = 0; d < r; d++) starts[d] = d == ax ? start : jx_scalar_of(JX_I32, 0);
  *axis = ax;
  return NULL;
}

jx_t jx_dynamic_slice_in_dim(jx_t x, jx_t start, int64_t size, int axis) {
  jx_t starts[JX_MAX_RANK], e = in_dim("dynamic_slice_in_dim", x, start, &axis, starts);
  if (e) return e;
  int64_t sizes[JX_MAX_RANK];
  for (int d = 0; d < x->aval.ndim; d++) sizes[d] = d == axis ? size : x->aval.shape[d];
  return jx_dynamic_slice(x, starts, sizes);
}

jx_t jx_dynamic_update_slice_in_dim(jx_t x, jx_t update, jx_t start, int axis) {
  jx_t starts[JX_MAX_RANK], e = in_dim("dynamic_update_slice_in_dim", x, start, &axis, starts);
  return e ? e : jx_dynamic_update_slice(x, update, starts);
}

jx_t jx_dynamic_index_in_dim(jx_t x, jx_t index, int axis, bool keepdims) {
  jx_t starts[JX_MAX_RANK], e = in_dim("dynamic_index_in_dim", x, index, &axis, starts);
  if (e) return e;
  jx_t y = jx_dynamic_slice_in_dim(x, index, 1, axis);
  return keepdims ? y : jx_squeeze(y, axis);
}

/* ---------------------------------------------------- gather / scatter */
/* Copy a dims list into params (count checked), and the index vector dim
 * (negative from the end; the rank: an implicit trailing 1). */
static jx_t dims_in(const char *op, const char *what, int n, const int *v, int8_t *pn, int8_t *pv) {
  if (n < 0 || n > JX_MAX_RANK) return jx_error_new("%s: %d %s (at most %d)", op, n, what, JX_MAX_RANK);
  *pn = (int8_t)n;
  for (int i = 0; i < n; i++) {
    if (v[i] < -128 || v[i] > 127) return jx_error_new("%s: %s entry %d is out of range", op, what, v[i]);
    pv[i] = (int8_t)v[i];
  }
  return NULL;
}

static jx_t gs_common(const char *op, jx_t x, jx_t idx, int ivd, jx_gather_mode mode, jx_params *q) {
  jx_t e = jx_op_check_array(op, x);
  if (!e) e = jx_op_check_array(op, idx);
  if (e) return e;
  int ri = idx->aval.ndim;
  if (ivd < 0) ivd += ri;
  if (ivd < 0 || ivd > ri)
    return jx_error_new("%s: index_vector_dim out of range for indices of rank %d", op, ri);
  if (mode < JX_GATHER_CLIP || mode > JX_GATHER_PROMISE_IN_BOUNDS)
    return jx_error_new("%s: unknown mode %d", op, mode);
  q->gather.ivd = (int8_t)ivd;
  q->gather.mode = (int8_t)(mode == JX_GATHER_FILL_OR_DROP ? JX_GATHER_FILL_OR_DROP : JX_GATHER_CLIP);
  return NULL;
}

jx_t jx_gather(jx_t operand, jx_t start_indices, const jx_gather_dnums *dn, const int64_t *slice_sizes,
               jx_gather_mode mode, double fill_value) {
  const char *op = "gather";
  jx_params q;
  jx_params_init(&q, JX_PK_GATHER);
  if (!dn || !slice_sizes) return jx_error_new("gather: dimension numbers or slice sizes are NULL");
  jx_t e = gs_common(op, operand, start_indices, dn->index_vector_dim, mode, &q);
  if (!e)
    e = dims_in(op, "offset_dims", dn->noffset_dims, dn->offset_dims, &q.gather.noffset, q.gather.offset);
  if (!e)
    e = dims_in(op, "collapsed_slice_dims", dn->ncollapsed_slice_dims, dn->collapsed_slice_dims,
                &q.gather.ncollapsed, q.gather.collapsed);
  if (!e)
    e = dims_in(op, "start_index_map", dn->nstart_index_map, dn->start_index_map, &q.gather.nmap,
                q.gather.map);
  if (e) return e;
  for (int d = 0; d < operand->aval.ndim; d++) q.gather.slice[d] = slice_sizes[d];
  q.gather.fill = q.gather.mode == JX_GATHER_CLIP ? 0 : fill_value;
  return jx_lax_gather_p(operand, start_indices, &q);
}

static jx_t scatter_op(jx_prim p, jx_t x, jx_t idx, jx_t u, const jx_scatter_dnums *dn, jx_gather_mode mode) {
  const char *op = jx_prim_names[p];
  jx_params q;
  jx_params_init(&q, JX_PK_SCATTER);
  if (!dn) return jx_error_new("%s: dimension numbers are NULL", op);
  jx_t e = gs_common(op, x, idx, dn->index_vector_dim, mode, &q);
  if (!e) e = jx_op_check_array(op, u);
  if (!e)
    e = dims_in(op, "update_window_dims", dn->nupdate_window_dims, dn->update_window_dims, &q.scatter.noffset,
                q.scatter.offset);
  if (!e)
    e = dims_in(op, "inserted_window_dims", dn->ninserted_window_dims, dn->inserted_window_dims,
                &q.scatter.ncollapsed, q.scatter.collapsed);
  if (!e)
    e = dims_in(op, "scatter_dims_to_operand_dims", dn->nscatter_dims_to_operand_dims,
                dn->scatter_dims_to_operand_dims, &q.scatter.nmap, q.scatter.map);
  return e ? e : jx_lax_scatter_p(p, x, idx, u, &q);
}

jx_t jx_scatter(jx_t x, jx_t idx, jx_t u, const jx_scatter_dnums *dn, jx_gather_mode mode) {
  return scatter_op(JX_P_scatter, x, idx, u, dn, mode);
}
jx_t jx_scatter_add(jx_t x, jx_t idx, jx_t u, const jx_scatter_dnums *dn, jx_gather_mode mode) {
  return scatter_op(JX_P_scatter_add, x, idx, u, dn, mode);
}
jx_t jx_scatter_mul(jx_t x, jx_t idx, jx_t u, const jx_scatter_dnums *dn, jx_gather_mode mode) {
  return scatter_op(JX_P_scatter_mul, x, idx, u, dn, mode);
}
jx_t jx_scatter_min(jx_t x, jx_t idx, jx_t u, const jx_scatter_dnums *dn, jx_gather_mode mode) {
  return scatter_op(JX_P_scatter_min, x, idx, u, dn, mode);
}
jx_t jx_scatter_max(jx_t x, jx_t idx, jx_t u, const jx_scatter_dnums *dn, jx_gather_mode mode) {
  return scatter_op(JX_P_scatter_max, x, idx, u, dn, mode);
}

/* --------------------------------------------------------------- .at[] */

/* x.at[:, ..., idx].op(values) along axis: a scatter with x's other dims
 * as the window, out-of-bounds updates dropped */
static jx_t at_update(jx_prim p, const char *op, jx_t x, jx_t idx, jx_t v, int axis) {
  jx_t e = jx_op_check_array(op, x);
  if (!e) e = jx_op_check_array(op, idx);
  if (!e) e = jx_op_check_array(op, v);
  if (e) return e;
  const jx_aval *a = &x->aval;
  int r = a->ndim, k = idx->aval.ndim, ax = norm_axis(axis, r);
  char s[160], si[160];
  jx_aval_str(a, s, sizeof s), jx_aval_str(&idx->aval, si, sizeof si);
  if (ax < 0) return jx_error_new("%s: axis %d is out of bounds for an array of shape %s", op, axis, s);
  if (!jx_dtype_is_int(idx->aval.dtype)) return jx_error_new("%s: indices must be integers, got %s", op, si);
  if (r - 1 + k > JX_MAX_RANK)
    return jx_error_new("%s: updates for %s at indices %s exceed rank %d", op, s, si, JX_MAX_RANK);
  if (jx_has_exact(idx)) idx = jx_op_cast_for(op, idx, idx->aval.dtype, false);
  int64_t us[JX_MAX_RANK];
  jx_params q;
  jx_params_init(&q, JX_PK_SCATTER);
  for (int d = 0, o = 0; d < r; d++) {
    if (d == ax) {
      for (int j = 0; j < k; j++) us[o++] = idx->aval.shape[j];
      continue;
    }
    q.scatter.offset[q.scatter.noffset++] = (int8_t)o;
    us[o++] = a->shape[d];
  }
  q.scatter.ncollapsed = q.scatter.nmap = 1;
  q.scatter.collapsed[0] = q.scatter.map[0] = (int8_t)ax;
  q.scatter.ivd = (int8_t)k;
  q.scatter.mode = JX_GATHER_FILL_OR_DROP;
  jx_t u = jx_broadcast_to(jx_op_cast_for(op, v, a->dtype, false), r - 1 + k, us);
  if (!jx_ok(u)) return u;
  return jx_lax_scatter_p(p, x, jx_lax_wrap_index(idx, a->shape[ax]), u, &q);
}

jx_t jx_at_add(jx_t x, jx_t indices, jx_t values, int axis) {
  return at_update(JX_P_scatter_add, "at_add", x, indices, values, axis);
}
jx_t jx_at_set(jx_t x, jx_t indices, jx_t values, int axis) {
  return at_update(JX_P_scatter, "at_set", x, indices, values, axis);
}
jx_t jx_at_mul(jx_t x, jx_t indices, jx_t values, int axis) {
  return at_update(JX_P_scatter_mul, "at_mul", x, indices, values, axis);
}
jx_t jx_at_min(jx_t x, jx_t indices, jx_t values, int axis) {
  return at_update(JX_P_scatter_min, "at_min", x, indices, values, axis);
}
jx_t jx_at_max(jx_t x, jx_t indices, jx_t values, int axis) {
  return at_update(JX_P_scatter_max, "at_max", x, indices, values, axis);
}
jx_t jx_at_get(jx_t x, jx_t indices, int axis) { return jx_take(x, indices, axis); }

/* JAX's fill value for an out-of-bounds take: NaN, the lowest signed, the
 * highest unsigned, true */
static double default_fill(jx_dtype dt) {
  switch (dt) {
    case JX_I8: return INT8_MIN;
    case JX_I16: return INT16_MIN;
    case JX_I32: return (double)INT32_MIN;
    case JX_I64: return -9223372036854775808.0;
    case JX_U8: return UINT8_MAX;
    case JX_U16: return UINT16_MAX;
    case JX_U32: return (double)UINT32_MAX;
    case JX_U64: return 0x1p64; /* (stored saturated: UINT64_MAX) */
    case JX_BOOL: return 1;
    default: return NAN;
  }
}

jx_t jx_take_along_axis(jx_t x, jx_t idx, int axis) {
  const char *op = "take_along_axis";
  jx_t e = jx_op_check_array(op, x);
  if (!e) e = jx_op_check_array(op, idx);
  if (e) return e;
  if (axis == JX_NONE) /* NumPy's axis=None: x flattened, 1-d indices */
    return jx_take_along_axis(jx_reshape(x, 1, (int64_t[]){-1}), idx, 0);
  const jx_aval *a = &x->aval, *ia = &idx->aval;
  int r = a->ndim, ax = norm_axis(axis, r);
  char s[160], si[160];
  jx_aval_str(a, s, sizeof s), jx_aval_str(ia, si, sizeof si);
  if (ax < 0) return jx_error_new("%s: axis %d is out of bounds for an array of shape %s", op, axis, s);
  if (!jx_dtype_is_int(ia->dtype)) return jx_error_new("%s: indices must be integers, got %s", op, si);
  if (ia->ndim != r || r + 1 > JX_MAX_RANK)
    return jx_error_new("%s: indices %s must have the rank of the array %s", op, si, s);
  int64_t S[JX_MAX_RANK + 1];
  for (int d = 0; d < r; d++) {
    int64_t n = a->shape[d], m = ia->shape[d];
    if (d != ax && n != m && n != 1 && m != 1)
      return jx_error_new("%s: indices %s do not broadcast against %s off axis %d", op, si, s, ax);
    S[d] = d == ax || n == 1 ? m : n;
  }
  int64_t nout = 1;
  for (int d = 0; d < r; d++) nout *= S[d];
  if (nout == 0 || a->shape[ax] == 0) /* nothing to read: every index is out of bounds */
    return jx_full(a->dtype, r, S, default_fill(a->dtype));
  if (jx_has_exact(idx)) idx = jx_op_cast_for(op, idx, ia->dtype, false);
  /* the iotas below count along every dim in the index dtype: narrow
   * ones (#19's i8 ... u16) are widened first, exactly, so they cannot wrap */
  if (jx_dtype_size(ia->dtype) < 4) idx = jx_lax_convert(idx, JX_I32);
  jx_dtype dt = idx->aval.dtype;
  jx_t cols[JX_MAX_RANK];
  S[r] = 1;
  jx_aval full = {.dtype = dt, .ndim = (int8_t)(r + 1)};
  memcpy(full.shape, S, sizeof(int64_t) * (size_t)(r + 1));
  for (int d = 0; d < r; d++) {
    jx_t c = d == ax ? jx_broadcast_to(jx_expand_dims(jx_lax_wrap_index(idx, a->shape[ax]), r), r + 1, S)
             : a->shape[d] == 1 ? jx_lax_broadcast_to_aval(jx_lax_const(dt, 0), &full)
                                : jx_lax_iota(dt, r + 1, S, d);
    cols[d] = c;
  }
  jx_params q;
  jx_params_init(&q, JX_PK_GATHER);
  q.gather.ncollapsed = q.gather.nmap = (int8_t)r;
  for (int d = 0; d < r; d++) q.gather.collapsed[d] = q.gather.map[d] = (int8_t)d, q.gather.slice[d] = 1;
  q.gather.ivd = (int8_t)r;
  q.gather.mode = JX_GATHER_FILL_OR_DROP;
  q.gather.fill = default_fill(a->dtype);
  return jx_lax_gather_p(x, jx_lax_concatenate(r, cols, r), &q);
}

/* ------------------------------------------------------------ segments */
static jx_t segment(jx_prim p, const char *op, jx_t data, jx_t ids, int64_t n, double init) {
  jx_t e = jx_op_check_array(op, data);
  if (!e) e = jx_op_check_array(op, ids);
  if (e) return e;
  const jx_aval *a = &data->aval;
  char s[160], si[160];
  jx_aval_str(a, s, sizeof s), jx_aval_str(&ids->aval, si, sizeof si);
  if (n < 0) return jx_error_new("%s: num_segments must be >= 0, got %lld", op, (long long)n);
  if (a->ndim < 1 || ids->aval.ndim != 1 || ids->aval.shape[0] != a->shape[0] ||
      !jx_dtype_is_int(ids->aval.dtype))
    return jx_error_new("%s: segment ids %s must be integers, one per row of data %s", op, si, s);
  if (jx_has_exact(ids)) ids = jx_op_cast_for(op, ids, ids->aval.dtype, false);
  jx_aval oa = {.dtype = a->dtype, .ndim = a->ndim};
  memcpy(oa.shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
  oa.shape[0] = n;
  jx_params q;
  jx_params_init(&q, JX_PK_SCATTER);
  for (int d = 1; d < a->ndim; d++) q.scatter.offset[q.scatter.noffset++] = (int8_t)d;
  q.scatter.ncollapsed = q.scatter.nmap = 1;
  q.scatter.ivd = 1;
  q.scatter.mode = JX_GATHER_FILL_OR_DROP;
  jx_t init_v = jx_lax_broadcast_to_aval(jx_lax_const(a->dtype, init), &oa);
  return jx_lax_scatter_p(p, init_v, ids, data, &q);
}

jx_t jx_segment_sum(jx_t data, jx_t segment_ids, int64_t num_segments) {
  return segment(JX_P_scatter_add, "segment_sum", data, segment_ids, num_segments, 0);
}
jx_t jx_segment_max(jx_t data, jx_t segment_ids, int64_t num_segments) {
  jx_dtype dt = jx_is_error(data) || data->kind == JX_VK_TREE ? JX_F32 : data->aval.dtype;
  /* the identity of max: -inf, the lowest integer, 0 unsigned, false */
  double lowest = jx_dtype_is_float(dt)                              ? -INFINITY
                  : jx_dtype_is_int(dt) && !jx_dtype_is_unsigned(dt) ? default_fill(dt)
                                                                     : 0;
  return segment(JX_P_scatter_max, "segment_max", data, segment_ids, num_segments, lowest);
}

/* ----------------------------------------------------------------- pad */
jx_t jx_pad(jx_t x, jx_t padding_value, const int64_t *lo, const int64_t *hi, const int64_t *interior) {
  jx_t e = jx_op_check_array("pad", x);
  if (!e) e = jx_op_check_array("pad", padding_value);
  if (e) return e;
  const jx_aval *a = &x->aval;
  char s[160];
  if (padding_value->aval.ndim != 0)
    return jx_error_new("pad: the padding value must be 0-d, got %s",
                        jx_aval_str(&padding_value->aval, s, sizeof s));
  /* negative lo/hi crop what the positive padding (interior first) made:
   * the pad primitive takes lo, hi >= 0, a slice takes off the rest */
  int64_t plo[JX_MAX_RANK], phi[JX_MAX_RANK], in[JX_MAX_RANK], start[JX_MAX_RANK], limit[JX_MAX_RANK];
  bool crop = false;
  for (int d = 0; d < a->ndim; d++) {
    int64_t l = lo ? lo[d] : 0, h = hi ? hi[d] : 0, it = interior ? interior[d] : 0, n = a->shape[d];
    if (it < 0)
      return jx_error_new("pad: interior padding %lld of dim %d of %s is negative", (long long)it, d,
                          jx_aval_str(a, s, sizeof s));
    int64_t full = (n ? n + (n - 1) * it : 0) + (l > 0 ? l : 0) + (h > 0 ? h : 0);
    plo[d] = l > 0 ? l : 0, phi[d] = h > 0 ? h : 0, in[d] = it;
    start[d] = l < 0 ? -l : 0, limit[d] = full - (h < 0 ? -h : 0);
    if (limit[d] < start[d])
      return jx_error_new("pad: padding (%lld, %lld, %lld) of dim %d leaves fewer than 0 elements of %s",
                          (long long)l, (long long)h, (long long)it, d, jx_aval_str(a, s, sizeof s));
    crop |= l < 0 || h < 0;
  }
  jx_t pv = jx_op_cast_for("pad", padding_value, a->dtype, false);
  jx_t y = jx_lax_pad(x, pv, plo, phi, in);
  return crop ? jx_lax_slice(y, start, limit, NULL) : y;
}
