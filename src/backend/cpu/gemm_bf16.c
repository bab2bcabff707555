/* [BF16] The AVX512-BF16 GEMM: bf16 x bf16 -> f32 with vdpbf16ps, which
 * multiplies pairs of bf16 values along K and adds both products into an
 * f32 lane (each product is exact in f32; the two adds round to nearest
 * even; subnormal inputs and results are flushed to zero).
 *
 * Packed formats: K is taken in pairs (an odd K's last pair is padded with
 * a zero). An A micro-panel of 12 rows holds, per pair p, the 12 32-bit
 * words (A[r, 2p], A[r, 2p+1]); a B micro-panel of 32 columns holds, per
 * pair, the 32 words (B[2p, c], B[2p+1, c]): two zmm. The register tile is
 * 12 x 32 f32 in 24 zmm accumulators; per pair the kernel loads two B
 * vectors and broadcasts 12 A words into 24 vdpbf16ps, each worth 32
 * multiply-adds (twice an f32 FMA's 16).
 *
 * The loop nest is the f32 AVX-512 kernel's 12-row nest (gemm.c): for
 * each K block, an A block packed once (it stays in L3), B blocks half of
 * L2, one A micro-panel in L1 while B micro-panels stream past it. C is
 * f32 and accumulates across K blocks. Threads split C on the grid the
 * f32 GEMM chooses (jx_cpu_gemm_choose_grid), each tile packing what it
 * reads.
 *
 * Compiled with target attributes: gemm_half.c calls it only when CPUID
 * reports AVX512-BF16 and the OS saves the zmm state. Elsewhere this file
 * compiles to a stub that is never called. */
#include "backend/cpu/gemm_kernel.h"
#include "backend/cpu/kernels.h"
#include "core/core.h"

#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BF16_FN __attribute__((target("avx512f,avx512bw,avx512bf16")))

enum { TR = 12, TC = 32 }; /* the register tile */

static inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* CPUID.(EAX=7, ECX=1):EAX bit 5; AVX-512F (and the OS's zmm state) through
 * __builtin_cpu_supports, as gemm.c checks it */
bool jx_cpu_has_avx512bf16(void) {
  static atomic_int known = -1;
  int v = atomic_load_explicit(&known, memory_order_relaxed);
  if (v < 0) {
    unsigned a = 0, b = 0, c = 0, d = 0;
    __builtin_cpu_init();
    v = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 5 & 1u);
    atomic_store_explicit(&known, v, memory_order_relaxed);
  }
  return v;
}

/* CPUID leaf 0's vendor: "AuthenticAMD" (EBX, EDX, ECX) */
bool jx_cpu_is_amd(void) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(0, &a, &b, &c, &d) && b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u;
}

/* ------------------------------------------------------------ kernel */
/* c[0..m) x [0..n) (row stride ldc) = (acc ? c : 0) + the tile of kp pairs
 * of packed panels a (TR words per pair) and b (TC words per pair). */
BF16_FN static void ukr_bf16(int64_t kp, const uint32_t *restrict a, const uint32_t *restrict b,
                             float *restrict c, int64_t ldc, int acc, int m, int n) {
  __m512 c0[TR], c1[TR];
  _Pragma("GCC unroll 12") for (int r = 0; r < TR; r++) c0[r] = _mm512_setzero_ps(), c1[r] = c0[r];
  for (int64_t p = 0; p < kp; p++) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b), b1 = (__m512bh)_mm512_loadu_si512(b + 16);
    _Pragma("GCC unroll 12") for (int r = 0; r < TR; r++) {
      const __m512bh ar = (__m512bh)_mm512_set1_epi32((int)a[r]);
      c0[r] = _mm512_dpbf16_ps(c0[r], ar, b0);
      c1[r] = _mm512_dpbf16_ps(c1[r], ar, b1);
    }
    a += TR, b += TC;
  }
  const __mmask16 k0 = (__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1);
  const __mmask16 k1 = (__mmask16)(n <= 16 ? 0u : n >= 32 ? 0xffffu : (1u << (n - 16)) - 1);
  _Pragma("GCC unroll 12") for (int r = 0; r < TR; r++) {
    if (r >= m) break;
    float *q = c + r * ldc;
    if (acc) {
      c0[r] = _mm512_add_ps(c0[r], _mm512_maskz_loadu_ps(k0, q));
      c1[r] = _mm512_add_ps(c1[r], _mm512_maskz_loadu_ps(k1, q + 16));
    }
    _mm512_mask_storeu_ps(q, k0, c0[r]);
    _mm512_mask_storeu_ps(q + 16, k1, c1[r]);
  }
}

/* ----------------------------------------------------------- packing */
typedef struct {
  bool ta, tb, amx; /* amx: the AMX tiles (below), else vdpbf16ps */
  int64_t M, N, K, lda, ldb, kcb, mcb, ncb, tm, tn;
  const uint16_t *A, *B;
  float *C; /* [M, N] */
  atomic_bool failed;
} job;

static uint32_t pair(uint16_t lo, uint16_t hi) { return (uint32_t)lo | (uint32_t)hi << 16; }

/* op(A)[i0.., pc..] (mc x kc) into 12-row panels of kc/2 pairs */
static void pack_a(const job *j, int64_t i0, int64_t mc, int64_t pc, int64_t kc, uint32_t *restrict ap) {
  const int64_t kp = cdiv(kc, 2);
  for (int64_t r0 = 0; r0 < mc; r0 += TR, ap += TR * kp)
    for (int r = 0; r < TR; r++) {
      const int64_t i = i0 + r0 + r;
      if (r0 + r >= mc) {
        for (int64_t p = 0; p < kp; p++) ap[p * TR + r] = 0;
        continue;
      }
      const uint16_t *s = j->ta ? j->A + pc * j->lda + i : j->A + i * j->lda + pc;
      const int64_t st = j->ta ? j->lda : 1;
      for (int64_t p = 0; p < kc / 2; p++) ap[p * TR + r] = pair(s[2 * p * st], s[(2 * p + 1) * st]);
      if (kc & 1) ap[(kp - 1) * TR + r] = pair(s[(kc - 1) * st], 0);
    }
}

/* op(B)[pc.., j0..] (kc x nc) into 32-column panels of kc/2 pairs, and
 * zero pairs up to kpad (AMX tiles take 16 pairs at a time) */
static void pack_b(const job *j, int64_t j0, int64_t nc, int64_t pc, int64_t kc, int64_t kpad,
                   uint32_t *restrict bp) {
  const int64_t kp = cdiv(kc, 2);
  for (int64_t c0 = 0; c0 < nc; c0 += TC, bp += TC * kpad) {
    const int nr = (int)min64(TC, nc - c0);
    memset(bp + TC * kp, 0, sizeof(uint32_t) * (size_t)(TC * (kpad - kp)));
    if (!j->tb) { /* rows 2p and 2p + 1, interleaved */
      for (int64_t p = 0; p < kp; p++) {
        const uint16_t *r0 = j->B + (pc + 2 * p) * j->ldb + j0 + c0;
        const uint16_t *r1 = 2 * p + 1 < kc ? r0 + j->ldb : NULL;
        for (int c = 0; c < TC; c++) bp[p * TC + c] = c < nr ? pair(r0[c], r1 ? r1[c] : 0) : 0;
      }
    } else { /* each column's run along k is contiguous */
      for (int c = 0; c < TC; c++) {
        const uint16_t *s = j->B + (j0 + c0 + c) * j->ldb + pc;
        for (int64_t p = 0; p < kp; p++)
          bp[p * TC + c] = c >= nr ? 0 : pair(s[2 * p], 2 * p + 1 < kc ? s[2 * p + 1] : 0);
      }
    }
  }
}

/* ------------------------------------------------------------- AMX */
/* AMX-BF16: tdpbf16ps multiplies a 16 x 32 bf16 A tile by a 16-pair x 16
 * column B tile (the pair format above, read with a 128-byte row stride
 * out of a 32-column panel) into a 16 x 16 f32 tile: 16 x 16 x 32
 * multiply-adds per instruction. The register tile is 32 x 32 in four C
 * tiles (tmm0-3), two A tiles (tmm4-5), two B tiles (tmm6-7). A is packed
 * for it in 32-row panels of, per 32-k chunk, 32 rows of 64 bytes. Linux
 * grants the tile data state per process on request (arch_prctl
 * ARCH_REQ_XCOMP_PERM); where it refuses, AMX stays unused. */
enum { AR = 32, KQ = 32 }; /* AMX register tile rows; k per chunk */

bool jx_cpu_has_amx_bf16(void) {
  static atomic_int known = -1;
  int v = atomic_load_explicit(&known, memory_order_relaxed);
  if (v < 0) {
    unsigned a = 0, b = 0, c = 0, d = 0;
    v = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 24 & 1u) && (d >> 22 & 1u) &&
        syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
    atomic_store_explicit(&known, v, memory_order_relaxed);
  }
  return v;
}

typedef struct {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} tilecfg;

#define AMX_FN __attribute__((target("amx-tile,amx-bf16")))

/* op(A)[i0.., pc..] (mc x kc) into 32-row panels of kq 32-k chunks */
static void pack_a_amx(const job *j, int64_t i0, int64_t mc, int64_t pc, int64_t kc, int64_t kq,
                       uint16_t *restrict ap) {
  const int64_t st = j->ta ? j->lda : 1;
  for (int64_t r0 = 0; r0 < mc; r0 += AR, ap += AR * KQ * kq)
    for (int r = 0; r < AR; r++) {
      const int64_t i = i0 + r0 + r;
      const uint16_t *s = j->ta ? j->A + pc * j->lda + i : j->A + i * j->lda + pc;
      for (int64_t q = 0; q < kq; q++) {
        uint16_t *d = ap + (q * AR + r) * KQ;
        for (int k = 0; k < KQ; k++) d[k] = r0 + r < mc && q * KQ + k < kc ? s[(q * KQ + k) * st] : 0;
      }
    }
}

/* the 32 x 32 tile at c (m x n of it stored) over kq chunks; acc: add C */
AMX_FN static void ukr_amx(int64_t kq, const uint16_t *a, const uint32_t *b, float *c, int64_t ldc, int acc,
                           int m, int n) {
  float buf[AR * TC];
  const bool full = m == AR && n == TC;
  float *t = full ? c : buf;
  const int64_t ldt = full ? ldc : TC;
  if (acc && !full)
    for (int r = 0; r < AR; r++)
      for (int k = 0; k < TC; k++) buf[r * TC + k] = r < m && k < n ? c[r * ldc + k] : 0.0f;
  __asm__ volatile("" ::: "memory"); /* the tile loads read what C code wrote */
  if (acc) {
    _tile_loadd(0, t, ldt * 4);
    _tile_loadd(1, t + 16, ldt * 4);
    _tile_loadd(2, t + 16 * ldt, ldt * 4);
    _tile_loadd(3, t + 16 * ldt + 16, ldt * 4);
  } else {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  for (int64_t q = 0; q < kq; q++) {
    const uint16_t *aq = a + q * AR * KQ;
    const uint32_t *bq = b + q * 16 * TC;
    _tile_loadd(4, aq, 64);
    _tile_loadd(5, aq + 16 * KQ, 64);
    _tile_loadd(6, bq, 128);
    _tile_loadd(7, bq + 16, 128);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, t, ldt * 4);
  _tile_stored(1, t + 16, ldt * 4);
  _tile_stored(2, t + 16 * ldt, ldt * 4);
  _tile_stored(3, t + 16 * ldt + 16, ldt * 4);
  if (!full)
    for (int r = 0; r < m; r++) memcpy(c + r * ldc, buf + r * TC, sizeof(float) * (size_t)n);
}

AMX_FN static void amx_config(void) {
  tilecfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.palette = 1;
  for (int i = 0; i < 8; i++) cfg.rows[i] = 16, cfg.colsb[i] = 64;
  __asm__ volatile("" ::: "memory");
  _tile_loadconfig(&cfg);
}
AMX_FN static void amx_release(void) { _tile_release(); }

/* ----------------------------------------------------------- the nest */
/* rows [m0, m0 + M) and columns [n0, n0 + N) of C, serially, on AMX */
static void tile_amx(job *j, int64_t m0, int64_t M, int64_t n0, int64_t N) {
  const int64_t mcb = min64(j->mcb, cdiv(M, AR) * AR), ncb = min64(j->ncb, cdiv(N, TC) * TC);
  const int64_t kqb = cdiv(j->kcb, KQ);
  jx_buffer *ha, *hb; /* packing from the buffer cache (gemm.c says why) */
  uint16_t *ap = jx_cpu_scratch(sizeof(uint16_t) * (size_t)(mcb * kqb * KQ), &ha);
  uint32_t *bp = jx_cpu_scratch(sizeof(uint32_t) * (size_t)(ncb * kqb * KQ / 2), &hb);
  if (!ap || !bp) {
    atomic_store(&j->failed, true);
  } else {
    amx_config();
    for (int64_t pc = 0; pc < j->K; pc += j->kcb) {
      const int64_t kc = min64(j->kcb, j->K - pc), kq = cdiv(kc, KQ);
      for (int64_t ic = 0; ic < M; ic += mcb) {
        const int64_t mc = min64(mcb, M - ic);
        pack_a_amx(j, m0 + ic, mc, pc, kc, kq, ap);
        for (int64_t jc = 0; jc < N; jc += ncb) {
          const int64_t nc = min64(ncb, N - jc);
          pack_b(j, n0 + jc, nc, pc, kc, kq * KQ / 2, bp);
          float *c = j->C + (m0 + ic) * j->N + n0 + jc;
          for (int64_t ir = 0; ir < mc; ir += AR)
            for (int64_t jr = 0; jr < nc; jr += TC)
              ukr_amx(kq, ap + ir * kq * KQ, bp + jr * kq * KQ / 2, c + ir * j->N + jr, j->N, pc > 0,
                      (int)min64(AR, mc - ir), (int)min64(TC, nc - jr));
        }
      }
    }
    amx_release();
  }
  jx_cpu_scratch_free(ha), jx_cpu_scratch_free(hb);
}

/* rows [m0, m0 + M) and columns [n0, n0 + N) of C, serially */
static void tile(job *j, int64_t m0, int64_t M, int64_t n0, int64_t N) {
  const int64_t mcb = min64(j->mcb, cdiv(M, TR) * TR), ncb = min64(j->ncb, cdiv(N, TC) * TC);
  const int64_t kpb = cdiv(j->kcb, 2);
  jx_buffer *ha, *hb; /* packing from the buffer cache (gemm.c says why) */
  uint32_t *ap = jx_cpu_scratch(sizeof(uint32_t) * (size_t)(mcb * kpb), &ha);
  uint32_t *bp = jx_cpu_scratch(sizeof(uint32_t) * (size_t)(ncb * kpb), &hb);
  if (!ap || !bp) {
    atomic_store(&j->failed, true);
  } else {
    for (int64_t pc = 0; pc < j->K; pc += j->kcb) {
      const int64_t kc = min64(j->kcb, j->K - pc), kp = cdiv(kc, 2);
      for (int64_t ic = 0; ic < M; ic += mcb) {
        const int64_t mc = min64(mcb, M - ic);
        pack_a(j, m0 + ic, mc, pc, kc, ap);
        for (int64_t jc = 0; jc < N; jc += ncb) {
          const int64_t nc = min64(ncb, N - jc);
          pack_b(j, n0 + jc, nc, pc, kc, kp, bp);
          float *c = j->C + (m0 + ic) * j->N + n0 + jc;
          for (int64_t ir = 0; ir < mc; ir += TR)
            for (int64_t jr = 0; jr < nc; jr += TC)
              ukr_bf16(kp, ap + ir * kp, bp + jr * kp, c + ir * j->N + jr, j->N, pc > 0,
                       (int)min64(TR, mc - ir), (int)min64(TC, nc - jr));
        }
      }
    }
  }
  jx_cpu_scratch_free(ha), jx_cpu_scratch_free(hb);
}

static void tile_task(void *ctx, int64_t lo, int64_t hi) {
  job *j = ctx;
  const int64_t um = j->amx ? AR : TR, mu = cdiv(j->M, um), nu = cdiv(j->N, TC);
  for (int64_t t = lo; t < hi; t++) {
    const int64_t i = t / j->tn, k = t % j->tn;
    const int64_t m0 = mu * i / j->tm * um, m1 = min64(j->M, mu * (i + 1) / j->tm * um);
    const int64_t n0 = nu * k / j->tn * TC, n1 = min64(j->N, nu * (k + 1) / j->tn * TC);
    if (m1 > m0 && n1 > n0) (j->amx ? tile_amx : tile)(j, m0, m1 - m0, n0, n1 - n0);
  }
}

/* Blocking by the f32 kernel's rules, in bytes: an A micro-panel (12 or,
 * AMX, 32 rows x kc bf16) fills half of L1d, a B block half of L2, an A
 * block ~4 MiB of L3 (whole micro-panels: the packing fills them); K blocks
 * are equal, whole pairs (AMX: whole 32-k chunks). */
static void blocking(job *j) {
  const jx_cpu_cache_sizes *ci = jx_cpu_caches();
  const int64_t um = j->amx ? AR : TR, kstep = j->amx ? KQ : 2;
  int64_t kc0 = max64(128, min64(2048, ci->l1d / 2 / (um * 2)));
  j->kcb = cdiv(j->K, cdiv(j->K, kc0));
  j->kcb = cdiv(j->kcb, kstep) * kstep;
  j->mcb = max64(um, ((int64_t)4 << 20) / (j->kcb * 2) / um * um);
  j->ncb = max64(TC, ci->l2 / 2 / (j->kcb * 2) / TC * TC);
}

bool jx_cpu_gemm_bf16(bool amx, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const uint16_t *A,
                      const uint16_t *B, float *C, bool threaded) {
  job j = {.amx = amx,
           .ta = ta,
           .tb = tb,
           .M = M,
           .N = N,
           .K = K,
           .lda = ta ? M : K,
           .ldb = tb ? K : N,
           .A = A,
           .B = B,
           .C = C};
  atomic_init(&j.failed, false);
  if (K <= 0) {
    memset(C, 0, sizeof(float) * (size_t)(M * N));
    return true;
  }
  blocking(&j);
  const int64_t p = threaded ? max64(1, min64(jx_cpu_num_threads(), M * N * K / ((int64_t)1 << 18))) : 1;
  jx_cpu_gemm_choose_grid(M, amx ? AR : TR, N, TC, p, j.mcb, j.ncb, &j.tm, &j.tn);
  if (j.tm * j.tn == 1)
    tile_task(&j, 0, 1);
  else
    jx_cpu_parallel_for(j.tm * j.tn, 1, tile_task, &j);
  return !atomic_load(&j.failed);
}

#else /* not x86-64 with GCC/clang: never selected */

bool jx_cpu_has_avx512bf16(void) { return false; }
bool jx_cpu_is_amd(void) { return false; }
bool jx_cpu_has_amx_bf16(void) { return false; }
bool jx_cpu_gemm_bf16(bool amx, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const uint16_t *A,
                      const uint16_t *B, float *C, bool threaded) {
  (void)amx, (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)A, (void)B, (void)C, (void)threaded;
  return false;
}

#endif
