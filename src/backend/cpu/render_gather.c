/* Portable CALL kernels (render_call.h): gather and the scatters with any
 * of JAX's dimension numbers, dynamic_slice and dynamic_update_slice.
 *
 * They compute what the eager kernels compute (prims/index.c,
 * backend/cpu/gather.c, prims/dslice.c), in the same order, so the results
 * are bit-identical: each index position (row-major over the indices'
 * batch dims) resolves its window's start in the operand -- clamped into
 * [0, dim - window] (clip), or the whole window out of bounds (fill or
 * drop) -- then its window is copied (gather) or combined into the
 * operand's copy in order (scatter: a later update of an element sees the
 * earlier ones; replace: the last wins). Loops are rendered with the
 * shapes, strides and dimension numbers as constants. */
#include "backend/cpu/render_call.h"

static bool has(const int8_t *v, int n, int x) {
  for (int i = 0; i < n; i++)
    if (v[i] == x) return true;
  return false;
}

/* the geometry of one gather or scatter (gather.h's plan, and the index
 * vectors' layout) */
typedef struct {
  int wnd, bnd;
  int64_t wshape[JX_MAX_RANK], xst[JX_MAX_RANK], yst[JX_MAX_RANK];
  int64_t bshape[JX_MAX_RANK], byst[JX_MAX_RANK], nb;
  /* the index vector of position b starts at `ib` (index strides over the
   * indices' batch dims: ibshape/ibst) and steps by istep */
  int nib;
  int64_t ibshape[JX_MAX_RANK], ibst[JX_MAX_RANK], istep;
  bool last; /* index vectors contiguous: position b's at b * nmap */
} plan;

static void make_plan(const jx_aval *x, const jx_aval *y, const jx_aval *ia, const jx_params *pa,
                      const int64_t *win, plan *pl) {
  const __typeof__(pa->gather) *d = &pa->gather;
  int64_t xs[JX_MAX_RANK], ys[JX_MAX_RANK], is[JX_MAX_RANK];
  jx_strides(x->ndim, x->shape, xs);
  jx_strides(y->ndim, y->shape, ys);
  jx_strides(ia->ndim, ia->shape, is);
  *pl = (plan){.nb = 1};
  for (int k = 0; k < x->ndim; k++) {
    if (has(d->collapsed, d->ncollapsed, k)) continue;
    pl->wshape[pl->wnd] = win[k], pl->xst[pl->wnd] = xs[k], pl->yst[pl->wnd] = ys[d->offset[pl->wnd]];
    pl->wnd++;
  }
  for (int o = 0; o < y->ndim; o++)
    if (!has(d->offset, d->noffset, o))
      pl->bshape[pl->bnd] = y->shape[o], pl->byst[pl->bnd++] = ys[o], pl->nb *= y->shape[o];
  pl->istep = d->ivd < ia->ndim ? is[d->ivd] : 0;
  pl->last = d->ivd >= ia->ndim - 1;
  for (int k = 0; k < ia->ndim; k++)
    if (k != d->ivd) pl->ibshape[pl->nib] = ia->shape[k], pl->ibst[pl->nib++] = is[k];
}

/* sum over dims of (f's coordinate along dim i) * st[i], f row-major over
 * shape[0..n) (no dim is 0: the callers skip empty loops) */
static void put_decomposed(sb *b, const char *f, int n, const int64_t *shape, const int64_t *st) {
  put(b, "(int64_t)0");
  int64_t inner = 1;
  for (int i = n - 1; i >= 0; i--) {
    if (shape[i] > 1 && st[i])
      put(b, " + (%s / %lldLL %% %lldLL) * %lldLL", f, (long long)inner, (long long)shape[i],
          (long long)st[i]);
    inner *= shape[i];
  }
}

/* `off`: the window start of position bq in the operand, -1 when out of
 * bounds (fill or drop), each start clamped under clip */
static void put_resolve(sb *b, const jx_aval *x, jx_dtype idt, const jx_params *pa, const int64_t *win,
                        const plan *pl) {
  const __typeof__(pa->gather) *d = &pa->gather;
  int64_t xs[JX_MAX_RANK];
  jx_strides(x->ndim, x->shape, xs);
  put(b, "    const int64_t ib = ");
  if (pl->last)
    put(b, "bq * %dLL", d->nmap);
  else
    put_decomposed(b, "bq", pl->nib, pl->ibshape, pl->ibst);
  put(b, ";\n    int64_t off = 0;\n    (void)ib;\n");
  for (int k = 0; k < d->nmap; k++) {
    int dim = d->map[k];
    long long hi = (long long)(x->shape[dim] - win[dim]);
    put(b, "    {\n      const int64_t ii = ib + %lldLL;\n", (long long)(k * pl->istep));
    if (idt == JX_U64)
      put(b, "      int64_t v = i1[ii] > 0x7fffffffffffffffULL ? INT64_MAX : (int64_t)i1[ii];\n");
    else
      put(b, "      int64_t v = (int64_t)i1[ii];\n");
    if (d->mode == JX_GATHER_CLIP) put(b, "      v = v < 0 ? 0 : v > %lldLL ? %lldLL : v;\n", hi, hi);
    put(b, "      if (off >= 0) off = v < 0 || v > %lldLL ? -1 : off + v * %lldLL;\n    }\n", hi,
        (long long)xs[dim]);
  }
}

/* the window's loops (w<i> over wshape), opened; returns their count */
static int open_window(sb *b, const plan *pl) {
  for (int w = 0; w < pl->wnd; w++)
    put(b, "%*sfor (int64_t w%d = 0; w%d < %lldLL; w%d++)\n", 4 + 2 * w, "", w, w, (long long)pl->wshape[w],
        w);
  return pl->wnd;
}

/* "base + w0 * st[0] + ..." */
static void put_window_offset(sb *b, const char *base, const plan *pl, const int64_t *st) {
  put(b, "%s", base);
  for (int w = 0; w < pl->wnd; w++)
    if (st[w]) put(b, " + w%d * %lldLL", w, (long long)st[w]);
}

void jx_cpu_render_gather_general(sb *b, const jx_program *p, const jx_kernel *k, int id) {
  const jx_aval *x = jx_cpu_bav(p, k->ins[0]), *ia = jx_cpu_bav(p, k->ins[1]), *o = jx_cpu_bav(p, k->outs[0]);
  const jx_params *pa = &k->call.params;
  plan pl;
  make_plan(x, o, ia, pa, pa->gather.slice, &pl);
  jx_cpu_call_head(b, p, k, id, "gather");
  if (jx_aval_size(o) > 0) {
    char fill[16] = {0};
    jx_scalar_store(x->dtype, pa->gather.fill, fill); /* the fill as the eager kernel stores it */
    put(b, "  for (int64_t bq = 0; bq < %lldLL; bq++) {\n", (long long)pl.nb);
    put_resolve(b, x, ia->dtype, pa, pa->gather.slice, &pl);
    put(b, "    const int64_t yb = ");
    put_decomposed(b, "bq", pl.bnd, pl.bshape, pl.byst);
    put(b, ";\n");
    int n = open_window(b, &pl);
    put(b, "%*s", 4 + 2 * n, "");
    put_window_offset(b, "o0[yb", &pl, pl.yst);
    put(b, "] = off < 0 ? (%s)", jx_cpu_call_ctype(x->dtype));
    jx_cpu_put_literal(b, x->dtype, fill, 0);
    put_window_offset(b, " : i0[off", &pl, pl.xst);
    put(b, "];\n  }\n");
  }
  jx_cpu_call_tail(b);
}

/* the combiner `x = OP(a, b)` of a scatter as the eager kernel writes it
 * (gather.c): integers wrap through their unsigned type, floats' min and
 * max keep a NaN already there, bool's add/max are or, mul/min and */
static void put_combine(sb *b, jx_prim prim, jx_dtype dt) {
  if (jx_dtype_is_half(dt) && prim != JX_P_scatter) { /* in f32, rounded once: scalar_ops.h */
    static const char *const stem[] = {[JX_P_scatter_add] = "add",
                                       [JX_P_scatter_mul] = "mul",
                                       [JX_P_scatter_min] = "min",
                                       [JX_P_scatter_max] = "max"};
    jx_cpu_put_call(b, "%s_%s", stem[prim], jx_cpu_call_sfx(dt));
    put(b, "a, u)");
    return;
  }
  const char *T = jx_cpu_call_ctype(dt);
  const char *U = jx_dtype_is_float(dt) || dt == JX_BOOL ? T
                  : jx_dtype_size(dt) <= 4               ? "uint32_t"
                                                         : "uint64_t";
  bool fl = jx_dtype_is_float(dt), bo = dt == JX_BOOL;
  const char *anan = fl ? "a != a" : "0";
  switch (prim) {
    case JX_P_scatter: put(b, "u"); break;
    case JX_P_scatter_add:
      if (bo)
        put(b, "(uint8_t)(a | u)");
      else
        put(b, "(%s)((%s)a + (%s)u)", T, U, U);
      break;
    case JX_P_scatter_mul:
      if (bo)
        put(b, "(uint8_t)(a & u)");
      else
        put(b, "(%s)((%s)a * (%s)u)", T, U, U);
      break;
    case JX_P_scatter_min:
      if (bo)
        put(b, "(uint8_t)(a & u)");
      else
        put(b, "(a < u || %s) ? a : u", anan);
      break;
    default:
      if (bo)
        put(b, "(uint8_t)(a | u)");
      else
        put(b, "(a > u || %s) ? a : u", anan);
      break;
  }
}

void jx_cpu_render_scatter_general(sb *b, const jx_program *p, const jx_kernel *k, int id) {
  const jx_aval *x = jx_cpu_bav(p, k->ins[0]), *ia = jx_cpu_bav(p, k->ins[1]), *u = jx_cpu_bav(p, k->ins[2]);
  const jx_params *pa = &k->call.params;
  int64_t win[JX_MAX_RANK];
  for (int d = 0, j = 0; d < x->ndim; d++) /* 1 where inserted, else the updates' size */
    win[d] = has(pa->scatter.collapsed, pa->scatter.ncollapsed, d) ? 1 : u->shape[pa->scatter.offset[j++]];
  plan pl;
  make_plan(x, u, ia, pa, win, &pl);
  const char *T = jx_cpu_call_ctype(x->dtype);
  jx_cpu_call_head(b, p, k, id, jx_prim_names[k->call.prim]);
  int64_t nx = jx_aval_size(x);
  /* o0 == i0: a loop's carry updated in place (lower.inplace, render_loop.c) */
  if (nx > 0)
    put(b, "  if ((const void *)o0 != (const void *)i0) memcpy(o0, i0, %lldu);\n",
        (long long)(nx * (int64_t)jx_dtype_size(x->dtype)));
  if (nx > 0 && jx_aval_size(u) > 0) {
    put(b, "  for (int64_t bq = 0; bq < %lldLL; bq++) {\n", (long long)pl.nb);
    put_resolve(b, x, ia->dtype, pa, win, &pl);
    put(b, "    const int64_t yb = ");
    put_decomposed(b, "bq", pl.bnd, pl.bshape, pl.byst);
    put(b, ";\n    if (off < 0) continue; /* dropped */\n");
    int n = open_window(b, &pl);
    put(b, "%*s{\n%*s%s *const t = o0 + ", 4 + 2 * n, "", 6 + 2 * n, "", T);
    put_window_offset(b, "off", &pl, pl.xst);
    put(b, ";\n%*sconst %s a = *t, u = i2[", 6 + 2 * n, "", T);
    put_window_offset(b, "yb", &pl, pl.yst);
    put(b, "];\n%*s(void)a;\n%*s*t = ", 6 + 2 * n, "", 6 + 2 * n, "");
    put_combine(b, k->call.prim, x->dtype);
    put(b, ";\n%*s}\n  }\n", 4 + 2 * n, "");
  }
  jx_cpu_call_tail(b);
}

/* ------------------------------------------- dynamic_slice, _update_slice */
/* `off`: the clamped starts (operands first..first+rank) as x's offset */
static void put_starts(sb *b, const jx_program *p, const jx_kernel *k, const jx_aval *x, const int64_t *size,
                       int first) {
  int64_t st[JX_MAX_RANK];
  jx_strides(x->ndim, x->shape, st);
  put(b, "  int64_t off = 0;\n");
  for (int d = 0; d < x->ndim; d++) {
    long long hi = (long long)(x->shape[d] - size[d]);
    if (jx_cpu_bav(p, k->ins[first + d])->dtype == JX_U64) /* saturating, as jx_index_load */
      put(b, "  {\n    int64_t v = i%d[0] > 0x7fffffffffffffffULL ? INT64_MAX : (int64_t)i%d[0];\n",
          first + d, first + d);
    else
      put(b, "  {\n    int64_t v = (int64_t)i%d[0];\n", first + d);
    put(b, "    off += (v < 0 ? 0 : v > %lldLL ? %lldLL : v) * %lldLL;\n  }\n", hi, hi, (long long)st[d]);
  }
}

/* for each point of box `size` (row-major, running index f; `at` its
 * element in x): the statement `stmt` */
static void put_box_copy(sb *b, const jx_aval *x, const int64_t *size, const char *stmt) {
  int64_t st[JX_MAX_RANK];
  jx_strides(x->ndim, x->shape, st);
  put(b, "  {\n    int64_t f = 0;\n");
  for (int d = 0; d < x->ndim; d++)
    put(b, "%*sfor (int64_t j%d = 0; j%d < %lldLL; j%d++)\n", 4 + 2 * d, "", d, d, (long long)size[d], d);
  put(b, "%*s{\n%*sconst int64_t at = off", 4 + 2 * x->ndim, "", 6 + 2 * x->ndim, "");
  for (int d = 0; d < x->ndim; d++) put(b, " + j%d * %lldLL", d, (long long)st[d]);
  put(b, ";\n%*s%s;\n%*sf++;\n%*s}\n  }\n", 6 + 2 * x->ndim, "", stmt, 6 + 2 * x->ndim, "", 4 + 2 * x->ndim,
      "");
}

void jx_cpu_render_dslice(sb *b, const jx_program *p, const jx_kernel *k, int id) {
  bool update = k->call.prim == JX_P_dynamic_update_slice;
  const jx_aval *x = jx_cpu_bav(p, k->ins[0]), *o = jx_cpu_bav(p, k->outs[0]);
  const jx_aval *box = update ? jx_cpu_bav(p, k->ins[1]) : o;
  jx_cpu_call_head(b, p, k, id, jx_prim_names[k->call.prim]);
  int64_t nx = jx_aval_size(x), es = (int64_t)jx_dtype_size(x->dtype);
  /* o0 == i0: a loop's carry updated in place (lower.inplace, render_loop.c) */
  if (update && nx > 0)
    put(b, "  if ((const void *)o0 != (const void *)i0) memcpy(o0, i0, %lldu);\n", (long long)(nx * es));
  if (jx_aval_size(box) > 0) {
    put_starts(b, p, k, x, box->shape, update ? 2 : 1);
    put_box_copy(b, x, box->shape, update ? "o0[at] = i1[f]" : "o0[f] = i0[at]");
  }
  jx_cpu_call_tail(b);
}
