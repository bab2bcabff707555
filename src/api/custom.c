/* jx_custom_jvp, jx_custom_vjp: functions with user derivative rules
 * (jax.custom_jvp, jax.custom_vjp). The rules run lazily, when a
 * transformation needs them: see control/custom.h.
 *
 * Called on concrete arguments with no jit tracing, the function simply
 * runs. Otherwise (an argument is a tracer, or jit/make_jaxpr is staging)
 * it is traced into a jaxpr whose constants become leading operands, and
 * bound as custom_jvp_call / custom_vjp_call with its rules. */
#include "control/custom.h"
#include "api/api.h"
#include "api/trace_fn.h"
#include "trace/trace.h"

#include <stdio.h>

typedef struct {
  jx_fn *f, *rule, *fwd, *bwd; /* rule: custom_jvp; fwd, bwd: custom_vjp */
  bool *nondiff;               /* per argument of f */
  bool vjp;
} custom_closure;

static void custom_free(void *u) {
  custom_closure *c = u;
  jx_fn_release(c->f), jx_fn_release(c->rule), jx_fn_release(c->fwd), jx_fn_release(c->bwd);
  jx_free(c->nondiff);
  jx_free(c);
}

static jx_t any_tracer(jx_t leaf, void *u) {
  *(bool *)u |= jx_is_tracer(leaf);
  return leaf;
}

/* Whether a transformation may see the call: an argument is a tracer, or
 * any trace is active (the function may read a tracer from outside its
 * arguments: bound as a primitive, that value becomes an operand, which
 * the rules check). A trace pushed at level 1 means none was. */
static const jx_trace_vt probe_vt = {.name = "probe"};
static bool traced(int n, const jx_t *args) {
  bool any = jx_dynamic_trace() != NULL;
  for (int i = 0; i < n && !any; i++) jx_tree_map(any_tracer, args[i], &any);
  if (any) return true;
  jx_trace *t = jx_trace_push(&probe_vt, NULL);
  any = !t || t->level > 1;
  if (t) jx_trace_pop(t);
  return any;
}

/* trace f, make its rules, bind the primitive */
static jx_t custom_bind_call(custom_closure *c, const char *op, const jx_t *args) {
  jx_t out_like, err;
  jx_jaxpr *j = jx_trace_to_jaxpr_for(op, c->f, args, &out_like, &err);
  if (!j) return err;
  jx_t *consts = NULL, all = jx_tuple(c->f->nargs, args), *ins = NULL, *outs = NULL;
  if (!jx_ok(all)) {
    jx_jaxpr_release(j);
    return all;
  }
  int nc = jx_jaxpr_hoist_consts(j, &consts), n = jx_tree_leaves_to(all, NULL, 0);
  const char *name = c->f->name;
  jx_crule *r = nc < 0   ? NULL
                : c->vjp ? jx_crule_vjp(c->fwd, c->bwd, name, all, c->nondiff, out_like)
                         : jx_crule_jvp(c->rule, name, all, c->nondiff, out_like);
  jx_jaxpr *carrier = r ? jx_crule_carrier(r) : NULL;
  if (carrier) {
    ins = jx_malloc(sizeof(jx_t) * (size_t)(nc + n + 1));
    outs = jx_malloc(sizeof(jx_t) * (size_t)(j->nout + 1));
  }
  jx_t result = ins && outs ? NULL : jx_error_new("%s: out of memory", op);
  if (!result) {
    for (int i = 0; i < nc; i++) ins[i] = consts[i];
    jx_tree_leaves_to(all, ins + nc, n);
    err = jx_custom_bind(c->vjp ? JX_P_custom_vjp_call : JX_P_custom_jvp_call, j, carrier, nc, ins, outs);
    result = err ? err : jx_tree_build(out_like, outs);
  }
  for (int i = 0; i < nc; i++) jx_release(consts[i]);
  jx_free(consts), jx_free(ins), jx_free(outs);
  jx_jaxpr_release(carrier);
  jx_jaxpr_release(j);
  return result;
}

static jx_t custom_body(const jx_t *args, void *u) {
  custom_closure *c = u;
  if (!traced(c->f->nargs, args)) return jx_call(c->f, args);
  return custom_bind_call(c, c->vjp ? "custom_vjp" : "custom_jvp", args);
}

/* the nondiff mask from nondiff_argnums, or an error function */
static jx_fn *nondiff_mask(const char *op, jx_fn *f, int n, const int *argnums, bool **mask, int *count) {
  *count = 0;
  *mask = jx_calloc((size_t)(f->nargs + 1), sizeof(bool));
  if (!*mask) return jx_fn_error_new("%s: out of memory", op);
  if (n < 0 || (n > 0 && !argnums)) return jx_fn_error_new("%s: bad nondiff_argnums list (%d)", op, n);
  for (int i = 0; i < n; i++) {
    if (argnums[i] < 0 || argnums[i] >= f->nargs)
      return jx_fn_error_new("%s: nondiff_argnums[%d] = %d is out of range for a function of %d arguments",
                             op, i, argnums[i], f->nargs);
    if ((*mask)[argnums[i]]) return jx_fn_error_new("%s: nondiff_argnums lists %d twice", op, argnums[i]);
    (*mask)[argnums[i]] = true;
    (*count)++;
  }
  return NULL;
}

static jx_fn *check_rule(const char *op, const char *what, jx_fn *rule, int want, const char *form) {
  jx_fn *bad = jx_fn_unusable(op, rule);
  if (bad) return bad;
  if (rule->nargs != want)
    return jx_fn_error_new("%s: %s takes %d arguments, but it must take %d: %s", op, what, rule->nargs, want,
                           form);
  return NULL;
}

static jx_fn *make_custom(const char *op, jx_fn *f, jx_fn *rule, jx_fn *fwd, jx_fn *bwd, int nnd,
                          const int *nondiff_argnums) {
  jx_fn *bad = jx_fn_unusable(op, f);
  if (bad) return bad;
  bool *mask;
  int nd;
  bad = nondiff_mask(op, f, nnd, nondiff_argnums, &mask, &nd);
  if (!bad && rule)
    bad = check_rule(op, "the jvp rule", rule, nd + 2, "(nondiff args..., primals, tangents)");
  if (!bad && fwd) bad = check_rule(op, "fwd", fwd, f->nargs, "the function's arguments");
  if (!bad && bwd) bad = check_rule(op, "bwd", bwd, nd + 2, "(nondiff args..., residuals, cotangent)");
  custom_closure *c = bad ? NULL : jx_calloc(1, sizeof *c);
  if (!c) {
    jx_free(mask);
    return bad ? bad : jx_fn_error_new("%s: out of memory", op);
  }
  c->f = jx_fn_ref(f);
  c->rule = rule ? jx_fn_ref(rule) : NULL;
  c->fwd = fwd ? jx_fn_ref(fwd) : NULL;
  c->bwd = bwd ? jx_fn_ref(bwd) : NULL;
  c->nondiff = mask;
  c->vjp = fwd != NULL;
  return jx_fn_make(custom_body, f->nargs, c, custom_free, op);
}

jx_fn *jx_custom_jvp_ex(jx_fn *f, jx_fn *jvp_rule, int nnondiff, const int *nondiff_argnums) {
  jx_fn *bad = jx_fn_unusable("custom_jvp", jvp_rule);
  return bad ? bad : make_custom("custom_jvp", f, jvp_rule, NULL, NULL, nnondiff, nondiff_argnums);
}
jx_fn *jx_custom_jvp(jx_fn *f, jx_fn *jvp_rule) { return jx_custom_jvp_ex(f, jvp_rule, 0, NULL); }

jx_fn *jx_custom_vjp_ex(jx_fn *f, jx_fn *fwd, jx_fn *bwd, int nnondiff, const int *nondiff_argnums) {
  jx_fn *bad = jx_fn_unusable("custom_vjp", fwd);
  if (!bad) bad = jx_fn_unusable("custom_vjp", bwd);
  return bad ? bad : make_custom("custom_vjp", f, NULL, fwd, bwd, nnondiff, nondiff_argnums);
}
jx_fn *jx_custom_vjp(jx_fn *f, jx_fn *fwd, jx_fn *bwd) { return jx_custom_vjp_ex(f, fwd, bwd, 0, NULL); }

/* ---------------------------------------------------------- checkpoint */
typedef struct {
  jx_fn *f;
  jx_params pa; /* remat's params but the jaxpr: the policy and names */
} remat_closure;

static void remat_free(void *u) {
  remat_closure *c = u;
  jx_fn_release(c->f);
  jx_free(c);
}

static jx_t remat_body(const jx_t *args, void *u) {
  remat_closure *c = u;
  if (!traced(c->f->nargs, args)) return jx_call(c->f, args);
  jx_t out_like, err;
  jx_jaxpr *j = jx_trace_to_jaxpr_for("checkpoint", c->f, args, &out_like, &err);
  if (!j) return err;
  jx_t *consts = NULL, all = jx_tuple(c->f->nargs, args), *ins = NULL, *outs = NULL;
  if (!jx_ok(all)) {
    jx_jaxpr_release(j);
    return all;
  }
  int nc = jx_jaxpr_hoist_consts(j, &consts), n = jx_tree_leaves_to(all, NULL, 0);
  if (nc >= 0) {
    ins = jx_malloc(sizeof(jx_t) * (size_t)(nc + n + 1));
    outs = jx_malloc(sizeof(jx_t) * (size_t)(j->nout + 1));
  }
  jx_t result = ins && outs ? NULL : jx_error_new("checkpoint: out of memory");
  if (!result) {
    for (int i = 0; i < nc; i++) ins[i] = consts[i];
    jx_tree_leaves_to(all, ins + nc, n);
    jx_params q = c->pa;
    q.remat.jaxpr = j;
    err = jx_bind(JX_P_remat, j->nin, ins, &q, j->nout, outs);
    result = err ? err : jx_tree_build(out_like, outs);
  }
  for (int i = 0; i < nc; i++) jx_release(consts[i]);
  jx_free(consts), jx_free(ins), jx_free(outs);
  jx_jaxpr_release(j);
  return result;
}

jx_fn *jx_checkpoint_ex(jx_fn *f, jx_remat_policy saveable, int nnames, const char *const *names) {
  jx_fn *bad = jx_fn_unusable("checkpoint", f);
  if (bad) return bad;
  if ((unsigned)saveable > JX_REMAT_NAMES)
    return jx_fn_error_new("checkpoint: %d is not a jx_remat_policy", (int)saveable);
  if (saveable == JX_REMAT_NAMES && nnames <= 0)
    return jx_fn_error_new("checkpoint: the policy JX_REMAT_NAMES names nothing (give the names to save)");
  if (saveable != JX_REMAT_NAMES && nnames != 0)
    return jx_fn_error_new("checkpoint: names are given (%d) but the policy is not JX_REMAT_NAMES", nnames);
  if (nnames > 4 || (nnames > 0 && !names))
    return jx_fn_error_new("checkpoint: %d names given; at most 4, in a non-NULL array", nnames);
  remat_closure *c = jx_calloc(1, sizeof *c);
  if (!c) return jx_fn_error_new("checkpoint: out of memory");
  jx_params_init(&c->pa, JX_PK_REMAT);
  c->pa.remat.policy = saveable;
  c->pa.remat.nnames = (int8_t)nnames;
  for (int i = 0; i < nnames; i++) {
    size_t len = names[i] ? strlen(names[i]) : 0;
    if (!names[i] || !len || len >= sizeof c->pa.remat.names[i]) {
      jx_free(c);
      return jx_fn_error_new("checkpoint: name %d is %s (1 to %d bytes)", i,
                             names[i] ? "too long or empty" : "NULL", (int)sizeof c->pa.remat.names[i] - 1);
    }
    memcpy(c->pa.remat.names[i], names[i], len);
  }
  c->f = jx_fn_ref(f);
  return jx_fn_make(remat_body, f->nargs, c, remat_free, "checkpoint");
}

jx_fn *jx_checkpoint(jx_fn *f, jx_remat_policy saveable) { return jx_checkpoint_ex(f, saveable, 0, NULL); }

jx_t jx_checkpoint_name(jx_t x, const char *name) {
  if (jx_is_error(x)) return x ? x : jx_error_new("checkpoint_name: x is NULL");
  jx_params q;
  jx_params_init(&q, JX_PK_NAME);
  size_t len = name ? strlen(name) : 0;
  if (!len || len >= sizeof q.name.name)
    return jx_error_new("checkpoint_name: the name must be 1 to %d bytes", (int)sizeof q.name.name - 1);
  memcpy(q.name.name, name, len);
  if (jx_is_tree(x)) return jx_error_new("checkpoint_name: x must be an array, not a tree");
  return jx_bind1(JX_P_checkpoint_name, 1, &x, &q);
}
