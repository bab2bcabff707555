/* Tracing a jx_fn into a jaxpr (make_jaxpr, jit): every argument leaf
 * becomes an input variable, every op is staged. */
#include "api/trace_fn.h"
#include "api/api.h"
#include "trace/trace.h"

jx_jaxpr *jx_trace_to_jaxpr_for(const char *op, jx_fn *f, const jx_t *args, jx_t *out_like, jx_t *err) {
  *err = jx_fn_check_args(op, f, args);
  if (*err) return NULL;
  jx_t all = jx_tuple(f->nargs, args);
  if (!jx_ok(all)) {
    *err = all;
    return NULL;
  }
  int n = jx_tree_leaves_to(all, NULL, 0);
  jx_t *leaf = jx_malloc(sizeof(jx_t) * (size_t)(n ? n : 1));
  jx_stage *S = leaf ? jx_stage_begin(true) : NULL;
  if (!S) {
    jx_free(leaf);
    *err = jx_error_new("trace: %s", leaf ? jx_trace_push_failure() : "out of memory");
    return NULL;
  }
  jx_stage_trace(S)->label = op;
  jx_tree_leaves_to(all, leaf, n);
  for (int i = 0; i < n && !*err; i++) {
    if (leaf[i]->kind == JX_VK_ERROR)
      *err = leaf[i];
    else
      leaf[i] = jx_stage_input(S, &leaf[i]->aval);
  }
  jx_t tr = *err ? NULL : jx_tree_build(all, leaf);
  jx_free(leaf);
  jx_t out = NULL;
  if (!*err) {
    jx_t *a = jx_malloc(sizeof(jx_t) * (size_t)(f->nargs ? f->nargs : 1));
    if (!a) *err = jx_error_new("trace: out of memory");
    for (int i = 0; a && i < f->nargs; i++) a[i] = jx_at(tr, i);
    if (a) out = jx_call(f, a);
    jx_free(a);
    /* a read of a traced value poisoned the trace: its error, not the
     * result computed from the NaN the read gave */
    if (!*err) *err = jx_trace_poisoned(jx_stage_trace(S));
    if (!*err && !jx_ok(out)) *err = out;
  }
  if (*err) {
    jx_stage_abort(S);
    return NULL;
  }
  int m = jx_tree_leaves_to(out, NULL, 0);
  jx_t *ol = jx_malloc(sizeof(jx_t) * (size_t)(m ? m : 1));
  if (!ol) {
    jx_stage_abort(S);
    *err = jx_error_new("trace: %s", leaf ? jx_trace_push_failure() : "out of memory");
    return NULL;
  }
  jx_tree_leaves_to(out, ol, m);
  jx_jaxpr *j = jx_stage_end(S, m, ol, err);
  jx_free(ol);
#ifdef JX_DEBUG_CHECKS
  /* an ill-typed trace is an error (callers only look at *err without j) */
  if (j && !*err && (*err = jx_jaxpr_typecheck(j))) {
    jx_jaxpr_release(j);
    return NULL;
  }
#endif
  if (out_like) *out_like = out;
  return j;
}

jx_jaxpr *jx_trace_to_jaxpr(jx_fn *f, const jx_t *args, jx_t *out_like, jx_t *err) {
  return jx_trace_to_jaxpr_for("jit", f, args, out_like, err);
}

char *jx_make_jaxpr(jx_fn *f, const jx_t *args) {
  jx_pool_push();
  jx_t err;
  jx_jaxpr *j = jx_trace_to_jaxpr_for("make_jaxpr", f, args, NULL, &err);
  char *s = j ? jx_jaxpr_print(j) : jx_asprintf("<error: %s>", jx_error(err));
  jx_jaxpr_release(j);
  jx_pool_pop();
  return s;
}

/* ---------------------------------------- make_jaxpr as a function value */
/* jax.make_jaxpr(f)(*args) gives a ClosedJaxpr that jax.core.jaxpr_as_fun
 * evaluates. Here the jaxpr is held by a jx_fn (so it is owned, kept and
 * freed like any function) whose calls evaluate it with the interpreter
 * on arguments of the traced signature; jx_jaxpr_fn_str prints it. */
typedef struct {
  jx_jaxpr *j;
  jx_t out_like; /* output tree (retained) */
  int nargs;
} jaxpr_closure;

static void jaxpr_closure_free(void *u) {
  jaxpr_closure *c = u;
  jx_jaxpr_release(c->j);
  jx_release(c->out_like);
  jx_free(c);
}

/* the argument leaves must be the traced signature's */
static jx_t check_leaves(const jx_jaxpr *j, int n, const jx_t *leaf) {
  char a[160], b[160];
  if (n != j->nin)
    return jx_error_new("jaxpr function: given %d argument leaves, but the jaxpr was traced with %d", n,
                        j->nin);
  for (int i = 0; i < n; i++) {
    const jx_aval *want = &j->avals[j->invars[i]];
    if (!jx_aval_eq(&leaf[i]->aval, want))
      return jx_error_new("jaxpr function: argument leaf %d is %s, but the jaxpr was traced with %s", i,
                          jx_aval_str(&leaf[i]->aval, a, sizeof a), jx_aval_str(want, b, sizeof b));
  }
  return NULL;
}

static jx_t jaxpr_fn_body(const jx_t *args, void *u) {
  jaxpr_closure *c = u;
  jx_t all = jx_tuple(c->nargs, args);
  if (!jx_ok(all)) return all;
  int n = jx_tree_leaves_to(all, NULL, 0);
  jx_t *leaf = jx_malloc(sizeof(jx_t) * (size_t)(n + c->j->nout + 1));
  if (!leaf) return jx_error_new("jaxpr function: out of memory");
  jx_tree_leaves_to(all, leaf, n);
  jx_t *out = leaf + n, err = check_leaves(c->j, n, leaf);
  if (!err) err = jx_eval_jaxpr(c->j, leaf, out);
  jx_t r = err ? err : jx_tree_build(c->out_like, out);
  jx_free(leaf);
  return r;
}

jx_fn *jx_make_jaxpr_fn(jx_fn *f, const jx_t *args) {
  jx_fn *bad = jx_fn_unusable("make_jaxpr_fn", f);
  if (bad) return bad;
  jx_pool_push();
  jx_t err, out_like = NULL;
  jx_jaxpr *j = jx_trace_to_jaxpr_for("make_jaxpr", f, args, &out_like, &err);
  jaxpr_closure *c = j ? jx_malloc(sizeof *c) : NULL;
  if (c) *c = (jaxpr_closure){j, jx_retain(out_like), f->nargs};
  char *why = j ? NULL : jx_asprintf("%s", jx_error(err));
  jx_pool_pop();
  if (!c) {
    jx_jaxpr_release(j);
    jx_fn *e = jx_fn_error_new("make_jaxpr_fn: %s", why ? why : "out of memory");
    jx_free(why);
    return e;
  }
  return jx_fn_make(jaxpr_fn_body, c->nargs, c, jaxpr_closure_free, "jaxpr");
}

char *jx_jaxpr_fn_str(jx_fn *jf) {
  if (!jf || jf->body != jaxpr_fn_body) return NULL;
  return jx_jaxpr_print(((jaxpr_closure *)jf->user)->j);
}
