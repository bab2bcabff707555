/* Layout kernels: strided copy (transpose, broadcast, slice, reverse),
 * strided scatter (pad, concatenate), gather and scatter-add.
 *
 * Copies move bytes, so they are templated per element size (1, 2, 4, 8
 * bytes, through may_alias types so a float buffer may be moved as
 * uint32_t; any other size goes through memcpy). The dims are first
 * collapsed; then either each inner row is one loop with a fixed stride
 * (memcpy when it is 1), or -- when the strided side is contiguous along
 * some other dim, as in a transpose -- the pair of dims is copied in square
 * tiles through a buffer in L1, so that both sides are walked contiguously. */
#include "backend/cpu/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  MAXD = 16,
  GRAIN = 16384, /* elements per parallel chunk: the pool above 32K */
  TB = 32,       /* blocking of the unbuffered (odd element size) tile loop */
  MIN_TILE = 8,  /* both tiled dims at least this long, else rows are fine */
};

/* Transpose tile edge: 256 bytes of each row of the strided side (long
 * enough runs for the prefetcher), and a buffer of at most 16 KB. */
#define TILE_EDGE(es) ((es) >= 8 ? 32 : 64)

typedef uint8_t __attribute__((may_alias)) m8;
typedef uint16_t __attribute__((may_alias)) m16;
typedef uint32_t __attribute__((may_alias)) m32;
typedef uint64_t __attribute__((may_alias)) m64;

/* Per element size: one row each way, and one tile each way.
 *   get:  c[i] = s[i*st]          put: s[i*st] = c[i]
 *   tile: c[i*cp + j] <-> s[i*sp + j*sl] for i < P, j < Q */
typedef struct {
  void (*get)(size_t es, int64_t n, const char *s, int64_t st, char *c);
  void (*put)(size_t es, int64_t n, char *s, int64_t st, const char *c);
  void (*tile)(size_t es, bool scatter, int64_t P, int64_t Q, char *s, int64_t sp, int64_t sl, char *c,
               int64_t cp);
} mover;

#define TILE_LOOP(STMT)                                                                                      \
  for (int64_t i0 = 0; i0 < P; i0 += TB)                                                                     \
    for (int64_t j0 = 0; j0 < Q; j0 += TB) {                                                                 \
      int64_t i1 = i0 + TB < P ? i0 + TB : P, j1 = j0 + TB < Q ? j0 + TB : Q;                                \
      for (int64_t i = i0; i < i1; i++)                                                                      \
        for (int64_t j = j0; j < j1; j++) STMT;                                                              \
    }

#define DEF_MOVER(T)                                                                                         \
  static void get_##T(size_t es, int64_t n, const char *ps, int64_t st, char *pc) {                          \
    (void)es;                                                                                                \
    const T *s = (const T *)ps;                                                                              \
    T *c = (T *)pc;                                                                                          \
    if (st == 1) {                                                                                           \
      memcpy(c, s, (size_t)n * sizeof(T));                                                                   \
    } else if (st == 0) {                                                                                    \
      const T v = s[0];                                                                                      \
      for (int64_t i = 0; i < n; i++) c[i] = v;                                                              \
    } else if (st == -1) {                                                                                   \
      for (int64_t i = 0; i < n; i++) c[i] = s[-i];                                                          \
    } else {                                                                                                 \
      for (int64_t i = 0; i < n; i++) c[i] = s[i * st];                                                      \
    }                                                                                                        \
  }                                                                                                          \
  static void put_##T(size_t es, int64_t n, char *ps, int64_t st, const char *pc) {                          \
    (void)es;                                                                                                \
    T *s = (T *)ps;                                                                                          \
    const T *c = (const T *)pc;                                                                              \
    if (st == 1)                                                                                             \
      memcpy(s, c, (size_t)n * sizeof(T));                                                                   \
    else                                                                                                     \
      for (int64_t i = 0; i < n; i++) s[i * st] = c[i];                                                      \
  }                                                                                                          \
  /* Through an L1 buffer, so each side is walked along its contiguous    \
   * dim: with a power-of-two stride, touching many lines at once would     \
   * thrash one cache set. P <= TE; s is contiguous along i (sp = +-1). */                                  \
  static void tile_##T(size_t es, bool scatter, int64_t P, int64_t Q, char *ps, int64_t sp, int64_t sl,      \
                       char *pc, int64_t cp) {                                                               \
    (void)es;                                                                                                \
    enum { TE = TILE_EDGE(sizeof(T)) };                                                                      \
    T *s = (T *)ps, *c = (T *)pc, buf[TE * TE];                                                              \
    for (int64_t j0 = 0; j0 < Q; j0 += TE) {                                                                 \
      int64_t q = Q - j0 < TE ? Q - j0 : TE;                                                                 \
      if (scatter) {                                                                                         \
        for (int64_t i = 0; i < P; i++)                                                                      \
          for (int64_t j = 0; j < q; j++) buf[j * TE + i] = c[i * cp + j0 + j];                              \
        for (int64_t j = 0; j < q; j++)                                                                      \
          for (int64_t i = 0; i < P; i++) s[i * sp + (j0 + j) * sl] = buf[j * TE + i];                       \
      } else {                                                                                               \
        for (int64_t j = 0; j < q; j++)                                                                      \
          for (int64_t i = 0; i < P; i++) buf[j * TE + i] = s[i * sp + (j0 + j) * sl];                       \
        for (int64_t i = 0; i < P; i++)                                                                      \
          for (int64_t j = 0; j < q; j++) c[i * cp + j0 + j] = buf[j * TE + i];                              \
      }                                                                                                      \
    }                                                                                                        \
  }
DEF_MOVER(m8)
DEF_MOVER(m16)
DEF_MOVER(m32)
DEF_MOVER(m64)

/* Any other element size: a memcpy per element. */
static void get_any(size_t es, int64_t n, const char *s, int64_t st, char *c) {
  for (int64_t i = 0; i < n; i++) memcpy(c + i * (int64_t)es, s + i * st * (int64_t)es, es);
}
static void put_any(size_t es, int64_t n, char *s, int64_t st, const char *c) {
  for (int64_t i = 0; i < n; i++) memcpy(s + i * st * (int64_t)es, c + i * (int64_t)es, es);
}
static void tile_any(size_t es, bool scatter, int64_t P, int64_t Q, char *s, int64_t sp, int64_t sl, char *c,
                     int64_t cp) {
  int64_t e = (int64_t)es;
  if (scatter) {
    TILE_LOOP(memcpy(s + (i * sp + j * sl) * e, c + (i * cp + j) * e, es))
  } else {
    TILE_LOOP(memcpy(c + (i * cp + j) * e, s + (i * sp + j * sl) * e, es))
  }
}

static const mover *mover_for(size_t es) {
  static const mover m[5] = {{get_any, put_any, tile_any},
                             {get_m8, put_m8, tile_m8},
                             {get_m16, put_m16, tile_m16},
                             {get_m32, put_m32, tile_m32},
                             {get_m64, put_m64, tile_m64}};
  return &m[es == 1 ? 1 : es == 2 ? 2 : es == 4 ? 3 : es == 8 ? 4 : 0];
}

/* ------------------------------------------------------ strided copy / scatter */
typedef struct {
  const mover *mv;
  size_t es;
  bool scatter;
  int nd;
  int64_t shape[MAXD], stride[MAXD], cstride[MAXD]; /* cstride: contiguous side */
  char *s, *c;                                      /* strided side, contiguous side */
  int tp;                                           /* tiled: the dim paired with the last one, else -1 */
} strided_ctx;

/* Position `r` in the odometer over dims [0, nd) except `skip1`/`skip2`:
 * returns the offsets (elements) on both sides. */
static void locate(const strided_ctx *c, int64_t r, int skip1, int skip2, int64_t *so, int64_t *co) {
  *so = *co = 0;
  for (int d = c->nd - 1; d >= 0; d--) {
    if (d == skip1 || d == skip2) continue;
    int64_t i = r % c->shape[d];
    r /= c->shape[d];
    *so += i * c->stride[d];
    *co += i * c->cstride[d];
  }
}

/* rows [lo, hi) of the array seen as [rows, shape[nd-1]]: rows are
 * contiguous on the contiguous side; an odometer walks the strided side */
static void strided_rows(void *p, int64_t lo, int64_t hi) {
  const strided_ctx *c = p;
  int last = c->nd - 1;
  int64_t n = c->shape[last], st = c->stride[last], e = (int64_t)c->es, idx[MAXD], so = 0;
  for (int64_t d = last - 1, r = lo; d >= 0; d--) {
    idx[d] = r % c->shape[d];
    r /= c->shape[d];
    so += idx[d] * c->stride[d];
  }
  char *cp = c->c + lo * n * e;
  for (int64_t r = lo; r < hi; r++, cp += n * e) {
    if (c->scatter)
      c->mv->put(c->es, n, c->s + so * e, st, cp);
    else
      c->mv->get(c->es, n, c->s + so * e, st, cp);
    for (int d = last - 1; d >= 0; d--) {
      so += c->stride[d];
      if (++idx[d] < c->shape[d]) break;
      so -= c->shape[d] * c->stride[d];
      idx[d] = 0;
    }
  }
}

/* tasks [lo, hi): (position over the other dims, block of a tile edge along
 * tp). A task walks the whole last dim, so each run of the strided side it
 * reads is used whole and never needed again: with a power-of-two stride,
 * lines kept for a later task would be evicted anyway. */
static void strided_tiles(void *p, int64_t lo, int64_t hi) {
  const strided_ctx *c = p;
  int last = c->nd - 1, tp = c->tp;
  int64_t te = TILE_EDGE(c->es), nb = (c->shape[tp] + te - 1) / te, e = (int64_t)c->es;
  for (int64_t t = lo; t < hi; t++) {
    int64_t so, co, i0 = (t % nb) * te;
    locate(c, t / nb, tp, last, &so, &co);
    so += i0 * c->stride[tp];
    co += i0 * c->cstride[tp];
    int64_t P = c->shape[tp] - i0 < te ? c->shape[tp] - i0 : te;
    c->mv->tile(c->es, c->scatter, P, c->shape[last], c->s + so * e, c->stride[tp], c->stride[last],
                c->c + co * e, c->cstride[tp]);
  }
}

/* one row (the collapsed array is 1-D), split by elements */
static void strided_flat(void *p, int64_t lo, int64_t hi) {
  const strided_ctx *c = p;
  int64_t st = c->stride[0], e = (int64_t)c->es;
  if (c->scatter)
    c->mv->put(c->es, hi - lo, c->s + lo * st * e, st, c->c + lo * e);
  else
    c->mv->get(c->es, hi - lo, c->s + lo * st * e, st, c->c + lo * e);
}

static void strided(size_t esize, bool scatter, int ndim, const int64_t *shape, char *s,
                    const int64_t *stride, char *cbuf) {
  KCHECK(ndim >= 0 && ndim <= MAXD && esize > 0);
  strided_ctx c = {.mv = mover_for(esize), .es = esize, .scatter = scatter, .s = s, .c = cbuf, .tp = -1};
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  if (n == 0) return;
  /* drop size-1 dims; merge d into the previous dim when the strided side
   * steps through both as one (the contiguous side always does) */
  int nd = 0;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 1) continue;
    if (nd > 0 && c.stride[nd - 1] == stride[d] * shape[d]) {
      c.shape[nd - 1] *= shape[d];
      c.stride[nd - 1] = stride[d];
    } else {
      c.shape[nd] = shape[d];
      c.stride[nd++] = stride[d];
    }
  }
  if (nd == 0) { /* one element */
    memcpy(scatter ? s : cbuf, scatter ? cbuf : s, esize);
    return;
  }
  c.nd = nd;
  for (int64_t d = nd - 1, st = 1; d >= 0; d--) {
    c.cstride[d] = st;
    st *= c.shape[d];
  }
  int last = nd - 1;
  int64_t inner = c.shape[last], st = c.stride[last];
  /* A transpose: the strided side is contiguous along another dim. */
  if (st != 1 && st != -1 && st != 0 && inner >= MIN_TILE) {
    for (int d = last - 1; d >= 0; d--)
      if ((c.stride[d] == 1 || c.stride[d] == -1) && c.shape[d] >= MIN_TILE) {
        c.tp = d;
        break;
      }
  }
  if (c.tp >= 0) {
    int64_t te = TILE_EDGE(esize);
    int64_t tasks = n / inner / c.shape[c.tp] * ((c.shape[c.tp] + te - 1) / te);
    int64_t work = te * inner;
    jx_cpu_parallel_for(tasks, work >= GRAIN ? 1 : GRAIN / work, strided_tiles, &c);
  } else if (nd == 1) {
    jx_cpu_parallel_for(n, GRAIN, strided_flat, &c);
  } else {
    jx_cpu_parallel_for(n / inner, inner >= GRAIN ? 1 : GRAIN / inner, strided_rows, &c);
  }
}

void jx_cpu_strided_copy(size_t esize, int ndim, const int64_t *shape, const void *in, int64_t offset,
                         const int64_t *stride, void *out) {
  /* the strided side is only read when copying */
  strided(esize, false, ndim, shape, (char *)in + offset * (int64_t)esize, stride, out);
}

/* Several positions of `in` may land on one place of `out` only if the
 * caller passes such strides (pad and concatenate never do). */
void jx_cpu_strided_scatter(size_t esize, int ndim, const int64_t *shape, const void *in, void *out,
                            int64_t offset, const int64_t *stride) {
  strided(esize, true, ndim, shape, (char *)out + offset * (int64_t)esize, stride, (char *)in);
}

/* ------------------------------------------------------ gather */
typedef struct {
  size_t es;
  int64_t nx, inner, nidx;
  const char *x;
  const int64_t *idx;
  char *out;
} gather_ctx;

/* rows [lo, hi) of out viewed as [outer*nidx, inner] */
static void gather_rows(void *p, int64_t lo, int64_t hi) {
  const gather_ctx *c = p;
  int64_t row = c->inner * (int64_t)c->es;
  for (int64_t r = lo; r < hi; r++) {
    int64_t o = r / c->nidx, j = r % c->nidx;
    memcpy(c->out + r * row, c->x + (o * c->nx + c->idx[j]) * row, (size_t)row);
  }
}

/* inner == 1: elements [lo, hi) of out viewed as [outer*nidx] */
#define DEF_GATHER1(T)                                                                                       \
  static void gather1_##T(void *p, int64_t lo, int64_t hi) {                                                 \
    const gather_ctx *c = p;                                                                                 \
    const T *x = (const T *)c->x;                                                                            \
    T *y = (T *)c->out;                                                                                      \
    for (int64_t r = lo; r < hi;) { /* runs within one outer index */                                        \
      int64_t o = r / c->nidx, j = r % c->nidx;                                                              \
      int64_t end = (o + 1) * c->nidx < hi ? (o + 1) * c->nidx : hi;                                         \
      const T *xo = x + o * c->nx;                                                                           \
      for (; r < end; r++, j++) y[r] = xo[c->idx[j]];                                                        \
    }                                                                                                        \
  }
DEF_GATHER1(m8)
DEF_GATHER1(m16)
DEF_GATHER1(m32)
DEF_GATHER1(m64)

void jx_cpu_gather(size_t esize, int64_t outer, int64_t nx, int64_t inner, const void *x, int64_t nidx,
                   const int64_t *idx, void *out) {
  gather_ctx c = {.es = esize, .nx = nx, .inner = inner, .nidx = nidx, .x = x, .idx = idx, .out = out};
  int64_t rows = outer * nidx;
  if (rows == 0 || inner == 0) return;
  jx_cpu_range_fn fn = gather_rows;
  if (inner == 1) {
    fn = esize == 1   ? gather1_m8
         : esize == 2 ? gather1_m16
         : esize == 4 ? gather1_m32
         : esize == 8 ? gather1_m64
                      : gather_rows;
  }
  jx_cpu_parallel_for(rows, inner >= GRAIN ? 1 : GRAIN / inner, fn, &c);
}

/* ------------------------------------------------------ scatter-add */
/* Duplicate indices accumulate in index order. Tasks own disjoint
 * (outer, column-tile) parts of `out`, so there are no races and the sum
 * order does not depend on the thread count. */
enum { SA_TILE = 256 };

typedef struct {
  int64_t nout, inner, nidx, nt;
  const void *u;
  const int64_t *idx;
  void *out;
} sadd_ctx;

#define DEF_SADD(S, T, ADD)                                                                                  \
  static void sadd_##S(void *p, int64_t lo, int64_t hi) {                                                    \
    const sadd_ctx *c = p;                                                                                   \
    const T *u = c->u;                                                                                       \
    T *out = c->out;                                                                                         \
    for (int64_t t = lo; t < hi; t++) {                                                                      \
      int64_t o = t / c->nt, i0 = (t % c->nt) * SA_TILE;                                                     \
      int64_t w = c->inner - i0 < SA_TILE ? c->inner - i0 : SA_TILE;                                         \
      for (int64_t j = 0; j < c->nidx; j++) {                                                                \
        T *dst = out + (o * c->nout + c->idx[j]) * c->inner + i0;                                            \
        const T *src = u + (o * c->nidx + j) * c->inner + i0;                                                \
        for (int64_t i = 0; i < w; i++) {                                                                    \
          T a = dst[i], b = src[i];                                                                          \
          dst[i] = ADD;                                                                                      \
        }                                                                                                    \
      }                                                                                                      \
    }                                                                                                        \
  }
/* integers wrap (through unsigned); bool stays 0/1 (or) */
DEF_SADD(b, uint8_t, a | b)
DEF_SADD(i32, int32_t, (int32_t)((uint32_t)a + (uint32_t)b))
DEF_SADD(i64, int64_t, (int64_t)((uint64_t)a + (uint64_t)b))
DEF_SADD(u32, uint32_t, a + b)
DEF_SADD(f32, float, a + b)
DEF_SADD(f64, double, a + b)

void jx_cpu_scatter_add(jx_dtype dt, int64_t outer, int64_t nout, int64_t inner, const void *u, int64_t nidx,
                        const int64_t *idx, void *out) {
  static const jx_cpu_range_fn fns[JX_DTYPE_COUNT] = {
      [JX_BOOL] = sadd_b,  [JX_I32] = sadd_i32, [JX_I64] = sadd_i64,
      [JX_U32] = sadd_u32, [JX_F32] = sadd_f32, [JX_F64] = sadd_f64};
  KCHECK((unsigned)dt < JX_DTYPE_COUNT);
  if (outer == 0 || inner == 0 || nidx == 0) return;
  sadd_ctx c = {.nout = nout,
                .inner = inner,
                .nidx = nidx,
                .nt = (inner + SA_TILE - 1) / SA_TILE,
                .u = u,
                .idx = idx,
                .out = out};
  int64_t work = nidx * (inner < SA_TILE ? inner : SA_TILE);
  jx_cpu_parallel_for(outer * c.nt, work >= GRAIN ? 1 : GRAIN / work, fns[dt], &c);
}
