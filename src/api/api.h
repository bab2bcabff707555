/* jx_fn: a function value. User functions are a body plus user data;
 * transformations build new jx_fn whose body is a C function of theirs and
 * whose `user` is their closure (which holds a reference to the inner
 * function, taken with jx_fn_retain and dropped with jx_fn_release).
 * Reference counted so that transformed functions keep what they wrap
 * alive. Like a jx_t, a new jx_fn's first reference belongs to the pool
 * open when it was made (`pool`, `slot`: its entry there, until the pool
 * drops it or jx_fn_free takes it back). An error function (`err` set)
 * is what a transformation given bad arguments returns: every call gives
 * err. */
#ifndef JX_API_H
#define JX_API_H

#include "core/core.h"
#include "ir/jaxpr.h"

struct jx_fn {
  atomic_int refs;
  jx_body body;
  int nargs;
  void *user;
  void (*free_user)(void *user); /* closure destructor (transformations) */
  const char *name;              /* for messages: "grad", "vmap", user "f" */
  _Atomic(const void *) pool;    /* jx_pool_thread() of the pools holding its entry; NULL: none */
  size_t slot;                   /* that entry */
  jx_t err;                      /* an error function's error (retained), else NULL */
  char *own_name;                /* a name given by jx_fn_set_name (owned; name points at it) */
};

/* A function with a closure owned by it, owned by the current pool. Out
 * of memory frees the closure and gives an error function. */
jx_fn *jx_fn_make(jx_body body, int nargs, void *closure, void (*free_closure)(void *), const char *name);
jx_fn *jx_fn_ref(jx_fn *f); /* +1 reference (jx_fn_retain) */
/* An error function whose calls give the error formatted (made now, so a
 * fail-fast error handler sees it where the bad argument was given). */
jx_fn *jx_fn_error_new(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* What a transformation `op` returns when handed f: NULL when f is a
 * usable function, else an error function (f NULL, or f an error function:
 * its error, passed on like an error value). */
jx_fn *jx_fn_unusable(const char *op, jx_fn *f);
/* f's error as a value of the current pool when f is an error function
 * (or NULL: an error naming op), else NULL. */
jx_t jx_fn_error_value(const char *op, jx_fn *f);

/* Validate args for calling f: non-NULL f, no error values. */
jx_t jx_fn_check_args(const char *op, jx_fn *f, const jx_t *args);

#endif
