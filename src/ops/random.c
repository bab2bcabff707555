/* jax.random, bit for bit: the threefry2x32 PRNG with JAX's default key
 * layout since JAX 0.5 (jax_threefry_partitionable=True).
 *
 * A key is a u32[2] array (k0, k1). Element i (row-major) of a draw of
 * shape S hashes the 64-bit counter i, split as (hi, lo) words, under the
 * key: (y0, y1) = threefry2x32((k0, k1), (i >> 32, i & 0xffffffff)).
 *   split(key, n)[i]  = (y0, y1) for the counter i  (shape [n])
 *   fold_in(key, d)   = threefry2x32((k0, k1), (0, d))
 *   bits(key, S)[i]   = y0 ^ y1                       (32-bit draws)
 *   64-bit draws      = y0 << 32 | y1                 (f64 uniform, u64)
 *   8/16-bit draws    = the low bits of y0 ^ y1       (u8/u16, bf16/f16)
 * Samplers follow jax/_src/random.py (_uniform, _normal_real, _bernoulli,
 * _gumbel/categorical, _randint, _shuffle, _truncated_normal) operation by
 * operation, including its dtype rounding and the FMA XLA makes of
 * uniform's multiply-add, so results match JAX (XLA:CPU) exactly. The
 * exceptions are the special functions: erf_inv is XLA's polynomial around
 * libm's log1p, f32 erf is XLA:CPU's rational (f64: libm's, as XLA:CPU),
 * and gumbel/categorical take libm's log; where libm and XLA's own log1p/log
 * differ in the last bit, so can the draw.
 *
 * Everything is built from primitives (threefry2x32, shifts, xor, rem, fma,
 * erf, erf_inv, argsort, and the usual ones), so every sampler works under
 * jit and vmap (vmap over a u32[n, 2] batch of keys), and under grad the
 * draws are constants. */
#include "ops/ops.h"

#include <float.h>
#include <math.h>

/* --------------------------------------------------------------- helpers */
static jx_t bin(jx_prim p, jx_t a, jx_t b) { return jx_lax_binary(p, a, b); }
static jx_t un(jx_prim p, jx_t x) { return jx_lax_unary(p, x); }
static jx_t u32c(double v) { return jx_lax_const(JX_U32, v); }

static jx_t check_key(const char *op, jx_t key) {
  jx_t e = jx_op_check_array(op, key);
  if (e) return e;
  const jx_aval *a = &key->aval;
  if (a->dtype != JX_U32 || a->ndim != 1 || a->shape[0] != 2) {
    char s[160];
    return jx_error_new("%s: key must be a u32[2] array (from jx_random_key, split or fold_in), got %s; "
                        "use vmap for a batch of keys",
                        op, jx_aval_str(a, s, sizeof s));
  }
  return NULL;
}

static jx_t check_shape(const char *op, int ndim, const int64_t *shape, jx_dtype dt) {
  char err[200];
  if (ndim > 0 && !shape) return jx_error_new("%s: shape is NULL for rank %d", op, ndim);
  if (jx_shape_check(ndim, shape, dt, err, sizeof err)) return jx_error_new("%s: %s", op, err);
  return NULL;
}

static const char *dt_name(jx_dtype dt) {
  return (unsigned)dt < JX_DTYPE_COUNT ? jx_dtype_name(dt) : "an invalid dtype";
}

static bool is_half(jx_dtype dt) { return dt == JX_BF16 || dt == JX_F16; }

static jx_t check_float(const char *op, jx_dtype dt) {
  if (dt == JX_F32 || dt == JX_F64 || is_half(dt)) return NULL;
  return jx_error_new("%s: dtype must be a float dtype (bf16, f16, f32 or f64), got %s", op, dt_name(dt));
}

/* A Python float given to a jax.random function reaches it as a weak f32
 * (x64 off) and is then converted to the sampler's dtype: so bf16/f16
 * parameters round through f32 first, as there. */
static jx_t fconst(jx_dtype dt, double v) { return jx_lax_const(dt, is_half(dt) ? (double)(float)v : v); }

/* the neighbour of v (a value of dt) toward dir, in dt: lax.nextafter */
static double next_in(jx_dtype dt, double v, double dir) {
  if (dt == JX_F32) return nextafterf((float)v, (float)dir);
  if (dt == JX_F64) return nextafter(v, dir);
  uint16_t h = jx_half_round(dt, (double)(float)v);
  float x = jx_half_widen(dt, h);
  if (x == (float)dir || isnan(x)) return x;
  if (x == 0)
    h = (uint16_t)(dir > 0 ? 1u : 0x8001u); /* the smallest subnormal toward dir */
  else
    h = (uint16_t)(((float)dir > x) == (x > 0) ? h + 1 : h - 1);
  return jx_half_widen(dt, h);
}

/* mantissa bits of dt (finfo.nmant) */
static int nmant(jx_dtype dt) { return dt == JX_BF16 ? 7 : dt == JX_F16 ? 10 : dt == JX_F32 ? 23 : 52; }

static int norm_axis(int axis, int ndim) {
  if (axis < -ndim || axis >= ndim) return -1;
  return axis < 0 ? axis + ndim : axis;
}

static jx_t key_word(jx_t key, int i) {
  jx_t w = jx_lax_slice(key, (int64_t[]){i}, (int64_t[]){i + 1}, NULL);
  return jx_lax_reshape(w, 0, NULL);
}

/* threefry2x32 of the key over counters (x0, x1): u32[2, ...] */
static jx_t fry(jx_t key, jx_t x0, jx_t x1) {
  jx_t in[4] = {key_word(key, 0), key_word(key, 1), x0, x1};
  return jx_bind1(JX_P_threefry2x32, 4, in, &jx_params_none);
}

/* word w of a threefry result y (u32[2, S...]), as u32[S...] */
static jx_t fry_word(jx_t y, int w) {
  if (jx_is_error(y)) return y;
  int r = y->aval.ndim;
  int64_t st[JX_MAX_RANK] = {0}, li[JX_MAX_RANK];
  for (int d = 0; d < r; d++) li[d] = y->aval.shape[d];
  st[0] = w, li[0] = w + 1;
  return jx_lax_reshape(jx_lax_slice(y, st, li, NULL), r - 1, y->aval.shape + 1);
}

/* The counters of a draw of this shape: iota over the flattened shape as
 * 64-bit numbers, split into (hi, lo) u32 words (JAX's iota_2x32_shape). */
static void counters(int ndim, const int64_t *shape, jx_t *hi, jx_t *lo) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  if (ndim == 0) {
    *hi = *lo = u32c(0);
  } else if (n <= ((int64_t)1 << 32)) {
    *hi = u32c(0);
    *lo = jx_lax_reshape(jx_lax_iota(JX_U32, 1, &n, 0), ndim, shape);
  } else {
    jx_t i = jx_lax_iota(JX_I64, 1, &n, 0);
    *hi = jx_lax_reshape(jx_lax_convert(bin(JX_P_shift_right_logical, i, jx_lax_const(JX_I64, 32)), JX_U32),
                         ndim, shape);
    *lo = jx_lax_reshape(jx_lax_convert(i, JX_U32), ndim, shape);
  }
}

/* both words for every element of a draw of this shape */
static void draw(jx_t key, int ndim, const int64_t *shape, jx_t *y0, jx_t *y1) {
  jx_t hi, lo;
  counters(ndim, shape, &hi, &lo);
  jx_t y = fry(key, hi, lo);
  *y0 = fry_word(y, 0);
  *y1 = fry_word(y, 1);
}

static jx_t bits32(jx_t key, int ndim, const int64_t *shape) {
  jx_t y0, y1;
  draw(key, ndim, shape, &y0, &y1);
  return bin(JX_P_xor, y0, y1);
}

/* JAX's _threefry_random_bits_partitionable for an unsigned dtype ut:
 * 64 bits are y0 << 32 | y1; 8 and 16 bits the low bits of y0 ^ y1 (a
 * wrapping convert). (The pre-0.5 layout instead split each 32-bit word
 * into 32/width pieces; jx follows the partitionable default throughout.) */
static jx_t bits_as(jx_t key, jx_dtype ut, int ndim, const int64_t *shape) {
  if (ut == JX_U32) return bits32(key, ndim, shape);
  jx_t y0, y1;
  draw(key, ndim, shape, &y0, &y1);
  if (ut != JX_U64) return jx_lax_convert(bin(JX_P_xor, y0, y1), ut);
  jx_t hi = bin(JX_P_shift_left, jx_lax_convert(y0, JX_U64), jx_lax_const(JX_U64, 32));
  return bin(JX_P_or, hi, jx_lax_convert(y1, JX_U64));
}

/* ------------------------------------------------------------------ keys */
jx_t jx_random_key(uint64_t seed) {
  uint32_t k[2] = {(uint32_t)(seed >> 32), (uint32_t)seed};
  return jx_array(JX_U32, 1, (int64_t[]){2}, k);
}

jx_t jx_random_split(jx_t key, int num) {
  jx_t e = check_key("random_split", key);
  if (e) return e;
  if (num < 0) return jx_error_new("random_split: num must be >= 0, got %d", num);
  int64_t n = num;
  jx_t hi, lo;
  counters(1, &n, &hi, &lo);
  return jx_lax_transpose(fry(key, hi, lo), (int[]){1, 0}); /* [2, num] -> [num, 2] */
}

jx_t jx_random_fold_in(jx_t key, uint32_t data) {
  jx_t e = check_key("random_fold_in", key);
  return e ? e : fry(key, u32c(0), u32c(data));
}

/* row i of a [n, 2] key array */
static jx_t key_row(jx_t keys, int i) {
  jx_t r = jx_lax_slice(keys, (int64_t[]){i, 0}, (int64_t[]){i + 1, 2}, NULL);
  return jx_lax_reshape(r, 1, (int64_t[]){2});
}

jx_t jx_random_bits(jx_t key, int ndim, const int64_t *shape) {
  jx_t e = check_key("random_bits", key);
  if (!e) e = check_shape("random_bits", ndim, shape, JX_U32);
  return e ? e : bits32(key, ndim, shape);
}

jx_t jx_random_bits_ex(jx_t key, jx_dtype dt, int ndim, const int64_t *shape) {
  jx_t e = check_key("random_bits", key);
  if (e) return e;
  if (dt != JX_U8 && dt != JX_U16 && dt != JX_U32 && dt != JX_U64)
    return jx_error_new("random_bits: dtype must be an unsigned integer dtype (u8, u16, u32 or u64), got %s",
                        dt_name(dt));
  if ((e = check_shape("random_bits", ndim, shape, dt))) return e;
  return bits_as(key, dt, ndim, shape);
}

/* ------------------------------------------------------------- samplers */
/* bf16/f16 f in [0, 1): JAX draws 8-bit words for bf16 (its 7 mantissa
 * bits are < 8) and 16-bit words for f16, keeps the top nmant bits as the
 * mantissa of a number in [1, 2) and subtracts 1: m * 2^-nmant, exact. */
static jx_t unit_half(jx_t key, jx_dtype dt, int ndim, const int64_t *shape) {
  jx_dtype ut = dt == JX_BF16 ? JX_U8 : JX_U16;
  int rb = dt == JX_BF16 ? 8 : 16, nm = nmant(dt);
  jx_t m = bin(JX_P_shift_right_logical, bits_as(key, ut, ndim, shape), jx_lax_const(ut, rb - nm));
  return bin(JX_P_mul, jx_lax_convert(m, dt), jx_lax_const(dt, ldexp(1.0, -nm)));
}

/* uniform in [minval, maxval) of float dtype dt; minval/maxval are 0-d
 * arrays of dt. The mantissa bits of a draw give f in [0, 1) exactly; then
 * max(minval, f * (maxval - minval) + minval), the multiply-add done as one
 * FMA like XLA on CPU/GPU for f32/f64 (for the default [0, 1) it is exact
 * anyway). bf16/f16: XLA:CPU computes each op in f32 and rounds it to the
 * dtype (its bf16 normalization; LLVM's f16 promotion), so there the
 * subtract, multiply and add each round, as jx's bf16/f16 ops do. */
static jx_t uniform(jx_t key, jx_dtype dt, int ndim, const int64_t *shape, jx_t minval, jx_t maxval) {
  if (is_half(dt)) {
    jx_t f = unit_half(key, dt, ndim, shape);
    jx_t r = bin(JX_P_add, bin(JX_P_mul, f, bin(JX_P_sub, maxval, minval)), minval);
    return bin(JX_P_max, minval, r);
  }
  jx_t y0, y1, f;
  draw(key, ndim, shape, &y0, &y1);
  if (dt == JX_F32) { /* (bits >> 9) | 0x3f800000 as a float, minus 1 == (bits >> 9) * 2^-23 */
    jx_t m = bin(JX_P_shift_right_logical, bin(JX_P_xor, y0, y1), u32c(9));
    f = bin(JX_P_mul, jx_lax_convert(m, JX_F32), jx_lax_const(JX_F32, 0x1p-23));
  } else { /* 64 bits (y0 << 32 | y1) >> 12 == y0 * 2^20 + (y1 >> 12): 52 bits, exact in f64 */
    jx_t hi = bin(JX_P_mul, jx_lax_convert(y0, JX_F64), jx_lax_const(JX_F64, 0x1p-32));
    jx_t lo = jx_lax_convert(bin(JX_P_shift_right_logical, y1, u32c(12)), JX_F64);
    f = bin(JX_P_add, hi, bin(JX_P_mul, lo, jx_lax_const(JX_F64, 0x1p-52)));
  }
  jx_t span = bin(JX_P_sub, maxval, minval);
  jx_t r = jx_bind1(JX_P_fma, 3, (jx_t[]){f, span, minval}, &jx_params_none);
  return bin(JX_P_max, minval, r);
}

jx_t jx_random_uniform(jx_t key, jx_dtype dt, int ndim, const int64_t *shape, double minval, double maxval) {
  jx_t e = check_key("random_uniform", key);
  if (!e) e = check_float("random_uniform", dt);
  if (!e) e = check_shape("random_uniform", ndim, shape, dt);
  if (e) return e;
  return uniform(key, dt, ndim, shape, fconst(dt, minval), fconst(dt, maxval));
}

/* sqrt(2) * erf_inv(u), u uniform in [nextafter(-1, 0), 1) */
jx_t jx_random_normal(jx_t key, jx_dtype dt, int ndim, const int64_t *shape) {
  jx_t e = check_key("random_normal", key);
  if (!e) e = check_float("random_normal", dt);
  if (!e) e = check_shape("random_normal", ndim, shape, dt);
  if (e) return e;
  jx_t u = uniform(key, dt, ndim, shape, jx_lax_const(dt, next_in(dt, -1.0, 0.0)), jx_lax_const(dt, 1.0));
  return bin(JX_P_mul, fconst(dt, M_SQRT2), un(JX_P_erf_inv, u));
}

jx_t jx_random_truncated_normal(jx_t key, jx_dtype dt, int ndim, const int64_t *shape, double lower,
                                double upper) {
  jx_t e = check_key("random_truncated_normal", key);
  if (!e) e = check_float("random_truncated_normal", dt);
  if (!e) e = check_shape("random_truncated_normal", ndim, shape, dt);
  if (e) return e;
  if (!(lower < upper))
    return jx_error_new("random_truncated_normal: need lower < upper, got %g and %g", lower, upper);
  jx_t sqrt2 = fconst(dt, M_SQRT2), lo = fconst(dt, lower), hi = fconst(dt, upper);
  jx_t a = un(JX_P_erf, bin(JX_P_div, lo, sqrt2)), b = un(JX_P_erf, bin(JX_P_div, hi, sqrt2));
  jx_t out = bin(JX_P_mul, sqrt2, un(JX_P_erf_inv, uniform(key, dt, ndim, shape, a, b)));
  /* clamp into the open interval (lower, upper), in dt */
  double l = is_half(dt) ? (double)(float)lower : lower, u = is_half(dt) ? (double)(float)upper : upper;
  out = bin(JX_P_max, jx_lax_const(dt, next_in(dt, l, INFINITY)), out);
  return bin(JX_P_min, jx_lax_const(dt, next_in(dt, u, -INFINITY)), out);
}

static jx_t gumbel(jx_t key, jx_dtype dt, int ndim, const int64_t *shape) {
  /* finfo(dt).tiny: the smallest normal number */
  double tiny = dt == JX_F64 ? DBL_MIN : dt == JX_F16 ? 0x1p-14 : (double)FLT_MIN;
  jx_t u = uniform(key, dt, ndim, shape, jx_lax_const(dt, tiny), jx_lax_const(dt, 1.0));
  return un(JX_P_neg, un(JX_P_log, un(JX_P_neg, un(JX_P_log, u))));
}

jx_t jx_random_gumbel(jx_t key, jx_dtype dt, int ndim, const int64_t *shape) {
  jx_t e = check_key("random_gumbel", key);
  if (!e) e = check_float("random_gumbel", dt);
  if (!e) e = check_shape("random_gumbel", ndim, shape, dt);
  return e ? e : gumbel(key, dt, ndim, shape);
}

jx_t jx_random_bernoulli(jx_t key, int ndim, const int64_t *shape, jx_t p) {
  jx_t e = check_key("random_bernoulli", key);
  if (!e) e = jx_op_check_array("random_bernoulli", p);
  if (e) return e;
  jx_dtype dt = p->aval.dtype;
  if (!jx_dtype_is_float(dt))
    return jx_error_new("random_bernoulli: probability p must have a float dtype, got %s", jx_dtype_name(dt));
  if (ndim < 0) ndim = p->aval.ndim, shape = p->aval.shape;
  if ((e = check_shape("random_bernoulli", ndim, shape, dt))) return e;
  /* p must broadcast to exactly `shape` */
  bool ok = p->aval.ndim <= ndim;
  for (int d = 0; ok && d < p->aval.ndim; d++) {
    int64_t m = p->aval.shape[p->aval.ndim - 1 - d];
    ok = m == 1 || m == shape[ndim - 1 - d];
  }
  if (!ok) {
    char s[160], t[160];
    return jx_error_new("random_bernoulli: p of shape %s does not broadcast to the shape %s",
                        jx_aval_str(&p->aval, s, sizeof s), jx_shape_str(ndim, shape, t, sizeof t));
  }
  jx_t u = uniform(key, dt, ndim, shape, jx_lax_const(dt, 0.0), jx_lax_const(dt, 1.0));
  return bin(JX_P_lt, u, p);
}

jx_t jx_random_categorical(jx_t key, jx_t logits, int axis) {
  jx_t e = check_key("random_categorical", key);
  if (!e) e = jx_op_check_array("random_categorical", logits);
  if (e) return e;
  int r = logits->aval.ndim, ax = norm_axis(axis, r);
  if (r == 0 || ax < 0) {
    char s[160];
    return jx_error_new("random_categorical: axis %d is out of bounds for logits %s", axis,
                        jx_aval_str(&logits->aval, s, sizeof s));
  }
  if (logits->aval.shape[ax] == 0)
    return jx_error_new("random_categorical: the category axis %d is empty", axis);
  if (!jx_dtype_is_float(logits->aval.dtype)) logits = jx_op_to_float(logits);
  jx_dtype dt = logits->aval.dtype;
  jx_t g = gumbel(key, dt, r, logits->aval.shape);
  return jx_argmax(bin(JX_P_add, g, logits), ax, false);
}

/* The integer dtypes randint draws: their range as int64 (u64's top
 * clipped to INT64_MAX, as the bounds are int64) and the unsigned dtype of
 * their width, in which JAX does its modular arithmetic. */
static const struct {
  jx_dtype dt, ut;
  int64_t min, max;
} int_types[] = {
    {JX_I8, JX_U8, INT8_MIN, INT8_MAX},     {JX_U8, JX_U8, 0, UINT8_MAX},
    {JX_I16, JX_U16, INT16_MIN, INT16_MAX}, {JX_U16, JX_U16, 0, UINT16_MAX},
    {JX_I32, JX_U32, INT32_MIN, INT32_MAX}, {JX_U32, JX_U32, 0, UINT32_MAX},
    {JX_I64, JX_U64, INT64_MIN, INT64_MAX}, {JX_U64, JX_U64, 0, INT64_MAX},
};

/* a 0-d integer constant of dt holding the low bits of v (exact for all
 * 64 bits, which a double would not be) */
static jx_t int_const(jx_dtype dt, uint64_t v) {
  uint8_t u8 = (uint8_t)v;
  uint16_t u16 = (uint16_t)v;
  uint32_t u32 = (uint32_t)v;
  size_t n = jx_dtype_size(dt);
  const void *p = n == 1 ? (const void *)&u8 : n == 2 ? (const void *)&u16 : n == 4 ? (const void *)&u32 : &v;
  return jx_array(dt, 0, NULL, p);
}

jx_t jx_random_randint(jx_t key, jx_dtype dt, int ndim, const int64_t *shape, int64_t minval,
                       int64_t maxval) {
  jx_t e = check_key("random_randint", key);
  if (e) return e;
  int t = 0, nt = (int)(sizeof int_types / sizeof *int_types);
  while (t < nt && int_types[t].dt != dt) t++;
  if (t == nt)
    return jx_error_new("random_randint: dtype must be an integer dtype (i8, u8, i16, u16, i32, u32, i64 or "
                        "u64), got %s",
                        dt_name(dt));
  if ((e = check_shape("random_randint", ndim, shape, dt))) return e;
  /* JAX's _randint: clip the bounds into the dtype; span = maxval - minval
   * in the unsigned dtype of the same width (1 when maxval <= minval, one
   * more -- wrapping -- when maxval was above the dtype's range); two
   * draws hi, lo of that width reduce mod span as
   * ((hi % span) * (2^nbits % span) + lo % span) % span, wrapping, where
   * 2^nbits % span = ((2^(nbits/2) % span)^2) % span. A span of 0 leaves
   * the bits as they are (x % 0 = x in XLA). */
  jx_dtype ut = int_types[t].ut;
  int64_t dmin = int_types[t].min, dmax = int_types[t].max;
  int nbits = 8 * (int)jx_dtype_size(ut);
  uint64_t mask = nbits == 64 ? ~0ull : (1ull << nbits) - 1;
  bool max_out_of_range = maxval > dmax;
  int64_t lo = minval < dmin ? dmin : minval > dmax ? dmax : minval;
  int64_t hi = maxval < dmin ? dmin : maxval > dmax ? dmax : maxval;
  uint64_t span = ((uint64_t)hi - (uint64_t)lo) & mask;
  if (hi <= lo) span = 1;
  if (max_out_of_range && hi > lo) span = (span + 1) & mask;
  uint64_t half = 1ull << (nbits / 2), mult = span ? half % span : half;
  mult = (mult * mult) & mask;
  if (span) mult %= span;
  jx_t keys = jx_random_split(key, 2);
  jx_t hb = bits_as(key_row(keys, 0), ut, ndim, shape), lb = bits_as(key_row(keys, 1), ut, ndim, shape);
  jx_t S = int_const(ut, span), M = int_const(ut, mult);
  jx_t off = bin(JX_P_add, bin(JX_P_mul, bin(JX_P_rem, hb, S), M), bin(JX_P_rem, lb, S));
  off = bin(JX_P_rem, off, S);
  return bin(JX_P_add, jx_lax_convert(off, dt), int_const(dt, (uint64_t)lo));
}

/* JAX's _shuffle of arange(n): rounds of a stable sort by fresh 32-bit keys */
static jx_t shuffled_indices(jx_t key, int64_t n) {
  jx_dtype it = n > INT32_MAX ? JX_I64 : JX_I32;
  int rounds = (int)ceil(3.0 * log((double)(n > 1 ? n : 1)) / log(4294967295.0));
  jx_t x = jx_lax_iota(it, 1, &n, 0);
  jx_params pa;
  jx_params_init(&pa, JX_PK_ARG);
  pa.arg.axis = 0;
  pa.arg.dtype = it;
  for (int r = 0; r < rounds; r++) {
    jx_t ks = jx_random_split(key, 2);
    key = key_row(ks, 0);
    jx_t sk = bits32(key_row(ks, 1), 1, &n);
    jx_t order = jx_bind1(JX_P_argsort, 1, &sk, &pa);
    x = r == 0 ? order : jx_lax_gather(x, order, 0); /* arange taken at order is order */
  }
  return x;
}

jx_t jx_random_permutation(jx_t key, int64_t n) {
  jx_t e = check_key("random_permutation", key);
  if (e) return e;
  if (n < 0) return jx_error_new("random_permutation: n must be >= 0, got %lld", (long long)n);
  return shuffled_indices(key, n);
}

jx_t jx_random_permute(jx_t key, jx_t x, int axis) {
  jx_t e = check_key("random_permute", key);
  if (!e) e = jx_op_check_array("random_permute", x);
  if (e) return e;
  int ax = norm_axis(axis, x->aval.ndim);
  if (ax < 0) {
    char s[160];
    return jx_error_new("random_permute: axis %d is out of bounds for %s (need an array of rank >= 1)", axis,
                        jx_aval_str(&x->aval, s, sizeof s));
  }
  return jx_lax_gather(x, shuffled_indices(key, x->aval.shape[ax]), ax);
}
