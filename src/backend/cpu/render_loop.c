/* LOOP kernels rendered as C (see ir/loop.h): scan and while as real
 * loops, cond as a branch, each around its bodies' p<id>_run.
 *
 * The driver's conventions: s<i>[] are body i's data pointers (its
 * constants are the enclosing program's buffers, bmap), h<i>[] the handles
 * of what the driver allocates for it (temporaries, once per loop), d<i>[]
 * the destinations of its outputs this step (written in place when the
 * body's kernels define them, copied or passed on otherwise); cur[]/q[]
 * hold the carries: the loop's output buffer and one more, alternating
 * (the output buffer alone for a carry updated in place, carry_in_place). */
#include "backend/cpu/render.h"

/* the buffer of a body's input i (-1: none) */
static int arg_buf(const jx_program *p, int i) {
  for (int b = 0; b < p->nbuf; b++)
    if (p->bufs[b].kind == JX_LB_ARG && p->bufs[b].index == i) return b;
  return -1;
}

static bool redirected(const jx_program *p, int o);

/* Carries updated in place (a KV cache: C = dynamic_update_slice(C, row,
 * (t, 0)) each step). Ping-ponging such a carry would copy all of C into
 * the other buffer every step, O(size of C) per step for a window's
 * worth of change. Instead the carry lives in one buffer for the whole
 * loop -- the loop's output buffer, into which the initial value is copied
 * once before the first step -- and the body's destination for it is the
 * buffer it reads (d[c] = cur[c]), so the CALL kernel that defines it
 * runs with its output in its operand's buffer and writes only the
 * window. Safe when body output c is written in place (redirected) by a
 * CALL whose primitive allows it (lower.inplace), whose operand 0 is
 * carry input c itself, read by no later kernel (its `last` is that
 * CALL: earlier readers have run), by none of the CALL's other operands,
 * and passed on as no output of the body (those are copied after the
 * body runs, when the old value is gone). The cond of a while reads the
 * carry before the body, as before. */
/* The operand buffer that written-in-place output o of body p may share
 * with it (-1: none): o's CALL allows it (lower.inplace) and is the
 * operand's last reader, which none of its other operands is. */
static int in_place_operand(const jx_program *p, int o) {
  int bo = p->outs[o], kd = p->bufs[bo].def;
  if (!redirected(p, o) || kd < 0) return -1;
  const jx_kernel *k = &p->kernels[kd];
  if (k->kind != JX_LK_CALL || !jx_prim_rules[k->call.prim]->lower.inplace || k->epilogue || k->nout != 1 ||
      k->nin < 1 || p->bufs[k->ins[0]].last != kd)
    return -1;
  for (int i = 1; i < k->nin; i++)
    if (k->ins[i] == k->ins[0]) return -1;
  return k->ins[0];
}

static bool carry_in_place(const jx_program *p, int c, int first_carry) {
  int ab = arg_buf(p, first_carry + c);
  if (ab < 0 || in_place_operand(p, c) != ab) return false;
  for (int o = 0; o < p->nout; o++)
    if (p->outs[o] == ab) return false;
  return true;
}

/* The same for a temporary of the body (C = dynamic_update_slice(C *
 * decay, ...)): the temporary the update's operand is, when output o's
 * CALL may share it (in_place_operand), is not allocated but computed in
 * o's destination d[o] -- the carry buffer the body does not read this
 * step, or the row of a stacked y -- which nothing reads before the
 * CALL defines o there; the CALL then writes only its window. -1: none. */
static int temp_in_place(const jx_program *p, int o) {
  int tb = in_place_operand(p, o);
  return tb >= 0 && p->bufs[tb].kind == JX_LB_TEMP ? tb : -1;
}

static bool temp_placed(const jx_program *p, int b) {
  for (int o = 0; o < p->nout; o++)
    if (temp_in_place(p, o) == b) return true;
  return false;
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
  const jx_program *p = k->loop.sub[si];
  int nb = p->nbuf ? p->nbuf : 1, no = p->nout ? p->nout : 1;
  put(b, "  char *s%d[%d] = {0}, *d%d[%d] = {0};\n  void *h%d[%d] = {0};\n  (void)d%d;\n", si, nb, si, no, si,
      nb, si);
  for (int i = 0; i < p->nbuf; i++)
    if (p->bufs[i].kind == JX_LB_CONST) put(b, "  s%d[%d] = b[%d];\n", si, i, k->loop.bmap[si][i]);
}

/* allocate sub si's temporaries (but those computed in an output's
 * destination, temp_in_place) and outputs not written in place, once */
static void put_sub_alloc(sb *b, const jx_kernel *k, int si, bool redirect, const char *ind) {
  const jx_program *p = k->loop.sub[si];
  for (int i = 0; i < p->nbuf; i++) {
    /* an OUT buffer is the first output that has it, so written in place when redirecting */
    jx_lbkind kd = p->bufs[i].kind;
    bool own = (kd == JX_LB_TEMP && !(redirect && temp_placed(p, i))) || (kd == JX_LB_OUT && !redirect);
    if (own)
      put(b, "%sif (!(h%d[%d] = rt->alloc(rt, %lldLL, &s%d[%d]))) goto done;\n", ind, si, i, buf_bytes(p, i),
          si, i);
  }
}

static void put_sub_release(sb *b, const jx_kernel *k, int si) {
  int nb = k->loop.sub[si]->nbuf ? k->loop.sub[si]->nbuf : 1;
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
  const jx_program *p = k->loop.sub[si];
  for (int o = 0; o < p->nout; o++) {
    if (!redirected(p, o)) continue;
    put(b, "%ss%d[%d] = d%d[%d];\n", ind, si, p->outs[o], si, o);
    int tb = temp_in_place(p, o);
    if (tb >= 0) put(b, "%ss%d[%d] = d%d[%d]; /* a temporary computed in place */\n", ind, si, tb, si, o);
  }
  put(b, "%sif (p%d_run(s%d, rt)) goto done;\n", ind, p->id, si);
  for (int o = 0; o < p->nout; o++) {
    if (redirected(p, o)) continue;
    if (o < ncarry && forwardable(p, o, nconst, ncarry))
      put(b, "%sd%d[%d] = s%d[%d];\n", ind, si, o, si, p->outs[o]);
    else
      put(b, "%smemcpy(d%d[%d], s%d[%d], %lld);\n", ind, si, o, si, p->outs[o], buf_bytes(p, p->outs[o]));
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
 * pair; the loop's output buffer is the first); a carry updated in place
 * (carry_in_place of body `body`, whose carries are its inputs from
 * body_first on) has the output buffer alone, holding the initial value
 * from the start */
static void put_carries(sb *b, const jx_program *outer, const jx_kernel *k, const jx_program *body,
                        int body_first, int first_in, int n) {
  int n1 = n ? n : 1;
  put(b, "  char *cur[%d] = {0}, *q[%d] = {0};\n  void *hq[%d] = {0};\n  (void)cur, (void)q;\n", n1, n1, n1);
  for (int c = 0; c < n; c++) {
    int in = k->ins[first_in + c], out = k->outs[c];
    long long bytes = buf_bytes(outer, out);
    if (carry_in_place(body, c, body_first)) {
      put(b, "  /* carry %d: updated in place */\n", c);
      put(b, "  if (b[%d] != b[%d]) memcpy(b[%d], b[%d], %lld);\n  cur[%d] = b[%d];\n", out, in, out, in,
          bytes, c, out);
      continue;
    }
    put(b, "  cur[%d] = b[%d];\n", c, in);
    put(b, "  if (!(hq[%d] = rt->alloc(rt, %lldLL, &q[%d]))) goto done;\n", c, bytes, c);
  }
}

/* the end of a step of body si (its outputs become the carries), the end
 * of the loop, the final carries, and the release of everything */
static void put_loop_end(sb *b, const jx_program *outer, const jx_kernel *k, int si, int n) {
  for (int c = 0; c < n; c++) put(b, "    cur[%d] = d%d[%d];\n", c, si, c);
  put(b, "  }\n");
  put_carry_out(b, outer, k, n);
  put(b, "  rc = 0;\ndone:\n");
  for (int i = 0; i < k->loop.nsub; i++) put_sub_release(b, k, i);
  put(b, "  for (int i = 0; i < %d; i++)\n    if (hq[i]) rt->release(hq[i]);\n  return rc;\n}\n\n",
      n ? n : 1);
}

/* the steps a scan runs, n: its length, or a dyn scan's count (ins[0])
 * clamped to it; the ys rows of the steps not taken are zeroed now */
static void put_steps(sb *b, const jx_program *outer, const jx_kernel *k) {
  long long L = (long long)k->loop.length;
  if (!k->loop.dyn) {
    put(b, "  const int64_t n = %lldLL;\n", L);
    return;
  }
  int nb = k->ins[0];
  bool i32 = outer->bufs[nb].aval.dtype == JX_I32;
  put(b, "  int64_t n = *(const %s *)b[%d];\n  n = n < 0 ? 0 : n > %lldLL ? %lldLL : n;\n",
      i32 ? "int32_t" : "int64_t", nb, L, L);
  for (int j = k->loop.ncarry; j < k->nout; j++) {
    long long row = L ? buf_bytes(outer, k->outs[j]) / L : 0;
    put(b, "  memset(b[%d] + n * %lldLL, 0, (size_t)(%lldLL - n) * %lldLL);\n", k->outs[j], row, L, row);
  }
}

static void render_scan(sb *b, const jx_program *outer, const jx_kernel *k, int id) {
  const jx_program *body = k->loop.sub[0];
  int nc = k->loop.nconst, ncar = k->loop.ncarry, nx = k->nin - nc - ncar, ny = k->nout - ncar;
  long long L = (long long)k->loop.length;
  put(b, "%sint p%d_k%d(char **b, const jx_rt *rt) { /* scan, %lld steps */\n  int rc = 1;\n", linkage(outer),
      outer->id, id, L);
  put_steps(b, outer, k);
  put_sub_decl(b, k, 0);
  put_carries(b, outer, k, body, nc, nc, ncar);
  put_sub_alloc(b, k, 0, true, "  ");
  for (int i = 0; i < nc; i++) put_set_arg(b, body, 0, i, "  ", "b[%d]", k->ins[i]);
  put(b, "  for (int64_t it = 0; it < n; it++) {\n");
  if (k->loop.reverse)
    put(b, "    const int64_t st = n - 1 - it; /* reverse */\n");
  else
    put(b, "    const int64_t st = it;\n");
  put(b, "    const int to_out = ((n - 1 - it) & 1) == 0; /* the last step writes the output buffers */\n");
  put(b, "    (void)st, (void)to_out;\n");
  for (int c = 0; c < ncar; c++) {
    put_set_arg(b, body, 0, nc + c, "    ", "cur[%d]", c);
    if (carry_in_place(body, c, nc))
      put(b, "    d0[%d] = cur[%d];\n", c, c);
    else
      put(b, "    d0[%d] = to_out ? b[%d] : q[%d];\n", c, k->outs[c], c);
  }
  for (int i = 0; i < nx; i++) {
    int xb = k->ins[nc + ncar + i], ab = arg_buf(body, nc + ncar + i);
    if (ab >= 0)
      put_set_arg(b, body, 0, nc + ncar + i, "    ", "b[%d] + st * %lldLL", xb, buf_bytes(body, ab));
  }
  for (int j = 0; j < ny; j++)
    put(b, "    d0[%d] = b[%d] + st * %lldLL;\n", ncar + j, k->outs[ncar + j],
        buf_bytes(body, body->outs[ncar + j]));
  put_sub_run(b, k, 0, "    ", nc, ncar);
  put_loop_end(b, outer, k, 0, ncar);
}

static void render_while(sb *b, const jx_program *outer, const jx_kernel *k, int id) {
  const jx_program *cp = k->loop.sub[0], *bp = k->loop.sub[1];
  int ncc = k->loop.ncconst, nbc = k->loop.nbconst, n = k->nin - ncc - nbc;
  put(b, "%sint p%d_k%d(char **b, const jx_rt *rt) { /* while */\n  int rc = 1;\n", linkage(outer), outer->id,
      id);
  put_sub_decl(b, k, 0);
  put_sub_decl(b, k, 1);
  put_carries(b, outer, k, bp, nbc, ncc + nbc, n);
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
    if (carry_in_place(bp, c, nbc))
      put(b, "    d1[%d] = cur[%d];\n", c, c);
    else
      put(b, "    d1[%d] = cur[%d] == b[%d] ? q[%d] : b[%d];\n", c, c, k->outs[c], c, k->outs[c]);
  }
  put_sub_run(b, k, 1, "    ", nbc, n);
  put_loop_end(b, outer, k, 1, n);
}

static void render_cond(sb *b, const jx_program *outer, const jx_kernel *k, int id) {
  put(b, "%sint p%d_k%d(char **b, const jx_rt *rt) { /* cond */\n  int rc = 1;\n", linkage(outer), outer->id,
      id);
  put_sub_decl(b, k, 0);
  put_sub_decl(b, k, 1);
  for (int si = 0; si < 2; si++) {
    const jx_program *p = k->loop.sub[si];
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

/* The loop drivers, by the name a primitive's lowering rule gives
 * (jx_lowering.loop). A loop with no driver here fails the render, naming
 * the primitive. */
static const struct {
  const char *name;
  void (*render)(sb *, const jx_program *, const jx_kernel *, int);
} drivers[] = {{"scan", render_scan}, {"while", render_while}, {"cond", render_cond}};

void jx_cpu_render_loop(sb *b, const jx_program *outer, const jx_kernel *k, int id) {
  const jx_lowering *lw = &jx_prim_rules[k->call.prim]->lower;
  for (size_t i = 0; lw->kind == JX_LOWER_LOOP && lw->loop && lw->nbody == k->loop.nsub &&
                     i < sizeof drivers / sizeof *drivers;
       i++)
    if (!strcmp(drivers[i].name, lw->loop)) {
      drivers[i].render(b, outer, k, id);
      return;
    }
  jx_cpu_no_rendering(b->need, k->call.prim);
}
