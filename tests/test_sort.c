/* Sorting, cumulative ops, associative_scan and contractions: golden
 * results from NumPy/PyTorch (golden/sort_golden.txt, made by
 * golden/gen_sort.py), eager and under jit; then what the golden file
 * cannot show: gradients, vmap, the einsum contraction order, and the
 * errors for bad arguments. (Every primitive's rules are also in the rules
 * harness: tests/rules/sort.inc.) */
#include "check.h"
#include "ir/jaxpr.h"

#include <jx.h>

#include <stdint.h>

#define GOLDEN_PATH "golden/sort_golden.txt"

/* ------------------------------------------------------------ golden */
static const char *const DT_NAMES[] = {"bool", "i32", "i64", "u32", "f32", "f64"};

static char *tok(char **s) {
  while (**s == ' ') (*s)++;
  char *t = *s;
  while (**s && **s != ' ' && **s != '\n') (*s)++;
  if (**s) *(*s)++ = 0;
  return t;
}

/* one array from the line; *vals gets its values as doubles (free) */
static jx_t read_array(char **s, double **vals) {
  const char *dn = tok(s);
  int dt = -1;
  for (int i = 0; i < 6; i++)
    if (!strcmp(dn, DT_NAMES[i])) dt = i;
  int nd = atoi(tok(s));
  int64_t shape[8], n = 1;
  for (int d = 0; d < nd; d++) shape[d] = atoll(tok(s)), n *= shape[d];
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  int64_t *iv = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) {
    const char *t = tok(s);
    v[i] = strtod(t, NULL), iv[i] = strtoll(t, NULL, 10);
  }
  jx_t x;
  if (dt == JX_I64 || dt == JX_U32 || dt == JX_I32 || dt == JX_BOOL) /* exact through i64 */
    x = jx_astype(jx_array(JX_I64, nd, shape, iv), (jx_dtype)dt);
  else
    x = jx_astype(jx_array(JX_F64, nd, shape, v), (jx_dtype)dt);
  free(iv);
  *vals = v;
  return dt < 0 ? jx_error_new("golden: bad dtype %s", dn) : x;
}

typedef struct {
  const char *op, *param;
  int nin;
  const jx_t *in;
} gcase;

/* run the case's op; the result is a tuple for several outputs */
static jx_t run_op(const gcase *c) {
  const char *p = c->param, *op = c->op;
  int a = atoi(p), b = strchr(p, ',') ? atoi(strchr(p, ',') + 1) : 0;
  const jx_t *in = c->in;
  if (!strcmp(op, "sort")) return jx_sort(in[0], a);
  if (!strcmp(op, "argsort")) return jx_argsort(in[0], a);
  if (!strcmp(op, "sort_multi")) return jx_sort_multi(c->nin, in, a, b);
  if (!strcmp(op, "top_k")) return jx_top_k(in[0], a);
  if (!strcmp(op, "searchsorted")) return jx_searchsorted(in[0], in[1], p);
  if (!strcmp(op, "cumsum")) return b ? jx_cumsum_ex(in[0], a, true) : jx_cumsum(in[0], a);
  if (!strcmp(op, "cumprod")) return jx_cumprod(in[0], a, b);
  if (!strcmp(op, "cummax")) return jx_cummax(in[0], a, b);
  if (!strcmp(op, "cummin")) return jx_cummin(in[0], a, b);
  if (!strcmp(op, "cumlogsumexp")) return jx_cumlogsumexp(in[0], a, b);
  if (!strcmp(op, "einsum")) return jx_einsum(strcmp(p, "''") ? p : "", c->nin, in);
  if (!strcmp(op, "tensordot")) return jx_tensordot(in[0], in[1], a, NULL, NULL);
  return jx_error_new("golden: unknown op %s", op);
}

static jx_t golden_body(const jx_t *args, void *u) {
  gcase c = *(const gcase *)u;
  c.in = args;
  return run_op(&c);
}

static bool exact_op(const char *op) {
  return !strcmp(op, "sort") || !strcmp(op, "argsort") || !strcmp(op, "sort_multi") || !strcmp(op, "top_k") ||
         !strcmp(op, "searchsorted") || !strcmp(op, "cummax") || !strcmp(op, "cummin");
}

/* got vs want: dtype, shape, values (bit-exact where the op is, else
 * close; NaN matches NaN; -0.0 is told from 0.0 where exact) */
static bool same(jx_t got, jx_t want, const double *wv, bool exact, char *why, size_t n) {
  if (!jx_ok(got)) return snprintf(why, n, "error %s", jx_error(got)), false;
  if (jx_dtype_of(got) != jx_dtype_of(want) || jx_ndim(got) != jx_ndim(want))
    return snprintf(why, n, "dtype/rank %d/%d vs %d/%d", jx_dtype_of(got), jx_ndim(got), jx_dtype_of(want),
                    jx_ndim(want)),
           false;
  for (int d = 0; d < jx_ndim(got); d++)
    if (jx_shape(got)[d] != jx_shape(want)[d]) return snprintf(why, n, "shape differs at dim %d", d), false;
  int64_t m = jx_size(got);
  double *g = malloc(sizeof(double) * (size_t)(m ? m : 1));
  bool ok = !jx_read(got, JX_F64, g, sizeof(double) * (size_t)(m ? m : 1));
  bool f32 = jx_dtype_of(got) == JX_F32;
  for (int64_t i = 0; ok && i < m; i++) {
    double x = g[i], y = wv[i];
    if (isnan(y)) {
      ok = isnan(x);
    } else if (exact || (jx_dtype_of(got) != JX_F32 && jx_dtype_of(got) != JX_F64)) {
      ok = x == y && signbit(x) == signbit(y);
    } else {
      double tol = (f32 ? 2e-6 : 1e-13) * (1 + fabs(y)) * 8;
      ok = fabs(x - y) <= tol || (isinf(y) && x == y);
    }
    if (!ok) snprintf(why, n, "element %lld: %.17g vs %.17g", (long long)i, x, y);
  }
  free(g);
  return ok;
}

static void check_outputs(const char *what, int lineno, const gcase *c, jx_t r, int nout, jx_t *want,
                          double **wv) {
  char why[200] = "";
  bool exact = exact_op(c->op);
  for (int k = 0; k < nout; k++) {
    jx_t g = nout > 1 && jx_ok(r) ? jx_at(r, k) : r;
    CHECKF(same(g, want[k], wv[k], exact, why, sizeof why), "%s:%d %s %s (%s) output %d: %s", GOLDEN_PATH,
           lineno, c->op, c->param, what, k, why);
  }
}

static void test_golden(void) {
  FILE *f = fopen(GOLDEN_PATH, "r");
  CHECKF(f != NULL, "cannot open %s", GOLDEN_PATH);
  if (!f) return;
  static char line[1 << 20];
  int lineno = 0, ncase = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    if (line[0] == '#') continue;
    jx_pool_push();
    char *s = line;
    gcase c = {.op = tok(&s), .param = tok(&s)};
    c.nin = atoi(tok(&s));
    jx_t in[8], want[4];
    double *iv[8], *wv[4];
    for (int i = 0; i < c.nin; i++) in[i] = read_array(&s, &iv[i]);
    int nout = atoi(tok(&s));
    for (int k = 0; k < nout; k++) want[k] = read_array(&s, &wv[k]);
    c.in = in;
    check_outputs("eager", lineno, &c, run_op(&c), nout, want, wv);
    /* jit: the same case compiled */
    jx_fn *fn = jx_fn_new(golden_body, c.nin, &c);
    jx_fn *jf = jx_jit(fn);
    check_outputs("jit", lineno, &c, jx_call(jf, in), nout, want, wv);
    jx_fn_free(jf);
    jx_fn_free(fn);
    for (int i = 0; i < c.nin; i++) free(iv[i]);
    for (int k = 0; k < nout; k++) free(wv[k]);
    jx_pool_pop();
    ncase++;
  }
  fclose(f);
  printf("%d golden cases (eager and jit)\n", ncase);
  CHECK(ncase > 400);
}

/* ------------------------------------------------------- gradients */
static double rd(jx_t x) { return jx_item(x); }
static jx_t vec(int n, const double *v) { return jx_array(JX_F64, 1, (int64_t[]){n}, v); }

/* sum(w * f(x)) so that every output element has its own weight */
typedef jx_t (*unary_op)(jx_t x);
typedef struct {
  unary_op op;
  jx_t w;
} weighted;
static jx_t weighted_body(const jx_t *a, void *u) {
  weighted *w = u;
  return jx_sum(jx_mul(w->op(a[0]), w->w));
}

/* grad (reverse mode) vs central differences of sum(w * op(x)) */
static void check_grad(const char *name, unary_op op, jx_t x) {
  jx_pool_push();
  jx_t y = op(x);
  weighted w = {
      op, jx_add(jx_mul(jx_astype(jx_arange(JX_F64, 0, (double)jx_size(y), 1), JX_F64), jx_scalar(0.37)),
                 jx_scalar(-1.1))};
  w.w = jx_reshape(w.w, jx_ndim(y), jx_shape(y));
  jx_fn *f = jx_fn_new(weighted_body, 1, &w);
  jx_fn *g = jx_grad(f, 0);
  jx_fn *jg = jx_jit(g);
  jx_t gx = jx_call(g, &x), jgx = jx_call(jg, &x);
  CHECKF(jx_ok(gx) && jx_ok(jgx), "%s: grad failed: %s", name, jx_error(jx_ok(gx) ? jgx : gx));
  int64_t n = jx_size(x);
  double *xv = malloc(sizeof(double) * (size_t)n), *gv = malloc(sizeof(double) * (size_t)n);
  double *jv = malloc(sizeof(double) * (size_t)n);
  if (jx_ok(gx) && jx_ok(jgx) && !jx_read(x, JX_F64, xv, sizeof(double) * (size_t)n) &&
      !jx_read(gx, JX_F64, gv, sizeof(double) * (size_t)n) &&
      !jx_read(jgx, JX_F64, jv, sizeof(double) * (size_t)n)) {
    const double eps = 1e-6;
    for (int64_t i = 0; i < n; i++) {
      double keep = xv[i];
      xv[i] = keep + eps;
      double up = rd(jx_call(f, (jx_t[]){jx_array(JX_F64, jx_ndim(x), jx_shape(x), xv)}));
      xv[i] = keep - eps;
      double dn = rd(jx_call(f, (jx_t[]){jx_array(JX_F64, jx_ndim(x), jx_shape(x), xv)}));
      xv[i] = keep;
      double fd = (up - dn) / (2 * eps);
      CHECKF(fabs(gv[i] - fd) <= 1e-6 * (1 + fabs(fd)), "%s: grad[%lld] = %.12g, differences %.12g", name,
             (long long)i, gv[i], fd);
      CHECKF(fabs(jv[i] - gv[i]) <= 1e-12 * (1 + fabs(gv[i])), "%s: jit(grad)[%lld] = %.12g vs %.12g", name,
             (long long)i, jv[i], gv[i]);
    }
  }
  free(xv), free(gv), free(jv);
  jx_fn_free(jg), jx_fn_free(g), jx_fn_free(f);
  jx_pool_pop();
}

static jx_t op_sort0(jx_t x) { return jx_sort(x, 0); }
static jx_t op_sort_last(jx_t x) { return jx_sort(x, -1); }
static jx_t op_topk(jx_t x) { return jx_at(jx_top_k(x, 3), 0); }
static jx_t op_by_key(jx_t x) { /* x's rows carried by the keys sin(3 x[0]) */
  jx_t k = jx_sin(jx_mul(x, jx_scalar(3.0)));
  return jx_at(jx_sort_multi(2, (jx_t[]){k, x}, 1, 1), 1);
}
static jx_t op_cumsum(jx_t x) { return jx_cumsum(x, 1); }
static jx_t op_cumsum_rev(jx_t x) { return jx_cumsum_ex(x, 0, true); }
static jx_t op_cumprod(jx_t x) { return jx_cumprod(x, 1, false); }
static jx_t op_cumprod_rev(jx_t x) { return jx_cumprod(x, -1, true); }
static jx_t op_cummax(jx_t x) { return jx_cummax(x, 1, false); }
static jx_t op_cummin(jx_t x) { return jx_cummin(x, 0, true); }
static jx_t op_cumlse(jx_t x) { return jx_cumlogsumexp(x, 1, false); }
static jx_t op_cumlse_rev(jx_t x) { return jx_cumlogsumexp(x, 0, true); }
static jx_t add2(const jx_t *a, void *u) {
  (void)u;
  return jx_add(a[0], a[1]);
}
static jx_t op_assoc_add(jx_t x) {
  jx_fn *f = jx_fn_new(add2, 2, NULL);
  jx_t r = jx_associative_scan(f, x, 1, false);
  jx_fn_free(f);
  return r;
}
static jx_t op_einsum_chain(jx_t x) { /* x used thrice, with a diagonal */
  jx_t m = jx_reshape(jx_slice(jx_reshape(x, 1, (int64_t[]){12}), (int64_t[]){0}, (int64_t[]){9}, NULL), 2,
                      (int64_t[]){3, 3});
  return jx_einsum("ij,jk,kk->ik", 3, (jx_t[]){m, jx_tanh(m), m});
}

static void test_grads(void) {
  jx_pool_push();
  double v[12] = {0.3, -1.2, 2.5, 0.7, -0.4, 1.9, -2.2, 0.1, 1.1, -0.9, 0.55, -1.7};
  jx_t x = jx_reshape(vec(12, v), 2, (int64_t[]){3, 4});
  check_grad("sort axis 0", op_sort0, x);
  check_grad("sort axis -1", op_sort_last, x);
  check_grad("top_k", op_topk, x);
  check_grad("sort_multi values", op_by_key, x);
  check_grad("cumsum", op_cumsum, x);
  check_grad("cumsum reverse", op_cumsum_rev, x);
  check_grad("cumprod", op_cumprod, x);
  check_grad("cumprod reverse", op_cumprod_rev, x);
  check_grad("cummax", op_cummax, x);
  check_grad("cummin reverse", op_cummin, x);
  check_grad("cumlogsumexp", op_cumlse, x);
  check_grad("cumlogsumexp reverse", op_cumlse_rev, x);
  check_grad("associative_scan add", op_assoc_add, x);
  check_grad("einsum ij,jk,kk->ik", op_einsum_chain, x);
  jx_pool_pop();
}

static jx_t cumprod0(const jx_t *a, void *u) {
  (void)u;
  return jx_cumprod(a[0], 0, false);
}
/* cumprod's tangent where the input has a zero: (2, 0, 3) with tangent
 * (1, 1, 1) gives (1, 2, 6), as the product rule does (a y / x formula
 * would give NaN) */
static void test_cumprod_zero(void) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(cumprod0, 1, NULL);
  jx_t r = jx_jvp(f, (jx_t[]){vec(3, (double[]){2, 0, 3})}, (jx_t[]){vec(3, (double[]){1, 1, 1})});
  double t[3] = {0};
  CHECK(jx_ok(r) && !jx_read(jx_at(r, 1), JX_F64, t, sizeof t) && t[0] == 1 && t[1] == 2 && t[2] == 6);
  jx_fn_free(f);
  jx_pool_pop();
}

/* --------------------------------------------------- associative scan */
/* the affine recurrence h' = a h + b as pairs: (a1, b1) then (a2, b2) is
 * (a1 a2, a2 b1 + b2) — associative, not commutative */
static jx_t affine(const jx_t *x, void *u) {
  (void)u;
  jx_t a1 = jx_at(x[0], 0), b1 = jx_at(x[0], 1), a2 = jx_at(x[1], 0), b2 = jx_at(x[1], 1);
  return JX_TUPLE(jx_mul(a1, a2), jx_add(jx_mul(a2, b1), b2));
}
static jx_t assoc_affine_body(const jx_t *a, void *u) {
  jx_fn *f = jx_fn_new(affine, 2, NULL);
  jx_t r = jx_associative_scan(f, JX_TUPLE(a[0], a[1]), 0, *(bool *)u);
  jx_fn_free(f);
  return jx_at(r, 1);
}

static void test_associative_scan(void) {
  jx_pool_push();
  for (int len = 1; len <= 9; len++)
    for (int rev = 0; rev < 2; rev++) {
      double av[9], bv[9], want[9];
      for (int i = 0; i < len; i++) av[i] = 0.5 + 0.1 * i, bv[i] = 1.0 - 0.3 * i;
      double h = 0; /* sequential reference: h_i = a_i h_{i-1} + b_i (from the end when reverse) */
      for (int k = 0; k < len; k++) {
        int i = rev ? len - 1 - k : k;
        h = (k ? av[i] * h : 0) + bv[i];
        want[i] = h;
      }
      bool r = rev;
      jx_fn *f = jx_fn_new(assoc_affine_body, 2, &r), *jf = jx_jit(f);
      jx_t args[2] = {vec(len, av), vec(len, bv)};
      for (int j = 0; j < 2; j++) {
        double got[9];
        jx_t y = jx_call(j ? jf : f, args);
        CHECKF(jx_ok(y) && !jx_read(y, JX_F64, got, sizeof got), "associative_scan len %d: %s", len,
               jx_error(y));
        for (int i = 0; jx_ok(y) && i < len; i++)
          CHECKF(fabs(got[i] - want[i]) < 1e-12, "associative_scan len %d rev %d%s [%d]: %g vs %g", len, rev,
                 j ? " jit" : "", i, got[i], want[i]);
      }
      jx_fn_free(jf), jx_fn_free(f);
    }
  /* equals cumsum on a 2-d array along either axis; errors */
  jx_fn *add = jx_fn_new(add2, 2, NULL);
  jx_t x = jx_reshape(jx_arange(JX_F32, 0, 12, 1), 2, (int64_t[]){3, 4});
  for (int ax = -2; ax < 2; ax++)
    CHECK(jx_item(jx_max(
              jx_abs(jx_sub(jx_associative_scan(add, x, ax, ax < 0), jx_cumsum_ex(x, ax, ax < 0))))) == 0);
  EXPECT_ERROR(jx_associative_scan(add, x, 2, false), "associative_scan", "axis 2");
  EXPECT_ERROR(jx_associative_scan(add, JX_TUPLE(x, jx_ones(JX_F32, 1, (int64_t[]){5})), 0, false),
               "associative_scan", "length");
  jx_fn_free(add);
  jx_pool_pop();
}

/* ------------------------------------------------------------- vmap */
static jx_t topk_vals(const jx_t *a, void *u) {
  (void)u;
  return jx_at(jx_top_k(a[0], 2), 0);
}
static jx_t search_body(const jx_t *a, void *u) { return jx_searchsorted(a[0], a[1], u); }
static jx_t einsum_body(const jx_t *a, void *u) { return jx_einsum(u, 2, a); }

/* vmap(f) over axis 0 of its inputs vs a loop */
static void check_vmap(const char *name, jx_body body, void *u, int nin, const jx_t *in) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(body, nin, u), *vf = jx_vmap(f, NULL, 0);
  int64_t B = jx_shape(in[0])[0];
  jx_t rows[8];
  for (int64_t b = 0; b < B; b++) {
    jx_t ex[4];
    for (int i = 0; i < nin; i++) {
      int r = jx_ndim(in[i]);
      int64_t st[8] = {0}, sp[8];
      for (int d = 0; d < r; d++) sp[d] = jx_shape(in[i])[d];
      st[0] = b, sp[0] = b + 1;
      ex[i] = jx_squeeze(jx_slice(in[i], st, sp, NULL), 0);
    }
    rows[b] = jx_call(f, ex);
  }
  jx_t got = jx_call(vf, in), want = jx_stack((int)B, rows, 0);
  CHECKF(jx_ok(got) && jx_ok(want) &&
             jx_item(jx_max(jx_abs(jx_sub(jx_astype(got, JX_F64), jx_astype(want, JX_F64))))) < 1e-12,
         "%s: vmap vs loop (%s)", name, jx_error(jx_ok(got) ? want : got));
  jx_fn_free(vf), jx_fn_free(f);
  jx_pool_pop();
}

static void test_vmap(void) {
  jx_pool_push();
  jx_t k = jx_random_key(3);
  jx_t x = jx_random_normal(k, JX_F64, 3, (int64_t[]){4, 3, 6});
  check_vmap("top_k", topk_vals, NULL, 1, &x);
  jx_t a = jx_sort(jx_random_normal(jx_random_fold_in(k, 1), JX_F64, 2, (int64_t[]){3, 8}), 1);
  jx_t v = jx_random_normal(jx_random_fold_in(k, 2), JX_F64, 2, (int64_t[]){3, 5});
  check_vmap("searchsorted left", search_body, "left", 2, (jx_t[]){a, v});
  check_vmap("searchsorted right", search_body, "right", 2, (jx_t[]){a, v});
  jx_t p = jx_random_normal(jx_random_fold_in(k, 3), JX_F64, 3, (int64_t[]){2, 3, 4});
  jx_t q = jx_random_normal(jx_random_fold_in(k, 4), JX_F64, 3, (int64_t[]){2, 4, 3});
  check_vmap("einsum ij,jk", einsum_body, "ij,jk", 2, (jx_t[]){p, q});
  check_vmap("einsum ij,ji->", einsum_body, "ij,ji->", 2, (jx_t[]){p, q});
  jx_pool_pop();
}

/* ---------------------------------------- einsum's contraction order */
static jx_t einsum3(const jx_t *a, void *u) { return jx_einsum(u, 3, a); }
/* the result type of the first dot_general in f's jaxpr */
static void first_dot(jx_body body, void *u, int n, const jx_t *in, const char *want, int ndots) {
  jx_fn *f = jx_fn_new(body, n, u);
  char *jp = jx_make_jaxpr(f, in);
  const char *d = jp ? strstr(jp, "dot_general") : NULL;
  const char *ls = d;
  while (ls && ls > jp && ls[-1] != '\n') ls--;
  char line[200] = "";
  if (ls) snprintf(line, sizeof line, "%.*s", (int)(d - ls), ls);
  CHECKF(strstr(line, want), "einsum '%s': first contraction is '%s', expected %s\n%s", (char *)u, line, want,
         jp ? jp : "");
  int count = 0;
  for (const char *s = jp; s && (s = strstr(s, "dot_general")); s++) count++;
  CHECKF(count == ndots, "einsum '%s': %d dot_generals, expected %d", (char *)u, count, ndots);
  jx_free_string(jp);
  jx_fn_free(f);
}

static void test_einsum_order(void) {
  jx_pool_push();
  /* the cheapest pair by FLOPs goes first, wherever it is in the spec */
  first_dot(einsum3, "ab,bc,cd->ad", 3,
            (jx_t[]){jx_ones(JX_F32, 2, (int64_t[]){3, 20}), jx_ones(JX_F32, 2, (int64_t[]){20, 2}),
                     jx_ones(JX_F32, 2, (int64_t[]){2, 10})},
            "f32[3,2]", 2);
  first_dot(einsum3, "ab,bc,cd->ad", 3,
            (jx_t[]){jx_ones(JX_F32, 2, (int64_t[]){10, 2}), jx_ones(JX_F32, 2, (int64_t[]){2, 20}),
                     jx_ones(JX_F32, 2, (int64_t[]){20, 3})},
            "f32[2,3]", 2);
  /* batch matmul: one dot_general, nothing else */
  jx_fn *f = jx_fn_new(einsum_body, 2, "bij,bjk->bik");
  char *jp = jx_make_jaxpr(
      f, (jx_t[]){jx_ones(JX_F32, 3, (int64_t[]){2, 3, 4}), jx_ones(JX_F32, 3, (int64_t[]){2, 4, 5})});
  CHECKF(jp && strstr(jp, "dot_general") && !strstr(jp, "transpose") && !strstr(jp, "reduce_sum"), "%s", jp);
  jx_free_string(jp);
  jx_fn_free(f);
  jx_pool_pop();
}

/* ----------------------------------------------------------- errors */
static jx_t sort_body(const jx_t *a, void *u) {
  (void)u;
  return jx_sort(a[0], 0);
}

static void test_errors(void) {
  jx_pool_push();
  jx_t m = jx_ones(JX_F32, 2, (int64_t[]){2, 3}), n = jx_ones(JX_F32, 2, (int64_t[]){4, 5});
  jx_t v3 = jx_ones(JX_F32, 1, (int64_t[]){3}), s = jx_scalar(1.0);
  EXPECT_ERROR(jx_einsum("ij,jk->ik", 2, (jx_t[]){m, n}), "einsum('ij,jk->ik', f32[2,3], f32[4,5])",
               "label 'j'");
  EXPECT_ERROR(jx_einsum("ij,jk", 1, &m), "einsum('ij,jk', f32[2,3])", "operands");
  EXPECT_ERROR(jx_einsum("ij", 2, (jx_t[]){m, m}), "einsum('ij'", "1 terms for 2 operands");
  EXPECT_ERROR(jx_einsum("i$j", 1, &m), "einsum('i$j'", "'$'");
  EXPECT_ERROR(jx_einsum("ijk", 1, &m), "einsum('ijk', f32[2,3])", "rank 2");
  EXPECT_ERROR(jx_einsum("ij->k", 1, &m), "output label 'k'");
  EXPECT_ERROR(jx_einsum("ij->ii", 1, &m), "output label 'i' repeated");
  EXPECT_ERROR(jx_einsum("ij->i->j", 1, &m), "more than one '->'");
  EXPECT_ERROR(jx_einsum("...j->j", 1, &m), "'...'");
  EXPECT_ERROR(jx_einsum("...i,...i", 2, (jx_t[]){m, jx_ones(JX_F32, 2, (int64_t[]){3, 3})}), "einsum",
               "size");
  EXPECT_ERROR(jx_einsum(NULL, 1, &m), "einsum", "NULL");
  EXPECT_ERROR(jx_einsum("i", 0, NULL), "einsum", "operands");
  EXPECT_ERROR(jx_sort(m, 2), "sort(f32[2,3])", "axis 2");
  EXPECT_ERROR(jx_sort(s, 0), "sort", "axis 0");
  EXPECT_ERROR(jx_argsort(m, -3), "argsort(f32[2,3])", "axis -3");
  EXPECT_ERROR(jx_sort_multi(2, (jx_t[]){m, n}, 0, 1), "sort(f32[2,3], f32[4,5])", "same shape");
  EXPECT_ERROR(jx_sort_multi(2, (jx_t[]){m, m}, 0, 3), "sort", "num_keys 3");
  EXPECT_ERROR(jx_sort_multi(2, (jx_t[]){m, m}, 0, 0), "sort", "num_keys 0");
  EXPECT_ERROR(jx_sort_multi(0, NULL, 0, 1), "sort_multi");
  EXPECT_ERROR(jx_top_k(m, 4), "top_k(f32[2,3])", "k = 4");
  EXPECT_ERROR(jx_top_k(m, -1), "top_k", "k = -1");
  EXPECT_ERROR(jx_top_k(s, 1), "top_k", "rank");
  EXPECT_ERROR(jx_searchsorted(m, v3, NULL), "searchsorted(f32[2,3], f32[3])", "1-D");
  EXPECT_ERROR(jx_searchsorted(v3, v3, "middle"), "searchsorted", "middle");
  EXPECT_ERROR(jx_cumsum(m, 2), "cumsum(f32[2,3])", "axis 2");
  EXPECT_ERROR(jx_cumsum(s, 0), "cumsum", "axis 0");
  EXPECT_ERROR(jx_cummax(m, -3, true), "cummax", "axis -3");
  EXPECT_ERROR(jx_dot_general(m, n, 1, (int[]){1}, (int[]){0}, 0, NULL, NULL, NULL), "dot_general", "3", "4");
  EXPECT_ERROR(jx_dot_general(m, n, 1, (int[]){2}, (int[]){0}, 0, NULL, NULL, NULL), "dot_general",
               "dimension 2");
  EXPECT_ERROR(jx_tensordot(m, n, 1, NULL, NULL), "dot_general", "3", "4");
  EXPECT_ERROR(jx_tensordot(m, n, 3, NULL, NULL), "tensordot(f32[2,3], f32[4,5])");
  /* error values pass through */
  jx_t e = jx_error_new("upstream");
  EXPECT_ERROR(jx_sort(e, 0), "upstream");
  EXPECT_ERROR(jx_cumsum(e, 0), "upstream");
  EXPECT_ERROR(jx_einsum("i", 1, &e), "upstream");
  /* jit reports the same error as eager */
  jx_fn *f = jx_fn_new(sort_body, 1, NULL), *jf = jx_jit(f);
  EXPECT_ERROR(jx_call(jf, &s), "sort", "axis 0");
  jx_fn_free(jf), jx_fn_free(f);
  jx_pool_pop();
}

/* ------------------------------------------------------------ misc */
static void test_misc(void) {
  jx_pool_push();
  /* dot_general: negative dims, batch dims, preferred element type */
  jx_t a = jx_reshape(jx_arange(JX_F32, 0, 24, 1), 3, (int64_t[]){2, 3, 4});
  jx_t b = jx_reshape(jx_arange(JX_F32, 0, 40, 1), 3, (int64_t[]){2, 4, 5});
  jx_dtype f64 = JX_F64;
  jx_t d = jx_dot_general(a, b, 1, (int[]){-1}, (int[]){1}, 1, (int[]){0}, (int[]){-3}, &f64);
  jx_t want = jx_matmul(jx_astype(a, JX_F64), jx_astype(b, JX_F64));
  CHECK(jx_ok(d) && jx_dtype_of(d) == JX_F64 && jx_item(jx_max(jx_abs(jx_sub(d, want)))) == 0);
  jx_dtype i32 = JX_I32;
  jx_t di = jx_dot_general(a, b, 1, (int[]){2}, (int[]){1}, 1, (int[]){0}, (int[]){0}, &i32);
  CHECK(jx_ok(di) && jx_dtype_of(di) == JX_I32);
  jx_dtype bad = (jx_dtype)99;
  EXPECT_ERROR(jx_dot_general(a, b, 1, (int[]){2}, (int[]){1}, 0, NULL, NULL, &bad), "preferred");
  /* tensordot with explicit axes */
  jx_t t = jx_tensordot(a, jx_transpose(b, (int[]){1, 0, 2}), 2, (int[]){0, 2}, (int[]){1, 0});
  CHECK(jx_ok(t) && jx_ndim(t) == 2 && jx_shape(t)[0] == 3 && jx_shape(t)[1] == 5);
  /* argsort gives i32; sort keeps the dtype; bool sorts */
  jx_t bl = jx_gt(jx_array(JX_I32, 1, (int64_t[]){4}, (int32_t[]){1, -1, 3, -2}), jx_scalar_int(0));
  int32_t iv[4];
  uint8_t bv[4];
  CHECK(jx_dtype_of(jx_argsort(bl, 0)) == JX_I32 && !jx_read(jx_argsort(bl, 0), JX_I32, iv, sizeof iv) &&
        iv[0] == 1 && iv[1] == 3 && iv[2] == 0 && iv[3] == 2);
  CHECK(!jx_read(jx_sort(bl, 0), JX_BOOL, bv, sizeof bv) && !bv[0] && !bv[1] && bv[2] && bv[3]);
  /* the jaxpr prints lax.sort's params */
  jx_fn *f = jx_fn_new(sort_body, 1, NULL);
  char *jp = jx_make_jaxpr(f, &a);
  CHECKF(jp && strstr(jp, "sort[dimension=0 is_stable=True num_keys=1]"), "%s", jp);
  jx_free_string(jp);
  jx_fn_free(f);
  jx_pool_pop();
}

/* a sort equation must have one output per operand: the typecheck (which
 * guards jaxprs from elsewhere) rejects any other count, before sort's
 * abstract eval could write past the outputs */
static void test_typecheck(void) {
  jx_pool_push();
  jx_jaxpr *j = jx_jaxpr_new();
  jx_aval a = {.dtype = JX_F32, .ndim = 1, .shape = {4}};
  int x = jx_jaxpr_add_invar(j, &a), y = jx_jaxpr_add_invar(j, &a), out[2];
  jx_params pa;
  memset(&pa, 0, sizeof pa);
  pa.kind = JX_PK_SORT, pa.sort.num_keys = 1;
  CHECK(jx_jaxpr_add_eqn(j, JX_P_sort, &pa, 2, (int[]){x, y}, 1, &a, out) == 0);
  CHECK(jx_jaxpr_set_outs(j, 1, out) == 0);
  EXPECT_ERROR(jx_jaxpr_typecheck(j), "sort", "one output per input");
  jx_jaxpr_release(j);
  j = jx_jaxpr_new();
  x = jx_jaxpr_add_invar(j, &a), y = jx_jaxpr_add_invar(j, &a);
  CHECK(jx_jaxpr_add_eqn(j, JX_P_sort, &pa, 2, (int[]){x, y}, 2, (jx_aval[]){a, a}, out) == 0);
  CHECK(jx_jaxpr_set_outs(j, 2, out) == 0);
  CHECK(jx_jaxpr_typecheck(j) == NULL);
  jx_jaxpr_release(j);
  jx_pool_pop();
}

int main(void) {
  test_typecheck();
  test_golden();
  test_grads();
  test_cumprod_zero();
  test_associative_scan();
  test_vmap();
  test_einsum_order();
  test_errors();
  test_misc();
  return check_report("test_sort");
}
