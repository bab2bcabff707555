/* custom_jvp_call, custom_vjp_call, custom_lin: functions with user
 * derivative rules (JAX's custom_jvp / custom_vjp). See control/custom.h.
 *
 *   custom_jvp_call(consts, args)  impl: the function. jvp: the user's jvp
 *       rule, called on the primals and tangents (its ops run under the
 *       enclosing traces: an outer jvp differentiates it, a stage trace
 *       records it). batch: the function batched, the rule wrapped to run
 *       batched.
 *   custom_vjp_call(consts, args)  impl: the function. jvp: fwd gives the
 *       outputs and residuals; the tangents are custom_lin(residuals,
 *       tangents), which linearize stages and the backward pass transposes
 *       into a call of bwd.
 *   custom_lin(residuals, tangents)  linear in the tangents. transpose:
 *       bwd. impl (forward mode, which JAX refuses): the transpose of bwd,
 *       which is linear in its cotangent, got by reverse mode through bwd.
 *
 * Under jit none of them is compiled as such: the optimizer inlines the
 * function (compile/pass_inline.c), and autodiff has already replaced the
 * calls by their rules' operations where derivatives were taken. */
#include "control/custom.h"

#include "control/derive.h"
#include "prims/lax.h"
#include "prims/prims.h"
#include "trace/trace.h"

#include <stdio.h>

typedef enum { CR_JVP, CR_FWD, CR_BWD, CR_VJP, CR_LIN, CR_BATCHED } cr_kind;

struct jx_crule {
  atomic_int refs;
  cr_kind kind;
  char fname[64];   /* the custom function's name, for messages */
  jx_fn *fn;        /* JVP: the jvp rule; FWD: fwd; BWD: bwd */
  int nargs;        /* f's arguments */
  bool *nondiff;    /* per argument */
  jx_t *arg_like;   /* per argument: its structure (retained) */
  jx_t out_like;    /* f's output structure (retained) */
  jx_aval *leaf_av; /* the argument leaves' avals */
  int nleaf;
  bool *leaf_diff; /* per argument leaf: part of a differentiated argument */
  jx_aval *out_av; /* the output leaves' avals */
  int nout;
  jx_crule *a, *b; /* VJP: fwd, bwd; LIN: bwd; BATCHED: the rule it batches */
  jx_t res_like;   /* LIN: the residuals' structure */
  /* BATCHED: input leaf k carries a leading batch dim of `size` when
   * all_in or in_mask[k]; output leaf k is summed over it when out_sum[k]
   * (a cotangent for an unbatched input), else moved to the front */
  int64_t size;
  bool all_in;
  bool *in_mask, *out_sum;
  int nin_mask, nout_sum;
};

static jx_crule *crule_new(cr_kind kind, const char *fname) {
  jx_crule *r = jx_calloc(1, sizeof *r);
  if (!r) return NULL;
  atomic_init(&r->refs, 1);
  r->kind = kind;
  snprintf(r->fname, sizeof r->fname, "%s", fname ? fname : "function");
  return r;
}

static void crule_release(jx_crule *r) {
  if (!r || atomic_fetch_sub(&r->refs, 1) != 1) return;
  jx_fn_release(r->fn);
  for (int i = 0; r->arg_like && i < r->nargs; i++) jx_release(r->arg_like[i]);
  jx_release(r->out_like);
  jx_release(r->res_like);
  crule_release(r->a);
  crule_release(r->b);
  jx_free(r->arg_like), jx_free(r->nondiff), jx_free(r->leaf_av), jx_free(r->leaf_diff);
  jx_free(r->out_av), jx_free(r->in_mask), jx_free(r->out_sum);
  jx_free(r);
}
static jx_crule *crule_ref(jx_crule *r) {
  atomic_fetch_add(&r->refs, 1);
  return r;
}
static void crule_free_void(void *u) { crule_release(u); }

jx_jaxpr *jx_crule_carrier(jx_crule *r) {
  jx_jaxpr *j = r ? jx_jaxpr_new() : NULL;
  if (!j) {
    crule_release(r);
    return NULL;
  }
  j->compiled = r;
  j->free_compiled = crule_free_void;
  return j;
}
static jx_crule *rule_of(const jx_params *pa) { return pa->custom.rule ? pa->custom.rule->compiled : NULL; }

/* ------------------------------------------------------- the user's rules */
static int flatten(jx_t tree, jx_t **out) {
  int n = jx_tree_leaves_to(tree, NULL, 0);
  *out = jx_malloc(sizeof(jx_t) * (size_t)(n ? n : 1));
  if (*out) jx_tree_leaves_to(tree, *out, n);
  return *out ? n : -1;
}

/* avals of tree's leaves into a new array (*n of them) */
static jx_aval *leaf_avals(jx_t tree, int *n) {
  jx_t *l;
  *n = flatten(tree, &l);
  jx_aval *av = *n < 0 ? NULL : jx_malloc(sizeof(jx_aval) * (size_t)(*n ? *n : 1));
  for (int i = 0; av && i < *n; i++) av[i] = l[i]->aval;
  if (*n >= 0) jx_free(l);
  return av;
}

/* The description of f shared by its rules: arguments, what is
 * differentiated, the output. false when out of memory. */
static bool fill_info(jx_crule *r, jx_t args_like, const bool *nondiff, jx_t out_like) {
  if (!jx_ok(args_like) || !jx_ok(out_like) || !jx_is_tree(args_like)) return false;
  r->nargs = jx_len(args_like);
  int n = r->nargs ? r->nargs : 1;
  r->nondiff = jx_calloc((size_t)n, sizeof(bool));
  r->arg_like = jx_calloc((size_t)n, sizeof(jx_t));
  r->out_like = jx_retain(jx_tree_structure(out_like));
  r->leaf_av = leaf_avals(args_like, &r->nleaf);
  r->out_av = leaf_avals(out_like, &r->nout);
  r->leaf_diff = jx_calloc((size_t)(r->nleaf > 0 ? r->nleaf : 1), sizeof(bool));
  if (!r->nondiff || !r->arg_like || !jx_ok(r->out_like) || !r->leaf_av || !r->out_av || !r->leaf_diff)
    return false;
  for (int i = 0, k = 0; i < r->nargs; i++) {
    r->nondiff[i] = nondiff && nondiff[i];
    r->arg_like[i] = jx_retain(jx_tree_structure(jx_at(args_like, i)));
    if (!jx_ok(r->arg_like[i])) return false;
    for (int m = jx_tree_num_leaves(r->arg_like[i]); m-- > 0; k++) r->leaf_diff[k] = !r->nondiff[i];
  }
  return true;
}

static jx_crule *user_rule(cr_kind kind, jx_fn *fn, const char *fname, jx_t args_like, const bool *nondiff,
                           jx_t out_like) {
  jx_crule *r = crule_new(kind, fname);
  if (!r) return NULL;
  r->fn = jx_fn_retain(fn);
  if (!fill_info(r, args_like, nondiff, out_like)) {
    crule_release(r);
    return NULL;
  }
  return r;
}

jx_crule *jx_crule_jvp(jx_fn *rule, const char *fname, jx_t args_like, const bool *nondiff, jx_t out_like) {
  return user_rule(CR_JVP, rule, fname, args_like, nondiff, out_like);
}

jx_crule *jx_crule_vjp(jx_fn *fwd, jx_fn *bwd, const char *fname, jx_t args_like, const bool *nondiff,
                       jx_t out_like) {
  jx_crule *r = user_rule(CR_VJP, NULL, fname, args_like, nondiff, out_like);
  if (r) r->a = user_rule(CR_FWD, fwd, fname, args_like, nondiff, out_like);
  if (r && r->a) r->b = user_rule(CR_BWD, bwd, fname, args_like, nondiff, out_like);
  if (r && !r->b) {
    crule_release(r);
    return NULL;
  }
  return r;
}

/* f's arguments (args[nargs]) from a list of argument leaves */
static jx_t unflatten_args(const jx_crule *r, jx_t list, jx_t *args) {
  jx_t *l;
  int n = flatten(list, &l);
  if (n < 0) return jx_error_new("custom rule: out of memory");
  jx_t err = n == r->nleaf ? NULL : jx_error_new("custom rule: %d leaves for %d", n, r->nleaf);
  for (int i = 0, k = 0; i < r->nargs && !err; i++) {
    args[i] = jx_tree_build(r->arg_like[i], l + k);
    k += jx_tree_num_leaves(r->arg_like[i]);
  }
  jx_free(l);
  return err;
}

/* x's leaves typed like avals av[0..n) and shaped like `like`; else an
 * error naming the rule (who) and the first mismatch */
static jx_t check_like(const jx_crule *r, const char *who, const char *what, jx_t x, jx_t like,
                       const jx_aval *av, int n) {
  if (!jx_ok(x)) return x;
  if (!jx_tree_same_structure(x, like))
    return jx_error_new("%s of %s: %s has the wrong tree structure (%d leaves, expected %d)", who, r->fname,
                        what, jx_tree_num_leaves(x), n);
  jx_t *l;
  int m = flatten(x, &l);
  if (m < 0) return jx_error_new("%s of %s: out of memory", who, r->fname);
  jx_t err = NULL;
  for (int i = 0; i < m && !err; i++) {
    char s1[160], s2[160];
    if (jx_is_error(l[i]))
      err = l[i];
    else if (l[i]->kind == JX_VK_TREE || l[i]->aval.dtype != av[i].dtype || !jx_aval_eq(&l[i]->aval, &av[i]))
      err =
          jx_error_new("%s of %s: %s leaf %d is %s, expected %s (dtype and shape must match)", who, r->fname,
                       what, i, jx_aval_str(&l[i]->aval, s1, sizeof s1), jx_aval_str(&av[i], s2, sizeof s2));
  }
  jx_free(l);
  return err;
}

/* the rule's result must be a pair */
static jx_t check_pair(const jx_crule *r, const char *who, jx_t res) {
  if (!jx_ok(res)) return res;
  if (!jx_is_tree(res) || jx_len(res) != 2)
    return jx_error_new("%s of %s must return a pair (a tuple of 2), but returned %s", who, r->fname,
                        jx_is_tree(res) ? "a tree of another length" : "an array");
  return NULL;
}

/* n leaves of x as a list, appended after `prefix` leaves already in buf */
static jx_t list_of_leaves(int n, const jx_t *a, int m, const jx_t *b) {
  jx_t *all = jx_malloc(sizeof(jx_t) * (size_t)(n + m + 1));
  if (!all) return jx_error_new("custom rule: out of memory");
  for (int i = 0; i < n; i++) all[i] = a[i];
  for (int i = 0; i < m; i++) all[n + i] = b[i];
  jx_t l = jx_list(n + m, all);
  jx_free(all);
  return l;
}

/* the differentiated arguments of args as a tuple */
static jx_t diff_tuple(const jx_crule *r, const jx_t *args) {
  jx_t small[16] = {0}, *d = r->nargs <= 16 ? small : jx_malloc(sizeof(jx_t) * (size_t)r->nargs);
  if (!d) return jx_error_new("custom rule: out of memory");
  int n = 0;
  for (int i = 0; i < r->nargs; i++)
    if (!r->nondiff[i]) d[n++] = args[i];
  jx_t t = jx_tuple(n, d);
  if (d != small) jx_free(d);
  return t;
}

static int count_nondiff(const jx_crule *r) {
  int n = 0;
  for (int i = 0; i < r->nargs; i++) n += r->nondiff[i];
  return n;
}

/* jvp_rule(nondiff args..., primals, tangents) -> (out, tangent out) */
static jx_t call_jvp_user(const jx_crule *r, const jx_t *in) {
  int na = r->nargs ? r->nargs : 1, nn = count_nondiff(r);
  jx_t *p = jx_malloc(sizeof(jx_t) * (size_t)(3 * na + 2));
  if (!p) return jx_error_new("custom_jvp: out of memory");
  jx_t *t = p + na, *ua = t + na, res = NULL;
  jx_t err = unflatten_args(r, in[0], p);
  if (!err) err = unflatten_args(r, in[1], t);
  for (int i = 0, k = 0; !err && i < r->nargs; i++)
    if (r->nondiff[i]) ua[k++] = p[i];
  if (!err) {
    ua[nn] = diff_tuple(r, p), ua[nn + 1] = diff_tuple(r, t);
    res = jx_call(r->fn, ua);
    err = check_pair(r, "custom_jvp: the jvp rule", res);
  }
  jx_free(p);
  if (!err)
    err = check_like(r, "custom_jvp: the jvp rule", "the primal output", jx_at(res, 0), r->out_like,
                     r->out_av, r->nout);
  if (!err)
    err = check_like(r, "custom_jvp: the jvp rule", "the tangent output", jx_at(res, 1), r->out_like,
                     r->out_av, r->nout);
  if (err) return err;
  jx_t *o, *to;
  int m = flatten(jx_at(res, 0), &o), m2 = flatten(jx_at(res, 1), &to);
  jx_t l = m >= 0 && m2 >= 0 ? list_of_leaves(m, o, m2, to) : jx_error_new("custom_jvp: out of memory");
  if (m >= 0) jx_free(o);
  if (m2 >= 0) jx_free(to);
  return l;
}

/* fwd(args...) -> (out, residuals); the nondiff arguments are kept with
 * the residuals for bwd: the result is (list(out leaves), (nondiff, res)) */
static jx_t call_fwd_user(const jx_crule *r, const jx_t *in) {
  int na = r->nargs ? r->nargs : 1, nn = count_nondiff(r);
  jx_t *p = jx_malloc(sizeof(jx_t) * (size_t)(2 * na + 1));
  if (!p) return jx_error_new("custom_vjp: out of memory");
  jx_t *nd = p + na, res = NULL;
  jx_t err = unflatten_args(r, in[0], p);
  if (!err) {
    res = jx_call(r->fn, p);
    err = check_pair(r, "custom_vjp: fwd", res);
  }
  for (int i = 0, k = 0; !err && i < r->nargs; i++)
    if (r->nondiff[i]) nd[k++] = p[i];
  jx_t saved = err ? NULL : JX_TUPLE(jx_tuple(nn, nd), jx_at(res, 1));
  jx_free(p);
  if (!err)
    err = check_like(r, "custom_vjp: fwd", "the output", jx_at(res, 0), r->out_like, r->out_av, r->nout);
  jx_t *rl;
  int nr = err ? 0 : flatten(jx_at(res, 1), &rl);
  if (!err && nr < 0) err = jx_error_new("custom_vjp: out of memory");
  for (int i = 0; !err && i < nr; i++)
    if (jx_is_error(rl[i])) err = rl[i];
  if (!err) jx_free(rl);
  if (err) return err;
  jx_t *o;
  int m = flatten(jx_at(res, 0), &o);
  if (m < 0) return jx_error_new("custom_vjp: out of memory");
  jx_t outs = jx_list(m, o);
  jx_free(o);
  return JX_TUPLE(outs, saved);
}

/* bwd(nondiff args..., res, ct) -> one cotangent per differentiated
 * argument; the result is the list of their leaves */
static jx_t call_bwd_user(const jx_crule *r, const jx_t *in) {
  int nn = count_nondiff(r), nd = r->nargs - nn;
  jx_t nondiff = jx_at(in[0], 0), res = jx_at(in[0], 1);
  jx_t *ct;
  int m = flatten(in[1], &ct);
  if (m < 0) return jx_error_new("custom_vjp: out of memory");
  jx_t ctree = m == r->nout ? jx_tree_build(r->out_like, ct) : jx_error_new("custom_vjp: cotangent count");
  jx_free(ct);
  jx_t *ua = jx_malloc(sizeof(jx_t) * (size_t)(nn + 2));
  if (!ua) return jx_error_new("custom_vjp: out of memory");
  for (int i = 0; i < nn; i++) ua[i] = jx_at(nondiff, i);
  ua[nn] = res, ua[nn + 1] = ctree;
  jx_t g = jx_ok(ctree) ? jx_call(r->fn, ua) : ctree;
  jx_free(ua);
  if (!jx_ok(g)) return g;
  if (!jx_is_tree(g) || jx_len(g) != nd)
    return jx_error_new("custom_vjp: bwd of %s must return a tuple of %d cotangents (one per differentiated "
                        "argument), but returned %s of %d",
                        r->fname, nd, jx_is_tree(g) ? "a tree" : "an array", jx_is_tree(g) ? jx_len(g) : 1);
  jx_t err = NULL;
  for (int i = 0, k = 0, off = 0; i < r->nargs && !err; i++) {
    int cnt = jx_tree_num_leaves(r->arg_like[i]);
    if (!r->nondiff[i]) {
      char what[64];
      snprintf(what, sizeof what, "the cotangent of argument %d", i);
      err = check_like(r, "custom_vjp: bwd", what, jx_at(g, k++), r->arg_like[i], r->leaf_av + off, cnt);
    }
    off += cnt;
  }
  if (err) return err;
  jx_t *l;
  int n = flatten(g, &l);
  if (n < 0) return jx_error_new("custom_vjp: out of memory");
  jx_t out = jx_list(n, l);
  jx_free(l);
  return out;
}

static jx_t crule_call(const jx_crule *r, const jx_t *in);

/* a batched rule: the inner rule under a batch trace */
typedef struct {
  jx_trace *t;
  const jx_crule *r;
  int k;
  jx_t err;
} bwrap;

static jx_t wrap_in(jx_t leaf, void *u) {
  bwrap *w = u;
  int k = w->k++;
  if (w->r->all_in || (k < w->r->nin_mask && w->r->in_mask[k])) return jx_batch_tracer(w->t, leaf, 0);
  return leaf;
}
static jx_t unwrap_out(jx_t leaf, void *u) {
  bwrap *w = u;
  int k = w->k++, bd;
  jx_t v;
  jx_batch_unpack(w->t, leaf, &v, &bd);
  if (jx_is_error(v)) return v;
  if (w->r->out_sum && k < w->r->nout_sum && w->r->out_sum[k])
    return bd == JX_NONE ? v : jx_lax_reduce(JX_P_reduce_sum, v, 1, &bd);
  return jx_batch_to_front(v, bd, w->r->size);
}

static jx_t call_batched(const jx_crule *r, const jx_t *in) {
  int nargs = r->nargs;
  bwrap w = {jx_batch_begin(r->size), r, 0, NULL};
  if (!w.t) return jx_error_new("custom rule (batched): %s", jx_trace_push_failure());
  w.t->label = "vmap";
  jx_t args[2];
  for (int i = 0; i < nargs; i++) args[i] = jx_tree_map(wrap_in, in[i], &w);
  jx_t out = crule_call(r->a, args);
  w.k = 0;
  jx_t res = jx_ok(out) ? jx_tree_map(unwrap_out, out, &w) : out;
  jx_t poison = jx_trace_poisoned(w.t);
  jx_batch_end(w.t);
  return poison ? poison : res;
}

static jx_t crule_call(const jx_crule *r, const jx_t *in) {
  int nargs = r->kind == CR_FWD ? 1 : r->kind == CR_BATCHED ? r->nargs : 2; /* fwd (batched): 1 */
  for (int i = 0; i < nargs; i++)
    if (jx_is_error(in[i])) return in[i];
  switch (r->kind) {
    case CR_JVP: return call_jvp_user(r, in);
    case CR_FWD: return call_fwd_user(r, in);
    case CR_BWD: return call_bwd_user(r, in);
    case CR_BATCHED: return call_batched(r, in);
    default: return jx_error_new("custom rule: %s is not callable", r->fname);
  }
}

/* r batched: input leaves per in_mask (NULL: all), outputs moved to the
 * front or summed per out_sum (NULL: none summed). Copies the masks. */
static jx_crule *batched(jx_crule *r, int64_t size, const bool *in_mask, int nin, const bool *out_sum,
                         int nsum) {
  jx_crule *b = crule_new(CR_BATCHED, r->fname);
  if (!b) return NULL;
  b->a = crule_ref(r);
  b->size = size;
  b->nargs = r->kind == CR_FWD || (r->kind == CR_BATCHED && r->nargs == 1) ? 1 : 2;
  b->all_in = !in_mask;
  b->in_mask = in_mask ? jx_malloc(sizeof(bool) * (size_t)(nin + 1)) : NULL;
  b->out_sum = out_sum ? jx_malloc(sizeof(bool) * (size_t)(nsum + 1)) : NULL;
  if ((in_mask && !b->in_mask) || (out_sum && !b->out_sum)) {
    crule_release(b);
    return NULL;
  }
  if (in_mask) memcpy(b->in_mask, in_mask, sizeof(bool) * (size_t)nin), b->nin_mask = nin;
  if (out_sum) memcpy(b->out_sum, out_sum, sizeof(bool) * (size_t)nsum), b->nout_sum = nsum;
  return b;
}

/* a VJP or LIN rule like r (its description) with other parts */
static jx_crule *like_rule(const jx_crule *r, cr_kind kind) {
  jx_crule *c = crule_new(kind, r->fname);
  if (!c) return NULL;
  c->nleaf = r->nleaf;
  c->leaf_diff = jx_malloc(sizeof(bool) * (size_t)(r->nleaf + 1));
  c->leaf_av = jx_malloc(sizeof(jx_aval) * (size_t)(r->nleaf + 1));
  if (!c->leaf_diff || !c->leaf_av) {
    crule_release(c);
    return NULL;
  }
  memcpy(c->leaf_diff, r->leaf_diff, sizeof(bool) * (size_t)r->nleaf);
  memcpy(c->leaf_av, r->leaf_av, sizeof(jx_aval) * (size_t)r->nleaf);
  return c;
}

/* ------------------------------------------------------------ primitives */
static jx_t custom_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  const jx_jaxpr *j = p == JX_P_custom_lin ? pa->custom.rule : pa->custom.fun;
  if (!j || !rule_of(pa)) return jx_rule_error(jx_prim_names[p], in, nin, "no function or rules");
  if (nin != j->nin) return jx_rule_error(jx_prim_names[p], in, nin, "expected %d inputs", j->nin);
  for (int i = 0; i < nin; i++)
    if (!jx_aval_eq(&in[i], &j->avals[j->invars[i]]) || in[i].dtype != j->avals[j->invars[i]].dtype) {
      char s[160];
      return jx_rule_error(jx_prim_names[p], in, nin, "input %d should be %s", i,
                           jx_aval_str(&j->avals[j->invars[i]], s, sizeof s));
    }
  for (int k = 0; k < j->nout; k++) out[k] = j->avals[j->outvars[k]];
  return NULL;
}

static jx_t custom_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin;
  return jx_eval_jaxpr(pa->custom.fun, in, out);
}

jx_t jx_custom_bind(jx_prim p, jx_jaxpr *fun, jx_jaxpr *carrier, int nconst, const jx_t *ins, jx_t *outs) {
  jx_params q;
  jx_params_init(&q, JX_PK_CUSTOM);
  q.custom.fun = fun, q.custom.rule = carrier, q.custom.nconst = nconst;
  return jx_bind(p, fun->nin, ins, &q, fun->nout, outs);
}

/* JAX's rule: a custom rule covers the explicit arguments only */
static jx_t closed_over_check(const char *op, const jx_t *t, int nconst, const jx_crule *r) {
  for (int i = 0; i < nconst; i++)
    if (t[i])
      return jx_error_new(
          "%s: %s is differentiated with respect to a value it closes over (its constant %d), "
          "but its custom rule covers only its explicit arguments: pass the value as an "
          "argument",
          op, r->fname, i);
  return NULL;
}

/* tangents of in[0..n), zeros for the symbolic ones */
static jx_t tangent_list(int n, const jx_t *x, const jx_t *t) {
  jx_t *l = jx_malloc(sizeof(jx_t) * (size_t)(n + 1));
  if (!l) return jx_error_new("custom rule: out of memory");
  for (int i = 0; i < n; i++) l[i] = t[i] ? t[i] : jx_lax_zeros(&x[i]->aval);
  jx_t r = jx_list(n, l);
  jx_free(l);
  return r;
}

static jx_t cjvp_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                     jx_t *tout) {
  (void)p;
  const jx_crule *r = rule_of(pa);
  int nc = pa->custom.nconst, n = nin - nc, m = pa->custom.fun->nout;
  jx_t err = closed_over_check("custom_jvp", t, nc, r);
  if (err) return err;
  jx_t in[2] = {jx_list(n, x + nc), tangent_list(n, x + nc, t + nc)};
  jx_t res = crule_call(r, in), *l;
  if (!jx_ok(res)) return res;
  int k = flatten(res, &l);
  if (k != 2 * m) {
    if (k >= 0) jx_free(l);
    return jx_error_new("custom_jvp: %s: the rule gave %d values for %d outputs", r->fname, k, m);
  }
  for (int i = 0; i < m; i++) out[i] = l[i], tout[i] = l[m + i];
  jx_free(l);
  return NULL;
}

/* the input at i moved to the front if batched; batched[i] says whether */
static void batch_inputs(const jx_t *in, const int *bd, int nin, jx_t *ins, bool *batched) {
  for (int i = 0; i < nin; i++) {
    batched[i] = bd[i] != JX_NONE;
    ins[i] = batched[i] ? jx_moveaxis(in[i], bd[i], 0) : in[i];
  }
}

static jx_t cjvp_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                       int *obd) {
  jx_jaxpr *fun = pa->custom.fun;
  int nc = pa->custom.nconst, n = nin - nc;
  int64_t size = jx_batch_size(in, bd, nin);
  jx_t *ins = jx_malloc(sizeof(jx_t) * (size_t)(nin + 1));
  bool *mask = jx_malloc(sizeof(bool) * (size_t)(nin + n + 1));
  jx_t err = ins && mask ? NULL : jx_error_new("custom_jvp: out of memory");
  if (!err) {
    batch_inputs(in, bd, nin, ins, mask);
    memcpy(mask + nin, mask + nc, sizeof(bool) * (size_t)n); /* the tangents batched like their primals */
  }
  jx_jaxpr *fb = err ? NULL : jx_derive_batch(fun, mask, size, &err);
  jx_jaxpr *carrier = fb ? jx_crule_carrier(batched(rule_of(pa), size, mask + nc, 2 * n, NULL, 0)) : NULL;
  if (fb && !carrier) err = jx_error_new("custom_jvp: out of memory");
  if (carrier) err = jx_custom_bind(p, fb, carrier, nc, ins, out);
  for (int k = 0; k < fun->nout; k++) obd[k] = 0;
  jx_jaxpr_release(carrier);
  jx_jaxpr_release(fb);
  jx_free(ins), jx_free(mask);
  return err;
}

static void print_custom(jx_strbuf *b, const jx_params *p, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  const jx_crule *r = rule_of(p);
  jx_strbuf_put(b, " name=%s", r ? r->fname : "?");
  if (p->custom.nconst) jx_strbuf_put(b, " %s=%d", p->custom.fun ? "nconst" : "nres", (int)p->custom.nconst);
}

const jx_rules jx_rules_custom_jvp_call = {.name = "custom_jvp_call",
                                           .nin = -1,
                                           .nout = -1,
                                           .abstract_eval = custom_abstract,
                                           .impl = custom_impl,
                                           .jvp = cjvp_jvp,
                                           .batch = cjvp_batch,
                                           .impl_allocates = true,
                                           .params_kind = JX_PK_CUSTOM,
                                           .print_params = print_custom,
                                           .lower = {.kind = JX_LOWER_CALL}};

/* ------------------------------------------------------------ custom_vjp */
/* A carrier for custom_lin: its inputs' and outputs' avals are the
 * carrier's, so abstract eval reads them there. */
static jx_jaxpr *lin_carrier(jx_crule *lin, int nin, const jx_aval *in, int nout, const jx_aval *out) {
  jx_jaxpr *c = jx_crule_carrier(lin);
  int *vars = c ? jx_malloc(sizeof(int) * (size_t)(nout + 1)) : NULL;
  bool ok = vars != NULL;
  for (int i = 0; ok && i < nin; i++) ok = jx_jaxpr_add_invar(c, &in[i]) >= 0;
  for (int k = 0; ok && k < nout; k++) ok = (vars[k] = jx_jaxpr_add_var(c, &out[k])) >= 0;
  if (ok) ok = !jx_jaxpr_set_outs(c, nout, vars);
  jx_free(vars);
  if (!ok) {
    jx_jaxpr_release(c);
    return NULL;
  }
  return c;
}

static jx_t bind_lin(jx_jaxpr *carrier, int nres, const jx_t *ins, jx_t *outs) {
  jx_params q;
  jx_params_init(&q, JX_PK_CUSTOM);
  q.custom.rule = carrier, q.custom.nconst = nres;
  return jx_bind(JX_P_custom_lin, carrier->nin, ins, &q, carrier->nout, outs);
}

/* tangents: custom_lin(residual leaves, tangents of the differentiated leaves) */
static jx_t vjp_tangents(const jx_crule *r, jx_t saved, const jx_t *x, const jx_t *t, int n, jx_t *out, int m,
                         jx_t *tout) {
  jx_t *rl;
  int nr = flatten(saved, &rl);
  if (nr < 0) return jx_error_new("custom_vjp: out of memory");
  jx_t *ins = jx_malloc(sizeof(jx_t) * (size_t)(nr + n + 1));
  jx_aval *av = jx_malloc(sizeof(jx_aval) * (size_t)(nr + n + m + 1));
  jx_crule *lin = ins && av ? like_rule(r, CR_LIN) : NULL;
  jx_t err = lin ? NULL : jx_error_new("custom_vjp: out of memory");
  int k = 0;
  for (int i = 0; !err && i < nr; i++) ins[k++] = rl[i];
  for (int i = 0; !err && i < n; i++)
    if (r->leaf_diff[i]) ins[k++] = t[i] ? t[i] : jx_lax_zeros(&x[i]->aval);
  for (int i = 0; !err && i < k; i++) av[i] = ins[i]->aval;
  for (int i = 0; !err && i < m; i++) av[k + i] = out[i]->aval;
  if (!err) {
    lin->a = crule_ref(r->b);
    lin->res_like = jx_retain(jx_tree_structure(saved));
  }
  jx_jaxpr *c = err ? NULL : lin_carrier(lin, k, av, m, av + k);
  if (!err && !c) err = jx_error_new("custom_vjp: out of memory");
  if (c) err = bind_lin(c, nr, ins, tout);
  jx_jaxpr_release(c);
  jx_free(rl), jx_free(ins), jx_free(av);
  return err;
}

static jx_t cvjp_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                     jx_t *tout) {
  (void)p;
  const jx_crule *r = rule_of(pa);
  int nc = pa->custom.nconst, n = nin - nc, m = pa->custom.fun->nout;
  jx_t err = closed_over_check("custom_vjp", t, nc, r);
  if (err) return err;
  jx_t in = jx_list(n, x + nc);
  jx_t fr = crule_call(r->a, &in), *ol;
  if (!jx_ok(fr)) return fr;
  int k = flatten(jx_at(fr, 0), &ol);
  if (k != m) {
    if (k >= 0) jx_free(ol);
    return jx_error_new("custom_vjp: %s: fwd gave %d outputs for %d", r->fname, k, m);
  }
  for (int i = 0; i < m; i++) out[i] = ol[i];
  jx_free(ol);
  bool any = false;
  for (int i = 0; i < n; i++) any |= r->leaf_diff[i] && t[nc + i];
  return any ? vjp_tangents(r, jx_at(fr, 1), x + nc, t + nc, n, out, m, tout) : NULL;
}

static jx_t cvjp_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                       int *obd) {
  jx_jaxpr *fun = pa->custom.fun;
  const jx_crule *r = rule_of(pa);
  int nc = pa->custom.nconst, n = nin - nc;
  int64_t size = jx_batch_size(in, bd, nin);
  jx_t *ins = jx_malloc(sizeof(jx_t) * (size_t)(nin + 1));
  bool *mask = jx_malloc(sizeof(bool) * (size_t)(2 * nin + 1)), *sum = mask ? mask + nin : NULL;
  jx_t err = ins && mask ? NULL : jx_error_new("custom_vjp: out of memory");
  int d = 0;
  if (!err) batch_inputs(in, bd, nin, ins, mask);
  for (int i = 0; !err && i < n; i++) /* a cotangent for an unbatched leaf: summed over the batch */
    if (r->leaf_diff[i]) sum[d++] = !mask[nc + i];
  jx_jaxpr *fb = err ? NULL : jx_derive_batch(fun, mask, size, &err);
  jx_crule *v = fb ? like_rule(r, CR_VJP) : NULL;
  if (v) v->a = batched(r->a, size, mask + nc, n, NULL, 0), v->b = batched(r->b, size, NULL, 0, sum, d);
  jx_jaxpr *carrier = v && v->a && v->b ? jx_crule_carrier(v) : NULL;
  if (v && !carrier) crule_release(v);
  if (fb && !carrier) err = jx_error_new("custom_vjp: out of memory");
  if (carrier) err = jx_custom_bind(p, fb, carrier, nc, ins, out);
  for (int k = 0; k < fun->nout; k++) obd[k] = 0;
  jx_jaxpr_release(carrier);
  jx_jaxpr_release(fb);
  jx_free(ins), jx_free(mask);
  return err;
}

const jx_rules jx_rules_custom_vjp_call = {.name = "custom_vjp_call",
                                           .nin = -1,
                                           .nout = -1,
                                           .abstract_eval = custom_abstract,
                                           .impl = custom_impl,
                                           .jvp = cvjp_jvp,
                                           .batch = cvjp_batch,
                                           .impl_allocates = true,
                                           .params_kind = JX_PK_CUSTOM,
                                           .print_params = print_custom,
                                           .lower = {.kind = JX_LOWER_CALL}};

/* ------------------------------------------------------------ custom_lin */
/* bwd(residuals, cotangents) for the carrier's rule */
static jx_t lin_bwd(const jx_params *pa, const jx_t *res, const jx_t *cts) {
  const jx_jaxpr *c = pa->custom.rule;
  const jx_crule *r = rule_of(pa);
  jx_t in[2] = {jx_tree_build(r->res_like, res), jx_list(c->nout, cts)};
  return crule_call(r->a, in);
}

/* Forward: bwd is linear in its cotangent, so J t is the cotangent that
 * reverse mode through ct -> bwd(res, ct) gives for t. */
typedef struct {
  const jx_params *pa;
  const jx_t *res;
} lin_fwd;
static jx_t lin_fwd_body(const jx_t *cts, void *u) {
  lin_fwd *c = u;
  return lin_bwd(c->pa, c->res, cts);
}

static jx_t lin_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p;
  const jx_jaxpr *c = pa->custom.rule;
  int nr = pa->custom.nconst, d = nin - nr, m = c->nout;
  jx_t *z = jx_malloc(sizeof(jx_t) * (size_t)(m + 1));
  if (!z) return jx_error_new("custom_lin: out of memory");
  for (int k = 0; k < m; k++) z[k] = jx_lax_zeros(&c->avals[c->outvars[k]]);
  lin_fwd u = {pa, in};
  jx_fn *g = jx_fn_new(lin_fwd_body, m, &u), *pb = NULL;
  jx_t y = jx_vjp(g, z, &pb);
  jx_t r = jx_ok(y) ? jx_call(pb, (jx_t[]){jx_list(d, in + nr)}) : y;
  for (int k = 0; k < m; k++) out[k] = jx_ok(r) ? jx_at(r, k) : r;
  jx_fn_free(pb);
  jx_fn_free(g);
  jx_free(z);
  return jx_ok(r) ? NULL : r;
}

static jx_t lin_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                    jx_t *tout) {
  int nr = pa->custom.nconst;
  for (int i = 0; i < nr; i++)
    if (t[i])
      return jx_error_new("custom_vjp: %s: forward-mode derivative of its linearization with respect to the "
                          "residuals is not supported",
                          rule_of(pa)->fname);
  jx_t err = jx_bind(p, nin, x, pa, pa->custom.rule->nout, out);
  bool any = false;
  for (int i = nr; i < nin; i++) any |= t[i] != NULL;
  if (err || !any) return err;
  jx_t *ins = jx_malloc(sizeof(jx_t) * (size_t)(nin + 1));
  if (!ins) return jx_error_new("custom_lin: out of memory");
  for (int i = 0; i < nin; i++) ins[i] = i < nr ? x[i] : t[i] ? t[i] : jx_lax_zeros(&x[i]->aval);
  err = jx_bind(p, nin, ins, pa, pa->custom.rule->nout, tout);
  jx_free(ins);
  return err;
}

static jx_t lin_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                          const jx_params *pa, jx_t *cts) {
  (void)p, (void)av;
  const jx_jaxpr *c = pa->custom.rule;
  int nr = pa->custom.nconst, m = c->nout;
  for (int i = 0; i < nr; i++)
    if (!in[i])
      return jx_error_new("custom_lin: transpose with respect to a residual of %s", rule_of(pa)->fname);
  jx_t *z = jx_malloc(sizeof(jx_t) * (size_t)(m + 1)), *l = NULL;
  if (!z) return jx_error_new("custom_lin: out of memory");
  for (int k = 0; k < m; k++) z[k] = ct[k] ? ct[k] : jx_lax_zeros(&c->avals[c->outvars[k]]);
  jx_t g = lin_bwd(pa, in, z);
  jx_free(z);
  int d = jx_ok(g) ? flatten(g, &l) : -1;
  jx_t err = !jx_ok(g) ? g : d != nin - nr ? jx_error_new("custom_lin: bwd gave %d cotangents", d) : NULL;
  for (int k = 0; !err && k < d; k++) cts[nr + k] = l[k];
  if (d >= 0) jx_free(l);
  return err;
}

static jx_t lin_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                      int *obd) {
  (void)p;
  const jx_jaxpr *c = pa->custom.rule;
  const jx_crule *r = rule_of(pa);
  int nr = pa->custom.nconst, d = nin - nr, m = c->nout;
  int64_t size = jx_batch_size(in, bd, nin);
  jx_t *ins = jx_malloc(sizeof(jx_t) * (size_t)(nin + 1));
  bool *mask = jx_malloc(sizeof(bool) * (size_t)(nin + nr + m + d + 1));
  jx_aval *av = jx_malloc(sizeof(jx_aval) * (size_t)(nin + m + 1));
  jx_crule *lin = ins && mask && av ? like_rule(r, CR_LIN) : NULL;
  jx_t err = lin ? NULL : jx_error_new("custom_lin: out of memory");
  if (err) goto done;
  batch_inputs(in, bd, nin, ins, mask);
  bool *bin = mask + nin, *sum = bin + nr + m; /* bwd's inputs: residuals, then every cotangent batched */
  for (int i = 0; i < nr + m; i++) bin[i] = i < nr ? mask[i] : true;
  for (int k = 0; k < d; k++) sum[k] = !mask[nr + k];
  for (int i = 0; i < nin; i++) av[i] = ins[i]->aval;
  for (int k = 0; k < m; k++) {
    jx_aval a = c->avals[c->outvars[k]];
    memmove(a.shape + 1, a.shape, sizeof(int64_t) * (size_t)a.ndim);
    a.shape[0] = size, a.ndim++;
    av[nin + k] = a;
  }
  lin->a = batched(r->a, size, bin, nr + m, sum, d);
  lin->res_like = jx_retain(r->res_like);
  jx_jaxpr *nc = lin->a ? lin_carrier(lin, nin, av, m, av + nin) : NULL;
  if (!lin->a) crule_release(lin);
  err = nc ? bind_lin(nc, nr, ins, out) : jx_error_new("custom_lin: out of memory");
  jx_jaxpr_release(nc);
done:
  for (int k = 0; k < m; k++) obd[k] = 0;
  jx_free(ins), jx_free(mask), jx_free(av);
  return err;
}

const jx_rules jx_rules_custom_lin = {.name = "custom_lin",
                                      .nin = -1,
                                      .nout = -1,
                                      .abstract_eval = custom_abstract,
                                      .impl = lin_impl,
                                      .jvp = lin_jvp,
                                      .transpose = lin_transpose,
                                      .batch = lin_batch,
                                      .impl_allocates = true,
                                      .params_kind = JX_PK_CUSTOM,
                                      .print_params = print_custom,
                                      .lower = {.kind = JX_LOWER_CALL}};
