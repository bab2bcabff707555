/* Layout primitives: reshape, broadcast_in_dim, transpose, slice, rev,
 * pad, concatenate. Eagerly each is one strided copy; all are linear, and
 * their transposes are each other (slice <-> pad, concatenate -> slices). */
#include "ir/loop.h" /* jx_affine: index maps */
#include "prims/prims.h"

#define ERR(...) jx_rule_error(jx_prim_names[p], in, nin, __VA_ARGS__)

static size_t esize(jx_t x) { return jx_dtype_size(x->aval.dtype); }

/* ------------------------------------------------------------ reshape */
static jx_t reshape_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  char err[256];
  if (jx_shape_check(pa->reshape.ndim, pa->reshape.shape, in->dtype, err, sizeof err)) return ERR("%s", err);
  out[0] = (jx_aval){.dtype = in->dtype, .weak = in->weak, .ndim = pa->reshape.ndim};
  memcpy(out[0].shape, pa->reshape.shape, sizeof(int64_t) * (size_t)pa->reshape.ndim);
  if (jx_aval_size(&out[0]) != jx_aval_size(in)) {
    char s[200];
    return ERR("cannot reshape %lld elements into shape %s", (long long)jx_aval_size(in),
               jx_shape_str(pa->reshape.ndim, pa->reshape.shape, s, sizeof s));
  }
  return NULL;
}
/* Eagerly a reshape copies nothing: the result is a view sharing the
 * operand's buffer (core/view.c); the rule makes its own output. */
static jx_t reshape_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  jx_aval a;
  jx_t e = reshape_abstract(p, &in[0]->aval, nin, pa, &a);
  out[0] = e ? e : jx_array_view(in[0], 0, &a);
  return jx_ok(out[0]) ? NULL : out[0];
}
static jx_t reshape_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                              const jx_params *pa, jx_t *cts) {
  (void)p, (void)in, (void)nin, (void)pa;
  cts[0] = ct[0] ? jx_lax_reshape(ct[0], av[0].ndim, av[0].shape) : NULL;
  return NULL;
}

/* --------------------------------------------------- broadcast_in_dim */
static jx_t bid_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  char err[256];
  if (jx_shape_check(pa->bcast.ndim, pa->bcast.shape, in->dtype, err, sizeof err)) return ERR("%s", err);
  if (pa->bcast.naxes != in->ndim)
    return ERR("%d broadcast dims given for a rank-%d operand", pa->bcast.naxes, in->ndim);
  for (int i = 0; i < in->ndim; i++) {
    int d = pa->bcast.axes[i];
    if (d < 0 || d >= pa->bcast.ndim || (i > 0 && d <= pa->bcast.axes[i - 1]))
      return ERR("broadcast dims must be increasing and within the target rank %d", pa->bcast.ndim);
    if (in->shape[i] != 1 && in->shape[i] != pa->bcast.shape[d]) {
      char s[200];
      return ERR("operand dim %d (size %lld) cannot broadcast to size %lld in shape %s", i,
                 (long long)in->shape[i], (long long)pa->bcast.shape[d],
                 jx_shape_str(pa->bcast.ndim, pa->bcast.shape, s, sizeof s));
    }
  }
  out[0] = (jx_aval){.dtype = in->dtype, .weak = in->weak, .ndim = pa->bcast.ndim};
  memcpy(out[0].shape, pa->bcast.shape, sizeof(int64_t) * (size_t)pa->bcast.ndim);
  return NULL;
}
static jx_t bid_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin;
  const jx_aval *a = &in[0]->aval;
  int64_t st[JX_MAX_RANK], ost[JX_MAX_RANK] = {0};
  jx_strides(a->ndim, a->shape, st);
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != 1) ost[pa->bcast.axes[i]] = st[i];
  jx_cpu_strided_copy(esize(in[0]), pa->bcast.ndim, pa->bcast.shape, jx_data(in[0]), 0, ost, jx_data(out[0]));
  return NULL;
}
static jx_t bid_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                          const jx_params *pa, jx_t *cts) {
  (void)p, (void)in, (void)nin;
  if (!ct[0]) return NULL;
  bool keep[JX_MAX_RANK] = {0};
  for (int i = 0; i < av[0].ndim; i++)
    if (av[0].shape[i] == pa->bcast.shape[pa->bcast.axes[i]]) keep[pa->bcast.axes[i]] = true;
  int axes[JX_MAX_RANK], n = 0;
  for (int d = 0; d < pa->bcast.ndim; d++)
    if (!keep[d]) axes[n++] = d;
  jx_t s = n ? jx_lax_reduce(JX_P_reduce_sum, ct[0], n, axes) : ct[0];
  cts[0] = jx_lax_reshape(s, av[0].ndim, av[0].shape);
  return NULL;
}

/* ---------------------------------------------------------- transpose */
static jx_t transpose_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  bool seen[JX_MAX_RANK] = {0};
  if (pa->perm.naxes != in->ndim)
    return ERR("permutation of length %d for rank %d", pa->perm.naxes, in->ndim);
  out[0] = (jx_aval){.dtype = in->dtype, .weak = in->weak, .ndim = in->ndim};
  for (int i = 0; i < in->ndim; i++) {
    int a = pa->perm.axes[i];
    if (a < 0 || a >= in->ndim || seen[a]) return ERR("axes are not a permutation of 0..%d", in->ndim - 1);
    seen[a] = true;
    out[0].shape[i] = in->shape[a];
  }
  return NULL;
}
static jx_t transpose_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin;
  const jx_aval *a = &in[0]->aval;
  int64_t st[JX_MAX_RANK], pst[JX_MAX_RANK];
  jx_strides(a->ndim, a->shape, st);
  for (int i = 0; i < a->ndim; i++) pst[i] = st[pa->perm.axes[i]];
  jx_cpu_strided_copy(esize(in[0]), a->ndim, out[0]->aval.shape, jx_data(in[0]), 0, pst, jx_data(out[0]));
  return NULL;
}
static jx_t transpose_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                                const jx_params *pa, jx_t *cts) {
  (void)p, (void)in, (void)nin;
  if (!ct[0]) return NULL;
  int inv[JX_MAX_RANK];
  for (int i = 0; i < av[0].ndim; i++) inv[pa->perm.axes[i]] = i;
  cts[0] = jx_lax_transpose(ct[0], inv);
  return NULL;
}

/* -------------------------------------------------------------- slice */
static jx_t slice_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  out[0] = (jx_aval){.dtype = in->dtype, .weak = in->weak, .ndim = in->ndim};
  for (int d = 0; d < in->ndim; d++) {
    int64_t s = pa->slice.start[d], l = pa->slice.limit[d], st = pa->slice.stride[d];
    if (st < 1 || s < 0 || l < s || l > in->shape[d])
      return ERR("dimension %d: need 0 <= start (%lld) <= limit (%lld) <= size (%lld) and stride (%lld) >= 1",
                 d, (long long)s, (long long)l, (long long)in->shape[d], (long long)st);
    out[0].shape[d] = l > s ? (l - s - 1) / st + 1 : 0; /* (l - s + st - 1) / st could overflow */
  }
  return NULL;
}
/* Is the slice one contiguous run of the operand: full trailing dims, one
 * dim sliced with stride 1, extent-1 dims before it? */
static bool slice_contiguous(const jx_aval *a, const jx_aval *o, const jx_params *pa) {
  int d = a->ndim - 1;
  while (d >= 0 && o->shape[d] == a->shape[d]) d--;
  if (d >= 0 && o->shape[d] > 1 && pa->slice.stride[d] != 1) return false;
  for (d--; d >= 0; d--)
    if (o->shape[d] > 1) return false;
  return true;
}
/* A contiguous slice of at least an eighth of the operand is a view of its
 * buffer (pmap hands each device its block this way); other slices copy,
 * so that a small piece does not keep a large buffer alive. */
static jx_t slice_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  const jx_aval *a = &in[0]->aval;
  jx_aval o;
  jx_t e = slice_abstract(p, a, nin, pa, &o);
  if (e) return out[0] = e;
  int64_t st[JX_MAX_RANK], sst[JX_MAX_RANK], off = 0;
  jx_strides(a->ndim, a->shape, st);
  for (int d = 0; d < a->ndim; d++) off += pa->slice.start[d] * st[d], sst[d] = st[d] * pa->slice.stride[d];
  const int64_t n = jx_aval_size(&o), total = jx_aval_size(a);
  if (n > 0 && n >= total / 8 && slice_contiguous(a, &o, pa))
    out[0] = jx_array_view(in[0], (size_t)off * esize(in[0]), &o);
  else if (jx_ok(out[0] = jx_array_new(&o)))
    jx_cpu_strided_copy(esize(in[0]), a->ndim, o.shape, jx_data(in[0]), off, sst, jx_data(out[0]));
  return jx_ok(out[0]) ? NULL : out[0];
}
static jx_t slice_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                            const jx_params *pa, jx_t *cts) {
  (void)p, (void)in, (void)nin;
  if (!ct[0]) return NULL;
  int64_t lo[JX_MAX_RANK], hi[JX_MAX_RANK], interior[JX_MAX_RANK];
  for (int d = 0; d < av[0].ndim; d++) {
    int64_t n = ct[0]->aval.shape[d];
    lo[d] = pa->slice.start[d];
    interior[d] = n > 0 ? pa->slice.stride[d] - 1 : 0;
    int64_t used = n > 0 ? lo[d] + (n - 1) * pa->slice.stride[d] + 1 : lo[d];
    hi[d] = av[0].shape[d] - used;
  }
  cts[0] = jx_lax_pad(ct[0], jx_lax_const(ct[0]->aval.dtype, 0), lo, hi, interior);
  return NULL;
}

/* ---------------------------------------------------------------- rev */
static jx_t rev_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  bool seen[JX_MAX_RANK] = {0};
  for (int i = 0; i < pa->rev.naxes; i++) {
    int a = pa->rev.axes[i];
    if (a < 0 || a >= in->ndim || seen[a]) return ERR("bad or repeated axis %d", a);
    seen[a] = true;
  }
  out[0] = in[0];
  return NULL;
}
static jx_t rev_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin;
  const jx_aval *a = &in[0]->aval;
  int64_t st[JX_MAX_RANK], off = 0;
  jx_strides(a->ndim, a->shape, st);
  for (int i = 0; i < pa->rev.naxes; i++) {
    int d = pa->rev.axes[i];
    if (a->shape[d] > 0) off += (a->shape[d] - 1) * st[d];
    st[d] = -st[d];
  }
  jx_cpu_strided_copy(esize(in[0]), a->ndim, a->shape, jx_data(in[0]), off, st, jx_data(out[0]));
  return NULL;
}
static jx_t rev_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                          const jx_params *pa, jx_t *cts) {
  (void)p, (void)in, (void)av, (void)nin;
  cts[0] = ct[0] ? jx_lax_rev(ct[0], pa->rev.naxes, pa->rev.axes) : NULL;
  return NULL;
}

/* ---------------------------------------------------------------- pad */
/* lo, hi and interior padding (all >= 0). */
static jx_t pad_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  if (in[1].ndim != 0) return ERR("padding value must be a scalar");
  if (in[0].dtype != in[1].dtype) return ERR("padding value must have the operand's dtype");
  out[0] = in[0];
  for (int d = 0; d < in->ndim; d++) {
    int64_t lo = pa->pad.lo[d], hi = pa->pad.hi[d], it = pa->pad.interior[d], n = in->shape[d];
    if (lo < 0 || hi < 0 || it < 0) return ERR("dimension %d: negative padding is not supported", d);
    int64_t size = 0, body = 0; /* lo + hi + n + (n - 1) * it, checked */
    if (n > 0 && (__builtin_mul_overflow(n - 1, it, &body) || __builtin_add_overflow(body, n, &body)))
      return ERR("dimension %d: padded size overflows", d);
    if (__builtin_add_overflow(lo, hi, &size) || __builtin_add_overflow(size, body, &size))
      return ERR("dimension %d: padded size overflows", d);
    out[0].shape[d] = size;
  }
  return NULL;
}
static jx_t pad_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin;
  const jx_aval *o = &out[0]->aval, *a = &in[0]->aval;
  jx_cpu_fill(o->dtype, jx_aval_size(o), jx_scalar_load(o->dtype, jx_data(in[1])), jx_data(out[0]));
  int64_t ost[JX_MAX_RANK], sst[JX_MAX_RANK], off = 0;
  jx_strides(o->ndim, o->shape, ost);
  for (int d = 0; d < o->ndim; d++)
    off += pa->pad.lo[d] * ost[d], sst[d] = ost[d] * (pa->pad.interior[d] + 1);
  if (jx_aval_size(a) > 0)
    jx_cpu_strided_scatter(esize(in[0]), a->ndim, a->shape, jx_data(in[0]), jx_data(out[0]), off, sst);
  return NULL;
}
static jx_t pad_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                          const jx_params *pa, jx_t *cts) {
  (void)p, (void)nin;
  if (!ct[0]) return NULL;
  int64_t start[JX_MAX_RANK], limit[JX_MAX_RANK], stride[JX_MAX_RANK];
  for (int d = 0; d < av[0].ndim; d++) {
    start[d] = pa->pad.lo[d];
    stride[d] = pa->pad.interior[d] + 1;
    limit[d] = av[0].shape[d] == 0 ? start[d] : start[d] + (av[0].shape[d] - 1) * stride[d] + 1;
  }
  jx_t op = jx_lax_slice(ct[0], start, limit, stride);
  if (!in[0]) cts[0] = op;
  if (!in[1]) { /* sum over all axes */
    int axes[JX_MAX_RANK];
    for (int d = 0; d < av[0].ndim; d++) axes[d] = d;
    cts[1] = jx_lax_binary(JX_P_sub, jx_lax_reduce(JX_P_reduce_sum, ct[0], av[0].ndim, axes),
                           jx_lax_reduce(JX_P_reduce_sum, op, av[0].ndim, axes));
  }
  return NULL;
}

/* -------------------------------------------------------- concatenate */
static jx_t concat_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  int ax = pa->concat.axis;
  if (in[0].ndim == 0) return ERR("cannot concatenate 0-d arrays");
  if (ax < 0 || ax >= in[0].ndim) return ERR("axis %d out of range for rank %d", ax, in[0].ndim);
  out[0] = in[0];
  out[0].shape[ax] = 0;
  for (int i = 0; i < nin; i++) {
    if (in[i].dtype != in[0].dtype) return ERR("operands must have the same dtype (promote first)");
    if (in[i].ndim != in[0].ndim) return ERR("operands must have the same rank");
    for (int d = 0; d < in[0].ndim; d++)
      if (d != ax && in[i].shape[d] != in[0].shape[d])
        return ERR("operand %d differs in dimension %d (%lld vs %lld)", i, d, (long long)in[i].shape[d],
                   (long long)in[0].shape[d]);
    if (__builtin_add_overflow(out[0].shape[ax], in[i].shape[ax], &out[0].shape[ax]))
      return ERR("the concatenated dimension %d overflows int64", ax);
    out[0].weak &= in[i].weak;
  }
  return NULL;
}
static jx_t concat_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p;
  const jx_aval *o = &out[0]->aval;
  int64_t ost[JX_MAX_RANK], off = 0;
  jx_strides(o->ndim, o->shape, ost);
  for (int i = 0; i < nin; i++) {
    const jx_aval *a = &in[i]->aval;
    if (jx_aval_size(a) > 0)
      jx_cpu_strided_scatter(esize(in[i]), a->ndim, a->shape, jx_data(in[i]), jx_data(out[0]), off, ost);
    off += a->shape[pa->concat.axis] * ost[pa->concat.axis];
  }
  return NULL;
}
static jx_t concat_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                             const jx_params *pa, jx_t *cts) {
  (void)p;
  if (!ct[0]) return NULL;
  int64_t start[JX_MAX_RANK] = {0}, limit[JX_MAX_RANK], pos = 0;
  for (int d = 0; d < av[0].ndim; d++) limit[d] = ct[0]->aval.shape[d];
  for (int i = 0; i < nin; i++) {
    start[pa->concat.axis] = pos;
    limit[pa->concat.axis] = pos + av[i].shape[pa->concat.axis];
    if (!in[i]) cts[i] = jx_lax_slice(ct[0], start, limit, NULL);
    pos = limit[pa->concat.axis];
  }
  return NULL;
}

/* jvp of a primitive linear in all its inputs: apply it to the tangents
 * (zeros where a tangent is symbolic zero but another is not). */
static jx_t linear_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                       jx_t *tout) {
  jx_bind(p, nin, x, pa, 1, out);
  bool any = false;
  for (int i = 0; i < nin; i++) any |= t[i] != NULL;
  if (p == JX_P_pad) any = t[0] || t[1];
  if (!any) {
    tout[0] = NULL;
    return NULL;
  }
  jx_t small[8], *ts = nin <= 8 ? small : jx_malloc(sizeof(jx_t) * (size_t)nin);
  if (!ts) return jx_error_new("%s: out of memory", jx_prim_names[p]);
  for (int i = 0; i < nin; i++) ts[i] = t[i] ? t[i] : jx_lax_zeros(&x[i]->aval);
  tout[0] = jx_bind1(p, nin, ts, pa);
  if (ts != small) jx_free(ts);
  return NULL;
}

/* ------------------------------------------------------------ batching */
static jx_t reshape_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                          int *obd) {
  (void)p, (void)nin;
  jx_t v = jx_moveaxis(in[0], bd[0], 0);
  if (pa->reshape.ndim + 1 > JX_MAX_RANK)
    return jx_error_new("reshape: batched rank exceeds %d", JX_MAX_RANK);
  int64_t shape[JX_MAX_RANK];
  shape[0] = v->aval.shape[0];
  memcpy(shape + 1, pa->reshape.shape, sizeof(int64_t) * (size_t)pa->reshape.ndim);
  out[0] = jx_lax_reshape(v, pa->reshape.ndim + 1, shape);
  obd[0] = 0;
  return NULL;
}
static jx_t bid_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                      int *obd) {
  (void)p, (void)nin;
  jx_t v = jx_moveaxis(in[0], bd[0], 0);
  if (pa->bcast.ndim + 1 > JX_MAX_RANK)
    return jx_error_new("broadcast_in_dim: batched rank exceeds %d", JX_MAX_RANK);
  int64_t shape[JX_MAX_RANK];
  int dims[JX_MAX_RANK];
  shape[0] = v->aval.shape[0];
  memcpy(shape + 1, pa->bcast.shape, sizeof(int64_t) * (size_t)pa->bcast.ndim);
  dims[0] = 0;
  for (int i = 0; i < pa->bcast.naxes; i++) dims[i + 1] = pa->bcast.axes[i] + 1;
  out[0] = jx_lax_broadcast_in_dim(v, pa->bcast.ndim + 1, shape, dims);
  obd[0] = 0;
  return NULL;
}
static jx_t transpose_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                            int *obd) {
  (void)p, (void)nin;
  int perm[JX_MAX_RANK];
  perm[0] = bd[0];
  for (int i = 0; i < pa->perm.naxes; i++) perm[i + 1] = jx_bdim_shift(pa->perm.axes[i], bd[0]);
  out[0] = jx_lax_transpose(in[0], perm);
  obd[0] = 0;
  return NULL;
}
static jx_t slice_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                        int *obd) {
  (void)nin;
  jx_params q = *pa;
  int b = bd[0], r = in[0]->aval.ndim;
  for (int d = r - 1; d > b; d--)
    q.slice.start[d] = pa->slice.start[d - 1], q.slice.limit[d] = pa->slice.limit[d - 1],
    q.slice.stride[d] = pa->slice.stride[d - 1];
  q.slice.start[b] = 0, q.slice.limit[b] = in[0]->aval.shape[b], q.slice.stride[b] = 1;
  out[0] = jx_bind1(p, 1, in, &q);
  obd[0] = b;
  return NULL;
}
static jx_t rev_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                      int *obd) {
  (void)nin;
  jx_params q = *pa;
  for (int i = 0; i < pa->rev.naxes; i++) q.rev.axes[i] = jx_bdim_shift(pa->rev.axes[i], bd[0]);
  out[0] = jx_bind1(p, 1, in, &q);
  obd[0] = bd[0];
  return NULL;
}
static jx_t pad_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                      int *obd) {
  (void)nin;
  int64_t n = jx_batch_size(in, bd, 2);
  jx_t x = jx_batch_to_front(in[0], bd[0], n);
  int r = x->aval.ndim;
  jx_params q = *pa;
  for (int d = r - 1; d > 0; d--)
    q.pad.lo[d] = pa->pad.lo[d - 1], q.pad.hi[d] = pa->pad.hi[d - 1],
    q.pad.interior[d] = pa->pad.interior[d - 1];
  q.pad.lo[0] = q.pad.hi[0] = q.pad.interior[0] = 0;
  obd[0] = 0;
  if (bd[1] == JX_NONE) {
    out[0] = jx_bind1(p, 2, (jx_t[]){x, in[1]}, &q);
    return NULL;
  }
  /* a per-example padding value: pad with anything, then select it in
   * where a padded mask says so */
  jx_dtype dt = x->aval.dtype;
  jx_t padded = jx_bind1(p, 2, (jx_t[]){x, jx_lax_const(dt, 0)}, &q);
  jx_aval ex = x->aval; /* one example, as bool */
  ex.dtype = JX_BOOL;
  for (int d = 0; d < r - 1; d++) ex.shape[d] = ex.shape[d + 1];
  ex.ndim--;
  jx_t mask = jx_bind1(p, 2, (jx_t[]){jx_lax_zeros(&ex), jx_lax_const(JX_BOOL, 1)}, pa);
  int64_t vs[JX_MAX_RANK];
  vs[0] = n;
  for (int d = 1; d < r; d++) vs[d] = 1;
  jx_t val = jx_lax_reshape(in[1], r, vs);
  out[0] = jx_lax_select(mask, val, padded);
  return NULL;
}
static jx_t concat_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                         int *obd) {
  int64_t n = jx_batch_size(in, bd, nin);
  jx_t small[8], *xs = nin <= 8 ? small : jx_malloc(sizeof(jx_t) * (size_t)nin);
  if (!xs) return jx_error_new("concatenate: out of memory");
  for (int i = 0; i < nin; i++) xs[i] = jx_batch_to_front(in[i], bd[i], n);
  jx_params q = *pa;
  q.concat.axis = pa->concat.axis + 1;
  out[0] = jx_bind1(p, nin, xs, &q);
  obd[0] = 0;
  if (xs != small) jx_free(xs);
  return NULL;
}

/* ------------------------------------------------------------ printing */
static void reshape_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  jx_put_ints(b, "new_sizes", pa->reshape.shape, pa->reshape.ndim);
}
static void bid_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  jx_put_i32s(b, "broadcast_dimensions", pa->bcast.axes, pa->bcast.naxes);
  jx_put_ints(b, "shape", pa->bcast.shape, pa->bcast.ndim);
}
static void transpose_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  jx_put_i32s(b, "permutation", pa->perm.axes, pa->perm.naxes);
}
static void rev_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  jx_put_i32s(b, "dimensions", pa->rev.axes, pa->rev.naxes);
}
/* slice and pad params run over the operand's rank */
static void slice_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  int rank = nin ? in[0].ndim : 0;
  jx_put_ints(b, "start_indices", pa->slice.start, rank);
  jx_put_ints(b, "limit_indices", pa->slice.limit, rank);
  jx_put_ints(b, "strides", pa->slice.stride, rank);
}
static void pad_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  int rank = nin ? in[0].ndim : 0;
  jx_strbuf_put(b, " padding_config=(");
  for (int i = 0; i < rank; i++)
    jx_strbuf_put(b, "%s(%lld, %lld, %lld)", i ? ", " : "", (long long)pa->pad.lo[i],
                  (long long)pa->pad.hi[i], (long long)pa->pad.interior[i]);
  jx_strbuf_put(b, ")");
}
static void concat_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  jx_strbuf_put(b, " dimension=%d", pa->concat.axis);
}

/* ------------------------------------------------------------ lowering */
/* Index maps (jx_lowering.index_map): where in the operand output index
 * `out` reads, each index affine in the jit's loop indices. The jit fuses
 * these ops as this arithmetic: they never become kernels. */
static void bid_index(const jx_params *p, const jx_aval *ua, const jx_affine *out, jx_affine *in) {
  for (int d = 0; d < ua->ndim; d++)
    if (ua->shape[d] != 1) in[d] = out[p->bcast.axes[d]]; /* size-1 dims broadcast: index 0 */
}
static void transpose_index(const jx_params *p, const jx_aval *ua, const jx_affine *out, jx_affine *in) {
  for (int d = 0; d < ua->ndim; d++) in[p->perm.axes[d]] = out[d];
}
static void slice_index(const jx_params *p, const jx_aval *ua, const jx_affine *out, jx_affine *in) {
  for (int d = 0; d < ua->ndim; d++) {
    in[d].off = p->slice.start[d] + p->slice.stride[d] * out[d].off;
    for (int k = 0; k < JX_MAX_RANK; k++) in[d].coef[k] = p->slice.stride[d] * out[d].coef[k];
  }
}
static void rev_index(const jx_params *p, const jx_aval *ua, const jx_affine *out, jx_affine *in) {
  for (int d = 0; d < ua->ndim; d++) in[d] = out[d];
  for (int i = 0; i < p->rev.naxes; i++) {
    int d = p->rev.axes[i];
    in[d].off = ua->shape[d] - 1 - out[d].off;
    for (int k = 0; k < JX_MAX_RANK; k++) in[d].coef[k] = -out[d].coef[k];
  }
}

/* own: the impl makes its output (reshape and slice: views; see their impls) */
#define LAYOUT_RULES(own, nm, n, ae, im, tr, bt, pk, pr, ...)                                                \
  const jx_rules jx_rules_##nm = {.name = #nm,                                                               \
                                  .nin = n,                                                                  \
                                  .nout = 1,                                                                 \
                                  .abstract_eval = ae,                                                       \
                                  .impl = im,                                                                \
                                  .impl_allocates = own,                                                     \
                                  .jvp = linear_jvp,                                                         \
                                  .transpose = tr,                                                           \
                                  .batch = bt,                                                               \
                                  .params_kind = pk,                                                         \
                                  .print_params = pr,                                                        \
                                  .lower = {.kind = __VA_ARGS__}};
#define LAYOUT(...)     LAYOUT_RULES(false, __VA_ARGS__)
#define LAYOUT_OWN(...) LAYOUT_RULES(true, __VA_ARGS__)
LAYOUT_OWN(reshape, 1, reshape_abstract, reshape_impl, reshape_transpose, reshape_batch, JX_PK_RESHAPE,
           reshape_print, JX_LOWER_RESHAPE)
LAYOUT(broadcast_in_dim, 1, bid_abstract, bid_impl, bid_transpose, bid_batch, JX_PK_BCAST, bid_print,
       JX_LOWER_LAYOUT, .index_map = bid_index)
LAYOUT(transpose, 1, transpose_abstract, transpose_impl, transpose_transpose, transpose_batch, JX_PK_PERM,
       transpose_print, JX_LOWER_LAYOUT, .index_map = transpose_index)
LAYOUT_OWN(slice, 1, slice_abstract, slice_impl, slice_transpose, slice_batch, JX_PK_SLICE, slice_print,
           JX_LOWER_LAYOUT, .index_map = slice_index)
LAYOUT(rev, 1, rev_abstract, rev_impl, rev_transpose, rev_batch, JX_PK_REV, rev_print, JX_LOWER_LAYOUT,
       .index_map = rev_index)
LAYOUT(pad, 2, pad_abstract, pad_impl, pad_transpose, pad_batch, JX_PK_PAD, pad_print, JX_LOWER_CALL)
LAYOUT(concatenate, -1, concat_abstract, concat_impl, concat_transpose, concat_batch, JX_PK_CONCAT,
       concat_print, JX_LOWER_CALL)
