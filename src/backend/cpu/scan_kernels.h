/* Kernels of the sort and cumulative primitives (src/prims/sort.c,
 * src/prims/cumulative.c): arrays viewed as [outer, n, inner] with the
 * axis in the middle. */
#ifndef JX_CPU_SCAN_KERNELS_H
#define JX_CPU_SCAN_KERNELS_H

#include "backend/cpu/kernels.h"

typedef enum { JX_CUM_SUM, JX_CUM_PROD, JX_CUM_MAX, JX_CUM_MIN, JX_CUM_LOGSUMEXP, JX_CUM_COUNT } jx_cum_op;

/* Inclusive scan of x along the middle axis into out (same layout), from
 * the end when reverse. Integers wrap (two's complement); max/min
 * propagate NaN; logsumexp takes floats. dtypes: bool (max, min), the
 * integers and floats (sum, prod, max, min), floats (logsumexp). */
void jx_cpu_cumulative(jx_cum_op op, jx_dtype dt, int64_t outer, int64_t n, int64_t inner, bool reverse,
                       const void *x, void *out);
/* Whether jx_cpu_cumulative takes (op, dt). */
bool jx_cpu_cumulative_supports(jx_cum_op op, jx_dtype dt);

/* out[o, j, i] = x[o, perm[o, j, i], i] for elements of es bytes (perm
 * holds valid indices in [0, n)). */
void jx_cpu_take_along(size_t es, int64_t outer, int64_t n, int64_t inner, const void *x, const int64_t *perm,
                       void *out);

#endif
