/* jx_export_save / jx_export_load (issue #20): serialized jaxprs.
 *   - round trips: a tree-in/tree-out MLP, scan, while, cond, random bits,
 *     a value_and_grad + adam training step; the loaded function equals
 *     the original's jit bit for bit, and so do jit(loaded), grad(loaded)
 *     and vmap(loaded) against the same transformations of the original;
 *   - another process: this binary run again with --child loads the file
 *     (it never calls the original body) and its outputs equal the
 *     parent's;
 *   - bad files: every truncation of a saved file, 400 seeded random byte
 *     edits, and hand-made hostile ones (huge counts, a variable used
 *     before its definition, an inner jaxpr that is not earlier in the
 *     file, wrong arities, a params kind mismatch, an unknown version,
 *     deep trees): each load gives a function whose call is an error value
 *     (or, for an edit that keeps the file valid, a result), never a
 *     crash (the sanitizer build runs this too), and leaks nothing. */
#include "export_harness.h"
#include "seed_mlp.h"

#include <math.h>

static char tmpdir[256];
static const char *self;

static jx_t mlp(const jx_t *a, void *u) {
  (void)u;
  return jx_dict(2, (const char *const[]){"logits", "mean"},
                 (jx_t[]){seed_predict(a[0], a[1]), jx_mean(seed_predict(a[0], a[1]))});
}
static jx_t mlp_loss(const jx_t *a, void *u) {
  (void)u;
  return jx_mean(jx_square(jx_sub(seed_predict(a[0], a[1]), a[2])));
}
static jx_t scan_step(const jx_t *a, void *u) {
  (void)u;
  jx_t c = jx_add(jx_mul(a[0], jx_scalar(0.5)), jx_tanh(a[1]));
  return JX_TUPLE(c, jx_mul(c, a[1]));
}
static jx_t scan_prog(const jx_t *a, void *u) { return jx_scan(u, a[0], a[1]); }
static jx_t wcond(const jx_t *a, void *u) {
  (void)u;
  return jx_lt(jx_sum(a[0]), jx_scalar(50));
}
static jx_t wbody(const jx_t *a, void *u) {
  (void)u;
  return jx_add(jx_mul(a[0], jx_scalar(1.5)), jx_scalar(1));
}
static jx_fn *g_wc, *g_wb, *g_t, *g_f, *g_scan_step;
static jx_t while_prog(const jx_t *a, void *u) {
  (void)u;
  return jx_while_loop(g_wc, g_wb, a[0]);
}
static jx_t br_t(const jx_t *a, void *u) {
  (void)u;
  return jx_sin(a[0]);
}
static jx_t br_f(const jx_t *a, void *u) {
  (void)u;
  return jx_cos(a[0]);
}
static jx_t cond_prog(const jx_t *a, void *u) {
  (void)u;
  return jx_cond(jx_gt(jx_sum(a[0]), jx_scalar(0)), g_t, g_f, 1, a);
}
static jx_t seed_mix_loss(const jx_t *a, void *u) {
  (void)u;
  jx_t s = jx_scan(g_scan_step, jx_sum(a[0]), a[0]);
  return jx_add(jx_at(s, 0), jx_sum(jx_at(s, 1)));
}
static jx_t random_prog(const jx_t *a, void *u) {
  (void)u;
  return jx_random_normal(jx_random_fold_in(a[0], 3), JX_F32, 1, (int64_t[]){5});
}

/* f32 values uniform in [-1, 1): the harness's shared generator, halved (exact) */
static jx_t rand_f(uint64_t *s, int nd, const int64_t *shape) {
  return jx_mul(export_rand(s, JX_F32, nd, shape), jx_scalar(0.5));
}

static jx_t params_of(uint64_t *s) {
  return JX_LIST(JX_TUPLE(rand_f(s, 2, (int64_t[]){4, 8}), rand_f(s, 1, (int64_t[]){8})),
                 JX_TUPLE(rand_f(s, 2, (int64_t[]){8, 2}), rand_f(s, 1, (int64_t[]){2})));
}

static bool same_bytes(jx_t a, jx_t b) {
  size_t na = 0, nb = 0;
  char *x = leaves_bytes(a, &na), *y = leaves_bytes(b, &nb);
  bool same = x && y && na == nb && !memcmp(x, y, na) && jx_tree_structure_eq(a, b);
  free(x), free(y);
  return same;
}

/* f32 leaves equal within 1e-5 of each leaf's largest magnitude: for
 * transformations, where the original runs op by op (eager GEMMs) and the
 * loaded function through jit_call's derived, compiled jaxprs */
static bool close_f32(jx_t a, jx_t b) {
  size_t na = 0, nb = 0;
  char *x = leaves_bytes(a, &na), *y = leaves_bytes(b, &nb);
  bool ok = x && y && na == nb && jx_tree_structure_eq(a, b);
  jx_t l = ok ? jx_tree_leaves(b) : NULL;
  size_t at = 0;
  for (int i = 0; ok && i < jx_len(l); i++) {
    int64_t n = jx_size(jx_at(l, i));
    const float *p = (const float *)(x + at), *q = (const float *)(y + at);
    double scale = 0;
    for (int64_t e = 0; e < n; e++) scale = fmax(scale, fabs(q[e]));
    for (int64_t e = 0; e < n; e++) ok = ok && fabs(p[e] - q[e]) <= 1e-5 * scale;
    at += (size_t)n * sizeof(float);
  }
  free(x), free(y);
  return ok;
}

/* save f at args, load it, compare calls (and under jit) with f's jit */
static jx_fn *round_trip(const char *name, jx_fn *f, int nargs, const jx_t *args) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s.jxf", tmpdir, name);
  jx_t err = jx_export_save(f, args, path);
  CHECKF(!err, "%s: save: %s", name, err ? jx_error(err) : "");
  jx_fn *g = jx_export_load(path), *jf = jx_jit(f), *jg = jx_jit(g);
  jx_t want = jx_call(jf, args), got = jx_call(g, args), got_jit = jx_call(jg, args);
  CHECKF(jx_ok(got), "%s: loaded call: %s", name, jx_error(got));
  CHECKF(same_bytes(got, want), "%s: loaded != original", name);
  CHECKF(same_bytes(got_jit, want), "%s: jit(loaded) != original", name);
  (void)nargs;
  jx_fn_free(jf);
  jx_fn_free(jg);
  return g;
}

static void test_round_trips(void) {
  jx_pool_push();
  uint64_t s = 5;
  jx_t params = params_of(&s), x = rand_f(&s, 2, (int64_t[]){3, 4}), y = rand_f(&s, 2, (int64_t[]){3, 2});
  jx_fn *f = jx_fn_new(mlp, 2, NULL);
  jx_fn_free(round_trip("mlp", f, 2, (jx_t[]){params, x}));
  jx_fn_free(f);
  /* grad and vmap of the loaded loss against the original's */
  jx_fn *loss = jx_fn_new(mlp_loss, 3, NULL);
  jx_fn *gl = round_trip("loss", loss, 3, (jx_t[]){params, x, y});
  jx_fn *g1 = jx_grad(loss, 0), *g2 = jx_grad(gl, 0);
  CHECK(close_f32(jx_call(g1, (jx_t[]){params, x, y}), jx_call(g2, (jx_t[]){params, x, y})));
  jx_fn *v1 = jx_vmap(loss, (int[]){JX_NONE, 0, 0}, 0), *v2 = jx_vmap(gl, (int[]){JX_NONE, 0, 0}, 0);
  jx_t xs = rand_f(&s, 3, (int64_t[]){5, 3, 4}), ys = rand_f(&s, 3, (int64_t[]){5, 3, 2});
  jx_t r1 = jx_call(v1, (jx_t[]){params, xs, ys}), r2 = jx_call(v2, (jx_t[]){params, xs, ys});
  CHECKF(jx_ok(r2) && close_f32(r1, r2), "vmap(loaded): %s", jx_error(r2));
  /* wrong arguments: an error value naming the mismatch */
  EXPECT_ERROR(jx_call(gl, (jx_t[]){params, y, y}), "export_load", "leaf 4", "f32[3,4]");
  jx_fn_free(g1), jx_fn_free(g2), jx_fn_free(v1), jx_fn_free(v2), jx_fn_free(gl), jx_fn_free(loss);
  jx_fn *step = jx_fn_new(scan_step, 2, NULL), *sp = jx_fn_new(scan_prog, 2, step);
  jx_fn_free(
      round_trip("scan", sp, 2, (jx_t[]){rand_f(&s, 1, (int64_t[]){3}), rand_f(&s, 2, (int64_t[]){6, 3})}));
  jx_fn_free(sp), jx_fn_free(step);
  f = jx_fn_new(while_prog, 1, NULL);
  jx_fn_free(round_trip("while", f, 1, (jx_t[]){rand_f(&s, 1, (int64_t[]){3})}));
  jx_fn_free(f);
  f = jx_fn_new(cond_prog, 1, NULL);
  jx_fn_free(round_trip("cond", f, 1, (jx_t[]){rand_f(&s, 1, (int64_t[]){4})}));
  jx_fn_free(f);
  f = jx_fn_new(random_prog, 1, NULL);
  jx_fn_free(round_trip("random", f, 1, (jx_t[]){jx_random_key(9)}));
  jx_fn_free(f);
  jx_pool_pop();
}

/* ------------------------------------------------------ another process */
static int child(const char *file, const char *in, const char *out) {
  jx_fn *g = jx_export_load(file);
  uint64_t s = 5;
  jx_t params = params_of(&s), x = rand_f(&s, 2, (int64_t[]){3, 4});
  jx_t r = jx_call(g, (jx_t[]){params, x});
  (void)in;
  if (!jx_ok(r)) return fprintf(stderr, "child: %s\n", jx_error(r)), 1;
  size_t n = 0;
  char *b = leaves_bytes(r, &n);
  FILE *f = fopen(out, "wb");
  if (!f || !b || fwrite(b, 1, n, f) != n) return 1;
  fclose(f);
  free(b);
  jx_fn_free(g);
  return 0;
}

static void test_other_process(void) {
  jx_pool_push();
  uint64_t s = 5;
  jx_t params = params_of(&s), x = rand_f(&s, 2, (int64_t[]){3, 4});
  jx_fn *f = jx_fn_new(mlp, 2, NULL), *jf = jx_jit(f);
  char path[512], out[512];
  snprintf(path, sizeof path, "%s/mlp.jxf", tmpdir);
  snprintf(out, sizeof out, "%s/child.bin", tmpdir);
  CHECK(!run_cmd("%s --child %s - %s", self, path, out));
  size_t n = 0, nw = 0;
  char *got = read_file(out, &n), *want = leaves_bytes(jx_call(jf, (jx_t[]){params, x}), &nw);
  CHECK(got && want && n == nw && !memcmp(got, want, n));
  free(got), free(want);
  jx_fn_free(jf), jx_fn_free(f);
  jx_pool_pop();
}

/* ------------------------------------------------------------ bad files */
/* load text and call the result: an error value or a result, never a crash */
static int bad_errors;
static void try_text(const char *text, size_t n, const jx_t *args, int nargs) {
  jx_pool_push();
  jx_fn *g = jx_export_load_text(text, n);
  jx_t r = nargs >= 0 ? jx_call(g, args) : NULL;
  if (r && !jx_ok(r)) {
    bad_errors++;
    CHECK(jx_error(r) && *jx_error(r));
  }
  jx_fn_free(g);
  jx_pool_pop();
}

static char *saved(const char *name, size_t *n) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s.jxf", tmpdir, name);
  return read_file(path, n);
}

/* hand-made hostile files: the first four take no argument */
static const char *const hostile[] = {
    "",
    "jx-export 3\nfn 0 () *\n",
    "jx-export 1\nfn 0 () *\njaxpr\nvars 99999999999\n",
    "jx-export 1\nfn 0 () *\njaxpr\nvars 2\nf32 0 1 3\nf32 0 1 3\nconsts 0\nin 0\neqns 1\nneg 1 0 1 1 "
    "none\nout 1 1\nend\n",
    "jx-export 1\nfn 1 (*) *\njaxpr\nvars 2\nf32 0 1 3\nf32 0 1 3\nconsts 0\nin 1 0\neqns 1\nneg 1 0 1 0 "
    "none\nout 1 1\nend\n",
    "jx-export 1\nfn 1 (*) *\njaxpr\nvars 2\nf32 0 1 3\nf32 0 0\nconsts 0\nin 1 0\neqns 1\nreduce_sum 1 0 "
    "1 1 reduce 9 0 0 0 0 0 0 0 "
    "0\nout 1 1\nend\n",
    "jx-export 1\nfn 1 (*) *\njaxpr\nvars 2\nf32 0 1 3\nf32 0 0\nconsts 0\nin 1 0\neqns 1\nreduce_sum 1 0 "
    "1 1 reduce 1 5 0 0 0 0 0 0 "
    "0\nout 1 1\nend\n",
    "jx-export 1\nfn 1 (*) *\njaxpr\nvars 2\nf32 0 1 3\nf32 0 1 3\nconsts 0\nin 1 0\neqns 1\njit_call 1 0 "
    "1 1 call 0\nout 1 1\nend\n",
    "jx-export 1\nfn 1 (*) *\njaxpr\nvars 2\nf32 0 1 3\nf32 0 1 3\nconsts 0\nin 1 0\neqns 1\nneg 1 0 1 1 "
    "reduce 0\nout 1 1\nend\n",
    "jx-export 1\nfn 1 (*) *\njaxpr\nvars 2\nf32 0 1 3\nf32 0 1 3\nconsts 0\nin 1 0\neqns 1\nadd 1 0 1 1 "
    "none\nout 1 1\nend\n",
    "jx-export 1\nfn 1 (*) *\njaxpr\nvars 2\nf32 0 1 3\nf32 0 1 3\nconsts 1\n1 00000000\nin 1 0\neqns "
    "0\nout 1 1\nend\n",
    "jx-export 1\nfn 1 (*) "
    "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((*)))))))))))))))))))))))))))))))"
    "))))))))))))))))))))))))))))))))))))\njaxpr\nvars 1\nf32 0 1 3\nconsts 0\nin 1 0\neqns 0\nout 1 "
    "0\nend\n",
    "jx-export 1\nfn 1 (*) {zz:*}\njaxpr\nvars 1\nf32 0 1 3\nconsts 0\nin 1 0\neqns 0\nout 1 0\nend\n",
    "jx-export 1\nfn 1 (*) **\njaxpr\nvars 1\nf32 0 1 3\nconsts 0\nin 1 0\neqns 0\nout 1 0\nend\n",
    "jx-export 1\nfn 1 (*) *\njaxpr\nvars 1\nf32 0 9 3\nconsts 0\nin 1 0\neqns 0\nout 1 0\nend\n",
    "jx-export 1\nfn 1 (*) *\njaxpr\nvars 1\nf32 0 2 4294967296 4294967296\nconsts 0\nin 1 0\neqns 0\nout "
    "1 0\nend\n",
};

static void test_bad_files(void) {
  jx_pool_push();
  uint64_t s = 5;
  jx_t params = params_of(&s), x = rand_f(&s, 2, (int64_t[]){3, 4});
  jx_t args[2] = {params, x};
  size_t n = 0;
  char *text = saved("mlp", &n);
  CHECK(text != NULL);
  if (!text) return;
  /* every truncation (every 7th byte, and the last 40) */
  int before = bad_errors;
  for (size_t k = 0; k < n; k += (k + 40 < n ? 7 : 1)) try_text(text, k, args, 2);
  CHECKF(bad_errors - before > (int)(n / 7) - 2, "truncations: %d errors", bad_errors - before);
  /* seeded random edits: a byte replaced with one of the format's own
   * characters or a random byte */
  char *t = malloc(n + 1);
  uint64_t r = 1;
  for (int i = 0; i < 400; i++) {
    memcpy(t, text, n + 1);
    for (int e = 0; e < 1 + i % 3; e++) {
      r = r * 6364136223846793005ull + 1442695040888963407ull;
      size_t at = (size_t)(r >> 33) % n;
      static const char alphabet[] = "0123456789 \n-*(){}[],:abcdefxyz";
      t[at] = (r >> 20) & 1 ? alphabet[(r >> 8) % (sizeof alphabet - 1)] : (char)(r >> 12);
    }
    try_text(t, n, args, 2);
  }
  free(t);
  /* hand-made hostile files */
  jx_t x3 = jx_ones(JX_F32, 1, (int64_t[]){3});
  for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
    jx_pool_push();
    jx_fn *g = jx_export_load_text(hostile[i], strlen(hostile[i]));
    jx_t res = jx_call(g, i < 4 ? NULL : &x3);
    CHECKF(!jx_ok(res) && strstr(jx_error(res), "export_load"), "hostile file %zu loaded: %s", i,
           jx_ok(res) ? "(a result)" : jx_error(res));
    jx_fn_free(g);
    jx_pool_pop();
  }
  /* the one valid file above, for contrast: it loads and runs */
  static const char ok[] =
      "jx-export 1\nfn 1 (*) *\njaxpr\nvars 2\nf32 0 1 3\nf32 0 1 3\nconsts 0\nin 1 0\neqns 1\n"
      "neg 1 0 1 1 none\nout 1 1\nend\n";
  jx_fn *g = jx_export_load_text(ok, strlen(ok));
  jx_t res = jx_call(g, &x3);
  CHECKF(jx_ok(res) && jx_item(jx_sum(res)) == -3, "the valid hand-written file: %s", jx_error(res));
  jx_fn_free(g);
  g = jx_export_load("/nonexistent/file.jxf");
  EXPECT_ERROR(jx_call(g, &x3), "export_load", "cannot open");
  jx_fn_free(g);
  free(text);
  jx_pool_pop();
}

/* the committed fuzz seeds load and run (they are what --seeds writes) */
static void test_seeds(void) {
  static const char *const names[] = {"ew",   "mix",   "while", "cond",   "grad",
                                      "conv", "index", "sort",  "custom", "bounded"};
  jx_pool_push();
  jx_t x = jx_ones(JX_F32, 1, (int64_t[]){3});
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    char path[256];
    snprintf(path, sizeof path, "../fuzz/corpus_export/%s.jxf", names[i]);
    jx_fn *g = jx_export_load(path);
    jx_t r = jx_call(g, (jx_t[]){x, x});
    CHECKF(jx_ok(r), "seed %s: %s", names[i], jx_error(r));
    jx_fn_free(g);
  }
  jx_pool_pop();
}

/* the fuzz target's seeds (fuzz/corpus_export): functions of f32[3]
 * leaves, so that mutations reach the rules and the compiled code */
static jx_t seed_ew(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_tanh(jx_mul(a[0], a[1])), jx_sum(jx_exp(a[0])));
}
static jx_t seed_mix(const jx_t *a, void *u) {
  (void)u;
  jx_t x = jx_concatenate(2, (jx_t[]){a[0], jx_neg(a[0])}, 0);
  return jx_dict(1, (const char *const[]){"k"}, (jx_t[]){JX_LIST(jx_max(x), jx_argmax(x, 0, false))});
}
/* round 2's primitives (test_export_load_ops.c round-trips them at
 * realistic shapes): conv and pooling with their gradients; gather and
 * scatter with dimension numbers, dynamic slices; sort and scans;
 * custom_vjp, remat, checkpoint_name; a bounded while loop */
static jx_t seed_conv_loss(const jx_t *a, void *u) {
  (void)u;
  jx_t x = jx_reshape(a[0], 3, (int64_t[]){1, 1, 3}), w = jx_reshape(a[1], 3, (int64_t[]){1, 1, 3});
  jx_t h = jx_conv_general_dilated(x, w, NULL, (int64_t[]){1, 1}, NULL, NULL, "NCH,OIH,NCH", 1);
  jx_t p = jx_reduce_window(jx_tanh(h), "max", (int64_t[]){1, 1, 2}, NULL, (int64_t[]){0, 0, 0, 0, 0, 1},
                            NULL, NULL);
  return jx_sum(jx_square(p));
}
static jx_t seed_index(const jx_t *a, void *u) {
  (void)u;
  jx_t idx = jx_array(JX_I32, 2, (int64_t[]){2, 1}, (int32_t[]){2, -1});
  jx_gather_dnums g = {.ncollapsed_slice_dims = 1, .nstart_index_map = 1, .index_vector_dim = 1};
  jx_scatter_dnums sd = {
      .ninserted_window_dims = 1, .nscatter_dims_to_operand_dims = 1, .index_vector_dim = 1};
  jx_t gv = jx_gather(a[0], idx, &g, (int64_t[]){1}, JX_GATHER_FILL_OR_DROP, 2);
  jx_t sc = jx_scatter_max(a[0], idx, gv, &sd, JX_GATHER_CLIP);
  jx_t i = jx_argmax(a[1], 0, false);
  jx_t ds = jx_dynamic_slice(sc, &i, (int64_t[]){2});
  return JX_TUPLE(gv, jx_dynamic_update_slice(sc, jx_neg(ds), &i));
}
static jx_t seed_sort(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_sort_multi(2, a, 0, 1), jx_argsort(a[1], 0), jx_cumsum_ex(a[0], 0, true),
                  jx_cumlogsumexp(a[1], 0, false), jx_cummax(a[0], 0, false), jx_prod(a[1]));
}
static jx_t s_cf(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(a[0], jx_sin(a[0]));
}
static jx_t s_fwd(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_mul(a[0], jx_sin(a[0])), a[0]);
}
static jx_t s_bwd(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_mul(a[1], jx_cos(a[0])));
}
static jx_t s_heavy(const jx_t *a, void *u) {
  (void)u;
  return jx_tanh(jx_checkpoint_name(jx_exp(a[0]), "e"));
}
static jx_fn *g_cvjp, *g_remat;
static jx_t seed_custom(const jx_t *a, void *u) {
  (void)u;
  return jx_add(jx_call(g_cvjp, a), jx_call(g_remat, a + 1));
}
static jx_t seed_bounded(const jx_t *a, void *u) {
  (void)u;
  return jx_while_loop_bounded(g_wc, g_wb, a[0], 30);
}

static int write_seeds(const char *dir) {
  jx_t x = jx_ones(JX_F32, 1, (int64_t[]){3});
  struct {
    const char *name;
    jx_fn *f;
    int n;
  } s[] = {{"ew", jx_fn_new(seed_ew, 2, NULL), 2},
           {"mix", jx_fn_new(seed_mix, 1, NULL), 1},
           {"while", jx_fn_new(while_prog, 1, NULL), 1},
           {"cond", jx_fn_new(cond_prog, 1, NULL), 1},
           {"grad", jx_grad(jx_fn_new(seed_mix_loss, 1, NULL), 0), 1},
           {"conv", jx_grad(jx_fn_new(seed_conv_loss, 2, NULL), 0), 2},
           {"index", jx_fn_new(seed_index, 2, NULL), 2},
           {"sort", jx_fn_new(seed_sort, 2, NULL), 2},
           {"custom", jx_fn_new(seed_custom, 2, NULL), 2},
           {"bounded", jx_fn_new(seed_bounded, 1, NULL), 1}};
  int rc = 0;
  for (size_t i = 0; i < sizeof s / sizeof *s; i++) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s.jxf", dir, s[i].name);
    jx_t err = jx_export_save(s[i].f, (jx_t[]){x, x}, path);
    if (err) fprintf(stderr, "%s: %s\n", path, jx_error(err)), rc = 1;
  }
  return rc;
}

int main(int argc, char **argv) {
  self = argv[0];
  if (argc == 3 && !strcmp(argv[1], "--seeds")) {
    g_wc = jx_fn_new(wcond, 1, NULL), g_wb = jx_fn_new(wbody, 1, NULL);
    g_t = jx_fn_new(br_t, 1, NULL), g_f = jx_fn_new(br_f, 1, NULL);
    g_scan_step = jx_fn_new(scan_step, 2, NULL);
    g_cvjp = jx_custom_vjp(jx_fn_new(s_cf, 1, NULL), jx_fn_new(s_fwd, 1, NULL), jx_fn_new(s_bwd, 2, NULL));
    g_remat = jx_checkpoint_ex(jx_fn_new(s_heavy, 1, NULL), JX_REMAT_NAMES, 1, (const char *const[]){"e"});
    return write_seeds(argv[2]);
  }
  if (argc == 5 && !strcmp(argv[1], "--child")) return child(argv[2], argv[3], argv[4]);
  snprintf(tmpdir, sizeof tmpdir, "/tmp/jx_export_load_XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  g_wc = jx_fn_new(wcond, 1, NULL), g_wb = jx_fn_new(wbody, 1, NULL);
  g_t = jx_fn_new(br_t, 1, NULL), g_f = jx_fn_new(br_f, 1, NULL);
  test_round_trips();
  test_other_process();
  test_bad_files();
  test_seeds();
  jx_fn_free(g_wc), jx_fn_free(g_wb), jx_fn_free(g_t), jx_fn_free(g_f);
  run_cmd("rm -rf %s", tmpdir);
  printf("test_export_load: %d passed, %d failed\n", check_passed, check_failed);
  return check_failed != 0;
}
