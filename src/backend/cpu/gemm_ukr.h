/* The register-tile macros the x86 micro-kernels share (gemm_avx2.c,
 * gemm_avx512.c): a 6-row tile of two vectors per row, named c<r><h>, over
 * a packed A panel `a` and B panel `b`. VT, W (lanes), LOAD, BCAST, FMA,
 * STORE and ADD are the vector width's type and intrinsics. */
#ifndef JX_CPU_GEMM_UKR_H
#define JX_CPU_GEMM_UKR_H

/* One k step: two B vectors, then for each of the 6 rows a broadcast of
 * A[r,k] and two FMAs. 12 independent accumulators cover the FMA latency
 * (4 cycles x 2 pipes on Zen3 / Haswell) with room to spare. */
#define UKR_ROW(r, VT, BCAST, FMA)                                                                           \
  do {                                                                                                       \
    const VT ar = BCAST(a + (r));                                                                            \
    c##r##0 = FMA(ar, b0, c##r##0);                                                                          \
    c##r##1 = FMA(ar, b1, c##r##1);                                                                          \
  } while (0)
#define UKR_STEP(VT, W, LOAD, BCAST, FMA)                                                                    \
  do {                                                                                                       \
    const VT b0 = LOAD(b), b1 = LOAD(b + (W));                                                               \
    UKR_ROW(0, VT, BCAST, FMA);                                                                              \
    UKR_ROW(1, VT, BCAST, FMA);                                                                              \
    UKR_ROW(2, VT, BCAST, FMA);                                                                              \
    UKR_ROW(3, VT, BCAST, FMA);                                                                              \
    UKR_ROW(4, VT, BCAST, FMA);                                                                              \
    UKR_ROW(5, VT, BCAST, FMA);                                                                              \
  } while (0)
/* Store row r of the tile to p (row stride ld), adding what is there when
 * acc: the first K block overwrites C, later ones accumulate into it. */
#define UKR_STORE_ROW(r, p, ld, acc, W, LOAD, STORE, ADD)                                                    \
  do {                                                                                                       \
    if (acc) {                                                                                               \
      c##r##0 = ADD(c##r##0, LOAD((p) + (r) * (ld)));                                                        \
      c##r##1 = ADD(c##r##1, LOAD((p) + (r) * (ld) + (W)));                                                  \
    }                                                                                                        \
    STORE((p) + (r) * (ld), c##r##0);                                                                        \
    STORE((p) + (r) * (ld) + (W), c##r##1);                                                                  \
  } while (0)
#define UKR_STORE(p, ld, acc, W, LOAD, STORE, ADD)                                                           \
  UKR_STORE_ROW(0, p, ld, acc, W, LOAD, STORE, ADD);                                                         \
  UKR_STORE_ROW(1, p, ld, acc, W, LOAD, STORE, ADD);                                                         \
  UKR_STORE_ROW(2, p, ld, acc, W, LOAD, STORE, ADD);                                                         \
  UKR_STORE_ROW(3, p, ld, acc, W, LOAD, STORE, ADD);                                                         \
  UKR_STORE_ROW(4, p, ld, acc, W, LOAD, STORE, ADD);                                                         \
  UKR_STORE_ROW(5, p, ld, acc, W, LOAD, STORE, ADD)

/* Both lines of each of the m rows of the C tile (n - 1: its last column) */
#define UKR_PREFETCH_C(hint)                                                                                 \
  for (int r = 0; r < m; r++) {                                                                              \
    _mm_prefetch((const char *)(c + r * ldc), hint);                                                         \
    _mm_prefetch((const char *)(c + r * ldc + n - 1), hint);                                                 \
  }

/* The tile's body up to the store: 12 zeroed accumulators, C's rows
 * prefetched, then kc steps over the packed panels. LATE (0 or 1): kernels
 * whose B panels stream through L1 meanwhile (the AVX-512 nest) fetch C
 * toward L2 first and into L1 16 steps before the end, where the streamed
 * panels can no longer evict it; others fetch it into L1 at the start.
 * Leaves the accumulators c00..c51 in scope for UKR_STORE. */
#define UKR_ACCUMULATE(VT, W, LOAD, BCAST, FMA, ZERO, LATE)                                                  \
  VT c00 = ZERO(), c01 = ZERO(), c10 = ZERO(), c11 = ZERO(), c20 = ZERO(), c21 = ZERO();                     \
  VT c30 = ZERO(), c31 = ZERO(), c40 = ZERO(), c41 = ZERO(), c50 = ZERO(), c51 = ZERO();                     \
  if (LATE) {                                                                                                \
    UKR_PREFETCH_C(_MM_HINT_T1);                                                                             \
  } else {                                                                                                   \
    UKR_PREFETCH_C(_MM_HINT_T0);                                                                             \
  }                                                                                                          \
  const int64_t k_pf = (LATE) && kc > 16 ? kc - 16 : -1;                                                     \
  for (int64_t k = 0; k < kc; k++) {                                                                         \
    if (k == k_pf) UKR_PREFETCH_C(_MM_HINT_T0);                                                              \
    UKR_STEP(VT, W, LOAD, BCAST, FMA);                                                                       \
    a += JX_GEMM_MR;                                                                                         \
    b += 2 * (W);                                                                                            \
  }

#endif
