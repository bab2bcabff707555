/* lax: one thin function per primitive, binding it with exact params (no
 * promotion, no implicit broadcasting beyond what the primitive allows).
 * Public NumPy-style ops and the primitives' own rules are written with
 * these, so every rule is itself transformable. */
#ifndef JX_LAX_H
#define JX_LAX_H

#include "core/core.h"

jx_t jx_lax_unary(jx_prim p, jx_t x);
jx_t jx_lax_binary(jx_prim p, jx_t a, jx_t b); /* same dtype, broadcastable shapes */
jx_t jx_lax_select(jx_t pred, jx_t on_true, jx_t on_false);
jx_t jx_lax_convert(jx_t x, jx_dtype dt);
jx_t jx_lax_reduce(jx_prim p, jx_t x, int naxes, const int *axes); /* sum/max/min */
jx_t jx_lax_argreduce(jx_prim p, jx_t x, int axis, jx_dtype index_dtype);
jx_t jx_lax_dot_general(jx_t a, jx_t b, int nc, const int *lc, const int *rc, int nb, const int *lb,
                        const int *rb);
/* [BF16] with preferred_element_type pref (JX_DTYPE_COUNT: none); the
 * primitive takes f32 for bf16/f16 operands (prims/dot.c) */
jx_t jx_lax_dot_general_pref(jx_t a, jx_t b, int nc, const int *lc, const int *rc, int nb, const int *lb,
                             const int *rb, jx_dtype pref);
jx_t jx_lax_reshape(jx_t x, int ndim, const int64_t *shape);
jx_t jx_lax_broadcast_in_dim(jx_t x, int ndim, const int64_t *shape, const int *dims);
jx_t jx_lax_transpose(jx_t x, const int *perm);
jx_t jx_lax_slice(jx_t x, const int64_t *start, const int64_t *limit, const int64_t *stride);
jx_t jx_lax_rev(jx_t x, int naxes, const int *axes);
jx_t jx_lax_pad(jx_t x, jx_t padval, const int64_t *lo, const int64_t *hi, const int64_t *interior);
jx_t jx_lax_concatenate(int n, const jx_t *xs, int axis);
/* idx + n where idx < 0 (JAX's negative indices; unsigned ones never are) */
jx_t jx_lax_wrap_index(jx_t idx, int64_t n);
/* take(x, idx, axis) as a gather: negative indices wrap once, then clamp */
jx_t jx_lax_gather(jx_t x, jx_t idx, int axis);
/* gather / a scatter primitive p with params pa (JX_PK_GATHER/SCATTER) */
jx_t jx_lax_gather_p(jx_t x, jx_t idx, const jx_params *pa);
jx_t jx_lax_scatter_p(jx_prim p, jx_t x, jx_t idx, jx_t updates, const jx_params *pa);
/* starts: x's rank 0-d integer arrays, clamped by the primitive */
jx_t jx_lax_dynamic_slice(jx_t x, const jx_t *starts, const int64_t *sizes);
jx_t jx_lax_dynamic_update_slice(jx_t x, jx_t update, const jx_t *starts);
jx_t jx_lax_iota(jx_dtype dt, int ndim, const int64_t *shape, int axis);

/* Helpers for rules. */
/* A 0-d array of dtype dt (strongly typed) holding v. */
jx_t jx_lax_const(jx_dtype dt, double v);
/* x broadcast (numpy rules) to the shape of aval; x's rank <= aval's. */
jx_t jx_lax_broadcast_to_aval(jx_t x, const jx_aval *a);
/* Sum ct down to aval's shape: the transpose of numpy broadcasting. */
jx_t jx_lax_unbroadcast(jx_t ct, const jx_aval *a);
jx_t jx_lax_zeros(const jx_aval *a);
/* Elementwise helpers that treat NULL as a symbolic zero. */
jx_t jx_lax_add_any(jx_t a, jx_t b);
jx_t jx_lax_neg_any(jx_t a);

#endif
