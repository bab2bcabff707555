/* Elementwise primitives: unary math, binary arithmetic, comparisons,
 * select, convert, stop_gradient. Binary ops take equal dtypes and
 * numpy-broadcastable shapes (the broadcast is done by the kernel's
 * strides, never materialised); their transpose rules sum cotangents back
 * down to the input's shape. */
#include "prims/prims.h"

#include <math.h>

/* dtype classes (of the op list's rows, core/elementwise.def) */
static const char *class_name(unsigned mask) {
  if (mask == JX_DTS_FLOAT) return "a float dtype";
  if (mask == JX_DTS_NUM) return "a numeric (non-bool) dtype";
  if (mask == JX_DTS_BOOL_INT) return "bool or an integer dtype";
  return "a supported dtype";
}

/* ------------------------------------------------------------ unary */
/* jvp of y = f(x) given tangent t (never NULL here). */
typedef jx_t (*unary_jvp_fn)(jx_t t, jx_t x, jx_t y);

#define U(p)      jx_lax_unary(JX_P_##p, x)
#define MUL(a, b) jx_lax_binary(JX_P_mul, a, b)
#define DIV(a, b) jx_lax_binary(JX_P_div, a, b)
#define ADD(a, b) jx_lax_binary(JX_P_add, a, b)
#define SUB(a, b) jx_lax_binary(JX_P_sub, a, b)
#define C(v)      jx_lax_const(x->aval.dtype, v)

static jx_t jvp_neg(jx_t t, jx_t x, jx_t y) {
  (void)x, (void)y;
  return jx_lax_unary(JX_P_neg, t);
}
/* JAX's rule, select(x >= 0, t, -t): the slope at 0 (and -0) is 1, not sign's 0 */
static jx_t jvp_abs(jx_t t, jx_t x, jx_t y) {
  (void)y;
  return jx_lax_select(jx_lax_binary(JX_P_ge, x, C(0)), t, jx_lax_unary(JX_P_neg, t));
}
static jx_t jvp_exp(jx_t t, jx_t x, jx_t y) {
  (void)x;
  return MUL(t, y);
}
static jx_t jvp_log(jx_t t, jx_t x, jx_t y) {
  (void)y;
  return DIV(t, x);
}
static jx_t jvp_log1p(jx_t t, jx_t x, jx_t y) {
  (void)y;
  return DIV(t, ADD(x, C(1)));
}
static jx_t jvp_expm1(jx_t t, jx_t x, jx_t y) { return MUL(t, ADD(y, C(1))); }
static jx_t jvp_sqrt(jx_t t, jx_t x, jx_t y) { return DIV(t, MUL(y, C(2))); }
static jx_t jvp_rsqrt(jx_t t, jx_t x, jx_t y) { return MUL(t, MUL(DIV(y, x), C(-0.5))); }
static jx_t jvp_tanh(jx_t t, jx_t x, jx_t y) { return MUL(t, SUB(C(1), MUL(y, y))); }
static jx_t jvp_logistic(jx_t t, jx_t x, jx_t y) { return MUL(t, MUL(y, SUB(C(1), y))); }
static jx_t jvp_sin(jx_t t, jx_t x, jx_t y) {
  (void)y;
  return MUL(t, U(cos));
}
static jx_t jvp_cos(jx_t t, jx_t x, jx_t y) {
  (void)y;
  return MUL(t, jx_lax_unary(JX_P_neg, U(sin)));
}

/* issue #18's functions, JAX's rules (jax/_src/lax/lax.py) */
static jx_t one_minus_sq(jx_t x) { return SUB(C(1), MUL(x, x)); }
static jx_t jvp_tan(jx_t t, jx_t x, jx_t y) { return MUL(t, ADD(C(1), MUL(y, y))); }
static jx_t jvp_asin(jx_t t, jx_t x, jx_t y) {
  (void)y;
  return MUL(t, jx_lax_unary(JX_P_rsqrt, one_minus_sq(x)));
}
static jx_t jvp_acos(jx_t t, jx_t x, jx_t y) {
  (void)y;
  return MUL(jx_lax_unary(JX_P_neg, t), jx_lax_unary(JX_P_rsqrt, one_minus_sq(x)));
}
static jx_t jvp_atan(jx_t t, jx_t x, jx_t y) {
  (void)y;
  return DIV(t, ADD(C(1), MUL(x, x)));
}
static jx_t jvp_sinh(jx_t t, jx_t x, jx_t y) {
  (void)y;
  return MUL(t, U(cosh));
}
static jx_t jvp_cosh(jx_t t, jx_t x, jx_t y) {
  (void)y;
  return MUL(t, U(sinh));
}
static jx_t jvp_asinh(jx_t t, jx_t x, jx_t y) {
  (void)y;
  return MUL(t, jx_lax_unary(JX_P_rsqrt, ADD(MUL(x, x), C(1))));
}
/* (x - 1)(x + 1) rather than x^2 - 1: exact near 1 */
static jx_t jvp_acosh(jx_t t, jx_t x, jx_t y) {
  (void)y;
  return MUL(t, jx_lax_unary(JX_P_rsqrt, MUL(SUB(x, C(1)), ADD(x, C(1)))));
}
static jx_t jvp_atanh(jx_t t, jx_t x, jx_t y) {
  (void)y;
  return MUL(DIV(C(1), ADD(C(1), x)), DIV(t, SUB(C(1), x)));
}
static jx_t jvp_exp2(jx_t t, jx_t x, jx_t y) { return MUL(t, MUL(y, C(0.69314718055994530942))); }

/* the kernel op and accepted dtypes of each unary row of the op list */
static const struct {
  jx_cpu_unop kernel;
  unsigned dtypes;
} unary_info[JX_PRIM_COUNT] = {
#define JX_UNARY(name, K, dtypes, cheap) [JX_P_##name] = {JX_CPU_##K, JX_DTS_##dtypes},
#include "core/elementwise.def"
#undef JX_UNARY
};

/* NULL: the derivative is zero */
static const unary_jvp_fn unary_jvps[JX_PRIM_COUNT] = {
    [JX_P_neg] = jvp_neg,           [JX_P_abs] = jvp_abs,     [JX_P_exp] = jvp_exp,
    [JX_P_log] = jvp_log,           [JX_P_log1p] = jvp_log1p, [JX_P_expm1] = jvp_expm1,
    [JX_P_sqrt] = jvp_sqrt,         [JX_P_rsqrt] = jvp_rsqrt, [JX_P_tanh] = jvp_tanh,
    [JX_P_logistic] = jvp_logistic, [JX_P_sin] = jvp_sin,     [JX_P_cos] = jvp_cos,
    [JX_P_tan] = jvp_tan,           [JX_P_asin] = jvp_asin,   [JX_P_acos] = jvp_acos,
    [JX_P_atan] = jvp_atan,         [JX_P_sinh] = jvp_sinh,   [JX_P_cosh] = jvp_cosh,
    [JX_P_asinh] = jvp_asinh,       [JX_P_acosh] = jvp_acosh, [JX_P_atanh] = jvp_atanh,
    [JX_P_exp2] = jvp_exp2, /* ceil, round: piecewise constant */
};

static jx_t unary_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  (void)pa;
  if (!(unary_info[p].dtypes & (1u << in[0].dtype)))
    return jx_rule_error(jx_prim_names[p], in, nin, "operand must have %s", class_name(unary_info[p].dtypes));
  out[0] = in[0];
  return NULL;
}

static jx_t unary_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)nin, (void)pa;
  jx_cpu_unary(unary_info[p].kernel, in[0]->aval.dtype, jx_aval_size(&in[0]->aval), jx_data(in[0]),
               jx_data(out[0]));
  return NULL;
}

static jx_t unary_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                      jx_t *tout) {
  (void)nin;
  jx_bind(p, 1, x, pa, 1, out);
  tout[0] = unary_jvps[p] && t[0] ? unary_jvps[p](t[0], x[0], out[0]) : NULL;
  return NULL;
}

static jx_t neg_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                          const jx_params *pa, jx_t *cts_in) {
  (void)p, (void)in, (void)av, (void)nin, (void)pa;
  cts_in[0] = jx_lax_neg_any(ct[0]);
  return NULL;
}

/* ----------------------------------------------------------- binary */
/* the kernel op and accepted dtypes of each binary and compare row */
static const struct {
  jx_cpu_binop kernel;
  unsigned dtypes;
  bool compare; /* output bool */
} binary_info[JX_PRIM_COUNT] = {
#define JX_BINARY(name, K, dtypes)  [JX_P_##name] = {JX_CPU_##K, JX_DTS_##dtypes, false},
#define JX_COMPARE(name, K, dtypes) [JX_P_##name] = {JX_CPU_##K, JX_DTS_##dtypes, true},
#include "core/elementwise.def"
#undef JX_BINARY
#undef JX_COMPARE
};

static jx_t binary_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  (void)pa;
  const char *op = jx_prim_names[p];
  if (in[0].dtype != in[1].dtype)
    return jx_rule_error(op, in, nin, "operands must have the same dtype (promote first)");
  if (!(binary_info[p].dtypes & (1u << in[0].dtype)))
    return jx_rule_error(op, in, nin, "operands must have %s", class_name(binary_info[p].dtypes));
  jx_t e = jx_broadcast_shapes(op, in, 2, out);
  if (e) return e;
  out->dtype = binary_info[p].compare ? JX_BOOL : in[0].dtype;
  out->weak = !binary_info[p].compare && in[0].weak && in[1].weak;
  return NULL;
}

static jx_t binary_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)nin, (void)pa;
  int64_t sa[JX_MAX_RANK], sb[JX_MAX_RANK];
  const jx_aval *o = &out[0]->aval;
  jx_broadcast_strides(&in[0]->aval, o, sa);
  jx_broadcast_strides(&in[1]->aval, o, sb);
  jx_cpu_binary(binary_info[p].kernel, in[0]->aval.dtype, o->ndim, o->shape, jx_data(in[0]), sa,
                jx_data(in[1]), sb, jx_data(out[0]));
  return NULL;
}

/* Tangent broadcast to the output's shape (NULL stays NULL). */
static jx_t bcast(jx_t t, jx_t like) { return t ? jx_lax_broadcast_to_aval(t, &like->aval) : NULL; }

static jx_t pow_replace_zero(jx_t x) {
  jx_t zero = jx_lax_const(x->aval.dtype, 0), one = jx_lax_const(x->aval.dtype, 1);
  return jx_lax_select(jx_lax_binary(JX_P_eq, x, zero), jx_lax_broadcast_to_aval(one, &x->aval), x);
}

/* d max(a,b)/da: 1 where a > b, 1/2 at ties, 0 else (JAX's balanced rule) */
static jx_t chooser_weight(jx_prim p, jx_t a, jx_t b, jx_t out) {
  jx_dtype dt = a->aval.dtype;
  jx_t win = jx_lax_binary(p == JX_P_max ? JX_P_gt : JX_P_lt, a, b);
  jx_t tie = jx_lax_binary(JX_P_eq, a, b);
  jx_t w = jx_lax_add_any(jx_lax_convert(win, dt), MUL(jx_lax_convert(tie, dt), jx_lax_const(dt, 0.5)));
  return jx_lax_broadcast_to_aval(w, &out->aval);
}

static jx_t binary_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                       jx_t *tout) {
  (void)nin;
  jx_t a = x[0], b = x[1], ta = t[0], tb = t[1];
  jx_bind(p, 2, x, pa, 1, out);
  jx_t y = out[0];
  jx_t r = NULL;
  switch (p) {
    case JX_P_add: r = jx_lax_add_any(bcast(ta, y), bcast(tb, y)); break;
    case JX_P_sub: r = jx_lax_add_any(bcast(ta, y), bcast(jx_lax_neg_any(tb), y)); break;
    case JX_P_mul:
      r = jx_lax_add_any(ta ? MUL(ta, b) : NULL, tb ? MUL(a, tb) : NULL);
      r = bcast(r, y);
      break;
    case JX_P_div: /* (ta - tb * y) / b */
      r = jx_lax_add_any(ta ? DIV(ta, b) : NULL, tb ? jx_lax_neg_any(DIV(MUL(tb, y), b)) : NULL);
      r = bcast(r, y);
      break;
    case JX_P_pow:
      if (!jx_dtype_is_float(a->aval.dtype)) break;
      if (ta) { /* b * a^(b-1), and 0 where b == 0 */
        jx_dtype dt = a->aval.dtype;
        jx_t jac = MUL(b, jx_lax_binary(JX_P_pow, a, SUB(b, jx_lax_const(dt, 1))));
        jx_t bz = jx_lax_binary(JX_P_eq, b, jx_lax_const(dt, 0));
        jac = jx_lax_select(jx_lax_broadcast_to_aval(bz, &y->aval), jx_lax_zeros(&y->aval),
                            jx_lax_broadcast_to_aval(jac, &y->aval));
        r = MUL(ta, jac);
      }
      if (tb) r = jx_lax_add_any(r, MUL(tb, MUL(jx_lax_unary(JX_P_log, pow_replace_zero(a)), y)));
      r = bcast(r, y);
      break;
    case JX_P_max:
    case JX_P_min:
      if (!jx_dtype_is_float(a->aval.dtype)) break;
      if (ta) r = MUL(ta, chooser_weight(p, a, b, y));
      if (tb) r = jx_lax_add_any(r, MUL(tb, chooser_weight(p, b, a, y)));
      r = bcast(r, y);
      break;
    case JX_P_atan2: { /* d/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2) */
      jx_t den = ADD(MUL(a, a), MUL(b, b));
      if (ta) r = bcast(MUL(ta, DIV(b, den)), y);
      if (tb) r = jx_lax_add_any(r, bcast(MUL(tb, DIV(jx_lax_unary(JX_P_neg, a), den)), y));
      break;
    }
    default: break; /* logical ops and comparisons: zero */
  }
  tout[0] = r;
  return jx_ok(y) && r && !jx_ok(r) ? r : NULL;
}

static jx_t binary_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                             const jx_params *pa, jx_t *cts) {
  (void)nin, (void)pa;
  jx_t c = ct[0];
  if (!c) return NULL;
  switch (p) {
    case JX_P_add:
    case JX_P_sub:
      if (!in[0]) cts[0] = jx_lax_unbroadcast(c, &av[0]);
      if (!in[1]) cts[1] = jx_lax_unbroadcast(p == JX_P_sub ? jx_lax_neg_any(c) : c, &av[1]);
      return NULL;
    case JX_P_mul:
      if (!in[0] && !in[1]) return jx_error_new("mul: transpose with both operands linear (not linear)");
      if (!in[0]) cts[0] = jx_lax_unbroadcast(MUL(c, in[1]), &av[0]);
      if (!in[1]) cts[1] = jx_lax_unbroadcast(MUL(in[0], c), &av[1]);
      return NULL;
    case JX_P_div:
      if (!in[1]) return jx_error_new("div: transpose with respect to the divisor (not linear)");
      cts[0] = jx_lax_unbroadcast(DIV(c, in[1]), &av[0]);
      return NULL;
    default: return jx_error_new("%s: not a linear primitive (no transpose rule)", jx_prim_names[p]);
  }
}

/* ----------------------------------------------------------- select */
static jx_t select_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  (void)pa;
  if (in[0].dtype != JX_BOOL) return jx_rule_error(jx_prim_names[p], in, nin, "predicate must be bool");
  if (in[1].dtype != in[2].dtype)
    return jx_rule_error(jx_prim_names[p], in, nin, "branches must have the same dtype");
  jx_t e = jx_broadcast_shapes(jx_prim_names[p], in, 3, out);
  if (e) return e;
  out->dtype = in[1].dtype;
  out->weak = in[1].weak && in[2].weak;
  return NULL;
}

static jx_t select_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin, (void)pa;
  int64_t s0[JX_MAX_RANK], s1[JX_MAX_RANK], s2[JX_MAX_RANK];
  const jx_aval *o = &out[0]->aval;
  jx_broadcast_strides(&in[0]->aval, o, s0);
  jx_broadcast_strides(&in[1]->aval, o, s1);
  jx_broadcast_strides(&in[2]->aval, o, s2);
  jx_cpu_select(o->dtype, o->ndim, o->shape, jx_data(in[0]), s0, jx_data(in[1]), s1, jx_data(in[2]), s2,
                jx_data(out[0]));
  return NULL;
}

static jx_t select_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                       jx_t *tout) {
  (void)nin;
  jx_bind(p, 3, x, pa, 1, out);
  jx_t y = out[0];
  if (!t[1] && !t[2]) {
    tout[0] = NULL;
    return NULL;
  }
  jx_t a = t[1] ? t[1] : jx_lax_zeros(&x[1]->aval), b = t[2] ? t[2] : jx_lax_zeros(&x[2]->aval);
  tout[0] = bcast(jx_lax_select(x[0], a, b), y);
  return NULL;
}

static jx_t select_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                             const jx_params *pa, jx_t *cts) {
  (void)p, (void)nin, (void)pa;
  if (!in[0]) return jx_error_new("select: transpose with respect to the predicate");
  if (!ct[0]) return NULL;
  jx_t z = jx_lax_zeros(&ct[0]->aval);
  if (!in[1]) cts[1] = jx_lax_unbroadcast(jx_lax_select(in[0], ct[0], z), &av[1]);
  if (!in[2]) cts[2] = jx_lax_unbroadcast(jx_lax_select(in[0], z, ct[0]), &av[2]);
  return NULL;
}

/* ---------------------------------------------------------- convert */
static jx_t convert_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  out[0] = in[0];
  if (p == JX_P_stop_gradient) return NULL;
  if ((unsigned)pa->convert.dtype >= JX_DTYPE_COUNT)
    return jx_rule_error("convert", in, nin, "invalid target dtype %d", (int)pa->convert.dtype);
  out[0].dtype = pa->convert.dtype;
  out[0].weak = pa->convert.weak;
  return NULL;
}

static jx_t convert_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)nin;
  int64_t n = jx_aval_size(&in[0]->aval);
  if (p == JX_P_stop_gradient) {
    memcpy(jx_data(out[0]), jx_data(in[0]), (size_t)n * jx_dtype_size(in[0]->aval.dtype));
    return NULL;
  }
  if (jx_has_exact(in[0])) { /* a weak scalar: from its exact value */
    jx_t e = jx_exact_fits("convert", in[0], pa->convert.dtype);
    if (e) return e;
    jx_exact_store(in[0], pa->convert.dtype, jx_data(out[0]));
    if (pa->convert.weak) { /* still a Python number */
      out[0]->u.arr.exact = in[0]->u.arr.exact;
      out[0]->u.arr.exact_f = in[0]->u.arr.exact_f;
      out[0]->u.arr.exact_i = in[0]->u.arr.exact_i;
    }
    return NULL;
  }
  jx_cpu_convert(in[0]->aval.dtype, pa->convert.dtype, n, jx_data(in[0]), jx_data(out[0]));
  return NULL;
}

static jx_t convert_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                        jx_t *tout) {
  (void)nin;
  jx_bind(p, 1, x, pa, 1, out);
  bool diff = p == JX_P_convert && t[0] && jx_dtype_is_float(x[0]->aval.dtype) &&
              jx_dtype_is_float(pa->convert.dtype);
  tout[0] = diff ? jx_bind1(p, 1, t, pa) : NULL;
  return NULL;
}

static jx_t convert_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                              const jx_params *pa, jx_t *cts) {
  (void)in, (void)nin, (void)pa;
  if (p != JX_P_convert) return jx_error_new("stop_gradient: not linear");
  cts[0] = ct[0] ? jx_lax_convert(ct[0], av[0].dtype) : NULL;
  return NULL;
}

static void convert_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  jx_strbuf_put(b, " new_dtype=%s weak_type=%s", jx_dtype_name(pa->convert.dtype),
                pa->convert.weak ? "True" : "False");
}

/* ------------------------------------------------------------ batching */
/* Elementwise ops broadcast like numpy, aligned from the right. A batched
 * operand gets its batch dim in front, padded with unit dims up to the
 * full rank; unbatched operands then broadcast against it as they are.
 * When every batched operand already has the batch dim at the same place
 * at full rank and the rest are 0-d, nothing moves. */
static jx_t ew_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                     int *obd) {
  jx_t x[3];
  int common = jx_batch_align_right(in, bd, nin, x);
  out[0] = jx_bind1(p, nin, common >= 0 ? in : x, pa);
  obd[0] = common >= 0 ? common : 0;
  return NULL;
}

/* ------------------------------------------------------------ tables */
#define UNARY(nm, tr)                                                                                        \
  const jx_rules jx_rules_##nm = {.name = #nm,                                                               \
                                  .nin = 1,                                                                  \
                                  .nout = 1,                                                                 \
                                  .abstract_eval = unary_abstract,                                           \
                                  .impl = unary_impl,                                                        \
                                  .jvp = unary_jvp,                                                          \
                                  .transpose = tr,                                                           \
                                  .batch = ew_batch,                                                         \
                                  .lower = {.kind = JX_LOWER_EW, .stem = #nm}};
UNARY(neg, neg_transpose)
UNARY(abs, NULL)
UNARY(sign, NULL)
UNARY(floor, NULL)
UNARY(exp, NULL)
UNARY(log, NULL)
UNARY(log1p, NULL)
UNARY(expm1, NULL)
UNARY(sqrt, NULL)
UNARY(rsqrt, NULL)
UNARY(tanh, NULL)
UNARY(logistic, NULL)
UNARY(sin, NULL)
UNARY(cos, NULL)
UNARY(not, NULL)
UNARY(tan, NULL)
UNARY(asin, NULL)
UNARY(acos, NULL)
UNARY(atan, NULL)
UNARY(sinh, NULL)
UNARY(cosh, NULL)
UNARY(asinh, NULL)
UNARY(acosh, NULL)
UNARY(atanh, NULL)
UNARY(exp2, NULL)
UNARY(ceil, NULL)
UNARY(round, NULL)

#define BINARY(nm, tr)                                                                                       \
  const jx_rules jx_rules_##nm = {.name = #nm,                                                               \
                                  .nin = 2,                                                                  \
                                  .nout = 1,                                                                 \
                                  .abstract_eval = binary_abstract,                                          \
                                  .impl = binary_impl,                                                       \
                                  .jvp = binary_jvp,                                                         \
                                  .transpose = tr,                                                           \
                                  .batch = ew_batch,                                                         \
                                  .lower = {.kind = JX_LOWER_EW, .stem = #nm}};
BINARY(add, binary_transpose)
BINARY(sub, binary_transpose)
BINARY(mul, binary_transpose)
BINARY(div, binary_transpose)
BINARY(pow, NULL)
BINARY(max, NULL)
BINARY(min, NULL)
BINARY(and, NULL)
BINARY(or, NULL)
BINARY(eq, NULL)
BINARY(ne, NULL)
BINARY(lt, NULL)
BINARY(le, NULL)
BINARY(gt, NULL)
BINARY(ge, NULL)
BINARY(atan2, NULL)

const jx_rules jx_rules_select = {.name = "select",
                                  .nin = 3,
                                  .nout = 1,
                                  .abstract_eval = select_abstract,
                                  .impl = select_impl,
                                  .jvp = select_jvp,
                                  .transpose = select_transpose,
                                  .batch = ew_batch,
                                  .lower = {.kind = JX_LOWER_EW, .stem = "select", .form = JX_NAME_RESULT}};
const jx_rules jx_rules_convert = {.name = "convert",
                                   .nin = 1,
                                   .nout = 1,
                                   .abstract_eval = convert_abstract,
                                   .impl = convert_impl,
                                   .jvp = convert_jvp,
                                   .transpose = convert_transpose,
                                   .batch = ew_batch,
                                   .params_kind = JX_PK_CONVERT,
                                   .print_params = convert_print,
                                   .lower = {.kind = JX_LOWER_EW, .stem = "cvt", .form = JX_NAME_CVT}};
const jx_rules jx_rules_stop_gradient = {.name = "stop_gradient",
                                         .nin = 1,
                                         .nout = 1,
                                         .abstract_eval = convert_abstract,
                                         .impl = convert_impl,
                                         .jvp = convert_jvp,
                                         .batch = ew_batch,
                                         .lower = {.kind = JX_LOWER_FORWARD}};
