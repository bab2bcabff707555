/* Reductions (sum, max, min) and argmax/argmin.
 *
 * After dropping size-1 dims and merging neighbours with the same flag, a
 * reduction is one of a few shapes (K kept, R reduced, x contiguous):
 *   [K,R]     each output reduces a contiguous run: blocked lanes (L
 *             independent accumulators that gcc turns into vector registers)
 *             inside a pairwise split, so f32 error grows like log n; rows
 *             shorter than the lanes are reduced side by side instead;
 *   [K1,R,K2] (and [R,K] = [1,R,K]) rows are added into an output row,
 *             pairwise over rows, in column tiles that stay in L1;
 *   anything else: an odometer per output over runs of the innermost
 *             reduced dim (float sums accumulate in double there).
 *
 * Parallel splits never change results: where a long reduction is cut into
 * chunks, the cut depends on the shape only (never on the thread count), and
 * the serial path combines the same chunks in the same order.
 *
 * argmax/argmin scan [outer, n, inner] a tile of columns at a time; a long
 * contiguous row instead takes the vectorized max/min, then the first
 * position holding it. */
#include "backend/cpu/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  MAXD = 16,
  CHUNK = 1 << 16,  /* rows longer than this are cut into chunks ...   */
  MAXCH = 1024,     /* ... of at least CHUNK, at most MAXCH of them    */
  RB = 16,          /* rows added in sequence before a pairwise split  */
  KT_BYTES = 256,   /* column tile of the [R,K] kernel                 */
  MAXDEPTH = 44,    /* pairwise levels over rows: R < RB * 2^44         */
  TASK_COLS = 2048, /* bytes of columns per parallel task in [R,K]      */
};

/* chunk length for a row of n > CHUNK elements: a multiple of 64 (so of
 * every lane count) giving at most MAXCH chunks */
static int64_t chunk_len(int64_t n) {
  int64_t cl = (n + MAXCH - 1) / MAXCH;
  if (cl < CHUNK) cl = CHUNK;
  return (cl + 63) & ~(int64_t)63;
}

/* Per (op, dtype): the kernels the driver needs, behind void pointers. */
typedef struct {
  size_t es;
  void (*rows)(const void *x, int64_t K, int64_t R, void *y);
  void (*chunks)(const void *x, int64_t n, int64_t c0, int64_t c1, void *part);
  void (*cols)(const void *x, int64_t R, int64_t ld, int64_t w, void *y);
  void (*ident)(int64_t n, void *y);
  void (*general)(const void *g, int64_t lo, int64_t hi);
} red_vt;

/* The general fallback's view: kept dims map outputs to input offsets,
 * reduced dims (innermost last) are walked per output. */
typedef struct {
  const red_vt *vt;
  const void *x;
  void *y;
  int nk, nr;
  int64_t kshape[MAXD], kstride[MAXD], rshape[MAXD], rstride[MAXD];
} red_general;

/* X(OP, S, T, A, COMB, IDENT): A accumulates across runs in the general
 * path (double for float sums); COMB combines a and b of one type. */
#define FLOAT_RED(X, S, T)                                                                                   \
  X(sum, S, T, double, a + b, 0)                                                                             \
  X(max, S, T, T, (a > b || a != a) ? a : b, -INFINITY)                                                      \
  X(min, S, T, T, (a < b || a != a) ? a : b, INFINITY)
#define INT_RED(X, S, T, U, LO, HI)                                                                          \
  X(sum, S, T, T, (T)((U)a + (U)b), 0)                                                                       \
  X(max, S, T, T, a > b ? a : b, LO)                                                                         \
  X(min, S, T, T, a < b ? a : b, HI)
#define FOR_RED(X)                                                                                           \
  INT_RED(X, b, uint8_t, uint8_t, 0, 1)                                                                      \
  INT_RED(X, i32, int32_t, uint32_t, INT32_MIN, INT32_MAX)                                                   \
  INT_RED(X, i64, int64_t, uint64_t, INT64_MIN, INT64_MAX)                                                   \
  INT_RED(X, u32, uint32_t, uint32_t, 0, UINT32_MAX)                                                         \
  INT_RED(X, i8, int8_t, uint32_t, INT8_MIN, INT8_MAX)                                                       \
  INT_RED(X, u8, uint8_t, uint32_t, 0, UINT8_MAX)                                                            \
  INT_RED(X, i16, int16_t, uint32_t, INT16_MIN, INT16_MAX)                                                   \
  INT_RED(X, u16, uint16_t, uint32_t, 0, UINT16_MAX)                                                         \
  INT_RED(X, u64, uint64_t, uint64_t, 0, UINT64_MAX)                                                         \
  FLOAT_RED(X, f32, float) FLOAT_RED(X, f64, double)
/* (#19) bf16/f16 have no kernels here: prims/reduce.c widens them to f32
 * (a copy), reduces that and rounds the result once, as XLA:CPU does. */
/* bool: max/min as or/and; its sum wraps mod 256 (callers convert first). */

#define DEF_RED(OP, S, T, A, COMB, IDENT)                                                                    \
  enum { L_##OP##_##S = 128 / sizeof(T), KT_##OP##_##S = KT_BYTES / sizeof(T) };                             \
  static inline T c_##OP##_##S(T a, T b) { return COMB; }                                                    \
  static inline A ac_##OP##_##S(A a, A b) { return COMB; }                                                   \
                                                                                                             \
  /* n <= 16 L: L lanes, then a pairwise fold of the lanes; rows shorter                \
   * than the lanes (sum over a last dim of 10) just run in sequence */                    \
  static T blk_##OP##_##S(const T *x, int64_t n) {                                                           \
    enum { L = L_##OP##_##S };                                                                               \
    if (n < L) {                                                                                             \
      if (n == 0) return (T)(IDENT);                                                                         \
      T r = x[0];                                                                                            \
      for (int64_t i = 1; i < n; i++) r = c_##OP##_##S(r, x[i]);                                             \
      return r;                                                                                              \
    }                                                                                                        \
    T acc[L];                                                                                                \
    for (int j = 0; j < L; j++) acc[j] = (T)(IDENT);                                                         \
    int64_t i = 0;                                                                                           \
    for (; i + L <= n; i += L)                                                                               \
      for (int j = 0; j < L; j++) acc[j] = c_##OP##_##S(acc[j], x[i + j]);                                   \
    for (int j = 0; i < n; i++, j++) acc[j] = c_##OP##_##S(acc[j], x[i]);                                    \
    for (int w = L / 2; w > 0; w /= 2)                                                                       \
      for (int j = 0; j < w; j++) acc[j] = c_##OP##_##S(acc[j], acc[j + w]);                                 \
    return acc[0];                                                                                           \
  }                                                                                                          \
  static T pw_##OP##_##S(const T *x, int64_t n) {                                                            \
    enum { L = L_##OP##_##S };                                                                               \
    if (n <= 16 * L) return blk_##OP##_##S(x, n);                                                            \
    int64_t h = (n / 2) & ~(int64_t)(L - 1);                                                                 \
    return c_##OP##_##S(pw_##OP##_##S(x, h), pw_##OP##_##S(x + h, n - h));                                   \
  }                                                                                                          \
  /* partial results of chunks [c0, c1) of a row of n > CHUNK elements */                                    \
  static void chunks_##OP##_##S(const void *px, int64_t n, int64_t c0, int64_t c1, void *ppart) {            \
    const T *x = px;                                                                                         \
    T *part = ppart;                                                                                         \
    int64_t cl = chunk_len(n);                                                                               \
    for (int64_t c = c0; c < c1; c++) {                                                                      \
      int64_t lo = c * cl, len = n - lo < cl ? n - lo : cl;                                                  \
      part[c] = pw_##OP##_##S(x + lo, len);                                                                  \
    }                                                                                                        \
  }                                                                                                          \
  static T row_##OP##_##S(const T *x, int64_t n) {                                                           \
    if (n <= CHUNK) return pw_##OP##_##S(x, n);                                                              \
    T part[MAXCH];                                                                                           \
    int64_t cl = chunk_len(n), nch = (n + cl - 1) / cl;                                                      \
    chunks_##OP##_##S(x, n, 0, nch, part);                                                                   \
    return pw_##OP##_##S(part, nch);                                                                         \
  }                                                                                                          \
  /* y[k] = reduce of row k. Rows shorter than the lanes are reduced 256 at a           \
   * time, element r of every row in turn: independent chains across rows                \
   * instead of one short dependent chain per row (the same order, r = 0..R-1). */                    \
  static void rows_##OP##_##S(const void *px, int64_t K, int64_t R, void *py) {                              \
    const T *x = px;                                                                                         \
    T *y = py;                                                                                               \
    if (R >= L_##OP##_##S || K == 1) {                                                                       \
      for (int64_t k = 0; k < K; k++) y[k] = row_##OP##_##S(x + k * R, R);                                   \
      return;                                                                                                \
    }                                                                                                        \
    for (int64_t k0 = 0; k0 < K; k0 += 256, x += 256 * R, y += 256) {                                        \
      int64_t nb = K - k0 < 256 ? K - k0 : 256;                                                              \
      for (int64_t k = 0; k < nb; k++) y[k] = x[k * R];                                                      \
      for (int64_t r = 1; r < R; r++)                                                                        \
        for (int64_t k = 0; k < nb; k++) y[k] = c_##OP##_##S(y[k], x[k * R + r]);                            \
    }                                                                                                        \
  }                                                                                                          \
                                                                                                             \
  /* y[0,w) over R >= 1 rows of stride ld, w <= KT: RB rows in sequence, then            \
   * split in halves; level d of the split keeps its half in tmp + d*KT */                   \
  static void ctile_##OP##_##S(const T *x, int64_t R, int64_t ld, int64_t w, T *y, T *tmp) {                 \
    if (R <= RB) {                                                                                           \
      for (int64_t j = 0; j < w; j++) y[j] = x[j];                                                           \
      for (int64_t r = 1; r < R; r++)                                                                        \
        for (int64_t j = 0; j < w; j++) y[j] = c_##OP##_##S(y[j], x[r * ld + j]);                            \
      return;                                                                                                \
    }                                                                                                        \
    int64_t h = R / 2;                                                                                       \
    ctile_##OP##_##S(x, h, ld, w, y, tmp);                                                                   \
    ctile_##OP##_##S(x + h * ld, R - h, ld, w, tmp, tmp + KT_##OP##_##S);                                    \
    for (int64_t j = 0; j < w; j++) y[j] = c_##OP##_##S(y[j], tmp[j]);                                       \
  }                                                                                                          \
  /* y[0,w) = reduce over R >= 1 rows of x (row stride ld) */                                                \
  static void cols_##OP##_##S(const void *px, int64_t R, int64_t ld, int64_t w, void *py) {                  \
    enum { KT = KT_##OP##_##S };                                                                             \
    const T *x = px;                                                                                         \
    T *y = py, tmp[MAXDEPTH * KT];                                                                           \
    KCHECK(R < ((int64_t)RB << MAXDEPTH));                                                                   \
    if (w == ld && 2 * w <= KT && R >= 2) {                                                                  \
      /* Narrow rows: m consecutive rows are one contiguous super-row of                  \
       * width m*w, so the row loop stays wide; fold the m groups after. */                  \
      int64_t m = KT / w, R2 = R / m, rem = R - R2 * m;                                                      \
      T part[KT], last[KT];                                                                                  \
      if (R2 > 0) ctile_##OP##_##S(x, R2, m *w, m *w, part, tmp);                                            \
      if (rem > 0) ctile_##OP##_##S(x + R2 * m * w, rem, w, w, last, tmp);                                   \
      for (int64_t j = 0; j < w; j++) {                                                                      \
        T v = R2 > 0 ? part[j] : last[j];                                                                    \
        for (int64_t g = 1; R2 > 0 && g < m; g++) v = c_##OP##_##S(v, part[g * w + j]);                      \
        y[j] = R2 > 0 && rem > 0 ? c_##OP##_##S(v, last[j]) : v;                                             \
      }                                                                                                      \
      return;                                                                                                \
    }                                                                                                        \
    for (int64_t j0 = 0; j0 < w; j0 += KT)                                                                   \
      ctile_##OP##_##S(x + j0, R, ld, w - j0 < KT ? w - j0 : KT, y + j0, tmp);                               \
  }                                                                                                          \
  static void ident_##OP##_##S(int64_t n, void *py) {                                                        \
    T *y = py;                                                                                               \
    for (int64_t i = 0; i < n; i++) y[i] = (T)(IDENT);                                                       \
  }                                                                                                          \
  /* outputs [lo, hi) of the general pattern */                                                              \
  static void general_##OP##_##S(const void *pg, int64_t lo, int64_t hi) {                                   \
    const red_general *g = pg;                                                                               \
    const T *x = g->x;                                                                                       \
    T *y = g->y;                                                                                             \
    int nr = g->nr;                                                                                          \
    int64_t run = g->rshape[nr - 1], rs = g->rstride[nr - 1], idx[MAXD];                                     \
    for (int64_t o = lo; o < hi; o++) {                                                                      \
      int64_t base = 0, r = o;                                                                               \
      for (int d = g->nk - 1; d >= 0; d--) {                                                                 \
        base += (r % g->kshape[d]) * g->kstride[d];                                                          \
        r /= g->kshape[d];                                                                                   \
      }                                                                                                      \
      A acc = (A)(IDENT);                                                                                    \
      for (int d = 0; d < nr; d++) idx[d] = 0;                                                               \
      for (int64_t off = base;;) {                                                                           \
        T v;                                                                                                 \
        if (rs == 1) {                                                                                       \
          v = row_##OP##_##S(x + off, run);                                                                  \
        } else {                                                                                             \
          v = x[off];                                                                                        \
          for (int64_t i = 1; i < run; i++) v = c_##OP##_##S(v, x[off + i * rs]);                            \
        }                                                                                                    \
        acc = ac_##OP##_##S(acc, (A)v);                                                                      \
        int d = nr - 2; /* advance the odometer over the outer reduced dims */                               \
        for (; d >= 0; d--) {                                                                                \
          off += g->rstride[d];                                                                              \
          if (++idx[d] < g->rshape[d]) break;                                                                \
          off -= g->rshape[d] * g->rstride[d];                                                               \
          idx[d] = 0;                                                                                        \
        }                                                                                                    \
        if (d < 0) break;                                                                                    \
      }                                                                                                      \
      y[o] = (T)acc;                                                                                         \
    }                                                                                                        \
  }
FOR_RED(DEF_RED)

#define DT_b    JX_BOOL
#define DT_i32  JX_I32
#define DT_i64  JX_I64
#define DT_u32  JX_U32
#define DT_f32  JX_F32
#define DT_f64  JX_F64
#define DT_i8   JX_I8
#define DT_u8   JX_U8
#define DT_i16  JX_I16
#define DT_u16  JX_U16
#define DT_u64  JX_U64
#define OPE_sum JX_CPU_SUM
#define OPE_max JX_CPU_MAX_R
#define OPE_min JX_CPU_MIN_R
#define RED_ENTRY(OP, S, T, A, COMB, IDENT)                                                                  \
  [OPE_##OP][DT_##S] = {sizeof(T),       rows_##OP##_##S,  chunks_##OP##_##S,                                \
                        cols_##OP##_##S, ident_##OP##_##S, general_##OP##_##S},
static const red_vt red_table[JX_CPU_REDUCE_COUNT][JX_DTYPE_COUNT] = {FOR_RED(RED_ENTRY)};

/* ------------------------------------------------------ the driver */
enum { RED_GRAIN = 32768 }; /* input elements per parallel task, at least */

typedef struct {
  const red_vt *vt;
  const char *x;
  char *y, *part;
  int64_t K1, R, K2; /* [K1,R] rows, or [K1,R,K2] columns */
  int64_t tw, nt;    /* column tasks: width (elements) and count per k1 */
  int64_t rl, nrc;   /* row chunks: rows per chunk and count */
} red_ctx;

static void rows_task(void *p, int64_t lo, int64_t hi) {
  const red_ctx *c = p;
  size_t es = c->vt->es;
  c->vt->rows(c->x + lo * c->R * (int64_t)es, hi - lo, c->R, c->y + lo * (int64_t)es);
}

static void chunk_task(void *p, int64_t lo, int64_t hi) {
  const red_ctx *c = p;
  c->vt->chunks(c->x, c->R, lo, hi, c->part);
}

/* [K,R]: many rows go to the pool whole; a few long rows are each split
 * into their chunks (the same chunks row_*() uses, so the same result). */
static void reduce_rows(const red_vt *vt, const char *x, int64_t K, int64_t R, char *y) {
  red_ctx c = {.vt = vt, .x = x, .y = y, .K1 = K, .R = R};
  if (R <= CHUNK || K >= 2 * jx_cpu_num_threads()) {
    jx_cpu_parallel_for(K, R >= RED_GRAIN ? 1 : RED_GRAIN / R, rows_task, &c);
    return;
  }
  _Alignas(64) char part[MAXCH * sizeof(double)];
  int64_t cl = chunk_len(R), nch = (R + cl - 1) / cl;
  c.part = part;
  for (int64_t k = 0; k < K; k++) {
    c.x = x + k * R * (int64_t)vt->es;
    jx_cpu_parallel_for(nch, 1, chunk_task, &c);
    vt->rows(part, 1, nch, y + k * (int64_t)vt->es);
  }
}

static void col_task(void *p, int64_t lo, int64_t hi) {
  const red_ctx *c = p;
  int64_t es = (int64_t)c->vt->es;
  for (int64_t t = lo; t < hi; t++) {
    int64_t k1 = t / c->nt, j0 = (t % c->nt) * c->tw;
    int64_t w = c->K2 - j0 < c->tw ? c->K2 - j0 : c->tw;
    c->vt->cols(c->x + (k1 * c->R * c->K2 + j0) * es, c->R, c->K2, w, c->y + (k1 * c->K2 + j0) * es);
  }
}

/* task t = ((k1 * nrc) + chunk) * nt + tile: partial rows into c->part */
static void colchunk_task(void *p, int64_t lo, int64_t hi) {
  const red_ctx *c = p;
  int64_t es = (int64_t)c->vt->es;
  for (int64_t t = lo; t < hi; t++) {
    int64_t tile = t % c->nt, ch = (t / c->nt) % c->nrc, k1 = t / (c->nt * c->nrc);
    int64_t j0 = tile * c->tw, w = c->K2 - j0 < c->tw ? c->K2 - j0 : c->tw;
    int64_t r0 = ch * c->rl, rn = c->R - r0 < c->rl ? c->R - r0 : c->rl;
    c->vt->cols(c->x + ((k1 * c->R + r0) * c->K2 + j0) * es, rn, c->K2, w,
                c->part + ((k1 * c->nrc + ch) * c->K2 + j0) * es);
  }
}

/* [K1,R,K2]: tasks over (k1, column tile). When that gives too few tasks
 * for a big input, rows are also cut into chunks whose partial rows are
 * then reduced like any other [nrc,K2] block. Both choices depend on the
 * shape only, so results never depend on the thread count. */
static void reduce_cols(const red_vt *vt, const char *x, int64_t K1, int64_t R, int64_t K2, char *y) {
  int64_t es = (int64_t)vt->es;
  red_ctx c = {.vt = vt, .x = x, .y = y, .K1 = K1, .R = R, .K2 = K2};
  /* narrow rows must stay whole: cols() widens them into super-rows */
  c.tw = 2 * K2 * es <= KT_BYTES ? K2 : TASK_COLS / es;
  c.nt = (K2 + c.tw - 1) / c.tw;
  if (K1 * c.nt < 8 && R * K2 >= 4 * (int64_t)CHUNK) {
    int64_t nrc = R * K2 / (2 * CHUNK);
    if (nrc > 64) nrc = 64;
    if (nrc > R) nrc = R;
    c.rl = (R + nrc - 1) / nrc;
    c.nrc = (R + c.rl - 1) / c.rl;
    struct jx_buffer *hpart;
    c.part = jx_cpu_scratch((size_t)(K1 * c.nrc * K2 * es), &hpart);
    if (c.part) { /* on failure: the unchunked path below (same sums up to rounding) */
      jx_cpu_parallel_for(K1 * c.nrc * c.nt, 1, colchunk_task, &c);
      for (int64_t k1 = 0; k1 < K1; k1++)
        vt->cols(c.part + k1 * c.nrc * K2 * es, c.nrc, K2, K2, y + k1 * K2 * es);
      jx_cpu_scratch_free(hpart);
      return;
    }
  }
  int64_t work = R * (c.tw < K2 ? c.tw : K2);
  jx_cpu_parallel_for(K1 * c.nt, work >= RED_GRAIN ? 1 : RED_GRAIN / work, col_task, &c);
}

static void general_task(void *p, int64_t lo, int64_t hi) {
  const red_general *g = p;
  g->vt->general(g, lo, hi);
}

void jx_cpu_reduce(jx_cpu_redop op, jx_dtype dt, int ndim, const int64_t *shape, const bool *reduce,
                   const void *x, void *y) {
  KCHECK((unsigned)op < JX_CPU_REDUCE_COUNT && (unsigned)dt < JX_DTYPE_COUNT);
  KCHECK(ndim >= 0 && ndim <= MAXD);
  const red_vt *vt = &red_table[op][dt];
  KCHECK(vt->ident != NULL);
  int64_t nout = 1, nred = 1;
  for (int d = 0; d < ndim; d++) *(reduce[d] ? &nred : &nout) *= shape[d];
  if (nout == 0) return;
  if (nred == 0) {
    vt->ident(nout, y);
    return;
  }
  /* drop size-1 dims, merge neighbours with the same flag */
  int64_t s[MAXD];
  bool r[MAXD];
  int nd = 0;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 1) continue;
    if (nd > 0 && r[nd - 1] == reduce[d]) {
      s[nd - 1] *= shape[d];
    } else {
      s[nd] = shape[d];
      r[nd++] = reduce[d];
    }
  }
  if (nd == 0 || (nd == 1 && !r[0])) { /* nothing to reduce */
    memcpy(y, x, (size_t)nout * vt->es);
  } else if (nd == 1) {
    reduce_rows(vt, x, 1, s[0], y);
  } else if (nd == 2 && !r[0]) {
    reduce_rows(vt, x, s[0], s[1], y);
  } else if (nd == 2) {
    reduce_cols(vt, x, 1, s[0], s[1], y);
  } else if (nd == 3 && !r[0]) {
    reduce_cols(vt, x, s[0], s[1], s[2], y);
  } else {
    red_general g = {.vt = vt, .x = x, .y = y};
    int64_t st = 1;
    for (int d = nd - 1; d >= 0; d--) { /* collect kept and reduced dims, outer first */
      int64_t *sh = r[d] ? g.rshape : g.kshape, *sd = r[d] ? g.rstride : g.kstride;
      int *cnt = r[d] ? &g.nr : &g.nk;
      memmove(sh + 1, sh, (size_t)*cnt * sizeof *sh);
      memmove(sd + 1, sd, (size_t)*cnt * sizeof *sd);
      sh[0] = s[d];
      sd[0] = st;
      ++*cnt;
      st *= s[d];
    }
    jx_cpu_parallel_for(nout, nred >= RED_GRAIN ? 1 : RED_GRAIN / nred, general_task, &g);
  }
}

/* ------------------------------------------------------ argmax / argmin */
/* NaN beats everything and nothing beats NaN: the first NaN wins. */
enum { ATILE = 256 };

// clang-format off
#define ARG_DTYPES(X)                                                                      \
  X(b, uint8_t, 0) X(i32, int32_t, 0) X(i64, int64_t, 0) X(u32, uint32_t, 0)               \
  X(f32, float, 1) X(f64, double, 1) X(i8, int8_t, 0) X(u8, uint8_t, 0) X(i16, int16_t, 0) \
  X(u16, uint16_t, 0) X(u64, uint64_t, 0)
// clang-format on

#define ARG_SCAN(S, T, BETTER)                                                                               \
  T best[ATILE];                                                                                             \
  for (int64_t j = 0; j < w; j++) best[j] = x[j * wstep], out[j] = 0;                                        \
  for (int64_t i = 1; i < n; i++) {                                                                          \
    const T *row = x + i * step;                                                                             \
    for (int64_t j = 0; j < w; j++)                                                                          \
      if (BETTER(row[j * wstep], best[j])) best[j] = row[j * wstep], out[j] = i;                             \
  }

#define DEF_ARG(S, T, FLT)                                                                                   \
  static inline bool isnan_##S(T v) { return FLT && v != v; }                                                \
  static inline bool amax_##S(T v, T b) { return v > b || (isnan_##S(v) && !isnan_##S(b)); }                 \
  static inline bool amin_##S(T v, T b) { return v < b || (isnan_##S(v) && !isnan_##S(b)); }                 \
  /* out[j] for j < w <= ATILE: the winner among x[i*step + j*wstep], i < n */                               \
  static void arg_##S(bool is_max, const void *px, int64_t n, int64_t step, int64_t w, int64_t wstep,        \
                      int64_t *out) {                                                                        \
    const T *x = px;                                                                                         \
    if (w == 1 && step == 1) {                                                                               \
      /* A compare-and-update scan is one long dependency chain; instead find            \
       * the extreme with the vectorized reduction, then its first position. */                   \
      T m = is_max ? pw_max_##S(x, n) : pw_min_##S(x, n);                                                    \
      int64_t i = 0;                                                                                         \
      if (isnan_##S(m))                                                                                      \
        while (!isnan_##S(x[i])) i++;                                                                        \
      else                                                                                                   \
        while (x[i] != m) i++;                                                                               \
      out[0] = i;                                                                                            \
      return;                                                                                                \
    }                                                                                                        \
    if (is_max) {                                                                                            \
      ARG_SCAN(S, T, amax_##S)                                                                               \
    } else {                                                                                                 \
      ARG_SCAN(S, T, amin_##S)                                                                               \
    }                                                                                                        \
  }
ARG_DTYPES(DEF_ARG)

typedef void (*arg_fn)(bool is_max, const void *x, int64_t n, int64_t step, int64_t w, int64_t wstep,
                       int64_t *out);
#define ARG_ENTRY(S, T, FLT) [DT_##S] = arg_##S,
static const arg_fn arg_table[JX_DTYPE_COUNT] = {ARG_DTYPES(ARG_ENTRY)};

/* Element (o, i, j) is x[o*ostride + i*step + j*wstep] (i reduced), its
 * answer goes to y[o*W + j]. */
typedef struct {
  arg_fn fn;
  bool is_max, out64;
  const char *x;
  void *y;
  int64_t es, n, W, ostride, step, wstep, nt;
} arg_ctx;

/* task t = (o, tile of ATILE along j) */
static void arg_task(void *p, int64_t lo, int64_t hi) {
  const arg_ctx *c = p;
  int64_t idx[ATILE];
  for (int64_t t = lo; t < hi; t++) {
    int64_t o = t / c->nt, j0 = (t % c->nt) * ATILE;
    int64_t w = c->W - j0 < ATILE ? c->W - j0 : ATILE;
    c->fn(c->is_max, c->x + (o * c->ostride + j0 * c->wstep) * c->es, c->n, c->step, w, c->wstep, idx);
    int64_t at = o * c->W + j0;
    for (int64_t j = 0; j < w; j++) {
      if (c->out64)
        ((int64_t *)c->y)[at + j] = idx[j];
      else
        ((int32_t *)c->y)[at + j] = (int32_t)idx[j];
    }
  }
}

void jx_cpu_argreduce(bool is_max, jx_dtype dt, int ndim, const int64_t *shape, int axis, const void *x,
                      jx_dtype out_dt, void *y) {
  KCHECK((unsigned)dt < JX_DTYPE_COUNT && (out_dt == JX_I32 || out_dt == JX_I64));
  KCHECK(axis >= 0 && axis < ndim && ndim <= MAXD);
  int64_t outer = 1, inner = 1, n = shape[axis];
  for (int d = 0; d < axis; d++) outer *= shape[d];
  for (int d = axis + 1; d < ndim; d++) inner *= shape[d];
  if (outer * inner == 0) return;
  if (n == 0) { /* no answer exists; write 0 rather than leave garbage */
    memset(y, 0, (size_t)(outer * inner) * (out_dt == JX_I64 ? 8 : 4));
    return;
  }
  KCHECK(arg_table[dt] != NULL);
  arg_ctx c = {.fn = arg_table[dt],
               .is_max = is_max,
               .out64 = out_dt == JX_I64,
               .x = x,
               .y = y,
               .es = jx_dtype_size(dt),
               .n = n};
  if (inner > 1) { /* [outer, n, inner]: scan rows, ATILE columns at a time */
    c.W = inner, c.ostride = n * inner, c.step = inner, c.wstep = 1;
  } else if (n < 32 && outer > 1) { /* many short rows: ATILE rows side by side */
    c.W = outer, c.ostride = 0, c.step = 1, c.wstep = n, outer = 1;
  } else { /* long rows, one at a time */
    c.W = 1, c.ostride = n, c.step = 1, c.wstep = 1;
  }
  c.nt = (c.W + ATILE - 1) / ATILE;
  int64_t work = n * (c.W < ATILE ? c.W : ATILE);
  jx_cpu_parallel_for(outer * c.nt, work >= RED_GRAIN ? 1 : RED_GRAIN / work, arg_task, &c);
}
