/* A scan RNN, forward + backward under jit, against PyTorch eager with an
 * explicit Python loop (bench/rnn_torch.py, same sizes), and compile time
 * for 100 vs 1000 steps (the loop is not unrolled, so it should not grow).
 *
 *   h_t = tanh(h_{t-1} W + x_t U + b),  loss = sum(h_T^2) + sum_t mean(h_t)
 *   hidden 256, input 256, batch 32, 100 steps, f32
 *
 * usage: bench_scan [reps=15] [steps for the compile-time measurement=100]
 * (run it once per step count: each process starts with a fresh cache) */
#include "bench_time.h"
#include <jx.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { H = 256, I = 256, B = 32 };

static jx_t step(const jx_t *a, void *u) {
  (void)u;
  jx_t p = jx_at(a[0], 0), h = jx_at(a[0], 1);
  jx_t W = jx_at(p, 0), U = jx_at(p, 1), b = jx_at(p, 2);
  jx_t hn = jx_tanh(jx_add(jx_add(jx_matmul(h, W), jx_matmul(a[1], U)), b));
  return JX_TUPLE(JX_TUPLE(p, hn), jx_mean(hn));
}
static jx_t loss(const jx_t *a, void *u) {
  (void)u;
  jx_fn *s = jx_fn_new(step, 2, NULL);
  jx_t r = jx_scan(s, JX_TUPLE(a[0], a[1]), a[2]);
  jx_fn_free(s);
  jx_t hT = jx_at(jx_at(r, 0), 1);
  return jx_add(jx_sum(jx_mul(hT, hT)), jx_sum(jx_at(r, 1)));
}

static jx_t randu(int ndim, const int64_t *shape, double scale, uint64_t *s) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  float *d = malloc(sizeof(float) * (size_t)n);
  for (int64_t i = 0; i < n; i++) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    d[i] = (float)(((double)(*s >> 11) / 9007199254740992.0 * 2 - 1) * scale);
  }
  jx_t x = jx_array(JX_F32, ndim, shape, d);
  free(d);
  return x;
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 15;
  uint64_t seed = 42;
  jx_t params = jx_retain(JX_TUPLE(randu(JX_SHAPE(H, H), 0.06, &seed), randu(JX_SHAPE(I, H), 0.06, &seed),
                                   randu(JX_SHAPE(H), 0.1, &seed)));
  jx_t h0 = jx_retain(randu(JX_SHAPE(B, H), 0.5, &seed));
  jx_fn *f = jx_fn_new(loss, 3, NULL), *vg = jx_value_and_grad(f, 0), *step_fn = jx_jit(vg);

  /* compile time: a fresh cache directory so that it really compiles */
  char dir[] = "/tmp/jx-bench-scan-XXXXXX";
  if (mkdtemp(dir)) setenv("JX_CACHE_DIR", dir, 1);
  /* compile time = first call (trace + compile + run) - second call (run) */
  double first[1], second[1];
  int lens[1] = {argc > 2 ? atoi(argv[2]) : 100};
  for (int k = 0; k < 1; k++) {
    jx_pool_push();
    jx_t xs = randu(JX_SHAPE(lens[k], B, I), 1.0, &seed);
    double t0 = now_ms();
    jx_t r = JX_CALL(step_fn, params, h0, xs);
    double t1 = now_ms();
    JX_CALL(step_fn, params, h0, xs);
    first[k] = t1 - t0, second[k] = now_ms() - t1;
    if (!jx_ok(r)) fprintf(stderr, "error: %s\n", jx_error(r));
    jx_pool_pop();
  }
  /* steady state, 100 steps */
  jx_pool_push();
  jx_t xs = randu(JX_SHAPE(100, B, I), 1.0, &seed);
  double t[64];
  if (reps > 64) reps = 64;
  for (int r = 0; r < reps; r++) {
    jx_pool_push();
    double t0 = now_ms();
    jx_t out = JX_CALL(step_fn, params, h0, xs);
    t[r] = now_ms() - t0;
    if (r == 0) printf("# loss %.6f\n", jx_item(jx_at(out, 0)));
    jx_pool_pop();
  }
  qsort(t, (size_t)reps, sizeof t[0], cmp);
  jx_pool_pop();
  printf("# bench_scan: RNN hidden %d, input %d, batch %d, f32, %d threads\n", H, I, B, jx_num_threads());
  printf("jx jit(value_and_grad(scan RNN)) 100 steps   median %8.3f ms (min %.3f)\n", t[reps / 2], t[0]);
  for (int k = 0; k < 1; k++)
    printf("jx trace + compile, %4d steps: %7.1f ms  (first call %.1f ms, second %.1f ms)\n", lens[k],
           first[k] - second[k], first[k], second[k]);
  jx_fn_free(step_fn), jx_fn_free(vg), jx_fn_free(f);
  jx_release(params), jx_release(h0);
  return 0;
}
