/* dynamic_slice(x, starts...) and dynamic_update_slice(x, update,
 * starts...): one 0-d integer start per dim of x, traced like any operand.
 * Each start is clamped into [0, dim - size] (JAX's rule, so a slice never
 * leaves the array; negative starts are wrapped by the public op). Batched
 * starts turn them into a gather / a scatter (index.c), as in JAX. */
#include "prims/index.h"
#include "prims/prims.h"

#define ERR(...) jx_rule_error(jx_prim_names[p], in, nin, __VA_ARGS__)

static jx_t starts_check(jx_prim p, const jx_aval *in, int nin, int first, int rank) {
  if (nin - first != rank) return ERR("%d start indices for an operand of rank %d", nin - first, rank);
  for (int i = first; i < nin; i++)
    if (in[i].ndim != 0 || !jx_dtype_is_int(in[i].dtype))
      return ERR("start index %d must be a 0-d integer array", i - first);
  return NULL;
}

/* The clamped starts' element offset into x (strides of x). */
static int64_t start_offset(const jx_t *starts, const jx_aval *x, const int64_t *size) {
  int64_t st[JX_MAX_RANK], off = 0;
  jx_strides(x->ndim, x->shape, st);
  for (int d = 0; d < x->ndim; d++) {
    int64_t v = jx_index_load(starts[d]->aval.dtype, jx_data(starts[d]), 0); /* exact */
    int64_t hi = x->shape[d] - size[d];
    off += (v < 0 ? 0 : v > hi ? hi : v) * st[d];
  }
  return off;
}

/* ------------------------------------------------------ dynamic_slice */
static jx_t ds_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  const jx_aval *x = &in[0];
  jx_t e = starts_check(p, in, nin, 1, x->ndim);
  if (e) return e;
  *out = (jx_aval){.dtype = x->dtype, .weak = x->weak, .ndim = x->ndim};
  for (int d = 0; d < x->ndim; d++) {
    if (pa->dslice.sizes[d] < 0 || pa->dslice.sizes[d] > x->shape[d])
      return ERR("slice size %lld of dim %d is outside [0, %lld]", (long long)pa->dslice.sizes[d], d,
                 (long long)x->shape[d]);
    out->shape[d] = pa->dslice.sizes[d];
  }
  return NULL;
}

static jx_t ds_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin;
  const jx_aval *x = &in[0]->aval;
  int64_t st[JX_MAX_RANK];
  jx_strides(x->ndim, x->shape, st);
  if (jx_aval_size(&out[0]->aval) == 0) return NULL;
  jx_cpu_strided_copy(jx_dtype_size(x->dtype), x->ndim, pa->dslice.sizes, jx_data(in[0]),
                      start_offset(in + 1, x, pa->dslice.sizes), st, jx_data(out[0]));
  return NULL;
}

jx_t jx_lax_dynamic_slice(jx_t x, const jx_t *starts, const int64_t *sizes) {
  if (!jx_is_array(x) && !jx_is_tracer(x))
    return jx_is_error(x) ? x : jx_error_new("dynamic_slice: operand is a tree");
  int r = x->aval.ndim;
  jx_params q;
  jx_params_init(&q, JX_PK_DSLICE);
  jx_t in[JX_MAX_RANK + 1] = {x};
  for (int d = 0; d < r; d++) q.dslice.sizes[d] = sizes[d], in[d + 1] = starts[d];
  return jx_bind1(JX_P_dynamic_slice, r + 1, in, &q);
}

jx_t jx_lax_dynamic_update_slice(jx_t x, jx_t u, const jx_t *starts) {
  if (!jx_is_array(x) && !jx_is_tracer(x))
    return jx_is_error(x) ? x : jx_error_new("dynamic_update_slice: operand is a tree");
  int r = x->aval.ndim;
  jx_t in[JX_MAX_RANK + 2] = {x, u};
  for (int d = 0; d < r; d++) in[d + 2] = starts[d];
  return jx_bind1(JX_P_dynamic_update_slice, r + 2, in, &jx_params_none);
}

static jx_t ds_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                   jx_t *tout) {
  jx_bind(p, nin, x, pa, 1, out);
  tout[0] = t[0] ? jx_lax_dynamic_slice(t[0], x + 1, pa->dslice.sizes) : NULL;
  return NULL;
}

static jx_t ds_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                         const jx_params *pa, jx_t *cts) {
  (void)p, (void)pa;
  for (int i = 1; i < nin; i++)
    if (!in[i]) return jx_error_new("dynamic_slice: transpose with respect to a start index");
  if (ct[0] && !in[0]) cts[0] = jx_lax_dynamic_update_slice(jx_lax_zeros(&av[0]), ct[0], in + 1);
  return NULL;
}

/* the starts as one index vector per example: i64[B, r] */
static jx_t stacked_starts(const jx_t *s, const int *bd, int r, int64_t B) {
  jx_t cols[JX_MAX_RANK];
  int64_t shape[2] = {B, 1};
  for (int d = 0; d < r; d++)
    cols[d] = jx_lax_reshape(jx_batch_to_front(jx_lax_convert(s[d], JX_I64), bd[d], B), 2, shape);
  return jx_lax_concatenate(r, cols, 1);
}

/* dimension numbers of a whole-window gather/scatter at one index vector */
static void window_params(jx_params *q, jx_params_kind kind, int r, const int64_t *sizes) {
  jx_params_init(q, kind);
  q->gather.noffset = q->gather.nmap = (int8_t)r;
  /* r <= JX_MAX_RANK (abstract eval checked it); the bound is spelled out
   * for gcc 12 at -march=znver5, which otherwise sees a write past map[] */
  for (int d = 0; d < r && d < JX_MAX_RANK; d++) {
    q->gather.offset[d] = q->gather.map[d] = (int8_t)d;
    if (sizes) q->gather.slice[d] = sizes[d];
  }
  q->gather.ivd = 0;
  q->gather.mode = JX_GATHER_CLIP;
}

static bool any_batched(const int *bd, int from, int nin) {
  for (int i = from; i < nin; i++)
    if (bd[i] != JX_NONE) return true;
  return false;
}

static jx_t ds_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                     int *obd) {
  (void)p;
  int r = nin - 1;
  int64_t B = jx_batch_size(in, bd, nin);
  if (!any_batched(bd, 1, nin)) { /* a whole-range slice of the batch dim */
    int b = bd[0];
    jx_t s[JX_MAX_RANK + 1];
    int64_t sizes[JX_MAX_RANK + 1];
    for (int d = 0, k = 0; d <= r; d++) {
      bool at = d == b;
      s[d] = at ? jx_lax_const(JX_I32, 0) : in[1 + k];
      sizes[d] = at ? B : pa->dslice.sizes[k];
      k += !at;
    }
    out[0] = jx_lax_dynamic_slice(in[0], s, sizes);
    obd[0] = b;
    return NULL;
  }
  jx_params q;
  window_params(&q, JX_PK_GATHER, r, pa->dslice.sizes);
  jx_t idx = stacked_starts(in + 1, bd + 1, r, B);
  return jx_index_gather_batch(JX_P_gather, (jx_t[]){in[0], idx}, (int[]){bd[0], 0}, 2, &q, out, obd);
}

/* ----------------------------------------------- dynamic_update_slice */
static jx_t dus_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  (void)pa;
  if (nin < 2) return ERR("needs an operand and an update");
  const jx_aval *x = &in[0], *u = &in[1];
  jx_t e = starts_check(p, in, nin, 2, x->ndim);
  if (e) return e;
  if (u->dtype != x->dtype) return ERR("the update must have the operand's dtype");
  if (u->ndim != x->ndim) return ERR("the update must have the operand's rank");
  for (int d = 0; d < x->ndim; d++)
    if (u->shape[d] > x->shape[d]) return ERR("the update is larger than the operand in dim %d", d);
  out[0] = *x;
  return NULL;
}

static jx_t dus_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin, (void)pa;
  const jx_aval *x = &in[0]->aval, *u = &in[1]->aval;
  size_t es = jx_dtype_size(x->dtype);
  /* the output in the operand's own buffer (lower.inplace: a dead
   * temporary under jit, or a loop's carry updated in place): only the
   * window changes */
  if (jx_aval_size(x) && jx_data(out[0]) != jx_data(in[0]))
    memcpy(jx_data(out[0]), jx_data(in[0]), (size_t)jx_aval_size(x) * es);
  if (jx_aval_size(u) == 0) return NULL;
  int64_t st[JX_MAX_RANK];
  jx_strides(x->ndim, x->shape, st);
  jx_cpu_strided_scatter(es, x->ndim, u->shape, jx_data(in[1]), jx_data(out[0]),
                         start_offset(in + 2, x, u->shape), st);
  return NULL;
}

static jx_t dus_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                    jx_t *tout) {
  jx_bind(p, nin, x, pa, 1, out);
  if (!t[0] && !t[1]) {
    tout[0] = NULL;
    return NULL;
  }
  jx_t t0 = t[0] ? t[0] : jx_lax_zeros(&x[0]->aval), t1 = t[1] ? t[1] : jx_lax_zeros(&x[1]->aval);
  tout[0] = jx_lax_dynamic_update_slice(t0, t1, x + 2);
  return NULL;
}

static jx_t dus_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                          const jx_params *pa, jx_t *cts) {
  (void)p, (void)pa;
  for (int i = 2; i < nin; i++)
    if (!in[i]) return jx_error_new("dynamic_update_slice: transpose with respect to a start index");
  if (!ct[0]) return NULL;
  if (!in[0]) cts[0] = jx_lax_dynamic_update_slice(ct[0], jx_lax_zeros(&av[1]), in + 2);
  if (!in[1]) cts[1] = jx_lax_dynamic_slice(ct[0], in + 2, av[1].shape);
  return NULL;
}

static jx_t dus_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                      int *obd) {
  (void)p, (void)pa;
  int r = nin - 2;
  int64_t B = jx_batch_size(in, bd, nin);
  if (!any_batched(bd, 2, nin)) { /* operand and update batched in front */
    if (r + 1 > JX_MAX_RANK)
      return jx_error_new("dynamic_update_slice: batched rank exceeds %d", JX_MAX_RANK);
    jx_t s[JX_MAX_RANK + 1];
    s[0] = jx_lax_const(JX_I32, 0);
    for (int d = 0; d < r; d++) s[d + 1] = in[2 + d];
    out[0] = jx_lax_dynamic_update_slice(jx_batch_to_front(in[0], bd[0], B),
                                         jx_batch_to_front(in[1], bd[1], B), s);
    obd[0] = 0;
    return NULL;
  }
  jx_params q;
  window_params(&q, JX_PK_SCATTER, r, NULL);
  jx_t idx = stacked_starts(in + 2, bd + 2, r, B);
  return jx_index_scatter_batch(JX_P_scatter, (jx_t[]){in[0], idx, in[1]}, (int[]){bd[0], 0, bd[1]}, 3, &q,
                                out, obd);
}

static void ds_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)nin;
  jx_put_ints(b, "slice_sizes", pa->dslice.sizes, in[0].ndim);
}

const jx_rules jx_rules_dynamic_slice = {.name = "dynamic_slice",
                                         .nin = -1,
                                         .nout = 1,
                                         .abstract_eval = ds_abstract,
                                         .impl = ds_impl,
                                         .jvp = ds_jvp,
                                         .transpose = ds_transpose,
                                         .batch = ds_batch,
                                         .params_kind = JX_PK_DSLICE,
                                         .print_params = ds_print,
                                         .lower = {.kind = JX_LOWER_CALL}};
const jx_rules jx_rules_dynamic_update_slice = {.name = "dynamic_update_slice",
                                                .nin = -1,
                                                .nout = 1,
                                                .abstract_eval = dus_abstract,
                                                .impl = dus_impl,
                                                .jvp = dus_jvp,
                                                .transpose = dus_transpose,
                                                .batch = dus_batch,
                                                .params_kind = JX_PK_NONE,
                                                .lower = {.kind = JX_LOWER_CALL, .inplace = true}};
