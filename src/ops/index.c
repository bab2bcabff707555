/* Indexing ops: take and one_hot. */
#include "ops/ops.h"

jx_t jx_take(jx_t x, jx_t indices, int axis) {
  jx_t e = jx_op_check_array("take", x);
  if (!e) e = jx_op_check_array("take", indices);
  if (e) return e;
  char s[160];
  if (!jx_dtype_is_int(indices->aval.dtype))
    return jx_error_new("take: indices must be integers, got %s", jx_aval_str(&indices->aval, s, sizeof s));
  int r = x->aval.ndim, ax = axis < 0 ? axis + r : axis;
  if (ax < 0 || ax >= r)
    return jx_error_new("take: axis %d is out of bounds for an array of shape %s", axis,
                        jx_aval_str(&x->aval, s, sizeof s));
  return jx_lax_gather(x, indices, ax);
}

jx_t jx_one_hot(jx_t labels, int n) {
  jx_t e = jx_op_check_array("one_hot", labels);
  if (e) return e;
  if (n < 0) return jx_error_new("one_hot: number of classes must be >= 0, got %d", n);
  if (!jx_dtype_is_int(labels->aval.dtype)) return jx_error_new("one_hot: labels must be integers");
  const jx_aval *a = &labels->aval;
  if (a->ndim + 1 > JX_MAX_RANK) return jx_error_new("one_hot: result rank too large");
  int64_t shape[JX_MAX_RANK];
  memcpy(shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
  shape[a->ndim] = n;
  jx_t iota = jx_lax_iota(a->dtype, a->ndim + 1, shape, a->ndim);
  if (!jx_ok(iota)) return iota; /* (its aval is not a shape to broadcast to) */
  jx_t lab = jx_expand_dims(labels, -1);
  return jx_op_cast(jx_lax_binary(JX_P_eq, jx_lax_broadcast_to_aval(lab, &iota->aval), iota), JX_F32, false);
}
