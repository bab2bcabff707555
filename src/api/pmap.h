/* vmap with an optional axis name (api/vmap.c): jx_vmap and jx_vmap_named
 * are both this; pmap falls back to it under other transformations. */
#ifndef JX_API_PMAP_H
#define JX_API_PMAP_H

#include "api/api.h"

jx_fn *jx_vmap_ex(jx_fn *f, const int *in_axes, int out_axis, const char *axis_name);

#endif
