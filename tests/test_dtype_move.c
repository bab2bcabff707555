/* #19's dtypes (bf16 f16 i8 u8 i16 u16 u64) through the data-movement
 * and indexing ops: gather/take/take_along_axis, the scatters (.at[]
 * updates), dynamic_slice/dynamic_update_slice; sort and argsort.
 *
 * - scatter combiners with repeated indices and sort/argsort with NaN,
 *   +-Inf, -0.0 and ties against golden data (tests/golden/
 *   gen_dtype_move.py: NumPy's f16, PyTorch's bf16);
 * - pure data movement against the same op on a wider dtype (bf16/f16
 *   widen to f32 and ints to i64 exactly, and back), with every integer
 *   index dtype, negative, out-of-range and huge u64 indices;
 * - jit equals eager bit for bit; grad (bf16/f16) and vmap (a batch of
 *   300 with u8 indices: the batching counter must not wrap);
 * - bad input (float indices) names the op and the dtype. */
#include "check.h"
#include "core/core.h"

#include <inttypes.h>
#include <stdint.h>

static const jx_dtype new_dts[7] = {JX_BF16, JX_F16, JX_I8, JX_U8, JX_I16, JX_U16, JX_U64};
static const jx_dtype idx_dts[7] = {JX_I8, JX_U8, JX_I16, JX_U16, JX_U64, JX_I32, JX_I64};

static bool same_bits(jx_t a, jx_t b) {
  if (!jx_ok(a) || !jx_ok(b) || jx_dtype_of(a) != jx_dtype_of(b) || jx_ndim(a) != jx_ndim(b)) return false;
  for (int d = 0; d < jx_ndim(a); d++)
    if (jx_shape(a)[d] != jx_shape(b)[d]) return false;
  return !memcmp(jx_data(a), jx_data(b), (size_t)jx_size(a) * jx_dtype_size(jx_dtype_of(a)));
}

/* the exact wider dtype of dt: bf16/f16 -> f32, ints -> i64 (u64 by its bits) */
static jx_dtype wide(jx_dtype dt) { return jx_dtype_is_float(dt) ? JX_F32 : JX_I64; }

/* ------------------------------------------------------------- golden */
enum { MAXG = 64, MAXV = 64 };
typedef struct {
  char kind[16], dt[8];
  int nx, nidx, nu, nout;
  int64_t x[MAXV], idx[MAXV], u[MAXV], out[MAXV];
} grow;
static grow gold[MAXG];
static int ngold;

static void read_ints(FILE *f, int n, int64_t *v) {
  for (int i = 0; i < n; i++)
    if (fscanf(f, "%" SCNd64, &v[i]) != 1) v[i] = 0;
}

static void load_golden(void) {
  FILE *f = fopen("golden/dtype_move_golden.txt", "r");
  CHECKF(f != NULL, "golden/dtype_move_golden.txt missing");
  if (!f) return;
  grow *g = &gold[0];
  while (ngold < MAXG &&
         fscanf(f, "%15s %7s %d %d %d %d", g->kind, g->dt, &g->nx, &g->nidx, &g->nu, &g->nout) == 6) {
    if (g->nx > MAXV || g->nidx > MAXV || g->nu > MAXV || g->nout > MAXV) break;
    read_ints(f, g->nx, g->x), read_ints(f, g->nidx, g->idx), read_ints(f, g->nu, g->u);
    read_ints(f, g->nout, g->out);
    g = &gold[++ngold];
  }
  fclose(f);
  CHECKF(ngold == 37, "%d golden cases read", ngold);
}

static jx_t half_of(jx_dtype dt, int n, const int64_t *bits) {
  uint16_t h[MAXV];
  for (int i = 0; i < n; i++) h[i] = (uint16_t)bits[i];
  return jx_array(dt, JX_SHAPE(n), h);
}

/* equal bits, or both NaN (the libraries' NaN payloads may differ) */
static bool half_eq(jx_dtype dt, uint16_t a, uint16_t b) {
  return a == b || (isnan(jx_half_widen(dt, a)) && isnan(jx_half_widen(dt, b)));
}

typedef jx_t (*at_fn)(jx_t, jx_t, jx_t, int);
static at_fn at_of(const char *kind) {
  return !strcmp(kind, "scatter_add")   ? jx_at_add
         : !strcmp(kind, "scatter_mul") ? jx_at_mul
         : !strcmp(kind, "scatter_min") ? jx_at_min
                                        : jx_at_max;
}
typedef struct {
  at_fn f;
} at_user;
static jx_t at_body(const jx_t *a, void *u) { return ((const at_user *)u)->f(a[0], a[1], a[2], 0); }

/* scatter-add/mul/min/max with repeated indices: each update computed in
 * f32 and rounded once, in index order (XLA:CPU, NumPy's ufunc.at,
 * PyTorch's index_add_/scatter_reduce_), with every index dtype */
static void check_scatter_golden(void) {
  int ran = 0;
  for (int c = 0; c < ngold; c++) {
    grow *g = &gold[c];
    if (strncmp(g->kind, "scatter_", 8)) continue;
    jx_pool_push();
    jx_dtype dt = !strcmp(g->dt, "bf16") ? JX_BF16 : JX_F16, it = idx_dts[c % 7];
    jx_t x = half_of(dt, g->nx, g->x), u = half_of(dt, g->nu, g->u);
    jx_t idx = jx_astype(jx_array(JX_I64, JX_SHAPE(g->nidx), g->idx), it);
    at_user au = {at_of(g->kind)};
    jx_t got = au.f(x, idx, u, 0);
    jx_t jit = jx_call(jx_jit(jx_fn_new(at_body, 3, &au)), (jx_t[]){x, idx, u});
    CHECKF(jx_ok(got) && jx_dtype_of(got) == dt, "%s %s: %s", g->kind, g->dt, jx_error(got));
    CHECKF(same_bits(got, jit), "%s %s (%s indices): jit differs from eager: %s", g->kind, g->dt,
           jx_dtype_name(it), jx_error(jit));
    if (jx_ok(got)) {
      const uint16_t *h = jx_data(got);
      int bad = -1;
      for (int i = 0; i < g->nout && bad < 0; i++)
        if (!half_eq(dt, h[i], (uint16_t)g->out[i])) bad = i;
      CHECKF(bad < 0, "%s %s case %d: element %d is 0x%04x, the library's 0x%04x", g->kind, g->dt, c, bad,
             bad < 0 ? 0 : h[bad], bad < 0 ? 0 : (unsigned)g->out[bad]);
    }
    ran++;
    jx_pool_pop();
  }
  CHECKF(ran == 16, "%d scatter golden cases", ran);
}

/* sort and argsort: NaN last, -0.0 and 0.0 equal (stable), ties stable */
static jx_t sort_body(const jx_t *a, void *u) {
  return *(const int *)u ? jx_argsort(a[0], 0) : jx_sort(a[0], 0);
}

static void check_sort_golden(void) {
  int ran = 0;
  for (int c = 0; c < ngold; c++) {
    grow *g = &gold[c];
    int arg = !strcmp(g->kind, "argsort");
    if (!arg && strcmp(g->kind, "sort")) continue;
    jx_pool_push();
    jx_dtype dt = !strcmp(g->dt, "bf16") ? JX_BF16 : JX_F16;
    jx_t x = half_of(dt, g->nx, g->x);
    jx_t got = jx_call(jx_fn_new(sort_body, 1, &arg), &x),
         jit = jx_call(jx_jit(jx_fn_new(sort_body, 1, &arg)), &x);
    CHECKF(jx_ok(got), "%s %s: %s", g->kind, g->dt, jx_error(got));
    CHECKF(same_bits(got, jit), "%s %s: jit differs from eager: %s", g->kind, g->dt, jx_error(jit));
    if (jx_ok(got)) {
      int bad = -1;
      for (int i = 0; i < g->nout && bad < 0; i++) {
        if (arg)
          bad = ((const int32_t *)jx_data(got))[i] == g->out[i] ? -1 : i;
        else
          bad = half_eq(dt, ((const uint16_t *)jx_data(got))[i], (uint16_t)g->out[i]) ? -1 : i;
      }
      CHECKF(bad < 0, "%s %s case %d: position %d differs from the library's", g->kind, g->dt, c, bad);
    }
    ran++;
    jx_pool_pop();
  }
  CHECKF(ran == 12, "%d sort golden cases", ran);
}

/* ------------------------------------------------------ data movement */
/* x of dtype dt, shape (5, 4): distinct values (ints: the type's
 * extremes too; u64: past 2^63) */
static jx_t data_of(jx_dtype dt) {
  int64_t v[20];
  for (int i = 0; i < 20; i++) v[i] = (i * 7919) % 97 - 40;
  jx_t x = jx_astype(jx_array(JX_I64, JX_SHAPE(5, 4), v), dt);
  if (dt == JX_U64) x = jx_add(x, jx_scalar_of(JX_U64, 0x1p63)); /* values past INT64_MAX */
  if (jx_dtype_is_float(dt)) x = jx_mul(x, jx_scalar_of(dt, 0.37));
  return x;
}

/* an index array of dtype it: in range, negative (signed: wrapped once)
 * and out of range (clamped) */
static jx_t idx_of(jx_dtype it, int n) {
  int64_t v[6] = {0, 4, 2, -1, 7, 3};
  if (jx_dtype_is_unsigned(it)) v[3] = 1;
  return jx_astype(jx_array(JX_I64, JX_SHAPE(n), v), it);
}

typedef struct {
  int op;
} mv_user;
enum { OP_TAKE, OP_TAKE_ALONG, OP_DSLICE, OP_DUS, OP_AT_SET, OP_AT_ADD, OP_AT_MIN, OP_AT_MAX, OP_SEG, N_OPS };
static const char *const op_names[N_OPS] = {
    "take",   "take_along_axis", "dynamic_slice", "dynamic_update_slice", "at_set",
    "at_add", "at_min",          "at_max",        "segment_sum"};

/* op(x, idx, u): x (5, 4); idx 1-d of 6 (take, .at[]) or its element 2 as
 * a start; u the updates, x's dtype */
static jx_t move_op(int op, jx_t x, jx_t idx, jx_t u) {
  jx_t s0 = jx_reshape(jx_slice(idx, (const int64_t[]){2}, (const int64_t[]){3}, NULL), 0, NULL);
  jx_t s1 = jx_reshape(jx_slice(idx, (const int64_t[]){5}, (const int64_t[]){6}, NULL), 0, NULL);
  jx_t u1 = jx_slice(u, (const int64_t[]){1, 0}, (const int64_t[]){2, 4}, NULL);
  jx_t u6 = jx_concatenate(2, (jx_t[]){u, u1}, 0); /* one (4,) row per index */
  switch (op) {
    case OP_TAKE: return jx_take(x, idx, 0);
    case OP_TAKE_ALONG: {
      jx_t i4 = jx_slice(idx, (const int64_t[]){0}, (const int64_t[]){4}, NULL);
      return jx_take_along_axis(x, jx_reshape(i4, JX_SHAPE(1, 4)), 0);
    }
    case OP_DSLICE: return jx_dynamic_slice(x, (jx_t[]){s0, s1}, (const int64_t[]){2, 3});
    case OP_DUS:
      return jx_dynamic_update_slice(x, jx_slice(u, (const int64_t[]){0, 0}, (const int64_t[]){2, 3}, NULL),
                                     (jx_t[]){s0, s1});
    case OP_AT_SET: return jx_at_set(x, idx, u6, 0);
    case OP_AT_ADD: return jx_at_add(x, idx, u6, 0);
    case OP_AT_MIN: return jx_at_min(x, idx, u6, 0);
    case OP_AT_MAX: return jx_at_max(x, idx, u6, 0);
    default: return jx_segment_sum(u6, idx, 5);
  }
}
static jx_t move_body(const jx_t *a, void *u) { return move_op(((const mv_user *)u)->op, a[0], a[1], a[2]); }

/* every new dtype, every index dtype, every op: equal to the op on the
 * wider dtype (exact both ways), jit equal to eager */
static void check_movement(void) {
  int ran = 0;
  for (int d = 0; d < 7; d++)
    for (int i = 0; i < 7; i++)
      for (int op = 0; op < N_OPS; op++) {
        jx_pool_push();
        jx_dtype dt = new_dts[d], it = idx_dts[i];
        /* u64 min/max: the i64 reference orders values past 2^63 differently */
        bool order = op == OP_AT_MIN || op == OP_AT_MAX;
        jx_t x = data_of(dt), idx = idx_of(it, 6), u = jx_neg(data_of(dt));
        if (order && dt == JX_U64) {
          jx_t v = data_of(JX_I64);
          x = jx_astype(jx_abs(v), JX_U64),
          u = jx_astype(jx_abs(jx_sub(v, jx_scalar_of(JX_I64, 20))), JX_U64);
        }
        jx_t got = move_op(op, x, idx, u);
        jx_t ref = jx_astype(
            move_op(op, jx_astype(x, wide(dt)), jx_astype(idx, JX_I64), jx_astype(u, wide(dt))), dt);
        mv_user mu = {op};
        jx_t jit = jx_call(jx_jit(jx_fn_new(move_body, 3, &mu)), (jx_t[]){x, idx, u});
        /* bf16/f16 adds round once per update: repeated indices (signed -1
         * wraps onto 4) differ from the f32 sum by design (golden above) */
        bool per_update = jx_dtype_is_half(dt) && (op == OP_AT_ADD || op == OP_SEG);
        CHECKF(per_update || same_bits(got, ref),
               "%s of %s with %s indices: differs from the wide reference (%s)", op_names[op],
               jx_dtype_name(dt), jx_dtype_name(it), jx_error(got));
        CHECKF(same_bits(got, jit), "%s of %s with %s indices: jit differs from eager (%s)", op_names[op],
               jx_dtype_name(dt), jx_dtype_name(it), jx_error(jit));
        ran++;
        jx_pool_pop();
      }
  CHECKF(ran == 7 * 7 * N_OPS, "%d movement cases", ran);
}

/* indices a wide reference cannot hold: u64 past INT64_MAX clamps to the
 * last row (JAX: unsigned indices are never wrapped); i8 -1 into 300 rows
 * wraps to row 299 (i8 + 300 must not wrap in i8) */
static void check_index_edges(void) {
  jx_pool_push();
  jx_t x = jx_arange(JX_I32, 0, 300, 1);
  uint64_t big[2] = {UINT64_MAX, 1ull << 63};
  jx_t t = jx_take(x, jx_array(JX_U64, JX_SHAPE(2), big), 0);
  CHECKF(jx_ok(t) && ((int32_t *)jx_data(t))[0] == 299 && ((int32_t *)jx_data(t))[1] == 299,
         "take at huge u64 indices: %s", jx_error(t));
  int8_t m1 = -1;
  jx_t w = jx_take(jx_arange(JX_I32, 0, 300, 1), jx_array(JX_I8, JX_SHAPE(1), &m1), 0);
  CHECKF(jx_ok(w) && ((int32_t *)jx_data(w))[0] == 299, "take at i8 -1 of 300: %s", jx_error(w));
  /* one_hot of narrow labels into more classes than their type counts */
  uint8_t lab[2] = {5, 255};
  int8_t neg = -1;
  jx_t oh = jx_one_hot(jx_array(JX_U8, JX_SHAPE(2), lab), 300),
       on = jx_one_hot(jx_array(JX_I8, JX_SHAPE(1), &neg), 300);
  CHECKF(jx_ok(oh) && jx_item(jx_sum(oh)) == 2 && ((float *)jx_data(oh))[5] == 1 &&
             ((float *)jx_data(oh))[300 + 255] == 1,
         "one_hot of u8 labels into 300 classes: %s", jx_error(oh));
  CHECKF(jx_ok(on) && jx_item(jx_sum(on)) == 0, "one_hot of i8 -1: %s", jx_error(on));
  jx_t s = jx_dynamic_slice(jx_arange(JX_I32, 0, 300, 1), (jx_t[]){jx_scalar_of(JX_U64, 0x1p64)},
                            (const int64_t[]){2});
  CHECKF(jx_ok(s) && ((int32_t *)jx_data(s))[0] == 298, "dynamic_slice at u64 max: %s", jx_error(s));
  jx_pool_pop();
}

/* ---------------------------------------------------- transformations */
static jx_t take_loss(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_mul(jx_take(a[0], a[1], 0), a[2]));
}
static jx_t ds_loss(const jx_t *a, void *u) {
  (void)u;
  jx_t s = jx_reshape(a[1], 0, NULL);
  return jx_sum(jx_mul(jx_dynamic_slice(a[0], (jx_t[]){s}, (const int64_t[]){3}), a[2]));
}

/* grad in bf16/f16: take's cotangent is an add-scatter of the weights
 * (rounded per update, in order), dynamic_slice's a padded copy; jit
 * equal to eager */
static void check_grad(void) {
  for (int k = 0; k < 2; k++) {
    jx_pool_push();
    jx_dtype dt = new_dts[k];
    double xv[6] = {0.5, -1.25, 3, 7.5, -0.1, 2}, wv[5] = {0.3, 1e-3, -2.7, 11, 0.01};
    uint8_t iv[5] = {1, 1, 4, 1, 0};
    jx_t x = jx_astype(jx_array(JX_F64, JX_SHAPE(6), xv), dt),
         w = jx_astype(jx_array(JX_F64, JX_SHAPE(5), wv), dt);
    jx_t idx = jx_array(JX_U8, JX_SHAPE(5), iv);
    jx_fn *g = jx_grad(jx_fn_new(take_loss, 3, NULL), 0);
    jx_t gx = jx_call(g, (jx_t[]){x, idx, w}), gj = jx_call(jx_jit(g), (jx_t[]){x, idx, w});
    jx_t want = jx_at_add(jx_zeros(dt, JX_SHAPE(6)), idx, w, 0);
    CHECKF(jx_ok(gx) && jx_dtype_of(gx) == dt && same_bits(gx, want), "%s: grad of take: %s",
           jx_dtype_name(dt), jx_error(gx));
    CHECKF(same_bits(gx, gj), "%s: jit(grad(take)) differs", jx_dtype_name(dt));
    /* 0.3 + 1e-3 + 11 rounded per update, not summed in f64 */
    float r = jx_half_widen(dt, jx_half_round(dt, jx_half_widen(dt, ((uint16_t *)jx_data(w))[0]) +
                                                      jx_half_widen(dt, ((uint16_t *)jx_data(w))[1])));
    r = jx_half_widen(dt, jx_half_round(dt, r + jx_half_widen(dt, ((uint16_t *)jx_data(w))[3])));
    CHECKF(jx_ok(gx) && jx_half_widen(dt, ((uint16_t *)jx_data(gx))[1]) == r, "%s: grad at a repeated index",
           jx_dtype_name(dt));
    jx_t st = jx_scalar_of(JX_I16, 2), w3 = jx_slice(w, (const int64_t[]){0}, (const int64_t[]){3}, NULL);
    jx_fn *gd = jx_grad(jx_fn_new(ds_loss, 3, NULL), 0);
    jx_t dx = jx_call(gd, (jx_t[]){x, st, w3}), dj = jx_call(jx_jit(gd), (jx_t[]){x, st, w3});
    jx_t dwant = jx_dynamic_update_slice(jx_zeros(dt, JX_SHAPE(6)), w3, (jx_t[]){st});
    CHECKF(same_bits(dx, dwant) && same_bits(dx, dj), "%s: grad of dynamic_slice: %s", jx_dtype_name(dt),
           jx_error(dx));
    jx_pool_pop();
  }
}

static jx_t take_row(const jx_t *a, void *u) { return (void)u, jx_take(a[0], a[1], 0); }
static jx_t ds_row(const jx_t *a, void *u) {
  return (void)u, jx_dynamic_slice(a[0], (jx_t[]){a[1]}, (const int64_t[]){2});
}

/* vmap over 300 examples with u8 indices (the batched gather prepends a
 * counter to each index vector: it must not wrap at 256) equals the loop */
static void check_vmap(void) {
  enum { B = 300 };
  for (int d = 0; d < 7; d++) {
    jx_pool_push();
    jx_dtype dt = new_dts[d];
    int64_t xv[B * 4];
    uint8_t iv[B * 2], sv[B];
    for (int i = 0; i < B * 4; i++) xv[i] = (i * 31) % 113;
    for (int i = 0; i < B * 2; i++) iv[i] = (uint8_t)((i * 7) % 5); /* 4: out of range, clamped */
    for (int i = 0; i < B; i++) sv[i] = (uint8_t)(i % 4);
    jx_t x = jx_astype(jx_array(JX_I64, JX_SHAPE(B, 4), xv), dt);
    jx_t idx = jx_array(JX_U8, JX_SHAPE(B, 2), iv), st = jx_array(JX_U8, JX_SHAPE(B), sv);
    jx_fn *vt = jx_vmap(jx_fn_new(take_row, 2, NULL), (const int[]){0, 0}, 0);
    jx_fn *vd = jx_vmap(jx_fn_new(ds_row, 2, NULL), (const int[]){0, 0}, 0);
    jx_t gt = jx_call(vt, (jx_t[]){x, idx}), gd = jx_call(vd, (jx_t[]){x, st});
    CHECKF(same_bits(gt, jx_call(jx_jit(vt), (jx_t[]){x, idx})), "%s: jit(vmap(take))", jx_dtype_name(dt));
    CHECKF(same_bits(gd, jx_call(jx_jit(vd), (jx_t[]){x, st})), "%s: jit(vmap(dynamic_slice))",
           jx_dtype_name(dt));
    int bad = -1;
    size_t es = jx_dtype_size(dt);
    for (int b = 0; b < B && bad < 0 && jx_ok(gt) && jx_ok(gd); b++) {
      const char *xb = (const char *)jx_data(x) + (size_t)b * 4 * es;
      for (int j = 0; j < 2; j++) {
        int r = iv[b * 2 + j] > 3 ? 3 : iv[b * 2 + j], s = sv[b] > 2 ? 2 : sv[b];
        if (memcmp((const char *)jx_data(gt) + (size_t)(b * 2 + j) * es, xb + (size_t)r * es, es) ||
            memcmp((const char *)jx_data(gd) + (size_t)(b * 2 + j) * es, xb + (size_t)(s + j) * es, es))
          bad = b;
      }
    }
    CHECKF(jx_ok(gt) && jx_ok(gd) && bad < 0,
           "%s: vmap of take/dynamic_slice differs from the loop at %d (%s)", jx_dtype_name(dt), bad,
           jx_error(jx_ok(gt) ? gd : gt));
    jx_pool_pop();
  }
}

/* ------------------------------------------------------------- sorting */
enum { S_SORT, S_ARGSORT, S_MULTI, S_TOPK, S_SORT0, N_SORT };
static const char *const sort_names[N_SORT] = {"sort", "argsort", "sort_multi", "top_k", "sort axis 0"};
/* x (5, 8) with ties; key x, payload u (u8) for sort_multi */
static jx_t sort_op(int op, jx_t x, jx_t pay) {
  switch (op) {
    case S_SORT: return jx_sort(x, 1);
    case S_ARGSORT: return jx_argsort(x, 1);
    case S_MULTI: return jx_sort_multi(2, (jx_t[]){x, pay}, 1, 1);
    case S_TOPK: return jx_top_k(x, 3);
    default: return jx_sort(x, 0);
  }
}
static jx_t sort_op_body(const jx_t *a, void *u) { return sort_op(*(const int *)u, a[0], a[1]); }

/* the leaves of two results bit-equal */
static bool same_tree(jx_t a, jx_t b) {
  jx_t la = jx_tree_leaves(a), lb = jx_tree_leaves(b);
  if (!jx_ok(la) || !jx_ok(lb) || jx_len(la) != jx_len(lb)) return false;
  for (int i = 0; i < jx_len(la); i++)
    if (!same_bits(jx_at(la, i), jx_at(lb, i))) return false;
  return true;
}
static jx_t cast_tree(jx_t t, jx_dtype from, jx_dtype to) {
  jx_t l = jx_tree_leaves(t);
  if (!jx_ok(l)) return l;
  jx_t v[4];
  for (int i = 0; i < jx_len(l) && i < 4; i++) {
    jx_t x = jx_at(l, i);
    v[i] = jx_dtype_of(x) == from ? jx_astype(x, to) : x;
  }
  return jx_len(l) == 1 ? v[0] : jx_tuple(jx_len(l), v);
}

/* ints sort by value, bf16/f16 as their f32 values: equal to the sort of
 * the wider dtype (u64: values below 2^63, where i64 orders them alike);
 * jit equal to eager; vmap equal to the loop */
static void check_sort_all(void) {
  int ran = 0;
  for (int d = 0; d < 7; d++)
    for (int op = 0; op < N_SORT; op++) {
      jx_pool_push();
      jx_dtype dt = new_dts[d];
      int64_t v[40];
      uint8_t pv[40];
      for (int i = 0; i < 40; i++) v[i] = (i * 37) % 23 - 11, pv[i] = (uint8_t)(i * 5);
      jx_t x = jx_astype(jx_array(JX_I64, JX_SHAPE(5, 8), v), dt), pay = jx_array(JX_U8, JX_SHAPE(5, 8), pv);
      if (dt == JX_U64) x = jx_astype(jx_add(jx_array(JX_I64, JX_SHAPE(5, 8), v), jx_scalar_int(11)), dt);
      if (jx_dtype_is_half(dt)) x = jx_mul(x, jx_scalar_of(dt, -0.3));
      jx_t got = sort_op(op, x, pay);
      jx_t ref = cast_tree(sort_op(op, jx_astype(x, wide(dt)), pay), wide(dt), dt);
      jx_t jit = jx_call(jx_jit(jx_fn_new(sort_op_body, 2, &op)), (jx_t[]){x, pay});
      CHECKF(same_tree(got, ref), "%s of %s: differs from the wide reference (%s)", sort_names[op],
             jx_dtype_name(dt), jx_error(got));
      CHECKF(same_tree(got, jit), "%s of %s: jit differs (%s)", sort_names[op], jx_dtype_name(dt),
             jx_error(jit));
      if (op == S_SORT || op == S_ARGSORT) { /* vmap over the rows equals the per-row op */
        int op0 = op == S_SORT ? S_SORT0 : -1;
        if (op0 > 0) {
          jx_fn *vf = jx_vmap(jx_fn_new(sort_op_body, 2, &op0), (const int[]){0, 0}, 0);
          jx_t vg = jx_call(vf, (jx_t[]){x, pay});
          CHECKF(same_bits(vg, got), "vmap(sort) of %s: %s", jx_dtype_name(dt), jx_error(vg));
        }
      }
      ran++;
      jx_pool_pop();
    }
  CHECKF(ran == 7 * N_SORT, "%d sort cases", ran);
}

static jx_t sort_loss(const jx_t *a, void *u) { return (void)u, jx_sum(jx_mul(jx_sort(a[0], 0), a[1])); }

/* grad of sort in bf16/f16: the weights sent back through the sorting
 * permutation (exact: a permutation), jit equal */
static void check_sort_grad(void) {
  for (int k = 0; k < 2; k++) {
    jx_pool_push();
    jx_dtype dt = new_dts[k];
    double xv[7] = {0.5, -1.25, NAN, 0.5, -0.0, 0.0, 3}, wv[7] = {1, 2, 3, 4, 5, 6, 7};
    jx_t x = jx_astype(jx_array(JX_F64, JX_SHAPE(7), xv), dt),
         w = jx_astype(jx_array(JX_F64, JX_SHAPE(7), wv), dt);
    jx_fn *g = jx_grad(jx_fn_new(sort_loss, 2, NULL), 0);
    jx_t gx = jx_call(g, (jx_t[]){x, w}), gj = jx_call(jx_jit(g), (jx_t[]){x, w});
    jx_t want = jx_at_set(jx_zeros(dt, JX_SHAPE(7)), jx_argsort(x, 0), w, 0);
    CHECKF(jx_dtype_of(gx) == dt && same_bits(gx, want), "%s: grad of sort: %s", jx_dtype_name(dt),
           jx_error(gx));
    CHECKF(same_bits(gx, gj), "%s: jit(grad(sort))", jx_dtype_name(dt));
    jx_pool_pop();
  }
}

/* ---------------------------------------------------------- cumulative */
enum { C_SUM, C_PROD, C_MAX, C_MIN, C_LSE, C_SUM_REV, N_CUM };
static const char *const cum_names[N_CUM] = {"cumsum", "cumprod",      "cummax",
                                             "cummin", "logcumsumexp", "cumsum"};
static jx_t cum_op(int op, jx_t x, int axis) {
  switch (op) {
    case C_SUM: return jx_cumsum(x, axis);
    case C_PROD: return jx_cumprod(x, axis, false);
    case C_MAX: return jx_cummax(x, axis, true);
    case C_MIN: return jx_cummin(x, axis, false);
    case C_LSE: return jx_cumlogsumexp(x, axis, false);
    default: return jx_cumsum_ex(x, axis, true);
  }
}
static jx_t cum_body(const jx_t *a, void *u) { return cum_op(*(const int *)u, a[0], 0); }

/* bf16/f16: an f32 running value, each output rounded once: against
 * PyTorch (bf16) and NumPy in f32 (f16) */
static void check_cum_golden(void) {
  int ran = 0;
  for (int c = 0; c < ngold; c++) {
    grow *g = &gold[c];
    int op = -1;
    for (int k = 0; k < C_SUM_REV; k++)
      if (!strcmp(g->kind, cum_names[k])) op = k;
    if (op < 0) continue;
    jx_pool_push();
    jx_dtype dt = !strcmp(g->dt, "bf16") ? JX_BF16 : JX_F16;
    jx_t x = half_of(dt, g->nx, g->x);
    jx_t got = jx_call(jx_fn_new(cum_body, 1, &op), &x),
         jit = jx_call(jx_jit(jx_fn_new(cum_body, 1, &op)), &x);
    CHECKF(jx_ok(got) && jx_dtype_of(got) == dt, "%s %s: %s", g->kind, g->dt, jx_error(got));
    CHECKF(same_bits(got, jit), "%s %s: jit differs from eager: %s", g->kind, g->dt, jx_error(jit));
    if (jx_ok(got)) {
      jx_t fw = op == C_MAX ? jx_cummax(x, 0, false) : got;
      int bad = -1;
      for (int i = 0; i < g->nout && bad < 0 && jx_ok(fw); i++)
        if (!half_eq(dt, ((const uint16_t *)jx_data(fw))[i], (uint16_t)g->out[i])) bad = i;
      CHECKF(jx_ok(fw) && bad < 0, "%s %s: element %d differs from the library's", g->kind, g->dt, bad);
    }
    ran++;
    jx_pool_pop();
  }
  CHECKF(ran == 9, "%d cumulative golden cases", ran);
}

/* every new dtype: equal to the scan of the wider dtype, rounded (bf16/
 * f16: the f32 kernel is the same sequential f32 chain; ints wrap as i64
 * does modulo 2^k); jit bitwise; vmap equal to the op on each row; grad
 * of cumsum in bf16/f16 is the reversed cumsum of the weights */
static void check_cum_all(void) {
  int ran = 0;
  for (int d = 0; d < 7; d++)
    for (int op = 0; op < N_CUM; op++) {
      jx_dtype dt = new_dts[d];
      if (op == C_LSE && !jx_dtype_is_half(dt)) continue; /* (ints go to the default float) */
      jx_pool_push();
      int64_t v[24];
      for (int i = 0; i < 24; i++) v[i] = (i * 29) % 17 - 8;
      jx_t x = jx_astype(jx_array(JX_I64, JX_SHAPE(6, 4), v), dt);
      if (jx_dtype_is_half(dt)) x = jx_mul(x, jx_scalar_of(dt, op == C_PROD ? 0.13 : 0.7));
      bool order = op == C_MAX || op == C_MIN;
      if (order && dt == JX_U64) x = jx_astype(jx_abs(jx_array(JX_I64, JX_SHAPE(6, 4), v)), dt);
      jx_t got = cum_op(op, x, 0), ref = jx_astype(cum_op(op, jx_astype(x, wide(dt)), 0), dt);
      jx_t jit = jx_call(jx_jit(jx_fn_new(cum_body, 1, &op)), &x);
      CHECKF(jx_ok(got) && jx_dtype_of(got) == dt, "%s of %s: %s", cum_names[op], jx_dtype_name(dt),
             jx_error(got));
      CHECKF(same_bits(got, ref), "%s of %s: differs from the wide reference", cum_names[op],
             jx_dtype_name(dt));
      CHECKF(same_bits(got, jit), "%s of %s: jit differs (%s)", cum_names[op], jx_dtype_name(dt),
             jx_error(jit));
      jx_fn *vf =
          jx_vmap(jx_fn_new(cum_body, 1, &op), (const int[]){1}, 1); /* columns: the scan along rows */
      CHECKF(same_bits(jx_call(vf, &x), got), "vmap(%s) of %s", cum_names[op], jx_dtype_name(dt));
      ran++;
      jx_pool_pop();
    }
  CHECKF(ran == 2 * N_CUM + 5 * (N_CUM - 1), "%d cumulative cases", ran);
}

static jx_t cum_loss(const jx_t *a, void *u) { return (void)u, jx_sum(jx_mul(jx_cumsum(a[0], 0), a[1])); }

static void check_cum_grad(void) {
  for (int k = 0; k < 2; k++) {
    jx_pool_push();
    jx_dtype dt = new_dts[k];
    double xv[9] = {0.5, -1.25, 3, 7.5, -0.1, 2, 1e-3, 100, -3},
           wv[9] = {0.3, 1e-3, -2.7, 11, 0.01, 1, 2, 3, 4};
    jx_t x = jx_astype(jx_array(JX_F64, JX_SHAPE(9), xv), dt),
         w = jx_astype(jx_array(JX_F64, JX_SHAPE(9), wv), dt);
    jx_fn *g = jx_grad(jx_fn_new(cum_loss, 2, NULL), 0);
    jx_t gx = jx_call(g, (jx_t[]){x, w}), gj = jx_call(jx_jit(g), (jx_t[]){x, w});
    CHECKF(jx_dtype_of(gx) == dt && same_bits(gx, jx_cumsum_ex(w, 0, true)), "%s: grad of cumsum: %s",
           jx_dtype_name(dt), jx_error(gx));
    CHECKF(same_bits(gx, gj), "%s: jit(grad(cumsum))", jx_dtype_name(dt));
    jx_pool_pop();
  }
}

/* ------------------------------------------------------------- windows */
enum { W_SUM, W_MAX, W_MIN, W_POOL, W_AVG, N_WIN };
static const char *const win_names[N_WIN] = {"reduce_window sum", "reduce_window max", "reduce_window min",
                                             "max_pool", "avg_pool"};
static jx_t win_op(int op, jx_t x) { /* x (2, 7, 6, 3): NHWC */
  const int64_t w4[4] = {1, 3, 2, 1}, s4[4] = {1, 2, 1, 1}, pad[8] = {0, 0, 1, 1, 0, 1, 0, 0};
  switch (op) {
    case W_SUM: return jx_reduce_window(x, "sum", w4, s4, pad, NULL, NULL);
    case W_MAX: return jx_reduce_window(x, "max", w4, s4, pad, NULL, (const int64_t[]){1, 2, 1, 1});
    case W_MIN: return jx_reduce_window(x, "min", w4, NULL, NULL, (const int64_t[]){1, 2, 1, 1}, NULL);
    case W_POOL: return jx_max_pool(x, 2, (const int64_t[]){2, 2}, (const int64_t[]){2, 1}, "SAME");
    default: return jx_avg_pool(x, 2, (const int64_t[]){3, 3}, NULL, "VALID");
  }
}
static jx_t win_body(const jx_t *a, void *u) { return win_op(*(const int *)u, a[0]); }
static jx_t pool_loss(const jx_t *a, void *u) {
  return (void)u, jx_sum(jx_mul(
                      jx_max_pool(a[0], 2, (const int64_t[]){2, 2}, (const int64_t[]){2, 2}, "VALID"), a[1]));
}

/* bf16/f16 windows: the f32 kernel on the widened values, each output
 * rounded once (so: equal to the f32 op, rounded); NaN in a max window
 * wins; ints on their own type; jit bitwise; max_pool's gradient (select
 * and scatter, adds in f32) equals the f32 gradient rounded */
static void check_windows(void) {
  int ran = 0;
  for (int d = 0; d < 7; d++)
    for (int op = 0; op < N_WIN; op++) {
      jx_dtype dt = new_dts[d];
      if (op == W_AVG && !jx_dtype_is_half(dt)) continue; /* (avg of ints: a float) */
      jx_pool_push();
      int64_t v[252];
      for (int i = 0; i < 252; i++) v[i] = (i * 41) % 37 - 18;
      jx_t x = jx_astype(jx_array(JX_I64, JX_SHAPE(2, 7, 6, 3), v), dt);
      if (jx_dtype_is_half(dt)) {
        x = jx_mul(x, jx_scalar_of(dt, 0.173));
        x = jx_where(jx_eq(jx_astype(jx_array(JX_I64, JX_SHAPE(2, 7, 6, 3), v), JX_I32), jx_scalar_int(5)),
                     jx_scalar_of(dt, NAN), x);
      }
      if (dt == JX_U64 && op != W_SUM) x = jx_astype(jx_abs(jx_array(JX_I64, JX_SHAPE(2, 7, 6, 3), v)), dt);
      jx_t got = win_op(op, x), ref = jx_astype(win_op(op, jx_astype(x, wide(dt))), dt);
      if (op == W_AVG) /* jnp: the window sum (rounded once), then a division in the type */
        ref = jx_div(jx_astype(jx_reduce_window(jx_astype(x, JX_F32), "sum", (const int64_t[]){1, 3, 3, 1},
                                                NULL, NULL, NULL, NULL),
                               dt),
                     jx_scalar_of(dt, 9));
      jx_t jit = jx_call(jx_jit(jx_fn_new(win_body, 1, &op)), &x);
      CHECKF(jx_ok(got) && jx_dtype_of(got) == dt, "%s of %s: %s", win_names[op], jx_dtype_name(dt),
             jx_error(got));
      CHECKF(same_bits(got, ref), "%s of %s: differs from the wide reference", win_names[op],
             jx_dtype_name(dt));
      CHECKF(same_bits(got, jit), "%s of %s: jit differs (%s)", win_names[op], jx_dtype_name(dt),
             jx_error(jit));
      ran++;
      jx_pool_pop();
    }
  CHECKF(ran == 7 * (N_WIN - 1) + 2, "%d window cases", ran);
  for (int k = 0; k < 2; k++) {
    jx_pool_push();
    jx_dtype dt = new_dts[k];
    int64_t v[96], wv[24];
    for (int i = 0; i < 96; i++) v[i] = (i * 13) % 11 - 5; /* ties: the first maximum takes it */
    for (int i = 0; i < 24; i++) wv[i] = i % 7 - 3;
    jx_t x = jx_mul(jx_astype(jx_array(JX_I64, JX_SHAPE(2, 4, 4, 3), v), dt), jx_scalar_of(dt, 0.3));
    jx_t w = jx_mul(jx_astype(jx_array(JX_I64, JX_SHAPE(2, 2, 2, 3), wv), dt), jx_scalar_of(dt, 1.7));
    jx_fn *g = jx_grad(jx_fn_new(pool_loss, 2, NULL), 0);
    jx_t gx = jx_call(g, (jx_t[]){x, w}), gj = jx_call(jx_jit(g), (jx_t[]){x, w});
    jx_t g32 = jx_astype(jx_call(g, (jx_t[]){jx_astype(x, JX_F32), jx_astype(w, JX_F32)}), dt);
    CHECKF(jx_dtype_of(gx) == dt && same_bits(gx, g32), "%s: grad of max_pool: %s", jx_dtype_name(dt),
           jx_error(gx));
    CHECKF(same_bits(gx, gj), "%s: jit(grad(max_pool))", jx_dtype_name(dt));
    jx_fn *vf = jx_vmap(jx_fn_new(win_body, 1, &(int){W_POOL}), (const int[]){0}, 0);
    jx_t x5 = jx_reshape(x, JX_SHAPE(2, 1, 4, 4, 3));
    CHECKF(same_bits(jx_reshape(jx_call(vf, &x5), JX_SHAPE(2, 2, 4, 3)), win_op(W_POOL, x)),
           "%s: vmap(max_pool)", jx_dtype_name(dt));
    jx_pool_pop();
  }
}

/* ------------------------------------------------------------ bad input */
static void check_bad_input(void) {
  jx_pool_push();
  jx_t x = jx_zeros(JX_BF16, JX_SHAPE(4)), fi = jx_zeros(JX_BF16, JX_SHAPE(2));
  EXPECT_ERROR(jx_take(x, fi, 0), "take", "bf16");
  EXPECT_ERROR(jx_at_add(x, jx_zeros(JX_F16, JX_SHAPE(2)), jx_zeros(JX_BF16, JX_SHAPE(2)), 0), "at_add",
               "f16");
  EXPECT_ERROR(jx_dynamic_slice(x, (jx_t[]){jx_scalar_of(JX_F16, 1)}, (const int64_t[]){2}), "dynamic_slice",
               "f16");
  EXPECT_ERROR(jx_take_along_axis(x, fi, 0), "take_along_axis", "bf16");
  jx_pool_pop();
}

int main(void) {
  check_private_cache("dtype_move");
  load_golden();
  check_scatter_golden();
  check_movement();
  check_index_edges();
  check_grad();
  check_vmap();
  check_bad_input();
  check_sort_golden();
  check_sort_all();
  check_sort_grad();
  check_cum_golden();
  check_cum_all();
  check_cum_grad();
  check_windows();
  check_private_cache_remove();
  return check_report("test_dtype_move");
}
