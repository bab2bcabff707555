/* Shared helpers for the NumPy-level ops. */
#ifndef JX_OPS_H
#define JX_OPS_H

#include "prims/lax.h"

/* Checks that x is an array (concrete or traced); returns an error value
 * naming op otherwise, NULL if fine. */
jx_t jx_op_check_array(const char *op, jx_t x);
/* x converted to dtype dt with the given weak flag (no-op when equal). */
jx_t jx_op_cast(jx_t x, jx_dtype dt, bool weak);
/* the dtype jnp.sum / jnp.prod accumulate x's dtype in: bool, i8, i16 ->
 * i32; u8, u16 -> u32 (their promote_integers); others themselves */
jx_dtype jx_op_sum_dtype(jx_dtype dt);
/* The same, naming op in errors (a weak int scalar too large for dt). */
jx_t jx_op_cast_for(const char *op, jx_t x, jx_dtype dt, bool weak);
/* Normalise a list of axes (negative from the end) into mask[ndim]. */
jx_t jx_op_axes(const char *op, const jx_aval *a, int naxes, const int *axes, bool *mask);
/* a and b promoted to their JAX join (dtype and weakness), naming op in errors. */
jx_t jx_op_promote(const char *op, jx_t *a, jx_t *b);
/* x made float (ints/bool -> f32), for ops that promote to inexact. */
jx_t jx_op_to_float(jx_t x);

#endif
