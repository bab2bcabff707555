/* cond: cond(pred, ops...) runs jaxpr sub (pred true) or sub2 (false).
 * Both branches take every operand (the API hoists each branch's
 * constants into operands and widens both to the same inputs) and return
 * the same types.
 *
 * jvp splits like jit_call: the primal is cond itself, the tangents a cond
 * of the branches' tangent jaxprs (linear in the tangents, so linearize
 * keeps the primal known); transpose is a cond of the transposed branches;
 * with a batched predicate both branches run and a select picks per lane. */
#include "control/derive.h"
#include "prims/prims.h"
#include "trace/trace.h"

static jx_t cond_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  const jx_jaxpr *t = pa->sub, *f = pa->sub2;
  if (in[0].dtype != JX_BOOL || in[0].ndim != 0)
    return jx_rule_error(jx_prim_names[p], in, 1, "the predicate must be a bool scalar");
  if (!t || !f || t->nin != nin - 1 || f->nin != nin - 1 || t->nout != f->nout)
    return jx_rule_error(jx_prim_names[p], in, nin, "branches do not match the operands");
  for (int i = 1; i < nin; i++)
    if (!jx_aval_eq(&in[i], &t->avals[t->invars[i - 1]]))
      return jx_rule_error(jx_prim_names[p], in, nin, "operand %d does not match the branches", i - 1);
  for (int k = 0; k < t->nout; k++) out[k] = t->avals[t->outvars[k]];
  return NULL;
}

static jx_t cond_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin;
  bool pred = *(const uint8_t *)jx_data(in[0]) != 0;
  return jx_call_jaxpr(pred ? pa->sub : pa->sub2, in + 1, out);
}

static jx_t bind_cond(jx_t pred, jx_jaxpr *t, jx_jaxpr *f, int n, const jx_t *ops, jx_t *out) {
  TMP(jx_t, ins, n + 1, 32);
  if (!ins) return jx_error_new("cond: out of memory");
  ins[0] = pred;
  if (n) memcpy(ins + 1, ops, sizeof(jx_t) * (size_t)n);
  jx_params q = JX_PARAMS_INIT;
  q.sub = t, q.sub2 = f;
  jx_t err = jx_bind(JX_P_cond, n + 1, ins, &q, t->nout, out);
  TMP_FREE(ins);
  return err;
}

static jx_t cond_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                     jx_t *tout) {
  jx_jaxpr *tj = pa->sub, *fj = pa->sub2;
  jx_t err = jx_bind(p, nin, x, pa, tj->nout, out);
  if (err) return err;
  int n = nin - 1;
  TMP(bool, nz, n, 32);
  TMP(jx_t, ops, 2 * n, 64);
  if (!nz || !ops) return jx_error_new("cond: out of memory");
  int m = 0;
  for (int i = 0; i < n; i++) ops[m++] = x[i + 1], nz[i] = t[i + 1] != NULL;
  for (int i = 0; i < n; i++)
    if (nz[i]) ops[m++] = t[i + 1];
  jx_jaxpr *td = jx_derive_jvp(tj, nz, NULL, false, &err);
  jx_jaxpr *fd = td ? jx_derive_jvp(fj, nz, NULL, false, &err) : NULL;
  if (fd) err = bind_cond(x[0], td, fd, m, ops, tout);
  jx_jaxpr_release(td);
  jx_jaxpr_release(fd);
  TMP_FREE(nz);
  TMP_FREE(ops);
  return err;
}

static jx_t cond_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                           const jx_params *pa, jx_t *cts) {
  (void)p, (void)av;
  if (!in[0]) return jx_error_new("cond: transpose with respect to the predicate");
  jx_jaxpr *tj = pa->sub, *fj = pa->sub2;
  int n = nin - 1;
  TMP(bool, lin, n, 32);
  TMP(jx_t, ops, n + tj->nout, 64);
  TMP(jx_t, outs, n, 32);
  jx_t err = lin && ops && outs ? NULL : jx_error_new("cond: out of memory");
  int m = 0;
  for (int i = 0; !err && i < n; i++) {
    lin[i] = in[i + 1] == NULL;
    if (!lin[i]) ops[m++] = in[i + 1];
  }
  for (int k = 0; !err && k < tj->nout; k++) ops[m++] = ct[k] ? ct[k] : jx_lax_zeros(&tj->avals[tj->outvars[k]]);
  jx_jaxpr *td = err ? NULL : jx_derive_transpose(tj, lin, &err);
  jx_jaxpr *fd = td ? jx_derive_transpose(fj, lin, &err) : NULL;
  if (fd) err = bind_cond(in[0], td, fd, m, ops, outs);
  for (int i = 0, k = 0; fd && !err && i < n; i++)
    if (lin[i]) cts[i + 1] = outs[k++];
  jx_jaxpr_release(td);
  jx_jaxpr_release(fd);
  TMP_FREE(lin);
  TMP_FREE(ops);
  TMP_FREE(outs);
  return err;
}

static jx_t cond_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                       int *obd) {
  (void)p;
  jx_jaxpr *tj = pa->sub, *fj = pa->sub2;
  int n = nin - 1;
  int64_t size = jx_batch_size(in, bd, nin);
  TMP(bool, batched, n, 32);
  TMP(jx_t, ops, n, 32);
  TMP(jx_t, a, tj->nout, 32);
  TMP(jx_t, b, tj->nout, 32);
  jx_t err = batched && ops && a && b ? NULL : jx_error_new("cond: out of memory");
  for (int i = 0; !err && i < n; i++) {
    batched[i] = bd[i + 1] != JX_NONE;
    ops[i] = batched[i] ? jx_moveaxis(in[i + 1], bd[i + 1], 0) : in[i + 1];
  }
  jx_jaxpr *td = err ? NULL : jx_derive_batch(tj, batched, size, &err);
  jx_jaxpr *fd = td ? jx_derive_batch(fj, batched, size, &err) : NULL;
  if (fd && bd[0] == JX_NONE) {
    err = bind_cond(in[0], td, fd, n, ops, out);
  } else if (fd) { /* a predicate per lane: both branches, then select */
    err = jx_call_jaxpr(td, ops, a);
    if (!err) err = jx_call_jaxpr(fd, ops, b);
    jx_t pred = jx_moveaxis(in[0], bd[0], 0);
    for (int k = 0; !err && k < tj->nout; k++) {
      int r = a[k]->aval.ndim;
      int64_t s[JX_MAX_RANK];
      s[0] = size;
      for (int d = 1; d < r; d++) s[d] = 1;
      out[k] = jx_lax_select(jx_lax_reshape(pred, r, s), a[k], b[k]);
      if (!jx_ok(out[k])) err = out[k];
    }
  }
  for (int k = 0; k < tj->nout; k++) obd[k] = 0;
  jx_jaxpr_release(td);
  jx_jaxpr_release(fd);
  TMP_FREE(batched);
  TMP_FREE(ops);
  TMP_FREE(a);
  TMP_FREE(b);
  return err;
}

const jx_rules jx_rules_cond = {.name = "cond", .nin = -1, .nout = -1, .abstract_eval = cond_abstract,
                                .impl = cond_impl, .jvp = cond_jvp, .transpose = cond_transpose,
                                .batch = cond_batch, .impl_allocates = true};
