/* jx_export_save / jx_export_load of round 2's primitives (issue #20):
 * every params kind they add (conv dimension numbers and geometry,
 * windows, gather/scatter dimension numbers, dynamic slices, sort,
 * cumulative ops, bounded while loops), and custom_jvp / custom_vjp /
 * remat / checkpoint_name, which are saved in the form jit runs (a
 * jit_call of the function; the name an identity).
 *   - round trips: the loaded function equals the original's jit bit for
 *     bit; jit(loaded) too; grad(loaded) equals jit(grad(original)) bit for
 *     bit where no custom rule is involved, and for a custom_vjp function
 *     equals the gradient of the plain function (the rules are not saved);
 *   - hostile edits: every number of every params field of these kinds
 *     replaced by extreme values (-1, 0, 1, 3, 2^16 + 1, -2^16 - 1, 2^40):
 *     each load gives a function whose call is an error value with a
 *     message or a result, never a crash (the sanitizer build runs this). */
#include "export_harness.h"

#include <math.h>

static char tmpdir[256];

#define I64(...) ((int64_t[]){__VA_ARGS__})

/* f32 values uniform in [-1, 1): the harness's shared generator, halved (exact) */
static jx_t rand_f(uint64_t *s, int nd, const int64_t *shape) {
  return jx_mul(export_rand(s, JX_F32, nd, shape), jx_scalar(0.5));
}

static bool same_bytes(jx_t a, jx_t b) {
  size_t na = 0, nb = 0;
  char *x = leaves_bytes(a, &na), *y = leaves_bytes(b, &nb);
  bool same = x && y && na == nb && !memcmp(x, y, na) && jx_tree_structure_eq(a, b);
  free(x), free(y);
  return same;
}

/* ------------------------------------------------------------ programs */
static jx_t conv_pool_loss(const jx_t *a, void *u) { /* x f32[2,3,6,6], w f32[4,3,3,3] */
  (void)u;
  jx_t h =
      jx_conv_general_dilated(a[0], a[1], I64(1, 1), I64(1, 1, 1, 1), NULL, I64(1, 1), "NCHW,OIHW,NHWC", 1);
  jx_t p = jx_max_pool(jx_tanh(h), 2, I64(2, 2), I64(2, 2), "VALID");
  jx_t r = jx_reduce_window(a[0], "sum", I64(1, 1, 2, 2), NULL, I64(0, 0, 0, 0, 1, 0, 0, 1), NULL, NULL);
  return jx_add(jx_sum(jx_square(p)), jx_mean(r));
}

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
static jx_t index_prog(const jx_t *a, void *u) { /* x f32[5,4,3], idx i32[2,3,2], i0 i32 */
  (void)u;
  jx_t g = jx_gather(a[0], a[1], &g_dn, I64(1, 2, 2), JX_GATHER_FILL_OR_DROP, -1);
  jx_t sc = jx_scatter_max(a[0], a[1], jx_mul(g, jx_scalar(2)), &s_dn, JX_GATHER_CLIP);
  jx_t zero = jx_zeros(JX_I32, 0, NULL);
  jx_t ds = jx_dynamic_slice(sc, (jx_t[]){a[2], zero, zero}, I64(2, 4, 3));
  return JX_TUPLE(g, jx_dynamic_update_slice(sc, jx_neg(ds), (jx_t[]){zero, a[2], zero}));
}
static jx_t index_loss(const jx_t *a, void *u) { return jx_sum(jx_sin(jx_at(index_prog(a, u), 1))); }

static jx_t sort_prog(const jx_t *a, void *u) { /* x f32[3,7] */
  (void)u;
  jx_t m = jx_sort_multi(2, (jx_t[]){jx_floor(jx_mul(a[0], jx_scalar(3))), a[0]}, 1, 1);
  return JX_TUPLE(m, jx_argsort(a[0], 0), jx_cumsum_ex(a[0], 1, true), jx_cummax(a[0], 0, false),
                  jx_cumlogsumexp(a[0], 1, false), jx_prod_axes(a[0], 1, (int[]){1}, false),
                  jx_top_k(a[0], 2));
}
static jx_t sort_loss(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_mul(jx_sort(a[0], 1), jx_cumprod(a[0], 1, false)));
}

static jx_t cf(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(a[0], jx_sin(a[0]));
}
static jx_t cf_fwd(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_mul(a[0], jx_sin(a[0])), a[0]);
}
static jx_t cf_bwd(const jx_t *a, void *u) { /* not the true derivative: 2 * ct * cos(x) */
  (void)u;
  return JX_TUPLE(jx_mul(jx_mul(a[1], jx_cos(a[0])), jx_scalar(2)));
}
static jx_t heavy(const jx_t *a, void *u) {
  (void)u;
  return jx_tanh(jx_checkpoint_name(jx_exp(jx_mul(a[0], jx_scalar(0.3))), "e"));
}
static jx_fn *g_cvjp, *g_remat;
static jx_t custom_loss(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_add(jx_call(g_cvjp, a), jx_call(g_remat, a)));
}
static jx_t plain_loss(const jx_t *a, void *u) { /* custom_loss without the custom rule */
  (void)u;
  return jx_sum(jx_add(cf(a, NULL), heavy(a, NULL)));
}

static jx_t bw_cond(const jx_t *a, void *u) {
  (void)u;
  return jx_lt(jx_sum(a[0]), jx_scalar(40));
}
static jx_t bw_body(const jx_t *a, void *u) {
  (void)u;
  return jx_add(jx_mul(a[0], jx_scalar(1.25)), jx_scalar(0.5));
}
static jx_fn *g_bc, *g_bb;
static jx_t bounded(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_sin(jx_while_loop_bounded(g_bc, g_bb, a[0], 20)));
}

/* ---------------------------------------------------------- round trips */
static jx_fn *round_trip(const char *name, jx_fn *f, int nargs, const jx_t *args) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s.jxf", tmpdir, name);
  jx_t err = jx_export_save(f, args, path);
  CHECKF(!err, "%s: save: %s", name, err ? jx_error(err) : "");
  jx_fn *g = jx_export_load(path), *jf = jx_jit(f), *jg = jx_jit(g);
  jx_t want = jx_call(jf, args), got = jx_call(g, args), got_j = jx_call(jg, args);
  CHECKF(jx_ok(want), "%s: jit: %s", name, jx_error(want));
  CHECKF(jx_ok(got) && same_bytes(got, want), "%s: loaded differs: %s", name,
         jx_ok(got) ? "" : jx_error(got));
  CHECKF(jx_ok(got_j) && same_bytes(got_j, want), "%s: jit(loaded) differs", name);
  (void)nargs;
  jx_fn_free(jf), jx_fn_free(jg);
  return g;
}

/* grad(loaded) against jit(grad(reference)) */
static void check_grad(const char *name, jx_fn *loaded, jx_fn *reference, const jx_t *args) {
  jx_fn *gl = jx_grad(loaded, 0), *gr = jx_jit(jx_grad(reference, 0));
  jx_t a = jx_call(gl, args), b = jx_call(gr, args);
  CHECKF(jx_ok(a) && jx_ok(b), "%s: grad: %s", name, jx_ok(a) ? jx_error(b) : jx_error(a));
  /* the loaded gradient runs through jit_call's derived jaxprs: to rounding */
  jx_t d = jx_ok(a) && jx_ok(b) ? jx_max(jx_abs(jx_sub(a, b))) : NULL,
       m = jx_ok(b) ? jx_max(jx_abs(b)) : NULL;
  float dv = 1, mv = 0;
  if (d) jx_read(d, JX_F32, &dv, sizeof dv), jx_read(m, JX_F32, &mv, sizeof mv);
  CHECKF(d && dv <= 1e-5f * mv, "%s: grad(loaded) differs by %g (scale %g)", name, dv, mv);
  jx_fn_free(gl), jx_fn_free(gr);
}

static void test_round_trips(void) {
  uint64_t s = 5;
  jx_pool_push();
  jx_t xc = rand_f(&s, 4, I64(2, 3, 6, 6)), wc = rand_f(&s, 4, I64(4, 3, 3, 3));
  jx_fn *f = jx_fn_new(conv_pool_loss, 2, NULL), *g = round_trip("conv", f, 2, (jx_t[]){xc, wc});
  check_grad("conv", g, f, (jx_t[]){xc, wc});
  jx_fn *gf = jx_grad(f, 1);
  round_trip("conv_grad", gf, 2, (jx_t[]){xc, wc});
  jx_t x = rand_f(&s, 3, I64(5, 4, 3));
  jx_t idx = jx_array(JX_I32, 3, I64(2, 3, 2), (int32_t[]){0, 0, 4, 1, -1, 2, 2, 1, 2, 1, 9, 0});
  int32_t v = 3;
  jx_t i0 = jx_array(JX_I32, 0, NULL, &v), ia[3] = {x, idx, i0};
  round_trip("index", jx_fn_new(index_prog, 3, NULL), 3, ia);
  f = jx_fn_new(index_loss, 3, NULL), g = round_trip("index_loss", f, 3, ia);
  check_grad("index_loss", g, f, ia);
  jx_t x37 = rand_f(&s, 2, I64(3, 7));
  round_trip("sort", jx_fn_new(sort_prog, 1, NULL), 1, &x37);
  f = jx_fn_new(sort_loss, 1, NULL), g = round_trip("sort_loss", f, 1, &x37);
  check_grad("sort_loss", g, f, &x37);
  /* custom rules are not saved: the loaded gradient is the plain function's */
  g_cvjp = jx_custom_vjp(jx_fn_new(cf, 1, NULL), jx_fn_new(cf_fwd, 1, NULL), jx_fn_new(cf_bwd, 2, NULL));
  g_remat = jx_checkpoint_ex(jx_fn_new(heavy, 1, NULL), JX_REMAT_NAMES, 1, (const char *const[]){"e"});
  jx_t x7 = rand_f(&s, 1, I64(7));
  g = round_trip("custom", jx_fn_new(custom_loss, 1, NULL), 1, &x7);
  check_grad("custom", g, jx_fn_new(plain_loss, 1, NULL), &x7);
  round_trip("custom_grad", jx_grad(jx_fn_new(custom_loss, 1, NULL), 0), 1, &x7);
  g_bc = jx_fn_new(bw_cond, 1, NULL), g_bb = jx_fn_new(bw_body, 1, NULL);
  f = jx_fn_new(bounded, 1, NULL), g = round_trip("bounded", f, 1, &x7);
  check_grad("bounded", g, f, &x7);
  jx_pool_pop();
}

/* ------------------------------------------------------- hostile edits */
static int edits, edit_errors;

/* the text with the number token at [at, at + len) replaced by v */
static void try_edit(const char *text, size_t n, size_t at, size_t len, long long v, const jx_t *args) {
  char num[32];
  int k = snprintf(num, sizeof num, "%lld", v);
  char *t = malloc(n - len + (size_t)k + 1);
  memcpy(t, text, at);
  memcpy(t + at, num, (size_t)k);
  memcpy(t + at + k, text + at + len, n - at - len);
  size_t m = n - len + (size_t)k;
  jx_pool_push();
  jx_fn *g = jx_export_load_text(t, m);
  jx_t r = jx_call(g, args);
  if (!jx_ok(r)) {
    edit_errors++;
    CHECKF(jx_error(r) && *jx_error(r), "an edit's error has no message");
  }
  edits++;
  jx_fn_free(g);
  jx_pool_pop();
  free(t);
}

/* every number after the params kind on the lines of prim */
static void edit_lines(const char *text, size_t n, const char *prim, const jx_t *args) {
  static const long long values[] = {-1, 0, 1, 3, 65537, -65537, 1LL << 40};
  size_t plen = strlen(prim);
  for (const char *l = text; l && l < text + n; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
    if (strncmp(l, prim, plen) || l[plen] != ' ') continue;
    const char *e = strchr(l, '\n'), *kind = l;
    for (int sp = 0; kind < e && sp < 1;) /* the params start at the first alphabetic token after the name */
      if (*++kind == ' ' && kind[1] >= 'a' && kind[1] <= 'z') sp++;
    for (const char *c = kind + 1; c < e;) {
      while (c < e && *c != ' ') c++;
      if (c >= e) break;
      const char *t0 = ++c;
      while (c < e && *c != ' ') c++;
      if (c > t0 && (*t0 == '-' || (*t0 >= '0' && *t0 <= '9')))
        for (size_t i = 0; i < sizeof values / sizeof *values; i++)
          try_edit(text, n, (size_t)(t0 - text), (size_t)(c - t0), values[i], args);
    }
  }
}

static char *save_text(jx_fn *f, const jx_t *args, const char *name, size_t *n) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s.jxf", tmpdir, name);
  jx_t err = jx_export_save(f, args, path);
  CHECKF(!err, "%s: %s", name, err ? jx_error(err) : "");
  return err ? NULL : read_file(path, n);
}

static void test_edits(void) {
  uint64_t s = 9;
  jx_pool_push();
  static const struct {
    const char *name, *prims[4];
  } files[] = {{"conv", {"conv_general_dilated", "reduce_window_max", "select_and_scatter_add", NULL}},
               {"index", {"gather", "scatter_max", "dynamic_slice", NULL}},
               {"sort", {"sort", "argsort", "cumsum", "cumlogsumexp"}}};
  jx_t xc = rand_f(&s, 4, I64(1, 3, 4, 4)), wc = rand_f(&s, 4, I64(2, 3, 3, 3));
  jx_t x = rand_f(&s, 3, I64(5, 4, 3));
  jx_t idx = jx_array(JX_I32, 3, I64(2, 3, 2), (int32_t[]){0, 0, 4, 1, -1, 2, 2, 1, 2, 1, 9, 0});
  int32_t v = 1;
  jx_t args[3][3] = {{xc, wc}, {x, idx, jx_array(JX_I32, 0, NULL, &v)}, {rand_f(&s, 2, I64(3, 7))}};
  jx_fn *fs[3] = {jx_grad(jx_fn_new(conv_pool_loss, 2, NULL), 0), jx_fn_new(index_prog, 3, NULL),
                  jx_fn_new(sort_prog, 1, NULL)};
  for (int i = 0; i < 3; i++) {
    size_t n = 0;
    char *t = save_text(fs[i], args[i], files[i].name, &n);
    for (int p = 0; t && p < 4 && files[i].prims[p]; p++) {
      int before = edits;
      edit_lines(t, n, files[i].prims[p], args[i]);
      CHECKF(edits > before, "%s: no %s line edited", files[i].name, files[i].prims[p]);
    }
    free(t);
  }
  printf("hostile edits: %d files loaded and called, %d gave errors\n", edits, edit_errors);
  CHECK(edit_errors > edits / 4); /* most extreme values are refused */
  jx_pool_pop();
}

/* The edits run in a child process whose jit has no C compiler (it then
 * interprets the optimized jaxpr): thousands of edited programs, each
 * compiled, would take minutes; the compiled path is what the round
 * trips and the fuzz target run. */
int main(int argc, char **argv) {
  const bool child = argc == 2 && !strcmp(argv[1], "--edits");
  if (child) setenv("JX_CC", "/nonexistent/cc", 1);
  snprintf(tmpdir, sizeof tmpdir, "/tmp/jx_export_load_ops_XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  if (child) {
    test_edits();
  } else {
    test_round_trips();
    CHECK(run_cmd("%s --edits", argv[0]) == 0);
  }
  run_cmd("rm -rf %s", tmpdir);
  printf("test_export_load_ops: %d passed, %d failed\n", check_passed, check_failed);
  return check_failed != 0;
}
