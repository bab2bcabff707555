/* jx_while_loop_bounded (reverse mode through a while loop, in
 * proportion to the steps taken) and jx_vmap_chunked (vmap in chunks
 * through a scan). */
#include "check.h"

#include <jx.h>
#include <time.h>

static double max_diff(jx_t a, jx_t b) {
  if (!jx_ok(a) || !jx_ok(b)) return INFINITY;
  return jx_item(jx_max(jx_abs(jx_sub(jx_astype(a, JX_F64), jx_astype(b, JX_F64)))));
}

/* x <- x w + 0.1 sin(x) while sum(x) < limit (w in the carry) */
static jx_t lc(const jx_t *a, void *u) {
  double *limit = u;
  return jx_lt(jx_sum(jx_at(a[0], 0)), jx_scalar(*limit));
}
static jx_t lb(const jx_t *a, void *u) {
  (void)u;
  jx_t x = jx_at(a[0], 0), w = jx_at(a[0], 1);
  return JX_TUPLE(jx_add(jx_mul(x, w), jx_mul(jx_scalar(0.1), jx_sin(x))), w);
}
typedef struct {
  double limit;
  int64_t max_steps; /* < 0: unrolled, |max_steps| steps of the body, no test */
} loop_cfg;
static jx_t loop_loss(const jx_t *a, void *u) {
  loop_cfg *c = u;
  jx_t st = JX_TUPLE(a[0], a[1]);
  if (c->max_steps < 0) {
    for (int64_t i = 0; i < -c->max_steps; i++) st = lb(&st, NULL);
  } else {
    st = jx_while_loop_bounded(jx_fn_new(lc, 1, &c->limit), jx_fn_new(lb, 1, NULL), st, c->max_steps);
  }
  return jx_sum(jx_square(jx_at(st, 0)));
}

static jx_t bad_body(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_sum(jx_at(a[0], 0)), jx_at(a[0], 1));
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void test_bounded_grad(void) {
  jx_t x = jx_array(JX_F64, JX_SHAPE(3), (double[]){0.1, 0.2, 0.3}), w = jx_scalar_of(JX_F64, 1.2);
  /* how many steps the loop takes before sum(x) >= 6.5 */
  int steps = 0;
  for (int k = 1; k < 100; k++) {
    jx_t st = JX_TUPLE(x, w);
    for (int i = 0; i < k; i++) st = lb(&st, NULL);
    if (jx_item(jx_sum(jx_at(st, 0))) >= 6.5) {
      steps = k;
      break;
    }
  }
  CHECK(steps == 10); /* the example is 10 steps long */
  loop_cfg unrolled = {6.5, -steps}, bounded = {6.5, 10000}, cut = {6.5, 4};
  for (int arg = 0; arg < 2; arg++) {
    jx_t want = JX_CALL(jx_grad(jx_fn_new(loop_loss, 2, &unrolled), arg), x, w);
    jx_t got = JX_CALL(jx_grad(jx_fn_new(loop_loss, 2, &bounded), arg), x, w);
    CHECKF(max_diff(got, want) < 1e-12 * (1 + jx_item(jx_max(jx_abs(want)))), "arg %d: %g", arg,
           max_diff(got, want));
    /* jit: the count is traced, and a dyn scan runs the steps taken */
    jx_t gj = JX_CALL(jx_jit(jx_grad(jx_fn_new(loop_loss, 2, &(loop_cfg){6.5, 50}), arg)), x, w);
    CHECK(max_diff(gj, want) < 1e-12 * (1 + jx_item(jx_max(jx_abs(want)))));
    gj = JX_CALL(jx_jit(jx_grad(jx_fn_new(loop_loss, 2, &bounded), arg)), x, w);
    CHECK(max_diff(gj, want) < 1e-12 * (1 + jx_item(jx_max(jx_abs(want)))));
    /* the bound stops it: 4 steps */
    loop_cfg u4 = {6.5, -4};
    jx_t w4 = JX_CALL(jx_grad(jx_fn_new(loop_loss, 2, &u4), arg), x, w);
    CHECK(max_diff(JX_CALL(jx_grad(jx_fn_new(loop_loss, 2, &cut), arg), x, w), w4) < 1e-12);
    CHECK(max_diff(JX_CALL(jx_jit(jx_grad(jx_fn_new(loop_loss, 2, &cut), arg)), x, w), w4) < 1e-12);
  }
  /* second order under jit: d2 loss / dw2 through dyn scans of dyn scans */
  jx_t h_want = JX_CALL(jx_grad(jx_grad(jx_fn_new(loop_loss, 2, &unrolled), 1), 1), x, w);
  jx_t h_got = JX_CALL(jx_jit(jx_grad(jx_grad(jx_fn_new(loop_loss, 2, &bounded), 1), 1)), x, w);
  CHECKF(max_diff(h_got, h_want) < 1e-10 * (1 + fabs(jx_item(h_want))), "d2/dw2: %g vs %g", jx_item(h_got),
         jx_item(h_want));
  /* vmap of grad, members taking different numbers of steps (a batched
   * count: each member stops at its own), eager and under jit */
  {
    jx_t X = jx_stack(3, (jx_t[]){x, jx_mul(x, jx_scalar(2.0)), jx_mul(x, jx_scalar(0.5))}, 0);
    jx_fn *vg = jx_vmap(jx_grad(jx_fn_new(loop_loss, 2, &bounded), 0), (int[]){0, JX_NONE}, 0);
    jx_t ge = JX_CALL(vg, X, w), gj = JX_CALL(jx_jit(vg), X, w);
    for (int m = 0; m < 3; m++) {
      jx_t xm = jx_take(X, jx_scalar_int(m), 0);
      jx_t one = JX_CALL(jx_grad(jx_fn_new(loop_loss, 2, &bounded), 0), xm, w);
      double s = 1 + jx_item(jx_max(jx_abs(one)));
      CHECKF(max_diff(jx_take(ge, jx_scalar_int(m), 0), one) < 1e-12 * s, "vmap member %d", m);
      CHECKF(max_diff(jx_take(gj, jx_scalar_int(m), 0), one) < 1e-12 * s, "jit(vmap) member %d", m);
    }
  }
  /* value, forward mode, vmap of grad */
  CHECK(max_diff(JX_CALL(jx_fn_new(loop_loss, 2, &bounded), x, w),
                 JX_CALL(jx_fn_new(loop_loss, 2, &unrolled), x, w)) < 1e-12);
  jx_t jv = jx_jvp(jx_fn_new(loop_loss, 2, &bounded), (jx_t[]){x, w},
                   (jx_t[]){jx_ones_like(x), jx_scalar_of(JX_F64, 0)});
  jx_t jw = jx_jvp(jx_fn_new(loop_loss, 2, &unrolled), (jx_t[]){x, w},
                   (jx_t[]){jx_ones_like(x), jx_scalar_of(JX_F64, 0)});
  CHECK(max_diff(jx_at(jv, 1), jx_at(jw, 1)) < 1e-9);
  jx_t X = jx_stack(2, (jx_t[]){x, jx_mul(x, jx_scalar(2.0))}, 0);
  jx_t vg = JX_CALL(
      jx_vmap(jx_grad(jx_fn_new(loop_loss, 2, &(loop_cfg){6.5, 100}), 0), (int[]){0, JX_NONE}, 0), X, w);
  jx_t g1 = JX_CALL(jx_grad(jx_fn_new(loop_loss, 2, &unrolled), 0), x, w);
  CHECK(max_diff(jx_take(vg, jx_scalar_int(0), 0), g1) < 1e-12);
  /* the backward pass does not depend on the bound: 10 steps of 10^5 vs
   * of 20 (timed loosely: a pass over 10^5 steps would take far longer) */
  jx_fn *g_small = jx_grad(jx_fn_new(loop_loss, 2, &(loop_cfg){6.5, 20}), 0);
  jx_fn *g_big = jx_grad(jx_fn_new(loop_loss, 2, &(loop_cfg){6.5, 100000}), 0);
  double t0 = now_ms();
  for (int i = 0; i < 5; i++) (void)jx_item(jx_sum(JX_CALL(g_small, x, w)));
  double t1 = now_ms();
  for (int i = 0; i < 5; i++) (void)jx_item(jx_sum(JX_CALL(g_big, x, w)));
  double t2 = now_ms();
  CHECKF(t2 - t1 < 10 * (t1 - t0) + 50, "bound 20: %.1f ms, bound 1e5: %.1f ms", t1 - t0, t2 - t1);
  /* the same under jit, where the count is traced: a guarded scan of 10^6
   * steps (what jit did before dyn scans) takes tens of ms per call */
  jx_fn *j_small = jx_jit(g_small),
        *j_big = jx_jit(jx_grad(jx_fn_new(loop_loss, 2, &(loop_cfg){6.5, 1000000}), 0));
  (void)jx_item(jx_sum(JX_CALL(j_small, x, w))), (void)jx_item(jx_sum(JX_CALL(j_big, x, w)));
  t0 = now_ms();
  for (int i = 0; i < 5; i++) (void)jx_item(jx_sum(JX_CALL(j_small, x, w)));
  t1 = now_ms();
  for (int i = 0; i < 5; i++) (void)jx_item(jx_sum(JX_CALL(j_big, x, w)));
  t2 = now_ms();
  CHECKF(t2 - t1 < 10 * (t1 - t0) + 50, "jit: bound 20: %.2f ms, bound 1e6: %.2f ms", t1 - t0, t2 - t1);
  /* errors */
  jx_fn *c = jx_fn_new(lc, 1, &bounded.limit), *b = jx_fn_new(lb, 1, NULL);
  EXPECT_ERROR(jx_while_loop_bounded(c, b, JX_TUPLE(x, w), -1), "while_loop_bounded", "max_steps");
  EXPECT_ERROR(jx_while_loop_bounded(c, jx_fn_new(lb, 2, NULL), JX_TUPLE(x, w), 5), "while_loop_bounded",
               "1 argument");
  EXPECT_ERROR(jx_while_loop_bounded(NULL, b, JX_TUPLE(x, w), 5), "while_loop_bounded");
  EXPECT_ERROR(jx_while_loop_bounded(c, jx_fn_new(bad_body, 1, NULL), JX_TUPLE(x, w), 5), "while_loop",
               "the carry's type");
}

/* ------------------------------------------------------- vmap_chunked */
static jx_t per_example(const jx_t *a, void *u) { /* (x [3], W [3,2] shared, s scalar) -> (x W * s, sum x) */
  (void)u;
  return JX_TUPLE(jx_mul(jx_matmul(a[0], a[1]), a[2]), jx_sum(a[0]));
}

static void test_vmap_chunked(void) {
  jx_t X = jx_reshape(jx_arange(JX_F64, 0, 30, 1), 2, (int64_t[]){10, 3});
  jx_t Xt = jx_transpose(X, NULL); /* mapped along axis 1 */
  jx_t W = jx_reshape(jx_arange(JX_F64, 0, 6, 1), 2, (int64_t[]){3, 2});
  jx_t S = jx_arange(JX_F64, 1, 11, 1);
  jx_fn *f = jx_fn_new(per_example, 3, NULL);
  const int axes[3] = {1, JX_NONE, 0};
  for (int out_axis = 0; out_axis > -2; out_axis--) {
    jx_t want = JX_CALL(jx_vmap(f, axes, out_axis), Xt, W, S);
    const int64_t chunks[] = {1, 3, 4, 5, 10, 64}; /* remainders, exact splits, one chunk, more than all */
    for (int k = 0; k < 6; k++) {
      jx_fn *vc = jx_vmap_chunked(f, axes, out_axis, chunks[k]);
      jx_t got = JX_CALL(vc, Xt, W, S);
      CHECKF(jx_ok(got) && max_diff(jx_at(got, 0), jx_at(want, 0)) == 0 &&
                 max_diff(jx_at(got, 1), jx_at(want, 1)) == 0,
             "chunk %lld out_axis %d: %s", (long long)chunks[k], out_axis, jx_error(got));
      CHECK(jx_ok(got) && jx_ndim(jx_at(got, 0)) == 2 && jx_shape(jx_at(got, 0))[-out_axis] == 10);
      jx_t gj = JX_CALL(jx_jit(vc), Xt, W, S);
      CHECKF(max_diff(jx_at(gj, 0), jx_at(want, 0)) == 0, "jit, chunk %lld: %s", (long long)chunks[k],
             jx_error(gj));
    }
  }
  /* differentiable: grad through the scan equals grad through vmap */
  EXPECT_ERROR(JX_CALL(jx_vmap_chunked(f, axes, 0, 0), Xt, W, S), "vmap_chunked", "chunk_size must be >= 1");
  EXPECT_ERROR(JX_CALL(jx_vmap_chunked(f, (int[]){5, JX_NONE, 0}, 0, 2), Xt, W, S), "vmap_chunked");
  EXPECT_ERROR(JX_CALL(jx_vmap_chunked(f, (int[]){0, JX_NONE, 0}, 0, 2), Xt, W, S), "vmap_chunked",
               "inconsistent sizes");
  EXPECT_ERROR(JX_CALL(jx_vmap_chunked(f, (int[]){JX_NONE, JX_NONE, JX_NONE}, 0, 2), Xt, W, S),
               "no argument is mapped");
}

static jx_fn *chunked_f;
static jx_t chunked_loss(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_at(JX_CALL(chunked_f, a[0], a[1], a[2]), 0));
}
static void test_vmap_chunked_grad(void) {
  jx_t X = jx_reshape(jx_arange(JX_F64, 0, 21, 1), 2, (int64_t[]){7, 3});
  jx_t W = jx_reshape(jx_arange(JX_F64, 0, 6, 1), 2, (int64_t[]){3, 2}), S = jx_arange(JX_F64, 1, 8, 1);
  jx_fn *f = jx_fn_new(per_example, 3, NULL);
  const int axes[3] = {0, JX_NONE, 0};
  chunked_f = jx_vmap(f, axes, 0);
  jx_t want = JX_CALL(jx_grad(jx_fn_new(chunked_loss, 3, NULL), 1), X, W, S);
  chunked_f = jx_vmap_chunked(f, axes, 0, 3);
  jx_t got = JX_CALL(jx_grad(jx_fn_new(chunked_loss, 3, NULL), 1), X, W, S);
  CHECK(max_diff(got, want) < 1e-12);
}

int main(void) {
  check_private_cache("bounded");
  jx_pool_push();
  test_bounded_grad();
  test_vmap_chunked();
  test_vmap_chunked_grad();
  jx_pool_pop();
  check_private_cache_remove();
  return check_report("bounded");
}
