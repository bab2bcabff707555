/* jax.random in #19's dtypes (src/ops/random.c): bits in u8/u16/u64,
 * uniform/normal in bf16/f16, randint in i8..u64.
 *
 * Golden: tests/golden/random_lowp.txt from gen_random_lowp.py, a NumPy
 * transcription of JAX's prng.py/random.py (threefry_partitionable=True,
 * jx's layout; bf16 rounded by hand), NOT values from running JAX (none is
 * installed here). The u32 rows of the same file use the keys of
 * test_random.c (key(0), whose bits JAX documents, and split(key(0))[1]),
 * so the transcription's bits logic is checked against real JAX values
 * there too. Every golden line is compared bit for bit eagerly, under jit,
 * under vmap over the keys and under jit(vmap); then truncated_normal,
 * gumbel, bernoulli and categorical in bf16/f16 against their definitions
 * and jit, and the error values. */
#include "check.h"

#include <inttypes.h>
#include <jx.h>

enum { MAXL = 256, MAXN = 256 };
typedef struct {
  char op[24], dt[8], p0[32], p1[32];
  uint32_t key[2];
  int n;
  uint64_t want[MAXN];
} line_t;

static line_t lines[MAXL];
static int nlines;

static jx_dtype dtype_named(const char *s) {
  for (int d = 0; d < JX_DTYPE_COUNT; d++)
    if (!strcmp(jx_dtype_name((jx_dtype)d), s)) return (jx_dtype)d;
  return JX_DTYPE_COUNT;
}

static bool read_golden(void) {
  FILE *f = fopen("golden/random_lowp.txt", "r");
  CHECKF(f != NULL, "golden/random_lowp.txt (run from tests/)");
  if (!f) return false;
  char buf[8192];
  while (fgets(buf, sizeof buf, f)) {
    if (buf[0] == '#') continue;
    line_t *l = &lines[nlines];
    int pos = 0;
    if (nlines == MAXL ||
        sscanf(buf, "%23s %7s %" SCNu32 " %" SCNu32 " %31s %31s %d%n", l->op, l->dt, &l->key[0], &l->key[1],
               l->p0, l->p1, &l->n, &pos) != 7 ||
        l->n > MAXN)
      break;
    char *s = buf + pos;
    for (int i = 0; i < l->n; i++) l->want[i] = strtoull(s, &s, 16);
    nlines++;
  }
  fclose(f);
  CHECKF(nlines == 152, "%d golden lines", nlines);
  return nlines == 152;
}

static jx_t draw(const line_t *l, jx_t key) {
  jx_dtype dt = dtype_named(l->dt);
  int64_t n = l->n;
  if (!strcmp(l->op, "bits")) return jx_random_bits_ex(key, dt, 1, &n);
  if (!strcmp(l->op, "uniform")) return jx_random_uniform(key, dt, 1, &n, atof(l->p0), atof(l->p1));
  if (!strcmp(l->op, "normal")) return jx_random_normal(key, dt, 1, &n);
  if (!strcmp(l->op, "truncated_normal"))
    return jx_random_truncated_normal(key, dt, 1, &n, atof(l->p0), atof(l->p1));
  return jx_random_randint(key, dt, 1, &n, strtoll(l->p0, NULL, 10), strtoll(l->p1, NULL, 10));
}

/* the raw bits of x (1-d, the golden's width) equal the golden's */
static bool matches(jx_t x, const line_t *l) {
  jx_dtype dt = dtype_named(l->dt);
  if (!jx_ok(x) || jx_dtype_of(x) != dt || jx_ndim(x) != 1 || jx_shape(x)[0] != l->n) return false;
  size_t w = jx_dtype_size(dt);
  unsigned char raw[MAXN * 8];
  if (jx_read(x, dt, raw, (size_t)l->n * w)) return false;
  int bad = 0;
  for (int i = 0; i < l->n; i++) {
    uint64_t v = 0;
    for (size_t b = 0; b < w; b++) v |= (uint64_t)raw[i * w + b] << (8 * b); /* little-endian host */
    if (v != l->want[i] && bad++ < 3)
      fprintf(stderr, "  %s %s key (%u, %u) %s %s [%d]: got %" PRIx64 ", want %" PRIx64 "\n", l->op, l->dt,
              l->key[0], l->key[1], l->p0, l->p1, i, v, l->want[i]);
  }
  return bad == 0;
}

static jx_t key_of(const line_t *l) { return jx_array(JX_U32, 1, (int64_t[]){2}, l->key); }

/* ------------------------------------------------------ golden, eagerly */
static void test_golden_eager(void) {
  jx_pool_push();
  for (int i = 0; i < nlines; i++) {
    const line_t *l = &lines[i];
    CHECKF(matches(draw(l, key_of(l)), l), "%s %s key (%u, %u) %s %s", l->op, l->dt, l->key[0], l->key[1],
           l->p0, l->p1);
  }
  jx_pool_pop();
}

/* --------------------------- golden under jit, vmap and jit(vmap), at once */
enum { NKEYS = 4 };
static int per_key; /* lines per key: the file is key-major */

static jx_t all_draws(const jx_t *a, void *u) {
  (void)u;
  jx_t out[MAXL];
  for (int i = 0; i < per_key; i++) out[i] = draw(&lines[i], a[0]);
  return jx_tuple(per_key, out);
}

static void test_golden_transforms(void) {
  jx_pool_push();
  per_key = nlines / NKEYS;
  bool layout = per_key * NKEYS == nlines;
  for (int i = 0; layout && i < nlines; i++) {
    const line_t *a = &lines[i], *b = &lines[i % per_key];
    layout = !strcmp(a->op, b->op) && !strcmp(a->dt, b->dt) && !strcmp(a->p0, b->p0) && !strcmp(a->p1, b->p1);
  }
  CHECKF(layout, "golden file is not key-major");
  if (!layout) return jx_pool_pop();
  jx_fn *f = jx_fn_new(all_draws, 1, NULL), *jf = jx_jit(f);
  jx_fn *vf = jx_vmap(f, (int[]){0}, 0), *jvf = jx_jit(vf);
  uint32_t kd[NKEYS * 2];
  for (int k = 0; k < NKEYS; k++)
    kd[2 * k] = lines[k * per_key].key[0], kd[2 * k + 1] = lines[k * per_key].key[1];
  jx_t keys = jx_array(JX_U32, 2, (int64_t[]){NKEYS, 2}, kd);
  for (int k = 0; k < NKEYS; k++) {
    jx_t j = JX_CALL(jf, key_of(&lines[k * per_key]));
    CHECKF(jx_ok(j), "jit: %s", jx_error(j));
    for (int i = 0; jx_ok(j) && i < per_key; i++) {
      const line_t *l = &lines[k * per_key + i];
      CHECKF(matches(jx_at(j, i), l), "jit: %s %s key %d %s %s", l->op, l->dt, k, l->p0, l->p1);
    }
  }
  jx_fn *vs[2] = {vf, jvf};
  const char *names[2] = {"vmap", "jit(vmap)"};
  for (int v = 0; v < 2; v++) {
    jx_t b = JX_CALL(vs[v], keys);
    CHECKF(jx_ok(b), "%s: %s", names[v], jx_error(b));
    for (int i = 0; jx_ok(b) && i < per_key; i++)
      for (int k = 0; k < NKEYS; k++) {
        const line_t *l = &lines[k * per_key + i];
        /* row k by a slice (gather does not take #19's dtypes yet) */
        jx_t x = jx_at(b, i);
        int64_t st[2] = {k, 0}, sp[2] = {k + 1, jx_ok(x) && jx_ndim(x) == 2 ? jx_shape(x)[1] : 0};
        jx_t r = jx_squeeze(jx_slice(x, st, sp, NULL), 0);
        CHECKF(matches(r, l), "%s: %s %s key %d %s %s", names[v], l->op, l->dt, k, l->p0, l->p1);
      }
  }
  jx_fn_free(jvf), jx_fn_free(vf), jx_fn_free(jf), jx_fn_free(f);
  jx_pool_pop();
}

/* ------------------------- the other samplers in bf16/f16, by definition */
static float widen_bf16(uint16_t h) {
  uint32_t b = (uint32_t)h << 16;
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}
static float round_bf16(float x) { /* RNE, finite x */
  uint32_t b;
  memcpy(&b, &x, sizeof b);
  return widen_bf16((uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16));
}
static bool read_bf16(jx_t x, float *dst, int n) {
  uint16_t h[MAXN];
  if (!jx_ok(x) || jx_dtype_of(x) != JX_BF16 || jx_size(x) != n || n > MAXN || jx_read(x, JX_BF16, h, 2u * n))
    return false;
  for (int i = 0; i < n; i++) dst[i] = widen_bf16(h[i]);
  return true;
}

static const line_t *golden(const char *op, const char *dt, const char *p0, const char *p1, int key_index) {
  for (int i = 0, k = 0; i < nlines; i++)
    if (!strcmp(lines[i].op, op) && !strcmp(lines[i].dt, dt) && !strcmp(lines[i].p0, p0) &&
        !strcmp(lines[i].p1, p1) && k++ == key_index)
      return &lines[i];
  return NULL;
}

static bool all_true(jx_t x) { /* every element of a bool array is true */
  jx_t r = jx_all(jx_reshape(x, JX_SHAPE(-1)), 1, (int[]){0}, false);
  return jx_ok(r) && jx_ndim(r) == 0 && jx_item(r) == 1.0;
}

/* the transcription's bits against JAX's own documented outputs (the
 * values test_random.c checks jx's f32 path with): bits(key(0)) and
 * uniform(key(0)), uniform(split(key(0))[1]) from the u32 rows */
static void test_golden_vs_jax(void) {
  const line_t *b0 = golden("bits", "u32", "0", "0", 0), *b3 = golden("bits", "u32", "0", "0", 3);
  CHECK(b0 && b3 && b0->key[0] == 0 && b0->key[1] == 0 && b3->key[0] == 928981903u &&
        b3->key[1] == 3453687069u);
  if (!b0 || !b3) return;
  CHECK(b0->want[0] == 4070199207u);
  CHECK((float)(b0->want[0] >> 9) * 0x1p-23f == 0.9476670026779175f);
  CHECK((float)(b3->want[0] >> 9) * 0x1p-23f == 0.007293820381164551f);
}

static void test_other_samplers(void) {
  jx_pool_push();
  const line_t *g = golden("uniform", "bf16", "0.0", "1.0", 0);
  CHECK(g != NULL);
  if (!g) return jx_pool_pop();
  jx_t key = key_of(g);
  int64_t n = g->n;
  /* bernoulli with a bf16 p draws bf16 uniforms (8-bit words): u < p */
  jx_t b = jx_random_bernoulli(key, 1, &n, jx_astype(jx_scalar(0.3), JX_BF16));
  bool bv[MAXN], ok = jx_ok(b) && jx_dtype_of(b) == JX_BOOL && !jx_read(b, JX_BOOL, bv, (size_t)n);
  for (int i = 0; ok && i < n; i++) ok = bv[i] == (widen_bf16((uint16_t)g->want[i]) < round_bf16(0.3f));
  CHECKF(ok, "bernoulli(bf16 p) == golden bf16 uniform < p");
  /* gumbel bf16: -log(-log(u)), u = max(tiny, uniform) with each op rounded */
  float u[MAXN], gv[MAXN];
  CHECK(read_bf16(jx_random_gumbel(key, JX_BF16, 1, &n), gv, (int)n));
  ok = true;
  for (int i = 0; i < n; i++) {
    u[i] = fmaxf(widen_bf16((uint16_t)g->want[i]), 0x1p-126f);
    float want = -round_bf16(logf(-round_bf16(logf(u[i]))));
    ok &= gv[i] == want || (isnan(gv[i]) && isnan(want));
  }
  CHECKF(ok, "gumbel bf16 == -log(-log(u)) rounded per op");
  /* f16 draws stay in range; categorical on bf16 logits is argmax(gumbel + logits) */
  jx_t t = jx_random_truncated_normal(key, JX_F16, 1, &n, -0.25, 0.25);
  CHECK(jx_ok(t) && jx_item(jx_all(jx_bitwise_and(jx_gt(t, jx_scalar(-0.25)), jx_lt(t, jx_scalar(0.25))), 0,
                                   NULL, false)));
  jx_t logits = jx_astype(jx_reshape(jx_arange(JX_F32, 0, 6, 1), JX_SHAPE(2, 3)), JX_BF16);
  jx_t c = jx_random_categorical(key, logits, 1);
  jx_t want = jx_argmax(jx_add(jx_random_gumbel(key, JX_BF16, JX_SHAPE(2, 3)), logits), 1, false);
  CHECK(jx_ok(c) && jx_ok(want) && all_true(jx_eq(c, want)));
  jx_pool_pop();
}

static jx_t other_draws(const jx_t *a, void *u) {
  (void)u;
  jx_t k = a[0];
  return JX_TUPLE(jx_random_gumbel(k, JX_F16, JX_SHAPE(9)), jx_random_gumbel(k, JX_BF16, JX_SHAPE(9)),
                  jx_random_bernoulli(k, JX_SHAPE(9), jx_astype(jx_scalar(0.7), JX_F16)),
                  jx_random_categorical(k, jx_zeros(JX_BF16, JX_SHAPE(4, 5)), 1),
                  jx_random_truncated_normal(k, JX_BF16, JX_SHAPE(9), -1, 1));
}

static void test_other_jit(void) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(other_draws, 1, NULL), *jf = jx_jit(f);
  jx_t key = jx_random_key(7), e = JX_CALL(f, key), j = JX_CALL(jf, key);
  CHECKF(jx_ok(e) && jx_ok(j), "%s %s", jx_error(e), jx_error(j));
  for (int i = 0; i < 5 && jx_ok(e) && jx_ok(j); i++) {
    jx_t a = jx_at(e, i), b = jx_at(j, i);
    size_t bytes = (size_t)jx_size(a) * jx_dtype_size(jx_dtype_of(a));
    char x[64], y[64];
    CHECKF(jx_dtype_of(a) == jx_dtype_of(b) && bytes <= sizeof x && !jx_read(a, jx_dtype_of(a), x, bytes) &&
               !jx_read(b, jx_dtype_of(a), y, bytes) && !memcmp(x, y, bytes),
           "jit == eager, output %d", i);
  }
  jx_fn_free(jf), jx_fn_free(f);
  jx_pool_pop();
}

/* --------------------------------------------- moments of large draws */
static void test_moments(void) {
  jx_pool_push();
  jx_t key = jx_random_key(2024);
  const jx_dtype halves[2] = {JX_BF16, JX_F16};
  for (int h = 0; h < 2; h++) {
    /* normal in bf16/f16 takes 2^nmant equally likely values,
     * sqrt2 * erf_inv((4k + 1 - 2^(nmant+1)) / 2^(nmant+1)) rounded: their
     * exact mean (not 0: the grid is lopsided) and variance vs 400000 draws */
    int nm = h == 0 ? 7 : 10, nv = 1 << nm;
    double *g = malloc(sizeof *g * (size_t)nv), den = (double)(2 << nm);
    for (int k = 0; k < nv && g; k++) g[k] = (4.0 * k + 1 - den) / den;
    jx_t u = jx_astype(jx_array(JX_F64, 1, (int64_t[]){nv}, g), halves[h]);
    jx_t vals = jx_astype(jx_mul(jx_astype(jx_scalar(M_SQRT2), halves[h]), jx_erfinv(u)), JX_F64);
    double em = jx_item(jx_mean(vals)), ev = jx_item(jx_var(vals, 0, NULL, 0, false));
    free(g);
    jx_t x = jx_astype(jx_random_normal(key, halves[h], JX_SHAPE(400000)), JX_F64);
    double m = jx_item(jx_mean(x)), v = jx_item(jx_var(x, 0, NULL, 0, false));
    CHECKF(fabs(m - em) < 0.008 && fabs(v - ev) < 0.015 && fabs(ev - 1) < 0.05,
           "normal %s: mean %g var %g, exact %g %g", jx_dtype_name(halves[h]), m, v, em, ev);
  }
  /* randint u8 over the whole byte: every value, each ~1/256 */
  jx_t r = jx_random_randint(key, JX_U8, JX_SHAPE(256000), 0, 256);
  uint8_t *b = malloc(256000);
  int count[256] = {0}, lo = 1 << 30, hi = 0;
  if (b && jx_ok(r) && !jx_read(r, JX_U8, b, 256000))
    for (int i = 0; i < 256000; i++) count[b[i]]++;
  for (int i = 0; i < 256; i++) lo = count[i] < lo ? count[i] : lo, hi = count[i] > hi ? count[i] : hi;
  CHECKF(lo > 850 && hi < 1150, "randint u8 counts in [%d, %d], expected ~1000 each", lo, hi);
  free(b);
  /* i8 in [-5, 7): the range and its ends */
  jx_t s = jx_astype(jx_random_randint(key, JX_I8, JX_SHAPE(10000), -5, 7), JX_F64);
  CHECK(jx_item(jx_min(s)) == -5 && jx_item(jx_max(s)) == 6);
  jx_pool_pop();
}

/* ------------------------------------------------------------- errors */
static void quiet(const char *m, void *u) { (void)m, (void)u; }
static void expect_error(jx_t x, const char *op, const char *what) {
  CHECKF(!jx_ok(x) && jx_error(x) && strstr(jx_error(x), op), "%s: expected an error naming %s, got %s", what,
         op, jx_ok(x) ? "success" : jx_error(x));
}

static void test_errors(void) {
  jx_pool_push();
  jx_set_error_handler(quiet, NULL);
  jx_t key = jx_random_key(3);
  expect_error(jx_random_bits_ex(key, JX_I8, JX_SHAPE(2)), "random_bits", "signed dtype");
  expect_error(jx_random_bits_ex(key, JX_BOOL, JX_SHAPE(2)), "random_bits", "bool dtype");
  expect_error(jx_random_bits_ex(key, JX_BF16, JX_SHAPE(2)), "random_bits", "float dtype");
  expect_error(jx_random_bits_ex(key, JX_DTYPE_COUNT, JX_SHAPE(2)), "random_bits", "invalid dtype");
  expect_error(jx_random_bits_ex(key, JX_U8, JX_SHAPE(-1)), "random_bits", "negative dim");
  expect_error(jx_random_bits_ex(jx_astype(key, JX_U16), JX_U8, JX_SHAPE(2)), "random_bits", "u16 key");
  expect_error(jx_random_uniform(key, JX_U8, JX_SHAPE(2), 0, 1), "random_uniform", "u8 dtype");
  expect_error(jx_random_normal(key, JX_BOOL, JX_SHAPE(2)), "random_normal", "bool dtype");
  expect_error(jx_random_truncated_normal(key, JX_I16, JX_SHAPE(2), -1, 1), "random_truncated_normal", "i16");
  expect_error(jx_random_gumbel(key, JX_U64, JX_SHAPE(2)), "random_gumbel", "u64 dtype");
  expect_error(jx_random_randint(key, JX_BOOL, JX_SHAPE(2), 0, 2), "random_randint", "bool dtype");
  expect_error(jx_random_randint(key, JX_F16, JX_SHAPE(2), 0, 2), "random_randint", "f16 dtype");
  expect_error(jx_random_randint(key, JX_BF16, JX_SHAPE(2), 0, 2), "random_randint", "bf16 dtype");
  /* the primitive under the samplers still takes u32 words only */
  expect_error(jx_random_split(jx_astype(key, JX_U8), 2), "random_split", "u8 key");
  jx_set_error_handler(NULL, NULL);
  jx_pool_pop();
}

int main(void) {
  if (read_golden()) {
    test_golden_eager();
    test_golden_transforms();
    test_golden_vs_jax();
    test_other_samplers();
  }
  test_other_jit();
  test_moments();
  test_errors();
  return check_report("random_lowp");
}
