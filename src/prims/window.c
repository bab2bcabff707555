/* Window primitives: reduce_window_sum/max/min (lax.reduce_window with add,
 * max, min), and the pair that differentiates max (min) pooling, as in JAX:
 *   select_and_gather_add(t, x): per window, t at x's first max (min) tap
 *     (reduce_window_max's jvp; linear in t);
 *   select_and_scatter_add(s, x): s[o] added into zeros(x.shape) at window
 *     o's first max (min) tap (its transpose, and max pooling's gradient).
 * Each is the other's transpose. params.window holds, per operand dim, the
 * window, strides, padding (lo, hi; negative crops), base and window
 * dilation; batching puts the mapped axis in front with a 1-tap window. */
#include "backend/cpu/conv.h"
#include "prims/conv.h"
#include "prims/prims.h"

jx_t jx_lax_window(jx_prim prim, int nin, const jx_t *in, const jx_params *p) {
  return jx_bind1(prim, nin, in, p);
}

static const char *nm(jx_prim p) { return jx_prim_names[p]; }

/* The output shape of the windows over x; an error names op and in. */
static jx_t window_shape(jx_prim p, const jx_aval *in, int nin, const jx_aval *x, const jx_params *pa,
                         int64_t *out) {
  const jx_params *w = pa;
  for (int d = 0; d < x->ndim; d++) {
    int64_t win = w->window.window[d], st = w->window.stride[d];
    int64_t bd = w->window.base_dil[d], wd = w->window.win_dil[d];
    if (win < 1 || st < 1 || bd < 1 || wd < 1)
      return jx_rule_error(nm(p), in, nin,
                           "dim %d: window %lld, stride %lld, dilations %lld, %lld must be >= 1", d,
                           (long long)win, (long long)st, (long long)bd, (long long)wd);
    int64_t padded = jx_dilate_dim(x->shape[d], bd) + w->window.lo[d] + w->window.hi[d];
    if (padded < 0)
      return jx_rule_error(nm(p), in, nin, "dim %d: negative padding (%d, %d) crops more than the operand", d,
                           w->window.lo[d], w->window.hi[d]);
    out[d] = jx_window_out(padded, jx_dilate_dim(win, wd), st);
  }
  return NULL;
}

static jx_t window_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  const jx_aval *x = &in[nin - 1]; /* the windowed operand comes last */
  if (x->dtype == JX_BOOL) return jx_rule_error(nm(p), in, nin, "bool operands are not supported");
  if (nin == 2 && in[0].dtype != x->dtype)
    return jx_rule_error(nm(p), in, nin, "operands must have the same dtype");
  int64_t wout[JX_MAX_RANK];
  jx_t e = window_shape(p, in, nin, x, pa, wout);
  if (e) return e;
  out[0] = (jx_aval){.dtype = x->dtype, .weak = x->weak, .ndim = x->ndim};
  if (p == JX_P_select_and_gather_add && !jx_aval_eq(&in[0], x))
    return jx_rule_error(nm(p), in, nin, "the gathered operand must have the shape of the selecting one");
  if (p == JX_P_select_and_scatter_add) {
    bool same = in[0].ndim == x->ndim;
    for (int d = 0; same && d < x->ndim; d++) same = in[0].shape[d] == wout[d];
    if (!same) {
      char s[160];
      return jx_rule_error(nm(p), in, nin, "the source must have the windows' shape %s",
                           jx_shape_str(x->ndim, wout, s, sizeof s));
    }
    memcpy(out[0].shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  } else {
    memcpy(out[0].shape, wout, sizeof(int64_t) * (size_t)x->ndim);
  }
  return NULL;
}

static void make_desc(const jx_aval *x, const jx_params *pa, jx_cpu_window_desc *d) {
  *d = (jx_cpu_window_desc){.dt = x->dtype, .ndim = x->ndim};
  for (int i = 0; i < x->ndim; i++) {
    d->in[i] = x->shape[i], d->window[i] = pa->window.window[i], d->stride[i] = pa->window.stride[i];
    d->lo[i] = pa->window.lo[i], d->bdil[i] = pa->window.base_dil[i], d->wdil[i] = pa->window.win_dil[i];
    int64_t padded = jx_dilate_dim(x->shape[i], d->bdil[i]) + pa->window.lo[i] + pa->window.hi[i];
    d->out[i] = jx_window_out(padded, jx_dilate_dim(d->window[i], d->wdil[i]), d->stride[i]);
  }
}

static int run_window(jx_prim p, const jx_params *pa, const jx_cpu_window_desc *d, const void *a,
                      const void *b, void *y) {
  switch (p) {
    case JX_P_reduce_window_sum: return jx_cpu_reduce_window(JX_WIN_SUM, d, a, y);
    case JX_P_reduce_window_max: return jx_cpu_reduce_window(JX_WIN_MAX, d, a, y);
    case JX_P_reduce_window_min: return jx_cpu_reduce_window(JX_WIN_MIN, d, a, y);
    case JX_P_select_and_gather_add: return jx_cpu_select_gather(pa->window.select, d, a, b, y);
    default: return jx_cpu_select_scatter(pa->window.select, d, a, b, y);
  }
}

typedef struct {
  jx_prim p;
  const jx_params *pa;
  jx_cpu_window_desc *d;
  int nin;
} wide_job;

static int window_wide(void *ctx, const void *const *in, void *out) {
  const wide_job *j = ctx;
  return run_window(j->p, j->pa, j->d, in[0], j->nin == 2 ? in[1] : NULL, out);
}

/* bf16/f16 (#19): the operands widened exactly to f32, the f32 kernel,
 * the result rounded once per element (as XLA:CPU after float
 * normalization: sums and select_and_scatter's adds accumulate in f32;
 * max/min and the selections see the same order as the 16-bit values) */
static int run_half(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_cpu_window_desc *d, jx_t y) {
  const jx_dtype dt = d->dt;
  const int64_t n[2] = {jx_aval_size(&in[0]->aval), nin == 2 ? jx_aval_size(&in[1]->aval) : 0};
  const void *x[2] = {jx_data(in[0]), nin == 2 ? jx_data(in[1]) : NULL};
  wide_job j = {p, pa, d, nin};
  d->dt = JX_F32;
  return jx_cpu_run_widened(dt, JX_F32, nin, x, n, jx_data(y), jx_aval_size(&y->aval), window_wide, &j);
}

static jx_t window_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  jx_cpu_window_desc d;
  make_desc(&in[nin - 1]->aval, pa, &d);
  int rc = jx_dtype_is_half(d.dt)
               ? run_half(p, in, nin, pa, &d, out[0])
               : run_window(p, pa, &d, jx_data(in[0]), nin == 2 ? jx_data(in[1]) : NULL, jx_data(out[0]));
  if (rc) {
    jx_aval av[2] = {in[0]->aval, in[nin - 1]->aval};
    return jx_rule_error(nm(p), av, nin, "out of memory");
  }
  return NULL;
}

/* ---------------------------------------------------------------- jvp */
static jx_t window_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                       jx_t *tout) {
  jx_bind(p, nin, x, pa, 1, out);
  if (!t[0]) {
    tout[0] = NULL;
    return NULL;
  }
  if (p == JX_P_reduce_window_max || p == JX_P_reduce_window_min) {
    jx_params q = *pa;
    q.window.select = p == JX_P_reduce_window_min;
    tout[0] = jx_lax_window(JX_P_select_and_gather_add, 2, (jx_t[]){t[0], x[0]}, &q);
  } else { /* linear in the first operand; the selecting x has no say in the derivative */
    tout[0] = jx_lax_window(p, nin, (jx_t[]){t[0], nin == 2 ? x[1] : NULL}, pa);
  }
  return NULL;
}

/* ---------------------------------------------------------- transpose */
static jx_t window_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                             const jx_params *pa, jx_t *cts) {
  (void)nin;
  if (!ct[0]) return NULL;
  if (nin == 2 && !in[1])
    return jx_rule_error(nm(p), av, 2, "transpose: the selecting operand must be known");
  if (p == JX_P_select_and_gather_add) {
    cts[0] = jx_lax_window(JX_P_select_and_scatter_add, 2, (jx_t[]){ct[0], in[1]}, pa);
  } else if (p == JX_P_select_and_scatter_add) {
    cts[0] = jx_lax_window(JX_P_select_and_gather_add, 2, (jx_t[]){ct[0], in[1]}, pa);
  } else { /* reduce_window_sum: a window sum of the cotangent, base-dilated by the strides */
    jx_params q;
    jx_params_init(&q, JX_PK_WINDOW);
    for (int d = 0; d < av[0].ndim; d++) {
      int64_t lo, hi;
      jx_vjp_lhs_padding(av[0].shape[d], pa->window.window[d], pa->window.stride[d], ct[0]->aval.shape[d],
                         pa->window.lo[d], pa->window.base_dil[d], pa->window.win_dil[d], &lo, &hi);
      q.window.window[d] = pa->window.window[d], q.window.stride[d] = pa->window.base_dil[d];
      q.window.lo[d] = (int32_t)lo, q.window.hi[d] = (int32_t)hi;
      q.window.base_dil[d] = pa->window.stride[d], q.window.win_dil[d] = pa->window.win_dil[d];
    }
    cts[0] = jx_lax_window(JX_P_reduce_window_sum, 1, ct, &q);
  }
  if (jx_ok(cts[0]) && !jx_aval_eq(&cts[0]->aval, &av[0]))
    return jx_rule_error(nm(p), av, nin, "internal: transpose made a cotangent of the wrong shape");
  return NULL;
}

/* ----------------------------------------------------------- batching */
static jx_t window_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                         int *obd) {
  int64_t n = jx_batch_size(in, bd, nin);
  jx_t x[2];
  for (int i = 0; i < nin; i++) x[i] = jx_batch_to_front(in[i], bd[i], n);
  int r = x[nin - 1]->aval.ndim - 1;
  if (r + 1 > JX_MAX_RANK) return jx_error_new("%s: vmap: batched rank exceeds %d", nm(p), JX_MAX_RANK);
  jx_params q;
  jx_params_init(&q, JX_PK_WINDOW);
  q.window.select = pa->window.select;
  q.window.window[0] = q.window.stride[0] = q.window.base_dil[0] = q.window.win_dil[0] = 1;
  for (int d = 0; d < r; d++) {
    q.window.window[d + 1] = pa->window.window[d], q.window.stride[d + 1] = pa->window.stride[d];
    q.window.lo[d + 1] = pa->window.lo[d], q.window.hi[d + 1] = pa->window.hi[d];
    q.window.base_dil[d + 1] = pa->window.base_dil[d], q.window.win_dil[d + 1] = pa->window.win_dil[d];
  }
  out[0] = jx_lax_window(p, nin, x, &q);
  obd[0] = 0;
  return NULL;
}

static void window_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  int n = in[nin - 1].ndim;
  jx_put_i32s(b, "window_dimensions", pa->window.window, n);
  jx_put_i32s(b, "window_strides", pa->window.stride, n);
  jx_strbuf_put(b, " padding=(");
  for (int d = 0; d < n; d++)
    jx_strbuf_put(b, "%s(%d, %d)", d ? ", " : "", pa->window.lo[d], pa->window.hi[d]);
  jx_strbuf_put(b, n == 1 ? ",)" : ")");
  jx_put_i32s(b, "base_dilation", pa->window.base_dil, n);
  jx_put_i32s(b, "window_dilation", pa->window.win_dil, n);
  if (nin == 2) jx_strbuf_put(b, " select_prim=%s", pa->window.select ? "le" : "ge");
}

#define WINDOW_RULES(prim, nin_, linear)                                                                     \
  const jx_rules jx_rules_##prim = {.name = #prim,                                                           \
                                    .nin = nin_,                                                             \
                                    .nout = 1,                                                               \
                                    .abstract_eval = window_abstract,                                        \
                                    .impl = window_impl,                                                     \
                                    .jvp = window_jvp,                                                       \
                                    .transpose = linear ? window_transpose : NULL,                           \
                                    .batch = window_batch,                                                   \
                                    .params_kind = JX_PK_WINDOW,                                             \
                                    .print_params = window_print,                                            \
                                    .lower = {.kind = JX_LOWER_CALL}};
WINDOW_RULES(reduce_window_sum, 1, true)
WINDOW_RULES(reduce_window_max, 1, false)
WINDOW_RULES(reduce_window_min, 1, false)
WINDOW_RULES(select_and_gather_add, 2, true)
WINDOW_RULES(select_and_scatter_add, 2, true)
