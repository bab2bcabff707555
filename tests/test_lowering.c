/* The lowering rules (core.h jx_lowering), walked over the whole table:
 *
 * - every scalar function of the op list (core/elementwise.def) is in
 *   scalar_ops.h's parts;
 * - every primitive has a lowering: EW ones name a scalar function, LAYOUT
 *   ones an index map, REDUCE ones a combining function and identity, LOOP
 *   ones a loop kind and body count; the rest are calls;
 * - every elementwise primitive at every dtype its abstract_eval accepts
 *   has its scalar function in scalar_ops.h, and jit of it renders, builds
 *   and runs generated code (not the interpreter) and equals eager;
 * - a kernel whose primitive has no C rendering (a reduction without a
 *   monoid, a loop without a driver, an op without a scalar function) is a
 *   render error naming it, not a `min` reduction or a cond. */
#include "backend/cpu/render.h"
#include "check.h"
#include "compile/compile.h"
#include "jit_build.h"
#include "jx.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* every dtype, #19's included: ALL_DT[d] = d */
enum { NDT = JX_DTYPE_COUNT };
#define ALL_DT(d) ((jx_dtype)(d))

static bool have_compiler(void) {
  const char *cc = getenv("JX_CC");
  char cmd[512];
  snprintf(cmd, sizeof cmd, "%s --version >/dev/null 2>&1", cc && *cc ? cc : "cc");
  return system(cmd) == 0;
}

/* every scalar function of the op list is defined by a part of scalar_ops.h */
static void test_scalar_functions(void) {
  int n = 0;
  for (const char *const *f = jx_cpu_ew_functions; *f; f++, n++) {
    jx_t err = NULL;
    bool quiet = jx_errors_quiet(true);
    char *pre = jx_cpu_prelude(f, 1, &err);
    jx_errors_quiet(quiet);
    CHECKF(pre && !err, "%s: %s", *f, err ? jx_error(err) : "no prelude");
    jx_free(pre);
  }
  CHECK(n > 100);
}

static void test_table(void) {
  for (int p = 0; p < JX_PRIM_COUNT; p++) {
    const jx_lowering *lw = &jx_prim_rules[p]->lower;
    const char *nm = jx_prim_names[p];
    CHECKF(lw->kind != JX_LOWER_NONE, "%s: no lowering rule", nm);
    if (lw->kind == JX_LOWER_EW)
      CHECKF(lw->stem && *lw->stem, "%s: elementwise without a scalar function", nm);
    if (lw->kind == JX_LOWER_LAYOUT) CHECKF(lw->index_map, "%s: layout without an index map", nm);
    if (lw->kind == JX_LOWER_REDUCE) CHECKF(lw->combine, "%s: reduction without a combining function", nm);
    if (lw->kind == JX_LOWER_LOOP)
      CHECKF(lw->loop && lw->nbody >= 1 && lw->nbody <= 2, "%s: loop without a driver", nm);
    if (lw->kind == JX_LOWER_LOOP || lw->kind == JX_LOWER_CALL)
      CHECKF(jx_prim_rules[p]->impl, "%s: a call without an impl", nm);
  }
}

/* the avals an elementwise primitive is given at dtype dt (select's
 * predicate is bool), and params (convert: to `to`) */
static int ew_avals(jx_prim p, jx_dtype dt, jx_aval *in) {
  int n = jx_prim_rules[p]->nin;
  for (int i = 0; i < n; i++) in[i] = (jx_aval){.dtype = dt, .ndim = 1, .shape = {7}};
  if (p == JX_P_select) in[0].dtype = JX_BOOL;
  return n;
}

static bool accepts(jx_prim p, const jx_aval *in, int n, const jx_params *pa) {
  jx_aval out[2];
  bool quiet = jx_errors_quiet(true);
  jx_t e = jx_prim_rules[p]->abstract_eval(p, in, n, pa, out);
  jx_errors_quiet(quiet);
  return e == NULL;
}

/* values in every op's domain: floats in [0.25, 0.75) (erf_inv, log,
 * sqrt), small positive integers (shifts, pow, div), bools 0/1 */
static jx_t sample(jx_dtype dt, int k) {
  double v[7];
  for (int i = 0; i < 7; i++)
    v[i] = jx_dtype_is_float(dt) ? 0.25 + 0.07 * ((i * 3 + k) % 7) : (i + k) % 5 + 1;
  if (dt == JX_BOOL)
    for (int i = 0; i < 7; i++) v[i] = (i + k) % 2;
  return jx_astype(jx_array(JX_F64, 1, (const int64_t[]){7}, v), dt);
}

typedef struct {
  jx_prim p;
  int n;
  jx_params pa;
} one_op;

static jx_t op_body(const jx_t *a, void *u) {
  one_op *o = u;
  return jx_bind1(o->p, o->n, a, &o->pa);
}

/* same values (NaN equal to NaN), compared in f64; #19's dtypes bit for bit */
static bool same_values(jx_t a, jx_t b) {
  if (!jx_ok(a) || !jx_ok(b) || jx_dtype_of(a) != jx_dtype_of(b) || jx_size(a) != jx_size(b)) return false;
  if (jx_dtype_of(a) >= JX_BF16)
    return !memcmp(jx_data(a), jx_data(b), (size_t)jx_size(a) * jx_dtype_size(jx_dtype_of(a)));
  jx_t x = jx_astype(a, JX_F64), y = jx_astype(b, JX_F64);
  const double *px = jx_data(x), *py = jx_data(y);
  for (int64_t i = 0; i < jx_size(a); i++)
    if (px[i] != py[i] && !(isnan(px[i]) && isnan(py[i]))) return false;
  return true;
}

/* jit of primitive p with these params at dtype dt: generated code, equal to eager */
static void check_one(jx_prim p, jx_dtype dt, const jx_params *pa, bool cc, int *count) {
  const char *nm = jx_prim_names[p];
  jx_aval in[3];
  int n = ew_avals(p, dt, in);
  if (!accepts(p, in, n, pa)) return;
  (*count)++;
  jx_pool_push();
  one_op o = {p, n, *pa};
  jx_t args[3];
  for (int i = 0; i < n; i++) args[i] = sample(in[i].dtype, i);
  jx_fn *f = jx_fn_new(op_body, n, &o), *jf = jx_jit(f);
  jx_exec_counts c0 = jx_exec_run_counts();
  jx_t got = jx_call(jf, args), want = jx_call(f, args);
  jx_exec_counts c1 = jx_exec_run_counts();
  CHECKF(same_values(got, want), "%s on %s (to %s): jit differs from eager (%s)", nm, jx_dtype_name(dt),
         jx_dtype_name(p == JX_P_convert ? pa->convert.dtype : dt),
         jx_ok(got) ? jx_error(want) : jx_error(got));
  if (cc)
    CHECKF(c1.compiled == c0.compiled + 1 && c1.interpreted == c0.interpreted,
           "%s on %s: jit ran the interpreter, not generated code", nm, jx_dtype_name(dt));
  jx_fn_free(jf), jx_fn_free(f);
  jx_pool_pop();
}

static void test_elementwise(bool cc) {
  int count = 0;
  for (int p = 0; p < JX_PRIM_COUNT; p++) {
    if (jx_prim_rules[p]->lower.kind != JX_LOWER_EW) continue;
    for (int d = 0; d < NDT; d++) {
      jx_params pa;
      jx_params_init(&pa, jx_prim_rules[p]->params_kind);
      if (p != JX_P_convert) {
        check_one(p, ALL_DT(d), &pa, cc, &count);
        continue;
      }
      for (int t = 0; t < NDT; t++) {
        pa.convert.dtype = ALL_DT(t);
        check_one(p, ALL_DT(d), &pa, cc, &count);
      }
    }
  }
  printf("lowering: %d (elementwise primitive, dtype) pairs jitted\n", count);
  CHECK(count > 100);
}

/* A program whose kernel names a primitive the renderer cannot render. */
static jx_t sum_body(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_exp(a[0]));
}
static jx_t exp_body(const jx_t *a, void *u) {
  (void)u;
  return jx_exp(a[0]);
}
static jx_t scan_step(const jx_t *a, void *u) {
  (void)u;
  return jx_tuple(2, (jx_t[]){jx_add(a[0], a[1]), jx_mul(a[0], a[1])});
}
static jx_fn *step_fn;
static jx_t scan_body(const jx_t *a, void *u) {
  (void)u;
  return jx_scan(step_fn, a[0], a[1]);
}

static void expect_no_rendering(jx_fn *f, const jx_t *args, jx_lkind kind, jx_prim as, const char *want) {
  built b = build(f, args);
  CHECKF(b.p, "build: %s", b.err ? jx_error(b.err) : "?");
  int k = -1;
  for (int i = 0; b.p && i < b.p->nkernel && k < 0; i++)
    if (b.p->kernels[i].kind == kind) k = i;
  CHECKF(k >= 0, "no kernel of kind %d", (int)kind);
  if (k >= 0) {
    jx_kernel *kn = &b.p->kernels[k];
    if (kind == JX_LK_REDUCE)
      kn->reduce_op = as;
    else if (kind == JX_LK_LOOP)
      kn->call.prim = as;
    else
      for (int x = 0; x < kn->nexpr; x++)
        if (kn->exprs[x].kind == JX_LX_OP) kn->exprs[x].prim = as;
    jx_t err = NULL;
    bool quiet = jx_errors_quiet(true);
    char *src = jx_cpu_backend.render(b.p, &err);
    jx_errors_quiet(quiet);
    CHECKF(!src && err && strstr(jx_error(err), want), "rendering %s: %s", jx_prim_names[as],
           err ? jx_error(err) : "rendered");
    jx_free(src);
  }
  built_free(&b);
}

static void test_no_rendering(void) {
  jx_pool_push();
  jx_t x = jx_arange(JX_F32, 0, 6, 1);
  jx_fn *f = jx_fn_new(sum_body, 1, NULL);
  /* a reduction without a monoid, an op without a scalar function */
  expect_no_rendering(f, &x, JX_LK_REDUCE, JX_P_argmax, "no C rendering for argmax");
  expect_no_rendering(f, &x, JX_LK_REDUCE, JX_P_exp, "no C rendering for exp");
  jx_fn_free(f);
  f = jx_fn_new(exp_body, 1, NULL);
  expect_no_rendering(f, &x, JX_LK_MAP, JX_P_gather, "no C rendering for gather");
  jx_fn_free(f);
  /* a loop kernel of a primitive with no loop driver */
  step_fn = jx_fn_new(scan_step, 2, NULL);
  jx_t args[2] = {jx_scalar_of(JX_F32, 1), jx_arange(JX_F32, 0, 5, 1)};
  jx_fn *g = jx_fn_new(scan_body, 2, NULL);
  expect_no_rendering(g, args, JX_LK_LOOP, JX_P_jit_call, "no C rendering for jit_call");
  jx_fn_free(g);
  jx_fn_free(step_fn);
  jx_pool_pop();
}

int main(void) {
  if (check_private_cache("lowering")) return 1;
  const bool cc = have_compiler();
  if (!cc) printf("test_lowering: no C compiler: results are checked, not that code was generated\n");
  test_table();
  test_scalar_functions();
  test_elementwise(cc);
  test_no_rendering();
  check_private_cache_remove();
  return check_report("test_lowering");
}
