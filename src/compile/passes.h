/* Jaxpr-to-jaxpr optimization passes (DESIGN §3, compiler step 1).
 *
 * Every pass reads a jaxpr and returns a NEW one (refcount 1; the input is
 * never modified) that computes the same outputs from the same inputs: the
 * same invars (count, avals, order) and the same outputs (count, avals,
 * order). Each pass is usable alone; jx_optimize runs them all, inlining
 * first and then the others to a fixed point.
 *
 * `changed` (may be NULL) is set to whether the pass rewrote anything. On
 * failure (out of memory, a malformed jit_call) a pass returns NULL and
 * sets *err to an error value owned by the current pool.
 *
 * Equations of higher-order primitives keep their params (and so their
 * inner jaxpr pointers) verbatim; the passes never take or drop references
 * to inner jaxprs. */
#ifndef JX_PASSES_H
#define JX_PASSES_H

#include "core/core.h"
#include "ir/jaxpr.h"

/* Outputs of constant folding at most this many elements (all outputs of
 * the equation together) are computed at compile time. */
#define JX_FOLD_MAX_ELEMS 4096

/* inline + (fold, simplify, cse, dce)* to a fixed point. */
jx_jaxpr *jx_optimize(const jx_jaxpr *in, jx_t *err);

/* Splice every jit_call's callee into the caller, recursively, with
 * renamed variables; callee constants become caller constants
 * (deduplicated by pointer). */
jx_jaxpr *jx_pass_inline(const jx_jaxpr *in, bool *changed, jx_t *err);
/* Drop equations none of whose outputs is used, and unused constants. */
jx_jaxpr *jx_pass_dce(const jx_jaxpr *in, bool *changed, jx_t *err);
/* Reuse the outputs of an earlier equation with the same primitive, the
 * same params bytes and the same input variables; merge constants with
 * equal contents (0-d, and small arrays up to JX_FOLD_MAX_ELEMS elements)
 * of the same dtype, weak flag and shape. */
jx_jaxpr *jx_pass_cse(const jx_jaxpr *in, bool *changed, jx_t *err);
/* Evaluate equations whose inputs are all concrete-array constants and
 * whose outputs are small; tracer constants are never folded through. */
jx_jaxpr *jx_pass_fold(const jx_jaxpr *in, bool *changed, jx_t *err);
/* Algebraic simplification: x*1, 1*x, x+0, 0+x, x-0, x/1 (a 0-d or
 * uniform constant), neg(neg x), transpose(transpose x), identity
 * transposes, reshape to the same shape, reshape(reshape x), convert to
 * the same type, identity broadcast_in_dim, and broadcast folding into
 * elementwise binary ops and select. A rewrite happens only when the
 * result keeps the equation's output aval exactly (dtype, shape and weak
 * flag), checked with abstract_eval where the equation changes. */
jx_jaxpr *jx_pass_simplify(const jx_jaxpr *in, bool *changed, jx_t *err);

#endif
