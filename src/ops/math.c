/* Elementwise math of issue #18 (jax.numpy / jax.lax names): special
 * functions, inverse and hyperbolic trigonometry, rounding, remainders,
 * clipping, float classification, integer powers and bitwise ops. Each is
 * one primitive where JAX has one (erfc, lgamma, digamma, atan2, ...) and
 * JAX's composition where jnp composes (log2, remainder, clip, isinf,
 * integer_pow's multiplications). */
#include "ops/ops.h"
#include "prims/prims.h"

#include <math.h>

/* ------------------------------------------------------------ unary */
/* promote ints and bool to f32 (jnp's promote_args_inexact) */
static jx_t float_unop(jx_prim p, const char *op, jx_t x) {
  jx_t e = jx_op_check_array(op, x);
  return e ? e : jx_lax_unary(p, jx_op_to_float(x));
}
#define FLOAT_UNOP(fn, prim)                                                                                 \
  jx_t jx_##fn(jx_t x) { return float_unop(JX_P_##prim, #fn, x); }
FLOAT_UNOP(erf, erf)
FLOAT_UNOP(erfc, erfc)
FLOAT_UNOP(erfinv, erf_inv)
FLOAT_UNOP(lgamma, lgamma)
FLOAT_UNOP(digamma, digamma)
FLOAT_UNOP(tan, tan)
FLOAT_UNOP(asin, asin)
FLOAT_UNOP(acos, acos)
FLOAT_UNOP(atan, atan)
FLOAT_UNOP(sinh, sinh)
FLOAT_UNOP(cosh, cosh)
FLOAT_UNOP(asinh, asinh)
FLOAT_UNOP(acosh, acosh)
FLOAT_UNOP(atanh, atanh)
FLOAT_UNOP(exp2, exp2)

/* jnp.log2: log(x) / log(2), as JAX composes it */
jx_t jx_log2(jx_t x) {
  jx_t e = jx_op_check_array("log2", x);
  if (e) return e;
  x = jx_op_to_float(x);
  jx_dtype dt = x->aval.dtype;
  jx_t two = jx_op_cast(jx_lax_const(dt, 2), dt, x->aval.weak); /* a weak x stays weak */
  return jx_lax_binary(JX_P_div, jx_lax_unary(JX_P_log, x), jx_lax_unary(JX_P_log, two));
}

/* ceil and round keep integer (and bool) inputs as they are, as jnp does */
static jx_t rounding(jx_prim p, const char *op, jx_t x) {
  jx_t e = jx_op_check_array(op, x);
  if (e) return e;
  return jx_dtype_is_float(x->aval.dtype) ? jx_lax_unary(p, x) : x;
}
jx_t jx_ceil(jx_t x) { return rounding(JX_P_ceil, "ceil", x); }
jx_t jx_round(jx_t x) { return rounding(JX_P_round, "round", x); }

/* ---------------------------------------------------- classification */
/* floats: x != x, |x| == inf, |x| < inf; ints and bool: false, false, true */
typedef enum { C_NAN, C_INF, C_FINITE } fclass;
static jx_t classify(fclass k, const char *op, jx_t x) {
  jx_t e = jx_op_check_array(op, x);
  if (e) return e;
  jx_dtype dt = x->aval.dtype;
  if (!jx_dtype_is_float(dt)) {
    jx_t c = jx_lax_const(JX_BOOL, k == C_FINITE);
    return x->aval.ndim ? jx_lax_broadcast_in_dim(c, x->aval.ndim, x->aval.shape, NULL) : c;
  }
  if (k == C_NAN) return jx_lax_binary(JX_P_ne, x, x);
  jx_t a = jx_lax_unary(JX_P_abs, x), inf = jx_lax_const(dt, INFINITY);
  return jx_lax_binary(k == C_INF ? JX_P_eq : JX_P_lt, a, inf);
}
jx_t jx_isnan(jx_t x) { return classify(C_NAN, "isnan", x); }
jx_t jx_isinf(jx_t x) { return classify(C_INF, "isinf", x); }
jx_t jx_isfinite(jx_t x) { return classify(C_FINITE, "isfinite", x); }

/* ----------------------------------------------------------- binary */
/* a and b broadcast to one shape, unless one of them is 0-d: the bits
 * family of primitives (rem, xor, shifts) takes equal shapes or a scalar */
static jx_t same_shapes(const char *op, jx_t *a, jx_t *b) {
  const jx_aval *x = &(*a)->aval, *y = &(*b)->aval;
  if (x->ndim == 0 || y->ndim == 0) return NULL;
  jx_aval o = {.dtype = x->dtype, .ndim = x->ndim > y->ndim ? x->ndim : y->ndim};
  for (int i = 0; i < o.ndim; i++) {
    int ix = i - (o.ndim - x->ndim), iy = i - (o.ndim - y->ndim);
    int64_t dx = ix >= 0 ? x->shape[ix] : 1, dy = iy >= 0 ? y->shape[iy] : 1;
    if (dx != dy && dx != 1 && dy != 1) {
      char s1[160], s2[160];
      return jx_error_new("%s: shapes %s and %s do not broadcast", op, jx_aval_str(x, s1, sizeof s1),
                          jx_aval_str(y, s2, sizeof s2));
    }
    o.shape[i] = dx == 1 ? dy : dx;
  }
  *a = jx_lax_broadcast_to_aval(*a, &o);
  *b = jx_lax_broadcast_to_aval(*b, &o);
  return NULL;
}

/* promote, check the dtype class, line the shapes up for a bits primitive */
static jx_t prep(const char *op, jx_t *a, jx_t *b, unsigned ok, const char *what, bool bits) {
  jx_t e = jx_op_promote(op, a, b);
  if (e) return e;
  if (!(ok & (1u << (*a)->aval.dtype))) {
    char s1[160], s2[160];
    return jx_error_new("%s: operands of shapes %s and %s: %s", op, jx_aval_str(&(*a)->aval, s1, sizeof s1),
                        jx_aval_str(&(*b)->aval, s2, sizeof s2), what);
  }
  return bits ? same_shapes(op, a, b) : NULL;
}
#define M_INT                                                                                                \
  ((1u << JX_I32) | (1u << JX_I64) | (1u << JX_U32) | (1u << JX_I8) | (1u << JX_U8) | (1u << JX_I16) |       \
   (1u << JX_U16) | (1u << JX_U64))
#define M_BOOL_INT (M_INT | (1u << JX_BOOL))
#define M_NUM      (M_INT | (1u << JX_F32) | (1u << JX_F64) | (1u << JX_BF16) | (1u << JX_F16))

jx_t jx_atan2(jx_t a, jx_t b) {
  jx_t e = jx_op_promote("atan2", &a, &b);
  if (e) return e;
  return jx_lax_binary(JX_P_atan2, jx_op_to_float(a), jx_op_to_float(b));
}

/* jnp.fmod = lax.rem: the sign of the dividend (C's fmod) */
jx_t jx_fmod(jx_t a, jx_t b) {
  jx_t e = prep("fmod", &a, &b, M_NUM, "need numeric (non-bool) dtypes", true);
  return e ? e : jx_lax_binary(JX_P_rem, a, b);
}

/* jnp.remainder (jnp.mod, Python's %): the sign of the divisor. JAX's
 * composition: r = rem(a, b); r + b where r != 0 and sign(r) != sign(b). */
jx_t jx_remainder(jx_t a, jx_t b) {
  jx_t e = prep("remainder", &a, &b, M_NUM, "need numeric (non-bool) dtypes", true);
  if (e) return e;
  jx_dtype dt = a->aval.dtype;
  jx_t r = jx_lax_binary(JX_P_rem, a, b), zero = jx_lax_const(dt, 0);
  jx_t flip = jx_lax_binary(JX_P_ne, jx_lax_binary(JX_P_lt, r, zero), jx_lax_binary(JX_P_lt, b, zero));
  jx_t plus = jx_lax_binary(JX_P_and, jx_lax_binary(JX_P_ne, r, zero), flip);
  return jx_lax_select(plus, jx_lax_binary(JX_P_add, r, b), r);
}

/* jnp.clip: maximum(lo, x) then minimum(hi, .); NULL bounds are absent */
jx_t jx_clip(jx_t x, jx_t lo, jx_t hi) {
  jx_t e = jx_op_check_array("clip", x);
  if (e) return e;
  if (lo) x = jx_maximum(lo, x);
  if (hi) x = jx_minimum(hi, x);
  return x;
}

/* lax.integer_pow: exponentiation by squaring with multiplications (as JAX
 * lowers it), 1 / x^-n for n < 0; its derivatives follow from the muls */
jx_t jx_integer_pow(jx_t x, int n) {
  jx_t e = jx_op_check_array("integer_pow", x);
  if (e) return e;
  jx_dtype dt = x->aval.dtype;
  char s[160];
  if (dt == JX_BOOL) return jx_error_new("integer_pow: bool operand %s", jx_aval_str(&x->aval, s, sizeof s));
  if (n < 0 && !jx_dtype_is_float(dt))
    return jx_error_new("integer_pow: integer operand %s raised to the negative power %d",
                        jx_aval_str(&x->aval, s, sizeof s), n);
  unsigned m = n < 0 ? 0u - (unsigned)n : (unsigned)n;
  jx_t acc = NULL, sq = x;
  for (; m; m >>= 1) {
    if (m & 1) acc = acc ? jx_lax_binary(JX_P_mul, acc, sq) : sq;
    if (m > 1) sq = jx_lax_binary(JX_P_mul, sq, sq);
  }
  if (!acc) return jx_lax_broadcast_to_aval(jx_op_cast(jx_lax_const(dt, 1), dt, x->aval.weak), &x->aval);
  return n < 0 ? jx_lax_binary(JX_P_div, jx_op_cast(jx_lax_const(dt, 1), dt, x->aval.weak), acc) : acc;
}

/* ----------------------------------------------------------- bitwise */
static jx_t bitwise(jx_prim p, const char *op, jx_t a, jx_t b, bool bits) {
  jx_t e = prep(op, &a, &b, M_BOOL_INT, "need bool or integer dtypes", bits);
  return e ? e : jx_lax_binary(p, a, b);
}
jx_t jx_bitwise_and(jx_t a, jx_t b) { return bitwise(JX_P_and, "bitwise_and", a, b, false); }
jx_t jx_bitwise_or(jx_t a, jx_t b) { return bitwise(JX_P_or, "bitwise_or", a, b, false); }
jx_t jx_bitwise_xor(jx_t a, jx_t b) { return bitwise(JX_P_xor, "bitwise_xor", a, b, true); }
jx_t jx_bitwise_not(jx_t x) {
  jx_t e = jx_op_check_array("bitwise_not", x);
  if (e) return e;
  if (jx_dtype_is_float(x->aval.dtype)) {
    char s[160];
    return jx_error_new("bitwise_not: operand %s: need a bool or integer dtype",
                        jx_aval_str(&x->aval, s, sizeof s));
  }
  return jx_lax_unary(JX_P_not, x);
}

static jx_t shift(jx_prim p, const char *op, jx_t a, jx_t b) {
  jx_t e = prep(op, &a, &b, M_INT, "need integer dtypes", true);
  if (e) return e;
  if (p == JX_P_shift_right_arithmetic && jx_dtype_is_unsigned(a->aval.dtype)) p = JX_P_shift_right_logical;
  return jx_lax_binary(p, a, b);
}
jx_t jx_left_shift(jx_t a, jx_t b) { return shift(JX_P_shift_left, "left_shift", a, b); }
/* jnp.right_shift: arithmetic for signed, logical for unsigned dtypes */
jx_t jx_right_shift(jx_t a, jx_t b) { return shift(JX_P_shift_right_arithmetic, "right_shift", a, b); }
jx_t jx_shift_right_logical(jx_t a, jx_t b) {
  return shift(JX_P_shift_right_logical, "shift_right_logical", a, b);
}
/* lax.shift_right_arithmetic: the sign bit fills, u32 included */
jx_t jx_shift_right_arithmetic(jx_t a, jx_t b) {
  jx_t e = prep("shift_right_arithmetic", &a, &b, M_INT, "need integer dtypes", true);
  return e ? e : jx_lax_binary(JX_P_shift_right_arithmetic, a, b);
}

/* -------------------------------------------------------- polygamma */
/* Hurwitz zeta(s, q) = sum_k (q + k)^-s by Euler-Maclaurin, as Cephes
 * and XLA compute it: N terms summed, the tail from w = q + N as
 * w^(1-s) / (s - 1) + w^-s / 2 + sum_j B_2j / (2j)! s (s+1) ... (s+2j-2)
 * w^(-s-2j+1). Its derivative in q is -s times the same expansion of
 * zeta(s + 1, q), term by term, so polygamma's derivative in x comes out
 * as polygamma(n + 1, x), JAX's jvp. Accurate for q + N > 9 (q > -3). */
enum { ZETA_N = 12 };
static const double ZETA_A[] = {12.0, /* (2j)! / B_2j */
                                -720.0,
                                30240.0,
                                -1209600.0,
                                47900160.0,
                                -1.8924375803183791606e9,
                                7.47242496e10,
                                -2.950130727918164224e12,
                                1.1646782814350067249e14,
                                -4.5979787224074726105e15,
                                1.8152105401943546773e17,
                                -7.1661652561756670113e18};

static jx_t bin(jx_prim p, jx_t a, jx_t b) { return jx_lax_binary(p, a, b); }

#define K(v) jx_lax_const(dt, (v)) /* a constant of the local dtype dt */
static jx_t zeta(jx_t s, jx_t q) {
  jx_dtype dt = s->aval.dtype;
  jx_t ms = jx_lax_unary(JX_P_neg, s), sum = bin(JX_P_pow, q, ms);
  for (int k = 1; k < ZETA_N; k++) sum = bin(JX_P_add, sum, bin(JX_P_pow, bin(JX_P_add, q, K(k)), ms));
  jx_t w = bin(JX_P_add, q, K(ZETA_N)), ws = bin(JX_P_pow, w, ms); /* w^-s */
  sum = bin(JX_P_add, sum, bin(JX_P_div, bin(JX_P_mul, w, ws), bin(JX_P_sub, s, K(1))));
  sum = bin(JX_P_add, sum, bin(JX_P_mul, ws, K(0.5)));
  jx_t poch = s, wp = bin(JX_P_div, ws, w), iw2 = bin(JX_P_div, K(1), bin(JX_P_mul, w, w));
  for (int j = 1; j <= (int)(sizeof ZETA_A / sizeof *ZETA_A); j++) {
    sum = bin(JX_P_add, sum, bin(JX_P_mul, bin(JX_P_mul, poch, wp), K(1 / ZETA_A[j - 1])));
    poch = bin(JX_P_mul, poch, bin(JX_P_mul, bin(JX_P_add, s, K(2 * j - 1)), bin(JX_P_add, s, K(2 * j))));
    wp = bin(JX_P_mul, wp, iw2);
  }
  return sum;
}

/* jax.scipy.special.polygamma(n, x): digamma at n = 0, else (-1)^(n+1) n!
 * zeta(n + 1, x); NaN where n is negative or not an integer. n is not
 * differentiated (JAX's rule has no jvp in n). bf16/f16 compute in f32. */
jx_t jx_polygamma(jx_t n, jx_t x) {
  jx_t e = jx_op_promote("polygamma", &n, &x);
  if (e) return e;
  n = jx_op_to_float(n), x = jx_op_to_float(x);
  jx_dtype odt = x->aval.dtype, dt = jx_dtype_is_half(odt) ? JX_F32 : odt;
  bool weak = n->aval.weak && x->aval.weak;
  n = jx_lax_convert(n, dt), x = jx_lax_convert(x, dt);
  jx_aval shape[1], in[2] = {n->aval, x->aval};
  if ((e = jx_broadcast_shapes("polygamma", in, 2, shape))) return e;
  shape->dtype = dt, shape->weak = false;
  n = jx_lax_unary(JX_P_stop_gradient, jx_lax_broadcast_to_aval(n, shape));
  x = jx_lax_broadcast_to_aval(x, shape);
  jx_t valid = bin(JX_P_and, bin(JX_P_ge, n, K(0)), bin(JX_P_eq, n, jx_lax_unary(JX_P_floor, n)));
  jx_t pos = bin(JX_P_and, valid, bin(JX_P_ge, n, K(1)));
  /* s = n + 1 where used, 2 elsewhere (no NaN in the unused branch's derivative) */
  jx_t s = jx_lax_select(pos, bin(JX_P_add, n, K(1)), jx_lax_broadcast_to_aval(K(2), shape));
  jx_t half = bin(JX_P_mul, n, K(0.5));
  jx_t even = bin(JX_P_eq, half, jx_lax_unary(JX_P_floor, half));
  jx_t sign =
      jx_lax_select(even, jx_lax_broadcast_to_aval(K(-1), shape), jx_lax_broadcast_to_aval(K(1), shape));
  jx_t fact = jx_lax_unary(JX_P_exp, jx_lax_unary(JX_P_lgamma, s)); /* Gamma(s) = n! */
  jx_t pg = bin(JX_P_mul, bin(JX_P_mul, sign, fact), zeta(s, x));
  jx_t r = jx_lax_select(pos, pg, jx_lax_unary(JX_P_digamma, x));
  r = jx_lax_select(valid, r, jx_lax_broadcast_to_aval(K(NAN), shape));
#undef K
  return jx_op_cast(r, odt, weak);
}
