/* Shared between the indexing rule files (index.c, dslice.c): the batch
 * rules of gather and the scatters, which dynamic_slice and
 * dynamic_update_slice reuse for batched start indices (as JAX does). */
#ifndef JX_PRIMS_INDEX_H
#define JX_PRIMS_INDEX_H

#include "core/core.h"

jx_t jx_index_gather_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                           int *obd);
jx_t jx_index_scatter_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                            int *obd);
/* Element i of an integer index array as int64, exactly for every integer
 * dtype (#19's too); a u64 past INT64_MAX saturates there (it is out of
 * bounds of any dim, as its true value is). */
int64_t jx_index_load(jx_dtype dt, const void *base, int64_t i);

#endif
