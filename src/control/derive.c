/* Jaxpr transformations by tracing, and the per-jaxpr cache. */
#include "control/derive.h"
#include "control/effects.h"
#include "prims/prims.h"
#include "trace/trace.h"

#include <pthread.h>
#include <stdio.h>

/* --------------------------------------------------------- per-jaxpr info */
typedef struct derived {
  char key[128];
  jx_jaxpr *j;
  struct derived *next;
} derived;

typedef struct {
  jx_executable *exec;
  bool compiling; /* a thread is compiling exec (others wait on info_done) */
  derived *list;
} jaxpr_info;

static pthread_mutex_t info_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t info_done = PTHREAD_COND_INITIALIZER;

static void info_free(void *u) {
  jaxpr_info *in = u;
  jx_executable_free(in->exec);
  for (derived *d = in->list, *n; d; d = n) {
    n = d->next;
    jx_jaxpr_release(d->j);
    jx_free(d);
  }
  jx_free(in);
}

static jaxpr_info *info_of(jx_jaxpr *j) {
  if (!j->compiled) {
    jaxpr_info *in = jx_calloc(1, sizeof *in);
    if (!in) return NULL;
    j->compiled = in;
    j->free_compiled = info_free;
  }
  return j->compiled;
}

/* What the compiler reaches above it through (compile/compile.h): the
 * interpreter. */
static const jx_compile_host compile_host = {
    .eval_jaxpr = jx_eval_jaxpr,
};

/* Compiled once per jaxpr. The lock is not held while compiling (a C
 * compiler may take seconds; other jaxprs, cached or not, must not wait):
 * a thread wanting a jaxpr another thread is compiling waits for it. */
jx_executable *jx_jaxpr_executable(jx_jaxpr *j, jx_t *err) {
  *err = NULL;
  pthread_mutex_lock(&info_lock);
  jaxpr_info *info = info_of(j);
  while (info && !info->exec && info->compiling) pthread_cond_wait(&info_done, &info_lock);
  if (info && !info->exec) {
    info->compiling = true;
    pthread_mutex_unlock(&info_lock);
    const jx_backend *be = jx_backend_get(err); /* the default, or JX_BACKEND's */
    jx_executable *x = be ? jx_compile(j, be, &compile_host, err) : NULL;
    pthread_mutex_lock(&info_lock);
    info->exec = x;
    info->compiling = false;
    pthread_cond_broadcast(&info_done);
  }
  jx_executable *x = info ? info->exec : NULL;
  pthread_mutex_unlock(&info_lock);
  if (!x && !*err) *err = jx_error_new("jit: out of memory");
  return x;
}

jx_jaxpr *jx_derive_cached(jx_jaxpr *j, const char *key, jx_derive_fn fn, const void *arg, jx_t *err) {
  *err = NULL;
  pthread_mutex_lock(&info_lock);
  jaxpr_info *in = info_of(j);
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
  r = fn(j, arg, err); /* traced outside the lock: it may bind jit_call itself */
  if (!r) return NULL;
  derived *nd = jx_calloc(1, sizeof *nd);
  if (nd) {
    snprintf(nd->key, sizeof nd->key, "%s", key);
    nd->j = r;
    jx_jaxpr_retain(r);
    pthread_mutex_lock(&info_lock);
    nd->next = in->list;
    in->list = nd;
    pthread_mutex_unlock(&info_lock);
  }
  return r;
}

/* "kind:count:hash of the flags" (any length of mask fits the key) */
void jx_mask_key(char *key, size_t n, const char *kind, const bool *mask, int count) {
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < count; i++) h = (h ^ (mask[i] ? 0x9Bu : 0x31u)) * 1099511628211ull;
  snprintf(key, n, "%s:%d:%016llx", kind, count, (unsigned long long)h);
}

jx_t jx_call_jaxpr(jx_jaxpr *d, const jx_t *ins, jx_t *outs) {
  jx_params q;
  jx_params_init(&q, JX_PK_CALL);
  q.call.jaxpr = d;
  return jx_bind(JX_P_jit_call, d->nin, ins, &q, d->nout, outs);
}

jx_jaxpr *jx_trace_jaxpr(int nin, const jx_aval *avals, int maxout, jx_trace_body body, const void *arg,
                         jx_t *err) {
  size_t mark = jx_pool_mark();
  jx_stage *S = jx_stage_begin(true);
  jx_t *ins = jx_malloc(sizeof(jx_t) * (size_t)(nin ? nin : 1));
  jx_t *outs = jx_malloc(sizeof(jx_t) * (size_t)(maxout ? maxout : 1));
  jx_jaxpr *r = NULL;
  int nout = 0;
  *err = S && ins && outs ? NULL : jx_error_new("jit: %s", S ? "out of memory" : jx_trace_push_failure());
  for (int i = 0; i < nin && !*err; i++) ins[i] = jx_stage_input(S, &avals[i]);
  if (!*err) *err = body(arg, ins, outs, &nout);
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

static jx_aval *avals_buf(int n, jx_aval *small, int nsmall) {
  return n <= nsmall ? small : jx_malloc(sizeof(jx_aval) * (size_t)n);
}

/* ------------------------------------------------------------------- jvp */
typedef struct {
  jx_jaxpr *j;
  const bool *nz, *nz_out;
  bool with_primal;
} jvp_arg;

static jx_t jvp_body(const void *arg, const jx_t *ins, jx_t *outs, int *nout) {
  const jvp_arg *a = arg;
  jx_jaxpr *j = a->j;
  jx_trace *J = jx_jvp_begin();
  jx_t *tr = jx_malloc(sizeof(jx_t) * (size_t)(j->nin ? j->nin : 1));
  jx_t *o = jx_malloc(sizeof(jx_t) * (size_t)(j->nout ? j->nout : 1));
  jx_t err = J && tr && o ? NULL : jx_error_new("jvp: %s", J ? "out of memory" : jx_trace_push_failure());
  int t = j->nin;
  for (int i = 0; i < j->nin && !err; i++) tr[i] = jx_jvp_tracer(J, ins[i], a->nz[i] ? ins[t++] : NULL);
  if (!err) err = jx_eval_jaxpr(j, tr, o);
  int n = a->with_primal ? j->nout : 0;
  for (int k = 0; k < j->nout && !err; k++) {
    jx_t prim, tan;
    jx_jvp_unpack(J, o[k], &prim, &tan);
    if (a->with_primal) outs[k] = prim;
    if (!a->nz_out || a->nz_out[k]) outs[n++] = tan ? tan : jx_lax_zeros(&prim->aval);
  }
  *nout = n;
  if (J) jx_jvp_end(J);
  jx_free(tr);
  jx_free(o);
  return err;
}

static jx_jaxpr *make_jvp(jx_jaxpr *j, const void *arg, jx_t *err) {
  const jvp_arg *a = arg;
  jx_aval small[32] = {{0}}, *av = avals_buf(2 * j->nin, small, 32);
  if (!av) return *err = jx_error_new("jvp: out of memory"), NULL;
  int n = 0;
  for (int i = 0; i < j->nin; i++) av[n++] = j->avals[j->invars[i]];
  for (int i = 0; i < j->nin; i++)
    if (a->nz[i]) av[n++] = j->avals[j->invars[i]];
  jx_jaxpr *r = jx_trace_jaxpr(n, av, 2 * j->nout, jvp_body, a, err);
  if (av != small) jx_free(av);
  if (r && !a->with_primal) { /* the tangent half: its primal half runs the effects */
    jx_jaxpr *p = jx_derive_pure(r, err);
    jx_jaxpr_release(r);
    r = p;
  }
  return r;
}

jx_jaxpr *jx_derive_jvp(jx_jaxpr *j, const bool *nz, const bool *nz_out, bool with_primal, jx_t *err) {
  char key[128], ko[64];
  jx_mask_key(key, sizeof key, with_primal ? "jvp+" : "jvp", nz, j->nin);
  if (nz_out) {
    jx_mask_key(ko, sizeof ko, "", nz_out, j->nout);
    strncat(key, ko, sizeof key - strlen(key) - 1);
  }
  jvp_arg a = {j, nz, nz_out, with_primal};
  return jx_derive_cached(j, key, make_jvp, &a, err);
}

/* ------------------------------------------------------------- transpose */
typedef struct {
  jx_jaxpr *j;
  const bool *lin;
} tr_arg;

static jx_t transpose_body(const void *arg, const jx_t *ins, jx_t *outs, int *nout) {
  const tr_arg *a = arg;
  jx_jaxpr *j = a->j;
  jx_t *known = jx_malloc(sizeof(jx_t) * (size_t)(j->nin ? j->nin : 1));
  jx_t *cin = jx_malloc(sizeof(jx_t) * (size_t)(j->nin ? j->nin : 1));
  jx_t err = known && cin ? NULL : jx_error_new("transpose: out of memory");
  int n = 0;
  for (int i = 0; !err && i < j->nin; i++) known[i] = a->lin[i] ? NULL : ins[n++];
  if (!err) err = jx_backward_pass_known(j, known, ins + n, cin);
  *nout = 0;
  for (int i = 0; i < j->nin && !err; i++)
    if (a->lin[i]) outs[(*nout)++] = cin[i];
  jx_free(known);
  jx_free(cin);
  return err;
}

static jx_jaxpr *make_transpose(jx_jaxpr *j, const void *arg, jx_t *err) {
  const tr_arg *a = arg;
  jx_aval small[32] = {{0}}, *av = avals_buf(j->nin + j->nout, small, 32);
  if (!av) return *err = jx_error_new("transpose: out of memory"), NULL;
  int n = 0;
  for (int i = 0; i < j->nin; i++)
    if (!a->lin[i]) av[n++] = j->avals[j->invars[i]];
  for (int k = 0; k < j->nout; k++) av[n++] = j->avals[j->outvars[k]];
  jx_jaxpr *r = jx_trace_jaxpr(n, av, j->nin, transpose_body, a, err);
  if (av != small) jx_free(av);
  return r;
}

jx_jaxpr *jx_derive_transpose(jx_jaxpr *j, const bool *lin, jx_t *err) {
  char key[128];
  jx_mask_key(key, sizeof key, "transpose", lin, j->nin);
  tr_arg a = {j, lin};
  return jx_derive_cached(j, key, make_transpose, &a, err);
}

/* ----------------------------------------------------------------- batch */
typedef struct {
  jx_jaxpr *j;
  const bool *batched;
  int64_t size;
} batch_arg;

static jx_t batch_body(const void *arg, const jx_t *ins, jx_t *outs, int *nout) {
  const batch_arg *a = arg;
  jx_jaxpr *j = a->j;
  jx_trace *T = jx_batch_begin(a->size);
  jx_t *tr = jx_malloc(sizeof(jx_t) * (size_t)(j->nin ? j->nin : 1));
  jx_t *o = jx_malloc(sizeof(jx_t) * (size_t)(j->nout ? j->nout : 1));
  jx_t err = T && tr && o ? NULL : jx_error_new("vmap: %s", T ? "out of memory" : jx_trace_push_failure());
  /* under a named vmap an unmapped input is still a value of that vmap: a
   * collective over its axis acts on it (psum of a replicated value) */
  bool named = T && jx_batch_rule_axis(NULL)[0];
  for (int i = 0; i < j->nin && !err; i++)
    tr[i] = a->batched[i] ? jx_batch_tracer(T, ins[i], 0)
            : named       ? jx_batch_tracer(T, ins[i], JX_NONE)
                          : ins[i];
  if (!err) err = jx_eval_jaxpr(j, tr, o);
  for (int k = 0; k < j->nout && !err; k++) {
    jx_t v;
    int bd;
    jx_batch_unpack(T, o[k], &v, &bd);
    outs[k] = jx_batch_to_front(v, bd, a->size);
  }
  *nout = j->nout;
  if (T) jx_batch_end(T);
  jx_free(tr);
  jx_free(o);
  return err;
}

static jx_jaxpr *make_batch(jx_jaxpr *j, const void *arg, jx_t *err) {
  const batch_arg *a = arg;
  jx_aval small[32] = {{0}}, *av = avals_buf(j->nin, small, 32);
  if (!av) return *err = jx_error_new("vmap: out of memory"), NULL;
  for (int i = 0; i < j->nin; i++) {
    av[i] = j->avals[j->invars[i]];
    if (!a->batched[i]) continue;
    if (av[i].ndim + 1 > JX_MAX_RANK) {
      if (av != small) jx_free(av);
      *err = jx_error_new("vmap: batched rank exceeds %d", JX_MAX_RANK);
      return NULL;
    }
    memmove(av[i].shape + 1, av[i].shape, sizeof(int64_t) * (size_t)av[i].ndim);
    av[i].shape[0] = a->size;
    av[i].ndim++;
  }
  jx_jaxpr *r = jx_trace_jaxpr(j->nin, av, j->nout, batch_body, a, err);
  if (av != small) jx_free(av);
  return r;
}

jx_jaxpr *jx_derive_batch(jx_jaxpr *j, const bool *batched, int64_t size, jx_t *err) {
  char key[128];
  jx_mask_key(key, sizeof key, "batch", batched, j->nin);
  size_t k = strlen(key);
  /* inside a named vmap's rule the body is batched over that named axis */
  snprintf(key + k, sizeof key - k, ":%lld:%s", (long long)size, jx_batch_rule_axis(NULL));
  batch_arg a = {j, batched, size};
  return jx_derive_cached(j, key, make_batch, &a, err);
}
