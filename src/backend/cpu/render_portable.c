/* The portable target (DESIGN §6b, export): the jit's renderer with no
 * runtime. The same kernels (render_c.c, render_loop.c) with these
 * differences, all keyed on sb.portable:
 *   - a MAP or REDUCE kernel runs its whole range on the calling thread;
 *   - CALL kernels (GEMM, gather, pad, ...) are C loops (render_call.c);
 *   - no streaming stores, no compiler extensions: strict C99;
 *   - buffers come from one caller-provided workspace: the root program's
 *     temporaries at offsets planned here from their lifetimes (two that
 *     are live at the same kernel never share bytes), and after them a
 *     stack from which loops take their bodies' buffers and carries
 *     (jx_ws_alloc; released in stack order when a loop ends), sized here
 *     for the deepest nesting;
 *   - constants are static const arrays (exact literals) or inputs.
 * The entry point is reentrant: it writes only its outputs, its workspace
 * and its locals. */
#include "backend/cpu/portable.h"
#include "backend/cpu/render_call.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>

/* bf16/f16 are their bit patterns (scalar_ops.h) */
static const char *const ctype[] = {"uint8_t", "int32_t",  "int64_t",  "uint32_t", "float",
                                    "double",  "uint16_t", "uint16_t", "int8_t",   "uint8_t",
                                    "int16_t", "uint16_t", "uint64_t"};
_Static_assert(sizeof ctype / sizeof *ctype == JX_DTYPE_COUNT, "a dtype without a C type");

enum { WS_ALIGN = 64, WS_HEADER = 64 }; /* a loop buffer's bookkeeping (jx_ws_mark) */

static int64_t round64(int64_t n) { return (n + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN; }

/* ------------------------------------------------------- the loop stack */
static int64_t nested_need(const jx_program *p);

/* what put_sub_alloc (render_loop.c) takes for sub si */
static int64_t sub_allocs(const jx_program *p, bool redirect) {
  int64_t n = 0;
  for (int i = 0; i < p->nbuf; i++) {
    jx_lbkind kd = p->bufs[i].kind;
    if (kd == JX_LB_TEMP || (kd == JX_LB_OUT && !redirect)) n += WS_HEADER + round64(buf_bytes(p, i));
  }
  return n;
}

/* whether LOOP kernel k runs render_loop.c's while driver (while, and
 * while_bounded, whose lowering names the same driver) */
static bool is_while(const jx_kernel *k) {
  const char *lp = jx_prim_rules[k->call.prim]->lower.loop;
  return lp && !strcmp(lp, "while");
}

/* the stack a LOOP kernel of `outer` takes while it runs, nesting included */
static int64_t loop_need(const jx_program *outer, const jx_kernel *k) {
  const jx_lloop *l = &k->loop;
  const bool wh = is_while(k);
  int ncarry = k->call.prim == JX_P_scan ? l->ncarry : wh ? k->nin - l->ncconst - l->nbconst : 0;
  int64_t n = 0, inner = 0;
  for (int c = 0; c < ncarry; c++) n += WS_HEADER + round64(buf_bytes(outer, k->outs[c]));
  for (int si = 0; si < l->nsub; si++) {
    bool redirect = !(wh && si == 0); /* a while's cond keeps its output */
    n += sub_allocs(l->sub[si], redirect);
    int64_t s = nested_need(l->sub[si]);
    if (s > inner) inner = s;
  }
  return n + inner;
}

/* the most any kernel of p takes from the stack: a loop, nesting
 * included, or a CALL kernel's scratch (sort's permutation) */
static int64_t nested_need(const jx_program *p) {
  int64_t m = 0;
  for (int i = 0; i < p->nkernel; i++) {
    const jx_kernel *k = &p->kernels[i];
    int64_t scratch = jx_cpu_call_scratch(p, k);
    int64_t s = k->kind == JX_LK_LOOP ? loop_need(p, k) : scratch ? WS_HEADER + round64(scratch) : 0;
    if (s > m) m = s;
  }
  return m;
}

/* ------------------------------------------------ the temporaries' plan */
/* Offsets of the root's TEMP buffers (others -1), largest first, each at
 * the lowest offset clear of every placed buffer live at the same time.
 * Returns the bytes they span; -1 when out of memory. */
static int64_t plan_temps(const jx_program *p, int64_t *off) {
  int *order = jx_malloc(sizeof(int) * (size_t)(p->nbuf ? p->nbuf : 1)), n = 0;
  if (!order) return -1;
  for (int b = 0; b < p->nbuf; b++) {
    off[b] = -1;
    if (p->bufs[b].kind == JX_LB_TEMP) order[n++] = b;
  }
  for (int i = 1; i < n; i++) /* insertion sort by size, descending (stable: deterministic) */
    for (int j = i; j > 0 && buf_bytes(p, order[j]) > buf_bytes(p, order[j - 1]); j--) {
      int t = order[j];
      order[j] = order[j - 1], order[j - 1] = t;
    }
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    const jx_lbuf *x = &p->bufs[order[i]];
    int64_t size = round64(buf_bytes(p, order[i])), at = 0;
    int xlast = x->last < x->def ? x->def : x->last;
    for (bool moved = true; moved;) { /* first fit: move past every overlap until none */
      moved = false;
      for (int j = 0; j < i; j++) {
        const jx_lbuf *y = &p->bufs[order[j]];
        int ylast = y->last < y->def ? y->def : y->last;
        int64_t yo = off[order[j]], ys = round64(buf_bytes(p, order[j]));
        bool live = !(xlast < y->def || ylast < x->def), overlap = at < yo + ys && yo < at + size;
        if (live && overlap) at = yo + ys, moved = true;
      }
    }
    off[order[i]] = at;
    if (at + size > total) total = at + size;
  }
  jx_free(order);
  return total;
}

/* ---------------------------------------------------------- constants */
static void put_value(sb *b, jx_dtype dt, const void *data, int64_t i) {
  switch (dt) {
    case JX_BOOL: put(b, "%u", ((const uint8_t *)data)[i]); break;
    case JX_I32: put(b, "%ld", (long)((const int32_t *)data)[i]); break;
    case JX_U32: put(b, "%luu", (unsigned long)((const uint32_t *)data)[i]); break;
    case JX_I8: put(b, "%d", ((const int8_t *)data)[i]); break;
    case JX_U8: put(b, "%u", ((const uint8_t *)data)[i]); break;
    case JX_I16: put(b, "%d", ((const int16_t *)data)[i]); break;
    case JX_U16: put(b, "%u", ((const uint16_t *)data)[i]); break;
    case JX_U64: put(b, "%lluULL", (unsigned long long)((const uint64_t *)data)[i]); break;
    case JX_BF16:
    case JX_F16: put(b, "0x%04x", ((const uint16_t *)data)[i]); break; /* the bits (ctype uint16_t) */
    case JX_I64: {
      long long v = ((const int64_t *)data)[i];
      if (v == INT64_MIN)
        put(b, "(-9223372036854775807LL - 1)");
      else
        put(b, "%lldLL", v);
      break;
    }
    case JX_F32:
    case JX_F64: {
      double v = dt == JX_F32 ? ((const float *)data)[i] : ((const double *)data)[i];
      const char *f = dt == JX_F32 ? "f" : "";
      if (isnan(v))
        put(b, "NAN");
      else if (isinf(v))
        put(b, "%sINFINITY", v < 0 ? "-" : "");
      else
        put(b, "%a%s", v, f); /* exact */
      break;
    }
    default: put(b, "0"); break;
  }
}

void jx_cpu_put_literal(sb *b, jx_dtype dt, const void *data, int64_t i) { put_value(b, dt, data, i); }

/* the constant of buffer bid as `static const T c<bid>[]` */
static void put_const_array(sb *b, const jx_program *p, int bid) {
  jx_t c = p->consts[p->bufs[bid].index];
  jx_dtype dt = p->bufs[bid].aval.dtype;
  int64_t n = jx_aval_size(&p->bufs[bid].aval);
  char shape[160];
  jx_aval_str(&p->bufs[bid].aval, shape, sizeof shape);
  put(b, "/* constant: %s */\nstatic const %s c%d[%lld] = {", shape, ctype[dt], bid, (long long)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) {
    put(b, i ? (i % 8 ? ", " : ",\n  ") : "\n  ");
    put_value(b, dt, jx_data(c), i);
  }
  put(b, "%s};\n", n ? "\n" : "0");
}

/* ------------------------------------------------------------- the unit */
static const char rt_text[] =
    "/* the workspace: planned temporaries, then a stack for loops' buffers */\n"
    "typedef struct jx_rt {\n"
    "  void *(*alloc)(const struct jx_rt *, int64_t, char **);\n"
    "  void (*release)(void *);\n"
    "  char *base;\n"
    "  int64_t *top, cap;\n"
    "} jx_rt;\n"
    "typedef struct {\n  int64_t *top, prev;\n} jx_ws_mark;\n"
    "static inline void *jx_ws_alloc(const jx_rt *rt, int64_t bytes, char **data) {\n"
    "  const int64_t at = *rt->top, need = 64 + (bytes + 63) / 64 * 64;\n"
    "  jx_ws_mark *m;\n"
    "  if (need > rt->cap - at) return 0;\n"
    "  m = (jx_ws_mark *)(void *)(rt->base + at);\n"
    "  m->top = rt->top, m->prev = at;\n"
    "  *rt->top = at + need;\n"
    "  *data = rt->base + at + 64;\n"
    "  return m;\n"
    "}\n"
    "/* a loop releases all it took at once, when it ends: back to the lowest mark */\n"
    "static inline void jx_ws_release(void *h) {\n"
    "  jx_ws_mark *m = (jx_ws_mark *)h;\n"
    "  if (*m->top > m->prev) *m->top = m->prev;\n"
    "}\n"
    "#define JX_ENTRY static\n\n";

/* which entry input buffer b is (arguments first, then constants taken as
 * inputs), -1 if none */
static int input_of(const jx_portable_unit *u, const jx_program *p, int b) {
  if (p->bufs[b].kind == JX_LB_ARG) return p->bufs[b].index;
  for (int i = 0; i < u->nconst_in; i++)
    if (u->const_buf[i] == b) return u->nin - u->nconst_in + i;
  return -1;
}

static void put_entry(sb *b, const jx_program *p, const char *name, const jx_portable_unit *u,
                      const int64_t *off, int64_t temps) {
  put(b, "int %s(const void *const *inputs, void *const *outputs, void *workspace) {\n", name);
  put(b, "  char *b[%d];\n  int64_t top = %lldLL;\n", p->nbuf ? p->nbuf : 1, (long long)temps);
  if (u->workspace) /* 64-byte aligned inside the caller's block (which has 64 bytes to spare) */
    put(b,
        "  char *const ws = (char *)workspace + ((64u - (unsigned)((uintptr_t)workspace & 63u)) & 63u);\n"
        "  jx_rt rt;\n  rt.base = ws, rt.cap = %lldLL;\n",
        (long long)(u->workspace - WS_ALIGN));
  else
    put(b, "  jx_rt rt;\n  (void)workspace;\n  rt.base = 0, rt.cap = 0;\n");
  put(b, "  rt.alloc = jx_ws_alloc, rt.release = jx_ws_release, rt.top = &top;\n  (void)inputs, "
         "(void)outputs;\n");
  for (int i = 0; i < p->nbuf; i++) {
    const jx_lbuf *lb = &p->bufs[i];
    int in = input_of(u, p, i);
    if (in >= 0)
      put(b, "  b[%d] = (char *)inputs[%d];\n", i, in);
    else if (lb->kind == JX_LB_CONST)
      put(b, "  b[%d] = (char *)c%d;\n", i, i);
    else if (lb->kind == JX_LB_OUT)
      put(b, "  b[%d] = (char *)outputs[%d];\n", i, lb->index);
    else if (u->workspace)
      put(b, "  b[%d] = ws + %lld;\n", i, (long long)off[i]);
    else /* every temporary is empty (a 0 dim): never dereferenced */
      put(b, "  b[%d] = 0;\n", i);
  }
  put(b, "  if (p%d_run(b, &rt)) return 1;\n", p->id);
  /* outputs no kernel wrote: inputs or constants passed through, repeats */
  for (int o = 0; o < p->nout; o++) {
    const jx_lbuf *lb = &p->bufs[p->outs[o]];
    if (!(lb->kind == JX_LB_OUT && lb->index == o) && buf_bytes(p, p->outs[o]) > 0)
      put(b, "  memcpy(outputs[%d], b[%d], %lldu);\n", o, p->outs[o], buf_bytes(p, p->outs[o]));
  }
  put(b, "  return 0;\n}\n");
}

/* -------------------------------------------------------------- header */
static void upper(const char *s, char *out, size_t n) {
  size_t i = 0;
  for (; s[i] && i + 1 < n; i++) out[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 'a' + 'A' : s[i]);
  out[i] = 0;
}

static void put_leaf_macros(sb *h, const char *N, const char *what, int i, const jx_aval *a) {
  put(h, "#define %s_%s_%d_DTYPE \"%s\"\n#define %s_%s_%d_NDIM %d\n", N, what, i, jx_dtype_name(a->dtype), N,
      what, i, a->ndim);
  if (a->ndim) {
    put(h, "#define %s_%s_%d_SHAPE {", N, what, i);
    for (int d = 0; d < a->ndim; d++) put(h, "%s%lld", d ? ", " : "", (long long)a->shape[d]);
    put(h, "}\n");
  }
  put(h, "#define %s_%s_%d_SIZE %lld\n#define %s_%s_%d_BYTES %lld\n", N, what, i, (long long)jx_aval_size(a),
      N, what, i, (long long)(jx_aval_size(a) * (int64_t)jx_dtype_size(a->dtype)));
}

static const jx_aval *input_aval(const jx_program *p, const jx_portable_unit *u, int i) {
  for (int b = 0; b < p->nbuf; b++)
    if (input_of(u, p, b) == i) return &p->bufs[b].aval;
  return NULL;
}

static void put_list(sb *h, const char *N, const char *what, int n, const jx_aval *const *avals) {
  put(h, "#define %s_%s_BYTES_LIST {", N, what);
  for (int i = 0; i < n; i++)
    put(h, "%s%lld", i ? ", " : "",
        (long long)(jx_aval_size(avals[i]) * (int64_t)jx_dtype_size(avals[i]->dtype)));
  put(h, "%s}\n", n ? "" : "0");
}

static void put_header(sb *h, const jx_program *p, const char *name, const jx_portable_unit *u,
                       const jx_aval *const *in, const jx_aval *const *out) {
  char N[80], s[160];
  upper(name, N, sizeof N);
  put(h, "/* %s.h: generated by jx (jx_export_c). Dependency-free C99: link %s.c with -lm.\n *\n", name,
      name);
  put(h, " * int %s(const void *const *inputs, void *const *outputs, void *workspace);\n", name);
  put(h,
      " * runs the exported function: inputs and outputs are its flattened leaves, each\n"
      " * dense and row-major in its dtype (f32: float, f64: double, i32: int32_t,\n"
      " * i64: int64_t, u32: uint32_t, bool: one byte 0/1); outputs must not overlap\n"
      " * inputs. workspace: %s_WORKSPACE_BYTES bytes, any alignment, not shared\n"
      " * with a concurrent call. Returns 0 on success. No allocation, no threads, no\n"
      " * global state: reentrant.\n *\n * inputs:\n",
      N);
  for (int i = 0; i < u->nin; i++)
    put(h, " *   %d: %s%s\n", i, jx_aval_str(in[i], s, sizeof s),
        i >= u->nin - u->nconst_in ? " (a constant of the function, taken as an input)" : "");
  put(h, " * outputs:\n");
  for (int o = 0; o < p->nout; o++) put(h, " *   %d: %s\n", o, jx_aval_str(out[o], s, sizeof s));
  put(h, " */\n#ifndef %s_H_INCLUDED\n#define %s_H_INCLUDED\n\n", N, N);
  put(h, "#define %s_NUM_INPUTS %d\n#define %s_NUM_OUTPUTS %d\n", N, u->nin, N, p->nout);
  put(h, "#define %s_WORKSPACE_BYTES %lld\n", N, (long long)u->workspace);
  for (int i = 0; i < u->nin; i++) put_leaf_macros(h, N, "INPUT", i, in[i]);
  for (int o = 0; o < p->nout; o++) put_leaf_macros(h, N, "OUTPUT", o, out[o]);
  put_list(h, N, "INPUT", u->nin, in);
  put_list(h, N, "OUTPUT", p->nout, out);
  put(h, "\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n");
  put(h, "int %s(const void *const *inputs, void *const *outputs, void *workspace);\n", name);
  put(h, "#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
}

/* ------------------------------------------------------------ the whole */
static jx_t list_inputs(const jx_program *p, int nargs, const jx_portable_opts *o, jx_portable_unit *u) {
  u->nconst_in = 0;
  u->const_buf = jx_malloc(sizeof(int) * (size_t)(p->nbuf ? p->nbuf : 1));
  if (!u->const_buf) return jx_error_new("export: out of memory");
  for (int b = 0; o && o->consts_as_inputs && b < p->nbuf; b++)
    if (p->bufs[b].kind == JX_LB_CONST) u->const_buf[u->nconst_in++] = b;
  u->nin = nargs + u->nconst_in;
  return NULL;
}

/* whether C text holds the identifier w (comments and literals skipped) */
static bool uses_word(const char *t, const char *w) {
  size_t n = strlen(w);
  while (t && *t) {
    if (t[0] == '/' && t[1] == '*') {
      const char *e = strstr(t + 2, "*/");
      t = e ? e + 2 : t + strlen(t);
    } else if (t[0] == '/' && t[1] == '/') {
      t += strcspn(t, "\n");
    } else if (*t == '"' || *t == '\'') {
      char q = *t++;
      while (*t && *t != q) t += t[0] == '\\' && t[1] ? 2 : 1;
      if (*t) t++;
    } else if (isalpha((unsigned char)*t) || *t == '_') {
      size_t k = 0;
      while (isalnum((unsigned char)t[k]) || t[k] == '_') k++;
      if (k == n && !memcmp(t, w, n)) return true;
      t += k;
    } else if (isdigit((unsigned char)*t)) { /* a number, hex floats' letters included */
      while (isalnum((unsigned char)*t) || *t == '.' || *t == '_') t++;
    } else {
      t++;
    }
  }
  return false;
}

static jx_t clash(const char *name) {
  return jx_error_new("export: the name '%s' is an identifier the generated code uses; choose another", name);
}

/* the source: prelude, runtime, constants, kernels, entry */
static jx_t render_source(const jx_program *p, const char *name, jx_portable_unit *u, const int64_t *off,
                          int64_t temps, const jx_portable_opts *o) {
  jx_needs need = {0};
  sb body = {.need = &need, .portable = true, .openmp = o && o->openmp, .simd = o && o->simd};
  for (int i = 0; i < p->nbuf; i++)
    if (p->bufs[i].kind == JX_LB_CONST && input_of(u, p, i) < 0) put_const_array(&body, p, i);
  put(&body, "\n");
  jx_cpu_render_program(&body, p);
  jx_t err = uses_word(body.s, name) ? clash(name) : NULL;
  put_entry(&body, p, name, u, off, temps);
  if (!err && need.missing)
    err = jx_error_new(
        "export: no portable C rendering for %s (a primitive, or a loop whose body jit could not "
        "compile)",
        need.missing);
  char *pre = body.oom || err ? NULL : jx_cpu_prelude((const char *const *)need.name, need.n, &err);
  if (pre && (uses_word(pre, name) || uses_word(rt_text, name))) {
    err = clash(name);
    jx_free(pre);
    pre = NULL;
  }
  for (int i = 0; i < need.n; i++) jx_free(need.name[i]);
  jx_free(need.name);
  sb b = {0}, inc = {0};
  if (body.simd) jx_cpu_put_simd_include(&inc);
  const char *simd_include = inc.s ? inc.s : "";
  if (pre) {
    put(&b, "/* %s.c: generated by jx (jx_export_c); see %s.h. %d kernels, %d buffers. */\n", name, name,
        p->nkernel, p->nbuf);
    /* the prelude defines a dtype's functions together; clang warns of
     * the unused ones (static inline in a main file), gcc does not */
    put(&b,
        "#include \"%s.h\"\n%s\n#ifdef __clang__\n#pragma clang diagnostic push\n"
        "#pragma clang diagnostic ignored \"-Wunused-function\"\n#endif\n%s\n#ifdef __clang__\n"
        "#pragma clang diagnostic pop\n#endif\n%s%s",
        name, simd_include, pre, rt_text, body.s ? body.s : "");
  }
  jx_free(pre);
  jx_free(body.s);
  jx_free(inc.s);
  if (!err && (body.oom || b.oom || inc.oom)) err = jx_error_new("export: out of memory rendering C");
  if (err) {
    jx_free(b.s);
    return err;
  }
  u->src = b.s;
  return NULL;
}

jx_t jx_cpu_render_portable(const jx_program *p, int nargs, const char *name, const jx_portable_opts *o,
                            jx_portable_unit *u) {
  *u = (jx_portable_unit){0};
  int64_t *off = jx_malloc(sizeof(int64_t) * (size_t)(p->nbuf ? p->nbuf : 1));
  const jx_aval **in = jx_malloc(sizeof(jx_aval *) * (size_t)(nargs + p->nbuf + 1));
  const jx_aval **out = jx_malloc(sizeof(jx_aval *) * (size_t)(p->nout + 1));
  jx_t err = off && in && out ? list_inputs(p, nargs, o, u) : jx_error_new("export: out of memory");
  int64_t temps = err ? 0 : plan_temps(p, off);
  if (!err && temps < 0) err = jx_error_new("export: out of memory");
  if (!err) {
    int64_t stack = nested_need(p);
    u->workspace = temps + stack > 0 ? temps + stack + WS_ALIGN : 0;
    err = render_source(p, name, u, off, temps, o);
  }
  for (int i = 0; !err && i < u->nin; i++)
    if (!(in[i] = input_aval(p, u, i))) err = jx_error_new("export: input %d has no buffer", i);
  for (int i = 0; !err && i < p->nout; i++) out[i] = &p->bufs[p->outs[i]].aval;
  if (!err) {
    sb h = {0};
    put_header(&h, p, name, u, in, out);
    if (h.oom) {
      jx_free(h.s);
      err = jx_error_new("export: out of memory rendering the header");
    } else
      u->hdr = h.s;
  }
  jx_free(off);
  jx_free(in);
  jx_free(out);
  if (err) jx_portable_unit_free(u);
  return err;
}

void jx_portable_unit_free(jx_portable_unit *u) {
  jx_free(u->src);
  jx_free(u->hdr);
  jx_free(u->const_buf);
  *u = (jx_portable_unit){0};
}
