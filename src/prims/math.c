/* reduce_prod: the product over params.reduce.axes (lax.reduce_prod),
 * with all its rules. Its jvp is JAX's value, the sum over the reduced
 * positions of the tangent times the product of the other elements, which
 * holds where elements are zero; it is computed from the count of zeros
 * and the product of the nonzero elements (one zero: the others' product
 * at its place, 0 elsewhere; two or more: 0). Under jit it runs as a call
 * of its impl (the fused reductions know sum, max and min). */
#include "prims/prims.h"

static jx_t prod_axes(const jx_aval *in, const jx_params *pa, bool *mask) {
  memset(mask, 0, sizeof(bool) * JX_MAX_RANK);
  for (int i = 0; i < pa->reduce.naxes; i++) {
    int a = pa->reduce.axes[i];
    if (a < 0 || a >= in->ndim) return jx_rule_error("reduce_prod", in, 1, "axis %d out of range", a);
    if (mask[a]) return jx_rule_error("reduce_prod", in, 1, "axis %d repeated", a);
    mask[a] = true;
  }
  return NULL;
}

static jx_t prod_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  (void)p, (void)nin;
  bool mask[JX_MAX_RANK];
  jx_t e = prod_axes(in, pa, mask);
  if (e) return e;
  if (in->dtype == JX_BOOL) return jx_rule_error("reduce_prod", in, 1, "bool operand: convert it first");
  out[0] = (jx_aval){.dtype = in->dtype, .weak = in->weak};
  for (int d = 0; d < in->ndim; d++)
    if (!mask[d]) out[0].shape[out[0].ndim++] = in->shape[d];
  return NULL;
}

/* One pass over the operand in memory order: element i multiplies into
 * the output element its kept coordinates name (ints wrap). */
#define PROD_LOOP(T, MUL)                                                                                    \
  static void prod_##T(const jx_aval *a, const bool *mask, int64_t nout, const T *x, T *y) {                 \
    for (int64_t o = 0; o < nout; o++) y[o] = 1;                                                             \
    int64_t idx[JX_MAX_RANK] = {0}, ostride[JX_MAX_RANK], n = jx_aval_size(a), s = 1, off = 0;               \
    for (int d = a->ndim - 1; d >= 0; d--) ostride[d] = mask[d] ? 0 : s, s *= mask[d] ? 1 : a->shape[d];     \
    for (int64_t i = 0; i < n; i++) {                                                                        \
      y[off] = MUL(y[off], x[i]);                                                                            \
      for (int d = a->ndim - 1; d >= 0; d--) {                                                               \
        off += ostride[d];                                                                                   \
        if (++idx[d] < a->shape[d]) break;                                                                   \
        off -= ostride[d] * a->shape[d], idx[d] = 0;                                                         \
      }                                                                                                      \
    }                                                                                                        \
  }
#define FMUL(a, b)   ((a) * (b))
#define UMUL32(a, b) ((int32_t)((uint32_t)(a) * (uint32_t)(b)))
#define UMUL64(a, b) ((int64_t)((uint64_t)(a) * (uint64_t)(b)))
PROD_LOOP(float, FMUL)
PROD_LOOP(double, FMUL)
PROD_LOOP(int32_t, UMUL32)
PROD_LOOP(int64_t, UMUL64)
PROD_LOOP(uint32_t, FMUL)
/* (#19) the small ints wrap through 32 bits */
#define UMUL8(a, b)  ((int8_t)((uint32_t)(a) * (uint32_t)(b)))
#define UMUL16(a, b) ((int16_t)((uint32_t)(a) * (uint32_t)(b)))
#define UMULU(a, b)  ((a) * (uint32_t)(b))
PROD_LOOP(int8_t, UMUL8)
PROD_LOOP(int16_t, UMUL16)
PROD_LOOP(uint8_t, UMULU)
PROD_LOOP(uint16_t, UMULU)
PROD_LOOP(uint64_t, FMUL)

static jx_t prod_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin;
  bool mask[JX_MAX_RANK];
  prod_axes(&in[0]->aval, pa, mask);
  const jx_aval *a = &in[0]->aval;
  int64_t no = jx_aval_size(&out[0]->aval);
  void *x = jx_data(in[0]), *y = jx_data(out[0]);
  jx_t w = NULL, wy = NULL; /* bf16/f16: an f32 copy in and out (rounded once) */
  if (jx_dtype_is_half(a->dtype)) {
    jx_aval fa = *a, fy = out[0]->aval;
    fa.dtype = fy.dtype = JX_F32;
    w = jx_array_new(&fa), wy = jx_ok(w) ? jx_array_new(&fy) : w;
    if (!jx_ok(wy)) return wy;
    jx_cpu_convert(a->dtype, JX_F32, jx_aval_size(a), x, jx_data(w));
    prod_float(a, mask, no, jx_data(w), jx_data(wy));
    jx_cpu_convert(JX_F32, a->dtype, no, jx_data(wy), y);
    return NULL;
  }
  switch (a->dtype) {
    case JX_F32: prod_float(a, mask, no, x, y); break;
    case JX_F64: prod_double(a, mask, no, x, y); break;
    case JX_I32: prod_int32_t(a, mask, no, x, y); break;
    case JX_I64: prod_int64_t(a, mask, no, x, y); break;
    case JX_U32: prod_uint32_t(a, mask, no, x, y); break;
    case JX_I8: prod_int8_t(a, mask, no, x, y); break;
    case JX_I16: prod_int16_t(a, mask, no, x, y); break;
    case JX_U8: prod_uint8_t(a, mask, no, x, y); break;
    case JX_U16: prod_uint16_t(a, mask, no, x, y); break;
    case JX_U64: prod_uint64_t(a, mask, no, x, y); break;
    default: return jx_error_new("reduce_prod: no kernel for %s", jx_dtype_name(a->dtype));
  }
  return NULL;
}

/* y with the reduced dims put back as size-1 dims, broadcast to x's shape */
static jx_t expand(jx_t y, const jx_aval *a, const jx_params *pa) {
  bool mask[JX_MAX_RANK] = {0};
  for (int i = 0; i < pa->reduce.naxes; i++) mask[pa->reduce.axes[i]] = true;
  int dims[JX_MAX_RANK], k = 0;
  for (int d = 0; d < a->ndim; d++)
    if (!mask[d]) dims[k++] = d;
  return jx_lax_broadcast_in_dim(y, a->ndim, a->shape, dims);
}

static jx_t prod_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                     jx_t *tout) {
  (void)nin;
  jx_bind(p, 1, x, pa, 1, out);
  tout[0] = NULL;
  if (!t[0] || !jx_ok(out[0]) || !jx_dtype_is_float(x[0]->aval.dtype)) return NULL;
  const jx_aval *a = &x[0]->aval;
  jx_dtype dt = a->dtype;
  jx_t zero = jx_lax_const(dt, 0), one = jx_lax_const(dt, 1);
  jx_t is0 = jx_lax_binary(JX_P_eq, x[0], zero);
  jx_t nz = jx_lax_select(is0, jx_lax_broadcast_to_aval(one, a), x[0]); /* zeros as ones */
  jx_t pnz = expand(jx_bind1(p, 1, &nz, pa), a, pa);
  jx_t zeros = expand(
      jx_lax_reduce(JX_P_reduce_sum, jx_lax_convert(is0, dt), pa->reduce.naxes, pa->reduce.axes), a, pa);
  /* the product of the others at each position */
  jx_t none = jx_lax_binary(JX_P_div, pnz, nz);
  jx_t single = jx_lax_select(is0, pnz, jx_lax_zeros(a));
  jx_t others = jx_lax_select(jx_lax_binary(JX_P_eq, zeros, zero), none,
                              jx_lax_select(jx_lax_binary(JX_P_eq, zeros, one), single, jx_lax_zeros(a)));
  tout[0] = jx_lax_reduce(JX_P_reduce_sum, jx_lax_binary(JX_P_mul, t[0], others), pa->reduce.naxes,
                          pa->reduce.axes);
  return NULL;
}

const jx_rules jx_rules_reduce_prod = {.name = "reduce_prod",
                                       .nin = 1,
                                       .nout = 1,
                                       .abstract_eval = prod_abstract,
                                       .impl = prod_impl,
                                       .jvp = prod_jvp,
                                       .batch = jx_reduce_axes_batch,
                                       .params_kind = JX_PK_REDUCE,
                                       .print_params = jx_reduce_axes_print,
                                       .lower = {.kind = JX_LOWER_CALL}};
