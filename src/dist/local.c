/* In-process devices and their rendezvous.
 *
 * A run (jx_run_devices) runs device 0 on the calling thread and the
 * others on persistent worker threads (the crew, below); each thread knows
 * its device (tl_dev) and runs the same program. A collective's impl
 * (jx_coll_run) finds its group, the devices that differ from it only
 * along the named axes, and meets them there: each member publishes its
 * input (slot), all wait at a barrier, each computes its own output by
 * reading the others' inputs, and a second barrier keeps the inputs alive
 * until everyone has read them. Every wait also ends when a device of the
 * run failed (its error stops the whole run) or when a member finished its
 * program without coming (a program that differs per device): nothing
 * waits forever. Across processes (pmap after jx_distributed_init) the
 * group's first member calls the process layer (dist.h) between the
 * barriers: an allreduce of the in-process result (psum, pmax, pmin) or an
 * allgather of the members' inputs (the other collectives). */
#include "dist/local.h"

#include "dist/dist.h"
#include "dist/fold.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* ---------------------------------------------------------------- devices */
static _Atomic int g_devices; /* 0: not read yet */

static int env_devices(void) {
  const char *e = getenv("JX_CPU_DEVICES");
  if (!e || !*e) return 1;
  char *end;
  long v = strtol(e, &end, 10);
  if (*end || v < 1 || v > JX_MAX_DEVICES) {
    jx_diag("JX_CPU_DEVICES=%s is not a count in 1..%d: using 1 device\n", e, JX_MAX_DEVICES);
    return 1;
  }
  return (int)v;
}

int jx_local_device_count(void) {
  int n = atomic_load(&g_devices);
  if (n == 0) {
    int expected = 0;
    n = env_devices();
    if (!atomic_compare_exchange_strong(&g_devices, &expected, n)) n = expected;
  }
  return n;
}

int jx_device_count(void) { return jx_local_device_count() * jx_process_count(); }

jx_t jx_set_cpu_devices(int n) {
  if (n > JX_MAX_DEVICES)
    return jx_error_new("jx_set_cpu_devices(%d): at most %d devices per process", n, JX_MAX_DEVICES);
  atomic_store(&g_devices, n < 1 ? env_devices() : n);
  return NULL;
}

/* ------------------------------------------------------- axis environment */
enum { MAX_FRAMES = 32 };
static _Thread_local jx_axis_frame tl_frames[MAX_FRAMES];
static _Thread_local int tl_nframes;

jx_t jx_axis_push(const char *name, int64_t size, jx_trace *batch) {
  if (tl_nframes == MAX_FRAMES)
    return jx_error_new("axis '%s': more than %d nested named axes", name, MAX_FRAMES);
  jx_axis_frame *f = &tl_frames[tl_nframes++];
  snprintf(f->name, sizeof f->name, "%s", name);
  f->size = size, f->batch = batch, f->dynamic = jx_dynamic_trace();
  return NULL;
}

void jx_axis_pop(void) {
  JX_CHECK(tl_nframes > 0);
  tl_nframes--;
}

const jx_axis_frame *jx_axis_find(const char *name) {
  for (int i = tl_nframes; i-- > 0;)
    if (!strcmp(tl_frames[i].name, name)) return &tl_frames[i];
  return NULL;
}

jx_t jx_axis_names_parse(const char *op, const char *list, char names[][JX_AXIS_NAME_CAP], int *n) {
  *n = 0;
  if (!list || !*list) return jx_error_new("%s: no axis name given", op);
  for (const char *p = list;;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == 0) return jx_error_new("%s: empty axis name in '%s'", op, list);
    if (len >= JX_AXIS_NAME_CAP)
      return jx_error_new("%s: axis name '%.*s' is longer than %d bytes", op, (int)len, p,
                          JX_AXIS_NAME_CAP - 1);
    if (*n == JX_COLL_MAX_NAMES)
      return jx_error_new("%s: more than %d axis names in '%s'", op, JX_COLL_MAX_NAMES, list);
    memset(names[*n], 0, JX_AXIS_NAME_CAP);
    memcpy(names[*n], p, len);
    for (int i = 0; i < *n; i++)
      if (!strcmp(names[i], names[*n])) return jx_error_new("%s: axis name '%s' given twice", op, names[i]);
    (*n)++;
    if (!e) return NULL;
    p = e + 1;
  }
}

/* ------------------------------------------------------------------- runs */
typedef struct {
  jx_prim prim;
  uint64_t phash;
  jx_aval aval;
  const void *in;
  void *out;
} slot;

typedef struct { /* one rendezvous: a group's members */
  int n, arrived;
  int index, ngroups;   /* this group's index among its mask's groups, and their count */
  _Atomic uint64_t gen; /* bumped under the run's mutex; spinners read it without */
  int *members;         /* device ids, by rank */
  slot *slots;          /* by rank */
  jx_t shared_err;      /* the first member's process-layer error (retained) */
  char *xbuf;           /* across processes: every process's inputs (first member's) */
} group;

struct jx_run {
  int ndim, ndev;
  int64_t shape[JX_MESH_MAX_DIMS];
  char names[JX_MESH_MAX_DIMS][JX_AXIS_NAME_CAP];
  bool spans;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  jx_t first_err;                       /* retained; set once: the run is aborted */
  bool *finished;                       /* per device */
  group *groups[1 << JX_MESH_MAX_DIMS]; /* per axis mask, lazily */
  int turn[1 << JX_MESH_MAX_DIMS];      /* per mask: the group whose process-layer call is next */
};

typedef struct {
  jx_run *run;
  int dev;
  int coord[JX_MESH_MAX_DIMS];
} device_ctx;

static _Thread_local device_ctx *tl_dev;

/* the harness's one-device binding (no threads, no rendezvous) */
static _Thread_local jx_run tl_single_run;
static _Thread_local device_ctx tl_single_dev;

void jx_coll_bind_single(const char *name) {
  if (!name) {
    tl_dev = NULL;
    return;
  }
  memset(&tl_single_run, 0, sizeof tl_single_run);
  tl_single_run.ndim = 1, tl_single_run.ndev = 1, tl_single_run.shape[0] = 1;
  snprintf(tl_single_run.names[0], JX_AXIS_NAME_CAP, "%s", name);
  tl_single_dev = (device_ctx){.run = &tl_single_run};
  tl_dev = &tl_single_dev;
}

static void run_free(jx_run *r) {
  for (int m = 0; m < (1 << JX_MESH_MAX_DIMS); m++) {
    group *g = r->groups[m];
    if (!g) continue;
    for (int i = 0; g[0].n && i < r->ndev / g[0].n; i++) {
      jx_free(g[i].members), jx_free(g[i].slots), jx_free(g[i].xbuf);
      if (g[i].shared_err) jx_release(g[i].shared_err);
    }
    jx_free(g);
  }
  if (r->first_err) jx_release(r->first_err);
  jx_free(r->finished);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
  jx_free(r);
}

/* Stop the run with err (the first one wins; err is retained here). */
static void run_abort(jx_run *r, jx_t err) {
  pthread_mutex_lock(&r->mu);
  if (!r->first_err) r->first_err = jx_retain(err);
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

/* The groups for axis mask m (under r->mu): ndev / n groups of n members,
 * a group per setting of the other axes' coordinates, ranks row-major over
 * the masked axes in mesh order. NULL when out of memory. */
static group *groups_for(jx_run *r, unsigned m) {
  if (r->groups[m]) return r->groups[m];
  int n = 1;
  for (int a = 0; a < r->ndim; a++)
    if (m >> a & 1) n *= (int)r->shape[a];
  int ng = r->ndev / n;
  group *g = jx_calloc((size_t)ng, sizeof *g);
  bool ok = g != NULL;
  for (int i = 0; ok && i < ng; i++) {
    g[i].n = n, g[i].index = i, g[i].ngroups = ng;
    g[i].members = jx_malloc(sizeof(int) * (size_t)n);
    g[i].slots = jx_calloc((size_t)n, sizeof(slot));
    ok = g[i].members && g[i].slots;
  }
  if (!ok) {
    for (int i = 0; g && i < ng; i++) jx_free(g[i].members), jx_free(g[i].slots);
    jx_free(g);
    return NULL;
  }
  for (int d = 0; d < r->ndev; d++) { /* d's coordinates, row-major */
    int64_t c[JX_MESH_MAX_DIMS], rest = d;
    for (int a = r->ndim; a-- > 0;) c[a] = rest % r->shape[a], rest /= r->shape[a];
    int64_t gi = 0, rank = 0;
    for (int a = 0; a < r->ndim; a++) {
      if (m >> a & 1)
        rank = rank * r->shape[a] + c[a];
      else
        gi = gi * r->shape[a] + c[a];
    }
    g[gi].members[rank] = d;
  }
  return r->groups[m] = g;
}

static bool member_finished(const jx_run *r, const group *g, int *who) {
  for (int i = 0; i < g->n; i++)
    if (r->finished[g->members[i]]) return *who = g->members[i], true;
  return false;
}

/* How long a member waits spinning for the others before it sleeps on the
 * condition variable: the members of a data-parallel step reach each
 * collective within microseconds of each other, and a futex wake-up costs
 * tens of microseconds, a dozen times a step. Only while every device can
 * have a core of its own: otherwise the spinner would take the time of the
 * member it waits for. */
enum { MEET_SPIN_NS = 50000 };

/* the spin in ns: MEET_SPIN_NS, or JX_MEET_SPIN_NS (for measurements; 0
 * sleeps at once); 0 when the run has more devices than the machine CPUs */
static int64_t spin_ns(const jx_run *r) {
  static _Atomic int64_t ns = -1;
  static _Atomic int ncpu;
  int64_t v = atomic_load_explicit(&ns, memory_order_relaxed);
  if (v < 0) {
    const char *e = getenv("JX_MEET_SPIN_NS");
    v = e && *e ? strtoll(e, NULL, 10) : MEET_SPIN_NS;
    atomic_store(&ncpu, (int)sysconf(_SC_NPROCESSORS_ONLN)); /* before ns: readers of ns see it */
    atomic_store(&ns, v < 0 ? 0 : v);
  }
  return r->ndev > atomic_load(&ncpu) ? 0 : v;
}

/* Spin until *gen moves from seen or ns pass; true if it moved. */
static bool spin_gen(_Atomic uint64_t *gen, uint64_t seen, int64_t ns) {
  if (ns <= 0) return false;
  const int64_t end = jx_now_ns() + ns;
  for (int i = 0;; i++) {
    if (atomic_load_explicit(gen, memory_order_acquire) != seen) return true;
    CPU_RELAX();
    if ((i & 63) == 63 && jx_now_ns() > end) return false;
  }
}

static void spin_for(const jx_run *r, group *g, uint64_t gen) { spin_gen(&g->gen, gen, spin_ns(r)); }

/* The barrier of group g: NULL once every member arrived, else the error
 * that stopped the run (or names the member that will never come). */
static jx_t meet(jx_run *r, group *g, const char *what) {
  pthread_mutex_lock(&r->mu);
  uint64_t gen = g->gen;
  int gone = -1;
  if (++g->arrived == g->n) {
    g->arrived = 0, g->gen++;
    pthread_cond_broadcast(&r->cv);
  } else {
    pthread_mutex_unlock(&r->mu);
    spin_for(r, g, gen);
    pthread_mutex_lock(&r->mu);
    while (g->gen == gen && !r->first_err && !member_finished(r, g, &gone)) pthread_cond_wait(&r->cv, &r->mu);
  }
  bool met = g->gen != gen;
  jx_t first = r->first_err ? jx_retain(r->first_err) : NULL;
  pthread_mutex_unlock(&r->mu);
  if (met) {
    if (first) jx_release(first);
    return NULL;
  }
  jx_t err = first ? jx_pool_own(first)
                   : jx_error_new("%s: device %d finished its program without reaching this collective "
                                  "(the devices ran different programs)",
                                  what, gone);
  return err;
}

/* --------------------------------------------------------------- compute */
/* dst[k] = op over j of srcs[j][off + k], k < len (elements of dt): the
 * first member's run copied, then each other member's folded in, in
 * member order, one contiguous pass each (dist/fold.h: wrapping integer
 * sums, bf16/f16 sums rounded to the type after each member, as XLA:CPU) */
static const jx_dist_op fold_op[JX_PRIM_COUNT] = {[JX_P_psum] = JX_DIST_SUM,
                                                  [JX_P_psum_scatter] = JX_DIST_SUM,
                                                  [JX_P_pmax] = JX_DIST_MAX,
                                                  [JX_P_pmin] = JX_DIST_MIN};

static void reduce_into(jx_prim p, jx_dtype dt, void *dst, const slot *s, int n, int64_t off, int64_t len) {
  size_t es = jx_dtype_size(dt);
  memcpy(dst, (const char *)s[0].in + (size_t)off * es, (size_t)len * es);
  for (int j = 1; j < n; j++)
    jx_dist_fold(fold_op[p], dt, dst, (const char *)s[j].in + (size_t)off * es, len);
}

static int64_t prod(const int64_t *s, int lo, int hi) {
  int64_t n = 1;
  for (int i = lo; i < hi; i++) n *= s[i];
  return n;
}

/* all_gather: out (per block of the dims before axis) holds every member's
 * block in rank order; tiled or not, the bytes lie the same way */
static void gather_into(const jx_params *pa, const slot *s, int n, char *out) {
  const jx_aval *a = &s[0].aval;
  size_t es = jx_dtype_size(a->dtype);
  int64_t outer = prod(a->shape, 0, pa->coll.axis);
  size_t inner = (size_t)prod(a->shape, pa->coll.axis, a->ndim) * es;
  for (int64_t o = 0; o < outer; o++)
    for (int j = 0; j < n; j++)
      memcpy(out + ((size_t)o * (size_t)n + (size_t)j) * inner, (const char *)s[j].in + (size_t)o * inner,
             inner);
}

/* psum_scatter: member `rank` keeps block rank of dim axis of the sum */
static void scatter_into(const jx_params *pa, const slot *s, int n, int rank, void *out) {
  const jx_aval *a = &s[0].aval;
  int d = pa->coll.axis;
  int64_t outer = prod(a->shape, 0, d), inner = prod(a->shape, d + 1, a->ndim) * (a->shape[d] / n);
  size_t es = jx_dtype_size(a->dtype);
  for (int64_t o = 0; o < outer; o++)
    reduce_into(JX_P_psum, a->dtype, (char *)out + (size_t)(o * inner) * es, s, n, (o * n + rank) * inner,
                inner);
}

/* all_to_all: element by element through the index map (small groups) */
static void alltoall_into(const jx_params *pa, const slot *s, int n, int rank, const jx_aval *oa, char *out) {
  const jx_aval *a = &s[0].aval;
  size_t es = jx_dtype_size(a->dtype);
  int sa = pa->coll.axis, ca = pa->coll.axis2, r = a->ndim;
  int64_t is[JX_MAX_RANK], total = jx_aval_size(oa);
  jx_strides(r, a->shape, is);
  for (int64_t e = 0; e < total; e++) {
    int64_t u[JX_MAX_RANK], rest = e, src[JX_MAX_RANK];
    for (int i = oa->ndim; i-- > 0;) u[i] = rest % oa->shape[i], rest /= oa->shape[i];
    int j;
    if (pa->coll.tiled) { /* dim ca holds n blocks; dim sa is block `rank` of the source's */
      int64_t blk = a->shape[ca];
      if (ca == sa) blk /= n;
      j = (int)(u[ca] / blk);
      for (int i = 0; i < r; i++) src[i] = u[i];
      src[ca] = u[ca] % blk;
      src[sa] = rank * (a->shape[sa] / n) + src[sa] % (a->shape[sa] / n);
    } else { /* drop dim ca of the result (the source member), put rank at sa */
      j = (int)u[ca];
      int64_t v[JX_MAX_RANK] = {0};
      for (int i = 0, m = 0; i < r; i++)
        if (i != ca) v[m++] = u[i];
      for (int i = 0, k = 0; i < r; i++) src[i] = i == sa ? rank : v[k++];
    }
    int64_t off = 0;
    for (int i = 0; i < r; i++) off += src[i] * is[i];
    memcpy(out + (size_t)e * es, (const char *)s[j].in + (size_t)off * es, es);
  }
}

/* psum/pmax/pmin: member `rank` reduces chunk `rank` of the inputs and
 * writes it into every member's output (each input is read once in all,
 * and the work is split over the members), a block at a time through a
 * block in L1: the block's inputs are all read before any output of it is
 * written. So an output may be its member's own input (lower.inplace):
 * only member `rank` reads or writes chunk `rank` of any buffer, and the
 * first meet has made every input final. (Reducing the whole chunk first,
 * then copying it, read it back from memory: the MLP's 2.65 MB weight
 * gradient is larger than L2.) */
enum { REDUCE_BLOCK = 16384 };

static void reduce_chunk(jx_prim p, const slot *s, int n, int rank) {
  const jx_aval *a = &s[rank].aval;
  int64_t size = jx_aval_size(a), chunk = (size + n - 1) / n, lo = rank * chunk;
  int64_t hi = lo >= size ? lo : size - lo < chunk ? size : lo + chunk;
  size_t es = jx_dtype_size(a->dtype);
  int64_t step = REDUCE_BLOCK / (int64_t)es;
  _Alignas(64) char blk[REDUCE_BLOCK];
  for (int64_t b = lo; b < hi; b += step) {
    int64_t len = hi - b < step ? hi - b : step;
    reduce_into(p, a->dtype, blk, s, n, b, len);
    for (int j = 0; j < n; j++) memcpy((char *)s[j].out + (size_t)b * es, blk, (size_t)len * es);
  }
}

static void compute(jx_prim p, const jx_params *pa, const slot *s, int n, int rank, int64_t index_base,
                    jx_t out) {
  const jx_aval *a = &s[rank].aval;
  switch (p) {
    case JX_P_psum:
    case JX_P_pmax:
    case JX_P_pmin: reduce_chunk(p, s, n, rank); break;
    case JX_P_all_gather: gather_into(pa, s, n, jx_data(out)); break;
    case JX_P_psum_scatter: scatter_into(pa, s, n, rank, jx_data(out)); break;
    case JX_P_all_to_all: alltoall_into(pa, s, n, rank, &out->aval, jx_data(out)); break;
    case JX_P_ppermute: {
      int src = -1;
      for (int j = 0; j < n; j++)
        if (pa->coll.perm[j] == rank) src = j;
      size_t nb = (size_t)jx_aval_size(a) * jx_dtype_size(a->dtype);
      if (src >= 0)
        memcpy(jx_data(out), s[src].in, nb);
      else
        memset(jx_data(out), 0, nb);
      break;
    }
    case JX_P_axis_index: *(int32_t *)jx_data(out) = (int32_t)(index_base + rank); break;
    default: JX_CHECK(!"not a collective");
  }
}

/* ------------------------------------------------------------ collectives */
/* The axes of the run that pa names, as a mask, with this device's rank in
 * its group and the group's index; an error names an unknown axis. */
static jx_t locate(const jx_run *r, const device_ctx *d, jx_prim p, const jx_params *pa, unsigned *mask,
                   int *rank, int64_t *gi, int *n) {
  *mask = 0, *rank = 0, *n = 1, *gi = 0;
  for (int k = 0; k < pa->coll.nnames; k++) {
    int a = 0;
    while (a < r->ndim && strcmp(r->names[a], pa->coll.names[k])) a++;
    if (a == r->ndim) {
      char known[JX_MESH_MAX_DIMS * (JX_AXIS_NAME_CAP + 2)] = "";
      for (int b = 0; b < r->ndim; b++) strcat(strcat(known, b ? ", " : ""), r->names[b]);
      return jx_error_new("%s: unknown axis name '%s' (the devices' axes here: %s)", jx_prim_names[p],
                          pa->coll.names[k], known);
    }
    *mask |= 1u << a;
  }
  for (int a = 0; a < r->ndim; a++) {
    if (*mask >> a & 1) {
      *rank = *rank * (int)r->shape[a] + d->coord[a], *n *= (int)r->shape[a];
    } else {
      *gi = *gi * r->shape[a] + d->coord[a];
    }
  }
  return NULL;
}

static const char *what_of(jx_prim p, const jx_params *pa, char *buf, size_t n) {
  snprintf(buf, n, "%s over axis '%s'", jx_prim_names[p], pa->coll.names[0]);
  return buf;
}

/* The members' inputs must agree (the same collective, params and type). */
static jx_t check_same(jx_prim p, const jx_params *pa, const slot *s, int n, const char *what) {
  for (int j = 1; j < n; j++) {
    if (s[j].prim == s[0].prim && s[j].phash == s[0].phash && jx_aval_eq(&s[j].aval, &s[0].aval)) continue;
    char a0[160], aj[160];
    (void)pa;
    return jx_error_new("%s: the members disagree: member 0 runs %s on %s, member %d runs %s on %s", what,
                        jx_prim_names[s[0].prim], jx_aval_str(&s[0].aval, a0, sizeof a0), j,
                        jx_prim_names[s[j].prim], jx_aval_str(&s[j].aval, aj, sizeof aj));
  }
  (void)p;
  return NULL;
}

/* Across processes, psum/pmax/pmin: the group's first member combines the
 * processes' results in its output (fold_op's reduction), the others copy
 * it. */

/* A mesh whose first axis spans processes has, for a collective over that
 * axis and not all the others, several groups in each process, each
 * making its own MPI call on one communicator from its first member's
 * thread. MPI needs every process to call the collectives on a
 * communicator in the same order, so the groups of a mask take turns in
 * group order (the same everywhere). An error value: the run was aborted,
 * or the group before never comes. */
static jx_t cross_turn_begin(jx_run *r, unsigned mask, const group *g, const char *what) {
  pthread_mutex_lock(&r->mu);
  const group *gs = r->groups[mask];
  /* (a group whose first member finished its program will not take its
   * turn: the devices ran different programs, an error like meet's) */
  while (r->turn[mask] != g->index && !r->first_err && !r->finished[gs[r->turn[mask]].members[0]])
    pthread_cond_wait(&r->cv, &r->mu);
  bool go = r->turn[mask] == g->index && !r->first_err;
  pthread_mutex_unlock(&r->mu);
  return go ? NULL
            : jx_error_new("%s: the run was aborted, or a device finished its program without reaching this "
                           "collective (the devices ran different programs)",
                           what);
}
static void cross_turn_end(jx_run *r, unsigned mask, const group *g) {
  pthread_mutex_lock(&r->mu);
  r->turn[mask] = (g->index + 1) % g->ngroups;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

static jx_t reduce_across(jx_run *r, group *g, unsigned mask, jx_prim p, int rank, jx_t out,
                          const char *what) {
  jx_t err = meet(r, g, what); /* every member's chunk is in rank 0's output */
  if (err) return err;
  if (rank == 0) {
    jx_t e = cross_turn_begin(r, mask, g, what);
    if (!e) {
      e = jx_dist_allreduce(jx_data(out), jx_aval_size(&out->aval), out->aval.dtype, fold_op[p], what);
      cross_turn_end(r, mask, g);
    }
    if (e) g->shared_err = jx_retain(e);
  }
  err = meet(r, g, what);
  if (!err && g->shared_err) err = jx_pool_own(jx_retain(g->shared_err));
  if (!err && rank != 0)
    memcpy(jx_data(out), g->slots[0].out, (size_t)jx_aval_size(&out->aval) * jx_dtype_size(out->aval.dtype));
  return err;
}

/* rank 0 of g: every process's members' inputs, process-major, into
 * g->xbuf (one allgather of each process's packed inputs) */
static jx_t gather_inputs(group *g, int n, size_t bytes, const char *what) {
  size_t procs = (size_t)jx_process_count();
  char *send = jx_malloc(bytes * (size_t)n + 1);
  g->xbuf = jx_malloc(bytes * (size_t)n * procs + 1);
  jx_t e = NULL;
  if (!send || !g->xbuf) {
    /* the other processes wait in the allgather until the watchdog ends the job */
    e = jx_error_new("%s: out of memory for %zu bytes from %zu processes", what, bytes * (size_t)n, procs);
  } else {
    for (int j = 0; j < n; j++) memcpy(send + (size_t)j * bytes, g->slots[j].in, bytes);
    e = jx_dist_allgather(send, g->xbuf, (int64_t)(bytes * (size_t)n), what);
  }
  jx_free(send);
  return e;
}

/* Across processes, all_gather, psum_scatter, all_to_all and ppermute: the
 * group's first member allgathers its members' inputs with the other
 * processes', then every member computes its own output from all of them
 * as in one process (global rank = process * n + local rank). One MPI call
 * per collective; psum_scatter, all_to_all and ppermute move more bytes
 * than they need (every input reaches every process). */
static jx_t exchange_across(jx_run *r, group *g, unsigned mask, jx_prim p, const jx_params *pa, int rank,
                            int n, jx_t out, const char *what) {
  const jx_aval *a = &g->slots[rank].aval;
  size_t bytes = (size_t)jx_aval_size(a) * jx_dtype_size(a->dtype);
  int total = n * jx_process_count();
  if (rank == 0) {
    jx_free(g->xbuf), g->xbuf = NULL; /* the last one's readers all met after it */
    jx_t e = cross_turn_begin(r, mask, g, what);
    if (!e) {
      e = gather_inputs(g, n, bytes, what);
      cross_turn_end(r, mask, g);
    }
    if (e) g->shared_err = jx_retain(e);
  }
  jx_t err = meet(r, g, what);
  if (!err && g->shared_err) err = jx_pool_own(jx_retain(g->shared_err));
  slot *s = err ? NULL : jx_malloc(sizeof(slot) * (size_t)total);
  if (!err && !s) err = jx_error_new("%s: out of memory", what);
  if (!err) {
    for (int j = 0; j < total; j++) s[j] = g->slots[0], s[j].in = g->xbuf + (size_t)j * bytes;
    compute(p, pa, s, total, jx_process_index() * n + rank, 0, out);
  }
  jx_free(s);
  return err;
}

/* Under jit a psum/pmax/pmin may get its dead input's buffer as its output
 * (lower.inplace). A replicated reduction reads the input n times as it
 * writes: *in then points at a copy, in *stash (release it after). false:
 * out of memory. */
static bool stash_input(const void **in, const jx_aval *a, jx_buffer **stash) {
  const size_t bytes = (size_t)jx_aval_size(a) * jx_dtype_size(a->dtype);
  if (!(*stash = jx_buffer_new(bytes ? bytes : 1))) return false;
  *in = memcpy((*stash)->data, *in, bytes);
  return true;
}

/* Outside any device group, under a named vmap over the axis: the value
 * reached the impl without passing the vmap (a jitted or control-flow body
 * all of whose operands it does not map), so every member holds the same
 * x: psum is n times it, all_gather n copies. What would differ per member
 * is an error. */
static jx_t replicated(jx_prim p, const jx_params *pa, const jx_t *in, jx_t out, const char *what) {
  int64_t n = 1;
  for (int k = 0; k < pa->coll.nnames; k++) {
    const jx_axis_frame *f = jx_axis_find(pa->coll.names[k]);
    if (!f || !f->batch)
      return jx_error_new("%s: the axis is not bound here: a collective runs inside pmap, shard_map or a "
                          "named vmap over its axis",
                          what);
    n *= f->size;
  }
  bool full = p == JX_P_ppermute;
  for (int j = 0; full && j < n; j++) {
    bool has = false;
    for (int s = 0; s < n; s++) has |= pa->coll.perm[s] == j;
    full = has;
  }
  if (p == JX_P_ppermute && full) p = JX_P_pmax; /* every member receives the same x */
  if (p != JX_P_psum && p != JX_P_pmax && p != JX_P_pmin && p != JX_P_all_gather)
    return jx_error_new("%s: inside a named vmap, on a value the vmap does not map (in a jitted or control "
                        "flow body none of whose operands it maps): each member's result would differ",
                        what);
  if (n != pa->coll.size)
    return jx_error_new("%s: traced for %lld members, the named vmap has %lld", what,
                        (long long)pa->coll.size, (long long)n);
  const void *src = jx_data(in[0]);
  jx_buffer *stash = NULL;
  slot *s = jx_malloc(sizeof(slot) * (size_t)n);
  if (!s || (src == jx_data(out) && !stash_input(&src, &in[0]->aval, &stash))) {
    jx_free(s);
    return jx_error_new("%s: out of memory", what);
  }
  for (int64_t j = 0; j < n; j++) s[j] = (slot){p, 0, in[0]->aval, src, NULL};
  for (int64_t j = 0; j < n; j++) s[j].out = jx_data(out);
  if (p == JX_P_all_gather)
    compute(p, pa, s, (int)n, 0, 0, out);
  else
    reduce_into(p, out->aval.dtype, jx_data(out), s, (int)n, 0, jx_aval_size(&out->aval));
  jx_free(s);
  jx_buffer_release(stash);
  return NULL;
}

/* A group of one member in this process (one device per process, or a
 * mesh whose other axes give several such groups: they take turns) */
static jx_t reduce_alone(jx_run *r, unsigned mask, int64_t gi, const slot *self, jx_prim p,
                         const char *what) {
  const int64_t count = jx_aval_size(&self->aval);
  if (r->ndev == 1)
    return jx_dist_allreduce_into(self->in, self->out, count, self->aval.dtype, fold_op[p], what);
  pthread_mutex_lock(&r->mu);
  group *gs = groups_for(r, mask);
  pthread_mutex_unlock(&r->mu);
  if (!gs) {
    jx_t err = jx_error_new("%s: out of memory", what);
    run_abort(r, err);
    return err;
  }
  jx_t err = cross_turn_begin(r, mask, &gs[gi], what);
  if (err) return err;
  err = jx_dist_allreduce_into(self->in, self->out, count, self->aval.dtype, fold_op[p], what);
  cross_turn_end(r, mask, &gs[gi]);
  return err;
}

jx_t jx_coll_run(jx_prim p, const jx_params *pa, const jx_t *in, jx_t out) {
  char what[96];
  what_of(p, pa, what, sizeof what);
  device_ctx *d = tl_dev;
  if (!d) return replicated(p, pa, in, out, what);
  jx_run *r = d->run;
  unsigned mask;
  int rank, n;
  int64_t gi;
  jx_t err = locate(r, d, p, pa, &mask, &rank, &gi, &n);
  if (err) return err;
  bool cross = r->spans && (mask & 1) && jx_dist_active();
  int64_t members = cross ? (int64_t)n * jx_process_count() : n;
  if (members != pa->coll.size)
    return jx_error_new("%s: traced for %lld members, but %lld devices run it", what,
                        (long long)pa->coll.size, (long long)members);
  int64_t base = cross ? (int64_t)jx_process_index() * n : 0;
  slot self = {p, jx_params_hash(pa), p == JX_P_axis_index ? out->aval : in[0]->aval,
               p == JX_P_axis_index ? NULL : jx_data(in[0]), jx_data(out)};
  /* under jit, psum/pmax/pmin may get their dead input's buffer as their
   * output (lower.inplace): alone, the result is already there */
  const bool in_place = self.in && self.in == self.out;
  if (n == 1 && !cross) {
    if (!in_place) compute(p, pa, &self, 1, 0, base, out);
    return NULL;
  }
  /* only the reductions run in place (their lowering's inplace), and they
   * read all of a block before writing it (reduce_chunk): no copy */
  const bool reduces = p == JX_P_psum || p == JX_P_pmax || p == JX_P_pmin;
  if (n == 1 && reduces) /* one member of the group per process: straight to MPI */
    return reduce_alone(r, mask, gi, &self, p, what);
  pthread_mutex_lock(&r->mu);
  group *gs = groups_for(r, mask);
  pthread_mutex_unlock(&r->mu);
  if (!gs) {
    err = jx_error_new("%s: out of memory", what);
    run_abort(r, err); /* the others would wait for this member */
    return err;
  }
  group *g = &gs[gi];
  g->slots[rank] = self;
  if (rank == 0 && g->shared_err) jx_release(g->shared_err), g->shared_err = NULL;
  err = meet(r, g, what);
  if (!err) err = check_same(p, pa, g->slots, n, what);
  bool exchange = cross && !reduces && p != JX_P_axis_index;
  if (!err && !exchange) compute(p, pa, g->slots, n, rank, base, out);
  if (!err && cross && p != JX_P_axis_index) {
    if (reduces)
      err = reduce_across(r, g, mask, p, rank, out, what);
    else
      err = exchange_across(r, g, mask, p, pa, rank, n, out, what);
  }
  jx_t err2 = meet(r, g, what); /* the inputs stay alive until all have read them */
  return err ? err : err2;
}

/* -------------------------------------------------------- device threads */
/* One device's part of a run, on whichever thread runs it: its coordinates
 * bound (tl_dev), fn in its own pool, its end announced to the others
 * (member_finished). The thread's own binding, if any, comes back after. */
static void device_body(jx_run *r, int dev, jx_device_fn fn, void *ctx) {
  device_ctx d = {.run = r, .dev = dev};
  for (int ax = r->ndim, rest = dev; ax-- > 0;)
    d.coord[ax] = (int)(rest % r->shape[ax]), rest /= (int)r->shape[ax];
  device_ctx *outer = tl_dev;
  tl_dev = &d;
  jx_pool_push();
  jx_t err = fn(dev, ctx);
  if (err && jx_is_error(err)) run_abort(r, err);
  jx_pool_pop();
  pthread_mutex_lock(&r->mu);
  r->finished[dev] = true;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  tl_dev = outer;
}

/* --- the crew: persistent device threads.
 * A pmap call used to start a thread per device and join them all: a
 * thread start (an 8 MB stack mapped and faulted in, a wake on the other
 * core) per device per call, and the first collective absorbed the skew.
 * The crew's workers stay: worker k runs device k + 1 of each run, the
 * caller runs device 0 itself. Between runs a worker spins CREW_SPIN_NS
 * for the next one (a training loop calls pmap back to back, and a futex
 * wake costs tens of microseconds on a VM), then sleeps; it spins only
 * while every device can have a core of its own. One run at a time: a
 * caller that finds the crew busy (a second user thread, a pmap reached
 * from inside a device's program) starts threads of its own, as before.
 * The workers are joined at exit (LeakSanitizer and ThreadSanitizer see a
 * clean shutdown), unless a run is still out then (exit() from inside a
 * device's program: its members may wait on each other, and the process
 * ends regardless). A child process (fork) starts a crew of its own. */
enum { CREW_SPIN_NS = 100000 };

static struct {
  pthread_mutex_t mu;
  pthread_cond_t wake; /* workers: a new run, or exit */
  pthread_cond_t done; /* the caller: the last worker finished */
  pthread_t tid[JX_MAX_DEVICES];
  uint64_t born[JX_MAX_DEVICES]; /* by device: the run count when its worker started */
  int nworkers;
  pid_t pid;            /* the process that started them */
  _Atomic uint64_t gen; /* bumped per run (spinning workers read it without mu) */
  _Atomic int pending;  /* workers still inside the run */
  int sleepers;
  bool caller_sleeps, exit, atexit_armed;
  int64_t spin_ns;
  /* the run */
  jx_run *run;
  int ndev;
  jx_device_fn fn;
  void *ctx;
} crew = {
    .mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static pthread_mutex_t crew_busy = PTHREAD_MUTEX_INITIALIZER; /* one run at a time (trylock) */

static void *crew_main(void *u) {
  const int dev = (int)(intptr_t)u;
  uint64_t seen = crew.born[dev]; /* runs before its start are not its */
  for (;;) {
    pthread_mutex_lock(&crew.mu);
    int64_t spin = crew.spin_ns;
    pthread_mutex_unlock(&crew.mu);
    spin_gen(&crew.gen, seen, spin);
    pthread_mutex_lock(&crew.mu);
    while (!crew.exit && atomic_load_explicit(&crew.gen, memory_order_relaxed) == seen) {
      crew.sleepers++;
      pthread_cond_wait(&crew.wake, &crew.mu);
      crew.sleepers--;
    }
    if (crew.exit) {
      pthread_mutex_unlock(&crew.mu);
      return NULL;
    }
    seen = atomic_load_explicit(&crew.gen, memory_order_relaxed);
    jx_run *r = crew.run;
    bool mine = r && dev < crew.ndev;
    jx_device_fn fn = crew.fn;
    void *ctx = crew.ctx;
    pthread_mutex_unlock(&crew.mu);
    if (!mine) continue; /* a smaller run: devices 1..ndev-1 only */
    device_body(r, dev, fn, ctx);
    /* the last one out wakes a caller that gave up spinning; the mutex
     * orders the decrement with the caller's check-then-wait */
    pthread_mutex_lock(&crew.mu);
    if (atomic_fetch_sub_explicit(&crew.pending, 1, memory_order_acq_rel) == 1 && crew.caller_sleeps)
      pthread_cond_signal(&crew.done);
    pthread_mutex_unlock(&crew.mu);
  }
}

static void crew_shutdown(void) {
  if (pthread_mutex_trylock(&crew_busy) != 0) return; /* a run is out (exit() inside it) */
  pthread_mutex_lock(&crew.mu);
  bool ours = crew.pid == getpid();
  crew.exit = true;
  pthread_cond_broadcast(&crew.wake);
  pthread_mutex_unlock(&crew.mu);
  for (int i = 0; ours && i < crew.nworkers; i++) pthread_join(crew.tid[i], NULL);
  crew.nworkers = 0;
  pthread_mutex_unlock(&crew_busy);
}

/* Workers for devices 1..ndev-1 (under crew_busy); false if they cannot
 * all be had (no atexit slot, a thread that does not start: the caller
 * then starts threads of its own, which reports that). */
static bool crew_ready(int ndev) {
  if (crew.pid != getpid()) { /* a forked child: its parent's workers are not here */
    pthread_mutex_init(&crew.mu, NULL);
    pthread_cond_init(&crew.wake, NULL);
    pthread_cond_init(&crew.done, NULL);
    crew.nworkers = 0, crew.sleepers = 0, crew.caller_sleeps = false;
    crew.pid = getpid();
  }
  if (crew.exit) return false;
  if (!crew.atexit_armed) {
    if (atexit(crew_shutdown) != 0) return false;
    crew.atexit_armed = true;
  }
  while (crew.nworkers < ndev - 1) {
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, (size_t)8 << 20);
    crew.born[crew.nworkers + 1] = atomic_load(&crew.gen);
    int rc = pthread_create(&crew.tid[crew.nworkers], &at, crew_main, (void *)(intptr_t)(crew.nworkers + 1));
    pthread_attr_destroy(&at);
    if (rc != 0) return false;
    crew.nworkers++;
  }
  return true;
}

/* The run on the crew (under crew_busy): publish it, run device 0 here,
 * wait for the workers (spinning as the rendezvous does: they end within
 * microseconds of device 0, after the program's last collective). */
static void crew_run(jx_run *r, jx_device_fn fn, void *ctx) {
  int64_t spin = spin_ns(r);
  pthread_mutex_lock(&crew.mu);
  crew.run = r, crew.ndev = r->ndev, crew.fn = fn, crew.ctx = ctx;
  crew.spin_ns = spin ? CREW_SPIN_NS : 0;
  atomic_store_explicit(&crew.pending, r->ndev - 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&crew.gen, 1, memory_order_release);
  if (crew.sleepers) pthread_cond_broadcast(&crew.wake);
  pthread_mutex_unlock(&crew.mu);
  device_body(r, 0, fn, ctx);
  const int64_t end = jx_now_ns() + spin;
  for (int i = 0; atomic_load_explicit(&crew.pending, memory_order_acquire) > 0; i++) {
    CPU_RELAX();
    if ((i & 63) == 63 && jx_now_ns() > end) break;
  }
  pthread_mutex_lock(&crew.mu);
  while (atomic_load_explicit(&crew.pending, memory_order_acquire) > 0) {
    crew.caller_sleeps = true;
    pthread_cond_wait(&crew.done, &crew.mu);
  }
  crew.caller_sleeps = false;
  crew.run = NULL;
  pthread_mutex_unlock(&crew.mu);
}

/* ----------------------------------------------- threads of a run's own */
typedef struct {
  jx_run *run;
  int dev;
  jx_device_fn fn;
  void *ctx;
  pthread_t tid;
  bool started;
} dev_arg;

static void *device_main(void *u) {
  dev_arg *a = u;
  device_body(a->run, a->dev, a->fn, a->ctx);
  return NULL;
}

/* a thread per device (the crew is busy or could not start) */
static jx_t run_on_own_threads(jx_run *r, jx_device_fn fn, void *ctx) {
  int ndev = r->ndev;
  dev_arg *args = jx_calloc((size_t)ndev, sizeof *args);
  if (!args) return jx_error_new("pmap: out of memory starting %d devices", ndev);
  jx_t err = NULL;
  for (int d = 0; d < ndev; d++) {
    args[d] = (dev_arg){r, d, fn, ctx, 0, false};
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, (size_t)8 << 20);
    args[d].started = pthread_create(&args[d].tid, &at, device_main, &args[d]) == 0;
    pthread_attr_destroy(&at);
    if (!args[d].started) {
      err = jx_error_new("pmap: could not start the thread of device %d of %d", d, ndev);
      run_abort(r, err);
      /* the devices that did start must not wait for this one */
      pthread_mutex_lock(&r->mu);
      for (int e = d; e < ndev; e++) r->finished[e] = true;
      pthread_cond_broadcast(&r->cv);
      pthread_mutex_unlock(&r->mu);
      break;
    }
  }
  for (int d = 0; d < ndev; d++)
    if (args[d].started) pthread_join(args[d].tid, NULL);
  jx_free(args);
  return err;
}

jx_t jx_run_devices(int ndim, const int64_t *shape, const char names[][JX_AXIS_NAME_CAP], bool spans,
                    jx_device_fn fn, void *ctx) {
  jx_run *r = jx_calloc(1, sizeof *r);
  int64_t ndev = prod(shape, 0, ndim);
  if (r) r->finished = jx_calloc((size_t)ndev, sizeof(bool));
  if (!r || !r->finished) {
    if (r) jx_free(r->finished);
    jx_free(r);
    return jx_error_new("pmap: out of memory starting %lld devices", (long long)ndev);
  }
  r->ndim = ndim, r->ndev = (int)ndev, r->spans = spans;
  memcpy(r->shape, shape, sizeof(int64_t) * (size_t)ndim);
  memcpy(r->names, names, (size_t)ndim * JX_AXIS_NAME_CAP);
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  jx_t err = NULL;
  if (pthread_mutex_trylock(&crew_busy) == 0) {
    bool ready = crew_ready((int)ndev);
    if (ready) crew_run(r, fn, ctx);
    pthread_mutex_unlock(&crew_busy);
    if (!ready) err = run_on_own_threads(r, fn, ctx);
  } else {
    err = run_on_own_threads(r, fn, ctx);
  }
  if (!err && r->first_err) err = jx_pool_own(jx_retain(r->first_err));
  run_free(r);
  return err;
}
