/* AVX-512 micro-kernels of the built-in GEMM: the AVX2 kernel's 6-row tile
 * (gemm_ukr.h) at twice the width, 6 x 32 floats / 6 x 16 doubles in 12 zmm
 * accumulators. Twelve independent FMA chains cover two 512-bit FMA pipes
 * of latency 4; a k step is 2 B loads and 6 broadcasts for 12 FMAs, within
 * two load ports. Edge tiles are stored with lane masks. Compiled with a
 * target attribute; gemm.c calls these only when the CPU (and OS) support
 * AVX-512F. Elsewhere this file compiles to stubs that are never called. */
#include "backend/cpu/gemm_kernel.h"
#include "backend/cpu/gemm_ukr.h"

#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AVX512_FN __attribute__((target("avx512f")))

/* Masked store of row r's two vectors (the first n of 2W lanes), adding
 * what is there when acc. */
#define EDGE_ROW(r, p, ld, acc, MT, LOADM, STOREM, ADD)                                                      \
  do {                                                                                                       \
    if ((r) < m) {                                                                                           \
      T *q = (p) + (r) * (ld);                                                                               \
      if (acc) {                                                                                             \
        c##r##0 = ADD(c##r##0, LOADM(c##r##0, k0, q));                                                       \
        c##r##1 = ADD(c##r##1, LOADM(c##r##1, k1, q + W));                                                   \
      }                                                                                                      \
      STOREM(q, k0, c##r##0);                                                                                \
      STOREM(q + W, k1, c##r##1);                                                                            \
    }                                                                                                        \
  } while (0)

#define DEFINE_UKR_AVX512(SUF, T_, VT, W_, MT, LOAD, STORE, LOADM, STOREM, BCAST, FMA, ADD, ZERO)            \
  AVX512_FN void jx_gemm_ukr_avx512_##SUF(int64_t kc, const T_ *restrict a, const T_ *restrict b,            \
                                          T_ *restrict c, int64_t ldc, int acc, int m, int n) {              \
    typedef T_ T;                                                                                            \
    enum { W = W_ };                                                                                         \
    UKR_ACCUMULATE(VT, W, LOAD, BCAST, FMA, ZERO)                                                            \
    if (m == JX_GEMM_MR && n == 2 * W) {                                                                     \
      UKR_STORE(c, ldc, acc, W, LOAD, STORE, ADD);                                                           \
      return;                                                                                                \
    }                                                                                                        \
    const MT k0 = (MT)(n >= W ? ~0u : (1u << n) - 1);                                                        \
    const MT k1 = (MT)(n <= W ? 0u : n >= 2 * W ? ~0u : (1u << (n - W)) - 1);                                \
    EDGE_ROW(0, c, ldc, acc, MT, LOADM, STOREM, ADD);                                                        \
    EDGE_ROW(1, c, ldc, acc, MT, LOADM, STOREM, ADD);                                                        \
    EDGE_ROW(2, c, ldc, acc, MT, LOADM, STOREM, ADD);                                                        \
    EDGE_ROW(3, c, ldc, acc, MT, LOADM, STOREM, ADD);                                                        \
    EDGE_ROW(4, c, ldc, acc, MT, LOADM, STOREM, ADD);                                                        \
    EDGE_ROW(5, c, ldc, acc, MT, LOADM, STOREM, ADD);                                                        \
  }

/* broadcasts from memory: one load-port uop each, no shuffle */
static inline AVX512_FN __m512 bcast_ps(const float *p) { return _mm512_set1_ps(*p); }
static inline AVX512_FN __m512d bcast_pd(const double *p) { return _mm512_set1_pd(*p); }

DEFINE_UKR_AVX512(f32, float, __m512, 16, __mmask16, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_mask_loadu_ps,
                  _mm512_mask_storeu_ps, bcast_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_setzero_ps)
DEFINE_UKR_AVX512(f64, double, __m512d, 8, __mmask8, _mm512_loadu_pd, _mm512_storeu_pd, _mm512_mask_loadu_pd,
                  _mm512_mask_storeu_pd, bcast_pd, _mm512_fmadd_pd, _mm512_add_pd, _mm512_setzero_pd)

#else /* not x86-64: never selected */

void jx_gemm_ukr_avx512_f32(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int acc, int m,
                            int n) {
  (void)kc, (void)a, (void)b, (void)c, (void)ldc, (void)acc, (void)m, (void)n;
}
void jx_gemm_ukr_avx512_f64(int64_t kc, const double *a, const double *b, double *c, int64_t ldc, int acc,
                            int m, int n) {
  (void)kc, (void)a, (void)b, (void)c, (void)ldc, (void)acc, (void)m, (void)n;
}

#endif
