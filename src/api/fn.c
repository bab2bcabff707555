/* Function values, calling (inside a pool), partial application. */
#include "api/api.h"

#include <stdio.h>

/* What allocation failure gives when not even an error function can be
 * made: static, so reference counting and pools skip it. */
static jx_t oom_body(const jx_t *args, void *u) {
  (void)args, (void)u;
  return jx_error_new("out of memory building a function");
}
static jx_fn oom_fn = {.body = oom_body, .name = "out-of-memory function"};

/* f's first reference goes to the current pool (the caller's, like a
 * jx_t's); out of memory frees f and gives oom_fn */
static jx_fn *pool_owned(jx_fn *f) {
  size_t slot;
  if (!jx_pool_own_fn(f, &slot)) {
    if (f->free_user) f->free_user(f->user);
    jx_release(f->err);
    jx_free(f);
    return &oom_fn;
  }
  f->slot = slot;
  atomic_store(&f->pool, jx_pool_thread());
  return f;
}

static jx_fn *fn_alloc(jx_body body, int nargs, void *closure, void (*free_closure)(void *),
                       const char *name) {
  jx_fn *f = jx_malloc(sizeof *f);
  if (!f) {
    if (free_closure) free_closure(closure);
    return NULL;
  }
  memset(f, 0, sizeof *f);
  atomic_init(&f->refs, 1);
  atomic_init(&f->pool, NULL);
  f->body = body;
  f->nargs = nargs;
  f->user = closure;
  f->free_user = free_closure;
  f->name = name;
  return f;
}

jx_fn *jx_fn_make(jx_body body, int nargs, void *closure, void (*free_closure)(void *), const char *name) {
  if (!body || nargs < 0) {
    if (free_closure) free_closure(closure);
    return !body ? jx_fn_error_new("fn_new: the body is NULL")
                 : jx_fn_error_new("fn_new: nargs is %d (negative)", nargs);
  }
  jx_fn *f = fn_alloc(body, nargs, closure, free_closure, name);
  return f ? pool_owned(f) : &oom_fn;
}

/* an error function's body: its error, in the caller's pool */
static jx_t error_body(const jx_t *args, void *u) {
  (void)args;
  return jx_pool_own(jx_retain(u));
}

static jx_fn *error_fn(jx_t err) {
  if (!err) return &oom_fn;
  jx_fn *f = fn_alloc(error_body, 0, err, NULL, "error function");
  if (!f) return &oom_fn;
  f->err = jx_retain(err);
  f->user = f->err;
  return pool_owned(f);
}

jx_fn *jx_fn_error_new(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  jx_t err = jx_verror_new(fmt, ap);
  va_end(ap);
  return error_fn(err);
}

jx_fn *jx_fn_unusable(const char *op, jx_fn *f) {
  if (!f) return jx_fn_error_new("%s: the function is NULL", op);
  if (f == &oom_fn) return &oom_fn;
  return f->err ? error_fn(f->err) : NULL;
}

jx_t jx_fn_error_value(const char *op, jx_fn *f) {
  if (!f) return jx_error_new("%s: function is NULL (a transformation failed to build it?)", op);
  if (f == &oom_fn) return oom_body(NULL, NULL);
  return f->err ? jx_pool_own(jx_retain(f->err)) : NULL;
}

jx_fn *jx_fn_new(jx_body body, int nargs, void *user) {
  return jx_fn_make(body, nargs, user, NULL, "function");
}

jx_fn *jx_fn_retain(jx_fn *f) {
  if (f && f != &oom_fn) atomic_fetch_add(&f->refs, 1);
  return f;
}
jx_fn *jx_fn_ref(jx_fn *f) { return jx_fn_retain(f); }

void jx_fn_release(jx_fn *f) {
  if (!f || f == &oom_fn || atomic_fetch_sub(&f->refs, 1) != 1) return;
  if (f->free_user) f->free_user(f->user);
  jx_release(f->err);
  jx_free(f->own_name);
  jx_free(f);
}

/* the pool that owned f was popped */
void jx_fn_pool_drop(jx_fn *f) {
  atomic_store(&f->pool, NULL);
  jx_fn_release(f);
}

/* The caller's reference: the pool's while f is still in a pool of this
 * thread (f leaves the pool, which then never drops it again), else one
 * taken with jx_fn_retain. While a pool of another thread holds f, that
 * pool's reference is not this thread's to drop: nothing happens. */
void jx_fn_free(jx_fn *f) {
  if (!f || f == &oom_fn) return;
  const void *owner = atomic_load(&f->pool);
  if (owner == jx_pool_thread() && jx_pool_forget_fn(f, f->slot)) {
    atomic_store(&f->pool, NULL);
  } else if (owner) {
    return;
  }
  jx_fn_release(f);
}

int jx_fn_nargs(jx_fn *f) { return f && !f->err && f != &oom_fn ? f->nargs : -1; }

const char *jx_fn_error(jx_fn *f) {
  if (!f) return "null function";
  if (f == &oom_fn) return "out of memory building a function";
  return f->err ? jx_error(f->err) : NULL;
}

jx_t jx_fn_check_args(const char *op, jx_fn *f, const jx_t *args) {
  jx_t e = jx_fn_error_value(op, f);
  if (e || f == &oom_fn) return e;
  if (f->nargs > 0 && !args) return jx_error_new("%s: args is NULL for a %d-argument function", op, f->nargs);
  for (int i = 0; i < f->nargs; i++) {
    if (!args[i]) return jx_error_new("%s: argument %d is NULL", op, i);
    if (args[i]->kind == JX_VK_ERROR) return args[i];
  }
  return NULL;
}

/* The functions being called on this thread, outermost first: an error a
 * body returns is located by the innermost call that sees it, while every
 * enclosing call is still here ("in grad(vmap(jit(loss)))"). Deeper calls
 * than the array holds are counted, not named. */
enum { FRAMES_NAMED = 32 };
static _Thread_local const char *frames[FRAMES_NAMED];
static _Thread_local int nframes;

static jx_t locate(jx_t e) {
  char where[512];
  size_t n = 0;
  int named = nframes < FRAMES_NAMED ? nframes : FRAMES_NAMED;
  for (int i = 0; i < named && n < sizeof where; i++)
    n += (size_t)snprintf(where + n, sizeof where - n, "%s%s", frames[i], i + 1 < named ? "(" : "");
  for (int i = 1; i < named && n < sizeof where; i++) n += (size_t)snprintf(where + n, sizeof where - n, ")");
  if (nframes > named && n < sizeof where)
    snprintf(where + n, sizeof where - n, " (%d calls deeper)", nframes - named);
  return jx_retain(jx_error_located(e, where));
}

/* The body runs in its own pool; only its result survives. */
jx_t jx_call(jx_fn *f, const jx_t *args) {
  jx_t e = jx_fn_check_args("call", f, args);
  if (e) return e;
  size_t mark = jx_pool_mark();
  if (nframes < FRAMES_NAMED) frames[nframes] = f->name;
  nframes++;
  jx_t out = jx_retain(f->body(args, f->user));
  jx_pool_release_to(mark);
  if (!out) out = jx_retain(jx_error_new("call: the %s returned NULL", f->name));
  if (out->kind == JX_VK_ERROR && !out->u.err.located) {
    jx_t l = locate(out);
    jx_release(out);
    out = l;
  }
  nframes--;
  return jx_pool_own(out);
}

void jx_fn_set_name(jx_fn *f, const char *name) {
  if (!f || f == &oom_fn || !name) return;
  char *s = jx_asprintf("%s", name);
  if (!s) return; /* out of memory: the old name stays */
  jx_free(f->own_name);
  f->own_name = s;
  f->name = s;
}

const char *jx_fn_name(jx_fn *f) {
  if (!f) return "null function";
  return f == &oom_fn ? oom_fn.name : f->name;
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
  jx_fn_release(c->f);
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
  jx_fn *bad = jx_fn_unusable("partial", f);
  if (bad) return bad;
  if (nbound < 0 || nbound > f->nargs)
    return jx_fn_error_new("partial: cannot bind %d arguments of a function of %d", nbound, f->nargs);
  if (nbound && !bound) return jx_fn_error_new("partial: bound is NULL for %d arguments", nbound);
  for (int i = 0; i < nbound; i++)
    if (!bound[i]) return jx_fn_error_new("partial: bound argument %d is NULL", i);
  partial_closure *c = jx_calloc(1, sizeof *c);
  c->bound = c ? jx_malloc(sizeof(jx_t) * (size_t)(nbound ? nbound : 1)) : NULL;
  if (!c || !c->bound) {
    jx_free(c);
    return jx_fn_error_new("partial: out of memory");
  }
  c->f = jx_fn_ref(f);
  c->nbound = nbound;
  for (int i = 0; i < nbound; i++) c->bound[i] = jx_retain(bound[i]);
  return jx_fn_make(partial_body, f->nargs - nbound, c, partial_free, "partial");
}
