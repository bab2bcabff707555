/* [BF16] dot_general of bf16/f16 operands (#19): products and sums in f32,
 * the result rounded once (RNE) to the operands' dtype, or left in f32
 * (preferred_element_type).
 *
 * The reference is computed in f64 from the same 16-bit inputs (their
 * products are exact in f32 and in f64: 8- or 11-bit significands).
 *  - exact data (small integers times a power of two): every partial sum
 *    is an f32 value too, so the f32 accumulation is exact whatever its
 *    order, and the result must equal the reference rounded once, bit for
 *    bit;
 *  - random data (full significands): the f32 sum of K exact products in
 *    any order (a summation tree of height at most K - 1; FMA of an exact
 *    product is an add) is within gamma(K - 1) * sum |a_k b_k| of the true
 *    sum, gamma(n) = n u / (1 - n u), u = 2^-24 (Higham, "Accuracy and
 *    Stability of Numerical Algorithms", eq. 4.4). A bf16/f16 result must
 *    be the rounding of some value within that bound of the reference: it
 *    lies between the roundings of reference -/+ bound (rounding is
 *    monotone). Magnitudes stay in [2^-4, 4], so no product or partial sum
 *    is subnormal (the AVX512-BF16 instruction flushes those).
 * Golden products from PyTorch (f32 accumulation, one rounding) must match
 * bit for bit. Shapes cover M, N, K off the kernels' tiles (12 x 32, K pairs), K odd,
 * K past one cache block, batch dims and transposed operands; then jit ==
 * eager bitwise, grad (cotangents in the operands' dtype), vmap, the
 * public contractions, promotion, and export (bit-exact on exact data). */
#include "backend/cpu/gemm_kernel.h"
#include "backend/cpu/kernels.h"
#include "check.h"
#include "core/core.h"
#include "export_harness.h"

#include <stdint.h>

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint32_t next32(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (uint32_t)(rng >> 11);
}

/* n 16-bit values of dt: exact ones (i * 2^-3, |i| <= 8), or random ones
 * with full significands, magnitudes in [2^-4, 4) */
static void fill(jx_dtype dt, bool exact, int64_t n, uint16_t *h) {
  for (int64_t i = 0; i < n; i++) {
    double v;
    if (exact) {
      v = ((int)(next32() % 17) - 8) * 0.125;
    } else {
      const double m = 1.0 + (next32() % 1000000) / 1e6; /* [1, 2) */
      v = ldexp(m, (int)(next32() % 6) - 4) * (next32() & 1 ? -1 : 1);
    }
    h[i] = jx_half_round(dt, v);
  }
}

static jx_t arr16(jx_dtype dt, int nd, const int64_t *shape, const uint16_t *h) {
  return jx_array(dt, nd, shape, h);
}

static double *widen_all(jx_dtype dt, int64_t n, const uint16_t *h) {
  double *d = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) d[i] = jx_half_widen(dt, h[i]);
  return d;
}

/* f32 summation bound for k exact products of absolute sum s */
static double gamma_bound(int64_t k, double s) {
  const double u = 0x1p-24, n = (double)(k > 1 ? k - 1 : 0);
  return n * u / (1 - n * u) * s;
}

/* got[i] (a result of dtype odt) against ref[i] +- bound[i] */
static int compare(jx_dtype odt, jx_t got, int64_t n, const double *ref, const double *bnd,
                   const char *what) {
  double *g = malloc(sizeof(double) * (size_t)(n ? n : 1));
  CHECKF(jx_ok(got) && jx_dtype_of(got) == odt && jx_size(got) == n, "%s: %s", what, jx_error(got));
  if (!jx_ok(got) || jx_size(got) != n || jx_read(got, JX_F64, g, sizeof(double) * (size_t)n)) {
    free(g);
    return 1;
  }
  int bad = 0;
  for (int64_t i = 0; i < n && bad < 5; i++) {
    bool ok;
    if (odt == JX_F32) {
      ok = fabs(g[i] - ref[i]) <= bnd[i];
    } else {
      const double lo = jx_half_widen(odt, jx_half_round(odt, ref[i] - bnd[i]));
      const double hi = jx_half_widen(odt, jx_half_round(odt, ref[i] + bnd[i]));
      ok = lo <= g[i] && g[i] <= hi;
    }
    if (!ok) {
      bad++;
      fprintf(stderr, "  %s [%lld]: got %.9g, reference %.9g +- %.3g\n", what, (long long)i, g[i], ref[i],
              bnd[i]);
    }
  }
  CHECKF(bad == 0, "%s: results outside the bound", what);
  free(g);
  return bad;
}

/* One product: lhs [bt, M, K] (or [bt, K, M] when ta), rhs [bt, K, N]
 * ([bt, N, K] when tb), bt = 0: no batch dim. */
typedef struct {
  int64_t bt, M, N, K;
  bool ta, tb;
} shape_t;

static void run_case(jx_dtype dt, bool pref, bool exact, shape_t s) {
  const int64_t B = s.bt ? s.bt : 1, na = B * s.M * s.K, nb = B * s.K * s.N, nc = B * s.M * s.N;
  uint16_t *ha = malloc(2 * (size_t)(na ? na : 1)), *hb = malloc(2 * (size_t)(nb ? nb : 1));
  fill(dt, exact, na, ha), fill(dt, exact, nb, hb);
  double *a = widen_all(dt, na, ha), *b = widen_all(dt, nb, hb);
  double *ref = calloc((size_t)(nc ? nc : 1), sizeof(double)), *bnd = calloc((size_t)(nc ? nc : 1), 8);
  for (int64_t q = 0; q < B; q++)
    for (int64_t i = 0; i < s.M; i++)
      for (int64_t j = 0; j < s.N; j++) {
        double acc = 0, abs = 0;
        for (int64_t k = 0; k < s.K; k++) {
          const double x = a[q * s.M * s.K + (s.ta ? k * s.M + i : i * s.K + k)];
          const double y = b[q * s.K * s.N + (s.tb ? j * s.K + k : k * s.N + j)];
          acc += x * y, abs += fabs(x * y);
        }
        ref[(q * s.M + i) * s.N + j] = acc;
        bnd[(q * s.M + i) * s.N + j] = exact ? 0 : gamma_bound(s.K, abs);
      }
  const int o = s.bt ? 1 : 0;
  int64_t sa[3] = {B, s.ta ? s.K : s.M, s.ta ? s.M : s.K}, sb[3] = {B, s.tb ? s.N : s.K, s.tb ? s.K : s.N};
  jx_pool_push();
  jx_t x = arr16(dt, 2 + o, sa + 1 - o, ha), y = arr16(dt, 2 + o, sb + 1 - o, hb);
  const int lc = o + (s.ta ? 0 : 1), rc = o + (s.tb ? 1 : 0), zero = 0;
  const jx_dtype f32 = JX_F32;
  jx_t r = jx_dot_general(x, y, 1, &lc, &rc, o, &zero, &zero, pref ? &f32 : NULL);
  char what[160];
  snprintf(what, sizeof what, "%s%s %s bt%lld %lldx%lldx%lld%s%s", jx_dtype_name(dt), pref ? "->f32" : "",
           exact ? "exact" : "random", (long long)s.bt, (long long)s.M, (long long)s.N, (long long)s.K,
           s.ta ? " ta" : "", s.tb ? " tb" : "");
  compare(pref ? JX_F32 : dt, r, nc, ref, bnd, what);
  jx_pool_pop();
  free(ha), free(hb), free(a), free(b), free(ref), free(bnd);
}

static void test_shapes(void) {
  static const shape_t shapes[] = {
      {0, 1, 1, 1, 0, 0},       {0, 1, 37, 5, 0, 0},     {0, 7, 1, 9, 0, 0},     {0, 5, 3, 1, 0, 0},
      {0, 13, 33, 17, 0, 0},    {0, 12, 32, 16, 0, 0},   {0, 25, 65, 31, 1, 0},  {0, 25, 65, 31, 0, 1},
      {0, 37, 29, 63, 1, 1},    {0, 50, 70, 1201, 0, 0}, {0, 61, 95, 257, 0, 1}, {3, 14, 35, 11, 0, 0},
      {2, 9, 40, 33, 1, 1},     {4, 1, 20, 7, 0, 0},     {0, 0, 5, 3, 0, 0},     {0, 4, 6, 0, 0, 0},
      {0, 130, 70, 1031, 1, 0}, {0, 5, 1500, 1031, 0, 1} /* two B blocks */};
  const jx_dtype dts[2] = {JX_BF16, JX_F16};
  for (int d = 0; d < 2; d++)
    for (int pref = 0; pref < 2; pref++)
      for (int exact = 0; exact < 2; exact++)
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) run_case(dts[d], pref, exact, shapes[i]);
}

/* ------------------------------------------------------------ golden */
/* golden/dot_lowp_golden.txt (gen_dot_lowp.py): products from PyTorch whose
 * 16-bit result does not depend on the f32 summation order (the generator
 * checks), so each must match bit for bit */
static uint16_t *read_hex(FILE *f, int64_t n) {
  uint16_t *v = malloc(2 * (size_t)n);
  for (int64_t i = 0; i < n; i++) {
    unsigned x = 0;
    if (fscanf(f, "%x", &x) != 1) x = 0xffff;
    v[i] = (uint16_t)x;
  }
  return v;
}

static void test_golden(void) {
  FILE *f = fopen("golden/dot_lowp_golden.txt", "r");
  CHECKF(f != NULL, "golden/dot_lowp_golden.txt (run from tests/)");
  if (!f) return;
  char line[128], name[8];
  int products = 0;
  long long M, K, N;
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#' || sscanf(line, "%7s %lld %lld %lld", name, &M, &K, &N) != 4) continue;
    const jx_dtype dt = strcmp(name, "bf16") ? JX_F16 : JX_BF16;
    uint16_t *a = read_hex(f, M * K), *b = read_hex(f, K * N), *want = read_hex(f, M * N);
    jx_pool_push();
    jx_t r = jx_matmul(arr16(dt, 2, (int64_t[]){M, K}, a), arr16(dt, 2, (int64_t[]){K, N}, b));
    uint16_t got[64] = {0};
    CHECKF(jx_ok(r) && M * N <= 64 && !jx_read(r, dt, got, sizeof got[0] * (size_t)(M * N)) &&
               !memcmp(got, want, 2 * (size_t)(M * N)),
           "golden %s %lldx%lldx%lld differs from PyTorch", name, M, K, N);
    jx_pool_pop();
    free(a), free(b), free(want);
    products++;
  }
  fclose(f);
  CHECKF(products == 6, "%d golden products read", products);
}

/* ------------------------------------------------- jit, grad, vmap */
static jx_t body_dot(const jx_t *a, void *u) {
  const jx_dtype *pref = u;
  const int lc = 1, rc = 0;
  return jx_dot_general(a[0], a[1], 1, &lc, &rc, 0, NULL, NULL, pref);
}
/* a GEMM with a pointwise tail: jit fuses it as the GEMM's epilogue */
static jx_t body_dot_relu(const jx_t *a, void *u) {
  (void)u;
  return jx_maximum(jx_add(jx_matmul(a[0], a[1]), a[2]), jx_scalar(0.0));
}
static jx_t body_sum_dot(const jx_t *a, void *u) { return jx_sum(body_dot(a, u)); }

static jx_t rand_arr(jx_dtype dt, bool exact, int nd, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= shape[i];
  uint16_t *h = malloc(2 * (size_t)(n ? n : 1));
  fill(dt, exact, n, h);
  jx_t x = arr16(dt, nd, shape, h);
  free(h);
  return x;
}

static void test_jit(void) {
  const jx_dtype dts[2] = {JX_BF16, JX_F16}, f32 = JX_F32;
  for (int d = 0; d < 2; d++)
    for (int pref = 0; pref < 2; pref++) {
      jx_pool_push();
      const int64_t sa[2] = {67, 301}, sb[2] = {301, 45}, sc[1] = {45};
      jx_t a = rand_arr(dts[d], false, 2, sa), b = rand_arr(dts[d], false, 2, sb);
      jx_fn *f = jx_fn_new(body_dot, 2, pref ? (void *)&f32 : NULL), *jf = jx_jit(f);
      jx_t e = JX_CALL(f, a, b), j = JX_CALL(jf, a, b);
      CHECKF(check_same_bits(e, j), "%s pref %d: jit differs from eager (%s)", jx_dtype_name(dts[d]), pref,
             jx_error(j));
      if (!pref) {
        jx_t c = rand_arr(dts[d], false, 1, sc);
        jx_fn *g = jx_fn_new(body_dot_relu, 3, NULL), *jg = jx_jit(g);
        jx_t e2 = JX_CALL(g, a, b, c), j2 = JX_CALL(jg, a, b, c);
        CHECKF(check_same_bits(e2, j2), "%s: jit (GEMM + fused epilogue) differs from eager (%s)",
               jx_dtype_name(dts[d]), jx_error(j2));
        CHECK(jx_dtype_of(j2) == dts[d]);
      }
    }
}

/* grad of sum(a . b) with respect to a: ones . b^T, each a row sum of b,
 * exact on exact data; in the operand's dtype with or without pref */
static void test_grad(void) {
  const jx_dtype dts[2] = {JX_BF16, JX_F16}, f32 = JX_F32;
  for (int d = 0; d < 2; d++)
    for (int pref = 0; pref < 2; pref++)
      for (int jit = 0; jit < 2; jit++) {
        jx_pool_push();
        const int64_t sa[2] = {7, 45}, sb[2] = {45, 19};
        jx_t a = rand_arr(dts[d], true, 2, sa), b = rand_arr(dts[d], true, 2, sb);
        jx_fn *f = jx_fn_new(body_sum_dot, 2, pref ? (void *)&f32 : NULL);
        jx_fn *g = jx_grad(f, 0);
        if (jit) g = jx_jit(g);
        jx_t ga = JX_CALL(g, a, b);
        CHECKF(jx_ok(ga) && jx_dtype_of(ga) == dts[d], "grad %s pref %d jit %d: %s (%s)",
               jx_dtype_name(dts[d]), pref, jit, jx_ok(ga) ? jx_dtype_name(jx_dtype_of(ga)) : "error",
               jx_error(ga));
        double bv[45 * 19], ref[7 * 45], zero[7 * 45] = {0};
        if (jx_ok(ga) && !jx_read(b, JX_F64, bv, sizeof bv)) {
          for (int i = 0; i < 7; i++)
            for (int k = 0; k < 45; k++) {
              double s = 0;
              for (int j = 0; j < 19; j++) s += bv[k * 19 + j];
              ref[i * 45 + k] = s;
            }
          compare(dts[d], ga, 7 * 45, ref, zero, "grad");
        }
        jx_pool_pop();
      }
}

/* vmap over the lhs (a bigger GEMM) and over both (a batched one) against
 * the exact reference of each member */
static void test_vmap(void) {
  const jx_dtype dts[2] = {JX_BF16, JX_F16}, f32 = JX_F32;
  for (int d = 0; d < 2; d++)
    for (int variant = 0; variant < 4; variant++) {
      const bool both = variant & 1, pref = variant & 2; /* both batched; preferred f32 */
      jx_pool_push();
      const int64_t sa[3] = {5, 9, 23}, sb2[2] = {23, 37}, sb3[3] = {5, 23, 37};
      jx_t a = rand_arr(dts[d], true, 3, sa);
      jx_t b = both ? rand_arr(dts[d], true, 3, sb3) : rand_arr(dts[d], true, 2, sb2);
      jx_fn *f = jx_fn_new(body_dot, 2, pref ? (void *)&f32 : NULL);
      jx_fn *v = jx_vmap(f, (const int[]){0, both ? 0 : JX_NONE}, 0);
      jx_t r = JX_CALL(v, a, b);
      double av[5 * 9 * 23], bv[5 * 23 * 37], ref[5 * 9 * 37], zero[5 * 9 * 37] = {0};
      if (!jx_read(a, JX_F64, av, sizeof av) && !jx_read(b, JX_F64, bv, (both ? 5 : 1) * 23 * 37 * 8)) {
        for (int q = 0; q < 5; q++)
          for (int i = 0; i < 9; i++)
            for (int j = 0; j < 37; j++) {
              double s = 0;
              for (int k = 0; k < 23; k++)
                s += av[(q * 9 + i) * 23 + k] * bv[(both ? q * 23 * 37 : 0) + k * 37 + j];
              ref[(q * 9 + i) * 37 + j] = s;
            }
        compare(pref ? JX_F32 : dts[d], r, 5 * 9 * 37, ref, zero, both ? "vmap both" : "vmap lhs");
      }
      jx_pool_pop();
    }
}

/* ----------------------------------------- the public contractions */
static void test_public(void) {
  jx_pool_push();
  const int64_t sa[2] = {6, 10}, sb[2] = {10, 4};
  jx_t a = rand_arr(JX_BF16, false, 2, sa), b = rand_arr(JX_BF16, false, 2, sb);
  const int lc = 1, rc = 0;
  jx_t want = jx_dot_general(a, b, 1, &lc, &rc, 0, NULL, NULL, NULL);
  CHECK(jx_ok(want) && jx_dtype_of(want) == JX_BF16);
  CHECK(check_same_bits(jx_matmul(a, b), want));
  CHECK(check_same_bits(jx_dot(a, b), want));
  CHECK(check_same_bits(jx_einsum("ij,jk->ik", 2, (jx_t[]){a, b}), want));
  CHECK(check_same_bits(jx_tensordot(a, b, 1, NULL, NULL), want));
  /* mixed dtypes promote first (jnp.promote_types): bf16 x f32 -> f32,
   * bf16 x f16 -> f32 */
  jx_t bf = jx_astype(b, JX_F32);
  jx_t m = jx_matmul(a, bf);
  CHECK(jx_ok(m) && jx_dtype_of(m) == JX_F32);
  CHECK(check_same_bits(m, jx_matmul(jx_astype(a, JX_F32), bf)));
  jx_t h = jx_matmul(a, jx_astype(b, JX_F16));
  CHECK(jx_ok(h) && jx_dtype_of(h) == JX_F32);
  /* a weak scalar keeps bf16 */
  CHECK(jx_dtype_of(jx_matmul(a, jx_mul(b, jx_scalar(2.0)))) == JX_BF16);
  /* preferred f16 of bf16: computed in f32 (the promoted type), converted */
  const jx_dtype f16 = JX_F16;
  jx_t p = jx_dot_general(a, b, 1, &lc, &rc, 0, NULL, NULL, &f16);
  CHECK(jx_ok(p) && jx_dtype_of(p) == JX_F16);
  jx_pool_pop();
}

/* export: jx_export_c renders bf16/f16 products (f32 sums in k order,
 * rounded once); on exact data every order gives the same sums, so the
 * unit built strict gives jit's bytes. The serialized format refuses
 * preferred_element_type by name. */
static jx_t body_pref(const jx_t *a, void *u) {
  (void)u;
  const jx_dtype f32 = JX_F32;
  const int lc = 1, rc = 0;
  return jx_dot_general(a[0], a[1], 1, &lc, &rc, 0, NULL, NULL, &f32);
}
static jx_t body_bdot(const jx_t *a, void *u) { /* batched, the rhs transposed */
  (void)u;
  return jx_einsum("bik,bjk->bij", 2, a);
}

static void export_matches_jit(jx_fn *f, const jx_t *args, const char *dir, const char *name) {
  jx_fn *jf = jx_jit(f);
  export_check_bytes(jf, args, 2, jx_call(jf, args), dir, name);
}

static void test_export(void) {
  jx_pool_push();
  char dir[] = "/tmp/jx_lowp_XXXXXX";
  if (mkdtemp(dir)) {
    const jx_dtype dts[2] = {JX_BF16, JX_F16};
    for (int d = 0; d < 2; d++) {
      /* 37 columns: a full panel of 32 and a tail; k = 45 */
      jx_t a = rand_arr(dts[d], true, 2, (int64_t[]){9, 45}),
           b = rand_arr(dts[d], true, 2, (int64_t[]){45, 37});
      char name[32];
      snprintf(name, sizeof name, "lowp_%s", d ? "f16" : "bf16");
      export_matches_jit(jx_fn_new(body_dot, 2, NULL), (jx_t[]){a, b}, dir, name);
      snprintf(name, sizeof name, "lowp_pref_%s", d ? "f16" : "bf16");
      export_matches_jit(jx_fn_new(body_pref, 2, NULL), (jx_t[]){a, b}, dir, name);
      jx_t ba = rand_arr(dts[d], true, 3, (int64_t[]){2, 5, 7}),
           bb = rand_arr(dts[d], true, 3, (int64_t[]){2, 6, 7});
      snprintf(name, sizeof name, "lowp_batch_%s", d ? "f16" : "bf16");
      export_matches_jit(jx_fn_new(body_bdot, 2, NULL), (jx_t[]){ba, bb}, dir, name);
    }
    jx_t a = rand_arr(JX_BF16, true, 2, (int64_t[]){3, 4}), b = rand_arr(JX_BF16, true, 2, (int64_t[]){4, 2});
    char path[64];
    snprintf(path, sizeof path, "%s/f.jxe", dir);
    jx_fn *jp = jx_jit(jx_fn_new(body_pref, 2, NULL));
    EXPECT_ERROR(jx_export_save(jp, (jx_t[]){a, b}, path), "dot_general", "preferred_element_type f32");
    remove(path);
    if (!getenv("JX_KEEP_EXPORT")) run_cmd("rm -rf %s", dir);
  }
  jx_pool_pop();
}

int main(void) {
  /* each bf16 GEMM: the f32 one on widened operands, the AVX512-BF16 one
   * (where the CPU has it), then the default */
  printf("AVX512-BF16: %s\n", jx_cpu_has_avx512bf16() ? "yes" : "no (the widened path twice)");
  jx_cpu_gemm_force_half(JX_HALF_WIDEN);
  test_shapes();
  test_golden();
  jx_cpu_gemm_force_half(JX_HALF_AVX512BF16);
  test_shapes();
  test_golden();
  test_jit();
  printf("AMX-BF16: %s\n", jx_cpu_has_amx_bf16() ? "yes" : "no (the widened path again)");
  jx_cpu_gemm_force_half(JX_HALF_AMX);
  test_shapes();
  test_golden();
  test_jit();
  jx_cpu_gemm_force_half(-1);
  test_shapes();
  test_jit();
  test_grad();
  test_vmap();
  test_public();
  test_export();
  return check_report("dot_lowp");
}
