/* Function values, calling (inside a pool), partial application. */
#include "api/api.h"

jx_fn *jx_fn_make(jx_body body, int nargs, void *closure, void (*free_closure)(void *), const char *name) {
  if (!body || nargs < 0) {
    if (free_closure) free_closure(closure);
    return NULL;
  }
  jx_fn *f = jx_malloc(sizeof *f);
  if (!f) {
    if (free_closure) free_closure(closure);
    return NULL;
  }
  atomic_init(&f->refs, 1);
  f->body = body;
  f->nargs = nargs;
  f->user = closure;
  f->free_user = free_closure;
  f->name = name;
  return f;
}

jx_fn *jx_fn_new(jx_body body, int nargs, void *user) {
  return jx_fn_make(body, nargs, user, NULL, "function");
}

jx_fn *jx_fn_ref(jx_fn *f) {
  if (f) atomic_fetch_add(&f->refs, 1);
  return f;
}

void jx_fn_free(jx_fn *f) {
  if (!f || atomic_fetch_sub(&f->refs, 1) != 1) return;
  if (f->free_user) f->free_user(f->user);
  jx_free(f);
}

int jx_fn_nargs(jx_fn *f) { return f ? f->nargs : -1; }

jx_t jx_fn_check_args(const char *op, jx_fn *f, const jx_t *args) {
  if (!f) return jx_error_new("%s: function is NULL (a transformation failed to build it?)", op);
  if (f->nargs > 0 && !args) return jx_error_new("%s: args is NULL for a %d-argument function", op, f->nargs);
  for (int i = 0; i < f->nargs; i++) {
    if (!args[i]) return jx_error_new("%s: argument %d is NULL", op, i);
    if (args[i]->kind == JX_VK_ERROR) return args[i];
  }
  return NULL;
}

/* The body runs in its own pool; only its result survives. */
jx_t jx_call(jx_fn *f, const jx_t *args) {
  jx_t e = jx_fn_check_args("call", f, args);
  if (e) return e;
  size_t mark = jx_pool_mark();
  jx_t out = jx_retain(f->body(args, f->user));
  jx_pool_release_to(mark);
  if (!out) return jx_error_new("call: the %s returned NULL", f->name);
  return jx_pool_own(out);
}

/* ------------------------------------------------------------- partial */
typedef struct {
  jx_fn *f;
  int nbound;
  jx_t *bound;
} partial_closure;

static void partial_free(void *u) {
  partial_closure *c = u;
  for (int i = 0; i < c->nbound; i++) jx_release(c->bound[i]);
  jx_free(c->bound);
  jx_fn_free(c->f);
  jx_free(c);
}

static jx_t partial_body(const jx_t *args, void *u) {
  partial_closure *c = u;
  int n = c->f->nargs;
  jx_t small[16] = {0}, *all = n <= 16 ? small : jx_malloc(sizeof(jx_t) * (size_t)n);
  if (!all) return jx_error_new("partial: out of memory");
  for (int i = 0; i < n; i++) all[i] = i < c->nbound ? c->bound[i] : args[i - c->nbound];
  jx_t out = jx_call(c->f, all);
  if (all != small) jx_free(all);
  return out;
}

jx_fn *jx_partial(jx_fn *f, int nbound, const jx_t *bound) {
  if (!f || nbound < 0 || nbound > f->nargs || (nbound && !bound)) return NULL;
  partial_closure *c = jx_calloc(1, sizeof *c);
  if (!c) return NULL;
  c->bound = jx_malloc(sizeof(jx_t) * (size_t)(nbound ? nbound : 1));
  if (!c->bound) {
    jx_free(c);
    return NULL;
  }
  c->f = jx_fn_ref(f);
  c->nbound = nbound;
  for (int i = 0; i < nbound; i++) c->bound[i] = jx_retain(bound[i]);
  return jx_fn_make(partial_body, f->nargs - nbound, c, partial_free, "partial");
}
