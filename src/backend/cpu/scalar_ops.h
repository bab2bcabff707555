/* Scalar semantics of every elementwise primitive, one static inline
 * function per (op, dtype): add_f32, tanh_f64, cvt_f32_i32, ...
 *
 * This header is the single definition of what an elementwise op computes.
 * The eager kernels include it, and the jit's C renderer pastes its text
 * in front of every generated program, so compiled and eager code agree
 * bit for bit (up to the C compiler's own floating-point contraction,
 * which the jit disables with -ffp-contract=off). Self-contained: only
 * <math.h> and <stdint.h>. */
#ifndef JX_SCALAR_OPS_H
#define JX_SCALAR_OPS_H

#include <math.h>
#include <stdint.h>

/* Signed integers: wrapping arithmetic through the unsigned type U. */
#define DEF_SINT(S, T, U)                                                             \
  static inline T add_##S(T a, T b) { return (T)((U)a + (U)b); }                      \
  static inline T sub_##S(T a, T b) { return (T)((U)a - (U)b); }                      \
  static inline T mul_##S(T a, T b) { return (T)((U)a * (U)b); }                      \
  static inline T neg_##S(T a) { return (T)((U)0 - (U)a); }                           \
  /* b == -1 is negation: INT_MIN / -1 would trap */                                 \
  static inline T div_##S(T a, T b) { return b == 0 ? 0 : b == -1 ? neg_##S(a) : a / b; } \
  static inline T pow_##S(T a, T b) {                                                 \
    if (b < 0) return a == 1 ? 1 : a == -1 ? ((b & 1) ? -1 : 1) : 0;                  \
    U r = 1, x = (U)a;                                                                \
    for (U e = (U)b; e; e >>= 1) {                                                    \
      if (e & 1) r *= x;                                                              \
      x *= x;                                                                         \
    }                                                                                 \
    return (T)r;                                                                      \
  }                                                                                   \
  static inline T max_##S(T a, T b) { return a > b ? a : b; }                         \
  static inline T min_##S(T a, T b) { return a < b ? a : b; }                         \
  static inline T and_##S(T a, T b) { return a & b; }                                 \
  static inline T or_##S(T a, T b) { return a | b; }                                  \
  static inline T abs_##S(T a) { return a < 0 ? neg_##S(a) : a; } /* INT_MIN wraps */ \
  static inline T sign_##S(T a) { return (T)((a > 0) - (a < 0)); }                    \
  static inline T not_##S(T a) { return (T)~a; }

/* Unsigned integers wrap by definition. */
#define DEF_UINT(S, T)                                                                \
  static inline T add_##S(T a, T b) { return a + b; }                                 \
  static inline T sub_##S(T a, T b) { return a - b; }                                 \
  static inline T mul_##S(T a, T b) { return a * b; }                                 \
  static inline T neg_##S(T a) { return (T)0 - a; }                                   \
  static inline T div_##S(T a, T b) { return b == 0 ? 0 : a / b; }                    \
  static inline T pow_##S(T a, T b) {                                                 \
    T r = 1;                                                                          \
    for (; b; b >>= 1) {                                                              \
      if (b & 1) r *= a;                                                              \
      a *= a;                                                                         \
    }                                                                                 \
    return r;                                                                         \
  }                                                                                   \
  static inline T max_##S(T a, T b) { return a > b ? a : b; }                         \
  static inline T min_##S(T a, T b) { return a < b ? a : b; }                         \
  static inline T and_##S(T a, T b) { return a & b; }                                 \
  static inline T or_##S(T a, T b) { return a | b; }                                  \
  static inline T abs_##S(T a) { return a; }                                          \
  static inline T sign_##S(T a) { return a != 0; }                                    \
  static inline T not_##S(T a) { return (T)~a; }

/* Floats: F is the libm suffix ("f" for float, empty for double). */
#define DEF_FLOAT(S, T, F)                                                            \
  static inline T add_##S(T a, T b) { return a + b; }                                 \
  static inline T sub_##S(T a, T b) { return a - b; }                                 \
  static inline T mul_##S(T a, T b) { return a * b; }                                 \
  static inline T div_##S(T a, T b) { return a / b; }                                 \
  static inline T pow_##S(T a, T b) { return pow##F(a, b); }                          \
  /* NaN in either operand wins, like jnp.maximum */                                  \
  static inline T max_##S(T a, T b) { return (a > b || a != a) ? a : b; }             \
  static inline T min_##S(T a, T b) { return (a < b || a != a) ? a : b; }             \
  static inline T neg_##S(T a) { return -a; }                                         \
  static inline T abs_##S(T a) { return fabs##F(a); }                                \
  /* NaN stays NaN and +-0 stay themselves, as in lax.sign */                         \
  static inline T sign_##S(T a) { return a > 0 ? (T)1 : a < 0 ? (T)-1 : a; }         \
  static inline T floor_##S(T a) { return floor##F(a); }                              \
  static inline T exp_##S(T a) { return exp##F(a); }                                  \
  static inline T log_##S(T a) { return log##F(a); }                                  \
  static inline T log1p_##S(T a) { return log1p##F(a); }                              \
  static inline T expm1_##S(T a) { return expm1##F(a); }                              \
  static inline T sqrt_##S(T a) { return sqrt##F(a); }                                \
  static inline T rsqrt_##S(T a) { return (T)1 / sqrt##F(a); }                        \
  static inline T tanh_##S(T a) { return tanh##F(a); }                                \
  static inline T sin_##S(T a) { return sin##F(a); }                                  \
  static inline T cos_##S(T a) { return cos##F(a); }                                  \
  /* exp of a non-positive argument only: never overflows */                          \
  static inline T logistic_##S(T a) {                                                 \
    if (a >= 0) return (T)1 / ((T)1 + exp##F(-a));                                    \
    T e = exp##F(a);                                                                  \
    return e / ((T)1 + e);                                                            \
  }

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

DEF_SINT(i32, int32_t, uint32_t)
DEF_SINT(i64, int64_t, uint64_t)
DEF_UINT(u32, uint32_t)
DEF_FLOAT(f32, float, f)
DEF_FLOAT(f64, double, )

/* Comparisons: the same for every dtype. */
#define DEF_CMP(S, T)                                                       \
  static inline uint8_t eq_##S(T a, T b) { return a == b; }                 \
  static inline uint8_t ne_##S(T a, T b) { return a != b; }                 \
  static inline uint8_t lt_##S(T a, T b) { return a < b; }                  \
  static inline uint8_t le_##S(T a, T b) { return a <= b; }                 \
  static inline uint8_t gt_##S(T a, T b) { return a > b; }                  \
  static inline uint8_t ge_##S(T a, T b) { return a >= b; }
DEF_CMP(b, uint8_t)
DEF_CMP(i32, int32_t)
DEF_CMP(i64, int64_t)
DEF_CMP(u32, uint32_t)
DEF_CMP(f32, float)
DEF_CMP(f64, double)

/* ------------------------------------------------------ conversions */
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

/* Conversion of one value by (source kind, target kind): B bool, I int, F float. */
#define CX_B_B(S, T, x) (T)((x) != 0)
#define CX_I_B(S, T, x) (T)((x) != 0)
#define CX_F_B(S, T, x) (T)((x) != 0)
#define CX_B_I(S, T, x) (T)(x)
#define CX_I_I(S, T, x) (T)(x) /* narrowing wraps (gcc defines it) */
#define CX_F_I(S, T, x) _Generic((x), float: satf_##S, default: sat_##S)(x)
#define CX_B_F(S, T, x) (T)(x)
#define CX_I_F(S, T, x) (T)(x)
#define CX_F_F(S, T, x) (T)(x)

/* cvt_<from>_<to>(x) */
#define JX_DEF_CVT(S1, T1, K1, S2, T2, K2) \
  static inline T2 cvt_##S1##_##S2(T1 x) { return CX_##K1##_##K2(S2, T2, x); }
#define JX_CVT_TO(X, S1, T1, K1)                                             \
  X(S1, T1, K1, b, uint8_t, B) X(S1, T1, K1, i32, int32_t, I)                \
  X(S1, T1, K1, i64, int64_t, I) X(S1, T1, K1, u32, uint32_t, I)             \
  X(S1, T1, K1, f32, float, F) X(S1, T1, K1, f64, double, F)
#define JX_CVT_FROM(X)                                                       \
  JX_CVT_TO(X, b, uint8_t, B) JX_CVT_TO(X, i32, int32_t, I)                  \
  JX_CVT_TO(X, i64, int64_t, I) JX_CVT_TO(X, u32, uint32_t, I)               \
  JX_CVT_TO(X, f32, float, F) JX_CVT_TO(X, f64, double, F)
JX_CVT_FROM(JX_DEF_CVT)

/* select */
#define JX_DEF_SEL(S, T) static inline T select_##S(uint8_t p, T a, T b) { return p ? a : b; }
JX_DEF_SEL(b, uint8_t)
JX_DEF_SEL(i32, int32_t)
JX_DEF_SEL(i64, int64_t)
JX_DEF_SEL(u32, uint32_t)
JX_DEF_SEL(f32, float)
JX_DEF_SEL(f64, double)

#endif
