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

/* args with args[argnum] replaced by `with` (argnum < 0: all args, from a tuple) */
static jx_t call_with(jx_fn *f, const jx_t *args, int argnum, jx_t with) {
  int n = f->nargs;
  jx_t small[16] = {0}, *a = n <= 16 ? small : jx_malloc(sizeof(jx_t) * (size_t)n);
  if (!a) return jx_error_new("out of memory");
  for (int i = 0; i < n; i++) a[i] = argnum < 0 ? jx_at(with, i) : i == argnum ? with : args[i];
  jx_t out = jx_call(f, a);
  if (a != small) jx_free(a);
  return out;
}

/* ----------------------------------------------------------- linearize */
typedef struct {
  jx_t out;      /* primal output (tree or array) */
  jx_jaxpr *lin; /* tangent leaves of the input -> tangent leaves of out */
  jx_t in_tree;  /* the differentiated input (its structure) */
} linearized;

static jx_t linearize(const char *op, jx_fn *f, const jx_t *args, int argnum, linearized *L) {
  L->lin = NULL;
  jx_t target = argnum >= 0 ? args[argnum] : jx_tuple(f->nargs, args);
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
  jx_t out = err ? err : call_with(f, args, argnum, jx_tree_build(target, in.v));
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

static jx_t grad_body(const jx_t *args, void *u) {
  grad_closure *c = u;
  const char *op = c->with_value ? "value_and_grad" : "grad";
  jx_t err = check_argnum(op, c->f, c->argnum);
  if (err) return err;
  linearized L;
  err = linearize(op, c->f, args, c->argnum, &L);
  if (err) return err;
  jx_t out = L.out;
  char s[160];
  if (!jx_is_array(out) && !jx_is_tracer(out))
    err = jx_error_new("%s: the function must return a scalar array, but it returned a tree", op);
  else if (out->aval.ndim != 0)
    err = jx_error_new("%s: the function must return a scalar (0-d) array, but it returned %s", op,
                       jx_aval_str(&out->aval, s, sizeof s));
  else if (!jx_dtype_is_float(out->aval.dtype))
    err = jx_error_new("%s: the function must return a float scalar, but it returned %s", op,
                       jx_aval_str(&out->aval, s, sizeof s));
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
/* Both linearize once. jacfwd pushes each input basis vector through the
 * linear jaxpr (forward); jacrev pulls each output basis vector back
 * through its transpose. Result shape: out.shape + in.shape. */
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

static jx_t basis(const jx_aval *a, int64_t i) {
  int64_t n = jx_aval_size(a);
  jx_t idx = jx_scalar_of(JX_I64, (double)i);
  jx_t oh = jx_lax_convert(jx_lax_binary(JX_P_eq, jx_lax_iota(JX_I64, 1, &n, 0), idx), a->dtype);
  return jx_lax_reshape(oh, a->ndim, a->shape);
}

static jx_t jac_body(const jx_t *args, void *u) {
  jac_closure *c = u;
  const char *op = c->reverse ? "jacrev" : "jacfwd";
  jx_t err = check_argnum(op, c->f, c->argnum);
  if (err) return err;
  if (jx_is_tree(args[c->argnum]))
    return jx_error_new("%s: the differentiated argument must be an array, not a tree", op);
  linearized L;
  err = linearize(op, c->f, args, c->argnum, &L);
  if (err) return err;
  if (jx_is_tree(L.out)) {
    jx_jaxpr_release(L.lin);
    return jx_error_new("%s: the function must return an array, not a tree", op);
  }
  const jx_aval *xa = &args[c->argnum]->aval, *ya = &L.out->aval;
  if (xa->ndim + ya->ndim > JX_MAX_RANK) {
    jx_jaxpr_release(L.lin);
    return jx_error_new("%s: Jacobian rank %d exceeds %d", op, xa->ndim + ya->ndim, JX_MAX_RANK);
  }
  int64_t n = c->reverse ? jx_aval_size(ya) : jx_aval_size(xa);
  jx_t *rows = jx_malloc(sizeof(jx_t) * (size_t)(n ? n : 1));
  if (!rows) {
    jx_jaxpr_release(L.lin);
    return jx_error_new("%s: out of memory", op);
  }
  for (int64_t i = 0; i < n && !err; i++) {
    jx_t e = basis(c->reverse ? ya : xa, i);
    err = c->reverse ? jx_backward_pass(L.lin, &e, &rows[i]) : jx_eval_jaxpr(L.lin, &e, &rows[i]);
    if (!err) rows[i] = jx_reshape(rows[i], 1, (int64_t[]){-1});
  }
  jx_jaxpr_release(L.lin);
  int64_t shape[JX_MAX_RANK];
  int r = 0;
  for (int d = 0; d < ya->ndim; d++) shape[r++] = ya->shape[d];
  for (int d = 0; d < xa->ndim; d++) shape[r++] = xa->shape[d];
  jx_t result;
  if (err) {
    result = err;
  } else if (n == 0) {
    result = jx_zeros(ya->dtype, r, shape);
  } else {
    /* rows are flattened columns (jacfwd: d out / d x_i) or rows (jacrev) */
    jx_t m = jx_stack((int)n, rows, c->reverse ? 0 : 1);
    result = jx_reshape(m, r, shape);
  }
  jx_free(rows);
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
