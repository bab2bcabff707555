/* The jvp trace: a tracer carries (primal, tangent); primitives apply
 * their jvp rules. A NULL tangent is a symbolic zero, so inputs that are
 * not being differentiated cost nothing. */
#include "trace/trace.h"

static jx_t jvp_pure(jx_trace *t, jx_t x) { return jx_jvp_tracer(t, x, NULL); }

static jx_t jvp_process(jx_trace *t, jx_prim p, int nin, const jx_t *in, const jx_params *params,
                        int nout, jx_t *out) {
  const jx_rules *r = jx_prim_rules[p];
  enum { S = 8 };
  jx_t sp[S], st[S], so[S], sto[S];
  jx_t *prim = nin <= S ? sp : jx_malloc(sizeof(jx_t) * (size_t)nin);
  jx_t *tan = nin <= S ? st : jx_malloc(sizeof(jx_t) * (size_t)nin);
  jx_t *op = nout <= S ? so : jx_malloc(sizeof(jx_t) * (size_t)nout);
  jx_t *ot = nout <= S ? sto : jx_malloc(sizeof(jx_t) * (size_t)nout);
  jx_t err = NULL;
  if (!prim || !tan || !op || !ot) {
    err = jx_error_new("%s: out of memory in jvp", r->name);
    goto done;
  }
  bool any = false;
  for (int i = 0; i < nin; i++) {
    prim[i] = in[i]->u.tr.a;
    tan[i] = in[i]->u.tr.b;
    any |= tan[i] != NULL;
  }
  if (!any) { /* nothing to differentiate: just the primal */
    err = jx_bind(p, nin, prim, params, nout, op);
    for (int k = 0; k < nout; k++) ot[k] = NULL;
  } else if (!r->jvp) {
    err = jx_error_new("%s: no jvp rule: this primitive cannot be differentiated", r->name);
  } else {
    for (int k = 0; k < nout; k++) ot[k] = NULL;
    err = r->jvp(p, prim, tan, nin, params, op, ot);
    for (int k = 0; k < nout && !err; k++) {
      if (!jx_ok(op[k])) err = op[k];
      else if (ot[k] && !jx_ok(ot[k])) err = ot[k];
    }
  }
  for (int k = 0; k < nout && !err; k++) {
    out[k] = jx_jvp_tracer(t, op[k], ot[k]);
    if (!jx_ok(out[k])) err = out[k];
  }
done:
  if (prim && prim != sp) jx_free(prim);
  if (tan && tan != st) jx_free(tan);
  if (op && op != so) jx_free(op);
  if (ot && ot != sto) jx_free(ot);
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
