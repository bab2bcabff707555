/* The process layer against plain MPI (issue 17), under mpirun -np 2:
 *   mpirun -np 2 build/bench/bench_dist [rounds]
 * 1. jx_dist_allreduce of the letters MLP's gradient tree (1296-512-512-26:
 *    940058 f32, 3.76 MB) against one MPI_Allreduce of the same bytes in the
 *    same processes, alternating call by call; medians and their ratio.
 * 2. MPI's point-to-point latency (8 B ping-pong, half the round trip) and
 *    bandwidth (ping-pong of 1 KB .. 64 MB), the alpha and beta of
 *    docs/DESIGN.md's cost model, and an 8 B allreduce.
 *   mpirun -np 2 build/bench/bench_dist --plain [rounds]
 * times MPI_Allreduce alone in a program that is plain MPI (no jx, thread
 * level SERIALIZED): bench/dist.sh alternates both programs.
 * Rank 0 prints; every time is rank 0's, each call started after a barrier. */
#include <jx.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef JX_BENCH_HAVE_MPI
#include "dist/dist.h"

#include <mpi.h>

enum { GRAD_F32 = 1296 * 512 + 512 + 512 * 512 + 512 + 512 * 26 + 26 };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int rank_, size_;

/* one timed allreduce of n f32, through jx or straight to MPI */
static double time_allreduce(float *buf, int n, int via_jx) {
  MPI_Barrier(MPI_COMM_WORLD);
  double t = now();
  if (via_jx) {
    jx_t e = jx_dist_allreduce(buf, n, JX_F32, JX_DIST_SUM, "bench psum");
    if (e) fprintf(stderr, "%s\n", jx_error(e)), exit(1);
  } else {
    MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  }
  return now() - t;
}

/* half the round trip of a bytes-long ping-pong between ranks 0 and 1 */
static double pingpong(char *buf, int bytes, int reps) {
  double *t = malloc(sizeof(double) * (size_t)reps);
  for (int r = 0; r < reps; r++) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = now();
    if (rank_ == 0) {
      MPI_Send(buf, bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
      MPI_Recv(buf, bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else if (rank_ == 1) {
      MPI_Recv(buf, bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Send(buf, bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
    }
    t[r] = (now() - t0) / 2;
  }
  double m = median(t, reps);
  free(t);
  return m;
}

static void bench_links(void) {
  char *buf = calloc(64 << 20, 1);
  double lat = pingpong(buf, 8, 2001);
  if (!rank_) printf("mpi_latency_8B_us\t%.3f\n", lat * 1e6);
  double bw = 0;
  for (int bytes = 1024; bytes <= (64 << 20); bytes *= 8) {
    double t = pingpong(buf, bytes, bytes < (1 << 20) ? 501 : 21);
    if (!rank_) printf("mpi_pingpong\t%d B\t%.2f us\t%.3f GB/s\n", bytes, t * 1e6, bytes / t * 1e-9);
    if (bytes / t > bw) bw = bytes / t;
  }
  if (!rank_) printf("mpi_bandwidth_GBps\t%.3f\n", bw * 1e-9);
  float x[2] = {1, 2};
  double t8[2001];
  for (int r = 0; r < 2001; r++) t8[r] = time_allreduce(x, 2, 0);
  if (!rank_) printf("mpi_allreduce_8B_us\t%.3f\n", median(t8, 2001) * 1e6);
  for (int r = 0; r < 2001; r++) t8[r] = time_allreduce(x, 2, 1);
  if (!rank_) printf("jx_allreduce_8B_us\t%.3f\n", median(t8, 2001) * 1e6);
  /* gamma: the local reduction's rate (MPI's own f32 sum, bytes of one operand per second) */
  enum { RN = 1 << 20 };
  float *a = calloc(RN, sizeof(float)), *b = calloc(RN, sizeof(float));
  double tr[51];
  for (int r = 0; r < 51; r++) {
    double t0 = now();
    MPI_Reduce_local(a, b, RN, MPI_FLOAT, MPI_SUM);
    tr[r] = now() - t0;
  }
  if (!rank_) printf("mpi_reduce_local_GBps\t%.3f\t(f32 sum of 4 MB)\n", 4.0 * RN / median(tr, 51) * 1e-9);
  free(a), free(b);
  free(buf);
}

static int run(int rounds, int plain) {
  float *buf = malloc(sizeof(float) * GRAD_F32);
  for (int i = 0; i < GRAD_F32; i++) buf[i] = 1e-3f * (float)(i % 1000);
  double *tj = malloc(sizeof(double) * (size_t)rounds), *tm = malloc(sizeof(double) * (size_t)rounds);
  for (int w = 0; w < 5; w++) time_allreduce(buf, GRAD_F32, !plain); /* warm-up */
  for (int r = 0; r < rounds; r++) {
    tm[r] = time_allreduce(buf, GRAD_F32, 0);
    tj[r] = plain ? 0 : time_allreduce(buf, GRAD_F32, 1);
  }
  double mm = median(tm, rounds), mj = median(tj, rounds); /* sorts: [0] is the minimum */
  if (!rank_ && plain)
    printf("plain_mpi_allreduce_3.76MB_ms\t%.3f\t(plain MPI program, %d rounds)\n", mm * 1e3, rounds);
  if (!rank_ && !plain) {
    printf("processes\t%d\n", size_);
    printf("mpi_allreduce_3.76MB_ms\t%.3f\n", mm * 1e3);
    printf("jx_allreduce_3.76MB_ms\t%.3f\n", mj * 1e3);
    printf("ratio_jx_over_mpi\t%.3f\t(median of %d alternating rounds; goal <= 1.1)\n", mj / mm, rounds);
    /* on a loaded machine the medians swing with scheduling; the minima less */
    printf("min_ms_jx_mpi\t%.3f\t%.3f\tratio %.3f\n", tj[0] * 1e3, tm[0] * 1e3, tj[0] / tm[0]);
  }
  if (!plain) bench_links();
  free(buf), free(tj), free(tm);
  return 0;
}

int main(int argc, char **argv) {
  int plain = argc > 1 && !strcmp(argv[1], "--plain");
  int rounds = argc > 1 + plain ? atoi(argv[1 + plain]) : 41;
  if (rounds < 1) rounds = 41;
  if (plain) {
    int level;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &level);
  } else {
    jx_t e = jx_distributed_init();
    if (e) return fprintf(stderr, "%s\n", jx_error(e)), 1;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  if (size_ < 2) {
    if (!rank_) printf("bench_dist: run it under mpirun -np 2 (one process here)\n");
  } else {
    run(rounds, plain);
  }
  if (plain) MPI_Finalize(); /* jx finalizes at exit */
  return 0;
}
#else
int main(void) {
  printf("bench_dist: jx was built without MPI (apt-get install libopenmpi-dev openmpi-bin): skipped\n");
  return 0;
}
#endif
