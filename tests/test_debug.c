/* Debugging (issue 21): JX_DEBUG_NANS for eager ops, vmapped code and
 * jitted programs (re-run op by op to name the equation); errors naming
 * the functions they were raised in; make_jaxpr as an evaluable function
 * value. */
#include "check.h"

static float first(jx_t x) {
  float v = NAN;
  jx_read(x, JX_F32, &v, sizeof v);
  return v;
}
static jx_t vec(float a, float b, float c) { return jx_array(JX_F32, JX_SHAPE(3), (float[]){a, b, c}); }

/* log(2x - 10) + 1: a NaN for x < 5 made by log, the third equation */
static jx_t log_body(const jx_t *a, void *u) {
  (void)u;
  return jx_add(jx_log(jx_sub(jx_mul(a[0], jx_scalar(2)), jx_scalar(10))), jx_scalar(1));
}

static void test_nans_eager(void) {
  jx_pool_push();
  jx_t z = vec(0, 1, 2);
  CHECK(isnan(first(jx_div(z, z)))); /* off: a NaN, no error */
  CHECK(!jx_set_debug_nans(true));
  EXPECT_ERROR(jx_div(z, z), "debug_nans: div made a NaN", "= div a:f32[3] b:f32[3]");
  jx_t nan = vec(NAN, 1, 2);
  CHECK(jx_ok(jx_add(nan, jx_scalar(1)))); /* the NaN was in an input: not new */
  CHECK(jx_ok(jx_div(vec(1, 2, 3), vec(1, 1, 1))));
  EXPECT_ERROR(jx_sqrt(vec(1, -1, 4)), "sqrt made a NaN");
  /* vmapped: the batched op is the one checked */
  jx_fn *f = jx_fn_new(log_body, 1, NULL);
  jx_fn *vf = jx_vmap(f, (int[]){0}, 0);
  EXPECT_ERROR(JX_CALL(vf, vec(6, 1, 7)), "debug_nans: log made a NaN");
  CHECK(jx_ok(JX_CALL(vf, vec(6, 8, 7))));
  CHECK(jx_set_debug_nans(false));
  CHECK(isnan(first(jx_div(z, z))));
  jx_pool_pop();
}

static void test_nans_jit(void) {
  jx_pool_push();
  jx_fn *jf = jx_jit(jx_fn_new(log_body, 1, NULL));
  jx_t x = vec(1, 6, 7);
  CHECK(isnan(first(JX_CALL(jf, x)))); /* off: compiled, NaN out */
  jx_set_debug_nans(true);
  jx_t r = JX_CALL(jf, x);
  EXPECT_ERROR(r, "in a jitted program, equation 2 made the first NaN", "= log ", "log made a NaN");
  CHECK(jx_ok(JX_CALL(jf, vec(6, 7, 8))));
  CHECK(jx_ok(JX_CALL(jf, vec(NAN, 7, 8)))); /* NaN given, not made */
  /* donated arguments are not reused while on: the re-run reads them */
  jx_jit_options o = {.ndonate = 1, .donate_argnums = (int[]){0}};
  jx_fn *jd = jx_jit_ex(jx_fn_new(log_body, 1, NULL), &o);
  EXPECT_ERROR(JX_CALL(jd, vec(1, 6, 7)), "equation 2 made the first NaN", "= log ");
  jx_set_debug_nans(false);
  jx_pool_pop();
}

/* a shape error raised inside the innermost function */
static jx_t bad_body(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_add(a[0], jx_zeros(JX_F32, JX_SHAPE(2))));
}

static int count(const char *s, const char *sub) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, sub)); p++) n++;
  return n;
}

static void test_names(void) {
  jx_pool_push();
  jx_fn *loss = jx_fn_new(bad_body, 1, NULL);
  CHECK(strcmp(jx_fn_name(loss), "function") == 0);
  jx_fn_set_name(loss, "loss");
  CHECK(strcmp(jx_fn_name(loss), "loss") == 0);
  jx_t x = jx_zeros(JX_F32, JX_SHAPE(4, 3));
  EXPECT_ERROR(JX_CALL(loss, jx_zeros(JX_F32, JX_SHAPE(3))), "add", "(in loss)");
  jx_fn *g = jx_grad(jx_vmap(jx_jit(loss), (int[]){0}, 0), 0);
  jx_t r = JX_CALL(g, x);
  EXPECT_ERROR(r, "add", "(in grad(vmap(jit(loss))))");
  CHECK(count(jx_error(r), "(in ") == 1); /* located once, by the innermost call */
  char name[] = "renamed";
  jx_fn_set_name(loss, name);
  name[0] = 'X'; /* the name was copied */
  EXPECT_ERROR(JX_CALL(jx_jit(loss), jx_zeros(JX_F32, JX_SHAPE(3))), "(in jit(renamed))");
  jx_fn_set_name(NULL, "x");
  CHECK(strcmp(jx_fn_name(NULL), "null function") == 0);
  /* an error given as an argument is passed on, not located again */
  jx_t e = jx_error_new("given");
  CHECK(JX_CALL(loss, e) == e);
  jx_pool_pop();
}

static jx_t poly_body(const jx_t *a, void *u) {
  (void)u;
  jx_t c = u ? (jx_t)u : jx_scalar(3);
  return jx_add(jx_mul(jx_sin(a[0]), a[1]), c);
}

static void test_jaxpr_fn(void) {
  jx_pool_push();
  jx_t c = vec(1, 2, 3);
  jx_fn *f = jx_fn_new(poly_body, 2, c); /* closes over c: a constant */
  jx_t x = vec(0.5f, 1, 2), y = vec(2, 3, 4);
  jx_fn *jf = jx_make_jaxpr_fn(f, (jx_t[]){x, y});
  CHECK(jx_fn_error(jf) == NULL);
  char *s = jx_jaxpr_fn_str(jf), *t = jx_make_jaxpr(f, (jx_t[]){x, y});
  CHECK(s && t && strcmp(s, t) == 0 && strstr(s, "sin"));
  jx_free_string(s);
  jx_free_string(t);
  jx_t x2 = vec(1, 2, 3), y2 = vec(-1, 0.5f, 2);
  float a[3], b[3];
  CHECK(jx_read(JX_CALL(jf, x2, y2), JX_F32, a, sizeof a) == 0);
  CHECK(jx_read(JX_CALL(f, x2, y2), JX_F32, b, sizeof b) == 0);
  for (int i = 0; i < 3; i++) CHECK_CLOSE(a[i], b[i], 1e-6, 0);
  EXPECT_ERROR(JX_CALL(jf, jx_zeros(JX_F32, JX_SHAPE(2)), y2), "argument leaf 0 is f32[2]",
               "traced with f32[3]");
  jx_fn *vj = jx_vmap(jf, (int[]){0, 0}, 0);
  jx_t xs = jx_zeros(JX_F32, JX_SHAPE(2, 3));
  CHECK(jx_ok(JX_CALL(vj, xs, xs)));
  CHECK(jx_jaxpr_fn_str(f) == NULL && jx_jaxpr_fn_str(NULL) == NULL);
  CHECK(jx_fn_error(jx_make_jaxpr_fn(NULL, (jx_t[]){x, y})) != NULL);
  jx_fn *bad = jx_make_jaxpr_fn(jx_fn_new(bad_body, 1, NULL), (jx_t[]){vec(1, 2, 3)});
  CHECK(jx_fn_error(bad) && strstr(jx_fn_error(bad), "make_jaxpr_fn"));
  EXPECT_ERROR(JX_CALL(bad, vec(1, 2, 3)), "make_jaxpr_fn");
  /* kept past its pool */
  jx_fn *kept = jx_fn_retain(jf);
  jx_pool_pop();
  jx_pool_push();
  CHECK(jx_ok(JX_CALL(kept, vec(1, 2, 3), vec(1, 2, 3))));
  jx_fn_release(kept);
  jx_pool_pop();
}

int main(void) {
  if (check_private_cache("debug")) return 1;
  jx_set_error_handler(NULL, NULL);
  check_verbose = getenv("JX_TEST_VERBOSE") != NULL;
  test_nans_eager();
  test_nans_jit();
  test_names();
  test_jaxpr_fn();
  check_private_cache_remove();
  return check_report("test_debug");
}
