/* The C renderer: loop IR -> one C translation unit.
 *
 * The unit starts with the parts of scalar_ops.h it calls (render_prelude.c:
 * the same scalar functions the eager kernels use, so compiled and eager
 * results agree), then one range function per kernel (the loop nest over
 * a slice of the flattened iteration space, split across the pool) and a
 * table of entry points.
 * Kernels are named p<program>_k<kernel>: a LOOP kernel (scan, while,
 * cond) is a C function with the real loop or branch, whose bodies are
 * programs rendered the same way (p<body>_run runs one body's kernels in
 * order; a body's CALL kernels go back to the runtime through rt->call).
 * Every operation renders as a call of its scalar function, named by the
 * primitive's lowering rule (`<stem>_<dtype>(...)`, core.h), so the
 * renderer is a table of names rather than a table of code; a primitive
 * whose rule names none fails the render ("no C rendering for X"). */
#include "backend/cpu/kernels.h"
#include "backend/cpu/render.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const sfx[] = {"b",   "i32", "i64", "u32", "f32", "f64", "bf16",
                                  "f16", "i8",  "u8",  "i16", "u16", "u64"};
/* bf16/f16 are their bit patterns (scalar_ops.h) */
static const char *const ctype[] = {"uint8_t", "int32_t",  "int64_t",  "uint32_t", "float",
                                    "double",  "uint16_t", "uint16_t", "int8_t",   "uint8_t",
                                    "int16_t", "uint16_t", "uint64_t"};
_Static_assert(sizeof sfx / sizeof *sfx == JX_DTYPE_COUNT, "a dtype without a suffix");
_Static_assert(sizeof ctype / sizeof *ctype == JX_DTYPE_COUNT, "a dtype without a C type");

/* a literal: floats exactly (hex), integers from their exact int64 */
static void put_const(sb *b, const jx_lexpr *e) {
  jx_dtype dt = e->dtype;
  double v = e->value;
  if (!jx_dtype_is_float(dt) && e->ivalue == INT64_MIN)
    put(b, "(%s)(-9223372036854775807LL - 1)", ctype[dt]);
  else if (!jx_dtype_is_float(dt))
    put(b, "(%s)%lldLL", ctype[dt], (long long)e->ivalue);
  else if (jx_dtype_is_half(dt)) /* its bits */
    put(b, "(uint16_t)0x%04xu", (unsigned)jx_half_round(dt, v));
  else if (isnan(v))
    put(b, "(%s)NAN", ctype[dt]);
  else if (isinf(v))
    put(b, "(%s)(%sINFINITY)", ctype[dt], v < 0 ? "-" : "");
  else
    put(b, "(%s)%a", ctype[dt], v);
}

/* off + sum coef[d] * i<d> (the last dim's index is `iL`) */
static void put_affine(sb *b, const jx_affine *a, int nd) {
  put(b, "(int64_t)%lldLL", (long long)a->off);
  for (int d = 0; d < nd; d++)
    if (a->coef[d]) put(b, " + (int64_t)%lldLL * i%d", (long long)a->coef[d], d);
}

/* How a range function names its buffers: b[<buffer id>] (NULL slots), or
 * b[<slot>] where the slot list names the kernel's buffers (its output
 * first, then its loads in order of first use). Root kernels are rendered
 * the second way so that kernels differing only in which buffers they
 * touch (the same layer twice) share one compiled function. */
enum { MAX_SLOTS = JX_MAX_SLOTS };
typedef struct {
  int buf[MAX_SLOTS];
  int n;
} slots;

static int bref(const slots *s, int buf) {
  if (!s) return buf;
  for (int i = 0; i < s->n; i++)
    if (s->buf[i] == buf) return i;
  return -1; /* not reached: make_slots listed every buffer */
}

/* false: more buffers than MAX_SLOTS (the kernel is then rendered direct) */
static bool make_slots(const jx_kernel *k, slots *s) {
  s->n = 0;
  s->buf[s->n++] = k->out;
  for (int x = 0; x < k->nexpr; x++) {
    if (k->exprs[x].kind != JX_LX_LOAD || bref(s, k->exprs[x].buf) >= 0) continue;
    if (s->n == MAX_SLOTS) return false;
    s->buf[s->n++] = k->exprs[x].buf;
  }
  return true;
}

/* An elementwise op: a call of the scalar function its lowering names. */
static void put_op(sb *b, const jx_kernel *k, const jx_lexpr *e) {
  const jx_lowering *lw = &jx_prim_rules[e->prim]->lower;
  jx_dtype at = k->exprs[e->args[0]].dtype;
  if (lw->kind != JX_LOWER_EW || !lw->stem) {
    jx_cpu_no_rendering(b->need, e->prim);
    put(b, "0");
    return;
  }
  switch (lw->form) {
    case JX_NAME_ARG: jx_cpu_put_call(b, "%s_%s", lw->stem, sfx[at]); break;
    case JX_NAME_CVT: jx_cpu_put_call(b, "%s_%s_%s", lw->stem, sfx[at], sfx[e->dtype]); break;
    case JX_NAME_RESULT: jx_cpu_put_call(b, "%s_%s", lw->stem, sfx[e->dtype]); break;
  }
  for (int a = 0; a < e->nargs; a++) put(b, "%sv%d", a ? ", " : "", e->args[a]);
  put(b, ")");
}

/* the body: every expression as a local, in order */
static void put_body(sb *b, const jx_kernel *k, const slots *sl, const char *indent) {
  for (int x = 0; x < k->nexpr; x++) {
    const jx_lexpr *e = &k->exprs[x];
    put(b, "%s%s v%d = ", indent, ctype[e->dtype], x);
    switch ((jx_lx_kind)e->kind) {
      case JX_LX_LOAD:
        put(b, "((const %s *)b[%d])[", ctype[e->dtype], bref(sl, e->buf));
        put_affine(b, &e->at, k->ndim);
        put(b, "]");
        break;
      case JX_LX_CONST: put_const(b, e); break;
      case JX_LX_INDEX: put_affine(b, &e->at, k->ndim); break;
      case JX_LX_OP: put_op(b, k, e); break;
    }
    put(b, ";\n");
  }
}

/* decompose flat index `f` over dims [d0, d1) of shape into i<d> */
static void put_decompose(sb *b, const char *f, const int *dims, int n, const int64_t *shape,
                          const char *indent) {
  int64_t stride = 1;
  for (int t = n - 1; t >= 0; t--) {
    put(b, "%sconst int64_t i%d = (%s / %lldLL) %% %lldLL;\n", indent, dims[t], f, (long long)stride,
        (long long)shape[dims[t]]);
    if (b->portable) put(b, "%s(void)i%d;\n", indent, dims[t]); /* -Wunused-variable */
    stride *= shape[dims[t]];
  }
}

/* A program output of 4 MiB or more, in a program whose buffers (its
 * arguments, constants, temporaries and outputs: what one call touches)
 * outgrow the last-level cache's budget (jx_cpu_stream_output,
 * cache_info.c), is not read back from the cache: its rows are computed
 * into a tile on the stack and streamed out (jx_stream, non-temporal
 * stores), which saves the read-for-ownership of every output line -- a
 * third of the traffic of a unary or binary map. Where the buffers fit,
 * plain stores into the lines the last call left cached win (jit(slow_f):
 * 1.0x memcpy against 1.4x streamed on a Zen 5 guest whose L3 holds its
 * 32 MB). Rows must be long enough to amortize the tiles. Small tiles (128
 * elements) keep loads and streamed stores overlapping: jit(slow_f) ran
 * ~10% faster than with 512 (same as the eager loops' STREAM_TILE in
 * elementwise.c). */
enum { STREAM_MIN_ROW = 1024, STREAM_TILE = 128 };

static bool streams(const jx_program *p, const jx_kernel *k) {
  int nd = k->ndim;
  if (!nd || k->shape[nd - 1] < STREAM_MIN_ROW || p->bufs[k->out].kind != JX_LB_OUT) return false;
  int64_t total = 1, working_set = 0;
  for (int d = 0; d < nd; d++) total *= k->shape[d];
  for (int i = 0; i < p->nbuf; i++) working_set += buf_bytes(p, i);
  return jx_cpu_stream_output(total * (int64_t)jx_dtype_size(k->exprs[k->root].dtype), working_set);
}

/* A MAP kernel's range function, after its name: the loop nest over a
 * slice [lo, hi) of the flattened output. */
static void map_range(sb *b, const jx_program *prog, const jx_kernel *k, const slots *sl) {
  int nd = k->ndim;
  int64_t last = nd ? k->shape[nd - 1] : 1;
  jx_dtype ot = k->exprs[k->root].dtype;
  bool stream = !b->portable && streams(prog, k);
  put(b, "(void *ctx, int64_t lo, int64_t hi) {\n");
  put(b, "  char **b = (char **)ctx;\n  %s *out = (%s *)b[%d];\n", ctype[ot], ctype[ot], bref(sl, k->out));
  put(b, "  for (int64_t f = lo; f < hi;) {\n");
  int dims[JX_MAX_RANK];
  for (int d = 0; d + 1 < nd; d++) dims[d] = d;
  put(b, "    const int64_t fo = f / %lldLL;\n", (long long)last);
  if (b->portable) put(b, "    (void)fo;\n");
  put_decompose(b, "fo", dims, nd > 0 ? nd - 1 : 0, k->shape, "    ");
  if (nd > 0)
    put(b, "    const int64_t row = f / %lldLL * %lldLL;\n", (long long)last, (long long)last);
  else
    put(b, "    const int64_t row = 0;\n");
  put(b, "    const int64_t start = f - row, stop = hi - row < %lldLL ? hi - row : %lldLL;\n",
      (long long)last, (long long)last);
  int il = nd ? nd - 1 : 0;
  if (stream) { /* tiles of the row, streamed out */
    put(b, "    for (int64_t t0 = start; t0 < stop; t0 += %d) {\n", STREAM_TILE);
    put(b, "      const int64_t t1 = t0 + %d < stop ? t0 + %d : stop;\n", STREAM_TILE, STREAM_TILE);
    put(b, "      %s tile[%d] __attribute__((aligned(64)));\n", ctype[ot], STREAM_TILE);
    put(b, "      for (int64_t i%d = t0; i%d < t1; i%d++) {\n", il, il, il);
    put_body(b, k, sl, "        ");
    put(b, "        tile[i%d - t0] = v%d;\n      }\n", il, k->root);
    put(b, "      ");
    jx_cpu_put_call(b, "jx_stream");
    put(b, "out + row + t0, tile, (size_t)(t1 - t0) * sizeof *out);\n    }\n");
    put(b, "    f = row + stop;\n  }\n  ");
    jx_cpu_put_call(b, "jx_stream_fence");
    put(b, ");\n}\n");
  } else {
    put(b, "    for (int64_t i%d = start; i%d < stop; i%d++) {\n", il, il, il);
    put_body(b, k, sl, "      ");
    put(b, "      out[row + i%d] = v%d;\n    }\n    f = row + stop;\n  }\n}\n", il, k->root);
  }
}

enum { REDUCE_TILE = 256 }; /* outputs accumulated at once when the inner dim is kept */

/* A reduction's identity in C for dtype dt (NULL: none listed) */
static const char *identity(jx_identity id, jx_dtype dt) {
  /* floats (bf16/f16 too) accumulate in double: their identities are double's */
  static const char *const lowest[] = {"0",         "INT32_MIN", "INT64_MIN", "0",        "-INFINITY",
                                       "-INFINITY", "-INFINITY", "-INFINITY", "INT8_MIN", "0",
                                       "INT16_MIN", "0",         "0"};
  static const char *const highest[] = {"1",         "INT32_MAX",  "INT64_MAX", "UINT32_MAX", "INFINITY",
                                        "INFINITY",  "INFINITY",   "INFINITY",  "INT8_MAX",   "UINT8_MAX",
                                        "INT16_MAX", "UINT16_MAX", "UINT64_MAX"};
  _Static_assert(sizeof lowest / sizeof *lowest == JX_DTYPE_COUNT, "a dtype without its lowest value");
  _Static_assert(sizeof highest / sizeof *highest == JX_DTYPE_COUNT, "a dtype without its highest value");
  switch (id) {
    case JX_ID_ZERO: return "0";
    case JX_ID_LOWEST: return lowest[dt];
    case JX_ID_HIGHEST: return highest[dt];
  }
  return NULL;
}

/* value v<v> as the accumulator's type: a bf16/f16 pattern is widened */
static void put_acc_term(sb *b, jx_dtype vt, const char *acct, int v) {
  if (!jx_dtype_is_half(vt)) {
    put(b, "(%s)v%d", acct, v);
    return;
  }
  put(b, "(double)");
  jx_cpu_put_call(b, "jx_%s_to_f32", sfx[vt]);
  put(b, "v%d)", v);
}
/* the accumulator `acc` stored as vt: a bf16/f16 is rounded once */
static void put_acc_result(sb *b, jx_dtype vt, const char *acc) {
  if (!jx_dtype_is_half(vt)) {
    put(b, "(%s)%s", ctype[vt], acc);
    return;
  }
  jx_cpu_put_call(b, "jx_f64_to_%s", sfx[vt]);
  put(b, "%s)", acc);
}

/* A REDUCE kernel's range function, after its name: outputs [lo, hi). */
static void reduce_range(sb *b, const jx_kernel *k, const slots *sl) {
  int kept[JX_MAX_RANK], nk = 0, red[JX_MAX_RANK], nr = 0;
  for (int d = 0; d < k->ndim; d++) {
    if (k->reduced[d])
      red[nr++] = d;
    else
      kept[nk++] = d;
  }
  jx_dtype vt = k->exprs[k->root].dtype;
  bool fl = jx_dtype_is_float(vt);
  const char *acct = fl ? "double" : ctype[vt];
  const jx_lowering *lw = &jx_prim_rules[k->reduce_op]->lower;
  const char *init = identity(lw->identity, vt), *op = lw->combine;
  if (lw->kind != JX_LOWER_REDUCE || !op || !init) {
    jx_cpu_no_rendering(b->need, k->reduce_op);
    return;
  }
  put(b, "(void *ctx, int64_t lo, int64_t hi) {\n");
  put(b, "  char **b = (char **)ctx;\n  %s *out = (%s *)b[%d];\n", ctype[vt], ctype[vt], bref(sl, k->out));
  const int L = k->ndim - 1;
  if (nk > 0 && nr > 0 && !k->reduced[L]) {
    /* The innermost dim is kept (a sum over the batch axis, a bias
     * gradient): a tile of outputs along it is accumulated at once, so the
     * loads walk rows contiguously (vectorized) instead of one output at a
     * time down a column. Each output still adds its terms in the same
     * order. */
    const long long last = (long long)k->shape[L];
    put(b, "  for (int64_t o = lo; o < hi;) {\n");
    put(b, "    const int64_t fo = o / %lldLL, s0 = o - fo * %lldLL;\n", last, last);
    put_decompose(b, "fo", kept, nk - 1, k->shape, "    ");
    put(b, "    int64_t m = %lldLL - s0 < hi - o ? %lldLL - s0 : hi - o;\n", last, last);
    put(b, "    if (m > %d) m = %d;\n", REDUCE_TILE, REDUCE_TILE);
    put(b, "    %s acc[%d];\n    for (int64_t t = 0; t < m; t++) acc[t] = %s;\n", acct, REDUCE_TILE, init);
    for (int r = 0; r < nr; r++)
      put(b, "%*sfor (int64_t i%d = 0; i%d < %lldLL; i%d++) {\n", 4 + 2 * r, "", red[r], red[r],
          (long long)k->shape[red[r]], red[r]);
    char ind[80];
    snprintf(ind, sizeof ind, "%*s", 6 + 2 * nr, "");
    put(b, "%*sfor (int64_t t = 0; t < m; t++) {\n%sconst int64_t i%d = s0 + t;\n", 4 + 2 * nr, "", ind, L);
    put_body(b, k, sl, ind);
    put(b, "%sacc[t] = ", ind);
    jx_cpu_put_call(b, "%s_%s", op, fl ? "f64" : sfx[vt]);
    put(b, "acc[t], ");
    put_acc_term(b, vt, acct, k->root);
    put(b, ");\n%*s}\n", 4 + 2 * nr, "");
    for (int r = nr - 1; r >= 0; r--) put(b, "%*s}\n", 4 + 2 * r, "");
    put(b, "    for (int64_t t = 0; t < m; t++) out[o + t] = ");
    put_acc_result(b, vt, "acc[t]");
    put(b, ";\n    o += m;\n  }\n}\n");
  } else {
    put(b, "  for (int64_t o = lo; o < hi; o++) {\n");
    put_decompose(b, "o", kept, nk, k->shape, "    ");
    put(b, "    %s acc = %s;\n", acct, init);
    for (int r = 0; r < nr; r++)
      put(b, "%*sfor (int64_t i%d = 0; i%d < %lldLL; i%d++) {\n", 4 + 2 * r, "", red[r], red[r],
          (long long)k->shape[red[r]], red[r]);
    char ind[64];
    snprintf(ind, sizeof ind, "%*s", 4 + 2 * nr, "");
    put_body(b, k, sl, ind);
    put(b, "%sacc = ", ind);
    jx_cpu_put_call(b, "%s_%s", op, fl ? "f64" : sfx[vt]);
    put(b, "acc, ");
    put_acc_term(b, vt, acct, k->root);
    put(b, ");\n");
    for (int r = nr - 1; r >= 0; r--) put(b, "%*s}\n", 4 + 2 * r, "");
    put(b, "    out[o] = ");
    put_acc_result(b, vt, "acc");
    put(b, ";\n  }\n}\n");
  }
}

/* The entry's parallel_for: how many items (elements of a MAP's output,
 * outputs of a REDUCE) and the grain (a REDUCE output costs its terms). */
static void kernel_work(const jx_kernel *k, int64_t *n, int64_t *grain) {
  int64_t nout = 1, nred = 1;
  int nk = 0, nr = 0;
  for (int d = 0; d < k->ndim; d++) {
    if (k->kind == JX_LK_REDUCE && k->reduced[d])
      nred *= k->shape[d], nr++;
    else
      nout *= k->shape[d], nk++;
  }
  *n = nout;
  *grain = nred <= 0 ? 16384 : 16384 / nred > 0 ? 16384 / nred : 1;
  /* innermost dim kept (reduce_range's tiles): chunks of a whole tile at
   * least; thinner ones each walk every row of the input for a column or
   * two, with scalar loads (a bias gradient, 16 outputs of 100352 terms
   * each, took ~4.5 ms in 16 one-column chunks) */
  const int64_t last = k->ndim > 0 ? k->shape[k->ndim - 1] : 1;
  if (k->kind == JX_LK_REDUCE && nk > 0 && nr > 0 && !k->reduced[k->ndim - 1]) {
    const int64_t tile = last < REDUCE_TILE ? last : REDUCE_TILE;
    if (*grain < tile) *grain = tile;
  }
}

/* Functions shared by root kernels: the range bodies rendered so far (in
 * slot form), their hashes (so that a program of many kernels compares
 * texts only on a hash match) and the kernel that first rendered each;
 * per root kernel, the body it runs in slot form (p0_s<body>), -1 if
 * it has functions of its own. */
typedef struct {
  char **text;
  uint64_t *hash;
  int *first;
  int n;
  int *body;
} shared;

/* Kernel `id` of program p, MAP or REDUCE: p<pid>_k<id>_range and the
 * entry p<pid>_k<id>. A root kernel in slot form has no function of its
 * own: it is a row of jx_slot_table (put_tables) that runs its body,
 * p0_s<first>, on its buffers in slot order; the body is rendered here
 * the first time. gcc -O3 spends ~5 M instructions on even a one-line
 * function: a range function and an entry per kernel were ~15% of the
 * MLP step's build. */
static void render_kernel(sb *b, shared *sh, const jx_program *p, const jx_kernel *k, int id) {
  slots sl;
  const bool share = p->id == 0 && sh && make_slots(k, &sl);
  int64_t items, grain0;
  kernel_work(k, &items, &grain0);
  if (!share) {
    put(b, "%svoid p%d_k%d_range", linkage(p), p->id, id);
    if (b->portable &&
        items == 0) /* nothing to compute (a 0 dim): no loop, whose index math would divide by 0 */
      put(b, "(void *ctx, int64_t lo, int64_t hi) {\n  (void)ctx, (void)lo, (void)hi;\n}\n");
    else if (k->kind == JX_LK_MAP)
      map_range(b, p, k, NULL);
    else
      reduce_range(b, k, NULL);
  } else {
    sb body = {.need = b->need};
    if (k->kind == JX_LK_MAP)
      map_range(&body, p, k, &sl);
    else
      reduce_range(&body, k, &sl);
    if (body.oom) b->oom = true;
    int first = -1;
    const uint64_t h = body.s ? jx_fnv1a(body.s, strlen(body.s), JX_FNV_BASIS) : 0;
    for (int i = 0; i < sh->n && body.s && first < 0; i++)
      if (sh->hash[i] == h && !strcmp(sh->text[i], body.s)) first = sh->first[i];
    if (first >= 0) {
      jx_free(body.s);
    } else {
      first = id;
      /* noinline: one compiled copy, not one per caller */
      put(b, "JX_ENTRY __attribute__((noinline)) void p0_s%d%s", id, body.s ? body.s : "");
      if (body.s) sh->text[sh->n] = body.s, sh->hash[sh->n] = h, sh->first[sh->n++] = id;
    }
    sh->body[id] = first;
    return;
  }
  int64_t n, grain;
  kernel_work(k, &n, &grain);
  if (b->portable && b->openmp && n > 2 * grain) { /* chunks of the grain over OpenMP's threads */
    int64_t nch = (n + grain - 1) / grain;
    put(b,
        "%sint p%d_k%d(char **b, const jx_rt *rt) {\n  int64_t c;\n  (void)rt;\n" JX_OMP_FOR(
            " schedule(static)"),
        linkage(p), p->id, id);
    put(b,
        "  for (c = 0; c < %lldLL; c++)\n    p%d_k%d_range(b, c * %lldLL, c < %lldLL ? (c + 1) * %lldLL : "
        "%lldLL);\n",
        (long long)nch, p->id, id, (long long)grain, (long long)(nch - 1), (long long)grain, (long long)n);
    put(b, "  return 0;\n}\n\n");
    return;
  }
  if (b->portable) { /* one thread: the whole range */
    put(b,
        "%sint p%d_k%d(char **b, const jx_rt *rt) {\n  (void)rt;\n  p%d_k%d_range(b, 0, %lldLL);\n  return "
        "0;\n}\n\n",
        linkage(p), p->id, id, p->id, id, (long long)n);
    return;
  }
  put(b,
      "%sint p%d_k%d(char **b, const jx_rt *rt) { rt->parallel_for(%lldLL, %lld, p%d_k%d_range, b); return "
      "0; }\n\n",
      linkage(p), p->id, id, (long long)n, (long long)grain, p->id, id);
}

/* a program's kernels (bodies first, depth first); for a body also
 * p<id>_run, which runs its kernels in order */
static void render_program(sb *b, shared *sh, const jx_program *p, bool root) {
  for (int i = 0; i < p->nkernel; i++) {
    const jx_kernel *k = &p->kernels[i];
    if (root && k->kind != JX_LK_CALL) put(b, JX_SPLIT_MARK);
    if (k->kind == JX_LK_MAP || k->kind == JX_LK_REDUCE)
      render_kernel(b, root ? sh : NULL, p, k, i);
    else if (k->kind == JX_LK_LOOP) {
      for (int si = 0; si < k->loop.nsub; si++) render_program(b, NULL, k->loop.sub[si], false);
      jx_cpu_render_loop(b, p, k, i);
    } else if (b->portable)
      jx_cpu_render_call(b, p, k, i);
  }
  if (root) return;
  put(b, "static int p%d_run(char **b, const jx_rt *rt) {\n", p->id);
  if (b->portable) put(b, "  (void)b, (void)rt; /* a program of no kernel (outputs passed through) */\n");
  for (int i = 0; i < p->nkernel; i++) {
    const jx_kernel *k = &p->kernels[i];
    /* portable: a GEMM's epilogue kernel runs after it, on its own */
    if (k->fused && !b->portable) continue; /* run by its GEMM */
    if (k->kind != JX_LK_CALL || b->portable)
      put(b, "  if (p%d_k%d(b, rt)) return 1;\n", p->id, i);
    else if (k->epilogue)
      put(b, "  if (rt->call(rt, %d, %d, b, p%d_k%d_range)) return 1;\n", p->id, i, p->id, k->epilogue - 1);
    else
      put(b, "  if (rt->call(rt, %d, %d, b, 0)) return 1;\n", p->id, i);
  }
  put(b, "  return 0;\n}\n\n");
}

void jx_cpu_render_program(sb *b, const jx_program *p) { render_program(b, NULL, p, false); }

/* the slot kernels' rows of jx_slot_table: body, slot list, work */
static void put_slot_table(sb *b, const jx_program *p, const int *body) {
  for (int i = 0; i < p->nkernel; i++) {
    slots sl;
    if (body[i] < 0 || !make_slots(&p->kernels[i], &sl)) continue;
    if (body[i] == i) put(b, "JX_ENTRY void p0_s%d(void *, int64_t, int64_t);\n", i);
    put(b, "static const int p0_k%d_sl[%d] = {", i, sl.n);
    for (int s = 0; s < sl.n; s++) put(b, "%s%d", s ? ", " : "", sl.buf[s]);
    put(b, "};\n");
  }
  put(b, "const jx_slot_kernel jx_slot_table[%d] = {\n", p->nkernel ? p->nkernel : 1);
  for (int i = 0; i < p->nkernel; i++) {
    slots sl;
    int64_t n, grain;
    if (body[i] < 0 || !make_slots(&p->kernels[i], &sl)) {
      put(b, "  {0},\n");
      continue;
    }
    kernel_work(&p->kernels[i], &n, &grain);
    put(b, "  {p0_s%d, p0_k%d_sl, %d, %lldLL, %lldLL},\n", body[i], i, sl.n, (long long)n, (long long)grain);
  }
  if (!p->nkernel) put(b, "  {0},\n");
  put(b, "};\n");
}

/* the tables the runtime reads (cc.c): entries, range functions of MAP
 * kernels (those a GEMM may run as its epilogue), slot kernels */
static void put_tables(sb *b, const jx_program *p, const int *body) {
  put(b, JX_TABLES_MARK);
  for (int i = 0; i < p->nkernel; i++) {
    if (body[i] >= 0) continue;
    if (p->kernels[i].kind != JX_LK_CALL) put(b, "JX_ENTRY int p%d_k%d(char **, const jx_rt *);\n", p->id, i);
    if (p->kernels[i].kind == JX_LK_MAP)
      put(b, "JX_ENTRY void p%d_k%d_range(void *, int64_t, int64_t);\n", p->id, i);
  }
  put(b, "int (*const jx_kernel_table[%d])(char **, const jx_rt *) = {", p->nkernel ? p->nkernel : 1);
  for (int i = 0; i < p->nkernel; i++) {
    if (p->kernels[i].kind == JX_LK_CALL || body[i] >= 0)
      put(b, "%s0", i ? ", " : "");
    else
      put(b, "%sp%d_k%d", i ? ", " : "", p->id, i);
  }
  if (!p->nkernel) put(b, "0");
  put(b, "};\n");
  put(b, "void (*const jx_range_table[%d])(void *, int64_t, int64_t) = {", p->nkernel ? p->nkernel : 1);
  for (int i = 0; i < p->nkernel; i++) {
    if (p->kernels[i].kind == JX_LK_MAP && body[i] < 0)
      put(b, "%sp%d_k%d_range", i ? ", " : "", p->id, i);
    else
      put(b, "%s0", i ? ", " : "");
  }
  if (!p->nkernel) put(b, "0");
  put(b, "};\n");
  put_slot_table(b, p, body);
}

/* the kernels and tables of root program p into b */
static void render_root(sb *b, const jx_program *p) {
  const size_t nk = (size_t)p->nkernel + 1;
  shared sh = {jx_malloc(sizeof(char *) * nk), jx_malloc(sizeof(uint64_t) * nk), jx_malloc(sizeof(int) * nk),
               0, jx_malloc(sizeof(int) * nk)};
  if (!sh.text || !sh.hash || !sh.first || !sh.body)
    b->oom = true;
  else {
    for (size_t i = 0; i < nk; i++) sh.body[i] = -1;
    render_program(b, &sh, p, true);
    put_tables(b, p, sh.body);
  }
  for (int i = 0; i < sh.n; i++) jx_free(sh.text[i]);
  jx_free(sh.text);
  jx_free(sh.hash);
  jx_free(sh.first);
  jx_free(sh.body);
}

/* The unit: the prelude (the parts of scalar_ops.h the kernels call), the
 * runtime's struct, the kernels, the tables. NULL and *err if a kernel
 * calls a scalar function no part defines, or out of memory. */
char *jx_cpu_render(const jx_program *p, jx_t *err) {
  *err = NULL;
  jx_needs need = {0};
  sb body = {.need = &need};
  render_root(&body, p);
  if (need.missing) *err = jx_error_new("jit: no C rendering for %s", need.missing);
  char *pre = body.oom || *err ? NULL : jx_cpu_prelude((const char *const *)need.name, need.n, err);
  for (int i = 0; i < need.n; i++) jx_free(need.name[i]);
  jx_free(need.name);
  sb b = {0};
  bool loops = false;
  for (int i = 0; i < p->nkernel; i++) loops |= p->kernels[i].kind == JX_LK_LOOP;
  put(&b, "/* generated by jx: %d kernels, %d buffers */%s\n", p->nkernel, p->nbuf, loops ? JX_O3_MARK : "");
  put(&b, "%s\n", pre ? pre : "");
  /* the same layout as jx_rt in backend/backend.h */
  put(&b, "typedef struct jx_rt {\n"
          "  void (*parallel_for)(int64_t, int64_t, void (*)(void *, int64_t, int64_t), void *);\n"
          "  void *ctx;\n"
          "  int (*call)(const struct jx_rt *, int, int, char **, void (*)(void *, int64_t, int64_t));\n"
          "  void *(*alloc)(const struct jx_rt *, int64_t, char **);\n"
          "  void (*release)(void *);\n"
          "} jx_rt;\n"
          "#define JX_ENTRY __attribute__((visibility(\"hidden\")))\n"
          "typedef struct jx_slot_kernel {\n" /* as in backend/backend.h */
          "  void (*fn)(void *, int64_t, int64_t);\n"
          "  const int *slots;\n"
          "  int64_t nslot, items, grain;\n"
          "} jx_slot_kernel;\n\n");
  put(&b, "%s", body.s ? body.s : "");
  const bool ok = pre && !body.oom && !b.oom;
  jx_free(pre);
  jx_free(body.s);
  if (!ok) {
    jx_free(b.s);
    if (!*err) *err = jx_error_new("jit: out of memory rendering C");
    return NULL;
  }
  return b.s;
}
