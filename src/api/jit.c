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
  jx_fn_free(c->f);
  jx_free(c);
}

/* Appends k bytes to the signature. Out of memory frees *s and leaves it
 * NULL (a truncated key could match another signature). */
static void sig_put(const char *buf, size_t k, char **s, size_t *n, size_t *cap) {
  if (*n && !*s) return;
  if (*n + k + 2 > *cap) {
    size_t cap2 = (*cap + k + 2) * 2;
    char *q = jx_realloc(*s, cap2);
    if (!q) {
      jx_free(*s);
      *s = NULL;
      *n = 1; /* marks the failure for the recursion */
      return;
    }
    *s = q;
    *cap = cap2;
  }
  memcpy(*s + *n, buf, k);
  *n += k;
  (*s)[(*n)++] = ';';
  (*s)[*n] = 0;
}

/* signature: tree structure (kinds, lengths, dict keys given with their
 * lengths, so no key can mimic another's) + each leaf's
 * dtype/shape/weakness */
static void sig_rec(jx_t x, char **s, size_t *n, size_t *cap) {
  static const char kind_char[] = "([{*S"; /* by jx_tree_kind */
  char buf[200];
  if (jx_is_tree(x)) {
    snprintf(buf, sizeof buf, "%c%d", kind_char[x->u.tree.tkind], x->u.tree.n);
    sig_put(buf, strlen(buf), s, n, cap);
    for (int i = 0; x->u.tree.keys && i < x->u.tree.n; i++) {
      snprintf(buf, sizeof buf, "%zu:", strlen(jx_tree_key(x, i)));
      sig_put(buf, strlen(buf), s, n, cap);
      sig_put(jx_tree_key(x, i), strlen(jx_tree_key(x, i)), s, n, cap);
    }
    for (int i = 0; i < x->u.tree.n; i++) sig_rec(x->u.tree.items[i], s, n, cap);
  } else {
    jx_aval_str(&x->aval, buf, sizeof buf);
    sig_put(buf, strlen(buf), s, n, cap);
  }
}

static bool has_tracer_consts(const jx_jaxpr *j) {
  for (int i = 0; i < j->nconst; i++)
    if (jx_is_tracer(j->consts[i])) return true;
  return false;
}

/* The jaxpr for the signature of `all` (the arguments as one tuple):
 * cached, else traced and cached. Returns it retained, with its output
 * structure in *out_like (the cache entry's, or the trace's in the
 * caller's pool), or NULL with *err. */
static jx_jaxpr *signature_jaxpr(jit_closure *c, jx_t all, const jx_t *args, jx_t *out_like, jx_t *err) {
  size_t n = 0, cap = 0;
  char *key = NULL;
  sig_rec(all, &key, &n, &cap);
  if (!key) {
    *err = jx_error_new("jit: out of memory");
    return NULL;
  }
  pthread_mutex_lock(&c->lock);
  entry *e = c->cache;
  while (e && strcmp(e->key, key)) e = e->next;
  jx_jaxpr *j = e ? e->jaxpr : NULL;
  *out_like = e ? e->out_like : NULL;
  if (j) jx_jaxpr_retain(j);
  pthread_mutex_unlock(&c->lock);
  if (!j) {
    j = jx_trace_to_jaxpr(c->f, args, out_like, err);
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

static jx_t jit_body(const jx_t *args, void *u) {
  jit_closure *c = u;
  jx_t all = jx_tuple(c->f->nargs, args);
  if (!jx_ok(all)) return all;
  jx_t err = NULL, out_like = NULL;
  jx_jaxpr *j = signature_jaxpr(c, all, args, &out_like, &err);
  if (!j) return err;
  int nleaves = jx_tree_leaves_to(all, NULL, 0);
  jx_t *in = jx_malloc(sizeof(jx_t) * (size_t)(nleaves ? nleaves : 1));
  jx_t *out = jx_malloc(sizeof(jx_t) * (size_t)(j->nout ? j->nout : 1));
  jx_t result;
  if (!in || !out) {
    result = jx_error_new("jit: out of memory");
  } else {
    jx_tree_leaves_to(all, in, nleaves);
    if (has_tracer_consts(j)) { /* closed over an outer tracer: run it inline */
      err = jx_eval_jaxpr(j, in, out);
    } else {
      jx_params q;
      jx_params_init(&q, JX_PK_CALL);
      q.call.jaxpr = j;
      err = jx_bind(JX_P_jit_call, nleaves, in, &q, j->nout, out);
    }
    result = err ? err : jx_tree_build(out_like, out);
  }
  jx_free(in);
  jx_free(out);
  jx_jaxpr_release(j);
  return result;
}

jx_fn *jx_jit(jx_fn *f) {
  if (!f) return NULL;
  jit_closure *c = jx_calloc(1, sizeof *c);
  if (!c) return NULL;
  c->f = jx_fn_ref(f);
  pthread_mutex_init(&c->lock, NULL);
  return jx_fn_make(jit_body, f->nargs, c, jit_free, "jit");
}

/* Ahead of time: trace (or find) and compile (or load) without running.
 * Under another transformation there is nothing to compile yet: the
 * program that runs is the transformed one. */
jx_t jx_jit_compile(jx_fn *jitted, const jx_t *args) {
  if (!jitted || jitted->body != jit_body) return jx_error_new("jit_compile: not a function made by jx_jit");
  jit_closure *c = jitted->user;
  jx_pool_push();
  jx_t all = jx_tuple(c->f->nargs, args), err = NULL, out_like = NULL;
  jx_jaxpr *j = jx_ok(all) ? signature_jaxpr(c, all, args, &out_like, &err) : NULL;
  if (!jx_ok(all))
    err = all;
  else if (j && has_tracer_consts(j))
    err = jx_error_new("jit_compile: f closes over a value traced by an outer transformation; compile the "
                       "outer function instead");
  else if (j)
    jx_jaxpr_executable(j, &err);
  if (j) jx_jaxpr_release(j);
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
