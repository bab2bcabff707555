/* Portable CALL kernels (render_call.h): the cumulative ops (cumsum,
 * cumprod, cummax, cummin, cumlogsumexp) and reduce_prod.
 *
 * Both combine in the eager kernels' order and with their expressions
 * (backend/cpu/scan_kernels.c, prims/math.c): a scan walks its axis from
 * the start (or the end) carrying the previous output; the product
 * multiplies the operand in memory order into the output element its kept
 * coordinates name. Integers wrap through their unsigned type, floats'
 * max/min let a NaN win: bit-identical. */
#include "backend/cpu/render_call.h"

/* `a OP v` (a: the previous output, v: this element) as scan_kernels.c's
 * CUM combines write it (NULL: no kernel for
 * this op and dtype, as jx_cpu_cumulative_supports) */
static const char *cum_expr(jx_prim prim, jx_dtype dt) {
  /* bf16/f16 combine their f32 running value (put_cumulative_half) */
  bool fl = jx_dtype_is_float(dt), in = jx_dtype_is_int(dt);
  bool wide = dt == JX_I64 || dt == JX_U64;
  switch (prim) {
    case JX_P_cumsum:
      return fl     ? "a + v"
             : !in  ? NULL
             : wide ? "(T)((uint64_t)a + (uint64_t)v)"
                    : "(T)((uint32_t)a + (uint32_t)v)";
    case JX_P_cumprod:
      return fl     ? "a * v"
             : !in  ? NULL
             : wide ? "(T)((uint64_t)a * (uint64_t)v)"
                    : "(T)((uint32_t)a * (uint32_t)v)";
    case JX_P_cummax: return fl ? "a != a || a > v ? a : v" : in || dt == JX_BOOL ? "a > v ? a : v" : NULL;
    case JX_P_cummin: return fl ? "a != a || a < v ? a : v" : in || dt == JX_BOOL ? "a < v ? a : v" : NULL;
    case JX_P_cumlogsumexp: return fl ? "LAE(a, v)" : NULL;
    default: return NULL;
  }
}

/* cumlogsumexp's combine, p<pid>_k<id>_lae: log(exp(a) + exp(b)) without
 * overflow; NaN in, NaN out; equal infinities give themselves */
static void put_lae(sb *b, const jx_program *p, int id, jx_dtype dt) {
  if (jx_dtype_is_half(dt)) dt = JX_F32; /* their running value */
  const char *T = jx_cpu_call_ctype(dt), *f = dt == JX_F32 ? "f" : "";
  put(b, "static %s p%d_k%d_lae(%s a, %s b) {\n  %s m;\n  if (a != a || b != b) return a + b;\n", T, p->id,
      id, T, T, T);
  put(b,
      "  m = a > b ? a : b;\n  if (isinf(m)) return m;\n  return m + log1p%s(exp%s(-fabs%s(a - b)));\n}\n\n",
      f, f, f);
}

/* the combine with T and LAE spelled out */
static void put_expr(sb *b, const char *e, const char *T, const jx_program *p, int id) {
  for (; *e; e++) {
    if (e[0] == 'T' && (e[1] == ')' || e[1] == ' '))
      put(b, "%s", T);
    else if (!strncmp(e, "LAE", 3))
      put(b, "p%d_k%d_lae", p->id, id), e += 2;
    else
      put(b, "%c", *e);
  }
}

void jx_cpu_render_cumulative(sb *b, const jx_program *p, const jx_kernel *k, int id) {
  const jx_aval *a = jx_cpu_bav(p, k->ins[0]);
  const char *e = cum_expr(k->call.prim, a->dtype), *T = jx_cpu_call_ctype(a->dtype);
  if (!e) {
    jx_cpu_no_rendering(b->need, k->call.prim);
    return;
  }
  int axis = k->call.params.cumulative.axis;
  bool rev = k->call.params.cumulative.reverse;
  int64_t outer = 1, n = a->shape[axis], inner = 1;
  for (int d = 0; d < axis; d++) outer *= a->shape[d];
  for (int d = axis + 1; d < a->ndim; d++) inner *= a->shape[d];
  if (k->call.prim == JX_P_cumlogsumexp) put_lae(b, p, id, a->dtype);
  jx_cpu_call_head(b, p, k, id, jx_prim_names[k->call.prim]);
  if (outer * n * inner > 0) {
    long long step = rev ? -(long long)inner : (long long)inner;
    put(b, "  for (int64_t o = 0; o < %lldLL; o++)\n    for (int64_t i = 0; i < %lldLL; i++) {\n",
        (long long)outer, (long long)inner);
    put(b, "      int64_t at = o * %lldLL + %lldLL + i;\n", (long long)(n * inner),
        (long long)(rev ? (n - 1) * inner : 0));
    if (jx_dtype_is_half(a->dtype)) { /* as scan_kernels.c: an f32 running value, each output rounded once */
      const char *sf = jx_cpu_call_sfx(a->dtype);
      put(b, "      float acc = ");
      jx_cpu_put_call(b, "jx_%s_to_f32", sf);
      put(b, "i0[at]);\n      o0[at] = ");
      jx_cpu_put_call(b, "jx_f32_to_%s", sf);
      put(b, "acc);\n      for (int64_t j = 1; j < %lldLL; j++) {\n        const float a = acc, v = ",
          (long long)n);
      jx_cpu_put_call(b, "jx_%s_to_f32", sf);
      put(b, "i0[at += %lldLL]);\n        acc = ", step);
      put_expr(b, e, "float", p, id);
      put(b, ";\n        o0[at] = ");
      jx_cpu_put_call(b, "jx_f32_to_%s", sf);
      put(b, "acc);\n      }\n    }\n");
    } else {
      put(b, "      %s acc = i0[at];\n      o0[at] = acc;\n", T);
      put(b,
          "      for (int64_t j = 1; j < %lldLL; j++) {\n        const %s a = acc, v = i0[at += %lldLL];\n",
          (long long)n, T, step);
      put(b, "        acc = ");
      put_expr(b, e, T, p, id);
      put(b, ";\n        o0[at] = acc;\n      }\n    }\n");
    }
  }
  jx_cpu_call_tail(b);
}

/* ------------------------------------------------------------ reduce_prod */
void jx_cpu_render_reduce_prod(sb *b, const jx_program *p, const jx_kernel *k, int id) {
  const jx_aval *a = jx_cpu_bav(p, k->ins[0]), *o = jx_cpu_bav(p, k->outs[0]);
  jx_dtype dt = a->dtype;
  const char *mul = dt == JX_F32 || dt == JX_F64 || dt == JX_U32 ? "y * x"
                    : dt == JX_I32                               ? "(int32_t)((uint32_t)y * (uint32_t)x)"
                    : dt == JX_I64                               ? "(int64_t)((uint64_t)y * (uint64_t)x)"
                                                                 : NULL;
  if (!mul) {
    jx_cpu_no_rendering(b->need, k->call.prim);
    return;
  }
  bool mask[JX_MAX_RANK] = {0};
  for (int i = 0; i < k->call.params.reduce.naxes; i++) mask[k->call.params.reduce.axes[i]] = true;
  int64_t ost[JX_MAX_RANK], s = 1;
  for (int d = a->ndim - 1; d >= 0; d--) ost[d] = mask[d] ? 0 : s, s *= mask[d] ? 1 : a->shape[d];
  const char *T = jx_cpu_call_ctype(dt);
  jx_cpu_call_head(b, p, k, id, "reduce_prod");
  put(b, "  for (int64_t f = 0; f < %lldLL; f++) o0[f] = (%s)1;\n", (long long)jx_aval_size(o), T);
  if (jx_aval_size(a) > 0) {
    put(b, "  {\n    int64_t f = 0;\n");
    for (int d = 0; d < a->ndim; d++)
      put(b, "%*sfor (int64_t j%d = 0; j%d < %lldLL; j%d++)\n", 4 + 2 * d, "", d, d, (long long)a->shape[d],
          d);
    int ind = 4 + 2 * a->ndim;
    put(b, "%*s{\n%*s%s *const t = o0 + 0", ind, "", ind + 2, "", T);
    for (int d = 0; d < a->ndim; d++)
      if (ost[d]) put(b, " + j%d * %lldLL", d, (long long)ost[d]);
    put(b, ";\n%*sconst %s y = *t, x = i0[f++];\n%*s*t = %s;\n%*s}\n  }\n", ind + 2, "", T, ind + 2, "", mul,
        ind, "");
  }
  jx_cpu_call_tail(b);
}
