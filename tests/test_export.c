/* jx_export_c (issue #20): functions exported as dependency-free C.
 *
 * Each case is exported, built with the strict flags of the issue
 * (cc -std=c99 -pedantic -Wall -Wextra -Werror -O2, no include path to jx,
 * -lm only) together with a standalone driver (export_harness.h), run on
 * the same inputs as jx's jit, and compared:
 *   - bit for bit where the export keeps the jit's operation order: every
 *     elementwise op (the same scalar functions), reductions (the same
 *     double accumulators, in the same order), layout, gather/scatter,
 *     argmax, pad, concatenate, threefry random bits, loops;
 *   - within rounding for programs with a matrix product: the export sums
 *     each dot in index order, the jit's GEMM blocks the sum (and uses FMA
 *     or a BLAS): |export - jit| <= rtol * (|jit| + scale), rtol = 2^-16
 *     for f32 (about 500 ulp of the output, 4 K ulp of the sum for the
 *     widths here) and 1e-12 for f64, where scale is the output's largest
 *     magnitude (cancellation in a sum can leave an element far smaller than
 *     its terms).
 * The corpus is a representative set of tests/test_jit.c's programs (see
 * `cases`); a value_and_grad + adam training step runs 100 steps in the
 * standalone program and must end with jx's own weights within 1e-6
 * relative. The same files also build with clang (when installed), with
 * -m32 (compile only: no 32-bit libc here) and run under
 * -fsanitize=address,undefined. Programs the exporter cannot handle give
 * an error value and write no file. */
#include "export_harness.h"
#include "seed_mlp.h"

#include <math.h>

static char tmpdir[256];
static int ncompiled;

/* ------------------------------------------------------------- programs */
static jx_t ew_chain(const jx_t *a, void *u) { /* x*sin(x) + exp(-x^2) / (1 + |x|), logistic, floor */
  (void)u;
  jx_t x = a[0];
  jx_t r =
      jx_add(jx_mul(x, jx_sin(x)), jx_div(jx_exp(jx_neg(jx_square(x))), jx_add(jx_scalar(1), jx_abs(x))));
  return jx_tuple(2, (jx_t[]){jx_add(r, jx_sigmoid(x)), jx_floor(jx_mul(x, jx_scalar(3)))});
}

static jx_t reductions(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0];
  return JX_TUPLE(jx_sum_axes(x, 1, (int[]){0}, false), jx_max_axes(x, 1, (int[]){1}, true), jx_mean(x),
                  jx_min_axes(x, 2, (int[]){0, 1}, false), jx_logsumexp(x, 1));
}

static jx_t empty_sums(const jx_t *a, void *u) { /* x f32[0, 4]: sums over nothing, a map over nothing */
  (void)u;
  return JX_TUPLE(jx_sum_axes(a[0], 1, (int[]){0}, false), jx_exp(a[0]),
                  jx_sum_axes(a[0], 1, (int[]){1}, false));
}

static jx_t empty_dot(const jx_t *a, void *u) { /* x f32[0, 3]: an empty temporary, no workspace */
  (void)u;
  jx_t w = jx_ones(JX_F32, 2, (int64_t[]){3, 2});
  return jx_tanh(jx_add(jx_matmul(a[0], w), jx_scalar(1)));
}

static jx_t layout(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0]; /* f32[4, 6] */
  jx_t t = jx_transpose(x, NULL);
  jx_t s = jx_slice(x, (int64_t[]){1, 0}, (int64_t[]){4, 6}, (int64_t[]){2, 3});
  jx_t c = jx_concatenate(2, (jx_t[]){x, jx_mul(x, x)}, 1);
  jx_t r = jx_reshape(t, 3, (int64_t[]){2, 3, 4});
  jx_t bc = jx_add(jx_broadcast_to(jx_sum_axes(x, 1, (int[]){1}, true), 2, (int64_t[]){4, 6}), x);
  return JX_TUPLE(t, s, c, r, bc);
}

static jx_t mlp(const jx_t *a, void *u) {
  (void)u;
  return seed_predict(a[0], a[1]);
}

static jx_t closed_mlp(const jx_t *a, void *u) { return seed_predict((jx_t)u, a[0]); }

static jx_t indexing(const jx_t *a, void *u) { /* x f32[5, 3], idx i32[4] */
  (void)u;
  jx_t x = a[0], idx = a[1];
  jx_t tk = jx_take(x, idx, 0);
  jx_t am = jx_argmax(x, 1, false), an = jx_argmin(x, 0, true);
  jx_t oh = jx_one_hot(idx, 5);
  return JX_TUPLE(tk, am, an, oh);
}

static jx_t take_sum(const jx_t *a, void *u) { /* the grad is a scatter_add; slice's grad a pad */
  (void)u;
  jx_t x = a[0], idx = a[1];
  jx_t s = jx_slice(x, (int64_t[]){1, 0}, (int64_t[]){5, 3}, (int64_t[]){2, 1});
  return jx_add(jx_sum(jx_sin(jx_take(x, idx, 0))), jx_sum(jx_mul(s, s)));
}

static jx_t scan_step(const jx_t *a, void *u) { /* (carry, x) -> (carry', y) */
  (void)u;
  jx_t c = jx_add(jx_mul(a[0], jx_scalar(0.5)), jx_tanh(a[1]));
  return JX_TUPLE(c, jx_mul(c, a[1]));
}
static jx_t scan_prog(const jx_t *a, void *u) {
  jx_fn *step = u;
  return jx_scan(step, a[0], a[1]);
}

static jx_t fori_body(const jx_t *a, void *u) { /* (i, (x, s)) */
  (void)u;
  jx_t x = jx_at(a[1], 0), s = jx_at(a[1], 1);
  jx_t xn = jx_add(jx_mul(x, jx_scalar(0.9)), jx_astype(a[0], JX_F32));
  return JX_TUPLE(xn, jx_add(s, jx_sum(xn)));
}
static jx_t fori_prog(const jx_t *a, void *u) {
  return jx_fori_loop(0, 7, u, JX_TUPLE(a[0], jx_zeros(JX_F32, 0, NULL)));
}

static jx_t while_cond(const jx_t *a, void *u) {
  (void)u;
  return jx_lt(jx_sum(jx_at(a[0], 0)), jx_scalar(100));
}
static jx_t while_body(const jx_t *a, void *u) {
  (void)u;
  jx_t x = jx_at(a[0], 0), n = jx_at(a[0], 1);
  return JX_TUPLE(jx_add(jx_mul(x, jx_scalar(1.5)), jx_scalar(1)), jx_add(n, jx_ones(JX_I32, 0, NULL)));
}
static jx_fn *g_while_cond, *g_while_body;
static jx_t while_prog(const jx_t *a, void *u) {
  (void)u;
  return jx_while_loop(g_while_cond, g_while_body, JX_TUPLE(a[0], jx_zeros(JX_I32, 0, NULL)));
}

static jx_t br_true(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(a[0], a[0]);
}
static jx_t br_false(const jx_t *a, void *u) {
  (void)u;
  return jx_sub(a[0], jx_scalar(1));
}
static jx_fn *g_true, *g_false;
static jx_t cond_prog(const jx_t *a, void *u) {
  (void)u;
  jx_t c1 = jx_cond(jx_gt(jx_sum(a[0]), jx_scalar(0)), g_true, g_false, 1, a);
  jx_t c2 = jx_cond(jx_lt(jx_sum(a[0]), jx_scalar(0)), g_true, g_false, 1, a);
  return JX_TUPLE(c1, c2);
}

static jx_t random_prog(const jx_t *a, void *u) { /* key u32[2] */
  (void)u;
  jx_t k = jx_random_fold_in(a[0], 7);
  return JX_TUPLE(jx_random_uniform(k, JX_F32, 2, (int64_t[]){3, 5}, -1, 1),
                  jx_random_bits(a[0], 1, (int64_t[]){4}), jx_random_normal(k, JX_F64, 1, (int64_t[]){6}));
}

static jx_t int_prog(const jx_t *a, void *u) { /* i32[6], f64[6], bool[6] */
  (void)u;
  jx_t i = a[0], d = a[1], b = a[2];
  jx_t q = jx_add(jx_mul(i, i), jx_astype(jx_floor(d), JX_I32));
  jx_t w = jx_where(b, d, jx_neg(jx_log1p(jx_abs(d))));
  return JX_TUPLE(q, w, jx_logical_not(jx_where(b, jx_gt(i, jx_scalar(0)), b)), jx_sum(i),
                  jx_astype(i, JX_I64));
}

static jx_t passthrough(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(a[0], jx_add(a[0], a[1]), a[0], a[1]);
}

static jx_t identity(const jx_t *a, void *u) { /* no kernel at all */
  (void)u;
  return JX_TUPLE(a[0], a[0]);
}

static jx_t per_example(const jx_t *a, void *u) { /* scalar loss of (w f32[3, 2], x f32[3]) */
  (void)u;
  return jx_sum(jx_tanh(jx_matmul(a[1], a[0])));
}

/* matrix products at odd sizes: several blocks of k, row and column
 * remainders, batch dims, a transposed operand, f64 and i32 */
static jx_t products(const jx_t *a,
                     void *u) { /* a f32[13,300], b f32[300,37], c f32[2,5,7], d f64[7,9], e i32[4,6] */
  (void)u;
  jx_t ab = jx_matmul(a[0], a[1]);
  jx_t ct = jx_matmul(jx_transpose(a[2], (int[]){0, 2, 1}), a[2]);
  jx_t dd = jx_matmul(jx_transpose(a[3], NULL), a[3]);
  jx_t ee = jx_matmul(a[4], jx_transpose(a[4], NULL));
  return JX_TUPLE(ab, ct, dd, ee);
}

static jx_t mlp_loss(const jx_t *a, void *u) { /* (params, x, y) */
  (void)u;
  return jx_mean(jx_square(jx_sub(seed_predict(a[0], a[1]), a[2])));
}

/* ---------------------------------------------------------- the harness */
static jx_t mlp_params(uint64_t *s, int nin, int nh, int nout) {
  jx_t l1 = JX_TUPLE(jx_mul(export_rand(s, JX_F32, 2, (int64_t[]){nin, nh}), jx_scalar(0.5)),
                     export_rand(s, JX_F32, 1, (int64_t[]){nh}));
  jx_t l2 = JX_TUPLE(jx_mul(export_rand(s, JX_F32, 2, (int64_t[]){nh, nout}), jx_scalar(0.5)),
                     export_rand(s, JX_F32, 1, (int64_t[]){nout}));
  return JX_LIST(l1, l2);
}

/* Export f (name) at args, build with cc and `flags`, run `steps` steps
 * (feeding `feed` outputs back) and return the outputs' bytes (NULL on a
 * failure, checked). */
static char *export_run(jx_fn *f, const jx_t *args, const char *name, const char *cc, const char *flags,
                        long steps, long feed, size_t *n) {
  char dir[512], path[600];
  snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
  mkdir(dir, 0700);
  jx_t err = jx_export_c(f, args, name, dir);
  CHECKF(err == NULL, "%s: %s", name, err ? jx_error(err) : "");
  if (err) return NULL;
  CHECKF(!export_write_inputs(dir, name, jx_tuple(f ? jx_fn_nargs(f) : 0, args)), "%s: driver files", name);
  char run_args[64];
  snprintf(run_args, sizeof run_args, "%ld %ld", steps, feed);
  snprintf(path, sizeof path, "%s/run_args", dir);
  write_text(path, run_args); /* check_variants runs the same */
  ncompiled++;
  int rc = run_cmd("cd %s && %s %s -O2 -o prog %s.c main.c -lm && ./prog in.bin out.bin %ld %ld", dir, cc,
                   flags, name, steps, feed);
  CHECKF(rc == 0, "%s: build or run with %s %s", name, cc, flags);
  if (rc) return NULL;
  snprintf(path, sizeof path, "%s/out.bin", dir);
  return read_file(path, n);
}

/* compare the export's bytes with the leaves of jit's result */
static void compare(const char *name, const char *got, size_t ngot, jx_t want, bool exact) {
  size_t nwant = 0;
  char *w = leaves_bytes(want, &nwant);
  CHECKF(w && ngot == nwant, "%s: %zu bytes, want %zu", name, ngot, nwant);
  if (!w || ngot != nwant) {
    free(w);
    return;
  }
  jx_t l = jx_tree_leaves(want);
  size_t at = 0;
  for (int i = 0; i < jx_len(l); i++) {
    jx_t x = jx_at(l, i);
    jx_dtype dt = jx_dtype_of(x);
    size_t k = (size_t)jx_size(x) * jx_dtype_size(dt);
    if (exact || (dt != JX_F32 && dt != JX_F64)) {
      CHECKF(!memcmp(got + at, w + at, k), "%s: output %d differs (bit-exact expected)", name, i);
    } else {
      int64_t n = jx_size(x), bad = -1;
      double scale = 0, rtol = dt == JX_F32 ? 1.0 / 65536 : 1e-12;
      for (int64_t e = 0; e < n; e++) scale = fmax(scale, fabs(elem(w + at, dt, e)));
      for (int64_t e = 0; e < n && bad < 0; e++) {
        double a = elem(got + at, dt, e), b = elem(w + at, dt, e);
        if (!(fabs(a - b) <= rtol * (fabs(b) + scale))) bad = e;
      }
      CHECKF(bad < 0, "%s: output %d element %lld differs beyond rounding", name, i, (long long)bad);
    }
    at += k;
  }
  free(w);
}

static void check_case(const char *name, jx_fn *f, int nargs, const jx_t *args, bool exact) {
  jx_pool_push();
  jx_fn *jf = jx_jit(f);
  jx_t want = jx_call(jf, args);
  CHECKF(jx_ok(want), "%s: jit failed: %s", name, jx_error(want));
  size_t n = 0;
  char *got = jx_ok(want) ? export_run(f, args, name, "cc", EXPORT_STRICT, 1, 0, &n) : NULL;
  if (got) compare(name, got, n, want, exact);
  free(got);
  (void)nargs;
  jx_fn_free(jf);
  jx_pool_pop();
}

static void test_corpus(void) {
  uint64_t s = 42;
  jx_pool_push();
  jx_t x46 = export_rand(&s, JX_F32, 2, (int64_t[]){4, 6});
  jx_fn *f;
  check_case("ew_chain", f = jx_fn_new(ew_chain, 1, NULL), 1,
             (jx_t[]){export_rand(&s, JX_F32, 2, (int64_t[]){3, 50})}, true);
  jx_fn_free(f);
  check_case("ew_f64", f = jx_fn_new(ew_chain, 1, NULL), 1,
             (jx_t[]){export_rand(&s, JX_F64, 1, (int64_t[]){17})}, true);
  jx_fn_free(f);
  check_case("reductions", f = jx_fn_new(reductions, 1, NULL), 1, (jx_t[]){x46}, true);
  jx_fn_free(f);
  /* size-0 dims: no loop whose index math divides by 0 (which -Werror refused: fuzz_programs' export mode) */
  check_case("empty_map", f = jx_fn_new(ew_chain, 1, NULL), 1,
             (jx_t[]){export_rand(&s, JX_F32, 2, (int64_t[]){2, 0})}, true);
  jx_fn_free(f);
  check_case("empty_dot", f = jx_fn_new(empty_dot, 1, NULL), 1,
             (jx_t[]){export_rand(&s, JX_F32, 2, (int64_t[]){0, 3})}, true);
  jx_fn_free(f);
  check_case("empty_reduce", f = jx_fn_new(empty_sums, 1, NULL), 1,
             (jx_t[]){export_rand(&s, JX_F32, 2, (int64_t[]){0, 4})}, true);
  jx_fn_free(f);
  check_case("layout", f = jx_fn_new(layout, 1, NULL), 1, (jx_t[]){x46}, true);
  jx_fn_free(f);
  jx_t params = mlp_params(&s, 6, 16, 3), xb = export_rand(&s, JX_F32, 2, (int64_t[]){5, 6});
  check_case("mlp", f = jx_fn_new(mlp, 2, NULL), 2, (jx_t[]){params, xb}, false);
  jx_fn_free(f);
  check_case("closed_mlp", f = jx_fn_new(closed_mlp, 1, params), 1, (jx_t[]){xb}, false);
  jx_fn_free(f);
  jx_t x53 = export_rand(&s, JX_F32, 2, (int64_t[]){5, 3});
  jx_t idx = jx_array(JX_I32, 1, (int64_t[]){4}, (int32_t[]){3, -1, 9, 0});
  check_case("indexing", f = jx_fn_new(indexing, 2, NULL), 2, (jx_t[]){x53, idx}, true);
  jx_fn_free(f);
  check_case("take_grad", f = jx_grad(jx_fn_new(take_sum, 2, NULL), 0), 2, (jx_t[]){x53, idx}, true);
  jx_fn_free(f);
  jx_fn *step = jx_fn_new(scan_step, 2, NULL);
  check_case(
      "scan", f = jx_fn_new(scan_prog, 2, step), 2,
      (jx_t[]){export_rand(&s, JX_F32, 1, (int64_t[]){3}), export_rand(&s, JX_F32, 2, (int64_t[]){6, 3})},
      true);
  jx_fn_free(f);
  jx_fn *fb = jx_fn_new(fori_body, 2, NULL);
  check_case("fori", f = jx_fn_new(fori_prog, 1, fb), 1, (jx_t[]){export_rand(&s, JX_F32, 1, (int64_t[]){4})},
             true);
  jx_fn_free(f);
  check_case("while_loop", f = jx_fn_new(while_prog, 1, NULL), 1,
             (jx_t[]){export_rand(&s, JX_F32, 1, (int64_t[]){3})}, true);
  jx_fn_free(f);
  check_case("cond", f = jx_fn_new(cond_prog, 1, NULL), 1,
             (jx_t[]){export_rand(&s, JX_F32, 1, (int64_t[]){5})}, true);
  jx_fn_free(f);
  check_case("random", f = jx_fn_new(random_prog, 1, NULL), 1, (jx_t[]){jx_random_key(1234)}, true);
  jx_fn_free(f);
  jx_t iv = jx_array(JX_I32, 1, (int64_t[]){6}, (int32_t[]){-3, 0, 7, 46341, -46341, 2});
  jx_t bv = jx_array(JX_BOOL, 1, (int64_t[]){6}, (uint8_t[]){1, 0, 1, 1, 0, 0});
  check_case("ints", f = jx_fn_new(int_prog, 3, NULL), 3,
             (jx_t[]){iv, export_rand(&s, JX_F64, 1, (int64_t[]){6}), bv}, true);
  jx_fn_free(f);
  check_case("passthrough", f = jx_fn_new(passthrough, 2, NULL), 2, (jx_t[]){x46, x46}, true);
  jx_fn_free(f);
  check_case("identity", f = jx_fn_new(identity, 1, NULL), 1, (jx_t[]){x46},
             true); /* fuzz_programs found it */
  jx_fn_free(f);
  jx_t ie = jx_astype(jx_mul(export_rand(&s, JX_F32, 2, (int64_t[]){4, 6}), jx_scalar(1000)), JX_I32);
  check_case("products", f = jx_fn_new(products, 5, NULL), 5,
             (jx_t[]){export_rand(&s, JX_F32, 2, (int64_t[]){13, 300}),
                      export_rand(&s, JX_F32, 2, (int64_t[]){300, 37}),
                      export_rand(&s, JX_F32, 3, (int64_t[]){2, 5, 7}),
                      export_rand(&s, JX_F64, 2, (int64_t[]){7, 9}), ie},
             false);
  jx_fn_free(f);
  jx_t w32 = export_rand(&s, JX_F32, 2, (int64_t[]){3, 2}),
       xs = export_rand(&s, JX_F32, 2, (int64_t[]){8, 3});
  check_case("vmap_grad", f = jx_vmap(jx_grad(jx_fn_new(per_example, 2, NULL), 0), (int[]){JX_NONE, 0}, 0), 2,
             (jx_t[]){w32, xs}, false);
  jx_fn_free(f);
  jx_fn_free(step);
  jx_fn_free(fb);
  jx_pool_pop();
}

/* ------------------------------------------------- compilers and sanitizers */
static bool have(const char *cmd) {
  char c[256];
  snprintf(c, sizeof c, "command -v %s >/dev/null 2>&1", cmd);
  return system(c) == 0;
}

/* whether cc compiles for 32-bit x86 here (it needs the 32-bit libc headers) */
static bool m32_works(void) {
  static int works = -1;
  if (works < 0) {
    char path[600];
    snprintf(path, sizeof path, "%s/m32_probe.c", tmpdir);
    write_text(path, "#include <math.h>\n#include <stdint.h>\nint f(void) { return (int)sqrt(2.0); }\n");
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cd %s && cc -m32 -c -o m32_probe.o m32_probe.c >/dev/null 2>&1", tmpdir);
    works = system(cmd) == 0;
    if (!works) printf("test_export: cc -m32 does not compile here (no 32-bit libc headers): skipped\n");
  }
  return works;
}

/* the files of an exported case (built by check_case) built again: with
 * clang, for 32-bit x86 (compile only where no 32-bit libc links), and
 * under ASan + UBSan; each run must give the gcc build's bytes */
static void check_variants(const char *name) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
  const char *strict = EXPORT_STRICT;
  if (have("clang")) {
    CHECKF(!run_cmd("cd %s && clang %s -O2 -o prog_clang %s.c main.c -lm && ./prog_clang in.bin "
                    "out_clang.bin $(cat run_args) && "
                    "cmp out.bin out_clang.bin",
                    dir, strict, name),
           "%s: clang", name);
  }
  /* the FMA form of matrix products (FP_FAST_FMAF, where the host has it) compiles strict too */
  CHECKF(!run_cmd("cd %s && cc %s -O2 -march=native -c -o native.o %s.c", dir, strict, name),
         "%s: -march=native", name);
  if (m32_works())
    CHECKF(!run_cmd("cd %s && cc %s -O2 -m32 -msse2 -mfpmath=sse -c -o m32.o %s.c", dir, strict, name),
           "%s: -m32", name);
  CHECKF(!run_cmd(
             "cd %s && cc %s -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -o prog_san %s.c "
             "main.c -lm && ASAN_OPTIONS=detect_leaks=1 ./prog_san in.bin out_san.bin $(cat run_args) && cmp "
             "out.bin out_san.bin",
             dir, strict, name),
         "%s: -fsanitize=address,undefined", name);
}

/* ------------------------------------------------------------ bad input */
static void test_errors(void) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(ew_chain, 1, NULL);
  jx_t x = jx_ones(JX_F32, 1, (int64_t[]){3});
  char dir[512];
  snprintf(dir, sizeof dir, "%s/errors", tmpdir);
  mkdir(dir, 0700);
  EXPECT_ERROR(jx_export_c(NULL, &x, "m", dir), "export", "no function");
  EXPECT_ERROR(jx_export_c(f, &x, "9lives", dir), "export", "'9lives'", "C identifier");
  EXPECT_ERROR(jx_export_c(f, &x, "a-b", dir), "export", "C identifier");
  EXPECT_ERROR(jx_export_c(f, &x, NULL, dir), "export", "(null)");
  EXPECT_ERROR(jx_export_c(f, &x, "while", dir), "export", "'while'", "reserved");
  EXPECT_ERROR(jx_export_c(f, &x, "expf", dir), "export", "'expf'", "reserved");
  EXPECT_ERROR(jx_export_c(f, &x, "p0_run", dir), "export", "'p0_run'", "generated code uses");
  EXPECT_ERROR(jx_export_c(f, &x, "sin_f32", dir), "export", "'sin_f32'", "generated code uses");
  EXPECT_ERROR(jx_export_c(f, &x, "m", NULL), "export", "no directory");
  EXPECT_ERROR(jx_export_c(f, &x, "mdl", "/nonexistent/dir"), "export", "cannot write",
               "/nonexistent/dir/mdl.h");
  /* wrong arguments: the trace's error */
  EXPECT_ERROR(jx_export_c(f, (jx_t[]){jx_error_new("upstream")}, "m", dir), "upstream");
  /* a primitive with no portable rendering: tests/test_export_ops.c
   * (argsort, which this case used, is rendered now) */
  jx_fn_free(f);
  jx_pool_pop();
}

/* ---------------------------------------------------- constants as inputs */
/* jx_export_c_ex with consts_as_inputs: the weights the function closes
 * over are entry inputs after the arguments, their bytes in
 * name_consts.bin; the source embeds none of them */
static void test_consts_as_inputs(void) {
  jx_pool_push();
  uint64_t s = 99;
  jx_t params = mlp_params(&s, 6, 16, 3), xb = export_rand(&s, JX_F32, 2, (int64_t[]){5, 6});
  jx_fn *f = jx_fn_new(closed_mlp, 1, params), *jf = jx_jit(f);
  jx_t want = jx_call(jf, &xb);
  char dir[512];
  snprintf(dir, sizeof dir, "%s/mlp_ci", tmpdir);
  mkdir(dir, 0700);
  jx_t err = jx_export_c_ex(f, &xb, "mlp_ci", dir, &(jx_export_options){.consts_as_inputs = true});
  CHECKF(!err, "consts_as_inputs: %s", err ? jx_error(err) : "");
  char *drv = export_driver("mlp_ci"), path[600];
  snprintf(path, sizeof path, "%s/main.c", dir);
  write_text(path, drv);
  free(drv);
  size_t nx = 0, nh = 0, nc = 0;
  char *xbytes = leaves_bytes(xb, &nx);
  snprintf(path, sizeof path, "%s/mlp_ci.h", dir);
  char *hdr = read_file(path, &nh);
  CHECK(hdr && strstr(hdr, "#define MLP_CI_NUM_INPUTS 5\n")); /* x, then W1 b1 W2 b2 */
  CHECK(hdr && strstr(hdr, "a constant of the function, taken as an input"));
  snprintf(path, sizeof path, "%s/mlp_ci_consts.bin", dir);
  char *cbytes = read_file(path, &nc);
  CHECK(cbytes && nc == (6 * 16 + 16 + 16 * 3 + 3) * sizeof(float));
  snprintf(path, sizeof path, "%s/in.bin", dir);
  FILE *fi = fopen(path, "wb");
  if (fi && xbytes && cbytes) fwrite(xbytes, 1, nx, fi), fwrite(cbytes, 1, nc, fi);
  if (fi) fclose(fi);
  CHECK(!run_cmd("cd %s && cc %s -O2 -o prog mlp_ci.c main.c -lm && ./prog in.bin out.bin", dir,
                 EXPORT_STRICT));
  snprintf(path, sizeof path, "%s/mlp_ci.c", dir);
  size_t nsrc = 0;
  char *src = read_file(path, &nsrc);
  CHECK(src && !strstr(src, "/* constant: f32[6,16] */")); /* not embedded */
  size_t ngot = 0;
  snprintf(path, sizeof path, "%s/out.bin", dir);
  char *got = read_file(path, &ngot);
  if (got) compare("mlp_ci", got, ngot, want, false);
  free(got), free(src), free(cbytes), free(hdr), free(xbytes);
  jx_fn_free(jf);
  jx_fn_free(f);
  jx_pool_pop();
}

/* ------------------------------------------------------------- training */
/* (params, adam state, x, y) -> (params', state', loss): one jitted
 * value_and_grad step with the optimizer's update inside */
static jx_optimizer *g_opt;
static jx_t train_step(const jx_t *a, void *u) {
  jx_fn *vg = u;
  jx_t vgr = jx_call(vg, (jx_t[]){a[0], a[2], a[3]});
  jx_t upd = jx_optim_update(g_opt, jx_at(vgr, 1), a[1], a[0]);
  return JX_TUPLE(jx_apply_updates(a[0], jx_at(upd, 0)), jx_at(upd, 1), jx_at(vgr, 0));
}

static void test_training(void) {
  enum { STEPS = 100 };
  jx_pool_push();
  uint64_t s = 7;
  g_opt = jx_adam(jx_constant_schedule(1e-2), 0.9, 0.999, 1e-8);
  jx_fn *loss = jx_fn_new(mlp_loss, 3, NULL), *vg = jx_value_and_grad(loss, 0);
  jx_fn *step = jx_fn_new(train_step, 4, vg), *jstep = jx_jit(step);
  jx_t params = mlp_params(&s, 8, 32, 4), state = jx_optim_init(g_opt, params);
  jx_t x = export_rand(&s, JX_F32, 2, (int64_t[]){16, 8}), y = export_rand(&s, JX_F32, 2, (int64_t[]){16, 4});
  jx_t args[4] = {params, state, x, y};
  int feed = jx_tree_num_leaves(params) + jx_tree_num_leaves(state);
  size_t n = 0;
  char *got = export_run(step, args, "train_step", "cc", EXPORT_STRICT, STEPS, feed, &n);
  jx_t p = params, st = state;
  for (int i = 0; i < STEPS; i++) {
    jx_t r = jx_call(jstep, (jx_t[]){p, st, x, y});
    CHECKF(jx_ok(r), "train: %s", jx_error(r));
    if (!jx_ok(r)) break;
    p = jx_at(r, 0), st = jx_at(r, 1);
  }
  size_t np = 0;
  char *want = leaves_bytes(p, &np);
  CHECK(got && want && n >= np);
  jx_t l = jx_tree_leaves(p);
  size_t at = 0;
  double worst = 0;
  for (int i = 0; got && want && n >= np && i < jx_len(l); i++) {
    int64_t k = jx_size(jx_at(l, i));
    const float *a = (const float *)(got + at), *b = (const float *)(want + at);
    double scale = 0, diff = 0;
    for (int64_t e = 0; e < k; e++)
      scale = fmax(scale, fabs(b[e])), diff = fmax(diff, fabs((double)a[e] - b[e]));
    CHECKF(diff <= 1e-6 * scale, "train: leaf %d differs by %g (scale %g)", i, diff, scale);
    worst = fmax(worst, diff / scale);
    at += (size_t)k * sizeof(float);
  }
  printf("training: %d steps exported vs jit, worst relative difference %.3g\n", STEPS, worst);
  free(got);
  free(want);
  jx_fn_free(jstep);
  jx_fn_free(step);
  jx_fn_free(vg);
  jx_fn_free(loss);
  jx_optim_free(g_opt);
  jx_pool_pop();
}

int main(int argc, char **argv) {
  (void)argc, (void)argv;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/jx_export_XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  g_while_cond = jx_fn_new(while_cond, 1, NULL);
  g_while_body = jx_fn_new(while_body, 1, NULL);
  g_true = jx_fn_new(br_true, 1, NULL);
  g_false = jx_fn_new(br_false, 1, NULL);
  test_corpus();
  test_errors();
  test_consts_as_inputs();
  test_training();
  static const char *const variants[] = {"mlp",        "products", "take_grad", "scan",
                                         "while_loop", "random",   "train_step"};
  for (size_t i = 0; i < sizeof variants / sizeof *variants; i++) check_variants(variants[i]);
  jx_fn_free(g_while_cond);
  jx_fn_free(g_while_body);
  jx_fn_free(g_true);
  jx_fn_free(g_false);
  if (!getenv("JX_KEEP_EXPORT")) run_cmd("rm -rf %s", tmpdir);
  printf("test_export: %d passed, %d failed (%d programs built)\n", check_passed, check_failed, ncompiled);
  return check_failed != 0;
}
