/* Shared helpers for primitive rule files. */
#ifndef JX_PRIMS_H
#define JX_PRIMS_H

#include "backend/cpu/kernels.h"
#include "core/core.h"
#include "prims/lax.h"

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

/* Params printers' pieces (jaxpr text, as JAX writes it): " name=(1, 2)"
 * (a 1-tuple as "(1,)"), and int8 lists as "[1, 2]". */
void jx_put_ints(jx_strbuf *b, const char *name, const int64_t *v, int n);
void jx_put_i32s(jx_strbuf *b, const char *name, const int32_t *v, int n);
void jx_put_i8s(jx_strbuf *b, const int8_t *v, int n);

/* Shared batching rule pieces (see trace/batch.c). */
/* x with axis `from` moved to position `to` (a transpose; x if no-op). */
jx_t jx_moveaxis(jx_t x, int from, int to);
/* x with its batch dim bd moved to the front; bd == JX_NONE broadcasts x
 * to a leading dim of size n. */
jx_t jx_batch_to_front(jx_t x, int bd, int64_t n);
/* The batch size: the mapped dim's size of the first batched input. */
int64_t jx_batch_size(const jx_t *in, const int *bdims, int nin);
/* Batching for ops that broadcast like numpy, aligned from the right
 * (elementwise ops, threefry): returns the batch dim shared by every
 * batched operand when nothing needs to move (each batched operand at the
 * full per-example rank R with its batch dim at that same place, the
 * unbatched ones 0-d), else -1 after writing to x[] the operands with their
 * batch dim in front, padded with unit dims up to rank R (unbatched ones as
 * they are), so that their batch dim is 0 and they broadcast. */
int jx_batch_align_right(const jx_t *in, const int *bd, int nin, jx_t *x);
/* Operand dim d (unbatched numbering) -> dim in the batched value. */
static inline int jx_bdim_shift(int d, int bd) { return bd != JX_NONE && d >= bd ? d + 1 : d; }
/* rules shared by the reductions over params.reduce.axes (prims/reduce.c;
 * also reduce_prod in prims/math.c): the axes skip over the batch dim, and
 * the params print as axes=(...) */
jx_t jx_reduce_axes_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                          int *obd);
void jx_reduce_axes_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin);

#endif
