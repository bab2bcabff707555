/* Internals of the built-in GEMM (gemm.c, gemm_avx2.c): the packed-panel
 * formats the micro-kernels read, their signature, and a hook that tests
 * and benchmarks use to pick the path in-process.
 *
 * Packed formats (Goto/BLIS). For a block of kc steps along K:
 *  - A is packed in micro-panels of MR rows: panel p holds, for k = 0..kc-1,
 *    the MR values op(A)[p*MR + r, k] (r = 0..MR-1) contiguously;
 *  - B is packed in micro-panels of NR columns: panel q holds, for each k,
 *    the NR values op(B)[k, q*NR + c] contiguously.
 * Rows/columns past the matrix edge are packed as zeros, so a micro-kernel
 * always computes a full MR x NR tile and only the store is clipped.
 * Both kernels of a dtype (AVX2 and portable) share MR/NR, hence the packing
 * and the whole driver. */
#ifndef JX_CPU_GEMM_KERNEL_H
#define JX_CPU_GEMM_KERNEL_H

#include <stdbool.h>
#include <stdint.h>

/* Register tile: 6 rows x 2 vectors of 8 floats / 4 doubles, i.e. 12 ymm
 * accumulators + 2 B vectors + 1 broadcast A = 15 of the 16 ymm registers. */
#define JX_GEMM_MR      6
#define JX_GEMM_NR_F32  16
#define JX_GEMM_NR_F64  8
/* The AVX-512 kernels' tile: the same 6 rows, 2 zmm per row, and a 12-row
 * tile over two adjacent A panels. Their panels are packed at this NR by a
 * second instantiation of the same driver. */
#define JX_GEMM_NRW_F32 32
#define JX_GEMM_NRW_F64 16

/* c[0..m) x [0..n) (row stride ldc) = (acc ? c : 0) + a_panel · b_panel over
 * kc steps; m <= MR, n <= NR. a and b are packed panels as described above. */
typedef void (*jx_gemm_ukr_f32)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int acc,
                                int m, int n);
typedef void (*jx_gemm_ukr_f64)(int64_t kc, const double *a, const double *b, double *c, int64_t ldc, int acc,
                                int m, int n);

/* Pack op(B)[0..kc) x [0..nc) of a transposed B (op(B)[k,j] = b[j*ldb + k])
 * into NR-column micro-panels at bp. */
typedef void (*jx_gemm_pack_bt_f32)(int64_t kc, int64_t nc, const float *b, int64_t ldb, float *bp);
typedef void (*jx_gemm_pack_bt_f64)(int64_t kc, int64_t nc, const double *b, int64_t ldb, double *bp);

/* AVX2/FMA versions; only call them when the CPU supports both. */
void jx_gemm_ukr_avx2_f32(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int acc, int m,
                          int n);
void jx_gemm_ukr_avx2_f64(int64_t kc, const double *a, const double *b, double *c, int64_t ldc, int acc,
                          int m, int n);
void jx_gemm_pack_bt_avx2_f32(int64_t kc, int64_t nc, const float *b, int64_t ldb, float *bp);
void jx_gemm_pack_bt_avx2_f64(int64_t kc, int64_t nc, const double *b, int64_t ldb, double *bp);

/* AVX-512F versions (NR = JX_GEMM_NRW_*); only call them when the CPU and
 * the OS support AVX-512F. */
void jx_gemm_ukr_avx512_f32(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int acc, int m,
                            int n);
void jx_gemm_ukr_avx512_f64(int64_t kc, const double *a, const double *b, double *c, int64_t ldc, int acc,
                            int m, int n);
/* The AVX-512 12-row tile: rows [0, 12) of C from the two A panels at a
 * and a + JX_GEMM_MR * kc (always full), columns [0, n), n <= NR. */
typedef void (*jx_gemm_ukr12_f32)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int acc,
                                  int n);
typedef void (*jx_gemm_ukr12_f64)(int64_t kc, const double *a, const double *b, double *c, int64_t ldc,
                                  int acc, int n);
void jx_gemm_ukr12_avx512_f32(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int acc,
                              int n);
void jx_gemm_ukr12_avx512_f64(int64_t kc, const double *a, const double *b, double *c, int64_t ldc, int acc,
                              int n);
void jx_gemm_pack_bt_avx512_f32(int64_t kc, int64_t nc, const float *b, int64_t ldb, float *bp);
void jx_gemm_pack_bt_avx512_f64(int64_t kc, int64_t nc, const double *b, int64_t ldb, double *bp);

/* Small-M products: `rows` (1..12) rows of C, columns [0, n), n at most
 * JX_GEMM_NRW_F32 / _F64, from an A panel packed `rows` values per k and B
 * read in place (row-major, row stride ldb); acc as above. */
void jx_gemm_small_avx512_f32(int rows, int64_t kc, const float *a, const float *b, int64_t ldb, float *c,
                              int64_t ldc, int acc, int n);
void jx_gemm_small_avx512_f64(int rows, int64_t kc, const double *a, const double *b, int64_t ldb, double *c,
                              int64_t ldc, int acc, int n);

/* Which implementation f32/f64 GEMM uses. AUTO: CBLAS when built with it
 * and it was measured faster than jx's best built-in kernel for this CPU
 * (gemm.c auto_mode: never with AVX-512; with AVX2/FMA when OpenBLAS runs
 * AVX2 or AVX-512 kernels; always on other CPUs), otherwise that kernel.
 * Initialised from env JX_GEMM ("cblas", "builtin", "avx512", "avx2",
 * "portable") on first use. Forcing a kernel the CPU lacks, or CBLAS in a
 * build without it, falls back to the best available. */
typedef enum {
  JX_GEMM_AUTO,
  JX_GEMM_CBLAS,
  JX_GEMM_BUILTIN, /* best built-in: AVX-512, else AVX2, else portable */
  JX_GEMM_AVX2,
  JX_GEMM_PORTABLE,
  JX_GEMM_AVX512,
} jx_gemm_mode;
void jx_cpu_gemm_set_mode(jx_gemm_mode mode);
/* Tests: which loop nest the AVX-512 kernels run (gemm.c's header): 1 the
 * 12-row one, 0 the first one, -1 (default) chosen by the product's size. */
void jx_cpu_gemm_force_nest(int nest);
/* Tests: run every threaded product on a tm x tn thread grid (clipped to
 * the tiles there are; 0, 0: chosen by the product's shape, the default),
 * and the grid the kernel in use chooses for M x N x K on nt threads
 * (grid[0] = tm, grid[1] = tn). */
void jx_cpu_gemm_force_grid(int tm, int tn);
/* Tests and benchmarks: 0 keeps small-M products (M <= 32, AVX-512, no tb)
 * on the blocked path; -1 (default) lets them take the unpacked-B one. */
void jx_cpu_gemm_force_small(int on);
void jx_cpu_gemm_grid(bool f64, int64_t M, int64_t N, int64_t K, int nt, int64_t grid[2]);

/* [BF16] The thread grid (gemm.c choose_grid) for M x N in units of um rows
 * and un columns on at most p threads; mcb, ncb: the loop nest's A and B
 * blocks. */
void jx_cpu_gemm_choose_grid(int64_t M, int64_t um, int64_t N, int64_t un, int64_t p, int64_t mcb,
                             int64_t ncb, int64_t *tm, int64_t *tn);
/* Whether the CPU (and OS) run AVX512-BF16 (CPUID, once). */
bool jx_cpu_has_avx512bf16(void);
/* The AVX512-BF16 or (amx) AMX-BF16 GEMM (gemm_bf16.c): C[M, N] (f32, contiguous) = op(A) .
 * op(B) of contiguous bf16 operands ([M, K] or [K, M] when ta; [K, N] or
 * [N, K] when tb); threaded over the pool when `threaded`. Only call it
 * when jx_cpu_has_avx512bf16(). false: out of memory for its packing. */
bool jx_cpu_gemm_bf16(bool amx, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const uint16_t *A,
                      const uint16_t *B, float *C, bool threaded);
/* Whether the CPU has AMX-BF16 and the OS granted this process the tile
 * state (asked once, arch_prctl on Linux). amx: jx_cpu_gemm_bf16 runs on
 * the AMX tiles; only pass true when this says yes. */
bool jx_cpu_has_amx_bf16(void);
/* Whether CPUID names AMD as the vendor (the bf16 GEMM's AUTO choice) */
bool jx_cpu_is_amd(void);
/* Tests and benchmarks: which bf16 GEMM runs (gemm_half.c): -1 (default)
 * env JX_GEMM_BF16's choice, else AUTO's; or one of these (a kernel the CPU
 * lacks falls back to widening). */
enum { JX_HALF_WIDEN = 0, JX_HALF_AVX512BF16 = 1, JX_HALF_AMX = 2, JX_HALF_AUTO = 3 };
void jx_cpu_gemm_force_half(int mode);

#endif
