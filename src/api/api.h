/* jx_fn: a function value. User functions are a body plus user data;
 * transformations build new jx_fn whose body is a C function of theirs and
 * whose `user` is their closure (which holds a reference to the inner
 * function). Reference counted so that transformed functions keep what
 * they wrap alive. */
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
};

/* A function with a closure owned by it. */
jx_fn *jx_fn_make(jx_body body, int nargs, void *closure, void (*free_closure)(void *), const char *name);
jx_fn *jx_fn_ref(jx_fn *f); /* +1 reference */

/* Validate args for calling f: non-NULL f, no error values. */
jx_t jx_fn_check_args(const char *op, jx_fn *f, const jx_t *args);

#endif
