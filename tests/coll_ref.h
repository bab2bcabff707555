/* Reference semantics of the reducing collectives in #19's dtypes, written
 * here independently of jx's kernels (tests/test_pmap_dtypes.c and
 * tests/test_pmap_mpi.c): elements are held as uint64 bit patterns (an
 * integer's two's complement truncated to its width, a bf16/f16's 16 bits).
 *   integers: sums wrap, max/min compare signed or unsigned by dtype;
 *   bf16/f16: each sum widens both to f32, adds in f32 and rounds to the
 *     16-bit type (nearest, ties to even), member after member; max/min
 *     compare the widened values, a NaN propagates. */
#ifndef JX_TEST_COLL_REF_H
#define JX_TEST_COLL_REF_H

#include <jx.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { REF_SUM, REF_MAX, REF_MIN };

static inline bool ref_is_half(jx_dtype dt) { return dt == JX_BF16 || dt == JX_F16; }
static inline bool ref_is_signed(jx_dtype dt) {
  return dt == JX_I8 || dt == JX_I16 || dt == JX_I32 || dt == JX_I64;
}
static inline int ref_width(jx_dtype dt) { return (int)jx_dtype_size(dt) * 8; }
static inline uint64_t ref_mask(jx_dtype dt) {
  return ref_width(dt) == 64 ? ~0ull : (1ull << ref_width(dt)) - 1;
}
/* the signed value of an integer pattern */
static inline int64_t ref_sval(jx_dtype dt, uint64_t b) {
  int w = ref_width(dt);
  if (w < 64 && (b >> (w - 1) & 1)) b |= ~ref_mask(dt);
  return (int64_t)b;
}

/* a 16-bit float's value (f16 decoded field by field) */
static inline float ref_widen(jx_dtype dt, uint64_t b) {
  if (dt == JX_BF16) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
  }
  int s = (int)(b >> 15 & 1), e = (int)(b >> 10 & 31), m = (int)(b & 1023);
  double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
  return (float)(s ? -v : v);
}

/* v rounded to the 16-bit type (8 or 11 significant bits, ties to even by
 * nearbyint in the default rounding mode), as its bits; normal values and
 * zero only (the tests stay in that range), NaN as the quiet NaN */
static inline uint64_t ref_round(jx_dtype dt, double v) {
  int p = dt == JX_BF16 ? 8 : 11;
  if (v != v) return dt == JX_BF16 ? 0x7fc0 : 0x7e00;
  if (v == 0) return signbit(v) ? 0x8000 : 0;
  int e;
  double m = frexp(fabs(v), &e); /* |v| = m 2^e, m in [0.5, 1) */
  double q = nearbyint(ldexp(m, p));
  double r = ldexp(q, e - p);
  uint64_t s = v < 0 ? 0x8000 : 0;
  if (dt == JX_BF16) {
    float f = (float)r;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return s | (u >> 16 & 0x7fff);
  }
  int x = ilogb(r);
  return s | (uint64_t)(x + 15) << 10 | (uint64_t)(ldexp(r, 10 - x) - 1024);
}

static inline bool ref_nan(jx_dtype dt, uint64_t b) {
  return ref_is_half(dt) && ref_widen(dt, b) != ref_widen(dt, b);
}

/* a op b in dt */
static inline uint64_t ref_op(int op, jx_dtype dt, uint64_t a, uint64_t b) {
  if (ref_is_half(dt)) {
    float fa = ref_widen(dt, a), fb = ref_widen(dt, b);
    if (op == REF_SUM) return ref_round(dt, (double)(fa + fb)); /* the f32 sum, rounded */
    if (fa != fa) return a;
    if (fb != fb) return b;
    return (op == REF_MAX ? fb > fa : fb < fa) ? b : a;
  }
  if (op == REF_SUM) return (a + b) & ref_mask(dt);
  bool gt = ref_is_signed(dt) ? ref_sval(dt, b) > ref_sval(dt, a) : b > a;
  bool lt = ref_is_signed(dt) ? ref_sval(dt, b) < ref_sval(dt, a) : b < a;
  return (op == REF_MAX ? gt : lt) ? b : a;
}

/* equal patterns, or both NaN */
static inline bool ref_same(jx_dtype dt, uint64_t a, uint64_t b) {
  return a == b || (ref_nan(dt, a) && ref_nan(dt, b));
}

/* x's elements (count of them, in dtype dt) as patterns; false when x is
 * an error or has another size or dtype */
static inline bool ref_bits(jx_t x, jx_dtype dt, uint64_t *out, int64_t count) {
  if (!jx_ok(x) || jx_dtype_of(x) != dt || jx_size(x) != count) return false;
  size_t es = jx_dtype_size(dt);
  unsigned char *buf = malloc((size_t)count * es + 1);
  bool ok = buf && !jx_read(x, dt, buf, (size_t)count * es);
  for (int64_t i = 0; ok && i < count; i++) {
    out[i] = 0;
    memcpy(&out[i], buf + (size_t)i * es, es); /* little-endian: the low bytes */
  }
  free(buf);
  return ok;
}

/* an array of dtype dt from patterns */
static inline jx_t ref_array(jx_dtype dt, int ndim, const int64_t *shape, const uint64_t *bits) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  size_t es = jx_dtype_size(dt);
  unsigned char *buf = malloc((size_t)n * es + 1);
  for (int64_t i = 0; i < n; i++) memcpy(buf + (size_t)i * es, &bits[i], es);
  jx_t x = jx_array(dt, ndim, shape, buf);
  free(buf);
  return x;
}

#endif
