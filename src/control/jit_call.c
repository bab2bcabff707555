/* jit_call: a jitted function as a primitive.
 *
 * params.call.jaxpr is the traced jaxpr. Eagerly it runs the compiled program.
 * Under other transformations its rules transform the jaxpr itself and
 * bind jit_call again on the result, so the transformed function is
 * compiled too:
 *   jvp       the primal is the compiled function itself; the tangents come
 *             from a derived jaxpr that recomputes the primal values it
 *             needs (so under linearize the tangent call is linear in the
 *             tangents and the primal half stays known);
 *   transpose a derived backward jaxpr;
 *   batch     a derived batched jaxpr (batch dims moved to the front). */
#include "control/derive.h"
#include "prims/prims.h"
#include "trace/trace.h"

jx_t jx_jaxpr_call_abstract(jx_prim p, const jx_aval *in, int nin, const jx_jaxpr *j, jx_aval *out) {
  if (!j) return jx_rule_error(jx_prim_names[p], in, nin, "no jaxpr");
  if (nin != j->nin) return jx_rule_error(jx_prim_names[p], in, nin, "expected %d inputs", j->nin);
  for (int i = 0; i < nin; i++)
    if (!jx_aval_eq(&in[i], &j->avals[j->invars[i]])) {
      char s[160];
      return jx_rule_error(jx_prim_names[p], in, nin, "input %d should be %s", i,
                           jx_aval_str(&j->avals[j->invars[i]], s, sizeof s));
    }
  for (int k = 0; k < j->nout; k++) out[k] = j->avals[j->outvars[k]];
  return NULL;
}

static jx_t call_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  return jx_jaxpr_call_abstract(p, in, nin, pa->call.jaxpr, out);
}

static jx_t call_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin;
  jx_t err;
  jx_executable *x = jx_jaxpr_executable(pa->call.jaxpr, &err);
  err = x ? jx_executable_run(x, in, out) : err;
  if (!err && jx_debug_nans_on()) err = jx_debug_nans_jaxpr(pa->call.jaxpr, in, out);
  return err;
}

static jx_t call_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                     jx_t *tout) {
  jx_jaxpr *j = pa->call.jaxpr;
  jx_t err = jx_bind(p, nin, x, pa, j->nout, out);
  if (err) return err;
  jx_scratch *sc = jx_scratch_here();
  jx_scratch_mark sm = jx_scratch_save(sc);
  bool *nz = JX_SCRATCH(sc, bool, nin);
  jx_t *ins = JX_SCRATCH(sc, jx_t, 2 * nin);
  if (!nz || !ins) err = jx_error_new("jit_call: out of memory");
  int n = 0;
  for (int i = 0; !err && i < nin; i++) ins[n++] = x[i], nz[i] = t[i] != NULL;
  for (int i = 0; !err && i < nin; i++)
    if (nz[i]) ins[n++] = t[i];
  jx_jaxpr *d = err ? NULL : jx_derive_jvp(j, nz, NULL, false, &err);
  if (d) err = jx_call_jaxpr(d, ins, tout);
  jx_jaxpr_release(d);
  jx_scratch_release(sc, sm);
  return err;
}

static jx_t call_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                           const jx_params *pa, jx_t *cts) {
  (void)p, (void)av;
  jx_jaxpr *j = pa->call.jaxpr;
  jx_scratch *sc = jx_scratch_here();
  jx_scratch_mark sm = jx_scratch_save(sc);
  bool *lin = JX_SCRATCH(sc, bool, nin);
  jx_t *ins = JX_SCRATCH(sc, jx_t, nin + j->nout);
  jx_t *outs = JX_SCRATCH(sc, jx_t, nin);
  jx_t err = lin && ins && outs ? NULL : jx_error_new("jit_call: out of memory");
  int n = 0;
  for (int i = 0; !err && i < nin; i++) {
    lin[i] = in[i] == NULL;
    if (!lin[i]) ins[n++] = in[i];
  }
  for (int k = 0; !err && k < j->nout; k++) ins[n++] = ct[k] ? ct[k] : jx_lax_zeros(&j->avals[j->outvars[k]]);
  jx_jaxpr *d = err ? NULL : jx_derive_transpose(j, lin, &err);
  if (d) err = jx_call_jaxpr(d, ins, outs);
  for (int i = 0, k = 0; d && i < nin && !err; i++)
    if (lin[i]) cts[i] = outs[k++];
  jx_jaxpr_release(d);
  jx_scratch_release(sc, sm);
  return err;
}

static jx_t call_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                       int *obd) {
  (void)p;
  jx_jaxpr *j = pa->call.jaxpr;
  jx_scratch *sc = jx_scratch_here();
  jx_scratch_mark sm = jx_scratch_save(sc);
  bool *batched = JX_SCRATCH(sc, bool, nin);
  jx_t *ins = JX_SCRATCH(sc, jx_t, nin);
  jx_t err = batched && ins ? NULL : jx_error_new("jit_call: out of memory");
  int64_t size = jx_batch_size(in, bd, nin);
  for (int i = 0; !err && i < nin; i++) {
    batched[i] = bd[i] != JX_NONE;
    ins[i] = batched[i] ? jx_moveaxis(in[i], bd[i], 0) : in[i];
  }
  jx_jaxpr *d = err ? NULL : jx_derive_batch(j, batched, size, &err);
  if (d) err = jx_call_jaxpr(d, ins, out);
  for (int i = 0; i < j->nout; i++) obd[i] = 0;
  jx_jaxpr_release(d);
  jx_scratch_release(sc, sm);
  return err;
}

const jx_rules jx_rules_jit_call = {.name = "jit_call",
                                    .nin = -1,
                                    .nout = -1,
                                    .abstract_eval = call_abstract,
                                    .impl = call_impl,
                                    .jvp = call_jvp,
                                    .transpose = call_transpose,
                                    .batch = call_batch,
                                    .impl_allocates = true,
                                    .params_kind = JX_PK_CALL,
                                    .lower = {.kind = JX_LOWER_CALL}};
