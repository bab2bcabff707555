/* GEMM kernels (src/backend/cpu/gemm.c) against a naive reference that
 * accumulates in double (floats) or exactly modulo 2^w (integers), over all
 * ta/tb combinations, ragged and empty shapes, padded leading dimensions,
 * several thread counts, batched strides, and every implementation this
 * build and CPU offer (AVX2, portable, CBLAS). */
#include "backend/cpu/gemm_kernel.h"
#include "backend/cpu/kernels.h"
#include "check.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) { /* xorshift64*: deterministic across runs */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}
static double urand(void) { return (double)(rng() >> 11) / 9007199254740992.0 * 2.0 - 1.0; }

static size_t esize(jx_dtype dt) { return dt == JX_BOOL ? 1 : (dt == JX_I64 || dt == JX_F64) ? 8 : 4; }

/* Fill n elements with random values: floats in [-1, 1), integers over the
 * whole range (so products wrap), bools 0/1. */
static void fill(jx_dtype dt, void *p, int64_t n) {
  for (int64_t i = 0; i < n; i++) switch (dt) {
      case JX_F32: ((float *)p)[i] = (float)urand(); break;
      case JX_F64: ((double *)p)[i] = urand(); break;
      case JX_I32: ((int32_t *)p)[i] = (int32_t)(uint32_t)rng(); break;
      case JX_U32: ((uint32_t *)p)[i] = (uint32_t)rng(); break;
      case JX_I64: ((int64_t *)p)[i] = (int64_t)rng(); break;
      case JX_BOOL: ((uint8_t *)p)[i] = (rng() >> 40) % 3 == 0; break;
      default: break;
    }
}

/* Element (i, k) of a row-major matrix, as double (floats) or as raw bits
 * (integers; the reference does its arithmetic modulo 2^64 then truncates). */
static double getf(jx_dtype dt, const void *p, int64_t idx) {
  return dt == JX_F32 ? ((const float *)p)[idx] : ((const double *)p)[idx];
}
static uint64_t geti(jx_dtype dt, const void *p, int64_t idx) {
  switch (dt) {
    case JX_I32: return (uint64_t)(int64_t)((const int32_t *)p)[idx];
    case JX_U32: return ((const uint32_t *)p)[idx];
    case JX_I64: return (uint64_t)((const int64_t *)p)[idx];
    default: return ((const uint8_t *)p)[idx];
  }
}

/* Compares C (M x N, ldc) with the reference; returns the number of wrong
 * elements. Floats: |c - ref| <= tol * sum_k |a||b| (the error bound of any
 * summation order), plus a tiny absolute slack. */
static int64_t compare(jx_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A,
                       int64_t lda, const void *B, int64_t ldb, const void *C, int64_t ldc) {
  int64_t bad = 0;
  const double tol = dt == JX_F32 ? 2e-6 : 1e-14;
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      const int64_t cidx = i * ldc + j;
      if (dt == JX_F32 || dt == JX_F64) {
        double s = 0, sa = 0;
        for (int64_t k = 0; k < K; k++) {
          double p =
              getf(dt, A, ta ? k * lda + i : i * lda + k) * getf(dt, B, tb ? j * ldb + k : k * ldb + j);
          s += p;
          sa += fabs(p);
        }
        const double c = getf(dt, C, cidx);
        if (!(fabs(c - s) <= tol * (sa + 1e-30) * (K + 8) / 8)) {
          if (bad < 3)
            fprintf(stderr, "  [%lld,%lld] got %.9g want %.9g\n", (long long)i, (long long)j, c, s);
          bad++;
        }
      } else if (dt == JX_BOOL) {
        uint8_t s = 0;
        for (int64_t k = 0; k < K; k++)
          s |= geti(dt, A, ta ? k * lda + i : i * lda + k) && geti(dt, B, tb ? j * ldb + k : k * ldb + j);
        bad += geti(dt, C, cidx) != s;
      } else {
        uint64_t s = 0;
        for (int64_t k = 0; k < K; k++)
          s += geti(dt, A, ta ? k * lda + i : i * lda + k) * geti(dt, B, tb ? j * ldb + k : k * ldb + j);
        if (dt != JX_I64) s = (uint64_t)(int64_t)(int32_t)(uint32_t)s;
        uint64_t c = geti(dt, C, cidx);
        if (dt != JX_I64) c = (uint64_t)(int64_t)(int32_t)(uint32_t)c;
        bad += c != s;
      }
    }
  return bad;
}

/* Fill the whole C buffer with a byte pattern: NaN for floats, so a kernel
 * that reads C before its first write (instead of overwriting) is caught, and
 * the padding between rows must keep the pattern. */
#define PAD_BYTE 0xff
static int64_t pad_damage(const void *C, int64_t M, int64_t N, int64_t ldc, size_t es) {
  const uint8_t *p = C;
  int64_t bad = 0;
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = N; j < ldc; j++)
      for (size_t b = 0; b < es; b++) bad += p[(size_t)(i * ldc + j) * es + b] != PAD_BYTE;
  return bad;
}

/* One GEMM: random operands of the stored shapes with leading dims padded
 * by `pad`, run, compare values and padding. */
static void run_one(jx_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t pad) {
  const size_t es = esize(dt);
  const int64_t arows = ta ? K : M, acols = ta ? M : K;
  const int64_t brows = tb ? N : K, bcols = tb ? K : N;
  const int64_t lda = acols + pad, ldb = bcols + pad, ldc = N + pad;
  const int64_t na = arows * lda + 1, nb = brows * ldb + 1, nc = M * ldc + 1;
  void *A = malloc((size_t)na * es), *B = malloc((size_t)nb * es), *C = malloc((size_t)nc * es);
  fill(dt, A, na);
  fill(dt, B, nb);
  memset(C, PAD_BYTE, (size_t)nc * es);
  jx_cpu_gemm(dt, ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
  const int64_t bad = compare(dt, ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
  CHECKF(bad == 0, "%s dt=%d ta=%d tb=%d M=%lld N=%lld K=%lld pad=%lld: %lld wrong", jx_cpu_gemm_backend(),
         (int)dt, ta, tb, (long long)M, (long long)N, (long long)K, (long long)pad, (long long)bad);
  CHECKF(pad_damage(C, M, N, ldc, es) == 0, "padding written: M=%lld N=%lld", (long long)M, (long long)N);
  free(A);
  free(B);
  free(C);
}

/* Shapes (M, N, K): unit, odd, multiples of the 6x16 / 6x8 tiles +- 1, tall,
 * wide, several K blocks (KC = 256), several M blocks (MC = 240/120),
 * degenerate. */
static const int64_t shapes[][3] = {
    {1, 1, 1},
    {7, 13, 5},
    {6, 16, 8},
    {5, 15, 7},
    {7, 17, 9},
    {12, 32, 16},
    {11, 31, 17},
    {13, 33, 15},
    {6, 8, 4},
    {18, 24, 1},
    {1, 64, 100},
    {64, 1, 100},
    {2, 3, 600},
    {37, 45, 513},
    {500, 20, 30},
    {257, 129, 300},
    {0, 5, 3},
    {5, 0, 3},
    {4, 6, 0},
    {0, 0, 0},
    /* the AVX-512 tiles (6x32 / 6x16) +- 1, K past its 192-step blocks */
    {6, 32, 8},
    {5, 31, 7},
    {7, 33, 9},
    {12, 64, 193},
    {13, 65, 385},
    {1, 47, 17},
    {2, 17, 1},
    /* the AVX-512 12-row tile (two 6-row panels) and its 6-row tail: M = 12k,
       12k + 6, 12k +- 1, with ragged N and several K blocks */
    {24, 32, 8},
    {23, 31, 9},
    {25, 33, 17},
    {18, 64, 40},
    {30, 16, 3},
    {36, 95, 400},
    {61, 100, 70},
    /* small M (AVX-512: B read in place, passes of <= 12 rows) with several
       K blocks and a ragged last panel */
    {20, 70, 450},
    {32, 100, 600},
    {31, 130, 40},
};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

/* NaN and Inf propagate as in a plain sum of products: a NaN in A[i,:]
 * makes row i NaN, an Inf in B[:,j] makes column j +-Inf or NaN (Inf*0),
 * for every kernel, including the zero-padded edge tiles. */
static void run_nonfinite(jx_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K) {
  const size_t es = esize(dt);
  void *A = malloc((size_t)(M * K) * es), *B = malloc((size_t)(K * N) * es);
  void *C = malloc((size_t)(M * N) * es);
  fill(dt, A, M * K);
  fill(dt, B, K * N);
  const int64_t ia = M / 2, ka = K / 3, jb = N - 1, kb = K - 1; /* NaN at A[ia,ka], Inf at B[kb,jb] */
  const int64_t pa = ta ? ka * M + ia : ia * K + ka, pb = tb ? jb * K + kb : kb * N + jb;
  if (dt == JX_F32)
    ((float *)A)[pa] = NAN, ((float *)B)[pb] = INFINITY;
  else
    ((double *)A)[pa] = NAN, ((double *)B)[pb] = INFINITY;
  jx_cpu_gemm(dt, ta, tb, M, N, K, A, ta ? M : K, B, tb ? K : N, C, N);
  int64_t bad = 0;
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      double s = 0;
      for (int64_t k = 0; k < K; k++)
        s += getf(dt, A, ta ? k * M + i : i * K + k) * getf(dt, B, tb ? j * K + k : k * N + j);
      const double c = getf(dt, C, i * N + j);
      if (isnan(s) || isinf(s))
        bad += isnan(s) ? !isnan(c) : !(c == s);
      else
        bad += !(fabs(c - s) <= 1e-4 * K);
    }
  CHECKF(bad == 0, "%s non-finite dt=%d ta=%d tb=%d %lldx%lldx%lld: %lld wrong", jx_cpu_gemm_backend(),
         (int)dt, ta, tb, (long long)M, (long long)N, (long long)K, (long long)bad);
  free(A);
  free(B);
  free(C);
}

/* Every edge size 1..17 in every dimension (past the 6-row tile, the
 * 12-row one, and the 8/16-wide vectors), each transpose, f32 and f64. */
static void run_edge_sizes(void) {
  const jx_dtype dts[] = {JX_F32, JX_F64};
  for (int d = 0; d < 2; d++)
    for (int64_t m = 1; m <= 17; m++)
      for (int64_t n = 1; n <= 17; n++)
        for (int64_t k = 1; k <= 17; k += (k < 3 ? 1 : 7)) /* K's edges: 1, 2, 3, 10, 17 */
          run_one(dts[d], (m + n) & 1, (m + k) & 1, m, n, k, (m + n + k) % 2);
  for (int d = 0; d < 2; d++)
    for (int64_t k = 1; k <= 17; k++)
      for (int t = 0; t < 4; t++) run_one(dts[d], t & 1, t & 2, 13, 17, k, 1);
}

static void run_float_suite(const char *label) {
  printf("float suite: %s (%s)\n", label, jx_cpu_gemm_backend());
  const jx_dtype dts[] = {JX_F32, JX_F64};
  for (int d = 0; d < 2; d++)
    for (int s = 0; s < NSHAPES; s++)
      for (int t = 0; t < 4; t++)
        run_one(dts[d], t & 1, t & 2, shapes[s][0], shapes[s][1], shapes[s][2], (s + t) % 3 == 0 ? 0 : 3);
  run_edge_sizes();
  /* the N-blocking edge (NC = 4080 / 2040) and a shape big enough to thread */
  for (int t = 0; t < 4; t++) {
    run_one(JX_F32, t & 1, t & 2, 3, 4100, 5, 1);
    run_one(JX_F64, t & 1, t & 2, 3, 2050, 5, 0);
    run_one(JX_F32, t & 1, t & 2, 130, 300, 257, 2);
    run_one(JX_F64, t & 1, t & 2, 20, 30, 1500, 1); /* small M, one panel, deep K: threads need the grid */
    run_nonfinite(JX_F32, t & 1, t & 2, 13, 35, 21);
    run_nonfinite(JX_F64, t & 1, t & 2, 7, 17, 300);
    /* vector-shaped (M or N = 1, unpacked): big enough to thread, padded */
    run_one(JX_F32, t & 1, t & 2, 1, 3000, 300, 2);
    run_one(JX_F64, t & 1, t & 2, 2500, 1, 200, 1);
    run_nonfinite(JX_F32, t & 1, t & 2, 1, 37, 50);
    run_nonfinite(JX_F64, t & 1, t & 2, 29, 1, 50);
  }
}

/* The thread grid (gemm.c choose_grid): tall, wide and square products on
 * 1, 2, 3, 4, 5 and 8 threads (more threads than cores is fine: the tiles
 * just queue), with the grid chosen by shape; then small and edge-sized
 * products forced onto grids with several tiles each way, where both
 * operands are packed once and shared. f32 and f64, all transposes,
 * padded leading dimensions. */
static void run_grid_suite(const char *label) {
  printf("grid suite: %s (%s)\n", label, jx_cpu_gemm_backend());
  static const int threads[] = {1, 2, 3, 4, 5, 8};
  static const int64_t big[][3] = {{700, 24, 110}, {25, 650, 100}, {170, 160, 90}, {97, 101, 47}};
  const jx_dtype dts[] = {JX_F32, JX_F64};
  for (int ti = 0; ti < 6; ti++) {
    jx_cpu_set_num_threads(threads[ti]);
    for (int s = 0; s < 4; s++)
      for (int t = 0; t < 4; t++)
        run_one(dts[(s + t) & 1], t & 1, t & 2, big[s][0], big[s][1], big[s][2], (s + t + ti) % 2);
  }
  static const int grids[][2] = {{2, 2}, {3, 1}, {1, 3}, {2, 3}, {4, 2}, {3, 5}};
  static const int64_t edges[][3] = {{5, 7, 3},     {13, 17, 17}, {17, 33, 10}, {25, 65, 2},
                                     {37, 47, 130}, {61, 95, 17}, {30, 100, 9}};
  for (int g = 0; g < 6; g++) {
    jx_cpu_set_num_threads(threads[g]);
    jx_cpu_gemm_force_grid(grids[g][0], grids[g][1]);
    for (int e = 0; e < 7; e++)
      for (int t = 0; t < 4; t++)
        run_one(dts[(e + t + g) & 1], t & 1, t & 2, edges[e][0], edges[e][1], edges[e][2], (e + t) % 2);
    run_one(JX_F32, false, true, 130, 300, 257, 1); /* several K blocks */
    run_one(JX_F64, true, false, 150, 70, 300, 0);
  }
  jx_cpu_gemm_force_grid(0, 0);
  jx_cpu_set_num_threads(2);
}

/* The grid chosen: a column of row slabs for a tall product, a row of
 * column slabs for a wide one, 2 x 2 for a square one on 4 threads, and no
 * split for a product too small to pay for threads. */
static void check_grid_choice(void) {
  for (int f64 = 0; f64 < 2; f64++) {
    int64_t g[2];
    jx_cpu_gemm_grid(f64, 4096, 64, 512, 4, g);
    CHECKF(g[0] == 4 && g[1] == 1, "tall: %lld x %lld", (long long)g[0], (long long)g[1]);
    jx_cpu_gemm_grid(f64, 64, 4096, 512, 4, g);
    CHECKF(g[0] == 1 && g[1] == 4, "wide: %lld x %lld", (long long)g[0], (long long)g[1]);
    /* square: which grid wins depends on the cache blocks read at run time
     * (on a Zen 5 it was 4 x 1 for f32 and 1 x 4 for f64): every thread is
     * used, and the cost model,
     * given blocks smaller than the tiles, chooses 2 x 2 */
    jx_cpu_gemm_grid(f64, 768, 768, 512, 4, g);
    CHECKF(g[0] * g[1] == 4, "square: %lld x %lld", (long long)g[0], (long long)g[1]);
    jx_cpu_gemm_choose_grid(768, 12, 768, 32, 4, 128, 128, &g[0], &g[1]);
    CHECKF(g[0] == 2 && g[1] == 2, "square, 128 x 128 blocks: %lld x %lld", (long long)g[0], (long long)g[1]);
    jx_cpu_gemm_grid(f64, 4096, 64, 512, 2, g);
    CHECKF(g[0] == 2 && g[1] == 1, "tall, 2 threads: %lld x %lld", (long long)g[0], (long long)g[1]);
    jx_cpu_gemm_grid(f64, 8, 8, 8, 4, g);
    CHECKF(g[0] == 1 && g[1] == 1, "tiny: %lld x %lld", (long long)g[0], (long long)g[1]);
  }
}

/* Batched: strides larger than one member (gaps), B broadcast (stride 0);
 * small members (threaded over the batch) and large ones (threaded inside). */
static void run_batched(jx_dtype dt, bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K,
                        bool bcast_b) {
  const size_t es = esize(dt);
  const int64_t lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2, ldc = N + 1;
  const int64_t sa = (ta ? K : M) * lda + 5, sb = bcast_b ? 0 : (tb ? N : K) * ldb + 3;
  const int64_t sc = M * ldc + 7;
  const int64_t na = batch * sa, nb = bcast_b ? sa + (tb ? N : K) * ldb : batch * sb, nc = batch * sc;
  void *A = malloc((size_t)na * es), *B = malloc((size_t)nb * es), *C = malloc((size_t)nc * es);
  fill(dt, A, na);
  fill(dt, B, nb);
  memset(C, PAD_BYTE, (size_t)nc * es);
  jx_cpu_gemm_batched(dt, ta, tb, batch, M, N, K, A, lda, sa, B, ldb, sb, C, ldc, sc);
  int64_t bad = 0;
  for (int64_t b = 0; b < batch; b++)
    bad +=
        compare(dt, ta, tb, M, N, K, (const char *)A + (size_t)(b * sa) * es, lda,
                (const char *)B + (size_t)(b * sb) * es, ldb, (const char *)C + (size_t)(b * sc) * es, ldc);
  CHECKF(bad == 0, "batched dt=%d ta=%d tb=%d batch=%lld %lldx%lldx%lld: %lld wrong", (int)dt, ta, tb,
         (long long)batch, (long long)M, (long long)N, (long long)K, (long long)bad);
  /* bytes between members (and row padding) stay untouched */
  int64_t gap = 0;
  for (int64_t b = 0; b < batch; b++) {
    const uint8_t *p = (const uint8_t *)C + (size_t)(b * sc) * es;
    gap += pad_damage(p, M, N, ldc, es);
    for (int64_t e = M * ldc; e < sc; e++)
      for (size_t q = 0; q < es; q++) gap += p[(size_t)e * es + q] != PAD_BYTE;
  }
  CHECK(gap == 0);
  free(A);
  free(B);
  free(C);
}

static void run_batched_suite(void) {
  const jx_dtype dts[] = {JX_F32, JX_F64, JX_I32};
  for (int d = 0; d < 3; d++)
    for (int t = 0; t < 4; t++) {
      run_batched(dts[d], t & 1, t & 2, 9, 5, 7, 3, false);
      run_batched(dts[d], t & 1, t & 2, 16, 20, 18, 19, t == 1);
      run_batched(dts[d], t & 1, t & 2, 3, 70, 90, 80, t == 2);
    }
  run_batched(JX_F32, false, false, 0, 5, 5, 5, false); /* empty batch */
  run_batched(JX_F32, false, false, 4, 3, 2, 0, false); /* K = 0 members */
}

/* AUTO's choice in a fresh process whose OpenBLAS is told its core by
 * OPENBLAS_CORETYPE (read when the library loads): a generic core on an
 * AVX2/FMA CPU must not be chosen over jx's own kernel (Debian's OpenBLAS
 * 0.3.21 runs "Prescott" kernels on AVX-512 Xeons, ~4x slower), and on an
 * AVX-512 CPU jx's own kernel is chosen even over OpenBLAS's AVX-512 ones
 * (measured as fast or faster: gemm.c auto_mode). */
static void check_auto_choice(const char *self, const char *core, const char *want) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "OPENBLAS_CORETYPE=%s JX_GEMM= '%s' --print-backend", core, self);
  FILE *p = popen(cmd, "r");
  char got[64] = "";
  if (p && !fgets(got, sizeof got, p)) got[0] = 0;
  if (p) pclose(p);
  got[strcspn(got, "\n")] = 0;
  if (strcmp(got, want)) fprintf(stderr, "AUTO with OpenBLAS core %s: %s, want %s\n", core, got, want);
  CHECK(!strcmp(got, want));
}

static void check_auto_choices(const char *self, const char *best) {
  jx_cpu_gemm_set_mode(JX_GEMM_CBLAS);
  bool cblas = !strcmp(jx_cpu_gemm_backend(), "cblas");
  jx_cpu_gemm_set_mode(JX_GEMM_AUTO);
  if (!cblas) {
    check_auto_choice(self, "Prescott", best);
    return;
  }
  const bool portable = !strcmp(best, "builtin-portable");
  check_auto_choice(self, "Prescott", portable ? "cblas" : best);
  check_auto_choice(self, "Haswell", strcmp(best, "builtin-avx512") ? "cblas" : best);
  check_auto_choice(self, "SkylakeX", strcmp(best, "builtin-avx512") ? "cblas" : best);
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--print-backend")) {
    puts(jx_cpu_gemm_backend());
    return 0;
  }
  /* integers: exact, wrapping; the same everywhere */
  const jx_dtype idts[] = {JX_I32, JX_I64, JX_U32, JX_BOOL};
  for (int d = 0; d < 4; d++)
    for (int s = 0; s < NSHAPES; s++)
      for (int t = 0; t < 4; t++)
        run_one(idts[d], t & 1, t & 2, shapes[s][0], shapes[s][1], shapes[s][2], t == 3 ? 0 : 2);
  run_one(JX_I32, false, false, 200, 150, 100, 1); /* threaded over rows */

  const char *avail = NULL;
  jx_cpu_gemm_set_mode(JX_GEMM_AVX2);
  if (!strcmp(jx_cpu_gemm_backend(), "builtin-avx2")) {
    avail = "avx2";
    for (int nt = 1; nt <= 3; nt++) { /* 3: uneven split across two cores */
      jx_cpu_set_num_threads(nt);
      run_float_suite("avx2");
    }
    run_grid_suite("avx2");
    check_grid_choice();
    jx_cpu_set_num_threads(2);
    run_batched_suite();
  } else {
    printf("no AVX2/FMA on this CPU: skipping the AVX2 path\n");
  }
  const char *avail512 = NULL;
  jx_cpu_gemm_set_mode(JX_GEMM_AVX512);
  if (!strcmp(jx_cpu_gemm_backend(), "builtin-avx512")) {
    avail512 = "avx512";
    for (int nest = 1; nest >= -1; nest--) { /* the 12-row nest, the first, chosen by size */
      jx_cpu_gemm_force_nest(nest);
      jx_cpu_gemm_force_small(nest == 0 ? 0 : -1); /* the first nest also takes small M */
      for (int nt = 1; nt <= 3; nt++) {
        jx_cpu_set_num_threads(nt);
        run_float_suite(nest == 1   ? "avx512, 12-row nest"
                        : nest == 0 ? "avx512, first nest, small M packed"
                                    : "avx512");
      }
      run_grid_suite(nest == 1   ? "avx512, 12-row nest"
                     : nest == 0 ? "avx512, first nest, small M packed"
                                 : "avx512");
    }
    jx_cpu_gemm_force_small(-1);
    check_grid_choice();
    jx_cpu_set_num_threads(2);
    run_batched_suite();
  } else {
    printf("no AVX-512F on this CPU: skipping the AVX-512 path\n");
  }
  jx_cpu_gemm_set_mode(JX_GEMM_BUILTIN);
  const char *best = avail512 ? "builtin-avx512" : avail ? "builtin-avx2" : "builtin-portable";
  CHECK(!strcmp(jx_cpu_gemm_backend(), best));

  check_auto_choices(argv[0], best);

  jx_cpu_gemm_set_mode(JX_GEMM_PORTABLE);
  CHECK(!strcmp(jx_cpu_gemm_backend(), "builtin-portable"));
  run_float_suite("portable");
  run_grid_suite("portable");
  check_grid_choice();
  run_batched_suite();

  jx_cpu_gemm_set_mode(JX_GEMM_CBLAS);
  if (!strcmp(jx_cpu_gemm_backend(), "cblas")) {
    run_float_suite("cblas");
    run_batched_suite();
  } else {
    printf("built without CBLAS: skipping the CBLAS path\n");
    CHECK(strcmp(jx_cpu_gemm_backend(), "cblas") != 0);
  }
  /* K = 1 products over 32 MB (a batch of per-example weight gradients):
   * rows are written with streaming stores; padded rows start unaligned */
  jx_cpu_gemm_set_mode(JX_GEMM_AUTO);
  for (int t = 0; t < 4; t++) {
    run_batched(JX_F32, t & 1, t & 2, 16, 700, 750, 1, t == 1);
    run_batched(JX_F64, t & 1, t & 2, 8, 600, 900, 1, false);
  }
  run_one(JX_F32, false, false, 3000, 2900, 1, 2); /* one product of 35 MB, threaded */
  printf("default backend: %s\n", jx_cpu_gemm_backend());
  return check_report("gemm");
}
