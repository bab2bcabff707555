/* while: while(cconsts, bconsts, carries) repeats carries = body(bconsts,
 * carries) while cond(cconsts, carries) is true. params (p->while_): the
 * two jaxprs and the counts of their constants.
 *
 * jvp carries (primal, tangent) through a jvp'd body (tangents for the
 * float carries); reverse mode is refused, as in JAX: the number of
 * iterations is not known ahead, so there is nothing to store residuals
 * in — use scan/fori_loop. Under vmap with a batched predicate the loop runs
 * until every lane is done, each lane keeping its own carries (a select). */
#include "control/derive.h"
#include "ir/loop.h"
#include "prims/prims.h"
#include "trace/trace.h"

static jx_t while_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  const jx_jaxpr *c = pa->while_.cond, *b = pa->while_.body;
  int ncc = pa->while_.ncconst, nbc = pa->while_.nbconst, n = nin - ncc - nbc;
  if (!c || !b || n < 0 || c->nin != ncc + n || b->nin != nbc + n || b->nout != n || c->nout != 1)
    return jx_rule_error(jx_prim_names[p], in, nin, "cond/body do not match the operands");
  for (int i = 0; i < n; i++)
    if (!jx_aval_eq(&in[ncc + nbc + i], &b->avals[b->outvars[i]]))
      return jx_rule_error(jx_prim_names[p], in, nin, "the body changes the type of carry %d", i);
  for (int i = 0; i < n; i++) out[i] = in[ncc + nbc + i];
  return NULL;
}

static jx_t while_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p;
  int ncc = pa->while_.ncconst, nbc = pa->while_.nbconst, n = nin - ncc - nbc;
  jx_t *ca = jx_malloc(sizeof(jx_t) * (size_t)(ncc + n + 1));
  jx_t *ba = jx_malloc(sizeof(jx_t) * (size_t)(nbc + n + 1));
  jx_t *carry = jx_calloc((size_t)(n + 1), sizeof(jx_t)); /* zeroed: released on error */
  jx_t err = ca && ba && carry ? NULL : jx_error_new("while: out of memory");
  for (int i = 0; !err && i < n; i++) carry[i] = jx_retain(in[ncc + nbc + i]);
  if (!err) memcpy(ca, in, sizeof(jx_t) * (size_t)ncc), memcpy(ba, in + ncc, sizeof(jx_t) * (size_t)nbc);
  /* each iteration's values live in a pool of their own; only the carries
   * survive (held by a reference) */
  size_t mark = jx_pool_mark();
  while (!err) {
    memcpy(ca + ncc, carry, sizeof(jx_t) * (size_t)n);
    jx_t pred;
    err = jx_call_jaxpr(pa->while_.cond, ca, &pred);
    if (err || !*(const uint8_t *)jx_data(pred)) break;
    memcpy(ba + nbc, carry, sizeof(jx_t) * (size_t)n);
    err = jx_call_jaxpr(pa->while_.body, ba, out);
    for (int i = 0; !err && i < n; i++) {
      jx_t next = jx_retain(out[i]);
      jx_release(carry[i]);
      carry[i] = next;
    }
    if (err) err = jx_retain(err);
    jx_pool_release_to(mark);
    if (err) err = jx_pool_own(err);
  }
  if (err) jx_retain(err);
  jx_pool_release_to(mark);
  if (err) err = jx_pool_own(err);
  err = jx_loop_give_carries(err, carry, n, out);
  for (int i = 0; err && i < n; i++) out[i] = err;
  jx_free(ca);
  jx_free(ba);
  jx_free(carry);
  return err;
}

static jx_t bind_while(jx_jaxpr *c, jx_jaxpr *b, int ncc, int nbc, int n, const jx_t *ins, jx_t *out) {
  jx_params q;
  jx_params_init(&q, JX_PK_WHILE);
  q.while_.cond = c, q.while_.body = b;
  q.while_.ncconst = ncc, q.while_.nbconst = nbc;
  return jx_bind(JX_P_while, ncc + nbc + n, ins, &q, n, out);
}

/* ------------------------------------------------------------------- jvp */
static jx_t while_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                      jx_t *tout) {
  (void)p;
  jx_jaxpr *cj = pa->while_.cond, *bj = pa->while_.body;
  int ncc = pa->while_.ncconst, nbc = pa->while_.nbconst, n = nin - ncc - nbc;
  int nb = nbc + n; /* body inputs */
  bool *nz = jx_calloc((size_t)(nb + 1), sizeof(bool)), *nzo = jx_calloc((size_t)(n + 1), sizeof(bool));
  jx_t *ins = jx_malloc(sizeof(jx_t) * (size_t)(2 * nin + 1));
  jx_aval *extra = jx_malloc(sizeof(jx_aval) * (size_t)(nin + 1));
  int *order = jx_malloc(sizeof(int) * (size_t)(2 * nin + 1));
  jx_t *o = jx_malloc(sizeof(jx_t) * (size_t)(2 * n + 1));
  jx_t err = nz && nzo && ins && extra && order && o ? NULL : jx_error_new("while: out of memory");
  jx_jaxpr *bd = NULL, *b2 = NULL, *c2 = NULL;
  /* tangents: body constants that have one; every float carry */
  int ntb = 0, ntc = 0;
  for (int i = 0; !err && i < nbc; i++) ntb += nz[i] = t[ncc + i] != NULL;
  for (int i = 0; !err && i < n; i++)
    ntc += nz[nbc + i] = nzo[i] = jx_dtype_is_float(x[ncc + nbc + i]->aval.dtype);
  /* jvp'd body: (bconsts, carries, tbconsts, tcarries) -> (carries, tcarries) */
  if (!err) bd = jx_derive_jvp(bj, nz, nzo, true, &err);
  /* the while's layout wants (bconsts, tbconsts, carries, tcarries) */
  if (bd) {
    int m = 0;
    for (int i = 0; i < nbc; i++) order[m++] = i;
    for (int i = 0; i < ntb; i++) order[m++] = nb + i;
    for (int i = 0; i < n; i++) order[m++] = nbc + i;
    for (int i = 0; i < ntc; i++) order[m++] = nb + ntb + i;
    b2 = jx_jaxpr_rebind(bd, m, order, NULL);
    /* cond ignores the tangents: (cconsts, carries, tcarries) */
    m = 0;
    for (int i = 0; i < ncc + n; i++) order[m++] = i;
    for (int i = 0, k = 0; i < n; i++)
      if (nzo[i]) extra[k] = x[ncc + nbc + i]->aval, order[m++] = -(++k);
    c2 = b2 ? jx_jaxpr_rebind(cj, m, order, extra) : NULL;
    if (!b2 || !c2) err = jx_error_new("while: out of memory");
  }
  if (!err) {
    int m = 0;
    for (int i = 0; i < ncc; i++) ins[m++] = x[i];
    for (int i = 0; i < nbc; i++) ins[m++] = x[ncc + i];
    for (int i = 0; i < nbc; i++)
      if (nz[i]) ins[m++] = t[ncc + i];
    for (int i = 0; i < n; i++) ins[m++] = x[ncc + nbc + i];
    for (int i = 0; i < n; i++)
      if (nzo[i]) ins[m++] = t[ncc + nbc + i] ? t[ncc + nbc + i] : jx_lax_zeros(&x[ncc + nbc + i]->aval);
    err = bind_while(c2, b2, ncc, nbc + ntb, n + ntc, ins, o);
  }
  for (int i = 0, k = n; !err && i < n; i++) {
    out[i] = o[i];
    tout[i] = nzo[i] ? o[k++] : NULL;
  }
  jx_jaxpr_release(bd);
  jx_jaxpr_release(b2);
  jx_jaxpr_release(c2);
  jx_free(nz), jx_free(nzo), jx_free(ins), jx_free(extra), jx_free(order), jx_free(o);
  return err;
}

static jx_t while_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                            const jx_params *pa, jx_t *cts) {
  (void)p, (void)ct, (void)in, (void)av, (void)nin, (void)pa, (void)cts;
  return jx_error_new("Reverse-mode differentiation does not work for while_loop (its trip count is not "
                      "known ahead, so nothing can be saved for the backward pass). Use jx_scan, or "
                      "jx_fori_loop with static bounds (it is a scan).");
}

/* ------------------------------------------------------------------ batch */
typedef struct {
  jx_jaxpr *cb, *bb; /* batched cond and body (all carries batched) */
  int ncc, nbc, n;
  bool body; /* building the body (else the cond) */
} wb_arg;

/* cond': any lane still running. body': step the lanes whose predicate
 * holds, keep the others. Inputs of both: (cconsts, [bconsts,] carries). */
static jx_t wb_trace(const void *arg, const jx_t *ins, jx_t *outs, int *nout) {
  const wb_arg *a = arg;
  const jx_t *cc = ins, *bc = ins + a->ncc, *carry = ins + a->ncc + (a->body ? a->nbc : 0);
  jx_t *ci = jx_malloc(sizeof(jx_t) * (size_t)(a->ncc + a->n + 1));
  jx_t *bi = jx_malloc(sizeof(jx_t) * (size_t)(a->nbc + a->n + 1));
  jx_t err = ci && bi ? NULL : jx_error_new("while: out of memory"), pred = NULL;
  if (!err) {
    memcpy(ci, cc, sizeof(jx_t) * (size_t)a->ncc);
    memcpy(ci + a->ncc, carry, sizeof(jx_t) * (size_t)a->n);
    err = jx_call_jaxpr(a->cb, ci, &pred); /* bool[B] */
  }
  if (!err && !a->body) {
    int ax = 0;
    outs[0] = jx_lax_reduce(JX_P_reduce_max, pred, 1, &ax);
    *nout = 1;
  } else if (!err) {
    memcpy(bi, bc, sizeof(jx_t) * (size_t)a->nbc);
    memcpy(bi + a->nbc, carry, sizeof(jx_t) * (size_t)a->n);
    err = jx_call_jaxpr(a->bb, bi, outs);
    for (int k = 0; !err && k < a->n; k++) {
      int r = carry[k]->aval.ndim;
      int64_t s[JX_MAX_RANK];
      s[0] = pred->aval.shape[0];
      for (int d = 1; d < r; d++) s[d] = 1;
      outs[k] = jx_lax_select(jx_lax_reshape(pred, r, s), outs[k], carry[k]);
    }
    *nout = a->n;
  }
  jx_free(ci);
  jx_free(bi);
  return err;
}

static jx_t while_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                        int *obd) {
  (void)p;
  int ncc = pa->while_.ncconst, nbc = pa->while_.nbconst, n = nin - ncc - nbc;
  int64_t size = jx_batch_size(in, bd, nin);
  bool *cm = jx_malloc(sizeof(bool) * (size_t)(ncc + n + 1)),
       *bm = jx_malloc(sizeof(bool) * (size_t)(nbc + n + 1));
  jx_t *ins = jx_malloc(sizeof(jx_t) * (size_t)(2 * ncc + nbc + n + 1));
  jx_aval *av = jx_malloc(sizeof(jx_aval) * (size_t)(2 * ncc + nbc + n + 1));
  jx_t err = cm && bm && ins && av ? NULL : jx_error_new("while: out of memory");
  jx_jaxpr *cb = NULL, *bb = NULL, *c2 = NULL, *b2 = NULL;
  /* constants keep their batching; every carry is batched */
  int m = 0;
  for (int i = 0; !err && i < ncc; i++)
    cm[i] = bd[i] != JX_NONE, ins[m++] = cm[i] ? jx_moveaxis(in[i], bd[i], 0) : in[i];
  for (int i = 0; !err && i < nbc; i++)
    bm[i] = bd[ncc + i] != JX_NONE, ins[m++] = bm[i] ? jx_moveaxis(in[ncc + i], bd[ncc + i], 0) : in[ncc + i];
  for (int i = 0; !err && i < n; i++)
    cm[ncc + i] = bm[nbc + i] = true,
             ins[m++] = jx_batch_to_front(in[ncc + nbc + i], bd[ncc + nbc + i], size);
  if (!err) cb = jx_derive_batch(pa->while_.cond, cm, size, &err);
  if (cb) bb = jx_derive_batch(pa->while_.body, bm, size, &err);
  if (bb) {
    for (int i = 0; i < m; i++) av[i] = ins[i]->aval;
    wb_arg a = {cb, bb, ncc, nbc, n, false};
    /* cond' inputs: (cconsts, carries) */
    jx_aval *cav = jx_malloc(sizeof(jx_aval) * (size_t)(ncc + n + 1));
    if (cav) {
      memcpy(cav, av, sizeof(jx_aval) * (size_t)ncc);
      memcpy(cav + ncc, av + ncc + nbc, sizeof(jx_aval) * (size_t)n);
      c2 = jx_trace_jaxpr(ncc + n, cav, 1, wb_trace, &a, &err);
      jx_free(cav);
    }
    a.body = true; /* body' inputs: (cconsts, bconsts, carries) */
    if (c2) b2 = jx_trace_jaxpr(ncc + nbc + n, av, n, wb_trace, &a, &err);
    if (!c2 && !err) err = jx_error_new("while: out of memory");
  }
  if (b2) { /* the new body also reads the cond's constants */
    jx_t *ins2 = jx_malloc(sizeof(jx_t) * (size_t)(2 * ncc + nbc + n + 1));
    if (ins2) {
      memcpy(ins2, ins, sizeof(jx_t) * (size_t)ncc);
      memcpy(ins2 + ncc, ins, sizeof(jx_t) * (size_t)m);
      err = bind_while(c2, b2, ncc, ncc + nbc, n, ins2, out);
      jx_free(ins2);
    } else {
      err = jx_error_new("while: out of memory");
    }
  }
  for (int i = 0; i < n; i++) obd[i] = 0;
  jx_jaxpr_release(cb), jx_jaxpr_release(bb), jx_jaxpr_release(c2), jx_jaxpr_release(b2);
  jx_free(cm), jx_free(bm), jx_free(ins), jx_free(av);
  return err;
}

/* The LOOP kernel's counts (compile/fuse.c; ir/loop.h) */
static void while_loop_fields(const jx_params *pa, jx_lloop *l) {
  l->ncconst = pa->while_.ncconst, l->nbconst = pa->while_.nbconst;
}

const jx_rules jx_rules_while = {
    .name = "while",
    .nin = -1,
    .nout = -1,
    .abstract_eval = while_abstract,
    .impl = while_impl,
    .jvp = while_jvp,
    .transpose = while_transpose,
    .batch = while_batch,
    .impl_allocates = true,
    .params_kind = JX_PK_WHILE,
    .lower = {.kind = JX_LOWER_LOOP, .loop_fields = while_loop_fields, .loop = "while", .nbody = 2}};
