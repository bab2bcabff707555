/* psum in pmap across processes against plain MPI (issue 17), under
 * mpirun -np 2 (one device per process):
 *   mpirun -np 2 build/bench/bench_pmap_mpi [rounds]
 * times, alternating call by call after a barrier, in the same processes:
 *   tree:  pmap(jx_psum) of the letters MLP's gradient tree (1296-512-512-26:
 *          6 arrays, 940058 f32, 3.76 MB): one collective per array;
 *   flat:  pmap(jx_psum) of the same bytes as one f32[940058] array;
 *   mpi:   one MPI_Allreduce of the same bytes, in place;
 *   into:  the same into a second buffer (psum's semantics: a new array;
 *          MPI then copies the input to the output first);
 *   made:  pmap of psum(2x), the reduced value made in the step (a dead
 *          temporary: jit reduces it in place), of the flat array and of
 *          the tree, against C computing y = 2x and one MPI_Allreduce in
 *          place on y.
 * Prints rank 0's medians and minima, and the ratios to MPI (goal of the
 * tree: <= 1.1). Each pmap call includes its fixed costs: the device
 * threads started per call, argument slicing, the result's allocation. */
#include <jx.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef JX_BENCH_HAVE_MPI
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
static double median(double *v, int n) { /* sorts v: v[0] is then the minimum */
  qsort(v, (size_t)n, sizeof *v, cmp);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static jx_t psum_body(const jx_t *a, void *u) {
  (void)u;
  return jx_psum(a[0], "batch");
}

/* a gradient made in the step and reduced: 2x, then psum (in place: the
 * temporary is dead after it) */
static jx_t twice(jx_t x, void *u) {
  (void)u;
  return jx_mul(x, jx_scalar(2.0));
}
static jx_t made_body(const jx_t *a, void *u) {
  (void)u;
  return jx_psum(jx_tree_map(twice, a[0], NULL), "batch");
}

/* the C program's version: y = 2x, then MPI_Allreduce in place on y */
static void made_c(const float *x, float *y) {
  for (int i = 0; i < GRAD_F32; i++) y[i] = 2.0f * x[i];
  MPI_Allreduce(MPI_IN_PLACE, y, GRAD_F32, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

/* the MLP's parameter shapes, each with the leading device axis (1) */
static jx_t grad_tree(void) {
  static const int64_t shapes[6][3] = {{1, 1296, 512}, {1, 512, 0},  {1, 512, 512},
                                       {1, 512, 0},    {1, 512, 26}, {1, 26, 0}};
  jx_t leaves[6];
  for (int i = 0; i < 6; i++) {
    int nd = shapes[i][2] ? 3 : 2;
    leaves[i] = jx_full(JX_F32, nd, shapes[i], 1e-3);
  }
  return jx_tuple(6, leaves);
}

/* one timed call: pmap'd psum of x, or MPI_Allreduce of buf (in place,
 * or into out when out is not NULL: a new result, as psum makes) */
static double time_one(jx_fn *p, jx_t x, float *buf, float *out) {
  MPI_Barrier(MPI_COMM_WORLD);
  double t = now();
  if (p) {
    jx_pool_push();
    jx_t r = JX_CALL(p, x);
    if (!jx_ok(r)) fprintf(stderr, "bench_pmap_mpi: %s\n", jx_error(r)), exit(1);
    jx_pool_pop();
  } else if (x) { /* (a non-NULL x without p: the made-gradient C version) */
    made_c(buf, out);
  } else {
    MPI_Allreduce(out ? buf : MPI_IN_PLACE, out ? out : buf, GRAD_F32, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  }
  return now() - t;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 41;
  if (rounds < 1) rounds = 41;
  jx_t e = jx_distributed_init();
  if (e) return fprintf(stderr, "%s\n", jx_error(e)), 1;
  jx_set_cpu_devices(1);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size < 2) {
    if (!rank) printf("bench_pmap_mpi: run it under mpirun -np 2 (one process here)\n");
    return 0;
  }
  jx_fn *f = jx_fn_new(psum_body, 1, NULL), *p = jx_pmap(f, NULL, 0, "batch");
  jx_fn *fm = jx_fn_new(made_body, 1, NULL), *pm = jx_pmap(fm, NULL, 0, "batch");
  jx_t tree = jx_retain(grad_tree()), flat = jx_retain(jx_full(JX_F32, JX_SHAPE(1, GRAD_F32), 1e-3));
  float *buf = malloc(sizeof(float) * GRAD_F32), *out = malloc(sizeof(float) * GRAD_F32);
  for (int i = 0; i < GRAD_F32; i++) buf[i] = 1e-3f, out[i] = 0;
  double *tt = malloc(sizeof(double) * (size_t)rounds * 7), *tf = tt + rounds, *tm = tf + rounds,
         *to = tm + rounds, *tjm = to + rounds, *tcm = tjm + rounds, *tjt = tcm + rounds;
  for (int w = 0; w < 5; w++)
    time_one(p, tree, NULL, NULL), time_one(p, flat, NULL, NULL), time_one(NULL, NULL, buf, NULL),
        time_one(NULL, NULL, buf, out), time_one(pm, flat, NULL, NULL), time_one(NULL, flat, buf, out),
        time_one(pm, tree, NULL, NULL);
  for (int r = 0; r < rounds; r++) {
    tm[r] = time_one(NULL, NULL, buf, NULL);
    tt[r] = time_one(p, tree, NULL, NULL);
    tf[r] = time_one(p, flat, NULL, NULL);
    to[r] = time_one(NULL, NULL, buf, out);
    tjm[r] = time_one(pm, flat, NULL, NULL);
    tcm[r] = time_one(NULL, flat, buf, out);
    tjt[r] = time_one(pm, tree, NULL, NULL);
  }
  double mt = median(tt, rounds), mf = median(tf, rounds), mm = median(tm, rounds), mo = median(to, rounds);
  double mjm = median(tjm, rounds), mcm = median(tcm, rounds), mjt = median(tjt, rounds);
  if (!rank) {
    printf("processes\t%d (1 device each)\n", size);
    printf("pmap_psum_tree_3.76MB_ms\t%.3f\t(6 arrays)\n", mt * 1e3);
    printf("pmap_psum_flat_3.76MB_ms\t%.3f\t(one array)\n", mf * 1e3);
    printf("mpi_allreduce_3.76MB_ms\t%.3f\t(in place)\n", mm * 1e3);
    printf("mpi_allreduce_into_3.76MB_ms\t%.3f\t(into a second buffer, as psum makes a new array)\n",
           mo * 1e3);
    printf("ratio_tree_over_mpi\t%.3f\t(median of %d alternating rounds; goal <= 1.1)\n", mt / mm, rounds);
    printf("ratio_flat_over_mpi\t%.3f\n", mf / mm);
    printf("made_pmap_psum_of_2x_ms\t%.3f\t(the gradient made in the step: psum in place)\n", mjm * 1e3);
    printf("made_c_2x_then_allreduce_ms\t%.3f\t(C: y = 2x, MPI_Allreduce in place on y)\n", mcm * 1e3);
    printf("made_pmap_psum_of_2x_tree_ms\t%.3f\t(the same over the 6-array gradient tree)\n", mjt * 1e3);
    printf("ratio_made_over_c\t%.3f\n", mjm / mcm);
    printf("ratio_made_tree_over_c\t%.3f\t(goal <= 1.1: the tree's psum against one MPI_Allreduce)\n",
           mjt / mcm);
    printf("ratio_tree_over_mpi_into\t%.3f\n", mt / mo);
    printf("ratio_flat_over_mpi_into\t%.3f\n", mf / mo);
    printf("min_ms_tree_flat_mpi_into\t%.3f\t%.3f\t%.3f\t%.3f\n", tt[0] * 1e3, tf[0] * 1e3, tm[0] * 1e3,
           to[0] * 1e3);
  }
  free(tt), free(buf), free(out);
  jx_release(tree), jx_release(flat);
  jx_fn_free(p), jx_fn_free(f), jx_fn_free(pm), jx_fn_free(fm);
  return 0;
}
#else
int main(void) {
  printf("bench_pmap_mpi: jx was built without MPI (apt-get install libopenmpi-dev openmpi-bin): skipped\n");
  return 0;
}
#endif
