/* The trace stack and bind: the single point where every op dispatches.
 *
 * Each thread has its own stack of active traces (jvp, batch, stage, ...);
 * a trace's level is its position. bind finds the innermost trace among its
 * inputs' tracers (and the dynamic trace, which jit/make_jaxpr install so
 * that even ops on constants are staged), raises the other inputs into it
 * and lets it process the primitive. With no trace involved the primitive is
 * evaluated directly: abstract_eval, allocate, impl. */
#include "core.h"

#include <limits.h>
#include <stdio.h>

const char *const jx_prim_names[JX_PRIM_COUNT] = {
#define JX_PRIM(name, family) #name,
#include "primitives.def"
#undef JX_PRIM
};

/* ------------------------------------------------------------ trace stack */
/* Only the depth is kept: a trace's level is its position, so the top of
 * the stack is the active trace whose level is the depth. No fixed size:
 * nesting is as deep as the program's (a switch of 100 branches is 100
 * nested conds, each tracing the next). */
typedef struct {
  int depth;
  jx_trace *dynamic;
} trace_state;
static _Thread_local trace_state ts;

/* A push fails like an allocation (NULL), and the caller's error names
 * the cause through jx_trace_push_failure. (With a fixed stack of 64 it
 * was an abort, which user input must not reach.) */
jx_trace *jx_trace_push(const jx_trace_vt *vt, void *state) {
  if (ts.depth == INT_MAX) return NULL;
  jx_trace *t = jx_malloc(sizeof *t);
  if (!t) return NULL;
  t->vt = vt;
  atomic_init(&t->refs, 1);
  t->level = ++ts.depth;
  t->active = true;
  t->state = state;
  t->label = vt->name;
  t->poison = NULL;
  jx_scratch_init(&t->scratch);
  return t;
}

void jx_trace_unref(jx_trace *t) {
  if (atomic_fetch_sub(&t->refs, 1) != 1) return;
  jx_release(t->poison);
  jx_free(t);
}

const char *jx_trace_push_failure(void) {
  return ts.depth == INT_MAX ? "transformations (grad, vmap, jit, control flow bodies) nested too deep"
                             : "out of memory";
}

void jx_trace_pop(jx_trace *t) {
  JX_CHECK(ts.depth > 0 && t->active && t->level == ts.depth);
  ts.depth--;
  t->active = false;
  t->state = NULL;
  jx_scratch_clear(&t->scratch);
  jx_trace_unref(t);
}

jx_t jx_trace_read_error(const char *read, jx_t x) {
  jx_trace *t = x->u.tr.trace;
  char s[160];
  jx_aval_str(&x->aval, s, sizeof s);
  if (!t->active)
    return jx_error_new(
        "%s: cannot read a traced %s that escaped its transformation (%s); return values from "
        "the function instead of saving them",
        read, s, t->label);
  jx_t e = jx_error_new("%s: cannot read the value of a traced %s inside %s: it is not known while %s "
                        "transforms the function (a concretization error); compute with jx ops instead (e.g. "
                        "jx_where or jx_cond rather than a C branch on the value), or return it and read it "
                        "outside",
                        read, s, t->label, t->label);
  if (!t->poison) t->poison = jx_retain(e);
  return e;
}

jx_t jx_trace_poisoned(const jx_trace *t) {
  return t && t->poison ? jx_pool_own(jx_retain(t->poison)) : NULL;
}

jx_trace *jx_dynamic_trace(void) { return ts.dynamic; }
void jx_set_dynamic_trace(jx_trace *t, jx_trace **saved) {
  if (saved) *saved = ts.dynamic;
  ts.dynamic = t;
}

jx_t jx_tracer_new(jx_trace *t, const jx_aval *aval) {
  jx_t v = jx_value_new(JX_VK_TRACER);
  if (!v) return jx_error_new("out of memory creating a tracer");
  v->aval = *aval;
  v->u.tr.trace = t;
  atomic_fetch_add(&t->refs, 1);
  return v;
}

/* ------------------------------------------------------------------ eval */
static jx_t fill_error(jx_t e, int nout, jx_t *out) {
  for (int k = 0; k < nout; k++) out[k] = e;
  return e;
}

/* an operand or result in a dtype p has no kernels for (core/dtype.c) */
static jx_t dtype_check(const char *name, jx_prim p, const jx_aval *av, int n, const char *what) {
  for (int i = 0; i < n; i++)
    if ((unsigned)av[i].dtype < JX_DTYPE_COUNT && !jx_prim_takes_dtype(p, av[i].dtype))
      return jx_error_new("%s: %s %d has dtype %s, which %s does not support yet", name, what, i,
                          jx_dtype_name(av[i].dtype), name);
  return NULL;
}

jx_t jx_abstract_eval(jx_prim p, const jx_aval *in, int nin, const jx_params *params, int nout,
                      jx_aval *out) {
  const jx_rules *r = jx_prim_rules[p];
  jx_t e = dtype_check(r->name, p, in, nin, "operand");
  if (!e) e = r->abstract_eval(p, in, nin, params, out);
  if (!e) e = dtype_check(r->name, p, out, nout, "result");
  for (int k = 0; k < nout && !e; k++) {
    char err[300];
    if (jx_aval_check(&out[k], err, sizeof err)) e = jx_error_new("%s: result %d: %s", r->name, k, err);
  }
  return e;
}

jx_t jx_eval_prim(jx_prim p, int nin, const jx_t *in, const jx_params *params, int nout, jx_t *out) {
  const jx_rules *r = jx_prim_rules[p];
  jx_scratch *s = jx_scratch_here();
  jx_scratch_mark m = jx_scratch_save(s);
  jx_aval *inav = JX_SCRATCH(s, jx_aval, nin), *outav = JX_SCRATCH(s, jx_aval, nout);
  jx_t e = NULL;
  if (!inav || !outav) {
    e = jx_error_new("%s: out of memory", r->name);
    goto done;
  }
  for (int i = 0; i < nin; i++) {
    if (!jx_is_array(in[i])) {
      e = jx_error_new("%s: input %d is not an array (a tree was passed where an array is "
                       "expected)",
                       r->name, i);
      goto done;
    }
    inav[i] = in[i]->aval;
  }
  e = jx_abstract_eval(p, inav, nin, params, nout, outav);
  if (e) goto done;
  if (!r->impl) {
    e = jx_error_new("%s: no eager implementation (impl rule) for this primitive", r->name);
    goto done;
  }
  for (int k = 0; k < nout && !r->impl_allocates; k++) {
    out[k] = jx_array_new(&outav[k]);
    if (!jx_ok(out[k])) {
      e = out[k];
      goto done;
    }
  }
  e = r->impl(p, in, nin, params, out);
  if (!e && jx_debug_nans_on()) e = jx_debug_nans_check(p, nin, in, nout, out);
done:
  jx_scratch_release(s, m);
  return e ? fill_error(e, nout, out) : NULL;
}

/* ------------------------------------------------------------------ bind */
jx_t jx_bind(jx_prim p, int nin, const jx_t *in, const jx_params *params, int nout, jx_t *out) {
  JX_CHECK((unsigned)p < JX_PRIM_COUNT);
  const jx_rules *r = jx_prim_rules[p];
  JX_CHECK(r->nout < 0 || r->nout == nout);
  jx_t e = jx_first_error(nin, in);
  if (e) return fill_error(e, nout, out);
  /* A weak int scalar too large for its i32 is only usable through a
   * promotion that widens it (convert reads the exact value). */
  for (int i = 0; i < nin && p != JX_P_convert; i++)
    if (jx_has_exact(in[i]) && (e = jx_exact_check(r->name, in[i]))) return fill_error(e, nout, out);
  if (r->nin >= 0 && nin != r->nin)
    return fill_error(jx_error_new("%s: expected %d inputs, got %d", r->name, r->nin, nin), nout, out);
  if (params->kind != r->params_kind)
    return fill_error(
        jx_error_new("%s: given %s params, but %s takes %s params", r->name,
                     (unsigned)params->kind < JX_PK_COUNT ? jx_params_kind_names[params->kind] : "invalid",
                     r->name, jx_params_kind_names[r->params_kind]),
        nout, out);

  jx_trace *top = ts.dynamic;
  for (int i = 0; i < nin; i++) {
    if (in[i]->kind != JX_VK_TRACER) continue;
    jx_trace *t = in[i]->u.tr.trace;
    if (!t->active)
      return fill_error(jx_error_new("%s: input %d is a tracer that escaped its transformation (a value "
                                     "saved from inside grad/vmap/jit and used after it returned)",
                                     r->name, i),
                        nout, out);
    if (!top || t->level > top->level) top = t;
  }
  if (!top) return jx_eval_prim(p, nin, in, params, nout, out);

  jx_scratch_mark m = jx_scratch_save(&top->scratch);
  jx_t *raised = JX_SCRATCH(&top->scratch, jx_t, nin);
  if (!raised) return fill_error(jx_error_new("%s: out of memory", r->name), nout, out);
  for (int i = 0; i < nin && !e; i++) {
    if (in[i]->kind == JX_VK_TRACER && in[i]->u.tr.trace == top) {
      raised[i] = in[i];
    } else {
      raised[i] = top->vt->pure(top, in[i]);
      if (!jx_ok(raised[i])) e = raised[i];
    }
  }
  if (!e) e = top->vt->process(top, p, nin, raised, params, nout, out);
  jx_scratch_release(&top->scratch, m);
  return e ? fill_error(e, nout, out) : NULL;
}

jx_t jx_bind1(jx_prim p, int nin, const jx_t *in, const jx_params *params) {
  jx_t out;
  jx_bind(p, nin, in, params, 1, &out);
  return out;
}
