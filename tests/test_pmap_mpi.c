/* pmap across processes (#17): tests/pmap_mpi_test.sh runs this under
 * `mpirun -np 2` (and 3) with JX_CPU_DEVICES=1 and 2; run alone (ctest) it
 * is a job of one process and checks the same things there.
 *
 * Every collective is run by a pmap over all G = processes x local devices
 * and compared, on every process, with the same body under jx_vmap_named
 * over G members computed in this process alone: each process's L outputs
 * must equal its rows [R*L, (R+1)*L) of that exactly. Then the faults:
 * processes that pass different shapes, and an unknown axis name, give an
 * error value on every process (no hang), after which pmap still works. */
#include "check.h"
#include "coll_ref.h"
#include "dist/dist.h"

#include <jx.h>

/* LeakSanitizer: MPI_Init's own allocations live until exit by design; the
 * slow unwinder finds MPI's frames so that only they are suppressed (as in
 * test_dist) */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
  return "leak:libmpi\nleak:libopen-pal\nleak:libopen-rte\nleak:libpmix\nleak:libhwloc\nleak:libevent\n";
}
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "fast_unwind_on_malloc=0"; }

static int R, N, L, G; /* process, processes, local devices, all devices */

static jx_t f_psum(const jx_t *a, void *u) { return jx_psum(a[0], u); }
static jx_t f_pmean(const jx_t *a, void *u) { return jx_pmean(a[0], u); }
static jx_t f_pmax(const jx_t *a, void *u) { return jx_pmax(a[0], u); }
static jx_t f_pmin(const jx_t *a, void *u) { return jx_pmin(a[0], u); }
static jx_t f_gather0(const jx_t *a, void *u) { return jx_all_gather(a[0], u, 0, false); }
static jx_t f_gather1(const jx_t *a, void *u) { return jx_all_gather(a[0], u, 1, false); }
static jx_t f_gather_tiled(const jx_t *a, void *u) { return jx_all_gather(a[0], u, 1, true); }
static jx_t f_scatter(const jx_t *a, void *u) { return jx_psum_scatter(a[0], u, 0, false); }
static jx_t f_scatter_tiled(const jx_t *a, void *u) { return jx_psum_scatter(a[0], u, 1, true); }
static jx_t f_a2a(const jx_t *a, void *u) { return jx_all_to_all(a[0], u, 0, 1, false); }
static jx_t f_a2a_tiled(const jx_t *a, void *u) { return jx_all_to_all(a[0], u, 1, 0, true); }
static jx_t f_shift(const jx_t *a, void *u) { /* a ring: j -> j+1 */
  int pairs[64][2];
  for (int j = 0; j < G; j++) pairs[j][0] = j, pairs[j][1] = (j + 1) % G;
  return jx_ppermute(a[0], u, G, (const int(*)[2])pairs);
}
static jx_t f_partial(const jx_t *a, void *u) { /* last -> 0 only: the others get zeros */
  return jx_ppermute(a[0], u, 1, (const int[][2]){{G - 1, 0}});
}
static jx_t f_index(const jx_t *a, void *u) {
  return jx_add(jx_astype(jx_axis_index(u), JX_F32), jx_mul(a[0], jx_scalar(0)));
}
/* several collectives and arithmetic in one program */
static jx_t f_mix(const jx_t *a, void *u) {
  jx_t x = jx_sub(a[0], jx_pmean(jx_mean(a[0]), u));
  x = jx_div(x, jx_add(jx_pmax(jx_max(jx_abs(x)), u), jx_scalar(1)));
  return jx_all_gather(jx_mul(x, jx_astype(jx_axis_index(u), JX_F32)), u, 0, true);
}

static double maxdiff(jx_t a, jx_t b) {
  if (!jx_ok(a) || !jx_ok(b) || jx_ndim(a) != jx_ndim(b)) return 1e300;
  for (int d = 0; d < jx_ndim(a); d++)
    if (jx_shape(a)[d] != jx_shape(b)[d]) return 1e300;
  return jx_item(jx_max(jx_abs(jx_sub(jx_astype(a, JX_F64), jx_astype(b, JX_F64)))));
}

/* rows [R*L, (R+1)*L) of x's leading axis */
static jx_t my_rows(jx_t x) {
  int64_t lo[JX_MAX_RANK] = {0}, hi[JX_MAX_RANK], st[JX_MAX_RANK];
  for (int i = 0; i < jx_ndim(x); i++) hi[i] = jx_shape(x)[i], st[i] = 1;
  lo[0] = (int64_t)R * L, hi[0] = (int64_t)(R + 1) * L;
  return jx_slice(x, lo, hi, st);
}

/* pmap(body) over the processes' devices == rows of vmap_named(body), to
 * tol (f32 sums may add in another order; moves and integers are exact) */
static void check_body(const char *name, jx_body body, jx_t global, double tol) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(body, 1, "i");
  jx_fn *v = jx_vmap_named(f, NULL, 0, "i"), *p = jx_pmap(f, NULL, 0, "i");
  jx_t want = my_rows(JX_CALL(v, global));
  jx_t got = JX_CALL(p, my_rows(global));
  double d = maxdiff(got, want);
  CHECKF(d <= tol, "%s: pmap over %d processes x %d devices differs from the named vmap by %g (%s)", name, N,
         L, d, jx_ok(got) ? (jx_ok(want) ? "" : jx_error(want)) : jx_error(got));
  jx_fn_free(p), jx_fn_free(v), jx_fn_free(f);
  jx_pool_pop();
}

static jx_t arange(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return jx_reshape(jx_sin(jx_arange(JX_F32, 1, (double)n + 1, 1)), ndim, shape);
}

static void check_collectives(void) {
  static const struct {
    const char *name;
    jx_body body;
    double tol;
  } bodies[] = {{"psum", f_psum, 1e-6},
                {"pmean", f_pmean, 1e-6},
                {"pmax", f_pmax, 0},
                {"pmin", f_pmin, 0},
                {"all_gather axis 0", f_gather0, 0},
                {"all_gather axis 1", f_gather1, 0},
                {"all_gather tiled", f_gather_tiled, 0},
                {"psum_scatter", f_scatter, 1e-6},
                {"psum_scatter tiled", f_scatter_tiled, 1e-6},
                {"all_to_all", f_a2a, 0},
                {"all_to_all tiled", f_a2a_tiled, 0},
                {"ppermute ring", f_shift, 0},
                {"ppermute partial", f_partial, 0},
                {"axis_index", f_index, 0},
                {"mix", f_mix, 1e-6}};
  jx_pool_push();
  /* per member f32[G, 2G]: dims that split over the G members */
  jx_t x = jx_retain(arange(JX_SHAPE(G, G, 2 * G)));
  jx_pool_pop();
  for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
    check_body(bodies[i].name, bodies[i].body, x, bodies[i].tol);
  /* integers: exact sums across processes */
  jx_pool_push();
  jx_t xi = jx_astype(jx_mul(x, jx_scalar(1000.0)), JX_I32);
  check_body("psum i32", f_psum, xi, 0);
  check_body("pmax i32", f_pmax, xi, 0);
  check_body("all_gather i32", f_gather0, xi, 0);
  jx_pool_pop();
  jx_release(x);
}

/* #19's dtypes across processes: psum, pmax, pmin of bf16, f16, i8 and u64
 * against tests/coll_ref.h's reference over the G members. The values keep
 * every bf16/f16 partial sum exact, so the result does not depend on the
 * order MPI combines the processes in; integers wrap (element 0: the
 * highest value plus G - 1 ones), u64 spans 2^63 (unsigned max/min), and
 * element 5 holds a NaN on member 1. */
enum { HE = 6 };
static uint64_t half_member(jx_dtype dt, int j, int e) {
  if (ref_is_half(dt)) {
    double v = e == 5 && j == 1 ? NAN : 0.25 * ((j * 5 + e * 3) % 13 - 6) + (e == 4 ? 64 : 0);
    return ref_round(dt, v);
  }
  uint64_t m = ref_mask(dt);
  if (e == 0) return j == 0 ? (ref_is_signed(dt) ? m >> 1 : m) : 1;
  return (0x9E3779B97F4A7C15ull * (uint64_t)(j * 7 + e + 1)) & m; /* bits all over the range */
}

static jx_t f_red3(const jx_t *a, void *u) {
  return JX_TUPLE(jx_psum(a[0], u), jx_pmax(a[0], u), jx_pmin(a[0], u));
}

static void check_new_dtypes(void) {
  static const jx_dtype dts[] = {JX_BF16, JX_F16, JX_I8, JX_U64};
  static const int ops[3] = {REF_SUM, REF_MAX, REF_MIN};
  for (size_t d = 0; d < sizeof dts / sizeof *dts; d++) {
    jx_pool_push();
    jx_dtype dt = dts[d];
    uint64_t in[64 * HE], want[3][HE], got[64 * HE];
    for (int j = 0; j < G; j++)
      for (int e = 0; e < HE; e++) in[j * HE + e] = half_member(dt, j, e);
    for (int k = 0; k < 3; k++)
      for (int e = 0; e < HE; e++) {
        want[k][e] = in[e];
        for (int j = 1; j < G; j++) want[k][e] = ref_op(ops[k], dt, want[k][e], in[j * HE + e]);
      }
    jx_t global = ref_array(dt, JX_SHAPE(G, HE), in);
    jx_fn *f = jx_fn_new(f_red3, 1, "i");
    jx_t r = JX_CALL(jx_pmap(f, NULL, 0, "i"), my_rows(global));
    jx_t v = JX_CALL(jx_vmap_named(f, NULL, 0, "i"), global); /* all G members in this process */
    CHECKF(jx_ok(r) && jx_ok(v), "%s over %d processes: %s", jx_dtype_name(dt), N,
           jx_error(jx_ok(r) ? v : r));
    for (int k = 0; k < 3 && jx_ok(r) && jx_ok(v); k++) {
      bool ok = ref_bits(jx_at(r, k), dt, got, (int64_t)L * HE);
      for (int i = 0; ok && i < L * HE; i++) ok = ref_same(dt, got[i], want[k][i % HE]);
      bool vok = ref_bits(my_rows(jx_at(v, k)), dt, got, (int64_t)L * HE);
      for (int i = 0; vok && i < L * HE; i++) vok = ref_same(dt, got[i], want[k][i % HE]);
      CHECKF(ok && vok,
             "%s %s over %d processes x %d devices differs from the reference (pmap %s, named vmap %s)",
             jx_dtype_name(dt),
             k == 0   ? "psum"
             : k == 1 ? "pmax"
                      : "pmin",
             N, L, ok ? "ok" : "differs", vok ? "ok" : "differs");
    }
    jx_pool_pop();
  }
}

/* element 0 of r, NaN when r is an error or empty */
static double first(jx_t r) {
  float v[64];
  return jx_ok(r) && jx_size(r) <= 64 && !jx_read(r, JX_F32, v, sizeof v) ? v[0] : NAN;
}

static jx_t f_sum_rows(const jx_t *a, void *u) { return jx_psum(jx_sum(a[0]), u); }
static jx_t f_unknown(const jx_t *a, void *u) {
  (void)u;
  return jx_psum(a[0], "nope");
}

/* Processes that disagree: an error value on every one of them (the
 * script sees every rank's count), then pmap works again. */
static void check_faults(void) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(f_sum_rows, 1, "i"), *p = jx_pmap(f, NULL, 0, "i");
  jx_t x = jx_ones(JX_F32, JX_SHAPE(L, 3 + R)); /* f32[L, 3] on rank 0, [L, 4] on rank 1 ... */
  jx_t r = JX_CALL(p, x);
  if (N > 1) {
    EXPECT_ERROR(r, "pmap", "differ");
  } else {
    CHECKF(first(r) == 3.0 * L, "one process: %s", jx_ok(r) ? "value" : jx_error(r));
  }
  /* an unknown axis: every process fails to trace, none waits for another */
  jx_fn *g = jx_fn_new(f_unknown, 1, NULL), *q = jx_pmap(g, NULL, 0, "i");
  EXPECT_ERROR(JX_CALL(q, jx_ones(JX_F32, JX_SHAPE(L, 2))), "nope");
  /* only the last process fails to trace (a scatter that does not split):
   * the others must not wait for it in the run */
  jx_fn *h = jx_fn_new(f_scatter_tiled, 1, "i"), *ph = jx_pmap(h, NULL, 0, "i");
  r = JX_CALL(ph, jx_ones(JX_F32, JX_SHAPE(L, 2, 2 * G + (R == N - 1 && N > 1))));
  if (N > 1 && R == N - 1)
    EXPECT_ERROR(r, "psum_scatter");
  else if (N > 1)
    EXPECT_ERROR(r, "pmap over axis 'i'", "differ");
  else
    CHECKF(first(r) == G, "one process: %s", jx_ok(r) ? "value" : jx_error(r));
  jx_fn_free(ph), jx_fn_free(h);
  /* and the job goes on: the same shapes everywhere now */
  r = JX_CALL(p, jx_ones(JX_F32, JX_SHAPE(L, 5)));
  CHECKF(first(r) == 5.0 * G, "after the errors: %s", jx_ok(r) ? "value" : jx_error(r));
  jx_fn_free(q), jx_fn_free(g), jx_fn_free(p), jx_fn_free(f);
  jx_pool_pop();
}

/* ---- shard_map over a mesh whose first axis ("data") spans the processes:
 * the data-parallel x tensor-parallel MLP of docs/API.md, with a psum over
 * "model" (in process), a pmean over "data" (across processes; with
 * several model groups per process they take turns on the communicator)
 * and an all_gather over "data". Against the unsharded arithmetic. */
static jx_t tp_out(const jx_t *a) {
  return jx_psum(jx_matmul(jx_tanh(jx_matmul(a[0], a[1])), a[2]), "model");
}
static jx_t f_tp(const jx_t *a, void *u) {
  (void)u;
  return tp_out(a);
}
static jx_t f_tp_loss(const jx_t *a, void *u) {
  (void)u;
  jx_t y = tp_out(a);
  return jx_pmean(jx_sum(jx_mul(y, y)), "data");
}
static jx_t f_tp_gather(const jx_t *a, void *u) {
  (void)u;
  return jx_all_gather(tp_out(a), "data", 0, true);
}

static void check_shard_mesh(int data, int model) {
  jx_pool_push();
  const int shape[2] = {data, model};
  jx_mesh *mesh = jx_mesh_new(2, shape, (const char *const[]){"data", "model"});
  const int64_t rows = 2, in = 6, hid = 4 * model, out = 3, per = (int64_t)data / N * rows;
  jx_t key = jx_random_key(11);
  jx_t X = jx_random_normal(jx_random_fold_in(key, 0), JX_F32, JX_SHAPE(data * rows, in));
  jx_t W1 = jx_random_normal(jx_random_fold_in(key, 1), JX_F32, JX_SHAPE(in, hid));
  jx_t W2 = jx_random_normal(jx_random_fold_in(key, 2), JX_F32, JX_SHAPE(hid, out));
  jx_t Y = jx_matmul(jx_tanh(jx_matmul(X, W1)), W2);
  int64_t lo[2] = {R * per, 0}, hi[2] = {(R + 1) * per, in}, st[2] = {1, 1};
  jx_t x = jx_slice(X, lo, hi, st); /* this process's rows */
  const char *const specs[3] = {"data,", ",model", "model,"};
  jx_t y = JX_CALL(jx_shard_map(jx_fn_new(f_tp, 3, NULL), mesh, specs, "data,"), x, W1, W2);
  int64_t ylo[2] = {R * per, 0}, yhi[2] = {(R + 1) * per, out};
  CHECKF(maxdiff(y, jx_slice(Y, ylo, yhi, st)) <= 1e-5, "shard_map across processes, mesh %dx%d: %s", data,
         model, jx_ok(y) ? "differs" : jx_error(y));
  /* the loss: the mean over the data blocks of each block's sum of squares */
  jx_t blocks = jx_reshape(jx_mul(Y, Y), JX_SHAPE(data, -1));
  jx_t want = jx_mean(jx_sum_axes(blocks, 1, (int[]){1}, false));
  jx_t l = JX_CALL(jx_shard_map(jx_fn_new(f_tp_loss, 3, NULL), mesh, specs, NULL), x, W1, W2);
  CHECKF(maxdiff(l, want) <= 1e-4, "shard_map pmean over 'data' across processes, mesh %dx%d: %s", data,
         model, jx_ok(l) ? "differs" : jx_error(l));
  jx_t g = JX_CALL(jx_shard_map(jx_fn_new(f_tp_gather, 3, NULL), mesh, specs, NULL), x, W1, W2);
  CHECKF(maxdiff(g, Y) <= 1e-5, "shard_map all_gather over 'data' across processes, mesh %dx%d: %s", data,
         model, jx_ok(g) ? "differs" : jx_error(g));
  jx_mesh_free(mesh);
  jx_pool_pop();
}

static void check_shard_map(void) {
  check_shard_mesh(N, L);     /* one data coordinate per process, L model groups */
  check_shard_mesh(N * L, 1); /* L data coordinates per process */
  if (N > 1) {                /* a mesh the processes' devices do not make */
    jx_pool_push();
    jx_mesh *mesh = jx_mesh_new(1, (const int[]){G + 1}, (const char *const[]){"data"});
    jx_t e = JX_CALL(
        jx_shard_map(jx_fn_new(f_tp, 3, NULL), mesh, (const char *const[]){"data,", NULL, NULL}, "data,"),
        jx_zeros(JX_F32, JX_SHAPE(G + 1, 6)), jx_zeros(JX_F32, JX_SHAPE(6, 4)),
        jx_zeros(JX_F32, JX_SHAPE(4, 3)));
    EXPECT_ERROR(e, "devices");
    jx_mesh_free(mesh);
    jx_pool_pop();
  }
}

int main(void) {
  check_verbose = getenv("JX_TEST_VERBOSE") != NULL;
  if (check_private_cache("pmap-mpi")) return 1;
  jx_t e = jx_distributed_init();
#ifdef JX_TEST_HAVE_MPI
  CHECKF(!e, "%s", jx_error(e));
#else
  EXPECT_ERROR(e, "without MPI");
#endif
  R = jx_process_index(), N = jx_process_count(), L = jx_local_device_count(), G = N * L;
  CHECK(jx_device_count() == G);
  if (G > 64) return fprintf(stderr, "test_pmap_mpi: at most 64 devices in all, got %d\n", G), 1;
  check_collectives();
  check_new_dtypes();
  check_faults();
  check_shard_map();
  char name[64];
  snprintf(name, sizeof name, "test_pmap_mpi rank %d of %d (%d devices)", R, N, L);
  int rc = check_report(name);
  check_private_cache_remove();
  return rc;
}
