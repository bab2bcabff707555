/* Scalar semantics of every elementwise primitive, one static inline
 * function per (op, dtype): add_f32, tanh_f64, cvt_f32_i32, ...
 *
 * This header is the single definition of what an elementwise op computes.
 * The eager kernels include it, and the jit's C renderer pastes its text
 * in front of every generated program, so compiled and eager code agree
 * bit for bit (up to the C compiler's own floating-point contraction,
 * which the jit disables with -ffp-contract=off). It also holds the one
 * streaming store both use for large outputs (jx_stream, at the end).
 * Self-contained: <math.h>, <stdint.h>, <string.h> and, with SSE2,
 * <emmintrin.h>.
 *
 * Parts: the jit pastes only the parts a program calls (a program that
 * streams no output skips emmintrin.h, ~15 ms of each build). A comment
 * "@jx-part NAME [+DEP...]: FUNCTION..." (opening a C comment) starts a
 * part, which runs to the next such comment or to the "@jx-end" one. It
 * defines the functions it lists, using the text before the first part
 * (includes, macros), the parts named +DEP (earlier in the file) and the
 * parts that list no function (always pasted). test_render compiles every
 * part alone against its list. */
#ifndef JX_SCALAR_OPS_H
#define JX_SCALAR_OPS_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Signed integers: wrapping arithmetic through the unsigned type U. */
#define DEF_SINT(S, T, U)                                                                                    \
  static inline T add_##S(T a, T b) { return (T)((U)a + (U)b); }                                             \
  static inline T sub_##S(T a, T b) { return (T)((U)a - (U)b); }                                             \
  static inline T mul_##S(T a, T b) { return (T)((U)a * (U)b); }                                             \
  static inline T neg_##S(T a) { return (T)((U)0 - (U)a); }                                                  \
  /* b == -1 is negation: INT_MIN / -1 would trap */                                                         \
  static inline T div_##S(T a, T b) { return b == 0 ? 0 : b == -1 ? neg_##S(a) : a / b; }                    \
  static inline T pow_##S(T a, T b) {                                                                        \
    if (b < 0) return a == 1 ? 1 : a == -1 ? ((b & 1) ? -1 : 1) : 0;                                         \
    U r = 1, x = (U)a;                                                                                       \
    for (U e = (U)b; e; e >>= 1) {                                                                           \
      if (e & 1) r *= x;                                                                                     \
      x *= x;                                                                                                \
    }                                                                                                        \
    return (T)r;                                                                                             \
  }                                                                                                          \
  static inline T max_##S(T a, T b) { return a > b ? a : b; }                                                \
  static inline T min_##S(T a, T b) { return a < b ? a : b; }                                                \
  static inline T and_##S(T a, T b) { return a & b; }                                                        \
  static inline T or_##S(T a, T b) { return a | b; }                                                         \
  static inline T abs_##S(T a) { return a < 0 ? neg_##S(a) : a; } /* INT_MIN wraps */                        \
  static inline T sign_##S(T a) { return (T)((a > 0) - (a < 0)); }                                           \
  static inline T not_##S(T a) { return (T)~a; }

/* Unsigned integers wrap by definition, computed in W (at least T and
 * unsigned int: u8/u16 would promote to int, where 65535 * 65535
 * overflows). */
#define DEF_UINT(S, T, W)                                                                                    \
  static inline T add_##S(T a, T b) { return (T)((W)a + (W)b); }                                             \
  static inline T sub_##S(T a, T b) { return (T)((W)a - (W)b); }                                             \
  static inline T mul_##S(T a, T b) { return (T)((W)a * (W)b); }                                             \
  static inline T neg_##S(T a) { return (T)((W)0 - (W)a); }                                                  \
  static inline T div_##S(T a, T b) { return b == 0 ? 0 : (T)(a / b); }                                      \
  static inline T pow_##S(T a, T b) {                                                                        \
    W r = 1, x = a;                                                                                          \
    for (; b; b >>= 1) {                                                                                     \
      if (b & 1) r *= x;                                                                                     \
      x *= x;                                                                                                \
    }                                                                                                        \
    return (T)r;                                                                                             \
  }                                                                                                          \
  static inline T max_##S(T a, T b) { return a > b ? a : b; }                                                \
  static inline T min_##S(T a, T b) { return a < b ? a : b; }                                                \
  static inline T and_##S(T a, T b) { return a & b; }                                                        \
  static inline T or_##S(T a, T b) { return a | b; }                                                         \
  static inline T abs_##S(T a) { return a; }                                                                 \
  static inline T sign_##S(T a) { return a != 0; }                                                           \
  static inline T not_##S(T a) { return (T)~a; }

/* Floats: F is the libm suffix ("f" for float, empty for double). */
#define DEF_FLOAT(S, T, F)                                                                                   \
  static inline T add_##S(T a, T b) { return a + b; }                                                        \
  static inline T sub_##S(T a, T b) { return a - b; }                                                        \
  static inline T mul_##S(T a, T b) { return a * b; }                                                        \
  static inline T div_##S(T a, T b) { return a / b; }                                                        \
  static inline T pow_##S(T a, T b) { return pow##F(a, b); }                                                 \
  /* NaN in either operand wins, like jnp.maximum */                                                         \
  static inline T max_##S(T a, T b) { return (a > b || a != a) ? a : b; }                                    \
  static inline T min_##S(T a, T b) { return (a < b || a != a) ? a : b; }                                    \
  static inline T neg_##S(T a) { return -a; }                                                                \
  static inline T abs_##S(T a) { return fabs##F(a); }                                                        \
  /* NaN stays NaN and +-0 stay themselves, as in lax.sign */                                                \
  static inline T sign_##S(T a) { return a > 0 ? (T)1 : a < 0 ? (T)-1 : a; }                                 \
  static inline T floor_##S(T a) { return floor##F(a); }                                                     \
  static inline T exp_##S(T a) { return exp##F(a); }                                                         \
  static inline T log_##S(T a) { return log##F(a); }                                                         \
  static inline T log1p_##S(T a) { return log1p##F(a); }                                                     \
  static inline T expm1_##S(T a) { return expm1##F(a); }                                                     \
  static inline T sqrt_##S(T a) { return sqrt##F(a); }                                                       \
  static inline T rsqrt_##S(T a) { return (T)1 / sqrt##F(a); }                                               \
  static inline T sin_##S(T a) { return sin##F(a); }                                                         \
  static inline T cos_##S(T a) { return cos##F(a); }                                                         \
  /* exp of a non-positive argument only: never overflows */                                                 \
  static inline T logistic_##S(T a) {                                                                        \
    if (a >= 0) return (T)1 / ((T)1 + exp##F(-a));                                                           \
    T e = exp##F(a);                                                                                         \
    return e / ((T)1 + e);                                                                                   \
  }

/*@jx-part b: add_b sub_b mul_b div_b pow_b max_b min_b and_b or_b not_b*/
/* bool as arithmetic mod 2 with x/0 = 0, which keeps every result in {0,1}:
 * add/sub = xor, mul/div/min/and = and, max/or = or, pow = a | !b. */
static inline uint8_t add_b(uint8_t a, uint8_t b) { return a ^ b; }
static inline uint8_t sub_b(uint8_t a, uint8_t b) { return a ^ b; }
static inline uint8_t mul_b(uint8_t a, uint8_t b) { return a & b; }
static inline uint8_t div_b(uint8_t a, uint8_t b) { return a & b; }
static inline uint8_t pow_b(uint8_t a, uint8_t b) { return a | !b; }
static inline uint8_t max_b(uint8_t a, uint8_t b) { return a | b; }
static inline uint8_t min_b(uint8_t a, uint8_t b) { return a & b; }
static inline uint8_t and_b(uint8_t a, uint8_t b) { return a & b; }
static inline uint8_t or_b(uint8_t a, uint8_t b) { return a | b; }
static inline uint8_t not_b(uint8_t a) { return !a; }

/*@jx-part i32: add_i32 sub_i32 mul_i32 neg_i32 div_i32 pow_i32 max_i32 min_i32 and_i32 or_i32 abs_i32 sign_i32 not_i32*/
DEF_SINT(i32, int32_t, uint32_t)
/*@jx-part i64: add_i64 sub_i64 mul_i64 neg_i64 div_i64 pow_i64 max_i64 min_i64 and_i64 or_i64 abs_i64 sign_i64 not_i64*/
DEF_SINT(i64, int64_t, uint64_t)
/*@jx-part u32: add_u32 sub_u32 mul_u32 neg_u32 div_u32 pow_u32 max_u32 min_u32 and_u32 or_u32 abs_u32 sign_u32 not_u32*/
DEF_UINT(u32, uint32_t, uint32_t)
/* (#19) the small integers compute in 32 bits (U: wraps, no UB), u64 in 64 */
/*@jx-part i8: add_i8 sub_i8 mul_i8 neg_i8 div_i8 pow_i8 max_i8 min_i8 and_i8 or_i8 abs_i8 sign_i8 not_i8*/
DEF_SINT(i8, int8_t, uint32_t)
/*@jx-part i16: add_i16 sub_i16 mul_i16 neg_i16 div_i16 pow_i16 max_i16 min_i16 and_i16 or_i16 abs_i16 sign_i16 not_i16*/
DEF_SINT(i16, int16_t, uint32_t)
/*@jx-part u8: add_u8 sub_u8 mul_u8 neg_u8 div_u8 pow_u8 max_u8 min_u8 and_u8 or_u8 abs_u8 sign_u8 not_u8*/
DEF_UINT(u8, uint8_t, uint32_t)
/*@jx-part u16: add_u16 sub_u16 mul_u16 neg_u16 div_u16 pow_u16 max_u16 min_u16 and_u16 or_u16 abs_u16 sign_u16 not_u16*/
DEF_UINT(u16, uint16_t, uint32_t)
/*@jx-part u64: add_u64 sub_u64 mul_u64 neg_u64 div_u64 pow_u64 max_u64 min_u64 and_u64 or_u64 abs_u64 sign_u64 not_u64*/
DEF_UINT(u64, uint64_t, uint64_t)
/*@jx-part f32: add_f32 sub_f32 mul_f32 div_f32 pow_f32 max_f32 min_f32 neg_f32 abs_f32 sign_f32 floor_f32 exp_f32 log_f32 log1p_f32 expm1_f32 sqrt_f32 rsqrt_f32 sin_f32 cos_f32 logistic_f32*/
DEF_FLOAT(f32, float, f)
/*@jx-part f64: add_f64 sub_f64 mul_f64 div_f64 pow_f64 max_f64 min_f64 neg_f64 abs_f64 sign_f64 floor_f64 exp_f64 log_f64 log1p_f64 expm1_f64 sqrt_f64 rsqrt_f64 sin_f64 cos_f64 logistic_f64*/
DEF_FLOAT(f64, double, )

/*@jx-part tanh_f32: tanh_f32*/
/* tanh f32: the rational approximation XLA:CPU uses (Eigen's fast tanh:
 * odd degree-13 numerator over even degree-6 denominator, on [-7.9, 7.9]
 * where f32 tanh is not yet +-1). It is what jax computes on CPU, within
 * ~2 ulp of the true value, and, unlike libm's tanhf (an expm1f call),
 * it vectorizes: the MLP's activations cost a fraction of its GEMMs. */
static inline float tanh_f32(float x) {
  const float c = 7.90531110763549805f;
  float y = x > c ? c : x < -c ? -c : x;
  if (x != x) y = x; /* NaN stays NaN */
  const float y2 = y * y;
  float p = y2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
  p = y2 * p + -8.60467152213735e-11f;
  p = y2 * p + 5.12229709037114e-08f;
  p = y2 * p + 1.48572235717979e-05f;
  p = y2 * p + 6.37261928875436e-04f;
  p = y2 * p + 4.89352455891786e-03f;
  p = y * p;
  float q = y2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
  q = y2 * q + 2.26843463243900e-03f;
  q = y2 * q + 4.89352518554385e-03f;
  return (y < 0.0004f && y > -0.0004f) ? y : p / q;
}
/*@jx-part tanh_f64: tanh_f64*/
static inline double tanh_f64(double x) { return tanh(x); }

/*@jx-part half: jx_f32_bits jx_bits_f32 jx_bf16_to_f32 jx_f32_to_bf16 jx_f16_to_f32 jx_f32_to_f16
 * jx_f64_to_f32_odd jx_f64_to_bf16 jx_f64_to_f16*/
/* ------------------------------------------- bf16 and f16 (#19) */
/* Stored as their 16-bit patterns (uint16_t), computed in f32 as XLA:CPU
 * does: every op widens its operands (exactly), computes in f32 and rounds
 * its result once to the 16-bit type. Rounding is to nearest, ties to
 * even, as IEEE: a value past the largest finite one by half an ulp or
 * more becomes Inf, subnormals are kept. A NaN keeps its sign and its top
 * payload bits and is made quiet (what F16C's vcvtps2ph does, so the run
 * time F16C path of the eager converter gives the same bits). Widening
 * bf16 is a shift; widening f16 quiets a NaN (vcvtph2ps does too). */
static inline uint32_t jx_f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}
static inline float jx_bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
static inline float jx_bf16_to_f32(uint16_t h) { return jx_bits_f32((uint32_t)h << 16); }
static inline uint16_t jx_f32_to_bf16(float f) {
  uint32_t u = jx_f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
  /* adding 0x7fff, plus the kept part's low bit, carries exactly when the
   * dropped half is above the tie or at it with an odd kept part; a carry
   * out of the mantissa steps the exponent (up to Inf) */
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
static inline float jx_f16_to_f32(uint16_t h) {
  uint32_t s = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0) { /* zero or subnormal: m * 2^-24, exact in f32 */
    float f = (float)m * 0x1p-24f;
    return s ? -f : f;
  }
  if (e == 31) return jx_bits_f32(s | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0u));
  return jx_bits_f32(s | ((e + 112u) << 23) | (m << 13));
}
static inline uint16_t jx_f32_to_f16(float f) {
  uint32_t u = jx_f32_bits(f), s = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(s | 0x7e00u | ((a >> 13) & 0x3ffu));
  if (a >= 0x477ff000u) return (uint16_t)(s | 0x7c00u); /* 65520 and up: Inf (max 65504) */
  if (a >= 0x38800000u) /* normal: rebias the exponent by 127 - 15, round as bf16 does */
    return (uint16_t)(s | ((a - 0x38000000u + 0xfffu + ((a >> 13) & 1u)) >> 13));
  /* below 2^-14: a subnormal f16, in units of 2^-24 */
  uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
  if (e < 102u) return (uint16_t)s; /* under 2^-25 (or 0): rounds to zero */
  uint32_t sh = 126u - e, q = m >> sh, r = m & ((1u << sh) - 1u), half = 1u << (sh - 1u);
  q += (r > half) || (r == half && (q & 1u));
  return (uint16_t)(s | q);
}
/* f64 -> f32 rounded to odd (truncate, then set the last bit if inexact):
 * rounding that again to bf16/f16 (at least 2 bits shorter) is the
 * correctly rounded f64 -> bf16/f16, with no double-rounding error. */
static inline float jx_f64_to_f32_odd(double d) {
  float f = (float)d;
  if (d != d || (double)f == d) return f;
  uint32_t u = jx_f32_bits(f);
  if (fabs((double)f) > fabs(d)) u -= 1u; /* rounded away from zero: step back */
  return jx_bits_f32(u | 1u);
}
static inline uint16_t jx_f64_to_bf16(double d) { return jx_f32_to_bf16(jx_f64_to_f32_odd(d)); }
static inline uint16_t jx_f64_to_f16(double d) { return jx_f32_to_f16(jx_f64_to_f32_odd(d)); }
/* op_S(a...) = round(op_f32(widen(a)...)) */
#define JX_H1(S, name)                                                                                       \
  static inline uint16_t name##_##S(uint16_t a) { return jx_f32_to_##S(name##_f32(jx_##S##_to_f32(a))); }
#define JX_H2(S, name)                                                                                       \
  static inline uint16_t name##_##S(uint16_t a, uint16_t b) {                                                \
    return jx_f32_to_##S(name##_f32(jx_##S##_to_f32(a), jx_##S##_to_f32(b)));                                \
  }
#define JX_HCMP(S, name)                                                                                     \
  static inline uint8_t name##_##S(uint16_t a, uint16_t b) {                                                 \
    return name##_f32(jx_##S##_to_f32(a), jx_##S##_to_f32(b));                                               \
  }
#define DEF_HALF(S)                                                                                          \
  JX_H2(S, add)                                                                                              \
  JX_H2(S, sub)                                                                                              \
  JX_H2(S, mul)                                                                                              \
  JX_H2(S, div)                                                                                              \
  JX_H2(S, pow)                                                                                              \
  JX_H2(S, max)                                                                                              \
  JX_H2(S, min)                                                                                              \
  JX_H1(S, neg)                                                                                              \
  JX_H1(S, abs)                                                                                              \
  JX_H1(S, sign)                                                                                             \
  JX_H1(S, floor)                                                                                            \
  JX_H1(S, exp)                                                                                              \
  JX_H1(S, log)                                                                                              \
  JX_H1(S, log1p)                                                                                            \
  JX_H1(S, expm1)                                                                                            \
  JX_H1(S, sqrt)                                                                                             \
  JX_H1(S, rsqrt)                                                                                            \
  JX_H1(S, sin)                                                                                              \
  JX_H1(S, cos)                                                                                              \
  JX_H1(S, logistic)                                                                                         \
  JX_H1(S, tanh)
/*@jx-part bf16 +half +f32 +tanh_f32: add_bf16 sub_bf16 mul_bf16 div_bf16 pow_bf16 max_bf16 min_bf16 neg_bf16 abs_bf16 sign_bf16 floor_bf16 exp_bf16 log_bf16 log1p_bf16 expm1_bf16 sqrt_bf16 rsqrt_bf16 sin_bf16 cos_bf16 logistic_bf16 tanh_bf16*/
DEF_HALF(bf16)
/*@jx-part f16 +half +f32 +tanh_f32: add_f16 sub_f16 mul_f16 div_f16 pow_f16 max_f16 min_f16 neg_f16 abs_f16 sign_f16 floor_f16 exp_f16 log_f16 log1p_f16 expm1_f16 sqrt_f16 rsqrt_f16 sin_f16 cos_f16 logistic_f16 tanh_f16*/
DEF_HALF(f16)

/*@jx-part cmp-macros:*/
/* Comparisons: the same for every dtype. */
#define DEF_CMP(S, T)                                                                                        \
  static inline uint8_t eq_##S(T a, T b) { return a == b; }                                                  \
  static inline uint8_t ne_##S(T a, T b) { return a != b; }                                                  \
  static inline uint8_t lt_##S(T a, T b) { return a < b; }                                                   \
  static inline uint8_t le_##S(T a, T b) { return a <= b; }                                                  \
  static inline uint8_t gt_##S(T a, T b) { return a > b; }                                                   \
  static inline uint8_t ge_##S(T a, T b) { return a >= b; }
/*@jx-part cmp_b: eq_b ne_b lt_b le_b gt_b ge_b*/
DEF_CMP(b, uint8_t)
/*@jx-part cmp_i32: eq_i32 ne_i32 lt_i32 le_i32 gt_i32 ge_i32*/
DEF_CMP(i32, int32_t)
/*@jx-part cmp_i64: eq_i64 ne_i64 lt_i64 le_i64 gt_i64 ge_i64*/
DEF_CMP(i64, int64_t)
/*@jx-part cmp_u32: eq_u32 ne_u32 lt_u32 le_u32 gt_u32 ge_u32*/
DEF_CMP(u32, uint32_t)
/*@jx-part cmp_f32: eq_f32 ne_f32 lt_f32 le_f32 gt_f32 ge_f32*/
DEF_CMP(f32, float)
/*@jx-part cmp_f64: eq_f64 ne_f64 lt_f64 le_f64 gt_f64 ge_f64*/
DEF_CMP(f64, double)
/*@jx-part cmp_i8: eq_i8 ne_i8 lt_i8 le_i8 gt_i8 ge_i8*/
DEF_CMP(i8, int8_t)
/*@jx-part cmp_i16: eq_i16 ne_i16 lt_i16 le_i16 gt_i16 ge_i16*/
DEF_CMP(i16, int16_t)
/*@jx-part cmp_u8: eq_u8 ne_u8 lt_u8 le_u8 gt_u8 ge_u8*/
DEF_CMP(u8, uint8_t)
/*@jx-part cmp_u16: eq_u16 ne_u16 lt_u16 le_u16 gt_u16 ge_u16*/
DEF_CMP(u16, uint16_t)
/*@jx-part cmp_u64: eq_u64 ne_u64 lt_u64 le_u64 gt_u64 ge_u64*/
DEF_CMP(u64, uint64_t)
/*@jx-part cmp_bf16 +half +cmp_f32: eq_bf16 ne_bf16 lt_bf16 le_bf16 gt_bf16 ge_bf16*/
JX_HCMP(bf16, eq)
JX_HCMP(bf16, ne)
JX_HCMP(bf16, lt)
JX_HCMP(bf16, le)
JX_HCMP(bf16, gt)
JX_HCMP(bf16, ge)
/*@jx-part cmp_f16 +half +cmp_f32: eq_f16 ne_f16 lt_f16 le_f16 gt_f16 ge_f16*/
JX_HCMP(f16, eq)
JX_HCMP(f16, ne)
JX_HCMP(f16, lt)
JX_HCMP(f16, le)
JX_HCMP(f16, gt)
JX_HCMP(f16, ge)

/* ------------------------------------------------------ conversions */
/*@jx-part sat: sat_i32 sat_u32 sat_i64 satf_i32 satf_u32 satf_i64 sat_i8 sat_u8 sat_i16 sat_u16 sat_u64
 * satf_i8 satf_u8 satf_i16 satf_u16 satf_u64*/
/* float -> int: NaN gives 0, out of range saturates. Clamping in double is
 * exact for 32-bit targets, and the clamp-then-cast form vectorizes. */
static inline int32_t sat_i32(double x) {
  double c = x != x ? 0.0 : x < -2147483648.0 ? -2147483648.0 : x > 2147483647.0 ? 2147483647.0 : x;
  return (int32_t)c;
}
static inline uint32_t sat_u32(double x) {
  double c = x != x ? 0.0 : x < 0.0 ? 0.0 : x > 4294967295.0 ? 4294967295.0 : x;
  return (uint32_t)c;
}
/* 2^63 - 1 is not a double, so the top end is a comparison, not a clamp. */
static inline int64_t sat_i64(double x) {
  if (x != x) return 0;
  if (x >= 0x1p63) return INT64_MAX;
  if (x <= -0x1p63) return INT64_MIN;
  return (int64_t)x;
}
/* From float, stay in float so the loop keeps one vector width: clamp to
 * the largest float below 2^31 (2^32), then patch the top end. */
static inline int32_t satf_i32(float x) {
  float c = x != x ? 0.f : x < -2147483648.0f ? -2147483648.0f : x > 2147483520.0f ? 2147483520.0f : x;
  int32_t r = (int32_t)c;
  return x >= 2147483648.0f ? INT32_MAX : r;
}
static inline uint32_t satf_u32(float x) {
  float c = x != x ? 0.f : x < 0.f ? 0.f : x > 4294967040.0f ? 4294967040.0f : x;
  uint32_t r = (uint32_t)c;
  return x >= 4294967296.0f ? UINT32_MAX : r;
}
static inline int64_t satf_i64(float x) { return sat_i64(x); }
/* (#19) the small integers: their bounds are exact in float and double */
#define JX_DEF_SAT(S, T, LO, HI)                                                                             \
  static inline T sat_##S(double x) { return (T)(x != x ? 0.0 : x < LO ? LO : x > HI ? HI : x); }            \
  static inline T satf_##S(float x) { return (T)(x != x ? 0.f : x < LO##f ? LO##f : x > HI##f ? HI##f : x); }
JX_DEF_SAT(i8, int8_t, -128.0, 127.0)
JX_DEF_SAT(u8, uint8_t, 0.0, 255.0)
JX_DEF_SAT(i16, int16_t, -32768.0, 32767.0)
JX_DEF_SAT(u16, uint16_t, 0.0, 65535.0)
static inline uint64_t sat_u64(double x) {
  if (x != x || x <= 0.0) return 0;
  if (x >= 0x1p64) return UINT64_MAX;
  return (uint64_t)x;
}
static inline uint64_t satf_u64(float x) { return sat_u64(x); }

/*@jx-part cvt-macros:*/
/* Conversion of one value from dtype S1 to S2 (C type T) by (source kind,
 * target kind): B bool, I int, F float, H bf16/f16 (their bits). */
#define CX_B_B(S1, S, T, x) (T)((x) != 0)
#define CX_I_B(S1, S, T, x) (T)((x) != 0)
#define CX_F_B(S1, S, T, x) (T)((x) != 0)
#define CX_B_I(S1, S, T, x) (T)(x)
#define CX_I_I(S1, S, T, x) (T)(x) /* narrowing wraps (gcc defines it) */
/* by the source's width (constant): satf_ keeps a float loop in floats;
 * plain C99, since exported code (render_portable.c) builds as -std=c99 */
#define CX_F_I(S1, S, T, x) (sizeof(x) == sizeof(float) ? satf_##S((float)(x)) : sat_##S((double)(x)))
#define CX_B_F(S1, S, T, x) (T)(x)
#define CX_I_F(S1, S, T, x) (T)(x)
#define CX_F_F(S1, S, T, x) (T)(x)
/* to bf16/f16: floats round once (f64 directly, not through f32); ints
 * through f64, exact up to 2^53 (i64/u64 beyond round twice) */
#define CX_B_H(S1, S, T, x) jx_f32_to_##S((float)(x))
#define CX_I_H(S1, S, T, x) jx_f64_to_##S((double)(x))
#define CX_F_H(S1, S, T, x)                                                                                  \
  (sizeof(x) == sizeof(float) ? jx_f32_to_##S((float)(x)) : jx_f64_to_##S((double)(x)))
/* from bf16/f16: widen exactly to f32, then as from f32 (-0 is false) */
#define CX_H_B(S1, S, T, x) (T)(jx_##S1##_to_f32(x) != 0)
#define CX_H_I(S1, S, T, x) satf_##S(jx_##S1##_to_f32(x))
#define CX_H_F(S1, S, T, x) (T) jx_##S1##_to_f32(x)
#define CX_H_H(S1, S, T, x) jx_f32_to_##S(jx_##S1##_to_f32(x))

/* cvt_<from>_<to>(x) */
#define JX_DEF_CVT(S1, T1, K1, S2, T2, K2)                                                                   \
  static inline T2 cvt_##S1##_##S2(T1 x) { return CX_##K1##_##K2(S1, S2, T2, x); }
/* one dtype per line: clang-format 14 finds no fixed point for these */
// clang-format off
#define JX_CVT_TO(X, S1, T1, K1) \
  X(S1, T1, K1, b, uint8_t, B) \
  X(S1, T1, K1, i32, int32_t, I) \
  X(S1, T1, K1, i64, int64_t, I) \
  X(S1, T1, K1, u32, uint32_t, I) \
  X(S1, T1, K1, f32, float, F) \
  X(S1, T1, K1, f64, double, F) \
  X(S1, T1, K1, bf16, uint16_t, H) \
  X(S1, T1, K1, f16, uint16_t, H) \
  X(S1, T1, K1, i8, int8_t, I) \
  X(S1, T1, K1, u8, uint8_t, I) \
  X(S1, T1, K1, i16, int16_t, I) \
  X(S1, T1, K1, u16, uint16_t, I) \
  X(S1, T1, K1, u64, uint64_t, I)
#define JX_CVT_FROM(X) \
  JX_CVT_TO(X, b, uint8_t, B) \
  JX_CVT_TO(X, i32, int32_t, I) \
  JX_CVT_TO(X, i64, int64_t, I) \
  JX_CVT_TO(X, u32, uint32_t, I) \
  JX_CVT_TO(X, f32, float, F) \
  JX_CVT_TO(X, f64, double, F) \
  JX_CVT_TO(X, bf16, uint16_t, H) \
  JX_CVT_TO(X, f16, uint16_t, H) \
  JX_CVT_TO(X, i8, int8_t, I) \
  JX_CVT_TO(X, u8, uint8_t, I) \
  JX_CVT_TO(X, i16, int16_t, I) \
  JX_CVT_TO(X, u16, uint16_t, I) \
  JX_CVT_TO(X, u64, uint64_t, I)
// clang-format on
/*@jx-part cvt_b +sat +half: cvt_b_b cvt_b_i32 cvt_b_i64 cvt_b_u32 cvt_b_f32 cvt_b_f64 cvt_b_bf16 cvt_b_f16 cvt_b_i8 cvt_b_u8 cvt_b_i16 cvt_b_u16 cvt_b_u64*/
JX_CVT_TO(JX_DEF_CVT, b, uint8_t, B)
/*@jx-part cvt_i32 +sat +half: cvt_i32_b cvt_i32_i32 cvt_i32_i64 cvt_i32_u32 cvt_i32_f32 cvt_i32_f64 cvt_i32_bf16 cvt_i32_f16 cvt_i32_i8 cvt_i32_u8 cvt_i32_i16 cvt_i32_u16 cvt_i32_u64*/
JX_CVT_TO(JX_DEF_CVT, i32, int32_t, I)
/*@jx-part cvt_i64 +sat +half: cvt_i64_b cvt_i64_i32 cvt_i64_i64 cvt_i64_u32 cvt_i64_f32 cvt_i64_f64 cvt_i64_bf16 cvt_i64_f16 cvt_i64_i8 cvt_i64_u8 cvt_i64_i16 cvt_i64_u16 cvt_i64_u64*/
JX_CVT_TO(JX_DEF_CVT, i64, int64_t, I)
/*@jx-part cvt_u32 +sat +half: cvt_u32_b cvt_u32_i32 cvt_u32_i64 cvt_u32_u32 cvt_u32_f32 cvt_u32_f64 cvt_u32_bf16 cvt_u32_f16 cvt_u32_i8 cvt_u32_u8 cvt_u32_i16 cvt_u32_u16 cvt_u32_u64*/
JX_CVT_TO(JX_DEF_CVT, u32, uint32_t, I)
/*@jx-part cvt_f32 +sat +half: cvt_f32_b cvt_f32_i32 cvt_f32_i64 cvt_f32_u32 cvt_f32_f32 cvt_f32_f64 cvt_f32_bf16 cvt_f32_f16 cvt_f32_i8 cvt_f32_u8 cvt_f32_i16 cvt_f32_u16 cvt_f32_u64*/
JX_CVT_TO(JX_DEF_CVT, f32, float, F)
/*@jx-part cvt_f64 +sat +half: cvt_f64_b cvt_f64_i32 cvt_f64_i64 cvt_f64_u32 cvt_f64_f32 cvt_f64_f64 cvt_f64_bf16 cvt_f64_f16 cvt_f64_i8 cvt_f64_u8 cvt_f64_i16 cvt_f64_u16 cvt_f64_u64*/
JX_CVT_TO(JX_DEF_CVT, f64, double, F)
/*@jx-part cvt_bf16 +sat +half: cvt_bf16_b cvt_bf16_i32 cvt_bf16_i64 cvt_bf16_u32 cvt_bf16_f32 cvt_bf16_f64 cvt_bf16_bf16 cvt_bf16_f16 cvt_bf16_i8 cvt_bf16_u8 cvt_bf16_i16 cvt_bf16_u16 cvt_bf16_u64*/
JX_CVT_TO(JX_DEF_CVT, bf16, uint16_t, H)
/*@jx-part cvt_f16 +sat +half: cvt_f16_b cvt_f16_i32 cvt_f16_i64 cvt_f16_u32 cvt_f16_f32 cvt_f16_f64 cvt_f16_bf16 cvt_f16_f16 cvt_f16_i8 cvt_f16_u8 cvt_f16_i16 cvt_f16_u16 cvt_f16_u64*/
JX_CVT_TO(JX_DEF_CVT, f16, uint16_t, H)
/*@jx-part cvt_i8 +sat +half: cvt_i8_b cvt_i8_i32 cvt_i8_i64 cvt_i8_u32 cvt_i8_f32 cvt_i8_f64 cvt_i8_bf16 cvt_i8_f16 cvt_i8_i8 cvt_i8_u8 cvt_i8_i16 cvt_i8_u16 cvt_i8_u64*/
JX_CVT_TO(JX_DEF_CVT, i8, int8_t, I)
/*@jx-part cvt_u8 +sat +half: cvt_u8_b cvt_u8_i32 cvt_u8_i64 cvt_u8_u32 cvt_u8_f32 cvt_u8_f64 cvt_u8_bf16 cvt_u8_f16 cvt_u8_i8 cvt_u8_u8 cvt_u8_i16 cvt_u8_u16 cvt_u8_u64*/
JX_CVT_TO(JX_DEF_CVT, u8, uint8_t, I)
/*@jx-part cvt_i16 +sat +half: cvt_i16_b cvt_i16_i32 cvt_i16_i64 cvt_i16_u32 cvt_i16_f32 cvt_i16_f64 cvt_i16_bf16 cvt_i16_f16 cvt_i16_i8 cvt_i16_u8 cvt_i16_i16 cvt_i16_u16 cvt_i16_u64*/
JX_CVT_TO(JX_DEF_CVT, i16, int16_t, I)
/*@jx-part cvt_u16 +sat +half: cvt_u16_b cvt_u16_i32 cvt_u16_i64 cvt_u16_u32 cvt_u16_f32 cvt_u16_f64 cvt_u16_bf16 cvt_u16_f16 cvt_u16_i8 cvt_u16_u8 cvt_u16_i16 cvt_u16_u16 cvt_u16_u64*/
JX_CVT_TO(JX_DEF_CVT, u16, uint16_t, I)
/*@jx-part cvt_u64 +sat +half: cvt_u64_b cvt_u64_i32 cvt_u64_i64 cvt_u64_u32 cvt_u64_f32 cvt_u64_f64 cvt_u64_bf16 cvt_u64_f16 cvt_u64_i8 cvt_u64_u8 cvt_u64_i16 cvt_u64_u16 cvt_u64_u64*/
JX_CVT_TO(JX_DEF_CVT, u64, uint64_t, I)

/*@jx-part select: select_b select_i32 select_i64 select_u32 select_f32 select_f64 select_bf16 select_f16 select_i8 select_u8 select_i16 select_u16 select_u64*/
/* select */
#define JX_DEF_SEL(S, T)                                                                                     \
  static inline T select_##S(uint8_t p, T a, T b) { return p ? a : b; }
JX_DEF_SEL(b, uint8_t)
JX_DEF_SEL(i32, int32_t)
JX_DEF_SEL(i64, int64_t)
JX_DEF_SEL(u32, uint32_t)
JX_DEF_SEL(f32, float)
JX_DEF_SEL(f64, double)
JX_DEF_SEL(bf16, uint16_t)
JX_DEF_SEL(f16, uint16_t)
JX_DEF_SEL(i8, int8_t)
JX_DEF_SEL(u8, uint8_t)
JX_DEF_SEL(i16, int16_t)
JX_DEF_SEL(u16, uint16_t)
JX_DEF_SEL(u64, uint64_t)

/*@jx-part bits: shift_left_i32 shift_right_logical_i32 xor_i32 shift_left_i64 shift_right_logical_i64 xor_i64
 * shift_left_u32 shift_right_logical_u32 xor_u32 xor_b
 * shift_left_i8 shift_right_logical_i8 xor_i8 shift_left_u8 shift_right_logical_u8 xor_u8 shift_left_i16 shift_right_logical_i16 xor_i16 shift_left_u16 shift_right_logical_u16 xor_u16 shift_left_u64 shift_right_logical_u64 xor_u64*/
/* ------------------------------------------- bits, rem, fma, erf, erf_inv */
/* Appended for src/prims/bits.c (random numbers). XLA semantics: a shift
 * by >= the bit width (or by a negative amount) gives 0; integer rem takes
 * the sign of the dividend, x % 0 = x and INT_MIN % -1 = 0. */
#define JX_DEF_BITS(S, T, U, NB)                                                                             \
  static inline T shift_left_##S(T a, T b) { return (U)b >= NB ? (T)0 : (T)((U)a << (U)b); }                 \
  static inline T shift_right_logical_##S(T a, T b) { return (U)b >= NB ? (T)0 : (T)((U)a >> (U)b); }        \
  static inline T xor_##S(T a, T b) { return (T)(a ^ b); }
JX_DEF_BITS(i32, int32_t, uint32_t, 32u)
JX_DEF_BITS(i64, int64_t, uint64_t, 64u)
JX_DEF_BITS(u32, uint32_t, uint32_t, 32u)
/* (#19) U is the operand's own width: a logical shift fills with zeros from there */
JX_DEF_BITS(i8, int8_t, uint8_t, 8u)
JX_DEF_BITS(u8, uint8_t, uint8_t, 8u)
JX_DEF_BITS(i16, int16_t, uint16_t, 16u)
JX_DEF_BITS(u16, uint16_t, uint16_t, 16u)
JX_DEF_BITS(u64, uint64_t, uint64_t, 64u)
static inline uint8_t xor_b(uint8_t a, uint8_t b) { return a ^ b; }
/*@jx-part rem: rem_i32 rem_i64 rem_u32 rem_f32 rem_f64 rem_i8 rem_u8 rem_i16 rem_u16 rem_u64*/
static inline int32_t rem_i32(int32_t a, int32_t b) { return b == 0 ? a : b == -1 ? 0 : a % b; }
static inline int64_t rem_i64(int64_t a, int64_t b) { return b == 0 ? a : b == -1 ? 0 : a % b; }
static inline uint32_t rem_u32(uint32_t a, uint32_t b) { return b == 0 ? a : a % b; }
static inline float rem_f32(float a, float b) { return fmodf(a, b); }
static inline double rem_f64(double a, double b) { return fmod(a, b); }
static inline int8_t rem_i8(int8_t a, int8_t b) { return b == 0 ? a : b == -1 ? 0 : (int8_t)(a % b); }
static inline int16_t rem_i16(int16_t a, int16_t b) { return b == 0 ? a : b == -1 ? 0 : (int16_t)(a % b); }
static inline uint8_t rem_u8(uint8_t a, uint8_t b) { return b == 0 ? a : (uint8_t)(a % b); }
static inline uint16_t rem_u16(uint16_t a, uint16_t b) { return b == 0 ? a : (uint16_t)(a % b); }
static inline uint64_t rem_u64(uint64_t a, uint64_t b) { return b == 0 ? a : a % b; }
/*@jx-part fma: fma_f32 fma_f64*/
/* one rounding, whatever the C compiler's contraction setting */
static inline float fma_f32(float a, float b, float c) { return fmaf(a, b, c); }
static inline double fma_f64(double a, double b, double c) { return fma(a, b, c); }

/*@jx-part erf: erf_f32 erf_f64*/
/* erf, f32: XLA:CPU's EmitErfF32 (Eigen's rational, evaluated with FMAs,
 * +-1 from |x| >= 3.8325...). f64: libm's erf, as XLA:CPU calls. */
static inline float erf_f32(float x) {
  float x2 = x * x;
  float p = fmaf(x2, 0.00022905065861350646f, 0.0034082910107109506f);
  p = fmaf(x2, p, 0.050955695062380861f);
  p = fmaf(x2, p, 0.18520832239976145f);
  p = fmaf(x2, p, 1.128379143519084f);
  p = x * p;
  float q = fmaf(x2, -1.1791602954361697e-7f, 0.000023547966471313185f);
  q = fmaf(x2, q, 0.0010179625278914885f);
  q = fmaf(x2, q, 0.014070470171167667f);
  q = fmaf(x2, q, 0.11098505178285362f);
  q = fmaf(x2, q, 0.49746925110067538f);
  q = fmaf(x2, q, 1.0f);
  return 3.832506856900711f <= fabsf(x) ? copysignf(1.0f, x) : p / q;
}
static inline double erf_f64(double x) { return erf(x); }

/*@jx-part erf_inv: erf_inv_f32 erf_inv_f64*/
/* erf_inv: the CHLO decomposition JAX's lax.erf_inv lowers to (M. Giles,
 * "Approximating the erfinv function"): w = -log1p(-x*x), a polynomial in
 * w - 2.5 or sqrt(w) - 3 (f32) / three ranges (f64), times x; +-1 -> +-inf.
 * Horner steps are FMAs, as XLA's CPU and GPU backends contract them. */
static inline float erf_inv_f32(float x) {
  static const float lt[9] = {2.81022636e-08f,  3.43273939e-07f, -3.5233877e-06f,
                              -4.39150654e-06f, 0.00021858087f,  -0.00125372503f,
                              -0.00417768164f,  0.246640727f,    1.50140941f};
  static const float ge[9] = {-0.000200214257f, 0.000100950558f, 0.00134934322f,
                              -0.00367342844f,  0.00573950773f,  -0.0076224613f,
                              0.00943887047f,   1.00167406f,     2.83297682f};
  float w = -log1pf(x * -x);
  int small = w < 5.0f;
  const float *c = small ? lt : ge;
  w = small ? w - 2.5f : sqrtf(w) - 3.0f;
  float p = c[0];
  for (int i = 1; i < 9; i++) p = fmaf(p, w, c[i]);
  return fabsf(x) == 1.0f ? x * (float)INFINITY : p * x;
}
static inline double erf_inv_f64(double x) {
  static const double c625[23] = {
      -3.6444120640178196996e-21, -1.685059138182016589e-19,  1.2858480715256400167e-18,
      1.115787767802518096e-17,   -1.333171662854620906e-16,  2.0972767875968561637e-17,
      6.6376381343583238325e-15,  -4.0545662729752068639e-14, -8.1519341976054721522e-14,
      2.6335093153082322977e-12,  -1.2975133253453532498e-11, -5.4154120542946279317e-11,
      1.051212273321532285e-09,   -4.1126339803469836976e-09, -2.9070369957882005086e-08,
      4.2347877827932403518e-07,  -1.3654692000834678645e-06, -1.3882523362786468719e-05,
      0.0001867342080340571352,   -0.00074070253416626697512, -0.0060336708714301490533,
      0.24015818242558961693,     1.6536545626831027356};
  static const double c16[19] = {
      2.2137376921775787049e-09, 9.0756561938885390979e-08, -2.7517406297064545428e-07,
      1.8239629214389227755e-08, 1.5027403968909827627e-06, -4.013867526981545969e-06,
      2.9234449089955446044e-06, 1.2475304481671778723e-05, -4.7318229009055733981e-05,
      6.8284851459573175448e-05, 2.4031110387097893999e-05, -0.0003550375203628474796,
      0.00095328937973738049703, -0.0016882755560235047313, 0.0024914420961078508066,
      -0.0037512085075692412107, 0.005370914553590063617,   1.0052589676941592334,
      3.0838856104922207635};
  static const double cbig[17] = {
      -2.7109920616438573243e-11, -2.5556418169965252055e-10, 1.5076572693500548083e-09,
      -3.7894654401267369937e-09, 7.6157012080783393804e-09,  -1.4960026627149240478e-08,
      2.9147953450901080826e-08,  -6.7711997758452339498e-08, 2.2900482228026654717e-07,
      -9.9298272942317002539e-07, 4.5260625972231537039e-06,  -1.9681778105531670567e-05,
      7.5995277030017761139e-05,  -0.00021503011930044477347, -0.00013871931833623122026,
      1.0103004648645343977,      4.8499064014085844221};
  double w = -log1p(x * -x);
  const double *c;
  int n;
  if (w < 6.25)
    c = c625, n = 23, w = w - 3.125;
  else if (w < 16.0)
    c = c16, n = 19, w = sqrt(w) - 3.25;
  else
    c = cbig, n = 17, w = sqrt(w) - 5.0;
  double p = c[0];
  for (int i = 1; i < n; i++) p = fma(p, w, c[i]);
  return fabs(x) == 1.0 ? x * (double)INFINITY : p * x;
}

/*@jx-part math: tan_f32 asin_f32 acos_f32 atan_f32 sinh_f32 cosh_f32 asinh_f32 acosh_f32 atanh_f32
 * exp2_f32 ceil_f32 round_f32 atan2_f32 tan_f64 asin_f64 acos_f64 atan_f64 sinh_f64 cosh_f64 asinh_f64
 * acosh_f64 atanh_f64 exp2_f64 ceil_f64 round_f64 atan2_f64*/
/* ------------------------------------------ math functions (issue #18) */
/* libm's, which glibc rounds to within an ulp or two (tests/test_math.c
 * states the measured error). round is lax.round's ROUND_TO_NEAREST_EVEN
 * (rint under the default rounding mode), as jnp.round. */
#define JX_DEF_MATH(S, T, F)                                                                                 \
  static inline T tan_##S(T a) { return tan##F(a); }                                                         \
  static inline T asin_##S(T a) { return asin##F(a); }                                                       \
  static inline T acos_##S(T a) { return acos##F(a); }                                                       \
  static inline T atan_##S(T a) { return atan##F(a); }                                                       \
  static inline T sinh_##S(T a) { return sinh##F(a); }                                                       \
  static inline T cosh_##S(T a) { return cosh##F(a); }                                                       \
  static inline T asinh_##S(T a) { return asinh##F(a); }                                                     \
  static inline T acosh_##S(T a) { return acosh##F(a); }                                                     \
  static inline T atanh_##S(T a) { return atanh##F(a); }                                                     \
  static inline T exp2_##S(T a) { return exp2##F(a); }                                                       \
  static inline T ceil_##S(T a) { return ceil##F(a); }                                                       \
  static inline T round_##S(T a) { return rint##F(a); }                                                      \
  static inline T atan2_##S(T a, T b) { return atan2##F(a, b); }
JX_DEF_MATH(f32, float, f)
JX_DEF_MATH(f64, double, )

/*@jx-part shift_right_arithmetic: shift_right_arithmetic_i32 shift_right_arithmetic_i64
 * shift_right_arithmetic_u32 shift_right_arithmetic_i8 shift_right_arithmetic_u8 shift_right_arithmetic_i16 shift_right_arithmetic_u16 shift_right_arithmetic_u64*/
/* a >> b filling with the sign bit; a shift by >= the bit width (or a
 * negative one) gives all sign bits, as XLA. u32 shifts its bit pattern as
 * a signed word, as XLA does. */
static inline int32_t shift_right_arithmetic_i32(int32_t a, int32_t b) {
  return (uint32_t)b >= 32u ? (a < 0 ? -1 : 0) : a >> b;
}
static inline int64_t shift_right_arithmetic_i64(int64_t a, int64_t b) {
  return (uint64_t)b >= 64u ? (a < 0 ? -1 : 0) : a >> b;
}
static inline uint32_t shift_right_arithmetic_u32(uint32_t a, uint32_t b) {
  return (uint32_t)shift_right_arithmetic_i32((int32_t)a, b >= 32u ? 32 : (int32_t)b);
}
/* (#19) the small ones through i32: their sign fill is i32's */
static inline int8_t shift_right_arithmetic_i8(int8_t a, int8_t b) {
  return (int8_t)shift_right_arithmetic_i32(a, (uint8_t)b >= 8u ? 32 : b);
}
static inline int16_t shift_right_arithmetic_i16(int16_t a, int16_t b) {
  return (int16_t)shift_right_arithmetic_i32(a, (uint16_t)b >= 16u ? 32 : b);
}
static inline uint8_t shift_right_arithmetic_u8(uint8_t a, uint8_t b) {
  return (uint8_t)shift_right_arithmetic_i32((int8_t)a, b >= 8u ? 32 : b);
}
static inline uint16_t shift_right_arithmetic_u16(uint16_t a, uint16_t b) {
  return (uint16_t)shift_right_arithmetic_i32((int16_t)a, b >= 16u ? 32 : b);
}
static inline uint64_t shift_right_arithmetic_u64(uint64_t a, uint64_t b) {
  return (uint64_t)shift_right_arithmetic_i64((int64_t)a, b >= 64u ? 64 : (int64_t)b);
}

/*@jx-part erfc: erfc_f32 erfc_f64*/
static inline float erfc_f32(float x) { return erfcf(x); }
static inline double erfc_f64(double x) { return erfc(x); }

/*@jx-part lgamma: lgamma_f32 lgamma_f64*/
/* log|Gamma(x)|: the reentrant forms (POSIX, in every libm), since lgamma
 * writes the global signgam, a data race when the kernels run threaded.
 * Declared here: -std=c17 hides them in <math.h>. */
double lgamma_r(double, int *);
float lgammaf_r(float, int *);
static inline float lgamma_f32(float x) {
  int s;
  return lgammaf_r(x, &s);
}
static inline double lgamma_f64(double x) {
  int s;
  return lgamma_r(x, &s);
}

/*@jx-part digamma: digamma_f32 digamma_f64*/
/* digamma (psi): the reflection psi(x) = psi(1 - x) - pi / tan(pi x) below
 * 1/2, the recurrence psi(x) = psi(x + 1) - 1/x up to 10, then the
 * asymptotic series ln x - 1/(2x) - sum B_2k / (2k x^2k) (its first
 * omitted term is below 1e-16 there). NaN at the poles 0, -1, -2, ... as
 * XLA's; f32 is the f64 value rounded. */
static inline double digamma_f64(double x) {
  if (x != x || x == -INFINITY) return NAN;
  if (x == INFINITY) return x;
  double r = 0;
  if (x < 0.5) {
    /* tan(pi x) has period 1: reduce x exactly to (-1/2, 1/2] first, so
     * that pi * f is accurate relative to itself next to a pole */
    double f = x - floor(x);
    if (f == 0) return NAN;
    if (f > 0.5) f -= 1;
    r = -3.14159265358979323846 / tan(3.14159265358979323846 * f);
    x = 1 - x;
  }
  for (; x < 10; x += 1) r -= 1 / x;
  double z = 1 / (x * x);
  double s = 1.0 / 132 - z * (691.0 / 32760 - z * (1.0 / 12));
  s = z * (1.0 / 12 - z * (1.0 / 120 - z * (1.0 / 252 - z * (1.0 / 240 - z * s))));
  return r + (log(x) - 0.5 / x - s);
}
static inline float digamma_f32(float x) { return (float)digamma_f64(x); }

/*@jx-part math_half +half +math +erf +erf_inv +erfc +lgamma +digamma +rem +fma:
 * tan_bf16 asin_bf16 acos_bf16 atan_bf16 sinh_bf16 cosh_bf16 asinh_bf16 acosh_bf16 atanh_bf16 exp2_bf16 ceil_bf16 round_bf16 atan2_bf16 erf_bf16 erf_inv_bf16 erfc_bf16 lgamma_bf16 digamma_bf16 rem_bf16 fma_bf16 tan_f16 asin_f16 acos_f16 atan_f16 sinh_f16 cosh_f16 asinh_f16 acosh_f16 atanh_f16 exp2_f16 ceil_f16 round_f16 atan2_f16 erf_f16 erf_inv_f16 erfc_f16 lgamma_f16 digamma_f16 rem_f16 fma_f16*/
/* (#19) bf16/f16 math: the f32 function between a widening and one rounding */
#define DEF_HALF_MATH(S)                                                                                     \
  JX_H1(S, tan)                                                                                              \
  JX_H1(S, asin)                                                                                             \
  JX_H1(S, acos)                                                                                             \
  JX_H1(S, atan)                                                                                             \
  JX_H1(S, sinh)                                                                                             \
  JX_H1(S, cosh)                                                                                             \
  JX_H1(S, asinh)                                                                                            \
  JX_H1(S, acosh)                                                                                            \
  JX_H1(S, atanh)                                                                                            \
  JX_H1(S, exp2)                                                                                             \
  JX_H1(S, ceil)                                                                                             \
  JX_H1(S, round)                                                                                            \
  JX_H1(S, erf)                                                                                              \
  JX_H1(S, erf_inv)                                                                                          \
  JX_H1(S, erfc)                                                                                             \
  JX_H1(S, lgamma)                                                                                           \
  JX_H1(S, digamma)                                                                                          \
  JX_H2(S, atan2)                                                                                            \
  JX_H2(S, rem)                                                                                              \
  static inline uint16_t fma_##S(uint16_t a, uint16_t b, uint16_t c) {                                       \
    return jx_f32_to_##S(fma_f32(jx_##S##_to_f32(a), jx_##S##_to_f32(b), jx_##S##_to_f32(c)));               \
  }
DEF_HALF_MATH(bf16)
DEF_HALF_MATH(f16)

/*@jx-part threefry: jx_threefry2x32*/
/* The Threefry-2x32 block cipher, 20 rounds (Salmon et al. 2011), as in
 * jax._src.prng._threefry2x32_lowering: key (k0, k1), counter (x0, x1). */
static inline void jx_threefry2x32(uint32_t k0, uint32_t k1, uint32_t x0, uint32_t x1, uint32_t *y0,
                                   uint32_t *y1) {
  const uint32_t ks[3] = {k0, k1, k0 ^ k1 ^ 0x1BD11BDAu};
  static const unsigned rot[2][4] = {{13, 15, 26, 6}, {17, 29, 16, 24}};
  x0 += ks[0];
  x1 += ks[1];
  for (unsigned i = 0; i < 5; i++) {
    for (int r = 0; r < 4; r++) {
      unsigned s = rot[i & 1][r];
      x0 += x1;
      x1 = (x1 << s) | (x1 >> (32 - s));
      x1 ^= x0;
    }
    x0 += ks[(i + 1) % 3];
    x1 += ks[(i + 2) % 3] + i + 1;
  }
  *y0 = x0;
  *y1 = x1;
}

/*@jx-part svd: jx_svd_f64*/
/* The thin SVD of one matrix by one-sided Jacobi (Hestenes), in f64: the
 * eager kernel's (backend/cpu/svd.c) and exported programs' one
 * definition. w: q columns of length p (p >= q), column-major, the matrix
 * or its transpose; v: q x q. On return sv[0..q) are the singular values,
 * order[] the columns by descending value, v the accumulated rotations
 * and, with `vectors`, w's columns normalized (a zero column replaced by
 * a unit vector orthogonal to the columns before it in `order`). Columns
 * are rotated pairwise until every pair is orthogonal relative to their
 * norms (|w_j . w_l| <= eps sqrt(p) |w_j| |w_l|), at most 80 sweeps. */
static inline double jx_svd_dot(const double *x, const double *y, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += x[i] * y[i];
  return s;
}
static inline void jx_svd_rotate(double *x, double *y, int64_t n, double c, double s) {
  for (int64_t i = 0; i < n; i++) {
    double t = x[i];
    x[i] = c * t - s * y[i];
    y[i] = s * t + c * y[i];
  }
}
static inline void jx_svd_jacobi(double *w, double *v, int64_t p, int64_t q) {
  const double tol = 2.220446049250313e-16 * sqrt((double)p); /* DBL_EPSILON */
  for (int sweep = 0; sweep < 80; sweep++) {
    int rotated = 0;
    for (int64_t j = 0; j < q - 1; j++)
      for (int64_t l = j + 1; l < q; l++) {
        double *x = w + j * p, *y = w + l * p;
        double alpha = jx_svd_dot(x, x, p), beta = jx_svd_dot(y, y, p), gamma = jx_svd_dot(x, y, p);
        if (gamma == 0 || fabs(gamma) <= tol * sqrt(alpha) * sqrt(beta)) continue;
        double zeta = (beta - alpha) / (2 * gamma);
        double t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1 + zeta * zeta));
        double c = 1 / sqrt(1 + t * t), s = c * t;
        jx_svd_rotate(x, y, p, c, s);
        jx_svd_rotate(v + j * q, v + l * q, q, c, s);
        rotated = 1;
      }
    if (!rotated) return;
  }
}
static inline void jx_svd_normalize(double *w, const double *sv, const int64_t *order, int64_t p, int64_t q) {
  for (int64_t r = 0; r < q; r++) {
    double *x = w + order[r] * p;
    if (sv[order[r]] > 0) {
      for (int64_t i = 0; i < p; i++) x[i] /= sv[order[r]];
      continue;
    }
    for (int64_t e = 0; e < p; e++) {
      memset(x, 0, sizeof(double) * (size_t)p);
      x[e] = 1;
      for (int pass = 0; pass < 2; pass++) /* Gram-Schmidt, twice for accuracy */
        for (int64_t o = 0; o < r; o++) {
          const double *y = w + order[o] * p;
          double d = jx_svd_dot(x, y, p);
          for (int64_t i = 0; i < p; i++) x[i] -= d * y[i];
        }
      double nrm = sqrt(jx_svd_dot(x, x, p));
      if (nrm > 0.5) {
        for (int64_t i = 0; i < p; i++) x[i] /= nrm;
        break;
      }
    }
  }
}
static inline void jx_svd_f64(double *w, double *v, double *sv, int64_t *order, int64_t p, int64_t q,
                              int vectors) {
  for (int64_t i = 0; i < q * q; i++) v[i] = i % (q + 1) == 0;
  jx_svd_jacobi(w, v, p, q);
  for (int64_t j = 0; j < q; j++) sv[j] = sqrt(jx_svd_dot(w + j * p, w + j * p, p)), order[j] = j;
  for (int64_t j = 1; j < q; j++) /* descending (insertion sort: q is small next to the work above) */
    for (int64_t l = j; l > 0 && sv[order[l]] > sv[order[l - 1]]; l--) {
      int64_t t = order[l];
      order[l] = order[l - 1], order[l - 1] = t;
    }
  if (vectors) jx_svd_normalize(w, sv, order, p, q);
}

/*@jx-part stream: jx_stream jx_stream_fence*/
/* A non-temporal copy of a computed tile to its place in a large output
 * (one that outgrows the caches before it is read again): the stores skip
 * the read-for-ownership a normal store pays. 32-byte stores where the
 * target has AVX (on a Zen 5 box, a 16 MB map streamed from 128-element
 * tiles ran ~25% faster than with 16-byte stores, and as fast as 64-byte
 * ones), SSE2's 16-byte stores otherwise. Compiler builtins rather than
 * immintrin.h, which takes ~350 ms of every jit build (emmintrin.h ~20 ms).
 * Fence once after a range: streamed stores are weakly ordered. Plain
 * memcpy without SSE2. */
#ifdef __SSE2__
#include <emmintrin.h>
#ifdef __AVX__
typedef float jx_v8sf __attribute__((vector_size(32)));
typedef float jx_v8sf_u __attribute__((vector_size(32), aligned(1), may_alias));
static inline void jx_stream32(char *d, const char *s) {
#ifdef __clang__
  __builtin_nontemporal_store(*(const jx_v8sf_u *)s, (jx_v8sf *)d);
#else
  __builtin_ia32_movntps256((float *)d, *(const jx_v8sf_u *)s);
#endif
}
enum { JX_STREAM_ALIGN = 32 };
#else
enum { JX_STREAM_ALIGN = 16 };
#endif
static inline void jx_stream(void *dst, const void *src, size_t n) {
  char *d = dst;
  const char *s = src;
  size_t head = (size_t)(-(uintptr_t)d & (JX_STREAM_ALIGN - 1));
  if (head > n) head = n;
  memcpy(d, s, head);
  d += head, s += head, n -= head;
#ifdef __AVX__
  for (; n >= 32; d += 32, s += 32, n -= 32) jx_stream32(d, s);
#endif
  for (; n >= 16; d += 16, s += 16, n -= 16)
    _mm_stream_si128((__m128i *)d, _mm_loadu_si128((const __m128i *)s));
  memcpy(d, s, n);
}
static inline void jx_stream_fence(void) { _mm_sfence(); }
#else
static inline void jx_stream(void *dst, const void *src, size_t n) { memcpy(dst, src, n); }
static inline void jx_stream_fence(void) {}
#endif

/*@jx-end*/
#endif
