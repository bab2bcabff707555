/* The process layer over MPI (built instead of dist_none.c when CMake finds
 * MPI). Collectives are MPI's own blocking calls on a private duplicate of
 * MPI_COMM_WORLD with MPI_ERRORS_RETURN, so they run at MPI's speed (the
 * non-blocking MPI_Iallreduce of OpenMPI 4.1 is 3-6x slower on 4 MB).
 *
 * Faults: a process killed or exiting with a non-zero status is seen by
 * mpirun, which ends the job naming its rank. What mpirun cannot see is a
 * process that exits with status 0 mid-job (its MPI_Finalize would wait for
 * the others, who wait for it) or one that never reaches a collective. For
 * those a watchdog thread per process (MPI_THREAD_MULTIPLE) serves a control
 * communicator: a process exiting tells every other one; a process whose
 * collective is not done after JX_DIST_TIMEOUT seconds (default 30; 0: no
 * limit), or that hears of an exited peer while inside one, asks every
 * other process where it is, prints what it learnt (naming the ranks) and
 * calls MPI_Abort: the collective cannot be cancelled, so the job ends. */
#include "dist/dist.h"
#include "dist/fold.h"

#include <jx.h>
#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { TAG_EXIT = 1, TAG_QUERY = 2, TAG_REPLY = 3 };
enum { WHAT_MAX = 120 };

/* a watchdog's answer to "where are you?" */
typedef struct {
  int64_t seq;   /* collectives entered so far */
  int32_t state; /* 0 outside collectives, 1 inside one, 2 exiting */
  char what[WHAT_MAX];
} dist_where;

static struct {
  bool ready, own_mpi;
  int rank, size, thread_level;
  pid_t pid;
  MPI_Comm comm, ctl; /* collectives; watchdog messages */
  double timeout;     /* seconds; 0: none */
  pthread_t watchdog;
  bool watchdog_on;
  atomic_bool stop;
  pthread_mutex_t mu; /* guards what, since, exited, exit_status, nexit_seen */
  int64_t seq;
  int state;
  const char *what, *fn; /* the caller's strings: read only while state is 1 */
  double since;
  int *exited; /* per rank: 1 once its exit notice came */
  int *exit_status;
  int nexit_seen;
  MPI_Op own_ops[JX_DTYPE_COUNT][3]; /* by dtype: sum, max, min (own_fns) */
  bool own_ops_on;
} D = {.size = 1, .comm = MPI_COMM_NULL, .ctl = MPI_COMM_NULL, .mu = PTHREAD_MUTEX_INITIALIZER};

int jx_process_index(void) { return D.rank; }
int jx_process_count(void) { return D.size; }
bool jx_dist_active(void) { return D.ready && D.size > 1; }

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void nap_ms(int ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

static const char *mpi_err(int rc, char *buf) {
  int n = 0;
  if (MPI_Error_string(rc, buf, &n) != MPI_SUCCESS) snprintf(buf, MPI_MAX_ERROR_STRING, "MPI error %d", rc);
  return buf;
}

/* ---------------------------------------------------------------- watchdog */

/* the collective in progress (its strings live while it runs; D.mu held) */
static void where_now(char *buf) {
  if (D.state == 1)
    snprintf(buf, WHAT_MAX, "%s (%s)", D.what, D.fn);
  else
    snprintf(buf, WHAT_MAX, "%s", D.state == 2 ? "exit" : "-");
}

/* answer queries and record exit notices (watchdog thread, or the exit path) */
static void serve_ctl(void) {
  for (;;) {
    int flag = 0;
    MPI_Status st;
    /* by tag: a late reply (TAG_REPLY) must not hide the messages behind it */
    if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_EXIT, D.ctl, &flag, &st) != MPI_SUCCESS) return;
    if (!flag && (MPI_Iprobe(MPI_ANY_SOURCE, TAG_QUERY, D.ctl, &flag, &st) != MPI_SUCCESS || !flag)) return;
    int32_t msg = 0;
    MPI_Recv(&msg, 1, MPI_INT32_T, st.MPI_SOURCE, st.MPI_TAG, D.ctl, MPI_STATUS_IGNORE);
    if (st.MPI_TAG == TAG_EXIT) {
      pthread_mutex_lock(&D.mu);
      D.exited[st.MPI_SOURCE] = 1, D.exit_status[st.MPI_SOURCE] = msg, D.nexit_seen++;
      pthread_mutex_unlock(&D.mu);
    } else if (st.MPI_TAG == TAG_QUERY) {
      dist_where w = {0};
      pthread_mutex_lock(&D.mu);
      w.seq = D.seq, w.state = D.state;
      where_now(w.what);
      pthread_mutex_unlock(&D.mu);
      MPI_Send(&w, (int)sizeof w, MPI_BYTE, st.MPI_SOURCE, TAG_REPLY, D.ctl);
    }
  }
}

/* append to a fixed buffer */
static void add(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(char *buf, size_t n, const char *fmt, ...) {
  size_t len = strlen(buf);
  if (len + 1 >= n) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + len, n - len, fmt, ap);
  va_end(ap);
}

/* ask every live process where it is (up to 2 s) and describe each */
static void describe_peers(char *buf, size_t n, int64_t myseq) {
  static const char *const states[] = {"outside jx's collectives (computing, or stuck elsewhere)",
                                       "in collective", "exiting"};
  int *asked = calloc((size_t)D.size, sizeof(int));
  for (int r = 0; r < D.size && asked; r++) {
    if (r == D.rank || D.exited[r]) continue;
    int32_t q = 0;
    asked[r] = MPI_Send(&q, 1, MPI_INT32_T, r, TAG_QUERY, D.ctl) == MPI_SUCCESS;
  }
  for (double t0 = now_s(), left = 1; asked && left && now_s() - t0 < 2;) {
    serve_ctl();
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, TAG_REPLY, D.ctl, &flag, &st);
    if (!flag) {
      nap_ms(5);
    } else {
      dist_where w;
      MPI_Recv(&w, (int)sizeof w, MPI_BYTE, st.MPI_SOURCE, TAG_REPLY, D.ctl, MPI_STATUS_IGNORE);
      w.what[WHAT_MAX - 1] = 0, asked[st.MPI_SOURCE] = 0;
      int s = w.state >= 0 && w.state <= 2 ? w.state : 0;
      add(buf, n, "; rank %d: %s", st.MPI_SOURCE, states[s]);
      if (s == 1)
        add(buf, n, " #%lld %s%s", (long long)w.seq, w.what, w.seq == myseq ? " (the same one)" : "");
    }
    left = 0;
    for (int r = 0; r < D.size; r++) left += asked[r];
  }
  for (int r = 0; r < D.size; r++) {
    if (asked && asked[r]) add(buf, n, "; rank %d: no answer (hung, or its MPI is stuck)", r);
    if (D.exited[r]) add(buf, n, "; rank %d: exited (status %d)", r, D.exit_status[r]);
  }
  free(asked);
}

/* the collective this process waits in cannot finish: say why, end the job */
static void fire(const char *cause, int64_t seq) {
  char msg[4096] = "", what[WHAT_MAX];
  pthread_mutex_lock(&D.mu);
  bool still = D.state == 1 && D.seq == seq; /* it may have just finished */
  if (still) where_now(what);
  pthread_mutex_unlock(&D.mu);
  if (!still) return;
  add(msg, sizeof msg, "%s: process %d of %d (collective #%lld): %s", what, D.rank, D.size, (long long)seq,
      cause);
  describe_peers(msg, sizeof msg, seq);
  /* printed, not returned: the collective cannot be taken back (its
   * thread waits inside MPI), so the job ends here */
  fprintf(stderr, "jx: %s; aborting the job (MPI_Abort)\n", msg);
  fflush(stderr);
  MPI_Abort(D.comm, 70);
  _exit(70); /* MPI_Abort does not return; if it did, mpirun still sees this */
}

static void *watchdog_main(void *arg) {
  (void)arg;
  while (!atomic_load(&D.stop)) {
    nap_ms(50);
    serve_ctl();
    pthread_mutex_lock(&D.mu);
    bool busy = D.state == 1, late = busy && D.timeout > 0 && now_s() - D.since > D.timeout;
    int64_t seq = D.seq;
    int gone = -1;
    for (int r = 0; busy && D.nexit_seen && r < D.size && gone < 0; r++)
      if (D.exited[r]) gone = r;
    pthread_mutex_unlock(&D.mu);
    char cause[160];
    if (gone >= 0) {
      snprintf(cause, sizeof cause, "rank %d exited (status %d) without reaching it", gone,
               D.exit_status[gone]);
      fire(cause, seq);
    } else if (late) {
      snprintf(cause, sizeof cause, "not done after %g s (JX_DIST_TIMEOUT)", D.timeout);
      fire(cause, seq);
    }
  }
  return NULL;
}

static void watchdog_stop(void) {
  if (!D.watchdog_on) return;
  atomic_store(&D.stop, true);
  pthread_join(D.watchdog, NULL);
  D.watchdog_on = false;
}

/* ---------------------------------------------------------------- own reductions */

/* jx's own reductions as user MPI_Ops (the fold of the in-process
 * collectives, dist/fold.h) where MPI's cannot serve: bf16/f16, which MPI
 * has no type for (they travel as MPI_UINT16_T; sums widen to f32 and
 * round to the type, max/min compare as floats and keep a NaN), and the
 * 8/16-bit integers, whose MPI_SUM OpenMPI 4.1's AVX component computes
 * with saturating adds (open-mpi/ompi#8045, closed as wontfix) where jx's
 * sums wrap. Commutative: MPI may combine the processes in any order
 * (every process still gets the same bits: a + b and b + a round alike). */
#define OWN_DTYPES(X) X(bf16, JX_BF16) X(f16, JX_F16) X(i8, JX_I8) X(u8, JX_U8) X(i16, JX_I16) X(u16, JX_U16)
#define OWN_OP(S, DT, OP)                                                                                    \
  static void own_##S##_##OP(void *in, void *inout, int *len, MPI_Datatype *t) {                             \
    (void)t;                                                                                                 \
    jx_dist_fold(JX_DIST_##OP, DT, inout, in, *len);                                                         \
  }
#define OWN_OPS(S, DT) OWN_OP(S, DT, SUM) OWN_OP(S, DT, MAX) OWN_OP(S, DT, MIN)
OWN_DTYPES(OWN_OPS)
#define OWN_ROW(S, DT) [DT] = {own_##S##_SUM, own_##S##_MAX, own_##S##_MIN},
static MPI_User_function *const own_fns[JX_DTYPE_COUNT][3] = {OWN_DTYPES(OWN_ROW)};

/* all of them or none, once, under jx_distributed_init's lock (so no
 * collective can race it); freed by on_finalize */
static int create_own_ops(void) {
  MPI_Op *made[JX_DTYPE_COUNT * 3];
  int rc = MPI_SUCCESS, n = 0;
  for (int dt = 0; dt < JX_DTYPE_COUNT; dt++)
    for (int o = 0; own_fns[dt][0] && o < 3 && rc == MPI_SUCCESS; o++)
      if ((rc = MPI_Op_create(own_fns[dt][o], 1, &D.own_ops[dt][o])) == MPI_SUCCESS)
        made[n++] = &D.own_ops[dt][o];
  while (rc != MPI_SUCCESS && n > 0) MPI_Op_free(made[--n]);
  D.own_ops_on = rc == MPI_SUCCESS;
  return rc;
}

/* ---------------------------------------------------------------- exit, finalize */

/* MPI_Finalize (by jx's exit handler or by the user) deletes MPI_COMM_SELF's
 * attributes first: the watchdog stops and jx's communicators go */
static int on_finalize(MPI_Comm c, int key, void *val, void *extra) {
  (void)c, (void)key, (void)val, (void)extra;
  watchdog_stop();
  for (int dt = 0; D.own_ops_on && dt < JX_DTYPE_COUNT; dt++)
    for (int o = 0; own_fns[dt][0] && o < 3; o++) MPI_Op_free(&D.own_ops[dt][o]);
  D.own_ops_on = false;
  if (D.ctl != MPI_COMM_NULL) MPI_Comm_free(&D.ctl);
  if (D.comm != MPI_COMM_NULL) MPI_Comm_free(&D.comm);
  free(D.exited), free(D.exit_status);
  D.exited = D.exit_status = NULL;
  D.ready = false;
  return MPI_SUCCESS;
}

/* tell every other process that this one exits, then (status 0) wait until
 * all have said so: a barrier that the watchdogs of processes still inside a
 * collective turn into an abort naming this rank */
static void exit_handler(int status, void *arg) {
  (void)arg;
  if (getpid() != D.pid || !D.ready) return; /* a forked child, or finalized */
  if (D.size == 1) {
    MPI_Finalize();
    return;
  }
  pthread_mutex_lock(&D.mu);
  D.state = 2;
  pthread_mutex_unlock(&D.mu);
  MPI_Request *sends = calloc((size_t)D.size, sizeof(MPI_Request));
  int32_t st = status, nsend = 0;
  for (int r = 0; r < D.size && sends; r++)
    if (r != D.rank) MPI_Isend(&st, 1, MPI_INT32_T, r, TAG_EXIT, D.ctl, &sends[nsend++]);
  if (status != 0) {
    /* not finalized: mpirun sees the status and ends the job, naming us */
    fprintf(stderr, "jx: process %d of %d exits with status %d; MPI not finalized (mpirun ends the job)\n",
            D.rank, D.size, status);
    free(sends);
    return;
  }
  /* the watchdog counts the notices and keeps answering queries; the others
   * may still be computing, so no deadline here: past JX_DIST_TIMEOUT the
   * wait is only reported, once */
  for (double t0 = now_s(), told = 0;;) {
    pthread_mutex_lock(&D.mu);
    int seen = D.nexit_seen;
    pthread_mutex_unlock(&D.mu);
    if (seen >= D.size - 1) break;
    if (!D.watchdog_on) serve_ctl();
    if (!told && D.timeout > 0 && now_s() - t0 > D.timeout) {
      told = 1;
      fprintf(stderr, "jx: process %d of %d has exited and still waits (%g s) for %d process(es) to finish\n",
              D.rank, D.size, D.timeout, D.size - 1 - seen);
    }
    nap_ms(2);
  }
  watchdog_stop();
  if (sends) MPI_Waitall(nsend, sends, MPI_STATUSES_IGNORE);
  free(sends);
  MPI_Finalize();
}

/* ---------------------------------------------------------------- init */

static jx_t parse_timeout(void) {
  const char *s = getenv("JX_DIST_TIMEOUT");
  D.timeout = 30;
  if (!s || !*s) return NULL;
  char *end;
  double t = strtod(s, &end);
  if (*end || !(t >= 0) || t > 1e9)
    return jx_error_new(
        "jx_distributed_init: JX_DIST_TIMEOUT='%s': expected seconds (a number >= 0; 0: no limit)", s);
  D.timeout = t;
  return NULL;
}

/* MPI_Init_thread, or check how the user initialized it */
static jx_t start_mpi(void) {
  int inited = 0, finalized = 0, level = 0;
  MPI_Finalized(&finalized);
  if (finalized)
    return jx_error_new("jx_distributed_init: MPI was already finalized (MPI_Finalize was called)");
  MPI_Initialized(&inited);
  if (!inited) {
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &level);
    if (rc != MPI_SUCCESS) {
      char b[MPI_MAX_ERROR_STRING];
      return jx_error_new("jx_distributed_init: MPI_Init_thread failed: %s", mpi_err(rc, b));
    }
    D.own_mpi = true;
  } else {
    MPI_Query_thread(&level);
  }
  D.thread_level = level;
  if (level < MPI_THREAD_MULTIPLE)
    return jx_error_new(
        "jx_distributed_init: MPI %s with thread level %d; jx needs MPI_THREAD_MULTIPLE (%d): its "
        "watchdog thread serves fault notices while a collective runs",
        D.own_mpi ? "provides only" : "was initialized (by the program)", level, MPI_THREAD_MULTIPLE);
  return NULL;
}

static jx_t setup_comms(void) {
  int rc = MPI_Comm_dup(MPI_COMM_WORLD, &D.comm);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_set_errhandler(D.comm, MPI_ERRORS_RETURN);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_dup(D.comm, &D.ctl);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(D.comm, &D.rank);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_size(D.comm, &D.size);
  int key;
  if (rc == MPI_SUCCESS) rc = MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, on_finalize, &key, NULL);
  if (rc == MPI_SUCCESS) rc = create_own_ops();
  if (rc == MPI_SUCCESS) rc = MPI_Comm_set_attr(MPI_COMM_SELF, key, NULL);
  if (rc != MPI_SUCCESS) {
    char b[MPI_MAX_ERROR_STRING];
    return jx_error_new("jx_distributed_init: setting up jx's communicators failed: %s", mpi_err(rc, b));
  }
  D.exited = calloc((size_t)D.size, sizeof(int));
  D.exit_status = calloc((size_t)D.size, sizeof(int));
  if (!D.exited || !D.exit_status)
    return jx_error_new("jx_distributed_init: out of memory (%d processes)", D.size);
  return NULL;
}

static jx_t init_locked(void) {
  static char failed[1024]; /* a failed init is not retried: MPI allows one */
  if (D.ready) return NULL;
  if (failed[0]) return jx_error_new("%s", failed);
  jx_t e = parse_timeout();
  if (!e) e = start_mpi();
  if (!e) e = setup_comms();
  if (!e && D.size > 1) {
    atomic_store(&D.stop, false);
    if (pthread_create(&D.watchdog, NULL, watchdog_main, NULL))
      e = jx_error_new("jx_distributed_init: cannot start the watchdog thread");
    D.watchdog_on = !e;
  }
  if (e) {
    if (D.own_mpi) { /* jx started MPI: end it, so the process exits cleanly */
      on_finalize(MPI_COMM_NULL, 0, NULL, NULL);
      MPI_Finalize();
    }
    snprintf(failed, sizeof failed, "%s", jx_error(e));
    return e;
  }
  D.pid = getpid();
  D.ready = true;
  if (D.own_mpi) on_exit(exit_handler, NULL);
  return NULL;
}

/* two threads may call it at once: one initializes, the other waits */
jx_t jx_distributed_init(void) {
  static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&once);
  jx_t e = init_locked();
  pthread_mutex_unlock(&once);
  return e;
}

/* ---------------------------------------------------------------- collectives */

/* before a collective: initialized, no peer gone; the watchdog is told */
static jx_t begin(const char *fn, const char *what) {
  if (!D.ready)
    return jx_error_new("%s (%s): jx_distributed_init() was not called (or MPI was finalized): one process",
                        what, fn);
  pthread_mutex_lock(&D.mu);
  int gone = -1, status = 0;
  for (int r = 0; D.nexit_seen && r < D.size && gone < 0; r++)
    if (D.exited[r]) gone = r, status = D.exit_status[r];
  if (gone < 0) {
    D.seq++, D.state = 1, D.since = now_s();
    D.what = what, D.fn = fn;
  }
  pthread_mutex_unlock(&D.mu);
  if (gone >= 0)
    return jx_error_new("%s (%s): process %d of %d: rank %d has exited (status %d); the job cannot go on",
                        what, fn, D.rank, D.size, gone, status);
  return NULL;
}

static jx_t end(int rc, const char *fn, const char *what) {
  pthread_mutex_lock(&D.mu);
  D.state = 0;
  pthread_mutex_unlock(&D.mu);
  if (rc == MPI_SUCCESS) return NULL;
  char b[MPI_MAX_ERROR_STRING];
  return jx_error_new("%s (%s): process %d of %d: %s", what, fn, D.rank, D.size, mpi_err(rc, b));
}

/* jx's dtypes as MPI's; bool's sum is refused (JAX's psum takes bools as
 * i32), its max and min are or and and on 0/1 bytes; bf16/f16 travel as
 * MPI_UINT16_T. The dtypes of own_fns reduce by jx's ops, the others by
 * MPI's (32/64-bit integer sums wrap there as in jx). */
static const struct {
  bool ok;
  MPI_Datatype t;
} dtype_mpi[JX_DTYPE_COUNT] = {
    [JX_BOOL] = {true, MPI_UINT8_T}, [JX_I32] = {true, MPI_INT32_T},  [JX_I64] = {true, MPI_INT64_T},
    [JX_U32] = {true, MPI_UINT32_T}, [JX_F32] = {true, MPI_FLOAT},    [JX_F64] = {true, MPI_DOUBLE},
    [JX_I8] = {true, MPI_INT8_T},    [JX_U8] = {true, MPI_UINT8_T},   [JX_I16] = {true, MPI_INT16_T},
    [JX_U16] = {true, MPI_UINT16_T}, [JX_U64] = {true, MPI_UINT64_T}, [JX_BF16] = {true, MPI_UINT16_T},
    [JX_F16] = {true, MPI_UINT16_T},
};

static jx_t check_reduce(int64_t count, jx_dtype dt, jx_dist_op op, const char *what) {
  if ((unsigned)dt >= JX_DTYPE_COUNT || !dtype_mpi[dt].ok)
    return jx_error_new("%s (jx_dist_allreduce): dtype %d has no MPI type", what, (int)dt);
  if ((unsigned)op > JX_DIST_MIN)
    return jx_error_new("%s (jx_dist_allreduce): unknown reduction %d", what, (int)op);
  if (dt == JX_BOOL && op == JX_DIST_SUM)
    return jx_error_new(
        "%s (jx_dist_allreduce): the sum of bool values is not defined (convert to i32 first, as "
        "JAX's psum does)",
        what);
  if (count < 0) return jx_error_new("%s (jx_dist_allreduce): negative count %lld", what, (long long)count);
  return NULL;
}

jx_t jx_dist_allreduce_into(const void *send, void *recv, int64_t count, jx_dtype dt, jx_dist_op op,
                            const char *what) {
  static const char fn[] = "jx_dist_allreduce";
  jx_t e = check_reduce(count, dt, op, what);
  if (e || (e = begin(fn, what))) return e;
  static const MPI_Op mpi_ops[3] = {MPI_SUM, MPI_MAX, MPI_MIN};
  MPI_Op mop = own_fns[dt][0] ? D.own_ops[dt][op] : mpi_ops[op];
  size_t esize = jx_dtype_size(dt);
  int rc = MPI_SUCCESS;
  /* MPI counts are int: more than INT_MAX elements go in pieces */
  for (int64_t at = 0; at < count && rc == MPI_SUCCESS; at += INT_MAX / 2) {
    int64_t n = count - at < INT_MAX / 2 ? count - at : INT_MAX / 2;
    void *r = (char *)recv + (size_t)at * esize;
    const void *sb = send == recv ? MPI_IN_PLACE : (const char *)send + (size_t)at * esize;
    rc = MPI_Allreduce(sb, r, (int)n, dtype_mpi[dt].t, mop, D.comm);
  }
  return end(rc, fn, what);
}

jx_t jx_dist_allreduce(void *buf, int64_t count, jx_dtype dt, jx_dist_op op, const char *what) {
  return jx_dist_allreduce_into(buf, buf, count, dt, op, what);
}

static jx_t check_bytes(int64_t bytes, const char *fn, const char *what) {
  if (bytes < 0 || bytes > INT_MAX)
    return jx_error_new("%s (%s): %lld bytes per process: outside 0..%d (MPI's int counts)", what, fn,
                        (long long)bytes, INT_MAX);
  return NULL;
}

jx_t jx_dist_allgather(const void *send, void *recv, int64_t bytes, const char *what) {
  static const char fn[] = "jx_dist_allgather";
  jx_t e = check_bytes(bytes, fn, what);
  if (e || (e = begin(fn, what))) return e;
  return end(MPI_Allgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, D.comm), fn, what);
}

jx_t jx_dist_alltoall(const void *send, void *recv, int64_t bytes_per_rank, const char *what) {
  static const char fn[] = "jx_dist_alltoall";
  jx_t e = check_bytes(bytes_per_rank, fn, what);
  if (e || (e = begin(fn, what))) return e;
  int n = (int)bytes_per_rank;
  return end(MPI_Alltoall(send, n, MPI_BYTE, recv, n, MPI_BYTE, D.comm), fn, what);
}

jx_t jx_dist_sendrecv(const void *send, int dst, void *recv, int src, int64_t bytes, const char *what) {
  static const char fn[] = "jx_dist_sendrecv";
  if (dst < -1 || dst >= D.size || src < -1 || src >= D.size)
    return jx_error_new("%s (%s): process %d of %d: destination %d / source %d outside -1..%d", what, fn,
                        D.rank, D.size, dst, src, D.size - 1);
  if (bytes < 0) return jx_error_new("%s (%s): negative byte count %lld", what, fn, (long long)bytes);
  jx_t e = begin(fn, what);
  if (e) return e;
  int to = dst < 0 ? MPI_PROC_NULL : dst, from = src < 0 ? MPI_PROC_NULL : src, rc = MPI_SUCCESS;
  for (int64_t at = 0; at < bytes && rc == MPI_SUCCESS; at += INT_MAX / 2) {
    int n = (int)(bytes - at < INT_MAX / 2 ? bytes - at : INT_MAX / 2);
    rc = MPI_Sendrecv(send ? (const char *)send + at : NULL, to < 0 ? 0 : n, MPI_BYTE, to, 0,
                      recv ? (char *)recv + at : NULL, from < 0 ? 0 : n, MPI_BYTE, from, 0, D.comm,
                      MPI_STATUS_IGNORE);
  }
  return end(rc, fn, what);
}

/* every process's signature; an error on all of them naming the ranks that
 * differ from rank 0 (the same message everywhere) */
jx_t jx_dist_agree(uint64_t signature, const char *what) {
  static const char fn[] = "jx_dist_agree";
  jx_t e = begin(fn, what);
  if (e) return e;
  uint64_t *all = calloc((size_t)D.size, sizeof(uint64_t));
  int rc = all ? MPI_Allgather(&signature, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, D.comm) : MPI_ERR_NO_MEM;
  if ((e = end(rc, fn, what))) return free(all), e;
  char list[1024] = "";
  int ndiff = 0;
  for (int r = 1; r < D.size; r++) {
    if (all[r] == all[0]) continue;
    if (ndiff++ < 8) add(list, sizeof list, ", rank %d has %016llx", r, (unsigned long long)all[r]);
  }
  if (ndiff)
    e = jx_error_new(
        "%s (%s): the processes run different programs (shapes, dtypes or collectives differ): rank 0 "
        "has signature %016llx%s%s (%d of %d differ)",
        what, fn, (unsigned long long)all[0], list, ndiff > 8 ? ", ..." : "", ndiff, D.size);
  free(all);
  return e;
}
