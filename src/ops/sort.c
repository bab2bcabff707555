/* Sorting and scans (jnp.sort, jnp.argsort, lax.sort, lax.top_k,
 * jnp.searchsorted, jnp.cumsum & co., lax.associative_scan), as the sort
 * and cumulative primitives (src/prims/sort.c, cumulative.c) or built
 * from primitives. */
#include "ops/ops.h"
#include "prims/assoc_scan.h"
#include "prims/prims.h"

#include <stdlib.h>

static jx_t axis_error(const char *op, jx_t x, int axis) {
  char s[160];
  return jx_error_new("%s(%s): axis %d out of range for rank %d", op, jx_aval_str(&x->aval, s, sizeof s),
                      axis, x->aval.ndim);
}

/* x checked and its axis normalized into *ax (-1 with an error) */
static jx_t array_axis(const char *op, jx_t x, int axis, int *ax) {
  jx_t e = jx_op_check_array(op, x);
  if (e) return e;
  *ax = jx_norm_axis(axis, x->aval.ndim);
  return *ax < 0 ? axis_error(op, x, axis) : NULL;
}

/* axis JX_NONE (NumPy's axis=None): the flattened array along axis 0 */
static jx_t flat_if_none(jx_t x, int *axis) {
  if (*axis != JX_NONE || !jx_ok(x) || jx_is_tree(x)) return x;
  *axis = 0;
  return jx_reshape(x, 1, (int64_t[]){-1});
}

static jx_t sort_bind(int n, const jx_t *ops, int axis, int num_keys, jx_t *out) {
  jx_params pa;
  jx_params_init(&pa, JX_PK_SORT);
  pa.sort.axis = axis, pa.sort.num_keys = num_keys;
  return jx_bind(JX_P_sort, n, ops, &pa, n, out);
}

jx_t jx_sort(jx_t x, int axis) {
  int ax;
  x = flat_if_none(x, &axis);
  jx_t e = array_axis("sort", x, axis, &ax), out;
  return e ? e : (sort_bind(1, &x, ax, 1, &out), out);
}

/* the stable argsort of x along ax, i32 unless the axis is too long */
static jx_t argsort_axis(jx_t x, int ax) {
  jx_params pa;
  jx_params_init(&pa, JX_PK_ARG);
  pa.arg.axis = ax;
  pa.arg.dtype = x->aval.shape[ax] > INT32_MAX ? JX_I64 : JX_I32;
  return jx_bind1(JX_P_argsort, 1, &x, &pa);
}

jx_t jx_argsort(jx_t x, int axis) {
  int ax;
  x = flat_if_none(x, &axis);
  jx_t e = array_axis("argsort", x, axis, &ax);
  return e ? e : argsort_axis(x, ax);
}

jx_t jx_sort_multi(int n, const jx_t *operands, int axis, int num_keys) {
  if (n < 1 || !operands) return jx_error_new("sort_multi: needs at least one operand (got %d)", n);
  for (int i = 0; i < n; i++) {
    jx_t e = jx_op_check_array("sort_multi", operands[i]);
    if (e) return e;
  }
  int ax = jx_norm_axis(axis, operands[0]->aval.ndim);
  if (ax < 0) return axis_error("sort_multi", operands[0], axis);
  jx_t *out = malloc(sizeof(jx_t) * (size_t)n);
  if (!out) return jx_error_new("sort_multi: out of memory");
  jx_t e = sort_bind(n, operands, ax, num_keys, out);
  jx_t r = e ? e : jx_tuple(n, out);
  free(out);
  return r;
}

/* lax.top_k: the k largest along the last axis, largest first, ties in
 * index order, NaN counted largest. A stable ascending sort of the
 * reversed row, reversed back, is exactly that descending order. */
jx_t jx_top_k(jx_t x, int k) {
  jx_t e = jx_op_check_array("top_k", x);
  if (e) return e;
  char s[160];
  int r = x->aval.ndim;
  if (r < 1)
    return jx_error_new("top_k(%s): operand must have rank >= 1", jx_aval_str(&x->aval, s, sizeof s));
  int ax = r - 1;
  int64_t n = x->aval.shape[ax];
  if (k < 0 || k > n)
    return jx_error_new("top_k(%s): k = %d must be in [0, %lld] (the last axis)",
                        jx_aval_str(&x->aval, s, sizeof s), k, (long long)n);
  jx_t ops[2] = {jx_lax_rev(x, 1, &ax), jx_lax_rev(jx_lax_iota(JX_I32, r, x->aval.shape, ax), 1, &ax)},
       out[2];
  if ((e = sort_bind(2, ops, ax, 1, out))) return e;
  int64_t st[JX_MAX_RANK] = {0}, li[JX_MAX_RANK], sr[JX_MAX_RANK];
  for (int d = 0; d < r; d++) li[d] = x->aval.shape[d], sr[d] = 1;
  li[ax] = k;
  jx_t v = jx_lax_slice(jx_lax_rev(out[0], 1, &ax), st, li, sr);
  jx_t i = jx_lax_slice(jx_lax_rev(out[1], 1, &ax), st, li, sr);
  return jx_ok(v) ? jx_ok(i) ? JX_TUPLE(v, i) : i : v;
}

/* each element's position in the stable sorted order of 1-D x (the
 * inverse of the sorting permutation, itself an argsort) */
static jx_t rank_of(jx_t x) { return argsort_axis(argsort_axis(x, 0), 0); }

/* jnp.searchsorted(a, v, side) by sorting (JAX's method='sort'): in the
 * stable order of [v, a] (left) or [a, v] (right), a query's rank minus
 * its rank among the queries counts the elements of a before it. */
jx_t jx_searchsorted(jx_t a, jx_t v, const char *side) {
  jx_t e = jx_op_check_array("searchsorted", a);
  if (!e) e = jx_op_check_array("searchsorted", v);
  if (e) return e;
  char s1[160], s2[160];
  bool right = side && !strcmp(side, "right");
  if (side && !right && strcmp(side, "left"))
    return jx_error_new("searchsorted: side must be \"left\" or \"right\", got \"%s\"", side);
  if (a->aval.ndim != 1)
    return jx_error_new("searchsorted(%s, %s): the sorted array must be 1-D",
                        jx_aval_str(&a->aval, s1, sizeof s1), jx_aval_str(&v->aval, s2, sizeof s2));
  jx_dtype dt = jx_promote(a->aval.dtype, a->aval.weak, v->aval.dtype, v->aval.weak, NULL);
  a = jx_op_cast_for("searchsorted", a, dt, false);
  int64_t nv = jx_aval_size(&v->aval), na = a->aval.shape[0], n = nv + na;
  if (na + nv > INT32_MAX) return jx_error_new("searchsorted: arrays too long for i32 indices");
  jx_t q = jx_lax_reshape(jx_op_cast_for("searchsorted", v, dt, false), 1, &nv);
  jx_t both = right ? jx_lax_concatenate(2, (jx_t[]){a, q}, 0) : jx_lax_concatenate(2, (jx_t[]){q, a}, 0);
  int64_t st = right ? na : 0, li = right ? n : nv, one = 1;
  jx_t pos = jx_lax_slice(rank_of(both), &st, &li, &one);
  jx_t idx = jx_lax_binary(JX_P_sub, pos, rank_of(q));
  return jx_lax_reshape(idx, v->aval.ndim, v->aval.shape);
}

/* ------------------------------------------------------ cumulative */
static jx_t cumulative(jx_prim p, jx_t x, int axis, bool reverse) {
  const char *nm = jx_prim_names[p];
  int ax;
  x = flat_if_none(x, &axis);
  jx_t e = array_axis(nm, x, axis, &ax);
  if (e) return e;
  /* jnp promotes bool to the default int for sums and products, and ints
   * to the default float for logsumexp */
  if (x->aval.dtype == JX_BOOL && (p == JX_P_cumsum || p == JX_P_cumprod)) x = jx_op_cast(x, JX_I32, false);
  if (p == JX_P_cumlogsumexp) x = jx_op_to_float(x);
  jx_params pa;
  jx_params_init(&pa, JX_PK_CUMULATIVE);
  pa.cumulative.axis = ax, pa.cumulative.reverse = reverse;
  return jx_bind1(p, 1, &x, &pa);
}

jx_t jx_cumsum(jx_t x, int axis) { return cumulative(JX_P_cumsum, x, axis, false); }
jx_t jx_cumsum_ex(jx_t x, int axis, bool reverse) { return cumulative(JX_P_cumsum, x, axis, reverse); }
jx_t jx_cumprod(jx_t x, int axis, bool reverse) { return cumulative(JX_P_cumprod, x, axis, reverse); }
jx_t jx_cummax(jx_t x, int axis, bool reverse) { return cumulative(JX_P_cummax, x, axis, reverse); }
jx_t jx_cummin(jx_t x, int axis, bool reverse) { return cumulative(JX_P_cummin, x, axis, reverse); }
jx_t jx_cumlogsumexp(jx_t x, int axis, bool reverse) {
  return cumulative(JX_P_cumlogsumexp, x, axis, reverse);
}

/* ------------------------------------------------ associative scan */
enum { MAXLEAVES = 16 };
typedef struct {
  jx_fn *fn;
  jx_t like; /* elems: the structure fn's arguments and result have */
} scan_user;

/* fn on two trees shaped like elems, its result flattened back */
static jx_t user_combine(void *ctx, int n, const jx_t *a, const jx_t *b, jx_t *out) {
  scan_user *u = ctx;
  jx_t ta = jx_tree_build(u->like, a), tb = jx_tree_build(u->like, b);
  jx_t r = jx_call(u->fn, (jx_t[]){ta, tb});
  if (jx_is_error(r)) return r ? r : jx_error_new("associative_scan: fn returned NULL");
  if (!jx_tree_same_structure(r, u->like) || jx_tree_leaves_to(r, out, n) != n)
    return jx_error_new("associative_scan: fn must return a tree shaped like elems");
  for (int i = 0; i < n; i++) {
    jx_t e = jx_op_check_array("associative_scan", out[i]);
    if (e) return e;
  }
  return NULL;
}

jx_t jx_associative_scan(jx_fn *fn, jx_t elems, int axis, bool reverse) {
  if (!fn) return jx_error_new("associative_scan: fn is NULL");
  if (jx_is_error(elems)) return elems ? elems : jx_error_new("associative_scan: elems is NULL");
  jx_t leaves[MAXLEAVES], out[MAXLEAVES];
  int n = jx_tree_leaves_to(elems, leaves, MAXLEAVES);
  if (n < 1 || n > MAXLEAVES)
    return jx_error_new("associative_scan: elems must have 1 to %d leaves, got %d", MAXLEAVES, n);
  for (int i = 0; i < n; i++) {
    jx_t e = jx_op_check_array("associative_scan", leaves[i]);
    if (e) return e;
  }
  int ax = jx_norm_axis(axis, leaves[0]->aval.ndim);
  if (ax < 0) return axis_error("associative_scan", leaves[0], axis);
  scan_user u = {.fn = fn, .like = elems};
  jx_t e = jx_lax_associative_scan(user_combine, &u, n, leaves, ax, reverse, out);
  return e ? e : jx_tree_build(elems, out);
}
