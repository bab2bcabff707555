/* while_bounded: a while loop of at most max_steps steps whose reverse
 * mode costs in proportion to the steps it takes (JAX's open issue #2469;
 * the trap of #8239 is a scan over max_steps, whose backward pass runs
 * every one of them).
 *
 * Its params are while's (the API adds a step count as the first carry,
 * which cond bounds), so that impl, abstract eval, batching and the jit's
 * loop driver are while's. Its jvp is a scan's, over the body:
 *   - primals known (eager, or under grad's linearize, which computes
 *     primals on the spot): the loop runs once to count its steps n, then
 *     the jvp is that of a scan of exactly n steps of the body, which
 *     linearize and the backward pass handle (residuals and reverse steps
 *     in proportion to n);
 *   - primals traced (under jit or vmap): n is not known while tracing, so
 *     it is the jvp of a scan of max_steps guarded steps, cond(pred, body,
 *     identity): correct, but its backward pass visits every step. */
#include "control/derive.h"
#include "ir/loop.h"
#include "prims/lax.h"
#include "prims/prims.h"
#include "trace/trace.h"

static const jx_rules *while_rules(void) { return jx_prim_rules[JX_P_while]; }

static jx_t bw_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  return while_rules()->abstract_eval(p, in, nin, pa, out);
}
static jx_t bw_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  return while_rules()->impl(p, in, nin, pa, out);
}
static jx_t bw_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                     int *obd) {
  (void)p;
  jx_params q = *pa; /* batched, it is a plain while (its cond still bounds the steps) */
  q.kind = JX_PK_WHILE;
  return while_rules()->batch(JX_P_while, in, bd, nin, &q, out, obd);
}

/* One guarded step (cconsts, bconsts, carries) -> carries: the body if
 * cond holds, else the carries unchanged. */
typedef struct {
  const jx_params *pa;
  jx_jaxpr *ident;
} guard_arg;

static jx_t ident_body(const void *arg, const jx_t *ins, jx_t *outs, int *nout) {
  const jx_params *pa = arg;
  int n = pa->bwhile.body->nout;
  for (int k = 0; k < n; k++) outs[k] = ins[pa->bwhile.nbconst + k];
  *nout = n;
  return NULL;
}

static jx_t guard_body(const void *arg, const jx_t *ins, jx_t *outs, int *nout) {
  const guard_arg *g = arg;
  const jx_params *pa = g->pa;
  int ncc = pa->bwhile.ncconst, nbc = pa->bwhile.nbconst, n = pa->bwhile.body->nout;
  jx_t *ci = jx_malloc(sizeof(jx_t) * (size_t)(ncc + n + 1));
  jx_t *bi = jx_malloc(sizeof(jx_t) * (size_t)(1 + nbc + n));
  jx_t err = ci && bi ? NULL : jx_error_new("while_loop_bounded: out of memory"), pred = NULL;
  for (int i = 0; !err && i < ncc; i++) ci[i] = ins[i];
  for (int i = 0; !err && i < n; i++) ci[ncc + i] = ins[ncc + nbc + i];
  if (!err) err = jx_eval_jaxpr(pa->bwhile.cond, ci, &pred);
  if (!err) {
    bi[0] = pred;
    for (int i = 0; i < nbc + n; i++) bi[1 + i] = ins[ncc + i];
    jx_params q;
    jx_params_init(&q, JX_PK_COND);
    q.cond.on_true = pa->bwhile.body, q.cond.on_false = g->ident;
    err = jx_bind(JX_P_cond, 1 + nbc + n, bi, &q, n, outs);
  }
  *nout = n;
  jx_free(ci), jx_free(bi);
  return err;
}

static jx_jaxpr *guarded_step(const jx_params *pa, jx_t *err) {
  const jx_jaxpr *b = pa->bwhile.body;
  int ncc = pa->bwhile.ncconst, nbc = pa->bwhile.nbconst, n = b->nout;
  jx_aval *av = jx_malloc(sizeof(jx_aval) * (size_t)(ncc + nbc + n + 1));
  if (!av) return *err = jx_error_new("while_loop_bounded: out of memory"), NULL;
  for (int i = 0; i < ncc; i++) av[i] = pa->bwhile.cond->avals[pa->bwhile.cond->invars[i]];
  for (int i = 0; i < nbc + n; i++) av[ncc + i] = b->avals[b->invars[i]];
  guard_arg g = {pa, jx_trace_jaxpr(nbc + n, av + ncc, n, ident_body, pa, err)};
  jx_jaxpr *s = g.ident ? jx_trace_jaxpr(ncc + nbc + n, av, n, guard_body, &g, err) : NULL;
  jx_jaxpr_release(g.ident);
  jx_free(av);
  return s;
}

static bool all_concrete(const jx_t *x, int n) {
  for (int i = 0; i < n; i++)
    if (!jx_is_array(x[i])) return false;
  return true;
}

static jx_t bw_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                   jx_t *tout) {
  int ncc = pa->bwhile.ncconst, nbc = pa->bwhile.nbconst, n = nin - ncc - nbc;
  jx_params q;
  jx_params_init(&q, JX_PK_SCAN);
  q.scan.ncarry = n;
  if (all_concrete(x, nin)) {
    /* count the steps: the first carry is the step count */
    jx_t err = jx_bind(p, nin, x, pa, n, out);
    if (err) return err;
    q.scan.body = pa->bwhile.body, q.scan.nconst = nbc;
    q.scan.length = (int64_t)jx_item(out[0]);
    return jx_prim_rules[JX_P_scan]->jvp(JX_P_scan, x + ncc, t + ncc, nin - ncc, &q, out, tout);
  }
  jx_t err;
  q.scan.body = guarded_step(pa, &err), q.scan.nconst = ncc + nbc;
  q.scan.length = pa->bwhile.max_steps;
  if (!q.scan.body) return err;
  err = jx_prim_rules[JX_P_scan]->jvp(JX_P_scan, x, t, nin, &q, out, tout);
  jx_jaxpr_release(q.scan.body);
  return err;
}

static void bw_print(jx_strbuf *b, const jx_params *p, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  jx_strbuf_put(b, " max_steps=%lld", (long long)p->bwhile.max_steps);
}

static void bw_loop_fields(const jx_params *pa, jx_lloop *l) {
  l->ncconst = pa->bwhile.ncconst, l->nbconst = pa->bwhile.nbconst;
}

const jx_rules jx_rules_while_bounded = {
    .name = "while_bounded",
    .nin = -1,
    .nout = -1,
    .abstract_eval = bw_abstract,
    .impl = bw_impl,
    .jvp = bw_jvp,
    .batch = bw_batch,
    .impl_allocates = true,
    .params_kind = JX_PK_BWHILE,
    .print_params = bw_print,
    .lower = {.kind = JX_LOWER_LOOP, .loop_fields = bw_loop_fields, .loop = "while", .nbody = 2}};
