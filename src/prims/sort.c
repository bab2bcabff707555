/* sort: lax.sort. n operands of one shape are sorted together along
 * params.sort.axis, ordered lexicographically by the first num_keys of
 * them; the sort is stable. Floats order as JAX's comparator orders them:
 * -0.0 equals 0.0 and every NaN sorts after +inf.
 *
 * Eagerly: the permutation of each line is the stable argsort of the last
 * key, refined key by key towards the first (stable LSD order), and every
 * operand is then gathered through it. jvp follows JAX: an iota rides along
 * as one more operand, and the tangents are gathered through the
 * permutation it comes back as (a gather, so reverse mode transposes it to
 * a scatter-add). Under jit it is a call into the same kernels. */
#include "backend/cpu/scan_kernels.h"
#include "prims/prims.h"

#define ERR(...) jx_rule_error("sort", in, nin, __VA_ARGS__)

static jx_t sort_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  (void)p;
  if (nin < 1) return jx_error_new("sort: needs at least one operand");
  int axis = pa->sort.axis;
  if (axis < 0 || axis >= in[0].ndim) return ERR("axis %d out of range for rank %d", axis, in[0].ndim);
  if (pa->sort.num_keys < 1 || pa->sort.num_keys > nin)
    return ERR("num_keys %d must be in [1, %d] (the number of operands)", pa->sort.num_keys, nin);
  for (int i = 0; i < nin; i++) {
    if (in[i].ndim != in[0].ndim || memcmp(in[i].shape, in[0].shape, sizeof(int64_t) * (size_t)in[0].ndim))
      return ERR("operands must have the same shape");
    if ((unsigned)in[i].dtype >= JX_DTYPE_COUNT) return ERR("operand %d has a dtype sort does not take", i);
    out[i] = in[i];
  }
  return NULL;
}

static void split3(const jx_aval *a, int axis, int64_t *outer, int64_t *n, int64_t *inner) {
  *outer = *inner = 1;
  for (int d = 0; d < axis; d++) *outer *= a->shape[d];
  for (int d = axis + 1; d < a->ndim; d++) *inner *= a->shape[d];
  *n = a->shape[axis];
}

/* The sorting permutation of every line into perm (int64, the operands'
 * layout); scratch: two more buffers of the same size. */
static int sort_perm(const jx_t *in, int nkeys, int axis, int64_t *perm, int64_t *p2, int64_t *keys) {
  int64_t outer, n, inner;
  split3(&in[0]->aval, axis, &outer, &n, &inner);
  if (jx_cpu_argsort(in[nkeys - 1]->aval.dtype, outer, n, inner, jx_data(in[nkeys - 1]), JX_I64, perm))
    return -1;
  for (int k = nkeys - 2; k >= 0; k--) {
    jx_dtype dt = in[k]->aval.dtype;
    jx_cpu_take_along(jx_dtype_size(dt), outer, n, inner, jx_data(in[k]), perm, keys);
    if (jx_cpu_argsort(dt, outer, n, inner, keys, JX_I64, p2)) return -1;
    /* the refined order: perm read through p2 */
    jx_cpu_take_along(sizeof(int64_t), outer, n, inner, perm, p2, keys);
    memcpy(perm, keys, sizeof(int64_t) * (size_t)(outer * n * inner));
  }
  return 0;
}

static jx_t sort_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p;
  int64_t outer, n, inner, size = jx_aval_size(&in[0]->aval);
  split3(&in[0]->aval, pa->sort.axis, &outer, &n, &inner);
  if (size == 0) return NULL;
  size_t bytes = sizeof(int64_t) * (size_t)size;
  /* the temporaries from the buffer cache: per call from malloc, large
   * ones were trimmed off the heap and faulted in again each time */
  jx_buffer *h[3] = {jx_buffer_new(bytes), jx_buffer_new(bytes), jx_buffer_new(bytes)};
  int64_t *perm = h[0] ? h[0]->data : NULL, *p2 = h[1] ? h[1]->data : NULL, *keys = h[2] ? h[2]->data : NULL;
  jx_t err = NULL;
  if (!perm || !p2 || !keys || sort_perm(in, pa->sort.num_keys, pa->sort.axis, perm, p2, keys))
    err = jx_error_new("sort: out of memory");
  for (int i = 0; i < nin && !err; i++)
    jx_cpu_take_along(jx_dtype_size(in[i]->aval.dtype), outer, n, inner, jx_data(in[i]), perm,
                      jx_data(out[i]));
  for (int i = 0; i < 3; i++) jx_buffer_release(h[i]);
  return err;
}

/* t[..., perm[..., j, ...], ...] along axis (jnp.take_along_axis with a
 * permutation) as one flat gather, so that it transposes and batches by
 * the gather's rules. */
static jx_t take_along(jx_t t, jx_t perm, int axis) {
  int r = t->aval.ndim;
  jx_t tt = jx_moveaxis(t, axis, r - 1), pp = jx_moveaxis(perm, axis, r - 1);
  if (!jx_ok(tt) || !jx_ok(pp)) return jx_ok(tt) ? pp : tt;
  jx_aval s = tt->aval;
  int64_t n = s.shape[r - 1], m = 1;
  for (int d = 0; d < r - 1; d++) m *= s.shape[d];
  int64_t mn[2] = {m, n}, flat = m * n;
  jx_t offs = jx_lax_binary(JX_P_mul, jx_lax_iota(JX_I64, 2, mn, 0), jx_lax_const(JX_I64, (double)n));
  jx_t idx = jx_lax_binary(JX_P_add, jx_lax_convert(jx_lax_reshape(pp, 2, mn), JX_I64), offs);
  jx_t g = jx_lax_gather(jx_lax_reshape(tt, 1, &flat), idx, 0);
  return jx_moveaxis(jx_lax_reshape(g, r, s.shape), r - 1, axis);
}

static jx_t sort_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                     jx_t *tout) {
  const jx_aval *a = &x[0]->aval;
  jx_t *ops = jx_malloc(sizeof(jx_t) * (size_t)(2 * (nin + 1)));
  if (!ops) return jx_error_new("sort: out of memory");
  jx_t *res = ops + nin + 1;
  memcpy(ops, x, sizeof(jx_t) * (size_t)nin);
  ops[nin] = jx_lax_iota(JX_I64, a->ndim, a->shape, pa->sort.axis);
  jx_t err = jx_bind(p, nin + 1, ops, pa, nin + 1, res);
  for (int i = 0; i < nin; i++) {
    out[i] = res[i];
    bool diff = t[i] && jx_dtype_is_float(x[i]->aval.dtype);
    tout[i] = err || !diff ? NULL : take_along(t[i], res[nin], pa->sort.axis);
    if (tout[i] && !jx_ok(tout[i]) && !err) err = tout[i];
  }
  jx_free(ops);
  return err;
}

/* vmap: operands share one shape, so they all get the batch dim in front
 * (unbatched ones broadcast) unless every one is batched at the same dim. */
static jx_t sort_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                       int *obd) {
  bool same = true;
  for (int i = 0; i < nin; i++) same &= bd[i] == bd[0];
  jx_t *x = jx_malloc(sizeof(jx_t) * (size_t)nin);
  if (!x) return jx_error_new("sort: out of memory");
  int64_t B = jx_batch_size(in, bd, nin);
  for (int i = 0; i < nin; i++) x[i] = same ? in[i] : jx_batch_to_front(in[i], bd[i], B);
  int b = same ? bd[0] : 0;
  jx_params q = *pa;
  q.sort.axis = jx_bdim_shift(pa->sort.axis, b);
  jx_t err = jx_bind(p, nin, x, &q, nin, out);
  for (int i = 0; i < nin; i++) obd[i] = b;
  jx_free(x);
  return err;
}

static void sort_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  jx_strbuf_put(b, " dimension=%d is_stable=True num_keys=%d", pa->sort.axis, pa->sort.num_keys);
}

const jx_rules jx_rules_sort = {.name = "sort",
                                .nin = -1,
                                .nout = -1, /* one per operand */
                                .abstract_eval = sort_abstract,
                                .impl = sort_impl,
                                .jvp = sort_jvp,
                                .batch = sort_batch,
                                .params_kind = JX_PK_SORT,
                                .print_params = sort_print,
                                .lower = {.kind = JX_LOWER_CALL}};
