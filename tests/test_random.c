/* jax.random bit for bit (src/ops/random.c).
 *
 *  1. Known answers from JAX itself: its documentation (split/uniform of
 *     key(0)), the Random123 threefry2x32_20 vectors JAX's tests use, and
 *     JAX's documented outputs of normal/truncated_normal initializers
 *     (those pages were generated with the pre-0.5 key layout, so the test
 *     rebuilds that layout's bits from the threefry primitive and checks the
 *     float transforms -- erf_inv, erf, the clamps -- on them).
 *  2. The partitionable layout against an independent C reference of the
 *     counter scheme (bits, split, fold_in, uniform f32/f64 with ranges).
 *  3. Moments of large draws: uniform, normal, bernoulli, categorical vs
 *     softmax, randint range and uniformity, permutations, truncated normal
 *     bounds, gumbel's mean.
 *  4. jit == eager (bitwise), vmap over a batch of keys == a loop, grad
 *     through a function that draws (the draws are constants).
 *  5. Error values naming the op. */
#include "check.h"
#include "core/core.h"

#include <float.h>
#include <jx.h>

/* ------------------------------------------------------------ helpers */
static uint32_t ref_rotl(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }
/* an independent Threefry-2x32-20, written from the Random123 paper */
static void ref_fry(uint32_t k0, uint32_t k1, uint32_t c0, uint32_t c1, uint32_t out[2]) {
  static const int R[8] = {13, 15, 26, 6, 17, 29, 16, 24};
  uint32_t ks[3] = {k0, k1, 0x1BD11BDAu ^ k0 ^ k1};
  uint32_t x0 = c0 + ks[0], x1 = c1 + ks[1];
  for (int r = 0; r < 20; r++) {
    x0 += x1;
    x1 = ref_rotl(x1, R[r % 8]) ^ x0;
    if (r % 4 == 3) {
      int s = r / 4 + 1;
      x0 += ks[s % 3];
      x1 += ks[(s + 1) % 3] + (uint32_t)s;
    }
  }
  out[0] = x0, out[1] = x1;
}

static bool read_u32(jx_t x, uint32_t *dst, size_t n) {
  return jx_ok(x) && jx_size(x) == (int64_t)n && jx_read(x, JX_U32, dst, n * sizeof *dst) == 0;
}
static float item_f32(jx_t x) {
  float f = NAN;
  if (jx_ok(x) && jx_size(x) == 1) jx_read(x, JX_F32, &f, sizeof f);
  return f;
}
/* bitwise equality of two arrays (same dtype, shape, bytes) */
static bool same_bits(jx_t a, jx_t b) {
  if (!jx_ok(a) || !jx_ok(b) || jx_dtype_of(a) != jx_dtype_of(b) || jx_ndim(a) != jx_ndim(b)) return false;
  for (int d = 0; d < jx_ndim(a); d++)
    if (jx_shape(a)[d] != jx_shape(b)[d]) return false;
  size_t n = (size_t)jx_size(a) * jx_dtype_size(jx_dtype_of(a));
  char *x = malloc(n ? n : 1), *y = malloc(n ? n : 1);
  bool ok = !jx_read(a, jx_dtype_of(a), x, n) && !jx_read(b, jx_dtype_of(b), y, n) && !memcmp(x, y, n);
  free(x), free(y);
  return ok;
}
static jx_t row(jx_t x, int64_t i) { return jx_take(x, jx_scalar_int(i), 0); }
static jx_t u32s(int n, const uint32_t *v) { return jx_array(JX_U32, 1, (int64_t[]){n}, v); }

/* threefry2x32 primitive on four u32 arrays: u32[2, ...] */
static jx_t fry(jx_t k0, jx_t k1, jx_t x0, jx_t x1) {
  jx_t in[4] = {k0, k1, x0, x1};
  return jx_bind1(JX_P_threefry2x32, 4, in, &jx_params_none);
}
static jx_t u32c(uint32_t v) { return jx_scalar_of(JX_U32, v); }

/* ------------------------------------------------------ known answers */
static void test_threefry_kat(void) {
  jx_pool_push();
  /* Random123's kat_vectors for threefry2x32_20 (JAX testThreefry2x32) */
  static const uint32_t kat[3][6] = {
      {0, 0, 0, 0, 0x6b200159, 0x99ba4efe},
      {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x1cb996fc, 0xbb002be7},
      {0x13198a2e, 0x03707344, 0x243f6a88, 0x85a308d3, 0xc4923a9c, 0x483df7a0}, /* key, counter (pi) */
  };
  for (int t = 0; t < 3; t++) {
    const uint32_t *v = kat[t];
    uint32_t y[2] = {0, 0}, r[2];
    CHECK(read_u32(fry(u32c(v[0]), u32c(v[1]), u32c(v[2]), u32c(v[3])), y, 2));
    CHECKF(y[0] == v[4] && y[1] == v[5], "KAT %d: %08x %08x", t, y[0], y[1]);
    ref_fry(v[0], v[1], v[2], v[3], r);
    CHECK(r[0] == v[4] && r[1] == v[5]); /* the reference agrees too */
  }
  /* testThreefry2x32Large: many equal counters, threaded kernel */
  enum { N = 200000 };
  jx_t c0 = jx_full(JX_U32, JX_SHAPE(N), 0x243f6a88), c1 = jx_full(JX_U32, JX_SHAPE(N), 0x85a308d3);
  jx_t y = fry(u32c(0x13198a2e), u32c(0x03707344), c0, c1);
  jx_t w0 = jx_take(y, jx_scalar_int(0), 0), w1 = jx_take(y, jx_scalar_int(1), 0);
  CHECK(jx_item(jx_min(jx_astype(jx_eq(w0, jx_astype(jx_scalar_of(JX_I64, 0xc4923a9c), JX_U32)), JX_I32))) ==
        1);
  CHECK(jx_item(jx_min(jx_astype(jx_eq(w1, jx_astype(jx_scalar_of(JX_I64, 0x483df7a0), JX_U32)), JX_I32))) ==
        1);
  jx_pool_pop();
}

static void test_jax_known_answers(void) {
  jx_pool_push();
  uint32_t k[4];
  CHECK(read_u32(jx_random_key(0), k, 2) && k[0] == 0 && k[1] == 0);
  CHECK(read_u32(jx_random_key(0x100000005ull), k, 2) && k[0] == 1 && k[1] == 5);
  /* split(key(0)) */
  jx_t ks = jx_random_split(jx_random_key(0), 2);
  CHECK(jx_ok(ks) && jx_ndim(ks) == 2 && jx_shape(ks)[0] == 2 && jx_shape(ks)[1] == 2);
  CHECKF(read_u32(ks, k, 4) && k[0] == 1797259609u && k[1] == 2579123966u && k[2] == 928981903u &&
             k[3] == 3453687069u,
         "split(key(0)) = [[%u, %u], [%u, %u]]", k[0], k[1], k[2], k[3]);
  /* bits(key(0)) */
  uint32_t b = 0;
  CHECKF(read_u32(jx_random_bits(jx_random_key(0), JX_SCALAR_SHAPE), &b, 1) && b == 4070199207u, "bits %u",
         b);
  /* uniform(key(0)) == 0.947667, and with key, subkey = split(key(0)): 0.00729382 */
  float u = item_f32(jx_random_uniform(jx_random_key(0), JX_F32, JX_SCALAR_SHAPE, 0, 1));
  CHECKF(u == 0.9476670026779175f, "uniform(key(0)) = %.9g", u);
  u = item_f32(jx_random_uniform(row(ks, 1), JX_F32, JX_SCALAR_SHAPE, 0, 1));
  CHECKF(u == 0.007293820381164551f, "uniform(subkey) = %.9g", u);
  jx_pool_pop();
}

/* The pre-0.5 layout (jax_threefry_partitionable=False), rebuilt from the
 * threefry primitive: threefry_2x32(key, iota(2n)) hashes counter pairs
 * (i, n + i) and concatenates the first words, then the second words. */
static jx_t old_fry_words(jx_t key, int64_t n) { /* iota(2n) hashed: u32[2n] */
  jx_t k0 = jx_take(key, jx_scalar_int(0), 0), k1 = jx_take(key, jx_scalar_int(1), 0);
  jx_t i = jx_astype(jx_arange(JX_I64, 0, (double)n, 1), JX_U32);
  jx_t y = fry(k0, k1, i, jx_add(i, jx_astype(jx_scalar_of(JX_I64, n), JX_U32)));
  return jx_reshape(y, JX_SHAPE(2 * n));
}
static jx_t old_split(jx_t key) { return jx_reshape(old_fry_words(key, 2), JX_SHAPE(2, 2)); }
static jx_t old_bits(jx_t key, int64_t n) { /* 32-bit draws, n of them */
  int64_t m = (n + 1) / 2;                  /* odd n: one counter of padding */
  jx_t w = old_fry_words(key, m);
  if (n % 2 == 0) return w;
  /* counts iota(n) padded with 0 to 2m: pairs (i, m + i) with the last counter 0 */
  jx_t k0 = jx_take(key, jx_scalar_int(0), 0), k1 = jx_take(key, jx_scalar_int(1), 0);
  jx_t i = jx_astype(jx_arange(JX_I64, 0, (double)m, 1), JX_U32);
  jx_t hi = jx_astype(jx_arange(JX_I64, (double)m, (double)(2 * m), 1), JX_I64);
  hi = jx_astype(jx_where(jx_lt(hi, jx_scalar_of(JX_I64, n)), hi, jx_zeros(JX_I64, JX_SHAPE(m))), JX_U32);
  jx_t y = jx_reshape(fry(k0, k1, i, hi), JX_SHAPE(2 * m));
  return jx_slice(y, (int64_t[]){0}, (int64_t[]){n}, NULL);
}
/* JAX's float transforms on given bits, with the same primitives random.c uses */
static jx_t uniform_of_bits(jx_t bits, jx_t lo, jx_t hi) {
  jx_t m = jx_bind1(JX_P_shift_right_logical, 2, (jx_t[]){bits, u32c(9)}, &jx_params_none);
  jx_t f = jx_mul(jx_astype(m, JX_F32), jx_scalar_of(JX_F32, 0x1p-23));
  jx_t r = jx_bind1(JX_P_fma, 3, (jx_t[]){f, jx_sub(hi, lo), lo}, &jx_params_none);
  return jx_maximum(lo, r);
}
static jx_t erf_inv(jx_t x) { return jx_bind1(JX_P_erf_inv, 1, &x, &jx_params_none); }
static jx_t jerf(jx_t x) { return jx_bind1(JX_P_erf, 1, &x, &jx_params_none); }
static jx_t normal_of_bits(jx_t bits) {
  jx_t u = uniform_of_bits(bits, jx_scalar_of(JX_F32, nextafterf(-1.0f, 0.0f)), jx_scalar_of(JX_F32, 1));
  return jx_mul(jx_scalar_of(JX_F32, M_SQRT2), erf_inv(u));
}
static void check_f32s(jx_t got, const float *want, int n, int max_ulps, const char *what) {
  float g[16];
  bool ok = jx_ok(got) && jx_size(got) == n && !jx_read(got, JX_F32, g, sizeof g);
  bool read = ok;
  for (int i = 0; read && i < n; i++) {
    int32_t a, b;
    memcpy(&a, &g[i], 4), memcpy(&b, &want[i], 4);
    if (abs(a - b) > max_ulps) {
      fprintf(stderr, "%s[%d]: %.9g vs JAX %.9g (%d ulps)\n", what, i, g[i], want[i], abs(a - b));
      ok = false;
    }
  }
  CHECKF(ok, "%s: %s", what, jx_ok(got) ? "values differ" : jx_error(got));
}

static void test_jax_transforms_old_layout(void) {
  jx_pool_push();
  /* docs of jax.nn.initializers.normal(5.0)(key(42), (2, 3)), f32. Same
   * bits, but this page was not made by XLA:CPU's erf_inv: 5 of 6 values
   * are 1-6 ulps off the CHLO polynomial, however its log1p and Horner
   * steps are rounded, while the truncated_normal page (the same erf_inv,
   * from the same key) and the tutorial draws below match to the bit. So
   * this one is a loose check (another backend's erf_inv, e.g. CUDA's). */
  static const float normal5[6] = {3.0613258f, 5.6129413f, 5.6866574f, -4.063663f, -4.4520254f, 0.63115686f};
  jx_t bits = old_bits(jx_random_key(42), 6);
  check_f32s(jx_mul(normal_of_bits(bits), jx_scalar(5.0)), normal5, 6, 8, "initializers.normal (old layout)");
  /* docs of jax.nn.initializers.truncated_normal(5.0)(key(42), (2, 3)): lower -2, upper 2 */
  static const float tn5[6] = {2.9047365f, 5.2338114f, 5.29852f, -3.836303f, -4.192359f, 0.6022964f};
  jx_t s2 = jx_scalar_of(JX_F32, M_SQRT2), lo = jx_scalar_of(JX_F32, -2), hi = jx_scalar_of(JX_F32, 2);
  jx_t a = jerf(jx_div(lo, s2)), b = jerf(jx_div(hi, s2));
  jx_t tn = jx_mul(s2, erf_inv(uniform_of_bits(bits, a, b)));
  tn = jx_minimum(jx_scalar_of(JX_F32, nextafterf(2.0f, -INFINITY)),
                  jx_maximum(jx_scalar_of(JX_F32, nextafterf(-2.0f, INFINITY)), tn));
  check_f32s(jx_mul(tn, jx_scalar(5.0)), tn5, 6, 0, "initializers.truncated_normal (old layout)");
  /* JAX's "Pseudo random numbers" tutorial: key = PRNGKey(12); three times
   * key, subkey = split(key); normal(subkey) */
  static const float draws[3] = {0.735927939414978f, 1.810187578201294f, 0.11553369462490082f};
  jx_t key = jx_random_key(12);
  float got[3];
  for (int i = 0; i < 3; i++) {
    jx_t ks = old_split(key);
    got[i] = item_f32(normal_of_bits(old_bits(row(ks, 1), 1)));
    key = row(ks, 0);
  }
  check_f32s(jx_array(JX_F32, JX_SHAPE(3), got), draws, 3, 0, "tutorial normal draws (old layout)");
  jx_pool_pop();
}

/* ---------------------------------------------- the primitives' semantics */
static jx_t bind2(jx_prim p, jx_t a, jx_t b) { return jx_bind1(p, 2, (jx_t[]){a, b}, &jx_params_none); }
static jx_t fma3(const jx_t *a, void *u) {
  (void)u;
  return jx_bind1(JX_P_fma, 3, a, &jx_params_none);
}

static void test_primitive_values(void) {
  jx_pool_push();
  uint32_t g[6];
  jx_t a = u32s(4, (uint32_t[]){1, 0x80000001u, 7, 0xffffffffu});
  jx_t s = u32s(4, (uint32_t[]){31, 1, 32, 100});
  CHECK(read_u32(bind2(JX_P_shift_left, a, s), g, 4) && g[0] == 0x80000000u && g[1] == 2 && g[2] == 0 &&
        g[3] == 0);
  CHECK(read_u32(bind2(JX_P_shift_right_logical, a, s), g, 4) && g[0] == 0 && g[1] == 0x40000000u &&
        g[2] == 0 && g[3] == 0);
  CHECK(read_u32(bind2(JX_P_xor, a, u32c(0xffffffffu)), g, 4) && g[0] == 0xfffffffeu && g[3] == 0);
  int32_t v[6];
  jx_t sh =
      bind2(JX_P_shift_right_logical, jx_array(JX_I32, JX_SHAPE(2), (int32_t[]){-8, -1}),
            jx_array(JX_I32, JX_SHAPE(2), (int32_t[]){1, -1})); /* negative amounts shift everything out */
  CHECK(jx_ok(sh) && !jx_read(sh, JX_I32, v, 8) && v[0] == 0x7ffffffc && v[1] == 0);
  jx_t r = bind2(JX_P_rem, jx_array(JX_I32, JX_SHAPE(6), (int32_t[]){7, -7, 7, -7, 5, INT32_MIN}),
                 jx_array(JX_I32, JX_SHAPE(6), (int32_t[]){3, 3, -3, -3, 0, -1}));
  CHECK(jx_ok(r) && !jx_read(r, JX_I32, v, sizeof v) && v[0] == 1 && v[1] == -1 && v[2] == 1 && v[3] == -1 &&
        v[4] == 5 && v[5] == 0);
  CHECK(jx_item(bind2(JX_P_rem, jx_scalar_of(JX_F64, -7.5), jx_scalar_of(JX_F64, 2))) == -1.5);
  /* fma rounds once: (1 + 2^-23)(1 - 2^-23) - 1 = -2^-46, which a*b + c loses; eager and jit */
  jx_t fa[3] = {jx_scalar_of(JX_F32, 1 + 0x1p-23), jx_scalar_of(JX_F32, 1 - 0x1p-23),
                jx_scalar_of(JX_F32, -1)};
  CHECK(jx_item(fma3(fa, NULL)) == -0x1p-46);
  jx_t fa3[3] = {jx_full(JX_F32, JX_SHAPE(3), 1 + 0x1p-23), fa[1], fa[2]};
  jx_fn *ff = jx_fn_new(fma3, 3, NULL), *jf = jx_jit(ff);
  jx_t jr = jx_call(jf, fa3);
  CHECK(jx_ok(jr) && jx_item(jx_max(jr)) == -0x1p-46 && jx_item(jx_min(jr)) == -0x1p-46);
  jx_fn_free(jf), jx_fn_free(ff);
  /* erf / erf_inv: values, edges, round trip (f32 and f64) */
  for (int d = 0; d < 2; d++) {
    jx_dtype t = d ? JX_F64 : JX_F32;
    jx_t x = jx_astype(jx_array(JX_F64, JX_SHAPE(6), (double[]){0, 1, -1, 0.5, -0.999, 0.3}), t);
    double e[6];
    CHECK(!jx_read(erf_inv(x), JX_F64, e, sizeof e));
    CHECK(e[0] == 0 && e[1] == INFINITY && e[2] == -INFINITY);
    CHECK_CLOSE(e[3], 0.47693627620446987, d ? 1e-15 : 2e-7, 0);
    CHECK_CLOSE(e[4], -2.3267537655135246, d ? 1e-14 : 2e-6, 0);
    double back[6];
    CHECK(!jx_read(jerf(erf_inv(x)), JX_F64, back, sizeof back));
    CHECK_CLOSE(back[3], 0.5, d ? 1e-15 : 3e-7, 0);
    CHECK_CLOSE(back[5], 0.3, d ? 1e-15 : 3e-7, 0);
    jx_t y = jx_astype(jx_array(JX_F64, JX_SHAPE(4), (double[]){0, 6, -6, 0.25}), t);
    CHECK(!jx_read(jerf(y), JX_F64, e, 4 * sizeof(double)));
    CHECK(e[0] == 0 && e[1] == 1 && e[2] == -1);
    CHECK_CLOSE(e[3], 0.27632639016823696, d ? 1e-15 : 2e-7, 0);
    CHECK(isnan(jx_item(erf_inv(jx_scalar_of(t, 1.5)))));
  }
  /* argsort: stable, NaN last, -0 == 0 */
  jx_params pa;
  jx_params_init(&pa, JX_PK_ARG);
  pa.arg.dtype = JX_I32;
  jx_t ties = jx_array(JX_I32, JX_SHAPE(5), (int32_t[]){3, 1, 3, 1, -2});
  CHECK(!jx_read(jx_bind1(JX_P_argsort, 1, &ties, &pa), JX_I32, v, 5 * 4) && v[0] == 4 && v[1] == 1 &&
        v[2] == 3 && v[3] == 0 && v[4] == 2);
  jx_t fl = jx_array(JX_F32, JX_SHAPE(5), (float[]){0.0f, NAN, -0.0f, -1.0f, INFINITY});
  CHECK(!jx_read(jx_bind1(JX_P_argsort, 1, &fl, &pa), JX_I32, v, 5 * 4) && v[0] == 3 && v[1] == 0 &&
        v[2] == 2 && v[3] == 4 && v[4] == 1);
  /* long lines take the radix path: compare with a stable insertion sort */
  enum { L = 3000 };
  jx_t big = jx_random_randint(jx_random_key(9), JX_I32, JX_SHAPE(L), -40, 40);
  int32_t keys[L], idx[L], want[L];
  CHECK(!jx_read(big, JX_I32, keys, sizeof keys) &&
        !jx_read(jx_bind1(JX_P_argsort, 1, &big, &pa), JX_I32, idx, sizeof idx));
  for (int i = 0; i < L; i++) {
    int m = i;
    for (; m > 0 && keys[want[m - 1]] > keys[i]; m--) want[m] = want[m - 1];
    want[m] = i;
  }
  CHECK(!memcmp(idx, want, sizeof idx));
  jx_t bigf = jx_astype(big, JX_F64); /* 64-bit keys */
  CHECK(!jx_read(jx_bind1(JX_P_argsort, 1, &bigf, &pa), JX_I32, idx, sizeof idx) &&
        !memcmp(idx, want, sizeof idx));
  jx_pool_pop();
}

/* ----------------------------------- the partitionable layout, by reference */
static void test_layout_reference(void) {
  jx_pool_push();
  const uint32_t K0 = 0x12345678u, K1 = 0x9abcdef0u;
  jx_t key = u32s(2, (uint32_t[]){K0, K1});
  uint32_t got[64], r[2];
  /* bits: element i (row-major) hashes the counter (0, i), words xored */
  CHECK(read_u32(jx_random_bits(key, JX_SHAPE(3, 4)), got, 12));
  bool ok = true;
  for (int i = 0; i < 12; i++) ref_fry(K0, K1, 0, (uint32_t)i, r), ok &= got[i] == (r[0] ^ r[1]);
  CHECK(ok);
  /* split(key, 5)[i] = both words of counter (0, i) */
  CHECK(read_u32(jx_random_split(key, 5), got, 10));
  ok = true;
  for (int i = 0; i < 5; i++)
    ref_fry(K0, K1, 0, (uint32_t)i, r), ok &= got[2 * i] == r[0] && got[2 * i + 1] == r[1];
  CHECK(ok);
  /* fold_in(key, d) = threefry(key, (0, d)) */
  ok = true;
  for (uint32_t d = 0; d < 5; d++) {
    uint32_t dd = d * 0x9E3779B9u;
    ok &= read_u32(jx_random_fold_in(key, dd), got, 2);
    ref_fry(K0, K1, 0, dd, r);
    ok &= got[0] == r[0] && got[1] == r[1];
  }
  CHECK(ok);
  CHECK(read_u32(jx_random_split(key, 0), got, 0) && jx_ndim(jx_random_split(key, 0)) == 2);
  /* uniform f32 in [-3, 5): max(min, fma(f, max - min, min)) in f32 */
  jx_t u = jx_random_uniform(key, JX_F32, JX_SHAPE(20), -3.0, 5.0);
  float f[20];
  CHECK(jx_ok(u) && !jx_read(u, JX_F32, f, sizeof f));
  ok = true;
  for (int i = 0; i < 20; i++) {
    ref_fry(K0, K1, 0, (uint32_t)i, r);
    float x = (float)((r[0] ^ r[1]) >> 9) * 0x1p-23f;
    float want = fmaxf(-3.0f, fmaf(x, 8.0f, -3.0f));
    ok &= f[i] == want;
  }
  CHECK(ok);
  /* uniform f64: 64 bits (w0 << 32 | w1) >> 12 as the mantissa (x64 mode) */
  jx_t u64 = jx_random_uniform(key, JX_F64, JX_SHAPE(20), 0, 1);
  double g[20];
  CHECK(jx_ok(u64) && !jx_read(u64, JX_F64, g, sizeof g));
  ok = true;
  for (int i = 0; i < 20; i++) {
    ref_fry(K0, K1, 0, (uint32_t)i, r);
    uint64_t bits = ((uint64_t)r[0] << 32 | r[1]) >> 12;
    ok &= g[i] == (double)bits * 0x1p-52;
  }
  CHECK(ok);
  /* the key's words count, not only its low word */
  CHECK(!same_bits(jx_random_bits(jx_random_key(1), JX_SHAPE(4)),
                   jx_random_bits(jx_random_key(1ull << 32), JX_SHAPE(4))));
  jx_pool_pop();
}

/* ------------------------------------------------------------- moments */
static void mean_var(jx_t x, double *mean, double *var) {
  jx_t d = jx_astype(x, JX_F64);
  *mean = jx_item(jx_mean(d));
  jx_t c = jx_sub(d, jx_scalar_of(JX_F64, *mean));
  *var = jx_item(jx_mean(jx_mul(c, c)));
}

static void test_moments(void) {
  jx_pool_push();
  enum { N = 1000000 };
  jx_t key = jx_random_key(2024);
  double m, v;
  for (int dt = 0; dt < 2; dt++) {
    jx_dtype t = dt ? JX_F64 : JX_F32;
    const char *tn = jx_dtype_name(t);
    jx_t u = jx_random_uniform(key, t, JX_SHAPE(N), 0, 1);
    mean_var(u, &m, &v);
    CHECKF(fabs(m - 0.5) < 0.002 && fabs(v - 1.0 / 12) < 0.001, "uniform %s: mean %g var %g", tn, m, v);
    CHECK(jx_item(jx_min(u)) >= 0 && jx_item(jx_max(u)) < 1);
    jx_t w = jx_random_uniform(key, t, JX_SHAPE(N), -3, 5);
    mean_var(w, &m, &v);
    CHECKF(fabs(m - 1) < 0.02 && fabs(v - 64.0 / 12) < 0.05, "uniform[-3,5) %s: mean %g var %g", tn, m, v);
    CHECK(jx_item(jx_min(w)) >= -3 && jx_item(jx_max(w)) < 5);
    jx_t z = jx_random_normal(jx_random_fold_in(key, 1), t, JX_SHAPE(N));
    mean_var(z, &m, &v);
    CHECKF(fabs(m) < 0.005 && fabs(v - 1) < 0.01, "normal %s: mean %g var %g", tn, m, v);
    double third = jx_item(jx_mean(jx_astype(jx_mul(z, jx_mul(z, z)), JX_F64)));
    double fourth = jx_item(jx_mean(jx_astype(jx_square(jx_square(z)), JX_F64)));
    CHECKF(fabs(third) < 0.02 && fabs(fourth - 3) < 0.05, "normal %s: 3rd %g 4th %g", tn, third, fourth);
    CHECK(isfinite(jx_item(jx_max(jx_abs(z)))));
    /* truncated normal on (-1, 2): within bounds, mean of the truncated law */
    jx_t tz = jx_random_truncated_normal(jx_random_fold_in(key, 2), t, JX_SHAPE(N), -1, 2);
    CHECK(jx_item(jx_min(tz)) > -1 && jx_item(jx_max(tz)) < 2);
    mean_var(tz, &m, &v);
    /* E = (phi(a) - phi(b)) / (Phi(b) - Phi(a)) for a = -1, b = 2 */
    double pa = exp(-0.5) / sqrt(2 * M_PI), pb = exp(-2.0) / sqrt(2 * M_PI);
    double Z = 0.5 * (erf(2 / M_SQRT2) - erf(-1 / M_SQRT2));
    CHECKF(fabs(m - (pa - pb) / Z) < 0.005, "truncated_normal %s: mean %g want %g", tn, m, (pa - pb) / Z);
    jx_t narrow = jx_random_truncated_normal(key, t, JX_SHAPE(10000), -0.3, 0.3);
    CHECK(jx_item(jx_min(narrow)) > -0.3 && jx_item(jx_max(narrow)) < 0.3);
    /* gumbel: mean = Euler's gamma, variance pi^2 / 6 */
    jx_t gb = jx_random_gumbel(jx_random_fold_in(key, 3), t, JX_SHAPE(N));
    mean_var(gb, &m, &v);
    CHECKF(fabs(m - 0.5772156649) < 0.01 && fabs(v - M_PI * M_PI / 6) < 0.03, "gumbel %s: %g %g", tn, m, v);
  }
  /* bernoulli: rate, p as an array broadcast along a shape, p = 0 and 1 */
  jx_t bern = jx_random_bernoulli(key, JX_SHAPE(N), jx_scalar(0.3));
  CHECK(jx_ok(bern) && jx_dtype_of(bern) == JX_BOOL);
  double rate = jx_item(jx_mean(jx_astype(bern, JX_F64)));
  CHECKF(fabs(rate - 0.3) < 0.003, "bernoulli rate %g", rate);
  jx_t ps = jx_array(JX_F32, JX_SHAPE(4), (float[]){0, 0.25f, 0.9f, 1});
  jx_t bb = jx_random_bernoulli(key, JX_SHAPE(N / 4, 4), ps);
  jx_t rates = jx_mean_axes(jx_astype(bb, JX_F64), 1, (int[]){0}, false);
  double rr[4];
  CHECK(jx_ok(rates) && !jx_read(rates, JX_F64, rr, sizeof rr));
  CHECKF(rr[0] == 0 && fabs(rr[1] - 0.25) < 0.005 && fabs(rr[2] - 0.9) < 0.005 && rr[3] == 1,
         "bernoulli rates %g %g %g %g", rr[0], rr[1], rr[2], rr[3]);
  jx_t own = jx_random_bernoulli(key, -1, NULL, ps); /* p's shape */
  CHECK(jx_ok(own) && jx_ndim(own) == 1 && jx_shape(own)[0] == 4);
  /* categorical: frequencies match softmax(logits); along axis 1 and axis 0 */
  static const float p4[4] = {0.1f, 0.2f, 0.3f, 0.4f};
  jx_t logits = jx_sub(jx_log(jx_array(JX_F32, JX_SHAPE(4), p4)), jx_scalar(42.0)); /* unnormalized */
  enum { M = 400000 };
  jx_t cat = jx_random_categorical(key, jx_broadcast_to(logits, JX_SHAPE(M, 4)), -1);
  CHECK(jx_ok(cat) && jx_dtype_of(cat) == JX_I32 && jx_ndim(cat) == 1 && jx_shape(cat)[0] == M);
  jx_t freq = jx_mean_axes(jx_one_hot(cat, 4), 1, (int[]){0}, false);
  float fr[4];
  CHECK(jx_ok(freq) && !jx_read(freq, JX_F32, fr, sizeof fr));
  bool ok = true;
  for (int i = 0; i < 4; i++) ok &= fabsf(fr[i] - p4[i]) < 0.004f;
  CHECKF(ok, "categorical freqs %g %g %g %g", fr[0], fr[1], fr[2], fr[3]);
  jx_t cat0 = jx_random_categorical(key, jx_transpose(jx_broadcast_to(logits, JX_SHAPE(M, 4)), NULL), 0);
  CHECK(jx_ok(cat0) && jx_shape(cat0)[0] == M);
  freq = jx_mean_axes(jx_one_hot(cat0, 4), 1, (int[]){0}, false);
  CHECK(jx_ok(freq) && !jx_read(freq, JX_F32, fr, sizeof fr));
  ok = true;
  for (int i = 0; i < 4; i++) ok &= fabsf(fr[i] - p4[i]) < 0.004f;
  CHECKF(ok, "categorical axis 0 freqs %g %g %g %g", fr[0], fr[1], fr[2], fr[3]);
  jx_pool_pop();
}

static void test_randint(void) {
  jx_pool_push();
  enum { N = 500000 };
  jx_t key = jx_random_key(7);
  jx_t r = jx_random_randint(key, JX_I32, JX_SHAPE(N), 5, 10);
  CHECK(jx_ok(r) && jx_dtype_of(r) == JX_I32);
  CHECK(jx_item(jx_min(r)) == 5 && jx_item(jx_max(r)) == 9);
  jx_t counts = jx_sum_axes(jx_one_hot(jx_sub(r, jx_scalar_int(5)), 5), 1, (int[]){0}, false);
  float c[5];
  CHECK(jx_ok(counts) && !jx_read(counts, JX_F32, c, sizeof c));
  bool ok = true;
  for (int i = 0; i < 5; i++) ok &= fabsf(c[i] / N - 0.2f) < 0.004f;
  CHECKF(ok, "randint counts %g %g %g %g %g", c[0], c[1], c[2], c[3], c[4]);
  jx_t neg = jx_random_randint(key, JX_I32, JX_SHAPE(N), -7, 3);
  CHECK(jx_item(jx_min(neg)) == -7 && jx_item(jx_max(neg)) == 2);
  double m = jx_item(jx_mean(jx_astype(neg, JX_F64)));
  CHECKF(fabs(m + 2.5) < 0.02, "randint[-7,3) mean %g", m);
  jx_t big = jx_random_randint(key, JX_U32, JX_SHAPE(N), 0, 4000000000ll);
  CHECK(jx_ok(big) && jx_dtype_of(big) == JX_U32 && jx_item(jx_max(big)) < 4e9 &&
        jx_item(jx_max(big)) > 3.9e9);
  jx_t same = jx_random_randint(key, JX_I32, JX_SHAPE(10), 4, 4); /* maxval <= minval: minval */
  CHECK(jx_item(jx_min(same)) == 4 && jx_item(jx_max(same)) == 4);
  /* bounds beyond the dtype clip; maxval past it includes the top value */
  jx_t wide = jx_random_randint(key, JX_I32, JX_SHAPE(N), -(1ll << 40), 1ll << 40);
  CHECK(jx_ok(wide) && jx_item(jx_min(wide)) < -2e9 && jx_item(jx_max(wide)) > 2e9);
  jx_t top = jx_random_randint(key, JX_I32, JX_SHAPE(N), INT32_MAX - 1, 1ll << 33);
  CHECK(jx_item(jx_min(top)) == INT32_MAX - 1 && jx_item(jx_max(top)) == INT32_MAX);
  /* hand check of the first value: ((hi % span) * (2^32 % span) + lo % span) % span */
  jx_t ks = jx_random_split(key, 2);
  uint32_t hb, lb, k[4];
  CHECK(read_u32(ks, k, 4));
  uint32_t w[2];
  ref_fry(k[0], k[1], 0, 0, w), hb = w[0] ^ w[1];
  ref_fry(k[2], k[3], 0, 0, w), lb = w[0] ^ w[1];
  uint32_t span = 1000003, mult = (uint32_t)((65536u % span) * (65536u % span)) % span;
  int32_t want = (int32_t)(((hb % span) * mult + lb % span) % span) - 500;
  jx_t one = jx_random_randint(key, JX_I32, JX_SCALAR_SHAPE, -500, 1000003 - 500);
  CHECKF(jx_item(one) == want, "randint scalar %g want %d", jx_item(one), want);
  jx_pool_pop();
}

static bool is_permutation(jx_t p, int64_t n) {
  if (!jx_ok(p) || jx_size(p) != n) return false;
  int64_t *v = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
  char *seen = calloc((size_t)(n ? n : 1), 1);
  bool ok = !jx_read(p, JX_I64, v, sizeof(int64_t) * (size_t)n);
  for (int64_t i = 0; ok && i < n; i++)
    ok = v[i] >= 0 && v[i] < n && !seen[v[i]], seen[v[i] < 0 || v[i] >= n ? 0 : v[i]] = 1;
  free(v), free(seen);
  return ok;
}

static void test_permutation(void) {
  jx_pool_push();
  jx_t key = jx_random_key(0);
  int64_t sizes[] = {0, 1, 2, 100, 1625, 1626, 100000}; /* 1626+: two sort rounds */
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    jx_t p = jx_random_permutation(key, sizes[i]);
    CHECKF(is_permutation(p, sizes[i]) && jx_dtype_of(p) == JX_I32, "permutation(%lld)", (long long)sizes[i]);
    if (sizes[i] >= 100) {
      jx_t id = jx_arange(JX_I32, 0, (double)sizes[i], 1);
      CHECK(jx_item(jx_sum(jx_astype(jx_eq(p, id), JX_I32))) < sizes[i] / 10);
    }
  }
  /* rows of an array move together; axis 1 too */
  jx_t x = jx_reshape(jx_arange(JX_F32, 0, 30, 1), JX_SHAPE(10, 3));
  jx_t px = jx_random_permute(key, x, 0), p = jx_random_permutation(key, 10);
  CHECK(same_bits(px, jx_take(x, p, 0)));
  jx_t py = jx_random_permute(key, x, -1);
  CHECK(same_bits(py, jx_take(x, jx_random_permutation(key, 3), 1)));
  /* a shuffle is uniform: position of element 0 over many keys */
  enum { T = 4000 };
  jx_t keys = jx_random_split(key, T);
  int counts[5] = {0};
  for (int t = 0; t < T; t++) {
    jx_pool_push();
    jx_t q = jx_random_permutation(row(keys, t), 5);
    int32_t v[5];
    if (!jx_read(q, JX_I32, v, sizeof v))
      for (int j = 0; j < 5; j++)
        if (v[j] == 0) counts[j]++;
    jx_pool_pop();
  }
  bool ok = true;
  for (int j = 0; j < 5; j++) ok &= abs(counts[j] - T / 5) < 120;
  CHECKF(ok, "permutation position counts %d %d %d %d %d", counts[0], counts[1], counts[2], counts[3],
         counts[4]);
  jx_pool_pop();
}

/* --------------------------------------------- jit, vmap, grad of samplers */
static jx_t sampler(const jx_t *a, void *u) {
  (void)u;
  jx_t key = a[0];
  jx_t ks = jx_random_split(key, 4);
  jx_t n = jx_random_normal(row(ks, 0), JX_F32, JX_SHAPE(3, 4));
  jx_t un = jx_random_uniform(jx_random_fold_in(key, 9), JX_F64, JX_SHAPE(5), -2, 3);
  jx_t b = jx_random_bernoulli(row(ks, 1), JX_SHAPE(6), jx_scalar(0.5));
  jx_t r = jx_random_randint(row(ks, 2), JX_I32, JX_SHAPE(7), -3, 11);
  jx_t p = jx_random_permutation(row(ks, 3), 8);
  jx_t c = jx_random_categorical(key, jx_reshape(jx_arange(JX_F32, 0, 6, 1), JX_SHAPE(2, 3)), 1);
  jx_t t = jx_random_truncated_normal(key, JX_F32, JX_SHAPE(4), -0.5, 1.5);
  jx_t bits = jx_random_bits(key, JX_SHAPE(2, 2));
  return JX_TUPLE(n, un, b, r, p, c, t, bits, ks);
}
#define NOUT 9

static void test_jit_vmap(void) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(sampler, 1, NULL);
  jx_fn *jf = jx_jit(f);
  jx_t key = jx_random_key(31);
  jx_t e = JX_CALL(f, key), j = JX_CALL(jf, key);
  CHECKF(jx_ok(e) && jx_ok(j), "sampler: %s %s", jx_error(e), jx_error(j));
  for (int i = 0; i < NOUT && jx_ok(e) && jx_ok(j); i++)
    CHECKF(same_bits(jx_at(e, i), jx_at(j, i)), "jit output %d", i);
  /* vmap over a batch of keys == a loop over them; also jit(vmap) and vmap(jit) */
  enum { B = 5 };
  jx_t keys = jx_random_split(jx_random_key(5), B);
  jx_fn *vf = jx_vmap(f, (int[]){0}, 0), *jvf = jx_jit(vf), *vjf = jx_vmap(jf, (int[]){0}, 0);
  jx_fn *fs[3] = {vf, jvf, vjf};
  const char *names[3] = {"vmap", "jit(vmap)", "vmap(jit)"};
  for (int k = 0; k < 3; k++) {
    jx_t vb = JX_CALL(fs[k], keys);
    CHECKF(jx_ok(vb), "%s: %s", names[k], jx_error(vb));
    if (!jx_ok(vb)) continue;
    for (int i = 0; i < B; i++) {
      jx_t one = JX_CALL(f, row(keys, i));
      for (int o = 0; o < NOUT; o++)
        CHECKF(same_bits(row(jx_at(vb, o), i), jx_at(one, o)), "%s: key %d output %d", names[k], i, o);
    }
  }
  /* keys on another axis: in_axes 1 on a [2, B] key array */
  jx_fn *vf1 = jx_vmap(f, (int[]){1}, 0);
  jx_t vb1 = JX_CALL(vf1, jx_transpose(keys, NULL));
  CHECK(jx_ok(vb1) && same_bits(jx_at(vb1, 0), jx_at(JX_CALL(vf, keys), 0)));
  /* the jaxpr holds the primitive */
  char *jp = jx_make_jaxpr(f, &key);
  CHECK(jp && strstr(jp, "threefry2x32") && strstr(jp, "erf_inv") && strstr(jp, "argsort"));
  free(jp);
  jx_fn_free(vf1), jx_fn_free(vjf), jx_fn_free(jvf), jx_fn_free(vf), jx_fn_free(jf), jx_fn_free(f);
  jx_pool_pop();
}

/* loss(w) = sum(w * noise) + sum(w^2 * u): the draws are constants */
static jx_t noisy_loss(const jx_t *a, void *u) {
  (void)u;
  jx_t key = jx_random_key(3);
  jx_t noise = jx_random_normal(key, JX_F32, JX_SHAPE(4, 3));
  jx_t uu = jx_random_uniform(jx_random_fold_in(key, 1), JX_F32, JX_SHAPE(4, 3), 0, 1);
  return jx_sum(jx_add(jx_mul(a[0], noise), jx_mul(jx_mul(a[0], a[0]), uu)));
}
static jx_t keyed_loss(const jx_t *a, void *u) { /* the key as an argument */
  (void)u;
  jx_t noise = jx_random_truncated_normal(a[1], JX_F32, JX_SHAPE(4, 3), -2, 2);
  return jx_sum(jx_mul(jx_sin(a[0]), noise));
}

static void test_grad(void) {
  jx_pool_push();
  jx_t w = jx_reshape(jx_arange(JX_F32, -3, 3, 0.5), JX_SHAPE(4, 3));
  jx_t key = jx_random_key(3);
  jx_t noise = jx_random_normal(key, JX_F32, JX_SHAPE(4, 3));
  jx_t uu = jx_random_uniform(jx_random_fold_in(key, 1), JX_F32, JX_SHAPE(4, 3), 0, 1);
  jx_t want = jx_add(noise, jx_mul(jx_mul(jx_scalar(2.0), w), uu));
  jx_fn *f = jx_fn_new(noisy_loss, 1, NULL);
  jx_fn *g = jx_grad(f, 0), *jg = jx_jit(g), *jitf = jx_jit(f), *gj = jx_grad(jitf, 0);
  jx_t g1 = JX_CALL(g, w), g2 = JX_CALL(jg, w), g3 = JX_CALL(gj, w);
  CHECKF(jx_ok(g1) && jx_item(jx_max(jx_abs(jx_sub(g1, want)))) < 1e-6, "grad: %s", jx_error(g1));
  CHECKF(jx_ok(g2) && jx_item(jx_max(jx_abs(jx_sub(g2, want)))) < 1e-6, "jit(grad): %s", jx_error(g2));
  CHECKF(jx_ok(g3) && jx_item(jx_max(jx_abs(jx_sub(g3, want)))) < 1e-6, "grad(jit): %s", jx_error(g3));
  /* a key argument next to the differentiated one */
  jx_fn *kf = jx_fn_new(keyed_loss, 2, NULL);
  jx_fn *kg = jx_grad(kf, 0);
  jx_t tn = jx_random_truncated_normal(key, JX_F32, JX_SHAPE(4, 3), -2, 2);
  jx_t kgv = JX_CALL(kg, w, key);
  CHECKF(jx_ok(kgv) && jx_item(jx_max(jx_abs(jx_sub(kgv, jx_mul(jx_cos(w), tn))))) < 1e-6,
         "grad with key arg: %s", jx_error(kgv));
  /* vmap(grad) over keys */
  jx_fn *vkg = jx_vmap(kg, (int[]){JX_NONE, 0}, 0);
  jx_t keys = jx_random_split(key, 3);
  jx_t vg = JX_CALL(vkg, w, keys);
  CHECK(jx_ok(vg) && jx_shape(vg)[0] == 3);
  for (int i = 0; i < 3 && jx_ok(vg); i++) CHECK(same_bits(row(vg, i), JX_CALL(kg, w, row(keys, i))));
  jx_fn_free(vkg), jx_fn_free(kg), jx_fn_free(kf), jx_fn_free(gj), jx_fn_free(jitf), jx_fn_free(jg),
      jx_fn_free(g), jx_fn_free(f);
  jx_pool_pop();
}

/* ---------------------------------------------------------------- errors */
static void quiet(const char *m, void *u) { (void)m, (void)u; }
static void expect_error(jx_t x, const char *op, const char *what) {
  CHECKF(!jx_ok(x) && jx_error(x) && strstr(jx_error(x), op), "%s: expected an error naming %s, got %s", what,
         op, jx_ok(x) ? "success" : jx_error(x));
}

static void test_errors(void) {
  jx_pool_push();
  jx_set_error_handler(quiet, NULL);
  jx_t key = jx_random_key(1);
  expect_error(jx_random_split(jx_zeros(JX_F32, JX_SHAPE(2)), 2), "random_split", "f32 key");
  expect_error(jx_random_split(jx_zeros(JX_U32, JX_SHAPE(3)), 2), "random_split", "u32[3] key");
  expect_error(jx_random_normal(jx_random_split(key, 2), JX_F32, JX_SHAPE(2)), "random_normal",
               "a batch of keys");
  expect_error(jx_random_split(key, -1), "random_split", "negative num");
  expect_error(jx_random_uniform(key, JX_F32, JX_SHAPE(-2), 0, 1), "random_uniform", "negative dim");
  expect_error(jx_random_uniform(key, JX_I32, JX_SHAPE(2), 0, 1), "random_uniform", "int dtype");
  expect_error(jx_random_bits(key, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}), "random_bits", "rank 9");
  expect_error(jx_random_normal(key, JX_BOOL, JX_SHAPE(2)), "random_normal", "bool dtype");
  expect_error(jx_random_randint(key, JX_BOOL, JX_SHAPE(2), 0, 5), "random_randint", "bool dtype");
  expect_error(jx_random_randint(key, JX_F32, JX_SHAPE(2), 0, 5), "random_randint", "float dtype");
  expect_error(jx_random_bernoulli(key, JX_SHAPE(2), jx_scalar_int(1)), "random_bernoulli", "int p");
  expect_error(jx_random_bernoulli(key, JX_SHAPE(2), jx_zeros(JX_F32, JX_SHAPE(3))), "random_bernoulli",
               "p shape");
  expect_error(jx_random_categorical(key, jx_zeros(JX_F32, JX_SHAPE(3)), 1), "random_categorical", "axis");
  expect_error(jx_random_categorical(key, jx_zeros(JX_F32, JX_SHAPE(3, 0)), 1), "random_categorical",
               "empty");
  expect_error(jx_random_truncated_normal(key, JX_F32, JX_SHAPE(2), 1, -1), "random_truncated_normal",
               "bounds");
  expect_error(jx_random_permutation(key, -3), "random_permutation", "negative n");
  expect_error(jx_random_permute(key, jx_scalar(1.0), 0), "random_permute", "0-d array");
  expect_error(jx_random_fold_in(jx_error_new("upstream"), 3), "upstream", "error propagates");
  /* the primitives' own checks */
  expect_error(fry(u32c(1), jx_scalar_of(JX_I32, 1), u32c(0), u32c(0)), "threefry2x32", "i32 operand");
  expect_error(jx_bind1(JX_P_xor, 2, (jx_t[]){jx_zeros(JX_U32, JX_SHAPE(2)), jx_zeros(JX_U32, JX_SHAPE(3))},
                        &jx_params_none),
               "xor", "shape mismatch");
  expect_error(jx_bind1(JX_P_shift_left, 2,
                        (jx_t[]){jx_zeros(JX_F32, JX_SHAPE(2)), jx_zeros(JX_F32, JX_SHAPE(2))},
                        &jx_params_none),
               "shift_left", "float shift");
  jx_set_error_handler(NULL, NULL);
  jx_pool_pop();
}

int main(void) {
  test_threefry_kat();
  test_jax_known_answers();
  test_jax_transforms_old_layout();
  test_primitive_values();
  test_layout_reference();
  test_moments();
  test_randint();
  test_permutation();
  test_jit_vmap();
  test_grad();
  test_errors();
  return check_report("random");
}
