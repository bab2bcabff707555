/* The interpreters: eval of jaxprs, jvp, stage (jaxpr building, which is
 * also partial evaluation for linearize) and transpose (the backward pass). */
#ifndef JX_TRACE_H
#define JX_TRACE_H

#include "core/core.h"
#include "ir/jaxpr.h"

/* ---- eval: run a jaxpr by binding each equation (so it runs under
 * whatever traces are active: eval_jaxpr is also how a jaxpr is jvp'd,
 * batched or re-staged). outs[i] belong to the current pool. */
jx_t jx_eval_jaxpr(const jx_jaxpr *j, const jx_t *args, jx_t *outs);
/* One equation of it: inputs read from env[var], outputs written there. */
jx_t jx_eval_eqn(const jx_eqn *q, jx_t *env);
/* Give each output of j that is one of its constants a reference in the
 * current pool (on error every output is the error). */
jx_t jx_own_const_outputs(const jx_jaxpr *j, jx_t *outs);

/* JX_DEBUG_NANS after a compiled run of j on concrete in giving out:
 * NULL when out has no NaN that in had not, else an error naming the
 * first equation that makes one, found by running j op by op. */
jx_t jx_debug_nans_jaxpr(const jx_jaxpr *j, const jx_t *in, const jx_t *out);

/* ---- jvp (the begin functions give NULL when out of memory) */
jx_trace *jx_jvp_begin(void);
void jx_jvp_end(jx_trace *t);
/* tangent NULL = symbolic zero */
jx_t jx_jvp_tracer(jx_trace *t, jx_t primal, jx_t tangent);
/* Split x (a tracer of t, or anything else: then tangent is zero). */
void jx_jvp_unpack(jx_trace *t, jx_t x, jx_t *primal, jx_t *tangent);

/* ---- stage: build a jaxpr from the ops applied to its tracers. With
 * `dynamic`, every op is staged, even on constants (jit, make_jaxpr);
 * without, only ops that touch its tracers (linearize's partial eval:
 * known values are computed, unknown ones recorded). */
typedef struct jx_stage jx_stage;
jx_stage *jx_stage_begin(bool dynamic);
jx_t jx_stage_input(jx_stage *s, const jx_aval *a);
/* Var id of x in the jaxpr (a constant if x is not one of its tracers). */
int jx_stage_var(jx_stage *s, jx_t x);
bool jx_stage_owns(jx_stage *s, jx_t x);
jx_trace *jx_stage_trace(jx_stage *s);
/* Finish: outputs become the jaxpr's outputs; the trace is popped. On
 * error returns NULL and *err is set. */
jx_jaxpr *jx_stage_end(jx_stage *s, int nout, const jx_t *outs, jx_t *err);
/* Abandon (error paths). */
void jx_stage_abort(jx_stage *s);

/* ---- batch (vmap): tracers carry (value, mapped axis or JX_NONE). */
jx_trace *jx_batch_begin(int64_t size);
/* A named vmap's trace (jx_vmap_named): collectives over `name` act on it. */
jx_trace *jx_batch_begin_named(int64_t size, const char *name);
/* The axis name ("" if none) and size of the batch trace whose batch rule
 * is running on this thread (collectives' batch rules read it). */
const char *jx_batch_rule_axis(int64_t *size);
/* Whether collective params p (JX_PK_COLL) name axis `name` (prims/collectives.c). */
bool jx_coll_names_axis(const jx_params *p, const char *name);
void jx_batch_end(jx_trace *t);
jx_t jx_batch_tracer(jx_trace *t, jx_t value, int bdim);
void jx_batch_unpack(jx_trace *t, jx_t x, jx_t *value, int *bdim);

/* ---- transpose: the backward pass of a jaxpr linear in its inputs.
 * cts_out[i] (NULL = zero) are cotangents of the outputs; fills
 * cts_in[i] for each input (zeros when nothing flowed back). */
jx_t jx_backward_pass(const jx_jaxpr *j, const jx_t *cts_out, jx_t *cts_in);
/* The same for a jaxpr linear only in the inputs whose known[i] is NULL;
 * the others are given. cts_in[i] is NULL for the known inputs. */
jx_t jx_backward_pass_known(const jx_jaxpr *j, const jx_t *known, const jx_t *cts_out, jx_t *cts_in);

#endif
