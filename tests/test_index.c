/* Indexing: dynamic slices (clamping, negative starts, a KV-cache update
 * loop under scan, jit, grad and vmap), gather/scatter with dimension
 * numbers, the .at[] updates, take_along_axis, segments, pad, and the
 * errors of bad indices, shapes and dimension numbers. Golden values from
 * NumPy/PyTorch are in test_index_golden.c. */
#include "check.h"
#include "compile/compile.h"

#include <jx.h>

static jx_t arange2(jx_dtype dt, int64_t r, int64_t c) {
  return jx_reshape(jx_arange(dt, 0, (double)(r * c), 1), 2, (int64_t[]){r, c});
}
static jx_t i32(int64_t v) { return jx_scalar_of(JX_I32, (double)v); }

/* x (any dtype) equals the n doubles want */
static void expect_vals(int line, jx_t x, int n, const double *want) {
  double got[256];
  CHECKF(jx_ok(x), "line %d: %s", line, jx_error(x));
  if (!jx_ok(x)) return;
  CHECKF(jx_size(x) == n, "line %d: size %lld, want %d", line, (long long)jx_size(x), n);
  if (jx_size(x) != n || n > 256) return;
  jx_read(x, JX_F64, got, sizeof(double) * (size_t)n);
  for (int i = 0; i < n; i++)
    CHECKF(check_close(got[i], want[i], 1e-6, 1e-6), "line %d: [%d] = %g, want %g", line, i, got[i], want[i]);
}
#define EXPECT_VALS(x, ...)                                                                                  \
  expect_vals(__LINE__, (x), (int)(sizeof((double[]){__VA_ARGS__}) / sizeof(double)), (double[]){__VA_ARGS__})

static double max_diff(jx_t a, jx_t b) {
  return jx_item(jx_max(jx_abs(jx_sub(jx_astype(a, JX_F64), jx_astype(b, JX_F64)))));
}

/* ---------------------------------------------------------- dynamic slices */
static void test_dynamic_slice(void) {
  jx_pool_push();
  jx_t x = arange2(JX_F32, 5, 6);
  /* column start 4 with size 3 clamps to 3 (JAX); rows 1..3 */
  EXPECT_VALS(jx_dynamic_slice(x, (jx_t[]){i32(1), i32(4)}, (int64_t[]){3, 3}), 9, 10, 11, 15, 16, 17, 21, 22,
              23);
  /* negative starts count from the end once: -2 -> 3; -9 -> -3 -> clamped 0 */
  EXPECT_VALS(jx_dynamic_slice(x, (jx_t[]){i32(-2), i32(-9)}, (int64_t[]){2, 2}), 18, 19, 24, 25);
  EXPECT_VALS(jx_dynamic_slice(x, (jx_t[]){jx_scalar_int(7), jx_scalar_of(JX_I64, 1e12)}, (int64_t[]){1, 1}),
              29);
  EXPECT_VALS(jx_dynamic_slice_in_dim(x, i32(2), 2, 1), 2, 3, 8, 9, 14, 15, 20, 21, 26, 27);
  jx_t row = jx_dynamic_index_in_dim(x, jx_scalar_of(JX_U32, 4), 0, false);
  CHECK(jx_ndim(row) == 1);
  EXPECT_VALS(row, 24, 25, 26, 27, 28, 29);
  /* empty slice, 0-d operand */
  CHECK(jx_size(jx_dynamic_slice(x, (jx_t[]){i32(5), i32(2)}, (int64_t[]){0, 3})) == 0);
  EXPECT_VALS(jx_dynamic_slice(jx_scalar_of(JX_F64, 4), NULL, NULL), 4);

  jx_t z = jx_zeros(JX_F32, JX_SHAPE(3, 4));
  jx_t u = jx_ones(JX_F32, JX_SHAPE(2, 2));
  /* row start 2 clamps to 1; column -1 -> 3 -> clamps to 2 */
  EXPECT_VALS(jx_dynamic_update_slice(z, u, (jx_t[]){i32(2), i32(-1)}), 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1);
  EXPECT_VALS(jx_dynamic_update_slice_in_dim(z, jx_full(JX_F32, JX_SHAPE(3, 1), 7), i32(1), 1), 0, 7, 0, 0, 0,
              7, 0, 0, 0, 7, 0, 0);
  jx_pool_pop();
}

static void test_dynamic_slice_errors(void) {
  jx_pool_push();
  jx_t x = jx_zeros(JX_F32, JX_SHAPE(5, 6));
  EXPECT_ERROR(jx_dynamic_slice(x, (jx_t[]){i32(0), i32(0)}, (int64_t[]){6, 1}), "dynamic_slice", "f32[5,6]",
               "slice size 6");
  EXPECT_ERROR(jx_dynamic_slice(x, (jx_t[]){i32(0), jx_scalar(1.0)}, (int64_t[]){1, 1}), "dynamic_slice",
               "start index 1", "integer");
  EXPECT_ERROR(jx_dynamic_slice(x, (jx_t[]){i32(0), jx_zeros(JX_I32, JX_SHAPE(2))}, (int64_t[]){1, 1}),
               "dynamic_slice", "i32[2]", "0-d");
  EXPECT_ERROR(jx_dynamic_slice(x, NULL, (int64_t[]){1, 1}), "dynamic_slice", "NULL");
  EXPECT_ERROR(jx_dynamic_slice(x, (jx_t[]){i32(0), i32(0)}, NULL), "dynamic_slice", "NULL");
  EXPECT_ERROR(jx_dynamic_update_slice(x, jx_zeros(JX_F32, JX_SHAPE(6, 1)), (jx_t[]){i32(0), i32(0)}),
               "dynamic_update_slice", "f32[6,1]", "larger");
  EXPECT_ERROR(jx_dynamic_update_slice(x, jx_zeros(JX_F64, JX_SHAPE(1, 1)), (jx_t[]){i32(0), i32(0)}),
               "dynamic_update_slice", "f64[1,1]", "dtype");
  EXPECT_ERROR(jx_dynamic_update_slice(x, jx_zeros(JX_F32, JX_SHAPE(1)), (jx_t[]){i32(0), i32(0)}),
               "dynamic_update_slice", "rank");
  EXPECT_ERROR(jx_dynamic_slice_in_dim(x, i32(0), 1, 2), "dynamic_slice_in_dim", "axis 2");
  jx_pool_pop();
}

/* ------------------------------------------------- a KV cache under scan */
/* carry (cache [T, D], t); x [D]: write x at row t, read row t back */
static jx_t kv_step(const jx_t *a, void *u) {
  jx_t w = u;
  jx_t cache = jx_at(a[0], 0), t = jx_at(a[0], 1), x = a[1];
  cache = jx_dynamic_update_slice_in_dim(cache, jx_expand_dims(x, 0), t, 0);
  jx_t row = jx_dynamic_index_in_dim(cache, t, 0, false);
  jx_t y = jx_sum(jx_mul(row, w));
  return JX_TUPLE(JX_TUPLE(cache, jx_add(t, jx_scalar_int(1))), y);
}
/* loss(xs) = sum(ys) + sum(final cache * 2): the cache ends equal to xs,
 * so the gradient is w + 2 on every row */
static jx_t kv_loss(const jx_t *a, void *u) {
  jx_t xs = a[0];
  jx_fn *step = jx_fn_new(kv_step, 2, u);
  jx_t init = JX_TUPLE(jx_zeros_like(xs), jx_scalar_of(JX_I32, 0));
  jx_t r = jx_scan(step, init, xs);
  jx_t cache = jx_at(jx_at(r, 0), 0);
  return jx_add(jx_sum(jx_at(r, 1)), jx_sum(jx_mul(cache, jx_scalar(2.0))));
}

static void test_kv_cache(void) {
  jx_pool_push();
  enum { T = 6, D = 4 };
  jx_t xs = jx_astype(arange2(JX_F64, T, D), JX_F64);
  xs = jx_sub(jx_mul(xs, jx_scalar(0.25)), jx_scalar(1.0));
  jx_t w = jx_array(JX_F64, JX_SHAPE(D), (double[]){0.5, -1, 2, 0.25});
  jx_fn *f = jx_fn_new(kv_loss, 1, w);
  jx_t want = jx_add(jx_sum(jx_mul(xs, w)), jx_sum(jx_mul(xs, jx_scalar(2.0))));
  jx_t want_g = jx_broadcast_to(jx_add(w, jx_scalar(2.0)), 2, (int64_t[]){T, D});
  CHECK_CLOSE(jx_item(JX_CALL(f, xs)), jx_item(want), 1e-12, 1e-12);
  jx_fn *jf = jx_jit(f), *g = jx_grad(f, 0), *jg = jx_jit(g), *gj = jx_grad(jf, 0);
  jx_exec_counts c0 = jx_exec_run_counts();
  jx_t v = JX_CALL(jf, xs);
  jx_t gv = JX_CALL(jg, xs);
  jx_exec_counts c1 = jx_exec_run_counts();
  CHECK_CLOSE(jx_item(v), jx_item(want), 1e-12, 1e-12);
  CHECKF(max_diff(gv, want_g) < 1e-12, "jit(grad) of the KV-cache loop: %s", jx_error(gv));
  CHECKF(max_diff(JX_CALL(g, xs), want_g) < 1e-12, "grad of the KV-cache loop");
  CHECKF(max_diff(JX_CALL(gj, xs), want_g) < 1e-12, "grad(jit) of the KV-cache loop");
  if (system("cc --version >/dev/null 2>&1") == 0 && !getenv("JX_CC"))
    CHECKF(c1.interpreted == c0.interpreted && c1.compiled > c0.compiled, "jit interpreted the loop");
  /* vmap over a batch of sequences: batched cache, shared step counter */
  jx_t xb = jx_stack(3, (jx_t[]){xs, jx_mul(xs, jx_scalar(2.0)), jx_neg(xs)}, 0);
  jx_fn *vf = jx_vmap(jf, (int[]){0}, 0);
  jx_t vb = JX_CALL(vf, xb);
  for (int b = 0; b < 3; b++)
    CHECK_CLOSE(jx_item(jx_take(vb, jx_scalar_of(JX_I32, b), 0)),
                jx_item(JX_CALL(f, jx_take(xb, jx_scalar_of(JX_I32, b), 0))), 1e-12, 1e-12);
  jx_pool_pop();
}

/* per-example starts (vmap with batched indices: a gather and a scatter) */
static jx_t ds_body(const jx_t *a, void *u) {
  (void)u;
  jx_t s = jx_dynamic_slice(a[0], (jx_t[]){a[1], jx_scalar_int(1)}, (int64_t[]){2, 2});
  return jx_dynamic_update_slice(a[0], jx_mul(s, jx_scalar(10.0)), (jx_t[]){a[2], a[1]});
}
static void test_batched_starts(void) {
  jx_pool_push();
  jx_t x = arange2(JX_F32, 4, 5);
  jx_t s0 = jx_array(JX_I32, JX_SHAPE(3), (int32_t[]){0, 3, -1});
  jx_t s1 = jx_array(JX_I32, JX_SHAPE(3), (int32_t[]){2, -7, 9});
  jx_fn *f = jx_fn_new(ds_body, 3, NULL);
  for (int jit = 0; jit < 2; jit++) {
    jx_fn *vf = jx_vmap(jit ? jx_jit(f) : f, (int[]){JX_NONE, 0, 0}, 0);
    jx_t got = JX_CALL(vf, x, s0, s1);
    CHECKF(jx_ok(got), "%s", jx_error(got));
    for (int b = 0; b < 3 && jx_ok(got); b++) {
      jx_t ib = jx_scalar_of(JX_I32, b);
      jx_t want = JX_CALL(f, x, jx_take(s0, ib, 0), jx_take(s1, ib, 0));
      CHECKF(max_diff(jx_take(got, ib, 0), want) == 0, "vmap%s of dynamic slices, example %d",
             jit ? "(jit)" : "", b);
    }
  }
  jx_pool_pop();
}

/* vmap(grad) with per-example starts against a loop of grads */
static jx_t ds_loss(const jx_t *a, void *u) {
  (void)u;
  jx_t s = jx_dynamic_slice(a[0], (jx_t[]){a[1], jx_scalar_int(1)}, (int64_t[]){2, 2});
  jx_t y = jx_dynamic_update_slice(a[0], jx_mul(jx_sin(s), jx_scalar(3.0)),
                                   (jx_t[]){jx_add(a[1], jx_scalar_int(1)), a[1]});
  return jx_sum(jx_mul(y, y));
}
static void test_vmap_grad(void) {
  jx_pool_push();
  jx_t x = jx_stack(3,
                    (jx_t[]){jx_sin(arange2(JX_F64, 4, 5)), jx_cos(arange2(JX_F64, 4, 5)),
                             jx_sin(jx_mul(arange2(JX_F64, 4, 5), jx_scalar(0.3)))},
                    0);
  jx_t st = jx_array(JX_I32, JX_SHAPE(3), (int32_t[]){0, 2, -1});
  jx_fn *f = jx_fn_new(ds_loss, 2, NULL), *g = jx_grad(f, 0);
  for (int jit = 0; jit < 2; jit++) {
    jx_fn *vg = jx_vmap(jit ? jx_jit(g) : g, (int[]){0, 0}, 0);
    jx_t got = JX_CALL(vg, x, st);
    CHECKF(jx_ok(got), "%s", jx_error(got));
    for (int b = 0; b < 3 && jx_ok(got); b++) {
      jx_t ib = jx_scalar_of(JX_I32, b);
      jx_t want = JX_CALL(g, jx_take(x, ib, 0), jx_take(st, ib, 0));
      CHECKF(max_diff(jx_take(got, ib, 0), want) < 1e-12, "vmap%s(grad) of dynamic slices, example %d",
             jit ? "(jit)" : "", b);
    }
  }
  jx_pool_pop();
}

/* ----------------------------------------------------- gather / scatter */
static void test_gather_scatter(void) {
  jx_pool_push();
  jx_t x = arange2(JX_F32, 4, 5);
  /* points x[i, j] (index vectors along the last dim) */
  jx_gather_dnums pts = {.ncollapsed_slice_dims = 2,
                         .collapsed_slice_dims = {0, 1},
                         .nstart_index_map = 2,
                         .start_index_map = {0, 1},
                         .index_vector_dim = -1};
  jx_t ij = jx_array(JX_I32, JX_SHAPE(3, 2), (int32_t[]){1, 2, 3, 4, 9, -1});
  EXPECT_VALS(jx_gather(x, ij, &pts, (int64_t[]){1, 1}, JX_GATHER_CLIP, 0), 7, 19, 15);
  EXPECT_VALS(jx_gather(x, ij, &pts, (int64_t[]){1, 1}, JX_GATHER_FILL_OR_DROP, -5), 7, 19, -5);
  /* 2x2 windows, index vectors along dim 0: starts (0, 4) -> (0, 3), (3, 1) -> (2, 1) */
  jx_gather_dnums win = {.noffset_dims = 2,
                         .offset_dims = {1, 2},
                         .nstart_index_map = 2,
                         .start_index_map = {0, 1},
                         .index_vector_dim = 0};
  jx_t st = jx_array(JX_I32, JX_SHAPE(2, 2), (int32_t[]){0, 3, 4, 1});
  EXPECT_VALS(jx_gather(x, st, &win, (int64_t[]){2, 2}, JX_GATHER_CLIP, 0), 3, 4, 8, 9, 11, 12, 16, 17);

  /* scatter the points back: replace (last wins), add, mul, min, max, drop */
  jx_scatter_dnums sp = {.ninserted_window_dims = 2,
                         .inserted_window_dims = {0, 1},
                         .nscatter_dims_to_operand_dims = 2,
                         .scatter_dims_to_operand_dims = {0, 1},
                         .index_vector_dim = 1};
  jx_t z = jx_zeros(JX_F32, JX_SHAPE(2, 2));
  jx_t dup = jx_array(JX_I32, JX_SHAPE(4, 2), (int32_t[]){0, 0, 1, 1, 0, 0, 2, 0});
  jx_t u = jx_array(JX_F32, JX_SHAPE(4), (float[]){1, 2, 3, 4});
  EXPECT_VALS(jx_scatter(z, dup, u, &sp, JX_GATHER_FILL_OR_DROP), 3, 0, 0, 2);
  EXPECT_VALS(jx_scatter_add(z, dup, u, &sp, JX_GATHER_FILL_OR_DROP), 4, 0, 0, 2);
  EXPECT_VALS(jx_scatter_add(z, dup, u, &sp, JX_GATHER_CLIP), 4, 0, 4, 2); /* [2,0] clamps to [1,0] */
  jx_t o = jx_full(JX_F32, JX_SHAPE(2, 2), 2);
  EXPECT_VALS(jx_scatter_mul(o, dup, u, &sp, JX_GATHER_FILL_OR_DROP), 6, 2, 2, 4);
  EXPECT_VALS(jx_scatter_min(o, dup, u, &sp, JX_GATHER_FILL_OR_DROP), 1, 2, 2, 2);
  EXPECT_VALS(jx_scatter_max(o, dup, u, &sp, JX_GATHER_FILL_OR_DROP), 3, 2, 2, 2);
  /* integers wrap; empty updates leave the operand */
  jx_t big = jx_full(JX_I32, JX_SHAPE(2, 2), 2147483647.0);
  EXPECT_VALS(jx_scatter_add(big, dup, jx_ones(JX_I32, JX_SHAPE(4)), &sp, JX_GATHER_CLIP), -2147483647.0,
              2147483647.0, -2147483648.0, -2147483648.0);
  /* empty index batches, empty windows, empty operands */
  jx_t e0 = jx_gather(x, jx_zeros(JX_I32, JX_SHAPE(0, 2)), &pts, (int64_t[]){1, 1}, JX_GATHER_CLIP, 0);
  CHECKF(jx_ok(e0) && jx_ndim(e0) == 1 && jx_size(e0) == 0, "%s", jx_error(e0));
  jx_t e1 = jx_take(x, jx_zeros(JX_I32, JX_SHAPE(0)), 1);
  CHECKF(jx_ok(e1) && jx_ndim(e1) == 2 && jx_shape(e1)[0] == 4 && jx_size(e1) == 0, "%s", jx_error(e1));
  jx_t e2 = jx_gather(x, st, &win, (int64_t[]){0, 2}, JX_GATHER_CLIP, 0);
  CHECKF(jx_ok(e2) && jx_shape(e2)[1] == 0 && jx_size(e2) == 0, "%s", jx_error(e2));
  jx_t e3 = jx_at_add(jx_zeros(JX_F32, JX_SHAPE(3, 0)), jx_zeros(JX_I32, JX_SHAPE(2)), jx_scalar(1.0), 1);
  CHECKF(jx_ok(e3) && jx_size(e3) == 0, "%s", jx_error(e3));
  jx_t e4 = jx_at_max(jx_zeros(JX_F32, JX_SHAPE(0, 3)), jx_zeros(JX_I32, JX_SHAPE(2)), jx_scalar(1.0), 1);
  CHECKF(jx_ok(e4) && jx_size(e4) == 0, "%s", jx_error(e4));
  EXPECT_VALS(
      jx_scatter_add(o, jx_zeros(JX_I32, JX_SHAPE(0, 2)), jx_zeros(JX_F32, JX_SHAPE(0)), &sp, JX_GATHER_CLIP),
      2, 2, 2, 2);
  jx_pool_pop();
}

/* large point scatters run on threads owning ranges of the operand: each
 * element must still see its updates in order (set: the last wins) */
static void test_large_scatter(void) {
  jx_pool_push();
  enum { NX = 1001, NU = 200003 }; /* ranges and blocks of uneven sizes */
  int32_t *idx = malloc(sizeof(int32_t) * NU);
  float *u = malloc(sizeof(float) * NU), x0[NX], want_add[NX], want_set[NX];
  for (int i = 0; i < NX; i++)
    x0[i] = want_add[i] = want_set[i] = 0.5f * (float)i; /* each part copies its range */
  uint32_t s = 12345;
  for (int i = 0; i < NU; i++) {
    s = s * 1664525u + 1013904223u;
    idx[i] = (int32_t)(s >> 8) % (NX + 10) - 5; /* some out of bounds: dropped */
    u[i] = (float)(i % 7);
    int k = idx[i] < 0 ? idx[i] + NX : idx[i];
    if (k >= 0 && k < NX) want_add[k] += u[i], want_set[k] = u[i];
  }
  jx_t x = jx_array(JX_F32, JX_SHAPE(NX), x0), ix = jx_array(JX_I32, JX_SHAPE(NU), idx);
  jx_t uv = jx_array(JX_F32, JX_SHAPE(NU), u);
  double got[NX];
  jx_t a = jx_at_add(x, ix, uv, 0), st = jx_at_set(x, ix, uv, 0);
  CHECK(jx_ok(a) && jx_ok(st));
  jx_read(a, JX_F64, got, sizeof got);
  int bad = 0;
  for (int i = 0; i < NX; i++) bad += got[i] != want_add[i];
  jx_read(st, JX_F64, got, sizeof got);
  for (int i = 0; i < NX; i++) bad += got[i] != want_set[i];
  CHECKF(bad == 0, "%d elements of large scatters differ from the ordered loop", bad);
  free(idx), free(u);
  jx_pool_pop();
}

static void test_gather_errors(void) {
  jx_pool_push();
  jx_t x = jx_zeros(JX_F32, JX_SHAPE(4, 5));
  jx_t ij = jx_zeros(JX_I32, JX_SHAPE(3, 2));
  jx_gather_dnums dn = {.ncollapsed_slice_dims = 2,
                        .collapsed_slice_dims = {0, 1},
                        .nstart_index_map = 2,
                        .start_index_map = {0, 1},
                        .index_vector_dim = -1};
  EXPECT_ERROR(jx_gather(x, jx_zeros(JX_F32, JX_SHAPE(3, 2)), &dn, (int64_t[]){1, 1}, JX_GATHER_CLIP, 0),
               "gather(f32[4,5], f32[3,2])", "integer");
  EXPECT_ERROR(jx_gather(x, ij, &dn, (int64_t[]){1, 6}, JX_GATHER_CLIP, 0), "gather(f32[4,5], i32[3,2])",
               "slice_sizes[1] = 6");
  EXPECT_ERROR(jx_gather(x, ij, &dn, (int64_t[]){2, 1}, JX_GATHER_CLIP, 0), "gather", "collapsed dim 0");
  EXPECT_ERROR(jx_gather(x, jx_zeros(JX_I32, JX_SHAPE(3, 3)), &dn, (int64_t[]){1, 1}, JX_GATHER_CLIP, 0),
               "gather(f32[4,5], i32[3,3])", "start_index_map has 2 entries");
  jx_gather_dnums bad = dn;
  bad.start_index_map[1] = 0;
  EXPECT_ERROR(jx_gather(x, ij, &bad, (int64_t[]){1, 1}, JX_GATHER_CLIP, 0), "gather", "repeated");
  bad = dn, bad.noffset_dims = 1, bad.offset_dims[0] = 1;
  EXPECT_ERROR(jx_gather(x, ij, &bad, (int64_t[]){1, 1}, JX_GATHER_CLIP, 0), "gather", "offset_dims");
  bad = dn, bad.index_vector_dim = 3;
  EXPECT_ERROR(jx_gather(x, ij, &bad, (int64_t[]){1, 1}, JX_GATHER_CLIP, 0), "gather", "index_vector_dim");
  EXPECT_ERROR(jx_gather(x, ij, NULL, (int64_t[]){1, 1}, JX_GATHER_CLIP, 0), "gather", "NULL");
  EXPECT_ERROR(jx_gather(x, ij, &dn, (int64_t[]){1, 1}, (jx_gather_mode)7, 0), "gather", "mode");

  jx_scatter_dnums sd = {.nupdate_window_dims = 1,
                         .update_window_dims = {1},
                         .ninserted_window_dims = 1,
                         .inserted_window_dims = {0},
                         .nscatter_dims_to_operand_dims = 1,
                         .scatter_dims_to_operand_dims = {0},
                         .index_vector_dim = 1};
  jx_t idx = jx_zeros(JX_I32, JX_SHAPE(3));
  EXPECT_ERROR(jx_scatter_add(x, idx, jx_zeros(JX_F32, JX_SHAPE(2, 5)), &sd, JX_GATHER_CLIP),
               "scatter_add(f32[4,5], i32[3], f32[2,5])", "indices' batch dim");
  EXPECT_ERROR(jx_scatter_add(x, idx, jx_zeros(JX_F32, JX_SHAPE(3, 6)), &sd, JX_GATHER_CLIP), "scatter_add",
               "exceeds operand dim 1");
  EXPECT_ERROR(jx_scatter(x, idx, jx_zeros(JX_F64, JX_SHAPE(3, 5)), &sd, JX_GATHER_CLIP), "scatter", "dtype");
  EXPECT_ERROR(jx_scatter_max(x, idx, jx_zeros(JX_F32, JX_SHAPE(3)), &sd, JX_GATHER_CLIP), "scatter_max",
               "rank 2");
  jx_pool_pop();
}

/* ------------------------------------------------------------- .at[] */
static void test_at(void) {
  jx_pool_push();
  jx_t x = jx_zeros(JX_F32, JX_SHAPE(2, 4));
  jx_t idx = jx_array(JX_I32, JX_SHAPE(4), (int32_t[]){1, -1, 1, 4}); /* -1 -> 3; 4 dropped */
  jx_t v = jx_array(JX_F32, JX_SHAPE(2, 4), (float[]){1, 2, 3, 4, 5, 6, 7, 8});
  EXPECT_VALS(jx_at_add(x, idx, v, 1), 0, 4, 0, 2, 0, 12, 0, 6);
  EXPECT_VALS(jx_at_add(x, idx, v, -1), 0, 4, 0, 2, 0, 12, 0, 6);
  EXPECT_VALS(jx_at_set(x, idx, v, 1), 0, 3, 0, 2, 0, 7, 0, 6);
  EXPECT_VALS(jx_at_add(x, idx, jx_scalar(1.5), 1), 0, 3, 0, 1.5, 0, 3, 0, 1.5); /* values broadcast */
  jx_t o = jx_full(JX_F32, JX_SHAPE(2, 4), 2);
  EXPECT_VALS(jx_at_mul(o, idx, v, 1), 2, 6, 2, 4, 2, 70, 2, 12);
  EXPECT_VALS(jx_at_min(o, idx, v, 1), 2, 1, 2, 2, 2, 2, 2, 2);
  EXPECT_VALS(jx_at_max(o, idx, v, 1), 2, 3, 2, 2, 2, 7, 2, 6);
  EXPECT_VALS(jx_at_get(v, jx_array(JX_I32, JX_SHAPE(2), (int32_t[]){-1, 9}), 1), 4, 4, 8, 8);
  /* rows, 2-d indices */
  jx_t r = jx_at_add(jx_zeros(JX_I64, JX_SHAPE(3)), jx_array(JX_I32, JX_SHAPE(2, 2), (int32_t[]){0, 2, 2, 2}),
                     jx_scalar_int(5), 0);
  EXPECT_VALS(r, 5, 0, 15);
  /* grad: d/dx sum(x.at[idx].mul(v)) and d/dv sum(x.at[idx].add(v)) */
  EXPECT_ERROR(jx_at_add(x, jx_zeros(JX_F32, JX_SHAPE(2)), v, 1), "at_add", "integers", "f32[2]");
  EXPECT_ERROR(jx_at_add(x, idx, jx_zeros(JX_F32, JX_SHAPE(3)), 1), "broadcast");
  EXPECT_ERROR(jx_at_set(x, idx, v, 2), "at_set", "axis 2", "f32[2,4]");
  jx_pool_pop();
}

static jx_t sum_at_set(const jx_t *a, void *u) {
  jx_t idx = u;
  return jx_sum(jx_mul(jx_at_set(a[0], idx, a[1], 0), jx_arange(JX_F64, 1, 5, 1)));
}
static void test_at_grad(void) {
  jx_pool_push();
  /* duplicates: the last update of index 1 wins; index 7 is dropped */
  jx_t idx = jx_array(JX_I32, JX_SHAPE(4), (int32_t[]){1, 3, 1, 7});
  jx_fn *f = jx_fn_new(sum_at_set, 2, idx);
  jx_t x = jx_zeros(JX_F64, JX_SHAPE(4)), v = jx_ones(JX_F64, JX_SHAPE(4));
  EXPECT_VALS(jx_call(jx_grad(f, 0), (jx_t[]){x, v}), 1, 0, 3, 0);
  EXPECT_VALS(jx_call(jx_grad(f, 1), (jx_t[]){x, v}), 0, 4, 2, 0);
  EXPECT_VALS(jx_call(jx_jit(jx_grad(f, 1)), (jx_t[]){x, v}), 0, 4, 2, 0);
  jx_pool_pop();
}

/* ------------------------------------------- take_along_axis, segments, pad */
static void test_take_along_axis(void) {
  jx_pool_push();
  jx_t x = arange2(JX_F32, 2, 3);
  jx_t idx = jx_array(JX_I32, JX_SHAPE(2, 2), (int32_t[]){0, 2, -1, 0});
  EXPECT_VALS(jx_take_along_axis(x, idx, 1), 0, 2, 5, 3);
  /* broadcasting: indices [1, 3] against x [2, 3] along axis 0 */
  EXPECT_VALS(jx_take_along_axis(x, jx_array(JX_I32, JX_SHAPE(1, 3), (int32_t[]){1, 0, 1}), 0), 3, 1, 5);
  jx_t f = jx_take_along_axis(x, jx_array(JX_I32, JX_SHAPE(2, 1), (int32_t[]){3, 0}), 1);
  EXPECT_VALS(f, NAN, 3); /* out of bounds: NaN (JAX's fill) */
  EXPECT_VALS(
      jx_take_along_axis(jx_astype(x, JX_I32), jx_array(JX_I32, JX_SHAPE(2, 1), (int32_t[]){3, 0}), 1),
      -2147483648.0, 3);
  EXPECT_ERROR(jx_take_along_axis(x, jx_zeros(JX_I32, JX_SHAPE(2)), 1), "take_along_axis", "rank", "i32[2]");
  EXPECT_ERROR(jx_take_along_axis(x, jx_zeros(JX_I32, JX_SHAPE(3, 1)), 1), "take_along_axis", "broadcast");
  jx_pool_pop();
}

static void test_segments(void) {
  jx_pool_push();
  jx_t data = jx_array(JX_F32, JX_SHAPE(5, 2), (float[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  jx_t ids = jx_array(JX_I32, JX_SHAPE(5), (int32_t[]){0, 2, 0, -1, 3});
  EXPECT_VALS(jx_segment_sum(data, ids, 3), 6, 8, 0, 0, 3, 4); /* -1 and 3 dropped */
  EXPECT_VALS(jx_segment_max(data, ids, 3), 5, 6, -INFINITY, -INFINITY, 3, 4);
  EXPECT_VALS(jx_segment_max(jx_astype(data, JX_I32), ids, 2), 5, 6, -2147483648.0, -2147483648.0);
  CHECK(jx_size(jx_segment_sum(data, ids, 0)) == 0);
  EXPECT_ERROR(jx_segment_sum(data, jx_zeros(JX_I32, JX_SHAPE(4)), 3), "segment_sum", "i32[4]", "f32[5,2]");
  EXPECT_ERROR(jx_segment_sum(data, ids, -1), "segment_sum", "num_segments");
  jx_pool_pop();
}

static void test_pad(void) {
  jx_pool_push();
  jx_t x = jx_array(JX_F32, JX_SHAPE(3), (float[]){1, 2, 3});
  EXPECT_VALS(jx_pad(x, jx_scalar(0.0), (int64_t[]){1}, (int64_t[]){2}, (int64_t[]){1}), 0, 1, 0, 2, 0, 3, 0,
              0);
  EXPECT_VALS(jx_pad(x, jx_scalar(9.0), (int64_t[]){-1}, (int64_t[]){1}, NULL), 2, 3, 9);
  EXPECT_VALS(jx_pad(x, jx_scalar(0.0), (int64_t[]){-2}, (int64_t[]){-1}, (int64_t[]){2}), 0, 2, 0, 0);
  EXPECT_ERROR(jx_pad(x, jx_zeros(JX_F32, JX_SHAPE(2)), NULL, NULL, NULL), "pad", "0-d");
  EXPECT_ERROR(jx_pad(x, jx_scalar(0.0), (int64_t[]){-4}, NULL, NULL), "pad");
  jx_pool_pop();
}

int main(void) {
  check_private_cache("index");
  test_dynamic_slice();
  test_dynamic_slice_errors();
  test_kv_cache();
  test_batched_starts();
  test_vmap_grad();
  test_gather_scatter();
  test_large_scatter();
  test_gather_errors();
  test_at();
  test_at_grad();
  test_take_along_axis();
  test_segments();
  test_pad();
  check_private_cache_remove();
  return check_report("index");
}
