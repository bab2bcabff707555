/* The element-wise step of the reducing collectives (psum, pmax, pmin,
 * psum_scatter), for every dtype: shared by the in-process rendezvous
 * (dist/local.c) and the MPI process layer's own reduction operators
 * (dist/dist_mpi.c), so that both combine values the same way. Defined
 * with the CPU kernels (backend/cpu/coll_fold.c), over scalar_ops.h. */
#ifndef JX_DIST_FOLD_H
#define JX_DIST_FOLD_H

#include "dist/dist.h"

/* acc[k] = acc[k] op src[k] for k < len, in dt's own arithmetic:
 *   integers: sums wrap (two's complement, as XLA), max/min compare in the
 *     type (u32/u64 unsigned);
 *   f32/f64: IEEE sums; bf16/f16: each sum widened to f32 and rounded back
 *     to the 16-bit type (to nearest even), as XLA:CPU's all-reduce adds in
 *     the element type;
 *   max/min of floats compare as floats; a NaN in either propagates (the
 *     first one met keeps its bits);
 *   bool: max/min are or/and (a bool sum is refused before it gets here).
 * Any dtype outside jx_dtype leaves acc as it is. */
void jx_dist_fold(jx_dist_op op, jx_dtype dt, void *acc, const void *src, int64_t len);

#endif
