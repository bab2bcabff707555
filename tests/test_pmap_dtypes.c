/* The collectives in #19's dtypes (bf16 f16 i8 u8 i16 u16 u64, and i32 for
 * its wrapping sum): psum, pmax, pmin, pmean, all_gather, psum_scatter,
 * all_to_all and ppermute over 2 and 4 in-process devices, under pmap,
 * jit(pmap), shard_map, jx_vmap_named and jit of it, against the reference
 * of tests/coll_ref.h computed here element by element: integer sums wrap
 * (i8 127 + 1 = -128, u8 255 + 1 = 0, u64 past 2^64), u64 max/min compare
 * unsigned (values above 2^63), bf16/f16 sums round to the type after each
 * member (a column where that differs from rounding once), a NaN
 * propagates through pmax/pmin; a named vmap (and jit of a pmap, staged as
 * one) gives the same bits as the devices. Then gradients in bf16/f16 through
 * psum and all_gather under pmap, and bool's psum still refused. */
#include "check.h"
#include "coll_ref.h"

#include <jx.h>

enum { K = 6, MAXN = 4, NOUT = 8 };

static const jx_dtype DTYPES[] = {JX_BF16, JX_F16, JX_I8, JX_U8, JX_I16, JX_U16, JX_U64, JX_I32};

/* member j's column c, before the rotation by row (see member_input) */
static uint64_t column(jx_dtype dt, int c, int j) {
  if (ref_is_half(dt)) {
    double e = dt == JX_BF16 ? 0x1p-8 : 0x1p-11; /* half an ulp of 1 */
    static const double v[K][MAXN] = {{0},
                                      {0},
                                      {3.5, -1.25, 100, 0.375},
                                      {0.1, 0.2, 0.3, 0.4},
                                      {1000, -999.5, 7.25, 0.001},
                                      {2, NAN, -1, 4}};
    /* col 0: 1 + e + e + e is 1 added member by member (each step a tie
     * to even), 1 + 4e rounded once; col 1: ties on the other side */
    double c0[MAXN] = {1, e, e, e}, c1[MAXN] = {1 + 2 * e, e, 3, -0.5};
    return ref_round(dt, c == 0 ? c0[j] : c == 1 ? c1[j] : v[c][j]);
  }
  uint64_t m = ref_mask(dt), top = (m >> 1) + 1;
  uint64_t hi = ref_is_signed(dt) ? m >> 1 : m, lo = ref_is_signed(dt) ? top : 0;
  const uint64_t v[K][MAXN] = {
      {hi, 1, 0, 0},        /* wraps to the lowest: 127 + 1 = -128, 255 + 1 = 0 */
      {lo, m, lo, 3},       /* the lowest - 1 wraps to the highest */
      {hi, hi, hi, hi},     /* several wraps */
      {top + 5, 3, m, top}, /* unsigned: above 2^(w-1), compared unsigned */
      {-7ull, 3, 9, -2ull}, /* negatives (signed) */
      {42, 0, 17, 99},
  };
  return v[c][j] & m;
}

/* member j's input: [n, K], row r the columns rotated by r */
static uint64_t member_input(jx_dtype dt, int j, int r, int c) { return column(dt, (c + r) % K, j); }

typedef struct {
  jx_dtype dt;
  int64_t count;
  uint64_t *bits;
} expect;

/* the expected outputs (global, leading axis the members) */
static void expected(jx_dtype dt, int n, expect *o) {
  int64_t per = (int64_t)n * K;
  static const int ops[3] = {REF_SUM, REF_MAX, REF_MIN};
  for (int k = 0; k < NOUT; k++) {
    o[k].dt = k == 3 && !ref_is_half(dt) ? JX_F32 : dt; /* an integer pmean divides in f32, as jnp */
    o[k].count = k == 4 ? n * per * n : k == 5 ? (int64_t)n * K : n * per;
    o[k].bits = calloc((size_t)o[k].count, sizeof(uint64_t));
  }
  for (int j = 0; j < n; j++)
    for (int r = 0; r < n; r++)
      for (int c = 0; c < K; c++) {
        int64_t at = ((int64_t)j * n + r) * K + c;
        for (int k = 0; k < 3; k++) { /* psum, pmax, pmin: member by member */
          uint64_t acc = member_input(dt, 0, r, c);
          for (int m = 1; m < n; m++) acc = ref_op(ops[k], dt, acc, member_input(dt, m, r, c));
          o[k].bits[at] = acc;
        }
        uint64_t s = o[0].bits[at];
        if (ref_is_half(dt)) { /* pmean: the sum divided in the type */
          o[3].bits[at] = ref_round(dt, (double)(ref_widen(dt, s) / (float)n));
        } else {
          float q = (ref_is_signed(dt) ? (float)ref_sval(dt, s) : (float)s) / (float)n;
          uint32_t u;
          memcpy(&u, &q, sizeof u);
          o[3].bits[at] = u;
        }
        for (int m = 0; m < n; m++) /* all_gather: every member's input */
          o[4].bits[(((int64_t)j * n + m) * n + r) * K + c] = member_input(dt, m, r, c);
        o[6].bits[at] = member_input(dt, r, j, c);               /* all_to_all: block j of member r */
        o[7].bits[at] = member_input(dt, (j + n - 1) % n, r, c); /* ppermute j -> j + 1 */
      }
  for (int j = 0; j < n; j++) /* psum_scatter: block j of the sum */
    for (int c = 0; c < K; c++) {
      uint64_t acc = member_input(dt, 0, j, c);
      for (int m = 1; m < n; m++) acc = ref_op(REF_SUM, dt, acc, member_input(dt, m, j, c));
      o[5].bits[(int64_t)j * K + c] = acc;
    }
}

static jx_t f_all(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0];
  int n = (int)jx_item(jx_axis_size("i")), pairs[MAXN][2];
  for (int j = 0; j < n; j++) pairs[j][0] = j, pairs[j][1] = (j + 1) % n;
  return JX_TUPLE(jx_psum(x, "i"), jx_pmax(x, "i"), jx_pmin(x, "i"), jx_pmean(x, "i"),
                  jx_all_gather(x, "i", 0, false), jx_psum_scatter(x, "i", 0, false),
                  jx_all_to_all(x, "i", 0, 0, false), jx_ppermute(x, "i", n, (const int(*)[2])pairs));
}

enum { M_PMAP, M_JIT_PMAP, M_SHARD_MAP, M_VMAP, M_JIT_VMAP, NMODES };
static const char *const mode_names[NMODES] = {"pmap", "jit(pmap)", "shard_map", "vmap_named",
                                               "jit(vmap_named)"};

static jx_t run(int mode, int n, jx_t X) {
  jx_fn *f = jx_fn_new(f_all, 1, NULL), *g;
  if (mode == M_SHARD_MAP) {
    jx_mesh *mesh = jx_mesh_new(1, (int[]){n}, (const char *[]){"i"});
    g = jx_shard_map(f, mesh, (const char *[]){"i"}, "i");
    jx_t r = JX_CALL(g, jx_reshape(X, JX_SHAPE((int64_t)n * n, K))); /* member j: rows [j n, j n + n) */
    jx_mesh_free(mesh);
    return r;
  }
  g = mode >= M_VMAP ? jx_vmap_named(f, NULL, 0, "i") : jx_pmap(f, NULL, 0, "i");
  if (mode == M_JIT_PMAP || mode == M_JIT_VMAP) g = jx_jit(g);
  return JX_CALL(g, X);
}

static const char *const out_names[NOUT] = {"psum",       "pmax",         "pmin",       "pmean",
                                            "all_gather", "psum_scatter", "all_to_all", "ppermute"};

static void compare(jx_t got, const expect *e, const char *what, int n, int mode, int k) {
  uint64_t *g = calloc((size_t)e->count, sizeof(uint64_t));
  bool ok = ref_bits(got, e->dt, g, e->count);
  CHECKF(ok, "%s over %d (%s) %s: %s", what, n, mode_names[mode], out_names[k],
         jx_ok(got) ? "wrong dtype or size" : jx_error(got));
  int64_t bad = -1;
  for (int64_t i = 0; ok && i < e->count && bad < 0; i++)
    if (!ref_same(e->dt, g[i], e->bits[i])) bad = i;
  CHECKF(bad < 0, "%s over %d (%s) %s: element %lld is %#llx, expected %#llx", what, n, mode_names[mode],
         out_names[k], (long long)bad, bad < 0 ? 0ull : (unsigned long long)g[bad],
         bad < 0 ? 0ull : (unsigned long long)e->bits[bad]);
  free(g);
}

static void check_dtype(jx_dtype dt, int n) {
  jx_pool_push();
  int64_t count = (int64_t)n * n * K;
  uint64_t *in = malloc(sizeof(uint64_t) * (size_t)count);
  for (int j = 0; j < n; j++)
    for (int r = 0; r < n; r++)
      for (int c = 0; c < K; c++) in[((int64_t)j * n + r) * K + c] = member_input(dt, j, r, c);
  jx_t X = ref_array(dt, JX_SHAPE(n, n, K), in);
  expect e[NOUT];
  expected(dt, n, e);
  const char *what = jx_dtype_name(dt);
  for (int mode = 0; mode < NMODES; mode++) {
    jx_pool_push();
    jx_t r = run(mode, n, X);
    CHECKF(jx_ok(r), "%s over %d (%s): %s", what, n, mode_names[mode], jx_error(r));
    for (int k = 0; jx_ok(r) && k < NOUT; k++) compare(jx_at(r, k), &e[k], what, n, mode, k);
    if (ref_is_half(dt) && n == 4 && jx_ok(r)) { /* element [0][0][0] of psum: 1 + 3 half-ulps */
      uint64_t s0 = 0, once = 0;
      jx_t corner = jx_slice(jx_at(r, 0), (int64_t[]){0, 0, 0}, (int64_t[]){1, 1, 1}, NULL);
      CHECK(ref_bits(corner, dt, &s0, 1));
      CHECKF(s0 == ref_round(dt, 1), "%s %s: 1 + 3 half-ulps summed to %#llx", what, mode_names[mode],
             (unsigned long long)s0);
      /* the premise: rounding once (jx's reduce_sum: f32, then the type) gives 1 + 2 ulps */
      double ulp = dt == JX_BF16 ? 0x1p-7 : 0x1p-10;
      CHECK(ref_bits(jx_sum_axes(jx_slice(X, (int64_t[]){0, 0, 0}, (int64_t[]){4, 1, 1}, NULL), 1, (int[]){0},
                                 false),
                     dt, &once, 1) &&
            once == ref_round(dt, 1 + 2 * ulp));
    }
    jx_pool_pop();
  }
  for (int k = 0; k < NOUT; k++) free(e[k].bits);
  free(in);
  jx_pool_pop();
}

/* the reference's own premises, spelled out */
static void check_reference(void) {
  CHECK(column(JX_I8, 0, 0) == 0x7f && ref_op(REF_SUM, JX_I8, 0x7f, 1) == 0x80); /* 127 + 1 = -128 */
  CHECK(ref_op(REF_SUM, JX_U8, 0xff, 1) == 0);
  CHECK(ref_op(REF_SUM, JX_U64, ~0ull, 2) == 1);
  CHECK(ref_op(REF_MAX, JX_U64, 3, (1ull << 63) + 5) == (1ull << 63) + 5);
  CHECK(ref_op(REF_MAX, JX_I64, 3, (1ull << 63) + 5) == 3);
  CHECK(ref_round(JX_BF16, 1.0) == 0x3f80 && ref_round(JX_F16, 1.0) == 0x3c00);
  CHECK(ref_round(JX_BF16, 1 + 0x1p-8) == 0x3f80 && ref_round(JX_BF16, 1 + 3 * 0x1p-8) == 0x3f82);
  CHECK(ref_round(JX_F16, 1 + 3 * 0x1p-11) == 0x3c02 && ref_widen(JX_F16, 0x3c02) == 1 + 0x1p-9f);
  CHECK(ref_nan(JX_BF16, ref_op(REF_MAX, JX_BF16, ref_round(JX_BF16, 2), ref_round(JX_BF16, NAN))));
}

/* d/dx of sum over members of psum(x^2) (and of all_gather(x^2)) is 2 n x,
 * exact in the 16-bit type for these x */
static jx_t g_psum(const jx_t *a, void *u) {
  (void)u;
  return jx_psum(jx_mul(a[0], a[0]), "i");
}
static jx_t g_gather(const jx_t *a, void *u) {
  (void)u;
  return jx_all_gather(jx_mul(a[0], a[0]), "i", 0, false);
}
static jx_t loss(const jx_t *a, void *u) { return jx_sum(jx_astype(jx_call(u, a), JX_F32)); }

static void check_grads(void) {
  for (int h = 0; h < 2; h++)
    for (int b = 0; b < 2; b++) {
      jx_pool_push();
      jx_dtype dt = h ? JX_F16 : JX_BF16;
      int n = 2;
      jx_t x = jx_astype(jx_array(JX_F32, JX_SHAPE(n, 3), (float[]){0.5f, -1.5f, 3, 0.25f, 2, -0.75f}), dt);
      jx_fn *p = jx_pmap(jx_fn_new(b ? g_gather : g_psum, 1, NULL), NULL, 0, "i");
      jx_fn *l = jx_fn_new(loss, 1, p);
      jx_t want = jx_mul(x, jx_astype(jx_scalar_int(2 * n), dt));
      for (int jit = 0; jit < 2; jit++) {
        jx_fn *gf = jx_grad(l, 0);
        jx_t g = JX_CALL(jit ? jx_jit(gf) : gf, x);
        uint64_t gb[6], wb[6];
        bool ok = ref_bits(g, dt, gb, 6) && ref_bits(want, dt, wb, 6) && !memcmp(gb, wb, sizeof gb);
        CHECKF(ok, "grad through %s in %s%s: %s", b ? "all_gather" : "psum", jx_dtype_name(dt),
               jit ? " (jit)" : "", jx_ok(g) ? "differs" : jx_error(g));
      }
      jx_pool_pop();
    }
}

static jx_t f_psum(const jx_t *a, void *u) {
  (void)u;
  return jx_psum(a[0], "i");
}
static jx_t f_psum_second(const jx_t *a, void *u) { /* a[1] unmapped: every member holds it */
  (void)u, (void)a[0];
  return jx_psum(a[1], "i");
}

/* a named vmap's psum in bf16/f16 with the members along dim 1, and of a
 * value it does not map (n copies, added one after another) */
static void check_vmap_layouts(void) {
  for (int h = 0; h < 2; h++) {
    jx_pool_push();
    jx_dtype dt = h ? JX_F16 : JX_BF16;
    enum { N = 6 }; /* 6 copies of 1 + ulp: 6 + 4 ulps added one by one, 6 + 8 ulps rounded once */
    uint64_t in[N * K], want[K], rep[K], got[N * K];
    for (int j = 0; j < N; j++)
      for (int c = 0; c < K; c++) in[j * K + c] = column(dt, c, j % MAXN);
    for (int c = 0; c < K; c++) {
      want[c] = in[c], rep[c] = in[c];
      for (int j = 1; j < N; j++)
        want[c] = ref_op(REF_SUM, dt, want[c], in[j * K + c]), rep[c] = ref_op(REF_SUM, dt, rep[c], in[c]);
    }
    CHECK(rep[1] != ref_round(dt, 6 * ref_widen(dt, in[1]))); /* the premise */
    jx_t X = ref_array(dt, JX_SHAPE(N, K), in);
    jx_t r = JX_CALL(jx_vmap_named(jx_fn_new(f_psum, 1, NULL), (int[]){1}, 0, "i"), jx_transpose(X, NULL));
    bool ok = ref_bits(r, dt, got, N * K);
    for (int i = 0; ok && i < N * K; i++) ok = ref_same(dt, got[i], want[i % K]);
    CHECKF(ok, "%s: named vmap psum over dim 1: %s", jx_dtype_name(dt), jx_ok(r) ? "differs" : jx_error(r));
    jx_t row0 = jx_reshape(jx_slice(X, (int64_t[]){0, 0}, (int64_t[]){1, K}, NULL), JX_SHAPE(K));
    r = JX_CALL(jx_vmap_named(jx_fn_new(f_psum_second, 2, NULL), (int[]){0, JX_NONE}, 0, "i"), X, row0);
    ok = ref_bits(r, dt, got, N * K);
    for (int i = 0; ok && i < N * K; i++) ok = ref_same(dt, got[i], rep[i % K]);
    CHECKF(ok, "%s: named vmap psum of an unmapped value: %s", jx_dtype_name(dt),
           jx_ok(r) ? "differs" : jx_error(r));
    jx_pool_pop();
  }
}

int main(void) {
  check_verbose = getenv("JX_TEST_VERBOSE") != NULL;
  if (check_private_cache("pmap-dtypes")) return 1;
  check_reference();
  for (int n = 2; n <= 4; n += 2) {
    CHECK(jx_set_cpu_devices(n) == NULL);
    for (size_t d = 0; d < sizeof DTYPES / sizeof *DTYPES; d++) check_dtype(DTYPES[d], n);
  }
  jx_set_cpu_devices(2);
  check_vmap_layouts();
  check_grads();
  /* bool: still no sum (JAX's psum converts bools to i32 first) */
  jx_pool_push();
  EXPECT_ERROR(JX_CALL(jx_pmap(jx_fn_new(f_psum, 1, NULL), NULL, 0, "i"), jx_ones(JX_BOOL, JX_SHAPE(2, 3))),
               "psum", "sum of bool");
  jx_pool_pop();
  jx_set_cpu_devices(0);
  check_private_cache_remove();
  return check_report("pmap_dtypes");
}
