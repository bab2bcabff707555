/* grad_ex / value_and_grad_ex (argnums as a tuple, has_aux), linearize,
 * and jacfwd/jacrev/hessian over trees, built as one batched pass over
 * the basis (their traced program does not grow with the input size). */
#include "check.h"

#include <jx.h>

static double max_diff(jx_t a, jx_t b) {
  if (!jx_ok(a) || !jx_ok(b)) return INFINITY;
  if (jx_ndim(a) != jx_ndim(b)) return INFINITY;
  for (int d = 0; d < jx_ndim(a); d++)
    if (jx_shape(a)[d] != jx_shape(b)[d]) return INFINITY;
  return jx_item(jx_max(jx_abs(jx_sub(jx_astype(a, JX_F64), jx_astype(b, JX_F64)))));
}
static jx_t vec(int n, const double *v) { return jx_array(JX_F64, JX_SHAPE(n), v); }

/* f(x, y, z) = sum(x * y * z^2) */
static jx_t xyz(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_mul(jx_mul(a[0], a[1]), jx_square(a[2])));
}
/* (value, aux): aux a tree of the value's parts */
static jx_t with_aux(const jx_t *a, void *u) {
  (void)u;
  jx_t s = jx_sum(jx_mul(a[0], a[1]));
  return JX_TUPLE(jx_mul(s, s), JX_TUPLE(s, jx_scalar_of(JX_I32, 7)));
}

static void test_grad_ex(void) {
  jx_t x = vec(3, (double[]){1, 2, 3}), y = vec(3, (double[]){-1, 0.5, 2}),
       z = vec(3, (double[]){0.5, 1, -2});
  jx_fn *f = jx_fn_new(xyz, 3, NULL);
  jx_t g = JX_CALL(jx_grad_ex(f, 2, (int[]){0, 2}, false), x, y, z);
  CHECK(jx_ok(g) && jx_len(g) == 2);
  CHECK(max_diff(jx_at(g, 0), jx_mul(y, jx_square(z))) < 1e-15);
  CHECK(max_diff(jx_at(g, 1), jx_mul(jx_scalar(2.0), jx_mul(jx_mul(x, y), z))) < 1e-15);
  /* order follows argnums; equal to grad per argument */
  jx_t g2 = JX_CALL(jx_grad_ex(f, 2, (int[]){2, 1}, false), x, y, z);
  CHECK(max_diff(jx_at(g2, 0), jx_at(g, 1)) == 0);
  CHECK(max_diff(jx_at(g2, 1), JX_CALL(jx_grad(f, 1), x, y, z)) == 0);
  /* argnums NULL: (0,) */
  jx_t g0 = JX_CALL(jx_grad_ex(f, 0, NULL, false), x, y, z);
  CHECK(jx_len(g0) == 1 && max_diff(jx_at(g0, 0), jx_at(g, 0)) == 0);
  /* value_and_grad_ex */
  jx_t vg = JX_CALL(jx_value_and_grad_ex(f, 2, (int[]){0, 2}, false), x, y, z);
  CHECK(max_diff(jx_at(vg, 0), JX_CALL(f, x, y, z)) == 0 &&
        max_diff(jx_at(jx_at(vg, 1), 1), jx_at(g, 1)) == 0);
  /* jit and vmap of it */
  jx_t gj = JX_CALL(jx_jit(jx_grad_ex(f, 2, (int[]){0, 2}, false)), x, y, z);
  CHECK(max_diff(jx_at(gj, 0), jx_at(g, 0)) < 1e-15 && max_diff(jx_at(gj, 1), jx_at(g, 1)) < 1e-15);
  jx_t X = jx_stack(2, (jx_t[]){x, y}, 0);
  jx_t gv =
      JX_CALL(jx_vmap(jx_grad_ex(f, 2, (int[]){0, 2}, false), (int[]){0, JX_NONE, JX_NONE}, 0), X, y, z);
  CHECK(max_diff(jx_take(jx_at(gv, 1), jx_scalar_int(1), 0), JX_CALL(jx_grad(f, 2), y, y, z)) < 1e-15);
  /* has_aux */
  jx_fn *fa = jx_fn_new(with_aux, 2, NULL);
  jx_t ga = JX_CALL(jx_grad_ex(fa, 2, (int[]){0, 1}, true), x, y);
  double s = 1 * -1 + 2 * 0.5 + 3 * 2;
  CHECK(jx_len(ga) == 2);
  CHECK(max_diff(jx_at(jx_at(ga, 0), 0), jx_mul(jx_scalar(2 * s), y)) < 1e-14);
  CHECK(max_diff(jx_at(jx_at(ga, 0), 1), jx_mul(jx_scalar(2 * s), x)) < 1e-14);
  jx_t aux = jx_at(ga, 1);
  CHECK(jx_item(jx_at(aux, 0)) == s && jx_item(jx_at(aux, 1)) == 7 && jx_dtype_of(jx_at(aux, 1)) == JX_I32);
  jx_t vga = JX_CALL(jx_value_and_grad_ex(fa, 1, (int[]){1}, true), x, y);
  CHECK(jx_item(jx_at(jx_at(vga, 0), 0)) == s * s && jx_item(jx_at(jx_at(jx_at(vga, 0), 1), 0)) == s);
  CHECK(max_diff(jx_at(jx_at(vga, 1), 0), jx_at(jx_at(ga, 0), 1)) == 0);
  jx_t gaj = JX_CALL(jx_jit(jx_grad_ex(fa, 2, (int[]){0, 1}, true)), x, y);
  CHECK(jx_item(jx_at(jx_at(gaj, 1), 0)) == s &&
        max_diff(jx_at(jx_at(gaj, 0), 1), jx_at(jx_at(ga, 0), 1)) < 1e-14);
  /* grad of grad_ex: second order through the tuple */
  /* errors */
  EXPECT_ERROR(JX_CALL(jx_grad_ex(f, 2, (int[]){0, 3}, false), x, y, z), "grad", "argnum 3 is out of range");
  EXPECT_ERROR(JX_CALL(jx_grad_ex(f, 2, (int[]){1, 1}, false), x, y, z), "argnums lists 1 twice");
  EXPECT_ERROR(JX_CALL(jx_grad_ex(f, 0, (int[]){0}, false), x, y, z), "argnums is empty");
  EXPECT_ERROR(JX_CALL(jx_grad_ex(f, 1, (int[]){0}, true), x, y, z), "has_aux", "(value, aux) pair");
  EXPECT_ERROR(JX_CALL(jx_value_and_grad_ex(fa, 1, (int[]){0}, false), x, y), "value_and_grad", "tree");
}

/* ----------------------------------------------------------- linearize */
static jx_t lin_f(const jx_t *a, void *u) { /* ({sin(x) y}, x^2) from (x, (y)) */
  (void)u;
  jx_t y = jx_at(a[1], 0);
  return JX_TUPLE(jx_mul(jx_sin(a[0]), y), jx_square(a[0]));
}

static void test_linearize(void) {
  jx_t x = vec(3, (double[]){0.1, 0.2, 0.3}), y = vec(3, (double[]){1, 2, 3});
  jx_fn *f = jx_fn_new(lin_f, 2, NULL), *jf;
  jx_t out = jx_linearize(f, (jx_t[]){x, JX_TUPLE(y)}, &jf);
  jx_t want_out = JX_CALL(f, x, JX_TUPLE(y));
  CHECK(max_diff(jx_at(out, 0), jx_at(want_out, 0)) == 0 && max_diff(jx_at(out, 1), jx_at(want_out, 1)) == 0);
  for (int k = 0; k < 2; k++) { /* the same linear function at two tangents */
    jx_t tx = jx_mul(jx_scalar(k + 1.0), x), ty = JX_TUPLE(jx_mul(jx_scalar(0.5 - k), y));
    jx_t got = JX_CALL(jf, tx, ty);
    jx_t want = jx_at(jx_jvp(f, (jx_t[]){x, JX_TUPLE(y)}, (jx_t[]){tx, ty}), 1);
    CHECK(max_diff(jx_at(got, 0), jx_at(want, 0)) < 1e-15 && max_diff(jx_at(got, 1), jx_at(want, 1)) < 1e-15);
  }
  CHECK(jx_ok(JX_CALL(jx_jit(jf), x, JX_TUPLE(y))));
  EXPECT_ERROR(JX_CALL(jf, x, y), "linearize", "tree structure");
  EXPECT_ERROR(JX_CALL(jf, jx_astype(x, JX_F32), JX_TUPLE(y)), "linearize", "tangent 0 is f32[3]", "f64[3]");
  jx_fn *bad;
  EXPECT_ERROR(jx_linearize(f, (jx_t[]){jx_ones(JX_I32, JX_SHAPE(3)), JX_TUPLE(y)}, &bad), "linearize",
               "float");
  EXPECT_ERROR(JX_CALL(bad, x, JX_TUPLE(y)), "linearize");
}

/* ----------------------------------------------------- jacobians of trees */
/* ({"a": x[2], "b": M[2,3]}) -> (M^T x [3], sum(x)^2) */
static jx_t tree_f(const jx_t *a, void *u) {
  (void)u;
  jx_t x = jx_at(a[0], 0), M = jx_at(a[0], 1);
  return JX_TUPLE(jx_matmul(x, M), jx_square(jx_sum(jx_sin(x))));
}

static void test_jac_trees(void) {
  jx_t x = vec(2, (double[]){0.3, -0.7});
  jx_t M = jx_reshape(jx_array(JX_F64, JX_SHAPE(6), (double[]){1, 2, 3, 4, 5, 6}), 2, (int64_t[]){2, 3});
  jx_t in = JX_TUPLE(x, M);
  jx_fn *f = jx_fn_new(tree_f, 1, NULL);
  jx_t Jf = JX_CALL(jx_jacfwd(f, 0), in), Jr = JX_CALL(jx_jacrev(f, 0), in);
  CHECK(jx_ok(Jf) && jx_ok(Jr) && jx_len(Jf) == 2 && jx_len(jx_at(Jf, 0)) == 2);
  /* d(M^T x)/dx = M^T [3,2]; d(M^T x)/dM [3,2,3]: [j][i][k] = x_i delta_jk */
  jx_t J00 = jx_at(jx_at(Jf, 0), 0), J01 = jx_at(jx_at(Jf, 0), 1);
  CHECK(max_diff(J00, jx_transpose(M, NULL)) == 0);
  double d01[18] = {0};
  for (int j = 0; j < 3; j++)
    for (int i = 0; i < 2; i++) d01[j * 6 + i * 3 + j] = i ? -0.7 : 0.3;
  CHECK(max_diff(J01, jx_reshape(jx_array(JX_F64, JX_SHAPE(18), d01), 3, (int64_t[]){3, 2, 3})) == 0);
  /* d(sum sin x)^2 / dx = 2 s cos(x); d/dM = 0 [2,3] */
  double s = sin(0.3) + sin(-0.7);
  CHECK(max_diff(jx_at(jx_at(Jf, 1), 0), vec(2, (double[]){2 * s * cos(0.3), 2 * s * cos(-0.7)})) < 1e-15);
  CHECK(max_diff(jx_at(jx_at(Jf, 1), 1), jx_zeros(JX_F64, JX_SHAPE(2, 3))) == 0);
  for (int j = 0; j < 2; j++)
    for (int i = 0; i < 2; i++) CHECK(max_diff(jx_at(jx_at(Jf, j), i), jx_at(jx_at(Jr, j), i)) < 1e-15);
  /* jit, and the hessian of the scalar output over the tree */
  jx_t Jj = JX_CALL(jx_jit(jx_jacrev(f, 0)), in);
  CHECK(max_diff(jx_at(jx_at(Jj, 0), 1), J01) < 1e-15);
}

static jx_t quad(const jx_t *a, void *u) { /* sum(x^3) + x0 x1, for the hessian */
  (void)u;
  jx_t x = a[0];
  return jx_add(jx_sum(jx_mul(x, jx_square(x))),
                jx_mul(jx_take(x, jx_scalar_int(0), 0), jx_take(x, jx_scalar_int(1), 0)));
}
static jx_t wide(const jx_t *a, void *u) { /* R^n -> R^n */
  (void)u;
  return jx_tanh(jx_mul(a[0], jx_sum(a[0])));
}

static int lines(char *s) {
  int n = 0;
  for (char *p = s; p && *p; p++) n += *p == '\n';
  free(s);
  return n;
}

static void test_batched(void) {
  jx_t x = vec(3, (double[]){1, -2, 0.5});
  jx_t H = JX_CALL(jx_hessian(jx_fn_new(quad, 1, NULL), 0), x);
  double h[9] = {6, 1, 0, 1, -12, 0, 0, 0, 3};
  CHECK(max_diff(H, jx_reshape(jx_array(JX_F64, JX_SHAPE(9), h), 2, (int64_t[]){3, 3})) < 1e-14);
  /* one batched pass: the traced Jacobian program is the same size for 10
   * and 200 inputs (a loop over the basis would grow with n) */
  jx_fn *w = jx_fn_new(wide, 1, NULL);
  for (int rev = 0; rev < 2; rev++) {
    jx_fn *j = rev ? jx_jacrev(w, 0) : jx_jacfwd(w, 0);
    jx_t a = jx_ones(JX_F64, JX_SHAPE(10)), b = jx_ones(JX_F64, JX_SHAPE(200));
    int la = lines(jx_make_jaxpr(j, &a)), lb = lines(jx_make_jaxpr(j, &b));
    CHECKF(la == lb && la > 2, "%s: %d vs %d lines", rev ? "jacrev" : "jacfwd", la, lb);
    /* and equal to a loop of jvps */
    jx_t J = JX_CALL(j, a);
    jx_t e = jx_zeros(JX_F64, JX_SHAPE(10));
    jx_t col = jx_at(jx_jvp(w, &a, (jx_t[]){jx_add(e, jx_one_hot(jx_scalar_int(4), 10))}), 1);
    CHECK(max_diff(jx_take(J, jx_scalar_int(4), 1), jx_astype(col, JX_F64)) < 1e-15);
  }
  EXPECT_ERROR(JX_CALL(jx_jacfwd(jx_fn_new(quad, 1, NULL), 0), jx_ones(JX_I32, JX_SHAPE(3))), "jacfwd",
               "float");
}

int main(void) {
  check_private_cache("grad_ex");
  jx_pool_push();
  test_grad_ex();
  test_linearize();
  test_jac_trees();
  test_batched();
  jx_pool_pop();
  check_private_cache_remove();
  return check_report("grad_ex");
}
