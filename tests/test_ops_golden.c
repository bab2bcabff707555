/* Golden tests: every op of jx.h's "ops" section and the array-creation
 * functions, checked against reference results NumPy computed (with JAX's
 * semantics where they differ) by tests/golden/gen_golden.py.
 *
 * The data file, golden/ops_golden.txt (relative to tests/, where ctest runs
 * this), holds one case per line:
 *     <op> <params> <nin> {<dtype> <weak> <shape> <pre> <values...>}*nin
 *         -> (<dtype> <weak|?> <shape> <values...> | ERR) [!xfail:<reason>]
 * (the generator's docstring documents every field). Each case is run in
 * its own pool; dtype, shape and (where given) the weak flag must match
 * exactly; values exactly for bool/ints and layout ops, within a per-op
 * tolerance for floats. A case whose op this file does not know fails, as
 * does an op here that has no cases. '!xfail' cases are known deviations
 * from JAX: they are run and listed, but do not fail the test. */
#include "check.h"
#include "jx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

/* the data files: the first round's ops, then issue #18's math part */
static const char *const GOLDEN_FILES[] = {"golden/ops_golden.txt", "golden/math_golden.txt"};
static const char *GOLDEN_PATH; /* the file being read, for messages */
#define MAX_IN 32

/* ------------------------------------------------------------ tolerance */
typedef enum {
  TOL_EXACT, /* layout, creation, comparisons: bit-for-bit (NaN == NaN) */
  TOL_ARITH, /* correctly rounded arithmetic: + - * / sqrt, conversions */
  TOL_MATH,  /* libm functions: a few ulp */
  TOL_ACC,   /* accumulations: sums, means, dot products, softmax family */
} tol_kind;

static void tolerance(tol_kind k, jx_dtype dt, double *rtol, double *atol) {
  bool f32 = dt == JX_F32;
  switch (k) {
    case TOL_EXACT: *rtol = 0, *atol = 0; break;
    case TOL_ARITH: *rtol = f32 ? 2e-6 : 1e-12, *atol = f32 ? 1e-37 : 1e-300; break;
    case TOL_MATH: *rtol = f32 ? 2e-6 : 1e-12, *atol = f32 ? 1e-37 : 1e-300; break;
    case TOL_ACC: *rtol = f32 ? 1e-5 : 1e-12, *atol = f32 ? 1e-5 : 1e-12; break;
  }
}

/* -------------------------------------------------------------- params */
/* The value of key in "k1=v1;k2=v2" copied into out; false if absent. */
static bool param(const char *params, const char *key, char *out, size_t n) {
  size_t kl = strlen(key);
  const char *p = params;
  while (p && *p) {
    if (!strncmp(p, key, kl) && p[kl] == '=') {
      const char *v = p + kl + 1, *end = strchr(v, ';');
      size_t len = end ? (size_t)(end - v) : strlen(v);
      if (len + 1 > n) return false;
      memcpy(out, v, len);
      out[len] = 0;
      return true;
    }
    p = strchr(p, ';');
    if (p) p++;
  }
  return false;
}

/* A list of integers separated by sep ("E" is JX_END); -1 on a parse error. */
static int parse_list(const char *s, char sep, int64_t *out, int max) {
  int n = 0;
  if (!*s) return 0;
  for (;;) {
    if (n == max) return -1;
    if (*s == 'E') {
      out[n++] = JX_END;
      s++;
    } else {
      char *end;
      errno = 0;
      long long v = strtoll(s, &end, 10);
      if (end == s || errno) return -1;
      out[n++] = v;
      s = end;
    }
    if (!*s) return n;
    if (*s != sep) return -1;
    s++;
  }
}

/* "s" (0-d) or dims joined by 'x'. */
static int parse_shape(const char *s, int64_t *shape) {
  if (!strcmp(s, "s")) return 0;
  return parse_list(s, 'x', shape, JX_MAX_RANK);
}

static bool param_int(const char *params, const char *key, int *out) {
  char buf[64];
  int64_t v;
  if (!param(params, key, buf, sizeof buf) || parse_list(buf, ',', &v, 1) != 1) return false;
  *out = (int)v;
  return true;
}

static bool param_double(const char *params, const char *key, double *out) {
  char buf[64], *end;
  if (!param(params, key, buf, sizeof buf)) return false;
  *out = strtod(buf, &end);
  return end != buf && !*end;
}

static bool parse_dtype(const char *s, jx_dtype *dt) {
  for (int d = 0; d < JX_DTYPE_COUNT; d++)
    if (!strcmp(s, jx_dtype_name((jx_dtype)d))) {
      *dt = (jx_dtype)d;
      return true;
    }
  return false;
}

static bool param_dtype(const char *params, jx_dtype *dt) {
  char buf[16];
  return param(params, "dt", buf, sizeof buf) && parse_dtype(buf, dt);
}

/* ------------------------------------------------------------ adapters */
/* Each adapter runs one op on the case's inputs; *bad is set when the
 * params cannot be parsed (a broken case, which fails). */
typedef jx_t (*adapter)(const char *p, int nin, const jx_t *in, bool *bad);

#define BAD()                                                                                                \
  do {                                                                                                       \
    *bad = true;                                                                                             \
    return NULL;                                                                                             \
  } while (0)

static jx_t ad_where(const char *p, int nin, const jx_t *in, bool *bad) {
  (void)p, (void)nin, (void)bad;
  return jx_where(in[0], in[1], in[2]);
}
static jx_t ad_astype(const char *p, int nin, const jx_t *in, bool *bad) {
  (void)nin;
  jx_dtype dt;
  if (!param_dtype(p, &dt)) BAD();
  return jx_astype(in[0], dt);
}

/* axes=<list>;keep=<0|1> */
static bool axes_keep(const char *p, int *axes, int *naxes, bool *keep) {
  char buf[128];
  int64_t a[JX_MAX_RANK + 1];
  int k;
  if (!param(p, "axes", buf, sizeof buf) || (*naxes = parse_list(buf, ',', a, JX_MAX_RANK + 1)) < 0)
    return false;
  for (int i = 0; i < *naxes; i++) axes[i] = (int)a[i];
  if (!param_int(p, "keep", &k)) return false;
  *keep = k != 0;
  return true;
}
#define AXES_ADAPTER(name)                                                                                   \
  static jx_t ad_##name(const char *p, int nin, const jx_t *in, bool *bad) {                                 \
    (void)nin;                                                                                               \
    int axes[JX_MAX_RANK + 1], n;                                                                            \
    bool keep;                                                                                               \
    if (!axes_keep(p, axes, &n, &keep)) BAD();                                                               \
    return jx_##name(in[0], n, axes, keep);                                                                  \
  }
AXES_ADAPTER(sum_axes)
AXES_ADAPTER(mean_axes)
AXES_ADAPTER(max_axes)
AXES_ADAPTER(min_axes)

#define AXIS_KEEP_ADAPTER(name)                                                                              \
  static jx_t ad_##name(const char *p, int nin, const jx_t *in, bool *bad) {                                 \
    (void)nin;                                                                                               \
    int axis, keep;                                                                                          \
    if (!param_int(p, "axis", &axis) || !param_int(p, "keep", &keep)) BAD();                                 \
    return jx_##name(in[0], axis, keep != 0);                                                                \
  }
AXIS_KEEP_ADAPTER(argmax)
AXIS_KEEP_ADAPTER(argmin)

#define AXIS_ADAPTER(name)                                                                                   \
  static jx_t ad_##name(const char *p, int nin, const jx_t *in, bool *bad) {                                 \
    (void)nin;                                                                                               \
    int axis;                                                                                                \
    if (!param_int(p, "axis", &axis)) BAD();                                                                 \
    return jx_##name(in[0], axis);                                                                           \
  }
AXIS_ADAPTER(expand_dims)
AXIS_ADAPTER(squeeze)
AXIS_ADAPTER(logsumexp)
AXIS_ADAPTER(softmax)
AXIS_ADAPTER(log_softmax)

static jx_t ad_reshape(const char *p, int nin, const jx_t *in, bool *bad) {
  (void)nin;
  char buf[128];
  int64_t shape[JX_MAX_RANK];
  int n;
  if (!param(p, "shape", buf, sizeof buf) || (n = parse_shape(buf, shape)) < 0) BAD();
  return jx_reshape(in[0], n, shape);
}
static jx_t ad_broadcast_to(const char *p, int nin, const jx_t *in, bool *bad) {
  (void)nin;
  char buf[128];
  int64_t shape[JX_MAX_RANK];
  int n;
  if (!param(p, "shape", buf, sizeof buf) || (n = parse_shape(buf, shape)) < 0) BAD();
  return jx_broadcast_to(in[0], n, shape);
}
static jx_t ad_transpose(const char *p, int nin, const jx_t *in, bool *bad) {
  (void)nin;
  char buf[128];
  int64_t perm64[JX_MAX_RANK];
  int perm[JX_MAX_RANK], n;
  if (!param(p, "perm", buf, sizeof buf)) BAD();
  if (!strcmp(buf, "none")) return jx_transpose(in[0], NULL);
  if ((n = parse_list(buf, ',', perm64, JX_MAX_RANK)) < 0 || n != jx_ndim(in[0])) BAD();
  for (int i = 0; i < n; i++) perm[i] = (int)perm64[i];
  return jx_transpose(in[0], perm);
}
static jx_t ad_slice(const char *p, int nin, const jx_t *in, bool *bad) {
  (void)nin;
  char buf[256];
  int64_t start[JX_MAX_RANK], stop[JX_MAX_RANK], step[JX_MAX_RANK];
  int r = jx_ndim(in[0]);
  if (!param(p, "start", buf, sizeof buf) || parse_list(buf, ',', start, JX_MAX_RANK) != r) BAD();
  if (!param(p, "stop", buf, sizeof buf) || parse_list(buf, ',', stop, JX_MAX_RANK) != r) BAD();
  if (!param(p, "step", buf, sizeof buf)) BAD();
  if (!strcmp(buf, "none")) return jx_slice(in[0], start, stop, NULL);
  if (parse_list(buf, ',', step, JX_MAX_RANK) != r) BAD();
  return jx_slice(in[0], start, stop, step);
}
static jx_t ad_concatenate(const char *p, int nin, const jx_t *in, bool *bad) {
  int axis;
  if (!param_int(p, "axis", &axis)) BAD();
  return jx_concatenate(nin, in, axis);
}
static jx_t ad_stack(const char *p, int nin, const jx_t *in, bool *bad) {
  int axis;
  if (!param_int(p, "axis", &axis)) BAD();
  return jx_stack(nin, in, axis);
}
static jx_t ad_take(const char *p, int nin, const jx_t *in, bool *bad) {
  (void)nin;
  int axis;
  if (!param_int(p, "axis", &axis)) BAD();
  return jx_take(in[0], in[1], axis);
}
static jx_t ad_one_hot(const char *p, int nin, const jx_t *in, bool *bad) {
  (void)nin;
  int n;
  if (!param_int(p, "n", &n)) BAD();
  return jx_one_hot(in[0], n);
}

/* creation */
static jx_t creation(const char *p, bool *bad, int which) {
  jx_dtype dt;
  char buf[128];
  int64_t shape[JX_MAX_RANK];
  int n;
  double v = 0;
  if (!param_dtype(p, &dt) || !param(p, "shape", buf, sizeof buf) || (n = parse_shape(buf, shape)) < 0) BAD();
  if (which == 2 && !param_double(p, "v", &v)) BAD();
  return which == 0 ? jx_zeros(dt, n, shape) : which == 1 ? jx_ones(dt, n, shape) : jx_full(dt, n, shape, v);
}
static jx_t ad_zeros(const char *p, int nin, const jx_t *in, bool *bad) {
  (void)nin, (void)in;
  return creation(p, bad, 0);
}
static jx_t ad_ones(const char *p, int nin, const jx_t *in, bool *bad) {
  (void)nin, (void)in;
  return creation(p, bad, 1);
}
static jx_t ad_full(const char *p, int nin, const jx_t *in, bool *bad) {
  (void)nin, (void)in;
  return creation(p, bad, 2);
}
static jx_t ad_arange(const char *p, int nin, const jx_t *in, bool *bad) {
  (void)nin, (void)in;
  jx_dtype dt;
  double start, stop, step;
  if (!param_dtype(p, &dt) || !param_double(p, "start", &start) || !param_double(p, "stop", &stop) ||
      !param_double(p, "step", &step))
    BAD();
  return jx_arange(dt, start, stop, step);
}
static jx_t ad_scalar(const char *p, int nin, const jx_t *in, bool *bad) {
  (void)nin, (void)in;
  double v;
  if (!param_double(p, "v", &v)) BAD();
  return jx_scalar(v);
}
static jx_t ad_scalar_int(const char *p, int nin, const jx_t *in, bool *bad) {
  (void)nin, (void)in;
  double v;
  if (!param_double(p, "v", &v)) BAD();
  return jx_scalar_int((int64_t)v);
}
static jx_t ad_scalar_of(const char *p, int nin, const jx_t *in, bool *bad) {
  (void)nin, (void)in;
  jx_dtype dt;
  double v;
  if (!param_dtype(p, &dt) || !param_double(p, "v", &v)) BAD();
  return jx_scalar_of(dt, v);
}

#include "golden_math.inc" /* adapters of issue #18's math ops (MATH_GOLDEN_OPS) */

/* --------------------------------------------------------------- table */
typedef struct {
  const char *name;
  int nin; /* -1: any number >= 1 */
  tol_kind tol;
  jx_t (*unary)(jx_t);
  jx_t (*binary)(jx_t, jx_t);
  adapter fn;
} op_def;

#define U(nm, tol)                                                                                           \
  { #nm, 1, tol, jx_##nm, NULL, NULL }
#define B(nm, tol)                                                                                           \
  { #nm, 2, tol, NULL, jx_##nm, NULL }
#define F(nm, n, tol)                                                                                        \
  { #nm, n, tol, NULL, NULL, ad_##nm }
static const op_def OPS[] = {B(add, TOL_ARITH),
                             B(sub, TOL_ARITH),
                             B(mul, TOL_ARITH),
                             B(div, TOL_ARITH),
                             B(pow, TOL_MATH),
                             B(maximum, TOL_EXACT),
                             B(minimum, TOL_EXACT),
                             U(neg, TOL_EXACT),
                             U(abs, TOL_EXACT),
                             U(exp, TOL_MATH),
                             U(log, TOL_MATH),
                             U(log1p, TOL_MATH),
                             U(expm1, TOL_MATH),
                             U(sqrt, TOL_ARITH),
                             U(rsqrt, TOL_MATH),
                             U(tanh, TOL_MATH),
                             U(sin, TOL_MATH),
                             U(cos, TOL_MATH),
                             U(sigmoid, TOL_MATH),
                             U(square, TOL_ARITH),
                             U(sign, TOL_EXACT),
                             U(floor, TOL_EXACT),
                             U(relu, TOL_EXACT),
                             U(logical_not, TOL_EXACT),
                             B(eq, TOL_EXACT),
                             B(ne, TOL_EXACT),
                             B(lt, TOL_EXACT),
                             B(le, TOL_EXACT),
                             B(gt, TOL_EXACT),
                             B(ge, TOL_EXACT),
                             F(where, 3, TOL_EXACT),
                             F(astype, 1, TOL_ARITH),
                             U(stop_gradient, TOL_EXACT),
                             U(sum, TOL_ACC),
                             U(mean, TOL_ACC),
                             U(max, TOL_EXACT),
                             U(min, TOL_EXACT),
                             F(sum_axes, 1, TOL_ACC),
                             F(mean_axes, 1, TOL_ACC),
                             F(max_axes, 1, TOL_EXACT),
                             F(min_axes, 1, TOL_EXACT),
                             F(argmax, 1, TOL_EXACT),
                             F(argmin, 1, TOL_EXACT),
                             B(dot, TOL_ACC),
                             B(matmul, TOL_ACC),
                             F(reshape, 1, TOL_EXACT),
                             F(transpose, 1, TOL_EXACT),
                             F(broadcast_to, 1, TOL_EXACT),
                             F(expand_dims, 1, TOL_EXACT),
                             F(squeeze, 1, TOL_EXACT),
                             F(slice, 1, TOL_EXACT),
                             F(concatenate, -1, TOL_EXACT),
                             F(stack, -1, TOL_EXACT),
                             F(take, 2, TOL_EXACT),
                             F(one_hot, 1, TOL_EXACT),
                             F(logsumexp, 1, TOL_ACC),
                             F(softmax, 1, TOL_ACC),
                             F(log_softmax, 1, TOL_ACC),
                             F(zeros, 0, TOL_EXACT),
                             F(ones, 0, TOL_EXACT),
                             F(full, 0, TOL_EXACT),
                             F(arange, 0, TOL_ARITH),
                             U(zeros_like, TOL_EXACT),
                             U(ones_like, TOL_EXACT),
                             F(scalar, 0, TOL_EXACT),
                             F(scalar_int, 0, TOL_EXACT),
                             F(scalar_of, 0, TOL_EXACT),
                             MATH_GOLDEN_OPS};
#define NOPS ((int)(sizeof OPS / sizeof OPS[0]))

typedef struct {
  int ran, passed, failed, xfail, xpass;
} op_stats;
static op_stats stats[NOPS];

/* ---------------------------------------------------------- case parser */
typedef struct {
  char *save;
  int line;
  const char *why; /* first parse problem */
} tokens;

static char *next_tok(tokens *t) {
  char *s = strtok_r(NULL, " \t\r\n", &t->save);
  if (!s && !t->why) t->why = "line ended early";
  return s;
}

/* Parse n values of dtype dt from the token stream into buf. */
static bool parse_values(tokens *t, jx_dtype dt, int64_t n, void *buf) {
  for (int64_t i = 0; i < n; i++) {
    char *s = next_tok(t), *end;
    if (!s) return false;
    errno = 0;
    switch (dt) {
      case JX_BOOL: ((uint8_t *)buf)[i] = (uint8_t)(strtol(s, &end, 10) != 0); break;
      case JX_I32: ((int32_t *)buf)[i] = (int32_t)strtoll(s, &end, 10); break;
      case JX_I64: ((int64_t *)buf)[i] = strtoll(s, &end, 10); break;
      case JX_U32: ((uint32_t *)buf)[i] = (uint32_t)strtoull(s, &end, 10); break;
      case JX_F32:
        ((float *)buf)[i] = strtof(s, &end);
        errno = 0;
        break; /* denormals set ERANGE */
      case JX_F64:
        ((double *)buf)[i] = strtod(s, &end);
        errno = 0;
        break;
      default: return false;
    }
    if (end == s || *end || errno) {
      t->why = "bad value";
      return false;
    }
  }
  return true;
}

static int64_t shape_size(int n, const int64_t *shape) {
  int64_t s = 1;
  for (int i = 0; i < n; i++) s *= shape[i];
  return s;
}

/* dtype weak shape pre values -> the input value (in the current pool) */
static jx_t parse_input(tokens *t) {
  char *s;
  jx_dtype dt;
  int64_t shape[JX_MAX_RANK];
  if (!(s = next_tok(t)) || !parse_dtype(s, &dt)) return t->why = t->why ? t->why : "bad input dtype", NULL;
  if (!(s = next_tok(t))) return NULL;
  bool weak = !strcmp(s, "1");
  int nd;
  if (!(s = next_tok(t)) || (nd = parse_shape(s, shape)) < 0)
    return t->why = t->why ? t->why : "bad input shape", NULL;
  char *pre = next_tok(t);
  if (!pre) return NULL;
  int64_t n = shape_size(nd, shape);
  void *buf = malloc((size_t)(n ? n : 1) * 8);
  if (!buf || !parse_values(t, dt, n, buf)) {
    free(buf);
    return NULL;
  }
  jx_t x;
  if (weak) {
    if (nd != 0 || (dt != JX_F32 && dt != JX_I32)) {
      free(buf);
      t->why = "weak inputs must be 0-d f32 or i32";
      return NULL;
    }
    x = dt == JX_F32 ? jx_scalar(*(float *)buf) : jx_scalar_int(*(int32_t *)buf);
  } else {
    x = jx_array(dt, nd, shape, buf);
  }
  free(buf);
  if (strcmp(pre, "-") != 0) {
    int64_t p64[JX_MAX_RANK];
    int perm[JX_MAX_RANK], np;
    if (pre[0] != 'T' || (np = parse_list(pre + 1, ',', p64, JX_MAX_RANK)) != nd) {
      t->why = "bad pre-transform";
      return NULL;
    }
    for (int i = 0; i < np; i++) perm[i] = (int)p64[i];
    x = jx_transpose(x, perm);
  }
  if (!jx_ok(x)) {
    t->why = "could not build an input";
    return NULL;
  }
  return x;
}

static int messages; /* failure messages printed (capped) */
#define MAX_MESSAGES 60

static void report(int line, const char *op, const char *params, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report(int line, const char *op, const char *params, const char *fmt, ...) {
  if (messages++ >= MAX_MESSAGES) {
    if (messages == MAX_MESSAGES + 1) fprintf(stderr, "(further failures not shown)\n");
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s:%d: %s %s: ", GOLDEN_PATH, line, op, params);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static double elem(jx_dtype dt, const void *buf, int64_t i) {
  switch (dt) {
    case JX_BOOL: return ((const uint8_t *)buf)[i];
    case JX_I32: return ((const int32_t *)buf)[i];
    case JX_I64: return (double)((const int64_t *)buf)[i];
    case JX_U32: return ((const uint32_t *)buf)[i];
    case JX_F32: return ((const float *)buf)[i];
    default: return ((const double *)buf)[i];
  }
}

static bool elem_equal(jx_dtype dt, const void *a, const void *b, int64_t i) {
  size_t es = jx_dtype_size(dt);
  if (dt == JX_F32 || dt == JX_F64) {
    double x = elem(dt, a, i), y = elem(dt, b, i);
    return x == y || (isnan(x) && isnan(y));
  }
  return !memcmp((const char *)a + i * (int64_t)es, (const char *)b + i * (int64_t)es, es);
}

/* Compare result r against the expectation that follows in the token
 * stream. Returns true when it matches; describes the mismatch in msg. */
static bool check_result(tokens *t, jx_t r, const op_def *op, char *msg, size_t mn) {
  char *s = next_tok(t);
  if (!s) return snprintf(msg, mn, "missing expectation"), false;
  if (!strcmp(s, "ERR")) {
    if (jx_ok(r))
      return snprintf(msg, mn, "expected an error value, got a %s result", jx_dtype_name(jx_dtype_of(r))),
             false;
    if (!jx_error(r) || !*jx_error(r)) return snprintf(msg, mn, "error value without a message"), false;
    return true;
  }
  jx_dtype dt;
  int64_t shape[JX_MAX_RANK];
  int nd;
  if (!parse_dtype(s, &dt))
    return snprintf(msg, mn, "bad expected dtype"), t->why = "bad expected dtype", false;
  char *w = next_tok(t), *sh = next_tok(t);
  if (!w || !sh || (nd = parse_shape(sh, shape)) < 0)
    return snprintf(msg, mn, "bad expectation"), t->why = "bad expectation", false;
  int64_t n = shape_size(nd, shape);
  void *want = malloc((size_t)(n ? n : 1) * 8), *got = malloc((size_t)(n ? n : 1) * 8);
  bool ok = want && got && parse_values(t, dt, n, want);
  if (!ok) {
    snprintf(msg, mn, "bad expected values");
    goto out;
  }
  ok = false;
  if (!jx_ok(r)) {
    snprintf(msg, mn, "unexpected error: %s", jx_error(r) ? jx_error(r) : "(null)");
    goto out;
  }
  if (jx_dtype_of(r) != dt) {
    snprintf(msg, mn, "dtype %s, expected %s", jx_dtype_name(jx_dtype_of(r)), jx_dtype_name(dt));
    goto out;
  }
  bool same_shape = jx_ndim(r) == nd;
  for (int i = 0; same_shape && i < nd; i++) same_shape = jx_shape(r)[i] == shape[i];
  if (!same_shape) {
    char *str = jx_to_string(r);
    snprintf(msg, mn, "shape mismatch (expected rank %d, got rank %d): %.200s", nd, jx_ndim(r),
             str ? str : "");
    free(str);
    goto out;
  }
  if (strcmp(w, "?") != 0 && jx_is_weak(r) != (strcmp(w, "1") == 0)) {
    snprintf(msg, mn, "weak flag %d, expected %s", (int)jx_is_weak(r), w);
    goto out;
  }
  if (jx_read(r, dt, got, (size_t)(n ? n : 1) * 8) != 0) {
    snprintf(msg, mn, "jx_read failed");
    goto out;
  }
  double rtol = 0, atol = 0;
  tolerance(op->tol, dt, &rtol, &atol);
  bool is_float = dt == JX_F32 || dt == JX_F64;
  for (int64_t i = 0; i < n; i++) {
    bool good = is_float && op->tol != TOL_EXACT
                    ? check_close(elem(dt, got, i), elem(dt, want, i), rtol, atol)
                    : elem_equal(dt, got, want, i);
    if (!good) {
      snprintf(msg, mn, "element %lld of %lld: got %.17g, expected %.17g (rtol %g, atol %g)", (long long)i,
               (long long)n, elem(dt, got, i), elem(dt, want, i), rtol, atol);
      goto out;
    }
  }
  ok = true;
out:
  free(want);
  free(got);
  return ok;
}

/* Run one line. Returns false for a malformed line. */
static bool run_case(char *line, int lineno) {
  tokens t = {.line = lineno};
  char *opname = strtok_r(line, " \t\r\n", &t.save);
  if (!opname || opname[0] == '#') return true;
  char *params = next_tok(&t), *nins = next_tok(&t);
  if (!params || !nins) return false;
  const char *p = strcmp(params, "-") ? params : "";
  int k = -1;
  for (int i = 0; i < NOPS; i++)
    if (!strcmp(OPS[i].name, opname)) k = i;
  if (k < 0) {
    CHECKF(false, "%s:%d: unknown op '%s' in the golden data", GOLDEN_PATH, lineno, opname);
    return true;
  }
  const op_def *op = &OPS[k];
  int nin = atoi(nins);
  if (nin < 0 || nin > MAX_IN || (op->nin >= 0 && nin != op->nin) || (op->nin < 0 && nin < 1)) {
    CHECKF(false, "%s:%d: %s given %d inputs", GOLDEN_PATH, lineno, opname, nin);
    return true;
  }
  jx_pool_push();
  jx_t in[MAX_IN];
  bool parsed = true;
  for (int i = 0; i < nin && parsed; i++) parsed = (in[i] = parse_input(&t)) != NULL;
  char *arrow = parsed ? next_tok(&t) : NULL;
  if (!parsed || !arrow || strcmp(arrow, "->")) {
    jx_pool_pop();
    CHECKF(false, "%s:%d: malformed case (%s)", GOLDEN_PATH, lineno, t.why ? t.why : "no '->'");
    return true;
  }
  bool bad = false;
  jx_t r = op->unary ? op->unary(in[0]) : op->binary ? op->binary(in[0], in[1]) : op->fn(p, nin, in, &bad);
  char msg[512] = "";
  bool ok = !bad && check_result(&t, r, op, msg, sizeof msg);
  if (bad) snprintf(msg, sizeof msg, "bad params");
  /* an optional xfail marker ends the line */
  char *tail = strtok_r(NULL, " \t\r\n", &t.save);
  bool xfail = tail && !strncmp(tail, "!xfail:", 7);
  jx_pool_pop();
  if (t.why && !xfail) {
    CHECKF(false, "%s:%d: malformed case (%s)", GOLDEN_PATH, lineno, t.why);
    return true;
  }
  op_stats *st = &stats[k];
  st->ran++;
  if (xfail) {
    /* an expected failure that passes is a failure: the deviation is
       fixed (drop it from KNOWN_DEVIATIONS) or the case no longer tests it */
    if (ok) {
      st->xpass++;
      check_failed++;
      report(lineno, opname, params,
             "XPASS: known deviation '%s' now matches; drop it from KNOWN_DEVIATIONS "
             "in gen_golden.py",
             tail + 7);
    } else {
      st->xfail++;
      check_passed++;
    }
    return true;
  }
  if (ok) {
    st->passed++;
    check_passed++;
  } else {
    st->failed++;
    check_failed++;
    report(lineno, opname, params, "%s", msg);
  }
  return true;
}

/* Run every case of one data file. */
static void run_file(const char *path) {
  GOLDEN_PATH = path;
  FILE *f = fopen(GOLDEN_PATH, "r");
  CHECKF(f != NULL, "cannot open %s (run from tests/)", GOLDEN_PATH);
  if (!f) return;
  char *line = NULL;
  size_t cap = 0;
  int lineno = 0, declared = -1, cases = 0;
  while (getline(&line, &cap, f) >= 0) {
    lineno++;
    if (line[0] == '#') {
      int n;
      if (sscanf(line, "# %d cases:", &n) == 1) declared = n;
      continue;
    }
    if (line[0] == '\n' || line[0] == 0) continue;
    cases++;
    if (!run_case(line, lineno)) CHECKF(false, "%s:%d: malformed line", GOLDEN_PATH, lineno);
  }
  free(line);
  fclose(f);
  CHECKF(declared == cases, "%s declares %d cases but holds %d (truncated?)", path, declared, cases);
}

int main(void) {
  for (unsigned i = 0; i < sizeof GOLDEN_FILES / sizeof *GOLDEN_FILES; i++) run_file(GOLDEN_FILES[i]);

  printf("%-14s %6s %6s %6s %6s %6s\n", "op", "cases", "pass", "FAIL", "xfail", "xpass");
  int total = 0, xfails = 0;
  for (int i = 0; i < NOPS; i++) {
    op_stats *s = &stats[i];
    printf("%-14s %6d %6d %6d %6d %6d\n", OPS[i].name, s->ran, s->passed, s->failed, s->xfail, s->xpass);
    CHECKF(s->ran > 0, "op %s has no golden cases", OPS[i].name);
    total += s->ran;
    xfails += s->xfail;
  }
  printf("%d golden cases over %d ops (%d known deviations from JAX)\n", total, NOPS, xfails);
  return check_report("test_ops_golden");
}
