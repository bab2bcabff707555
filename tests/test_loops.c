/* Control flow compiled into the generated C (LOOP kernels, ir/loop.h):
 * scan, while and cond under jit become real loops and branches around the
 * bodies' kernels, not calls back into the interpreter and not unrolled.
 *
 * Structure: the fused program of a jitted scan/while/cond has one LOOP
 * kernel whose bodies are programs (nested loops nest), and the rendered C
 * has the loop with the step count as a bound, the same size of source for
 * 10 and 10000 steps. Values: the edge cases of the loop driver -- carries
 * passed through, swapped, taken from an x slice or a constant, repeated
 * outputs, ys that are inputs, reverse scans, 0 and 1 steps, while loops
 * that run 0 times, cond branches returning their operands, nested loops,
 * and grad/vmap of loops -- each jitted, against the same function run
 * eagerly, with loops compiled and with JX_JIT_LOOPS=0. */
#include "api/trace_fn.h"
#include "check.h"
#include "compile/compile.h"
#include "compile/passes.h"
#include "jit_build.h"
#include "jit_vs_eager.h"

#include <stdlib.h>
#include <string.h>

#define F64(v) jx_scalar_of(JX_F64, (v))

static jx_t arange(int64_t n, double scale) { return jx_mul(jx_arange(JX_F64, 0, (double)n, 1), F64(scale)); }

#define CHECK_JIT(f, n, ...)                                                                                 \
  do {                                                                                                       \
    double d_ = jit_vs_eager((f), (jx_t[]){__VA_ARGS__});                                                    \
    CHECKF(d_ >= 0 && d_ < 1e-12, "%s: jit vs eager differ by %g", #f, d_);                                  \
  } while (0)

/* --------------------------------------------------------------- bodies */
/* carry (a, b, c), x: a += x, b and c swap, y = (a, b-in, x) */
static jx_t swap_body(const jx_t *a, void *u) {
  (void)u;
  jx_t c = a[0], x = a[1];
  jx_t na = jx_add(jx_at(c, 0), x);
  return JX_TUPLE(JX_TUPLE(na, jx_at(c, 2), jx_at(c, 1)), JX_TUPLE(na, jx_at(c, 1), x));
}
/* carry (a, k, z): a *= 1.5; k passed through; z = the x slice (a carry from xs) */
static jx_t pass_body(const jx_t *a, void *u) {
  (void)u;
  jx_t c = a[0];
  return JX_TUPLE(JX_TUPLE(jx_mul(jx_at(c, 0), F64(1.5)), jx_at(c, 1), a[1]), jx_at(c, 0));
}
/* carry c: c + 1; y = a constant array */
static jx_t const_body(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_add(a[0], F64(1)), jx_ones(JX_F64, JX_SHAPE(2)));
}

static jx_t scan_swap(const jx_t *a, void *u) {
  bool rev = u != NULL;
  jx_fn *s = jx_fn_new(swap_body, 2, NULL);
  jx_t r = jx_scan_ex(s, JX_TUPLE(a[0], a[1], a[2]), a[3], -1, rev);
  jx_fn_free(s);
  return r;
}
static jx_t scan_pass(const jx_t *a, void *u) {
  (void)u;
  jx_fn *s = jx_fn_new(pass_body, 2, NULL);
  jx_t r = jx_scan(s, JX_TUPLE(a[0], a[1], jx_zeros(JX_F64, JX_SHAPE(3))), a[2]);
  jx_fn_free(s);
  return r;
}
static jx_t scan_const(const jx_t *a, void *u) {
  (void)u;
  jx_fn *s = jx_fn_new(const_body, 2, NULL);
  jx_t r = jx_scan(s, a[0], a[1]);
  jx_fn_free(s);
  return r;
}

/* scan of a scan: the inner one sums each row, the outer accumulates */
static jx_t row_body(const jx_t *a, void *u) {
  (void)u;
  jx_t c = jx_add(a[0], jx_sin(a[1]));
  return JX_TUPLE(c, jx_mul(c, a[1]));
}
static jx_t outer_body(const jx_t *a, void *u) {
  (void)u;
  jx_fn *s = jx_fn_new(row_body, 2, NULL);
  jx_t r = jx_scan(s, jx_mul(a[0], F64(0.5)), a[1]);
  jx_fn_free(s);
  return JX_TUPLE(jx_at(r, 0), jx_sum(jx_at(r, 1)));
}
static jx_t scan_nested(const jx_t *a, void *u) {
  (void)u;
  jx_fn *s = jx_fn_new(outer_body, 2, NULL);
  jx_t r = jx_scan(s, a[0], a[1]);
  jx_fn_free(s);
  return JX_TUPLE(jx_sum(jx_at(r, 0)), jx_at(r, 1));
}
static jx_t scan_nested_loss(const jx_t *a, void *u) { return jx_at(scan_nested(a, u), 0); }

/* while: (i, a, b) -> (i + 1, b, a + b) while i < n: Fibonacci with swapped carries */
static jx_t fib_cond(const jx_t *a, void *u) {
  return jx_lt(jx_at(a[0], 0), jx_scalar_of(JX_I32, *(const int *)u));
}
static jx_t fib_body(const jx_t *a, void *u) {
  (void)u;
  jx_t c = a[0];
  return JX_TUPLE(jx_add(jx_at(c, 0), jx_scalar_of(JX_I32, 1)), jx_at(c, 2),
                  jx_add(jx_at(c, 1), jx_at(c, 2)));
}
static jx_t fib(const jx_t *a, void *u) {
  jx_fn *c = jx_fn_new(fib_cond, 1, u), *b = jx_fn_new(fib_body, 1, NULL);
  jx_t r = jx_while_loop(c, b, JX_TUPLE(jx_scalar_of(JX_I32, 0), a[0], a[1]));
  jx_fn_free(c), jx_fn_free(b);
  return r;
}

/* cond whose branches return operands unchanged, swapped, or computed */
static jx_t br_a(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(a[0], a[1], jx_mul(a[0], a[1]));
}
static jx_t br_b(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(a[1], a[0], jx_add(a[0], a[0]));
}
static jx_t cond2(const jx_t *a, void *u) {
  (void)u;
  jx_fn *t = jx_fn_new(br_a, 2, NULL), *f = jx_fn_new(br_b, 2, NULL);
  jx_t r = jx_cond(jx_gt(jx_sum(a[0]), jx_scalar(0)), t, f, 2, a);
  jx_fn_free(t), jx_fn_free(f);
  return r;
}

/* a while inside a scan inside a cond */
static jx_t halve_cond(const jx_t *a, void *u) {
  (void)u;
  return jx_gt(jx_at(a[0], 0), F64(1));
}
static jx_t halve_body(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_mul(jx_at(a[0], 0), F64(0.5)), jx_add(jx_at(a[0], 1), jx_scalar_of(JX_I32, 1)));
}
static jx_t deep_body(const jx_t *a, void *u) {
  (void)u;
  jx_fn *c = jx_fn_new(halve_cond, 1, NULL), *b = jx_fn_new(halve_body, 1, NULL);
  jx_t w = jx_while_loop(c, b, JX_TUPLE(jx_add(a[0], jx_abs(a[1])), jx_scalar_of(JX_I32, 0)));
  jx_fn_free(c), jx_fn_free(b);
  return JX_TUPLE(jx_at(w, 0), jx_at(w, 1));
}
static jx_t deep_true(const jx_t *a, void *u) {
  (void)u;
  jx_fn *s = jx_fn_new(deep_body, 2, NULL);
  jx_t r = jx_scan(s, a[0], a[1]);
  jx_fn_free(s);
  return JX_TUPLE(jx_at(r, 0), jx_astype(jx_at(r, 1), JX_F64));
}
static jx_t deep_false(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(a[0], jx_zeros(JX_F64, 1, jx_shape(a[1])));
}
static jx_t deep(const jx_t *a, void *u) {
  (void)u;
  jx_fn *t = jx_fn_new(deep_true, 2, NULL), *f = jx_fn_new(deep_false, 2, NULL);
  jx_t r = jx_cond(jx_gt(a[0], F64(0)), t, f, 2, a);
  jx_fn_free(t), jx_fn_free(f);
  return r;
}

static void test_values(void) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(scan_swap, 4, NULL), *fr = jx_fn_new(scan_swap, 4, (void *)1);
  jx_t a = arange(3, 0.5), b = arange(3, -1), c = jx_ones(JX_F64, JX_SHAPE(3));
  for (int n = 0; n <= 5; n++) { /* 0 and 1 steps, odd and even (the last step's buffer) */
    jx_t xs = jx_reshape(arange(3 * n, 0.25), JX_SHAPE(n, 3));
    CHECK_JIT(f, 4, a, b, c, xs);
    CHECK_JIT(fr, 4, a, b, c, xs);
  }
  jx_fn_free(f), jx_fn_free(fr);

  f = jx_fn_new(scan_pass, 3, NULL);
  for (int n = 0; n <= 3; n++)
    CHECK_JIT(f, 3, arange(3, 1), F64(7), jx_reshape(arange(3 * n, 2), JX_SHAPE(n, 3)));
  jx_fn_free(f);

  f = jx_fn_new(scan_const, 2, NULL);
  CHECK_JIT(f, 2, F64(1), arange(4, 1));
  jx_fn_free(f);

  f = jx_fn_new(scan_nested, 2, NULL);
  jx_t h = arange(2, 0.3), X = jx_reshape(arange(4 * 5 * 2, 0.1), JX_SHAPE(4, 5, 2));
  CHECK_JIT(f, 2, h, X);
  jx_fn_free(f);
  /* grad of the nested scan (a reverse scan of transposed bodies) and vmap of it */
  f = jx_fn_new(scan_nested_loss, 2, NULL);
  jx_fn *g = jx_grad(f, 0), *vg = jx_vmap(g, (int[]){0, JX_NONE}, 0);
  CHECK_JIT(g, 2, h, X);
  CHECK_JIT(vg, 2, jx_reshape(arange(6, 0.2), JX_SHAPE(3, 2)), X);
  jx_fn_free(vg), jx_fn_free(g), jx_fn_free(f);

  for (int n = 0; n <= 3; n++) { /* 0 to 3 iterations: both parities, and none */
    f = jx_fn_new(fib, 2, &n);
    CHECK_JIT(f, 2, arange(2, 1), jx_add(arange(2, 1), F64(1)));
    jx_fn *jf = jx_jit(f);
    jx_t r = JX_CALL(jf, F64(0), F64(1));
    static const double fibs[] = {1, 1, 2, 3};
    CHECKF(jx_ok(r) && jx_item(jx_at(r, 2)) == fibs[n], "fib %d", n);
    jx_fn_free(jf), jx_fn_free(f);
  }

  f = jx_fn_new(cond2, 2, NULL);
  CHECK_JIT(f, 2, arange(3, 1), arange(3, 2));
  CHECK_JIT(f, 2, arange(3, -1), arange(3, 2));
  jx_fn_free(f);

  f = jx_fn_new(deep, 2, NULL);
  CHECK_JIT(f, 2, F64(3), arange(5, 7));
  CHECK_JIT(f, 2, F64(-3), arange(5, 7));
  jx_fn *vf = jx_vmap(f, (int[]){0, JX_NONE}, 0); /* batched predicate: select of both branches */
  CHECK_JIT(vf, 2, jx_array(JX_F64, JX_SHAPE(3), (double[]){2, -1, 40}), arange(5, 7));
  jx_fn_free(vf), jx_fn_free(f);
  jx_pool_pop();
}

/* ------------------------------------------------------------ structure */
static jx_t cumsum_step(const jx_t *a, void *u) {
  (void)u;
  jx_t c = jx_add(a[0], jx_tanh(a[1]));
  return JX_TUPLE(c, c);
}
static jx_t cumsum(const jx_t *a, void *u) {
  (void)u;
  jx_fn *s = jx_fn_new(cumsum_step, 2, NULL);
  jx_t r = jx_at(jx_scan(s, jx_zeros(JX_F64, JX_SHAPE(4)), a[0]), 1);
  jx_fn_free(s);
  return r;
}

/* the rendered C of f at args, or NULL */
static char *render(jx_fn *f, const jx_t *args, jx_program **prog) {
  built b = build(f, args);
  jx_t rerr = NULL;
  char *src = b.p ? jx_cpu_backend.render(b.p, &rerr) : NULL;
  CHECKF(src != NULL, "render: %s", b.err ? jx_error(b.err) : rerr ? jx_error(rerr) : "failed");
  *prog = b.p; /* the caller frees the program */
  b.p = NULL;
  built_free(&b);
  return src;
}

/* a carry returned unchanged becomes a constant of the scan (JAX's
 * loop-invariant residuals): scan_pass carries (a, k, z) with k invariant */
static void test_invariant_carries(void) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(scan_pass, 3, NULL);
  jx_t args[3] = {arange(3, 1), F64(7), jx_reshape(arange(6, 2), JX_SHAPE(2, 3))};
  jx_t err = NULL;
  jx_jaxpr *j = jx_trace_to_jaxpr(f, args, NULL, &err);
  CHECKF(j != NULL, "%s", jx_error(err));
  int found = 0;
  for (int e = 0; j && e < j->neqn; e++)
    if (j->eqns[e].prim == JX_P_scan) {
      found++;
      const jx_params *pa = &j->eqns[e].params;
      CHECKF(pa->scan.nconst == 2 && pa->scan.ncarry == 2 && j->eqns[e].nout == 3, /* consts: 1.5 and k */
             "scan with %d consts, %d carries, %d outputs (want 2, 2, 3)", pa->scan.nconst, pa->scan.ncarry,
             j->eqns[e].nout);
    }
  CHECK(found == 1);
  if (j) jx_jaxpr_release(j);
  jx_fn_free(f);
  jx_pool_pop();
}

static void test_structure(void) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(cumsum, 1, NULL);
  size_t len[2] = {0, 0};
  for (int t = 0; t < 2; t++) {
    int n = t ? 10000 : 10;
    jx_t x = jx_reshape(arange(4 * n, 1e-3), 2, (int64_t[]){n, 4});
    jx_program *p;
    char *src = render(f, &x, &p);
    if (!src) continue;
    CHECKF(p->nkernel == 1 && p->kernels[0].kind == JX_LK_LOOP && p->kernels[0].loop.nsub == 1 &&
               p->nall == 2,
           "%d kernels, first of kind %d, %d programs", p->nkernel, p->nkernel ? (int)p->kernels[0].kind : -1,
           p->nall);
    char want[64];
    snprintf(want, sizeof want, "const int64_t n = %dLL;", n);
    CHECKF(strstr(src, want) && strstr(src, "for (int64_t it = 0; it < n; it++)") &&
               strstr(src, "p1_run(s0, rt)"),
           "no loop of %d steps in the generated C", n);
    CHECKF(strstr(src, "tanh_f64"), "the body's kernel is not in the generated C");
    len[t] = strlen(src);
    jx_free(src);
    jx_program_free(p);
  }
  /* the same code whatever the length: only the step count's digits
   * differ, in the comment and the bound n (2 x 3) */
  CHECKF(len[1] - len[0] == 6, "source grew from %zu to %zu bytes", len[0], len[1]);
  jx_fn_free(f);

  /* nesting: a while inside a scan inside a cond -> LOOP(cond) > LOOP(scan) > LOOP(while) */
  f = jx_fn_new(deep, 2, NULL);
  jx_program *p;
  char *src = render(f, (jx_t[]){F64(3), arange(5, 7)}, &p);
  if (src) {
    CHECKF(p->nall == 6, "%d programs (want 6: root, 2 branches, scan body, while cond and body)", p->nall);
    CHECK(strstr(src, "/* cond */") && strstr(src, "/* scan, 5 steps */") && strstr(src, "/* while */"));
    jx_free(src);
    jx_program_free(p);
  }
  jx_fn_free(f);
  jx_pool_pop();
}

int main(void) {
  if (check_private_cache("test-loops")) return 1;
  test_structure();
  test_invariant_carries();
  test_values();
  /* the same values with control flow left as calls into the runtime
   * (what runs when a body cannot be compiled); this path once freed a
   * scan's x-slice views into the buffer cache (scan_pass) */
  setenv("JX_JIT_LOOPS", "0", 1);
  test_values();
  unsetenv("JX_JIT_LOOPS");
  check_private_cache_remove();
  return check_report("loops");
}
