/* bench_pmap: data-parallel training on in-process devices (jx_pmap).
 *
 * The letter classifier's network (examples/letters: 1296-512-512-26 tanh
 * MLP, softmax cross-entropy, plain SGD), a global batch of 128 random
 * examples per step, run two ways in the same process:
 *
 *   1 device  x 1 thread   jit(step) with jx_set_num_threads(1)
 *   2 devices x 1 thread   pmap(step) over 2 CPU devices, each on its own
 *                          thread with a 1-thread share of a 2-thread pool;
 *                          each device takes 64 examples, the gradients are
 *                          averaged with pmean, every replica updates
 *
 * and prints examples per second (median over rounds, alternating the two)
 * and their ratio (issue #17's goal: >= 1.7x). Indicative only on a loaded
 * machine.
 *
 *   build/bench/bench_pmap [--steps 40] [--rounds 3] */
#include <jx.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum { B = 128, D = 1296, H = 512, C = 26 };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* CPU seconds of the whole process (every thread): the work, apart from
 * how the machine's load let it run */
static double cpu_s(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec * 1e-6 + (double)u.ru_stime.tv_sec +
         (double)u.ru_stime.tv_usec * 1e-6;
}

static jx_t predict(jx_t params, jx_t inputs) {
  jx_t outputs = NULL;
  for (int i = 0; i < jx_len(params); i++) {
    jx_t W = jx_at(jx_at(params, i), 0), b = jx_at(jx_at(params, i), 1);
    outputs = jx_add(jx_dot(inputs, W), b);
    inputs = jx_tanh(outputs);
  }
  return outputs;
}
static jx_t loss(const jx_t *a, void *u) {
  (void)u;
  jx_t logp = jx_log_softmax(predict(a[0], a[1]), -1);
  return jx_neg(jx_mean(jx_sum_axes(jx_mul(logp, jx_one_hot(a[2], C)), 1, (int[]){-1}, false)));
}
static jx_t sgd_leaf(jx_t p, jx_t g, void *u) {
  (void)u;
  return jx_sub(p, jx_mul(g, jx_scalar(0.01)));
}
/* (params, x, y) -> params; dp: the gradient pmean'd over "batch" */
static jx_t step(const jx_t *a, void *u) {
  jx_t g = JX_CALL(jx_grad(jx_fn_new(loss, 3, NULL), 0), a[0], a[1], a[2]);
  if (u) g = jx_pmean(g, "batch");
  return jx_tree_map2(sgd_leaf, a[0], g, NULL);
}

static jx_t init_params(void) {
  int sizes[4] = {D, H, H, C};
  jx_t layers[3], keys = jx_random_split(jx_random_key(0), 3);
  for (int i = 0; i < 3; i++) {
    jx_t k = jx_reshape(jx_slice(keys, (int64_t[]){i, 0}, (int64_t[]){i + 1, 2}, NULL), JX_SHAPE(2));
    jx_t W = jx_mul(jx_random_normal(k, JX_F32, JX_SHAPE(sizes[i], sizes[i + 1])), jx_scalar(0.03));
    layers[i] = JX_TUPLE(W, jx_zeros(JX_F32, JX_SHAPE(sizes[i + 1])));
  }
  return jx_list(3, layers);
}

/* examples per second over `steps` steps; ndev 1: jit, else pmap */
static double run(int ndev, int steps, jx_t X, jx_t Y, double *cpu_per_step) {
  jx_set_num_threads(ndev);
  jx_set_cpu_devices(ndev);
  jx_pool_push();
  jx_fn *f = jx_fn_new(step, 3, ndev > 1 ? (void *)1 : NULL);
  jx_fn *s = ndev > 1 ? jx_pmap(f, (int[]){JX_NONE, 0, 0}, JX_NONE, "batch") : jx_jit(f); /* replicated out */
  jx_t x = ndev > 1 ? jx_reshape(X, JX_SHAPE(ndev, B / ndev, D)) : X;
  jx_t y = ndev > 1 ? jx_reshape(Y, JX_SHAPE(ndev, B / ndev)) : Y;
  jx_t p = jx_retain(init_params());
  double t0 = 0, c0 = 0;
  for (int k = -1; k < steps; k++) { /* step -1: compile */
    if (k == 0) t0 = now(), c0 = cpu_s();
    jx_pool_push();
    jx_t out = JX_CALL(s, p, x, y);
    if (!jx_ok(out)) {
      fprintf(stderr, "bench_pmap: %s\n", jx_error(out));
      exit(1);
    }
    jx_t np = jx_retain(out);
    jx_pool_pop();
    jx_release(p);
    p = np;
  }
  double t = now() - t0;
  *cpu_per_step = (cpu_s() - c0) / steps;
  jx_release(p);
  jx_pool_pop();
  return (double)steps * B / t;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  int steps = 40, rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
    if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
  }
  if (steps < 1 || rounds < 1 || rounds > 32) return fprintf(stderr, "bench_pmap: bad --steps/--rounds\n"), 2;
  jx_t key = jx_random_key(1);
  jx_t X = jx_retain(jx_random_normal(key, JX_F32, JX_SHAPE(B, D)));
  jx_t Y = jx_retain(jx_random_randint(jx_random_fold_in(key, 1), JX_I32, JX_SHAPE(B), 0, C));
  double one[32], two[32];
  for (int r = 0; r < rounds; r++) {
    double c1, c2;
    one[r] = run(1, steps, X, Y, &c1);
    two[r] = run(2, steps, X, Y, &c2);
    printf("round %d: 1 device x 1 thread %.0f ex/s (%.1f cpu ms/step), 2 devices x 1 thread %.0f ex/s (%.1f "
           "cpu "
           "ms/step) (%.2fx)\n",
           r + 1, one[r], c1 * 1e3, two[r], c2 * 1e3, two[r] / one[r]);
    fflush(stdout);
  }
  qsort(one, (size_t)rounds, sizeof *one, cmp), qsort(two, (size_t)rounds, sizeof *two, cmp);
  double m1 = one[rounds / 2], m2 = two[rounds / 2];
  printf("bench_pmap: data-parallel epoch rate, median of %d rounds of %d steps (batch %d):\n", rounds, steps,
         B);
  printf("  1 device x 1 thread   %8.0f examples/s\n  2 devices x 1 thread  %8.0f examples/s\n  ratio %.2fx "
         "(goal "
         ">= 1.7x)\n",
         m1, m2, m2 / m1);
  jx_release(X), jx_release(Y);
  jx_set_cpu_devices(0);
  return 0;
}
