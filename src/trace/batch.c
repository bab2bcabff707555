/* The batch trace (vmap): a tracer carries a value and which of its axes
 * is mapped (or JX_NONE). Primitives apply their batch rules, which turn
 * the per-example op into one op over the whole batch. */
#include "prims/prims.h"
#include "trace/trace.h"

#include <stdio.h>

typedef struct {
  int64_t size;                /* the mapped axis size */
  char name[JX_AXIS_NAME_CAP]; /* a named vmap's axis name, else "" */
} batch_state;

/* The batch trace whose rule is running on this thread (its axis name and
 * size), for the collectives' batch rules; a trace begun inside a rule
 * (a control primitive deriving its batched body) maps the same axis, so
 * it inherits the name. */
static _Thread_local const batch_state *tl_rule_state;

const char *jx_batch_rule_axis(int64_t *size) {
  if (size) *size = tl_rule_state ? tl_rule_state->size : 0;
  return tl_rule_state ? tl_rule_state->name : "";
}

static jx_t batch_pure(jx_trace *t, jx_t x) { return jx_batch_tracer(t, x, JX_NONE); }

/* The outputs o with their batch dims ob of p at values v mapped along
 * bd (any: whether one is mapped). */
static jx_t batch_rule(const batch_state *s, jx_prim p, bool any, int nin, const jx_t *v, const int *bd,
                       const jx_params *params, int nout, jx_t *o, int *ob) {
  const jx_rules *r = jx_prim_rules[p];
  for (int k = 0; k < nout; k++) o[k] = NULL, ob[k] = JX_NONE;
  /* a collective over this trace's named axis acts even on unmapped values */
  any |= s->name[0] && jx_coll_names_axis(params, s->name);
  if (!any) return jx_bind(p, nin, v, params, nout, o); /* nothing mapped */
  if (!r->batch)
    return jx_error_new("%s: no batching rule: this primitive cannot be used under vmap", r->name);
  const batch_state *saved = tl_rule_state;
  tl_rule_state = s;
  jx_t err = r->batch(p, v, bd, nin, params, o, ob);
  tl_rule_state = saved;
  for (int k = 0; k < nout && !err; k++)
    if (!o[k] || !jx_ok(o[k])) err = o[k] ? o[k] : jx_error_new("%s: batch rule gave no output", r->name);
  return err;
}

/* Autodidax's BatchTrace.process_primitive: unzip the inputs into values
 * and batch dims, apply the batching rule, zip the outputs into tracers. */
static jx_t batch_process(jx_trace *t, jx_prim p, int nin, const jx_t *in, const jx_params *params, int nout,
                          jx_t *out) {
  jx_scratch *s = &t->scratch;
  jx_scratch_mark m = jx_scratch_save(s);
  jx_t *v = JX_SCRATCH(s, jx_t, (size_t)nin + (size_t)nout);
  int *bd = v ? JX_SCRATCH(s, int, (size_t)nin + (size_t)nout) : NULL;
  if (!bd) {
    jx_scratch_release(s, m);
    return jx_error_new("%s: out of memory in vmap", jx_prim_names[p]);
  }
  jx_t *o = v + nin;
  int *ob = bd + nin;
  bool any = false;
  for (int i = 0; i < nin; i++) {
    v[i] = in[i]->u.tr.a;
    bd[i] = (int)in[i]->u.tr.i;
    any |= bd[i] != JX_NONE;
  }
  jx_t err = batch_rule(t->state, p, any, nin, v, bd, params, nout, o, ob);
  for (int k = 0; k < nout && !err; k++) {
    out[k] = jx_batch_tracer(t, o[k], ob[k]);
    if (!jx_ok(out[k])) err = out[k];
  }
  jx_scratch_release(s, m);
  return err;
}

static const jx_trace_vt batch_vt = {.name = "batch", .process = batch_process, .pure = batch_pure};

jx_trace *jx_batch_begin_named(int64_t size, const char *name) {
  batch_state *s = jx_calloc(1, sizeof *s);
  if (!s) return NULL;
  s->size = size;
  if (name) snprintf(s->name, sizeof s->name, "%s", name);
  jx_trace *t = jx_trace_push(&batch_vt, s);
  if (!t) jx_free(s);
  return t;
}

jx_trace *jx_batch_begin(int64_t size) {
  const batch_state *in_rule = tl_rule_state;
  return jx_batch_begin_named(size, in_rule && in_rule->size == size ? in_rule->name : NULL);
}

void jx_batch_end(jx_trace *t) {
  jx_free(t->state);
  jx_trace_pop(t);
}

jx_t jx_batch_tracer(jx_trace *t, jx_t value, int bdim) {
  if (!jx_ok(value)) return value;
  jx_aval a = value->aval;
  if (bdim != JX_NONE) { /* the tracer's aval is the per-example one */
    for (int i = bdim; i < a.ndim - 1; i++) a.shape[i] = a.shape[i + 1];
    a.ndim--;
  }
  jx_t v = jx_tracer_new(t, &a);
  if (!jx_ok(v)) return v;
  v->u.tr.a = jx_retain(value);
  v->u.tr.i = bdim;
  return v;
}

void jx_batch_unpack(jx_trace *t, jx_t x, jx_t *value, int *bdim) {
  if (jx_is_tracer(x) && x->u.tr.trace == t) {
    *value = x->u.tr.a;
    *bdim = (int)x->u.tr.i;
  } else {
    *value = x;
    *bdim = JX_NONE;
  }
}
