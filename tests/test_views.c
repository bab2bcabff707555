/* Views (core/view.c): eager reshape and large contiguous slices share
 * their operand's buffer instead of copying it. Checked: the data pointer
 * is shared where it should be and not where it should not (strided or
 * small slices copy); values are right; a view keeps its base's memory
 * alive after the base is released; a caller's buffer (jx_from_buffer) is
 * handed back through its deleter exactly once, after the last view; jit's
 * donation never writes into a buffer that a view shares (neither through
 * the view nor through the base); pmap's per-device blocks and a single
 * device's result are views; every allocation fails cleanly (OOM sweep). */
#include "check.h"

#include <jx.h>

#include <stdatomic.h>
#include <string.h>

static _Atomic size_t bytes_new; /* counted by the test's allocator */

static const float *fp(jx_t x) { return jx_data_ptr(x); }

static jx_t iota12(void) { return jx_reshape(jx_arange(JX_F32, 0, 12, 1), 2, (const int64_t[]){3, 4}); }

static void test_reshape_shares(void) {
  jx_pool_push();
  jx_t x = iota12(), y = jx_reshape(x, JX_SHAPE(4, 3)), z = jx_reshape(y, JX_SHAPE(12));
  CHECK(jx_ok(y) && jx_ok(z));
  CHECK(fp(y) == fp(x) && fp(z) == fp(x));
  CHECK(jx_shape(y)[0] == 4 && jx_shape(y)[1] == 3);
  CHECK(fp(z)[7] == 7.0f);
  jx_pool_pop();
}

static void test_slices(void) {
  jx_pool_push();
  jx_t x = iota12();
  /* row 1 of 3: contiguous, a third of the buffer -> a view */
  jx_t r = jx_slice(x, (const int64_t[]){1, 0}, (const int64_t[]){2, 4}, NULL);
  CHECK(jx_ok(r) && fp(r) == fp(x) + 4);
  CHECK(fp(r)[0] == 4.0f && fp(r)[3] == 7.0f);
  /* a column: strided -> a copy with the right values */
  jx_t c = jx_slice(x, (const int64_t[]){0, 2}, (const int64_t[]){3, 3}, NULL);
  CHECK(jx_ok(c) && (fp(c) < fp(x) || fp(c) >= fp(x) + 12));
  CHECK(fp(c)[0] == 2.0f && fp(c)[1] == 6.0f && fp(c)[2] == 10.0f);
  /* stride 2 along rows: a copy */
  jx_t s = jx_slice(x, (const int64_t[]){0, 0}, (const int64_t[]){3, 4}, (const int64_t[]){2, 1});
  CHECK(jx_ok(s) && fp(s)[4] == 8.0f && (fp(s) < fp(x) || fp(s) >= fp(x) + 12));
  /* one element of 1000: small -> a copy (it must not hold the big buffer) */
  jx_t big = jx_arange(JX_F32, 0, 1000, 1);
  jx_t one = jx_slice(big, (const int64_t[]){5}, (const int64_t[]){6}, NULL);
  CHECK(jx_ok(one) && fp(one)[0] == 5.0f && (fp(one) < fp(big) || fp(one) >= fp(big) + 1000));
  jx_pool_pop();
}

static void test_outlives_base(void) {
  jx_pool_push();
  jx_t v;
  jx_pool_push();
  {
    jx_t x = iota12();
    v = jx_retain(jx_reshape(x, JX_SHAPE(12)));
  }
  jx_pool_pop(); /* x is gone; v still reads its memory */
  float got[12];
  CHECK(jx_read(v, JX_F32, got, sizeof got) == 0);
  CHECK(got[0] == 0.0f && got[11] == 11.0f);
  jx_release(v);
  jx_pool_pop();
}

static int deleted;
static void count_delete(void *data, void *ctx) {
  (void)data, (void)ctx;
  deleted++;
}

static void test_external_base(void) {
  static float mem[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  deleted = 0;
  jx_pool_push();
  jx_t x = jx_from_buffer(JX_F32, JX_SHAPE(8), NULL, mem, count_delete, NULL);
  jx_t v = jx_reshape(x, JX_SHAPE(2, 4)),
       w = jx_slice(v, (const int64_t[]){1, 0}, (const int64_t[]){2, 4}, NULL);
  CHECK(fp(v) == mem && fp(w) == mem + 4);
  jx_pool_pop();
  CHECK(deleted == 1);
}

static jx_t add_one(const jx_t *a, void *u) {
  (void)u;
  return jx_add(a[0], jx_scalar(1.0));
}

/* A donated view or a donated base whose buffer a view shares: the program
 * must allocate its output, leaving the shared memory as it was. */
static void test_donation_respects_views(void) {
  jx_pool_push();
  jx_fn *f =
      jx_jit_ex(jx_fn_new(add_one, 1, NULL), &(jx_jit_options){.ndonate = 1, .donate_argnums = (int[]){0}});
  jx_t x = iota12(), v = jx_reshape(x, JX_SHAPE(12));
  jx_t y = JX_CALL(f, v); /* donates the view */
  CHECK(jx_ok(y) && fp(y) != fp(x));
  CHECK(fp(x)[3] == 3.0f);
  jx_t x2 = iota12(), v2 = jx_reshape(x2, JX_SHAPE(12));
  jx_t y2 = JX_CALL(f, x2); /* donates the base; v2 shares its buffer */
  CHECK(jx_ok(y2) && fp(v2)[3] == 3.0f);
  float got[12];
  CHECK(jx_read(y2, JX_F32, got, sizeof got) == 0 && got[3] == 4.0f);
  jx_pool_pop();
}

static jx_t double_body(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(a[0], jx_scalar(2.0));
}

/* bytes allocated by one pmap call over f32[ndev, 256 Ki] (1 MiB), after a
 * first call that compiled the body: the blocks handed to the devices and
 * a single device's result are views, so only the devices' results (and,
 * for several devices, their stacking) allocate */
static double pmap_alloc_mib(int ndev) {
  jx_set_cpu_devices(ndev);
  jx_pool_push();
  jx_fn *p = jx_pmap(jx_fn_new(double_body, 1, NULL), NULL, 0, "i");
  jx_t x = jx_ones(JX_F32, JX_SHAPE(ndev, (256 << 10) / ndev));
  jx_t y = JX_CALL(p, x);
  CHECK(jx_ok(y) && fp(y)[0] == 2.0f);
  size_t b0 = bytes_new;
  y = JX_CALL(p, x);
  double mib = (double)(bytes_new - b0) / (1 << 20);
  CHECK(jx_ok(y) && fp(y)[(256 << 10) - 1] == 2.0f);
  jx_pool_pop();
  jx_set_cpu_devices(0);
  return mib;
}

static void test_pmap_views(void) {
  double one = pmap_alloc_mib(1), two = pmap_alloc_mib(2);
  CHECKF(one < 1.25, "1 device: %.2f MiB allocated for a 1 MiB result", one);
  CHECKF(two < 2.25, "2 devices: %.2f MiB allocated for a 1 MiB result", two);
}

/* The carry is a reshape of the step's x slice. scan hands the body each
 * slice through a borrowed header; a view of it would read the xs after
 * the scan (a fuzzer find), so the reshape copies and the final carry
 * outlives the xs. */
static jx_t carry_reshaped_x(const jx_t *a, void *u) {
  (void)u;
  jx_t sq = jx_reshape(a[1], JX_SHAPE(2, 2));
  return JX_TUPLE(jx_reshape(sq, JX_SHAPE(4)), sq);
}

static void test_scan_slice_views(void) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(carry_reshaped_x, 2, NULL);
  jx_t r;
  jx_pool_push();
  {
    jx_t xs = jx_reshape(jx_arange(JX_F32, 0, 12, 1), JX_SHAPE(3, 4));
    r = jx_retain(jx_scan(f, jx_zeros(JX_F32, JX_SHAPE(4)), xs));
  }
  jx_pool_pop(); /* the xs are gone */
  CHECK(jx_ok(r));
  float c[4], ys[12];
  CHECK(jx_read(jx_at(r, 0), JX_F32, c, sizeof c) == 0 && c[0] == 8.0f && c[3] == 11.0f);
  CHECK(jx_read(jx_at(r, 1), JX_F32, ys, sizeof ys) == 0 && ys[5] == 5.0f && ys[11] == 11.0f);
  jx_release(r);
  jx_pool_pop();
}

/* ---------------------------------------------------------------- OOM */
static _Atomic long n_alloc, fail_at, live;
static void *oom_alloc(void *ud, void *p, size_t n) {
  (void)ud;
  if (n == 0) {
    if (p) live--;
    free(p);
    return NULL;
  }
  if (!p && ++n_alloc == fail_at) return NULL;
  if (!p) {
    live++;
    bytes_new += n;
  }
  return realloc(p, n);
}
void jx_buffer_cache_trim(void);

static bool views_workload(void) {
  jx_pool_push();
  jx_t x = jx_arange(JX_F32, 0, 64, 1);
  jx_t v = jx_reshape(x, JX_SHAPE(8, 8));
  jx_t s = jx_slice(v, (const int64_t[]){2, 0}, (const int64_t[]){6, 8}, NULL);
  jx_t r = jx_sum(s);
  float got = -1;
  bool ok = jx_ok(r) && jx_read(r, JX_F32, &got, sizeof got) == 0;
  bool right = got == (16 + 47) * 32 / 2.0f;
  bool err = !jx_ok(r) && jx_error(r);
  jx_pool_pop();
  return ok ? right : err;
}

static void test_oom(void) {
  jx_buffer_cache_trim();
  n_alloc = 0;
  fail_at = 0;
  CHECK(views_workload());
  long k = n_alloc;
  for (long f = 1; f <= k; f++) {
    n_alloc = 0;
    fail_at = f;
    long before = live;
    CHECKF(views_workload(), "allocation %ld of %ld failing", f, k);
    jx_buffer_cache_trim();
    CHECKF(live <= before, "allocation %ld failing leaked %ld blocks", f, live - before);
  }
  fail_at = 0;
}

int main(void) {
  setenv("JX_CACHE_BYTES", "0", 1);
  jx_set_allocator(oom_alloc, NULL);
  check_private_cache("views");
  test_reshape_shares();
  test_slices();
  test_outlives_base();
  test_external_base();
  test_donation_respects_views();
  test_pmap_views();
  test_scan_slice_views();
  test_oom();
  check_private_cache_remove();
  return check_report("test_views");
}
