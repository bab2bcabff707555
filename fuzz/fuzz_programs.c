/* libFuzzer target: bytes -> a random jx program, run eagerly and jitted.
 *
 * The bytes decode into 1-3 input arrays (rank 0-3, dims 0-4, any dtype,
 * #19's bf16/f16/small ints/u64 included, values including NaN/inf/huge),
 * a sequence of up to 12 ops (round 1's and round 2's: sorts, cumulative
 * ops, dynamic slices, .at[] updates and segment sums, windows and
 * pooling, convolutions) with operands, shapes, dtypes and axes taken from
 * the bytes (often invalid:
 * bad axes, unbroadcastable shapes, wrong dtypes), and a stack of up to 4
 * transformations around it (jit, grad, value_and_grad, jacfwd, jacrev,
 * vmap with random in_axes, vmap in chunks, checkpoint under each policy,
 * custom_jvp and custom_vjp with f's own derivatives as the rules). The transformed function f runs eagerly and as jit(f);
 * the target checks that
 *   - nothing crashes (ASan/UBSan/LSan, no abort: user input never reaches
 *     an internal check);
 *   - an error is an error value with a message;
 *   - eager and jit agree: both fail, or both give the same tree, dtypes,
 *     shapes, and values (ints and bools exactly, floats to rounding);
 *   - a second jit call (the cached program) gives the same result.
 * Any disagreement aborts with both results printed.
 *
 * The C compiler is not run by default (JX_CC=/nonexistent: jit traces,
 * optimizes, fuses and renders C, then interprets the optimized jaxpr), so
 * an execution takes well under a millisecond; FUZZ_CC=1 uses the real
 * compiler (the on-disk cache goes to a temporary directory).
 * FUZZ_EXPORT=1 also exports f (jx_export_c), builds the unit with
 * `cc -std=c99 -pedantic -Wall -Wextra -Werror` and a standalone driver,
 * runs it on the same arguments and checks it agrees with jit (as eager
 * and jit must); an export may only fail naming a primitive it has no
 * portable rendering for. Slow (a C build per input): run it on the
 * corpus, e.g. FUZZ_EXPORT=1 build-fuzz/fuzz_programs -runs=200 fuzz/corpus.
 * Build and run: fuzz/run.sh (docs/RELIABILITY.md). */
#include <jx.h>

#include "../tests/export_harness.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ the reader */
typedef struct {
  const uint8_t *p;
  size_t n;
} rd;
static unsigned u8(rd *r) {
  if (!r->n) return 0;
  r->n--;
  return *r->p++;
}
static int pick(rd *r, int n) { return n > 0 ? (int)(u8(r) % (unsigned)n) : 0; }

/* ------------------------------------------------------------ a program */
enum { MAXARG = 3, MAXOP = 12, MAXWRAP = 4, MAXREG = MAXARG + MAXOP, MAXELEMS = 4096 };

typedef enum {
  OP_UNARY,
  OP_BINARY,
  OP_WHERE,
  OP_ASTYPE,
  OP_REDUCE,
  OP_REDUCE_AXES,
  OP_ARG,
  OP_DOT,
  OP_RESHAPE,
  OP_TRANSPOSE,
  OP_BROADCAST,
  OP_EXPAND,
  OP_SQUEEZE,
  OP_SLICE,
  OP_CONCAT,
  OP_STACK,
  OP_TAKE,
  OP_ONE_HOT,
  OP_NN,
  OP_CONST,
  OP_COND,
  OP_SCAN,
  OP_FORI,
  OP_RANDOM,
  /* round 2's primitives */
  OP_SORT,
  OP_CUM,
  OP_DSLICE,
  OP_INDEX,
  OP_WINDOW,
  OP_CONV,
  OP_BWHILE, /* while_loop_bounded (#19): dyn scans under jit(grad) and vmap */
  OP_COUNT
} opkind;

typedef struct {
  uint8_t kind, sub, a, b, c; /* operands: register numbers (taken modulo what exists) */
  int8_t axis, axis2;
  bool keep;
  int8_t nd;
  int64_t shape[4]; /* reshape/broadcast targets, slice start/stop/step */
  int64_t stop[4], step[4];
  int32_t idx[4]; /* take indices */
  double v;
} insn;

/* round 1's transformations, then #19's: checkpoint under a policy,
 * custom_jvp and custom_vjp whose rules are f's own derivatives (so the
 * results equal f's), jacrev, and vmap in chunks */
typedef enum {
  W_JIT,
  W_GRAD,
  W_VALUE_AND_GRAD,
  W_JACFWD,
  W_VMAP,
  W_CHECKPOINT,
  W_CUSTOM_JVP,
  W_CUSTOM_VJP,
  W_JACREV,
  W_VMAP_CHUNKED,
  W_COUNT
} wkind;

typedef struct {
  wkind kind;
  int argnum;
  int in_axes[MAXARG];
  int64_t size; /* vmap: batch size */
} wrap;

typedef struct {
  int nargs;
  jx_dtype dt[MAXARG];
  int nd[MAXARG];
  int64_t shape[MAXARG][4];
  int nop;
  insn op[MAXOP];
  int nwrap;
  wrap w[MAXWRAP];
  uint8_t seed[64]; /* input values */
} program;

/* round 1's dtypes, then #19's: inputs, astype targets and constants */
static const jx_dtype dtypes[] = {JX_F32,  JX_F32, JX_F64, JX_I32, JX_BOOL, JX_I64, JX_U32,
                                  JX_BF16, JX_F16, JX_I8,  JX_U8,  JX_I16,  JX_U16, JX_U64};
enum { NDT = sizeof dtypes / sizeof *dtypes };

/* The transformations come first: with a short input the rest reads as
 * zeros, and the stack should be there from the start. */
static void decode(rd *r, program *P) {
  memset(P, 0, sizeof *P);
  P->nargs = 1 + pick(r, MAXARG);
  for (int i = 0; i < P->nargs; i++) {
    P->dt[i] = dtypes[pick(r, NDT)];
    P->nd[i] = pick(r, 4);
    for (int d = 0; d < P->nd[i]; d++) P->shape[i][d] = pick(r, 5);
  }
  P->nwrap = pick(r, MAXWRAP + 1);
  for (int k = 0; k < P->nwrap; k++) {
    wrap *w = &P->w[k];
    w->kind = (wkind)pick(r, W_COUNT);
    if ((w->kind == W_JACFWD || w->kind == W_JACREV) && u8(r) % 4) w->kind = W_JIT; /* jacobians grow fast */
    /* nested jacrevs vmap over ever larger output bases (sizes multiply:
     * three over an f32[3,4] function batch 12 x 144 x 1728 at once, as
     * in JAX): at most one jacrev, and none above a jacfwd */
    for (int j = 0; j < k && w->kind == W_JACREV; j++)
      if (P->w[j].kind == W_JACREV || P->w[j].kind == W_JACFWD) w->kind = W_JIT;
    w->argnum = pick(r, P->nargs + 1) - (pick(r, 8) == 0); /* sometimes out of range */
    w->size = 1 + pick(r, 3);
    for (int i = 0; i < MAXARG; i++) {
      int a = pick(r, 6);
      w->in_axes[i] = a == 0 ? JX_NONE : a <= 3 ? 0 : a == 4 ? 1 : -1;
    }
  }
  P->nop = 1 + pick(r, MAXOP);
  for (int k = 0; k < P->nop; k++) {
    insn *q = &P->op[k];
    q->kind = (uint8_t)pick(r, OP_COUNT);
    q->sub = (uint8_t)u8(r);
    q->a = (uint8_t)u8(r), q->b = (uint8_t)u8(r), q->c = (uint8_t)u8(r);
    q->axis = (int8_t)(pick(r, 9) - 4), q->axis2 = (int8_t)(pick(r, 9) - 4);
    q->keep = u8(r) & 1;
    q->nd = (int8_t)pick(r, 5);
    for (int d = 0; d < 4; d++) {
      q->shape[d] = pick(r, 7) - 1; /* -1 .. 5 */
      q->stop[d] = pick(r, 4) == 0 ? INT64_MAX : pick(r, 11) - 5;
      q->step[d] = pick(r, 5) - 2;
      if (q->step[d] == 0) q->step[d] = 1;
      q->idx[d] = pick(r, 13) - 6;
    }
    unsigned s = u8(r);
    q->v = s < 8 ? (double[]){NAN, INFINITY, -INFINITY, 1e30, -1e30, 0.0, -0.0, 1e-30}[s]
                 : ((double)s - 128) / 16;
  }
  for (int i = 0; i < 64; i++) P->seed[i] = (uint8_t)u8(r);
}

/* FUZZ_VERBOSE=2: the decoded program, for turning a finding into a test */
static void print_program(const program *P) {
  static const char *const ops[] = {
      "unary",   "binary",    "where",     "astype", "reduce",  "reduce_axes", "arg",    "dot",
      "reshape", "transpose", "broadcast", "expand", "squeeze", "slice",       "concat", "stack",
      "take",    "one_hot",   "nn",        "const",  "cond",    "scan",        "fori",   "random",
      "sort",    "cum",       "dslice",    "index",  "window",  "conv",        "bwhile"};
  static const char *const wraps[W_COUNT] = {"jit",    "grad",        "value_and_grad", "jacfwd",
                                             "vmap",   "checkpoint",  "custom_jvp",     "custom_vjp",
                                             "jacrev", "vmap_chunked"};
  for (int i = 0; i < P->nargs; i++) {
    fprintf(stderr, "arg %d: %s[", i, jx_dtype_name(P->dt[i]));
    for (int d = 0; d < P->nd[i]; d++) fprintf(stderr, "%s%lld", d ? "," : "", (long long)P->shape[i][d]);
    fprintf(stderr, "]\n");
  }
  for (int k = 0; k < P->nop; k++) {
    const insn *q = &P->op[k];
    fprintf(stderr, "r%d = %s/%d(r%d, r%d, r%d) axis %d,%d keep %d nd %d shape [%lld,%lld,%lld,%lld] v %g\n",
            P->nargs + k, ops[q->kind], q->sub, q->a % (P->nargs + k), q->b % (P->nargs + k),
            q->c % (P->nargs + k), q->axis, q->axis2, q->keep, q->nd, (long long)q->shape[0],
            (long long)q->shape[1], (long long)q->shape[2], (long long)q->shape[3], q->v);
  }
  for (int k = 0; k < P->nwrap; k++) {
    const wrap *w = &P->w[k];
    fprintf(stderr, "wrap %d: %s argnum %d size %lld in_axes %d %d %d\n", k, wraps[w->kind], w->argnum,
            (long long)w->size, w->in_axes[0], w->in_axes[1], w->in_axes[2]);
  }
}

/* -------------------------------------------------------- running it */
static jx_t reg(jx_t *regs, int n, uint8_t k) { return regs[k % n]; }

static bool too_big(jx_t x) { return jx_size(x) > MAXELEMS; }

static jx_t br_sin(const jx_t *a, void *u) {
  (void)u;
  return jx_sin(a[0]);
}
static jx_t br_sq(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(a[0], a[0]);
}
static jx_t scan_step(const jx_t *a, void *u) { /* (c, x) -> (c + x, c * x) */
  (void)u;
  jx_t c = jx_add(a[0], a[1]);
  return JX_TUPLE(c, jx_mul(a[0], a[1]));
}
static jx_t fori_body(const jx_t *a, void *u) {
  (void)u;
  return jx_add(jx_mul(a[1], jx_scalar(0.5)), jx_scalar(1.0));
}

/* a loop that runs until sum(x) reaches a limit: x + |x| + 1 grows
 * every element, so the steps taken depend on the data and the bound */
static jx_t bw_cond(const jx_t *a, void *u) {
  return jx_lt(jx_sum(jx_astype(a[0], JX_F32)), jx_scalar(*(const double *)u));
}
static jx_t bw_body(const jx_t *a, void *u) {
  (void)u;
  return jx_add(a[0], jx_add(jx_abs(a[0]), jx_ones_like(a[0])));
}

static jx_t unary(int k, jx_t x) {
  switch (k % 18) {
    case 0: return jx_neg(x);
    case 1: return jx_abs(x);
    case 2: return jx_exp(x);
    case 3: return jx_log(x);
    case 4: return jx_log1p(x);
    case 5: return jx_expm1(x);
    case 6: return jx_sqrt(x);
    case 7: return jx_rsqrt(x);
    case 8: return jx_tanh(x);
    case 9: return jx_sin(x);
    case 10: return jx_cos(x);
    case 11: return jx_sigmoid(x);
    case 12: return jx_square(x);
    case 13: return jx_sign(x);
    case 14: return jx_floor(x);
    case 15: return jx_relu(x);
    case 16: return jx_logical_not(x);
    default: return jx_stop_gradient(x);
  }
}

static jx_t binary(int k, jx_t a, jx_t b) {
  switch (k % 13) {
    case 0: return jx_add(a, b);
    case 1: return jx_sub(a, b);
    case 2: return jx_mul(a, b);
    case 3: return jx_div(a, b);
    case 4: return jx_pow(a, b);
    case 5: return jx_maximum(a, b);
    case 6: return jx_minimum(a, b);
    case 7: return jx_eq(a, b);
    case 8: return jx_ne(a, b);
    case 9: return jx_lt(a, b);
    case 10: return jx_le(a, b);
    case 11: return jx_gt(a, b);
    default: return jx_ge(a, b);
  }
}

/* round 2's primitives: operands as the bytes give them (often invalid:
 * the error must then be the same eagerly and under jit) */
static jx_t round2_sort(const insn *q, jx_t x, jx_t y) {
  switch (q->sub % 4) {
    case 0: return jx_sort(x, q->axis);
    case 1: return jx_argsort(x, q->axis);
    case 2: return jx_at(jx_top_k(x, q->sub / 4 % 3), q->keep);
    default: return jx_at(jx_sort_multi(2, (jx_t[]){x, y}, q->axis, 1 + (q->sub >> 2 & 1)), q->keep);
  }
}

static jx_t round2_cum(const insn *q, jx_t x) {
  switch (q->sub % 5) {
    case 0: return jx_cumsum_ex(x, q->axis, q->keep);
    case 1: return jx_cumprod(x, q->axis, q->keep);
    case 2: return jx_cummax(x, q->axis, q->keep);
    case 3: return jx_cummin(x, q->axis, q->keep);
    default: return jx_cumlogsumexp(x, q->axis, q->keep);
  }
}

/* a start index: a constant from the bytes, or computed from y (traced) */
static jx_t start_of(const insn *q, jx_t y, int i) {
  return q->sub & 8 ? jx_astype(jx_sum(y), JX_I32) : jx_scalar_int(q->idx[i % 4]);
}

static jx_t round2_dslice(const insn *q, jx_t x, jx_t y) {
  const int64_t size = q->shape[0] < 0 ? 1 : q->shape[0];
  switch (q->sub % 3) {
    case 0: return jx_dynamic_slice_in_dim(x, start_of(q, y, 0), size, q->axis);
    case 1: return jx_dynamic_update_slice_in_dim(x, y, start_of(q, y, 1), q->axis);
    default: {
      int nd = jx_ndim(x);
      if (nd < 0 || nd > 4) return x;
      jx_t st[4] = {start_of(q, y, 0), start_of(q, y, 1), start_of(q, y, 2), start_of(q, y, 3)};
      int64_t sz[4];
      for (int d = 0; d < 4; d++) sz[d] = q->shape[d] < 0 ? 1 : q->shape[d];
      return jx_dynamic_slice(x, st, sz);
    }
  }
}

/* .at[] updates, take_along_axis, segment sums: indices from the bytes or from y */
static jx_t round2_index(const insn *q, jx_t x, jx_t y, jx_t z) {
  jx_t idx =
      q->sub & 16 ? jx_astype(y, JX_I32) : jx_array(JX_I32, 1, (int64_t[]){1 + q->sub / 32 % 4}, q->idx);
  switch (q->sub % 8) {
    case 0: return jx_at_add(x, idx, z, q->axis);
    case 1: return jx_at_set(x, idx, z, q->axis);
    case 2: return jx_at_mul(x, idx, z, q->axis);
    case 3: return jx_at_min(x, idx, z, q->axis);
    case 4: return jx_at_max(x, idx, z, q->axis);
    case 5: return jx_take_along_axis(x, idx, q->axis);
    case 6: return jx_segment_sum(x, idx, 1 + q->sub / 32 % 4);
    default: return jx_segment_max(x, idx, 1 + q->sub / 32 % 4);
  }
}

static jx_t round2_window(const insn *q, jx_t x) {
  int nd = jx_ndim(x);
  if (nd < 0 || nd > 4) return x;
  int64_t win[4], st[4], pad[8];
  for (int d = 0; d < 4; d++) {
    win[d] = q->shape[d]; /* -1 .. 5: sometimes invalid */
    st[d] = q->step[d] < 0 ? -q->step[d] : q->step[d];
    pad[2 * d] = q->idx[d] & 1, pad[2 * d + 1] = q->idx[d] >> 1 & 1;
  }
  static const char *const ops[] = {"sum", "max", "min"};
  const char *padding = q->sub & 8 ? "SAME" : "VALID";
  switch (q->sub % 5) {
    case 3: return jx_max_pool(x, nd > 1 ? nd - 1 : nd, win, st, padding);
    case 4: return jx_avg_pool(x, nd > 1 ? nd - 1 : nd, win, st, padding);
    default: return jx_reduce_window(x, ops[q->sub % 5], win, st, q->sub & 16 ? pad : NULL, NULL, NULL);
  }
}

/* a convolution of x by y as they are, or as 1-d signals (1, 1, n) */
static jx_t round2_conv(const insn *q, jx_t x, jx_t y) {
  jx_t l = x, r = y;
  if (q->sub & 1) {
    l = jx_reshape(x, 3, (int64_t[]){1, 1, -1});
    r = jx_reshape(y, 3, (int64_t[]){1, 1, -1});
  }
  const int64_t st[4] = {1 + (q->sub >> 1) % 2, 1, 1, 1};
  return jx_conv(l, r, st, q->sub & 4 ? "SAME" : "VALID");
}

static jx_t run_insn(const insn *q, jx_t *regs, int n) {
  jx_t x = reg(regs, n, q->a), y = reg(regs, n, q->b), z = reg(regs, n, q->c);
  int axes[2] = {q->axis, q->axis2};
  switch ((opkind)q->kind) {
    case OP_UNARY: return unary(q->sub, x);
    case OP_BINARY: return binary(q->sub, x, y);
    case OP_WHERE: return jx_where(q->sub & 1 ? jx_gt(x, jx_scalar(0)) : x, y, z);
    case OP_ASTYPE: return jx_astype(x, dtypes[q->sub % NDT]);
    case OP_REDUCE:
      switch (q->sub % 4) {
        case 0: return jx_sum(x);
        case 1: return jx_mean(x);
        case 2: return jx_max(x);
        default: return jx_min(x);
      }
    case OP_REDUCE_AXES: {
      int na = q->sub / 4 % 3;
      switch (q->sub % 4) {
        case 0: return jx_sum_axes(x, na, axes, q->keep);
        case 1: return jx_mean_axes(x, na, axes, q->keep);
        case 2: return jx_max_axes(x, na, axes, q->keep);
        default: return jx_min_axes(x, na, axes, q->keep);
      }
    }
    case OP_ARG: return q->sub & 1 ? jx_argmax(x, q->axis, q->keep) : jx_argmin(x, q->axis, q->keep);
    case OP_DOT: return q->sub & 1 ? jx_dot(x, y) : jx_matmul(x, y);
    case OP_RESHAPE: {
      if (q->sub & 1) { /* a valid shape most of the time: x's size split */
        int64_t s = jx_size(x);
        if (s < 0) return x;
        int64_t a = q->shape[0] > 0 && s % q->shape[0] == 0 ? q->shape[0] : 1;
        return jx_reshape(x, 2, (int64_t[]){a, -1});
      }
      return jx_reshape(x, q->nd, q->shape);
    }
    case OP_TRANSPOSE: {
      int nd = jx_ndim(x);
      if (nd < 0 || nd > 4 || q->sub & 1) return jx_transpose(x, NULL);
      int perm[4] = {0, 1, 2, 3};
      for (int i = nd - 1; i > 0; i--) { /* a permutation from the bytes, sometimes broken */
        int j = (q->idx[i % 4] + 6) % (i + 1);
        int t = perm[i];
        perm[i] = perm[j], perm[j] = t;
      }
      if (q->sub & 2) perm[0] = q->axis;
      return jx_transpose(x, perm);
    }
    case OP_BROADCAST: {
      int nd = jx_ndim(x);
      if (q->sub & 1 && nd >= 0 && nd < 4) { /* x's shape with leading dims */
        int64_t s[4];
        int lead = 1 + (q->sub >> 1) % (4 - nd);
        for (int i = 0; i < lead; i++) s[i] = q->shape[i] < 0 ? 2 : q->shape[i];
        for (int i = 0; i < nd; i++) s[lead + i] = jx_shape(x)[i];
        return jx_broadcast_to(x, lead + nd, s);
      }
      return jx_broadcast_to(x, q->nd, q->shape);
    }
    case OP_EXPAND: return jx_expand_dims(x, q->axis);
    case OP_SQUEEZE: return jx_squeeze(x, q->axis);
    case OP_SLICE: {
      int nd = jx_ndim(x);
      if (nd < 0 || nd > 4) return x;
      return jx_slice(x, q->shape, q->stop, q->sub & 1 ? q->step : NULL);
    }
    case OP_CONCAT: return jx_concatenate(2 + (q->sub & 1), (jx_t[]){x, y, z}, q->axis);
    case OP_STACK: return jx_stack(1 + q->sub % 3, (jx_t[]){x, y, z}, q->axis);
    case OP_TAKE: {
      jx_t idx = jx_array(JX_I32, 1, (int64_t[]){1 + q->sub % 4}, q->idx);
      return jx_take(x, q->sub & 4 ? jx_astype(y, JX_I32) : idx, q->axis);
    }
    case OP_ONE_HOT: return jx_one_hot(x, q->sub % 5);
    case OP_NN:
      switch (q->sub % 3) {
        case 0: return jx_logsumexp(x, q->axis);
        case 1: return jx_softmax(x, q->axis);
        default: return jx_log_softmax(x, q->axis);
      }
    case OP_CONST:
      switch (q->sub % 5) {
        case 0: return jx_scalar(q->v);
        case 1: return jx_scalar_int((int64_t)q->idx[0]);
        case 2: return jx_full(dtypes[q->sub / 5 % NDT], q->nd, q->shape, q->v);
        case 3: return jx_arange(dtypes[q->sub / 5 % NDT], q->idx[0], q->idx[1], q->step[0]);
        default: return q->sub & 8 ? jx_zeros_like(x) : jx_ones_like(x);
      }
    case OP_COND: {
      jx_fn *t = jx_fn_new(br_sin, 1, NULL), *f = jx_fn_new(br_sq, 1, NULL);
      jx_t pred = q->sub & 1 ? jx_gt(jx_sum(y), jx_scalar(0)) : y;
      jx_t r = jx_cond(pred, t, f, 1, &x);
      jx_fn_free(t), jx_fn_free(f);
      return r;
    }
    case OP_SCAN: { /* over x's leading axis, carry shaped like one row */
      jx_fn *s = jx_fn_new(scan_step, 2, NULL);
      jx_t init = q->sub & 1 ? jx_zeros_like(jx_sum_axes(x, 1, (int[]){0}, false)) : y;
      jx_t r = jx_scan(s, init, x);
      jx_fn_free(s);
      return q->sub & 2 ? jx_at(r, 1) : jx_at(r, 0);
    }
    case OP_FORI: {
      jx_fn *b = jx_fn_new(fori_body, 2, NULL);
      jx_t r = jx_fori_loop(q->idx[0], q->idx[1], b, x);
      jx_fn_free(b);
      return r;
    }
    case OP_RANDOM: {
      jx_t key = jx_random_fold_in(jx_random_key((uint64_t)q->sub), (uint32_t)q->idx[0]);
      int nd = q->nd > 2 ? 2 : q->nd;
      switch (q->sub % 4) {
        case 0: return jx_random_uniform(key, q->sub & 4 ? JX_F64 : JX_F32, nd, q->shape, -1, 1);
        case 1: return jx_random_normal(key, JX_F32, nd, q->shape);
        case 2: return jx_random_bits(key, nd, q->shape);
        default: return jx_random_permute(key, x, q->axis);
      }
    }
    case OP_SORT: return round2_sort(q, x, y);
    case OP_CUM: return round2_cum(q, x);
    case OP_DSLICE: return round2_dslice(q, x, y);
    case OP_INDEX: return round2_index(q, x, y, z);
    case OP_WINDOW: return round2_window(q, x);
    case OP_CONV: return round2_conv(q, x, y);
    case OP_BWHILE: {
      jx_fn *c = jx_fn_new(bw_cond, 1, (void *)&q->v), *b = jx_fn_new(bw_body, 1, NULL);
      jx_t r = jx_while_loop_bounded(c, b, x, (int64_t)((uint32_t)q->idx[0] % 64));
      jx_fn_free(c), jx_fn_free(b);
      return r;
    }
    default: return x;
  }
}

static jx_t program_body(const jx_t *args, void *u) {
  const program *P = u;
  jx_t regs[MAXREG];
  int n = P->nargs;
  for (int i = 0; i < n; i++) regs[i] = args[i];
  for (int k = 0; k < P->nop; k++) {
    jx_t r = run_insn(&P->op[k], regs, n);
    /* keep programs small and fast: an oversized value is dropped (the
     * same in eager and jit runs: sizes are static) */
    if (!r || too_big(r)) r = regs[n - 1];
    regs[n++] = r;
  }
  return regs[n - 1];
}

/* sum of every leaf as a float scalar: what grad wrappers differentiate */
static jx_t leaf_sum(jx_t x) {
  if (jx_is_tree(x)) {
    jx_t s = jx_scalar(0.0);
    for (int i = 0; i < jx_len(x); i++) s = jx_add(s, leaf_sum(jx_at(x, i)));
    return s;
  }
  jx_dtype d = jx_dtype_of(x);
  return jx_sum(d == JX_F32 || d == JX_F64 ? x : jx_astype(x, JX_F32));
}
static jx_t summed_body(const jx_t *args, void *u) { return leaf_sum(jx_call(u, args)); }

/* f's output cut to its first JACREV_OUT elements (a tree: its first
 * leaf), flattened: jacrev vmaps over a basis of the output's size, and a
 * 4096-element output times the program's backward pass took minutes
 * under ASan */
enum { JACREV_OUT = 16 };
static jx_t head_body(const jx_t *args, void *u) {
  jx_t y = jx_call(u, args);
  while (jx_ok(y) && jx_is_tree(y) && jx_len(y) > 0) y = jx_at(y, 0);
  if (!jx_ok(y) || jx_is_tree(y) || jx_size(y) <= JACREV_OUT) return y;
  return jx_slice(jx_reshape(y, JX_SHAPE(-1)), (int64_t[]){0}, (int64_t[]){JACREV_OUT}, NULL);
}

/* custom_jvp's rule: f's own jvp at the primals and tangents tuples */
static jx_t own_jvp(const jx_t *a, void *u) {
  jx_t p[MAXARG], t[MAXARG];
  int n = jx_len(a[0]);
  for (int i = 0; i < n && i < MAXARG; i++) p[i] = jx_at(a[0], i), t[i] = jx_at(a[1], i);
  return jx_jvp(u, p, t);
}

/* custom_vjp's fwd: (f(args), the args as residuals); bwd: f's vjp at them */
static jx_t own_fwd(const jx_t *a, void *u) { return JX_TUPLE(jx_call(u, a), jx_tuple(jx_fn_nargs(u), a)); }
static jx_t own_bwd(const jx_t *a, void *u) {
  jx_t p[MAXARG];
  int n = jx_len(a[0]);
  for (int i = 0; i < n && i < MAXARG; i++) p[i] = jx_at(a[0], i);
  jx_fn *vf = NULL;
  jx_t out = jx_vjp(u, p, &vf);
  jx_t r = jx_ok(out) && vf ? jx_call(vf, &a[1]) : out;
  if (vf) jx_fn_free(vf);
  return r;
}

/* the custom_jvp/custom_vjp of f with f's own rules (the rules' functions
 * go to made as well) */
static jx_fn *own_rules(jx_fn *f, wkind kind, jx_fn **made, int *nmade) {
  int n = jx_fn_nargs(f);
  if (n < 1) return jx_jit(f); /* an error function: passes its error on */
  if (kind == W_CUSTOM_JVP) {
    jx_fn *rule = jx_fn_new(own_jvp, 2, f);
    made[(*nmade)++] = rule;
    return jx_custom_jvp(f, rule);
  }
  jx_fn *fwd = jx_fn_new(own_fwd, n, f), *bwd = jx_fn_new(own_bwd, 2, f);
  made[(*nmade)++] = fwd, made[(*nmade)++] = bwd;
  return jx_custom_vjp(f, fwd, bwd);
}

/* The transformed function; *made collects what to free. */
static jx_fn *transform(const program *P, jx_fn **made, int *nmade) {
  jx_fn *f = jx_fn_new(program_body, P->nargs, (void *)P);
  made[(*nmade)++] = f;
  for (int k = 0; k < P->nwrap; k++) {
    const wrap *w = &P->w[k];
    jx_fn *g = NULL;
    switch (w->kind) {
      case W_JIT: g = jx_jit(f); break;
      case W_VMAP: g = jx_vmap(f, w->in_axes, 0); break;
      case W_VMAP_CHUNKED: g = jx_vmap_chunked(f, w->in_axes, 0, w->size - 1 + (w->argnum & 1)); break;
      case W_CHECKPOINT: g = jx_checkpoint(f, (jx_remat_policy)((unsigned)w->argnum % 4)); break;
      case W_CUSTOM_JVP:
      case W_CUSTOM_VJP: g = own_rules(f, w->kind, made, nmade); break;
      default: {
        jx_fn *s = jx_fn_new(summed_body, P->nargs, f);
        made[(*nmade)++] = s;
        if (w->kind == W_JACREV) {
          jx_fn *h = jx_fn_new(head_body, P->nargs, f);
          made[(*nmade)++] = h;
          g = jx_jacrev(h, w->argnum);
          break;
        }
        g = w->kind == W_GRAD             ? jx_grad(s, w->argnum)
            : w->kind == W_VALUE_AND_GRAD ? jx_value_and_grad(s, w->argnum)
                                          : jx_jacfwd(f, w->argnum);
      }
    }
    if (!g) return NULL;
    made[(*nmade)++] = g;
    f = g;
  }
  return f;
}

/* Inputs: the per-example shapes with each vmap's batch dim inserted,
 * innermost vmap first. */
static void make_args(const program *P, jx_t *args) {
  for (int i = 0; i < P->nargs; i++) {
    int nd = P->nd[i];
    int64_t s[JX_MAX_RANK];
    memcpy(s, P->shape[i], sizeof(int64_t) * (size_t)nd);
    for (int k = 0; k < P->nwrap; k++) {
      const wrap *w = &P->w[k];
      if ((w->kind != W_VMAP && w->kind != W_VMAP_CHUNKED) || w->in_axes[i] == JX_NONE || nd >= JX_MAX_RANK)
        continue;
      int pos = w->in_axes[i] < 0 ? nd + 1 + w->in_axes[i] : w->in_axes[i];
      if (pos < 0) pos = 0;
      if (pos > nd) pos = nd;
      memmove(s + pos + 1, s + pos, sizeof(int64_t) * (size_t)(nd - pos));
      s[pos] = w->size;
      nd++;
    }
    int64_t n = 1;
    for (int d = 0; d < nd; d++) n *= s[d];
    double v[MAXELEMS];
    if (n > MAXELEMS) n = 0, nd = 1, s[0] = 0;
    for (int64_t e = 0; e < n; e++) {
      unsigned b = P->seed[(e * 7 + i * 13) % 64] ^ (unsigned)(e * 31);
      v[e] = b % 64 == 0 ? (b & 64 ? NAN : INFINITY) : ((double)(b & 255) - 128) / 32;
    }
    args[i] = jx_astype(jx_array(JX_F64, nd, s, v), P->dt[i]);
  }
}

/* ------------------------------------------------------------- checking */
static void fail(const char *what, jx_t a, jx_t b) {
  fprintf(stderr, "fuzz_programs: %s\n  eager: ", what);
  if (jx_ok(a))
    jx_print(a);
  else
    fprintf(stderr, "error: %s\n", jx_error(a));
  fprintf(stderr, "  jit:   ");
  if (jx_ok(b))
    jx_print(b);
  else
    fprintf(stderr, "error: %s\n", jx_error(b));
  abort();
}

static bool close_enough(double a, double b, jx_dtype dt) {
  if (a == b || (isnan(a) && isnan(b))) return true;
  if (dt != JX_F32 && dt != JX_F64) return false;
  if (isinf(a) || isinf(b) || isnan(a) || isnan(b)) return false;
  double tol = dt == JX_F32 ? 2e-5 : 1e-12;
  return fabs(a - b) <= tol * (fabs(a) + fabs(b)) + tol;
}

/* export against jit: a bf16/f16 product sums in another order (both in
 * f32), so its one rounding to the 16-bit output may differ by an ulp */
static bool close_enough_export(double a, double b, jx_dtype dt) {
  if (dt != JX_BF16 && dt != JX_F16) return close_enough(a, b, dt);
  if (a == b || (isnan(a) && isnan(b))) return true;
  double ulp = dt == JX_BF16 ? 1.0 / 128 : 1.0 / 1024;
  return isfinite(a) && isfinite(b) && fabs(a - b) <= ulp * fmax(fabs(a), fabs(b)) + 1e-30;
}

static bool same(jx_t a, jx_t b) {
  if (jx_is_tree(a) || jx_is_tree(b)) {
    if (!jx_is_tree(a) || !jx_is_tree(b) || jx_len(a) != jx_len(b)) return false;
    for (int i = 0; i < jx_len(a); i++)
      if (!same(jx_at(a, i), jx_at(b, i))) return false;
    return true;
  }
  if (jx_dtype_of(a) != jx_dtype_of(b) || jx_ndim(a) != jx_ndim(b)) return false;
  for (int d = 0; d < jx_ndim(a); d++)
    if (jx_shape(a)[d] != jx_shape(b)[d]) return false;
  int64_t n = jx_size(a);
  static double x[1 << 20], y[1 << 20];
  if (n > (1 << 20)) return true;
  if (jx_read(a, JX_F64, x, sizeof(double) * (size_t)n) || jx_read(b, JX_F64, y, sizeof(double) * (size_t)n))
    return false;
  for (int64_t i = 0; i < n; i++)
    if (!close_enough(x[i], y[i], jx_dtype_of(a))) return false;
  return true;
}

/* the n values of a leaf of dtype dt from the export's output bytes at p
 * (packed, any alignment), through jx's conversions (every dtype) */
static bool values_at(const char *p, jx_dtype dt, int64_t n, double *v) {
  jx_pool_push();
  jx_t a = jx_array(dt, 1, &n, p);
  bool ok = jx_ok(a) && jx_read(a, JX_F64, v, sizeof(double) * (size_t)n) == 0;
  jx_pool_pop();
  return ok;
}

/* FUZZ_EXPORT=1: f exported, built strict, run standalone, compared with jit's result j */
static void check_export(jx_fn *f, int nargs, const jx_t *args, jx_t j) {
  char dir[] = "/tmp/jx-fuzz-export-XXXXXX", path[128];
  if (!jx_ok(j) || !mkdtemp(dir)) return;
  jx_t err = jx_export_c(f, args, "fz", dir);
  if (err && !strstr(jx_error(err), "no portable C rendering")) fail("export failed", err, j);
  if (!err) {
    size_t nout = 0;
    if (export_write_inputs(dir, "fz", jx_tuple(nargs, args)) ||
        run_cmd("cd %s && cc %s -O1 -o prog fz.c main.c -lm && ./prog in.bin out.bin", dir, EXPORT_STRICT))
      fail("the exported program did not build or run", j, j);
    snprintf(path, sizeof path, "%s/out.bin", dir);
    char *out = read_file(path, &nout);
    jx_t l = jx_tree_leaves(j);
    size_t at = 0;
    for (int i = 0; out && i < jx_len(l); i++) {
      jx_t x = jx_at(l, i);
      int64_t n = jx_size(x);
      static double y[1 << 16], g[1 << 16];
      if (n > (1 << 16) || jx_read(x, JX_F64, y, sizeof(double) * (size_t)n)) break;
      if (at + (size_t)n * jx_dtype_size(jx_dtype_of(x)) > nout || !values_at(out + at, jx_dtype_of(x), n, g))
        break;
      for (int64_t e = 0; e < n; e++)
        if (!close_enough_export(g[e], y[e], jx_dtype_of(x))) {
          fprintf(stderr, "fuzz_programs: leaf %d element %lld: export %.17g, jit %.17g\n", i, (long long)e,
                  g[e], y[e]);
          fail("export and jit differ", j, j);
        }
      at += (size_t)n * jx_dtype_size(jx_dtype_of(x));
    }
    if (!out || at != nout) fail("the exported program's outputs have the wrong size", j, j);
    free(out);
  }
  run_cmd("rm -rf %s", dir);
}

static void check_error_value(jx_t r) {
  if (jx_ok(r)) return;
  const char *m = jx_error(r);
  if (!m || !*m) {
    fprintf(stderr, "fuzz_programs: an error value without a message\n");
    abort();
  }
}

static bool export_mode;
static char cache_dir[64] = "/tmp/jx-fuzz-cache-XXXXXX";
static void remove_cache_dir(void) {
  DIR *d = opendir(cache_dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    char p[400];
    snprintf(p, sizeof p, "%s/%s", cache_dir, e->d_name);
    if (e->d_name[0] != '.') unlink(p);
  }
  if (d) closedir(d);
  rmdir(cache_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  if (!getenv("FUZZ_CC")) { /* interpreting is intended: not worth the once-per-process notice */
    setenv("JX_CC", "/nonexistent", 1);
    setenv("JX_LOG", "quiet", 0);
  }
  /* freed buffers of every size the programs make would pile up to the
   * default 1 GiB cache: keep the process small */
  setenv("JX_CACHE_BYTES", "16777216", 0);
  if (mkdtemp(cache_dir)) {
    setenv("JX_CACHE_DIR", cache_dir, 1);
    atexit(remove_cache_dir);
  }
  jx_set_num_threads(1);
  export_mode = getenv("FUZZ_EXPORT") && atoi(getenv("FUZZ_EXPORT")) > 0;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rd r = {data, size};
  static program P;
  decode(&r, &P);
  const char *verbose = getenv("FUZZ_VERBOSE");
  if (verbose && atoi(verbose) >= 2) print_program(&P);
  jx_pool_push();
  jx_fn *made[4 * MAXWRAP + 2];
  int nmade = 0;
  jx_fn *f = transform(&P, made, &nmade);
  jx_fn *jf = jx_jit(f);
  jx_t args[MAXARG];
  make_args(&P, args);
  jx_t e = jx_call(f, args), j = jx_call(jf, args);
  if (verbose) { /* what the inputs exercise */
    fprintf(stderr, "%d args, %d ops, %d wraps:", P.nargs, P.nop, P.nwrap);
    for (int k = 0; k < P.nwrap; k++) fprintf(stderr, " %d", P.w[k].kind);
    fprintf(stderr, " -> %s\n", jx_ok(e) ? "ok" : jx_error(e));
  }
  check_error_value(e);
  check_error_value(j);
  if (jx_ok(e) != jx_ok(j)) fail("one of eager and jit failed", e, j);
  if (jx_ok(e) && !same(e, j)) fail("eager and jit differ", e, j);
  jx_t j2 = jx_call(jf, args);
  if (jx_ok(j) != jx_ok(j2) || (jx_ok(j) && !same(j, j2))) fail("a second jit call differs", j, j2);
  if (export_mode && jx_fn_nargs(f) == P.nargs) check_export(f, P.nargs, args, j);
  jx_fn_free(jf);
  for (int i = nmade - 1; i >= 0; i--) jx_fn_free(made[i]);
  jx_pool_pop();
  return 0;
}
