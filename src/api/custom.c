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
