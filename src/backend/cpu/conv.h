/* Convolution and window kernels (conv_general_dilated, reduce_window,
 * select_and_gather_add / select_and_scatter_add). Like the other kernels
 * they see buffers, dtypes, shapes and strides only. */
#ifndef JX_CPU_CONV_H
#define JX_CPU_CONV_H

#include "backend/cpu/kernels.h"

enum { JX_CONV_MAXSP = JX_MAX_RANK - 2 };

/* One convolution in JAX's canonical terms: lhs [N, C, spatial...], rhs
 * [O, I, window...], out [N / bgc, O, out spatial...]. The lhs and the
 * output are read and written through element strides over those canonical
 * dims (any layout); the rhs through rst, its strides over the canonical
 * dims (oneDNN: any layout; jx's own kernel: contiguous in canonical
 * order only). Out-of-range
 * window taps (padding, the holes of lhs dilation) read zero; negative
 * padding crops. With G groups (fgc or bgc, at most one above 1) output
 * feature o belongs to group g = o / (O / G), which reads lhs channels
 * [g*I, (g+1)*I) (fgc) or lhs batch rows [g*N/bgc, (g+1)*N/bgc) (bgc). */
typedef struct {
  jx_dtype dt;
  int nsp;
  int64_t N, C, O, I, fgc, bgc;
  int64_t in[JX_CONV_MAXSP], k[JX_CONV_MAXSP], out[JX_CONV_MAXSP];
  int64_t stride[JX_CONV_MAXSP], lo[JX_CONV_MAXSP], ldil[JX_CONV_MAXSP], rdil[JX_CONV_MAXSP];
  int64_t lst[JX_MAX_RANK]; /* lhs strides over (N, C, spatial...) */
  int64_t ost[JX_MAX_RANK]; /* out strides over (N / bgc, O, spatial...) */
  int64_t rst[JX_MAX_RANK]; /* rhs strides over (O, I, window...) */
  /* an epilogue (under jit, a fused pointwise consumer: ir/loop.h) called
   * on ranges [lo, hi) of the output's flat elements once they are final,
   * or NULL. A kernel that runs it sets *epi_done; otherwise the caller
   * runs it over the whole output after. */
  void (*epi)(void *ctx, int64_t lo, int64_t hi);
  void *epi_ctx;
  bool *epi_done;
} jx_cpu_conv_desc;

/* jx's own convolution: im2col into column blocks, then jx's GEMM (any
 * numeric dtype). Returns 0, or -1 when scratch memory runs out. */
int jx_cpu_conv(const jx_cpu_conv_desc *d, const void *lhs, const void *rhs, void *out);

/* oneDNN's convolution (f32, fgc only, no lhs dilation) when jx was built
 * with it: returns 0 when it ran, 1 when it cannot take this convolution
 * (the caller runs jx_cpu_conv), -1 on a oneDNN failure. JX_CONV=own
 * turns it off, JX_CONV=dnnl insists (jx_cpu_conv_backend says which). */
int jx_cpu_conv_dnnl(const jx_cpu_conv_desc *d, const void *lhs, const void *rhs, void *out);
/* "dnnl" or "own": which backend an f32 convolution prefers. */
const char *jx_cpu_conv_backend(void);
/* Tests: "own" or "dnnl" overrides JX_CONV; NULL returns to it. */
void jx_cpu_conv_force(const char *backend);

/* Windows over every dim of a contiguous operand x (rank ndim, shape in):
 * output position o and window tap w read x at (o*stride + w*wdil - lo) /
 * bdil when that is a whole, in-range index; every other tap is padding. */
typedef struct {
  jx_dtype dt;
  int ndim;
  int64_t in[JX_MAX_RANK], out[JX_MAX_RANK], window[JX_MAX_RANK];
  int64_t stride[JX_MAX_RANK], lo[JX_MAX_RANK], bdil[JX_MAX_RANK], wdil[JX_MAX_RANK];
} jx_cpu_window_desc;
typedef enum { JX_WIN_SUM, JX_WIN_MAX, JX_WIN_MIN } jx_cpu_winop;
/* y[o] = the sum / max / min over the window (padding is the identity:
 * 0, -inf, +inf; max/min propagate NaN). 0 or -1 (out of memory). */
int jx_cpu_reduce_window(jx_cpu_winop op, const jx_cpu_window_desc *d, const void *x, void *y);
/* The selected tap of each window: the first max (is_min false) or min of
 * x over its in-range taps. gather: y[o] = t[selected] (0 when a window
 * has no in-range tap); scatter: y (zeroed here, x's shape) +=
 * s[o] at selected. 0 or -1 (out of memory). */
int jx_cpu_select_gather(bool is_min, const jx_cpu_window_desc *d, const void *t, const void *x, void *y);
int jx_cpu_select_scatter(bool is_min, const jx_cpu_window_desc *d, const void *s, const void *x, void *y);
/* Tests: true runs every window through the generic kernels (not the
 * tiled ones, for windows side by side over a channels-last operand). */
void jx_cpu_window_generic(bool on);
/* Tests: whether d's windows run through the tiled kernels. */
bool jx_cpu_window_tiled(const jx_cpu_window_desc *d);

#endif
