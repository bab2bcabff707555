/* custom_jvp and custom_vjp (jax.custom_jvp / jax.custom_vjp): JAX's
 * documented examples (a stable log1pexp, gradient clipping, a
 * straight-through estimator) under grad of every order, vmap (the rule
 * batched: called once, not per example), jit (the rule compiled), scan
 * and cond; bad rules give error values naming the rule and the mismatch. */
#include "check.h"

#include <jx.h>

static double max_diff(jx_t a, jx_t b) {
  if (!jx_ok(a) || !jx_ok(b)) return INFINITY;
  return jx_item(jx_max(jx_abs(jx_sub(jx_astype(a, JX_F64), jx_astype(b, JX_F64)))));
}
static jx_t vec(int n, const double *v) { return jx_array(JX_F64, JX_SHAPE(n), v); }

/* ------------------------------------------------------------ log1pexp */
static int jvp_calls; /* how many times the jvp rule ran */
static jx_fn *log1pexp;

static jx_t log1pexp_naive(const jx_t *a, void *u) {
  (void)u;
  return jx_log(jx_add(jx_scalar(1.0), jx_exp(a[0])));
}
/* JAX's example: the tangent 1 - 1/(1 + e^x), finite at x = 100; the
 * primal output by calling the custom function itself (rules are lazy) */
static jx_t log1pexp_jvp(const jx_t *a, void *u) {
  (void)u;
  jvp_calls++;
  jx_t x = jx_at(a[0], 0), t = jx_at(a[1], 0);
  jx_t out = JX_CALL(log1pexp, x);
  jx_t d = jx_sub(jx_scalar(1.0), jx_div(jx_scalar(1.0), jx_add(jx_scalar(1.0), jx_exp(x))));
  return JX_TUPLE(out, jx_mul(t, d));
}
static jx_t sum_log1pexp(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(JX_CALL(log1pexp, a[0]));
}
static jx_t sum_of(const jx_t *a, void *u) { /* sum(u(x)) */
  return jx_sum(JX_CALL((jx_fn *)u, a[0]));
}
static double sigmoid(double x) { return 1 / (1 + exp(-x)); }

static void test_log1pexp(void) {
  jx_fn *naive = jx_fn_new(log1pexp_naive, 1, NULL), *rule = jx_fn_new(log1pexp_jvp, 2, NULL);
  log1pexp = jx_custom_jvp(naive, rule);
  jx_t x100 = jx_scalar_of(JX_F64, 100.0), x3 = jx_scalar_of(JX_F64, 3.0);
  /* in f32 the naive gradient at 100 is NaN (inf/inf): what the rule fixes */
  jx_fn *gn = jx_grad(naive, 0);
  jx_t f100 = jx_scalar_of(JX_F32, 100.0);
  CHECK(isnan(jx_item(JX_CALL(gn, f100))));
  jx_fn *g = jx_grad(log1pexp, 0);
  CHECK(jx_item(JX_CALL(g, f100)) == 1.0);
  CHECK(jx_item(JX_CALL(jx_jit(g), f100)) == 1.0);
  CHECK_CLOSE(jx_item(JX_CALL(g, x100)), 1.0, 1e-15, 0);
  CHECK_CLOSE(jx_item(JX_CALL(g, x3)), sigmoid(3.0), 1e-14, 0);
  /* eager: the function itself */
  CHECK_CLOSE(jx_item(JX_CALL(log1pexp, x3)), log1p(exp(3.0)), 1e-14, 0);
  /* second and third order: the rule differentiated */
  jx_fn *g2 = jx_grad(g, 0), *g3 = jx_grad(g2, 0);
  double s = sigmoid(2.0);
  CHECK_CLOSE(jx_item(JX_CALL(g2, jx_scalar_of(JX_F64, 2.0))), s * (1 - s), 1e-13, 0);
  CHECK_CLOSE(jx_item(JX_CALL(g3, jx_scalar_of(JX_F64, 2.0))), s * (1 - s) * (1 - 2 * s), 1e-12, 0);
  CHECK_CLOSE(jx_item(JX_CALL(g2, x100)), 0.0, 0, 1e-30);
  /* value_and_grad, jvp */
  jx_t vg = JX_CALL(jx_value_and_grad(log1pexp, 0), x3);
  CHECK_CLOSE(jx_item(jx_at(vg, 0)), log1p(exp(3.0)), 1e-14, 0);
  jx_t jv = jx_jvp(log1pexp, &x100, (jx_t[]){jx_scalar_of(JX_F64, 2.0)});
  CHECK_CLOSE(jx_item(jx_at(jv, 1)), 2.0, 1e-15, 0);
  /* vmap of grad and grad of vmap: one call of the rule for the batch */
  const double xs[4] = {-2, 0, 3, 100};
  jx_t X = vec(4, xs);
  int before = jvp_calls;
  jx_t vg1 = JX_CALL(jx_vmap(g, NULL, 0), X);
  CHECK(jvp_calls == before + 1);
  jx_fn *sum_f = jx_fn_new(sum_log1pexp, 1, NULL);
  before = jvp_calls;
  jx_t vg2 = JX_CALL(jx_grad(sum_f, 0), X);
  CHECK(jvp_calls == before + 1);
  jx_fn *vf = jx_vmap(log1pexp, NULL, 0);
  for (int i = 0; i < 4; i++) {
    jx_t want = jx_scalar_of(JX_F64, xs[i] > 50 ? 1.0 : sigmoid(xs[i]));
    CHECK_CLOSE(jx_item(jx_take(vg1, jx_scalar_int(i), 0)), jx_item(want), 1e-14, 0);
    CHECK_CLOSE(jx_item(jx_take(vg2, jx_scalar_int(i), 0)), jx_item(want), 1e-14, 0);
  }
  CHECK(jx_ok(JX_CALL(vf, X)));
  /* grad of vmap: the batch rule, then the batched rule, once */
  before = jvp_calls;
  jx_t vg3 = JX_CALL(jx_grad(jx_fn_new(sum_of, 1, vf), 0), X);
  CHECK(jvp_calls == before + 1);
  CHECK(max_diff(vg3, vg1) < 1e-15);
  jx_t vg4 = JX_CALL(jx_jit(jx_grad(jx_fn_new(sum_of, 1, vf), 0)), X);
  CHECK(max_diff(vg4, vg1) < 1e-15);
  jx_fn_free(vf);
  /* jit: the rule traced into the compiled program once */
  jx_fn *jg = jx_jit(g);
  before = jvp_calls;
  CHECK_CLOSE(jx_item(JX_CALL(jg, x100)), 1.0, 1e-15, 0);
  CHECK(jvp_calls == before + 1);
  CHECK_CLOSE(jx_item(JX_CALL(jg, x100)), 1.0, 1e-15, 0);
  CHECK(jvp_calls == before + 1); /* cached: no tracing */
  jx_fn *gj = jx_grad(jx_jit(log1pexp), 0);
  CHECK_CLOSE(jx_item(JX_CALL(gj, x100)), 1.0, 1e-15, 0);
  CHECK_CLOSE(jx_item(JX_CALL(jx_jit(log1pexp), x3)), log1p(exp(3.0)), 1e-14, 0);
  jx_fn *jvg = jx_jit(jx_vmap(g, NULL, 0));
  CHECK(max_diff(JX_CALL(jvg, X), vg1) < 1e-14);
  /* make_jaxpr shows the custom call */
  char *txt = jx_make_jaxpr(log1pexp, &x3);
  CHECK(txt && strstr(txt, "custom_jvp_call"));
  free(txt);
  jx_fn_free(g3), jx_fn_free(g2), jx_fn_free(g), jx_fn_free(gn);
}

/* inside scan and cond */
static jx_t scan_step(const jx_t *a, void *u) { /* (c, x) -> (log1pexp(c + x), c) */
  (void)u;
  jx_t c = JX_CALL(log1pexp, jx_add(a[0], a[1]));
  return JX_TUPLE(c, a[0]);
}
static jx_t scan_loss(const jx_t *a, void *u) {
  jx_t r = jx_scan(jx_fn_new(scan_step, 2, u), a[0], a[1]);
  return jx_sum(jx_at(r, 0));
}
static jx_t br_custom(const jx_t *a, void *u) {
  (void)u;
  return JX_CALL(log1pexp, a[0]);
}
static jx_t br_plain(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(a[0], jx_scalar(2.0));
}
static jx_t cond_loss(const jx_t *a, void *u) {
  (void)u;
  return jx_cond(jx_gt(a[0], jx_scalar(0.0)), jx_fn_new(br_custom, 1, NULL), jx_fn_new(br_plain, 1, NULL), 1,
                 a);
}

static void test_control_flow(void) {
  /* three steps from c = 100: every derivative 1 (naive: NaN) */
  jx_fn *f = jx_fn_new(scan_loss, 2, NULL);
  jx_t c0 = jx_scalar_of(JX_F64, 100.0), xs = vec(3, (double[]){1, 2, 3});
  jx_t gc = JX_CALL(jx_grad(f, 0), c0, xs);
  CHECK_CLOSE(jx_item(gc), 1.0, 1e-12, 0);
  jx_t gx = JX_CALL(jx_grad(f, 1), c0, xs);
  CHECK(max_diff(gx, vec(3, (double[]){1, 1, 1})) < 1e-12);
  CHECK_CLOSE(jx_item(JX_CALL(jx_jit(jx_grad(f, 0)), c0, xs)), 1.0, 1e-12, 0);
  jx_fn *cf = jx_fn_new(cond_loss, 1, NULL), *cg = jx_grad(cf, 0);
  CHECK_CLOSE(jx_item(JX_CALL(cg, jx_scalar_of(JX_F64, 100.0))), 1.0, 1e-14, 0);
  CHECK_CLOSE(jx_item(JX_CALL(cg, jx_scalar_of(JX_F64, -1.0))), 2.0, 1e-14, 0);
  CHECK_CLOSE(jx_item(JX_CALL(jx_jit(cg), jx_scalar_of(JX_F64, 100.0))), 1.0, 1e-14, 0);
  jx_t xv = vec(3, (double[]){-1, 2, 100});
  jx_t vg = JX_CALL(jx_vmap(cg, NULL, 0), xv);
  CHECK(max_diff(vg, vec(3, (double[]){2, sigmoid(2), 1})) < 1e-14);
}

/* ------------------------------------------------- straight-through round */
static jx_t round_f(const jx_t *a, void *u) {
  (void)u;
  return jx_floor(jx_add(a[0], jx_scalar(0.5)));
}
static jx_fn *ste;
static jx_t ste_jvp(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(JX_CALL(ste, jx_at(a[0], 0)), jx_at(a[1], 0));
}
static jx_t ste_loss(const jx_t *a, void *u) { /* sum(round(x) * x) */
  (void)u;
  return jx_sum(jx_mul(JX_CALL(ste, a[0]), a[0]));
}

static void test_straight_through(void) {
  ste = jx_custom_jvp(jx_fn_new(round_f, 1, NULL), jx_fn_new(ste_jvp, 2, NULL));
  jx_t x = vec(4, (double[]){0.2, 0.7, -1.4, 2.5});
  jx_fn *g = jx_grad(jx_fn_new(ste_loss, 1, NULL), 0);
  /* d/dx round(x) x = 1 * x + round(x) */
  jx_t want = vec(4, (double[]){0.2 + 0, 0.7 + 1, -1.4 - 1, 2.5 + 3});
  CHECK(max_diff(JX_CALL(g, x), want) < 1e-15);
  CHECK(max_diff(JX_CALL(jx_jit(g), x), want) < 1e-15);
  /* without the rule floor's derivative is zero: the test can tell */
  jx_fn *g0 = jx_grad(jx_fn_new(round_f, 1, NULL), 0);
  CHECK(jx_item(JX_CALL(g0, jx_scalar_of(JX_F64, 0.7))) == 0.0);
  jx_t f32 = jx_astype(x, JX_F32);
  jx_t r32 = JX_CALL(g, f32);
  CHECK(jx_dtype_of(r32) == JX_F32 && max_diff(r32, want) < 1e-6);
}

/* ------------------------------------------------------ gradient clipping */
/* clip_gradient(lo, hi, x): identity forward, cotangent clipped backward
 * (JAX's nondiff_argnums example) */
static jx_t cg_f(const jx_t *a, void *u) {
  (void)u;
  return a[2];
}
static jx_t cg_fwd(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(a[2], jx_tuple(0, NULL));
}
static jx_t cg_bwd(const jx_t *a, void *u) { /* (lo, hi, res, g) */
  (void)u;
  return JX_TUPLE(jx_minimum(jx_maximum(a[3], a[0]), a[1]));
}
static jx_fn *clip_grad;
static jx_t clip_loss(const jx_t *a, void *u) { /* sum(5 x) through the clip */
  (void)u;
  jx_t y = JX_CALL(clip_grad, jx_scalar_of(JX_F64, -0.75), jx_scalar_of(JX_F64, 0.75), a[0]);
  return jx_sum(jx_mul(jx_scalar(5.0), jx_sin(y)));
}

static void test_clip_gradient(void) {
  clip_grad = jx_custom_vjp_ex(jx_fn_new(cg_f, 3, NULL), jx_fn_new(cg_fwd, 3, NULL),
                               jx_fn_new(cg_bwd, 4, NULL), 2, (int[]){0, 1});
  const double xs[3] = {0.0, 1.5, 3.0};
  jx_t x = vec(3, xs);
  jx_fn *g = jx_grad(jx_fn_new(clip_loss, 1, NULL), 0);
  double want[3];
  for (int i = 0; i < 3; i++) want[i] = fmax(-0.75, fmin(0.75, 5 * cos(xs[i])));
  CHECK(max_diff(JX_CALL(g, x), vec(3, want)) < 1e-15);
  CHECK(max_diff(JX_CALL(jx_jit(g), x), vec(3, want)) < 1e-15);
  /* per example: vmap of grad */
  jx_t X = jx_reshape(vec(3, xs), 2, (int64_t[]){3, 1});
  jx_t vg = JX_CALL(jx_vmap(g, NULL, 0), X);
  CHECK(max_diff(jx_reshape(vg, 1, (int64_t[]){3}), vec(3, want)) < 1e-15);
  /* the forward value is the identity */
  jx_t y = JX_CALL(clip_grad, jx_scalar_of(JX_F64, -1), jx_scalar_of(JX_F64, 1), x);
  CHECK(max_diff(y, x) == 0);
}

/* -------------------------------------------- custom_vjp: orders and vmap */
/* sin with its derivative saved by fwd: bwd is differentiable, so grad of
 * grad works (as in JAX) */
static jx_t s_f(const jx_t *a, void *u) {
  (void)u;
  return jx_sin(a[0]);
}
static jx_t s_fwd(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_sin(a[0]), jx_cos(a[0]));
}
static jx_t s_bwd(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_mul(a[1], a[0]));
}
/* w * x with a hand-written bwd, w unbatched under vmap */
static jx_t wx_f(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(a[0], a[1]);
}
static jx_t wx_fwd(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_mul(a[0], a[1]), JX_TUPLE(a[0], a[1]));
}
static jx_t wx_bwd(const jx_t *a, void *u) {
  (void)u;
  jx_t w = jx_at(a[0], 0), x = jx_at(a[0], 1);
  return JX_TUPLE(jx_mul(a[1], x), jx_mul(a[1], w));
}
static jx_fn *wx;
static jx_t wx_loss(const jx_t *a, void *u) { /* sum over examples of sum(tanh(w x)) */
  jx_fn *m = u;
  return jx_sum(jx_tanh(JX_CALL(m, a[0], a[1])));
}

static void test_vjp_orders_vmap(void) {
  jx_fn *s = jx_custom_vjp(jx_fn_new(s_f, 1, NULL), jx_fn_new(s_fwd, 1, NULL), jx_fn_new(s_bwd, 2, NULL));
  jx_fn *g = jx_grad(s, 0), *g2 = jx_grad(g, 0);
  jx_t x = jx_scalar_of(JX_F64, 0.7);
  CHECK_CLOSE(jx_item(JX_CALL(g, x)), cos(0.7), 1e-15, 0);
  CHECK_CLOSE(jx_item(JX_CALL(g2, x)), -sin(0.7), 1e-15, 0);
  CHECK_CLOSE(jx_item(JX_CALL(jx_jit(g2), x)), -sin(0.7), 1e-15, 0);
  CHECK_CLOSE(jx_item(JX_CALL(jx_grad(jx_jit(s), 0), x)), cos(0.7), 1e-15, 0);
  /* forward mode (JAX refuses it): bwd transposed */
  jx_t jv = jx_jvp(s, &x, (jx_t[]){jx_scalar_of(JX_F64, 3.0)});
  CHECK_CLOSE(jx_item(jx_at(jv, 1)), 3 * cos(0.7), 1e-15, 0);
  jx_t H = JX_CALL(jx_hessian(s, 0), x);
  CHECK_CLOSE(jx_item(H), -sin(0.7), 1e-15, 0);
  /* vmap with an unbatched argument: its cotangent summed over the batch */
  wx = jx_custom_vjp(jx_fn_new(wx_f, 2, NULL), jx_fn_new(wx_fwd, 2, NULL), jx_fn_new(wx_bwd, 2, NULL));
  jx_fn *plain = jx_fn_new(wx_f, 2, NULL);
  jx_fn *vm_c = jx_vmap(wx, (int[]){JX_NONE, 0}, 0), *vm_p = jx_vmap(plain, (int[]){JX_NONE, 0}, 0);
  jx_t w = vec(3, (double[]){0.5, -1, 2});
  jx_t X = jx_reshape(jx_arange(JX_F64, 0, 12, 1), 2, (int64_t[]){4, 3});
  X = jx_mul(X, jx_scalar(0.1));
  for (int arg = 0; arg < 2; arg++) {
    jx_t gc = JX_CALL(jx_grad(jx_fn_new(wx_loss, 2, vm_c), arg), w, X);
    jx_t gp = JX_CALL(jx_grad(jx_fn_new(wx_loss, 2, vm_p), arg), w, X);
    CHECKF(max_diff(gc, gp) < 1e-14, "arg %d: %g", arg, max_diff(gc, gp));
    jx_t gj = JX_CALL(jx_jit(jx_grad(jx_fn_new(wx_loss, 2, vm_c), arg)), w, X);
    CHECK(max_diff(gj, gp) < 1e-14);
  }
  /* vmap of grad */
  jx_fn *gw = jx_grad(jx_fn_new(wx_loss, 2, wx), 0), *gwp = jx_grad(jx_fn_new(wx_loss, 2, plain), 0);
  jx_t a = JX_CALL(jx_vmap(gw, (int[]){JX_NONE, 0}, 0), w, X);
  jx_t b = JX_CALL(jx_vmap(gwp, (int[]){JX_NONE, 0}, 0), w, X);
  CHECK(max_diff(a, b) < 1e-14);
  jx_fn_free(g2), jx_fn_free(g);
}

/* ---------------------------------------------------------------- errors */
static jx_t bad_shape_jvp(const jx_t *a, void *u) {
  (void)u;
  jx_t x = jx_at(a[0], 0);
  return JX_TUPLE(jx_exp(x), jx_zeros(JX_F64, JX_SHAPE(2)));
}
static jx_t bad_dtype_jvp(const jx_t *a, void *u) {
  (void)u;
  jx_t x = jx_at(a[0], 0);
  return JX_TUPLE(jx_exp(x), jx_astype(jx_at(a[1], 0), JX_F32));
}
static jx_t not_pair_jvp(const jx_t *a, void *u) {
  (void)u;
  return jx_at(a[0], 0);
}
static jx_t exp_f(const jx_t *a, void *u) {
  (void)u;
  return jx_exp(a[0]);
}
static jx_t bad_bwd_count(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(a[1], a[1]);
}
static jx_t bad_bwd_shape(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_sum(a[1]));
}
static jx_t exp_fwd(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_exp(a[0]), jx_exp(a[0]));
}
static jx_t bad_fwd(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_sum(jx_exp(a[0])), a[0]);
}
static jx_t closure_f(const jx_t *a, void *u) {
  jx_t *w = u;
  return jx_mul(a[0], *w);
}
static jx_t closure_jvp(const jx_t *a, void *u) {
  jx_t *w = u;
  return JX_TUPLE(jx_mul(jx_at(a[0], 0), *w), jx_mul(jx_at(a[1], 0), *w));
}
static jx_t closure_user(const jx_t *a, void *u) {
  (void)u;
  jx_t w = a[0];
  jx_fn *c = jx_custom_jvp(jx_fn_new(closure_f, 1, &w), jx_fn_new(closure_jvp, 2, &w));
  return jx_sum(JX_CALL(c, a[1]));
}

static void test_errors(void) {
  jx_fn *f = jx_fn_new(exp_f, 1, NULL);
  jx_t x = vec(3, (double[]){1, 2, 3});
  jx_fn *c1 = jx_custom_jvp(f, jx_fn_new(bad_shape_jvp, 2, NULL));
  EXPECT_ERROR(jx_jvp(c1, &x, &x), "custom_jvp", "jvp rule", "tangent output", "f64[2]", "f64[3]");
  jx_fn *c2 = jx_custom_jvp(f, jx_fn_new(bad_dtype_jvp, 2, NULL));
  EXPECT_ERROR(jx_jvp(c2, &x, &x), "jvp rule", "f32[3]", "f64[3]", "dtype");
  jx_fn *c3 = jx_custom_jvp(f, jx_fn_new(not_pair_jvp, 2, NULL));
  EXPECT_ERROR(jx_jvp(c3, &x, &x), "jvp rule", "pair");
  /* arity, checked when the function is made */
  EXPECT_ERROR(JX_CALL(jx_custom_jvp(f, jx_fn_new(not_pair_jvp, 3, NULL)), x), "custom_jvp", "jvp rule",
               "takes 3 arguments", "must take 2");
  EXPECT_ERROR(JX_CALL(jx_custom_vjp(f, jx_fn_new(exp_fwd, 2, NULL), jx_fn_new(bad_bwd_count, 2, NULL)), x),
               "custom_vjp", "fwd takes 2 arguments");
  EXPECT_ERROR(JX_CALL(jx_custom_vjp(f, jx_fn_new(exp_fwd, 1, NULL), jx_fn_new(bad_bwd_count, 1, NULL)), x),
               "bwd takes 1 arguments");
  EXPECT_ERROR(JX_CALL(jx_custom_jvp_ex(f, jx_fn_new(not_pair_jvp, 2, NULL), 1, (int[]){3}), x),
               "nondiff_argnums[0] = 3 is out of range");
  EXPECT_ERROR(JX_CALL(jx_custom_jvp(NULL, jx_fn_new(not_pair_jvp, 2, NULL)), x), "custom_jvp");
  /* bwd and fwd results */
  jx_fn *v1 = jx_custom_vjp(f, jx_fn_new(exp_fwd, 1, NULL), jx_fn_new(bad_bwd_count, 2, NULL));
  jx_fn *pb;
  jx_t y = jx_vjp(v1, &x, &pb);
  CHECK(jx_ok(y));
  EXPECT_ERROR(JX_CALL(pb, x), "custom_vjp", "bwd", "tuple of 1 cotangent", "of 2");
  jx_fn *v2 = jx_custom_vjp(f, jx_fn_new(exp_fwd, 1, NULL), jx_fn_new(bad_bwd_shape, 2, NULL));
  jx_vjp(v2, &x, &pb);
  EXPECT_ERROR(JX_CALL(pb, x), "bwd", "cotangent of argument 0", "f64[]", "f64[3]");
  jx_fn *v3 = jx_custom_vjp(f, jx_fn_new(bad_fwd, 1, NULL), jx_fn_new(bad_bwd_shape, 2, NULL));
  EXPECT_ERROR(jx_vjp(v3, &x, &pb), "custom_vjp", "fwd", "the output", "f64[]", "f64[3]");
  /* differentiating through a closed-over value: refused, as in JAX */
  jx_fn *cu = jx_grad(jx_fn_new(closure_user, 2, NULL), 0);
  EXPECT_ERROR(JX_CALL(cu, jx_scalar_of(JX_F64, 2.0), x), "custom_jvp", "closes over", "pass the value");
  /* ... but its argument is fine */
  jx_fn *cu1 = jx_grad(jx_fn_new(closure_user, 2, NULL), 1);
  CHECK(max_diff(JX_CALL(cu1, jx_scalar_of(JX_F64, 2.0), x), vec(3, (double[]){2, 2, 2})) == 0);
}

int main(void) {
  check_private_cache("custom");
  jx_pool_push();
  test_log1pexp();
  test_control_flow();
  test_straight_through();
  test_clip_gradient();
  test_vjp_orders_vmap();
  test_errors();
  jx_pool_pop();
  check_private_cache_remove();
  return check_report("custom");
}
