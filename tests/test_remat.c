/* jx_checkpoint (jax.checkpoint): gradients equal the plain ones under
 * every policy, eager and jitted, to second order, under vmap; under jit
 * the recomputation survives the optimizer (CSE does not merge it back:
 * counted in the optimized jaxpr); the policies save what they say (dots,
 * names); the peak bytes of an eager grad drop (a counting allocator);
 * bad policies give error values. */
#include "check.h"
#include "compile/passes.h"
#include "ir/jaxpr.h"
#include "remat_mlp.h"

#include <jx.h>

jx_jaxpr *jx_trace_to_jaxpr(jx_fn *f, const jx_t *args, jx_t *out_like, jx_t *err);

static double max_diff(jx_t a, jx_t b) {
  if (!jx_ok(a) || !jx_ok(b)) return INFINITY;
  return jx_item(jx_max(jx_abs(jx_sub(jx_astype(a, JX_F64), jx_astype(b, JX_F64)))));
}
static double tree_diff(jx_t a, jx_t b) {
  jx_t la = jx_tree_flatten(a, NULL), lb = jx_tree_flatten(b, NULL);
  if (!jx_ok(la) || !jx_ok(lb) || jx_len(la) != jx_len(lb)) return INFINITY;
  double m = 0;
  for (int i = 0; i < jx_len(la); i++) m = fmax(m, max_diff(jx_at(la, i), jx_at(lb, i)));
  return m;
}

/* a layer with a named pre-activation: tanh(name(h W, "pre") + b) */
static jx_t named_layer(const jx_t *a, void *u) {
  (void)u;
  return jx_tanh(jx_add(jx_checkpoint_name(jx_matmul(a[2], a[0]), "pre"), a[1]));
}
static jx_t sin_layer(const jx_t *a, void *u) { /* smooth second derivative */
  (void)u;
  return jx_sin(jx_add(jx_matmul(a[2], a[0]), a[1]));
}

static jx_fn *model_grad(rm_model *m, jx_body layer, int policy, const char *name, bool jit) {
  jx_fn *l = jx_fn_new(layer, 3, NULL);
  *m = (rm_model){.layer = policy < 0 ? l : jx_checkpoint_ex(l, policy, name ? 1 : 0, name ? &name : NULL)};
  jx_fn *g = jx_grad(jx_fn_new(rm_loss, 2, m), 0);
  return jit ? jx_jit(g) : g;
}

static void test_equal_grads(void) {
  jx_t params, x;
  rm_init(4, 16, 8, &params, &x);
  rm_model m0;
  jx_t want = JX_CALL(model_grad(&m0, named_layer, -1, NULL, false), params, x);
  const int policies[] = {JX_REMAT_NOTHING, JX_REMAT_EVERYTHING, JX_REMAT_DOTS, JX_REMAT_NAMES};
  for (int p = 0; p < 4; p++)
    for (int jit = 0; jit < 2; jit++) {
      rm_model m;
      jx_t got = JX_CALL(model_grad(&m, named_layer, policies[p], p == 3 ? "pre" : NULL, jit), params, x);
      CHECKF(tree_diff(got, want) < 1e-5, "policy %d jit %d: %g", p, jit, tree_diff(got, want));
    }
  /* layers checkpointed together in blocks of 3 (4 layers: a block and a
   * remainder of one): the same gradients */
  for (int jit = 0; jit < 2; jit++) {
    rm_model mb;
    jx_t got = JX_CALL(rm_grad_blocks(&mb, 3, jit), params, x);
    CHECKF(tree_diff(got, want) < 1e-5, "blocks of 3, jit %d: %g", jit, tree_diff(got, want));
  }
  /* vmap of grad over examples (x unbatched rows of a batch) and grad of
   * vmap: per-example gradients equal */
  rm_model mp, mc;
  jx_fn *gp = model_grad(&mp, named_layer, -1, NULL, false),
        *gc = model_grad(&mc, named_layer, 0, NULL, false);
  jx_t X = jx_reshape(x, 3, (int64_t[]){8, 1, 16});
  jx_t vp = JX_CALL(jx_vmap(gp, (int[]){JX_NONE, 0}, 0), params, X);
  jx_t vc = JX_CALL(jx_vmap(gc, (int[]){JX_NONE, 0}, 0), params, X);
  CHECK(tree_diff(vp, vc) < 1e-5);
  jx_release(params), jx_release(x);
}

/* second order: d/dx of sum(grad over x of loss) through checkpointed
 * sin layers */
static jx_t loss_x(const jx_t *a, void *u) { return rm_loss((jx_t[]){a[1], a[0]}, u); }
static jx_t grad_sum(const jx_t *a, void *u) {
  jx_fn *g = jx_grad(jx_fn_new(loss_x, 2, u), 0);
  return jx_sum(JX_CALL(g, a[0], a[1]));
}
static void test_second_order(void) {
  jx_t params, x;
  rm_init(3, 8, 4, &params, &x);
  rm_model mp = {.layer = jx_fn_new(sin_layer, 3, NULL)},
           mc = {.layer = jx_checkpoint(jx_fn_new(sin_layer, 3, NULL), 0)};
  jx_fn *hp = jx_grad(jx_fn_new(grad_sum, 2, &mp), 0), *hc = jx_grad(jx_fn_new(grad_sum, 2, &mc), 0);
  jx_t a = JX_CALL(hp, x, params), b = JX_CALL(hc, x, params);
  CHECKF(max_diff(a, b) < 1e-5 && jx_item(jx_max(jx_abs(a))) > 1e-3, "%g", max_diff(a, b));
  CHECK(max_diff(JX_CALL(jx_jit(hc), x, params), a) < 1e-5);
  jx_release(params), jx_release(x);
}

/* equations of primitive p in j after the jit's optimizer */
static int count_optimized(jx_fn *g, jx_t params, jx_t x, jx_prim p) {
  jx_t err;
  jx_jaxpr *j = jx_trace_to_jaxpr(g, (jx_t[]){params, x}, NULL, &err);
  jx_jaxpr *o = j ? jx_optimize(j, &err) : NULL;
  int n = o ? 0 : -1;
  for (int e = 0; o && e < o->neqn; e++) n += o->eqns[e].prim == p;
  jx_jaxpr_release(o), jx_jaxpr_release(j);
  return n;
}

static void test_jit_keeps_recomputation(void) {
  enum { L = 5 };
  jx_t params, x;
  rm_init(L, 16, 8, &params, &x);
  rm_model m[5];
  jx_fn *plain = model_grad(&m[0], named_layer, -1, NULL, false);
  jx_fn *nothing = model_grad(&m[1], named_layer, JX_REMAT_NOTHING, NULL, false);
  jx_fn *dots = model_grad(&m[2], named_layer, JX_REMAT_DOTS, NULL, false);
  jx_fn *names = model_grad(&m[3], named_layer, JX_REMAT_NAMES, "pre", false);
  jx_fn *every = model_grad(&m[4], named_layer, JX_REMAT_EVERYTHING, NULL, false);
  /* tanh: once per layer, plus once more per recomputed layer */
  CHECK(count_optimized(plain, params, x, JX_P_tanh) == L);
  CHECK(count_optimized(nothing, params, x, JX_P_tanh) == 2 * L);
  CHECK(count_optimized(every, params, x, JX_P_tanh) == L);
  /* products: forward + two backward per layer (but the first layer's
   * input gradient, not asked for); recomputed only when not saved (dots;
   * the named pre-activation is the product) */
  CHECK(count_optimized(plain, params, x, JX_P_dot_general) == 3 * L - 1);
  CHECK(count_optimized(nothing, params, x, JX_P_dot_general) == 4 * L - 1);
  CHECK(count_optimized(dots, params, x, JX_P_dot_general) == 3 * L - 1);
  CHECK(count_optimized(names, params, x, JX_P_dot_general) == 3 * L - 1);
  jx_release(params), jx_release(x);
}

/* Peak bytes of one grad (deterministic: a byte count). Eager, the
 * checkpointed grad keeps only each layer's input and the gradients
 * (the plain one keeps every intermediate of the forward pass); jitted,
 * the plain program already keeps one array per layer (a tanh MLP's only
 * residual is its layer's output, the next layer's input), so
 * checkpointing may cost at most two more activations there (the
 * recomputed pre-activation and output). */
static void test_peak_bytes(void) {
  jx_t params, x;
  rm_init(16, 64, 64, &params, &x); /* activations (16 KiB) as large as a weight */
  size_t peak[2][2];
  for (int jit = 0; jit < 2; jit++)
    for (int c = 0; c < 2; c++) {
      rm_model m;
      jx_fn *g = rm_grad(&m, c ? JX_REMAT_NOTHING : -1, jit);
      jx_t r;
      peak[jit][c] = rm_peak_bytes(g, params, x, &r);
      if (jit) peak[jit][c] = rm_peak_bytes(g, params, x, NULL); /* compiled already */
      CHECK(jx_ok(r));
      jx_release(r);
    }
  printf("peak bytes: eager %zu -> %zu (%.3f), jit %zu -> %zu (%.3f)\n", peak[0][0], peak[0][1],
         (double)peak[0][1] / (double)peak[0][0], peak[1][0], peak[1][1],
         (double)peak[1][1] / (double)peak[1][0]);
  CHECK(peak[0][1] * 10 <= peak[0][0] * 8);
  CHECK(peak[1][1] <= peak[1][0] + 2 * 64 * 64 * sizeof(float));
  jx_release(params), jx_release(x);
}

static void test_errors(void) {
  jx_fn *l = jx_fn_new(named_layer, 3, NULL);
  jx_t x = jx_ones(JX_F32, JX_SHAPE(2, 2));
  jx_t args[3] = {x, jx_ones(JX_F32, JX_SHAPE(2)), x};
  EXPECT_ERROR(jx_call(jx_checkpoint(l, JX_REMAT_NAMES), args), "checkpoint", "names nothing");
  EXPECT_ERROR(jx_call(jx_checkpoint(l, (jx_remat_policy)9), args), "checkpoint",
               "9 is not a jx_remat_policy");
  EXPECT_ERROR(jx_call(jx_checkpoint(NULL, JX_REMAT_NOTHING), args), "checkpoint");
  const char *five[5] = {"a", "b", "c", "d", "e"};
  EXPECT_ERROR(jx_call(jx_checkpoint_ex(l, JX_REMAT_NAMES, 5, five), args), "checkpoint", "5 names");
  EXPECT_ERROR(jx_call(jx_checkpoint_ex(l, JX_REMAT_DOTS, 1, five), args), "not JX_REMAT_NAMES");
  EXPECT_ERROR(jx_checkpoint_name(x, ""), "checkpoint_name", "1 to 31 bytes");
  EXPECT_ERROR(jx_checkpoint_name(JX_TUPLE(x), "a"), "checkpoint_name", "not a tree");
  /* an error inside the checkpointed function comes out of the grad */
  jx_t bad[3] = {x, jx_ones(JX_F32, JX_SHAPE(3)), x};
  EXPECT_ERROR(JX_CALL(jx_grad(jx_fn_new(rm_loss, 2, &(rm_model){.layer = jx_checkpoint(l, 0)}), 0),
                       jx_list(1, (jx_t[]){JX_TUPLE(bad[0], bad[1])}), x),
               "add");
  /* eager call: the function itself */
  CHECK(max_diff(jx_call(jx_checkpoint(l, 0), args), jx_call(l, args)) == 0);
}

int main(void) {
  rm_install();
  check_private_cache("remat");
  jx_pool_push();
  test_equal_grads();
  test_second_order();
  test_jit_keeps_recomputation();
  test_peak_bytes();
  test_errors();
  jx_pool_pop();
  check_private_cache_remove();
  return check_report("remat");
}
