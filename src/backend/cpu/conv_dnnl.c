/* oneDNN's convolution for f32, when jx is built with it (JX_HAVE_DNNL):
 * the library PyTorch's CPU convolutions use.
 *
 * A convolution without lhs dilation or batch groups runs as one of two
 * oneDNN problems over the same buffers (any strides, so no copies):
 *  - forward: the convolution as written (any feature groups);
 *  - backward-weights: when the window is larger than the output (the
 *    filter gradient, which jx writes as a convolution of the input with
 *    the output cotangent: JAX's transpose rule), the same sum read as
 *    oneDNN's weight gradient, the roles of batch and features swapped:
 *    out[n', o', p'] = sum_{i', k'} lhs[n', i', p' s + k' d - lo] rhs[o', i', k']
 *    is diff_w[o', n', p'] for src = lhs with (batch i', channels n'),
 *    diff_dst = rhs with (batch i', channels o'), stride d, dilation s.
 * The rest (lhs dilation: the data gradient of a strided convolution;
 * batch groups; padding oneDNN cannot express) runs jx's own kernel.
 * The rhs is read through its own strides (the filter gradient's rhs is
 * the output cotangent: no transposed copy). Primitives are cached by
 * problem (creating one compiles code); calls are serialized. A call runs
 * in parts along the batch on jx's pool, each part's primitive on one
 * OpenMP thread with its own stream and scratch (see run() below for
 * why: oneDNN's own OpenMP threads fought jx's pool for the cores). */
#include "backend/cpu/conv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int forced = -1; /* -1: JX_CONV decides; 0: own; 1: dnnl */

void jx_cpu_conv_force(const char *backend) { forced = !backend ? -1 : !strcmp(backend, "own") ? 0 : 1; }

#ifndef JX_HAVE_DNNL
int jx_cpu_conv_dnnl(const jx_cpu_conv_desc *d, const void *lhs, const void *rhs, void *out) {
  (void)d, (void)lhs, (void)rhs, (void)out;
  return 1;
}
const char *jx_cpu_conv_backend(void) { return "own"; }
#else
#include <oneapi/dnnl/dnnl.h>

#include <dlfcn.h>
#include <stdatomic.h>

static bool use_dnnl(void) {
  if (forced >= 0) return forced == 1;
  const char *e = getenv("JX_CONV");
  return !(e && !strcmp(e, "own"));
}
const char *jx_cpu_conv_backend(void) { return use_dnnl() ? "dnnl" : "own"; }

enum { CACHE = 32, MAX_PARTS = 64 };
/* One argument: the caller's layout (user) and the one the primitive
 * chose; when they differ, a reorder (user -> chosen for inputs, back for
 * the output) through a buffer of `size` bytes in the part's scratch. */
typedef struct {
  dnnl_memory_desc_t user, chosen;
  dnnl_primitive_t reorder;
  size_t size;
} slot;
/* A cached primitive for one part's problem (the batch a part runs). */
typedef struct {
  jx_cpu_conv_desc key;
  bool bw; /* the backward-weights reading */
  dnnl_primitive_t prim;
  slot s[3];      /* src, weights or diff_dst, dst or diff_weights */
  size_t scratch; /* bytes of scratchpad (the largest of prim's and the reorders') */
  uint64_t used;
} entry;
/* A part's stream and scratch: parts run at once, on jx's pool. */
typedef struct {
  dnnl_stream_t stream;
  void *buf;
  size_t cap;
} part_ws;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t engine;
static entry cache[CACHE];
static part_ws parts[MAX_PARTS];
static uint64_t clock_;
static bool broken; /* the engine could not be made: always jx's kernel */

/* OpenMP's thread count for this thread (libgomp, which Debian's oneDNN
 * brings; looked up, so jx needs no OpenMP itself). NULL: not found, and
 * oneDNN keeps its own threads. */
static int (*omp_get)(void);
static void (*omp_set)(int);

static void md(dnnl_memory_desc_t *m, int nd, const int64_t *dims, const int64_t *st) {
  dnnl_dims_t dd, ss;
  for (int i = 0; i < nd; i++) dd[i] = dims[i], ss[i] = st[i];
  dnnl_memory_desc_init_by_strides(m, nd, dd, dnnl_f32, ss);
}

static int64_t prod(const int64_t *v, int n) {
  int64_t p = 1;
  for (int i = 0; i < n; i++) p *= v[i];
  return p;
}

/* The oneDNN problem for d (pd: NULL when oneDNN has none). */

/* the problem with the layouts in m (format "any" lets oneDNN choose);
 * every primitive takes its scratchpad from the caller (a part's scratch),
 * so parts never share oneDNN's */
static dnnl_primitive_desc_t make_pd(const jx_cpu_conv_desc *d, bool bw, const dnnl_memory_desc_t *ma,
                                     const dnnl_memory_desc_t *mb, const dnnl_memory_desc_t *mc,
                                     const_dnnl_primitive_attr_t attr) {
  const int nsp = d->nsp;
  dnnl_dims_t strides, dil, pl, pr;
  for (int s = 0; s < nsp; s++) {
    /* forward: stride, dilation - 1, padding; backward-weights: the roles of
     * stride and dilation swap, the window is the output */
    int64_t step = bw ? d->rdil[s] : d->stride[s], gap = bw ? d->stride[s] : d->rdil[s];
    int64_t win = bw ? d->out[s] : d->k[s], outn = bw ? d->k[s] : d->out[s];
    strides[s] = step, dil[s] = gap - 1, pl[s] = d->lo[s];
    pr[s] = (outn - 1) * step + (win - 1) * gap + 1 - d->in[s] - d->lo[s];
    if (pl[s] < 0 || pr[s] < 0) return NULL;
  }
  dnnl_convolution_desc_t cd, fd;
  dnnl_primitive_desc_t pd = NULL, hint = NULL;
  if (!bw) {
    if (dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, ma,
                                                   mb, NULL, mc, strides, dil, pl, pr) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &cd, attr, engine, NULL) != dnnl_success)
      return NULL;
    return pd;
  }
  /* backward-weights needs its forward problem as a hint */
  if (dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, ma, mc,
                                                 NULL, mb, strides, dil, pl, pr) != dnnl_success ||
      dnnl_primitive_desc_create(&hint, &fd, attr, engine, NULL) != dnnl_success)
    return NULL;
  if (dnnl_dilated_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, ma, mc, NULL, mb,
                                                          strides, dil, pl, pr) != dnnl_success ||
      dnnl_primitive_desc_create(&pd, &cd, attr, engine, hint) != dnnl_success)
    pd = NULL;
  dnnl_primitive_desc_destroy(hint);
  return pd;
}

/* The caller's layouts as oneDNN memory descs. */
static void user_mds(const jx_cpu_conv_desc *d, bool bw, dnnl_memory_desc_t *ma, dnnl_memory_desc_t *mb,
                     dnnl_memory_desc_t *mc) {
  const int nsp = d->nsp, nd = nsp + 2;
  int64_t dims[JX_MAX_RANK + 1], st[JX_MAX_RANK + 1];
  /* a: the lhs; bw reads its features as the batch */
  dims[0] = bw ? d->C : d->N, dims[1] = bw ? d->N : d->C, st[0] = d->lst[bw], st[1] = d->lst[!bw];
  for (int s = 0; s < nsp; s++) dims[s + 2] = d->in[s], st[s + 2] = d->lst[s + 2];
  md(ma, nd, dims, st);
  /* b: the rhs [O, I, window] through its strides (forward: with a groups
   * dim; bw: I is the batch) */
  const int64_t *rs = d->rst;
  for (int s = 0; s < nsp; s++) dims[s + 2] = d->k[s], st[s + 2] = rs[s + 2];
  if (bw) {
    dims[0] = d->I, dims[1] = d->O, st[0] = rs[1], st[1] = rs[0];
    md(mb, nd, dims, st);
  } else if (d->fgc > 1) {
    int64_t gd[JX_MAX_RANK + 1] = {d->fgc, d->O / d->fgc, d->I}, gs[JX_MAX_RANK + 1];
    gs[0] = d->O / d->fgc * rs[0], gs[1] = rs[0], gs[2] = rs[1];
    for (int s = 0; s < nsp; s++) gd[s + 3] = d->k[s], gs[s + 3] = rs[s + 2];
    md(mb, nd + 1, gd, gs);
  } else {
    dims[0] = d->O, dims[1] = d->I, st[0] = rs[0], st[1] = rs[1];
    md(mb, nd, dims, st);
  }
  /* c: the output (bw: the weight gradient [o', n', p']) */
  dims[0] = bw ? d->O : d->N / d->bgc, dims[1] = bw ? d->N : d->O;
  st[0] = d->ost[bw], st[1] = d->ost[!bw];
  for (int s = 0; s < nsp; s++) dims[s + 2] = d->out[s], st[s + 2] = d->ost[s + 2];
  md(mc, nd, dims, st);
}

static void drop(entry *e) {
  if (e->prim) dnnl_primitive_destroy(e->prim);
  for (int i = 0; i < 3; i++)
    if (e->s[i].reorder) dnnl_primitive_destroy(e->s[i].reorder);
  memset(e, 0, sizeof *e);
}

/* a problem oneDNN runs with an optimized kernel: first with the caller's
 * layouts (weights "any"), then with every layout "any" (reorders). A
 * reference kernel ("ref:") is slower than jx's own, so it counts as none;
 * a GEMM one ("gemm:", im2col over plain layouts) is taken only when no
 * direct kernel is on offer at either level: the 3x3 layer's filter
 * gradient over NCHW ran ~1.4x slower on it than on the blocked direct
 * kernel with its reorders. */
static dnnl_primitive_desc_t choose_pd(const jx_cpu_conv_desc *d, bool bw, const dnnl_memory_desc_t *user,
                                       const_dnnl_primitive_attr_t attr) {
  dnnl_primitive_desc_t gemm = NULL;
  for (int level = 0; level < 2; level++) {
    dnnl_memory_desc_t m[3];
    for (int i = 0; i < 3; i++) {
      m[i] = user[i];
      bool any = level == 1 || i == (bw ? 2 : 1);
      if (any)
        dnnl_memory_desc_init_by_tag(&m[i], user[i].ndims, user[i].dims, dnnl_f32, dnnl_format_tag_any);
    }
    dnnl_primitive_desc_t pd = make_pd(d, bw, &m[0], &m[1], &m[2], attr);
    const char *impl = NULL;
    if (pd) dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    const char *log = getenv("JX_LOG");
    if (pd && log && (strstr(log, "conv") || strstr(log, "all")))
      fprintf(stderr, "[jx] conv: oneDNN %s, %s\n", bw ? "backward-weights" : "forward", impl ? impl : "?");
    if (pd && impl && strncmp(impl, "ref", 3)) {
      if (!strstr(impl, "gemm")) {
        if (gemm) dnnl_primitive_desc_destroy(gemm);
        return pd;
      }
      if (!gemm) {
        gemm = pd;
        continue;
      }
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
  }
  return gemm;
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }
static size_t scratch_of(const_dnnl_primitive_desc_t pd) {
  return dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));
}

static bool make_slot(slot *q, const dnnl_memory_desc_t *user, const dnnl_memory_desc_t *chosen, bool output,
                      const_dnnl_primitive_attr_t attr, size_t *scratch) {
  q->user = *user, q->chosen = *chosen;
  if (dnnl_memory_desc_equal(user, chosen)) return true;
  q->size = align64(dnnl_memory_desc_get_size(chosen));
  dnnl_primitive_desc_t rpd = NULL;
  bool ok = dnnl_reorder_primitive_desc_create(&rpd, output ? chosen : user, engine, output ? user : chosen,
                                               engine, attr) == dnnl_success &&
            dnnl_primitive_create(&q->reorder, rpd) == dnnl_success;
  if (ok && scratch_of(rpd) > *scratch) *scratch = scratch_of(rpd);
  if (rpd) dnnl_primitive_desc_destroy(rpd);
  return ok;
}

/* the cached primitive for d, made on a miss (NULL: oneDNN has none) */
static entry *lookup(const jx_cpu_conv_desc *d, bool bw) {
  entry *victim = &cache[0];
  for (int i = 0; i < CACHE; i++) {
    if (cache[i].prim && cache[i].bw == bw && !memcmp(&cache[i].key, d, sizeof *d)) {
      cache[i].used = ++clock_;
      return &cache[i];
    }
    if (cache[i].used < victim->used) victim = &cache[i];
  }
  dnnl_memory_desc_t user[3];
  user_mds(d, bw, &user[0], &user[1], &user[2]);
  dnnl_primitive_attr_t attr = NULL;
  if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
  dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
  dnnl_primitive_desc_t pd = choose_pd(d, bw, user, attr);
  bool ok = pd != NULL;
  entry *e = victim;
  if (ok) {
    drop(victim);
    *e = (entry){.key = *d, .bw = bw, .used = ++clock_, .scratch = scratch_of(pd)};
    const dnnl_query_t q[2][3] = {{dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md},
                                  {dnnl_query_src_md, dnnl_query_diff_dst_md, dnnl_query_diff_weights_md}};
    ok = dnnl_primitive_create(&e->prim, pd) == dnnl_success;
    for (int i = 0; ok && i < 3; i++)
      ok = make_slot(&e->s[i], &user[i], dnnl_primitive_desc_query_md(pd, q[bw][i], 0), i == 2, attr,
                     &e->scratch);
    e->scratch = align64(e->scratch);
    dnnl_primitive_desc_destroy(pd);
    if (!ok) drop(e);
  }
  dnnl_primitive_attr_destroy(attr);
  return ok ? e : NULL;
}

/* One call split into parts along the problem's batch (forward: the
 * images; backward-weights: the lhs features, which it reads as its
 * batch), each part a oneDNN primitive run with one OpenMP thread on jx's
 * pool. oneDNN's own OpenMP threads spin for milliseconds after each call
 * (libgomp's default wait policy, fixed when the process starts): on a
 * 2-core machine they took the cores from jx's pool between convolutions
 * and from each other under load (the CNN step of bench/bench_conv.c: 200
 * ms at load 7 with oneDNN's threads, 44 ms with GOMP_SPINCOUNT=1000). A
 * backward-weights part sums its share of the batch: part 0 writes the
 * output, part p > 0 a partial in its scratch, added in part order after
 * (the same sums every run). */
typedef struct {
  entry *e[MAX_PARTS];
  int64_t b0[MAX_PARTS + 1]; /* part p: batch rows [b0[p], b0[p + 1]) */
  const char *lhs, *rhs;
  char *out;
  int64_t lstep, rstep, ostep; /* bytes per batch row (0: the whole operand each part) */
  size_t partial;              /* bw: bytes of a partial output */
  _Atomic bool failed;
  /* forward, batch-major output: the epilogue on each part's images as
   * soon as the part is done (while they are in cache), and the elements
   * per image */
  void (*epi)(void *ctx, int64_t lo, int64_t hi);
  void *epi_ctx;
  int64_t epi_step;
} plan;

static bool run_reorder(dnnl_primitive_t r, dnnl_stream_t st, dnnl_memory_t from, dnnl_memory_t to,
                        dnnl_memory_t scratch) {
  dnnl_exec_arg_t a[3] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}, {DNNL_ARG_SCRATCHPAD, scratch}};
  return dnnl_primitive_execute(r, st, scratch ? 3 : 2, a) == dnnl_success;
}

/* part p: inputs into the chosen layouts, the convolution, the output back */
static bool run_part(const plan *pl, int p) {
  const entry *e = pl->e[p];
  part_ws *w = &parts[p];
  char *scr = w->buf;
  const int64_t b = pl->b0[p];
  void *ptr[3] = {(void *)(pl->lhs + b * pl->lstep), (void *)(pl->rhs + b * pl->rstep),
                  e->bw && p > 0 ? (void *)scr : (void *)(pl->out + b * pl->ostep)};
  if (e->bw) scr += pl->partial;
  const int arg[2][3] = {{DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
                         {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS}};
  dnnl_memory_t user[3] = {0}, chosen[3] = {0}, spad = NULL;
  bool ok = true;
  if (e->scratch) { /* the largest of the primitive's and the reorders' scratchpads */
    dnnl_memory_desc_t sd;
    const dnnl_dims_t sdim = {(int64_t)e->scratch};
    ok = dnnl_memory_desc_init_by_tag(&sd, 1, sdim, dnnl_u8, dnnl_a) == dnnl_success &&
         dnnl_memory_create(&spad, &sd, engine, scr) == dnnl_success;
    scr += e->scratch;
  }
  dnnl_exec_arg_t args[4];
  for (int i = 0; i < 3; i++) {
    const slot *q = &e->s[i];
    ok = ok && dnnl_memory_create(&user[i], &q->user, engine, ptr[i]) == dnnl_success;
    if (ok && q->reorder) {
      ok = dnnl_memory_create(&chosen[i], &q->chosen, engine, scr) == dnnl_success;
      scr += q->size;
      if (ok && i < 2) ok = run_reorder(q->reorder, w->stream, user[i], chosen[i], spad);
    }
    args[i] = (dnnl_exec_arg_t){arg[e->bw][i], q->reorder ? chosen[i] : user[i]};
  }
  args[3] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, spad};
  ok = ok && dnnl_primitive_execute(e->prim, w->stream, spad ? 4 : 3, args) == dnnl_success;
  if (ok && e->s[2].reorder) ok = run_reorder(e->s[2].reorder, w->stream, chosen[2], user[2], spad);
  ok = ok && dnnl_stream_wait(w->stream) == dnnl_success;
  for (int i = 0; i < 3; i++) {
    if (user[i]) dnnl_memory_destroy(user[i]);
    if (chosen[i]) dnnl_memory_destroy(chosen[i]);
  }
  if (spad) dnnl_memory_destroy(spad);
  return ok;
}

static void run_parts(void *ctx, int64_t lo, int64_t hi) {
  plan *pl = ctx;
  const int prev = omp_get ? omp_get() : 1;
  if (prev != 1) omp_set(1); /* this thread's OpenMP setting, restored */
  for (int64_t p = lo; p < hi; p++) {
    if (!run_part(pl, (int)p))
      atomic_store(&pl->failed, true);
    else if (pl->epi)
      pl->epi(pl->epi_ctx, pl->b0[p] * pl->epi_step, pl->b0[p + 1] * pl->epi_step);
  }
  if (prev != 1) omp_set(prev);
}

/* bytes part p needs: the reorders' buffers, the scratchpad, a partial */
static size_t part_bytes(const plan *pl, int p) {
  const entry *e = pl->e[p];
  return e->s[0].size + e->s[1].size + e->s[2].size + e->scratch + (e->bw ? pl->partial : 0);
}

static bool grow(part_ws *w, size_t need) {
  if (!w->stream && dnnl_stream_create(&w->stream, engine, dnnl_stream_default_flags) != dnnl_success)
    return false;
  if (need <= w->cap) return true;
  jx_free_aligned64(w->buf);
  w->buf = jx_malloc_aligned64(need);
  w->cap = w->buf ? need : 0;
  return w->buf != NULL;
}

/* the parts' primitives (at most two batch sizes), streams and scratch */
static bool make_plan(const jx_cpu_conv_desc *d, bool bw, plan *pl, int np) {
  const int64_t B = bw ? d->C : d->N;
  for (int p = 0; p <= np; p++) pl->b0[p] = B * p / np;
  for (int p = 0; p < np; p++) {
    const int64_t nb = pl->b0[p + 1] - pl->b0[p];
    if (p > 0 && nb == pl->b0[p] - pl->b0[p - 1]) {
      pl->e[p] = pl->e[p - 1];
    } else {
      jx_cpu_conv_desc k = *d;
      if (bw)
        k.C = k.I = nb;
      else
        k.N = nb;
      if (!(pl->e[p] = lookup(&k, bw))) return false;
    }
  }
  /* a lookup may evict an earlier part's entry only when the cache has
   * fewer entries than a plan's sizes, which CACHE rules out */
  for (int p = 0; p < np; p++)
    if (!grow(&parts[p], part_bytes(pl, p))) return false;
  return true;
}

/* the parts' partial filter gradients into part 0's */
static void add_partials(const plan *pl, int np, int64_t n) {
  float *out = (float *)pl->out;
  for (int p = 1; p < np; p++) {
    const float *q = parts[p].buf;
    for (int64_t i = 0; i < n; i++) out[i] += q[i];
  }
}

static int run(const jx_cpu_conv_desc *d, bool bw, const void *lhs, const void *rhs, void *out) {
  const int64_t B = bw ? d->C : d->N, fs = (int64_t)sizeof(float);
  int np = omp_set ? jx_cpu_num_threads() : 1;
  np = np > MAX_PARTS ? MAX_PARTS : np > B ? (int)B : np;
  plan pl = {.lhs = lhs, .rhs = rhs, .out = out, .lstep = d->lst[bw] * fs};
  /* bw: the batch rows are the rhs's I */
  pl.rstep = bw ? d->rst[1] * fs : 0;
  pl.ostep = bw ? 0 : d->ost[0] * fs;
  const int64_t nout = d->N * d->O * prod(d->out, d->nsp);
  pl.partial = bw ? align64((size_t)nout * sizeof(float)) : 0;
  if (!bw && d->epi && d->bgc == 1 && d->ost[0] == nout / d->N) /* images contiguous, in batch order */
    pl.epi = d->epi, pl.epi_ctx = d->epi_ctx, pl.epi_step = nout / d->N;
  const int prev = omp_get ? omp_get() : 1;
  if (prev != 1) omp_set(1); /* primitives made for one thread */
  bool ok = make_plan(d, bw, &pl, np);
  if (prev != 1) omp_set(prev);
  if (!ok) return 1;
  if (np == 1)
    run_parts(&pl, 0, 1);
  else
    jx_cpu_parallel_for(np, 1, run_parts, &pl);
  if (atomic_load(&pl.failed)) return -1;
  if (bw) add_partials(&pl, np, nout);
  if (pl.epi) *d->epi_done = true;
  return 0;
}

/* Whether a forward problem's window reaches into padding and its
 * weights hold an inf or NaN. jx's kernels multiply a padded tap's zero by
 * the weight (0 * inf = NaN: the padded patches of XLA's and jx's own
 * kernels, and the export's loops); oneDNN's direct kernels skip such
 * taps. Weights are small, so they are checked each call. */
static bool padded_nonfinite(const jx_cpu_conv_desc *d, const float *w) {
  bool padded = false;
  for (int s = 0; s < d->nsp; s++)
    padded |=
        d->lo[s] > 0 || (d->out[s] - 1) * d->stride[s] + (d->k[s] - 1) * d->rdil[s] >= d->in[s] + d->lo[s];
  if (!padded) return false;
  const int64_t n = d->O * d->I * prod(d->k, d->nsp); /* a dense block in some order */
  float acc = 0;
  for (int64_t i = 0; i < n; i++) acc += w[i] * 0.0f; /* NaN iff some weight is inf or NaN */
  return acc != acc;
}

int jx_cpu_conv_dnnl(const jx_cpu_conv_desc *d, const void *lhs, const void *rhs, void *out) {
  if (d->dt != JX_F32 || !use_dnnl() || d->bgc != 1 || d->nsp < 1 || d->nsp > 3) return 1;
  for (int s = 0; s < d->nsp; s++)
    if (d->ldil[s] != 1 || d->in[s] == 0 || d->k[s] == 0 || d->out[s] == 0) return 1;
  if (d->N == 0 || d->C == 0 || d->O == 0) return 1;
  /* the filter-gradient shape: a window larger than the output */
  bool bw = d->fgc == 1 && prod(d->k, d->nsp) > prod(d->out, d->nsp);
  if (!bw && padded_nonfinite(d, rhs)) return 1;
  pthread_mutex_lock(&lock);
  if (!engine && !broken) {
    broken = dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success;
    void *get = dlsym(RTLD_DEFAULT, "omp_get_max_threads"), *set = dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (get && set) memcpy(&omp_get, &get, sizeof get), memcpy(&omp_set, &set, sizeof set);
  }
  int rc = broken ? 1 : run(d, bw, lhs, rhs, out);
  pthread_mutex_unlock(&lock);
  return rc;
}
#endif
