/* Issue #18's elementwise math: accuracy against mpmath references, and
 * the behaviour of the composed ops under the transformations.
 *
 * Accuracy. golden/math_ref.txt (from golden/gen_math.py) holds points x
 * (f32 numbers) and each function's value correctly rounded to f64 by
 * mpmath at 50 digits. Each function runs eagerly and under jit (generated
 * code) at f64 and f32; the error is |got - ref| in ulps of the reference
 * rounded to the result dtype (so at f64, where the reference is already
 * rounded, 0 means correctly rounded at every point). The bounds in FNS
 * are the measured maxima on this machine (glibc 2.36, x86-64), stated so
 * that a regression fails:
 *
 *            f64  f32              f64  f32              f64  f32
 *   erf      0    2.7    tan       0    0.54   asinh     0    1.2
 *   erfc     0    1.6    asin      0    0.54   acosh     1    1.1
 *   erfinv   3    2.6    acos      0    0.66   atanh     1    1.4
 *   lgamma   2    2.5    atan      0    0.52   exp2      0    0.50
 *   digamma  25   0.49   sinh      0    0.97   log2      1    1.1
 *                        cosh      0    0.66   atan2     1    1.1
 *
 * f32 erf and erfinv are XLA's approximations (what JAX computes); the
 * rest are libm's, and digamma is jx's own (scalar_ops.h): its f64 error
 * comes from the cancellation in psi(x) = psi(1 - x) - pi/tan(pi x) for
 * x < 0 between the poles. lgamma and digamma are measured
 * where |value| >= 0.1: next to their zeros an ulp of the value measures
 * nothing (gen_math.py leaves those points out). */
#include "check.h"
#include "compile/compile.h"
#include "jx.h"

#include <math.h>

typedef jx_t (*unop)(jx_t);
typedef struct {
  const char *name;
  unop f1;
  jx_t (*f2)(jx_t, jx_t);
  double max_ulp64, max_ulp32; /* the stated bounds */
} fn_def;

static const fn_def FNS[] = {
    {"erf", jx_erf, NULL, 0, 3},          {"erfc", jx_erfc, NULL, 0, 2},
    {"erfinv", jx_erfinv, NULL, 3, 3},    {"lgamma", jx_lgamma, NULL, 2, 3},
    {"digamma", jx_digamma, NULL, 25, 1}, {"tan", jx_tan, NULL, 0, 1},
    {"asin", jx_asin, NULL, 0, 1},        {"acos", jx_acos, NULL, 0, 1},
    {"atan", jx_atan, NULL, 0, 1},        {"sinh", jx_sinh, NULL, 0, 1},
    {"cosh", jx_cosh, NULL, 0, 1},        {"asinh", jx_asinh, NULL, 0, 1.5},
    {"acosh", jx_acosh, NULL, 1, 1.5},    {"atanh", jx_atanh, NULL, 1, 1.5},
    {"exp2", jx_exp2, NULL, 0, 1},        {"log2", jx_log2, NULL, 1, 1.5},
    {"atan2", NULL, jx_atan2, 1, 1.5},
};
enum { NFN = sizeof FNS / sizeof FNS[0], MAXPTS = 4096 };

typedef struct {
  int n;
  double x[MAXPTS], y[MAXPTS], ref[MAXPTS];
} points;
static points PTS[NFN];

static bool load_refs(void) {
  FILE *f = fopen("golden/math_ref.txt", "r");
  CHECKF(f != NULL, "cannot open golden/math_ref.txt (run from tests/)");
  if (!f) return false;
  char line[512], name[32], a[64], b[64], c[64];
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#') continue;
    int k = sscanf(line, "%31s %63s %63s %63s", name, a, b, c);
    for (int i = 0; i < NFN; i++) {
      if (strcmp(FNS[i].name, name) || PTS[i].n == MAXPTS) continue;
      points *p = &PTS[i];
      p->x[p->n] = strtod(a, NULL);
      p->y[p->n] = k == 4 ? strtod(b, NULL) : 0;
      p->ref[p->n] = strtod(k == 4 ? c : b, NULL);
      p->n++;
    }
  }
  fclose(f);
  return true;
}

/* |got - ref| in ulps of ref rounded to the dtype; 0 when both are the same
 * NaN or infinity, a large number when only one is */
static double ulps(double got, double ref, bool f32) {
  if (isnan(ref) || isnan(got)) return isnan(ref) && isnan(got) ? 0 : 1e30;
  if (isinf(ref) || isinf(got)) return got == ref ? 0 : 1e30;
  double r = f32 ? (double)(float)fabs(ref) : fabs(ref);
  double u = f32 ? (double)nextafterf((float)r, INFINITY) - r : nextafter(r, INFINITY) - r;
  return fabs(got - ref) / u;
}

static const fn_def *cur;
static jx_t body(const jx_t *a, void *u) {
  (void)u;
  return cur->f1 ? cur->f1(a[0]) : cur->f2(a[0], a[1]);
}

/* max ulp error of function i at dtype dt, eager (jit = false) or jitted */
static double measure(int i, jx_dtype dt, bool jit, double *worst_x) {
  const points *p = &PTS[i];
  jx_pool_push();
  cur = &FNS[i];
  jx_t x = jx_astype(jx_array(JX_F64, JX_SHAPE(p->n), p->x), dt);
  jx_t y = jx_astype(jx_array(JX_F64, JX_SHAPE(p->n), p->y), dt);
  jx_fn *f = jx_fn_new(body, cur->f1 ? 1 : 2, NULL);
  jx_t r = jit ? JX_CALL(jx_jit(f), x, y) : JX_CALL(f, x, y);
  double *got = malloc(sizeof(double) * (size_t)p->n), worst = 0;
  CHECKF(jx_ok(r) && jx_read(r, JX_F64, got, sizeof(double) * (size_t)p->n) == 0, "%s: %s", cur->name,
         jx_error(r));
  bool is_gamma = !strcmp(cur->name, "lgamma") || !strcmp(cur->name, "digamma");
  for (int k = 0; k < p->n && jx_ok(r); k++) {
    if (is_gamma && fabs(p->ref[k]) < 0.1) continue;
    double e = ulps(got[k], p->ref[k], dt == JX_F32);
    if (e > worst) worst = e, *worst_x = p->x[k];
  }
  free(got);
  jx_pool_pop();
  return worst;
}

static void test_accuracy(void) {
  if (!load_refs()) return;
  printf("%-8s %6s %10s %10s   (max ulp error vs mpmath; eager = jit)\n", "fn", "points", "f64", "f32");
  for (int i = 0; i < NFN; i++) {
    CHECKF(PTS[i].n > 100, "%s: only %d reference points", FNS[i].name, PTS[i].n);
    double w64, w32, e64 = measure(i, JX_F64, false, &w64), e32 = measure(i, JX_F32, false, &w32);
    double j64, j32, g64 = measure(i, JX_F64, true, &j64), g32 = measure(i, JX_F32, true, &j32);
    printf("%-8s %6d %10.3g %10.3g\n", FNS[i].name, PTS[i].n, e64, e32);
    CHECKF(e64 <= FNS[i].max_ulp64, "%s f64: %g ulp at x = %a (bound %g)", FNS[i].name, e64, w64,
           FNS[i].max_ulp64);
    CHECKF(e32 <= FNS[i].max_ulp32, "%s f32: %g ulp at x = %a (bound %g)", FNS[i].name, e32, w32,
           FNS[i].max_ulp32);
    /* generated code calls the same scalar functions: the same results */
    CHECKF(g64 == e64 && g32 == e32, "%s: jit error %g/%g ulp, eager %g/%g", FNS[i].name, g64, g32, e64, e32);
  }
}

/* ------------------------------------------- composed ops, derivatives */
static double grad_at(jx_body f, double x, void *u) {
  jx_pool_push();
  jx_fn *g = jx_grad(jx_fn_new(f, 1, u), 0);
  double r = jx_item(JX_CALL(g, jx_scalar_of(JX_F64, x)));
  jx_pool_pop();
  return r;
}
static double value_at(jx_body f, double x, void *u) {
  jx_pool_push();
  double r = jx_item(f((jx_t[]){jx_scalar_of(JX_F64, x)}, u));
  jx_pool_pop();
  return r;
}
/* grad vs central differences at x (a smooth point of f) */
static void check_grad(const char *what, jx_body f, double x, void *u) {
  double h = 1e-6, fd = (value_at(f, x + h, u) - value_at(f, x - h, u)) / (2 * h), g = grad_at(f, x, u);
  CHECKF(check_close(g, fd, 1e-6, 1e-8), "%s at %g: grad %.12g, differences %.12g", what, x, g, fd);
}
static jx_t f_ipow(const jx_t *a, void *u) { return jx_integer_pow(a[0], *(int *)u); }
static jx_t f_rem_a(const jx_t *a, void *u) { return jx_remainder(a[0], jx_scalar_of(JX_F64, *(double *)u)); }
static jx_t f_rem_b(const jx_t *a, void *u) { return jx_remainder(jx_scalar_of(JX_F64, *(double *)u), a[0]); }
static jx_t f_clip(const jx_t *a, void *u) {
  (void)u;
  return jx_clip(jx_mul(a[0], a[0]), jx_scalar(0.5), jx_scalar(4.0));
}
static jx_t f_atan2(const jx_t *a, void *u) { return jx_atan2(jx_scalar_of(JX_F64, *(double *)u), a[0]); }
static jx_t f_log2(const jx_t *a, void *u) {
  (void)u;
  return jx_log2(a[0]);
}

static void test_derivatives(void) {
  for (int n = -3; n <= 5; n++) {
    check_grad("integer_pow", f_ipow, 1.7, &n);
    check_grad("integer_pow", f_ipow, -0.6, &n);
  }
  int n3 = 3; /* JAX's rule: n x^(n-1) */
  CHECK_CLOSE(grad_at(f_ipow, 2.0, &n3), 12.0, 0, 0);
  int n0 = 0;
  CHECK(grad_at(f_ipow, 2.0, &n0) == 0);
  double b = -2.0, a = 7.5;
  check_grad("remainder (dividend)", f_rem_a, 7.3, &b);
  check_grad("remainder (divisor)", f_rem_b, -2.2, &a);
  check_grad("remainder (divisor)", f_rem_b, 2.2, &a);
  check_grad("clip inside", f_clip, 1.5, NULL);
  CHECK(grad_at(f_clip, 3.0, NULL) == 0 && grad_at(f_clip, 0.1, NULL) == 0);
  double y = -1.3;
  check_grad("atan2", f_atan2, 0.7, &y);
  check_grad("atan2", f_atan2, -0.7, &y);
  check_grad("log2", f_log2, 3.1, NULL);
}

/* A function of every composed op, jitted: compiled code, and equal to eager */
static jx_t f_mix(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0], i = a[1];
  jx_t r = jx_add(jx_remainder(x, jx_scalar(1.5)), jx_clip(x, jx_scalar(-1.0), NULL));
  r = jx_add(r, jx_integer_pow(x, -3));
  r = jx_where(jx_isfinite(r), r, jx_fmod(x, jx_scalar(0.7)));
  jx_t bits = jx_bitwise_xor(jx_left_shift(i, jx_scalar_int(3)), jx_right_shift(i, jx_scalar_int(1)));
  bits = jx_bitwise_and(jx_bitwise_not(bits), jx_bitwise_or(i, jx_scalar_int(5)));
  return JX_TUPLE(jx_add(r, jx_log2(jx_abs(x))), jx_integer_pow(bits, 3), jx_isnan(jx_digamma(x)));
}

static void test_jit_composed(void) {
  jx_pool_push();
  double xs[] = {-3.5, -2.0, -0.25, 0.0, 0.75, 1.5, 2.9, 1e30, NAN, INFINITY};
  int32_t is[] = {-7, 0, 1, 123456, INT32_MIN, INT32_MAX, 99, -1, 5, 77777};
  jx_t x = jx_array(JX_F64, JX_SHAPE(10), xs), i = jx_array(JX_I32, JX_SHAPE(10), is);
  jx_fn *f = jx_fn_new(f_mix, 2, NULL);
  jx_t want = JX_CALL(f, x, i);
  jx_exec_counts c0 = jx_exec_run_counts();
  jx_t got = JX_CALL(jx_jit(f), x, i);
  jx_exec_counts c1 = jx_exec_run_counts();
  CHECKF(jx_ok(got) && jx_ok(want), "%s %s", jx_error(got), jx_error(want));
  CHECKF(c1.compiled > c0.compiled && c1.interpreted == c0.interpreted, "jit did not run generated code");
  for (int k = 0; k < 3 && jx_ok(got); k++) {
    double g[10], w[10];
    jx_read(jx_at(got, k), JX_F64, g, sizeof g);
    jx_read(jx_at(want, k), JX_F64, w, sizeof w);
    for (int e = 0; e < 10; e++)
      CHECKF(check_close(g[e], w[e], 0, 0), "output %d [%d]: %g vs %g", k, e, g[e], w[e]);
  }
  jx_pool_pop();
}

/* ------------------------------------------------------------ reductions */
static jx_t f_prod(const jx_t *a, void *u) {
  (void)u;
  return jx_prod(a[0]);
}
static jx_t f_stats(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0];
  jx_t s = jx_add(jx_sum(jx_std(x, 1, (int[]){-1}, 1, false)), jx_sum(jx_var(x, 0, NULL, 0, true)));
  s = jx_add(s, jx_norm(x, "1", 2, (int[]){0, 1}, false));
  s = jx_add(s, jx_sum(jx_logsumexp_axes(x, 1, (int[]){0}, false)));
  return jx_add(s, jx_sum(jx_prod_axes(x, 1, (int[]){1}, true)));
}

static void test_reductions(void) {
  jx_pool_push();
  /* prod's gradient is the product of the others, zeros included (JAX) */
  double v[4] = {2, 0, 3, 5}, g[4];
  jx_fn *gp = jx_grad(jx_fn_new(f_prod, 1, NULL), 0);
  jx_t r = JX_CALL(gp, jx_array(JX_F64, JX_SHAPE(4), v));
  CHECKF(jx_ok(r) && !jx_read(r, JX_F64, g, sizeof g), "%s", jx_error(r));
  CHECK(g[0] == 0 && g[1] == 30 && g[2] == 0 && g[3] == 0);
  v[3] = 0; /* two zeros: all zero */
  jx_read(JX_CALL(gp, jx_array(JX_F64, JX_SHAPE(4), v)), JX_F64, g, sizeof g);
  CHECK(g[0] == 0 && g[1] == 0 && g[2] == 0 && g[3] == 0);
  double w[3] = {2, 3, 4};
  jx_read(JX_CALL(gp, jx_array(JX_F64, JX_SHAPE(3), w)), JX_F64, g, sizeof g);
  CHECK(g[0] == 12 && g[1] == 8 && g[2] == 6);
  /* second derivative through the jvp rule: d2/dx0 dx1 of x0 x1 x2 = x2 */
  jx_fn *h = jx_hessian(jx_fn_new(f_prod, 1, NULL), 0);
  double H[9];
  jx_t hr = JX_CALL(h, jx_array(JX_F64, JX_SHAPE(3), w));
  CHECKF(jx_ok(hr) && !jx_read(hr, JX_F64, H, sizeof H), "%s", jx_error(hr));
  CHECK(H[0] == 0 && H[1] == 4 && H[2] == 3 && H[3] == 4 && H[5] == 2);

  /* grad of a mix of the composed reductions: jit and eager agree, and
   * agree with central differences in a direction */
  double xs[12];
  for (int i = 0; i < 12; i++) xs[i] = sin(1.3 * i + 0.4) + 0.1 * i;
  jx_t x = jx_array(JX_F64, JX_SHAPE(3, 4), xs);
  jx_fn *f = jx_fn_new(f_stats, 1, NULL);
  jx_t ge = JX_CALL(jx_grad(f, 0), x), gj = JX_CALL(jx_jit(jx_grad(f, 0)), x);
  CHECKF(jx_ok(ge) && jx_ok(gj), "%s %s", jx_error(ge), jx_error(gj));
  double a[12], b[12], dir[12], dot = 0;
  jx_read(ge, JX_F64, a, sizeof a);
  jx_read(gj, JX_F64, b, sizeof b);
  for (int i = 0; i < 12; i++) {
    CHECKF(check_close(a[i], b[i], 1e-12, 1e-12), "grad [%d]: eager %g, jit %g", i, a[i], b[i]);
    dir[i] = cos(0.7 * i), dot += a[i] * dir[i];
  }
  jx_t d = jx_mul(jx_array(JX_F64, JX_SHAPE(3, 4), dir), jx_scalar_of(JX_F64, 1e-6));
  double fd = (jx_item(JX_CALL(f, jx_add(x, d))) - jx_item(JX_CALL(f, jx_sub(x, d)))) / 2e-6;
  CHECKF(check_close(dot, fd, 1e-6, 1e-8), "directional derivative %g vs differences %g", dot, fd);
  jx_pool_pop();
}

/* -------------------------------------------------------------------- nn */
static jx_t f_act(const jx_t *a, void *u) {
  jx_t x = a[0];
  switch (*(int *)u) {
    case 0: return jx_gelu(x, true);
    case 1: return jx_gelu(x, false);
    case 2: return jx_silu(x);
    case 3: return jx_softplus(x);
    case 4: return jx_log_sigmoid(x);
    case 5: return jx_elu(x, 0.7);
    default: return jx_leaky_relu(x, 0.1);
  }
}
static jx_t f_std(const jx_t *a, void *u) {
  (void)u;
  jx_t w = jx_arange(JX_F64, 1, 13, 1);
  return jx_sum(jx_mul(jx_reshape(w, JX_SHAPE(3, 4)), jx_standardize(a[0], 0, NULL, 1e-5)));
}

static void test_nn(void) {
  for (int k = 0; k < 7; k++)
    for (double x = -3.3; x < 3.5; x += 0.9) check_grad("activation", f_act, x, &k);
  jx_pool_push();
  double xs[12], dir[12], g[12], dot = 0;
  for (int i = 0; i < 12; i++) xs[i] = cos(2.1 * i) * (1 + i % 3), dir[i] = sin(0.3 * i + 1);
  jx_t x = jx_array(JX_F64, JX_SHAPE(3, 4), xs);
  jx_fn *f = jx_fn_new(f_std, 1, NULL);
  jx_t ge = JX_CALL(jx_grad(f, 0), x), gj = JX_CALL(jx_jit(jx_grad(f, 0)), x);
  CHECKF(jx_ok(ge) && jx_ok(gj), "standardize grad: %s %s", jx_error(ge), jx_error(gj));
  jx_read(ge, JX_F64, g, sizeof g);
  for (int i = 0; i < 12; i++) dot += g[i] * dir[i];
  jx_t d = jx_mul(jx_array(JX_F64, JX_SHAPE(3, 4), dir), jx_scalar_of(JX_F64, 1e-6));
  double fd = (jx_item(JX_CALL(f, jx_add(x, d))) - jx_item(JX_CALL(f, jx_sub(x, d)))) / 2e-6;
  CHECKF(check_close(dot, fd, 1e-6, 1e-8), "standardize: directional derivative %g vs %g", dot, fd);
  CHECK(jx_item(jx_max(jx_abs(jx_sub(ge, gj)))) <= 1e-12);

  /* initializers: JAX's formulas over jx's (JAX-exact) samplers. A conv
   * kernel HWIO [3, 3, 16, 32]: receptive field 9, fan_in 144, fan_out 288 */
  jx_t key = jx_random_key(42);
  const int64_t shp[] = {3, 3, 16, 32};
  struct {
    jx_t (*init)(jx_t, jx_dtype, int, const int64_t *);
    double var;
    int dist; /* 0 uniform, 1 truncated normal */
  } inits[] = {{jx_glorot_uniform, 1.0 / 216, 0}, {jx_glorot_normal, 1.0 / 216, 1},
               {jx_lecun_uniform, 1.0 / 144, 0},  {jx_lecun_normal, 1.0 / 144, 1},
               {jx_he_uniform, 2.0 / 144, 0},     {jx_he_normal, 2.0 / 144, 1}};
  for (int i = 0; i < 6; i++) {
    for (int t = 0; t < 4; t++) { /* f32, f64, and #19's bf16 and f16 (each op rounded to dt) */
      const jx_dtype dts[4] = {JX_F32, JX_F64, JX_BF16, JX_F16};
      jx_dtype dt = dts[t];
      jx_t w = inits[i].init(key, dt, 4, shp), v = jx_scalar_of(dt, inits[i].var), want;
      if (inits[i].dist == 0)
        want = jx_mul(jx_random_uniform(key, dt, 4, shp, -1, 1), jx_sqrt(jx_mul(jx_scalar_int(3), v)));
      else
        want = jx_mul(jx_random_truncated_normal(key, dt, 4, shp, -2, 2),
                      jx_div(jx_sqrt(v), jx_scalar_of(dt, .87962566103423978)));
      CHECKF(jx_ok(w) && jx_dtype_of(w) == dt && jx_size(w) == 4608, "init %d: %s", i, jx_error(w));
      CHECKF(jx_item(jx_max(jx_abs(jx_sub(w, want)))) == 0, "init %d %s: not JAX's formula", i,
             jx_dtype_name(dt));
      /* the sample variance is the target's (4608 draws: within 10%) */
      double sv = jx_item(jx_var(jx_astype(w, JX_F64), 0, NULL, 0, false));
      CHECKF(fabs(sv / inits[i].var - 1) < 0.1, "init %d: variance %g, want %g", i, sv, inits[i].var);
      double bound = inits[i].dist ? 2 * sqrt(inits[i].var) / .87962566103423978 : sqrt(3 * inits[i].var);
      double ulp = dt == JX_BF16 ? 0x1p-7 : dt == JX_F16 ? 0x1p-10 : 1e-6; /* the product's rounding */
      CHECK(jx_item(jx_max(jx_abs(w))) <= bound * (1 + ulp));
    }
  }
  /* fan_out with other axes: dense [in, out] = [300, 100], in_axis 0 */
  jx_t w = jx_variance_scaling(key, JX_F64, JX_SHAPE(300, 100), 3.0, "fan_out", "normal", 0, 1);
  CHECK_CLOSE(jx_item(jx_var(w, 0, NULL, 0, false)), 3.0 / 100, 0.1, 0);
  jx_t want = jx_mul(jx_random_normal(key, JX_F64, JX_SHAPE(300, 100)), jx_sqrt(jx_scalar_of(JX_F64, 0.03)));
  CHECK(jx_item(jx_max(jx_abs(jx_sub(w, want)))) == 0);
  EXPECT_ERROR(jx_glorot_uniform(key, JX_F32, JX_SHAPE(5)), "variance_scaling", "[5]");
  EXPECT_ERROR(jx_he_normal(key, JX_I32, JX_SHAPE(5, 5)), "variance_scaling", "i32");
  EXPECT_ERROR(jx_variance_scaling(key, JX_F32, JX_SHAPE(2, 2), 1, "fan_x", "normal", -2, -1),
               "variance_scaling", "fan_x");
  EXPECT_ERROR(jx_variance_scaling(key, JX_F32, JX_SHAPE(2, 2), 1, "fan_in", "cauchy", -2, -1), "cauchy");
  EXPECT_ERROR(jx_variance_scaling(key, JX_F32, JX_SHAPE(0, 2), 1, "fan_in", "normal", -2, -1), "zero fan");
  EXPECT_ERROR(jx_lecun_normal(jx_ones(JX_F32, JX_SHAPE(3)), JX_F32, JX_SHAPE(2, 2)), "variance_scaling");
  EXPECT_ERROR(jx_standardize(jx_ones(JX_F32, JX_SHAPE(2)), 1, (int[]){1}, 1e-5), "standardize", "axis 1");
  EXPECT_ERROR(jx_gelu(JX_TUPLE(key), true), "gelu");
  jx_pool_pop();
}

/* ------------------------------------------------------ creation, shapes */
static jx_t flat(jx_t x) { return jx_reshape(x, JX_SHAPE(-1)); }
static jx_t f_shapes(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0]; /* [3, 4] */
  jx_t parts[8] = {flat(jx_tile(x, 2, (int64_t[]){2, 1})),
                   flat(jx_repeat(x, 2, 1)),
                   flat(jx_repeat_counts(x, 3, (int64_t[]){2, 0, 1}, 0)),
                   flat(jx_roll(x, -5, JX_NONE)),
                   flat(jx_flip(x, 1, (int[]){-1})),
                   flat(jx_triu(x, 1)),
                   flat(jx_at(jx_split_indices(x, 2, (int64_t[]){1, 3}, 1), 1)),
                   flat(jx_mul(x, jx_eye(JX_F64, 3, 4, 1)))};
  jx_t all = jx_concatenate(8, parts, 0);
  jx_t w = jx_linspace(JX_F64, -1, 2, jx_size(all), true);
  return jx_sum(jx_mul(jx_mul(all, all), w));
}

static void test_shapes(void) {
  jx_pool_push();
  double xs[12], dir[12], g[12], dot = 0;
  for (int i = 0; i < 12; i++) xs[i] = sin(0.9 * i + 0.2), dir[i] = cos(1.7 * i);
  jx_t x = jx_array(JX_F64, JX_SHAPE(3, 4), xs);
  jx_fn *f = jx_fn_new(f_shapes, 1, NULL);
  jx_exec_counts c0 = jx_exec_run_counts();
  jx_t ge = JX_CALL(jx_grad(f, 0), x), gj = JX_CALL(jx_jit(jx_grad(f, 0)), x);
  jx_exec_counts c1 = jx_exec_run_counts();
  CHECKF(jx_ok(ge) && jx_ok(gj), "shape ops grad: %s %s", jx_error(ge), jx_error(gj));
  CHECKF(c1.compiled > c0.compiled && c1.interpreted == c0.interpreted, "jit did not run generated code");
  CHECK(jx_item(jx_max(jx_abs(jx_sub(ge, gj)))) <= 1e-12);
  jx_read(ge, JX_F64, g, sizeof g);
  for (int i = 0; i < 12; i++) dot += g[i] * dir[i];
  jx_t d = jx_mul(jx_array(JX_F64, JX_SHAPE(3, 4), dir), jx_scalar_of(JX_F64, 1e-6));
  double fd = (jx_item(JX_CALL(f, jx_add(x, d))) - jx_item(JX_CALL(f, jx_sub(x, d)))) / 2e-6;
  CHECKF(check_close(dot, fd, 1e-6, 1e-8), "shape ops: directional derivative %g vs %g", dot, fd);
  /* vmap over a batch of x equals the loop */
  jx_t xb = jx_stack(2, (jx_t[]){x, jx_mul(x, jx_scalar(-0.5))}, 0);
  jx_t vb = JX_CALL(jx_vmap(f, (int[]){0}, 0), xb);
  CHECKF(jx_ok(vb), "vmap: %s", jx_error(vb));
  double vv[2];
  jx_read(vb, JX_F64, vv, sizeof vv);
  CHECK_CLOSE(vv[0], jx_item(JX_CALL(f, x)), 1e-13, 0);
  CHECK_CLOSE(vv[1], jx_item(JX_CALL(f, jx_mul(x, jx_scalar(-0.5)))), 1e-13, 0);
  jx_pool_pop();
}

/* --------------------------------------------------------------- errors */
static void test_errors(void) {
  jx_pool_push();
  jx_t f = jx_ones(JX_F32, JX_SHAPE(2, 3)), i = jx_ones(JX_I32, JX_SHAPE(2, 3));
  jx_t t = JX_TUPLE(f, f);
  EXPECT_ERROR(jx_erf(t), "erf", "tuple");
  EXPECT_ERROR(jx_atan2(f, jx_ones(JX_F32, JX_SHAPE(4))), "atan2", "f32[2,3]", "f32[4]");
  EXPECT_ERROR(jx_left_shift(f, f), "left_shift", "f32[2,3]", "integer");
  EXPECT_ERROR(jx_right_shift(jx_ones(JX_BOOL, JX_SHAPE(2)), jx_ones(JX_BOOL, JX_SHAPE(2))), "right_shift");
  EXPECT_ERROR(jx_bitwise_and(f, i), "bitwise_and", "bool or integer");
  EXPECT_ERROR(jx_bitwise_xor(i, jx_ones(JX_I32, JX_SHAPE(3, 3))), "bitwise_xor", "i32[2,3]", "i32[3,3]");
  EXPECT_ERROR(jx_bitwise_not(f), "bitwise_not", "f32[2,3]");
  EXPECT_ERROR(jx_remainder(jx_ones(JX_BOOL, JX_SHAPE(2)), jx_ones(JX_BOOL, JX_SHAPE(2))), "remainder",
               "bool");
  EXPECT_ERROR(jx_fmod(f, jx_ones(JX_F32, JX_SHAPE(5))), "fmod", "f32[2,3]", "f32[5]");
  EXPECT_ERROR(jx_integer_pow(i, -1), "integer_pow", "i32[2,3]", "negative");
  EXPECT_ERROR(jx_integer_pow(jx_ones(JX_BOOL, JX_SHAPE(2)), 2), "integer_pow", "bool");
  EXPECT_ERROR(jx_clip(t, NULL, NULL), "clip");
  EXPECT_ERROR(jx_isnan(NULL), "isnan");
  EXPECT_ERROR(jx_prod_axes(f, 1, (int[]){2}, false), "prod", "axis 2", "f32[2,3]");
  EXPECT_ERROR(jx_var(f, 2, (int[]){0, -2}, 0, false), "var", "repeated");
  EXPECT_ERROR(jx_any(t, 0, NULL, false), "any", "tuple");
  EXPECT_ERROR(jx_norm(f, "3", 0, NULL, false), "norm", "f32[2,3]", "ord must be");
  EXPECT_ERROR(jx_norm(f, "x", 0, NULL, false), "norm", "ord");
  EXPECT_ERROR(jx_norm(jx_ones(JX_F32, JX_SHAPE(2, 2, 2)), "1", 0, NULL, false), "norm", "f32[2,2,2]");
  EXPECT_ERROR(jx_logsumexp_axes(f, 1, (int[]){5}, false), "logsumexp", "axis 5");
  EXPECT_ERROR(jx_split(f, 4, 1), "split", "f32[2,3]", "4 sections");
  EXPECT_ERROR(jx_split_indices(f, 1, (int64_t[]){1}, 3), "split", "axis 3", "f32[2,3]");
  EXPECT_ERROR(jx_repeat_counts(f, 2, (int64_t[]){1, 1}, 1), "repeat", "2 counts", "f32[2,3]");
  EXPECT_ERROR(jx_repeat(f, -2, 0), "repeat", "negative");
  EXPECT_ERROR(jx_roll(f, 1, -3), "roll", "axis -3", "f32[2,3]");
  EXPECT_ERROR(jx_flip(f, 2, (int[]){1, -1}), "flip", "repeated");
  EXPECT_ERROR(jx_tril(jx_ones(JX_F32, JX_SHAPE(3)), 0), "tril", "f32[3]");
  EXPECT_ERROR(jx_tile(f, 1, (int64_t[]){-1}), "tile", "negative");
  EXPECT_ERROR(jx_eye(JX_F32, -1, 3, 0), "eye", "negative");
  EXPECT_ERROR(jx_linspace(JX_F32, 0, NAN, 3, true), "linspace", "finite");
  EXPECT_ERROR(jx_linspace(JX_BOOL, 0, 1, 3, true), "linspace", "dtype");
  jx_pool_pop();
}

/* ---------------------------------------------------------- polygamma */
/* {n, x, polygamma(n, x), polygamma(n + 1, x)} from mpmath (checked
 * against SciPy): golden/gen_polygamma.py */
static const double POLYGAMMA[][4] = {
#include "golden/polygamma_golden.inc"
};
static jx_t polygamma_body(const jx_t *a, void *u) {
  (void)u;
  return jx_polygamma(a[0], a[1]);
}
static bool pg_match(double got, double want, double rtol) {
  if (isnan(want)) return isnan(got);
  if (isinf(want)) return got == want;
  return fabs(got - want) <= rtol * fabs(want);
}

/* values eager and under jit, f64 and f32; grad in x = polygamma(n + 1, x)
 * (f64, eager and jit); broadcasting; dtypes; errors */
static void test_polygamma(void) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(polygamma_body, 2, NULL), *jf = jx_jit(f), *g = jx_grad(f, 1), *jg = jx_jit(g);
  for (size_t i = 0; i < sizeof POLYGAMMA / sizeof *POLYGAMMA; i++) {
    const double *r = POLYGAMMA[i];
    for (int d = 0; d < 2; d++) {
      jx_dtype dt = d ? JX_F32 : JX_F64;
      double rtol = d ? 2e-5 : 1e-13;
      jx_t args[2] = {jx_scalar_of(dt, r[0]), jx_scalar_of(dt, r[1])};
      double y = jx_item(jx_call(f, args)), yj = jx_item(jx_call(jf, args));
      CHECKF(pg_match(y, r[2], rtol) && pg_match(yj, r[2], rtol),
             "polygamma(%g, %g) %s: %.17g (jit %.17g), want %.17g", r[0], r[1], d ? "f32" : "f64", y, yj,
             r[2]);
      if (d || !isfinite(r[2]) || !isfinite(r[3])) continue;
      double gx = jx_item(jx_call(g, args)), gj = jx_item(jx_call(jg, args));
      CHECKF(pg_match(gx, r[3], 1e-12) && pg_match(gj, r[3], 1e-12),
             "grad polygamma(%g, %g): %.17g (jit %.17g), want polygamma(n + 1) = %.17g", r[0], r[1], gx, gj,
             r[3]);
    }
  }
  jx_fn_free(jg), jx_fn_free(g), jx_fn_free(jf), jx_fn_free(f);
  /* n [3, 1] against x [4]: [3, 4], each element its scalar's value */
  jx_t n = jx_array(JX_F64, JX_SHAPE(3, 1), (double[]){0, 1, 3});
  jx_t x = jx_array(JX_F64, JX_SHAPE(4), (double[]){0.5, 1, 2.5, 20});
  jx_t y = jx_polygamma(n, x);
  CHECKF(jx_ok(y) && jx_ndim(y) == 2 && jx_shape(y)[0] == 3 && jx_shape(y)[1] == 4, "polygamma broadcast: %s",
         jx_error(y));
  for (int a = 0; a < 3 && jx_ok(y); a++)
    for (int b = 0; b < 4; b++) {
      double nv = a == 2 ? 3 : a, xv = ((double[]){0.5, 1, 2.5, 20})[b];
      double one = jx_item(jx_polygamma(jx_scalar_of(JX_F64, nv), jx_scalar_of(JX_F64, xv)));
      double got = jx_item(jx_take(jx_take(y, jx_scalar_of(JX_I32, a), 0), jx_scalar_of(JX_I32, b), 0));
      CHECKF(got == one, "polygamma broadcast [%d, %d]: %.17g vs %.17g", a, b, got, one);
    }
  /* an i32 n with an f32 x: f32 (promote_args_inexact) */
  jx_t yf = jx_polygamma(jx_scalar_of(JX_I32, 1), jx_scalar_of(JX_F32, 1));
  CHECKF(jx_ok(yf) && jx_dtype_of(yf) == JX_F32 && fabs(jx_item(yf) - M_PI * M_PI / 6) <= 1e-6,
         "polygamma(1, 1) f32: %s", jx_error(yf));
  /* bf16: computed in f32, rounded once: polygamma(1, 2) = pi^2/6 - 1 */
  jx_t yb = jx_polygamma(jx_astype(jx_scalar(1), JX_BF16), jx_astype(jx_scalar(2), JX_BF16));
  CHECKF(jx_ok(yb) && jx_dtype_of(yb) == JX_BF16 && fabs(jx_item(yb) - (M_PI * M_PI / 6 - 1)) <= 4e-3,
         "polygamma(1, 2) bf16: %s", jx_error(yb));
  EXPECT_ERROR(jx_polygamma(jx_ones(JX_F32, JX_SHAPE(2)), jx_ones(JX_F32, JX_SHAPE(3))), "polygamma");
  EXPECT_ERROR(jx_polygamma(JX_TUPLE(jx_scalar(1)), jx_scalar(1)), "polygamma");
  jx_pool_pop();
}

int main(void) {
  check_private_cache("math");
  test_polygamma();
  test_accuracy();
  test_derivatives();
  test_jit_composed();
  test_reductions();
  test_nn();
  test_shapes();
  test_errors();
  check_private_cache_remove();
  return check_report("test_math");
}
