/* vmap through the public API: the seed's per-example gradients (and with
 * jit on either side), out_axis, nested vmap with different in_axes,
 * batched matmul, in_axes on trees, negative axes, grad through vmap,
 * vmap of jacfwd/jacrev/hessian, and error values. Every batched result is
 * compared against a C loop over single examples. */
#include "check.h"
#include "seed_mlp.h"

#include <jx.h>

/* ------------------------------------------------------------- helpers */

static uint64_t seed = 0x9E3779B97F4A7C15ull;
static double urand(void) { /* xorshift64, uniform in [-1, 1) */
  seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
  return (double)(seed >> 11) / 9007199254740992.0 * 2 - 1;
}
static jx_t rnd(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  double *d = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) d[i] = urand();
  jx_t x = jx_array(JX_F64, ndim, shape, d);
  free(d);
  return x;
}
#define RND(...) rnd(JX_SHAPE(__VA_ARGS__))

/* x[i] along axis 0 (drops the axis) */
static jx_t row(jx_t x, int64_t i) { return jx_take(x, jx_scalar_int(i), 0); }
static jx_t at_axis(jx_t x, int64_t i, int axis) { return jx_take(x, jx_scalar_int(i), axis); }
static jx_t stack0(int n, const jx_t *xs) { return jx_stack(n, xs, 0); }

static bool same_shape(jx_t a, jx_t b) {
  if (jx_ndim(a) < 0 || jx_ndim(a) != jx_ndim(b)) return false;
  for (int i = 0; i < jx_ndim(a); i++)
    if (jx_shape(a)[i] != jx_shape(b)[i]) return false;
  return true;
}
static void shape_str(jx_t x, char *buf, size_t n) {
  if (!jx_ok(x)) {
    snprintf(buf, n, "error(%s)", jx_error(x));
    return;
  }
  if (jx_ndim(x) < 0) {
    snprintf(buf, n, "tree");
    return;
  }
  size_t k = (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < jx_ndim(x) && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)jx_shape(x)[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
}

/* got == want elementwise: |g - w| <= rtol * (|w| + max|want|) — a relative
 * tolerance that does not blow up on entries that happen to be ~0. Counts
 * as one check. */
static bool arrays_close_(jx_t got, jx_t want, double rtol, const char *what, int line) {
  char gs[96], ws[96];
  shape_str(got, gs, sizeof gs), shape_str(want, ws, sizeof ws);
  if (!jx_ok(got) || !jx_ok(want) || !same_shape(got, want)) {
    check_failed++;
    fprintf(stderr, "%s:%d: %s: shape %s vs want %s\n", __FILE__, line, what, gs, ws);
    return false;
  }
  int64_t n = jx_size(want);
  double *g = malloc(sizeof(double) * (size_t)(n ? n : 1)), *w = malloc(sizeof(double) * (size_t)(n ? n : 1));
  bool ok = jx_read(got, JX_F64, g, sizeof(double) * (size_t)n) == 0 &&
            jx_read(want, JX_F64, w, sizeof(double) * (size_t)n) == 0;
  double scale = 0;
  for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(w[i]));
  int64_t bad = -1;
  for (int64_t i = 0; ok && i < n; i++)
    if (!(fabs(g[i] - w[i]) <= rtol * (fabs(w[i]) + scale))) ok = false, bad = i;
  if (ok) {
    check_passed++;
  } else {
    check_failed++;
    fprintf(stderr, "%s:%d: %s %s: ", __FILE__, line, what, gs);
    if (bad >= 0)
      fprintf(stderr, "element %lld: %.17g vs want %.17g\n", (long long)bad, g[bad], w[bad]);
    else
      fprintf(stderr, "jx_read failed\n");
  }
  free(g), free(w);
  return ok;
}
#define ARRAYS_CLOSE(got, want, rtol, what) arrays_close_((got), (want), (rtol), (what), __LINE__)

/* every leaf of `batched` (mapped on axis 0) taken at example i matches the
 * corresponding leaf of `single` */
static void tree_matches_example(jx_t batched, jx_t single, int64_t i, int64_t n, double rtol,
                                 const char *what) {
  if (jx_is_tree(single)) {
    CHECKF(jx_is_tree(batched) && jx_len(batched) == jx_len(single), "%s: tree structure differs", what);
    if (!jx_is_tree(batched) || jx_len(batched) != jx_len(single)) return;
    for (int k = 0; k < jx_len(single); k++)
      tree_matches_example(jx_at(batched, k), jx_at(single, k), i, n, rtol, what);
    return;
  }
  CHECKF(jx_ok(batched) && jx_ndim(batched) == jx_ndim(single) + 1 && jx_shape(batched)[0] == n,
         "%s: batched leaf has rank %d (want %d), error %s", what, jx_ndim(batched), jx_ndim(single) + 1,
         jx_error(batched) ? jx_error(batched) : "none");
  ARRAYS_CLOSE(row(batched, i), single, rtol, what);
}

/* ------------------------------------------- the seed's per-example grads */

static jx_t predict_fn(const jx_t *a, void *u) {
  (void)u;
  return seed_predict(a[0], a[1]);
}

static void test_per_example_grads(void) {
  jx_pool_push();
  enum { B = 8, IN = 5, HID = 7, OUT = 3 };
  jx_t params = JX_LIST(JX_TUPLE(RND(IN, HID), RND(HID)), JX_TUPLE(RND(HID, OUT), RND(OUT)));
  jx_t x = RND(B, IN), y = RND(B, OUT);

  jx_fn *loss_fn = jx_fn_new(seed_loss, 3, NULL);
  jx_fn *g = jx_grad(loss_fn, 0);
  jx_fn *perex = jx_vmap(g, (int[]){JX_NONE, 0, 0}, 0);
  jx_fn *jit_perex = jx_jit(perex);
  jx_fn *jg = jx_jit(g);
  jx_fn *perex_jit = jx_vmap(jg, (int[]){JX_NONE, 0, 0}, 0);

  jx_t r = JX_CALL(perex, params, x, y);
  CHECKF(jx_ok(r), "vmap(grad): %s", jx_error(r));
  /* the tree: list of 2 (W, b) tuples, each leaf with a leading 8 */
  CHECK(jx_len(r) == 2 && jx_len(jx_at(r, 0)) == 2 && jx_len(jx_at(r, 1)) == 2);
  const int64_t want_shapes[4][3] = {{B, IN, HID}, {B, HID, 0}, {B, HID, OUT}, {B, OUT, 0}};
  for (int l = 0; l < 2; l++)
    for (int w = 0; w < 2; w++) {
      jx_t leaf = jx_at(jx_at(r, l), w);
      const int64_t *ws = want_shapes[l * 2 + w];
      int nd = ws[2] ? 3 : 2;
      CHECKF(jx_ndim(leaf) == nd && jx_shape(leaf)[0] == ws[0] && jx_shape(leaf)[1] == ws[1] &&
                 (nd == 2 || jx_shape(leaf)[2] == ws[2]),
             "layer %d leaf %d has the wrong shape", l, w);
    }

  jx_t rj = JX_CALL(jit_perex, params, x, y);
  jx_t rj2 = JX_CALL(jit_perex, params, x, y); /* cached trace */
  jx_t rv = JX_CALL(perex_jit, params, x, y);
  CHECKF(jx_ok(rj) && jx_ok(rj2) && jx_ok(rv), "jit/vmap: %s %s", jx_error(rj), jx_error(rv));
  for (int i = 0; i < B; i++) {
    jx_t gi = JX_CALL(g, params, row(x, i), row(y, i));
    CHECKF(jx_ok(gi), "grad on example %d: %s", i, jx_error(gi));
    tree_matches_example(r, gi, i, B, 1e-12, "vmap(grad) vs loop");
    tree_matches_example(rj, gi, i, B, 1e-12, "jit(vmap(grad)) vs loop");
    tree_matches_example(rj2, gi, i, B, 1e-12, "jit(vmap(grad)) second call vs loop");
    tree_matches_example(rv, gi, i, B, 1e-12, "vmap(jit(grad)) vs loop");
  }
  /* summing the per-example grads gives the batch gradient */
  jx_t gb = JX_CALL(g, params, x, y);
  for (int l = 0; l < 2; l++)
    for (int w = 0; w < 2; w++)
      ARRAYS_CLOSE(jx_sum_axes(jx_at(jx_at(r, l), w), 1, (int[]){0}, false), jx_at(jx_at(gb, l), w), 1e-12,
                   "sum of per-example grads vs batch grad");

  /* batched prediction: vmap(predict, in_axes=(None, 0)) */
  jx_fn *pf = jx_fn_new(predict_fn, 2, NULL);
  jx_fn *bp = jx_vmap(pf, (int[]){JX_NONE, 0}, 0);
  jx_t p = JX_CALL(bp, params, x);
  ARRAYS_CLOSE(p, seed_predict(params, x), 1e-12, "vmap(predict) vs predict on the batch");
  for (int i = 0; i < B; i++)
    ARRAYS_CLOSE(row(p, i), seed_predict(params, row(x, i)), 1e-12, "vmap(predict) row");

  jx_fn_free(bp), jx_fn_free(pf);
  jx_fn_free(perex_jit), jx_fn_free(jg), jx_fn_free(jit_perex), jx_fn_free(perex), jx_fn_free(g);
  jx_fn_free(loss_fn);
  jx_pool_pop();
}

/* ------------------------------------------------------------ out_axis */

/* x: [3] -> outer(x, w) + c: [3, 4] per example, plus an unmapped output */
static jx_t outer_fn(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0], w = a[1];
  jx_t o = jx_mul(jx_expand_dims(x, 1), jx_expand_dims(w, 0));
  return JX_TUPLE(jx_sin(o), jx_mul(w, jx_scalar(2.0)), jx_ones(JX_F64, JX_SHAPE(2, 3)));
}

static void test_out_axis(void) {
  jx_pool_push();
  enum { B = 5 };
  jx_t X = RND(B, 3), w = RND(4);
  jx_fn *f = jx_fn_new(outer_fn, 2, NULL);
  const int axes[3] = {0, 1, -1};
  for (int k = 0; k < 3; k++) {
    jx_fn *vf = jx_vmap(f, (int[]){0, JX_NONE}, axes[k]);
    jx_t r = JX_CALL(vf, X, w);
    CHECKF(jx_ok(r) && jx_len(r) == 3, "out_axis %d: %s", axes[k], jx_error(r));
    int ax2 = axes[k] < 0 ? axes[k] + 3 : axes[k]; /* where B lands in the rank-3 outputs */
    int ax1 = axes[k] < 0 ? axes[k] + 2 : axes[k]; /* ... and in the rank-2 one */
    jx_t o = jx_at(r, 0), c = jx_at(r, 1), ones = jx_at(r, 2);
    CHECKF(jx_ndim(o) == 3 && jx_shape(o)[ax2] == B, "out_axis %d: mapped output rank %d", axes[k],
           jx_ndim(o));
    /* the unmapped outputs are broadcast along the mapped axis */
    CHECKF(jx_ndim(c) == 2 && jx_shape(c)[ax1] == B, "out_axis %d: unmapped output not broadcast", axes[k]);
    CHECKF(jx_ndim(ones) == 3 && jx_shape(ones)[ax2] == B, "out_axis %d: constant output not broadcast",
           axes[k]);
    for (int i = 0; i < B; i++) {
      jx_t single = JX_CALL(f, row(X, i), w);
      ARRAYS_CLOSE(at_axis(o, i, ax2), jx_at(single, 0), 1e-15, "out_axis: mapped output");
      ARRAYS_CLOSE(at_axis(c, i, ax1), jx_at(single, 1), 0, "out_axis: unmapped output");
      ARRAYS_CLOSE(at_axis(ones, i, ax2), jx_at(single, 2), 0, "out_axis: unmapped constant output");
    }
    jx_fn_free(vf);
  }
  /* out_axis 2 is fine for the rank-3 outputs but out of range for the rank-2 one */
  jx_fn *v2 = jx_vmap(f, (int[]){0, JX_NONE}, 2);
  jx_t r = JX_CALL(v2, X, w);
  CHECKF(!jx_ok(r) && strstr(jx_error(r), "vmap") && strstr(jx_error(r), "out_axis"), "%s", jx_error(r));
  jx_fn_free(v2), jx_fn_free(f);
  jx_pool_pop();
}

/* a plain 2-D output per example, out_axis 1 and -1 */
static jx_t affine2d(const jx_t *a, void *u) { /* x: [3] -> [3, 2] */
  (void)u;
  jx_t x = a[0];
  return jx_stack(2, (jx_t[]){jx_tanh(x), jx_mul(x, x)}, 1);
}
static void test_out_axis_2d(void) {
  jx_pool_push();
  jx_t X = RND(6, 3);
  jx_fn *f = jx_fn_new(affine2d, 1, NULL);
  jx_fn *v0 = jx_vmap(f, NULL, 0), *v1 = jx_vmap(f, NULL, 1), *vm1 = jx_vmap(f, NULL, -1);
  jx_t r0 = JX_CALL(v0, X), r1 = JX_CALL(v1, X), rm1 = JX_CALL(vm1, X);
  char s[96];
  shape_str(r1, s, sizeof s);
  CHECKF(jx_ndim(r1) == 3 && jx_shape(r1)[0] == 3 && jx_shape(r1)[1] == 6 && jx_shape(r1)[2] == 2, "got %s",
         s);
  shape_str(rm1, s, sizeof s);
  CHECKF(jx_ndim(rm1) == 3 && jx_shape(rm1)[0] == 3 && jx_shape(rm1)[1] == 2 && jx_shape(rm1)[2] == 6,
         "got %s", s);
  ARRAYS_CLOSE(r1, jx_transpose(r0, (int[]){1, 0, 2}), 0, "out_axis 1 vs moveaxis");
  ARRAYS_CLOSE(rm1, jx_transpose(r0, (int[]){1, 2, 0}), 0, "out_axis -1 vs moveaxis");
  for (int i = 0; i < 6; i++) {
    jx_t single = JX_CALL(f, row(X, i));
    ARRAYS_CLOSE(at_axis(r1, i, 1), single, 0, "out_axis 1 vs loop");
    ARRAYS_CLOSE(at_axis(rm1, i, 2), single, 0, "out_axis -1 vs loop");
  }
  /* out of range out_axis is an error value naming vmap */
  jx_fn *v3 = jx_vmap(f, NULL, 3), *vm4 = jx_vmap(f, NULL, -4);
  jx_t e3 = JX_CALL(v3, X), em4 = JX_CALL(vm4, X);
  CHECKF(!jx_ok(e3) && strstr(jx_error(e3), "vmap") && strstr(jx_error(e3), "out_axis"), "%s", jx_error(e3));
  CHECKF(!jx_ok(em4) && strstr(jx_error(em4), "vmap"), "%s", jx_error(em4));
  jx_fn_free(vm4), jx_fn_free(v3);
  jx_fn_free(vm1), jx_fn_free(v1), jx_fn_free(v0), jx_fn_free(f);
  jx_pool_pop();
}

/* ---------------------------------------------------------- nested vmap */

static jx_t sin_dot(const jx_t *a, void *u) { /* v: [3] -> sum(sin(v) * v) */
  (void)u;
  return jx_sum(jx_mul(jx_sin(a[0]), a[0]));
}
static jx_t vdot(const jx_t *a, void *u) { /* a, b: [5] -> a . b */
  (void)u;
  return jx_sum(jx_mul(a[0], a[1]));
}

static void test_nested(void) {
  jx_pool_push();
  /* vmap(vmap(f)) over [3,4,5], all axes 0: f maps [5] -> scalar */
  jx_t X = RND(3, 4, 5);
  jx_fn *f = jx_fn_new(sin_dot, 1, NULL);
  jx_fn *in = jx_vmap(f, NULL, 0), *out = jx_vmap(in, NULL, 0);
  jx_t r = JX_CALL(out, X);
  CHECKF(jx_ok(r) && jx_ndim(r) == 2 && jx_shape(r)[0] == 3 && jx_shape(r)[1] == 4, "%s", jx_error(r));
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++)
      ARRAYS_CLOSE(row(row(r, i), j), JX_CALL(f, row(row(X, i), j)), 1e-14, "nested 0/0");

  /* outer maps axis 1 (size 4), inner maps axis 1 of the [3,5] slice (size 5),
   * leaving f a [3] vector: r[j, k] = f(X[:, j, k]) */
  jx_fn *in1 = jx_vmap(f, (int[]){1}, 0), *out1 = jx_vmap(in1, (int[]){1}, 0);
  r = JX_CALL(out1, X);
  CHECKF(jx_ok(r) && jx_ndim(r) == 2 && jx_shape(r)[0] == 4 && jx_shape(r)[1] == 5, "%s", jx_error(r));
  for (int j = 0; j < 4; j++)
    for (int k = 0; k < 5; k++)
      ARRAYS_CLOSE(row(row(r, j), k), JX_CALL(f, at_axis(at_axis(X, j, 1), k, 1)), 1e-14, "nested 1/1");

  /* and the same with out_axis 1 on the outer level: [5, 4] */
  jx_fn *out1t = jx_vmap(in1, (int[]){1}, 1);
  ARRAYS_CLOSE(JX_CALL(out1t, X), jx_transpose(r, NULL), 0, "nested with outer out_axis 1");

  /* a matrix product built from a dot: inner maps the columns of Y (axis 1)
   * with a unmapped, outer maps the rows of A with Y unmapped */
  jx_t A = RND(3, 5), Y = RND(5, 4);
  jx_fn *d = jx_fn_new(vdot, 2, NULL);
  jx_fn *mv = jx_vmap(d, (int[]){JX_NONE, 1}, 0);  /* (a[5], Y[5,4]) -> [4] */
  jx_fn *mm = jx_vmap(mv, (int[]){0, JX_NONE}, 0); /* (A[3,5], Y) -> [3,4] */
  r = JX_CALL(mm, A, Y);
  ARRAYS_CLOSE(r, jx_matmul(A, Y), 1e-14, "vmap(vmap(dot)) vs matmul");
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++)
      ARRAYS_CLOSE(row(row(r, i), j), JX_CALL(d, row(A, i), at_axis(Y, j, 1)), 1e-14,
                   "vmap(vmap(dot)) vs loop");
  /* both levels mapping both args, at different axes: Z[3,4,5], W[5,3,4]:
   * r[i, j] = Z[i, j, :] . W[:, i, j] */
  jx_t Z = RND(3, 4, 5), W = RND(5, 3, 4);
  jx_fn *ia = jx_vmap(d, (int[]){0, 1}, 0);  /* (Z_i[4,5], W_i[5,4]) -> [4] */
  jx_fn *oa = jx_vmap(ia, (int[]){0, 1}, 0); /* (Z[3,4,5], W[5,3,4]) -> [3,4] */
  r = JX_CALL(oa, Z, W);
  CHECKF(jx_ok(r) && jx_ndim(r) == 2 && jx_shape(r)[0] == 3 && jx_shape(r)[1] == 4, "%s", jx_error(r));
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++)
      ARRAYS_CLOSE(row(row(r, i), j), JX_CALL(d, row(row(Z, i), j), at_axis(at_axis(W, i, 1), j, 1)), 1e-14,
                   "nested with different axes per arg");
  /* three levels */
  jx_fn *in3 = jx_vmap(out, NULL, 0);
  jx_t X4 = RND(2, 3, 4, 5);
  r = JX_CALL(in3, X4);
  CHECKF(jx_ok(r) && jx_ndim(r) == 3, "%s", jx_error(r));
  ARRAYS_CLOSE(row(row(row(r, 1), 2), 3), JX_CALL(f, row(row(row(X4, 1), 2), 3)), 1e-14, "triple vmap");

  jx_fn_free(in3), jx_fn_free(oa), jx_fn_free(ia), jx_fn_free(mm), jx_fn_free(mv), jx_fn_free(d);
  jx_fn_free(out1t), jx_fn_free(out1), jx_fn_free(in1), jx_fn_free(out), jx_fn_free(in), jx_fn_free(f);
  jx_pool_pop();
}

/* ------------------------------------------------------- batched matmul */

static jx_t matmul_fn(const jx_t *a, void *u) {
  (void)u;
  return jx_matmul(a[0], a[1]);
}
static jx_t dot_fn(const jx_t *a, void *u) {
  (void)u;
  return jx_dot(a[0], a[1]);
}

static void test_batched_matmul(void) {
  jx_pool_push();
  enum { B = 4 };
  jx_t A = RND(B, 2, 3), Bm = RND(B, 3, 5), M = RND(3, 5), N = RND(5, 2);
  jx_body bodies[2] = {matmul_fn, dot_fn};
  for (int k = 0; k < 2; k++) {
    const char *name = k ? "vmap(dot)" : "vmap(matmul)";
    jx_fn *f = jx_fn_new(bodies[k], 2, NULL); /* matmul or dot */
    jx_fn *both = jx_vmap(f, NULL, 0);
    jx_fn *left = jx_vmap(f, (int[]){0, JX_NONE}, 0);
    jx_fn *right = jx_vmap(f, (int[]){JX_NONE, 0}, 0);
    jx_fn *right2 = jx_vmap(f, (int[]){JX_NONE, 2}, 0); /* rhs mapped at its last axis */
    jx_t r = JX_CALL(both, A, Bm);
    CHECKF(jx_ok(r), "%s: %s", name, jx_error(r));
    ARRAYS_CLOSE(r, jx_matmul(A, Bm), 1e-14, name);
    jx_t rl = JX_CALL(left, A, M), rr = JX_CALL(right, N, A);
    jx_t Bt = jx_transpose(Bm, (int[]){1, 2, 0}); /* [3, 5, B] */
    jx_t L = row(A, 0);                           /* [2, 3] */
    jx_t rr2 = JX_CALL(right2, L, Bt);
    jx_t loop[B], loopl[B], loopr[B];
    for (int i = 0; i < B; i++) {
      loop[i] = JX_CALL(f, row(A, i), row(Bm, i));
      loopl[i] = JX_CALL(f, row(A, i), M);
      loopr[i] = JX_CALL(f, N, row(A, i));
    }
    ARRAYS_CLOSE(r, stack0(B, loop), 1e-14, name);
    ARRAYS_CLOSE(rl, stack0(B, loopl), 1e-14, "batched matmul, right unmapped");
    ARRAYS_CLOSE(rr, stack0(B, loopr), 1e-14, "batched matmul, left unmapped");
    ARRAYS_CLOSE(rr2, jx_matmul(L, Bm), 1e-14, "batched matmul, rhs mapped at axis 2");
    jx_fn_free(right2), jx_fn_free(right), jx_fn_free(left), jx_fn_free(both), jx_fn_free(f);
  }
  /* matrix-vector: vmap over vectors */
  jx_fn *f = jx_fn_new(matmul_fn, 2, NULL);
  jx_fn *mv = jx_vmap(f, (int[]){JX_NONE, 0}, 0);
  jx_t V = RND(B, 5);
  ARRAYS_CLOSE(JX_CALL(mv, M, V), jx_transpose(jx_matmul(M, jx_transpose(V, NULL)), NULL), 1e-14,
               "vmap(matvec)");
  jx_fn_free(mv), jx_fn_free(f);
  jx_pool_pop();
}

/* ------------------------------------------------------- in_axes on trees */

/* (t = (p[3], q[2]), z scalar) -> sum(p) * q + z */
static jx_t tree_arg(const jx_t *a, void *u) {
  (void)u;
  jx_t p = jx_at(a[0], 0), q = jx_at(a[0], 1);
  return jx_add(jx_mul(jx_sum(jx_sin(p)), q), a[1]);
}
/* a nested tree argument returned as a tree */
static jx_t tree_io(const jx_t *a, void *u) {
  (void)u;
  jx_t t = a[0]; /* list(p, tuple(q, r)) */
  jx_t p = jx_at(t, 0), q = jx_at(jx_at(t, 1), 0), r = jx_at(jx_at(t, 1), 1);
  return JX_TUPLE(jx_mul(p, jx_sum(q)), jx_exp(r));
}

static void test_tree_in_axes(void) {
  jx_pool_push();
  enum { B = 6 };
  jx_t P = RND(3, B), Q = RND(2, B), z = RND(B);
  jx_t t = JX_TUPLE(P, Q);
  jx_fn *f = jx_fn_new(tree_arg, 2, NULL);
  jx_fn *vf = jx_vmap(f, (int[]){1, 0}, 0);
  jx_t r = JX_CALL(vf, t, z);
  CHECKF(jx_ok(r) && jx_ndim(r) == 2 && jx_shape(r)[0] == B && jx_shape(r)[1] == 2, "%s", jx_error(r));
  for (int i = 0; i < B; i++) {
    jx_t single = JX_CALL(f, JX_TUPLE(at_axis(P, i, 1), at_axis(Q, i, 1)), row(z, i));
    ARRAYS_CLOSE(row(r, i), single, 1e-14, "tuple arg mapped at axis 1");
  }
  /* -1 means the same thing here, for every leaf */
  jx_fn *vfm = jx_vmap(f, (int[]){-1, 0}, 0);
  ARRAYS_CLOSE(JX_CALL(vfm, t, z), r, 0, "tuple arg mapped at axis -1");
  /* z unmapped */
  jx_fn *vfn = jx_vmap(f, (int[]){1, JX_NONE}, 0);
  jx_t z0 = jx_scalar_of(JX_F64, 0.25);
  jx_t rn = JX_CALL(vfn, t, z0);
  for (int i = 0; i < B; i++)
    ARRAYS_CLOSE(row(rn, i), JX_CALL(f, JX_TUPLE(at_axis(P, i, 1), at_axis(Q, i, 1)), z0), 1e-14,
                 "tuple arg mapped, scalar unmapped");
  /* leaves of one tree argument must agree on the mapped size */
  jx_t bad = JX_CALL(vf, JX_TUPLE(P, RND(2, B + 1)), z);
  CHECKF(!jx_ok(bad) && strstr(jx_error(bad), "vmap"), "mismatched leaves: %s", jx_error(bad));

  /* nested trees in and out, in_axes 1 for every leaf; different leaf ranks */
  jx_t Pn = RND(4, B), Qn = RND(2, B, 3), Rn = RND(5, B);
  jx_fn *g = jx_fn_new(tree_io, 1, NULL);
  jx_fn *vg = jx_vmap(g, (int[]){1}, 0);
  jx_t tn = JX_LIST(Pn, JX_TUPLE(Qn, Rn));
  jx_t ro = JX_CALL(vg, tn);
  CHECKF(jx_ok(ro) && jx_len(ro) == 2, "%s", jx_error(ro));
  for (int i = 0; i < B; i++) {
    jx_t single = JX_CALL(g, JX_LIST(at_axis(Pn, i, 1), JX_TUPLE(at_axis(Qn, i, 1), at_axis(Rn, i, 1))));
    tree_matches_example(ro, single, i, B, 1e-14, "nested tree arg at axis 1");
  }
  jx_fn_free(vg), jx_fn_free(g), jx_fn_free(vfn), jx_fn_free(vfm), jx_fn_free(vf), jx_fn_free(f);
  jx_pool_pop();
}

/* ------------------------------------------------------- negative in_axes */

static jx_t rowsum_scale(const jx_t *a, void *u) { /* x: [3] or [3,2], s: scalar */
  (void)u;
  return jx_mul(jx_tanh(a[0]), a[1]);
}

static void test_negative_axes(void) {
  jx_pool_push();
  enum { B = 5 };
  jx_t X = RND(3, B), s = RND(B);
  jx_fn *f = jx_fn_new(rowsum_scale, 2, NULL);
  jx_fn *vneg = jx_vmap(f, (int[]){-1, -1}, 0), *vpos = jx_vmap(f, (int[]){1, 0}, 0);
  jx_t rn = JX_CALL(vneg, X, s), rp = JX_CALL(vpos, X, s);
  CHECKF(jx_ok(rn) && jx_ndim(rn) == 2 && jx_shape(rn)[0] == B && jx_shape(rn)[1] == 3, "%s", jx_error(rn));
  ARRAYS_CLOSE(rn, rp, 0, "in_axes -1 == in_axes 1 on a 2-D arg");
  for (int i = 0; i < B; i++)
    ARRAYS_CLOSE(row(rn, i), JX_CALL(f, at_axis(X, i, 1), row(s, i)), 1e-15, "in_axes -1");
  /* -2 on a 3-D argument maps the middle axis */
  jx_t Y = RND(3, B, 2);
  jx_fn *vm2 = jx_vmap(f, (int[]){-2, JX_NONE}, -1);
  jx_t s0 = jx_scalar_of(JX_F64, 1.5);
  jx_t r = JX_CALL(vm2, Y, s0);
  CHECKF(jx_ok(r) && jx_ndim(r) == 3 && jx_shape(r)[2] == B, "%s", jx_error(r));
  for (int i = 0; i < B; i++)
    ARRAYS_CLOSE(at_axis(r, i, 2), JX_CALL(f, at_axis(Y, i, 1), s0), 1e-15, "in_axes -2, out_axis -1");
  /* -3 on the 3-D argument == axis 0 */
  jx_fn *vm3 = jx_vmap(f, (int[]){-3, JX_NONE}, 0), *v0 = jx_vmap(f, (int[]){0, JX_NONE}, 0);
  ARRAYS_CLOSE(JX_CALL(vm3, Y, s0), JX_CALL(v0, Y, s0), 0, "in_axes -3 == 0");
  jx_fn_free(v0), jx_fn_free(vm3), jx_fn_free(vm2), jx_fn_free(vpos), jx_fn_free(vneg), jx_fn_free(f);
  jx_pool_pop();
}

/* ------------------------------------------------- grad through vmap */

static jx_t tanh_dot(const jx_t *a, void *u) { /* (r[4], w[4]) -> tanh(r . w) */
  (void)u;
  return jx_tanh(jx_sum(jx_mul(a[0], a[1])));
}
/* f(X, w) = sum(vmap(tanh_dot, (0, None))(X, w)); u is the vmapped fn */
static jx_t sum_of_vmap(const jx_t *a, void *u) { return jx_sum(JX_CALL((jx_fn *)u, a[0], a[1])); }

static void test_grad_of_vmap(void) {
  jx_pool_push();
  enum { B = 6, D = 4 };
  jx_t X = RND(B, D), w = RND(D);
  jx_fn *g = jx_fn_new(tanh_dot, 2, NULL);
  jx_fn *vg = jx_vmap(g, (int[]){0, JX_NONE}, 0);
  jx_fn *f = jx_fn_new(sum_of_vmap, 2, vg);
  jx_fn *dfx = jx_grad(f, 0), *dfw = jx_grad(f, 1);
  jx_t gx = JX_CALL(dfx, X, w), gw = JX_CALL(dfw, X, w);
  CHECKF(jx_ok(gx) && jx_ok(gw), "%s %s", jx_error(gx), jx_error(gw));
  /* analytic: t_i = tanh(X_i . w); dX_i = (1 - t_i^2) w; dw = sum_i (1 - t_i^2) X_i */
  double xv[B * D], wv[D], wantx[B * D], wantw[D] = {0};
  jx_read(X, JX_F64, xv, sizeof xv), jx_read(w, JX_F64, wv, sizeof wv);
  for (int i = 0; i < B; i++) {
    double s = 0;
    for (int j = 0; j < D; j++) s += xv[i * D + j] * wv[j];
    double dt = 1 - tanh(s) * tanh(s);
    for (int j = 0; j < D; j++) wantx[i * D + j] = dt * wv[j], wantw[j] += dt * xv[i * D + j];
  }
  ARRAYS_CLOSE(gx, jx_array(JX_F64, JX_SHAPE(B, D), wantx), 1e-13, "grad wrt the mapped arg through vmap");
  ARRAYS_CLOSE(gw, jx_array(JX_F64, JX_SHAPE(D), wantw), 1e-13, "grad wrt the unmapped arg through vmap");
  /* jit(grad(f)) and grad(jit(f)) agree */
  jx_fn *j1 = jx_jit(dfw), *jf = jx_jit(f), *j2 = jx_grad(jf, 1);
  ARRAYS_CLOSE(JX_CALL(j1, X, w), gw, 1e-14, "jit(grad(sum(vmap)))");
  ARRAYS_CLOSE(JX_CALL(j2, X, w), gw, 1e-14, "grad(jit(sum(vmap)))");
  /* the second derivative through vmap: hessian wrt w vs finite differences of the gradient */
  jx_fn *hw = jx_hessian(f, 1);
  jx_t H = JX_CALL(hw, X, w);
  CHECKF(jx_ok(H) && jx_ndim(H) == 2 && jx_shape(H)[0] == D && jx_shape(H)[1] == D, "%s", jx_error(H));
  double h[D * D];
  if (jx_read(H, JX_F64, h, sizeof h) == 0) {
    double maxerr = 0;
    for (int j = 0; j < D; j++) {
      double wp[D], wm[D], gp[D], gm[D];
      for (int k = 0; k < D; k++) wp[k] = wm[k] = wv[k];
      wp[j] += 1e-6, wm[j] -= 1e-6;
      jx_read(JX_CALL(dfw, X, jx_array(JX_F64, JX_SHAPE(D), wp)), JX_F64, gp, sizeof gp);
      jx_read(JX_CALL(dfw, X, jx_array(JX_F64, JX_SHAPE(D), wm)), JX_F64, gm, sizeof gm);
      for (int k = 0; k < D; k++) maxerr = fmax(maxerr, fabs((gp[k] - gm[k]) / 2e-6 - h[k * D + j]));
    }
    CHECKF(maxerr < 1e-7, "hessian through vmap vs finite differences: %g", maxerr);
  }
  jx_fn_free(hw), jx_fn_free(j2), jx_fn_free(jf), jx_fn_free(j1);
  jx_fn_free(dfw), jx_fn_free(dfx), jx_fn_free(f), jx_fn_free(vg), jx_fn_free(g);
  jx_pool_pop();
}

/* --------------------------------------- vmap of jacfwd/jacrev/hessian */

static jx_t vec_g(const jx_t *a, void *u) { /* R^3 -> R^2: (sin(x0) * (x1 + x2), exp(x2) * x0) */
  (void)u;
  jx_t x = a[0];
  jx_t x0 = jx_take(x, jx_scalar_int(0), 0), x1 = jx_take(x, jx_scalar_int(1), 0),
       x2 = jx_take(x, jx_scalar_int(2), 0);
  return jx_stack(2, (jx_t[]){jx_mul(jx_sin(x0), jx_add(x1, x2)), jx_mul(jx_exp(x2), x0)}, 0);
}
static jx_t scal_h(const jx_t *a, void *u) { /* x^T A x + sum(exp(x)) */
  jx_t A = u, x = a[0];
  return jx_add(jx_dot(x, jx_dot(A, x)), jx_sum(jx_exp(x)));
}

static void test_vmap_of_jacobians(void) {
  jx_pool_push();
  enum { B = 5 };
  jx_t X = RND(B, 3);
  jx_fn *g = jx_fn_new(vec_g, 1, NULL);
  jx_fn *jf = jx_jacfwd(g, 0), *jr = jx_jacrev(g, 0);
  jx_fn *vjf = jx_vmap(jf, NULL, 0), *vjr = jx_vmap(jr, NULL, 0);
  jx_t a = JX_CALL(vjf, X), b = JX_CALL(vjr, X);
  CHECKF(jx_ok(a) && jx_ndim(a) == 3 && jx_shape(a)[0] == B && jx_shape(a)[1] == 2 && jx_shape(a)[2] == 3,
         "%s", jx_error(a));
  for (int i = 0; i < B; i++) {
    jx_t J = JX_CALL(jf, row(X, i));
    ARRAYS_CLOSE(row(a, i), J, 1e-14, "vmap(jacfwd) vs loop");
    ARRAYS_CLOSE(row(b, i), J, 1e-14, "vmap(jacrev) vs loop");
  }
  /* vmap(jit(jacrev)) and jit(vmap(jacfwd)) */
  jx_fn *jjr = jx_jit(jr), *vjjr = jx_vmap(jjr, NULL, 0), *jvjf = jx_jit(vjf);
  ARRAYS_CLOSE(JX_CALL(vjjr, X), a, 1e-14, "vmap(jit(jacrev))");
  ARRAYS_CLOSE(JX_CALL(jvjf, X), a, 1e-14, "jit(vmap(jacfwd))");
  /* mapped along axis 1 with out_axis -1: [2, 3, B] */
  jx_fn *vjr1 = jx_vmap(jr, (int[]){1}, -1);
  ARRAYS_CLOSE(JX_CALL(vjr1, jx_transpose(X, NULL)), jx_transpose(a, (int[]){1, 2, 0}), 1e-14,
               "vmap(jacrev, in_axes 1, out_axis -1)");

  double Av[9] = {1, 2, 3, -1, 0.5, 4, 2, -3, 1};
  jx_t A = jx_array(JX_F64, JX_SHAPE(3, 3), Av);
  jx_fn *h = jx_fn_new(scal_h, 1, A);
  jx_fn *H = jx_hessian(h, 0), *vH = jx_vmap(H, NULL, 0);
  jx_t hs = JX_CALL(vH, X);
  CHECKF(jx_ok(hs) && jx_ndim(hs) == 3 && jx_shape(hs)[0] == B, "%s", jx_error(hs));
  double xv[B * 3];
  jx_read(X, JX_F64, xv, sizeof xv);
  for (int i = 0; i < B; i++) {
    ARRAYS_CLOSE(row(hs, i), JX_CALL(H, row(X, i)), 1e-14, "vmap(hessian) vs loop");
    double want[9];
    for (int r = 0; r < 3; r++)
      for (int c = 0; c < 3; c++)
        want[r * 3 + c] = Av[r * 3 + c] + Av[c * 3 + r] + (r == c ? exp(xv[i * 3 + r]) : 0);
    ARRAYS_CLOSE(row(hs, i), jx_array(JX_F64, JX_SHAPE(3, 3), want), 1e-13, "vmap(hessian) vs analytic");
  }
  /* vmap(grad) == rows of jacrev-of-sum pattern: vmap(grad(h)) vs loop */
  jx_fn *gh = jx_grad(h, 0), *vgh = jx_vmap(gh, NULL, 0);
  jx_t gs = JX_CALL(vgh, X);
  for (int i = 0; i < B; i++) ARRAYS_CLOSE(row(gs, i), JX_CALL(gh, row(X, i)), 1e-14, "vmap(grad) vs loop");

  jx_fn_free(vgh), jx_fn_free(gh), jx_fn_free(vH), jx_fn_free(H), jx_fn_free(h);
  jx_fn_free(vjr1), jx_fn_free(jvjf), jx_fn_free(vjjr), jx_fn_free(jjr);
  jx_fn_free(vjr), jx_fn_free(vjf), jx_fn_free(jr), jx_fn_free(jf), jx_fn_free(g);
  jx_pool_pop();
}

/* ---------------------------------------------------------------- errors */

static jx_t add2(const jx_t *a, void *u) {
  (void)u;
  return jx_add(a[0], a[1]);
}

#define ERR_HAS(r, ...)                                                                                      \
  do {                                                                                                       \
    const char *needles_[] = {__VA_ARGS__};                                                                  \
    bool ok_ = !jx_ok(r) && jx_error(r);                                                                     \
    for (size_t k_ = 0; ok_ && k_ < sizeof needles_ / sizeof *needles_; k_++)                                \
      ok_ = strstr(jx_error(r), needles_[k_]) != NULL;                                                       \
    CHECKF(ok_, "error message %s lacks one of the expected words", jx_error(r) ? jx_error(r) : "(none)");   \
  } while (0)

static void test_errors(void) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(add2, 2, NULL);
  jx_t x3 = RND(3, 2), x4 = RND(4, 2);

  /* inconsistent mapped sizes between two args: names vmap, both sizes, both args */
  jx_fn *v = jx_vmap(f, NULL, 0);
  jx_t r = JX_CALL(v, x3, x4);
  ERR_HAS(r, "vmap", "3", "4", "argument 0", "argument 1");
  jx_fn *jv = jx_jit(v); /* same inside jit */
  r = JX_CALL(jv, x3, x4);
  ERR_HAS(r, "vmap", "3", "4");
  /* inconsistent sizes only at the mapped axes: [3,4] at axis 1 vs [4] at 0 is fine */
  jx_fn *v10 = jx_vmap(f, (int[]){1, 0}, 0);
  r = JX_CALL(v10, RND(3, 4), RND(4, 3));
  CHECKF(jx_ok(r) && jx_shape(r)[0] == 4, "%s", jx_error(r));
  r = JX_CALL(v10, RND(3, 4), RND(3, 3));
  ERR_HAS(r, "vmap", "4", "3");

  /* in_axes out of range, positive and negative */
  jx_fn *v2 = jx_vmap(f, (int[]){2, 0}, 0);
  r = JX_CALL(v2, x3, x3);
  ERR_HAS(r, "vmap", "in_axes", "2", "argument 0", "3,2");
  jx_fn *vm3 = jx_vmap(f, (int[]){0, -3}, 0);
  r = JX_CALL(vm3, x3, x3);
  ERR_HAS(r, "vmap", "in_axes", "-3", "argument 1");

  /* mapping a 0-d argument */
  jx_t s = jx_scalar_of(JX_F64, 1.0);
  r = JX_CALL(v, x3, s);
  ERR_HAS(r, "vmap", "argument 1", "0-d");
  /* ... which is fine when it is unmapped */
  jx_fn *vn = jx_vmap(f, (int[]){0, JX_NONE}, 0);
  r = JX_CALL(vn, x3, s);
  CHECKF(jx_ok(r), "%s", jx_error(r));

  /* no mapped argument at all */
  jx_fn *none = jx_vmap(f, (int[]){JX_NONE, JX_NONE}, 0);
  r = JX_CALL(none, x3, x3);
  ERR_HAS(r, "vmap", "mapped");

  /* errors surface through composition: grad(sum(vmap)) and nested vmap */
  jx_fn *vv = jx_vmap(v, NULL, 0);
  r = JX_CALL(vv, RND(2, 3, 2), RND(2, 4, 2));
  ERR_HAS(r, "vmap", "3", "4");
  r = JX_CALL(vv, RND(2, 3, 2), RND(5, 3, 2));
  ERR_HAS(r, "vmap", "2", "5");
  jx_fn *td = jx_fn_new(tanh_dot, 2, NULL);
  jx_fn *vmap_g = jx_vmap(td, NULL, 0);
  jx_fn *sf = jx_fn_new(sum_of_vmap, 2, vmap_g);
  jx_fn *gsf = jx_grad(sf, 0);
  r = JX_CALL(gsf, RND(3, 4), RND(5, 4));
  ERR_HAS(r, "vmap", "3", "5");

  /* an error value given as an argument comes back unchanged */
  jx_t e = jx_error_new("upstream failure");
  CHECK(JX_CALL(v, e, x3) == e);

  jx_fn_free(gsf), jx_fn_free(sf), jx_fn_free(vmap_g), jx_fn_free(td), jx_fn_free(vv), jx_fn_free(none),
      jx_fn_free(vn);
  jx_fn_free(vm3), jx_fn_free(v2), jx_fn_free(v10), jx_fn_free(jv), jx_fn_free(v), jx_fn_free(f);
  jx_pool_pop();
}

int main(void) {
  test_per_example_grads();
  test_out_axis();
  test_out_axis_2d();
  test_nested();
  test_batched_matmul();
  test_tree_in_axes();
  test_negative_axes();
  test_grad_of_vmap();
  test_vmap_of_jacobians();
  test_errors();
  return check_report("test_vmap");
}
