/* Reductions: reduce_sum/max/min over params.axes, argmax/argmin along
 * params.axis. */
#include "prims/prims.h"

/* Validate axes (already normalised by the public op: 0 <= a < ndim,
 * distinct) and build the reduce mask. */
static jx_t check_axes(jx_prim p, const jx_aval *in, const jx_params *pa, bool *mask) {
  memset(mask, 0, sizeof(bool) * JX_MAX_RANK);
  for (int i = 0; i < pa->reduce.naxes; i++) {
    int a = pa->reduce.axes[i];
    if (a < 0 || a >= in->ndim)
      return jx_rule_error(jx_prim_names[p], in, 1, "axis %d out of range for rank %d", a, in->ndim);
    if (mask[a]) return jx_rule_error(jx_prim_names[p], in, 1, "axis %d repeated", a);
    mask[a] = true;
  }
  return NULL;
}

static jx_t reduce_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  (void)nin;
  bool mask[JX_MAX_RANK];
  jx_t e = check_axes(p, in, pa, mask);
  if (e) return e;
  if (in->dtype == JX_BOOL && p == JX_P_reduce_sum)
    return jx_rule_error(jx_prim_names[p], in, 1, "sum of bool: convert to an integer dtype first");
  out[0] = (jx_aval){.dtype = in->dtype, .weak = in->weak};
  for (int d = 0; d < in->ndim; d++)
    if (!mask[d]) out[0].shape[out[0].ndim++] = in->shape[d];
  return NULL;
}

/* x (bf16/f16) widened to an f32 copy: the reductions of #19's halves run
 * in f32 and round their result once, as XLA:CPU (and jnp.sum) do */
static jx_t widened(jx_t x) {
  jx_aval a = x->aval;
  a.dtype = JX_F32, a.weak = false;
  jx_t w = jx_array_new(&a);
  if (jx_ok(w)) jx_cpu_convert(x->aval.dtype, JX_F32, jx_aval_size(&a), jx_data(x), jx_data(w));
  return w;
}

static jx_t reduce_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)nin;
  bool mask[JX_MAX_RANK];
  check_axes(p, &in[0]->aval, pa, mask);
  jx_cpu_redop op = p == JX_P_reduce_sum ? JX_CPU_SUM : p == JX_P_reduce_max ? JX_CPU_MAX_R : JX_CPU_MIN_R;
  const jx_aval *a = &in[0]->aval;
  if (!jx_dtype_is_half(a->dtype)) {
    jx_cpu_reduce(op, a->dtype, a->ndim, a->shape, mask, jx_data(in[0]), jx_data(out[0]));
    return NULL;
  }
  jx_aval ya = out[0]->aval;
  ya.dtype = JX_F32;
  jx_t w = widened(in[0]), y = jx_ok(w) ? jx_array_new(&ya) : w;
  if (!jx_ok(y)) return y;
  jx_cpu_reduce(op, JX_F32, a->ndim, a->shape, mask, jx_data(w), jx_data(y));
  jx_cpu_convert(JX_F32, a->dtype, jx_aval_size(&ya), jx_data(y), jx_data(out[0]));
  return NULL;
}

/* out dims (kept) mapped back into the operand's rank, for broadcasting
 * the reduced value back. */
static void kept_dims(const jx_aval *in, const jx_params *pa, int *dims) {
  bool mask[JX_MAX_RANK] = {0};
  for (int i = 0; i < pa->reduce.naxes; i++) mask[pa->reduce.axes[i]] = true;
  int k = 0;
  for (int d = 0; d < in->ndim; d++)
    if (!mask[d]) dims[k++] = d;
}

static jx_t reduce_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                       jx_t *tout) {
  (void)nin;
  jx_bind(p, 1, x, pa, 1, out);
  if (!t[0] || !jx_ok(out[0])) {
    tout[0] = NULL;
    return NULL;
  }
  if (p == JX_P_reduce_sum) {
    tout[0] = jx_bind1(p, 1, t, pa);
    return NULL;
  }
  /* max/min: the tangent averaged over the positions that attain it. */
  const jx_aval *a = &x[0]->aval;
  int dims[JX_MAX_RANK];
  kept_dims(a, pa, dims);
  jx_t yb = jx_lax_broadcast_in_dim(out[0], a->ndim, a->shape, dims);
  jx_t loc = jx_lax_convert(jx_lax_binary(JX_P_eq, x[0], yb), a->dtype);
  jx_t cnt = jx_lax_reduce(JX_P_reduce_sum, loc, pa->reduce.naxes, pa->reduce.axes);
  jx_t num =
      jx_lax_reduce(JX_P_reduce_sum, jx_lax_binary(JX_P_mul, t[0], loc), pa->reduce.naxes, pa->reduce.axes);
  tout[0] = jx_lax_binary(JX_P_div, num, cnt);
  return NULL;
}

static jx_t sum_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                          const jx_params *pa, jx_t *cts) {
  (void)p, (void)in, (void)nin;
  if (!ct[0]) return NULL;
  int dims[JX_MAX_RANK];
  kept_dims(&av[0], pa, dims);
  cts[0] = jx_lax_broadcast_in_dim(ct[0], av[0].ndim, av[0].shape, dims);
  return NULL;
}

/* -------------------------------------------------------- argmax/min */
static jx_t arg_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  (void)nin;
  if (pa->arg.axis < 0 || pa->arg.axis >= in->ndim)
    return jx_rule_error(jx_prim_names[p], in, 1, "axis %d out of range for rank %d", pa->arg.axis, in->ndim);
  if (in->shape[pa->arg.axis] == 0)
    return jx_rule_error(jx_prim_names[p], in, 1, "attempt to get %s of an empty axis", jx_prim_names[p]);
  if (pa->arg.dtype != JX_I32 && pa->arg.dtype != JX_I64)
    return jx_rule_error(jx_prim_names[p], in, 1, "index dtype must be i32 or i64");
  out[0] = (jx_aval){.dtype = pa->arg.dtype};
  for (int d = 0; d < in->ndim; d++)
    if (d != pa->arg.axis) out[0].shape[out[0].ndim++] = in->shape[d];
  return NULL;
}

static jx_t arg_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)nin;
  const jx_aval *a = &in[0]->aval;
  jx_t w = jx_dtype_is_half(a->dtype) ? widened(in[0]) : in[0]; /* exact: same order, same NaNs */
  if (!jx_ok(w)) return w;
  jx_cpu_argreduce(p == JX_P_argmax, w->aval.dtype, a->ndim, a->shape, pa->arg.axis, jx_data(w),
                   pa->arg.dtype, jx_data(out[0]));
  return NULL;
}

static jx_t arg_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                    jx_t *tout) {
  (void)t, (void)nin;
  jx_bind(p, 1, x, pa, 1, out);
  tout[0] = NULL;
  return NULL;
}

/* batching: the reduced axes skip over the batch dim */
jx_t jx_reduce_axes_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                          int *obd) {
  (void)nin;
  jx_params q = *pa;
  int before = 0;
  for (int i = 0; i < pa->reduce.naxes; i++) {
    q.reduce.axes[i] = jx_bdim_shift(pa->reduce.axes[i], bd[0]);
    before += q.reduce.axes[i] < bd[0];
  }
  out[0] = jx_bind1(p, 1, in, &q);
  obd[0] = bd[0] - before;
  return NULL;
}
static jx_t arg_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                      int *obd) {
  (void)nin;
  jx_params q = *pa;
  q.arg.axis = jx_bdim_shift(pa->arg.axis, bd[0]);
  out[0] = jx_bind1(p, 1, in, &q);
  obd[0] = bd[0] - (q.arg.axis < bd[0]);
  return NULL;
}

void jx_reduce_axes_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  jx_put_i32s(b, "axes", pa->reduce.axes, pa->reduce.naxes);
}

static void arg_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  jx_strbuf_put(b, " axes=(%d,) index_dtype=%s", pa->arg.axis, jx_dtype_name(pa->arg.dtype));
}

const jx_rules jx_rules_reduce_sum = {
    .name = "reduce_sum",
    .nin = 1,
    .nout = 1,
    .abstract_eval = reduce_abstract,
    .impl = reduce_impl,
    .jvp = reduce_jvp,
    .batch = jx_reduce_axes_batch,
    .transpose = sum_transpose,
    .params_kind = JX_PK_REDUCE,
    .print_params = jx_reduce_axes_print,
    .lower = {.kind = JX_LOWER_REDUCE, .combine = "add", .identity = JX_ID_ZERO}};
const jx_rules jx_rules_reduce_max = {
    .name = "reduce_max",
    .nin = 1,
    .nout = 1,
    .abstract_eval = reduce_abstract,
    .impl = reduce_impl,
    .jvp = reduce_jvp,
    .batch = jx_reduce_axes_batch,
    .params_kind = JX_PK_REDUCE,
    .print_params = jx_reduce_axes_print,
    .lower = {.kind = JX_LOWER_REDUCE, .combine = "max", .identity = JX_ID_LOWEST}};
const jx_rules jx_rules_reduce_min = {
    .name = "reduce_min",
    .nin = 1,
    .nout = 1,
    .abstract_eval = reduce_abstract,
    .impl = reduce_impl,
    .jvp = reduce_jvp,
    .batch = jx_reduce_axes_batch,
    .params_kind = JX_PK_REDUCE,
    .print_params = jx_reduce_axes_print,
    .lower = {.kind = JX_LOWER_REDUCE, .combine = "min", .identity = JX_ID_HIGHEST}};
const jx_rules jx_rules_argmax = {.name = "argmax",
                                  .nin = 1,
                                  .nout = 1,
                                  .abstract_eval = arg_abstract,
                                  .impl = arg_impl,
                                  .jvp = arg_jvp,
                                  .batch = arg_batch,
                                  .params_kind = JX_PK_ARG,
                                  .print_params = arg_print,
                                  .lower = {.kind = JX_LOWER_CALL}};
const jx_rules jx_rules_argmin = {.name = "argmin",
                                  .nin = 1,
                                  .nout = 1,
                                  .abstract_eval = arg_abstract,
                                  .impl = arg_impl,
                                  .jvp = arg_jvp,
                                  .batch = arg_batch,
                                  .params_kind = JX_PK_ARG,
                                  .print_params = arg_print,
                                  .lower = {.kind = JX_LOWER_CALL}};
