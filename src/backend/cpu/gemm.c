/* GEMM: C[M,N] = op(A)[M,K] · op(B)[K,N], row-major (contract in kernels.h).
 *
 * f32/f64 go to a built-in Goto/BLIS-style kernel, or to CBLAS when the
 * build has it (JX_HAVE_CBLAS) and OpenBLAS measured faster on this CPU
 * (auto_mode below):
 *
 *   for jc in N step NC:            B block KC x NC packed once (lives in L3)
 *     for pc in K step KC:
 *       pack op(B)[pc.., jc..]      -> micro-panels of NR columns
 *       for ic in M step MC:        A block MC x KC packed (lives in L2)
 *         pack op(A)[ic.., pc..]    -> micro-panels of MR rows
 *         for jr in NC step NR:     one B micro-panel (KC x NR) stays in L1
 *           for ir in MC step MR:   micro-kernel: MR x NR tile in registers
 *
 * The AVX-512 kernels run a second nest, built around their 12-row tile
 * (two MR-row A panels x NR = 32 f32 / 16 f64 columns, gemm_avx512.c):
 *
 *   for pc in K step KC:            KC: a 12-row A micro-panel fills half of L1d
 *     for ic in M step MC:          A block MC x KC packed once (L3: ~4 MiB)
 *       for jc in N step NC:        B block KC x NC packed (half of L2)
 *         for ir in MC step 12:     one A micro-panel (12 x KC) stays in L1
 *           for jr in NC step NR:   B micro-panels stream from L2
 *
 * The panel kept in L1 is then the narrow one (12 values per k, against 32),
 * so KC can be twice as deep (512 f32 on a 48 KiB L1d): C is read and
 * written half as often, and each row of a C tile is walked left to right
 * in order, which the hardware prefetchers follow. (Measured on a Xeon
 * model 207, 2000^3 f32, 1 thread: the 6 x 32 tile in the first nest spent
 * ~19% of its time in the C update; this one ~5%.) Products whose C stays
 * in L2 keep the first nest (use_a_l1: measured faster below M = 64).
 *
 * Transposes are absorbed by the packing routines, so ta/tb cost nothing
 * beyond a different read pattern while packing. The micro-kernels (AVX2/FMA
 * in gemm_avx2.c, portable C here) share the packed formats described in
 * gemm_kernel.h, so one driver template serves both, for f32 and f64.
 *
 * Threads: the output is split into a tm x tn grid of tiles (choose_grid:
 * a column of row slabs for tall products, a row of column slabs for wide
 * ones, 2-D for square ones on 4+ threads), each an independent run of the
 * loop nest. An operand that several tiles read is packed once, by all
 * threads, before the tiles start; one that a single tile reads is packed
 * by it. No barrier is needed inside the loop nest.
 *
 * Integer dtypes use an exact i-k-j loop with wrapping (unsigned) arithmetic;
 * bool is "any(a & b)". */
#include "backend/cpu/gemm_kernel.h"
#include "backend/cpu/kernels.h"
#include "core/core.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if defined(JX_HAVE_CBLAS) && JX_HAVE_CBLAS
#include <cblas.h>
#include <pthread.h>
#define GEMM_HAVE_CBLAS 1
#else
#define GEMM_HAVE_CBLAS 0
#endif

#define MR JX_GEMM_MR

/* Cache blocking from the cache sizes read at run time (cache_info.c), by
 * the analytical rule BLIS uses: KC x NR x sizeof(T) fills half of L1d (the
 * B micro-panel stays there, with room for the streamed A panel); MC x KC
 * x sizeof(T) fills half of L2 (the packed A block); KC x NC is a few MB
 * of L3 per thread. On Zen 3 (32 KB L1d, 512 KB L2) this gives the
 * constants tuned there by hand (f32 KC 256, MC 252 vs 240 tuned). K and M
 * are split into equal blocks (not KC + a sliver) to avoid thin tail
 * passes. */
#define NC_F32 4080
#define NC_F64 2040

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* KC for the L1-resident panels of nr elements of es bytes; MC for that KC
 * (a_l1: the 12-row nest, whose A block only needs to stay in L3); NC of
 * the 12-row nest: its B block fills half of L2. */
static int64_t block_kc(int64_t nr, int64_t es) {
  return clamp64(jx_cpu_caches()->l1d / 2 / (nr * es), 64, 1024);
}
static int64_t block_mc(bool a_l1, int64_t kc, int64_t es) {
  if (a_l1) return clamp64(((int64_t)4 << 20) / (kc * es) / (2 * MR) * (2 * MR), 4 * MR, 8192);
  return clamp64(jx_cpu_caches()->l2 / 2 / (kc * es) / MR * MR, 4 * MR, 4096);
}
static int64_t block_nc(int64_t kc, int64_t es, int64_t nr) {
  return clamp64(jx_cpu_caches()->l2 / 2 / (kc * es) / nr * nr, 2 * nr, 8192);
}

/* Whether a product runs the 12-row nest: its gain is C updated half as
 * often, which pays when C does not stay in L2 anyway. Measured (f32 M x
 * 1296 x 512, 1 thread, medians of 5 alternated runs): the first nest was
 * 4-10% faster at M = 8 to 64 and as fast at 96 to 512 (C <= 1 MiB); at
 * 2000^3 (C 16 MB) the 12-row nest is 1.2-1.3x faster. */
static atomic_int g_nest = -1; /* jx_cpu_gemm_force_nest */
void jx_cpu_gemm_force_nest(int nest) { atomic_store_explicit(&g_nest, nest, memory_order_relaxed); }
static bool use_a_l1(bool has_ukr12, int64_t M, int64_t N, int64_t es) {
  const int forced = atomic_load_explicit(&g_nest, memory_order_relaxed);
  if (forced >= 0) return has_ukr12 && forced == 1;
  return has_ukr12 && M >= 48 && M * N * es > jx_cpu_caches()->l2 / 2;
}

/* A thread's slab should carry at least this much M*N*K work: below it the
 * fork/join (a few microseconds) outweighs the gain. */
#define GEMM_MIN_TASK_WORK ((int64_t)1 << 18)

static inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static inline int64_t round_up(int64_t a, int64_t b) { return cdiv(a, b) * b; }
static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* ------------------------------------------------------- the thread grid */
/* Threads split C into a tm x tn grid of tiles, one per thread. Tile rows
 * are whole units of `um` rows (a register tile's height) and tile columns
 * whole NR-column panels, so every tile starts on a packed panel.
 *
 * Why the grid is chosen by this cost: a thread's time is the work of its
 * tile plus the packed data it streams in from the shared caches. The
 * largest tile sets the finishing time, so the work term is that tile's
 * padded size mt x nt (an uneven split, 22 row units over 4 threads, costs
 * what its biggest tile costs, and the cost prefers the grid that divides
 * evenly). The traffic term is what the loop nest reads per k step: its
 * A rows once per B block of ncb columns, its B columns once per A block of
 * mcb rows (ncb and mcb are the cache blocking, from L1/L2 sizes), each
 * element costing LOAD_COST multiply-adds: one packed value from L3 costs
 * about what 8 FMAs do (a core retires 32 f32 FMAs per cycle and draws
 * ~4 floats per cycle from L3). For a fixed thread count that term is
 * smallest when tiles are square in cost, mt ~ nt: a tall product (M >> N)
 * gets a column of row slabs (tm = threads, every thread reads all of the
 * thin B), a wide one a row of column slabs, a square one on 4 threads
 * 2 x 2 (each thread reads half of A and half of B rather than a quarter
 * of one and all of the other). Grids using fewer threads are considered
 * too, and lose unless the split is too uneven to pay. */
enum { GRID_LOAD_COST = 8 };
static atomic_int g_grid_tm, g_grid_tn; /* jx_cpu_gemm_force_grid */
void jx_cpu_gemm_force_grid(int tm, int tn) {
  atomic_store_explicit(&g_grid_tm, tm > 0 && tn > 0 ? tm : 0, memory_order_relaxed);
  atomic_store_explicit(&g_grid_tn, tm > 0 && tn > 0 ? tn : 0, memory_order_relaxed);
}

static int64_t grid_cost(int64_t mu, int64_t um, int64_t nu, int64_t un, int64_t tm, int64_t tn, int64_t mcb,
                         int64_t ncb) {
  const int64_t mt = cdiv(mu, tm) * um, nt = cdiv(nu, tn) * un;
  return mt * nt + GRID_LOAD_COST * (mt * cdiv(nt, ncb) + nt * cdiv(mt, mcb));
}

/* The grid for M x N (units of um rows, un columns) on at most p threads;
 * mcb, ncb: the A and B blocks of the loop nest the tiles will run. */
static void choose_grid(int64_t M, int64_t um, int64_t N, int64_t un, int64_t p, int64_t mcb, int64_t ncb,
                        int64_t *tm, int64_t *tn) {
  const int64_t mu = cdiv(M, um), nu = cdiv(N, un);
  const int ftm = atomic_load_explicit(&g_grid_tm, memory_order_relaxed);
  const int ftn = atomic_load_explicit(&g_grid_tn, memory_order_relaxed);
  if (ftm > 0) { /* forced (tests), clipped to the units there are */
    *tm = min64(ftm, mu), *tn = min64(ftn, nu);
    return;
  }
  *tm = 1, *tn = 1;
  int64_t best = grid_cost(mu, um, nu, un, 1, 1, mcb, ncb);
  for (int64_t a = min64(p, mu); a >= 1; a--) /* ties: more row slabs (C rows stay whole) */
    for (int64_t b = 1; b <= min64(p / a, nu); b++) {
      const int64_t c = grid_cost(mu, um, nu, un, a, b, mcb, ncb);
      if (c < best) best = c, *tm = a, *tn = b;
    }
}

void jx_cpu_gemm_choose_grid(int64_t M, int64_t um, int64_t N, int64_t un, int64_t p, int64_t mcb,
                             int64_t ncb, int64_t *tm, int64_t *tn) {
  choose_grid(M, um, N, un, p, mcb, ncb, tm, tn);
}

/* ------------------------------------------------------- implementation */

/* CPU features, read once (__builtin_cpu_supports also checks that the OS
 * saves the vector state). */
static int cpu_feature(atomic_int *cached, int (*probe)(void)) {
  int v = atomic_load_explicit(cached, memory_order_relaxed);
  if (v < 0) {
    v = probe();
    atomic_store_explicit(cached, v, memory_order_relaxed);
  }
  return v;
}
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
static int probe_avx2_fma(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static int probe_avx512(void) {
  __builtin_cpu_init();
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx512f") && probe_avx2_fma();
#else
  return 0;
#endif
}
#else
static int probe_avx2_fma(void) { return 0; }
static int probe_avx512(void) { return 0; }
#endif
static int cpu_has_avx2_fma(void) {
  static atomic_int c = -1;
  return cpu_feature(&c, probe_avx2_fma);
}
static int cpu_has_avx512(void) {
  static atomic_int c = -1;
  return cpu_feature(&c, probe_avx512);
}

/* The best built-in kernel this CPU runs. */
static jx_gemm_mode best_builtin(void) {
  return cpu_has_avx512() ? JX_GEMM_AVX512 : cpu_has_avx2_fma() ? JX_GEMM_AVX2 : JX_GEMM_PORTABLE;
}

static atomic_int g_mode = JX_GEMM_AUTO; /* set by jx_cpu_gemm_set_mode */
static atomic_int g_env_mode = -1;       /* JX_GEMM, parsed once */

void jx_cpu_gemm_set_mode(jx_gemm_mode mode) {
  atomic_store_explicit(&g_mode, (int)mode, memory_order_relaxed);
}

static int env_mode(void) {
  int m = atomic_load_explicit(&g_env_mode, memory_order_relaxed);
  if (m < 0) {
    const char *s = getenv("JX_GEMM");
    m = JX_GEMM_AUTO;
    if (s && !strcmp(s, "cblas"))
      m = JX_GEMM_CBLAS;
    else if (s && !strcmp(s, "builtin"))
      m = JX_GEMM_BUILTIN;
    else if (s && !strcmp(s, "avx2"))
      m = JX_GEMM_AVX2;
    else if (s && !strcmp(s, "avx512"))
      m = JX_GEMM_AVX512;
    else if (s && !strcmp(s, "portable"))
      m = JX_GEMM_PORTABLE;
    atomic_store_explicit(&g_env_mode, m, memory_order_relaxed);
  }
  return m;
}

#if GEMM_HAVE_CBLAS
/* AUTO's rule: CBLAS only where OpenBLAS was measured faster than jx's
 * best built-in kernel for this CPU (bench/gemm_default.sh: alternating
 * processes, jx's CBLAS path as jx runs it, i.e. OpenBLAS single-threaded
 * on jx's pool). OpenBLAS picks its kernels by CPU model, and one that does
 * not know the CPU runs generic SSE code (Debian's 0.3.21 calls an
 * AVX-512/AMX Xeon "Prescott": ~30 GFLOP/s at 2000^3), so the rule looks at
 * the core it runs (openblas_get_corename, which reports the one
 * OPENBLAS_CORETYPE names when set):
 *  - jx's AVX-512 kernel: built-in, whatever the core. Against OpenBLAS's
 *    own AVX-512 (SkylakeX) kernels it measured 1.0-1.1x on 128 x 1296 x
 *    512, 1.0-1.2x on f64 2000^3, 1.2-2.5x on M <= 32, transposed-B and
 *    vector products, and 0.75-1.1x on f32 2000^3, the one shape where
 *    OpenBLAS may lead (loaded sittings disagree; Xeon model 207, 1 and 2
 *    threads). A quiet run of bench/gemm_default.sh settles that shape.
 *  - jx's AVX2/FMA kernel: CBLAS when OpenBLAS runs AVX2 or AVX-512
 *    kernels (its Haswell kernels measured ~1.24x jx's AVX2 at 2000^3 f32,
 *    issue #16), built-in when it runs generic ones.
 *  - portable C only: CBLAS, whatever the core. */
static const char *const k_avx512_cores[] = {"skylakex", "cooperlake", "sapphirerapids"};
static const char *const k_avx2_cores[] = {"haswell", "zen"};

static bool name_in(const char *core, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (core && !strcasecmp(core, list[i])) return true;
  return false;
}

static bool cblas_wins(const char *core) {
  const bool v512 = name_in(core, k_avx512_cores, sizeof k_avx512_cores / sizeof *k_avx512_cores);
  const bool v256 = v512 || name_in(core, k_avx2_cores, sizeof k_avx2_cores / sizeof *k_avx2_cores);
  switch (best_builtin()) {
    case JX_GEMM_AVX512: return false;
    case JX_GEMM_AVX2: return v256;
    default: return true;
  }
}
#endif

/* AUTO's choice, made once per process and reported under JX_LOG=gemm. */
static int auto_mode(void) {
  static atomic_int cached = -1;
  int m = atomic_load_explicit(&cached, memory_order_relaxed);
  if (m >= 0) return m;
#if GEMM_HAVE_CBLAS
  const char *core = openblas_get_corename();
  const bool wins = cblas_wins(core);
  m = wins ? JX_GEMM_CBLAS : JX_GEMM_BUILTIN;
  if (jx_diag_enabled("gemm"))
    jx_diag("gemm: OpenBLAS core %s: %s", core ? core : "?",
            wins ? "faster than jx's own kernel on this CPU, using CBLAS"
                 : "not faster than jx's own kernel on this CPU, using jx's own GEMM");
#else
  m = JX_GEMM_BUILTIN;
  if (jx_diag_enabled("gemm")) jx_diag("gemm: no CBLAS in this build, using jx's own GEMM");
#endif
  atomic_store_explicit(&cached, m, memory_order_relaxed);
  return m;
}

/* The implementation actually used: CBLAS, AVX2 or PORTABLE. */
static jx_gemm_mode resolved_mode(void) {
  int m = atomic_load_explicit(&g_mode, memory_order_relaxed);
  if (m == JX_GEMM_AUTO) m = env_mode();
  if (m == JX_GEMM_AUTO) m = auto_mode();
  if (m == JX_GEMM_CBLAS) m = GEMM_HAVE_CBLAS ? JX_GEMM_CBLAS : JX_GEMM_BUILTIN;
  if (m == JX_GEMM_AVX512 && !cpu_has_avx512()) m = JX_GEMM_BUILTIN;
  if (m == JX_GEMM_AVX2 && !cpu_has_avx2_fma()) m = JX_GEMM_BUILTIN;
  if (m == JX_GEMM_BUILTIN) m = best_builtin();
  return (jx_gemm_mode)m;
}

const char *jx_cpu_gemm_backend(void) {
  switch (resolved_mode()) {
    case JX_GEMM_CBLAS: return "cblas";
    case JX_GEMM_AVX512: return "builtin-avx512";
    case JX_GEMM_AVX2: return "builtin-avx2";
    default: return "builtin-portable";
  }
}

/* --------------------------------------------- float templates (f32, f64) */

/* Portable micro-kernel: one row of the tile at a time, its NR accumulators
 * in a small local array that the compiler keeps in vector registers (the
 * row-at-a-time order keeps GCC from spilling a 6 x NR tile); B's panel is
 * re-read from L1 per row. Same contract as the AVX2 kernel; also what a CPU
 * without AVX2/FMA runs. */
#define DEFINE_UKR_PORTABLE(SUF, T, NR)                                                                      \
  static void ukr_portable_##SUF(int64_t kc, const T *restrict a, const T *restrict b, T *restrict c,        \
                                 int64_t ldc, int acc, int m, int n) {                                       \
    for (int i = 0; i < m; i++) {                                                                            \
      T t[NR];                                                                                               \
      for (int j = 0; j < NR; j++) t[j] = 0;                                                                 \
      for (int64_t k = 0; k < kc; k++) {                                                                     \
        const T ai = a[k * MR + i];                                                                          \
        for (int j = 0; j < NR; j++) t[j] += ai * b[k * NR + j];                                             \
      }                                                                                                      \
      for (int j = 0; j < n; j++) c[i * ldc + j] = (acc ? c[i * ldc + j] : (T)0) + t[j];                     \
    }                                                                                                        \
  }

/* Packing of B (not transposed) into NR-column micro-panels. */
#define DEFINE_PACK_B(SUF, T, NR)                                                                            \
  static void pack_b_##SUF(int64_t kc, int64_t nc, const T *b, int64_t ldb, T *restrict bp) {                \
    for (int64_t j0 = 0; j0 < nc; j0 += NR, bp += NR * kc) { /* op(B)[k,j] = b[k*ldb + j] */                 \
      const int nr = (int)min64(NR, nc - j0);                                                                \
      for (int64_t k = 0; k < kc; k++) {                                                                     \
        const T *s = b + k * ldb + j0;                                                                       \
        if (nr == NR) {                                                                                      \
          memcpy(bp + k * NR, s, sizeof(T) * NR);                                                            \
        } else {                                                                                             \
          for (int c = 0; c < NR; c++) bp[k * NR + c] = c < nr ? s[c] : (T)0;                                \
        }                                                                                                    \
      }                                                                                                      \
    }                                                                                                        \
  }

/* Packing. `a`/`b` point at element [0,0] of the op()'d block; the stored
 * operand is transposed when ta/tb, which only changes the read pattern. */
#define DEFINE_PACK(SUF, T, NR)                                                                              \
  static void pack_a_##SUF(bool ta, int64_t mc, int64_t kc, const T *a, int64_t lda, T *restrict ap) {       \
    for (int64_t i0 = 0; i0 < mc; i0 += MR, ap += MR * kc) {                                                 \
      const int mr = (int)min64(MR, mc - i0);                                                                \
      if (ta) { /* op(A)[i,k] = a[k*lda + i]: MR contiguous values per k */                                  \
        for (int64_t k = 0; k < kc; k++) {                                                                   \
          const T *s = a + k * lda + i0;                                                                     \
          for (int r = 0; r < MR; r++) ap[k * MR + r] = r < mr ? s[r] : (T)0;                                \
        }                                                                                                    \
      } else if (mr == MR) { /* six row streams, interleaved */                                              \
        const T *s = a + i0 * lda;                                                                           \
        for (int64_t k = 0; k < kc; k++)                                                                     \
          for (int r = 0; r < MR; r++) ap[k * MR + r] = s[r * lda + k];                                      \
      } else {                                                                                               \
        const T *s = a + i0 * lda;                                                                           \
        for (int64_t k = 0; k < kc; k++)                                                                     \
          for (int r = 0; r < MR; r++) ap[k * MR + r] = r < mr ? s[r * lda + k] : (T)0;                      \
      }                                                                                                      \
    }                                                                                                        \
  }                                                                                                          \
  DEFINE_PACK_B(SUF, T, NR)                                                                                  \
  /* tb: op(B)[k,j] = b[j*ldb + k]; reads each column's contiguous run along k */                            \
  static void pack_bt_portable_##SUF(int64_t kc, int64_t nc, const T *b, int64_t ldb, T *restrict bp) {      \
    for (int64_t j0 = 0; j0 < nc; j0 += NR, bp += NR * kc) {                                                 \
      const int nr = (int)min64(NR, nc - j0);                                                                \
      for (int c = 0; c < NR; c++) {                                                                         \
        const T *s = b + (j0 + c) * ldb;                                                                     \
        for (int64_t k = 0; k < kc; k++) bp[k * NR + c] = c < nr ? s[k] : (T)0;                              \
      }                                                                                                      \
    }                                                                                                        \
  }

/* Unpacked fallback for when the packing buffers cannot be allocated: the
 * kernel has no way to report an error, so it stays correct, just slow. */
#define DEFINE_NAIVE(SUF, T)                                                                                 \
  static void gemm_naive_##SUF(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T *A, int64_t lda,   \
                               const T *B, int64_t ldb, T *C, int64_t ldc) {                                 \
    for (int64_t i = 0; i < M; i++)                                                                          \
      for (int64_t j = 0; j < N; j++) {                                                                      \
        T s = 0;                                                                                             \
        for (int64_t k = 0; k < K; k++)                                                                      \
          s += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);              \
        C[i * ldc + j] = s;                                                                                  \
      }                                                                                                      \
  }

/* Element size, kept local so the kernels depend on nothing in core/. */
static size_t dt_size(jx_dtype dt) {
  switch (dt) {
    case JX_BOOL:
    case JX_I8:
    case JX_U8: return 1;
    case JX_I16:
    case JX_U16:
    case JX_BF16:
    case JX_F16: return 2;
    case JX_I64:
    case JX_U64:
    case JX_F64: return 8;
    default: return 4;
  }
}

/* A block's packing buffers come from the buffer cache (jx_cpu_scratch):
 * malloc'd and freed per call, they sat at the top of glibc's heap, which
 * gave them back to the kernel on each free and faulted them in again on
 * the next call (64 faults a call of a [32,128,128] batched product, ~1/3
 * of its time on a Zen 5 guest). */

/* What differs between the kernels that share a driver: the micro-kernel
 * and the packing of a transposed B (the other packings are plain C). */
typedef struct {
  jx_gemm_ukr_f32 ukr;
  jx_gemm_pack_bt_f32 pack_bt;
  jx_gemm_ukr12_f32 ukr12; /* 12-row tile over two A panels, or NULL */
} impl_f32;
typedef struct {
  jx_gemm_ukr_f64 ukr;
  jx_gemm_pack_bt_f64 pack_bt;
  jx_gemm_ukr12_f64 ukr12;
} impl_f64;

/* The blocked driver, instantiated per (dtype, panel width): the AVX2 and
 * portable kernels share one instantiation, the AVX-512 ones (twice as
 * wide) another; IMPL is the dtype's impl type.
 *
 * Threads each run the loop nest on one tile of a tm x tn grid over C
 * (choose_grid). An operand that more than one tile reads (B when tm > 1,
 * A when tn > 1) is packed once, by all threads together, before the tiles
 * start, into sha / shb: block (pc, x) of it lies at sh + rows * pc + x * kc,
 * rows being its panel-padded length, so a tile's nest finds each packed
 * block where it would have packed it. An operand only one tile reads (A
 * in a column of row slabs) is packed by that tile, block by block, while
 * it is in cache. */
#define DEFINE_DRIVER(SUF, BASE, T, IMPL, NR, NC)                                                            \
  typedef struct {                                                                                           \
    const IMPL *im;                                                                                          \
    bool ta, tb, a_l1; /* a_l1: the 12-row nest (see the top of the file) */                                 \
    int64_t M, N, K, lda, ldb, ldc, kcb;                                                                     \
    int64_t tm, tn, um; /* the thread grid; tile rows are multiples of um */                                 \
    const T *A, *B;                                                                                          \
    T *C, *sha, *shb; /* A and B packed before the tiles start, or NULL */                                   \
  } job_##SUF;                                                                                               \
                                                                                                             \
  /* Pack op(A)[.., pc..] (rows [i0, i0 + mc)) or op(B)[pc.., ..] (cols [j0, j0 + nc)) */                    \
  static void pack_blk_a_##SUF(const job_##SUF *j, int64_t pc, int64_t kc, int64_t i0, int64_t mc, T *ap) {  \
    pack_a_##BASE(j->ta, mc, kc, j->A + (j->ta ? pc * j->lda + i0 : i0 * j->lda + pc), j->lda, ap);          \
  }                                                                                                          \
  static void pack_blk_b_##SUF(const job_##SUF *j, int64_t pc, int64_t kc, int64_t j0, int64_t nc, T *bp) {  \
    if (j->tb)                                                                                               \
      j->im->pack_bt(kc, nc, j->B + j0 * j->ldb + pc, j->ldb, bp);                                           \
    else                                                                                                     \
      pack_b_##SUF(kc, nc, j->B + pc * j->ldb + j0, j->ldb, bp);                                             \
  }                                                                                                          \
                                                                                                             \
  /* The register tiles of one packed A block (mc x kc) and B block (kc x nc) */                             \
  /* into C at c. a_l1: each A micro-panel stays in L1 while B's stream past */                              \
  /* it from L2 (12-row tiles first); otherwise each B micro-panel stays. */                                 \
  static void tiles_##SUF(const job_##SUF *j, bool a_l1, const T *a, const T *b, T *c, int64_t mc,           \
                          int64_t nc, int64_t kc, int acc) {                                                 \
    const int64_t ldc = j->ldc;                                                                              \
    if (!a_l1) {                                                                                             \
      for (int64_t jr = 0; jr < nc; jr += NR)                                                                \
        for (int64_t ir = 0; ir < mc; ir += MR)                                                              \
          j->im->ukr(kc, a + ir * kc, b + jr * kc, c + ir * ldc + jr, ldc, acc, (int)min64(MR, mc - ir),     \
                     (int)min64(NR, nc - jr));                                                               \
      return;                                                                                                \
    }                                                                                                        \
    int64_t ir = 0;                                                                                          \
    for (; ir + 2 * MR <= mc; ir += 2 * MR)                                                                  \
      for (int64_t jr = 0; jr < nc; jr += NR)                                                                \
        j->im->ukr12(kc, a + ir * kc, b + jr * kc, c + ir * ldc + jr, ldc, acc, (int)min64(NR, nc - jr));    \
    for (; ir < mc; ir += MR)                                                                                \
      for (int64_t jr = 0; jr < nc; jr += NR)                                                                \
        j->im->ukr(kc, a + ir * kc, b + jr * kc, c + ir * ldc + jr, ldc, acc, (int)min64(MR, mc - ir),       \
                   (int)min64(NR, nc - jr));                                                                 \
  }                                                                                                          \
                                                                                                             \
  /* The blocks of the loop nest; MC/NC multiples of the tiles so only the */                                \
  /* last tile is ragged, and equal-sized blocks (no thin tail pass). */                                     \
  static int64_t mcb_##SUF(bool a_l1, int64_t M, int64_t kcb) {                                              \
    return round_up(cdiv(M, cdiv(M, block_mc(a_l1, kcb, sizeof(T)))), a_l1 ? 2 * MR : MR);                   \
  }                                                                                                          \
  static int64_t ncb_##SUF(bool a_l1, int64_t N, int64_t kcb) {                                              \
    return round_up(cdiv(N, cdiv(N, a_l1 ? block_nc(kcb, sizeof(T), NR) : NC)), NR);                         \
  }                                                                                                          \
                                                                                                             \
  /* The serial loop nest (see the top of the file) over rows [m0, m0 + M) */                                \
  /* and columns [n0, n0 + N) of the job's product. With the 12-row tile */                                  \
  /* (a_l1) the nest is pc, ic, jc: A is packed once, B once per A block. */                                 \
  static void gemm_blocked_##SUF(const job_##SUF *j, int64_t m0, int64_t M, int64_t n0, int64_t N) {         \
    const int64_t K = j->K, kcb = j->kcb, ldc = j->ldc;                                                      \
    const bool a_l1 = j->a_l1;                                                                               \
    const int64_t mcb = mcb_##SUF(a_l1, M, kcb), ncb = ncb_##SUF(a_l1, N, kcb);                              \
    const bool sa = j->sha != NULL, sb = j->shb != NULL;                                                     \
    jx_buffer *ha = NULL, *hb = NULL;                                                                        \
    T *ap = sa ? NULL : jx_cpu_scratch(sizeof(T) * (size_t)(mcb * kcb), &ha);                                \
    T *bp = sb ? NULL : jx_cpu_scratch(sizeof(T) * (size_t)(kcb * ncb), &hb);                                \
    if ((!sa && !ap) || (!sb && !bp)) {                                                                      \
      jx_cpu_scratch_free(ha), jx_cpu_scratch_free(hb);                                                      \
      const T *A = j->A + (j->ta ? m0 : m0 * j->lda), *B = j->B + (j->tb ? n0 * j->ldb : n0);                \
      gemm_naive_##BASE(j->ta, j->tb, M, N, K, A, j->lda, B, j->ldb, j->C + m0 * ldc + n0, ldc);             \
      return;                                                                                                \
    }                                                                                                        \
    /* a_l1: for pc, ic, jc; otherwise for jc, pc, ic (the B block is packed outside ic) */                  \
    const int64_t n_out = a_l1 ? 1 : cdiv(N, ncb), n_in = a_l1 ? cdiv(N, ncb) : 1;                           \
    for (int64_t jo = 0; jo < n_out; jo++)                                                                   \
      for (int64_t pc = 0; pc < K; pc += kcb) {                                                              \
        const int64_t kc = min64(kcb, K - pc);                                                               \
        for (int64_t ic = 0; ic < M; ic += mcb) {                                                            \
          const int64_t mc = min64(mcb, M - ic);                                                             \
          const T *a = sa ? j->sha + round_up(j->M, MR) * pc + (m0 + ic) * kc : ap;                          \
          if (!sa) pack_blk_a_##SUF(j, pc, kc, m0 + ic, mc, ap);                                             \
          for (int64_t ji = 0; ji < n_in; ji++) {                                                            \
            const int64_t jc = (jo + ji) * ncb, nc = min64(ncb, N - jc);                                     \
            const T *b = sb ? j->shb + round_up(j->N, NR) * pc + (n0 + jc) * kc : bp;                        \
            if (!sb && (a_l1 || ic == 0)) pack_blk_b_##SUF(j, pc, kc, n0 + jc, nc, bp);                      \
            tiles_##SUF(j, a_l1, a, b, j->C + (m0 + ic) * ldc + n0 + jc, mc, nc, kc, pc > 0);                \
          }                                                                                                  \
        }                                                                                                    \
      }                                                                                                      \
    jx_cpu_scratch_free(ha), jx_cpu_scratch_free(hb);                                                        \
  }                                                                                                          \
                                                                                                             \
  /* Packing the shared operands: P = tm * tn parts per K block of each, */                                  \
  /* A's first (when shared), then B's; part g of a K block is a range of */                                 \
  /* whole panels. */                                                                                        \
  static void pack_task_##SUF(void *ctx, int64_t lo, int64_t hi) {                                           \
    const job_##SUF *j = ctx;                                                                                \
    const int64_t P = j->tm * j->tn, na = j->sha ? P * cdiv(j->K, j->kcb) : 0;                               \
    for (int64_t t = lo; t < hi; t++) {                                                                      \
      const bool is_a = t < na;                                                                              \
      const int64_t u = is_a ? t : t - na, unit = is_a ? MR : NR, dim = is_a ? j->M : j->N;                  \
      const int64_t units = cdiv(dim, unit), pc = u / P * j->kcb, kc = min64(j->kcb, j->K - pc), g = u % P;  \
      const int64_t s = units * g / P * unit, e = min64(dim, units * (g + 1) / P * unit);                    \
      if (e <= s) continue;                                                                                  \
      T *dst = (is_a ? j->sha : j->shb) + round_up(dim, unit) * pc + s * kc;                                 \
      if (is_a)                                                                                              \
        pack_blk_a_##SUF(j, pc, kc, s, e - s, dst);                                                          \
      else                                                                                                   \
        pack_blk_b_##SUF(j, pc, kc, s, e - s, dst);                                                          \
    }                                                                                                        \
  }                                                                                                          \
                                                                                                             \
  /* Task t runs tile (t / tn, t % tn) of the grid: row units and column */                                  \
  /* panels dealt out as evenly as they divide. */                                                           \
  static void gemm_task_##SUF(void *ctx, int64_t lo, int64_t hi) {                                           \
    const job_##SUF *j = ctx;                                                                                \
    const int64_t mu = cdiv(j->M, j->um), nu = cdiv(j->N, NR);                                               \
    for (int64_t t = lo; t < hi; t++) {                                                                      \
      const int64_t i = t / j->tn, k = t % j->tn;                                                            \
      const int64_t m0 = mu * i / j->tm * j->um, m1 = min64(j->M, mu * (i + 1) / j->tm * j->um);             \
      const int64_t n0 = nu * k / j->tn * NR, n1 = min64(j->N, nu * (k + 1) / j->tn * NR);                   \
      if (m1 > m0 && n1 > n0) gemm_blocked_##SUF(j, m0, m1 - m0, n0, n1 - n0);                               \
    }                                                                                                        \
  }                                                                                                          \
                                                                                                             \
  /* The nest, blocking and thread grid of a product on nt threads */                                        \
  static job_##SUF plan_##SUF(const IMPL *im, int64_t nt, int64_t M, int64_t N, int64_t K) {                 \
    const bool a_l1 = use_a_l1(im->ukr12 != NULL, M, N, sizeof(T));                                          \
    const int64_t kc0 = block_kc(a_l1 ? 2 * MR : NR, sizeof(T)), kcb = cdiv(K, cdiv(K, kc0));                \
    job_##SUF j = {im,   false, false, a_l1, M,   N, K, 0, 0, 0, kcb, 1, 1, a_l1 ? 2 * MR : MR,              \
                   NULL, NULL,  NULL,  NULL, NULL};                                                          \
    const int64_t p = max64(1, min64(nt, M * N * K / GEMM_MIN_TASK_WORK));                                   \
    choose_grid(M, j.um, N, NR, p, block_mc(a_l1, kcb, sizeof(T)), ncb_##SUF(a_l1, N, kcb), &j.tm, &j.tn);   \
    return j;                                                                                                \
  }                                                                                                          \
                                                                                                             \
  static void gemm_builtin_##SUF(const IMPL *im, bool threaded, bool ta, bool tb, int64_t M, int64_t N,      \
                                 int64_t K, const T *A, int64_t lda, const T *B, int64_t ldb, T *C,          \
                                 int64_t ldc) {                                                              \
    job_##SUF j = plan_##SUF(im, threaded ? jx_cpu_num_threads() : 1, M, N, K);                              \
    j.ta = ta, j.tb = tb, j.lda = lda, j.ldb = ldb, j.ldc = ldc, j.A = A, j.B = B, j.C = C;                  \
    if (j.tm * j.tn == 1) {                                                                                  \
      gemm_blocked_##SUF(&j, 0, M, 0, N);                                                                    \
      return;                                                                                                \
    }                                                                                                        \
    /* the shared operands, packed once; without memory for one, each tile packs its own */                  \
    jx_buffer *ha = NULL, *hb = NULL; /* from the buffer cache: pages already faulted in */                  \
    if (j.tn > 1) j.sha = jx_cpu_scratch(sizeof(T) * (size_t)(round_up(M, MR) * K), &ha);                    \
    if (j.tm > 1) j.shb = jx_cpu_scratch(sizeof(T) * (size_t)(round_up(N, NR) * K), &hb);                    \
    const int64_t packs = ((j.sha != NULL) + (j.shb != NULL)) * j.tm * j.tn * cdiv(K, j.kcb);                \
    if (packs) jx_cpu_parallel_for(packs, 1, pack_task_##SUF, &j);                                           \
    jx_cpu_parallel_for(j.tm *j.tn, 1, gemm_task_##SUF, &j);                                                 \
    jx_cpu_scratch_free(ha), jx_cpu_scratch_free(hb);                                                        \
  }

DEFINE_UKR_PORTABLE(f32, float, JX_GEMM_NR_F32)
DEFINE_UKR_PORTABLE(f64, double, JX_GEMM_NR_F64)
DEFINE_PACK(f32, float, JX_GEMM_NR_F32)
DEFINE_PACK(f64, double, JX_GEMM_NR_F64)
DEFINE_PACK_B(f32w, float, JX_GEMM_NRW_F32)
DEFINE_PACK_B(f64w, double, JX_GEMM_NRW_F64)
DEFINE_NAIVE(f32, float)
DEFINE_NAIVE(f64, double)
DEFINE_DRIVER(f32, f32, float, impl_f32, JX_GEMM_NR_F32, NC_F32)
DEFINE_DRIVER(f64, f64, double, impl_f64, JX_GEMM_NR_F64, NC_F64)
DEFINE_DRIVER(f32w, f32, float, impl_f32, JX_GEMM_NRW_F32, NC_F32)
DEFINE_DRIVER(f64w, f64, double, impl_f64, JX_GEMM_NRW_F64, NC_F64)

static const impl_f32 impl_portable_f32 = {ukr_portable_f32, pack_bt_portable_f32, NULL};
static const impl_f64 impl_portable_f64 = {ukr_portable_f64, pack_bt_portable_f64, NULL};
static const impl_f32 impl_avx2_f32 = {jx_gemm_ukr_avx2_f32, jx_gemm_pack_bt_avx2_f32, NULL};
static const impl_f64 impl_avx2_f64 = {jx_gemm_ukr_avx2_f64, jx_gemm_pack_bt_avx2_f64, NULL};
static const impl_f32 impl_avx512_f32 = {jx_gemm_ukr_avx512_f32, jx_gemm_pack_bt_avx512_f32,
                                         jx_gemm_ukr12_avx512_f32};
static const impl_f64 impl_avx512_f64 = {jx_gemm_ukr_avx512_f64, jx_gemm_pack_bt_avx512_f64,
                                         jx_gemm_ukr12_avx512_f64};

/* ------------------------------------------------------ small-M products */
/* M <= 32 (a small batch through a layer, a few queries): the blocked path
 * packs all of B, K x N, to use each value in at most two 12-row (or a few
 * 6-row) tiles, and pads M up to whole 6-row tiles (M = 8 computes 12). On
 * AVX-512, when B's rows are contiguous (no tb), these products pack only
 * A (M x K, small next to B) into passes of at most 12 rows, split as
 * evenly as they go (32 = 11 + 11 + 10), and read B in place: a B
 * micro-panel kc x 32 comes from memory once and from L1 for the other
 * passes (kc: the blocked path's L1 rule; one pass needs no K blocking).
 * Threads take ranges of column panels. Measured against the blocked path
 * (bench/gemm_ab.sh with ALT=JX_GEMM_SMALL=0, Xeon model 207, loaded box,
 * peak speeds of 3-5 alternating rounds): f32 8 x 1296 x 512 1.25-1.35x
 * faster at 1 thread and 1.3-1.4x at 2, 32 x 1296 x 512 1.1-1.15x and
 * 1.35-1.4x; f64 8 x 1296 x 512 and a ta product ~1.2x. */
enum { SMALL_M_MAX = 32, SMALL_PASS_MAX = 2 * MR };
static atomic_int g_small = -1; /* jx_cpu_gemm_force_small */
void jx_cpu_gemm_force_small(int on) { atomic_store_explicit(&g_small, on, memory_order_relaxed); }

static int64_t small_rows(int64_t M, int64_t np, int64_t p) { return M / np + (p < M % np); }

#define DEF_SMALL(SUF, T, NRW)                                                                               \
  typedef struct {                                                                                           \
    int64_t M, N, K, kcb, ldb, ldc, np;                                                                      \
    const T *ap, *B; /* ap: pass p (rows r0..r0 + R) at ap + r0 * K, R values per k */                       \
    T *C;                                                                                                    \
  } small_job_##SUF;                                                                                         \
  static void small_task_##SUF(void *ctx, int64_t lo, int64_t hi) {                                          \
    const small_job_##SUF *j = ctx;                                                                          \
    for (int64_t pc = 0; pc < j->K; pc += j->kcb) {                                                          \
      const int64_t kc = min64(j->kcb, j->K - pc);                                                           \
      for (int64_t q = lo; q < hi; q++) {                                                                    \
        const int64_t j0 = q * NRW;                                                                          \
        for (int64_t p = 0, r0 = 0; p < j->np; p++) {                                                        \
          const int64_t R = small_rows(j->M, j->np, p);                                                      \
          jx_gemm_small_avx512_##SUF((int)R, kc, j->ap + r0 * j->K + pc * R, j->B + pc * j->ldb + j0,        \
                                     j->ldb, j->C + r0 * j->ldc + j0, j->ldc, pc > 0,                        \
                                     (int)min64(NRW, j->N - j0));                                            \
          r0 += R;                                                                                           \
        }                                                                                                    \
      }                                                                                                      \
    }                                                                                                        \
  }                                                                                                          \
  static bool gemm_small_##SUF(bool threaded, bool ta, int64_t M, int64_t N, int64_t K, const T *A,          \
                               int64_t lda, const T *B, int64_t ldb, T *C, int64_t ldc) {                    \
    jx_buffer *hap;                                                                                          \
    T *ap = jx_cpu_scratch(sizeof(T) * (size_t)(M * K), &hap);                                               \
    if (!ap) return false;                                                                                   \
    const int64_t np = cdiv(M, SMALL_PASS_MAX), kc0 = block_kc(NRW, sizeof(T));                              \
    for (int64_t p = 0, r0 = 0; p < np; r0 += small_rows(M, np, p), p++) {                                   \
      const int64_t R = small_rows(M, np, p);                                                                \
      T *d = ap + r0 * K;                                                                                    \
      for (int64_t k = 0; k < K; k++)                                                                        \
        for (int64_t r = 0; r < R; r++) d[k * R + r] = ta ? A[k * lda + r0 + r] : A[(r0 + r) * lda + k];     \
    }                                                                                                        \
    small_job_##SUF j = {M, N, K, np == 1 ? K : cdiv(K, cdiv(K, kc0)), ldb, ldc, np, ap, B, C};              \
    const int64_t panels = cdiv(N, NRW);                                                                     \
    if (threaded)                                                                                            \
      jx_cpu_parallel_for(panels, 1 + GEMM_MIN_TASK_WORK / (M * K * NRW), small_task_##SUF, &j);             \
    else                                                                                                     \
      small_task_##SUF(&j, 0, panels);                                                                       \
    jx_cpu_scratch_free(hap);                                                                                \
    return true;                                                                                             \
  }
DEF_SMALL(f32, float, JX_GEMM_NRW_F32)
DEF_SMALL(f64, double, JX_GEMM_NRW_F64)

/* Whether gemm_small takes the product: not when it would leave threads
 * idle that the blocked path's grid can use (it splits only columns: N <=
 * 32 with a deep K is one panel, one thread). */
static bool use_small(jx_gemm_mode k, bool threaded, bool tb, int64_t M, int64_t N, int64_t K, int64_t nrw) {
  const int forced = atomic_load_explicit(&g_small, memory_order_relaxed);
  if (k != JX_GEMM_AVX512 || tb || M > SMALL_M_MAX || forced == 0) return false;
  const int64_t p = threaded ? min64(jx_cpu_num_threads(), M * N * K / GEMM_MIN_TASK_WORK) : 1;
  return cdiv(N, nrw) >= p;
}

/* One product on the built-in kernel `k` (AVX512, AVX2 or PORTABLE). */
static void gemm_builtin(jx_gemm_mode k, jx_dtype dt, bool threaded, bool ta, bool tb, int64_t M, int64_t N,
                         int64_t K, const void *A, int64_t lda, const void *B, int64_t ldb, void *C,
                         int64_t ldc) {
  if (use_small(k, threaded, tb, M, N, K, dt == JX_F32 ? JX_GEMM_NRW_F32 : JX_GEMM_NRW_F64) &&
      (dt == JX_F32 ? gemm_small_f32(threaded, ta, M, N, K, A, lda, B, ldb, C, ldc)
                    : gemm_small_f64(threaded, ta, M, N, K, A, lda, B, ldb, C, ldc)))
    return;
  if (dt == JX_F32 && k == JX_GEMM_AVX512)
    gemm_builtin_f32w(&impl_avx512_f32, threaded, ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
  else if (dt == JX_F32)
    gemm_builtin_f32(k == JX_GEMM_AVX2 ? &impl_avx2_f32 : &impl_portable_f32, threaded, ta, tb, M, N, K, A,
                     lda, B, ldb, C, ldc);
  else if (k == JX_GEMM_AVX512)
    gemm_builtin_f64w(&impl_avx512_f64, threaded, ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
  else
    gemm_builtin_f64(k == JX_GEMM_AVX2 ? &impl_avx2_f64 : &impl_portable_f64, threaded, ta, tb, M, N, K, A,
                     lda, B, ldb, C, ldc);
}

/* The thread grid the built-in kernel in use would run M x N x K on with
 * nt threads (tests check the choice for tall, wide and square shapes). */
void jx_cpu_gemm_grid(bool f64, int64_t M, int64_t N, int64_t K, int nt, int64_t grid[2]) {
  jx_gemm_mode k = resolved_mode();
  if (k == JX_GEMM_CBLAS) k = best_builtin();
  int64_t g[2];
  if (!f64 && k == JX_GEMM_AVX512) {
    const job_f32w j = plan_f32w(&impl_avx512_f32, nt, M, N, K);
    g[0] = j.tm, g[1] = j.tn;
  } else if (!f64) {
    const job_f32 j = plan_f32(&impl_portable_f32, nt, M, N, K);
    g[0] = j.tm, g[1] = j.tn;
  } else if (k == JX_GEMM_AVX512) {
    const job_f64w j = plan_f64w(&impl_avx512_f64, nt, M, N, K);
    g[0] = j.tm, g[1] = j.tn;
  } else {
    const job_f64 j = plan_f64(&impl_portable_f64, nt, M, N, K);
    g[0] = j.tm, g[1] = j.tn;
  }
  grid[0] = g[0], grid[1] = g[1];
}

/* ------------------------------------------------------------- CBLAS */

#if GEMM_HAVE_CBLAS
/* BLAS insists on ld >= the row length even where the ld is never used (a
 * single row); normalize those, and report whether the call is expressible
 * in CBLAS's int-sized arguments. */
static bool fix_ld(int64_t *ld, int64_t rowlen, int64_t nrows) {
  if (*ld < rowlen && nrows <= 1) *ld = rowlen;
  if (*ld < 1) *ld = 1;
  return *ld >= rowlen && *ld <= INT_MAX;
}

static bool gemm_cblas1(jx_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A,
                        int64_t lda, const void *B, int64_t ldb, void *C, int64_t ldc) {
  if (M > INT_MAX || N > INT_MAX || K > INT_MAX) return false;
  if (!fix_ld(&lda, ta ? M : K, ta ? K : M) || !fix_ld(&ldb, tb ? K : N, tb ? N : K) || !fix_ld(&ldc, N, M))
    return false;
  const enum CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans;
  const enum CBLAS_TRANSPOSE opb = tb ? CblasTrans : CblasNoTrans;
  if (dt == JX_F32)
    cblas_sgemm(CblasRowMajor, opa, opb, (int)M, (int)N, (int)K, 1.0f, A, (int)lda, B, (int)ldb, 0.0f, C,
                (int)ldc);
  else
    cblas_dgemm(CblasRowMajor, opa, opb, (int)M, (int)N, (int)K, 1.0, A, (int)lda, B, (int)ldb, 0.0, C,
                (int)ldc);
  return true;
}

/* jx keeps one thread pool per process: OpenBLAS runs single-threaded (its
 * own pool's idle threads spin for ~0.1 s after each call and would fight
 * jx's) and large products are split into slabs over jx's pool. */
void openblas_set_num_threads(int n) __attribute__((weak));
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_single_thread(void) {
  if (openblas_set_num_threads) openblas_set_num_threads(1);
}

typedef struct {
  jx_dtype dt;
  bool ta, tb, by_rows;
  int64_t M, N, K, lda, ldb, ldc, step;
  const char *A, *B;
  char *C;
  atomic_bool failed;
  jx_cpu_rows_fn epi; /* by_rows only: finish each slab's rows */
  void *epi_ctx;
} slab_job;

static void slab_task(void *ctx, int64_t lo, int64_t hi) {
  slab_job *j = ctx;
  const int64_t es = (int64_t)dt_size(j->dt);
  for (int64_t s = lo; s < hi; s++) {
    int64_t a = s * j->step, n = min64(j->step, (j->by_rows ? j->M : j->N) - a);
    bool ok;
    if (j->by_rows) {
      ok = gemm_cblas1(j->dt, j->ta, j->tb, n, j->N, j->K, j->A + (j->ta ? a : a * j->lda) * es, j->lda, j->B,
                       j->ldb, j->C + a * j->ldc * es, j->ldc);
      if (ok && j->epi) j->epi(j->epi_ctx, a * j->N, (a + n) * j->N);
    } else {
      ok = gemm_cblas1(j->dt, j->ta, j->tb, j->M, n, j->K, j->A, j->lda, j->B + (j->tb ? a * j->ldb : a) * es,
                       j->ldb, j->C + a * es, j->ldc);
      for (int64_t r = 0; ok && j->epi && r < j->M; r++) j->epi(j->epi_ctx, r * j->N + a, r * j->N + a + n);
    }
    if (!ok) atomic_store(&j->failed, true);
  }
}

/* Slabs along the longer of M and N: each thread packs only its share of
 * the operand that is split (a row split of 128 x 512 x 1296 would have both
 * threads pack all of B). An epilogue runs on each slab as soon as it is
 * made (columns: row by row); then here (true) or is left to the caller
 * (false: *epi_done says). */
static bool gemm_cblas(jx_dtype dt, bool threaded, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                       const void *A, int64_t lda, const void *B, int64_t ldb, void *C, int64_t ldc,
                       jx_cpu_rows_fn epi, void *epi_ctx, bool *epi_done) {
  pthread_once(&blas_once, blas_single_thread);
  const int nt = threaded ? jx_cpu_num_threads() : 1;
  if (nt == 1 || M * N * K < GEMM_MIN_TASK_WORK * nt || (M < 32 && N < 32))
    return gemm_cblas1(dt, ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
  bool by_rows = M >= N;
  int64_t len = by_rows ? M : N, step = round_up(cdiv(len, nt), 16);
  slab_job j = {dt, ta, tb, by_rows, M, N, K, lda, ldb, ldc, step, A, B, C, false, epi, epi_ctx};
  jx_cpu_parallel_for(cdiv(len, step), 1, slab_task, &j);
  const bool ok = !atomic_load(&j.failed); /* on failure the caller recomputes C, then finishes it */
  if (epi_done) *epi_done = ok && epi;
  return ok;
}
#endif

/* ------------------------------------------------ vector-shaped products */
/* M == 1 or N == 1 (a batch-1 layer, a matrix-vector product): packing
 * would copy the whole matrix to use it once, and the register tile would
 * compute 6 (M = 1) or 32 (N = 1) times the useful products. Instead each
 * output is a dot product of two contiguous runs, or the output row is
 * a sum of scaled contiguous rows (axpy), whichever the layout gives:
 *   dots: out[r * os] = x[r * ldx + 0..K) . v[0..K), for rows r in [lo, hi)
 *   axpy: out[n * os] = sum_k v[k * vs] * y[k * ldy + n], n in [lo, hi)
 * PS partial sums (a few vector registers' worth) keep the dot loop free of
 * a serial dependence, so the compiler vectorizes it without reassociating
 * a reduction. Threads take ranges of rows (dots) or columns (axpy). */
#define DEF_VEC(SUF, T)                                                                                      \
  typedef struct {                                                                                           \
    bool axpy;                                                                                               \
    int64_t K, ld, vs, os;                                                                                   \
    const T *x, *v;                                                                                          \
    T *out;                                                                                                  \
  } vec_job_##SUF;                                                                                           \
  static void vec_task_##SUF(void *ctx, int64_t lo, int64_t hi) {                                            \
    enum { PS = 128 / sizeof(T) };                                                                           \
    const vec_job_##SUF *j = ctx;                                                                            \
    const int64_t K = j->K;                                                                                  \
    if (j->axpy) { /* os: 1, or ldc for a strided output column (N == 1, ta) */                              \
      T *o = j->out;                                                                                         \
      const int64_t os = j->os;                                                                              \
      for (int64_t n = lo; n < hi; n++) o[n * os] = 0;                                                       \
      for (int64_t k = 0; k < K; k++) {                                                                      \
        const T a = j->v[k * j->vs], *y = j->x + k * j->ld;                                                  \
        if (os == 1)                                                                                         \
          for (int64_t n = lo; n < hi; n++) o[n] += a * y[n];                                                \
        else                                                                                                 \
          for (int64_t n = lo; n < hi; n++) o[n * os] += a * y[n];                                           \
      }                                                                                                      \
      return;                                                                                                \
    }                                                                                                        \
    for (int64_t r = lo; r < hi; r++) {                                                                      \
      const T *x = j->x + r * j->ld, *v = j->v;                                                              \
      T s[PS] = {0}, t = 0;                                                                                  \
      int64_t k = 0;                                                                                         \
      for (; k + PS <= K; k += PS)                                                                           \
        for (int l = 0; l < PS; l++) s[l] += x[k + l] * v[k + l];                                            \
      for (; k < K; k++) t += x[k] * v[k];                                                                   \
      for (int l = 0; l < PS; l++) t += s[l];                                                                \
      j->out[r * j->os] = t;                                                                                 \
    }                                                                                                        \
  }
DEF_VEC(f32, float)
DEF_VEC(f64, double)

/* Runs M == 1 or N == 1 (K >= 2) unpacked; false when the layout has no
 * contiguous run to use (then the blocked path takes it). v, when it must
 * be gathered from a strided column, goes through a K-element buffer. */
static bool gemm_vec(jx_dtype dt, bool threaded, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                     const void *A, int64_t lda, const void *B, int64_t ldb, void *C, int64_t ldc) {
  const size_t es = dt_size(dt);
  bool axpy;
  int64_t rows, ld, vs, os;
  const void *x, *v;
  if (N == 1) { /* c[i] = op(A)[i, :] . op(B)[:, 0] */
    axpy = ta, x = A, ld = lda, v = B, vs = tb ? 1 : ldb, rows = M, os = ldc;
  } else { /* M == 1: c[j] = op(A)[0, :] . op(B)[:, j] */
    axpy = !tb, x = B, ld = ldb, v = A, vs = ta ? lda : 1, rows = N, os = 1;
  }
  void *buf = NULL;
  if (!axpy && vs != 1) { /* a strided vector: gather it (K values) */
    if (!(buf = jx_malloc((size_t)K * es))) return false;
    for (int64_t k = 0; k < K; k++) memcpy((char *)buf + k * es, (const char *)v + k * vs * es, es);
    v = buf, vs = 1;
  }
  const int64_t grain = 1 + GEMM_MIN_TASK_WORK / K;
  if (dt == JX_F32) {
    vec_job_f32 j = {axpy, K, ld, vs, os, x, v, C};
    if (threaded)
      jx_cpu_parallel_for(rows, axpy ? max64(grain, 64) : grain, vec_task_f32, &j);
    else
      vec_task_f32(&j, 0, rows);
  } else {
    vec_job_f64 j = {axpy, K, ld, vs, os, x, v, C};
    if (threaded)
      jx_cpu_parallel_for(rows, axpy ? max64(grain, 64) : grain, vec_task_f64, &j);
    else
      vec_task_f64(&j, 0, rows);
  }
  jx_free(buf);
  return true;
}

/* ------------------------------------------------------- outer products */
/* K == 1: C[i, j] = A[i] * B[j]. Per-example weight gradients under vmap
 * are exactly this; a direct loop writes C once (no packing, no beta pass).
 * When the output is far bigger than the caches (hundreds of MB for a
 * batch of per-example gradients) nobody reads it back soon: rows are then
 * written with streaming stores, which skip the read-for-ownership a normal
 * store pays, so the loop moves half the bytes. */
enum { OUTER_STREAM_MIN_BYTES = 32 << 20 }; /* and streamed by the working-set rule (cache_info.c) */

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_STREAM 1
static int probe_avx(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx");
}
static int cpu_has_avx(void) {
  static atomic_int c = -1;
  return cpu_feature(&c, probe_avx);
}
/* c[n] = a * b[n] (b contiguous), streamed once c is 32-byte aligned */
__attribute__((target("avx"))) static void stream_row_f32(float *c, float a, const float *b, int64_t N) {
  int64_t n = 0;
  for (; n < N && ((uintptr_t)(c + n) & 31); n++) c[n] = a * b[n];
  const __m256 va = _mm256_set1_ps(a);
  for (; n + 8 <= N; n += 8) _mm256_stream_ps(c + n, _mm256_mul_ps(va, _mm256_loadu_ps(b + n)));
  for (; n < N; n++) c[n] = a * b[n];
}
__attribute__((target("avx"))) static void stream_row_f64(double *c, double a, const double *b, int64_t N) {
  int64_t n = 0;
  for (; n < N && ((uintptr_t)(c + n) & 31); n++) c[n] = a * b[n];
  const __m256d va = _mm256_set1_pd(a);
  for (; n + 4 <= N; n += 4) _mm256_stream_pd(c + n, _mm256_mul_pd(va, _mm256_loadu_pd(b + n)));
  for (; n < N; n++) c[n] = a * b[n];
}
/* streamed stores are weakly ordered: fence before the pool reports done */
static void stream_fence(void) { _mm_sfence(); }
#else
#define HAVE_STREAM 0
static int cpu_has_avx(void) { return 0; }
static void stream_row_f32(float *c, float a, const float *b, int64_t N) {
  (void)c, (void)a, (void)b, (void)N;
}
static void stream_row_f64(double *c, double a, const double *b, int64_t N) {
  (void)c, (void)a, (void)b, (void)N;
}
static void stream_fence(void) {}
#endif

#define DEF_OUTER(SUF, T)                                                                                    \
  typedef struct {                                                                                           \
    bool ta, tb, stream;                                                                                     \
    int64_t N, lda, ldb, ldc;                                                                                \
    const T *A, *B;                                                                                          \
    T *C;                                                                                                    \
  } outer_job_##SUF;                                                                                         \
  static void outer_task_##SUF(void *ctx, int64_t lo, int64_t hi) {                                          \
    const outer_job_##SUF *j = ctx;                                                                          \
    for (int64_t i = lo; i < hi; i++) {                                                                      \
      const T a = j->A[j->ta ? i : i * j->lda];                                                              \
      T *c = j->C + i * j->ldc;                                                                              \
      if (j->stream) {                                                                                       \
        stream_row_##SUF(c, a, j->B, j->N);                                                                  \
      } else if (!j->tb) {                                                                                   \
        for (int64_t n = 0; n < j->N; n++) c[n] = a * j->B[n];                                               \
      } else {                                                                                               \
        for (int64_t n = 0; n < j->N; n++) c[n] = a * j->B[n * j->ldb];                                      \
      }                                                                                                      \
    }                                                                                                        \
    if (j->stream) stream_fence();                                                                           \
  }
DEF_OUTER(f32, float)
DEF_OUTER(f64, double)

/* out_bytes: the size of the whole result this product is part of (a
 * batched call's members stream when the batch is big) */
static void gemm_outer(jx_dtype dt, bool threaded, bool ta, bool tb, int64_t M, int64_t N, const void *A,
                       int64_t lda, const void *B, int64_t ldb, void *C, int64_t ldc, int64_t out_bytes) {
  int64_t grain = 1 + GEMM_MIN_TASK_WORK / N;
  const bool stream = HAVE_STREAM && !tb && out_bytes >= OUTER_STREAM_MIN_BYTES &&
                      jx_cpu_stream_output(out_bytes, (int64_t)jx_buffer_live_bytes()) && cpu_has_avx();
  if (dt == JX_F32) {
    outer_job_f32 j = {ta, tb, stream, N, lda, ldb, ldc, A, B, C};
    if (threaded)
      jx_cpu_parallel_for(M, grain, outer_task_f32, &j);
    else
      outer_task_f32(&j, 0, M);
  } else {
    outer_job_f64 j = {ta, tb, stream, N, lda, ldb, ldc, A, B, C};
    if (threaded)
      jx_cpu_parallel_for(M, grain, outer_task_f64, &j);
    else
      outer_task_f64(&j, 0, M);
  }
}

/* ------------------------------------------------------------ integers */

typedef struct {
  jx_dtype dt;
  bool ta, tb;
  int64_t N, K, lda, ldb, ldc;
  const void *A, *B;
  void *C;
} int_job;

/* i-k-j so the inner loop streams a row of B and of C. Products and sums
 * wrap in the unsigned type UT, at least as wide as T (signed overflow
 * would be UB, and uint16_t * uint16_t promotes to int and can overflow
 * it), stored back as T: two's complement wrapping modulo T's width is
 * what XLA gives for integer dot, and sums modulo 2^32 or 2^64 reduce
 * to the same residue modulo 2^8 or 2^16. */
#define DEFINE_INT_ROWS(SUF, T, UT)                                                                          \
  static void int_rows_##SUF(const int_job *j, int64_t i0, int64_t i1) {                                     \
    const T *A = j->A, *B = j->B;                                                                            \
    for (int64_t i = i0; i < i1; i++) {                                                                      \
      T *c = (T *)j->C + i * j->ldc;                                                                         \
      for (int64_t n = 0; n < j->N; n++) c[n] = 0;                                                           \
      for (int64_t k = 0; k < j->K; k++) {                                                                   \
        const UT a = (UT)(j->ta ? A[k * j->lda + i] : A[i * j->lda + k]);                                    \
        if (!j->tb) {                                                                                        \
          const T *b = B + k * j->ldb;                                                                       \
          for (int64_t n = 0; n < j->N; n++) c[n] = (T)((UT)c[n] + a * (UT)b[n]);                            \
        } else {                                                                                             \
          for (int64_t n = 0; n < j->N; n++) c[n] = (T)((UT)c[n] + a * (UT)B[n * j->ldb + k]);               \
        }                                                                                                    \
      }                                                                                                      \
    }                                                                                                        \
  }

/* the integer dtypes dot_general computes here, each with its row kernel */
#define INT_DOT_TYPES(X)                                                                                     \
  X(JX_I8, i8, int8_t, uint32_t)                                                                             \
  X(JX_U8, u8, uint8_t, uint32_t)                                                                            \
  X(JX_I16, i16, int16_t, uint32_t)                                                                          \
  X(JX_U16, u16, uint16_t, uint32_t)                                                                         \
  X(JX_I32, i32, int32_t, uint32_t)                                                                          \
  X(JX_U32, u32, uint32_t, uint32_t)                                                                         \
  X(JX_I64, i64, int64_t, uint64_t)                                                                          \
  X(JX_U64, u64, uint64_t, uint64_t)
#define INT_DEF(D, SUF, T, UT) DEFINE_INT_ROWS(SUF, T, UT)
INT_DOT_TYPES(INT_DEF)
#undef INT_DEF

/* bool: C[i,j] = any_k (A[i,k] && B[k,j]), the semiring JAX's dot uses. */
static void bool_rows(const int_job *j, int64_t i0, int64_t i1) {
  const uint8_t *A = j->A, *B = j->B;
  for (int64_t i = i0; i < i1; i++) {
    uint8_t *c = (uint8_t *)j->C + i * j->ldc;
    memset(c, 0, (size_t)j->N);
    for (int64_t k = 0; k < j->K; k++) {
      if (!(j->ta ? A[k * j->lda + i] : A[i * j->lda + k])) continue;
      for (int64_t n = 0; n < j->N; n++) c[n] |= (j->tb ? B[n * j->ldb + k] : B[k * j->ldb + n]) != 0;
    }
  }
}

static void int_task(void *ctx, int64_t lo, int64_t hi) {
  const int_job *j = ctx;
  switch (j->dt) {
#define INT_CASE(D, SUF, T, UT)                                                                              \
  case D: int_rows_##SUF(j, lo, hi); break;
    INT_DOT_TYPES(INT_CASE)
#undef INT_CASE
    case JX_BOOL: bool_rows(j, lo, hi); break;
    default: break;
  }
}

/* ------------------------------------------------------------- entries */

static void gemm_one(jx_dtype dt, bool threaded, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                     const void *A, int64_t lda, const void *B, int64_t ldb, void *C, int64_t ldc,
                     int64_t out_bytes, jx_cpu_rows_fn epi, void *epi_ctx, bool *epi_done) {
  (void)epi, (void)epi_ctx, (void)epi_done; /* only the CBLAS path runs an epilogue inside */
  if (M <= 0 || N <= 0) return;
  if (K <= 0) { /* empty sum; row by row since ldc may exceed N */
    const size_t row = (size_t)N * dt_size(dt);
    for (int64_t i = 0; i < M; i++) memset((char *)C + (size_t)(i * ldc) * dt_size(dt), 0, row);
    return;
  }
  if (dt == JX_F32 || dt == JX_F64) {
    const jx_gemm_mode mode = resolved_mode();
    if (K == 1) {
      gemm_outer(dt, threaded, ta, tb, M, N, A, lda, B, ldb, C, ldc, out_bytes);
      return;
    }
    /* before CBLAS too: OpenBLAS 0.3.21's sgemm packs these (2000 x 2000 x 1:
       1.38 ms against 0.58 here, 1 x 1296 x 512: 0.121 against 0.084) */
    if ((M == 1 || N == 1) && gemm_vec(dt, threaded, ta, tb, M, N, K, A, lda, B, ldb, C, ldc)) return;
#if GEMM_HAVE_CBLAS
    if (mode == JX_GEMM_CBLAS &&
        gemm_cblas(dt, threaded, ta, tb, M, N, K, A, lda, B, ldb, C, ldc, epi, epi_ctx, epi_done))
      return;
#endif
    /* CBLAS could not take it (int-sized arguments): the best built-in */
    gemm_builtin(mode == JX_GEMM_CBLAS ? best_builtin() : mode, dt, threaded, ta, tb, M, N, K, A, lda, B, ldb,
                 C, ldc);
    return;
  }
  int_job j = {dt, ta, tb, N, K, lda, ldb, ldc, A, B, C};
  if (threaded)
    jx_cpu_parallel_for(M, 1 + GEMM_MIN_TASK_WORK / (N * K), int_task, &j);
  else
    int_task(&j, 0, M);
}

void jx_cpu_gemm(jx_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A, int64_t lda,
                 const void *B, int64_t ldb, void *C, int64_t ldc) {
  gemm_one(dt, true, ta, tb, M, N, K, A, lda, B, ldb, C, ldc, M * N * (int64_t)dt_size(dt), NULL, NULL, NULL);
}

typedef struct {
  jx_dtype dt;
  bool ta, tb;
  int64_t M, N, K, lda, sa, ldb, sb, ldc, sc;
  const char *A, *B;
  char *C;
  int64_t out_bytes;
} batch_job;

static void batch_task(void *ctx, int64_t lo, int64_t hi) {
  const batch_job *j = ctx;
  const int64_t es = (int64_t)dt_size(j->dt);
  for (int64_t b = lo; b < hi; b++)
    gemm_one(j->dt, false, j->ta, j->tb, j->M, j->N, j->K, j->A + b * j->sa * es, j->lda,
             j->B + b * j->sb * es, j->ldb, j->C + b * j->sc * es, j->ldc, j->out_bytes, NULL, NULL, NULL);
}

void jx_cpu_gemm_batched(jx_dtype dt, bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K,
                         const void *A, int64_t lda, int64_t sa, const void *B, int64_t ldb, int64_t sb,
                         void *C, int64_t ldc, int64_t sc) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  const int64_t es = (int64_t)dt_size(dt);
  const int64_t work = M * N * (K > 0 ? K : 1);
  /* Threading over the batch needs no duplicated packing, so it is the
   * first choice when there are enough members to balance, or when members
   * are too small to split. Big members of a short batch thread internally
   * instead. (CBLAS runs single-threaded on jx's pool, so it is the same.) */
  const int nt = jx_cpu_num_threads();
  const bool small = work < GEMM_MIN_TASK_WORK * nt;
  const bool many = batch >= 4 * (int64_t)nt;
  if (batch == 1 || nt == 1 || !(small || many)) {
    for (int64_t b = 0; b < batch; b++)
      gemm_one(dt, true, ta, tb, M, N, K, (const char *)A + b * sa * es, lda, (const char *)B + b * sb * es,
               ldb, (char *)C + b * sc * es, ldc, batch * M * N * es, NULL, NULL, NULL);
    return;
  }
  batch_job j = {dt, ta, tb, M, N, K, lda, sa, ldb, sb, ldc, sc, A, B, C, batch * M * N * es};
  jx_cpu_parallel_for(batch, 1 + GEMM_MIN_TASK_WORK / work, batch_task, &j);
}

/* ------------------------------------------------------------- epilogue */
typedef struct {
  jx_cpu_rows_fn epi;
  void *ctx;
} epi_job;
static void epi_task(void *ctx, int64_t lo, int64_t hi) {
  const epi_job *j = ctx;
  j->epi(j->ctx, lo, hi);
}

void jx_cpu_gemm_epilogue(jx_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A,
                          int64_t lda, const void *B, int64_t ldb, void *C, jx_cpu_rows_fn epi, void *ctx) {
  if (M <= 0 || N <= 0) return;
  bool done = false;
  gemm_one(dt, true, ta, tb, M, N, K, A, lda, B, ldb, C, N, M * N * (int64_t)dt_size(dt), epi, ctx, &done);
  if (done) return;
  epi_job j = {epi, ctx}; /* the product ran without it: finish C over the pool */
  jx_cpu_parallel_for(M * N, 16384, epi_task, &j);
}
