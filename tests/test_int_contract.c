/* dot_general and convolutions on #19's integer dtypes (i8, u8, i16, u16,
 * u64): products and sums wrap modulo the type's width, as XLA's integer
 * dot and convolution do. Checked against plain loops written here, in
 * uint64 arithmetic reduced to the type's width at the end (a sum modulo
 * 2^64 has the same residue modulo 2^8, 2^16 or 2^32), with values over
 * each type's whole range so that the sums wrap:
 *   - dot_general over contracting dims on either side, batch dims, and
 *     preferred_element_type i32 of i8/u8 (the quantized product: no wrap
 *     at 8 bits);
 *   - convolutions with strides, padding, dilations and feature groups, in
 *     NCHW and NHWC;
 *   - jit bit-equal to eager, vmap equal to the loop;
 *   - jx_export_c renders both, bit-equal to jit. */
#include "check.h"
#include "export_harness.h"

#include <jx.h>

static const jx_dtype dts[] = {JX_I8, JX_U8, JX_I16, JX_U16, JX_U64};
enum { NDT = sizeof dts / sizeof *dts };

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t next_u64(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  uint64_t z = rng;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  return z ^ (z >> 31);
}

static int bits_of(jx_dtype dt) { return 8 * (int)jx_dtype_size(dt); }
static uint64_t mask_of(int bits) { return bits == 64 ? ~0ull : (1ull << bits) - 1; }

/* a random array of dt over the type's whole range; raw[]: each element's
 * value as uint64 (sign-extended for signed types: two's complement) */
static jx_t rand_int(jx_dtype dt, int nd, const int64_t *shape, uint64_t **raw) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= shape[i];
  uint64_t *u = malloc(sizeof(uint64_t) * (size_t)(n ? n : 1));
  const int bits = bits_of(dt);
  const bool sgn = dt == JX_I8 || dt == JX_I16;
  for (int64_t i = 0; i < n; i++) {
    uint64_t v = next_u64() & mask_of(bits);
    if (sgn && (v >> (bits - 1) & 1)) v |= ~mask_of(bits);
    u[i] = v;
  }
  /* through i64 (or u64) bits, converted to dt: two's complement wraps */
  jx_t x = jx_astype(jx_array(dt == JX_U64 ? JX_U64 : JX_I64, nd, shape, u), dt);
  *raw = u;
  return x;
}

/* got (any integer dtype) equals want[] modulo 2^bits */
static bool equals_mod(jx_t got, const uint64_t *want, int64_t n, int bits) {
  if (!jx_ok(got) || jx_size(got) != n) return false;
  uint64_t *g = malloc(sizeof(uint64_t) * (size_t)(n ? n : 1));
  bool ok = !jx_read(got, JX_U64, g, sizeof(uint64_t) * (size_t)(n ? n : 1));
  for (int64_t i = 0; ok && i < n; i++) ok = ((g[i] ^ want[i]) & mask_of(bits)) == 0;
  free(g);
  return ok;
}

/* ------------------------------------------------------------------ dot */
/* lhs [Bt, K, M] (contracting dim 1, batch 0), rhs [Bt, N, K] (contracting
 * 2, batch 0): both operands "transposed" against the plain layout */
enum { BT = 3, DM = 5, DN = 7, DK = 33 };
static const jx_dtype *g_pref;
static jx_t dot_fn(const jx_t *a, void *u) {
  (void)u;
  return jx_dot_general(a[0], a[1], 1, (int[]){1}, (int[]){2}, 1, (int[]){0}, (int[]){0}, g_pref);
}

/* one batch member: lhs [K, M], rhs [N, K] */
static jx_t dot1_fn(const jx_t *a, void *u) {
  (void)u;
  return jx_dot_general(a[0], a[1], 1, (int[]){0}, (int[]){1}, 0, NULL, NULL, NULL);
}

static void dot_ref(const uint64_t *l, const uint64_t *r, uint64_t *out) {
  for (int b = 0; b < BT; b++)
    for (int m = 0; m < DM; m++)
      for (int n = 0; n < DN; n++) {
        uint64_t s = 0;
        for (int k = 0; k < DK; k++) s += l[(b * DK + k) * DM + m] * r[(b * DN + n) * DK + k];
        out[(b * DM + m) * DN + n] = s;
      }
}

static void test_dot(void) {
  for (int d = 0; d < NDT; d++) {
    jx_pool_push();
    const jx_dtype dt = dts[d];
    uint64_t *lr, *rr, want[BT * DM * DN];
    jx_t l = rand_int(dt, 3, (int64_t[]){BT, DK, DM}, &lr), r = rand_int(dt, 3, (int64_t[]){BT, DN, DK}, &rr);
    dot_ref(lr, rr, want);
    g_pref = NULL;
    jx_t got = dot_fn((jx_t[]){l, r}, NULL);
    CHECKF(jx_ok(got) && jx_dtype_of(got) == dt && equals_mod(got, want, BT * DM * DN, bits_of(dt)),
           "dot %s: not the wrapped sum: %s", jx_dtype_name(dt), jx_error(got));
    jx_fn *f = jx_fn_new(dot_fn, 2, NULL);
    CHECKF(check_same_bits(JX_CALL(jx_jit(f), l, r), got), "dot %s: jit differs from eager",
           jx_dtype_name(dt));
    /* vmap of one member's product over the batch dim equals the batched product */
    jx_fn *one = jx_vmap(jx_fn_new(dot1_fn, 2, NULL), (int[]){0, 0}, 0);
    CHECKF(check_same_bits(JX_CALL(one, l, r), got), "dot %s: vmap differs", jx_dtype_name(dt));
    if (dt == JX_I8 || dt == JX_U8 || dt == JX_I16) { /* preferred i32: the sums kept to 32 bits */
      const jx_dtype p = JX_I32;
      g_pref = &p;
      jx_t wide = dot_fn((jx_t[]){l, r}, NULL);
      CHECKF(jx_ok(wide) && jx_dtype_of(wide) == JX_I32 && equals_mod(wide, want, BT * DM * DN, 32),
             "dot %s preferred i32: %s", jx_dtype_name(dt), jx_error(wide));
      CHECKF(check_same_bits(JX_CALL(jx_jit(jx_fn_new(dot_fn, 2, NULL)), l, r), wide),
             "dot %s preferred i32: jit differs", jx_dtype_name(dt));
      g_pref = NULL;
    }
    free(lr), free(rr);
    jx_pool_pop();
  }
}

/* ----------------------------------------------------------------- conv */
typedef struct {
  bool nhwc;
  int64_t stride[2], pad[4], rdil[2];
  int fgc;
} case_t;
static const case_t cases[] = {
    {false, {1, 1}, {0, 0, 0, 0}, {1, 1}, 1},
    {false, {2, 1}, {1, 2, 0, 1}, {1, 2}, 2},
    {true, {1, 2}, {2, 1, 1, 0}, {1, 1}, 1},
    {true, {1, 1}, {1, 1, 1, 1}, {2, 1}, 4},
};
enum { CN = 2, CC = 4, CH = 7, CW = 6, CO = 8, KH = 3, KW = 2 };
static const case_t *g_case;

static jx_t conv_fn(const jx_t *a, void *u) {
  (void)u;
  const case_t *c = g_case;
  return jx_conv_general_dilated(a[0], a[1], c->stride, c->pad, NULL, c->rdil,
                                 c->nhwc ? "NHWC,HWIO,NHWC" : NULL, c->fgc);
}

static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t lo, int64_t hi, int64_t dil) {
  int64_t span = (k - 1) * dil + 1, padded = in + lo + hi;
  return padded < span ? 0 : (padded - span) / s + 1;
}

/* the NCHW result from NCHW x and OIHW w (raw values) */
static void conv_ref(const case_t *c, const uint64_t *x, const uint64_t *w, uint64_t *out, int64_t OH,
                     int64_t OW) {
  const int64_t I = CC / c->fgc, Og = CO / c->fgc;
  for (int64_t n = 0; n < CN; n++)
    for (int64_t o = 0; o < CO; o++)
      for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++) {
          uint64_t s = 0;
          for (int64_t i = 0; i < I; i++)
            for (int64_t kh = 0; kh < KH; kh++)
              for (int64_t kw = 0; kw < KW; kw++) {
                int64_t h = oh * c->stride[0] + kh * c->rdil[0] - c->pad[0];
                int64_t ww = ow * c->stride[1] + kw * c->rdil[1] - c->pad[2];
                if (h < 0 || h >= CH || ww < 0 || ww >= CW) continue;
                int64_t ci = (o / Og) * I + i;
                s += x[((n * CC + ci) * CH + h) * CW + ww] * w[((o * I + i) * KH + kh) * KW + kw];
              }
          out[((n * CO + o) * OH + oh) * OW + ow] = s;
        }
}

static void test_conv_case(jx_dtype dt, const case_t *c, size_t k) {
  g_case = c;
  const int64_t I = CC / c->fgc;
  uint64_t *xr, *wr;
  jx_t x = rand_int(dt, 4, (int64_t[]){CN, CC, CH, CW}, &xr),
       w = rand_int(dt, 4, (int64_t[]){CO, I, KH, KW}, &wr);
  const int64_t OH = out_size(CH, KH, c->stride[0], c->pad[0], c->pad[1], c->rdil[0]);
  const int64_t OW = out_size(CW, KW, c->stride[1], c->pad[2], c->pad[3], c->rdil[1]);
  const int64_t n = CN * CO * OH * OW;
  uint64_t *want = malloc(sizeof(uint64_t) * (size_t)n);
  conv_ref(c, xr, wr, want, OH, OW);
  jx_t xa = c->nhwc ? jx_transpose(x, (int[]){0, 2, 3, 1}) : x;
  jx_t wa = c->nhwc ? jx_transpose(w, (int[]){2, 3, 1, 0}) : w;
  jx_t got = conv_fn((jx_t[]){xa, wa}, NULL);
  jx_t nchw = c->nhwc && jx_ok(got) ? jx_transpose(got, (int[]){0, 3, 1, 2}) : got;
  CHECKF(jx_ok(got) && jx_dtype_of(got) == dt && equals_mod(nchw, want, n, bits_of(dt)),
         "conv %s case %zu: not the wrapped sum: %s", jx_dtype_name(dt), k, jx_error(got));
  jx_fn *f = jx_fn_new(conv_fn, 2, NULL);
  CHECKF(check_same_bits(JX_CALL(jx_jit(f), xa, wa), got), "conv %s case %zu: jit differs from eager",
         jx_dtype_name(dt), k);
  /* vmap over 2 kernels equals the loop */
  jx_t w2 = jx_stack(2, (jx_t[]){wa, jx_neg(wa)}, 0);
  jx_t vy = JX_CALL(jx_vmap(f, (int[]){JX_NONE, 0}, 0), xa, w2);
  jx_t loop = jx_stack(2, (jx_t[]){got, conv_fn((jx_t[]){xa, jx_neg(wa)}, NULL)}, 0);
  CHECKF(check_same_bits(vy, loop), "conv %s case %zu: vmap differs from the loop", jx_dtype_name(dt), k);
  free(xr), free(wr), free(want);
}

static void test_conv(void) {
  for (int d = 0; d < NDT; d++)
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
      jx_pool_push();
      test_conv_case(dts[d], &cases[k], k);
      jx_pool_pop();
    }
}

/* --------------------------------------------------------------- export */
static void test_export(void) {
  char dir[] = "/tmp/jx_int_contract_XXXXXX";
  if (!mkdtemp(dir)) return;
  for (int d = 0; d < NDT; d += 2) {
    jx_pool_push();
    const jx_dtype dt = dts[d];
    uint64_t *r0, *r1, *r2, *r3;
    jx_t dargs[2] = {rand_int(dt, 3, (int64_t[]){BT, DK, DM}, &r0),
                     rand_int(dt, 3, (int64_t[]){BT, DN, DK}, &r1)};
    g_pref = NULL;
    jx_fn *jd = jx_jit(jx_fn_new(dot_fn, 2, NULL));
    char name[32];
    snprintf(name, sizeof name, "dot_%s", jx_dtype_name(dt));
    export_check_bytes(jd, dargs, 2, jx_call(jd, dargs), dir, name);
    g_case = &cases[1];
    jx_t cargs[2] = {rand_int(dt, 4, (int64_t[]){CN, CC, CH, CW}, &r2),
                     rand_int(dt, 4, (int64_t[]){CO, CC / cases[1].fgc, KH, KW}, &r3)};
    jx_fn *jc = jx_jit(jx_fn_new(conv_fn, 2, NULL));
    snprintf(name, sizeof name, "conv_%s", jx_dtype_name(dt));
    export_check_bytes(jc, cargs, 2, jx_call(jc, cargs), dir, name);
    free(r0), free(r1), free(r2), free(r3);
    jx_pool_pop();
  }
  if (!getenv("JX_KEEP_EXPORT")) run_cmd("rm -rf %s", dir);
}

int main(void) {
  check_private_cache("int_contract");
  test_dot();
  test_conv();
  test_export();
  check_private_cache_remove();
  return check_report("test_int_contract");
}
