/* The passes' builder (compile/builder.h).
 *
 * Every pass is one forward walk over the source jaxpr that builds a fresh
 * jaxpr (a "builder"), mapping each source variable to a variable of the
 * new one. Rewrites are then just different mappings: an equation that
 * simplifies to one of its inputs emits nothing and maps its output to that
 * input; a folded equation maps its outputs to new constants; a common
 * subexpression maps to the earlier equation's outputs. Constants are
 * brought over lazily, on first use, so each pass also drops the constants
 * nothing reads (and deduplicates them by pointer). */
#include "compile/builder.h"

#include <stdlib.h>

void b_oom(bld *b) {
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

static bool small_array(jx_t x) { return jx_is_array(x) && jx_aval_size(&x->aval) <= JX_FOLD_MAX_ELEMS; }

bool same_aval(const jx_aval *a, const jx_aval *b) { return jx_aval_eq(a, b) && a->weak == b->weak; }

/* same dtype, weak flag, shape and bytes (and exact value: two weak
 * scalars that round to the same f32 may still promote differently) */
static bool same_contents(jx_t a, jx_t b) {
  if (!same_aval(&a->aval, &b->aval)) return false;
  if (a->u.arr.exact != b->u.arr.exact || a->u.arr.exact_f != b->u.arr.exact_f ||
      a->u.arr.exact_i != b->u.arr.exact_i)
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
int b_const(bld *b, jx_t x) {
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

bool b_eqn(bld *b, jx_prim p, const jx_params *params, int nin, const int *in, int nout, const jx_aval *avals,
           int *outs) {
  if (jx_jaxpr_add_eqn(b->j, p, params, nin, in, nout, avals, outs) || !b_sync(b)) {
    b_oom(b);
    return false;
  }
  for (int k = 0; k < nout; k++) b->def[outs[k]] = b->j->neqn - 1;
  return true;
}

bool sm_init(bld *b, srcmap *s, const jx_jaxpr *src) {
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

void sm_free(srcmap *s) {
  jx_free(s->map);
  jx_free(s->cidx);
}

/* new var of source var v (constants are brought over on first use) */
int sm_get(bld *b, srcmap *s, int v) {
  if (v < 0 || v >= s->src->nvars) {
    if (!b->err) b->err = jx_error_new("optimize: variable %d out of range", v);
    return -1;
  }
  if (s->map[v] < 0 && s->cidx[v] >= 0) s->map[v] = b_const(b, s->src->consts[s->cidx[v]]);
  if (s->map[v] < 0 && !b->err) b->err = jx_error_new("optimize: variable %d used before its definition", v);
  return s->map[v];
}

int *map_ins(bld *b, srcmap *s, const jx_eqn *q, ibuf *buf) {
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
bool emit_copy(bld *b, srcmap *s, const jx_eqn *q, const int *ins) {
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
/* Run one pass: a fresh jaxpr with the same invars, the body maps the
 * equations, the outputs are mapped last. Temporaries the pass creates in
 * the current pool (folded values, scratch) are released before return;
 * the new jaxpr holds its own references. */
jx_jaxpr *run_pass(const jx_jaxpr *in, pass_body body, bool merge_consts, bool *changed, jx_t *err) {
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
