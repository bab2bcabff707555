/* Shared helpers for primitive rules: errors, broadcasting, axes. */
#include "prims/prims.h"

#include <stdio.h>

jx_t jx_rule_error(const char *op, const jx_aval *in, int nin, const char *fmt, ...) {
  char msg[1024];
  size_t k = (size_t)snprintf(msg, sizeof msg, "%s(", op);
  for (int i = 0; i < nin && k < sizeof msg; i++) {
    char s[160];
    k += (size_t)snprintf(msg + k, sizeof msg - k, "%s%s", i ? ", " : "", jx_aval_str(&in[i], s, sizeof s));
  }
  if (k < sizeof msg) k += (size_t)snprintf(msg + k, sizeof msg - k, "): ");
  if (k < sizeof msg) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + k, sizeof msg - k, fmt, ap);
    va_end(ap);
  }
  return jx_error_new("%s", msg);
}

jx_t jx_broadcast_shapes(const char *op, const jx_aval *in, int nin, jx_aval *out) {
  int r = 0;
  for (int i = 0; i < nin; i++)
    if (in[i].ndim > r) r = in[i].ndim;
  out->ndim = (int8_t)r;
  for (int d = 0; d < r; d++) {
    int64_t n = 1;
    for (int i = 0; i < nin; i++) {
      int k = d - (r - in[i].ndim);
      if (k < 0) continue;
      int64_t m = in[i].shape[k];
      if (m == n || m == 1) continue;
      if (n != 1)
        return jx_rule_error(op, in, nin, "shapes are not broadcastable (dimension %d: %lld vs %lld)", d,
                             (long long)n, (long long)m);
      n = m;
    }
    out->shape[d] = n;
  }
  return NULL;
}

void jx_broadcast_strides(const jx_aval *x, const jx_aval *out, int64_t *strides) {
  int off = out->ndim - x->ndim;
  int64_t s = 1;
  for (int d = out->ndim - 1; d >= 0; d--) {
    int k = d - off;
    if (k < 0 || x->shape[k] == 1) {
      strides[d] = 0;
    } else {
      strides[d] = s;
    }
    if (k >= 0) s *= x->shape[k];
  }
}

int jx_norm_axis(int axis, int ndim) {
  if (axis < -ndim || axis >= ndim) return -1;
  return axis < 0 ? axis + ndim : axis;
}

jx_t jx_moveaxis(jx_t x, int from, int to) {
  if (from == to || jx_is_error(x)) return x;
  int r = x->aval.ndim, perm[JX_MAX_RANK], k = 0;
  for (int i = 0; i < r; i++) {
    if (i == to)
      perm[i] = from;
    else {
      if (k == from) k++;
      perm[i] = k++;
    }
  }
  return jx_lax_transpose(x, perm);
}

jx_t jx_batch_to_front(jx_t x, int bd, int64_t n) {
  if (bd != JX_NONE) return jx_moveaxis(x, bd, 0);
  jx_aval a = x->aval;
  if (a.ndim + 1 > JX_MAX_RANK) return jx_error_new("vmap: batched rank exceeds %d", JX_MAX_RANK);
  int64_t shape[JX_MAX_RANK];
  int dims[JX_MAX_RANK];
  shape[0] = n;
  for (int i = 0; i < a.ndim; i++) shape[i + 1] = a.shape[i], dims[i] = i + 1;
  return jx_lax_broadcast_in_dim(x, a.ndim + 1, shape, dims);
}

int64_t jx_batch_size(const jx_t *in, const int *bdims, int nin) {
  for (int i = 0; i < nin; i++)
    if (bdims[i] != JX_NONE) return in[i]->aval.shape[bdims[i]];
  return -1;
}

int jx_batch_align_right(const jx_t *in, const int *bd, int nin, jx_t *x) {
  int R = 0, common = -2;
  bool in_place = true;
  for (int i = 0; i < nin; i++) {
    int r = in[i]->aval.ndim - (bd[i] != JX_NONE);
    if (r > R) R = r;
  }
  for (int i = 0; i < nin; i++) {
    int r = in[i]->aval.ndim - (bd[i] != JX_NONE);
    if (bd[i] == JX_NONE) {
      in_place &= r == 0;
    } else {
      in_place &= r == R && (common == -2 || common == bd[i]);
      common = bd[i];
    }
  }
  if (in_place) return common;
  for (int i = 0; i < nin; i++) {
    x[i] = in[i];
    if (bd[i] == JX_NONE) continue;
    jx_t v = jx_moveaxis(in[i], bd[i], 0);
    int r = v->aval.ndim - 1;
    if (r < R) {
      int64_t shape[JX_MAX_RANK];
      shape[0] = v->aval.shape[0];
      for (int d = 0; d < R; d++) shape[d + 1] = d < R - r ? 1 : v->aval.shape[1 + d - (R - r)];
      v = jx_lax_reshape(v, R + 1, shape);
    }
    x[i] = v;
  }
  return -1;
}

/* ------------------------------------------------------- params printing */
void jx_put_ints(jx_strbuf *b, const char *name, const int64_t *v, int n) {
  jx_strbuf_put(b, " %s=(", name);
  for (int i = 0; i < n; i++) jx_strbuf_put(b, "%s%lld", i ? ", " : "", (long long)v[i]);
  jx_strbuf_put(b, n == 1 ? ",)" : ")");
}

void jx_put_i32s(jx_strbuf *b, const char *name, const int32_t *v, int n) {
  int64_t w[JX_MAX_RANK];
  for (int i = 0; i < n; i++) w[i] = v[i];
  jx_put_ints(b, name, w, n);
}

void jx_put_i8s(jx_strbuf *b, const int8_t *v, int n) {
  jx_strbuf_put(b, "[");
  for (int i = 0; i < n; i++) jx_strbuf_put(b, "%s%d", i ? ", " : "", v[i]);
  jx_strbuf_put(b, "]");
}
