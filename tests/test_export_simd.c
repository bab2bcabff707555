/* The export's simd option (jx_export_options.simd, render_dot_simd.c):
 * matrix products carry AVX-512 and AVX2+FMA paths inside #if. Checked,
 * for f32 and f64 products whose shapes leave remainders everywhere (rows
 * past the last block of 10, 4 and 6, columns past the last full panel,
 * k past the last block of 128), with transposed operands, batch dims and
 * the products of a layer's gradient:
 *   - the unit still builds with the strict flags and no target flags
 *     (the paths compile away);
 *   - built with -O2 -march=native, and with -O2 -mavx2 -mfma where this
 *     CPU runs AVX2 code, the outputs are the bytes of the same build with
 *     -DJX_EXPORT_NO_SIMD (the portable loops): the paths do the portable
 *     loops' fused multiply-adds in the same order;
 *   - the outputs agree with jit's within tests/test_export.c's bound for
 *     matrix products, |export - jit| <= rtol * (|jit| + scale);
 *   - the paths are in the source only with the option, and a unit built
 *     with them really runs them (the source has the intrinsics and the
 *     build defines the target macro; which paths ran is printed). */
#include "export_harness.h"

#include <math.h>

static char tmpdir[256];
static int ncompiled;
static bool have_avx512, have_avx2; /* what cc -march=native targets here */

/* bodies: a . b;  a^T . b;  a . b^T (batched, einsum);  tanh(x . w) summed, its grad */
static jx_t mm(const jx_t *a, void *u) {
  (void)u;
  return jx_matmul(a[0], a[1]);
}
static jx_t mm_ta(const jx_t *a, void *u) {
  (void)u;
  return jx_matmul(jx_transpose(a[0], NULL), a[1]);
}
static jx_t bmm_tb(const jx_t *a, void *u) {
  (void)u;
  return jx_einsum("bik,bjk->bij", 2, a);
}
static jx_t layer_loss(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_tanh(jx_matmul(a[1], a[0])));
}

static bool probe(const char *flags, const char *macro) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "cc %s -dM -E -x c /dev/null 2>/dev/null | grep -q ' %s '", flags, macro);
  return system(cmd) == 0;
}

/* export f at args (simd option as given) into tmpdir/name with the driver
 * and the inputs; false (checked) on a failure */
static bool export_case(jx_fn *f, const jx_t *args, const char *name, bool simd) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
  mkdir(dir, 0700);
  jx_t err = jx_export_c_ex(f, args, name, dir, &(jx_export_options){.simd = simd});
  CHECKF(err == NULL, "%s: %s", name, err ? jx_error(err) : "");
  if (err) return false;
  bool ok = !export_write_inputs(dir, name, jx_tuple(jx_fn_nargs(f), args));
  CHECKF(ok, "%s: driver files", name);
  return ok;
}

/* build tmpdir/name with flags, run, return the outputs' bytes (NULL: failed, checked) */
static char *build_run(const char *name, const char *flags, const char *tag, size_t *n) {
  char path[600];
  ncompiled++;
  int rc =
      run_cmd("cd %s/%s && cc " EXPORT_STRICT " %s -o prog_%s %s.c main.c -lm && ./prog_%s in.bin out_%s.bin",
              tmpdir, name, flags, tag, name, tag, tag);
  CHECKF(rc == 0, "%s: build or run with %s", name, flags);
  if (rc) return NULL;
  snprintf(path, sizeof path, "%s/%s/out_%s.bin", tmpdir, name, tag);
  return read_file(path, n);
}

static bool source_has(const char *name, const char *what) {
  char path[600];
  size_t n;
  snprintf(path, sizeof path, "%s/%s/%s.c", tmpdir, name, name);
  char *s = read_file(path, &n);
  bool has = s && strstr(s, what);
  free(s);
  return has;
}

/* the bytes of the build with flags equal those with flags -DJX_EXPORT_NO_SIMD */
static void check_same(const char *name, const char *flags, const char *tag) {
  char off[256], toff[64];
  snprintf(off, sizeof off, "%s -DJX_EXPORT_NO_SIMD", flags);
  snprintf(toff, sizeof toff, "%s_off", tag);
  size_t n1 = 0, n2 = 0;
  char *a = build_run(name, flags, tag, &n1), *b = build_run(name, off, toff, &n2);
  CHECKF(a && b && n1 == n2 && !memcmp(a, b, n1), "%s: %s differs from the portable loops", name, flags);
  free(a), free(b);
}

/* the export's bytes against jit's result, within the matrix products' bound */
static void check_vs_jit(const char *name, const char *got, size_t ngot, jx_t want) {
  size_t nw = 0;
  char *w = leaves_bytes(want, &nw);
  CHECKF(w && ngot == nw, "%s: %zu bytes, want %zu", name, ngot, nw);
  jx_t l = jx_tree_leaves(want);
  size_t at = 0;
  for (int i = 0; w && ngot == nw && i < jx_len(l); i++) {
    jx_t x = jx_at(l, i);
    jx_dtype dt = jx_dtype_of(x);
    int64_t n = jx_size(x);
    double scale = 0, rtol = dt == JX_F32 ? 1.0 / 65536 : 1e-12;
    for (int64_t e = 0; e < n; e++) scale = fmax(scale, fabs(elem(w + at, dt, e)));
    int64_t bad = -1;
    for (int64_t e = 0; e < n && bad < 0; e++) {
      double a = elem(got + at, dt, e), b = elem(w + at, dt, e);
      if (!(fabs(a - b) <= rtol * (fabs(b) + scale))) bad = e;
    }
    CHECKF(bad < 0, "%s: leaf %d element %lld: export %.17g, jit %.17g", name, i, (long long)bad,
           bad < 0 ? 0 : elem(got + at, dt, bad), bad < 0 ? 0 : elem(w + at, dt, bad));
    at += (size_t)n * jx_dtype_size(dt);
  }
  free(w);
}

static void run_case(jx_fn *f, const jx_t *args, const char *name) {
  jx_pool_push();
  jx_fn *jf = jx_jit(f);
  jx_t want = jx_call(jf, args);
  CHECKF(jx_ok(want), "%s: jit: %s", name, jx_error(want));
  char plain[96];
  snprintf(plain, sizeof plain, "%s_plain", name);
  if (jx_ok(want) && export_case(f, args, name, true) && export_case(f, args, plain, false)) {
    CHECKF(!source_has(plain, "_mm"), "%s: intrinsics without the simd option", name);
    size_t n = 0;
    char *strict = build_run(name, "-O2", "strict", &n); /* no target flags: the paths compile away */
    free(strict);
    char *native = build_run(name, "-O2 -march=native", "native", &n);
    if (native) check_vs_jit(name, native, n, want);
    free(native);
    check_same(name, "-O2 -march=native", "native");
    if (have_avx2) check_same(name, "-O2 -mavx2 -mfma", "avx2");
  }
  jx_fn_free(jf);
  jx_pool_pop();
}

static void test_products(void) {
  uint64_t s = 7;
  const jx_dtype dts[2] = {JX_F32, JX_F64};
  for (int d = 0; d < 2; d++) {
    jx_dtype dt = dts[d];
    char name[64];
    jx_pool_push();
    /* rows 10k+4+1 (AVX-512 blocks, a 4-block, a single row) and 6k+1
     * (AVX2); columns: two full panels and a tail; k: a block of 128 and a tail */
    jx_t a[2] = {export_rand(&s, dt, 2, (int64_t[]){35, 300}), export_rand(&s, dt, 2, (int64_t[]){300, 70})};
    snprintf(name, sizeof name, "mm_%s", d ? "f64" : "f32");
    run_case(jx_fn_new(mm, 2, NULL), a, name);
    if (!d) {
      CHECKF(source_has(name, "_mm512_fmadd_ps") && source_has(name, "_mm256_fmadd_ps"),
             "%s: the simd option wrote no AVX-512 / AVX2 path", name);
    }
    jx_t t[2] = {export_rand(&s, dt, 2, (int64_t[]){129, 23}), export_rand(&s, dt, 2, (int64_t[]){129, 33})};
    snprintf(name, sizeof name, "mm_ta_%s", d ? "f64" : "f32");
    run_case(jx_fn_new(mm_ta, 2, NULL), t, name);
    jx_t bt[2] = {export_rand(&s, dt, 3, (int64_t[]){3, 17, 40}),
                  export_rand(&s, dt, 3, (int64_t[]){3, 64, 40})};
    snprintf(name, sizeof name, "bmm_tb_%s", d ? "f64" : "f32");
    run_case(jx_fn_new(bmm_tb, 2, NULL), bt, name);
    /* a layer's gradient: the x^T g product */
    jx_t l[2] = {export_rand(&s, dt, 2, (int64_t[]){50, 40}), export_rand(&s, dt, 2, (int64_t[]){24, 50})};
    snprintf(name, sizeof name, "grad_%s", d ? "f64" : "f32");
    run_case(jx_grad(jx_fn_new(layer_loss, 2, NULL), 0), l, name);
    jx_pool_pop();
  }
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/jx_export_simd_XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  have_avx512 = probe("-march=native", "__AVX512F__");
  /* the AVX2 build runs here only if this CPU has AVX2 and FMA */
  __builtin_cpu_init();
  have_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  printf("test_export_simd: -march=native builds the %s path; the AVX2 path is %s\n",
         have_avx512                          ? "AVX-512"
         : probe("-march=native", "__AVX2__") ? "AVX2"
                                              : "portable (no x86 path)",
         have_avx2 ? "built and run with -mavx2 -mfma" : "not run (this CPU lacks AVX2 or FMA)");
  test_products();
  if (!getenv("JX_KEEP_EXPORT")) run_cmd("rm -rf %s", tmpdir);
  printf("test_export_simd: %d passed, %d failed (%d programs built)\n", check_passed, check_failed,
         ncompiled);
  return check_failed != 0;
}
