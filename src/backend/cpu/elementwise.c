/* Elementwise kernels: unary, binary (broadcasting), select, convert, fill.
 *
 * Each family is one template: a scalar function per (op, dtype) written
 * once per dtype *kind* (bool, signed, unsigned, float), and one loop macro
 * that wraps it. The op list (core/elementwise.def) instantiates the loops
 * at each op's dtypes and fills the dispatch tables from the same rows, so
 * an op cannot be in one and not the other. Combinations the op list does
 * not name (exp of an int, not of a float) are NULL in the tables and trip
 * a check.
 *
 * Broadcasting: the driver drops size-1 dims and merges adjacent dims that
 * every operand walks contiguously, so "same shape", "scalar operand" and
 * "row/column broadcast" all end in a short odometer over outer dims around
 * blocks of rows whose inner strides are 1 or 0 -- cases the loops
 * special-case so that gcc vectorizes them. Integer arithmetic that may
 * overflow is done in the unsigned type (wraps, no UB). */
#include "backend/cpu/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  MAXD = 16,
  GRAIN = 16384,    /* elements per chunk for cheap ops: pool above 32K */
  GRAIN_MATH = 2048 /* for libm calls, which cost ~10x more per element */
};

/* Streamed outputs. An output of 4 MiB or more written while the arrays in
 * use (jx_buffer_live_bytes) outgrow the last-level cache's budget
 * (jx_cpu_stream_output, cache_info.c) is not in the cache when it is read
 * again, so writing it the normal way costs a read
 * of every line first (read-for-ownership): a third of a binary op's
 * traffic. Such outputs are computed into a small L1-resident tile and
 * copied out with jx_stream (scalar_ops.h, shared with the jit's code).
 * The unary and binary loops do this themselves, a STREAM_TILE at a time
 * (the us_/bs_ twins of the ul_/bl_ loops below): small tiles keep loads
 * and streamed stores overlapping (on a 16 MB product, 4 KB tiles ran ~10%
 * slower than storing straight from registers, 256 B tiles as fast), and
 * a kernel call per tile would cost more than that (eager slow_f: 8.2-8.8
 * ms with 4 KB tiles through the generic loop, 6.0-6.8 with the twins and
 * 512 B tiles). Other kernels (select, convert, fill) go through a generic
 * loop of TILE_BYTES, one call per tile (for the binary ops through it,
 * 1 KB tiles had measured ~4% faster than 4 KB, 256 B slower). */
enum { STREAM_TILE = 512, TILE_BYTES = 1024 };

/* dtype suffix -> enum, used by the table initializers */
#define DT_b    JX_DT_b
#define DT_i32  JX_DT_i32
#define DT_i64  JX_DT_i64
#define DT_u32  JX_DT_u32
#define DT_f32  JX_DT_f32
#define DT_f64  JX_DT_f64
#define DT_bf16 JX_DT_bf16
#define DT_f16  JX_DT_f16
#define DT_i8   JX_DT_i8
#define DT_u8   JX_DT_u8
#define DT_i16  JX_DT_i16
#define DT_u16  JX_DT_u16
#define DT_u64  JX_DT_u64

/* ------------------------------------------------------ scalar ops */
/* The per-(op, dtype) scalar functions and conversions live in
 * scalar_ops.h, shared with the jit's generated code. */
#include "backend/cpu/scalar_ops.h"

/* ------------------------------------------------------ op lists */
/* The ops and their dtypes come from the op list (core/elementwise.def),
 * expanded once per thing made from it: each row's dtype class
 * (JX_FOR_<class>, kernels.h) gives the dtypes to instantiate at, and
 * BIN_X / UN_X (redefined before each expansion) what to make per
 * (op, dtype): X(ENUM, name, S, T, OUT) for binary ops, X(ENUM, name, S,
 * T, cheap) for unary ones. */
#define BIN_AT(S, T, K, name)       BIN_X(K, name, S, T, T)
#define CMP_AT(S, T, K, name)       BIN_X(K, name, S, T, uint8_t)
#define UN_AT(S, T, K, name, cheap) UN_X(K, name, S, T, cheap)
/* (include "ew_binary.inc" / "ew_unary.inc": the rows of one kind only) */

/* ------------------------------------------------------ binary loops */
/* A block of n0 rows of n1: o[r*n1 + i] = op(a[r*sa0 + i*sa1], b[r*sb0 + i*sb1]).
 * Each row takes one of four loops picked by the inner strides; the three
 * that broadcasting produces most (1/1, 0/1, 1/0) vectorize. Rows shorter
 * than a vector skip the vector loop's setup: alone (a small eager op) they
 * take one plain loop; many of them are walked column by column, so that
 * [N,3] + [3] runs one long loop per column rather than N tiny ones. */
typedef void (*bin_fn)(int64_t n0, int64_t n1, const void *a, int64_t sa0, int64_t sa1, const void *b,
                       int64_t sb0, int64_t sb1, void *o);
typedef void (*bin0_fn)(const void *a, const void *b, void *o); /* one element */

enum { SHORT_ROW = 8 };

#define DEF_BIN_LOOP(E, name, S, T, OUT)                                                                     \
  static void b0_##name##_##S(const void *a, const void *b, void *o) {                                       \
    *(OUT *)o = name##_##S(*(const T *)a, *(const T *)b);                                                    \
  }                                                                                                          \
  static void bl_##name##_##S(int64_t n0, int64_t n1, const void *pa, int64_t sa0, int64_t sa1,              \
                              const void *pb, int64_t sb0, int64_t sb1, void *po) {                          \
    const T *a = pa, *b = pb;                                                                                \
    OUT *o = po;                                                                                             \
    if (n1 < SHORT_ROW && n0 == 1) {                                                                         \
      for (int64_t i = 0; i < n1; i++) o[i] = name##_##S(a[i * sa1], b[i * sb1]);                            \
      return;                                                                                                \
    }                                                                                                        \
    if (n1 < SHORT_ROW && n0 > n1) {                                                                         \
      for (int64_t i = 0; i < n1; i++)                                                                       \
        for (int64_t r = 0; r < n0; r++)                                                                     \
          o[r * n1 + i] = name##_##S(a[r * sa0 + i * sa1], b[r * sb0 + i * sb1]);                            \
      return;                                                                                                \
    }                                                                                                        \
    for (int64_t r = 0; r < n0; r++, a += sa0, b += sb0, o += n1) {                                          \
      if (sa1 == 1 && sb1 == 1) {                                                                            \
        for (int64_t i = 0; i < n1; i++) o[i] = name##_##S(a[i], b[i]);                                      \
      } else if (sa1 == 0 && sb1 == 1) {                                                                     \
        const T x = a[0];                                                                                    \
        for (int64_t i = 0; i < n1; i++) o[i] = name##_##S(x, b[i]);                                         \
      } else if (sa1 == 1 && sb1 == 0) {                                                                     \
        const T y = b[0];                                                                                    \
        for (int64_t i = 0; i < n1; i++) o[i] = name##_##S(a[i], y);                                         \
      } else {                                                                                               \
        for (int64_t i = 0; i < n1; i++) o[i] = name##_##S(a[i * sa1], b[i * sb1]);                          \
      }                                                                                                      \
    }                                                                                                        \
  }
/* The streamed twin: n elements, each operand contiguous (stride 1) or a
 * scalar (stride 0), not both scalars; the output is streamed. */
#define DEF_BIN_STREAM(E, name, S, T, OUT)                                                                   \
  static void bs_##name##_##S(int64_t n, const void *pa, int64_t sa, const void *pb, int64_t sb, void *po) { \
    const T *a = pa, *b = pb;                                                                                \
    OUT *o = po;                                                                                             \
    enum { TS = STREAM_TILE / sizeof(OUT) };                                                                 \
    _Alignas(64) OUT t[TS];                                                                                  \
    for (int64_t i = 0; i < n; i += TS, a += sa * TS, b += sb * TS) {                                        \
      const int64_t m = n - i < TS ? n - i : TS;                                                             \
      if (sa && sb)                                                                                          \
        for (int64_t k = 0; k < m; k++) t[k] = name##_##S(a[k], b[k]);                                       \
      else if (sb)                                                                                           \
        for (int64_t k = 0; k < m; k++) t[k] = name##_##S(a[0], b[k]);                                       \
      else                                                                                                   \
        for (int64_t k = 0; k < m; k++) t[k] = name##_##S(a[k], b[0]);                                       \
      jx_stream(o + i, t, (size_t)m * sizeof(OUT));                                                          \
    }                                                                                                        \
  }
#define BIN_X(E, name, S, T, OUT) DEF_BIN_LOOP(E, name, S, T, OUT) DEF_BIN_STREAM(E, name, S, T, OUT)
#include "backend/cpu/ew_binary.inc"
#undef BIN_X

#define BIN_X(E, name, S, T, OUT) [JX_CPU_##E][DT_##S] = bl_##name##_##S,
static const bin_fn bin_table[JX_CPU_BINARY_COUNT][JX_DTYPE_COUNT] = {
#include "backend/cpu/ew_binary.inc"
};
#undef BIN_X
#define BIN_X(E, name, S, T, OUT) [JX_CPU_##E][DT_##S] = b0_##name##_##S,
static const bin0_fn bin0_table[JX_CPU_BINARY_COUNT][JX_DTYPE_COUNT] = {
#include "backend/cpu/ew_binary.inc"
};
#undef BIN_X
typedef void (*bin_stream_fn)(int64_t n, const void *a, int64_t sa, const void *b, int64_t sb, void *o);
#define BIN_X(E, name, S, T, OUT) [JX_CPU_##E][DT_##S] = bs_##name##_##S,
static const bin_stream_fn bin_stream_table[JX_CPU_BINARY_COUNT][JX_DTYPE_COUNT] = {
#include "backend/cpu/ew_binary.inc"
};
#undef BIN_X
/* the comparisons (bool results) */
#define JX_COMPARE(name, K, dtypes) [JX_CPU_##K] = true,
static const bool bin_to_bool[JX_CPU_BINARY_COUNT] = {
#include "core/elementwise.def"
};
#undef JX_COMPARE

/* ------------------------------------------------------ unary loops */
typedef void (*un_fn)(int64_t n, const void *x, void *y);

#define DEF_UN_LOOP(E, name, S, T, cheap)                                                                    \
  static void ul_##name##_##S(int64_t n, const void *px, void *py) {                                         \
    const T *x = px;                                                                                         \
    T *y = py;                                                                                               \
    for (int64_t i = 0; i < n; i++) y[i] = name##_##S(x[i]);                                                 \
  }                                                                                                          \
  static void us_##name##_##S(int64_t n, const void *px, void *py) {                                         \
    const T *x = px;                                                                                         \
    T *y = py;                                                                                               \
    enum { TS = STREAM_TILE / sizeof(T) };                                                                   \
    _Alignas(64) T t[TS];                                                                                    \
    for (int64_t i = 0; i < n; i += TS) {                                                                    \
      const int64_t m = n - i < TS ? n - i : TS;                                                             \
      for (int64_t k = 0; k < m; k++) t[k] = name##_##S(x[i + k]);                                           \
      jx_stream(y + i, t, (size_t)m * sizeof(T));                                                            \
    }                                                                                                        \
  }
#define UN_X DEF_UN_LOOP
#include "backend/cpu/ew_unary.inc"
#undef UN_X

#define UN_X(E, name, S, T, cheap) [JX_CPU_##E][DT_##S] = ul_##name##_##S,
static const un_fn un_table[JX_CPU_UNARY_COUNT][JX_DTYPE_COUNT] = {
#include "backend/cpu/ew_unary.inc"
};
#undef UN_X
#define UN_X(E, name, S, T, cheap) [JX_CPU_##E][DT_##S] = us_##name##_##S,
static const un_fn un_stream_table[JX_CPU_UNARY_COUNT][JX_DTYPE_COUNT] = {
#include "backend/cpu/ew_unary.inc"
};
#undef UN_X
/* cheap ops vectorize: bigger chunks per thread */
#define JX_UNARY(name, K, dtypes, cheap) [JX_CPU_##K] = cheap,
static const bool un_cheap[JX_CPU_UNARY_COUNT] = {
#include "core/elementwise.def"
};
#undef JX_UNARY

bool jx_cpu_unary_has(jx_cpu_unop op, jx_dtype dt) {
  return (unsigned)op < JX_CPU_UNARY_COUNT && (unsigned)dt < JX_DTYPE_COUNT && un_table[op][dt];
}
bool jx_cpu_binary_has(jx_cpu_binop op, jx_dtype dt) {
  return (unsigned)op < JX_CPU_BINARY_COUNT && (unsigned)dt < JX_DTYPE_COUNT && bin_table[op][dt];
}

static size_t dtype_size(jx_dtype dt) {
  KCHECK((unsigned)dt < JX_DTYPE_COUNT);
  return jx_dtype_size(dt);
}

/* ------------------------------------------------------ flat (1-D) parallel loops */
typedef struct {
  un_fn fn;
  un_fn sfn; /* NULL or fn's streamed twin (stream only) */
  const char *x;
  char *y;
  size_t xs, ys;
  bool stream;
} flat_ctx;

static void flat_range(void *p, int64_t lo, int64_t hi) {
  const flat_ctx *c = p;
  if (!c->stream || c->sfn) {
    (c->stream ? c->sfn : c->fn)(hi - lo, c->x + lo * (int64_t)c->xs, c->y + lo * (int64_t)c->ys);
    if (c->stream) jx_stream_fence();
    return;
  }
  _Alignas(64) char tile[TILE_BYTES];
  const int64_t t = TILE_BYTES / (int64_t)c->ys;
  for (int64_t i = lo; i < hi; i += t) {
    const int64_t m = hi - i < t ? hi - i : t;
    c->fn(m, c->x + i * (int64_t)c->xs, tile);
    jx_stream(c->y + i * (int64_t)c->ys, tile, (size_t)m * c->ys);
  }
  jx_stream_fence();
}

/* whether an eager kernel's output of `bytes` is streamed. The working set
 * is every array buffer in use, this output included, plus the next op's
 * result beside it when that op reads this one back: eager results pile
 * up in the pool (in eager slow_f, x and x*x alone fill a 32 MiB budget,
 * and the product plain-stored measured no faster than streamed) */
static bool stream_output(int64_t bytes) {
  return jx_cpu_stream_output(bytes, (int64_t)jx_buffer_live_bytes() + bytes);
}

/* sfn: NULL or fn's streamed twin */
static void run_flat(un_fn fn, un_fn sfn, int64_t n, int64_t grain, const void *x, size_t xs, void *y,
                     size_t ys) {
  if (n < 2 * grain) {
    fn(n, x, y);
    return;
  }
  flat_ctx c = {fn, sfn, x, y, xs, ys, stream_output((int64_t)((size_t)n * ys))};
  jx_cpu_parallel_for(n, grain, flat_range, &c);
}

void jx_cpu_unary(jx_cpu_unop op, jx_dtype dt, int64_t n, const void *x, void *y) {
  KCHECK((unsigned)op < JX_CPU_UNARY_COUNT && (unsigned)dt < JX_DTYPE_COUNT);
  un_fn fn = un_table[op][dt];
  KCHECK(fn != NULL);
  size_t es = dtype_size(dt);
  run_flat(fn, un_stream_table[op][dt], n, un_cheap[op] ? GRAIN : GRAIN_MATH, x, es, y, es);
}

/* ------------------------------------------------------ broadcasting driver */
/* Up to three inputs, each with its element size and strides over the
 * output shape; `block` applies the kernel to n0 rows of n1 (the last two
 * collapsed dims), given the per-input strides of both. */
typedef struct nary nary;
struct nary {
  int nin, nd;
  int64_t shape[MAXD];
  int64_t stride[3][MAXD];
  const char *in[3];
  size_t isz[3], osz;
  char *out;
  bool stream;              /* a single row, streamed (stream_output) */
  void (*kernel)(void);     /* the bin_fn or sel_fn, cast back by block() */
  bin_stream_fn bin_stream; /* binary ops: the kernel's streamed twin */
  void (*block)(const nary *c, int64_t n0, int64_t n1, const char *const *in, const int64_t *s0,
                const int64_t *s1, char *out);
};

/* Drop size-1 dims and merge dim d into d-1 when every input steps through
 * them as one dim (stride[d-1] == stride[d] * shape[d]; true for stride 0). */
static void collapse(nary *c, int ndim, const int64_t *shape, const int64_t *const *strides) {
  int nd = 0;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 1) continue;
    bool merge = nd > 0;
    for (int k = 0; k < c->nin && merge; k++) merge = c->stride[k][nd - 1] == strides[k][d] * shape[d];
    if (merge) {
      c->shape[nd - 1] *= shape[d];
      for (int k = 0; k < c->nin; k++) c->stride[k][nd - 1] = strides[k][d];
    } else {
      c->shape[nd] = shape[d];
      for (int k = 0; k < c->nin; k++) c->stride[k][nd] = strides[k][d];
      nd++;
    }
  }
  if (nd == 0) { /* one element */
    c->shape[0] = 1;
    for (int k = 0; k < c->nin; k++) c->stride[k][0] = 1;
    nd = 1;
  }
  if (nd == 1) { /* a 1-row block: give it a dummy outer dim */
    c->shape[1] = c->shape[0];
    c->shape[0] = 1;
    for (int k = 0; k < c->nin; k++) c->stride[k][1] = c->stride[k][0], c->stride[k][0] = 0;
    nd = 2;
  }
  c->nd = nd;
}

/* Rows [lo, hi) of the collapsed array seen as [rows, inner]: runs of rows
 * along dim nd-2 go to the kernel as one block (capped so that short-row
 * blocks stay in L1); an odometer steps over the dims further out. */
static void nary_rows(void *p, int64_t lo, int64_t hi) {
  const nary *c = p;
  int nd = c->nd, mid = nd - 2;
  int64_t inner = c->shape[nd - 1], idx[MAXD], s0[3], s1[3];
  int64_t maxrun = inner >= 4096 ? 1 : 4096 / inner;
  const char *in[3];
  for (int k = 0; k < c->nin; k++) {
    in[k] = c->in[k];
    s0[k] = c->stride[k][mid];
    s1[k] = c->stride[k][nd - 1];
  }
  int64_t r = lo;
  for (int d = mid; d >= 0; d--) {
    idx[d] = r % c->shape[d];
    r /= c->shape[d];
    for (int k = 0; k < c->nin; k++) in[k] += idx[d] * c->stride[k][d] * (int64_t)c->isz[k];
  }
  char *out = c->out + lo * inner * (int64_t)c->osz;
  for (int64_t row = lo; row < hi;) {
    int64_t run = c->shape[mid] - idx[mid];
    if (run > hi - row) run = hi - row;
    if (run > maxrun) run = maxrun;
    c->block(c, run, inner, in, s0, s1, out);
    row += run;
    out += run * inner * (int64_t)c->osz;
    for (int k = 0; k < c->nin; k++) in[k] += run * s0[k] * (int64_t)c->isz[k];
    idx[mid] += run;
    for (int d = mid; d > 0 && idx[d] == c->shape[d]; d--) { /* carry */
      for (int k = 0; k < c->nin; k++) {
        in[k] -= c->shape[d] * c->stride[k][d] * (int64_t)c->isz[k];
        in[k] += c->stride[k][d - 1] * (int64_t)c->isz[k];
      }
      idx[d] = 0;
      idx[d - 1]++;
    }
  }
}

/* A single row (nothing to broadcast across rows), split by elements. */
static void nary_flat(void *p, int64_t lo, int64_t hi) {
  const nary *c = p;
  const char *in[3];
  int64_t s0[3] = {0, 0, 0}, s1[3];
  for (int k = 0; k < c->nin; k++) {
    s1[k] = c->stride[k][1];
    in[k] = c->in[k] + lo * s1[k] * (int64_t)c->isz[k];
  }
  if (!c->stream) {
    c->block(c, 1, hi - lo, in, s0, s1, c->out + lo * (int64_t)c->osz);
    return;
  }
  const bool unit0 = s1[0] == 0 || s1[0] == 1, unit1 = s1[1] == 0 || s1[1] == 1;
  if (c->bin_stream && unit0 && unit1 && (s1[0] || s1[1])) { /* contiguous or scalar operands */
    c->bin_stream(hi - lo, in[0], s1[0], in[1], s1[1], c->out + lo * (int64_t)c->osz);
    jx_stream_fence();
    return;
  }
  _Alignas(64) char tile[TILE_BYTES];
  const int64_t t = TILE_BYTES / (int64_t)c->osz;
  for (int64_t i = lo; i < hi; i += t) {
    const int64_t m = hi - i < t ? hi - i : t;
    c->block(c, 1, m, in, s0, s1, tile);
    jx_stream(c->out + i * (int64_t)c->osz, tile, (size_t)m * c->osz);
    for (int k = 0; k < c->nin; k++) in[k] += m * s1[k] * (int64_t)c->isz[k];
  }
  jx_stream_fence();
}

static void nary_run(nary *c) {
  int64_t inner = c->shape[c->nd - 1], rows = 1;
  for (int d = 0; d < c->nd - 1; d++) rows *= c->shape[d];
  c->stream = rows == 1 && stream_output((int64_t)((size_t)inner * c->osz));
  if (rows == 1)
    jx_cpu_parallel_for(inner, GRAIN, nary_flat, c);
  else
    jx_cpu_parallel_for(rows, inner >= GRAIN ? 1 : GRAIN / inner, nary_rows, c);
}

static void bin_block(const nary *c, int64_t n0, int64_t n1, const char *const *in, const int64_t *s0,
                      const int64_t *s1, char *out) {
  ((bin_fn)c->kernel)(n0, n1, in[0], s0[0], s1[0], in[1], s0[1], s1[1], out);
}

static int64_t shape_size(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  return n;
}

void jx_cpu_binary(jx_cpu_binop op, jx_dtype dt, int ndim, const int64_t *shape, const void *a,
                   const int64_t *astride, const void *b, const int64_t *bstride, void *out) {
  KCHECK((unsigned)op < JX_CPU_BINARY_COUNT && (unsigned)dt < JX_DTYPE_COUNT);
  bin_fn fn = bin_table[op][dt];
  KCHECK(fn != NULL);
  if (ndim == 0) { /* the eager scalar path: one call, no setup */
    bin0_table[op][dt](a, b, out);
    return;
  }
  KCHECK(ndim > 0 && ndim <= MAXD);
  /* Small arrays whose operands are each contiguous or a scalar (the common
   * eager case) skip the collapsing driver. */
  int64_t n = 1;
  bool ac = true, az = true, bc = true, bz = true;
  for (int d = ndim - 1; d >= 0; d--) {
    if (shape[d] != 1) {
      ac &= astride[d] == n, az &= astride[d] == 0;
      bc &= bstride[d] == n, bz &= bstride[d] == 0;
    }
    n *= shape[d];
  }
  if (n == 0) return;
  if (n < 2 * GRAIN && (ac || az) && (bc || bz)) {
    fn(1, n, a, 0, ac, b, 0, bc, out);
    return;
  }
  size_t es = dtype_size(dt);
  nary c = {.nin = 2,
            .in = {a, b},
            .isz = {es, es},
            .out = out,
            .kernel = (void (*)(void))fn,
            .block = bin_block,
            .osz = bin_to_bool[op] ? 1 : es,
            .bin_stream = bin_stream_table[op][dt]};
  const int64_t *strides[2] = {astride, bstride};
  collapse(&c, ndim, shape, strides);
  nary_run(&c);
}

/* ------------------------------------------------------ select */
/* Written per element size: select moves bytes, whatever the dtype (the
 * may_alias types make moving a float as a uint32_t well defined). Same
 * block shape as the binary loops; pred is bool. */
typedef uint8_t __attribute__((may_alias)) m8;
typedef uint16_t __attribute__((may_alias)) m16;
typedef uint32_t __attribute__((may_alias)) m32;
typedef uint64_t __attribute__((may_alias)) m64;
typedef void (*sel_fn)(int64_t n0, int64_t n1, const uint8_t *p, const void *t, const void *f,
                       const int64_t *s0, const int64_t *s1, void *o);

/* Both loads are unconditional so that gcc may vectorize into a blend. */
#define SEL_ROW(T, PI, TI, FI)                                                                               \
  for (int64_t i = 0; i < n1; i++) {                                                                         \
    const T tv = t[TI], fv = f[FI];                                                                          \
    o[i] = p[PI] ? tv : fv;                                                                                  \
  }
#define DEF_SEL(T)                                                                                           \
  static void sel_##T(int64_t n0, int64_t n1, const uint8_t *p, const void *pt, const void *pf,              \
                      const int64_t *s0, const int64_t *s1, void *po) {                                      \
    const T *t = pt, *f = pf;                                                                                \
    T *o = po;                                                                                               \
    int64_t sp = s1[0], st = s1[1], sf = s1[2];                                                              \
    if (n1 < SHORT_ROW && n0 > n1) { /* short rows: down the columns */                                      \
      for (int64_t i = 0; i < n1; i++)                                                                       \
        for (int64_t r = 0; r < n0; r++) {                                                                   \
          const T tv = t[r * s0[1] + i * st], fv = f[r * s0[2] + i * sf];                                    \
          o[r * n1 + i] = p[r * s0[0] + i * sp] ? tv : fv;                                                   \
        }                                                                                                    \
      return;                                                                                                \
    }                                                                                                        \
    for (int64_t r = 0; r < n0; r++, p += s0[0], t += s0[1], f += s0[2], o += n1) {                          \
      if (sp == 0) { /* one predicate for the whole row: a copy */                                           \
        const T *src = p[0] ? t : f;                                                                         \
        int64_t s = p[0] ? st : sf;                                                                          \
        for (int64_t i = 0; i < n1; i++) o[i] = src[i * s];                                                  \
      } else if (sp == 1 && st == 1 && sf == 1) {                                                            \
        SEL_ROW(T, i, i, i)                                                                                  \
      } else if (sp == 1 && st == 1 && sf == 0) { /* where(m, x, 0) */                                       \
        SEL_ROW(T, i, i, 0)                                                                                  \
      } else if (sp == 1 && st == 0 && sf == 1) {                                                            \
        SEL_ROW(T, i, 0, i)                                                                                  \
      } else {                                                                                               \
        SEL_ROW(T, i *sp, i *st, i *sf)                                                                      \
      }                                                                                                      \
    }                                                                                                        \
  }
DEF_SEL(m8)
DEF_SEL(m16)
DEF_SEL(m32)
DEF_SEL(m64)

static void sel_block(const nary *c, int64_t n0, int64_t n1, const char *const *in, const int64_t *s0,
                      const int64_t *s1, char *out) {
  ((sel_fn)c->kernel)(n0, n1, (const uint8_t *)in[0], in[1], in[2], s0, s1, out);
}

void jx_cpu_select(jx_dtype dt, int ndim, const int64_t *shape, const void *pred, const int64_t *pstride,
                   const void *t, const int64_t *tstride, const void *f, const int64_t *fstride, void *out) {
  size_t es = dtype_size(dt);
  if (ndim == 0) {
    memcpy(out, *(const uint8_t *)pred ? t : f, es);
    return;
  }
  KCHECK(ndim > 0 && ndim <= MAXD);
  if (shape_size(ndim, shape) == 0) return;
  KCHECK(es == 1 || es == 2 || es == 4 || es == 8);
  sel_fn fn = es == 1 ? sel_m8 : es == 2 ? sel_m16 : es == 4 ? sel_m32 : sel_m64;
  nary c = {.nin = 3,
            .in = {pred, t, f},
            .isz = {1, es, es},
            .out = out,
            .osz = es,
            .kernel = (void (*)(void))fn,
            .block = sel_block};
  const int64_t *strides[3] = {pstride, tstride, fstride};
  collapse(&c, ndim, shape, strides);
  nary_run(&c);
}

/* ------------------------------------------------------ convert and fill */

/* The dtype pairs come from scalar_ops.h's JX_CVT_FROM (also what the
 * generated code's cvt_<from>_<to> are made from). */
#define DEF_CONV(S1, T1, K1, S2, T2, K2)                                                                     \
  static void cv_##S1##_##S2(int64_t n, const void *px, void *py) {                                          \
    const T1 *x = px;                                                                                        \
    T2 *y = py;                                                                                              \
    for (int64_t i = 0; i < n; i++) y[i] = CX_##K1##_##K2(S1, S2, T2, x[i]);                                 \
  }
JX_CVT_FROM(DEF_CONV)
#define CONV_ENTRY(S1, T1, K1, S2, T2, K2) [DT_##S1][DT_##S2] = cv_##S1##_##S2,
static const un_fn conv_table[JX_DTYPE_COUNT][JX_DTYPE_COUNT] = {JX_CVT_FROM(CONV_ENTRY)};

/* f32 <-> f16 with F16C where the CPU has it (checked at run time; the
 * library itself is built for the baseline x86-64): vcvtps2ph rounds to
 * nearest even and quiets a NaN keeping its top payload bits, vcvtph2ps
 * widens exactly and quiets a NaN, which is what scalar_ops.h's portable
 * jx_f32_to_f16 / jx_f16_to_f32 compute, so the two paths give the same
 * bits (tests/test_dtype.c compares them on every f16 and on 2^20 f32
 * patterns). Nothing like it for bf16: AVX512-BF16's vcvtneps2bf16 flushes
 * subnormal inputs and outputs to zero, and bf16 -> f32 is a shift. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
__attribute__((target("avx,f16c"))) static void f16c_narrow(int64_t n, const void *px, void *py) {
  const float *x = px;
  uint16_t *y = py;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; i++) y[i] = jx_f32_to_f16(x[i]);
}
__attribute__((target("avx,f16c"))) static void f16c_widen(int64_t n, const void *px, void *py) {
  const uint16_t *x = px;
  float *y = py;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
  for (; i < n; i++) y[i] = jx_f16_to_f32(x[i]);
}
/* CPUID leaf 1, ECX bit 29 (clang's __builtin_cpu_supports has no "f16c";
 * the "avx" test above it also covers the OS saving the YMM state) */
static bool cpu_has_f16c(void) {
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1u);
}
static un_fn f16c_fn(jx_dtype from, jx_dtype to) {
  static int known = -1; /* racing first calls store the same answer */
  int has = __atomic_load_n(&known, __ATOMIC_RELAXED);
  if (has < 0)
    __atomic_store_n(&known, has = __builtin_cpu_supports("avx") && cpu_has_f16c(), __ATOMIC_RELAXED);
  if (!has) return NULL;
  return from == JX_F32 && to == JX_F16 ? f16c_narrow : from == JX_F16 && to == JX_F32 ? f16c_widen : NULL;
}
#else
static un_fn f16c_fn(jx_dtype from, jx_dtype to) { return (void)from, (void)to, NULL; }
#endif

void jx_cpu_convert(jx_dtype from, jx_dtype to, int64_t n, const void *x, void *y) {
  KCHECK((unsigned)from < JX_DTYPE_COUNT && (unsigned)to < JX_DTYPE_COUNT);
  un_fn hw = f16c_fn(from, to);
  run_flat(hw ? hw : conv_table[from][to], NULL, n, GRAIN, x, dtype_size(from), y, dtype_size(to));
}

/* fill_S(n, &value, y): run_flat with input stride 0 hands every chunk the value. */
#define DEF_FILL(S, T, unused)                                                                               \
  static void fill_##S(int64_t n, const void *pv, void *py) {                                                \
    const T v = *(const T *)pv;                                                                              \
    T *y = py;                                                                                               \
    for (int64_t i = 0; i < n; i++) y[i] = v;                                                                \
  }
JX_FOR_ALL(DEF_FILL, 0)

/* fill_fns[dt]: the loop over elements of dt; fill_store[dt]: the value,
 * converted from double as convert_element_type does (cvt_f64_<dt>) */
typedef void (*store_fn)(double v, void *p);
#define DEF_STORE(S, T, unused)                                                                              \
  static void store_##S(double v, void *p) { *(T *)p = cvt_f64_##S(v); }
JX_FOR_ALL(DEF_STORE, 0)
#define FILL_ENTRY(S, T, unused) [JX_DT_##S] = {fill_##S, store_##S},
static const struct {
  un_fn fill;
  store_fn store;
} fill_fns[JX_DTYPE_COUNT] = {JX_FOR_ALL(FILL_ENTRY, 0)};

void jx_cpu_fill(jx_dtype dt, int64_t n, double v, void *out) {
  KCHECK((unsigned)dt < JX_DTYPE_COUNT && fill_fns[dt].fill);
  _Alignas(8) unsigned char u[8];
  fill_fns[dt].store(v, u);
  run_flat(fill_fns[dt].fill, NULL, n, GRAIN, u, 0, out, dtype_size(dt));
}
