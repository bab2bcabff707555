/* General gather and scatter over a precomputed plan (prims/index.c
 * builds it from JAX's dimension numbers): each index position's window
 * start in the operand is already resolved (clamped, or -1 when out of
 * bounds), so the kernels only move and combine windows. */
#ifndef JX_CPU_GATHER_H
#define JX_CPU_GATHER_H

#include "backend/cpu/kernels.h"

typedef struct {
  size_t es; /* element size in bytes */
  /* the window: its dims, and their strides (elements) in the operand x
   * and in y (gather: the output; scatter: the updates) */
  int wnd;
  int64_t wshape[JX_MAX_RANK], xst[JX_MAX_RANK], yst[JX_MAX_RANK];
  /* index positions, row-major over bshape: their strides in y */
  int bnd;
  int64_t bshape[JX_MAX_RANK], byst[JX_MAX_RANK];
  int64_t nb; /* product of bshape */
} jx_cpu_gs_plan;

typedef enum { JX_CPU_SC_SET, JX_CPU_SC_ADD, JX_CPU_SC_MUL, JX_CPU_SC_MIN, JX_CPU_SC_MAX } jx_cpu_sc_kind;

/* Index positions b in [b0, b1), their windows' offsets in x at xoff[b - b0]
 * (-1: out of bounds). The callers resolve offsets a chunk at a time. */
/* y[window of b] = x[xoff + window], or *fill (one element) where the
 * offset is -1. */
void jx_cpu_gs_gather(const jx_cpu_gs_plan *p, int64_t b0, int64_t b1, const int64_t *xoff, const void *x,
                      void *y, const void *fill);
/* x[xoff + window] op= y[window of b] for b in order (a later update of an
 * element sees the earlier ones; SET: the last wins); offsets of -1 are
 * skipped. Windows of one element (wnd == 0) apply only where the offset
 * is in [lo, hi): threads owning disjoint ranges of x then keep each
 * element's order (windows ignore lo/hi). false: no such combiner. */
bool jx_cpu_gs_scatter(const jx_cpu_gs_plan *p, jx_dtype dt, jx_cpu_sc_kind kind, int64_t b0, int64_t b1,
                       const int64_t *xoff, int64_t lo, int64_t hi, void *x, const void *y);

/* The positions i < n whose offset xoff[i] lies in [lo, lo + span), in
 * order, into sel; their count. `vector`: with AVX-512 where the CPU has
 * it (the scatter's choice), else the scalar loop (tests compare them). */
int jx_cpu_select_owned(const int64_t *xoff, int n, int64_t lo, uint64_t span, int32_t *sel, bool vector);

#endif
