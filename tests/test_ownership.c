/* One ownership model (issue 21): jx_fn values belong to the pool open
 * when they are made, like jx_t; jx_fn_retain/jx_fn_release/jx_fn_free;
 * error functions from bad arguments; jx_free_string; jit's static and
 * donated arguments (with the SGD step's allocations counted through the
 * allocator).
 *
 * The test installs a counting allocator (jx_set_allocator, before any
 * other jx call) and turns the buffer cache off (JX_CACHE_BYTES=0), so
 * that every block jx holds is counted until it is freed. */
#include "check.h"
#include "compile/compile.h"
#include "core/core.h"

int jx_jit_trace_count(jx_fn *jitted);

/* ------------------------------------------------------ counting allocator */
static long n_new, n_free;
static size_t bytes_new;
static void *count_alloc(void *ud, void *p, size_t n) {
  (void)ud;
  if (n == 0) {
    if (p) n_free++;
    free(p);
    return NULL;
  }
  if (!p) n_new++, bytes_new += n;
  return realloc(p, n);
}
static long live(void) { return n_new - n_free; }

/* ------------------------------------------------------------- functions */
static jx_t sum_sq(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_mul(a[0], a[0]));
}
static jx_t x3(void) { return jx_array(JX_F32, JX_SHAPE(3), (float[]){1, 2, 3}); }

/* grad(sum(x^2)) = 2x, checked */
static bool is_2x(jx_t g) {
  float v[3] = {0};
  return jx_ok(g) && jx_read(g, JX_F32, v, sizeof v) == 0 && v[0] == 2 && v[1] == 4 && v[2] == 6;
}

/* One round: jit(grad(fn_new)) made and called inside a pool; the pop
 * must free all of it (before issue 21 the functions were never freed). */
static void pool_round(void) {
  jx_pool_push();
  jx_fn *g = jx_jit(jx_grad(jx_fn_new(sum_sq, 1, NULL), 0));
  CHECK(is_2x(JX_CALL(g, x3())));
  jx_fn *v = jx_vmap(jx_value_and_grad(jx_fn_new(sum_sq, 1, NULL), 0), NULL, 0);
  CHECK(jx_ok(JX_CALL(v, jx_ones(JX_F32, JX_SHAPE(2, 3)))));
  jx_pool_pop();
}

static void test_pools_free_functions(void) {
  pool_round(); /* warm: compile caches, thread pool, ... */
  long before = live();
  for (int i = 0; i < 3; i++) pool_round();
  CHECKF(live() == before, "%ld blocks left behind by 3 rounds", live() - before);
}

static void test_root_and_retain(void) {
  /* made in the root pool: lives on through other pools' pops */
  static jx_fn *global;
  global = jx_jit(jx_grad(jx_fn_new(sum_sq, 1, NULL), 0));
  for (int i = 0; i < 2; i++) {
    jx_pool_push();
    CHECK(is_2x(JX_CALL(global, x3())));
    jx_pool_pop();
  }
  /* retained: outlives its pool until released */
  jx_pool_push();
  jx_fn *kept = jx_fn_retain(jx_grad(jx_fn_new(sum_sq, 1, NULL), 0));
  jx_pool_pop();
  jx_pool_push();
  CHECK(is_2x(JX_CALL(kept, x3())));
  jx_pool_pop();
  long before = live();
  jx_fn_release(kept);
  CHECK(live() < before); /* the last reference: freed now */
}

static void test_fn_free_compatible(void) {
  long before = live();
  /* code that frees what it makes, inner first or outer first: no double
   * free when the pool pops (ASan), nothing left */
  jx_pool_push();
  jx_fn *f = jx_fn_new(sum_sq, 1, NULL), *g = jx_grad(f, 0), *j = jx_jit(g);
  jx_fn_free(f); /* g holds f */
  CHECK(is_2x(JX_CALL(j, x3())));
  jx_fn_free(j), jx_fn_free(g);
  jx_fn *h = jx_fn_new(sum_sq, 1, NULL);
  jx_fn_free(h);
  jx_fn_free(h = jx_hessian(jx_fn_new(sum_sq, 1, NULL), 0));
  jx_pool_pop();
  CHECKF(live() == before, "%ld", live() - before);
  /* retained then freed twice: the pool's reference, then the retained one */
  jx_pool_push();
  jx_fn *r = jx_fn_retain(jx_fn_new(sum_sq, 1, NULL));
  jx_fn_free(r);
  jx_pool_pop();
  jx_pool_push();
  CHECK(jx_ok(JX_CALL(r, x3())));
  jx_pool_pop();
  jx_fn_free(r);
  CHECK(live() == before);
  /* vjp's pullback belongs to the pool too */
  jx_pool_push();
  jx_fn *pb = NULL;
  CHECK(jx_ok(jx_vjp(jx_fn_new(sum_sq, 1, NULL), (jx_t[]){x3()}, &pb)));
  CHECK(is_2x(jx_at(JX_CALL(pb, jx_scalar(1)), 0)));
  jx_pool_pop();
  CHECK(live() == before);
}

/* ------------------------------------------------------- error functions */
static void expect_error_fn(int line, jx_fn *f, const char *sub) {
  const char *why = jx_fn_error(f);
  CHECKF(f && why && strstr(why, sub), "line %d: %s", line, why ? why : "(not an error function)");
  jx_t r = jx_call(f, (jx_t[]){x3(), x3(), x3()});
  CHECKF(!jx_ok(r) && strstr(jx_error(r), sub), "line %d: call gave %s", line, jx_error(r));
  CHECK(jx_fn_nargs(f) == -1);
  /* transformations pass the error on */
  jx_t r2 = JX_CALL(jx_jit(jx_grad(f, 0)), x3());
  CHECKF(!jx_ok(r2) && strstr(jx_error(r2), sub), "line %d: grad of it gave %s", line, jx_error(r2));
}
#define EXPECT_ERROR_FN(f, sub) expect_error_fn(__LINE__, (f), (sub))

static jx_t two(const jx_t *a, void *u) {
  (void)u;
  return jx_add(a[0], a[1]);
}

static void test_error_functions(void) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(sum_sq, 1, NULL), *f2 = jx_fn_new(two, 2, NULL);
  EXPECT_ERROR_FN(jx_fn_new(NULL, 1, NULL), "body is NULL");
  EXPECT_ERROR_FN(jx_fn_new(sum_sq, -1, NULL), "negative");
  EXPECT_ERROR_FN(jx_grad(NULL, 0), "grad: the function is NULL");
  EXPECT_ERROR_FN(jx_grad(f, 1), "grad: argnum 1 is out of range");
  EXPECT_ERROR_FN(jx_grad(f, -1), "argnum -1");
  EXPECT_ERROR_FN(jx_value_and_grad(f, 2), "value_and_grad: argnum 2");
  EXPECT_ERROR_FN(jx_jacfwd(f, 1), "jacfwd: argnum 1");
  EXPECT_ERROR_FN(jx_jacrev(NULL, 0), "jacrev: the function is NULL");
  EXPECT_ERROR_FN(jx_hessian(f, 3), "hessian: argnum 3");
  EXPECT_ERROR_FN(jx_jit(NULL), "jit: the function is NULL");
  EXPECT_ERROR_FN(jx_vmap(NULL, NULL, 0), "vmap: the function is NULL");
  EXPECT_ERROR_FN(jx_vmap(f, (int[]){100}, 0), "in_axes[0] = 100");
  EXPECT_ERROR_FN(jx_vmap(f, NULL, -99), "out_axis -99");
  EXPECT_ERROR_FN(jx_partial(NULL, 0, NULL), "partial: the function is NULL");
  EXPECT_ERROR_FN(jx_partial(f2, 3, (jx_t[]){x3(), x3(), x3()}), "cannot bind 3");
  EXPECT_ERROR_FN(jx_partial(f2, 1, NULL), "bound is NULL");
  EXPECT_ERROR_FN(jx_jit_ex(f2, &(jx_jit_options){.nstatic = 1, .static_argnums = (int[]){2}}),
                  "static_argnums[0] = 2");
  EXPECT_ERROR_FN(jx_jit_ex(f2, &(jx_jit_options){.ndonate = 1, .donate_argnums = (int[]){-3}}),
                  "donate_argnums[0] = -3");
  EXPECT_ERROR_FN(jx_jit_ex(f2, &(jx_jit_options){1, (int[]){0}, 1, (int[]){-2}}), "both static and donated");
  jx_fn *pb = NULL;
  jx_t out = jx_vjp(NULL, (jx_t[]){x3()}, &pb);
  CHECK(!jx_ok(out));
  EXPECT_ERROR_FN(pb, "vjp");
  /* an error function's error reaches the handler-free caller of
   * control flow too */
  jx_fn *bad = jx_grad(f, 7);
  jx_t c = jx_cond(jx_scalar_of(JX_BOOL, 1), bad, bad, 1, (jx_t[]){x3()});
  CHECK(!jx_ok(c) && strstr(jx_error(c), "argnum 7"));
  jx_t lp = jx_fori_loop(0, 3, bad, x3());
  CHECK(!jx_ok(lp) && strstr(jx_error(lp), "argnum 7"));
  jx_pool_pop();
}

/* ------------------------------------------------------------- strings */
static void test_free_string(void) {
  jx_pool_push();
  long frees = n_free;
  char *s = jx_to_string(x3());
  char *j = jx_make_jaxpr(jx_fn_new(sum_sq, 1, NULL), (jx_t[]){x3()});
  CHECK(s && strstr(s, "2") && j && strstr(j, "mul"));
  jx_free_string(s);
  jx_free_string(j);
  jx_free_string(NULL);
  CHECK(n_free >= frees + 2); /* through the allocator */
  jx_pool_pop();
}

/* ------------------------------------------------------ static arguments */
/* f(x, mode): mode is read with jx_item, which only a static (concrete)
 * argument allows under jit */
static int traced;
static jx_t by_mode(const jx_t *a, void *u) {
  (void)u;
  traced++;
  double m = jx_item(a[1]);
  return m > 0 ? jx_mul(a[0], jx_scalar(m)) : jx_add(a[0], jx_scalar(-m));
}

static float first(jx_t x) {
  int64_t n = jx_size(x);
  float *d = n > 0 ? malloc(sizeof(float) * (size_t)n) : NULL, v = NAN;
  if (d && jx_read(x, JX_F32, d, sizeof(float) * (size_t)n) == 0) v = d[0];
  free(d);
  return v;
}

static void test_static_args(void) {
  jx_pool_push();
  jx_fn *j =
      jx_jit_ex(jx_fn_new(by_mode, 2, NULL), &(jx_jit_options){.nstatic = 1, .static_argnums = (int[]){1}});
  jx_t x = x3();
  CHECK(first(JX_CALL(j, x, jx_scalar(2))) == 2);
  CHECK(jx_jit_trace_count(j) == 1);
  CHECK(first(JX_CALL(j, x, jx_scalar(2))) == 2); /* same value: cached */
  CHECK(jx_jit_trace_count(j) == 1);
  CHECK(first(JX_CALL(j, x, jx_scalar(-5))) == 6); /* a new value retraces */
  CHECK(jx_jit_trace_count(j) == 2);
  CHECK(first(JX_CALL(j, x, jx_scalar_of(JX_F64, 2))) == 2); /* same number, new dtype */
  CHECK(jx_jit_trace_count(j) == 3);
  CHECK(first(JX_CALL(j, x, jx_scalar(2))) == 2 && jx_jit_trace_count(j) == 3);
  /* static arrays by value; negative argnums count from the end */
  jx_fn *k =
      jx_jit_ex(jx_fn_new(by_mode, 2, NULL), &(jx_jit_options){.nstatic = 1, .static_argnums = (int[]){-1}});
  jx_t m1 = jx_array(JX_F32, JX_SHAPE(1), (float[]){3}), m2 = jx_array(JX_F32, JX_SHAPE(1), (float[]){3});
  CHECK(first(JX_CALL(k, x, m1)) == 3 && first(JX_CALL(k, x, m2)) == 3 && jx_jit_trace_count(k) == 1);
  /* a traced value cannot be static */
  jx_fn *v = jx_vmap(k, (int[]){0, 0}, 0);
  jx_t r = JX_CALL(v, jx_ones(JX_F32, JX_SHAPE(2, 3)), jx_ones(JX_F32, JX_SHAPE(2, 1)));
  CHECKF(!jx_ok(r) && strstr(jx_error(r), "static argument 1 must be concrete"), "%s", jx_error(r));
  /* plain jit could not read the mode at all */
  jx_t p = JX_CALL(jx_jit(jx_fn_new(by_mode, 2, NULL)), x, jx_scalar(2));
  CHECK(!jx_ok(p));
  jx_pool_pop();
}

/* ----------------------------------------------------------- donation */
static jx_t sgd(const jx_t *a, void *u) {
  (void)u;
  return jx_sub(a[0], jx_mul(jx_scalar(0.5), a[1]));
}
static jx_t ident(const jx_t *a, void *u) {
  (void)u;
  return a[0];
}
static const jx_jit_options donate0 = {.ndonate = 1, .donate_argnums = (const int[]){0}};

static void test_donation(void) {
  jx_pool_push();
  jx_fn *step = jx_jit_ex(jx_fn_new(sgd, 2, NULL), &donate0);
  jx_t p = jx_full(JX_F32, JX_SHAPE(1000), 4), g = jx_full(JX_F32, JX_SHAPE(1000), 2);
  long compiled = jx_exec_run_counts().compiled;
  void *old = jx_data(p);
  jx_t q = JX_CALL(step, p, g);
  CHECK(first(q) == 3 && jx_ok(g));
  /* the donated array is deleted: using it is an error value */
  CHECK(!jx_ok(p) && strstr(jx_error(p), "donated") && strstr(jx_error(p), "f32[1000]"));
  CHECK(!jx_ok(jx_add(p, jx_scalar(1))));
  if (jx_exec_run_counts().compiled > compiled) /* generated code: the buffer is reused */
    CHECK(jx_data(q) == old);
  else
    printf("  (no C compiler: donation ran interpreted, buffers not reused)\n");
  /* a donated buffer another array shares is not written: g passed twice */
  jx_t q2 = JX_CALL(step, g, g);
  CHECK(first(q2) == 1 && !jx_ok(g));
  /* a donated argument returned as it is stays alive */
  jx_fn *id = jx_jit_ex(jx_fn_new(ident, 1, NULL), &donate0);
  jx_t y = x3(), y2 = JX_CALL(id, y);
  CHECK(jx_ok(y) && jx_ok(y2) && first(y2) == 1);
  /* the caller's memory (jx_from_buffer) is never written, donated or not */
  static float mem[1000];
  for (int i = 0; i < 1000; i++) mem[i] = 4;
  jx_t w = jx_from_buffer(JX_F32, JX_SHAPE(1000), NULL, mem, NULL, NULL);
  jx_t g3 = jx_full(JX_F32, JX_SHAPE(1000), 2), q3 = JX_CALL(step, w, g3);
  CHECK(jx_ok(q3) && first(q3) == 3 && jx_data(q3) != (void *)mem && mem[0] == 4 && mem[999] == 4);
  /* under another transformation donation is ignored */
  jx_t ct = jx_full(JX_F32, JX_SHAPE(3), 1);
  jx_t jv = jx_jvp(step, (jx_t[]){ct, ct}, (jx_t[]){ct, ct});
  CHECK(jx_ok(jv) && jx_ok(ct));
  jx_pool_pop();
}

/* The SGD step params - lr * grad, jitted, params donated or not: bytes
 * the allocator hands out per step (buffer cache off). */
static size_t sgd_bytes_per_step(bool donate, long *calls) {
  jx_pool_push();
  jx_fn *step = jx_jit_ex(jx_fn_new(sgd, 2, NULL), donate ? &donate0 : NULL);
  jx_t params = jx_zeros(JX_F32, JX_SHAPE(1 << 18)), grad = jx_ones(JX_F32, JX_SHAPE(1 << 18));
  for (int i = 0; i < 3; i++) params = JX_CALL(step, params, grad); /* compile, warm */
  enum { STEPS = 10 };
  size_t b0 = bytes_new;
  long c0 = n_new;
  for (int i = 0; i < STEPS; i++) params = JX_CALL(step, params, grad);
  size_t per = (bytes_new - b0) / STEPS;
  *calls = (n_new - c0) / STEPS;
  CHECK(first(params) == -0.5f * (3 + STEPS));
  jx_pool_pop();
  return per;
}

static void test_sgd_allocations(void) {
  long cd, cn;
  size_t donated = sgd_bytes_per_step(true, &cd), plain = sgd_bytes_per_step(false, &cn);
  printf("  SGD step on f32[262144] (1 MiB): donated %zu bytes in %ld allocations per step, "
         "not donated %zu bytes in %ld\n",
         donated, cd, plain, cn);
  CHECK(plain >= (size_t)1 << 20);
  if (jx_exec_run_counts().compiled > 0) CHECK(donated < 4096); /* no buffer: a few small blocks */
}

int main(void) {
  jx_set_allocator(count_alloc, NULL); /* before any other jx call */
  setenv("JX_CACHE_BYTES", "0", 1);    /* every buffer counted until freed */
  if (check_private_cache("own")) return 1;
  test_pools_free_functions();
  test_root_and_retain();
  test_fn_free_compatible();
  test_error_functions();
  test_free_string();
  test_static_args();
  test_donation();
  test_sgd_allocations();
  check_private_cache_remove();
  return check_report("test_ownership");
}
