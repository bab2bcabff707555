/* The CPU kernels against plain scalar references written here: every
 * kernel and dtype, broadcasting and reduction patterns, integer and
 * conversion edge cases, the accuracy of long f32 sums, and the pool. */
#include "backend/cpu/gather.h"
#include "backend/cpu/kernels.h"
#include "check.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

static const jx_dtype ALL_DT[] = {JX_BOOL, JX_I32, JX_I64, JX_U32, JX_F32, JX_F64};
static const char *const DT_NAME[] = {"bool", "i32", "i64", "u32", "f32", "f64"};
static const size_t DT_SIZE[] = {1, 4, 8, 4, 4, 8};
static bool is_float(jx_dtype dt) { return dt == JX_F32 || dt == JX_F64; }

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
static double unif(void) { return (double)(rnd() >> 11) * 0x1p-53; }

/* ------------------------------------------------------ element access */
/* Floats travel as double, integers as int64 (u32 zero-extended). */
static double getf(jx_dtype dt, const void *p, int64_t i) {
  return dt == JX_F32 ? ((const float *)p)[i] : ((const double *)p)[i];
}
static int64_t geti(jx_dtype dt, const void *p, int64_t i) {
  switch (dt) {
    case JX_BOOL: return ((const uint8_t *)p)[i];
    case JX_I32: return ((const int32_t *)p)[i];
    case JX_I64: return ((const int64_t *)p)[i];
    case JX_U32: return ((const uint32_t *)p)[i];
    default: return 0;
  }
}
static void setf(jx_dtype dt, void *p, int64_t i, double v) {
  if (dt == JX_F32)
    ((float *)p)[i] = (float)v;
  else
    ((double *)p)[i] = v;
}
static void seti(jx_dtype dt, void *p, int64_t i, int64_t v) {
  switch (dt) {
    case JX_BOOL: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case JX_I32: ((int32_t *)p)[i] = (int32_t)(uint32_t)(uint64_t)v; break;
    case JX_I64: ((int64_t *)p)[i] = v; break;
    case JX_U32: ((uint32_t *)p)[i] = (uint32_t)(uint64_t)v; break;
    default: break;
  }
}
/* NaN equals NaN; otherwise exact (the bits of -0 aside). */
static bool same(jx_dtype dt, const void *a, int64_t i, const void *b, int64_t j) {
  if (!is_float(dt)) return geti(dt, a, i) == geti(dt, b, j);
  double x = getf(dt, a, i), y = getf(dt, b, j);
  return (x != x && y != y) || x == y;
}

static bool same_f(double x, double y) { return (x != x && y != y) || x == y; }

static int64_t imin(jx_dtype dt) { return dt == JX_I32 ? INT32_MIN : dt == JX_I64 ? INT64_MIN : 0; }
static int64_t imax(jx_dtype dt) {
  return dt == JX_I32 ? INT32_MAX : dt == JX_I64 ? INT64_MAX : dt == JX_U32 ? UINT32_MAX : 1;
}
/* wrap an exact result (held in uint64) to the dtype */
static int64_t wrap(jx_dtype dt, uint64_t v) {
  switch (dt) {
    case JX_BOOL: return (int64_t)(v & 1);
    case JX_I32: return (int32_t)(uint32_t)v;
    case JX_U32: return (uint32_t)v;
    default: return (int64_t)v;
  }
}

/* random data with the dtype's edge values mixed in */
static void *rand_array(jx_dtype dt, int64_t n, bool small) {
  void *p = malloc((size_t)(n ? n : 1) * DT_SIZE[dt]);
  for (int64_t i = 0; i < n; i++) {
    uint64_t r = rnd();
    if (dt == JX_BOOL) {
      seti(dt, p, i, (int64_t)(r & 1));
    } else if (is_float(dt)) {
      static const double special[] = {NAN, INFINITY, -INFINITY, -0.0, 0.0, 1.0, -1.0};
      double v = (r % 16 == 0 && !small) ? special[(r >> 8) % 7] : (unif() - 0.5) * 20;
      setf(dt, p, i, small ? floor(v) : v);
    } else if (small) {
      seti(dt, p, i, (int64_t)(r % 9) - (dt == JX_U32 ? 0 : 4));
    } else {
      int64_t edge[] = {imin(dt), imax(dt), -1, 0, 1, 2, imin(dt) + 1};
      seti(dt, p, i, r % 8 == 0 ? edge[(r >> 8) % 7] : (int64_t)(r >> 20) - (1 << 22));
    }
  }
  return p;
}

/* ------------------------------------------------------ binary reference */
static bool is_cmp(jx_cpu_binop op) { return op >= JX_CPU_EQ; }
/* the dtypes the op list (core/elementwise.def) instantiates the op at:
 * what the primitives accept (bool arithmetic is not: add/sub/mul/div/pow
 * of bools is rejected by abstract_eval and has no kernel) */
static bool binop_valid(jx_cpu_binop op, jx_dtype dt) {
  bool arith =
      op == JX_CPU_ADD || op == JX_CPU_SUB || op == JX_CPU_MUL || op == JX_CPU_DIV || op == JX_CPU_POW;
  bool want = !(is_float(dt) && (op == JX_CPU_AND || op == JX_CPU_OR)) && !(dt == JX_BOOL && arith) &&
              (op != JX_CPU_ATAN2 || is_float(dt));
  CHECKF(jx_cpu_binary_has(op, dt) == want, "binary op %d at dtype %d: kernel %s", (int)op, (int)dt,
         want ? "missing" : "unexpected");
  return want;
}

static void ref_binary(jx_cpu_binop op, jx_dtype dt, const void *a, int64_t ia, const void *b, int64_t ib,
                       void *o, int64_t io) {
  if (is_float(dt)) {
    double x = getf(dt, a, ia), y = getf(dt, b, ib), r = 0;
    bool f32 = dt == JX_F32;
    switch (op) {
      case JX_CPU_ADD: r = f32 ? (double)((float)x + (float)y) : x + y; break;
      case JX_CPU_SUB: r = f32 ? (double)((float)x - (float)y) : x - y; break;
      case JX_CPU_MUL: r = f32 ? (double)((float)x * (float)y) : x * y; break;
      case JX_CPU_DIV: r = f32 ? (double)((float)x / (float)y) : x / y; break;
      case JX_CPU_POW: r = f32 ? (double)powf((float)x, (float)y) : pow(x, y); break;
      case JX_CPU_MAX: r = isnan(x) || isnan(y) ? NAN : x > y ? x : y; break;
      case JX_CPU_MIN: r = isnan(x) || isnan(y) ? NAN : x < y ? x : y; break;
      case JX_CPU_ATAN2: r = f32 ? (double)atan2f((float)x, (float)y) : atan2(x, y); break;
      case JX_CPU_EQ: seti(JX_BOOL, o, io, x == y); return;
      case JX_CPU_NE: seti(JX_BOOL, o, io, x != y); return;
      case JX_CPU_LT: seti(JX_BOOL, o, io, x < y); return;
      case JX_CPU_LE: seti(JX_BOOL, o, io, x <= y); return;
      case JX_CPU_GT: seti(JX_BOOL, o, io, x > y); return;
      case JX_CPU_GE: seti(JX_BOOL, o, io, x >= y); return;
      default: return;
    }
    setf(dt, o, io, r);
    return;
  }
  int64_t x = geti(dt, a, ia), y = geti(dt, b, ib), r = 0;
  uint64_t ux = (uint64_t)x, uy = (uint64_t)y;
  bool sgn = dt == JX_I32 || dt == JX_I64;
  switch (op) {
    case JX_CPU_ADD: r = wrap(dt, ux + uy); break;
    case JX_CPU_SUB: r = wrap(dt, ux - uy); break;
    case JX_CPU_MUL: r = wrap(dt, ux * uy); break;
    case JX_CPU_DIV:
      if (dt == JX_BOOL)
        r = y ? x : 0;
      else if (y == 0)
        r = 0;
      else if (sgn && y == -1)
        r = wrap(dt, 0 - ux);
      else
        r = x / y;
      break;
    case JX_CPU_POW:
      if (dt == JX_BOOL) {
        r = y == 0 ? 1 : x;
      } else if (sgn && y < 0) {
        r = x == 1 ? 1 : x == -1 ? (y % 2 ? -1 : 1) : 0;
      } else {
        uint64_t p = 1;
        for (int64_t k = 0; k < y; k++) p *= ux;
        r = wrap(dt, p);
      }
      break;
    case JX_CPU_MAX: r = x > y ? x : y; break;
    case JX_CPU_MIN: r = x < y ? x : y; break;
    case JX_CPU_AND: r = wrap(dt, ux & uy); break;
    case JX_CPU_OR: r = wrap(dt, ux | uy); break;
    case JX_CPU_EQ: r = x == y; break;
    case JX_CPU_NE: r = x != y; break;
    case JX_CPU_LT: r = x < y; break;
    case JX_CPU_LE: r = x <= y; break;
    case JX_CPU_GT: r = x > y; break;
    case JX_CPU_GE: r = x >= y; break;
    default: break;
  }
  seti(is_cmp(op) ? JX_BOOL : dt, o, io, r);
}

/* offset of flat output index i for an operand with the given strides */
static int64_t offset_of(int ndim, const int64_t *shape, const int64_t *st, int64_t i) {
  int64_t off = 0;
  for (int d = ndim - 1; d >= 0; d--) {
    off += (i % shape[d]) * st[d];
    i /= shape[d];
  }
  return off;
}

/* One broadcasting pattern: a and b are buffers of na/nb elements, indexed
 * from base offsets (so negative strides can walk backwards). */
typedef struct {
  const char *name;
  int ndim;
  int64_t shape[4], as[4], bs[4], na, nb, abase, bbase;
} bpattern;

static int test_binary_pattern(const bpattern *p, jx_cpu_binop op, jx_dtype dt) {
  int64_t n = 1;
  for (int d = 0; d < p->ndim; d++) n *= p->shape[d];
  bool small = op == JX_CPU_POW && !is_float(dt);
  char *a = rand_array(dt, p->na, small), *b = rand_array(dt, p->nb, small);
  if (small && dt != JX_U32) /* a few negative exponents too */
    for (int64_t i = 0; i < p->nb; i += 7) seti(dt, b, i, -(i % 3) - 1);
  jx_dtype odt = is_cmp(op) ? JX_BOOL : dt;
  size_t os = DT_SIZE[odt];
  char *out = malloc((size_t)(n + 1) * os), *ref = malloc((size_t)(n + 1) * os);
  memset(out + n * os, 0x5A, os); /* sentinel past the end */
  const char *ab = a + p->abase * (int64_t)DT_SIZE[dt], *bb = b + p->bbase * (int64_t)DT_SIZE[dt];
  jx_cpu_binary(op, dt, p->ndim, p->shape, ab, p->as, bb, p->bs, out);
  int bad = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t ia = offset_of(p->ndim, p->shape, p->as, i), ib = offset_of(p->ndim, p->shape, p->bs, i);
    ref_binary(op, dt, ab, ia, bb, ib, ref, i);
    if (!same(odt, out, i, ref, i) && bad++ < 3)
      fprintf(stderr, "binary %d %s %s [%lld]: got %g want %g\n", op, DT_NAME[dt], p->name, (long long)i,
              is_float(odt) ? getf(odt, out, i) : (double)geti(odt, out, i),
              is_float(odt) ? getf(odt, ref, i) : (double)geti(odt, ref, i));
  }
  CHECKF(bad == 0, "binary op %d %s %s: %d mismatches", op, DT_NAME[dt], p->name, bad);
  CHECK((unsigned char)out[n * os] == 0x5A);
  free(a), free(b), free(out), free(ref);
  return bad;
}

static void test_binary(void) {
  const bpattern pats[] = {
      {"0-d", 0, {0}, {0}, {0}, 1, 1, 0, 0},
      {"n=1", 1, {1}, {1}, {1}, 1, 1, 0, 0},
      {"n=3", 1, {3}, {1}, {1}, 3, 3, 0, 0},
      {"n=17", 1, {17}, {1}, {1}, 17, 17, 0, 0},
      {"scalar a", 2, {5, 7}, {0, 0}, {7, 1}, 1, 35, 0, 0},
      {"scalar b", 2, {5, 7}, {7, 1}, {0, 0}, 35, 1, 0, 0},
      {"both scalar", 2, {3, 5}, {0, 0}, {0, 0}, 1, 1, 0, 0},
      {"row", 2, {4, 33}, {33, 1}, {0, 1}, 132, 33, 0, 0},
      {"column", 2, {33, 4}, {4, 1}, {1, 0}, 132, 33, 0, 0},
      {"middle", 3, {3, 5, 7}, {35, 7, 1}, {7, 0, 1}, 105, 21, 0, 0},
      {"outer", 3, {3, 5, 7}, {0, 7, 1}, {35, 7, 1}, 35, 105, 0, 0},
      {"size-1 dims", 4, {2, 1, 3, 1}, {3, 9, 1, 5}, {0, 0, 1, 0}, 6, 3, 0, 0},
      {"transposed a", 2, {4, 3}, {1, 4}, {3, 1}, 12, 12, 0, 0},
      {"reversed b", 1, {19}, {1}, {-1}, 19, 19, 0, 18},
      {"size 0", 2, {3, 0}, {0, 1}, {0, 1}, 1, 1, 0, 0},
      {"rows x cols", 2, {300, 257}, {1, 0}, {0, 1}, 300, 257, 0, 0},
      {"short rows", 2, {20000, 3}, {3, 1}, {0, 1}, 60000, 3, 0, 0},
      {"4-d mixed", 4, {6, 40, 3, 67}, {8040, 201, 67, 1}, {0, 67, 0, 1}, 48240, 2680, 0, 0},
  };
  for (unsigned p = 0; p < sizeof pats / sizeof *pats; p++)
    for (int op = 0; op < JX_CPU_BINARY_COUNT; op++)
      for (int t = 0; t < 6; t++)
        if (binop_valid(op, ALL_DT[t])) test_binary_pattern(&pats[p], op, ALL_DT[t]);
  /* long vectors (tails, the pool) for a few ops */
  /* (outputs of 4 MiB and more are streamed out tile by tile: f32 here) */
  bpattern big = {"n=1100003", 1, {1100003}, {1}, {1}, 1100003, 1100003, 0, 0};
  bpattern bigs = {"n=1100003 scalar b", 1, {1100003}, {1}, {0}, 1100003, 1, 0, 0};
  bpattern bigc = {"[1000,1003] column", 2, {1000, 1003}, {1003, 1}, {1, 0}, 1003000, 1000, 0, 0};
  const jx_cpu_binop bops[] = {JX_CPU_ADD, JX_CPU_MAX, JX_CPU_LT, JX_CPU_DIV};
  for (int k = 0; k < 4; k++) {
    test_binary_pattern(&big, bops[k], JX_F32);
    test_binary_pattern(&bigs, bops[k], JX_I32);
    test_binary_pattern(&bigc, bops[k], JX_F64);
  }
  bpattern bigb = {
      "n=4194319 bool out", 1, {4194319}, {1}, {0}, 4194319, 1, 0, 0}; /* a streamed bool output */
  test_binary_pattern(&bigb, JX_CPU_LT, JX_F32);
  test_binary_pattern(&bigs, JX_CPU_MUL, JX_F32);
  /* streamed with the scalar on the left (sub and div: operand order shows) */
  bpattern biga = {"n=1100003 scalar a", 1, {1100003}, {0}, {1}, 1, 1100003, 0, 0};
  test_binary_pattern(&biga, JX_CPU_SUB, JX_F32);
  test_binary_pattern(&biga, JX_CPU_DIV, JX_F64);
  test_binary_pattern(&biga, JX_CPU_GE, JX_I32);

  /* integer edge cases spelled out */
  int32_t a32[] = {INT32_MIN, INT32_MIN, 7, -7, 7, INT32_MAX, 5};
  int32_t b32[] = {-1, 0, 0, 2, -2, 1, 3};
  int32_t o32[7];
  int64_t sh = 7, one = 1;
  jx_cpu_binary(JX_CPU_DIV, JX_I32, 1, &sh, a32, &one, b32, &one, o32);
  CHECK(o32[0] == INT32_MIN && o32[1] == 0 && o32[2] == 0 && o32[3] == -3 && o32[4] == -3);
  jx_cpu_binary(JX_CPU_ADD, JX_I32, 1, &sh, a32, &one, b32, &one, o32);
  CHECK(o32[0] == INT32_MAX && o32[5] == INT32_MIN);
  jx_cpu_binary(JX_CPU_POW, JX_I32, 1, &sh, a32, &one, b32, &one, o32);
  CHECK(o32[1] == 1 && o32[2] == 1 && o32[6] == 125 && o32[4] == 0);
  int64_t a64 = INT64_MIN, b64 = -1, o64;
  jx_cpu_binary(JX_CPU_DIV, JX_I64, 0, NULL, &a64, NULL, &b64, NULL, &o64);
  CHECK(o64 == INT64_MIN);
  jx_cpu_binary(JX_CPU_MUL, JX_I64, 0, NULL, &a64, NULL, &b64, NULL, &o64);
  CHECK(o64 == INT64_MIN);
  float fa = NAN, fb = 1, fo;
  jx_cpu_binary(JX_CPU_MAX, JX_F32, 0, NULL, &fb, NULL, &fa, NULL, &fo);
  CHECK(isnan(fo));
  jx_cpu_binary(JX_CPU_MIN, JX_F32, 0, NULL, &fa, NULL, &fb, NULL, &fo);
  CHECK(isnan(fo));
  fa = 1, fb = 0;
  jx_cpu_binary(JX_CPU_DIV, JX_F32, 0, NULL, &fa, NULL, &fb, NULL, &fo);
  CHECK(isinf(fo) && fo > 0);
}

/* ------------------------------------------------------ unary */
static bool unop_valid(jx_cpu_unop op, jx_dtype dt) {
  if (dt == JX_BOOL) return op == JX_CPU_NOT;
  if (is_float(dt)) return op != JX_CPU_NOT;
  return op == JX_CPU_NEG || op == JX_CPU_ABS || op == JX_CPU_SIGN || op == JX_CPU_NOT;
}

static double ref_unary_f(jx_cpu_unop op, double x, bool f32) {
#define F1(ff, fd) (f32 ? (double)ff((float)x) : fd(x))
  switch (op) {
    case JX_CPU_NEG: return -x;
    case JX_CPU_ABS: return fabs(x);
    case JX_CPU_SIGN: return isnan(x) ? x : x > 0 ? 1 : x < 0 ? -1 : x;
    case JX_CPU_FLOOR: return floor(x);
    case JX_CPU_EXP: return F1(expf, exp);
    case JX_CPU_LOG: return F1(logf, log);
    case JX_CPU_LOG1P: return F1(log1pf, log1p);
    case JX_CPU_EXPM1: return F1(expm1f, expm1);
    case JX_CPU_SQRT: return F1(sqrtf, sqrt);
    case JX_CPU_RSQRT: return f32 ? (double)(1.0f / sqrtf((float)x)) : 1.0 / sqrt(x);
    case JX_CPU_TANH: return F1(tanhf, tanh);
    case JX_CPU_SIN: return F1(sinf, sin);
    case JX_CPU_COS: return F1(cosf, cos);
    case JX_CPU_LOGISTIC: return 1.0 / (1.0 + exp(-x)); /* checked with a tolerance */
    case JX_CPU_TAN: return F1(tanf, tan);
    case JX_CPU_ASIN: return F1(asinf, asin);
    case JX_CPU_ACOS: return F1(acosf, acos);
    case JX_CPU_ATAN: return F1(atanf, atan);
    case JX_CPU_SINH: return F1(sinhf, sinh);
    case JX_CPU_COSH: return F1(coshf, cosh);
    case JX_CPU_ASINH: return F1(asinhf, asinh);
    case JX_CPU_ACOSH: return F1(acoshf, acosh);
    case JX_CPU_ATANH: return F1(atanhf, atanh);
    case JX_CPU_EXP2: return F1(exp2f, exp2);
    case JX_CPU_CEIL: return ceil(x);
    case JX_CPU_ROUND: return nearbyint(x); /* ties to even */
    default: return 0;
  }
#undef F1
}

static void test_unary(void) {
  /* the last size: a streamed output for f32 and f64, checked for a few ops */
  const int64_t sizes[] = {1, 3, 17, 100003, 1100003};
  for (int op = 0; op < JX_CPU_UNARY_COUNT; op++)
    for (int t = 0; t < 6; t++) {
      jx_dtype dt = ALL_DT[t];
      if (!unop_valid(op, dt)) continue;
      for (int s = 0; s < 5; s++) {
        int64_t n = sizes[s];
        if (s == 4 && op != JX_CPU_NEG && op != JX_CPU_EXP && op != JX_CPU_TANH) continue;
        void *x = rand_array(dt, n, false), *y = malloc((size_t)n * DT_SIZE[dt]);
        jx_cpu_unary(op, dt, n, x, y);
        int bad = 0;
        for (int64_t i = 0; i < n; i++) {
          bool ok;
          if (is_float(dt)) {
            double v = getf(dt, x, i), got = getf(dt, y, i), want = ref_unary_f(op, v, dt == JX_F32);
            if (op == JX_CPU_LOGISTIC)
              ok = check_close(got, want, dt == JX_F32 ? 1e-6 : 1e-14, 1e-300);
            else if (op == JX_CPU_TANH && dt == JX_F32) /* XLA's rational tanh: a few ulp of libm's */
              ok = check_close(got, want, 5e-7, 1e-30);
            else
              ok = (got != got && want != want) || got == want;
          } else {
            int64_t v = geti(dt, x, i), want;
            uint64_t u = (uint64_t)v;
            switch (op) {
              case JX_CPU_NEG: want = wrap(dt, 0 - u); break;
              case JX_CPU_ABS: want = dt == JX_U32 ? v : v < 0 ? wrap(dt, 0 - u) : v; break;
              case JX_CPU_SIGN: want = (v > 0) - (v < 0); break;
              default: want = dt == JX_BOOL ? !v : wrap(dt, ~u); break;
            }
            ok = geti(dt, y, i) == want;
          }
          if (!ok && bad++ < 3)
            fprintf(stderr, "unary %d %s [%lld] mismatch\n", op, DT_NAME[dt], (long long)i);
        }
        CHECKF(bad == 0, "unary op %d %s n=%lld", op, DT_NAME[dt], (long long)n);
        free(x), free(y);
      }
    }
  /* logistic must not overflow at the extremes */
  float lx[] = {-1000, -90, 0, 90, 1000}, ly[5];
  jx_cpu_unary(JX_CPU_LOGISTIC, JX_F32, 5, lx, ly);
  CHECK(ly[0] == 0 && ly[1] >= 0 && ly[1] < 1e-30f && ly[2] == 0.5f && ly[3] == 1 && ly[4] == 1);
  double sx[] = {NAN, -0.0, 3}, sy[3];
  jx_cpu_unary(JX_CPU_SIGN, JX_F64, 3, sx, sy);
  CHECK(isnan(sy[0]) && sy[1] == 0 && signbit(sy[1]) && sy[2] == 1);
  uint32_t ux[] = {0, 5}, uy[2];
  jx_cpu_unary(JX_CPU_SIGN, JX_U32, 2, ux, uy);
  CHECK(uy[0] == 0 && uy[1] == 1);
  int32_t ix = INT32_MIN, iy;
  jx_cpu_unary(JX_CPU_ABS, JX_I32, 1, &ix, &iy);
  CHECK(iy == INT32_MIN);
}

/* ------------------------------------------------------ select */
static void test_select(void) {
  struct {
    const char *name;
    int ndim;
    int64_t shape[3], ps[3], ts[3], fs[3];
  } pats[] = {
      {"0-d", 0, {0}, {0}, {0}, {0}},
      {"contiguous", 1, {1000003}, {1}, {1}, {1}},
      {"scalar pred", 2, {7, 9}, {0, 0}, {9, 1}, {9, 1}},
      {"scalar f", 2, {7, 9}, {9, 1}, {9, 1}, {0, 0}},
      {"scalar t", 2, {7, 9}, {9, 1}, {0, 0}, {9, 1}},
      {"column pred", 3, {4, 5, 6}, {5, 1, 0}, {30, 6, 1}, {0, 6, 1}},
      {"big rows", 2, {400, 301}, {1, 0}, {301, 1}, {0, 1}},
  };
  for (unsigned p = 0; p < sizeof pats / sizeof *pats; p++)
    for (int t = 0; t < 6; t++) {
      jx_dtype dt = ALL_DT[t];
      int nd = pats[p].ndim;
      const int64_t *sh = pats[p].shape;
      int64_t n = 1, np = 1, nt = 1, nf = 1;
      for (int d = 0; d < nd; d++) {
        n *= sh[d];
        np += (sh[d] - 1) * pats[p].ps[d];
        nt += (sh[d] - 1) * pats[p].ts[d];
        nf += (sh[d] - 1) * pats[p].fs[d];
      }
      uint8_t *pr = rand_array(JX_BOOL, np, false);
      void *tv = rand_array(dt, nt, false), *fv = rand_array(dt, nf, false);
      char *out = malloc((size_t)n * DT_SIZE[dt]);
      jx_cpu_select(dt, nd, sh, pr, pats[p].ps, tv, pats[p].ts, fv, pats[p].fs, out);
      int bad = 0;
      for (int64_t i = 0; i < n; i++) {
        int64_t ip = offset_of(nd, sh, pats[p].ps, i);
        const void *src = pr[ip] ? tv : fv;
        int64_t is = offset_of(nd, sh, pr[ip] ? pats[p].ts : pats[p].fs, i);
        bad += memcmp(out + i * (int64_t)DT_SIZE[dt], (const char *)src + is * (int64_t)DT_SIZE[dt],
                      DT_SIZE[dt]) != 0;
      }
      CHECKF(bad == 0, "select %s %s: %d mismatches", DT_NAME[dt], pats[p].name, bad);
      free(pr), free(tv), free(fv), free(out);
    }
}

/* ------------------------------------------------------ convert and fill */
/* float -> int reference: truncate, NaN -> 0, saturate */
static int64_t ref_f2i(double v, jx_dtype to) {
  if (isnan(v)) return 0;
  double t = trunc(v);
  if (to == JX_I64) return t >= 0x1p63 ? INT64_MAX : t < -0x1p63 ? INT64_MIN : (int64_t)t;
  if (t > (double)imax(to)) return imax(to);
  if (t < (double)imin(to)) return imin(to);
  return (int64_t)t;
}

/* the scatter's owned-position selection: the AVX-512 compress (where the
 * CPU has it) against the scalar loop, at every length's tail, offsets
 * dropped (-1), at the range's edges and outside it */
static void test_select_owned(void) {
  enum { NMAX = 67 };
  int64_t xoff[NMAX];
  int32_t a[NMAX], b[NMAX];
  uint32_t s = 7;
  int bad = 0;
  for (int n = 0; n <= NMAX; n++)
    for (int r = 0; r < 8; r++) {
      for (int i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        xoff[i] = (int64_t)(s >> 20) % 120 - 10; /* -10..109: some dropped, some outside */
      }
      const int64_t lo = r * 13;
      const uint64_t span = (uint64_t)(r + 1) * 9;
      int ma = jx_cpu_select_owned(xoff, n, lo, span, a, true),
          mb = jx_cpu_select_owned(xoff, n, lo, span, b, false);
      int want = 0;
      for (int i = 0; i < n; i++) want += xoff[i] >= lo && (uint64_t)(xoff[i] - lo) < span;
      bad += ma != mb || mb != want || memcmp(a, b, sizeof(int32_t) * (size_t)(ma < mb ? ma : mb)) != 0;
      for (int k = 0; k < mb; k++)
        bad += xoff[b[k]] < lo || (uint64_t)(xoff[b[k]] - lo) >= span || (k && b[k] <= b[k - 1]);
    }
  CHECKF(bad == 0, "owned-position selection: %d mismatches (vector vs scalar vs the definition)", bad);
}

static void test_convert_fill(void) {
  const double fvals[] = {NAN,           INFINITY,      -INFINITY,
                          0.0,           -0.0,          0.5,
                          -0.5,          1.0,           -1.0,
                          2.5,           -2.5,          1e10,
                          -1e10,         2147483647.0,  2147483648.0,
                          -2147483648.0, -2147483649.0, 4294967295.0,
                          4294967296.0,  0x1p63,        -0x1p63,
                          1e30,          -1e30,         16777217.0,
                          3e9,           -3e9,          9007199254740993.0,
                          2147483520.0,  1e-30};
  const int64_t ivals[] = {0,
                           1,
                           -1,
                           2,
                           INT32_MIN,
                           INT32_MAX,
                           (int64_t)INT32_MAX + 1,
                           UINT32_MAX,
                           (int64_t)UINT32_MAX + 1,
                           INT64_MIN,
                           INT64_MAX,
                           16777217,
                           -123456789};
  enum { NF = sizeof fvals / sizeof *fvals, NI = sizeof ivals / sizeof *ivals };
  for (int a = 0; a < 6; a++)
    for (int b = 0; b < 6; b++) {
      jx_dtype from = ALL_DT[a], to = ALL_DT[b];
      int n = is_float(from) ? NF : NI;
      char x[NF * 8], y[NF * 8];
      for (int i = 0; i < n; i++) {
        if (is_float(from))
          setf(from, x, i, fvals[i]);
        else
          seti(from, x, i, from == JX_BOOL ? ivals[i] & 1 : ivals[i]);
      }
      jx_cpu_convert(from, to, n, x, y);
      int bad = 0;
      for (int i = 0; i < n; i++) {
        bool ok;
        if (is_float(from)) {
          double v = getf(from, x, i); /* after rounding to the source dtype */
          if (to == JX_BOOL)
            ok = geti(to, y, i) == (v != 0);
          else if (is_float(to))
            ok = same_f(getf(to, y, i), to == JX_F32 ? (float)v : v);
          else
            ok = geti(to, y, i) == ref_f2i(v, to);
        } else {
          int64_t v = geti(from, x, i);
          if (to == JX_BOOL)
            ok = geti(to, y, i) == (v != 0);
          else if (to == JX_F32)
            ok = getf(to, y, i) == (float)v;
          else if (to == JX_F64)
            ok = getf(to, y, i) == (double)v;
          else
            ok = geti(to, y, i) == wrap(to, (uint64_t)v);
        }
        if (!ok && bad++ < 3) fprintf(stderr, "convert %s->%s [%d]\n", DT_NAME[from], DT_NAME[to], i);
      }
      CHECKF(bad == 0, "convert %s -> %s", DT_NAME[from], DT_NAME[to]);
    }
  /* a long conversion (the pool, vector tails) */
  int64_t n = 100003;
  float *xf = rand_array(JX_F32, n, false);
  int32_t *yi = malloc((size_t)n * 4);
  jx_cpu_convert(JX_F32, JX_I32, n, xf, yi);
  int bad = 0;
  for (int64_t i = 0; i < n; i++) bad += yi[i] != ref_f2i(xf[i], JX_I32);
  CHECK(bad == 0);
  free(xf), free(yi);

  /* fill */
  const double fill_vals[] = {2.5, -1.0, NAN, 1e20, -1e20, 0.0};
  for (int t = 0; t < 6; t++)
    for (int k = 0; k < 6; k++) {
      jx_dtype dt = ALL_DT[t];
      int64_t m = k == 0 ? 100003 : 37;
      char *y = malloc((size_t)(m + 1) * DT_SIZE[dt]);
      memset(y + m * DT_SIZE[dt], 0x5A, DT_SIZE[dt]);
      double v = fill_vals[k];
      jx_cpu_fill(dt, m, v, y);
      int badf = 0;
      for (int64_t i = 0; i < m; i++) {
        if (dt == JX_BOOL)
          badf += geti(dt, y, i) != (v != 0);
        else if (is_float(dt))
          badf += !same_f(getf(dt, y, i), dt == JX_F32 ? (float)v : v);
        else
          badf += geti(dt, y, i) != ref_f2i(v, dt);
      }
      CHECKF(badf == 0 && (unsigned char)y[m * DT_SIZE[dt]] == 0x5A, "fill %s %g", DT_NAME[dt], v);
      free(y);
    }
  /* n = 0 touches nothing: a NULL destination would fault, and a guard
     byte just before a real one must survive */
  jx_cpu_fill(JX_F32, 0, 1.0, NULL);
  unsigned char guard[8] = {0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A};
  jx_cpu_fill(JX_F64, 0, 7.0, guard);
  CHECK(guard[0] == 0x5A && guard[7] == 0x5A);
}

/* ------------------------------------------------------ reductions */
/* reference: per output, walk the reduced indices; float sums in long double */
static void ref_reduce(jx_cpu_redop op, jx_dtype dt, int nd, const int64_t *sh, const bool *rd, const void *x,
                       void *y) {
  int64_t n = 1, nout = 1;
  for (int d = 0; d < nd; d++) {
    n *= sh[d];
    if (!rd[d]) nout *= sh[d];
  }
  long double *fs = calloc((size_t)nout + 1, sizeof *fs);
  uint64_t *is = calloc((size_t)nout + 1, sizeof *is);
  bool *seen = calloc((size_t)nout + 1, 1);
  for (int64_t i = 0; i < n; i++) {
    int64_t o = 0, r = i, mul = 1;
    for (int d = nd - 1; d >= 0; d--) {
      int64_t id = r % sh[d];
      r /= sh[d];
      if (!rd[d]) o += id * mul, mul *= sh[d];
    }
    if (is_float(dt)) {
      double v = getf(dt, x, i);
      if (op == JX_CPU_SUM)
        fs[o] += v;
      else if (!seen[o] || isnan(v) ||
               (!isnan((double)fs[o]) && (op == JX_CPU_MAX_R ? v > fs[o] : v < fs[o])))
        fs[o] = isnan((double)fs[o]) && seen[o] ? fs[o] : v;
    } else {
      int64_t v = geti(dt, x, i);
      if (op == JX_CPU_SUM)
        is[o] += (uint64_t)v;
      else if (!seen[o] || (op == JX_CPU_MAX_R ? v > (int64_t)is[o] : v < (int64_t)is[o]))
        is[o] = (uint64_t)v;
    }
    seen[o] = true;
  }
  for (int64_t o = 0; o < nout; o++) {
    if (is_float(dt)) {
      double v = !seen[o] && op != JX_CPU_SUM ? (op == JX_CPU_MAX_R ? -INFINITY : INFINITY) : (double)fs[o];
      setf(dt, y, o, v);
    } else {
      int64_t v = !seen[o] && op != JX_CPU_SUM ? (op == JX_CPU_MAX_R ? imin(dt) : imax(dt)) : wrap(dt, is[o]);
      seti(dt, y, o, v);
    }
  }
  free(fs), free(is), free(seen);
}

static void test_reduce_case(jx_cpu_redop op, jx_dtype dt, int nd, const int64_t *sh, const bool *rd) {
  int64_t n = 1, nout = 1;
  for (int d = 0; d < nd; d++) {
    n *= sh[d];
    if (!rd[d]) nout *= sh[d];
  }
  /* float sums: no inf/NaN (they would hide rounding checks); max/min keep them */
  bool plain = op == JX_CPU_SUM && is_float(dt);
  void *x = plain ? malloc((size_t)(n ? n : 1) * DT_SIZE[dt]) : rand_array(dt, n, false);
  if (plain)
    for (int64_t i = 0; i < n; i++) setf(dt, x, i, unif() * 2 - 0.5);
  char *y = malloc((size_t)(nout + 1) * DT_SIZE[dt]), *ref = malloc((size_t)(nout + 1) * DT_SIZE[dt]);
  jx_cpu_reduce(op, dt, nd, sh, rd, x, y);
  ref_reduce(op, dt, nd, sh, rd, x, ref);
  int bad = 0;
  for (int64_t o = 0; o < nout; o++) {
    bool ok = plain ? check_close(getf(dt, y, o), getf(dt, ref, o), dt == JX_F32 ? 2e-5 : 1e-12, 1e-5)
                    : (dt == JX_BOOL && op == JX_CPU_SUM) || same(dt, y, o, ref, o);
    if (!ok && bad++ < 3)
      fprintf(stderr, "reduce op %d %s [%lld]: %g vs %g\n", op, DT_NAME[dt], (long long)o,
              is_float(dt) ? getf(dt, y, o) : (double)geti(dt, y, o),
              is_float(dt) ? getf(dt, ref, o) : (double)geti(dt, ref, o));
  }
  char shs[64] = "";
  for (int d = 0; d < nd; d++)
    snprintf(shs + strlen(shs), sizeof shs - strlen(shs), "%s%lld", rd[d] ? "R" : "K", (long long)sh[d]);
  CHECKF(bad == 0, "reduce op %d %s %s: %d bad", op, DT_NAME[dt], shs, bad);
  free(x), free(y), free(ref);
}

static void test_reduce(void) {
  struct {
    int nd;
    int64_t sh[5];
    bool rd[5];
  } cases[] = {
      {0, {0}, {0}},                         /* 0-d */
      {1, {17}, {1}},                        /* [R] */
      {1, {7}, {0}},                         /* nothing reduced */
      {2, {3, 1000}, {0, 1}},                /* [K,R] */
      {2, {5000, 10}, {0, 1}},               /* [K,R] short rows */
      {2, {1, 17}, {0, 1}},                  /* size-1 kept dim */
      {2, {2, 200003}, {0, 1}},              /* long rows: chunked */
      {2, {1000, 3}, {1, 0}},                /* [R,K] narrow */
      {2, {37, 100}, {1, 0}},                /* [R,K] */
      {2, {300, 600}, {1, 0}},               /* [R,K] several tiles */
      {2, {200001, 5}, {1, 0}},              /* [R,K] chunked rows */
      {3, {3, 50, 7}, {0, 1, 0}},            /* [K,R,K] */
      {3, {4, 1000, 300}, {0, 1, 0}},        /* [K,R,K] big */
      {3, {4, 5, 6}, {1, 0, 1}},             /* general [R,K,R] */
      {4, {3, 4, 5, 6}, {1, 0, 1, 0}},       /* general [R,K,R,K] */
      {5, {2, 1, 3, 1, 4}, {1, 0, 0, 1, 1}}, /* size-1 dims */
      {3, {3, 4, 5}, {1, 1, 1}},             /* everything */
      {2, {3, 0}, {0, 1}},                   /* empty reduction */
      {2, {0, 3}, {1, 0}},                   /* empty reduction */
      {2, {0, 3}, {0, 1}},                   /* empty output */
  };
  for (unsigned c = 0; c < sizeof cases / sizeof *cases; c++)
    for (int op = 0; op < JX_CPU_REDUCE_COUNT; op++)
      for (int t = 0; t < 6; t++) test_reduce_case(op, ALL_DT[t], cases[c].nd, cases[c].sh, cases[c].rd);

  /* accuracy: f32 sums of 1e7 uniform(0,1) within 1e-6 of the f64 sum,
   * contiguous and by columns; and the same bits whatever the thread count */
  int64_t n = 10000000;
  float *x = malloc((size_t)n * sizeof *x);
  for (int64_t i = 0; i < n; i++) x[i] = (float)unif();
  struct {
    int nd;
    int64_t sh[2];
    bool rd[2];
  } acc[] = {{1, {10000000}, {1}},
             {2, {1000000, 10}, {1, 0}},
             {2, {10000, 1000}, {1, 0}},
             {2, {5000000, 2}, {1, 0}},
             {2, {10, 1000000}, {0, 1}}};
  for (int a = 0; a < 5; a++) {
    int64_t K = acc[a].nd == 1 ? 1 : acc[a].rd[0] ? acc[a].sh[1] : acc[a].sh[0];
    float y[1000], y1[1000];
    jx_cpu_reduce(JX_CPU_SUM, JX_F32, acc[a].nd, acc[a].sh, acc[a].rd, x, y);
    double worst = 0;
    for (int64_t k = 0; k < K; k++) {
      double exact = 0;
      int64_t R = n / K;
      for (int64_t r = 0; r < R; r++) exact += acc[a].rd[0] && acc[a].nd == 2 ? x[r * K + k] : x[k * R + r];
      double rel = fabs(y[k] - exact) / exact;
      worst = rel > worst ? rel : worst;
    }
    CHECKF(worst < 1e-6, "f32 sum accuracy case %d: rel error %g", a, worst);
    int saved = jx_cpu_num_threads();
    for (int nt = 1; nt <= 3; nt++) {
      jx_cpu_set_num_threads(nt);
      jx_cpu_reduce(JX_CPU_SUM, JX_F32, acc[a].nd, acc[a].sh, acc[a].rd, x, y1);
      CHECKF(memcmp(y, y1, (size_t)K * sizeof *y) == 0, "sum case %d differs with %d threads", a, nt);
    }
    jx_cpu_set_num_threads(saved);
  }
  free(x);

  /* NaN propagation through max/min, on both kernels */
  float v[300];
  for (int i = 0; i < 300; i++) v[i] = (float)i;
  v[125] = NAN; /* column 2 */
  float r[3];
  int64_t s1 = 300, s2[2] = {100, 3};
  jx_cpu_reduce(JX_CPU_MAX_R, JX_F32, 1, &s1, (bool[]){1}, v, r);
  CHECK(isnan(r[0]));
  jx_cpu_reduce(JX_CPU_MIN_R, JX_F32, 2, s2, (bool[]){1, 0}, v, r);
  CHECK(r[0] == 0 && r[1] == 1 && isnan(r[2]));
}

/* ------------------------------------------------------ argreduce */
static void test_argreduce(void) {
  struct {
    int nd, axis;
    int64_t sh[3];
  } cases[] = {{1, 0, {17}},       {2, 1, {5, 1001}},  {2, 0, {7, 9}}, {3, 1, {3, 40, 300}},
               {3, 0, {6, 2, 3}},  {1, 0, {1}},        {2, 1, {3, 0}}, {2, 1, {200, 300}},
               {2, 1, {3000, 10}}, {3, 2, {7, 300, 5}}};
  for (unsigned c = 0; c < sizeof cases / sizeof *cases; c++)
    for (int t = 0; t < 6; t++)
      for (int mx = 0; mx < 2; mx++)
        for (int o64 = 0; o64 < 2; o64++) {
          jx_dtype dt = ALL_DT[t];
          int nd = cases[c].nd, ax = cases[c].axis;
          const int64_t *sh = cases[c].sh;
          int64_t outer = 1, inner = 1, n = sh[ax];
          for (int d = 0; d < ax; d++) outer *= sh[d];
          for (int d = ax + 1; d < nd; d++) inner *= sh[d];
          /* small values: many ties; floats get NaNs now and then */
          void *x = rand_array(dt, outer * n * inner, !is_float(dt) || t % 2);
          if (is_float(dt))
            for (int64_t i = 0; i < outer * n * inner; i++)
              if (rnd() % 50 == 0) setf(dt, x, i, NAN);
          int64_t *y = calloc((size_t)(outer * inner + 1), 8);
          jx_cpu_argreduce(mx, dt, nd, sh, ax, x, o64 ? JX_I64 : JX_I32, y);
          int bad = 0;
          for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++) {
              int64_t best = 0;
              for (int64_t j = 1; j < n; j++) {
                int64_t a = (o * n + j) * inner + i, b = (o * n + best) * inner + i;
                bool better;
                if (is_float(dt)) {
                  double va = getf(dt, x, a), vb = getf(dt, x, b);
                  better = !isnan(vb) && (isnan(va) || (mx ? va > vb : va < vb));
                } else {
                  better = mx ? geti(dt, x, a) > geti(dt, x, b) : geti(dt, x, a) < geti(dt, x, b);
                }
                if (better) best = j;
              }
              int64_t got = o64 ? y[o * inner + i] : ((int32_t *)y)[o * inner + i];
              bad += n > 0 && got != best;
            }
          CHECKF(bad == 0, "argreduce %s case %u max=%d: %d bad", DT_NAME[dt], c, mx, bad);
          free(x), free(y);
        }
  float ties[] = {1, 3, NAN, 3, NAN};
  int32_t ai;
  int64_t s = 5;
  jx_cpu_argreduce(true, JX_F32, 1, &s, 0, ties, JX_I32, &ai);
  CHECK(ai == 2);
  s = 2;
  jx_cpu_argreduce(true, JX_F32, 1, &s, 0, ties, JX_I32, &ai);
  CHECK(ai == 1);
  jx_cpu_argreduce(false, JX_F32, 1, &s, 0, (float[]){2, 2}, JX_I32, &ai);
  CHECK(ai == 0);
}

/* ------------------------------------------------------ layout */
static void test_strided_case(const char *name, size_t es, int nd, const int64_t *sh, int64_t nin,
                              int64_t off, const int64_t *st) {
  int64_t n = 1;
  for (int d = 0; d < nd; d++) n *= sh[d];
  unsigned char *in = calloc((size_t)nin, es), *out = malloc((size_t)(n ? n : 1) * es);
  for (int64_t i = 0; i < nin * (int64_t)es; i++) in[i] = (unsigned char)rnd();
  jx_cpu_strided_copy(es, nd, sh, in, off, st, out);
  int bad = 0;
  for (int64_t i = 0; i < n; i++)
    bad += memcmp(out + i * (int64_t)es, in + (off + offset_of(nd, sh, st, i)) * (int64_t)es, es) != 0;
  CHECKF(bad == 0, "strided_copy %s es=%zu: %d bad", name, es, bad);
  /* and back: scatter the copy into a fresh buffer at the same places
   * (only where no two positions share a place: broadcasts would race) */
  bool overlap = false;
  for (int d = 0; d < nd; d++) overlap |= st[d] == 0 && sh[d] > 1;
  if (overlap || n == 0) {
    free(in), free(out);
    return;
  }
  unsigned char *back = calloc((size_t)nin, es), *want = calloc((size_t)nin, es);
  jx_cpu_strided_scatter(es, nd, sh, out, back, off, st);
  for (int64_t i = 0; i < n; i++)
    memcpy(want + (off + offset_of(nd, sh, st, i)) * (int64_t)es, out + i * (int64_t)es, es);
  CHECKF(memcmp(back, want, (size_t)nin * es) == 0, "strided_scatter %s es=%zu", name, es);
  free(in), free(out), free(back), free(want);
}

static void test_layout(void) {
  const size_t sizes[] = {1, 2, 4, 8, 3};
  for (int s = 0; s < 5; s++) {
    size_t es = sizes[s];
    test_strided_case("0-d", es, 0, NULL, 1, 0, NULL);
    test_strided_case("transpose 37x45", es, 2, (int64_t[]){45, 37}, 45 * 37, 0, (int64_t[]){1, 45});
    test_strided_case("transpose 3x500", es, 2, (int64_t[]){500, 3}, 1500, 0, (int64_t[]){1, 500});
    test_strided_case("permute 3-d", es, 3, (int64_t[]){6, 4, 5}, 120, 0, (int64_t[]){1, 30, 6});
    test_strided_case("permute 4-d", es, 4, (int64_t[]){9, 10, 11, 12}, 11880, 0,
                      (int64_t[]){1, 9, 1080, 90});
    test_strided_case("broadcast row", es, 2, (int64_t[]){5, 7}, 7, 0, (int64_t[]){0, 1});
    test_strided_case("broadcast col", es, 2, (int64_t[]){5, 7}, 5, 0, (int64_t[]){1, 0});
    test_strided_case("broadcast big", es, 2, (int64_t[]){3000, 33}, 33, 0, (int64_t[]){0, 1});
    test_strided_case("slice", es, 2, (int64_t[]){3, 4}, 60, 13, (int64_t[]){12, 2});
    test_strided_case("reverse", es, 1, (int64_t[]){1001}, 1001, 1000, (int64_t[]){-1});
    test_strided_case("reverse rows", es, 2, (int64_t[]){20, 30}, 600, 570, (int64_t[]){-30, 1});
    test_strided_case("reverse transpose", es, 2, (int64_t[]){40, 30}, 1200, 1199, (int64_t[]){-1, -40});
    test_strided_case("contiguous", es, 3, (int64_t[]){4, 1, 50000}, 200000, 0, (int64_t[]){50000, 7, 1});
    test_strided_case("size 0", es, 2, (int64_t[]){0, 5}, 1, 0, (int64_t[]){5, 1});
  }
  test_strided_case("transpose 2000x2000", 4, 2, (int64_t[]){2000, 2000}, 4000000, 0, (int64_t[]){1, 2000});
  /* pad: a [3,4] into a [5,6] at (1,1) */
  float src[12], dst[30] = {0};
  for (int i = 0; i < 12; i++) src[i] = (float)(i + 1);
  jx_cpu_strided_scatter(4, 2, (int64_t[]){3, 4}, src, dst, 7, (int64_t[]){6, 1});
  CHECK(dst[7] == 1 && dst[10] == 4 && dst[13] == 5 && dst[22] == 12 && dst[0] == 0 && dst[11] == 0 &&
        dst[23] == 0 && dst[28] == 0);

  /* gather and scatter_add against loops */
  for (int t = 0; t < 6; t++) {
    jx_dtype dt = ALL_DT[t];
    size_t es = DT_SIZE[dt];
    const int64_t shapes[][4] = {{1, 10, 1, 25}, {3, 7, 5, 11}, {2, 50, 3000, 9}, {4, 9, 1, 20000}};
    for (int c = 0; c < 4; c++) {
      int64_t outer = shapes[c][0], nx = shapes[c][1], inner = shapes[c][2], nidx = shapes[c][3];
      int64_t idx[20000];
      for (int64_t j = 0; j < nidx; j++) idx[j] = (int64_t)(rnd() % (uint64_t)nx);
      char *x = rand_array(dt, outer * nx * inner, true);
      char *g = malloc((size_t)(outer * nidx * inner) * es);
      jx_cpu_gather(es, outer, nx, inner, x, nidx, idx, g);
      int bad = 0;
      for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < nidx; j++)
          bad += memcmp(g + ((o * nidx + j) * inner) * (int64_t)es,
                        x + ((o * nx + idx[j]) * inner) * (int64_t)es, (size_t)inner * es) != 0;
      CHECKF(bad == 0, "gather %s case %d", DT_NAME[dt], c);
      /* scatter_add g back (duplicates accumulate) */
      char *acc = calloc((size_t)(outer * nx * inner), es), *ref = calloc((size_t)(outer * nx * inner), es);
      jx_cpu_scatter_add(dt, outer, nx, inner, g, nidx, idx, acc);
      for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < nidx; j++)
          for (int64_t i = 0; i < inner; i++) {
            int64_t d = (o * nx + idx[j]) * inner + i, u = (o * nidx + j) * inner + i;
            if (is_float(dt))
              setf(dt, ref, d, getf(dt, ref, d) + getf(dt, g, u));
            else if (dt == JX_BOOL)
              seti(dt, ref, d, geti(dt, ref, d) | geti(dt, g, u));
            else
              seti(dt, ref, d, wrap(dt, (uint64_t)geti(dt, ref, d) + (uint64_t)geti(dt, g, u)));
          }
      bad = 0;
      for (int64_t i = 0; i < outer * nx * inner; i++) bad += !same(dt, acc, i, ref, i);
      CHECKF(bad == 0, "scatter_add %s case %d: %d bad", DT_NAME[dt], c, bad);
      free(x), free(g), free(acc), free(ref);
    }
  }
}

/* ------------------------------------------------------ the pool */
typedef struct {
  _Atomic int *hits;
  int64_t grain;
  _Atomic int short_chunks, calls;
  pthread_mutex_t mu; /* guards seen/nseen */
  pthread_t seen[64];
  int nseen;
  bool nest;
} pool_ctx;

static void count_fn(void *p, int64_t lo, int64_t hi);

static void nested_fn(void *p, int64_t lo, int64_t hi) {
  _Atomic int *hits = p;
  for (int64_t i = lo; i < hi; i++) atomic_fetch_add(&hits[i], 1);
}

static void count_fn(void *p, int64_t lo, int64_t hi) {
  pool_ctx *c = p;
  atomic_fetch_add(&c->calls, 1);
  if (hi - lo < c->grain) atomic_fetch_add(&c->short_chunks, 1);
  for (int64_t i = lo; i < hi; i++) atomic_fetch_add(&c->hits[i], 1);
  pthread_t me = pthread_self();
  pthread_mutex_lock(&c->mu);
  int j = 0;
  while (j < c->nseen && !pthread_equal(c->seen[j], me)) j++;
  if (j == c->nseen && j < 64) c->seen[c->nseen++] = me;
  pthread_mutex_unlock(&c->mu);
  if (c->nest) { /* a nested call runs inline and still covers its range */
    _Atomic int local[100] = {0};
    jx_cpu_parallel_for(100, 1, nested_fn, local);
    for (int i = 0; i < 100; i++)
      if (atomic_load(&local[i]) != 1) atomic_fetch_add(&c->short_chunks, 1000);
  }
}

static int run_pool(int64_t n, int64_t grain, bool nest, int *threads_seen) {
  pool_ctx c = {.hits = calloc((size_t)n + 1, sizeof(_Atomic int)),
                .grain = grain,
                .nest = nest,
                .mu = PTHREAD_MUTEX_INITIALIZER};
  jx_cpu_parallel_for(n, grain, count_fn, &c);
  int bad = 0;
  for (int64_t i = 0; i < n; i++) bad += atomic_load(&c.hits[i]) != 1;
  if (n >= 2 * grain)
    bad += atomic_load(&c.short_chunks);
  else
    bad += atomic_load(&c.calls) != (n > 0);
  if (threads_seen) *threads_seen = c.nseen;
  free((void *)c.hits);
  return bad;
}

static void *user_thread(void *arg) {
  int *bad = arg;
  for (int i = 0; i < 200; i++) *bad += run_pool(10000 + i, 100, i % 3 == 0, NULL);
  return NULL;
}

/* Segments: with two threads and 32 chunks, the caller starts at chunk 0
 * and the worker at chunk 16 (the start of its own contiguous segment),
 * not at the next chunk in turn. Each first chunk waits until the other
 * thread has started one, so neither can run ahead and steal; if the
 * worker never joins (2 s), the caller runs everything and there is
 * nothing to check but coverage. */
typedef struct {
  int64_t grain;
  _Atomic int started, hits[32];
  _Atomic int64_t first_lo[2]; /* [0] the caller's first chunk, [1] the worker's */
  pthread_t caller;
} seg_ctx;

static void seg_fn(void *p, int64_t lo, int64_t hi) {
  seg_ctx *c = p;
  const int who = !pthread_equal(pthread_self(), c->caller);
  int64_t none = -1;
  if (atomic_compare_exchange_strong(&c->first_lo[who], &none, lo)) {
    atomic_fetch_add(&c->started, 1);
    for (int i = 0; i < 2000 && atomic_load(&c->started) < 2; i++) usleep(1000);
  }
  for (int64_t i = lo; i < hi; i += c->grain) atomic_fetch_add(&c->hits[i / c->grain], 1);
}

static void test_pool_segments(void) {
  jx_cpu_set_num_threads(2);
  for (int round = 0; round < 3; round++) {
    seg_ctx c = {.grain = 64, .first_lo = {-1, -1}, .caller = pthread_self()};
    jx_cpu_parallel_for(32 * 64, 64, seg_fn, &c);
    int bad = 0;
    for (int i = 0; i < 32; i++) bad += atomic_load(&c.hits[i]) != 1;
    CHECKF(bad == 0, "segments round %d: %d chunks not run exactly once", round, bad);
    CHECKF(atomic_load(&c.first_lo[0]) == 0, "the caller began at element %lld",
           (long long)atomic_load(&c.first_lo[0]));
    if (atomic_load(&c.first_lo[1]) >= 0)
      CHECKF(atomic_load(&c.first_lo[1]) == 16 * 64,
             "the worker began at element %lld, not its segment's start %d",
             (long long)atomic_load(&c.first_lo[1]), 16 * 64);
  }
  jx_cpu_set_num_threads(0);
}

/* A thread on CPU c that leaves c runs elsewhere afterwards, with the
 * affinity mask it had. */
static void test_leave_cpu(void) {
  cpu_set_t before, after;
  CHECK(sched_getaffinity(0, sizeof before, &before) == 0);
  if (CPU_COUNT(&before) < 2) return; /* nowhere else to go */
  for (int round = 0; round < 3; round++) {
    const int c = sched_getcpu();
    jx_cpu_leave_cpu(c);
    const int now = sched_getcpu();
    CHECKF(now != c && CPU_ISSET(now, &before), "left CPU %d for CPU %d", c, now);
    CHECK(sched_getaffinity(0, sizeof after, &after) == 0);
    CHECK(CPU_EQUAL(&before, &after));
  }
  jx_cpu_leave_cpu(-1); /* no CPU: nothing to do */
  CHECK(sched_getaffinity(0, sizeof after, &after) == 0 && CPU_EQUAL(&before, &after));
}

static void test_pool(void) {
  CHECK(jx_cpu_num_threads() >= 1);
  const int64_t ns[] = {0, 1, 99, 100, 199, 200, 1000, 100003};
  for (int i = 0; i < 8; i++) {
    CHECKF(run_pool(ns[i], 100, false, NULL) == 0, "parallel_for n=%lld", (long long)ns[i]);
    CHECKF(run_pool(ns[i], 1, true, NULL) == 0, "nested parallel_for n=%lld", (long long)ns[i]);
  }
  /* two user threads at once, plus the main thread */
  jx_cpu_set_num_threads(4);
  pthread_t th[2];
  int bad[3] = {0};
  for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, user_thread, &bad[i]);
  user_thread(&bad[2]);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  CHECK(bad[0] == 0 && bad[1] == 0 && bad[2] == 0);
  /* one thread: everything on the caller */
  jx_cpu_set_num_threads(1);
  CHECK(jx_cpu_num_threads() == 1);
  int seen = 0;
  CHECK(run_pool(100000, 10, false, &seen) == 0 && seen == 1);
  jx_cpu_set_num_threads(3);
  CHECK(jx_cpu_num_threads() == 3);
  CHECK(run_pool(1000000, 10, false, &seen) == 0 && seen >= 1 && seen <= 3);
  /* the default comes from JX_NUM_THREADS */
  setenv("JX_NUM_THREADS", "5", 1);
  jx_cpu_set_num_threads(0);
  CHECK(jx_cpu_num_threads() == 5);
  unsetenv("JX_NUM_THREADS");
  jx_cpu_set_num_threads(0);
  CHECK(jx_cpu_num_threads() >= 1);
}

/* The cache sizes read from sysfs are plausible, and the streaming
 * threshold follows from them (cache_info.c) unless JX_STREAM_MIN_BYTES
 * says otherwise (set below, before the first kernel reads it). */
static void test_cache_info(void) {
  const jx_cpu_cache_sizes *c = jx_cpu_caches();
  CHECKF(c->l1d >= 8 << 10 && c->l2 >= c->l1d && c->l3 >= c->l2 && c->l3_cpus >= 1,
         "caches l1d %lld l2 %lld l3 %lld shared by %d", (long long)c->l1d, (long long)c->l2,
         (long long)c->l3, c->l3_cpus);
  CHECK(jx_cpu_stream_min_bytes() == 4 << 20);
}

int main(void) {
  /* the streamed loops run from 4 MiB on, whatever this machine's L3 */
  setenv("JX_STREAM_MIN_BYTES", "4194304", 1);
  test_cache_info();
  test_pool();
  test_pool_segments();
  test_leave_cpu();
  test_binary();
  test_unary();
  test_select();
  test_select_owned();
  test_convert_fill();
  test_reduce();
  test_argreduce();
  test_layout();
  return check_report("kernels");
}
