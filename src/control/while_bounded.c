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
 *   - primals traced (under jit or vmap): n is not known while tracing.
 *     The loop runs once (traced) to count n, then the jvp is that of a
 *     dyn scan of max_steps (core.h: scan.dyn) that runs only n steps:
 *     its residual stacks have max_steps rows, but the forward, tangent and
 *     transposed loops all stop after n steps. The body gets n as an extra
 *     first constant, which it ignores. */
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

/* the body with the step count n as an extra first constant (a dyn
 * scan's body takes it), which it ignores */
static jx_t counted_trace(const void *arg, const jx_t *ins, jx_t *outs, int *nout) {
  jx_jaxpr *b = (jx_jaxpr *)arg;
  *nout = b->nout;
  return jx_eval_jaxpr(b, ins + 1, outs); /* inlined: the result is cached on b */
}

static jx_jaxpr *make_counted(jx_jaxpr *b, const void *arg, jx_t *err) {
  const jx_aval *count = arg;
  jx_aval *av = jx_malloc(sizeof(jx_aval) * (size_t)(b->nin + 1));
  if (!av) return *err = jx_error_new("while_loop_bounded: out of memory"), NULL;
  av[0] = *count;
  for (int i = 0; i < b->nin; i++) av[1 + i] = b->avals[b->invars[i]];
  jx_jaxpr *r = jx_trace_jaxpr(b->nin + 1, av, b->nout, counted_trace, b, err);
  jx_free(av);
  return r;
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
  /* count the steps: the first carry is the step count */
  jx_t err = jx_bind(p, nin, x, pa, n, out);
  if (err) return err;
  if (all_concrete(x, nin)) { /* n known: a scan of exactly n steps */
    q.scan.body = pa->bwhile.body, q.scan.nconst = nbc;
    q.scan.length = (int64_t)jx_item(out[0]);
    return jx_prim_rules[JX_P_scan]->jvp(JX_P_scan, x + ncc, t + ncc, nin - ncc, &q, out, tout);
  }
  /* n traced: a dyn scan of max_steps that runs n of them */
  jx_t *xs = jx_malloc(sizeof(jx_t) * (size_t)(nin + 1)), *ts = jx_malloc(sizeof(jx_t) * (size_t)(nin + 1));
  err = xs && ts ? NULL : jx_error_new("while_loop_bounded: out of memory");
  char key[32];
  snprintf(key, sizeof key, "bwhile-dyn:%d", (int)out[0]->aval.dtype);
  q.scan.body = err ? NULL : jx_derive_cached(pa->bwhile.body, key, make_counted, &out[0]->aval, &err);
  if (q.scan.body) {
    q.scan.nconst = 1 + nbc, q.scan.length = pa->bwhile.max_steps, q.scan.dyn = true;
    xs[0] = out[0], ts[0] = NULL;
    for (int i = ncc; i < nin; i++) xs[1 + i - ncc] = x[i], ts[1 + i - ncc] = t[i];
    err = jx_prim_rules[JX_P_scan]->jvp(JX_P_scan, xs, ts, 1 + nin - ncc, &q, out, tout);
  }
  jx_jaxpr_release(q.scan.body);
  jx_free(xs), jx_free(ts);
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
