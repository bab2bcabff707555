#ifndef JX_TRACE_FN_H
#define JX_TRACE_FN_H
#include "api/api.h"
/* Trace f at the avals of args (trees allowed) into a jaxpr whose inputs
 * are the flattened argument leaves and outputs the flattened result
 * leaves. *out_like receives the traced output (for its tree structure).
 * op names the transformation in messages ("jit", "cond", ...); a read of a
 * traced value inside f (jx_item, ...) makes *err that read's error. */
jx_jaxpr *jx_trace_to_jaxpr_for(const char *op, jx_fn *f, const jx_t *args, jx_t *out_like, jx_t *err);
/* The same for jit. */
jx_jaxpr *jx_trace_to_jaxpr(jx_fn *f, const jx_t *args, jx_t *out_like, jx_t *err);
#endif
