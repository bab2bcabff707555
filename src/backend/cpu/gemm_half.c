/* [BF16] GEMM of bf16/f16 operands (issue #19), as XLA:CPU computes it:
 * every product and sum in f32, the result rounded once (round to nearest
 * even) to the output dtype, which is the operands' own or f32
 * (preferred_element_type).
 *
 * bf16 runs gemm_bf16.c's AMX-BF16 or AVX512-BF16 kernel (see half_mode for
 * which, when). Otherwise, and for f16, the operands are widened to f32 (exact: every bf16 and f16 value is an f32 value; f16 through F16C where
 * the CPU has it, jx_cpu_convert) and the f32 GEMM runs on them. Both are
 * deterministic for a given CPU, so jit (which calls this same function)
 * and eager agree bit for bit. */
#include "backend/cpu/gemm_kernel.h"
#include "backend/cpu/kernels.h"
#include "core/core.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Which bf16 GEMM runs (jx_cpu_gemm_force_half, or env JX_GEMM_BF16 =
 * widen|avx512bf16|amx, read once). AUTO: AMX where the CPU has it and the
 * OS grants it; else vdpbf16ps on AMD CPUs with AVX512-BF16; else
 * widening. Measured, 2000^3 bf16 -> f32 against jx's f32 kernel:
 *   - Intel Xeon model 207: vdpbf16ps retires one per ~0.9 ns against one
 *     f32 FMA per ~0.2 ns (loops of 16 independent ones), so its 32
 *     multiply-adds per instruction come to ~0.45x the f32 kernel's rate;
 *     AMX is 2.4-3.4x.
 *   - AMD Zen 5 (family 26): vdpbf16ps at 1.7-2.0x the f32 kernel (1 and
 *     2 threads), widening 0.5-0.7x. */
static atomic_int g_force = -1;
void jx_cpu_gemm_force_half(int mode) { atomic_store_explicit(&g_force, mode, memory_order_relaxed); }

static int half_mode(void) {
  int m = atomic_load_explicit(&g_force, memory_order_relaxed);
  if (m >= 0) return m;
  static atomic_int env = -1;
  m = atomic_load_explicit(&env, memory_order_relaxed);
  if (m < 0) {
    const char *s = getenv("JX_GEMM_BF16");
    m = s && !strcmp(s, "widen")        ? JX_HALF_WIDEN
        : s && !strcmp(s, "avx512bf16") ? JX_HALF_AVX512BF16
        : s && !strcmp(s, "amx")        ? JX_HALF_AMX
                                        : JX_HALF_AUTO;
    atomic_store_explicit(&env, m, memory_order_relaxed);
  }
  return m;
}

static int64_t at_least1(int64_t n) { return n > 0 ? n : 1; }

static bool gemm_widened(jx_dtype dt, jx_dtype out_dt, bool ta, bool tb, int64_t batch, int64_t M, int64_t N,
                         int64_t K, const void *A, const void *B, void *C) {
  const int64_t na = batch * M * K, nb = batch * K * N, nc = batch * M * N;
  jx_buffer *ha = NULL, *hb = NULL, *hc = NULL;
  float *a = jx_cpu_scratch(sizeof(float) * (size_t)at_least1(na), &ha);
  float *b = jx_cpu_scratch(sizeof(float) * (size_t)at_least1(nb), &hb);
  float *c = out_dt == JX_F32 ? C : jx_cpu_scratch(sizeof(float) * (size_t)at_least1(nc), &hc);
  const bool ok = a && b && c;
  if (ok) {
    jx_cpu_convert(dt, JX_F32, na, A, a);
    jx_cpu_convert(dt, JX_F32, nb, B, b);
    jx_cpu_gemm_batched(JX_F32, ta, tb, batch, M, N, K, a, ta ? M : K, M * K, b, tb ? K : N, K * N, c, N,
                        M * N);
    if (c != C) jx_cpu_convert(JX_F32, out_dt, nc, c, C);
  }
  jx_cpu_scratch_free(ha), jx_cpu_scratch_free(hb), jx_cpu_scratch_free(hc);
  return ok;
}

/* The batch through the AVX512-BF16 kernel: members in turn, each
 * threaded, or (many small members) members spread over the threads */
typedef struct {
  bool amx, ta, tb, threaded;
  int64_t M, N, K;
  const uint16_t *A, *B;
  float *C;
  atomic_bool failed;
} batch_job;

static void member_task(void *ctx, int64_t lo, int64_t hi) {
  batch_job *j = ctx;
  for (int64_t q = lo; q < hi; q++)
    if (!jx_cpu_gemm_bf16(j->amx, j->ta, j->tb, j->M, j->N, j->K, j->A + q * j->M * j->K,
                          j->B + q * j->K * j->N, j->C + q * j->M * j->N, j->threaded))
      atomic_store(&j->failed, true);
}

static bool gemm_kernel(bool amx, jx_dtype out_dt, bool ta, bool tb, int64_t batch, int64_t M, int64_t N,
                        int64_t K, const void *A, const void *B, void *C) {
  const int64_t nc = batch * M * N, work = M * N * (K > 0 ? K : 1);
  jx_buffer *hc = NULL;
  float *c = out_dt == JX_F32 ? C : jx_cpu_scratch(sizeof(float) * (size_t)at_least1(nc), &hc);
  if (!c) return false;
  const int nt = jx_cpu_num_threads();
  const bool spread = batch > 1 && nt > 1 && (batch >= 4 * (int64_t)nt || work < ((int64_t)1 << 18) * nt);
  batch_job j = {amx, ta, tb, !spread, M, N, K, A, B, c, false};
  if (spread)
    jx_cpu_parallel_for(batch, 1 + ((int64_t)1 << 18) / work, member_task, &j);
  else
    member_task(&j, 0, batch);
  const bool ok = !atomic_load(&j.failed);
  if (ok && c != C) jx_cpu_convert(JX_F32, out_dt, nc, c, C);
  jx_cpu_scratch_free(hc);
  return ok;
}

bool jx_cpu_gemm_half(jx_dtype dt, jx_dtype out_dt, bool ta, bool tb, int64_t batch, int64_t M, int64_t N,
                      int64_t K, const void *A, const void *B, void *C) {
  if (batch <= 0 || M <= 0 || N <= 0) return true;
  int mode = dt == JX_BF16 ? half_mode() : JX_HALF_WIDEN;
  if (mode == JX_HALF_AUTO)
    mode = jx_cpu_has_amx_bf16()                        ? JX_HALF_AMX
           : jx_cpu_has_avx512bf16() && jx_cpu_is_amd() ? JX_HALF_AVX512BF16
                                                        : JX_HALF_WIDEN;
  const bool amx = mode == JX_HALF_AMX && jx_cpu_has_amx_bf16();
  const bool kernel = amx || (mode == JX_HALF_AVX512BF16 && jx_cpu_has_avx512bf16());
  /* the kernel's packing buffers unavailable: the widened path, which
   * needs its own memory or reports the failure */
  if (kernel && gemm_kernel(amx, out_dt, ta, tb, batch, M, N, K, A, B, C)) return true;
  return gemm_widened(dt, out_dt, ta, tb, batch, M, N, K, A, B, C);
}
