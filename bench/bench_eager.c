/* Eager dispatch, eager vs jit fusion, small grads, an MLP training step and
 * per-example gradients -- the numbers behind docs/PERFORMANCE.md, shaped to
 * sit side by side with the peer scripts in shared/bench/peers:
 *
 *   add0d / add1k        dispatch_bench.py   "numpy add 0-d / 1000-elem float32"
 *   slowf_eager / _jit   fusion_bench.py     "numpy eager", "C 2 threads malloc/free"
 *   grad_tanh            dispatch_bench.py   "torch tanh(x); y.backward() (0-d)"
 *   mlp_*                mlp_bench.py        "train step (fwd+bwd+SGD)", "forward only"
 *   pe_*                 mlp_bench.py        "per-example grads functorch.vmap(grad)" / naive loop
 *   mm_*                 sgemm.c             jx_matmul (default GEMM path), timed as sgemm.c times
 *                                            cblas_sgemm (run.sh alternates the two processes)
 *
 * The MLP mirrors mlp_bench.py exactly: 1296 -> 512 tanh -> 512 tanh -> 26,
 * batch 128, f32, mean softmax cross-entropy over integer labels
 * (F.cross_entropy), plain SGD p <- p - 0.01 * g (torch: p.add_(g, alpha=-lr)),
 * nn.Linear's init U(-1/sqrt(fan_in), 1/sqrt(fan_in)), x ~ N(0, 1).
 *
 * If the peers' libfused.so is built (shared/bench/peers/build.sh, default
 * /tmp/peers-build, or $BUILD), it is dlopen'ed and its hand-fused C slow_f
 * (2 threads, malloc/free and preallocated) and its 16 MB -> 16 MB copy are
 * timed in this process, interleaved with jx, so those ratios are in-run.
 *
 *   bench_eager [--reps N] [--quick] [--no-pe] [--no-peer] [--no-matmul] [--peer-lib PATH] [--tsv FILE]
 *               [--only dispatch,slowf,tanh,mlp,pe,matmul]    (a subset, e.g. for perf record)
 *               [--memory] [--compile-only]
 *
 * --reps N: timed repetitions per measurement (default 21; medians reported; ~1 min in all).
 * --quick:  fewer operations per repetition (a ~20 s smoke run).
 * --tsv:    also write "key<TAB>median<TAB>unit" lines (bench/run.sh reads them).
 * --memory: count the bytes jx allocates (jx_set_allocator with a size header)
 *           and report the peak of the per-example call against the size of
 *           its result. The counting costs an indirect call per allocation,
 *           so bench/run.sh runs it as a separate `--only pe --memory` pass.
 * --compile-only: only mlp_compile, jx_jit_compile of the jitted training
 *           step; run.sh runs it in a second process on the first's cache
 *           directory, where it measures the reload from disk.
 * Every measurement is a median over repetitions; variants compared with each
 * other are interleaved round by round (the machine is shared and noisy). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* clock_gettime, usleep (the project builds with -D_GNU_SOURCE too) */
#endif
#include <jx.h>

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ timing */
static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static int cmp_d(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

enum { MAX_REPS = 256, MAX_ROWS = 64 };
typedef struct {
  const char *key, *desc, *unit;
  double med, min, max;
  int n;
} row;
static row rows[MAX_ROWS];
static int nrows;

/* sorts t; records median/min/max under key; returns the median */
static double record(const char *key, const char *desc, const char *unit, double *t, int n) {
  qsort(t, (size_t)n, sizeof *t, cmp_d);
  const double med = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
  if (nrows < MAX_ROWS) rows[nrows++] = (row){key, desc, unit, med, t[0], t[n - 1], n};
  fprintf(stderr, "  %-14s %10.3f %s\n", key, med, unit);
  return med;
}
static void record1(const char *key, const char *desc, const char *unit, double v) {
  if (nrows < MAX_ROWS) rows[nrows++] = (row){key, desc, unit, v, v, v, 1};
  fprintf(stderr, "  %-14s %10.3f %s\n", key, v, unit);
}

static void die_if_error(jx_t v, const char *what) {
  if (!jx_ok(v)) {
    fprintf(stderr, "bench_eager: %s failed: %s\n", what, jx_error(v));
    exit(1);
  }
}

/* ------------------------------------------------------------ options */
static int reps = 21;
static double quick = 1.0; /* scales the work per repetition */
static int do_pe = 1, do_peer = 1, do_mm = 1;
static const char *peer_lib, *tsv_path, *only;
/* --compile-only: just the MLP step's jx_jit_compile (run.sh's second
 * process, which finds the first's objects in the disk cache) */
static int compile_only;
static int memory; /* --memory */

/* ------------------------------------------- counting allocator (--memory) */
/* Each block carries its size in a 16-byte header (keeping malloc's 16-byte
 * alignment); live and peak byte counts are atomic because kernels allocate
 * scratch on pool threads. */
#include <stdatomic.h>
static atomic_size_t mem_live, mem_peak;
static void mem_note(size_t live) {
  size_t p = atomic_load(&mem_peak);
  while (live > p && !atomic_compare_exchange_weak(&mem_peak, &p, live)) {}
}
static void *counting_alloc(void *ud, void *ptr, size_t n) {
  (void)ud;
  char *old = ptr ? (char *)ptr - 16 : NULL;
  const size_t was = old ? *(size_t *)old : 0;
  if (n == 0) {
    atomic_fetch_sub(&mem_live, was);
    free(old);
    return NULL;
  }
  if (n > (size_t)-1 - 16) return NULL;
  char *q = realloc(old, n + 16);
  if (!q) return NULL;
  *(size_t *)q = n;
  if (n >= was)
    mem_note(atomic_fetch_add(&mem_live, n - was) + (n - was));
  else
    atomic_fetch_sub(&mem_live, was - n);
  return q + 16;
}
/* start a peak measurement at the current live count */
static size_t mem_reset_peak(void) {
  const size_t live = atomic_load(&mem_live);
  atomic_store(&mem_peak, live);
  return live;
}
/* --only a,b: run just these sections (dispatch slowf tanh mlp pe matmul) */
static int want(const char *sec) {
  if (!only) return 1;
  const size_t n = strlen(sec);
  for (const char *p = only; (p = strstr(p, sec)); p += n)
    if ((p == only || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
  return 0;
}

/* ------------------------------------------------- peer: libfused.so */
typedef double (*fused_alloc_fn)(const float *, long, int);
typedef void (*fused_fn)(const float *, float *, long, int);
static fused_alloc_fn c_slow_f_malloc;
static fused_fn c_slow_f, c_copy_f;

static void load_peer(void) {
  if (!do_peer) return;
  char path[1024];
  if (peer_lib) {
    snprintf(path, sizeof path, "%s", peer_lib);
  } else {
    const char *b = getenv("BUILD");
    snprintf(path, sizeof path, "%s/libfused.so", b && *b ? b : "/tmp/peers-build");
  }
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr,
            "note: peer %s not loadable (%s); build it with shared/bench/peers/build.sh "
            "to time the hand-fused C loop in-process\n",
            path, dlerror());
    return;
  }
  c_slow_f_malloc = (fused_alloc_fn)dlsym(h, "slow_f_malloc");
  c_slow_f = (fused_fn)dlsym(h, "slow_f");
  c_copy_f = (fused_fn)dlsym(h, "copy_f");
  if (!c_slow_f_malloc || !c_slow_f || !c_copy_f) {
    fprintf(stderr, "note: %s lacks slow_f_malloc/slow_f/copy_f; skipping the in-process C peer\n", path);
    c_slow_f_malloc = NULL;
    c_slow_f = c_copy_f = NULL;
  } else {
    fprintf(stderr, "peer: loaded %s\n", path);
  }
}

/* ================================================ 1. eager dispatch */
static double add_loop_us(jx_t a, jx_t b, int n) {
  const double t0 = now_s();
  for (int i = 0; i < n; i += 1000) {
    jx_pool_push();
    const int m = n - i < 1000 ? n - i : 1000;
    for (int k = 0; k < m; k++) jx_add(a, b);
    jx_pool_pop();
  }
  return (now_s() - t0) / n * 1e6;
}

static void bench_dispatch(void) {
  fprintf(stderr, "[1/6] eager dispatch: jx_add on f32[] and f32[1000]\n");
  jx_t a0 = jx_retain(jx_scalar_of(JX_F32, 1.5)), b0 = jx_retain(jx_scalar_of(JX_F32, 2.5));
  jx_t a1 = jx_retain(jx_ones(JX_F32, JX_SHAPE(1000))), b1 = jx_retain(jx_ones(JX_F32, JX_SHAPE(1000)));
  jx_t c = jx_add(a0, b0);
  die_if_error(c, "0-d add");
  if (jx_item(c) != 4.0 || jx_dtype_of(c) != JX_F32)
    fprintf(stderr, "WARNING: 0-d add gave %g\n", jx_item(c));
  die_if_error(jx_add(a1, b1), "1000-elem add");
  const int n = (int)(200000 * quick);
  double t0[MAX_REPS], t1[MAX_REPS];
  for (int r = -2; r < reps; r++) { /* 2 warm-up reps; the two sizes alternate */
    const double x0 = add_loop_us(a0, b0, n), x1 = add_loop_us(a1, b1, n);
    if (r >= 0) t0[r] = x0, t1[r] = x1;
  }
  record("add0d", "jx_add f32[] + f32[] (eager, per op)", "us", t0, reps);
  record("add1k", "jx_add f32[1000] + f32[1000] (eager, per op)", "us", t1, reps);
  jx_release(a0), jx_release(b0), jx_release(a1), jx_release(b1);
}

/* ================================================ 2. slow_f fusion */
static jx_t slow_f(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0];
  return jx_add(jx_add(jx_mul(jx_mul(x, x), x), jx_mul(jx_mul(x, jx_scalar(2.0)), x)), x);
}

enum { V_EAGER, V_JIT, V_CMALLOC, V_CPRE, V_CCOPY, NV };

static void bench_slow_f(void) {
  fprintf(stderr, "[2/6] slow_f = x*x*x + x*2.0*x + x on f32[2000,2000]: eager, jit%s\n",
          c_slow_f ? ", C peer (in-process)" : "");
  const long N = 2000L * 2000L;
  jx_fn *f = jx_fn_new(slow_f, 1, NULL), *jf = jx_jit(f);
  jx_t x = jx_retain(jx_ones(JX_F32, JX_SHAPE(2000, 2000)));
  float *xc = aligned_alloc(64, (size_t)N * sizeof(float)),
        *yc = aligned_alloc(64, (size_t)N * sizeof(float));
  for (long i = 0; i < N; i++) xc[i] = 1.0f, yc[i] = 0.0f;

  jx_pool_push();
  const double tc0 = now_s();
  jx_t y = JX_CALL(jf, x);
  const double tcompile = now_s() - tc0;
  die_if_error(y, "jit(slow_f)");
  const double vj = jx_item(jx_max(y)), ve = jx_item(jx_min(JX_CALL(f, x)));
  if (vj != 4.0 || ve != 4.0)
    fprintf(stderr, "WARNING: slow_f(ones) gave jit max %g eager min %g (expect 4)\n", vj, ve);
  jx_pool_pop();
  record1("slowf_jit_first", "jit(slow_f) first call (trace + compile + run)", "ms", 1e3 * tcompile);

  const int per = 5, nv = c_slow_f ? NV : 2;
  const int rounds = reps;
  static double t[NV][MAX_REPS * 5];
  volatile double sink = 0;
  for (int r = -1; r < rounds; r++) {
    for (int vi = 0; vi < nv; vi++) {
      usleep(20000); /* let the previous variant's spinning workers park (jx pool / libgomp) */
      for (int k = -1; k < per; k++) { /* k = -1: untimed, wakes this variant's threads */
        double dt;
        if (vi <= V_JIT) {
          jx_pool_push();
          const double t0 = now_s();
          jx_t out = JX_CALL(vi == V_EAGER ? f : jf, x);
          dt = now_s() - t0;
          if (!jx_ok(out)) die_if_error(out, "slow_f");
          jx_pool_pop(); /* frees the result, as NumPy does when it is dropped */
        } else {
          const double t0 = now_s();
          if (vi == V_CMALLOC)
            sink += c_slow_f_malloc(xc, N, 2);
          else if (vi == V_CPRE)
            c_slow_f(xc, yc, N, 2);
          else
            c_copy_f(xc, yc, N, 2);
          dt = now_s() - t0;
        }
        if (r >= 0 && k >= 0) t[vi][r * per + k] = 1e3 * dt;
      }
    }
  }
  (void)sink;
  const int n = rounds * per;
  record("slowf_eager", "slow_f eager, op by op (incl. freeing the result)", "ms", t[V_EAGER], n);
  record("slowf_jit", "jit(slow_f) (incl. freeing the result)", "ms", t[V_JIT], n);
  if (c_slow_f) {
    record("c_fused_malloc2", "peer fused.c slow_f_malloc, 2 threads (in-process)", "ms", t[V_CMALLOC], n);
    record("c_fused_pre2", "peer fused.c slow_f preallocated, 2 threads", "ms", t[V_CPRE], n);
    record("c_copy16mb2", "peer copy_f 16MB->16MB, 2 threads (bandwidth bound)", "ms", t[V_CCOPY], n);
  }
  free(xc);
  free(yc);
  jx_release(x);
  jx_fn_free(jf);
  jx_fn_free(f);
}

/* ================================================ 3. grad(tanh) */
static jx_t tanh_fn(const jx_t *a, void *u) {
  (void)u;
  return jx_tanh(a[0]);
}

static double call_loop_us(jx_fn *g, jx_t x, int n) {
  const double t0 = now_s();
  for (int i = 0; i < n; i += 100) {
    jx_pool_push();
    const int m = n - i < 100 ? n - i : 100;
    for (int k = 0; k < m; k++) JX_CALL(g, x);
    jx_pool_pop();
  }
  return (now_s() - t0) / n * 1e6;
}

static void bench_grad_tanh(void) {
  fprintf(stderr, "[3/6] grad(tanh) on f32[]\n");
  jx_fn *f = jx_fn_new(tanh_fn, 1, NULL), *g = jx_grad(f, 0), *jg = jx_jit(g);
  jx_t x = jx_retain(jx_scalar_of(JX_F32, 0.5));
  const double want = 1.0 - tanh(0.5) * tanh(0.5);
  jx_t d = JX_CALL(g, x), dj = JX_CALL(jg, x);
  die_if_error(d, "grad(tanh)");
  die_if_error(dj, "jit(grad(tanh))");
  if (fabs(jx_item(d) - want) > 1e-6 || fabs(jx_item(dj) - want) > 1e-6)
    fprintf(stderr, "WARNING: grad(tanh)(0.5) = %g / jit %g, want %g\n", jx_item(d), jx_item(dj), want);
  const int n = (int)(50000 * quick);
  double t0[MAX_REPS], t1[MAX_REPS];
  for (int r = -2; r < reps; r++) {
    const double a = call_loop_us(g, x, n), b = call_loop_us(jg, x, n);
    if (r >= 0) t0[r] = a, t1[r] = b;
  }
  record("grad_tanh", "grad(tanh)(x), f32[] (per call)", "us", t0, reps);
  record("jit_grad_tanh", "jit(grad(tanh))(x), f32[] (per call)", "us", t1, reps);
  jx_release(x);
  jx_fn_free(jg);
  jx_fn_free(g);
  jx_fn_free(f);
}

/* ================================================ 4-5. MLP (mlp_bench.py) */
enum { B = 128, D = 1296, H = 512, C = 26 };
static const float LR = 0.01f;

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void) { /* xorshift64*, uniform in [0, 1) */
  rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
  return (double)((rng * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}
static double nrand(void) {
  double u = urand(), v = urand();
  return sqrt(-2.0 * log(u > 0 ? u : 1e-300)) * cos(6.283185307179586 * v);
}

static jx_t linear_init(int fan_in, int fan_out) {
  const double k = 1.0 / sqrt((double)fan_in);
  float *w = malloc(sizeof(float) * (size_t)fan_in * (size_t)fan_out),
        *b = malloc(sizeof(float) * (size_t)fan_out);
  for (long i = 0; i < (long)fan_in * fan_out; i++) w[i] = (float)((2 * urand() - 1) * k);
  for (int i = 0; i < fan_out; i++) b[i] = (float)((2 * urand() - 1) * k);
  jx_t W = jx_array(JX_F32, JX_SHAPE(fan_in, fan_out), w), bb = jx_array(JX_F32, JX_SHAPE(fan_out), b);
  free(w);
  free(b);
  return JX_TUPLE(W, bb);
}

/* predict(params, x): x @ W + b, tanh between layers (not after the last) */
static jx_t predict(jx_t params, jx_t x) {
  const int n = jx_len(params);
  for (int i = 0; i < n; i++) {
    jx_t l = jx_at(params, i);
    jx_t out = jx_add(jx_dot(x, jx_at(l, 0)), jx_at(l, 1));
    if (i == n - 1) return out;
    x = jx_tanh(out);
  }
  return x;
}

/* F.cross_entropy(logits, y): mean over the batch of -log_softmax(logits)[y].
 * Works for one example too (x f32[1296], y i32[]): the mean of a scalar. */
static jx_t loss_fn(const jx_t *a, void *u) {
  (void)u;
  jx_t logits = predict(a[0], a[1]);
  jx_t logp = jx_log_softmax(logits, -1);
  jx_t nll = jx_neg(jx_sum_axes(jx_mul(jx_one_hot(a[2], C), logp), 1, (int[]){-1}, false));
  return jx_mean(nll);
}

static jx_t sgd_leaf(jx_t p, jx_t g, void *u) {
  (void)u;
  return jx_sub(p, jx_mul(g, jx_scalar(LR)));
}

/* step(params, x, y) -> new params, everything inside (for jit) */
typedef struct {
  jx_fn *vg;
} step_ctx;
static jx_t step_fn(const jx_t *a, void *u) {
  step_ctx *s = u;
  jx_t vg = jx_call(s->vg, a);
  return jx_tree_map2(sgd_leaf, a[0], jx_at(vg, 1), NULL);
}

/* One SGD step in place of *params (retained); returns the loss (pre-update).
 * vg: value_and_grad (eager or jitted) -- the update is eager; or
 * step: a jitted full step (update inside) when vg is NULL. */
static double train_step(jx_t *params, jx_fn *vg, jx_fn *step, jx_t x, jx_t y) {
  jx_pool_push();
  jx_t np;
  double l = NAN;
  if (vg) {
    jx_t r = JX_CALL(vg, *params, x, y);
    die_if_error(r, "value_and_grad(loss)");
    l = jx_item(jx_at(r, 0));
    np = jx_tree_map2(sgd_leaf, *params, jx_at(r, 1), NULL);
  } else {
    np = JX_CALL(step, *params, x, y);
  }
  die_if_error(np, "SGD update");
  jx_retain(np);
  jx_pool_pop();
  jx_release(*params);
  *params = np;
  return l;
}

static size_t tree_bytes(jx_t t) {
  if (!jx_is_tree(t)) return (size_t)jx_size(t) * jx_dtype_size(jx_dtype_of(t));
  size_t s = 0;
  for (int i = 0; i < jx_len(t); i++) s += tree_bytes(jx_at(t, i));
  return s;
}

static double max_abs_diff(jx_t a, jx_t b) {
  jx_pool_push();
  const double d = jx_item(jx_max(jx_abs(jx_sub(a, b))));
  jx_pool_pop();
  return d;
}

static void bench_mlp(int train) {
  if (train)
    fprintf(stderr, "[4/6] MLP 1296-512-512-26 tanh, batch %d, CE loss, SGD lr %.2f: train step\n", B,
            (double)LR);
  jx_t params0 = jx_retain(JX_TUPLE(linear_init(D, H), linear_init(H, H), linear_init(H, C)));
  float *xd = malloc(sizeof(float) * B * D);
  int32_t yd[B];
  for (long i = 0; i < (long)B * D; i++) xd[i] = (float)nrand();
  for (int i = 0; i < B; i++) yd[i] = (int32_t)(urand() * C);
  jx_t x = jx_retain(jx_array(JX_F32, JX_SHAPE(B, D), xd)), y = jx_retain(jx_array(JX_I32, JX_SHAPE(B), yd));
  free(xd);

  jx_fn *loss = jx_fn_new(loss_fn, 3, NULL), *jloss = jx_jit(loss);
  jx_fn *vg = jx_value_and_grad(loss, 0), *jvg = jx_jit(vg);
  step_ctx sc = {vg};
  jx_fn *step = jx_fn_new(step_fn, 3, &sc), *jstep = jx_jit(step);

  if (train) {
    /* ahead of time (jx_jit_compile): trace, passes, fusion and the C
     * build, or the load from the disk cache in a later process */
    double tc = now_s();
    jx_t ce = jx_jit_compile(jstep, (jx_t[]){params0, x, y});
    tc = now_s() - tc;
    if (ce) die_if_error(ce, "jit_compile(step)");
    record1("mlp_compile", "jx_jit_compile(jit(step)): trace + passes + build (or disk load)", "ms",
            1e3 * tc);
    if (compile_only) goto done;
    /* three independent copies of the parameters, one per variant */
    jx_t p_e = jx_retain(params0), p_j = jx_retain(params0), p_s = jx_retain(params0);
    const double l0 = train_step(&p_e, vg, NULL, x, y);
    double t0 = now_s();
    const double l0j = train_step(&p_j, jvg, NULL, x, y);
    const double t_jit1 = now_s() - t0;
    t0 = now_s();
    train_step(&p_s, NULL, jstep, x, y);
    const double t_step1 = now_s() - t0;
    record1("mlp_jit_first", "jit(value_and_grad(loss)) first call (trace+compile+run)", "ms", 1e3 * t_jit1);
    record1("mlp_jitstep_first", "jit(step) first call (compiled ahead)", "ms", 1e3 * t_step1);
    if (fabs(l0 - l0j) > 1e-4) fprintf(stderr, "WARNING: initial loss eager %g vs jit %g\n", l0, l0j);
    {
      const double dp = max_abs_diff(jx_at(jx_at(p_e, 0), 0), jx_at(jx_at(p_s, 0), 0));
      if (dp > 1e-5) fprintf(stderr, "WARNING: eager vs jit(step) params differ by %g after one step\n", dp);
    }

    const int steps = quick < 1 ? 3 : 10;
    enum { M_EAGER, M_JITVG, M_JITSTEP, M_FWD, M_JFWD, NM };
    double t[NM][MAX_REPS];
    for (int r = -1; r < reps; r++) {
      for (int m = 0; m < NM; m++) {
        const double ts = now_s();
        for (int s = 0; s < steps; s++) {
          if (m == M_EAGER)
            train_step(&p_e, vg, NULL, x, y);
          else if (m == M_JITVG)
            train_step(&p_j, jvg, NULL, x, y);
          else if (m == M_JITSTEP)
            train_step(&p_s, NULL, jstep, x, y);
          else {
            jx_pool_push();
            die_if_error(JX_CALL(m == M_FWD ? loss : jloss, params0, x, y), "loss");
            jx_pool_pop();
          }
        }
        if (r >= 0) t[m][r] = 1e3 * (now_s() - ts) / steps;
      }
    }
    jx_pool_push();
    const double l_end = jx_item(JX_CALL(loss, p_e, x, y));
    jx_pool_pop();
    fprintf(stderr, "  loss %.3f -> %.3f after %d eager steps\n", l0, l_end, 2 + (reps + 1) * steps);
    record("mlp_eager", "train step eager: value_and_grad + tree_map2 SGD", "ms", t[M_EAGER], reps);
    record("mlp_jit", "train step jit(value_and_grad) + eager SGD", "ms", t[M_JITVG], reps);
    record("mlp_jitstep", "train step jit(value_and_grad + SGD)", "ms", t[M_JITSTEP], reps);
    record("mlp_fwd", "forward + loss eager", "ms", t[M_FWD], reps);
    record("mlp_jitfwd", "forward + loss jit", "ms", t[M_JFWD], reps);
    record1("mlp_loss0", "initial loss (torch: 3.243 with its own init)", "", l0);
    jx_release(p_e), jx_release(p_j), jx_release(p_s);
  }

  /* ------------------------------------------------ per-example grads */
  if (do_pe) {
    fprintf(stderr, "[5/6] per-example gradients, batch %d: jit(vmap(grad(loss), {NONE,0,0})) vs loop\n", B);
    jx_fn *g = jx_grad(loss, 0);
    jx_fn *pe = jx_jit(jx_vmap(g, (int[]){JX_NONE, 0, 0}, 0));
    jx_t xs[B], ys[B];
    for (int i = 0; i < B; i++) { /* the rows, made once (torch slices x[i:i+1] as a view) */
      xs[i] = jx_retain(jx_reshape(jx_slice(x, (int64_t[]){i, 0}, (int64_t[]){i + 1, D}, NULL), JX_SHAPE(D)));
      ys[i] = jx_retain(jx_reshape(jx_slice(y, (int64_t[]){i}, (int64_t[]){i + 1}, NULL), JX_SCALAR_SHAPE));
    }
    jx_pool_push();
    const double t0 = now_s();
    jx_t G = JX_CALL(pe, params0, x, y);
    const double t_pe1 = now_s() - t0;
    die_if_error(G, "jit(vmap(grad(loss)))");
    const size_t bytes = tree_bytes(G);
    /* check example 5 against a single-example grad */
    jx_t g5 = JX_CALL(g, params0, xs[5], ys[5]);
    die_if_error(g5, "grad(loss) on one example");
    const double diff = max_abs_diff(
        jx_at(jx_at(g5, 0), 0),
        jx_squeeze(jx_slice(jx_at(jx_at(G, 0), 0), (int64_t[]){5, 0, 0}, (int64_t[]){6, D, H}, NULL), 0));
    if (!(diff < 1e-5)) fprintf(stderr, "WARNING: vmap vs loop per-example grad differ by %g\n", diff);
    jx_pool_pop();
    record1("pe_first", "jit(vmap(grad)) first call (trace+compile+run)", "ms", 1e3 * t_pe1);
    record1("pe_bytes", "size of the per-example gradients", "MB", bytes / 1e6);

    const int pe_reps = quick < 1 ? (reps < 3 ? reps : 3) : (reps < 9 ? reps : 9);
    double tv[MAX_REPS], tl[MAX_REPS];
    for (int r = -1; r < pe_reps; r++) {
      jx_pool_push();
      double ts = now_s();
      die_if_error(JX_CALL(pe, params0, x, y), "per-example grads");
      const double a = now_s() - ts;
      jx_pool_pop();
      jx_pool_push(); /* the loop keeps all 128 gradients, like mlp_bench.py's naive_loop */
      ts = now_s();
      for (int i = 0; i < B; i++) die_if_error(JX_CALL(g, params0, xs[i], ys[i]), "grad one example");
      const double b = now_s() - ts;
      jx_pool_pop();
      if (r >= 0) tv[r] = 1e3 * a, tl[r] = 1e3 * b;
    }
    if (memory) { /* a warm call: the peak of what jx holds during it, over what it held before */
      jx_pool_push();
      const size_t base = mem_reset_peak();
      jx_t Gm = JX_CALL(pe, params0, x, y);
      die_if_error(Gm, "per-example grads");
      const size_t peak = atomic_load(&mem_peak) - base, kept = atomic_load(&mem_live) - base;
      jx_pool_pop();
      record1("pe_peak_mb", "per-example call: peak bytes jx allocated", "MB", peak / 1e6);
      record1("pe_kept_mb", "per-example call: bytes alive after it (its result)", "MB", kept / 1e6);
      record1("pe_peak_over_grads", "peak / size of the per-example gradients", "x",
              (double)peak / (double)bytes);
    }
    const double mv = record("pe_vmap", "per-example grads jit(vmap(grad(loss)))", "ms", tv, pe_reps);
    const double ml = record("pe_loop", "per-example grads: loop of 128 eager grad(loss)", "ms", tl, pe_reps);
    record1("pe_loop_over_vmap", "loop / vmap (higher = vmap wins)", "x", ml / mv);
    for (int i = 0; i < B; i++) jx_release(xs[i]), jx_release(ys[i]);
    jx_fn_free(pe);
    jx_fn_free(g);
  }
done:
  jx_release(params0), jx_release(x), jx_release(y);
  jx_fn_free(jstep);
  jx_fn_free(step);
  jx_fn_free(jvg);
  jx_fn_free(vg);
  jx_fn_free(jloss);
  jx_fn_free(loss);
}

/* ================================================ 6. matmul via the public API */
#if defined(JX_BENCH_HAVE_CBLAS) && JX_BENCH_HAVE_CBLAS
#include <cblas.h>
#define HAVE_CBLAS 1
#else
#define HAVE_CBLAS 0
#endif
const char *jx_cpu_gemm_backend(void); /* backend/cpu: which GEMM jx_matmul uses */

/* jx_matmul timed the way the peer sgemm.c times cblas_sgemm: three untimed
 * calls, then back-to-back repetitions (51 and 7, its defaults). The peer
 * runs in its own process, and bench/run.sh alternates the two processes
 * round by round. Why not the direct call in this process: after a block of
 * threaded OpenBLAS calls (whose workers then spin ~0.1 s), jx_matmul ran at
 * one core's speed for ~20 calls (~50 ms) on this VM, even after sleeps of
 * 150-400 ms (the pool's two threads found on one core), so a same-process
 * comparison measured that interference, not either GEMM. jx itself only
 * ever runs OpenBLAS single-threaded. */
static void bench_matmul(void) {
  fprintf(stderr, "[6/6] jx_matmul f32 (GEMM backend: %s), back to back like sgemm.c\n",
          jx_cpu_gemm_backend());
  static const struct {
    const char *key, *desc;
    int M, K, N, reps;
  } sh[] = {
      {"mm2000", "jx_matmul 2000x2000 @ 2000x2000 (incl. result alloc)", 2000, 2000, 2000, 7},
      {"mm_mlp", "jx_matmul 128x1296 @ 1296x512 (incl. result alloc)", 128, 1296, 512, 51},
  };
  for (size_t si = 0; si < sizeof sh / sizeof sh[0]; si++) {
    const int M = sh[si].M, K = sh[si].K, N = sh[si].N;
    int nr = (int)(sh[si].reps * (quick < 1 ? 0.6 : 1.0));
    nr = nr < 3 ? 3 : nr > MAX_REPS ? MAX_REPS : nr;
    float *A = malloc(sizeof(float) * (size_t)M * K), *Bm = malloc(sizeof(float) * (size_t)K * N);
    for (long i = 0; i < (long)M * K; i++) A[i] = (float)((i % 13) - 6) * 0.01f; /* sgemm.c's data */
    for (long i = 0; i < (long)K * N; i++) Bm[i] = (float)((i % 7) - 3) * 0.01f;
    jx_t a = jx_retain(jx_array(JX_F32, JX_SHAPE(M, K), A)),
         b = jx_retain(jx_array(JX_F32, JX_SHAPE(K, N), Bm));
    double t[MAX_REPS];
    for (int r = -3; r < nr; r++) {
      jx_pool_push();
      const double t0 = now_s();
      jx_t c = jx_matmul(a, b);
      const double dt = now_s() - t0;
      die_if_error(c, "matmul");
      jx_pool_pop();
      if (r >= 0) t[r] = 1e3 * dt;
    }
    record(sh[si].key, sh[si].desc, "ms", t, nr);
    jx_release(a), jx_release(b);
    free(A), free(Bm);
  }
}

/* The MLP step's GEMMs alone, as OpenBLAS runs them with jx's thread count:
 * the floor the issue asks the jit step to be reported beside. Forward
 * x.W1, h1.W2, h2.W3; backward dW3 = h2^T.d3, dh2 = d3.W3^T, dW2 = h1^T.d2,
 * dh1 = d2.W2^T, dW1 = x^T.d1 (no dx): 8 products, 0.54 GFLOP. */
static void bench_mlp_gemm_floor(void) {
#if HAVE_CBLAS
  enum { Bt = 128, D0 = 1296, D1 = 512, D2 = 512, D3 = 26 };
  static const struct {
    bool ta, tb;
    int M, N, K;
  } g[8] = {{0, 0, Bt, D1, D0}, {0, 0, Bt, D2, D1}, {0, 0, Bt, D3, D2}, {1, 0, D2, D3, Bt},
            {0, 1, Bt, D2, D3}, {1, 0, D1, D2, Bt}, {0, 1, Bt, D1, D2}, {1, 0, D0, D1, Bt}};
  float *A = malloc(sizeof(float) * D0 * D1), *Bm = malloc(sizeof(float) * D0 * D1),
        *C = malloc(sizeof(float) * D0 * D1);
  for (int i = 0; i < D0 * D1; i++)
    A[i] = (float)((i % 17) - 8) * 0.01f, Bm[i] = (float)((i % 13) - 6) * 0.01f;
  openblas_set_num_threads(jx_num_threads());
  usleep(150000); /* let jx's workers park */
  double t[MAX_REPS];
  for (int r = -1; r < reps; r++) {
    const double t0 = now_s();
    for (int k = 0; k < 8; k++) {
      const int lda = g[k].ta ? g[k].M : g[k].K, ldb = g[k].tb ? g[k].K : g[k].N;
      cblas_sgemm(CblasRowMajor, g[k].ta ? CblasTrans : CblasNoTrans, g[k].tb ? CblasTrans : CblasNoTrans,
                  g[k].M, g[k].N, g[k].K, 1.0f, A, lda, Bm, ldb, 0.0f, C, g[k].N);
    }
    if (r >= 0) t[r] = 1e3 * (now_s() - t0);
  }
  openblas_set_num_threads(1); /* back to what jx set */
  record("mlp_gemm_floor", "MLP step's 8 GEMMs alone, cblas_sgemm direct", "ms", t, reps);
  free(A), free(Bm), free(C);
#endif
}

/* ============================================================ main */
int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--reps") && i + 1 < argc)
      reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--quick"))
      quick = 0.2;
    else if (!strcmp(argv[i], "--no-pe"))
      do_pe = 0;
    else if (!strcmp(argv[i], "--no-peer"))
      do_peer = 0;
    else if (!strcmp(argv[i], "--no-matmul"))
      do_mm = 0;
    else if (!strcmp(argv[i], "--peer-lib") && i + 1 < argc)
      peer_lib = argv[++i];
    else if (!strcmp(argv[i], "--tsv") && i + 1 < argc)
      tsv_path = argv[++i];
    else if (!strcmp(argv[i], "--only") && i + 1 < argc)
      only = argv[++i];
    else if (!strcmp(argv[i], "--memory"))
      memory = 1;
    else if (!strcmp(argv[i], "--compile-only"))
      compile_only = 1, only = "mlp", do_pe = 0;
    else {
      fprintf(stderr,
              "usage: %s [--reps N] [--quick] [--no-pe] [--no-peer] [--no-matmul] [--peer-lib PATH] [--tsv "
              "FILE] [--only dispatch,slowf,tanh,mlp,pe,matmul] [--memory] [--compile-only]\n",
              argv[0]);
      return 2;
    }
  }
  if (memory) { /* before any other jx call; no buffer cache, so every array is counted when made */
    setenv("JX_CACHE_BYTES", "0", 1);
    jx_set_allocator(counting_alloc, NULL);
  }
  if (reps < 1) reps = 1;
  if (reps > MAX_REPS) reps = MAX_REPS;
  if (quick < 1 && reps > 5) reps = 5;
  if (want("slowf")) load_peer();
  const double t_start = now_s();
  if (want("dispatch")) bench_dispatch();
  if (want("slowf")) bench_slow_f();
  if (want("tanh")) bench_grad_tanh();
  if (!want("pe")) do_pe = 0;
  if (want("mlp") || do_pe) bench_mlp(want("mlp"));
  if (do_mm && want("matmul")) bench_matmul();
  /* last: its threaded OpenBLAS calls leave OpenBLAS's workers spinning */
  if (want("mlp") && !compile_only) bench_mlp_gemm_floor();

  const char *cache = getenv("JX_CACHE_DIR");
  printf("# bench_eager: jx, %d threads (jx_num_threads), %d reps%s; medians (min..max) over reps; "
         "JX_CACHE_DIR=%s\n",
         jx_num_threads(), reps, quick < 1 ? ", --quick" : "", cache ? cache : "(default)");
  printf("%-18s %-58s %10s %10s %10s %s\n", "key", "what", "median", "min", "max", "unit");
  for (int i = 0; i < nrows; i++) {
    const row *w = &rows[i];
    if (w->n > 1)
      printf("%-18s %-58s %10.3f %10.3f %10.3f %s\n", w->key, w->desc, w->med, w->min, w->max, w->unit);
    else
      printf("%-18s %-58s %10.3f %10s %10s %s\n", w->key, w->desc, w->med, "", "", w->unit);
  }
  printf("# total %.0f s\n", now_s() - t_start);
  if (tsv_path) {
    FILE *fp = fopen(tsv_path, "w");
    if (!fp) {
      perror(tsv_path);
      return 1;
    }
    fprintf(fp, "threads\t%d\t\n", jx_num_threads());
    for (int i = 0; i < nrows; i++) fprintf(fp, "%s\t%.6g\t%s\n", rows[i].key, rows[i].med, rows[i].unit);
    fclose(fp);
  }
  return 0;
}
