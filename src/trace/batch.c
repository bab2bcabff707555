/* The batch trace (vmap): a tracer carries a value and which of its axes
 * is mapped (or JX_NONE). Primitives apply their batch rules, which turn
 * the per-example op into one op over the whole batch. */
#include "prims/prims.h"
#include "trace/trace.h"

typedef struct {
  int64_t size; /* the mapped axis size */
} batch_state;

static jx_t batch_pure(jx_trace *t, jx_t x) { return jx_batch_tracer(t, x, JX_NONE); }

static jx_t batch_process(jx_trace *t, jx_prim p, int nin, const jx_t *in, const jx_params *params,
                          int nout, jx_t *out) {
  const jx_rules *r = jx_prim_rules[p];
  enum { S = 8 };
  jx_t sv[S], so[S];
  int sb[S], sob[S];
  jx_t *v = nin <= S ? sv : jx_malloc(sizeof(jx_t) * (size_t)nin);
  int *bd = nin <= S ? sb : jx_malloc(sizeof(int) * (size_t)nin);
  jx_t *o = nout <= S ? so : jx_malloc(sizeof(jx_t) * (size_t)nout);
  int *ob = nout <= S ? sob : jx_malloc(sizeof(int) * (size_t)nout);
  jx_t err = NULL;
  if (!v || !bd || !o || !ob) {
    err = jx_error_new("%s: out of memory in vmap", r->name);
    goto done;
  }
  bool any = false;
  for (int i = 0; i < nin; i++) {
    v[i] = in[i]->u.tr.a;
    bd[i] = (int)in[i]->u.tr.i;
    any |= bd[i] != JX_NONE;
  }
  if (!any) {
    err = jx_bind(p, nin, v, params, nout, o);
    for (int k = 0; k < nout; k++) ob[k] = JX_NONE;
  } else if (!r->batch) {
    err = jx_error_new("%s: no batching rule: this primitive cannot be used under vmap", r->name);
  } else {
    for (int k = 0; k < nout; k++) o[k] = NULL, ob[k] = JX_NONE;
    err = r->batch(p, v, bd, nin, params, o, ob);
    for (int k = 0; k < nout && !err; k++)
      if (!o[k] || !jx_ok(o[k])) err = o[k] ? o[k] : jx_error_new("%s: batch rule gave no output", r->name);
  }
  for (int k = 0; k < nout && !err; k++) {
    out[k] = jx_batch_tracer(t, o[k], ob[k]);
    if (!jx_ok(out[k])) err = out[k];
  }
done:
  if (v && v != sv) jx_free(v);
  if (bd && bd != sb) jx_free(bd);
  if (o && o != so) jx_free(o);
  if (ob && ob != sob) jx_free(ob);
  return err;
}

static const jx_trace_vt batch_vt = {.name = "batch", .process = batch_process, .pure = batch_pure};

jx_trace *jx_batch_begin(int64_t size) {
  batch_state *s = jx_malloc(sizeof *s);
  if (!s) return NULL;
  s->size = size;
  jx_trace *t = jx_trace_push(&batch_vt, s);
  if (!t) jx_free(s);
  return t;
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
