/* remat (jax.checkpoint), checkpoint_name and optimization_barrier.
 *
 * remat(ins) runs params.remat.jaxpr. Its jvp splits it in two, like
 * jit_call's, but keeps what the backward pass will need small:
 *   primal   remat(P)(x) -> (outputs, saved): P is the body with the
 *            values the policy saves (matrix products, named values) as
 *            extra outputs; nothing else of it survives the forward pass;
 *   tangent  remat(D)(x, saved, t): D recomputes the body's primal values
 *            from x (reading the saved ones instead of recomputing them)
 *            and applies the tangent rules.
 * Under linearize the tangent equation is staged with x and the saved
 * values as its only residuals. Its transpose runs the backward pass of D
 * on the spot: D's primal part is evaluated first (the recomputation),
 * then transposed. The known inputs reach it through optimization_barrier
 * so that, under jit, common-subexpression elimination cannot merge the
 * recomputation back into the forward pass (which would keep every
 * intermediate alive again, as XLA's optimization barrier prevents).
 * JX_REMAT_EVERYTHING differentiates the body as if not checkpointed. */
#include "compile/passes.h"
#include "control/derive.h"
#include "prims/lax.h"
#include "prims/prims.h"
#include "trace/trace.h"

#include <stdio.h>

/* ------------------------------------------------------------- helpers */
static jx_t remat_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  return jx_jaxpr_call_abstract(p, in, nin, pa->remat.jaxpr, out);
}

/* Values made by a rule belong to the current pool until it is popped:
 * remat runs its body in a pool of its own and keeps only the results,
 * or an eager grad would keep every intermediate anyway. */
static jx_t keep_only(size_t mark, jx_t err, int n, jx_t *out) {
  for (int k = 0; k < n; k++) out[k] = err ? NULL : jx_retain(out[k]);
  jx_t e = err ? jx_retain(err) : NULL;
  jx_pool_release_to(mark);
  if (e) return jx_pool_own(e);
  for (int k = 0; k < n; k++) {
    out[k] = out[k] ? jx_pool_own(out[k]) : NULL;
    if (out[k] && !jx_ok(out[k]) && !e) e = out[k];
  }
  return e;
}

static jx_t remat_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin;
  size_t mark = jx_pool_mark();
  jx_t err = jx_eval_jaxpr(pa->remat.jaxpr, in, out);
  return keep_only(mark, err, pa->remat.jaxpr->nout, out);
}

static jx_t bind_remat(const jx_params *pa, jx_jaxpr *j, const jx_t *ins, jx_t *outs) {
  jx_params q = *pa;
  q.remat.jaxpr = j;
  return jx_bind(JX_P_remat, j->nin, ins, &q, j->nout, outs);
}

/* Whether the policy saves var v of j, an output of equation q. */
static bool saves(const jx_params *pa, const jx_eqn *q) {
  if (pa->remat.policy == JX_REMAT_DOTS) return q->prim == JX_P_dot_general;
  if (pa->remat.policy != JX_REMAT_NAMES || q->prim != JX_P_checkpoint_name) return false;
  for (int i = 0; i < pa->remat.nnames; i++)
    if (!strncmp(q->params.name.name, pa->remat.names[i], sizeof q->params.name.name)) return true;
  return false;
}

/* The vars of j the policy saves (single-output equations), into a new
 * array; -1 when out of memory. */
static int saved_vars(const jx_params *pa, const jx_jaxpr *j, int **sv) {
  *sv = jx_malloc(sizeof(int) * (size_t)(j->neqn + 1));
  if (!*sv) return -1;
  int n = 0;
  for (int e = 0; e < j->neqn; e++)
    if (j->eqns[e].nout == 1 && saves(pa, &j->eqns[e])) (*sv)[n++] = j->eqns[e].out[0];
  return n;
}

/* The two halves of remat's jvp, traced from the body j: P (primal, with
 * the saved values as extra outputs) when nz is NULL, else D (tangents
 * of the outputs from x, the saved values and the tangents of the x
 * marked nz). */
typedef struct {
  const jx_jaxpr *j;
  const int *sv;
  int ns;
  const bool *nz;
} split_arg;

/* evaluate a->j into env (inputs set); in D, a saved value's primal is
 * the input s[k], its tangent the one just computed */
static jx_t run_body(const split_arg *a, jx_trace *J, jx_t *env, const jx_t *s) {
  const jx_jaxpr *j = a->j;
  jx_t err = NULL;
  for (int e = 0; e < j->neqn && !err; e++) {
    const jx_eqn *q = &j->eqns[e];
    err = jx_eval_eqn(q, env);
    for (int k = 0; J && !err && k < a->ns; k++)
      if (q->nout == 1 && q->out[0] == a->sv[k]) {
        jx_t p, t;
        jx_jvp_unpack(J, env[q->out[0]], &p, &t);
        env[q->out[0]] = jx_jvp_tracer(J, s[k], t);
      }
  }
  return err;
}

static jx_t split_body(const void *arg, const jx_t *ins, jx_t *outs, int *nout) {
  const split_arg *a = arg;
  const jx_jaxpr *j = a->j;
  jx_t *env = jx_calloc((size_t)(j->nvars + 1), sizeof(jx_t));
  jx_trace *J = a->nz ? jx_jvp_begin() : NULL;
  jx_t err = env && (J || !a->nz) ? NULL : jx_error_new("checkpoint: out of memory");
  for (int i = 0; !err && i < j->nconst; i++) env[j->constvars[i]] = j->consts[i];
  int t = j->nin + (a->nz ? a->ns : 0);
  for (int i = 0; !err && i < j->nin; i++)
    env[j->invars[i]] = J ? jx_jvp_tracer(J, ins[i], a->nz[i] ? ins[t++] : NULL) : ins[i];
  if (!err) err = run_body(a, J, env, ins + j->nin);
  *nout = 0;
  for (int k = 0; !err && k < j->nout; k++) {
    jx_t p = env[j->outvars[k]], tan = NULL;
    if (J) jx_jvp_unpack(J, p, &p, &tan);
    outs[(*nout)++] = !J ? p : tan ? tan : jx_lax_zeros(&p->aval);
  }
  for (int k = 0; !err && !J && k < a->ns; k++) outs[(*nout)++] = env[a->sv[k]];
  if (J) jx_jvp_end(J);
  jx_free(env);
  return err;
}

/* trace P or D; D without the primal computations no tangent needs */
static jx_jaxpr *split(const jx_jaxpr *j, const int *sv, int ns, const bool *nz, jx_t *err) {
  split_arg a = {j, sv, ns, nz};
  int n = j->nin, nt = 0;
  for (int i = 0; nz && i < n; i++) nt += nz[i];
  jx_aval *av = jx_malloc(sizeof(jx_aval) * (size_t)(2 * n + ns + 1));
  if (!av) return *err = jx_error_new("checkpoint: out of memory"), NULL;
  int m = 0;
  for (int i = 0; i < n; i++) av[m++] = j->avals[j->invars[i]];
  for (int k = 0; nz && k < ns; k++) av[m++] = j->avals[sv[k]];
  for (int i = 0; nz && i < n; i++)
    if (nz[i]) av[m++] = j->avals[j->invars[i]];
  jx_jaxpr *r = jx_trace_jaxpr(m, av, j->nout + ns, split_body, &a, err);
  jx_free(av);
  (void)nt;
  if (!r || !nz) return r;
  jx_jaxpr *d = jx_pass_dce(r, NULL, err);
  jx_jaxpr_release(r);
  return d;
}

/* JX_REMAT_EVERYTHING: the body's own jvp, evaluated here */
static jx_t jvp_everything(const jx_params *pa, const jx_t *x, const jx_t *t, int nin, jx_t *out,
                           jx_t *tout) {
  jx_jaxpr *j = pa->remat.jaxpr;
  bool *nz = jx_malloc(sizeof(bool) * (size_t)(nin + 1));
  jx_t *ins = jx_malloc(sizeof(jx_t) * (size_t)(2 * nin + 1));
  jx_t *o = jx_malloc(sizeof(jx_t) * (size_t)(2 * j->nout + 1));
  jx_t err = nz && ins && o ? NULL : jx_error_new("checkpoint: out of memory");
  int n = 0;
  for (int i = 0; !err && i < nin; i++) ins[n++] = x[i], nz[i] = t[i] != NULL;
  for (int i = 0; !err && i < nin; i++)
    if (nz[i]) ins[n++] = t[i];
  jx_jaxpr *d = err ? NULL : jx_derive_jvp(j, nz, NULL, true, &err);
  if (d) err = jx_eval_jaxpr(d, ins, o);
  for (int k = 0; d && !err && k < j->nout; k++) out[k] = o[k], tout[k] = o[j->nout + k];
  jx_jaxpr_release(d);
  jx_free(nz), jx_free(ins), jx_free(o);
  return err;
}

static jx_t remat_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                      jx_t *tout) {
  (void)p;
  if (pa->remat.policy == JX_REMAT_EVERYTHING) return jvp_everything(pa, x, t, nin, out, tout);
  jx_jaxpr *j = pa->remat.jaxpr, *P = NULL, *D = NULL;
  int *sv, ns = saved_vars(pa, j, &sv);
  bool *nz = ns >= 0 ? jx_malloc(sizeof(bool) * (size_t)(nin + 1)) : NULL;
  jx_t *ins = nz ? jx_malloc(sizeof(jx_t) * (size_t)(2 * nin + ns + 1)) : NULL;
  jx_t *po = ins ? jx_malloc(sizeof(jx_t) * (size_t)(j->nout + ns + 1)) : NULL;
  jx_t err = po ? NULL : jx_error_new("checkpoint: out of memory");
  if (!err && !ns) jx_jaxpr_retain(P = j); /* nothing saved: the primal is the body */
  if (!err && ns) P = split(j, sv, ns, NULL, &err);
  if (P) err = bind_remat(pa, P, x, po); /* the forward pass: outputs and saved values */
  int n = 0;
  for (int i = 0; !err && i < nin; i++) ins[n++] = x[i], nz[i] = t[i] != NULL;
  for (int k = 0; !err && k < ns; k++) ins[n++] = po[j->nout + k];
  for (int i = 0; !err && i < nin; i++)
    if (nz[i]) ins[n++] = t[i];
  if (!err) D = split(j, sv, ns, nz, &err);
  if (D) err = bind_remat(pa, D, ins, tout);
  for (int k = 0; !err && k < j->nout; k++) out[k] = po[k];
  jx_jaxpr_release(P), jx_jaxpr_release(D);
  if (ns >= 0) jx_free(sv);
  jx_free(nz), jx_free(ins), jx_free(po);
  return err;
}

static jx_t barrier(jx_t x) { return jx_bind1(JX_P_optimization_barrier, 1, &x, &jx_params_none); }

/* the backward pass of the body, run here: its known part (the
 * recomputation) first, reading the known inputs through barriers */
static jx_t remat_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                            const jx_params *pa, jx_t *cts) {
  (void)p, (void)av;
  jx_jaxpr *j = pa->remat.jaxpr;
  jx_t *known = jx_malloc(sizeof(jx_t) * (size_t)(2 * nin + 1)), *cin = known ? known + nin : NULL;
  if (!known) return jx_error_new("checkpoint: out of memory");
  jx_t err = NULL;
  size_t mark = jx_pool_mark();
  for (int i = 0; i < nin && !err; i++) {
    known[i] = in[i] ? barrier(in[i]) : NULL;
    if (known[i] && !jx_ok(known[i])) err = known[i];
  }
  if (!err) err = jx_backward_pass_known(j, known, ct, cin);
  err = keep_only(mark, err, nin, cin); /* the recomputed values go now */
  for (int i = 0; i < nin && !err; i++)
    if (!in[i]) cts[i] = cin[i];
  jx_free(known);
  return err;
}

static jx_t remat_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                        int *obd) {
  (void)p;
  jx_jaxpr *j = pa->remat.jaxpr;
  int64_t size = jx_batch_size(in, bd, nin);
  bool *batched = jx_malloc(sizeof(bool) * (size_t)(nin + 1));
  jx_t *ins = jx_malloc(sizeof(jx_t) * (size_t)(nin + 1));
  jx_t err = batched && ins ? NULL : jx_error_new("checkpoint: out of memory");
  for (int i = 0; !err && i < nin; i++) {
    batched[i] = bd[i] != JX_NONE;
    ins[i] = batched[i] ? jx_moveaxis(in[i], bd[i], 0) : in[i];
  }
  jx_jaxpr *d = err ? NULL : jx_derive_batch(j, batched, size, &err);
  if (d) err = bind_remat(pa, d, ins, out);
  for (int k = 0; k < j->nout; k++) obd[k] = 0;
  jx_jaxpr_release(d);
  jx_free(batched), jx_free(ins);
  return err;
}

static const char *const policy_names[] = {"nothing_saveable", "everything_saveable", "dots_saveable",
                                           "save_only_these_names"};

static void remat_print(jx_strbuf *b, const jx_params *p, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  int k = p->remat.policy;
  jx_strbuf_put(b, " policy=%s", k >= 0 && k < 4 ? policy_names[k] : "?");
  for (int i = 0; i < p->remat.nnames; i++)
    jx_strbuf_put(b, "%s%.32s", i ? "," : " names=", p->remat.names[i]);
}

const jx_rules jx_rules_remat = {.name = "remat",
                                 .nin = -1,
                                 .nout = -1,
                                 .abstract_eval = remat_abstract,
                                 .impl = remat_impl,
                                 .jvp = remat_jvp,
                                 .transpose = remat_transpose,
                                 .batch = remat_batch,
                                 .impl_allocates = true,
                                 .params_kind = JX_PK_REMAT,
                                 .print_params = remat_print,
                                 .lower = {.kind = JX_LOWER_CALL}};

/* ------------------------------------------- checkpoint_name, the barrier */
/* Both are identities. checkpoint_name names its operand for a policy
 * (its tangent and cotangent pass through unnamed); the barrier's
 * derivatives pass through barriers too. */
static jx_t ident_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  (void)p, (void)nin, (void)pa;
  out[0] = in[0];
  return NULL;
}
static jx_t ident_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin, (void)pa;
  out[0] = jx_pool_own(jx_retain(in[0]));
  return jx_ok(out[0]) ? NULL : out[0];
}
static jx_t ident_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                      jx_t *tout) {
  (void)nin;
  out[0] = jx_bind1(p, 1, x, pa);
  tout[0] = !t[0] ? NULL : p == JX_P_optimization_barrier ? jx_bind1(p, 1, t, pa) : t[0];
  return NULL;
}
static jx_t ident_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                            const jx_params *pa, jx_t *cts) {
  (void)in, (void)av, (void)nin;
  cts[0] = !ct[0] ? NULL : p == JX_P_optimization_barrier ? jx_bind1(p, 1, ct, pa) : ct[0];
  return NULL;
}
static jx_t ident_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                        int *obd) {
  (void)nin;
  out[0] = jx_bind1(p, 1, in, pa);
  obd[0] = bd[0];
  return jx_ok(out[0]) ? NULL : out[0];
}
static void name_print(jx_strbuf *b, const jx_params *p, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  jx_strbuf_put(b, " name=%.32s", p->name.name);
}

const jx_rules jx_rules_checkpoint_name = {.name = "checkpoint_name",
                                           .nin = 1,
                                           .nout = 1,
                                           .abstract_eval = ident_abstract,
                                           .impl = ident_impl,
                                           .jvp = ident_jvp,
                                           .transpose = ident_transpose,
                                           .batch = ident_batch,
                                           .impl_allocates = true,
                                           .params_kind = JX_PK_NAME,
                                           .print_params = name_print,
                                           .lower = {.kind = JX_LOWER_FORWARD}};

const jx_rules jx_rules_optimization_barrier = {.name = "optimization_barrier",
                                                .nin = 1,
                                                .nout = 1,
                                                .abstract_eval = ident_abstract,
                                                .impl = ident_impl,
                                                .jvp = ident_jvp,
                                                .transpose = ident_transpose,
                                                .batch = ident_batch,
                                                .impl_allocates = true,
                                                .lower = {.kind = JX_LOWER_FORWARD}};
