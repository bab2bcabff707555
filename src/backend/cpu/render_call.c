/* The portable target's CALL kernels (export, render_portable.c): the
 * primitives jit runs as library calls (GEMM, gather, pad, ...) rendered
 * as plain C loops, with no runtime, no threads and no allocation. Each
 * computes what the eager kernel computes, in the same order per element
 * where it can: everything here is bit-identical to the eager kernel but
 * dot_general, whose sums run over the contracted index in order (0, 1,
 * ..., K-1) while the built-in GEMM blocks them (and may use FMA or a
 * BLAS): there the results agree to rounding (tests/test_export.c bounds
 * the difference by K ulp of the sum of |products|).
 *
 * A primitive without a row in `calls` is recorded as missing, and the
 * export fails naming it. */
#include "backend/cpu/render_call.h"

static const char *const sfx[] = {"b",   "i32", "i64", "u32", "f32", "f64", "bf16",
                                  "f16", "i8",  "u8",  "i16", "u16", "u64"};
/* bf16/f16 are their bit patterns (scalar_ops.h) */
static const char *const ctype[] = {"uint8_t", "int32_t",  "int64_t",  "uint32_t", "float",
                                    "double",  "uint16_t", "uint16_t", "int8_t",   "uint8_t",
                                    "int16_t", "uint16_t", "uint64_t"};
_Static_assert(sizeof sfx / sizeof *sfx == JX_DTYPE_COUNT, "a dtype without a suffix");
_Static_assert(sizeof ctype / sizeof *ctype == JX_DTYPE_COUNT, "a dtype without a C type");

static const jx_aval *bav(const jx_program *p, int b) { return &p->bufs[b].aval; }

/* the function's head, with its buffers' typed names: i<n> inputs, o<n> outputs */
static void head(sb *b, const jx_program *p, const jx_kernel *k, int id, const char *what) {
  put(b, "static int p%d_k%d(char **b, const jx_rt *rt) { /* %s */\n  (void)rt;\n", p->id, id, what);
  for (int i = 0; i < k->nin; i++) {
    jx_dtype dt = bav(p, k->ins[i])->dtype;
    put(b, "  const %s *const i%d = (const %s *)b[%d];\n  (void)i%d;\n", ctype[dt], i, ctype[dt], k->ins[i],
        i);
  }
  for (int o = 0; o < k->nout; o++) {
    jx_dtype dt = bav(p, k->outs[o])->dtype;
    /* (void): an empty output (a 0 dim) is never written */
    put(b, "  %s *const o%d = (%s *)b[%d];\n  (void)o%d;\n", ctype[dt], o, ctype[dt], k->outs[o], o);
  }
}

static void tail(sb *b) { put(b, "  return 0;\n}\n\n"); }

/* the helpers the render_<family>.c files share (render_call.h) */
const char *jx_cpu_call_ctype(jx_dtype dt) { return ctype[dt]; }
const char *jx_cpu_call_sfx(jx_dtype dt) { return sfx[dt]; }
void jx_cpu_call_head(sb *b, const jx_program *p, const jx_kernel *k, int id, const char *what) {
  head(b, p, k, id, what);
}
void jx_cpu_call_tail(sb *b) { tail(b); }

static int64_t prod(const int64_t *s, int lo, int hi) {
  int64_t n = 1;
  for (int d = lo; d < hi; d++) n *= s[d];
  return n;
}

/* ------------------------------------------------------------ dot_general */
/* A group of dims (batch, contracting, or one side's free dims) of one
 * operand, walked by a flat index f: the element offset of f is affine
 * (f * stride) when the dims merge, else it comes from a table. */
typedef struct {
  int n;
  int64_t size[JX_MAX_RANK], stride[JX_MAX_RANK];
} group;

static group make_group(const jx_aval *a, const int *dims, int n) {
  int64_t st[JX_MAX_RANK];
  jx_strides(a->ndim, a->shape, st);
  group g = {.n = 0};
  for (int i = 0; i < n; i++) {
    if (a->shape[dims[i]] == 1) continue; /* size 1: offset 0 */
    g.size[g.n] = a->shape[dims[i]], g.stride[g.n++] = st[dims[i]];
  }
  return g;
}

static int64_t group_total(const group *g) { return prod(g->size, 0, g->n); }

/* stride s when offset(f) = f * s for every f; -1 when a table is needed */
static int64_t group_affine(const group *g) {
  if (group_total(g) == 0) return 0; /* no element is read: no table (C has no 0-length arrays) */
  for (int i = 0; i + 1 < g->n; i++)
    if (g->stride[i] != g->stride[i + 1] * g->size[i + 1]) return -1;
  return g->n ? g->stride[g->n - 1] : 0;
}

/* "f * s" or "t<name>[f]", after writing the table when one is needed */
static void put_offset_table(sb *b, const group *g, const char *name) {
  if (group_affine(g) >= 0) return;
  int64_t n = group_total(g);
  put(b, "  static const int64_t t%s[%lld] = {", name, (long long)n);
  for (int64_t f = 0; f < n; f++) {
    int64_t off = 0, r = f;
    for (int d = g->n - 1; d >= 0; d--) off += (r % g->size[d]) * g->stride[d], r /= g->size[d];
    put(b, "%s%lld", f ? (f % 16 ? ", " : ",\n    ") : "", (long long)off);
  }
  put(b, "};\n");
}

static void offset_expr(char *out, size_t n, const group *g, const char *name, const char *f) {
  int64_t s = group_affine(g);
  if (s >= 0)
    snprintf(out, n, "%s * (int64_t)%lldLL", f, (long long)s);
  else
    snprintf(out, n, "t%s[%s]", name, f);
}

static void dot_dims(const jx_aval *l, const jx_aval *r, const jx_params *pa, int *lf, int *nlf, int *rf,
                     int *nrf) {
  int ul[JX_MAX_RANK] = {0}, ur[JX_MAX_RANK] = {0};
  for (int i = 0; i < pa->dot.nb; i++) ul[pa->dot.lb[i]] = ur[pa->dot.rb[i]] = 1;
  for (int i = 0; i < pa->dot.nc; i++) ul[pa->dot.lc[i]] = ur[pa->dot.rc[i]] = 1;
  *nlf = *nrf = 0;
  for (int d = 0; d < l->ndim; d++)
    if (!ul[d]) lf[(*nlf)++] = d;
  for (int d = 0; d < r->ndim; d++)
    if (!ur[d]) rf[(*nrf)++] = d;
}

/* The output, laid out (batch, lhs free, rhs free), is C[bt][m][n] =
 * sum_k A[bt][m][k] * B[bt][k][n] over flat group indices. Per batch, per
 * panel of NR columns and block of KC contracted indices, the block of B
 * is packed (contiguous, zero past the last column: any layout of B reads
 * the same afterwards), then MR rows at a time are accumulated in a local
 * MR x NR array -- constant bounds, so the compiler keeps it in vector
 * registers -- loaded from C after the first block and stored back. Each
 * element still sums its products in k order (0, 1, ..., K-1): blocking
 * changes where the partial sums live, not the order, so the result is
 * the plain loop's to the bit. Stack use: KC * NR elements (16 KB). */
enum { DOT_MR = 4, DOT_KC = 128, DOT_PANEL_BYTES = 128 };

/* `dst = src + a * bv`: where the target has a fast fused multiply-add
 * (C99's FP_FAST_FMAF / FP_FAST_FMA, e.g. -march=native on x86-64) and
 * JX_EXPORT_NO_FMA is not defined, fmaf/fma (one rounding, twice the
 * throughput: jit's GEMM uses FMA too); elsewhere, and for integers, the
 * scalar functions' multiply then add */
static void put_madd(sb *b, const char *s, const char *ind, const char *dst, const char *src, const char *a,
                     const char *bv) {
  bool f32 = !strcmp(s, "f32"), f64 = !strcmp(s, "f64");
  if (f32 || f64)
    put(b, "#if defined(%s) && !defined(JX_EXPORT_NO_FMA)\n%s%s = %s(%s, %s, %s);\n#else\n",
        f32 ? "FP_FAST_FMAF" : "FP_FAST_FMA", ind, dst, f32 ? "fmaf" : "fma", a, bv, src);
  put(b, "%s%s = ", ind, dst);
  jx_cpu_put_call(b, "add_%s", s);
  put(b, "%s, ", src);
  jx_cpu_put_call(b, "mul_%s", s);
  put(b, "%s, %s));\n", a, bv);
  if (f32 || f64) put(b, "#endif\n");
}

void jx_cpu_call_madd(sb *b, const char *s, const char *ind, const char *dst, const char *src, const char *a,
                      const char *bv) {
  put_madd(b, s, ind, dst, src, a, bv);
}

/* acc[r][j] (r < rows) updated with a<r> * b[j] for one k */
static void put_dot_update(sb *b, const char *s, int rows, int nr) {
  put(b, "          for (int64_t j = 0; j < %d; j++) {\n", nr);
  for (int r = 0; r < rows; r++) {
    char dst[32], a[8];
    snprintf(dst, sizeof dst, "acc[%d][j]", r);
    snprintf(a, sizeof a, "a%d", r);
    put_madd(b, s, "            ", dst, dst, a, "bk[j]");
  }
  put(b, "          }\n");
}

/* rows [m, m + rows) of the panel over the block [k0, k1); oam[r]: the
 * offset in A of row m + r */
static void put_dot_rows(sb *b, const char *T, const char *s, int rows, int nr, int64_t N, char (*oam)[96],
                         const char *oak) {
  put(b, "        %s acc[%d][%d];\n", T, rows, nr);
  put(b, "        for (int r = 0; r < %d; r++)\n          for (int64_t j = 0; j < %d; j++)\n", rows, nr);
  put(b, "            acc[r][j] = k0 && j < nn ? C[(m + r) * %lldLL + n0 + j] : (%s)0;\n", (long long)N, T);
  put(b,
      "        for (int64_t kk = k0; kk < k1; kk++) {\n          const %s *const bk = bp + (kk - k0) * %d;\n",
      T, nr);
  for (int r = 0; r < rows; r++) put(b, "          const %s a%d = A[%s + %s];\n", T, r, oam[r], oak);
  put_dot_update(b, s, rows, nr);
  put(b, "        }\n");
  put(b,
      "        for (int r = 0; r < %d; r++)\n          for (int64_t j = 0; j < nn; j++) C[(m + r) * %lldLL + "
      "n0 + j] = "
      "acc[r][j];\n",
      rows, (long long)N);
}

/* A few rows: C's row updated by a times B's row, k after k (the inner
 * loop over n vectorizes when B's columns are contiguous); the same sums
 * in the same order as the blocked form */
static void put_dot_small(sb *b, const char *T, const char *s, int64_t B, int64_t M, int64_t N, int64_t K,
                          const char *oab, const char *orb, const char *oam, const char *orn, const char *oak,
                          const char *ork) {
  put(b, "  for (int64_t bt = 0; bt < %lldLL; bt++) {\n", (long long)B);
  put(b, "    const %s *const A = i0 + %s;\n    const %s *const Bm = i1 + %s;\n", T, oab, T, orb);
  put(b, "    %s *const C = o0 + bt * %lldLL;\n", T, (long long)(M * N));
  put(b, "    for (int64_t f = 0; f < %lldLL; f++) C[f] = (%s)0;\n", (long long)(M * N), T);
  put(b, "    for (int64_t m = 0; m < %lldLL; m++) {\n", (long long)M);
  put(b, "      %s *const c = C + m * %lldLL;\n", T, (long long)N);
  put(b, "      for (int64_t kk = 0; kk < %lldLL; kk++) {\n", (long long)K);
  put(b, "        const %s a = A[%s + %s];\n", T, oam, oak);
  put(b, "        const %s *const r = Bm + %s;\n", T, ork);
  put(b, "        for (int64_t n = 0; n < %lldLL; n++) {\n", (long long)N);
  char bv[128];
  snprintf(bv, sizeof bv, "r[%s]", orn);
  put_madd(b, s, "          ", "c[n]", "c[n]", "a", bv);
  put(b, "        }\n      }\n    }\n  }\n");
}

/* bf16/f16 operands (#19): each element's products summed in f32 in k
 * order over the whole of k (no blocking: a partial sum stored in the
 * 16-bit output would be rounded twice), then rounded once to the output
 * dtype, or stored as f32 (preferred_element_type). The eager kernels
 * (AMX tiles, or the f32 GEMM on widened operands) also sum in f32 and
 * round once; their order differs, so the results agree to rounding. */
static void put_dot_half(sb *b, jx_dtype dt, jx_dtype ot, int64_t B, int64_t M, int64_t N, int64_t K,
                         const char *oab, const char *orb, const char *oam, const char *orn, const char *oak,
                         const char *ork) {
  enum { NR = 32 };
  const char *T = ctype[dt], *OT = ot == JX_F32 ? "float" : ctype[ot];
  put(b, "  for (int64_t bt = 0; bt < %lldLL; bt++) {\n", (long long)B);
  put(b, "    const %s *const A = i0 + %s;\n    const %s *const Bm = i1 + %s;\n", T, oab, T, orb);
  put(b, "    %s *const C = o0 + bt * %lldLL;\n", OT, (long long)(M * N));
  put(b, "    for (int64_t n0 = 0; n0 < %lldLL; n0 += %d) {\n", (long long)N, NR);
  put(b, "      const int64_t nn = %lldLL - n0 < %d ? %lldLL - n0 : %d;\n", (long long)N, NR, (long long)N,
      NR);
  put(b, "      for (int64_t m = 0; m < %lldLL; m++) {\n        float acc[%d];\n", (long long)M, NR);
  put(b, "        for (int64_t j = 0; j < %d; j++) acc[j] = 0.0f;\n", NR);
  put(b, "        for (int64_t kk = 0; kk < %lldLL; kk++) {\n          const float a = ", (long long)K);
  jx_cpu_put_call(b, "jx_%s_to_f32", sfx[dt]);
  put(b, "A[%s + %s]);\n          for (int64_t j = 0; j < nn; j++) {\n", oam, oak);
  put(b, "            const int64_t n = n0 + j;\n            const float bv = ");
  jx_cpu_put_call(b, "jx_%s_to_f32", sfx[dt]);
  put(b, "Bm[%s + %s]);\n", ork, orn);
  put_madd(b, "f32", "            ", "acc[j]", "acc[j]", "a", "bv");
  put(b, "          }\n        }\n        for (int64_t j = 0; j < nn; j++) C[m * %lldLL + n0 + j] = ",
      (long long)N);
  if (ot == JX_F32) {
    put(b, "acc[j];\n");
  } else {
    jx_cpu_put_call(b, "jx_f32_to_%s", sfx[ot]);
    put(b, "acc[j]);\n");
  }
  put(b, "      }\n    }\n  }\n");
}

static void put_dot(sb *b, const jx_program *p, const jx_kernel *k, int id) {
  const jx_aval *la = bav(p, k->ins[0]), *ra = bav(p, k->ins[1]);
  const jx_params *pa = &k->call.params;
  int lf[JX_MAX_RANK], rf[JX_MAX_RANK], nlf, nrf, lb[JX_MAX_RANK], rb[JX_MAX_RANK], lc[JX_MAX_RANK],
      rc[JX_MAX_RANK];
  dot_dims(la, ra, pa, lf, &nlf, rf, &nrf);
  for (int i = 0; i < pa->dot.nb; i++) lb[i] = pa->dot.lb[i], rb[i] = pa->dot.rb[i];
  for (int i = 0; i < pa->dot.nc; i++) lc[i] = pa->dot.lc[i], rc[i] = pa->dot.rc[i];
  group gab = make_group(la, lb, pa->dot.nb), grb = make_group(ra, rb, pa->dot.nb);
  group gam = make_group(la, lf, nlf), grn = make_group(ra, rf, nrf);
  group gak = make_group(la, lc, pa->dot.nc), grk = make_group(ra, rc, pa->dot.nc);
  int64_t B = group_total(&gab), M = group_total(&gam), N = group_total(&grn), K = group_total(&gak);
  jx_dtype dt = la->dtype;
  const char *s = sfx[dt], *T = ctype[dt];
  head(b, p, k, id, "dot_general");
  put_offset_table(b, &gab, "ab");
  put_offset_table(b, &grb, "rb");
  put_offset_table(b, &gam, "am");
  put_offset_table(b, &grn, "rn");
  put_offset_table(b, &gak, "ak");
  put_offset_table(b, &grk, "rk");
  char oab[96], orb[96], oam[JX_DOT_SIMD_ROWS][96], orn[96], oak[96], ork[96];
  offset_expr(oab, sizeof oab, &gab, "ab", "bt");
  offset_expr(orb, sizeof orb, &grb, "rb", "bt");
  for (int r = 0; r < JX_DOT_SIMD_ROWS; r++) {
    char row[32];
    snprintf(row, sizeof row, "(m + %d)", r);
    offset_expr(oam[r], sizeof oam[r], &gam, "am", row);
  }
  offset_expr(orn, sizeof orn, &grn, "rn", "n");
  offset_expr(oak, sizeof oak, &gak, "ak", "kk");
  offset_expr(ork, sizeof ork, &grk, "rk", "kk");
  if (jx_dtype_is_half(dt)) {
    put_dot_half(b, dt, bav(p, k->outs[0])->dtype, B, M, N, K, oab, orb, oam[0], orn, oak, ork);
    tail(b);
    return;
  }
  if (M < 2 * DOT_MR) { /* a few rows (batch 1): packing B would cost more than it saves */
    put_dot_small(b, T, s, B, M, N, K, oab, orb, oam[0], orn, oak, ork);
    tail(b);
    return;
  }
  const int nr = DOT_PANEL_BYTES / (int)jx_dtype_size(dt);
  put(b, "  for (int64_t bt = 0; bt < %lldLL; bt++) {\n", (long long)B);
  put(b, "    const %s *const A = i0 + %s;\n    const %s *const Bm = i1 + %s;\n", T, oab, T, orb);
  put(b, "    %s *const C = o0 + bt * %lldLL;\n", T, (long long)(M * N));
  put(b, "    if (%lldLL == 0) for (int64_t f = 0; f < %lldLL; f++) C[f] = (%s)0;\n", (long long)K,
      (long long)(M * N), T);
  if (b->openmp && N > nr && M * N * K >= (1 << 16)) put(b, JX_OMP_FOR(" schedule(static)"));
  put(b, "    for (int64_t n0 = 0; n0 < %lldLL; n0 += %d) {\n", (long long)N, nr);
  put(b, "      const int64_t nn = %lldLL - n0 < %d ? %lldLL - n0 : %d;\n", (long long)N, nr, (long long)N,
      nr);
  put(b, "      for (int64_t k0 = 0; k0 < %lldLL; k0 += %d) {\n", (long long)K, DOT_KC);
  put(b, "        const int64_t k1 = k0 + %d < %lldLL ? k0 + %d : %lldLL;\n", DOT_KC, (long long)K, DOT_KC,
      (long long)K);
  put(b, "        %s bp[%d];\n", T, DOT_KC * nr);
  put(b, "        for (int64_t kk = k0; kk < k1; kk++)\n          for (int64_t j = 0; j < %d; j++) {\n", nr);
  put(b, "            const int64_t n = n0 + j;\n");
  put(b, "            bp[(kk - k0) * %d + j] = j < nn ? Bm[%s + %s] : (%s)0;\n          }\n", nr, ork, orn,
      T);
  jx_cpu_put_dot_simd(b, dt, M, N, nr, (const char(*)[96])oam, oak);
  /* the portable rows, MR at a time then one by one: one block, the
   * statement of the simd paths' `else` */
  put(b, "        {\n        int64_t m = 0;\n");
  put(b, "        for (; m + %d <= %lldLL; m += %d) {\n", DOT_MR, (long long)M, DOT_MR);
  put_dot_rows(b, T, s, DOT_MR, nr, N, oam, oak);
  put(b, "        }\n        for (; m < %lldLL; m++) {\n", (long long)M);
  put_dot_rows(b, T, s, 1, nr, N, oam, oak);
  put(b, "        }\n        }\n      }\n    }\n  }\n");
  tail(b);
}

/* ---------------------------------------------------------- argmax/argmin */
/* The first extreme wins; for floats NaN beats everything and the first
 * NaN wins (as the eager kernel, backend/cpu/reduce.c). */
static void put_arg(sb *b, const jx_program *p, const jx_kernel *k, int id) {
  const jx_aval *x = bav(p, k->ins[0]);
  int ax = k->call.params.arg.axis;
  int64_t outer = prod(x->shape, 0, ax), n = x->shape[ax], inner = prod(x->shape, ax + 1, x->ndim);
  bool mx = k->call.prim == JX_P_argmax, fl = jx_dtype_is_float(x->dtype);
  jx_dtype it = bav(p, k->outs[0])->dtype;
  head(b, p, k, id, mx ? "argmax" : "argmin");
  put(b, "  for (int64_t o = 0; o < %lldLL; o++)\n    for (int64_t i = 0; i < %lldLL; i++) {\n",
      (long long)outer, (long long)inner);
  put(b, "      const %s *const x = i0 + o * %lldLL + i;\n", ctype[x->dtype], (long long)(n * inner));
  /* bf16/f16 (#19) compare as the floats they hold, not as their bits */
  const bool half = jx_dtype_is_half(x->dtype);
  const char *vt = half ? "float" : ctype[x->dtype];
  put(b, "      %s best = ", vt);
  if (half) jx_cpu_put_call(b, "jx_%s_to_f32", sfx[x->dtype]);
  put(b, "x[0]%s;\n      int64_t at = 0;\n", half ? ")" : "");
  put(b, "      for (int64_t j = 1; j < %lldLL; j++) {\n        const %s v = ", (long long)n, vt);
  if (half) jx_cpu_put_call(b, "jx_%s_to_f32", sfx[x->dtype]);
  put(b, "x[j * %lldLL]%s;\n", (long long)inner, half ? ")" : "");
  if (fl)
    put(b, "        if (v %s best || (v != v && best == best)) best = v, at = j;\n", mx ? ">" : "<");
  else
    put(b, "        if (v %s best) best = v, at = j;\n", mx ? ">" : "<");
  put(b, "      }\n      o0[o * %lldLL + i] = (%s)at;\n    }\n", (long long)inner, ctype[it]);
  tail(b);
}

/* -------------------------------------------------------------------- pad */
/* fill with the padding value, then each operand element to its place
 * (negative padding crops: places outside are skipped) */
static void put_pad(sb *b, const jx_program *p, const jx_kernel *k, int id) {
  const jx_aval *x = bav(p, k->ins[0]), *o = bav(p, k->outs[0]);
  const jx_params *pa = &k->call.params;
  int64_t xs[JX_MAX_RANK], os[JX_MAX_RANK];
  jx_strides(x->ndim, x->shape, xs);
  jx_strides(o->ndim, o->shape, os);
  head(b, p, k, id, "pad");
  put(b, "  for (int64_t f = 0; f < %lldLL; f++) o0[f] = i1[0];\n", (long long)jx_aval_size(o));
  put(b, "  {\n");
  for (int d = 0; d < x->ndim; d++) {
    put(b, "%*sfor (int64_t j%d = 0; j%d < %lldLL; j%d++) {\n", 2 + 2 * d, "", d, d, (long long)x->shape[d],
        d);
    put(b, "%*sconst int64_t q%d = (int64_t)%lldLL + j%d * %lldLL;\n", 4 + 2 * d, "", d,
        (long long)pa->pad.lo[d], d, (long long)(pa->pad.interior[d] + 1));
    put(b, "%*sif (q%d < 0 || q%d >= %lldLL) continue;\n", 4 + 2 * d, "", d, d, (long long)o->shape[d]);
  }
  put(b, "%*so0[0", 2 + 2 * x->ndim, "");
  for (int d = 0; d < x->ndim; d++) put(b, " + q%d * %lldLL", d, (long long)os[d]);
  put(b, "] = i0[0");
  for (int d = 0; d < x->ndim; d++) put(b, " + j%d * %lldLL", d, (long long)xs[d]);
  put(b, "];\n");
  for (int d = x->ndim - 1; d >= 0; d--) put(b, "%*s}\n", 2 + 2 * d, "");
  put(b, "  }\n");
  tail(b);
}

/* ------------------------------------------------------------ concatenate */
static void put_concat(sb *b, const jx_program *p, const jx_kernel *k, int id) {
  const jx_aval *o = bav(p, k->outs[0]);
  int ax = k->call.params.concat.axis;
  int64_t outer = prod(o->shape, 0, ax), inner = prod(o->shape, ax + 1, o->ndim),
          es = jx_dtype_size(o->dtype);
  head(b, p, k, id, "concatenate");
  int64_t at = 0;
  for (int i = 0; i < k->nin; i++) {
    int64_t ai = bav(p, k->ins[i])->shape[ax];
    if (ai * inner > 0)
      put(b,
          "  for (int64_t o = 0; o < %lldLL; o++) memcpy(o0 + (o * %lldLL + %lldLL) * %lldLL, i%d + o * "
          "%lldLL, %lldu);\n",
          (long long)outer, (long long)o->shape[ax], (long long)at, (long long)inner, i,
          (long long)(ai * inner), (long long)(ai * inner * es));
    at += ai;
  }
  tail(b);
}

/* ---------------------------------------------------- gather, scatter_add */
/* an index clamped into [0, n), as the primitive's clip mode (the public
 * ops wrap negative indices before they bind it) */
static void put_index(sb *b, jx_dtype idt, int64_t n) {
  if (idt == JX_U64) /* saturating, as jx_index_load */
    put(b, "      int64_t r = i1[j] > 0x7fffffffffffffffULL ? INT64_MAX : (int64_t)i1[j];\n");
  else
    put(b, "      int64_t r = (int64_t)i1[j];\n");
  put(b, "      r = r < 0 ? 0 : r >= %lldLL ? %lldLL : r;\n", (long long)n, (long long)(n - 1));
}

static void put_gather(sb *b, const jx_program *p, const jx_kernel *k, int id) {
  const jx_aval *x = bav(p, k->ins[0]);
  int ax = jx_gather_take_axis(&k->call.params, x, bav(p, k->ins[1]), NULL);
  if (ax < 0) { /* general dimension numbers (render_gather.c) */
    jx_cpu_render_gather_general(b, p, k, id);
    return;
  }
  int64_t outer = prod(x->shape, 0, ax), n = x->shape[ax], inner = prod(x->shape, ax + 1, x->ndim);
  int64_t ni = jx_aval_size(bav(p, k->ins[1])), es = jx_dtype_size(x->dtype);
  head(b, p, k, id, "gather");
  if (outer * ni * inner > 0) {
    put(b, "  for (int64_t o = 0; o < %lldLL; o++)\n    for (int64_t j = 0; j < %lldLL; j++) {\n",
        (long long)outer, (long long)ni);
    put_index(b, bav(p, k->ins[1])->dtype, n);
    put(b, "      memcpy(o0 + (o * %lldLL + j) * %lldLL, i0 + (o * %lldLL + r) * %lldLL, %lldu);\n    }\n",
        (long long)ni, (long long)inner, (long long)n, (long long)inner, (long long)(inner * es));
  }
  tail(b);
}

/* take's transpose: the operand, then each update added in index order
 * (duplicates too, as the eager kernel); other scatters are refused */
static void put_scatter(sb *b, const jx_program *p, const jx_kernel *k, int id) {
  const jx_aval *o = bav(p, k->outs[0]);
  /* the take form adds with add_<dtype>: bool's is xor, the eager scatter's or (the general form's) */
  int ax = k->call.prim == JX_P_scatter_add && o->dtype != JX_BOOL
               ? jx_gather_take_axis(&k->call.params, o, bav(p, k->ins[1]), bav(p, k->ins[2]))
               : -1;
  if (ax < 0) { /* general dimension numbers, the other combiners (render_gather.c) */
    jx_cpu_render_scatter_general(b, p, k, id);
    return;
  }
  int64_t outer = prod(o->shape, 0, ax), n = o->shape[ax], inner = prod(o->shape, ax + 1, o->ndim);
  int64_t ni = jx_aval_size(bav(p, k->ins[1]));
  head(b, p, k, id, "scatter_add");
  put(b, "  for (int64_t f = 0; f < %lldLL; f++) o0[f] = i0[f];\n", (long long)jx_aval_size(o));
  if (outer * ni * inner > 0) {
    put(b, "  for (int64_t o = 0; o < %lldLL; o++)\n    for (int64_t j = 0; j < %lldLL; j++) {\n",
        (long long)outer, (long long)ni);
    put_index(b, bav(p, k->ins[1])->dtype, n);
    put(b, "      %s *const d = o0 + (o * %lldLL + r) * %lldLL;\n", ctype[o->dtype], (long long)n,
        (long long)inner);
    put(b, "      const %s *const u = i2 + (o * %lldLL + j) * %lldLL;\n", ctype[o->dtype], (long long)ni,
        (long long)inner);
    put(b, "      for (int64_t i = 0; i < %lldLL; i++) d[i] = ", (long long)inner);
    jx_cpu_put_call(b, "add_%s", sfx[o->dtype]);
    put(b, "d[i], u[i]);\n    }\n");
  }
  tail(b);
}

/* ------------------------------------------------------------ threefry2x32 */
/* element strides of x broadcast (numpy rules, aligned right) to out */
static void bcast_strides(const jx_aval *x, const jx_aval *out, int64_t *st) {
  int off = out->ndim - x->ndim;
  int64_t s = 1;
  for (int d = out->ndim - 1; d >= 0; d--) {
    int k = d - off;
    st[d] = k < 0 || x->shape[k] == 1 ? 0 : s;
    if (k >= 0) s *= x->shape[k];
  }
}

/* u32[2, shape]: the operands broadcast to shape (each a scalar or laid
 * out by its broadcast strides) */
static void put_threefry(sb *b, const jx_program *p, const jx_kernel *k, int id) {
  const jx_aval *o = bav(p, k->outs[0]);
  jx_aval s = {.dtype = JX_U32, .ndim = (int8_t)(o->ndim - 1)};
  memcpy(s.shape, o->shape + 1, sizeof(int64_t) * (size_t)s.ndim);
  int64_t n = jx_aval_size(&s);
  head(b, p, k, id, "threefry2x32");
  put(b, "  for (int64_t f = 0; f < %lldLL; f++) {\n", (long long)n);
  for (int i = 0; i < 4; i++) {
    int64_t st[JX_MAX_RANK];
    bcast_strides(bav(p, k->ins[i]), &s, st);
    put(b, "    const int64_t a%d = 0", i);
    int64_t inner = 1;
    for (int d = s.ndim - 1; d >= 0; d--) {
      if (st[d] && s.shape[d] > 1)
        put(b, " + (f / %lldLL %% %lldLL) * %lldLL", (long long)inner, (long long)s.shape[d],
            (long long)st[d]);
      inner *= s.shape[d];
    }
    put(b, ";\n");
  }
  put(b, "    ");
  jx_cpu_put_call(b, "jx_threefry2x32");
  put(b, "i0[a0], i1[a1], i2[a2], i3[a3], &o0[f], &o0[%lldLL + f]);\n  }\n", (long long)n);
  tail(b);
}

static const struct {
  jx_prim prim;
  void (*render)(sb *, const jx_program *, const jx_kernel *, int);
} calls[] = {
    {JX_P_dot_general, put_dot},
    {JX_P_argmax, put_arg},
    {JX_P_argmin, put_arg},
    {JX_P_pad, put_pad},
    {JX_P_concatenate, put_concat},
    {JX_P_gather, put_gather},
    {JX_P_scatter_add, put_scatter},
    {JX_P_threefry2x32, put_threefry},
    /* round 2's primitives, one file per family */
    {JX_P_conv_general_dilated, jx_cpu_render_conv},
    {JX_P_reduce_window_sum, jx_cpu_render_window},
    {JX_P_reduce_window_max, jx_cpu_render_window},
    {JX_P_reduce_window_min, jx_cpu_render_window},
    {JX_P_select_and_gather_add, jx_cpu_render_window},
    {JX_P_select_and_scatter_add, jx_cpu_render_window},
    {JX_P_scatter, put_scatter},
    {JX_P_scatter_mul, put_scatter},
    {JX_P_scatter_min, put_scatter},
    {JX_P_scatter_max, put_scatter},
    {JX_P_dynamic_slice, jx_cpu_render_dslice},
    {JX_P_dynamic_update_slice, jx_cpu_render_dslice},
    {JX_P_sort, jx_cpu_render_sort},
    {JX_P_argsort, jx_cpu_render_sort},
    {JX_P_cumsum, jx_cpu_render_cumulative},
    {JX_P_cumprod, jx_cpu_render_cumulative},
    {JX_P_cummax, jx_cpu_render_cumulative},
    {JX_P_cummin, jx_cpu_render_cumulative},
    {JX_P_cumlogsumexp, jx_cpu_render_cumulative},
    {JX_P_reduce_prod, jx_cpu_render_reduce_prod},
    {JX_P_debug_print, jx_cpu_render_print},
    {JX_P_svd, jx_cpu_render_svd},
};

int64_t jx_cpu_call_scratch(const jx_program *p, const jx_kernel *k) {
  if (k->kind != JX_LK_CALL) return 0;
  if (k->call.prim == JX_P_select_and_scatter_add && jx_dtype_is_half(bav(p, k->ins[1])->dtype))
    return 4 * jx_aval_size(bav(p, k->ins[1])); /* its f32 sums (render_window.c) */
  if (k->call.prim == JX_P_svd) return jx_cpu_svd_scratch(p, k);
  return k->call.prim == JX_P_sort || k->call.prim == JX_P_argsort ? jx_cpu_sort_scratch(p, k) : 0;
}

void jx_cpu_render_call(sb *b, const jx_program *p, const jx_kernel *k, int id) {
  for (size_t i = 0; i < sizeof calls / sizeof *calls; i++)
    if (calls[i].prim == k->call.prim) {
      calls[i].render(b, p, k, id);
      return;
    }
  jx_cpu_no_rendering(b->need, k->call.prim);
}
