/* Array creation and reading values back out. Creation is built from
 * primitives (a scalar broadcast, iota), so under jit it is staged. */
#include "ops/ops.h"

#include <math.h>

/* op names the public function in error messages */
static jx_t full(const char *op, jx_dtype dt, int ndim, const int64_t *shape, double v) {
  char err[200];
  if (jx_shape_check(ndim, shape, dt, err, sizeof err)) return jx_error_new("%s: %s", op, err);
  jx_t s = jx_scalar_of(dt, v);
  if (ndim == 0) return s;
  return jx_lax_broadcast_in_dim(s, ndim, shape, NULL);
}
jx_t jx_full(jx_dtype dt, int ndim, const int64_t *shape, double v) {
  return full("full", dt, ndim, shape, v);
}
jx_t jx_zeros(jx_dtype dt, int ndim, const int64_t *shape) { return full("zeros", dt, ndim, shape, 0); }
jx_t jx_ones(jx_dtype dt, int ndim, const int64_t *shape) { return full("ones", dt, ndim, shape, 1); }

jx_t jx_zeros_like(jx_t x) {
  jx_t e = jx_op_check_array("zeros_like", x);
  return e ? e : jx_full(x->aval.dtype, x->aval.ndim, x->aval.shape, 0);
}
jx_t jx_ones_like(jx_t x) {
  jx_t e = jx_op_check_array("ones_like", x);
  return e ? e : jx_full(x->aval.dtype, x->aval.ndim, x->aval.shape, 1);
}

jx_t jx_arange(jx_dtype dt, double start, double stop, double step) {
  if (step == 0 || !isfinite(step) || !isfinite(start) || !isfinite(stop))
    return jx_error_new("arange: need finite start/stop and a non-zero step (got %g, %g, %g)", start, stop,
                        step);
  double n = ceil((stop - start) / step);
  if (n < 0) n = 0;
  if (n > (double)((int64_t)1 << 48)) return jx_error_new("arange: %g elements is too many", n);
  int64_t len = (int64_t)n;
  /* start + i*step computed in f64, then converted: exact for integers */
  jx_t i = jx_lax_iota(JX_F64, 1, &len, 0);
  jx_t v = jx_lax_binary(JX_P_add, jx_lax_binary(JX_P_mul, i, jx_lax_const(JX_F64, step)),
                         jx_lax_const(JX_F64, start));
  return jx_op_cast(v, dt, false);
}

int jx_read(jx_t x, jx_dtype as, void *dst, size_t nbytes) {
  if (jx_is_tracer(x)) {
    jx_trace_read_error("jx_read", x);
    return -1;
  }
  if (!jx_is_array(x) || (unsigned)as >= JX_DTYPE_COUNT) return -1;
  if (jx_has_exact(x) && jx_exact_check("jx_read", x)) return -1;
  int64_t n = jx_aval_size(&x->aval);
  size_t need = (size_t)n * jx_dtype_size(as);
  if (need > nbytes || (need && !dst)) return -1;
  if (need == 0) return 0;
  if (x->aval.dtype == as) {
    memcpy(dst, jx_data(x), need);
    return 0;
  }
  jx_pool_push();
  jx_params p;
  jx_params_init(&p, JX_PK_CONVERT);
  p.convert.dtype = as;
  jx_t c;
  int rc = -1;
  if (!jx_eval_prim(JX_P_convert, 1, &x, &p, 1, &c)) {
    memcpy(dst, jx_data(c), need);
    rc = 0;
  }
  jx_pool_pop();
  return rc;
}

double jx_item(jx_t x) {
  if (jx_is_error(x)) return NAN;
  if (x->kind == JX_VK_TRACER) {
    jx_trace_read_error("jx_item", x);
    return NAN;
  }
  if (!jx_is_array(x) || jx_aval_size(&x->aval) != 1) {
    jx_error_new("jx_item: need an array of exactly one element");
    return NAN;
  }
  if (jx_has_exact(x) && jx_exact_check("jx_item", x)) return NAN;
  return jx_scalar_load(x->aval.dtype, jx_data(x));
}
