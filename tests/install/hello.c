/* Built by tests/install/install_test.sh against an installed jx, found
   through pkg-config only: grad(tanh) at 0.5 and a small jitted sum. */
#include <jx.h>
#include <math.h>
#include <stdio.h>

static jx_t f(const jx_t *a, void *u) {
  (void)u;
  return jx_tanh(a[0]);
}
static jx_t g(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_mul(a[0], a[0]));
}

int main(void) {
  jx_fn *fn = jx_fn_new(f, 1, NULL), *df = jx_grad(fn, 0);
  double d = jx_item(JX_CALL(df, jx_scalar(0.5)));
  double want = 1 - tanh(0.5) * tanh(0.5);
  jx_fn *gn = jx_fn_new(g, 1, NULL), *jg = jx_jit(gn);
  double s = jx_item(JX_CALL(jg, jx_arange(JX_F32, 0, 4, 1)));
  printf("grad(tanh)(0.5) = %.6f, sum of squares = %g\n", d, s);
  jx_fn_free(jg);
  jx_fn_free(gn);
  jx_fn_free(df);
  jx_fn_free(fn);
  return fabs(d - want) < 1e-6 && s == 14 ? 0 : 1;
}
