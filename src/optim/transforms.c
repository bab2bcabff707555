/* The gradient transformations (optax's building blocks) and the
 * optimizers composed from them, as optax composes them:
 *
 *   sgd(lr, m, nesterov) = chain(trace(m, nesterov) (jx_momentum), scale_by_learning_rate(lr))
 *   adam(lr, b1, b2, eps) = chain(scale_by_adam(b1, b2, eps), scale_by_learning_rate(lr))
 *   adamw(..., wd, mask) = chain(scale_by_adam, add_decayed_weights(wd, mask), scale_by_learning_rate)
 *   rmsprop(lr, decay, eps, m, centered) = chain(scale_by_rms, [trace(m)], scale_by_learning_rate)
 *   lion(lr, b1, b2, wd, mask) = chain(scale_by_lion, add_decayed_weights, scale_by_learning_rate)
 *
 * Each leaf is computed in its own dtype: hyperparameters are weak scalars
 * and per-step scalars (learning rate, bias corrections, clipping factor)
 * are computed in f64 and rounded once to the leaf's dtype, so f32
 * parameters stay f32 and f64 parameters get f64 arithmetic throughout. */
#include "optim/optim.h"

#include <math.h>
#include <stdio.h>

static jx_t empty_init(const jx_optimizer *o, jx_t params) {
  (void)o, (void)params;
  return jx_tuple(0, NULL);
}
static jx_t count_init(const jx_optimizer *o, jx_t params) {
  (void)o, (void)params;
  return jx_scalar_of(JX_I32, 0);
}
static jx_t as_leaf(jx_t scalar, jx_t leaf) { return jx_astype(scalar, jx_dtype_of(leaf)); }
static jx_t w(double v) { return jx_scalar(v); }

static bool unit_interval(double b) { return b >= 0 && b < 1; }

/* ---------------------------------------------------------------- trace */

static void trace_leaf(const jx_t *in, jx_t *out, void *u) { /* g, t -> update, t */
  const jx_optimizer *o = u;
  jx_t t = jx_add(in[0], jx_mul(w(o->h[0]), in[1]));
  out[0] = o->flag ? jx_add(in[0], jx_mul(w(o->h[0]), t)) : t;
  out[1] = t;
}
static jx_t trace_init(const jx_optimizer *o, jx_t params) {
  (void)o;
  return jx_optim_zeros_like(params);
}
static jx_t trace_update(const jx_optimizer *o, jx_t grads, jx_t state, jx_t params) {
  (void)params;
  return jx_optim_map(o, 2, (jx_t[]){grads, state}, (const char *[]){"grads", "the momentum state"}, 2,
                      trace_leaf, (void *)o);
}
static const optim_kind trace_kind = {"trace", trace_init, trace_update};

jx_optimizer *jx_momentum(double decay, bool nesterov) {
  if (!(decay >= 0) || !isfinite(decay)) return jx_optim_bad("trace", "decay is %g, must be >= 0", decay);
  jx_optimizer *o = jx_optim_new(&trace_kind);
  if (!o) return jx_optim_bad("trace", "out of memory");
  o->h[0] = decay, o->flag = nesterov;
  return o;
}

/* ---------------------------------------------------- scale_by_learning_rate */

static void scale_leaf(const jx_t *in, jx_t *out, void *u) { out[0] = jx_mul(as_leaf(u, in[0]), in[0]); }
static jx_t lr_update(const jx_optimizer *o, jx_t grads, jx_t count, jx_t params) {
  (void)params;
  jx_t e = jx_optim_check_state(o, count, -1, "the step count (i32[])");
  if (e) return e;
  jx_t lr = jx_optim_schedule_f64(o->lr, count), neg_lr = o->flag ? lr : jx_neg(lr);
  if (!jx_ok(neg_lr)) return neg_lr;
  jx_t r = jx_optim_map(o, 1, &grads, (const char *[]){"grads"}, 1, scale_leaf, neg_lr);
  return JX_TUPLE(jx_at(r, 0), jx_optim_increment(count));
}
static const optim_kind lr_kind = {"scale_by_learning_rate", count_init, lr_update};

/* -lr(count) * updates (optax.scale_by_learning_rate; flip_sign=False:
 * +lr, o->flag); takes lr over */
jx_optimizer *jx_optim_scale_by_lr(jx_schedule *lr, bool flip) {
  const char *why = jx_optim_schedule_error(lr);
  jx_optimizer *o = why ? NULL : jx_optim_new(&lr_kind);
  if (!o) { /* the message first: why may be lr's own */
    o = jx_optim_bad("scale_by_learning_rate", "%s", why ? why : "out of memory");
    jx_schedule_free(lr);
    return o;
  }
  o->lr = lr, o->flag = !flip;
  return o;
}

jx_optimizer *jx_scale_by_learning_rate(jx_schedule *lr) { return jx_optim_scale_by_lr(lr, true); }

/* -------------------------------------------------------------- scale_by_adam */

typedef struct {
  const jx_optimizer *o;
  jx_t c1, rs2; /* 1 / (1 - b1^t), 1 / sqrt(1 - b2^t), f64 */
} adam_ctx;

/* g, mu, nu -> update, mu, nu. The update is optax's mu_hat / (sqrt(nu_hat)
 * + eps), rounded in torch.optim.Adam's order: mu / (sqrt(nu) / sqrt(1 -
 * b2^t) + eps) / (1 - b1^t). */
static void adam_leaf(const jx_t *in, jx_t *out, void *u) {
  const adam_ctx *c = u;
  double b1 = c->o->h[0], b2 = c->o->h[1];
  jx_t g = in[0];
  jx_t mu = jx_add(jx_mul(in[1], w(b1)), jx_mul(g, w(1 - b1)));
  jx_t nu = jx_add(jx_mul(in[2], w(b2)), jx_mul(jx_square(g), w(1 - b2)));
  jx_t denom = jx_add(jx_mul(jx_sqrt(nu), as_leaf(c->rs2, g)), w(c->o->h[2]));
  out[0] = jx_mul(jx_div(mu, denom), as_leaf(c->c1, g));
  out[1] = mu, out[2] = nu;
}
/* 1 - b^t as -expm1(t log b): exact to rounding even where it is tiny */
static jx_t one_minus_pow(double b, jx_t t) {
  return jx_neg(jx_expm1(jx_mul(t, jx_scalar_of(JX_F64, log(b)))));
}

static jx_t adam_init(const jx_optimizer *o, jx_t params) {
  (void)o;
  return JX_TUPLE(jx_scalar_of(JX_I32, 0), jx_optim_zeros_like(params), jx_optim_zeros_like(params));
}
static jx_t adam_update(const jx_optimizer *o, jx_t grads, jx_t state, jx_t params) {
  (void)params;
  jx_t e = jx_optim_check_state(o, state, 3, "(count, mu, nu)");
  if (!e) e = jx_optim_check_state(o, jx_at(state, 0), -1, "a step count (i32[]) first");
  if (e) return e;
  jx_t count = jx_optim_increment(jx_at(state, 0)), t = jx_astype(count, JX_F64);
  adam_ctx c = {o, jx_div(jx_scalar(1.0), one_minus_pow(o->h[0], t)), jx_rsqrt(one_minus_pow(o->h[1], t))};
  jx_t r = jx_optim_map(o, 3, (jx_t[]){grads, jx_at(state, 1), jx_at(state, 2)},
                        (const char *[]){"grads", "mu", "nu"}, 3, adam_leaf, &c);
  return JX_TUPLE(jx_at(r, 0), JX_TUPLE(count, jx_at(r, 1), jx_at(r, 2)));
}
static const optim_kind adam_kind = {"scale_by_adam", adam_init, adam_update};

jx_optimizer *jx_scale_by_adam(double b1, double b2, double eps) {
  if (!unit_interval(b1) || !unit_interval(b2) || !(eps >= 0) || !isfinite(eps))
    return jx_optim_bad("scale_by_adam", "b1 %g, b2 %g (each must be in [0, 1)), eps %g (must be >= 0)", b1,
                        b2, eps);
  jx_optimizer *o = jx_optim_new(&adam_kind);
  if (!o) return jx_optim_bad("scale_by_adam", "out of memory");
  o->h[0] = b1, o->h[1] = b2, o->h[2] = eps;
  return o;
}

/* ---------------------------------------------------------------- scale_by_rms */

/* g, nu[, mu] -> update, nu[, mu]: g / (sqrt(nu - mu^2) + eps), eps
 * outside the root as in torch.optim.RMSprop (optax's eps_in_sqrt=False) */
static void rms_leaf(const jx_t *in, jx_t *out, void *u) {
  const jx_optimizer *o = u;
  double a = o->h[0];
  jx_t g = in[0], nu = jx_add(jx_mul(in[1], w(a)), jx_mul(jx_square(g), w(1 - a))), var = nu;
  if (o->flag) {
    out[2] = jx_add(jx_mul(in[2], w(a)), jx_mul(g, w(1 - a)));
    var = jx_sub(nu, jx_square(out[2]));
  }
  out[0] = jx_div(g, jx_add(jx_sqrt(var), w(o->h[1])));
  out[1] = nu;
}
static jx_t rms_init(const jx_optimizer *o, jx_t params) {
  jx_t nu = jx_optim_zeros_like(params);
  return o->flag ? JX_TUPLE(nu, jx_optim_zeros_like(params)) : JX_TUPLE(nu);
}
static jx_t rms_update(const jx_optimizer *o, jx_t grads, jx_t state, jx_t params) {
  (void)params;
  int n = o->flag ? 2 : 1;
  jx_t e = jx_optim_check_state(o, state, n, o->flag ? "(nu, mu)" : "(nu,)");
  if (e) return e;
  jx_t r = jx_optim_map(o, 1 + n, (jx_t[]){grads, jx_at(state, 0), o->flag ? jx_at(state, 1) : NULL},
                        (const char *[]){"grads", "nu", "mu"}, 1 + n, rms_leaf, (void *)o);
  return JX_TUPLE(jx_at(r, 0), o->flag ? JX_TUPLE(jx_at(r, 1), jx_at(r, 2)) : JX_TUPLE(jx_at(r, 1)));
}
static const optim_kind rms_kind = {"scale_by_rms", rms_init, rms_update};

static jx_optimizer *scale_by_rms(double decay, double eps, bool centered) {
  if (!(decay >= 0 && decay <= 1) || !(eps >= 0) || !isfinite(eps))
    return jx_optim_bad("scale_by_rms", "decay %g (must be in [0, 1]), eps %g (must be >= 0)", decay, eps);
  jx_optimizer *o = jx_optim_new(&rms_kind);
  if (!o) return jx_optim_bad("scale_by_rms", "out of memory");
  o->h[0] = decay, o->h[1] = eps, o->flag = centered;
  return o;
}

/* --------------------------------------------------------------- scale_by_lion */

static void lion_leaf(const jx_t *in, jx_t *out, void *u) { /* g, mu -> update, mu */
  const jx_optimizer *o = u;
  double b1 = o->h[0], b2 = o->h[1];
  out[0] = jx_sign(jx_add(jx_mul(in[1], w(b1)), jx_mul(in[0], w(1 - b1))));
  out[1] = jx_add(jx_mul(in[1], w(b2)), jx_mul(in[0], w(1 - b2)));
}
static jx_t lion_update(const jx_optimizer *o, jx_t grads, jx_t state, jx_t params) {
  (void)params;
  return jx_optim_map(o, 2, (jx_t[]){grads, state}, (const char *[]){"grads", "mu"}, 2, lion_leaf, (void *)o);
}
static const optim_kind lion_kind = {"scale_by_lion", trace_init, lion_update};

static jx_optimizer *scale_by_lion(double b1, double b2) {
  if (!(b1 >= 0 && b1 <= 1) || !(b2 >= 0 && b2 <= 1))
    return jx_optim_bad("scale_by_lion", "b1 %g, b2 %g: each must be in [0, 1]", b1, b2);
  jx_optimizer *o = jx_optim_new(&lion_kind);
  if (!o) return jx_optim_bad("scale_by_lion", "out of memory");
  o->h[0] = b1, o->h[1] = b2;
  return o;
}

/* --------------------------------------------------------- add_decayed_weights */

static jx_t decay_term(jx_t p, jx_t m, void *u) {
  jx_t t = jx_mul(w(*(const double *)u), p);
  return m ? jx_where(m, t, jx_zeros_like(t)) : t;
}
static jx_t decay_term1(jx_t p, void *u) { return decay_term(p, NULL, u); }
static void add_leaf(const jx_t *in, jx_t *out, void *u) {
  (void)u;
  out[0] = jx_add(in[0], in[1]);
}
static bool bool_leaves(jx_t t);
/* the mask for this update: the tree given, or the mask function's for
 * params (called at each update, so under jit it is traced with it) */
static jx_t decay_mask(const jx_optimizer *o, jx_t params) {
  if (!o->mask_fn) return o->mask;
  jx_t m = jx_call(o->mask_fn, &params);
  if (!jx_ok(m)) return jx_error_new("%s: the mask function failed: %s", o->name, jx_error(m));
  if (!bool_leaves(m))
    return jx_error_new("%s: the mask function must return a tree of bool arrays", o->name);
  return m;
}

/* updates + wd * params where mask (optax.add_decayed_weights) */
static jx_t decay_update(const jx_optimizer *o, jx_t grads, jx_t state, jx_t params) {
  if (!params) return jx_error_new("%s: needs params (params is NULL)", o->name);
  jx_t mask = decay_mask(o, params);
  if (mask && !jx_ok(mask)) return mask;
  if (mask && !jx_tree_same_structure(mask, params))
    return jx_error_new("%s: the mask and params have different tree structures (%d and %d leaves)", o->name,
                        jx_tree_leaves_to(mask, NULL, 0), jx_tree_leaves_to(params, NULL, 0));
  double wd = o->h[0];
  jx_t terms = mask ? jx_tree_map2(decay_term, params, mask, &wd) : jx_tree_map(decay_term1, params, &wd);
  jx_t r = jx_optim_map(o, 2, (jx_t[]){grads, terms}, (const char *[]){"grads", "the decay terms"}, 1,
                        add_leaf, NULL);
  return JX_TUPLE(jx_at(r, 0), state);
}
static const optim_kind decay_kind = {"add_decayed_weights", empty_init, decay_update};

/* mask: NULL, or a tree like params of bool arrays (broadcastable to the leaf) */
static bool bool_leaves(jx_t t) {
  if (jx_is_tree(t)) {
    for (int i = 0; i < jx_len(t); i++)
      if (!bool_leaves(jx_at(t, i))) return false;
    return true;
  }
  return !jx_is_error(t) && jx_dtype_of(t) == JX_BOOL;
}

jx_optimizer *jx_add_decayed_weights(double weight_decay, jx_t mask) {
  const char *nm = "add_decayed_weights";
  if (!isfinite(weight_decay)) return jx_optim_bad(nm, "weight_decay is %g", weight_decay);
  if (mask && jx_is_error(mask)) return jx_optim_bad(nm, "the mask is an error: %s", jx_error(mask));
  if (mask && !bool_leaves(mask)) return jx_optim_bad(nm, "the mask's leaves must be bool arrays");
  jx_optimizer *o = jx_optim_new(&decay_kind);
  if (!o) return jx_optim_bad(nm, "out of memory");
  o->h[0] = weight_decay, o->mask = mask ? jx_retain(mask) : NULL;
  return o;
}

jx_optimizer *jx_add_decayed_weights_mask_fn(double weight_decay, jx_fn *mask_fn) {
  const char *nm = "add_decayed_weights";
  if (!mask_fn || jx_fn_error(mask_fn))
    return jx_optim_bad(nm, "the mask function is unusable: %s", jx_fn_error(mask_fn));
  if (jx_fn_nargs(mask_fn) != 1)
    return jx_optim_bad(nm, "the mask function takes %d arguments, must take 1 (params)",
                        jx_fn_nargs(mask_fn));
  jx_optimizer *o = jx_add_decayed_weights(weight_decay, NULL);
  if (!o->error) o->mask_fn = jx_fn_retain(mask_fn);
  return o;
}

/* ---------------------------------------------------------- clip_by_global_norm */

static void clip_leaf(const jx_t *in, jx_t *out, void *u) { out[0] = jx_mul(in[0], as_leaf(u, in[0])); }
/* updates * max_norm / max(norm, max_norm): unchanged below max_norm, and no
 * division by a zero norm */
static jx_t clip_update(const jx_optimizer *o, jx_t grads, jx_t state, jx_t params) {
  (void)params;
  jx_t norm = jx_astype(jx_global_norm(grads), JX_F64);
  jx_t factor = jx_div(jx_scalar(o->h[0]), jx_maximum(norm, jx_scalar(o->h[0])));
  if (!jx_ok(factor)) return factor;
  jx_t r = jx_optim_map(o, 1, &grads, (const char *[]){"grads"}, 1, clip_leaf, factor);
  return JX_TUPLE(jx_at(r, 0), state);
}
static const optim_kind clip_kind = {"clip_by_global_norm", empty_init, clip_update};

jx_optimizer *jx_clip_by_global_norm(double max_norm) {
  if (!(max_norm > 0) || !isfinite(max_norm))
    return jx_optim_bad("clip_by_global_norm", "max_norm is %g, must be positive", max_norm);
  jx_optimizer *o = jx_optim_new(&clip_kind);
  if (!o) return jx_optim_bad("clip_by_global_norm", "out of memory");
  o->h[0] = max_norm;
  return o;
}

/* ------------------------------------------------------------------ optimizers */

/* chain(parts..., scale_by_learning_rate(lr)) named `name`; takes lr and
 * the parts over whatever happens */
static jx_optimizer *with_lr(const char *name, jx_schedule *lr, int n, jx_optimizer **parts) {
  parts[n] = jx_scale_by_learning_rate(lr);
  return jx_optim_chain_named(name, n + 1, parts);
}

jx_optimizer *jx_sgd(jx_schedule *lr, double momentum, bool nesterov) {
  jx_optimizer *p[2];
  int n = 0;
  if (momentum != 0) p[n++] = jx_momentum(momentum, nesterov);
  return with_lr("sgd", lr, n, p);
}

jx_optimizer *jx_adam(jx_schedule *lr, double b1, double b2, double eps) {
  jx_optimizer *p[2] = {jx_scale_by_adam(b1, b2, eps)};
  return with_lr("adam", lr, 1, p);
}

jx_optimizer *jx_adamw(jx_schedule *lr, double b1, double b2, double eps, double weight_decay, jx_t mask) {
  jx_optimizer *p[3] = {jx_scale_by_adam(b1, b2, eps), jx_add_decayed_weights(weight_decay, mask)};
  return with_lr("adamw", lr, 2, p);
}

jx_optimizer *jx_adamw_mask_fn(jx_schedule *lr, double b1, double b2, double eps, double weight_decay,
                               jx_fn *mask_fn) {
  jx_optimizer *p[3] = {jx_scale_by_adam(b1, b2, eps), jx_add_decayed_weights_mask_fn(weight_decay, mask_fn)};
  return with_lr("adamw", lr, 2, p);
}

jx_optimizer *jx_rmsprop(jx_schedule *lr, double decay, double eps, double momentum, bool centered) {
  jx_optimizer *p[3];
  int n = 0;
  p[n++] = scale_by_rms(decay, eps, centered);
  if (momentum != 0) p[n++] = jx_momentum(momentum, false);
  return with_lr("rmsprop", lr, n, p);
}

jx_optimizer *jx_lion(jx_schedule *lr, double b1, double b2, double weight_decay, jx_t mask) {
  jx_optimizer *p[3] = {scale_by_lion(b1, b2), jx_add_decayed_weights(weight_decay, mask)};
  return with_lr("lion", lr, 2, p);
}

jx_optimizer *jx_lion_mask_fn(jx_schedule *lr, double b1, double b2, double weight_decay, jx_fn *mask_fn) {
  jx_optimizer *p[3] = {scale_by_lion(b1, b2), jx_add_decayed_weights_mask_fn(weight_decay, mask_fn)};
  return with_lr("lion", lr, 2, p);
}
