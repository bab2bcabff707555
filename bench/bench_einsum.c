/* einsum against the hand-written equivalent on the same shapes, eager and
 * under jit (issue #18: einsum("bij,bjk->bik") within 1.1x of jx_matmul).
 * Each pair is timed alternately, round by round, so that drift on a
 * shared machine hits both sides; medians and their ratio are printed.
 *
 *   usage: bench_einsum [reps=21]
 *
 * Rows: batch matmul (two sizes), plain matmul, attention scores
 * (bhqd,bhkd->bhqk vs matmul with a transposed operand), and a 3-matrix
 * chain whose cheap order is not left to right (ab,bc,cd->ad vs the
 * left-to-right matmuls). */
#include <jx.h>

#include "bench_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  const char *name, *spec;
  int n;
  int64_t shapes[3][4];
  int ranks[3];
  jx_body manual;
} row;

static jx_t mm(const jx_t *a, void *u) {
  (void)u;
  return jx_matmul(a[0], a[1]);
}
static jx_t attn(const jx_t *a, void *u) {
  (void)u;
  return jx_matmul(a[0], jx_transpose(a[1], (int[]){0, 1, 3, 2}));
}
static jx_t chain(const jx_t *a, void *u) {
  (void)u;
  return jx_matmul(jx_matmul(a[0], a[1]), a[2]);
}
static jx_t ein(const jx_t *a, void *u) {
  const row *r = u;
  return jx_einsum(r->spec, r->n, a);
}

static const row ROWS[] = {
    {"bmm 32x128x128x128", "bij,bjk->bik", 2, {{32, 128, 128}, {32, 128, 128}}, {3, 3}, mm},
    {"bmm 8x256x256x256", "bij,bjk->bik", 2, {{8, 256, 256}, {8, 256, 256}}, {3, 3}, mm},
    {"matmul 512", "ij,jk->ik", 2, {{512, 512}, {512, 512}}, {2, 2}, mm},
    {"attention 4x8x128x64", "bhqd,bhkd->bhqk", 2, {{4, 8, 128, 64}, {4, 8, 128, 64}}, {4, 4}, attn},
    {"chain 1000x20,20x1000,1000x30",
     "ab,bc,cd->ad",
     3,
     {{1000, 20}, {20, 1000}, {1000, 30}},
     {2, 2, 2},
     chain},
};

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 21;
  if (reps < 1 || reps > 101) reps = 21;
  jx_t key = jx_random_key(0);
  printf("# bench_einsum: f32, %d threads, median of %d alternating rounds (ms)\n", jx_num_threads(), reps);
  printf("%-30s %-5s %10s %10s %7s\n", "case", "mode", "einsum", "manual", "ratio");
  for (size_t i = 0; i < sizeof ROWS / sizeof ROWS[0]; i++) {
    const row *r = &ROWS[i];
    jx_pool_push();
    jx_t in[3];
    for (int k = 0; k < r->n; k++)
      in[k] =
          jx_random_normal(jx_random_fold_in(key, (uint32_t)(10 * i + k)), JX_F32, r->ranks[k], r->shapes[k]);
    jx_fn *fe = jx_fn_new(ein, r->n, (void *)r), *fm = jx_fn_new(r->manual, r->n, NULL);
    jx_fn *je = jx_jit(fe), *jm = jx_jit(fm);
    for (int mode = 0; mode < 2; mode++) {
      jx_fn *a = mode ? je : fe, *b = mode ? jm : fm;
      jx_t ya = jx_call(a, in), yb = jx_call(b, in); /* warm up (and compile) */
      double err = jx_item(jx_max(jx_abs(jx_sub(ya, yb)))), scale = jx_item(jx_max(jx_abs(yb)));
      if (!jx_ok(ya) || !jx_ok(yb) || !(err <= 1e-4 * (1 + scale))) {
        printf("%-30s %-5s FAILED: %s (max diff %g)\n", r->name, mode ? "jit" : "eager",
               jx_ok(ya) ? jx_error(yb) : jx_error(ya), err);
        continue;
      }
      double ta[101], tb[101];
      for (int k = 0; k < reps; k++) {
        jx_pool_push();
        double t0 = now_ms();
        jx_call(a, in);
        double t1 = now_ms();
        jx_call(b, in);
        double t2 = now_ms();
        ta[k] = t1 - t0, tb[k] = t2 - t1;
        jx_pool_pop();
      }
      qsort(ta, (size_t)reps, sizeof ta[0], cmp);
      qsort(tb, (size_t)reps, sizeof tb[0], cmp);
      double ma = ta[reps / 2], mb = tb[reps / 2];
      printf("%-30s %-5s %10.3f %10.3f %7.3f\n", r->name, mode ? "jit" : "eager", ma, mb, ma / mb);
    }
    jx_fn_free(je), jx_fn_free(jm), jx_fn_free(fe), jx_fn_free(fm);
    jx_pool_pop();
  }
  return 0;
}
