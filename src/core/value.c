/* Values, reference counts, pools and error values. */
#include "core.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* ---------------------------------------------------------------- pools */
/* One thread-local vector of owned references; a pool is a mark into it. */
typedef struct {
  jx_t *items;
  size_t n, cap;
  size_t *marks;
  size_t nmarks, capmarks;
  /* Pushes whose mark could not be stored (out of memory): each is merged
   * into the pool below it, and its pop releases nothing. Once one fails,
   * deeper pushes are counted here too, so pops stay in LIFO order. */
  size_t merged;
} pool_stack;

static _Thread_local pool_stack pools;

/* Threads other than the main one drop their pools when they exit. */
static pthread_key_t pool_key;
static pthread_once_t pool_key_once = PTHREAD_ONCE_INIT;
static void release_thread_pools(void *unused) {
  (void)unused;
  jx_pool_release_to(0);
  jx_free(pools.items);
  jx_free(pools.marks);
  pools = (pool_stack){0};
}
static void make_pool_key(void) { pthread_key_create(&pool_key, release_thread_pools); }

/* Before the first allocation of either vector on this thread: arrange
 * their release when the thread exits. */
static void arm_thread_cleanup(void) {
  if (pools.cap || pools.capmarks) return;
  pthread_once(&pool_key_once, make_pool_key);
  pthread_setspecific(pool_key, &pools);
}

/* false when out of memory: the caller still owns x */
static bool pool_append(jx_t x) {
  if (pools.n == pools.cap) {
    arm_thread_cleanup();
    size_t cap = pools.cap ? pools.cap * 2 : 1024;
    jx_t *items = jx_realloc(pools.items, cap * sizeof *items);
    if (!items) return false;
    pools.items = items;
    pools.cap = cap;
  }
  pools.items[pools.n++] = x;
  return true;
}

size_t jx_pool_mark(void) { return pools.n; }

/* An entry with the low bit set is a jx_fn (values and functions are
 * malloc'd, so the bit is free): the pool owns functions as it owns values
 * (api/fn.c), and an entry whose function was freed early is NULL. */
#define FN_TAG ((uintptr_t)1)

void jx_pool_release_to(size_t mark) {
  /* Release newest first: results are usually made from earlier values. */
  while (pools.n > mark) {
    jx_t x = pools.items[--pools.n];
    if ((uintptr_t)x & FN_TAG)
      jx_fn_pool_drop((jx_fn *)((uintptr_t)x & ~FN_TAG));
    else
      jx_release(x);
  }
}

const void *jx_pool_thread(void) { return &pools; }

bool jx_pool_own_fn(jx_fn *f, size_t *slot) {
  *slot = pools.n;
  return pool_append((jx_t)((uintptr_t)f | FN_TAG));
}

bool jx_pool_forget_fn(jx_fn *f, size_t slot) {
  if (slot >= pools.n || pools.items[slot] != (jx_t)((uintptr_t)f | FN_TAG)) return false;
  pools.items[slot] = NULL;
  return true;
}

static struct jx_value oom_error;

jx_t jx_pool_own(jx_t x) {
  if (!x || pool_append(x)) return x;
  jx_release(x); /* nobody could free it later */
  return &oom_error;
}

void jx_pool_push(void) {
  if (!pools.merged && pools.nmarks == pools.capmarks) {
    arm_thread_cleanup();
    size_t cap = pools.capmarks ? pools.capmarks * 2 : 16;
    size_t *m = jx_realloc(pools.marks, cap * sizeof *m);
    if (m) {
      pools.marks = m;
      pools.capmarks = cap;
    }
  }
  if (pools.merged || pools.nmarks == pools.capmarks)
    pools.merged++;
  else
    pools.marks[pools.nmarks++] = pools.n;
}

void jx_pool_pop(void) {
  if (pools.merged) {
    pools.merged--; /* its values go with the enclosing pool */
    return;
  }
  if (pools.nmarks == 0) return; /* the root pool is never popped */
  jx_pool_release_to(pools.marks[--pools.nmarks]);
}

/* At exit, drop the root pool so leak checkers report only real leaks. */
void jx_buffer_cache_trim(void);
static void release_root(void) {
  jx_pool_release_to(0);
  jx_free(pools.items);
  jx_free(pools.marks);
  pools = (pool_stack){0};
  jx_buffer_cache_trim();
}
__attribute__((constructor)) static void install_exit_hook(void) { atexit(release_root); }

/* --------------------------------------------------------------- values */
jx_t jx_value_new(jx_vkind kind) {
  jx_t v = jx_malloc(sizeof *v);
  if (!v) return NULL;
  memset(v, 0, sizeof *v);
  atomic_init(&v->refs, 1);
  v->kind = (uint8_t)kind;
  if (!pool_append(v)) {
    jx_free(v);
    return NULL;
  }
  return v;
}

/* What an allocation failure gives when even an error value cannot be
 * made: static, so reference counting skips it. */
static struct jx_value oom_error = {.kind = JX_VK_ERROR, .u.err.msg = "out of memory"};

jx_t jx_array_new(const jx_aval *aval) {
  char err[300];
  if (jx_aval_check(aval, err, sizeof err)) return jx_error_new("array: %s", err);
  int64_t n = jx_aval_size(aval);
  size_t nbytes = (size_t)n * jx_dtype_size(aval->dtype);
  jx_buffer *b = jx_buffer_new(nbytes);
  if (!b) {
    char s[128];
    return jx_error_new("out of memory allocating %s (%zu bytes)", jx_aval_str(aval, s, sizeof s), nbytes);
  }
  jx_t v = jx_value_new(JX_VK_ARRAY);
  if (!v) {
    jx_buffer_release(b);
    return &oom_error;
  }
  v->aval = *aval;
  v->u.arr.buf = b;
  return v;
}

jx_t jx_array_new_shape(jx_dtype dt, int ndim, const int64_t *shape) {
  jx_aval a = {.dtype = dt, .ndim = (int8_t)ndim};
  for (int i = 0; i < ndim; i++) a.shape[i] = shape[i];
  return jx_array_new(&a);
}

static void value_free(jx_t v) {
  switch ((jx_vkind)v->kind) {
    case JX_VK_ARRAY: jx_buffer_release(v->u.arr.buf); break;
    case JX_VK_TRACER: {
      jx_trace *t = v->u.tr.trace;
      if (t->vt->free_tracer) t->vt->free_tracer(v);
      jx_release(v->u.tr.a);
      jx_release(v->u.tr.b);
      jx_trace_unref(t);
      break;
    }
    case JX_VK_TREE:
      for (int i = 0; i < v->u.tree.n; i++) jx_release(v->u.tree.items[i]);
      jx_free(v->u.tree.items);
      jx_free(v->u.tree.keys);
      break;
    case JX_VK_ERROR: jx_free(v->u.err.msg); break;
  }
  jx_free(v);
}

jx_t jx_retain(jx_t x) {
  if (x && x != &oom_error) atomic_fetch_add(&x->refs, 1);
  return x;
}

void jx_release(jx_t x) {
  if (!x || x == &oom_error) return;
  if (atomic_fetch_sub(&x->refs, 1) == 1) value_free(x);
}

/* --------------------------------------------------------------- errors */
static void (*error_handler)(const char *, void *);
static void *error_handler_data;
static _Thread_local bool quiet_errors;

bool jx_errors_quiet(bool on) {
  bool was = quiet_errors;
  quiet_errors = on;
  return was;
}

void jx_set_error_handler(void (*h)(const char *msg, void *u), void *u) {
  error_handler = h;
  error_handler_data = u;
}

jx_t jx_verror_new(const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  char *msg = n >= 0 ? jx_malloc((size_t)n + 1) : NULL;
  if (msg) vsnprintf(msg, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  jx_t v = msg ? jx_value_new(JX_VK_ERROR) : NULL;
  if (!v) {
    jx_free(msg);
    v = &oom_error;
  } else {
    v->u.err.msg = msg;
  }
  if (error_handler && !quiet_errors) error_handler(v->u.err.msg, error_handler_data);
  return v;
}

/* e's message followed by where it was raised (the handler saw e
 * already: it is not told again). e itself when out of memory. */
jx_t jx_error_located(jx_t e, const char *where) {
  char *msg = jx_asprintf("%s (in %s)", e->u.err.msg, where);
  jx_t v = msg ? jx_value_new(JX_VK_ERROR) : NULL;
  if (!v) {
    jx_free(msg);
    return e;
  }
  v->u.err.msg = msg;
  v->u.err.located = true;
  return v;
}

jx_t jx_error_new(const char *fmt, ...) {
  if (!fmt) return jx_error_new("error (jx_error_new was given a NULL format)");
  va_list ap;
  va_start(ap, fmt);
  jx_t e = jx_verror_new(fmt, ap);
  va_end(ap);
  return e;
}

jx_t jx_first_error(int n, const jx_t *xs) {
  for (int i = 0; i < n; i++) {
    if (!xs[i]) return jx_error_new("null jx_t passed as an argument (argument %d)", i);
    if (xs[i]->kind == JX_VK_ERROR) return xs[i];
  }
  return NULL;
}

bool jx_ok(jx_t x) { return x && x->kind != JX_VK_ERROR; }
const char *jx_error(jx_t x) {
  if (!x) return "null value";
  return x->kind == JX_VK_ERROR ? x->u.err.msg : NULL;
}

char *jx_asprintf(const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = n >= 0 ? jx_malloc((size_t)n + 1) : NULL;
  if (s) vsnprintf(s, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return s;
}
