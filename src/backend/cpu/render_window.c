/* Portable CALL kernels (render_call.h): reduce_window_sum/max/min and the
 * max/min-pool gradient pair select_and_gather_add / select_and_scatter_add.
 *
 * As the eager kernels (backend/cpu/window.c): per dim and output index
 * the in-range window taps are listed once (static tables: their count
 * and their element offsets into the operand, in tap order); an output
 * walks the product of its dims' lists, last dim fastest -- row-major tap
 * order, the order "the first max" is meant in -- and combines in the
 * operand's dtype. Same taps, same order, same combining: bit-identical.
 * bf16/f16 (#19) compute as the eager path does, in f32: each value
 * widened, sums in a float, select_and_scatter's adds in a float buffer
 * (workspace), every output rounded once. */
#include "backend/cpu/render_call.h"

/* the window geometry (conv.h's jx_cpu_window_desc) */
typedef struct {
  int nd;
  int64_t in[JX_MAX_RANK], out[JX_MAX_RANK], window[JX_MAX_RANK];
} geom;

/* tables tc<d>[out_d] (in-range taps) and to<d>[out_d * window_d] (their
 * element offsets in x, in tap order, then zeros never read), as
 * window.c's taps_make */
static void put_tables(sb *b, const jx_params *pa, const geom *g) {
  int64_t st[JX_MAX_RANK], acc = 1;
  for (int i = g->nd - 1; i >= 0; i--) st[i] = acc, acc *= g->in[i];
  for (int i = 0; i < g->nd; i++) {
    int64_t W = g->window[i], O = g->out[i], bd = pa->window.base_dil[i];
    put(b, "  static const int64_t tc%d[%lld] = {", i, (long long)O);
    for (int64_t o = 0; o < O; o++) {
      int64_t c = 0;
      for (int64_t w = 0; w < W; w++) {
        int64_t x = o * pa->window.stride[i] + w * pa->window.win_dil[i] - pa->window.lo[i];
        c += x >= 0 && x <= (g->in[i] - 1) * bd && x % bd == 0;
      }
      put(b, "%s%lld", o ? (o % 16 ? ", " : ",\n    ") : "", (long long)c);
    }
    put(b, "};\n  static const int64_t to%d[%lld] = {", i, (long long)(O * W));
    int64_t e = 0;
    for (int64_t o = 0; o < O; o++) {
      int64_t c = 0;
      for (int64_t w = 0; w < W; w++) {
        int64_t x = o * pa->window.stride[i] + w * pa->window.win_dil[i] - pa->window.lo[i];
        if (x >= 0 && x <= (g->in[i] - 1) * bd && x % bd == 0) {
          put(b, "%s%lld", e ? (e % 16 ? ", " : ",\n    ") : "", (long long)(x / bd * st[i]));
          e++, c++;
        }
      }
      for (; c < W; c++, e++) put(b, "%s0", e ? (e % 16 ? ", " : ",\n    ") : "");
    }
    put(b, "};\n");
  }
}

/* outputs (q<d> over out, flat f) and, inside, the taps (xo<nd>: the
 * tap's element offset in x); returns the indent of the innermost body */
static int open_loops(sb *b, const geom *g) {
  put(b, "  int64_t f = 0;\n");
  for (int d = 0; d < g->nd; d++)
    put(b, "%*sfor (int64_t q%d = 0; q%d < %lldLL; q%d++)\n", 2 + 2 * d, "", d, d, (long long)g->out[d], d);
  put(b, "%*s{\n", 2 + 2 * g->nd, "");
  return 4 + 2 * g->nd;
}

static void open_taps(sb *b, const geom *g, int ind) {
  put(b, "%*sconst int64_t xo0 = 0;\n", ind, "");
  for (int d = 0; d < g->nd; d++) {
    int in = ind + 2 * d;
    put(b, "%*sfor (int64_t k%d = 0; k%d < tc%d[q%d]; k%d++) {\n", in, "", d, d, d, d, d);
    put(b, "%*sconst int64_t xo%d = xo%d + to%d[q%d * %lldLL + k%d];\n", in + 2, "", d + 1, d, d, d,
        (long long)g->window[d], d);
  }
}

static void close_taps(sb *b, const geom *g, int ind) {
  for (int d = g->nd - 1; d >= 0; d--) put(b, "%*s}\n", ind + 2 * d, "");
}

/* "<x>[<at>]" as a value to compare and combine: bf16/f16 widened to f32 */
static void put_load(sb *b, jx_dtype dt, const char *x, const char *at) {
  if (jx_dtype_is_half(dt)) {
    jx_cpu_put_call(b, "jx_%s_to_f32", jx_cpu_call_sfx(dt));
    put(b, "%s[%s])", x, at);
  } else {
    put(b, "%s[%s]", x, at);
  }
}
/* "<v>" rounded back to dt (bf16/f16), or as is */
static void put_round_open(sb *b, jx_dtype dt) {
  if (jx_dtype_is_half(dt)) jx_cpu_put_call(b, "jx_f32_to_%s", jx_cpu_call_sfx(dt));
}
static const char *round_close(jx_dtype dt) { return jx_dtype_is_half(dt) ? ")" : ""; }
/* the type values are combined in */
static const char *calc_type(jx_dtype dt) { return jx_dtype_is_half(dt) ? "float" : jx_cpu_call_ctype(dt); }
/* the unsigned type integers wrap through */
static const char *wrap_type(jx_dtype dt) { return jx_dtype_size(dt) == 8 ? "uint64_t" : "uint32_t"; }

/* the combining of reduce_window_<op> (window.c's DEF_WIN) */
static void put_reduce_step(sb *b, jx_prim prim, jx_dtype dt, int ind, int nd) {
  bool fl = jx_dtype_is_float(dt);
  const char *T = calc_type(dt), *U = wrap_type(dt);
  char at[16];
  snprintf(at, sizeof at, "xo%d", nd);
  put(b, "%*sconst %s v = ", ind, "", T);
  put_load(b, dt, "i0", at);
  put(b, ";\n");
  if (prim == JX_P_reduce_window_sum && fl)
    put(b, "%*sacc += v;\n", ind, "");
  else if (prim == JX_P_reduce_window_sum) /* wraps, as XLA's integer adds */
    put(b, "%*sacc = (%s)((%s)acc + (%s)v);\n", ind, "", T, U, U);
  else if (fl)
    put(b, "%*sacc = (v %s acc || v != v) && acc == acc ? v : acc;\n", ind, "",
        prim == JX_P_reduce_window_max ? ">" : "<");
  else
    put(b, "%*sacc = v %s acc ? v : acc;\n", ind, "", prim == JX_P_reduce_window_max ? ">" : "<");
}

static const char *identity(jx_prim prim, jx_dtype dt) {
  static const struct {
    jx_dtype dt;
    const char *lowest, *highest;
  } ids[] = {{JX_I32, "INT32_MIN", "INT32_MAX"}, {JX_I64, "INT64_MIN", "INT64_MAX"},
             {JX_U32, "0u", "UINT32_MAX"},       {JX_I8, "INT8_MIN", "INT8_MAX"},
             {JX_U8, "0u", "UINT8_MAX"},         {JX_I16, "INT16_MIN", "INT16_MAX"},
             {JX_U16, "0u", "UINT16_MAX"},       {JX_U64, "0u", "UINT64_MAX"},
             {JX_BF16, "-INFINITY", "INFINITY"}, /* (their f32 running value) */
             {JX_F16, "-INFINITY", "INFINITY"},  {JX_F32, "-INFINITY", "INFINITY"},
             {JX_F64, "-INFINITY", "INFINITY"}};
  if (prim == JX_P_reduce_window_sum) return "0";
  for (size_t i = 0; i < sizeof ids / sizeof *ids; i++)
    if (ids[i].dt == dt) return prim == JX_P_reduce_window_max ? ids[i].lowest : ids[i].highest;
  return "0";
}

/* `sel`: the first max (ge) or min (le) tap of this output, -1 if none
 * (window.c's select: a later tap replaces the selection unless
 * selection >= (<=) tap) */
static void put_select(sb *b, const jx_params *pa, const geom *g, int ind, const char *x, jx_dtype dt) {
  put(b, "%*sint64_t sel = -1;\n%*s{\n", ind, "", ind, "");
  open_taps(b, g, ind + 2);
  char at[16];
  snprintf(at, sizeof at, "xo%d", g->nd);
  put(b, "%*sif (sel < 0 || !(", ind + 2 + 2 * g->nd, "");
  put_load(b, dt, x, "sel");
  put(b, " %s ", pa->window.select ? "<=" : ">=");
  put_load(b, dt, x, at);
  put(b, ")) sel = xo%d;\n", g->nd);
  close_taps(b, g, ind + 2);
  put(b, "%*s}\n", ind, "");
}

void jx_cpu_render_window(sb *b, const jx_program *p, const jx_kernel *k, int id) {
  const jx_prim prim = k->call.prim;
  const jx_params *pa = &k->call.params;
  const jx_aval *x = jx_cpu_bav(p, k->ins[k->nin - 1]); /* the windowed operand comes last */
  const jx_aval *wo =
      prim == JX_P_select_and_scatter_add ? jx_cpu_bav(p, k->ins[0]) : jx_cpu_bav(p, k->outs[0]);
  jx_dtype dt = x->dtype;
  if (dt == JX_BOOL) {
    jx_cpu_no_rendering(b->need, prim);
    return;
  }
  const bool half = jx_dtype_is_half(dt);
  geom g = {.nd = x->ndim};
  for (int d = 0; d < g.nd; d++)
    g.in[d] = x->shape[d], g.out[d] = wo->shape[d], g.window[d] = pa->window.window[d];
  const char *T = jx_cpu_call_ctype(dt);
  jx_cpu_call_head(b, p, k, id, jx_prim_names[prim]);
  const long long nx = (long long)jx_aval_size(x);
  const bool scatter = prim == JX_P_select_and_scatter_add;
  if (scatter && nx > 0 && !half) put(b, "  memset(o0, 0, %lldu);\n", nx * (long long)jx_dtype_size(dt));
  if (scatter && nx > 0 && half) { /* the sums in f32 (workspace), rounded at the end */
    put(b, "  char *mem = 0;\n  void *const h = rt->alloc(rt, %lldLL, &mem);\n  float *acc;\n", 4 * nx);
    put(b, "  if (!h) return 1;\n  acc = (float *)(void *)mem;\n  memset(acc, 0, %lldu);\n", 4 * nx);
  }
  if (jx_aval_size(wo) > 0) {
    put_tables(b, pa, &g);
    int ind = open_loops(b, &g);
    if (prim == JX_P_select_and_gather_add) {
      put_select(b, pa, &g, ind, "i1", dt);
      put(b, "%*so0[f] = sel < 0 ? (%s)0 : ", ind, "", T);
      put_round_open(b, dt);
      put_load(b, dt, "i0", "sel");
      put(b, "%s;\n", round_close(dt));
    } else if (scatter) {
      put_select(b, pa, &g, ind, "i1", dt);
      if (half) {
        put(b, "%*sif (sel >= 0) acc[sel] += ", ind, "");
        put_load(b, dt, "i0", "f");
        put(b, ";\n");
      } else if (jx_dtype_is_float(dt)) {
        put(b, "%*sif (sel >= 0) o0[sel] += i0[f];\n", ind, "");
      } else {
        put(b, "%*sif (sel >= 0) o0[sel] = (%s)((%s)o0[sel] + (%s)i0[f]);\n", ind, "", T, wrap_type(dt),
            wrap_type(dt));
      }
    } else {
      put(b, "%*s%s acc = %s;\n%*s{\n", ind, "", calc_type(dt), identity(prim, dt), ind, "");
      open_taps(b, &g, ind + 2);
      put_reduce_step(b, prim, dt, ind + 2 + 2 * g.nd, g.nd);
      close_taps(b, &g, ind + 2);
      put(b, "%*s}\n%*so0[f] = ", ind, "", ind, "");
      put_round_open(b, dt);
      put(b, "acc%s;\n", round_close(dt));
    }
    put(b, "%*sf++;\n%*s}\n", ind, "", ind - 2, "");
  }
  if (scatter && nx > 0 && half) {
    put(b, "  for (int64_t e = 0; e < %lldLL; e++) o0[e] = ", nx);
    put_round_open(b, dt);
    put(b, "acc[e]);\n  rt->release(h);\n");
  }
  jx_cpu_call_tail(b);
}
