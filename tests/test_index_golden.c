/* The indexing ops against NumPy and PyTorch: golden/index_golden.txt,
 * made by tests/golden/gen_index_golden.py (its header has the format).
 * Each case runs eagerly and under jit (which must agree exactly). */
#include "check.h"

#include <jx.h>

#define GOLDEN_PATH "golden/index_golden.txt"
enum { MAXARGS = 4, LINE_MAX_ = 1 << 16 };

/* "<dtype> <shape> <values...>" at *s, advancing it past the values */
static jx_t parse_array(char **s) {
  char name[8];
  int len = 0;
  if (sscanf(*s, " %7s%n", name, &len) != 1) return NULL;
  *s += len;
  jx_dtype dt = JX_DTYPE_COUNT;
  for (int i = 0; i < JX_DTYPE_COUNT; i++)
    if (!strcmp(name, jx_dtype_name((jx_dtype)i))) dt = (jx_dtype)i;
  int64_t shape[JX_MAX_RANK], n = 1;
  int nd = 0;
  while (**s == ' ') (*s)++;
  if (**s == 's') {
    (*s)++;
  } else {
    for (;;) {
      shape[nd] = strtoll(*s, s, 10), n *= shape[nd++];
      if (**s != 'x') break;
      (*s)++;
    }
  }
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) v[i] = strtod(*s, s);
  jx_t x = dt == JX_DTYPE_COUNT ? NULL : jx_astype(jx_array(JX_F64, nd, shape, v), dt);
  if (dt == JX_I64) { /* exact beyond 2^53 */
    int64_t *w = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) w[i] = (int64_t)v[i];
    x = jx_array(JX_I64, nd, shape, w);
    free(w);
  }
  free(v);
  return x;
}

/* the integer list of key in params "k=1,2;l=3" */
static int param_ints(const char *params, const char *key, int64_t *out) {
  char pat[32];
  snprintf(pat, sizeof pat, "%s=", key);
  const char *p = params;
  while ((p = strstr(p, pat)) && p != params && p[-1] != ';') p++;
  if (!p) return 0;
  p += strlen(pat);
  int n = 0;
  for (;;) {
    char *end;
    out[n++] = strtoll(p, &end, 10);
    if (*end != ',') break;
    p = end + 1;
  }
  return n;
}
static const char *param_str(const char *params, const char *key, char *buf, size_t n) {
  const char *p = strstr(params, key);
  if (!p) return "";
  p += strlen(key) + 1;
  size_t i = 0;
  while (p[i] && p[i] != ';' && i + 1 < n) buf[i] = p[i], i++;
  buf[i] = 0;
  return buf;
}

/* torch.scatter_reduce(dim, index, src, include_self=True) as a scatter
 * with full index vectors: index at dim, each position's own elsewhere */
static jx_t scatter_reduce(jx_t x, jx_t index, jx_t src, int dim, const char *reduce) {
  int r = jx_ndim(x);
  int64_t s[JX_MAX_RANK + 1];
  memcpy(s, jx_shape(src), sizeof(int64_t) * (size_t)r);
  s[r] = 1;
  jx_t cols[JX_MAX_RANK];
  for (int d = 0; d < r; d++) {
    if (d == dim) {
      cols[d] = jx_expand_dims(index, r);
    } else {
      jx_t io = jx_arange(JX_I64, 0, (double)s[d], 1);
      int64_t one[JX_MAX_RANK + 1];
      for (int k = 0; k <= r; k++) one[k] = k == d ? s[d] : 1;
      cols[d] = jx_broadcast_to(jx_reshape(io, r + 1, one), r + 1, s);
    }
  }
  jx_scatter_dnums dn = {
      .ninserted_window_dims = r, .nscatter_dims_to_operand_dims = r, .index_vector_dim = r};
  for (int d = 0; d < r; d++) dn.inserted_window_dims[d] = dn.scatter_dims_to_operand_dims[d] = d;
  jx_t idx = jx_concatenate(r, cols, r);
  jx_t (*f)(jx_t, jx_t, jx_t, const jx_scatter_dnums *, jx_gather_mode) =
      !strcmp(reduce, "sum")    ? jx_scatter_add
      : !strcmp(reduce, "prod") ? jx_scatter_mul
      : !strcmp(reduce, "amax") ? jx_scatter_max
                                : jx_scatter_min;
  return f(x, idx, src, &dn, JX_GATHER_CLIP);
}

typedef struct {
  char op[32], params[256];
  jx_t in[MAXARGS];
  int nin;
} kase;

static jx_t run_case(const kase *k, const jx_t *in) {
  int64_t v[JX_MAX_RANK], w[JX_MAX_RANK], z[JX_MAX_RANK];
  char buf[16];
  const char *op = k->op, *pa = k->params;
  int64_t axis = param_ints(pa, "axis", v) ? v[0] : 0;
  if (!strcmp(op, "take_along_axis")) return jx_take_along_axis(in[0], in[1], (int)axis);
  if (!strcmp(op, "at_add")) return jx_at_add(in[0], in[1], in[2], (int)axis);
  if (!strcmp(op, "at_set")) return jx_at_set(in[0], in[1], in[2], (int)axis);
  if (!strcmp(op, "at_mul")) return jx_at_mul(in[0], in[1], in[2], (int)axis);
  if (!strcmp(op, "at_min")) return jx_at_min(in[0], in[1], in[2], (int)axis);
  if (!strcmp(op, "at_max")) return jx_at_max(in[0], in[1], in[2], (int)axis);
  if (!strcmp(op, "segment_sum") || !strcmp(op, "segment_max")) {
    param_ints(pa, "n", v);
    return (op[8] == 's' ? jx_segment_sum : jx_segment_max)(in[0], in[1], v[0]);
  }
  if (!strcmp(op, "index_put_add")) { /* x[i, j] += v: points, drop out of bounds */
    jx_scatter_dnums dn = {.ninserted_window_dims = 2,
                           .inserted_window_dims = {0, 1},
                           .nscatter_dims_to_operand_dims = 2,
                           .scatter_dims_to_operand_dims = {0, 1},
                           .index_vector_dim = -1};
    return jx_scatter_add(in[0], in[1], in[2], &dn, JX_GATHER_FILL_OR_DROP);
  }
  if (!strcmp(op, "scatter_reduce")) {
    param_ints(pa, "dim", v);
    return scatter_reduce(in[0], in[1], in[2], (int)v[0], param_str(pa, "reduce", buf, sizeof buf));
  }
  if (!strcmp(op, "gather_rows")) { /* x[i, j, :] */
    jx_gather_dnums dn = {.noffset_dims = 1,
                          .offset_dims = {1},
                          .ncollapsed_slice_dims = 2,
                          .collapsed_slice_dims = {0, 1},
                          .nstart_index_map = 2,
                          .start_index_map = {0, 1},
                          .index_vector_dim = 1};
    return jx_gather(in[0], in[1], &dn, (int64_t[]){1, 1, jx_shape(in[0])[2]}, JX_GATHER_CLIP, 0);
  }
  if (!strcmp(op, "dynamic_slice") || !strcmp(op, "dynamic_update_slice")) {
    int n = param_ints(pa, "starts", v);
    jx_t st[JX_MAX_RANK];
    for (int d = 0; d < n; d++) st[d] = jx_scalar_of(d % 2 ? JX_I64 : JX_I32, (double)v[d]);
    if (op[8] == 'u') return jx_dynamic_update_slice(in[0], in[1], st);
    param_ints(pa, "sizes", w);
    return jx_dynamic_slice(in[0], st, w);
  }
  if (!strcmp(op, "pad")) {
    param_ints(pa, "lo", v), param_ints(pa, "hi", w), param_ints(pa, "interior", z);
    return jx_pad(in[0], in[1], v, w, z);
  }
  return jx_error_new("unknown golden op %s", op);
}

static jx_t case_body(const jx_t *args, void *u) { return run_case(u, args); }

static bool same(jx_t got, jx_t want, bool exact) {
  if (!jx_ok(got) || jx_dtype_of(got) != jx_dtype_of(want) || jx_ndim(got) != jx_ndim(want)) return false;
  for (int d = 0; d < jx_ndim(got); d++)
    if (jx_shape(got)[d] != jx_shape(want)[d]) return false;
  int64_t n = jx_size(got);
  double *a = malloc(sizeof(double) * (size_t)(n ? n : 1)), *b = malloc(sizeof(double) * (size_t)(n ? n : 1));
  jx_read(got, JX_F64, a, sizeof(double) * (size_t)n), jx_read(want, JX_F64, b, sizeof(double) * (size_t)n);
  bool ok = true;
  double rtol = jx_dtype_of(want) == JX_F32 ? 2e-6 : 1e-12;
  for (int64_t i = 0; i < n && ok; i++)
    ok = exact ? (a[i] == b[i] || (a[i] != a[i] && b[i] != b[i])) : check_close(a[i], b[i], rtol, rtol);
  free(a), free(b);
  return ok;
}

int main(void) {
  check_private_cache("index_golden");
  FILE *f = fopen(GOLDEN_PATH, "r");
  CHECKF(f != NULL, "cannot open %s (run from tests/)", GOLDEN_PATH);
  if (!f) return check_report("index_golden");
  char *line = malloc(LINE_MAX_);
  int ncase = 0;
  while (fgets(line, LINE_MAX_, f)) {
    if (line[0] == '#' || line[0] == '\n') continue;
    jx_pool_push();
    kase k = {0};
    char *s = line;
    int len = 0;
    sscanf(s, "%31s %255s%n", k.op, k.params, &len);
    s += len;
    while (*s == ' ' && s[1] == '|') {
      s += 2;
      k.in[k.nin++] = parse_array(&s);
    }
    s = strstr(s, "->");
    s += 2;
    jx_t want = parse_array(&s);
    jx_t got = run_case(&k, k.in);
    CHECKF(same(got, want, false), "case %d (%s %s): %s", ncase, k.op, k.params,
           jx_ok(got) ? "values differ" : jx_error(got));
    jx_fn *fn = jx_fn_new(case_body, k.nin, &k), *jf = jx_jit(fn);
    jx_t jgot = jx_call(jf, k.in);
    CHECKF(jx_ok(got) && same(jgot, got, true), "case %d (%s %s) under jit: %s", ncase, k.op, k.params,
           jx_ok(jgot) ? "differs from eager" : jx_error(jgot));
    jx_fn_free(jf), jx_fn_free(fn);
    ncase++;
    jx_pool_pop();
  }
  free(line);
  fclose(f);
  CHECKF(ncase >= 100, "only %d golden cases read", ncase);
  printf("index golden: %d cases\n", ncase);
  check_private_cache_remove();
  return check_report("index_golden");
}
