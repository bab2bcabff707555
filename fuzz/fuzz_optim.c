/* libFuzzer target: bytes -> a random optimizer over a random tree, run
 * eagerly and under jit.
 *
 * The bytes decode into a parameter tree (tuples, lists, dicts of 1-4
 * leaves, f32/f64 and now and then i32 or bool, rank 0-3, dims 0-5, values
 * in [-4, 4] or hostile: NaN, inf, 1e30), gradients shaped like it (or not),
 * and an optimizer: one of every constructor of jx.h's optimizer section
 * (sgd ... adafactor and each transformation, chains of them nested twice)
 * with hyperparameters, schedules and weight-decay masks (trees, functions,
 * wrong ones) taken from the bytes: mostly sane values, sometimes hostile
 * ones (NaN, inf, negative, zero, 1e300, huge or negative step counts).
 * init and three updates run eagerly, then the first update as a jitted
 * function. The target checks that
 *   - nothing crashes or leaks (ASan/UBSan/LSan);
 *   - a failure is an error value whose message names the optimizer (the
 *     outermost constructor's name: "adam", "chain", ...);
 *   - with sane hyperparameters, finite float inputs and matching trees,
 *     init and every update succeed and give finite updates and states;
 *   - jit(update) fails exactly when update does, and otherwise agrees
 *     with it (to f32 rounding) when the run is sane.
 * Any violation aborts with what was built. JX_CC=/nonexistent, as in
 * fuzz_programs.c: jit traces, optimizes and interprets, no C compiler.
 * Build and run: fuzz/run.sh optim SECONDS (seeds in fuzz/corpus_optim). */
#include <jx.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ the reader */
typedef struct {
  const uint8_t *p;
  size_t n;
  bool insane;    /* a hostile hyperparameter or value was drawn: no finiteness check */
  bool may_fail;  /* an input the optimizer may refuse (mask, shapes, dtypes, NULL params) */
  char what[512]; /* what was built, for the abort message */
} gen;
static unsigned u8(gen *g) {
  if (!g->n) return 0;
  g->n--;
  return *g->p++;
}
static int pick(gen *g, int n) { return n > 0 ? (int)(u8(g) % (unsigned)n) : 0; }
static void note(gen *g, const char *s) {
  size_t l = strlen(g->what);
  snprintf(g->what + l, sizeof g->what - l, "%s%s", l ? " " : "", s);
}

/* A real hyperparameter: in [lo, hi] mostly, else a hostile value */
static double hp(gen *g, double lo, double hi) {
  static const double bad[] = {NAN, -1, -0.0, INFINITY, -INFINITY, 1e300, -1e300, 1e-320,
                               2,   1,  0,    1e30,     -1e-3,     0.5,   -2,     1e-45};
  unsigned b = u8(g);
  if (b < 240) return lo + (hi - lo) * (double)u8(g) / 255.0;
  g->insane = true;
  return bad[b % (sizeof bad / sizeof bad[0])];
}
/* An integer hyperparameter: in [lo, hi] mostly, else a hostile one */
static int64_t ihp(gen *g, int64_t lo, int64_t hi) {
  static const int64_t bad[] = {-1, 0, INT64_MAX, INT64_MIN, INT32_MAX, -INT32_MAX, (int64_t)1 << 40, 1};
  unsigned b = u8(g);
  if (b < 240) return lo + (int64_t)(u8(g) % (unsigned)(hi - lo + 1));
  g->insane = true;
  return bad[b % 8];
}
static int64_t sat_add(int64_t a, int64_t b) {
  if (b > 0 && a > INT64_MAX - b) return INT64_MAX;
  if (b < 0 && a < INT64_MIN - b) return INT64_MIN;
  return a + b;
}

/* ------------------------------------------------------------ the tree */
enum { MAXLEAF = 4 };
static const char *const KEYS[] = {"w", "b", "a", "z"};

static jx_t gen_leaf(gen *g, jx_dtype *dt, int *nd, int64_t *shape) {
  static const jx_dtype dts[] = {JX_F32, JX_F32, JX_F32, JX_F64, JX_F64, JX_I32, JX_BOOL, JX_F32};
  *dt = dts[pick(g, 8)];
  if (*dt == JX_I32 || *dt == JX_BOOL) g->may_fail = g->insane = true;
  *nd = pick(g, 4);
  int64_t n = 1;
  for (int i = 0; i < *nd; i++) shape[i] = pick(g, 6), n *= shape[i];
  double v[125];
  for (int64_t k = 0; k < n; k++) {
    unsigned b = u8(g);
    static const double hostile[] = {NAN, INFINITY, -INFINITY, 1e30};
    if (b >= 250) g->insane = true;
    v[k] = b < 250 ? (double)b / 31.0 - 4.0 : hostile[b % 4];
  }
  return jx_astype(jx_array(JX_F64, *nd, shape, v), *dt);
}

typedef struct {
  int nleaf;
  jx_dtype dt[MAXLEAF];
  int nd[MAXLEAF];
  int64_t shape[MAXLEAF][3];
  int kind;   /* 0 tuple, 1 list, 2 dict */
  int nested; /* leaves from this index on go in a nested list */
} tree_spec;

static jx_t build(const tree_spec *s, const jx_t *l) {
  jx_t items[MAXLEAF];
  int n = s->nested < s->nleaf ? s->nested + 1 : s->nleaf;
  for (int i = 0; i < n; i++) items[i] = l[i];
  if (s->nested < s->nleaf) items[s->nested] = jx_list(s->nleaf - s->nested, l + s->nested);
  return s->kind == 0 ? jx_tuple(n, items) : s->kind == 1 ? jx_list(n, items) : jx_dict(n, KEYS, items);
}

static jx_t gen_params(gen *g, tree_spec *s) {
  jx_t l[MAXLEAF];
  s->nleaf = 1 + pick(g, MAXLEAF), s->kind = pick(g, 3), s->nested = 1 + pick(g, 8);
  for (int i = 0; i < s->nleaf; i++) l[i] = gen_leaf(g, &s->dt[i], &s->nd[i], s->shape[i]);
  return build(s, l);
}

/* gradients like the params, with their own values; rarely a leaf of
 * another shape or a tree of another structure */
static jx_t gen_grads(gen *g, const tree_spec *s) {
  jx_t l[MAXLEAF];
  for (int i = 0; i < s->nleaf; i++) {
    tree_spec t;
    jx_dtype dt;
    int nd;
    l[i] = gen_leaf(g, &dt, &nd, t.shape[0]);
    if (nd != s->nd[i] || memcmp(t.shape[0], s->shape[i], sizeof(int64_t) * (size_t)nd) || dt != s->dt[i]) {
      if (u8(g) < 240) /* mostly: the params' shape and dtype after all */
        l[i] = jx_astype(jx_broadcast_to(jx_sum(jx_astype(l[i], JX_F64)), s->nd[i], s->shape[i]), s->dt[i]);
      else
        g->may_fail = g->insane = true;
    }
  }
  if (u8(g) == 255) return g->may_fail = g->insane = true, jx_tuple(1, l);
  return build(s, l);
}

/* ---------------------------------------------------------- schedules, masks */

static jx_schedule *gen_sched(gen *g) {
  switch (pick(g, 6)) {
    case 0: note(g, "constant"); return jx_constant_schedule(hp(g, 1e-4, 0.5));
    case 1:
      note(g, "linear");
      return jx_linear_schedule(hp(g, 1e-4, 0.5), hp(g, 0, 0.5), ihp(g, 1, 20), ihp(g, 0, 5));
    case 2: note(g, "cosine"); return jx_cosine_decay_schedule(hp(g, 1e-4, 0.5), ihp(g, 1, 20), hp(g, 0, 1));
    case 3: {
      note(g, "warmup_cosine");
      int64_t w = ihp(g, 0, 5);
      return jx_warmup_cosine_decay_schedule(hp(g, 0, 0.5), hp(g, 1e-4, 0.5), w, sat_add(w, ihp(g, 1, 20)),
                                             hp(g, 0, 0.1));
    }
    case 4:
      note(g, "exponential");
      return jx_exponential_decay(hp(g, 1e-4, 0.5), ihp(g, 1, 10), hp(g, 0.5, 1), ihp(g, 0, 5), u8(g) & 1,
                                  hp(g, 0, 0.01));
    default: {
      note(g, "piecewise");
      int n = pick(g, 4);
      int64_t b[3];
      double sc[3];
      for (int k = 0; k < n; k++) b[k] = sat_add(k ? b[k - 1] : 0, ihp(g, 1, 10)), sc[k] = hp(g, 0.1, 2);
      return jx_piecewise_constant_schedule(hp(g, 1e-4, 0.5), n, b, sc);
    }
  }
}

static jx_t sum_leaf(jx_t x, void *u) {
  (void)u;
  return jx_sum(x);
}
static jx_t bool_leaf(jx_t p, void *u) {
  const uint8_t *bit = u;
  return jx_full(JX_BOOL, jx_ndim(p), jx_shape(p), *bit & 1);
}
/* a mask like params, or NULL, or a wrong one (marks the run may_fail) */
static jx_t gen_mask(gen *g, jx_t params) {
  uint8_t b = (uint8_t)u8(g);
  switch (b % 6) {
    case 0:
    case 1: return NULL;
    case 2: note(g, "mask:scalar"); return jx_tree_map(bool_leaf, jx_tree_map(sum_leaf, params, NULL), &b);
    case 3: note(g, "mask:leaves"); return jx_tree_map(bool_leaf, params, &b);
    case 4:
      note(g, "mask:wrong");
      g->may_fail = g->insane = true;
      return JX_LIST(jx_scalar_of(JX_BOOL, 1));
    default:
      note(g, "mask:float");
      g->may_fail = g->insane = true;
      return jx_tree_map(sum_leaf, params, NULL);
  }
}
static jx_t mask_body(const jx_t *a, void *u) {
  uint8_t b = (uint8_t)(uintptr_t)u;
  if (b & 2) return jx_tree_map(sum_leaf, a[0], NULL); /* not bool */
  return jx_tree_map(bool_leaf, a[0], &b);
}
static jx_fn *gen_mask_fn(gen *g) {
  uint8_t b = (uint8_t)u8(g);
  note(g, "mask_fn");
  if (b & 2) g->may_fail = g->insane = true;
  if ((b & 12) == 12) return g->may_fail = g->insane = true, jx_fn_new(mask_body, 2, NULL);
  return jx_fn_new(mask_body, 1, (void *)(uintptr_t)b);
}

/* ------------------------------------------------------------ optimizers */

static jx_adafactor_options gen_adafactor_options(gen *g, jx_t params) {
  jx_adafactor_options o = jx_adafactor_defaults();
  unsigned f = u8(g);
  o.factored = f & 1, o.multiply_by_parameter_scale = f & 2;
  o.decay_rate = hp(g, 0, 1), o.decay_offset = ihp(g, 0, 3), o.min_dim_size_to_factor = ihp(g, 0, 4);
  o.eps = hp(g, 1e-30, 1e-3);
  o.clipping_threshold = f & 4 ? hp(g, 0.1, 2) : 0;
  o.momentum = f & 8 ? hp(g, 0, 0.9) : 0;
  o.weight_decay_rate = f & 16 ? hp(g, 0, 0.1) : 0;
  if (f & 32) o.weight_decay_mask = gen_mask(g, params);
  if (f & 64) o.weight_decay_mask_fn = gen_mask_fn(g);
  if (o.weight_decay_rate != 0 && o.weight_decay_mask && o.weight_decay_mask_fn)
    g->may_fail = g->insane = true;
  return o;
}

static const char *const NAMES[] = {"sgd",
                                    "adam",
                                    "adamw",
                                    "rmsprop",
                                    "lion",
                                    "adafactor",
                                    "scale_by_learning_rate",
                                    "scale_by_adam",
                                    "trace",
                                    "add_decayed_weights",
                                    "clip_by_global_norm",
                                    "scale_by_factored_rms",
                                    "clip_by_block_rms",
                                    "scale_by_param_block_rms",
                                    "ema",
                                    "scale",
                                    "chain",
                                    "adamw",
                                    "lion",
                                    "add_decayed_weights"};
enum { NKIND = sizeof NAMES / sizeof NAMES[0] };

static jx_optimizer *gen_opt(gen *g, jx_t params, int depth, const char **name);

static jx_optimizer *gen_chain(gen *g, jx_t params, int depth) {
  int n = pick(g, 4);
  jx_optimizer *p[3];
  const char *nm;
  for (int i = 0; i < n; i++) p[i] = gen_opt(g, params, depth + 1, &nm);
  if (n > 0 && u8(g) == 255) { /* a NULL part: the chain refuses it */
    jx_optim_free(p[n - 1]), p[n - 1] = NULL;
    g->may_fail = g->insane = true;
  }
  return jx_chain(n, p);
}

static jx_optimizer *gen_opt(gen *g, jx_t params, int depth, const char **name) {
  int k = pick(g, depth < 2 ? NKIND : NKIND - 4); /* no deeper chains */
  if (depth >= 2 && k >= 16) k = 15;
  *name = NAMES[k];
  note(g, NAMES[k]);
  switch (k) {
    case 0: return jx_sgd(gen_sched(g), hp(g, 0, 0.99), u8(g) & 1);
    case 1: return jx_adam(gen_sched(g), hp(g, 0, 0.99), hp(g, 0, 0.999), hp(g, 1e-8, 1e-3));
    case 2:
      return jx_adamw(gen_sched(g), hp(g, 0, 0.99), hp(g, 0, 0.999), hp(g, 1e-8, 1e-3), hp(g, 0, 0.1),
                      gen_mask(g, params));
    case 3: return jx_rmsprop(gen_sched(g), hp(g, 0.5, 0.99), hp(g, 1e-6, 1e-3), hp(g, 0, 0.9), u8(g) & 1);
    case 4: return jx_lion(gen_sched(g), hp(g, 0, 1), hp(g, 0, 1), hp(g, 0, 0.1), gen_mask(g, params));
    case 5: {
      jx_schedule *lr = u8(g) & 1 ? gen_sched(g) : NULL;
      jx_adafactor_options o = gen_adafactor_options(g, params);
      return jx_adafactor(lr, &o);
    }
    case 6: return jx_scale_by_learning_rate(gen_sched(g));
    case 7: return jx_scale_by_adam(hp(g, 0, 0.99), hp(g, 0, 0.999), hp(g, 1e-8, 1e-3));
    case 8: return jx_momentum(hp(g, 0, 0.99), u8(g) & 1);
    case 9: return jx_add_decayed_weights(hp(g, 0, 0.1), gen_mask(g, params));
    case 10: return jx_clip_by_global_norm(hp(g, 0.1, 10));
    case 11:
      return jx_scale_by_factored_rms(u8(g) & 1, hp(g, 0, 1), ihp(g, 0, 3), ihp(g, 0, 4), hp(g, 1e-30, 1e-3));
    case 12: return jx_clip_by_block_rms(hp(g, 0.1, 10));
    case 13: return jx_scale_by_param_block_rms(hp(g, 0, 1));
    case 14: return jx_ema(hp(g, 0, 0.99), u8(g) & 1);
    case 15: return jx_scale(hp(g, -2, 2));
    case 16: return gen_chain(g, params, depth);
    case 17:
      return jx_adamw_mask_fn(gen_sched(g), hp(g, 0, 0.99), hp(g, 0, 0.999), hp(g, 1e-8, 1e-3), hp(g, 0, 0.1),
                              gen_mask_fn(g));
    case 18: return jx_lion_mask_fn(gen_sched(g), hp(g, 0, 1), hp(g, 0, 1), hp(g, 0, 0.1), gen_mask_fn(g));
    default: return jx_add_decayed_weights_mask_fn(hp(g, 0, 0.1), gen_mask_fn(g));
  }
}

/* ------------------------------------------------------------ checks */

static gen *cur;
static void fail(const char *why, jx_t r) {
  fprintf(stderr, "fuzz_optim: %s\n  built: %s\n  result: ", why, cur->what);
  if (jx_ok(r))
    jx_print(r);
  else
    fprintf(stderr, "error: %s\n", jx_error(r));
  fflush(stdout);
  abort();
}

static bool all_finite(jx_t t) {
  if (jx_is_tree(t)) {
    for (int i = 0; i < jx_len(t); i++)
      if (!all_finite(jx_at(t, i))) return false;
    return true;
  }
  jx_dtype d = jx_dtype_of(t);
  if (d != JX_F32 && d != JX_F64) return true;
  jx_t ok = jx_all(jx_isfinite(t), 0, NULL, false);
  return jx_ok(ok) && jx_item(ok) != 0;
}

/* an error names the optimizer; a sane run must not fail and stays finite */
static void check(jx_t r, const char *name, bool must_succeed) {
  if (!jx_ok(r)) {
    const char *m = jx_error(r);
    if (!m || !*m) fail("an error value without a message", r);
    if (!strstr(m, name)) fail("an error that does not name the optimizer", r);
    if (must_succeed) fail("a sane run failed", r);
    return;
  }
  if (must_succeed && !all_finite(r)) fail("a sane run gave a non-finite update or state", r);
}

static bool close_enough(double a, double b) {
  if (a == b || (isnan(a) && isnan(b))) return true;
  return fabs(a - b) <= 1e-4 * (1 + fabs(a) + fabs(b));
}
static bool same(jx_t a, jx_t b) {
  if (jx_is_tree(a) || jx_is_tree(b)) {
    if (jx_len(a) != jx_len(b)) return false;
    for (int i = 0; i < jx_len(a); i++)
      if (!same(jx_at(a, i), jx_at(b, i))) return false;
    return true;
  }
  int64_t n = jx_size(a);
  if (jx_dtype_of(a) != jx_dtype_of(b) || n != jx_size(b) || n > 4096) return n <= 4096;
  static double x[4096], y[4096];
  if (jx_read(a, JX_F64, x, sizeof(double) * (size_t)n) || jx_read(b, JX_F64, y, sizeof(double) * (size_t)n))
    return false;
  for (int64_t i = 0; i < n; i++)
    if (!close_enough(x[i], y[i])) return false;
  return true;
}

typedef struct {
  jx_optimizer *opt;
  bool no_params;
} upd_ctx;
static jx_t update_body(const jx_t *a, void *u) { /* (grads, state, params) -> (updates, state) */
  upd_ctx *c = u;
  return jx_optim_update(c->opt, a[0], a[1], c->no_params ? NULL : a[2]);
}

/* ------------------------------------------------------------ the target */

static char cache_dir[64] = "/tmp/jx-fuzz-optim-XXXXXX";
static void remove_cache_dir(void) {
  DIR *d = opendir(cache_dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    char p[400];
    snprintf(p, sizeof p, "%s/%s", cache_dir, e->d_name);
    if (e->d_name[0] != '.') unlink(p);
  }
  if (d) closedir(d);
  rmdir(cache_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  setenv("JX_CC", "/nonexistent", 1);
  setenv("JX_LOG", "quiet", 0);
  setenv("JX_CACHE_BYTES", "16777216", 0);
  if (mkdtemp(cache_dir)) {
    setenv("JX_CACHE_DIR", cache_dir, 1);
    atexit(remove_cache_dir);
  }
  jx_set_num_threads(1);
  return 0;
}

static jx_t scale_leaf(jx_t x, void *u) {
  return jx_astype(jx_mul(x, jx_scalar(*(double *)u)), jx_dtype_of(x));
}

/* init (into *st0), then three eager updates (the gradients scaled by 1,
 * -0.5 and 0); returns the first update's result */
static jx_t run_eager(gen *g, jx_optimizer *opt, const char *name, jx_t params, jx_t grads, bool no_params,
                      jx_t *st0) {
  static const double scale[3] = {1, -0.5, 0};
  bool sane = !g->insane && !g->may_fail;
  jx_t st = *st0 = jx_optim_init(opt, params), p = params, first = st;
  check(st, name, sane);
  for (int t = 0; t < 3 && jx_ok(st); t++) {
    double sc = scale[t];
    jx_t r = jx_optim_update(opt, t ? jx_tree_map(scale_leaf, grads, &sc) : grads, st, no_params ? NULL : p);
    check(r, name, sane);
    if (t == 0) first = r;
    if (!jx_ok(r)) break;
    p = jx_apply_updates(p, jx_at(r, 0)), st = jx_at(r, 1);
    check(jx_ok(p) ? JX_TUPLE(p) : p, "apply_updates", sane);
  }
  return first;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gen g = {data, size, false, false, ""};
  cur = &g;
  jx_pool_push();
  tree_spec s;
  jx_t params = gen_params(&g, &s);
  jx_t grads = gen_grads(&g, &s);
  bool no_params = u8(&g) == 255;
  if (no_params) g.may_fail = true, note(&g, "params:NULL");
  const char *name;
  jx_optimizer *opt = gen_opt(&g, params, 0, &name);
  jx_t st0, e = run_eager(&g, opt, name, params, grads, no_params, &st0);
  if (getenv("FUZZ_VERBOSE")) /* what the inputs exercise */
    fprintf(stderr, "%s%s%s -> %s\n", g.what, g.insane ? " [insane]" : "", g.may_fail ? " [may fail]" : "",
            jx_ok(e) ? "ok" : jx_error(e));
  /* the first update again, jitted: it fails exactly when eager does */
  if (jx_ok(st0)) {
    upd_ctx c = {opt, no_params};
    jx_fn *jf = jx_jit(jx_fn_new(update_body, 3, &c));
    jx_t j = JX_CALL(jf, grads, st0, params);
    if (!jx_ok(j) && (!jx_error(j) || !*jx_error(j))) fail("jit: an error value without a message", j);
    if (jx_ok(e) != jx_ok(j))
      fail(jx_ok(e) ? "jit(update) failed where update did not" : "jit(update) did not fail", j);
    if (jx_ok(e) && !g.insane && !g.may_fail && !same(e, j)) fail("jit(update) differs from update", j);
  }
  jx_optim_free(opt);
  jx_pool_pop();
  return 0;
}
