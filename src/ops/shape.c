/* Shape and layout ops: reshape, transpose, broadcast_to, expand_dims,
 * squeeze, slice (Python semantics), concatenate, stack. */
#include "ops/ops.h"

#include <stdio.h>

jx_t jx_reshape(jx_t x, int ndim, const int64_t *shape) {
  jx_t e = jx_op_check_array("reshape", x);
  if (e) return e;
  if (ndim < 0 || ndim > JX_MAX_RANK)
    return jx_error_new("reshape: rank %d is outside 0..%d", ndim, JX_MAX_RANK);
  if (ndim > 0 && !shape) return jx_error_new("reshape: shape is NULL");
  int64_t s[JX_MAX_RANK], known = 1;
  int infer = -1;
  char buf[160], buf2[160];
  for (int i = 0; i < ndim; i++) {
    s[i] = shape[i];
    if (s[i] == -1) {
      if (infer >= 0)
        return jx_error_new("reshape: only one dimension can be -1 (shape %s)",
                            jx_shape_str(ndim, shape, buf, sizeof buf));
      infer = i;
    } else if (s[i] < 0) {
      return jx_error_new("reshape: negative dimension in shape %s",
                          jx_shape_str(ndim, shape, buf, sizeof buf));
    } else if (__builtin_mul_overflow(known, s[i], &known)) {
      return jx_error_new("reshape: shape %s overflows", jx_shape_str(ndim, shape, buf, sizeof buf));
    }
  }
  int64_t n = jx_aval_size(&x->aval);
  if (infer >= 0) {
    if (known == 0 || n % known)
      return jx_error_new("reshape: cannot reshape array of shape %s into shape %s",
                          jx_aval_str(&x->aval, buf, sizeof buf),
                          jx_shape_str(ndim, shape, buf2, sizeof buf2));
    s[infer] = n / known;
  }
  /* same shape: nothing to do */
  if (ndim == x->aval.ndim && !memcmp(s, x->aval.shape, sizeof(int64_t) * (size_t)ndim)) return x;
  return jx_lax_reshape(x, ndim, s);
}

jx_t jx_transpose(jx_t x, const int *perm) {
  jx_t e = jx_op_check_array("transpose", x);
  if (e) return e;
  int r = x->aval.ndim, p[JX_MAX_RANK];
  bool seen[JX_MAX_RANK] = {0}, identity = true;
  for (int i = 0; i < r; i++) {
    int a = perm ? perm[i] : r - 1 - i;
    if (a < 0) a += r;
    if (a < 0 || a >= r || seen[a]) {
      char s[160];
      return jx_error_new("transpose: axes are not a permutation of the %d axes of %s", r,
                          jx_aval_str(&x->aval, s, sizeof s));
    }
    seen[a] = true;
    p[i] = a;
    identity &= a == i;
  }
  return identity ? x : jx_lax_transpose(x, p);
}

jx_t jx_broadcast_to(jx_t x, int ndim, const int64_t *shape) {
  jx_t e = jx_op_check_array("broadcast_to", x);
  if (e) return e;
  char err[200], s1[160], s2[160];
  if (jx_shape_check(ndim, shape, x->aval.dtype, err, sizeof err))
    return jx_error_new("broadcast_to: %s", err);
  const jx_aval *a = &x->aval;
  int off = ndim - a->ndim;
  bool ok = off >= 0;
  for (int i = 0; ok && i < a->ndim; i++) ok = a->shape[i] == 1 || a->shape[i] == shape[off + i];
  if (!ok)
    return jx_error_new("broadcast_to: cannot broadcast an array of shape %s to shape %s",
                        jx_aval_str(a, s1, sizeof s1), jx_shape_str(ndim, shape, s2, sizeof s2));
  jx_aval t = {.dtype = a->dtype, .ndim = (int8_t)ndim};
  memcpy(t.shape, shape, sizeof(int64_t) * (size_t)ndim);
  return jx_lax_broadcast_to_aval(x, &t);
}

jx_t jx_expand_dims(jx_t x, int axis) {
  jx_t e = jx_op_check_array("expand_dims", x);
  if (e) return e;
  int r = x->aval.ndim;
  int ax = axis < 0 ? axis + r + 1 : axis;
  if (ax < 0 || ax > r || r + 1 > JX_MAX_RANK)
    return jx_error_new("expand_dims: axis %d is out of bounds for a result of rank %d", axis, r + 1);
  int64_t s[JX_MAX_RANK];
  for (int i = 0, k = 0; i <= r; i++) s[i] = i == ax ? 1 : x->aval.shape[k++];
  return jx_lax_reshape(x, r + 1, s);
}

jx_t jx_squeeze(jx_t x, int axis) {
  jx_t e = jx_op_check_array("squeeze", x);
  if (e) return e;
  int r = x->aval.ndim, ax = axis < 0 ? axis + r : axis;
  char s[160];
  if (ax < 0 || ax >= r)
    return jx_error_new("squeeze: axis %d is out of bounds for shape %s", axis,
                        jx_aval_str(&x->aval, s, sizeof s));
  if (x->aval.shape[ax] != 1)
    return jx_error_new("squeeze: cannot select an axis to squeeze out which has size not equal to one "
                        "(axis %d of shape %s)",
                        axis, jx_aval_str(&x->aval, s, sizeof s));
  int64_t sh[JX_MAX_RANK];
  for (int i = 0, k = 0; i < r; i++)
    if (i != ax) sh[k++] = x->aval.shape[i];
  return jx_lax_reshape(x, r - 1, sh);
}

/* Python's slice.indices(): clip start/stop into range for the step's
 * direction; returns the number of elements. Any int64 start, stop and
 * step != 0 (INT64_MIN included) is in range: adding n (>= 0) to a
 * negative bound cannot overflow, and the count is computed from the
 * distance, in unsigned arithmetic for |step|. */
static int64_t clip_bound(int64_t v, int64_t n, int64_t lo, int64_t hi) {
  if (v < 0) v += n;
  return v < lo ? lo : v > hi ? hi : v;
}

static int64_t slice_indices(int64_t n, int64_t start, int64_t stop, int64_t step, int64_t *first) {
  uint64_t ustep = step > 0 ? (uint64_t)step : 0 - (uint64_t)step;
  if (step > 0) {
    start = clip_bound(start, n, 0, n);
    stop = stop == JX_END ? n : clip_bound(stop, n, 0, n);
    *first = start;
    return stop > start ? (int64_t)((uint64_t)(stop - start - 1) / ustep) + 1 : 0;
  }
  start = start == JX_END ? n - 1 : clip_bound(start, n, -1, n - 1);
  stop = stop == JX_END ? -1 : clip_bound(stop, n, -1, n - 1);
  *first = start;
  return start > stop ? (int64_t)((uint64_t)(start - stop - 1) / ustep) + 1 : 0;
}

jx_t jx_slice(jx_t x, const int64_t *start, const int64_t *stop, const int64_t *step) {
  jx_t e = jx_op_check_array("slice", x);
  if (e) return e;
  const jx_aval *a = &x->aval;
  int r = a->ndim;
  if (r > 0 && (!start || !stop)) return jx_error_new("slice: start/stop is NULL");
  int64_t lo[JX_MAX_RANK], hi[JX_MAX_RANK], st[JX_MAX_RANK];
  int rev_axes[JX_MAX_RANK], nrev = 0;
  for (int d = 0; d < r; d++) {
    int64_t s = step ? step[d] : 1, first;
    if (s == 0) {
      char b[160];
      return jx_error_new("slice: step is zero in dimension %d of %s", d, jx_aval_str(a, b, sizeof b));
    }
    int64_t n = slice_indices(a->shape[d], start[d], stop[d], s, &first);
    if (s > 0) {
      lo[d] = first;
    } else { /* walk backwards: reverse the axis, then slice forwards */
      rev_axes[nrev++] = d;
      lo[d] = n ? a->shape[d] - 1 - first : 0;
    }
    /* with n >= 2 elements |step| < size; with fewer it does not matter
     * (and must not reach the arithmetic below: |INT64_MIN|) */
    st[d] = n >= 2 ? (s > 0 ? s : -s) : 1;
    hi[d] = n ? lo[d] + (n - 1) * st[d] + 1 : lo[d];
  }
  if (nrev) x = jx_lax_rev(x, nrev, rev_axes);
  return jx_lax_slice(x, lo, hi, st);
}

jx_t jx_concatenate(int n, const jx_t *xs, int axis) {
  if (n < 1 || !xs) return jx_error_new("concatenate: need at least one array (got %d)", n);
  jx_t e = jx_first_error(n, xs);
  if (e) return e;
  for (int i = 0; i < n; i++)
    if ((e = jx_op_check_array("concatenate", xs[i]))) return e;
  jx_dtype dt = xs[0]->aval.dtype;
  bool weak = xs[0]->aval.weak;
  for (int i = 1; i < n; i++) dt = jx_promote(dt, weak, xs[i]->aval.dtype, xs[i]->aval.weak, &weak);
  int r = xs[0]->aval.ndim, ax = axis < 0 ? axis + r : axis;
  if (r == 0) return jx_error_new("concatenate: zero-dimensional arrays cannot be concatenated");
  if (ax < 0 || ax >= r) return jx_error_new("concatenate: axis %d is out of bounds for rank %d", axis, r);
  jx_t small[16] = {0}, *cs = n <= 16 ? small : jx_malloc(sizeof(jx_t) * (size_t)n);
  if (!cs) return jx_error_new("concatenate: out of memory");
  for (int i = 0; i < n; i++) cs[i] = jx_op_cast_for("concatenate", xs[i], dt, xs[i]->aval.weak);
  jx_t r1 = jx_lax_concatenate(n, cs, ax);
  if (cs != small) jx_free(cs);
  return r1;
}

jx_t jx_stack(int n, const jx_t *xs, int axis) {
  if (n < 1 || !xs) return jx_error_new("stack: need at least one array (got %d)", n);
  jx_t e = jx_first_error(n, xs);
  if (e) return e;
  for (int i = 0; i < n; i++) {
    if ((e = jx_op_check_array("stack", xs[i]))) return e;
    if (!jx_aval_eq(&xs[i]->aval, &xs[0]->aval) && xs[i]->aval.ndim != xs[0]->aval.ndim)
      return jx_error_new("stack: all input arrays must have the same shape");
    for (int d = 0; d < xs[0]->aval.ndim; d++)
      if (xs[i]->aval.shape[d] != xs[0]->aval.shape[d]) {
        char s1[160], s2[160];
        return jx_error_new("stack: all input arrays must have the same shape (%s vs %s)",
                            jx_aval_str(&xs[0]->aval, s1, sizeof s1),
                            jx_aval_str(&xs[i]->aval, s2, sizeof s2));
      }
  }
  int r = xs[0]->aval.ndim, ax = axis < 0 ? axis + r + 1 : axis;
  if (r + 1 > JX_MAX_RANK) return jx_error_new("stack: result rank %d exceeds %d", r + 1, JX_MAX_RANK);
  if (ax < 0 || ax > r)
    return jx_error_new("stack: axis %d is out of bounds for a result of rank %d", axis, r + 1);
  jx_t small[16] = {0}, *es = n <= 16 ? small : jx_malloc(sizeof(jx_t) * (size_t)n);
  if (!es) return jx_error_new("stack: out of memory");
  for (int i = 0; i < n; i++) es[i] = jx_expand_dims(xs[i], ax);
  jx_t out = jx_concatenate(n, es, ax);
  if (es != small) jx_free(es);
  return out;
}
