/* lax: thin binds, one per primitive. */
#include "prims/lax.h"

jx_t jx_lax_unary(jx_prim p, jx_t x) { return jx_bind1(p, 1, &x, &jx_params_none); }

jx_t jx_lax_binary(jx_prim p, jx_t a, jx_t b) { return jx_bind1(p, 2, (jx_t[]){a, b}, &jx_params_none); }

jx_t jx_lax_select(jx_t pred, jx_t t, jx_t f) {
  return jx_bind1(JX_P_select, 3, (jx_t[]){pred, t, f}, &jx_params_none);
}

jx_t jx_lax_convert(jx_t x, jx_dtype dt) {
  jx_params p;
  jx_params_init(&p, JX_PK_CONVERT);
  p.convert.dtype = dt;
  return jx_bind1(JX_P_convert, 1, &x, &p);
}

jx_t jx_lax_reduce(jx_prim prim, jx_t x, int naxes, const int *axes) {
  jx_params p;
  jx_params_init(&p, JX_PK_REDUCE);
  if (naxes < 0 || naxes > JX_MAX_RANK)
    return jx_error_new("%s: %d axes given; at most %d", jx_prim_names[prim], naxes, JX_MAX_RANK);
  p.reduce.naxes = (int8_t)naxes;
  for (int i = 0; i < naxes; i++) p.reduce.axes[i] = axes[i];
  return jx_bind1(prim, 1, &x, &p);
}

jx_t jx_lax_argreduce(jx_prim prim, jx_t x, int axis, jx_dtype dt) {
  jx_params p;
  jx_params_init(&p, JX_PK_ARG);
  p.arg.axis = axis;
  p.arg.dtype = dt;
  return jx_bind1(prim, 1, &x, &p);
}

jx_t jx_lax_dot_general(jx_t a, jx_t b, int nc, const int *lc, const int *rc, int nb, const int *lb,
                        const int *rb) {
  return jx_lax_dot_general_pref(a, b, nc, lc, rc, nb, lb, rb, JX_DTYPE_COUNT);
}

jx_t jx_lax_dot_general_pref(jx_t a, jx_t b, int nc, const int *lc, const int *rc, int nb, const int *lb,
                             const int *rb, jx_dtype pref) {
  jx_params p;
  jx_params_init(&p, JX_PK_DOT);
  if (nc < 0 || nb < 0 || nc > JX_MAX_RANK || nb > JX_MAX_RANK)
    return jx_error_new("dot_general: bad dimension counts (%d contracting, %d batch)", nc, nb);
  p.dot.nc = (int8_t)nc;
  p.dot.nb = (int8_t)nb;
  for (int i = 0; i < nc && i < JX_MAX_RANK; i++) p.dot.lc[i] = (int8_t)lc[i], p.dot.rc[i] = (int8_t)rc[i];
  for (int i = 0; i < nb && i < JX_MAX_RANK; i++) p.dot.lb[i] = (int8_t)lb[i], p.dot.rb[i] = (int8_t)rb[i];
  if ((unsigned)pref < JX_DTYPE_COUNT) p.dot.pref = (int8_t)(pref + 1);
  return jx_bind1(JX_P_dot_general, 2, (jx_t[]){a, b}, &p);
}

/* A shape into params' (pndim, pshape). */
static jx_t shape_params(const char *op, int8_t *pndim, int64_t *pshape, int ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > JX_MAX_RANK)
    return jx_error_new("%s: target rank %d is outside 0..%d", op, ndim, JX_MAX_RANK);
  *pndim = (int8_t)ndim;
  for (int i = 0; i < ndim; i++) pshape[i] = shape[i];
  return NULL;
}

jx_t jx_lax_reshape(jx_t x, int ndim, const int64_t *shape) {
  jx_params p;
  jx_params_init(&p, JX_PK_RESHAPE);
  jx_t e = shape_params("reshape", &p.reshape.ndim, p.reshape.shape, ndim, shape);
  return e ? e : jx_bind1(JX_P_reshape, 1, &x, &p);
}

jx_t jx_lax_broadcast_in_dim(jx_t x, int ndim, const int64_t *shape, const int *dims) {
  jx_params p;
  jx_params_init(&p, JX_PK_BCAST);
  jx_t e = shape_params("broadcast_in_dim", &p.bcast.ndim, p.bcast.shape, ndim, shape);
  if (e) return e;
  int r = jx_ndim(x);
  if (r < 0) return jx_is_error(x) ? x : jx_error_new("broadcast_in_dim: operand is a tree");
  p.bcast.naxes = (int8_t)r;
  for (int i = 0; i < r; i++) p.bcast.axes[i] = dims[i];
  return jx_bind1(JX_P_broadcast_in_dim, 1, &x, &p);
}

jx_t jx_lax_transpose(jx_t x, const int *perm) {
  jx_params p;
  jx_params_init(&p, JX_PK_PERM);
  int r = jx_ndim(x);
  if (r < 0) return jx_is_error(x) ? x : jx_error_new("transpose: operand is a tree");
  p.perm.naxes = (int8_t)r;
  bool identity = true;
  for (int i = 0; i < r; i++) p.perm.axes[i] = perm[i], identity &= perm[i] == i;
  return identity ? x : jx_bind1(JX_P_transpose, 1, &x, &p);
}

jx_t jx_lax_slice(jx_t x, const int64_t *start, const int64_t *limit, const int64_t *stride) {
  jx_params p;
  jx_params_init(&p, JX_PK_SLICE);
  int r = jx_ndim(x);
  if (r < 0) return jx_is_error(x) ? x : jx_error_new("slice: operand is a tree");
  for (int i = 0; i < r; i++) {
    p.slice.start[i] = start[i];
    p.slice.limit[i] = limit[i];
    p.slice.stride[i] = stride ? stride[i] : 1;
  }
  return jx_bind1(JX_P_slice, 1, &x, &p);
}

jx_t jx_lax_rev(jx_t x, int naxes, const int *axes) {
  jx_params p;
  jx_params_init(&p, JX_PK_REV);
  if (naxes < 0 || naxes > JX_MAX_RANK) return jx_error_new("rev: %d axes", naxes);
  p.rev.naxes = (int8_t)naxes;
  for (int i = 0; i < naxes; i++) p.rev.axes[i] = axes[i];
  return jx_bind1(JX_P_rev, 1, &x, &p);
}

jx_t jx_lax_pad(jx_t x, jx_t padval, const int64_t *lo, const int64_t *hi, const int64_t *interior) {
  jx_params p;
  jx_params_init(&p, JX_PK_PAD);
  int r = jx_ndim(x);
  if (r < 0) return jx_is_error(x) ? x : jx_error_new("pad: operand is a tree");
  for (int i = 0; i < r; i++) {
    p.pad.lo[i] = lo[i];
    p.pad.hi[i] = hi[i];
    p.pad.interior[i] = interior ? interior[i] : 0;
  }
  return jx_bind1(JX_P_pad, 2, (jx_t[]){x, padval}, &p);
}

jx_t jx_lax_concatenate(int n, const jx_t *xs, int axis) {
  jx_params p;
  jx_params_init(&p, JX_PK_CONCAT);
  p.concat.axis = axis;
  if (n < 1) return jx_error_new("concatenate: need at least one array, got %d", n);
  return jx_bind1(JX_P_concatenate, n, xs, &p);
}

/* whether a concrete index array holds a negative value (a traced one
 * might: true) */
/* any sign bit set among n elements of T (as unsigned UT): or-ed a block
 * at a time, so the loop vectorizes (an early exit per element would not:
 * 1M i32 indices took 1 ms, a tenth of a scatter-add's time) */
#define ANY_NEG(T, UT)                                                                                       \
  static bool any_neg_##T(const T *d, int64_t n) {                                                           \
    for (int64_t i0 = 0; i0 < n; i0 += 4096) {                                                               \
      UT acc = 0;                                                                                            \
      for (int64_t i = i0; i < n && i < i0 + 4096; i++) acc |= (UT)d[i];                                     \
      if (acc >> (8 * sizeof(UT) - 1)) return true;                                                          \
    }                                                                                                        \
    return false;                                                                                            \
  }
ANY_NEG(int32_t, uint32_t)
ANY_NEG(int64_t, uint64_t)

static bool may_be_negative(jx_t idx) {
  if (!jx_is_array(idx)) return true;
  int64_t n = jx_aval_size(&idx->aval);
  const void *d = jx_data(idx);
  switch (idx->aval.dtype) {
    case JX_U32: return false;
    case JX_I32: return any_neg_int32_t(d, n);
    case JX_I64: return any_neg_int64_t(d, n);
    default: return true;
  }
}

jx_t jx_lax_wrap_index(jx_t idx, int64_t n) {
  jx_dtype dt = idx->aval.dtype;
  if (dt == JX_U8 || dt == JX_U16 || dt == JX_U64) return idx; /* never negative (as JAX) */
  if (!may_be_negative(idx)) return idx;                       /* eager: skip three passes over the indices */
  if ((dt == JX_I8 || dt == JX_I16) && n > (dt == JX_I8 ? INT8_MAX : INT16_MAX))
    idx = jx_lax_convert(idx, dt = JX_I32); /* i + n must not wrap in the index dtype */
  jx_t neg = jx_lax_binary(JX_P_lt, idx, jx_lax_const(dt, 0));
  return jx_lax_select(neg, jx_lax_binary(JX_P_add, idx, jx_lax_const(dt, (double)n)), idx);
}

jx_t jx_lax_gather(jx_t x, jx_t idx, int axis) {
  jx_t e = jx_first_error(2, (jx_t[]){x, idx});
  if (e) return e;
  int r = x->aval.ndim, k = idx->aval.ndim;
  if (axis < 0 || axis >= r || !jx_dtype_is_int(idx->aval.dtype) || r - 1 + k > JX_MAX_RANK)
    return jx_error_new("take: bad axis %d for rank %d, indices of dtype %s or result rank", axis, r,
                        jx_dtype_name(idx->aval.dtype));
  jx_params p;
  jx_params_init(&p, JX_PK_GATHER);
  p.gather.ncollapsed = p.gather.nmap = 1;
  p.gather.collapsed[0] = p.gather.map[0] = (int8_t)axis;
  p.gather.ivd = (int8_t)k;
  for (int d = 0; d < r; d++) {
    p.gather.slice[d] = d == axis ? 1 : x->aval.shape[d];
    if (d != axis) p.gather.offset[p.gather.noffset++] = (int8_t)(d < axis ? d : d - 1 + k);
  }
  return jx_bind1(JX_P_gather, 2, (jx_t[]){x, jx_lax_wrap_index(idx, x->aval.shape[axis])}, &p);
}

jx_t jx_lax_iota(jx_dtype dt, int ndim, const int64_t *shape, int axis) {
  jx_params p;
  jx_params_init(&p, JX_PK_IOTA);
  jx_t e = shape_params("iota", &p.iota.ndim, p.iota.shape, ndim, shape);
  if (e) return e;
  p.iota.dtype = dt;
  p.iota.axis = axis;
  return jx_bind1(JX_P_iota, 0, NULL, &p);
}

/* ------------------------------------------------------------ helpers */
jx_t jx_lax_const(jx_dtype dt, double v) { return jx_scalar_of(dt, v); }

jx_t jx_lax_broadcast_to_aval(jx_t x, const jx_aval *a) {
  if (jx_is_error(x)) return x;
  int r = x->aval.ndim, off = a->ndim - r;
  if (off == 0) {
    bool same = true;
    for (int i = 0; i < r; i++) same &= x->aval.shape[i] == a->shape[i];
    if (same) return x;
  }
  if (off < 0) return jx_error_new("broadcast: rank %d operand into rank %d", r, a->ndim);
  int dims[JX_MAX_RANK];
  int64_t shape[JX_MAX_RANK];
  for (int i = 0; i < a->ndim; i++) shape[i] = a->shape[i];
  /* size-1 dims of x broadcast: squeeze them out first */
  int64_t sq[JX_MAX_RANK];
  int k = 0;
  for (int i = 0; i < r; i++) {
    if (x->aval.shape[i] == 1 && a->shape[off + i] != 1) continue;
    sq[k] = x->aval.shape[i];
    dims[k++] = off + i;
  }
  if (k != r) x = jx_lax_reshape(x, k, sq);
  return jx_lax_broadcast_in_dim(x, a->ndim, shape, dims);
}

jx_t jx_lax_unbroadcast(jx_t ct, const jx_aval *a) {
  if (!ct || jx_is_error(ct)) return ct;
  int r = ct->aval.ndim, off = r - a->ndim;
  int axes[JX_MAX_RANK], n = 0;
  for (int i = 0; i < r; i++)
    if (i < off || (a->shape[i - off] == 1 && ct->aval.shape[i] != 1)) axes[n++] = i;
  if (n == 0 && off == 0) return ct;
  jx_t s = n ? jx_lax_reduce(JX_P_reduce_sum, ct, n, axes) : ct;
  return jx_lax_reshape(s, a->ndim, a->shape);
}

jx_t jx_lax_zeros(const jx_aval *a) {
  jx_t z = jx_lax_const(a->dtype, 0);
  if (a->ndim == 0) return z;
  return jx_lax_broadcast_in_dim(z, a->ndim, a->shape, NULL);
}

jx_t jx_lax_add_any(jx_t a, jx_t b) {
  if (!a) return b;
  if (!b) return a;
  return jx_lax_binary(JX_P_add, a, b);
}

jx_t jx_lax_neg_any(jx_t a) { return a ? jx_lax_unary(JX_P_neg, a) : NULL; }
