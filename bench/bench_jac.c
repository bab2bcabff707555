/* jacfwd / jacrev as one batched pass over the basis (vmap of the
 * pushforward / pullback, as JAX builds them) against one pass per basis
 * vector (what jx did before: linearize once, then evaluate the linear map
 * or its transpose n times), for f: R^n -> R^n, f(x) = tanh(W x) * x.
 *
 * usage: bench_jac [n=100] [reps=5] */
#include <jx.h>

#include "bench_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static jx_t f_body(const jx_t *a, void *u) {
  jx_t W = *(jx_t *)u;
  return jx_mul(jx_tanh(jx_matmul(W, a[0])), a[0]);
}

typedef struct {
  jx_fn *f;
  int n;
  bool reverse;
} loop_ctx;

/* the per-basis-vector Jacobian: one linearize, n passes */
static jx_t loop_jac(const jx_t *a, void *u) {
  loop_ctx *c = u;
  jx_fn *pf;
  jx_t *cols = malloc(sizeof(jx_t) * (size_t)c->n);
  if (c->reverse)
    jx_vjp(c->f, a, &pf);
  else
    jx_linearize(c->f, a, &pf);
  for (int i = 0; i < c->n; i++) {
    jx_t e = jx_one_hot(jx_scalar_int(i), c->n);
    jx_t r = JX_CALL(pf, jx_astype(e, JX_F32));
    cols[i] = c->reverse ? jx_at(r, 0) : r;
  }
  jx_t J = jx_stack(c->n, cols, c->reverse ? 0 : 1);
  free(cols);
  jx_fn_free(pf);
  return J;
}

static double time_ms(jx_fn *f, jx_t x, int reps) {
  double t[32];
  for (int k = 0; k < reps && k < 32; k++) {
    double t0 = now_ms();
    jx_pool_push();
    (void)jx_item(jx_sum(JX_CALL(f, x)));
    jx_pool_pop();
    t[k] = now_ms() - t0;
  }
  qsort(t, (size_t)(reps < 32 ? reps : 32), sizeof *t, cmp);
  return t[(reps < 32 ? reps : 32) / 2];
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 100, reps = argc > 2 ? atoi(argv[2]) : 5;
  jx_t W = jx_retain(jx_mul(jx_random_normal(jx_random_key(0), JX_F32, JX_SHAPE(n, n)), jx_scalar(0.1)));
  jx_t x = jx_retain(jx_random_normal(jx_random_key(1), JX_F32, JX_SHAPE(n)));
  jx_fn *f = jx_fn_new(f_body, 1, &W);
  printf("jacobians of f: R^%d -> R^%d, eager, f32 (median of %d)\n", n, n, reps);
  for (int rev = 0; rev < 2; rev++) {
    loop_ctx c = {f, n, rev};
    jx_fn *batched = rev ? jx_jacrev(f, 0) : jx_jacfwd(f, 0), *loop = jx_fn_new(loop_jac, 1, &c);
    jx_t a = JX_CALL(batched, x), b = JX_CALL(loop, x);
    double err = jx_item(jx_max(jx_abs(jx_sub(a, b))));
    double tb = time_ms(batched, x, reps), tl = time_ms(loop, x, reps);
    printf("%s: batched %8.2f ms   per basis vector %8.2f ms   speedup %.1fx   (max diff %.2g)\n",
           rev ? "jacrev" : "jacfwd", tb, tl, tl / tb, err);
  }
  return 0;
}
