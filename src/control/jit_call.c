/* jit_call: a jitted function as a primitive.
 *
 * params.sub is the traced jaxpr. Eagerly it runs the compiled program.
 * Under other transformations its rules transform the jaxpr itself and
 * bind jit_call again on the result, so the transformed function is
 * compiled too: jvp gives a tangent jaxpr (which recomputes the primal
 * values it needs), transpose a backward jaxpr, batch a batched jaxpr.
 * Derived jaxprs and the executable are cached on the jaxpr. */
#include "compile/compile.h"
#include "compile/passes.h"
#include "prims/prims.h"
#include "trace/trace.h"

#include <pthread.h>
#include <stdio.h>

/* --------------------------------------------------------- per-jaxpr info */
typedef struct derived {
  char key[96];
  jx_jaxpr *j;
  struct derived *next;
} derived;

typedef struct {
  jx_executable *exec;
  derived *list;
} jit_info;

static pthread_mutex_t info_lock = PTHREAD_MUTEX_INITIALIZER;

static void info_free(void *u) {
  jit_info *in = u;
  jx_executable_free(in->exec);
  for (derived *d = in->list, *n; d; d = n) {
    n = d->next;
    jx_jaxpr_release(d->j);
    jx_free(d);
  }
  jx_free(in);
}

static jit_info *info_of(jx_jaxpr *j) {
  if (!j->compiled) {
    jit_info *in = jx_calloc(1, sizeof *in);
    if (!in) return NULL;
    j->compiled = in;
    j->free_compiled = info_free;
  }
  return j->compiled;
}

/* A derived jaxpr cached under key (held by the cache; returned +1). */
typedef jx_jaxpr *(*derive_fn)(jx_jaxpr *j, const void *arg, jx_t *err);
static jx_jaxpr *derive(jx_jaxpr *j, const char *key, derive_fn fn, const void *arg, jx_t *err) {
  *err = NULL;
  pthread_mutex_lock(&info_lock);
  jit_info *in = info_of(j);
  derived *d = in ? in->list : NULL;
  while (d && strcmp(d->key, key)) d = d->next;
  jx_jaxpr *r = d ? d->j : NULL;
  jx_jaxpr_retain(r);
  pthread_mutex_unlock(&info_lock);
  if (r) return r;
  if (!in) {
    *err = jx_error_new("jit: out of memory");
    return NULL;
  }
  r = fn(j, arg, err); /* traced outside the lock: may bind jit_call itself */
  if (!r) return NULL;
  derived *nd = jx_calloc(1, sizeof *nd);
  pthread_mutex_lock(&info_lock);
  if (nd) {
    snprintf(nd->key, sizeof nd->key, "%s", key);
    nd->j = r;
    jx_jaxpr_retain(r);
    nd->next = in->list;
    in->list = nd;
  }
  pthread_mutex_unlock(&info_lock);
  return r;
}

static void mask_key(char *key, size_t n, const char *kind, const bool *mask, int count) {
  size_t k = (size_t)snprintf(key, n, "%s:", kind);
  for (int i = 0; i < count && k + 1 < n; i++) key[k++] = mask[i] ? '1' : '0';
  key[k < n ? k : n - 1] = 0;
}

/* ---------------------------------------------------------------- rules */
static jx_t call_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  const jx_jaxpr *j = pa->sub;
  if (!j) return jx_rule_error(jx_prim_names[p], in, nin, "no jaxpr");
  if (nin != j->nin) return jx_rule_error(jx_prim_names[p], in, nin, "expected %d inputs", j->nin);
  for (int i = 0; i < nin; i++)
    if (!jx_aval_eq(&in[i], &j->avals[j->invars[i]])) {
      char s[160];
      return jx_rule_error(jx_prim_names[p], in, nin, "input %d should be %s", i,
                           jx_aval_str(&j->avals[j->invars[i]], s, sizeof s));
    }
  for (int k = 0; k < j->nout; k++) out[k] = j->avals[j->outvars[k]];
  return NULL;
}

static jx_t call_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin;
  jx_jaxpr *j = pa->sub;
  jx_t err = NULL;
  pthread_mutex_lock(&info_lock);
  jit_info *info = info_of(j);
  if (info && !info->exec) info->exec = jx_compile(j, &jx_cpu_backend, &err);
  jx_executable *x = info ? info->exec : NULL;
  pthread_mutex_unlock(&info_lock);
  if (!x) return err ? err : jx_error_new("jit: out of memory");
  return jx_executable_run(x, in, out);
}

/* bind jit_call of jaxpr d on ins; outs get d->nout values */
static jx_t call(jx_jaxpr *d, const jx_t *ins, jx_t *outs) {
  jx_params q = JX_PARAMS_INIT;
  q.sub = d;
  return jx_bind(JX_P_jit_call, d->nin, ins, &q, d->nout, outs);
}

/* Trace a function of fresh inputs (avals) into a jaxpr; body fills outs. */
typedef jx_t (*trace_body)(jx_jaxpr *j, const void *arg, const jx_t *ins, jx_t *outs, int *nout);
static jx_jaxpr *trace_derived(jx_jaxpr *j, const void *arg, int nin, const jx_aval *avals, int maxout,
                               trace_body body, jx_t *err) {
  size_t mark = jx_pool_mark();
  jx_stage *S = jx_stage_begin(true);
  jx_t *ins = jx_malloc(sizeof(jx_t) * (size_t)(nin ? nin : 1));
  jx_t *outs = jx_malloc(sizeof(jx_t) * (size_t)(maxout ? maxout : 1));
  jx_jaxpr *r = NULL;
  int nout = 0;
  *err = S && ins && outs ? NULL : jx_error_new("jit: out of memory");
  for (int i = 0; i < nin && !*err; i++) ins[i] = jx_stage_input(S, &avals[i]);
  if (!*err) *err = body(j, arg, ins, outs, &nout);
  if (*err) {
    if (S) jx_stage_abort(S);
  } else {
    r = jx_stage_end(S, nout, outs, err);
  }
  jx_free(ins);
  jx_free(outs);
  jx_t e = *err ? jx_retain(*err) : NULL;
  jx_pool_release_to(mark);
  *err = e ? jx_pool_own(e) : NULL;
  return r;
}

/* --- jvp: tangent outputs as a function of (primals, nonzero tangents) */
typedef struct {
  const bool *nz; /* per input: tangent is nonzero */
} jvp_arg;

static jx_t jvp_body(jx_jaxpr *j, const void *arg, const jx_t *ins, jx_t *outs, int *nout) {
  const jvp_arg *a = arg;
  jx_trace *J = jx_jvp_begin();
  jx_t *tr = jx_malloc(sizeof(jx_t) * (size_t)(j->nin ? j->nin : 1));
  jx_t *o = jx_malloc(sizeof(jx_t) * (size_t)(j->nout ? j->nout : 1));
  jx_t err = tr && o ? NULL : jx_error_new("jit: out of memory");
  int t = j->nin;
  for (int i = 0; i < j->nin && !err; i++) tr[i] = jx_jvp_tracer(J, ins[i], a->nz[i] ? ins[t++] : NULL);
  if (!err) err = jx_eval_jaxpr(j, tr, o);
  for (int k = 0; k < j->nout && !err; k++) {
    jx_t prim, tan;
    jx_jvp_unpack(J, o[k], &prim, &tan);
    outs[k] = tan ? tan : jx_lax_zeros(&prim->aval);
  }
  *nout = j->nout;
  jx_jvp_end(J);
  jx_free(tr);
  jx_free(o);
  return err;
}

static jx_jaxpr *make_jvp(jx_jaxpr *j, const void *arg, jx_t *err) {
  const jvp_arg *a = arg;
  jx_aval av[64];
  int n = 0;
  for (int i = 0; i < j->nin; i++) av[n++] = j->avals[j->invars[i]];
  for (int i = 0; i < j->nin; i++)
    if (a->nz[i]) av[n++] = j->avals[j->invars[i]];
  return trace_derived(j, arg, n, av, j->nout, jvp_body, err);
}

static jx_t call_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                     jx_t *tout) {
  jx_jaxpr *j = pa->sub;
  jx_t err = jx_bind(p, nin, x, pa, j->nout, out); /* primal: the compiled function itself */
  if (err) return err;
  if (2 * nin > 64) return jx_error_new("jit_call: jvp of a function with more than 32 array inputs");
  bool nz[32];
  jx_t ins[64];
  int n = 0;
  for (int i = 0; i < nin; i++) ins[n++] = x[i], nz[i] = t[i] != NULL;
  for (int i = 0; i < nin; i++)
    if (nz[i]) ins[n++] = t[i];
  char key[96];
  mask_key(key, sizeof key, "jvp", nz, nin);
  jvp_arg a = {nz};
  jx_jaxpr *d = derive(j, key, make_jvp, &a, &err);
  if (!d) return err;
  err = call(d, ins, tout);
  jx_jaxpr_release(d);
  return err;
}

/* --- transpose: cotangents of the linear inputs from (known inputs, cts) */
typedef struct {
  const bool *lin;
} tr_arg;

static jx_t transpose_body(jx_jaxpr *j, const void *arg, const jx_t *ins, jx_t *outs, int *nout) {
  const tr_arg *a = arg;
  jx_t known[64], cin[64];
  int n = 0;
  for (int i = 0; i < j->nin; i++) known[i] = a->lin[i] ? NULL : ins[n++];
  jx_t err = jx_backward_pass_known(j, known, ins + n, cin);
  *nout = 0;
  for (int i = 0; i < j->nin && !err; i++)
    if (a->lin[i]) outs[(*nout)++] = cin[i];
  return err;
}

static jx_jaxpr *make_transpose(jx_jaxpr *j, const void *arg, jx_t *err) {
  const tr_arg *a = arg;
  jx_aval av[64];
  int n = 0;
  for (int i = 0; i < j->nin; i++)
    if (!a->lin[i]) av[n++] = j->avals[j->invars[i]];
  for (int k = 0; k < j->nout && n < 64; k++) av[n++] = j->avals[j->outvars[k]];
  return trace_derived(j, arg, n, av, j->nin, transpose_body, err);
}

static jx_t call_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                           const jx_params *pa, jx_t *cts) {
  (void)p, (void)av;
  jx_jaxpr *j = pa->sub;
  if (nin > 32 || nin + j->nout > 64) return jx_error_new("jit_call: transpose of a function this wide");
  bool lin[32];
  jx_t ins[64];
  int n = 0;
  for (int i = 0; i < nin; i++) {
    lin[i] = in[i] == NULL;
    if (!lin[i]) ins[n++] = in[i];
  }
  for (int k = 0; k < j->nout; k++) ins[n++] = ct[k] ? ct[k] : jx_lax_zeros(&j->avals[j->outvars[k]]);
  char key[96];
  mask_key(key, sizeof key, "transpose", lin, nin);
  jx_t err;
  tr_arg a = {lin};
  jx_jaxpr *d = derive(j, key, make_transpose, &a, &err);
  if (!d) return err;
  jx_t outs[32];
  err = call(d, ins, outs);
  for (int i = 0, k = 0; i < nin && !err; i++)
    if (lin[i]) cts[i] = outs[k++];
  jx_jaxpr_release(d);
  return err;
}

/* --- batch: every batched input with its batch dim first */
typedef struct {
  const bool *batched;
  int64_t size;
} batch_arg;

static jx_t batch_body(jx_jaxpr *j, const void *arg, const jx_t *ins, jx_t *outs, int *nout) {
  const batch_arg *a = arg;
  jx_trace *T = jx_batch_begin(a->size);
  jx_t tr[64], o[64];
  jx_t err = NULL;
  for (int i = 0; i < j->nin; i++) tr[i] = a->batched[i] ? jx_batch_tracer(T, ins[i], 0) : ins[i];
  if (j->nout > 64) err = jx_error_new("jit_call: batching a function with more than 64 outputs");
  if (!err) err = jx_eval_jaxpr(j, tr, o);
  for (int k = 0; k < j->nout && !err; k++) {
    jx_t v;
    int bd;
    jx_batch_unpack(T, o[k], &v, &bd);
    outs[k] = jx_batch_to_front(v, bd, a->size);
  }
  *nout = j->nout;
  jx_batch_end(T);
  return err;
}

static jx_jaxpr *make_batch(jx_jaxpr *j, const void *arg, jx_t *err) {
  const batch_arg *a = arg;
  jx_aval av[64];
  for (int i = 0; i < j->nin; i++) {
    av[i] = j->avals[j->invars[i]];
    if (!a->batched[i]) continue;
    if (av[i].ndim + 1 > JX_MAX_RANK) {
      *err = jx_error_new("jit_call: batched rank exceeds %d", JX_MAX_RANK);
      return NULL;
    }
    memmove(av[i].shape + 1, av[i].shape, sizeof(int64_t) * (size_t)av[i].ndim);
    av[i].shape[0] = a->size;
    av[i].ndim++;
  }
  return trace_derived(j, arg, j->nin, av, j->nout, batch_body, err);
}

static jx_t call_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                       int *obd) {
  (void)p;
  jx_jaxpr *j = pa->sub;
  if (nin > 64) return jx_error_new("jit_call: batching a function with more than 64 inputs");
  bool batched[64];
  jx_t ins[64];
  int64_t size = jx_batch_size(in, bd, nin);
  for (int i = 0; i < nin; i++) {
    batched[i] = bd[i] != JX_NONE;
    ins[i] = batched[i] ? jx_moveaxis(in[i], bd[i], 0) : in[i];
  }
  char key[96];
  mask_key(key, sizeof key, "batch", batched, nin);
  size_t k = strlen(key);
  snprintf(key + k, sizeof key - k, ":%lld", (long long)size);
  jx_t err;
  batch_arg a = {batched, size};
  jx_jaxpr *d = derive(j, key, make_batch, &a, &err);
  if (!d) return err;
  err = call(d, ins, out);
  for (int i = 0; i < j->nout; i++) obd[i] = 0;
  jx_jaxpr_release(d);
  return err;
}

const jx_rules jx_rules_jit_call = {.name = "jit_call", .nin = -1, .nout = -1, .abstract_eval = call_abstract,
                                    .impl = call_impl, .jvp = call_jvp, .transpose = call_transpose,
                                    .batch = call_batch, .impl_allocates = true};
