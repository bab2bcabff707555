/* Fusion: a jaxpr becomes a loop-IR program.
 *
 * Every variable is either materialized (it gets a buffer) or inlined
 * (recomputed, as a scalar expression, wherever it is read). Layout ops
 * are always inlined as index arithmetic; an elementwise op is inlined into
 * its single consumer when that consumer does not broadcast it (no
 * recomputation); reductions, library calls and outputs are materialized.
 * Each materialized variable computed by elementwise/layout ops is one MAP
 * kernel, each reduction one REDUCE kernel (with its operand's expression
 * fused into the loop), and everything else a CALL -- except scan, while
 * and cond, whose bodies become programs of their own inside a LOOP
 * kernel (see ir/loop.h) when every body can run inside generated code. */
#include "compile/compile.h"
#include "compile/passes.h"

#include <stdio.h>
#include <stdlib.h>

/* How each primitive fuses: its rules' lowering (core.h), nothing else. */
static jx_lower_kind kind_of(jx_prim p) { return jx_prim_rules[p]->lower.kind; }
static const jx_lowering *lowering(jx_prim p) { return &jx_prim_rules[p]->lower; }
/* whole-buffer kernels: their operands and results are materialized */
static bool is_call(jx_lower_kind k) { return k == JX_LOWER_CALL || k == JX_LOWER_LOOP; }
/* computed point by point (a GEMM's epilogue candidate) */
static bool pointwise(jx_lower_kind k) { return k == JX_LOWER_EW || k == JX_LOWER_FORWARD; }
/* a CALL kernel of g that may run a pointwise consumer as its epilogue */
static bool takes_epilogue(jx_prim p, const jx_params *pa, int nout) {
  return nout == 1 && lowering(p)->epilogue && lowering(p)->epilogue(pa);
}

/* JX_JIT_EPILOGUE=0: run GEMM epilogues as kernels of their own, in
 * equation order (for comparison) */
static bool epilogues_enabled(void) {
  const char *env = getenv("JX_JIT_EPILOGUE");
  return !env || strcmp(env, "0");
}

typedef struct {
  const jx_jaxpr *j;
  int *def;  /* var -> eqn index, -1 for inputs/consts */
  int *uses; /* var -> number of uses (eqn inputs + outputs) */
  bool *mat; /* var -> materialized */
  int *buf;  /* var -> buffer id, -1 */
  int *cidx; /* var -> const index, -1 */
  jx_program *prog;
  jx_kernel *k; /* kernel being built */
  int capexpr;
  int capbuf, capkernel, capconst; /* of prog->bufs, kernels, consts (doubling: programs can be large) */
  jx_t err;
} fctx;

typedef struct {
  int nd;
  jx_affine d[JX_MAX_RANK];
} imap;

static int64_t aval_size(const jx_aval *a) { return jx_aval_size(a); }

/* --------------------------------------------------------- expressions */
static int add_expr(fctx *c, const jx_lexpr *e) {
  jx_kernel *k = c->k;
  for (int i = 0; i < k->nexpr; i++) /* structural dedupe: CSE inside the kernel */
    if (!memcmp(&k->exprs[i], e, sizeof *e)) return i;
  if (k->nexpr == c->capexpr) {
    int cap = c->capexpr ? c->capexpr * 2 : 16;
    jx_lexpr *q = jx_realloc(k->exprs, sizeof *q * (size_t)cap);
    if (!q) {
      c->err = jx_error_new("jit: out of memory while fusing");
      return 0;
    }
    k->exprs = q;
    c->capexpr = cap;
  }
  k->exprs[k->nexpr] = *e;
  return k->nexpr++;
}

static jx_lexpr blank(uint8_t kind, jx_dtype dt) {
  jx_lexpr e;
  memset(&e, 0, sizeof e);
  e.kind = kind;
  e.dtype = dt;
  return e;
}

static int build(fctx *c, int v, const imap *m);

/* load of buffer b (holding var-shape `a`) at index map m over that shape */
static int load(fctx *c, int b, const jx_aval *a, const imap *m) {
  int64_t rs[JX_MAX_RANK];
  jx_strides(a->ndim, a->shape, rs);
  jx_lexpr e = blank(JX_LX_LOAD, a->dtype);
  e.buf = b;
  for (int d = 0; d < a->ndim; d++) {
    e.at.off += rs[d] * m->d[d].off;
    for (int k = 0; k < c->k->ndim; k++) e.at.coef[k] += rs[d] * m->d[d].coef[k];
  }
  return add_expr(c, &e);
}

/* an elementwise op at index map m: its operands at m, less the dims
 * they broadcast along (numpy rules, aligned right) */
static int build_ew(fctx *c, const jx_eqn *q, const imap *m) {
  const jx_jaxpr *j = c->j;
  const jx_aval *va = &j->avals[q->out[0]];
  jx_lexpr e = blank(JX_LX_OP, va->dtype);
  e.prim = q->prim;
  e.nargs = q->nin;
  for (int a = 0; a < q->nin; a++) {
    const jx_aval *ua = &j->avals[q->in[a]];
    imap mu;
    memset(&mu, 0, sizeof mu);
    mu.nd = ua->ndim;
    int off = va->ndim - ua->ndim;
    for (int d = 0; d < ua->ndim; d++)
      if (!(ua->shape[d] == 1)) mu.d[d] = m->d[d + off];
    e.args[a] = build(c, q->in[a], &mu);
  }
  return add_expr(c, &e);
}

static int build_eqn(fctx *c, const jx_eqn *q, const imap *m) {
  const jx_jaxpr *j = c->j;
  const jx_aval *va = &j->avals[q->out[0]];
  const jx_lowering *lw = lowering(q->prim);
  imap mu;
  memset(&mu, 0, sizeof mu);
  switch (lw->kind) {
    case JX_LOWER_EW: return build_ew(c, q, m);
    case JX_LOWER_FORWARD: return build(c, q->in[0], m);
    case JX_LOWER_LAYOUT:
      mu.nd = j->avals[q->in[0]].ndim;
      lw->index_map(&q->params, &j->avals[q->in[0]], m->d, mu.d);
      return build(c, q->in[0], &mu);
    case JX_LOWER_RESHAPE: /* the operand is materialized: same linear order */
      return load(c, c->buf[q->in[0]], va, m);
    case JX_LOWER_IOTA: {
      jx_lexpr e = blank(JX_LX_INDEX, JX_I64);
      e.at = m->d[q->params.iota.axis];
      int idx = add_expr(c, &e);
      jx_lexpr cv = blank(JX_LX_OP, va->dtype);
      cv.prim = JX_P_convert, cv.nargs = 1, cv.args[0] = idx;
      return add_expr(c, &cv);
    }
    default:
      c->err = jx_error_new("jit: internal: %s reached expression building", jx_prim_names[q->prim]);
      return 0;
  }
}

static int build(fctx *c, int v, const imap *m) {
  const jx_jaxpr *j = c->j;
  if (c->cidx[v] >= 0 && j->avals[v].ndim == 0 && jx_is_array(j->consts[c->cidx[v]])) {
    jx_t x = j->consts[c->cidx[v]];
    jx_lexpr e = blank(JX_LX_CONST, x->aval.dtype);
    if (jx_dtype_is_float(x->aval.dtype))
      e.value = jx_scalar_load(x->aval.dtype, jx_data(x));
    else
      e.ivalue = x->aval.dtype == JX_I64 || x->aval.dtype == JX_U64 /* u64: its bits */
                     ? *(const int64_t *)jx_data(x)
                     : (int64_t)jx_scalar_load(x->aval.dtype, jx_data(x));
    return add_expr(c, &e);
  }
  if (c->buf[v] >= 0) return load(c, c->buf[v], &j->avals[v], m);
  return build_eqn(c, &j->eqns[c->def[v]], m);
}

/* ------------------------------------------------------- materializing */
static void decide(fctx *c) {
  const jx_jaxpr *j = c->j;
  for (int i = 0; i < j->nout; i++) c->mat[j->outvars[i]] = true;
  for (int e = 0; e < j->neqn; e++) {
    const jx_eqn *q = &j->eqns[e];
    jx_lower_kind k = kind_of(q->prim);
    if (is_call(k) || k == JX_LOWER_REDUCE)
      for (int o = 0; o < q->nout; o++) c->mat[q->out[o]] = true;
    for (int a = 0; a < q->nin; a++) {
      int u = q->in[a];
      if (is_call(k) || k == JX_LOWER_RESHAPE) c->mat[u] = true;
      if (c->def[u] < 0) continue;
      const jx_eqn *pq = &j->eqns[c->def[u]];
      if (kind_of(pq->prim) != JX_LOWER_EW) continue;
      /* compute ops: inline only into one consumer that does not broadcast
       * (a call has materialized it already, and may have no output) */
      if (is_call(k)) continue;
      bool bcast = k != JX_LOWER_REDUCE && aval_size(&j->avals[q->out[0]]) > aval_size(&j->avals[u]);
      if (c->uses[u] > 1 || bcast) c->mat[u] = true;
    }
  }
  /* inputs and consts are buffers already; 0-d consts inline unless a call needs them */
}

/* Inlined expressions are bounded: where the operations inlined into one
 * expression would exceed MAX_INLINE_OPS, the costliest inlined operands
 * are materialized instead. Unbounded, a chain of n elementwise ops was one
 * kernel built by n nested calls (a stack overflow past ~7,000 ops), with
 * an O(n^2) expression dedupe and one C function of n statements; bounded,
 * it is n / MAX_INLINE_OPS kernels, each reading the last one's buffer (one
 * store and load per MAX_INLINE_OPS ops: noise). This also bounds the
 * recursion of build() and the size of every generated function. */
enum { MAX_INLINE_OPS = 256 };

static int64_t inlined_cost(const fctx *c, const int64_t *cost, int u) {
  return c->def[u] >= 0 && !c->mat[u] ? cost[u] : 0;
}

static void bound_inlining(fctx *c, int64_t *cost) {
  const jx_jaxpr *j = c->j;
  for (int e = 0; e < j->neqn; e++) {
    const jx_eqn *q = &j->eqns[e];
    jx_lower_kind k = kind_of(q->prim);
    for (;;) {
      int64_t total = 1, worst = -1;
      for (int a = 0; a < q->nin; a++) {
        int64_t ca = inlined_cost(c, cost, q->in[a]);
        total += ca;
        if (ca > 0 && (worst < 0 || ca > inlined_cost(c, cost, q->in[worst]))) worst = a;
      }
      if (total <= MAX_INLINE_OPS || worst < 0) {
        for (int o = 0; o < q->nout; o++) cost[q->out[o]] = is_call(k) || k == JX_LOWER_REDUCE ? 0 : total;
        break;
      }
      c->mat[q->in[worst]] = true; /* operands' costs are <= MAX: this ends */
    }
  }
}

static int new_buf(fctx *c, const jx_aval *a, jx_lbkind kind, int index) {
  jx_program *p = c->prog;
  if (p->nbuf == c->capbuf) {
    int cap = c->capbuf ? 2 * c->capbuf : 16;
    jx_lbuf *nb = jx_realloc(p->bufs, sizeof *nb * (size_t)cap);
    if (!nb) {
      c->err = jx_error_new("jit: out of memory");
      return -1;
    }
    p->bufs = nb;
    c->capbuf = cap;
  }
  jx_lbuf *b = p->bufs;
  b[p->nbuf] = (jx_lbuf){.aval = *a, .kind = kind, .index = index, .def = -1, .last = -1};
  return p->nbuf++;
}

static jx_kernel *new_kernel(fctx *c) {
  jx_program *p = c->prog;
  if (p->nkernel == c->capkernel) {
    int cap = c->capkernel ? 2 * c->capkernel : 16;
    jx_kernel *nk = jx_realloc(p->kernels, sizeof *nk * (size_t)cap);
    if (!nk) {
      c->err = jx_error_new("jit: out of memory");
      return NULL;
    }
    p->kernels = nk;
    c->capkernel = cap;
  }
  jx_kernel *k = p->kernels;
  memset(&k[p->nkernel], 0, sizeof *k);
  c->capexpr = 0;
  return &k[p->nkernel++];
}

static void touch(jx_program *p, int b, int kernel) {
  if (b >= 0 && p->bufs[b].last < kernel) p->bufs[b].last = kernel;
}

/* ------------------------------------------------------------- loops */
static jx_program *fuse_program(const jx_jaxpr *j, jx_t *err);

/* Whether a program runs entirely inside generated code: no CALL whose
 * impl makes its own outputs (control flow that did not become a LOOP). */
static bool self_contained(const jx_program *p) {
  for (int k = 0; k < p->nkernel; k++)
    if (p->kernels[k].kind == JX_LK_CALL && jx_prim_rules[p->kernels[k].call.prim]->impl_allocates)
      return false;
  return true;
}

/* A body jaxpr as a program of its own (optimized first: passes do not
 * look inside bodies); NULL when it cannot be one, and the loop then stays
 * a CALL that runs the body through the interpreter's path. */
static jx_program *sub_program(const jx_jaxpr *sub) {
  jx_t err = NULL;
  jx_jaxpr *o = sub ? jx_optimize(sub, &err) : NULL;
  if (!o) return NULL;
  bool ok = o->nin == sub->nin && o->nout == sub->nout;
  for (int i = 0; ok && i < o->nconst; i++) ok = jx_is_array(o->consts[i]);
  jx_program *p = ok ? fuse_program(o, &err) : NULL;
  if (p && !self_contained(p)) {
    jx_program_free(p);
    p = NULL;
  }
  if (!p) {
    jx_jaxpr_release(o);
    return NULL;
  }
  p->owner = o;
  return p;
}

/* a constant of the program being built, appended; its buffer id */
static int add_const_buf(fctx *c, jx_t x) {
  jx_program *p = c->prog;
  if (p->nconst == c->capconst) {
    int cap = 2 * c->capconst + 8;
    jx_t *q = jx_realloc(p->consts, sizeof(jx_t) * (size_t)cap);
    if (!q) {
      c->err = jx_error_new("jit: out of memory");
      return -1;
    }
    p->consts = q;
    c->capconst = cap;
  }
  p->consts[p->nconst] = jx_retain(x);
  return new_buf(c, &x->aval, JX_LB_CONST, p->nconst++);
}

/* Make kernel k (a CALL of scan/while/cond, ins and outs set) a LOOP if
 * every body can be a program; false leaves it a CALL. */
static bool make_loop(fctx *c, jx_kernel *k, const jx_eqn *q) {
  if (kind_of(q->prim) != JX_LOWER_LOOP) return false;
  /* JX_JIT_LOOPS=0: keep control flow as calls into the runtime (for
   * comparison; results are the same) */
  const char *env = getenv("JX_JIT_LOOPS");
  if (env && !strcmp(env, "0")) return false;
  jx_jaxpr *subs[2];
  int n = jx_params_jaxprs(&q->params, subs);
  if (n != lowering(q->prim)->nbody) return false; /* malformed: stays a call, whose impl says why */
  jx_program *sp[2] = {NULL, NULL};
  for (int i = 0; i < n; i++)
    if (!(sp[i] = sub_program(subs[i]))) {
      if (i) jx_program_free(sp[0]);
      return false;
    }
  k->kind = JX_LK_LOOP;
  if (lowering(q->prim)->loop_fields) lowering(q->prim)->loop_fields(&q->params, &k->loop);
  k->loop.nsub = n;
  for (int i = 0; i < n; i++) k->loop.sub[i] = sp[i]; /* owned by the kernel from here on */
  for (int i = 0; i < n; i++) {
    k->loop.bmap[i] = jx_malloc(sizeof(int) * (size_t)(sp[i]->nbuf ? sp[i]->nbuf : 1));
    if (!k->loop.bmap[i]) {
      c->err = jx_error_new("jit: out of memory");
      return true; /* freed with the program */
    }
    for (int b = 0; b < sp[i]->nbuf && !c->err; b++)
      k->loop.bmap[i][b] =
          sp[i]->bufs[b].kind == JX_LB_CONST ? add_const_buf(c, sp[i]->consts[sp[i]->bufs[b].index]) : -1;
  }
  return true;
}

/* number the programs depth first into root->all */
static int count_programs(const jx_program *p) {
  int n = 1;
  for (int k = 0; k < p->nkernel; k++)
    for (int i = 0; i < p->kernels[k].loop.nsub; i++) n += count_programs(p->kernels[k].loop.sub[i]);
  return n;
}
static void number_programs(jx_program *root, jx_program *p) {
  p->id = root->nall;
  root->all[root->nall++] = p;
  for (int k = 0; k < p->nkernel; k++)
    for (int i = 0; i < p->kernels[k].loop.nsub; i++) number_programs(root, p->kernels[k].loop.sub[i]);
}

/* Epilogues (see ir/loop.h): kernel k a CALL that takes one (a
 * dot_general without batch dimensions, a batch-major convolution) into a
 * temporary that only kernel k + 1 reads, a MAP over as many elements that
 * loads it at the point it writes, in flat order: its element i reads
 * element i (jx_kernel_reads_pointwise), so it may run on any finished
 * range. (The MAP's loop nest may differ in shape, and a unit dim's
 * coefficient is 0.) In every program: a loop body's CALL gets its
 * epilogue's loop through rt->call. */
static void mark_epilogues(jx_program *p) {
  for (int k = 0; k + 1 < p->nkernel; k++) {
    jx_kernel *g = &p->kernels[k], *m = &p->kernels[k + 1];
    if (g->kind != JX_LK_CALL || !takes_epilogue(g->call.prim, &g->call.params, g->nout)) continue;
    const jx_lbuf *c = &p->bufs[g->outs[0]];
    if (c->kind != JX_LB_TEMP || c->last != k + 1 || m->kind != JX_LK_MAP) continue;
    int64_t items = 1;
    for (int d = 0; d < m->ndim; d++) items *= m->shape[d];
    if (items != jx_aval_size(&c->aval) || !jx_kernel_reads_pointwise(m, g->outs[0])) continue;
    g->epilogue = k + 2;
    m->fused = true;
  }
}

jx_program *jx_fuse(const jx_jaxpr *j, jx_t *err) {
  jx_program *p = fuse_program(j, err);
  if (!p) return NULL;

  p->all = jx_malloc(sizeof(jx_program *) * (size_t)count_programs(p));
  if (!p->all) {
    jx_program_free(p);
    *err = jx_error_new("jit: out of memory");
    return NULL;
  }
  number_programs(p, p);
  if (epilogues_enabled())
    for (int i = 0; i < p->nall; i++) mark_epilogues(p->all[i]);
  return p;
}

/* ------------------------------------------------------------ schedule */
/* Whether everything materialized equation f reads (through the
 * expressions inlined into it) is an input, a constant, the output of dot
 * equation d, or defined before d -- so that f may run right after d; and
 * whether it reads d's output at all. */
static bool ready_after(const fctx *c, int v, int d, bool *reads_d, int depth) {
  if (c->def[v] < 0) return true; /* an input or a constant */
  if (c->def[v] == d) return *reads_d = true;
  if (c->mat[v]) return c->def[v] < d;
  if (depth > 64) return false; /* (deep inlined chains: leave them where they are) */
  const jx_eqn *q = &c->j->eqns[c->def[v]];
  for (int a = 0; a < q->nin; a++)
    if (!ready_after(c, q->in[a], d, reads_d, depth + 1)) return false;
  return true;
}

/* The order kernels are made in: the equations' own, except that the
 * pointwise consumer of a GEMM's only use moves up to right after it when
 * all else it reads is ready there, so that it can become the GEMM's
 * epilogue. A backward pass computes a weight's gradient long before the
 * SGD update that consumes it (the update comes after the whole backward
 * pass), which then ran as a kernel of its own over the gradient. */
static void schedule(const fctx *c, int *order, bool *moved, bool pull) {
  const jx_jaxpr *j = c->j;
  int n = 0;
  for (int e = 0; e < j->neqn; e++) {
    if (moved[e]) continue;
    order[n++] = e;
    const jx_eqn *q = &j->eqns[e];
    if (!pull || !takes_epilogue(q->prim, &q->params, q->nout) || c->uses[q->out[0]] != 1) continue;
    const jx_aval *ga = &j->avals[q->out[0]];
    for (int f = e + 1; f < j->neqn; f++) {
      const jx_eqn *m = &j->eqns[f];
      if (moved[f] || !pointwise(kind_of(m->prim)) || m->nout != 1 || !c->mat[m->out[0]]) continue;
      const jx_aval *ma = &j->avals[m->out[0]];
      if (ma->ndim != ga->ndim || memcmp(ma->shape, ga->shape, sizeof(int64_t) * (size_t)ga->ndim)) continue;
      bool reads_d = false, ok = true;
      for (int a = 0; a < m->nin && ok; a++) ok = ready_after(c, m->in[a], e, &reads_d, 0);
      if (ok && reads_d) {
        order[n++] = f;
        moved[f] = true;
        break;
      }
    }
  }
}

/* ------------------------------------------------------------ kernels */
static void oom(fctx *c) {
  if (!c->err) c->err = jx_error_new("jit: out of memory");
}

/* the context's per-variable tables: definitions, uses, constants */
static bool fctx_init(fctx *c, const jx_jaxpr *j) {
  size_t nv = (size_t)(j->nvars ? j->nvars : 1);
  c->j = j;
  c->def = jx_malloc(sizeof(int) * nv);
  c->uses = jx_calloc(nv, sizeof(int));
  c->mat = jx_calloc(nv, sizeof(bool));
  c->buf = jx_malloc(sizeof(int) * nv);
  c->cidx = jx_malloc(sizeof(int) * nv);
  c->prog = jx_calloc(1, sizeof(jx_program));
  if (!c->def || !c->uses || !c->mat || !c->buf || !c->cidx || !c->prog) return false;
  for (size_t v = 0; v < nv; v++) c->def[v] = -1, c->buf[v] = -1, c->cidx[v] = -1;
  for (int e = 0; e < j->neqn; e++) {
    for (int o = 0; o < j->eqns[e].nout; o++) c->def[j->eqns[e].out[o]] = e;
    for (int a = 0; a < j->eqns[e].nin; a++) c->uses[j->eqns[e].in[a]]++;
  }
  for (int i = 0; i < j->nout; i++) c->uses[j->outvars[i]]++;
  for (int i = 0; i < j->nconst; i++) c->cidx[j->constvars[i]] = i;
  return true;
}

/* Every primitive of j has a lowering rule (else an error naming it). */
static bool check_lowerings(fctx *c) {
  for (int e = 0; e < c->j->neqn; e++) {
    jx_prim p = c->j->eqns[e].prim;
    if (kind_of(p) != JX_LOWER_NONE) continue;
    c->err = jx_error_new("jit: no C rendering for %s (its rules have no lowering)", jx_prim_names[p]);
    return false;
  }
  return true;
}

/* buffers: arguments, constants (not inlined scalars), then outputs */
static void plan_buffers(fctx *c) {
  const jx_jaxpr *j = c->j;
  for (int i = 0; i < j->nin && !c->err; i++)
    c->buf[j->invars[i]] = new_buf(c, &j->avals[j->invars[i]], JX_LB_ARG, i);
  for (int i = 0; i < j->nconst && !c->err; i++) {
    int v = j->constvars[i];
    bool scalar = j->avals[v].ndim == 0 && jx_is_array(j->consts[i]);
    bool needed = !scalar || c->mat[v];
    if (needed && c->buf[v] < 0) c->buf[v] = new_buf(c, &j->avals[v], JX_LB_CONST, i);
  }
  c->prog->nconst = j->nconst;
  /* zeroed: on an earlier error none is retained, and freeing skips NULLs */
  c->prog->consts = jx_calloc((size_t)(j->nconst ? j->nconst : 1), sizeof(jx_t));
  c->capconst = j->nconst ? j->nconst : 1;
  if (!c->prog->consts) oom(c);
  for (int i = 0; i < j->nconst && !c->err; i++) c->prog->consts[i] = jx_retain(j->consts[i]);
  for (int i = 0; i < j->nout && !c->err; i++) {
    int v = j->outvars[i];
    if (c->buf[v] < 0) c->buf[v] = new_buf(c, &j->avals[v], JX_LB_OUT, i);
  }
  c->prog->nout = j->nout;
  c->prog->outs = jx_malloc(sizeof(int) * (size_t)(j->nout ? j->nout : 1));
  if (!c->prog->outs) oom(c);
}

/* kernel k runs equation q as a library call (or a LOOP, make_loop) */
static void call_kernel(fctx *c, jx_kernel *k, const jx_eqn *q) {
  const jx_jaxpr *j = c->j;
  k->kind = JX_LK_CALL;
  k->call.prim = q->prim;
  k->call.params = q->params;
  k->nin = q->nin, k->nout = q->nout;
  k->ins = jx_malloc(sizeof(int) * (size_t)(q->nin ? q->nin : 1));
  k->outs = jx_malloc(sizeof(int) * (size_t)(q->nout ? q->nout : 1));
  if (!k->ins || !k->outs) {
    oom(c);
    return;
  }
  for (int a = 0; a < q->nin; a++) {
    if (c->buf[q->in[a]] < 0) /* an inlined scalar constant read by a call */
      c->buf[q->in[a]] = new_buf(c, &j->avals[q->in[a]], JX_LB_CONST, c->cidx[q->in[a]]);
    k->ins[a] = c->buf[q->in[a]];
  }
  for (int o = 0; o < q->nout; o++) k->outs[o] = c->buf[q->out[o]];
  make_loop(c, k, q);
}

/* kernel k a MAP (over the output) or a REDUCE (over the operand) of q */
static void loop_kernel(fctx *c, jx_kernel *k, const jx_eqn *q, bool reduce) {
  const jx_aval *a = &c->j->avals[reduce ? q->in[0] : q->out[0]];
  k->kind = reduce ? JX_LK_REDUCE : JX_LK_MAP;
  k->ndim = a->ndim;
  memcpy(k->shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
  imap m;
  memset(&m, 0, sizeof m);
  m.nd = a->ndim;
  for (int d = 0; d < a->ndim; d++) m.d[d].coef[d] = 1;
  if (reduce) {
    k->reduce_op = q->prim;
    for (int i = 0; i < q->params.reduce.naxes; i++) k->reduced[q->params.reduce.axes[i]] = true;
    k->root = build(c, q->in[0], &m);
  } else {
    k->root = build_eqn(c, q, &m);
  }
  k->out = c->buf[q->out[0]];
}

/* liveness: kernel kid defines its outputs and reads its inputs */
static void note_liveness(jx_program *p, const jx_kernel *k, int kid) {
  if (k->kind == JX_LK_CALL || k->kind == JX_LK_LOOP) {
    for (int a = 0; a < k->nin; a++) touch(p, k->ins[a], kid);
    for (int o = 0; o < k->nout; o++) p->bufs[k->outs[o]].def = kid;
  } else {
    for (int x = 0; x < k->nexpr; x++)
      if (k->exprs[x].kind == JX_LX_LOAD) touch(p, k->exprs[x].buf, kid);
    p->bufs[k->out].def = kid;
  }
}

/* one kernel per materialized equation, in `order` */
static void make_kernels(fctx *c, const int *order) {
  const jx_jaxpr *j = c->j;
  for (int oe = 0; oe < j->neqn && !c->err; oe++) {
    const jx_eqn *q = &j->eqns[order[oe]];
    jx_lower_kind fk = kind_of(q->prim);
    if (!is_call(fk) && !c->mat[q->out[0]]) continue;
    for (int o = 0; o < q->nout && !c->err; o++)
      if (c->buf[q->out[o]] < 0) c->buf[q->out[o]] = new_buf(c, &j->avals[q->out[o]], JX_LB_TEMP, -1);
    jx_kernel *k = new_kernel(c);
    if (!k) break;
    c->k = k;
    if (is_call(fk))
      call_kernel(c, k, q);
    else
      loop_kernel(c, k, q, fk == JX_LOWER_REDUCE);
    if (c->err) break; /* a buffer or an expression is missing */
    note_liveness(c->prog, k, c->prog->nkernel - 1);
  }
}

static void fctx_free(fctx *c) {
  jx_free(c->def);
  jx_free(c->uses);
  jx_free(c->mat);
  jx_free(c->buf);
  jx_free(c->cidx);
}

static jx_program *fuse_program(const jx_jaxpr *j, jx_t *err) {
  *err = NULL;
  fctx c = {.j = j};
  size_t ne = (size_t)(j->neqn ? j->neqn : 1);
  int *order = NULL;
  bool *moved = NULL;
  int64_t *cost = NULL;
  if (!fctx_init(&c, j))
    oom(&c);
  else if (check_lowerings(&c)) {
    decide(&c);
    cost = jx_calloc((size_t)(j->nvars ? j->nvars : 1), sizeof(int64_t));
    if (cost)
      bound_inlining(&c, cost);
    else
      oom(&c);
  }
  if (!c.err) plan_buffers(&c);
  /* kernels, in equation order but for GEMM epilogues (see schedule) */
  order = jx_malloc(sizeof(int) * ne);
  moved = jx_calloc(ne, sizeof(bool));
  if (!order || !moved) oom(&c);
  if (!c.err) schedule(&c, order, moved, epilogues_enabled());
  if (!c.err) make_kernels(&c, order);
  /* outputs that are copies of inputs/consts/other outputs need no kernel;
   * an output var materialized by no kernel (an input passed through) keeps
   * its ARG/CONST buffer */
  for (int i = 0; i < j->nout && !c.err; i++) c.prog->outs[i] = c.buf[j->outvars[i]];
  for (int i = 0; i < j->nout && !c.err; i++) touch(c.prog, c.prog->outs[i], c.prog->nkernel);
  jx_free(cost);
  jx_free(order);
  jx_free(moved);
  fctx_free(&c);
  if (c.err) {
    jx_program_free(c.prog);
    *err = c.err;
    return NULL;
  }
  return c.prog;
}

bool jx_kernel_reads_pointwise(const jx_kernel *kn, int buf) {
  int64_t stride[JX_MAX_RANK], st = 1;
  for (int d = kn->ndim - 1; d >= 0; d--) stride[d] = st, st *= kn->shape[d];
  for (int e = 0; e < kn->nexpr; e++) {
    const jx_lexpr *x = &kn->exprs[e];
    if (x->kind != JX_LX_LOAD || x->buf != buf) continue;
    if (x->at.off) return false;
    for (int d = 0; d < kn->ndim; d++) /* (a unit dim's coefficient is moot) */
      if (kn->shape[d] > 1 && x->at.coef[d] != stride[d]) return false;
  }
  return true;
}

void jx_program_free(jx_program *p) {
  if (!p) return;
  for (int k = 0; k < p->nkernel; k++) {
    jx_free(p->kernels[k].exprs);
    jx_free(p->kernels[k].ins);
    jx_free(p->kernels[k].outs);
    for (int i = 0; i < p->kernels[k].loop.nsub; i++) {
      jx_program_free(p->kernels[k].loop.sub[i]);
      jx_free(p->kernels[k].loop.bmap[i]);
    }
  }
  jx_free(p->all);
  jx_jaxpr_release(p->owner);
  for (int i = 0; p->consts && i < p->nconst; i++) jx_release(p->consts[i]);
  jx_free(p->consts);
  jx_free(p->kernels);
  jx_free(p->bufs);
  jx_free(p->outs);
  jx_free(p);
}
