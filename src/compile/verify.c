/* The loop-IR verifier (jx_program_verify, compile/compile.h): what fusion
 * hands the renderer must hold together, or the generated C reads out of
 * bounds or a freed buffer. jx_compile runs it after fusion in debug and
 * sanitizer builds, so a fusion bug is reported where it is made, as a
 * message naming the program, the kernel and the broken fact. */
#include "compile/compile.h"

#include <stdarg.h>
#include <stdio.h>

typedef struct {
  const jx_program *p;
  int nargs;     /* ARG buffers' index bound (-1: unknown, the root) */
  char *written; /* per buffer: written by an earlier kernel */
  jx_t err;
} vctx;

static const char *const kind_names[] = {"MAP", "REDUCE", "CALL", "LOOP"};

/* Record the first failure ("program P kernel K (KIND): ...") and return
 * false. k < 0: the program itself. */
__attribute__((format(printf, 3, 4))) static bool fail(vctx *v, int k, const char *fmt, ...) {
  if (v->err) return false;
  char msg[512], where[96];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const jx_kernel *kn = k >= 0 ? &v->p->kernels[k] : NULL;
  if (!kn)
    snprintf(where, sizeof where, "program %d", v->p->id);
  else if ((unsigned)kn->kind > JX_LK_LOOP)
    snprintf(where, sizeof where, "program %d kernel %d", v->p->id, k);
  else if (kn->kind == JX_LK_CALL || kn->kind == JX_LK_LOOP)
    snprintf(where, sizeof where, "program %d kernel %d (%s %s)", v->p->id, k, kind_names[kn->kind],
             (unsigned)kn->call.prim < JX_PRIM_COUNT ? jx_prim_names[kn->call.prim] : "?");
  else
    snprintf(where, sizeof where, "program %d kernel %d (%s)", v->p->id, k, kind_names[kn->kind]);
  v->err = jx_error_new("program verifier: %s: %s", where, msg);
  return false;
}

static bool aval_ok(const jx_aval *a) {
  if ((unsigned)a->dtype >= JX_DTYPE_COUNT || a->ndim < 0 || a->ndim > JX_MAX_RANK) return false;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] < 0) return false;
  return true;
}

/* every buffer's kind, aval, index and defining kernel */
static bool check_buffers(vctx *v) {
  const jx_program *p = v->p;
  for (int b = 0; b < p->nbuf; b++) {
    const jx_lbuf *lb = &p->bufs[b];
    if ((unsigned)lb->kind > JX_LB_OUT) return fail(v, -1, "buffer %d has kind %d", b, (int)lb->kind);
    if (!aval_ok(&lb->aval))
      return fail(v, -1, "buffer %d has a bad type (dtype %d, rank %d)", b, (int)lb->aval.dtype,
                  lb->aval.ndim);
    if (lb->kind == JX_LB_ARG && (lb->index < 0 || (v->nargs >= 0 && lb->index >= v->nargs)))
      return fail(v, -1, "buffer %d is argument %d of %d", b, lb->index, v->nargs);
    if (lb->kind == JX_LB_CONST) {
      if (lb->index < 0 || lb->index >= p->nconst)
        return fail(v, -1, "buffer %d is constant %d of %d", b, lb->index, p->nconst);
      jx_t c = p->consts[lb->index];
      char s1[160], s2[160];
      if (!jx_is_array(c) || !jx_aval_eq(&c->aval, &lb->aval))
        return fail(v, -1, "buffer %d is %s but its constant %d is %s", b,
                    jx_aval_str(&lb->aval, s1, sizeof s1), lb->index,
                    jx_is_array(c) ? jx_aval_str(&c->aval, s2, sizeof s2) : "not an array");
    }
    if ((lb->kind == JX_LB_TEMP || lb->kind == JX_LB_OUT) && (lb->def < 0 || lb->def >= p->nkernel))
      return fail(v, -1, "buffer %d (%s) is written by kernel %d of %d", b,
                  lb->kind == JX_LB_OUT ? "an output" : "a temporary", lb->def, p->nkernel);
  }
  return true;
}

/* kernel k reads buffer b: in range, written before, still live */
static bool check_read(vctx *v, int k, int b, const char *what) {
  const jx_program *p = v->p;
  if (b < 0 || b >= p->nbuf) return fail(v, k, "%s reads buffer %d, out of range [0, %d)", what, b, p->nbuf);
  const jx_lbuf *lb = &p->bufs[b];
  if ((lb->kind == JX_LB_TEMP || lb->kind == JX_LB_OUT) && !v->written[b])
    return fail(v, k, "%s reads buffer %d before any kernel writes it (kernel %d does)", what, b, lb->def);
  if (lb->kind == JX_LB_TEMP && lb->last < k)
    return fail(v, k, "%s reads buffer %d after its last reader (kernel %d) released it", what, b, lb->last);
  return true;
}

/* kernel k writes buffer b: in range, a temporary or output defined here */
static bool check_write(vctx *v, int k, int b) {
  const jx_program *p = v->p;
  if (b < 0 || b >= p->nbuf) return fail(v, k, "writes buffer %d, out of range [0, %d)", b, p->nbuf);
  const jx_lbuf *lb = &p->bufs[b];
  if (lb->kind != JX_LB_TEMP && lb->kind != JX_LB_OUT)
    return fail(v, k, "writes buffer %d, an %s", b, lb->kind == JX_LB_ARG ? "argument" : "constant");
  if (lb->def != k) return fail(v, k, "writes buffer %d, which kernel %d is said to write", b, lb->def);
  v->written[b] = 1;
  return true;
}

/* a load's offsets over the iteration space stay inside its buffer */
static bool check_load(vctx *v, int k, int x, const jx_lexpr *e) {
  const jx_kernel *kn = &v->p->kernels[k];
  const jx_lbuf *lb = &v->p->bufs[e->buf];
  if (e->dtype != lb->aval.dtype)
    return fail(v, k, "expression %d loads %s from buffer %d of %s", x, jx_dtype_name(e->dtype), e->buf,
                jx_dtype_name(lb->aval.dtype));
  int64_t lo = e->at.off, hi = e->at.off, t;
  for (int d = 0; d < kn->ndim; d++) {
    if (kn->shape[d] == 0) return true; /* no iterations */
    if (__builtin_mul_overflow(e->at.coef[d], kn->shape[d] - 1, &t) ||
        __builtin_add_overflow(t < 0 ? lo : hi, t, t < 0 ? &lo : &hi))
      return fail(v, k, "expression %d: load offsets overflow", x);
  }
  int64_t n = jx_aval_size(&lb->aval);
  if (lo < 0 || hi >= n)
    return fail(v, k, "expression %d loads elements [%lld, %lld] of buffer %d, which has %lld", x,
                (long long)lo, (long long)hi, e->buf, (long long)n);
  return true;
}

/* the expression DAG: kinds, arguments earlier, loads in bounds */
static bool check_exprs(vctx *v, int k) {
  const jx_kernel *kn = &v->p->kernels[k];
  if (kn->nexpr < 1 || !kn->exprs) return fail(v, k, "has %d expressions", kn->nexpr);
  if (kn->root < 0 || kn->root >= kn->nexpr)
    return fail(v, k, "root %d is not among its %d expressions", kn->root, kn->nexpr);
  for (int x = 0; x < kn->nexpr; x++) {
    const jx_lexpr *e = &kn->exprs[x];
    if ((unsigned)e->dtype >= JX_DTYPE_COUNT)
      return fail(v, k, "expression %d has dtype %d", x, (int)e->dtype);
    if (e->kind == JX_LX_LOAD) {
      if (!check_read(v, k, e->buf, "a load") || !check_load(v, k, x, e)) return false;
    } else if (e->kind == JX_LX_OP) {
      if ((unsigned)e->prim >= JX_PRIM_COUNT)
        return fail(v, k, "expression %d applies primitive %d", x, (int)e->prim);
      if (e->nargs < 0 || e->nargs > 3) return fail(v, k, "expression %d has %d arguments", x, e->nargs);
      for (int a = 0; a < e->nargs; a++)
        if (e->args[a] < 0 || e->args[a] >= x)
          return fail(v, k, "expression %d (%s) argument %d is expression %d, not an earlier one", x,
                      jx_prim_names[e->prim], a, e->args[a]);
    } else if (e->kind != JX_LX_CONST && e->kind != JX_LX_INDEX) {
      return fail(v, k, "expression %d has kind %d", x, (int)e->kind);
    }
  }
  return true;
}

/* MAP/REDUCE: iteration space, expressions, and the output buffer */
static bool check_map_reduce(vctx *v, int k) {
  const jx_kernel *kn = &v->p->kernels[k];
  if (kn->ndim < 0 || kn->ndim > JX_MAX_RANK) return fail(v, k, "has rank %d", kn->ndim);
  int64_t kept = 1;
  for (int d = 0; d < kn->ndim; d++) {
    if (kn->shape[d] < 0) return fail(v, k, "dim %d has size %lld", d, (long long)kn->shape[d]);
    if (kn->kind == JX_LK_MAP || !kn->reduced[d]) kept *= kn->shape[d];
  }
  if (!check_exprs(v, k) || !check_write(v, k, kn->out)) return false;
  const jx_lbuf *ob = &v->p->bufs[kn->out];
  if (jx_aval_size(&ob->aval) != kept)
    return fail(v, k, "stores %lld elements into buffer %d of %lld", (long long)kept, kn->out,
                (long long)jx_aval_size(&ob->aval));
  jx_dtype rd = kn->exprs[kn->root].dtype;
  if (rd != ob->aval.dtype)
    return fail(v, k, "stores %s into buffer %d of %s", jx_dtype_name(rd), kn->out,
                jx_dtype_name(ob->aval.dtype));
  return true;
}

/* CALL/LOOP: operand counts, and the primitive's abstract_eval on the
 * input buffers' types gives the output buffers' types */
static bool check_call(vctx *v, int k) {
  const jx_kernel *kn = &v->p->kernels[k];
  if ((unsigned)kn->call.prim >= JX_PRIM_COUNT) return fail(v, k, "calls primitive %d", (int)kn->call.prim);
  const jx_rules *r = jx_prim_rules[kn->call.prim];
  if (kn->nin < 0 || kn->nout < 0 || (kn->nin && !kn->ins) || (kn->nout && !kn->outs) ||
      (r->nin >= 0 && kn->nin != r->nin) || (r->nout >= 0 && kn->nout != r->nout))
    return fail(v, k, "has %d inputs and %d outputs; %s takes %d and gives %d (-1: any)", kn->nin, kn->nout,
                r->name, r->nin, r->nout);
  for (int a = 0; a < kn->nin; a++)
    if (!check_read(v, k, kn->ins[a], "an input")) return false;
  for (int o = 0; o < kn->nout; o++)
    if (!check_write(v, k, kn->outs[o])) return false;
  jx_aval *av = jx_malloc(sizeof(jx_aval) * (size_t)(kn->nin + kn->nout + 1));
  if (!av) return fail(v, k, "out of memory");
  for (int a = 0; a < kn->nin; a++) av[a] = v->p->bufs[kn->ins[a]].aval;
  jx_aval *out = av + kn->nin;
  jx_t e = r->abstract_eval(kn->call.prim, av, kn->nin, &kn->call.params, out);
  bool ok = !e || fail(v, k, "its input buffers do not type-check: %s", jx_error(e));
  for (int o = 0; ok && o < kn->nout; o++) {
    const jx_aval *ba = &v->p->bufs[kn->outs[o]].aval;
    char s1[160], s2[160];
    if (!jx_aval_eq(&out[o], ba))
      ok = fail(v, k, "output %d goes to buffer %d of %s but %s gives %s", o, kn->outs[o],
                jx_aval_str(ba, s1, sizeof s1), r->name, jx_aval_str(&out[o], s2, sizeof s2));
  }
  jx_free(av);
  return ok;
}

static jx_t verify_program(const jx_program *p, int nargs);

/* LOOP: its bodies (verified as programs of their own), their counts, and
 * the map of their constants into this program's buffers */
static bool check_loop(vctx *v, int k) {
  const jx_kernel *kn = &v->p->kernels[k];
  if ((unsigned)kn->call.prim >= JX_PRIM_COUNT)
    return fail(v, k, "loops over primitive %d", (int)kn->call.prim);
  const jx_lowering *lw = &jx_prim_rules[kn->call.prim]->lower;
  int want = lw->kind == JX_LOWER_LOOP ? lw->nbody : 0;
  if (!want) return fail(v, k, "a loop of %s, which does not lower to a loop", jx_prim_names[kn->call.prim]);
  if (kn->loop.nsub != want)
    return fail(v, k, "has %d bodies; %s has %d", kn->loop.nsub, jx_prim_names[kn->call.prim], want);
  for (int i = 0; i < kn->loop.nsub; i++) {
    const jx_program *s = kn->loop.sub[i];
    if (!s || !kn->loop.bmap[i]) return fail(v, k, "body %d is missing (or its constants' map)", i);
    if (!s->owner) return fail(v, k, "body %d has no jaxpr", i);
    if (s->nout != s->owner->nout)
      return fail(v, k, "body %d gives %d outputs, its jaxpr %d", i, s->nout, s->owner->nout);
    jx_t e = verify_program(s, s->owner->nin);
    if (e) return fail(v, k, "body %d: %s", i, jx_error(e));
    for (int b = 0; b < s->nbuf; b++) {
      if (s->bufs[b].kind != JX_LB_CONST) continue;
      int m = kn->loop.bmap[i][b];
      if (m < 0 || m >= v->p->nbuf || v->p->bufs[m].kind != JX_LB_CONST ||
          !jx_aval_eq(&v->p->bufs[m].aval, &s->bufs[b].aval))
        return fail(v, k, "body %d's constant buffer %d maps to buffer %d, not a constant of its type", i, b,
                    m);
    }
  }
  int nout = kn->loop.sub[kn->loop.nsub - 1]->nout; /* the body's (scan, while) or a branch's (cond) */
  if (kn->nout != nout) return fail(v, k, "has %d outputs; its body gives %d", kn->nout, nout);
  return check_call(v, k);
}

static bool check_kernel(vctx *v, int k) {
  const jx_kernel *kn = &v->p->kernels[k];
  if (kn->epilogue &&
      (kn->epilogue - 1 <= k || kn->epilogue > v->p->nkernel ||
       v->p->kernels[kn->epilogue - 1].kind != JX_LK_MAP || !v->p->kernels[kn->epilogue - 1].fused))
    return fail(v, k, "its epilogue %d is not a later fused MAP kernel", kn->epilogue - 1);
  switch (kn->kind) {
    case JX_LK_MAP:
    case JX_LK_REDUCE: return check_map_reduce(v, k);
    case JX_LK_CALL: return check_call(v, k);
    case JX_LK_LOOP: return check_loop(v, k);
  }
  return fail(v, k, "has kind %d", (int)kn->kind);
}

static jx_t verify_program(const jx_program *p, int nargs) {
  vctx v = {p, nargs, NULL, NULL};
  if (p->nbuf < 0 || p->nkernel < 0 || p->nout < 0 || p->nconst < 0 || (p->nbuf && !p->bufs) ||
      (p->nkernel && !p->kernels) || (p->nout && !p->outs) || (p->nconst && !p->consts)) {
    fail(&v, -1, "%d buffers, %d kernels, %d outputs, %d constants", p->nbuf, p->nkernel, p->nout, p->nconst);
    return v.err;
  }
  v.written = jx_calloc((size_t)(p->nbuf ? p->nbuf : 1), 1);
  if (!v.written) return jx_error_new("program verifier: out of memory");
  bool ok = check_buffers(&v);
  for (int k = 0; ok && k < p->nkernel; k++) ok = check_kernel(&v, k);
  for (int i = 0; ok && i < p->nout; i++) {
    int b = p->outs[i];
    if (b < 0 || b >= p->nbuf)
      ok = fail(&v, -1, "output %d is buffer %d, out of range [0, %d)", i, b, p->nbuf);
    else if ((p->bufs[b].kind == JX_LB_TEMP || p->bufs[b].kind == JX_LB_OUT) && !v.written[b])
      ok = fail(&v, -1, "output %d is buffer %d, which no kernel writes", i, b);
  }
  jx_free(v.written);
  return v.err;
}

jx_t jx_program_verify(const jx_program *p) {
  if (!p) return jx_error_new("program verifier: no program");
  /* the root numbers every program in it depth first (generated code
   * names a body's kernels by that id) */
  if (p->nall < 1 || !p->all || p->all[0] != p)
    return jx_error_new("program verifier: the root program's table of programs (%d) does not start with it",
                        p->nall);
  for (int i = 0; i < p->nall; i++)
    if (!p->all[i] || p->all[i]->id != i)
      return jx_error_new("program verifier: program table entry %d has id %d", i,
                          p->all[i] ? p->all[i]->id : -1);
  return verify_program(p, p->owner ? p->owner->nin : -1);
}
