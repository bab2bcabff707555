/* Convolution benchmarks, jx side (bench/conv_torch.py is PyTorch's; run
 * both with bash bench/conv.sh):
 *   cnn:   one training step (jit(value_and_grad) + Adam, one jitted
 *          step) of examples/cnn.c's LeNet-style net, batch 128, NHWC;
 *   layer: a 3x3 convolution, N=32, 56x56, 64 -> 64 channels, NCHW/OIHW,
 *          padding 1: forward, the data gradient, the filter gradient
 *          (each gradient under jit, its forward included, as PyTorch's
 *          autograd.grad is timed).
 * Prints "name median_ms" lines; CNN_ONLY=1 stops after the CNN row
 * (for JX_LOG=profile or perf on the step alone). */
#include <jx.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* ------------------------------------------------------------ the CNN */
static const int64_t POOL[2] = {2, 2};
static jx_t block(jx_t x, jx_t l) {
  jx_t y =
      jx_conv_general_dilated(x, jx_at(l, 0), NULL, (int64_t[]){2, 2, 2, 2}, NULL, NULL, "NHWC,HWIO,NHWC", 1);
  return jx_max_pool(jx_relu(jx_add(y, jx_at(l, 1))), 2, POOL, POOL, "VALID");
}
static jx_t loss(const jx_t *a, void *u) {
  (void)u;
  jx_t p = a[0], x = block(block(a[1], jx_at(p, 0)), jx_at(p, 1));
  x = jx_reshape(x, JX_SHAPE(jx_shape(x)[0], -1));
  x = jx_relu(jx_add(jx_dot(x, jx_at(jx_at(p, 2), 0)), jx_at(jx_at(p, 2), 1)));
  jx_t logits = jx_add(jx_dot(x, jx_at(jx_at(p, 3), 0)), jx_at(jx_at(p, 3), 1));
  jx_t logp = jx_log_softmax(logits, -1);
  return jx_neg(jx_mean(jx_sum_axes(jx_mul(logp, jx_one_hot(a[2], 10)), 1, (int[]){-1}, false)));
}
typedef struct {
  jx_optimizer *opt;
  jx_fn *vg;
} ctx_t;
static jx_t step(const jx_t *a, void *u) {
  ctx_t *c = u;
  jx_t vg = jx_call(c->vg, (jx_t[]){a[0], a[2], a[3]});
  jx_t r = jx_optim_update(c->opt, jx_at(vg, 1), a[1], a[0]);
  return JX_TUPLE(jx_apply_updates(a[0], jx_at(r, 0)), jx_at(r, 1), jx_at(vg, 0));
}
static jx_t layer(int i, int nd, const int64_t *shape, double scale) {
  jx_t W = jx_mul(jx_random_normal(jx_random_key((uint64_t)i), JX_F32, nd, shape), jx_scalar(scale));
  return JX_TUPLE(W, jx_zeros(JX_F32, 1, &shape[nd - 1]));
}
static double bench_cnn(int reps) {
  jx_t params = jx_retain(
      jx_list(4, (jx_t[]){layer(0, JX_SHAPE(5, 5, 1, 16), 0.3), layer(1, JX_SHAPE(5, 5, 16, 32), 0.07),
                          layer(2, JX_SHAPE(1568, 128), 0.035), layer(3, JX_SHAPE(128, 10), 0.1)}));
  jx_optimizer *opt = jx_adam(jx_constant_schedule(1e-3), 0.9, 0.999, 1e-8);
  jx_fn *lf = jx_fn_new(loss, 3, NULL), *vg = jx_value_and_grad(lf, 0), *jvg = jx_jit(vg);
  ctx_t c = {opt, jvg};
  jx_fn *sb = jx_fn_new(step, 4, &c), *js = jx_jit(sb);
  jx_t state = jx_retain(jx_optim_init(opt, params));
  jx_t x = jx_retain(jx_random_normal(jx_random_key(7), JX_F32, JX_SHAPE(128, 28, 28, 1)));
  jx_t y = jx_retain(
      jx_astype(jx_floor(jx_random_uniform(jx_random_key(8), JX_F32, JX_SHAPE(128), 0, 10)), JX_I32));
  double t[64];
  for (int r = -2; r < reps; r++) { /* two warm-up steps (the compile) */
    jx_pool_push();
    double t0 = now();
    jx_t out = JX_CALL(js, params, state, x, y);
    double lv = jx_item(jx_at(out, 2));
    if (r >= 0) t[r] = now() - t0;
    if (!jx_ok(out) || lv != lv) fprintf(stderr, "bench_conv: cnn step failed: %s\n", jx_error(out)), exit(1);
    jx_t np = jx_retain(jx_at(out, 0)), ns = jx_retain(jx_at(out, 1));
    jx_pool_pop();
    jx_release(params), jx_release(state);
    params = np, state = ns;
  }
  jx_release(params), jx_release(state), jx_release(x), jx_release(y);
  jx_fn_free(js), jx_fn_free(sb), jx_fn_free(jvg), jx_fn_free(vg), jx_fn_free(lf);
  jx_optim_free(opt);
  qsort(t, (size_t)reps, sizeof t[0], cmp);
  return t[reps / 2];
}

/* ---------------------------------------------------------- the layer */
static jx_t conv(jx_t x, jx_t w) {
  return jx_conv_general_dilated(x, w, NULL, (int64_t[]){1, 1, 1, 1}, NULL, NULL, NULL, 1);
}
static jx_t fwd(const jx_t *a, void *u) {
  (void)u;
  return conv(a[0], a[1]);
}
static jx_t dot_ct(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_mul(conv(a[0], a[1]), a[2]));
}
static double time_fn(jx_fn *f, const jx_t *args, int reps) {
  double t[64];
  for (int r = -2; r < reps; r++) {
    jx_pool_push();
    double t0 = now();
    jx_t out = jx_call(f, args);
    int bad = !jx_ok(out);
    if (r >= 0) t[r] = now() - t0;
    if (bad) fprintf(stderr, "bench_conv: %s\n", jx_error(out)), exit(1);
    jx_pool_pop();
  }
  qsort(t, (size_t)reps, sizeof t[0], cmp);
  return t[reps / 2];
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 9;
  reps = reps < 1 ? 1 : reps > 64 ? 64 : reps;
  printf("cnn_step_b128 %.3f\n", 1e3 * bench_cnn(reps));
  fflush(stdout);
  if (getenv("CNN_ONLY")) return 0; /* the CNN row alone */
  jx_t x = jx_random_normal(jx_random_key(1), JX_F32, JX_SHAPE(32, 64, 56, 56));
  jx_t w = jx_mul(jx_random_normal(jx_random_key(2), JX_F32, JX_SHAPE(64, 64, 3, 3)), jx_scalar(0.05));
  jx_t ct = jx_random_normal(jx_random_key(3), JX_F32, JX_SHAPE(32, 64, 56, 56));
  jx_fn *f = jx_fn_new(fwd, 2, NULL), *jf = jx_jit(f);
  jx_fn *g = jx_fn_new(dot_ct, 3, NULL), *gx = jx_grad(g, 0), *gw = jx_grad(g, 1), *jgx = jx_jit(gx),
        *jgw = jx_jit(gw);
  jx_t args[3] = {x, w, ct};
  printf("conv3x3_fwd %.3f\n", 1e3 * time_fn(jf, args, reps));
  printf("conv3x3_grad_input %.3f\n", 1e3 * time_fn(jgx, args, reps));
  printf("conv3x3_grad_weight %.3f\n", 1e3 * time_fn(jgw, args, reps));
  jx_fn_free(jgw), jx_fn_free(jgx), jx_fn_free(gw), jx_fn_free(gx), jx_fn_free(g), jx_fn_free(jf),
      jx_fn_free(f);
  return 0;
}
