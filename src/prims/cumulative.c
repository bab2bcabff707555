/* The cumulative primitives, lax.cumsum / cumprod / cummax / cummin /
 * cumlogsumexp: inclusive scans along params.cumulative.axis, from the end
 * when params.cumulative.reverse.
 *
 * cumsum is linear: its transpose is cumsum in the other direction. The
 * others differentiate as JAX defines them: the jvp of an associative scan
 * of their combine (mul, max, min, logaddexp) over (value, tangent) pairs,
 * which is linear in the tangents and built from primitives, so reverse
 * mode transposes it. Eagerly and under jit (a call into the compiled
 * kernel: sequential along the axis, vectorized across the other dims)
 * they run backend/cpu/scan_kernels.c. */
#include "backend/cpu/scan_kernels.h"
#include "prims/assoc_scan.h"
#include "prims/prims.h"

#include <math.h>

static jx_cum_op op_of(jx_prim p) {
  switch (p) {
    case JX_P_cumsum: return JX_CUM_SUM;
    case JX_P_cumprod: return JX_CUM_PROD;
    case JX_P_cummax: return JX_CUM_MAX;
    case JX_P_cummin: return JX_CUM_MIN;
    default: return JX_CUM_LOGSUMEXP;
  }
}

static jx_t cum_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  const char *nm = jx_prim_names[p];
  int axis = pa->cumulative.axis;
  if (axis < 0 || axis >= in[0].ndim)
    return jx_rule_error(nm, in, nin, "axis %d out of range for rank %d", axis, in[0].ndim);
  if (!jx_cpu_cumulative_supports(op_of(p), in[0].dtype))
    return jx_rule_error(nm, in, nin, "%s",
                         op_of(p) == JX_CUM_LOGSUMEXP ? "operand must be a float dtype"
                         : op_of(p) >= JX_CUM_MAX     ? "operand dtype not supported"
                                                      : "operand must be numeric (not bool)");
  out[0] = in[0];
  return NULL;
}

static jx_t cum_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)nin;
  const jx_aval *a = &in[0]->aval;
  int axis = pa->cumulative.axis;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; d++) outer *= a->shape[d];
  for (int d = axis + 1; d < a->ndim; d++) inner *= a->shape[d];
  jx_cpu_cumulative(op_of(p), a->dtype, outer, a->shape[axis], inner, pa->cumulative.reverse, jx_data(in[0]),
                    jx_data(out[0]));
  return NULL;
}

/* ------------------------------------------------------------- jvp */
#define MUL(a, b) jx_lax_binary(JX_P_mul, a, b)
#define ADD(a, b) jx_lax_binary(JX_P_add, a, b)

/* JAX's lax.max jvp weights: 1 to the operand equal to the result, 0.5
 * each when both are */
static jx_t balanced(jx_t x, jx_t z, jx_t y) {
  jx_dtype dt = x->aval.dtype;
  jx_t half = jx_lax_select(jx_lax_binary(JX_P_eq, y, z), jx_lax_const(dt, 0.5), jx_lax_const(dt, 1));
  jx_t zero = jx_lax_broadcast_to_aval(jx_lax_const(dt, 0), &x->aval);
  return jx_lax_select(jx_lax_binary(JX_P_eq, x, z), jx_lax_broadcast_to_aval(half, &x->aval), zero);
}
/* log(exp(a) + exp(b)) as jnp.logaddexp computes it */
static jx_t logaddexp(jx_t a, jx_t b) {
  jx_t m = jx_lax_binary(JX_P_max, a, b), d = jx_lax_binary(JX_P_sub, a, b);
  jx_t soft = ADD(
      m, jx_lax_unary(JX_P_log1p, jx_lax_unary(JX_P_exp, jx_lax_unary(JX_P_neg, jx_lax_unary(JX_P_abs, d)))));
  return jx_lax_select(jx_lax_binary(JX_P_ne, d, d), ADD(a, b), soft);
}
/* infinities replaced by 0 (jnp.logaddexp's jvp: exp(x - out) is then
 * finite where both are the same infinity) */
static jx_t finite_or_zero(jx_t x) {
  jx_dtype dt = x->aval.dtype;
  jx_t inf = jx_lax_binary(JX_P_eq, jx_lax_unary(JX_P_abs, x), jx_lax_const(dt, INFINITY));
  return jx_lax_select(inf, jx_lax_broadcast_to_aval(jx_lax_const(dt, 0), &x->aval), x);
}

/* the combine on (value, tangent) pairs: a = (a0, a1), b = (b0, b1) */
static jx_t pair_combine(void *ctx, int n, const jx_t *a, const jx_t *b, jx_t *out) {
  jx_prim p = *(const jx_prim *)ctx;
  (void)n;
  jx_t c = NULL, t = NULL;
  switch (p) {
    case JX_P_cumprod:
      c = MUL(a[0], b[0]);
      t = ADD(MUL(a[1], b[0]), MUL(a[0], b[1]));
      break;
    case JX_P_cummax:
    case JX_P_cummin:
      c = jx_lax_binary(p == JX_P_cummax ? JX_P_max : JX_P_min, a[0], b[0]);
      t = ADD(MUL(a[1], balanced(a[0], c, b[0])), MUL(b[1], balanced(b[0], c, a[0])));
      break;
    default: { /* cumlogsumexp */
      c = logaddexp(a[0], b[0]);
      jx_t fc = finite_or_zero(c);
      jx_t wa = jx_lax_unary(JX_P_exp, jx_lax_binary(JX_P_sub, finite_or_zero(a[0]), fc));
      jx_t wb = jx_lax_unary(JX_P_exp, jx_lax_binary(JX_P_sub, finite_or_zero(b[0]), fc));
      t = ADD(MUL(a[1], wa), MUL(b[1], wb));
    }
  }
  out[0] = c, out[1] = t;
  return !jx_ok(c) ? c : !jx_ok(t) ? t : NULL;
}

static jx_t cum_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                    jx_t *tout) {
  jx_bind(p, nin, x, pa, 1, out);
  tout[0] = NULL;
  if (!jx_ok(out[0])) return out[0];
  if (!t[0] || !jx_dtype_is_float(x[0]->aval.dtype)) return NULL;
  if (p == JX_P_cumsum) {
    tout[0] = jx_bind1(p, 1, t, pa);
    return jx_ok(tout[0]) ? NULL : tout[0];
  }
  jx_t pair[2] = {x[0], t[0]}, res[2];
  jx_t err =
      jx_lax_associative_scan(pair_combine, &p, 2, pair, pa->cumulative.axis, pa->cumulative.reverse, res);
  tout[0] = err ? NULL : res[1];
  return err;
}

/* cumsum's transpose: each input element feeds every later (earlier, when
 * reversed) output, so the cotangent is cumsum the other way */
static jx_t cumsum_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                             const jx_params *pa, jx_t *cts) {
  (void)in, (void)av, (void)nin;
  if (!ct[0]) return NULL;
  jx_params q = *pa;
  q.cumulative.reverse = !pa->cumulative.reverse;
  cts[0] = jx_bind1(p, 1, ct, &q);
  return jx_ok(cts[0]) ? NULL : cts[0];
}

static jx_t cum_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                      int *obd) {
  (void)nin;
  jx_params q = *pa;
  q.cumulative.axis = jx_bdim_shift(pa->cumulative.axis, bd[0]);
  out[0] = jx_bind1(p, 1, in, &q);
  obd[0] = bd[0];
  return NULL;
}

static void cum_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  jx_strbuf_put(b, " axis=%d reverse=%s", pa->cumulative.axis, pa->cumulative.reverse ? "True" : "False");
}

#define CUMULATIVE(nm, tr)                                                                                   \
  const jx_rules jx_rules_##nm = {.name = #nm,                                                               \
                                  .nin = 1,                                                                  \
                                  .nout = 1,                                                                 \
                                  .abstract_eval = cum_abstract,                                             \
                                  .impl = cum_impl,                                                          \
                                  .jvp = cum_jvp,                                                            \
                                  .transpose = tr,                                                           \
                                  .batch = cum_batch,                                                        \
                                  .params_kind = JX_PK_CUMULATIVE,                                           \
                                  .print_params = cum_print,                                                 \
                                  .lower = {.kind = JX_LOWER_CALL}};
CUMULATIVE(cumsum, cumsum_transpose)
CUMULATIVE(cumprod, NULL)
CUMULATIVE(cummax, NULL)
CUMULATIVE(cummin, NULL)
CUMULATIVE(cumlogsumexp, NULL)
