/* The process layer (src/dist): run alone by ctest, it checks one process
 * (jx_distributed_init without mpirun gives a job of one; without MPI built
 * in, an error value saying so); tests/dist_mpi_test.sh runs the other
 * scenarios under `mpirun -np 2`:
 *   test_dist mpi         every jx_dist_* function, every dtype, bad input,
 *                         mismatched signatures (an error on every rank)
 *   test_dist user        the program starts and finalizes MPI itself
 *   test_dist late        rank 1 finishes 3 s after rank 0: a clean end
 *   test_dist exitfirst   rank 1 has exited when rank 0 calls a collective:
 *                         an error value there, and a clean end
 *   test_dist exit0|exit3|kill|hang
 *                         rank 1 leaves (exit(0), exit(3), SIGKILL) or stalls
 *                         while rank 0 is inside an allreduce: the job must
 *                         end, naming rank 1 (the script checks the output) */
#include "check.h"
#include "coll_ref.h"
#include "dist/dist.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef JX_TEST_HAVE_MPI
#include <mpi.h>
#endif

/* LeakSanitizer: MPI_Init's own allocations live until exit by design.
 * MPI's libraries have no frame pointers: the slow unwinder finds their
 * frames, so that these suppressions match (and only them) */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
  return "leak:libmpi\nleak:libopen-pal\nleak:libopen-rte\nleak:libpmix\nleak:libhwloc\nleak:libevent\n";
}
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "fast_unwind_on_malloc=0"; }

static int R, N; /* this process, the number of processes */

/* rank r's element i of dtype dt: exact in every dtype, u32 above INT32_MAX
 * (unsigned compares), i64 beyond 32 bits, negative where signed */
static void fill(void *p, jx_dtype dt, int rank, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    int v = (int)((rank * 7 + i * 3) % 11) - 5 + rank; /* -5 .. 6 */
    switch (dt) {
      case JX_BOOL: ((uint8_t *)p)[i] = (uint8_t)(v & 1); break;
      case JX_I32: ((int32_t *)p)[i] = v * 100000; break;
      case JX_I64: ((int64_t *)p)[i] = (int64_t)v * 4000000000LL; break;
      case JX_U32: ((uint32_t *)p)[i] = (uint32_t)(v + 5) * 200000000u; break;
      case JX_F32: ((float *)p)[i] = (float)v * 0.25f; break;
      case JX_F64: ((double *)p)[i] = v * 0.125; break;
      default: { /* #19's: integers that wrap when summed, u64 above 2^63, exact bf16/f16 */
        uint64_t b = ref_is_half(dt)     ? ref_round(dt, v * 0.25)
                     : dt == JX_U64      ? (uint64_t)(v + 5) * 0x3000000000000000ull
                     : ref_is_signed(dt) ? (uint64_t)(v * 9000) & ref_mask(dt)
                                         : (uint64_t)(v + 5) * 9000u & ref_mask(dt);
        memcpy((char *)p + (size_t)i * jx_dtype_size(dt), &b, jx_dtype_size(dt)); /* little-endian */
      }
    }
  }
}

/* acc op= x in the dtype's own arithmetic (u32 sums wrap, as in C) */
#define REDUCE_AS(T)                                                                                         \
  for (int64_t i = 0; i < n; i++) {                                                                          \
    T a = ((T *)acc)[i], b = ((const T *)x)[i];                                                              \
    ((T *)acc)[i] = op == JX_DIST_SUM ? (T)(a + b) : op == JX_DIST_MAX ? (a > b ? a : b) : (a < b ? a : b);  \
  }
static void reduce_into(void *acc, const void *x, jx_dtype dt, jx_dist_op op, int64_t n) {
  switch (dt) {
    case JX_BOOL: REDUCE_AS(uint8_t) break;
    case JX_I32: REDUCE_AS(int32_t) break;
    case JX_I64: REDUCE_AS(int64_t) break;
    case JX_U32: REDUCE_AS(uint32_t) break;
    case JX_F32: REDUCE_AS(float) break;
    case JX_F64: REDUCE_AS(double) break;
    default: { /* tests/coll_ref.h's reference on the patterns */
      size_t es = jx_dtype_size(dt);
      int rop = op == JX_DIST_SUM ? REF_SUM : op == JX_DIST_MAX ? REF_MAX : REF_MIN;
      for (int64_t i = 0; i < n; i++) {
        uint64_t a = 0, b = 0;
        memcpy(&a, (char *)acc + (size_t)i * es, es), memcpy(&b, (const char *)x + (size_t)i * es, es);
        a = ref_op(rop, dt, a, b);
        memcpy((char *)acc + (size_t)i * es, &a, es);
      }
    }
  }
}

/* allreduce of every dtype and op against the same reduction done here */
static void check_allreduce(void) {
  enum { COUNT = 1001 };
  static const jx_dist_op ops[] = {JX_DIST_SUM, JX_DIST_MAX, JX_DIST_MIN};
  for (int dt = 0; dt < JX_DTYPE_COUNT; dt++) {
    size_t es = jx_dtype_size((jx_dtype)dt);
    char *buf = malloc(COUNT * es), *want = malloc(COUNT * es), *other = malloc(COUNT * es);
    for (int k = 0; k < 3; k++) {
      if (dt == JX_BOOL && ops[k] == JX_DIST_SUM) continue; /* refused: check_bad_input */
      fill(buf, (jx_dtype)dt, R, COUNT);
      fill(want, (jx_dtype)dt, 0, COUNT);
      for (int r = 1; r < N; r++)
        fill(other, (jx_dtype)dt, r, COUNT), reduce_into(want, other, (jx_dtype)dt, ops[k], COUNT);
      jx_t e = jx_dist_allreduce(buf, COUNT, (jx_dtype)dt, ops[k], "test allreduce");
      CHECKF(!e, "%s", jx_error(e));
      CHECKF(!memcmp(buf, want, COUNT * es), "allreduce %s op %d differs", jx_dtype_name((jx_dtype)dt), k);
    }
    free(buf), free(want), free(other);
  }
  /* nothing to reduce is fine */
  CHECK(!jx_dist_allreduce(NULL, 0, JX_F32, JX_DIST_SUM, "empty allreduce"));
}

/* byte j of rank r's block for rank t */
static unsigned char pat(int r, int t, int j) { return (unsigned char)(r * 31 + t * 7 + j); }

static void check_gather_alltoall(void) {
  enum { B = 37 };
  unsigned char send[B * 8], recv[B * 8];
  for (int j = 0; j < B; j++) send[j] = pat(R, 0, j);
  memset(recv, 0xee, sizeof recv);
  jx_t e = jx_dist_allgather(send, recv, B, "test allgather");
  CHECKF(!e, "%s", jx_error(e));
  int bad = 0;
  for (int r = 0; r < N; r++)
    for (int j = 0; j < B; j++) bad += recv[r * B + j] != pat(r, 0, j);
  CHECKF(!bad, "allgather: %d bytes wrong", bad);

  for (int t = 0; t < N; t++)
    for (int j = 0; j < B; j++) send[t * B + j] = pat(R, t, j); /* block t goes to rank t */
  memset(recv, 0xee, sizeof recv);
  e = jx_dist_alltoall(send, recv, B, "test alltoall");
  CHECKF(!e, "%s", jx_error(e));
  bad = 0;
  for (int r = 0; r < N; r++)
    for (int j = 0; j < B; j++) bad += recv[r * B + j] != pat(r, R, j); /* from rank r, its block for me */
  CHECKF(!bad, "alltoall: %d bytes wrong", bad);
}

static void check_sendrecv(void) {
  enum { B = 100003 }; /* beyond the eager limit of shared memory */
  unsigned char *send = malloc(B), *recv = malloc(B);
  for (int j = 0; j < B; j++) send[j] = pat(R, 1, j);
  /* a ring shift: to the next rank, from the previous one */
  int next = (R + 1) % N, prev = (R + N - 1) % N;
  memset(recv, 0, B);
  jx_t e = jx_dist_sendrecv(send, next, recv, prev, B, "test ring shift");
  CHECKF(!e, "%s", jx_error(e));
  int bad = 0;
  for (int j = 0; j < B; j++) bad += recv[j] != pat(prev, 1, j);
  CHECKF(!bad, "sendrecv ring: %d bytes wrong", bad);
  /* one direction only: rank 0 sends to the last rank, which only receives */
  memset(recv, 0, B);
  e = jx_dist_sendrecv(R == 0 ? send : NULL, R == 0 ? N - 1 : -1, R == N - 1 ? recv : NULL,
                       R == N - 1 ? 0 : -1, B, "test one-way");
  CHECKF(!e, "%s", jx_error(e));
  if (R == N - 1) {
    bad = 0;
    for (int j = 0; j < B; j++) bad += recv[j] != pat(0, 1, j);
    CHECKF(!bad, "sendrecv one-way: %d bytes wrong", bad);
  }
  free(send), free(recv);
}

/* equal signatures pass; unequal ones give the same error on every rank,
 * and the processes go on (no collective is left half done) */
static void check_agree(void) {
  jx_t e = jx_dist_agree(0x1234abcdULL, "test agree");
  CHECKF(!e, "%s", jx_error(e));
  e = jx_dist_agree(N > 1 && R == N - 1 ? 0x99ULL : 0x1234abcdULL, "psum over 'i' of f32[3]");
  if (N > 1) {
    char rank[32];
    snprintf(rank, sizeof rank, "rank %d has", N - 1);
    EXPECT_ERROR(e, "psum over 'i' of f32[3]", "jx_dist_agree", "different programs", rank,
                 "0000000000000099", "000000001234abcd");
  } else {
    CHECK(!e);
  }
  float x = 1;
  e = jx_dist_allreduce(&x, 1, JX_F32, JX_DIST_SUM, "after a disagreement");
  CHECKF(!e && x == (float)N, "%s %g", jx_error(e), x);
}

/* an error inside MPI is an error value (MPI_ERRORS_RETURN), not an abort:
 * rank 1 expects fewer bytes than rank 0 sends it (truncated); rank 0 gets
 * fewer than it asked for, which MPI allows. Then both go on. */
static void check_mpi_error(void) {
  char buf[64] = {0};
  if (N == 2) {
    int64_t bytes = R == 0 ? 64 : 16;
    jx_t e = jx_dist_sendrecv(buf, 1 - R, buf, 1 - R, bytes, "ppermute over 'i' of u8[n]");
    if (R == 1)
      EXPECT_ERROR(e, "ppermute over 'i' of u8[n]", "jx_dist_sendrecv", "process 1 of 2", "truncat");
    else
      CHECKF(!e, "%s", jx_error(e));
  }
  float x = 2;
  jx_t e = jx_dist_allreduce(&x, 1, JX_F32, JX_DIST_SUM, "after an MPI error");
  CHECKF(!e && x == 2.0f * (float)N, "%s %g", jx_error(e), x);
}

/* refused before any message: the same answer on every rank, no hang */
static void check_bad_input(void) {
  uint8_t b[4] = {0};
  float f[4] = {0};
  EXPECT_ERROR(jx_dist_allreduce(b, 4, JX_BOOL, JX_DIST_SUM, "psum of bool"), "psum of bool", "bool", "i32");
  EXPECT_ERROR(jx_dist_allreduce(f, 4, (jx_dtype)99, JX_DIST_SUM, "bad dtype"), "bad dtype", "dtype 99");
  EXPECT_ERROR(jx_dist_allreduce(f, 4, JX_F32, (jx_dist_op)7, "bad op"), "bad op", "reduction 7");
  EXPECT_ERROR(jx_dist_allreduce(f, -1, JX_F32, JX_DIST_SUM, "bad count"), "bad count", "negative count -1");
  EXPECT_ERROR(jx_dist_allgather(f, f, -2, "bad gather"), "bad gather", "jx_dist_allgather", "-2 bytes");
  EXPECT_ERROR(jx_dist_alltoall(f, f, (int64_t)1 << 40, "big alltoall"), "big alltoall", "bytes per process");
  EXPECT_ERROR(jx_dist_sendrecv(f, N, f, 0, 4, "ppermute over 'i'"), "ppermute over 'i'", "jx_dist_sendrecv",
               "destination");
  EXPECT_ERROR(jx_dist_sendrecv(f, 0, f, -2, 4, "bad source"), "bad source", "source -2");
  EXPECT_ERROR(jx_dist_sendrecv(f, -1, f, -1, -4, "bad bytes"), "bad bytes", "negative");
}

static void *init_in_thread(void *out) {
  jx_t e = jx_distributed_init();
  *(const char **)out = e ? jx_error(e) : NULL;
  return NULL;
}

/* mpirun -np N test_dist mpi */
static int run_mpi(void) {
  /* two threads at once: one starts MPI, both get NULL */
  const char *other = "not run";
  pthread_t th;
  CHECK(!pthread_create(&th, NULL, init_in_thread, &other));
  jx_t e = jx_distributed_init();
  CHECKF(!e, "%s", jx_error(e));
  pthread_join(th, NULL);
  CHECKF(!other, "%s", other);
  R = jx_process_index(), N = jx_process_count();
  const char *env = getenv("OMPI_COMM_WORLD_RANK");
  CHECKF(!env || atoi(env) == R, "rank %d vs OMPI_COMM_WORLD_RANK %s", R, env);
  env = getenv("OMPI_COMM_WORLD_SIZE");
  CHECKF(!env || atoi(env) == N, "size %d vs OMPI_COMM_WORLD_SIZE %s", N, env);
  CHECK(N >= 2 && jx_dist_active());
  CHECK(!jx_distributed_init()); /* idempotent */
  check_allreduce();
  check_gather_alltoall();
  check_sendrecv();
  check_agree();
  check_mpi_error();
  check_bad_input();
  char name[32];
  snprintf(name, sizeof name, "test_dist mpi rank %d of %d", R, N);
  return check_report(name);
}

/* rank 1 works on for 3 s after the last collective while rank 0 exits: a
 * normal end (rank 0 waits at exit, past JX_DIST_TIMEOUT, without aborting) */
static int run_late(void) {
  jx_t e = jx_distributed_init();
  if (e) return fprintf(stderr, "%s\n", jx_error(e)), 1;
  float x = 1;
  e = jx_dist_allreduce(&x, 1, JX_F32, JX_DIST_SUM, "last psum");
  if (e || x != (float)jx_process_count()) return fprintf(stderr, "%s\n", e ? jx_error(e) : "wrong sum"), 1;
  if (jx_process_index() == 1) sleep(3);
  printf("rank %d: done\n", jx_process_index());
  return 0;
}

/* rank 1 exits (status 0) while rank 0 computes: rank 0's next collective
 * is refused with an error value (nothing sent), and both end cleanly */
static int run_exit_first(void) {
  jx_t e = jx_distributed_init();
  if (e) return fprintf(stderr, "%s\n", jx_error(e)), 1;
  float x = 1;
  e = jx_dist_allreduce(&x, 1, JX_F32, JX_DIST_SUM, "last psum");
  if (e) return fprintf(stderr, "%s\n", jx_error(e)), 1;
  if (jx_process_index() == 1) return 0;
  sleep(3); /* rank 1's notice arrives meanwhile (the watchdog looks every 50 ms) */
  e = jx_dist_allreduce(&x, 1, JX_F32, JX_DIST_SUM, "psum after a peer left");
  printf("rank 0: %s\n", e ? jx_error(e) : "no error");
  return 0;
}

/* rank 1 leaves (or stalls) half a second into rank 0's allreduce */
static int run_fault(const char *how) {
  jx_t e = jx_distributed_init();
  if (e) return fprintf(stderr, "%s\n", jx_error(e)), 1;
  R = jx_process_index(), N = jx_process_count();
  float x[4] = {1, 2, 3, 4};
  e = jx_dist_allreduce(x, 4, JX_F32, JX_DIST_SUM, "warm-up psum");
  if (e) return fprintf(stderr, "%s\n", jx_error(e)), 1;
  printf("rank %d: warm-up done\n", R);
  fflush(stdout);
  if (R == 1) {
    usleep(500000);
    if (!strcmp(how, "exit0")) exit(0);
    if (!strcmp(how, "exit3")) exit(3);
    if (!strcmp(how, "kill")) raise(SIGKILL);
    if (!strcmp(how, "hang")) sleep(60);
  }
  e = jx_dist_allreduce(x, 4, JX_F32, JX_DIST_SUM, "psum over 'batch' of f32[4]");
  /* rank 0 never gets here: its watchdog or mpirun ends the job */
  printf("rank %d: the allreduce returned (%s): the fault was not seen\n", R, e ? jx_error(e) : "ok");
  return 2;
}

#ifdef JX_TEST_HAVE_MPI
/* mpirun -np N test_dist user: the program starts and ends MPI itself */
static int run_user(void) {
  int level = 0;
  MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &level);
  jx_t e = jx_distributed_init();
  CHECKF(!e, "%s", jx_error(e));
  R = jx_process_index(), N = jx_process_count();
  int wr = -1, wn = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &wr), MPI_Comm_size(MPI_COMM_WORLD, &wn);
  CHECK(wr == R && wn == N && N >= 2 && jx_dist_active());
  float x = 1;
  e = jx_dist_allreduce(&x, 1, JX_F32, JX_DIST_SUM, "psum before MPI_Finalize");
  CHECKF(!e && x == (float)N, "%s %g", jx_error(e), x);
  MPI_Finalize(); /* the program's own: jx's communicators and watchdog close with it */
  CHECK(!jx_dist_active());
  EXPECT_ERROR(jx_dist_allreduce(&x, 1, JX_F32, JX_DIST_SUM, "psum after MPI_Finalize"),
               "psum after MPI_Finalize", "finalized");
  EXPECT_ERROR(jx_distributed_init(), "jx_distributed_init", "already finalized");
  char name[40];
  snprintf(name, sizeof name, "test_dist user rank %d of %d", R, N);
  return check_report(name);
}

/* in a child: the program started MPI without MPI_THREAD_MULTIPLE */
static int child_serialized(void) {
  int level = 0;
  MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &level);
  jx_t e = jx_distributed_init();
  const char *m = e ? jx_error(e) : NULL;
  int ok =
      level < MPI_THREAD_MULTIPLE ? m && strstr(m, "MPI_THREAD_MULTIPLE") && strstr(m, "by the program") : !m;
  if (!ok) fprintf(stderr, "level %d: %s\n", level, m ? m : "no error");
  MPI_Finalize();
  return ok ? 0 : 1;
}

/* a child process's exit status */
static int child_status(int (*fn)(void)) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) _exit(fn());
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return -1;
  return WEXITSTATUS(st);
}

/* a bad JX_DIST_TIMEOUT: an error value, and the same one again */
static int child_bad_timeout(void) {
  setenv("JX_DIST_TIMEOUT", "soon", 1);
  jx_t e = jx_distributed_init();
  const char *m = jx_error(e);
  jx_t e2 = jx_distributed_init();
  return m && strstr(m, "JX_DIST_TIMEOUT='soon'") && jx_error(e2) && !strcmp(jx_error(e2), m) ? 0 : 1;
}
#endif

/* no mpirun: a job of one process (or, without MPI, an error saying so) */
static int run_single(void) {
  CHECK(jx_process_count() == 1 && jx_process_index() == 0 && !jx_dist_active());
  float x[3] = {1, 2, 3};
#ifdef JX_TEST_HAVE_MPI
  /* before jx_distributed_init a collective is refused */
  EXPECT_ERROR(jx_dist_allreduce(x, 3, JX_F32, JX_DIST_SUM, "psum early"), "psum early",
               "jx_distributed_init");
  /* in children: MPI starts once per process */
  CHECK(child_status(child_bad_timeout) == 0);
  CHECK(child_status(child_serialized) == 0);
  jx_t e = jx_distributed_init();
  CHECKF(!e, "%s", jx_error(e));
  CHECK(!jx_distributed_init());
  R = jx_process_index(), N = jx_process_count();
  CHECK(R == 0 && N == 1 && !jx_dist_active());
  /* every collective works on a job of one */
  check_allreduce();
  check_gather_alltoall();
  check_sendrecv();
  check_agree();
  check_bad_input();
#else
  EXPECT_ERROR(jx_distributed_init(), "jx_distributed_init", "without MPI");
  EXPECT_ERROR(jx_dist_allreduce(x, 3, JX_F32, JX_DIST_SUM, "psum over 'i'"), "psum over 'i'", "without MPI");
  EXPECT_ERROR(jx_dist_agree(1, "agree"), "agree", "without MPI");
  CHECK(jx_process_count() == 1 && !jx_dist_active());
#endif
  return check_report("test_dist (one process)");
}

int main(int argc, char **argv) {
  check_verbose = getenv("JX_TEST_VERBOSE") != NULL;
  if (argc < 2) return run_single();
  if (!strcmp(argv[1], "mpi")) return run_mpi();
  if (!strcmp(argv[1], "late")) return run_late();
  if (!strcmp(argv[1], "exitfirst")) return run_exit_first();
#ifdef JX_TEST_HAVE_MPI
  if (!strcmp(argv[1], "user")) return run_user();
#endif
  return run_fault(argv[1]);
}
