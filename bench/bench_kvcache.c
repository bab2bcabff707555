/* A KV-cache scan under jit: carry (C [T, D] f32, t), each step writes
 * one row, C = dynamic_update_slice(C, x_t, (t, 0)), over T steps. The
 * generated loop updates C in place (render_loop.c, carry_in_place), so a
 * step costs O(D) whatever T; a driver that ping-pongs the carry copies
 * all of C every step, O(T D) per step and O(T^2 D) per scan.
 *
 * usage: bench_kvcache [reps=21] [D=256] [T...=256 1024 4096]
 * prints, per T, the median ms of one jitted call and its cost per step */
#include <jx.h>

#include "bench_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static jx_t step(const jx_t *a, void *u) {
  (void)u;
  jx_t C = jx_at(a[0], 0), t = jx_at(a[0], 1);
  jx_t Cn = jx_dynamic_update_slice(C, a[1], (jx_t[]){t, jx_scalar_of(JX_I32, 0)});
  return JX_TUPLE(JX_TUPLE(Cn, jx_add(t, jx_scalar_of(JX_I32, 1))), t);
}
static jx_t fill(const jx_t *a, void *u) {
  (void)u;
  jx_fn *s = jx_fn_new(step, 2, NULL);
  jx_t r = jx_scan(s, JX_TUPLE(a[0], jx_scalar_of(JX_I32, 0)), a[1]);
  jx_fn_free(s);
  return jx_at(jx_at(r, 0), 0);
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 21;
  int64_t D = argc > 2 ? atoll(argv[2]) : 256;
  int64_t dflt[] = {256, 1024, 4096};
  int nT = argc > 3 ? argc - 3 : 3;
  jx_fn *f = jx_fn_new(fill, 2, NULL), *jf = jx_jit(f);
  printf("KV-cache scan under jit: C [T, %lld] f32, one row per step, %d reps (medians)\n", (long long)D,
         reps);
  for (int i = 0; i < nT; i++) {
    int64_t T = argc > 3 ? atoll(argv[3 + i]) : dflt[i];
    jx_pool_push();
    jx_t C0 = jx_zeros(JX_F32, JX_SHAPE(T, D));
    jx_t xs = jx_astype(jx_reshape(jx_arange(JX_F32, 0, (double)(T * D), 1), JX_SHAPE(T, 1, D)), JX_F32);
    jx_t r = JX_CALL(jf, C0, xs); /* compile */
    if (!jx_ok(r)) {
      fprintf(stderr, "bench_kvcache: %s\n", jx_error(r));
      return 1;
    }
    /* every row holds its x */
    double diff = jx_item(jx_astype(jx_max(jx_abs(jx_sub(r, jx_reshape(xs, JX_SHAPE(T, D))))), JX_F64));
    if (diff != 0) {
      fprintf(stderr, "bench_kvcache: the cache differs from the rows by %g\n", diff);
      return 1;
    }
    double *ms = malloc(sizeof(double) * (size_t)reps);
    for (int k = 0; k < reps; k++) {
      jx_pool_push();
      double t0 = now_ms();
      r = JX_CALL(jf, C0, xs);
      ms[k] = now_ms() - t0;
      jx_pool_pop();
    }
    qsort(ms, (size_t)reps, sizeof *ms, cmp);
    double med = ms[reps / 2];
    printf("T=%-6lld %9.3f ms/call %8.3f us/step\n", (long long)T, med, med * 1e3 / (double)T);
    free(ms);
    jx_pool_pop();
  }
  jx_fn_free(jf), jx_fn_free(f);
  return 0;
}
