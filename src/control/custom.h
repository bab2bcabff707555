/* Custom derivative rules (custom_jvp, custom_vjp) as the primitives
 * custom_jvp_call, custom_vjp_call and custom_lin carry them.
 *
 * A rule is a user function called lazily, when a transformation needs it
 * (JAX's jvp_jaxpr_thunk, fwd and bwd): so a rule may call the custom
 * function itself, and a rule applied under jvp is differentiated like
 * any other code (higher orders). Rules are held by a *carrier*: a jaxpr
 * with no equations whose `compiled` slot owns the rule, so that an
 * equation's params reference it (and jaxprs retain and release it) like
 * any inner jaxpr. Under vmap a rule is wrapped in a batched rule that
 * runs it under a batch trace (vectorized, not unrolled).
 *
 * Calling conventions (leaves flattened in jx_tree_leaves order):
 *   jvp rule  (primal leaves list, tangent leaves list) -> list(outs, tangent outs)
 *   fwd       (arg leaves list) -> (list(outs), residual tree)
 *   bwd       (residual tree, out cotangent leaves list) -> list(cotangents of the
 *             differentiated leaves) */
#ifndef JX_CUSTOM_H
#define JX_CUSTOM_H

#include "core/core.h"
#include "ir/jaxpr.h"

typedef struct jx_crule jx_crule;

/* The user's rules for f (named fname in messages), called with args
 * shaped like args_like (the tuple of f's arguments; only its structure
 * and leaf avals are kept) whose output is shaped like out_like.
 * nondiff[i]: argument i is not differentiated (NULL: none). NULL when out
 * of memory. Each takes its own references. */
jx_crule *jx_crule_jvp(jx_fn *rule, const char *fname, jx_t args_like, const bool *nondiff, jx_t out_like);
jx_crule *jx_crule_vjp(jx_fn *fwd, jx_fn *bwd, const char *fname, jx_t args_like, const bool *nondiff,
                       jx_t out_like);
/* A carrier holding r (takes over the caller's reference; releases it on
 * failure). NULL when out of memory. */
jx_jaxpr *jx_crule_carrier(jx_crule *r);

/* Bind custom_jvp_call / custom_vjp_call of fun (whose first nconst inputs
 * are constants) with the rules of carrier on ins; outs gets fun->nout. */
jx_t jx_custom_bind(jx_prim p, jx_jaxpr *fun, jx_jaxpr *carrier, int nconst, const jx_t *ins, jx_t *outs);

#endif
