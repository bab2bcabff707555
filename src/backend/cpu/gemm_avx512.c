/* AVX-512 micro-kernels of the built-in GEMM. The main one is a 12-row tile,
 * 12 x 32 floats / 12 x 16 doubles in 24 zmm accumulators (below); the
 * AVX2 kernel's 6-row tile (gemm_ukr.h) at twice the width, 6 x 32 / 6 x 16
 * in 12 accumulators, takes the rows a block has left over (m < 12). Both
 * keep two 512-bit FMA pipes of latency 4 busy; edge columns are stored
 * with lane masks. Compiled with a
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
    UKR_ACCUMULATE(VT, W, LOAD, BCAST, FMA, ZERO, 1)                                                         \
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

/* The 12-row tile: two adjacent 6-row A panels (the second starts MR * kc
 * values after the first, as the driver packs them) against one B panel,
 * in 24 accumulators + 2 B vectors + 1 broadcast of the 32 zmm registers.
 * Per k step 2 B loads and 12 broadcasts feed 24 FMAs (1.7 FMAs per load
 * against 1.5 for the 6-row tile), and C is loaded and stored half as
 * often per flop. The driver keeps the A panels in L1 and streams B panels
 * from L2 (gemm.c). Rows are always full (m = 12: the driver gives the
 * rows a block has left to the 6-row kernel); n <= 2W. */
#define ROW12(r, p, i, VT, BCAST, FMA)                                                                       \
  do {                                                                                                       \
    const VT ar = BCAST((p) + (i));                                                                          \
    c##r##0 = FMA(ar, b0, c##r##0);                                                                          \
    c##r##1 = FMA(ar, b1, c##r##1);                                                                          \
  } while (0)
#define ZERO_ROW(r, VT, ZERO) VT c##r##0 = ZERO(), c##r##1 = ZERO()
#define ALL_ROWS12(X, ...)                                                                                   \
  X(0, __VA_ARGS__);                                                                                         \
  X(1, __VA_ARGS__);                                                                                         \
  X(2, __VA_ARGS__);                                                                                         \
  X(3, __VA_ARGS__);                                                                                         \
  X(4, __VA_ARGS__);                                                                                         \
  X(5, __VA_ARGS__);                                                                                         \
  X(6, __VA_ARGS__);                                                                                         \
  X(7, __VA_ARGS__);                                                                                         \
  X(8, __VA_ARGS__);                                                                                         \
  X(9, __VA_ARGS__);                                                                                         \
  X(10, __VA_ARGS__);                                                                                        \
  X(11, __VA_ARGS__)

#define DEFINE_UKR12_AVX512(SUF, T_, VT, W_, MT, LOAD, STORE, LOADM, STOREM, BCAST, FMA, ADD, ZERO)          \
  AVX512_FN void jx_gemm_ukr12_avx512_##SUF(int64_t kc, const T_ *restrict a, const T_ *restrict b,          \
                                            T_ *restrict c, int64_t ldc, int acc, int n) {                   \
    typedef T_ T;                                                                                            \
    enum { W = W_ };                                                                                         \
    const int m = 2 * JX_GEMM_MR;                                                                            \
    const T *a2 = a + JX_GEMM_MR * kc;                                                                       \
    ALL_ROWS12(ZERO_ROW, VT, ZERO);                                                                          \
    /* C's 24 lines: toward L2 now, into L1 only a few k steps before the */                                 \
    /* end (the B panels streamed meanwhile would evict them from L1) */                                     \
    UKR_PREFETCH_C(_MM_HINT_T1);                                                                             \
    const int64_t k_pf = kc > 16 ? kc - 16 : 0;                                                              \
    for (int64_t k = 0; k < kc; k++) {                                                                       \
      if (k == k_pf) UKR_PREFETCH_C(_MM_HINT_T0);                                                            \
      const VT b0 = LOAD(b), b1 = LOAD(b + W);                                                               \
      ROW12(0, a, 0, VT, BCAST, FMA);                                                                        \
      ROW12(1, a, 1, VT, BCAST, FMA);                                                                        \
      ROW12(2, a, 2, VT, BCAST, FMA);                                                                        \
      ROW12(3, a, 3, VT, BCAST, FMA);                                                                        \
      ROW12(4, a, 4, VT, BCAST, FMA);                                                                        \
      ROW12(5, a, 5, VT, BCAST, FMA);                                                                        \
      ROW12(6, a2, 0, VT, BCAST, FMA);                                                                       \
      ROW12(7, a2, 1, VT, BCAST, FMA);                                                                       \
      ROW12(8, a2, 2, VT, BCAST, FMA);                                                                       \
      ROW12(9, a2, 3, VT, BCAST, FMA);                                                                       \
      ROW12(10, a2, 4, VT, BCAST, FMA);                                                                      \
      ROW12(11, a2, 5, VT, BCAST, FMA);                                                                      \
      a += JX_GEMM_MR, a2 += JX_GEMM_MR, b += 2 * W;                                                         \
    }                                                                                                        \
    if (n == 2 * W) {                                                                                        \
      ALL_ROWS12(UKR_STORE_ROW, c, ldc, acc, W, LOAD, STORE, ADD);                                           \
      return;                                                                                                \
    }                                                                                                        \
    const MT k0 = (MT)(n >= W ? ~0u : (1u << n) - 1);                                                        \
    const MT k1 = (MT)(n <= W ? 0u : n >= 2 * W ? ~0u : (1u << (n - W)) - 1);                                \
    ALL_ROWS12(EDGE_ROW, c, ldc, acc, MT, LOADM, STOREM, ADD);                                               \
  }

/* broadcasts from memory: one load-port uop each, no shuffle */
static inline AVX512_FN __m512 bcast_ps(const float *p) { return _mm512_set1_ps(*p); }
static inline AVX512_FN __m512d bcast_pd(const double *p) { return _mm512_set1_pd(*p); }

DEFINE_UKR_AVX512(f32, float, __m512, 16, __mmask16, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_mask_loadu_ps,
                  _mm512_mask_storeu_ps, bcast_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_setzero_ps)
DEFINE_UKR_AVX512(f64, double, __m512d, 8, __mmask8, _mm512_loadu_pd, _mm512_storeu_pd, _mm512_mask_loadu_pd,
                  _mm512_mask_storeu_pd, bcast_pd, _mm512_fmadd_pd, _mm512_add_pd, _mm512_setzero_pd)

DEFINE_UKR12_AVX512(f32, float, __m512, 16, __mmask16, _mm512_loadu_ps, _mm512_storeu_ps,
                    _mm512_mask_loadu_ps, _mm512_mask_storeu_ps, bcast_ps, _mm512_fmadd_ps, _mm512_add_ps,
                    _mm512_setzero_ps)
DEFINE_UKR12_AVX512(f64, double, __m512d, 8, __mmask8, _mm512_loadu_pd, _mm512_storeu_pd,
                    _mm512_mask_loadu_pd, _mm512_mask_storeu_pd, bcast_pd, _mm512_fmadd_pd, _mm512_add_pd,
                    _mm512_setzero_pd)

/* Small-M products (gemm.c gemm_small): R rows of C (R = 1..12, a
 * compile-time constant in each instance) against B read in place from its
 * row-major storage, without packing: per k step two B vectors from row k
 * (masked loads past column n) and R broadcasts from the packed A panel (R
 * values per k). B's rows lie ldb apart, often more than the stride the
 * hardware prefetcher follows, so rows are prefetched PF_ROWS ahead. */
enum { PF_ROWS = 16 };
#define DEFINE_SMALL_AVX512(SUF, T, VT, W, MT, LOADM, STOREM, BCAST, FMA, ADD, ZERO)                         \
  static inline __attribute__((always_inline))                                                               \
  AVX512_FN void small_##SUF(const int R, int64_t kc, const T *restrict a, const T *restrict b, int64_t ldb, \
                             T *restrict c, int64_t ldc, int acc, int n) {                                   \
    VT c0[2 * JX_GEMM_MR], c1[2 * JX_GEMM_MR];                                                               \
    _Pragma("GCC unroll 12") for (int r = 0; r < R; r++) c0[r] = ZERO(), c1[r] = ZERO();                     \
    const MT k0 = (MT)(n >= W ? ~0u : (1u << n) - 1);                                                        \
    const MT k1 = (MT)(n <= W ? 0u : n >= 2 * W ? ~0u : (1u << (n - W)) - 1);                                \
    for (int64_t k = 0; k < kc; k++) {                                                                       \
      if (k + PF_ROWS < kc) {                                                                                \
        _mm_prefetch((const char *)(b + PF_ROWS * ldb), _MM_HINT_T0);                                        \
        _mm_prefetch((const char *)(b + PF_ROWS * ldb + W), _MM_HINT_T0);                                    \
      }                                                                                                      \
      const VT b0 = LOADM(k0, b), b1 = LOADM(k1, b + W);                                                     \
      _Pragma("GCC unroll 12") for (int r = 0; r < R; r++) {                                                 \
        const VT ar = BCAST(a + r);                                                                          \
        c0[r] = FMA(ar, b0, c0[r]);                                                                          \
        c1[r] = FMA(ar, b1, c1[r]);                                                                          \
      }                                                                                                      \
      a += R, b += ldb;                                                                                      \
    }                                                                                                        \
    _Pragma("GCC unroll 12") for (int r = 0; r < R; r++) {                                                   \
      T *q = c + r * ldc;                                                                                    \
      if (acc) {                                                                                             \
        c0[r] = ADD(c0[r], LOADM(k0, q));                                                                    \
        c1[r] = ADD(c1[r], LOADM(k1, q + W));                                                                \
      }                                                                                                      \
      STOREM(q, k0, c0[r]);                                                                                  \
      STOREM(q + W, k1, c1[r]);                                                                              \
    }                                                                                                        \
  }                                                                                                          \
  AVX512_FN void jx_gemm_small_avx512_##SUF(int rows, int64_t kc, const T *a, const T *b, int64_t ldb, T *c, \
                                            int64_t ldc, int acc, int n) {                                   \
    switch (rows) {                                                                                          \
      case 1: small_##SUF(1, kc, a, b, ldb, c, ldc, acc, n); break;                                          \
      case 2: small_##SUF(2, kc, a, b, ldb, c, ldc, acc, n); break;                                          \
      case 3: small_##SUF(3, kc, a, b, ldb, c, ldc, acc, n); break;                                          \
      case 4: small_##SUF(4, kc, a, b, ldb, c, ldc, acc, n); break;                                          \
      case 5: small_##SUF(5, kc, a, b, ldb, c, ldc, acc, n); break;                                          \
      case 6: small_##SUF(6, kc, a, b, ldb, c, ldc, acc, n); break;                                          \
      case 7: small_##SUF(7, kc, a, b, ldb, c, ldc, acc, n); break;                                          \
      case 8: small_##SUF(8, kc, a, b, ldb, c, ldc, acc, n); break;                                          \
      case 9: small_##SUF(9, kc, a, b, ldb, c, ldc, acc, n); break;                                          \
      case 10: small_##SUF(10, kc, a, b, ldb, c, ldc, acc, n); break;                                        \
      case 11: small_##SUF(11, kc, a, b, ldb, c, ldc, acc, n); break;                                        \
      default: small_##SUF(12, kc, a, b, ldb, c, ldc, acc, n); break;                                        \
    }                                                                                                        \
  }

DEFINE_SMALL_AVX512(f32, float, __m512, 16, __mmask16, _mm512_maskz_loadu_ps, _mm512_mask_storeu_ps, bcast_ps,
                    _mm512_fmadd_ps, _mm512_add_ps, _mm512_setzero_ps)
DEFINE_SMALL_AVX512(f64, double, __m512d, 8, __mmask8, _mm512_maskz_loadu_pd, _mm512_mask_storeu_pd, bcast_pd,
                    _mm512_fmadd_pd, _mm512_add_pd, _mm512_setzero_pd)

#else /* not x86-64: never selected */

void jx_gemm_ukr_avx512_f32(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int acc, int m,
                            int n) {
  (void)kc, (void)a, (void)b, (void)c, (void)ldc, (void)acc, (void)m, (void)n;
}
void jx_gemm_ukr_avx512_f64(int64_t kc, const double *a, const double *b, double *c, int64_t ldc, int acc,
                            int m, int n) {
  (void)kc, (void)a, (void)b, (void)c, (void)ldc, (void)acc, (void)m, (void)n;
}
void jx_gemm_ukr12_avx512_f32(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int acc,
                              int n) {
  (void)kc, (void)a, (void)b, (void)c, (void)ldc, (void)acc, (void)n;
}
void jx_gemm_ukr12_avx512_f64(int64_t kc, const double *a, const double *b, double *c, int64_t ldc, int acc,
                              int n) {
  (void)kc, (void)a, (void)b, (void)c, (void)ldc, (void)acc, (void)n;
}

void jx_gemm_small_avx512_f32(int rows, int64_t kc, const float *a, const float *b, int64_t ldb, float *c,
                              int64_t ldc, int acc, int n) {
  (void)rows, (void)kc, (void)a, (void)b, (void)ldb, (void)c, (void)ldc, (void)acc, (void)n;
}
void jx_gemm_small_avx512_f64(int rows, int64_t kc, const double *a, const double *b, int64_t ldb, double *c,
                              int64_t ldc, int acc, int n) {
  (void)rows, (void)kc, (void)a, (void)b, (void)ldb, (void)c, (void)ldc, (void)acc, (void)n;
}

#endif
