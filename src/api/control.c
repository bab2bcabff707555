/* Control flow: cond, switch, while_loop, fori_loop, scan. Each traces its
 * functions once into jaxprs (constants they read become explicit
 * operands, so values from enclosing transformations flow through the
 * primitive's rules), checks the types, and binds the primitive. */
#include "api/api.h"
#include "api/trace_fn.h"
#include "ops/ops.h"
#include "prims/lax.h"

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
  jx_t bad = jx_fn_error_value(op, f);
  if (bad) return bad;
  if (f->nargs != nargs)
    return jx_error_new("%s: the function takes %d arguments, expected %d", op, f->nargs, nargs);
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
  int n = jx_tree_leaves_to(tree, NULL, 0);
  *out = jx_malloc(sizeof(jx_t) * (size_t)(n ? n : 1));
  if (*out) jx_tree_leaves_to(tree, *out, n);
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

static jx_t unflatten_outs(jx_t like, jx_t *outs) { return jx_tree_build(like, outs); }

/* ----------------------------------------------------------------- cond */
jx_t jx_cond(jx_t pred, jx_fn *on_true, jx_fn *on_false, int n, const jx_t *operands) {
  jx_t err = jx_op_check_array("cond", pred);
  if (!err && (n < 0 || (n > 0 && !operands))) err = jx_error_new("cond: bad operand list (%d)", n);
  if (!err) err = jx_first_error(n, operands);
  if (err) return err;
  char s[160];
  if (pred->aval.ndim != 0)
    return jx_error_new("cond: the predicate must be a scalar, got %s",
                        jx_aval_str(&pred->aval, s, sizeof s));
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
    return jx_error_new(
        "cond: the branches must return the same types, but the true branch returns %s and the "
        "false branch returns %s",
        a, b);
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
    if (!bi)
      r = jx_error_new("cond: out of memory");
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
    return jx_error_new("switch: the index must be an integer scalar, got %s",
                        jx_aval_str(&index->aval, s, sizeof s));
  /* clamp into range, as lax.switch does */
  jx_t i = jx_minimum(jx_maximum(jx_astype(index, JX_I32), jx_scalar_int(0)), jx_scalar_int(nbranches - 1));
  switch_closure c = {i, branches, 0, nbranches - 1, n};
  return switch_range(&c, operands);
}

/* ----------------------------------------------------------- while_loop */
/* while_loop, or (max_steps >= 0) while_bounded, whose functions take a
 * step count as the first carry (jx_while_loop_bounded) */
static jx_t while_general(jx_fn *cond, jx_fn *body, jx_t init, int64_t max_steps);
jx_t jx_while_loop(jx_fn *cond, jx_fn *body, jx_t init) { return while_general(cond, body, init, -1); }

static jx_t while_general(jx_fn *cond, jx_fn *body, jx_t init, int64_t max_steps) {
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
    jx_params_init(&q, max_steps < 0 ? JX_PK_WHILE : JX_PK_BWHILE);
    q.while_.cond = c.j, q.while_.body = b.j; /* bwhile begins with while_'s fields */
    q.while_.ncconst = c.nconst, q.while_.nbconst = b.nconst;
    if (max_steps >= 0) q.bwhile.max_steps = max_steps;
    r = jx_bind(max_steps < 0 ? JX_P_while : JX_P_while_bounded, nin, ins, &q, n, outs);
    if (!r) r = unflatten_outs(init, outs);
  }
  closed_free(&c), closed_free(&b);
  jx_free(il), jx_free(ins), jx_free(outs);
  return r;
}

/* while_loop_bounded: the user's functions on the carry, behind a step
 * count (i, carry): cond' = i < max_steps and cond(carry), body' = (i + 1,
 * body(carry)) */
typedef struct {
  jx_fn *cond, *body;
  int64_t max_steps;
} bounded_closure;
static jx_t bounded_cond(const jx_t *a, void *u) {
  bounded_closure *c = u;
  jx_t i = jx_at(a[0], 0), ok = jx_lt(i, jx_scalar_of(JX_I32, (double)c->max_steps));
  jx_t r = jx_call(c->cond, (jx_t[]){jx_at(a[0], 1)});
  /* ok and r (a cond that is not a bool scalar is reported by while_loop) */
  bool b = jx_ok(r) && !jx_is_tree(r) && jx_dtype_of(r) == JX_BOOL && jx_ndim(r) == 0;
  return b ? jx_where(ok, r, ok) : r;
}
static jx_t bounded_body(const jx_t *a, void *u) {
  bounded_closure *c = u;
  jx_t i = jx_at(a[0], 0);
  return JX_TUPLE(jx_add(i, jx_scalar_of(JX_I32, 1)), jx_call(c->body, (jx_t[]){jx_at(a[0], 1)}));
}

jx_t jx_while_loop_bounded(jx_fn *cond, jx_fn *body, jx_t init, int64_t max_steps) {
  const char *op = "while_loop_bounded";
  jx_t bad = jx_fn_error_value(op, cond);
  if (!bad) bad = jx_fn_error_value(op, body);
  if (bad) return bad;
  if (cond->nargs != 1 || body->nargs != 1)
    return jx_error_new("%s: cond and body take the carry: 1 argument each, not %d and %d", op, cond->nargs,
                        body->nargs);
  if (max_steps < 0 || max_steps > INT32_MAX)
    return jx_error_new("%s: max_steps must be in [0, 2^31), got %lld", op, (long long)max_steps);
  if (jx_is_error(init)) return init ? init : jx_error_new("%s: init is NULL", op);
  bounded_closure c = {cond, body, max_steps};
  jx_fn *bc = jx_fn_new(bounded_cond, 1, &c), *bb = jx_fn_new(bounded_body, 1, &c);
  jx_t r = while_general(bc, bb, JX_TUPLE(jx_scalar_of(JX_I32, 0), init), max_steps);
  jx_fn_free(bc), jx_fn_free(bb);
  return jx_ok(r) ? jx_at(r, 1) : r;
}

/* ----------------------------------------------------------------- scan */
/* carry k of a traced scan body is returned unchanged (a loop invariant) */
static bool invariant_carry(const closed *b, int k) {
  return b->j->outvars[k] == b->j->invars[b->nconst + k];
}

/* A scan being built: the traced body, the leaves of its operands, and
 * the body the primitive runs. */
typedef struct {
  closed b;
  jx_t *xl, *il;      /* the xs' and the init's leaves */
  int nx, ncar, ninv; /* how many xs, carries, and invariant carries */
  int *order;         /* input i of body is input order[i] of b.j */
  jx_jaxpr *body;     /* b.j, or b.j with the invariant carries made constants */
} scan_build;

/* The xs' leaves, and the length: every leaf's leading dimension (all
 * alike, and *length's when it is given, >= 0). */
static jx_t scan_xs(const char *op, jx_t xs, scan_build *s, int64_t *length) {
  s->nx = xs ? leaves(xs, &s->xl) : 0;
  if (s->nx < 0) return jx_error_new("%s: out of memory", op);
  for (int i = 0; i < s->nx; i++) {
    const jx_aval *a = &s->xl[i]->aval;
    char str[160];
    if (a->ndim < 1)
      return jx_error_new("%s: xs leaf %d is 0-d (%s); xs need a leading axis to scan over", op, i,
                          jx_aval_str(a, str, sizeof str));
    if (*length < 0) *length = a->shape[0];
    if (a->shape[0] != *length)
      return jx_error_new("%s: xs leaves have different lengths (%lld and %lld)", op, (long long)*length,
                          (long long)a->shape[0]);
  }
  if (*length < 0) *length = 0;
  return NULL;
}

/* Trace f on (init, one slice of the xs); it must return a (carry, y)
 * tuple whose carry has the init's type. */
static jx_t scan_trace(const char *op, jx_fn *f, jx_t init, jx_t xs, scan_build *s) {
  jx_t *sl = jx_malloc(sizeof(jx_t) * (size_t)(s->nx + 1));
  for (int i = 0; sl && i < s->nx; i++) {
    jx_aval a = s->xl[i]->aval;
    memmove(a.shape, a.shape + 1, sizeof(int64_t) * (size_t)(a.ndim - 1));
    a.ndim--;
    /* only its aval is traced: an array made without an op (jx_zeros would
     * leave an equation in an enclosing trace) */
    sl[i] = jx_array_new(&a);
  }
  jx_t xslice = sl && xs ? jx_tree_build(xs, sl) : jx_tuple(0, NULL);
  jx_t args[2] = {init, xslice};
  jx_t r = sl ? trace_closed(op, f, 2, args, &s->b) : jx_error_new("%s: out of memory", op);
  jx_free(sl);
  if (r) return r;
  if (jx_len(s->b.out_like) != 2) return jx_error_new("%s: the function must return a (carry, y) tuple", op);
  if (!same_types(jx_at(s->b.out_like, 0), init)) {
    char s1[512], s2[512];
    tree_types(init, s1, sizeof s1);
    tree_types(jx_at(s->b.out_like, 0), s2, sizeof s2);
    return jx_error_new("%s: the function must return a carry of the init's type %s, but returns %s", op, s1,
                        s2);
  }
  return NULL;
}

/* Loop invariants: a carry the body returns unchanged (parameters carried
 * along, say) becomes a constant of the scan. Otherwise reverse mode
 * would save it as a residual at every step (a copy per step) and the
 * loop would copy it around. Its final value is its initial one. The
 * body's inputs: b's constants, the invariant carries, the other
 * carries, the xs; its outputs: the other carries, the ys. */
static jx_t scan_body(const char *op, jx_t init, scan_build *s) {
  const closed *b = &s->b;
  s->ncar = leaves(init, &s->il);
  int nin = b->nconst + s->ncar + s->nx, m = 0, nk = 0;
  s->order = s->ncar < 0 ? NULL : jx_malloc(sizeof(int) * (size_t)(nin + b->j->nout + 1));
  if (!s->order) return jx_error_new("%s: out of memory", op);
  int *keep = s->order + nin;
  for (int k = 0; k < s->ncar; k++) s->ninv += invariant_carry(b, k);
  for (int i = 0; i < b->nconst; i++) s->order[m++] = i;
  for (int pass = 0; pass < 2; pass++) /* invariant carries, then the others */
    for (int k = 0; k < s->ncar; k++)
      if (invariant_carry(b, k) == (pass == 0)) s->order[m++] = b->nconst + k;
  for (int i = 0; i < s->nx; i++) s->order[m++] = b->nconst + s->ncar + i;
  if (!s->ninv) return s->body = b->j, NULL;
  s->body = jx_jaxpr_rebind(b->j, nin, s->order, NULL);
  for (int k = 0; s->body && k < s->body->nout; k++)
    if (k >= s->ncar || !invariant_carry(b, k)) keep[nk++] = s->body->outvars[k];
  return s->body && !jx_jaxpr_set_outs(s->body, nk, keep) ? NULL : jx_error_new("%s: out of memory", op);
}

/* Bind scan on its operands (in the body's order) and rebuild the
 * (carry, ys) tree. */
static jx_t scan_bind(const char *op, jx_t init, int64_t length, bool reverse, const scan_build *s) {
  const closed *b = &s->b;
  int nin = b->nconst + s->ncar + s->nx;
  jx_t *ins = jx_malloc(sizeof(jx_t) * (size_t)(nin + 1));
  jx_t *outs = jx_malloc(sizeof(jx_t) * (size_t)(2 * b->j->nout + 1));
  jx_t r = ins && outs ? NULL : jx_error_new("%s: out of memory", op);
  for (int i = 0; i < nin && !r; i++) {
    int src = s->order[i], c = src - b->nconst, x = c - s->ncar;
    ins[i] = c < 0 ? b->consts[src] : x < 0 ? s->il[c] : s->xl[x];
  }
  jx_params q;
  jx_params_init(&q, JX_PK_SCAN);
  q.scan.body = s->body;
  q.scan.nconst = b->nconst + s->ninv, q.scan.ncarry = s->ncar - s->ninv, q.scan.length = length;
  q.scan.reverse = reverse;
  jx_t *res = outs + b->j->nout; /* the scan's: the other carries, then ys */
  if (!r) r = jx_bind(JX_P_scan, nin, ins, &q, s->body->nout, res);
  if (!r) { /* the carries back in their places: invariants are their init */
    int t = 0;
    for (int k = 0; k < s->ncar; k++) outs[k] = invariant_carry(b, k) ? s->il[k] : res[t++];
    for (int k = s->ncar; k < b->j->nout; k++) outs[k] = res[t++];
    jx_t carry = jx_tree_build(init, outs);
    /* ys: the body's y tree, each leaf stacked */
    jx_t ys = jx_tree_build(jx_at(b->out_like, 1), outs + s->ncar);
    r = JX_TUPLE(carry, ys);
  }
  jx_free(ins), jx_free(outs);
  return r;
}

static jx_t scan_general(const char *op, jx_fn *f, jx_t init, jx_t xs, int64_t length, bool reverse) {
  if (jx_is_error(init)) return init ? init : jx_error_new("%s: init is NULL", op);
  if (xs && jx_is_error(xs)) return xs;
  scan_build s = {0};
  jx_t r = scan_xs(op, xs, &s, &length);
  if (!r) r = scan_trace(op, f, init, xs, &s);
  if (!r) r = scan_body(op, init, &s);
  if (!r) r = scan_bind(op, init, length, reverse, &s);
  if (s.body && s.body != s.b.j) jx_jaxpr_release(s.body);
  closed_free(&s.b);
  jx_free(s.xl), jx_free(s.il), jx_free(s.order);
  return r;
}

jx_t jx_scan(jx_fn *f, jx_t init, jx_t xs) { return scan_general("scan", f, init, xs, -1, false); }
jx_t jx_scan_ex(jx_fn *f, jx_t init, jx_t xs, int64_t length, bool reverse) {
  if (length < -1)
    return jx_error_new("scan: length must be -1 (the xs' leading dimension) or >= 0, got %lld",
                        (long long)length);
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
  jx_t bad = jx_fn_error_value("fori_loop", body);
  if (bad) return bad;
  if (body->nargs != 2)
    return jx_error_new("fori_loop: the body takes (i, carry): 2 arguments, not %d", body->nargs);
  if (jx_is_error(init)) return init ? init : jx_error_new("fori_loop: init is NULL");
  if (lo < INT32_MIN || hi > INT32_MAX) return jx_error_new("fori_loop: bounds must fit in i32");
  fori_closure c = {body};
  jx_fn *step = jx_fn_new(fori_step, 2, &c);
  jx_t start = JX_TUPLE(jx_scalar_of(JX_I32, (double)lo), init);
  jx_t r = scan_general("fori_loop", step, start, NULL, hi > lo ? hi - lo : 0, false);
  jx_fn_free(step);
  return jx_ok(r) ? jx_at(jx_at(r, 0), 1) : r;
}
