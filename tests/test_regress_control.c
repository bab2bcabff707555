/* Regressions of issue #14: control flow and the width of equations.
 *   - grad(vmap(cond)) and grad(vmap(switch)) with a predicate per lane:
 *     no NaN from the branch a lane did not take (JAX's guarded operands,
 *     jax #1052), for batched and unbatched operands;
 *   - grad(abs) at 0 and -0 is 1 (JAX's select(x >= 0, g, -g)), jvp too;
 *   - grad with respect to operands/carries of cond, switch, scan,
 *     fori_loop and while (jvp) that the body never reads: zeros of their
 *     shape, no use after free (run it under ASan);
 *   - equations of any width: jit of a concatenate of 1,000 arrays, of a
 *     sum of 1,000 arguments, grad of it, a tree argument of 1,000 leaves,
 *     compiled and interpreted (this binary run again with
 *     JX_CC=/nonexistent: `test_regress_control --wide`);
 *   - a 3-way switch whose branches read 8, 32 and 100 captured constants,
 *     eagerly and under grad, vmap and jit;
 *   - no limit on nesting: a switch of 100 (1,000 interpreted) branches,
 *     jit nested 100 deep. */
#include "api/trace_fn.h"
#include "check.h"
#include "ir/jaxpr.h"

#include <jx.h>

#include <limits.h>

#define F64(v) jx_scalar_of(JX_F64, (v))
static double item(jx_t x) { return jx_item(x); }

/* every element of r (f64) against want[0..n) */
static void check_values(jx_t r, int n, const double *want, double rtol, const char *what) {
  double got[1024];
  CHECKF(jx_ok(r) && jx_size(r) == n && n <= 1024, "%s: %s (size %lld, want %d)", what,
         jx_ok(r) ? "wrong size" : jx_error(r), (long long)(jx_ok(r) ? jx_size(r) : -1), n);
  if (!jx_ok(r) || jx_size(r) != n || n > 1024) return;
  CHECK(jx_read(r, JX_F64, got, sizeof got) == 0);
  for (int i = 0; i < n; i++)
    CHECKF(check_close(got[i], want[i], rtol, 0), "%s[%d]: %.17g, want %.17g", what, i, got[i], want[i]);
}

/* ------------------------------------- 1. grad(vmap(cond)), grad(vmap(switch)) */
static jx_t br_sqrt(const jx_t *a, void *u) {
  (void)u;
  return jx_sqrt(a[0]);
}
static jx_t br_neg(const jx_t *a, void *u) {
  (void)u;
  return jx_neg(a[0]);
}
static jx_t br_log(const jx_t *a, void *u) {
  (void)u;
  return jx_log(a[0]);
}
static jx_t cond_sqrt_neg(const jx_t *a, void *u) { /* x > 0 ? sqrt(x) : -x */
  (void)u;
  jx_fn *t = jx_fn_new(br_sqrt, 1, NULL), *f = jx_fn_new(br_neg, 1, NULL);
  jx_t r = jx_cond(jx_gt(a[0], jx_scalar(0)), t, f, 1, a);
  jx_fn_free(t), jx_fn_free(f);
  return r;
}
/* x > 0 ? sqrt(x * w) : -(x * w), with w shared by the lanes */
static jx_t br_sqrt_xw(const jx_t *a, void *u) {
  (void)u;
  return jx_sqrt(jx_mul(a[0], a[1]));
}
static jx_t br_neg_xw(const jx_t *a, void *u) {
  (void)u;
  return jx_neg(jx_mul(a[0], a[1]));
}
static jx_t cond_xw(const jx_t *a, void *u) {
  (void)u;
  jx_fn *t = jx_fn_new(br_sqrt_xw, 2, NULL), *f = jx_fn_new(br_neg_xw, 2, NULL);
  jx_t r = jx_cond(jx_gt(a[0], jx_scalar(0)), t, f, 2, a);
  jx_fn_free(t), jx_fn_free(f);
  return r;
}
static jx_t switch_3(const jx_t *a, void *u) { /* [sqrt, neg, log][i](x) */
  (void)u;
  jx_fn *br[3] = {jx_fn_new(br_sqrt, 1, NULL), jx_fn_new(br_neg, 1, NULL), jx_fn_new(br_log, 1, NULL)};
  jx_t r = jx_switch(a[0], 3, br, 1, a + 1);
  for (int i = 0; i < 3; i++) jx_fn_free(br[i]);
  return r;
}

/* sum(vmap(f, axes)(args)), optionally with the vmapped function jitted */
typedef struct {
  jx_body body;
  int nargs;
  const int *axes;
  bool jit;
} vsum;
static jx_t vmap_sum(const jx_t *a, void *u) {
  const vsum *c = u;
  jx_fn *f = jx_fn_new(c->body, c->nargs, NULL), *v = jx_vmap(f, c->axes, 0), *j = c->jit ? jx_jit(v) : NULL;
  jx_t r = jx_sum(jx_call(j ? j : v, a));
  jx_fn_free(j), jx_fn_free(v), jx_fn_free(f);
  return r;
}

/* grad of f's argnum, plain, under jit, and of the jitted vmap */
static void check_grads(vsum c, int argnum, const jx_t *args, int n, const double *want, const char *what) {
  char name[160];
  for (int mode = 0; mode < 3; mode++) {
    c.jit = mode == 2;
    jx_fn *f = jx_fn_new(vmap_sum, c.nargs, &c), *g = jx_grad(f, argnum), *jg = mode == 1 ? jx_jit(g) : NULL;
    snprintf(name, sizeof name, "%s (%s)", what,
             (const char *[]){"grad", "jit(grad)", "grad(jit(vmap))"}[mode]);
    check_values(jx_call(jg ? jg : g, args), n, want, 1e-15, name);
    jx_fn_free(jg), jx_fn_free(g), jx_fn_free(f);
  }
}

static void test_vmap_cond_grad(void) {
  jx_pool_push();
  jx_t xs = jx_array(JX_F64, JX_SHAPE(2), (double[]){-1, 4});
  /* the primal is unchanged */
  jx_fn *f = jx_fn_new(cond_sqrt_neg, 1, NULL), *vf = jx_vmap(f, (int[]){0}, 0);
  check_values(JX_CALL(vf, xs), 2, (double[]){1, 2}, 0, "vmap(cond)");
  jx_fn *g = jx_grad(f, 0), *vg = jx_vmap(g, (int[]){0}, 0);
  check_values(JX_CALL(vg, xs), 2, (double[]){-1, 0.25}, 0, "vmap(grad(cond))");
  jx_fn_free(vg), jx_fn_free(g), jx_fn_free(vf), jx_fn_free(f);
  check_grads((vsum){cond_sqrt_neg, 1, (int[]){0}, false}, 0, &xs, 2, (double[]){-1, 0.25},
              "grad(vmap(cond))");
  /* an operand shared by the lanes (unbatched): d/dw = -x (lane 0) + x / (2 sqrt(x w)) (lane 1) */
  jx_t xw[2] = {xs, F64(1)};
  vsum c = {cond_xw, 2, (int[]){0, JX_NONE}, false};
  check_grads(c, 1, xw, 1, (double[]){2}, "grad(vmap(cond)) wrt an unbatched operand");
  check_grads(c, 0, xw, 2, (double[]){-1, 0.25}, "grad(vmap(cond)) wrt x beside an unbatched operand");
  /* switch with an index per lane: sqrt(4), -(-1), log(2) */
  jx_t ix[2] = {jx_array(JX_I32, JX_SHAPE(3), (int32_t[]){0, 1, 2}),
                jx_array(JX_F64, JX_SHAPE(3), (double[]){4, -1, 2})};
  vsum s = {switch_3, 2, (int[]){0, 0}, false};
  check_grads(s, 1, ix, 3, (double[]){0.25, -1, 0.5}, "grad(vmap(switch))");
  /* the index batched, x shared: d/dx of sqrt(x) + -x + log(x) at x = 4 */
  jx_t ix4[2] = {ix[0], F64(4)};
  s.axes = (int[]){0, JX_NONE};
  check_grads(s, 1, ix4, 1, (double[]){0.25 - 1 + 0.25}, "grad(vmap(switch)) wrt an unbatched operand");
  jx_pool_pop();
}

/* ----------------------------------------------------- 2. grad(abs) at 0 */
static jx_t abs_fn(const jx_t *a, void *u) {
  (void)u;
  return jx_abs(a[0]);
}

static void test_abs_grad(void) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(abs_fn, 1, NULL), *g = jx_grad(f, 0), *jg = jx_jit(g), *vg = jx_vmap(g, (int[]){0}, 0);
  const double x[5] = {0.0, -0.0, 2.5, -3.0, 1e-300}, want[5] = {1, 1, 1, -1, 1};
  for (int d = 0; d < 2; d++) {
    jx_dtype dt = d ? JX_F32 : JX_F64;
    for (int i = 0; i < 5; i++) {
      jx_t xi = jx_scalar_of(dt, x[i]);
      CHECKF(item(JX_CALL(g, xi)) == want[i], "grad(abs)(%g) %s: %g", x[i], d ? "f32" : "f64",
             item(JX_CALL(g, xi)));
      CHECKF(item(JX_CALL(jg, xi)) == want[i], "jit(grad(abs))(%g): %g", x[i], item(JX_CALL(jg, xi)));
      jx_t r = jx_jvp(f, &xi, (jx_t[]){jx_scalar_of(dt, 2.0)});
      CHECKF(jx_ok(r) && item(jx_at(r, 1)) == 2 * want[i], "jvp(abs)(%g; 2): %g", x[i], item(jx_at(r, 1)));
    }
  }
  check_values(JX_CALL(vg, jx_array(JX_F64, JX_SHAPE(5), x)), 5, want, 0, "vmap(grad(abs))");
  jx_fn_free(vg), jx_fn_free(jg), jx_fn_free(g), jx_fn_free(f);
  jx_pool_pop();
}

/* ------------------------------ 3. operands and carries nobody reads */
static jx_t br_two(const jx_t *a, void *u) {
  (void)u, (void)a;
  return F64(2);
}
static jx_t br_three(const jx_t *a, void *u) {
  (void)u, (void)a;
  return F64(3);
}
static jx_t br_y2(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(a[1], F64(2));
}
static jx_t br_y3(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(a[1], F64(3));
}
/* u: 0 branches read nothing, 1 they read only y (a[1]) */
static jx_t cond_unread(const jx_t *a, void *u) {
  bool read_y = u != NULL;
  jx_fn *t = jx_fn_new(read_y ? br_y2 : br_two, 2, NULL), *f = jx_fn_new(read_y ? br_y3 : br_three, 2, NULL);
  jx_t r = jx_cond(jx_gt(jx_sum(a[0]), jx_scalar(0)), t, f, 2, a);
  jx_fn_free(t), jx_fn_free(f);
  return r;
}
static jx_t switch_unread(const jx_t *a, void *u) {
  bool read_y = u != NULL;
  jx_fn *br[3] = {jx_fn_new(read_y ? br_y2 : br_two, 2, NULL), jx_fn_new(read_y ? br_y3 : br_three, 2, NULL),
                  jx_fn_new(read_y ? br_y2 : br_two, 2, NULL)};
  jx_t r = jx_switch(jx_astype(jx_sum(a[0]), JX_I32), 3, br, 2, a);
  for (int i = 0; i < 3; i++) jx_fn_free(br[i]);
  return r;
}
/* scan over xs: carry (a, b) -> (a * 2, 1.5): b and the xs are never read */
static jx_t scan_unread_step(const jx_t *a, void *u) {
  (void)u;
  jx_t c = a[0];
  return JX_TUPLE(JX_TUPLE(jx_mul(jx_at(c, 0), F64(2)), F64(1.5)), F64(0));
}
static jx_t scan_unread(const jx_t *a, void *u) { /* args: a, b, xs */
  (void)u;
  jx_fn *s = jx_fn_new(scan_unread_step, 2, NULL);
  jx_t r = jx_scan(s, JX_TUPLE(a[0], a[1]), a[2]);
  jx_fn_free(s);
  jx_t c = jx_at(r, 0);
  return jx_add(jx_add(jx_at(c, 0), jx_at(c, 1)), jx_sum(jx_at(r, 1)));
}
/* fori_loop: carry (a, b) -> (a * 3, 7): b never read */
static jx_t fori_unread_body(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_mul(jx_at(a[1], 0), F64(3)), F64(7));
}
static jx_t fori_unread(const jx_t *a, void *u) {
  (void)u;
  jx_fn *b = jx_fn_new(fori_unread_body, 2, NULL);
  jx_t r = jx_fori_loop(0, 2, b, JX_TUPLE(a[0], a[1]));
  jx_fn_free(b);
  return jx_add(jx_at(r, 0), jx_at(r, 1));
}
/* while i < 3: (i + 1, a * 2, 7): b never read (forward mode only) */
static jx_t w_cond(const jx_t *a, void *u) {
  (void)u;
  return jx_lt(jx_at(a[0], 0), jx_scalar_int(3));
}
static jx_t w_body(const jx_t *a, void *u) {
  (void)u;
  jx_t c = a[0];
  return JX_TUPLE(jx_add(jx_at(c, 0), jx_scalar_int(1)), jx_mul(jx_at(c, 1), F64(2)), F64(7));
}
static jx_t while_unread(const jx_t *a, void *u) {
  (void)u;
  jx_fn *c = jx_fn_new(w_cond, 1, NULL), *b = jx_fn_new(w_body, 1, NULL);
  jx_t r = jx_while_loop(c, b, JX_TUPLE(jx_scalar_of(JX_I32, 0), a[0], a[1]));
  jx_fn_free(c), jx_fn_free(b);
  return jx_add(jx_at(r, 1), jx_at(r, 2));
}

/* grad of f wrt argnum, plain and jitted, equals want (n values) */
static void check_grad_of(jx_body body, int nargs, void *u, int argnum, const jx_t *args, int n,
                          const double *want, const char *what) {
  jx_fn *f = jx_fn_new(body, nargs, u), *g = jx_grad(f, argnum), *jg = jx_jit(g), *jf = jx_jit(f);
  jx_fn *gj = jx_grad(jf, argnum);
  char name[160];
  snprintf(name, sizeof name, "%s: grad wrt %d", what, argnum);
  check_values(jx_call(g, args), n, want, 1e-15, name);
  snprintf(name, sizeof name, "%s: jit(grad) wrt %d", what, argnum);
  check_values(jx_call(jg, args), n, want, 1e-15, name);
  snprintf(name, sizeof name, "%s: grad(jit) wrt %d", what, argnum);
  check_values(jx_call(gj, args), n, want, 1e-15, name);
  jx_fn_free(gj), jx_fn_free(jf), jx_fn_free(jg), jx_fn_free(g), jx_fn_free(f);
}

static void test_unread_operands(void) {
  jx_pool_push();
  const double z3[3] = {0, 0, 0};
  jx_t x = jx_array(JX_F64, JX_SHAPE(3), (double[]){0.5, 0.25, 1}), args[2] = {x, F64(5)};
  int *read_y = (int[]){1};
  check_grad_of(cond_unread, 2, NULL, 0, args, 3, z3, "cond, no branch reads x");
  check_grad_of(cond_unread, 2, NULL, 1, args, 1, z3, "cond, no branch reads y");
  check_grad_of(cond_unread, 2, read_y, 0, args, 3, z3, "cond, branches read only y");
  check_grad_of(cond_unread, 2, read_y, 1, args, 1, (double[]){2}, "cond, branches read only y");
  check_grad_of(switch_unread, 2, NULL, 0, args, 3, z3, "switch, no branch reads x");
  check_grad_of(switch_unread, 2, NULL, 1, args, 1, z3, "switch, no branch reads y");
  check_grad_of(switch_unread, 2, read_y, 1, args, 1, (double[]){3}, "switch, branches read only y");
  /* scan: a_final = a * 2^4, b_final = 1.5, ys = 0 */
  jx_t sargs[3] = {F64(1), F64(9), jx_ones(JX_F64, JX_SHAPE(4, 2))};
  check_grad_of(scan_unread, 3, NULL, 0, sargs, 1, (double[]){16}, "scan, read carry");
  check_grad_of(scan_unread, 3, NULL, 1, sargs, 1, z3, "scan, unread carry");
  check_grad_of(scan_unread, 3, NULL, 2, sargs, 8, (double[8]){0}, "scan, unread xs");
  jx_t fargs[2] = {F64(1), F64(2)};
  check_grad_of(fori_unread, 2, NULL, 0, fargs, 1, (double[]){9}, "fori_loop, read carry");
  check_grad_of(fori_unread, 2, NULL, 1, fargs, 1, z3, "fori_loop, unread carry");
  /* while: forward mode */
  jx_fn *w = jx_fn_new(while_unread, 2, NULL), *jw = jx_jit(w);
  for (int j = 0; j < 2; j++) {
    jx_t r = jx_jvp(j ? jw : w, fargs, (jx_t[]){F64(0), F64(1)});
    CHECKF(jx_ok(r) && item(jx_at(r, 0)) == 15 && item(jx_at(r, 1)) == 0,
           "jvp(while) wrt an unread carry: %s", jx_error(r));
    r = jx_jvp(j ? jw : w, fargs, (jx_t[]){F64(1), F64(0)});
    CHECKF(jx_ok(r) && item(jx_at(r, 1)) == 8, "jvp(while) wrt a read carry: %s", jx_error(r));
    jx_fn *jf = jx_jacfwd(j ? jw : w, 1);
    CHECKF(item(JX_CALL(jf, fargs[0], fargs[1])) == 0, "jacfwd(while) wrt an unread carry");
    jx_fn_free(jf);
  }
  jx_fn_free(jw), jx_fn_free(w);
  jx_pool_pop();
}

/* ------------------------------------------ 4. equations of any width */
enum { WIDE = 1000 };

/* concatenate of a tuple's leaves (f64[2] each), weighted by 1, 2, ... */
static jx_t wide_concat(const jx_t *a, void *u) {
  (void)u;
  jx_t xs[WIDE];
  for (int i = 0; i < WIDE; i++) xs[i] = jx_at(a[0], i);
  return jx_concatenate(WIDE, xs, 0);
}
static jx_t wide_concat_loss(const jx_t *a, void *u) {
  jx_t c = wide_concat(a, u);
  return jx_sum(jx_mul(c, jx_arange(JX_F64, 1, 2 * WIDE + 1, 1)));
}
/* the sum of WIDE arguments (f64[3] each), each times its position + 1 */
static jx_t wide_sum(const jx_t *a, void *u) {
  (void)u;
  jx_t s = a[0];
  for (int i = 1; i < WIDE; i++) s = jx_add(s, jx_mul(a[i], F64(i + 1)));
  return s;
}
static jx_t wide_sum_loss(const jx_t *a, void *u) { return jx_sum(wide_sum(a, u)); }
/* a tree of WIDE leaves in, a tree of WIDE leaves out (each doubled) */
static jx_t wide_tree(const jx_t *a, void *u) {
  (void)u;
  jx_t ys[WIDE];
  for (int i = 0; i < WIDE; i++) ys[i] = jx_mul(jx_at(a[0], i), F64(2));
  return jx_tuple(WIDE, ys);
}

/* set in the interpreted run (no C compiler) */
static bool interpreted;

static void test_wide(void) {
  jx_pool_push();
  static jx_t leaves[WIDE], args[WIDE];
  static double want[2 * WIDE];
  for (int i = 0; i < WIDE; i++) {
    leaves[i] = jx_array(JX_F64, JX_SHAPE(2), (double[]){i, -i});
    args[i] = jx_array(JX_F64, JX_SHAPE(3), (double[]){1, i, 0.5});
    want[2 * i] = i, want[2 * i + 1] = -i;
  }
  jx_t tree = jx_tuple(WIDE, leaves);
  /* jit of a concatenate of 1,000 arrays */
  jx_fn *c = jx_fn_new(wide_concat, 1, NULL), *jc = jx_jit(c);
  jx_t r = JX_CALL(jc, tree);
  CHECKF(jx_ok(r) && jx_size(r) == 2 * WIDE, "jit(concatenate of %d): %s", WIDE, jx_error(r));
  if (jx_ok(r)) {
    static double got[2 * WIDE];
    CHECK(jx_read(r, JX_F64, got, sizeof got) == 0 && !memcmp(got, want, sizeof got));
  }
  /* the type checker checks wide equations too (it used to skip them,
   * leaving their outputs undefined for the equations after them) */
  jx_t terr = NULL;
  jx_fn *tf = jx_fn_new(wide_concat_loss, 1, NULL);
  jx_jaxpr *tj = jx_trace_to_jaxpr(tf, &tree, NULL, &terr);
  jx_fn_free(tf);
  CHECKF(tj && !terr, "trace: %s", jx_error(terr));
  if (tj) {
    jx_t te = jx_jaxpr_typecheck(tj);
    CHECKF(!te, "typecheck of a %d-input concatenate: %s", WIDE, jx_error(te));
    jx_jaxpr_release(tj);
  }
  /* its grad: leaf i gets weights 2i + 1, 2i + 2 */
  jx_fn *cl = jx_fn_new(wide_concat_loss, 1, NULL), *g = jx_grad(cl, 0), *jg = jx_jit(g), *jcl = jx_jit(cl);
  jx_fn *gj = jx_grad(jcl, 0);
  /* grad(jit): the transposed concatenate is 1,000 slices, 1,000 kernels
   * whose C takes long to build: interpreted only */
  jx_fn *gs[3] = {g, jg, gj};
  for (int k = 0; k < (interpreted ? 3 : 2); k++) {
    jx_t G = JX_CALL(gs[k], tree);
    CHECKF(jx_ok(G) && jx_len(G) == WIDE, "grad %d of the wide concatenate: %s", k, jx_error(G));
    for (int i = 0; jx_ok(G) && i < WIDE; i += 111)
      check_values(jx_at(G, i), 2, (double[]){2 * i + 1, 2 * i + 2}, 0, "grad of the wide concatenate");
  }
  /* a sum of 1,000 arguments, and its grad wrt the last */
  jx_fn *s = jx_fn_new(wide_sum, WIDE, NULL), *js = jx_jit(s);
  double tri = WIDE * (WIDE + 1) / 2.0, wsum[3] = {tri, 0, 0.5 * tri};
  for (int i = 0; i < WIDE; i++) wsum[1] += (double)i * (i + 1);
  check_values(jx_call(s, args), 3, wsum, 1e-15, "sum of 1,000 arguments (eager)");
  check_values(jx_call(js, args), 3, wsum, 1e-15, "jit(sum of 1,000 arguments)");
  jx_fn *sl = jx_fn_new(wide_sum_loss, WIDE, NULL), *sg = jx_grad(sl, WIDE - 1), *jsg = jx_jit(sg);
  check_values(jx_call(jsg, args), 3, (double[]){WIDE, WIDE, WIDE}, 0, "jit(grad(sum of 1,000 arguments))");
  jx_fn *jsl = jx_jit(sl), *gjs = jx_grad(jsl, 0);
  check_values(jx_call(gjs, args), 3, (double[]){1, 1, 1}, 0, "grad(jit(sum of 1,000 arguments))");
  jx_fn_free(gjs), jx_fn_free(jsl);
  /* a tree of 1,000 leaves in and out */
  jx_fn *t = jx_fn_new(wide_tree, 1, NULL), *jt = jx_jit(t);
  jx_t T = JX_CALL(jt, tree);
  CHECKF(jx_ok(T) && jx_len(T) == WIDE, "jit of a %d-leaf tree: %s", WIDE, jx_error(T));
  for (int i = 0; jx_ok(T) && i < WIDE; i += 97)
    check_values(jx_at(T, i), 2, (double[]){2 * i, -2 * i}, 0, "jit of a wide tree");
  jx_fn_free(jt), jx_fn_free(t), jx_fn_free(jsg), jx_fn_free(sg), jx_fn_free(sl), jx_fn_free(js),
      jx_fn_free(s);
  jx_fn_free(gj), jx_fn_free(jcl), jx_fn_free(jg), jx_fn_free(g), jx_fn_free(cl), jx_fn_free(jc),
      jx_fn_free(c);
  jx_pool_pop();
}

/* test_wide again in a process without a C compiler: jit interprets */
static void test_wide_interpreted(void) {
  char self[PATH_MAX], cmd[PATH_MAX + 200], line[512];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  CHECK(n > 0);
  if (n <= 0) return;
  self[n] = 0;
  snprintf(cmd, sizeof cmd, "JX_CC=/nonexistent JX_LOG=compile '%s' --wide 2>&1", self);
  FILE *p = popen(cmd, "r");
  CHECK(p != NULL);
  if (!p) return;
  int interpreted = 0, passed = -1, failed = -1;
  while (fgets(line, sizeof line, p)) {
    interpreted |= strstr(line, "falling back to the interpreter") != NULL;
    if (sscanf(line, "regress_control (interpreted): %d passed, %d failed", &passed, &failed) == 2) continue;
    if (!strstr(line, "[jx]")) fputs(line, stderr); /* the child's failures */
  }
  int rc = pclose(p);
  CHECKF(rc == 0 && interpreted && passed > 20 && failed == 0,
         "interpreted run: status %d, interpreted %d, %d passed, %d failed", rc, interpreted, passed, failed);
}

/* -------------------- 5. switch branches reading many captured constants */
typedef struct {
  int k, b;
  jx_t *c; /* k constants (f64[2]) */
} captured;

static jx_t br_captured(const jx_t *a, void *u) { /* x * sum(c) + b */
  const captured *c = u;
  jx_t s = c->c[0];
  for (int j = 1; j < c->k; j++) s = jx_add(s, c->c[j]);
  return jx_add(jx_mul(a[0], s), F64(c->b));
}
static jx_t switch_captured(const jx_t *a, void *u) { /* args: index, x */
  captured *cs = u;
  jx_fn *br[3];
  for (int b = 0; b < 3; b++) br[b] = jx_fn_new(br_captured, 1, &cs[b]);
  jx_t r = jx_switch(a[0], 3, br, 1, a + 1);
  for (int b = 0; b < 3; b++) jx_fn_free(br[b]);
  return r;
}
static jx_t switch_captured_loss(const jx_t *a, void *u) { return jx_sum(switch_captured(a, u)); }

static void test_switch_captured(int k) {
  jx_pool_push();
  captured cs[3];
  double csum[3][2] = {{0}};
  jx_t *consts = malloc(sizeof(jx_t) * (size_t)(3 * k));
  for (int b = 0; b < 3; b++) {
    cs[b] = (captured){k, b, consts + b * k};
    for (int j = 0; j < k; j++) {
      double v[2] = {(b + 1) * 0.5 + j, (b + 1) * 0.25 - j};
      cs[b].c[j] = jx_array(JX_F64, JX_SHAPE(2), v);
      csum[b][0] += v[0], csum[b][1] += v[1];
    }
  }
  char what[160];
  jx_fn *f = jx_fn_new(switch_captured, 2, cs), *jf = jx_jit(f), *l = jx_fn_new(switch_captured_loss, 2, cs);
  jx_fn *g = jx_grad(l, 1), *jg = jx_jit(g), *vf = jx_vmap(f, (int[]){0, 0}, 0);
  double x = 1.5;
  for (int b = 0; b < 3; b++) {
    jx_t i = jx_scalar_of(JX_I32, b);
    double want[2] = {x * csum[b][0] + b, x * csum[b][1] + b}, dwant = csum[b][0] + csum[b][1];
    snprintf(what, sizeof what, "switch, %d captured constants per branch, branch %d", k, b);
    check_values(JX_CALL(f, i, F64(x)), 2, want, 1e-15, what);
    check_values(JX_CALL(jf, i, F64(x)), 2, want, 1e-15, what);
    check_values(JX_CALL(g, i, F64(x)), 1, &dwant, 1e-15, what);
    check_values(JX_CALL(jg, i, F64(x)), 1, &dwant, 1e-15, what);
  }
  /* vmap with an index per lane: lane b takes branch b */
  jx_t is = jx_array(JX_I32, JX_SHAPE(3), (int32_t[]){0, 1, 2}),
       xs = jx_array(JX_F64, JX_SHAPE(3), (double[]){1, 2, 3});
  double vwant[6];
  for (int b = 0; b < 3; b++)
    vwant[2 * b] = (b + 1) * csum[b][0] + b, vwant[2 * b + 1] = (b + 1) * csum[b][1] + b;
  snprintf(what, sizeof what, "vmap(switch), %d captured constants", k);
  check_values(JX_CALL(vf, is, xs), 6, vwant, 1e-15, what);
  jx_fn *vg = jx_vmap(g, (int[]){0, 0}, 0);
  double vgw[3] = {csum[0][0] + csum[0][1], csum[1][0] + csum[1][1], csum[2][0] + csum[2][1]};
  check_values(JX_CALL(vg, is, xs), 3, vgw, 1e-15, what);
  jx_fn_free(vg), jx_fn_free(vf), jx_fn_free(jg), jx_fn_free(g), jx_fn_free(l), jx_fn_free(jf), jx_fn_free(f);
  free(consts);
  jx_pool_pop();
}

/* ----------------- many branches, deep nesting: no trace-depth limit */
static jx_t br_times(const jx_t *a, void *u) { return jx_mul(a[0], F64((double)(intptr_t)u)); }
typedef struct {
  int n;
  jx_fn **br;
} many;
static jx_t switch_many(const jx_t *a, void *u) { /* branch b: x * b */
  const many *m = u;
  return jx_switch(a[0], m->n, m->br, 1, a + 1);
}

/* with_vmap: also with an index per lane (both halves of every cond run:
 * about 2n branch programs, each compiled when a compiler is there) */
static void check_switch_many(int n, bool with_vmap) {
  jx_pool_push();
  jx_fn **br = malloc(sizeof(jx_fn *) * (size_t)n);
  for (int b = 0; b < n; b++) br[b] = jx_fn_new(br_times, 1, (void *)(intptr_t)b);
  many m = {n, br};
  jx_fn *f = jx_fn_new(switch_many, 2, &m), *jf = jx_jit(f), *g = jx_grad(f, 1),
        *vf = jx_vmap(f, (int[]){0, 0}, 0);
  jx_fn *vg = jx_vmap(g, (int[]){0, 0}, 0);
  char what[96];
  snprintf(what, sizeof what, "switch of %d branches", n);
  const int idx[4] = {0, n / 3, n - 1, n + 5}; /* the last clamped to n - 1 */
  for (int k = 0; k < 4; k++) {
    jx_t i = jx_scalar_of(JX_I32, idx[k]);
    double b = idx[k] < n ? idx[k] : n - 1, want = 1.5 * b;
    check_values(JX_CALL(f, i, F64(1.5)), 1, &want, 0, what);
    check_values(JX_CALL(jf, i, F64(1.5)), 1, &want, 0, what);
    check_values(JX_CALL(g, i, F64(1.5)), 1, &b, 0, what);
  }
  jx_t is = jx_array(JX_I32, JX_SHAPE(3), (int32_t[]){n - 1, 0, n / 2}),
       xs = jx_array(JX_F64, JX_SHAPE(3), (double[]){1, 2, 3});
  if (with_vmap) {
    check_values(JX_CALL(vf, is, xs), 3, (double[]){n - 1, 0, 3.0 * (n / 2)}, 0, what);
    check_values(JX_CALL(vg, is, xs), 3, (double[]){n - 1, 0, n / 2}, 0, what);
  }
  jx_fn_free(vg), jx_fn_free(vf), jx_fn_free(g), jx_fn_free(jf), jx_fn_free(f);
  for (int b = 0; b < n; b++) jx_fn_free(br[b]);
  free(br);
  jx_pool_pop();
}

/* jit(jit(...jit(f))) 100 deep: 100 nested traces */
static jx_t twice(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(a[0], F64(2));
}
static void test_deep(void) {
  check_switch_many(100, false);
  jx_fn *f = jx_fn_new(twice, 1, NULL);
  for (int d = 0; d < 100; d++) {
    jx_fn *j = jx_jit(f);
    jx_fn_free(f);
    f = j;
  }
  jx_fn *g = jx_grad(f, 0);
  CHECK(item(JX_CALL(f, F64(3))) == 6 && item(JX_CALL(g, F64(3))) == 2);
  jx_fn_free(g), jx_fn_free(f);
}

static void test_switch_captured_all(void) {
  test_switch_captured(8);
  test_switch_captured(32);
  test_switch_captured(100);
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--wide")) { /* the interpreted run (JX_CC set by the parent) */
    interpreted = true;
    test_wide();
    check_switch_many(1000, true);
    return check_report("regress_control (interpreted)");
  }
  static const struct {
    const char *name;
    void (*run)(void);
  } tests[] = {{"vmap_cond_grad", test_vmap_cond_grad},
               {"abs_grad", test_abs_grad},
               {"unread_operands", test_unread_operands},
               {"wide", test_wide},
               {"wide_interpreted", test_wide_interpreted},
               {"switch_captured", test_switch_captured_all},
               {"deep", test_deep}};
  const char *only = argc > 2 && !strcmp(argv[1], "--only") ? argv[2] : NULL; /* for debugging */
  if (check_private_cache("regress-control")) return 1;
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
    if (!only || !strcmp(only, tests[i].name)) tests[i].run();
  check_private_cache_remove();
  return check_report("regress_control");
}
