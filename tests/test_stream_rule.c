/* The streaming-store rule (backend/cpu/cache_info.c): outputs of 4 MiB
 * or more are streamed when the working set outgrows the cache budget.
 * Checked here: the live-bytes count it reads, the rule's boundaries under
 * a fixed budget (JX_CACHE_BUDGET, set before the first kernel), the
 * probe's answer, and that eager and jit results are the same on both
 * sides of the rule (plain stores when little is live, streamed when
 * much is). */
#include "backend/cpu/kernels.h"
#include "check.h"

#include <stdlib.h>

enum { MiB = 1 << 20 };

static void test_live_bytes(void) {
  const size_t before = jx_buffer_live_bytes();
  jx_pool_push();
  jx_t a = jx_zeros(JX_F32, JX_SHAPE(4 * MiB)); /* 16 MiB */
  CHECK(jx_ok(a));
  const size_t during = jx_buffer_live_bytes();
  CHECKF(during >= before + 16 * MiB && during <= before + 21 * MiB, "live %zu -> %zu", before, during);
  jx_pool_pop();
  CHECKF(jx_buffer_live_bytes() == before, "live %zu after the pool, %zu before", jx_buffer_live_bytes(),
         before);
}

static void test_rule(void) {
  CHECK(jx_cpu_stream_min_bytes() == 0); /* no override in this process */
  CHECK(jx_cpu_cache_budget() == 32 * MiB);
  CHECK(!jx_cpu_stream_output(16000000, 32000000));     /* jit(slow_f): in + out fit */
  CHECK(!jx_cpu_stream_output(16 * MiB, 32 * MiB));     /* at the budget: fits */
  CHECK(jx_cpu_stream_output(16 * MiB, 32 * MiB + 1));  /* past it */
  CHECK(jx_cpu_stream_output(4 * MiB, 1LL << 40));      /* the smallest streamed output */
  CHECK(!jx_cpu_stream_output(4 * MiB - 1, 1LL << 40)); /* smaller ones never are */
}

static void test_probe(void) {
  const size_t before = jx_buffer_live_bytes();
  const int64_t b = jx_cpu_probe_cache_budget();
  CHECKF(b == 0 || b == 8 * MiB || b == 16 * MiB || b == 32 * MiB, "probe %lld", (long long)b);
  CHECK(jx_buffer_live_bytes() == before); /* its buffers went back */
}

static jx_t slow_f(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0];
  return jx_add(jx_add(jx_mul(jx_mul(x, x), x), jx_mul(jx_mul(x, jx_scalar(2.0)), x)), x);
}

/* 1.5 + the row index / 1000 at each element of an n x m array */
static jx_t ramp(int64_t n, int64_t m) {
  jx_t r = jx_div(jx_arange(JX_F32, 0, (double)n, 1), jx_scalar(1000.0));
  return jx_add(jx_broadcast_to(jx_reshape(r, JX_SHAPE(n, 1)), JX_SHAPE(n, m)), jx_scalar(1.5));
}

/* slow_f eager and under jit against the formula, on both sides of the
 * rule: 1001 x 2003 (8 MB; the jit program's 16 MB fit the 32 MiB budget:
 * plain stores; eager streams once its results pile up) and 3001 x 2003
 * (24 MB: 48 MB of program, streamed). Rows are not a multiple of any
 * tile. */
static void test_both_sides(void) {
  jx_fn *f = jx_fn_new(slow_f, 1, NULL), *jf = jx_jit(f);
  for (int heavy = 0; heavy < 2; heavy++) {
    const int64_t n = heavy ? 3001 : 1001, m = 2003;
    CHECK(heavy == jx_cpu_stream_output(n * m * 4, 2 * n * m * 4));
    jx_pool_push();
    jx_t x = ramp(n, m);
    jx_t e = JX_CALL(f, x), j = JX_CALL(jf, x);
    jx_t xx = jx_mul(x, x), want = jx_add(jx_add(jx_mul(xx, x), jx_mul(xx, jx_scalar(2.0))), x);
    CHECKF(jx_item(jx_max(jx_abs(jx_div(jx_sub(e, want), want)))) <= 1e-6, "eager, %lld rows", (long long)n);
    CHECKF(jx_item(jx_max(jx_abs(jx_div(jx_sub(j, want), want)))) <= 1e-6, "jit, %lld rows", (long long)n);
    jx_pool_pop();
  }
  jx_fn_free(jf);
  jx_fn_free(f);
}

int main(void) {
  unsetenv("JX_STREAM_MIN_BYTES");
  setenv("JX_CACHE_BUDGET", "33554432", 1);
  test_live_bytes();
  test_rule();
  test_probe();
  test_both_sides();
  return check_report("stream_rule");
}
