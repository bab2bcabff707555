/* Weight-decay masks given as functions (optax's callable masks, issue
 * 21): the same trajectory as the equivalent tree mask, eagerly and under
 * jit, and bad mask functions as error values. */
#include "check.h"

/* decay matrices, not vectors (the usual "no decay on biases" rule) */
static jx_t matrices_only(const jx_t *a, void *u) {
  (void)u;
  jx_t p = a[0];
  return JX_TUPLE(jx_full(JX_BOOL, jx_ndim(jx_at(p, 0)), jx_shape(jx_at(p, 0)), jx_ndim(jx_at(p, 0)) > 1),
                  jx_full(JX_BOOL, jx_ndim(jx_at(p, 1)), jx_shape(jx_at(p, 1)), jx_ndim(jx_at(p, 1)) > 1));
}
static jx_t floats(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_zeros_like(jx_at(a[0], 0)), jx_zeros_like(jx_at(a[0], 1)));
}
static jx_t one_leaf(const jx_t *a, void *u) {
  (void)u, (void)a;
  return jx_full(JX_BOOL, JX_SHAPE(2), 1);
}
static jx_t fails(const jx_t *a, void *u) {
  (void)u, (void)a;
  return jx_error_new("mask went wrong");
}
static jx_t two_args(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(a[0], a[1]);
}

static jx_t params0(void) {
  return JX_TUPLE(jx_array(JX_F32, JX_SHAPE(2, 2), (float[]){1, -2, 3, 0.5f}),
                  jx_array(JX_F32, JX_SHAPE(2), (float[]){0.25f, -1}));
}
static jx_t grads_at(int step) {
  float s = (float)step;
  return JX_TUPLE(jx_array(JX_F32, JX_SHAPE(2, 2), (float[]){0.1f * s, -0.3f, 0.2f, 0.05f * s}),
                  jx_array(JX_F32, JX_SHAPE(2), (float[]){-0.2f, 0.1f * s}));
}

/* 20 steps of opt from params0; the final params' 6 numbers into out */
static bool run(jx_optimizer *opt, float out[6]) {
  jx_pool_push();
  jx_t p = params0(), st = jx_optim_init(opt, p);
  bool ok = jx_ok(st);
  for (int i = 0; i < 20 && ok; i++) {
    jx_t r = jx_optim_update(opt, grads_at(i), st, p);
    ok = jx_ok(r);
    if (!ok) fprintf(stderr, "update: %s\n", jx_error(r));
    if (ok) p = jx_apply_updates(p, jx_at(r, 0)), st = jx_at(r, 1);
  }
  ok = ok && jx_read(jx_at(p, 0), JX_F32, out, 4 * sizeof(float)) == 0 &&
       jx_read(jx_at(p, 1), JX_F32, out + 4, 2 * sizeof(float)) == 0;
  jx_pool_pop();
  return ok;
}

/* the update under jit: (grads, state, params) -> (updates, state) */
static jx_optimizer *jit_opt;
static jx_t update_body(const jx_t *a, void *u) {
  (void)u;
  return jx_optim_update(jit_opt, a[0], a[1], a[2]);
}
static bool run_jit(jx_optimizer *opt, float out[6]) {
  jx_pool_push();
  jit_opt = opt;
  jx_fn *step = jx_jit(jx_fn_new(update_body, 3, NULL));
  jx_t p = params0(), st = jx_optim_init(opt, p);
  bool ok = jx_ok(st);
  for (int i = 0; i < 20 && ok; i++) {
    jx_t r = JX_CALL(step, grads_at(i), st, p);
    ok = jx_ok(r);
    if (ok) p = jx_apply_updates(p, jx_at(r, 0)), st = jx_at(r, 1);
  }
  ok = ok && jx_read(jx_at(p, 0), JX_F32, out, 4 * sizeof(float)) == 0 &&
       jx_read(jx_at(p, 1), JX_F32, out + 4, 2 * sizeof(float)) == 0;
  jx_pool_pop();
  return ok;
}

static void same(const float *a, const float *b, const char *what) {
  for (int i = 0; i < 6; i++) CHECKF(a[i] == b[i], "%s: [%d] %.9g vs %.9g", what, i, a[i], b[i]);
}

static void test_same_as_tree_mask(void) {
  jx_fn *mf = jx_fn_new(matrices_only, 1, NULL);
  jx_t tree_mask = jx_retain(JX_TUPLE(jx_full(JX_BOOL, JX_SHAPE(2, 2), 1), jx_full(JX_BOOL, JX_SHAPE(2), 0)));
  float a[6], b[6], c[6], d[6];
  struct {
    jx_optimizer *fn, *tree;
    const char *name;
  } cases[] = {
      {jx_adamw_mask_fn(jx_constant_schedule(0.1), 0.9, 0.999, 1e-8, 0.5, mf),
       jx_adamw(jx_constant_schedule(0.1), 0.9, 0.999, 1e-8, 0.5, tree_mask), "adamw"},
      {jx_lion_mask_fn(jx_constant_schedule(0.05), 0.9, 0.99, 0.5, mf),
       jx_lion(jx_constant_schedule(0.05), 0.9, 0.99, 0.5, tree_mask), "lion"},
      {jx_add_decayed_weights_mask_fn(0.5, mf), jx_add_decayed_weights(0.5, tree_mask),
       "add_decayed_weights"},
  };
  for (int k = 0; k < 3; k++) {
    CHECK(run(cases[k].fn, a) && run(cases[k].tree, b));
    same(a, b, cases[k].name);
    CHECK(run_jit(cases[k].fn, c) && run_jit(cases[k].tree, d));
    same(c, d, cases[k].name);
    jx_optim_free(cases[k].fn);
    jx_optim_free(cases[k].tree);
  }
  /* and without the mask the result differs (the bias would decay) */
  jx_optimizer *nomask = jx_adamw(jx_constant_schedule(0.1), 0.9, 0.999, 1e-8, 0.5, NULL);
  jx_optimizer *fn = jx_adamw_mask_fn(jx_constant_schedule(0.1), 0.9, 0.999, 1e-8, 0.5, mf);
  CHECK(run(nomask, a) && run(fn, b));
  CHECK(a[0] == b[0] && a[4] != b[4]);
  jx_optim_free(nomask);
  jx_optim_free(fn);
  jx_release(tree_mask);
  jx_fn_free(mf);
}

static void test_bad_masks(void) {
  jx_pool_push();
  jx_t p = params0();
  struct {
    jx_body body;
    int nargs;
    const char *err;
  } bad[] = {
      {floats, 1, "must return a tree of bool arrays"},
      {fails, 1, "the mask function failed: mask went wrong"},
      {one_leaf, 1, "different tree structures"},
      {two_args, 2, "takes 2 arguments, must take 1"},
  };
  for (int k = 0; k < 4; k++) {
    jx_optimizer *o = jx_add_decayed_weights_mask_fn(0.1, jx_fn_new(bad[k].body, bad[k].nargs, NULL));
    jx_t st = jx_optim_init(o, p);
    jx_t r = jx_ok(st) ? jx_optim_update(o, grads_at(1), st, p) : st;
    EXPECT_ERROR(r, "add_decayed_weights", bad[k].err);
    jx_optim_free(o);
  }
  jx_optimizer *o = jx_adamw_mask_fn(jx_constant_schedule(0.1), 0.9, 0.999, 1e-8, 0.5, NULL);
  EXPECT_ERROR(jx_optim_init(o, p), "adamw", "mask function is unusable");
  jx_optim_free(o);
  o = jx_lion_mask_fn(jx_constant_schedule(0.1), 0.9, 0.99, 0.5, jx_fn_new(NULL, 1, NULL));
  EXPECT_ERROR(jx_optim_init(o, p), "lion", "mask function is unusable");
  jx_optim_free(o);
  jx_pool_pop();
}

int main(void) {
  if (check_private_cache("optim-masks")) return 1;
  jx_set_error_handler(NULL, NULL);
  check_verbose = getenv("JX_TEST_VERBOSE") != NULL;
  test_same_as_tree_mask();
  test_bad_masks();
  check_private_cache_remove();
  return check_report("test_optim_masks");
}
