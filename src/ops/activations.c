/* jax.nn functions of issue #18 (activations, standardize) and
 * jax.nn.initializers' variance scaling family, as JAX composes them. */
#include "ops/ops.h"

#include <math.h>
#include <stdio.h>

/* x made float, or an error naming op */
static jx_t float_in(const char *op, jx_t *x) {
  jx_t e = jx_op_check_array(op, *x);
  if (!e) *x = jx_op_to_float(*x);
  return e;
}
/* a constant of x's dtype and weakness (a Python number in JAX's code) */
static jx_t K(jx_t x, double v) {
  return jx_op_cast(jx_scalar_of(x->aval.dtype, v), x->aval.dtype, x->aval.weak);
}

/* jax.nn.gelu. approximate: x/2 (1 + tanh(z)), z = sqrt(2/pi) (x +
 * 0.044715 x^3), computed as x * sigmoid(2z), the same function without
 * the cancellation of 1 + tanh(z) for negative x (which loses every digit
 * in f32 below x = -5). Exact: x/2 erfc(-x / sqrt 2), as JAX. */
jx_t jx_gelu(jx_t x, bool approximate) {
  jx_t e = float_in("gelu", &x);
  if (e) return e;
  if (approximate) {
    jx_t x3 = jx_lax_binary(JX_P_mul, jx_lax_binary(JX_P_mul, x, x), x);
    jx_t z2 = jx_lax_binary(JX_P_mul, K(x, 1.5957691216057307118),
                            jx_lax_binary(JX_P_add, x, jx_lax_binary(JX_P_mul, K(x, 0.044715), x3)));
    return jx_lax_binary(JX_P_mul, x, jx_lax_unary(JX_P_logistic, z2));
  }
  jx_t c = jx_lax_unary(JX_P_erfc, jx_lax_binary(JX_P_mul, jx_lax_unary(JX_P_neg, x), K(x, M_SQRT1_2)));
  return jx_lax_binary(JX_P_mul, jx_lax_binary(JX_P_mul, K(x, 0.5), x), c);
}

/* jax.nn.silu (swish): x * sigmoid(x) */
jx_t jx_silu(jx_t x) {
  jx_t e = float_in("silu", &x);
  return e ? e : jx_lax_binary(JX_P_mul, x, jx_lax_unary(JX_P_logistic, x));
}

/* logaddexp(x, 0) = max(x, 0) + log1p(exp(-|x|)): no overflow either way */
static jx_t softplus(jx_t x) {
  jx_t m = jx_lax_binary(JX_P_max, x, K(x, 0));
  jx_t t =
      jx_lax_unary(JX_P_log1p, jx_lax_unary(JX_P_exp, jx_lax_unary(JX_P_neg, jx_lax_unary(JX_P_abs, x))));
  return jx_lax_binary(JX_P_add, m, t);
}
jx_t jx_softplus(jx_t x) {
  jx_t e = float_in("softplus", &x);
  return e ? e : softplus(x);
}
/* jax.nn.log_sigmoid: -softplus(-x) */
jx_t jx_log_sigmoid(jx_t x) {
  jx_t e = float_in("log_sigmoid", &x);
  return e ? e : jx_lax_unary(JX_P_neg, softplus(jx_lax_unary(JX_P_neg, x)));
}

/* jax.nn.elu: x where x > 0, else alpha * expm1(x) (expm1 of 0 on the
 * positive side, so no overflow reaches the unused branch's gradient) */
jx_t jx_elu(jx_t x, double alpha) {
  jx_t e = float_in("elu", &x);
  if (e) return e;
  jx_t pos = jx_lax_binary(JX_P_gt, x, K(x, 0));
  jx_t safe = jx_lax_select(pos, jx_lax_broadcast_to_aval(K(x, 0), &x->aval), x);
  return jx_lax_select(pos, x, jx_lax_binary(JX_P_mul, K(x, alpha), jx_lax_unary(JX_P_expm1, safe)));
}

/* jax.nn.leaky_relu: x where x >= 0, else negative_slope * x */
jx_t jx_leaky_relu(jx_t x, double negative_slope) {
  jx_t e = float_in("leaky_relu", &x);
  if (e) return e;
  jx_t pos = jx_lax_binary(JX_P_ge, x, K(x, 0));
  return jx_lax_select(pos, x, jx_lax_binary(JX_P_mul, K(x, negative_slope), x));
}

/* jax.nn.standardize: (x - mean) * rsqrt(var + epsilon) over axes (NULL:
 * the last axis), var = mean(x^2) - mean^2 as JAX computes it */
jx_t jx_standardize(jx_t x, int naxes, const int *axes, double epsilon) {
  jx_t e = float_in("standardize", &x);
  if (e) return e;
  int last = -1;
  if (!axes) {
    if (x->aval.ndim == 0) return jx_error_new("standardize: a 0-d operand has no last axis");
    naxes = 1, axes = &last;
  }
  jx_t mean = jx_mean_axes(x, naxes, axes, true);
  if (!jx_ok(mean)) return jx_error_new("standardize: %s", jx_error(mean));
  jx_t var = jx_sub(jx_mean_axes(jx_mul(x, x), naxes, axes, true), jx_mul(mean, mean));
  return jx_mul(jx_sub(x, mean), jx_rsqrt(jx_add(var, K(x, epsilon))));
}

/* ------------------------------------------------------------ initializers */
/* jax.nn.initializers.variance_scaling: fans from the in and out axes and
 * the receptive field (the product of the other dims); variance = scale /
 * (fan_in | fan_out | (fan_in + fan_out) / 2) rounded to dtype; samples
 * truncated_normal(-2, 2) * sqrt(variance) / 0.8796..., normal *
 * sqrt(variance) or uniform(-1, 1) * sqrt(3 variance), in dtype as JAX. */
jx_t jx_variance_scaling(jx_t key, jx_dtype dt, int ndim, const int64_t *shape, double scale,
                         const char *mode, const char *distribution, int in_axis, int out_axis) {
  const char *op = "variance_scaling";
  char s[160];
  if (dt != JX_F32 && dt != JX_F64 && !jx_dtype_is_half(dt)) /* bf16/f16: drawn and scaled in dt, as JAX */
    return jx_error_new("%s: dtype %s is not a float dtype", op, jx_dtype_name(dt));
  if (ndim < 0 || ndim > JX_MAX_RANK || (ndim && !shape))
    return jx_error_new("%s: bad shape (rank %d)", op, ndim);
  jx_shape_str(ndim, shape, s, sizeof s);
  int ia = in_axis < 0 ? in_axis + ndim : in_axis, oa = out_axis < 0 ? out_axis + ndim : out_axis;
  if (ia < 0 || ia >= ndim || oa < 0 || oa >= ndim || ia == oa)
    return jx_error_new("%s: in_axis %d and out_axis %d do not name two axes of shape %s", op, in_axis,
                        out_axis, s);
  if (!(scale > 0)) return jx_error_new("%s: scale must be positive, got %g", op, scale);
  double rf = 1;
  for (int d = 0; d < ndim; d++)
    if (d != ia && d != oa) rf *= (double)shape[d];
  double fan_in = (double)shape[ia] * rf, fan_out = (double)shape[oa] * rf, den;
  if (mode && !strcmp(mode, "fan_in"))
    den = fan_in;
  else if (mode && !strcmp(mode, "fan_out"))
    den = fan_out;
  else if (mode && !strcmp(mode, "fan_avg"))
    den = (fan_in + fan_out) / 2;
  else
    return jx_error_new("%s: mode must be fan_in, fan_out or fan_avg, not '%s'", op, mode ? mode : "(null)");
  if (!(den > 0)) return jx_error_new("%s: shape %s has a zero fan", op, s);
  jx_t var = jx_scalar_of(dt, scale / den);
  jx_t r;
  if (distribution && !strcmp(distribution, "truncated_normal")) {
    jx_t sd = jx_div(jx_sqrt(var), jx_scalar_of(dt, .87962566103423978));
    r = jx_mul(jx_random_truncated_normal(key, dt, ndim, shape, -2, 2), sd);
  } else if (distribution && !strcmp(distribution, "normal")) {
    r = jx_mul(jx_random_normal(key, dt, ndim, shape), jx_sqrt(var));
  } else if (distribution && !strcmp(distribution, "uniform")) {
    r = jx_mul(jx_random_uniform(key, dt, ndim, shape, -1, 1), jx_sqrt(jx_mul(jx_scalar_int(3), var)));
  } else {
    return jx_error_new("%s: distribution must be truncated_normal, normal or uniform, not '%s'", op,
                        distribution ? distribution : "(null)");
  }
  if (!jx_ok(r)) return jx_error_new("%s: %s", op, jx_error(r));
  return r;
}

#define INIT(name, scale, mode, dist)                                                                        \
  jx_t jx_##name(jx_t key, jx_dtype dt, int ndim, const int64_t *shape) {                                    \
    return jx_variance_scaling(key, dt, ndim, shape, scale, mode, dist, -2, -1);                             \
  }
INIT(glorot_uniform, 1.0, "fan_avg", "uniform")
INIT(glorot_normal, 1.0, "fan_avg", "truncated_normal")
INIT(lecun_uniform, 1.0, "fan_in", "uniform")
INIT(lecun_normal, 1.0, "fan_in", "truncated_normal")
INIT(he_uniform, 2.0, "fan_in", "uniform")
INIT(he_normal, 2.0, "fan_in", "truncated_normal")
