/* jx's own convolution: im2col + GEMM.
 *
 * For a block of images (as many as keep the column matrix near 4 MiB) the
 * window taps of every output position are gathered into col[I*K, nb*P]
 * (row = (input channel, tap), column = (image, output position); padding
 * and the holes of lhs dilation read zero), then one GEMM per group makes
 * the outputs: channels-first outputs as W[Og, I*K] x col, one product per
 * image (a batched GEMM), channels-last ones as col^T x W^T straight into
 * the [image, position, channel] rows. Any other output layout is computed
 * channels-first into a temporary and scattered into place. Which lhs tap
 * an output position reads is tabulated per spatial dim once per call. */
#include "backend/cpu/conv.h"

#include <string.h>

typedef uint32_t __attribute__((may_alias)) m32;
typedef uint64_t __attribute__((may_alias)) m64;

enum { COL_TARGET_BYTES = 4 << 20 };

typedef struct {
  const jx_cpu_conv_desc *d;
  const char *lhs;
  char *col;
  int64_t K, P, nb;   /* taps, output positions, images in this block */
  int64_t n0, c0;     /* first lhs image, first lhs channel of the group */
  const int64_t *tab; /* per spatial dim s at taboff[s]: [k_s][out_s] -> lhs index or -1 */
  int64_t taboff[JX_CONV_MAXSP];
} col_job;

/* One row (channel i, tap kk) of col for every image of the block. */
#define DEF_FILL(T)                                                                                          \
  static void fill_##T(const col_job *j, int64_t r) {                                                        \
    const jx_cpu_conv_desc *d = j->d;                                                                        \
    const int nsp = d->nsp;                                                                                  \
    int64_t i = r / j->K, kk = r % j->K;                                                                     \
    const int64_t *tabs[JX_CONV_MAXSP];                                                                      \
    for (int s = nsp - 1; s >= 0; s--) {                                                                     \
      tabs[s] = j->tab + j->taboff[s] + (kk % d->k[s]) * d->out[s];                                          \
      kk /= d->k[s];                                                                                         \
    }                                                                                                        \
    T *dst = (T *)(j->col + (size_t)(r * j->nb * j->P) * sizeof(T));                                         \
    for (int64_t img = 0; img < j->nb; img++) {                                                              \
      const T *base = (const T *)j->lhs + (j->n0 + img) * d->lst[0] + (j->c0 + i) * d->lst[1];               \
      if (nsp == 0) {                                                                                        \
        *dst++ = *base;                                                                                      \
        continue;                                                                                            \
      }                                                                                                      \
      const int64_t L = d->out[nsp - 1], sl = d->lst[nsp + 1], *tl = tabs[nsp - 1];                          \
      int64_t pidx[JX_CONV_MAXSP] = {0};                                                                     \
      for (int64_t q = 0; q < j->P / L; q++) {                                                               \
        int64_t off = 0;                                                                                     \
        bool ok = true;                                                                                      \
        for (int s = 0; s < nsp - 1; s++) {                                                                  \
          int64_t v = tabs[s][pidx[s]];                                                                      \
          ok &= v >= 0;                                                                                      \
          off += v * d->lst[s + 2];                                                                          \
        }                                                                                                    \
        if (!ok) {                                                                                           \
          memset(dst, 0, (size_t)L * sizeof(T));                                                             \
        } else {                                                                                             \
          const T *b = base + off;                                                                           \
          for (int64_t p = 0; p < L; p++) dst[p] = tl[p] < 0 ? 0 : b[tl[p] * sl];                            \
        }                                                                                                    \
        dst += L;                                                                                            \
        for (int s = nsp - 2; s >= 0; s--) {                                                                 \
          if (++pidx[s] < d->out[s]) break;                                                                  \
          pidx[s] = 0;                                                                                       \
        }                                                                                                    \
      }                                                                                                      \
    }                                                                                                        \
  }
DEF_FILL(m32)
DEF_FILL(m64)

static void fill_task(void *ctx, int64_t lo, int64_t hi) {
  const col_job *j = ctx;
  bool wide = jx_dtype_size(j->d->dt) == 8;
  for (int64_t r = lo; r < hi; r++) wide ? fill_m64(j, r) : fill_m32(j, r);
}

/* tab[s]: [k_s][out_s] -> the lhs index tap k_s of output p_s reads, or -1
 * (padding, or a hole of lhs dilation) */
static int64_t *make_tables(const jx_cpu_conv_desc *d, int64_t *taboff) {
  int64_t n = 0;
  for (int s = 0; s < d->nsp; s++) taboff[s] = n, n += d->k[s] * d->out[s];
  int64_t *tab = jx_malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
  if (!tab) return NULL;
  for (int s = 0; s < d->nsp; s++)
    for (int64_t k = 0; k < d->k[s]; k++)
      for (int64_t p = 0; p < d->out[s]; p++) {
        int64_t c = p * d->stride[s] + k * d->rdil[s] - d->lo[s]; /* in the dilated, padded lhs */
        bool hit = c >= 0 && c <= (d->in[s] - 1) * d->ldil[s] && c % d->ldil[s] == 0;
        tab[taboff[s] + k * d->out[s] + p] = hit ? c / d->ldil[s] : -1;
      }
  return tab;
}

typedef enum { OUT_CF, OUT_CL, OUT_OTHER } out_mode;

static out_mode classify(const jx_cpu_conv_desc *d, int64_t P) {
  int64_t cf[JX_MAX_RANK], cl[JX_MAX_RANK], s1 = 1, s2 = d->O;
  for (int s = d->nsp - 1; s >= 0; s--) {
    cf[s + 2] = s1, s1 *= d->out[s];
    cl[s + 2] = s2, s2 *= d->out[s];
  }
  cf[1] = P, cf[0] = d->O * P, cl[1] = 1, cl[0] = d->O * P;
  bool is_cf = true, is_cl = true;
  for (int i = 0; i < d->nsp + 2; i++) is_cf &= d->ost[i] == cf[i], is_cl &= d->ost[i] == cl[i];
  return is_cf ? OUT_CF : is_cl ? OUT_CL : OUT_OTHER;
}

static int conv_into(const jx_cpu_conv_desc *d, const void *lhs, const void *rhs, char *out, out_mode mode,
                     int64_t P) {
  const size_t es = jx_dtype_size(d->dt);
  const int64_t G = d->fgc > d->bgc ? d->fgc : d->bgc, Og = d->O / G, Nb = d->N / d->bgc;
  int64_t K = 1;
  for (int s = 0; s < d->nsp; s++) K *= d->k[s];
  const int64_t IK = d->I * K;
  if (IK == 0) {
    memset(out, 0, (size_t)(Nb * d->O * P) * es);
    return 0;
  }
  int64_t nb = COL_TARGET_BYTES / (int64_t)es / (IK * P);
  nb = nb < 1 ? 1 : nb > Nb ? Nb : nb;
  col_job j = {.d = d, .lhs = lhs, .K = K, .P = P};
  int64_t *tab = make_tables(d, j.taboff);
  j.tab = tab;
  j.col = jx_malloc_aligned64((size_t)(IK * nb * P) * es);
  if (!tab || !j.col) {
    jx_free(tab), jx_free_aligned64(j.col);
    return -1;
  }
  for (int64_t g = 0; g < G; g++) {
    const char *w = (const char *)rhs + (size_t)(g * Og * IK) * es;
    for (int64_t n0 = 0; n0 < Nb; n0 += nb) {
      j.nb = n0 + nb <= Nb ? nb : Nb - n0;
      j.n0 = n0 + (d->bgc > 1 ? g * Nb : 0), j.c0 = d->fgc > 1 ? g * d->I : 0;
      jx_cpu_parallel_for(IK, 1 + 16384 / (j.nb * P), fill_task, &j);
      if (mode == OUT_CL)
        jx_cpu_gemm(d->dt, true, true, j.nb * P, Og, IK, j.col, j.nb * P, w, IK,
                    out + (size_t)(n0 * P * d->O + g * Og) * es, d->O);
      else
        jx_cpu_gemm_batched(d->dt, false, false, j.nb, Og, P, IK, w, IK, 0, j.col, j.nb * P, P,
                            out + (size_t)(n0 * d->O * P + g * Og * P) * es, P, d->O * P);
    }
  }
  jx_free(tab), jx_free_aligned64(j.col);
  return 0;
}

int jx_cpu_conv(const jx_cpu_conv_desc *d, const void *lhs, const void *rhs, void *out) {
  int64_t P = 1;
  for (int s = 0; s < d->nsp; s++) P *= d->out[s];
  const int64_t Nb = d->N / d->bgc;
  if (P == 0 || Nb == 0 || d->O == 0) return 0;
  out_mode mode = classify(d, P);
  if (mode != OUT_OTHER) return conv_into(d, lhs, rhs, out, mode, P);
  /* channels-first into a temporary, then scattered into out's layout */
  const size_t es = jx_dtype_size(d->dt);
  char *tmp = jx_malloc((size_t)(Nb * d->O * P) * es);
  if (!tmp) return -1;
  int rc = conv_into(d, lhs, rhs, tmp, OUT_CF, P);
  if (rc == 0) {
    int64_t shape[JX_MAX_RANK] = {Nb, d->O};
    for (int s = 0; s < d->nsp; s++) shape[s + 2] = d->out[s];
    jx_cpu_strided_scatter(es, d->nsp + 2, shape, tmp, out, 0, d->ost);
  }
  jx_free(tmp);
  return rc;
}
