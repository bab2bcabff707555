/* The rule harness: every primitive, every rule (DESIGN §7).
 *
 * Each primitive has a row (a function that builds a test case for it:
 * inputs, params, which inputs are differentiated and which it is linear
 * in). A primitive without a row fails to link this test. For every case:
 *   - abstract_eval: the staged aval equals the eager result's aval;
 *   - jvp: against central finite differences in f64;
 *   - transpose (linear inputs): the dot-product test <u, J v> = <J^T u, v>
 *     through vjp (so it exercises the jvp rule staging the linear map and
 *     the transpose rule reversing it);
 *   - lower: jit of the primitive equals eager (f64, and f32 inputs), and
 *     ran generated code, not the interpreter (with a C compiler);
 *   - batch: vmap over each input's axes (all mapped at 0; only the first
 *     mapped, at its last axis; the last mapped at axis 1) equals a loop
 *     over the examples stacked back together. */
#include "check.h"
#include "compile/compile.h"
#include "core/core.h"
#include "ir/jaxpr.h"
#include "prims/lax.h"

#include <jx.h>

enum { MAXIN = 6 };

typedef struct {
  jx_prim p;
  int nin;
  jx_t in[MAXIN];
  jx_params pa;
  unsigned diff;   /* inputs to differentiate (f64) */
  unsigned linear; /* inputs the primitive is linear in, jointly */
  bool smooth;     /* derivative continuous at the sample point */
  int out;         /* svd: the output checked (0 s, 1 u, 2 vt) */
} kase;

/* ------------------------------------------------------------ sampling */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void) {
  rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
  return (double)(rng_state >> 11) / 9007199254740992.0;
}
static jx_t randn(jx_dtype dt, int ndim, const int64_t *shape, double lo, double hi) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  double *d = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) d[i] = lo + (hi - lo) * urand();
  jx_t x = jx_astype(jx_array(JX_F64, ndim, shape, d), dt);
  free(d);
  return x;
}
#define R(...)    randn(JX_F64, JX_SHAPE(__VA_ARGS__), -2, 2)
#define RPOS(...) randn(JX_F64, JX_SHAPE(__VA_ARGS__), 0.5, 2)

/* bind the case's primitive; higher-order ones have one output per output
 * of their jaxpr (the body's, for while): the case checks the last */
static jx_t bind_case(kase *k, const jx_t *in) {
  if (jx_prim_rules[k->p]->nout == 0) { /* an effect (debug_print): the case's value is its first input */
    jx_t e = jx_bind(k->p, k->nin, in, &k->pa, 0, NULL);
    return e ? e : in[0];
  }
  if (k->p == JX_P_svd) { /* s, or (s, u, vt) by its params: the one the row picks */
    jx_t out[3];
    jx_bind(k->p, k->nin, in, &k->pa, k->pa.svd.compute_uv ? 3 : 1, out);
    return out[k->out];
  }
  jx_jaxpr *js[2]; /* the last: while's body, cond's false branch */
  int nj = jx_prim_rules[k->p]->nout < 0 ? jx_params_jaxprs(&k->pa, js) : 0;
  if (jx_prim_rules[k->p]->nout < 0 && nj == 0) { /* one output per operand (sort) */
    jx_t out[MAXIN];
    jx_bind(k->p, k->nin, in, &k->pa, k->nin, out);
    return out[k->nin - 1];
  }
  if (nj > 0) {
    const jx_jaxpr *j = js[nj - 1];
    jx_t out[8];
    jx_bind(k->p, k->nin, in, &k->pa, j->nout, out);
    return out[j->nout - 1];
  }
  return jx_bind1(k->p, k->nin, in, &k->pa);
}
static jx_t prim_body(const jx_t *args, void *u) {
  kase *k = u;
  jx_t in[MAXIN];
  int a = 0;
  for (int i = 0; i < k->nin; i++) in[i] = (k->diff >> i & 1) ? args[a++] : k->in[i];
  return bind_case(k, in);
}
static jx_t prim_lin_body(const jx_t *args, void *u) {
  kase *k = u;
  jx_t in[MAXIN];
  int a = 0;
  for (int i = 0; i < k->nin; i++) in[i] = (k->linear >> i & 1) ? args[a++] : k->in[i];
  return bind_case(k, in);
}

/* A row fills case `variant` and returns false when there are no more. */
typedef bool (*row_fn)(kase *k, int variant);

static void set(kase *k, jx_prim p, int nin, unsigned diff, unsigned linear, bool smooth) {
  k->p = p, k->nin = nin, k->diff = diff, k->linear = linear, k->smooth = smooth;
  jx_params_init(&k->pa, jx_prim_rules[p]->params_kind);
}

/* --------------------------------------------------------------- rows */
#define UNARY_ROW(nm, gen, smooth_)                                                                          \
  static bool row_##nm(kase *k, int v) {                                                                     \
    if (v > 1) return false;                                                                                 \
    set(k, JX_P_##nm, 1, 1, 0, smooth_);                                                                     \
    k->in[0] = v == 0 ? gen(3, 4) : gen();                                                                   \
    return true;                                                                                             \
  }
static bool row_neg(kase *k, int v) {
  if (v > 1) return false;
  set(k, JX_P_neg, 1, 1, 1, true);
  k->in[0] = v ? R() : R(2, 3);
  return true;
}
UNARY_ROW(abs, R, true)
UNARY_ROW(sign, R, false)
UNARY_ROW(floor, R, false)
UNARY_ROW(exp, R, true)
UNARY_ROW(log, RPOS, true)
UNARY_ROW(log1p, RPOS, true)
UNARY_ROW(expm1, R, true)
UNARY_ROW(sqrt, RPOS, true)
UNARY_ROW(rsqrt, RPOS, true)
UNARY_ROW(tanh, R, true)
UNARY_ROW(logistic, R, true)
UNARY_ROW(sin, R, true)
UNARY_ROW(cos, R, true)
static bool row_not(kase *k, int v) {
  if (v) return false;
  set(k, JX_P_not, 1, 0, 0, false);
  k->in[0] = jx_gt(R(3, 2), jx_scalar(0));
  return true;
}

/* binary rows: v0 same shapes, v1 row broadcast, v2 column x row, v3 0-d
 * with matrix; linear variants for mul (in lhs) and (in rhs) */
static void binary_inputs(kase *k, int v, bool pos) {
  jx_t (*g)(jx_dtype, int, const int64_t *, double, double) = randn;
  double lo = pos ? 0.5 : -2, hi = 2;
  switch (v % 4) {
    case 0: k->in[0] = g(JX_F64, JX_SHAPE(3, 4), lo, hi), k->in[1] = g(JX_F64, JX_SHAPE(3, 4), lo, hi); break;
    case 1: k->in[0] = g(JX_F64, JX_SHAPE(2, 3, 4), lo, hi), k->in[1] = g(JX_F64, JX_SHAPE(4), lo, hi); break;
    case 2: k->in[0] = g(JX_F64, JX_SHAPE(3, 1), lo, hi), k->in[1] = g(JX_F64, JX_SHAPE(1, 4), lo, hi); break;
    default:
      k->in[0] = g(JX_F64, JX_SCALAR_SHAPE, lo, hi), k->in[1] = g(JX_F64, JX_SHAPE(2, 3), lo, hi);
      break;
  }
}
/* linear_: inputs the op is linear in jointly (add: both at once);
 * bilinear ops (mul) are linear in either one with the other held fixed. */
#define BINARY_ROW(nm, linear_, bilinear, pos, smooth_)                                                      \
  static bool row_##nm(kase *k, int v) {                                                                     \
    if (v > 7) return false;                                                                                 \
    set(k, JX_P_##nm, 2, 3, 0, smooth_);                                                                     \
    binary_inputs(k, v, pos);                                                                                \
    if (v >= 4) k->linear = bilinear ? (v % 2 ? 2u : 1u) : (linear_);                                        \
    return true;                                                                                             \
  }
BINARY_ROW(add, 3, false, false, true)
BINARY_ROW(sub, 3, false, false, true)
BINARY_ROW(mul, 0, true, false, true)
BINARY_ROW(div, 1, false, true, true)
BINARY_ROW(pow, 0, false, true, true)
BINARY_ROW(max, 0, false, false, true)
BINARY_ROW(min, 0, false, false, true)
#define LOGIC_ROW(nm)                                                                                        \
  static bool row_##nm(kase *k, int v) {                                                                     \
    if (v) return false;                                                                                     \
    set(k, JX_P_##nm, 2, 0, 0, false);                                                                       \
    k->in[0] = jx_gt(R(3, 4), jx_scalar(0)), k->in[1] = jx_gt(R(4), jx_scalar(0));                           \
    return true;                                                                                             \
  }
LOGIC_ROW(and)
LOGIC_ROW(or)
#define COMPARE_ROW(nm)                                                                                      \
  static bool row_##nm(kase *k, int v) {                                                                     \
    if (v > 1) return false;                                                                                 \
    set(k, JX_P_##nm, 2, 3, 0, false);                                                                       \
    binary_inputs(k, v, false);                                                                              \
    return true;                                                                                             \
  }
COMPARE_ROW(eq)
COMPARE_ROW(ne)
COMPARE_ROW(lt)
COMPARE_ROW(le)
COMPARE_ROW(gt)
COMPARE_ROW(ge)

static bool row_select(kase *k, int v) {
  if (v > 2) return false;
  set(k, JX_P_select, 3, 6, 6, true);
  k->in[0] = jx_gt(v == 1 ? R(4) : R(3, 4), jx_scalar(0));
  k->in[1] = R(3, 4);
  k->in[2] = v == 2 ? R() : R(3, 4);
  return true;
}
static bool row_convert(kase *k, int v) {
  if (v > 1) return false;
  set(k, JX_P_convert, 1, 1, v == 0 ? 1 : 0, true);
  k->pa.convert.dtype = v == 0 ? JX_F64 : JX_I32; /* f64->f64 (linear), f64->i32 (zero tangent) */
  k->in[0] = R(3, 4);
  return true;
}
static bool row_stop_gradient(kase *k, int v) {
  if (v) return false;
  set(k, JX_P_stop_gradient, 1, 1, 0, false);
  k->in[0] = R(3, 4);
  return true;
}

#define REDUCE_ROW(nm, linear_)                                                                              \
  static bool row_##nm(kase *k, int v) {                                                                     \
    static const int ax[][4] = {{1, 0}, {1, 1}, {2, 0, 2}, {0}, {3, 0, 1, 2}};                               \
    if (v > 4) return false;                                                                                 \
    set(k, JX_P_##nm, 1, 1, linear_, true);                                                                  \
    k->in[0] = R(3, 4, 5);                                                                                   \
    k->pa.reduce.naxes = (int8_t)ax[v][0];                                                                   \
    for (int i = 0; i < ax[v][0]; i++) k->pa.reduce.axes[i] = ax[v][i + 1];                                  \
    return true;                                                                                             \
  }
REDUCE_ROW(reduce_sum, 1)
REDUCE_ROW(reduce_max, 0)
REDUCE_ROW(reduce_min, 0)
#define ARG_ROW(nm)                                                                                          \
  static bool row_##nm(kase *k, int v) {                                                                     \
    if (v > 1) return false;                                                                                 \
    set(k, JX_P_##nm, 1, 1, 0, false);                                                                       \
    k->in[0] = R(3, 4);                                                                                      \
    k->pa.arg.axis = v;                                                                                      \
    k->pa.arg.dtype = v ? JX_I64 : JX_I32;                                                                   \
    return true;                                                                                             \
  }
ARG_ROW(argmax)
ARG_ROW(argmin)

static void dn(jx_params *p, int nc, const int *lc, const int *rc, int nb, const int *lb, const int *rb) {
  p->dot.nc = (int8_t)nc, p->dot.nb = (int8_t)nb;
  for (int i = 0; i < nc; i++) p->dot.lc[i] = (int8_t)lc[i], p->dot.rc[i] = (int8_t)rc[i];
  for (int i = 0; i < nb; i++) p->dot.lb[i] = (int8_t)lb[i], p->dot.rb[i] = (int8_t)rb[i];
}
static bool row_dot_general(kase *k, int v) {
  if (v > 9) return false;
  set(k, JX_P_dot_general, 2, 3, 0, true);
  switch (v / 2) {
    case 0: /* matmul */
      k->in[0] = R(3, 4), k->in[1] = R(4, 5);
      dn(&k->pa, 1, (int[]){1}, (int[]){0}, 0, NULL, NULL);
      break;
    case 1: /* A^T B */
      k->in[0] = R(4, 3), k->in[1] = R(4, 5);
      dn(&k->pa, 1, (int[]){0}, (int[]){0}, 0, NULL, NULL);
      break;
    case 2: /* A B^T */
      k->in[0] = R(3, 4), k->in[1] = R(5, 4);
      dn(&k->pa, 1, (int[]){1}, (int[]){1}, 0, NULL, NULL);
      break;
    case 3: /* batched, batch dims not leading on the rhs */
      k->in[0] = R(2, 3, 4), k->in[1] = R(4, 2, 5);
      dn(&k->pa, 1, (int[]){2}, (int[]){0}, 1, (int[]){0}, (int[]){1});
      break;
    default: /* two contracting dims, vector result */
      k->in[0] = R(3, 4, 2), k->in[1] = R(2, 3);
      dn(&k->pa, 2, (int[]){0, 2}, (int[]){1, 0}, 0, NULL, NULL);
      break;
  }
  k->linear = v % 2 ? 2 : 1;
  return true;
}

static bool row_reshape(kase *k, int v) {
  if (v > 1) return false;
  set(k, JX_P_reshape, 1, 1, 1, true);
  k->in[0] = v ? R() : R(3, 4);
  k->pa.reshape.ndim = v ? 2 : 3;
  int64_t s0[] = {2, 3, 2}, s1[] = {1, 1};
  memcpy(k->pa.reshape.shape, v ? s1 : s0, sizeof(int64_t) * (size_t)k->pa.reshape.ndim);
  return true;
}
static bool row_broadcast_in_dim(kase *k, int v) {
  if (v > 2) return false;
  set(k, JX_P_broadcast_in_dim, 1, 1, 1, true);
  if (v == 0) { /* [3] -> [2,3] */
    k->in[0] = R(3), k->pa.bcast.ndim = 2, k->pa.bcast.shape[0] = 2, k->pa.bcast.shape[1] = 3,
    k->pa.bcast.naxes = 1, k->pa.bcast.axes[0] = 1;
  } else if (v == 1) { /* [3,1] -> [3,4] (size-1 dim broadcast) */
    k->in[0] = R(3, 1), k->pa.bcast.ndim = 2, k->pa.bcast.shape[0] = 3, k->pa.bcast.shape[1] = 4,
    k->pa.bcast.naxes = 2;
    k->pa.bcast.axes[0] = 0, k->pa.bcast.axes[1] = 1;
  } else { /* 0-d -> [2,2] */
    k->in[0] = R(), k->pa.bcast.ndim = 2, k->pa.bcast.shape[0] = 2, k->pa.bcast.shape[1] = 2;
  }
  return true;
}
static bool row_transpose(kase *k, int v) {
  if (v > 1) return false;
  set(k, JX_P_transpose, 1, 1, 1, true);
  k->in[0] = v ? R(2, 3, 4) : R(3, 4);
  k->pa.perm.naxes = v ? 3 : 2;
  int p0[] = {1, 0}, p1[] = {2, 0, 1};
  for (int i = 0; i < k->pa.perm.naxes; i++) k->pa.perm.axes[i] = v ? p1[i] : p0[i];
  return true;
}
static bool row_slice(kase *k, int v) {
  if (v > 1) return false;
  set(k, JX_P_slice, 1, 1, 1, true);
  k->in[0] = R(5, 7);
  int64_t st[2] = {1, v ? 0 : 2}, li[2] = {5, v ? 7 : 6}, sr[2] = {v ? 2 : 1, v ? 3 : 1};
  for (int i = 0; i < 2; i++)
    k->pa.slice.start[i] = st[i], k->pa.slice.limit[i] = li[i], k->pa.slice.stride[i] = sr[i];
  return true;
}
static bool row_rev(kase *k, int v) {
  if (v) return false;
  set(k, JX_P_rev, 1, 1, 1, true);
  k->in[0] = R(3, 4);
  k->pa.rev.naxes = 1, k->pa.rev.axes[0] = 1;
  return true;
}
static bool row_pad(kase *k, int v) {
  if (v > 1) return false;
  set(k, JX_P_pad, 2, 3, 3, true);
  k->in[0] = R(3, 4), k->in[1] = R();
  int64_t lo[2] = {1, 0}, hi[2] = {0, 2}, it[2] = {v, 1};
  for (int i = 0; i < 2; i++) k->pa.pad.lo[i] = lo[i], k->pa.pad.hi[i] = hi[i], k->pa.pad.interior[i] = it[i];
  return true;
}
static bool row_concatenate(kase *k, int v) {
  if (v > 1) return false;
  set(k, JX_P_concatenate, 3, 7, 7, true);
  k->in[0] = R(2, 3), k->in[1] = v ? R(2, 1) : R(4, 3), k->in[2] = v ? R(2, 2) : R(1, 3);
  k->pa.concat.axis = v;
  return true;
}
/* gather and scatter_add: tests/rules/index.inc */
static bool row_iota(kase *k, int v) {
  if (v) return false;
  set(k, JX_P_iota, 0, 0, 0, false);
  k->pa.iota.dtype = JX_F64, k->pa.iota.ndim = 2, k->pa.iota.shape[0] = 3, k->pa.iota.shape[1] = 4,
  k->pa.iota.axis = 1;
  return true;
}

/* jit_call: a jitted inner function, nonlinear (v0) and linear (v1) */
static jx_t inner_nonlinear(const jx_t *a, void *u) {
  (void)u;
  return jx_add(jx_mul(a[0], jx_sin(a[1])), jx_sum_axes(a[0], 1, (int[]){0}, true));
}
static jx_t inner_linear(const jx_t *a, void *u) {
  (void)u;
  return jx_sub(jx_mul(a[0], jx_scalar(3.0)), jx_transpose(a[1], NULL));
}
jx_jaxpr *jx_trace_to_jaxpr(jx_fn *f, const jx_t *args, jx_t *out_like, jx_t *err);
static bool row_jit_call(kase *k, int v) {
  if (v > 1) return false;
  set(k, JX_P_jit_call, 2, 3, v ? 3 : 0, true);
  k->in[0] = R(3, 4);
  k->in[1] = v ? R(4, 3) : R(3, 4);
  jx_fn *f = jx_fn_new(v ? inner_linear : inner_nonlinear, 2, NULL);
  jx_t err;
  k->pa.call.jaxpr = jx_trace_to_jaxpr(f, k->in, NULL, &err);
  jx_fn_free(f);
  return k->pa.call.jaxpr != NULL;
}

/* control flow: jaxprs traced from small functions */
static jx_jaxpr *trace2(jx_body body, int nargs, const jx_t *args) {
  jx_fn *f = jx_fn_new(body, nargs, NULL);
  jx_t err;
  jx_jaxpr *j = jx_trace_to_jaxpr(f, args, NULL, &err);
  jx_fn_free(f);
  return j;
}
static jx_t br_t(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(a[0], jx_sin(a[1]));
}
static jx_t br_f(const jx_t *a, void *u) {
  (void)u;
  return jx_add(jx_exp(a[0]), a[1]);
}
static jx_t br_tl(const jx_t *a, void *u) {
  (void)u;
  return jx_sub(jx_mul(a[0], jx_scalar(2.0)), a[1]);
}
static jx_t br_fl(const jx_t *a, void *u) {
  (void)u;
  return jx_add(a[0], jx_mul(a[1], jx_scalar(3.0)));
}
static bool row_cond(kase *k, int v) {
  if (v > 3) return false;
  bool linear = v >= 2;
  set(k, JX_P_cond, 3, 6, linear ? 6 : 0, true);
  k->in[0] = jx_scalar_of(JX_BOOL, v % 2);
  k->in[1] = R(3, 4), k->in[2] = R(3, 4);
  k->pa.cond.on_true = trace2(linear ? br_tl : br_t, 2, k->in + 1);
  k->pa.cond.on_false = trace2(linear ? br_fl : br_f, 2, k->in + 1);
  return k->pa.cond.on_true && k->pa.cond.on_false;
}
static jx_t wh_c(const jx_t *a, void *u) {
  (void)u;
  return jx_lt(a[0], jx_scalar_int(3));
}
static jx_t wh_b(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_add(a[0], jx_scalar_int(1)), jx_add(jx_mul(a[1], jx_scalar(0.75)), jx_sin(a[1])));
}
static jx_t first_of(jx_t t) { return jx_at(t, 0); }
static bool row_while(kase *k, int v) {
  if (v) return false;
  set(k, JX_P_while, 2, 2, 0, true);
  k->in[0] = jx_scalar_of(JX_I32, 0), k->in[1] = R(3, 4);
  k->pa.while_.cond = trace2(wh_c, 2, k->in);
  /* the body returns a tuple: trace it and keep the flat outputs */
  jx_fn *f = jx_fn_new(wh_b, 2, NULL);
  jx_t err;
  k->pa.while_.body = jx_trace_to_jaxpr(f, k->in, NULL, &err);
  jx_fn_free(f);
  (void)first_of;
  return k->pa.while_.cond && k->pa.while_.body;
}
static jx_t sc_b(const jx_t *a, void *u) { /* (c, h, x) -> (h', y) */
  (void)u;
  jx_t h = jx_tanh(jx_add(jx_mul(a[0], a[1]), a[2]));
  return JX_TUPLE(h, jx_mul(h, a[2]));
}
static jx_t sc_bl(const jx_t *a, void *u) { /* linear in (h, x) for known c */
  (void)u;
  return JX_TUPLE(jx_add(jx_mul(a[0], a[1]), a[2]), jx_mul(a[2], jx_scalar(2.0)));
}
/* a dyn scan's body: (n, c, h, x), n unused */
static jx_t sc_bd(const jx_t *a, void *u) { return u ? sc_bl(a + 1, NULL) : sc_b(a + 1, NULL); }
/* dyn scans (n of 5 steps: 3 forward, 4 reverse, 2 linear, 0, and 9
 * clamped to 5) */
static bool row_scan_dyn(kase *k, int v) {
  static const int n[] = {3, 4, 2, 0, 9};
  bool linear = v == 2;
  set(k, JX_P_scan, 4, linear ? 12 : 14, linear ? 12 : 0, true);
  k->in[0] = jx_scalar_of(v == 3 ? JX_I64 : JX_I32, n[v]);
  k->in[1] = R(4), k->in[2] = R(4), k->in[3] = R(5, 4);
  jx_t slice[4] = {k->in[0], k->in[1], k->in[2], R(4)};
  jx_fn *f = jx_fn_new(sc_bd, 4, linear ? k : NULL);
  jx_t err;
  k->pa.scan.body = jx_trace_to_jaxpr(f, slice, NULL, &err);
  jx_fn_free(f);
  k->pa.scan.nconst = 2, k->pa.scan.ncarry = 1, k->pa.scan.length = 5, k->pa.scan.reverse = v == 1;
  k->pa.scan.dyn = true;
  return k->pa.scan.body != NULL;
}
static bool row_scan(kase *k, int v) {
  if (v > 7) return false;
  if (v > 2) return row_scan_dyn(k, v - 3);
  bool linear = v == 2;
  set(k, JX_P_scan, 3, linear ? 6 : 7, linear ? 6 : 0, true);
  k->in[0] = R(4), k->in[1] = R(4), k->in[2] = R(5, 4);
  jx_t slice[3] = {k->in[0], k->in[1], R(4)};
  jx_fn *f = jx_fn_new(linear ? sc_bl : sc_b, 3, NULL);
  jx_t err;
  k->pa.scan.body = jx_trace_to_jaxpr(f, slice, NULL, &err);
  jx_fn_free(f);
  k->pa.scan.nconst = 1, k->pa.scan.ncarry = 1, k->pa.scan.length = 5, k->pa.scan.reverse = v == 1;
  return k->pa.scan.body != NULL;
}

/* bits, special, random, sort (src/prims/bits.c) */
static jx_t ru32(int ndim, const int64_t *shape, double hi) { /* u32 in [0, hi) */
  return jx_astype(jx_floor(randn(JX_F64, ndim, shape, 0, hi)), JX_U32);
}
static jx_t ri32(int ndim, const int64_t *shape, double lo, double hi) {
  return jx_astype(jx_floor(randn(JX_F64, ndim, shape, lo, hi)), JX_I32);
}
#define SHIFT_ROW(nm)                                                                                        \
  static bool row_##nm(kase *k, int v) {                                                                     \
    if (v > 2) return false;                                                                                 \
    set(k, JX_P_##nm, 2, 0, 0, false);                                                                       \
    if (v == 0)                                                                                              \
      k->in[0] = ru32(JX_SHAPE(3, 4), 4294967296.0), k->in[1] = ru32(JX_SHAPE(3, 4), 40);                    \
    else if (v == 1)                                                                                         \
      k->in[0] = ri32(JX_SHAPE(3, 4), -1e9, 1e9), k->in[1] = jx_scalar_of(JX_I32, 7);                        \
    else                                                                                                     \
      k->in[0] = jx_scalar_of(JX_I32, -12345), k->in[1] = ri32(JX_SHAPE(5), -3, 35);                         \
    return true;                                                                                             \
  }
SHIFT_ROW(shift_left)
SHIFT_ROW(shift_right_logical)
static bool row_xor(kase *k, int v) {
  if (v > 1) return false;
  set(k, JX_P_xor, 2, 0, 0, false);
  if (v == 0)
    k->in[0] = ru32(JX_SHAPE(3, 4), 4294967296.0), k->in[1] = ru32(JX_SHAPE(3, 4), 4294967296.0);
  else
    k->in[0] = jx_gt(R(3, 4), jx_scalar(0)), k->in[1] = jx_gt(R(), jx_scalar(0));
  return true;
}
static bool row_rem(kase *k, int v) {
  if (v > 2) return false;
  if (v < 2) { /* a/b stays in (3, 4): away from the jumps */
    set(k, JX_P_rem, 2, 3, 0, true);
    k->in[0] = randn(JX_F64, JX_SHAPE(3, 4), 3.2, 3.8);
    k->in[1] = v ? randn(JX_F64, JX_SCALAR_SHAPE, 1.0, 1.05) : randn(JX_F64, JX_SHAPE(3, 4), 1.0, 1.05);
  } else { /* ints: negative dividends, zero and -1 divisors */
    set(k, JX_P_rem, 2, 0, 0, false);
    k->in[0] = jx_array(JX_I32, JX_SHAPE(6), (int32_t[]){7, -7, 9, INT32_MIN, 5, -8});
    k->in[1] = jx_array(JX_I32, JX_SHAPE(6), (int32_t[]){3, 3, -4, -1, 0, 5});
  }
  return true;
}
static bool row_fma(kase *k, int v) {
  if (v > 2) return false;
  set(k, JX_P_fma, 3, 7, v == 1 ? 6 : 5, true); /* linear in (a, c) or (b, c) */
  k->in[0] = v == 2 ? R() : R(3, 4);
  k->in[1] = v == 1 ? R() : R(3, 4);
  k->in[2] = v == 2 ? R() : R(3, 4);
  return true;
}
static bool row_erf(kase *k, int v) {
  if (v > 1) return false;
  set(k, JX_P_erf, 1, 1, 0, true);
  k->in[0] = v ? R() : R(3, 4);
  return true;
}
static bool row_erf_inv(kase *k, int v) {
  if (v > 1) return false;
  set(k, JX_P_erf_inv, 1, 1, 0, true);
  k->in[0] = randn(JX_F64, v ? 0 : 2, (const int64_t[]){3, 4}, -0.6, 0.6); /* vmap's examples scale by 1.5 */
  return true;
}
static bool row_threefry2x32(kase *k, int v) {
  if (v > 2) return false;
  set(k, JX_P_threefry2x32, 4, 0, 0, false);
  if (v == 0) { /* one key, counters in the last word: how random.c calls it */
    k->in[0] = jx_scalar_of(JX_U32, 0x13198a2e), k->in[1] = jx_scalar_of(JX_U32, 0x03707344);
    k->in[2] = jx_scalar_of(JX_U32, 0), k->in[3] = ru32(JX_SHAPE(5), 4294967296.0);
  } else if (v == 1) {
    for (int i = 0; i < 4; i++) k->in[i] = ru32(JX_SHAPE(2, 3), 4294967296.0);
  } else { /* numpy broadcasting */
    k->in[0] = ru32(JX_SHAPE(3, 1), 4294967296.0), k->in[1] = jx_scalar_of(JX_U32, 7);
    k->in[2] = ru32(JX_SHAPE(4), 4294967296.0), k->in[3] = ru32(JX_SHAPE(3, 4), 4294967296.0);
  }
  return true;
}
static bool row_argsort(kase *k, int v) {
  if (v > 2) return false;
  set(k, JX_P_argsort, 1, v == 0 ? 1 : 0, 0, false);
  if (v == 0)
    k->in[0] = R(3, 5), k->pa.arg.axis = 1, k->pa.arg.dtype = JX_I32;
  else if (v == 1)
    k->in[0] = ru32(JX_SHAPE(40, 3), 5), k->pa.arg.axis = 0, k->pa.arg.dtype = JX_I64; /* ties: stable */
  else
    k->in[0] = ri32(JX_SHAPE(2, 70), -50, 50), k->pa.arg.axis = 1, k->pa.arg.dtype = JX_I32; /* radix path */
  return true;
}

/* the round-2 primitives' rows, one file per area (tests/rules/) */
#include "rules/pmap.inc"
/* ---- */
#include "rules/conv.inc"
/* ---- */
#include "rules/index.inc"
/* ---- */
#include "rules/sort.inc"
/* ---- */
#include "rules/math.inc"
/* ---- */
#include "rules/custom.inc"
/* ---- */
#include "rules/print.inc"
/* ---- */
#include "rules/dtype.inc"
/* ---- */

/* One row per primitive, or this table does not compile. */
static const row_fn rows[JX_PRIM_COUNT] = {
#define JX_PRIM(name, family) [JX_P_##name] = row_##name,
#include "core/primitives.def"
#undef JX_PRIM
};

/* -------------------------------------------------------------- checks */
static double dot_all(jx_t a, jx_t b) {
  return jx_item(jx_sum(jx_mul(jx_astype(a, JX_F64), jx_astype(b, JX_F64))));
}
static double max_abs(jx_t a) { return jx_item(jx_max(jx_abs(jx_astype(a, JX_F64)))); }

static void check_case(kase *k, int variant) {
  const char *nm = jx_prim_names[k->p];
  jx_pool_push();
  /* abstract_eval vs impl */
  jx_t y = bind_case(k, k->in);
  CHECKF(jx_ok(y), "%s#%d: eager failed: %s", nm, variant, jx_error(y));
  if (!jx_ok(y)) {
    jx_pool_pop();
    return;
  }
  jx_fn *f = jx_fn_new(prim_body, __builtin_popcount(k->diff), k);
  {
    jx_t args[MAXIN];
    int a = 0;
    for (int i = 0; i < k->nin; i++)
      if (k->diff >> i & 1) args[a++] = k->in[i];
    char *jp = jx_make_jaxpr(f, args);
    char want[200], got[200];
    jx_aval_str(&y->aval, want, sizeof want);
    /* the (last) output binder's type in the staged jaxpr */
    const char *eq = strstr(jp, ". let\n    ");
    snprintf(got, sizeof got, "%s", eq ? eq + 10 : "");
    char *end = strstr(got, " = ");
    if (end) *end = 0;
    char *last = strrchr(got, ' ');
    if (k->p == JX_P_svd) { /* binder k->out (s u vt): cut after it */
      char *t = got;
      for (int i = 0; i < k->out && t; i++) t = strchr(t + 1, ' ');
      char *sp = t ? strchr(t + 1, ' ') : NULL;
      if (sp) *sp = 0;
      last = t;
    }
    char *colon = strchr(last ? last : got, ':');
    if (jx_prim_rules[k->p]->nout == 0) /* no binder: the equation is staged, not dropped */
      CHECKF(eq && !strncmp(eq + 10, nm, strlen(nm)), "%s#%d: not staged first: %s", nm, variant, jp);
    else
      CHECKF(colon && !strcmp(colon + 1, want), "%s#%d: staged type %s vs eager %s", nm, variant,
             colon ? colon + 1 : "?", want);
    free(jp);
  }
  /* jvp vs central differences */
  if (k->diff) {
    jx_t args[MAXIN], tans[MAXIN], plus[MAXIN], minus[MAXIN];
    int a = 0;
    const double eps = 1e-6;
    for (int i = 0; i < k->nin; i++) {
      if (!(k->diff >> i & 1)) continue;
      args[a] = k->in[i];
      tans[a] = randn(JX_F64, jx_ndim(k->in[i]), jx_shape(k->in[i]), -1, 1);
      plus[a] = jx_add(args[a], jx_mul(tans[a], jx_scalar_of(JX_F64, eps)));
      minus[a] = jx_sub(args[a], jx_mul(tans[a], jx_scalar_of(JX_F64, eps)));
      a++;
    }
    jx_t r = jx_jvp(f, args, tans);
    CHECKF(jx_ok(r), "%s#%d: jvp failed: %s", nm, variant, jx_error(r));
    if (jx_ok(r)) {
      jx_t t = jx_at(r, 1);
      if (k->smooth && jx_dtype_is_float(jx_dtype_of(y))) {
        jx_t fd = jx_div(jx_sub(jx_call(f, plus), jx_call(f, minus)), jx_scalar_of(JX_F64, 2 * eps));
        double err = max_abs(jx_sub(t, fd)), scale = 1 + max_abs(fd);
        CHECKF(err <= 1e-6 * scale, "%s#%d: jvp vs finite differences: max error %g (scale %g)", nm, variant,
               err, scale);
      } else { /* piecewise constant or non-float: zero tangent */
        CHECKF(max_abs(t) == 0, "%s#%d: expected a zero tangent, got max %g", nm, variant, max_abs(t));
      }
    }
  }
  /* transpose: <u, J v> == <J^T u, v> */
  if (k->linear) {
    CHECKF(jx_prim_rules[k->p]->transpose, "%s: marked linear but has no transpose rule", nm);
    jx_fn *g = jx_fn_new(prim_lin_body, __builtin_popcount(k->linear), k);
    jx_t v[MAXIN];
    int a = 0;
    for (int i = 0; i < k->nin; i++)
      if (k->linear >> i & 1) v[a++] = randn(JX_F64, jx_ndim(k->in[i]), jx_shape(k->in[i]), -1, 1);
    jx_fn *back = NULL;
    jx_t Jv = jx_vjp(g, v, &back);
    CHECKF(jx_ok(Jv) && back, "%s#%d: vjp failed: %s", nm, variant, jx_error(Jv));
    if (jx_ok(Jv) && back) {
      jx_t u = randn(JX_F64, jx_ndim(Jv), jx_shape(Jv), -1, 1);
      jx_t JTu = JX_CALL(back, u);
      CHECKF(jx_ok(JTu), "%s#%d: transpose failed: %s", nm, variant, jx_error(JTu));
      if (jx_ok(JTu)) {
        double lhs = dot_all(u, Jv), rhs = 0;
        for (int i = 0; i < a; i++) rhs += dot_all(jx_at(JTu, i), v[i]);
        CHECKF(fabs(lhs - rhs) <= 1e-10 * (1 + fabs(lhs)), "%s#%d: <u,Jv>=%.15g but <J^T u,v>=%.15g", nm,
               variant, lhs, rhs);
      }
    }
    jx_fn_free(back);
    jx_fn_free(g);
  }
  jx_fn_free(f);
  jx_pool_pop();
}

/* ---------------------------------------------------------------- vmap */
static jx_t prim_all_body(const jx_t *args, void *u) { return bind_case(u, args); }

/* example b of input x: a different value of the same type and domain */
static jx_t example(jx_t x, int b) {
  jx_dtype dt = jx_dtype_of(x);
  if (dt == JX_BOOL) return b % 2 ? jx_logical_not(x) : x;
  if (dt != JX_F64 && dt != JX_F32) return jx_add(x, jx_astype(jx_scalar_int(b), dt));
  return jx_mul(x, jx_scalar_of(dt, 1.0 + 0.25 * b));
}

enum { B = 3 };
static void check_batch(kase *k, int variant) {
  const char *nm = jx_prim_names[k->p];
  if (k->nin == 0) return;
  for (int mode = 0; mode < 3; mode++) {
    jx_pool_push();
    int axes[MAXIN];
    jx_t args[MAXIN], ex[MAXIN][B];
    for (int i = 0; i < k->nin; i++) {
      int r = jx_ndim(k->in[i]);
      axes[i] = mode == 0 ? 0 : mode == 1 ? (i == 0 ? r : JX_NONE) : (i == k->nin - 1 ? (r > 0 ? 1 : 0) : 0);
      for (int b = 0; b < B; b++) ex[i][b] = axes[i] == JX_NONE ? k->in[i] : example(k->in[i], b);
      args[i] = axes[i] == JX_NONE ? k->in[i] : jx_stack(B, ex[i], axes[i]);
    }
    jx_t want[B];
    for (int b = 0; b < B; b++) {
      jx_t in[MAXIN];
      for (int i = 0; i < k->nin; i++) in[i] = ex[i][b];
      want[b] = bind_case(k, in);
    }
    jx_t expect = jx_stack(B, want, 0);
    jx_fn *f = jx_fn_new(prim_all_body, k->nin, k);
    jx_fn *vf = jx_vmap(f, axes, 0);
    jx_t got = jx_call(vf, args);
    CHECKF(jx_ok(got) && jx_ok(expect), "%s#%d mode %d: vmap failed: %s", nm, variant, mode,
           jx_ok(got) ? jx_error(expect) : jx_error(got));
    if (jx_ok(got) && jx_ok(expect)) {
      bool same_shape = jx_ndim(got) == jx_ndim(expect) && jx_dtype_of(got) == jx_dtype_of(expect);
      for (int d = 0; same_shape && d < jx_ndim(got); d++)
        same_shape = jx_shape(got)[d] == jx_shape(expect)[d];
      CHECKF(same_shape, "%s#%d mode %d: vmap result shape/dtype differs from the loop's", nm, variant, mode);
      if (same_shape && jx_size(got) > 0) {
        double err = max_abs(jx_sub(jx_astype(got, JX_F64), jx_astype(expect, JX_F64)));
        double scale = 1 + max_abs(expect);
        CHECKF(err <= 1e-12 * scale, "%s#%d mode %d: vmap vs loop: max error %g", nm, variant, mode, err);
      }
    }
    jx_fn_free(vf);
    jx_fn_free(f);
    jx_pool_pop();
  }
}

/* ----------------------------------------------------------------- jit */
static bool have_cc;
static bool have_compiler(void) {
  const char *cc = getenv("JX_CC");
  char cmd[512];
  snprintf(cmd, sizeof cmd, "%s --version >/dev/null 2>&1", cc && *cc ? cc : "cc");
  return system(cmd) == 0;
}

/* jit vs eager, on the case's inputs in f64 and (float inputs) in f32,
 * bf16 and f16 ([DTYPE] #19: where the primitive takes them; their ops
 * compute in f32 and round once, so jit and eager agree to the 16-bit
 * type's rounding at worst: reductions may add in another order), and in
 * i8 and u16 (#19's integers, the float inputs converted: integer
 * arithmetic wraps the same way in any order, so the bits must agree) */
enum { NPREC = 6 };
static const jx_dtype prec_dt[NPREC] = {JX_F64, JX_F32, JX_BF16, JX_F16, JX_I8, JX_U16};
static const double prec_tol[NPREC] = {1e-13, 2e-6, 0x1p-7, 0x1p-10, 0, 0};
static int half_cases, int_cases; /* cases run in bf16/f16, in i8/u16 */

/* a case's float values (mostly in [-2, 2]) spread over a few hundred
 * integers, negative ones wrapping into the unsigned range, so integer
 * sums and products wrap */
static jx_t int_spread(jx_t x) { return jx_astype(jx_mul(x, jx_scalar(97.0)), JX_I64); }

static void check_jit(kase *k, int variant) {
  const char *nm = jx_prim_names[k->p];
  for (int prec = 0; prec < NPREC; prec++) {
    jx_pool_push();
    kase c = *k;
    bool any_float = false;
    for (int i = 0; i < c.nin; i++)
      if (jx_dtype_of(c.in[i]) == JX_F64)
        c.in[i] = prec ? jx_astype(prec >= 4 ? int_spread(c.in[i]) : c.in[i], prec_dt[prec]) : c.in[i],
        any_float = true;
    if (prec && (!any_float || k->p == JX_P_jit_call || (k->p == JX_P_iota))) {
      jx_pool_pop();
      continue;
    }
    if (prec && k->p == JX_P_convert)
      c.pa.convert.dtype = c.pa.convert.dtype == JX_F64 ? prec_dt[prec] : c.pa.convert.dtype;
    jx_t want = bind_case(&c, c.in);
    if (prec >= 2 && !jx_ok(want)) { /* not a primitive of this dtype (abstract eval says so) */
      jx_pool_pop();
      continue;
    }
    half_cases += prec == 2 || prec == 3;
    int_cases += prec >= 4;
    jx_fn *f = jx_fn_new(prim_all_body, c.nin, &c);
    jx_fn *jf = jx_jit(f);
    jx_exec_counts c0 = jx_exec_run_counts();
    jx_t got = jx_call(jf, c.in);
    jx_exec_counts c1 = jx_exec_run_counts();
    CHECKF(jx_ok(got) == jx_ok(want), "%s#%d: jit %s but eager %s", nm, variant, jx_error(got),
           jx_error(want));
    if (have_cc && jx_ok(got))
      CHECKF(c1.interpreted == c0.interpreted && c1.compiled > c0.compiled,
             "%s#%d: jit ran the interpreter (%ld runs), not generated code", nm, variant,
             c1.interpreted - c0.interpreted);
    if (jx_ok(got) && jx_ok(want)) {
      bool same = jx_ndim(got) == jx_ndim(want) && jx_dtype_of(got) == jx_dtype_of(want);
      for (int d = 0; same && d < jx_ndim(got); d++) same = jx_shape(got)[d] == jx_shape(want)[d];
      CHECKF(same, "%s#%d: jit result type differs from eager", nm, variant);
      if (same && jx_size(got) > 0) {
        double err = max_abs(jx_sub(jx_astype(got, JX_F64), jx_astype(want, JX_F64)));
        double tol = prec_tol[prec] * (1 + max_abs(want));
        CHECKF(err <= tol, "%s#%d (%s): jit vs eager: max error %g", nm, variant,
               jx_dtype_name(prec_dt[prec]), err);
      }
    }
    jx_fn_free(jf);
    jx_fn_free(f);
    jx_pool_pop();
  }
}

int main(void) {
  int total = 0;
  have_cc = have_compiler();
  for (int p = 0; p < JX_PRIM_COUNT; p++) {
    int n = 0;
    for (;; n++) {
      kase k;
      memset(&k, 0, sizeof k);
      jx_pool_push();
      if (!rows[p](&k, n)) {
        jx_pool_pop();
        break;
      }
      check_case(&k, n);
      check_batch(&k, n);
      check_jit(&k, n);
      jx_jaxpr *js[2];
      for (int i = jx_params_jaxprs(&k.pa, js); i-- > 0;) jx_jaxpr_release(js[i]);
      jx_pool_pop();
    }
    CHECKF(n > 0, "primitive %s has a row with no cases", jx_prim_names[p]);
    total += n;
  }
  printf("rules harness: %d primitives, %d cases (%d jitted in bf16/f16, %d in i8/u16)\n", (int)JX_PRIM_COUNT,
         total, half_cases, int_cases);
  CHECKF(half_cases > 100, "only %d cases ran in bf16/f16", half_cases);
  CHECKF(int_cases > 100, "only %d cases ran in i8/u16", int_cases);
  return check_report("rules");
}
