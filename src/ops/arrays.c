/* Creation and shape ops of issue #18 (jax.numpy names): linspace, eye,
 * tri, tril, triu, split, tile, repeat, roll, flip. Built from primitives
 * (iota, comparisons, select, slices, broadcasts, reshapes, rev, gather),
 * so they stage under jit and differentiate where their inputs do. An axis
 * argument of JX_NONE means JAX's axis=None (the flattened array). */
#include "ops/ops.h"

#include <math.h>

/* axis (negative from the end) into *ax, or return an error naming op */
#define AXIS_OR_RETURN(op, a, axis, ax)                                                                      \
  do {                                                                                                       \
    ax = (axis) < 0 ? (axis) + (a)->ndim : (axis);                                                           \
    if (ax < 0 || ax >= (a)->ndim) {                                                                         \
      char s_[160];                                                                                          \
      return jx_error_new("%s: axis %d is out of bounds for an array of shape %s", op, axis,                 \
                          jx_aval_str(a, s_, sizeof s_));                                                    \
    }                                                                                                        \
  } while (0)

/* ------------------------------------------------------------ creation */
/* jnp.linspace: start + i * (stop - start) / div in f64 (div = num - 1
 * with the endpoint, which is then stop exactly; num without), converted
 * to dtype (ints: floored first, as JAX) */
jx_t jx_linspace(jx_dtype dt, double start, double stop, int64_t num, bool endpoint) {
  if ((unsigned)dt >= JX_DTYPE_COUNT || dt == JX_BOOL)
    return jx_error_new("linspace: dtype %d is not numeric", (int)dt);
  if (num < 0 || num > ((int64_t)1 << 40))
    return jx_error_new("linspace: bad number of samples %lld", (long long)num);
  if (!isfinite(start) || !isfinite(stop))
    return jx_error_new("linspace: start %g and stop %g must be finite", start, stop);
  double div = endpoint ? (double)(num - 1) : (double)num, step = div > 0 ? (stop - start) / div : 0;
  jx_t i = jx_lax_iota(JX_F64, 1, &num, 0);
  jx_t v = jx_lax_binary(JX_P_add, jx_lax_const(JX_F64, start),
                         jx_lax_binary(JX_P_mul, i, jx_lax_const(JX_F64, step)));
  if (endpoint && num > 1)
    v = jx_lax_select(jx_lax_binary(JX_P_eq, i, jx_lax_const(JX_F64, (double)(num - 1))),
                      jx_lax_broadcast_to_aval(jx_lax_const(JX_F64, stop), &v->aval), v);
  if (!jx_dtype_is_float(dt)) v = jx_lax_unary(JX_P_floor, v);
  return jx_op_cast(v, dt, false);
}

/* [n, m] bool: column - row <= k (tri), == k (eye) */
static jx_t diag_mask(const char *op, int64_t n, int64_t m, int64_t k, bool eq) {
  if (n < 0 || m < 0)
    return jx_error_new("%s: negative dimensions %lld, %lld", op, (long long)n, (long long)m);
  int64_t shape[2] = {n, m};
  char err[200];
  if (jx_shape_check(2, shape, JX_I64, err, sizeof err)) return jx_error_new("%s: %s", op, err);
  jx_t r = jx_lax_iota(JX_I64, 2, shape, 0), c = jx_lax_iota(JX_I64, 2, shape, 1);
  jx_t d = jx_lax_binary(JX_P_sub, c, r);
  return jx_lax_binary(eq ? JX_P_eq : JX_P_le, d, jx_lax_const(JX_I64, (double)k));
}
/* jnp.eye(n, m, k): ones on the k-th diagonal; m < 0 means m = n */
jx_t jx_eye(jx_dtype dt, int64_t n, int64_t m, int64_t k) {
  if ((unsigned)dt >= JX_DTYPE_COUNT) return jx_error_new("eye: invalid dtype %d", (int)dt);
  jx_t mask = diag_mask("eye", n, m < 0 ? n : m, k, true);
  return jx_ok(mask) ? jx_op_cast(mask, dt, false) : mask;
}
/* jnp.tri(n, m, k): ones at and below the k-th diagonal */
jx_t jx_tri(jx_dtype dt, int64_t n, int64_t m, int64_t k) {
  if ((unsigned)dt >= JX_DTYPE_COUNT) return jx_error_new("tri: invalid dtype %d", (int)dt);
  jx_t mask = diag_mask("tri", n, m < 0 ? n : m, k, false);
  return jx_ok(mask) ? jx_op_cast(mask, dt, false) : mask;
}

/* tril/triu: x where the mask of its last two dims holds, else 0 */
static jx_t tri_select(const char *op, jx_t x, int64_t k, bool lower) {
  jx_t e = jx_op_check_array(op, x);
  if (e) return e;
  const jx_aval *a = &x->aval;
  if (a->ndim < 2) {
    char s[160];
    return jx_error_new("%s: need an array of at least 2 dims, not %s", op, jx_aval_str(a, s, sizeof s));
  }
  int64_t n = a->shape[a->ndim - 2], m = a->shape[a->ndim - 1];
  /* triu(k) keeps column - row >= k: the complement of tri(k - 1) */
  jx_t mask = diag_mask(op, n, m, lower ? k : k - 1, false);
  if (!lower) mask = jx_lax_unary(JX_P_not, mask);
  jx_t z = jx_lax_zeros(&(jx_aval){.dtype = a->dtype, .weak = a->weak});
  return jx_lax_select(mask, x, z);
}
jx_t jx_tril(jx_t x, int64_t k) { return tri_select("tril", x, k, true); }
jx_t jx_triu(jx_t x, int64_t k) { return tri_select("triu", x, k, false); }

/* --------------------------------------------------------------- split */
static jx_t slice_axis(jx_t x, int ax, int64_t lo, int64_t hi) {
  const jx_aval *a = &x->aval;
  int64_t st[JX_MAX_RANK] = {0}, li[JX_MAX_RANK], sr[JX_MAX_RANK];
  for (int d = 0; d < a->ndim; d++) li[d] = a->shape[d], sr[d] = 1;
  st[ax] = lo, li[ax] = hi;
  return jx_lax_slice(x, st, li, sr);
}

/* jnp.split at the given indices (negative from the end, clipped into
 * [0, len], as NumPy): a list of n + 1 arrays */
jx_t jx_split_indices(jx_t x, int n, const int64_t *indices, int axis) {
  jx_t e = jx_op_check_array("split", x);
  if (e) return e;
  if (n < 0 || (n > 0 && !indices) || n > 65535) return jx_error_new("split: bad list of %d indices", n);
  int ax;
  AXIS_OR_RETURN("split", &x->aval, axis, ax);
  int64_t len = x->aval.shape[ax], prev = 0;
  jx_t *parts = jx_malloc(sizeof(jx_t) * (size_t)(n + 1));
  if (!parts) return jx_error_new("split: out of memory");
  /* part i is x[indices[i-1]:indices[i]] (empty where they decrease) */
  for (int i = 0; i <= n; i++) {
    int64_t at = i < n ? indices[i] : len;
    at = at < 0 ? at + len : at;
    at = at < 0 ? 0 : at > len ? len : at;
    parts[i] = slice_axis(x, ax, prev, at > prev ? at : prev);
    prev = at;
  }
  jx_t r = jx_list(n + 1, parts);
  jx_free(parts);
  return r;
}

/* jnp.split into `sections` equal parts (an error unless they divide) */
jx_t jx_split(jx_t x, int sections, int axis) {
  jx_t e = jx_op_check_array("split", x);
  if (e) return e;
  int ax;
  AXIS_OR_RETURN("split", &x->aval, axis, ax);
  int64_t len = x->aval.shape[ax];
  char s[160];
  if (sections < 1 || len % sections)
    return jx_error_new("split: %d sections do not divide axis %d of %s equally", sections, axis,
                        jx_aval_str(&x->aval, s, sizeof s));
  int64_t *idx = jx_malloc(sizeof(int64_t) * (size_t)sections);
  if (!idx) return jx_error_new("split: out of memory");
  for (int i = 0; i < sections - 1; i++) idx[i] = (i + 1) * (len / sections);
  jx_t r = jx_split_indices(x, sections - 1, idx, axis);
  jx_free(idx);
  return r;
}

/* ----------------------------------------------------------- tile, repeat */
/* jnp.tile: reps padded with 1s (or x's shape with 1s) to one rank, then
 * x seen as [1, d0, 1, d1, ...], broadcast to [r0, d0, r1, d1, ...] and
 * merged pairwise */
jx_t jx_tile(jx_t x, int n, const int64_t *reps) {
  jx_t e = jx_op_check_array("tile", x);
  if (e) return e;
  const jx_aval *a = &x->aval;
  int r = n > a->ndim ? n : a->ndim;
  if (n < 0 || (n && !reps)) return jx_error_new("tile: bad reps (%d of them) for rank %d", n, a->ndim);
  if (r > JX_MAX_RANK) return jx_error_new("tile: result rank %d exceeds %d", r, JX_MAX_RANK);
  int64_t d[JX_MAX_RANK], k[JX_MAX_RANK], out[JX_MAX_RANK];
  for (int i = 0; i < r; i++) {
    int ia = i - (r - a->ndim), ir = i - (r - n);
    d[i] = ia >= 0 ? a->shape[ia] : 1;
    k[i] = ir >= 0 ? reps[ir] : 1;
    if (k[i] < 0) return jx_error_new("tile: negative repetition %lld", (long long)k[i]);
    out[i] = d[i] * k[i];
  }
  char err[200];
  if (jx_shape_check(r, out, a->dtype, err, sizeof err)) return jx_error_new("tile: %s", err);
  /* one axis after another: [.., d_i, ..] -> [.., k_i, d_i, ..] -> [.., k_i d_i, ..] */
  jx_t y = jx_lax_reshape(x, r, d);
  int64_t cur[JX_MAX_RANK];
  memcpy(cur, d, sizeof cur);
  for (int i = 0; i < r && jx_ok(y); i++) {
    if (k[i] == 1) continue;
    int64_t s2[JX_MAX_RANK + 1];
    int dims[JX_MAX_RANK];
    for (int j = 0, q = 0; j <= r; j++) {
      if (j == i)
        s2[j] = k[i];
      else
        s2[j] = cur[q], dims[q] = j, q++;
    }
    if (r + 1 > JX_MAX_RANK) return jx_error_new("tile: rank %d too large to tile", r);
    y = jx_lax_broadcast_in_dim(y, r + 1, s2, dims);
    cur[i] *= k[i];
    y = jx_lax_reshape(y, r, cur);
  }
  return y;
}

/* jnp.repeat with one count: x seen as [..., d, 1, ...] broadcast to
 * [..., d, r, ...] and merged; axis JX_NONE repeats the flattened array */
jx_t jx_repeat(jx_t x, int64_t repeats, int axis) {
  jx_t e = jx_op_check_array("repeat", x);
  if (e) return e;
  if (axis == JX_NONE) {
    x = jx_reshape(x, 1, (int64_t[]){jx_aval_size(&x->aval)});
    axis = 0;
  }
  const jx_aval *a = &x->aval;
  int ax;
  AXIS_OR_RETURN("repeat", a, axis, ax);
  if (repeats < 0) return jx_error_new("repeat: negative count %lld", (long long)repeats);
  if (a->ndim + 1 > JX_MAX_RANK) return jx_error_new("repeat: rank %d too large", a->ndim);
  int64_t s2[JX_MAX_RANK], out[JX_MAX_RANK];
  int dims[JX_MAX_RANK];
  for (int d = 0, q = 0; d <= a->ndim; d++) {
    if (d == ax + 1)
      s2[d] = repeats;
    else
      s2[d] = a->shape[q], dims[q] = d, q++;
  }
  for (int d = 0; d < a->ndim; d++) out[d] = a->shape[d] * (d == ax ? repeats : 1);
  char err[200];
  if (jx_shape_check(a->ndim, out, a->dtype, err, sizeof err)) return jx_error_new("repeat: %s", err);
  return jx_lax_reshape(jx_lax_broadcast_in_dim(x, a->ndim + 1, s2, dims), a->ndim, out);
}

/* jnp.repeat with a count per element along axis (counts known here, as
 * JAX needs them static): a gather of each index counts[i] times */
jx_t jx_repeat_counts(jx_t x, int n, const int64_t *counts, int axis) {
  jx_t e = jx_op_check_array("repeat", x);
  if (e) return e;
  if (axis == JX_NONE) {
    x = jx_reshape(x, 1, (int64_t[]){jx_aval_size(&x->aval)});
    axis = 0;
  }
  const jx_aval *a = &x->aval;
  int ax;
  AXIS_OR_RETURN("repeat", a, axis, ax);
  char s[160];
  if (n != a->shape[ax] || (n && !counts))
    return jx_error_new("repeat: %d counts for axis %d of %s", n, axis, jx_aval_str(a, s, sizeof s));
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    if (counts[i] < 0) return jx_error_new("repeat: negative count %lld", (long long)counts[i]);
    if (__builtin_add_overflow(total, counts[i], &total) || total > ((int64_t)1 << 40))
      return jx_error_new("repeat: counts too large");
  }
  int64_t *idx = jx_malloc(sizeof(int64_t) * (size_t)(total ? total : 1));
  if (!idx) return jx_error_new("repeat: out of memory");
  for (int64_t i = 0, p = 0; i < n; i++)
    for (int64_t c = 0; c < counts[i]; c++) idx[p++] = i;
  jx_t r = jx_take(x, jx_array(JX_I64, 1, &total, idx), ax);
  jx_free(idx);
  return r;
}

/* ------------------------------------------------------------ roll, flip */
/* jnp.roll with tuples of shifts and axes: each pair in turn (shifts of a
 * repeated axis add up, as NumPy's) */
jx_t jx_roll_axes(jx_t x, int n, const int64_t *shifts, const int *axes) {
  if (n < 0 || (n > 0 && (!shifts || !axes)))
    return jx_error_new("roll: %d shifts and axes (shifts %s, axes %s)", n, shifts ? "given" : "NULL",
                        axes ? "given" : "NULL");
  jx_t e = jx_op_check_array("roll", x);
  for (int i = 0; i < n && !e; i++) x = jx_roll(x, shifts[i], axes[i]), e = jx_ok(x) ? NULL : x;
  return e ? e : x;
}

/* jnp.roll: element i moves to (i + shift) mod n along axis: the last
 * shift elements, then the rest (JX_NONE: of the flattened array, then
 * reshaped back) */
jx_t jx_roll(jx_t x, int64_t shift, int axis) {
  jx_t e = jx_op_check_array("roll", x);
  if (e) return e;
  if (axis == JX_NONE) {
    jx_aval a = x->aval;
    jx_t r = jx_roll(jx_reshape(x, 1, (int64_t[]){jx_aval_size(&a)}), shift, 0);
    return jx_ok(r) ? jx_lax_reshape(r, a.ndim, a.shape) : r;
  }
  int ax;
  AXIS_OR_RETURN("roll", &x->aval, axis, ax);
  int64_t n = x->aval.shape[ax];
  if (n == 0) return x;
  int64_t s = ((shift % n) + n) % n;
  if (s == 0) return x;
  jx_t parts[2] = {slice_axis(x, ax, n - s, n), slice_axis(x, ax, 0, n - s)};
  return jx_lax_concatenate(2, parts, ax);
}

/* jnp.flip over axes (NULL: every axis) */
jx_t jx_flip(jx_t x, int naxes, const int *axes) {
  jx_t e = jx_op_check_array("flip", x);
  if (e) return e;
  const jx_aval *a = &x->aval;
  int all[JX_MAX_RANK];
  if (!axes) {
    naxes = a->ndim;
    for (int i = 0; i < naxes; i++) all[i] = i;
    axes = all;
  }
  bool mask[JX_MAX_RANK];
  e = jx_op_axes("flip", a, naxes, axes, mask);
  if (e) return e;
  int ax[JX_MAX_RANK], n = 0;
  for (int d = 0; d < a->ndim; d++)
    if (mask[d]) ax[n++] = d;
  return n ? jx_lax_rev(x, n, ax) : x;
}
