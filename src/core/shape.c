/* Abstract values and shapes: sizes, validation, formatting. */
#include "core.h"

#include <stdio.h>

int64_t jx_aval_size(const jx_aval *a) {
  int64_t n = 1;
  for (int i = 0; i < a->ndim; i++) n *= a->shape[i];
  return n;
}

bool jx_aval_eq(const jx_aval *a, const jx_aval *b) {
  if (a->dtype != b->dtype || a->ndim != b->ndim) return false;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return false;
  return true;
}

char *jx_shape_str(int ndim, const int64_t *shape, char *buf, size_t n) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "[");
  for (int i = 0; i < ndim; i++)
    k += (size_t)snprintf(buf + k, k < n ? n - k : 0, i ? ",%lld" : "%lld", (long long)shape[i]);
  snprintf(buf + k, k < n ? n - k : 0, "]");
  return buf;
}

char *jx_aval_str(const jx_aval *a, char *buf, size_t n) {
  char s[200];
  jx_shape_str(a->ndim, a->shape, s, sizeof s);
  snprintf(buf, n, "%s%s%s", jx_dtype_name(a->dtype), s, a->weak ? "{weak}" : "");
  return buf;
}

int jx_shape_check(int ndim, const int64_t *shape, jx_dtype dt, char *err, size_t n) {
  if (ndim < 0 || ndim > JX_MAX_RANK) {
    snprintf(err, n, "rank %d is outside 0..%d", ndim, JX_MAX_RANK);
    return -1;
  }
  if (ndim > 0 && !shape) {
    snprintf(err, n, "shape pointer is NULL for rank %d", ndim);
    return -1;
  }
  if ((unsigned)dt >= JX_DTYPE_COUNT) {
    snprintf(err, n, "invalid dtype %d", (int)dt);
    return -1;
  }
  /* The element count and byte size must fit in int64 whatever the zeros:
   * a zero-size [2^40, 0] is fine, but ops derive shapes from dimensions
   * (matmul of it with [0, 2^40] is [2^40, 2^40]; a reduction over the 0
   * axis of [0, 2^62, 2^62] drops the zero), so the product of the
   * non-zero dimensions must fit too. */
  if (ndim == 0) return 0; /* the common scalar: nothing to multiply (eager dispatch) */
  int64_t size = (int64_t)jx_dtype_size(dt);
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) {
      snprintf(err, n, "dimension %d is negative (%lld)", i, (long long)shape[i]);
      return -1;
    }
  }
  for (int i = 0; i < ndim; i++) {
    if (shape[i] != 0 && __builtin_mul_overflow(size, shape[i], &size)) {
      char s[200];
      snprintf(err, n, "shape %s overflows the addressable size", jx_shape_str(ndim, shape, s, sizeof s));
      return -1;
    }
  }
  return 0;
}

int jx_aval_check(const jx_aval *a, char *err, size_t n) {
  return jx_shape_check(a->ndim, a->shape, a->dtype, err, n);
}

void jx_strides(int ndim, const int64_t *shape, int64_t *strides) {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
}
