/* Public convolution, window and pooling ops: lax.conv_general_dilated and
 * its friends (conv, conv_transpose, padtype_to_pads), lax.reduce_window,
 * and flax-style max_pool / avg_pool. They check and translate arguments;
 * the primitives (src/prims/conv.c, window.c) do the rest. */
#include "prims/conv.h"
#include "ops/ops.h"

#include <stdio.h>

#define CONV "conv_general_dilated"

static jx_t arg_error(const char *op, jx_t a, jx_t b, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static jx_t arg_error(const char *op, jx_t a, jx_t b, const char *fmt, ...) {
  char msg[512], s1[160], s2[160] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (b) snprintf(s2, sizeof s2, ", %s", jx_aval_str(&b->aval, s1, sizeof s1));
  return jx_error_new("%s(%s%s): %s", op, jx_aval_str(&a->aval, s1, sizeof s1), s2, msg);
}

/* JAX's conv_general_permutations from "NCHW,OIHW,NCHW"-style letters:
 * N/C, O/I and the same spatial letters in each, spatial dims ordered as
 * in the rhs. NULL: every operand in canonical order. */
static const char *parse_dn(const char *dn, int rank, int8_t *ls, int8_t *rs, int8_t *os) {
  if (!dn) {
    for (int i = 0; i < rank; i++) ls[i] = rs[i] = os[i] = (int8_t)i;
    return NULL;
  }
  const char *part[3];
  int len[3], k = 0;
  for (const char *p = dn;; p++) {
    if (k == 3) return "expected three comma-separated specs (lhs,rhs,out)";
    part[k] = p;
    while (*p && *p != ',') p++;
    len[k] = (int)(p - part[k]), k++;
    if (!*p) break;
  }
  if (k != 3) return "expected three comma-separated specs (lhs,rhs,out)";
  for (int i = 0; i < 3; i++)
    if (len[i] != rank) return "each spec must have one letter per operand dim";
  static const char fixed[3][2] = {{'N', 'C'}, {'O', 'I'}, {'N', 'C'}};
  int8_t *specs[3] = {ls, rs, os};
  for (int i = 0; i < 3; i++) {
    for (int a = 0; a < rank; a++)
      for (int b = a + 1; b < rank; b++)
        if (part[i][a] == part[i][b]) return "a letter appears twice in one spec";
    const char *f0 = memchr(part[i], fixed[i][0], (size_t)rank),
               *f1 = memchr(part[i], fixed[i][1], (size_t)rank);
    if (!f0 || !f1) return "lhs and out need N and C, rhs needs O and I";
    specs[i][0] = (int8_t)(f0 - part[i]), specs[i][1] = (int8_t)(f1 - part[i]);
    int s = 2;
    for (int a = 0; a < rank; a++) { /* spatial letters in the rhs's order */
      char c = part[1][a];
      if (c == 'O' || c == 'I') continue;
      const char *at = memchr(part[i], c, (size_t)rank);
      if (!at || at == f0 || at == f1) return "the spatial letters differ between the specs";
      specs[i][s++] = (int8_t)(at - part[i]);
    }
  }
  return NULL;
}

static jx_t promote(const char *op, jx_t *a, jx_t *b) {
  jx_t e = jx_op_check_array(op, *a);
  if (!e) e = jx_op_check_array(op, *b);
  if (e) return e;
  bool weak;
  jx_dtype dt = jx_promote((*a)->aval.dtype, (*a)->aval.weak, (*b)->aval.dtype, (*b)->aval.weak, &weak);
  *a = jx_op_cast_for(op, *a, dt, (*a)->aval.weak);
  *b = jx_op_cast_for(op, *b, dt, (*b)->aval.weak);
  return jx_first_error(2, (jx_t[]){*a, *b});
}

static bool fits32(int64_t v) { return v >= INT32_MIN && v <= INT32_MAX; }

jx_t jx_conv_general_dilated_ex(jx_t lhs, jx_t rhs, const int64_t *window_strides, const int64_t *padding,
                                const int64_t *lhs_dilation, const int64_t *rhs_dilation,
                                const char *dimension_numbers, int feature_group_count,
                                int batch_group_count) {
  jx_t e = promote(CONV, &lhs, &rhs);
  if (e) return e;
  int rank = lhs->aval.ndim;
  if (rank < 2 || rank != rhs->aval.ndim)
    return arg_error(CONV, lhs, rhs, "lhs and rhs must have the same rank, at least 2");
  jx_params p;
  jx_params_init(&p, JX_PK_CONV);
  const char *why = parse_dn(dimension_numbers, rank, p.conv.lhs, p.conv.rhs, p.conv.out);
  if (why) return arg_error(CONV, lhs, rhs, "dimension_numbers \"%s\": %s", dimension_numbers, why);
  int nsp = rank - 2;
  p.conv.nsp = (int8_t)nsp;
  p.conv.fgc = feature_group_count, p.conv.bgc = batch_group_count;
  for (int s = 0; s < nsp; s++) {
    int64_t v[5] = {window_strides ? window_strides[s] : 1, padding ? padding[2 * s] : 0,
                    padding ? padding[2 * s + 1] : 0, lhs_dilation ? lhs_dilation[s] : 1,
                    rhs_dilation ? rhs_dilation[s] : 1};
    for (int i = 0; i < 5; i++)
      if (!fits32(v[i]) || (i != 1 && i != 2 && v[i] < 1))
        return arg_error(
            CONV, lhs, rhs, "spatial dim %d: %s %lld is out of range", s,
            (const char *[]){"window stride", "padding", "padding", "lhs dilation", "rhs dilation"}[i],
            (long long)v[i]);
    p.conv.stride[s] = (int32_t)v[0], p.conv.lo[s] = (int32_t)v[1], p.conv.hi[s] = (int32_t)v[2];
    p.conv.lhs_dil[s] = (int32_t)v[3], p.conv.rhs_dil[s] = (int32_t)v[4];
  }
  return jx_lax_conv(lhs, rhs, &p);
}

jx_t jx_conv_general_dilated(jx_t lhs, jx_t rhs, const int64_t *window_strides, const int64_t *padding,
                             const int64_t *lhs_dilation, const int64_t *rhs_dilation,
                             const char *dimension_numbers, int feature_group_count) {
  return jx_conv_general_dilated_ex(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                    dimension_numbers, feature_group_count, 1);
}

jx_t jx_padtype_to_pads(int n, const int64_t *in_shape, const int64_t *window, const int64_t *strides,
                        const char *padding, int64_t *pads) {
  bool same = padding && !strcmp(padding, "SAME"), valid = padding && !strcmp(padding, "VALID");
  if (!same && !valid)
    return jx_error_new("padtype_to_pads: padding must be \"SAME\" or \"VALID\", got \"%s\"",
                        padding ? padding : "(null)");
  for (int i = 0; i < n; i++) {
    int64_t s = strides ? strides[i] : 1, total = 0;
    if (s < 1) return jx_error_new("padtype_to_pads: stride %lld of dim %d must be >= 1", (long long)s, i);
    if (same) {
      int64_t out = (in_shape[i] + s - 1) / s;
      total = (out - 1) * s + window[i] - in_shape[i];
      total = total < 0 ? 0 : total;
    }
    pads[2 * i] = total / 2, pads[2 * i + 1] = total - total / 2;
  }
  return NULL;
}

jx_t jx_conv(jx_t lhs, jx_t rhs, const int64_t *window_strides, const char *padding) {
  jx_t e = promote("conv", &lhs, &rhs);
  if (e) return e;
  int rank = lhs->aval.ndim;
  if (rank < 2 || rank != rhs->aval.ndim)
    return arg_error("conv", lhs, rhs, "lhs and rhs must have the same rank, at least 2");
  int64_t pads[2 * JX_MAX_RANK];
  e = jx_padtype_to_pads(rank - 2, lhs->aval.shape + 2, rhs->aval.shape + 2, window_strides, padding, pads);
  if (e) return arg_error("conv", lhs, rhs, "%s", jx_error(e));
  return jx_conv_general_dilated(lhs, rhs, window_strides, pads, NULL, NULL, NULL, 1);
}

/* JAX's _conv_transpose_padding for one dim (k: the dilated kernel) */
static void transpose_pads(int64_t k, int64_t s, bool same, int64_t *lo, int64_t *hi) {
  int64_t len, a;
  if (same) {
    len = k + s - 2;
    a = s > k - 1 ? k - 1 : (len + 1) / 2;
  } else {
    len = k + s - 2 + (k - s > 0 ? k - s : 0);
    a = k - 1;
  }
  *lo = a, *hi = len - a;
}

jx_t jx_conv_transpose(jx_t lhs, jx_t rhs, const int64_t *strides, const char *padding, const int64_t *pads,
                       const int64_t *rhs_dilation, const char *dimension_numbers, bool transpose_kernel) {
  jx_t e = promote("conv_transpose", &lhs, &rhs);
  if (e) return e;
  int rank = lhs->aval.ndim, nsp = rank - 2;
  if (rank < 2 || rank != rhs->aval.ndim || rank > 5)
    return arg_error("conv_transpose", lhs, rhs, "lhs and rhs must have the same rank, 2 to 5");
  static const char *const dflt[] = {"NC,IO,NC", "NHC,HIO,NHC", "NHWC,HWIO,NHWC", "NHWDC,HWDIO,NHWDC"};
  const char *dn = dimension_numbers ? dimension_numbers : dflt[nsp];
  int8_t ls[JX_MAX_RANK], rs[JX_MAX_RANK], os[JX_MAX_RANK];
  const char *why = parse_dn(dn, rank, ls, rs, os);
  if (why) return arg_error("conv_transpose", lhs, rhs, "dimension_numbers \"%s\": %s", dn, why);
  int64_t p[2 * JX_MAX_RANK];
  if (padding) {
    bool same = !strcmp(padding, "SAME");
    if (!same && strcmp(padding, "VALID"))
      return arg_error("conv_transpose", lhs, rhs,
                       "padding must be \"SAME\", \"VALID\" or NULL (explicit pads)");
    for (int s = 0; s < nsp; s++) {
      int64_t k = jx_dilate_dim(rhs->aval.shape[rs[s + 2]], rhs_dilation ? rhs_dilation[s] : 1);
      transpose_pads(k, strides ? strides[s] : 1, same, &p[2 * s], &p[2 * s + 1]);
    }
    pads = p;
  }
  if (transpose_kernel) { /* flip the window, swap the kernel's in and out features */
    int sp[JX_MAX_RANK], perm[JX_MAX_RANK];
    for (int s = 0; s < nsp; s++) sp[s] = rs[s + 2];
    rhs = jx_lax_rev(rhs, nsp, sp);
    for (int i = 0; i < rank; i++) perm[i] = i;
    perm[rs[0]] = rs[1], perm[rs[1]] = rs[0];
    rhs = jx_lax_transpose(rhs, perm);
  }
  return jx_conv_general_dilated(lhs, rhs, NULL, pads, strides, rhs_dilation, dn, 1);
}

/* ------------------------------------------------------------ windows */
static jx_t window_params(const char *op, jx_t x, const int64_t *window, const int64_t *strides,
                          const int64_t *padding, const int64_t *base_dil, const int64_t *win_dil,
                          jx_params *p) {
  jx_params_init(p, JX_PK_WINDOW);
  for (int d = 0; d < x->aval.ndim; d++) {
    int64_t v[6] = {window ? window[d] : 1,       strides ? strides[d] : 1,
                    padding ? padding[2 * d] : 0, padding ? padding[2 * d + 1] : 0,
                    base_dil ? base_dil[d] : 1,   win_dil ? win_dil[d] : 1};
    for (int i = 0; i < 6; i++)
      if (!fits32(v[i]) || (i != 2 && i != 3 && v[i] < 1))
        return arg_error(
            op, x, NULL, "dim %d: %s %lld is out of range", d,
            (const char *[]){"window", "stride", "padding", "padding", "base dilation", "window dilation"}[i],
            (long long)v[i]);
    p->window.window[d] = (int32_t)v[0], p->window.stride[d] = (int32_t)v[1];
    p->window.lo[d] = (int32_t)v[2], p->window.hi[d] = (int32_t)v[3];
    p->window.base_dil[d] = (int32_t)v[4], p->window.win_dil[d] = (int32_t)v[5];
  }
  return NULL;
}

jx_t jx_reduce_window(jx_t x, const char *op, const int64_t *window, const int64_t *strides,
                      const int64_t *padding, const int64_t *base_dilation, const int64_t *window_dilation) {
  jx_t e = jx_op_check_array("reduce_window", x);
  if (e) return e;
  jx_prim prim;
  if (op && !strcmp(op, "sum"))
    prim = JX_P_reduce_window_sum;
  else if (op && !strcmp(op, "max"))
    prim = JX_P_reduce_window_max;
  else if (op && !strcmp(op, "min"))
    prim = JX_P_reduce_window_min;
  else
    return arg_error("reduce_window", x, NULL, "computation must be \"sum\", \"max\" or \"min\", got \"%s\"",
                     op ? op : "(null)");
  jx_params p;
  e = window_params("reduce_window", x, window, strides, padding, base_dilation, window_dilation, &p);
  return e ? e : jx_lax_window(prim, 1, &x, &p);
}

/* flax's pool: the window over the nspatial dims before the last (the
 * features), batch dims in front (at most one here, or none) */
static jx_t pool(const char *op, jx_prim prim, jx_t x, int nspatial, const int64_t *window,
                 const int64_t *strides, const char *padding) {
  jx_t e = jx_op_check_array(op, x);
  if (e) return e;
  int rank = x->aval.ndim, first = rank - 1 - nspatial;
  if (nspatial < 1 || (first != 0 && first != 1))
    return arg_error(op, x, NULL, "%d spatial dims: the operand must be [batch,] spatial..., features",
                     nspatial);
  if (!window) return arg_error(op, x, NULL, "window is required");
  int64_t w[JX_MAX_RANK], s[JX_MAX_RANK], pads[2 * JX_MAX_RANK] = {0};
  for (int d = 0; d < rank; d++) {
    bool sp = d >= first && d < rank - 1;
    w[d] = sp ? window[d - first] : 1, s[d] = sp && strides ? strides[d - first] : 1;
  }
  e = jx_padtype_to_pads(rank, x->aval.shape, w, s, padding, pads);
  if (e) return arg_error(op, x, NULL, "%s", jx_error(e));
  jx_params p;
  e = window_params(op, x, w, s, pads, NULL, NULL, &p);
  return e ? e : jx_lax_window(prim, 1, &x, &p);
}

jx_t jx_max_pool(jx_t x, int nspatial, const int64_t *window, const int64_t *strides, const char *padding) {
  return pool("max_pool", JX_P_reduce_window_max, x, nspatial, window, strides, padding);
}

jx_t jx_avg_pool(jx_t x, int nspatial, const int64_t *window, const int64_t *strides, const char *padding) {
  jx_t e = jx_op_check_array("avg_pool", x);
  if (e) return e;
  x = jx_op_to_float(x);
  jx_t s = pool("avg_pool", JX_P_reduce_window_sum, x, nspatial, window, strides, padding);
  if (!jx_ok(s)) return s;
  int64_t n = 1;
  for (int i = 0; i < nspatial; i++) n *= window[i];
  /* padding counts as zeros (flax's count_include_pad) */
  return jx_div(s, jx_scalar((double)n));
}
