/* Collectives over named axes: psum, pmax, pmin, all_gather, psum_scatter,
 * all_to_all, ppermute, axis_index. params.coll holds the axis names
 * inline and the member count (size), fixed when traced.
 *
 * impl: the devices of a pmap/shard_map run meet (dist/local.c); jit
 * lowers them as calls to that impl.
 * jvp/transpose: JAX's. psum is linear and its own transpose (pmap's
 * pbroadcast semantics: the cotangent of a replicated result is summed);
 * all_gather and psum_scatter transpose into each other; all_to_all into
 * the one with its axes swapped; ppermute into the inverse permutation.
 * batch: under a vmap whose axis is not named, a collective acts per
 * example; under a named vmap (jx_vmap_named) over one of its axes, the
 * batch dim IS that axis, so the rule computes the collective over it
 * (psum: a sum over the batch dim, unmapped after, bf16/f16 member by
 * member as the devices add; all_gather: the batch moved to the gathered
 * position ...). */
#include "prims/collectives.h"
#include "dist/local.h"
#include "prims/lax.h"
#include "prims/prims.h"
#include "trace/trace.h"

#include <stdio.h>

static bool names_has(const jx_params *p, const char *name, int *which) {
  for (int k = 0; k < p->coll.nnames; k++)
    if (!strcmp(p->coll.names[k], name)) {
      if (which) *which = k;
      return true;
    }
  return false;
}

bool jx_coll_names_axis(const jx_params *p, const char *name) {
  return p->kind == JX_PK_COLL && names_has(p, name, NULL);
}

/* x raised into the innermost named vmap that binds one of p's axes, if x
 * is not already at or above it: an unmapped value still takes part in
 * that vmap's collective (psum of a replicated value is n times it). */
static jx_t lift(jx_t x, const jx_params *p) {
  jx_trace *best = NULL;
  for (int k = 0; k < p->coll.nnames; k++) {
    const jx_axis_frame *f = jx_axis_find(p->coll.names[k]);
    if (f && f->batch && f->batch->active && (!best || f->batch->level > best->level)) best = f->batch;
  }
  if (!best || !jx_ok(x)) return x;
  if (jx_is_tracer(x) && x->u.tr.trace->level >= best->level) return x;
  return jx_batch_tracer(best, x, JX_NONE);
}

jx_t jx_coll_bind(jx_prim p, jx_t x, const jx_params *pa) {
  if (p == JX_P_axis_index) return jx_bind1(p, 0, NULL, pa);
  x = lift(x, pa);
  return jx_bind1(p, 1, &x, pa);
}

/* ------------------------------------------------------------ abstract */
/* Every dtype (#19's included): the moves copy bytes by element size, the
 * reductions fold in the type (dist/fold.h: integer sums wrap, bf16/f16
 * sums round to the type after each member); only a bool sum is refused. */
static jx_t check_names(jx_prim p, const jx_aval *in, int nin, const jx_params *pa) {
  if (pa->coll.nnames < 1 || pa->coll.size < 1)
    return jx_rule_error(jx_prim_names[p], in, nin, "no axis name, or no members");
  bool multi = p == JX_P_psum || p == JX_P_pmax || p == JX_P_pmin || p == JX_P_axis_index;
  if (pa->coll.nnames > 1 && !multi)
    return jx_rule_error(jx_prim_names[p], in, nin, "takes one axis name, got %d", pa->coll.nnames);
  if (nin == 1 && in[0].dtype == JX_BOOL && (p == JX_P_psum || p == JX_P_psum_scatter))
    return jx_rule_error(jx_prim_names[p], in, nin, "sum of bool: convert to an integer dtype first");
  return NULL;
}

static jx_t dim_error(jx_prim p, const jx_aval *in, const jx_params *pa, const char *what, int64_t v) {
  return jx_rule_error(jx_prim_names[p], in, 1, "over axis '%s' (%lld members): %s %lld", pa->coll.names[0],
                       (long long)pa->coll.size, what, (long long)v);
}

static jx_t gather_abstract(jx_prim p, const jx_aval *in, const jx_params *pa, jx_aval *o) {
  int a = pa->coll.axis, r = in->ndim;
  if (a < 0 || a > r - pa->coll.tiled) return dim_error(p, in, pa, "axis out of range:", a);
  if (!pa->coll.tiled) {
    if (r + 1 > JX_MAX_RANK) return dim_error(p, in, pa, "result rank exceeds", JX_MAX_RANK);
    memmove(o->shape + a + 1, o->shape + a, sizeof(int64_t) * (size_t)(r - a));
    o->shape[a] = pa->coll.size, o->ndim++;
  } else {
    o->shape[a] *= pa->coll.size;
  }
  return NULL;
}

/* dim d of in splits into size blocks (tiled) or is size long (untiled) */
static jx_t split_check(jx_prim p, const jx_aval *in, const jx_params *pa, int d) {
  if (d < 0 || d >= in->ndim) return dim_error(p, in, pa, "axis out of range:", d);
  int64_t n = pa->coll.size, s = in->shape[d];
  if (pa->coll.tiled ? s % n != 0 : s != n)
    return dim_error(p, in, pa,
                     pa->coll.tiled ? "the split dim's size must divide evenly, got"
                                    : "the split dim's size must equal the member count, got",
                     s);
  return NULL;
}

static jx_t remove_dim(jx_aval *o, int d) {
  memmove(o->shape + d, o->shape + d + 1, sizeof(int64_t) * (size_t)(o->ndim - d - 1));
  o->ndim--;
  return NULL;
}

static jx_t alltoall_abstract(jx_prim p, const jx_aval *in, const jx_params *pa, jx_aval *o) {
  int sa = pa->coll.axis, ca = pa->coll.axis2;
  jx_t e = split_check(p, in, pa, sa);
  if (e) return e;
  if (ca < 0 || ca >= in->ndim) return dim_error(p, in, pa, "concat_axis out of range:", ca);
  if (pa->coll.tiled) {
    o->shape[sa] /= pa->coll.size;
    o->shape[ca] *= pa->coll.size;
    return NULL;
  }
  remove_dim(o, sa);
  memmove(o->shape + ca + 1, o->shape + ca, sizeof(int64_t) * (size_t)(o->ndim - ca));
  o->shape[ca] = pa->coll.size, o->ndim++;
  return NULL;
}

static jx_t perm_check(jx_prim p, const jx_aval *in, const jx_params *pa) {
  bool seen[JX_COLL_MAX_PERM] = {0};
  if (pa->coll.size > JX_COLL_MAX_PERM) return dim_error(p, in, pa, "at most 64 members, got", pa->coll.size);
  for (int s = 0; s < JX_COLL_MAX_PERM; s++) {
    int d = pa->coll.perm[s];
    if (d < 0) continue;
    if (s >= pa->coll.size || d >= pa->coll.size)
      return dim_error(p, in, pa, "a pair names a member out of range:", s >= pa->coll.size ? s : d);
    if (seen[d]) return dim_error(p, in, pa, "two sources send to member", d);
    seen[d] = true;
  }
  return NULL;
}

static jx_t coll_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  jx_t e = check_names(p, in, nin, pa);
  if (e) return e;
  if (p == JX_P_axis_index) {
    out[0] = (jx_aval){.dtype = JX_I32};
    return NULL;
  }
  out[0] = in[0];
  out[0].weak = in[0].weak;
  switch (p) {
    case JX_P_all_gather: return gather_abstract(p, in, pa, out);
    case JX_P_psum_scatter:
      e = split_check(p, in, pa, pa->coll.axis);
      if (e) return e;
      if (pa->coll.tiled)
        out[0].shape[pa->coll.axis] /= pa->coll.size;
      else
        remove_dim(out, pa->coll.axis);
      return NULL;
    case JX_P_all_to_all: return alltoall_abstract(p, in, pa, out);
    case JX_P_ppermute: return perm_check(p, in, pa);
    default: return NULL;
  }
}

static jx_t coll_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)nin;
  return jx_coll_run(p, pa, in, out[0]);
}

/* ----------------------------------------------------------------- jvp */
static jx_t linear_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                       jx_t *tout) {
  (void)nin;
  out[0] = jx_coll_bind(p, x[0], pa);
  tout[0] = t[0] ? jx_coll_bind(p, t[0], pa) : NULL;
  return jx_ok(out[0]) ? (tout[0] && !jx_ok(tout[0]) ? tout[0] : NULL) : out[0];
}

/* pmax/pmin: the tangent of the members holding the extreme, averaged
 * over ties (as reduce_max's jvp) */
static jx_t extreme_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                        jx_t *tout) {
  (void)nin;
  out[0] = jx_coll_bind(p, x[0], pa);
  tout[0] = NULL;
  if (!jx_ok(out[0]) || !t[0] || !jx_dtype_is_float(x[0]->aval.dtype)) return jx_ok(out[0]) ? NULL : out[0];
  jx_dtype dt = x[0]->aval.dtype;
  jx_t hit = jx_lax_convert(jx_lax_binary(JX_P_eq, x[0], out[0]), dt);
  jx_t num = jx_coll_bind(JX_P_psum, jx_lax_binary(JX_P_mul, t[0], hit), pa);
  tout[0] = jx_lax_binary(JX_P_div, num, jx_coll_bind(JX_P_psum, hit, pa));
  return jx_ok(tout[0]) ? NULL : tout[0];
}

/* ----------------------------------------------------------- transpose */
static jx_t coll_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                           const jx_params *pa, jx_t *cts) {
  (void)in, (void)av, (void)nin;
  cts[0] = NULL;
  if (!ct[0]) return NULL;
  jx_params q = *pa;
  jx_prim tp = p;
  switch (p) {
    case JX_P_all_gather: tp = JX_P_psum_scatter; break;
    case JX_P_psum_scatter: tp = JX_P_all_gather; break;
    case JX_P_all_to_all: q.coll.axis = pa->coll.axis2, q.coll.axis2 = pa->coll.axis; break;
    case JX_P_ppermute:
      memset(q.coll.perm, -1, sizeof q.coll.perm);
      for (int s = 0; s < JX_COLL_MAX_PERM; s++)
        if (pa->coll.perm[s] >= 0) q.coll.perm[pa->coll.perm[s]] = (int8_t)s;
      break;
    default: break; /* psum */
  }
  cts[0] = jx_coll_bind(tp, ct[0], &q);
  return jx_ok(cts[0]) ? NULL : cts[0];
}

/* --------------------------------------------------------------- batch */
/* The rule's axis when it is one of p's names (its index in *which and its
 * size in *n), else NULL: the collective is per example. */
static const char *named_here(const jx_params *pa, int *which, int64_t *n) {
  const char *name = jx_batch_rule_axis(n);
  return name[0] && names_has(pa, name, which) ? name : NULL;
}

/* per example: the collective on the batched value, its dims shifted past
 * the batch dim (moved to the front) */
static jx_t per_example(jx_prim p, jx_t x, int bd, const jx_params *pa, jx_t *out, int *obd) {
  if (p == JX_P_psum || p == JX_P_pmax || p == JX_P_pmin || p == JX_P_ppermute) {
    out[0] = jx_coll_bind(p, x, pa), obd[0] = bd;
  } else {
    jx_params q = *pa;
    q.coll.axis++, q.coll.axis2 += p == JX_P_all_to_all;
    out[0] = jx_coll_bind(p, jx_moveaxis(x, bd, 0), &q), obd[0] = 0;
  }
  return jx_ok(out[0]) ? NULL : out[0];
}

/* The sum over x's batch dim bd (n members; bd JX_NONE: x replicated n
 * times). bf16/f16: member after member, each add rounded to the type, as
 * the devices of a pmap add (dist/fold.h), so that a named vmap (and jit
 * of a pmap, staged as one) gives their bits; reduce_sum would add in f32
 * and round once. Other dtypes: reduce_sum, or x * n (integers wrap alike
 * in any order). */
static jx_t member_sum(jx_t x, int bd, int64_t n) {
  jx_dtype dt = x->aval.dtype;
  if (!jx_dtype_is_half(dt))
    return bd != JX_NONE ? jx_lax_reduce(JX_P_reduce_sum, x, 1, &bd)
                         : jx_lax_binary(JX_P_mul, x, jx_lax_const(dt, (double)n));
  int r = x->aval.ndim;
  int64_t lo[JX_MAX_RANK] = {0}, hi[JX_MAX_RANK], shape[JX_MAX_RANK];
  for (int i = 0, k = 0; i < r; i++) {
    hi[i] = x->aval.shape[i];
    if (i != bd) shape[k++] = x->aval.shape[i];
  }
  jx_t y = bd == JX_NONE ? x : NULL;
  for (int64_t j = bd == JX_NONE ? 1 : 0; j < n && (!y || jx_ok(y)); j++) {
    jx_t xj = x;
    if (bd != JX_NONE) {
      lo[bd] = j, hi[bd] = j + 1;
      xj = jx_lax_reshape(jx_lax_slice(x, lo, hi, NULL), r - 1, shape);
    }
    y = y ? jx_lax_binary(JX_P_add, y, xj) : xj;
  }
  return y;
}

static jx_t reduce_batch(jx_prim p, jx_t x, int bd, const jx_params *pa, int which, int64_t n, jx_t *out,
                         int *obd) {
  static const jx_prim red[] = {
      [JX_P_psum] = JX_P_reduce_sum, [JX_P_pmax] = JX_P_reduce_max, [JX_P_pmin] = JX_P_reduce_min};
  jx_t y;
  if (p == JX_P_psum)
    y = member_sum(x, bd, n);
  else /* pmax/pmin of a replicated value: itself */
    y = bd != JX_NONE ? jx_lax_reduce(red[p], x, 1, &bd) : x;
  if (pa->coll.nnames > 1) { /* then over the other names */
    jx_params q = *pa;
    for (int k = which; k < q.coll.nnames - 1; k++)
      memcpy(q.coll.names[k], q.coll.names[k + 1], JX_AXIS_NAME_CAP);
    memset(q.coll.names[--q.coll.nnames], 0, JX_AXIS_NAME_CAP);
    q.coll.size /= n;
    y = jx_coll_bind(p, y, &q);
  }
  out[0] = y, obd[0] = JX_NONE;
  return jx_ok(y) ? NULL : y;
}

/* x with dims d, d+1 merged (row-major) */
static jx_t merge_dims(jx_t x, int d) {
  int64_t s[JX_MAX_RANK];
  int r = x->aval.ndim;
  for (int i = 0, k = 0; i < r; i++)
    s[k++] = i == d ? x->aval.shape[i] * x->aval.shape[i + 1] : x->aval.shape[i + (i > d)];
  return jx_lax_reshape(x, r - 1, s);
}

/* x with dim d split into (n, size/n) */
static jx_t split_dim(jx_t x, int d, int64_t n) {
  int64_t s[JX_MAX_RANK];
  int r = x->aval.ndim;
  for (int i = 0, k = 0; i < r; i++) {
    if (i == d) {
      s[k++] = n, s[k++] = x->aval.shape[i] / n;
    } else {
      s[k++] = x->aval.shape[i];
    }
  }
  return jx_lax_reshape(x, r + 1, s);
}

/* untiled all_to_all over the batch (dim 0 of X, per-example rank r):
 * result[i] at per-example dim ca holds member j = X[j] at split dim sa = i */
static jx_t alltoall_over_batch(jx_t X, int sa, int ca) {
  int r = X->aval.ndim - 1, perm[JX_MAX_RANK], k = 0;
  perm[k++] = 1 + sa;
  for (int q = 0, next = 0; q < r; q++) {
    if (q == ca) {
      perm[k++] = 0;
      continue;
    }
    if (next == sa) next++;
    perm[k++] = 1 + next++;
  }
  return jx_lax_transpose(X, perm);
}

static jx_t ppermute_over_batch(jx_t X, const jx_params *pa, int64_t n) {
  int32_t src[JX_COLL_MAX_PERM];
  bool has[JX_COLL_MAX_PERM];
  for (int d = 0; d < n; d++) src[d] = 0, has[d] = false;
  for (int s = 0; s < n; s++)
    if (pa->coll.perm[s] >= 0) src[pa->coll.perm[s]] = s, has[pa->coll.perm[s]] = true;
  jx_t idx = jx_array(JX_I32, 1, &n, src), mask = jx_array(JX_BOOL, 1, &n, has);
  jx_t Y = jx_lax_gather(X, idx, 0);
  int zero = 0;
  jx_t m = jx_lax_broadcast_in_dim(mask, Y->aval.ndim, Y->aval.shape, &zero);
  return jx_lax_select(m, Y, jx_lax_zeros(&Y->aval));
}

static jx_t coll_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                       int *obd) {
  (void)nin;
  int which = 0;
  int64_t n = 0;
  jx_aval ex = in[0]->aval, res; /* the per-example type: the checks abstract eval would make */
  if (bd[0] != JX_NONE) remove_dim(&ex, bd[0]);
  jx_t err = jx_abstract_eval(p, &ex, 1, pa, 1, &res);
  if (err) return err;
  if (!named_here(pa, &which, &n)) return per_example(p, in[0], bd[0], pa, out, obd);
  if (p == JX_P_psum || p == JX_P_pmax || p == JX_P_pmin)
    return reduce_batch(p, in[0], bd[0], pa, which, n, out, obd);
  jx_t X = jx_batch_to_front(in[0], bd[0], n), y = NULL; /* [n, per-example dims] */
  int a = pa->coll.axis;
  obd[0] = JX_NONE;
  switch (p) {
    case JX_P_all_gather:
      y = jx_moveaxis(X, 0, a);
      if (pa->coll.tiled) y = merge_dims(y, a);
      break;
    case JX_P_psum_scatter: /* the sum, its blocks along dim a mapped over the batch */
      y = member_sum(X, 0, n);
      if (pa->coll.tiled) y = split_dim(y, a, n);
      obd[0] = a;
      break;
    case JX_P_all_to_all:
      if (pa->coll.tiled) {
        y = merge_dims(alltoall_over_batch(split_dim(X, 1 + a, n), a, pa->coll.axis2), 1 + pa->coll.axis2);
      } else {
        y = alltoall_over_batch(X, a, pa->coll.axis2);
      }
      obd[0] = 0;
      break;
    case JX_P_ppermute: y = ppermute_over_batch(X, pa, n), obd[0] = 0; break;
    default: y = jx_error_new("%s: no batching rule", jx_prim_names[p]);
  }
  out[0] = y;
  return jx_ok(y) ? NULL : y;
}

/* --------------------------------------------------------------- print */
static void coll_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  jx_strbuf_put(b, " axis_name=");
  if (pa->coll.nnames > 1) jx_strbuf_put(b, "(");
  for (int k = 0; k < pa->coll.nnames; k++) jx_strbuf_put(b, "%s%s", k ? ", " : "", pa->coll.names[k]);
  if (pa->coll.nnames > 1) jx_strbuf_put(b, ")");
  jx_strbuf_put(b, " axis_size=%lld", (long long)pa->coll.size);
}

static void axes_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  coll_print(b, pa, in, nin);
  jx_strbuf_put(b, " axis=%d tiled=%s", pa->coll.axis, pa->coll.tiled ? "True" : "False");
}

static void a2a_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  coll_print(b, pa, in, nin);
  jx_strbuf_put(b, " split_axis=%d concat_axis=%d tiled=%s", pa->coll.axis, pa->coll.axis2,
                pa->coll.tiled ? "True" : "False");
}

static void perm_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  coll_print(b, pa, in, nin);
  jx_strbuf_put(b, " perm=(");
  for (int s = 0, first = 1; s < JX_COLL_MAX_PERM; s++)
    if (pa->coll.perm[s] >= 0)
      jx_strbuf_put(b, "%s(%d, %d)", first ? "" : ", ", s, pa->coll.perm[s]), first = 0;
  jx_strbuf_put(b, ")");
}

/* psum, pmax and pmin take their input's buffer under jit when it is dead
 * (a gradient): one process's device then reduces in place (MPI_IN_PLACE:
 * no copy of the input into a new result first) */
#define COLL(nm, nin_, jvp_, tr_, batch_, print_, inplace_)                                                  \
  const jx_rules jx_rules_##nm = {.name = #nm,                                                               \
                                  .nin = nin_,                                                               \
                                  .nout = 1,                                                                 \
                                  .abstract_eval = coll_abstract,                                            \
                                  .impl = coll_impl,                                                         \
                                  .jvp = jvp_,                                                               \
                                  .transpose = tr_,                                                          \
                                  .batch = batch_,                                                           \
                                  .params_kind = JX_PK_COLL,                                                 \
                                  .print_params = print_,                                                    \
                                  .lower = {.kind = JX_LOWER_CALL, .inplace = inplace_}};
COLL(psum, 1, linear_jvp, coll_transpose, coll_batch, coll_print, true)
COLL(pmax, 1, extreme_jvp, NULL, coll_batch, coll_print, true)
COLL(pmin, 1, extreme_jvp, NULL, coll_batch, coll_print, true)
COLL(all_gather, 1, linear_jvp, coll_transpose, coll_batch, axes_print, false)
COLL(psum_scatter, 1, linear_jvp, coll_transpose, coll_batch, axes_print, false)
COLL(all_to_all, 1, linear_jvp, coll_transpose, coll_batch, a2a_print, false)
COLL(ppermute, 1, linear_jvp, coll_transpose, coll_batch, perm_print, false)
/* no inputs, so no vmap reaches its batch rule: under a named vmap the
 * public jx_axis_index gives the batch's iota itself (ops/collectives.c) */
COLL(axis_index, 0, NULL, NULL, NULL, coll_print, false)
