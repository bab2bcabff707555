/* Internal to the portable target's CALL kernels (render_call.c and the
 * render_<family>.c files beside it): the helpers they share, and each
 * family's renderers. A renderer writes the C function
 * p<pid>_k<id>(char **b, const jx_rt *rt) computing CALL kernel k of
 * program p; one that cannot render k (a dtype or a form it does not
 * know) records the primitive as missing (jx_cpu_no_rendering) and writes
 * nothing, and the export then fails naming it. */
#ifndef JX_CPU_RENDER_CALL_H
#define JX_CPU_RENDER_CALL_H

#include "backend/cpu/render.h"

/* the C type and the scalar functions' suffix of dtype dt (render_call.c's
 * tables) */
const char *jx_cpu_call_ctype(jx_dtype dt);
const char *jx_cpu_call_sfx(jx_dtype dt);
/* the function's head (typed views i<n> of the inputs, o<n> of the
 * outputs) and its tail (`return 0; }`) */
void jx_cpu_call_head(sb *b, const jx_program *p, const jx_kernel *k, int id, const char *what);
void jx_cpu_call_tail(sb *b);
/* `dst = src + a * bv` (fmaf/fma where the target has a fast one, as the
 * matrix products do; otherwise the scalar functions' mul then add) */
void jx_cpu_call_madd(sb *b, const char *sfx, const char *ind, const char *dst, const char *src,
                      const char *a, const char *bv);
/* element i of `data` (dtype dt) as an exact C literal (render_portable.c) */
void jx_cpu_put_literal(sb *b, jx_dtype dt, const void *data, int64_t i);

static inline const jx_aval *jx_cpu_bav(const jx_program *p, int b) { return &p->bufs[b].aval; }

/* Workspace bytes CALL kernel k takes through rt->alloc while it runs
 * (sort's permutation); 0 for most. render_portable.c sizes the
 * workspace's stack with it. */
int64_t jx_cpu_call_scratch(const jx_program *p, const jx_kernel *k);

/* render_dot_simd.c (the simd option): the x86 paths of a matrix
 * product's row loops over a full panel of nr columns, each written as
 * `#if <target> if (nn == nr) { ... } else`, the portable loops (which
 * the caller writes after) being the else; oam[r]: A's offset of row
 * m + r (r < JX_DOT_SIMD_ROWS), oak: of column kk. Nothing unless
 * b->simd and dt is f32 or f64. */
enum { JX_DOT_SIMD_ROWS = 10 };
void jx_cpu_put_dot_simd(sb *b, jx_dtype dt, int64_t M, int64_t N, int nr, const char (*oam)[96],
                         const char *oak);
/* the unit's #include <immintrin.h>, inside the same #if */
void jx_cpu_put_simd_include(sb *b);

/* render_conv.c: conv_general_dilated */
void jx_cpu_render_conv(sb *b, const jx_program *p, const jx_kernel *k, int id);
/* render_window.c: reduce_window_*, select_and_gather_add, select_and_scatter_add */
void jx_cpu_render_window(sb *b, const jx_program *p, const jx_kernel *k, int id);
/* render_gather.c: gather and the scatters with any dimension numbers,
 * dynamic_slice, dynamic_update_slice */
void jx_cpu_render_gather_general(sb *b, const jx_program *p, const jx_kernel *k, int id);
void jx_cpu_render_scatter_general(sb *b, const jx_program *p, const jx_kernel *k, int id);
void jx_cpu_render_dslice(sb *b, const jx_program *p, const jx_kernel *k, int id);
/* render_sort.c: sort, argsort; the cumulative ops and reduce_prod */
void jx_cpu_render_sort(sb *b, const jx_program *p, const jx_kernel *k, int id);
int64_t jx_cpu_sort_scratch(const jx_program *p, const jx_kernel *k);
void jx_cpu_render_cumulative(sb *b, const jx_program *p, const jx_kernel *k, int id);
void jx_cpu_render_reduce_prod(sb *b, const jx_program *p, const jx_kernel *k, int id);
/* render_linalg.c: svd */
void jx_cpu_render_svd(sb *b, const jx_program *p, const jx_kernel *k, int id);
int64_t jx_cpu_svd_scratch(const jx_program *p, const jx_kernel *k);
/* render_print.c: debug_print, as a call to the JX_EXPORT_DEBUG_PRINT hook */
void jx_cpu_render_print(sb *b, const jx_program *p, const jx_kernel *k, int id);

#endif
