/* Out of memory, at every allocation (DESIGN §5: an allocation failure is
 * an error value, never an abort).
 *
 * The test installs its own allocator (jx_set_allocator) that counts every
 * allocation jx makes and can fail the N-th. A representative workload --
 * eager ops (GEMM packing, chunked reductions, sorts), grad, vmap, jit
 * (trace, optimize, fuse, render, build, run), cond/scan/while/fori, random,
 * vjp, switch, tree_map, make_jaxpr and to_string, optimizers (src/optim, adafactor too),
 * named trees (dicts through grad, structures, key paths) and DLPack, #19's
 * dtypes (widened convolutions and windows, integer dot, sort, scatter,
 * cumsum, draws, grad and jit in bf16), and
 * eager ops and grad in a new thread (whose pool vectors start empty) -- is run once to count its allocations (K); then, for every N in 1..K,
 * run again with allocation N failing. Each step of the workload must end
 * in an error value or its correct result; afterwards every block the run
 * made must be freed again (the allocator counts live blocks, so a leak is
 * caught at the N that causes it, not only by LeakSanitizer at exit), and
 * the whole workload run again without failures must give the reference
 * results (no state was corrupted).
 *
 * `test_oom --persist` fails every allocation from the N-th on instead (the
 * error paths themselves then run out of memory). `test_oom --stride 1`
 * (with or without --persist) is the full sweep; with no arguments (ctest)
 * both kinds run over a sample of the points. `test_oom --compile --stride 1`
 * fails each allocation of a first compile in turn (see compile_sweep).
 * `test_oom N...` runs those N verbosely, in order; `--from A` starts a
 * sweep at A.
 * The jit's on-disk cache goes to a private temporary directory. */
#include "check.h"

#include <jx.h>

#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The default run (ctest) samples every DEFAULT_STRIDE-th point: a full
 * sweep takes minutes (docs/RELIABILITY.md gives the command). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
enum { DEFAULT_STRIDE = 64 };
#else
enum { DEFAULT_STRIDE = 24 };
#endif

void jx_buffer_cache_trim(void);
int jx_cpu_module_count(void);
jx_t jx_pool_own(jx_t x); /* the current pool takes over a reference */

/* ----------------------------------------------------- the test allocator */
static long alloc_count; /* allocations and resizes counted so far */
static long fail_at;     /* fail this one (1-based); 0: none */
static bool persist;     /* fail every one from fail_at on */
static bool paused;      /* the test's own bookkeeping: not counted */
static long live;        /* blocks currently allocated through jx */
static long failures;    /* allocations refused */

/* Debugging a leak: with `tracking` on, live blocks are kept in a table
 * with the allocation number that made them; `test_oom N` lists those the
 * failing run left behind, and JX_OOM_TRAP=N:k prints a stack trace at
 * allocation k of the run failing N (in a sanitizer build). */
enum { TABLE = 1 << 20 };
static bool tracking;
static struct {
  uintptr_t p; /* the block's address, disguised so LeakSanitizer does not see a reference */
  long k;
} table[TABLE];
#define DISGUISE(p) ((uintptr_t)(p) ^ 0xA5A5A5A5A5A5A5A5ull)
static long trap_at, trap_run;
void __sanitizer_print_stack_trace(void) __attribute__((weak));

static size_t slot(uintptr_t d) {
  size_t h = (d >> 4) * 0x9E3779B97F4A7C15ull >> 44;
  while (table[h].p && table[h].p != d) h = (h + 1) & (TABLE - 1);
  return h;
}
static void forget(void *p) {
  size_t h = slot(DISGUISE(p));
  if (!table[h].p) return;
  table[h].p = 0; /* re-insert the rest of the cluster */
  for (size_t i = (h + 1) & (TABLE - 1); table[i].p; i = (i + 1) & (TABLE - 1)) {
    uintptr_t q = table[i].p;
    long k = table[i].k;
    table[i].p = 0;
    size_t s = slot(q);
    table[s].p = q, table[s].k = k;
  }
}

/* the allocator this one wraps (the C library's) */
static jx_alloc_fn base_alloc;
static void *base_ud;

static void *test_alloc(void *ud, void *p, size_t n) {
  (void)ud;
  if (n == 0) {
    if (p) live--;
    if (p && tracking) forget(p);
    base_alloc(base_ud, p, 0);
    return NULL;
  }
  long k = 0;
  if (!paused) {
    k = ++alloc_count;
    if (k == trap_at && fail_at == trap_run && __sanitizer_print_stack_trace) {
      fprintf(stderr, "allocation %ld of run N=%ld:\n", k, fail_at);
      __sanitizer_print_stack_trace();
    }
    if (fail_at && (k == fail_at || (persist && k > fail_at))) {
      failures++;
      return NULL;
    }
  }
  long was = 0;
  if (p && tracking) {
    was = table[slot(DISGUISE(p))].k;
    forget(p);
  }
  void *q = base_alloc(base_ud, p, n);
  if (q && !p) live++;
  if (tracking && (q || p)) {
    uintptr_t d = DISGUISE(q ? q : p);
    size_t s = slot(d);
    table[s].p = d, table[s].k = q && fail_at ? k : was;
  }
  return q;
}

static void list_leftovers(void) {
  for (size_t i = 0; i < TABLE; i++)
    if (table[i].p && table[i].k) fprintf(stderr, "  left behind: allocation %ld\n", table[i].k);
}

/* ------------------------------------------------------------ the workload */
static jx_t loss(const jx_t *a, void *u) { /* a tanh MLP's squared error */
  (void)u;
  jx_t h = a[1];
  for (int i = 0; i < jx_len(a[0]); i++) {
    jx_t layer = jx_at(a[0], i);
    h = jx_add(jx_dot(h, jx_at(layer, 0)), jx_at(layer, 1));
    if (i + 1 < jx_len(a[0])) h = jx_tanh(h);
  }
  jx_t d = jx_sub(h, a[2]);
  return jx_mean(jx_mul(d, d));
}

static jx_t slow_f(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0];
  return jx_add(jx_add(jx_mul(jx_mul(x, x), x), jx_mul(jx_mul(x, jx_scalar(2.0)), x)), x);
}

static jx_t mixed(const jx_t *a, void *u) { /* fusion, reductions, layout, a GEMM call */
  (void)u;
  jx_t x = a[0];
  jx_t s = jx_softmax(jx_mul(x, jx_scalar(3.0)), 1);
  jx_t t = jx_transpose(jx_slice(x, (int64_t[]){0, 1}, (int64_t[]){JX_END, JX_END}, NULL), NULL);
  return JX_TUPLE(jx_sum_axes(s, 1, (int[]){0}, false), jx_dot(t, x), jx_logsumexp(x, 0),
                  jx_argmax(x, 1, false));
}

static jx_t params_tree(void) {
  jx_t W1 = jx_reshape(jx_mul(jx_sin(jx_arange(JX_F32, 0, 12, 1)), jx_scalar(0.5)), JX_SHAPE(3, 4));
  jx_t b1 = jx_full(JX_F32, JX_SHAPE(4), 0.1);
  jx_t W2 = jx_reshape(jx_cos(jx_arange(JX_F32, 0, 8, 1)), JX_SHAPE(4, 2));
  jx_t b2 = jx_zeros(JX_F32, JX_SHAPE(2));
  return JX_LIST(JX_TUPLE(W1, b1), JX_TUPLE(W2, b2));
}
static jx_t inputs(void) {
  return jx_reshape(jx_div(jx_arange(JX_F32, 0, 15, 1), jx_scalar(7.0)), JX_SHAPE(5, 3));
}
static jx_t targets(void) { return jx_reshape(jx_cos(jx_arange(JX_F32, 0, 10, 1)), JX_SHAPE(5, 2)); }

static jx_t step_eager(void) {
  jx_t x = jx_reshape(jx_arange(JX_F32, -6, 6, 1), JX_SHAPE(3, 4));
  jx_t y = jx_add(jx_exp(jx_mul(x, jx_scalar(0.1))), jx_sum_axes(x, 1, (int[]){0}, true));
  jx_t z = jx_concatenate(2, (jx_t[]){x, y}, 0);
  jx_t idx = jx_array(JX_I32, JX_SHAPE(3), (int32_t[]){2, -1, 0});
  jx_t w = jx_where(jx_gt(z, jx_scalar(0)), z, jx_neg(z));
  return JX_TUPLE(y, jx_take(z, idx, 0), jx_max_axes(w, 1, (int[]){1}, false), jx_astype(w, JX_I32),
                  jx_softmax(x, -1), jx_matmul(x, jx_transpose(y, NULL)));
}

/* the kernels' scratch memory: GEMM packing (built-in GEMM), a reduction
 * split into chunks, a radix sort */
static jx_t step_kernels(void) {
  jx_t a = jx_reshape(jx_sin(jx_arange(JX_F32, 0, 96 * 80, 1)), JX_SHAPE(96, 80));
  jx_t b = jx_reshape(jx_cos(jx_arange(JX_F32, 0, 80 * 72, 1)), JX_SHAPE(80, 72));
  jx_t big = jx_reshape(jx_sin(jx_arange(JX_F32, 0, 2048 * 128, 1)), JX_SHAPE(2048, 128));
  jx_t perm = jx_random_permutation(jx_random_key(7), 300);
  /* [BF16] the bf16 GEMM's buffers (kernel packing, else the widened
   * operands); f32 results, so a fallback's rounding stays within 1e-5 */
  const int lc = 1, rc = 0;
  jx_t lowp = jx_dot_general(jx_astype(a, JX_BF16), jx_astype(b, JX_BF16), 1, &lc, &rc, 0, NULL, NULL,
                             &(jx_dtype){JX_F32});
  return JX_TUPLE(jx_sum(jx_dot(a, b)), jx_sum_axes(big, 1, (int[]){0}, false), perm, jx_sum(lowp));
}

static jx_t step_grad(void) {
  jx_fn *f = jx_fn_new(loss, 3, NULL), *g = jx_grad(f, 0), *vg = jx_value_and_grad(f, 1);
  jx_fn *h = jx_hessian(f, 1);
  jx_t p = params_tree(), x = inputs(), t = targets();
  jx_t r = JX_TUPLE(JX_CALL(g, p, x, t), JX_CALL(vg, p, x, t),
                    JX_CALL(h, p, jx_slice(x, (int64_t[]){0, 0}, (int64_t[]){1, 3}, NULL),
                            jx_slice(t, (int64_t[]){0, 0}, (int64_t[]){1, 2}, NULL)));
  jx_fn_free(h), jx_fn_free(vg), jx_fn_free(g), jx_fn_free(f);
  return r;
}

static jx_t step_vmap(void) {
  jx_fn *f = jx_fn_new(loss, 3, NULL), *g = jx_grad(f, 0);
  jx_fn *pg = jx_vmap(g, (int[]){JX_NONE, 0, 0}, 0), *s = jx_fn_new(slow_f, 1, NULL),
        *vs = jx_vmap(s, NULL, 1);
  jx_t r = JX_TUPLE(JX_CALL(pg, params_tree(), inputs(), targets()), JX_CALL(vs, inputs()));
  jx_fn_free(vs), jx_fn_free(s), jx_fn_free(pg), jx_fn_free(g), jx_fn_free(f);
  return r;
}

static jx_t step_jit(void) {
  jx_fn *f = jx_fn_new(loss, 3, NULL), *g = jx_grad(f, 0), *jg = jx_jit(g);
  jx_fn *vg = jx_vmap(g, (int[]){JX_NONE, 0, 0}, 0), *pg = jx_jit(vg);
  jx_fn *s = jx_fn_new(slow_f, 1, NULL), *js = jx_jit(s), *m = jx_fn_new(mixed, 1, NULL), *jm = jx_jit(m);
  jx_t x = inputs(), p = params_tree(), t = targets();
  jx_t r =
      JX_TUPLE(JX_CALL(js, x), JX_CALL(js, x), JX_CALL(jm, x), JX_CALL(jg, p, x, t), JX_CALL(pg, p, x, t));
  jx_fn_free(jm), jx_fn_free(m), jx_fn_free(js), jx_fn_free(s), jx_fn_free(pg), jx_fn_free(vg),
      jx_fn_free(jg);
  jx_fn_free(g), jx_fn_free(f);
  return r;
}

static jx_t br_a(const jx_t *a, void *u) {
  (void)u;
  return jx_sin(jx_mul(a[0], a[1]));
}
static jx_t br_b(const jx_t *a, void *u) {
  (void)u;
  return jx_add(jx_mul(a[0], a[0]), a[1]);
}
static jx_t cumsum_step(const jx_t *a, void *u) { /* (carry, x) -> (carry + x, carry * x) */
  (void)u;
  jx_t c = jx_add(a[0], jx_tanh(a[1]));
  return JX_TUPLE(c, jx_mul(c, a[1]));
}
static jx_t w_cond(const jx_t *a, void *u) {
  (void)u;
  return jx_lt(jx_at(a[0], 1), jx_scalar(50.0));
}
static jx_t w_body(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_add(jx_at(a[0], 0), jx_scalar_int(1)), jx_mul(jx_at(a[0], 1), jx_scalar(1.5)));
}
static jx_t fori_body(const jx_t *a, void *u) {
  (void)u;
  return jx_add(jx_mul(a[1], jx_scalar(0.9)), jx_astype(a[0], JX_F32));
}
static jx_t control(const jx_t *a, void *u) { /* scalar x, vector xs */
  (void)u;
  jx_fn *ta = jx_fn_new(br_a, 2, NULL), *tb = jx_fn_new(br_b, 2, NULL), *sc = jx_fn_new(cumsum_step, 2, NULL);
  jx_fn *fb = jx_fn_new(fori_body, 2, NULL);
  jx_t c = jx_cond(jx_gt(a[0], jx_scalar(0)), ta, tb, 2, (jx_t[]){a[0], jx_sum(a[1])});
  jx_t s = jx_scan(sc, a[0], a[1]);
  jx_t f = jx_fori_loop(0, 5, fb, a[0]);
  jx_fn_free(fb), jx_fn_free(sc), jx_fn_free(tb), jx_fn_free(ta);
  return jx_add(jx_add(c, jx_at(s, 0)), jx_add(jx_sum(jx_at(s, 1)), f));
}

static jx_t step_control(void) {
  jx_fn *f = jx_fn_new(control, 2, NULL), *g = jx_grad(f, 0), *jf = jx_jit(f), *g1 = jx_grad(f, 1),
        *jg = jx_jit(g1);
  jx_fn *vf = jx_vmap(f, (int[]){0, JX_NONE}, 0);
  jx_fn *wc = jx_fn_new(w_cond, 1, NULL), *wb = jx_fn_new(w_body, 1, NULL);
  jx_t x = jx_scalar(0.4), xs = jx_div(jx_arange(JX_F32, 0, 6, 1), jx_scalar(5.0));
  jx_t r = JX_TUPLE(JX_CALL(f, x, xs), JX_CALL(g, x, xs), JX_CALL(jf, jx_neg(x), xs), JX_CALL(jg, x, xs),
                    JX_CALL(vf, jx_array(JX_F32, JX_SHAPE(2), (float[]){-0.5f, 0.5f}), xs),
                    jx_while_loop(wc, wb, JX_TUPLE(jx_scalar_int(0), jx_scalar(1.0))));
  jx_fn_free(wb), jx_fn_free(wc), jx_fn_free(vf), jx_fn_free(jg), jx_fn_free(g1), jx_fn_free(jf),
      jx_fn_free(g);
  jx_fn_free(f);
  return r;
}

static jx_t draw(const jx_t *a, void *u) {
  (void)u;
  jx_t k = jx_random_split(a[0], 3);
  jx_t keys[3];
  for (int i = 0; i < 3; i++)
    keys[i] = jx_reshape(jx_slice(k, (int64_t[]){i, 0}, (int64_t[]){i + 1, 2}, NULL), JX_SHAPE(2));
  return JX_TUPLE(jx_random_uniform(keys[0], JX_F32, JX_SHAPE(4), -1, 1),
                  jx_random_normal(keys[1], JX_F32, JX_SHAPE(3)),
                  jx_random_bernoulli(keys[2], JX_SHAPE(5), jx_scalar(0.3)));
}

static jx_t step_random(void) {
  jx_fn *d = jx_fn_new(draw, 1, NULL), *jd = jx_jit(d);
  jx_t key = jx_random_fold_in(jx_random_key(42), 3);
  jx_t r = JX_TUPLE(JX_CALL(d, key), JX_CALL(jd, key), jx_random_randint(key, JX_I32, JX_SHAPE(6), -3, 9),
                    jx_random_gumbel(key, JX_F64, JX_SHAPE(2)));
  jx_fn_free(jd), jx_fn_free(d);
  return r;
}

/* vjp, switch, tree_map, and the text jx returns (freed through the
 * allocator, as API.md says); a NULL string counts as an error */
static jx_t b_scale(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(a[0], jx_scalar(3.0));
}
static jx_t b_shift(const jx_t *a, void *u) {
  (void)u;
  return jx_add(a[0], jx_scalar(1.0));
}
static jx_t leaf_sq(jx_t x, void *u) {
  (void)u;
  return jx_mul(x, x);
}
static jx_t step_misc(void) {
  jx_fn *f = jx_fn_new(loss, 3, NULL), *vjp_fn = NULL;
  jx_t p = params_tree(), x = inputs(), t = targets();
  jx_t out = jx_vjp(f, (jx_t[]){p, x, t}, &vjp_fn);
  jx_t cts = vjp_fn ? JX_CALL(vjp_fn, jx_scalar(1.0)) : jx_error_new("vjp: no function");
  jx_fn *br[2] = {jx_fn_new(b_scale, 1, NULL), jx_fn_new(b_shift, 1, NULL)};
  jx_t sw = jx_switch(jx_scalar_int(1), 2, br, 1, &x);
  jx_t sq = jx_tree_map(leaf_sq, p, NULL);
  void *ud;
  jx_alloc_fn al = jx_get_allocator(&ud);
  char *text = jx_make_jaxpr(f, (jx_t[]){p, x, t}), *str = jx_to_string(sw);
  jx_t strings = text && str && strstr(text, "tanh") && strstr(str, "f32[5,3]")
                     ? jx_scalar_int((int64_t)strlen(str))
                     : jx_error_new("make_jaxpr/to_string: %s", text && str ? text : "no string");
  if (text) al(ud, text, 0);
  if (str) al(ud, str, 0);
  jx_fn_free(br[1]), jx_fn_free(br[0]), jx_fn_free(vjp_fn), jx_fn_free(f);
  return JX_TUPLE(out, cts, sw, sq, strings);
}

/* Optimizers: constructors (schedule, chain, mask), init, two updates and
 * apply_updates of clip + adamw with a warmup-cosine schedule, and sgd
 * with nesterov momentum. */
static jx_t optim_steps(jx_optimizer *opt, jx_t p, jx_t g) {
  jx_t s = jx_optim_init(opt, p);
  for (int i = 0; i < 2; i++) {
    jx_t r = jx_optim_update(opt, g, s, p);
    p = jx_apply_updates(p, jx_at(r, 0)), s = jx_at(r, 1);
  }
  return JX_TUPLE(p, s);
}
static jx_t step_optim(void) {
  jx_t yes = jx_scalar_of(JX_BOOL, 1), no = jx_scalar_of(JX_BOOL, 0);
  jx_t mask = JX_LIST(JX_TUPLE(yes, no), JX_TUPLE(yes, no));
  jx_optimizer *a = jx_chain(2, (jx_optimizer *[]){jx_clip_by_global_norm(0.5),
                                                   jx_adamw(jx_warmup_cosine_decay_schedule(0, 0.1, 1, 10, 0),
                                                            0.9, 0.999, 1e-8, 0.1, mask)});
  jx_optimizer *b =
      jx_sgd(jx_piecewise_constant_schedule(0.1, 1, (int64_t[]){1}, (double[]){0.5}), 0.9, true);
  jx_t p = params_tree(), g = jx_tree_map(leaf_sq, p, NULL);
  jx_t r = JX_TUPLE(optim_steps(a, p, g), optim_steps(b, p, g));
  jx_optim_free(a), jx_optim_free(b);
  return r;
}

/* adafactor: every part on (a factored matrix, momentum, masked weight
 * decay, a schedule), init and two updates */
static jx_t step_adafactor(void) {
  jx_t yes = jx_scalar_of(JX_BOOL, 1), no = jx_scalar_of(JX_BOOL, 0);
  jx_adafactor_options o = jx_adafactor_defaults();
  o.min_dim_size_to_factor = 1, o.momentum = 0.9, o.weight_decay_rate = 0.01;
  o.weight_decay_mask = JX_LIST(JX_TUPLE(yes, no), JX_TUPLE(yes, no));
  jx_optimizer *a = jx_adafactor(jx_cosine_decay_schedule(0.1, 10, 0), &o);
  jx_t p = params_tree(), g = jx_tree_map(leaf_sq, p, NULL);
  jx_t r = optim_steps(a, p, g);
  jx_optim_free(a);
  return r;
}

/* named trees (a dict through grad, structures, paths, their text) and
 * interop (a wrapped buffer through DLPack and back) */
static jx_t dict_loss(const jx_t *a, void *u) {
  return loss((jx_t[]){jx_get(a[0], "layers"), a[1], jx_get(a[0], "target")}, u);
}
static jx_t step_trees(void) {
  static double mem[4] = {1, 2, 3, 4};
  jx_t d = jx_dict(2, (const char *[]){"target", "layers"}, (jx_t[]){targets(), params_tree()});
  jx_fn *f = jx_fn_new(dict_loss, 2, NULL), *g = jx_grad(f, 0);
  jx_t grads = JX_CALL(g, d, inputs());
  jx_t s = NULL, leaves = jx_tree_flatten(d, &s), back = jx_tree_unflatten(s, leaves);
  char **paths = NULL, *str = jx_to_string(s);
  jx_t lp = jx_tree_flatten_with_path(d, &paths, NULL);
  jx_t strings = paths && str && !strcmp(paths[0], "['layers'][0][0]") && strstr(str, "PyTreeDef({'layers'")
                     ? jx_scalar_int((int64_t)strlen(str))
                     : jx_error_new("tree paths/structure text: %s", str ? str : "no string");
  void *ud;
  jx_alloc_fn al = jx_get_allocator(&ud);
  if (paths) al(ud, paths, 0);
  if (str) al(ud, str, 0);
  jx_t w = jx_from_buffer(JX_F64, JX_SHAPE(4), NULL, mem, NULL, NULL);
  struct DLManagedTensor *t = jx_ok(w) ? jx_to_dlpack(w) : NULL;
  jx_t r = t ? jx_from_dlpack(t) : jx_ok(w) ? jx_error_new("to_dlpack failed") : w;
  jx_fn_free(g), jx_fn_free(f);
  return JX_TUPLE(grads, back, lp, strings, jx_sum(r));
}

/* A new thread starts with no pool vectors: its first values and its
 * first jx_pool_push must grow them (elsewhere they are warm). */
static void *thread_work(void *u) {
  jx_pool_push();
  jx_pool_push();
  *(jx_t *)u = jx_retain(JX_TUPLE(step_eager(), step_grad()));
  jx_pool_pop();
  jx_pool_pop();
  return NULL;
}

static jx_t step_thread(void) {
  jx_t r = NULL;
  pthread_t th;
  if (pthread_create(&th, NULL, thread_work, &r)) return jx_error_new("pthread_create failed");
  pthread_join(th, NULL);
  return jx_pool_own(r);
}

/* #19's dtypes through the paths that allocate for them: convolutions
 * and windows widened to f32 (bf16/f16) or i32 (i8), integer dot rows,
 * the radix sort's widened keys, scatter combiners, cumulative sums,
 * draws in bf16, and grad and jit of a bf16 convolution */
static jx_t conv_bf16(const jx_t *a, void *u) {
  (void)u;
  jx_t y = jx_conv(a[0], a[1], NULL, "SAME");
  return jx_sum(jx_astype(jx_mul(y, y), JX_F32));
}

static jx_t step_dtypes(void) {
  jx_t x = jx_reshape(jx_sin(jx_arange(JX_F32, 0, 2 * 3 * 8 * 8, 1)), JX_SHAPE(2, 3, 8, 8));
  jx_t w = jx_reshape(jx_cos(jx_arange(JX_F32, 0, 4 * 3 * 3 * 3, 1)), JX_SHAPE(4, 3, 3, 3));
  jx_t xb = jx_astype(x, JX_BF16), wb = jx_astype(w, JX_BF16);
  jx_t xi = jx_astype(jx_mul(x, jx_scalar(100)), JX_I8), wi = jx_astype(jx_mul(w, jx_scalar(100)), JX_I8);
  jx_t cb = jx_conv(xb, wb, NULL, "SAME"), ci = jx_conv(xi, wi, NULL, "VALID");
  jx_t pool = jx_max_pool(jx_astype(x, JX_F16), 2, (int64_t[]){2, 2}, NULL, "VALID");
  const int lc = 1, rc = 0;
  jx_t m = jx_reshape(xi, JX_SHAPE(48, 8));
  jx_t di = jx_dot_general(jx_astype(m, JX_U8), jx_astype(jx_transpose(m, NULL), JX_U8), 1, &lc, &rc, 0, NULL,
                           NULL, NULL);
  jx_t flat = jx_reshape(xb, JX_SHAPE(-1));
  jx_t srt = jx_sort(flat, 0), cs = jx_cumsum(flat, 0);
  jx_t sc = jx_at_add(flat, jx_astype(jx_arange(JX_I32, 0, 40, 1), JX_U8), jx_scalar(0.5), 0);
  jx_t nb = jx_random_normal(jx_random_key(3), JX_BF16, JX_SHAPE(64));
  jx_fn *f = jx_fn_new(conv_bf16, 2, NULL), *g = jx_grad_ex(f, 2, (int[]){0, 1}, false), *jg = jx_jit(g);
  jx_t gr = jx_call(jg, (jx_t[]){xb, wb});
  jx_fn_free(jg), jx_fn_free(g), jx_fn_free(f);
  return JX_TUPLE(jx_astype(cb, JX_F32), ci, pool, di, srt, cs, sc, nb, gr);
}

typedef struct {
  const char *name;
  jx_t (*run)(void);
} step;
static const step steps[] = {
    {"eager", step_eager},   {"kernels", step_kernels}, {"grad", step_grad},
    {"vmap", step_vmap},     {"jit", step_jit},         {"control", step_control},
    {"random", step_random}, {"misc", step_misc},       {"thread", step_thread},
    {"optim", step_optim},   {"trees", step_trees},     {"adafactor", step_adafactor},
    {"dtypes", step_dtypes}};
enum { NSTEP = sizeof steps / sizeof steps[0] };

/* --------------------------------------------------------- result checking */
typedef struct {
  double *v;
  int n;
} flat;

static void flatten(jx_t x, flat *f) {
  if (jx_is_tree(x)) {
    for (int i = 0; i < jx_len(x); i++) flatten(jx_at(x, i), f);
    return;
  }
  int64_t n = jx_size(x);
  if (n < 0) return;
  f->v = realloc(f->v, sizeof(double) * (size_t)(f->n + n + 1));
  if (jx_read(x, JX_F64, f->v + f->n, sizeof(double) * (size_t)n) == 0) f->n += (int)n;
}

static flat reference[NSTEP];

/* The result of step i: 0 correct, 1 an error value, -1 wrong. */
static int judge(int i, jx_t r, char *msg, size_t msgn) {
  if (!jx_ok(r)) {
    snprintf(msg, msgn, "%s", jx_error(r));
    return 1;
  }
  flat f = {0};
  flatten(r, &f);
  int bad = 0;
  if (f.n != reference[i].n) {
    snprintf(msg, msgn, "%d values, expected %d", f.n, reference[i].n);
    bad = 1;
  }
  for (int k = 0; !bad && k < f.n; k++) {
    double a = f.v[k], b = reference[i].v[k];
    bad = !(a == b || (isnan(a) && isnan(b)) || fabs(a - b) <= 1e-5 * (1 + fabs(b)));
    if (bad) snprintf(msg, msgn, "value %d: %.9g, expected %.9g", k, a, b);
  }
  free(f.v);
  return bad ? -1 : 0;
}

/* One run of the workload; counts steps ending in errors. Returns false if
 * any step gave a wrong value. */
static bool run_workload(bool verbose, int *nerr) {
  bool ok = true;
  *nerr = 0;
  for (int i = 0; i < NSTEP; i++) {
    long before = alloc_count;
    jx_pool_push();
    jx_t r = steps[i].run();
    paused = true;
    if (verbose && !fail_at)
      fprintf(stderr, "  step %s: %ld allocations\n", steps[i].name, alloc_count - before);
    char msg[512] = "";
    int v = judge(i, r, msg, sizeof msg);
    if (v) ++*nerr;
    if (v < 0 || (verbose && v))
      fprintf(stderr, "  step %s: %s: %s\n", steps[i].name, v < 0 ? "WRONG" : "error", msg);
    ok &= v >= 0;
    paused = false;
    jx_pool_pop();
  }
  return ok;
}

/* Live blocks once every pool is popped and the buffer cache is empty,
 * less the jit's loaded objects (kept for the process; a recovered failure
 * can change a program, e.g. an equation not folded, so load a new one). */
static long settled_live(void) {
  jx_buffer_cache_trim();
  return live - jx_cpu_module_count();
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* Fail allocation n (and, with persist, all after it); check the run and a
 * clean run after it. Returns false on any problem. */
static bool try_failing(long n, long *base_live_p, bool verbose, int *nerr_out) {
  long base_live = *base_live_p;
  int nerr, nerr2;
  jx_buffer_cache_trim(); /* every run starts from an empty buffer cache: the same allocations */
  alloc_count = 0, fail_at = n, failures = 0;
  bool ok = run_workload(verbose, &nerr);
  fail_at = 0;
  long hit = failures;
  long now = settled_live();
  bool leak = now != base_live;
  if (leak && tracking) list_leftovers();
  alloc_count = 0;
  bool clean = run_workload(verbose, &nerr2) && nerr2 == 0;
  if (verbose) fprintf(stderr, "  the clean run after it made %ld allocations\n", alloc_count);
  long after = settled_live();
  if (verbose || !ok || leak || !clean || after != base_live)
    fprintf(stderr, "N=%ld: %s%s%s (%d steps gave errors, %ld failures, live %+ld then %+ld)\n", n,
            ok ? "" : "wrong result; ", leak ? "leak; " : "", clean ? "" : "the next clean run failed; ",
            nerr, hit, now - base_live, after - base_live);
  *base_live_p = after; /* report a leak once, at the N that caused it */
  *nerr_out = nerr;
  return ok && !leak && clean && after == base_live;
}

/* ---------------------------------------------------- a first compile */
/* The workload's programs are compiled once, during warm-up; later runs
 * find the loaded objects in memory. Here each run jits a program of its
 * own (a new constant, so new C source): render, the C compiler, the disk
 * cache and loading all run with allocation n failing. */
static jx_t fresh_body(const jx_t *a, void *u) {
  double c = *(const double *)u;
  return jx_sum(jx_mul(jx_tanh(jx_mul(a[0], jx_scalar_of(JX_F64, c))), a[0]));
}

/* 0 correct, 1 an error value, -1 wrong */
static int run_fresh(double c) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(fresh_body, 1, &c), *jf = jx_jit(f);
  jx_t x = jx_reshape(jx_arange(JX_F64, 0, 6, 1), JX_SHAPE(2, 3));
  jx_t r = JX_CALL(jf, x);
  paused = true;
  double want = 0;
  for (int i = 0; i < 6; i++) want += tanh(i * c) * i;
  int v = jx_ok(r) ? (fabs(jx_item(r) - want) < 1e-12 ? 0 : -1) : 1;
  paused = false;
  jx_fn_free(jf), jx_fn_free(f);
  jx_pool_pop();
  return v;
}

static void compile_sweep(long stride, long *base_live) {
  static int serial;
  double t0 = now_s();
  jx_buffer_cache_trim();
  alloc_count = 0;
  CHECK(run_fresh(1 + 1e-3 * ++serial) == 0);
  long total = alloc_count, tried = 0, bad = 0, recovered = 0;
  *base_live = settled_live();
  for (long n = 1; n <= total && bad <= 20; n += stride) {
    jx_buffer_cache_trim();
    alloc_count = 0, fail_at = n, failures = 0;
    int v = run_fresh(1 + 1e-3 * ++serial);
    fail_at = 0;
    long now = settled_live();
    int clean = run_fresh(1 + 1e-3 * ++serial);
    long after = settled_live();
    bool ok = v >= 0 && now == *base_live && clean == 0 && after == *base_live;
    if (!ok)
      fprintf(stderr, "first compile, N=%ld: %s%s%s(live %+ld then %+ld)\n", n, v < 0 ? "wrong result; " : "",
              now != *base_live ? "leak; " : "", clean ? "the next compile failed; " : "", now - *base_live,
              after - *base_live);
    *base_live = after;
    tried++, bad += !ok, recovered += v == 0;
  }
  CHECKF(bad == 0, "%ld of %ld first-compile failure points misbehaved", bad, tried);
  printf("first compile: %ld allocations; %ld failure points tried (every %ld), %ld misbehaved; "
         "%ld ended in error values, %ld recovered with the result correct; %.1f s\n",
         total, tried, stride, bad, tried - recovered, recovered, now_s() - t0);
}

/* Fail allocation n for n = from, from + stride, ... <= total. */
static void sweep(long from, long stride, long total, long *base_live) {
  double t0 = now_s();
  long tried = 0, bad = 0, recovered = 0;
  for (long n = from; n <= total && bad <= 20; n += stride) {
    int nerr;
    tried++;
    bad += !try_failing(n, base_live, false, &nerr);
    recovered += nerr == 0;
  }
  CHECKF(bad == 0, "%ld of %ld failure points misbehaved", bad, tried);
  printf("%s allocation failure: %ld points tried (every %ld of %ld from %ld), %ld misbehaved; "
         "%ld ended in error values, %ld recovered with every result correct; %.1f s\n",
         persist ? "persistent" : "single", tried, stride, total, from, bad, tried - recovered, recovered,
         now_s() - t0);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  base_alloc = jx_get_allocator(&base_ud);
  void *probe = base_alloc(base_ud, NULL, 24);
  CHECK(probe != NULL);
  base_alloc(base_ud, probe, 0);
  jx_set_allocator(test_alloc, NULL); /* before any other jx call */
  CHECK(jx_get_allocator(NULL) == test_alloc);
  long only[64], nonly = 0, stride = 1, from = 1;
  bool stride_given = false, compile_only = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--persist"))
      persist = true;
    else if (!strcmp(argv[i], "--compile"))
      compile_only = true;
    else if (!strcmp(argv[i], "--stride") && i + 1 < argc)
      stride = atol(argv[++i]), stride_given = true;
    else if (!strcmp(argv[i], "--from") && i + 1 < argc)
      from = atol(argv[++i]);
    else if (nonly < 64)
      only[nonly++] = atol(argv[i]);
  }
  if (stride < 1) stride = 1;
  tracking = nonly > 0;
  if (getenv("JX_OOM_TRAP")) sscanf(getenv("JX_OOM_TRAP"), "%ld:%ld", &trap_run, &trap_at);
  /* one thread: the allocation sequence must be the same on every run;
   * the built-in GEMM (its packing buffers are jx allocations) */
  jx_set_num_threads(1);
  setenv("JX_GEMM", "builtin", 1);
  if (check_private_cache("test-oom")) return 1;

  /* reference results, then warm runs: the jit's compiled objects and the
   * pool vectors reach their steady state */
  for (int i = 0; i < NSTEP; i++) {
    jx_pool_push();
    jx_t r = steps[i].run();
    CHECKF(jx_ok(r), "step %s: %s", steps[i].name, jx_error(r));
    paused = true;
    flatten(r, &reference[i]);
    paused = false;
    jx_pool_pop();
  }
  int nerr;
  CHECK(run_workload(true, &nerr) && nerr == 0);
  long base_live = settled_live();
  alloc_count = 0;
  CHECK(run_workload(true, &nerr) && nerr == 0);
  long total = alloc_count;
  CHECKF(settled_live() == base_live, "a clean run leaks %ld blocks", settled_live() - base_live);
  alloc_count = 0;
  jx_buffer_cache_trim();
  run_workload(false, &nerr);
  CHECKF(alloc_count == total, "the workload allocates %ld then %ld times: not deterministic", total,
         alloc_count);
  printf("workload: %ld allocations per run\n", total);

  if (nonly) {
    for (long i = 0; i < nonly; i++) {
      int nerr;
      CHECK(try_failing(only[i], &base_live, true, &nerr));
    }
  } else if (compile_only) {
    compile_sweep(stride, &base_live);
  } else if (stride_given || persist) {
    sweep(from, stride, total, &base_live);
  } else { /* the default (ctest): both kinds, a sample of the points */
    sweep(1, DEFAULT_STRIDE, total, &base_live);
    compile_sweep(DEFAULT_STRIDE / 2, &base_live);
    persist = true;
    sweep(1 + DEFAULT_STRIDE / 2, 2 * DEFAULT_STRIDE, total, &base_live);
  }
  check_private_cache_remove();
  return check_report("test_oom");
}
