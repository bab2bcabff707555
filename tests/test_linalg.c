/* jx_svd and jx_norm's ord 2, -2 and nuc: singular values and norms
 * against NumPy (golden/linalg_golden.inc, made by golden/gen_linalg.py),
 * eager and under jit; the decomposition's reconstruction and the
 * orthonormality of u and vt; gradients (nuc's is u vt); vmap; errors.
 * (svd's rules are also in the rules harness: tests/rules/math.inc.) */
#include "check.h"

#include <jx.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */
static double max_abs(jx_t a) { return jx_item(jx_max(jx_abs(jx_astype(a, JX_F64)))); }

/* x with its last two dims swapped */
static jx_t mT(jx_t x) {
  int r = jx_ndim(x), perm[8];
  for (int d = 0; d < r; d++) perm[d] = d;
  perm[r - 2] = r - 1, perm[r - 1] = r - 2;
  return jx_transpose(x, perm);
}

static jx_t svd_body(const jx_t *a, void *u) {
  (void)u;
  return jx_svd(a[0], true);
}
static jx_t svd_s_body(const jx_t *a, void *u) {
  (void)u;
  return jx_svd(a[0], false);
}

/* ------------------------------------------------------------ golden */
typedef struct {
  jx_dtype dt;
  int ndim;
  int64_t shape[4];
  const double *x, *s;
} svd_case;

static const svd_case SVD_CASES[] = {
#define LINALG_SVD_ROWS
#include "golden/linalg_golden.inc"
#undef LINALG_SVD_ROWS
};

typedef struct {
  jx_dtype dt;
  int ndim;
  int64_t shape[4];
  const double *x;
  const char *ord;
  int axes[2], keep, ondim;
  int64_t oshape[4];
  const double *y;
} norm_case;

static const norm_case NORM_CASES[] = {
#define LINALG_NORM_ROWS
#include "golden/linalg_golden.inc"
#undef LINALG_NORM_ROWS
};

static bool same_shape(jx_t x, int nd, const int64_t *shape) {
  if (!jx_ok(x) || jx_ndim(x) != nd) return false;
  for (int d = 0; d < nd; d++)
    if (jx_shape(x)[d] != shape[d]) return false;
  return true;
}

/* u diag(s) vt == x and u, vt orthonormal, to tol relative to max s */
static void check_decomposition(int i, jx_t x, jx_t u, jx_t s, jx_t vt, double tol) {
  int r = jx_ndim(x);
  int64_t k = jx_shape(s)[r - 2];
  double smax = k ? max_abs(s) : 0;
  jx_t xd = jx_astype(x, JX_F64), ud = jx_astype(u, JX_F64), vd = jx_astype(vt, JX_F64);
  jx_t back = jx_matmul(jx_mul(ud, jx_expand_dims(jx_astype(s, JX_F64), -2)), vd);
  CHECKF(max_abs(jx_sub(back, xd)) <= tol * (1 + smax), "svd case %d: u diag(s) vt - x = %g", i,
         max_abs(jx_sub(back, xd)));
  if (k == 0) return;
  double eu = max_abs(jx_sub(jx_matmul(mT(ud), ud), jx_eye(JX_F64, k, -1, 0)));
  double ev = max_abs(jx_sub(jx_matmul(vd, mT(vd)), jx_eye(JX_F64, k, -1, 0)));
  CHECKF(eu <= tol && ev <= tol, "svd case %d: u^T u - I = %g, vt vt^T - I = %g", i, eu, ev);
}

static void test_golden_svd(void) {
  jx_fn *f = jx_fn_new(svd_body, 1, NULL), *jf = jx_jit(f);
  jx_fn *fs = jx_fn_new(svd_s_body, 1, NULL), *jfs = jx_jit(fs);
  for (size_t i = 0; i < sizeof SVD_CASES / sizeof *SVD_CASES; i++) {
    jx_pool_push();
    const svd_case *c = &SVD_CASES[i];
    jx_t x = jx_astype(jx_array(JX_F64, c->ndim, c->shape, c->x), c->dt);
    int r = c->ndim;
    int64_t m = c->shape[r - 2], n = c->shape[r - 1], k = m < n ? m : n;
    int64_t ss[4], us[4], vs[4];
    memcpy(ss, c->shape, sizeof ss), memcpy(us, c->shape, sizeof us), memcpy(vs, c->shape, sizeof vs);
    ss[r - 2] = k, us[r - 1] = k, vs[r - 2] = k;
    jx_t want = jx_array(JX_F64, r - 1, ss, c->s);
    double smax = max_abs(want), tol = c->dt == JX_F32 ? 2e-6 : 1e-12;
    jx_t res[2] = {jx_call(f, &x), jx_call(jf, &x)};
    for (int j = 0; j < 2; j++) {
      jx_t u = jx_at(res[j], 0), s = jx_at(res[j], 1), vt = jx_at(res[j], 2);
      CHECKF(jx_ok(res[j]) && same_shape(u, r, us) && same_shape(s, r - 1, ss) && same_shape(vt, r, vs) &&
                 jx_dtype_of(s) == c->dt && jx_dtype_of(u) == c->dt,
             "svd case %zu (%s): shapes/dtypes: %s", i, j ? "jit" : "eager", jx_error(res[j]));
      if (!jx_ok(res[j])) continue;
      double err = max_abs(jx_sub(jx_astype(s, JX_F64), want));
      CHECKF(err <= tol * (1 + smax), "svd case %zu (%s): s off NumPy's by %g", i, j ? "jit" : "eager", err);
      check_decomposition((int)i, x, u, s, vt, c->dt == JX_F32 ? 1e-5 : 1e-12);
    }
    /* s alone, eager and jit: the same values as the full decomposition's */
    jx_t s0 = jx_at(res[0], 1), s1 = jx_call(fs, &x), s2 = jx_call(jfs, &x);
    CHECKF(jx_ok(s1) && jx_ok(s2) && max_abs(jx_sub(s1, s0)) == 0 && max_abs(jx_sub(s2, s0)) == 0,
           "svd case %zu: compute_uv=false differs", i);
    jx_pool_pop();
  }
  jx_fn_free(jf), jx_fn_free(f), jx_fn_free(jfs), jx_fn_free(fs);
}

static void test_golden_norm(void) {
  for (size_t i = 0; i < sizeof NORM_CASES / sizeof *NORM_CASES; i++) {
    jx_pool_push();
    const norm_case *c = &NORM_CASES[i];
    jx_t x = jx_astype(jx_array(JX_F64, c->ndim, c->shape, c->x), c->dt);
    jx_t y = jx_norm(x, c->ord, 2, c->axes, c->keep);
    CHECKF(same_shape(y, c->ondim, c->oshape) && jx_dtype_of(y) == c->dt, "norm case %zu (ord %s): %s", i,
           c->ord, jx_error(y));
    if (jx_ok(y)) {
      jx_t want = jx_array(JX_F64, c->ondim, c->oshape, c->y);
      double err = max_abs(jx_sub(jx_astype(y, JX_F64), want)), tol = c->dt == JX_F32 ? 2e-6 : 1e-12;
      CHECKF(err <= tol * (1 + max_abs(want)), "norm case %zu (ord %s): off NumPy's by %g", i, c->ord, err);
    }
    jx_pool_pop();
  }
}

/* ------------------------------------------------------------ gradients */
typedef struct {
  const char *ord;
} norm_arg;
static jx_t norm_body(const jx_t *a, void *u) {
  const norm_arg *n = u;
  return jx_norm(a[0], n->ord, 2, (int[]){0, 1}, false);
}

/* d nuc(x) / dx = u vt; d |x|_2 / dx = u_0 vt_0 (the top singular pair);
 * d |x|_-2 / dx = the bottom pair's */
static void test_norm_grads(void) {
  jx_t key = jx_random_key(7);
  const int64_t shapes[][2] = {{4, 3}, {3, 5}, {4, 4}};
  for (int si = 0; si < 3; si++) {
    jx_pool_push();
    jx_t x = jx_random_normal(jx_random_fold_in(key, si), JX_F64, 2, shapes[si]);
    jx_t d = jx_svd(x, true), u = jx_at(d, 0), vt = jx_at(d, 2);
    int64_t k = jx_shape(jx_at(d, 1))[0];
    const char *ords[] = {"nuc", "2", "-2"};
    for (int o = 0; o < 3; o++) {
      norm_arg na = {ords[o]};
      jx_fn *f = jx_fn_new(norm_body, 1, &na), *g = jx_grad(f, 0), *jg = jx_jit(g);
      jx_t want;
      if (o == 0) {
        want = jx_matmul(u, vt);
      } else {
        int64_t c = o == 1 ? 0 : k - 1;
        jx_t uc = jx_take(u, jx_scalar_of(JX_I32, (double)c), 1),
             vc = jx_take(vt, jx_scalar_of(JX_I32, (double)c), 0);
        want = jx_mul(jx_expand_dims(uc, 1), jx_expand_dims(vc, 0));
      }
      jx_t gx = jx_call(g, &x), jgx = jx_call(jg, &x);
      CHECKF(jx_ok(gx) && jx_ok(jgx), "grad norm %s: %s", ords[o], jx_error(jx_ok(gx) ? jgx : gx));
      if (jx_ok(gx) && jx_ok(jgx)) {
        CHECKF(max_abs(jx_sub(gx, want)) <= 1e-10, "grad norm %s of %lldx%lld: off by %g", ords[o],
               (long long)shapes[si][0], (long long)shapes[si][1], max_abs(jx_sub(gx, want)));
        CHECKF(max_abs(jx_sub(jgx, gx)) <= 1e-12, "jit(grad norm %s) differs by %g", ords[o],
               max_abs(jx_sub(jgx, gx)));
      }
      jx_fn_free(jg), jx_fn_free(g), jx_fn_free(f);
    }
    jx_pool_pop();
  }
}

/* ------------------------------------------------------------ vmap */
/* vmap over a matrix axis (moved to the front) and over a leading one: the
 * stacked per-example results */
static void test_vmap(void) {
  jx_pool_push();
  jx_t x = jx_random_normal(jx_random_key(3), JX_F64, JX_SHAPE(3, 4, 2));
  jx_fn *fs = jx_fn_new(svd_s_body, 1, NULL);
  for (int ax = 0; ax < 3; ax++) {
    jx_fn *vf = jx_vmap(fs, (int[]){ax}, 0);
    jx_t got = jx_call(vf, &x), rows[4];
    int64_t B = jx_shape(x)[ax];
    for (int64_t b = 0; b < B; b++) rows[b] = jx_svd(jx_take(x, jx_scalar_of(JX_I32, (double)b), ax), false);
    jx_t want = jx_stack((int)B, rows, 0);
    CHECKF(jx_ok(got) && max_abs(jx_sub(got, want)) <= 1e-14, "vmap(svd) over axis %d: %s", ax,
           jx_error(got));
    jx_fn_free(vf);
  }
  jx_fn_free(fs);
  jx_pool_pop();
}

/* ------------------------------------------------------------ errors */
static void test_errors(void) {
  jx_pool_push();
  EXPECT_ERROR(jx_svd(jx_ones(JX_F32, JX_SHAPE(3)), true), "svd", "f32[3]", "rank");
  EXPECT_ERROR(jx_svd(jx_scalar(1), false), "svd", "rank");
  EXPECT_ERROR(jx_svd(jx_ones(JX_BF16, JX_SHAPE(2, 2)), false), "svd", "bf16");
  EXPECT_ERROR(jx_norm(jx_ones(JX_F32, JX_SHAPE(3)), "nuc", 0, NULL, false), "norm", "matrices");
  EXPECT_ERROR(jx_norm(jx_ones(JX_F32, JX_SHAPE(2, 3)), "3", 0, NULL, false), "norm", "f32[2,3]", "ord");
  /* ints are promoted, as jnp.linalg.svd does */
  jx_t s = jx_svd(jx_astype(jx_eye(JX_F64, 2, -1, 0), JX_I32), false);
  CHECKF(jx_ok(s) && jx_dtype_of(s) == JX_F32 && max_abs(jx_sub(s, jx_ones(JX_F32, JX_SHAPE(2)))) == 0,
         "svd(i32 eye): %s", jx_error(s));
  /* empty matrices: k = 0 */
  jx_t e = jx_svd(jx_zeros(JX_F64, JX_SHAPE(2, 0, 3)), true);
  CHECKF(jx_ok(e) && jx_shape(jx_at(e, 0))[2] == 0 && jx_shape(jx_at(e, 1))[1] == 0, "svd of [2,0,3]: %s",
         jx_error(e));
  jx_pool_pop();
}

/* the portable C export renders svd (test_export_ops builds and runs it
 * against jit); jx_export_save (serialized jaxprs) round-trips it, params
 * included */
static void test_export(void) {
  jx_pool_push();
  jx_t x = jx_random_normal(jx_random_key(5), JX_F64, JX_SHAPE(3, 2));
  jx_fn *f = jx_fn_new(svd_s_body, 1, NULL), *jf = jx_jit(f);
  char dir[] = "/tmp/jx_test_linalg_XXXXXX";
  if (mkdtemp(dir)) {
    jx_t ec = jx_export_c(jf, &x, "svd_s", dir);
    CHECKF(!ec, "export_c(svd): %s", jx_error(ec));
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
  }
  jx_fn *fu = jx_fn_new(svd_body, 1, NULL), *jfu = jx_jit(fu);
  char path[64];
  snprintf(path, sizeof path, "/tmp/jx_test_linalg_%d.jxe", (int)getpid());
  jx_t e = jx_export_save(jfu, &x, path);
  CHECKF(!e, "export_save(svd): %s", jx_error(e));
  jx_fn *back = jx_export_load(path);
  jx_t a = jx_call(jfu, &x), b = jx_call(back, &x);
  CHECKF(jx_ok(b), "export_load(svd) call: %s", jx_error(b));
  for (int i = 0; i < 3 && jx_ok(b); i++)
    CHECKF(max_abs(jx_sub(jx_at(a, i), jx_at(b, i))) == 0, "export_load(svd) output %d differs", i);
  remove(path);
  /* a file whose svd equation has 3 outputs but compute_uv 0: the typecheck refuses it */
  static const char bad[] = "jx-export 2\nfn 1 (*) (*,*,*)\njaxpr\nvars 4\nf64 0 2 3 2\nf64 0 1 2\n"
                            "f64 0 2 3 2\nf64 0 2 2 2\nconsts 0\nin 1 0\neqns 1\nsvd 1 0 3 1 2 3 svd 0\n"
                            "out 3 2 1 3\nend\n";
  jx_fn *bf = jx_export_load_text(bad, sizeof bad - 1);
  EXPECT_ERROR(jx_call(bf, &x), "svd", "3 outputs", "params give 1");
  jx_fn_free(bf);
  jx_fn_free(back), jx_fn_free(jfu), jx_fn_free(fu);
  jx_fn_free(jf), jx_fn_free(f);
  jx_pool_pop();
}

int main(void) {
  test_golden_svd();
  test_golden_norm();
  test_norm_grads();
  test_vmap();
  test_errors();
  test_export();
  return check_report("test_linalg");
}
