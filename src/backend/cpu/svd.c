/* The thin singular-value decomposition (the svd primitive's kernel) by
 * one-sided Jacobi (Hestenes; scalar_ops.h's jx_svd_f64, which exported
 * programs use too): the columns of the taller orientation of each matrix
 * are rotated pairwise until every pair is orthogonal to working
 * precision; their norms are the singular values, the normalized columns
 * one set of singular vectors and the accumulated rotations the other.
 * Slower than bidiagonalization for large matrices, but simple and
 * accurate to high relative precision even for small singular values.
 * Everything is computed in f64 (f32 inputs are widened once and the
 * results rounded once). The batch is split over the thread pool. */
#include "backend/cpu/kernels.h"
#include "backend/cpu/scalar_ops.h"

#include <math.h>
#include <string.h>

typedef struct {
  jx_dtype dt;
  int64_t m, n;
  const void *a;
  void *u, *s, *vt;
  int failed; /* set (racily, only ever to 1) when scratch is missing */
} svd_job;

static double load(jx_dtype dt, const void *p, int64_t i) {
  return dt == JX_F32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}
static void store(jx_dtype dt, void *p, int64_t i, double v) {
  if (dt == JX_F32)
    ((float *)p)[i] = (float)v;
  else
    ((double *)p)[i] = v;
}

/* one matrix b of the batch; scratch: p*q + q*q + q doubles, q int64 */
static void svd_one(const svd_job *jb, int64_t b, double *w, double *v, double *sv, int64_t *order) {
  const int64_t m = jb->m, n = jb->n, tall = m >= n, p = tall ? m : n, q = tall ? n : m, k = q;
  const int64_t off = b * m * n;
  /* w's column j: column j of A (tall) or row j of A (wide: A^T's column) */
  for (int64_t j = 0; j < q; j++)
    for (int64_t i = 0; i < p; i++) w[j * p + i] = load(jb->dt, jb->a, off + (tall ? i * n + j : j * n + i));
  jx_svd_f64(w, v, sv, order, p, q, jb->u != NULL);
  for (int64_t r = 0; r < k; r++) store(jb->dt, jb->s, b * k + r, sv[order[r]]);
  if (!jb->u) return;
  /* tall: A = W S V^T; wide: A^T = W S V^T, so A = V S W^T */
  const double *uc = tall ? w : v, *vc = tall ? v : w; /* column-major, lengths m and n */
  for (int64_t r = 0; r < k; r++) {
    const double *ucol = uc + order[r] * m, *vcol = vc + order[r] * n;
    for (int64_t i = 0; i < m; i++) store(jb->dt, jb->u, b * m * k + i * k + r, ucol[i]);
    for (int64_t j = 0; j < n; j++) store(jb->dt, jb->vt, b * k * n + r * n + j, vcol[j]);
  }
}

static void svd_range(void *ctx, int64_t lo, int64_t hi) {
  svd_job *jb = ctx;
  int64_t p = jb->m >= jb->n ? jb->m : jb->n, q = jb->m >= jb->n ? jb->n : jb->m;
  struct jx_buffer *hw, *ho; /* scratch from the buffer cache, as the other kernels' */
  double *w = jx_cpu_scratch(sizeof(double) * (size_t)(p * q + q * q + q), &hw);
  int64_t *order = jx_cpu_scratch(sizeof(int64_t) * (size_t)(q ? q : 1), &ho);
  if (!w || !order) {
    jb->failed = 1;
  } else {
    for (int64_t b = lo; b < hi; b++) svd_one(jb, b, w, w + p * q, w + p * q + q * q, order);
  }
  jx_cpu_scratch_free(hw), jx_cpu_scratch_free(ho);
}

int jx_cpu_svd(jx_dtype dt, int64_t batch, int64_t m, int64_t n, const void *a, void *u, void *s, void *vt) {
  KCHECK(dt == JX_F32 || dt == JX_F64);
  if (batch == 0 || m == 0 || n == 0) return 0;
  svd_job jb = {.dt = dt, .m = m, .n = n, .a = a, .u = u, .s = s, .vt = vt};
  /* about p q^2 flops a sweep: small matrices go several to a thread */
  int64_t work = m * n * (m < n ? m : n), grain = work >= 4096 ? 1 : 4096 / (work ? work : 1);
  jx_cpu_parallel_for(batch, grain, svd_range, &jb);
  return jb.failed ? -1 : 0;
}
