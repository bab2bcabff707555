/* Shared helpers for primitive rule files. */
#ifndef JX_PRIMS_H
#define JX_PRIMS_H

#include "backend/cpu/kernels.h"
#include "core/core.h"
#include "ops/lax.h"

/* "op(f32[2,3], f32[4]): <cause>" — every shape error names the op and
 * the input types. */
jx_t jx_rule_error(const char *op, const jx_aval *in, int nin, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* numpy broadcasting of n avals' shapes into out (rank = max rank). */
jx_t jx_broadcast_shapes(const char *op, const jx_aval *in, int nin, jx_aval *out);
/* Element strides of x viewed over out's shape (0 on broadcast dims). */
void jx_broadcast_strides(const jx_aval *x, const jx_aval *out, int64_t *strides);

/* Normalise axis (negative counts from the end) into [0, ndim); -1 if bad. */
int jx_norm_axis(int axis, int ndim);

/* Shared batching rule pieces (see trace/batch). */
/* Move x's batch dim `bd` (or JX_NONE: broadcast) to dim 0 with size n. */
jx_t jx_batch_move_to_front(jx_t x, int bd, int64_t n);

#endif
