/* NumPy's str() of a concrete array (core/numpy_str.c): what
 * jax.debug.print shows for an argument. */
#ifndef JX_NUMPY_STR_H
#define JX_NUMPY_STR_H

#include "core/core.h"

/* Append str(x) to b (x a concrete array). */
void jx_numpy_str(jx_strbuf *b, jx_t x);

#endif
