/* cond: cond(pred, ops...) runs jaxpr on_true or on_false (p->cond).
 * Both branches take every operand (the API hoists each branch's
 * constants into operands and widens both to the same inputs) and return
 * the same types.
 *
 * jvp splits like jit_call: the primal is cond itself, the tangents a cond
 * of the branches' tangent jaxprs (linear in the tangents, so linearize
 * keeps the primal known); transpose is a cond of the transposed branches;
 * with a batched predicate both branches run and a select picks per lane
 * (their operands guarded so that gradients follow only the lane's branch). */
#include "control/derive.h"
#include "prims/prims.h"
#include "trace/trace.h"

static jx_t cond_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  const jx_jaxpr *t = pa->cond.on_true, *f = pa->cond.on_false;
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
  return jx_call_jaxpr(pred ? pa->cond.on_true : pa->cond.on_false, in + 1, out);
}

static jx_t bind_cond(jx_t pred, jx_jaxpr *t, jx_jaxpr *f, int n, const jx_t *ops, jx_t *out) {
  jx_scratch *sc = jx_scratch_here();
  jx_scratch_mark sm = jx_scratch_save(sc);
  jx_t *ins = JX_SCRATCH(sc, jx_t, n + 1);
  if (!ins) return jx_error_new("cond: out of memory");
  ins[0] = pred;
  if (n) memcpy(ins + 1, ops, sizeof(jx_t) * (size_t)n);
  jx_params q;
  jx_params_init(&q, JX_PK_COND);
  q.cond.on_true = t, q.cond.on_false = f;
  jx_t err = jx_bind(JX_P_cond, n + 1, ins, &q, t->nout, out);
  jx_scratch_release(sc, sm);
  return err;
}

static jx_t cond_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                     jx_t *tout) {
  jx_jaxpr *tj = pa->cond.on_true, *fj = pa->cond.on_false;
  jx_t err = jx_bind(p, nin, x, pa, tj->nout, out);
  if (err) return err;
  int n = nin - 1;
  jx_scratch *sc = jx_scratch_here();
  jx_scratch_mark sm = jx_scratch_save(sc);
  bool *nz = JX_SCRATCH(sc, bool, n);
  jx_t *ops = JX_SCRATCH(sc, jx_t, 2 * n);
  if (!nz || !ops) {
    jx_scratch_release(sc, sm);
    return jx_error_new("cond: out of memory");
  }
  int m = 0;
  for (int i = 0; i < n; i++) ops[m++] = x[i + 1], nz[i] = t[i + 1] != NULL;
  for (int i = 0; i < n; i++)
    if (nz[i]) ops[m++] = t[i + 1];
  jx_jaxpr *td = jx_derive_jvp(tj, nz, NULL, false, &err);
  jx_jaxpr *fd = td ? jx_derive_jvp(fj, nz, NULL, false, &err) : NULL;
  if (fd) err = bind_cond(x[0], td, fd, m, ops, tout);
  jx_jaxpr_release(td);
  jx_jaxpr_release(fd);
  jx_scratch_release(sc, sm);
  return err;
}

static jx_t cond_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                           const jx_params *pa, jx_t *cts) {
  (void)p, (void)av;
  if (!in[0]) return jx_error_new("cond: transpose with respect to the predicate");
  jx_jaxpr *tj = pa->cond.on_true, *fj = pa->cond.on_false;
  int n = nin - 1;
  jx_scratch *sc = jx_scratch_here();
  jx_scratch_mark sm = jx_scratch_save(sc);
  bool *lin = JX_SCRATCH(sc, bool, n);
  jx_t *ops = JX_SCRATCH(sc, jx_t, n + tj->nout);
  jx_t *outs = JX_SCRATCH(sc, jx_t, n);
  jx_t err = lin && ops && outs ? NULL : jx_error_new("cond: out of memory");
  int m = 0;
  for (int i = 0; !err && i < n; i++) {
    lin[i] = in[i + 1] == NULL;
    if (!lin[i]) ops[m++] = in[i + 1];
  }
  for (int k = 0; !err && k < tj->nout; k++)
    ops[m++] = ct[k] ? ct[k] : jx_lax_zeros(&tj->avals[tj->outvars[k]]);
  jx_jaxpr *td = err ? NULL : jx_derive_transpose(tj, lin, &err);
  jx_jaxpr *fd = td ? jx_derive_transpose(fj, lin, &err) : NULL;
  if (fd) err = bind_cond(in[0], td, fd, m, ops, outs);
  for (int i = 0, k = 0; fd && !err && i < n; i++)
    if (lin[i]) cts[i + 1] = outs[k++];
  jx_jaxpr_release(td);
  jx_jaxpr_release(fd);
  jx_scratch_release(sc, sm);
  return err;
}

/* pred (bool[size]) reshaped to broadcast against a rank-r batched value */
static jx_t lane_pred(jx_t pred, int r, int64_t size) {
  int64_t s[JX_MAX_RANK];
  s[0] = size;
  for (int d = 1; d < r; d++) s[d] = 1;
  return jx_lax_reshape(pred, r, s);
}

/* With a predicate per lane both branches run on every lane, and the
 * select of their outputs sends a zero cotangent to the branch a lane did
 * not take; transposed, that branch can still turn the zero into NaN
 * (sqrt's 0 * inf at x < 0). As JAX does (jax #1052), each branch gets
 * its operands through select(pred, x, stop_gradient(x)) (the false branch
 * the other way round), so no gradient reaches an operand through the
 * branch its lane did not take. Only differentiable operands need it:
 * floats that are tracers (a concrete array has no tangent). Unbatched
 * ones become batched to carry a per-lane choice. */
static bool needs_guard(jx_t x) { return jx_dtype_is_float(x->aval.dtype) && x->kind == JX_VK_TRACER; }

static jx_t guard_operand(jx_t pred, jx_t x, int64_t size, bool on_true) {
  jx_t sg = jx_lax_unary(JX_P_stop_gradient, x);
  jx_t p = lane_pred(pred, x->aval.ndim, size);
  return on_true ? jx_lax_select(p, x, sg) : jx_lax_select(p, sg, x);
}

/* both branches over all lanes, each output picked per lane by pred */
static jx_t cond_batch_select(jx_jaxpr *tj, jx_jaxpr *fj, jx_t pred, const jx_t *ops, const bool *batched,
                              int n, int64_t size, jx_t *out) {
  jx_scratch *sc = jx_scratch_here();
  jx_scratch_mark sm = jx_scratch_save(sc);
  bool *guarded = JX_SCRATCH(sc, bool, n);
  jx_t *top = JX_SCRATCH(sc, jx_t, 2 * n);
  jx_t *a = JX_SCRATCH(sc, jx_t, 2 * tj->nout);
  jx_t *fop = top ? top + n : NULL, *b = a ? a + tj->nout : NULL;
  jx_t err = guarded && top && a ? NULL : jx_error_new("cond: out of memory (%d operands)", n);
  for (int i = 0; !err && i < n; i++) {
    bool g = needs_guard(ops[i]);
    guarded[i] = batched[i] || g; /* batched on entry to the branches */
    jx_t x = batched[i] || !g ? ops[i] : jx_batch_to_front(ops[i], JX_NONE, size);
    top[i] = g ? guard_operand(pred, x, size, true) : x;
    fop[i] = g ? guard_operand(pred, x, size, false) : x;
    if (!jx_ok(top[i]) || !jx_ok(fop[i])) err = jx_ok(top[i]) ? fop[i] : top[i];
  }
  jx_jaxpr *td = err ? NULL : jx_derive_batch(tj, guarded, size, &err);
  jx_jaxpr *fd = td ? jx_derive_batch(fj, guarded, size, &err) : NULL;
  /* the false branch first: JAX runs lax.cond's branches in index order
   * (false, true), which is the order their prints come out in */
  if (fd) err = jx_call_jaxpr(fd, fop, b);
  if (fd && !err) err = jx_call_jaxpr(td, top, a);
  for (int k = 0; fd && !err && k < tj->nout; k++) {
    out[k] = jx_lax_select(lane_pred(pred, a[k]->aval.ndim, size), a[k], b[k]);
    if (!jx_ok(out[k])) err = out[k];
  }
  jx_jaxpr_release(td);
  jx_jaxpr_release(fd);
  jx_scratch_release(sc, sm);
  return err;
}

static jx_t cond_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                       int *obd) {
  (void)p;
  jx_jaxpr *tj = pa->cond.on_true, *fj = pa->cond.on_false;
  int n = nin - 1;
  int64_t size = jx_batch_size(in, bd, nin);
  jx_scratch *sc = jx_scratch_here();
  jx_scratch_mark sm = jx_scratch_save(sc);
  bool *batched = JX_SCRATCH(sc, bool, n);
  jx_t *ops = JX_SCRATCH(sc, jx_t, n);
  jx_t err = batched && ops ? NULL : jx_error_new("cond: out of memory (%d operands)", n);
  for (int i = 0; !err && i < n; i++) {
    batched[i] = bd[i + 1] != JX_NONE;
    ops[i] = batched[i] ? jx_moveaxis(in[i + 1], bd[i + 1], 0) : in[i + 1];
  }
  if (!err && bd[0] != JX_NONE) {
    err = cond_batch_select(tj, fj, jx_moveaxis(in[0], bd[0], 0), ops, batched, n, size, out);
  } else if (!err) {
    jx_jaxpr *td = jx_derive_batch(tj, batched, size, &err);
    jx_jaxpr *fd = td ? jx_derive_batch(fj, batched, size, &err) : NULL;
    if (fd) err = bind_cond(in[0], td, fd, n, ops, out);
    jx_jaxpr_release(td);
    jx_jaxpr_release(fd);
  }
  for (int k = 0; k < tj->nout; k++) obd[k] = 0;
  jx_scratch_release(sc, sm);
  return err;
}

const jx_rules jx_rules_cond = {.name = "cond",
                                .nin = -1,
                                .nout = -1,
                                .abstract_eval = cond_abstract,
                                .impl = cond_impl,
                                .jvp = cond_jvp,
                                .transpose = cond_transpose,
                                .batch = cond_batch,
                                .impl_allocates = true,
                                .params_kind = JX_PK_COND,
                                .lower = {.kind = JX_LOWER_LOOP, .loop = "cond", .nbody = 2}};
