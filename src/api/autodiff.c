/* Automatic differentiation: jvp, linearize, vjp, grad, value_and_grad,
 * jacfwd, jacrev, hessian.
 *
 * Reverse mode is linearize + transpose (as in JAX): f runs under a jvp
 * trace whose tangents are tracers of a stage trace below it. Primal
 * computations involve no stage tracer, so they run for real (their
 * results are the residuals); every op on a tangent is recorded, giving a
 * jaxpr linear in the input tangents. The backward pass transposes it. */
#include "api/api.h"
#include "prims/lax.h"
#include "prims/prims.h"
#include "trace/trace.h"

#include <stdio.h>

enum { MAX_LEAVES_STACK = 32 };

/* ------------------------------------------------------------- helpers */
typedef struct {
  jx_t *v;
  int n;
  jx_t small[MAX_LEAVES_STACK];
} leaves;

static jx_t leaves_of(jx_t tree, leaves *l) {
  l->n = jx_tree_leaves_to(tree, NULL, 0);
  l->v = l->n <= MAX_LEAVES_STACK ? l->small : jx_malloc(sizeof(jx_t) * (size_t)l->n);
  if (!l->v) return jx_error_new("out of memory flattening a tree of %d leaves", l->n);
  jx_tree_leaves_to(tree, l->v, l->n);
  return NULL;
}
static void leaves_free(leaves *l) {
  if (l->v != l->small) jx_free(l->v);
}

static jx_t check_argnum(const char *op, jx_fn *f, int argnum) {
  if (argnum < 0 || argnum >= f->nargs)
    return jx_error_new("%s: argnum %d is out of range for a function of %d arguments", op, argnum, f->nargs);
  return NULL;
}

/* every leaf a float array (differentiation needs real inputs) */
static jx_t check_float_leaves(const char *op, const leaves *l) {
  for (int i = 0; i < l->n; i++) {
    if (jx_is_error(l->v[i])) return l->v[i];
    if (!jx_dtype_is_float(l->v[i]->aval.dtype)) {
      char s[160];
      return jx_error_new("%s: differentiation requires float inputs, but input leaf %d is %s", op, i,
                          jx_aval_str(&l->v[i]->aval, s, sizeof s));
    }
  }
  return NULL;
}

/* What is differentiated: args[argnum] (argnum >= 0), all the args as a
 * tuple (ALL_ARGS), or the tuple of args[sel[k]] (SELECTED, grad_ex). */
enum { ALL_ARGS = -1, SELECTED = -2 };
typedef struct {
  int argnum, nsel;
  const int *sel;
} target;

static jx_t target_of(const target *t, const jx_fn *f, const jx_t *args) {
  if (t->argnum >= 0) return args[t->argnum];
  if (t->argnum == ALL_ARGS) return jx_tuple(f->nargs, args);
  jx_t small[16] = {0}, *a = t->nsel <= 16 ? small : jx_malloc(sizeof(jx_t) * (size_t)t->nsel);
  if (!a) return jx_error_new("out of memory");
  for (int k = 0; k < t->nsel; k++) a[k] = args[t->sel[k]];
  jx_t r = jx_tuple(t->nsel, a);
  if (a != small) jx_free(a);
  return r;
}

/* f on args with the target replaced by `with` */
static jx_t call_target(jx_fn *f, const jx_t *args, const target *t, jx_t with) {
  int n = f->nargs;
  jx_t small[16] = {0}, *a = n <= 16 ? small : jx_malloc(sizeof(jx_t) * (size_t)n);
  if (!a) return jx_error_new("out of memory");
  for (int i = 0; i < n; i++) a[i] = t->argnum == ALL_ARGS ? jx_at(with, i) : t->argnum == i ? with : args[i];
  for (int k = 0; t->argnum == SELECTED && k < t->nsel; k++) a[t->sel[k]] = jx_at(with, k);
  jx_t out = jx_call(f, a);
  if (a != small) jx_free(a);
  return out;
}

/* args with args[argnum] replaced by `with` (argnum < 0: all args, from a tuple) */
static jx_t call_with(jx_fn *f, const jx_t *args, int argnum, jx_t with) {
  target t = {argnum < 0 ? ALL_ARGS : argnum, 0, NULL};
  return call_target(f, args, &t, with);
}

/* ----------------------------------------------------------- linearize */
typedef struct {
  jx_t out;      /* primal output (tree or array) */
  jx_jaxpr *lin; /* tangent leaves of the input -> tangent leaves of out */
  jx_t in_tree;  /* the differentiated input (its structure) */
} linearized;

static jx_t linearize_target(const char *op, jx_fn *f, const jx_t *args, const target *tg, linearized *L) {
  L->lin = NULL;
  jx_t target = target_of(tg, f, args);
  if (!jx_ok(target)) return target;
  L->in_tree = target;
  leaves in;
  jx_t err = leaves_of(target, &in);
  if (err) return err;
  err = check_float_leaves(op, &in);
  if (err) {
    leaves_free(&in);
    return err;
  }
  jx_stage *S = jx_stage_begin(false);
  if (!S) {
    leaves_free(&in);
    return jx_error_new("%s: %s", op, jx_trace_push_failure());
  }
  jx_trace *J = jx_jvp_begin();
  if (!J) {
    jx_stage_abort(S);
    leaves_free(&in);
    return jx_error_new("%s: %s", op, jx_trace_push_failure());
  }
  J->label = jx_stage_trace(S)->label = op;
  for (int i = 0; i < in.n && !err; i++) {
    jx_t t = jx_stage_input(S, &in.v[i]->aval);
    in.v[i] = jx_jvp_tracer(J, in.v[i], t);
    if (!jx_ok(in.v[i])) err = in.v[i];
  }
  jx_t out = err ? err : call_target(f, args, tg, jx_tree_build(target, in.v));
  leaves_free(&in);
  leaves ol = {0};
  /* a read of a traced value (jx_item, ...) inside f poisoned a trace */
  if (!err) err = jx_trace_poisoned(J);
  if (!err) err = jx_trace_poisoned(jx_stage_trace(S));
  if (!err && !jx_ok(out)) err = out;
  if (!err) err = leaves_of(out, &ol);
  jx_t tsmall[MAX_LEAVES_STACK], *tan = NULL;
  if (!err) {
    tan = ol.n <= MAX_LEAVES_STACK ? tsmall : jx_malloc(sizeof(jx_t) * (size_t)ol.n);
    if (!tan) err = jx_error_new("%s: out of memory", op);
  }
  for (int i = 0; !err && i < ol.n; i++) {
    if (ol.v[i]->kind == JX_VK_ERROR)
      err = ol.v[i];
    else
      jx_jvp_unpack(J, ol.v[i], &ol.v[i], &tan[i]);
  }
  jx_jvp_end(J);
  if (err) {
    jx_stage_abort(S);
    leaves_free(&ol);
    if (tan && tan != tsmall) jx_free(tan);
    return err;
  }
  for (int i = 0; i < ol.n; i++)
    if (!tan[i]) tan[i] = jx_lax_zeros(&ol.v[i]->aval);
  L->out = jx_tree_build(out, ol.v);
  L->lin = jx_stage_end(S, ol.n, tan, &err);
#ifdef JX_DEBUG_CHECKS
  /* callers release L->lin only on success */
  if (L->lin && !err && (err = jx_jaxpr_typecheck(L->lin))) {
    jx_jaxpr_release(L->lin);
    L->lin = NULL;
  }
#endif
  leaves_free(&ol);
  if (tan != tsmall) jx_free(tan);
  return err;
}

static jx_t linearize(const char *op, jx_fn *f, const jx_t *args, int argnum, linearized *L) {
  target t = {argnum < 0 ? ALL_ARGS : argnum, 0, NULL};
  return linearize_target(op, f, args, &t, L);
}

/* ------------------------------------------------------ value_and_grad */
typedef struct {
  jx_fn *f;
  int argnum;
  bool with_value;
} grad_closure;

static void grad_free(void *u) {
  grad_closure *c = u;
  jx_fn_release(c->f);
  jx_free(c);
}

/* grad's output: a float scalar */
static jx_t check_scalar(const char *op, jx_t out) {
  char s[160];
  if (!jx_is_array(out) && !jx_is_tracer(out))
    return jx_error_new("%s: the function must return a scalar array, but it returned a tree", op);
  if (out->aval.ndim != 0)
    return jx_error_new("%s: the function must return a scalar (0-d) array, but it returned %s", op,
                        jx_aval_str(&out->aval, s, sizeof s));
  if (!jx_dtype_is_float(out->aval.dtype))
    return jx_error_new("%s: the function must return a float scalar, but it returned %s", op,
                        jx_aval_str(&out->aval, s, sizeof s));
  return NULL;
}

static jx_t grad_body(const jx_t *args, void *u) {
  grad_closure *c = u;
  const char *op = c->with_value ? "value_and_grad" : "grad";
  jx_t err = check_argnum(op, c->f, c->argnum);
  if (err) return err;
  linearized L;
  err = linearize(op, c->f, args, c->argnum, &L);
  if (err) return err;
  jx_t out = L.out;
  err = check_scalar(op, out);
  jx_t result = err;
  if (!err) {
    jx_t ct = jx_scalar_of(out->aval.dtype, 1.0);
    leaves in;
    err = leaves_of(L.in_tree, &in);
    if (!err) {
      err = jx_backward_pass(L.lin, &ct, in.v);
      jx_t g = err ? err : jx_tree_build(L.in_tree, in.v);
      result = c->with_value ? JX_TUPLE(out, g) : g;
      leaves_free(&in);
    }
    if (err) result = err;
  }
  jx_jaxpr_release(L.lin);
  return result;
}

/* a transformation's function and argnum, checked when it is made: NULL
 * if fine, else the error function to return */
static jx_fn *check_fn_argnum(const char *op, jx_fn *f, int argnum) {
  jx_fn *bad = jx_fn_unusable(op, f);
  if (bad) return bad;
  jx_t err = check_argnum(op, f, argnum);
  return err ? jx_fn_error_new("%s", jx_error(err)) : NULL;
}

static jx_fn *make_grad(jx_fn *f, int argnum, bool with_value) {
  const char *op = with_value ? "value_and_grad" : "grad";
  jx_fn *bad = check_fn_argnum(op, f, argnum);
  if (bad) return bad;
  grad_closure *c = jx_malloc(sizeof *c);
  if (!c) return jx_fn_error_new("%s: out of memory", op);
  *c = (grad_closure){jx_fn_ref(f), argnum, with_value};
  return jx_fn_make(grad_body, f->nargs, c, grad_free, with_value ? "value_and_grad" : "grad");
}
jx_fn *jx_grad(jx_fn *f, int argnum) { return make_grad(f, argnum, false); }
jx_fn *jx_value_and_grad(jx_fn *f, int argnum) { return make_grad(f, argnum, true); }

/* ------------------------------------------- grad_ex, value_and_grad_ex */
typedef struct {
  jx_fn *f;
  int *argnums, n;
  bool has_aux, with_value;
} grad_ex_closure;

static void grad_ex_free(void *u) {
  grad_ex_closure *c = u;
  jx_fn_release(c->f);
  jx_free(c->argnums);
  jx_free(c);
}

/* the gradients (a tuple, one per argnum) of the value, out's first leaf */
static jx_t grads_of(const linearized *L, jx_t out) {
  leaves ol, in;
  jx_t err = leaves_of(out, &ol);
  if (err) return err;
  jx_t *cts = jx_calloc((size_t)(ol.n + 1), sizeof(jx_t));
  if (!cts) err = jx_error_new("grad: out of memory");
  if (!err) err = leaves_of(L->in_tree, &in);
  jx_t g = err;
  if (!err) {
    cts[0] = jx_scalar_of(ol.v[0]->aval.dtype, 1.0); /* aux leaves: zero cotangents */
    err = jx_backward_pass(L->lin, cts, in.v);
    g = err ? err : jx_tree_build(L->in_tree, in.v);
    leaves_free(&in);
  }
  jx_free(cts);
  leaves_free(&ol);
  return g;
}

static jx_t grad_ex_body(const jx_t *args, void *u) {
  grad_ex_closure *c = u;
  const char *op = c->with_value ? "value_and_grad" : "grad";
  target t = {SELECTED, c->n, c->argnums};
  linearized L;
  jx_t err = linearize_target(op, c->f, args, &t, &L);
  if (err) return err;
  jx_t out = L.out, value = out, aux = NULL;
  if (c->has_aux && (!jx_is_tree(out) || jx_len(out) != 2))
    err = jx_error_new("%s: with has_aux the function must return a (value, aux) pair, but it returned %s",
                       op, jx_is_tree(out) ? "another tree" : "an array");
  else if (c->has_aux)
    value = jx_at(out, 0), aux = jx_at(out, 1);
  if (!err) err = check_scalar(op, value);
  jx_t g = err ? err : grads_of(&L, out);
  jx_jaxpr_release(L.lin);
  if (!jx_ok(g)) return g;
  jx_t v = c->has_aux ? JX_TUPLE(value, aux) : value;
  if (c->with_value) return JX_TUPLE(v, g);
  return c->has_aux ? JX_TUPLE(g, aux) : g;
}

static jx_fn *make_grad_ex(jx_fn *f, int n, const int *argnums, bool has_aux, bool with_value) {
  const char *op = with_value ? "value_and_grad" : "grad";
  jx_fn *bad = jx_fn_unusable(op, f);
  if (bad) return bad;
  if (!argnums) n = 1; /* jax's default, argnums=0 */
  if (n < 1) return jx_fn_error_new("%s: argnums is empty (%d entries)", op, n);
  grad_ex_closure *c = jx_calloc(1, sizeof *c);
  int *a = c ? jx_malloc(sizeof(int) * (size_t)n) : NULL;
  if (!a) {
    jx_free(c);
    return jx_fn_error_new("%s: out of memory", op);
  }
  for (int k = 0; k < n; k++) {
    a[k] = argnums ? argnums[k] : 0;
    jx_t err = check_argnum(op, f, a[k]);
    for (int i = 0; !err && i < k; i++)
      if (a[i] == a[k]) err = jx_error_new("%s: argnums lists %d twice", op, a[k]);
    if (err) {
      jx_free(a), jx_free(c);
      return jx_fn_error_new("%s", jx_error(err));
    }
  }
  *c = (grad_ex_closure){jx_fn_ref(f), a, n, has_aux, with_value};
  return jx_fn_make(grad_ex_body, f->nargs, c, grad_ex_free, op);
}
jx_fn *jx_grad_ex(jx_fn *f, int nargnums, const int *argnums, bool has_aux) {
  return make_grad_ex(f, nargnums, argnums, has_aux, false);
}
jx_fn *jx_value_and_grad_ex(jx_fn *f, int nargnums, const int *argnums, bool has_aux) {
  return make_grad_ex(f, nargnums, argnums, has_aux, true);
}

/* ----------------------------------------------------------- linearize */
typedef struct {
  jx_jaxpr *lin;
  jx_t out_like, in_like; /* retained: tree structures */
  int nargs;
} lin_closure;

static void lin_free(void *u) {
  lin_closure *c = u;
  jx_jaxpr_release(c->lin);
  jx_release(c->out_like);
  jx_release(c->in_like);
  jx_free(c);
}

static jx_t lin_body(const jx_t *args, void *u) {
  lin_closure *c = u;
  jx_t t = jx_tuple(c->nargs, args);
  if (!jx_tree_same_structure(t, c->in_like))
    return jx_error_new("linearize: the tangents' tree structure differs from the primals'");
  leaves tl, pl, ol = {0};
  jx_t err = leaves_of(t, &tl);
  if (err) return err;
  if ((err = leaves_of(c->in_like, &pl))) {
    leaves_free(&tl);
    return err;
  }
  for (int i = 0; i < tl.n && !err; i++)
    if (!jx_aval_eq(&tl.v[i]->aval, &pl.v[i]->aval) || tl.v[i]->aval.dtype != pl.v[i]->aval.dtype) {
      char s1[160], s2[160];
      err = jx_error_new("linearize: tangent %d is %s but its primal is %s", i,
                         jx_aval_str(&tl.v[i]->aval, s1, sizeof s1),
                         jx_aval_str(&pl.v[i]->aval, s2, sizeof s2));
    }
  if (!err) err = leaves_of(c->out_like, &ol);
  if (!err) err = jx_eval_jaxpr(c->lin, tl.v, ol.v);
  jx_t r = err ? err : jx_tree_build(c->out_like, ol.v);
  leaves_free(&tl), leaves_free(&pl);
  if (ol.v) leaves_free(&ol);
  return r;
}

/* jax.linearize: the output at primals; *jvp_fn(tangents...) -> the
 * tangent of the output (the linear map, evaluated from the saved
 * residuals). On failure *jvp_fn is an error function. */
jx_t jx_linearize(jx_fn *f, const jx_t *primals, jx_fn **jvp_fn) {
  if (!jvp_fn) return jx_error_new("linearize: jvp_fn (where the linear function is stored) is NULL");
  jx_t err = jx_fn_check_args("linearize", f, primals);
  linearized L;
  if (!err) err = linearize("linearize", f, primals, -1, &L);
  lin_closure *c = err ? NULL : jx_malloc(sizeof *c);
  if (!err && !c) {
    jx_jaxpr_release(L.lin);
    err = jx_error_new("linearize: out of memory");
  }
  if (err) {
    *jvp_fn = jx_fn_error_new("%s", jx_error(err));
    return err;
  }
  *c = (lin_closure){L.lin, jx_retain(L.out), jx_retain(L.in_tree), f->nargs};
  *jvp_fn = jx_fn_make(lin_body, f->nargs, c, lin_free, "linearized function");
  jx_t e = jx_fn_error_value("linearize", *jvp_fn);
  return e ? e : L.out;
}

/* ----------------------------------------------------------------- jvp */
jx_t jx_jvp(jx_fn *f, const jx_t *primals, const jx_t *tangents) {
  jx_t err = jx_fn_check_args("jvp", f, primals);
  if (!err && f->nargs && !tangents) err = jx_error_new("jvp: tangents is NULL");
  if (err) return err;
  jx_t P = jx_tuple(f->nargs, primals), T = jx_tuple(f->nargs, tangents);
  if (!jx_ok(T)) return T;
  if (!jx_tree_same_structure(P, T))
    return jx_error_new("jvp: primals and tangents have different tree structures");
  leaves pl, tl;
  if ((err = leaves_of(P, &pl))) return err;
  if ((err = leaves_of(T, &tl))) {
    leaves_free(&pl);
    return err;
  }
  for (int i = 0; i < pl.n && !err; i++) {
    if (!jx_aval_eq(&pl.v[i]->aval, &tl.v[i]->aval)) {
      char s1[160], s2[160];
      err = jx_error_new("jvp: tangent %d is %s but its primal is %s (they must match)", i,
                         jx_aval_str(&tl.v[i]->aval, s1, sizeof s1),
                         jx_aval_str(&pl.v[i]->aval, s2, sizeof s2));
    }
  }
  jx_trace *J = err ? NULL : jx_jvp_begin();
  if (!J && !err) err = jx_error_new("jvp: %s", jx_trace_push_failure());
  for (int i = 0; i < pl.n && !err; i++) {
    bool diff = jx_dtype_is_float(pl.v[i]->aval.dtype);
    pl.v[i] = jx_jvp_tracer(J, pl.v[i], diff ? tl.v[i] : NULL);
    if (!jx_ok(pl.v[i])) err = pl.v[i];
  }
  if (J) J->label = "jvp";
  jx_t out = err ? err : call_with(f, NULL, -1, jx_tree_build(P, pl.v));
  leaves_free(&pl);
  leaves_free(&tl);
  leaves ol;
  if (!err) err = jx_trace_poisoned(J); /* a read of a traced value inside f */
  if (!err && !jx_ok(out)) err = out;
  if (!err) err = leaves_of(out, &ol);
  jx_t result = err;
  if (!err) {
    jx_t *tan = jx_malloc(sizeof(jx_t) * (size_t)(ol.n ? ol.n : 1));
    if (!tan) {
      result = jx_error_new("jvp: out of memory");
    } else {
      for (int i = 0; i < ol.n; i++) {
        jx_jvp_unpack(J, ol.v[i], &ol.v[i], &tan[i]);
        if (!tan[i]) tan[i] = jx_zeros_like(ol.v[i]);
      }
      result = JX_TUPLE(jx_tree_build(out, ol.v), jx_tree_build(out, tan));
      jx_free(tan);
    }
    leaves_free(&ol);
  }
  if (J) jx_jvp_end(J);
  return result;
}

/* ----------------------------------------------------------------- vjp */
typedef struct {
  jx_jaxpr *lin;
  jx_t out_like, in_like; /* retained: tree structures */
} vjp_closure;

static void vjp_free(void *u) {
  vjp_closure *c = u;
  jx_jaxpr_release(c->lin);
  jx_release(c->out_like);
  jx_release(c->in_like);
  jx_free(c);
}

static jx_t vjp_body(const jx_t *args, void *u) {
  vjp_closure *c = u;
  jx_t ct = args[0];
  if (!jx_tree_same_structure(ct, c->out_like))
    return jx_error_new("vjp: the cotangent's tree structure differs from the function's output");
  leaves cl, ol, il;
  jx_t err = leaves_of(ct, &cl);
  if (err) return err;
  if ((err = leaves_of(c->out_like, &ol))) {
    leaves_free(&cl);
    return err;
  }
  for (int i = 0; i < cl.n && !err; i++) {
    if (!jx_aval_eq(&cl.v[i]->aval, &ol.v[i]->aval)) {
      char s1[160], s2[160];
      err = jx_error_new("vjp: cotangent %d is %s but the output is %s", i,
                         jx_aval_str(&cl.v[i]->aval, s1, sizeof s1),
                         jx_aval_str(&ol.v[i]->aval, s2, sizeof s2));
    }
  }
  if (!err) err = leaves_of(c->in_like, &il);
  jx_t result = err;
  if (!err) {
    err = jx_backward_pass(c->lin, cl.v, il.v);
    result = err ? err : jx_tree_build(c->in_like, il.v);
    leaves_free(&il);
  }
  leaves_free(&cl);
  leaves_free(&ol);
  return result;
}

/* On failure *vjp_fn is an error function giving the same error. */
jx_t jx_vjp(jx_fn *f, const jx_t *primals, jx_fn **vjp_fn) {
  if (!vjp_fn) return jx_error_new("vjp: vjp_fn (where the pullback is stored) is NULL");
  jx_t err = jx_fn_check_args("vjp", f, primals);
  linearized L;
  if (!err) err = linearize("vjp", f, primals, -1, &L);
  vjp_closure *c = err ? NULL : jx_malloc(sizeof *c);
  if (!err && !c) {
    jx_jaxpr_release(L.lin);
    err = jx_error_new("vjp: out of memory");
  }
  if (err) {
    *vjp_fn = jx_fn_error_new("%s", jx_error(err));
    return err;
  }
  *c = (vjp_closure){L.lin, jx_retain(L.out), jx_retain(L.in_tree)};
  *vjp_fn = jx_fn_make(vjp_body, 1, c, vjp_free, "vjp function");
  jx_t e = jx_fn_error_value("vjp", *vjp_fn);
  return e ? e : L.out;
}

/* ------------------------------------------------------ jacfwd, jacrev */
/* Both linearize once, then push the whole basis through in one batched
 * pass (a batch trace over the basis vectors, as jax.jacfwd/jacrev vmap
 * the pushforward/pullback): jacfwd evaluates the linear jaxpr on the
 * input basis, jacrev runs its transpose on the output basis. Input and
 * output may be trees: the result is the output's tree whose leaves are
 * input-shaped trees of blocks of shape out_leaf.shape + in_leaf.shape. */
typedef struct {
  jx_fn *f;
  int argnum;
  bool reverse;
} jac_closure;

static void jac_free(void *u) {
  jac_closure *c = u;
  jx_fn_release(c->f);
  jx_free(c);
}

/* rows [off, off + size(a)) of the n x n identity, as n batched values of
 * aval a: basis vector k is one-hot at flat index k - off of a */
static jx_t basis_block(const jx_aval *a, int64_t n, int64_t off) {
  int64_t s = jx_aval_size(a), sh[2] = {n, s}, full[JX_MAX_RANK + 1];
  jx_t rows = jx_lax_iota(JX_I64, 2, sh, 0);
  jx_t cols = jx_lax_binary(
      JX_P_add, jx_lax_iota(JX_I64, 2, sh, 1),
      jx_lax_broadcast_to_aval(jx_scalar_of(JX_I64, (double)off), &(jx_aval){JX_I64, 2, false, {n, s}}));
  full[0] = n;
  for (int d = 0; d < a->ndim; d++) full[d + 1] = a->shape[d];
  return jx_lax_reshape(jx_lax_convert(jx_lax_binary(JX_P_eq, rows, cols), a->dtype), a->ndim + 1, full);
}

/* the Jacobian block d out_leaf / d in_leaf from the batched result r
 * (jacfwd: r is out-shaped, batched over the input basis, rows [off, off +
 * size(in)); jacrev: in-shaped over the output basis, rows of the out leaf) */
static jx_t jac_block(jx_t r, int64_t off, const jx_aval *ya, const jx_aval *xa, bool reverse) {
  const jx_aval *batched = reverse ? xa : ya, *basis = reverse ? ya : xa;
  int64_t nb = jx_aval_size(basis), start[JX_MAX_RANK + 1] = {off}, stop[JX_MAX_RANK + 1] = {off + nb};
  for (int d = 0; d < batched->ndim; d++) start[d + 1] = 0, stop[d + 1] = batched->shape[d];
  jx_t b = jx_slice(r, start, stop, NULL); /* basis rows x batched dims */
  int64_t shape[2 * JX_MAX_RANK];
  int k = 0;
  for (int d = 0; d < basis->ndim; d++) shape[k++] = basis->shape[d];
  for (int d = 0; d < batched->ndim; d++) shape[k++] = batched->shape[d];
  b = jx_reshape(b, k, shape);
  if (reverse) return b; /* out dims, then in dims */
  int perm[2 * JX_MAX_RANK];
  for (int d = 0; d < ya->ndim; d++) perm[d] = xa->ndim + d;
  for (int d = 0; d < xa->ndim; d++) perm[ya->ndim + d] = d;
  return jx_transpose(b, perm);
}

static jx_t jac_check(const char *op, const leaves *x, const leaves *y) {
  for (int j = 0; j < y->n; j++) {
    char s[160];
    if (!jx_dtype_is_float(y->v[j]->aval.dtype))
      return jx_error_new("%s: output leaf %d is %s; differentiation requires float outputs", op, j,
                          jx_aval_str(&y->v[j]->aval, s, sizeof s));
    for (int i = 0; i < x->n; i++)
      if (x->v[i]->aval.ndim + y->v[j]->aval.ndim > JX_MAX_RANK)
        return jx_error_new("%s: Jacobian rank %d exceeds %d", op, x->v[i]->aval.ndim + y->v[j]->aval.ndim,
                            JX_MAX_RANK);
  }
  return NULL;
}

/* the basis pushed through (jacfwd) or pulled back (jacrev), batched:
 * res[k] gets the batched result for leaf k of the other side */
static jx_t jac_pass(const linearized *L, const leaves *x, const leaves *y, bool reverse, int64_t n,
                     jx_t *res) {
  const leaves *from = reverse ? y : x, *to = reverse ? x : y;
  jx_t *bas = jx_malloc(sizeof(jx_t) * (size_t)(from->n + 1));
  jx_trace *T = bas ? jx_batch_begin(n) : NULL;
  jx_t err = T ? NULL : jx_error_new("jacobian: %s", bas ? jx_trace_push_failure() : "out of memory");
  if (T) T->label = reverse ? "jacrev" : "jacfwd";
  for (int64_t i = 0, off = 0; !err && i < from->n; off += jx_aval_size(&from->v[i]->aval), i++)
    bas[i] = jx_batch_tracer(T, basis_block(&from->v[i]->aval, n, off), 0);
  if (!err) err = reverse ? jx_backward_pass(L->lin, bas, res) : jx_eval_jaxpr(L->lin, bas, res);
  for (int k = 0; !err && k < to->n; k++) {
    jx_t v;
    int bd;
    jx_batch_unpack(T, res[k], &v, &bd);
    res[k] = jx_batch_to_front(v, bd, n);
    if (!jx_ok(res[k])) err = res[k];
  }
  if (T) jx_batch_end(T);
  jx_free(bas);
  return err;
}

static jx_t jac_body(const jx_t *args, void *u) {
  jac_closure *c = u;
  const char *op = c->reverse ? "jacrev" : "jacfwd";
  jx_t err = check_argnum(op, c->f, c->argnum);
  linearized L;
  if (!err) err = linearize(op, c->f, args, c->argnum, &L);
  if (err) return err;
  leaves x = {0}, y = {0};
  bool have_x = !(err = leaves_of(L.in_tree, &x)), have_y = have_x && !(err = leaves_of(L.out, &y));
  if (!err) err = jac_check(op, &x, &y);
  int64_t n = 0;
  const leaves *from = c->reverse ? &y : &x;
  for (int i = 0; !err && i < from->n; i++) n += jx_aval_size(&from->v[i]->aval);
  jx_t *res = err ? NULL : jx_malloc(sizeof(jx_t) * (size_t)(x.n + y.n + 1)),
       *blk = res ? res + (c->reverse ? x.n : y.n) : NULL;
  if (!err && !res) err = jx_error_new("%s: out of memory", op);
  if (!err) err = jac_pass(&L, &x, &y, c->reverse, n, res);
  jx_t *outs = err ? NULL : jx_malloc(sizeof(jx_t) * (size_t)(y.n + 1));
  if (!err && !outs) err = jx_error_new("%s: out of memory", op);
  for (int j = 0, offy = 0; !err && j < y.n; offy += (int)jx_aval_size(&y.v[j]->aval), j++) {
    for (int i = 0, offx = 0; i < x.n; offx += (int)jx_aval_size(&x.v[i]->aval), i++)
      blk[i] = c->reverse ? jac_block(res[i], offy, &y.v[j]->aval, &x.v[i]->aval, true)
                          : jac_block(res[j], offx, &y.v[j]->aval, &x.v[i]->aval, false);
    outs[j] = jx_tree_build(L.in_tree, blk);
  }
  jx_t result = err ? err : jx_tree_build(L.out, outs);
  jx_jaxpr_release(L.lin);
  if (have_x) leaves_free(&x);
  if (have_y) leaves_free(&y);
  jx_free(res), jx_free(outs);
  return result;
}

static jx_fn *make_jac(jx_fn *f, int argnum, bool reverse) {
  const char *op = reverse ? "jacrev" : "jacfwd";
  jx_fn *bad = check_fn_argnum(op, f, argnum);
  if (bad) return bad;
  jac_closure *c = jx_malloc(sizeof *c);
  if (!c) return jx_fn_error_new("%s: out of memory", op);
  *c = (jac_closure){jx_fn_ref(f), argnum, reverse};
  return jx_fn_make(jac_body, f->nargs, c, jac_free, reverse ? "jacrev" : "jacfwd");
}
jx_fn *jx_jacfwd(jx_fn *f, int argnum) { return make_jac(f, argnum, false); }
jx_fn *jx_jacrev(jx_fn *f, int argnum) { return make_jac(f, argnum, true); }

jx_fn *jx_hessian(jx_fn *f, int argnum) {
  jx_fn *bad = check_fn_argnum("hessian", f, argnum);
  if (bad) return bad;
  jx_fn *r = jx_jacrev(f, argnum);
  jx_fn *h = jx_jacfwd(r, argnum);
  jx_fn_free(r); /* h holds its own reference */
  return h;
}
