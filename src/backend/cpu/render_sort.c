/* Portable CALL kernels (render_call.h): sort (lax.sort: n operands,
 * stable, ordered lexicographically by the first num_keys) and argsort
 * (stable ascending indices).
 *
 * Each line along the axis gets its permutation from a bottom-up merge
 * sort of the indices 0..n-1 (stable: an index from the left run wins
 * ties), with a scratch of 2n int64 taken from the workspace (rt->alloc;
 * jx_cpu_sort_scratch sizes it), then every operand is gathered through
 * it. The order is the eager kernels' (backend/cpu/bits.c's keys): floats
 * with -0.0 equal to 0.0 and every NaN after +inf, bool false < true. A
 * stable sort's result depends only on that order, so the outputs are
 * the eager ones to the bit. */
#include "backend/cpu/render_call.h"

static void axis_split(const jx_aval *a, int axis, int64_t *outer, int64_t *n, int64_t *inner) {
  *outer = *inner = 1;
  for (int d = 0; d < axis; d++) *outer *= a->shape[d];
  for (int d = axis + 1; d < a->ndim; d++) *inner *= a->shape[d];
  *n = a->shape[axis];
}

static int axis_of(const jx_kernel *k) {
  return k->call.prim == JX_P_sort ? k->call.params.sort.axis : k->call.params.arg.axis;
}

int64_t jx_cpu_sort_scratch(const jx_program *p, const jx_kernel *k) {
  int64_t outer, n, inner;
  const jx_aval *a = jx_cpu_bav(p, k->ins[0]);
  axis_split(a, axis_of(k), &outer, &n, &inner);
  return outer * n * inner > 0 ? 16 * n : 0;
}

/* `u < v` in the sort's order for dtype dt */
static void put_less(sb *b, jx_dtype dt, const char *u, const char *v) {
  if (jx_dtype_is_float(dt))
    put(b, "(%s < %s || (%s != %s && %s == %s))", u, v, v, v, u, u);
  else if (dt == JX_BOOL)
    put(b, "(!%s && %s)", u, v);
  else
    put(b, "%s < %s", u, v);
}

/* p<pid>_k<id>_lt(b, x, y): whether element x sorts before element y
 * (offsets into the operands), the keys compared in turn */
static void put_compare(sb *b, const jx_program *p, const jx_kernel *k, int id, int nkeys) {
  put(b, "static int p%d_k%d_lt(char **b, int64_t x, int64_t y) {\n", p->id, id);
  for (int i = 0; i < nkeys; i++) {
    jx_dtype dt = jx_cpu_bav(p, k->ins[i])->dtype;
    const char *T = jx_cpu_call_ctype(dt);
    if (jx_dtype_is_half(dt)) { /* widened exactly to f32: the eager keys' order */
      put(b, "  {\n    const float u = ");
      jx_cpu_put_call(b, "jx_%s_to_f32", jx_cpu_call_sfx(dt));
      put(b, "((const uint16_t *)b[%d])[x]), v = ", k->ins[i]);
      jx_cpu_put_call(b, "jx_%s_to_f32", jx_cpu_call_sfx(dt));
      put(b, "((const uint16_t *)b[%d])[y]);\n    if (", k->ins[i]);
    } else {
      put(b, "  {\n    const %s u = ((const %s *)b[%d])[x], v = ((const %s *)b[%d])[y];\n    if (", T, T,
          k->ins[i], T, k->ins[i]);
    }
    put_less(b, dt, "u", "v");
    put(b, ") return 1;\n    if (");
    put_less(b, dt, "v", "u");
    put(b, ") return 0;\n  }\n");
  }
  put(b, "  return 0;\n}\n\n");
}

/* pm[0..n): the line's sorted order of indices (merge passes through tmp) */
static void put_merge_sort(sb *b, const jx_program *p, int id, int64_t n, int64_t inner) {
  const long long N = (long long)n, In = (long long)inner;
  put(b, "      for (int64_t j = 0; j < %lldLL; j++) pm[j] = j;\n", N);
  put(b, "      for (int64_t w = 1; w < %lldLL; w *= 2) {\n", N);
  put(b, "        for (int64_t lo = 0; lo < %lldLL; lo += 2 * w) {\n", N);
  put(b, "          const int64_t mid = lo + w < %lldLL ? lo + w : %lldLL;\n", N, N);
  put(b, "          const int64_t hi = lo + 2 * w < %lldLL ? lo + 2 * w : %lldLL;\n", N, N);
  put(b, "          int64_t l = lo, r = mid, t = lo;\n");
  put(b, "          while (l < mid && r < hi)\n");
  put(b,
      "            tmp[t++] = p%d_k%d_lt(b, base + pm[r] * %lldLL, base + pm[l] * %lldLL) ? pm[r++] : "
      "pm[l++];\n",
      p->id, id, In, In);
  put(b, "          while (l < mid) tmp[t++] = pm[l++];\n          while (r < hi) tmp[t++] = pm[r++];\n");
  put(b, "        }\n        memcpy(pm, tmp, %lldu);\n      }\n", (long long)(8 * n));
}

void jx_cpu_render_sort(sb *b, const jx_program *p, const jx_kernel *k, int id) {
  const bool sort = k->call.prim == JX_P_sort;
  const jx_aval *a = jx_cpu_bav(p, k->ins[0]);
  int64_t outer, n, inner;
  axis_split(a, axis_of(k), &outer, &n, &inner);
  const bool empty = outer * n * inner == 0;
  if (!empty) put_compare(b, p, k, id, sort ? k->call.params.sort.num_keys : 1);
  jx_cpu_call_head(b, p, k, id, jx_prim_names[k->call.prim]);
  if (!empty) {
    put(b, "  char *mem = 0;\n  void *const h = rt->alloc(rt, %lldLL, &mem);\n", (long long)(16 * n));
    put(b, "  int64_t *pm, *tmp;\n  if (!h) return 1;\n");
    put(b, "  pm = (int64_t *)(void *)mem, tmp = pm + %lldLL;\n", (long long)n);
    put(b, "  for (int64_t o = 0; o < %lldLL; o++)\n    for (int64_t in = 0; in < %lldLL; in++) {\n",
        (long long)outer, (long long)inner);
    put(b, "      const int64_t base = o * %lldLL + in;\n", (long long)(n * inner));
    put_merge_sort(b, p, id, n, inner);
    put(b, "      for (int64_t j = 0; j < %lldLL; j++) {\n", (long long)n);
    if (sort)
      for (int i = 0; i < k->nout; i++)
        put(b, "        o%d[base + j * %lldLL] = i%d[base + pm[j] * %lldLL];\n", i, (long long)inner, i,
            (long long)inner);
    else
      put(b, "        o0[base + j * %lldLL] = (%s)pm[j];\n", (long long)inner,
          jx_cpu_call_ctype(jx_cpu_bav(p, k->outs[0])->dtype));
    put(b, "      }\n    }\n  rt->release(h);\n");
  }
  jx_cpu_call_tail(b);
}
