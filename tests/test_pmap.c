/* Devices, collectives, named vmap and pmap (#17, in one process).
 *
 * Every collective is checked under jx_vmap_named against the same
 * computation written with plain array ops, then under pmap against the
 * named vmap (they must agree exactly: pmap runs the compiled program once
 * per device, vmap_named the batched one). Then the compositions both
 * ways (grad, vmap, jit, scan, cond), and the faults: wrong leading axis,
 * unknown axis, a collective outside any axis, devices that disagree, an
 * error in one device's program (never a hang). */
#include "check.h"
#include "compile/compile.h"
#include "dist/local.h"

#include <jx.h>

static jx_t arange(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  /* distinct, not too regular values */
  return jx_reshape(jx_sin(jx_arange(JX_F32, 1, (double)n + 1, 1)), ndim, shape);
}
#define ARANGE(...) arange(JX_SHAPE(__VA_ARGS__))

static double maxdiff(jx_t a, jx_t b) {
  if (!jx_ok(a) || !jx_ok(b)) return 1e300;
  if (jx_ndim(a) != jx_ndim(b)) return 1e300;
  for (int d = 0; d < jx_ndim(a); d++)
    if (jx_shape(a)[d] != jx_shape(b)[d]) return 1e300;
  if (jx_size(a) == 0) return 0;
  return jx_item(jx_max(jx_abs(jx_sub(jx_astype(a, JX_F64), jx_astype(b, JX_F64)))));
}
#define CHECK_SAME(a, b, tol)                                                                                \
  do {                                                                                                       \
    jx_t a_ = (a), b_ = (b);                                                                                 \
    CHECKF(maxdiff(a_, b_) <= (tol), "%s vs %s: %g (%s)", #a, #b, maxdiff(a_, b_),                           \
           jx_ok(a_) ? (jx_ok(b_) ? "" : jx_error(b_)) : jx_error(a_));                                      \
  } while (0)

/* ------------------------------------------------------------ the bodies */
static jx_t f_psum(const jx_t *a, void *u) { return jx_psum(a[0], u ? u : "i"); }
static jx_t f_pmean(const jx_t *a, void *u) { return jx_pmean(a[0], u ? u : "i"); }
static jx_t f_pmax(const jx_t *a, void *u) { return jx_pmax(a[0], u ? u : "i"); }
static jx_t f_pmin(const jx_t *a, void *u) { return jx_pmin(a[0], u ? u : "i"); }
static jx_t f_gather0(const jx_t *a, void *u) { return jx_all_gather(a[0], u ? u : "i", 0, false); }
static jx_t f_gather1(const jx_t *a, void *u) { return jx_all_gather(a[0], u ? u : "i", 1, false); }
static jx_t f_gather_tiled(const jx_t *a, void *u) { return jx_all_gather(a[0], u ? u : "i", 0, true); }
static jx_t f_scatter(const jx_t *a, void *u) { return jx_psum_scatter(a[0], u ? u : "i", 0, false); }
static jx_t f_scatter_tiled(const jx_t *a, void *u) { return jx_psum_scatter(a[0], u ? u : "i", 1, true); }
static jx_t f_a2a(const jx_t *a, void *u) { return jx_all_to_all(a[0], u ? u : "i", 0, 1, false); }
static jx_t f_a2a_tiled(const jx_t *a, void *u) { return jx_all_to_all(a[0], u ? u : "i", 1, 0, true); }
static jx_t f_shift(const jx_t *a, void *u) {
  (void)u;
  int n = (int)jx_item(jx_axis_size("i"));
  int pairs[8][2];
  for (int j = 0; j < n; j++) pairs[j][0] = j, pairs[j][1] = (j + 1) % n;
  return jx_ppermute(a[0], "i", n, (const int(*)[2])pairs);
}
static jx_t f_partial(const jx_t *a, void *u) { /* only 0 -> 1: member 0 gets zeros */
  (void)u;
  return jx_ppermute(a[0], "i", 1, (const int[][2]){{0, 1}});
}
static jx_t f_index(const jx_t *a, void *u) {
  (void)u;
  return jx_add(jx_astype(jx_axis_index("i"), JX_F32), jx_mul(a[0], jx_scalar(0)));
}
/* a mix: normalise by the global mean and max, then gather */
static jx_t f_mix(const jx_t *a, void *u) {
  (void)u;
  jx_t x = jx_sub(a[0], jx_pmean(jx_mean(a[0]), "i"));
  x = jx_div(x, jx_add(jx_pmax(jx_max(jx_abs(x)), "i"), jx_scalar(1)));
  return jx_all_gather(jx_mul(x, jx_astype(jx_axis_index("i"), JX_F32)), "i", 0, true);
}

/* ------------------------------------------------- named vmap semantics */
static jx_t vnamed(jx_body body, void *u, jx_t x) {
  jx_fn *f = jx_fn_new(body, 1, u);
  return JX_CALL(jx_vmap_named(f, NULL, 0, "i"), x);
}

static void test_vmap_named_semantics(void) {
  jx_pool_push();
  jx_t X = ARANGE(3, 4); /* 3 members, 4 each */
  jx_t sum = jx_sum_axes(X, 1, (int[]){0}, true);
  CHECK_SAME(vnamed(f_psum, NULL, X), jx_broadcast_to(sum, JX_SHAPE(3, 4)), 1e-6);
  CHECK_SAME(vnamed(f_pmean, NULL, X), jx_broadcast_to(jx_div(sum, jx_scalar(3)), JX_SHAPE(3, 4)), 1e-6);
  CHECK_SAME(vnamed(f_pmax, NULL, X), jx_broadcast_to(jx_max_axes(X, 1, (int[]){0}, true), JX_SHAPE(3, 4)),
             0);
  CHECK_SAME(vnamed(f_pmin, NULL, X), jx_broadcast_to(jx_min_axes(X, 1, (int[]){0}, true), JX_SHAPE(3, 4)),
             0);
  /* all_gather: every member gets the whole X */
  CHECK_SAME(vnamed(f_gather0, NULL, X), jx_broadcast_to(jx_expand_dims(X, 0), JX_SHAPE(3, 3, 4)), 0);
  CHECK_SAME(vnamed(f_gather_tiled, NULL, X),
             jx_broadcast_to(jx_reshape(X, JX_SHAPE(1, 12)), JX_SHAPE(3, 12)), 0);
  jx_t X3 = ARANGE(3, 2, 5);
  CHECK_SAME(vnamed(f_gather1, NULL, X3),
             jx_broadcast_to(jx_expand_dims(jx_transpose(X3, (int[]){1, 0, 2}), 0), JX_SHAPE(3, 2, 3, 5)), 0);
  /* psum_scatter: member i gets block i of the sum */
  jx_t S = ARANGE(3, 3, 2);
  CHECK_SAME(vnamed(f_scatter, NULL, S), jx_sum_axes(S, 1, (int[]){0}, false), 1e-6);
  jx_t St = ARANGE(3, 2, 6);                          /* dim 1 (6) in 3 blocks of 2 */
  jx_t sum_t = jx_sum_axes(St, 1, (int[]){0}, false); /* [2, 6] */
  jx_t want_t = jx_transpose(jx_reshape(sum_t, JX_SHAPE(2, 3, 2)), (int[]){1, 0, 2});
  CHECK_SAME(vnamed(f_scatter_tiled, NULL, St), want_t, 1e-6);
  /* all_to_all: out[i][j] = X[j][i] */
  jx_t A = ARANGE(3, 3, 2);
  CHECK_SAME(vnamed(f_a2a, NULL, A), jx_transpose(A, (int[]){1, 2, 0}), 0);
  jx_t At = ARANGE(3, 2, 6); /* split dim 1 in 3, concatenate along 0 */
  jx_t want_a =
      jx_reshape(jx_transpose(jx_reshape(At, JX_SHAPE(3, 2, 3, 2)), (int[]){2, 0, 1, 3}), JX_SHAPE(3, 6, 2));
  CHECK_SAME(vnamed(f_a2a_tiled, NULL, At), want_a, 0);
  /* ppermute: a cyclic shift, and a partial one */
  CHECK_SAME(vnamed(f_shift, NULL, X),
             jx_concatenate(2,
                            (jx_t[]){jx_slice(X, (int64_t[]){2, 0}, (int64_t[]){3, 4}, NULL),
                                     jx_slice(X, (int64_t[]){0, 0}, (int64_t[]){2, 4}, NULL)},
                            0),
             0);
  jx_t part = vnamed(f_partial, NULL, X);
  CHECK_SAME(jx_slice(part, (int64_t[]){1, 0}, (int64_t[]){2, 4}, NULL),
             jx_slice(X, (int64_t[]){0, 0}, (int64_t[]){1, 4}, NULL), 0);
  CHECK(jx_ok(part) &&
        jx_item(jx_sum(jx_abs(jx_slice(part, (int64_t[]){0, 0}, (int64_t[]){1, 4}, NULL)))) == 0);
  CHECK(jx_ok(part) &&
        jx_item(jx_sum(jx_abs(jx_slice(part, (int64_t[]){2, 0}, (int64_t[]){3, 4}, NULL)))) == 0);
  /* axis_index */
  CHECK_SAME(vnamed(f_index, NULL, X),
             jx_broadcast_to(jx_reshape(jx_arange(JX_F32, 0, 3, 1), JX_SHAPE(3, 1)), JX_SHAPE(3, 4)), 0);
  jx_pool_pop();
}

/* psum of a value the named vmap does not map: n times it */
static jx_t f_psum_w(const jx_t *a, void *u) {
  (void)u;
  return jx_add(a[0], jx_psum(a[1], "i"));
}
/* nested names: a sum over both, and an index over both */
static jx_t f_inner_ij(const jx_t *a, void *u) {
  (void)u;
  return jx_add(jx_psum(a[0], "i,j"), jx_mul(jx_astype(jx_axis_index("i,j"), JX_F32), jx_scalar(100)));
}
static jx_t f_outer_i(const jx_t *a, void *u) {
  jx_fn *g = jx_fn_new(f_inner_ij, 1, u);
  return jx_call(jx_vmap_named(g, NULL, 0, "j"), a);
}

static jx_t scan_body(const jx_t *a, void *u);
static jx_t f_scan(const jx_t *a, void *u);
static jx_t f_scan_w(const jx_t *a, void *u) { return jx_add(a[0], f_scan(a + 1, u)); }
static jx_t scatter_body(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_add(a[0], jx_psum_scatter(a[1], "i", 0, false)), a[1]);
}
static jx_t f_scan_scatter(const jx_t *a, void *u) {
  (void)u;
  jx_t r = jx_scan(jx_fn_new(scatter_body, 2, NULL), jx_zeros(JX_F32, 0, NULL), a[1]);
  return jx_add(a[0], jx_at(r, 0));
}

static void test_vmap_named_more(void) {
  jx_pool_push();
  jx_t X = ARANGE(3, 2), w = ARANGE(2);
  jx_fn *f = jx_fn_new(f_psum_w, 2, NULL);
  jx_t got = JX_CALL(jx_vmap_named(f, (int[]){0, JX_NONE}, 0, "i"), X, w);
  CHECK_SAME(got, jx_add(X, jx_mul(w, jx_scalar(3))), 1e-6);
  /* 2 x 3 members under "i" (outer) and "j" */
  jx_t Y = ARANGE(2, 3, 4);
  jx_t r = JX_CALL(jx_vmap_named(jx_fn_new(f_outer_i, 1, NULL), NULL, 0, "i"), Y);
  jx_t total = jx_sum_axes(Y, 2, (int[]){0, 1}, true);
  jx_t idx = jx_reshape(jx_arange(JX_F32, 0, 6, 1), JX_SHAPE(2, 3, 1));
  CHECK_SAME(r, jx_add(jx_broadcast_to(total, JX_SHAPE(2, 3, 4)), jx_mul(idx, jx_scalar(100))), 1e-5);
  /* the same inside jit: the derived batched body still sees w as unmapped over "i" */
  jx_t gj = JX_CALL(jx_vmap_named(jx_jit(f), (int[]){0, JX_NONE}, 0, "i"), X, w);
  CHECK_SAME(gj, jx_add(X, jx_mul(w, jx_scalar(3))), 1e-6);
  /* a scan none of whose operands the vmap maps, with a psum inside */
  jx_t ws = ARANGE(4, 2), xs2 = ARANGE(3, 2);
  jx_t gs = JX_CALL(jx_vmap_named(jx_fn_new(f_scan_w, 2, NULL), (int[]){0, JX_NONE}, 0, "i"), xs2, ws);
  jx_t carry = jx_zeros(JX_F32, 1, (int64_t[]){2}), ysum = carry;
  for (int t = 0; t < 4; t++) {
    carry = jx_add(carry, jx_mul(jx_take(ws, jx_scalar_int(t), 0), jx_scalar(3)));
    ysum = jx_add(ysum, jx_mul(carry, jx_scalar(2)));
  }
  CHECK_SAME(gs, jx_add(xs2, jx_add(carry, ysum)), 1e-5);
  jx_fn *idx_in_scan = jx_fn_new(f_scan_scatter, 2, NULL);
  EXPECT_ERROR(JX_CALL(jx_vmap_named(idx_in_scan, (int[]){0, JX_NONE}, 0, "i"), xs2, ARANGE(4, 3)),
               "psum_scatter", "does not map");
  /* unbound names and the wrong places */
  EXPECT_ERROR(jx_psum(X, "i"), "psum", "unbound axis name 'i'");
  EXPECT_ERROR(jx_axis_index("k"), "axis_index", "unbound axis name 'k'");
  EXPECT_ERROR(JX_CALL(jx_vmap_named(jx_fn_new(f_psum, 1, "zz"), NULL, 0, "i"), X), "psum", "'zz'");
  EXPECT_ERROR(JX_CALL(jx_vmap_named(jx_fn_new(f_psum, 1, NULL), NULL, 0, "this_name_is_too_long"), X),
               "vmap_named", "longer than");
  EXPECT_ERROR(JX_CALL(jx_vmap_named(jx_fn_new(f_scatter, 1, NULL), NULL, 0, "i"), ARANGE(3, 2, 2)),
               "psum_scatter", "over axis 'i' (3 members)", "f32[2,2]");
  jx_pool_pop();
}

/* grad through collectives under a named vmap: out_i = (sum_j x_j^2) x_i,
 * sum_i out_i = S T, d/dx_k = 2 x_k T + S */
static jx_t f_sq(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(jx_psum(jx_mul(a[0], a[0]), "i"), a[0]);
}
static jx_t loss_named(const jx_t *a, void *u) {
  jx_fn *f = jx_fn_new(f_sq, 1, u);
  return jx_sum(JX_CALL(u ? jx_pmap(f, NULL, 0, "i") : jx_vmap_named(f, NULL, 0, "i"), a[0]));
}

static void test_vmap_named_grad(void) {
  jx_pool_push();
  jx_t x = ARANGE(3);
  jx_t g = JX_CALL(jx_grad(jx_fn_new(loss_named, 1, NULL), 0), x);
  jx_t S = jx_sum(jx_mul(x, x)), T = jx_sum(x);
  CHECK_SAME(g, jx_add(jx_mul(jx_mul(x, jx_scalar(2)), T), S), 1e-5);
  /* gathers and scatters transpose into each other: grad of a gather */
  jx_pool_pop();
}

/* ------------------------------------------------------------------ pmap */
typedef struct {
  const char *name;
  jx_body body;
  int64_t shape[3];
  int ndim;
} coll_case;

static void test_pmap_matches_vmap(int ndev) {
  jx_pool_push();
  CHECK(jx_set_cpu_devices(ndev) == NULL);
  CHECK(jx_local_device_count() == ndev && jx_device_count() == ndev);
  int n = ndev;
  coll_case cases[] = {
      {"psum", f_psum, {n, 4}, 2},
      {"pmean", f_pmean, {n, 5}, 2},
      {"pmax", f_pmax, {n, 3}, 2},
      {"pmin", f_pmin, {n, 3}, 2},
      {"gather0", f_gather0, {n, 2, 3}, 3},
      {"gather1", f_gather1, {n, 2, 3}, 3},
      {"gather_tiled", f_gather_tiled, {n, 2}, 2},
      {"scatter", f_scatter, {n, n, 2}, 3},
      {"scatter_tiled", f_scatter_tiled, {n, 2, 2 * n}, 3},
      {"a2a", f_a2a, {n, n, 3}, 3},
      {"a2a_tiled", f_a2a_tiled, {n, 2, 2 * n}, 3},
      {"shift", f_shift, {n, 3}, 2},
      {"partial", f_partial, {n, 3}, 2},
      {"index", f_index, {n, 2}, 2},
      {"mix", f_mix, {n, 2, 3}, 3},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    if (n < 2 && cases[c].body == f_partial) continue; /* its pair needs 2 members */
    jx_pool_push();
    jx_t X = arange(cases[c].ndim, cases[c].shape);
    jx_fn *f = jx_fn_new(cases[c].body, 1, NULL);
    jx_t want = JX_CALL(jx_vmap_named(f, NULL, 0, "i"), X);
    jx_t got = JX_CALL(jx_pmap(f, NULL, 0, "i"), X);
    CHECKF(maxdiff(got, want) <= 1e-6, "pmap %s on %d devices: %g (%s)", cases[c].name, ndev,
           maxdiff(got, want), jx_ok(got) ? jx_error(want) : jx_error(got));
    jx_pool_pop();
  }
  jx_pool_pop();
}

/* In-place collectives (exec.c's inplace_source, lower.inplace): psum,
 * pmax and pmin of a temporary nothing reads later write into its buffer
 * (one device: nothing to do; in-process members reduce block by block,
 * each block read before it is written; one device per process:
 * MPI_IN_PLACE). Not when the temporary is read after
 * the collective, nor for an argument's buffer. Against the named vmap. */
static jx_t f_dead_psum(const jx_t *a, void *u) {
  (void)u;
  jx_t y = jx_mul(a[0], jx_scalar(2.0));
  /* three collectives into temporaries */
  return jx_add(jx_add(jx_psum(y, "i"), jx_pmax(jx_add(a[0], jx_scalar(1.0)), "i")),
                jx_pmin(jx_neg(a[0]), "i"));
}
static jx_t f_dead_out(const jx_t *a, void *u) {
  (void)u;
  return jx_psum(jx_mul(a[0], jx_scalar(2.0)), "i"); /* into the program's output */
}
static jx_t f_live_psum(const jx_t *a, void *u) {
  (void)u;
  jx_t y = jx_mul(a[0], jx_scalar(2.0));
  return jx_add(jx_psum(y, "i"), y); /* y is read after the psum */
}
static jx_t f_arg_psum(const jx_t *a, void *u) {
  (void)u;
  return jx_psum(a[0], "i");
}

/* a jitted body inside a named vmap, none of whose operands the vmap
 * maps: its psum reduces a replicated dead temporary (local.c's
 * replicated(), in place) */
static jx_t h_rep(const jx_t *a, void *u) {
  (void)u;
  return jx_psum(jx_mul(a[0], jx_scalar(2.0)), "i");
}
static jx_t f_rep(const jx_t *a, void *u) { return jx_add(JX_CALL((jx_fn *)u, a[1]), a[0]); }

static void test_inplace_collectives(void) {
  jx_pool_push();
  jx_fn *jh = jx_jit(jx_fn_new(h_rep, 1, NULL));
  jx_t X = ARANGE(3, 5), w = ARANGE(5);
  const int64_t before = jx_exec_inplace_calls();
  jx_t got = JX_CALL(jx_vmap_named(jx_fn_new(f_rep, 2, jh), (int[]){0, JX_NONE}, 0, "i"), X, w);
  CHECK_SAME(got, jx_add(X, jx_mul(w, jx_scalar(6.0))), 1e-6);
  if (jx_exec_run_counts().compiled > 0) CHECK(jx_exec_inplace_calls() - before == 1);
  for (int ndev = 1; ndev <= 3; ndev++) {
    CHECK(jx_set_cpu_devices(ndev) == NULL);
    const jx_body bodies[5] = {f_dead_psum, f_live_psum, f_arg_psum, f_dead_out, f_dead_psum};
    const int64_t expect[5] = {3, 0, 0, 1, 3}; /* in place, per device */
    for (int b = 0; b < 5; b++) {              /* body 4: body 0 over several of reduce_chunk's blocks */
      jx_pool_push();
      jx_t X = ARANGE(ndev, b < 4 ? 5 : 20011);
      jx_fn *f = jx_fn_new(bodies[b], 1, NULL);
      jx_t want = JX_CALL(jx_vmap_named(f, NULL, 0, "i"), X);
      const int64_t before = jx_exec_inplace_calls();
      jx_t got = JX_CALL(jx_pmap(f, NULL, 0, "i"), X);
      const int64_t ran = jx_exec_inplace_calls() - before;
      CHECKF(jx_ok(got) && maxdiff(got, want) <= 1e-6, "in-place collectives, body %d, %d devices: %s", b,
             ndev, jx_ok(got) ? "differs" : jx_error(got));
      /* compiled: per device, every collective of a dead temporary in
       * place, none otherwise (interpreted: none at all) */
      jx_exec_counts c = jx_exec_run_counts();
      if (c.compiled > 0)
        CHECKF(ran == expect[b] * ndev, "body %d, %d devices: %lld in place", b, ndev, (long long)ran);
      jx_pool_pop();
    }
  }
  jx_pool_pop();
}

static int traces;
static jx_t f_counted(const jx_t *a, void *u) {
  (void)u;
  traces++;
  return jx_psum(jx_mul(a[0], a[1]), "i");
}

static void test_pmap_basics(void) {
  jx_pool_push();
  jx_set_cpu_devices(2);
  jx_fn *pf = jx_pmap(jx_fn_new(f_counted, 2, NULL), (int[]){0, JX_NONE}, 0, "i");
  jx_t X = ARANGE(2, 3), w = ARANGE(3);
  traces = 0;
  jx_t want = jx_broadcast_to(jx_sum_axes(jx_mul(X, w), 1, (int[]){0}, true), JX_SHAPE(2, 3));
  for (int k = 0; k < 3; k++) {
    jx_exec_counts c0 = jx_exec_run_counts();
    CHECK_SAME(JX_CALL(pf, X, w), want, 1e-6);
    jx_exec_counts c1 = jx_exec_run_counts();
    /* the program ran once per device (compiled, or interpreted without a C compiler) */
    CHECK(c1.compiled + c1.interpreted - c0.compiled - c0.interpreted == 2);
  }
  CHECKF(traces == 1, "pmap traced f %d times for one signature", traces);
  /* out_axis 1 */
  jx_fn *pf1 = jx_pmap(jx_fn_new(f_psum, 1, NULL), NULL, 1, "i");
  CHECK_SAME(JX_CALL(pf1, X),
             jx_transpose(jx_broadcast_to(jx_sum_axes(X, 1, (int[]){0}, true), JX_SHAPE(2, 3)), NULL), 1e-6);
  /* out_axis JX_NONE (out_axes=None): a replicated result, device 0's */
  jx_fn *pfn = jx_pmap(jx_fn_new(f_psum, 1, NULL), NULL, JX_NONE, "i");
  CHECK_SAME(JX_CALL(pfn, X), jx_sum_axes(X, 1, (int[]){0}, false), 1e-6);
  CHECK_SAME(JX_CALL(jx_jit(pfn), X), jx_sum_axes(X, 1, (int[]){0}, false), 1e-6);
  /* in_axes 1 */
  jx_fn *pfa = jx_pmap(jx_fn_new(f_psum, 1, NULL), (int[]){1}, 0, "i");
  CHECK_SAME(JX_CALL(pfa, jx_transpose(X, NULL)),
             jx_broadcast_to(jx_sum_axes(X, 1, (int[]){0}, true), JX_SHAPE(2, 3)), 1e-6);
  /* the errors */
  EXPECT_ERROR(JX_CALL(pf, ARANGE(3, 3), w), "pmap", "argument 0 has size 3", "2 local devices");
  EXPECT_ERROR(JX_CALL(jx_pmap(jx_fn_new(f_psum, 1, "data"), NULL, 0, "i"), X), "psum",
               "unbound axis name 'data'");
  EXPECT_ERROR(JX_CALL(jx_pmap(jx_fn_new(f_psum, 1, NULL), (int[]){JX_NONE}, 0, "i"), X), "pmap",
               "no argument");
  EXPECT_ERROR(JX_CALL(jx_pmap(jx_fn_new(f_psum, 1, NULL), NULL, 0, ""), X), "pmap", "no axis name");
  EXPECT_ERROR(jx_set_cpu_devices(100000), "jx_set_cpu_devices", "at most");
  jx_pool_pop();
}

/* ---------------------------------------------------------- compositions */
/* a data-parallel step: the gradient of a per-device loss, pmean'd */
static jx_t loss_wx(const jx_t *a, void *u) {
  (void)u;
  jx_t r = jx_sub(jx_tanh(jx_matmul(a[1], a[0])), jx_scalar(0.5));
  return jx_mean(jx_mul(r, r));
}
static jx_t dp_grad(const jx_t *a, void *u) {
  jx_t g = JX_CALL(jx_grad(jx_fn_new(loss_wx, 2, u), 0), a[0], a[1]);
  return jx_pmean(g, "i");
}

static jx_t f_sum_psum(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(jx_psum(jx_sin(a[0]), "i"), a[0]);
}
static jx_t loss_of_pmap(const jx_t *a, void *u) {
  jx_fn *f = jx_fn_new(f_sum_psum, 1, NULL);
  return jx_sum(JX_CALL(u ? jx_pmap(f, NULL, 0, "i") : jx_vmap_named(f, NULL, 0, "i"), a[0]));
}
/* scan whose body does a psum each step: carry = carry + psum(x_t) */
static jx_t scan_body(const jx_t *a, void *u) {
  (void)u;
  jx_t c = jx_add(a[0], jx_psum(a[1], "i"));
  return JX_TUPLE(c, jx_mul(c, jx_scalar(2)));
}
static jx_t f_scan(const jx_t *a, void *u) {
  (void)u;
  jx_t r = jx_scan(jx_fn_new(scan_body, 2, NULL), jx_zeros(JX_F32, 1, (int64_t[]){2}), a[0]);
  return jx_add(jx_at(r, 0), jx_sum_axes(jx_at(r, 1), 1, (int[]){0}, false));
}
static jx_t br_sum(const jx_t *a, void *u) {
  (void)u;
  return jx_psum(a[0], "i");
}
static jx_t br_max(const jx_t *a, void *u) {
  (void)u;
  return jx_pmax(a[0], "i");
}
static jx_t f_cond(const jx_t *a, void *u) { /* the predicate is the same on every member */
  (void)u;
  jx_t pred = jx_gt(jx_psum(jx_sum(a[0]), "i"), jx_scalar(0));
  return jx_cond(pred, jx_fn_new(br_sum, 1, NULL), jx_fn_new(br_max, 1, NULL), 1, a);
}

/* while: three rounds of x += psum(x) */
static jx_t while_cond(const jx_t *a, void *u) {
  (void)u;
  return jx_lt(jx_at(a[0], 0), jx_scalar_int(3));
}
static jx_t while_body(const jx_t *a, void *u) {
  (void)u;
  jx_t x = jx_at(a[0], 1);
  return JX_TUPLE(jx_add(jx_at(a[0], 0), jx_scalar_int(1)), jx_add(x, jx_psum(x, "i")));
}
static jx_t f_while(const jx_t *a, void *u) {
  (void)u;
  jx_t r = jx_while_loop(jx_fn_new(while_cond, 1, NULL), jx_fn_new(while_body, 1, NULL),
                         JX_TUPLE(jx_scalar_of(JX_I32, 0), a[0]));
  return jx_at(r, 1);
}

static void test_compositions(void) {
  jx_pool_push();
  jx_set_cpu_devices(2);
  jx_t W = ARANGE(3, 2), Xb = ARANGE(2, 4, 3); /* 2 devices x 4 examples x 3 features */
  jx_fn *step = jx_fn_new(dp_grad, 2, NULL);
  int axes[2] = {JX_NONE, 0};
  /* pmap of grad == vmap_named of grad == the gradient of the whole batch */
  jx_t gp = JX_CALL(jx_pmap(step, axes, 0, "i"), W, Xb);
  jx_t gv = JX_CALL(jx_vmap_named(step, axes, 0, "i"), W, Xb);
  jx_t gfull = JX_CALL(jx_grad(jx_fn_new(loss_wx, 2, NULL), 0), W, jx_reshape(Xb, JX_SHAPE(8, 3)));
  CHECK_SAME(gp, gv, 1e-6);
  CHECK_SAME(jx_slice(gp, (int64_t[]){1, 0, 0}, (int64_t[]){2, 3, 2}, NULL), jx_expand_dims(gfull, 0), 1e-6);
  /* grad of pmap == grad of the named vmap */
  jx_t x = ARANGE(2, 3);
  jx_t g1 = JX_CALL(jx_grad(jx_fn_new(loss_of_pmap, 1, (void *)1), 0), x);
  jx_t g2 = JX_CALL(jx_grad(jx_fn_new(loss_of_pmap, 1, NULL), 0), x);
  CHECK_SAME(g1, g2, 1e-6);
  CHECK(jx_ok(g1));
  /* grad of pmap, known answer (f_sq): 2 x_k T + S per column */
  jx_t xs = ARANGE(2, 1);
  jx_t gs = JX_CALL(jx_grad(jx_fn_new(loss_named, 1, (void *)1), 0), xs);
  jx_t S = jx_sum(jx_mul(xs, xs)), T = jx_sum(xs);
  CHECK_SAME(gs, jx_add(jx_mul(jx_mul(xs, jx_scalar(2)), T), S), 1e-5);
  /* vmap of pmap: a loop over the outer axis */
  jx_fn *pf = jx_pmap(jx_fn_new(f_mix, 1, NULL), NULL, 0, "i");
  jx_t B = ARANGE(3, 2, 2, 3);
  jx_t vb = JX_CALL(jx_vmap(pf, NULL, 0), B);
  jx_t loop[3];
  for (int k = 0; k < 3; k++) loop[k] = JX_CALL(pf, jx_take(B, jx_scalar_int(k), 0));
  CHECK_SAME(vb, jx_stack(3, loop, 0), 1e-6);
  /* pmap of vmap: the inner (unnamed) vmap maps per example */
  jx_fn *pv = jx_pmap(jx_vmap(jx_fn_new(f_psum, 1, NULL), NULL, 0), NULL, 0, "i");
  jx_t C = ARANGE(2, 3, 2);
  CHECK_SAME(JX_CALL(pv, C), jx_broadcast_to(jx_sum_axes(C, 1, (int[]){0}, true), JX_SHAPE(2, 3, 2)), 1e-6);
  /* jit of pmap */
  CHECK_SAME(JX_CALL(jx_jit(pf), jx_take(B, jx_scalar_int(1), 0)), loop[1], 1e-6);
  /* collectives inside scan and cond, under pmap and vmap_named */
  jx_t Z = ARANGE(2, 4, 2);
  jx_fn *fs = jx_fn_new(f_scan, 1, NULL);
  jx_t sp = JX_CALL(jx_pmap(fs, NULL, 0, "i"), Z), sv = JX_CALL(jx_vmap_named(fs, NULL, 0, "i"), Z);
  CHECK_SAME(sp, sv, 1e-5);
  jx_t per_step = jx_sum_axes(Z, 1, (int[]){0}, false),
       carry = jx_zeros(JX_F32, 1, (int64_t[]){2}); /* [4, 2] */
  jx_t ysum = carry;
  for (int t = 0; t < 4; t++) { /* the carries after each step, and the sum of the ys */
    carry = jx_add(carry, jx_take(per_step, jx_scalar_int(t), 0));
    ysum = jx_add(ysum, jx_mul(carry, jx_scalar(2)));
  }
  jx_t want = jx_add(carry, ysum);
  CHECK_SAME(jx_take(sp, jx_scalar_int(0), 0), want, 1e-5);
  jx_fn *fc = jx_fn_new(f_cond, 1, NULL);
  CHECK_SAME(JX_CALL(jx_pmap(fc, NULL, 0, "i"), Z), JX_CALL(jx_vmap_named(fc, NULL, 0, "i"), Z), 1e-6);
  jx_t Zn = jx_neg(Z);
  CHECK_SAME(JX_CALL(jx_pmap(fc, NULL, 0, "i"), Zn), JX_CALL(jx_vmap_named(fc, NULL, 0, "i"), Zn), 1e-6);
  jx_fn *fw = jx_fn_new(f_while, 1, NULL);
  jx_t wp = JX_CALL(jx_pmap(fw, NULL, 0, "i"), Z);
  CHECK_SAME(wp, JX_CALL(jx_vmap_named(fw, NULL, 0, "i"), Z), 1e-6);
  jx_t wv = Z; /* by hand: x_i + sum_j x_j, three times */
  for (int t = 0; t < 3; t++) wv = jx_add(wv, jx_sum_axes(wv, 1, (int[]){0}, true));
  CHECK_SAME(wp, wv, 1e-4);
  /* jit inside the named vmap */
  jx_fn *jm = jx_jit(jx_fn_new(f_mix, 1, NULL));
  CHECK_SAME(JX_CALL(jx_vmap_named(jm, NULL, 0, "i"), ARANGE(2, 2, 3)),
             JX_CALL(jx_vmap_named(jx_fn_new(f_mix, 1, NULL), NULL, 0, "i"), ARANGE(2, 2, 3)), 1e-6);
  jx_pool_pop();
}

/* ------------------------------------------------------------- shard_map */
/* tensor parallel MLP layer pair: W1 split by columns, W2 by rows over
 * `model`; each device's partial product summed over `model` */
static jx_t mlp_tp(const jx_t *a, void *u) {
  (void)u;
  jx_t h = jx_tanh(jx_matmul(a[0], a[1]));
  return jx_psum(jx_matmul(h, a[2]), "model");
}
static jx_t mlp_full(const jx_t *a, void *u) {
  (void)u;
  return jx_matmul(jx_tanh(jx_matmul(a[0], a[1])), a[2]);
}
/* 1-D: each block's column sums, summed over `data`, and the block index */
static jx_t colsum(const jx_t *a, void *u) {
  (void)u;
  jx_t s = jx_psum(jx_sum_axes(a[0], 1, (int[]){0}, true), "data");
  return JX_TUPLE(s, jx_add(jx_mul(a[0], jx_scalar(0)), jx_astype(jx_axis_index("data"), JX_F32)));
}

static jx_t sum_of(const jx_t *a, void *u) { return jx_sum(jx_call(u, a)); }

static void test_shard_map(void) {
  jx_pool_push();
  jx_set_cpu_devices(4);
  jx_mesh *mesh = jx_mesh_new(2, (int[]){2, 2}, (const char *[]){"data", "model"});
  jx_t x = ARANGE(6, 5), W1 = ARANGE(5, 8), W2 = ARANGE(8, 3);
  jx_fn *sm =
      jx_shard_map(jx_fn_new(mlp_tp, 3, NULL), mesh, (const char *[]){"data,", ",model", "model,"}, "data,");
  jx_t want = JX_CALL(jx_fn_new(mlp_full, 3, NULL), x, W1, W2);
  CHECK_SAME(JX_CALL(sm, x, W1, W2), want, 1e-5);
  CHECK_SAME(JX_CALL(sm, x, W1, W2), want, 1e-5); /* again: compiled once */
  /* 1-D mesh over all 4 devices */
  jx_mesh *m1 = jx_mesh_new(1, (int[]){4}, (const char *[]){"data"});
  jx_t X = ARANGE(8, 3);
  jx_t r = JX_CALL(jx_shard_map(jx_fn_new(colsum, 1, NULL), m1, (const char *[]){"data"}, "data"), X);
  CHECK(jx_ok(r));
  if (jx_ok(r)) {
    jx_t tot = jx_sum_axes(X, 1, (int[]){0}, true);
    CHECK_SAME(jx_at(r, 0), jx_broadcast_to(tot, JX_SHAPE(4, 3)), 1e-5);
    jx_t idx = jx_broadcast_to(jx_reshape(jx_arange(JX_F32, 0, 4, 1), JX_SHAPE(4, 1, 1)), JX_SHAPE(4, 2, 3));
    CHECK_SAME(jx_at(r, 1), jx_reshape(idx, JX_SHAPE(8, 3)), 0);
  }
  /* under jit, vmap and grad: the nested named vmaps it equals */
  CHECK_SAME(JX_CALL(jx_jit(sm), x, W1, W2), want, 1e-5);
  jx_t xs = ARANGE(3, 6, 5);
  jx_t loop[3];
  for (int k = 0; k < 3; k++) loop[k] = JX_CALL(sm, jx_take(xs, jx_scalar_int(k), 0), W1, W2);
  CHECK_SAME(JX_CALL(jx_vmap(sm, (int[]){0, JX_NONE, JX_NONE}, 0), xs, W1, W2), jx_stack(3, loop, 0), 1e-5);
  jx_fn *lsm = jx_fn_new(sum_of, 3, sm), *lfull = jx_fn_new(sum_of, 3, jx_fn_new(mlp_full, 3, NULL));
  CHECK_SAME(JX_CALL(jx_grad(lsm, 1), x, W1, W2), JX_CALL(jx_grad(lfull, 1), x, W1, W2), 1e-5);
  jx_t rj = JX_CALL(jx_jit(jx_shard_map(jx_fn_new(colsum, 1, NULL), m1, (const char *[]){"data"}, "data")),
                    ARANGE(8, 3));
  CHECK_SAME(jx_ok(rj) ? jx_at(rj, 1) : rj, jx_ok(r) ? jx_at(r, 1) : r, 0);
  /* errors */
  EXPECT_ERROR(JX_CALL(sm, ARANGE(5, 5), W1, W2), "shard_map", "argument 0", "does not split evenly",
               "'data'");
  jx_mesh *m3 = jx_mesh_new(1, (int[]){3}, (const char *[]){"data"});
  EXPECT_ERROR(JX_CALL(jx_shard_map(jx_fn_new(colsum, 1, NULL), m3, (const char *[]){"data"}, "data"), X),
               "shard_map", "3 devices", "4 local devices");
  EXPECT_ERROR(JX_CALL(jx_shard_map(jx_fn_new(colsum, 1, NULL), m1, (const char *[]){"batch"}, "data"), X),
               "shard_map", "'batch'", "not a mesh axis");
  jx_mesh *bad = jx_mesh_new(2, (int[]){2, 2}, (const char *[]){"a", "a"});
  EXPECT_ERROR(JX_CALL(jx_shard_map(jx_fn_new(colsum, 1, NULL), bad, NULL, NULL), X), "mesh", "twice");
  jx_mesh_free(bad), jx_mesh_free(m3), jx_mesh_free(m1), jx_mesh_free(mesh);
  jx_pool_pop();
}

/* ----------------------------------------------------------------- faults */
typedef struct {
  int mode;
} fault_ctx;

static jx_t psum_of(jx_t x, int64_t size) {
  jx_params pa;
  jx_params_init(&pa, JX_PK_COLL);
  memcpy(pa.coll.names[0], "i", 2);
  pa.coll.nnames = 1, pa.coll.size = size;
  memset(pa.coll.perm, -1, sizeof pa.coll.perm);
  return jx_bind1(JX_P_psum, 1, &x, &pa);
}

/* per device: a program that differs (the rendezvous must notice) */
static jx_t faulty_body(int d, void *u) {
  fault_ctx *c = u;
  switch (c->mode) {
    case 0: return psum_of(jx_ones(JX_F32, 1, (int64_t[]){d == 0 ? 2 : 3}), 2);    /* shapes differ */
    case 1: return d == 0 ? psum_of(jx_ones(JX_F32, 1, (int64_t[]){2}), 2) : NULL; /* 1 never comes */
    case 2: /* device 1 fails before its psum: device 0 must not wait forever */
      return d == 1 ? jx_error_new("device one broke") : psum_of(jx_ones(JX_F32, 1, (int64_t[]){2}), 2);
    default: { /* two psums on 0, one on 1 */
      jx_t r = psum_of(jx_ones(JX_F32, 1, (int64_t[]){2}), 2);
      return d == 0 && jx_ok(r) ? psum_of(r, 2) : r;
    }
  }
}

static jx_t faulty(int d, void *u) { /* NULL or the error */
  jx_t r = faulty_body(d, u);
  return jx_ok(r) ? NULL : r;
}

static jx_t check_run(int mode) {
  fault_ctx c = {mode};
  char names[1][JX_AXIS_NAME_CAP] = {"i"};
  jx_t err = jx_run_devices(1, (int64_t[]){2}, names, false, faulty, &c);
  return err ? err : jx_scalar(0);
}

static void test_faults(void) {
  jx_pool_push();
  bool q = jx_errors_quiet(true);
  EXPECT_ERROR(check_run(0), "psum over axis 'i'", "f32[2]", "f32[3]");
  EXPECT_ERROR(check_run(1), "psum over axis 'i'", "device 1 finished");
  EXPECT_ERROR(check_run(2), "device one broke");
  EXPECT_ERROR(check_run(3), "psum over axis 'i'", "device 1 finished");
  jx_errors_quiet(q);
  /* a collective outside any device group */
  EXPECT_ERROR(psum_of(jx_ones(JX_F32, 0, NULL), 1), "psum over axis 'i'", "not bound");
  jx_pool_pop();
}

/* JX_CPU_DEVICES is read at the first use; jx_set_cpu_devices(0) reads it again */
static void test_device_env(void) {
  setenv("JX_CPU_DEVICES", "3", 1);
  CHECK(jx_local_device_count() == 3 && jx_device_count() == 3);
  CHECK(jx_set_cpu_devices(2) == NULL && jx_local_device_count() == 2);
  CHECK(jx_set_cpu_devices(0) == NULL && jx_local_device_count() == 3);
  setenv("JX_CPU_DEVICES", "lots", 1); /* not a count: the default, 1 */
  CHECK(jx_set_cpu_devices(0) == NULL && jx_local_device_count() == 1);
  unsetenv("JX_CPU_DEVICES");
  CHECK(jx_set_cpu_devices(-5) == NULL && jx_local_device_count() == 1);
}

int main(void) {
  test_device_env(); /* first: before anything reads the device count */
  check_private_cache("pmap");
  test_vmap_named_semantics();
  test_vmap_named_more();
  test_vmap_named_grad();
  test_pmap_matches_vmap(1);
  test_pmap_matches_vmap(2);
  test_pmap_matches_vmap(3);
  test_pmap_basics();
  test_inplace_collectives();
  test_compositions();
  test_shard_map();
  test_faults();
  jx_set_cpu_devices(0);
  CHECK(jx_local_device_count() >= 1);
  check_private_cache_remove();
  return check_report("pmap");
}
