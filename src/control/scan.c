/* scan: scan(consts, carries, xs) runs the body jaxpr (sub) over the
 * leading axis of the xs: (consts, carries, x_i) -> (carries, y_i), and
 * returns (final carries, stacked ys). params (p->scan): the body, the
 * counts of consts and carries, the length, and whether it runs in
 * reverse order.
 *
 * Reverse mode follows JAX: jvp splits into a primal scan that also
 * emits each step's incoming carries (the residuals) and a tangent scan
 * that reads them as xs and is linear in its tangent carries; the
 * transpose of a linear scan is a scan in the other direction whose body
 * is the transposed step, accumulating cotangents of linear constants in
 * extra carries. The loop is never unrolled: the body is compiled once.
 *
 * A dyn scan (params scan.dyn; core.h) runs only its first n steps, n its
 * first constant: every rule keeps that constant first and known, so the
 * primal, tangent and transposed scans of a dyn scan are dyn scans of the
 * same n, and reverse mode costs what the steps taken cost. */
#include "control/derive.h"
#include "ir/loop.h"
#include "prims/prims.h"
#include "trace/trace.h"

#include <stdio.h>

static jx_t scan_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  const jx_jaxpr *b = pa->scan.body;
  int nc = pa->scan.nconst, ncar = pa->scan.ncarry, nx = nin - nc - ncar;
  if (!b || nx < 0 || b->nin != nin || b->nout < ncar || pa->scan.length < 0)
    return jx_rule_error(jx_prim_names[p], in, nin, "the body does not match the operands");
  if (pa->scan.dyn && (nc < 1 || in[0].ndim != 0 || (in[0].dtype != JX_I32 && in[0].dtype != JX_I64)))
    return jx_rule_error(jx_prim_names[p], in, nin, "a dyn scan's first constant must be an i32/i64 scalar");
  for (int i = 0; i < nx; i++) {
    const jx_aval *x = &in[nc + ncar + i];
    if (x->ndim < 1 || x->shape[0] != pa->scan.length)
      return jx_rule_error(jx_prim_names[p], in, nin, "xs %d must have leading dimension %lld", i,
                           (long long)pa->scan.length);
  }
  for (int k = 0; k < ncar; k++) {
    if (!jx_aval_eq(&in[nc + k], &b->avals[b->outvars[k]]))
      return jx_rule_error(jx_prim_names[p], in, nin, "the body changes the type of carry %d", k);
    out[k] = in[nc + k];
  }
  for (int k = ncar; k < b->nout; k++) {
    jx_aval y = b->avals[b->outvars[k]];
    if (y.ndim + 1 > JX_MAX_RANK)
      return jx_rule_error(jx_prim_names[p], in, nin, "stacked ys rank exceeds %d", JX_MAX_RANK);
    memmove(y.shape + 1, y.shape, sizeof(int64_t) * (size_t)y.ndim);
    y.shape[0] = pa->scan.length;
    y.ndim++;
    out[k] = y;
  }
  return NULL;
}

/* ------------------------------------------------------------------ impl */
/* the steps a scan runs: its length, or a dyn scan's n clamped to it */
static int64_t scan_steps(const jx_params *pa, const jx_t *in) {
  if (!pa->scan.dyn) return pa->scan.length;
  int64_t n =
      in[0]->aval.dtype == JX_I32 ? *(const int32_t *)jx_data(in[0]) : *(const int64_t *)jx_data(in[0]);
  return n < 0 ? 0 : n > pa->scan.length ? pa->scan.length : n;
}

static jx_t scan_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p;
  jx_jaxpr *b = pa->scan.body;
  int nc = pa->scan.nconst, ncar = pa->scan.ncarry, nx = nin - nc - ncar, ny = b->nout - ncar;
  int64_t L = pa->scan.length, n = scan_steps(pa, in);
  jx_t *args = jx_malloc(sizeof(jx_t) * (size_t)(nin + 1));
  jx_t *res = jx_malloc(sizeof(jx_t) * (size_t)(b->nout + 1));
  jx_t *carry = jx_calloc((size_t)(ncar + 1), sizeof(jx_t));
  struct jx_value *xv = jx_calloc((size_t)(nx + 1), sizeof(struct jx_value));
  jx_buffer *xb = jx_calloc((size_t)(nx + 1), sizeof(jx_buffer));
  jx_t err = args && res && carry && xv && xb ? NULL : jx_error_new("scan: out of memory");
  /* the stacked ys are written in place, step by step */
  for (int k = 0; !err && k < ny; k++) {
    jx_aval y = b->avals[b->outvars[ncar + k]];
    memmove(y.shape + 1, y.shape, sizeof(int64_t) * (size_t)y.ndim);
    y.shape[0] = L;
    y.ndim++;
    out[ncar + k] = jx_array_new(&y);
    if (!jx_ok(out[ncar + k])) {
      err = out[ncar + k];
    } else if (n < L) { /* the rows of the steps not taken */
      size_t row = (size_t)jx_aval_size(&y) / (size_t)L * jx_dtype_size(y.dtype);
      memset((char *)jx_data(out[ncar + k]) + (size_t)n * row, 0, (size_t)(L - n) * row);
    }
  }
  for (int i = 0; !err && i < ncar; i++) carry[i] = jx_retain(in[nc + i]);
  for (int i = 0; !err && i < nc; i++) args[i] = in[i];
  for (int i = 0; !err && i < nx; i++) { /* x_i: views into the xs */
    xv[i].kind = JX_VK_ARRAY;
    xv[i].aval = b->avals[b->invars[nc + ncar + i]];
    xv[i].u.arr.buf = &xb[i];
    /* neither the views nor their buffers are ever freed by a release:
     * whoever shares a buffer (a compiled body's call) retains and
     * releases it around its use */
    atomic_init(&xv[i].refs, 1 << 30);
    atomic_init(&xb[i].refs, 1 << 30);
    xb[i].borrowed = true;
    xb[i].nbytes = (size_t)jx_aval_size(&xv[i].aval) * jx_dtype_size(xv[i].aval.dtype);
    args[nc + ncar + i] = &xv[i];
  }
  size_t mark = jx_pool_mark();
  for (int64_t s = 0; !err && s < n; s++) {
    int64_t step = pa->scan.reverse ? n - 1 - s : s;
    for (int i = 0; i < nx; i++) {
      size_t sz = (size_t)jx_aval_size(&xv[i].aval) * jx_dtype_size(xv[i].aval.dtype);
      xb[i].data = (char *)jx_data(in[nc + ncar + i]) + (size_t)step * sz;
    }
    memcpy(args + nc, carry, sizeof(jx_t) * (size_t)ncar);
    err = jx_call_jaxpr(b, args, res);
    for (int k = 0; !err && k < ny; k++) {
      size_t sz = (size_t)jx_aval_size(&res[ncar + k]->aval) * jx_dtype_size(res[ncar + k]->aval.dtype);
      memcpy((char *)jx_data(out[ncar + k]) + (size_t)step * sz, jx_data(res[ncar + k]), sz);
    }
    for (int k = 0; !err && k < ncar; k++) {
      jx_t next = res[k];
      /* a carry that is an x slice (the view, or a value sharing its buffer): copy it out */
      bool is_view = jx_is_array(next) && next->u.arr.buf >= xb && next->u.arr.buf < xb + nx;
      if (is_view) {
        jx_t c = jx_array_new(&next->aval);
        if (!jx_ok(c)) {
          err = c;
          break;
        }
        memcpy(jx_data(c), jx_data(next),
               (size_t)jx_aval_size(&next->aval) * jx_dtype_size(next->aval.dtype));
        next = c;
      }
      jx_retain(next);
      jx_release(carry[k]);
      carry[k] = next;
    }
    if (err) jx_retain(err);
    jx_pool_release_to(mark);
    if (err) err = jx_pool_own(err);
  }
  err = jx_loop_give_carries(err, carry, ncar, out);
  if (err)
    for (int k = 0; k < b->nout; k++) out[k] = err;
  jx_free(args), jx_free(res), jx_free(carry), jx_free(xv), jx_free(xb);
  return err;
}

/* a scan of body b with pa's length and dyn */
static jx_t bind_scan(jx_jaxpr *b, int nc, int ncar, const jx_params *pa, bool rev, int nin, const jx_t *ins,
                      jx_t *out) {
  jx_params q;
  jx_params_init(&q, JX_PK_SCAN);
  q.scan.body = b;
  q.scan.nconst = nc, q.scan.ncarry = ncar, q.scan.length = pa->scan.length;
  q.scan.reverse = rev, q.scan.dyn = pa->scan.dyn;
  return jx_bind(JX_P_scan, nin, ins, &q, b->nout, out);
}

/* ------------------------------------------------------------------- jvp */
/* the body, also emitting its incoming carries as extra ys (residuals) */
typedef struct {
  jx_jaxpr *b;
  int nc, ncar;
} res_arg;
static jx_t res_trace(const void *arg, const jx_t *ins, jx_t *outs, int *nout) {
  const res_arg *a = arg;
  /* inlined, not a jit_call of b: the result is cached on b, and a
   * reference back to b would be a cycle */
  jx_t err = jx_eval_jaxpr(a->b, ins, outs);
  for (int k = 0; k < a->ncar; k++) outs[a->b->nout + k] = ins[a->nc + k];
  *nout = a->b->nout + a->ncar;
  return err;
}
static jx_jaxpr *make_res(jx_jaxpr *b, const void *arg, jx_t *err) {
  jx_aval *av = jx_malloc(sizeof(jx_aval) * (size_t)(b->nin + 1));
  if (!av) return *err = jx_error_new("scan: out of memory"), NULL;
  for (int i = 0; i < b->nin; i++) av[i] = b->avals[b->invars[i]];
  jx_jaxpr *r = jx_trace_jaxpr(b->nin, av, b->nout + ((const res_arg *)arg)->ncar, res_trace, arg, err);
  jx_free(av);
  return r;
}

static jx_t scan_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                     jx_t *tout) {
  (void)p;
  jx_jaxpr *b = pa->scan.body;
  int nc = pa->scan.nconst, ncar = pa->scan.ncarry, nx = nin - nc - ncar, ny = b->nout - ncar;
  bool *nz = jx_calloc((size_t)(nin + 1), sizeof(bool)),
       *nzo = jx_calloc((size_t)(b->nout + 1), sizeof(bool));
  int *order = jx_malloc(sizeof(int) * (size_t)(2 * nin + 1));
  jx_t *ins = jx_malloc(sizeof(jx_t) * (size_t)(3 * nin + 1));
  jx_t *o = jx_malloc(sizeof(jx_t) * (size_t)(b->nout + ncar + 1));
  jx_t err = nz && nzo && order && ins && o ? NULL : jx_error_new("scan: out of memory");
  jx_jaxpr *rb = NULL, *bd = NULL, *bt = NULL;
  /* 1. primal scan, with the residual carries */
  char key[64];
  snprintf(key, sizeof key, "scan-res:%d:%d", nc, ncar);
  res_arg ra = {b, nc, ncar};
  if (!err) rb = jx_derive_cached(b, key, make_res, &ra, &err);
  if (rb) err = bind_scan(rb, nc, ncar, pa, pa->scan.reverse, nin, x, o);
  for (int k = 0; !err && k < b->nout; k++) out[k] = o[k];
  /* 2. tangent scan: consts (consts, tconsts), carries (tcarries),
   *    xs (residual carries, xs, txs) */
  int ntc = 0, ntcar = 0, ntx = 0;
  for (int i = 0; !err && i < nc; i++) ntc += nz[i] = t[i] != NULL && !(pa->scan.dyn && i == 0);
  for (int i = 0; !err && i < ncar; i++)
    ntcar += nz[nc + i] = nzo[i] = jx_dtype_is_float(x[nc + i]->aval.dtype);
  for (int i = 0; !err && i < nx; i++) ntx += nz[nc + ncar + i] = t[nc + ncar + i] != NULL;
  for (int k = 0; !err && k < ny; k++) nzo[ncar + k] = true;
  if (!err) bd = jx_derive_jvp(b, nz, nzo, false, &err); /* (consts, carries, xs, tc, tcar, tx) */
  if (bd) {
    int m = 0;
    for (int i = 0; i < nc; i++) order[m++] = i;
    for (int i = 0; i < ntc; i++) order[m++] = nin + i;
    for (int i = 0; i < ntcar; i++) order[m++] = nin + ntc + i;
    for (int i = 0; i < ncar; i++) order[m++] = nc + i;
    for (int i = 0; i < nx; i++) order[m++] = nc + ncar + i;
    for (int i = 0; i < ntx; i++) order[m++] = nin + ntc + ntcar + i;
    bt = jx_jaxpr_rebind(bd, m, order, NULL);
    if (!bt) err = jx_error_new("scan: out of memory");
  }
  if (bt) {
    int m = 0;
    for (int i = 0; i < nc; i++) ins[m++] = x[i];
    for (int i = 0; i < nc; i++)
      if (nz[i]) ins[m++] = t[i];
    for (int i = 0; i < ncar; i++)
      if (nzo[i]) ins[m++] = t[nc + i] ? t[nc + i] : jx_lax_zeros(&x[nc + i]->aval);
    for (int i = 0; i < ncar; i++) ins[m++] = o[b->nout + i]; /* residual carries */
    for (int i = 0; i < nx; i++) ins[m++] = x[nc + ncar + i];
    for (int i = 0; i < nx; i++)
      if (nz[nc + ncar + i]) ins[m++] = t[nc + ncar + i];
    jx_t *to = o; /* reuse: tangent outputs (tcarries, tys) */
    err = bind_scan(bt, nc + ntc, ntcar, pa, pa->scan.reverse, m, ins, to);
    for (int k = 0, j = 0; !err && k < ncar; k++) tout[k] = nzo[k] ? to[j++] : NULL;
    for (int k = 0; !err && k < ny; k++) tout[ncar + k] = to[ntcar + k];
  }
  jx_jaxpr_release(rb), jx_jaxpr_release(bd), jx_jaxpr_release(bt);
  jx_free(nz), jx_free(nzo), jx_free(order), jx_free(ins), jx_free(o);
  return err;
}

/* ------------------------------------------------------------- transpose */
typedef struct {
  jx_jaxpr *b;
  int nc, ncar, nx;
  const bool *lin; /* over the body's inputs (consts, carries, xs) */
} tr_arg;

/* body_T(kconsts, ct_carries, acc, kx_i, ct_y_i) -> (ct_carries_in, acc', ct_lx_i) */
static jx_t tr_trace(const void *arg, const jx_t *ins, jx_t *outs, int *nout) {
  const tr_arg *a = arg;
  jx_jaxpr *b = a->b;
  int n = b->nin, ny = b->nout - a->ncar;
  jx_t *known = jx_calloc((size_t)(n + 1), sizeof(jx_t)), *cin = jx_calloc((size_t)(n + 1), sizeof(jx_t));
  jx_t *cto = jx_malloc(sizeof(jx_t) * (size_t)(b->nout + 1));
  jx_t err = known && cin && cto ? NULL : jx_error_new("scan: out of memory");
  int m = 0, nlc = 0;
  for (int i = 0; i < a->nc; i++)
    if (a->lin[i])
      nlc++;
    else if (!err)
      known[i] = ins[m++];
    else
      m++;
  const jx_t *ctc = ins + m, *acc = ins + m + a->ncar;
  m += a->ncar + nlc;
  for (int i = 0; !err && i < a->nx; i++)
    if (!a->lin[a->nc + a->ncar + i]) known[a->nc + a->ncar + i] = ins[m++];
  const jx_t *cty = ins + m;
  for (int k = 0; !err && k < a->ncar; k++) cto[k] = ctc[k];
  for (int k = 0; !err && k < ny; k++) cto[a->ncar + k] = cty[k];
  if (!err) err = jx_backward_pass_known(b, known, cto, cin);
  int o = 0;
  for (int k = 0; !err && k < a->ncar; k++) outs[o++] = cin[a->nc + k];
  for (int i = 0, j = 0; !err && i < a->nc; i++)
    if (a->lin[i]) outs[o++] = jx_lax_binary(JX_P_add, acc[j++], cin[i]);
  for (int i = 0; !err && i < a->nx; i++)
    if (a->lin[a->nc + a->ncar + i]) outs[o++] = cin[a->nc + a->ncar + i];
  *nout = o;
  jx_free(known), jx_free(cin), jx_free(cto);
  return err;
}

static jx_jaxpr *make_tr(jx_jaxpr *b, const void *arg, jx_t *err) {
  const tr_arg *a = arg;
  int ny = b->nout - a->ncar;
  jx_aval *av = jx_malloc(sizeof(jx_aval) * (size_t)(b->nin + a->ncar + a->nc + ny + 1));
  if (!av) return *err = jx_error_new("scan: out of memory"), NULL;
  int m = 0;
  for (int i = 0; i < a->nc; i++)
    if (!a->lin[i]) av[m++] = b->avals[b->invars[i]];
  for (int k = 0; k < a->ncar; k++) av[m++] = b->avals[b->invars[a->nc + k]];
  for (int i = 0; i < a->nc; i++)
    if (a->lin[i]) av[m++] = b->avals[b->invars[i]];
  for (int i = 0; i < a->nx; i++)
    if (!a->lin[a->nc + a->ncar + i]) av[m++] = b->avals[b->invars[a->nc + a->ncar + i]];
  for (int k = 0; k < ny; k++) av[m++] = b->avals[b->outvars[a->ncar + k]];
  jx_jaxpr *r = jx_trace_jaxpr(m, av, b->nin, tr_trace, a, err);
  jx_free(av);
  return r;
}

static jx_t scan_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                           const jx_params *pa, jx_t *cts) {
  (void)p;
  jx_jaxpr *b = pa->scan.body;
  int nc = pa->scan.nconst, ncar = pa->scan.ncarry, nx = nin - nc - ncar, ny = b->nout - ncar;
  /* Every carry is transposed as linear: a carry given as a known value
   * here is a tangent that happens to be a constant (a materialized zero),
   * whose cotangent is simply not returned. */
  bool *lin = jx_malloc(sizeof(bool) * (size_t)(nin + 1));
  jx_t *ins = jx_malloc(sizeof(jx_t) * (size_t)(nin + ncar + nc + ny + 1));
  jx_t *o = jx_malloc(sizeof(jx_t) * (size_t)(nin + 1));
  jx_t err = lin && ins && o ? NULL : jx_error_new("scan: out of memory");
  int nlc = 0, nkc = 0, nkx = 0;
  for (int i = 0; !err && i < nin; i++) lin[i] = in[i] == NULL || (i >= nc && i < nc + ncar);
  if (!err && pa->scan.dyn && lin[0])
    err = jx_error_new("scan: transpose: a dyn scan's step count is unknown");
  for (int i = 0; !err && i < nc; i++) nlc += lin[i], nkc += !lin[i];
  for (int i = 0; !err && i < nx; i++) nkx += !lin[nc + ncar + i];
  char key[128];
  if (!err) jx_mask_key(key, sizeof key, "scanT", lin, nin);
  tr_arg a = {b, nc, ncar, nx, lin};
  jx_jaxpr *bt = err ? NULL : jx_derive_cached(b, key, make_tr, &a, &err);
  if (bt) {
    int m = 0;
    for (int i = 0; i < nc; i++)
      if (!lin[i]) ins[m++] = in[i];
    for (int k = 0; k < ncar; k++) ins[m++] = ct[k] ? ct[k] : jx_lax_zeros(&av[nc + k]);
    for (int i = 0; i < nc; i++)
      if (lin[i]) ins[m++] = jx_lax_zeros(&av[i]);
    for (int i = 0; i < nx; i++)
      if (!lin[nc + ncar + i]) ins[m++] = in[nc + ncar + i];
    for (int k = 0; k < ny; k++) { /* cotangents of the stacked ys */
      jx_aval ys = b->avals[b->outvars[ncar + k]];
      memmove(ys.shape + 1, ys.shape, sizeof(int64_t) * (size_t)ys.ndim);
      ys.shape[0] = pa->scan.length, ys.ndim++;
      ins[m++] = ct[ncar + k] ? ct[ncar + k] : jx_lax_zeros(&ys);
    }
    err = bind_scan(bt, nkc, ncar + nlc, pa, !pa->scan.reverse, m, ins, o);
    int r = 0;
    for (int k = 0; !err && k < ncar; k++, r++)
      if (!in[nc + k]) cts[nc + k] = o[r];
    for (int i = 0; !err && i < nc; i++)
      if (lin[i]) cts[i] = o[r++];
    for (int i = 0; !err && i < nx; i++)
      if (lin[nc + ncar + i]) cts[nc + ncar + i] = o[r++];
  }
  (void)nkx;
  jx_jaxpr_release(bt);
  jx_free(lin), jx_free(ins), jx_free(o);
  return err;
}

/* ----------------------------------------------------------------- batch */
/* A dyn scan whose step count is batched gives each member its own n: it
 * runs max(n) steps of a guarded body (nmax, n, consts, carries, xs, i),
 * in which a member past its n passes its carries through and writes zero
 * rows, as its own scan would. */
typedef struct {
  jx_jaxpr *b;
  int nc, ncar;
} guard_arg;

static jx_t guard_trace(const void *arg, const jx_t *ins, jx_t *outs, int *nout) {
  const guard_arg *g = arg;
  jx_jaxpr *b = g->b;
  jx_t *res = jx_malloc(sizeof(jx_t) * (size_t)(b->nout + 1));
  if (!res) return jx_error_new("scan: out of memory");
  jx_t err = jx_eval_jaxpr(b, ins + 1, res); /* inlined: see res_trace */
  jx_t live = jx_lax_binary(JX_P_lt, ins[1 + b->nin], ins[1]);
  for (int k = 0; !err && k < b->nout; k++) {
    jx_aval a = b->avals[b->outvars[k]];
    jx_t keep = k < g->ncar ? ins[1 + g->nc + k] : jx_lax_zeros(&a);
    a.dtype = JX_BOOL, a.weak = false;
    outs[k] = jx_lax_select(jx_lax_broadcast_to_aval(live, &a), res[k], keep);
  }
  *nout = b->nout;
  jx_free(res);
  return err;
}

static jx_jaxpr *make_guard(jx_jaxpr *b, const void *arg, jx_t *err) {
  jx_aval *av = jx_malloc(sizeof(jx_aval) * (size_t)(b->nin + 2));
  if (!av) return *err = jx_error_new("scan: out of memory"), NULL;
  av[0] = b->avals[b->invars[0]]; /* nmax */
  for (int i = 0; i < b->nin; i++) av[1 + i] = b->avals[b->invars[i]];
  av[1 + b->nin] = av[0]; /* the step index */
  jx_jaxpr *r = jx_trace_jaxpr(b->nin + 2, av, b->nout, guard_trace, arg, err);
  jx_free(av);
  return r;
}

static jx_t scan_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                       int *obd);

static jx_t scan_batch_dyn(const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out, int *obd) {
  jx_jaxpr *b = pa->scan.body;
  guard_arg g = {b, pa->scan.nconst, pa->scan.ncarry};
  jx_t *ins = jx_malloc(sizeof(jx_t) * (size_t)(nin + 2));
  int *bd2 = jx_malloc(sizeof(int) * (size_t)(nin + 2));
  jx_t err = ins && bd2 ? NULL : jx_error_new("scan: out of memory");
  char key[64];
  snprintf(key, sizeof key, "scan-dyn-guard:%d:%d", g.nc, g.ncar);
  jx_jaxpr *gb = err ? NULL : jx_derive_cached(b, key, make_guard, &g, &err);
  if (gb) {
    jx_dtype dt = in[0]->aval.dtype;
    ins[0] = jx_lax_reduce(JX_P_reduce_max, in[0], 1, (int[]){0}), bd2[0] = JX_NONE;
    for (int i = 0; i < nin; i++) ins[1 + i] = in[i], bd2[1 + i] = bd[i];
    ins[1 + nin] = jx_lax_iota(dt, 1, (int64_t[]){pa->scan.length}, 0), bd2[1 + nin] = JX_NONE;
    jx_params q = *pa;
    q.scan.body = gb, q.scan.nconst = pa->scan.nconst + 1;
    err = jx_first_error(nin + 2, ins);
    if (!err) err = scan_batch(JX_P_scan, ins, bd2, nin + 2, &q, out, obd);
  }
  jx_jaxpr_release(gb);
  jx_free(ins), jx_free(bd2);
  return err;
}

static jx_t scan_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                       int *obd) {
  (void)p;
  if (pa->scan.dyn && bd[0] != JX_NONE) return scan_batch_dyn(in, bd, nin, pa, out, obd);
  jx_jaxpr *b = pa->scan.body;
  int nc = pa->scan.nconst, ncar = pa->scan.ncarry;
  int64_t size = jx_batch_size(in, bd, nin);
  bool *batched = jx_malloc(sizeof(bool) * (size_t)(nin + 1));
  jx_t *ins = jx_malloc(sizeof(jx_t) * (size_t)(nin + 1));
  jx_t err = batched && ins ? NULL : jx_error_new("scan: out of memory");
  for (int i = 0; !err && i < nin; i++) {
    bool carry = i >= nc && i < nc + ncar, x = i >= nc + ncar;
    batched[i] = carry || bd[i] != JX_NONE; /* every carry is batched */
    if (carry)
      ins[i] = jx_batch_to_front(in[i], bd[i], size);
    else if (bd[i] == JX_NONE)
      ins[i] = in[i];
    else
      ins[i] = jx_moveaxis(in[i], bd[i], x ? 1 : 0); /* xs: the scanned axis stays first */
  }
  jx_jaxpr *bb = err ? NULL : jx_derive_batch(b, batched, size, &err);
  if (bb) err = bind_scan(bb, nc, ncar, pa, pa->scan.reverse, nin, ins, out);
  for (int k = 0; k < b->nout; k++) obd[k] = k < ncar ? 0 : 1;
  jx_jaxpr_release(bb);
  jx_free(batched), jx_free(ins);
  return err;
}

/* The LOOP kernel's counts (compile/fuse.c; ir/loop.h) */
static void scan_loop_fields(const jx_params *pa, jx_lloop *l) {
  l->nconst = pa->scan.nconst, l->ncarry = pa->scan.ncarry;
  l->length = pa->scan.length, l->reverse = pa->scan.reverse, l->dyn = pa->scan.dyn;
}

const jx_rules jx_rules_scan = {
    .name = "scan",
    .nin = -1,
    .nout = -1,
    .abstract_eval = scan_abstract,
    .impl = scan_impl,
    .jvp = scan_jvp,
    .transpose = scan_transpose,
    .batch = scan_batch,
    .impl_allocates = true,
    .params_kind = JX_PK_SCAN,
    .lower = {.kind = JX_LOWER_LOOP, .loop_fields = scan_loop_fields, .loop = "scan", .nbody = 1}};
