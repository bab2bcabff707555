/* Out of memory inside pmap (as tests/test_oom.c does for the rest): a
 * workload of pmap calls on 2 devices (collectives, a data-parallel
 * gradient, a bf16 psum) and a named vmap is run once to count its allocations (K),
 * then again with allocation N failing (and, in a second pass, every
 * allocation from N on), for a sample of N in 1..K. The failing
 * allocation lands on the calling thread or on one device's thread: each
 * step must end in an error value or its correct result (an error in one
 * device stops the other at its next collective: no hang), and every block
 * must be freed again once the pools are popped (no leak). The devices'
 * threads allocate concurrently, so the counts are atomic and K is only
 * approximately the same from run to run (the sweep does not need more). */
#include "check.h"

#include <jx.h>

#include <stdatomic.h>

void jx_buffer_cache_trim(void);
int jx_cpu_module_count(void);

static _Atomic long alloc_count, fail_at, live, failures;
static atomic_bool persist, paused;
static jx_alloc_fn base_alloc;
static void *base_ud;

static void *test_alloc(void *ud, void *p, size_t n) {
  (void)ud;
  if (n == 0) {
    if (p) atomic_fetch_sub(&live, 1);
    base_alloc(base_ud, p, 0);
    return NULL;
  }
  if (!atomic_load(&paused)) {
    long k = atomic_fetch_add(&alloc_count, 1) + 1, f = atomic_load(&fail_at);
    if (f && (k == f || (atomic_load(&persist) && k > f))) {
      atomic_fetch_add(&failures, 1);
      return NULL;
    }
  }
  void *q = base_alloc(base_ud, p, n);
  if (q && !p) atomic_fetch_add(&live, 1);
  return q;
}

/* ------------------------------------------------------------ workload */
static jx_t f_coll(const jx_t *a, void *u) {
  (void)u;
  jx_t x = jx_sub(a[0], jx_pmean(jx_mean(a[0]), "i"));
  jx_t g = jx_all_gather(jx_mul(x, jx_astype(jx_axis_index("i"), JX_F32)), "i", 0, true);
  return jx_add(jx_psum(g, "i"), jx_pmax(jx_sum(x), "i"));
}
static jx_t loss(const jx_t *a, void *u) {
  (void)u;
  jx_t r = jx_tanh(jx_matmul(a[1], a[0]));
  return jx_mean(jx_mul(r, r));
}
static jx_t dp_grad(const jx_t *a, void *u) {
  return jx_pmean(JX_CALL(jx_grad(jx_fn_new(loss, 2, u), 0), a[0], a[1]), "i");
}

static jx_t run_coll(void) {
  jx_t X = jx_reshape(jx_sin(jx_arange(JX_F32, 0, 24, 1)), JX_SHAPE(2, 3, 4));
  return JX_CALL(jx_pmap(jx_fn_new(f_coll, 1, NULL), NULL, 0, "i"), X);
}
static jx_t run_dp(void) {
  jx_t W = jx_reshape(jx_cos(jx_arange(JX_F32, 0, 6, 1)), JX_SHAPE(3, 2));
  jx_t X = jx_reshape(jx_sin(jx_arange(JX_F32, 0, 24, 1)), JX_SHAPE(2, 4, 3));
  return JX_CALL(jx_pmap(jx_fn_new(dp_grad, 2, NULL), (int[]){JX_NONE, 0}, 0, "i"), W, X);
}
static jx_t run_named(void) {
  jx_t X = jx_reshape(jx_sin(jx_arange(JX_F32, 0, 24, 1)), JX_SHAPE(2, 3, 4));
  return JX_CALL(jx_vmap_named(jx_fn_new(f_coll, 1, NULL), NULL, 0, "i"), X);
}

/* #19: the reductions' bf16 fold (and its MPI-free in-process path) */
static jx_t f_half(const jx_t *a, void *u) {
  (void)u;
  return jx_add(jx_psum(a[0], "i"), jx_pmax(a[0], "i"));
}
static jx_t run_bf16(void) {
  jx_t X = jx_astype(jx_reshape(jx_sin(jx_arange(JX_F32, 0, 24, 1)), JX_SHAPE(2, 3, 4)), JX_BF16);
  return JX_CALL(jx_pmap(jx_fn_new(f_half, 1, NULL), NULL, 0, "i"), X);
}

enum { NSTEP = 4 };
static jx_t (*const steps[NSTEP])(void) = {run_coll, run_dp, run_named, run_bf16};
static jx_t reference[NSTEP];

/* every step: an error value or its reference result; *nerr counts errors */
static bool run_workload(int *nerr) {
  bool ok = true;
  *nerr = 0;
  for (int i = 0; i < NSTEP; i++) {
    jx_pool_push();
    jx_t r = steps[i]();
    atomic_store(&paused, true);
    if (!jx_ok(r)) {
      (*nerr)++;
    } else {
      /* test_oom's tolerance: a recovered failure may change how a program
       * is optimized (a pass that ran out of memory), so its rounding */
      double d = jx_item(jx_max(jx_abs(jx_sub(r, reference[i])))), s = jx_item(jx_max(jx_abs(reference[i])));
      CHECKF(d <= 1e-5 * (1 + s), "step %d: result differs by %g", i, d);
      ok &= d <= 1e-5 * (1 + s);
    }
    atomic_store(&paused, false);
    jx_pool_pop();
  }
  return ok;
}

static long settled_live(void) {
  jx_buffer_cache_trim();
  return atomic_load(&live) - jx_cpu_module_count();
}

static void sweep(long from, long stride, long total, long *base) {
  long points = 0, errors = 0;
  for (long n = from; n <= total; n += stride, points++) {
    int nerr, nerr2;
    jx_buffer_cache_trim();
    atomic_store(&alloc_count, 0), atomic_store(&fail_at, n);
    bool ok = run_workload(&nerr);
    atomic_store(&fail_at, 0);
    long now = settled_live();
    CHECKF(ok, "N=%ld: a wrong result", n);
    CHECKF(now == *base, "N=%ld%s: %+ld blocks leaked", n, atomic_load(&persist) ? " (persist)" : "",
           now - *base);
    CHECKF(run_workload(&nerr2) && nerr2 == 0, "N=%ld: the clean run after it failed", n);
    *base = settled_live();
    errors += nerr > 0;
  }
  printf("%s sweep: %ld points, %ld ended in an error value\n", atomic_load(&persist) ? "persist" : "single",
         points, errors);
}

int main(void) {
  base_alloc = jx_get_allocator(&base_ud);
  jx_set_allocator(test_alloc, NULL);
  if (check_private_cache("pmap-oom")) return 1;
  jx_set_num_threads(2);
  jx_set_cpu_devices(2);
  for (int i = 0; i < NSTEP; i++) { /* references (outside every pool), and the compiles */
    jx_pool_push();
    jx_t r = steps[i]();
    CHECKF(jx_ok(r), "step %d: %s", i, jx_error(r));
    reference[i] = jx_retain(r);
    jx_pool_pop();
  }
  int nerr;
  CHECK(run_workload(&nerr) && nerr == 0);
  long base = settled_live();
  atomic_store(&alloc_count, 0);
  CHECK(run_workload(&nerr) && nerr == 0);
  long total = atomic_load(&alloc_count);
  CHECKF(settled_live() == base, "a clean run leaks %ld blocks", settled_live() - base);
  printf("workload: about %ld allocations per run\n", total);
  sweep(1, 7, total, &base);
  atomic_store(&persist, true);
  sweep(4, 29, total, &base);
  for (int i = 0; i < NSTEP; i++) jx_release(reference[i]);
  jx_set_cpu_devices(0);
  check_private_cache_remove();
  return check_report("pmap_oom");
}
