/* Neural-network helpers, numerically stable: the max is subtracted
 * before exponentiating (and held constant for differentiation). */
#include "ops/ops.h"

#include <math.h>

static jx_t stable_max(jx_t x, int axis) {
  int r = jx_ndim(x), ax = axis < 0 ? axis + r : axis;
  if (jx_shape(x)[ax] == 0) { /* empty axis: max has no identity; shift by 0 (JAX: initial=-inf) */
    int64_t s[JX_MAX_RANK];
    memcpy(s, jx_shape(x), sizeof(int64_t) * (size_t)r);
    s[ax] = 1;
    return jx_zeros(jx_dtype_of(x), r, s);
  }
  jx_t m = jx_stop_gradient(jx_max_axes(x, 1, &axis, true));
  /* an all -inf row would give -inf - -inf = NaN; use 0 there */
  jx_t finite = jx_lt(jx_abs(m), jx_scalar(INFINITY));
  return jx_where(finite, m, jx_zeros_like(m));
}

static jx_t float_input(const char *op, jx_t x, int axis) {
  jx_t e = jx_op_check_array(op, x);
  if (e) return e;
  int r = x->aval.ndim;
  if (axis < -r || axis >= r) {
    char s[160];
    return jx_error_new("%s: axis %d is out of bounds for an array of shape %s", op, axis,
                        jx_aval_str(&x->aval, s, sizeof s));
  }
  return jx_op_to_float(x);
}

jx_t jx_logsumexp(jx_t x, int axis) {
  x = float_input("logsumexp", x, axis);
  if (!jx_ok(x)) return x;
  jx_t m = stable_max(x, axis);
  jx_t s = jx_sum_axes(jx_exp(jx_sub(x, m)), 1, &axis, true);
  return jx_squeeze(jx_add(jx_log(s), m), axis);
}

jx_t jx_softmax(jx_t x, int axis) {
  x = float_input("softmax", x, axis);
  if (!jx_ok(x)) return x;
  jx_t e = jx_exp(jx_sub(x, stable_max(x, axis)));
  return jx_div(e, jx_sum_axes(e, 1, &axis, true));
}

jx_t jx_log_softmax(jx_t x, int axis) {
  x = float_input("log_softmax", x, axis);
  if (!jx_ok(x)) return x;
  jx_t sh = jx_sub(x, stable_max(x, axis));
  return jx_sub(sh, jx_log(jx_sum_axes(jx_exp(sh), 1, &axis, true)));
}
