/* Out of memory at every allocation (tests/test_oom.c's method) through
 * the transformations of issue 19: custom_jvp and custom_vjp under grad,
 * vmap and forward mode, checkpoint under grad (every policy), grad_ex
 * with aux, linearize, jacfwd/jacrev over trees, while_loop_bounded under
 * grad and vmap_chunked. The workload runs once to count its allocations
 * (K); then for N in 1..K (every `stride`-th; `test_oom_custom 1` for all,
 * `test_oom_custom 1000000 N` for N alone)
 * with allocation N failing: it must give an error value or the reference
 * result, and every block it made must be freed again. */
#include "check.h"

#include <jx.h>

void jx_buffer_cache_trim(void);
int jx_cpu_module_count(void);

/* blocks live, but the buffers jx keeps for reuse and the compiled
 * modules it keeps loaded (while's body is compiled) */
static long live;
static long settled_live(void) {
  jx_buffer_cache_trim();
  return live - jx_cpu_module_count();
}

static long alloc_count, fail_at;
static bool paused;

static void *test_alloc(void *ud, void *p, size_t n) {
  (void)ud;
  if (n && !paused && ++alloc_count == fail_at) return NULL;
  if (!p && n) live++;
  if (p && !n) live--;
  if (!n) {
    free(p);
    return NULL;
  }
  return realloc(p, n);
}

/* ------------------------------------------------------------ workload */
static jx_t sq(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(a[0], a[0]);
}
static jx_t sq_jvp(const jx_t *a, void *u) {
  (void)u;
  jx_t x = jx_at(a[0], 0), t = jx_at(a[1], 0);
  return JX_TUPLE(jx_mul(x, x), jx_mul(jx_scalar(2.0), jx_mul(x, t)));
}
static jx_t sq_fwd(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_mul(a[0], a[0]), a[0]);
}
static jx_t sq_bwd(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_mul(jx_scalar(2.0), jx_mul(a[0], a[1])));
}
static jx_t layer(const jx_t *a, void *u) {
  (void)u;
  return jx_tanh(jx_add(jx_matmul(a[1], a[0]), jx_checkpoint_name(a[1], "h")));
}
static jx_t use(const jx_t *a, void *u) { /* sum(u(x)) */
  return jx_sum(JX_CALL((jx_fn *)u, a[0]));
}
static jx_t use2(const jx_t *a, void *u) { return jx_sum(JX_CALL((jx_fn *)u, a[0], a[1])); }
static jx_t aux_f(const jx_t *a, void *u) {
  (void)u;
  jx_t s = jx_sum(jx_mul(a[0], a[1]));
  return JX_TUPLE(jx_mul(s, s), s);
}
static jx_t tree_f(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_sin(jx_at(a[0], 0)), jx_sum(jx_at(a[0], 1)));
}
static jx_t wc(const jx_t *a, void *u) {
  (void)u;
  return jx_lt(jx_sum(a[0]), jx_scalar(6.5));
}
static jx_t wb(const jx_t *a, void *u) {
  (void)u;
  return jx_add(jx_mul(a[0], jx_scalar(1.2)), jx_mul(jx_scalar(0.1), jx_sin(a[0])));
}
static jx_t wloop(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_while_loop_bounded(jx_fn_new(wc, 1, NULL), jx_fn_new(wb, 1, NULL), a[0], 100));
}

/* every result of the workload, as a tuple */
static jx_t workload(void) {
  jx_t x = jx_array(JX_F64, JX_SHAPE(3), (double[]){0.1, 0.2, 0.3});
  jx_t W = jx_reshape(jx_mul(jx_arange(JX_F64, 0, 9, 1), jx_scalar(0.1)), 2, (int64_t[]){3, 3});
  jx_fn *cj = jx_custom_jvp(jx_fn_new(sq, 1, NULL), jx_fn_new(sq_jvp, 2, NULL));
  jx_fn *cv = jx_custom_vjp(jx_fn_new(sq, 1, NULL), jx_fn_new(sq_fwd, 1, NULL), jx_fn_new(sq_bwd, 2, NULL));
  jx_t r[12];
  r[0] = JX_CALL(jx_grad(jx_fn_new(use, 1, cj), 0), x);
  r[1] = JX_CALL(jx_grad(jx_fn_new(use, 1, cv), 0), x);
  r[2] = JX_CALL(jx_vmap(jx_grad(jx_fn_new(use, 1, cv), 0), NULL, 0), jx_stack(2, (jx_t[]){x, x}, 0));
  r[3] = jx_at(jx_jvp(cv, &x, &x), 1);
  jx_t rp[2];
  for (int p = 0; p < 2; p++) {
    jx_fn *ck = p ? jx_checkpoint_ex(jx_fn_new(layer, 2, NULL), JX_REMAT_NAMES, 1, (const char *[]){"h"})
                  : jx_checkpoint(jx_fn_new(layer, 2, NULL), JX_REMAT_DOTS);
    rp[p] = JX_CALL(jx_grad(jx_fn_new(use2, 2, ck), 0), W, x);
  }
  r[4] = rp[0], r[5] = rp[1];
  r[6] = JX_CALL(jx_value_and_grad_ex(jx_fn_new(aux_f, 2, NULL), 2, (int[]){0, 1}, true), x, x);
  jx_fn *lf;
  jx_t lo = jx_linearize(jx_fn_new(sq, 1, NULL), &x, &lf);
  r[7] = jx_ok(lo) ? JX_CALL(lf, x) : lo;
  r[8] = JX_CALL(jx_jacfwd(jx_fn_new(tree_f, 1, NULL), 0), JX_TUPLE(x, W));
  r[9] = JX_CALL(jx_jacrev(jx_fn_new(tree_f, 1, NULL), 0), JX_TUPLE(x, W));
  r[10] = JX_CALL(jx_grad(jx_fn_new(wloop, 1, NULL), 0), x);
  r[11] = JX_CALL(jx_vmap_chunked(jx_fn_new(sq, 1, NULL), NULL, 0, 2), W);
  return jx_tuple(12, r);
}

static double leaf_sum(jx_t t) {
  jx_t l = jx_tree_flatten(t, NULL);
  double s = 0;
  for (int i = 0; jx_ok(l) && i < jx_len(l); i++) s += jx_item(jx_sum(jx_astype(jx_at(l, i), JX_F64)));
  return s;
}

int main(int argc, char **argv) {
  long stride = argc > 1 ? atol(argv[1]) : 7, from = argc > 2 ? atol(argv[2]) : 1;
  jx_set_allocator(test_alloc, NULL);
  check_private_cache("oom_custom");
  /* reference: results, and how many allocations the workload makes */
  jx_pool_push();
  long c0 = alloc_count;
  jx_t ref = workload();
  long total = alloc_count - c0;
  CHECK(jx_ok(ref));
  double want[12];
  for (int i = 0; i < 12; i++) want[i] = leaf_sum(jx_at(ref, i));
  jx_pool_pop();
  long errors = 0, runs = 0;
  for (long n = from; n <= total; n += stride) {
    long live0 = settled_live();
    jx_pool_push();
    alloc_count = 0, fail_at = n;
    jx_t r = workload();
    fail_at = 0;
    paused = true;
    for (int i = 0; jx_ok(r) && i < 12; i++) {
      jx_t ri = jx_at(r, i);
      if (!jx_ok(ri)) continue; /* an error value: fine */
      double s = leaf_sum(ri);
      CHECKF(check_close(s, want[i], 1e-12, 1e-12), "fail at %ld: result %d is %g, want %g", n, i, s,
             want[i]);
    }
    errors += !jx_ok(r);
    paused = false;
    jx_pool_pop();
    runs++;
    long now = settled_live();
    CHECKF(now <= live0, "fail at %ld: %ld blocks leaked (live %ld, modules %d)", n, now - live0, live,
           jx_cpu_module_count());
  }
  printf("oom_custom: %ld allocations, %ld runs (stride %ld), %ld ended in an error value\n", total, runs,
         stride, errors);
  check_private_cache_remove();
  return check_report("oom_custom");
}
