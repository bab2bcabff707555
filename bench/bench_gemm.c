/* GEMM benchmark: the built-in kernel (jx_cpu_gemm forced to "builtin")
 * against cblas_sgemm (f64: cblas_dgemm) from OpenBLAS, in one process, at the same thread
 * count (1 and 2), f32. Each cell is the median over interleaved runs.
 *
 *   bench_gemm [reps-scale] [--strict]   (scale 1 by default; 0.3 for a quick look)
 *   bench_gemm --one SIDE f32|f64 M K N threads reps [ta tb]   (one side, one shape)
 *     SIDE: jx (the built-in kernel), blas (cblas_*gemm called directly, OpenBLAS's threads),
 *     jxcblas (jx_cpu_gemm on its CBLAS path: OpenBLAS single-threaded on jx's pool, as jx
 *     runs it), auto (jx_cpu_gemm as a user gets it: AUTO's choice)
 *   bench_gemm --auto-backend   (prints AUTO's choice in this environment)
 *   bench_gemm --bf16 [scale]   (only the bf16 rows: bf16 x bf16 -> f32 against jx's f32)
 *   JX_GEMM=portable|avx2|avx512 bench_gemm   (time that built-in kernel; default: the best)
 *   JX_GEMM_SMALL=0 bench_gemm ...   (small-M products on the blocked path, for A/B runs)
 *
 * Interleaving is by blocks: a block of jx calls, then a block of OpenBLAS
 * calls, repeated; each block starts with an untimed call, and before a jx
 * block the bench sleeps 150 ms. Why: after a threaded call OpenBLAS's idle
 * workers busy-wait for ~0.1 s (measured: 110 ms of CPU, OpenBLAS 0.3.21),
 * so with call-by-call alternation they steal the second core from jx's
 * pool; and either pool's first call after idling pays a thread wake-up
 * (up to ~1 ms on a VM). --strict alternates call by call anyway.
 *
 * Shapes (M x K x N): 2000^3; 128x1296x512 (an MLP layer's forward pass)
 * and its two backward GEMMs, dW = X^T dY (ta) and dX = dY W^T (tb); f64
 * 2000^3 (against cblas_dgemm); a batch-1 layer and a matrix-vector
 * product. Then bf16 x bf16 -> f32 2000^3 against jx's own f32 (bench_bf16). */
#include "backend/cpu/gemm_kernel.h"
#include "backend/cpu/kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* weak: bench/gemm_ab.sh links this file against older builds too */
void jx_cpu_gemm_force_small(int on) __attribute__((weak));

#if defined(JX_BENCH_HAVE_CBLAS) && JX_BENCH_HAVE_CBLAS
#include <cblas.h>
#define HAVE_CBLAS 1
#else
#define HAVE_CBLAS 0
#endif

typedef struct {
  const char *name;
  int64_t M, K, N;
  bool ta, tb, f64;
} shape;

static const shape shapes[] = {
    {"2000x2000x2000", 2000, 2000, 2000, false, false, false},
    {"128x1296x512", 128, 1296, 512, false, false, false},
    {"ta 1296x128x512", 1296, 128, 512, true, false, false},
    {"tb 128x512x1296", 128, 512, 1296, false, true, false},
    {"f64 2000^3", 2000, 2000, 2000, false, false, true},
    {"1x1296x512", 1, 1296, 512, false, false, false},   /* batch 1 */
    {"2000x2000x1", 2000, 2000, 1, false, false, false}, /* matrix-vector */
};

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* CPU time used by other processes, in cores, since the last call: the
 * machine may be shared, and a busy neighbour invalidates 2-thread numbers.
 * (Linux: /proc/stat minus this process's CPU time; -1 elsewhere.) */
static double other_load(void) {
  static double last_sys = -1, last_self, last_wall;
  double sys = -1;
  FILE *f = fopen("/proc/stat", "r");
  if (f) {
    unsigned long long v[8] = {0};
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &v[6], &v[7]) == 8) /* all but idle (v[3]) and iowait (v[4]) */
      sys = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
    fclose(f);
  }
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  const double self = (double)t.tv_sec + 1e-9 * (double)t.tv_nsec, wall = now_s();
  double r = -1;
  if (sys >= 0 && last_sys >= 0 && wall > last_wall)
    r = ((sys - last_sys) - (self - last_self)) / (wall - last_wall);
  last_sys = sys, last_self = self, last_wall = wall;
  return r < 0 && sys >= 0 ? 0 : r;
}

/* element i of a float or double matrix */
static void put(const shape *s, void *p, size_t i, double v) {
  if (s->f64)
    ((double *)p)[i] = v;
  else
    ((float *)p)[i] = (float)v;
}
#if HAVE_CBLAS /* read only to compare with CBLAS's product */
static double get(const shape *s, const void *p, size_t i) {
  return s->f64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}
#endif

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void run_builtin(const shape *s, const void *A, const void *B, void *C) {
  jx_cpu_gemm(s->f64 ? JX_F64 : JX_F32, s->ta, s->tb, s->M, s->N, s->K, A, s->ta ? s->M : s->K, B,
              s->tb ? s->K : s->N, C, s->N);
}

#if HAVE_CBLAS
static void run_cblas(const shape *s, const void *A, const void *B, void *C) {
  if (s->f64) {
    cblas_dgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans,
                (int)s->M, (int)s->N, (int)s->K, 1.0, A, (int)(s->ta ? s->M : s->K), B,
                (int)(s->tb ? s->K : s->N), 0.0, C, (int)s->N);
    return;
  }
  cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans, (int)s->M,
              (int)s->N, (int)s->K, 1.0f, A, (int)(s->ta ? s->M : s->K), B, (int)(s->tb ? s->K : s->N), 0.0f,
              C, (int)s->N);
}
#endif

static double time_one(void (*fn)(const shape *, const void *, const void *, void *), const shape *s,
                       const void *A, const void *B, void *C) {
  const double t0 = now_s();
  fn(s, A, B, C);
  return now_s() - t0;
}

/* --one SIDE f32|f64 M K N threads reps [ta tb]: one side, one shape,
 * the median of reps calls after 2 untimed ones, on one line.
 * bench/gemm_ab.sh and bench/gemm_default.sh alternate such processes. */
static int run_one_side(char **v, int n) {
  if (n < 7)
    return fprintf(stderr,
                   "usage: bench_gemm --one jx|blas|jxcblas|auto f32|f64 M K N threads reps [ta tb]\n"),
           2;
  const bool blas = !strcmp(v[0], "blas"), f64 = !strcmp(v[1], "f64");
  if (!strcmp(v[0], "jxcblas")) jx_cpu_gemm_set_mode(JX_GEMM_CBLAS);
  if (!strcmp(v[0], "auto")) jx_cpu_gemm_set_mode(JX_GEMM_AUTO);
  const shape s = {"one", atol(v[2]), atol(v[3]), atol(v[4]), n > 7 && atoi(v[7]), n > 8 && atoi(v[8]), f64};
  const int nt = atoi(v[5]), reps = atoi(v[6]) > 0 ? atoi(v[6]) : 1;
  const size_t es = f64 ? sizeof(double) : sizeof(float);
  const size_t na = (size_t)(s.M * s.K), nb = (size_t)(s.K * s.N), nc = (size_t)(s.M * s.N);
  void *A = malloc(na * es), *B = malloc(nb * es), *C = malloc(nc * es);
  double *t = malloc(sizeof(double) * (size_t)reps);
  if (!A || !B || !C || !t || (blas && !HAVE_CBLAS)) return 1;
  for (size_t i = 0; i < na; i++) put(&s, A, i, (double)((i * 7919u) % 1000u) / 1000.0 - 0.5);
  for (size_t i = 0; i < nb; i++) put(&s, B, i, (double)((i * 6151u) % 1000u) / 1000.0 - 0.5);
  jx_cpu_set_num_threads(nt);
#if HAVE_CBLAS
  openblas_set_num_threads(nt);
  void (*fn)(const shape *, const void *, const void *, void *) = blas ? run_cblas : run_builtin;
#else
  void (*fn)(const shape *, const void *, const void *, void *) = run_builtin;
#endif
  for (int r = -2; r < reps; r++) {
    const double d = time_one(fn, &s, A, B, C);
    if (r >= 0) t[r] = d;
  }
  const double m = median(t, reps), flop = 2.0 * (double)s.M * (double)s.N * (double)s.K;
  printf("%s %s %lldx%lldx%lld ta=%d tb=%d thr=%d median %.3f ms %.1f GFLOP/s (best %.1f)\n", v[0], v[1],
         (long long)s.M, (long long)s.K, (long long)s.N, s.ta, s.tb, nt, 1e3 * m, flop / m / 1e9,
         flop / t[0] / 1e9);
  free(A), free(B), free(C), free(t);
  return 0;
}

/* [BF16] bf16 x bf16 -> f32 (jx_cpu_gemm_half) against jx's f32 built-in on
 * the same shape and values, call by call; ratio = bf16 GFLOP/s / f32
 * GFLOP/s. Rows: the default kernel ("bf16 2000^3": AMX where the CPU has
 * it, else widened to f32), then each other one the CPU has. */
static uint16_t *g_a16, *g_b16;
static void run_bf16(const shape *s, const void *A, const void *B, void *C) {
  (void)A, (void)B;
  jx_cpu_gemm_half(JX_BF16, JX_F32, s->ta, s->tb, 1, s->M, s->N, s->K, g_a16, g_b16, C);
}
static uint16_t to_bf16(float f) { /* round to nearest even (no NaN here) */
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static void bench_bf16_rows(double scale, const char *name, int mode);
static void bench_bf16(double scale) {
  printf("\nbf16 x bf16 -> f32 GEMM vs jx's f32 built-in, same values; ratio = bf16 GFLOP/s / f32 GFLOP/s\n");
  printf("%-18s %3s %9s %8s %9s %8s %6s %6s %6s\n", "shape MxKxN", "thr", "bf16 ms", "GFLOP/s", "f32 ms",
         "GFLOP/s", "ratio", "best", "other");
  bench_bf16_rows(scale, "bf16 2000^3", -1);
  if (jx_cpu_has_avx512bf16()) bench_bf16_rows(scale, "bf16 vdpbf16ps", JX_HALF_AVX512BF16);
  bench_bf16_rows(scale, "bf16 widened", JX_HALF_WIDEN);
  jx_cpu_gemm_force_half(-1);
}

static void bench_bf16_rows(double scale, const char *name, int mode) {
  const shape s = {name, 2000, 2000, 2000, false, false, false};
  jx_cpu_gemm_force_half(mode);
  const size_t n = (size_t)(s.M * s.K);
  float *A = malloc(n * 4), *B = malloc(n * 4), *C1 = malloc(n * 4), *C2 = malloc(n * 4);
  g_a16 = malloc(n * 2), g_b16 = malloc(n * 2);
  if (!A || !B || !C1 || !C2 || !g_a16 || !g_b16) return;
  for (size_t i = 0; i < n; i++) { /* the f32 side gets the same (bf16) values */
    g_a16[i] = to_bf16((float)((i * 7919u) % 1000u) / 1000.0f - 0.5f);
    g_b16[i] = to_bf16((float)((i * 6151u) % 1000u) / 1000.0f - 0.5f);
    const uint32_t ua = (uint32_t)g_a16[i] << 16, ub = (uint32_t)g_b16[i] << 16;
    memcpy(&A[i], &ua, 4), memcpy(&B[i], &ub, 4);
  }
  const double flop = 2.0 * (double)s.M * (double)s.N * (double)s.K;
  for (int nt = 1; nt <= 2; nt++) {
    jx_cpu_set_num_threads(nt);
    other_load();
    const double t_est = time_one(run_builtin, &s, A, B, C1);
    int rounds = (int)(scale * 1.0 / (t_est > 1e-3 ? t_est : 1e-3));
    rounds = rounds < 5 ? 5 : rounds > 100 ? 100 : rounds;
    double *tf = malloc(sizeof(double) * (size_t)rounds), *th = malloc(sizeof(double) * (size_t)rounds);
    time_one(run_bf16, &s, A, B, C2);
    for (int r = 0; r < rounds; r++) {
      tf[r] = time_one(run_builtin, &s, A, B, C1);
      th[r] = time_one(run_bf16, &s, A, B, C2);
    }
    const double mh = median(th, rounds), mf = median(tf, rounds), other = other_load();
    bool differ = false; /* sanity: the same product, up to f32 rounding */
    for (size_t i = 0; i < n; i++) differ |= fabs(C1[i] - C2[i]) > 1e-3 * (1.0 + fabs(C1[i]));
    printf("%-18s %3d %9.3f %8.1f %9.3f %8.1f %5.0f%% %5.0f%% %6.2f%s\n", s.name, nt, 1e3 * mh,
           flop / mh / 1e9, 1e3 * mf, flop / mf / 1e9, 100.0 * mf / mh, 100.0 * tf[0] / th[0], other,
           differ ? "  RESULTS DIFFER" : "");
    fflush(stdout);
    free(tf), free(th);
  }
  free(A), free(B), free(C1), free(C2), free(g_a16), free(g_b16);
}

int main(int argc, char **argv) {
  double scale = 1.0;
  bool strict = false;
  for (int i = 1; i < argc && strcmp(argv[1], "--one"); i++) {
    if (!strcmp(argv[i], "--strict"))
      strict = true;
    else
      scale = atof(argv[i]) > 0 ? atof(argv[i]) : 1.0;
  }
  const char *env = getenv("JX_GEMM");
  jx_cpu_gemm_set_mode(!env                       ? JX_GEMM_BUILTIN
                       : !strcmp(env, "portable") ? JX_GEMM_PORTABLE
                       : !strcmp(env, "avx2")     ? JX_GEMM_AVX2
                       : !strcmp(env, "avx512")   ? JX_GEMM_AVX512
                                                  : JX_GEMM_BUILTIN);
  const char *small = getenv("JX_GEMM_SMALL");
  if (small && *small && jx_cpu_gemm_force_small) jx_cpu_gemm_force_small(atoi(small));
  if (argc > 1 && !strcmp(argv[1], "--one")) return run_one_side(argv + 2, argc - 2);
  if (argc > 1 && !strcmp(argv[1], "--bf16")) /* the bf16 rows alone */
    return bench_bf16(argc > 2 && atof(argv[2]) > 0 ? atof(argv[2]) : 1.0), 0;
  if (argc > 1 && !strcmp(argv[1], "--auto-backend")) {
    jx_cpu_gemm_set_mode(JX_GEMM_AUTO);
    return puts(jx_cpu_gemm_backend()) < 0;
  }
#if HAVE_CBLAS
  const char *core = openblas_get_corename();
#else
  const char *core = "-";
#endif
  printf("jx built-in GEMM (%s) vs %s (core %s), f32 (f64: dgemm), medians of %s-interleaved runs\n",
         jx_cpu_gemm_backend(), HAVE_CBLAS ? "OpenBLAS cblas_sgemm" : "(no CBLAS in this build)", core,
         strict ? "call" : "block");
  printf("(ratio = jx GFLOP/s / OpenBLAS GFLOP/s; best = the same from the fastest runs;\n"
         " other = CPU cores used by other processes meanwhile: above ~0.1, distrust thr=2)\n");
  printf("%-18s %3s %9s %8s %9s %8s %6s %6s %6s\n", "shape MxKxN", "thr", "jx ms", "GFLOP/s", "blas ms",
         "GFLOP/s", "ratio", "best", "other");

  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
    const shape *s = &shapes[si];
    const size_t na = (size_t)(s->M * s->K), nb = (size_t)(s->K * s->N), nc = (size_t)(s->M * s->N);
    const size_t es = s->f64 ? sizeof(double) : sizeof(float);
    void *A = malloc(na * es), *B = malloc(nb * es), *C1 = malloc(nc * es), *C2 = malloc(nc * es);
    if (!A || !B || !C1 || !C2) return 1;
    for (size_t i = 0; i < na; i++) put(s, A, i, (double)((i * 7919u) % 1000u) / 1000.0 - 0.5);
    for (size_t i = 0; i < nb; i++) put(s, B, i, (double)((i * 6151u) % 1000u) / 1000.0 - 0.5);
    const double flop = 2.0 * (double)s->M * (double)s->N * (double)s->K;

    for (int nt = 1; nt <= 2; nt++) {
      jx_cpu_set_num_threads(nt);
#if HAVE_CBLAS
      openblas_set_num_threads(nt);
#endif
      /* blocks of ~40 ms, >= 5 timed runs per side, ~0.5 s per side per cell */
      other_load();                                      /* start this cell's window */
      double t_est = time_one(run_builtin, s, A, B, C1); /* also a warm-up */
      t_est = t_est > 1e-6 ? t_est : 1e-6;
      int block = strict ? 1 : (int)(0.04 / t_est), rounds;
      block = block < 1 ? 1 : block > 25 ? 25 : block;
      rounds = (int)(scale * 0.5 / (t_est * block));
      rounds = rounds < (strict ? 5 : 3) ? (strict ? 5 : 3) : rounds > 200 ? 200 : rounds;
      const int reps = rounds * block;
      double *tj = malloc(sizeof(double) * (size_t)reps), *tb = malloc(sizeof(double) * (size_t)reps);
      for (int r = 0; r < rounds; r++) {
        if (!strict && nt > 1 && HAVE_CBLAS) usleep(150000); /* let OpenBLAS's threads park */
        if (!strict) time_one(run_builtin, s, A, B, C1);
        for (int i = 0; i < block; i++) tj[r * block + i] = time_one(run_builtin, s, A, B, C1);
#if HAVE_CBLAS
        if (!strict) time_one(run_cblas, s, A, B, C2);
        for (int i = 0; i < block; i++) tb[r * block + i] = time_one(run_cblas, s, A, B, C2);
#endif
      }
      const double mj = median(tj, reps), other = other_load();
#if HAVE_CBLAS
      const double mb = median(tb, reps); /* (sorted now: [0] is the fastest) */
      bool differ = false;                /* sanity: both compute the same product */
      for (size_t i = 0; i < nc; i++)
        differ |= fabs(get(s, C1, i) - get(s, C2, i)) > 1e-3 * (1.0 + fabs(get(s, C2, i)));
      printf("%-18s %3d %9.3f %8.1f %9.3f %8.1f %5.0f%% %5.0f%% %6.2f%s\n", s->name, nt, 1e3 * mj,
             flop / mj / 1e9, 1e3 * mb, flop / mb / 1e9, 100.0 * mb / mj, 100.0 * tb[0] / tj[0], other,
             differ ? "  RESULTS DIFFER" : "");
#else
      printf("%-18s %3d %9.3f %8.1f %9s %8s %6s %6s %6.2f\n", s->name, nt, 1e3 * mj, flop / mj / 1e9, "-",
             "-", "-", "-", other);
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
  bench_bf16(scale);
  return 0;
}
