/* CPU kernels: the eager implementations behind the primitives' impl rules,
 * plus the thread pool and GEMM. Kernels see raw buffers, dtypes and shapes
 * only: they know nothing of values, traces or the compiler.
 *
 * Conventions
 *  - Outputs are contiguous row-major; inputs are described by a base
 *    pointer and per-dimension strides in *elements* over the output's
 *    shape (stride 0 = broadcast along that dim, negative = walk backwards).
 *  - bool is one byte holding 0 or 1.
 *  - Every kernel is written once as a template (macros) and instantiated
 *    per dtype; a portable scalar path exists for each.
 *  - Large kernels split their range over the pool (jx_cpu_parallel_for). */
#ifndef JX_CPU_KERNELS_H
#define JX_CPU_KERNELS_H

#include "core/alloc.h" /* scratch memory goes through jx's allocator too */
#include "jx.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* An internal invariant of a kernel (a dtype or op index the table must
 * have): the ops above check user input and return error values, so a
 * failure here is a bug in jx, reported with its place. */
#define KCHECK(c)                                                                                            \
  do {                                                                                                       \
    if (!(c)) {                                                                                              \
      fprintf(stderr, "jx: %s:%d: kernel invariant failed: %s\n", __FILE__, __LINE__, #c);                   \
      abort();                                                                                               \
    }                                                                                                        \
  } while (0)

/* ------------------------------------------------------------ threads */
/* One pool per process, sized by JX_NUM_THREADS (default: online cores).
 * fn(ctx, lo, hi) is called on disjoint chunks covering [0, n); chunks are
 * at least `grain` long. Runs inline when n < 2*grain or one thread. Safe to
 * call from any thread; nested calls from inside a worker run inline. */
typedef void (*jx_cpu_range_fn)(void *ctx, int64_t lo, int64_t hi);
void jx_cpu_parallel_for(int64_t n, int64_t grain, jx_cpu_range_fn fn, void *ctx);
int jx_cpu_num_threads(void);
/* This thread's parallel loops use at most n threads (a device's group,
 * dist/local.c); n < 1: no cap. Returns the cap it replaces (0: none). */
int jx_cpu_set_thread_cap(int n);

/* The cache hierarchy (sysfs, read once; typical sizes where unreadable):
 * bytes of L1d, L2 and L3, and the CPUs that share the L3. */
typedef struct {
  int64_t l1d, l2, l3;
  int l3_cpus;
  bool l3_from_sysfs; /* false: l3 is a guess */
} jx_cpu_cache_sizes;
const jx_cpu_cache_sizes *jx_cpu_caches(void);
/* Streaming stores (cache_info.c says why): an output of out_bytes
 * written while working_set bytes are in use is streamed when it is at
 * least 4 MiB and the working set exceeds jx_cpu_cache_budget(), the bytes
 * the last-level cache keeps from one kernel to the next (from sysfs, or
 * measured by jx_cpu_probe_cache_budget, cache_probe.c). JX_STREAM_MIN_BYTES
 * (jx_cpu_stream_min_bytes; 0 when unset) forces streaming from a size. */
bool jx_cpu_stream_output(int64_t out_bytes, int64_t working_set);
int64_t jx_cpu_cache_budget(void);
int64_t jx_cpu_stream_min_bytes(void);
int64_t jx_cpu_probe_cache_budget(void);
void jx_cpu_set_num_threads(int n);
/* If this thread runs on `cpu`, move it to another CPU it may run on (its
 * affinity mask is left as it was). A woken worker calls it with the
 * dispatcher's CPU (threads.c says why). */
void jx_cpu_leave_cpu(int cpu);

/* --------------------------------------------------------- elementwise */
/* The dtype classes of the op list (core/elementwise.def): as masks of
 * dtype bits, and as lists X(suffix, C type, ...) to instantiate kernels. */
/* (clang-format 14 finds no fixed point for these lists) */
// clang-format off
#define JX_DTS_HALF     ((1u << JX_BF16) | (1u << JX_F16))
#define JX_DTS_FLOAT    ((1u << JX_F32) | (1u << JX_F64) | JX_DTS_HALF)
#define JX_DTS_INT      ((1u << JX_I32) | (1u << JX_I64) | (1u << JX_U32) | (1u << JX_I8) | (1u << JX_U8) | \
                         (1u << JX_I16) | (1u << JX_U16) | (1u << JX_U64))
#define JX_DTS_NUM      (JX_DTS_INT | JX_DTS_FLOAT)
#define JX_DTS_BOOL_INT ((1u << JX_BOOL) | JX_DTS_INT)
#define JX_DTS_ALL      (JX_DTS_NUM | (1u << JX_BOOL))
#define JX_DT_b         JX_BOOL /* suffix -> dtype, for tables */
#define JX_DT_i32       JX_I32
#define JX_DT_i64       JX_I64
#define JX_DT_u32       JX_U32
#define JX_DT_f32       JX_F32
#define JX_DT_f64       JX_F64
#define JX_DT_bf16      JX_BF16
#define JX_DT_f16       JX_F16
#define JX_DT_i8        JX_I8
#define JX_DT_u8        JX_U8
#define JX_DT_i16       JX_I16
#define JX_DT_u16       JX_U16
#define JX_DT_u64       JX_U64
/* bf16/f16 are their 16-bit patterns (uint16_t): their kernels call the
 * scalar functions (which widen to f32 and round once), never C
 * arithmetic. Kernels that compute with C operators on T use the _NATIVE
 * lists, which leave them out. */
#define JX_FOR_FLOAT_NATIVE(X, ...) X(f32, float, __VA_ARGS__) X(f64, double, __VA_ARGS__)
#define JX_FOR_HALF(X, ...)         X(bf16, uint16_t, __VA_ARGS__) X(f16, uint16_t, __VA_ARGS__)
#define JX_FOR_FLOAT(X, ...)        JX_FOR_FLOAT_NATIVE(X, __VA_ARGS__) JX_FOR_HALF(X, __VA_ARGS__)
#define JX_FOR_INT(X, ...)                                                                          \
  X(i32, int32_t, __VA_ARGS__) X(i64, int64_t, __VA_ARGS__) X(u32, uint32_t, __VA_ARGS__)           \
  X(i8, int8_t, __VA_ARGS__) X(u8, uint8_t, __VA_ARGS__) X(i16, int16_t, __VA_ARGS__)               \
  X(u16, uint16_t, __VA_ARGS__) X(u64, uint64_t, __VA_ARGS__)
#define JX_FOR_NUM(X, ...)          JX_FOR_INT(X, __VA_ARGS__) JX_FOR_FLOAT(X, __VA_ARGS__)
#define JX_FOR_NUM_NATIVE(X, ...)   JX_FOR_INT(X, __VA_ARGS__) JX_FOR_FLOAT_NATIVE(X, __VA_ARGS__)
#define JX_FOR_BOOL_INT(X, ...)     X(b, uint8_t, __VA_ARGS__) JX_FOR_INT(X, __VA_ARGS__)
#define JX_FOR_ALL(X, ...)          X(b, uint8_t, __VA_ARGS__) JX_FOR_NUM(X, __VA_ARGS__)
// clang-format on

/* Unary ops (JX_UNARY rows of the op list); y and x have n elements of a
 * dtype the op's row lists. */
typedef enum {
#define JX_UNARY(name, K, dtypes, cheap) JX_CPU_##K,
#include "core/elementwise.def"
#undef JX_UNARY
  JX_CPU_UNARY_COUNT
} jx_cpu_unop;
void jx_cpu_unary(jx_cpu_unop op, jx_dtype dt, int64_t n, const void *x, void *y);

/* Binary ops (JX_BINARY then JX_COMPARE rows). a and b have dtype dt; out
 * has dtype dt, or bool for the comparisons. Integer div truncates toward
 * zero (x/0 gives 0, never a trap); integer pow is exponentiation by
 * squaring (negative exponent: 0, except base 1/-1). max/min propagate
 * NaN. */
typedef enum {
#define JX_BINARY(name, K, dtypes)  JX_CPU_##K,
#define JX_COMPARE(name, K, dtypes) JX_CPU_##K,
#include "core/elementwise.def"
#undef JX_BINARY
#undef JX_COMPARE
  JX_CPU_BINARY_COUNT
} jx_cpu_binop;
/* whether the kernel has op at dtype dt (the row's dtypes) */
bool jx_cpu_unary_has(jx_cpu_unop op, jx_dtype dt);
bool jx_cpu_binary_has(jx_cpu_binop op, jx_dtype dt);
void jx_cpu_binary(jx_cpu_binop op, jx_dtype dt, int ndim, const int64_t *shape, const void *a,
                   const int64_t *astride, const void *b, const int64_t *bstride, void *out);

/* out = pred ? t : f, broadcasting like jx_cpu_binary; pred is bool. */
void jx_cpu_select(jx_dtype dt, int ndim, const int64_t *shape, const void *pred, const int64_t *pstride,
                   const void *t, const int64_t *tstride, const void *f, const int64_t *fstride, void *out);

/* Element conversion with C semantics, except: float->int of NaN gives 0
 * and out-of-range values saturate (no UB); anything->bool is x != 0;
 * to bf16/f16 rounds once to nearest even (scalar_ops.h; f32 <-> f16 by
 * F16C where the CPU has it, with the same bits). */
void jx_cpu_convert(jx_dtype from, jx_dtype to, int64_t n, const void *x, void *y);

/* Scratch for one kernel call, from the array buffers' cache (core/alloc.c):
 * a large block is reused rather than faulted in fresh, which costs more
 * than the work on some VMs (a widened 2000^3 bf16 GEMM spent ~40% of its
 * time in page faults on a Zen 5 guest). *h is what jx_cpu_scratch_free
 * gives back; NULL: out of memory. */
struct jx_buffer;
void *jx_cpu_scratch(size_t nbytes, struct jx_buffer **h);
void jx_cpu_scratch_free(struct jx_buffer *h);

/* Run a kernel in a wider dtype: the nin inputs (n[i] elements of dt
 * each) converted to `wide`, fn run on the copies, its output (nout
 * elements of wide) converted back to dt. How bf16/f16 windows and
 * convolutions compute in f32 and round once (as XLA:CPU after float
 * normalization), and how 8/16-bit integer convolutions compute in i32 (a
 * sum modulo 2^32 has the residue modulo 2^8 or 2^16 that wrapping in
 * the narrow type gives). fn returns 0 or its error code; -1 here is out
 * of memory. */
typedef int (*jx_cpu_wide_fn)(void *ctx, const void *const *in, void *out);
int jx_cpu_run_widened(jx_dtype dt, jx_dtype wide, int nin, const void *const *in, const int64_t *n,
                       void *out, int64_t nout, jx_cpu_wide_fn fn, void *ctx);

/* Fill n elements with v converted to dt. */
void jx_cpu_fill(jx_dtype dt, int64_t n, double v, void *out);

/* ---------------------------------------------------------- reductions */
/* Reduce x (shape[ndim], contiguous) over the dims where reduce[d] is true;
 * y holds the kept dims in order (contiguous). sum: pairwise/blocked
 * summation in the input dtype, so f32 sums of 1e7 elements stay within
 * ~1e-6 relative. max/min propagate NaN; over an empty dim, sum gives 0,
 * max -inf (or the dtype's minimum), min +inf (or the maximum). */
typedef enum { JX_CPU_SUM, JX_CPU_MAX_R, JX_CPU_MIN_R, JX_CPU_REDUCE_COUNT } jx_cpu_redop;
void jx_cpu_reduce(jx_cpu_redop op, jx_dtype dt, int ndim, const int64_t *shape, const bool *reduce,
                   const void *x, void *y);
/* Index of the first max (argmax) / min along `axis`, written as dtype
 * out_dt (i32 or i64). NaN counts as the maximum and the minimum (the first
 * NaN wins), like NumPy. */
void jx_cpu_argreduce(bool is_max, jx_dtype dt, int ndim, const int64_t *shape, int axis, const void *x,
                      jx_dtype out_dt, void *y);

/* -------------------------------------------------------------- layout */
/* out (contiguous, shape[ndim]) = in[offset + sum_d i_d * stride[d]]. One
 * kernel serves transpose, broadcast, slice and reverse. */
void jx_cpu_strided_copy(size_t esize, int ndim, const int64_t *shape, const void *in, int64_t offset,
                         const int64_t *stride, void *out);
/* Inverse direction: out[offset + sum_d i_d * stride[d]] = in[i] (in
 * contiguous over shape). Used for pad and concatenate. */
void jx_cpu_strided_scatter(size_t esize, int ndim, const int64_t *shape, const void *in, void *out,
                            int64_t offset, const int64_t *stride);

/* x viewed as [outer, nx, inner]; out as [outer, nidx, inner]:
 * out[o, j, i] = x[o, idx[j], i]. Indices are already clamped to [0, nx). */
void jx_cpu_gather(size_t esize, int64_t outer, int64_t nx, int64_t inner, const void *x, int64_t nidx,
                   const int64_t *idx, void *out);
/* out (zeroed by the caller) as [outer, nout, inner]: out[o, idx[j], i] += u[o, j, i]. */
void jx_cpu_scatter_add(jx_dtype dt, int64_t outer, int64_t nout, int64_t inner, const void *u, int64_t nidx,
                        const int64_t *idx, void *out);

/* ---------------------------------------------------------------- GEMM */
/* C[M,N] = op(A)[M,K] · op(B)[K,N], row-major with leading dims lda, ldb,
 * ldc (in elements); op(A) = A^T when ta (A stored [K,M]). C is overwritten
 * (K == 0 gives zeros). f32/f64 use the packed, register-blocked kernel
 * (AVX2/FMA when the CPU has it, portable otherwise) or CBLAS when built
 * with it; integer dtypes use a simple exact loop. Threads over the pool. */
void jx_cpu_gemm(jx_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A, int64_t lda,
                 const void *B, int64_t ldb, void *C, int64_t ldc);
/* `batch` independent GEMMs; operand i starts at base + i*stride (elements). */
void jx_cpu_gemm_batched(jx_dtype dt, bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K,
                         const void *A, int64_t lda, int64_t sa, const void *B, int64_t ldb, int64_t sb,
                         void *C, int64_t ldc, int64_t sc);
/* An epilogue: called once elements [lo, hi) of C (flat, row-major) are
 * final, to finish them while they are still in cache (jit fuses bias +
 * activation this way). */
typedef void (*jx_cpu_rows_fn)(void *ctx, int64_t lo, int64_t hi);
/* jx_cpu_gemm, then epi over every element of C (C contiguous, ldc == N).
 * With CBLAS, each thread's slab (rows, or columns: then row by row) gets
 * its epilogue right after its product; the other paths run it over the
 * pool after the product. */
void jx_cpu_gemm_epilogue(jx_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A,
                          int64_t lda, const void *B, int64_t ldb, void *C, jx_cpu_rows_fn epi, void *ctx);
/* [BF16] bf16/f16 operands of dtype dt, stored contiguously as [batch, M, K]
 * ([batch, K, M] when ta) and [batch, K, N] ([batch, N, K] when tb); C
 * [batch, M, N] in out_dt (dt, or f32). Products are summed in f32 and
 * rounded once (RNE) to out_dt (gemm_half.c). false: out of memory. */
bool jx_cpu_gemm_half(jx_dtype dt, jx_dtype out_dt, bool ta, bool tb, int64_t batch, int64_t M, int64_t N,
                      int64_t K, const void *A, const void *B, void *C);
/* "cblas" or "builtin-avx2" or "builtin-portable": what jx_cpu_gemm uses for f32. */
const char *jx_cpu_gemm_backend(void);

/* ------------------------------------------ bits, special, random, sort */
/* (src/backend/cpu/bits.c) Elementwise kernels over n elements whose
 * operands are either full arrays or scalars (the `*_scalar` flags: one
 * element read for every output). Scalar semantics live in scalar_ops.h. */
typedef enum {
#define JX_BITS(name, K, dtypes, cheap) JX_CPU_##K,
#include "core/elementwise.def"
#undef JX_BITS
  JX_CPU_BITS_COUNT
} jx_cpu_bitsop; /* the JX_BITS rows, at their dtypes */
void jx_cpu_bits_binary(jx_cpu_bitsop op, jx_dtype dt, int64_t n, const void *a, bool a_scalar, const void *b,
                        bool b_scalar, void *out);
/* out = fma(a, b, c) (f32/f64), one rounding */
void jx_cpu_fma(jx_dtype dt, int64_t n, const void *a, bool a_scalar, const void *b, bool b_scalar,
                const void *c, bool c_scalar, void *out);
typedef enum {
#define JX_SPECIAL(name, K, dtypes) JX_CPU_##K,
#include "core/elementwise.def"
#undef JX_SPECIAL
  JX_CPU_SPECIAL_COUNT
} jx_cpu_specialop; /* the JX_SPECIAL rows, at their dtypes */
void jx_cpu_special(jx_cpu_specialop op, jx_dtype dt, int64_t n, const void *x, void *y);
/* Threefry-2x32 over n counters: (y0[i], y1[i]) = threefry((k0, k1), (x0, x1))
 * with each u32 operand a full array or a scalar. */
void jx_cpu_threefry2x32(int64_t n, const uint32_t *k0, bool k0_scalar, const uint32_t *k1, bool k1_scalar,
                         const uint32_t *x0, bool x0_scalar, const uint32_t *x1, bool x1_scalar, uint32_t *y0,
                         uint32_t *y1);
/* Stable ascending argsort of x viewed as [outer, n, inner] along the middle
 * dim, indices written as idx_dt (i32 or i64). Floats: NaNs last, -0 == 0.
 * Returns 0, or -1 when scratch memory cannot be allocated. */
int jx_cpu_argsort(jx_dtype dt, int64_t outer, int64_t n, int64_t inner, const void *x, jx_dtype idx_dt,
                   void *out);
/* Thin SVD (svd.c) of `batch` row-major m x n matrices, f32 or f64
 * (computed in f64): s [batch, k] descending and >= 0, k = min(m, n); u
 * [batch, m, k] and vt [batch, k, n] when u is not NULL (orthonormal
 * columns / rows, completed where singular values are zero). Returns 0, or
 * -1 when scratch memory cannot be allocated. */
int jx_cpu_svd(jx_dtype dt, int64_t batch, int64_t m, int64_t n, const void *a, void *u, void *s, void *vt);

#endif
