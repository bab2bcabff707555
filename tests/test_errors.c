/* Errors and memory: bad input to every op gives an error value (never a
 * crash, never an abort) whose message names the op and the shapes/cause;
 * error values propagate unchanged through every op; the error handler sees
 * each new error once; pooled expressions free everything (LeakSanitizer
 * checks this in the ASan build); retained values outlive their pool.
 *
 * JX_VERBOSE=1 prints every error message checked. */
#include "check.h"
#include "jx.h"

#include <stdint.h>

/* Under ASan an impossible allocation must come back as NULL (so jx can turn
 * it into an error value) rather than abort the process. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

/* ---------------------------------------------------------------- data */
static const float D24[24] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12,
                              13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24};

static jx_t f32(int ndim, const int64_t *shape) { return jx_array(JX_F32, ndim, shape, D24); }

typedef jx_t (*unary_fn)(jx_t);
typedef jx_t (*binary_fn)(jx_t, jx_t);
static const struct {
  const char *name, *msg_name; /* msg_name: what the message calls it */
  unary_fn f;
} UNARY[] = {
    {"neg", "neg", jx_neg},
    {"abs", "abs", jx_abs},
    {"exp", "exp", jx_exp},
    {"log", "log", jx_log},
    {"log1p", "log1p", jx_log1p},
    {"expm1", "expm1", jx_expm1},
    {"sqrt", "sqrt", jx_sqrt},
    {"rsqrt", "rsqrt", jx_rsqrt},
    {"tanh", "tanh", jx_tanh},
    {"sin", "sin", jx_sin},
    {"cos", "cos", jx_cos},
    {"sigmoid", "sigmoid", jx_sigmoid},
    {"square", "square", jx_square},
    {"sign", "sign", jx_sign},
    {"floor", "floor", jx_floor},
    {"relu", "relu", jx_relu},
    {"logical_not", "logical_not", jx_logical_not},
    {"stop_gradient", "stop_gradient", jx_stop_gradient},
    {"sum", "sum", jx_sum},
    {"mean", "mean", jx_mean},
    {"max", "max", jx_max},
    {"min", "min", jx_min},
    {"zeros_like", "zeros_like", jx_zeros_like},
    {"ones_like", "ones_like", jx_ones_like},
};
static const struct {
  const char *name, *msg_name;
  binary_fn f;
} BINARY[] = {
    {"add", "add", jx_add},
    {"sub", "sub", jx_sub},
    {"mul", "mul", jx_mul},
    {"div", "div", jx_div},
    {"pow", "pow", jx_pow},
    {"maximum", "max", jx_maximum},
    {"minimum", "min", jx_minimum},
    {"eq", "eq", jx_eq},
    {"ne", "ne", jx_ne},
    {"lt", "lt", jx_lt},
    {"le", "le", jx_le},
    {"gt", "gt", jx_gt},
    {"ge", "ge", jx_ge},
};
#define NUNARY  (int)(sizeof UNARY / sizeof UNARY[0])
#define NBINARY (int)(sizeof BINARY / sizeof BINARY[0])

/* Every op that takes arrays, applied to (a, b) where the op needs one or
 * two arrays; used for the propagation, NULL and tree tests. */
static jx_t where_a(jx_t a, jx_t b) { return jx_where(a, b, b); }
static jx_t where_b(jx_t a, jx_t b) { return jx_where(b, a, b); }
static jx_t where_c(jx_t a, jx_t b) { return jx_where(b, b, a); }
static jx_t astype_(jx_t a, jx_t b) {
  (void)b;
  return jx_astype(a, JX_F64);
}
static jx_t sum_axes_(jx_t a, jx_t b) {
  (void)b;
  return jx_sum_axes(a, 1, (int[]){0}, false);
}
static jx_t mean_axes_(jx_t a, jx_t b) {
  (void)b;
  return jx_mean_axes(a, 1, (int[]){0}, true);
}
static jx_t max_axes_(jx_t a, jx_t b) {
  (void)b;
  return jx_max_axes(a, 1, (int[]){0}, false);
}
static jx_t min_axes_(jx_t a, jx_t b) {
  (void)b;
  return jx_min_axes(a, 1, (int[]){0}, false);
}
static jx_t argmax_(jx_t a, jx_t b) {
  (void)b;
  return jx_argmax(a, 0, false);
}
static jx_t argmin_(jx_t a, jx_t b) {
  (void)b;
  return jx_argmin(a, 0, false);
}
static jx_t dot_a(jx_t a, jx_t b) { return jx_dot(a, b); }
static jx_t dot_b(jx_t a, jx_t b) { return jx_dot(b, a); }
static jx_t matmul_a(jx_t a, jx_t b) { return jx_matmul(a, b); }
static jx_t matmul_b(jx_t a, jx_t b) { return jx_matmul(b, a); }
static jx_t reshape_(jx_t a, jx_t b) {
  (void)b;
  return jx_reshape(a, JX_SHAPE(-1));
}
static jx_t transpose_(jx_t a, jx_t b) {
  (void)b;
  return jx_transpose(a, NULL);
}
static jx_t broadcast_to_(jx_t a, jx_t b) {
  (void)b;
  return jx_broadcast_to(a, JX_SHAPE(2, 2));
}
static jx_t expand_dims_(jx_t a, jx_t b) {
  (void)b;
  return jx_expand_dims(a, 0);
}
static jx_t squeeze_(jx_t a, jx_t b) {
  (void)b;
  return jx_squeeze(a, 0);
}
static jx_t slice_(jx_t a, jx_t b) {
  (void)b;
  return jx_slice(a, (int64_t[]){0}, (int64_t[]){1}, NULL);
}
static jx_t concatenate_a(jx_t a, jx_t b) { return jx_concatenate(2, (jx_t[]){a, b}, 0); }
static jx_t concatenate_b(jx_t a, jx_t b) { return jx_concatenate(2, (jx_t[]){b, a}, 0); }
static jx_t stack_a(jx_t a, jx_t b) { return jx_stack(2, (jx_t[]){a, b}, 0); }
static jx_t stack_b(jx_t a, jx_t b) { return jx_stack(2, (jx_t[]){b, a}, 0); }
static jx_t take_a(jx_t a, jx_t b) {
  (void)b;
  return jx_take(a, jx_scalar_of(JX_I32, 0), 0);
}
static jx_t take_b(jx_t a, jx_t b) { return jx_take(b, a, 0); }
static jx_t one_hot_(jx_t a, jx_t b) {
  (void)b;
  return jx_one_hot(a, 3);
}
static jx_t logsumexp_(jx_t a, jx_t b) {
  (void)b;
  return jx_logsumexp(a, 0);
}
static jx_t softmax_(jx_t a, jx_t b) {
  (void)b;
  return jx_softmax(a, 0);
}
static jx_t log_softmax_(jx_t a, jx_t b) {
  (void)b;
  return jx_log_softmax(a, 0);
}
static const struct {
  const char *name, *msg_name;
  binary_fn f;
} OTHER[] = {
    {"where(x, ., .)", "where", where_a},
    {"where(., x, .)", "where", where_b},
    {"where(., ., x)", "where", where_c},
    {"astype", "astype", astype_},
    {"sum_axes", "sum", sum_axes_},
    {"mean_axes", "mean", mean_axes_},
    {"max_axes", "max", max_axes_},
    {"min_axes", "min", min_axes_},
    {"argmax", "argmax", argmax_},
    {"argmin", "argmin", argmin_},
    {"dot(x, .)", "dot", dot_a},
    {"dot(., x)", "dot", dot_b},
    {"matmul(x, .)", "matmul", matmul_a},
    {"matmul(., x)", "matmul", matmul_b},
    {"reshape", "reshape", reshape_},
    {"transpose", "transpose", transpose_},
    {"broadcast_to", "broadcast_to", broadcast_to_},
    {"expand_dims", "expand_dims", expand_dims_},
    {"squeeze", "squeeze", squeeze_},
    {"slice", "slice", slice_},
    {"concatenate(x, .)", "concatenate", concatenate_a},
    {"concatenate(., x)", "concatenate", concatenate_b},
    {"stack(x, .)", "stack", stack_a},
    {"stack(., x)", "stack", stack_b},
    {"take(x, .)", "take", take_a},
    {"take(., x)", "take", take_b},
    {"one_hot", "one_hot", one_hot_},
    {"logsumexp", "logsumexp", logsumexp_},
    {"softmax", "softmax", softmax_},
    {"log_softmax", "log_softmax", log_softmax_},
};
#define NOTHER (int)(sizeof OTHER / sizeof OTHER[0])

/* ------------------------------------------------------------- shapes */
static void test_binary_shapes(void) {
  jx_t a = f32(JX_SHAPE(2, 3)), b = f32(JX_SHAPE(3, 2)), c = f32(JX_SHAPE(4));
  for (int i = 0; i < NBINARY; i++) {
    EXPECT_ERROR(BINARY[i].f(a, b), BINARY[i].msg_name, "f32[2,3]", "f32[3,2]", "broadcast");
    EXPECT_ERROR(BINARY[i].f(c, a), BINARY[i].msg_name, "f32[4]", "f32[2,3]", "broadcast");
  }
  /* ints promote first; the message shows the promoted operands */
  jx_t ia = jx_array(JX_I32, JX_SHAPE(2, 3), (int32_t[]){1, 2, 3, 4, 5, 6});
  EXPECT_ERROR(jx_add(ia, b), "add", "[2,3]", "[3,2]");
  EXPECT_ERROR(jx_where(jx_ones(JX_BOOL, JX_SHAPE(2, 3)), b, a), "[2,3]", "[3,2]", "broadcast");
  EXPECT_ERROR(jx_where(jx_ones(JX_BOOL, JX_SHAPE(5)), a, a), "bool[5]", "[2,3]", "broadcast");
  /* dtype rules */
  jx_t bl = jx_ones(JX_BOOL, JX_SHAPE(3));
  EXPECT_ERROR(jx_neg(bl), "neg", "bool");
  EXPECT_ERROR(jx_abs(bl), "abs", "bool");
  EXPECT_ERROR(jx_sign(bl), "sign", "bool");
  EXPECT_ERROR(jx_sub(bl, bl), "sub", "bool[3]");
  EXPECT_ERROR(jx_pow(bl, bl), "pow", "bool[3]");
  EXPECT_ERROR(jx_astype(a, (jx_dtype)99), "astype", "dtype", "99");
  EXPECT_ERROR(jx_astype(a, (jx_dtype)-1), "astype", "dtype");
}

static void test_axes(void) {
  jx_t x = f32(JX_SHAPE(2, 3, 4)), s = jx_scalar_of(JX_F32, 1);
  typedef jx_t (*red_fn)(jx_t, int, const int *, bool);
  const struct {
    const char *name;
    red_fn f;
  } R[] = {{"sum", jx_sum_axes}, {"mean", jx_mean_axes}, {"max", jx_max_axes}, {"min", jx_min_axes}};
  for (int i = 0; i < 4; i++) {
    EXPECT_ERROR(R[i].f(x, 1, (int[]){3}, false), R[i].name, "axis 3", "out of bounds", "f32[2,3,4]");
    EXPECT_ERROR(R[i].f(x, 1, (int[]){-4}, true), R[i].name, "axis -4", "out of bounds", "f32[2,3,4]");
    EXPECT_ERROR(R[i].f(x, 2, (int[]){1, -2}, false), R[i].name, "repeated", "f32[2,3,4]");
    EXPECT_ERROR(R[i].f(x, 2, (int[]){0, 0}, true), R[i].name, "repeated");
    EXPECT_ERROR(R[i].f(x, 2, NULL, false), R[i].name, "axes");
    EXPECT_ERROR(R[i].f(x, -1, (int[]){0}, false), R[i].name, "axes");
    EXPECT_ERROR(R[i].f(x, 1, (int[]){INT32_MIN}, false), R[i].name, "out of bounds");
    EXPECT_ERROR(R[i].f(s, 1, (int[]){0}, false), R[i].name, "out of bounds", "f32[]");
  }
  /* max/min of nothing */
  jx_t e = jx_zeros(JX_F32, JX_SHAPE(0, 3));
  EXPECT_ERROR(jx_max(e), "max", "zero-size", "f32[0,3]");
  EXPECT_ERROR(jx_min_axes(e, 1, (int[]){0}, false), "min", "zero-size", "f32[0,3]");
  EXPECT_ERROR(jx_argmax(x, 3, false), "argmax", "axis 3", "f32[2,3,4]");
  EXPECT_ERROR(jx_argmin(x, -4, true), "argmin", "axis -4", "f32[2,3,4]");
  EXPECT_ERROR(jx_argmax(s, 0, false), "argmax", "f32[]");
  EXPECT_ERROR(jx_argmax(e, 0, false), "argmax", "empty", "f32[0,3]");
  EXPECT_ERROR(jx_expand_dims(x, 4), "expand_dims", "axis 4", "out of bounds");
  EXPECT_ERROR(jx_expand_dims(x, -5), "expand_dims", "axis -5", "out of bounds");
  EXPECT_ERROR(jx_squeeze(x, 3), "squeeze", "axis 3", "f32[2,3,4]");
  EXPECT_ERROR(jx_squeeze(x, 1), "squeeze", "size not equal to one", "f32[2,3,4]");
  EXPECT_ERROR(jx_squeeze(s, 0), "squeeze", "f32[]");
  EXPECT_ERROR(jx_logsumexp(x, 3), "logsumexp", "axis 3", "f32[2,3,4]");
  EXPECT_ERROR(jx_softmax(x, -4), "softmax", "axis -4", "f32[2,3,4]");
  EXPECT_ERROR(jx_log_softmax(s, 0), "log_softmax", "axis 0", "f32[]");
  EXPECT_ERROR(jx_take(x, jx_scalar_of(JX_I32, 0), 3), "take", "axis 3", "f32[2,3,4]");
  EXPECT_ERROR(jx_take(s, jx_scalar_of(JX_I32, 0), 0), "take", "f32[]");
  EXPECT_ERROR(jx_concatenate(2, (jx_t[]){x, x}, 3), "concatenate", "axis 3");
  EXPECT_ERROR(jx_concatenate(2, (jx_t[]){x, x}, -4), "concatenate", "axis -4");
  EXPECT_ERROR(jx_stack(2, (jx_t[]){x, x}, 4), "stack", "axis 4");
  EXPECT_ERROR(jx_stack(2, (jx_t[]){x, x}, -5), "stack", "axis -5");
  /* rank limit: a rank-8 array cannot gain an axis */
  jx_t r8 = jx_zeros(JX_F32, JX_SHAPE(1, 1, 1, 1, 1, 1, 1, 2));
  CHECK(jx_ok(r8));
  EXPECT_ERROR(jx_expand_dims(r8, 0), "expand_dims");
  EXPECT_ERROR(jx_stack(1, &r8, 0), "stack", "rank 9");
  EXPECT_ERROR(jx_one_hot(jx_zeros(JX_I32, JX_SHAPE(1, 1, 1, 1, 1, 1, 1, 2)), 3), "one_hot", "rank");
}

static void test_layout(void) {
  jx_t x = f32(JX_SHAPE(2, 3)), x3 = f32(JX_SHAPE(2, 3, 4));
  /* permutations */
  EXPECT_ERROR(jx_transpose(x, (int[]){0, 0}), "transpose", "permutation", "f32[2,3]");
  EXPECT_ERROR(jx_transpose(x, (int[]){0, 2}), "transpose", "permutation", "f32[2,3]");
  EXPECT_ERROR(jx_transpose(x, (int[]){-3, 0}), "transpose", "permutation");
  EXPECT_ERROR(jx_transpose(x3, (int[]){2, 1, 1}), "transpose", "permutation", "f32[2,3,4]");
  EXPECT_ERROR(jx_transpose(x3, (int[]){INT32_MIN, 0, 1}), "transpose", "permutation");
  /* reshape */
  EXPECT_ERROR(jx_reshape(x, JX_SHAPE(4)), "reshape", "6", "[4]");
  EXPECT_ERROR(jx_reshape(x, JX_SHAPE(-1, 4)), "reshape", "f32[2,3]", "[-1,4]");
  EXPECT_ERROR(jx_reshape(x, JX_SHAPE(-1, -1)), "reshape", "-1", "[-1,-1]");
  EXPECT_ERROR(jx_reshape(x, JX_SHAPE(2, -3)), "reshape", "negative", "[2,-3]");
  EXPECT_ERROR(jx_reshape(x, JX_SHAPE(1LL << 40, 1LL << 40)), "reshape", "overflow");
  EXPECT_ERROR(jx_reshape(x, JX_SHAPE(-1, 0)), "reshape", "f32[2,3]");
  EXPECT_ERROR(jx_reshape(x, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 2, 3}), "reshape", "rank 9");
  EXPECT_ERROR(jx_reshape(x, -1, NULL), "reshape", "rank -1");
  EXPECT_ERROR(jx_reshape(x, 2, NULL), "reshape", "NULL");
  /* broadcast_to */
  EXPECT_ERROR(jx_broadcast_to(x, JX_SHAPE(3, 3)), "broadcast_to", "f32[2,3]", "[3,3]");
  EXPECT_ERROR(jx_broadcast_to(x, JX_SHAPE(3)), "broadcast_to", "f32[2,3]", "[3]");
  EXPECT_ERROR(jx_broadcast_to(x, JX_SHAPE(-2, 3)), "broadcast_to", "negative");
  EXPECT_ERROR(jx_broadcast_to(x, JX_SHAPE(1LL << 40, 1LL << 40, 3)), "broadcast_to", "overflow");
  EXPECT_ERROR(jx_broadcast_to(x, 2, NULL), "broadcast_to", "NULL");
  /* slice */
  EXPECT_ERROR(jx_slice(x, (int64_t[]){0, 0}, (int64_t[]){2, 2}, (int64_t[]){1, 0}), "slice", "step", "zero",
               "f32[2,3]");
  /* any non-zero int64 step is valid, as in Python (test_regress_crashes) */
  CHECK(jx_size(jx_slice(x, (int64_t[]){JX_END, 0}, (int64_t[]){JX_END, 2}, (int64_t[]){INT64_MIN, 1})) == 2);
  EXPECT_ERROR(jx_slice(x, NULL, (int64_t[]){2, 2}, NULL), "slice", "NULL");
  EXPECT_ERROR(jx_slice(x, (int64_t[]){0, 0}, NULL, NULL), "slice", "NULL");
  /* concatenate / stack */
  EXPECT_ERROR(jx_concatenate(2, (jx_t[]){x, f32(JX_SHAPE(3))}, 0), "concatenate", "rank", "f32[2,3]",
               "f32[3]");
  EXPECT_ERROR(jx_concatenate(2, (jx_t[]){x, f32(JX_SHAPE(2, 4))}, 0), "concatenate", "f32[2,3]", "f32[2,4]");
  EXPECT_ERROR(jx_concatenate(2, (jx_t[]){jx_scalar(1), jx_scalar(2)}, 0), "concatenate", "zero-dimensional");
  EXPECT_ERROR(jx_concatenate(0, (jx_t[]){x}, 0), "concatenate", "at least one");
  EXPECT_ERROR(jx_concatenate(-1, (jx_t[]){x}, 0), "concatenate", "at least one");
  EXPECT_ERROR(jx_concatenate(2, NULL, 0), "concatenate");
  EXPECT_ERROR(jx_stack(2, (jx_t[]){x, f32(JX_SHAPE(3, 2))}, 0), "stack", "same shape", "f32[2,3]",
               "f32[3,2]");
  EXPECT_ERROR(jx_stack(2, (jx_t[]){x, f32(JX_SHAPE(6))}, 0), "stack", "same shape");
  EXPECT_ERROR(jx_stack(0, NULL, 0), "stack", "at least one");
  /* take / one_hot */
  EXPECT_ERROR(jx_take(x, jx_array(JX_F32, JX_SHAPE(2), (float[]){0, 1}), 0), "take", "integer", "f32[2]");
  EXPECT_ERROR(jx_take(x, jx_scalar(0), 0), "take", "integer", "f32[]");
  EXPECT_ERROR(jx_take(x, jx_ones(JX_BOOL, JX_SHAPE(2)), 0), "take", "integer", "bool[2]");
  EXPECT_ERROR(jx_take(jx_zeros(JX_F32, JX_SHAPE(0, 3)), jx_zeros(JX_I32, JX_SHAPE(2)), 0), "gather", "empty",
               "f32[0,3]");
  EXPECT_ERROR(jx_one_hot(x, 3), "one_hot", "integer");
  EXPECT_ERROR(jx_one_hot(jx_zeros(JX_I32, JX_SHAPE(2)), -1), "one_hot", "-1");
  /* dot / matmul */
  EXPECT_ERROR(jx_dot(x, f32(JX_SHAPE(2, 3))), "dot", "f32[2,3]", "not aligned");
  EXPECT_ERROR(jx_dot(f32(JX_SHAPE(3)), f32(JX_SHAPE(4))), "dot", "f32[3]", "f32[4]");
  EXPECT_ERROR(jx_matmul(x, f32(JX_SHAPE(4, 5))), "matmul", "f32[2,3]", "f32[4,5]", "not aligned");
  EXPECT_ERROR(jx_matmul(f32(JX_SHAPE(3)), f32(JX_SHAPE(4))), "matmul", "not aligned");
  EXPECT_ERROR(jx_matmul(jx_scalar(1), x), "matmul", "0-d");
  EXPECT_ERROR(jx_matmul(x, jx_scalar_of(JX_F32, 2)), "matmul", "0-d");
  EXPECT_ERROR(jx_matmul(f32(JX_SHAPE(2, 2, 3)), f32(JX_SHAPE(3, 3, 2))), "matmul", "batch", "f32[2,2,3]",
               "f32[3,3,2]");
}

static void test_creation(void) {
  int64_t big[2] = {1LL << 40, 1LL << 40};
  EXPECT_ERROR(jx_zeros(JX_F32, 2, big), "zeros", "overflow", "[1099511627776,1099511627776]");
  EXPECT_ERROR(jx_ones(JX_F64, JX_SHAPE(1LL << 61)), "ones", "overflow");
  EXPECT_ERROR(jx_full(JX_I32, JX_SHAPE(1LL << 62, 4), 1.0), "full", "overflow");
  EXPECT_ERROR(jx_array(JX_F32, 2, big, D24), "array", "overflow");
  EXPECT_ERROR(jx_zeros(JX_F32, JX_SHAPE(2, -1)), "zeros", "negative", "-1");
  EXPECT_ERROR(jx_ones(JX_I32, JX_SHAPE(-5)), "ones", "negative");
  EXPECT_ERROR(jx_full(JX_F32, JX_SHAPE(3, INT64_MIN), 2.0), "full", "negative");
  EXPECT_ERROR(jx_array(JX_F32, JX_SHAPE(-2, 3), D24), "array", "negative");
  EXPECT_ERROR(jx_zeros(JX_F32, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}), "zeros", "rank 9");
  EXPECT_ERROR(jx_zeros(JX_F32, -1, NULL), "zeros", "rank -1");
  EXPECT_ERROR(jx_zeros(JX_F32, 2, NULL), "zeros", "NULL");
  EXPECT_ERROR(jx_zeros((jx_dtype)42, JX_SHAPE(2)), "zeros", "dtype");
  EXPECT_ERROR(jx_array((jx_dtype)42, JX_SHAPE(2), D24), "array", "dtype");
  EXPECT_ERROR(jx_array(JX_F32, JX_SHAPE(2, 3), NULL), "array", "NULL");
  EXPECT_ERROR(jx_scalar_of((jx_dtype)42, 1.0), "scalar_of", "dtype");
  EXPECT_ERROR(jx_arange(JX_F32, 0, 10, 0), "arange", "step");
  EXPECT_ERROR(jx_arange(JX_F32, 0, INFINITY, 1), "arange", "finite");
  EXPECT_ERROR(jx_arange(JX_F32, NAN, 1, 1), "arange", "finite");
  EXPECT_ERROR(jx_arange(JX_F32, 0, 1e300, 1e-10), "arange", "too many");
  /* empty shapes are fine while the non-zero dims' bytes fit (ops derive
   * non-empty shapes from them: see test_regress_crashes) */
  CHECK(jx_ok(jx_zeros(JX_F32, JX_SHAPE(0, 1LL << 60))));
  CHECK(jx_size(jx_zeros(JX_F32, JX_SHAPE(0, 1LL << 60))) == 0);
  EXPECT_ERROR(jx_zeros(JX_F32, JX_SHAPE(0, 1LL << 62)), "zeros", "overflow");
}

/* Allocations no allocator can satisfy: an "out of memory" error value.
 * The sizes exceed 2^57 bytes, more than any x86-64/arm64 address space (5-
 * level paging included), so they fail even with vm.overcommit_memory=1;
 * under ASan they exceed its maximum allocation (allocator_may_return_null
 * is set above, so ASan returns NULL instead of aborting). */
static void test_out_of_memory(void) {
  EXPECT_ERROR(jx_zeros(JX_F32, JX_SHAPE(1LL << 58)), "out of memory", "f32[288230376151711744]");
  EXPECT_ERROR(jx_ones(JX_F64, JX_SHAPE(1LL << 30, 1LL << 28)), "out of memory", "f64[1073741824,268435456]");
  EXPECT_ERROR(jx_full(JX_U32, JX_SHAPE(1LL << 20, 1LL << 20, 1LL << 20), 7), "out of memory");
  EXPECT_ERROR(jx_array(JX_I32, JX_SHAPE(1LL << 58), D24), "out of memory");
  jx_t small = jx_zeros(JX_F32, JX_SHAPE(1));
  EXPECT_ERROR(jx_broadcast_to(small, JX_SHAPE(1LL << 29, 1LL << 29)), "out of memory");
  EXPECT_ERROR(jx_add(jx_broadcast_to(small, JX_SHAPE(1LL << 58)), small), "out of memory");
  /* the library still works afterwards */
  jx_t y = jx_add(jx_ones(JX_F32, JX_SHAPE(3)), jx_scalar(1));
  CHECK(jx_ok(y) && jx_item(jx_sum(y)) == 6);
}

/* ------------------------------------------------------- reading values */
static void test_read_item(void) {
  jx_t x = f32(JX_SHAPE(2, 3));
  float buf[6] = {0};
  double dbuf[6];
  CHECK(jx_read(x, JX_F32, buf, sizeof buf) == 0 && buf[5] == 6);
  CHECK(jx_read(x, JX_F32, buf, sizeof buf - 1) != 0);
  CHECK(jx_read(x, JX_F64, dbuf, sizeof buf) != 0); /* 6 doubles need 48 bytes */
  CHECK(jx_read(x, JX_F64, dbuf, sizeof dbuf) == 0 && dbuf[4] == 5);
  CHECK(jx_read(x, JX_F32, NULL, 24) != 0);
  CHECK(jx_read(x, JX_F32, buf, 0) != 0);
  CHECK(jx_read(x, (jx_dtype)42, buf, sizeof buf) != 0);
  CHECK(jx_read(x, (jx_dtype)-1, buf, sizeof buf) != 0);
  CHECK(jx_read(NULL, JX_F32, buf, sizeof buf) != 0);
  CHECK(jx_read(jx_error_new("boom"), JX_F32, buf, sizeof buf) != 0);
  CHECK(jx_read(JX_TUPLE(x, x), JX_F32, buf, sizeof buf) != 0);
  CHECK(jx_read(jx_zeros(JX_F32, JX_SHAPE(0, 3)), JX_F32, NULL, 0) == 0);

  /* item: NaN, and an error reported through the handler */
  CHECK(isnan(jx_item(x)));
  CHECK(isnan(jx_item(jx_zeros(JX_F32, JX_SHAPE(0)))));
  CHECK(isnan(jx_item(JX_TUPLE(x))));
  CHECK(isnan(jx_item(NULL)));
  CHECK(isnan(jx_item(jx_error_new("boom"))));
  CHECK(jx_item(jx_reshape(jx_scalar(2.5), JX_SHAPE(1, 1))) == 2.5);

  /* introspection of non-arrays */
  jx_t t = JX_TUPLE(x), e = jx_error_new("boom");
  CHECK(jx_ndim(t) == -1 && jx_shape(t) == NULL && jx_size(t) == -1 && jx_dtype_of(t) == JX_DTYPE_COUNT);
  CHECK(jx_ndim(e) == -1 && jx_shape(e) == NULL && jx_size(e) == -1 && jx_dtype_of(e) == JX_DTYPE_COUNT);
  CHECK(jx_ndim(NULL) == -1 && jx_shape(NULL) == NULL && jx_size(NULL) == -1);
  CHECK(!jx_is_weak(NULL) && !jx_is_tree(NULL) && !jx_is_tree(e) && jx_len(x) == -1 && jx_len(NULL) == -1);
  CHECK(!jx_ok(NULL) && jx_error(NULL) != NULL && jx_error(x) == NULL && jx_error(t) == NULL);
  char *s = jx_to_string(e);
  CHECK(s && strstr(s, "boom"));
  free(s);
  s = jx_to_string(NULL);
  CHECK(s != NULL);
  free(s);
  CHECK(strcmp(jx_dtype_name((jx_dtype)42), "") != 0 && jx_dtype_size((jx_dtype)42) == 0);
}

/* ------------------------------------------------ propagation, NULL, trees */
static void test_propagation(void) {
  jx_t e = jx_error_new("boom %d", 42);
  CHECK(!jx_ok(e) && strcmp(jx_error(e), "boom 42") == 0);
  jx_t x = f32(JX_SHAPE(2));
  for (int i = 0; i < NUNARY; i++)
    CHECKF(UNARY[i].f(e) == e, "%s does not propagate its error operand", UNARY[i].name);
  for (int i = 0; i < NBINARY; i++) {
    CHECKF(BINARY[i].f(e, x) == e, "%s(e, x) does not propagate", BINARY[i].name);
    CHECKF(BINARY[i].f(x, e) == e, "%s(x, e) does not propagate", BINARY[i].name);
    CHECKF(BINARY[i].f(e, jx_scalar(1)) == e, "%s(e, scalar) does not propagate", BINARY[i].name);
    CHECKF(BINARY[i].f(e, e) == e, "%s(e, e) does not propagate", BINARY[i].name);
  }
  for (int i = 0; i < NOTHER; i++)
    CHECKF(OTHER[i].f(e, x) == e, "%s does not propagate its error operand", OTHER[i].name);
  /* even when the other arguments are bad too, the error operand wins */
  CHECK(jx_sum_axes(e, 1, (int[]){7}, false) == e);
  CHECK(jx_astype(e, (jx_dtype)42) == e);
  CHECK(jx_reshape(e, JX_SHAPE(-1, -1)) == e);
  CHECK(jx_transpose(e, (int[]){0, 0}) == e);
  CHECK(jx_slice(e, NULL, NULL, NULL) == e);
  CHECK(jx_one_hot(e, -1) == e);
  CHECK(jx_add(e, f32(JX_SHAPE(5))) == e);
  CHECK(jx_concatenate(3, (jx_t[]){x, e, jx_error_new("other")}, 0) == e);
  /* trees built from an error are that error */
  CHECK(JX_TUPLE(x, e) == e);
  CHECK(JX_LIST(e) == e);
  CHECK(jx_at(e, 0) == e);
  CHECK(jx_tree_map(NULL, e, NULL) == e);
  CHECK(jx_tree_map2(NULL, e, x, NULL) == e);
  /* a long chain keeps the first error */
  jx_t y = jx_reshape(x, JX_SHAPE(3));
  jx_t z = jx_softmax(jx_sum(jx_tanh(jx_mul(jx_add(y, x), y))), 0);
  CHECK(z == y);
}

static void test_null_and_trees(void) {
  jx_t x = f32(JX_SHAPE(2));
  jx_t t = JX_TUPLE(x, x), l = JX_LIST(x);
  for (int i = 0; i < NUNARY; i++) {
    EXPECT_ERROR(UNARY[i].f(NULL), UNARY[i].msg_name, "NULL");
    EXPECT_ERROR(UNARY[i].f(t), UNARY[i].msg_name, "tuple/list");
    EXPECT_ERROR(UNARY[i].f(l), UNARY[i].msg_name, "tuple/list");
  }
  for (int i = 0; i < NBINARY; i++) {
    EXPECT_ERROR(BINARY[i].f(NULL, x), BINARY[i].name, "NULL");
    EXPECT_ERROR(BINARY[i].f(x, NULL), BINARY[i].name, "NULL");
    EXPECT_ERROR(BINARY[i].f(t, x), BINARY[i].name, "tuple/list");
    EXPECT_ERROR(BINARY[i].f(x, l), BINARY[i].name, "tuple/list");
  }
  for (int i = 0; i < NOTHER; i++) {
    /* NULL inside an array list (concatenate/stack) is reported by position */
    bool in_list = !strncmp(OTHER[i].name, "concatenate", 11) || !strncmp(OTHER[i].name, "stack", 5);
    if (in_list) {
      EXPECT_ERROR(OTHER[i].f(NULL, x), "null");
    } else {
      EXPECT_ERROR(OTHER[i].f(NULL, x), OTHER[i].msg_name, "NULL");
    }
    EXPECT_ERROR(OTHER[i].f(t, x), OTHER[i].msg_name, "tuple/list");
  }
  EXPECT_ERROR(jx_at(x, 0), "at", "array");
  EXPECT_ERROR(jx_at(t, 2), "at", "index 2", "length 2");
  EXPECT_ERROR(jx_at(t, -1), "at", "index -1");
  EXPECT_ERROR(jx_at(NULL, 0), "at", "NULL");
  EXPECT_ERROR(jx_tuple(-1, NULL), "tuple", "negative");
  EXPECT_ERROR(jx_list(2, NULL), "list", "NULL");
  EXPECT_ERROR(jx_tuple(2, (jx_t[]){x, NULL}), "null");
  CHECK(jx_ok(jx_tuple(0, NULL)) && jx_len(jx_tuple(0, NULL)) == 0);
  jx_t s = JX_TUPLE(x, JX_LIST(x));
  EXPECT_ERROR(jx_tree_map2(NULL, s, t, NULL), "tree_map2", "structure");
}

/* ------------------------------------------------------- error handler */
static int handler_calls;
static char handler_msg[512];
static void *handler_user;
static void handler(const char *msg, void *u) {
  handler_calls++;
  snprintf(handler_msg, sizeof handler_msg, "%s", msg ? msg : "(null)");
  handler_user = u;
}

static void test_error_handler(void) {
  int cookie;
  jx_set_error_handler(handler, &cookie);
  jx_t a = f32(JX_SHAPE(2, 3)), b = f32(JX_SHAPE(4));
  jx_t r = jx_mul(a, b);
  CHECK(!jx_ok(r));
  CHECK(handler_calls == 1);
  CHECK(handler_user == &cookie);
  CHECK(strcmp(handler_msg, jx_error(r)) == 0);
  CHECK(strstr(handler_msg, "mul") && strstr(handler_msg, "f32[2,3]") && strstr(handler_msg, "f32[4]"));
  /* propagating an existing error creates no new one */
  jx_t r2 = jx_exp(jx_sum(jx_add(r, a)));
  CHECK(r2 == r && handler_calls == 1);
  /* every new error is reported, including jx_error_new's own */
  jx_error_new("custom %s", "message");
  CHECK(handler_calls == 2 && strcmp(handler_msg, "custom message") == 0);
  CHECK(isnan(jx_item(a)) && handler_calls == 3 && strstr(handler_msg, "item"));
  CHECK(!jx_ok(jx_squeeze(a, 0)) && handler_calls == 4 && strstr(handler_msg, "squeeze"));
  jx_set_error_handler(NULL, NULL);
  jx_error_new("not reported");
  CHECK(handler_calls == 4);
}

/* ------------------------------------------------------ pools, retain */
static void test_pool_loop(void) {
  /* 20,000 pooled expressions: LeakSanitizer (ASan CI run) checks nothing
   * escapes; nested expressions, trees and error values included. */
  float data[64];
  for (int i = 0; i < 64; i++) data[i] = (float)i / 64.0f;
  double acc = 0;
  int errors = 0;
  for (int it = 0; it < 20000; it++) {
    jx_pool_push();
    jx_t x = jx_array(JX_F32, JX_SHAPE(8, 8), data);
    jx_t y = jx_add(jx_mul(x, x), x);
    jx_t z = jx_sum_axes(jx_tanh(jx_sub(y, jx_scalar(0.5))), 1, (int[]){1}, false);
    jx_t w = jx_matmul(jx_transpose(x, NULL), jx_reshape(z, JX_SHAPE(8, 1)));
    jx_t t = JX_TUPLE(y, JX_LIST(z, w));
    jx_t bad = jx_reshape(jx_at(jx_at(t, 1), 0), JX_SHAPE(3)); /* an error value */
    errors += !jx_ok(jx_neg(bad));
    if (it % 1000 == 0) {
      jx_pool_push(); /* nested pools */
      acc += jx_item(jx_sum(jx_softmax(w, 0)));
      jx_pool_pop();
    }
    jx_pool_pop();
  }
  CHECK(errors == 20000);
  CHECK_CLOSE(acc, 20.0, 1e-5, 1e-5);
  jx_pool_pop(); /* popping the root pool is a no-op */
  jx_pool_pop();
  CHECK(jx_ok(jx_add(jx_scalar(1), jx_scalar(2))));
}

static void test_retain_release(void) {
  jx_pool_push();
  jx_t x = jx_array(JX_F32, JX_SHAPE(3), (float[]){1, 2, 3});
  jx_t kept = jx_add(x, x);
  CHECK(jx_retain(kept) == kept);
  jx_t tree = jx_retain(JX_TUPLE(x, kept));
  jx_t err = jx_retain(jx_error_new("kept error"));
  jx_t dropped = jx_mul(x, x);
  (void)dropped;
  jx_pool_pop();

  float buf[3];
  CHECK(jx_ok(kept) && jx_read(kept, JX_F32, buf, sizeof buf) == 0);
  CHECK(buf[0] == 2 && buf[1] == 4 && buf[2] == 6);
  CHECK(jx_len(tree) == 2);
  CHECK(jx_read(jx_at(tree, 0), JX_F32, buf, sizeof buf) == 0 && buf[2] == 3); /* x lives on in the tree */
  CHECK(jx_at(tree, 1) == kept);
  CHECK(!jx_ok(err) && strcmp(jx_error(err), "kept error") == 0);

  /* usable in new expressions; and a retained value survives several pools */
  jx_pool_push();
  CHECK(jx_item(jx_sum(jx_mul(kept, jx_at(tree, 0)))) == 2 + 8 + 18);
  CHECK(jx_add(kept, err) == err);
  jx_pool_pop();
  jx_pool_push();
  jx_pool_push();
  CHECK(jx_item(jx_max(kept)) == 6);
  jx_pool_pop();
  jx_pool_pop();

  /* two references: one release leaves it alive */
  jx_retain(kept);
  jx_release(kept);
  CHECK(jx_read(kept, JX_F32, buf, sizeof buf) == 0 && buf[0] == 2);
  jx_release(kept); /* the tree still holds it */
  CHECK(jx_read(jx_at(tree, 1), JX_F32, buf, sizeof buf) == 0 && buf[1] == 4);
  jx_release(tree);
  jx_release(err);
  jx_retain(NULL);
  jx_release(NULL);

  /* a retained value made in a transformed-function-free pool loop */
  jx_t acc = jx_retain(jx_zeros(JX_F32, JX_SHAPE(3)));
  for (int i = 0; i < 100; i++) {
    jx_pool_push();
    jx_t next = jx_retain(jx_add(acc, jx_scalar(1)));
    jx_pool_pop();
    jx_release(acc);
    acc = next;
  }
  CHECK(jx_read(acc, JX_F32, buf, sizeof buf) == 0 && buf[0] == 100 && buf[2] == 100);
  jx_release(acc);
}

int main(void) {
  const char *v = getenv("JX_VERBOSE");
  check_verbose = v && *v && strcmp(v, "0") != 0;
  test_binary_shapes();
  test_axes();
  test_layout();
  test_creation();
  test_out_of_memory();
  test_read_item();
  test_propagation();
  test_null_and_trees();
  test_error_handler();
  test_pool_loop();
  test_retain_release();
  return check_report("test_errors");
}
