/* Convolution, windows and pooling: values and gradients against PyTorch
 * (golden/conv_golden.txt, made by golden/gen_conv_golden.py), in f64 and
 * f32; layouts against each other; vmap with a mapped kernel against a
 * loop; jit(value_and_grad) of a small CNN against eager; and the error
 * values for bad shapes, dimension numbers and windows. The golden cases
 * run with each convolution kernel (jx's own, and oneDNN's when built
 * with it), and the two are compared on larger f32 problems. */
#include "backend/cpu/conv.h" /* jx_cpu_conv_force: both kernels, oneDNN's and jx's own */
#include "check.h"

#include <jx.h>

#define GOLDEN "golden/conv_golden.txt"

/* ------------------------------------------------------------- parsing */
static jx_t parse_array(char **s) {
  char *p = *s;
  int64_t shape[8];
  int nd = 0;
  if (*p == 's') {
    p++;
  } else {
    for (;;) {
      shape[nd++] = strtoll(p, &p, 10);
      if (*p != 'x') break;
      p++;
    }
  }
  if (*p++ != ':') return NULL;
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= shape[i];
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) {
    v[i] = strtod(p, &p);
    if (*p == ',') p++;
  }
  while (*p == ' ') p++;
  *s = p;
  jx_t a = jx_array(JX_F64, nd, shape, v);
  free(v);
  return a;
}

/* value of key in "k=v;k=v" as a list of ints; returns the count (-1: absent) */
static int param_ints(const char *params, const char *key, int64_t *out) {
  char pat[32];
  snprintf(pat, sizeof pat, "%s=", key);
  const char *p = params;
  while ((p = strstr(p, pat)) && p != params && p[-1] != ';') p++;
  if (!p) return -1;
  p += strlen(pat);
  int n = 0;
  while (*p && *p != ';' && *p != ' ') {
    out[n++] = strtoll(p, (char **)&p, 10);
    if (*p == ',') p++;
  }
  return n;
}
static const char *param_str(const char *params, const char *key, char *buf, size_t cap) {
  char pat[32];
  snprintf(pat, sizeof pat, "%s=", key);
  const char *p = strstr(params, pat);
  if (!p) return NULL;
  p += strlen(pat);
  size_t n = strcspn(p, "; ");
  snprintf(buf, cap, "%.*s", (int)n, p);
  return buf;
}

static double max_abs_diff(jx_t a, jx_t b) {
  if (jx_size(b) == 0) return 0;
  return jx_item(jx_max(jx_abs(jx_sub(jx_astype(a, JX_F64), b))));
}
static bool same_shape(jx_t a, jx_t b) {
  if (!jx_ok(a) || jx_ndim(a) != jx_ndim(b)) return false;
  for (int i = 0; i < jx_ndim(a); i++)
    if (jx_shape(a)[i] != jx_shape(b)[i]) return false;
  return true;
}

/* ------------------------------------------------------------- the ops */
typedef struct {
  char kind[8], params[256];
  jx_dtype dt;
} golden_case;

static jx_t run_op(const jx_t *a, void *u) {
  const golden_case *c = u;
  const char *pa = c->params;
  int64_t st[8], pad[16], ld[8], rd[8], g[1] = {1}, win[8], wd[8];
  char dn[64], fn[16];
  bool has_ld = param_ints(pa, "ld", ld) >= 0, has_rd = param_ints(pa, "rd", rd) >= 0;
  param_ints(pa, "st", st);
  if (!strcmp(c->kind, "conv")) {
    param_ints(pa, "pad", pad), param_ints(pa, "g", g);
    return jx_conv_general_dilated_ex(a[0], a[1], st, pad, has_ld ? ld : NULL, has_rd ? rd : NULL,
                                      param_str(pa, "dn", dn, sizeof dn), (int)g[0], 1);
  }
  if (!strcmp(c->kind, "convT")) {
    param_ints(pa, "pad", pad);
    return jx_conv_transpose(a[0], a[1], st, NULL, pad, rd, param_str(pa, "dn", dn, sizeof dn), true);
  }
  /* pool: channels-last x, the window over the spatial dims */
  param_str(pa, "fn", fn, sizeof fn);
  int nw = param_ints(pa, "win", win), rank = nw + 2;
  if (!strcmp(fn, "max_pool") || !strcmp(fn, "avg_pool")) {
    char ps[8];
    param_str(pa, "pad", ps, sizeof ps);
    return (fn[0] == 'm' ? jx_max_pool : jx_avg_pool)(a[0], nw, win, st, ps);
  }
  int64_t w[8], s[8], p[16] = {0}, d[8], sp[16];
  bool has_wd = param_ints(pa, "wd", wd) >= 0;
  param_ints(pa, "pad", sp);
  for (int i = 0; i < rank; i++) {
    bool in = i > 0 && i < rank - 1;
    w[i] = in ? win[i - 1] : 1, s[i] = in ? st[i - 1] : 1, d[i] = in && has_wd ? wd[i - 1] : 1;
    if (in) p[2 * i] = sp[2 * (i - 1)], p[2 * i + 1] = sp[2 * (i - 1) + 1];
  }
  return jx_reduce_window(a[0], fn[3] == 'm' ? "max" : "sum", w, s, p, NULL, d);
}

static void check_case(golden_case *c, int lineno, jx_t *arrs) {
  int nin = strcmp(c->kind, "pool") ? 2 : 1;
  jx_t ins[2], ct = arrs[nin], want = arrs[nin + 1];
  for (int i = 0; i < nin; i++) ins[i] = jx_astype(arrs[i], c->dt);
  double tol = c->dt == JX_F64 ? 1e-12 : 2e-5;
  jx_fn *f = jx_fn_new(run_op, nin, c), *back = NULL;
  jx_t got = jx_vjp(f, ins, &back);
  CHECKF(same_shape(got, want), "line %d (%s, %s): result %s", lineno, c->kind, c->params,
         jx_ok(got) ? "has the wrong shape" : jx_error(got));
  if (same_shape(got, want)) {
    double err = max_abs_diff(got, want);
    CHECKF(err <= tol * (1 + max_abs_diff(want, jx_zeros_like(want))), "line %d (%s %s): max error %g",
           lineno, c->kind, c->params, err);
    jx_t gr = JX_CALL(back, jx_astype(ct, c->dt));
    for (int i = 0; i < nin; i++) {
      jx_t gw = arrs[nin + 2 + i], gg = jx_at(gr, i);
      CHECKF(same_shape(gg, gw), "line %d (%s): gradient %d: %s", lineno, c->kind, i, jx_error(gg));
      if (same_shape(gg, gw)) {
        double e = max_abs_diff(gg, gw);
        CHECKF(e <= tol * (1 + max_abs_diff(gw, jx_zeros_like(gw))),
               "line %d (%s %s): gradient %d max error %g", lineno, c->kind, c->params, i, e);
      }
    }
  }
  jx_fn_free(back);
  jx_fn_free(f);
}

static void test_golden(void) {
  FILE *fp = fopen(GOLDEN, "r");
  CHECKF(fp != NULL, "cannot open %s (run from tests/)", GOLDEN);
  if (!fp) return;
  size_t cap = 1 << 20;
  char *line = malloc(cap);
  int lineno = 0, ncases = 0;
  while (fgets(line, (int)cap, fp)) {
    lineno++;
    if (line[0] == '#' || line[0] == '\n') continue;
    golden_case c;
    char *p = line;
    sscanf(p, "%7s %255s", c.kind, c.params);
    p = strchr(strchr(p, ' ') + 1, ' ') + 1;
    jx_pool_push();
    jx_t arrs[6];
    int n = 0;
    while (*p && *p != '\n' && n < 6) arrs[n++] = parse_array(&p);
    CHECKF(n == (strcmp(c.kind, "pool") ? 6 : 4), "line %d: %d arrays", lineno, n);
    for (int prec = 0; prec < 2; prec++) {
      c.dt = prec ? JX_F32 : JX_F64;
      check_case(&c, lineno, arrs);
    }
    jx_pool_pop();
    ncases++;
  }
  free(line);
  fclose(fp);
  CHECKF(ncases >= 20, "only %d golden cases", ncases);
  printf("%d golden cases (PyTorch), f64 and f32, %s kernel\n", ncases, jx_cpu_conv_backend());
}

/* ------------------------------------------------- layouts, vmap, jit */
static jx_t randu(uint64_t seed, int nd, const int64_t *shape) {
  return jx_random_uniform(jx_random_key(seed), JX_F64, nd, shape, -1, 1);
}

/* NHWC/HWIO and a permuted layout give the NCHW result, transposed */
static void test_layouts(void) {
  jx_pool_push();
  jx_t x = randu(1, JX_SHAPE(2, 4, 6, 5)), w = randu(2, JX_SHAPE(6, 2, 3, 2));
  const int64_t st[] = {2, 1}, pad[] = {1, 0, 0, 1}, rd[] = {1, 2};
  jx_t ref = jx_conv_general_dilated(x, w, st, pad, NULL, rd, "NCHW,OIHW,NCHW", 2);
  jx_t y = jx_conv_general_dilated(jx_transpose(x, (int[]){0, 2, 3, 1}), jx_transpose(w, (int[]){2, 3, 1, 0}),
                                   st, pad, NULL, rd, "NHWC,HWIO,NHWC", 2);
  CHECK(same_shape(jx_transpose(y, (int[]){0, 3, 1, 2}), ref));
  CHECK(max_abs_diff(jx_transpose(y, (int[]){0, 3, 1, 2}), ref) < 1e-13);
  /* lhs as C,W,N,H; rhs as W,O,H,I; out as H,C,W,N: the spatial dims
   * are taken in the rhs's order (W, H), so are strides and padding */
  jx_t z = jx_conv_general_dilated(jx_transpose(x, (int[]){1, 3, 0, 2}), jx_transpose(w, (int[]){3, 0, 2, 1}),
                                   (int64_t[]){1, 2}, (int64_t[]){0, 1, 1, 0}, NULL, (int64_t[]){2, 1},
                                   "CWNH,WOHI,HCWN", 2);
  CHECK(max_abs_diff(jx_transpose(z, (int[]){3, 1, 0, 2}), ref) < 1e-13);
  /* jx_conv (lax.conv) with SAME: output keeps ceil(in / stride) */
  jx_t s = jx_conv(x, jx_ones(JX_F64, JX_SHAPE(3, 4, 3, 3)), (int64_t[]){2, 2}, "SAME");
  CHECK(jx_ok(s) && jx_shape(s)[2] == 3 && jx_shape(s)[3] == 3);
  /* conv_transpose SAME with stride 2 doubles the spatial size (JAX) */
  jx_t t = jx_conv_transpose(jx_transpose(x, (int[]){0, 2, 3, 1}), randu(3, JX_SHAPE(3, 3, 4, 5)),
                             (int64_t[]){2, 2}, "SAME", NULL, NULL, NULL, false);
  CHECK(jx_ok(t) && jx_shape(t)[1] == 12 && jx_shape(t)[2] == 10 && jx_shape(t)[3] == 5);
  jx_t tv = jx_conv_transpose(jx_transpose(x, (int[]){0, 2, 3, 1}), randu(3, JX_SHAPE(3, 3, 4, 5)),
                              (int64_t[]){2, 2}, "VALID", NULL, NULL, NULL, false);
  CHECK(jx_ok(tv) && jx_shape(tv)[1] == 13 && jx_shape(tv)[2] == 11);
  jx_pool_pop();
}

typedef struct {
  int fgc;
} vm_ctx;
static jx_t conv_fn(const jx_t *a, void *u) {
  const vm_ctx *c = u;
  return jx_conv_general_dilated(a[0], a[1], (int64_t[]){1, 2}, (int64_t[]){1, 1, 0, 1}, NULL, NULL,
                                 "NHWC,HWIO,NHWC", c->fgc);
}

/* vmap with only the kernel mapped (the rules harness maps the lhs) */
static void test_vmap_kernel(void) {
  for (int fgc = 1; fgc <= 2; fgc++) {
    jx_pool_push();
    vm_ctx c = {fgc};
    jx_t x = randu(4, JX_SHAPE(2, 5, 6, 4)), ws = randu(5, JX_SHAPE(3, 3, 2, 4 / fgc, 6));
    jx_fn *f = jx_fn_new(conv_fn, 2, &c), *vf = jx_vmap(f, (int[]){JX_NONE, 0}, 1);
    jx_t got = JX_CALL(vf, x, ws);
    jx_t want[3];
    for (int b = 0; b < 3; b++)
      want[b] = JX_CALL(
          f, x,
          jx_squeeze(jx_slice(ws, (int64_t[]){b, 0, 0, 0, 0}, (int64_t[]){b + 1, 3, 2, 4 / fgc, 6}, NULL),
                     0));
    jx_t st = jx_stack(3, want, 1);
    CHECKF(same_shape(got, st) && max_abs_diff(got, st) < 1e-13, "vmap over the kernel, fgc %d: %s", fgc,
           jx_error(got));
    jx_fn_free(vf), jx_fn_free(f);
    jx_pool_pop();
  }
}

static jx_t int_window_sum(const jx_t *a, void *u) {
  (void)u;
  return jx_reduce_window(a[0], "sum", (int64_t[]){2}, NULL, NULL, NULL, NULL);
}

/* vmap over an empty axis (a fuzzer find: the batching rule divided by
 * the mapped size): lhs, kernel or both mapped, eagerly and under jit;
 * each result is the unbatched result's type with a 0 axis in front */
static void test_vmap_empty(void) {
  static const int axes[3][2] = {{0, JX_NONE}, {JX_NONE, 0}, {0, 0}};
  for (int fgc = 1; fgc <= 2; fgc++)
    for (int k = 0; k < 3; k++) {
      jx_pool_push();
      vm_ctx c = {fgc};
      jx_t x = axes[k][0] ? randu(4, JX_SHAPE(2, 5, 6, 4)) : jx_zeros(JX_F64, JX_SHAPE(0, 2, 5, 6, 4));
      jx_t w =
          axes[k][1] ? randu(5, JX_SHAPE(3, 2, 4 / fgc, 6)) : jx_zeros(JX_F64, JX_SHAPE(0, 3, 2, 4 / fgc, 6));
      jx_fn *f = jx_fn_new(conv_fn, 2, &c), *vf = jx_vmap(f, (int[]){axes[k][0], axes[k][1]}, 0),
            *jvf = jx_jit(vf);
      jx_t one = JX_CALL(f, randu(4, JX_SHAPE(2, 5, 6, 4)), randu(5, JX_SHAPE(3, 2, 4 / fgc, 6)));
      jx_t got[2] = {JX_CALL(vf, x, w), JX_CALL(jvf, x, w)};
      for (int j = 0; j < 2; j++) {
        bool ok = jx_ok(got[j]) && jx_ndim(got[j]) == 5 && jx_shape(got[j])[0] == 0;
        for (int d = 0; ok && d < 4; d++) ok = jx_shape(got[j])[d + 1] == jx_shape(one)[d];
        CHECKF(ok, "vmap over an empty axis, axes %d %d, fgc %d, %s: %s", axes[k][0], axes[k][1], fgc,
               j ? "jit" : "eager", jx_error(got[j]));
      }
      jx_fn_free(jvf), jx_fn_free(vf), jx_fn_free(f);
      jx_pool_pop();
    }
}

/* a small CNN loss: conv-relu-maxpool, avgpool, dense */
static jx_t cnn_loss(const jx_t *a, void *u) {
  (void)u;
  jx_t h =
      jx_conv_general_dilated(a[1], a[0], NULL, (int64_t[]){1, 1, 1, 1}, NULL, NULL, "NHWC,HWIO,NHWC", 1);
  h = jx_max_pool(jx_relu(h), 2, (int64_t[]){2, 2}, (int64_t[]){2, 2}, "VALID");
  h = jx_avg_pool(h, 2, (int64_t[]){2, 2}, NULL, "SAME");
  return jx_sum(jx_mul(h, h));
}
static void test_jit_grad(void) {
  jx_pool_push();
  jx_t w = randu(6, JX_SHAPE(3, 3, 2, 4)), x = randu(7, JX_SHAPE(3, 8, 8, 2));
  for (int prec = 0; prec < 2; prec++) {
    jx_dtype dt = prec ? JX_F32 : JX_F64;
    jx_fn *f = jx_fn_new(cnn_loss, 2, NULL), *vg = jx_value_and_grad(f, 0), *jvg = jx_jit(vg);
    jx_t e = JX_CALL(vg, jx_astype(w, dt), jx_astype(x, dt)),
         j = JX_CALL(jvg, jx_astype(w, dt), jx_astype(x, dt));
    CHECKF(jx_ok(e) && jx_ok(j), "value_and_grad: %s / %s", jx_error(e), jx_error(j));
    if (jx_ok(e) && jx_ok(j)) {
      double tol = prec ? 1e-5 : 1e-13;
      CHECK(check_close(jx_item(jx_at(j, 0)), jx_item(jx_at(e, 0)), tol, tol));
      CHECK(max_abs_diff(jx_at(j, 1), jx_astype(jx_at(e, 1), JX_F64)) < tol * 10);
    }
    jx_fn_free(jvg), jx_fn_free(vg), jx_fn_free(f);
  }
  jx_pool_pop();
}

/* oneDNN's kernel against jx's own on f32 problems of a CNN's sizes:
 * values and both gradients (the filter gradient takes oneDNN's
 * backward-weights path, strided data gradients jx's). oneDNN's calls run
 * in parts of the batch on jx's pool: batches of 16 and of 7 (parts of
 * unequal size) at 1, 2, 3 and 5 threads (the filter gradient sums the
 * parts' partials) */
typedef struct {
  int64_t st, pad, rd, fgc, n;
  const char *dn;
} xk_ctx;
static jx_t xk_loss(const jx_t *a, void *u) {
  const xk_ctx *c = u;
  jx_t y =
      jx_conv_general_dilated(a[0], a[1], (int64_t[]){c->st, c->st}, (int64_t[]){c->pad, c->pad, c->pad, 0},
                              NULL, (int64_t[]){c->rd, 1}, c->dn, (int)c->fgc);
  return jx_sum(jx_mul(y, jx_sin(y)));
}
static void test_kernels_agree(void) {
  const xk_ctx cases[] = {{1, 2, 1, 1, 16, "NHWC,HWIO,NHWC"}, {2, 1, 1, 1, 16, "NHWC,HWIO,NHWC"},
                          {1, 1, 2, 2, 16, "NCHW,OIHW,NCHW"}, {1, 0, 1, 1, 16, "NCHW,OIHW,NCHW"},
                          {1, 2, 1, 1, 7, "NHWC,HWIO,NHWC"},  {1, 1, 1, 2, 7, "NHWC,HWIO,NHWC"},
                          {1, 1, 2, 1, 7, "NCHW,OIHW,NCHW"}};
  const int threads[] = {2, 1, 3, 5}, was = jx_num_threads();
  for (int i = 0; i < 7; i++) {
    jx_pool_push();
    const xk_ctx *c = &cases[i];
    bool nhwc = c->dn[1] == 'H';
    jx_t x = jx_random_normal(jx_random_key(10 + i), JX_F32, nhwc ? 4 : 4,
                              nhwc ? (int64_t[]){c->n, 14, 13, 8} : (int64_t[]){c->n, 8, 14, 13});
    jx_t w = jx_random_normal(jx_random_key(20 + i), JX_F32, 4,
                              nhwc ? (int64_t[]){5, 3, 8 / c->fgc, 12} : (int64_t[]){12, 8 / c->fgc, 5, 3});
    jx_fn *f = jx_fn_new(xk_loss, 2, (void *)c), *g = jx_grad(f, 0), *h = jx_grad(f, 1);
    jx_cpu_conv_force("own");
    jx_t want[3] = {JX_CALL(f, x, w), JX_CALL(g, x, w), JX_CALL(h, x, w)};
    jx_cpu_conv_force("dnnl");
    for (int t = 0; t < (i < 4 ? 1 : 4); t++) {
      jx_set_num_threads(threads[t]);
      jx_t got[3] = {JX_CALL(f, x, w), JX_CALL(g, x, w), JX_CALL(h, x, w)};
      for (int j = 0; j < 3; j++) {
        CHECKF(jx_ok(want[j]) && jx_ok(got[j]), "case %d: %s / %s", i, jx_error(want[j]), jx_error(got[j]));
        if (!jx_ok(want[j]) || !jx_ok(got[j])) continue;
        jx_t a = jx_astype(want[j], JX_F64), b = jx_astype(got[j], JX_F64);
        double scale = jx_item(jx_max(jx_abs(a))), err = jx_item(jx_max(jx_abs(jx_sub(a, b))));
        CHECKF(err <= 1e-4 * (1 + scale),
               "case %d output %d, %d threads: own vs oneDNN max error %g (scale %g)", i, j, threads[t], err,
               scale);
      }
    }
    jx_set_num_threads(was);
    jx_cpu_conv_force(NULL);
    jx_fn_free(h), jx_fn_free(g), jx_fn_free(f);
    jx_pool_pop();
  }
}

/* A padded tap times an infinite weight is NaN (0 * inf), with either
 * kernel: oneDNN's direct kernels skip padded taps, so such a problem
 * stays on jx's (NHWC and NCHW, 2-D, padding 1 and 2) */
static void test_inf_weight_padding(void) {
  static const char *dns[2] = {"NHWC,HWIO,NHWC", "NCHW,OIHW,NCHW"};
  for (int i = 0; i < 2; i++) {
    jx_pool_push();
    bool nhwc = i == 0;
    jx_t x = jx_ones(JX_F32, 4, nhwc ? (int64_t[]){4, 6, 6, 8} : (int64_t[]){4, 8, 6, 6});
    int64_t ws[4] = {3, 3, 8, 16}, wo[4] = {16, 8, 3, 3};
    float wv[3 * 3 * 8 * 16];
    jx_t w0 = jx_random_normal(jx_random_key(40 + (uint64_t)i), JX_F32, 4, nhwc ? ws : wo);
    CHECK(jx_read(w0, JX_F32, wv, sizeof wv) == 0);
    wv[0] = INFINITY; /* tap (0, 0) of input 0, output 0 */
    jx_t w = jx_array(JX_F32, 4, nhwc ? ws : wo, wv);
    jx_t r[2];
    for (int k = 0; k < 2; k++) {
      jx_cpu_conv_force(k ? "dnnl" : "own");
      r[k] = jx_conv_general_dilated(x, w, NULL, (int64_t[]){1 + i, 1, 1, 1 + i}, NULL, NULL, dns[i], 1);
    }
    jx_cpu_conv_force(NULL);
    jx_t nan_own = jx_isnan(r[0]);
    CHECKF(jx_ok(r[0]) && jx_item(jx_sum(jx_astype(nan_own, JX_F32))) > 0,
           "%s: no NaN from the padded taps: %s", dns[i], jx_error(r[0]));
    CHECKF(check_same_bits(nan_own, jx_isnan(r[1])), "%s: NaNs differ between the kernels", dns[i]);
    jx_pool_pop();
  }
}

/* ------------------------------------------------ tiled window kernels */
/* The tiled kernels (windows side by side over a channels-last operand:
 * max pooling's 2x2 stride 2) against the generic ones, bit for bit:
 * values with ties, NaNs of both signs, signed zeros and infinities;
 * window shapes over 1-3 spatial dims and the batch; sizes the windows
 * cover whole and with a remainder; channel runs shorter and longer than
 * a vector run; f32, f64, i32, i8. */
static uint64_t xs_next(uint64_t *s) {
  *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
  return *s;
}
static void fill_ties(jx_dtype dt, int64_t n, void *p, uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  static const double special[6] = {NAN, -NAN, -0.0, 0.0, INFINITY, -INFINITY};
  for (int64_t i = 0; i < n; i++) {
    int r = (int)(xs_next(&s) % 16);
    double v = r < 10 ? (double)(r % 4) - 1.5 : special[r - 10];
    if (dt == JX_F32) ((float *)p)[i] = (float)v;
    if (dt == JX_F64) ((double *)p)[i] = v;
    if (dt == JX_I32) ((int32_t *)p)[i] = r % 5 == 0 ? INT32_MIN + r : r % 4 - 2;
    if (dt == JX_I8) ((int8_t *)p)[i] = (int8_t)(r % 4 == 0 ? -128 : r % 3 - 1);
  }
}

typedef struct {
  int nd;
  int64_t in[5], win[5];
} tile_case;

/* one kernel, generic then tiled, into buffers first filled with 0xAB */
typedef enum { T_MAX, T_MIN, T_SUM, T_SCATTER_MAX, T_SCATTER_MIN, T_GATHER_MAX, T_GATHER_MIN } tile_op;
static bool tile_run(tile_op op, const jx_cpu_window_desc *d, const void *x, const void *aux, void *y,
                     size_t ny, bool generic) {
  memset(y, 0xAB, ny);
  jx_cpu_window_generic(generic);
  int rc = op <= T_SUM ? jx_cpu_reduce_window(op == T_MAX   ? JX_WIN_MAX
                                              : op == T_MIN ? JX_WIN_MIN
                                                            : JX_WIN_SUM,
                                              d, x, y)
           : op <= T_SCATTER_MIN ? jx_cpu_select_scatter(op == T_SCATTER_MIN, d, aux, x, y)
                                 : jx_cpu_select_gather(op == T_GATHER_MIN, d, aux, x, y);
  jx_cpu_window_generic(false);
  return rc == 0;
}

static void test_tiled_windows(void) {
  static const tile_case cases[] = {
      {4, {3, 8, 8, 16}, {1, 2, 2, 1}},      {4, {2, 28, 28, 16}, {1, 2, 2, 1}},
      {4, {2, 14, 14, 32}, {1, 2, 2, 1}},    {4, {3, 9, 7, 5}, {1, 2, 2, 1}},
      {4, {2, 6, 9, 70}, {1, 3, 3, 1}},      {4, {2, 5, 8, 4}, {1, 1, 2, 1}},
      {4, {2, 8, 3, 8}, {1, 4, 1, 1}},       {4, {4, 6, 6, 6}, {2, 2, 2, 1}},
      {4, {1, 1, 1, 9}, {1, 1, 1, 1}},       {4, {2, 1, 6, 4}, {1, 2, 2, 1}},
      {3, {3, 11, 17}, {1, 2, 1}},           {3, {2, 64, 4}, {1, 8, 1}},
      {5, {2, 4, 6, 5, 8}, {1, 2, 2, 2, 1}}, {4, {2, 16, 16, 131}, {1, 2, 2, 1}}};
  static const jx_dtype dts[4] = {JX_F32, JX_F64, JX_I32, JX_I8};
  int ncase = (int)(sizeof cases / sizeof cases[0]), runs = 0;
  for (int ci = 0; ci < ncase; ci++) {
    const tile_case *tc = &cases[ci];
    jx_cpu_window_desc d = {.ndim = tc->nd};
    int64_t nx = 1, no = 1;
    for (int i = 0; i < tc->nd; i++) {
      d.in[i] = tc->in[i], d.window[i] = d.stride[i] = tc->win[i], d.bdil[i] = d.wdil[i] = 1;
      d.out[i] = tc->in[i] / tc->win[i], nx *= d.in[i], no *= d.out[i];
    }
    CHECKF(jx_cpu_window_tiled(&d), "case %d: not tiled", ci);
    for (int k = 0; k < 4; k++) {
      d.dt = dts[k];
      size_t es = jx_dtype_size(d.dt);
      char *x = malloc((size_t)nx * es), *ax = malloc((size_t)nx * es), *ao = malloc((size_t)no * es);
      char *y[2] = {malloc((size_t)nx * es), malloc((size_t)nx * es)};
      fill_ties(d.dt, nx, x, 3 + (uint64_t)ci), fill_ties(d.dt, nx, ax, 50 + (uint64_t)ci);
      fill_ties(d.dt, no, ao, 90 + (uint64_t)ci);
      for (tile_op op = T_MAX; op <= T_GATHER_MIN; op++) {
        bool scatter = op == T_SCATTER_MAX || op == T_SCATTER_MIN;
        const void *aux = scatter ? ao : ax;
        size_t ny = (size_t)(scatter ? nx : no) * es;
        bool ok = tile_run(op, &d, x, aux, y[0], ny, true) && tile_run(op, &d, x, aux, y[1], ny, false);
        CHECKF(ok && !memcmp(y[0], y[1], ny), "case %d, %s, op %d: tiled and generic differ", ci,
               jx_dtype_name(d.dt), (int)op);
        runs++;
      }
      free(x), free(ax), free(ao), free(y[0]), free(y[1]);
    }
  }
  /* what is not tiled: padding, overlapping or dilated windows, a thin last dim */
  jx_cpu_window_desc n = {.dt = JX_F32,
                          .ndim = 4,
                          .in = {2, 8, 8, 8},
                          .out = {2, 4, 4, 8},
                          .window = {1, 2, 2, 1},
                          .stride = {1, 2, 2, 1},
                          .bdil = {1, 1, 1, 1},
                          .wdil = {1, 1, 1, 1}};
  CHECK(jx_cpu_window_tiled(&n));
  n.lo[1] = 1;
  CHECK(!jx_cpu_window_tiled(&n));
  n.lo[1] = 0, n.stride[2] = 1, n.out[2] = 7;
  CHECK(!jx_cpu_window_tiled(&n));
  n.stride[2] = 2, n.out[2] = 4, n.wdil[1] = 2;
  CHECK(!jx_cpu_window_tiled(&n));
  n.wdil[1] = 1, n.in[3] = n.out[3] = 2;
  CHECK(!jx_cpu_window_tiled(&n));
  n.in[3] = n.out[3] = 8, n.in[1] = 7; /* SAME padding's last window reaches past the end */
  CHECK(!jx_cpu_window_tiled(&n));
  if (check_verbose) printf("tiled windows: %d kernel runs bit-identical to the generic ones\n", runs);
}

/* max pooling under jit, grad, jvp and vmap: the tiled kernels give the
 * generic ones' bits (NaNs and ties included) */
static jx_t pool_loss(const jx_t *a, void *u) {
  (void)u;
  jx_t p = jx_max_pool(a[0], 2, (int64_t[]){2, 2}, (int64_t[]){2, 2}, "VALID");
  return jx_sum(jx_mul(p, a[1]));
}
static jx_t pool_only(const jx_t *a, void *u) {
  (void)u;
  return jx_max_pool(a[0], 2, (int64_t[]){2, 2}, (int64_t[]){2, 2}, "VALID");
}
static void test_tiled_pool_transforms(void) {
  static const int64_t shapes[3][4] = {{4, 8, 8, 16}, {3, 9, 7, 5}, {2, 28, 28, 16}};
  for (int si = 0; si < 3; si++) {
    jx_pool_push();
    const int64_t *sh = shapes[si], osh[4] = {sh[0], sh[1] / 2, sh[2] / 2, sh[3]};
    int64_t nx = sh[0] * sh[1] * sh[2] * sh[3], no = osh[0] * osh[1] * osh[2] * osh[3];
    float *xv = malloc(sizeof(float) * (size_t)nx), *cv = malloc(sizeof(float) * (size_t)no);
    fill_ties(JX_F32, nx, xv, 7 + (uint64_t)si), fill_ties(JX_F32, no, cv, 8 + (uint64_t)si);
    jx_t x = jx_array(JX_F32, 4, sh, xv), ct = jx_array(JX_F32, 4, osh, cv);
    jx_t tx = jx_random_normal(jx_random_key(30 + (uint64_t)si), JX_F32, 4, sh);
    free(xv), free(cv);
    jx_fn *f = jx_fn_new(pool_loss, 2, NULL), *g = jx_grad(f, 0), *jg = jx_jit(g);
    jx_fn *vg = jx_vmap(g, (int[]){0, JX_NONE}, 0), *p = jx_fn_new(pool_only, 1, NULL), *jp = jx_jit(p);
    jx_t xs = jx_stack(2, (jx_t[]){x, jx_neg(x)}, 0), r[2][5];
    for (int k = 0; k < 2; k++) {
      jx_cpu_window_generic(k == 0);
      r[k][0] = JX_CALL(g, x, ct), r[k][1] = JX_CALL(jg, x, ct), r[k][2] = JX_CALL(vg, xs, ct);
      r[k][3] = JX_CALL(jp, x);
      r[k][4] = jx_at(jx_jvp(p, (jx_t[]){x}, (jx_t[]){tx}), 1);
    }
    jx_cpu_window_generic(false);
    for (int j = 0; j < 5; j++)
      CHECKF(check_same_bits(r[0][j], r[1][j]), "shape %d, result %d: tiled and generic differ (%s / %s)", si,
             j, jx_error(r[0][j]), jx_error(r[1][j]));
    jx_fn_free(jp), jx_fn_free(p), jx_fn_free(vg), jx_fn_free(jg), jx_fn_free(g), jx_fn_free(f);
    jx_pool_pop();
  }
}

/* --------------------------------------------------------------- errors */
/* integer window sums wrap, as XLA's do (a fuzzer find: the kernels
 * added signed integers with C's +, whose overflow is undefined; the
 * sanitizer build catches a relapse): over the scalar path, the
 * channel-run path (last dim carried whole) and under jit */
static void test_int_wrap(void) {
  jx_pool_push();
  const int64_t big[4] = {INT64_MAX, 27, -5, INT64_MIN};
  jx_t x = jx_array(JX_I64, JX_SHAPE(4), big);
  jx_t s = jx_reduce_window(x, "sum", (int64_t[]){2}, NULL, NULL, NULL, NULL);
  int64_t got[3] = {0};
  CHECK(jx_ok(s) && jx_read(s, JX_I64, got, sizeof got) == 0);
  CHECK(got[0] == INT64_MIN + 26 && got[1] == 22 && got[2] == INT64_MAX - 4);
  /* [2, 4] rows of i32 max, channels whole: the vector path */
  int32_t m[8];
  for (int i = 0; i < 8; i++) m[i] = INT32_MAX - i;
  jx_t r =
      jx_reduce_window(jx_array(JX_I32, JX_SHAPE(2, 4), m), "sum", (int64_t[]){2, 1}, NULL, NULL, NULL, NULL);
  int32_t rs[4] = {0};
  CHECK(jx_ok(r) && jx_read(r, JX_I32, rs, sizeof rs) == 0);
  for (int c = 0; c < 4; c++) CHECK(rs[c] == (int32_t)((uint32_t)m[c] + (uint32_t)m[c + 4]));
  jx_fn *jf = jx_jit(jx_fn_new(int_window_sum, 1, NULL));
  jx_t j = JX_CALL(jf, x);
  int64_t jg[3] = {0};
  CHECK(jx_ok(j) && jx_read(j, JX_I64, jg, sizeof jg) == 0 && !memcmp(jg, got, sizeof got));
  jx_fn_free(jf);
  jx_pool_pop();
}

static void test_errors(void) {
  jx_pool_push();
  jx_t x = jx_zeros(JX_F32, JX_SHAPE(2, 3, 5, 5)), w = jx_zeros(JX_F32, JX_SHAPE(4, 2, 3, 3));
  EXPECT_ERROR(jx_conv_general_dilated(x, w, NULL, NULL, NULL, NULL, NULL, 1), "conv_general_dilated",
               "f32[2,3,5,5]", "f32[4,2,3,3]", "features");
  jx_t w3 = jx_zeros(JX_F32, JX_SHAPE(4, 3, 3, 3));
  EXPECT_ERROR(jx_conv_general_dilated(x, w3, NULL, NULL, NULL, NULL, "NCHW,OIHW", 1), "conv_general_dilated",
               "dimension_numbers");
  EXPECT_ERROR(jx_conv_general_dilated(x, w3, NULL, NULL, NULL, NULL, "NCHW,OIHW,NCXW", 1),
               "spatial letters");
  EXPECT_ERROR(jx_conv_general_dilated(x, w3, NULL, NULL, NULL, NULL, "NCHW,OIHWX,NCHW", 1),
               "one letter per");
  EXPECT_ERROR(jx_conv_general_dilated(x, w3, (int64_t[]){0, 1}, NULL, NULL, NULL, NULL, 1), "window stride",
               "f32[2,3,5,5]");
  EXPECT_ERROR(jx_conv_general_dilated(x, w3, NULL, (int64_t[]){-4, -4, 0, 0}, NULL, NULL, NULL, 1),
               "negative");
  EXPECT_ERROR(
      jx_conv_general_dilated(x, jx_zeros(JX_F32, JX_SHAPE(4, 3, 3)), NULL, NULL, NULL, NULL, NULL, 1),
      "same rank");
  EXPECT_ERROR(jx_conv_general_dilated(x, w3, NULL, NULL, NULL, NULL, NULL, 0), "feature_group_count");
  EXPECT_ERROR(
      jx_conv_general_dilated(x, jx_zeros(JX_F32, JX_SHAPE(5, 1, 3, 3)), NULL, NULL, NULL, NULL, NULL, 3),
      "multiple of the group count");
  EXPECT_ERROR(jx_conv_general_dilated_ex(x, w3, NULL, NULL, NULL, NULL, NULL, 1, 3), "batch_group_count");
  EXPECT_ERROR(jx_conv_general_dilated(jx_zeros(JX_BOOL, JX_SHAPE(2, 3, 5, 5)),
                                       jx_zeros(JX_BOOL, JX_SHAPE(4, 3, 3, 3)), NULL, NULL, NULL, NULL, NULL,
                                       1),
               "bool");
  EXPECT_ERROR(jx_conv(x, w3, NULL, "FULL"), "conv", "SAME");
  jx_t h = jx_zeros(JX_F32, JX_SHAPE(2, 6, 6, 3));
  EXPECT_ERROR(jx_max_pool(h, 2, (int64_t[]){0, 2}, NULL, "VALID"), "max_pool", "f32[2,6,6,3]", "window");
  EXPECT_ERROR(jx_max_pool(h, 2, (int64_t[]){2, 2}, NULL, "valid"), "max_pool", "SAME");
  EXPECT_ERROR(jx_max_pool(h, 4, (int64_t[]){2, 2, 2, 2}, NULL, "VALID"), "max_pool", "spatial");
  EXPECT_ERROR(jx_reduce_window(h, "prod", (int64_t[]){1, 2, 2, 1}, NULL, NULL, NULL, NULL), "reduce_window",
               "sum");
  EXPECT_ERROR(
      jx_reduce_window(h, "max", (int64_t[]){1, 2, 2, 1}, (int64_t[]){1, -1, 1, 1}, NULL, NULL, NULL),
      "reduce_window", "stride");
  EXPECT_ERROR(jx_reduce_window(h, "sum", (int64_t[]){1, 2, 2, 1}, NULL, (int64_t[]){0, 0, -9, 0, 0, 0, 0, 0},
                                NULL, NULL),
               "reduce_window_sum", "negative padding");
  /* an error operand passes through */
  jx_t err = jx_error_new("upstream");
  EXPECT_ERROR(jx_conv_general_dilated(err, w3, NULL, NULL, NULL, NULL, NULL, 1), "upstream");
  EXPECT_ERROR(jx_max_pool(err, 2, (int64_t[]){2, 2}, NULL, "VALID"), "upstream");
  jx_pool_pop();
}

int main(int argc, char **argv) {
  check_verbose = argc > 1 && !strcmp(argv[1], "-v");
  check_private_cache("conv");
  const char *kernels[2] = {"own", "dnnl"};
  for (int k = 0; k < 2; k++) {
    jx_cpu_conv_force(kernels[k]);
    if (!strcmp(jx_cpu_conv_backend(), kernels[k])) test_golden();
  }
  jx_cpu_conv_force(NULL);
  test_kernels_agree();
  test_inf_weight_padding();
  test_layouts();
  test_vmap_kernel();
  test_vmap_empty();
  test_int_wrap();
  test_tiled_windows();
  test_tiled_pool_transforms();
  test_jit_grad();
  test_errors();
  check_private_cache_remove();
  return check_report("test_conv");
}
