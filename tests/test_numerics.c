/* Numerics on large inputs:
 *   - 1e7 f32 elements summed (all axes, and along each axis of a
 *     [10000, 1000] view; sum and mean; and sum(2x), which jit fuses into
 *     one reduction) stay within 1e-6 relative of the f64 sum of the same
 *     f32 values, eagerly and under jit;
 *   - grad of logsumexp, softmax and log_softmax has no NaN or inf on
 *     inputs of +-1e4 (f32 and f64, 1-d and along either axis of a 2-d
 *     array), eagerly and under jit, and is right: d logsumexp = softmax.
 * The jit's cache goes to a private temporary directory. */
#include "check.h"

#include <jx.h>

#include <dirent.h>
#include <stdint.h>
#include <unistd.h>

enum { N = 10000000, ROWS = 10000, COLS = 1000 };

static uint64_t rng = 88172645463325252ull;
static double unit(void) { /* xorshift64*: uniform in [0, 1) */
  rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
  return (double)((rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static jx_t sum_all(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(a[0]);
}
static jx_t mean_all(const jx_t *a, void *u) {
  (void)u;
  return jx_mean(a[0]);
}
static jx_t sum_fused(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_mul(a[0], jx_scalar(2.0)));
}
static jx_t sum_axis(const jx_t *a, void *u) { return jx_sum_axes(a[0], 1, (int[]){*(int *)u}, false); }

static double rel(double got, double want) { return fabs(got - want) / fabs(want); }

/* worst relative error of an f32 result against f64 references */
static double worst(jx_t r, const double *want, int64_t n) {
  if (!jx_ok(r) || jx_size(r) != n) return INFINITY;
  float *g = malloc(sizeof(float) * (size_t)n);
  double w = 0;
  if (jx_read(r, JX_F32, g, sizeof(float) * (size_t)n)) w = INFINITY;
  for (int64_t i = 0; w < INFINITY && i < n; i++) w = fmax(w, rel(g[i], want[i]));
  free(g);
  return w;
}

static void test_large_sums(void) {
  /* uniform [0, 1) plus a few wide-ranging rows: positive, so the relative
   * error is the reduction's own (no cancellation) */
  float *x = malloc(sizeof(float) * N);
  for (int64_t i = 0; i < N; i++) x[i] = (float)(unit() * (i % 1000 == 7 ? 1000.0 : 1.0));
  double total = 0;
  double *rows = calloc(ROWS, sizeof(double)), *cols = calloc(COLS, sizeof(double));
  for (int64_t i = 0; i < N; i++) {
    total += x[i];
    rows[i / COLS] += x[i];
    cols[i % COLS] += x[i];
  }
  jx_pool_push();
  jx_t a = jx_array(JX_F32, JX_SHAPE(N), x), m = jx_reshape(a, JX_SHAPE(ROWS, COLS));
  jx_fn *fs = jx_fn_new(sum_all, 1, NULL), *fm = jx_fn_new(mean_all, 1, NULL);
  int ax0 = 0, ax1 = 1;
  jx_fn *f0 = jx_fn_new(sum_axis, 1, &ax0), *f1 = jx_fn_new(sum_axis, 1, &ax1);
  jx_fn *fx = jx_fn_new(sum_fused, 1, NULL);
  jx_fn *fns[5] = {fs, fm, f0, f1, fx};
  const char *names[5] = {"sum", "mean", "sum over axis 0", "sum over axis 1", "sum(2x), fused"};
  double mean = total / N, twice = 2 * total;
  for (int k = 0; k < 5; k++) {
    jx_fn *jf = jx_jit(fns[k]);
    for (int j = 0; j < 2; j++) {
      jx_fn *f = j ? jf : fns[k];
      double e;
      if (k == 4)
        e = worst(JX_CALL(f, a), &twice, 1);
      else if (k < 2)
        e = worst(JX_CALL(f, a), k ? &mean : &total, 1);
      else
        e = worst(JX_CALL(f, m), k == 2 ? cols : rows, k == 2 ? COLS : ROWS);
      CHECKF(e <= 1e-6, "%s%s of 1e7 f32: relative error %.3g", j ? "jit " : "", names[k], e);
      printf("%-4s %-16s of 1e7 f32: worst relative error %.2g\n", j ? "jit" : "", names[k], e);
    }
    jx_fn_free(jf);
  }
  for (int k = 0; k < 5; k++) jx_fn_free(fns[k]);
  jx_pool_pop();
  free(rows), free(cols), free(x);
}

/* ------------------------------------------------------------ softmax */
typedef struct {
  int kind; /* 0 logsumexp, 1 softmax, 2 log_softmax */
  int axis;
} nn_arg;

static jx_t nn_loss(const jx_t *a, void *u) { /* a scalar through the op, weighted */
  const nn_arg *n = u;
  jx_t y = n->kind == 0   ? jx_logsumexp(a[0], n->axis)
           : n->kind == 1 ? jx_softmax(a[0], n->axis)
                          : jx_log_softmax(a[0], n->axis);
  jx_t w = jx_sin(jx_astype(jx_arange(JX_F64, 1, 1 + (double)jx_size(y), 1), jx_dtype_of(y)));
  return jx_sum(jx_mul(y, jx_reshape(w, jx_ndim(y), jx_shape(y))));
}

static jx_t lse_plain(const jx_t *a, void *u) {
  (void)u;
  return jx_logsumexp(a[0], 0);
}

static bool all_finite(jx_t g) {
  if (!jx_ok(g)) return false;
  int64_t n = jx_size(g);
  double *v = malloc(sizeof(double) * (size_t)n);
  bool ok = jx_read(g, JX_F64, v, sizeof(double) * (size_t)n) == 0;
  for (int64_t i = 0; ok && i < n; i++) ok = isfinite(v[i]);
  free(v);
  return ok;
}

static void test_softmax_grads(void) {
  static const char *kinds[3] = {"logsumexp", "softmax", "log_softmax"};
  double v[12] = {1e4, -1e4, 0, 1e4 - 1, -1e4, 1e4, 1e4, -1e4 + 3, 5, -1e4, 1e4, 2};
  for (int d = 0; d < 2; d++) {
    jx_dtype dt = d ? JX_F64 : JX_F32;
    jx_pool_push();
    jx_t x1 = jx_astype(jx_array(JX_F64, JX_SHAPE(12), v), dt), x2 = jx_reshape(x1, JX_SHAPE(3, 4));
    for (int kind = 0; kind < 3; kind++) {
      for (int shape = 0; shape < 3; shape++) { /* 1-d; 2-d along axis 0; along axis 1 */
        nn_arg arg = {kind, shape == 2 ? 1 : 0};
        jx_t x = shape ? x2 : x1;
        jx_fn *f = jx_fn_new(nn_loss, 1, &arg), *g = jx_grad(f, 0), *jg = jx_jit(g);
        jx_t ge = JX_CALL(g, x), gj = JX_CALL(jg, x);
        CHECKF(all_finite(ge), "grad of %s (%s, shape %d) at +-1e4: %s", kinds[kind], jx_dtype_name(dt),
               shape, jx_ok(ge) ? "a NaN or inf" : jx_error(ge));
        CHECKF(all_finite(gj), "jit(grad) of %s (%s, shape %d) at +-1e4: %s", kinds[kind], jx_dtype_name(dt),
               shape, jx_ok(gj) ? "a NaN or inf" : jx_error(gj));
        CHECKF(jx_ok(ge) && jx_ok(gj) && jx_item(jx_max(jx_abs(jx_sub(ge, gj)))) <= 1e-6,
               "grad of %s: eager and jit differ", kinds[kind]);
        jx_fn_free(jg), jx_fn_free(g), jx_fn_free(f);
      }
    }
    /* d logsumexp(x) / dx = softmax(x), summing to 1 */
    jx_fn *f = jx_fn_new(lse_plain, 1, NULL), *g = jx_grad(f, 0), *jg = jx_jit(g);
    jx_t sm = jx_softmax(x1, 0);
    CHECK(all_finite(sm) && fabs(jx_item(jx_sum(sm)) - 1) < 1e-6);
    CHECK(jx_item(jx_max(jx_abs(jx_sub(JX_CALL(g, x1), sm)))) < 1e-7);
    CHECK(jx_item(jx_max(jx_abs(jx_sub(JX_CALL(jg, x1), sm)))) < 1e-7);
    jx_fn_free(jg), jx_fn_free(g), jx_fn_free(f);
    jx_pool_pop();
  }
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (check_private_cache("test-numerics")) return 1;
  test_large_sums();
  test_softmax_grads();
  check_private_cache_remove();
  return check_report("test_numerics");
}
