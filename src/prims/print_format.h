/* jax.debug.print's format strings (prims/print_format.c). */
#ifndef JX_PRINT_FORMAT_H
#define JX_PRINT_FORMAT_H

#include "core/core.h"

/* Python's str.format of fmt over n positional arguments: their types av,
 * or (av NULL) the concrete arrays vals. out NULL: only check fmt (an
 * error value naming jx_debug_print and the cause, else NULL); otherwise
 * also append the text, the values in NumPy's str() form, to out. */
jx_t jx_print_format(const char *fmt, int n, const jx_aval *av, const jx_t *vals, jx_strbuf *out);

#endif
