/* GEMM benchmark: the built-in kernel (jx_cpu_gemm forced to "builtin")
 * against cblas_sgemm from OpenBLAS, in one process, at the same thread
 * count. Repetitions alternate between the two so drift in clock speed or
 * machine load hits both alike; each cell is the median.
 *
 *   bench_gemm [reps-scale]     (default 1; 0.2 for a quick look)
 *   JX_GEMM=portable bench_gemm (time the portable kernel instead of AVX2)
 *
 * Shapes (M x K x N, f32): 2000^3; 128x1296x512 (an MLP layer's forward
 * pass) and its two backward GEMMs, dW = X^T dY (ta) and dX = dY W^T (tb). */
#include "backend/cpu/gemm_kernel.h"
#include "backend/cpu/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(JX_BENCH_HAVE_CBLAS) && JX_BENCH_HAVE_CBLAS
#include <cblas.h>
#define HAVE_CBLAS 1
#else
#define HAVE_CBLAS 0
#endif

typedef struct {
  const char *name;
  int64_t M, K, N;
  bool ta, tb;
} shape;

static const shape shapes[] = {
    {"2000x2000x2000", 2000, 2000, 2000, false, false},
    {"128x1296x512", 128, 1296, 512, false, false},
    {"ta 1296x128x512", 1296, 128, 512, true, false},
    {"tb 128x512x1296", 128, 512, 1296, false, true},
};

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void run_builtin(const shape *s, const float *A, const float *B, float *C) {
  jx_cpu_gemm(JX_F32, s->ta, s->tb, s->M, s->N, s->K, A, s->ta ? s->M : s->K, B,
              s->tb ? s->K : s->N, C, s->N);
}

#if HAVE_CBLAS
static void run_cblas(const shape *s, const float *A, const float *B, float *C) {
  cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans,
              (int)s->M, (int)s->N, (int)s->K, 1.0f, A, (int)(s->ta ? s->M : s->K), B,
              (int)(s->tb ? s->K : s->N), 0.0f, C, (int)s->N);
}
#endif

static double time_one(void (*fn)(const shape *, const float *, const float *, float *),
                       const shape *s, const float *A, const float *B, float *C) {
  const double t0 = now_s();
  fn(s, A, B, C);
  return now_s() - t0;
}

int main(int argc, char **argv) {
  const double scale = argc > 1 ? atof(argv[1]) : 1.0;
  const char *env = getenv("JX_GEMM");
  jx_cpu_gemm_set_mode(env && !strcmp(env, "portable") ? JX_GEMM_PORTABLE : JX_GEMM_BUILTIN);
  printf("jx built-in GEMM (%s) vs %s, f32, medians of interleaved runs\n",
         jx_cpu_gemm_backend(), HAVE_CBLAS ? "OpenBLAS cblas_sgemm" : "(no CBLAS in this build)");
  printf("%-18s %3s %10s %9s %10s %9s %7s\n", "shape MxKxN", "thr", "jx ms", "GFLOP/s",
         "blas ms", "GFLOP/s", "ratio");

  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
    const shape *s = &shapes[si];
    const size_t na = (size_t)(s->M * s->K), nb = (size_t)(s->K * s->N), nc = (size_t)(s->M * s->N);
    float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B);
    float *C1 = malloc(nc * sizeof *C1), *C2 = malloc(nc * sizeof *C2);
    if (!A || !B || !C1 || !C2) return 1;
    for (size_t i = 0; i < na; i++) A[i] = (float)((i * 7919u) % 1000u) / 1000.0f - 0.5f;
    for (size_t i = 0; i < nb; i++) B[i] = (float)((i * 6151u) % 1000u) / 1000.0f - 0.5f;
    const double flop = 2.0 * (double)s->M * (double)s->N * (double)s->K;

    for (int nt = 1; nt <= 2; nt++) {
      jx_cpu_set_num_threads(nt);
#if HAVE_CBLAS
      openblas_set_num_threads(nt);
#endif
      /* ~0.4 s per implementation per cell, at least 5 runs */
      const double t_est = time_one(run_builtin, s, A, B, C1); /* also a warm-up */
      int reps = (int)(scale * 0.4 / (t_est > 1e-6 ? t_est : 1e-6));
      reps = reps < 5 ? 5 : reps > 201 ? 201 : reps;
      double *tj = malloc(sizeof(double) * (size_t)reps), *tb = malloc(sizeof(double) * (size_t)reps);
#if HAVE_CBLAS
      time_one(run_cblas, s, A, B, C2); /* warm-up: OpenBLAS starts its threads lazily */
#endif
      for (int r = 0; r < reps; r++) {
        tj[r] = time_one(run_builtin, s, A, B, C1);
#if HAVE_CBLAS
        tb[r] = time_one(run_cblas, s, A, B, C2);
#else
        tb[r] = 0;
#endif
      }
      const double mj = median(tj, reps), mb = median(tb, reps);
#if HAVE_CBLAS
      double maxdiff = 0; /* sanity: both compute the same product */
      for (size_t i = 0; i < nc; i++) {
        const double d = (double)C1[i] - (double)C2[i];
        maxdiff = d > maxdiff ? d : -d > maxdiff ? -d : maxdiff;
      }
      printf("%-18s %3d %10.3f %9.1f %10.3f %9.1f %6.0f%%%s\n", s->name, nt, 1e3 * mj, flop / mj / 1e9,
             1e3 * mb, flop / mb / 1e9, 100.0 * mb / mj, maxdiff > 1e-2 ? "  RESULTS DIFFER" : "");
#else
      printf("%-18s %3d %10.3f %9.1f %10s %9s %7s\n", s->name, nt, 1e3 * mj, flop / mj / 1e9, "-", "-", "-");
#endif
      fflush(stdout);
      free(tj);
      free(tb);
    }
    free(A);
    free(B);
    free(C1);
    free(C2);
  }
  return 0;
}
