/* AVX2/FMA micro-kernels of the built-in GEMM: one template, instantiated
 * for f32 (6x16) and f64 (6x8). Compiled with a target attribute rather than
 * -mavx2 so the library runs on any x86-64; gemm.c calls these only after
 * __builtin_cpu_supports("avx2") and ("fma"). On other architectures this
 * file compiles to stubs that are never called. */
#include "backend/cpu/gemm_kernel.h"
#include "backend/cpu/gemm_ukr.h"

#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define AVX2_FN __attribute__((target("avx2,fma")))

/* The micro-kernel. The k loop is deliberately not unrolled: unrolled by 4,
 * GCC 12 interleaves the steps and spills accumulators (measured ~8% slower);
 * one step is 2 loads + 6 broadcasts + 12 FMAs + 3 scalar ops, and Zen3's
 * front end has slack for the loop overhead. The packed A and B streams are
 * sequential, which the hardware prefetchers follow; only C, touched once
 * per call at a stride, is prefetched. Edge tiles (m < MR or n < NR) go
 * through a small aligned buffer and a clipped scalar copy. */
#define DEFINE_UKR_AVX2(SUF, T, VT, W, LOAD, STORE, BCAST, FMA, ADD, ZERO)                                   \
  AVX2_FN void jx_gemm_ukr_avx2_##SUF(int64_t kc, const T *restrict a, const T *restrict b, T *restrict c,   \
                                      int64_t ldc, int acc, int m, int n) {                                  \
    UKR_ACCUMULATE(VT, W, LOAD, BCAST, FMA, ZERO, 0)                                                         \
    if (m == JX_GEMM_MR && n == 2 * (W)) {                                                                   \
      UKR_STORE(c, ldc, acc, W, LOAD, STORE, ADD);                                                           \
      return;                                                                                                \
    }                                                                                                        \
    _Alignas(32) T t[JX_GEMM_MR * 2 * (W)];                                                                  \
    UKR_STORE(t, 2 * (W), 0, W, LOAD, STORE, ADD);                                                           \
    for (int i = 0; i < m; i++)                                                                              \
      for (int j = 0; j < n; j++) c[i * ldc + j] = (acc ? c[i * ldc + j] : (T)0) + t[i * 2 * (W) + j];       \
  }

DEFINE_UKR_AVX2(f32, float, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_broadcast_ss,
                _mm256_fmadd_ps, _mm256_add_ps, _mm256_setzero_ps)
DEFINE_UKR_AVX2(f64, double, __m256d, 4, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_broadcast_sd,
                _mm256_fmadd_pd, _mm256_add_pd, _mm256_setzero_pd)

/* Packing of a transposed B (tb): op(B)[k, j] = b[j*ldb + k], so each
 * column of a micro-panel is a contiguous run along k. W x W blocks are
 * loaded as W such runs and transposed in registers, turning W*W scalar
 * stores into W vector ones. Scalar code handles the k tail and a ragged
 * (zero-padded) last panel. Same output as the portable pack_b. */
static inline AVX2_FN void transpose8_ps(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; i++) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}
static inline AVX2_FN void transpose4_pd(__m256d r[4]) {
  const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
  const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
  r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
  r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
  r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
  r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

#define DEFINE_PACK_BT(NAME, SUF, T, VT, W, NH, LOAD, STORE, TRANSPOSE)                                      \
  AVX2_FN void jx_gemm_pack_bt_##NAME##_##SUF(int64_t kc, int64_t nc, const T *b, int64_t ldb,               \
                                              T *restrict bp) {                                              \
    enum { NR = (NH) * (W) };                                                                                \
    for (int64_t j0 = 0; j0 < nc; j0 += NR, bp += NR * kc) {                                                 \
      const int nr = nc - j0 < NR ? (int)(nc - j0) : NR;                                                     \
      int64_t k = 0;                                                                                         \
      if (nr == NR)                                                                                          \
        for (; k + (W) <= kc; k += (W))                                                                      \
          for (int h = 0; h < (NH); h++) {                                                                   \
            VT r[W];                                                                                         \
            for (int c = 0; c < (W); c++) r[c] = LOAD(b + (j0 + h * (W) + c) * ldb + k);                     \
            TRANSPOSE(r);                                                                                    \
            for (int i = 0; i < (W); i++) STORE(bp + (k + i) * NR + h * (W), r[i]);                          \
          }                                                                                                  \
      for (int c = 0; c < NR; c++) {                                                                         \
        const T *col = b + (j0 + c) * ldb;                                                                   \
        for (int64_t kk = k; kk < kc; kk++) bp[kk * NR + c] = c < nr ? col[kk] : (T)0;                       \
      }                                                                                                      \
    }                                                                                                        \
  }

DEFINE_PACK_BT(avx2, f32, float, __m256, 8, 2, _mm256_loadu_ps, _mm256_storeu_ps, transpose8_ps)
DEFINE_PACK_BT(avx2, f64, double, __m256d, 4, 2, _mm256_loadu_pd, _mm256_storeu_pd, transpose4_pd)
/* the AVX-512 kernels' wider panels (NR = 32 / 16), transposed in the same
   8x8 / 4x4 blocks: AVX2 instructions suffice for a copy this short */
DEFINE_PACK_BT(avx512, f32, float, __m256, 8, 4, _mm256_loadu_ps, _mm256_storeu_ps, transpose8_ps)
DEFINE_PACK_BT(avx512, f64, double, __m256d, 4, 4, _mm256_loadu_pd, _mm256_storeu_pd, transpose4_pd)

#else /* not x86: never selected (gemm.c checks the architecture first) */

void jx_gemm_ukr_avx2_f32(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int acc, int m,
                          int n) {
  (void)kc, (void)a, (void)b, (void)c, (void)ldc, (void)acc, (void)m, (void)n;
}
void jx_gemm_ukr_avx2_f64(int64_t kc, const double *a, const double *b, double *c, int64_t ldc, int acc,
                          int m, int n) {
  (void)kc, (void)a, (void)b, (void)c, (void)ldc, (void)acc, (void)m, (void)n;
}
void jx_gemm_pack_bt_avx2_f32(int64_t kc, int64_t nc, const float *b, int64_t ldb, float *bp) {
  (void)kc, (void)nc, (void)b, (void)ldb, (void)bp;
}
void jx_gemm_pack_bt_avx2_f64(int64_t kc, int64_t nc, const double *b, int64_t ldb, double *bp) {
  (void)kc, (void)nc, (void)b, (void)ldb, (void)bp;
}
void jx_gemm_pack_bt_avx512_f32(int64_t kc, int64_t nc, const float *b, int64_t ldb, float *bp) {
  (void)kc, (void)nc, (void)b, (void)ldb, (void)bp;
}
void jx_gemm_pack_bt_avx512_f64(int64_t kc, int64_t nc, const double *b, int64_t ldb, double *bp) {
  (void)kc, (void)nc, (void)b, (void)ldb, (void)bp;
}

#endif
