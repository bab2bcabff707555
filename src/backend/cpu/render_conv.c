/* Portable CALL kernel (render_call.h): conv_general_dilated, any
 * dimension numbers (the operands are read and the output written through
 * their own layouts' strides), strides, padding (negative crops), lhs and
 * rhs dilation, feature_group_count and batch_group_count.
 *
 * Direct loops: per output element (image, feature, position) the sum
 * over the group's input channels, then the window taps in row-major
 * order, of lhs * rhs; a tap's lhs index per spatial dim comes from a
 * static table (-1: padding or a hole of lhs dilation), as the eager
 * kernel's tables (backend/cpu/conv.c). The eager kernel sums the same
 * products through its GEMM (blocked, FMA where the host has it, or
 * oneDNN), so for floats the results agree to rounding, not to the bit:
 * tests/test_export_ops.c bounds the difference as for dot_general; for
 * integers they are exact. */
#include "backend/cpu/render_call.h"

/* a convolution in JAX's canonical terms, strides of the actual layouts */
typedef struct {
  int nsp;
  int64_t N, C, O, I, G, Nb, Og;
  int64_t in[JX_MAX_RANK], k[JX_MAX_RANK], out[JX_MAX_RANK];
  int64_t lN, lC, lS[JX_MAX_RANK], rO, rI, rS[JX_MAX_RANK], oN, oO, oS[JX_MAX_RANK];
} cdesc;

static void make_desc(const jx_aval *l, const jx_aval *r, const jx_aval *o, const jx_params *pa, cdesc *d) {
  const int8_t *ls = pa->conv.lhs, *rs = pa->conv.rhs, *os = pa->conv.out;
  int64_t lst[JX_MAX_RANK], rst[JX_MAX_RANK], ost[JX_MAX_RANK];
  jx_strides(l->ndim, l->shape, lst);
  jx_strides(r->ndim, r->shape, rst);
  jx_strides(o->ndim, o->shape, ost);
  *d = (cdesc){.nsp = pa->conv.nsp,
               .N = l->shape[ls[0]],
               .C = l->shape[ls[1]],
               .O = r->shape[rs[0]],
               .I = r->shape[rs[1]]};
  d->G = pa->conv.fgc > pa->conv.bgc ? pa->conv.fgc : pa->conv.bgc;
  d->Nb = d->N / pa->conv.bgc, d->Og = d->O / d->G;
  d->lN = lst[ls[0]], d->lC = lst[ls[1]], d->rO = rst[rs[0]], d->rI = rst[rs[1]];
  d->oN = ost[os[0]], d->oO = ost[os[1]];
  for (int s = 0; s < d->nsp; s++) {
    d->in[s] = l->shape[ls[s + 2]], d->k[s] = r->shape[rs[s + 2]], d->out[s] = o->shape[os[s + 2]];
    d->lS[s] = lst[ls[s + 2]], d->rS[s] = rst[rs[s + 2]], d->oS[s] = ost[os[s + 2]];
  }
}

/* ct<s>[k * out_s + p]: the lhs element offset (along spatial dim s) tap
 * k of output position p reads, or -1 */
static void put_tables(sb *b, const jx_params *pa, const cdesc *d) {
  for (int s = 0; s < d->nsp; s++) {
    int64_t n = d->k[s] * d->out[s], st = pa->conv.stride[s], rd = pa->conv.rhs_dil[s],
            ld = pa->conv.lhs_dil[s];
    put(b, "  static const int64_t ct%d[%lld] = {", s, (long long)n);
    for (int64_t f = 0; f < n; f++) {
      int64_t k = f / d->out[s], p = f % d->out[s];
      int64_t c = p * st + k * rd - pa->conv.lo[s]; /* in the dilated, padded lhs */
      bool hit = c >= 0 && c <= (d->in[s] - 1) * ld && c % ld == 0;
      put(b, "%s%lld", f ? (f % 16 ? ", " : ",\n    ") : "", (long long)(hit ? c / ld * d->lS[s] : -1));
    }
    put(b, "};\n");
  }
}

/* the sum of one output element into acc: channels, then taps */
static void put_sum(sb *b, const cdesc *d, jx_dtype dt, int ind) {
  /* bf16/f16 (#19): values widened to f32, summed in f32 (the sum is
   * rounded once, where it is stored) */
  const bool half = jx_dtype_is_half(dt);
  const char *T = jx_cpu_call_ctype(dt), *AT = half ? "float" : T, *sfx = half ? "f32" : jx_cpu_call_sfx(dt);
  put(b, "%*s%s acc = (%s)0;\n", ind, "", AT, AT);
  put(b, "%*sfor (int64_t i = 0; i < %lldLL; i++) {\n", ind, "", (long long)d->I);
  put(b, "%*sconst %s *const Li = L + i * %lldLL;\n", ind + 2, "", T, (long long)d->lC);
  put(b, "%*sconst %s *const Wi = W + i * %lldLL;\n", ind + 2, "", T, (long long)d->rI);
  char lx[64 + 24 * JX_MAX_RANK] = "Li[0", wx[64 + 40 * JX_MAX_RANK] = "Wi[0";
  for (int s = 0; s < d->nsp; s++) {
    int in = ind + 2 + 2 * s;
    put(b, "%*sfor (int64_t k%d = 0; k%d < %lldLL; k%d++) {\n", in, "", s, s, (long long)d->k[s], s);
    put(b, "%*sconst int64_t t%d = ct%d[k%d * %lldLL + p%d];\n", in + 2, "", s, s, s, (long long)d->out[s],
        s);
    size_t nl = strlen(lx), nw = strlen(wx);
    snprintf(lx + nl, sizeof lx - nl, " + t%d", s);
    snprintf(wx + nw, sizeof wx - nw, " + k%d * %lldLL", s, (long long)d->rS[s]);
  }
  strcat(lx, "]"), strcat(wx, "]");
  char ind2[80];
  snprintf(ind2, sizeof ind2, "%*s", ind + 2 + 2 * d->nsp, "");
  /* a tap on padding or a dilation hole multiplies a zero, as the eager
   * kernel's padded patches do: 0 * inf is NaN there, and must be here */
  put(b, "%s%s lv = (%s)0;\n%sif (", ind2, AT, AT, ind2);
  for (int s = 0; s < d->nsp; s++) put(b, "%st%d >= 0", s ? " && " : "", s);
  put(b, "%s) lv = ", d->nsp ? "" : "1");
  if (half) jx_cpu_put_call(b, "jx_%s_to_f32", jx_cpu_call_sfx(dt));
  put(b, "%s%s;\n", lx, half ? ")" : "");
  if (half) {
    put(b, "%sconst float wv = ", ind2);
    jx_cpu_put_call(b, "jx_%s_to_f32", jx_cpu_call_sfx(dt));
    put(b, "%s);\n", wx);
  }
  jx_cpu_call_madd(b, sfx, ind2, "acc", "acc", "lv", half ? "wv" : wx);
  for (int s = d->nsp - 1; s >= 0; s--) put(b, "%*s}\n", ind + 2 + 2 * s, "");
  put(b, "%*s}\n", ind, "");
}

void jx_cpu_render_conv(sb *b, const jx_program *p, const jx_kernel *k, int id) {
  const jx_aval *l = jx_cpu_bav(p, k->ins[0]), *r = jx_cpu_bav(p, k->ins[1]), *o = jx_cpu_bav(p, k->outs[0]);
  const jx_params *pa = &k->call.params;
  if (l->dtype == JX_BOOL) { /* abstract eval refuses it; kept for a hand-built program */
    jx_cpu_no_rendering(b->need, k->call.prim);
    return;
  }
  cdesc d;
  make_desc(l, r, o, pa, &d);
  const char *T = jx_cpu_call_ctype(l->dtype), *sfx = jx_cpu_call_sfx(l->dtype);
  jx_cpu_call_head(b, p, k, id, "conv_general_dilated");
  int64_t K = d.I;
  for (int s = 0; s < d.nsp; s++) K *= d.k[s];
  if (jx_aval_size(o) > 0 && K == 0) /* every sum empty (no tap or no channel): zeros, and no empty table */
    put(b, "  memset(o0, 0, %lldu);\n", (long long)(jx_aval_size(o) * (int64_t)jx_dtype_size(o->dtype)));
  else if (jx_aval_size(o) > 0) {
    put_tables(b, pa, &d);
    if (b->openmp && d.Nb * d.O > 1 && jx_aval_size(o) * K >= (1 << 16))
      put(b, JX_OMP_FOR(" collapse(2) schedule(static)"));
    put(b, "  for (int64_t n = 0; n < %lldLL; n++)\n", (long long)d.Nb);
    put(b, "    for (int64_t o = 0; o < %lldLL; o++) {\n", (long long)d.O);
    put(b, "      const int64_t g = o / %lldLL;\n", (long long)d.Og);
    /* the group's lhs: batch rows [g * Nb, ...) (batch groups) or channels [g * I, ...) (feature groups) */
    put(b, "      const %s *const L = i0 + (n + g * %lldLL) * %lldLL + g * %lldLL;\n", T,
        (long long)(pa->conv.bgc > 1 ? d.Nb : 0), (long long)d.lN,
        (long long)(pa->conv.fgc > 1 ? d.I * d.lC : 0));
    put(b, "      const %s *const W = i1 + o * %lldLL;\n      (void)g;\n", T, (long long)d.rO);
    for (int s = 0; s < d.nsp; s++)
      put(b, "%*sfor (int64_t p%d = 0; p%d < %lldLL; p%d++)\n", 6 + 2 * s, "", s, s, (long long)d.out[s], s);
    int ind = 6 + 2 * d.nsp;
    put(b, "%*s{\n", ind, "");
    put_sum(b, &d, l->dtype, ind + 2);
    put(b, "%*so0[n * %lldLL + o * %lldLL", ind + 2, "", (long long)d.oN, (long long)d.oO);
    for (int s = 0; s < d.nsp; s++) put(b, " + p%d * %lldLL", s, (long long)d.oS[s]);
    put(b, "] = ");
    if (jx_dtype_is_half(l->dtype)) jx_cpu_put_call(b, "jx_f32_to_%s", sfx);
    put(b, "acc%s;\n%*s}\n    }\n", jx_dtype_is_half(l->dtype) ? ")" : "", ind, "");
  }
  jx_cpu_call_tail(b);
}
