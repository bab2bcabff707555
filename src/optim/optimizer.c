/* jx_optimizer objects, chain, the public entry points and the leafwise
 * map every transformation is written with (see optim.h). */
#include "optim/optim.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------- objects */

/* A constructor that runs out of memory returns this: every init/update
 * of it is an error value, and freeing it does nothing. */
static jx_optimizer oom_optimizer = {.name = "optimizer", .refs = -1, .error = "optimizer: out of memory"};

jx_optimizer *jx_optim_new(const optim_kind *k) {
  jx_optimizer *o = jx_malloc(sizeof *o);
  if (!o) return NULL;
  memset(o, 0, sizeof *o);
  o->kind = k;
  o->name = k ? k->name : "optimizer";
  atomic_init(&o->refs, 1);
  return o;
}

jx_optimizer *jx_optim_bad(const char *name, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  jx_optimizer *o = jx_optim_new(NULL);
  char *e = o ? jx_asprintf("%s: %s", name, msg) : NULL;
  if (!e) {
    jx_free(o);
    return &oom_optimizer;
  }
  o->name = name;
  o->error = e;
  return o;
}

jx_optimizer *jx_optim_retain(jx_optimizer *o) {
  if (o && atomic_load(&o->refs) >= 0) atomic_fetch_add(&o->refs, 1);
  return o;
}

void jx_optim_free(jx_optimizer *o) {
  if (!o || atomic_load(&o->refs) < 0 || atomic_fetch_sub(&o->refs, 1) != 1) return;
  for (int i = 0; i < o->n; i++) jx_optim_free(o->parts[i]);
  jx_free(o->parts);
  jx_schedule_free(o->lr);
  if (o->mask) jx_release(o->mask);
  jx_fn_release(o->mask_fn);
  jx_free(o->error);
  jx_free(o);
}

/* ---------------------------------------------------------------- chain */

static jx_t chain_init(const jx_optimizer *o, jx_t params) {
  jx_t small[8], *st = o->n <= 8 ? small : jx_malloc(sizeof(jx_t) * (size_t)o->n);
  if (!st) return jx_error_new("%s init: out of memory", o->name);
  for (int i = 0; i < o->n; i++) st[i] = o->parts[i]->kind->init(o->parts[i], params);
  jx_t r = jx_tuple(o->n, st);
  if (st != small) jx_free(st);
  return r;
}

/* optax.chain: each part transforms the previous part's updates; the
 * state is the tuple of the parts' states */
static jx_t chain_update(const jx_optimizer *o, jx_t grads, jx_t state, jx_t params) {
  if (jx_len(state) != o->n)
    return jx_error_new("%s update: the state should be a tuple of %d states (one per part of the chain), "
                        "not %s of length %d",
                        o->name, o->n, jx_is_tree(state) ? "a tree" : "an array", jx_len(state));
  jx_t small[8], *st = o->n <= 8 ? small : jx_malloc(sizeof(jx_t) * (size_t)o->n);
  if (!st) return jx_error_new("%s update: out of memory", o->name);
  jx_t u = grads, err = NULL;
  for (int i = 0; i < o->n && !err; i++) {
    jx_t r = o->parts[i]->kind->update(o->parts[i], u, jx_at(state, i), params);
    if (!jx_ok(r)) err = r;
    u = jx_at(r, 0), st[i] = jx_at(r, 1);
  }
  jx_t r = err ? err : JX_TUPLE(u, jx_tuple(o->n, st));
  if (st != small) jx_free(st);
  return r;
}

static const optim_kind chain_kind = {"chain", chain_init, chain_update};

jx_optimizer *jx_optim_chain_named(const char *name, int n, jx_optimizer *const *parts) {
  if (!name) name = "chain";
  if (n < 0 || (n > 0 && !parts))
    return jx_optim_bad(name, "%d parts (parts %s)", n, parts ? "given" : "NULL");
  jx_optimizer *o = jx_optim_new(&chain_kind);
  jx_optimizer **ps = o ? jx_malloc(sizeof *ps * (size_t)(n ? n : 1)) : NULL;
  int bad = -1;
  for (int i = 0; i < n && bad < 0; i++)
    if (!parts[i] || parts[i]->error) bad = i;
  if (!ps || bad >= 0) {
    jx_optimizer *r = !ps           ? &oom_optimizer
                      : !parts[bad] ? jx_optim_bad(name, "part %d is NULL", bad)
                                    : jx_optim_bad(name, "%s", parts[bad]->error);
    for (int i = 0; i < n; i++) jx_optim_free(parts[i]);
    jx_free(ps), jx_free(o);
    return r;
  }
  for (int i = 0; i < n; i++) ps[i] = parts[i];
  o->name = name, o->n = n, o->parts = ps;
  return o;
}

jx_optimizer *jx_chain(int n, jx_optimizer *const *parts) { return jx_optim_chain_named("chain", n, parts); }

/* ---------------------------------------------------------- tree checks */

static void leaf_str(jx_t x, char *buf, size_t n) {
  if (jx_is_tree(x))
    snprintf(buf, n, "a tree");
  else if (jx_is_error(x))
    snprintf(buf, n, "an error");
  else
    jx_aval_str(jx_aval_of(x), buf, n);
}

jx_t jx_optim_check_like(const jx_optimizer *o, const char *what, jx_t tree, const char *like_what,
                         jx_t like) {
  if (jx_is_error(tree)) return tree ? tree : jx_error_new("%s: %s is NULL", o->name, what);
  if (!jx_tree_same_structure(tree, like))
    return jx_error_new("%s: %s and %s have different tree structures (%d and %d leaves)", o->name, what,
                        like_what, jx_tree_leaves_to(tree, NULL, 0), jx_tree_leaves_to(like, NULL, 0));
  int n = jx_tree_leaves_to(like, NULL, 0);
  jx_t small[2][16], *a = n <= 16 ? small[0] : jx_malloc(sizeof(jx_t) * (size_t)n * 2);
  jx_t *b = n <= 16 ? small[1] : a + n, err = NULL;
  if (!a) return jx_error_new("%s: out of memory", o->name);
  jx_tree_leaves_to(tree, a, n), jx_tree_leaves_to(like, b, n);
  for (int i = 0; i < n && !err; i++) {
    bool ok = !jx_is_tree(a[i]) && !jx_is_error(a[i]) && jx_ndim(a[i]) == jx_ndim(b[i]) &&
              !memcmp(jx_shape(a[i]), jx_shape(b[i]), sizeof(int64_t) * (size_t)jx_ndim(a[i]));
    if (jx_is_error(a[i]) && a[i])
      err = a[i];
    else if (!ok) {
      char sa[128], sb[128];
      leaf_str(a[i], sa, sizeof sa), leaf_str(b[i], sb, sizeof sb);
      err = jx_error_new("%s: leaf %d of %s is %s but leaf %d of %s is %s", o->name, i, what, sa, i,
                         like_what, sb);
    }
  }
  if (a != small[0]) jx_free(a);
  return err;
}

/* ----------------------------------------------------------- leafwise map */

enum { MAP_MAX = 4 };

jx_t jx_optim_map(const jx_optimizer *o, int nin, const jx_t *ins, const char *const *names, int nout,
                  optim_leaf_fn fn, void *u) {
  for (int i = 1; i < nin; i++) {
    jx_t e = ins[i] ? jx_optim_check_like(o, names[i], ins[i], names[0], ins[0]) : NULL;
    if (e) return e;
  }
  int n = jx_tree_leaves_to(ins[0], NULL, 0);
  size_t per = (size_t)(n ? n : 1);
  jx_t *buf = jx_malloc(sizeof(jx_t) * per * (size_t)(nin + nout)), r = NULL;
  if (!buf) return jx_error_new("%s: out of memory", o->name);
  for (int i = 0; i < nin; i++)
    if (ins[i]) jx_tree_leaves_to(ins[i], buf + per * (size_t)i, n);
  jx_t *outs = buf + per * (size_t)nin, in[MAP_MAX], out[MAP_MAX], trees[MAP_MAX];
  for (int l = 0; l < n; l++) {
    for (int i = 0; i < nin; i++) in[i] = ins[i] ? buf[per * (size_t)i + (size_t)l] : NULL;
    fn(in, out, u);
    for (int j = 0; j < nout; j++) outs[per * (size_t)j + (size_t)l] = out[j];
  }
  for (int j = 0; j < nout; j++) trees[j] = jx_tree_build(ins[0], outs + per * (size_t)j);
  r = jx_tuple(nout, trees);
  jx_free(buf);
  return r;
}

static void zeros_leaf(const jx_t *in, jx_t *out, void *u) {
  (void)u;
  out[0] = jx_zeros_like(in[0]);
}
jx_t jx_optim_zeros_like(jx_t params) {
  static const optim_kind k = {"init", NULL, NULL};
  jx_optimizer o = {.kind = &k, .name = "init"};
  return jx_at(jx_optim_map(&o, 1, &params, (const char *[]){"params"}, 1, zeros_leaf, NULL), 0);
}

jx_t jx_optim_check_state(const jx_optimizer *o, jx_t state, int n, const char *what) {
  bool ok =
      n < 0 ? !jx_is_tree(state) && jx_ndim(state) == 0 && jx_dtype_of(state) == JX_I32 : jx_len(state) == n;
  if (ok) return NULL;
  char b[64] = "a tree";
  if (!jx_is_tree(state))
    jx_aval_str(jx_aval_of(state), b, sizeof b);
  else
    snprintf(b, sizeof b, "a tree of length %d", jx_len(state));
  return jx_error_new("%s: the state should be %s, not %s", o->name, what, b);
}

jx_t jx_optim_increment(jx_t count) {
  return jx_where(jx_lt(count, jx_scalar_int(INT32_MAX)), jx_add(count, jx_scalar_int(1)), count);
}

/* ------------------------------------------------------- public entries */

static jx_t bad_object(jx_optimizer *o, const char *what) {
  if (!o) return jx_error_new("optimizer %s: the optimizer is NULL", what);
  if (o->error) return jx_error_new("%s", o->error);
  return NULL;
}

/* Params (and grads, state) must be trees of arrays: a leaf that is an
 * error is returned as it is, like every op given an error. */
static jx_t first_error_leaf(jx_t t) {
  if (jx_is_error(t)) return t ? t : jx_error_new("optimizer: a tree is NULL");
  if (!jx_is_tree(t)) return NULL;
  for (int i = 0; i < jx_len(t); i++) {
    jx_t e = first_error_leaf(jx_at(t, i));
    if (e) return e;
  }
  return NULL;
}

/* An error from inside an update, named after the optimizer (unless it
 * already is). */
static jx_t named(const jx_optimizer *o, const char *what, jx_t r) {
  if (jx_ok(r)) return r;
  const char *m = jx_error(r);
  size_t n = strlen(o->name);
  if (m && !strncmp(m, o->name, n)) return r;
  return jx_error_new("%s %s: %s", o->name, what, m ? m : "NULL");
}

jx_t jx_optim_init(jx_optimizer *o, jx_t params) {
  jx_t e = bad_object(o, "init");
  if (!e) e = first_error_leaf(params);
  if (e) return e;
  return named(o, "init", o->kind->init(o, params));
}

jx_t jx_optim_update(jx_optimizer *o, jx_t grads, jx_t state, jx_t params) {
  jx_t e = bad_object(o, "update");
  if (!e) e = first_error_leaf(grads);
  if (!e) e = first_error_leaf(state);
  if (!e && params) e = first_error_leaf(params);
  if (e) return e;
  if (params && (e = jx_optim_check_like(o, "grads", grads, "params", params))) return e;
  return named(o, "update", o->kind->update(o, grads, state, params));
}

static jx_t add_leaf(jx_t p, jx_t u, void *unused) {
  (void)unused;
  return jx_astype(jx_add(p, u), jx_dtype_of(p));
}

/* optax.apply_updates: p + u, in p's dtype */
jx_t jx_apply_updates(jx_t params, jx_t updates) {
  static const optim_kind k = {"apply_updates", NULL, NULL};
  jx_optimizer o = {.kind = &k, .name = "apply_updates"};
  jx_t e = first_error_leaf(params);
  if (!e) e = first_error_leaf(updates);
  if (!e) e = jx_optim_check_like(&o, "updates", updates, "params", params);
  if (e) return e;
  return named(&o, "", jx_tree_map2(add_leaf, params, updates, NULL));
}

/* optax.global_norm: sqrt of the sum of squares of every leaf */
jx_t jx_global_norm(jx_t tree) {
  jx_t e = first_error_leaf(tree);
  if (e) return e;
  int n = jx_tree_leaves_to(tree, NULL, 0);
  jx_t small[16], *l = n <= 16 ? small : jx_malloc(sizeof(jx_t) * (size_t)n);
  if (!l) return jx_error_new("global_norm: out of memory");
  jx_tree_leaves_to(tree, l, n);
  jx_t total = jx_scalar(0.0);
  for (int i = 0; i < n; i++) total = jx_add(total, jx_sum(jx_square(l[i])));
  if (l != small) jx_free(l);
  return jx_sqrt(total);
}
