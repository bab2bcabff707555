/* The dtypes of #19: bf16, f16, i8, u8, i16, u16, u64.
 *
 * - conversions against golden bit patterns (tests/golden/gen_dtype.py:
 *   PyTorch's bf16, NumPy's f16), NaN/Inf/-0/subnormal/tie edges by hand,
 *   every 16-bit pattern widened against a formula, the F16C path against
 *   the portable one, the core's rounding against the kernels', jit
 *   against eager;
 * - float -> int (truncation, saturation, NaN -> 0) and int <-> int
 *   (wrapping) conversions;
 * - names, sizes, creation, reading, printing;
 * - JAX's promotion table, every pair, weak and strong;
 * - bad input: a primitive without kernels for a dtype fails naming both. */
#include "backend/cpu/kernels.h"
#include "backend/cpu/scalar_ops.h"
#include "check.h"
#include "core/core.h"

#include <inttypes.h>
#include <stdint.h>

static uint16_t bits16(jx_t x, int64_t i) {
  uint16_t v = 0;
  if (jx_ok(x) && (jx_dtype_of(x) == JX_BF16 || jx_dtype_of(x) == JX_F16) && i < jx_size(x)) {
    uint16_t *all = malloc((size_t)jx_size(x) * 2);
    if (!jx_read(x, jx_dtype_of(x), all, (size_t)jx_size(x) * 2)) v = all[i];
    free(all);
  }
  return v;
}

/* ------------------------------------------------------------ golden */
enum { MAXG = 4096 };
typedef struct {
  char kind[16];
  uint64_t in;
  unsigned want;
} conv_row;
typedef struct {
  char op[8], dt[8];
  unsigned a, b, want;
} arith_row;
static conv_row conv_rows[MAXG];
static arith_row arith_rows[MAXG];
static int nconv, narith;

static void load_golden(void) {
  FILE *f = fopen("golden/dtype_golden.txt", "r");
  CHECKF(f != NULL, "golden/dtype_golden.txt (run from tests/)");
  if (!f) return;
  char line[200];
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#') continue;
    conv_row c;
    arith_row a;
    if (sscanf(line, "%15s %" SCNx64 " %x", c.kind, &c.in, &c.want) == 3 && strchr(c.kind, '_') &&
        nconv < MAXG)
      conv_rows[nconv++] = c;
    else if (sscanf(line, "%7s %7s %x %x %x", a.op, a.dt, &a.a, &a.b, &a.want) == 5 && narith < MAXG)
      arith_rows[narith++] = a;
  }
  fclose(f);
  CHECKF(nconv > 1000 && narith > 400, "%d conversions, %d ops read", nconv, narith);
}

static jx_t astype_body(const jx_t *a, void *user) { return jx_astype(a[0], *(const jx_dtype *)user); }

/* every golden row of `kind`, converted as one array (eager and jit) and
 * one element at a time from a double (the core's rounding) */
static void check_conv_kind(const char *kind, jx_dtype from, jx_dtype to) {
  static uint64_t in[MAXG];
  static unsigned want[MAXG];
  int n = 0;
  for (int i = 0; i < nconv; i++)
    if (!strcmp(conv_rows[i].kind, kind)) in[n] = conv_rows[i].in, want[n++] = conv_rows[i].want;
  CHECKF(n > 100, "%s: %d rows", kind, n);
  jx_pool_push();
  static unsigned char buf[MAXG * 8];
  for (int i = 0; i < n; i++) {
    if (from == JX_F32)
      ((uint32_t *)buf)[i] = (uint32_t)in[i];
    else
      ((uint64_t *)buf)[i] = in[i];
  }
  jx_t x = jx_array(from, JX_SHAPE(n), buf);
  jx_t y = jx_astype(x, to);
  jx_t yj = jx_call(jx_jit(jx_fn_new(astype_body, 1, &to)), &x);
  CHECKF(jx_ok(y) && jx_ok(yj), "%s: %s", kind, jx_error(jx_ok(y) ? yj : y));
  int bad = 0;
  for (int i = 0; i < n && jx_ok(y) && jx_ok(yj); i++) {
    double v;
    if (from == JX_F32)
      v = jx_bits_f32((uint32_t)in[i]);
    else
      memcpy(&v, &in[i], 8);
    uint16_t core = 0, got = bits16(y, i), gotj = bits16(yj, i);
    jx_read(jx_scalar_of(to, v), to, &core, 2);
    if ((got != want[i] || gotj != want[i] || core != want[i]) && bad++ < 5)
      fprintf(stderr, "%s %llx: want %04x, eager %04x, jit %04x, core %04x\n", kind,
              (unsigned long long)in[i], want[i], got, gotj, core);
  }
  CHECKF(bad == 0, "%s: %d of %d differ", kind, bad, n);
  jx_pool_pop();
}

static jx_t half_array(jx_dtype dt, int n, const uint16_t *bits) { return jx_array(dt, JX_SHAPE(n), bits); }

typedef jx_t (*bin_op)(jx_t, jx_t);
static bin_op op_named(const char *op) {
  static const struct {
    const char *name;
    bin_op fn;
  } ops[] = {{"add", jx_add}, {"sub", jx_sub},     {"mul", jx_mul},
             {"div", jx_div}, {"max", jx_maximum}, {"min", jx_minimum}};
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    if (!strcmp(op, ops[i].name)) return ops[i].fn;
  return NULL;
}

/* arithmetic rows: widen, compute in f32, round once, as the libraries do */
static void check_arith_golden(void) {
  int bad = 0, n = 0;
  for (int i = 0; i < narith; i++) {
    const arith_row *r = &arith_rows[i];
    jx_dtype dt = !strcmp(r->dt, "bf16") ? JX_BF16 : JX_F16;
    jx_pool_push();
    uint16_t a = (uint16_t)r->a, b = (uint16_t)r->b;
    jx_t x = half_array(dt, 1, &a), y = half_array(dt, 1, &b);
    bin_op fn = op_named(r->op);
    jx_t z = fn ? fn(x, y) : jx_sqrt(x);
    uint16_t got = bits16(z, 0);
    CHECK(jx_dtype_of(z) == dt);
    if (got != r->want && bad++ < 5)
      fprintf(stderr, "%s %s %04x %04x: want %04x, got %04x (%s)\n", r->op, r->dt, r->a, r->b, r->want, got,
              jx_ok(z) ? "" : jx_error(z));
    n++;
    jx_pool_pop();
  }
  CHECKF(bad == 0 && n > 400, "arithmetic: %d of %d differ", bad, n);
}

/* ------------------------------------------------------------ by hand */
/* NaN, Inf, -0 and ties: jx's documented choices where the libraries differ */
static void check_edges(void) {
  static const struct {
    uint32_t f;
    uint16_t bf, h;
  } rows[] = {
      {0x7fc00000u, 0x7fc0, 0x7e00},                                /* quiet NaN */
      {0xffc00001u, 0xffc0, 0xfe00},                                /* -NaN: sign kept */
      {0x7f800001u, 0x7fc0, 0x7e00},                                /* signalling NaN: made quiet */
      {0x7fa00000u, 0x7fe0, 0x7f00},                                /* top payload bits kept */
      {0x7f800000u, 0x7f80, 0x7c00}, {0xff800000u, 0xff80, 0xfc00}, /* +-Inf */
      {0x80000000u, 0x8000, 0x8000},                                /* -0 */
      {0x7f7fffffu, 0x7f80, 0x7c00}, /* f32 max: past bf16's max by half an ulp -> Inf */
      {0x3f808000u, 0x3f80, 0x3c04}, /* 1 + 2^-8: a bf16 tie, to even (down) */
      {0x3f818000u, 0x3f82, 0x3c0c}, /* 1 + 3*2^-8: a bf16 tie, to even (up) */
      {0x00000001u, 0x0000, 0x0000}, /* f32 min subnormal */
      {0x00010000u, 0x0001, 0x0000}, /* bf16 min subnormal, exact */
      {0x33800000u, 0x3380, 0x0001}, /* 2^-24: f16 min subnormal */
      {0x33000000u, 0x3300, 0x0000}, /* 2^-25: a tie, to even (zero) */
      {0x477fe000u, 0x4780, 0x7bff}, /* 65504: f16 max */
      {0x477ff000u, 0x4780, 0x7c00}, /* 65520: the f16 tie past max -> Inf */
  };
  int n = (int)(sizeof rows / sizeof *rows);
  uint32_t in[32];
  for (int i = 0; i < n; i++) in[i] = rows[i].f;
  jx_pool_push();
  jx_t x = jx_array(JX_F32, JX_SHAPE(n), in);
  jx_t b = jx_astype(x, JX_BF16), h = jx_astype(x, JX_F16);
  for (int i = 0; i < n; i++) {
    CHECKF(bits16(b, i) == rows[i].bf, "f32 %08x -> bf16: %04x, want %04x", in[i], bits16(b, i), rows[i].bf);
    CHECKF(bits16(h, i) == rows[i].h, "f32 %08x -> f16: %04x, want %04x", in[i], bits16(h, i), rows[i].h);
  }
  /* f64 rounds once: 1 + 2^-8 + 2^-40 is above the bf16 tie (f32 would lose it) */
  CHECK(bits16(jx_astype(jx_scalar_of(JX_F64, 1 + 0x1p-8 + 0x1p-40), JX_BF16), 0) == 0x3f81);
  CHECK(bits16(jx_astype(jx_scalar_of(JX_F64, 1 + 0x1p-11 + 0x1p-40), JX_F16), 0) == 0x3c01);
  /* and back: -0, NaN and Inf survive widening */
  uint16_t hb[4] = {0x8000, 0x7fc1, 0xff80, 0x0001};
  jx_t w = jx_astype(half_array(JX_BF16, 4, hb), JX_F64);
  double wv[4];
  CHECK(jx_read(w, JX_F64, wv, sizeof wv) == 0);
  CHECK(wv[0] == 0 && signbit(wv[0]) && isnan(wv[1]) && wv[2] == -INFINITY && wv[3] == 0x1p-133);
  jx_pool_pop();
}

/* every 16-bit pattern widened, against the formula; narrowing back is
 * the identity (NaNs: stay NaN) */
static void check_widen_all(void) {
  static uint16_t all[65536];
  for (int i = 0; i < 65536; i++) all[i] = (uint16_t)i;
  jx_dtype dts[2] = {JX_BF16, JX_F16};
  for (int k = 0; k < 2; k++) {
    jx_pool_push();
    jx_t x = half_array(dts[k], 65536, all);
    jx_t f = jx_astype(x, JX_F32), back = jx_astype(f, dts[k]);
    static float fv[65536];
    CHECK(jx_read(f, JX_F32, fv, sizeof fv) == 0);
    int bad = 0;
    for (int i = 0; i < 65536; i++) {
      int s = i >> 15, e, m;
      double want;
      if (dts[k] == JX_BF16) {
        e = (i >> 7) & 0xff, m = i & 0x7f;
        want = e == 255 ? (m ? NAN : INFINITY) : e ? ldexp(1 + m / 128.0, e - 127) : ldexp(m / 128.0, -126);
      } else {
        e = (i >> 10) & 0x1f, m = i & 0x3ff;
        want = e == 31 ? (m ? NAN : INFINITY) : e ? ldexp(1 + m / 1024.0, e - 15) : ldexp(m / 1024.0, -14);
      }
      if (s) want = -want;
      bool ok = isnan(want) ? isnan(fv[i]) && !!signbit(fv[i]) == s
                            : (double)fv[i] == want && !!signbit(fv[i]) == s;
      /* the core's widening (jx_scalar_load) gives the kernel's bits */
      float core = jx_half_widen(dts[k], all[i]);
      ok = ok && !memcmp(&core, &fv[i], 4);
      uint16_t rt = bits16(back, i);
      ok = ok && (isnan(want) ? (rt & 0x7fff) > (dts[k] == JX_BF16 ? 0x7f80 : 0x7c00) : rt == i);
      if (!ok && bad++ < 5)
        fprintf(stderr, "%s %04x: %.9g, want %.9g, back %04x\n", jx_dtype_name(dts[k]), i, fv[i], want, rt);
    }
    CHECKF(bad == 0, "%s: %d patterns widen wrong", jx_dtype_name(dts[k]), bad);
    jx_pool_pop();
  }
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next64(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return rng;
}

/* the eager converter (F16C where the CPU has it) against the portable
 * scalar functions the jit pastes; the core's f64 rounding against
 * scalar_ops.h's */
static void check_paths_agree(void) {
  enum { N = 1 << 20 };
  uint32_t *in = malloc(N * 4);
  uint16_t *out = malloc(N * 2), all[65536];
  float *wide = malloc(65536 * 4);
  for (int i = 0; i < N; i++) in[i] = (uint32_t)next64();
  for (int i = 0; i < 4096; i++) in[i] = 0x7f800000u ^ (uint32_t)i;     /* NaNs and Infs of both signs */
  for (int i = 4096; i < 8192; i++) in[i] = (uint32_t)(i - 4096) << 19; /* every exponent */
  jx_cpu_convert(JX_F32, JX_F16, N, in, out);
  int bad = 0;
  for (int i = 0; i < N; i++) bad += out[i] != jx_f32_to_f16(jx_bits_f32(in[i]));
  CHECKF(bad == 0, "f32 -> f16: the converter and jx_f32_to_f16 differ on %d of %d", bad, N);
  for (int i = 0; i < 65536; i++) all[i] = (uint16_t)i;
  jx_cpu_convert(JX_F16, JX_F32, 65536, all, wide);
  bad = 0;
  for (int i = 0; i < 65536; i++) {
    float w = jx_f16_to_f32(all[i]);
    bad += memcmp(&w, &wide[i], 4) != 0;
  }
  CHECKF(bad == 0, "f16 -> f32: the converter and jx_f16_to_f32 differ on %d", bad);
  bad = 0;
  for (int i = 0; i < N; i++) {
    double d;
    uint64_t u = next64();
    if (i & 1) u = (u & 0x800fffffffffffffull) | ((uint64_t)(0x3e0 + (i >> 1) % 0x60) << 52); /* mid range */
    memcpy(&d, &u, 8);
    bad += jx_half_round(JX_BF16, d) != jx_f64_to_bf16(d) || jx_half_round(JX_F16, d) != jx_f64_to_f16(d);
  }
  CHECKF(bad == 0, "f64 -> bf16/f16: the core and scalar_ops.h differ on %d", bad);
  free(in), free(out), free(wide);
}

/* float -> int truncates toward zero; out of range saturates, NaN -> 0
 * (XLA's convert); int -> int wraps (two's complement) */
static void check_int_conversions(void) {
  jx_pool_push();
  double v[] = {3.7, -3.7, 300, -300, NAN, INFINITY, -INFINITY, 65535.9, 70000, 1.8e19, 2e19, -0.9};
  int n = (int)(sizeof v / sizeof *v);
  jx_t x = jx_array(JX_F64, JX_SHAPE(n), v);
  int8_t i8[12];
  uint8_t u8[12];
  int16_t i16[12];
  uint16_t u16[12];
  uint64_t u64[12];
  CHECK(!jx_read(jx_astype(x, JX_I8), JX_I8, i8, sizeof i8));
  CHECK(!jx_read(jx_astype(x, JX_U8), JX_U8, u8, sizeof u8));
  CHECK(!jx_read(jx_astype(x, JX_I16), JX_I16, i16, sizeof i16));
  CHECK(!jx_read(jx_astype(x, JX_U16), JX_U16, u16, sizeof u16));
  CHECK(!jx_read(jx_astype(x, JX_U64), JX_U64, u64, sizeof u64));
  static const int8_t wi8[] = {3, -3, 127, -128, 0, 127, -128, 127, 127, 127, 127, 0};
  static const uint8_t wu8[] = {3, 0, 255, 0, 0, 255, 0, 255, 255, 255, 255, 0};
  static const int16_t wi16[] = {3, -3, 300, -300, 0, 32767, -32768, 32767, 32767, 32767, 32767, 0};
  static const uint16_t wu16[] = {3, 0, 300, 0, 0, 65535, 0, 65535, 65535, 65535, 65535, 0};
  static const uint64_t wu64[] = {
      3, 0, 300, 0, 0, UINT64_MAX, 0, 65535, 70000, 18000000000000000000ull, UINT64_MAX, 0};
  CHECK(!memcmp(i8, wi8, sizeof i8) && !memcmp(u8, wu8, sizeof u8) && !memcmp(i16, wi16, sizeof i16));
  CHECK(!memcmp(u16, wu16, sizeof u16) && !memcmp(u64, wu64, sizeof u64));
  /* the same from f32 and from bf16 (through f32) */
  CHECK(!jx_read(jx_astype(jx_astype(x, JX_F32), JX_I8), JX_I8, i8, sizeof i8) &&
        !memcmp(i8, wi8, sizeof i8));
  CHECK(!jx_read(jx_astype(jx_astype(x, JX_BF16), JX_U8), JX_U8, u8, sizeof u8));
  CHECK(u8[0] == 3 && u8[2] == 255 && u8[4] == 0 && u8[1] == 0);
  /* int <-> int wraps */
  int32_t iv[] = {200, 256, -1, -129, 70000, INT32_MIN};
  jx_t xi = jx_array(JX_I32, JX_SHAPE(6), iv);
  CHECK(!jx_read(jx_astype(xi, JX_I8), JX_I8, i8, 6));
  CHECK(i8[0] == -56 && i8[1] == 0 && i8[2] == -1 && i8[3] == 127 && i8[4] == 112 && i8[5] == 0);
  CHECK(!jx_read(jx_astype(xi, JX_U16), JX_U16, u16, 12));
  CHECK(u16[2] == 65535 && u16[4] == 4464 && u16[5] == 0);
  CHECK(!jx_read(jx_astype(xi, JX_U64), JX_U64, u64, 48));
  CHECK(u64[2] == UINT64_MAX && u64[5] == (uint64_t)INT32_MIN); /* sign-extended, as NumPy */
  uint64_t big[2] = {UINT64_MAX, 1ull << 63};
  int64_t back[2];
  CHECK(!jx_read(jx_astype(jx_array(JX_U64, JX_SHAPE(2), big), JX_I64), JX_I64, back, sizeof back));
  CHECK(back[0] == -1 && back[1] == INT64_MIN);
  /* to bool: nonzero, -0 is false, NaN true */
  uint16_t hb[3] = {0x8000, 0x7fc0, 0x0001};
  uint8_t bb[3];
  CHECK(!jx_read(jx_astype(half_array(JX_BF16, 3, hb), JX_BOOL), JX_BOOL, bb, 3));
  CHECK(bb[0] == 0 && bb[1] == 1 && bb[2] == 1);
  jx_pool_pop();
}

/* names, sizes, creation, reading and printing */
static void check_basics(void) {
  static const struct {
    jx_dtype dt;
    const char *name;
    size_t size;
  } d[] = {{JX_BF16, "bf16", 2}, {JX_F16, "f16", 2}, {JX_I8, "i8", 1},  {JX_U8, "u8", 1},
           {JX_I16, "i16", 2},   {JX_U16, "u16", 2}, {JX_U64, "u64", 8}};
  for (size_t i = 0; i < sizeof d / sizeof *d; i++) {
    CHECK(!strcmp(jx_dtype_name(d[i].dt), d[i].name) && jx_dtype_size(d[i].dt) == d[i].size);
    jx_pool_push();
    jx_t z = jx_zeros(d[i].dt, JX_SHAPE(2, 3)), o = jx_full(d[i].dt, JX_SHAPE(4), 5);
    CHECK(jx_dtype_of(z) == d[i].dt && jx_size(z) == 6 && jx_dtype_of(o) == d[i].dt);
    double back[4];
    CHECK(!jx_read(o, JX_F64, back, sizeof back) && back[0] == 5 && back[3] == 5);
    CHECK(jx_item(jx_scalar_of(d[i].dt, 7)) == 7);
    jx_pool_pop();
  }
  CHECK(!strcmp(jx_dtype_name(JX_DTYPE_COUNT), "invalid-dtype") && jx_dtype_size(JX_DTYPE_COUNT) == 0);
  jx_pool_push();
  CHECK(bits16(jx_full(JX_BF16, JX_SHAPE(2), 0.1), 1) == 0x3dcd);
  CHECK(bits16(jx_full(JX_F16, JX_SHAPE(2), 0.1), 0) == 0x2e66);
  uint64_t u[2] = {UINT64_MAX, 3};
  char *s = jx_to_string(jx_array(JX_U64, JX_SHAPE(2), u));
  CHECKF(s && strstr(s, "18446744073709551615") && strstr(s, "u64"), "%s", s);
  jx_free_string(s);
  uint16_t hb[3] = {0x3f80, 0x3dcd, 0xff80}; /* 1, 0.1 (0.10009765625), -inf */
  s = jx_to_string(half_array(JX_BF16, 3, hb));
  CHECKF(s && strstr(s, "[1, 0.1001, -inf]") && strstr(s, "bf16"), "%s", s);
  jx_free_string(s);
  int8_t i8[3] = {-128, 0, 127};
  s = jx_to_string(jx_array(JX_I8, JX_SHAPE(3), i8));
  CHECKF(s && strstr(s, "[-128, 0, 127]") && strstr(s, "i8"), "%s", s);
  jx_free_string(s);
  /* a Python int too large for the small dtype it meets */
  EXPECT_ERROR(jx_add(jx_zeros(JX_U8, JX_SHAPE(2)), jx_scalar_int(300)), "300", "u8");
  EXPECT_ERROR(jx_add(jx_zeros(JX_I8, JX_SHAPE(2)), jx_scalar_int(-129)), "-129", "i8");
  CHECK(jx_dtype_of(jx_add(jx_zeros(JX_U8, JX_SHAPE(2)), jx_scalar_int(255))) == JX_U8);
  jx_pool_pop();
}

/* ------------------------------------------------------------ files */
/* NumPy's .npz read back; safetensors round trips every new dtype; .npz
 * refuses bf16 (NumPy has none) */
static void check_io(void) {
  jx_pool_push();
  jx_t g = jx_npz_load("golden/dtype_io.npz", NULL);
  CHECKF(jx_ok(g) && jx_len(g) == 6, "%s", jx_error(g));
  if (jx_ok(g) && jx_len(g) == 6) {
    uint8_t u8[3];
    uint64_t u64[3];
    uint16_t f16[3];
    CHECK(jx_dtype_of(jx_at(g, 0)) == JX_U8 && !jx_read(jx_at(g, 0), JX_U8, u8, 3) && u8[2] == 255);
    CHECK(jx_dtype_of(jx_at(g, 1)) == JX_I8 && jx_dtype_of(jx_at(g, 2)) == JX_I16);
    CHECK(jx_dtype_of(jx_at(g, 3)) == JX_U16 && jx_dtype_of(jx_at(g, 4)) == JX_U64);
    CHECK(!jx_read(jx_at(g, 4), JX_U64, u64, sizeof u64) && u64[1] == (1ull << 53) + 1 &&
          u64[2] == UINT64_MAX);
    CHECK(!jx_read(jx_at(g, 5), JX_F16, f16, sizeof f16) && f16[0] == 0x2e66 && f16[1] == 0xfbff &&
          f16[2] == 0x7c00);
  }
  char dir[] = "/tmp/jx-dtype-io-XXXXXX", st[64], nz[64];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(st, sizeof st, "%s/a.safetensors", dir);
  snprintf(nz, sizeof nz, "%s/a.npz", dir);
  static const jx_dtype dts[7] = {JX_BF16, JX_F16, JX_I8, JX_U8, JX_I16, JX_U16, JX_U64};
  static const char *const names[7] = {"bf16", "f16", "i8", "u8", "i16", "u16", "u64"};
  jx_t arrs[7];
  double v[4] = {-3, 0.5, 200, 1e6};
  for (int i = 0; i < 7; i++) arrs[i] = jx_astype(jx_array(JX_F64, JX_SHAPE(2, 2), v), dts[i]);
  jx_t e = jx_safetensors_save(st, 7, names, arrs);
  CHECKF(!e, "%s", jx_error(e));
  jx_t back = jx_safetensors_load(st, NULL);
  for (int i = 0; i < 7; i++)
    CHECKF(jx_len(back) == 7 && check_same_bits(jx_at(back, i), arrs[i]), "%s", names[i]);
  EXPECT_ERROR(jx_npz_save(nz, 7, names, arrs), "bf16", "npy");
  e = jx_npz_save(nz, 6, names + 1, arrs + 1);
  CHECKF(!e, "%s", jx_error(e));
  back = jx_npz_load(nz, NULL);
  for (int i = 1; i < 7; i++)
    CHECKF(jx_len(back) == 6 && check_same_bits(jx_at(back, i - 1), arrs[i]), "%s", names[i]);
  unlink(st), unlink(nz), rmdir(dir);
  jx_pool_pop();
}

/* ------------------------------------------------------------ promotion */
/* jnp.promote_types with weak types: the table of
 * https://docs.jax.dev/en/latest/type_promotion.html (complex types left
 * out), row and column order below; "i*"/"f*" are the weak int/float
 * (Python scalars), which jx makes weak i32/f32. */
static const char *const pnames[] = {"b1", "u1", "u2", "u4", "u8", "i1", "i2", "i4",
                                     "i8", "bf", "f2", "f4", "f8", "i*", "f*"};
static const char *const ptable[15][15] = {
    {"b1", "u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8", "bf", "f2", "f4", "f8", "i*", "f*"},
    {"u1", "u1", "u2", "u4", "u8", "i2", "i2", "i4", "i8", "bf", "f2", "f4", "f8", "u1", "f*"},
    {"u2", "u2", "u2", "u4", "u8", "i4", "i4", "i4", "i8", "bf", "f2", "f4", "f8", "u2", "f*"},
    {"u4", "u4", "u4", "u4", "u8", "i8", "i8", "i8", "i8", "bf", "f2", "f4", "f8", "u4", "f*"},
    {"u8", "u8", "u8", "u8", "u8", "f*", "f*", "f*", "f*", "bf", "f2", "f4", "f8", "u8", "f*"},
    {"i1", "i2", "i4", "i8", "f*", "i1", "i2", "i4", "i8", "bf", "f2", "f4", "f8", "i1", "f*"},
    {"i2", "i2", "i4", "i8", "f*", "i2", "i2", "i4", "i8", "bf", "f2", "f4", "f8", "i2", "f*"},
    {"i4", "i4", "i4", "i8", "f*", "i4", "i4", "i4", "i8", "bf", "f2", "f4", "f8", "i4", "f*"},
    {"i8", "i8", "i8", "i8", "f*", "i8", "i8", "i8", "i8", "bf", "f2", "f4", "f8", "i8", "f*"},
    {"bf", "bf", "bf", "bf", "bf", "bf", "bf", "bf", "bf", "bf", "f4", "f4", "f8", "bf", "bf"},
    {"f2", "f2", "f2", "f2", "f2", "f2", "f2", "f2", "f2", "f4", "f2", "f4", "f8", "f2", "f2"},
    {"f4", "f4", "f4", "f4", "f4", "f4", "f4", "f4", "f4", "f4", "f4", "f4", "f8", "f4", "f4"},
    {"f8", "f8", "f8", "f8", "f8", "f8", "f8", "f8", "f8", "f8", "f8", "f8", "f8", "f8", "f8"},
    {"i*", "u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8", "bf", "f2", "f4", "f8", "i*", "f*"},
    {"f*", "f*", "f*", "f*", "f*", "f*", "f*", "f*", "f*", "bf", "f2", "f4", "f8", "f*", "f*"},
};
/* JAX's name -> jx's dtype and weakness */
static void pdecode(const char *n, jx_dtype *dt, bool *weak) {
  static const jx_dtype d[15] = {JX_BOOL, JX_U8,   JX_U16, JX_U32, JX_U64, JX_I8,  JX_I16, JX_I32,
                                 JX_I64,  JX_BF16, JX_F16, JX_F32, JX_F64, JX_I32, JX_F32};
  for (int i = 0; i < 15; i++)
    if (!strcmp(n, pnames[i])) *dt = d[i], *weak = i >= 13;
}

/* a value of lattice node i: a strong zero array, or a weak scalar */
static jx_t pvalue(int i) {
  jx_dtype dt;
  bool weak;
  pdecode(pnames[i], &dt, &weak);
  if (weak) return dt == JX_I32 ? jx_scalar_int(1) : jx_scalar(1.0);
  return jx_zeros(dt, JX_SHAPE(2));
}

static void check_promotion(void) {
  int bad = 0;
  for (int i = 0; i < 15; i++)
    for (int j = 0; j < 15; j++) {
      jx_dtype a, b, want;
      bool aw, bw, ww, gw;
      pdecode(pnames[i], &a, &aw);
      pdecode(pnames[j], &b, &bw);
      pdecode(ptable[i][j], &want, &ww);
      jx_dtype got = jx_promote(a, aw, b, bw, &gw);
      /* a weak value of any int (float) dtype is i* (f*); weak bool is b1 */
      jx_dtype a2 = aw ? (a == JX_I32 ? JX_I8 : JX_BF16) : a;
      bool gw2;
      jx_dtype got2 = jx_promote(a2, aw, b, bw, &gw2);
      /* and through an op, end to end (maximum takes every dtype) */
      jx_pool_push();
      jx_t r = jx_maximum(pvalue(i), pvalue(j));
      bool e2e = jx_ok(r) && jx_dtype_of(r) == want && jx_is_weak(r) == ww;
      jx_pool_pop();
      if ((got != want || gw != ww || got2 != want || gw2 != ww || !e2e) && bad++ < 8)
        fprintf(stderr, "promote(%s, %s): %s%s, want %s (op: %s)\n", pnames[i], pnames[j], jx_dtype_name(got),
                gw ? " weak" : "", ptable[i][j], e2e ? "ok" : "differs");
    }
  CHECKF(bad == 0, "%d of 225 promotions differ from JAX's table", bad);
  /* the lattice is symmetric and a join: promote(a, promote(a, b)) = promote(a, b) */
  bool w;
  CHECK(jx_promote(JX_BF16, false, JX_F16, false, &w) == JX_F32 && !w);
  CHECK(jx_promote(JX_U64, false, JX_I8, false, &w) == JX_F32 && w); /* JAX's f*: weak */
  CHECK(jx_promote(JX_BOOL, true, JX_U8, false, &w) == JX_U8 && !w);
  CHECK(jx_promote_types(JX_BF16, JX_F16) == JX_F32 && jx_promote_types(JX_U8, JX_I8) == JX_I16);
  CHECK(jx_promote_types(JX_U16, JX_I16) == JX_I32 && jx_promote_types(JX_U32, JX_I8) == JX_I64);
  CHECK(jx_promote_types(JX_I64, JX_BF16) == JX_BF16 && jx_promote_types(JX_F16, JX_F64) == JX_F64);
  CHECK(jx_promote_types(JX_F32, (jx_dtype)99) == JX_DTYPE_COUNT);
}

/* ------------------------------------------------------------ ops */
static jx_t ints(jx_dtype dt, int n, const double *v) {
  return jx_astype(jx_array(JX_F64, JX_SHAPE(n), v), dt);
}
static double at(jx_t x, int i) {
  double v[64];
  return jx_ok(x) && jx_size(x) <= 64 && !jx_read(x, JX_F64, v, sizeof v) ? v[i] : NAN;
}

/* integer ops compute natively and wrap; comparisons give bool */
static void check_int_ops(void) {
  jx_pool_push();
  double a[] = {127, -128, 100, -1}, b[] = {1, -1, 3, 2};
  jx_t x = ints(JX_I8, 4, a), y = ints(JX_I8, 4, b);
  jx_t s = jx_add(x, y), d = jx_div(x, y), m = jx_mul(x, y);
  CHECK(jx_dtype_of(s) == JX_I8 && at(s, 0) == -128 && at(s, 1) == 127 && at(s, 3) == 1);
  CHECK(jx_dtype_of(d) == JX_F32);                                      /* true division: the default float */
  CHECK(jx_dtype_of(m) == JX_I8 && at(m, 1) == -128 && at(m, 2) == 44); /* -128 * -1, 300 wrap */
  jx_t u = ints(JX_U8, 4, (double[]){0, 255, 16, 200});
  CHECK(at(jx_sub(u, jx_scalar_int(1)), 0) == 255 && at(jx_add(u, u), 1) == 254);
  jx_t u16 = ints(JX_U16, 1, (double[]){65535});
  CHECK(at(jx_mul(u16, u16), 0) == 1); /* 65535^2 mod 2^16, no int overflow */
  uint64_t big[2] = {UINT64_MAX, 1ull << 63}, got[2];
  jx_t u64 = jx_array(JX_U64, JX_SHAPE(2), big);
  CHECK(!jx_read(jx_add(u64, jx_scalar_int(1)), JX_U64, got, sizeof got) && got[0] == 0 &&
        got[1] == (1ull << 63) + 1);
  CHECK(!jx_read(jx_max(u64), JX_U64, got, 8) && got[0] == UINT64_MAX);
  /* shifts: right_shift is logical for unsigned, arithmetic for signed */
  CHECK(at(jx_right_shift(ints(JX_I8, 1, (double[]){-16}), ints(JX_I8, 1, (double[]){2})), 0) == -4);
  CHECK(at(jx_right_shift(ints(JX_U8, 1, (double[]){240}), ints(JX_U8, 1, (double[]){2})), 0) == 60);
  CHECK(at(jx_shift_right_logical(ints(JX_I16, 1, (double[]){-1}), ints(JX_I16, 1, (double[]){1})), 0) ==
        32767);
  CHECK(at(jx_left_shift(ints(JX_U8, 1, (double[]){255}), ints(JX_U8, 1, (double[]){9})), 0) == 0);
  jx_t lt = jx_lt(x, y);
  CHECK(jx_dtype_of(lt) == JX_BOOL && at(lt, 1) == 1 && at(lt, 0) == 0);
  /* sums of small ints are i32 (u32), as jnp.sum; prod wraps in the dtype */
  jx_t sx = jx_sum(x), su = jx_sum(u);
  CHECK(jx_dtype_of(sx) == JX_I32 && at(sx, 0) == 98 && jx_dtype_of(su) == JX_U32 && at(su, 0) == 471);
  CHECK(jx_dtype_of(jx_max(x)) == JX_I8 && at(jx_min(x), 0) == -128);
  CHECK(at(jx_argmax(u, 0, false), 0) == 1);
  jx_t pu = jx_prod(ints(JX_U8, 2, (double[]){16, 17}));
  CHECK(jx_dtype_of(pu) == JX_U32 && at(pu, 0) == 272); /* jnp.prod promotes like jnp.sum */
  jx_pool_pop();
}

/* a body for the reductions, jitted and not */
static jx_t red_body(const jx_t *a, void *u) {
  int k = *(const int *)u;
  return k == 0 ? jx_sum(a[0]) : k == 1 ? jx_max(a[0]) : k == 2 ? jx_mean(a[0]) : jx_argmax(a[0], 0, false);
}

/* bf16/f16 reductions accumulate in f32 and round once: sums of values
 * whose f32 sum is exact equal the exact sum rounded once */
static void check_half_reductions(void) {
  enum { N = 200 };
  jx_dtype dts[2] = {JX_BF16, JX_F16};
  for (int k = 0; k < 2; k++) {
    jx_pool_push();
    uint16_t h[N];
    double exact = 0, mx = -INFINITY;
    int amax = 0;
    for (int i = 0; i < N; i++) {
      double v = (double)(next64() % 2000) / 1000.0 - 0.5; /* |v| < 1.5 */
      h[i] = jx_half_round(dts[k], v);
      double w = jx_half_widen(dts[k], h[i]); /* multiples of 2^-16 (bf16) / 2^-11: exact sums */
      exact += w;
      if (w > mx) mx = w, amax = i;
    }
    jx_t x = half_array(dts[k], N, h);
    jx_t s = jx_sum(x), m = jx_max(x), a = jx_argmax(x, 0, false), mean = jx_mean(x);
    CHECK(jx_dtype_of(s) == dts[k] && bits16(s, 0) == jx_half_round(dts[k], exact));
    CHECK(bits16(m, 0) == jx_half_round(dts[k], mx) && at(a, 0) == amax);
    CHECK(jx_dtype_of(mean) == dts[k] && bits16(mean, 0) == jx_half_round(dts[k], (float)(exact / N)));
    for (int r = 0; r < 4; r++) { /* jit equals eager bit for bit */
      jx_t e = jx_call(jx_fn_new(red_body, 1, &r), &x), j = jx_call(jx_jit(jx_fn_new(red_body, 1, &r)), &x);
      CHECKF(check_same_bits(e, j), "%s reduction %d: jit differs (%s)", jx_dtype_name(dts[k]), r,
             jx_error(j));
    }
    /* NaN wins max; -0 and +0 */
    h[3] = dts[k] == JX_BF16 ? 0x7fc0 : 0x7e00;
    CHECK(isnan(at(jx_max(half_array(dts[k], N, h)), 0)));
    jx_pool_pop();
  }
}

/* a bf16 function's gradient is bf16 (as in JAX), equal under jit; vmap
 * equals the loop */
static jx_t loss_body(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_mul(jx_tanh(a[0]), jx_exp(jx_mul(a[0], jx_scalar(0.5)))));
}
static jx_t row_body(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_sigmoid(jx_sub(a[0], jx_scalar(0.25))));
}

static void check_transforms(void) {
  jx_dtype dts[2] = {JX_BF16, JX_F16};
  for (int k = 0; k < 2; k++) {
    jx_pool_push();
    double v[12];
    for (int i = 0; i < 12; i++) v[i] = (double)i / 6 - 1;
    jx_t x = jx_astype(jx_array(JX_F64, JX_SHAPE(3, 4), v), dts[k]);
    jx_fn *f = jx_fn_new(loss_body, 1, NULL), *g = jx_grad(f, 0);
    jx_t gx = jx_call(g, &x), gj = jx_call(jx_jit(g), &x);
    CHECKF(jx_dtype_of(gx) == dts[k], "grad of a %s function: %s", jx_dtype_name(dts[k]),
           jx_dtype_name(jx_dtype_of(gx)));
    CHECKF(check_same_bits(gx, gj), "%s: jit(grad) differs from grad", jx_dtype_name(dts[k]));
    /* against the f32 gradient, to the 16-bit type's precision */
    jx_t g32 = jx_call(g, (jx_t[]){jx_astype(x, JX_F32)});
    double err = 0, tol = dts[k] == JX_BF16 ? 0.05 : 0.01;
    for (int i = 0; i < 12; i++) err = fmax(err, fabs(at(gx, i) - at(g32, i)) / (1 + fabs(at(g32, i))));
    CHECKF(err < tol, "%s grad vs f32 grad: %g", jx_dtype_name(dts[k]), err);
    jx_fn *vf = jx_vmap(jx_fn_new(row_body, 1, NULL), (const int[]){0}, 0);
    jx_t vx = jx_call(vf, &x), vj = jx_call(jx_jit(vf), &x);
    CHECK(jx_dtype_of(vx) == dts[k] && jx_size(vx) == 3 && check_same_bits(vx, vj));
    for (int r = 0; r < 3; r++) {
      jx_t row = jx_slice(x, (const int64_t[]){r, 0}, (const int64_t[]){r + 1, 4}, NULL);
      jx_t want = jx_call(jx_fn_new(row_body, 1, NULL), (jx_t[]){jx_reshape(row, JX_SHAPE(4))});
      CHECKF(bits16(vx, r) == bits16(want, 0), "%s vmap row %d", jx_dtype_name(dts[k]), r);
    }
    jx_pool_pop();
  }
}

/* every unary and binary op of the public API, and the creation,
 * shape, index and nn functions, at every new dtype, eagerly and under
 * jit and grad: a value or an error value, never a crash; where eager
 * gives a value, jit gives the same bits */
typedef jx_t (*un_op)(jx_t);
static const un_op unary_ops[] = {
    jx_neg,         jx_abs,      jx_exp,         jx_log,     jx_log1p,  jx_expm1,    jx_sqrt,       jx_rsqrt,
    jx_tanh,        jx_sin,      jx_cos,         jx_sigmoid, jx_square, jx_sign,     jx_floor,      jx_relu,
    jx_logical_not, jx_sum,      jx_mean,        jx_max,     jx_min,    jx_erf,      jx_erfc,       jx_erfinv,
    jx_lgamma,      jx_digamma,  jx_tan,         jx_asin,    jx_acos,   jx_atan,     jx_sinh,       jx_cosh,
    jx_asinh,       jx_acosh,    jx_atanh,       jx_log2,    jx_exp2,   jx_ceil,     jx_round,      jx_isnan,
    jx_isinf,       jx_isfinite, jx_bitwise_not, jx_prod,    jx_silu,   jx_softplus, jx_log_sigmoid};
static const bin_op binary_ops[] = {jx_add,
                                    jx_sub,
                                    jx_mul,
                                    jx_div,
                                    jx_pow,
                                    jx_maximum,
                                    jx_minimum,
                                    jx_eq,
                                    jx_ne,
                                    jx_lt,
                                    jx_le,
                                    jx_gt,
                                    jx_ge,
                                    jx_dot,
                                    jx_matmul,
                                    jx_atan2,
                                    jx_remainder,
                                    jx_fmod,
                                    jx_bitwise_and,
                                    jx_bitwise_or,
                                    jx_bitwise_xor,
                                    jx_left_shift,
                                    jx_right_shift,
                                    jx_shift_right_logical,
                                    jx_shift_right_arithmetic};
enum { NUN = sizeof unary_ops / sizeof *unary_ops, NBIN = sizeof binary_ops / sizeof *binary_ops };

static jx_t un_body(const jx_t *a, void *u) { return unary_ops[*(const int *)u](a[0]); }
static jx_t bin_body(const jx_t *a, void *u) { return binary_ops[*(const int *)u](a[0], a[1]); }
static jx_t misc_body(const jx_t *a, void *u) {
  jx_t x = a[0];
  switch (*(const int *)u) {
    case 0: return jx_transpose(x, NULL);
    case 1: return jx_reshape(x, JX_SHAPE(4, 3));
    case 2: return jx_concatenate(2, (jx_t[]){x, x}, 0);
    case 3: return jx_where(jx_gt(x, jx_scalar_int(0)), x, jx_zeros_like(x));
    case 4: return jx_take(x, jx_array(JX_I32, JX_SHAPE(2), (int32_t[]){2, 0}), 0);
    case 5: return jx_cumsum(x, 1);
    case 6: return jx_sort(x, 1);
    case 7: return jx_argsort(x, 1);
    case 8: return jx_argmax(x, 1, false);
    case 9: return jx_softmax(x, 1);
    case 10: return jx_logsumexp(x, 1);
    case 11: return jx_einsum("ij,kj->ik", 2, (jx_t[]){x, x});
    case 12: return jx_clip(x, jx_scalar_int(0), jx_scalar_int(2));
    default: return NULL;
  }
}
enum { NMISC = 13 };

static void probe(jx_body body, int n, int nargs, jx_t *args, const char *what, int *ran) {
  for (int i = 0; i < n; i++) {
    jx_pool_push();
    jx_t e = jx_call(jx_fn_new(body, nargs, &i), args);
    jx_t j = jx_call(jx_jit(jx_fn_new(body, nargs, &i)), args);
    CHECKF(jx_ok(e) == jx_ok(j), "%s %d on %s: eager %s, jit %s", what, i,
           jx_dtype_name(jx_dtype_of(args[0])), jx_error(e), jx_error(j));
    if (jx_ok(e) && jx_ok(j) && jx_is_array(e)) {
      bool same = check_same_bits(e, j);
      /* reductions of floats may add in another order: to rounding */
      if (!same && jx_dtype_is_float(jx_dtype_of(e)) && jx_size(e) == jx_size(j)) {
        double err = 0;
        for (int k = 0; k < jx_size(e) && k < 64; k++)
          err = fmax(err, fabs(at(e, k) - at(j, k)) / (1 + fabs(at(e, k))));
        same = err < 0x1p-7;
      }
      CHECKF(same, "%s %d on %s: jit differs from eager", what, i, jx_dtype_name(jx_dtype_of(args[0])));
      (*ran)++;
    }
    jx_pool_pop();
  }
}

static void check_everything_safe(void) {
  static const jx_dtype dts[7] = {JX_BF16, JX_F16, JX_I8, JX_U8, JX_I16, JX_U16, JX_U64};
  int ran = 0;
  for (int k = 0; k < 7; k++) {
    jx_pool_push();
    double v[12];
    for (int i = 0; i < 12; i++) v[i] = (double)((i * 7) % 12) / 4;
    jx_t x = jx_astype(jx_array(JX_F64, JX_SHAPE(3, 4), v), dts[k]);
    jx_t xx[2] = {x, jx_add(x, jx_scalar_int(1))};
    probe(un_body, NUN, 1, xx, "unary", &ran);
    probe(bin_body, NBIN, 2, xx, "binary", &ran);
    probe(misc_body, NMISC, 1, xx, "misc", &ran);
    /* creation and random: values or errors */
    jx_t key = jx_random_key(0);
    jx_t made[] = {jx_arange(dts[k], 0, 5, 1),
                   jx_linspace(dts[k], 0, 1, 5, true),
                   jx_eye(dts[k], 3, -1, 0),
                   jx_tri(dts[k], 3, -1, 0),
                   jx_random_uniform(key, dts[k], JX_SHAPE(3), 0, 1),
                   jx_random_normal(key, dts[k], JX_SHAPE(3)),
                   jx_glorot_normal(key, dts[k], JX_SHAPE(3, 3))};
    for (size_t i = 0; i < sizeof made / sizeof *made; i++)
      CHECKF(!jx_ok(made[i]) || jx_dtype_of(made[i]) == dts[k], "creation %zu on %s", i,
             jx_dtype_name(dts[k]));
    CHECK(at(jx_arange(dts[k], 0, 5, 1), 4) == 4);
    jx_pool_pop();
  }
  printf("test_dtype: %d (op, dtype) pairs ran eager and jitted with equal results\n", ran);
  CHECK(ran > 300);
}

/* ------------------------------------------------------------ bad input */
static jx_t conv_body(const jx_t *a, void *u) {
  return (void)u, jx_sum(jx_astype(jx_conv(a[0], a[0], NULL, "VALID"), JX_F32));
}

static jx_t matmul_body(const jx_t *a, void *u) { return (void)u, jx_matmul(a[0], a[1]); }

/* a serialized f32 matmul edited to bool (dot_general takes every dtype
 * but bool): loading (or calling) it is an error naming dot_general and
 * bool, not a kernel's crash */
static void check_loaded_jaxpr(void) {
  jx_pool_push();
  char dir[] = "/tmp/jx-dtype-exp-XXXXXX", path[64];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/m.jxp", dir);
  jx_t a = jx_zeros(JX_F32, JX_SHAPE(2, 2));
  jx_t e = jx_export_save(jx_jit(jx_fn_new(matmul_body, 2, NULL)), (jx_t[]){a, a}, path);
  CHECKF(!e, "%s", jx_error(e));
  FILE *f = fopen(path, "rb");
  static char text[1 << 16], out[1 << 17];
  size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0, m = 0;
  if (f) fclose(f);
  text[n] = 0;
  for (size_t i = 0; i < n && m + 5 < sizeof out; i++) /* every f32 -> bool */
    if (!strncmp(text + i, "f32", 3))
      memcpy(out + m, "bool", 4), m += 4, i += 2;
    else
      out[m++] = text[i];
  f = fopen(path, "wb");
  if (f) fwrite(out, 1, m, f), fclose(f);
  jx_fn *g = jx_export_load(path);
  jx_t b = jx_zeros(JX_BOOL, JX_SHAPE(2, 2));
  jx_t r = jx_call(g, (jx_t[]){b, b});
  EXPECT_ERROR(r, "dot_general", "bool");
  unlink(path), rmdir(dir);
  jx_pool_pop();
}

/* constants of the new dtypes in exported C: their values (bf16/f16 as
 * bits), not zeros */
static jx_t const_body(const jx_t *a, void *u) {
  (void)u;
  uint16_t h[3] = {0x3dcd, 0x4020, 0xff80}; /* 0.1, 2.5, -inf */
  uint64_t w[3] = {UINT64_MAX, 7, 1ull << 63};
  int8_t i8[3] = {-128, 5, 127};
  /* each constant meets the traced argument, so it is a buffer of the program */
  jx_t r = jx_astype(jx_add(a[0], jx_array(JX_BF16, JX_SHAPE(3), h)), JX_F32);
  r = jx_add(r, jx_astype(jx_add(jx_astype(a[0], JX_U64), jx_array(JX_U64, JX_SHAPE(3), w)), JX_F32));
  r = jx_add(r, jx_astype(jx_add(jx_astype(a[0], JX_I8), jx_array(JX_I8, JX_SHAPE(3), i8)), JX_F32));
  /* argmax of bf16 (a CALL kernel): compares values, not bit patterns */
  return jx_add(r, jx_astype(jx_argmax(jx_sub(a[0], jx_array(JX_BF16, JX_SHAPE(3), h)), 0, false), JX_F32));
}

static void check_export_consts(void) {
  jx_pool_push();
  char dir[] = "/tmp/jx-dtype-c-XXXXXX", path[80];
  CHECK(mkdtemp(dir) != NULL);
  jx_t x = jx_zeros(JX_BF16, JX_SHAPE(3));
  jx_t e = jx_export_c(jx_jit(jx_fn_new(const_body, 1, NULL)), &x, "consts", dir);
  CHECKF(!e, "%s", jx_error(e));
  snprintf(path, sizeof path, "%s/consts.c", dir);
  FILE *f = fopen(path, "rb");
  static char text[1 << 18];
  size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
  if (f) fclose(f);
  text[n] = 0;
  CHECKF(strstr(text, "0x3dcd") && strstr(text, "0xff80"), "bf16 constant bits missing");
  CHECKF(strstr(text, "18446744073709551615ULL"), "u64 constant missing");
  CHECKF(strstr(text, "-128, 5, 127"), "i8 constant missing");
  CHECKF(strstr(text, "float best = jx_bf16_to_f32(x[0])"), "bf16 argmax compares bits, not values");
  unlink(path);
  snprintf(path, sizeof path, "%s/consts.h", dir);
  unlink(path), rmdir(dir);
  jx_pool_pop();
}

static void check_unsupported(void) {
  jx_pool_push();
  jx_t i8 = jx_zeros(JX_I8, JX_SHAPE(3)), bf = jx_zeros(JX_BF16, JX_SHAPE(2, 2));
  CHECK(jx_dtype_of(jx_exp(i8)) == JX_F32); /* ints promote to the default float, as jnp.exp */
  EXPECT_ERROR(jx_bitwise_and(bf, bf), "bitwise_and", "bf16");
  EXPECT_ERROR(
      jx_conv(jx_zeros(JX_BOOL, JX_SHAPE(1, 1, 3)), jx_zeros(JX_BOOL, JX_SHAPE(1, 1, 2)), NULL, "VALID"),
      "conv_general_dilated", "bool");
  CHECK(jx_dtype_of(jx_matmul(i8, i8)) == JX_I8); /* integer products wrap: tests/test_int_contract.c */
  EXPECT_ERROR(jx_astype(i8, (jx_dtype)99), "astype", "99");
  /* the same error under jit and vmap, not a crash (bf16/f16 and integer
   * convolutions work: tests/test_conv_lowp.c, test_int_contract.c) */
  jx_t b3 = jx_zeros(JX_BOOL, JX_SHAPE(1, 1, 2)), b4 = jx_zeros(JX_BOOL, JX_SHAPE(2, 1, 1, 2));
  EXPECT_ERROR(jx_call(jx_jit(jx_fn_new(conv_body, 1, NULL)), &b3), "conv_general_dilated", "bool");
  EXPECT_ERROR(jx_call(jx_vmap(jx_fn_new(conv_body, 1, NULL), NULL, 0), &b4), "conv_general_dilated", "bool");
  jx_pool_pop();
}

int main(void) {
  check_private_cache("dtype");
  load_golden();
  check_conv_kind("f32_bf16", JX_F32, JX_BF16);
  check_conv_kind("f32_f16", JX_F32, JX_F16);
  check_conv_kind("f64_bf16", JX_F64, JX_BF16);
  check_conv_kind("f64_f16", JX_F64, JX_F16);
  check_arith_golden();
  check_edges();
  check_widen_all();
  check_paths_agree();
  check_int_conversions();
  check_basics();
  check_io();
  check_int_ops();
  check_half_reductions();
  check_transforms();
  check_promotion();
  check_unsupported();
  check_loaded_jaxpr();
  check_export_consts();
  check_everything_safe();
  check_private_cache_remove();
  return check_report("test_dtype");
}
