/* The main example, what `make demo` runs:
 *
 * 1. The seed's letter classifier (examples/letters/): lowercase letters
 *    rendered at 36x36 from the installed fonts with random jitter, a tanh
 *    MLP trained with jit(value_and_grad(loss)) and Adam, tested on font
 *    families never seen in training. Every option of `letters` works here
 *    too (build/examples/demo --help), e.g. --data DIR for EMNIST.
 * 2. JAX's fusion showcase,
 *
 *      def slow_f(x): return x * x * x + x * 2.0 * x + x
 *
 *    eager (op by op) vs jit on a 2000x2000 f32 array,
 * 3. and the derivatives of tanh at 2.0 from JAX's Autodiff Cookbook. */
#include <jx.h>

#include "letters.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static jx_t slow_f(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0];
  return jx_add(jx_add(jx_mul(jx_mul(x, x), x), jx_mul(jx_mul(x, jx_scalar(2.0)), x)), x);
}

static jx_t tanh_fn(const jx_t *a, void *u) {
  (void)u;
  return jx_tanh(a[0]);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median_ms(jx_fn *f, jx_t x, int reps) {
  double t[64];
  for (int r = 0; r < reps; r++) {
    jx_pool_push();
    double t0 = now_ms();
    jx_t y = JX_CALL(f, x);
    t[r] = now_ms() - t0;
    if (!jx_ok(y)) fprintf(stderr, "error: %s\n", jx_error(y));
    jx_pool_pop();
  }
  qsort(t, (size_t)reps, sizeof t[0], cmp);
  return t[reps / 2];
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return letters_main(argc, argv);
  printf("=== 1. the letter classifier ===\n");
  fflush(stdout);
  int rc = letters_main(argc, argv);
  if (rc) return rc;
  printf("\n=== 2. fusion: slow_f eager vs jit ===\n");
  jx_fn *f = jx_fn_new(slow_f, 1, NULL);
  jx_fn *jf = jx_jit(f);
  jx_t x = jx_retain(jx_ones(JX_F32, JX_SHAPE(2000, 2000)));

  char *jaxpr = jx_make_jaxpr(f, &x);
  printf("make_jaxpr(slow_f)(x) =\n%s\n\n", jaxpr);
  free(jaxpr);

  JX_CALL(jf, x); /* trace (and compile) once */
  double eager = median_ms(f, x, 15), jit = median_ms(jf, x, 15);
  printf("slow_f on f32[2000,2000], %d threads (median of 15):\n", jx_num_threads());
  printf("  eager (op by op): %8.3f ms\n  jit:              %8.3f ms   (%.1fx)\n\n", eager, jit, eager / jit);

  printf("=== 3. derivatives of tanh ===\n");
  jx_fn *tf = jx_fn_new(tanh_fn, 1, NULL);
  jx_fn *g1 = jx_grad(tf, 0);
  jx_fn *g2 = jx_grad(g1, 0), *g3 = jx_grad(g2, 0);
  jx_t two = jx_scalar_of(JX_F32, 2.0);
  printf("grad(tanh)(2.0)             = %.7f\n", jx_item(JX_CALL(g1, two)));
  printf("grad(grad(tanh))(2.0)       = %.7f\n", jx_item(JX_CALL(g2, two)));
  printf("grad(grad(grad(tanh)))(2.0) = %.7f\n", jx_item(JX_CALL(g3, two)));
  jx_release(x);
  jx_fn_free(jf);
  jx_fn_free(f);
  jx_fn_free(g3);
  jx_fn_free(g2);
  jx_fn_free(g1);
  jx_fn_free(tf);
  return 0;
}
