/* Jaxpr optimization passes: inline, dce, cse, fold, simplify.
 *
 * Every pass is one forward walk over the source jaxpr that builds a fresh
 * jaxpr (a "builder"), mapping each source variable to a variable of the
 * new one. Rewrites are then just different mappings: an equation that
 * simplifies to one of its inputs emits nothing and maps its output to that
 * input; a folded equation maps its outputs to new constants; a common
 * subexpression maps to the earlier equation's outputs. Constants are
 * brought over lazily, on first use, so each pass also drops the constants
 * nothing reads (and deduplicates them by pointer). */
#include "compile/passes.h"

#include <stdlib.h>

/* --------------------------------------------------------------- builder */
/* The new jaxpr's constants, found by pointer (and, for cse, by contents)
 * in O(1): folding can make thousands of them. Open addressing; a slot
 * holds var + 1 (0: empty), the key is the var's constant. */
typedef struct {
  int *slot;
  int cap, count;
} ctab;

typedef struct {
  jx_jaxpr *j;
  jx_t *cval; /* new var -> its constant (borrowed from j->consts) or NULL */
  int *def;   /* new var -> index in j->eqns of the equation defining it, or -1 */
  int nsync, cap;
  bool merge_consts; /* merge constants by contents (cse) */
  bool changed;
  jx_t err;
  ctab byptr, bycontents;
} bld;

/* how one source jaxpr's variables map into the builder's */
typedef struct {
  const jx_jaxpr *src;
  int *map;  /* src var -> new var, -1 = not yet */
  int *cidx; /* src var -> index in src->consts, -1 = not a constant */
} srcmap;

static void b_oom(bld *b) {
  if (!b->err) b->err = jx_error_new("optimize: out of memory");
}

/* extend cval/def to cover every var of j */
static bool b_sync(bld *b) {
  int n = b->j->nvars;
  if (n > b->cap) {
    int cap = b->cap ? b->cap : 64;
    while (cap < n) cap *= 2;
    jx_t *c = jx_realloc(b->cval, sizeof(jx_t) * (size_t)cap);
    if (c) b->cval = c;
    int *d = jx_realloc(b->def, sizeof(int) * (size_t)cap);
    if (d) b->def = d;
    if (!c || !d) {
      b_oom(b);
      return false;
    }
    b->cap = cap;
  }
  for (; b->nsync < n; b->nsync++) {
    b->cval[b->nsync] = NULL;
    b->def[b->nsync] = -1;
  }
  return true;
}

static int b_invar(bld *b, const jx_aval *a) {
  int v = jx_jaxpr_add_invar(b->j, a);
  if (v < 0 || !b_sync(b)) {
    b_oom(b);
    return -1;
  }
  return v;
}

static bool small_array(jx_t x) {
  return jx_is_array(x) && jx_aval_size(&x->aval) <= JX_FOLD_MAX_ELEMS;
}

static bool same_aval(const jx_aval *a, const jx_aval *b) {
  return jx_aval_eq(a, b) && a->weak == b->weak;
}

/* same dtype, weak flag, shape and bytes (and exact value: two weak
 * scalars that round to the same f32 may still promote differently) */
static bool same_contents(jx_t a, jx_t b) {
  if (!same_aval(&a->aval, &b->aval)) return false;
  if (a->u.arr.exact != b->u.arr.exact || a->u.arr.exact_f != b->u.arr.exact_f || a->u.arr.exact_i != b->u.arr.exact_i)
    return false;
  size_t n = (size_t)jx_aval_size(&a->aval) * jx_dtype_size(a->aval.dtype);
  return n == 0 || !memcmp(jx_data(a), jx_data(b), n);
}

static uint64_t const_hash(jx_t x, bool contents) {
  uint64_t h = (uint64_t)(uintptr_t)x * 0x9E3779B97F4A7C15ull;
  if (!contents) return h ^ (h >> 31);
  const jx_aval *a = &x->aval; /* what same_contents compares: the fields, then the bytes */
  h = ((uint64_t)a->dtype * 31 + (uint64_t)a->ndim) * 2 + a->weak;
  for (int d = 0; d < a->ndim; d++) h = (h ^ (uint64_t)a->shape[d]) * 1099511628211ull;
  size_t n = (size_t)jx_aval_size(a) * jx_dtype_size(a->dtype);
  const unsigned char *p = n ? jx_data(x) : NULL;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

/* the var of a constant equal to x (same pointer, or same contents), or -1 */
static int ctab_find(const bld *b, const ctab *t, jx_t x, bool contents) {
  if (!t->cap) return -1;
  for (size_t k = const_hash(x, contents) & (size_t)(t->cap - 1);; k = (k + 1) & (size_t)(t->cap - 1)) {
    int v = t->slot[k] - 1;
    if (v < 0) return -1;
    jx_t c = b->cval[v];
    if (contents ? same_contents(c, x) : c == x) return v;
  }
}

static bool ctab_add(bld *b, ctab *t, int v, bool contents) {
  if (2 * (t->count + 1) > t->cap) { /* grow and re-insert */
    int cap = t->cap ? 2 * t->cap : 64;
    int *s = jx_calloc((size_t)cap, sizeof(int));
    if (!s) return false;
    ctab old = *t;
    *t = (ctab){s, cap, 0};
    for (int i = 0; i < old.cap; i++)
      if (old.slot[i]) ctab_add(b, t, old.slot[i] - 1, contents);
    jx_free(old.slot);
  }
  size_t k = const_hash(b->cval[v], contents) & (size_t)(t->cap - 1);
  while (t->slot[k]) k = (k + 1) & (size_t)(t->cap - 1);
  t->slot[k] = v + 1;
  t->count++;
  return true;
}

/* The var holding constant x in the new jaxpr (added on first use). */
static int b_const(bld *b, jx_t x) {
  int v = ctab_find(b, &b->byptr, x, false);
  if (v >= 0) return v;
  bool merge = b->merge_consts && small_array(x);
  if (merge && (v = ctab_find(b, &b->bycontents, x, true)) >= 0) {
    b->changed = true;
    return v;
  }
  v = jx_jaxpr_add_const(b->j, x);
  if (v < 0 || !b_sync(b)) {
    b_oom(b);
    return -1;
  }
  b->cval[v] = x;
  if (!ctab_add(b, &b->byptr, v, false) || (merge && !ctab_add(b, &b->bycontents, v, true))) {
    b_oom(b);
    return -1;
  }
  return v;
}

static bool b_eqn(bld *b, jx_prim p, const jx_params *params, int nin, const int *in, int nout,
                  const jx_aval *avals, int *outs) {
  if (jx_jaxpr_add_eqn(b->j, p, params, nin, in, nout, avals, outs) || !b_sync(b)) {
    b_oom(b);
    return false;
  }
  for (int k = 0; k < nout; k++) b->def[outs[k]] = b->j->neqn - 1;
  return true;
}

static bool sm_init(bld *b, srcmap *s, const jx_jaxpr *src) {
  size_t n = (size_t)(src->nvars ? src->nvars : 1);
  s->src = src;
  s->map = jx_malloc(sizeof(int) * n);
  s->cidx = jx_malloc(sizeof(int) * n);
  if (!s->map || !s->cidx) {
    jx_free(s->map);
    jx_free(s->cidx);
    s->map = s->cidx = NULL;
    b_oom(b);
    return false;
  }
  for (int v = 0; v < src->nvars; v++) s->map[v] = s->cidx[v] = -1;
  for (int i = 0; i < src->nconst; i++) s->cidx[src->constvars[i]] = i;
  return true;
}

static void sm_free(srcmap *s) {
  jx_free(s->map);
  jx_free(s->cidx);
}

/* new var of source var v (constants are brought over on first use) */
static int sm_get(bld *b, srcmap *s, int v) {
  if (v < 0 || v >= s->src->nvars) {
    if (!b->err) b->err = jx_error_new("optimize: variable %d out of range", v);
    return -1;
  }
  if (s->map[v] < 0 && s->cidx[v] >= 0) s->map[v] = b_const(b, s->src->consts[s->cidx[v]]);
  if (s->map[v] < 0 && !b->err)
    b->err = jx_error_new("optimize: variable %d used before its definition", v);
  return s->map[v];
}

/* The source equation's inputs, mapped (into a buffer that stays valid
 * until the next call). NULL on error. */
typedef struct {
  int *v;
  int cap;
} ibuf;

static int *map_ins(bld *b, srcmap *s, const jx_eqn *q, ibuf *buf) {
  if (q->nin >= buf->cap) {
    int *v = jx_realloc(buf->v, sizeof(int) * (size_t)(q->nin + 1));
    if (!v) {
      b_oom(b);
      return NULL;
    }
    buf->v = v;
    buf->cap = q->nin + 1;
  }
  int *ins = buf->v;
  for (int k = 0; k < q->nin; k++)
    if ((ins[k] = sm_get(b, s, q->in[k])) < 0) return NULL;
  return ins;
}

/* Emit q (with inputs ins, already mapped) unchanged and map its outputs. */
static bool emit_copy(bld *b, srcmap *s, const jx_eqn *q, const int *ins) {
  enum { S = 16 };
  jx_aval sa[S];
  int so[S];
  jx_aval *av = q->nout <= S ? sa : jx_malloc(sizeof(jx_aval) * (size_t)q->nout);
  int *outs = q->nout <= S ? so : jx_malloc(sizeof(int) * (size_t)q->nout);
  bool ok = av && outs;
  if (!ok) b_oom(b);
  for (int k = 0; ok && k < q->nout; k++) av[k] = s->src->avals[q->out[k]];
  if (ok) ok = b_eqn(b, q->prim, &q->params, q->nin, ins, q->nout, av, outs);
  for (int k = 0; ok && k < q->nout; k++) s->map[q->out[k]] = outs[k];
  if (av && av != sa) jx_free(av);
  if (outs && outs != so) jx_free(outs);
  return ok;
}

typedef void (*pass_body)(bld *b, srcmap *s);

/* Run one pass: a fresh jaxpr with the same invars, the body maps the
 * equations, the outputs are mapped last. Temporaries the pass creates in
 * the current pool (folded values, scratch) are released before return;
 * the new jaxpr holds its own references. */
static jx_jaxpr *run_pass(const jx_jaxpr *in, pass_body body, bool merge_consts, bool *changed,
                          jx_t *err) {
  *err = NULL;
  if (changed) *changed = false;
  size_t mark = jx_pool_mark();
  bld b = {.merge_consts = merge_consts};
  srcmap s = {0};
  int *outs = NULL;
  b.j = jx_jaxpr_new();
  if (!b.j) {
    b_oom(&b);
    goto done;
  }
  if (!sm_init(&b, &s, in)) goto done;
  for (int i = 0; i < in->nin && !b.err; i++) s.map[in->invars[i]] = b_invar(&b, &in->avals[in->invars[i]]);
  if (b.err) goto done;
  body(&b, &s);
  if (b.err) goto done;
  outs = jx_malloc(sizeof(int) * (size_t)(in->nout ? in->nout : 1));
  if (!outs) {
    b_oom(&b);
    goto done;
  }
  for (int i = 0; i < in->nout && !b.err; i++) outs[i] = sm_get(&b, &s, in->outvars[i]);
  if (!b.err && jx_jaxpr_set_outs(b.j, in->nout, outs)) b_oom(&b);
done:
  jx_free(outs);
  sm_free(&s);
  jx_free(b.cval);
  jx_free(b.def);
  jx_free(b.byptr.slot);
  jx_free(b.bycontents.slot);
  if (b.err) {
    jx_jaxpr_release(b.j);
    b.j = NULL;
    jx_retain(b.err);
  }
  jx_pool_release_to(mark);
  if (b.err) *err = jx_pool_own(b.err);
  if (changed && !b.err) *changed = b.changed;
  return b.j;
}

/* ---------------------------------------------------------------- inline */
enum { MAX_INLINE_DEPTH = 256 };

static void inline_rec(bld *b, srcmap *s, int depth) {
  const jx_jaxpr *src = s->src;
  ibuf buf = {0};
  for (int e = 0; e < src->neqn && !b->err; e++) {
    const jx_eqn *q = &src->eqns[e];
    int *ins = map_ins(b, s, q, &buf);
    if (!ins) break;
    if (q->prim != JX_P_jit_call) {
      emit_copy(b, s, q, ins);
      continue;
    }
    const jx_jaxpr *sub = q->params.call.jaxpr;
    if (!sub || sub->nin != q->nin || sub->nout != q->nout) {
      b->err = jx_error_new("optimize: jit_call equation %d: callee takes %d inputs and gives %d "
                            "outputs, the call has %d and %d",
                            e, sub ? sub->nin : -1, sub ? sub->nout : -1, q->nin, q->nout);
      break;
    }
    if (depth >= MAX_INLINE_DEPTH) {
      b->err = jx_error_new("optimize: jit_call nested more than %d deep", MAX_INLINE_DEPTH);
      break;
    }
    srcmap s2;
    if (!sm_init(b, &s2, sub)) break;
    for (int i = 0; i < sub->nin; i++) s2.map[sub->invars[i]] = ins[i];
    inline_rec(b, &s2, depth + 1);
    for (int k = 0; k < q->nout && !b->err; k++) s->map[q->out[k]] = sm_get(b, &s2, sub->outvars[k]);
    sm_free(&s2);
    b->changed = true;
  }
  jx_free(buf.v);
}

static void inline_body(bld *b, srcmap *s) { inline_rec(b, s, 0); }

jx_jaxpr *jx_pass_inline(const jx_jaxpr *in, bool *changed, jx_t *err) {
  return run_pass(in, inline_body, false, changed, err);
}

/* ------------------------------------------------------------------- dce */
static void dce_body(bld *b, srcmap *s) {
  const jx_jaxpr *src = s->src;
  char *live = jx_calloc((size_t)(src->nvars ? src->nvars : 1), 1);
  char *keep = jx_calloc((size_t)(src->neqn ? src->neqn : 1), 1);
  ibuf buf = {0};
  if (!live || !keep) {
    b_oom(b);
    goto done;
  }
  for (int i = 0; i < src->nout; i++) live[src->outvars[i]] = 1;
  for (int e = src->neqn - 1; e >= 0; e--) {
    const jx_eqn *q = &src->eqns[e];
    for (int k = 0; k < q->nout && !keep[e]; k++) keep[e] = live[q->out[k]];
    if (!keep[e]) {
      b->changed = true;
      continue;
    }
    for (int k = 0; k < q->nin; k++) live[q->in[k]] = 1;
  }
  for (int e = 0; e < src->neqn && !b->err; e++) {
    if (!keep[e]) continue;
    int *ins = map_ins(b, s, &src->eqns[e], &buf);
    if (ins) emit_copy(b, s, &src->eqns[e], ins);
  }
done:
  jx_free(live);
  jx_free(keep);
  jx_free(buf.v);
}

jx_jaxpr *jx_pass_dce(const jx_jaxpr *in, bool *changed, jx_t *err) {
  bool c = false;
  jx_jaxpr *j = run_pass(in, dce_body, false, &c, err);
  /* outputs are mapped last, so every constant still referenced is in */
  if (j && j->nconst < in->nconst) c = true;
  if (changed) *changed = j && c;
  return j;
}

/* ------------------------------------------------------------------- cse */
static uint64_t eqn_hash(jx_prim p, const jx_params *params, int nin, const int *ins) {
  uint64_t h = jx_params_hash(params) ^ ((uint64_t)p * 0x9E3779B97F4A7C15ull);
  for (int k = 0; k < nin; k++) h = (h ^ (uint64_t)(uint32_t)ins[k]) * 1099511628211ull;
  return h ^ (h >> 29);
}

static void cse_body(bld *b, srcmap *s) {
  const jx_jaxpr *src = s->src;
  int cap = 16;
  while (cap < 2 * src->neqn + 2) cap *= 2;
  int *table = jx_malloc(sizeof(int) * (size_t)cap); /* new eqn index, -1 empty */
  ibuf buf = {0};
  if (!table) {
    b_oom(b);
    return;
  }
  for (int i = 0; i < cap; i++) table[i] = -1;
  for (int e = 0; e < src->neqn && !b->err; e++) {
    const jx_eqn *q = &src->eqns[e];
    int *ins = map_ins(b, s, q, &buf);
    if (!ins) break;
    size_t h = (size_t)eqn_hash(q->prim, &q->params, q->nin, ins) & (size_t)(cap - 1);
    int hit = -1;
    for (;; h = (h + 1) & (size_t)(cap - 1)) {
      int k = table[h];
      if (k < 0) break;
      const jx_eqn *r = &b->j->eqns[k];
      if (r->prim == q->prim && r->nin == q->nin && r->nout == q->nout &&
          !memcmp(r->in, ins, sizeof(int) * (size_t)q->nin) &&
          !memcmp(&r->params, &q->params, sizeof q->params)) {
        hit = k;
        break;
      }
    }
    if (hit >= 0) {
      const jx_eqn *r = &b->j->eqns[hit];
      for (int k = 0; k < q->nout; k++) s->map[q->out[k]] = r->out[k];
      b->changed = true;
      continue;
    }
    if (emit_copy(b, s, q, ins)) table[h] = b->j->neqn - 1;
  }
  jx_free(table);
  jx_free(buf.v);
}

jx_jaxpr *jx_pass_cse(const jx_jaxpr *in, bool *changed, jx_t *err) {
  return run_pass(in, cse_body, true, changed, err);
}

/* ------------------------------------------------------------------ fold */
static bool foldable(bld *b, const jx_jaxpr *src, const jx_eqn *q, const int *ins) {
  const jx_rules *r = jx_prim_rules[q->prim];
  if (q->prim == JX_P_jit_call || !r->impl || r->nout < 0) return false;
  for (int k = 0; k < q->nin; k++)
    if (!jx_is_array(b->cval[ins[k]])) return false; /* a variable or a tracer constant */
  int64_t n = 0;
  for (int k = 0; k < q->nout; k++) {
    n += jx_aval_size(&src->avals[q->out[k]]);
    if (n > JX_FOLD_MAX_ELEMS) return false;
  }
  return true;
}

static void fold_body(bld *b, srcmap *s) {
  const jx_jaxpr *src = s->src;
  ibuf buf = {0};
  jx_t *vals = NULL, *outs = NULL;
  int capv = 0, capo = 0;
  for (int e = 0; e < src->neqn && !b->err; e++) {
    const jx_eqn *q = &src->eqns[e];
    int *ins = map_ins(b, s, q, &buf);
    if (!ins) break;
    if (!foldable(b, src, q, ins)) {
      emit_copy(b, s, q, ins);
      continue;
    }
    if (q->nin >= capv) {
      jx_t *v = jx_realloc(vals, sizeof(jx_t) * (size_t)(q->nin + 1));
      if (!v) {
        b_oom(b);
        break;
      }
      vals = v, capv = q->nin + 1;
    }
    if (q->nout >= capo) {
      jx_t *o = jx_realloc(outs, sizeof(jx_t) * (size_t)(q->nout + 1));
      if (!o) {
        b_oom(b);
        break;
      }
      outs = o, capo = q->nout + 1;
    }
    for (int k = 0; k < q->nin; k++) vals[k] = b->cval[ins[k]];
    bool ok = !jx_eval_prim(q->prim, q->nin, vals, &q->params, q->nout, outs);
    for (int k = 0; ok && k < q->nout; k++)
      ok = jx_is_array(outs[k]) && same_aval(&outs[k]->aval, &src->avals[q->out[k]]);
    if (!ok) { /* leave it to run time, which reports whatever went wrong */
      emit_copy(b, s, q, ins);
      continue;
    }
    for (int k = 0; k < q->nout && !b->err; k++) s->map[q->out[k]] = b_const(b, outs[k]);
    b->changed = true;
  }
  jx_free(vals);
  jx_free(outs);
  jx_free(buf.v);
}

jx_jaxpr *jx_pass_fold(const jx_jaxpr *in, bool *changed, jx_t *err) {
  return run_pass(in, fold_body, false, changed, err);
}

/* -------------------------------------------------------------- simplify */
/* x is a concrete constant whose elements all have the same bytes; *v is
 * that element's value. */
static bool uniform_const(jx_t x, double *v) {
  if (!jx_is_array(x)) return false;
  int64_t n = jx_aval_size(&x->aval);
  if (n < 1) return false;
  size_t es = jx_dtype_size(x->aval.dtype);
  const char *d = jx_data(x);
  for (int64_t i = 1; i < n; i++)
    if (memcmp(d, d + (size_t)i * es, es)) return false;
  *v = jx_scalar_load(x->aval.dtype, d);
  return true;
}

/* the defining equation of new var v, if it is prim p */
static const jx_eqn *def_of(bld *b, int v, jx_prim p) {
  int d = b->def[v];
  if (d < 0 || b->j->eqns[d].prim != p) return NULL;
  return &b->j->eqns[d];
}

static bool is_identity_perm(const int32_t *perm, int n) {
  for (int i = 0; i < n; i++)
    if (perm[i] != i) return false;
  return true;
}

/* Emit q as prim p with params and inputs ins when abstract_eval gives
 * exactly q's output avals; false (nothing emitted) otherwise. The
 * callers only build params that are valid for the inputs, so
 * abstract_eval does not fail here. */
static bool emit_checked(bld *b, srcmap *s, const jx_eqn *q, jx_prim p, const jx_params *params,
                         const int *ins) {
  enum { S = 16 };
  if (q->nin > S || q->nout > S) return false;
  jx_aval in[S], out[S];
  int outs[S];
  for (int k = 0; k < q->nin; k++) in[k] = b->j->avals[ins[k]];
  if (jx_prim_rules[p]->abstract_eval(p, in, q->nin, params, out)) return false;
  for (int k = 0; k < q->nout; k++)
    if (!same_aval(&out[k], &s->src->avals[q->out[k]])) return false;
  if (!b_eqn(b, p, params, q->nin, ins, q->nout, out, outs)) return false;
  for (int k = 0; k < q->nout; k++) s->map[q->out[k]] = outs[k];
  b->changed = true;
  return true;
}

/* map q's (single) output to new var v */
static bool alias(bld *b, srcmap *s, const jx_eqn *q, int v) {
  if (q->nout != 1 || !same_aval(&b->j->avals[v], &s->src->avals[q->out[0]])) return false;
  s->map[q->out[0]] = v;
  b->changed = true;
  return true;
}

/* numpy broadcasting of n avals gives exactly shape `want` */
static bool bcast_gives(const jx_aval *in, int n, const jx_aval *want) {
  int r = 0;
  for (int i = 0; i < n; i++)
    if (in[i].ndim > r) r = in[i].ndim;
  if (r != want->ndim) return false;
  for (int d = 0; d < r; d++) {
    int64_t m = 1;
    for (int i = 0; i < n; i++) {
      int k = d - (r - in[i].ndim);
      if (k < 0) continue;
      int64_t x = in[i].shape[k];
      if (x == m || x == 1) continue;
      if (m != 1) return false;
      m = x;
    }
    if (m != want->shape[d]) return false;
  }
  return true;
}

static bool is_elementwise_nary(jx_prim p) {
  switch (p) {
  case JX_P_add: case JX_P_sub: case JX_P_mul: case JX_P_div: case JX_P_pow: case JX_P_max:
  case JX_P_min: case JX_P_and: case JX_P_or: case JX_P_eq: case JX_P_ne: case JX_P_lt:
  case JX_P_le: case JX_P_gt: case JX_P_ge: case JX_P_select: return true;
  default: return false;
  }
}

/* Broadcast folding: an operand made by broadcast_in_dim whose dims are
 * numpy-aligned (trailing) is replaced by the broadcast's own operand when
 * numpy broadcasting inside the op still gives the same output. Rewrites
 * ins in place; true if any operand changed. */
static bool fold_broadcast_operands(bld *b, srcmap *s, const jx_eqn *q, int *ins) {
  enum { S = 4 };
  if (!is_elementwise_nary(q->prim) || q->nin > S || q->nout != 1) return false;
  const jx_aval *want = &s->src->avals[q->out[0]];
  bool any = false;
  for (int k = 0; k < q->nin; k++) {
    const jx_eqn *d = def_of(b, ins[k], JX_P_broadcast_in_dim);
    if (!d) continue;
    int x = d->in[0];
    const jx_aval *xa = &b->j->avals[x], *ya = &b->j->avals[ins[k]];
    bool aligned = xa->ndim <= ya->ndim && xa->dtype == ya->dtype && xa->weak == ya->weak;
    for (int i = 0; aligned && i < xa->ndim; i++) aligned = d->params.bcast.axes[i] == ya->ndim - xa->ndim + i;
    if (!aligned) continue;
    jx_aval av[S], out;
    for (int i = 0; i < q->nin; i++) av[i] = b->j->avals[i == k ? x : ins[i]];
    if (!bcast_gives(av, q->nin, want)) continue;
    /* confirm with the primitive's own rule */
    if (jx_prim_rules[q->prim]->abstract_eval(q->prim, av, q->nin, &q->params, &out) ||
        !same_aval(&out, want))
      continue;
    ins[k] = x;
    any = true;
  }
  if (any) b->changed = true;
  return any;
}

/* x op c -> x for the identities of add/sub/mul/div */
static bool simplify_identity(bld *b, srcmap *s, const jx_eqn *q, const int *ins) {
  double c;
  for (int k = 0; k < 2; k++) {
    if (!uniform_const(b->cval[ins[k]], &c)) continue;
    int other = ins[1 - k];
    bool id = false;
    switch (q->prim) {
    case JX_P_add: id = c == 0; break;
    case JX_P_sub: id = k == 1 && c == 0; break;
    case JX_P_mul: id = c == 1; break;
    case JX_P_div: id = k == 1 && c == 1; break;
    default: break;
    }
    if (id && alias(b, s, q, other)) return true;
  }
  return false;
}

static bool simplify_eqn(bld *b, srcmap *s, const jx_eqn *q, int *ins) {
  const jx_params *pa = &q->params;
  const jx_aval *xa = q->nin ? &b->j->avals[ins[0]] : NULL;
  switch (q->prim) {
  case JX_P_add: case JX_P_sub: case JX_P_mul: case JX_P_div:
    return simplify_identity(b, s, q, ins);
  case JX_P_neg: {
    const jx_eqn *d = def_of(b, ins[0], JX_P_neg);
    return d && alias(b, s, q, d->in[0]);
  }
  case JX_P_convert:
    return pa->convert.dtype == xa->dtype && pa->convert.weak == xa->weak && alias(b, s, q, ins[0]);
  case JX_P_transpose: {
    if (pa->perm.naxes != xa->ndim) return false;
    if (is_identity_perm(pa->perm.axes, pa->perm.naxes)) return alias(b, s, q, ins[0]);
    const jx_eqn *d = def_of(b, ins[0], JX_P_transpose);
    if (!d || d->params.perm.naxes != pa->perm.naxes) return false;
    /* out dim i = mid dim p2[i] = in dim p1[p2[i]] */
    jx_params np = *pa;
    for (int i = 0; i < pa->perm.naxes; i++) np.perm.axes[i] = d->params.perm.axes[pa->perm.axes[i]];
    if (is_identity_perm(np.perm.axes, np.perm.naxes)) return alias(b, s, q, d->in[0]);
    return emit_checked(b, s, q, JX_P_transpose, &np, &d->in[0]);
  }
  case JX_P_reshape: {
    if (alias(b, s, q, ins[0])) return true; /* same shape */
    const jx_eqn *d = def_of(b, ins[0], JX_P_reshape);
    if (!d) return false;
    if (alias(b, s, q, d->in[0])) return true;
    return emit_checked(b, s, q, JX_P_reshape, pa, &d->in[0]);
  }
  case JX_P_broadcast_in_dim: {
    if (pa->bcast.ndim == xa->ndim && pa->bcast.naxes == xa->ndim && is_identity_perm(pa->bcast.axes, pa->bcast.naxes) &&
        alias(b, s, q, ins[0]))
      return true;
    /* bid(bid(x)): x dim i -> mid dim a1[i] -> out dim a2[a1[i]] */
    const jx_eqn *d = def_of(b, ins[0], JX_P_broadcast_in_dim);
    if (!d || pa->bcast.naxes != xa->ndim) return false;
    const jx_aval *x0 = &b->j->avals[d->in[0]];
    jx_params np = *pa;
    np.bcast.naxes = d->params.bcast.naxes;
    memset(np.bcast.axes, 0, sizeof np.bcast.axes);
    for (int i = 0; i < np.bcast.naxes; i++) np.bcast.axes[i] = pa->bcast.axes[d->params.bcast.axes[i]];
    if (np.bcast.naxes != x0->ndim) return false;
    return emit_checked(b, s, q, JX_P_broadcast_in_dim, &np, &d->in[0]);
  }
  default: return false;
  }
}

static void simplify_body(bld *b, srcmap *s) {
  const jx_jaxpr *src = s->src;
  ibuf buf = {0};
  for (int e = 0; e < src->neqn && !b->err; e++) {
    const jx_eqn *q = &src->eqns[e];
    int *ins = map_ins(b, s, q, &buf);
    if (!ins) break;
    fold_broadcast_operands(b, s, q, ins);
    if (simplify_eqn(b, s, q, ins) || b->err) continue;
    emit_copy(b, s, q, ins);
  }
  jx_free(buf.v);
}

jx_jaxpr *jx_pass_simplify(const jx_jaxpr *in, bool *changed, jx_t *err) {
  return run_pass(in, simplify_body, false, changed, err);
}

/* -------------------------------------------------------------- optimize */
jx_jaxpr *jx_optimize(const jx_jaxpr *in, jx_t *err) {
  static jx_jaxpr *(*const passes[])(const jx_jaxpr *, bool *, jx_t *) = {
      jx_pass_fold, jx_pass_simplify, jx_pass_cse, jx_pass_dce};
  *err = NULL;
  if (!in) {
    *err = jx_error_new("optimize: no jaxpr");
    return NULL;
  }
  jx_jaxpr *cur = jx_pass_inline(in, NULL, err);
  /* every round removes or rewrites something; the bound is a backstop */
  for (int round = 0; cur && round < 64; round++) {
    bool any = false;
    for (size_t i = 0; cur && i < sizeof passes / sizeof *passes; i++) {
      bool c = false;
      jx_jaxpr *next = passes[i](cur, &c, err);
      jx_jaxpr_release(cur);
      cur = next;
      any |= c;
    }
    if (!any) break;
  }
  return cur;
}
