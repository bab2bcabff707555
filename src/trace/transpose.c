/* The backward pass: transpose a jaxpr that is linear in its inputs.
 *
 * Variables that depend on an input are linear ("unknown"); the rest
 * (constants: the residuals linearize saved, and anything computed from
 * them alone) are known and evaluated forward first. Then equations are
 * walked in reverse, each linear one applying its primitive's transpose
 * rule to the cotangents of its outputs and accumulating cotangents into
 * its linear inputs. */
#include "prims/lax.h"
#include "trace/trace.h"

jx_t jx_backward_pass(const jx_jaxpr *j, const jx_t *cts_out, jx_t *cts_in) {
  return jx_backward_pass_known(j, NULL, cts_out, cts_in);
}

/* One backward pass: per var of j, whether it is linear, its value (the
 * known ones) and its cotangent so far (the linear ones; NULL: zero). */
typedef struct {
  const jx_jaxpr *j;
  bool *lin;
  jx_t *val, *ct;
} pass;

/* Forward: mark the vars that depend on a linear input, evaluate the
 * equations that do not (any width: a cond over 100 captured constants). */
static jx_t forward(pass *b) {
  jx_t err = NULL;
  for (int e = 0; e < b->j->neqn && !err; e++) {
    const jx_eqn *q = &b->j->eqns[e];
    bool any = false;
    for (int k = 0; k < q->nin; k++) any |= b->lin[q->in[k]];
    for (int k = 0; k < q->nout && any; k++) b->lin[q->out[k]] = true;
    if (!any) err = jx_eval_eqn(q, b->val);
  }
  return err;
}

/* Apply q's transpose rule to its outputs' cotangents cto; add what it
 * gives its linear inputs to theirs. in[k] is NULL for a linear input,
 * the value of a known one. */
static jx_t transpose_rule(pass *b, const jx_eqn *q, const jx_t *cto, jx_t *in, jx_aval *av, jx_t *cin) {
  const jx_rules *r = jx_prim_rules[q->prim];
  for (int k = 0; k < q->nin; k++) {
    in[k] = b->lin[q->in[k]] ? NULL : b->val[q->in[k]];
    av[k] = b->j->avals[q->in[k]];
    cin[k] = NULL;
  }
  if (!r->transpose)
    return jx_error_new("%s: no transpose rule (is the function linear in this input?)", r->name);
  jx_t err = r->transpose(q->prim, cto, in, av, q->nin, &q->params, cin);
  for (int k = 0; k < q->nin && !err; k++) {
    jx_t *ct = &b->ct[q->in[k]];
    if (!b->lin[q->in[k]] || !cin[k]) continue;
    if (!jx_ok(cin[k])) return cin[k];
    *ct = jx_lax_add_any(*ct, cin[k]);
    if (!jx_ok(*ct)) err = *ct;
  }
  return err;
}

/* A linear equation, backward (nothing to do when no cotangent reached
 * its outputs). */
static jx_t transpose_eqn(pass *b, const jx_eqn *q) {
  jx_scratch *s = jx_scratch_here();
  jx_scratch_mark m = jx_scratch_save(s);
  jx_t *cto = JX_SCRATCH(s, jx_t, (size_t)q->nout + 2 * (size_t)q->nin);
  jx_aval *av = cto ? JX_SCRATCH(s, jx_aval, q->nin) : NULL;
  jx_t err = av ? NULL
                : jx_error_new("backward pass: out of memory for a %s with %d inputs", jx_prim_names[q->prim],
                               q->nin);
  bool any = false;
  for (int k = 0; k < q->nout && !err; k++) any |= (cto[k] = b->ct[q->out[k]]) != NULL;
  if (any) err = transpose_rule(b, q, cto, cto + q->nout, av, cto + q->nout + q->nin);
  jx_scratch_release(s, m);
  return err;
}

static jx_t backward(pass *b, const jx_t *cts_out) {
  const jx_jaxpr *j = b->j;
  jx_t err = NULL;
  for (int i = 0; i < j->nout && !err; i++) {
    int v = j->outvars[i];
    if (b->lin[v] && cts_out[i]) b->ct[v] = jx_lax_add_any(b->ct[v], cts_out[i]);
  }
  for (int e = j->neqn - 1; e >= 0 && !err; e--)
    if (j->eqns[e].nout && b->lin[j->eqns[e].out[0]]) err = transpose_eqn(b, &j->eqns[e]);
  return err;
}

jx_t jx_backward_pass_known(const jx_jaxpr *j, const jx_t *known, const jx_t *cts_out, jx_t *cts_in) {
  jx_scratch *s = jx_scratch_here();
  jx_scratch_mark m = jx_scratch_save(s);
  pass b = {j, jx_scratch_zeros(s, (size_t)j->nvars, sizeof(bool)),
            jx_scratch_zeros(s, (size_t)j->nvars, sizeof(jx_t)),
            jx_scratch_zeros(s, (size_t)j->nvars, sizeof(jx_t))};
  jx_t err = b.lin && b.val && b.ct ? NULL : jx_error_new("backward pass: out of memory");
  for (int i = 0; i < j->nconst && !err; i++) b.val[j->constvars[i]] = j->consts[i];
  for (int i = 0; i < j->nin && !err; i++) {
    if (known && known[i])
      b.val[j->invars[i]] = known[i];
    else
      b.lin[j->invars[i]] = true;
  }
  if (!err) err = forward(&b);
  if (!err) err = backward(&b, cts_out);
  for (int i = 0; i < j->nin && !err; i++) {
    int v = j->invars[i];
    cts_in[i] = !b.lin[v] ? NULL : b.ct[v] ? b.ct[v] : jx_lax_zeros(&j->avals[v]);
  }
  for (int i = 0; i < j->nin && err; i++) cts_in[i] = err;
  jx_scratch_release(s, m);
  return err;
}
