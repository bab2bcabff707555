/* Optimizers and schedules (src/optim) against PyTorch.
 *
 * golden/optim.npz holds 100-step trajectories of torch.optim's optimizers
 * and torch.optim.lr_scheduler's schedules on fixed parameters and
 * gradients (golden/gen_optim.py writes it; regenerate with
 * `/usr/bin/python3 tests/golden/gen_optim.py`). Each case runs the same
 * steps through jx_optim_update and jx_apply_updates and compares every
 * parameter after every step.
 *
 * Tolerances. Both sides compute in f32 with the same formulas but not
 * always the same rounding order (optax's `-lr * u` and `p + u` against
 * torch's fused `p.addcdiv_(m, d, value=-lr/bc)` and AdamW's `p *= 1 -
 * lr * wd`), so each step may differ by a few f32 roundings of the update
 * and of the parameter (|p| ~ 1: half an ulp is 6e-8). Over 100 steps
 * those add up to 6e-6 at the very worst (every rounding the same way), a
 * few 1e-7 typically; measured: at most 1.3e-6 (adamw, lion: torch's
 * `p *= 1 - lr * wd` rounds differently from optax's `-lr * (u + wd * p)`).
 * The bound is 4e-6 relative to 1 + |p|. A wrong formula moves the
 * parameters by 1e-3 or more (checked by breaking nesterov, the mask, the
 * schedule's step: errors of 0.005 to 0.2). Schedules are compared value
 * by value within one f32 rounding of torch's double
 * (they are computed in f64 and rounded once).
 *
 * Also: jit(update) == update, a whole jitted training step (grad +
 * update + apply_updates) == the same step eagerly, vmap(update) == a loop
 * of updates, bad input gives error values that name the optimizer, and
 * nothing leaks (the ASan build's LeakSanitizer). */
#include "check.h"

#include <jx.h>

enum { STEPS = 100, NLEAF = 4 };
static const int64_t SHAPES[NLEAF][2] = {{4, 3}, {3, 0}, {3, 2}, {2, 0}};
static const int NDIM[NLEAF] = {2, 1, 2, 1};
static int64_t leaf_size(int i) { return SHAPES[i][0] * (NDIM[i] == 2 ? SHAPES[i][1] : 1); }

static jx_t golden; /* retained tuple of golden/optim.npz's arrays */
static char **golden_names;
static float *init[NLEAF], *grads[NLEAF];

static jx_t G(const char *name) {
  for (int i = 0; i < jx_len(golden); i++)
    if (!strcmp(golden_names[i], name)) return jx_at(golden, i);
  fprintf(stderr, "golden/optim.npz has no %s\n", name);
  return NULL;
}
static float *read_f32(const char *name) {
  jx_t x = G(name);
  int64_t n = x ? jx_size(x) : 1;
  float *p = calloc((size_t)n, sizeof(float));
  if (x && jx_read(x, JX_F32, p, sizeof(float) * (size_t)n)) fprintf(stderr, "cannot read %s\n", name);
  return p;
}

/* [(W0, b0), (W1, b1)] from four leaf buffers */
static jx_t tree_of(float *const *leaves, int t) {
  jx_t l[NLEAF];
  for (int i = 0; i < NLEAF; i++)
    l[i] = jx_array(JX_F32, NDIM[i], SHAPES[i], leaves[i] + (int64_t)t * leaf_size(i));
  return JX_LIST(JX_TUPLE(l[0], l[1]), JX_TUPLE(l[2], l[3]));
}
static jx_t leaf(jx_t tree, int i) { return jx_at(jx_at(tree, i / 2), i % 2); }
static jx_t params0(void) { return tree_of(init, 0); }
static jx_t grads_at(int t, double scale) {
  jx_t g = tree_of(grads, t);
  return scale == 1
             ? g
             : JX_LIST(JX_TUPLE(jx_mul(leaf(g, 0), jx_scalar(scale)), jx_mul(leaf(g, 1), jx_scalar(scale))),
                       JX_TUPLE(jx_mul(leaf(g, 2), jx_scalar(scale)), jx_mul(leaf(g, 3), jx_scalar(scale))));
}
static jx_t bool_scalar(bool b) { return jx_scalar_of(JX_BOOL, b); }
static jx_t weights_mask(void) {
  return JX_LIST(JX_TUPLE(bool_scalar(true), bool_scalar(false)),
                 JX_TUPLE(bool_scalar(true), bool_scalar(false)));
}
static jx_schedule *cst(double v) { return jx_constant_schedule(v); }

/* ------------------------------------------------------- the torch cases */

static jx_optimizer *mk_sgd(void) { return jx_sgd(cst(0.1), 0, false); }
static jx_optimizer *mk_momentum(void) { return jx_sgd(cst(0.05), 0.9, false); }
static jx_optimizer *mk_nesterov(void) { return jx_sgd(cst(0.05), 0.9, true); }
static jx_optimizer *mk_adam(void) { return jx_adam(cst(0.01), 0.9, 0.999, 1e-8); }
static jx_optimizer *mk_adamw(void) {
  jx_pool_push();
  jx_optimizer *o = jx_adamw(cst(0.01), 0.9, 0.999, 1e-8, 0.1, weights_mask()); /* it keeps the mask */
  jx_pool_pop();
  return o;
}
static jx_optimizer *mk_rmsprop(void) { return jx_rmsprop(cst(0.01), 0.99, 1e-8, 0, false); }
static jx_optimizer *mk_rmsprop_c(void) { return jx_rmsprop(cst(0.001), 0.9, 1e-6, 0.9, true); }
static jx_optimizer *mk_lion(void) { return jx_lion(cst(1e-3), 0.9, 0.99, 0.1, NULL); }
static jx_optimizer *mk_clip(void) {
  return jx_chain(2, (jx_optimizer *[]){jx_clip_by_global_norm(1.0), jx_sgd(cst(0.1), 0.9, false)});
}
static jx_schedule *s_warmup_cosine(void) {
  return jx_warmup_cosine_decay_schedule(0.001, 0.01, 10, 100, 1e-4);
}
static jx_schedule *s_exponential(void) { return jx_exponential_decay(0.1, 1, 0.97, 0, false, 0); }
static jx_schedule *s_step(void) { return jx_exponential_decay(0.1, 10, 0.5, 0, true, 0); }
static jx_schedule *s_piecewise(void) {
  return jx_piecewise_constant_schedule(0.1, 2, (int64_t[]){30, 60}, (double[]){0.1, 0.1});
}
static jx_schedule *s_linear(void) { return jx_linear_schedule(0.1, 0.01, 50, 0); }
static jx_schedule *s_cosine(void) { return jx_cosine_decay_schedule(0.1, 100, 0.01); }
static jx_schedule *s_linear_begin(void) { return jx_linear_schedule(0.2, 0.02, 40, 10); }
static jx_schedule *s_cosine_clamped(void) { return jx_cosine_decay_schedule(0.1, 50, 0.0); }
static jx_schedule *s_exp_begin_end(void) { return jx_exponential_decay(0.1, 5, 0.5, 20, false, 0.01); }
static jx_optimizer *mk_adam_wc(void) { return jx_adam(s_warmup_cosine(), 0.9, 0.999, 1e-8); }
static jx_optimizer *mk_sgd_exp(void) { return jx_sgd(s_exponential(), 0, false); }
static jx_optimizer *mk_sgd_step(void) { return jx_sgd(s_step(), 0.9, false); }
static jx_optimizer *mk_sgd_pw(void) { return jx_sgd(s_piecewise(), 0, false); }
static jx_optimizer *mk_sgd_lin(void) { return jx_sgd(s_linear(), 0, false); }
static jx_optimizer *mk_sgd_cos(void) { return jx_sgd(s_cosine(), 0, false); }

static const struct {
  const char *name;
  jx_optimizer *(*make)(void);
  double gscale; /* the gradients fed are scaled by this (see gen_optim.py's clip case) */
} CASES[] = {
    {"sgd", mk_sgd, 1},
    {"momentum", mk_momentum, 1},
    {"nesterov", mk_nesterov, 1},
    {"adam", mk_adam, 1},
    {"adamw_mask", mk_adamw, 1},
    {"rmsprop", mk_rmsprop, 1},
    {"rmsprop_centered", mk_rmsprop_c, 1},
    {"lion", mk_lion, 1},
    {"clip_sgd", mk_clip, 10},
    {"adam_warmup_cosine", mk_adam_wc, 1},
    {"sgd_exponential", mk_sgd_exp, 1},
    {"sgd_step", mk_sgd_step, 1},
    {"sgd_piecewise", mk_sgd_pw, 1},
    {"sgd_linear", mk_sgd_lin, 1},
    {"sgd_cosine", mk_sgd_cos, 1},
};
enum { NCASES = sizeof CASES / sizeof CASES[0] };

#define TOL 4e-6

/* max over the leaves of |got - want| / (1 + |want|) at step t (+inf if
 * params cannot be read) */
static double step_error(jx_t params, float *const *traj, int t) {
  double worst = 0;
  for (int i = 0; i < NLEAF; i++) {
    float got[16];
    int64_t n = leaf_size(i);
    if (jx_read(leaf(params, i), JX_F32, got, sizeof got)) return INFINITY;
    for (int64_t k = 0; k < n; k++) {
      double want = traj[i][t * n + k], e = fabs((double)got[k] - want) / (1 + fabs(want));
      if (!(e <= worst)) worst = e;
    }
  }
  return worst;
}

static void test_against_torch(void) {
  for (int c = 0; c < NCASES; c++) {
    jx_optimizer *opt = CASES[c].make();
    jx_t params = jx_retain(params0()), state = jx_retain(jx_optim_init(opt, params));
    float *traj[NLEAF];
    for (int i = 0; i < NLEAF; i++) {
      char key[64];
      snprintf(key, sizeof key, "%s_%d", CASES[c].name, i);
      traj[i] = read_f32(key);
    }
    double worst = 0;
    int worst_t = 0;
    bool ok = jx_ok(state);
    for (int t = 0; t < STEPS && ok; t++) {
      jx_pool_push();
      jx_t r = jx_optim_update(opt, grads_at(t, CASES[c].gscale), state, params);
      jx_t np = jx_apply_updates(params, jx_at(r, 0));
      ok = jx_ok(np) && jx_ok(jx_at(r, 1));
      if (!ok) fprintf(stderr, "%s step %d: %s\n", CASES[c].name, t, jx_error(jx_ok(r) ? np : r));
      double e = ok ? step_error(np, traj, t) : INFINITY;
      if (!(e <= worst)) worst = e, worst_t = t;
      jx_t keep_p = jx_retain(np), keep_s = jx_retain(jx_at(r, 1));
      jx_pool_pop();
      jx_release(params), jx_release(state);
      params = keep_p, state = keep_s;
    }
    if (check_verbose) printf("  %-20s max error %.3g (step %d)\n", CASES[c].name, worst, worst_t);
    CHECKF(ok && worst <= TOL, "%s: error %.3g at step %d (bound %g)", CASES[c].name, worst, worst_t, TOL);
    jx_release(params), jx_release(state);
    jx_optim_free(opt);
    for (int i = 0; i < NLEAF; i++) free(traj[i]);
  }
}

/* ------------------------------------------------------------- schedules */

static const struct {
  const char *name;
  jx_schedule *(*make)(void);
} SCHEDS[] = {
    {"adam_warmup_cosine", s_warmup_cosine},
    {"sgd_exponential", s_exponential},
    {"sgd_step", s_step},
    {"sgd_piecewise", s_piecewise},
    {"sgd_linear", s_linear},
    {"sgd_cosine", s_cosine},
    {"linear_begin", s_linear_begin},
    {"cosine_clamped", s_cosine_clamped},
    {"exponential_begin_end", s_exp_begin_end},
};

/* every value within one f32 rounding of torch's (double) value */
static void test_schedules(void) {
  for (size_t c = 0; c < sizeof SCHEDS / sizeof SCHEDS[0]; c++) {
    char key[64];
    snprintf(key, sizeof key, "sched_%s", SCHEDS[c].name);
    jx_t ref = G(key);
    double want[STEPS];
    CHECK(ref && jx_read(ref, JX_F64, want, sizeof want) == 0);
    jx_schedule *s = SCHEDS[c].make();
    int bad = 0;
    for (int t = 0; t < STEPS; t++) {
      jx_pool_push();
      jx_t v = jx_schedule_value(s, jx_scalar_of(JX_I32, t));
      double got = jx_item(v);
      bool ok = jx_ok(v) && jx_dtype_of(v) == JX_F32 && fabs(got - want[t]) <= 0x1p-24 * fabs(want[t]);
      if (!ok && bad++ < 3)
        fprintf(stderr, "schedule %s step %d: %.9g, torch %.9g\n", SCHEDS[c].name, t, got, want[t]);
      jx_pool_pop();
    }
    CHECKF(bad == 0, "schedule %s: %d of %d values off", SCHEDS[c].name, bad, STEPS);
    jx_schedule_free(s);
  }
  /* constant; a step given as f32, or weakly typed */
  jx_schedule *s = jx_constant_schedule(0.25);
  CHECK(jx_item(jx_schedule_value(s, jx_scalar_int(7))) == 0.25);
  jx_schedule_free(s);
  s = s_piecewise();
  CHECK_CLOSE(jx_item(jx_schedule_value(s, jx_scalar_of(JX_F32, 45))), 0.01, 1e-7, 0);
  jx_schedule_free(s);
}

/* ------------------------------------------------------------ transforms */

typedef struct {
  jx_optimizer *opt;
  jx_fn *grad; /* grad of the loss, for the train step */
} step_ctx;

/* (grads, state, params) -> (new params, new state) */
static jx_t update_body(const jx_t *a, void *u) {
  step_ctx *c = u;
  jx_t r = jx_optim_update(c->opt, a[0], a[1], a[2]);
  return JX_TUPLE(jx_apply_updates(a[2], jx_at(r, 0)), jx_at(r, 1));
}

/* the largest |a - b| / (1 + |b|) over two trees of f32 leaves */
static double tree_diff(jx_t a, jx_t b) {
  if (jx_is_tree(a)) {
    double m = jx_len(a) == jx_len(b) ? 0 : INFINITY;
    for (int i = 0; i < jx_len(a) && i < jx_len(b); i++) m = fmax(m, tree_diff(jx_at(a, i), jx_at(b, i)));
    return m;
  }
  jx_t d = jx_max(jx_div(jx_abs(jx_sub(a, b)), jx_add(jx_abs(b), jx_scalar(1.0))));
  return jx_ok(d) ? jx_item(d) : INFINITY;
}

/* K steps of update_body eagerly and through fn (jitted or not), compared */
static double run_both(jx_optimizer *opt, jx_fn *fn, int K) {
  jx_t p = params0(), s = jx_optim_init(opt, p), pj = p, sj = s;
  double worst = 0;
  step_ctx c = {opt, NULL};
  for (int t = 0; t < K; t++) {
    jx_t g = grads_at(t, 1);
    jx_t e = update_body((jx_t[]){g, s, p}, &c), j = JX_CALL(fn, g, sj, pj);
    if (!jx_ok(e) || !jx_ok(j)) return INFINITY;
    p = jx_at(e, 0), s = jx_at(e, 1), pj = jx_at(j, 0), sj = jx_at(j, 1);
    worst = fmax(worst, fmax(tree_diff(pj, p), tree_diff(jx_at(sj, 0), jx_at(s, 0))));
  }
  return worst;
}

/* jit(update) == update, for every optimizer (the count and the schedule
 * traced), including a jitted function compiled once and reused */
static void test_jit(void) {
  for (int c = 0; c < NCASES; c++) {
    jx_pool_push();
    jx_optimizer *opt = CASES[c].make();
    step_ctx ctx = {opt, NULL};
    jx_fn *f = jx_fn_new(update_body, 3, &ctx), *jf = jx_jit(f);
    double e = run_both(opt, jf, 12);
    CHECKF(e <= 1e-6, "%s: jit(update) differs from update by %.3g", CASES[c].name, e);
    jx_fn_free(jf), jx_fn_free(f);
    jx_optim_free(opt);
    jx_pool_pop();
  }
}

/* trees of the same structure stacked leafwise (jx_stack), and back */
typedef struct {
  jx_t *l;
  int n;
} collected;
static jx_t collect(jx_t x, void *u) {
  collected *c = u;
  c->l[c->n++] = x;
  return x;
}
static jx_t stack_leaf(jx_t a, void *u) {
  collected *s = u; /* s[0]: b's leaves, s[1]: c's; s[0].n counts */
  int i = s[0].n++;
  return jx_stack(3, (jx_t[]){a, s[0].l[i], s[1].l[i]}, 0);
}
static jx_t stack3(jx_t a, jx_t b, jx_t c) {
  jx_t lb[64], lc[64];
  collected s[2] = {{lb, 0}, {lc, 0}};
  jx_tree_map(collect, b, &s[0]), jx_tree_map(collect, c, &s[1]);
  s[0].n = 0;
  return jx_tree_map(stack_leaf, a, s);
}
static jx_t row(jx_t x, void *u) { return jx_take(x, jx_scalar_int(*(int *)u), 0); }

/* vmap(update) over three independent (grads, state, params), each state
 * at a different step count == a loop of updates */
static void test_vmap(void) {
  jx_pool_push();
  jx_optimizer *opt = jx_adamw(s_warmup_cosine(), 0.9, 0.999, 1e-8, 0.1, NULL);
  step_ctx ctx = {opt, NULL};
  jx_fn *f = jx_fn_new(update_body, 3, &ctx), *vf = jx_vmap(f, NULL, 0);
  jx_t ps[3], ss[3], gs[3];
  for (int b = 0; b < 3; b++) {
    ps[b] = params0(), gs[b] = grads_at(b, 1.0 + b), ss[b] = jx_optim_init(opt, ps[b]);
    for (int t = 0; t < 3 * b; t++) ss[b] = jx_at(update_body((jx_t[]){gs[b], ss[b], ps[b]}, &ctx), 1);
  }
  jx_t out =
      JX_CALL(vf, stack3(gs[0], gs[1], gs[2]), stack3(ss[0], ss[1], ss[2]), stack3(ps[0], ps[1], ps[2]));
  CHECKF(jx_ok(out), "%s", jx_error(out));
  for (int b = 0; b < 3 && jx_ok(out); b++) {
    jx_t want = update_body((jx_t[]){gs[b], ss[b], ps[b]}, &ctx), got = jx_tree_map(row, out, &b);
    double e = fmax(tree_diff(jx_at(got, 0), jx_at(want, 0)), tree_diff(jx_at(got, 1), jx_at(want, 1)));
    CHECKF(e <= 1e-6, "vmap(update) row %d differs from update by %.3g", b, e);
  }
  jx_fn_free(vf), jx_fn_free(f);
  jx_optim_free(opt);
  jx_pool_pop();
}

/* A whole training step in one jit: grad of a loss, the optimizer, the
 * update applied; == the same step eagerly, and the loss goes down. */
static jx_t loss_body(const jx_t *a, void *u) { /* (params, x f32[8, 4], y f32[8, 2]) */
  (void)u;
  jx_t h = jx_tanh(jx_add(jx_dot(a[1], leaf(a[0], 0)), leaf(a[0], 1)));
  jx_t d = jx_sub(jx_add(jx_dot(h, leaf(a[0], 2)), leaf(a[0], 3)), a[2]);
  return jx_mean(jx_square(d));
}
static jx_t train_body(const jx_t *a, void *u) { /* (params, state, x, y) -> (params, state) */
  step_ctx *c = u;
  jx_t g = jx_call(c->grad, (jx_t[]){a[0], a[2], a[3]});
  jx_t r = jx_optim_update(c->opt, g, a[1], a[0]);
  return JX_TUPLE(jx_apply_updates(a[0], jx_at(r, 0)), jx_at(r, 1));
}
static void test_train_step(void) {
  jx_pool_push();
  jx_optimizer *opt =
      jx_chain(2, (jx_optimizer *[]){jx_clip_by_global_norm(1.0),
                                     jx_adamw(s_warmup_cosine(), 0.9, 0.999, 1e-8, 0.01, weights_mask())});
  jx_fn *loss = jx_fn_new(loss_body, 3, NULL), *grad = jx_grad(loss, 0);
  step_ctx ctx = {opt, grad};
  jx_fn *body = jx_fn_new(train_body, 4, &ctx), *step = jx_jit(body);
  jx_t key = jx_random_key(3);
  jx_t x = jx_random_normal(jx_random_fold_in(key, 0), JX_F32, JX_SHAPE(8, 4));
  jx_t y = jx_random_normal(jx_random_fold_in(key, 1), JX_F32, JX_SHAPE(8, 2));
  jx_t p = params0(), s = jx_optim_init(opt, p), pe = p, se = s;
  double first = jx_item(JX_CALL(loss, p, x, y)), worst = 0;
  for (int t = 0; t < 30; t++) {
    jx_t j = JX_CALL(step, p, s, x, y), e = train_body((jx_t[]){pe, se, x, y}, &ctx);
    if (!jx_ok(j) || !jx_ok(e)) {
      CHECKF(0, "train step %d: %s", t, jx_error(jx_ok(j) ? e : j));
      break;
    }
    p = jx_at(j, 0), s = jx_at(j, 1), pe = jx_at(e, 0), se = jx_at(e, 1);
    worst = fmax(worst, tree_diff(p, pe));
  }
  double last = jx_item(JX_CALL(loss, p, x, y));
  CHECKF(worst <= 1e-5, "jitted train step differs from eager by %.3g", worst);
  CHECKF(last < 0.5 * first, "loss %.4g -> %.4g: not training", first, last);
  jx_fn_free(step), jx_fn_free(body), jx_fn_free(grad), jx_fn_free(loss);
  jx_optim_free(opt);
  jx_pool_pop();
}

/* ---------------------------------------------------------------- errors */

static void test_errors(void) {
  jx_pool_push();
  jx_t p = params0(), g = grads_at(0, 1);
  jx_optimizer *adam = mk_adam(), *adamw = mk_adamw(), *sgd = mk_momentum();
  jx_t st = jx_optim_init(adam, p);
  /* grads shaped unlike params: the structure, then a leaf's shape */
  jx_t g3 = JX_TUPLE(jx_at(g, 0), jx_at(g, 1), jx_at(g, 1));
  EXPECT_ERROR(jx_optim_update(adam, g3, st, p), "adam", "grads", "params", "structure");
  jx_t gw = JX_LIST(JX_TUPLE(jx_zeros(JX_F32, JX_SHAPE(3, 3)), leaf(g, 1)), jx_at(g, 1));
  EXPECT_ERROR(jx_optim_update(adam, gw, st, p), "adam", "f32[3,3]", "f32[4,3]");
  /* without params, the state is checked against the grads */
  EXPECT_ERROR(jx_optim_update(adam, gw, st, NULL), "adam", "f32[3,3]", "f32[4,3]");
  /* another optimizer's state */
  EXPECT_ERROR(jx_optim_update(adam, g, jx_optim_init(sgd, p), p), "adam", "state");
  EXPECT_ERROR(jx_optim_update(sgd, g, st, p), "sgd", "state");
  EXPECT_ERROR(jx_optim_update(adam, g, jx_tuple(0, NULL), p), "adam", "state");
  /* adamw reads params; its mask must match them */
  EXPECT_ERROR(jx_optim_update(adamw, g, jx_optim_init(adamw, p), NULL), "adamw", "params is NULL");
  jx_t p1 = JX_LIST(jx_at(p, 0)), g1 = JX_LIST(jx_at(g, 0));
  EXPECT_ERROR(jx_optim_update(adamw, g1, jx_optim_init(adamw, p1), p1), "adamw", "mask");
  /* an error value given is returned as it is */
  jx_t err = jx_error_new("upstream failure");
  CHECK(jx_optim_update(adam, err, st, p) == err);
  CHECK(jx_optim_update(adam, JX_LIST(JX_TUPLE(err, leaf(g, 1)), jx_at(g, 1)), st, p) == err);
  CHECK(jx_optim_init(adam, err) == err);
  EXPECT_ERROR(jx_optim_update(NULL, g, st, p), "optimizer", "NULL");
  EXPECT_ERROR(jx_apply_updates(p, g3), "apply_updates", "structure");
  /* bad arguments: an optimizer whose init and update say why */
  jx_optimizer *bad[] = {
      jx_adam(cst(0.1), 1.5, 0.999, 1e-8),
      jx_sgd(NULL, 0, false),
      jx_adam(jx_cosine_decay_schedule(0.1, 0, 0), 0.9, 0.999, 1e-8),
      jx_chain(2, (jx_optimizer *[]){jx_clip_by_global_norm(-1), mk_sgd()}),
      jx_adamw(cst(0.1), 0.9, 0.999, 1e-8, 0.1, JX_LIST(jx_zeros(JX_F32, JX_SCALAR_SHAPE))),
      jx_chain(1, (jx_optimizer *[]){NULL}),
      jx_rmsprop(cst(0.1), 2.0, 1e-8, 0, false),
      jx_lion(jx_piecewise_constant_schedule(0.1, 2, (int64_t[]){5, 3}, (double[]){1, 1}), 0.9, 0.99, 0,
              NULL),
  };
  const char *why[][2] = {{"adam", "b1 1.5"},
                          {"sgd", "schedule is NULL"},
                          {"adam", "decay_steps is 0"},
                          {"chain", "max_norm is -1"},
                          {"adamw", "bool"},
                          {"chain", "NULL"},
                          {"rmsprop", "decay 2"},
                          {"lion", "boundaries must increase"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    EXPECT_ERROR(jx_optim_init(bad[i], p), why[i][0], why[i][1]);
    EXPECT_ERROR(jx_optim_update(bad[i], g, st, p), why[i][0], why[i][1]);
    jx_optim_free(bad[i]);
  }
  jx_schedule *cos = s_cosine();
  EXPECT_ERROR(jx_schedule_value(cos, jx_zeros(JX_F32, JX_SHAPE(2))), "schedule", "f32[2]");
  EXPECT_ERROR(jx_schedule_value(NULL, jx_scalar_int(0)), "schedule", "NULL");
  jx_schedule_free(cos);
  jx_optim_free(adam), jx_optim_free(adamw), jx_optim_free(sgd);
  jx_pool_pop();
}

/* Ownership: constructors take schedules and parts over; retain shares. */
static void test_ownership(void) {
  jx_schedule *s = jx_schedule_retain(s_cosine());
  jx_optimizer *a = jx_adam(s, 0.9, 0.999, 1e-8), *b = jx_sgd(s, 0.9, true); /* each took one reference */
  jx_optimizer *c = jx_chain(2, (jx_optimizer *[]){jx_optim_retain(a), jx_clip_by_global_norm(1)});
  jx_optim_free(a); /* c still holds it */
  jx_pool_push();
  jx_t p = params0(), r = jx_optim_update(c, grads_at(0, 1), jx_optim_init(c, p), p);
  CHECKF(jx_ok(r), "%s", jx_error(r));
  r = jx_optim_update(b, grads_at(0, 1), jx_optim_init(b, p), p);
  CHECKF(jx_ok(r), "%s", jx_error(r));
  /* optax's state layout: adam's is (count, mu, nu) inside the chain's tuple */
  jx_t st = jx_optim_init(a = mk_adam(), p);
  CHECK(jx_len(st) == 2 && jx_len(jx_at(st, 0)) == 3 && jx_dtype_of(jx_at(jx_at(st, 0), 0)) == JX_I32);
  jx_optim_free(a);
  CHECK_CLOSE(jx_item(jx_global_norm(JX_TUPLE(jx_full(JX_F32, JX_SHAPE(4), 1.5), jx_scalar(2.0)))),
              3.60555127, 1e-6, 0);
  jx_pool_pop();
  jx_optim_free(c), jx_optim_free(b);
}

int main(int argc, char **argv) {
  check_verbose = argc > 1 && !strcmp(argv[1], "-v");
  if (check_private_cache("optim")) return 1;
  jx_t all = jx_npz_load("golden/optim.npz", &golden_names);
  if (!jx_ok(all)) {
    fprintf(stderr, "golden/optim.npz: %s\n", jx_error(all));
    return 1;
  }
  golden = jx_retain(all);
  for (int i = 0; i < NLEAF; i++) {
    char key[32];
    snprintf(key, sizeof key, "init_%d", i), init[i] = read_f32(key);
    snprintf(key, sizeof key, "grads_%d", i), grads[i] = read_f32(key);
  }
  test_against_torch();
  test_schedules();
  test_jit();
  test_vmap();
  test_train_step();
  test_errors();
  test_ownership();
  for (int i = 0; i < NLEAF; i++) free(init[i]), free(grads[i]);
  free(golden_names);
  jx_release(golden);
  check_private_cache_remove();
  return check_report("test_optim");
}
