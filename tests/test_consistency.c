/* Issue 21's consistency rules on the round-2 functions: NumPy's
 * axis=None (JX_NONE: the flattened array) for sort, argsort, the
 * cumulative ops and take_along_axis, and jnp.roll's tuples of shifts and
 * axes (jx_roll_axes). Values are NumPy's (written out below), eagerly and
 * under jit. */
#include "check.h"

#include <jx.h>

static bool values_are(jx_t x, int n, const double *want) {
  double got[32];
  if (!jx_ok(x) || jx_size(x) != n || n > 32 || jx_read(x, JX_F64, got, sizeof(double) * (size_t)n))
    return false;
  for (int i = 0; i < n; i++)
    if (got[i] != want[i]) return false;
  return true;
}

/* x = [[3, 1, 2], [0, 5, 4]] */
static jx_t x23(void) { return jx_array(JX_F32, JX_SHAPE(2, 3), (float[]){3, 1, 2, 0, 5, 4}); }

static jx_t none_ops(const jx_t *a, void *u) {
  (void)u;
  jx_t idx = jx_array(JX_I32, JX_SHAPE(3), (int32_t[]){5, 0, 3});
  return JX_TUPLE(jx_sort(a[0], JX_NONE), jx_argsort(a[0], JX_NONE), jx_cumsum(a[0], JX_NONE),
                  jx_cumprod(a[0], JX_NONE, true), jx_take_along_axis(a[0], idx, JX_NONE));
}

/* np.sort(x, axis=None) = [0 1 2 3 4 5]; np.argsort(x, axis=None) =
 * [3 1 2 0 5 4]; np.cumsum(x, axis=None) = [3 4 6 6 11 15]; reversed
 * cumprod of the flattened x = [0 0 0 0 20 4]; np.take_along_axis(x,
 * [5, 0, 3], axis=None) = [4 3 0] */
static void test_axis_none(void) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(none_ops, 1, NULL), *jf = jx_jit(f);
  jx_t r[2] = {JX_CALL(f, x23()), JX_CALL(jf, x23())};
  for (int k = 0; k < 2; k++) {
    CHECKF(jx_ok(r[k]), "%s: %s", k ? "jit" : "eager", jx_error(r[k]));
    if (!jx_ok(r[k])) continue;
    CHECK(values_are(jx_at(r[k], 0), 6, (double[]){0, 1, 2, 3, 4, 5}));
    CHECK(values_are(jx_at(r[k], 1), 6, (double[]){3, 1, 2, 0, 5, 4}));
    CHECK(values_are(jx_at(r[k], 2), 6, (double[]){3, 4, 6, 6, 11, 15}));
    CHECK(values_are(jx_at(r[k], 3), 6, (double[]){0, 0, 0, 0, 20, 4}));
    CHECK(values_are(jx_at(r[k], 4), 3, (double[]){4, 3, 0}));
  }
  /* take_along_axis(axis=None) wants 1-d indices, as NumPy */
  EXPECT_ERROR(jx_take_along_axis(x23(), jx_zeros(JX_I32, JX_SHAPE(1, 2)), JX_NONE), "take_along_axis",
               "rank");
  /* an axis still out of range is still an error */
  EXPECT_ERROR(jx_sort(x23(), 2), "sort", "axis 2");
  jx_pool_pop();
}

/* np.roll(x, (1, -1), (0, 1)) = [[5 4 0], [1 2 3]]; np.roll(x, (1, 1),
 * (1, 1)) = np.roll(x, 2, 1) = [[1 2 3], [5 4 0]] */
static void test_roll_axes(void) {
  jx_pool_push();
  jx_t a = jx_roll_axes(x23(), 2, (int64_t[]){1, -1}, (int[]){0, 1});
  CHECKF(values_are(a, 6, (double[]){5, 4, 0, 1, 2, 3}), "%s", jx_error(a));
  jx_t b = jx_roll_axes(x23(), 2, (int64_t[]){1, 1}, (int[]){1, 1});
  CHECK(values_are(b, 6, (double[]){1, 2, 3, 5, 4, 0}));
  CHECK(values_are(jx_roll_axes(x23(), 0, NULL, NULL), 6, (double[]){3, 1, 2, 0, 5, 4}));
  EXPECT_ERROR(jx_roll_axes(x23(), 1, (int64_t[]){1}, (int[]){5}), "roll");
  EXPECT_ERROR(jx_roll_axes(x23(), 2, NULL, (int[]){0, 1}), "roll", "NULL");
  jx_t err = jx_error_new("upstream");
  CHECK(jx_roll_axes(err, 1, (int64_t[]){1}, (int[]){0}) == err);
  jx_pool_pop();
}

int main(void) {
  if (check_private_cache("consistency")) return 1;
  test_axis_none();
  test_roll_axes();
  check_private_cache_remove();
  return check_report("test_consistency");
}
