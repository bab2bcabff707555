/* The jvp trace: a tracer carries (primal, tangent); primitives apply
 * their jvp rules. A NULL tangent is a symbolic zero, so inputs that are
 * not being differentiated cost nothing. */
#include "trace/trace.h"

static jx_t jvp_pure(jx_trace *t, jx_t x) { return jx_jvp_tracer(t, x, NULL); }

/* The outputs' primals op and tangents ot (NULL: zero) of p at primals
 * prim with tangents tan (any: whether one is nonzero). */
static jx_t jvp_rule(jx_prim p, bool any, int nin, const jx_t *prim, const jx_t *tan, const jx_params *params,
                     int nout, jx_t *op, jx_t *ot) {
  const jx_rules *r = jx_prim_rules[p];
  for (int k = 0; k < nout; k++) ot[k] = NULL;
  if (!any) return jx_bind(p, nin, prim, params, nout, op); /* nothing to differentiate */
  if (!r->jvp) return jx_error_new("%s: no jvp rule: this primitive cannot be differentiated", r->name);
  jx_t err = r->jvp(p, prim, tan, nin, params, op, ot);
  for (int k = 0; k < nout && !err; k++) {
    if (!jx_ok(op[k]))
      err = op[k];
    else if (ot[k] && !jx_ok(ot[k]))
      err = ot[k];
  }
  return err;
}

/* Autodidax's JVPTrace.process_primitive: unzip the inputs into primals
 * and tangents, apply the jvp rule, zip the outputs into tracers. */
static jx_t jvp_process(jx_trace *t, jx_prim p, int nin, const jx_t *in, const jx_params *params, int nout,
                        jx_t *out) {
  jx_scratch_mark m = jx_scratch_save(&t->scratch);
  jx_t *prim = JX_SCRATCH(&t->scratch, jx_t, 2 * ((size_t)nin + (size_t)nout));
  if (!prim) return jx_error_new("%s: out of memory in jvp", jx_prim_names[p]);
  jx_t *tan = prim + nin, *op = tan + nin, *ot = op + nout;
  bool any = false;
  for (int i = 0; i < nin; i++) {
    prim[i] = in[i]->u.tr.a;
    tan[i] = in[i]->u.tr.b;
    any |= tan[i] != NULL;
  }
  jx_t err = jvp_rule(p, any, nin, prim, tan, params, nout, op, ot);
  for (int k = 0; k < nout && !err; k++) {
    out[k] = jx_jvp_tracer(t, op[k], ot[k]);
    if (!jx_ok(out[k])) err = out[k];
  }
  jx_scratch_release(&t->scratch, m);
  return err;
}

static const jx_trace_vt jvp_vt = {.name = "jvp", .process = jvp_process, .pure = jvp_pure};

jx_trace *jx_jvp_begin(void) { return jx_trace_push(&jvp_vt, NULL); }
void jx_jvp_end(jx_trace *t) { jx_trace_pop(t); }

jx_t jx_jvp_tracer(jx_trace *t, jx_t primal, jx_t tangent) {
  if (!jx_ok(primal)) return primal;
  if (tangent && !jx_ok(tangent)) return tangent;
  jx_t v = jx_tracer_new(t, &primal->aval);
  if (!jx_ok(v)) return v;
  v->u.tr.a = jx_retain(primal);
  v->u.tr.b = jx_retain(tangent);
  return v;
}

void jx_jvp_unpack(jx_trace *t, jx_t x, jx_t *primal, jx_t *tangent) {
  if (jx_is_tracer(x) && x->u.tr.trace == t) {
    *primal = x->u.tr.a;
    *tangent = x->u.tr.b;
  } else {
    *primal = x;
    *tangent = NULL;
  }
}
