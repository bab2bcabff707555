/* Window kernels: reduce_window (sum, max, min) and the max/min-pool
 * gradient pair select_and_gather_add / select_and_scatter_add.
 *
 * A window's taps are a product over dims, so for each dim and output
 * index the in-range taps are listed once (as element offsets into x, in
 * tap order); an output then walks the product of its dims' lists with an
 * odometer, last dim fastest: row-major tap order, which is the order in
 * which "the first max" is meant. */
#include "backend/cpu/conv.h"

#include <math.h>
#include <string.h>

typedef struct {
  const jx_cpu_window_desc *d;
  int64_t *cnt[JX_MAX_RANK]; /* [out_d]: in-range taps */
  int64_t *off[JX_MAX_RANK]; /* [out_d][window_d]: their element offsets in x */
  int64_t *block;
} taps;

static int taps_make(const jx_cpu_window_desc *d, taps *t) {
  int64_t n = 0, st[JX_MAX_RANK], acc = 1;
  for (int i = d->ndim - 1; i >= 0; i--) st[i] = acc, acc *= d->in[i];
  for (int i = 0; i < d->ndim; i++) n += d->out[i] * (1 + d->window[i]);
  t->d = d;
  t->block = jx_malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
  if (!t->block) return -1;
  int64_t *p = t->block;
  for (int i = 0; i < d->ndim; i++) {
    t->cnt[i] = p, p += d->out[i];
    t->off[i] = p, p += d->out[i] * d->window[i];
    for (int64_t o = 0; o < d->out[i]; o++) {
      int64_t c = 0;
      for (int64_t w = 0; w < d->window[i]; w++) {
        int64_t x = o * d->stride[i] + w * d->wdil[i] - d->lo[i];
        if (x >= 0 && x <= (d->in[i] - 1) * d->bdil[i] && x % d->bdil[i] == 0)
          t->off[i][o * d->window[i] + c++] = x / d->bdil[i] * st[i];
      }
      t->cnt[i][o] = c;
    }
  }
  return 0;
}

/* Walk the taps of output o (multi-index oi): BODY sees `xo`, the tap's
 * element offset in x; an output with no in-range tap runs no BODY. */
#define FOR_TAPS_N(t, nd, oi, BODY)                                                                          \
  do {                                                                                                       \
    const int nd_ = (nd);                                                                                    \
    int64_t k_[JX_MAX_RANK] = {0}, ps_[JX_MAX_RANK + 1] = {0};                                               \
    bool empty_ = false;                                                                                     \
    for (int i_ = 0; i_ < nd_; i_++) empty_ |= (t)->cnt[i_][(oi)[i_]] == 0;                                  \
    if (empty_) break;                                                                                       \
    for (int i_ = 0; i_ < nd_; i_++) ps_[i_ + 1] = ps_[i_] + (t)->off[i_][(oi)[i_] * (t)->d->window[i_]];    \
    for (;;) {                                                                                               \
      const int64_t xo = ps_[nd_];                                                                           \
      BODY;                                                                                                  \
      int i_ = nd_ - 1;                                                                                      \
      for (; i_ >= 0; i_--) {                                                                                \
        if (++k_[i_] < (t)->cnt[i_][(oi)[i_]]) break;                                                        \
        k_[i_] = 0;                                                                                          \
      }                                                                                                      \
      if (i_ < 0) break;                                                                                     \
      for (int m_ = i_; m_ < nd_; m_++)                                                                      \
        ps_[m_ + 1] = ps_[m_] + (t)->off[m_][(oi)[m_] * (t)->d->window[m_] + k_[m_]];                        \
    }                                                                                                        \
  } while (0)

#define FOR_TAPS(t, oi, BODY) FOR_TAPS_N(t, (t)->d->ndim, oi, BODY)

static void unflat_n(const jx_cpu_window_desc *d, int nd, int64_t f, int64_t *oi) {
  for (int i = nd - 1; i >= 0; i--) oi[i] = f % d->out[i], f /= d->out[i];
}
static void unflat(const jx_cpu_window_desc *d, int64_t f, int64_t *oi) { unflat_n(d, d->ndim, f, oi); }

/* The last dim is carried whole (window 1, stride 1, no padding or
 * dilation: NHWC pooling's channels): then each position's taps are
 * walked once for a run of channels, in vector loops. */
static bool last_whole(const jx_cpu_window_desc *d) {
  int l = d->ndim - 1;
  return l >= 1 && d->window[l] == 1 && d->stride[l] == 1 && d->lo[l] == 0 && d->bdil[l] == 1 &&
         d->out[l] == d->in[l] && d->in[l] >= 4;
}
enum { VL = 256 }; /* channels per vector run */

/* per dtype: NaN test, identities, combining */
#define NAN_f32(x)    ((x) != (x))
#define NAN_f64(x)    ((x) != (x))
#define NAN_i32(x)    ((void)(x), 0)
#define NAN_i64(x)    ((void)(x), 0)
#define NAN_u32(x)    ((void)(x), 0)
#define LOWEST_f32    (-INFINITY)
#define LOWEST_f64    (-INFINITY)
#define LOWEST_i32    INT32_MIN
#define LOWEST_i64    INT64_MIN
#define LOWEST_u32    0u
#define HIGHEST_f32   INFINITY
#define HIGHEST_f64   INFINITY
#define HIGHEST_i32   INT32_MAX
#define HIGHEST_i64   INT64_MAX
#define HIGHEST_u32   UINT32_MAX
/* (#19) the smaller integers and u64 */
#define NAN_i8(x)     ((void)(x), 0)
#define NAN_u8(x)     ((void)(x), 0)
#define NAN_i16(x)    ((void)(x), 0)
#define NAN_u16(x)    ((void)(x), 0)
#define NAN_u64(x)    ((void)(x), 0)
#define LOWEST_i8     INT8_MIN
#define LOWEST_u8     0u
#define LOWEST_i16    INT16_MIN
#define LOWEST_u16    0u
#define LOWEST_u64    0u
#define HIGHEST_i8    INT8_MAX
#define HIGHEST_u8    UINT8_MAX
#define HIGHEST_i16   INT16_MAX
#define HIGHEST_u16   UINT16_MAX
#define HIGHEST_u64   UINT64_MAX
/* a + b: signed integers wrap (through their unsigned type, as XLA's
 * integer sums do; a plain + would overflow, which C leaves undefined) */
#define ADD_f32(a, b) ((a) + (b))
#define ADD_f64(a, b) ((a) + (b))
#define ADD_i32(a, b) ((int32_t)((uint32_t)(a) + (uint32_t)(b)))
#define ADD_i64(a, b) ((int64_t)((uint64_t)(a) + (uint64_t)(b)))
#define ADD_u32(a, b) ((uint32_t)((a) + (b)))
#define ADD_i8(a, b)  ((int8_t)((uint8_t)(a) + (uint8_t)(b)))
#define ADD_u8(a, b)  ((uint8_t)((a) + (b)))
#define ADD_i16(a, b) ((int16_t)((uint16_t)(a) + (uint16_t)(b)))
#define ADD_u16(a, b) ((uint16_t)((a) + (b)))
#define ADD_u64(a, b) ((a) + (b))

typedef struct {
  jx_cpu_winop op;
  bool is_min;
  const taps *t;
  const void *x, *ts; /* x; the gathered (t) or scattered (s) operand */
  void *y;
} win_job;

#define DEF_WIN(S, T, _)                                                                                       \
  static void reduce_##S(void *ctx, int64_t lo, int64_t hi) {                                                  \
    const win_job *j = ctx;                                                                                    \
    const T *x = j->x;                                                                                         \
    T *y = j->y;                                                                                               \
    int64_t oi[JX_MAX_RANK];                                                                                   \
    for (int64_t f = lo; f < hi; f++) {                                                                        \
      unflat(j->t->d, f, oi);                                                                                  \
      T acc = j->op == JX_WIN_SUM ? (T)0 : j->op == JX_WIN_MAX ? LOWEST_##S : HIGHEST_##S;                     \
      if (j->op == JX_WIN_SUM)                                                                                 \
        FOR_TAPS(j->t, oi, acc = ADD_##S(acc, x[xo]));                                                         \
      else if (j->op == JX_WIN_MAX)                                                                            \
        FOR_TAPS(j->t, oi, acc = (x[xo] > acc || NAN_##S(x[xo])) && !NAN_##S(acc) ? x[xo] : acc);              \
      else                                                                                                     \
        FOR_TAPS(j->t, oi, acc = (x[xo] < acc || NAN_##S(x[xo])) && !NAN_##S(acc) ? x[xo] : acc);              \
      y[f] = acc;                                                                                              \
    }                                                                                                          \
  }                                                                                                            \
  /* the selected tap of output oi (-1: none): XLA's select with ge (le):                                    \
   * a later tap replaces the selection unless selection >= (<=) tap */ \
  static int64_t select_##S(const win_job *j, const int64_t *oi) {                                             \
    const T *x = j->x;                                                                                         \
    int64_t sel = -1;                                                                                          \
    if (j->is_min)                                                                                             \
      FOR_TAPS(j->t, oi, sel = sel < 0 || !(x[sel] <= x[xo]) ? xo : sel);                                      \
    else                                                                                                       \
      FOR_TAPS(j->t, oi, sel = sel < 0 || !(x[sel] >= x[xo]) ? xo : sel);                                      \
    return sel;                                                                                                \
  }                                                                                                            \
  static void gather_##S(void *ctx, int64_t lo, int64_t hi) {                                                  \
    const win_job *j = ctx;                                                                                    \
    const T *t = j->ts;                                                                                        \
    T *y = j->y;                                                                                               \
    int64_t oi[JX_MAX_RANK];                                                                                   \
    for (int64_t f = lo; f < hi; f++) {                                                                        \
      unflat(j->t->d, f, oi);                                                                                  \
      int64_t s = select_##S(j, oi);                                                                           \
      y[f] = s < 0 ? (T)0 : t[s];                                                                              \
    }                                                                                                          \
  }                                                                                                            \
  static void scatter_##S(void *ctx, int64_t lo, int64_t hi) {                                                 \
    const win_job *j = ctx;                                                                                    \
    const T *s = j->ts;                                                                                        \
    T *y = j->y;                                                                                               \
    int64_t oi[JX_MAX_RANK];                                                                                   \
    for (int64_t f = lo; f < hi; f++) {                                                                        \
      unflat(j->t->d, f, oi);                                                                                  \
      int64_t sel = select_##S(j, oi);                                                                         \
      if (sel >= 0) y[sel] = ADD_##S(y[sel], s[f]);                                                            \
    }                                                                                                          \
  }
JX_FOR_NUM_NATIVE(DEF_WIN, _)

/* the same over runs of the last dim (last_whole): outputs [outer, L] */
#define DEF_VWIN(S, T, _)                                                                                    \
  static void vreduce_##S(void *ctx, int64_t lo, int64_t hi) {                                               \
    const win_job *j = ctx;                                                                                  \
    const jx_cpu_window_desc *d = j->t->d;                                                                   \
    const int nd = d->ndim - 1;                                                                              \
    const int64_t L = d->in[nd];                                                                             \
    const T *x = j->x;                                                                                       \
    T *y = j->y, acc[VL];                                                                                    \
    int64_t oi[JX_MAX_RANK];                                                                                 \
    for (int64_t f = lo; f < hi; f++) {                                                                      \
      unflat_n(d, nd, f, oi);                                                                                \
      for (int64_t c0 = 0; c0 < L; c0 += VL) {                                                               \
        const int64_t n = L - c0 < VL ? L - c0 : VL;                                                         \
        const T id = j->op == JX_WIN_SUM ? (T)0 : j->op == JX_WIN_MAX ? LOWEST_##S : HIGHEST_##S;            \
        for (int64_t c = 0; c < n; c++) acc[c] = id;                                                         \
        if (j->op == JX_WIN_SUM)                                                                             \
          FOR_TAPS_N(j->t, nd, oi,                                                                           \
                     for (int64_t c = 0; c < n; c++) acc[c] = ADD_##S(acc[c], x[xo + c0 + c]));              \
        else if (j->op == JX_WIN_MAX)                                                                        \
          FOR_TAPS_N(                                                                                        \
              j->t, nd, oi, for (int64_t c = 0; c < n; c++) {                                                \
                T v = x[xo + c0 + c];                                                                        \
                acc[c] = (v > acc[c] || NAN_##S(v)) && !NAN_##S(acc[c]) ? v : acc[c];                        \
              });                                                                                            \
        else                                                                                                 \
          FOR_TAPS_N(                                                                                        \
              j->t, nd, oi, for (int64_t c = 0; c < n; c++) {                                                \
                T v = x[xo + c0 + c];                                                                        \
                acc[c] = (v < acc[c] || NAN_##S(v)) && !NAN_##S(acc[c]) ? v : acc[c];                        \
              });                                                                                            \
        memcpy(y + f * L + c0, acc, (size_t)n * sizeof(T));                                                  \
      }                                                                                                      \
    }                                                                                                        \
  }                                                                                                          \
  /* selected element offsets for channels [c0, c0 + n) of position oi */                                    \
  static void vselect_##S(const win_job *j, const int64_t *oi, int64_t c0, int64_t n, int64_t *sel) {        \
    const T *x = j->x;                                                                                       \
    for (int64_t c = 0; c < n; c++) sel[c] = -1;                                                             \
    if (j->is_min)                                                                                           \
      FOR_TAPS_N(                                                                                            \
          j->t, j->t->d->ndim - 1, oi, for (int64_t c = 0; c < n; c++) {                                     \
            int64_t e = xo + c0 + c;                                                                         \
            if (sel[c] < 0 || !(x[sel[c]] <= x[e])) sel[c] = e;                                              \
          });                                                                                                \
    else                                                                                                     \
      FOR_TAPS_N(                                                                                            \
          j->t, j->t->d->ndim - 1, oi, for (int64_t c = 0; c < n; c++) {                                     \
            int64_t e = xo + c0 + c;                                                                         \
            if (sel[c] < 0 || !(x[sel[c]] >= x[e])) sel[c] = e;                                              \
          });                                                                                                \
  }                                                                                                          \
  static void vgather_##S(void *ctx, int64_t lo, int64_t hi) {                                               \
    const win_job *j = ctx;                                                                                  \
    const int nd = j->t->d->ndim - 1;                                                                        \
    const int64_t L = j->t->d->in[nd];                                                                       \
    const T *t = j->ts;                                                                                      \
    T *y = j->y;                                                                                             \
    int64_t oi[JX_MAX_RANK], sel[VL];                                                                        \
    for (int64_t f = lo; f < hi; f++) {                                                                      \
      unflat_n(j->t->d, nd, f, oi);                                                                          \
      for (int64_t c0 = 0; c0 < L; c0 += VL) {                                                               \
        const int64_t n = L - c0 < VL ? L - c0 : VL;                                                         \
        vselect_##S(j, oi, c0, n, sel);                                                                      \
        for (int64_t c = 0; c < n; c++) y[f * L + c0 + c] = sel[c] < 0 ? (T)0 : t[sel[c]];                   \
      }                                                                                                      \
    }                                                                                                        \
  }                                                                                                          \
  static void vscatter_##S(void *ctx, int64_t lo, int64_t hi) {                                              \
    const win_job *j = ctx;                                                                                  \
    const int nd = j->t->d->ndim - 1;                                                                        \
    const int64_t L = j->t->d->in[nd];                                                                       \
    const T *s = j->ts;                                                                                      \
    T *y = j->y;                                                                                             \
    int64_t oi[JX_MAX_RANK], sel[VL];                                                                        \
    for (int64_t f = lo; f < hi; f++) {                                                                      \
      unflat_n(j->t->d, nd, f, oi);                                                                          \
      for (int64_t c0 = 0; c0 < L; c0 += VL) {                                                               \
        const int64_t n = L - c0 < VL ? L - c0 : VL;                                                         \
        vselect_##S(j, oi, c0, n, sel);                                                                      \
        for (int64_t c = 0; c < n; c++)                                                                      \
          if (sel[c] >= 0) y[sel[c]] = ADD_##S(y[sel[c]], s[f * L + c0 + c]);                                \
      }                                                                                                      \
    }                                                                                                        \
  }
JX_FOR_NUM_NATIVE(DEF_VWIN, _)

/* Tiled windows (tiled(), below: every window wholly inside x, windows
 * side by side without gaps or overlap, the last dim carried whole: max
 * pooling's 2x2 stride 2 over NHWC): every window's taps sit at the same
 * offsets from its first element (tap k at tap[k], row-major tap order),
 * and each element of x is a tap of at most one window, so the scatter
 * writes each target once, in parallel, with no zeroing pass over what the
 * windows cover. The same recurrences, tap for tap, as the kernels above:
 * results are the same bits (NaN, ties and signed zeros included). */
enum { TV = 64, MAX_TAPS = 64 }; /* channels per run; taps per window */
typedef struct {
  const win_job *j;
  int64_t ntap, tap[MAX_TAPS];
  int64_t xst[JX_MAX_RANK]; /* x's element strides */
} tile_job;

/* the first element of the window at flat position f (outer dims only) */
static int64_t tile_base(const tile_job *tj, int64_t f) {
  const jx_cpu_window_desc *d = tj->j->t->d;
  int64_t b = 0;
  for (int i = d->ndim - 2; i >= 0; i--) b += f % d->out[i] * d->stride[i] * tj->xst[i], f /= d->out[i];
  return b;
}

#define DEF_TILE(S, T, _)                                                                                      \
  static void treduce_##S(void *ctx, int64_t lo, int64_t hi) {                                                 \
    const tile_job *tj = ctx;                                                                                  \
    const win_job *j = tj->j;                                                                                  \
    const int64_t L = j->t->d->in[j->t->d->ndim - 1];                                                          \
    const T *x = j->x;                                                                                         \
    T *y = j->y, acc[TV];                                                                                      \
    const T id = j->op == JX_WIN_SUM ? (T)0 : j->op == JX_WIN_MAX ? LOWEST_##S : HIGHEST_##S;                  \
    for (int64_t f = lo; f < hi; f++) {                                                                        \
      const int64_t b = tile_base(tj, f);                                                                      \
      for (int64_t c0 = 0; c0 < L; c0 += TV) {                                                                 \
        const int64_t n = L - c0 < TV ? L - c0 : TV;                                                           \
        for (int64_t c = 0; c < n; c++) acc[c] = id;                                                           \
        for (int64_t k = 0; k < tj->ntap; k++) {                                                               \
          const T *xk = x + b + tj->tap[k] + c0;                                                               \
          if (j->op == JX_WIN_SUM)                                                                             \
            for (int64_t c = 0; c < n; c++) acc[c] = ADD_##S(acc[c], xk[c]);                                   \
          else if (j->op == JX_WIN_MAX)                                                                        \
            for (int64_t c = 0; c < n; c++)                                                                    \
              acc[c] = (xk[c] > acc[c] || NAN_##S(xk[c])) && !NAN_##S(acc[c]) ? xk[c] : acc[c];                \
          else                                                                                                 \
            for (int64_t c = 0; c < n; c++)                                                                    \
              acc[c] = (xk[c] < acc[c] || NAN_##S(xk[c])) && !NAN_##S(acc[c]) ? xk[c] : acc[c];                \
        }                                                                                                      \
        memcpy(y + f * L + c0, acc, (size_t)n * sizeof(T));                                                    \
      }                                                                                                        \
    }                                                                                                          \
  }                                                                                                            \
  /* the selected tap (index into tap[]) of channels [c0, c0 + n) of the                                     \
   * window at b: vselect's recurrence, on values */ \
  static void tselect_##S(const tile_job *tj, int64_t b, int64_t c0, int64_t n, int32_t *ks) {                 \
    const T *x = tj->j->x;                                                                                     \
    T vs[TV];                                                                                                  \
    memcpy(vs, x + b + tj->tap[0] + c0, (size_t)n * sizeof(T));                                                \
    memset(ks, 0, (size_t)n * 4);                                                                              \
    for (int64_t k = 1; k < tj->ntap; k++) {                                                                   \
      const T *xk = x + b + tj->tap[k] + c0;                                                                   \
      if (tj->j->is_min)                                                                                       \
        for (int64_t c = 0; c < n; c++) {                                                                      \
          const bool take = !(vs[c] <= xk[c]);                                                                 \
          vs[c] = take ? xk[c] : vs[c], ks[c] = take ? (int32_t)k : ks[c];                                     \
        }                                                                                                      \
      else                                                                                                     \
        for (int64_t c = 0; c < n; c++) {                                                                      \
          const bool take = !(vs[c] >= xk[c]);                                                                 \
          vs[c] = take ? xk[c] : vs[c], ks[c] = take ? (int32_t)k : ks[c];                                     \
        }                                                                                                      \
    }                                                                                                          \
  }                                                                                                            \
  static void tgather_##S(void *ctx, int64_t lo, int64_t hi) {                                                 \
    const tile_job *tj = ctx;                                                                                  \
    const win_job *j = tj->j;                                                                                  \
    const int64_t L = j->t->d->in[j->t->d->ndim - 1];                                                          \
    const T *t = j->ts;                                                                                        \
    T *y = j->y;                                                                                               \
    int32_t ks[TV];                                                                                            \
    for (int64_t f = lo; f < hi; f++) {                                                                        \
      const int64_t b = tile_base(tj, f);                                                                      \
      for (int64_t c0 = 0; c0 < L; c0 += TV) {                                                                 \
        const int64_t n = L - c0 < TV ? L - c0 : TV;                                                           \
        tselect_##S(tj, b, c0, n, ks);                                                                         \
        for (int64_t c = 0; c < n; c++) y[f * L + c0 + c] = t[b + tj->tap[ks[c]] + c0 + c];                    \
      }                                                                                                        \
    }                                                                                                          \
  }                                                                                                            \
  /* each tap's elements: the source at the selected tap (0 + s, as the                                     \
   * generic kernel adds it into zeros), zero elsewhere */  \
  static void tscatter_##S(void *ctx, int64_t lo, int64_t hi) {                                                \
    const tile_job *tj = ctx;                                                                                  \
    const win_job *j = tj->j;                                                                                  \
    const int64_t L = j->t->d->in[j->t->d->ndim - 1];                                                          \
    const T *s = j->ts;                                                                                        \
    T *y = j->y;                                                                                               \
    int32_t ks[TV];                                                                                            \
    for (int64_t f = lo; f < hi; f++) {                                                                        \
      const int64_t b = tile_base(tj, f);                                                                      \
      for (int64_t c0 = 0; c0 < L; c0 += TV) {                                                                 \
        const int64_t n = L - c0 < TV ? L - c0 : TV;                                                           \
        tselect_##S(tj, b, c0, n, ks);                                                                         \
        const T *sf = s + f * L + c0;                                                                          \
        for (int64_t k = 0; k < tj->ntap; k++) {                                                               \
          T *yk = y + b + tj->tap[k] + c0;                                                                     \
          for (int64_t c = 0; c < n; c++) yk[c] = ks[c] == k ? ADD_##S((T)0, sf[c]) : (T)0;                    \
        }                                                                                                      \
      }                                                                                                        \
    }                                                                                                          \
  }
JX_FOR_NUM_NATIVE(DEF_TILE, _)

typedef struct {
  jx_cpu_range_fn reduce, gather, scatter, vreduce, vgather, vscatter, treduce, tgather, tscatter;
} win_fns;
#define WIN_ENTRY(S, T, _)                                                                                   \
  [JX_DT_##S] = {reduce_##S,   gather_##S,  scatter_##S, vreduce_##S, vgather_##S,                           \
                 vscatter_##S, treduce_##S, tgather_##S, tscatter_##S},
static const win_fns fns[JX_DTYPE_COUNT] = {JX_FOR_NUM_NATIVE(WIN_ENTRY, _)};

/* the outputs the range functions count: all, or the positions without
 * the carried last dim */
static int64_t out_size(const jx_cpu_window_desc *d) {
  int64_t n = 1;
  for (int i = 0; i < d->ndim - (last_whole(d) ? 1 : 0); i++) n *= d->out[i];
  return n;
}

static bool generic_only;
void jx_cpu_window_generic(bool on) { generic_only = on; }

/* whether d's windows tile x (see DEF_TILE); tj gets x's strides and the
 * taps' offsets, in row-major tap order */
static bool tiled(const jx_cpu_window_desc *d, tile_job *tj) {
  if (generic_only || !last_whole(d)) return false;
  int64_t ntap = 1, acc = 1;
  for (int i = d->ndim - 1; i >= 0; i--) tj->xst[i] = acc, acc *= d->in[i];
  for (int i = 0; i < d->ndim - 1; i++) {
    if (d->stride[i] != d->window[i] || d->lo[i] != 0 || d->bdil[i] != 1 || d->wdil[i] != 1 ||
        d->out[i] * d->window[i] > d->in[i])
      return false;
    ntap *= d->window[i];
    if (ntap > MAX_TAPS) return false;
  }
  tj->ntap = ntap;
  for (int64_t k = 0; k < ntap; k++) {
    int64_t r = k, off = 0;
    for (int i = d->ndim - 2; i >= 0; i--) off += r % d->window[i] * tj->xst[i], r /= d->window[i];
    tj->tap[k] = off;
  }
  return true;
}

bool jx_cpu_window_tiled(const jx_cpu_window_desc *d) {
  tile_job tj;
  return tiled(d, &tj);
}

/* a tiled kernel over every window position (the last dim in runs) */
static int run_tiled(jx_cpu_range_fn fn, const jx_cpu_window_desc *d, tile_job *tj, win_job *j) {
  taps t = {.d = d};
  j->t = &t, tj->j = j;
  const int64_t work = d->in[d->ndim - 1] * tj->ntap;
  jx_cpu_parallel_for(out_size(d), 1 + 8192 / work, fn, tj);
  return 0;
}

int jx_cpu_reduce_window(jx_cpu_winop op, const jx_cpu_window_desc *d, const void *x, void *y) {
  KCHECK(fns[d->dt].reduce);
  tile_job tj;
  if (tiled(d, &tj)) return run_tiled(fns[d->dt].treduce, d, &tj, &(win_job){.op = op, .x = x, .y = y});
  taps t;
  if (taps_make(d, &t)) return -1;
  win_job j = {.op = op, .t = &t, .x = x, .y = y};
  bool v = last_whole(d);
  jx_cpu_parallel_for(out_size(d), v ? 64 : 4096, v ? fns[d->dt].vreduce : fns[d->dt].reduce, &j);
  jx_free(t.block);
  return 0;
}

int jx_cpu_select_gather(bool is_min, const jx_cpu_window_desc *d, const void *tv, const void *x, void *y) {
  KCHECK(fns[d->dt].gather);
  tile_job tj;
  if (tiled(d, &tj))
    return run_tiled(fns[d->dt].tgather, d, &tj, &(win_job){.is_min = is_min, .x = x, .ts = tv, .y = y});
  taps t;
  if (taps_make(d, &t)) return -1;
  win_job j = {.is_min = is_min, .t = &t, .x = x, .ts = tv, .y = y};
  bool v = last_whole(d);
  jx_cpu_parallel_for(out_size(d), v ? 64 : 4096, v ? fns[d->dt].vgather : fns[d->dt].gather, &j);
  jx_free(t.block);
  return 0;
}

typedef struct {
  const win_job *j;
  int64_t per; /* outputs per slice of dim 0 */
} slab_job;
static void scatter_slabs(void *ctx, int64_t lo, int64_t hi) {
  const slab_job *s = ctx;
  const jx_cpu_window_desc *d = s->j->t->d;
  (last_whole(d) ? fns[d->dt].vscatter : fns[d->dt].scatter)((void *)s->j, lo * s->per, hi * s->per);
}

int jx_cpu_select_scatter(bool is_min, const jx_cpu_window_desc *d, const void *sv, const void *x, void *y) {
  KCHECK(fns[d->dt].scatter);
  int64_t nx = 1;
  bool covered = true; /* (when tiled) every element of x is some window's tap */
  for (int i = 0; i < d->ndim; i++) nx *= d->in[i], covered &= d->out[i] * d->window[i] == d->in[i];
  tile_job tj;
  if (tiled(d, &tj)) {
    if (!covered) memset(y, 0, (size_t)nx * jx_dtype_size(d->dt));
    return run_tiled(fns[d->dt].tscatter, d, &tj, &(win_job){.is_min = is_min, .x = x, .ts = sv, .y = y});
  }
  memset(y, 0, (size_t)nx * jx_dtype_size(d->dt));
  taps t;
  if (taps_make(d, &t)) return -1;
  win_job j = {.is_min = is_min, .t = &t, .x = x, .ts = sv, .y = y};
  int64_t n = out_size(d);
  /* windows overlap, so outputs scatter in parallel only by slices of a
   * leading dim whose window is one tap (a batch dim): their targets are
   * distinct slices of y */
  if (d->ndim > 1 && d->window[0] == 1 && d->out[0] > 1 && n > 0) {
    slab_job s = {&j, n / d->out[0]};
    jx_cpu_parallel_for(d->out[0], 1 + 4096 / (s.per ? s.per : 1), scatter_slabs, &s);
  } else {
    (last_whole(d) ? fns[d->dt].vscatter : fns[d->dt].scatter)(&j, 0, n);
  }
  jx_free(t.block);
  return 0;
}
