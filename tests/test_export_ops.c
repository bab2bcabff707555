/* jx_export_c of the round-2 primitives (issue #20): convolutions, windows
 * and pooling with their gradients, gather/scatter with dimension numbers,
 * dynamic slices, sort/argsort/top_k, the cumulative ops, reduce_prod,
 * the new math functions, custom_jvp/custom_vjp, remat and bounded
 * while loops.
 *
 * Each program is exported, built with the strict flags
 * (cc -std=c99 -pedantic -Wall -Wextra -Werror -O2, no include path to jx,
 * -lm only) with the standalone driver of export_harness.h, run on the
 * inputs jit gets, and compared with jit (a few are also built with clang
 * and under ASan + UBSan, which must give the same bytes):
 *   - bit for bit wherever the export keeps the eager kernels' order
 *     (everything here but convolutions and matrix products: windows,
 *     select_and_*, gather/scatter, dynamic slices, sorts, scans, products,
 *     elementwise math);
 *   - with a convolution or a matrix product inside (the CNN, its
 *     gradient): the export sums in index order, the jit's GEMM blocks the
 *     sum and may use FMA, so |export - jit| <= rtol * (|jit| + scale),
 *     rtol = 2^-16 for f32 and 1e-12 for f64, scale the output's largest
 *     magnitude (the bound tests/test_export.c states for dot_general);
 *     integer convolutions are exact. */
#include "export_harness.h"

#include <math.h>

static char tmpdir[256];
static int ncompiled;

/* ------------------------------------------------------------ harness */
/* export f at args, build strict, run; the outputs' bytes (NULL: failed, checked) */
static char *export_run(jx_fn *f, const jx_t *args, const char *name, size_t *n) {
  char dir[512], path[600];
  snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
  mkdir(dir, 0700);
  jx_t err = jx_export_c(f, args, name, dir);
  CHECKF(err == NULL, "%s: %s", name, err ? jx_error(err) : "");
  if (err) return NULL;
  CHECKF(!export_write_inputs(dir, name, jx_tuple(jx_fn_nargs(f), args)), "%s: driver files", name);
  ncompiled++;
  int rc = run_cmd("cd %s && cc %s -O2 -o prog %s.c main.c -lm && ./prog in.bin out.bin", dir, EXPORT_STRICT,
                   name);
  CHECKF(rc == 0, "%s: build or run", name);
  if (rc) return NULL;
  snprintf(path, sizeof path, "%s/out.bin", dir);
  return read_file(path, n);
}

/* leaf i of the export (got) against jit's (w), k bytes */
static void compare_leaf(const char *name, int i, const char *got, const char *w, jx_t x, bool exact) {
  jx_dtype dt = jx_dtype_of(x);
  size_t k = (size_t)jx_size(x) * jx_dtype_size(dt);
  if (exact || (dt != JX_F32 && dt != JX_F64)) {
    CHECKF(!memcmp(got, w, k), "%s: output %d differs (bit-exact expected)", name, i);
    return;
  }
  int64_t n = jx_size(x), bad = -1;
  double scale = 0, rtol = dt == JX_F32 ? 1.0 / 65536 : 1e-12;
  for (int64_t e = 0; e < n; e++) scale = fmax(scale, fabs(elem(w, dt, e)));
  for (int64_t e = 0; e < n && bad < 0; e++) {
    double a = elem(got, dt, e), b = elem(w, dt, e);
    if (!(fabs(a - b) <= rtol * (fabs(b) + scale)) && !(a != a && b != b)) bad = e;
  }
  CHECKF(bad < 0, "%s: output %d element %lld differs beyond rounding", name, i, (long long)bad);
}

static void compare(const char *name, const char *got, size_t ngot, jx_t want, bool exact) {
  size_t nwant = 0;
  char *w = leaves_bytes(want, &nwant);
  CHECKF(w && ngot == nwant, "%s: %zu bytes, want %zu", name, ngot, nwant);
  jx_t l = jx_tree_leaves(want);
  size_t at = 0;
  for (int i = 0; w && ngot == nwant && i < jx_len(l); i++) {
    jx_t x = jx_at(l, i);
    compare_leaf(name, i, got + at, w + at, x, exact);
    at += (size_t)jx_size(x) * jx_dtype_size(jx_dtype_of(x));
  }
  free(w);
}

/* jit f at args, export it, compare (exact or within the stated bound) */
static void check_case(const char *name, jx_fn *f, const jx_t *args, bool exact) {
  jx_pool_push();
  jx_fn *jf = jx_jit(f);
  jx_t want = jx_call(jf, args);
  CHECKF(jx_ok(want), "%s: jit failed: %s", name, jx_error(want));
  size_t n = 0;
  char *got = jx_ok(want) ? export_run(f, args, name, &n) : NULL;
  if (got) compare(name, got, n, want, exact);
  free(got);
  jx_fn_free(jf);
  jx_pool_pop();
}

#define I64(...) ((int64_t[]){__VA_ARGS__})

/* -------------------------------------------------------- convolutions */
static jx_t conv_same(const jx_t *a, void *u) {
  (void)u;
  return jx_conv(a[0], a[1], I64(1), "SAME");
}

static jx_t conv_layouts(const jx_t *a, void *u) { /* x f32[2,3,9,8], w f32[4,3,3,2] */
  (void)u;
  jx_t nchw =
      jx_conv_general_dilated(a[0], a[1], I64(2, 1), I64(1, 1, 0, 1), NULL, I64(1, 2), "NCHW,OIHW,NCHW", 1);
  /* the same operands read as NHWC-like and HWIO-like layouts, output in a third one */
  jx_t odd = jx_conv_general_dilated(a[0], jx_transpose(a[1], (int[]){2, 3, 1, 0}), I64(1, 2),
                                     I64(2, 1, -1, 0), I64(2, 1), NULL, "NCHW,HWIO,NHWC", 1);
  return JX_TUPLE(nchw, odd);
}

static jx_t conv_groups(const jx_t *a, void *u) { /* x f32[4,4,10], w f32[6,2,3] */
  (void)u;
  jx_t fg = jx_conv_general_dilated(a[0], a[1], NULL, I64(1, 1), NULL, NULL, "NCH,OIH,NCH", 2);
  jx_t w2 = jx_reshape(jx_slice(a[1], I64(0, 0, 0), I64(6, 1, 3), NULL), 3, I64(6, 1, 3));
  jx_t xs = jx_slice(a[0], I64(0, 0, 0), I64(4, 1, 10), NULL);
  jx_t bg = jx_conv_general_dilated_ex(xs, w2, I64(2), I64(0, 2), NULL, I64(2), "NCH,OIH,NCH", 1, 2);
  jx_t tr = jx_conv_transpose(jx_transpose(a[0], (int[]){0, 2, 1}), jx_reshape(a[1], 3, I64(3, 4, 3)), I64(2),
                              "SAME", NULL, NULL, "NHC,HIO,NHC", false);
  return JX_TUPLE(fg, bg, tr);
}

static jx_t conv_3d(const jx_t *a, void *u) { /* f64 x [1,2,4,4,4], w [2,2,2,2,2]: canonical dims */
  (void)u;
  return jx_conv_general_dilated(a[0], a[1], I64(1, 2, 1), I64(0, 1, 1, 0, 0, 0), NULL, NULL, NULL, 1);
}

static jx_t conv_int(const jx_t *a, void *u) { /* i32 x [1,2,5,5], w [3,2,3,3] */
  (void)u;
  return jx_conv(a[0], a[1], I64(1, 1), "SAME");
}

/* x (canonical order `canon`) laid out as `spec` (its letters permuted) */
static jx_t as_spec(jx_t x, const char *canon, const char *spec) {
  int perm[4];
  for (int i = 0; i < 4; i++) perm[i] = (int)(strchr(canon, spec[i]) - canon);
  return jx_transpose(x, perm);
}

/* one convolution per row: layouts, strides, padding (negative too),
 * dilations, feature and batch groups; x canonical [4, 6, 9, 8] */
static const struct {
  const char *l, *r, *o;
  int64_t st[2], pad[4], ld[2], rd[2];
  int fgc, bgc, I, O;
} convs[] = {
    {"NCHW", "OIHW", "NCHW", {2, 2}, {1, 0, 0, 1}, {1, 2}, {2, 1}, 1, 1, 6, 4},
    {"NHWC", "HWIO", "NHWC", {1, 3}, {-1, 1, 2, 2}, {1, 1}, {1, 2}, 3, 1, 2, 6},
    {"WNCH", "IWOH", "HCNW", {2, 1}, {2, 2, 1, 0}, {2, 2}, {1, 1}, 1, 1, 6, 3},
    {"CNHW", "OIHW", "NCHW", {1, 1}, {0, 1, 1, 0}, {1, 1}, {1, 1}, 1, 2, 6, 4},
    {"NCWH", "HOIW", "WHNC", {3, 2}, {0, 0, -2, 1}, {1, 3}, {2, 2}, 6, 1, 1, 12},
};
static jx_t conv_mix(const jx_t *a, void *u) { /* x f32[4,6,9,8], w f32[12,6,3,2] */
  (void)u;
  jx_t r[sizeof convs / sizeof *convs];
  for (size_t i = 0; i < sizeof convs / sizeof *convs; i++) {
    jx_t w = jx_slice(a[1], I64(0, 0, 0, 0), I64(convs[i].O, convs[i].I, 3, 2), NULL);
    char dn[32];
    snprintf(dn, sizeof dn, "%s,%s,%s", convs[i].l, convs[i].r, convs[i].o);
    r[i] = jx_conv_general_dilated_ex(as_spec(a[0], "NCHW", convs[i].l), as_spec(w, "OIHW", convs[i].r),
                                      convs[i].st, convs[i].pad, convs[i].ld, convs[i].rd, dn, convs[i].fgc,
                                      convs[i].bgc);
  }
  return jx_tuple((int)(sizeof r / sizeof *r), r);
}

/* ---------------------------------------------------------- windows */
static jx_t windows(const jx_t *a, void *u) { /* x f32[2,6,7,3], NaNs where x > 1.8 */
  (void)u;
  jx_t x = jx_where(jx_gt(a[0], jx_scalar(1.8)), jx_scalar(NAN), a[0]);
  jx_t s = jx_reduce_window(a[0], "sum", I64(1, 3, 2, 1), I64(1, 2, 1, 1), I64(0, 0, 1, 1, 0, 2, 0, 0),
                            I64(1, 1, 2, 1), NULL);
  jx_t mx = jx_reduce_window(x, "max", I64(1, 2, 3, 1), I64(1, 1, 2, 1), I64(0, 0, 1, 0, 1, 1, 0, 0), NULL,
                             I64(1, 2, 1, 1));
  jx_t mn = jx_reduce_window(x, "min", I64(2, 2, 1, 2), NULL, I64(0, 0, -1, 0, 0, 0, 1, 0), NULL, NULL);
  jx_t mp = jx_max_pool(a[0], 2, I64(2, 2), I64(2, 2), "SAME");
  jx_t ap = jx_avg_pool(a[0], 2, I64(3, 3), I64(1, 2), "VALID");
  return JX_TUPLE(s, mx, mn, mp, ap);
}

static jx_t windows_int(const jx_t *a, void *u) { /* i32 x [5,6] */
  (void)u;
  return JX_TUPLE(jx_reduce_window(a[0], "sum", I64(2, 3), I64(1, 2), I64(1, 1, 0, 1), NULL, NULL),
                  jx_reduce_window(a[0], "max", I64(3, 1), NULL, I64(1, 1, 0, 0), I64(2, 1), NULL),
                  jx_reduce_window(a[0], "min", I64(2, 2), I64(2, 2), NULL, NULL, NULL));
}

static jx_t pool(const jx_t *a, void *u) { /* x f32[2,6,6,3] */
  (void)u;
  return jx_sum(jx_sin(jx_max_pool(a[0], 2, I64(3, 3), I64(2, 2), "SAME")));
}
static jx_fn *g_pool;
static jx_t pool_jvp(const jx_t *a, void *u) { /* select_and_gather_add */
  (void)u;
  return jx_jvp(g_pool, &a[0], &a[1]);
}

/* the CNN: conv (NCHW), relu, max pool (NHWC), dense; mean squared error */
static jx_t cnn_predict(jx_t params, jx_t x) {
  jx_t h = jx_relu(jx_conv(x, jx_at(params, 0), I64(1, 1), "SAME"));
  jx_t p = jx_max_pool(jx_transpose(h, (int[]){0, 2, 3, 1}), 2, I64(2, 2), I64(2, 2), "VALID");
  return jx_matmul(jx_reshape(p, 2, I64(jx_shape(p)[0], -1)), jx_at(params, 1));
}
static jx_t cnn_loss(const jx_t *a, void *u) { /* (params, x, y) */
  (void)u;
  return jx_mean(jx_square(jx_sub(cnn_predict(a[0], a[1]), a[2])));
}
static jx_t cnn_forward(const jx_t *a, void *u) {
  (void)u;
  return cnn_predict(a[0], a[1]);
}

/* the CNN as examples/cnn.c writes it (NHWC, HWIO), a value_and_grad +
 * adam step: (params, state, x, labels) -> (params', state', loss) */
static jx_t nhwc_loss(const jx_t *a, void *u) {
  (void)u;
  jx_t h =
      jx_conv_general_dilated(a[1], jx_at(a[0], 0), NULL, I64(2, 2, 2, 2), NULL, NULL, "NHWC,HWIO,NHWC", 1);
  h = jx_max_pool(jx_relu(h), 2, I64(2, 2), I64(2, 2), "VALID");
  jx_t logits = jx_matmul(jx_reshape(h, 2, I64(jx_shape(h)[0], -1)), jx_at(a[0], 1));
  return jx_neg(
      jx_mean(jx_sum_axes(jx_mul(jx_log_softmax(logits, -1), jx_one_hot(a[2], 4)), 1, (int[]){-1}, false)));
}
static jx_optimizer *g_opt;
static jx_t cnn_step(const jx_t *a, void *u) {
  jx_t vg = jx_call(u, (jx_t[]){a[0], a[2], a[3]});
  jx_t r = jx_optim_update(g_opt, jx_at(vg, 1), a[1], a[0]);
  return JX_TUPLE(jx_apply_updates(a[0], jx_at(r, 0)), jx_at(r, 1), jx_at(vg, 0));
}

static void test_train_step(void) {
  uint64_t s = 17;
  jx_pool_push();
  g_opt = jx_adam(jx_constant_schedule(1e-2), 0.9, 0.999, 1e-8);
  jx_fn *vg = jx_value_and_grad(jx_fn_new(nhwc_loss, 3, NULL), 0);
  jx_t params = JX_TUPLE(jx_mul(export_rand(&s, JX_F32, 4, I64(5, 5, 1, 6)), jx_scalar(0.3)),
                         jx_mul(export_rand(&s, JX_F32, 2, I64(96, 4)), jx_scalar(0.1)));
  jx_t labels = jx_array(JX_I32, 1, I64(4), (int32_t[]){0, 3, 1, 2});
  jx_t args[4] = {params, jx_optim_init(g_opt, params), export_rand(&s, JX_F32, 4, I64(4, 8, 8, 1)), labels};
  check_case("cnn_train_step", jx_fn_new(cnn_step, 4, vg), args, false);
  jx_optim_free(g_opt);
  jx_pool_pop();
}

static void test_conv(void) {
  uint64_t s = 11;
  jx_pool_push();
  jx_fn *f;
  check_case(
      "conv_layouts", f = jx_fn_new(conv_layouts, 2, NULL),
      (jx_t[]){export_rand(&s, JX_F32, 4, I64(2, 3, 9, 8)), export_rand(&s, JX_F32, 4, I64(4, 3, 3, 2))},
      false);
  check_case("conv_groups", f = jx_fn_new(conv_groups, 2, NULL),
             (jx_t[]){export_rand(&s, JX_F32, 3, I64(4, 4, 10)), export_rand(&s, JX_F32, 3, I64(6, 2, 3))},
             false);
  check_case(
      "conv_mix", f = jx_fn_new(conv_mix, 2, NULL),
      (jx_t[]){export_rand(&s, JX_F32, 4, I64(4, 6, 9, 8)), export_rand(&s, JX_F32, 4, I64(12, 6, 3, 2))},
      false);
  check_case("conv_3d", f = jx_fn_new(conv_3d, 2, NULL),
             (jx_t[]){export_rand(&s, JX_F64, 5, I64(1, 2, 4, 4, 4)),
                      export_rand(&s, JX_F64, 5, I64(2, 2, 2, 2, 2))},
             false);
  /* a padded tap times an infinite weight: 0 * inf = NaN, as jit's kernel
   * (its padded patches) gives (a fuzzer find: the export skipped the tap) */
  check_case("conv_inf_pad", f = jx_fn_new(conv_same, 2, NULL),
             (jx_t[]){jx_ones(JX_F32, 3, I64(1, 1, 4)),
                      jx_array(JX_F32, 3, I64(1, 1, 3), (float[]){INFINITY, 1, 1})},
             true);
  jx_t xi = jx_astype(jx_mul(export_rand(&s, JX_F32, 4, I64(1, 2, 5, 5)), jx_scalar(50)), JX_I32);
  jx_t wi = jx_astype(jx_mul(export_rand(&s, JX_F32, 4, I64(3, 2, 3, 3)), jx_scalar(50)), JX_I32);
  check_case("conv_int", f = jx_fn_new(conv_int, 2, NULL), (jx_t[]){xi, wi}, true);
  check_case("windows", f = jx_fn_new(windows, 1, NULL),
             (jx_t[]){export_rand(&s, JX_F32, 4, I64(2, 6, 7, 3))}, true);
  jx_t wint = jx_astype(jx_mul(export_rand(&s, JX_F32, 2, I64(5, 6)), jx_scalar(1000)), JX_I32);
  check_case("windows_int", f = jx_fn_new(windows_int, 1, NULL), (jx_t[]){wint}, true);
  jx_t px = export_rand(&s, JX_F32, 4, I64(2, 6, 6, 3));
  /* ties: duplicated values, so "the first max" matters */
  px = jx_floor(jx_mul(px, jx_scalar(2)));
  check_case("pool_grad", f = jx_grad(g_pool, 0), (jx_t[]){px}, true);
  check_case("pool_jvp", f = jx_fn_new(pool_jvp, 2, NULL),
             (jx_t[]){px, export_rand(&s, JX_F32, 4, I64(2, 6, 6, 3))}, true);
  /* #19: bf16/f16 windows in f32 (the max-pool gradient's sums in an f32
   * workspace), rounded once; i8/u16 windows wrap in their type */
  jx_t wx = export_rand(&s, JX_F32, 4, I64(2, 6, 7, 3));
  check_case("windows_bf16", f = jx_fn_new(windows, 1, NULL), (jx_t[]){jx_astype(wx, JX_BF16)}, true);
  check_case("windows_f16", f = jx_fn_new(windows, 1, NULL), (jx_t[]){jx_astype(wx, JX_F16)}, true);
  check_case("windows_i8", f = jx_fn_new(windows_int, 1, NULL), (jx_t[]){jx_astype(wint, JX_I8)}, true);
  check_case("windows_u16", f = jx_fn_new(windows_int, 1, NULL), (jx_t[]){jx_astype(wint, JX_U16)}, true);
  check_case("pool_grad_bf16", f = jx_grad(g_pool, 0), (jx_t[]){jx_astype(px, JX_BF16)}, true);
  check_case("pool_grad_f16", f = jx_grad(g_pool, 0), (jx_t[]){jx_astype(px, JX_F16)}, true);
  check_case("pool_jvp_f16", f = jx_fn_new(pool_jvp, 2, NULL),
             (jx_t[]){jx_astype(px, JX_F16), jx_astype(export_rand(&s, JX_F32, 4, I64(2, 6, 6, 3)), JX_F16)},
             true);
  jx_t params = JX_TUPLE(jx_mul(export_rand(&s, JX_F32, 4, I64(4, 3, 3, 3)), jx_scalar(0.5)),
                         jx_mul(export_rand(&s, JX_F32, 2, I64(64, 5)), jx_scalar(0.2)));
  jx_t x = export_rand(&s, JX_F32, 4, I64(2, 3, 8, 8)), y = export_rand(&s, JX_F32, 2, I64(2, 5));
  check_case("cnn_forward", f = jx_fn_new(cnn_forward, 2, NULL), (jx_t[]){params, x}, false);
  check_case("cnn_grad", f = jx_value_and_grad(jx_fn_new(cnn_loss, 3, NULL), 0), (jx_t[]){params, x, y},
             false);
  jx_pool_pop();
}

/* ------------------------------------------------------ gather, scatter */
static const jx_gather_dnums g_dn = {.noffset_dims = 2,
                                     .offset_dims = {2, 3},
                                     .ncollapsed_slice_dims = 1,
                                     .collapsed_slice_dims = {0},
                                     .nstart_index_map = 2,
                                     .start_index_map = {0, 2},
                                     .index_vector_dim = 2};
static const jx_scatter_dnums s_dn = {.nupdate_window_dims = 2,
                                      .update_window_dims = {2, 3},
                                      .ninserted_window_dims = 1,
                                      .inserted_window_dims = {0},
                                      .nscatter_dims_to_operand_dims = 2,
                                      .scatter_dims_to_operand_dims = {0, 2},
                                      .index_vector_dim = 2};

static jx_t gathers(const jx_t *a, void *u) { /* x f32[5,4,3], idx i32[2,3,2] */
  (void)u;
  jx_t clip = jx_gather(a[0], a[1], &g_dn, I64(1, 2, 2), JX_GATHER_CLIP, 0);
  jx_t fill = jx_gather(a[0], a[1], &g_dn, I64(1, 2, 2), JX_GATHER_FILL_OR_DROP, 7.5);
  /* the index vectors along dim 0 of the indices (not the last) */
  jx_gather_dnums d0 = g_dn;
  d0.index_vector_dim = 0;
  d0.offset_dims[0] = 2, d0.offset_dims[1] = 3;
  jx_t lead = jx_gather(a[0], jx_transpose(a[1], (int[]){2, 0, 1}), &d0, I64(1, 4, 1), JX_GATHER_CLIP, 0);
  return JX_TUPLE(clip, fill, lead);
}

static jx_t scatters(const jx_t *a, void *u) { /* x f32[5,4,3], idx i32[2,3,2], upd f32[2,3,2,2] */
  (void)u;
  jx_t r[10];
  for (int m = 0; m < 2; m++) {
    jx_gather_mode md = m ? JX_GATHER_FILL_OR_DROP : JX_GATHER_CLIP;
    r[5 * m + 0] = jx_scatter(a[0], a[1], a[2], &s_dn, md);
    r[5 * m + 1] = jx_scatter_add(a[0], a[1], a[2], &s_dn, md);
    r[5 * m + 2] = jx_scatter_mul(a[0], a[1], a[2], &s_dn, md);
    r[5 * m + 3] = jx_scatter_min(a[0], a[1], a[2], &s_dn, md);
    r[5 * m + 4] = jx_scatter_max(a[0], a[1], a[2], &s_dn, md);
  }
  return jx_tuple(10, r);
}

static jx_t scatters_int(const jx_t *a, void *u) { /* x i32[5,4,3], idx, upd i32[2,3,2,2] */
  (void)u;
  return JX_TUPLE(jx_scatter_add(a[0], a[1], a[2], &s_dn, JX_GATHER_FILL_OR_DROP),
                  jx_scatter_mul(a[0], a[1], a[2], &s_dn, JX_GATHER_CLIP),
                  jx_scatter_max(a[0], a[1], a[2], &s_dn, JX_GATHER_CLIP));
}

static jx_t scatter_bool(const jx_t *a, void *u) { /* x bool[5,3], idx i32[4], upd bool[4,3]: take's form */
  (void)u;
  jx_scatter_dnums d = {.nupdate_window_dims = 1,
                        .update_window_dims = {1},
                        .ninserted_window_dims = 1,
                        .nscatter_dims_to_operand_dims = 1,
                        .index_vector_dim = 1};
  return JX_TUPLE(jx_scatter_add(a[0], a[1], a[2], &d, JX_GATHER_CLIP),
                  jx_scatter_mul(a[0], a[1], a[2], &d, JX_GATHER_FILL_OR_DROP));
}

static jx_t gather_loss(const jx_t *a, void *u) { /* grad: a scatter-add with these dimension numbers */
  (void)u;
  return jx_sum(jx_tanh(jx_gather(a[0], a[1], &g_dn, I64(1, 2, 2), JX_GATHER_FILL_OR_DROP, 0)));
}

/* dynamic slices; the update in a fori loop (row i+1 from row i) */
static jx_t dus_body(const jx_t *a, void *u) { /* (i, x) */
  (void)u;
  jx_t zero = jx_zeros(JX_I32, 0, NULL), one = jx_ones(JX_I32, 0, NULL);
  jx_t row = jx_dynamic_slice(a[1], (jx_t[]){a[0], zero}, I64(1, 4));
  jx_t upd = jx_add(jx_mul(row, jx_scalar(1.5)), jx_astype(a[0], JX_F32));
  return jx_dynamic_update_slice(a[1], upd, (jx_t[]){jx_add(a[0], one), zero});
}
static jx_fn *g_dus_body;
static jx_t dslices(const jx_t *a, void *u) { /* x f32[5,4], starts i32 s0, s1 (0-d) */
  (void)u;
  jx_t loop = jx_fori_loop(0, 7, g_dus_body, a[0]);
  jx_t ds = jx_dynamic_slice(a[0], (jx_t[]){a[1], a[2]}, I64(2, 3));
  jx_t dus = jx_dynamic_update_slice(a[0], jx_ones(JX_F32, 2, I64(3, 2)), (jx_t[]){a[2], a[1]});
  return JX_TUPLE(loop, ds, dus);
}

static void test_index(void) {
  uint64_t s = 23;
  jx_pool_push();
  jx_fn *f;
  /* out of bounds, negative and repeated starts */
  jx_t idx = jx_array(JX_I32, 3, I64(2, 3, 2), (int32_t[]){0, 0, 4, 1, -1, 2, 2, 1, 2, 1, 9, 0});
  jx_t x = export_rand(&s, JX_F32, 3, I64(5, 4, 3)), upd = export_rand(&s, JX_F32, 4, I64(2, 3, 2, 2));
  check_case("gathers", f = jx_fn_new(gathers, 2, NULL), (jx_t[]){x, idx}, true);
  check_case("scatters", f = jx_fn_new(scatters, 3, NULL), (jx_t[]){x, idx, upd}, true);
  jx_t xi = jx_astype(jx_mul(x, jx_scalar(100)), JX_I32), ui = jx_astype(jx_mul(upd, jx_scalar(100)), JX_I32);
  check_case("scatters_int", f = jx_fn_new(scatters_int, 3, NULL), (jx_t[]){xi, idx, ui}, true);
  /* bool adds are or (xor would be add_b's): duplicates and set bits meeting */
  jx_t xb = jx_gt(export_rand(&s, JX_F32, 2, I64(5, 3)), jx_scalar(0)),
       ub = jx_gt(export_rand(&s, JX_F32, 2, I64(4, 3)), jx_scalar(-1));
  jx_t ib = jx_array(JX_I32, 1, I64(4), (int32_t[]){1, 3, 1, 7});
  check_case("scatter_bool", f = jx_fn_new(scatter_bool, 3, NULL), (jx_t[]){xb, ib, ub}, true);
  check_case("gather_grad", f = jx_grad(jx_fn_new(gather_loss, 2, NULL), 0), (jx_t[]){x, idx}, true);
  jx_t x54 = export_rand(&s, JX_F32, 2, I64(5, 4));
  int32_t v0 = -7, v1 = 2;
  jx_t s0 = jx_array(JX_I32, 0, NULL, &v0), s1 = jx_array(JX_I32, 0, NULL, &v1);
  check_case("dslices", f = jx_fn_new(dslices, 3, NULL), (jx_t[]){x54, s0, s1}, true);
  check_case("dslices_hi", f = jx_fn_new(dslices, 3, NULL), (jx_t[]){x54, s1, jx_add(s1, s1)}, true);
  /* #19's dtypes: bf16/f16 combine in f32 and round per update; narrow
   * and u64 indices (a u64 past INT64_MAX clamps high) */
  jx_t iu8 = jx_astype(jx_maximum(idx, jx_scalar_int(0)), JX_U8), i16 = jx_astype(idx, JX_I16);
  jx_t iu64 = jx_where(jx_gt(idx, jx_scalar_int(3)), jx_scalar_of(JX_U64, 0x1p64), jx_astype(iu8, JX_U64));
  jx_t xh = jx_astype(x, JX_BF16), uh = jx_astype(upd, JX_BF16);
  check_case("gathers_bf16", f = jx_fn_new(gathers, 2, NULL), (jx_t[]){xh, iu8}, true);
  check_case("scatters_bf16", f = jx_fn_new(scatters, 3, NULL), (jx_t[]){xh, iu64, uh}, true);
  check_case("scatters_f16", f = jx_fn_new(scatters, 3, NULL),
             (jx_t[]){jx_astype(x, JX_F16), i16, jx_astype(upd, JX_F16)}, true);
  check_case("scatters_i8", f = jx_fn_new(scatters_int, 3, NULL),
             (jx_t[]){jx_astype(xi, JX_I8), iu64, jx_astype(ui, JX_I8)}, true);
  check_case("dslices_u16", f = jx_fn_new(dslices, 3, NULL),
             (jx_t[]){x54, jx_astype(s1, JX_U16), jx_scalar_of(JX_U64, 0x1p64)}, true);
  jx_pool_pop();
}

/* --------------------------------------------------------- sort, scans */
static jx_t sorts(const jx_t *a, void *u) { /* x f32[3,7] (NaNs, -0.0, ties), i i32[3,7] */
  (void)u;
  jx_t x = jx_where(jx_gt(a[0], jx_scalar(1.5)), jx_scalar(NAN), jx_floor(a[0]));
  x = jx_where(jx_lt(a[0], jx_scalar(-1.5)), jx_scalar(-0.0), x);
  jx_t multi = jx_sort_multi(3, (jx_t[]){a[1], x, jx_mul(a[1], a[1])}, 1, 2);
  return JX_TUPLE(jx_sort(x, 1), jx_sort(x, 0), jx_argsort(x, 1), jx_argsort(a[1], 0), multi, jx_top_k(x, 3),
                  jx_sort(a[1], -1));
}

static jx_t permutation(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_random_permutation(a[0], 10), jx_random_permutation(jx_random_fold_in(a[0], 3), 37));
}

static jx_t sort_loss(const jx_t *a, void *u) { /* grad through sort: a gather of the permutation */
  (void)u;
  jx_t t = jx_at(jx_top_k(a[0], 2), 0);
  return jx_add(jx_sum(jx_sin(jx_sort(a[0], 0))), jx_sum(jx_square(t)));
}

static jx_t cums(const jx_t *a, void *u) { /* x f32[4,6] (NaNs), xi i32[4,6], b bool[4,6] */
  (void)u;
  jx_t x = a[0], xn = jx_where(jx_gt(x, jx_scalar(1.7)), jx_scalar(NAN), x);
  jx_t r[] = {jx_cumsum(x, 1),
              jx_cumsum_ex(x, 0, true),
              jx_cumprod(x, 1, false),
              jx_cummax(xn, 1, true),
              jx_cummin(xn, 0, false),
              jx_cumlogsumexp(x, 1, false),
              jx_cumlogsumexp(jx_log(jx_abs(xn)), 0, true),
              jx_cumsum(a[1], 0),
              jx_cumprod(a[1], 1, true),
              jx_cummax(a[1], 0, false),
              jx_cummin(a[2], 1, false),
              jx_cummax(a[2], 0, true)};
  return jx_tuple((int)(sizeof r / sizeof *r), r);
}

static jx_t prods(const jx_t *a, void *u) { /* x f32[4,6], xi i32[4,6] */
  (void)u;
  return JX_TUPLE(jx_prod_axes(a[0], 1, (int[]){0}, false), jx_prod_axes(a[0], 1, (int[]){1}, true),
                  jx_prod(a[0]), jx_prod_axes(a[1], 1, (int[]){0}, false), jx_prod(jx_astype(a[1], JX_I64)));
}

static jx_t prod_loss(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_prod_axes(jx_cumsum(a[0], 1), 1, (int[]){1}, false));
}

static void test_sort_scan(void) {
  uint64_t s = 37;
  jx_pool_push();
  jx_fn *f;
  jx_t x = export_rand(&s, JX_F32, 2, I64(3, 7));
  jx_t xi = jx_astype(jx_mul(export_rand(&s, JX_F32, 2, I64(3, 7)), jx_scalar(2)), JX_I32);
  check_case("sorts", f = jx_fn_new(sorts, 2, NULL), (jx_t[]){x, xi}, true);
  /* #19: bf16/f16 keys compared as f32 (NaN last, -0 = +0), narrow/u64 ints */
  check_case("sorts_bf16", f = jx_fn_new(sorts, 2, NULL),
             (jx_t[]){jx_astype(x, JX_BF16), jx_astype(xi, JX_I16)}, true);
  check_case("sorts_f16", f = jx_fn_new(sorts, 2, NULL),
             (jx_t[]){jx_astype(x, JX_F16), jx_astype(xi, JX_U64)}, true);
  check_case("permutation", f = jx_fn_new(permutation, 1, NULL), (jx_t[]){jx_random_key(5)}, true);
  check_case("sort_grad", f = jx_grad(jx_fn_new(sort_loss, 1, NULL), 0),
             (jx_t[]){export_rand(&s, JX_F32, 1, I64(9))}, true);
  jx_t c = export_rand(&s, JX_F32, 2, I64(4, 6));
  jx_t ci = jx_astype(jx_mul(export_rand(&s, JX_F32, 2, I64(4, 6)), jx_scalar(1e4)), JX_I32);
  jx_t cb = jx_gt(export_rand(&s, JX_F32, 2, I64(4, 6)), jx_scalar(0.5));
  check_case("cums", f = jx_fn_new(cums, 3, NULL), (jx_t[]){c, ci, cb}, true);
  /* #19: bf16/f16 scan an f32 running value, rounding each output; small ints wrap */
  check_case("cums_bf16", f = jx_fn_new(cums, 3, NULL),
             (jx_t[]){jx_astype(c, JX_BF16), jx_astype(ci, JX_I16), cb}, true);
  check_case("cums_f16", f = jx_fn_new(cums, 3, NULL),
             (jx_t[]){jx_astype(c, JX_F16), jx_astype(ci, JX_U8), cb}, true);
  check_case("prods", f = jx_fn_new(prods, 2, NULL), (jx_t[]){c, ci}, true);
  check_case("prod_grad", f = jx_grad(jx_fn_new(prod_loss, 1, NULL), 0), (jx_t[]){c}, true);
  jx_pool_pop();
}

/* --------------------------------------------------------------- linalg */
static jx_t svds(const jx_t *a, void *u) { /* a tall f32 batch, a wide f64 matrix */
  (void)u;
  jx_t t = jx_svd(a[0], true), w = jx_svd(a[1], true);
  return JX_TUPLE(jx_at(t, 0), jx_at(t, 1), jx_at(t, 2), jx_at(w, 0), jx_at(w, 1), jx_at(w, 2),
                  jx_svd(a[0], false), jx_norm(a[1], "2", 0, NULL, false));
}

/* svd's kernel, scalar_ops.h's jx_svd_f64, is the eager one: the same
 * operations in the same order (no contraction in either build) */
static void test_linalg(void) {
  uint64_t s = 71;
  jx_pool_push();
  jx_fn *f;
  jx_t x = export_rand(&s, JX_F32, 3, I64(2, 5, 3)),
       y = jx_astype(export_rand(&s, JX_F32, 2, I64(4, 6)), JX_F64);
  check_case("svds", f = jx_fn_new(svds, 2, NULL), (jx_t[]){x, y}, true);
  jx_pool_pop();
}

/* ----------------------------------------------------------------- math */
static jx_t maths(const jx_t *a, void *u) { /* x f32[24] in (-2, 2), i i32[6] */
  (void)u;
  jx_t x = a[0], h = jx_mul(x, jx_scalar(0.45)), p = jx_add(jx_abs(x), jx_scalar(1));
  jx_t r[] = {jx_tan(h),
              jx_asin(h),
              jx_acos(h),
              jx_atan(x),
              jx_sinh(x),
              jx_cosh(x),
              jx_asinh(x),
              jx_acosh(p),
              jx_atanh(h),
              jx_exp2(x),
              jx_ceil(x),
              jx_round(jx_mul(x, jx_scalar(2.5))),
              jx_erfc(x),
              jx_lgamma(x),
              jx_digamma(x),
              jx_atan2(x, h),
              jx_erf(x),
              jx_erfinv(h),
              jx_log2(p),
              jx_remainder(x, h),
              jx_fmod(x, h),
              jx_shift_right_arithmetic(a[1], jx_astype(jx_scalar(2), JX_I32)),
              jx_left_shift(a[1], jx_astype(jx_scalar(3), JX_I32)),
              jx_integer_pow(x, 5),
              jx_bitwise_xor(a[1], jx_astype(jx_scalar(5), JX_I32))};
  return jx_tuple((int)(sizeof r / sizeof *r), r);
}

static jx_t maths_f64(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0], h = jx_mul(x, jx_scalar(0.45));
  return JX_TUPLE(jx_lgamma(x), jx_digamma(x), jx_erfc(x), jx_asin(h), jx_atanh(h), jx_tan(h), jx_round(x),
                  jx_exp2(x), jx_cosh(x));
}

static jx_t math_loss(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0];
  return jx_sum(jx_add(jx_mul(jx_atan(x), jx_sinh(x)),
                       jx_add(jx_lgamma(jx_add(jx_abs(x), jx_scalar(0.5))), jx_erfc(x))));
}

static void test_math(void) {
  uint64_t s = 53;
  jx_pool_push();
  jx_fn *f;
  jx_t i6 = jx_array(JX_I32, 1, I64(6), (int32_t[]){-100, -1, 0, 7, 123456, INT32_MIN});
  check_case("maths", f = jx_fn_new(maths, 2, NULL), (jx_t[]){export_rand(&s, JX_F32, 1, I64(24)), i6}, true);
  check_case("maths_f64", f = jx_fn_new(maths_f64, 1, NULL), (jx_t[]){export_rand(&s, JX_F64, 1, I64(15))},
             true);
  check_case("math_grad", f = jx_grad(jx_fn_new(math_loss, 1, NULL), 0),
             (jx_t[]){export_rand(&s, JX_F32, 1, I64(11))}, true);
  jx_pool_pop();
}

/* ---------------------------------------- custom rules, remat, bounded loops */
static jx_t cf(const jx_t *a, void *u) { /* the custom function: x * sin(x) */
  (void)u;
  return jx_mul(a[0], jx_sin(a[0]));
}
static jx_t cf_fwd(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_mul(a[0], jx_sin(a[0])), a[0]);
}
static jx_t cf_bwd(const jx_t *a, void *u) { /* a deliberately different rule: 2 * ct * cos(x) */
  (void)u;
  return JX_TUPLE(jx_mul(jx_mul(a[1], jx_cos(a[0])), jx_scalar(2)));
}
static jx_t cf_jvp(const jx_t *a, void *u) { /* (primals, tangents) -> (out, 3 * t) */
  (void)u;
  jx_t x = jx_at(a[0], 0), t = jx_at(a[1], 0);
  return JX_TUPLE(jx_mul(x, jx_sin(x)), jx_mul(t, jx_scalar(3)));
}
static jx_t heavy(const jx_t *a, void *u) {
  (void)u;
  return jx_tanh(jx_exp(jx_mul(a[0], jx_scalar(0.3))));
}
static jx_fn *g_cvjp, *g_cjvp, *g_remat;
static jx_t custom_loss(const jx_t *a, void *u) {
  (void)u;
  jx_t v = jx_call(g_cvjp, a), j = jx_call(g_cjvp, a), r = jx_call(g_remat, a);
  return jx_sum(jx_add(jx_add(v, j), r));
}

static jx_t bw_cond(const jx_t *a, void *u) {
  (void)u;
  return jx_lt(jx_sum(a[0]), jx_scalar(40));
}
static jx_t bw_body(const jx_t *a, void *u) {
  (void)u;
  return jx_add(jx_mul(a[0], jx_scalar(1.25)), jx_scalar(0.5));
}
static jx_fn *g_bw_cond, *g_bw_body;
static jx_t bounded(const jx_t *a, void *u) {
  (void)u;
  return jx_while_loop_bounded(g_bw_cond, g_bw_body, a[0], 20);
}
static jx_t bounded_loss(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_sin(bounded(a, NULL)));
}

static void test_custom(void) {
  uint64_t s = 71;
  jx_pool_push();
  g_cvjp = jx_custom_vjp(jx_fn_new(cf, 1, NULL), jx_fn_new(cf_fwd, 1, NULL), jx_fn_new(cf_bwd, 2, NULL));
  g_cjvp = jx_custom_jvp(jx_fn_new(cf, 1, NULL), jx_fn_new(cf_jvp, 2, NULL));
  g_remat = jx_checkpoint(jx_fn_new(heavy, 1, NULL), JX_REMAT_NOTHING);
  g_bw_cond = jx_fn_new(bw_cond, 1, NULL), g_bw_body = jx_fn_new(bw_body, 1, NULL);
  jx_t x = export_rand(&s, JX_F32, 1, I64(7));
  jx_fn *f;
  check_case("custom_primal", f = jx_fn_new(custom_loss, 1, NULL), &x, true);
  /* the user's rules are what the gradient runs (a custom_vjp rule that is not the true derivative) */
  check_case("custom_grad", f = jx_grad(jx_fn_new(custom_loss, 1, NULL), 0), &x, true);
  check_case("bounded_while", f = jx_fn_new(bounded, 1, NULL), &x, true);
  check_case("bounded_grad", f = jx_grad(jx_fn_new(bounded_loss, 1, NULL), 0), &x, true);
  jx_pool_pop();
}

/* ------------------------------------------------------------ edge cases */
static jx_t edges(const jx_t *a, void *u) { /* x f32[2,3], w f32[4,3], e f32[0,3] */
  (void)u;
  jx_t nosp = jx_conv_general_dilated(a[0], a[1], NULL, NULL, NULL, NULL, NULL, 1);  /* no spatial dim */
  jx_t empty_win = jx_reduce_window(a[0], "max", I64(1, 5), NULL, NULL, NULL, NULL); /* [2, 0] */
  jx_t one = jx_reduce_window(a[0], "sum", I64(2, 3), NULL, NULL, NULL, NULL);
  jx_t zero = jx_zeros(JX_I32, 0, NULL);
  return JX_TUPLE(nosp, empty_win, one, jx_sort(a[2], 0), jx_argsort(a[2], 1), jx_cumsum(a[2], 0),
                  jx_prod_axes(a[2], 1, (int[]){0}, false),
                  jx_dynamic_slice(a[0], (jx_t[]){zero, zero}, I64(0, 2)), jx_sort(a[0], 0),
                  jx_cummin(a[0], 0, true));
}

/* no spatial dim, empty windows and operands, one-element axes */
static void test_edges(void) {
  uint64_t s = 3;
  jx_pool_push();
  check_case("edges", jx_fn_new(edges, 3, NULL),
             (jx_t[]){export_rand(&s, JX_F32, 2, I64(2, 3)), export_rand(&s, JX_F32, 2, I64(4, 3)),
                      export_rand(&s, JX_F32, 2, I64(0, 3))},
             false);
  jx_pool_pop();
}

/* ------------------------------------------------------------- OpenMP */
static jx_t omp_net(const jx_t *a, void *u) { /* x f32[8,3,24,24], w f32[8,3,3,3], W f32[4608,40] */
  (void)u;
  jx_t h = jx_tanh(jx_conv(a[0], a[1], I64(1, 1), "SAME"));
  return JX_TUPLE(h, jx_matmul(jx_reshape(jx_sum_axes(h, 1, (int[]){1}, false), 2, I64(8, -1)), a[2]));
}

/* the openmp option: pragmas in the source, the strict build without
 * -fopenmp unchanged, and the -fopenmp build (2 threads) giving the
 * plain export's bytes (each output is computed by the same code) */
static void test_openmp(void) {
  uint64_t s = 97;
  jx_pool_push();
  jx_fn *f = jx_fn_new(omp_net, 3, NULL);
  jx_t args[3] = {export_rand(&s, JX_F32, 4, I64(8, 3, 24, 24)), export_rand(&s, JX_F32, 4, I64(8, 3, 3, 3)),
                  export_rand(&s, JX_F32, 2, I64(576, 40))};
  check_case("omp_plain", f, args, false);
  char dir[512], path[600];
  snprintf(dir, sizeof dir, "%s/net_omp", tmpdir);
  mkdir(dir, 0700);
  jx_t err = jx_export_c_ex(f, args, "net_omp", dir, &(jx_export_options){.openmp = true});
  CHECKF(!err, "openmp: %s", err ? jx_error(err) : "");
  char *drv = export_driver("net_omp");
  snprintf(path, sizeof path, "%s/main.c", dir);
  write_text(path, drv);
  free(drv);
  size_t n = 0;
  snprintf(path, sizeof path, "%s/net_omp.c", dir);
  char *src = read_file(path, &n);
  int pragmas = 0;
  for (const char *p = src; p && (p = strstr(p, "#pragma omp parallel for")); p++) pragmas++;
  CHECKF(pragmas >= 3, "openmp: %d pragmas (a map, the conv, the product expected)", pragmas);
  free(src);
  CHECK(!run_cmd(
      "cd %s && cp ../omp_plain/in.bin . && cc %s -O2 -o prog net_omp.c main.c -lm && ./prog in.bin out.bin "
      "&& cmp out.bin ../omp_plain/out.bin",
      dir, EXPORT_STRICT));
  CHECK(!run_cmd(
      "cd %s && cc %s -fopenmp -O2 -o prog_omp net_omp.c main.c -lm && OMP_NUM_THREADS=2 ./prog_omp in.bin "
      "out_omp.bin && cmp out_omp.bin ../omp_plain/out.bin",
      dir, EXPORT_STRICT));
  jx_pool_pop();
}

/* ------------------------------------------------------------- errors */
static jx_t uses_psum(const jx_t *a, void *u) {
  (void)u;
  return jx_psum(a[0], "i");
}

static jx_fn *g_lin;
static jx_t jvp_custom(const jx_t *a, void *u) { /* jvp of a custom_vjp function: a custom_lin */
  (void)u;
  return jx_jvp(g_lin, &a[0], &a[1]);
}

/* an export that fails writes no file */
static void expect_refused(jx_fn *f, const jx_t *args, const char *name, const char *what) {
  char dir[512], path[600];
  snprintf(dir, sizeof dir, "%s/errors", tmpdir);
  mkdir(dir, 0700);
  jx_t r = jx_export_c(f, args, name, dir);
  CHECKF(r && !jx_ok(r) && strstr(jx_error(r), what), "%s: %s", name, r ? jx_error(r) : "no error");
  snprintf(path, sizeof path, "%s/%s.c", dir, name);
  CHECK(access(path, F_OK) != 0);
  snprintf(path, sizeof path, "%s/%s.h", dir, name);
  CHECK(access(path, F_OK) != 0);
}

static void test_errors(void) {
  jx_pool_push();
  jx_t x = jx_ones(JX_F32, 1, I64(3));
  /* a collective outside pmap: the trace's error, naming it */
  expect_refused(jx_fn_new(uses_psum, 1, NULL), &x, "coll", "psum");
  /* custom_lin runs the user's C rule: no portable rendering, an error naming it */
  g_lin = jx_custom_vjp(jx_fn_new(cf, 1, NULL), jx_fn_new(cf_fwd, 1, NULL), jx_fn_new(cf_bwd, 2, NULL));
  expect_refused(jx_fn_new(jvp_custom, 2, NULL), (jx_t[]){x, x}, "lin", "custom_lin");
  jx_pool_pop();
}

/* the files of a case built again with clang (when installed) and under
 * ASan + UBSan: each run must give the gcc build's bytes */
static void check_variants(const char *name) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
  if (!system("command -v clang >/dev/null 2>&1"))
    CHECKF(!run_cmd(
               "cd %s && clang %s -O2 -o prog_clang %s.c main.c -lm && ./prog_clang in.bin out_clang.bin && "
               "cmp out.bin out_clang.bin",
               dir, EXPORT_STRICT, name),
           "%s: clang", name);
  CHECKF(!run_cmd(
             "cd %s && cc %s -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -o prog_san %s.c "
             "main.c -lm && ASAN_OPTIONS=detect_leaks=1 ./prog_san in.bin out_san.bin && cmp out.bin "
             "out_san.bin",
             dir, EXPORT_STRICT, name),
         "%s: -fsanitize=address,undefined", name);
}

int main(int argc, char **argv) {
  (void)argc, (void)argv;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/jx_export_ops_XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  g_pool = jx_fn_new(pool, 1, NULL);
  g_dus_body = jx_fn_new(dus_body, 2, NULL);
  test_conv();
  test_train_step();
  test_index();
  test_sort_scan();
  test_linalg();
  test_math();
  test_custom();
  test_errors();
  test_openmp();
  test_edges();
  static const char *const variants[] = {"cnn_grad", "windows", "scatters", "dslices", "sorts", "cums"};
  for (size_t i = 0; i < sizeof variants / sizeof *variants; i++) check_variants(variants[i]);
  if (!getenv("JX_KEEP_EXPORT")) run_cmd("rm -rf %s", tmpdir);
  printf("test_export_ops: %d passed, %d failed (%d programs built)\n", check_passed, check_failed,
         ncompiled);
  return check_failed != 0;
}
