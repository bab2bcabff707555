/* The export's simd option (jx_export_options.simd): matrix products carry
 * x86 paths beside the portable loops, chosen by the compiler building the
 * exported unit from its target macros -- AVX-512F, else AVX2 with FMA --
 * so one file runs at jit's speed where built with -march=native and
 * stays strict C99 everywhere else (the paths are inside #if).
 *
 * A path replaces only the portable kernel's row loops over a full panel
 * of NR columns (render_call.c's put_dot): the packed block of B and the
 * blocking over k stay the portable code's. Each
 * output element gets one accumulator, updated with one fused
 * multiply-add per k in k order, loaded from C after the first block:
 * exactly the portable loop's arithmetic when it uses fmaf/fma, so the
 * paths exist only where that loop does (FP_FAST_FMAF / FP_FAST_FMA and
 * no JX_EXPORT_NO_FMA) and the results are the portable build's to the
 * bit. JX_EXPORT_NO_SIMD turns them off. What they add is register
 * blocking: 10 rows x 2 vectors (20 of AVX-512's 32 registers; at 12
 * rows gcc 12 spilled a B vector and ran 25% slower), or 6 rows x 2
 * vectors per half panel (12 of AVX2's 16). */
#include "backend/cpu/render_call.h"

typedef struct {
  const char *guard;          /* the #if condition, after the common part */
  const char *vt, *pfx, *sfx; /* vector type, intrinsic prefix and suffix */
  int width;                  /* vector bytes */
  int rows;                   /* rows per block */
} isa;

static const isa isas[] = {
    {"defined(__AVX512F__)", "__m512", "_mm512_", "ps", 64, 10},
    {"defined(__AVX2__) && defined(__FMA__)", "__m256", "_mm256_", "ps", 32, 6},
};

/* one block of rows x 2 vectors at column offset `col` of the panel */
static void put_block(sb *b, const isa *x, int R, const char *vt, const char *sf, const char *T, int lanes,
                      int nr, int64_t N, const char (*oam)[96], const char *oak, const char *col) {
  put(b, "            %s", vt);
  for (int r = 0; r < R; r++) put(b, "%sc%d_0, c%d_1", r ? ", " : " ", r, r);
  put(b, ";\n            if (k0) {\n");
  for (int r = 0; r < R; r++)
    for (int v = 0; v < 2; v++)
      put(b, "              c%d_%d = %sloadu_%s(C + (m + %d) * %lldLL + n0 + %s + %d);\n", r, v, x->pfx, sf,
          r, (long long)N, col, v * lanes);
  put(b, "            } else {\n");
  for (int r = 0; r < R; r++) put(b, "              c%d_0 = c%d_1 = %ssetzero_%s();\n", r, r, x->pfx, sf);
  put(b, "            }\n            for (int64_t kk = k0; kk < k1; kk++) {\n");
  put(b, "              const %s *const bk = bp + (kk - k0) * %d + %s;\n", T, nr, col);
  put(b, "              const %s b0 = %sloadu_%s(bk), b1 = %sloadu_%s(bk + %d);\n              %s a;\n", vt,
      x->pfx, sf, x->pfx, sf, lanes, vt);
  for (int r = 0; r < R; r++)
    put(b,
        "              a = %sset1_%s(A[%s + %s]);\n              c%d_0 = %sfmadd_%s(a, b0, c%d_0);\n"
        "              c%d_1 = %sfmadd_%s(a, b1, c%d_1);\n",
        x->pfx, sf, oam[r], oak, r, x->pfx, sf, r, r, x->pfx, sf, r);
  put(b, "            }\n");
  for (int r = 0; r < R; r++)
    for (int v = 0; v < 2; v++)
      put(b, "            %sstoreu_%s(C + (m + %d) * %lldLL + n0 + %s + %d, c%d_%d);\n", x->pfx, sf, r,
          (long long)N, col, v * lanes, r, v);
}

void jx_cpu_put_dot_simd(sb *b, jx_dtype dt, int64_t M, int64_t N, int nr, const char (*oam)[96],
                         const char *oak) {
  /* N < nr: no panel is full, the paths would never run */
  if (!b->simd || (dt != JX_F32 && dt != JX_F64) || N < nr) return;
  const bool f64 = dt == JX_F64;
  const char *T = f64 ? "double" : "float", *sf = f64 ? "pd" : "ps";
  int emitted = 0;
  for (size_t i = 0; i < sizeof isas / sizeof *isas; i++) {
    const isa *x = &isas[i];
    if (M < x->rows) continue;
    char vt[16];
    snprintf(vt, sizeof vt, "%s%s", x->vt, f64 ? "d" : "");
    const int lanes = x->width / (int)jx_dtype_size(dt), halves = nr / (2 * lanes);
    put(b, "#%s !defined(JX_EXPORT_NO_SIMD) && !defined(JX_EXPORT_NO_FMA) && defined(%s) && %s\n",
        emitted++ ? "elif" : "if", f64 ? "FP_FAST_FMA" : "FP_FAST_FMAF", x->guard);
    /* blocks of x->rows rows, then of 4, then single rows: every row of
     * a full panel on the vector path, every loop bound a constant */
    const int sizes[3] = {x->rows, 4, 1};
    int64_t m0 = 0;
    put(b, "        if (nn == %d) {\n", nr);
    for (int z = 0; z < 3; z++) {
      const int64_t m1 = m0 + (M - m0) / sizes[z] * sizes[z];
      if (m1 == m0) continue;
      put(b, "          for (int64_t m = %lldLL; m < %lldLL; m += %d) {\n", (long long)m0, (long long)m1,
          sizes[z]);
      if (halves > 1) put(b, "           for (int64_t h = 0; h < %d; h += %d) {\n", nr, 2 * lanes);
      put_block(b, x, sizes[z], vt, sf, T, lanes, nr, N, oam, oak, halves > 1 ? "h" : "0");
      if (halves > 1) put(b, "           }\n");
      put(b, "          }\n");
      m0 = m1;
    }
    put(b, "        } else\n");
  }
  if (emitted) put(b, "#endif\n");
}

/* the include the paths need, at the top of the unit (simd option) */
void jx_cpu_put_simd_include(sb *b) {
  put(b, "#if !defined(JX_EXPORT_NO_SIMD) && (defined(__AVX512F__) || (defined(__AVX2__) && "
         "defined(__FMA__)))\n#include <immintrin.h>\n#endif\n");
}
