/* Control flow through the public API: cond/switch/while_loop/fori_loop/
 * scan, eager and under grad, vmap and jit; error values. */
#include "check.h"

#include <jx.h>

#define F64(v) jx_scalar_of(JX_F64, (v))
static double item(jx_t x) { return jx_item(x); }
static double maxdiff(jx_t a, jx_t b) { return jx_item(jx_max(jx_abs(jx_sub(a, b)))); }

/* ------------------------------------------------------------------ cond */
static jx_t br_sin(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_sin(a[0]), jx_mul(a[0], a[1]));
}
static jx_t br_sq(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_mul(a[0], a[0]), jx_add(a[0], a[1]));
}
static jx_t cond_fn(const jx_t *a, void *u) {
  (void)u;
  jx_fn *t = jx_fn_new(br_sin, 2, NULL), *f = jx_fn_new(br_sq, 2, NULL);
  jx_t r = jx_cond(jx_gt(a[0], jx_scalar(0)), t, f, 2, a);
  jx_fn_free(t), jx_fn_free(f);
  return jx_add(jx_at(r, 0), jx_at(r, 1));
}

static void test_cond(void) {
  jx_fn *f = jx_fn_new(cond_fn, 2, NULL);
  jx_fn *g = jx_grad(f, 0), *jg = jx_jit(g), *vf = jx_vmap(f, (int[]){0, JX_NONE}, 0);
  double y = 3.0;
  for (int s = -1; s <= 1; s += 2) {
    double x = 0.7 * s;
    double want = x > 0 ? sin(x) + x * y : x * x + x + y;
    double dwant = x > 0 ? cos(x) + y : 2 * x + 1;
    CHECK_CLOSE(item(JX_CALL(f, F64(x), F64(y))), want, 1e-14, 0);
    CHECK_CLOSE(item(JX_CALL(g, F64(x), F64(y))), dwant, 1e-14, 0);
    CHECK_CLOSE(item(JX_CALL(jg, F64(x), F64(y))), dwant, 1e-14, 0);
  }
  /* a batched predicate: each lane takes its own branch */
  jx_t xs = jx_array(JX_F64, JX_SHAPE(4), (double[]){0.5, -0.5, 2, -2});
  jx_t v = JX_CALL(vf, xs, F64(y));
  double out[4];
  CHECK(jx_read(v, JX_F64, out, sizeof out) == 0);
  double xv[4] = {0.5, -0.5, 2, -2};
  for (int i = 0; i < 4; i++)
    CHECK_CLOSE(out[i], xv[i] > 0 ? sin(xv[i]) + xv[i] * y : xv[i] * xv[i] + xv[i] + y, 1e-14, 0);
  jx_fn_free(vf), jx_fn_free(jg), jx_fn_free(g), jx_fn_free(f);
}

static jx_t b0(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(a[0], jx_scalar(10.0));
}
static jx_t b1(const jx_t *a, void *u) {
  (void)u;
  return jx_sin(a[0]);
}
static jx_t b2(const jx_t *a, void *u) {
  (void)u;
  return jx_neg(a[0]);
}
static void test_switch(void) {
  jx_fn *br[3] = {jx_fn_new(b0, 1, NULL), jx_fn_new(b1, 1, NULL), jx_fn_new(b2, 1, NULL)};
  jx_t x = F64(0.25);
  double want[5] = {2.5, 2.5, sin(0.25), -0.25, -0.25}; /* index -1..3, clamped */
  for (int i = -1; i <= 3; i++)
    CHECK_CLOSE(item(jx_switch(jx_scalar_of(JX_I32, i), 3, br, 1, &x)), want[i + 1], 1e-15, 0);
  for (int i = 0; i < 3; i++) jx_fn_free(br[i]);
}

static jx_t bad_t(const jx_t *a, void *u) {
  (void)u;
  return a[0];
}
static jx_t bad_f(const jx_t *a, void *u) {
  (void)u;
  return jx_concatenate(2, (jx_t[]){a[0], a[0]}, 0);
}
static void test_cond_errors(void) {
  jx_fn *t = jx_fn_new(bad_t, 1, NULL), *f = jx_fn_new(bad_f, 1, NULL);
  jx_t x = jx_ones(JX_F32, JX_SHAPE(3));
  jx_t r = jx_cond(jx_scalar_of(JX_BOOL, 1), t, f, 1, &x);
  CHECKF(!jx_ok(r) && strstr(jx_error(r), "f32[3]") && strstr(jx_error(r), "f32[6]"), "%s", jx_error(r));
  r = jx_cond(jx_ones(JX_BOOL, JX_SHAPE(2)), t, t, 1, &x);
  CHECK(!jx_ok(r) && strstr(jx_error(r), "scalar"));
  jx_fn_free(t), jx_fn_free(f);
}

/* ----------------------------------------------------------------- while */
static jx_t w_cond(const jx_t *a, void *u) {
  (void)u;
  return jx_lt(jx_at(a[0], 1), jx_scalar(10.0));
}
static jx_t w_body(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_add(jx_at(a[0], 0), jx_scalar_int(1)), jx_mul(jx_at(a[0], 1), jx_scalar(2.0)));
}
static jx_t w_fn(const jx_t *a, void *u) { /* doublings of x until >= 10 */
  (void)u;
  jx_fn *c = jx_fn_new(w_cond, 1, NULL), *b = jx_fn_new(w_body, 1, NULL);
  jx_t r = jx_while_loop(c, b, JX_TUPLE(jx_scalar_of(JX_I32, 0), a[0]));
  jx_fn_free(c), jx_fn_free(b);
  return r;
}
static jx_t w_value(const jx_t *a, void *u) { return jx_at(w_fn(a, u), 1); }

static void test_while(void) {
  jx_fn *f = jx_fn_new(w_fn, 1, NULL);
  jx_t r = JX_CALL(f, F64(1.5));
  CHECK(item(jx_at(r, 0)) == 3 && item(jx_at(r, 1)) == 12);
  /* vmap: lanes finish after different numbers of steps */
  jx_fn *vf = jx_vmap(f, NULL, 0);
  jx_t v = JX_CALL(vf, jx_array(JX_F64, JX_SHAPE(4), (double[]){1.5, 20, 0.1, 5}));
  double n[4], x[4];
  CHECK(jx_ok(v));
  jx_read(jx_at(v, 0), JX_F64, n, sizeof n), jx_read(jx_at(v, 1), JX_F64, x, sizeof x);
  double wn[4] = {3, 0, 7, 1}, wx[4] = {12, 20, 12.8, 10};
  for (int i = 0; i < 4; i++) CHECK(n[i] == wn[i] && fabs(x[i] - wx[i]) < 1e-12);
  /* jvp (forward mode) works: d/dx of x * 2^k */
  jx_fn *fv = jx_fn_new(w_value, 1, NULL);
  jx_t jv = jx_jvp(fv, (jx_t[]){F64(1.5)}, (jx_t[]){F64(1.0)});
  CHECK(jx_ok(jv) && item(jx_at(jv, 1)) == 8);
  jx_fn *jf = jx_jacfwd(fv, 0);
  CHECK(item(JX_CALL(jf, F64(1.5))) == 8);
  /* reverse mode is refused with a clear message */
  jx_fn *g = jx_grad(fv, 0);
  jx_t e = JX_CALL(g, F64(1.5));
  CHECKF(!jx_ok(e) && strstr(jx_error(e), "while_loop") && strstr(jx_error(e), "scan"), "%s", jx_error(e));
  /* jit */
  jx_fn *jw = jx_jit(f);
  r = JX_CALL(jw, F64(1.5));
  CHECK(jx_ok(r) && item(jx_at(r, 1)) == 12);
  jx_fn_free(jw), jx_fn_free(g), jx_fn_free(jf), jx_fn_free(fv), jx_fn_free(vf), jx_fn_free(f);
}

static jx_t w_bad_body(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_at(a[0], 0), jx_stack(2, (jx_t[]){jx_at(a[0], 1), jx_at(a[0], 1)}, 0));
}
static void test_while_errors(void) {
  jx_fn *c = jx_fn_new(w_cond, 1, NULL), *b = jx_fn_new(w_bad_body, 1, NULL);
  jx_t r = jx_while_loop(c, b, JX_TUPLE(jx_scalar_of(JX_I32, 0), F64(1)));
  CHECKF(!jx_ok(r) && strstr(jx_error(r), "f64[]") && strstr(jx_error(r), "f64[2]"), "%s", jx_error(r));
  jx_fn_free(c), jx_fn_free(b);
}

/* ----------------------------------------------------------- fori, scan */
static jx_t fori_body(const jx_t *a, void *u) { /* x <- x * sin(x + i) */
  (void)u;
  return jx_mul(a[1], jx_sin(jx_add(a[1], jx_astype(a[0], JX_F64))));
}
static jx_t fori_fn(const jx_t *a, void *u) {
  (void)u;
  jx_fn *b = jx_fn_new(fori_body, 2, NULL);
  jx_t r = jx_fori_loop(0, 4, b, a[0]);
  jx_fn_free(b);
  return r;
}

/* an RNN: h <- tanh(W h + U x_t), loss = sum(h_T) + sum(ys^2) */
static jx_t rnn_step(const jx_t *a, void *u) {
  jx_t W = jx_at(a[0], 0), U = jx_at(a[0], 1), h = jx_at(a[0], 2);
  (void)u;
  jx_t hn = jx_tanh(jx_add(jx_matmul(h, W), jx_matmul(a[1], U)));
  return JX_TUPLE(JX_TUPLE(W, U, hn), jx_sum(jx_mul(hn, hn)));
}
static jx_t rnn_loss(const jx_t *a, void *u) {
  (void)u;
  jx_fn *s = jx_fn_new(rnn_step, 2, NULL);
  jx_t r = jx_scan(s, JX_TUPLE(jx_at(a[0], 0), jx_at(a[0], 1), a[1]), a[2]);
  jx_fn_free(s);
  return jx_add(jx_sum(jx_at(jx_at(r, 0), 2)), jx_sum(jx_at(r, 1)));
}

static uint64_t rs = 0x2545F4914F6CDD1Dull;
static jx_t rnd(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  double *d = malloc(sizeof(double) * (size_t)n);
  for (int64_t i = 0; i < n; i++) {
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    d[i] = (double)(rs >> 11) / 9007199254740992.0 - 0.5;
  }
  jx_t x = jx_array(JX_F64, ndim, shape, d);
  free(d);
  return x;
}

/* central differences of f (scalar) wrt every entry of leaf `which` of arg 0 (a tuple) */
static double fd_check(jx_fn *f, jx_t params, jx_t h, jx_t xs, int which, jx_t grad_leaf) {
  jx_t P = jx_at(params, which);
  int64_t n = jx_size(P);
  double *pv = malloc(sizeof(double) * (size_t)n), *gv = malloc(sizeof(double) * (size_t)n), worst = 0;
  jx_read(P, JX_F64, pv, sizeof(double) * (size_t)n);
  jx_read(grad_leaf, JX_F64, gv, sizeof(double) * (size_t)n);
  for (int64_t i = 0; i < n; i++) {
    double fx[2], save = pv[i];
    for (int s = 0; s < 2; s++) {
      pv[i] = save + (s ? -1e-6 : 1e-6);
      jx_t Pn = jx_array(JX_F64, jx_ndim(P), jx_shape(P), pv);
      jx_t pp = which ? JX_TUPLE(jx_at(params, 0), Pn) : JX_TUPLE(Pn, jx_at(params, 1));
      fx[s] = item(JX_CALL(f, pp, h, xs));
    }
    pv[i] = save;
    double e = fabs((fx[0] - fx[1]) / 2e-6 - gv[i]);
    if (e > worst) worst = e;
  }
  free(pv), free(gv);
  return worst;
}

static void test_scan(void) {
  jx_pool_push();
  /* fori_loop gradient against finite differences */
  jx_fn *ff = jx_fn_new(fori_fn, 1, NULL), *fg = jx_grad(ff, 0);
  double x = 0.3, e = 1e-6;
  double fd = (item(JX_CALL(ff, F64(x + e))) - item(JX_CALL(ff, F64(x - e)))) / (2 * e);
  CHECK_CLOSE(item(JX_CALL(fg, F64(x))), fd, 1e-7, 1e-9);
  jx_fn_free(fg), jx_fn_free(ff);

  jx_t params = JX_TUPLE(rnd(JX_SHAPE(4, 4)), rnd(JX_SHAPE(3, 4)));
  jx_t h = rnd(JX_SHAPE(2, 4)), xs = rnd(JX_SHAPE(6, 2, 3));
  jx_fn *f = jx_fn_new(rnn_loss, 3, NULL);
  jx_fn *g = jx_grad(f, 0), *jg = jx_jit(g), *jf = jx_jit(f), *gj = jx_grad(jf, 0);
  jx_t G = JX_CALL(g, params, h, xs), JG = JX_CALL(jg, params, h, xs), GJ = JX_CALL(gj, params, h, xs);
  CHECKF(jx_ok(G) && jx_ok(JG) && jx_ok(GJ), "%s %s %s", jx_error(G), jx_error(JG), jx_error(GJ));
  CHECK_CLOSE(item(JX_CALL(jf, params, h, xs)), item(JX_CALL(f, params, h, xs)), 1e-13, 0);
  for (int w = 0; w < 2 && jx_ok(G); w++) {
    CHECKF(fd_check(f, params, h, xs, w, jx_at(G, w)) < 1e-7, "RNN grad leaf %d vs finite differences", w);
    CHECK(maxdiff(jx_at(G, w), jx_at(JG, w)) < 1e-12);
    CHECK(maxdiff(jx_at(G, w), jx_at(GJ, w)) < 1e-12);
  }
  /* vmap of the scan over a batch of initial states == loop */
  jx_fn *vf = jx_vmap(f, (int[]){JX_NONE, 0, JX_NONE}, 0);
  jx_t hs = rnd(JX_SHAPE(3, 2, 4));
  jx_t vb = JX_CALL(vf, params, hs, xs);
  for (int i = 0; i < 3; i++)
    CHECK_CLOSE(item(jx_take(vb, jx_scalar_int(i), 0)),
                item(JX_CALL(f, params, jx_take(hs, jx_scalar_int(i), 0), xs)), 1e-13, 1e-13);
  jx_fn_free(vf), jx_fn_free(gj), jx_fn_free(jf), jx_fn_free(jg), jx_fn_free(g), jx_fn_free(f);
  jx_pool_pop();
}

static jx_t sc_bad(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_astype(a[0], JX_F32), a[1]);
}
static void test_scan_errors(void) {
  jx_fn *f = jx_fn_new(sc_bad, 2, NULL);
  jx_t r = jx_scan(f, F64(0), jx_ones(JX_F64, JX_SHAPE(3)));
  CHECKF(!jx_ok(r) && strstr(jx_error(r), "f64[]") && strstr(jx_error(r), "f32[]"), "%s", jx_error(r));
  r = jx_scan(f, F64(0), JX_TUPLE(jx_ones(JX_F64, JX_SHAPE(3)), jx_ones(JX_F64, JX_SHAPE(4))));
  CHECK(!jx_ok(r) && strstr(jx_error(r), "lengths"));
  /* jx_scan_ex: an explicit length that the xs do not have, a negative one */
  r = jx_scan_ex(f, F64(0), jx_ones(JX_F64, JX_SHAPE(3)), 4, false);
  CHECKF(!jx_ok(r) && strstr(jx_error(r), "4") && strstr(jx_error(r), "3"), "%s", jx_error(r));
  r = jx_scan_ex(f, F64(0), NULL, -2, false);
  CHECKF(!jx_ok(r) && strstr(jx_error(r), "length") && strstr(jx_error(r), "-2"), "%s", jx_error(r));
  jx_fn_free(f);
}

/* compiled as a loop: the jaxpr has one scan equation whatever the length */
static jx_t cumsum_step(const jx_t *a, void *u) {
  (void)u;
  jx_t c = jx_add(a[0], a[1]);
  return JX_TUPLE(c, c);
}
static jx_t cumsum(const jx_t *a, void *u) {
  (void)u;
  jx_fn *s = jx_fn_new(cumsum_step, 2, NULL);
  jx_t r = jx_at(jx_scan(s, F64(0), a[0]), 1);
  jx_fn_free(s);
  return r;
}
static void test_not_unrolled(void) {
  jx_fn *f = jx_fn_new(cumsum, 1, NULL);
  for (int n = 10; n <= 1000; n *= 100) {
    jx_t x = jx_ones(JX_F64, 1, (int64_t[]){n});
    char *s = jx_make_jaxpr(f, &x);
    int eqns = 0;
    for (char *p = s; (p = strstr(p, " = ")); p += 3) eqns++;
    CHECKF(eqns <= 2 && strstr(s, "scan"), "length %d staged %d equations:\n%s", n, eqns, s);
    free(s);
    jx_fn *jf = jx_jit(f);
    jx_t y = JX_CALL(jf, x);
    CHECK(jx_ok(y) && item(jx_take(y, jx_scalar_int(n - 1), 0)) == n);
    jx_fn_free(jf);
  }
  jx_fn_free(f);
}

int main(void) {
  test_cond();
  test_switch();
  test_cond_errors();
  test_while();
  test_while_errors();
  test_scan();
  test_scan_errors();
  test_not_unrolled();
  return check_report("control");
}
