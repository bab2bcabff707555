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

/* A known equation, evaluated forward: its inputs' values in val, its
 * outputs' stored there. Any width (a cond over 100 captured constants). */
static jx_t eval_known(const jx_eqn *q, jx_t *val) {
  enum { S = 16 };
  jx_t sin[S], sout[S];
  jx_t *in = q->nin <= S ? sin : jx_malloc(sizeof(jx_t) * (size_t)q->nin);
  jx_t *out = q->nout <= S ? sout : jx_malloc(sizeof(jx_t) * (size_t)q->nout);
  jx_t err = NULL;
  if (!in || !out) {
    err = jx_error_new("backward pass: out of memory for a %s with %d inputs and %d outputs", jx_prim_names[q->prim],
                       q->nin, q->nout);
  } else {
    for (int k = 0; k < q->nin; k++) in[k] = val[q->in[k]];
    err = jx_bind(q->prim, q->nin, in, &q->params, q->nout, out);
    for (int k = 0; k < q->nout && !err; k++) val[q->out[k]] = out[k];
  }
  if (in && in != sin) jx_free(in);
  if (out && out != sout) jx_free(out);
  return err;
}

jx_t jx_backward_pass_known(const jx_jaxpr *j, const jx_t *known, const jx_t *cts_out, jx_t *cts_in) {
  size_t nv = (size_t)(j->nvars ? j->nvars : 1);
  bool *lin = jx_calloc(nv, sizeof(bool));
  jx_t *val = jx_calloc(nv, sizeof(jx_t));
  jx_t *ct = jx_calloc(nv, sizeof(jx_t));
  jx_t err = NULL;
  if (!lin || !val || !ct) {
    err = jx_error_new("backward pass: out of memory");
    goto done;
  }
  for (int i = 0; i < j->nconst; i++) val[j->constvars[i]] = j->consts[i];
  for (int i = 0; i < j->nin; i++) {
    if (known && known[i]) val[j->invars[i]] = known[i];
    else lin[j->invars[i]] = true;
  }

  /* forward: mark linear vars, evaluate the known equations */
  for (int e = 0; e < j->neqn && !err; e++) {
    const jx_eqn *q = &j->eqns[e];
    bool any = false;
    for (int k = 0; k < q->nin; k++) any |= lin[q->in[k]];
    if (any) {
      for (int k = 0; k < q->nout; k++) lin[q->out[k]] = true;
      continue;
    }
    err = eval_known(q, val);
  }

  for (int i = 0; i < j->nout && !err; i++) {
    int v = j->outvars[i];
    if (lin[v] && cts_out[i]) ct[v] = jx_lax_add_any(ct[v], cts_out[i]);
  }

  /* backward */
  for (int e = j->neqn - 1; e >= 0 && !err; e--) {
    const jx_eqn *q = &j->eqns[e];
    if (!lin[q->out[0]]) continue;
    const jx_rules *r = jx_prim_rules[q->prim];
    enum { S = 16 };
    jx_t sct[S], sin[S], scin[S];
    jx_aval sav[S];
    jx_t *cto = q->nout <= S ? sct : jx_malloc(sizeof(jx_t) * (size_t)q->nout);
    jx_t *in = q->nin <= S ? sin : jx_malloc(sizeof(jx_t) * (size_t)q->nin);
    jx_t *cin = q->nin <= S ? scin : jx_calloc((size_t)q->nin, sizeof(jx_t));
    jx_aval *av = q->nin <= S ? sav : jx_malloc(sizeof(jx_aval) * (size_t)q->nin);
    if (!cto || !in || !cin || !av) {
      err = jx_error_new("backward pass: out of memory");
    } else {
      bool any = false;
      for (int k = 0; k < q->nout; k++) any |= (cto[k] = ct[q->out[k]]) != NULL;
      if (any) {
        for (int k = 0; k < q->nin; k++) {
          in[k] = lin[q->in[k]] ? NULL : val[q->in[k]];
          av[k] = j->avals[q->in[k]];
          cin[k] = NULL;
        }
        if (!r->transpose)
          err = jx_error_new("%s: no transpose rule (is the function linear in this input?)", r->name);
        else
          err = r->transpose(q->prim, cto, in, av, q->nin, &q->params, cin);
        for (int k = 0; k < q->nin && !err; k++) {
          if (!lin[q->in[k]] || !cin[k]) continue;
          if (!jx_ok(cin[k])) {
            err = cin[k];
            break;
          }
          ct[q->in[k]] = jx_lax_add_any(ct[q->in[k]], cin[k]);
          if (!jx_ok(ct[q->in[k]])) err = ct[q->in[k]];
        }
      }
    }
    if (cto && cto != sct) jx_free(cto);
    if (in && in != sin) jx_free(in);
    if (cin && cin != scin) jx_free(cin);
    if (av && av != sav) jx_free(av);
  }

  for (int i = 0; i < j->nin && !err; i++) {
    int v = j->invars[i];
    cts_in[i] = !lin[v] ? NULL : ct[v] ? ct[v] : jx_lax_zeros(&j->avals[v]);
  }
done:
  if (err)
    for (int i = 0; i < j->nin; i++) cts_in[i] = err;
  jx_free(lin);
  jx_free(val);
  jx_free(ct);
  return err;
}
