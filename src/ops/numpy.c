/* Elementwise NumPy-style ops: JAX's promotion (weak types included) and
 * NumPy broadcasting, then one primitive. */
#include "ops/ops.h"

jx_t jx_op_check_array(const char *op, jx_t x) {
  if (jx_is_error(x)) return x ? x : jx_error_new("%s: operand is NULL", op);
  if (x->kind == JX_VK_TREE) return jx_error_new("%s: operand is a tuple/list, not an array", op);
  return NULL;
}

jx_t jx_op_cast_for(const char *op, jx_t x, jx_dtype dt, bool weak) {
  /* A weak scalar is converted from its exact value, here and not by a
   * staged convert (JAX converts a Python scalar before it becomes a
   * literal): f64 + jx_scalar(0.1) adds the f64 0.1. */
  if (jx_has_exact(x)) return jx_exact_cast(op, x, dt, weak);
  if (x->aval.dtype == dt && x->aval.weak == weak) return x;
  jx_params p;
  jx_params_init(&p, JX_PK_CONVERT);
  p.convert.dtype = dt;
  p.convert.weak = weak;
  return jx_bind1(JX_P_convert, 1, &x, &p);
}

jx_t jx_op_cast(jx_t x, jx_dtype dt, bool weak) { return jx_op_cast_for("convert", x, dt, weak); }

jx_t jx_op_to_float(jx_t x) {
  return jx_dtype_is_float(x->aval.dtype) ? x : jx_op_cast(x, JX_F32, x->aval.weak);
}

/* promote a and b to their common type */
static jx_t promote2(const char *op, jx_t *a, jx_t *b) {
  jx_t e = jx_op_check_array(op, *a);
  if (!e) e = jx_op_check_array(op, *b);
  if (e) return e;
  /* An operand whose dtype changes is converted to the joined type,
   * weakness included; one already of the joined dtype is left alone (no
   * convert is staged for `x * 2.0`). The primitive's result is weak when
   * both operands are, which then equals the join's weakness. */
  bool weak;
  jx_dtype dt = jx_promote((*a)->aval.dtype, (*a)->aval.weak, (*b)->aval.dtype, (*b)->aval.weak, &weak);
  *a = jx_op_cast_for(op, *a, dt, (*a)->aval.dtype == dt ? (*a)->aval.weak : weak);
  *b = jx_op_cast_for(op, *b, dt, (*b)->aval.dtype == dt ? (*b)->aval.weak : weak);
  return NULL;
}

jx_t jx_op_promote(const char *op, jx_t *a, jx_t *b) { return promote2(op, a, b); }

static jx_t binop(jx_prim p, const char *op, jx_t a, jx_t b) {
  jx_t e = promote2(op, &a, &b);
  return e ? e : jx_lax_binary(p, a, b);
}

/* add/mul of two bools are logical or/and, as jnp.add/jnp.multiply */
static jx_t bool_binop(jx_prim p, jx_prim pbool, const char *op, jx_t a, jx_t b) {
  jx_t e = promote2(op, &a, &b);
  if (e) return e;
  return jx_lax_binary(a->aval.dtype == JX_BOOL ? pbool : p, a, b);
}

jx_t jx_add(jx_t a, jx_t b) { return bool_binop(JX_P_add, JX_P_or, "add", a, b); }
jx_t jx_sub(jx_t a, jx_t b) { return binop(JX_P_sub, "sub", a, b); }
jx_t jx_mul(jx_t a, jx_t b) { return bool_binop(JX_P_mul, JX_P_and, "mul", a, b); }
jx_t jx_pow(jx_t a, jx_t b) { return binop(JX_P_pow, "pow", a, b); }
jx_t jx_maximum(jx_t a, jx_t b) { return binop(JX_P_max, "maximum", a, b); }
jx_t jx_minimum(jx_t a, jx_t b) { return binop(JX_P_min, "minimum", a, b); }
jx_t jx_eq(jx_t a, jx_t b) { return binop(JX_P_eq, "eq", a, b); }
jx_t jx_ne(jx_t a, jx_t b) { return binop(JX_P_ne, "ne", a, b); }
jx_t jx_lt(jx_t a, jx_t b) { return binop(JX_P_lt, "lt", a, b); }
jx_t jx_le(jx_t a, jx_t b) { return binop(JX_P_le, "le", a, b); }
jx_t jx_gt(jx_t a, jx_t b) { return binop(JX_P_gt, "gt", a, b); }
jx_t jx_ge(jx_t a, jx_t b) { return binop(JX_P_ge, "ge", a, b); }

/* true division: integer operands promote to f32 first, as jnp.divide */
jx_t jx_div(jx_t a, jx_t b) {
  jx_t e = promote2("div", &a, &b);
  if (e) return e;
  return jx_lax_binary(JX_P_div, jx_op_to_float(a), jx_op_to_float(b));
}

/* unary ops that promote ints/bool to float (jnp's promote_to_inexact) */
static jx_t float_unop(jx_prim p, const char *op, jx_t x) {
  jx_t e = jx_op_check_array(op, x);
  return e ? e : jx_lax_unary(p, jx_op_to_float(x));
}
jx_t jx_exp(jx_t x) { return float_unop(JX_P_exp, "exp", x); }
jx_t jx_log(jx_t x) { return float_unop(JX_P_log, "log", x); }
jx_t jx_log1p(jx_t x) { return float_unop(JX_P_log1p, "log1p", x); }
jx_t jx_expm1(jx_t x) { return float_unop(JX_P_expm1, "expm1", x); }
jx_t jx_sqrt(jx_t x) { return float_unop(JX_P_sqrt, "sqrt", x); }
jx_t jx_rsqrt(jx_t x) { return float_unop(JX_P_rsqrt, "rsqrt", x); }
jx_t jx_tanh(jx_t x) { return float_unop(JX_P_tanh, "tanh", x); }
jx_t jx_sin(jx_t x) { return float_unop(JX_P_sin, "sin", x); }
jx_t jx_cos(jx_t x) { return float_unop(JX_P_cos, "cos", x); }
jx_t jx_sigmoid(jx_t x) { return float_unop(JX_P_logistic, "sigmoid", x); }
jx_t jx_floor(jx_t x) { return float_unop(JX_P_floor, "floor", x); }

/* unary ops that keep the dtype; bool is not numeric for them */
static jx_t num_unop(jx_prim p, const char *op, jx_t x) {
  jx_t e = jx_op_check_array(op, x);
  if (e) return e;
  if (x->aval.dtype == JX_BOOL) return jx_error_new("%s: not defined for bool arrays", op);
  return jx_lax_unary(p, x);
}
jx_t jx_neg(jx_t x) { return num_unop(JX_P_neg, "neg", x); }
jx_t jx_abs(jx_t x) { return num_unop(JX_P_abs, "abs", x); }
jx_t jx_sign(jx_t x) { return num_unop(JX_P_sign, "sign", x); }
jx_t jx_square(jx_t x) {
  jx_t e = jx_op_check_array("square", x);
  return e ? e : jx_lax_binary(JX_P_mul, x, x);
}

/* relu = 0 where x <= 0 else x; its derivative at 0 is 0, as jax.nn.relu,
 * and NaN propagates (NaN <= 0 is false), as jnp.maximum(x, 0). */
jx_t jx_relu(jx_t x) {
  jx_t e = jx_op_check_array("relu", x);
  if (e) return e;
  jx_t zero = jx_op_cast(jx_scalar_of(x->aval.dtype, 0), x->aval.dtype, x->aval.weak);
  return jx_lax_select(jx_lax_binary(JX_P_le, x, zero), zero, x);
}

jx_t jx_logical_not(jx_t x) {
  jx_t e = jx_op_check_array("logical_not", x);
  if (e) return e;
  return jx_lax_unary(JX_P_not, jx_op_cast(x, JX_BOOL, false));
}

jx_t jx_where(jx_t c, jx_t a, jx_t b) {
  jx_t e = jx_op_check_array("where", c);
  if (!e) e = promote2("where", &a, &b);
  if (e) return e;
  return jx_lax_select(jx_op_cast(c, JX_BOOL, false), a, b);
}

jx_t jx_astype(jx_t x, jx_dtype dt) {
  jx_t e = jx_op_check_array("astype", x);
  if (e) return e;
  if ((unsigned)dt >= JX_DTYPE_COUNT) return jx_error_new("astype: invalid dtype %d", (int)dt);
  return jx_op_cast_for("astype", x, dt, false);
}

jx_t jx_stop_gradient(jx_t x) {
  jx_t e = jx_op_check_array("stop_gradient", x);
  return e ? e : jx_lax_unary(JX_P_stop_gradient, x);
}
