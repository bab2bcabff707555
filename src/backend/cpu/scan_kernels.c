/* Cumulative scans and the permutation gather of sort (scan_kernels.h).
 *
 * A scan walks the axis sequentially (each step needs the previous one)
 * while the loop across the trailing dims is contiguous and independent,
 * so it vectorizes; work splits over the pool by (outer block, column
 * chunk) pairs. */
#include "backend/cpu/scan_kernels.h"

#include <math.h>
#include <string.h>

#include "backend/cpu/scalar_ops.h"

enum { CHUNK = 2048, GRAIN_ROWS = 16384 };

/* Combines. Integers go through unsigned arithmetic so that overflow
 * wraps (as XLA's integer adds do) instead of being undefined. */
#define ADD_U(T, U, a, b)   ((T)((U)(a) + (U)(b)))
#define MUL_U(T, U, a, b)   ((T)((U)(a) * (U)(b)))
#define ADD_F(T, U, a, b)   ((a) + (b))
#define MUL_F(T, U, a, b)   ((a) * (b))
#define MAX_I(T, U, a, b)   ((a) > (b) ? (a) : (b))
#define MIN_I(T, U, a, b)   ((a) < (b) ? (a) : (b))
#define MAX_F(T, U, a, b)   ((a) != (a) || (a) > (b) ? (a) : (b)) /* NaN wins */
#define MIN_F(T, U, a, b)   ((a) != (a) || (a) < (b) ? (a) : (b))
#define LSE_F32(T, U, a, b) lae_f32(a, b)
#define LSE_F64(T, U, a, b) lae_f64(a, b)

/* log(exp(a) + exp(b)) without overflow; NaN in, NaN out; equal infinities
 * give themselves (their difference would be NaN) */
#define LAE(NAME, T, EXP, LOG1P, FABS)                                                                       \
  static inline T NAME(T a, T b) {                                                                           \
    if (a != a || b != b) return a + b;                                                                      \
    T m = a > b ? a : b;                                                                                     \
    if (isinf(m)) return m;                                                                                  \
    return m + LOG1P(EXP(-FABS(a - b)));                                                                     \
  }
LAE(lae_f32, float, expf, log1pf, fabsf)
LAE(lae_f64, double, exp, log1p, fabs)

typedef void (*cum_fn)(const void *x, void *out, int64_t n, int64_t inner, int64_t i0, int64_t i1, bool rev);

/* one [n, inner] block, columns [i0, i1) */
#define CUM(NAME, T, U, OP)                                                                                  \
  static void NAME(const void *xv, void *ov, int64_t n, int64_t inner, int64_t i0, int64_t i1, bool rev) {   \
    const T *x = xv;                                                                                         \
    T *o = ov;                                                                                               \
    int64_t step = rev ? -inner : inner, j0 = rev ? n - 1 : 0;                                               \
    const T *xr = x + j0 * inner;                                                                            \
    T *orow = o + j0 * inner;                                                                                \
    for (int64_t i = i0; i < i1; i++) orow[i] = xr[i];                                                       \
    for (int64_t j = 1; j < n; j++) {                                                                        \
      const T *prev = orow;                                                                                  \
      xr += step, orow += step;                                                                              \
      for (int64_t i = i0; i < i1; i++) orow[i] = OP(T, U, prev[i], xr[i]);                                  \
    }                                                                                                        \
  }
#define INT_CUMS(T, U, S)                                                                                    \
  CUM(ksum_##S, T, U, ADD_U)                                                                                 \
  CUM(kprod_##S, T, U, MUL_U) CUM(kmax_##S, T, U, MAX_I) CUM(kmin_##S, T, U, MIN_I)
INT_CUMS(int32_t, uint32_t, i32)
INT_CUMS(int64_t, uint64_t, i64)
INT_CUMS(uint32_t, uint32_t, u32)
INT_CUMS(int8_t, uint32_t, i8) /* (#19) the small ints wrap through 32 bits */
INT_CUMS(uint8_t, uint32_t, u8)
INT_CUMS(int16_t, uint32_t, i16)
INT_CUMS(uint16_t, uint32_t, u16)
INT_CUMS(uint64_t, uint64_t, u64)
CUM(kmax_b, uint8_t, uint8_t, MAX_I)
CUM(kmin_b, uint8_t, uint8_t, MIN_I)
#define FLOAT_CUMS(T, S, LSE)                                                                                \
  CUM(ksum_##S, T, T, ADD_F)                                                                                 \
  CUM(kprod_##S, T, T, MUL_F) CUM(kmax_##S, T, T, MAX_F) CUM(kmin_##S, T, T, MIN_F) CUM(klse_##S, T, T, LSE)
FLOAT_CUMS(float, f32, LSE_F32)
FLOAT_CUMS(double, f64, LSE_F64)

/* bf16/f16 (#19): the running value is kept in f32 and each output is it
 * rounded once (as PyTorch's CPU cumsum/cumprod, whose accumulator is
 * float, and XLA:CPU's reduce_window after float normalization): the
 * same f32 combines as the f32 kernels, one column chunk at a time */
#define HALF_CUM(NAME, S, OP)                                                                                \
  static void NAME(const void *xv, void *ov, int64_t n, int64_t inner, int64_t i0, int64_t i1, bool rev) {   \
    const uint16_t *x = xv;                                                                                  \
    uint16_t *o = ov;                                                                                        \
    float acc[CHUNK];                                                                                        \
    int64_t step = rev ? -inner : inner, j0 = rev ? n - 1 : 0;                                               \
    const uint16_t *xr = x + j0 * inner;                                                                     \
    uint16_t *orow = o + j0 * inner;                                                                         \
    for (int64_t i = i0; i < i1; i++)                                                                        \
      acc[i - i0] = jx_##S##_to_f32(xr[i]), orow[i] = jx_f32_to_##S(acc[i - i0]);                            \
    for (int64_t j = 1; j < n; j++) {                                                                        \
      xr += step, orow += step;                                                                              \
      for (int64_t i = i0; i < i1; i++) {                                                                    \
        float a = acc[i - i0], b = jx_##S##_to_f32(xr[i]);                                                   \
        acc[i - i0] = OP(float, float, a, b);                                                                \
        orow[i] = jx_f32_to_##S(acc[i - i0]);                                                                \
      }                                                                                                      \
    }                                                                                                        \
  }
#define HALF_CUMS(S)                                                                                         \
  HALF_CUM(ksum_##S, S, ADD_F)                                                                               \
  HALF_CUM(kprod_##S, S, MUL_F)                                                                              \
  HALF_CUM(kmax_##S, S, MAX_F) HALF_CUM(kmin_##S, S, MIN_F) HALF_CUM(klse_##S, S, LSE_F32)
HALF_CUMS(bf16)
HALF_CUMS(f16)
#define CUM_ROW(op)                                                                                          \
  [JX_BF16] = k##op##_bf16, [JX_F16] = k##op##_f16, [JX_I8] = k##op##_i8, [JX_U8] = k##op##_u8,              \
  [JX_I16] = k##op##_i16, [JX_U16] = k##op##_u16, [JX_U64] = k##op##_u64

static const cum_fn cum_table[JX_CUM_COUNT][JX_DTYPE_COUNT] = {
    [JX_CUM_SUM] = {[JX_I32] = ksum_i32,
                    [JX_I64] = ksum_i64,
                    [JX_U32] = ksum_u32,
                    [JX_F32] = ksum_f32,
                    [JX_F64] = ksum_f64,
                    CUM_ROW(sum)},
    [JX_CUM_PROD] = {[JX_I32] = kprod_i32,
                     [JX_I64] = kprod_i64,
                     [JX_U32] = kprod_u32,
                     [JX_F32] = kprod_f32,
                     [JX_F64] = kprod_f64,
                     CUM_ROW(prod)},
    [JX_CUM_MAX] = {[JX_BOOL] = kmax_b,
                    [JX_I32] = kmax_i32,
                    [JX_I64] = kmax_i64,
                    [JX_U32] = kmax_u32,
                    [JX_F32] = kmax_f32,
                    [JX_F64] = kmax_f64,
                    CUM_ROW(max)},
    [JX_CUM_MIN] = {[JX_BOOL] = kmin_b,
                    [JX_I32] = kmin_i32,
                    [JX_I64] = kmin_i64,
                    [JX_U32] = kmin_u32,
                    [JX_F32] = kmin_f32,
                    [JX_F64] = kmin_f64,
                    CUM_ROW(min)},
    [JX_CUM_LOGSUMEXP] =
        {[JX_F32] = klse_f32, [JX_F64] = klse_f64, [JX_BF16] = klse_bf16, [JX_F16] = klse_f16},
};

bool jx_cpu_cumulative_supports(jx_cum_op op, jx_dtype dt) {
  return (unsigned)op < JX_CUM_COUNT && (unsigned)dt < JX_DTYPE_COUNT && cum_table[op][dt];
}

typedef struct {
  cum_fn fn;
  size_t es;
  int64_t n, inner, nchunk;
  bool rev;
  const char *x;
  char *out;
} cum_ctx;

static void cum_range(void *ctx, int64_t lo, int64_t hi) {
  const cum_ctx *c = ctx;
  for (int64_t t = lo; t < hi; t++) {
    int64_t o = t / c->nchunk, ch = t % c->nchunk, i0 = ch * CHUNK;
    int64_t i1 = i0 + CHUNK < c->inner ? i0 + CHUNK : c->inner;
    size_t off = (size_t)(o * c->n * c->inner) * c->es;
    c->fn(c->x + off, c->out + off, c->n, c->inner, i0, i1, c->rev);
  }
}

void jx_cpu_cumulative(jx_cum_op op, jx_dtype dt, int64_t outer, int64_t n, int64_t inner, bool reverse,
                       const void *x, void *out) {
  KCHECK(jx_cpu_cumulative_supports(op, dt));
  if (outer * n * inner == 0) return;
  int64_t nchunk = (inner + CHUNK - 1) / CHUNK, per = n * (inner < CHUNK ? inner : CHUNK);
  cum_ctx c = {.fn = cum_table[op][dt],
               .es = jx_dtype_size(dt),
               .n = n,
               .inner = inner,
               .nchunk = nchunk,
               .rev = reverse,
               .x = x,
               .out = out};
  jx_cpu_parallel_for(outer * nchunk, per >= GRAIN_ROWS ? 1 : GRAIN_ROWS / per, cum_range, &c);
}

/* ------------------------------------------------------- take along */
typedef struct {
  size_t es;
  int64_t n, inner;
  const char *x;
  const int64_t *perm;
  char *out;
} take_ctx;

#define TAKE_LOOP(T)                                                                                         \
  for (int64_t j = 0; j < c->n; j++)                                                                         \
    for (int64_t i = 0; i < c->inner; i++)                                                                   \
      ((T *)o)[j * c->inner + i] = ((const T *)x)[p[j * c->inner + i] * c->inner + i];

static void take_range(void *ctx, int64_t lo, int64_t hi) {
  const take_ctx *c = ctx;
  for (int64_t b = lo; b < hi; b++) {
    int64_t off = b * c->n * c->inner;
    const char *x = c->x + (size_t)off * c->es;
    char *o = c->out + (size_t)off * c->es;
    const int64_t *p = c->perm + off;
    switch (c->es) {
      case 1: TAKE_LOOP(uint8_t) break;
      case 2: TAKE_LOOP(uint16_t) break;
      case 4: TAKE_LOOP(uint32_t) break;
      default: TAKE_LOOP(uint64_t) break;
    }
  }
}

void jx_cpu_take_along(size_t es, int64_t outer, int64_t n, int64_t inner, const void *x, const int64_t *perm,
                       void *out) {
  KCHECK(es == 1 || es == 2 || es == 4 || es == 8);
  int64_t per = n * inner;
  if (outer * per == 0) return;
  take_ctx c = {.es = es, .n = n, .inner = inner, .x = x, .perm = perm, .out = out};
  jx_cpu_parallel_for(outer, per >= GRAIN_ROWS ? 1 : GRAIN_ROWS / per, take_range, &c);
}
