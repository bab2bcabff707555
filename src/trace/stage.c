/* The stage trace: records primitives applied to its tracers as jaxpr
 * equations. Values from outside (concrete arrays, tracers of outer
 * traces) become constants of the jaxpr, deduplicated by identity.
 *
 * Used two ways: as the dynamic trace (jit, make_jaxpr), where every op is
 * staged; and by linearize, where only ops that touch a tangent are staged
 * and everything known is computed on the spot (partial evaluation). */
#include "trace/trace.h"

struct jx_stage {
  jx_trace *trace;
  jx_jaxpr *jaxpr;
  bool dynamic;
  jx_trace *saved_dynamic;
  /* const dedupe: open addressing on the value pointer */
  jx_t *keys;
  int *vals;
  int cap, count;
};

static int const_lookup(jx_stage *s, jx_t x) {
  if (!s->cap) return -1;
  size_t h = ((uintptr_t)x >> 4) * 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < s->cap; i++) {
    size_t k = (h + (size_t)i) & (size_t)(s->cap - 1);
    if (!s->keys[k]) return -1;
    if (s->keys[k] == x) return s->vals[k];
  }
  return -1;
}

static int const_insert(jx_stage *s, jx_t x, int v) {
  if ((s->count + 1) * 2 > s->cap) {
    int cap = s->cap ? s->cap * 2 : 64;
    jx_t *keys = jx_calloc((size_t)cap, sizeof(jx_t));
    int *vals = jx_calloc((size_t)cap, sizeof(int));
    if (!keys || !vals) {
      jx_free(keys);
      jx_free(vals);
      return -1;
    }
    jx_t *ok = s->keys;
    int *ov = s->vals, ocap = s->cap;
    s->keys = keys, s->vals = vals, s->cap = cap, s->count = 0;
    for (int i = 0; i < ocap; i++)
      if (ok[i]) const_insert(s, ok[i], ov[i]);
    jx_free(ok);
    jx_free(ov);
  }
  size_t h = ((uintptr_t)x >> 4) * 0x9E3779B97F4A7C15ull;
  for (int i = 0;; i++) {
    size_t k = (h + (size_t)i) & (size_t)(s->cap - 1);
    if (!s->keys[k]) {
      s->keys[k] = x;
      s->vals[k] = v;
      s->count++;
      return 0;
    }
  }
}

static jx_t new_tracer(jx_stage *s, int var) {
  jx_t v = jx_tracer_new(s->trace, &s->jaxpr->avals[var]);
  if (jx_ok(v)) v->u.tr.i = var;
  return v;
}

int jx_stage_var(jx_stage *s, jx_t x) {
  if (jx_is_tracer(x) && x->u.tr.trace == s->trace) return (int)x->u.tr.i;
  int v = const_lookup(s, x);
  if (v >= 0) return v;
  v = jx_jaxpr_add_const(s->jaxpr, x);
  if (v < 0 || const_insert(s, x, v)) return -1;
  return v;
}

bool jx_stage_owns(jx_stage *s, jx_t x) { return jx_is_tracer(x) && x->u.tr.trace == s->trace; }
jx_trace *jx_stage_trace(jx_stage *s) { return s->trace; }

static jx_t stage_pure(jx_trace *t, jx_t x) {
  jx_stage *s = t->state;
  if (x->kind == JX_VK_TREE) return jx_error_new("stage: a tree was passed where an array is expected");
  int v = jx_stage_var(s, x);
  if (v < 0) return jx_error_new("stage: out of memory");
  return new_tracer(s, v);
}

/* Autodidax's JaxprTrace.process_primitive: the outputs' avals by
 * abstract evaluation, an equation from the inputs' vars to new ones, a
 * tracer for each. */
static jx_t stage_process(jx_trace *t, jx_prim p, int nin, const jx_t *in, const jx_params *params, int nout,
                          jx_t *out) {
  jx_stage *s = t->state;
  jx_scratch_mark m = jx_scratch_save(&t->scratch);
  jx_aval *av = JX_SCRATCH(&t->scratch, jx_aval, (size_t)nin + (size_t)nout);
  int *ins = av ? JX_SCRATCH(&t->scratch, int, (size_t)nin + (size_t)nout) : NULL;
  if (!ins) {
    jx_scratch_release(&t->scratch, m);
    return jx_error_new("%s: out of memory while staging", jx_prim_names[p]);
  }
  jx_aval *oav = av + nin;
  int *outs = ins + nin;
  for (int i = 0; i < nin; i++) {
    av[i] = in[i]->aval;
    ins[i] = (int)in[i]->u.tr.i;
  }
  jx_t err = jx_abstract_eval(p, av, nin, params, nout, oav);
  if (!err && jx_jaxpr_add_eqn(s->jaxpr, p, params, nin, ins, nout, oav, outs))
    err = jx_error_new("%s: out of memory while staging", jx_prim_names[p]);
  for (int k = 0; k < nout && !err; k++) {
    out[k] = new_tracer(s, outs[k]);
    if (!jx_ok(out[k])) err = out[k];
  }
  jx_scratch_release(&t->scratch, m);
  return err;
}

static const jx_trace_vt stage_vt = {.name = "stage", .process = stage_process, .pure = stage_pure};

jx_stage *jx_stage_begin(bool dynamic) {
  jx_stage *s = jx_calloc(1, sizeof *s);
  if (!s) return NULL;
  s->jaxpr = jx_jaxpr_new();
  if (!s->jaxpr) {
    jx_free(s);
    return NULL;
  }
  s->trace = jx_trace_push(&stage_vt, s);
  if (!s->trace) {
    jx_jaxpr_release(s->jaxpr);
    jx_free(s);
    return NULL;
  }
  s->dynamic = dynamic;
  if (dynamic) jx_set_dynamic_trace(s->trace, &s->saved_dynamic);
  return s;
}

jx_t jx_stage_input(jx_stage *s, const jx_aval *a) {
  int v = jx_jaxpr_add_invar(s->jaxpr, a);
  if (v < 0) return jx_error_new("stage: out of memory");
  return new_tracer(s, v);
}

static void stage_free(jx_stage *s) {
  if (s->dynamic) jx_set_dynamic_trace(s->saved_dynamic, NULL);
  jx_trace_pop(s->trace);
  jx_free(s->keys);
  jx_free(s->vals);
  jx_free(s);
}

jx_jaxpr *jx_stage_end(jx_stage *s, int nout, const jx_t *outs, jx_t *err) {
  *err = NULL;
  jx_scratch_mark m = jx_scratch_save(&s->trace->scratch);
  int *vars = JX_SCRATCH(&s->trace->scratch, int, nout);
  jx_jaxpr *j = s->jaxpr;
  if (!vars) *err = jx_error_new("stage: out of memory");
  for (int i = 0; i < nout && !*err; i++) {
    if (jx_is_error(outs[i])) {
      *err = outs[i] ? outs[i] : jx_error_new("stage: output %d is NULL", i);
    } else if (outs[i]->kind == JX_VK_TREE) {
      *err = jx_error_new("stage: output %d is a tree (flatten first)", i);
    } else if (jx_has_exact(outs[i]) && (*err = jx_exact_check(s->trace->label, outs[i]))) {
      /* a weak int scalar output too large for its i32 */
    } else if ((vars[i] = jx_stage_var(s, outs[i])) < 0) {
      *err = jx_error_new("stage: out of memory");
    }
  }
  if (!*err && jx_jaxpr_set_outs(j, nout, vars)) *err = jx_error_new("stage: out of memory");
  jx_scratch_release(&s->trace->scratch, m);
  stage_free(s);
  if (*err) {
    jx_jaxpr_release(j);
    return NULL;
  }
  return j;
}

void jx_stage_abort(jx_stage *s) {
  jx_jaxpr *j = s->jaxpr;
  stage_free(s);
  jx_jaxpr_release(j);
}
