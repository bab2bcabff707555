/* jit: trace once per input signature (tree structure, dtypes, shapes,
 * weak types), cache the jaxpr, and bind the jit_call primitive on it: run
 * eagerly that compiles and runs native code (control/jit_call.c); under
 * grad/vmap/another jit its rules transform the jaxpr, which stays
 * compiled. */
#include "api/api.h"
#include "api/trace_fn.h"
#include "control/derive.h"
#include "trace/trace.h"

#include <pthread.h>
#include <stdio.h>

typedef struct entry {
  char *key;
  jx_jaxpr *jaxpr;
  jx_t out_like; /* retained: output tree structure */
  struct entry *next;
} entry;

typedef struct {
  jx_fn *f;
  pthread_mutex_t lock;
  entry *cache;
  int traces; /* how many times f was traced (tests check caching) */
  /* jx_jit_ex's options, per argument of f (NULL: none) */
  bool *is_static, *donate;
  int nstatic;
} jit_closure;

static void jit_free(void *u) {
  jit_closure *c = u;
  for (entry *e = c->cache, *n; e; e = n) {
    n = e->next;
    jx_free(e->key);
    jx_jaxpr_release(e->jaxpr);
    jx_release(e->out_like);
    jx_free(e);
  }
  pthread_mutex_destroy(&c->lock);
  jx_fn_release(c->f);
  jx_free(c->is_static);
  jx_free(c->donate);
  jx_free(c);
}

/* ------------------------------------------------------------ cache keys */
/* A growing string; out of memory frees it and sets oom (a truncated key
 * could match another signature). */
typedef struct {
  char *s;
  size_t n, cap;
  bool oom;
} keybuf;

static void kb_put(keybuf *k, const char *p, size_t n) {
  if (k->oom) return;
  if (k->n + n + 1 > k->cap) {
    size_t cap = (k->cap + n + 1) * 2;
    char *q = jx_realloc(k->s, cap);
    if (!q) {
      jx_free(k->s);
      *k = (keybuf){.oom = true};
      return;
    }
    k->s = q, k->cap = cap;
  }
  memcpy(k->s + k->n, p, n);
  k->n += n;
  k->s[k->n] = 0;
}

/* signature: tree structure (kinds, lengths, dict keys given with their
 * lengths, so no key can mimic another's) + each leaf's
 * dtype/shape/weakness; with bytes (static arguments) also each leaf's
 * value */
static void kb_sig(keybuf *k, jx_t x, bool bytes) {
  static const char kind_char[] = "([{*S"; /* by jx_tree_kind */
  char buf[200];
  if (jx_is_tree(x)) {
    snprintf(buf, sizeof buf, "%c%d;", kind_char[x->u.tree.tkind], x->u.tree.n);
    kb_put(k, buf, strlen(buf));
    for (int i = 0; x->u.tree.keys && i < x->u.tree.n; i++) {
      snprintf(buf, sizeof buf, "%zu:", strlen(jx_tree_key(x, i)));
      kb_put(k, buf, strlen(buf));
      kb_put(k, jx_tree_key(x, i), strlen(jx_tree_key(x, i)));
    }
    for (int i = 0; i < x->u.tree.n; i++) kb_sig(k, x->u.tree.items[i], bytes);
    return;
  }
  jx_aval_str(&x->aval, buf, sizeof buf);
  kb_put(k, buf, strlen(buf));
  if (bytes && jx_is_array(x)) { /* the exact value of a weak scalar, then the data */
    snprintf(buf, sizeof buf, "=%d,%a,%lld:", x->u.arr.exact, x->u.arr.exact_f, (long long)x->u.arr.exact_i);
    kb_put(k, buf, strlen(buf));
    const unsigned char *d = jx_data(x);
    size_t nb = (size_t)jx_aval_size(&x->aval) * jx_dtype_size(x->aval.dtype);
    for (size_t i = 0; i < nb; i++) {
      char h[2] = {"0123456789abcdef"[d[i] >> 4], "0123456789abcdef"[d[i] & 15]};
      kb_put(k, h, 2);
    }
  }
  kb_put(k, ";", 1);
}

static bool has_tracer_consts(const jx_jaxpr *j) {
  for (int i = 0; i < j->nconst; i++)
    if (jx_is_tracer(j->consts[i])) return true;
  return false;
}

/* The jaxpr of f for the signature key (taken): cached, else traced on
 * args and cached. Returns it retained, with its output structure in
 * *out_like (the cache entry's, or the trace's in the caller's pool), or
 * NULL with *err. */
static jx_jaxpr *cached_jaxpr(jit_closure *c, char *key, jx_fn *f, const jx_t *args, jx_t *out_like,
                              jx_t *err) {
  pthread_mutex_lock(&c->lock);
  entry *e = c->cache;
  while (e && strcmp(e->key, key)) e = e->next;
  jx_jaxpr *j = e ? e->jaxpr : NULL;
  *out_like = e ? e->out_like : NULL;
  if (j) jx_jaxpr_retain(j);
  pthread_mutex_unlock(&c->lock);
  if (!j) {
    j = jx_trace_to_jaxpr(f, args, out_like, err);
    if (!j) {
      jx_free(key);
      return NULL;
    }
    pthread_mutex_lock(&c->lock);
    c->traces++;
    /* a jaxpr that closed over an outer transformation's tracer is only
     * valid for this call */
    entry *ne = has_tracer_consts(j) ? NULL : jx_malloc(sizeof *ne);
    if (ne) {
      *ne = (entry){key, j, jx_retain(*out_like), c->cache};
      jx_jaxpr_retain(j);
      c->cache = ne;
      key = NULL;
    }
    pthread_mutex_unlock(&c->lock);
  }
  jx_free(key);
  return j;
}

/* --------------------------------------------------- static arguments */
/* f with its static arguments filled in: what jit traces when there are
 * some (the static values become the jaxpr's constants) */
typedef struct {
  const jit_closure *c;
  const jx_t *args; /* all of f's arguments */
} with_statics;

static jx_t with_statics_body(const jx_t *dyn, void *u) {
  const with_statics *w = u;
  int n = w->c->f->nargs;
  jx_t small[16] = {0}, *all = n <= 16 ? small : jx_malloc(sizeof(jx_t) * (size_t)n);
  if (!all) return jx_error_new("jit: out of memory");
  for (int i = 0, k = 0; i < n; i++) all[i] = w->c->is_static[i] ? w->args[i] : dyn[k++];
  jx_t out = jx_call(w->c->f, all);
  if (all != small) jx_free(all);
  return out;
}

static jx_t concrete_leaf(jx_t leaf, void *u) {
  if (jx_is_array(leaf)) return leaf;
  return jx_error_new("jit: static argument %d must be concrete, but a leaf is %s", *(int *)u,
                      jx_is_tracer(leaf) ? "a traced value (pass it as a dynamic argument)" : "not an array");
}

/* ---------------------------------------------------------------- calls */
/* One call's arguments resolved to a jaxpr: `dyn` the tuple of the
 * dynamic arguments (the jaxpr's inputs, flattened), `out_like` the
 * output structure. */
typedef struct {
  jx_t dyn;
  jx_jaxpr *j;
  jx_t out_like;
} prepared;

static jx_t prepare(jit_closure *c, const jx_t *args, prepared *pr) {
  *pr = (prepared){0};
  int n = c->f->nargs, nd = n - c->nstatic;
  jx_t small[16] = {0}, *dyn = nd <= 16 ? small : jx_malloc(sizeof(jx_t) * (size_t)nd), err = NULL;
  if (!dyn) return jx_error_new("jit: out of memory");
  for (int i = 0, k = 0; i < n; i++)
    if (!c->is_static || !c->is_static[i]) dyn[k++] = args[i];
  pr->dyn = jx_tuple(nd, dyn);
  keybuf k = {0};
  kb_sig(&k, pr->dyn, false);
  for (int i = 0; c->is_static && i < n && !err; i++) {
    if (!c->is_static[i]) continue;
    jx_t chk = jx_tree_map(concrete_leaf, args[i], &i);
    if (!jx_ok(chk)) err = chk;
    kb_put(&k, "|static:", 8);
    kb_sig(&k, args[i], true);
  }
  if (!err && !jx_ok(pr->dyn)) err = pr->dyn;
  if (!err && k.oom) err = jx_error_new("jit: out of memory");
  with_statics w = {c, args};
  struct jx_fn wf;
  memset(&wf, 0, sizeof wf);
  atomic_init(&wf.refs, 1);
  atomic_init(&wf.pool, NULL);
  wf.body = with_statics_body, wf.nargs = nd, wf.user = &w, wf.name = c->f->name;
  if (err)
    jx_free(k.s);
  else /* takes the key */
    pr->j = cached_jaxpr(c, k.s, c->nstatic ? &wf : c->f, dyn, &pr->out_like, &err);
  if (dyn != small) jx_free(dyn);
  return err;
}

/* Donated leaves of an eager call become error values once the program
 * has run (its outputs may own their buffers now). msg: one message per
 * leaf, made before the run (so that out of memory cannot leave one a
 * live array over a reused buffer); a leaf that is also an output stays. */
static void delete_donated(int nin, jx_t *in, char **msg, int nout, const jx_t *out) {
  for (int i = 0; i < nin; i++) {
    if (!msg[i]) continue;
    bool is_out = false;
    for (int k = 0; k < nout; k++) is_out |= out[k] == in[i];
    if (is_out || !jx_is_array(in[i])) {
      jx_free(msg[i]);
      continue;
    }
    jx_buffer_release(in[i]->u.arr.buf);
    memset(&in[i]->u, 0, sizeof in[i]->u);
    in[i]->u.err.msg = msg[i];
    in[i]->kind = JX_VK_ERROR;
  }
}

/* leaf i's donation message (NULL: not donated), for each leaf of dyn */
static bool donation_messages(const jit_closure *c, jx_t dyn, jx_t *in, char **msg) {
  for (int a = 0, k = 0, l = 0; a < c->f->nargs; a++) {
    if (c->is_static[a]) continue;
    int nl = jx_tree_leaves_to(jx_at(dyn, k++), NULL, 0);
    for (int e = 0; e < nl; e++, l++) {
      char s[160];
      msg[l] = !c->donate[a] ? NULL
                             : jx_asprintf("jit: argument %d (%s) was donated to a jitted function "
                                           "(donate_argnums) and deleted; use the function's outputs",
                                           a, jx_aval_str(&in[l]->aval, s, sizeof s));
      if (c->donate[a] && !msg[l]) return false;
    }
  }
  return true;
}

/* An eager call with donated arguments: run the executable, letting it
 * write outputs into donated buffers, then delete the donated arrays. */
static jx_t run_donating(const jit_closure *c, prepared *pr, jx_t *in, int nin, jx_t *out) {
  jx_scratch *sc = jx_scratch_here();
  jx_scratch_mark sm = jx_scratch_save(sc);
  char **msg = jx_scratch_zeros(sc, (size_t)(nin ? nin : 1), sizeof(char *));
  bool *donate = JX_SCRATCH(sc, bool, nin ? nin : 1);
  jx_t err = NULL;
  if (!msg || !donate || !donation_messages(c, pr->dyn, in, msg)) err = jx_error_new("jit: out of memory");
  /* under JX_DEBUG_NANS the inputs must survive the run (a NaN found in
   * the outputs re-runs the program on them): not reused, still deleted */
  bool nans = jx_debug_nans_on();
  for (int i = 0; !err && i < nin; i++) donate[i] = msg[i] != NULL && !nans;
  jx_executable *x = err ? NULL : jx_jaxpr_executable(pr->j, &err);
  if (x) err = jx_executable_run_donated(x, in, donate, out, NULL);
  if (!err && jx_debug_nans_on()) err = jx_debug_nans_jaxpr(pr->j, in, out);
  if (!err)
    delete_donated(nin, in, msg, pr->j->nout, out);
  else
    for (int i = 0; msg && i < nin; i++) jx_free(msg[i]);
  jx_scratch_release(sc, sm);
  return err;
}

static bool any_tracer(int n, const jx_t *x) {
  for (int i = 0; i < n; i++)
    if (!jx_is_array(x[i])) return true;
  return false;
}

static jx_t jit_body(const jx_t *args, void *u) {
  jit_closure *c = u;
  prepared pr;
  jx_t err = prepare(c, args, &pr);
  if (err) return err;
  jx_jaxpr *j = pr.j;
  int nleaves = jx_tree_leaves_to(pr.dyn, NULL, 0);
  jx_t *in = jx_malloc(sizeof(jx_t) * (size_t)(nleaves ? nleaves : 1));
  jx_t *out = jx_malloc(sizeof(jx_t) * (size_t)(j->nout ? j->nout : 1));
  jx_t result;
  if (!in || !out) {
    result = jx_error_new("jit: out of memory");
  } else {
    jx_tree_leaves_to(pr.dyn, in, nleaves);
    if (has_tracer_consts(j)) { /* closed over an outer tracer: run it inline */
      err = jx_eval_jaxpr(j, in, out);
    } else if (c->donate && !jx_dynamic_trace() && !any_tracer(nleaves, in)) {
      err = run_donating(c, &pr, in, nleaves, out);
    } else {
      jx_params q;
      jx_params_init(&q, JX_PK_CALL);
      q.call.jaxpr = j;
      err = jx_bind(JX_P_jit_call, nleaves, in, &q, j->nout, out);
    }
    result = err ? err : jx_tree_build(pr.out_like, out);
  }
  jx_free(in);
  jx_free(out);
  jx_jaxpr_release(j);
  return result;
}

/* argnums (negative: from the end) as a per-argument mask; NULL with
 * *err for one out of range */
static bool *argnum_mask(const char *what, int n, const int *argnums, int nargs, jx_fn **err) {
  if (n < 0 || (n && !argnums)) {
    *err = jx_fn_error_new("jit: %d %s with a NULL list", n, what);
    return NULL;
  }
  bool *m = jx_calloc((size_t)(nargs ? nargs : 1), sizeof *m);
  if (!m) *err = jx_fn_error_new("jit: out of memory");
  for (int i = 0; m && i < n; i++) {
    int a = argnums[i] < 0 ? argnums[i] + nargs : argnums[i];
    if (a < 0 || a >= nargs) {
      *err = jx_fn_error_new("jit: %s[%d] = %d is out of range for a function of %d arguments", what, i,
                             argnums[i], nargs);
      jx_free(m);
      return NULL;
    }
    m[a] = true;
  }
  return m;
}

jx_fn *jx_jit_ex(jx_fn *f, const jx_jit_options *o) {
  jx_fn *bad = jx_fn_unusable("jit", f);
  if (bad) return bad;
  bool *st = NULL, *dn = NULL;
  if (o && o->nstatic && !(st = argnum_mask("static_argnums", o->nstatic, o->static_argnums, f->nargs, &bad)))
    return bad;
  if (o && o->ndonate &&
      !(dn = argnum_mask("donate_argnums", o->ndonate, o->donate_argnums, f->nargs, &bad))) {
    jx_free(st);
    return bad;
  }
  int nstatic = 0;
  for (int i = 0; st && i < f->nargs; i++) {
    nstatic += st[i];
    if (dn && st[i] && dn[i]) bad = jx_fn_error_new("jit: argument %d is both static and donated", i);
  }
  jit_closure *c = bad ? NULL : jx_calloc(1, sizeof *c);
  if (!c) {
    jx_free(st), jx_free(dn);
    return bad ? bad : jx_fn_error_new("jit: out of memory");
  }
  /* donation needs the static mask too (to walk the dynamic arguments) */
  if (dn && !st && !(st = jx_calloc((size_t)(f->nargs ? f->nargs : 1), sizeof *st))) {
    jx_free(dn), jx_free(c);
    return jx_fn_error_new("jit: out of memory");
  }
  c->f = jx_fn_ref(f);
  c->is_static = st, c->donate = dn, c->nstatic = nstatic;
  pthread_mutex_init(&c->lock, NULL);
  return jx_fn_make(jit_body, f->nargs, c, jit_free, "jit");
}

jx_fn *jx_jit(jx_fn *f) { return jx_jit_ex(f, NULL); }

/* Ahead of time: trace (or find) and compile (or load) without running.
 * Under another transformation there is nothing to compile yet: the
 * program that runs is the transformed one. */
jx_t jx_jit_compile(jx_fn *jitted, const jx_t *args) {
  if (!jitted || jitted->body != jit_body) return jx_error_new("jit_compile: not a function made by jx_jit");
  jit_closure *c = jitted->user;
  jx_t err = jx_fn_check_args("jit_compile", jitted, args);
  if (err) return err;
  jx_pool_push();
  prepared pr;
  err = prepare(c, args, &pr);
  if (!err && has_tracer_consts(pr.j))
    err = jx_error_new("jit_compile: f closes over a value traced by an outer transformation; compile the "
                       "outer function instead");
  else if (!err)
    jx_jaxpr_executable(pr.j, &err);
  jx_jaxpr_release(pr.j);
  jx_retain(err);
  jx_pool_pop();
  return err ? jx_pool_own(err) : NULL;
}

/* How many times jit traced f (for tests of the cache). */
int jx_jit_trace_count(jx_fn *jitted) {
  if (!jitted || jitted->body != jit_body) return -1;
  jit_closure *c = jitted->user;
  pthread_mutex_lock(&c->lock);
  int n = c->traces;
  pthread_mutex_unlock(&c->lock);
  return n;
}
