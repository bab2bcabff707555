/* Control flow: cond, switch, while_loop, fori_loop, scan. Each traces its
 * functions once into jaxprs (constants they read become explicit
 * operands, so values from enclosing transformations flow through the
 * primitive's rules), checks the types, and binds the primitive. */
#include "api/api.h"
#include "api/trace_fn.h"
#include "prims/lax.h"
#include "ops/ops.h"

#include <stdio.h>

typedef struct {
  jx_jaxpr *j;
  jx_t *consts;
  int nconst;
  jx_t out_like;
} closed;

static void closed_free(closed *c) {
  for (int i = 0; i < c->nconst; i++) jx_release(c->consts[i]);
  jx_free(c->consts);
  jx_jaxpr_release(c->j);
  c->j = NULL, c->consts = NULL, c->nconst = 0;
}

/* trace f on args' avals; its constants become its leading inputs */
static jx_t trace_closed(const char *op, jx_fn *f, int nargs, const jx_t *args, closed *c) {
  memset(c, 0, sizeof *c);
  if (!f) return jx_error_new("%s: function is NULL", op);
  if (f->nargs != nargs) return jx_error_new("%s: the function takes %d arguments, expected %d", op, f->nargs, nargs);
  jx_t err;
  c->j = jx_trace_to_jaxpr_for(op, f, args, &c->out_like, &err);
  if (!c->j) return err;
  c->nconst = jx_jaxpr_hoist_consts(c->j, &c->consts);
  if (c->nconst < 0) {
    c->nconst = 0;
    closed_free(c);
    return jx_error_new("%s: out of memory", op);
  }
  return NULL;
}

static int leaves(jx_t tree, jx_t **out) {
  int n = jx_tree_flatten(tree, NULL, 0);
  *out = jx_malloc(sizeof(jx_t) * (size_t)(n ? n : 1));
  if (*out) jx_tree_flatten(tree, *out, n);
  return *out ? n : -1;
}

/* "(f32[3], i32[])" for messages */
static void tree_types(jx_t t, char *buf, size_t n) {
  jx_t *l;
  int k = leaves(t, &l);
  size_t w = (size_t)snprintf(buf, n, "(");
  for (int i = 0; i < k && w < n; i++) {
    char s[160];
    w += (size_t)snprintf(buf + w, n - w, "%s%s", i ? ", " : "", jx_aval_str(&l[i]->aval, s, sizeof s));
  }
  if (w < n) snprintf(buf + w, n - w, ")");
  jx_free(l);
}

/* same tree structure and leaf types (dtype and shape) */
static bool same_types(jx_t a, jx_t b) {
  if (!jx_tree_same_structure(a, b)) return false;
  jx_t *la, *lb;
  int n = leaves(a, &la), m = leaves(b, &lb);
  bool ok = n == m && n >= 0;
  for (int i = 0; ok && i < n; i++) ok = jx_aval_eq(&la[i]->aval, &lb[i]->aval);
  jx_free(la), jx_free(lb);
  return ok;
}

static jx_t unflatten_outs(jx_t like, jx_t *outs) { return jx_tree_unflatten(like, outs); }

/* ----------------------------------------------------------------- cond */
jx_t jx_cond(jx_t pred, jx_fn *on_true, jx_fn *on_false, int n, const jx_t *operands) {
  jx_t err = jx_op_check_array("cond", pred);
  if (!err && (n < 0 || (n > 0 && !operands))) err = jx_error_new("cond: bad operand list (%d)", n);
  if (!err) err = jx_first_error(n, operands);
  if (err) return err;
  char s[160];
  if (pred->aval.ndim != 0)
    return jx_error_new("cond: the predicate must be a scalar, got %s", jx_aval_str(&pred->aval, s, sizeof s));
  if (pred->aval.dtype != JX_BOOL) pred = jx_ne(pred, jx_zeros_like(pred));
  closed t, f;
  if ((err = trace_closed("cond (true branch)", on_true, n, operands, &t))) return err;
  if ((err = trace_closed("cond (false branch)", on_false, n, operands, &f))) {
    closed_free(&t);
    return err;
  }
  if (!same_types(t.out_like, f.out_like)) {
    char a[512], b[512];
    tree_types(t.out_like, a, sizeof a);
    tree_types(f.out_like, b, sizeof b);
    closed_free(&t), closed_free(&f);
    return jx_error_new("cond: the branches must return the same types, but the true branch returns %s and the "
                        "false branch returns %s", a, b);
  }
  /* operands: (true consts, false consts, operand leaves); each branch
   * gets unused inputs for the other's constants */
  jx_t all = jx_tuple(n, operands), *ol;
  int nl = leaves(all, &ol), nin = t.nconst + f.nconst + nl;
  jx_t *ins = jx_malloc(sizeof(jx_t) * (size_t)(nin + 1));
  int *order = jx_malloc(sizeof(int) * (size_t)(nin + 1));
  jx_aval *extra = jx_malloc(sizeof(jx_aval) * (size_t)(nin + 1));
  jx_t *outs = jx_malloc(sizeof(jx_t) * (size_t)(t.j->nout + 1));
  jx_jaxpr *tw = NULL, *fw = NULL;
  jx_t r = NULL;
  if (nl < 0 || !ins || !order || !extra || !outs) r = jx_error_new("cond: out of memory");
  if (!r) {
    int m = 0;
    for (int i = 0; i < t.nconst; i++) ins[m++] = t.consts[i];
    for (int i = 0; i < f.nconst; i++) ins[m++] = f.consts[i];
    for (int i = 0; i < nl; i++) ins[m++] = ol[i];
    for (int i = 0; i < nin; i++) extra[i] = ins[i]->aval;
    /* true: its consts, dummies for false's, operands */
    for (int i = 0; i < nin; i++)
      order[i] = i < t.nconst ? i : i < t.nconst + f.nconst ? -(i + 1) : i - f.nconst;
    tw = jx_jaxpr_rebind(t.j, nin, order, extra);
    for (int i = 0; i < nin; i++) order[i] = i < t.nconst ? -(i + 1) : i - t.nconst;
    fw = jx_jaxpr_rebind(f.j, nin, order, extra);
    if (!tw || !fw) r = jx_error_new("cond: out of memory");
  }
  if (!r) {
    jx_t *bi = jx_malloc(sizeof(jx_t) * (size_t)(nin + 1));
    if (!bi) r = jx_error_new("cond: out of memory");
    else {
      bi[0] = pred;
      memcpy(bi + 1, ins, sizeof(jx_t) * (size_t)nin);
      jx_params q;
      jx_params_init(&q, JX_PK_COND);
      q.cond.on_true = tw, q.cond.on_false = fw;
      r = jx_bind(JX_P_cond, nin + 1, bi, &q, tw->nout, outs);
      if (!r) r = unflatten_outs(t.out_like, outs);
      jx_free(bi);
    }
  }
  jx_jaxpr_release(tw), jx_jaxpr_release(fw);
  closed_free(&t), closed_free(&f);
  jx_free(ol), jx_free(ins), jx_free(order), jx_free(extra), jx_free(outs);
  return r;
}

/* switch(i, b_lo..b_hi) on a clamped i: a balanced tree of conds,
 * cond(i <= mid, switch(b_lo..b_mid), switch(b_mid+1..b_hi)), so that n
 * branches nest only log2(n) conds deep (a chain would trace, and compile,
 * one nested cond per branch) */
typedef struct {
  jx_t index;
  jx_fn **branches;
  int lo, hi, nops;
} switch_closure;

static jx_t switch_part(const jx_t *args, void *u);
static jx_t switch_range(const switch_closure *c, const jx_t *ops) {
  if (c->lo == c->hi) return jx_call(c->branches[c->lo], ops);
  int mid = c->lo + (c->hi - c->lo) / 2;
  switch_closure low = *c, high = *c;
  low.hi = mid, high.lo = mid + 1;
  jx_fn *a = jx_fn_new(switch_part, c->nops, &low), *b = jx_fn_new(switch_part, c->nops, &high);
  jx_t out = a && b ? jx_cond(jx_le(c->index, jx_scalar_int(mid)), a, b, c->nops, ops)
                    : jx_error_new("switch: out of memory");
  jx_fn_free(a), jx_fn_free(b);
  return out;
}
static jx_t switch_part(const jx_t *args, void *u) { return switch_range(u, args); }

jx_t jx_switch(jx_t index, int nbranches, jx_fn **branches, int n, const jx_t *operands) {
  jx_t err = jx_op_check_array("switch", index);
  if (err) return err;
  if (nbranches < 1 || !branches) return jx_error_new("switch: need at least one branch (got %d)", nbranches);
  for (int i = 0; i < nbranches; i++)
    if (!branches[i]) return jx_error_new("switch: branch %d is NULL", i);
  char s[160];
  if (index->aval.ndim != 0 || !jx_dtype_is_int(index->aval.dtype))
    return jx_error_new("switch: the index must be an integer scalar, got %s", jx_aval_str(&index->aval, s, sizeof s));
  /* clamp into range, as lax.switch does */
  jx_t i = jx_minimum(jx_maximum(jx_astype(index, JX_I32), jx_scalar_int(0)), jx_scalar_int(nbranches - 1));
  switch_closure c = {i, branches, 0, nbranches - 1, n};
  return switch_range(&c, operands);
}

/* ----------------------------------------------------------- while_loop */
jx_t jx_while_loop(jx_fn *cond, jx_fn *body, jx_t init) {
  if (jx_is_error(init)) return init ? init : jx_error_new("while_loop: init is NULL");
  closed c, b;
  jx_t err = trace_closed("while_loop (cond)", cond, 1, &init, &c);
  if (err) return err;
  if ((err = trace_closed("while_loop (body)", body, 1, &init, &b))) {
    closed_free(&c);
    return err;
  }
  char s1[512], s2[512];
  jx_t r = NULL;
  if (jx_is_tree(c.out_like) || c.out_like->aval.ndim != 0 || c.out_like->aval.dtype != JX_BOOL) {
    tree_types(c.out_like, s1, sizeof s1);
    r = jx_error_new("while_loop: cond must return a bool scalar, got %s", s1);
  } else if (!same_types(b.out_like, init)) {
    tree_types(init, s1, sizeof s1);
    tree_types(b.out_like, s2, sizeof s2);
    r = jx_error_new("while_loop: the body must return the carry's type %s, but returns %s", s1, s2);
  }
  jx_t *il = NULL;
  int n = r ? 0 : leaves(init, &il);
  int nin = c.nconst + b.nconst + n;
  jx_t *ins = jx_malloc(sizeof(jx_t) * (size_t)(nin + 1)), *outs = jx_malloc(sizeof(jx_t) * (size_t)(n + 1));
  if (!r && (n < 0 || !ins || !outs)) r = jx_error_new("while_loop: out of memory");
  if (!r) {
    int m = 0;
    for (int i = 0; i < c.nconst; i++) ins[m++] = c.consts[i];
    for (int i = 0; i < b.nconst; i++) ins[m++] = b.consts[i];
    for (int i = 0; i < n; i++) ins[m++] = il[i];
    jx_params q;
    jx_params_init(&q, JX_PK_WHILE);
    q.while_.cond = c.j, q.while_.body = b.j;
    q.while_.ncconst = c.nconst, q.while_.nbconst = b.nconst;
    r = jx_bind(JX_P_while, nin, ins, &q, n, outs);
    if (!r) r = unflatten_outs(init, outs);
  }
  closed_free(&c), closed_free(&b);
  jx_free(il), jx_free(ins), jx_free(outs);
  return r;
}

/* ----------------------------------------------------------------- scan */
/* carry k of a traced scan body is returned unchanged (a loop invariant) */
static bool invariant_carry(const closed *b, int k) { return b->j->outvars[k] == b->j->invars[b->nconst + k]; }

static jx_t scan_general(const char *op, jx_fn *f, jx_t init, jx_t xs, int64_t length, bool reverse) {
  if (jx_is_error(init)) return init ? init : jx_error_new("%s: init is NULL", op);
  if (xs && jx_is_error(xs)) return xs;
  jx_t *xl = NULL;
  int nx = xs ? leaves(xs, &xl) : 0;
  if (nx < 0) return jx_error_new("%s: out of memory", op);
  /* the length: every xs leaf's leading dimension */
  for (int i = 0; i < nx; i++) {
    char s[160];
    if (xl[i]->aval.ndim < 1) {
      jx_aval_str(&xl[i]->aval, s, sizeof s);
      jx_free(xl);
      return jx_error_new("%s: xs leaf %d is 0-d (%s); xs need a leading axis to scan over", op, i, s);
    }
    if (length < 0) length = xl[i]->aval.shape[0];
    if (xl[i]->aval.shape[0] != length) {
      int64_t other = xl[i]->aval.shape[0];
      jx_free(xl);
      return jx_error_new("%s: xs leaves have different lengths (%lld and %lld)", op, (long long)length,
                          (long long)other);
    }
  }
  if (length < 0) length = 0;
  /* one slice of the xs, for tracing */
  jx_t *sl = jx_malloc(sizeof(jx_t) * (size_t)(nx + 1));
  for (int i = 0; sl && i < nx; i++) {
    jx_aval a = xl[i]->aval;
    memmove(a.shape, a.shape + 1, sizeof(int64_t) * (size_t)(a.ndim - 1));
    a.ndim--;
    /* only its aval is traced: an array made without an op (jx_zeros would
     * leave an equation in an enclosing trace) */
    sl[i] = jx_array_new(&a);
  }
  jx_t xslice = sl && xs ? jx_tree_unflatten(xs, sl) : jx_tuple(0, NULL);
  jx_t args[2] = {init, xslice};
  closed b;
  jx_t r = sl ? trace_closed(op, f, 2, args, &b) : jx_error_new("%s: out of memory", op);
  jx_free(sl);
  if (r) {
    jx_free(xl);
    return r;
  }
  if (jx_len(b.out_like) != 2) {
    r = jx_error_new("%s: the function must return a (carry, y) tuple", op);
  } else if (!same_types(jx_at(b.out_like, 0), init)) {
    char s1[512], s2[512];
    tree_types(init, s1, sizeof s1);
    tree_types(jx_at(b.out_like, 0), s2, sizeof s2);
    r = jx_error_new("%s: the function must return a carry of the init's type %s, but returns %s", op, s1, s2);
  }
  jx_t *il = NULL;
  int ncar = r ? 0 : leaves(init, &il);
  int nin = b.nconst + ncar + nx;
  jx_t *ins = jx_malloc(sizeof(jx_t) * (size_t)(nin + 1)), *outs = jx_malloc(sizeof(jx_t) * (size_t)(2 * b.j->nout + 1));
  int *order = jx_malloc(sizeof(int) * (size_t)(nin + b.j->nout + 1)), *keep = order ? order + nin : NULL;
  if (!r && (ncar < 0 || !ins || !outs || !order)) r = jx_error_new("%s: out of memory", op);
  /* Loop invariants: a carry the body returns unchanged (parameters carried
   * along, say) becomes a constant of the scan. Otherwise reverse mode
   * would save it as a residual at every step (a copy per step) and the
   * loop would copy it around. Its final value is its initial one. */
  int ninv = 0;
  for (int k = 0; !r && k < ncar; k++) ninv += invariant_carry(&b, k);
  jx_jaxpr *body = b.j;
  if (!r && ninv) {
    int m = 0, nk = 0;
    for (int i = 0; i < b.nconst; i++) order[m++] = i;
    for (int pass = 0; pass < 2; pass++) /* invariant carries, then the others */
      for (int k = 0; k < ncar; k++)
        if (invariant_carry(&b, k) == (pass == 0)) order[m++] = b.nconst + k;
    for (int i = 0; i < nx; i++) order[m++] = b.nconst + ncar + i;
    body = jx_jaxpr_rebind(b.j, nin, order, NULL);
    for (int k = 0; body && k < body->nout; k++)
      if (k >= ncar || !invariant_carry(&b, k)) keep[nk++] = body->outvars[k];
    if (!body || jx_jaxpr_set_outs(body, nk, keep)) r = jx_error_new("%s: out of memory", op);
  }
  if (!r) {
    int m = 0;
    for (int i = 0; i < nin; i++) {
      int src = ninv ? order[i] : i;
      ins[m++] = src < b.nconst ? b.consts[src] : src < b.nconst + ncar ? il[src - b.nconst] : xl[src - b.nconst - ncar];
    }
    jx_params q;
    jx_params_init(&q, JX_PK_SCAN);
    q.scan.body = body;
    q.scan.nconst = b.nconst + ninv, q.scan.ncarry = ncar - ninv, q.scan.length = length;
    q.scan.reverse = reverse;
    jx_t *res = outs + b.j->nout; /* the scan's: the other carries, then ys */
    r = jx_bind(JX_P_scan, nin, ins, &q, body->nout, res);
    if (!r) { /* the carries back in their places: invariants are their init */
      int t = 0;
      for (int k = 0; k < ncar; k++) outs[k] = invariant_carry(&b, k) ? il[k] : res[t++];
      for (int k = ncar; k < b.j->nout; k++) outs[k] = res[t++];
      jx_t carry = jx_tree_unflatten(init, outs);
      /* ys: the body's y tree, each leaf stacked */
      jx_t ys = jx_tree_unflatten(jx_at(b.out_like, 1), outs + ncar);
      r = JX_TUPLE(carry, ys);
    }
  }
  if (body && body != b.j) jx_jaxpr_release(body);
  closed_free(&b);
  jx_free(il), jx_free(xl), jx_free(ins), jx_free(outs), jx_free(order);
  return r;
}

jx_t jx_scan(jx_fn *f, jx_t init, jx_t xs) { return scan_general("scan", f, init, xs, -1, false); }
jx_t jx_scan_ex(jx_fn *f, jx_t init, jx_t xs, int64_t length, bool reverse) {
  if (length < -1) return jx_error_new("scan: length must be -1 (the xs' leading dimension) or >= 0, got %lld", (long long)length);
  return scan_general("scan", f, init, xs, length, reverse);
}

/* fori_loop(lo, hi, body, init) = scan over hi - lo steps carrying (i, x) */
typedef struct {
  jx_fn *body;
} fori_closure;
static jx_t fori_step(const jx_t *args, void *u) {
  fori_closure *c = u;
  jx_t i = jx_at(args[0], 0), x = jx_at(args[0], 1);
  jx_t next = JX_CALL(c->body, i, x);
  return JX_TUPLE(JX_TUPLE(jx_add(i, jx_scalar_int(1)), next), jx_tuple(0, NULL));
}

jx_t jx_fori_loop(int64_t lo, int64_t hi, jx_fn *body, jx_t init) {
  if (!body) return jx_error_new("fori_loop: body is NULL");
  if (body->nargs != 2) return jx_error_new("fori_loop: the body takes (i, carry): 2 arguments, not %d", body->nargs);
  if (jx_is_error(init)) return init ? init : jx_error_new("fori_loop: init is NULL");
  if (lo < INT32_MIN || hi > INT32_MAX) return jx_error_new("fori_loop: bounds must fit in i32");
  fori_closure c = {body};
  jx_fn *step = jx_fn_new(fori_step, 2, &c);
  jx_t start = JX_TUPLE(jx_scalar_of(JX_I32, (double)lo), init);
  jx_t r = scan_general("fori_loop", step, start, NULL, hi > lo ? hi - lo : 0, false);
  jx_fn_free(step);
  return jx_ok(r) ? jx_at(jx_at(r, 0), 1) : r;
}
