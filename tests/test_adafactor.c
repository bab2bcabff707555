/* Adafactor (src/optim/adafactor.c) against a NumPy reference of
 * optax.adafactor.
 *
 * golden/adafactor.npz (golden/gen_optim.py, `/usr/bin/python3
 * tests/golden/gen_optim.py --adafactor-only`) holds 100-step trajectories
 * of three configurations: optax's defaults on a tree whose 256x130 leaf is
 * factored and whose 4x3, vector and scalar leaves are not; every part
 * (factored 3-d leaf, schedule, momentum, masked weight decay, clipping at
 * 0.5); and the unfactored, unscaled, unclipped form with a decay offset.
 * Parameters and gradients come from an integer hash computed exactly on
 * both sides, so only the results are stored: up to 64 sampled entries of
 * each leaf after every step and each whole leaf after the last.
 *
 * Tolerance: as test_optim.c's, 4e-6 relative to 1 + |p|: both sides
 * compute in f32 by the same formulas, but means are summed in different
 * orders (a few f32 roundings per step on updates of size lr * rms(p)).
 * Also: jit(update) == update, vmap(update) == a loop, a jitted training
 * step (grad + adafactor + apply) == eager, the gradient of a loss through
 * an update == finite differences (f64), lr NULL == lr 1, the state's
 * layout (optax's FactoredState), and error values naming the optimizer. */
#include "check.h"

#include <jx.h>

enum { STEPS = 100, NLEAF = 4 };
static const int64_t TREE_A[NLEAF][4] = {{2, 256, 130}, {2, 4, 3}, {1, 3}, {0}};
static const int64_t TREE_B[NLEAF][4] = {{3, 5, 3, 6}, {2, 4, 3}, {1, 3}, {0}};
/* row i: {ndim, shape...} */

static jx_t golden;
static char **golden_names;

static jx_t G(const char *name) {
  for (int i = 0; i < jx_len(golden); i++)
    if (!strcmp(golden_names[i], name)) return jx_at(golden, i);
  fprintf(stderr, "golden/adafactor.npz has no %s\n", name);
  return jx_error_new("no %s", name);
}

static int64_t size_of(const int64_t *d) {
  int64_t n = 1;
  for (int i = 0; i < d[0]; i++) n *= d[1 + i];
  return n;
}

/* gen_optim.py's af_values: exact in f64, rounded once */
static jx_t hash_leaf(const int64_t *d, int leaf, int salt, int t, jx_dtype dt) {
  int64_t n = size_of(d);
  double *x = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t k = 0; k < n; k++) {
    int64_t h = (k * 40503 + (int64_t)t * 2654435 + leaf * 9176 + salt * 7919 + 12345) % 65521;
    h = (h * h + 3 * h + 17) % 65521;
    double v = (double)h / 65521.0 - 0.5;
    x[k] = (double)(float)(v * (double)(1 + k % 5) * (double)(1 + (k / 13) % 3));
  }
  jx_t r = jx_astype(jx_array(JX_F64, (int)d[0], d + 1, x), dt);
  free(x);
  return r;
}
static jx_t tree_of(const int64_t (*tr)[4], int salt, int t, double scale, jx_dtype dt) {
  jx_t l[NLEAF];
  for (int i = 0; i < NLEAF; i++) l[i] = jx_mul(hash_leaf(tr[i], i, salt, t, dt), jx_scalar_of(dt, scale));
  return jx_tuple(NLEAF, l);
}
static jx_t params_of(const int64_t (*tr)[4], jx_dtype dt) { return tree_of(tr, 1, 0, 2, dt); }
static jx_t grads_of(const int64_t (*tr)[4], int t, jx_dtype dt) { return tree_of(tr, 2, t, 1, dt); }

static jx_t mask_b(void) {
  jx_t t = jx_scalar_of(JX_BOOL, 1), f = jx_scalar_of(JX_BOOL, 0);
  return JX_TUPLE(t, t, f, f);
}

/* the cases of gen_optim.py's AF_CASES */
static jx_optimizer *mk_default(void) { return jx_adafactor(jx_constant_schedule(0.01), NULL); }
static jx_optimizer *mk_full(void) {
  jx_adafactor_options o = jx_adafactor_defaults();
  o.min_dim_size_to_factor = 3, o.decay_rate = 0.7, o.clipping_threshold = 0.5, o.momentum = 0.9;
  o.weight_decay_rate = 0.01;
  jx_pool_push();
  o.weight_decay_mask = mask_b(); /* retained by the optimizer */
  jx_optimizer *r = jx_adafactor(jx_cosine_decay_schedule(0.05, 100, 0.1), &o);
  jx_pool_pop();
  return r;
}
static jx_optimizer *mk_plain(void) {
  jx_adafactor_options o = jx_adafactor_defaults();
  o.factored = false, o.multiply_by_parameter_scale = false, o.clipping_threshold = 0;
  o.decay_offset = 5, o.eps = 1e-3;
  return jx_adafactor(jx_constant_schedule(0.01), &o);
}

static const struct {
  const char *name;
  jx_optimizer *(*make)(void);
  const int64_t (*tree)[4];
} CASES[] = {
    {"adafactor", mk_default, TREE_A},
    {"adafactor_full", mk_full, TREE_B},
    {"adafactor_plain", mk_plain, TREE_B},
};
enum { NCASES = sizeof CASES / sizeof CASES[0] };

#define TOL 4e-6

/* "f32[130]", as errors print avals */
static void aval_str(jx_t x, char *b, size_t n) {
  int k = snprintf(b, n, "%s[", jx_dtype_name(jx_dtype_of(x)));
  for (int i = 0; i < jx_ndim(x) && k > 0 && (size_t)k < n; i++)
    k += snprintf(b + k, n - (size_t)k, "%s%lld", i ? "," : "", (long long)jx_shape(x)[i]);
  if (k > 0 && (size_t)k < n) snprintf(b + k, n - (size_t)k, "]");
}

static double rel(double got, double want) { return fabs(got - want) / (1 + fabs(want)); }

/* the worst error of leaf i of params at step t against the golden rows */
static double leaf_error(jx_t p, const char *name, int i, int t, bool last) {
  char key[96];
  snprintf(key, sizeof key, "%s_%d_idx", name, i);
  jx_t idx = G(key);
  int64_t n = jx_size(p), m = jx_ok(idx) ? jx_size(idx) : 0;
  float *got = malloc(sizeof(float) * (size_t)n), *want = malloc(sizeof(float) * (size_t)(n > 64 ? n : 64));
  int64_t ix[64];
  snprintf(key, sizeof key, "%s_%d", name, i);
  jx_t rows = G(key);
  double worst = INFINITY;
  if (m > 0 && m <= 64 &&
      !jx_read(jx_reshape(p, 1, (int64_t[]){n}), JX_F32, got, sizeof(float) * (size_t)n) &&
      !jx_read(idx, JX_I64, ix, sizeof(int64_t) * (size_t)m) &&
      !jx_read(jx_take(rows, jx_scalar_int(t), 0), JX_F32, want, sizeof(float) * (size_t)m)) {
    worst = 0;
    for (int64_t k = 0; k < m; k++) worst = fmax(worst, rel(got[ix[k]], want[k]));
    snprintf(key, sizeof key, "%s_%d_final", name, i);
    if (last && jx_read(jx_reshape(G(key), 1, (int64_t[]){n}), JX_F32, want, sizeof(float) * (size_t)n))
      worst = INFINITY;
    for (int64_t k = 0; last && k < n; k++) worst = fmax(worst, rel(got[k], want[k]));
  }
  if (!(worst <= worst)) worst = INFINITY; /* NaN */
  free(got), free(want);
  return worst;
}

static void test_against_reference(void) {
  for (int c = 0; c < NCASES; c++) {
    jx_optimizer *opt = CASES[c].make();
    jx_t params = jx_retain(params_of(CASES[c].tree, JX_F32));
    jx_t state = jx_retain(jx_optim_init(opt, params));
    bool ok = jx_ok(state);
    double worst = 0;
    int worst_t = 0;
    for (int t = 0; t < STEPS && ok; t++) {
      jx_pool_push();
      jx_t r = jx_optim_update(opt, grads_of(CASES[c].tree, t, JX_F32), state, params);
      jx_t np = jx_apply_updates(params, jx_at(r, 0));
      ok = jx_ok(np) && jx_ok(jx_at(r, 1));
      if (!ok) fprintf(stderr, "%s step %d: %s\n", CASES[c].name, t, jx_error(jx_ok(r) ? np : r));
      for (int i = 0; i < NLEAF && ok; i++) {
        double e = leaf_error(jx_at(np, i), CASES[c].name, i, t, t == STEPS - 1);
        if (!(e <= worst)) worst = e, worst_t = t;
      }
      jx_t kp = jx_retain(np), ks = jx_retain(jx_at(r, 1));
      jx_pool_pop();
      jx_release(params), jx_release(state);
      params = kp, state = ks;
    }
    if (check_verbose) printf("  %-16s max error %.3g (step %d)\n", CASES[c].name, worst, worst_t);
    CHECKF(ok && worst <= TOL, "%s: error %.3g at step %d (bound %g)", CASES[c].name, worst, worst_t, TOL);
    jx_release(params), jx_release(state);
    jx_optim_free(opt);
  }
}

/* ---------------------------------------------------------- transformations */

typedef struct {
  jx_optimizer *opt;
  jx_fn *grad;
} step_ctx;

static jx_t update_body(const jx_t *a, void *u) { /* (grads, state, params) -> (params, state) */
  step_ctx *c = u;
  jx_t r = jx_optim_update(c->opt, a[0], a[1], a[2]);
  return JX_TUPLE(jx_apply_updates(a[2], jx_at(r, 0)), jx_at(r, 1));
}

/* the largest |a - b| / (1 + |b|) over two trees (count leaves included) */
static double tree_diff(jx_t a, jx_t b) {
  if (jx_is_tree(a) || jx_is_tree(b)) {
    double m = jx_len(a) == jx_len(b) ? 0 : INFINITY;
    for (int i = 0; i < jx_len(a) && i < jx_len(b); i++) m = fmax(m, tree_diff(jx_at(a, i), jx_at(b, i)));
    return m;
  }
  jx_t d = jx_max(jx_div(jx_abs(jx_sub(jx_astype(a, JX_F64), jx_astype(b, JX_F64))),
                         jx_add(jx_abs(jx_astype(b, JX_F64)), jx_scalar(1.0))));
  double v = jx_ok(d) ? jx_item(d) : INFINITY;
  return v <= v ? v : INFINITY;
}

/* jit(update) == update over 12 steps, every case (params and state) */
static void test_jit(void) {
  for (int c = 0; c < NCASES; c++) {
    jx_pool_push();
    jx_optimizer *opt = CASES[c].make();
    step_ctx ctx = {opt, NULL};
    jx_fn *jf = jx_jit(jx_fn_new(update_body, 3, &ctx));
    jx_t p = params_of(CASES[c].tree, JX_F32), s = jx_optim_init(opt, p), pj = p, sj = s;
    double worst = 0;
    jx_t keep = NULL;
    for (int t = 0; t < 12; t++) {
      jx_pool_push();
      jx_t g = grads_of(CASES[c].tree, t, JX_F32);
      jx_t e = update_body((jx_t[]){g, s, p}, &ctx), j = JX_CALL(jf, g, sj, pj);
      worst = fmax(worst, jx_ok(e) && jx_ok(j) ? tree_diff(j, e) : INFINITY);
      jx_t k = jx_retain(JX_TUPLE(e, j));
      jx_pool_pop();
      if (keep) jx_release(keep);
      keep = k;
      p = jx_at(jx_at(k, 0), 0), s = jx_at(jx_at(k, 0), 1), pj = jx_at(jx_at(k, 1), 0),
      sj = jx_at(jx_at(k, 1), 1);
    }
    jx_release(keep);
    CHECKF(worst <= 1e-6, "%s: jit(update) differs from update by %.3g", CASES[c].name, worst);
    jx_optim_free(opt);
    jx_pool_pop();
  }
}

static jx_t row(jx_t x, void *u) { return jx_take(x, jx_scalar_int(*(int *)u), 0); }
static jx_t stack_leaves(jx_t a, jx_t b, void *u) {
  (void)u;
  return jx_stack(2, (jx_t[]){a, b}, 0);
}

/* vmap(update) over two (grads, state, params), the second a few steps on
 * == each update alone: the factoring follows the unbatched leaf shapes */
static void test_vmap(void) {
  jx_pool_push();
  jx_optimizer *opt = mk_full();
  step_ctx ctx = {opt, NULL};
  jx_fn *vf = jx_vmap(jx_fn_new(update_body, 3, &ctx), NULL, 0);
  jx_t ps[2], ss[2], gs[2];
  for (int b = 0; b < 2; b++) {
    ps[b] = params_of(TREE_B, JX_F32), gs[b] = grads_of(TREE_B, 7 + b, JX_F32),
    ss[b] = jx_optim_init(opt, ps[b]);
    for (int t = 0; t < 3 * b; t++) {
      jx_t r = update_body((jx_t[]){grads_of(TREE_B, t, JX_F32), ss[b], ps[b]}, &ctx);
      ps[b] = jx_at(r, 0), ss[b] = jx_at(r, 1);
    }
  }
  jx_t out =
      JX_CALL(vf, jx_tree_map2(stack_leaves, gs[0], gs[1], NULL),
              jx_tree_map2(stack_leaves, ss[0], ss[1], NULL), jx_tree_map2(stack_leaves, ps[0], ps[1], NULL));
  CHECKF(jx_ok(out), "vmap(update): %s", jx_error(out));
  for (int b = 0; b < 2 && jx_ok(out); b++) {
    jx_t want = update_body((jx_t[]){gs[b], ss[b], ps[b]}, &ctx), got = jx_tree_map(row, out, &b);
    double e = tree_diff(got, want);
    CHECKF(e <= 1e-6, "vmap(update) row %d differs from update by %.3g", b, e);
  }
  jx_optim_free(opt);
  jx_pool_pop();
}

/* loss of tree B's params on a fixed target: a smooth function of every leaf */
static jx_t loss_body(const jx_t *a, void *u) {
  (void)u;
  jx_t l = jx_scalar(0.0);
  for (int i = 0; i < NLEAF; i++) {
    jx_t p = jx_at(a[0], i);
    l = jx_add(l, jx_sum(jx_square(jx_sub(jx_tanh(p), jx_scalar(0.25)))));
  }
  return l;
}
static jx_t train_body(const jx_t *a, void *u) { /* (params, state) -> (params, state) */
  step_ctx *c = u;
  jx_t r = jx_optim_update(c->opt, jx_call(c->grad, a), a[1], a[0]);
  return JX_TUPLE(jx_apply_updates(a[0], jx_at(r, 0)), jx_at(r, 1));
}

/* a jitted training step (grad inside) == eager, and it trains */
static void test_train_step(void) {
  jx_pool_push();
  jx_optimizer *opt = mk_full();
  jx_fn *loss = jx_fn_new(loss_body, 1, NULL);
  step_ctx ctx = {opt, jx_grad(loss, 0)};
  jx_fn *step = jx_jit(jx_fn_new(train_body, 2, &ctx));
  jx_t p = params_of(TREE_B, JX_F32), s = jx_optim_init(opt, p), pe = p, se = s;
  double first = jx_item(JX_CALL(loss, p)), worst = 0;
  for (int t = 0; t < 40; t++) {
    jx_t j = JX_CALL(step, p, s), e = train_body((jx_t[]){pe, se}, &ctx);
    if (!jx_ok(j) || !jx_ok(e)) {
      CHECKF(0, "train step %d: %s", t, jx_error(jx_ok(j) ? e : j));
      break;
    }
    p = jx_at(j, 0), s = jx_at(j, 1), pe = jx_at(e, 0), se = jx_at(e, 1);
    worst = fmax(worst, tree_diff(p, pe));
  }
  double last = jx_item(JX_CALL(loss, p));
  CHECKF(worst <= 1e-5, "jitted adafactor train step differs from eager by %.3g", worst);
  CHECKF(last < 0.8 * first, "loss %.4g -> %.4g: not training", first, last);
  jx_optim_free(opt);
  jx_pool_pop();
}

/* d/dp of sum(apply_updates(p, update(sin(p)))^2) after 2 warm steps,
 * through every part (rsqrt of the statistics, the means, the clip's max,
 * the parameter rms's where, the decay terms): against central
 * differences, in f64 */
static jx_optimizer *meta_opt;
static jx_t meta_state;
static jx_t meta_body(const jx_t *a, void *u) {
  (void)u;
  jx_t gl[NLEAF];
  for (int i = 0; i < NLEAF; i++) gl[i] = jx_sin(jx_at(a[0], i));
  jx_t r = jx_optim_update(meta_opt, jx_tuple(NLEAF, gl), meta_state, a[0]);
  jx_t np = jx_apply_updates(a[0], jx_at(r, 0)), l = jx_scalar_of(JX_F64, 0);
  for (int i = 0; i < NLEAF; i++) l = jx_add(l, jx_sum(jx_square(jx_at(np, i))));
  return l;
}
/* p with h added to entry k of leaf i, and that entry of tree t */
static jx_t perturb(jx_t p, int i, int64_t k, double h) {
  jx_t l[NLEAF];
  for (int j = 0; j < NLEAF; j++) l[j] = jx_at(p, j);
  int64_t n = jx_size(l[i]);
  double *x = malloc(sizeof(double) * (size_t)n);
  jx_read(l[i], JX_F64, x, sizeof(double) * (size_t)n);
  x[k] += h;
  l[i] = jx_array(JX_F64, jx_ndim(l[i]), jx_shape(l[i]), x);
  free(x);
  return jx_tuple(NLEAF, l);
}
static double entry(jx_t t, int i, int64_t k) {
  jx_t x = jx_reshape(jx_at(t, i), 1, (int64_t[]){-1});
  return jx_item(jx_take(x, jx_scalar_int(k), 0));
}
static void test_grad_through(void) {
  jx_pool_push();
  meta_opt = mk_full();
  jx_t p = params_of(TREE_B, JX_F64);
  meta_state = jx_optim_init(meta_opt, p);
  for (int t = 0; t < 2; t++)
    meta_state = jx_at(jx_optim_update(meta_opt, grads_of(TREE_B, t, JX_F64), meta_state, p), 1);
  jx_fn *f = jx_fn_new(meta_body, 1, NULL);
  jx_t g = JX_CALL(jx_grad(f, 0), p);
  CHECKF(jx_ok(g), "grad through adafactor: %s", jx_error(g));
  double worst = 0, h = 1e-6;
  int checked = 0;
  for (int i = 0; i < NLEAF && jx_ok(g); i++) {
    int64_t n = jx_size(jx_at(p, i));
    for (int64_t k = 0; k<n; k += n> 8 ? 7 : 1, checked++) {
      double fd =
          (jx_item(JX_CALL(f, perturb(p, i, k, h))) - jx_item(JX_CALL(f, perturb(p, i, k, -h)))) / (2 * h);
      double e = fabs(fd - entry(g, i, k)) / (1 + fabs(fd));
      worst = e <= worst ? worst : e;
    }
  }
  CHECKF(worst <= 1e-6, "grad through adafactor differs from finite differences by %.3g (%d entries)", worst,
         checked);
  jx_optim_free(meta_opt);
  jx_pool_pop();
}

/* ------------------------------------------------------------ the rest */

/* optax's defaults; the chain of 5 parts (factored rms, clip, lr, param
 * scale, scale(-1)) and FactoredState's layout; lr NULL (optax's None) is the
 * same as a learning rate of 1 */
static void test_layout_defaults(void) {
  jx_adafactor_options d = jx_adafactor_defaults();
  CHECK(d.factored && d.decay_rate == 0.8 && d.decay_offset == 0 && d.min_dim_size_to_factor == 128 &&
        d.eps == 1e-30 && d.multiply_by_parameter_scale && d.clipping_threshold == 1.0 && d.momentum == 0 &&
        d.weight_decay_rate == 0 && !d.weight_decay_mask && !d.weight_decay_mask_fn);
  jx_pool_push();
  jx_optimizer *o = mk_default();
  jx_t p = params_of(TREE_A, JX_F32), st = jx_optim_init(o, p), f = jx_at(st, 0);
  char b[4][3][32];
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < NLEAF; i++) aval_str((jx_at(jx_at(f, k + 1), i)), b[i][k], 32);
  CHECKF(jx_len(st) == 5 && jx_len(f) == 4 && jx_dtype_of(jx_at(f, 0)) == JX_I32, "state %s", jx_error(st));
  /* v_row drops the largest axis (256), v_col the second (130) */
  CHECKF(!strcmp(b[0][0], "f32[130]") && !strcmp(b[0][1], "f32[256]") && !strcmp(b[0][2], "f32[1]"),
         "W: %s %s %s", b[0][0], b[0][1], b[0][2]);
  CHECKF(!strcmp(b[1][0], "f32[1]") && !strcmp(b[1][2], "f32[4,3]") && !strcmp(b[3][2], "f32[]"),
         "M: %s %s, s: %s", b[1][0], b[1][2], b[3][2]);
  jx_adafactor_options full = jx_adafactor_defaults();
  full.min_dim_size_to_factor = 3;
  jx_optimizer *o3 = jx_adafactor(NULL, &full);
  jx_t t3 = jx_at(jx_at(jx_optim_init(o3, params_of(TREE_B, JX_F32)), 0), 1);
  char vr[32];
  aval_str((jx_at(t3, 0)), vr, sizeof vr); /* 5x3x6: axes 2 (6) and 0 (5) factored */
  CHECKF(!strcmp(vr, "f32[5,3]"), "5x3x6's v_row is %s", vr);
  /* ties: the later of two equal axes is the larger (NumPy's stable argsort): 6x4x6 factors axes 2 and 0 */
  jx_t t6 = jx_at(jx_at(jx_optim_init(o3, jx_zeros(JX_F32, JX_SHAPE(6, 4, 6))), 0), 1);
  aval_str(t6, vr, sizeof vr);
  CHECKF(!strcmp(vr, "f32[6,4]"), "6x4x6's v_row is %s", vr);
  /* lr NULL == lr 1, bit for bit */
  jx_optimizer *one = jx_adafactor(jx_constant_schedule(1.0), &full);
  jx_t pb = params_of(TREE_B, JX_F32), gb = grads_of(TREE_B, 0, JX_F32);
  jx_t u0 = jx_at(jx_optim_update(o3, gb, jx_optim_init(o3, pb), pb), 0);
  jx_t u1 = jx_at(jx_optim_update(one, gb, jx_optim_init(one, pb), pb), 0);
  CHECKF(jx_ok(u0) && tree_diff(u0, u1) == 0, "lr NULL differs from lr 1: %s", jx_error(u0));
  jx_optim_free(o), jx_optim_free(o3), jx_optim_free(one);
  jx_pool_pop();
}

static jx_t mask_fn_body(const jx_t *a, void *u) {
  (void)a, (void)u;
  return mask_b();
}

static void test_errors(void) {
  jx_pool_push();
  jx_t pa = params_of(TREE_A, JX_F32), pb = params_of(TREE_B, JX_F32), gb = grads_of(TREE_B, 0, JX_F32);
  jx_optimizer *o = mk_full();
  jx_t sb = jx_optim_init(o, pb);
  /* another tree's state: a leaf's statistics of the wrong shape */
  jx_optimizer *o3 = mk_full();
  jx_t sa = jx_optim_init(o3, pa);
  EXPECT_ERROR(jx_optim_update(o, gb, sa, pb), "adafactor", "v_row", "f32[5,3,6]");
  jx_t items[8], f = jx_at(sb, 0); /* v_row and v_col swapped */
  for (int i = 0; i < jx_len(sb) && i < 8; i++) items[i] = jx_at(sb, i);
  items[0] = JX_TUPLE(jx_at(f, 0), jx_at(f, 2), jx_at(f, 1), jx_at(f, 3));
  jx_t sw = jx_tuple(jx_len(sb), items);
  EXPECT_ERROR(jx_optim_update(o, gb, sw, pb), "adafactor", "v_row", "should have shape [5,3]");
  jx_optimizer *adam = jx_adam(jx_constant_schedule(0.1), 0.9, 0.999, 1e-8);
  EXPECT_ERROR(jx_optim_update(o, gb, jx_optim_init(adam, pb), pb), "adafactor", "state");
  /* params needed by the parameter scale and the weight decay */
  EXPECT_ERROR(jx_optim_update(o, gb, sb, NULL), "adafactor", "params is NULL");
  /* integer gradients */
  jx_t gi = JX_TUPLE(jx_zeros(JX_I32, JX_SHAPE(5, 3, 6)), jx_at(gb, 1), jx_at(gb, 2), jx_at(gb, 3));
  jx_t pi = JX_TUPLE(jx_zeros(JX_I32, JX_SHAPE(5, 3, 6)), jx_at(pb, 1), jx_at(pb, 2), jx_at(pb, 3));
  EXPECT_ERROR(jx_optim_update(o, gi, jx_optim_init(o, pi), pi), "adafactor", "i32[5,3,6]", "float");
  /* bad hyperparameters: objects whose init and update say why */
  jx_adafactor_options bad[8];
  for (int i = 0; i < 8; i++) bad[i] = jx_adafactor_defaults();
  bad[0].decay_rate = -1, bad[1].eps = NAN, bad[2].min_dim_size_to_factor = -2,
  bad[3].clipping_threshold = -1;
  bad[4].momentum = 1.5, bad[5].weight_decay_rate = INFINITY, bad[6].decay_offset = (int64_t)1 << 40;
  bad[7].weight_decay_rate = 0.1, bad[7].weight_decay_mask = mask_b();
  bad[7].weight_decay_mask_fn = jx_fn_new(mask_fn_body, 1, NULL);
  const char *why[8][2] = {{"scale_by_factored_rms", "decay_rate -1"},
                           {"scale_by_factored_rms", "epsilon nan"},
                           {"scale_by_factored_rms", "min_dim_size_to_factor is -2"},
                           {"clip_by_block_rms", "threshold is -1"},
                           {"ema", "decay is 1.5"},
                           {"add_decayed_weights", "inf"},
                           {"scale_by_factored_rms", "step_offset"},
                           {"add_decayed_weights", "both"}};
  for (int i = 0; i < 8; i++) {
    jx_optimizer *b = jx_adafactor(jx_constant_schedule(0.1), &bad[i]);
    EXPECT_ERROR(jx_optim_init(b, pb), "adafactor", why[i][0], why[i][1]);
    EXPECT_ERROR(jx_optim_update(b, gb, sb, pb), "adafactor", why[i][0], why[i][1]);
    jx_optim_free(b);
  }
  jx_optimizer *parts[] = {jx_scale_by_factored_rms(true, NAN, 0, 128, 1e-30), jx_clip_by_block_rms(0),
                           jx_scale_by_param_block_rms(-1), jx_ema(NAN, true), jx_scale(INFINITY)};
  const char *pname[] = {"scale_by_factored_rms", "clip_by_block_rms", "scale_by_param_block_rms", "ema",
                         "scale"};
  for (int i = 0; i < 5; i++) {
    EXPECT_ERROR(jx_optim_init(parts[i], pb), pname[i]);
    jx_optim_free(parts[i]);
  }
  /* a bad schedule is named too; an error value given is returned as is */
  jx_optimizer *bs = jx_adafactor(jx_cosine_decay_schedule(0.1, 0, 0), NULL);
  EXPECT_ERROR(jx_optim_init(bs, pb), "adafactor", "decay_steps is 0");
  jx_t err = jx_error_new("upstream");
  CHECK(jx_optim_update(o, JX_TUPLE(err, jx_at(gb, 1), jx_at(gb, 2), jx_at(gb, 3)), sb, pb) == err);
  jx_optim_free(bs), jx_optim_free(adam), jx_optim_free(o), jx_optim_free(o3);
  jx_pool_pop();
}

/* ema with debias (optax.ema's bias correction): a constant input comes
 * out unchanged from the first step */
static void test_ema(void) {
  jx_pool_push();
  jx_optimizer *e = jx_ema(0.9, true), *n = jx_ema(0.9, false);
  jx_t x = jx_full(JX_F32, JX_SHAPE(3), 2.0), se = jx_optim_init(e, x), sn = jx_optim_init(n, x);
  for (int t = 0; t < 3; t++) {
    jx_t re = jx_optim_update(e, x, se, NULL), rn = jx_optim_update(n, x, sn, NULL);
    CHECK_CLOSE(jx_item(jx_max(jx_at(re, 0))), 2.0, 1e-6, 0);
    CHECK_CLOSE(jx_item(jx_max(jx_at(rn, 0))), 2.0 * (1 - pow(0.9, t + 1)), 1e-6, 0);
    se = jx_at(re, 1), sn = jx_at(rn, 1);
  }
  jx_optim_free(e), jx_optim_free(n);
  jx_pool_pop();
}

int main(int argc, char **argv) {
  check_verbose = argc > 1 && !strcmp(argv[1], "-v");
  if (check_private_cache("adafactor")) return 1;
  jx_t all = jx_npz_load("golden/adafactor.npz", &golden_names);
  if (!jx_ok(all)) {
    fprintf(stderr, "golden/adafactor.npz: %s\n", jx_error(all));
    return 1;
  }
  golden = jx_retain(all);
  test_against_reference();
  test_jit();
  test_vmap();
  test_train_step();
  test_grad_through();
  test_layout_defaults();
  test_errors();
  test_ema();
  jx_free_string(golden_names);
  jx_release(golden);
  check_private_cache_remove();
  return check_report("test_adafactor");
}
