/* Reductions of issue #18 (jax.numpy names): prod, var, std, any, all,
 * linalg.norm and logsumexp over chosen axes. axes == NULL means every
 * axis (JAX's axis=None); negative axes count from the end; keepdims keeps
 * the reduced axes as size 1. prod is the reduce_prod primitive; the rest
 * are JAX's compositions. */
#include "ops/ops.h"

#include <math.h>
#include <stdlib.h>

/* the reduced axes of x as a mask, listed in ax[0..*n), and their count of
 * elements */
typedef struct {
  bool mask[JX_MAX_RANK];
  int ax[JX_MAX_RANK], n;
  int64_t count;
} axes_t;

static jx_t resolve(const char *op, jx_t x, int naxes, const int *axes, axes_t *r) {
  jx_t e = jx_op_check_array(op, x);
  if (e) return e;
  const jx_aval *a = &x->aval;
  int all[JX_MAX_RANK];
  if (!axes) {
    naxes = a->ndim;
    for (int i = 0; i < naxes; i++) all[i] = i;
    axes = all;
  }
  e = jx_op_axes(op, a, naxes, axes, r->mask);
  if (e) return e;
  r->n = 0, r->count = 1;
  for (int d = 0; d < a->ndim; d++)
    if (r->mask[d]) r->ax[r->n++] = d, r->count *= a->shape[d];
  return NULL;
}

/* a reduction over r's axes, the reduced axes kept as size 1 */
static jx_t reduce_keep(jx_prim p, jx_t x, const axes_t *r) {
  jx_t y = jx_lax_reduce(p, x, r->n, r->ax);
  if (!jx_ok(y)) return y;
  int64_t shape[JX_MAX_RANK];
  for (int d = 0; d < x->aval.ndim; d++) shape[d] = r->mask[d] ? 1 : x->aval.shape[d];
  return jx_lax_reshape(y, x->aval.ndim, shape);
}

/* y (reduced axes kept as size 1) without them unless keepdims */
static jx_t finish(jx_t y, const axes_t *r, bool keepdims) {
  if (keepdims || !jx_ok(y)) return y;
  int64_t shape[JX_MAX_RANK];
  int k = 0;
  for (int d = 0; d < y->aval.ndim; d++)
    if (!r->mask[d]) shape[k++] = y->aval.shape[d];
  return jx_lax_reshape(y, k, shape);
}

/* --------------------------------------------------------------- prod */
/* jnp.prod: bool and the small ints in i32/u32 (as jnp.sum); an empty product is 1 */
jx_t jx_prod_axes(jx_t x, int naxes, const int *axes, bool keepdims) {
  axes_t r;
  jx_t e = resolve("prod", x, naxes, axes, &r);
  if (e) return e;
  if (jx_op_sum_dtype(x->aval.dtype) != x->aval.dtype)
    x = jx_op_cast(x, jx_op_sum_dtype(x->aval.dtype), false);
  return finish(reduce_keep(JX_P_reduce_prod, x, &r), &r, keepdims);
}
jx_t jx_prod(jx_t x) { return jx_prod_axes(x, 0, NULL, false); }

/* ------------------------------------------------------------ var/std */
/* jnp.var: mean of the squared deviations from the mean, divided by
 * N - ddof (as JAX: no clamp, so N <= ddof gives inf or a negative) */
static jx_t variance(const char *op, jx_t x, int naxes, const int *axes, int ddof, bool keepdims, bool sd) {
  axes_t r;
  jx_t e = resolve(op, x, naxes, axes, &r);
  if (e) return e;
  x = jx_op_to_float(x);
  jx_dtype dt = x->aval.dtype;
  jx_t n = jx_lax_const(dt, (double)r.count);
  jx_t mean = jx_lax_binary(JX_P_div, reduce_keep(JX_P_reduce_sum, x, &r), n);
  jx_t c = jx_lax_binary(JX_P_sub, x, jx_lax_broadcast_to_aval(mean, &x->aval));
  jx_t ss = reduce_keep(JX_P_reduce_sum, jx_lax_binary(JX_P_mul, c, c), &r);
  jx_t v = jx_lax_binary(JX_P_div, ss, jx_lax_const(dt, (double)r.count - ddof));
  if (sd) v = jx_lax_unary(JX_P_sqrt, v);
  return finish(v, &r, keepdims);
}
jx_t jx_var(jx_t x, int naxes, const int *axes, int ddof, bool keepdims) {
  return variance("var", x, naxes, axes, ddof, keepdims, false);
}
jx_t jx_std(jx_t x, int naxes, const int *axes, int ddof, bool keepdims) {
  return variance("std", x, naxes, axes, ddof, keepdims, true);
}

/* ------------------------------------------------------------ any/all */
/* x != 0 (NaN counts as true) as i32, then its max (any) or min (all) > 0:
 * the identities of an empty reduction (the lowest/highest i32) give
 * false and true */
static jx_t any_all(const char *op, jx_t x, int naxes, const int *axes, bool keepdims, bool all) {
  axes_t r;
  jx_t e = resolve(op, x, naxes, axes, &r);
  if (e) return e;
  jx_t b = x->aval.dtype == JX_BOOL ? x : jx_lax_binary(JX_P_ne, x, jx_lax_const(x->aval.dtype, 0));
  jx_t m = reduce_keep(all ? JX_P_reduce_min : JX_P_reduce_max, jx_lax_convert(b, JX_I32), &r);
  return finish(jx_lax_binary(JX_P_gt, m, jx_lax_const(JX_I32, 0)), &r, keepdims);
}
jx_t jx_any(jx_t x, int naxes, const int *axes, bool keepdims) {
  return any_all("any", x, naxes, axes, keepdims, false);
}
jx_t jx_all(jx_t x, int naxes, const int *axes, bool keepdims) {
  return any_all("all", x, naxes, axes, keepdims, true);
}

/* ---------------------------------------------------------- logsumexp */
/* jax.scipy.special.logsumexp: the max (a constant for differentiation,
 * 0 where not finite) shifted out before exponentiating; an empty axis
 * gives -inf */
jx_t jx_logsumexp_axes(jx_t x, int naxes, const int *axes, bool keepdims) {
  axes_t r;
  jx_t e = resolve("logsumexp", x, naxes, axes, &r);
  if (e) return e;
  x = jx_op_to_float(x);
  jx_dtype dt = x->aval.dtype;
  jx_t m = jx_lax_unary(JX_P_stop_gradient, reduce_keep(JX_P_reduce_max, x, &r));
  jx_t finite = jx_lax_binary(JX_P_lt, jx_lax_unary(JX_P_abs, m), jx_lax_const(dt, INFINITY));
  m = jx_lax_select(finite, m, jx_lax_zeros(&m->aval));
  jx_t s = reduce_keep(JX_P_reduce_sum, jx_lax_unary(JX_P_exp, jx_lax_binary(JX_P_sub, x, m)), &r);
  return finish(jx_lax_binary(JX_P_add, jx_lax_unary(JX_P_log, s), m), &r, keepdims);
}

/* ---------------------------------------------------------------- norm */
typedef enum { O_TWO, O_ONE, O_INF, O_NINF, O_ZERO, O_P, O_FRO, O_NUC, O_NEG_ONE, O_BAD } ord_kind;

/* ord as JAX takes it: NULL (the default), "fro", "nuc", "inf", "-inf" or a number */
static ord_kind parse_ord(const char *ord, double *p) {
  if (!ord) return O_TWO;
  if (!strcmp(ord, "fro")) return O_FRO;
  if (!strcmp(ord, "nuc")) return O_NUC;
  if (!strcmp(ord, "inf")) return O_INF;
  if (!strcmp(ord, "-inf")) return O_NINF;
  char *end;
  *p = strtod(ord, &end);
  if (end == ord || *end || isnan(*p)) return O_BAD;
  return *p == 2 ? O_TWO : *p == 1 ? O_ONE : *p == 0 ? O_ZERO : *p == -1 ? O_NEG_ONE : O_P;
}

/* the vector norms over r's axes (one axis, or all of them) */
static jx_t vector_norm(jx_t x, ord_kind k, double p, const axes_t *r) {
  jx_dtype dt = x->aval.dtype;
  jx_t ax = jx_lax_unary(JX_P_abs, x);
  switch (k) {
    case O_TWO:
    case O_FRO:
      return jx_lax_unary(JX_P_sqrt, reduce_keep(JX_P_reduce_sum, jx_lax_binary(JX_P_mul, x, x), r));
    case O_ONE: return reduce_keep(JX_P_reduce_sum, ax, r);
    case O_INF: return reduce_keep(JX_P_reduce_max, ax, r);
    case O_NINF: return reduce_keep(JX_P_reduce_min, ax, r);
    case O_ZERO:
      return reduce_keep(JX_P_reduce_sum, jx_lax_convert(jx_lax_binary(JX_P_ne, x, jx_lax_const(dt, 0)), dt),
                         r);
    default: { /* sum(|x|^p)^(1/p) */
      jx_t s = reduce_keep(JX_P_reduce_sum, jx_lax_binary(JX_P_pow, ax, jx_lax_const(dt, p)), r);
      return jx_lax_binary(JX_P_pow, s, jx_lax_const(dt, 1 / p));
    }
  }
}

/* the norms from the singular values (ord 2, -2, nuc): the two axes moved
 * last (rows, columns), svd's s reduced by max, min or sum, and put back
 * in place as size-1 dims */
static jx_t spectral_norm(jx_t x, ord_kind k, double p, const int *ax2, const axes_t *r) {
  int nd = x->aval.ndim, perm[JX_MAX_RANK], j = 0;
  for (int d = 0; d < nd; d++)
    if (!r->mask[d]) perm[j++] = d;
  perm[j++] = ax2[0], perm[j++] = ax2[1];
  jx_t s = jx_svd(jx_lax_transpose(x, perm), false);
  if (!jx_ok(s)) return s;
  jx_prim red = k == O_NUC ? JX_P_reduce_sum : p > 0 ? JX_P_reduce_max : JX_P_reduce_min;
  jx_t y = jx_lax_reduce(red, s, 1, (int[]){nd - 2});
  int64_t shape[JX_MAX_RANK];
  for (int d = 0; d < nd; d++) shape[d] = r->mask[d] ? 1 : x->aval.shape[d];
  return jx_lax_reshape(y, nd, shape);
}

/* the matrix norms over r's two axes (rows ax[0], columns ax[1] in the
 * caller's order): fro, 1/-1 (max/min column sum), inf/-inf (row sum),
 * 2/-2 (largest/smallest singular value), nuc (their sum); p: a numeric
 * ord's value */
static jx_t matrix_norm(const char *op, jx_t x, ord_kind k, double p, const int *ax2, const axes_t *r) {
  if (k == O_TWO || k == O_FRO) return vector_norm(x, O_TWO, 2, r);
  if (k == O_NUC || (k == O_P && (p == 2 || p == -2))) return spectral_norm(x, k, p, ax2, r);
  if (k != O_ONE && k != O_NEG_ONE && k != O_INF && k != O_NINF) {
    char s[160];
    return jx_error_new("%s: matrix norm of %s: ord must be fro, nuc, 1, -1, 2, -2, inf or -inf", op,
                        jx_aval_str(&x->aval, s, sizeof s));
  }
  bool cols = k == O_ONE || k == O_NEG_ONE; /* sum down the rows first, then over columns */
  axes_t inner = {.n = 1}, outer = {.n = 1};
  inner.ax[0] = cols ? ax2[0] : ax2[1], outer.ax[0] = cols ? ax2[1] : ax2[0];
  inner.mask[inner.ax[0]] = outer.mask[outer.ax[0]] = true;
  jx_t s = reduce_keep(JX_P_reduce_sum, jx_lax_unary(JX_P_abs, x), &inner);
  return reduce_keep(k == O_ONE || k == O_INF ? JX_P_reduce_max : JX_P_reduce_min, s, &outer);
}

/* jnp.linalg.norm: axes NULL with ord NULL is the 2-norm of every element;
 * else one axis (vector norms) or two (matrix norms); axes NULL with an ord
 * needs a 1-d or 2-d x */
jx_t jx_norm(jx_t x, const char *ord, int naxes, const int *axes, bool keepdims) {
  jx_t e = jx_op_check_array("norm", x);
  if (e) return e;
  double p = 2;
  ord_kind k = parse_ord(ord, &p);
  char s[160];
  if (k == O_BAD) return jx_error_new("norm: invalid ord '%s'", ord);
  int nd = x->aval.ndim, all[2] = {0, 1};
  if (!axes && ord) {
    if (nd != 1 && nd != 2)
      return jx_error_new("norm: ord '%s' with no axes needs a 1-d or 2-d array, not %s", ord,
                          jx_aval_str(&x->aval, s, sizeof s));
    naxes = nd, axes = all;
  }
  axes_t r;
  e = resolve("norm", x, naxes, axes, &r);
  if (e) return e;
  x = jx_op_to_float(x);
  jx_t y;
  if (!axes || naxes == 1) {
    if (k == O_FRO || k == O_NUC)
      return jx_error_new("norm: ord '%s' is for matrices (two axes), not a vector", ord);
    y = vector_norm(x, k == O_NEG_ONE ? O_P : k, k == O_NEG_ONE ? -1 : p, &r);
  } else if (naxes == 2) {
    int ax2[2] = {axes[0] < 0 ? axes[0] + nd : axes[0], axes[1] < 0 ? axes[1] + nd : axes[1]};
    y = matrix_norm("norm", x, ord && k == O_TWO ? O_P : k, p, ax2,
                    &r); /* an explicit 2: the spectral norm */
  } else {
    return jx_error_new("norm: %d axes given for %s: one (vector) or two (matrix)", naxes,
                        jx_aval_str(&x->aval, s, sizeof s));
  }
  return finish(y, &r, keepdims);
}
