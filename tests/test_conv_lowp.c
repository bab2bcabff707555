/* Convolutions in bf16 and f16 (#19): the operands widened exactly to f32,
 * the f32 kernel, each output rounded once. Checked:
 *   - bit-equal to the f32 convolution of the widened operands, rounded,
 *     over layouts, strides, padding, dilations and feature groups;
 *   - jit bit-equal to eager;
 *   - grad with respect to both operands runs in the operands' dtype and
 *     agrees with the f32 gradient within the 16-bit rounding of the
 *     cotangent computations;
 *   - vmap over the kernel equals the loop of single calls;
 *   - jx_export_c renders them (f32 sums, rounded once): on exact data
 *     (small integers) every summation order gives the same f32 sums, so
 *     the unit built strict gives jit's bytes. */
#include "check.h"
#include "export_harness.h"

#include <jx.h>
#include <math.h>

typedef struct {
  const char *dn;
  int64_t stride[2], pad[4], ldil[2], rdil[2];
  int fgc;
} case_t;

/* lhs NCHW [2, 4, 7, 6] or NHWC [2, 7, 6, 4]; rhs OIHW [8, 4/fgc, 3, 2] or HWIO */
static const case_t cases[] = {
    {NULL, {1, 1}, {0, 0, 0, 0}, {1, 1}, {1, 1}, 1},
    {NULL, {2, 1}, {1, 1, 0, 1}, {1, 1}, {1, 2}, 1},
    {"NHWC,HWIO,NHWC", {1, 2}, {2, 1, 1, 0}, {2, 1}, {1, 1}, 2},
    {"NHWC,HWIO,NHWC", {1, 1}, {1, 1, 1, 1}, {1, 1}, {2, 1}, 4},
};

static jx_t conv_of(const case_t *c, jx_t x, jx_t w) {
  return jx_conv_general_dilated(x, w, c->stride, c->pad, c->ldil, c->rdil, c->dn, c->fgc);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double next_unit(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(rng >> 11) / 9007199254740992.0;
}

/* values in dt: small integers (exact: every sum of products is an exact
 * f32) or uniform in [-2, 2) rounded to dt */
static jx_t rand_in(jx_dtype dt, bool exact, int nd, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= shape[i];
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) v[i] = exact ? floor(next_unit() * 7) - 3 : next_unit() * 4 - 2;
  jx_t x = jx_astype(jx_array(JX_F64, nd, shape, v), dt);
  free(v);
  return x;
}

static const case_t *g_case;
static jx_t conv_fn(const jx_t *a, void *u) {
  (void)u;
  return conv_of(g_case, a[0], a[1]);
}
static jx_t conv_loss(const jx_t *a, void *u) {
  (void)u;
  jx_t y = conv_of(g_case, a[0], a[1]);
  return jx_sum(jx_astype(jx_mul(y, y), JX_F32));
}

static void shapes(const case_t *c, int64_t *xs, int64_t *ws) {
  bool nhwc = c->dn != NULL;
  const int64_t x_nchw[4] = {2, 4, 7, 6}, x_nhwc[4] = {2, 7, 6, 4};
  const int64_t w_oihw[4] = {8, 4 / c->fgc, 3, 2}, w_hwio[4] = {3, 2, 4 / c->fgc, 8};
  memcpy(xs, nhwc ? x_nhwc : x_nchw, sizeof x_nchw);
  memcpy(ws, nhwc ? w_hwio : w_oihw, sizeof w_oihw);
}

static void test_values(void) {
  const jx_dtype dts[2] = {JX_BF16, JX_F16};
  for (int d = 0; d < 2; d++)
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
      jx_pool_push();
      const case_t *c = &cases[k];
      g_case = c;
      int64_t xs[4], ws[4];
      shapes(c, xs, ws);
      jx_t x = rand_in(dts[d], false, 4, xs), w = rand_in(dts[d], false, 4, ws);
      jx_t got = conv_of(c, x, w);
      jx_t want = jx_astype(conv_of(c, jx_astype(x, JX_F32), jx_astype(w, JX_F32)), dts[d]);
      CHECKF(jx_ok(got) && jx_dtype_of(got) == dts[d] && check_same_bits(got, want),
             "%s case %zu: not the rounded f32 convolution: %s", jx_dtype_name(dts[d]), k, jx_error(got));
      jx_fn *f = jx_fn_new(conv_fn, 2, NULL), *jf = jx_jit(f);
      CHECKF(check_same_bits(JX_CALL(jf, x, w), got), "%s case %zu: jit differs from eager",
             jx_dtype_name(dts[d]), k);
      /* grad in the operands' dtype, near the f32 gradient */
      jx_fn *g = jx_grad_ex(jx_fn_new(conv_loss, 2, NULL), 2, (int[]){0, 1}, false);
      jx_t gl = JX_CALL(g, x, w), gf = JX_CALL(g, jx_astype(x, JX_F32), jx_astype(w, JX_F32));
      for (int i = 0; i < 2 && jx_ok(gl) && jx_ok(gf); i++) {
        jx_t a = jx_at(gl, i), b = jx_at(gf, i);
        double scale = jx_item(jx_max(jx_abs(b))),
               diff = jx_item(jx_max(jx_abs(jx_sub(jx_astype(a, JX_F32), b))));
        /* each cotangent op rounds to 8 (bf16) or 11 (f16) bits; a few roundings deep */
        double tol = (dts[d] == JX_BF16 ? 0x1p-8 : 0x1p-11) * 8 * scale;
        CHECKF(jx_dtype_of(a) == dts[d] && diff <= tol, "%s case %zu: grad %d differs by %g (scale %g)",
               jx_dtype_name(dts[d]), k, i, diff, scale);
      }
      CHECKF(jx_ok(gl), "%s case %zu: grad: %s", jx_dtype_name(dts[d]), k, jx_error(gl));
      /* vmap over 3 kernels */
      int64_t vws[5] = {3, ws[0], ws[1], ws[2], ws[3]};
      jx_t vw = rand_in(dts[d], false, 5, vws);
      jx_t vy = JX_CALL(jx_vmap(f, (int[]){JX_NONE, 0}, 0), x, vw);
      jx_t loop[3];
      for (int b = 0; b < 3; b++) loop[b] = conv_of(c, x, jx_take(vw, jx_scalar_int(b), 0));
      CHECKF(check_same_bits(vy, jx_stack(3, loop, 0)), "%s case %zu: vmap differs from the loop",
             jx_dtype_name(dts[d]), k);
      jx_pool_pop();
    }
}

static void test_export(void) {
  char dir[] = "/tmp/jx_conv_lowp_XXXXXX";
  if (!mkdtemp(dir)) return;
  const jx_dtype dts[2] = {JX_BF16, JX_F16};
  for (int d = 0; d < 2; d++)
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k += 2) {
      jx_pool_push();
      const case_t *c = &cases[k];
      g_case = c;
      int64_t xs[4], ws[4];
      shapes(c, xs, ws);
      jx_t args[2] = {rand_in(dts[d], true, 4, xs), rand_in(dts[d], true, 4, ws)};
      jx_fn *jf = jx_jit(jx_fn_new(conv_fn, 2, NULL));
      jx_t want = jx_call(jf, args);
      char name[32];
      snprintf(name, sizeof name, "conv_%s_%zu", jx_dtype_name(dts[d]), k);
      export_check_bytes(jf, args, 2, want, dir, name);
      jx_pool_pop();
    }
  if (!getenv("JX_KEEP_EXPORT")) run_cmd("rm -rf %s", dir);
}

int main(void) {
  check_private_cache("conv_lowp");
  test_values();
  test_export();
  check_private_cache_remove();
  return check_report("test_conv_lowp");
}
