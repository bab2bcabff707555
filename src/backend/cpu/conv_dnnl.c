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
 * Primitives are cached by problem (creating one compiles code); calls are
 * serialized, since a oneDNN stream is not thread-safe. oneDNN runs on its
 * own OpenMP threads (Debian builds it with the OpenMP runtime). */
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

static bool use_dnnl(void) {
  if (forced >= 0) return forced == 1;
  const char *e = getenv("JX_CONV");
  return !(e && !strcmp(e, "own"));
}
const char *jx_cpu_conv_backend(void) { return use_dnnl() ? "dnnl" : "own"; }

enum { CACHE = 32 };
/* One argument: the caller's layout (user) and the one the primitive
 * chose; when they differ, a reorder (user -> chosen for inputs, back for
 * the output) through buf. */
typedef struct {
  dnnl_memory_t user, chosen;
  dnnl_primitive_t reorder;
  void *buf;
} slot;
typedef struct {
  jx_cpu_conv_desc key;
  bool bw; /* the backward-weights reading */
  dnnl_primitive_t prim;
  slot s[3]; /* src, weights or diff_dst, dst or diff_weights */
  uint64_t used;
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static entry cache[CACHE];
static uint64_t clock_;
static bool broken; /* the engine could not be made: always jx's kernel */

static void md(dnnl_memory_desc_t *m, int nd, const int64_t *dims, const int64_t *st) {
  dnnl_dims_t dd, ss;
  for (int i = 0; i < nd; i++) dd[i] = dims[i], ss[i] = st[i];
  dnnl_memory_desc_init_by_strides(m, nd, dd, dnnl_f32, ss);
}

/* contiguous strides of a canonical [a, b, window...] block into st[2..] */
static void window_strides(const jx_cpu_conv_desc *d, const int64_t *sizes, int64_t *st) {
  int64_t s = 1;
  for (int i = d->nsp - 1; i >= 0; i--) st[i + 2] = s, s *= sizes[i];
}

static int64_t prod(const int64_t *v, int n) {
  int64_t p = 1;
  for (int i = 0; i < n; i++) p *= v[i];
  return p;
}

/* The oneDNN problem for d (pd: NULL when oneDNN has none). */

/* the problem with the layouts in m (format "any" lets oneDNN choose) */
static dnnl_primitive_desc_t make_pd(const jx_cpu_conv_desc *d, bool bw, const dnnl_memory_desc_t *ma,
                                     const dnnl_memory_desc_t *mb, const dnnl_memory_desc_t *mc) {
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
        dnnl_primitive_desc_create(&pd, &cd, NULL, engine, NULL) != dnnl_success)
      return NULL;
    return pd;
  }
  /* backward-weights needs its forward problem as a hint */
  if (dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, ma, mc,
                                                 NULL, mb, strides, dil, pl, pr) != dnnl_success ||
      dnnl_primitive_desc_create(&hint, &fd, NULL, engine, NULL) != dnnl_success)
    return NULL;
  if (dnnl_dilated_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, ma, mc, NULL, mb,
                                                          strides, dil, pl, pr) != dnnl_success ||
      dnnl_primitive_desc_create(&pd, &cd, NULL, engine, hint) != dnnl_success)
    pd = NULL;
  dnnl_primitive_desc_destroy(hint);
  return pd;
}

/* The caller's layouts as oneDNN memory descs. */
static void user_mds(const jx_cpu_conv_desc *d, bool bw, dnnl_memory_desc_t *ma, dnnl_memory_desc_t *mb,
                     dnnl_memory_desc_t *mc) {
  const int nsp = d->nsp, nd = nsp + 2;
  const int64_t K = prod(d->k, nsp);
  int64_t dims[JX_MAX_RANK + 1], st[JX_MAX_RANK + 1];
  /* a: the lhs; bw reads its features as the batch */
  dims[0] = bw ? d->C : d->N, dims[1] = bw ? d->N : d->C, st[0] = d->lst[bw], st[1] = d->lst[!bw];
  for (int s = 0; s < nsp; s++) dims[s + 2] = d->in[s], st[s + 2] = d->lst[s + 2];
  md(ma, nd, dims, st);
  /* b: the rhs, canonical [O, I, window] (forward: with a groups dim) */
  window_strides(d, d->k, st);
  if (bw) {
    dims[0] = d->I, dims[1] = d->O, st[0] = K, st[1] = d->I * K;
    for (int s = 0; s < nsp; s++) dims[s + 2] = d->k[s];
    md(mb, nd, dims, st);
  } else if (d->fgc > 1) {
    int64_t gd[JX_MAX_RANK + 1] = {d->fgc, d->O / d->fgc, d->I}, gs[JX_MAX_RANK + 1];
    gs[0] = d->O / d->fgc * d->I * K, gs[1] = d->I * K, gs[2] = K;
    for (int s = 0; s < nsp; s++) gd[s + 3] = d->k[s], gs[s + 3] = st[s + 2];
    md(mb, nd + 1, gd, gs);
  } else {
    dims[0] = d->O, dims[1] = d->I, st[0] = d->I * K, st[1] = K;
    for (int s = 0; s < nsp; s++) dims[s + 2] = d->k[s];
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
  for (int i = 0; i < 3; i++) {
    slot *q = &e->s[i];
    if (q->reorder) dnnl_primitive_destroy(q->reorder);
    if (q->user) dnnl_memory_destroy(q->user);
    if (q->chosen) dnnl_memory_destroy(q->chosen);
    jx_free_aligned64(q->buf);
  }
  memset(e, 0, sizeof *e);
}

/* a problem oneDNN runs with an optimized kernel: first with the caller's
 * layouts (weights "any"), then with every layout "any" (reorders); a
 * reference kernel ("ref:") is slower than jx's own, so it counts as none */
static dnnl_primitive_desc_t choose_pd(const jx_cpu_conv_desc *d, bool bw, const dnnl_memory_desc_t *user) {
  for (int level = 0; level < 2; level++) {
    dnnl_memory_desc_t m[3];
    for (int i = 0; i < 3; i++) {
      m[i] = user[i];
      bool any = level == 1 || i == (bw ? 2 : 1);
      if (any)
        dnnl_memory_desc_init_by_tag(&m[i], user[i].ndims, user[i].dims, dnnl_f32, dnnl_format_tag_any);
    }
    dnnl_primitive_desc_t pd = make_pd(d, bw, &m[0], &m[1], &m[2]);
    const char *impl = NULL;
    if (pd) dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    const char *log = getenv("JX_LOG");
    if (pd && log && (strstr(log, "conv") || strstr(log, "all")))
      fprintf(stderr, "[jx] conv: oneDNN %s, %s\n", bw ? "backward-weights" : "forward", impl ? impl : "?");
    if (pd && impl && strncmp(impl, "ref", 3)) return pd;
    if (pd) dnnl_primitive_desc_destroy(pd);
  }
  return NULL;
}

static bool make_slot(slot *q, const dnnl_memory_desc_t *user, const dnnl_memory_desc_t *chosen,
                      bool output) {
  if (dnnl_memory_create(&q->user, user, engine, DNNL_MEMORY_NONE) != dnnl_success) return false;
  if (dnnl_memory_desc_equal(user, chosen)) return true;
  q->buf = jx_malloc_aligned64(dnnl_memory_desc_get_size(chosen));
  dnnl_primitive_desc_t rpd = NULL;
  bool ok = q->buf && dnnl_memory_create(&q->chosen, chosen, engine, q->buf) == dnnl_success &&
            dnnl_reorder_primitive_desc_create(&rpd, output ? chosen : user, engine, output ? user : chosen,
                                               engine, NULL) == dnnl_success &&
            dnnl_primitive_create(&q->reorder, rpd) == dnnl_success;
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
  dnnl_primitive_desc_t pd = choose_pd(d, bw, user);
  if (!pd) return NULL;
  drop(victim);
  entry *e = victim;
  *e = (entry){.key = *d, .bw = bw, .used = ++clock_};
  const dnnl_query_t q[2][3] = {{dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md},
                                {dnnl_query_src_md, dnnl_query_diff_dst_md, dnnl_query_diff_weights_md}};
  bool ok = dnnl_primitive_create(&e->prim, pd) == dnnl_success;
  for (int i = 0; ok && i < 3; i++)
    ok = make_slot(&e->s[i], &user[i], dnnl_primitive_desc_query_md(pd, q[bw][i], 0), i == 2);
  dnnl_primitive_desc_destroy(pd);
  if (!ok) drop(e);
  return ok ? e : NULL;
}

static bool run_reorder(slot *q, bool output) {
  dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, output ? q->chosen : q->user},
                          {DNNL_ARG_TO, output ? q->user : q->chosen}};
  return dnnl_primitive_execute(q->reorder, stream, 2, a) == dnnl_success;
}

/* inputs into the chosen layouts, the convolution, the output back */
static bool execute(entry *e, const void *lhs, const void *rhs, void *out) {
  void *ptr[3] = {(void *)lhs, (void *)rhs, out};
  const int arg[2][3] = {{DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
                         {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS}};
  dnnl_exec_arg_t args[3];
  bool ok = true;
  for (int i = 0; i < 3; i++) {
    slot *q = &e->s[i];
    ok &= dnnl_memory_set_data_handle(q->user, ptr[i]) == dnnl_success;
    if (ok && q->reorder && i < 2) ok = run_reorder(q, false);
    args[i] = (dnnl_exec_arg_t){arg[e->bw][i], q->reorder ? q->chosen : q->user};
  }
  ok = ok && dnnl_primitive_execute(e->prim, stream, 3, args) == dnnl_success;
  if (ok && e->s[2].reorder) ok = run_reorder(&e->s[2], true);
  return ok && dnnl_stream_wait(stream) == dnnl_success;
}

int jx_cpu_conv_dnnl(const jx_cpu_conv_desc *d, const void *lhs, const void *rhs, void *out) {
  if (d->dt != JX_F32 || !use_dnnl() || d->bgc != 1 || d->nsp < 1 || d->nsp > 3) return 1;
  for (int s = 0; s < d->nsp; s++)
    if (d->ldil[s] != 1 || d->in[s] == 0 || d->k[s] == 0 || d->out[s] == 0) return 1;
  if (d->N == 0 || d->C == 0 || d->O == 0) return 1;
  /* the filter-gradient shape: a window larger than the output */
  bool bw = d->fgc == 1 && prod(d->k, d->nsp) > prod(d->out, d->nsp);
  int rc = 1;
  pthread_mutex_lock(&lock);
  if (!engine && !broken)
    broken = dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
             dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success;
  entry *e = broken ? NULL : lookup(d, bw);
  if (e) rc = execute(e, lhs, rhs, out) ? 0 : -1;
  pthread_mutex_unlock(&lock);
  return rc;
}
#endif
