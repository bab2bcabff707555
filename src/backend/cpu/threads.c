/* The process-wide thread pool behind jx_cpu_parallel_for.
 *
 * One job at a time: a dispatcher that wins `g_dispatch` (trylock) publishes
 * the job under `g_mu`, bumps the generation and wakes the workers; every
 * participant (the caller included) then claims chunks until none are left.
 * The chunks are dealt out in contiguous segments, one per participant:
 * each claims its own segment's chunks in order, then steals from the
 * others' (an atomic counter per segment). A thread streaming through one
 * contiguous range ran a memory-bound map ~30% faster than the same chunks
 * handed out round-robin (a 16 MB map on 2 cores, side by side: 0.35 vs
 * 0.51 ms), and stealing keeps a late or descheduled worker from holding
 * up the job. Anyone who finds the pool busy -- a nested
 * call from inside a chunk, or a second user thread -- runs its loop inline,
 * so calls never wait on each other and never deadlock.
 *
 * Workers spin briefly (until SPIN_NS after a job ends) before sleeping on a
 * condition variable: back-to-back eager ops then reach a warm worker in
 * well under a microsecond, while an idle pool costs nothing (the machine
 * may be shared). A worker woken on the dispatcher's CPU moves off it
 * (jx_cpu_leave_cpu, below). Workers are created
 * lazily on the first parallel call and joined by an atexit handler, so
 * LeakSanitizer and ThreadSanitizer see a clean shutdown. */
#include "backend/cpu/kernels.h"
#include "core/core.h" /* jx_now_ns */

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

enum {
  MAX_THREADS = 256,
  /* chunks per thread: a late worker costs little, and the last chunk, the
   * most one thread can idle at the end, is 1/32 of a 2-thread job (16
   * rather than 4 took eager slow_f from ~8.1 to ~7.7 ms in side-by-side
   * runs; jobs smaller than 32 grains get fewer chunks anyway) */
  CHUNKS_PER_THREAD = 16,
  SPIN_NS = 100000, /* how long an idle worker or a waiting caller spins */
};

typedef struct {
  jx_cpu_range_fn fn;
  void *ctx;
  int64_t n, nchunks;
  int max_workers; /* how many workers may join (the caller is extra) */
  int nseg;        /* segments: max_workers + 1 */
  int caller_cpu;  /* where the dispatcher ran when it published the job, or -1 */
} job_t;

/* A segment's next unclaimed chunk, one cache line each (no false sharing
 * between the participants' claims). */
typedef struct {
  _Alignas(64) _Atomic int64_t next;
} segment_t;

static pthread_mutex_t g_dispatch = PTHREAD_MUTEX_INITIALIZER; /* one job at a time */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;       /* the job and its crew */
static pthread_cond_t g_wake = PTHREAD_COND_INITIALIZER;       /* workers: new job or exit */
static pthread_cond_t g_done = PTHREAD_COND_INITIALIZER;       /* caller: workers left */

/* under g_mu (g_job and g_exit are written with g_dispatch held too) */
static job_t g_job;
static bool g_open;    /* workers may still join g_job */
static int g_joined;   /* workers that joined g_job */
static int g_sleepers; /* workers blocked in cond_wait (skip the broadcast if 0) */
static bool g_caller_sleeps;
static bool g_exit; /* atexit: workers leave; later calls run inline */

/* under g_dispatch */
static pthread_t g_workers[MAX_THREADS];
static int g_nworkers;
static int g_ncpu;         /* online CPUs, read when the first workers start */
static int g_atexit_state; /* 0 not yet, 1 registered, -1 atexit failed */

static _Atomic uint64_t g_gen;       /* bumped per job; spinners watch it */
static _Atomic int g_running;        /* workers inside g_job's chunk loop */
static segment_t g_seg[MAX_THREADS]; /* the job's segments of chunks */
static _Atomic int g_nthreads;       /* 0 = not yet read from the environment */
/* Spinning only pays when every pool thread has a core; oversubscribed,
 * a spinner would steal the time of the thread it waits for. */
static _Atomic int64_t g_spin_ns;
static _Atomic bool g_active; /* a job is out (its caller has not returned) */

static _Thread_local bool tl_in_pool; /* running chunks: nested calls go inline */
static _Thread_local int tl_cap;      /* a pmap device's share of the pool (api/pmap.c); 0: all */

int jx_cpu_set_thread_cap(int n) {
  int was = tl_cap;
  tl_cap = n > 0 ? n : 0;
  return was;
}

/* The CPU this thread is on, or -1 where that cannot be asked. */
static int this_cpu(void) {
#ifdef CPU_COUNT
  return sched_getcpu();
#else
  return -1;
#endif
}

/* the CPUs this process may run on */
static int online_cpus(void) {
  int n = 0;
#ifdef CPU_COUNT
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
#endif
  if (n < 1) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  return n > MAX_THREADS ? MAX_THREADS : n;
}

static int default_threads(void) {
  const char *env = getenv("JX_NUM_THREADS");
  if (env && *env) {
    char *end;
    long v = strtol(env, &end, 10);
    if (*end == '\0' && v >= 1) return v > MAX_THREADS ? MAX_THREADS : (int)v;
  }
  return online_cpus();
}

int jx_cpu_num_threads(void) {
  int n = atomic_load_explicit(&g_nthreads, memory_order_relaxed);
  if (n == 0) {
    n = default_threads();
    int expected = 0; /* a racing jx_cpu_set_num_threads wins */
    if (!atomic_compare_exchange_strong(&g_nthreads, &expected, n)) n = expected;
  }
  return tl_cap > 0 && n > tl_cap ? tl_cap : n;
}

/* n < 1 restores the default (JX_NUM_THREADS, else the online cores). */
void jx_cpu_set_num_threads(int n) {
  if (n < 1) n = default_threads();
  atomic_store(&g_nthreads, n > MAX_THREADS ? MAX_THREADS : n);
}

/* Start of chunk c: the first n % nchunks chunks are one longer, so sizes
 * differ by at most one and each is at least `grain` (nchunks <= n/grain). */
static int64_t chunk_start(const job_t *j, int64_t c) {
  int64_t q = j->n / j->nchunks, r = j->n % j->nchunks;
  return c * q + (c < r ? c : r);
}

/* First chunk of segment s (segment nseg ends the last one). */
static int64_t seg_start(const job_t *j, int s) { return (int64_t)s * j->nchunks / j->nseg; }

/* Claim chunks of `j` until none are left: participant `self`'s own
 * segment first, then the others', in turn. */
static void run_chunks(const job_t *j, int self) {
  tl_in_pool = true;
  for (int k = 0; k < j->nseg; k++) {
    const int s = (self + k) % j->nseg;
    const int64_t end = seg_start(j, s + 1);
    for (;;) {
      int64_t c = atomic_fetch_add_explicit(&g_seg[s].next, 1, memory_order_relaxed);
      if (c >= end) break;
      j->fn(j->ctx, chunk_start(j, c), chunk_start(j, c + 1));
    }
  }
  tl_in_pool = false;
}

/* The kernel may wake a sleeping worker on the CPU of the thread that woke
 * it (wake-affine placement) even when another CPU is idle. There the two
 * share one core: the caller's chunks stall while the worker runs and the
 * worker rarely runs at all, until the load balancer separates them
 * (milliseconds; on this VM the worker then sat out whole calls: by-hand
 * traces of a 16 MB map after 20 ms pauses showed the worker on the
 * caller's CPU in ~1 of 3 rounds, running 0 of 32 chunks in most of their
 * calls). A worker woken there moves itself: it drops that CPU from its
 * mask, which migrates it at once, and restores the mask. */
void jx_cpu_leave_cpu(int cpu) {
#ifdef CPU_COUNT
  if (cpu < 0 || cpu >= CPU_SETSIZE || this_cpu() != cpu) return;
  cpu_set_t all, others;
  if (sched_getaffinity(0, sizeof all, &all) != 0) return;
  others = all;
  CPU_CLR(cpu, &others);
  if (CPU_COUNT(&others) == 0 || sched_setaffinity(0, sizeof others, &others) != 0) return;
  sched_setaffinity(0, sizeof all, &all);
#else
  (void)cpu;
#endif
}

static void *worker_main(void *arg) {
  (void)arg;
  uint64_t seen = 0;
  for (;;) {
    /* Spin a while for the next job before paying for a sleep/wake: until
     * SPIN_NS after the last job *ended* (the caller may still be finishing
     * it; a worker that parked meanwhile would cost the next job a wake,
     * ~50 us on a VM). */
    const int64_t spin = atomic_load_explicit(&g_spin_ns, memory_order_relaxed);
    int64_t deadline = jx_now_ns() + spin;
    for (int i = 0; atomic_load_explicit(&g_gen, memory_order_acquire) == seen; i++) {
      CPU_RELAX();
      if ((i & 255) == 255) {
        const int64_t t = jx_now_ns();
        if (spin && atomic_load_explicit(&g_active, memory_order_relaxed))
          deadline = t + spin;
        else if (t > deadline)
          break;
      }
    }
    pthread_mutex_lock(&g_mu);
    bool slept = false;
    while (!g_exit && atomic_load_explicit(&g_gen, memory_order_relaxed) == seen) {
      g_sleepers++;
      pthread_cond_wait(&g_wake, &g_mu);
      g_sleepers--;
      slept = true;
    }
    if (g_exit) {
      pthread_mutex_unlock(&g_mu);
      return NULL;
    }
    seen = atomic_load_explicit(&g_gen, memory_order_relaxed);
    /* woken on the dispatcher's CPU: move, even if this job is already
     * over (spinning there for the next one would slow the caller) */
    const int wake_cpu = slept ? g_job.caller_cpu : -1;
    if (!g_open || g_joined >= g_job.max_workers) {
      pthread_mutex_unlock(&g_mu); /* job finished or full: wait for the next */
      jx_cpu_leave_cpu(wake_cpu);
      continue;
    }
    const int self = ++g_joined; /* the caller is participant 0 */
    job_t job = g_job;
    atomic_fetch_add_explicit(&g_running, 1, memory_order_relaxed);
    pthread_mutex_unlock(&g_mu);
    jx_cpu_leave_cpu(wake_cpu);

    run_chunks(&job, self);

    /* The last worker out wakes a caller that gave up spinning. Taking the
     * mutex orders the decrement with the caller's check-then-wait. */
    pthread_mutex_lock(&g_mu);
    if (atomic_fetch_sub_explicit(&g_running, 1, memory_order_acq_rel) == 1 && g_caller_sleeps)
      pthread_cond_signal(&g_done);
    pthread_mutex_unlock(&g_mu);
  }
}

static void shutdown_pool(void) {
  /* exit() from inside a chunk: this thread holds the pool (or is one of
   * its workers), so joining would deadlock; the process ends regardless. */
  if (tl_in_pool) return;
  pthread_mutex_lock(&g_dispatch); /* let a running job finish first */
  pthread_mutex_lock(&g_mu);
  g_exit = true;
  pthread_cond_broadcast(&g_wake);
  pthread_mutex_unlock(&g_mu);
  for (int i = 0; i < g_nworkers; i++) pthread_join(g_workers[i], NULL);
  g_nworkers = 0;
  pthread_mutex_unlock(&g_dispatch);
}

/* Called with g_dispatch held. Returns how many workers exist (maybe fewer
 * than asked if pthread_create fails: the pool then just uses fewer). */
static int ensure_workers(int want) {
  if (want > MAX_THREADS - 1) want = MAX_THREADS - 1;
  if (g_atexit_state == 0) g_atexit_state = atexit(shutdown_pool) == 0 ? 1 : -1;
  if (g_atexit_state < 0) return 0; /* no promise of a join at exit: stay inline */
  if (g_ncpu == 0) g_ncpu = online_cpus();
  while (g_nworkers < want) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, (size_t)4 << 20);
    int rc = pthread_create(&g_workers[g_nworkers], &attr, worker_main, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) break;
    g_nworkers++;
  }
  return g_nworkers;
}

void jx_cpu_parallel_for(int64_t n, int64_t grain, jx_cpu_range_fn fn, void *ctx) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int nt = jx_cpu_num_threads(); /* this thread's share (tl_cap) */
  if (nt <= 1 || n < 2 * grain || tl_in_pool || pthread_mutex_trylock(&g_dispatch) != 0) {
    fn(ctx, 0, n);
    return;
  }
  int64_t nchunks = n / grain;
  if (nchunks > (int64_t)nt * CHUNKS_PER_THREAD) nchunks = (int64_t)nt * CHUNKS_PER_THREAD;
  int helpers = nt - 1 < nchunks - 1 ? nt - 1 : (int)(nchunks - 1);
  /* g_exit only changes under g_dispatch, which we hold. */
  int have = g_exit ? 0 : ensure_workers(helpers);
  if (helpers > have) helpers = have;
  if (helpers < 1) {
    pthread_mutex_unlock(&g_dispatch);
    fn(ctx, 0, n);
    return;
  }
  int64_t spin = nt <= g_ncpu ? SPIN_NS : 0;
  atomic_store_explicit(&g_spin_ns, spin, memory_order_relaxed);
  atomic_store_explicit(&g_active, true, memory_order_relaxed);

  pthread_mutex_lock(&g_mu);
  g_job = (job_t){.fn = fn,
                  .ctx = ctx,
                  .n = n,
                  .nchunks = nchunks,
                  .max_workers = helpers,
                  .nseg = helpers + 1,
                  .caller_cpu = g_sleepers > 0 ? this_cpu() : -1};
  g_open = true;
  g_joined = 0;
  for (int s = 0; s < g_job.nseg; s++)
    atomic_store_explicit(&g_seg[s].next, seg_start(&g_job, s), memory_order_relaxed);
  atomic_fetch_add_explicit(&g_gen, 1, memory_order_release);
  if (g_sleepers > 0) pthread_cond_broadcast(&g_wake);
  pthread_mutex_unlock(&g_mu);

  run_chunks(&g_job, 0); /* g_job is stable: only this dispatcher writes it */

  /* Every chunk is claimed. Close the job so late wakers skip it, then wait
   * for the workers that joined (they may still be inside a chunk). */
  pthread_mutex_lock(&g_mu);
  g_open = false;
  pthread_mutex_unlock(&g_mu);
  int64_t deadline = jx_now_ns() + spin;
  for (int i = 0; atomic_load_explicit(&g_running, memory_order_acquire) > 0; i++) {
    CPU_RELAX();
    if ((i & 255) == 255 && jx_now_ns() > deadline) break;
  }
  pthread_mutex_lock(&g_mu);
  while (atomic_load_explicit(&g_running, memory_order_acquire) > 0) {
    g_caller_sleeps = true;
    pthread_cond_wait(&g_done, &g_mu);
  }
  g_caller_sleeps = false;
  pthread_mutex_unlock(&g_mu);
  atomic_store_explicit(&g_active, false, memory_order_relaxed);
  pthread_mutex_unlock(&g_dispatch);
}
