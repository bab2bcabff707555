/* jx's own convolution: im2col + GEMM.
 *
 * For a block of images (as many as keep the patch matrix near 8 MiB) the
 * window taps of every output position are gathered into a matrix, then
 * one GEMM per group makes the outputs:
 *  - channels-first outputs (NCHW-like): col[I*K, nb*P] (row = (input
 *    channel, tap), column = (image, position)) and W[Og, I*K] x col, one
 *    product per image (a batched GEMM);
 *  - outputs whose channels are contiguous and whose positions are evenly
 *    spaced (NHWC-like, and the HWIO filter gradient): patch rows
 *    rows[nb*P, K*I] (row = (image, position), column = (tap, channel):
 *    channel runs, contiguous in NHWC inputs) and rows x W^T, with W
 *    reordered to [O, K, I], straight into the output rows.
 * Any other output layout is computed channels-first into a temporary and
 * scattered into place. Padding and the holes of lhs dilation read zero;
 * which lhs index a tap reads is tabulated per spatial dim once per call. */
#include "backend/cpu/conv.h"

#include <string.h>

typedef uint32_t __attribute__((may_alias)) m32;
typedef uint64_t __attribute__((may_alias)) m64;

enum { COL_TARGET_BYTES = 8 << 20 };

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

/* Patch row r = (image, position): for every tap its I channels. */
#define DEF_ROWS(T)                                                                                          \
  static void rows_##T(const col_job *j, int64_t r) {                                                        \
    const jx_cpu_conv_desc *d = j->d;                                                                        \
    const int nsp = d->nsp;                                                                                  \
    const int64_t I = d->I, sc = d->lst[1];                                                                  \
    int64_t img = r / j->P, p = r % j->P, ps[JX_CONV_MAXSP], k[JX_CONV_MAXSP] = {0};                         \
    for (int s = nsp - 1; s >= 0; s--) ps[s] = p % d->out[s], p /= d->out[s];                                \
    const T *base = (const T *)j->lhs + (j->n0 + img) * d->lst[0] + j->c0 * sc;                              \
    T *dst = (T *)(j->col + (size_t)(r * j->K * I) * sizeof(T));                                             \
    for (int64_t t = 0; t < j->K; t++, dst += I) {                                                           \
      int64_t off = 0;                                                                                       \
      bool ok = true;                                                                                        \
      for (int s = 0; s < nsp; s++) {                                                                        \
        int64_t v = j->tab[j->taboff[s] + k[s] * d->out[s] + ps[s]];                                         \
        ok &= v >= 0;                                                                                        \
        off += v * d->lst[s + 2];                                                                            \
      }                                                                                                      \
      if (!ok) {                                                                                             \
        memset(dst, 0, (size_t)I * sizeof(T));                                                               \
      } else if (sc == 1) {                                                                                  \
        memcpy(dst, base + off, (size_t)I * sizeof(T));                                                      \
      } else {                                                                                               \
        for (int64_t i = 0; i < I; i++) dst[i] = base[off + i * sc];                                         \
      }                                                                                                      \
      for (int s = nsp - 1; s >= 0; s--) {                                                                   \
        if (++k[s] < d->k[s]) break;                                                                         \
        k[s] = 0;                                                                                            \
      }                                                                                                      \
    }                                                                                                        \
  }
DEF_ROWS(m32)
DEF_ROWS(m64)

static void rows_task(void *ctx, int64_t lo, int64_t hi) {
  const col_job *j = ctx;
  bool wide = jx_dtype_size(j->d->dt) == 8;
  for (int64_t r = lo; r < hi; r++) wide ? rows_m64(j, r) : rows_m32(j, r);
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

/* how conv_into computes: CF (col, W x col per image), ROWS (patch rows x
 * W^T), COLT (col^T x W^T, for few input channels); OTHER: a temporary */
typedef enum { OUT_CF, OUT_ROWS, OUT_COLT, OUT_OTHER } out_mode;

/* CF: contiguous channels-first; ROWS: channels contiguous and the
 * positions of an image evenly spaced, *row apart */
static out_mode classify(const jx_cpu_conv_desc *d, int64_t P, int64_t *row) {
  int64_t cf[JX_MAX_RANK], s1 = 1;
  for (int s = d->nsp - 1; s >= 0; s--) cf[s + 2] = s1, s1 *= d->out[s];
  cf[1] = P, cf[0] = d->O * P;
  bool is_cf = true;
  for (int i = 0; i < d->nsp + 2; i++) is_cf &= d->ost[i] == cf[i];
  if (is_cf) return OUT_CF;
  *row = d->nsp ? d->ost[d->nsp + 1] : d->O;
  bool rows = d->ost[1] == 1 && *row >= d->O;
  int64_t span = 1;
  for (int s = d->nsp - 2; s >= 0; s--) {
    span *= d->out[s + 1];
    rows &= d->ost[s + 2] == *row * span;
  }
  return rows ? OUT_ROWS : OUT_OTHER;
}

/* rhs [O, I, K] as [O, K, I] (patch rows order); rhs itself when that is the same */
static const void *rows_kernel(const jx_cpu_conv_desc *d, const void *rhs, int64_t K,
                               struct jx_buffer **tmp) {
  *tmp = NULL;
  if (d->I == 1 || K == 1) return rhs;
  size_t es = jx_dtype_size(d->dt);
  void *t = jx_cpu_scratch((size_t)(d->O * K * d->I) * es, tmp);
  if (!t) return NULL;
  int64_t shape[3] = {d->O, K, d->I}, st[3] = {d->I * K, 1, K};
  jx_cpu_strided_copy(es, 3, shape, rhs, 0, st, t);
  return t;
}

static int conv_into(const jx_cpu_conv_desc *d, const void *lhs, const void *rhs, char *out, out_mode mode,
                     int64_t P, int64_t row) {
  const size_t es = jx_dtype_size(d->dt);
  const int64_t G = d->fgc > d->bgc ? d->fgc : d->bgc, Og = d->O / G, Nb = d->N / d->bgc;
  int64_t K = 1;
  for (int s = 0; s < d->nsp; s++) K *= d->k[s];
  const int64_t IK = d->I * K;
  if (IK == 0) { /* an empty sum */
    for (int64_t n = 0; n < Nb; n++) {
      if (mode == OUT_CF) memset(out + (size_t)(n * d->ost[0]) * es, 0, (size_t)(d->O * P) * es);
      for (int64_t p = 0; mode == OUT_ROWS && p < P; p++)
        memset(out + (size_t)(n * d->ost[0] + p * row) * es, 0, (size_t)d->O * es);
    }
    return 0;
  }
  /* images per block: the target size, but at least 256 GEMM rows (few
   * positions per image: filter gradients) while under 4x the target */
  int64_t nb = COL_TARGET_BYTES / (int64_t)es / (IK * P), want = (256 + P - 1) / P;
  if (nb < want) nb = want < 4 * COL_TARGET_BYTES / (int64_t)es / (IK * P) ? want : nb;
  nb = nb < 1 ? 1 : nb > Nb ? Nb : nb;
  col_job j = {.d = d, .lhs = lhs, .K = K, .P = P};
  struct jx_buffer *wtmp = NULL, *hcol = NULL;
  const char *W = mode == OUT_ROWS ? rows_kernel(d, rhs, K, &wtmp) : rhs;
  int64_t *tab = make_tables(d, j.taboff);
  j.tab = tab;
  j.col = jx_cpu_scratch((size_t)(IK * nb * P) * es, &hcol);
  if (!tab || !j.col || !W) {
    jx_free(tab), jx_cpu_scratch_free(hcol), jx_cpu_scratch_free(wtmp);
    return -1;
  }
  for (int64_t g = 0; g < G; g++) {
    const char *w = W + (size_t)(g * Og * IK) * es;
    for (int64_t n0 = 0; n0 < Nb; n0 += nb) {
      j.nb = n0 + nb <= Nb ? nb : Nb - n0;
      j.n0 = n0 + (d->bgc > 1 ? g * Nb : 0), j.c0 = d->fgc > 1 ? g * d->I : 0;
      char *c = out + (size_t)(n0 * d->ost[0] + g * Og * d->ost[1]) * es;
      if (mode == OUT_ROWS) {
        jx_cpu_parallel_for(j.nb * P, 1 + 16384 / IK, rows_task, &j);
        jx_cpu_gemm(d->dt, false, true, j.nb * P, Og, IK, j.col, IK, w, IK, c, row);
      } else {
        jx_cpu_parallel_for(IK, 1 + 16384 / (j.nb * P), fill_task, &j);
        if (mode == OUT_COLT)
          jx_cpu_gemm(d->dt, true, true, j.nb * P, Og, IK, j.col, j.nb * P, w, IK, c, row);
        else
          jx_cpu_gemm_batched(d->dt, false, false, j.nb, Og, P, IK, w, IK, 0, j.col, j.nb * P, P, c, P,
                              d->O * P);
      }
    }
  }
  jx_free(tab), jx_cpu_scratch_free(hcol), jx_cpu_scratch_free(wtmp);
  return 0;
}

int jx_cpu_conv(const jx_cpu_conv_desc *d, const void *lhs, const void *rhs, void *out) {
  int64_t P = 1;
  for (int s = 0; s < d->nsp; s++) P *= d->out[s];
  const int64_t Nb = d->N / d->bgc;
  if (P == 0 || Nb == 0 || d->O == 0) return 0;
  int64_t row = 0;
  out_mode mode = classify(d, P, &row);
  /* patch rows pay off once each tap copies a run of channels */
  const out_mode rows_mode = d->I >= 4 ? OUT_ROWS : OUT_COLT;
  if (mode == OUT_CF) return conv_into(d, lhs, rhs, out, OUT_CF, P, 0);
  if (mode == OUT_ROWS && d->ost[0] == P * row) return conv_into(d, lhs, rhs, out, rows_mode, P, row);
  /* into a contiguous [N, positions, O] temporary, then scattered into place */
  const size_t es = jx_dtype_size(d->dt);
  struct jx_buffer *htmp;
  char *tmp = jx_cpu_scratch((size_t)(Nb * d->O * P) * es, &htmp);
  if (!tmp) return -1;
  jx_cpu_conv_desc t = *d;
  t.ost[0] = P * d->O, t.ost[1] = 1;
  int64_t span = d->O;
  for (int s = d->nsp - 1; s >= 0; s--) t.ost[s + 2] = span, span *= d->out[s];
  int rc = conv_into(&t, lhs, rhs, tmp, rows_mode, P, d->O);
  if (rc == 0) {
    int64_t shape[JX_MAX_RANK], st[JX_MAX_RANK];
    shape[0] = Nb, st[0] = d->ost[0];
    for (int s = 0; s < d->nsp; s++) shape[s + 1] = d->out[s], st[s + 1] = d->ost[s + 2];
    shape[d->nsp + 1] = d->O, st[d->nsp + 1] = d->ost[1];
    jx_cpu_strided_scatter(es, d->nsp + 2, shape, tmp, out, 0, st);
  }
  jx_cpu_scratch_free(htmp);
  return rc;
}
