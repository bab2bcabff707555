/* lax.associative_scan, written with primitives (see assoc_scan.h).
 *
 * scan(e): combine neighbours pairwise (e[0]+e[1], e[2]+e[3], ...),
 * scan those recursively (the odd results), combine each odd result with
 * the next even element (the even results), and interleave. O(n) combines
 * in O(log n) rounds, each round whole-array ops along the axis. */
#include "prims/assoc_scan.h"

#include "prims/prims.h"

enum { MAXN = 16 };

/* elems[i][start:limit:stride] along axis */
static jx_t slice_axis(jx_t x, int axis, int64_t start, int64_t limit, int64_t stride) {
  if (!jx_ok(x)) return x;
  const jx_aval *a = &x->aval;
  int64_t st[JX_MAX_RANK], li[JX_MAX_RANK], sr[JX_MAX_RANK];
  for (int d = 0; d < a->ndim; d++) st[d] = 0, li[d] = a->shape[d], sr[d] = 1;
  if (limit < start) limit = start;
  st[axis] = start, li[axis] = limit, sr[axis] = stride;
  return jx_lax_slice(x, st, li, sr);
}

/* a[0], b[0], a[1], b[1], ... along axis (len a = len b or len b + 1):
 * each spread out by interior padding, then added (or-ed for bool) */
static jx_t interleave(jx_t a, jx_t b, int axis) {
  if (!jx_ok(a) || !jx_ok(b)) return jx_ok(a) ? b : a;
  int r = a->aval.ndim;
  bool even = a->aval.shape[axis] == b->aval.shape[axis];
  int64_t lo[JX_MAX_RANK] = {0}, hi[JX_MAX_RANK] = {0}, in[JX_MAX_RANK] = {0};
  jx_dtype dt = a->aval.dtype;
  jx_t zero = jx_lax_const(dt, 0);
  in[axis] = 1, hi[axis] = even ? 1 : 0;
  jx_t pa = jx_lax_pad(a, zero, lo, hi, in);
  lo[axis] = 1, hi[axis] = even ? 0 : 1;
  jx_t pb = jx_lax_pad(b, zero, lo, hi, in);
  (void)r;
  return jx_lax_binary(dt == JX_BOOL ? JX_P_or : JX_P_add, pa, pb);
}

static jx_t first_error(int n, const jx_t *xs) {
  for (int i = 0; i < n; i++)
    if (!jx_ok(xs[i])) return xs[i];
  return NULL;
}

static jx_t scan_rec(jx_assoc_combine combine, void *ctx, int n, const jx_t *e, int axis, jx_t *out) {
  int64_t len = e[0]->aval.shape[axis];
  if (len < 2) {
    memcpy(out, e, sizeof(jx_t) * (size_t)n);
    return NULL;
  }
  jx_t a[MAXN] = {0}, b[MAXN] = {0}, red[MAXN], odd[MAXN], ev[MAXN];
  for (int i = 0; i < n; i++)
    a[i] = slice_axis(e[i], axis, 0, len - 1, 2), b[i] = slice_axis(e[i], axis, 1, len, 2);
  jx_t err = first_error(n, a) ? first_error(n, a) : first_error(n, b);
  if (err || (err = combine(ctx, n, a, b, red)) || (err = first_error(n, red))) return err;
  if ((err = scan_rec(combine, ctx, n, red, axis, odd))) return err;
  int64_t nodd = odd[0]->aval.shape[axis];
  for (int i = 0; i < n; i++) {
    a[i] = len % 2 == 0 ? slice_axis(odd[i], axis, 0, nodd - 1, 1) : odd[i];
    b[i] = slice_axis(e[i], axis, 2, len, 2);
  }
  if ((err = combine(ctx, n, a, b, ev)) || (err = first_error(n, ev))) return err;
  for (int i = 0; i < n; i++) {
    jx_t head = slice_axis(e[i], axis, 0, 1, 1);
    out[i] = interleave(jx_lax_concatenate(2, (jx_t[]){head, ev[i]}, axis), odd[i], axis);
  }
  return first_error(n, out);
}

jx_t jx_lax_associative_scan(jx_assoc_combine combine, void *ctx, int n, const jx_t *elems, int axis,
                             bool reverse, jx_t *out) {
  jx_t err = n < 1 || n > MAXN ? jx_error_new("associative_scan: takes 1 to %d arrays, got %d", MAXN, n)
                               : first_error(n, elems);
  jx_t e[MAXN];
  for (int i = 0; !err && i < n; i++) {
    const jx_aval *a = &elems[i]->aval, *a0 = &elems[0]->aval;
    if (axis < 0 || axis >= a->ndim)
      err = jx_error_new("associative_scan: axis %d out of range for rank %d", axis, a->ndim);
    else if (a->shape[axis] != a0->shape[axis])
      err = jx_error_new("associative_scan: arrays differ in length along axis %d (%lld and %lld)", axis,
                         (long long)a0->shape[axis], (long long)a->shape[axis]);
    else
      e[i] = reverse ? jx_lax_rev(elems[i], 1, &axis) : elems[i];
  }
  if (!err) err = scan_rec(combine, ctx, n, e, axis, out);
  for (int i = 0; !err && i < n; i++) {
    if (reverse) out[i] = jx_lax_rev(out[i], 1, &axis);
    if (!jx_ok(out[i])) err = out[i];
  }
  if (err)
    for (int i = 0; i < n; i++) out[i] = err;
  return err;
}
