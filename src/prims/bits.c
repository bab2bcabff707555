/* Primitives behind random numbers (src/ops/random.c), each with all of its
 * rules:
 *
 *   shift_left, shift_right_logical, xor, rem, fma    (family bits)
 *   erf, erf_inv                                       (family special)
 *   threefry2x32                                       (family random)
 *   argsort                                            (family sort)
 *
 * The elementwise ones (bits, special) take operands of one dtype whose
 * shapes are equal, except that any operand may be 0-d (a scalar); the op
 * layer broadcasts anything else first. That keeps the eager kernels plain
 * loops, and the jit fuses them like the other elementwise primitives (they
 * render as calls to the scalar functions in scalar_ops.h). threefry2x32
 * broadcasts its four u32 operands numpy-style and returns both output
 * words stacked: u32[2, ...] (one output, where JAX's primitive has two).
 * argsort is a stable sort's permutation, which is what JAX's
 * sort_key_val-based shuffle needs. */
#include "prims/prims.h"

#include <math.h>

#define ERR(...) jx_rule_error(jx_prim_names[p], in, nin, __VA_ARGS__)

/* the kernel op (bits or special) and accepted dtypes of each row of the
 * op list (core/elementwise.def); fma (its own kernel) takes floats */
static const struct {
  int kernel;
  unsigned dtypes;
} ew_info[JX_PRIM_COUNT] = {
#define JX_BITS(name, K, dtypes, cheap) [JX_P_##name] = {JX_CPU_##K, JX_DTS_##dtypes},
#define JX_SPECIAL(name, K, dtypes)     [JX_P_##name] = {JX_CPU_##K, JX_DTS_##dtypes},
#include "core/elementwise.def"
#undef JX_BITS
#undef JX_SPECIAL
    [JX_P_fma] = {0, JX_DTS_FLOAT},
};
static unsigned dtypes_of(jx_prim p) { return ew_info[p].dtypes; }

static const char *class_name(unsigned m) {
  return m == JX_DTS_INT        ? "an integer dtype"
         : m == JX_DTS_BOOL_INT ? "bool or an integer dtype"
         : m == JX_DTS_NUM      ? "a numeric (non-bool) dtype"
                                : "a float dtype";
}

/* ------------------------------------------------------ elementwise */
static jx_t ew_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  (void)pa;
  unsigned ok = dtypes_of(p);
  const jx_aval *full = &in[0];
  bool weak = true;
  for (int i = 0; i < nin; i++) {
    if (in[i].dtype != in[0].dtype) return ERR("operands must have the same dtype (promote first)");
    if (in[i].ndim > 0) full = &in[i];
    weak &= in[i].weak;
  }
  if (!(ok & (1u << in[0].dtype))) return ERR("operands must have %s", class_name(ok));
  for (int i = 0; i < nin; i++)
    if (in[i].ndim > 0 && !jx_aval_eq(&in[i], full))
      return ERR("operand shapes must be equal or 0-d (broadcast first)");
  out[0] = *full;
  out[0].weak = weak;
  return NULL;
}

static jx_t ew_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)pa;
  const jx_aval *o = &out[0]->aval;
  int64_t n = jx_aval_size(o);
  jx_dtype dt = o->dtype;
#define S(i) (in[i]->aval.ndim == 0)
  if (p == JX_P_fma)
    jx_cpu_fma(dt, n, jx_data(in[0]), S(0), jx_data(in[1]), S(1), jx_data(in[2]), S(2), jx_data(out[0]));
  else if (nin == 1) /* a JX_SPECIAL row */
    jx_cpu_special((jx_cpu_specialop)ew_info[p].kernel, dt, n, jx_data(in[0]), jx_data(out[0]));
  else /* a JX_BITS row */
    jx_cpu_bits_binary((jx_cpu_bitsop)ew_info[p].kernel, dt, n, jx_data(in[0]), S(0), jx_data(in[1]), S(1),
                       jx_data(out[0]));
#undef S
  return NULL;
}

#define MUL(a, b) jx_lax_binary(JX_P_mul, a, b)
#define ADD(a, b) jx_lax_binary(JX_P_add, a, b)
#define SUB(a, b) jx_lax_binary(JX_P_sub, a, b)
#define DIV(a, b) jx_lax_binary(JX_P_div, a, b)

/* trigamma psi'(x), digamma's derivative, built from primitives (so it
 * differentiates again): the reflection psi'(x) = pi^2 / sin^2(pi x) -
 * psi'(1 - x) below 1/2, the recurrence psi'(x) = psi'(x + 10) + sum_k
 * 1/(x + k)^2, then the asymptotic series 1/z + 1/(2z^2) + sum B_2k /
 * z^(2k+1) at z = x + 10 (relative error < 1e-13). JAX uses polygamma(1, x),
 * a primitive jx does not have. */
static jx_t trigamma(jx_t x) {
  jx_dtype dt = x->aval.dtype;
#define K(v) jx_lax_const(dt, v)
  jx_t refl = jx_lax_binary(JX_P_lt, x, K(0.5));
  jx_t u = jx_lax_select(refl, SUB(K(1), x), x), acc = NULL;
  for (int k = 0; k < 10; k++) {
    jx_t xk = ADD(u, K(k));
    acc = jx_lax_add_any(acc, DIV(K(1), MUL(xk, xk)));
  }
  jx_t z = ADD(u, K(10)), iz = DIV(K(1), z), iz2 = MUL(iz, iz);
  jx_t s = SUB(K(1.0 / 30), MUL(iz2, K(5.0 / 66)));
  s = SUB(K(1.0 / 42), MUL(iz2, s));
  s = SUB(K(1.0 / 30), MUL(iz2, s));
  s = ADD(K(1.0 / 6), MUL(iz2, jx_lax_unary(JX_P_neg, s)));
  jx_t series = MUL(iz, ADD(K(1), MUL(iz, ADD(K(0.5), MUL(iz, s)))));
  jx_t pos = ADD(acc, series);
  jx_t sn = jx_lax_unary(JX_P_sin, MUL(K(3.14159265358979323846), x));
  jx_t neg = SUB(DIV(K(9.8696044010893586188), MUL(sn, sn)), pos);
#undef K
  return jx_lax_select(refl, neg, pos);
}

/* t broadcast to y's shape (NULL stays NULL) */
static jx_t bcast(jx_t t, jx_t y) { return t ? jx_lax_broadcast_to_aval(t, &y->aval) : NULL; }

static jx_t ew_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                   jx_t *tout) {
  jx_bind(p, nin, x, pa, 1, out);
  jx_t y = out[0], r = NULL;
  jx_dtype dt = x[0]->aval.dtype;
  if (!jx_ok(y) || !jx_dtype_is_float(dt)) { /* shifts, xor, integer rem: piecewise constant */
    tout[0] = NULL;
    return NULL;
  }
  switch (p) {
    case JX_P_rem: /* d/da = 1, d/db = -sign(a/b) * floor(|a/b|) = -trunc(a/b) */
      r = t[0];
      if (t[1]) {
        jx_t q = jx_lax_binary(JX_P_div, x[0], x[1]);
        jx_t tr = MUL(jx_lax_unary(JX_P_sign, q), jx_lax_unary(JX_P_floor, jx_lax_unary(JX_P_abs, q)));
        r = jx_lax_add_any(bcast(r, y), bcast(MUL(jx_lax_unary(JX_P_neg, t[1]), tr), y));
      }
      break;
    case JX_P_fma:
      if (t[0]) r = MUL(t[0], x[1]);
      if (t[1]) r = jx_lax_add_any(bcast(r, y), bcast(MUL(x[0], t[1]), y));
      if (t[2]) r = jx_lax_add_any(bcast(r, y), bcast(t[2], y));
      break;
    case JX_P_erf: /* 2/sqrt(pi) exp(-x^2) */
      if (t[0]) {
        jx_t e = jx_lax_unary(JX_P_exp, jx_lax_unary(JX_P_neg, MUL(x[0], x[0])));
        r = MUL(t[0], MUL(jx_lax_const(dt, 1.1283791670955126), e));
      }
      break;
    case JX_P_erfc: /* -2/sqrt(pi) exp(-x^2) */
      if (t[0]) {
        jx_t e = jx_lax_unary(JX_P_exp, jx_lax_unary(JX_P_neg, MUL(x[0], x[0])));
        r = MUL(t[0], MUL(jx_lax_const(dt, -1.1283791670955126), e));
      }
      break;
    case JX_P_lgamma: /* digamma(x) */
      if (t[0]) r = MUL(t[0], jx_lax_unary(JX_P_digamma, x[0]));
      break;
    case JX_P_digamma: /* trigamma(x) */
      if (t[0]) r = MUL(t[0], trigamma(x[0]));
      break;
    case JX_P_erf_inv: /* sqrt(pi)/2 exp(y^2) */
      if (t[0]) r = MUL(t[0], MUL(jx_lax_const(dt, 0.88622692545275801), jx_lax_unary(JX_P_exp, MUL(y, y))));
      break;
    default: break;
  }
  tout[0] = bcast(r, y);
  return tout[0] && !jx_ok(tout[0]) ? tout[0] : NULL;
}

/* fma is bilinear in (a, b) and linear in c: a*b + c is jointly linear in
 * (a, c) with b known, or in (b, c) with a known. */
static jx_t fma_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                          const jx_params *pa, jx_t *cts) {
  (void)p, (void)nin, (void)pa;
  if (!in[0] && !in[1]) return jx_error_new("fma: transpose with both factors linear (not linear)");
  if (!ct[0]) return NULL;
  if (!in[0]) cts[0] = jx_lax_unbroadcast(MUL(ct[0], in[1]), &av[0]);
  if (!in[1]) cts[1] = jx_lax_unbroadcast(MUL(in[0], ct[0]), &av[1]);
  if (!in[2]) cts[2] = jx_lax_unbroadcast(ct[0], &av[2]);
  return NULL;
}

/* vmap: operands end up with equal shapes [B, S...] (batch first) or stay
 * 0-d when unbatched scalars. When every batched operand already has the
 * full per-example shape and the same batch dim and the others are 0-d,
 * nothing moves. */
static jx_t ew_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                     int *obd) {
  int R = -1, full = 0, common = -2;
  bool in_place = true;
  for (int i = 0; i < nin; i++) {
    int r = in[i]->aval.ndim - (bd[i] != JX_NONE);
    if (r > R) R = r, full = i;
  }
  int64_t S[JX_MAX_RANK]; /* the per-example shape */
  for (int d = 0, k = 0; d < in[full]->aval.ndim; d++)
    if (d != bd[full]) S[k++] = in[full]->aval.shape[d];
  for (int i = 0; i < nin; i++) {
    int r = in[i]->aval.ndim - (bd[i] != JX_NONE);
    if (bd[i] == JX_NONE)
      in_place &= r == 0;
    else
      in_place &= r == R && (common == -2 || common == bd[i]), common = bd[i];
  }
  if (in_place) {
    out[0] = jx_bind1(p, nin, in, pa);
    obd[0] = common;
    return NULL;
  }
  if (R + 1 > JX_MAX_RANK) return jx_error_new("%s: batched rank exceeds %d", jx_prim_names[p], JX_MAX_RANK);
  int64_t B = jx_batch_size(in, bd, nin), shape[JX_MAX_RANK];
  shape[0] = B;
  memcpy(shape + 1, S, sizeof(int64_t) * (size_t)R);
  jx_t x[3];
  for (int i = 0; i < nin; i++) {
    int r = in[i]->aval.ndim - (bd[i] != JX_NONE);
    if (bd[i] == JX_NONE) {
      x[i] = r == 0 ? in[i] : jx_batch_to_front(in[i], JX_NONE, B);
    } else {
      x[i] = jx_moveaxis(in[i], bd[i], 0);
      if (r == 0 && R > 0) x[i] = jx_lax_broadcast_in_dim(x[i], R + 1, shape, (int[]){0});
    }
  }
  out[0] = jx_bind1(p, nin, x, pa);
  obd[0] = 0;
  return NULL;
}

/* --------------------------------------------------------- threefry */
static jx_t fry_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  (void)pa;
  for (int i = 0; i < nin; i++)
    if (in[i].dtype != JX_U32) return ERR("operands must be u32 (keys and counters)");
  jx_aval s;
  jx_t e = jx_broadcast_shapes(jx_prim_names[p], in, nin, &s);
  if (e) return e;
  if (s.ndim + 1 > JX_MAX_RANK) return ERR("result rank exceeds %d", JX_MAX_RANK);
  out[0] = (jx_aval){.dtype = JX_U32, .ndim = (int8_t)(s.ndim + 1)};
  out[0].shape[0] = 2;
  memcpy(out[0].shape + 1, s.shape, sizeof(int64_t) * (size_t)s.ndim);
  return NULL;
}

static jx_t fry_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin, (void)pa;
  const jx_aval *o = &out[0]->aval;
  jx_aval s = {.dtype = JX_U32, .ndim = (int8_t)(o->ndim - 1)};
  memcpy(s.shape, o->shape + 1, sizeof(int64_t) * (size_t)s.ndim);
  int64_t n = jx_aval_size(&s);
  const uint32_t *ops[4];
  bool scalar[4];
  uint32_t *tmp[4] = {NULL, NULL, NULL, NULL};
  jx_t err = NULL;
  for (int i = 0; i < 4; i++) {
    int64_t m = jx_aval_size(&in[i]->aval);
    ops[i] = jx_data(in[i]);
    scalar[i] = m == 1;
    if (m == 1 || m == n) continue; /* a scalar, or already laid out as the result */
    tmp[i] = jx_malloc(sizeof(uint32_t) * (size_t)n);
    if (!tmp[i]) {
      err = jx_error_new("threefry2x32: out of memory");
      break;
    }
    int64_t st[JX_MAX_RANK];
    jx_broadcast_strides(&in[i]->aval, &s, st);
    jx_cpu_strided_copy(sizeof(uint32_t), s.ndim, s.shape, ops[i], 0, st, tmp[i]);
    ops[i] = tmp[i];
  }
  if (!err) {
    uint32_t *y = jx_data(out[0]);
    jx_cpu_threefry2x32(n, ops[0], scalar[0], ops[1], scalar[1], ops[2], scalar[2], ops[3], scalar[3], y,
                        y + n);
  }
  for (int i = 0; i < 4; i++) jx_free(tmp[i]);
  return err;
}

static jx_t nodiff_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                       jx_t *tout) {
  (void)t;
  jx_bind(p, nin, x, pa, 1, out);
  tout[0] = NULL;
  return NULL;
}

/* vmap: numpy broadcasting aligns from the right, so batched operands get
 * their batch dim in front and unit dims up to the full per-example rank;
 * unbatched ones broadcast against that as they are. The result's batch
 * dim is then 1 (after the word axis). */
static jx_t fry_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                      int *obd) {
  jx_t x[4];
  int common = jx_batch_align_right(in, bd, nin, x);
  const jx_t *args = common >= 0 ? in : x;
  for (int i = 0; i < nin; i++) /* the result has a word axis more */
    if (args[i]->aval.ndim + 1 > JX_MAX_RANK)
      return jx_error_new("threefry2x32: batched rank exceeds %d", JX_MAX_RANK);
  out[0] = jx_bind1(p, nin, args, pa);
  obd[0] = common >= 0 ? common + 1 : 1;
  return NULL;
}

/* ----------------------------------------------------------- argsort */
static jx_t argsort_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  if (pa->arg.axis < 0 || pa->arg.axis >= in[0].ndim)
    return ERR("axis %d out of range for rank %d", pa->arg.axis, in[0].ndim);
  if (pa->arg.dtype != JX_I32 && pa->arg.dtype != JX_I64) return ERR("index dtype must be i32 or i64");
  if (pa->arg.dtype == JX_I32 && in[0].shape[pa->arg.axis] > INT32_MAX)
    return ERR("axis too long for i32 indices");
  out[0] = in[0];
  out[0].dtype = pa->arg.dtype;
  out[0].weak = false;
  return NULL;
}

static jx_t argsort_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin;
  const jx_aval *a = &in[0]->aval;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < pa->arg.axis; d++) outer *= a->shape[d];
  for (int d = pa->arg.axis + 1; d < a->ndim; d++) inner *= a->shape[d];
  if (jx_cpu_argsort(a->dtype, outer, a->shape[pa->arg.axis], inner, jx_data(in[0]), pa->arg.dtype,
                     jx_data(out[0])))
    return jx_error_new("argsort: out of memory");
  return NULL;
}

static jx_t argsort_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                          int *obd) {
  (void)nin;
  jx_params q = *pa;
  q.arg.axis = jx_bdim_shift(pa->arg.axis, bd[0]);
  out[0] = jx_bind1(p, 1, in, &q);
  obd[0] = bd[0];
  return NULL;
}

/* ------------------------------------------------------------ tables */
#define EW(nm, n, tr)                                                                                        \
  const jx_rules jx_rules_##nm = {.name = #nm,                                                               \
                                  .nin = n,                                                                  \
                                  .nout = 1,                                                                 \
                                  .abstract_eval = ew_abstract,                                              \
                                  .impl = ew_impl,                                                           \
                                  .jvp = ew_jvp,                                                             \
                                  .transpose = tr,                                                           \
                                  .batch = ew_batch,                                                         \
                                  .lower = {.kind = JX_LOWER_EW, .stem = #nm}};
EW(shift_left, 2, NULL)
EW(shift_right_logical, 2, NULL)
EW(xor, 2, NULL)
EW(rem, 2, NULL)
EW(fma, 3, fma_transpose)
EW(erf, 1, NULL)
EW(erf_inv, 1, NULL)
EW(shift_right_arithmetic, 2, NULL)
EW(erfc, 1, NULL)
EW(lgamma, 1, NULL)
EW(digamma, 1, NULL)

const jx_rules jx_rules_threefry2x32 = {.name = "threefry2x32",
                                        .nin = 4,
                                        .nout = 1,
                                        .abstract_eval = fry_abstract,
                                        .impl = fry_impl,
                                        .jvp = nodiff_jvp,
                                        .batch = fry_batch,
                                        .lower = {.kind = JX_LOWER_CALL}};
const jx_rules jx_rules_argsort = {.name = "argsort",
                                   .nin = 1,
                                   .nout = 1,
                                   .abstract_eval = argsort_abstract,
                                   .impl = argsort_impl,
                                   .jvp = nodiff_jvp,
                                   .batch = argsort_batch,
                                   .params_kind = JX_PK_ARG,
                                   .lower = {.kind = JX_LOWER_CALL}}; /* no params in its jaxpr text */
