/* Scatter-add of 1M f32 updates at random indices into a 1M-element array
 * (x.at[idx].add(v): jx_at_add, eager and under jit) against the memory
 * bandwidth of a plain C copy loop measured in the same run.
 *
 * Bytes a scatter-add must move at the least: the indices (4 B each), the
 * updates (4 B), and the target read and written once (8 B per element);
 * its effective bandwidth is those bytes over its time. The copy loop
 * streams a 64 MiB buffer (twice the L3 of most machines): read + write.
 * Goal: scatter-add >= 50% of the copy bandwidth.
 *
 * usage: bench_scatter [reps=15] */
#include <jx.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { N = 1 << 20, M = 1 << 20 };

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp);
  return v[n / 2];
}

static jx_t body(const jx_t *a, void *u) {
  (void)u;
  return jx_at_add(a[0], a[1], a[2], 0);
}

/* the hand-written C peer: the operand copied, then every update added in
 * order (one thread: what a C programmer writes for x.at[idx].add(v)) */
static void c_scatter_add(float *restrict y, const float *restrict x, const int32_t *restrict idx,
                          const float *restrict upd) {
  memcpy(y, x, sizeof(float) * N);
  for (int i = 0; i < M; i++) y[idx[i]] += upd[i];
}

/* a plain copy loop, volatile-free: the compiler may vectorize it */
static void copy_loop(float *restrict dst, const float *restrict src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = src[i];
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 15;
  if (reps < 1 || reps > 1000) reps = 15;
  int32_t *idx = malloc(sizeof(int32_t) * M);
  float *upd = malloc(sizeof(float) * M);
  uint64_t s = 42;
  for (int i = 0; i < M; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    idx[i] = (int32_t)(s % N);
    upd[i] = (float)(s >> 40) * 1e-7f;
  }
  jx_t x = jx_retain(jx_zeros(JX_F32, JX_SHAPE(N)));
  jx_t ix = jx_retain(jx_array(JX_I32, JX_SHAPE(M), idx));
  jx_t u = jx_retain(jx_array(JX_F32, JX_SHAPE(M), upd));
  jx_fn *f = jx_fn_new(body, 3, NULL), *jf = jx_jit(f);
  double te[1000], tj[1000], tc[1000], ts[1000];
  float *cy = malloc(sizeof(float) * N), *cx = calloc(N, sizeof(float));
  jx_t r = JX_CALL(jf, x, ix, u); /* compile */
  if (!jx_ok(r)) return fprintf(stderr, "bench_scatter: %s\n", jx_error(r)), 1;

  size_t cn = (64u << 20) / sizeof(float);
  float *a = malloc(cn * sizeof(float)), *b = malloc(cn * sizeof(float));
  memset(a, 1, cn * sizeof(float)), memset(b, 0, cn * sizeof(float));
  for (int k = 0; k < reps; k++) { /* alternate, so drift hits all three */
    double t0 = now_s();
    copy_loop(b, a, cn);
    tc[k] = now_s() - t0;
    t0 = now_s();
    c_scatter_add(cy, cx, idx, upd);
    ts[k] = now_s() - t0;
    jx_pool_push();
    t0 = now_s();
    jx_t y = jx_at_add(x, ix, u, 0);
    te[k] = now_s() - t0;
    t0 = now_s();
    jx_t z = JX_CALL(jf, x, ix, u);
    tj[k] = now_s() - t0;
    if (!jx_ok(y) || !jx_ok(z)) return fprintf(stderr, "bench_scatter: failed\n"), 1;
    jx_pool_pop();
  }
  double copy_bw = 2.0 * (double)cn * sizeof(float) / median(tc, reps);
  double bytes = (double)M * (4 + 4) + (double)N * 8;
  double e = median(te, reps), j = median(tj, reps), c = median(ts, reps);
  printf("copy loop (64 MiB): %.2f GB/s\n", copy_bw / 1e9);
  printf("scatter-add 1M f32 updates into 1M (eager jx_at_add): %.3f ms  %.2f GB/s  %.0f%% of copy\n",
         e * 1e3, bytes / e / 1e9, 100 * bytes / e / copy_bw);
  printf("scatter-add 1M f32 updates into 1M (jit):             %.3f ms  %.2f GB/s  %.0f%% of copy\n",
         j * 1e3, bytes / j / 1e9, 100 * bytes / j / copy_bw);
  printf("scatter-add, hand-written C loop (1 thread):     %.3f ms  %.2f GB/s  %.0f%% of copy\n", c * 1e3,
         bytes / c / 1e9, 100 * bytes / c / copy_bw);
  printf("eager / C %.2f, jit / C %.2f (%d threads)\n", e / c, j / c, jx_num_threads());
  printf("(bytes counted: 4 per index + 4 per update + 8 per target element; goal >= 50%% of copy)\n");
  if (b[cn / 2] != a[cn / 2]) return 1;
  jx_fn_free(jf), jx_fn_free(f);
  jx_release(x), jx_release(ix), jx_release(u);
  free(a), free(b), free(idx), free(upd), free(cy), free(cx);
  return 0;
}
