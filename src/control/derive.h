/* Jaxpr-to-jaxpr transformations by tracing, shared by the higher-order
 * primitives (jit_call, cond, while, scan): each evaluates a jaxpr under
 * an interpreter (jvp, batch, the backward pass) inside a stage trace and
 * keeps the staged result. Results are cached on the source jaxpr, keyed by
 * what they were derived for. */
#ifndef JX_DERIVE_H
#define JX_DERIVE_H

#include "compile/compile.h"

/* Tangents of j's outputs given primals (all inputs) and tangents of the
 * inputs marked nz (in order). with_primal: the primal outputs first.
 * nz_out (NULL: all) selects which outputs' tangents are returned; zero
 * tangents are materialized. */
jx_jaxpr *jx_derive_jvp(jx_jaxpr *j, const bool *nz, const bool *nz_out, bool with_primal, jx_t *err);
/* Cotangents of the inputs marked lin, given the other (known) inputs and
 * cotangents of all outputs. j must be linear in the lin inputs. */
jx_jaxpr *jx_derive_transpose(jx_jaxpr *j, const bool *lin, jx_t *err);
/* j over a batch of `size`: batched inputs (marked) carry a leading batch
 * dim; every output gets one. */
jx_jaxpr *jx_derive_batch(jx_jaxpr *j, const bool *batched, int64_t size, jx_t *err);

/* The general form: trace body(ins) -> outs, with fresh inputs of the
 * given avals, into a jaxpr (dynamic staging: every op is recorded). */
typedef jx_t (*jx_trace_body)(const void *arg, const jx_t *ins, jx_t *outs, int *nout);
jx_jaxpr *jx_trace_jaxpr(int nin, const jx_aval *avals, int maxout, jx_trace_body body, const void *arg,
                         jx_t *err);
/* Memoize a derived jaxpr on j under key (returns +1 reference). */
typedef jx_jaxpr *(*jx_derive_fn)(jx_jaxpr *j, const void *arg, jx_t *err);
jx_jaxpr *jx_derive_cached(jx_jaxpr *j, const char *key, jx_derive_fn fn, const void *arg, jx_t *err);
/* key prefix + one 0/1 per flag */
void jx_mask_key(char *key, size_t n, const char *kind, const bool *mask, int count);

/* The compiled executable of j (compiled on first use, kept on j). */
jx_executable *jx_jaxpr_executable(jx_jaxpr *j, jx_t *err);
/* Bind jit_call of j on ins (j->nin of them); outs gets j->nout values. */
jx_t jx_call_jaxpr(jx_jaxpr *j, const jx_t *ins, jx_t *outs);

/* The end of a loop's impl: the final carries (owned references, freed
 * here on error) go to the current pool as out[0..n); returns err, or the
 * error of a pool that could not take one. On error the caller fills its
 * outputs with it. */
static inline jx_t jx_loop_give_carries(jx_t err, jx_t *carry, int n, jx_t *out) {
  for (int k = 0; carry && k < n; k++) {
    if (err) {
      jx_release(carry[k]);
      continue;
    }
    out[k] = jx_pool_own(carry[k]);
    if (!jx_ok(out[k])) err = out[k]; /* the pool could not take it (it was freed) */
  }
  return err;
}

/* abstract eval of a primitive that runs jaxpr j on its operands (jit_call,
 * remat): the operands must have j's input types; the results are j's */
jx_t jx_jaxpr_call_abstract(jx_prim p, const jx_aval *in, int nin, const struct jx_jaxpr *j, jx_aval *out);

#endif
