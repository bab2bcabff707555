/* Reverse mode through jx_while_loop_bounded: the grad of a loop that
 * takes 10 steps, for bounds of 10 to 10^6 steps. The backward pass costs
 * in proportion to the steps taken, so the time should not grow with the
 * bound (a scan over max_steps, JAX #8239's trap, would).
 *
 * usage: bench_bounded [reps=21] */
#include <jx.h>

#include "bench_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static jx_t cond_f(const jx_t *a, void *u) {
  (void)u;
  return jx_lt(jx_sum(a[0]), jx_scalar(6.5));
}
static jx_t body_f(const jx_t *a, void *u) {
  (void)u;
  return jx_add(jx_mul(a[0], jx_scalar(1.2)), jx_mul(jx_scalar(0.1), jx_sin(a[0])));
}
static jx_t loss(const jx_t *a, void *u) {
  int64_t max_steps = *(int64_t *)u;
  jx_t x = jx_while_loop_bounded(jx_fn_new(cond_f, 1, NULL), jx_fn_new(body_f, 1, NULL), a[0], max_steps);
  return jx_sum(jx_square(x));
}

/* median ms of reps calls of g at x */
static double time_ms(jx_fn *g, jx_t x, int reps) {
  double t[64];
  int n = reps < 64 ? reps : 64;
  for (int k = 0; k < n; k++) {
    double t0 = now_ms();
    jx_pool_push();
    (void)jx_item(jx_sum(JX_CALL(g, x)));
    jx_pool_pop();
    t[k] = now_ms() - t0;
  }
  qsort(t, (size_t)n, sizeof *t, cmp);
  return t[n / 2];
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 21;
  if (reps < 1) reps = 21;
  jx_t x = jx_retain(jx_array(JX_F32, JX_SHAPE(3), (float[]){0.1f, 0.2f, 0.3f}));
  /* eager grad: the steps are counted, the backward pass is a scan of
   * that many steps; jit(grad): the count is traced, and the forward and
   * backward passes are dyn scans of max_steps that stop after the steps
   * taken (their residual stacks still have max_steps rows) */
  const int64_t bounds[] = {10, 10000, 1000000};
  for (int jit = 0; jit < 2; jit++) {
    printf("grad through while_loop_bounded, 10 steps taken, %s (median of %d)\n",
           jit ? "jit(grad)" : "eager", reps);
    double base = 0;
    for (int b = 0; b < 3; b++) {
      int64_t max_steps = bounds[b];
      jx_fn *f = jx_fn_new(loss, 1, &max_steps), *g = jx_grad(f, 0), *jg = jit ? jx_jit(g) : NULL;
      if (jg) (void)jx_item(jx_sum(JX_CALL(jg, x))); /* compile */
      double ms = time_ms(jg ? jg : g, x, reps);
      if (!b) base = ms;
      printf("max_steps %8lld: %8.3f ms (%.2fx of max_steps 10)\n", (long long)max_steps, ms, ms / base);
      if (jg) jx_fn_free(jg);
      jx_fn_free(g), jx_fn_free(f);
    }
  }
  jx_release(x);
  return 0;
}
