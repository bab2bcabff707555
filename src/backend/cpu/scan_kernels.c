/* Cumulative scans and the permutation gather of sort (scan_kernels.h).
 *
 * A scan walks the axis sequentially (each step needs the previous one)
 * while the loop across the trailing dims is contiguous and independent,
 * so it vectorizes; work splits over the pool by (outer block, column
 * chunk) pairs. */
#include "backend/cpu/scan_kernels.h"

#include <math.h>
#include <string.h>

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
  CUM(sum_##S, T, U, ADD_U)                                                                                  \
  CUM(prod_##S, T, U, MUL_U) CUM(max_##S, T, U, MAX_I) CUM(min_##S, T, U, MIN_I)
INT_CUMS(int32_t, uint32_t, i32)
INT_CUMS(int64_t, uint64_t, i64)
INT_CUMS(uint32_t, uint32_t, u32)
CUM(max_b, uint8_t, uint8_t, MAX_I)
CUM(min_b, uint8_t, uint8_t, MIN_I)
#define FLOAT_CUMS(T, S, LSE)                                                                                \
  CUM(sum_##S, T, T, ADD_F)                                                                                  \
  CUM(prod_##S, T, T, MUL_F) CUM(max_##S, T, T, MAX_F) CUM(min_##S, T, T, MIN_F) CUM(lse_##S, T, T, LSE)
FLOAT_CUMS(float, f32, LSE_F32)
FLOAT_CUMS(double, f64, LSE_F64)

static const cum_fn cum_table[JX_CUM_COUNT][JX_DTYPE_COUNT] = {
    [JX_CUM_SUM] =
        {[JX_I32] = sum_i32, [JX_I64] = sum_i64, [JX_U32] = sum_u32, [JX_F32] = sum_f32, [JX_F64] = sum_f64},
    [JX_CUM_PROD] = {[JX_I32] = prod_i32,
                     [JX_I64] = prod_i64,
                     [JX_U32] = prod_u32,
                     [JX_F32] = prod_f32,
                     [JX_F64] = prod_f64},
    [JX_CUM_MAX] = {[JX_BOOL] = max_b,
                    [JX_I32] = max_i32,
                    [JX_I64] = max_i64,
                    [JX_U32] = max_u32,
                    [JX_F32] = max_f32,
                    [JX_F64] = max_f64},
    [JX_CUM_MIN] = {[JX_BOOL] = min_b,
                    [JX_I32] = min_i32,
                    [JX_I64] = min_i64,
                    [JX_U32] = min_u32,
                    [JX_F32] = min_f32,
                    [JX_F64] = min_f64},
    [JX_CUM_LOGSUMEXP] = {[JX_F32] = lse_f32, [JX_F64] = lse_f64},
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
