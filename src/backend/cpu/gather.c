/* General gather/scatter kernels over a jx_cpu_gs_plan (gather.h). */
#include "backend/cpu/gather.h"

#include <math.h>
#include <string.h>

#include "backend/cpu/scalar_ops.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

/* y's offset of index position b (row-major over bshape) */
static int64_t y_base(const jx_cpu_gs_plan *p, int64_t b) {
  int64_t off = 0;
  for (int d = p->bnd - 1; d >= 0; d--) {
    int64_t n = p->bshape[d];
    off += (b % n) * p->byst[d];
    b /= n;
  }
  return off;
}

/* Walk the window's points: calls visit(ctx, xo, yo, run) per innermost
 * run of `run` points (x and y strides of that run: the last window dim's). */
typedef void (*visit_fn)(void *ctx, int64_t xo, int64_t yo, int64_t run);
static void walk_window(const jx_cpu_gs_plan *p, int64_t x0, int64_t y0, visit_fn visit, void *ctx) {
  if (p->wnd == 0) {
    visit(ctx, x0, y0, 1);
    return;
  }
  int last = p->wnd - 1;
  int64_t run = p->wshape[last], idx[JX_MAX_RANK] = {0};
  for (int d = 0; d < p->wnd; d++)
    if (p->wshape[d] == 0) return;
  for (;;) {
    int64_t xo = x0, yo = y0;
    for (int d = 0; d < last; d++) xo += idx[d] * p->xst[d], yo += idx[d] * p->yst[d];
    visit(ctx, xo, yo, run);
    int d = last - 1;
    while (d >= 0 && ++idx[d] == p->wshape[d]) idx[d--] = 0;
    if (d < 0) return;
  }
}

/* ------------------------------------------------------------ gather */
typedef struct {
  const jx_cpu_gs_plan *p;
  const char *x;
  char *y;
  const char *fill;
} gctx;

static void g_copy(void *c_, int64_t xo, int64_t yo, int64_t run) {
  gctx *c = c_;
  const jx_cpu_gs_plan *p = c->p;
  size_t es = p->es;
  int64_t sx = p->wnd ? p->xst[p->wnd - 1] : 1, sy = p->wnd ? p->yst[p->wnd - 1] : 1;
  if (sx == 1 && sy == 1) {
    memcpy(c->y + (size_t)yo * es, c->x + (size_t)xo * es, (size_t)run * es);
    return;
  }
  for (int64_t i = 0; i < run; i++)
    memcpy(c->y + (size_t)(yo + i * sy) * es, c->x + (size_t)(xo + i * sx) * es, es);
}

static void g_fill(void *c_, int64_t xo, int64_t yo, int64_t run) {
  (void)xo;
  gctx *c = c_;
  const jx_cpu_gs_plan *p = c->p;
  int64_t sy = p->wnd ? p->yst[p->wnd - 1] : 1;
  for (int64_t i = 0; i < run; i++) memcpy(c->y + (size_t)(yo + i * sy) * p->es, c->fill, p->es);
}

/* one element per index position: y is the positions in order */
#define DEF_GPTS(S, T)                                                                                       \
  static void gpts_##S(int64_t b0, int64_t n, const int64_t *xoff, const void *x_, void *y_,                 \
                       const void *f) {                                                                      \
    const T *x = x_;                                                                                         \
    T *y = (T *)y_ + b0, fv;                                                                                 \
    memcpy(&fv, f, sizeof fv);                                                                               \
    for (int64_t i = 0; i < n; i++) y[i] = xoff[i] < 0 ? fv : x[xoff[i]];                                    \
  }
DEF_GPTS(m8, uint8_t)
DEF_GPTS(m16, uint16_t)
DEF_GPTS(m32, uint32_t)
DEF_GPTS(m64, uint64_t)

void jx_cpu_gs_gather(const jx_cpu_gs_plan *p, int64_t b0, int64_t b1, const int64_t *xoff, const void *x,
                      void *y, const void *fill) {
  if (p->wnd == 0 && (p->es == 1 || p->es == 2 || p->es == 4 || p->es == 8)) {
    (p->es == 1   ? gpts_m8
     : p->es == 2 ? gpts_m16
     : p->es == 4 ? gpts_m32
                  : gpts_m64)(b0, b1 - b0, xoff, x, y, fill);
    return;
  }
  gctx c = {.p = p, .x = x, .y = y, .fill = fill};
  for (int64_t b = b0; b < b1; b++) {
    int64_t xo = xoff[b - b0];
    walk_window(p, xo < 0 ? 0 : xo, y_base(p, b), xo < 0 ? g_fill : g_copy, &c);
  }
}

/* ----------------------------------------------------------- scatter */
typedef struct {
  const jx_cpu_gs_plan *p;
  char *x;
  const char *y;
} sctx;

/* A thread owning [lo, hi) of the operand (large point scatters split it
 * between threads) first selects, in order and without a branch per
 * update, the positions of a block of PTS_BLOCK whose offsets it owns,
 * then combines those: a branch per update would be mispredicted half the
 * time. The whole range (one thread) combines directly, skipping dropped
 * updates (-1). Measured on 1M f32 adds into 1M elements, one thread's
 * share: the branch 6.7 ms a half (Xeon model 207); the selection, scalar
 * ~3 cycles an update, 3.3 ms for the whole pass, compressed 8 at a time
 * with AVX-512, 1.9 ms (Zen 5). */
enum { PTS_BLOCK = 1024 };

/* positions [from, n) (their selected ones appended at sel) */
static int select_scalar(const int64_t *xoff, int from, int n, int64_t lo, uint64_t span, int32_t *sel) {
  int m = 0;
  for (int i = from; i < n; i++) {
    sel[m] = i;
    m += (uint64_t)(xoff[i] - lo) < span;
  }
  return m;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f,avx512vl"))) static int select_avx512(const int64_t *xoff, int n, int64_t lo,
                                                                     uint64_t span, int32_t *sel) {
  const __m512i vlo = _mm512_set1_epi64(lo), vspan = _mm512_set1_epi64((int64_t)span);
  const __m256i eight = _mm256_set1_epi32(8);
  __m256i pos = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  int m = 0, i = 0;
  for (; i + 8 <= n; i += 8, pos = _mm256_add_epi32(pos, eight)) {
    __mmask8 k = _mm512_cmplt_epu64_mask(_mm512_sub_epi64(_mm512_loadu_si512(xoff + i), vlo), vspan);
    _mm256_mask_compressstoreu_epi32(sel + m, k, pos);
    m += __builtin_popcount(k);
  }
  return m + select_scalar(xoff, i, n, lo, span, sel + m); /* the tail */
}
static bool has_avx512vl(void) {
  static int known = -1; /* racing first calls agree */
  int v = __atomic_load_n(&known, __ATOMIC_RELAXED);
  if (v < 0) {
    __builtin_cpu_init();
    v = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
    __atomic_store_n(&known, v, __ATOMIC_RELAXED);
  }
  return v;
}
#endif

int jx_cpu_select_owned(const int64_t *xoff, int n, int64_t lo, uint64_t span, int32_t *sel, bool vector) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (vector && has_avx512vl()) return select_avx512(xoff, n, lo, span, sel);
#endif
  (void)vector;
  return select_scalar(xoff, 0, n, lo, span, sel);
}

#define DEF_SC(K, S, T, OP)                                                                                  \
  static void pts_##K##_##S(int64_t b0, int64_t n, const int64_t *xoff, int64_t lo, int64_t hi, void *x_,    \
                            const void *y_) {                                                                \
    T *x = x_;                                                                                               \
    const T *y = (const T *)y_ + b0;                                                                         \
    if (lo <= 0 && hi == INT64_MAX) {                                                                        \
      for (int64_t i = 0; i < n; i++) {                                                                      \
        if (xoff[i] < 0) continue;                                                                           \
        T a = x[xoff[i]], b = y[i];                                                                          \
        x[xoff[i]] = (T)(OP);                                                                                \
      }                                                                                                      \
      return;                                                                                                \
    }                                                                                                        \
    int32_t sel[PTS_BLOCK];                                                                                  \
    for (int64_t i0 = 0; i0 < n; i0 += PTS_BLOCK) {                                                          \
      const int len = (int)(n - i0 < PTS_BLOCK ? n - i0 : PTS_BLOCK);                                        \
      const int64_t *xo = xoff + i0;                                                                         \
      const T *yv = y + i0;                                                                                  \
      const int m = jx_cpu_select_owned(xo, len, lo, (uint64_t)(hi - lo), sel, true);                        \
      for (int k = 0; k < m; k++) {                                                                          \
        const int64_t o = xo[sel[k]];                                                                        \
        T a = x[o], b = yv[sel[k]];                                                                          \
        x[o] = (T)(OP);                                                                                      \
      }                                                                                                      \
    }                                                                                                        \
  }                                                                                                          \
  static void sc_##K##_##S(void *c_, int64_t xo, int64_t yo, int64_t run) {                                  \
    sctx *c = c_;                                                                                            \
    const jx_cpu_gs_plan *p = c->p;                                                                          \
    int64_t sx = p->wnd ? p->xst[p->wnd - 1] : 1, sy = p->wnd ? p->yst[p->wnd - 1] : 1;                      \
    T *x = (T *)(void *)c->x + xo;                                                                           \
    const T *y = (const T *)(const void *)c->y + yo;                                                         \
    for (int64_t i = 0; i < run; i++) {                                                                      \
      T a = x[i * sx], b = y[i * sy];                                                                        \
      x[i * sx] = (T)(OP);                                                                                   \
    }                                                                                                        \
  }
/* integers wrap (through unsigned); floats' min/max propagate NaN (lax.max) */
#define DEF_SC_ALL(S, T, U, ANAN)                                                                            \
  DEF_SC(set, S, T, ((void)a, b))                                                                            \
  DEF_SC(add, S, T, (U)a + (U)b)                                                                             \
  DEF_SC(mul, S, T, (U)a *(U)b)                                                                              \
  DEF_SC(min, S, T, (a < b || ANAN) ? a : b)                                                                 \
  DEF_SC(max, S, T, (a > b || ANAN) ? a : b)
DEF_SC_ALL(i32, int32_t, uint32_t, 0)
DEF_SC_ALL(i64, int64_t, uint64_t, 0)
DEF_SC_ALL(u32, uint32_t, uint32_t, 0)
DEF_SC_ALL(i8, int8_t, uint32_t, 0) /* (#19) the small ints wrap through 32 bits */
DEF_SC_ALL(u8, uint8_t, uint32_t, 0)
DEF_SC_ALL(i16, int16_t, uint32_t, 0)
DEF_SC_ALL(u16, uint16_t, uint32_t, 0)
DEF_SC_ALL(u64, uint64_t, uint64_t, 0)
DEF_SC_ALL(f32, float, float, a != a)
DEF_SC_ALL(f64, double, double, a != a)
/* bf16/f16 (their bits): each update widens both to f32, combines there
 * and rounds once (scalar_ops.h), as XLA:CPU's scatter computes a bf16
 * combiner after float normalization; max/min propagate NaN */
#define DEF_SC_HALF(S)                                                                                       \
  DEF_SC(set, S, uint16_t, ((void)a, b))                                                                     \
  DEF_SC(add, S, uint16_t, add_##S(a, b))                                                                    \
  DEF_SC(mul, S, uint16_t, mul_##S(a, b))                                                                    \
  DEF_SC(min, S, uint16_t, min_##S(a, b))                                                                    \
  DEF_SC(max, S, uint16_t, max_##S(a, b))
DEF_SC_HALF(bf16)
DEF_SC_HALF(f16)
/* bool: add/max are or, mul/min are and */
DEF_SC(set, b, uint8_t, ((void)a, b))
DEF_SC(add, b, uint8_t, a | b)
DEF_SC(mul, b, uint8_t, a &b)
DEF_SC(min, b, uint8_t, a &b)
DEF_SC(max, b, uint8_t, a | b)

#define SC_ROW(S)                                                                                            \
  { sc_set_##S, sc_add_##S, sc_mul_##S, sc_min_##S, sc_max_##S }
static const visit_fn sc_fns[JX_DTYPE_COUNT][5] = {
    [JX_BOOL] = SC_ROW(b),  [JX_I32] = SC_ROW(i32), [JX_I64] = SC_ROW(i64),   [JX_U32] = SC_ROW(u32),
    [JX_F32] = SC_ROW(f32), [JX_F64] = SC_ROW(f64), [JX_BF16] = SC_ROW(bf16), [JX_F16] = SC_ROW(f16),
    [JX_I8] = SC_ROW(i8),   [JX_U8] = SC_ROW(u8),   [JX_I16] = SC_ROW(i16),   [JX_U16] = SC_ROW(u16),
    [JX_U64] = SC_ROW(u64)};
typedef void (*pts_fn)(int64_t b0, int64_t n, const int64_t *xoff, int64_t lo, int64_t hi, void *x,
                       const void *y);
#define PTS_ROW(S)                                                                                           \
  { pts_set_##S, pts_add_##S, pts_mul_##S, pts_min_##S, pts_max_##S }
static const pts_fn pts_fns[JX_DTYPE_COUNT][5] = {
    [JX_BOOL] = PTS_ROW(b),  [JX_I32] = PTS_ROW(i32), [JX_I64] = PTS_ROW(i64),   [JX_U32] = PTS_ROW(u32),
    [JX_F32] = PTS_ROW(f32), [JX_F64] = PTS_ROW(f64), [JX_BF16] = PTS_ROW(bf16), [JX_F16] = PTS_ROW(f16),
    [JX_I8] = PTS_ROW(i8),   [JX_U8] = PTS_ROW(u8),   [JX_I16] = PTS_ROW(i16),   [JX_U16] = PTS_ROW(u16),
    [JX_U64] = PTS_ROW(u64)};

bool jx_cpu_gs_scatter(const jx_cpu_gs_plan *p, jx_dtype dt, jx_cpu_sc_kind kind, int64_t b0, int64_t b1,
                       const int64_t *xoff, int64_t lo, int64_t hi, void *x, const void *y) {
  if ((unsigned)dt >= JX_DTYPE_COUNT || (unsigned)kind > JX_CPU_SC_MAX || !sc_fns[dt][kind]) return false;
  if (b1 <= b0) return true; /* (how callers ask whether the combiner exists) */
  if (p->wnd == 0) { /* one element per index position (the bench's case): y is the positions in order */
    pts_fns[dt][kind](b0, b1 - b0, xoff, lo < 0 ? 0 : lo, hi, x, y);
    return true;
  }
  sctx c = {.p = p, .x = x, .y = y};
  for (int64_t b = b0; b < b1; b++)
    if (xoff[b - b0] >= 0) walk_window(p, xoff[b - b0], y_base(p, b), sc_fns[dt][kind], &c);
  return true;
}
