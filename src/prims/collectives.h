/* Binding collectives (prims/collectives.c): every collective is bound
 * through jx_coll_bind, which first raises x into the innermost named vmap
 * over one of its axes (so a value unmapped there still takes part). */
#ifndef JX_PRIMS_COLLECTIVES_H
#define JX_PRIMS_COLLECTIVES_H

#include "core/core.h"

jx_t jx_coll_bind(jx_prim p, jx_t x, const jx_params *pa); /* x unused for axis_index */

#endif
