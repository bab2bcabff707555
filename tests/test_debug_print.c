/* jx_debug_print (jax.debug.print): the text (NumPy's str() of each
 * argument, Python's format strings), when it prints under jit, vmap,
 * grad and inside compiled loops, that no pass drops or merges it, the
 * errors, and export refusing it. Lines go to a sink that collects them. */
#include "check.h"
#include "compile/compile.h"
#include "core/core.h"

#include <jx.h>
#include <math.h>
#include <unistd.h>

/* ---------------------------------------------------------------- sink */
static char got[1 << 16];
static size_t got_n;
static int got_lines;
static void sink(const char *line, void *ctx) {
  (void)ctx;
  got_n += (size_t)snprintf(got + got_n, sizeof got - got_n, "%s\n", line);
  if (got_n >= sizeof got) got_n = sizeof got - 1;
  got_lines++;
}
static void reset(void) { got_n = 0, got[0] = 0, got_lines = 0; }
#define EXPECT_OUT(want)                                                                                     \
  do {                                                                                                       \
    CHECKF(!strcmp(got, want), "printed\n%s--- wanted\n%s---", got, want);                                   \
    reset();                                                                                                 \
  } while (0)

static jx_t F32V(int n, const float *v) { return jx_array(JX_F32, 1, (int64_t[]){n}, v); }
static jx_t F64(double v) { return jx_scalar_of(JX_F64, v); }

/* ------------------------------------------------------ NumPy's str() */
typedef struct {
  jx_dtype dt;
  int ndim;
  int64_t shape[3];
  const double *data; /* NULL: 0, 1, 2, ... */
  int n;
  const char *want;
} golden;
static const golden goldens[] = {
#include "golden/debug_print_golden.inc"
};

static void test_numpy_str(void) {
  for (size_t i = 0; i < sizeof goldens / sizeof *goldens; i++) {
    const golden *g = &goldens[i];
    jx_pool_push();
    jx_t x = g->data ? jx_array(JX_F64, g->ndim, g->shape, g->data)
                     : jx_reshape(jx_arange(JX_F64, 0, g->n, 1), g->ndim, g->shape);
    x = jx_astype(x, g->dt);
    CHECK(!jx_debug_print("{}", 1, &x));
    got[got_n ? got_n - 1 : 0] = 0; /* the newline the sink added */
    CHECKF(!strcmp(got, g->want), "case %zu: printed\n%s\nNumPy prints\n%s", i, got, g->want);
    reset();
    jx_pool_pop();
  }
}

/* ------------------------------------------------------------- formats */
static void test_formats(void) {
  jx_pool_push();
  jx_t x = F32V(3, (float[]){1, 2.5f, 3}), i = jx_scalar_of(JX_I32, 7);
  CHECK(!JX_DEBUG_PRINT("x={} i={}", x, i));
  EXPECT_OUT("x=[1.  2.5 3. ] i=7\n");
  CHECK(!JX_DEBUG_PRINT("{1} then {0}, {1} again {{literal}}", x, i));
  EXPECT_OUT("7 then [1.  2.5 3. ], 7 again {literal}\n");
  CHECK(!jx_debug_print("no arguments", 0, NULL));
  EXPECT_OUT("no arguments\n");
  jx_t pi = F64(3.14159265), n = jx_scalar_of(JX_I32, -42);
  CHECK(!JX_DEBUG_PRINT("{:.3f}|{:8.2e}|{:+d}|{:>6}|{:<5}|{:^7}|{:06.2f}|{:x}|{:.1%}", pi, pi, n, n, n, n, pi,
                        jx_scalar_of(JX_I32, 255), F64(0.25)));
  EXPECT_OUT("3.142|3.14e+00|-42|   -42|-42  |  -42  |003.14|ff|25.0%\n");
  CHECK(!JX_DEBUG_PRINT("{:g} {}", F64(1e-5), jx_scalar(0.5))); /* a weak scalar: its value */
  EXPECT_OUT("1e-05 0.5\n");
  jx_pool_pop();
}

static void test_errors(void) {
  jx_pool_push();
  jx_t x = F32V(2, (float[]){1, 2});
  EXPECT_ERROR(jx_debug_print("{} {}", 1, &x), "jx_debug_print", "out of range");
  EXPECT_ERROR(jx_debug_print("{3}", 1, &x), "jx_debug_print", "index 3 out of range for 1 argument");
  EXPECT_ERROR(jx_debug_print("x={", 1, &x), "jx_debug_print", "expected '}'");
  EXPECT_ERROR(jx_debug_print("x=}", 1, &x), "jx_debug_print", "single '}'");
  EXPECT_ERROR(jx_debug_print("{} {0}", 1, &x), "jx_debug_print", "cannot switch");
  EXPECT_ERROR(jx_debug_print("{x}", 1, &x), "jx_debug_print", "named fields");
  EXPECT_ERROR(jx_debug_print("{!r}", 1, &x), "jx_debug_print", "conversions");
  EXPECT_ERROR(jx_debug_print("{:.2f}", 1, &x), "jx_debug_print", "0-d argument");
  EXPECT_ERROR(jx_debug_print("{:d}", 1, (jx_t[]){F64(1)}), "jx_debug_print", "integer format code");
  EXPECT_ERROR(jx_debug_print("{:q}", 1, (jx_t[]){F64(1)}), "jx_debug_print", "format spec");
  EXPECT_ERROR(jx_debug_print(NULL, 0, NULL), "jx_debug_print", "NULL");
  EXPECT_ERROR(jx_debug_print("{}", 1, NULL), "jx_debug_print", "NULL");
  EXPECT_ERROR(jx_debug_print("{}", 1, (jx_t[]){JX_TUPLE(x, x)}), "jx_debug_print", "tree");
  char big[JX_DEBUG_PRINT_FMT_MAX + 2];
  memset(big, 'a', sizeof big - 1), big[sizeof big - 1] = 0;
  EXPECT_ERROR(jx_debug_print(big, 0, NULL), "jx_debug_print", "at most");
  memset(big, 'a', sizeof big - 2), big[sizeof big - 2] = 0; /* exactly the most */
  CHECK(!jx_debug_print(big, 0, NULL));
  CHECK(got_lines == 1 && strlen(got) == JX_DEBUG_PRINT_FMT_MAX + 1);
  reset();
  CHECK(got_lines == 0);
  jx_pool_pop();
}

/* --------------------------------------------------------------- jit */
static jx_t print_twice(const jx_t *a, void *u) {
  (void)u;
  jx_t y = jx_mul(a[0], F64(2));
  JX_DEBUG_PRINT("x={}", a[0]);
  JX_DEBUG_PRINT("y={} n={}", y, a[1]);
  return jx_add(y, F64(1));
}

static void test_jit(void) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(print_twice, 2, NULL);
  jx_t x = jx_array(JX_F64, JX_SHAPE(2), (double[]){1, 2}), k = jx_scalar_of(JX_I32, 3);
  char *jp = jx_make_jaxpr(f, (jx_t[]){x, k});
  CHECK(got_lines == 0); /* tracing prints nothing */
  CHECKF(jp && strstr(jp, "    debug_print[fmt=\"x={}\"] a\n") &&
             strstr(jp, "debug_print[fmt=\"y={} n={}\"] c b"),
         "%s", jp);
  jx_free_string(jp);
  jx_fn *jf = jx_jit(f);
  jx_exec_counts c0 = jx_exec_run_counts();
  jx_t r = JX_CALL(jf, x, k);
  CHECK(jx_ok(r) && jx_item(jx_sum(r)) == 8);
  EXPECT_OUT("x=[1. 2.]\ny=[2. 4.] n=3\n");
  r = JX_CALL(jf, jx_array(JX_F64, JX_SHAPE(2), (double[]){-1, 0.5}), jx_scalar_of(JX_I32, 4));
  CHECK(jx_ok(r));
  EXPECT_OUT("x=[-1.   0.5]\ny=[-2.  1.] n=4\n"); /* each run, with its values */
  jx_exec_counts c1 = jx_exec_run_counts();
  bool cc = !getenv("JX_CC") && !access("/usr/bin/cc", X_OK); /* else it may run interpreted */
  long runs = c1.compiled - c0.compiled, all = runs + c1.interpreted - c0.interpreted;
  CHECKF(cc ? runs == 2 : all == 2, "%ld compiled runs of %ld", runs, all);
  jx_fn_free(jf);
  jx_fn_free(f);
  jx_pool_pop();
}

/* nested jit, and ordering among several prints and computations */
static jx_t inner(const jx_t *a, void *u) {
  (void)u;
  JX_DEBUG_PRINT("inner {}", a[0]);
  return jx_sin(a[0]);
}
static jx_t outer(const jx_t *a, void *u) {
  jx_fn *g = jx_jit(jx_fn_new(inner, 1, NULL));
  JX_DEBUG_PRINT("first");
  jx_t y = JX_CALL(g, a[0]);
  jx_debug_print_ex("second {}", 1, (jx_t[]){jx_add(y, y)}, true);
  jx_t z = JX_CALL(g, jx_cos(a[0])); /* the same inner function again: a second print */
  JX_DEBUG_PRINT("third");
  jx_fn_free(g);
  (void)u;
  return jx_add(y, z);
}

static void test_nested_and_order(void) {
  jx_pool_push();
  jx_fn *jf = jx_jit(jx_fn_new(outer, 1, NULL));
  jx_t r = JX_CALL(jf, F64(0));
  CHECK(jx_ok(r));
  EXPECT_OUT("first\ninner 0.0\nsecond 0.0\ninner 1.0\nthird\n");
  r = JX_CALL(jf, F64(0));
  EXPECT_OUT("first\ninner 0.0\nsecond 0.0\ninner 1.0\nthird\n");
  char *jp = jx_make_jaxpr(jx_fn_new(outer, 1, NULL), (jx_t[]){F64(0)});
  CHECKF(jp && strstr(jp, "debug_print[fmt=\"second {}\" ordered=True]"), "%s", jp);
  jx_free_string(jp);
  reset();
  jx_fn_free(jf);
  jx_pool_pop();
}

/* a print of values nothing else uses (DCE), twice the same (CSE) */
static jx_t unused(const jx_t *a, void *u) {
  (void)u;
  jx_t s = jx_sin(a[0]);
  JX_DEBUG_PRINT("s={}", s);
  JX_DEBUG_PRINT("s={}", s);
  JX_DEBUG_PRINT("const {}", jx_add(F64(1), F64(2))); /* foldable inputs: still printed at run time */
  return a[0];
}

static void test_passes_keep_prints(void) {
  jx_pool_push();
  jx_fn *jf = jx_jit(jx_fn_new(unused, 1, NULL));
  CHECK(jx_ok(JX_CALL(jf, F64(0))));
  EXPECT_OUT("s=0.0\ns=0.0\nconst 3.0\n");
  CHECK(jx_ok(JX_CALL(jf, F64(0))));
  EXPECT_OUT("s=0.0\ns=0.0\nconst 3.0\n");
  jx_fn_free(jf);
  jx_pool_pop();
}

/* -------------------------------------------------------------- vmap */
static jx_t print_rows(const jx_t *a, void *u) {
  (void)u;
  JX_DEBUG_PRINT("row {} of {}", a[0], a[1]);
  return jx_sum(a[0]);
}

static void test_vmap(void) {
  jx_pool_push();
  jx_t m = jx_array(JX_F64, JX_SHAPE(3, 2), (double[]){1, 2, 3, 4, 5, 6}), k = jx_scalar_of(JX_I32, 9);
  jx_fn *f = jx_fn_new(print_rows, 2, NULL);
  const char *want = "row [1. 2.] of 9\nrow [3. 4.] of 9\nrow [5. 6.] of 9\n";
  jx_t r = JX_CALL(jx_vmap(f, (int[]){0, JX_NONE}, 0), m, k);
  CHECK(jx_ok(r) && jx_item(jx_sum(r)) == 21);
  EXPECT_OUT(want);
  r = JX_CALL(jx_jit(jx_vmap(f, (int[]){0, JX_NONE}, 0)), m, k);
  EXPECT_OUT(want);
  r = JX_CALL(jx_vmap(jx_jit(f), (int[]){0, JX_NONE}, 0), m, k);
  EXPECT_OUT(want);
  /* mapped along axis 1: the columns */
  r = JX_CALL(jx_vmap(f, (int[]){1, JX_NONE}, 0), m, k);
  EXPECT_OUT("row [1. 3. 5.] of 9\nrow [2. 4. 6.] of 9\n");
  jx_pool_pop();
}

/* -------------------------------------------------------------- grad */
static jx_t loss(const jx_t *a, void *u) {
  (void)u;
  JX_DEBUG_PRINT("x={}", a[0]);
  jx_t y = jx_sin(a[0]);
  JX_DEBUG_PRINT("y={}", y);
  return jx_sum(jx_mul(y, y));
}

static void test_grad(void) {
  jx_pool_push();
  jx_t x = jx_array(JX_F64, JX_SHAPE(2), (double[]){0, 0.5});
  const char *want = "x=[0.  0.5]\ny=[0.         0.47942554]\n";
  jx_fn *f = jx_fn_new(loss, 1, NULL);
  jx_fn *gs[] = {jx_grad(f, 0), jx_jit(jx_grad(f, 0)), jx_grad(jx_jit(f), 0), jx_jit(jx_grad(jx_jit(f), 0)),
                 jx_value_and_grad(jx_jit(f), 0)};
  for (size_t i = 0; i < sizeof gs / sizeof *gs; i++) {
    for (int call = 0; call < 2; call++) {
      jx_t g = JX_CALL(gs[i], x);
      CHECKF(jx_ok(g), "%zu: %s", i, jx_error(g));
      CHECKF(!strcmp(got, want), "grad form %zu call %d printed\n%s", i, call, got);
      reset();
    }
  }
  /* jvp: the primal once, no tangent printed */
  jx_t r = jx_jvp(jx_jit(f), &x, (jx_t[]){jx_ones_like(x)});
  CHECK(jx_ok(r));
  EXPECT_OUT(want);
  jx_pool_pop();
}

/* checkpoint (remat): the backward pass recomputes the function, its
 * prints included, as JAX's partial eval of checkpoint stages a debug
 * callback into the recomputation too (so grad prints twice) */
static void test_remat(void) {
  jx_pool_push();
  jx_t x = jx_array(JX_F64, JX_SHAPE(2), (double[]){0, 0.5});
  const char *once = "x=[0.  0.5]\ny=[0.         0.47942554]\n";
  char twice[200];
  snprintf(twice, sizeof twice, "%s%s", once, once);
  jx_fn *f = jx_checkpoint(jx_fn_new(loss, 1, NULL), JX_REMAT_NOTHING);
  jx_fn *gs[] = {jx_grad(f, 0), jx_jit(jx_grad(f, 0))};
  for (size_t i = 0; i < 2; i++) {
    jx_t g = JX_CALL(gs[i], x);
    CHECKF(jx_ok(g), "%s", jx_error(g));
    EXPECT_OUT(twice);
  }
  CHECK(jx_ok(JX_CALL(f, x))); /* no derivative: once */
  EXPECT_OUT(once);
  jx_pool_pop();
}

/* custom_jvp: the function prints when called, its rule under jvp. (Not
 * grad(jit(f)): jit_call's jvp runs the compiled function for the primal
 * half, so f prints there, where JAX, which differentiates the jaxpr as a
 * whole, runs the rule.) */
static jx_t cj_f(const jx_t *a, void *u) {
  (void)u;
  JX_DEBUG_PRINT("f {}", a[0]);
  return jx_sin(a[0]);
}
static jx_t cj_rule(const jx_t *a, void *u) {
  (void)u;
  jx_t x = jx_at(a[0], 0), t = jx_at(a[1], 0);
  JX_DEBUG_PRINT("rule {}", x);
  return JX_TUPLE(jx_sin(x), jx_mul(t, jx_cos(x)));
}

static void test_custom_jvp(void) {
  jx_pool_push();
  jx_fn *f = jx_custom_jvp(jx_fn_new(cj_f, 1, NULL), jx_fn_new(cj_rule, 2, NULL));
  jx_fn *fs[] = {f, jx_jit(f), jx_grad(f, 0), jx_jit(jx_grad(f, 0))};
  const char *want[] = {"f 0.5\n", "f 0.5\n", "rule 0.5\n", "rule 0.5\n"};
  for (size_t i = 0; i < 4; i++) {
    jx_t r = JX_CALL(fs[i], F64(0.5));
    CHECKF(jx_ok(r), "%s", jx_error(r));
    CHECKF(!strcmp(got, want[i]), "custom_jvp form %zu printed\n%s", i, got);
    reset();
  }
  jx_pool_pop();
}

/* ------------------------------------------------------- control flow */
static jx_t scan_step(const jx_t *a, void *u) {
  (void)u;
  jx_t c = jx_add(a[0], a[1]);
  JX_DEBUG_PRINT("carry {} x {}", c, a[1]);
  return JX_TUPLE(c, jx_mul(c, a[1]));
}
static jx_t scan_fn(const jx_t *a, void *u) {
  jx_fn *s = jx_fn_new(scan_step, 2, NULL);
  jx_t r = jx_scan(s, a[0], a[1]);
  jx_fn_free(s);
  (void)u;
  return jx_add(jx_at(r, 0), jx_sum(jx_at(r, 1)));
}
static jx_t fori_step(const jx_t *a, void *u) {
  (void)u;
  JX_DEBUG_PRINT("i={}", a[0]);
  return jx_add(a[1], jx_astype(a[0], JX_F64));
}
static jx_t fori_fn(const jx_t *a, void *u) {
  (void)u;
  return jx_fori_loop(0, 3, jx_fn_new(fori_step, 2, NULL), a[0]);
}
static jx_t while_cond(const jx_t *a, void *u) {
  (void)u;
  return jx_lt(a[0], F64(10));
}
static jx_t while_body(const jx_t *a, void *u) {
  (void)u;
  JX_DEBUG_PRINT("w={}", a[0]);
  return jx_mul(a[0], F64(3));
}
static jx_t while_fn(const jx_t *a, void *u) {
  (void)u;
  return jx_while_loop(jx_fn_new(while_cond, 1, NULL), jx_fn_new(while_body, 1, NULL), a[0]);
}
static jx_t yes(const jx_t *a, void *u) {
  (void)u;
  JX_DEBUG_PRINT("yes {}", a[0]);
  return jx_neg(a[0]);
}
static jx_t no(const jx_t *a, void *u) {
  (void)u;
  JX_DEBUG_PRINT("no {}", a[0]);
  return a[0];
}
static jx_t cond_fn(const jx_t *a, void *u) {
  (void)u;
  return jx_cond(jx_gt(a[0], F64(0)), jx_fn_new(yes, 1, NULL), jx_fn_new(no, 1, NULL), 1, a);
}
static jx_t cond_scan_step(const jx_t *a, void *u) {
  jx_t c = cond_fn(&a[1], u);
  return JX_TUPLE(jx_add(a[0], c), c);
}
static jx_t cond_in_scan(const jx_t *a, void *u) {
  (void)u;
  return jx_at(jx_scan(jx_fn_new(cond_scan_step, 2, NULL), F64(0), a[0]), 0);
}

static const char *scan_want = "carry 1.0 x 1.0\ncarry 3.0 x 2.0\ncarry 6.0 x 3.0\n";

static void run_loops(const char *mode) {
  jx_t xs = jx_array(JX_F64, JX_SHAPE(3), (double[]){1, 2, 3});
  struct {
    jx_body body;
    jx_t arg;
    const char *want;
  } cases[] = {
      {scan_fn, F64(0), scan_want},
      {fori_fn, F64(0), "i=0\ni=1\ni=2\n"},
      {while_fn, F64(1), "w=1.0\nw=3.0\nw=9.0\n"},
      {cond_fn, F64(2), "yes 2.0\n"},
      {cond_fn, F64(-2), "no -2.0\n"},
      {cond_in_scan, jx_array(JX_F64, JX_SHAPE(3), (double[]){1, -1, 2}), "yes 1.0\nno -1.0\nyes 2.0\n"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    jx_fn *f = jx_fn_new(cases[i].body, cases[i].body == scan_fn ? 2 : 1, NULL);
    jx_t args[2] = {cases[i].arg, xs};
    for (int jit = 0; jit < 2; jit++) {
      jx_fn *g = jit ? jx_jit(f) : f;
      for (int call = 0; call < 2; call++) {
        jx_t r = jx_call(g, args);
        CHECKF(jx_ok(r), "%s case %zu: %s", mode, i, jx_error(r));
        CHECKF(!strcmp(got, cases[i].want), "%s case %zu jit %d call %d printed\n%s", mode, i, jit, call,
               got);
        reset();
      }
      if (jit) jx_fn_free(g);
    }
    jx_fn_free(f);
  }
  /* grad through a scan whose body prints: the forward pass prints each
   * step once; the tangent and backward scans print nothing */
  jx_fn *f = jx_fn_new(scan_fn, 2, NULL);
  jx_fn *gs[] = {jx_grad(f, 0), jx_jit(jx_grad(f, 0)), jx_grad(jx_jit(f), 0)};
  for (size_t i = 0; i < 3; i++) {
    jx_t g = JX_CALL(gs[i], F64(0), xs);
    CHECKF(jx_ok(g), "%s grad %zu: %s", mode, i, jx_error(g));
    CHECKF(!strcmp(got, scan_want), "%s grad form %zu printed\n%s", mode, i, got);
    reset();
  }
  /* vmap of a cond on a batched predicate: both branches run on every
   * lane (JAX's rule), the false branch first */
  jx_t v = JX_CALL(jx_vmap(jx_fn_new(cond_fn, 1, NULL), (int[]){0}, 0),
                   jx_array(JX_F64, JX_SHAPE(2), (double[]){2, -2}));
  CHECK(jx_ok(v) && jx_item(jx_sum(v)) == -4);
  EXPECT_OUT("no 2.0\nno -2.0\nyes 2.0\nyes -2.0\n");
  /* vmap of a scan: each step prints every batch element in order */
  jx_t r = JX_CALL(jx_jit(jx_vmap(f, (int[]){0, JX_NONE}, 0)),
                   jx_array(JX_F64, JX_SHAPE(2), (double[]){0, 10}), xs);
  CHECK(jx_ok(r));
  EXPECT_OUT("carry 1.0 x 1.0\ncarry 11.0 x 1.0\ncarry 3.0 x 2.0\ncarry 13.0 x 2.0\ncarry 6.0 x 3.0\n"
             "carry 16.0 x 3.0\n");
}

static void test_loops(void) {
  jx_pool_push();
  /* compiled loops (the default): the body's print is a call back from the
   * generated C; one executable run per call */
  jx_fn *jf = jx_jit(jx_fn_new(scan_fn, 2, NULL));
  jx_exec_counts c0 = jx_exec_run_counts();
  JX_CALL(jf, F64(0), jx_array(JX_F64, JX_SHAPE(3), (double[]){1, 2, 3}));
  jx_exec_counts c1 = jx_exec_run_counts();
  CHECKF(c1.compiled - c0.compiled == 1 || c1.interpreted > c0.interpreted, "%ld compiled runs",
         c1.compiled - c0.compiled);
  EXPECT_OUT(scan_want);
  jx_fn_free(jf);
  run_loops("compiled loops");
  setenv("JX_JIT_LOOPS", "0", 1); /* loops as calls of their eager impl */
  run_loops("JX_JIT_LOOPS=0");
  unsetenv("JX_JIT_LOOPS");
  jx_pool_pop();
}

/* pmap over 2 devices: each device prints its own slice (threads: in
 * either order, each line whole) */
static jx_t dev_print(const jx_t *a, void *u) {
  (void)u;
  JX_DEBUG_PRINT("dev {}", a[0]);
  return jx_mul(a[0], F64(2));
}

static void test_pmap(void) {
  jx_pool_push();
  jx_set_cpu_devices(2);
  jx_t x = jx_array(JX_F64, JX_SHAPE(2, 2), (double[]){1, 2, 3, 4});
  jx_t r = JX_CALL(jx_pmap(jx_fn_new(dev_print, 1, NULL), NULL, 0, "i"), x);
  CHECKF(jx_ok(r), "%s", jx_error(r));
  CHECKF(!strcmp(got, "dev [1. 2.]\ndev [3. 4.]\n") || !strcmp(got, "dev [3. 4.]\ndev [1. 2.]\n"), "%s", got);
  reset();
  jx_set_cpu_devices(0);
  jx_pool_pop();
}

/* ------------------------------------------------------------- export */
/* jx_export_c renders a print as a call to the JX_EXPORT_DEBUG_PRINT hook
 * (compiled out when the macro is not defined); jx_export_save refuses it
 * (the format is not in the saved format's params). */
static const char print_main[] =
    "#include <stdio.h>\n#include \"printer.h\"\n"
    "void hook(const char *fmt, int n, const void *const *v);\n"
    "void hook(const char *fmt, int n, const void *const *v) {\n"
    "  const double *d = (const double *)v[0];\n"
    "  printf(\"%s|%d|%.17g %.17g\\n\", fmt, n, d[0], d[1]);\n}\n"
    "int main(void) {\n  double x[2] = {0, 0.5}, y = 0;\n  const void *in[1];\n  void *out[1];\n"
    "  static char ws[PRINTER_WORKSPACE_BYTES + 1];\n  int rc;\n  in[0] = x, out[0] = &y;\n"
    "  rc = printer(in, out, ws);\n  printf(\"out %.17g\\n\", y);\n  return rc;\n}\n";

static char *run_export(const char *dir, const char *define) {
  char cmd[1024], path[300];
  snprintf(cmd, sizeof cmd,
           "cd %s && cc -std=c99 -pedantic -Wall -Wextra -Werror -O1 %s -o prog printer.c main.c -lm && "
           "./prog > out.txt",
           dir, define);
  if (system(cmd) != 0) return NULL;
  snprintf(path, sizeof path, "%s/out.txt", dir);
  FILE *f = fopen(path, "r");
  static char buf[2][1024];
  static int which;
  char *o = buf[which++ & 1];
  size_t n = f ? fread(o, 1, sizeof buf[0] - 1, f) : 0;
  if (f) fclose(f);
  o[n] = 0;
  return o;
}

static void test_export(void) {
  jx_pool_push();
  char dir[] = "/tmp/jx_print_XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  jx_fn *jf = jx_jit(jx_fn_new(loss, 1, NULL));
  jx_t x = jx_array(JX_F64, JX_SHAPE(2), (double[]){0, 0.5});
  got_lines = 0;
  jx_t err = jx_export_c(jf, &x, "printer", dir);
  CHECKF(err == NULL, "%s", err ? jx_error(err) : "");
  CHECK(got_lines == 0); /* exporting traces: it prints nothing */
  char path[300];
  snprintf(path, sizeof path, "%s/main.c", dir);
  FILE *f = fopen(path, "w");
  if (f) fputs(print_main, f), fclose(f);
  double want = jx_item(JX_CALL(jf, x)), s = sin(0.5);
  char expect[512], plain[128];
  snprintf(plain, sizeof plain, "out %.17g\n", want);
  snprintf(expect, sizeof expect, "x={}|1|0 0.5\ny={}|1|0 %.17g\n%s", s, plain);
  char *hooked = run_export(dir, "-DJX_EXPORT_DEBUG_PRINT=hook");
  CHECKF(hooked && !strcmp(hooked, expect), "exported prints through the hook:\n%s\nwant\n%s", hooked,
         expect);
  char *quiet = run_export(dir, "");
  CHECKF(quiet && !strcmp(quiet, plain), "exported without the hook:\n%s\nwant\n%s", quiet, plain);
  snprintf(path, sizeof path, "%s/printer.jx", dir);
  EXPECT_ERROR(jx_export_save(jf, &x, path), "debug_print");
  CHECK(access(path, F_OK) != 0);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  CHECK(system(cmd) == 0);
  jx_fn_free(jf);
  jx_pool_pop();
}

/* jx_params_set_jaxprs writes back what jx_params_jaxprs reads, for every
 * params kind (the effects pass rewrites inner jaxprs through them) */
static void test_params_jaxprs(void) {
  struct jx_jaxpr *a = (struct jx_jaxpr *)&got[0], *b = (struct jx_jaxpr *)&got[64];
  for (int k = 0; k < JX_PK_COUNT; k++) {
    jx_params p;
    jx_params_init(&p, (jx_params_kind)k);
    memset((char *)&p + sizeof p.kind, 0x11, sizeof p - sizeof p.kind); /* every pointer non-NULL */
    p.kind = (jx_params_kind)k;
    struct jx_jaxpr *js[2], *back[2];
    int n = jx_params_jaxprs(&p, js);
    struct jx_jaxpr *repl[2] = {a, b};
    jx_params_set_jaxprs(&p, repl);
    CHECKF(jx_params_jaxprs(&p, back) == n, "kind %s", jx_params_kind_names[k]);
    for (int i = 0; i < n; i++) CHECKF(back[i] == repl[i], "kind %s jaxpr %d", jx_params_kind_names[k], i);
  }
}

int main(void) {
  jx_set_print_sink(sink, NULL);
  test_params_jaxprs();
  reset();
  test_numpy_str();
  test_formats();
  test_errors();
  test_jit();
  test_nested_and_order();
  test_passes_keep_prints();
  test_vmap();
  test_grad();
  test_remat();
  test_custom_jvp();
  test_loops();
  test_pmap();
  test_export();
  jx_set_print_sink(NULL, NULL);
  return check_report("debug_print");
}
