/* Autodiff through the public API: JAX's cookbook values, higher order,
 * Hessians, jacfwd == jacrev, trees, perturbation confusion, make_jaxpr,
 * the seed's MLP against finite differences, and error values. */
#include "check.h"
#include "seed_mlp.h"

#include <jx.h>

static jx_t tanh_f(const jx_t *a, void *u) {
  (void)u;
  return jx_tanh(a[0]);
}
/* the seed's tanh, written with exp */
static jx_t tanh_exp(const jx_t *a, void *u) {
  (void)u;
  jx_t y = jx_exp(jx_mul(jx_scalar(-2.0), a[0]));
  return jx_div(jx_sub(jx_scalar(1.0), y), jx_add(jx_scalar(1.0), y));
}

static void test_cookbook(void) {
  const double want64[3] = {0.07065082485316443, -0.13621868742711296, 0.2526540650980626};
  const double want32[3] = {0.0706509, -0.1362189, 0.2526544};
  jx_body bodies[2] = {tanh_f, tanh_exp};
  for (int b = 0; b < 2; b++) {
    jx_fn *f = jx_fn_new(bodies[b], 1, NULL);
    jx_fn *g1 = jx_grad(f, 0), *g2 = jx_grad(g1, 0), *g3 = jx_grad(g2, 0);
    jx_fn *gs[3] = {g1, g2, g3};
    for (int k = 0; k < 3; k++) {
      double v64 = jx_item(JX_CALL(gs[k], jx_scalar_of(JX_F64, 2.0)));
      double v32 = jx_item(JX_CALL(gs[k], jx_scalar_of(JX_F32, 2.0)));
      CHECK_CLOSE(v64, want64[k], 1e-13, 1e-14);
      CHECK_CLOSE(v32, want32[k], 0, 1e-6); /* printed to 7 digits by JAX */
      jx_t r = JX_CALL(gs[k], jx_scalar_of(JX_F32, 2.0));
      CHECK(jx_dtype_of(r) == JX_F32);
    }
    jx_fn_free(g3), jx_fn_free(g2), jx_fn_free(g1), jx_fn_free(f);
  }
}

static jx_t sum_cube(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_mul(jx_mul(a[0], a[0]), a[0]));
}
static jx_t quad(const jx_t *a, void *u) { /* x^T A x */
  jx_t A = u;
  return jx_dot(a[0], jx_dot(A, a[0]));
}
static void test_hessians(void) {
  double xs[3] = {0.5, -1.0, 2.0};
  jx_t x = jx_array(JX_F64, JX_SHAPE(3), xs);
  jx_fn *f = jx_fn_new(sum_cube, 1, NULL);
  jx_fn *h = jx_hessian(f, 0);
  jx_t H = JX_CALL(h, x);
  CHECK(jx_ok(H) && jx_ndim(H) == 2 && jx_shape(H)[0] == 3 && jx_shape(H)[1] == 3);
  double hv[9];
  CHECK(jx_read(H, JX_F64, hv, sizeof hv) == 0);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) CHECK_CLOSE(hv[i * 3 + j], i == j ? 6 * xs[i] : 0, 1e-12, 1e-12);
  jx_fn_free(h), jx_fn_free(f);

  double Av[9] = {1, 2, 3, -1, 0.5, 4, 2, -3, 1};
  jx_t A = jx_retain(jx_array(JX_F64, JX_SHAPE(3, 3), Av));
  jx_fn *q = jx_fn_new(quad, 1, A);
  jx_fn *hq = jx_hessian(q, 0);
  jx_t Hq = JX_CALL(hq, x);
  CHECK(jx_read(Hq, JX_F64, hv, sizeof hv) == 0);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) CHECK_CLOSE(hv[i * 3 + j], Av[i * 3 + j] + Av[j * 3 + i], 1e-12, 1e-12);
  jx_fn_free(hq), jx_fn_free(q);
  jx_release(A);
}

static jx_t vec_g(const jx_t *a, void *u) { /* R^3 -> R^2: (sin(x0) * (x1 + x2), exp(x2) * x0) */
  (void)u;
  jx_t x = a[0];
  jx_t x0 = jx_take(x, jx_scalar_int(0), 0), x1 = jx_take(x, jx_scalar_int(1), 0),
       x2 = jx_take(x, jx_scalar_int(2), 0);
  return jx_stack(2, (jx_t[]){jx_mul(jx_sin(x0), jx_add(x1, x2)), jx_mul(jx_exp(x2), x0)}, 0);
}

static void test_jacobians(void) {
  jx_t x = jx_array(JX_F64, JX_SHAPE(3), (double[]){0.3, -0.7, 1.1});
  jx_fn *f = jx_fn_new(vec_g, 1, NULL);
  jx_fn *jf = jx_jacfwd(f, 0), *jr = jx_jacrev(f, 0);
  jx_t A = JX_CALL(jf, x), B = JX_CALL(jr, x);
  CHECK(jx_ok(A) && jx_ok(B));
  CHECK(jx_ndim(A) == 2 && jx_shape(A)[0] == 2 && jx_shape(A)[1] == 3);
  double a[6], b[6];
  CHECK(jx_read(A, JX_F64, a, sizeof a) == 0 && jx_read(B, JX_F64, b, sizeof b) == 0);
  double x0 = 0.3, x1 = -0.7, x2 = 1.1;
  double want[6] = {cos(x0) * (x1 + x2), sin(x0), sin(x0), exp(x2), 0, exp(x2) * x0};
  for (int i = 0; i < 6; i++) {
    CHECK_CLOSE(a[i], want[i], 1e-12, 1e-14);
    CHECK_CLOSE(b[i], want[i], 1e-12, 1e-14);
  }
  /* jacfwd(jacrev) == jacrev(jacfwd): second derivatives, shape [2,3,3] */
  jx_fn *h1 = jx_jacfwd(jr, 0), *h2 = jx_jacrev(jf, 0);
  jx_t H1 = JX_CALL(h1, x), H2 = JX_CALL(h2, x);
  CHECK(jx_ok(H1) && jx_ndim(H1) == 3);
  CHECK(jx_item(jx_max(jx_abs(jx_sub(H1, H2)))) < 1e-12);
  jx_fn_free(h1), jx_fn_free(h2), jx_fn_free(jf), jx_fn_free(jr), jx_fn_free(f);
}

/* perturbation confusion: d/dx [x * d/dy (x + y)] at any x = 1 */
static jx_t inner_xy(const jx_t *a, void *u) {
  (void)u;
  return jx_add(a[0], a[1]);
}
static jx_t outer_x(const jx_t *a, void *u) {
  (void)u;
  jx_fn *in = jx_fn_new(inner_xy, 2, NULL);
  jx_fn *d = jx_grad(in, 1);
  jx_t r = jx_mul(a[0], JX_CALL(d, a[0], jx_scalar_of(JX_F64, 3.0)));
  jx_fn_free(d), jx_fn_free(in);
  return r;
}
static void test_perturbation_confusion(void) {
  jx_fn *f = jx_fn_new(outer_x, 1, NULL);
  jx_fn *g = jx_grad(f, 0);
  CHECK_CLOSE(jx_item(JX_CALL(g, jx_scalar_of(JX_F64, 5.0))), 1.0, 0, 1e-15);
  jx_fn_free(g), jx_fn_free(f);
}

/* the seed's MLP: tests/seed_mlp.h */
static uint64_t seed = 88172645463325252ull;
static double urand(void) {
  seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
  return (double)(seed >> 11) / 9007199254740992.0 * 2 - 1;
}
static jx_t rnd(int64_t r, int64_t c) {
  double *d = malloc(sizeof(double) * (size_t)(r * c));
  for (int64_t i = 0; i < r * c; i++) d[i] = urand();
  jx_t x = c ? jx_array(JX_F64, JX_SHAPE(r, c), d) : NULL;
  free(d);
  return x;
}
static jx_t rndv(int64_t n) { return jx_reshape(rnd(1, n), 1, (int64_t[]){n}); }

static void test_mlp_grad(void) {
  jx_pool_push();
  jx_t params = JX_LIST(JX_TUPLE(rnd(4, 5), rndv(5)), JX_TUPLE(rnd(5, 3), rndv(3)));
  jx_t x = rnd(6, 4), y = rnd(6, 3);
  jx_fn *f = jx_fn_new(seed_loss, 3, NULL);
  jx_fn *vg = jx_value_and_grad(f, 0);
  jx_t r = JX_CALL(vg, params, x, y);
  CHECKF(jx_ok(r), "%s", jx_error(r));
  jx_t g = jx_at(r, 1);
  CHECK(jx_len(g) == 2 && jx_len(jx_at(g, 0)) == 2 && jx_len(jx_at(g, 1)) == 2);
  CHECK_CLOSE(jx_item(jx_at(r, 0)), jx_item(JX_CALL(f, params, x, y)), 1e-15, 0);
  /* central differences on every parameter entry */
  double maxerr = 0;
  for (int l = 0; l < 2; l++)
    for (int w = 0; w < 2; w++) {
      jx_t P = jx_at(jx_at(params, l), w), G = jx_at(jx_at(g, l), w);
      int64_t n = jx_size(P);
      double *pv = malloc(sizeof(double) * (size_t)n), *gv = malloc(sizeof(double) * (size_t)n);
      jx_read(P, JX_F64, pv, sizeof(double) * (size_t)n);
      jx_read(G, JX_F64, gv, sizeof(double) * (size_t)n);
      for (int64_t i = 0; i < n; i++) {
        double fx[2];
        for (int s = 0; s < 2; s++) {
          double save = pv[i];
          pv[i] += s ? -1e-6 : 1e-6;
          jx_t Pn = jx_array(JX_F64, jx_ndim(P), jx_shape(P), pv);
          pv[i] = save;
          jx_t layer =
              w ? JX_TUPLE(jx_at(jx_at(params, l), 0), Pn) : JX_TUPLE(Pn, jx_at(jx_at(params, l), 1));
          jx_t pp = l ? JX_LIST(jx_at(params, 0), layer) : JX_LIST(layer, jx_at(params, 1));
          fx[s] = jx_item(JX_CALL(f, pp, x, y));
        }
        double fd = (fx[0] - fx[1]) / 2e-6;
        double e = fabs(fd - gv[i]) / (1 + fabs(fd));
        if (e > maxerr) maxerr = e;
      }
      free(pv), free(gv);
    }
  CHECKF(maxerr < 1e-7, "MLP gradient vs finite differences: max rel error %g", maxerr);
  jx_fn_free(vg), jx_fn_free(f);
  jx_pool_pop();
}

/* slow_f, written with explicit order so the printed jaxpr matches JAX's */
static jx_t slow_f(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0];
  jx_t xx = jx_mul(x, x);
  jx_t xxx = jx_mul(xx, x);
  jx_t x2 = jx_mul(x, jx_scalar(2.0));
  jx_t x2x = jx_mul(x2, x);
  jx_t s = jx_add(xxx, x2x);
  return jx_add(s, x);
}
static void test_make_jaxpr(void) {
  jx_fn *f = jx_fn_new(slow_f, 1, NULL);
  jx_t x = jx_ones(JX_F32, JX_SHAPE(2000, 2000));
  char *s = jx_make_jaxpr(f, &x);
  const char *want = "{ lambda ; a:f32[2000,2000]. let\n"
                     "    b:f32[2000,2000] = mul a a\n"
                     "    c:f32[2000,2000] = mul b a\n"
                     "    d:f32[2000,2000] = mul a 2.0:f32[]\n"
                     "    e:f32[2000,2000] = mul d a\n"
                     "    f:f32[2000,2000] = add c e\n"
                     "    g:f32[2000,2000] = add f a\n"
                     "  in (g,) }";
  CHECKF(s && !strcmp(s, want), "make_jaxpr(slow_f):\n%s", s);
  free(s);
  jx_t y = jx_ones(JX_F32, JX_SHAPE(3));
  jx_fn *t = jx_fn_new(tanh_f, 1, NULL);
  s = jx_make_jaxpr(t, &y);
  CHECKF(s && !strcmp(s, "{ lambda ; a:f32[3]. let\n    b:f32[3] = tanh a\n  in (b,) }"), "%s", s);
  free(s);
  /* the gradient's jaxpr: what grad(tanh) stages */
  jx_fn *g = jx_grad(t, 0);
  jx_t z = jx_scalar_of(JX_F32, 1.0);
  s = jx_make_jaxpr(g, &z);
  CHECKF(s && strstr(s, "tanh a") && strstr(s, "mul"), "%s", s);
  free(s);
  jx_fn_free(g), jx_fn_free(t), jx_fn_free(f);
}

static jx_t first_of_tuple(const jx_t *a, void *u) {
  (void)u;
  return jx_at(a[0], 0);
}
static void test_errors(void) {
  jx_fn *t = jx_fn_new(tanh_f, 1, NULL);
  jx_fn *g = jx_grad(t, 0);
  jx_t r = JX_CALL(g, jx_ones(JX_F32, JX_SHAPE(3)));
  CHECK(!jx_ok(r) && strstr(jx_error(r), "grad") && strstr(jx_error(r), "scalar") &&
        strstr(jx_error(r), "f32[3]"));
  r = JX_CALL(g, jx_scalar_int(3));
  CHECK(!jx_ok(r) && strstr(jx_error(r), "float"));
  jx_fn *g5 = jx_grad(t, 5);
  r = JX_CALL(g5, jx_scalar(1.0));
  CHECK(!jx_ok(r) && strstr(jx_error(r), "argnum 5"));
  jx_t e = jx_error_new("upstream failure");
  CHECK(JX_CALL(g, e) == e);
  /* a tree argument */
  jx_fn *ft = jx_fn_new(first_of_tuple, 1, NULL);
  jx_fn *gt = jx_grad(ft, 0);
  r = JX_CALL(gt, JX_TUPLE(jx_scalar(1.0), jx_scalar(2.0)));
  CHECK(jx_ok(r) && jx_len(r) == 2 && jx_item(jx_at(r, 0)) == 1.0 && jx_item(jx_at(r, 1)) == 0.0);
  /* jvp with mismatched tangent */
  r = jx_jvp(t, (jx_t[]){jx_ones(JX_F32, JX_SHAPE(3))}, (jx_t[]){jx_ones(JX_F32, JX_SHAPE(4))});
  CHECK(!jx_ok(r) && strstr(jx_error(r), "tangent"));
  /* reading a traced value */
  jx_fn_free(gt), jx_fn_free(ft), jx_fn_free(g5), jx_fn_free(g), jx_fn_free(t);
}

/* vjp on a two-argument function with a tree output */
static jx_t two_out(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_mul(a[0], a[1]), jx_sin(a[0]));
}
static void test_vjp(void) {
  jx_fn *f = jx_fn_new(two_out, 2, NULL);
  jx_fn *back = NULL;
  jx_t x = jx_scalar_of(JX_F64, 0.5), y = jx_scalar_of(JX_F64, 3.0);
  jx_t out = jx_vjp(f, (jx_t[]){x, y}, &back);
  CHECK(jx_ok(out) && back);
  jx_t ct = JX_TUPLE(jx_scalar_of(JX_F64, 1.0), jx_scalar_of(JX_F64, 2.0));
  jx_t g = JX_CALL(back, ct);
  CHECK(jx_ok(g) && jx_len(g) == 2);
  CHECK_CLOSE(jx_item(jx_at(g, 0)), 3.0 + 2 * cos(0.5), 1e-15, 0);
  CHECK_CLOSE(jx_item(jx_at(g, 1)), 0.5, 1e-15, 0);
  jx_t bad = JX_CALL(back, jx_scalar_of(JX_F64, 1.0));
  CHECK(!jx_ok(bad));
  jx_fn_free(back), jx_fn_free(f);
}

/* jit: same shapes never retrace; grad(jit) == jit(grad) == grad */
int jx_jit_trace_count(jx_fn *jitted);
static void test_jit_cache(void) {
  jx_fn *f = jx_fn_new(slow_f, 1, NULL);
  jx_fn *jf = jx_jit(f);
  for (int i = 0; i < 3; i++) JX_CALL(jf, jx_ones(JX_F32, JX_SHAPE(4)));
  CHECK(jx_jit_trace_count(jf) == 1);
  JX_CALL(jf, jx_ones(JX_F32, JX_SHAPE(5)));
  JX_CALL(jf, jx_ones(JX_F64, JX_SHAPE(5)));
  CHECK(jx_jit_trace_count(jf) == 3);
  jx_fn *sf = jx_fn_new(sum_cube, 1, NULL);
  jx_fn *jsf = jx_jit(sf), *gsf = jx_grad(sf, 0);
  jx_fn *g1 = jx_grad(jsf, 0), *j = jx_jit(gsf), *g = jx_grad(sf, 0);
  jx_t x = jx_array(JX_F32, JX_SHAPE(3), (float[]){1, 2, 3});
  jx_t a = JX_CALL(g1, x), b = JX_CALL(j, x), c = JX_CALL(g, x);
  CHECK(jx_ok(a) && jx_ok(b) && jx_ok(c));
  CHECK(jx_item(jx_max(jx_abs(jx_sub(a, c)))) == 0 && jx_item(jx_max(jx_abs(jx_sub(b, c)))) == 0);
  CHECK(jx_item(jx_take(c, jx_scalar_int(2), 0)) == 27);
  jx_fn_free(g1), jx_fn_free(j), jx_fn_free(g), jx_fn_free(jsf), jx_fn_free(gsf);
  jx_fn_free(sf), jx_fn_free(jf), jx_fn_free(f);
}

int main(void) {
  test_cookbook();
  test_hessians();
  test_jacobians();
  test_perturbation_confusion();
  test_mlp_grad();
  test_make_jaxpr();
  test_errors();
  test_vjp();
  test_jit_cache();
  return check_report("autodiff");
}
