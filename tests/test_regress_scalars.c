/* Regressions of issue #14.
 *
 * 1. Weak scalars keep their Python-number value until promotion: a
 *    jx_scalar(0.1) met by an f64 is the f64 0.1, not (float)0.1; a
 *    jx_scalar(1e300) met by an f64 is 1e300, not inf; a
 *    jx_scalar_int(2^40) met by an i64 or an f32 is 2^40, not a saturated
 *    i32 -- eagerly, under jit (compiled C, and interpreted in a child run
 *    with JX_CC=/nonexistent), under grad, jvp and vmap, and as the
 *    literal of the jaxpr. An int too large for the dtype it must take is
 *    an error (JAX's OverflowError), not a saturated value.
 * 2. Reading a traced value (jx_item, jx_read) inside jit, vmap, grad,
 *    jvp, cond or a nested transformation makes the transformation's
 *    result that read's error (JAX's concretization error), naming the
 *    read and the transformation, instead of a result computed from the
 *    NaN the read returned. jx_to_string of a tracer describes it (as
 *    JAX's repr of a tracer does) without failing the transformation.
 *
 * The ASan build checks that nothing leaks. */
#include "check.h"
#include "jx.h"

#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

static const int64_t TWO40 = (int64_t)1 << 40;
static const int64_t TWO53P1 = ((int64_t)1 << 53) + 1; /* not a double */

static double f64_at(jx_t x, int i) {
  double v[8];
  return jx_ok(x) && jx_dtype_of(x) == JX_F64 && !jx_read(x, JX_F64, v, sizeof v) ? v[i] : NAN;
}
static int64_t i64_of(jx_t x) {
  int64_t v = -1;
  return jx_ok(x) && jx_dtype_of(x) == JX_I64 && !jx_read(x, JX_I64, &v, sizeof v) ? v : -1;
}
static float f32_of(jx_t x) {
  float v = NAN;
  return jx_ok(x) && jx_dtype_of(x) == JX_F32 && !jx_read(x, JX_F32, &v, sizeof v) ? v : NAN;
}

/* ------------------------------------------------ the functions under test */
static jx_t add_tenth(const jx_t *a, void *u) {
  (void)u;
  return jx_add(a[0], jx_scalar(0.1));
}
static jx_t mul_1e300(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(a[0], jx_scalar(1e300));
}
static jx_t add_2_40(const jx_t *a, void *u) {
  (void)u;
  return jx_add(a[0], jx_scalar_int(TWO40));
}
static jx_t add_2_53p1(const jx_t *a, void *u) {
  (void)u;
  return jx_add(a[0], jx_scalar_int(TWO53P1));
}
static jx_t sum_tenth(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_mul(a[0], jx_scalar(0.1)));
}
static jx_t sum_1e300(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_mul(a[0], jx_scalar(1e300)));
}
/* s is a weak scalar argument (a jvp tracer over one); c an f64 constant */
static jx_t f64_plus_arg(const jx_t *a, void *u) {
  (void)u;
  return jx_add(jx_scalar_of(JX_F64, 1.0), a[0]);
}

/* two weak scalars that round to the same f32, each promoted through a
 * jvp tracer (under jit: a convert staged on the weak constant, which
 * jit folds from the exact value) stay two values */
static jx_t two_close(const jx_t *a, void *u) {
  jx_fn *p = u;
  jx_t r1 = jx_jvp(p, (jx_t[]){jx_scalar(0.1)}, (jx_t[]){jx_scalar(1.0)});
  jx_t r2 = jx_jvp(p, (jx_t[]){jx_scalar(0.1 + 1e-12)}, (jx_t[]){jx_scalar(1.0)});
  return jx_add(jx_sub(jx_at(r2, 0), jx_at(r1, 0)), a[0]);
}

static jx_t x64(double v) { return jx_array(JX_F64, 1, (int64_t[]){1}, &v); }
static jx_t xi64(int64_t v) { return jx_array(JX_I64, 1, (int64_t[]){1}, &v); }
static jx_t xf32(float v) { return jx_array(JX_F32, 1, (int64_t[]){1}, &v); }

/* The four cases of the issue through jx_call(g) (g: f itself or a
 * transformation of it); `how` names g in messages. */
static void check_promotions(const char *how, jx_fn *(*wrap)(jx_fn *)) {
  jx_pool_push();
  jx_fn *f1 = wrap(jx_fn_new(add_tenth, 1, NULL)), *f2 = wrap(jx_fn_new(mul_1e300, 1, NULL));
  jx_fn *f3 = wrap(jx_fn_new(add_2_40, 1, NULL)), *f4 = wrap(jx_fn_new(add_2_53p1, 1, NULL));
  double r1 = f64_at(JX_CALL(f1, x64(1.0)), 0), r2 = f64_at(JX_CALL(f2, x64(2.0)), 0);
  CHECKF(r1 == 1.0 + 0.1, "%s: f64 1 + jx_scalar(0.1) = %.17g", how, r1);
  CHECKF(r2 == 2.0 * 1e300, "%s: f64 2 * jx_scalar(1e300) = %.17g", how, r2);
  int64_t r3 = i64_of(JX_CALL(f3, xi64(5))), r4 = i64_of(JX_CALL(f4, xi64(2)));
  CHECKF(r3 == TWO40 + 5, "%s: i64 5 + jx_scalar_int(2^40) = %lld", how, (long long)r3);
  CHECKF(r4 == TWO53P1 + 2, "%s: i64 2 + jx_scalar_int(2^53+1) = %lld", how, (long long)r4);
  float r5 = f32_of(JX_CALL(f3, xf32(0.0f)));
  CHECKF(r5 == 1099511627776.0f, "%s: f32 0 + jx_scalar_int(2^40) = %.9g", how, r5);
  /* a weak scalar still adopts the other operand's type */
  jx_t r6 = JX_CALL(f1, xf32(1.0f));
  CHECKF(jx_dtype_of(r6) == JX_F32 && f32_of(r6) == 1.0f + 0.1f, "%s: f32 1 + jx_scalar(0.1)", how);
  jx_t big = JX_CALL(f3, jx_array(JX_I32, 1, (int64_t[]){1}, (int32_t[]){1}));
  EXPECT_ERROR(big, "add", "1099511627776", "too large for i32");
  jx_fn_free(f1), jx_fn_free(f2), jx_fn_free(f3), jx_fn_free(f4);
  jx_pool_pop();
}

static jx_fn *as_is(jx_fn *f) { return f; }
static jx_fn *jitted(jx_fn *f) {
  jx_fn *j = jx_jit(f);
  jx_fn_free(f);
  return j;
}
static jx_fn *vmapped(jx_fn *f) {
  jx_fn *v = jx_vmap(f, NULL, 0);
  jx_fn_free(f);
  return v;
}
static jx_fn *jit_of_vmap(jx_fn *f) { return jitted(vmapped(f)); }

static void test_eager_ops(void) {
  jx_pool_push();
  /* every promoting op, not only add: where, maximum, astype */
  jx_t c = jx_array(JX_BOOL, 1, (int64_t[]){1}, (uint8_t[]){0});
  CHECK(f64_at(jx_where(c, x64(7.0), jx_scalar(0.1)), 0) == 0.1);
  CHECK(f64_at(jx_maximum(x64(-1.0), jx_scalar(0.1)), 0) == 0.1);
  CHECK(jx_dtype_of(jx_astype(jx_scalar(0.1), JX_F64)) == JX_F64);
  CHECK(f64_at(jx_reshape(jx_astype(jx_scalar(0.1), JX_F64), 1, (int64_t[]){1}), 0) == 0.1);
  CHECK(i64_of(jx_reshape(jx_astype(jx_scalar_int(TWO53P1), JX_I64), 1, (int64_t[]){1})) == TWO53P1);
  /* an int too large for the dtype it ends up in: an error naming the op */
  jx_t u = jx_array(JX_U32, 1, (int64_t[]){1}, (uint32_t[]){1});
  EXPECT_ERROR(jx_add(u, jx_scalar_int(-1)), "add", "-1", "too large for u32");
  EXPECT_ERROR(jx_mul(jx_scalar_int(TWO40), jx_scalar_int(1)), "mul", "too large for i32");
  EXPECT_ERROR(jx_neg(jx_scalar_int(TWO40)), "neg", "too large for i32");
  CHECK(isnan(jx_item(jx_scalar_int(TWO40))));
  int32_t small;
  CHECK(jx_read(jx_scalar_int(TWO40), JX_I32, &small, sizeof small) != 0);
  CHECK(jx_item(jx_scalar_int(-7)) == -7 && jx_item(jx_add(jx_scalar_int(2), jx_scalar_int(3))) == 5);
  jx_pool_pop();
}

/* ------------------------------------------- jaxpr literals, rendered C */
static void check_jaxpr_has(jx_body body, jx_t arg, const char *want) {
  jx_fn *f = jx_fn_new(body, 1, NULL);
  char *s = jx_make_jaxpr(f, &arg);
  CHECKF(s && strstr(s, want) && !strstr(s, "convert"), "jaxpr %s lacks %s (or converts)", s ? s : "NULL",
         want);
  free(s);
  jx_fn_free(f);
}

static void test_jaxpr_literals(void) {
  jx_pool_push();
  check_jaxpr_has(add_tenth, jx_scalar_of(JX_F64, 0), "add a 0.1:f64[]");
  check_jaxpr_has(mul_1e300, jx_scalar_of(JX_F64, 0), "mul a 1e+300:f64[]");
  check_jaxpr_has(add_2_40, jx_scalar_of(JX_I64, 0), "add a 1099511627776:i64[]");
  check_jaxpr_has(add_2_53p1, jx_scalar_of(JX_I64, 0), "add a 9007199254740993:i64[]");
  check_jaxpr_has(add_2_40, jx_scalar_of(JX_F32, 0), "add a 1.0995116e+12:f32[]"); /* numpy's repr */
  jx_pool_pop();
}

/* --------------------------------------------------- grad, jvp, vmap */
static void test_autodiff(void) {
  jx_pool_push();
  jx_fn *s1 = jx_fn_new(sum_tenth, 1, NULL), *s2 = jx_fn_new(sum_1e300, 1, NULL);
  jx_fn *g1 = jx_grad(s1, 0), *g2 = jx_grad(s2, 0);
  jx_fn *jg1 = jx_jit(g1), *jg2 = jx_jit(g2);
  double v[2] = {1.0, 2.0};
  jx_t x = jx_array(JX_F64, 1, (int64_t[]){2}, v);
  CHECK(f64_at(JX_CALL(g1, x), 1) == 0.1 && f64_at(JX_CALL(jg1, x), 1) == 0.1);
  CHECK(f64_at(JX_CALL(g2, x), 0) == 1e300 && f64_at(JX_CALL(jg2, x), 0) == 1e300);
  /* the weak scalar as the differentiated argument: a jvp tracer over it
   * is promoted by convert's rules, from the exact value */
  jx_fn *p = jx_fn_new(f64_plus_arg, 1, NULL);
  jx_t r = jx_jvp(p, (jx_t[]){jx_scalar(0.1)}, (jx_t[]){jx_scalar(1.0)});
  double prim = jx_ok(r) ? jx_item(jx_at(r, 0)) : NAN;
  CHECKF(prim == 1.0 + 0.1, "jvp primal %.17g", prim);
  jx_fn *tc = jx_fn_new(two_close, 1, p), *jtc = jx_jit(tc);
  double want = ((1.0 + (0.1 + 1e-12)) - (1.0 + 0.1)) + 0.0;
  double d1 = f64_at(JX_CALL(tc, x64(0.0)), 0), d2 = f64_at(JX_CALL(jtc, x64(0.0)), 0);
  CHECKF(d1 == want && d2 == want, "two close weak scalars: eager %.17g jit %.17g want %.17g", d1, d2, want);
  jx_fn_free(tc), jx_fn_free(jtc);
  jx_fn_free(s1), jx_fn_free(s2), jx_fn_free(g1), jx_fn_free(g2), jx_fn_free(jg1), jx_fn_free(jg2),
      jx_fn_free(p);
  jx_pool_pop();
}

/* ------------------------------------------- 2: reads of traced values */
typedef enum { R_ITEM, R_READ, R_STRING } read_kind;
static const char *const READ_NAME[] = {"jx_item", "jx_read", "jx_to_string"};
static char last_string[256];

/* x * (read(x) is NaN ? 1 : 2): a normal-looking result whatever the read
 * gives, as C code that branches on a value would compute */
static jx_t reads(const jx_t *a, void *u) {
  read_kind k = *(const read_kind *)u;
  jx_t x = a[0];
  double v = 0;
  if (k == R_ITEM) {
    v = jx_item(jx_sum(x));
  } else if (k == R_READ) {
    double buf[8];
    v = jx_read(x, JX_F64, buf, sizeof buf) ? NAN : buf[0];
  } else {
    char *s = jx_to_string(x);
    snprintf(last_string, sizeof last_string, "%s", s ? s : "");
    free(s);
  }
  return jx_sum(jx_mul(x, jx_scalar(isnan(v) ? 1.0 : 2.0)));
}

/* vmap of a function whose grad reads the vmap's (closed-over) tracer */
static jx_t read_outer(const jx_t *a, void *u) {
  jx_t outer = *(jx_t *)u;
  (void)jx_item(outer); /* under jit an op on it would be staged: a tracer */
  return jx_sum(jx_mul(a[0], a[0]));
}
static jx_t grad_reading_outer(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0];
  jx_fn *f = jx_fn_new(read_outer, 1, &x);
  jx_fn *g = jx_grad(f, 0);
  jx_t r = JX_CALL(g, jx_scalar_of(JX_F32, 3.0));
  jx_fn_free(g);
  jx_fn_free(f);
  return jx_add(r, jx_sum(x));
}

/* cond whose true branch reads its operand */
static jx_t cond_reading(const jx_t *a, void *u) {
  jx_fn *t = jx_fn_new(reads, 1, u), *f = jx_fn_new(reads, 1, u);
  jx_t r = jx_cond(jx_scalar_of(JX_BOOL, 1), t, f, 1, a);
  jx_fn_free(t);
  jx_fn_free(f);
  return r;
}

static int handler_calls;
static void count_errors(const char *msg, void *u) { (void)msg, (void)u, handler_calls++; }

static void check_read(read_kind k, const char *how, jx_fn *g, const char *names) {
  float v[2] = {1, 2};
  jx_t x = jx_array(JX_F32, 1, (int64_t[]){2}, v);
  last_string[0] = 0;
  jx_t r = strcmp(how, "jvp") ? JX_CALL(g, x) : jx_jvp(g, &x, &x);
  if (k == R_STRING && !strcmp(how, "jit again")) {
    CHECK(jx_ok(r) && !last_string[0]); /* the cached trace: f does not run */
  } else if (k == R_STRING) {
    /* a description of the tracer, naming the transformation (its first
     * word: cond's branches say which); no failure */
    char want[64];
    snprintf(want, sizeof want, "<%.*s", (int)strcspn(names, " "), names);
    CHECKF(jx_ok(r), "%s of jx_to_string: %s", how, jx_error(r));
    CHECKF(strstr(last_string, want) == last_string && strstr(last_string, " tracer f32["),
           "%s: jx_to_string gave \"%s\", want \"%s ... tracer f32[...\"", how, last_string, want);
  } else {
    EXPECT_ERROR(r, READ_NAME[k], names, "concretization");
  }
}

static void test_reads(void) {
  for (read_kind k = R_ITEM; k <= R_STRING; k++) {
    jx_pool_push();
    jx_fn *f = jx_fn_new(reads, 1, &k);
    jx_fn *jf = jx_jit(f), *vf = jx_vmap(f, NULL, 0), *gf = jx_grad(f, 0);
    jx_fn *jf2 = jx_jit(f), *gjf = jx_grad(jf2, 0); /* a fresh jit: traced under grad */
    jx_fn *cf = jx_fn_new(cond_reading, 1, &k);
    int before = handler_calls;
    check_read(k, "jit", jf, "jit");
    check_read(k, "jit again", jf, "jit"); /* nothing poisoned was cached */
    check_read(k, "vmap", vf, "vmap");
    check_read(k, "grad", gf, "grad");
    check_read(k, "jvp", f, "jvp");
    check_read(k, "grad(jit)", gjf, "jit");
    check_read(k, "cond", cf, "cond (true branch)");
    /* each failing read reports once through the handler: at the read */
    if (k != R_STRING) CHECKF(handler_calls - before == 7, "%d handler calls", handler_calls - before);
    jx_fn_free(f), jx_fn_free(jf), jx_fn_free(vf), jx_fn_free(gf), jx_fn_free(gjf), jx_fn_free(jf2),
        jx_fn_free(cf);
    jx_pool_pop();
  }
  jx_pool_push();
  /* reading a concrete value inside a transformation is fine */
  jx_t c = jx_scalar_of(JX_F32, 4.0);
  jx_fn *f = jx_fn_new(read_outer, 1, &c), *jf = jx_jit(f);
  CHECK(jx_item(JX_CALL(jf, jx_scalar_of(JX_F32, 3.0))) == 9.0f);
  /* a read of an enclosing transformation's tracer fails that one */
  jx_fn *o = jx_fn_new(grad_reading_outer, 1, NULL), *vo = jx_vmap(o, NULL, 0);
  EXPECT_ERROR(JX_CALL(vo, jx_array(JX_F32, 1, (int64_t[]){2}, (float[]){1, 2})), "jx_item", "vmap");
  jx_fn_free(f), jx_fn_free(jf), jx_fn_free(o), jx_fn_free(vo);
  jx_pool_pop();
}

/* ----------------------------------------------------------------- main */
static int run_interpreted(const char *self) {
  pid_t pid = fork();
  if (pid == 0) {
    setenv("JX_CC", "/nonexistent", 1);
    execl(self, self, "--interpreted", (char *)NULL);
    _exit(127);
  }
  int st = 0;
  return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(int argc, char **argv) {
  if (check_private_cache("scalars")) return 1;
  jx_set_error_handler(count_errors, NULL);
  bool child = argc > 1 && !strcmp(argv[1], "--interpreted");
  check_promotions(child ? "jit (interpreted)" : "jit", jitted);
  check_promotions(child ? "jit(vmap) (interpreted)" : "jit(vmap)", jit_of_vmap);
  if (!child) {
    check_promotions("eager", as_is);
    check_promotions("vmap", vmapped);
    test_eager_ops();
    test_jaxpr_literals();
    test_autodiff();
    test_reads();
    int rc = run_interpreted(argv[0]);
    CHECKF(rc == 0, "the interpreted run (JX_CC=/nonexistent) exited %d", rc);
  }
  check_private_cache_remove();
  return check_report(child ? "test_regress_scalars (interpreted)" : "test_regress_scalars");
}
