/* The C renderer: loop IR -> one C translation unit.
 *
 * The unit starts with scalar_ops.h (pasted in: the same scalar functions
 * the eager kernels use, so compiled and eager results agree), then one
 * range function per kernel (the loop nest over a slice of the flattened
 * iteration space, split across the pool) and a table of entry points.
 * Kernels are named p<program>_k<kernel>: a LOOP kernel (scan, while,
 * cond) is a C function with the real loop or branch, whose bodies are
 * programs rendered the same way (p<body>_run runs one body's kernels in
 * order; a body's CALL kernels go back to the runtime through rt->call).
 * Every operation renders as a call `<prim>_<dtype>(...)`, so the renderer
 * is a table of names rather than a table of code. */
#include "backend/backend.h"
#include "gen/scalar_ops_text.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const sfx[JX_DTYPE_COUNT] = {"b", "i32", "i64", "u32", "f32", "f64"};
static const char *const ctype[JX_DTYPE_COUNT] = {"uint8_t", "int32_t", "int64_t", "uint32_t", "float", "double"};

typedef struct {
  char *s;
  size_t n, cap;
  bool oom;
} sb;

static void put(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sb *b, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int k = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (k >= 0 && !b->oom && b->n + (size_t)k + 1 > b->cap) {
    size_t cap = (b->n + (size_t)k + 1) * 2;
    char *q = jx_realloc(b->s, cap);
    if (!q) b->oom = true;
    else b->s = q, b->cap = cap;
  }
  if (k >= 0 && !b->oom) {
    vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap2);
    b->n += (size_t)k;
  }
  va_end(ap2);
}

static void put_const(sb *b, jx_dtype dt, double v) {
  if (isnan(v)) put(b, "(%s)NAN", ctype[dt]);
  else if (isinf(v)) put(b, "(%s)(%sINFINITY)", ctype[dt], v < 0 ? "-" : "");
  else if (jx_dtype_is_float(dt)) put(b, "(%s)%a", ctype[dt], v);
  else if (dt == JX_I64) put(b, "(int64_t)%lldLL", (long long)v);
  else put(b, "(%s)%.0f", ctype[dt], v);
}

/* off + sum coef[d] * i<d> (the last dim's index is `iL`) */
static void put_affine(sb *b, const jx_affine *a, int nd) {
  put(b, "(int64_t)%lldLL", (long long)a->off);
  for (int d = 0; d < nd; d++)
    if (a->coef[d]) put(b, " + (int64_t)%lldLL * i%d", (long long)a->coef[d], d);
}

/* the body: every expression as a local, in order */
static void put_body(sb *b, const jx_kernel *k, const char *indent) {
  for (int x = 0; x < k->nexpr; x++) {
    const jx_lexpr *e = &k->exprs[x];
    put(b, "%s%s v%d = ", indent, ctype[e->dtype], x);
    switch ((jx_lx_kind)e->kind) {
    case JX_LX_LOAD:
      put(b, "((const %s *)b[%d])[", ctype[e->dtype], e->buf);
      put_affine(b, &e->at, k->ndim);
      put(b, "]");
      break;
    case JX_LX_CONST: put_const(b, e->dtype, e->value); break;
    case JX_LX_INDEX: put_affine(b, &e->at, k->ndim); break;
    case JX_LX_OP: {
      jx_dtype at = k->exprs[e->args[0]].dtype;
      if (e->prim == JX_P_convert) put(b, "cvt_%s_%s(", sfx[at], sfx[e->dtype]);
      else if (e->prim == JX_P_select) put(b, "select_%s(", sfx[e->dtype]);
      else put(b, "%s_%s(", jx_prim_names[e->prim], sfx[at]);
      for (int a = 0; a < e->nargs; a++) put(b, "%sv%d", a ? ", " : "", e->args[a]);
      put(b, ")");
      break;
    }
    }
    put(b, ";\n");
  }
}

/* decompose flat index `f` over dims [d0, d1) of shape into i<d> */
static void put_decompose(sb *b, const char *f, const int *dims, int n, const int64_t *shape, const char *indent) {
  int64_t stride = 1;
  for (int t = n - 1; t >= 0; t--) {
    put(b, "%sconst int64_t i%d = (%s / %lldLL) %% %lldLL;\n", indent, dims[t], f, (long long)stride,
        (long long)shape[dims[t]]);
    stride *= shape[dims[t]];
  }
}

/* A program output this big is not read back soon (it goes to the caller,
 * and it outgrows the caches): its rows are computed into a tile on the
 * stack and streamed out (jx_stream, non-temporal stores), which saves the
 * read-for-ownership of every output line -- a third of the traffic of a
 * unary or binary map. Rows must be long enough to amortize the tiles. */
enum { STREAM_MIN_BYTES = 4 << 20, STREAM_MIN_ROW = 1024, STREAM_TILE = 512 };

static bool streams(const jx_program *p, const jx_kernel *k) {
  int nd = k->ndim;
  if (!nd || k->shape[nd - 1] < STREAM_MIN_ROW || p->bufs[k->out].kind != JX_LB_OUT) return false;
  int64_t total = 1;
  for (int d = 0; d < nd; d++) total *= k->shape[d];
  return total * (int64_t)jx_dtype_size(k->exprs[k->root].dtype) >= STREAM_MIN_BYTES;
}

static void render_map(sb *b, const jx_program *prog, const jx_kernel *k, int pid, int id) {
  int nd = k->ndim;
  int64_t total = 1, last = nd ? k->shape[nd - 1] : 1;
  for (int d = 0; d < nd; d++) total *= k->shape[d];
  jx_dtype ot = k->exprs[k->root].dtype;
  bool stream = streams(prog, k);
  put(b, "static void p%d_k%d_range(void *ctx, int64_t lo, int64_t hi) {\n", pid, id);
  put(b, "  char **b = (char **)ctx;\n  %s *out = (%s *)b[%d];\n", ctype[ot], ctype[ot], k->out);
  put(b, "  for (int64_t f = lo; f < hi;) {\n");
  int dims[JX_MAX_RANK];
  for (int d = 0; d + 1 < nd; d++) dims[d] = d;
  put(b, "    const int64_t fo = f / %lldLL;\n", (long long)last);
  put_decompose(b, "fo", dims, nd > 0 ? nd - 1 : 0, k->shape, "    ");
  if (nd > 0) put(b, "    const int64_t row = f / %lldLL * %lldLL;\n", (long long)last, (long long)last);
  else put(b, "    const int64_t row = 0;\n");
  put(b, "    const int64_t start = f - row, stop = hi - row < %lldLL ? hi - row : %lldLL;\n", (long long)last,
      (long long)last);
  int il = nd ? nd - 1 : 0;
  if (stream) { /* tiles of the row, streamed out */
    put(b, "    for (int64_t t0 = start; t0 < stop; t0 += %d) {\n", STREAM_TILE);
    put(b, "      const int64_t t1 = t0 + %d < stop ? t0 + %d : stop;\n", STREAM_TILE, STREAM_TILE);
    put(b, "      %s tile[%d] __attribute__((aligned(64)));\n", ctype[ot], STREAM_TILE);
    put(b, "      for (int64_t i%d = t0; i%d < t1; i%d++) {\n", il, il, il);
    put_body(b, k, "        ");
    put(b, "        tile[i%d - t0] = v%d;\n      }\n", il, k->root);
    put(b, "      jx_stream(out + row + t0, tile, (size_t)(t1 - t0) * sizeof *out);\n    }\n");
    put(b, "    f = row + stop;\n  }\n  jx_stream_fence();\n}\n");
  } else {
    put(b, "    for (int64_t i%d = start; i%d < stop; i%d++) {\n", il, il, il);
    put_body(b, k, "      ");
    put(b, "      out[row + i%d] = v%d;\n    }\n    f = row + stop;\n  }\n}\n", il, k->root);
  }
  put(b, "static int p%d_k%d(char **b, const jx_rt *rt) { rt->parallel_for(%lldLL, %d, p%d_k%d_range, b); return 0; }\n\n",
      pid, id, (long long)total, 16384, pid, id);
}

static void render_reduce(sb *b, const jx_kernel *k, int pid, int id) {
  int kept[JX_MAX_RANK], nk = 0, red[JX_MAX_RANK], nr = 0;
  int64_t nout = 1, nred = 1;
  for (int d = 0; d < k->ndim; d++) {
    if (k->reduced[d]) red[nr++] = d, nred *= k->shape[d];
    else kept[nk++] = d, nout *= k->shape[d];
  }
  jx_dtype vt = k->exprs[k->root].dtype;
  bool fl = jx_dtype_is_float(vt);
  const char *acct = fl ? "double" : ctype[vt];
  const char *init;
  char initbuf[64];
  if (k->reduce_op == JX_P_reduce_sum) init = "0";
  else if (fl) init = k->reduce_op == JX_P_reduce_max ? "-INFINITY" : "INFINITY";
  else {
    static const char *const mn[JX_DTYPE_COUNT] = {"0", "INT32_MIN", "INT64_MIN", "0", "", ""};
    static const char *const mx[JX_DTYPE_COUNT] = {"1", "INT32_MAX", "INT64_MAX", "UINT32_MAX", "", ""};
    snprintf(initbuf, sizeof initbuf, "%s", k->reduce_op == JX_P_reduce_max ? mn[vt] : mx[vt]);
    init = initbuf;
  }
  const char *op = k->reduce_op == JX_P_reduce_sum ? "add" : k->reduce_op == JX_P_reduce_max ? "max" : "min";
  put(b, "static void p%d_k%d_range(void *ctx, int64_t lo, int64_t hi) {\n", pid, id);
  put(b, "  char **b = (char **)ctx;\n  %s *out = (%s *)b[%d];\n", ctype[vt], ctype[vt], k->out);
  put(b, "  for (int64_t o = lo; o < hi; o++) {\n");
  put_decompose(b, "o", kept, nk, k->shape, "    ");
  put(b, "    %s acc = %s;\n", acct, init);
  for (int r = 0; r < nr; r++)
    put(b, "%*sfor (int64_t i%d = 0; i%d < %lldLL; i%d++) {\n", 4 + 2 * r, "", red[r], red[r],
        (long long)k->shape[red[r]], red[r]);
  char ind[64];
  snprintf(ind, sizeof ind, "%*s", 4 + 2 * nr, "");
  put_body(b, k, ind);
  put(b, "%sacc = %s_%s(acc, (%s)v%d);\n", ind, op, fl ? "f64" : sfx[vt], acct, k->root);
  for (int r = nr - 1; r >= 0; r--) put(b, "%*s}\n", 4 + 2 * r, "");
  put(b, "    out[o] = (%s)acc;\n  }\n}\n", ctype[vt]);
  int64_t grain = nred > 0 ? 16384 / nred : 16384;
  put(b, "static int p%d_k%d(char **b, const jx_rt *rt) { rt->parallel_for(%lldLL, %lld, p%d_k%d_range, b); return 0; }\n\n",
      pid, id, (long long)nout, (long long)(grain > 0 ? grain : 1), pid, id);
}

/* ------------------------------------------------------------- loops */
static long long buf_bytes(const jx_program *p, int b) {
  return (long long)(jx_aval_size(&p->bufs[b].aval) * (int64_t)jx_dtype_size(p->bufs[b].aval.dtype));
}

/* the buffer of a body's input i (-1: none) */
static int arg_buf(const jx_program *p, int i) {
  for (int b = 0; b < p->nbuf; b++)
    if (p->bufs[b].kind == JX_LB_ARG && p->bufs[b].index == i) return b;
  return -1;
}

/* Output o of a body is written in place at its destination when its
 * buffer is one the body's kernels define and o is that buffer's first
 * output; otherwise (an input or constant passed through, or a repeated
 * output) it is copied there after the body runs. */
static bool redirected(const jx_program *p, int o) {
  int bo = p->outs[o];
  if (p->bufs[bo].kind != JX_LB_OUT) return false;
  for (int i = 0; i < o; i++)
    if (p->outs[i] == bo) return false;
  return true;
}

/* sub si's data pointers s<si>[], handles h<si>[] and destinations d<si>[];
 * its constants are the enclosing program's buffers */
static void put_sub_decl(sb *b, const jx_kernel *k, int si) {
  const jx_program *p = k->sub[si];
  int nb = p->nbuf ? p->nbuf : 1, no = p->nout ? p->nout : 1;
  put(b, "  char *s%d[%d] = {0}, *d%d[%d] = {0};\n  void *h%d[%d] = {0};\n  (void)d%d;\n", si, nb, si, no, si, nb, si);
  for (int i = 0; i < p->nbuf; i++)
    if (p->bufs[i].kind == JX_LB_CONST) put(b, "  s%d[%d] = b[%d];\n", si, i, k->bmap[si][i]);
}

/* allocate sub si's temporaries (and outputs not written in place) once */
static void put_sub_alloc(sb *b, const jx_kernel *k, int si, bool redirect, const char *ind) {
  const jx_program *p = k->sub[si];
  for (int i = 0; i < p->nbuf; i++) {
    /* an OUT buffer is the first output that has it, so written in place when redirecting */
    jx_lbkind kd = p->bufs[i].kind;
    bool own = kd == JX_LB_TEMP || (kd == JX_LB_OUT && !redirect);
    if (own) put(b, "%sif (!(h%d[%d] = rt->alloc(rt, %lldLL, &s%d[%d]))) goto done;\n", ind, si, i, buf_bytes(p, i), si, i);
  }
}

static void put_sub_release(sb *b, const jx_kernel *k, int si) {
  int nb = k->sub[si]->nbuf ? k->sub[si]->nbuf : 1;
  put(b, "  for (int i = 0; i < %d; i++)\n    if (h%d[i]) rt->release(h%d[i]);\n", nb, si, si);
}

/* Whether carry output o of a loop body that is not written in place can
 * pass its source pointer on instead of copying it: the source must stay
 * valid and unwritten for the rest of the loop -- a constant, a loop
 * constant, an x slice (consts: the body's first `nconst` inputs; carries
 * the next `ncarry`; xs after them), or the carry itself passed through
 * unchanged. Another carry's buffer is rewritten by later steps. */
static bool forwardable(const jx_program *p, int o, int nconst, int ncarry) {
  const jx_lbuf *lb = &p->bufs[p->outs[o]];
  if (lb->kind == JX_LB_CONST) return true;
  if (lb->kind != JX_LB_ARG) return false;
  return lb->index < nconst || lb->index == nconst + o || lb->index >= nconst + ncarry;
}

/* run sub si once: destinations d<si>[] set; outputs land there, except
 * forwarded carries (the first `ncarry` outputs; see forwardable), whose
 * d<si>[] becomes the source */
static void put_sub_run(sb *b, const jx_kernel *k, int si, const char *ind, int nconst, int ncarry) {
  const jx_program *p = k->sub[si];
  for (int o = 0; o < p->nout; o++)
    if (redirected(p, o)) put(b, "%ss%d[%d] = d%d[%d];\n", ind, si, p->outs[o], si, o);
  put(b, "%sif (p%d_run(s%d, rt)) goto done;\n", ind, p->id, si);
  for (int o = 0; o < p->nout; o++) {
    if (redirected(p, o)) continue;
    if (o < ncarry && forwardable(p, o, nconst, ncarry)) put(b, "%sd%d[%d] = s%d[%d];\n", ind, si, o, si, p->outs[o]);
    else put(b, "%smemcpy(d%d[%d], s%d[%d], %lld);\n", ind, si, o, si, p->outs[o], buf_bytes(p, p->outs[o]));
  }
}

/* after the loop: each carry's final value into the loop's output buffer
 * (already there when the last step wrote it in place) */
static void put_carry_out(sb *b, const jx_program *outer, const jx_kernel *k, int n) {
  for (int c = 0; c < n; c++)
    put(b, "  if (cur[%d] != b[%d]) memcpy(b[%d], cur[%d], %lld);\n", c, k->outs[c], k->outs[c], c,
        buf_bytes(outer, k->outs[c]));
}

static void put_set_arg(sb *b, const jx_program *p, int si, int i, const char *ind, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void put_set_arg(sb *b, const jx_program *p, int si, int i, const char *ind, const char *fmt, ...) {
  int ab = arg_buf(p, i);
  if (ab < 0) return;
  char val[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(val, sizeof val, fmt, ap);
  va_end(ap);
  put(b, "%ss%d[%d] = %s;\n", ind, si, ab, val);
}

/* the carries: cur[] (what the body reads), q[] (the second buffer of each
 * pair; the loop's output buffer is the first) */
static void put_carries(sb *b, const jx_program *outer, const jx_kernel *k, int first_in, int n) {
  int n1 = n ? n : 1;
  put(b, "  char *cur[%d] = {0}, *q[%d] = {0};\n  void *hq[%d] = {0};\n  (void)cur, (void)q;\n", n1, n1, n1);
  for (int c = 0; c < n; c++) {
    put(b, "  cur[%d] = b[%d];\n", c, k->ins[first_in + c]);
    put(b, "  if (!(hq[%d] = rt->alloc(rt, %lldLL, &q[%d]))) goto done;\n", c, buf_bytes(outer, k->outs[c]), c);
  }
}

static void render_scan(sb *b, const jx_program *outer, const jx_kernel *k, int id) {
  const jx_program *body = k->sub[0];
  const jx_params *pa = &k->params;
  int nc = (int)pa->limit[0], ncar = (int)pa->limit[1], nx = k->nin - nc - ncar, ny = k->nout - ncar;
  long long L = (long long)pa->limit[2];
  put(b, "static int p%d_k%d(char **b, const jx_rt *rt) { /* scan, %lld steps */\n  int rc = 1;\n", outer->id, id, L);
  put_sub_decl(b, k, 0);
  put_carries(b, outer, k, nc, ncar);
  put_sub_alloc(b, k, 0, true, "  ");
  for (int i = 0; i < nc; i++) put_set_arg(b, body, 0, i, "  ", "b[%d]", k->ins[i]);
  put(b, "  for (int64_t it = 0; it < %lldLL; it++) {\n", L);
  if (pa->axis) put(b, "    const int64_t st = %lldLL - 1 - it; /* reverse */\n", L);
  else put(b, "    const int64_t st = it;\n");
  put(b, "    const int to_out = ((%lldLL - 1 - it) & 1) == 0; /* the last step writes the output buffers */\n", L);
  put(b, "    (void)st, (void)to_out;\n");
  for (int c = 0; c < ncar; c++) {
    put_set_arg(b, body, 0, nc + c, "    ", "cur[%d]", c);
    put(b, "    d0[%d] = to_out ? b[%d] : q[%d];\n", c, k->outs[c], c);
  }
  for (int i = 0; i < nx; i++) {
    int xb = k->ins[nc + ncar + i], ab = arg_buf(body, nc + ncar + i);
    if (ab >= 0) put_set_arg(b, body, 0, nc + ncar + i, "    ", "b[%d] + st * %lldLL", xb, buf_bytes(body, ab));
  }
  for (int j = 0; j < ny; j++) put(b, "    d0[%d] = b[%d] + st * %lldLL;\n", ncar + j, k->outs[ncar + j], buf_bytes(body, body->outs[ncar + j]));
  put_sub_run(b, k, 0, "    ", nc, ncar);
  for (int c = 0; c < ncar; c++) put(b, "    cur[%d] = d0[%d];\n", c, c);
  put(b, "  }\n");
  put_carry_out(b, outer, k, ncar);
  put(b, "  rc = 0;\ndone:\n");
  put_sub_release(b, k, 0);
  put(b, "  for (int i = 0; i < %d; i++)\n    if (hq[i]) rt->release(hq[i]);\n  return rc;\n}\n\n", ncar ? ncar : 1);
}

static void render_while(sb *b, const jx_program *outer, const jx_kernel *k, int id) {
  const jx_program *cp = k->sub[0], *bp = k->sub[1];
  int ncc = (int)k->params.limit[0], nbc = (int)k->params.limit[1], n = k->nin - ncc - nbc;
  put(b, "static int p%d_k%d(char **b, const jx_rt *rt) { /* while */\n  int rc = 1;\n", outer->id, id);
  put_sub_decl(b, k, 0);
  put_sub_decl(b, k, 1);
  put_carries(b, outer, k, ncc + nbc, n);
  put_sub_alloc(b, k, 0, false, "  ");
  put_sub_alloc(b, k, 1, true, "  ");
  for (int i = 0; i < ncc; i++) put_set_arg(b, cp, 0, i, "  ", "b[%d]", k->ins[i]);
  for (int i = 0; i < nbc; i++) put_set_arg(b, bp, 1, i, "  ", "b[%d]", k->ins[ncc + i]);
  put(b, "  for (;;) {\n");
  for (int c = 0; c < n; c++) put_set_arg(b, cp, 0, ncc + c, "    ", "cur[%d]", c);
  put(b, "    if (p%d_run(s0, rt)) goto done;\n", cp->id);
  put(b, "    if (!*(const uint8_t *)s0[%d]) break;\n", cp->outs[0]);
  for (int c = 0; c < n; c++) {
    put_set_arg(b, bp, 1, nbc + c, "    ", "cur[%d]", c);
    put(b, "    d1[%d] = cur[%d] == b[%d] ? q[%d] : b[%d];\n", c, c, k->outs[c], c, k->outs[c]);
  }
  put_sub_run(b, k, 1, "    ", nbc, n);
  for (int c = 0; c < n; c++) put(b, "    cur[%d] = d1[%d];\n", c, c);
  put(b, "  }\n");
  put_carry_out(b, outer, k, n);
  put(b, "  rc = 0;\ndone:\n");
  put_sub_release(b, k, 0);
  put_sub_release(b, k, 1);
  put(b, "  for (int i = 0; i < %d; i++)\n    if (hq[i]) rt->release(hq[i]);\n  return rc;\n}\n\n", n ? n : 1);
}

static void render_cond(sb *b, const jx_program *outer, const jx_kernel *k, int id) {
  put(b, "static int p%d_k%d(char **b, const jx_rt *rt) { /* cond */\n  int rc = 1;\n", outer->id, id);
  put_sub_decl(b, k, 0);
  put_sub_decl(b, k, 1);
  for (int si = 0; si < 2; si++) {
    const jx_program *p = k->sub[si];
    put(b, si == 0 ? "  if (*(const uint8_t *)b[%d]) {\n" : "  } else {\n", k->ins[0]);
    put_sub_alloc(b, k, si, true, "    ");
    for (int i = 0; i + 1 < k->nin; i++) put_set_arg(b, p, si, i, "    ", "b[%d]", k->ins[1 + i]);
    for (int o = 0; o < k->nout; o++) put(b, "    d%d[%d] = b[%d];\n", si, o, k->outs[o]);
    put_sub_run(b, k, si, "    ", 0, 0);
  }
  put(b, "  }\n  rc = 0;\ndone:\n");
  put_sub_release(b, k, 0);
  put_sub_release(b, k, 1);
  put(b, "  return rc;\n}\n\n");
}

/* a program's kernels (bodies first, depth first); for a body also
 * p<id>_run, which runs its kernels in order */
static void render_program(sb *b, const jx_program *p, bool root) {
  for (int i = 0; i < p->nkernel; i++) {
    const jx_kernel *k = &p->kernels[i];
    if (k->kind == JX_LK_MAP) render_map(b, p, k, p->id, i);
    else if (k->kind == JX_LK_REDUCE) render_reduce(b, k, p->id, i);
    else if (k->kind == JX_LK_LOOP) {
      for (int si = 0; si < k->nsub; si++) render_program(b, k->sub[si], false);
      if (k->prim == JX_P_scan) render_scan(b, p, k, i);
      else if (k->prim == JX_P_while) render_while(b, p, k, i);
      else render_cond(b, p, k, i);
    }
  }
  if (root) return;
  put(b, "static int p%d_run(char **b, const jx_rt *rt) {\n", p->id);
  for (int i = 0; i < p->nkernel; i++) {
    if (p->kernels[i].kind == JX_LK_CALL) put(b, "  if (rt->call(rt, %d, %d, b)) return 1;\n", p->id, i);
    else put(b, "  if (p%d_k%d(b, rt)) return 1;\n", p->id, i);
  }
  put(b, "  return 0;\n}\n\n");
}

char *jx_cpu_render(const jx_program *p) {
  sb b = {0};
  put(&b, "/* generated by jx: %d kernels, %d buffers */\n", p->nkernel, p->nbuf);
  put(&b, "%s\n", jx_scalar_ops_text);
  put(&b, "#include <string.h>\n");
  /* non-temporal copy of a tile (see streams()); plain memcpy without AVX */
  put(&b, "#ifdef __AVX__\n#include <immintrin.h>\n"
          "static inline void jx_stream(void *dst, const void *src, size_t n) {\n"
          "  char *d = dst;\n  const char *s = src;\n"
          "  size_t head = (size_t)(-(uintptr_t)d & 31);\n"
          "  if (head > n) head = n;\n"
          "  memcpy(d, s, head);\n  d += head, s += head, n -= head;\n"
          "  for (; n >= 32; d += 32, s += 32, n -= 32)\n"
          "    _mm256_stream_si256((__m256i *)d, _mm256_loadu_si256((const __m256i *)s));\n"
          "  memcpy(d, s, n);\n}\n"
          "static inline void jx_stream_fence(void) { _mm_sfence(); }\n"
          "#else\n"
          "static inline void jx_stream(void *dst, const void *src, size_t n) { memcpy(dst, src, n); }\n"
          "static inline void jx_stream_fence(void) {}\n"
          "#endif\n");
  /* the same layout as jx_rt in backend/backend.h */
  put(&b, "typedef struct jx_rt {\n"
          "  void (*parallel_for)(int64_t, int64_t, void (*)(void *, int64_t, int64_t), void *);\n"
          "  void *ctx;\n"
          "  int (*call)(const struct jx_rt *, int, int, char **);\n"
          "  void *(*alloc)(const struct jx_rt *, int64_t, char **);\n"
          "  void (*release)(void *);\n"
          "} jx_rt;\n\n");
  render_program(&b, p, true);
  put(&b, "int (*const jx_kernel_table[%d])(char **, const jx_rt *) = {", p->nkernel ? p->nkernel : 1);
  for (int i = 0; i < p->nkernel; i++) {
    if (p->kernels[i].kind == JX_LK_CALL) put(&b, "%s0", i ? ", " : "");
    else put(&b, "%sp%d_k%d", i ? ", " : "", p->id, i);
  }
  if (!p->nkernel) put(&b, "0");
  put(&b, "};\n");
  put(&b, "void (*const jx_range_table[%d])(void *, int64_t, int64_t) = {", p->nkernel ? p->nkernel : 1);
  for (int i = 0; i < p->nkernel; i++) {
    if (p->kernels[i].kind == JX_LK_MAP) put(&b, "%sp%d_k%d_range", i ? ", " : "", p->id, i);
    else put(&b, "%s0", i ? ", " : "");
  }
  if (!p->nkernel) put(&b, "0");
  put(&b, "};\n");
  if (b.oom) {
    jx_free(b.s);
    return NULL;
  }
  return b.s;
}
