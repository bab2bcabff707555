/* The collectives' element-wise reduction step (dist/fold.h): one function
 * per dtype, the op chosen outside the loops so that each loop is one
 * contiguous pass (they vectorize where the arithmetic allows). Integer
 * sums go through the scalar ops' add_<dtype> (the unsigned type: no C
 * signed overflow), bf16/f16 sums through add_bf16/add_f16 (widen, add in
 * f32, round once): the functions the elementwise kernels and the jit use,
 * so a named vmap's psum (add primitives) gives the devices' bits. A CPU
 * kernel, so it lives here; its interface is in dist/, whose layer may not
 * include backend/ (tests/layering_test.sh). */
#include "dist/fold.h"

#include "backend/cpu/scalar_ops.h"

typedef void (*fold_fn)(jx_dist_op op, void *acc, const void *src, int64_t len);

/* bool's "sum" is never asked for (psum of bool is refused); or, for
 * completeness, as a 0/1 byte stays 0/1 */
static inline uint8_t or_bool(uint8_t a, uint8_t b) { return (uint8_t)(a | b); }

/* integers: no NaN; max/min in the type's own order */
#define FOLD_INT(S, T, ADD)                                                                                  \
  static void fold_##S(jx_dist_op op, void *acc, const void *src, int64_t len) {                             \
    T *o = acc;                                                                                              \
    const T *v = src;                                                                                        \
    if (op == JX_DIST_MAX) {                                                                                 \
      for (int64_t k = 0; k < len; k++) o[k] = v[k] > o[k] ? v[k] : o[k];                                    \
    } else if (op == JX_DIST_MIN) {                                                                          \
      for (int64_t k = 0; k < len; k++) o[k] = v[k] < o[k] ? v[k] : o[k];                                    \
    } else {                                                                                                 \
      for (int64_t k = 0; k < len; k++) o[k] = ADD(o[k], v[k]);                                              \
    }                                                                                                        \
  }

/* floats stored as T, compared as F after widening with W (identity for
 * f32/f64); the result is one of the inputs' own bits, or their sum */
#define FOLD_FLOAT(S, T, F, W, ADD)                                                                          \
  static void fold_##S(jx_dist_op op, void *acc, const void *src, int64_t len) {                             \
    T *o = acc;                                                                                              \
    const T *v = src;                                                                                        \
    if (op == JX_DIST_MAX) {                                                                                 \
      for (int64_t k = 0; k < len; k++) {                                                                    \
        F a = W(o[k]), b = W(v[k]);                                                                          \
        o[k] = (b > a || b != b) ? v[k] : o[k];                                                              \
      }                                                                                                      \
    } else if (op == JX_DIST_MIN) {                                                                          \
      for (int64_t k = 0; k < len; k++) {                                                                    \
        F a = W(o[k]), b = W(v[k]);                                                                          \
        o[k] = (b < a || b != b) ? v[k] : o[k];                                                              \
      }                                                                                                      \
    } else {                                                                                                 \
      for (int64_t k = 0; k < len; k++) o[k] = ADD(o[k], v[k]);                                              \
    }                                                                                                        \
  }

#define SAME(x)         (x)
#define PLAIN_ADD(a, b) ((a) + (b))

FOLD_INT(b, uint8_t, or_bool)
FOLD_INT(i8, int8_t, add_i8)
FOLD_INT(u8, uint8_t, add_u8)
FOLD_INT(i16, int16_t, add_i16)
FOLD_INT(u16, uint16_t, add_u16)
FOLD_INT(i32, int32_t, add_i32)
FOLD_INT(u32, uint32_t, add_u32)
FOLD_INT(i64, int64_t, add_i64)
FOLD_INT(u64, uint64_t, add_u64)
FOLD_FLOAT(f32, float, float, SAME, PLAIN_ADD)
FOLD_FLOAT(f64, double, double, SAME, PLAIN_ADD)
FOLD_FLOAT(bf16, uint16_t, float, jx_bf16_to_f32, add_bf16)
FOLD_FLOAT(f16, uint16_t, float, jx_f16_to_f32, add_f16)

static const fold_fn folds[JX_DTYPE_COUNT] = {
    [JX_BOOL] = fold_b,  [JX_I8] = fold_i8,     [JX_U8] = fold_u8,   [JX_I16] = fold_i16, [JX_U16] = fold_u16,
    [JX_I32] = fold_i32, [JX_U32] = fold_u32,   [JX_I64] = fold_i64, [JX_U64] = fold_u64, [JX_F32] = fold_f32,
    [JX_F64] = fold_f64, [JX_BF16] = fold_bf16, [JX_F16] = fold_f16,
};

void jx_dist_fold(jx_dist_op op, jx_dtype dt, void *acc, const void *src, int64_t len) {
  if ((unsigned)dt < JX_DTYPE_COUNT && folds[dt]) folds[dt](op, acc, src, len);
}
