/* Reductions: sum/mean/max/min over all or chosen axes, argmax/argmin. */
#include "ops/ops.h"

jx_t jx_op_axes(const char *op, const jx_aval *a, int naxes, const int *axes, bool *mask) {
  memset(mask, 0, sizeof(bool) * JX_MAX_RANK);
  if (naxes < 0 || (naxes > 0 && !axes)) return jx_error_new("%s: bad axes list (%d axes)", op, naxes);
  for (int i = 0; i < naxes; i++) {
    int ax = axes[i] < 0 ? axes[i] + a->ndim : axes[i];
    char s[160];
    if (ax < 0 || ax >= a->ndim)
      return jx_error_new("%s: axis %d is out of bounds for an array of shape %s", op, axes[i],
                          jx_aval_str(a, s, sizeof s));
    if (mask[ax])
      return jx_error_new("%s: axis %d repeated for shape %s", op, axes[i], jx_aval_str(a, s, sizeof s));
    mask[ax] = true;
  }
  return NULL;
}

typedef enum { R_SUM, R_MEAN, R_MAX, R_MIN } red_kind;
static const char *const red_names[] = {"sum", "mean", "max", "min"};

jx_dtype jx_op_sum_dtype(jx_dtype dt) {
  switch (dt) {
    case JX_BOOL:
    case JX_I8:
    case JX_I16: return JX_I32;
    case JX_U8:
    case JX_U16: return JX_U32;
    default: return dt;
  }
}

static jx_t reduce_op(red_kind k, jx_t x, int naxes, const int *axes, bool keepdims, bool all) {
  const char *op = red_names[k];
  jx_t e = jx_op_check_array(op, x);
  if (e) return e;
  const jx_aval *a = &x->aval;
  int all_axes[JX_MAX_RANK];
  if (all) {
    naxes = a->ndim;
    for (int i = 0; i < naxes; i++) all_axes[i] = i;
    axes = all_axes;
  }
  bool mask[JX_MAX_RANK];
  e = jx_op_axes(op, a, naxes, axes, mask);
  if (e) return e;
  int ax[JX_MAX_RANK], n = 0;
  int64_t count = 1;
  for (int d = 0; d < a->ndim; d++)
    if (mask[d]) ax[n++] = d, count *= a->shape[d];
  if ((k == R_MAX || k == R_MIN) && count == 0) {
    char s[160];
    return jx_error_new("%s: zero-size reduction over an array of shape %s has no identity", op,
                        jx_aval_str(a, s, sizeof s));
  }
  jx_t r;
  switch (k) {
    case R_SUM: /* bool and the small ints sum in i32 (u32), as jnp.sum's promote_integers */
      r = jx_lax_reduce(
          JX_P_reduce_sum,
          jx_op_sum_dtype(a->dtype) == a->dtype ? x : jx_op_cast(x, jx_op_sum_dtype(a->dtype), false), n, ax);
      break;
    case R_MEAN: { /* bf16/f16: in f32, rounded once at the end, as jnp.mean */
      jx_t f = jx_op_to_float(x);
      jx_dtype out = f->aval.dtype;
      if (jx_dtype_is_half(out)) f = jx_op_cast(f, JX_F32, false);
      r = jx_lax_reduce(JX_P_reduce_sum, f, n, ax);
      r = jx_lax_binary(JX_P_div, r, jx_lax_const(f->aval.dtype, (double)count));
      if (out != f->aval.dtype) r = jx_op_cast(r, out, false);
      break;
    }
    case R_MAX: r = jx_lax_reduce(JX_P_reduce_max, x, n, ax); break;
    default: r = jx_lax_reduce(JX_P_reduce_min, x, n, ax); break;
  }
  if (!keepdims || !jx_ok(r)) return r;
  int64_t shape[JX_MAX_RANK];
  for (int d = 0; d < a->ndim; d++) shape[d] = mask[d] ? 1 : a->shape[d];
  return jx_lax_reshape(r, a->ndim, shape);
}

jx_t jx_sum(jx_t x) { return reduce_op(R_SUM, x, 0, NULL, false, true); }
jx_t jx_mean(jx_t x) { return reduce_op(R_MEAN, x, 0, NULL, false, true); }
jx_t jx_max(jx_t x) { return reduce_op(R_MAX, x, 0, NULL, false, true); }
jx_t jx_min(jx_t x) { return reduce_op(R_MIN, x, 0, NULL, false, true); }
jx_t jx_sum_axes(jx_t x, int n, const int *axes, bool keep) {
  return reduce_op(R_SUM, x, n, axes, keep, false);
}
jx_t jx_mean_axes(jx_t x, int n, const int *axes, bool keep) {
  return reduce_op(R_MEAN, x, n, axes, keep, false);
}
jx_t jx_max_axes(jx_t x, int n, const int *axes, bool keep) {
  return reduce_op(R_MAX, x, n, axes, keep, false);
}
jx_t jx_min_axes(jx_t x, int n, const int *axes, bool keep) {
  return reduce_op(R_MIN, x, n, axes, keep, false);
}

static jx_t argreduce(jx_prim p, const char *op, jx_t x, int axis, bool keepdims) {
  jx_t e = jx_op_check_array(op, x);
  if (e) return e;
  const jx_aval *a = &x->aval;
  int ax = axis < 0 ? axis + a->ndim : axis;
  char s[160];
  if (ax < 0 || ax >= a->ndim)
    return jx_error_new("%s: axis %d is out of bounds for an array of shape %s", op, axis,
                        jx_aval_str(a, s, sizeof s));
  jx_t r = jx_lax_argreduce(p, x, ax, JX_I32);
  if (!keepdims || !jx_ok(r)) return r;
  int64_t shape[JX_MAX_RANK];
  for (int d = 0; d < a->ndim; d++) shape[d] = d == ax ? 1 : a->shape[d];
  return jx_lax_reshape(r, a->ndim, shape);
}
jx_t jx_argmax(jx_t x, int axis, bool keepdims) {
  return argreduce(JX_P_argmax, "argmax", x, axis, keepdims);
}
jx_t jx_argmin(jx_t x, int axis, bool keepdims) {
  return argreduce(JX_P_argmin, "argmin", x, axis, keepdims);
}
