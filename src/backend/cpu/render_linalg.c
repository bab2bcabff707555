/* Portable CALL kernels (render_call.h): svd (lax.linalg.svd, thin). Each
 * matrix of the batch is widened to f64 into the columns of its taller
 * orientation, decomposed by scalar_ops.h's jx_svd_f64 (the eager
 * kernel's one-sided Jacobi, backend/cpu/svd.c, so the results are the
 * eager ones) in a workspace scratch (jx_cpu_svd_scratch), and rounded
 * once to the outputs: s [..., k], and u [..., m, k], vt [..., k, n] when
 * the primitive computes them. */
#include "backend/cpu/render_call.h"

/* the batch, m, n (the operand's last two dims) */
static void dims(const jx_aval *a, int64_t *batch, int64_t *m, int64_t *n) {
  *batch = 1;
  for (int d = 0; d < a->ndim - 2; d++) *batch *= a->shape[d];
  *m = a->shape[a->ndim - 2], *n = a->shape[a->ndim - 1];
}

int64_t jx_cpu_svd_scratch(const jx_program *p, const jx_kernel *k) {
  int64_t batch, m, n;
  dims(jx_cpu_bav(p, k->ins[0]), &batch, &m, &n);
  const int64_t P = m >= n ? m : n, q = m >= n ? n : m;
  return batch * m * n > 0 ? 8 * (P * q + q * q + 2 * q) : 0;
}

void jx_cpu_render_svd(sb *b, const jx_program *p, const jx_kernel *k, int id) {
  const jx_aval *a = jx_cpu_bav(p, k->ins[0]);
  if (a->dtype != JX_F32 && a->dtype != JX_F64) {
    jx_cpu_no_rendering(b->need, k->call.prim);
    return;
  }
  int64_t batch, m, n;
  dims(a, &batch, &m, &n);
  const bool tall = m >= n, uv = k->call.params.svd.compute_uv;
  const long long P = tall ? m : n, q = tall ? n : m, M = m, N = n;
  const char *T = jx_cpu_call_ctype(a->dtype);
  jx_cpu_call_head(b, p, k, id, "svd");
  if (batch * m * n > 0) {
    put(b, "  char *mem = 0;\n  void *const h = rt->alloc(rt, %lldLL, &mem);\n",
        (long long)jx_cpu_svd_scratch(p, k));
    put(b, "  if (!h) return 1;\n");
    put(b, "  double *const w = (double *)(void *)mem, *const v = w + %lldLL, *const sv = v + %lldLL;\n",
        P * q, q * q);
    put(b, "  int64_t *const order = (int64_t *)(void *)(sv + %lldLL);\n", q);
    put(b, "  for (int64_t bi = 0; bi < %lldLL; bi++) {\n", (long long)batch);
    put(b, "    const %s *const x = i0 + bi * %lldLL;\n", T, M * N);
    /* w's column j: column j of A (tall) or row j of A (wide) */
    put(b, "    for (int64_t j = 0; j < %lldLL; j++)\n      for (int64_t i = 0; i < %lldLL; i++)\n", q, P);
    if (tall)
      put(b, "        w[j * %lldLL + i] = (double)x[i * %lldLL + j];\n", P, N);
    else
      put(b, "        w[j * %lldLL + i] = (double)x[j * %lldLL + i];\n", P, N);
    put(b, "    ");
    jx_cpu_put_call(b, "jx_svd_f64");
    put(b, "w, v, sv, order, %lldLL, %lldLL, %d);\n", P, q, uv);
    put(b, "    for (int64_t r = 0; r < %lldLL; r++) o0[bi * %lldLL + r] = (%s)sv[order[r]];\n", q, q, T);
    if (uv) { /* tall: A = W S V^T; wide: A = V S W^T */
      put(b, "    for (int64_t r = 0; r < %lldLL; r++) {\n", q);
      put(b, "      const double *const uc = %s + order[r] * %lldLL, *const vc = %s + order[r] * %lldLL;\n",
          tall ? "w" : "v", M, tall ? "v" : "w", N);
      put(b, "      for (int64_t i = 0; i < %lldLL; i++) o1[bi * %lldLL + i * %lldLL + r] = (%s)uc[i];\n", M,
          M * q, q, T);
      put(b, "      for (int64_t j = 0; j < %lldLL; j++) o2[bi * %lldLL + r * %lldLL + j] = (%s)vc[j];\n", N,
          q * N, N, T);
      put(b, "    }\n");
    }
    put(b, "  }\n  rt->release(h);\n");
  }
  jx_cpu_call_tail(b);
}
