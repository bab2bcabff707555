/* Indexing primitives: lax.gather and the lax.scatter family (scatter,
 * scatter_add, scatter_mul, scatter_min, scatter_max) with JAX's dimension
 * numbers and modes, and iota. dynamic_slice and dynamic_update_slice are
 * in dslice.c; their batching rules end here (as gathers and scatters).
 *
 * The params (jx_params.gather / .scatter, core.h) hold the dimension
 * numbers; a scatter's window sizes come from its updates. The kernels
 * (backend/cpu/gather.c) take a plan: every index position's window start
 * already resolved here (clamped, or -1: out of bounds). */
#include "prims/index.h"
#include "backend/cpu/gather.h"
#include "prims/prims.h"

#define ERR(...) jx_rule_error(jx_prim_names[p], in, nin, __VA_ARGS__)

/* ------------------------------------------------ dimension numbers */
/* The gather and scatter params share one struct: offset/update_window
 * dims, collapsed/inserted dims, start_index_map/scatter_dims_to_operand. */
typedef struct {
  int8_t noffset, ncollapsed, nmap, ivd, mode;
  int8_t offset[JX_MAX_RANK], collapsed[JX_MAX_RANK], map[JX_MAX_RANK];
  int64_t slice[JX_MAX_RANK];
  double fill;
} dn_t;
_Static_assert(sizeof(dn_t) == sizeof(((jx_params *)0)->gather), "dn_t mirrors jx_params.gather");
static const dn_t *dn_of(const jx_params *pa) { return (const dn_t *)(const void *)&pa->gather; }
static dn_t *dn_mut(jx_params *pa) { return (dn_t *)(void *)&pa->gather; }

static bool has(const int8_t *v, int n, int x) {
  for (int i = 0; i < n; i++)
    if (v[i] == x) return true;
  return false;
}

/* sorted, distinct, each in [0, lim) */
static bool sorted_in(const int8_t *v, int n, int lim) {
  for (int i = 0; i < n; i++)
    if (v[i] < 0 || v[i] >= lim || (i && v[i] <= v[i - 1])) return false;
  return true;
}

/* the index vectors' length and the indices' batch dims (all but ivd) */
static jx_t index_checks(jx_prim p, const jx_aval *in, int nin, const jx_aval *idx, const dn_t *d, int rank) {
  if (!jx_dtype_is_int(idx->dtype)) return ERR("indices must have an integer dtype");
  if (d->ivd < 0 || d->ivd > idx->ndim)
    return ERR("index_vector_dim %d out of range for indices of rank %d", d->ivd, idx->ndim);
  int64_t nvec = d->ivd == idx->ndim ? 1 : idx->shape[d->ivd];
  if (d->nmap != nvec)
    return ERR("start_index_map has %d entries but the index vectors have %lld", d->nmap, (long long)nvec);
  for (int k = 0; k < d->nmap; k++)
    if (d->map[k] < 0 || d->map[k] >= rank || has(d->map, k, d->map[k]))
      return ERR("start_index_map entry %d is out of range or repeated", d->map[k]);
  if (d->mode < 0 || d->mode > 1) return ERR("unknown mode %d", d->mode);
  return NULL;
}

/* The indices' batch dims (all but ivd) in order into bs; returns count. */
static int batch_dims_of(const jx_aval *idx, int ivd, int64_t *bs) {
  int n = 0;
  for (int k = 0; k < idx->ndim; k++)
    if (k != ivd) bs[n++] = idx->shape[k];
  return n;
}

/* -------------------------------------------------------------- gather */
static jx_t gather_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  const dn_t *d = dn_of(pa);
  const jx_aval *x = &in[0];
  int r = x->ndim;
  jx_t e = index_checks(p, in, nin, &in[1], d, r);
  if (e) return e;
  if (!sorted_in(d->collapsed, d->ncollapsed, r))
    return ERR("collapsed_slice_dims must be sorted dims of the operand");
  for (int i = 0; i < r; i++) {
    if (d->slice[i] < 0 || d->slice[i] > x->shape[i])
      return ERR("slice_sizes[%d] = %lld is outside [0, %lld]%s", i, (long long)d->slice[i],
                 (long long)x->shape[i], x->shape[i] ? "" : " (an empty dim)");
    if (has(d->collapsed, d->ncollapsed, i) && d->slice[i] != 1)
      return ERR("collapsed dim %d must have slice size 1, got %lld", i, (long long)d->slice[i]);
  }
  int64_t bs[JX_MAX_RANK];
  int nb = batch_dims_of(&in[1], d->ivd, bs), ro = nb + d->noffset;
  if (d->noffset != r - d->ncollapsed)
    return ERR("%d offset_dims for %d operand dims not collapsed", d->noffset, r - d->ncollapsed);
  if (ro > JX_MAX_RANK) return ERR("result rank exceeds %d", JX_MAX_RANK);
  if (!sorted_in(d->offset, d->noffset, ro)) return ERR("offset_dims must be sorted dims of the result");
  *out = (jx_aval){.dtype = x->dtype, .weak = x->weak, .ndim = (int8_t)ro};
  for (int o = 0, j = 0, b = 0, w = 0; o < ro; o++) {
    if (j < d->noffset && d->offset[j] == o) {
      while (has(d->collapsed, d->ncollapsed, w)) w++;
      out->shape[o] = d->slice[w++], j++;
    } else {
      out->shape[o] = bs[b++];
    }
  }
  return NULL;
}

int64_t jx_index_load(jx_dtype dt, const void *base, int64_t i) {
  switch (dt) {
    case JX_I32: return ((const int32_t *)base)[i];
    case JX_I64: return ((const int64_t *)base)[i];
    case JX_U32: return ((const uint32_t *)base)[i];
    case JX_I8: return ((const int8_t *)base)[i];
    case JX_U8: return ((const uint8_t *)base)[i];
    case JX_I16: return ((const int16_t *)base)[i];
    case JX_U16: return ((const uint16_t *)base)[i];
    case JX_U64: {
      uint64_t v = ((const uint64_t *)base)[i];
      return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
    }
    default: return 0; /* (abstract eval admits integer dtypes only) */
  }
}

/* The plan's geometry for operand x and y (gather: out; scatter:
 * updates): window dims = operand dims not collapsed, at y dims
 * d->offset; win: the window size per operand dim. */
static void make_plan(const jx_aval *x, const jx_aval *y, const dn_t *d, const int64_t *win,
                      jx_cpu_gs_plan *pl) {
  int64_t xs[JX_MAX_RANK], ys[JX_MAX_RANK];
  jx_strides(x->ndim, x->shape, xs);
  jx_strides(y->ndim, y->shape, ys);
  memset(pl, 0, sizeof *pl);
  pl->es = jx_dtype_size(x->dtype);
  for (int k = 0, w = 0; k < x->ndim; k++) {
    if (has(d->collapsed, d->ncollapsed, k)) continue;
    pl->wshape[w] = win[k], pl->xst[w] = xs[k], pl->yst[w] = ys[d->offset[w]];
    w++, pl->wnd = w;
  }
  pl->nb = 1;
  for (int o = 0; o < y->ndim; o++)
    if (!has(d->offset, d->noffset, o))
      pl->bshape[pl->bnd] = y->shape[o], pl->byst[pl->bnd++] = ys[o], pl->nb *= y->shape[o];
}

/* The window offsets in x of index positions [b0, b0 + n) into xoff:
 * each start clamped (clip) or the position marked -1 (out of bounds). */
typedef struct {
  const jx_aval *x;
  jx_t idx;
  const dn_t *d;
  const int64_t *win;
} resolver;

static void resolve(const resolver *r, int64_t b0, int64_t n, int64_t *xoff) {
  const jx_aval *x = r->x, *ia = &r->idx->aval;
  const dn_t *d = r->d;
  int64_t xs[JX_MAX_RANK], is[JX_MAX_RANK];
  jx_strides(x->ndim, x->shape, xs);
  jx_strides(ia->ndim, ia->shape, is);
  int64_t istep = d->ivd < ia->ndim ? is[d->ivd] : 0;
  bool last = d->ivd >= ia->ndim - 1; /* index vectors contiguous: position b at b * nmap */
  const void *ib = jx_data(r->idx);
  if (last && d->nmap == 1 && (ia->dtype == JX_I32 || ia->dtype == JX_I64)) { /* one index per position */
    int64_t hi = x->shape[d->map[0]] - r->win[d->map[0]], st = xs[d->map[0]];
    bool clip = d->mode == JX_GATHER_CLIP;
    for (int64_t i = 0; i < n; i++) {
      int64_t v = ia->dtype == JX_I32 ? ((const int32_t *)ib)[b0 + i] : ((const int64_t *)ib)[b0 + i];
      if (clip) v = v < 0 ? 0 : v > hi ? hi : v;
      xoff[i] = v < 0 || v > hi ? -1 : v * st;
    }
    return;
  }
  for (int64_t b = b0; b < b0 + n; b++) {
    int64_t base = 0;
    if (last) {
      base = b * d->nmap;
    } else { /* b over the indices' batch dims, row-major */
      for (int64_t k = ia->ndim - 1, rem = b; k >= 0; k--) {
        if (k == d->ivd) continue;
        base += (rem % ia->shape[k]) * is[k], rem /= ia->shape[k];
      }
    }
    int64_t off = 0;
    for (int k = 0; k < d->nmap && off >= 0; k++) {
      int dim = d->map[k];
      int64_t v = jx_index_load(ia->dtype, ib, base + k * istep), hi = x->shape[dim] - r->win[dim];
      if (d->mode == JX_GATHER_CLIP) v = v < 0 ? 0 : v > hi ? hi : v;
      off = v < 0 || v > hi ? -1 : off + v * xs[dim];
    }
    xoff[b - b0] = off;
  }
}

enum { CHUNK = 1024 }; /* index positions resolved at a time (on the stack) */

typedef struct {
  const resolver *r;
  const jx_cpu_gs_plan *pl;
  const void *x, *fill;
  void *y;
} gather_job;

static void gather_chunks(void *ctx, int64_t lo, int64_t hi) {
  const gather_job *j = ctx;
  int64_t xoff[CHUNK];
  for (int64_t c = lo; c < hi; c++) {
    int64_t b0 = c * CHUNK, n = j->pl->nb - b0 < CHUNK ? j->pl->nb - b0 : CHUNK;
    resolve(j->r, b0, n, xoff);
    jx_cpu_gs_gather(j->pl, b0, b0 + n, xoff, j->x, j->y, j->fill);
  }
}

/* take along one axis (jx_gather_take_axis): the existing row kernel */
static jx_t gather_take(jx_t x, jx_t idx, int a, jx_t out) {
  const jx_aval *xa = &x->aval;
  int64_t n = xa->shape[a], k = jx_aval_size(&idx->aval), outer = 1, inner = 1;
  for (int d = 0; d < a; d++) outer *= xa->shape[d];
  for (int d = a + 1; d < xa->ndim; d++) inner *= xa->shape[d];
  int64_t *ix = jx_malloc(sizeof(int64_t) * (size_t)(k ? k : 1));
  if (!ix) return jx_error_new("gather: out of memory");
  for (int64_t i = 0; i < k; i++) {
    int64_t v = jx_index_load(idx->aval.dtype, jx_data(idx), i);
    ix[i] = v < 0 ? 0 : v >= n ? n - 1 : v;
  }
  jx_cpu_gather(jx_dtype_size(xa->dtype), outer, n, inner, jx_data(x), k, ix, jx_data(out));
  jx_free(ix);
  return NULL;
}

static jx_t gather_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin;
  const dn_t *d = dn_of(pa);
  const jx_aval *x = &in[0]->aval, *o = &out[0]->aval;
  if (jx_aval_size(o) == 0) return NULL;
  int axis = jx_gather_take_axis(pa, x, &in[1]->aval, NULL);
  if (axis >= 0) return gather_take(in[0], in[1], axis, out[0]);
  jx_cpu_gs_plan pl;
  make_plan(x, o, d, d->slice, &pl);
  char fill[16];
  jx_scalar_store(x->dtype, d->fill, fill);
  resolver r = {.x = x, .idx = in[1], .d = d, .win = d->slice};
  gather_job j = {.r = &r, .pl = &pl, .x = jx_data(in[0]), .fill = fill, .y = jx_data(out[0])};
  int64_t w = jx_aval_size(o) / (pl.nb ? pl.nb : 1), nchunk = (pl.nb + CHUNK - 1) / CHUNK;
  jx_cpu_parallel_for(nchunk, w * CHUNK >= 65536 ? 1 : 65536 / (w * CHUNK), gather_chunks, &j);
  return NULL;
}

/* ------------------------------------------------------------ scatter */
/* the window size per operand dim: 1 where inserted, else the update's */
static void scatter_window(const jx_aval *x, const jx_aval *u, const dn_t *d, int64_t *win) {
  for (int k = 0, j = 0; k < x->ndim; k++)
    win[k] = has(d->collapsed, d->ncollapsed, k) ? 1 : u->shape[d->offset[j++]];
}

static jx_t scatter_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  const dn_t *d = dn_of(pa);
  const jx_aval *x = &in[0], *u = &in[2];
  int r = x->ndim;
  jx_t e = index_checks(p, in, nin, &in[1], d, r);
  if (e) return e;
  if (u->dtype != x->dtype) return ERR("updates must have the operand's dtype");
  if (!sorted_in(d->collapsed, d->ncollapsed, r))
    return ERR("inserted_window_dims must be sorted dims of the operand");
  if (d->noffset + d->ncollapsed != r)
    return ERR("%d update_window_dims and %d inserted_window_dims for an operand of rank %d", d->noffset,
               d->ncollapsed, r);
  int64_t bs[JX_MAX_RANK];
  int nb = batch_dims_of(&in[1], d->ivd, bs);
  if (u->ndim != nb + d->noffset)
    return ERR("updates must have rank %d (%d scatter dims + %d window dims)", nb + d->noffset, nb,
               d->noffset);
  if (!sorted_in(d->offset, d->noffset, u->ndim))
    return ERR("update_window_dims must be sorted dims of the updates");
  for (int o = 0, b = 0, j = 0, k = 0; o < u->ndim; o++) {
    if (j < d->noffset && d->offset[j] == o) {
      while (has(d->collapsed, d->ncollapsed, k)) k++;
      if (u->shape[o] > x->shape[k])
        return ERR("update window dim %d (size %lld) exceeds operand dim %d (size %lld)", o,
                   (long long)u->shape[o], k, (long long)x->shape[k]);
      j++, k++;
    } else if (u->shape[o] != bs[b++]) {
      return ERR("updates dim %d (size %lld) must match the indices' batch dim (size %lld)", o,
                 (long long)u->shape[o], (long long)bs[b - 1]);
    }
  }
  out[0] = *x;
  return NULL;
}

typedef struct {
  const resolver *r;
  const jx_cpu_gs_plan *pl;
  jx_dtype dt;
  jx_cpu_sc_kind kind;
  void *x;
  const void *y;
  const void *x_in; /* the operand, when the output is not its buffer */
  int64_t n;
  int parts;
} scatter_job;

/* parts [lo, hi) own one contiguous range of the operand: one pass (a
 * nested or busy pool runs every part in one call, resolving once). Each
 * part first copies its range of the operand into the output, when that is
 * another buffer: the copy is spread over the threads and leaves the
 * range in cache for the updates. */
static void scatter_part(void *ctx, int64_t lo, int64_t hi) {
  scatter_job *j = ctx;
  int64_t xoff[CHUNK], from = j->n * lo / j->parts, to = hi == j->parts ? INT64_MAX : j->n * hi / j->parts;
  if (j->x_in) {
    const size_t es = jx_dtype_size(j->dt);
    const int64_t end = to < j->n ? to : j->n;
    memcpy((char *)j->x + (size_t)from * es, (const char *)j->x_in + (size_t)from * es,
           (size_t)(end - from) * es);
  }
  for (int64_t b0 = 0; b0 < j->pl->nb; b0 += CHUNK) { /* in order: duplicates combine as documented */
    int64_t n = j->pl->nb - b0 < CHUNK ? j->pl->nb - b0 : CHUNK;
    resolve(j->r, b0, n, xoff);
    jx_cpu_gs_scatter(j->pl, j->dt, j->kind, b0, b0 + n, xoff, from, to, j->x, j->y);
  }
}

static const jx_cpu_sc_kind sc_kind[JX_PRIM_COUNT] = {[JX_P_scatter] = JX_CPU_SC_SET,
                                                      [JX_P_scatter_add] = JX_CPU_SC_ADD,
                                                      [JX_P_scatter_mul] = JX_CPU_SC_MUL,
                                                      [JX_P_scatter_min] = JX_CPU_SC_MIN,
                                                      [JX_P_scatter_max] = JX_CPU_SC_MAX};

static jx_t scatter_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)nin;
  const dn_t *d = dn_of(pa);
  const jx_aval *x = &in[0]->aval, *u = &in[2]->aval;
  size_t nbytes = (size_t)jx_aval_size(x) * jx_dtype_size(x->dtype);
  /* the output in the operand's own buffer (lower.inplace: a dead
   * temporary under jit, or a loop's carry updated in place): only the
   * updated elements change */
  const bool copy = nbytes && jx_data(out[0]) != jx_data(in[0]);
  if (!nbytes || jx_aval_size(u) == 0) {
    if (copy) memcpy(jx_data(out[0]), jx_data(in[0]), nbytes);
    return NULL;
  }
  int64_t win[JX_MAX_RANK];
  scatter_window(x, u, d, win);
  jx_cpu_gs_plan pl;
  make_plan(x, u, d, win, &pl);
  resolver r = {.x = x, .idx = in[1], .d = d, .win = win};
  scatter_job j = {.r = &r,
                   .pl = &pl,
                   .dt = x->dtype,
                   .kind = sc_kind[p],
                   .x = jx_data(out[0]),
                   .y = jx_data(in[2]),
                   .x_in = copy ? jx_data(in[0]) : NULL,
                   .n = jx_aval_size(x)};
  /* one element per index: threads own ranges of the operand (each reads
   * every index), so each element still sees its updates in order */
  if (!jx_cpu_gs_scatter(&pl, x->dtype, sc_kind[p], 0, 0, NULL, 0, 0, NULL, NULL)) /* (an empty range) */
    return jx_error_new("%s: no kernel for dtype %s", jx_prim_names[p], jx_dtype_name(x->dtype));
  int parts = pl.wnd == 0 && pl.nb >= 65536 ? jx_cpu_num_threads() : 1;
  j.parts = parts;
  jx_cpu_parallel_for(parts, 1, scatter_part, &j);
  return NULL;
}

/* ------------------------------------------- params for the other one */
/* gather <-> scatter: the same dimension numbers; clip stays clip, an
 * out-of-bounds gather window fills with 0 where the scatter drops it */
static jx_params scatter_params_of(const jx_params *g) {
  jx_params q;
  jx_params_init(&q, JX_PK_SCATTER);
  memcpy(dn_mut(&q), dn_of(g), sizeof(dn_t)); /* padding too: params compare bytewise */
  memset(dn_mut(&q)->slice, 0, sizeof dn_mut(&q)->slice);
  dn_mut(&q)->fill = 0;
  return q;
}
static jx_params gather_params_of(const jx_params *s, const jx_aval *x, const jx_aval *u) {
  jx_params q;
  jx_params_init(&q, JX_PK_GATHER);
  memcpy(dn_mut(&q), dn_of(s), sizeof(dn_t)); /* padding too: params compare bytewise */
  scatter_window(x, u, dn_of(s), dn_mut(&q)->slice);
  dn_mut(&q)->fill = 0;
  return q;
}

jx_t jx_lax_gather_p(jx_t x, jx_t idx, const jx_params *pa) {
  return jx_bind1(JX_P_gather, 2, (jx_t[]){x, idx}, pa);
}
jx_t jx_lax_scatter_p(jx_prim p, jx_t x, jx_t idx, jx_t u, const jx_params *pa) {
  return jx_bind1(p, 3, (jx_t[]){x, idx, u}, pa);
}

/* ------------------------------------------------------------- jvp */
static jx_t gather_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                       jx_t *tout) {
  (void)nin;
  jx_bind(p, 2, x, pa, 1, out);
  jx_params q = *pa;
  dn_mut(&q)->fill = 0; /* the fill value is a constant */
  tout[0] = t[0] ? jx_bind1(p, 2, (jx_t[]){t[0], x[1]}, &q) : NULL;
  return NULL;
}

static jx_t gather_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                             const jx_params *pa, jx_t *cts) {
  (void)p, (void)nin;
  if (!in[1]) return jx_error_new("gather: transpose with respect to the indices");
  jx_params q = scatter_params_of(pa);
  if (ct[0] && !in[0]) cts[0] = jx_lax_scatter_p(JX_P_scatter_add, jx_lax_zeros(&av[0]), in[1], ct[0], &q);
  return NULL;
}

/* scatter_add and scatter (replace) are linear in (operand, updates)
 * jointly: the replace's winner per element does not depend on values. */
static jx_t scatter_linear_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa,
                               jx_t *out, jx_t *tout) {
  (void)nin;
  jx_bind(p, 3, x, pa, 1, out);
  if (!t[0] && !t[2]) {
    tout[0] = NULL;
    return NULL;
  }
  jx_t t0 = t[0] ? t[0] : jx_lax_zeros(&x[0]->aval), t2 = t[2] ? t[2] : jx_lax_zeros(&x[2]->aval);
  tout[0] = jx_lax_scatter_p(p, t0, x[1], t2, pa);
  return NULL;
}

/* The update elements that win under scatter (replace): ids scattered,
 * gathered back and compared (JAX's rule for scatter's jvp). */
static jx_t winners(jx_t idx, const jx_aval *x, const jx_aval *u, const jx_params *pa) {
  int64_t n = jx_aval_size(u);
  jx_t ids = jx_lax_reshape(jx_lax_iota(JX_I64, 1, &n, 0), u->ndim, u->shape);
  jx_aval xa = *x;
  xa.dtype = JX_I64, xa.weak = false;
  jx_t none = jx_lax_broadcast_to_aval(jx_lax_const(JX_I64, -1), &xa);
  jx_t won = jx_lax_scatter_p(JX_P_scatter, none, idx, ids, pa);
  jx_params g = gather_params_of(pa, x, u);
  dn_mut(&g)->fill = -1;
  return jx_lax_binary(JX_P_eq, jx_lax_gather_p(won, idx, &g), ids);
}

static jx_t scatter_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                              const jx_params *pa, jx_t *cts) {
  (void)nin;
  if (!in[1]) return jx_error_new("%s: transpose with respect to the indices", jx_prim_names[p]);
  if (!ct[0]) return NULL;
  if (p == JX_P_scatter_mul) { /* linear in the operand, for known updates */
    if (!in[2])
      return jx_error_new("scatter_mul: transpose with respect to the updates (it is not linear in them)");
    if (!in[0]) cts[0] = jx_lax_scatter_p(p, ct[0], in[1], in[2], pa);
    return NULL;
  }
  if (!in[0]) /* scatter_add: all of ct; replace: where no update landed */
    cts[0] = p == JX_P_scatter_add ? ct[0] : jx_lax_scatter_p(p, ct[0], in[1], jx_lax_zeros(&av[2]), pa);
  if (!in[2]) {
    jx_params g = gather_params_of(pa, &av[0], &av[2]);
    jx_t back = jx_lax_gather_p(ct[0], in[1], &g);
    cts[2] = p == JX_P_scatter_add
                 ? back
                 : jx_lax_select(winners(in[1], &av[0], &av[2], pa), back, jx_lax_zeros(&av[2]));
  }
  return NULL;
}

static jx_t as_float(jx_t b, jx_dtype dt) { return jx_lax_convert(b, dt); }

/* scatter_min/max: the tangent of whichever operand or updates reached
 * the result, ties averaged (JAX's rule) */
static jx_t scatter_extremal_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa,
                                 jx_t *out, jx_t *tout) {
  (void)nin;
  jx_bind(p, 3, x, pa, 1, out);
  jx_dtype dt = x[0]->aval.dtype;
  if ((!t[0] && !t[2]) || !jx_dtype_is_float(dt)) {
    tout[0] = NULL;
    return NULL;
  }
  jx_params g = gather_params_of(pa, &x[0]->aval, &x[2]->aval);
  jx_t zx = jx_lax_zeros(&x[0]->aval);
  jx_t mx = as_float(jx_lax_binary(JX_P_eq, x[0], out[0]), dt);
  jx_t mu = as_float(jx_lax_binary(JX_P_eq, x[2], jx_lax_gather_p(out[0], x[1], &g)), dt);
  jx_t cnt = jx_lax_binary(JX_P_add, mx, jx_lax_scatter_p(JX_P_scatter_add, zx, x[1], mu, pa));
  jx_t num = t[0] ? jx_lax_binary(JX_P_mul, t[0], mx) : zx;
  if (t[2])
    num = jx_lax_binary(JX_P_add, num,
                        jx_lax_scatter_p(JX_P_scatter_add, zx, x[1], jx_lax_binary(JX_P_mul, t[2], mu), pa));
  tout[0] = jx_lax_binary(JX_P_div, num, cnt);
  return NULL;
}

static jx_t scatter_mul_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                            jx_t *tout) {
  (void)nin;
  if (t[2]) /* JAX: only with unique indices */
    return jx_error_new("scatter_mul: derivative with respect to the updates is not implemented");
  jx_bind(p, 3, x, pa, 1, out);
  tout[0] = t[0] ? jx_lax_scatter_p(p, t[0], x[1], x[2], pa) : NULL;
  return NULL;
}

/* ------------------------------------------------------------ batching */
/* Indices with their batch dim (bi) in front and the index vectors along
 * the last dim; *ivd: the per-example index_vector_dim, updated. */
static jx_t indices_front(jx_t idx, int bi, int64_t B, int *ivd) {
  idx = jx_batch_to_front(idx, bi, B);
  int r = idx->aval.ndim, v = *ivd + 1;
  if (v == r) { /* implicit trailing 1: make it explicit */
    if (r + 1 > JX_MAX_RANK) return jx_error_new("gather: batched indices rank exceeds %d", JX_MAX_RANK);
    int64_t s[JX_MAX_RANK];
    memcpy(s, idx->aval.shape, sizeof(int64_t) * (size_t)r);
    s[r] = 1;
    idx = jx_lax_reshape(idx, r + 1, s);
    r++;
  } else {
    idx = jx_moveaxis(idx, v, r - 1);
  }
  *ivd = r - 1;
  return idx;
}

/* prepend the batch counter to every index vector (last dim); indices
 * narrower than 32 bits are widened first (exactly) so that the counter
 * cannot wrap (a batch of 300 with u8 indices) */
static jx_t with_counter(jx_t idx) {
  if (jx_dtype_size(idx->aval.dtype) < 4) idx = jx_lax_convert(idx, JX_I32);
  int r = idx->aval.ndim;
  int64_t s[JX_MAX_RANK];
  memcpy(s, idx->aval.shape, sizeof(int64_t) * (size_t)r);
  s[r - 1] = 1;
  jx_t cnt = jx_lax_iota(idx->aval.dtype, r, s, 0);
  return jx_lax_concatenate(2, (jx_t[]){cnt, idx}, r - 1);
}

/* dims lists shifted by one, optionally with 0 in front */
static void shift_dims(int8_t *v, int8_t *n, bool zero_front) {
  for (int i = *n; i-- > 0;) v[i + zero_front] = (int8_t)(v[i] + 1);
  if (zero_front) v[0] = 0, (*n)++;
}

jx_t jx_index_gather_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                           int *obd) {
  (void)p, (void)nin;
  int64_t B = jx_batch_size(in, bd, 2);
  jx_params q = *pa;
  dn_t *d = dn_mut(&q);
  if (in[0]->aval.ndim - (bd[0] != JX_NONE) + 1 > JX_MAX_RANK) /* the shifted lists' length */
    return jx_error_new("gather: batched operand rank exceeds %d", JX_MAX_RANK);
  jx_t x = in[0], idx = in[1];
  obd[0] = 0;
  if (bd[0] != JX_NONE) {
    x = jx_moveaxis(x, bd[0], 0);
    memmove(d->slice + 1, d->slice, sizeof(int64_t) * (JX_MAX_RANK - 1));
    d->slice[0] = bd[1] == JX_NONE ? B : 1;
    shift_dims(d->collapsed, &d->ncollapsed, bd[1] != JX_NONE);
  }
  if (bd[1] == JX_NONE) { /* the batch dim is one more window dim */
    shift_dims(d->offset, &d->noffset, true);
    shift_dims(d->map, &d->nmap, false);
  } else {
    int ivd = d->ivd;
    idx = indices_front(idx, bd[1], B, &ivd);
    if (!jx_ok(idx)) return idx;
    d->ivd = (int8_t)ivd;
    shift_dims(d->offset, &d->noffset, false);
    if (bd[0] != JX_NONE) { /* both: the counter picks each example's slice */
      idx = with_counter(idx);
      shift_dims(d->map, &d->nmap, true);
    }
  }
  out[0] = jx_lax_gather_p(x, idx, &q);
  return NULL;
}

jx_t jx_index_scatter_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                            int *obd) {
  (void)nin;
  int64_t B = jx_batch_size(in, bd, 3);
  jx_params q = *pa;
  dn_t *d = dn_mut(&q);
  int rx = in[0]->aval.ndim - (bd[0] != JX_NONE);
  if (rx + 1 > JX_MAX_RANK)
    return jx_error_new("%s: batched operand rank exceeds %d", jx_prim_names[p], JX_MAX_RANK);
  jx_t x = jx_batch_to_front(in[0], bd[0], B), u = jx_batch_to_front(in[2], bd[2], B), idx = in[1];
  obd[0] = 0;
  if (bd[1] == JX_NONE) { /* the batch dim is one more window dim */
    shift_dims(d->offset, &d->noffset, true);
    shift_dims(d->collapsed, &d->ncollapsed, false);
    shift_dims(d->map, &d->nmap, false);
  } else { /* a counter picks each example's operand */
    int ivd = d->ivd;
    idx = indices_front(idx, bd[1], B, &ivd);
    if (!jx_ok(idx)) return idx;
    d->ivd = (int8_t)ivd;
    idx = with_counter(idx);
    shift_dims(d->offset, &d->noffset, false);
    shift_dims(d->collapsed, &d->ncollapsed, true);
    shift_dims(d->map, &d->nmap, true);
  }
  out[0] = jx_lax_scatter_p(p, x, idx, u, &q);
  return NULL;
}

/* -------------------------------------------------------------- print */
static void put_dims(jx_strbuf *b, const char *name, const int8_t *v, int n) {
  int64_t w[JX_MAX_RANK];
  for (int i = 0; i < n; i++) w[i] = v[i];
  jx_put_ints(b, name, w, n);
}
static const char *mode_name(const dn_t *d, bool gather) {
  return d->mode == JX_GATHER_CLIP ? "clip" : gather ? "fill" : "drop";
}
static void gather_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)nin;
  const dn_t *d = dn_of(pa);
  put_dims(b, "offset_dims", d->offset, d->noffset);
  put_dims(b, "collapsed_slice_dims", d->collapsed, d->ncollapsed);
  put_dims(b, "start_index_map", d->map, d->nmap);
  jx_strbuf_put(b, " index_vector_dim=%d", d->ivd);
  jx_put_ints(b, "slice_sizes", d->slice, in[0].ndim);
  jx_strbuf_put(b, " mode=%s", mode_name(d, true));
  if (d->mode != JX_GATHER_CLIP) jx_strbuf_put(b, " fill_value=%.17g", d->fill);
}
static void scatter_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  const dn_t *d = dn_of(pa);
  put_dims(b, "update_window_dims", d->offset, d->noffset);
  put_dims(b, "inserted_window_dims", d->collapsed, d->ncollapsed);
  put_dims(b, "scatter_dims_to_operand_dims", d->map, d->nmap);
  jx_strbuf_put(b, " index_vector_dim=%d mode=%s", d->ivd, mode_name(d, false));
}

/* --------------------------------------------------------------- iota */
static void split3(const jx_aval *a, int axis, int64_t *outer, int64_t *inner) {
  *outer = *inner = 1;
  for (int d = 0; d < axis; d++) *outer *= a->shape[d];
  for (int d = axis + 1; d < a->ndim; d++) *inner *= a->shape[d];
}

static jx_t iota_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  char err[256];
  if (jx_shape_check(pa->iota.ndim, pa->iota.shape, pa->iota.dtype, err, sizeof err)) return ERR("%s", err);
  if (pa->iota.axis < 0 || pa->iota.axis >= pa->iota.ndim)
    return ERR("axis %d out of range for rank %d", pa->iota.axis, pa->iota.ndim);
  if (pa->iota.dtype == JX_BOOL) return ERR("iota of bool");
  out[0] = (jx_aval){.dtype = pa->iota.dtype, .ndim = pa->iota.ndim};
  memcpy(out[0].shape, pa->iota.shape, sizeof(int64_t) * (size_t)pa->iota.ndim);
  return NULL;
}

static jx_t iota_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)in, (void)nin;
  const jx_aval *o = &out[0]->aval;
  int64_t n = o->shape[pa->iota.axis], outer, inner;
  split3(o, pa->iota.axis, &outer, &inner);
  /* one row 0..n-1, then broadcast it with a strided copy; converted from
   * i64, as the fused jit code does, so that a narrow int wraps the same */
  jx_buffer *row = jx_buffer_new(sizeof(int64_t) * (size_t)(n ? n : 1));
  if (!row) return jx_error_new("iota: out of memory");
  int64_t *r = row->data;
  for (int64_t i = 0; i < n; i++) r[i] = i;
  size_t es = jx_dtype_size(o->dtype);
  jx_buffer *conv = jx_buffer_new(es * (size_t)(n ? n : 1));
  if (!conv) {
    jx_buffer_release(row);
    return jx_error_new("iota: out of memory");
  }
  jx_cpu_convert(JX_I64, o->dtype, n, r, conv->data);
  int64_t shape[3] = {outer, n, inner}, st[3] = {0, 1, 0};
  jx_cpu_strided_copy(es, 3, shape, conv->data, 0, st, jx_data(out[0]));
  jx_buffer_release(row);
  jx_buffer_release(conv);
  return NULL;
}

static jx_t nodiff_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                       jx_t *tout) {
  (void)t;
  jx_bind(p, nin, x, pa, 1, out);
  tout[0] = NULL;
  return NULL;
}

static void iota_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  jx_strbuf_put(b, " dimension=%d dtype=%s", pa->iota.axis, jx_dtype_name(pa->iota.dtype));
  jx_put_ints(b, "shape", pa->iota.shape, pa->iota.ndim);
}

const jx_rules jx_rules_gather = {.name = "gather",
                                  .nin = 2,
                                  .nout = 1,
                                  .abstract_eval = gather_abstract,
                                  .impl = gather_impl,
                                  .jvp = gather_jvp,
                                  .transpose = gather_transpose,
                                  .batch = jx_index_gather_batch,
                                  .params_kind = JX_PK_GATHER,
                                  .print_params = gather_print,
                                  .lower = {.kind = JX_LOWER_CALL}};
#define SCATTER(nm, jvp_, transpose_)                                                                        \
  const jx_rules jx_rules_##nm = {.name = #nm,                                                               \
                                  .nin = 3,                                                                  \
                                  .nout = 1,                                                                 \
                                  .abstract_eval = scatter_abstract,                                         \
                                  .impl = scatter_impl,                                                      \
                                  .jvp = jvp_,                                                               \
                                  .transpose = transpose_,                                                   \
                                  .batch = jx_index_scatter_batch,                                           \
                                  .params_kind = JX_PK_SCATTER,                                              \
                                  .print_params = scatter_print,                                             \
                                  .lower = {.kind = JX_LOWER_CALL, .inplace = true}};
SCATTER(scatter, scatter_linear_jvp, scatter_transpose)
SCATTER(scatter_add, scatter_linear_jvp, scatter_transpose)
SCATTER(scatter_mul, scatter_mul_jvp, scatter_transpose)
SCATTER(scatter_min, scatter_extremal_jvp, NULL)
SCATTER(scatter_max, scatter_extremal_jvp, NULL)
const jx_rules jx_rules_iota = {.name = "iota",
                                .nin = 0,
                                .nout = 1,
                                .abstract_eval = iota_abstract,
                                .impl = iota_impl,
                                .jvp = nodiff_jvp,
                                .params_kind = JX_PK_IOTA,
                                .print_params = iota_print,
                                .lower = {.kind = JX_LOWER_IOTA}};
