/* Adafactor (Shazeer & Stern 2018) as optax composes it, and its parts:
 *
 *   adafactor(lr, o) = chain(scale_by_factored_rms(factored, decay_rate, decay_offset,
 *                                                  min_dim_size_to_factor, eps),
 *                            [clip_by_block_rms(clipping_threshold)],
 *                            [scale_by_learning_rate(lr, flip_sign=False)],
 *                            [scale_by_param_block_rms(1e-3)],
 *                            [ema(momentum, debias=False)],
 *                            [add_decayed_weights(weight_decay_rate, mask)],
 *                            scale(-1))
 *
 * (the bracketed parts only when enabled). Per-step scalars (the second
 * moment's decay) are computed in f64 and rounded once to each leaf's
 * dtype, as in transforms.c; the rest is computed in the leaf's dtype. */
#include "optim/optim.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static jx_t as_leaf(jx_t scalar, jx_t leaf) { return jx_astype(scalar, jx_dtype_of(leaf)); }
static jx_t w(double v) { return jx_scalar(v); }
static jx_t empty_init(const jx_optimizer *o, jx_t params) {
  (void)o, (void)params;
  return jx_tuple(0, NULL);
}
static bool finite_nonneg(double v) { return v >= 0 && isfinite(v); }

/* ------------------------------------------------------ scale_by_factored_rms */

/* optax's _factored_dims: the largest axis (d0, reduced for v_row) and the
 * second largest (d1, reduced for v_col), ties going to the later axis as
 * NumPy's argsort of a short shape orders them; factored only when ndim >= 2,
 * the transformation is factored and the second largest size is at least
 * min_dim_size_to_factor. Empty leaves are never factored (their means would
 * be NaN). */
static bool factored_dims(const jx_optimizer *o, int nd, const int64_t *s, int *d0, int *d1) {
  if (!o->flag || nd < 2) return false;
  int a = -1, b = -1;
  for (int i = 0; i < nd; i++) {
    if (s[i] == 0) return false;
    if (a < 0 || s[i] >= s[a])
      b = a, a = i;
    else if (b < 0 || s[i] >= s[b])
      b = i;
  }
  if (s[b] < o->ih[1]) return false;
  *d0 = a, *d1 = b;
  return true;
}

/* The shapes of a leaf's (v_row, v_col, v) for a parameter of shape s:
 * the shape without d0, without d1, and (1,) placeholders (optax's). */
typedef struct {
  int nd[3];
  int64_t s[3][JX_MAX_RANK];
} frms_shapes;
static frms_shapes state_shapes(const jx_optimizer *o, int nd, const int64_t *s) {
  frms_shapes r = {.nd = {1, 1, 1}, .s = {{1}, {1}, {1}}};
  int d[2];
  if (!factored_dims(o, nd, s, &d[0], &d[1])) {
    r.nd[2] = nd;
    memcpy(r.s[2], s, sizeof(int64_t) * (size_t)nd);
    return r;
  }
  for (int k = 0; k < 2; k++) {
    r.nd[k] = 0;
    for (int i = 0; i < nd; i++)
      if (i != d[k]) r.s[k][r.nd[k]++] = s[i];
  }
  return r;
}

/* The state's dtype: the parameter's when it is a float, else f32 */
static jx_dtype state_dtype(jx_t p) {
  jx_dtype d = jx_dtype_of(p);
  return jx_dtype_is_float(d) ? d : JX_F32;
}

static jx_t frms_init_leaf(const jx_optimizer *o, jx_t p) {
  frms_shapes sh = state_shapes(o, jx_ndim(p), jx_shape(p));
  jx_dtype d = state_dtype(p);
  return JX_TUPLE(jx_zeros(d, sh.nd[0], sh.s[0]), jx_zeros(d, sh.nd[1], sh.s[1]),
                  jx_zeros(d, sh.nd[2], sh.s[2]));
}

/* Leaves of `n` trees, all shaped like the first (checked by the caller),
 * in one block: leaf l of tree i at [i * nleaves + l]. NULL on OOM. */
static jx_t *leaves_of(int n, const jx_t *trees, int *nleaves) {
  int nl = jx_tree_leaves_to(trees[0], NULL, 0);
  jx_t *b = jx_malloc(sizeof(jx_t) * (size_t)(nl ? nl : 1) * (size_t)n);
  for (int i = 0; b && i < n; i++) jx_tree_leaves_to(trees[i], b + (size_t)i * (size_t)nl, nl);
  *nleaves = nl;
  return b;
}

/* (count, v_row, v_col, v): the count 0 and, per leaf, the factored
 * statistics or the full second moment (optax's FactoredState) */
static jx_t frms_init(const jx_optimizer *o, jx_t params) {
  int n;
  jx_t *l = leaves_of(1, &params, &n), st[3];
  jx_t *out = l ? jx_malloc(sizeof(jx_t) * (size_t)(n ? n : 1) * 3) : NULL;
  if (!out) {
    jx_free(l);
    return jx_error_new("%s init: out of memory", o->name);
  }
  for (int i = 0; i < n; i++) {
    jx_t t = frms_init_leaf(o, l[i]);
    for (int k = 0; k < 3; k++) out[(size_t)k * (size_t)n + (size_t)i] = jx_at(t, k);
  }
  for (int k = 0; k < 3; k++) st[k] = jx_tree_build(params, out + (size_t)k * (size_t)n);
  jx_free(l), jx_free(out);
  return JX_TUPLE(jx_scalar_of(JX_I32, 0), st[0], st[1], st[2]);
}

/* A state leaf of the wrong shape: an error naming the optimizer, the
 * statistic, both shapes and the gradient's. */
static jx_t check_stat(const jx_optimizer *o, const char *what, int i, jx_t v, int nd, const int64_t *s,
                       jx_t g) {
  if (!jx_is_tree(v) && jx_ndim(v) == nd && !memcmp(jx_shape(v), s, sizeof(int64_t) * (size_t)nd))
    return NULL;
  char got[96] = "a tree", want[96] = "[", gs[96];
  if (!jx_is_tree(v)) jx_aval_str(jx_aval_of(v), got, sizeof got);
  for (int k = 0; k < nd; k++)
    snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", k ? "," : "", (long long)s[k]);
  jx_aval_str(jx_aval_of(g), gs, sizeof gs);
  return jx_error_new("%s: leaf %d of %s is %s, should have shape %s] for a gradient %s", o->name, i, what,
                      got, want, gs);
}

typedef struct {
  jx_t decay, keep; /* f64 0-d: the step's decay_rate_t and 1 - decay_rate_t */
} frms_ctx;

/* g, v_row, v_col, v -> update, v_row, v_col, v (optax's _update) */
static void frms_leaf(const jx_optimizer *o, const frms_ctx *c, const jx_t *in, jx_t *out) {
  jx_t g = in[0], b = as_leaf(c->decay, g), a = as_leaf(c->keep, g);
  jx_t gs = jx_add(jx_square(g), w(o->h[1]));
  int d0, d1;
  memcpy(out + 1, in + 1, sizeof(jx_t) * 3); /* the placeholders pass through */
  if (!factored_dims(o, jx_ndim(g), jx_shape(g), &d0, &d1)) {
    out[3] = jx_add(jx_mul(b, in[3]), jx_mul(a, gs));
    out[0] = jx_mul(g, jx_rsqrt(out[3]));
    return;
  }
  jx_t vr = jx_add(jx_mul(b, in[1]), jx_mul(a, jx_mean_axes(gs, 1, &d0, false)));
  jx_t vc = jx_add(jx_mul(b, in[2]), jx_mul(a, jx_mean_axes(gs, 1, &d1, false)));
  int r1 = d1 > d0 ? d1 - 1 : d1; /* d1 in v_row, which lacks d0 */
  jx_t row = jx_rsqrt(jx_div(vr, jx_mean_axes(vr, 1, &r1, true)));
  out[0] = jx_mul(jx_mul(g, jx_expand_dims(row, d0)), jx_expand_dims(jx_rsqrt(vc), d1));
  out[1] = vr, out[2] = vc;
}

/* decay_rate_t = 1 - t^-decay_rate at t = count - offset + 1 (optax's
 * _decay_rate_pow), in f64. Before the offset step (t < 1, where optax's
 * formula gives inf or NaN) t is held at 1: decay 0, the statistics are
 * the current gradient's, as at a fresh start. */
static frms_ctx frms_decay(const jx_optimizer *o, jx_t count) {
  jx_t t = jx_sub(jx_astype(count, JX_F64), jx_scalar_of(JX_F64, (double)o->ih[0]));
  t = jx_add(jx_maximum(t, jx_scalar_of(JX_F64, 0)), jx_scalar_of(JX_F64, 1));
  jx_t keep = jx_exp(jx_mul(jx_log(t), jx_scalar_of(JX_F64, -o->h[0])));
  return (frms_ctx){jx_sub(jx_scalar_of(JX_F64, 1), keep), keep};
}

static jx_t frms_check(const jx_optimizer *o, jx_t grads, jx_t state) {
  jx_t e = jx_optim_check_state(o, state, 4, "(count, v_row, v_col, v)");
  if (!e) e = jx_optim_check_state(o, jx_at(state, 0), -1, "a step count (i32[]) first");
  static const char *names[3] = {"v_row", "v_col", "v"};
  for (int k = 0; k < 3 && !e; k++)
    if (!jx_tree_same_structure(jx_at(state, k + 1), grads))
      e = jx_error_new("%s: %s and grads have different tree structures (%d and %d leaves)", o->name,
                       names[k], jx_tree_leaves_to(jx_at(state, k + 1), NULL, 0),
                       jx_tree_leaves_to(grads, NULL, 0));
  return e;
}

static jx_t frms_leaves(const jx_optimizer *o, jx_t grads, jx_t state, jx_t *l, int n) {
  static const char *names[3] = {"v_row", "v_col", "v"};
  frms_ctx c = frms_decay(o, jx_at(state, 0));
  jx_t in[4], out[4], e = NULL;
  for (int i = 0; i < n && !e; i++) {
    for (int k = 0; k < 4; k++) in[k] = l[(size_t)k * (size_t)n + (size_t)i];
    if (!jx_dtype_is_float(jx_dtype_of(in[0]))) {
      char b[96];
      jx_aval_str(jx_aval_of(in[0]), b, sizeof b);
      e = jx_error_new("%s: leaf %d of grads is %s, must be a float array", o->name, i, b);
      break;
    }
    frms_shapes sh = state_shapes(o, jx_ndim(in[0]), jx_shape(in[0]));
    for (int k = 0; k < 3 && !e; k++) e = check_stat(o, names[k], i, in[k + 1], sh.nd[k], sh.s[k], in[0]);
    if (e) break;
    frms_leaf(o, &c, in, out);
    for (int k = 0; k < 4; k++) l[(size_t)k * (size_t)n + (size_t)i] = out[k];
  }
  if (e) return e;
  jx_t t[4];
  for (int k = 0; k < 4; k++) t[k] = jx_tree_build(grads, l + (size_t)k * (size_t)n);
  return JX_TUPLE(t[0], JX_TUPLE(jx_optim_increment(jx_at(state, 0)), t[1], t[2], t[3]));
}

static jx_t frms_update(const jx_optimizer *o, jx_t grads, jx_t state, jx_t params) {
  (void)params; /* the shapes are the gradients' (the same, checked by jx_optim_update) */
  jx_t e = frms_check(o, grads, state);
  if (e) return e;
  int n;
  jx_t *l = leaves_of(4, (jx_t[]){grads, jx_at(state, 1), jx_at(state, 2), jx_at(state, 3)}, &n);
  if (!l) return jx_error_new("%s: out of memory", o->name);
  jx_t r = frms_leaves(o, grads, state, l, n);
  jx_free(l);
  return r;
}
static const optim_kind frms_kind = {"scale_by_factored_rms", frms_init, frms_update};

jx_optimizer *jx_scale_by_factored_rms(bool factored, double decay_rate, int64_t step_offset,
                                       int64_t min_dim_size_to_factor, double epsilon) {
  const char *nm = "scale_by_factored_rms";
  if (!finite_nonneg(decay_rate) || !finite_nonneg(epsilon))
    return jx_optim_bad(nm, "decay_rate %g, epsilon %g: each must be finite and >= 0", decay_rate, epsilon);
  if (step_offset < -INT32_MAX || step_offset > INT32_MAX)
    return jx_optim_bad(nm, "step_offset is %lld, must fit an i32 step count", (long long)step_offset);
  if (min_dim_size_to_factor < 0)
    return jx_optim_bad(nm, "min_dim_size_to_factor is %lld, must be >= 0",
                        (long long)min_dim_size_to_factor);
  jx_optimizer *o = jx_optim_new(&frms_kind);
  if (!o) return jx_optim_bad(nm, "out of memory");
  o->flag = factored, o->h[0] = decay_rate, o->h[1] = epsilon;
  o->ih[0] = step_offset, o->ih[1] = min_dim_size_to_factor;
  return o;
}

/* ------------------------------------------------------------ block rms */

/* sqrt(mean(|x|^2)) of one leaf */
static jx_t rms(jx_t x) { return jx_sqrt(jx_mean(jx_square(x))); }

/* u / max(1, rms(u) / threshold) (optax.clip_by_block_rms) */
static void block_clip_leaf(const jx_t *in, jx_t *out, void *u) {
  const jx_optimizer *o = u;
  out[0] = jx_div(in[0], jx_maximum(w(1.0), jx_div(rms(in[0]), w(o->h[0]))));
}
static jx_t block_clip_update(const jx_optimizer *o, jx_t grads, jx_t state, jx_t params) {
  (void)params;
  jx_t r = jx_optim_map(o, 1, &grads, (const char *[]){"grads"}, 1, block_clip_leaf, (void *)o);
  return JX_TUPLE(jx_at(r, 0), state);
}
static const optim_kind block_clip_kind = {"clip_by_block_rms", empty_init, block_clip_update};

jx_optimizer *jx_clip_by_block_rms(double threshold) {
  if (!(threshold > 0) || !isfinite(threshold))
    return jx_optim_bad("clip_by_block_rms", "threshold is %g, must be positive", threshold);
  jx_optimizer *o = jx_optim_new(&block_clip_kind);
  if (!o) return jx_optim_bad("clip_by_block_rms", "out of memory");
  o->h[0] = threshold;
  return o;
}

/* u * max(rms(p), min_scale), the rms taken of ones where it would be
 * below min_scale so that its gradient is not NaN at p = 0 (optax's
 * safe_root_mean_squares) */
static void param_rms_leaf(const jx_t *in, jx_t *out, void *u) {
  const jx_optimizer *o = u;
  jx_t p = in[1], small = jx_le(rms(p), w(o->h[0]));
  jx_t r = jx_where(small, w(o->h[0]), rms(jx_where(small, jx_ones_like(p), p)));
  out[0] = jx_mul(in[0], as_leaf(r, in[0]));
}
static jx_t param_rms_update(const jx_optimizer *o, jx_t grads, jx_t state, jx_t params) {
  if (!params) return jx_error_new("%s: needs params (params is NULL)", o->name);
  jx_t r = jx_optim_map(o, 2, (jx_t[]){grads, params}, (const char *[]){"grads", "params"}, 1, param_rms_leaf,
                        (void *)o);
  return JX_TUPLE(jx_at(r, 0), state);
}
static const optim_kind param_rms_kind = {"scale_by_param_block_rms", empty_init, param_rms_update};

jx_optimizer *jx_scale_by_param_block_rms(double min_scale) {
  if (!finite_nonneg(min_scale))
    return jx_optim_bad("scale_by_param_block_rms", "min_scale is %g, must be finite and >= 0", min_scale);
  jx_optimizer *o = jx_optim_new(&param_rms_kind);
  if (!o) return jx_optim_bad("scale_by_param_block_rms", "out of memory");
  o->h[0] = min_scale;
  return o;
}

/* ------------------------------------------------------------------ ema */

typedef struct {
  const jx_optimizer *o;
  jx_t debias; /* f64 0-d: 1 / (1 - decay^count), or NULL */
} ema_ctx;

/* g, ema -> update, ema: ema = decay * ema + (1 - decay) * g (optax.ema) */
static void ema_leaf(const jx_t *in, jx_t *out, void *u) {
  const ema_ctx *c = u;
  double d = c->o->h[0];
  out[1] = jx_add(jx_mul(in[1], w(d)), jx_mul(in[0], w(1 - d)));
  out[0] = c->debias ? jx_mul(out[1], as_leaf(c->debias, out[1])) : out[1];
}
static jx_t ema_init(const jx_optimizer *o, jx_t params) {
  (void)o;
  return JX_TUPLE(jx_scalar_of(JX_I32, 0), jx_optim_zeros_like(params));
}
static jx_t ema_update(const jx_optimizer *o, jx_t grads, jx_t state, jx_t params) {
  (void)params;
  jx_t e = jx_optim_check_state(o, state, 2, "(count, ema)");
  if (!e) e = jx_optim_check_state(o, jx_at(state, 0), -1, "a step count (i32[]) first");
  if (e) return e;
  jx_t count = jx_optim_increment(jx_at(state, 0)), t = jx_astype(count, JX_F64);
  ema_ctx c = {o, NULL};
  if (o->flag) /* 1 - decay^t as -expm1(t log decay), exact where it is tiny; decay 0: 1 */
    c.debias = o->h[0] == 0
                   ? jx_scalar_of(JX_F64, 1)
                   : jx_div(jx_scalar(1.0), jx_neg(jx_expm1(jx_mul(t, jx_scalar_of(JX_F64, log(o->h[0]))))));
  jx_t r =
      jx_optim_map(o, 2, (jx_t[]){grads, jx_at(state, 1)}, (const char *[]){"grads", "ema"}, 2, ema_leaf, &c);
  return JX_TUPLE(jx_at(r, 0), JX_TUPLE(count, jx_at(r, 1)));
}
static const optim_kind ema_kind = {"ema", ema_init, ema_update};

jx_optimizer *jx_ema(double decay, bool debias) {
  if (!(decay >= 0 && decay < 1)) return jx_optim_bad("ema", "decay is %g, must be in [0, 1)", decay);
  jx_optimizer *o = jx_optim_new(&ema_kind);
  if (!o) return jx_optim_bad("ema", "out of memory");
  o->h[0] = decay, o->flag = debias;
  return o;
}

/* ---------------------------------------------------------------- scale */

static void scale_leaf(const jx_t *in, jx_t *out, void *u) {
  out[0] = jx_mul(in[0], w(((const jx_optimizer *)u)->h[0]));
}
static jx_t scale_update(const jx_optimizer *o, jx_t grads, jx_t state, jx_t params) {
  (void)params;
  jx_t r = jx_optim_map(o, 1, &grads, (const char *[]){"grads"}, 1, scale_leaf, (void *)o);
  return JX_TUPLE(jx_at(r, 0), state);
}
static const optim_kind scale_kind = {"scale", empty_init, scale_update};

jx_optimizer *jx_scale(double step_size) {
  if (!isfinite(step_size)) return jx_optim_bad("scale", "step_size is %g, must be finite", step_size);
  jx_optimizer *o = jx_optim_new(&scale_kind);
  if (!o) return jx_optim_bad("scale", "out of memory");
  o->h[0] = step_size;
  return o;
}

/* ------------------------------------------------------------ adafactor */

jx_adafactor_options jx_adafactor_defaults(void) {
  return (jx_adafactor_options){
      .factored = true,
      .decay_rate = 0.8,
      .decay_offset = 0,
      .min_dim_size_to_factor = 128,
      .eps = 1e-30,
      .multiply_by_parameter_scale = true,
      .clipping_threshold = 1.0,
  };
}

/* the weight decay part, or NULL when there is none (a rate of 0) */
static jx_optimizer *adafactor_decay(const jx_adafactor_options *op) {
  if (op->weight_decay_rate == 0) return NULL;
  if (op->weight_decay_mask && op->weight_decay_mask_fn)
    return jx_optim_bad("add_decayed_weights", "both weight_decay_mask and weight_decay_mask_fn are given");
  if (op->weight_decay_mask_fn)
    return jx_add_decayed_weights_mask_fn(op->weight_decay_rate, op->weight_decay_mask_fn);
  return jx_add_decayed_weights(op->weight_decay_rate, op->weight_decay_mask);
}

jx_optimizer *jx_adafactor(jx_schedule *lr, const jx_adafactor_options *opts) {
  jx_adafactor_options def = jx_adafactor_defaults();
  const jx_adafactor_options *op = opts ? opts : &def;
  jx_optimizer *p[7], *d;
  int n = 0;
  p[n++] = jx_scale_by_factored_rms(op->factored, op->decay_rate, op->decay_offset,
                                    op->min_dim_size_to_factor, op->eps);
  if (op->clipping_threshold != 0) p[n++] = jx_clip_by_block_rms(op->clipping_threshold);
  if (lr) p[n++] = jx_optim_scale_by_lr(lr, false);
  if (op->multiply_by_parameter_scale) p[n++] = jx_scale_by_param_block_rms(1e-3);
  if (op->momentum != 0) p[n++] = jx_ema(op->momentum, false);
  if ((d = adafactor_decay(op))) p[n++] = d;
  p[n++] = jx_scale(-1);
  return jx_optim_chain_named("adafactor", n, p);
}
