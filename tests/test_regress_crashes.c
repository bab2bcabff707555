/* Regressions for crashes on user-sized structures (issue #14): long op
 * chains under jit, deeply nested trees, size arithmetic with zero-size
 * dimensions, NULL arguments to the public API, and slice arithmetic near
 * the int64 limits. Every case must give a correct result or an error
 * value: never a crash, an overflow (UBSan) or a heap overrun (ASan).
 *
 * The interpreted half of the long-chain test runs in a child process
 * (this binary, re-executed with JX_CC=/nonexistent: the compiler is
 * looked up once per process). */
#include "check.h"
#include "jx.h"

#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

/* Under ASan an impossible allocation must come back as NULL (so jx can turn
 * it into an error value) rather than abort the process. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static bool same_values(jx_t a, jx_t b, double rtol) {
  if (!jx_ok(a) || !jx_ok(b) || jx_size(a) != jx_size(b)) return false;
  int64_t n = jx_size(a);
  double *x = malloc(sizeof(double) * (size_t)(n ? n : 1)), *y = malloc(sizeof(double) * (size_t)(n ? n : 1));
  bool ok = x && y && !jx_read(a, JX_F64, x, sizeof(double) * (size_t)n) &&
            !jx_read(b, JX_F64, y, sizeof(double) * (size_t)n);
  for (int64_t i = 0; ok && i < n; i++) ok = check_close(x[i], y[i], rtol, 1e-6);
  free(x);
  free(y);
  return ok;
}

/* ------------------------------------------------ 1. long op chains */
enum { CHAIN = 40000 };

/* x -> sin(x * 1.0001 + 0.001) ..., three ops a step, kept in range */
static jx_t chain_body(const jx_t *a, void *u) {
  int n = *(const int *)u;
  jx_t x = a[0];
  for (int i = 0; i < n; i++) {
    if (i % 3 == 0)
      x = jx_mul(x, jx_scalar(1.0001));
    else if (i % 3 == 1)
      x = jx_add(x, jx_scalar(0.001));
    else
      x = jx_sin(x);
  }
  return x;
}
static jx_t chain_sum(const jx_t *a, void *u) { return jx_sum(chain_body(a, u)); }

/* Compiled, jit(grad) uses a shorter chain: its program has a kernel per
 * forward value the backward pass reads (~13,000 at 40,000 ops), which
 * the C compiler takes minutes over; interpreted, it is fused and
 * rendered at full length (fusion is what overflowed the stack). */
enum { CHAIN_GRAD_COMPILED = 600 };

static void test_long_chain(bool interpreted) {
  int n = CHAIN, ng = interpreted ? CHAIN : CHAIN_GRAD_COMPILED;
  jx_t x = jx_array(JX_F32, JX_SHAPE(5), (float[]){-1, -0.5f, 0, 0.5f, 1});
  jx_fn *f = jx_fn_new(chain_body, 1, &n), *jf = jx_jit(f);
  jx_fn *s = jx_fn_new(chain_sum, 1, &ng), *g = jx_grad(s, 0), *jg = jx_jit(g);
  jx_t want = JX_CALL(f, x), got = JX_CALL(jf, x);
  CHECKF(jx_ok(got), "jit(chain): %s", jx_error(got));
  CHECK(same_values(got, want, 1e-4));
  jx_t gw = JX_CALL(g, x), gj = JX_CALL(jg, x);
  CHECKF(jx_ok(gw), "grad(chain): %s", jx_error(gw));
  CHECKF(jx_ok(gj), "jit(grad(chain)): %s", jx_error(gj));
  CHECK(same_values(gj, gw, 1e-4));
  if (!interpreted) { /* the printer walks the whole jaxpr */
    char *txt = jx_make_jaxpr(f, &x);
    CHECK(txt && strstr(txt, "sin"));
    free(txt);
  }
  jx_fn_free(jg);
  jx_fn_free(g);
  jx_fn_free(s);
  jx_fn_free(jf);
  jx_fn_free(f);
}

/* The interpreted half, in a child without a C compiler. */
static void test_long_chain_interpreted(const char *self) {
  pid_t pid = fork();
  if (pid == 0) {
    setenv("JX_CC", "/nonexistent/cc", 1);
    execl(self, self, "--interpreted", (char *)NULL);
    _exit(127);
  }
  int st = 0;
  CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
  CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "interpreted child: status %d", st);
}

/* ------------------------------------------------ 2. deep trees */
static jx_t nest(int depth, jx_t leaf) {
  jx_t t = leaf;
  for (int i = 0; i < depth; i++) t = (i & 1) ? jx_tuple(1, &t) : jx_list(1, &t);
  return t;
}
static jx_t dbl(jx_t x, void *u) {
  (void)u;
  return jx_mul(x, jx_scalar(2));
}
static jx_t add2(jx_t a, jx_t b, void *u) {
  (void)u;
  return jx_add(a, b);
}
static jx_t innermost(jx_t t) {
  while (jx_is_tree(t) && jx_len(t) > 0) t = jx_at(t, 0);
  return t;
}
/* f(tree) = 3 * (innermost leaf)^2 */
static jx_t deep_fn(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(jx_scalar(3), jx_square(innermost(a[0])));
}
static jx_t deep_same(const jx_t *a, void *u) {
  (void)u;
  return jx_tree_map(dbl, a[0], NULL);
}

static void test_deep_trees(void) {
  jx_t leaf = jx_scalar_of(JX_F32, 1.5);
  /* past the limit: an error value, which every walker passes through */
  const int deep[] = {30000, 1000000};
  jx_fn *f = jx_fn_new(deep_same, 1, NULL), *jf = jx_jit(f);
  for (int i = 0; i < 2; i++) {
    jx_pool_push();
    jx_t t = nest(deep[i], leaf);
    EXPECT_ERROR(t, "JX_MAX_TREE_DEPTH");
    char *s = jx_to_string(t);
    CHECK(s && strstr(s, "error"));
    free(s);
    EXPECT_ERROR(jx_tree_map(dbl, t, NULL), "JX_MAX_TREE_DEPTH");
    EXPECT_ERROR(jx_tree_map2(add2, t, t, NULL), "JX_MAX_TREE_DEPTH");
    EXPECT_ERROR(JX_CALL(jf, t), "JX_MAX_TREE_DEPTH");
    jx_pool_pop();
  }
  /* at the limit every walker works (recursion bounded by the limit) */
  jx_t t = nest(JX_MAX_TREE_DEPTH, leaf);
  CHECKF(jx_ok(t), "%s", jx_error(t));
  EXPECT_ERROR(jx_tuple(1, &t), "JX_MAX_TREE_DEPTH");
  char *s = jx_to_string(t);
  CHECK(s && strlen(s) > 2 * JX_MAX_TREE_DEPTH);
  free(s);
  jx_t m = jx_tree_map(dbl, t, NULL), m2 = jx_tree_map2(add2, t, m, NULL);
  CHECK(jx_ok(m) && jx_item(innermost(m)) == 3.0);
  CHECK(jx_ok(m2) && jx_item(innermost(m2)) == 4.5);
  /* a retained deep tree released on its own (recursive free, bounded) */
  jx_t r = jx_retain(nest(JX_MAX_TREE_DEPTH, leaf));
  jx_release(r);
  /* jit, grad and vmap flatten, key and rebuild their arguments */
  jx_t t2 = nest(JX_MAX_TREE_DEPTH - 8, leaf);
  jx_t y = JX_CALL(jf, t2);
  CHECKF(jx_ok(y), "%s", jx_error(y));
  CHECK(jx_ok(y) && jx_item(innermost(y)) == 3.0);
  jx_fn *h = jx_fn_new(deep_fn, 1, NULL), *gh = jx_grad(h, 0);
  jx_t gy = JX_CALL(gh, t2);
  CHECKF(jx_ok(gy), "%s", jx_error(gy));
  CHECK(jx_ok(gy) && jx_item(innermost(gy)) == 9.0); /* 6 x */
  /* shared subtrees: 2^30 leaves from 30 tuples */
  jx_t w = leaf;
  for (int i = 0; i < 30; i++) w = JX_TUPLE(w, w);
  EXPECT_ERROR(w, "JX_MAX_TREE_LEAVES");
  jx_fn_free(gh);
  jx_fn_free(h);
  jx_fn_free(jf);
  jx_fn_free(f);
}

/* Transformations nested past the old trace stack (64): cond bodies, each
 * traced one level deeper. This aborted (an internal check); the stack
 * now has no fixed size, so both depths give sin(1). */
static jx_t ident_body(const jx_t *a, void *u) {
  (void)u;
  return a[0];
}
static jx_t nested_cond(const jx_t *a, void *u) {
  int d = *(const int *)u, d1 = d - 1;
  if (d == 0) return jx_sin(a[0]);
  jx_fn *t = jx_fn_new(nested_cond, 1, &d1), *f = jx_fn_new(ident_body, 1, NULL);
  jx_t r = jx_cond(jx_gt(jx_sum(a[0]), jx_scalar(0)), t, f, 1, a);
  jx_fn_free(t);
  jx_fn_free(f);
  return r;
}

static void test_deep_nesting(void) {
  int ok_depth = 60, bad_depth = 70;
  jx_fn *f = jx_fn_new(nested_cond, 1, &ok_depth), *g = jx_fn_new(nested_cond, 1, &bad_depth);
  jx_t y = JX_CALL(f, jx_scalar(1.0));
  CHECKF(jx_ok(y) && check_close(jx_item(y), sin(1.0), 1e-6, 0), "%s", jx_error(y));
  jx_t z = JX_CALL(g, jx_scalar(1.0));
  CHECKF(jx_ok(z) && check_close(jx_item(z), sin(1.0), 1e-6, 0), "%s", jx_error(z));
  jx_fn_free(g);
  jx_fn_free(f);
}

/* ------------------------------------------- 3. sizes with zero dims */
#define P(k) ((int64_t)1 << (k))

static jx_t step_y(const jx_t *a, void *u) { /* (carry, x) -> (carry, f32 y) */
  (void)u;
  return JX_TUPLE(a[0], jx_scalar_of(JX_F32, 1));
}
static jx_t matmul2(const jx_t *a, void *u) {
  (void)u;
  return jx_matmul(a[0], a[1]);
}
static jx_t outer(const jx_t *a, void *u) { /* row [n] -> [n, n] */
  (void)u;
  return jx_mul(jx_expand_dims(a[0], 1), jx_expand_dims(a[0], 0));
}
static jx_t long_scan(const jx_t *a, void *u) {
  jx_fn *f = u;
  return jx_scan_ex(f, a[0], NULL, P(62), false);
}

static void test_zero_size_overflow(void) {
  jx_t a = jx_zeros(JX_F32, JX_SHAPE(P(40), 0)), b = jx_zeros(JX_F32, JX_SHAPE(0, P(40)));
  CHECKF(jx_ok(a) && jx_ok(b) && jx_size(a) == 0, "%s", jx_error(a));
  /* GEMM: the result [2^40, 2^40] f32 overflows (it wrote past a block) */
  EXPECT_ERROR(jx_matmul(a, b), "overflows");
  EXPECT_ERROR(jx_dot(a, b), "overflows");
  jx_fn *mm = jx_fn_new(matmul2, 2, NULL), *jmm = jx_jit(mm);
  EXPECT_ERROR(JX_CALL(jmm, a, b), "overflows"); /* staged: the same check */
  jx_fn_free(jmm);
  jx_fn_free(mm);
  /* creation: the non-zero dims' product must fit, zeros or not */
  const int64_t big[] = {0, P(62), P(62)};
  EXPECT_ERROR(jx_zeros(JX_F32, 3, big), "overflows");
  EXPECT_ERROR(jx_full(JX_I32, 3, big, 1), "overflows");
  EXPECT_ERROR(jx_array(JX_F32, 3, big, NULL), "overflows");
  EXPECT_ERROR(jx_broadcast_to(jx_scalar(1), 3, big), "overflows");
  EXPECT_ERROR(jx_random_uniform(jx_random_key(0), JX_F32, 3, big, 0, 1), "overflows");
  EXPECT_ERROR(jx_random_bits(jx_random_key(0), 3, big), "overflows");
  /* byte count: [0, 2^31, 2^31] elements fit, f64 bytes 2^65 do not */
  EXPECT_ERROR(jx_zeros(JX_F64, JX_SHAPE(0, P(31), P(31))), "overflows");
  /* reductions drop the zero: [0, 2^30, 2^30] f32 is valid and empty, its
   * sum over axis 0 is 2^60 floats (out of memory, not garbage) */
  jx_t z = jx_zeros(JX_F32, JX_SHAPE(0, P(30), P(30)));
  CHECKF(jx_ok(z), "%s", jx_error(z));
  jx_t zs = jx_sum_axes(z, 1, (int[]){0}, false);
  CHECK(!jx_ok(zs));
  jx_t z62 = jx_zeros(JX_BOOL, JX_SHAPE(0, P(62)));
  CHECKF(jx_ok(z62), "%s", jx_error(z62));
  EXPECT_ERROR(jx_sum_axes(jx_zeros(JX_BOOL, 3, big), 1, (int[]){0}, false), "overflows");
  /* reshape, one_hot, stack, concatenate derive dims from zero-size input */
  jx_t e0 = jx_zeros(JX_BOOL, JX_SHAPE(0));
  EXPECT_ERROR(jx_reshape(e0, 3, big), "overflows");
  EXPECT_ERROR(jx_reshape(e0, JX_SHAPE(P(62), P(62), 0)), "overflows");
  EXPECT_ERROR(jx_one_hot(jx_zeros(JX_I32, JX_SHAPE(P(40), 0)), 1 << 30), "overflows");
  jx_t q = jx_zeros(JX_BOOL, JX_SHAPE(P(61), 0));
  CHECKF(jx_ok(q), "%s", jx_error(q));
  EXPECT_ERROR(jx_concatenate(4, (jx_t[]){q, q, q, q}, 0), "overflow");
  EXPECT_ERROR(jx_stack(4, (jx_t[]){z62, z62, z62, z62}, 1), "overflows");
  jx_t c2 = jx_concatenate(2, (jx_t[]){q, q}, 0); /* 2^62: fits */
  CHECK(jx_ok(c2) && jx_shape(c2)[0] == P(62));
  /* scan: 2^62 steps, an f32 per step: ys [2^62] f32 overflows (it
   * overran a buffer in scan_impl) */
  jx_fn *f = jx_fn_new(step_y, 2, NULL);
  EXPECT_ERROR(jx_scan_ex(f, jx_scalar_of(JX_F32, 0), NULL, P(62), false), "overflows");
  jx_fn *ls = jx_fn_new(long_scan, 1, f), *jls = jx_jit(ls);
  EXPECT_ERROR(JX_CALL(jls, jx_scalar_of(JX_F32, 0)), "overflows");
  jx_fn_free(jls);
  jx_fn_free(ls);
  jx_fn_free(f);
  /* vmap over an empty axis: each row's [2^40, 2^40] result, batched
   * [0, 2^40, 2^40], is empty but its dims overflow */
  jx_fn *o = jx_fn_new(outer, 1, NULL), *vo = jx_vmap(o, NULL, 0);
  EXPECT_ERROR(JX_CALL(vo, jx_zeros(JX_F32, JX_SHAPE(0, P(40)))), "overflows");
  jx_t small = JX_CALL(vo, jx_ones(JX_F32, JX_SHAPE(0, 3)));
  CHECK(jx_ok(small) && jx_ndim(small) == 3 && jx_size(small) == 0);
  jx_fn_free(vo);
  jx_fn_free(o);
}

/* ------------------------------------------- 5. slice arithmetic */
static void check_slice(int64_t start, int64_t stop, int64_t step, int n_want, const float *want) {
  jx_t x = jx_array(JX_F32, JX_SHAPE(4), (float[]){1, 2, 3, 4});
  jx_t y = jx_slice(x, &start, &stop, &step);
  CHECKF(jx_ok(y) && jx_ndim(y) == 1 && jx_shape(y)[0] == n_want, "slice %lld:%lld:%lld: %s (%lld)",
         (long long)start, (long long)stop, (long long)step, jx_error(y),
         jx_ok(y) ? (long long)jx_shape(y)[0] : -1LL);
  float got[4] = {0};
  if (n_want > 0 && jx_ok(y) && jx_shape(y)[0] == n_want && !jx_read(y, JX_F32, got, sizeof got))
    CHECKF(!memcmp(got, want, sizeof(float) * (size_t)n_want), "slice %lld:%lld:%lld values",
           (long long)start, (long long)stop, (long long)step);
}

static jx_t sliced_sum(const jx_t *a, void *u) {
  (void)u;
  int64_t s0 = 0, e0 = 3, st0 = INT64_MAX, s1 = 3, e1 = JX_END, st1 = INT64_MIN;
  return jx_add(jx_sum(jx_slice(a[0], &s0, &e0, &st0)), jx_sum(jx_slice(a[0], &s1, &e1, &st1)));
}

static void test_slice_limits(void) {
  /* expected values from Python: [1, 2, 3, 4][start:stop:step] */
  check_slice(0, 3, INT64_MAX, 1, (float[]){1});
  check_slice(0, 3, INT64_MAX - 1, 1, (float[]){1});
  check_slice(1, JX_END, INT64_MAX, 1, (float[]){2});
  check_slice(3, JX_END, INT64_MIN, 1, (float[]){4}); /* x[3::-2**63] */
  check_slice(JX_END, JX_END, -INT64_MAX, 1, (float[]){4});
  check_slice(-1, INT64_MIN, -1, 4, (float[]){4, 3, 2, 1}); /* x[-1:-2**63:-1] */
  check_slice(INT64_MIN, INT64_MAX - 1, 1, 4, (float[]){1, 2, 3, 4});
  check_slice(INT64_MIN, INT64_MIN, 1, 0, NULL);
  check_slice(INT64_MAX - 1, INT64_MIN, -1, 4, (float[]){4, 3, 2, 1});
  check_slice(INT64_MAX - 1, INT64_MIN, INT64_MIN, 1, (float[]){4});
  check_slice(INT64_MIN, INT64_MAX - 1, 3, 2, (float[]){1, 4});
  check_slice(-3, INT64_MAX - 1, 2, 2, (float[]){2, 4});
  check_slice(2, -INT64_MAX, -2, 2, (float[]){3, 1});
  check_slice(0, 0, INT64_MIN, 0, NULL);
  /* empty axis */
  jx_t e = jx_zeros(JX_F32, JX_SHAPE(0));
  int64_t lo = INT64_MIN, hi = INT64_MAX - 1, st = INT64_MIN;
  jx_t y = jx_slice(e, &lo, &hi, &st);
  CHECK(jx_ok(y) && jx_shape(y)[0] == 0);
  /* grad through huge-step slices (their transpose is a pad) */
  jx_fn *sf = jx_fn_new(sliced_sum, 1, NULL), *g = jx_grad(sf, 0);
  jx_t gx = JX_CALL(g, jx_array(JX_F32, JX_SHAPE(4), (float[]){1, 2, 3, 4}));
  float gv[4] = {0};
  CHECKF(jx_ok(gx) && !jx_read(gx, JX_F32, gv, sizeof gv), "%s", jx_error(gx));
  CHECK(gv[0] == 1 && gv[1] == 0 && gv[2] == 0 && gv[3] == 1); /* x[0:3:MAX] + x[3::MIN] */
  jx_fn_free(g);
  jx_fn_free(sf);
}

/* ------------------------------------------- 4. NULL arguments */
/* Every public function given a NULL jx_t, array, shape, function or
 * output pointer: an error value (or the documented sentinel, turned into
 * an error value here), never a crash. Each case returns what it got. */
static jx_t X(void) { return jx_array(JX_F32, JX_SHAPE(2), (float[]){1, 2}); }
static jx_t K(void) { return jx_random_key(1); }
static jx_t ident1(const jx_t *a, void *u) {
  (void)u;
  return a[0];
}
static jx_t pred1(const jx_t *a, void *u) {
  (void)u;
  return jx_lt(jx_sum(a[0]), jx_scalar(0));
}
static jx_t leaf_id(jx_t x, void *u) {
  (void)u;
  return x;
}
static jx_fn *F1(void) {
  static jx_fn *f;
  if (!f) f = jx_fn_retain(jx_fn_new(ident1, 1, NULL)); /* kept past the case's pool */
  return f;
}
static jx_t sentinel(bool is_sentinel) { return is_sentinel ? jx_error_new("sentinel") : jx_scalar(0); }
/* a jx_fn made from bad arguments is an error function, never NULL: it
 * says why, and calling it gives an error value */
static jx_t fn_sentinel(jx_fn *f) {
  bool is_error_fn = f && jx_fn_error(f) && !jx_ok(jx_call(f, (jx_t[]){jx_scalar(1), jx_scalar(2)}));
  jx_fn_free(f);
  return sentinel(is_error_fn);
}

#define NULL_CASES(C)                                                                                        \
  C(array_shape, jx_array(JX_F32, 1, NULL, (float[]){1}))                                                    \
  C(array_data, jx_array(JX_F32, JX_SHAPE(2), NULL))                                                         \
  C(zeros_shape, jx_zeros(JX_F32, 2, NULL))                                                                  \
  C(ones_shape, jx_ones(JX_F32, 2, NULL))                                                                    \
  C(full_shape, jx_full(JX_F32, 2, NULL, 1))                                                                 \
  C(zeros_like, jx_zeros_like(NULL))                                                                         \
  C(ones_like, jx_ones_like(NULL))                                                                           \
  C(ndim, sentinel(jx_ndim(NULL) == -1))                                                                     \
  C(shape, sentinel(jx_shape(NULL) == NULL))                                                                 \
  C(size, sentinel(jx_size(NULL) == -1))                                                                     \
  C(dtype_of, sentinel(jx_dtype_of(NULL) == JX_DTYPE_COUNT))                                                 \
  C(is_weak, sentinel(!jx_is_weak(NULL)))                                                                    \
  C(dtype_name, sentinel(jx_dtype_name((jx_dtype)99) != NULL))                                               \
  C(dtype_size, sentinel(jx_dtype_size((jx_dtype)99) == 0))                                                  \
  C(read_x, sentinel(jx_read(NULL, JX_F32, (float[2]){0}, 8) != 0))                                          \
  C(read_dst, sentinel(jx_read(X(), JX_F32, NULL, 8) != 0))                                                  \
  C(item, sentinel(isnan(jx_item(NULL))))                                                                    \
  C(to_string, sentinel(to_string_null()))                                                                   \
  C(add_a, jx_add(NULL, X()))                                                                                \
  C(add_b, jx_add(X(), NULL))                                                                                \
  C(pow, jx_pow(NULL, NULL))                                                                                 \
  C(exp, jx_exp(NULL))                                                                                       \
  C(relu, jx_relu(NULL))                                                                                     \
  C(eq, jx_eq(NULL, X()))                                                                                    \
  C(where, jx_where(NULL, X(), X()))                                                                         \
  C(where_b, jx_where(jx_gt(X(), jx_scalar(1)), X(), NULL))                                                  \
  C(astype, jx_astype(NULL, JX_F64))                                                                         \
  C(stop_gradient, jx_stop_gradient(NULL))                                                                   \
  C(sum, jx_sum(NULL))                                                                                       \
  C(mean, jx_mean(NULL))                                                                                     \
  C(max, jx_max(NULL))                                                                                       \
  C(sum_axes_x, jx_sum_axes(NULL, 1, (int[]){0}, false))                                                     \
  C(sum_axes_axes, jx_sum_axes(X(), 1, NULL, false))                                                         \
  C(mean_axes_axes, jx_mean_axes(X(), 1, NULL, true))                                                        \
  C(max_axes_axes, jx_max_axes(X(), 1, NULL, false))                                                         \
  C(min_axes_axes, jx_min_axes(X(), 1, NULL, false))                                                         \
  C(argmax, jx_argmax(NULL, 0, false))                                                                       \
  C(argmin, jx_argmin(NULL, 0, false))                                                                       \
  C(dot, jx_dot(NULL, X()))                                                                                  \
  C(matmul, jx_matmul(X(), NULL))                                                                            \
  C(reshape_x, jx_reshape(NULL, JX_SHAPE(2)))                                                                \
  C(reshape_shape, jx_reshape(X(), 1, NULL))                                                                 \
  C(transpose, jx_transpose(NULL, NULL))                                                                     \
  C(broadcast_to_x, jx_broadcast_to(NULL, JX_SHAPE(2)))                                                      \
  C(broadcast_to_shape, jx_broadcast_to(X(), 2, NULL))                                                       \
  C(expand_dims, jx_expand_dims(NULL, 0))                                                                    \
  C(squeeze, jx_squeeze(NULL, 0))                                                                            \
  C(slice_x, jx_slice(NULL, (int64_t[]){0}, (int64_t[]){1}, NULL))                                           \
  C(slice_start, jx_slice(X(), NULL, (int64_t[]){1}, NULL))                                                  \
  C(slice_stop, jx_slice(X(), (int64_t[]){0}, NULL, NULL))                                                   \
  C(concatenate_xs, jx_concatenate(2, NULL, 0))                                                              \
  C(concatenate_item, jx_concatenate(2, (jx_t[]){X(), NULL}, 0))                                             \
  C(stack_xs, jx_stack(2, NULL, 0))                                                                          \
  C(stack_item, jx_stack(2, (jx_t[]){NULL, X()}, 0))                                                         \
  C(take_x, jx_take(NULL, jx_scalar_int(0), 0))                                                              \
  C(take_idx, jx_take(X(), NULL, 0))                                                                         \
  C(one_hot, jx_one_hot(NULL, 3))                                                                            \
  C(logsumexp, jx_logsumexp(NULL, 0))                                                                        \
  C(softmax, jx_softmax(NULL, 0))                                                                            \
  C(log_softmax, jx_log_softmax(NULL, 0))                                                                    \
  C(tuple_items, jx_tuple(2, NULL))                                                                          \
  C(tuple_item, jx_tuple(2, (jx_t[]){X(), NULL}))                                                            \
  C(list_items, jx_list(1, NULL))                                                                            \
  C(len, sentinel(jx_len(NULL) == -1))                                                                       \
  C(at, jx_at(NULL, 0))                                                                                      \
  C(is_tree, sentinel(!jx_is_tree(NULL)))                                                                    \
  C(tree_map_f, jx_tree_map(NULL, JX_TUPLE(X()), NULL))                                                      \
  C(tree_map_leaf_f, jx_tree_map(NULL, X(), NULL))                                                           \
  C(tree_map_tree, jx_tree_map(leaf_id, NULL, NULL))                                                         \
  C(tree_map2_f, jx_tree_map2(NULL, X(), X(), NULL))                                                         \
  C(tree_map2_a, jx_tree_map2(add2, NULL, X(), NULL))                                                        \
  C(tree_map2_b, jx_tree_map2(add2, X(), NULL, NULL))                                                        \
  C(fn_new, fn_sentinel(jx_fn_new(NULL, 1, NULL)))                                                           \
  C(fn_nargs, sentinel(jx_fn_nargs(NULL) == -1))                                                             \
  C(call_f, jx_call(NULL, (jx_t[]){X()}))                                                                    \
  C(call_args, jx_call(F1(), NULL))                                                                          \
  C(call_arg, jx_call(F1(), (jx_t[]){NULL}))                                                                 \
  C(grad, fn_sentinel(jx_grad(NULL, 0)))                                                                     \
  C(value_and_grad, fn_sentinel(jx_value_and_grad(NULL, 0)))                                                 \
  C(jacfwd, fn_sentinel(jx_jacfwd(NULL, 0)))                                                                 \
  C(jacrev, fn_sentinel(jx_jacrev(NULL, 0)))                                                                 \
  C(hessian, fn_sentinel(jx_hessian(NULL, 0)))                                                               \
  C(jit, fn_sentinel(jx_jit(NULL)))                                                                          \
  C(vmap, fn_sentinel(jx_vmap(NULL, NULL, 0)))                                                               \
  C(partial_f, fn_sentinel(jx_partial(NULL, 0, NULL)))                                                       \
  C(partial_bound, fn_sentinel(jx_partial(F1(), 1, NULL)))                                                   \
  C(grad_call, jx_call(jx_grad(NULL, 0), (jx_t[]){X()}))                                                     \
  C(jvp_f, jx_jvp(NULL, (jx_t[]){X()}, (jx_t[]){X()}))                                                       \
  C(jvp_primals, jx_jvp(F1(), NULL, (jx_t[]){X()}))                                                          \
  C(jvp_tangents, jx_jvp(F1(), (jx_t[]){X()}, NULL))                                                         \
  C(jvp_tangent, jx_jvp(F1(), (jx_t[]){X()}, (jx_t[]){NULL}))                                                \
  C(vjp_f, jx_vjp(NULL, (jx_t[]){X()}, NULL))                                                                \
  C(vjp_primals, jx_vjp(F1(), NULL, NULL))                                                                   \
  C(vjp_out, vjp_null_out())                                                                                 \
  C(jit_compile_f, jx_jit_compile(NULL, (jx_t[]){X()}))                                                      \
  C(jit_compile_args, jit_compile_null_args())                                                               \
  C(make_jaxpr_f, sentinel(make_jaxpr_null(NULL, (jx_t[]){X()})))                                            \
  C(make_jaxpr_args, sentinel(make_jaxpr_null(F1(), NULL)))                                                  \
  C(fn_free, (jx_fn_free(NULL), jx_error_new("sentinel")))                                                   \
  C(cond_pred, jx_cond(NULL, F1(), F1(), 1, (jx_t[]){X()}))                                                  \
  C(cond_true, jx_cond(jx_scalar_of(JX_BOOL, 1), NULL, F1(), 1, (jx_t[]){X()}))                              \
  C(cond_false, jx_cond(jx_scalar_of(JX_BOOL, 1), F1(), NULL, 1, (jx_t[]){X()}))                             \
  C(cond_operands, jx_cond(jx_scalar_of(JX_BOOL, 1), F1(), F1(), 1, NULL))                                   \
  C(cond_operand, jx_cond(jx_scalar_of(JX_BOOL, 1), F1(), F1(), 1, (jx_t[]){NULL}))                          \
  C(switch_index, jx_switch(NULL, 1, (jx_fn *[]){F1()}, 1, (jx_t[]){X()}))                                   \
  C(switch_branches, jx_switch(jx_scalar_int(0), 2, NULL, 1, (jx_t[]){X()}))                                 \
  C(switch_branch, jx_switch(jx_scalar_int(0), 2, (jx_fn *[]){F1(), NULL}, 1, (jx_t[]){X()}))                \
  C(switch_operands, jx_switch(jx_scalar_int(0), 1, (jx_fn *[]){F1()}, 1, NULL))                             \
  C(while_cond, jx_while_loop(NULL, F1(), X()))                                                              \
  C(while_body, jx_while_loop(pred_fn(), NULL, X()))                                                         \
  C(while_init, jx_while_loop(pred_fn(), F1(), NULL))                                                        \
  C(fori_body, jx_fori_loop(0, 2, NULL, X()))                                                                \
  C(fori_init, jx_fori_loop(0, 2, F1(), NULL))                                                               \
  C(scan_f, jx_scan(NULL, X(), X()))                                                                         \
  C(scan_init, jx_scan(F1(), NULL, X()))                                                                     \
  C(scan_xs, jx_scan(F1(), X(), NULL))                                                                       \
  C(scan_ex_f, jx_scan_ex(NULL, X(), NULL, 3, false))                                                        \
  C(scan_ex_init, jx_scan_ex(F1(), NULL, NULL, 3, false))                                                    \
  C(random_key_split, jx_random_split(NULL, 2))                                                              \
  C(random_fold_in, jx_random_fold_in(NULL, 1))                                                              \
  C(random_bits_key, jx_random_bits(NULL, JX_SHAPE(2)))                                                      \
  C(random_bits_shape, jx_random_bits(K(), 2, NULL))                                                         \
  C(random_uniform_key, jx_random_uniform(NULL, JX_F32, JX_SHAPE(2), 0, 1))                                  \
  C(random_uniform_shape, jx_random_uniform(K(), JX_F32, 1, NULL, 0, 1))                                     \
  C(random_normal_shape, jx_random_normal(K(), JX_F32, 1, NULL))                                             \
  C(random_normal_key, jx_random_normal(NULL, JX_F32, JX_SHAPE(2)))                                          \
  C(random_truncated_shape, jx_random_truncated_normal(K(), JX_F32, 1, NULL, -1, 1))                         \
  C(random_gumbel_shape, jx_random_gumbel(K(), JX_F32, 1, NULL))                                             \
  C(random_bernoulli_p, jx_random_bernoulli(K(), JX_SHAPE(2), NULL))                                         \
  C(random_bernoulli_shape, jx_random_bernoulli(K(), 1, NULL, jx_scalar(0.5)))                               \
  C(random_categorical_key, jx_random_categorical(NULL, X(), 0))                                             \
  C(random_categorical_logits, jx_random_categorical(K(), NULL, 0))                                          \
  C(random_randint_shape, jx_random_randint(K(), JX_I32, 1, NULL, 0, 5))                                     \
  C(random_permutation_key, jx_random_permutation(NULL, 3))                                                  \
  C(random_permute_x, jx_random_permute(K(), NULL, 0))                                                       \
  C(random_permute_key, jx_random_permute(NULL, X(), 0))                                                     \
  C(retain, sentinel(jx_retain(NULL) == NULL))                                                               \
  C(release, (jx_release(NULL), jx_error_new("sentinel")))                                                   \
  C(ok, sentinel(!jx_ok(NULL)))                                                                              \
  C(error, sentinel(jx_error(NULL) != NULL))                                                                 \
  C(error_new, jx_error_new(NULL))                                                                           \
  C(get_allocator, sentinel(jx_get_allocator(NULL) != NULL))

static bool to_string_null(void) {
  char *s = jx_to_string(NULL);
  bool ok = s != NULL;
  free(s);
  jx_print(NULL);
  return ok;
}
static jx_t vjp_null_out(void) { return jx_vjp(F1(), (jx_t[]){X()}, NULL); }
static jx_t jit_compile_null_args(void) {
  jx_fn *j = jx_jit(F1());
  jx_t r = jx_jit_compile(j, NULL);
  jx_fn_free(j);
  return r;
}
static bool make_jaxpr_null(jx_fn *f, const jx_t *args) {
  char *s = jx_make_jaxpr(f, args);
  bool ok = !s || strstr(s, "error");
  free(s);
  return ok;
}
static jx_fn *pred_fn(void) {
  static jx_fn *f;
  if (!f) f = jx_fn_retain(jx_fn_new(pred1, 1, NULL)); /* kept past the case's pool */
  return f;
}

#define NULL_CASE_FN(name, expr)                                                                             \
  static jx_t nc_##name(void) { return (expr); }
NULL_CASES(NULL_CASE_FN)
#define NULL_CASE_ROW(name, expr) {#name, nc_##name},
static const struct {
  const char *name;
  jx_t (*run)(void);
} NULL_TABLE[] = {NULL_CASES(NULL_CASE_ROW)};

static void test_null_arguments(void) {
  for (size_t i = 0; i < sizeof NULL_TABLE / sizeof NULL_TABLE[0]; i++) {
    jx_pool_push();
    jx_t r = NULL_TABLE[i].run();
    CHECKF(r && !jx_ok(r) && jx_error(r), "%s: %s", NULL_TABLE[i].name, r ? "not an error value" : "NULL");
    jx_pool_pop();
  }
  jx_fn_free(F1());
  jx_fn_free(pred_fn());
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--interpreted")) {
    test_long_chain(true);
    return check_report("test_regress_crashes (interpreted)");
  }
  if (check_private_cache("crashes")) return 1;
  test_long_chain(false);
  test_long_chain_interpreted(argv[0]);
  test_deep_trees();
  test_deep_nesting();
  test_zero_size_overflow();
  test_slice_limits();
  test_null_arguments();
  check_private_cache_remove();
  return check_report("test_regress_crashes");
}
