/* jx_export_save / jx_export_load: a traced function as a versioned text
 * file of jaxprs, and back as a jx_fn (jax.export's use: run, jit, grad,
 * vmap it in another process without the C body that traced it). The
 * format is documented in docs/API.md, "Export"; in short:
 *
 *   jx-export 1
 *   fn <nargs> <input tree> <output tree>
 *   jaxpr                                   (one block per jaxpr; inner ones first)
 *   vars <n>        then n lines: <dtype> <weak 0|1> <ndim> <dims...>
 *   consts <n>      then n lines: <var> <the value's bytes in hex, little-endian>
 *   in <n> <vars...>
 *   eqns <n>        then n lines: <prim> <nin> <vars...> <nout> <vars...> <params kind> <fields...>
 *   out <n> <vars...>
 *   end
 *
 * Loading trusts nothing: every count is bounded by the file's size, every
 * number parsed with its range checked, variables are defined before use
 * and once, a primitive's operand counts and params (field by field, per
 * params kind: counts within the rank limit, axes in range, dtypes known,
 * inner jaxprs earlier in the file with matching arities) are checked
 * before any rule sees them, and every jaxpr is then typechecked with the
 * primitives' own abstract_eval. Any failure is an error value naming the
 * line; nothing is executed from the file but primitives. */
#include "api/api.h"
#include "api/trace_fn.h"
#include "compile/passes.h"
#include "export/format.h"

#include <string.h>

#include <stdio.h>
#include <unistd.h>

/* ---------------------------------------------------------------- saving */
typedef struct {
  jx_strbuf b;
  const jx_jaxpr **done; /* jaxprs written, by index */
  int n, cap;
  jx_t err;
} saver;

static int find_done(const saver *s, const jx_jaxpr *j) {
  for (int i = 0; i < s->n; i++)
    if (s->done[i] == j) return i;
  return -1;
}

static int save_jaxpr(saver *s, const jx_jaxpr *j, int depth);

static long long bits64(const char *p, int k) {
  int64_t v;
  memcpy(&v, p + 8 * k, 8);
  return (long long)v;
}

/* The equation as it is written. Rules that matter only to autodiff are
 * not serialized: custom_jvp_call / custom_vjp_call (the user's rules are
 * C functions) and remat are written as a jit_call of their function --
 * what jit runs (compile/pass_inline.c), so the loaded function computes
 * the same values, but its derivatives are those of the function itself
 * (the custom rules and the remat policy are not kept); checkpoint_name,
 * an identity naming a value for a remat policy, is written as the
 * identity optimization_barrier. */
static jx_eqn saved_form(const jx_eqn *q) {
  jx_eqn w = *q;
  const jx_jaxpr *fun = q->prim == JX_P_remat ? q->params.remat.jaxpr
                        : q->prim == JX_P_custom_jvp_call || q->prim == JX_P_custom_vjp_call
                            ? q->params.custom.fun
                            : NULL;
  if (fun) {
    w.prim = JX_P_jit_call;
    jx_params_init(&w.params, JX_PK_CALL);
    w.params.call.jaxpr = (jx_jaxpr *)fun;
  } else if (q->prim == JX_P_checkpoint_name) {
    w.prim = JX_P_optimization_barrier;
    w.params = jx_params_none;
  }
  return w;
}

static void save_params(saver *s, const jx_eqn *q, const int *refs) {
  const jx_xfield *f = jx_xf_kind_fields[q->params.kind];
  jx_strbuf_put(&s->b, " %s", jx_params_kind_names[q->params.kind]);
  int r = 0;
  for (int i = 0; f[i].len; i++)
    for (int k = 0; k < f[i].len; k++) {
      const char *p = (const char *)&q->params + f[i].off;
      long long v = f[i].t == F_I8       ? ((const int8_t *)p)[k]
                    : f[i].t == F_I32    ? ((const int32_t *)p)[k]
                    : f[i].t == F_I64    ? ((const int64_t *)p)[k]
                    : f[i].t == F_BOOL   ? ((const bool *)p)[k]
                    : f[i].t == F_DTYPE  ? (long long)((const jx_dtype *)p)[k]
                    : f[i].t == F_BITS64 ? bits64(p, k)
                                         : (long long)refs[r++];
      if (f[i].t == F_DTYPE)
        jx_strbuf_put(&s->b, " %s", jx_dtype_name((jx_dtype)v));
      else
        jx_strbuf_put(&s->b, " %lld", v);
    }
}

static void save_aval(jx_strbuf *b, const jx_aval *a) {
  jx_strbuf_put(b, "%s %d %d", jx_dtype_name(a->dtype), a->weak ? 1 : 0, a->ndim);
  for (int d = 0; d < a->ndim; d++) jx_strbuf_put(b, " %lld", (long long)a->shape[d]);
  jx_strbuf_put(b, "\n");
}

/* the inner jaxprs of q written first; their indices into refs */
static bool save_inner(saver *s, const jx_eqn *q, int *refs, int depth) {
  jx_jaxpr *inner[2];
  int n = jx_params_jaxprs(&q->params, inner);
  for (int i = 0; i < n; i++) {
    refs[i] = find_done(s, inner[i]);
    if (refs[i] < 0) refs[i] = save_jaxpr(s, inner[i], depth + 1);
    if (refs[i] < 0) return false;
  }
  return true;
}

static void save_body(saver *s, const jx_jaxpr *j, const int (*refs)[2]) {
  jx_strbuf *b = &s->b;
  jx_strbuf_put(b, "jaxpr\nvars %d\n", j->nvars);
  for (int v = 0; v < j->nvars; v++) save_aval(b, &j->avals[v]);
  jx_strbuf_put(b, "consts %d\n", j->nconst);
  for (int c = 0; c < j->nconst; c++) {
    const unsigned char *d = jx_data(j->consts[c]);
    size_t n =
        (size_t)jx_aval_size(&j->avals[j->constvars[c]]) * jx_dtype_size(j->avals[j->constvars[c]].dtype);
    jx_strbuf_put(b, "%d ", j->constvars[c]);
    for (size_t i = 0; i < n; i++) jx_strbuf_put(b, "%02x", d[i]);
    jx_strbuf_put(b, "%s\n", n ? "" : "-");
  }
  jx_strbuf_put(b, "in %d", j->nin);
  for (int i = 0; i < j->nin; i++) jx_strbuf_put(b, " %d", j->invars[i]);
  jx_strbuf_put(b, "\neqns %d\n", j->neqn);
  for (int e = 0; e < j->neqn; e++) {
    const jx_eqn w = saved_form(&j->eqns[e]), *q = &w;
    jx_strbuf_put(b, "%s %d", jx_prim_names[q->prim], q->nin);
    for (int i = 0; i < q->nin; i++) jx_strbuf_put(b, " %d", q->in[i]);
    jx_strbuf_put(b, " %d", q->nout);
    for (int i = 0; i < q->nout; i++) jx_strbuf_put(b, " %d", q->out[i]);
    save_params(s, q, refs[e]);
    jx_strbuf_put(b, "\n");
  }
  jx_strbuf_put(b, "out %d", j->nout);
  for (int i = 0; i < j->nout; i++) jx_strbuf_put(b, " %d", j->outvars[i]);
  jx_strbuf_put(b, "\nend\n");
}

/* j (after its inner jaxprs) as the next block; its index, -1 on error */
static int save_jaxpr(saver *s, const jx_jaxpr *j, int depth) {
  if (depth > JX_XF_MAX_DEPTH) {
    s->err = jx_error_new("export_save: jaxprs nested deeper than %d", JX_XF_MAX_DEPTH);
    return -1;
  }
  for (int c = 0; c < j->nconst; c++)
    if (!jx_is_array(j->consts[c])) {
      s->err = jx_error_new("export_save: the function closes over a traced value");
      return -1;
    }
  int(*refs)[2] = jx_calloc((size_t)(j->neqn ? j->neqn : 1), sizeof *refs);
  if (!refs) {
    s->err = jx_error_new("export_save: out of memory");
    return -1;
  }
  for (int e = 0; e < j->neqn && !s->err; e++) {
    const jx_eqn w = saved_form(&j->eqns[e]), *q = &w;
    if (!jx_xf_kind_fields[q->params.kind])
      s->err = jx_error_new("export_save: the params of %s (kind %s) have no serialized form in format %d",
                            jx_prim_names[q->prim], jx_params_kind_names[q->params.kind], JX_XF_VERSION);
    else if (q->prim == JX_P_dot_general && q->params.dot.pref) /* [BF16] */
      s->err = jx_error_new("export_save: dot_general with preferred_element_type %s has no serialized form "
                            "in format %d",
                            jx_dtype_name((jx_dtype)(q->params.dot.pref - 1)), JX_XF_VERSION);
    else
      save_inner(s, q, refs[e], depth);
  }
  if (!s->err) save_body(s, j, (const int(*)[2])refs);
  jx_free(refs);
  if (s->err) return -1;
  if (s->n == s->cap) {
    int cap = s->cap ? 2 * s->cap : 8;
    const jx_jaxpr **d = jx_realloc(s->done, sizeof *d * (size_t)cap);
    if (!d) {
      s->err = jx_error_new("export_save: out of memory");
      return -1;
    }
    s->done = d, s->cap = cap;
  }
  s->done[s->n] = j;
  return s->n++;
}

/* a tree's skeleton: * leaf, (...) tuple, [...] list, {hexkey:item,...} dict */
static void save_tree(jx_strbuf *b, jx_t t) {
  if (!jx_is_tree(t)) {
    jx_strbuf_put(b, "*");
    return;
  }
  int k = t->u.tree.tkind;
  jx_strbuf_put(b, "%c", k == JX_TREE_LIST ? '[' : k == JX_TREE_DICT ? '{' : '(');
  for (int i = 0; i < t->u.tree.n; i++) {
    if (i) jx_strbuf_put(b, ",");
    if (k == JX_TREE_DICT) {
      for (const unsigned char *c = (const unsigned char *)jx_tree_key(t, i); *c; c++)
        jx_strbuf_put(b, "%02x", *c);
      jx_strbuf_put(b, ":");
    }
    save_tree(b, t->u.tree.items[i]);
  }
  jx_strbuf_put(b, "%c", k == JX_TREE_LIST ? ']' : k == JX_TREE_DICT ? '}' : ')');
}

static jx_t save_in_pool(jx_fn *f, const jx_t *args, const char *path) {
  jx_t out_like = NULL, err = NULL;
  jx_jaxpr *j = jx_trace_to_jaxpr_for("export_save", f, args, &out_like, &err);
  if (!j) return err;
  saver s = {0};
  jx_strbuf_put(&s.b, "jx-export %d\nfn %d ", JX_XF_VERSION, f->nargs);
  save_tree(&s.b, jx_tuple(f->nargs, args));
  jx_strbuf_put(&s.b, " ");
  save_tree(&s.b, out_like);
  jx_strbuf_put(&s.b, "\n");
  save_jaxpr(&s, j, 0);
  jx_jaxpr_release(j);
  jx_free(s.done);
  err = s.err;
  if (!err && s.b.oom) err = jx_error_new("export_save: out of memory");
  if (!err) {
    char *tmp = jx_asprintf("%s.tmp%ld", path, (long)getpid());
    FILE *fp = tmp ? fopen(tmp, "wb") : NULL;
    bool ok = fp && fwrite(s.b.s, 1, s.b.n, fp) == s.b.n;
    if (fp && fclose(fp)) ok = false;
    if (ok && rename(tmp, path)) ok = false;
    if (!ok && tmp) remove(tmp);
    if (!ok) err = jx_error_new("export_save: cannot write %s", path);
    jx_free(tmp);
  }
  jx_free(s.b.s);
  return err;
}

jx_t jx_export_save(jx_fn *f, const jx_t *args, const char *path) {
  if (!f) return jx_error_new("export_save: no function (NULL)");
  if (!path || !*path) return jx_error_new("export_save: no path");
  jx_pool_push();
  jx_t err = save_in_pool(f, args, path);
  if (err) jx_retain(err);
  jx_pool_pop();
  return err ? jx_pool_own(err) : NULL;
}
