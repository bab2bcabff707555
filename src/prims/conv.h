/* Convolution and window primitives: their lax-level binds and the
 * pieces their rules share (src/prims/conv.c, src/prims/window.c). */
#ifndef JX_PRIMS_CONV_H
#define JX_PRIMS_CONV_H

#include "core/core.h"

/* conv_general_dilated(lhs, rhs) with params of kind JX_PK_CONV. */
jx_t jx_lax_conv(jx_t lhs, jx_t rhs, const jx_params *p);
/* reduce_window_sum/max/min(x), select_and_gather_add(t, x),
 * select_and_scatter_add(s, x), params of kind JX_PK_WINDOW. */
jx_t jx_lax_window(jx_prim prim, int nin, const jx_t *in, const jx_params *p);

/* JAX's _dilate_shape of one dim: 0 stays 0, else 1 + dil * (d - 1). */
static inline int64_t jx_dilate_dim(int64_t d, int64_t dil) { return d == 0 ? 0 : 1 + dil * (d - 1); }
/* The size of a strided window's output: floor((padded - window) /
 * stride) + 1, or 0 when the window does not fit. */
static inline int64_t jx_window_out(int64_t padded, int64_t window, int64_t stride) {
  return padded < window ? 0 : (padded - window) / stride + 1;
}
/* JAX's _conv_general_vjp_lhs_padding for one dim: the padding that makes
 * a gradient w.r.t. the input a convolution of the output cotangent. */
void jx_vjp_lhs_padding(int64_t in, int64_t window, int64_t stride, int64_t out, int64_t lo, int64_t lhs_dil,
                        int64_t rhs_dil, int64_t *before, int64_t *after);

#endif
