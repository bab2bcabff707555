/* The thin singular-value decomposition (the svd primitive's kernel) by
 * one-sided Jacobi (Hestenes): the columns of the taller orientation of
 * each matrix are rotated pairwise until every pair is orthogonal to
 * working precision; their norms are the singular values, the normalized
 * columns one set of singular vectors and the accumulated rotations the
 * other. Slower than bidiagonalization for large matrices, but simple and
 * accurate to high relative precision even for small singular values.
 * Everything is computed in f64 (f32 inputs are widened once and the
 * results rounded once). The batch is split over the thread pool. */
#include "backend/cpu/kernels.h"

#include <float.h>
#include <math.h>
#include <string.h>

enum { MAX_SWEEPS = 80 };

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

static double dotc(const double *x, const double *y, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += x[i] * y[i];
  return s;
}

static void rotate(double *x, double *y, int64_t n, double c, double s) {
  for (int64_t i = 0; i < n; i++) {
    double t = x[i];
    x[i] = c * t - s * y[i];
    y[i] = s * t + c * y[i];
  }
}

/* w: q columns of length p (p >= q), column-major; v: q x q, starts as I.
 * Rotates until every pair of columns is orthogonal relative to their
 * norms (|w_j . w_l| <= eps sqrt(|w_j|^2 |w_l|^2)). */
static void jacobi(double *w, double *v, int64_t p, int64_t q) {
  const double tol = DBL_EPSILON * sqrt((double)p);
  for (int sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    bool rotated = false;
    for (int64_t j = 0; j < q - 1; j++)
      for (int64_t l = j + 1; l < q; l++) {
        double *x = w + j * p, *y = w + l * p;
        double alpha = dotc(x, x, p), beta = dotc(y, y, p), gamma = dotc(x, y, p);
        if (gamma == 0 || fabs(gamma) <= tol * sqrt(alpha) * sqrt(beta)) continue;
        double zeta = (beta - alpha) / (2 * gamma);
        double t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1 + zeta * zeta));
        double c = 1 / sqrt(1 + t * t), s = c * t;
        rotate(x, y, p, c, s);
        rotate(v + j * q, v + l * q, q, c, s);
        rotated = true;
      }
    if (!rotated) return;
  }
}

/* the columns of w (length p) normalized; a zero column (a zero singular
 * value) replaced by a unit vector orthogonal to the columns before it in
 * `order`, so that the singular vectors stay orthonormal */
static void normalize(double *w, const double *sv, const int64_t *order, int64_t p, int64_t q) {
  for (int64_t r = 0; r < q; r++) {
    double *x = w + order[r] * p;
    if (sv[order[r]] > 0) {
      for (int64_t i = 0; i < p; i++) x[i] /= sv[order[r]];
      continue;
    }
    for (int64_t e = 0; e < p; e++) {
      memset(x, 0, sizeof(double) * (size_t)p);
      x[e] = 1;
      for (int pass = 0; pass < 2; pass++) /* Gram-Schmidt, twice for accuracy */
        for (int64_t o = 0; o < r; o++) {
          const double *y = w + order[o] * p;
          double d = dotc(x, y, p);
          for (int64_t i = 0; i < p; i++) x[i] -= d * y[i];
        }
      double nrm = sqrt(dotc(x, x, p));
      if (nrm > 0.5) {
        for (int64_t i = 0; i < p; i++) x[i] /= nrm;
        break;
      }
    }
  }
}

/* one matrix b of the batch; scratch: p*q + q*q + q doubles, q int64 */
static void svd_one(const svd_job *jb, int64_t b, double *w, double *v, double *sv, int64_t *order) {
  const int64_t m = jb->m, n = jb->n, tall = m >= n, p = tall ? m : n, q = tall ? n : m, k = q;
  const int64_t off = b * m * n;
  /* w's column j: column j of A (tall) or row j of A (wide: A^T's column) */
  for (int64_t j = 0; j < q; j++)
    for (int64_t i = 0; i < p; i++) w[j * p + i] = load(jb->dt, jb->a, off + (tall ? i * n + j : j * n + i));
  for (int64_t i = 0; i < q * q; i++) v[i] = i % (q + 1) == 0;
  jacobi(w, v, p, q);
  for (int64_t j = 0; j < q; j++) sv[j] = sqrt(dotc(w + j * p, w + j * p, p)), order[j] = j;
  for (int64_t j = 1; j < q; j++) /* descending (insertion sort: q is small next to the work above) */
    for (int64_t l = j; l > 0 && sv[order[l]] > sv[order[l - 1]]; l--) {
      int64_t t = order[l];
      order[l] = order[l - 1], order[l - 1] = t;
    }
  for (int64_t r = 0; r < k; r++) store(jb->dt, jb->s, b * k + r, sv[order[r]]);
  if (!jb->u) return;
  normalize(w, sv, order, p, q);
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
  double *w = jx_malloc(sizeof(double) * (size_t)(p * q + q * q + q));
  int64_t *order = jx_malloc(sizeof(int64_t) * (size_t)(q ? q : 1));
  if (!w || !order) {
    jb->failed = 1;
  } else {
    for (int64_t b = lo; b < hi; b++) svd_one(jb, b, w, w + p * q, w + p * q + q * q, order);
  }
  jx_free(w), jx_free(order);
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
