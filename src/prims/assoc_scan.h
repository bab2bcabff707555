/* lax.associative_scan over primitives (src/prims/assoc_scan.c): used by
 * the cumulative primitives' jvp rules and by the public
 * jx_associative_scan. */
#ifndef JX_ASSOC_SCAN_H
#define JX_ASSOC_SCAN_H

#include "core/core.h"

/* combine(ctx, n, a, b, out): the associative operator on n-tuples of
 * arrays of equal length along the axis; fills out[0..n). Returns NULL or
 * an error value. */
typedef jx_t (*jx_assoc_combine)(void *ctx, int n, const jx_t *a, const jx_t *b, jx_t *out);

/* The inclusive scan of the n arrays elems (one length along axis, which
 * is normalized) into out[0..n), from the end when reverse: the
 * odd/even recursion (Blelloch) of lax.associative_scan, every step a
 * primitive, so it differentiates, batches and compiles like any op.
 * Returns NULL or the first error (then every out[i] is it). */
jx_t jx_lax_associative_scan(jx_assoc_combine combine, void *ctx, int n, const jx_t *elems, int axis,
                             bool reverse, jx_t *out);

#endif
