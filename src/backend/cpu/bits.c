/* Kernels for the bits/special/random/sort primitives (src/prims/bits.c):
 * shifts, xor, rem, fma, erf, erf_inv, Threefry-2x32 and a stable argsort.
 *
 * The elementwise ones are plain loops over n elements in which every
 * operand is either a full array or one scalar (the primitives take equal
 * shapes or a 0-d operand, so no strides are needed). The scalar functions
 * come from scalar_ops.h, the same text the jit pastes into generated code,
 * so eager and compiled results agree bit for bit. Large loops split over
 * the pool. */
#include "backend/cpu/kernels.h"
#include "backend/cpu/scalar_ops.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  GRAIN = 16384,     /* cheap integer ops */
  GRAIN_MATH = 2048, /* libm calls and polynomials */
  GRAIN_FRY = 4096,  /* 20 rounds of add/rotate/xor per element */
};

/* ------------------------------------------------------------ binary */
typedef struct {
  const void *a, *b, *c;
  int64_t sa, sb, sc; /* 0: scalar, 1: full */
  void *out;
} ew_ctx;

#define BIN_LOOP(NAME, FN, T)                                                                                \
  static void NAME(void *ctx, int64_t lo, int64_t hi) {                                                      \
    const ew_ctx *c = ctx;                                                                                   \
    const T *a = c->a, *b = c->b;                                                                            \
    T *o = c->out;                                                                                           \
    if (c->sa && c->sb)                                                                                      \
      for (int64_t i = lo; i < hi; i++) o[i] = FN(a[i], b[i]);                                               \
    else if (c->sa)                                                                                          \
      for (int64_t i = lo; i < hi; i++) o[i] = FN(a[i], b[0]);                                               \
    else if (c->sb)                                                                                          \
      for (int64_t i = lo; i < hi; i++) o[i] = FN(a[0], b[i]);                                               \
    else                                                                                                     \
      for (int64_t i = lo; i < hi; i++) o[i] = FN(a[0], b[0]);                                               \
  }

/* one loop per JX_BITS row of the op list (core/elementwise.def) and
 * dtype of its row, and the table of them */
#define BITS_LOOP(S, T, K, name)        BIN_LOOP(bits_##name##_##S, name##_##S, T)
#define JX_BITS(name, K, dtypes, cheap) JX_FOR_##dtypes(BITS_LOOP, K, name)
#include "core/elementwise.def"
#undef JX_BITS

#define BITS_ENTRY(S, T, K, name)       [JX_CPU_##K][JX_DT_##S] = bits_##name##_##S,
#define JX_BITS(name, K, dtypes, cheap) JX_FOR_##dtypes(BITS_ENTRY, K, name)
static const jx_cpu_range_fn bin_table[JX_CPU_BITS_COUNT][JX_DTYPE_COUNT] = {
#include "core/elementwise.def"
};
#undef JX_BITS
#define JX_BITS(name, K, dtypes, cheap) [JX_CPU_##K] = cheap,
static const bool bits_cheap[JX_CPU_BITS_COUNT] = {
#include "core/elementwise.def"
};
#undef JX_BITS

void jx_cpu_bits_binary(jx_cpu_bitsop op, jx_dtype dt, int64_t n, const void *a, bool a_scalar, const void *b,
                        bool b_scalar, void *out) {
  KCHECK((unsigned)op < JX_CPU_BITS_COUNT && (unsigned)dt < JX_DTYPE_COUNT);
  jx_cpu_range_fn fn = bin_table[op][dt];
  KCHECK(fn);
  ew_ctx c = {.a = a, .b = b, .sa = !a_scalar, .sb = !b_scalar, .out = out};
  jx_cpu_parallel_for(n, bits_cheap[op] ? GRAIN : GRAIN_MATH, fn, &c);
}

/* ---------------------------------------------------------------- fma */
#define FMA_LOOP(S, T)                                                                                       \
  static void fma_loop_##S(void *ctx, int64_t lo, int64_t hi) {                                              \
    const ew_ctx *c = ctx;                                                                                   \
    const T *a = c->a, *b = c->b, *d = c->c;                                                                 \
    T *o = c->out;                                                                                           \
    for (int64_t i = lo; i < hi; i++) o[i] = fma_##S(a[i * c->sa], b[i * c->sb], d[i * c->sc]);              \
  }
#define FMA_DEF(S, T, unused) FMA_LOOP(S, T)
JX_FOR_FLOAT(FMA_DEF, 0)
#define FMA_ENTRY(S, T, unused) [JX_DT_##S] = fma_loop_##S,
static const jx_cpu_range_fn fma_table[JX_DTYPE_COUNT] = {JX_FOR_FLOAT(FMA_ENTRY, 0)};

void jx_cpu_fma(jx_dtype dt, int64_t n, const void *a, bool a_scalar, const void *b, bool b_scalar,
                const void *c, bool c_scalar, void *out) {
  KCHECK((unsigned)dt < JX_DTYPE_COUNT && fma_table[dt]);
  ew_ctx x = {.a = a, .b = b, .c = c, .sa = !a_scalar, .sb = !b_scalar, .sc = !c_scalar, .out = out};
  jx_cpu_parallel_for(n, GRAIN, fma_table[dt], &x);
}

/* ------------------------------------------------------------ special */
#define UN_LOOP(NAME, FN, T)                                                                                 \
  static void NAME(void *ctx, int64_t lo, int64_t hi) {                                                      \
    const ew_ctx *c = ctx;                                                                                   \
    const T *a = c->a;                                                                                       \
    T *o = c->out;                                                                                           \
    for (int64_t i = lo; i < hi; i++) o[i] = FN(a[i]);                                                       \
  }
/* one loop per JX_SPECIAL row (core/elementwise.def) and dtype of its row */
#define SPECIAL_LOOP(S, T, K, name) UN_LOOP(special_##name##_##S, name##_##S, T)
#define JX_SPECIAL(name, K, dtypes) JX_FOR_##dtypes(SPECIAL_LOOP, K, name)
#include "core/elementwise.def"
#undef JX_SPECIAL
#define SPECIAL_ENTRY(S, T, K, name) [JX_CPU_##K][JX_DT_##S] = special_##name##_##S,
#define JX_SPECIAL(name, K, dtypes)  JX_FOR_##dtypes(SPECIAL_ENTRY, K, name)
static const jx_cpu_range_fn special_table[JX_CPU_SPECIAL_COUNT][JX_DTYPE_COUNT] = {
#include "core/elementwise.def"
};
#undef JX_SPECIAL

void jx_cpu_special(jx_cpu_specialop op, jx_dtype dt, int64_t n, const void *x, void *y) {
  KCHECK((unsigned)op < JX_CPU_SPECIAL_COUNT && (unsigned)dt < JX_DTYPE_COUNT);
  jx_cpu_range_fn fn = special_table[op][dt];
  KCHECK(fn);
  ew_ctx c = {.a = x, .out = y};
  jx_cpu_parallel_for(n, GRAIN_MATH, fn, &c);
}

/* ----------------------------------------------------------- threefry */
typedef struct {
  const uint32_t *k0, *k1, *x0, *x1;
  int64_t s0, s1, s2, s3;
  uint32_t *y0, *y1;
} fry_ctx;

static void fry_range(void *ctx, int64_t lo, int64_t hi) {
  const fry_ctx *c = ctx;
  if (!c->s0 && !c->s1 && !c->s2 && c->s3) { /* one key, counters in x1: the common case */
    const uint32_t k0 = c->k0[0], k1 = c->k1[0], x0 = c->x0[0];
    for (int64_t i = lo; i < hi; i++) jx_threefry2x32(k0, k1, x0, c->x1[i], &c->y0[i], &c->y1[i]);
    return;
  }
  for (int64_t i = lo; i < hi; i++)
    jx_threefry2x32(c->k0[i * c->s0], c->k1[i * c->s1], c->x0[i * c->s2], c->x1[i * c->s3], &c->y0[i],
                    &c->y1[i]);
}

void jx_cpu_threefry2x32(int64_t n, const uint32_t *k0, bool k0_scalar, const uint32_t *k1, bool k1_scalar,
                         const uint32_t *x0, bool x0_scalar, const uint32_t *x1, bool x1_scalar, uint32_t *y0,
                         uint32_t *y1) {
  fry_ctx c = {.k0 = k0,
               .k1 = k1,
               .x0 = x0,
               .x1 = x1,
               .s0 = !k0_scalar,
               .s1 = !k1_scalar,
               .s2 = !x0_scalar,
               .s3 = !x1_scalar,
               .y0 = y0,
               .y1 = y1};
  jx_cpu_parallel_for(n, GRAIN_FRY, fry_range, &c);
}

/* ------------------------------------------------------------ argsort */
/* Each element becomes an unsigned key whose order is the sort order
 * (signed ints: flip the sign bit; floats: the IEEE total order with -0
 * canonicalized to +0 and every NaN mapped to the top, as JAX's sort
 * comparator does), 32 bits wide for 32-bit dtypes and 64 for the others.
 * A stable LSD radix sort over the key bytes that vary then carries the
 * indices along; short lines use insertion sort. */
static inline uint32_t f32_key(float v) {
  if (v != v) return UINT32_MAX;
  if (v == 0) v = 0; /* -0 -> +0 */
  uint32_t b;
  memcpy(&b, &v, sizeof b);
  return (b >> 31) ? ~b : b | UINT32_C(0x80000000);
}
static inline uint64_t f64_key(double v) {
  if (v != v) return UINT64_MAX;
  if (v == 0) v = 0;
  uint64_t b;
  memcpy(&b, &v, sizeof b);
  return (b >> 63) ? ~b : b | (UINT64_C(1) << 63);
}
static inline uint64_t sort_key(jx_dtype dt, const void *x, int64_t i) {
  switch (dt) {
    case JX_BOOL: return ((const uint8_t *)x)[i] != 0;
    case JX_I32: return (uint32_t)((const int32_t *)x)[i] ^ UINT32_C(0x80000000);
    case JX_I64: return (uint64_t)((const int64_t *)x)[i] ^ (UINT64_C(1) << 63);
    case JX_U32: return ((const uint32_t *)x)[i];
    case JX_F32: return f32_key(((const float *)x)[i]);
    /* #19: bf16/f16 widen exactly to f32 (same order, NaN last, -0 = +0) */
    case JX_BF16: return f32_key(jx_bf16_to_f32(((const uint16_t *)x)[i]));
    case JX_F16: return f32_key(jx_f16_to_f32(((const uint16_t *)x)[i]));
    case JX_I8: return (uint32_t)(int32_t)((const int8_t *)x)[i] ^ UINT32_C(0x80000000);
    case JX_I16: return (uint32_t)(int32_t)((const int16_t *)x)[i] ^ UINT32_C(0x80000000);
    case JX_U8: return ((const uint8_t *)x)[i];
    case JX_U16: return ((const uint16_t *)x)[i];
    case JX_U64: return ((const uint64_t *)x)[i];
    default: return f64_key(((const double *)x)[i]);
  }
}

typedef struct {
  jx_dtype dt, idx_dt;
  int64_t n, inner;
  const void *x;
  void *out;
  atomic_int failed;
} sort_ctx;

/* sort one line (keys k[0..n), indices ix) with scratch k2/ix2; result in
 * the returned arrays (k or k2) */
#define RADIX_LINE(NAME, KT, IT, NB)                                                                         \
  static IT *NAME(const sort_ctx *c, int64_t base, KT *k, KT *k2, IT *ix, IT *ix2) {                         \
    int64_t n = c->n;                                                                                        \
    KT all_or = 0, all_and = (KT) ~(KT)0;                                                                    \
    for (int64_t j = 0; j < n; j++) {                                                                        \
      k[j] = (KT)sort_key(c->dt, c->x, base + j * c->inner);                                                 \
      ix[j] = (IT)j;                                                                                         \
      all_or |= k[j], all_and &= k[j];                                                                       \
    }                                                                                                        \
    if (n < 32) { /* insertion sort: stable */                                                               \
      for (int64_t j = 1; j < n; j++) {                                                                      \
        KT kv = k[j];                                                                                        \
        IT iv = ix[j];                                                                                       \
        int64_t m = j;                                                                                       \
        for (; m > 0 && k[m - 1] > kv; m--) k[m] = k[m - 1], ix[m] = ix[m - 1];                              \
        k[m] = kv, ix[m] = iv;                                                                               \
      }                                                                                                      \
      return ix;                                                                                             \
    }                                                                                                        \
    KT varies = all_or ^ all_and; /* bits that differ between some keys */                                   \
    static _Thread_local int64_t count[NB][256];                                                             \
    memset(count, 0, sizeof count);                                                                          \
    for (int64_t j = 0; j < n; j++)                                                                          \
      for (int d = 0; d < NB; d++) count[d][(k[j] >> (8 * d)) & 0xFF]++;                                     \
    for (int d = 0; d < NB; d++) {                                                                           \
      if (!((varies >> (8 * d)) & 0xFF)) continue;                                                           \
      int64_t sum = 0;                                                                                       \
      for (int b = 0; b < 256; b++) {                                                                        \
        int64_t t = count[d][b];                                                                             \
        count[d][b] = sum;                                                                                   \
        sum += t;                                                                                            \
      }                                                                                                      \
      for (int64_t j = 0; j < n; j++) {                                                                      \
        int64_t to = count[d][(k[j] >> (8 * d)) & 0xFF]++;                                                   \
        k2[to] = k[j], ix2[to] = ix[j];                                                                      \
      }                                                                                                      \
      KT *tk = k;                                                                                            \
      k = k2, k2 = tk;                                                                                       \
      IT *ti = ix;                                                                                           \
      ix = ix2, ix2 = ti;                                                                                    \
    }                                                                                                        \
    return ix;                                                                                               \
  }
RADIX_LINE(sort32, uint32_t, int32_t, 4)
RADIX_LINE(sort64, uint64_t, int64_t, 8)

static void sort_range(void *ctx, int64_t lo, int64_t hi) {
  sort_ctx *c = ctx;
  bool narrow = c->dt != JX_I64 && c->dt != JX_U64 && c->dt != JX_F64; /* 32-bit keys */
  narrow &= c->n <= INT32_MAX;
  size_t n = (size_t)(c->n ? c->n : 1), ks = narrow ? 4 : 8;
  struct jx_buffer *hk, *hix; /* from the buffer cache (kernels.h: jx_cpu_scratch) */
  void *k = jx_cpu_scratch(n * 2 * ks, &hk), *ix = jx_cpu_scratch(n * 2 * ks, &hix);
  if (!k || !ix) {
    atomic_store(&c->failed, 1);
    lo = hi;
  }
  for (int64_t line = lo; line < hi; line++) {
    int64_t base = line / c->inner * c->n * c->inner + line % c->inner;
    if (narrow) {
      int32_t *r = sort32(c, base, k, (uint32_t *)k + n, ix, (int32_t *)ix + n);
      for (int64_t j = 0; j < c->n; j++) {
        int64_t at = base + j * c->inner;
        if (c->idx_dt == JX_I32)
          ((int32_t *)c->out)[at] = r[j];
        else
          ((int64_t *)c->out)[at] = r[j];
      }
    } else {
      int64_t *r = sort64(c, base, k, (uint64_t *)k + n, ix, (int64_t *)ix + n);
      for (int64_t j = 0; j < c->n; j++) {
        int64_t at = base + j * c->inner;
        if (c->idx_dt == JX_I32)
          ((int32_t *)c->out)[at] = (int32_t)r[j];
        else
          ((int64_t *)c->out)[at] = r[j];
      }
    }
  }
  jx_cpu_scratch_free(hk), jx_cpu_scratch_free(hix);
}

int jx_cpu_argsort(jx_dtype dt, int64_t outer, int64_t n, int64_t inner, const void *x, jx_dtype idx_dt,
                   void *out) {
  KCHECK((unsigned)dt < JX_DTYPE_COUNT && (idx_dt == JX_I32 || idx_dt == JX_I64));
  if (outer * n * inner == 0) return 0;
  sort_ctx c = {.dt = dt, .idx_dt = idx_dt, .n = n, .inner = inner, .x = x, .out = out};
  atomic_init(&c.failed, 0);
  jx_cpu_parallel_for(outer * inner, n >= GRAIN ? 1 : GRAIN / n, sort_range, &c);
  return atomic_load(&c.failed) ? -1 : 0;
}
