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
  int64_t nb;          /* product of bshape */
  const int64_t *xoff; /* per index position: the window's offset in x, -1: out of bounds */
} jx_cpu_gs_plan;

typedef enum { JX_CPU_SC_SET, JX_CPU_SC_ADD, JX_CPU_SC_MUL, JX_CPU_SC_MIN, JX_CPU_SC_MAX } jx_cpu_sc_kind;

/* y[window of b] = x[xoff[b] + window], or *fill (one element) where
 * xoff[b] < 0. Parallel over index positions. */
void jx_cpu_gs_gather(const jx_cpu_gs_plan *p, const void *x, void *y, const void *fill);
/* x[xoff[b] + window] op= y[window of b] for b in order (serial: a later
 * update of an element sees the earlier ones; SET: the last wins); b with
 * xoff[b] < 0 are skipped. false: dtype without that combiner. */
bool jx_cpu_gs_scatter(const jx_cpu_gs_plan *p, jx_dtype dt, jx_cpu_sc_kind kind, void *x, const void *y);

#endif
