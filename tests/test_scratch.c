/* The interpreters' scratch arenas (core/scratch.c, issue #15):
 *   - the arena itself: alignment, mark/release in stack order, growth
 *     into chunks that a release frees, nested scopes that leave the
 *     outer one's data intact, sizes that overflow, an allocation failure
 *     that leaves the arena as it was, one arena per thread;
 *   - nested transformations over wide equations (grad of grad of grad,
 *     vmap of jit, jit of grad of grad, grad of jit), where each trace's
 *     steps allocate from its own arena while the traces around it hold
 *     theirs: every result against its closed form;
 *   - many inputs: a function of 300 arguments under grad, vmap, jit;
 *   - out of memory: every large allocation of a wide workload failed in
 *     turn gives an error value or the right result, never a crash, and
 *     leaves nothing allocated behind.
 * The jit's on-disk cache goes to a private temporary directory. */
#include "check.h"
#include "core/alloc.h"

#include <jx.h>

#include <pthread.h>
#include <stdalign.h>
#include <stdint.h>

void jx_buffer_cache_trim(void);

/* ----------------------------------------------------- the test allocator */
/* Counts live blocks; with fail_big > 0, refuses the fail_big-th block of
 * BIG bytes or more (scratch chunks are, the inline blocks are not). */
enum { BIG = 4 * JX_SCRATCH_INLINE };
static jx_alloc_fn base_alloc;
static void *base_ud;
static long live, big_count, fail_big, refused;
static bool fail_all;

static void *test_alloc(void *ud, void *p, size_t n) {
  (void)ud;
  if (n == 0) {
    if (p) __atomic_fetch_sub(&live, 1, __ATOMIC_RELAXED);
    return base_alloc(base_ud, p, 0);
  }
  bool fail = fail_all;
  if (n >= BIG) fail |= __atomic_add_fetch(&big_count, 1, __ATOMIC_RELAXED) == fail_big;
  if (fail) {
    refused++;
    return NULL;
  }
  void *q = base_alloc(base_ud, p, n);
  if (q && !p) __atomic_fetch_add(&live, 1, __ATOMIC_RELAXED);
  return q;
}

/* --------------------------------------------------------------- the arena */
static bool aligned(const void *p) { return (uintptr_t)p % alignof(max_align_t) == 0; }

static void fill(unsigned char *p, size_t n, unsigned char v) { memset(p, v, n); }
static bool holds(const unsigned char *p, size_t n, unsigned char v) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != v) return false;
  return true;
}

static void test_arena_basics(void) {
  jx_scratch s;
  jx_scratch_init(&s);
  jx_scratch_mark m0 = jx_scratch_save(&s);
  unsigned char *a = jx_scratch_alloc(&s, 3), *b = jx_scratch_alloc(&s, 40);
  CHECK(a && b && aligned(a) && aligned(b) && b >= a + 3);
  CHECK(jx_scratch_alloc(&s, 0) != NULL); /* NULL only means failure */
  /* release, then the same requests get the same memory */
  jx_scratch_release(&s, m0);
  CHECK(jx_scratch_alloc(&s, 3) == a && jx_scratch_alloc(&s, 40) == b);
  jx_scratch_release(&s, m0);
  /* zeros are zeros, even over memory used before */
  fill(jx_scratch_alloc(&s, 256), 256, 0xAB);
  jx_scratch_release(&s, m0);
  unsigned char *z = jx_scratch_zeros(&s, 64, 4);
  CHECK(z && holds(z, 256, 0));
  /* sizes that overflow: NULL, and the arena as it was */
  jx_scratch_mark before = jx_scratch_save(&s);
  CHECK(!jx_scratch_array(&s, SIZE_MAX / 2, 4) && !jx_scratch_alloc(&s, SIZE_MAX - 3));
  CHECK(!JX_SCRATCH(&s, double, -1)); /* a negative count */
  jx_scratch_mark after = jx_scratch_save(&s);
  CHECK(before.chunk == after.chunk && before.used == after.used);
  jx_scratch_clear(&s);
}

/* Growth: many blocks, through several chunks, each keeps its bytes; a
 * release frees every chunk made since its mark. */
static void test_arena_growth(void) {
  long live0 = live;
  jx_scratch s;
  jx_scratch_init(&s);
  enum { N = 400 };
  unsigned char *blocks[N];
  size_t sizes[N];
  for (int i = 0; i < N; i++) {
    sizes[i] = (size_t)(i * 37 % 1000) + 1;
    blocks[i] = jx_scratch_alloc(&s, sizes[i]);
    CHECK(blocks[i] && aligned(blocks[i]));
    if (blocks[i]) fill(blocks[i], sizes[i], (unsigned char)i);
  }
  CHECKF(live > live0, "400 blocks of up to 1,000 bytes made no chunk (%ld live)", live - live0);
  unsigned char *huge = jx_scratch_alloc(&s, (size_t)1 << 20); /* larger than any chunk so far */
  CHECK(huge && aligned(huge));
  if (huge) fill(huge, (size_t)1 << 20, 0x5A);
  bool intact = true;
  for (int i = 0; i < N; i++) intact &= blocks[i] && holds(blocks[i], sizes[i], (unsigned char)i);
  CHECK(intact && (!huge || holds(huge, (size_t)1 << 20, 0x5A)));
  jx_scratch_clear(&s);
  CHECKF(live == live0, "a cleared arena holds %ld blocks", live - live0);
}

/* Nested scopes: an inner one grows and releases; the outer one's blocks
 * (inline and in a chunk) keep their bytes, and what the outer scope
 * allocates next is where the inner one's was. */
static void test_arena_nested(void) {
  long live0 = live;
  jx_scratch s;
  jx_scratch_init(&s);
  jx_scratch_mark outer = jx_scratch_save(&s);
  unsigned char *o1 = jx_scratch_alloc(&s, 1000);
  unsigned char *o2 = jx_scratch_alloc(&s, 6000); /* does not fit inline: a chunk */
  CHECK(o1 && o2);
  fill(o1, 1000, 1), fill(o2, 6000, 2);
  long live1 = live;
  for (int depth = 0; depth < 3; depth++) {
    jx_scratch_mark inner = jx_scratch_save(&s);
    unsigned char *i1 = jx_scratch_alloc(&s, 3000), *i2 = jx_scratch_alloc(&s, 100000);
    CHECK(i1 && i2);
    if (i1 && i2) fill(i1, 3000, 3), fill(i2, 100000, 4);
    jx_scratch_release(&s, inner);
    CHECKF(live == live1, "depth %d: the inner scope left %ld chunks", depth, live - live1);
    CHECK(jx_scratch_alloc(&s, 3000) == i1);
    jx_scratch_release(&s, inner);
  }
  CHECK(holds(o1, 1000, 1) && holds(o2, 6000, 2));
  jx_scratch_release(&s, outer);
  CHECK(jx_scratch_alloc(&s, 1000) == o1);
  jx_scratch_release(&s, outer);
  CHECKF(live == live0, "released to its first mark, the arena holds %ld blocks", live - live0);
}

/* A chunk the allocator refuses: NULL, the arena unchanged and usable;
 * then the same request succeeds. */
static void test_arena_oom(void) {
  jx_scratch s;
  jx_scratch_init(&s);
  unsigned char *a = jx_scratch_alloc(&s, 100);
  fill(a, 100, 7);
  jx_scratch_mark m = jx_scratch_save(&s);
  fail_all = true;
  void *big = jx_scratch_alloc(&s, 50000);
  void *small = jx_scratch_alloc(&s, 64); /* still fits inline */
  fail_all = false;
  jx_scratch_mark m2 = jx_scratch_save(&s);
  CHECK(!big && small && m2.chunk == m.chunk);
  CHECK(holds(a, 100, 7));
  big = jx_scratch_alloc(&s, 50000);
  CHECK(big != NULL);
  jx_scratch_clear(&s);
}

/* Each thread has its own arena (jx_scratch_here). */
static void *thread_arena(void *u) {
  jx_scratch *s = jx_scratch_here();
  jx_scratch_mark m = jx_scratch_save(s);
  unsigned char *p = jx_scratch_alloc(s, 2000);
  fill(p, 2000, 9);
  *(jx_scratch **)u = s;
  jx_scratch_release(s, m);
  return NULL;
}

static void test_arena_threads(void) {
  jx_scratch *mine = jx_scratch_here(), *theirs = NULL;
  jx_scratch_mark m = jx_scratch_save(mine);
  unsigned char *p = jx_scratch_alloc(mine, 2000);
  fill(p, 2000, 8);
  pthread_t th;
  CHECK(pthread_create(&th, NULL, thread_arena, &theirs) == 0);
  pthread_join(th, NULL);
  CHECK(theirs && theirs != mine && holds(p, 2000, 8));
  jx_scratch_release(mine, m);
}

/* ------------------------------------------ nested transformations, wide */
enum { W = 300 };
#define F64(v) jx_scalar_of(JX_F64, (v))

/* f(x) = sum_k sin(k x) / k^2 for k = 1..W, through one concatenate of W
 * arrays; f' = sum cos(k x) / k, f'' = -sum sin(k x), f''' = -sum k cos(k x) */
static jx_t wide_f(const jx_t *a, void *u) {
  (void)u;
  jx_t terms[W];
  for (int k = 1; k <= W; k++)
    terms[k - 1] = jx_reshape(jx_div(jx_sin(jx_mul(a[0], F64(k))), F64((double)k * k)), JX_SHAPE(1));
  return jx_sum(jx_concatenate(W, terms, 0));
}

static double wide_f_deriv(int order, double x) {
  double s = 0;
  for (int k = 1; k <= W; k++) {
    switch (order) {
      case 0: s += sin(k * x) / ((double)k * k); break;
      case 1: s += cos(k * x) / k; break;
      case 2: s -= sin(k * x); break;
      default: s -= k * cos(k * x); break;
    }
  }
  return s;
}

static void check_scalar(jx_t r, double want, const char *what) {
  CHECKF(jx_ok(r) && jx_size(r) == 1, "%s: %s", what, jx_error(r));
  if (jx_ok(r) && jx_size(r) == 1)
    CHECKF(check_close(jx_item(r), want, 1e-11, 1e-11), "%s: %.17g, want %.17g", what, jx_item(r), want);
}

static void check_vector(jx_t r, int n, const double *want, const char *what) {
  double got[16];
  CHECKF(jx_ok(r) && jx_size(r) == n && n <= 16, "%s: %s", what, jx_ok(r) ? "wrong size" : jx_error(r));
  if (!jx_ok(r) || jx_size(r) != n || n > 16) return;
  CHECK(jx_read(r, JX_F64, got, sizeof got) == 0);
  for (int i = 0; i < n; i++)
    CHECKF(check_close(got[i], want[i], 1e-11, 1e-11), "%s[%d]: %.17g, want %.17g", what, i, got[i], want[i]);
}

static void test_nested_wide(void) {
  jx_pool_push();
  const double x0 = 0.37;
  jx_t x = F64(x0);
  jx_fn *f = jx_fn_new(wide_f, 1, NULL), *g = jx_grad(f, 0), *gg = jx_grad(g, 0), *ggg = jx_grad(gg, 0);
  check_scalar(jx_call(f, &x), wide_f_deriv(0, x0), "f (a concatenate of 300)");
  check_scalar(jx_call(g, &x), wide_f_deriv(1, x0), "grad(f)");
  check_scalar(jx_call(gg, &x), wide_f_deriv(2, x0), "grad(grad(f))");
  check_scalar(jx_call(ggg, &x), wide_f_deriv(3, x0), "grad(grad(grad(f)))");
  /* vmap of jit, vmap of grad of grad, jit of grad of grad, grad of jit */
  jx_fn *jf = jx_jit(f), *vjf = jx_vmap(jf, NULL, 0), *vgg = jx_vmap(gg, NULL, 0), *jgg = jx_jit(gg);
  jx_fn *gjf = jx_grad(jf, 0), *ggjf = jx_grad(gjf, 0);
  double xs[4] = {-1.1, 0.2, 0.37, 2.5}, w0[4], w2[4];
  for (int i = 0; i < 4; i++) w0[i] = wide_f_deriv(0, xs[i]), w2[i] = wide_f_deriv(2, xs[i]);
  jx_t xv = jx_array(JX_F64, JX_SHAPE(4), xs);
  check_vector(jx_call(vjf, &xv), 4, w0, "vmap(jit(f))");
  check_vector(jx_call(vgg, &xv), 4, w2, "vmap(grad(grad(f)))");
  check_scalar(jx_call(jgg, &x), wide_f_deriv(2, x0), "jit(grad(grad(f)))");
  check_scalar(jx_call(gjf, &x), wide_f_deriv(1, x0), "grad(jit(f))");
  check_scalar(jx_call(ggjf, &x), wide_f_deriv(2, x0), "grad(grad(jit(f)))");
  jx_fn *all[] = {ggjf, gjf, jgg, vgg, vjf, jf, ggg, gg, g, f};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) jx_fn_free(all[i]);
  jx_pool_pop();
}

/* g(a_0..a_{W-1}) = sum_i (i + 1) sin(a_i): W arguments, so every equation
 * that takes them all (jit_call, the transposed sum) is W wide;
 * dg/da_i = (i + 1) cos(a_i), d2g/da_i2 = -(i + 1) sin(a_i) */
static jx_t many_g(const jx_t *a, void *u) {
  (void)u;
  jx_t s = jx_sin(a[0]);
  for (int i = 1; i < W; i++) s = jx_add(s, jx_mul(jx_sin(a[i]), F64(i + 1)));
  return s;
}

static void test_many_inputs(void) {
  jx_pool_push();
  static jx_t args[W], vargs[W];
  double a_last[3] = {0.3, -0.8, 1.7};
  for (int i = 0; i < W; i++) {
    args[i] = F64(0.01 * i);
    vargs[i] = jx_array(JX_F64, JX_SHAPE(3), (double[]){0.01 * i, -0.02 * i, 0.5});
  }
  args[W - 1] = F64(a_last[0]);
  vargs[W - 1] = jx_array(JX_F64, JX_SHAPE(3), a_last);
  double sum = 0;
  for (int i = 0; i < W; i++) sum += (i + 1) * sin(i == W - 1 ? a_last[0] : 0.01 * i);
  jx_fn *g = jx_fn_new(many_g, W, NULL), *jg = jx_jit(g), *dg = jx_grad(g, W - 1), *djg = jx_grad(jg, W - 1);
  jx_fn *ddg = jx_grad(dg, W - 1), *dd_jg = jx_grad(djg, W - 1), *vdg = jx_vmap(dg, NULL, 0);
  jx_fn *jvdg = jx_jit(vdg);
  check_scalar(jx_call(g, args), sum, "g of 300 arguments");
  check_scalar(jx_call(jg, args), sum, "jit(g)");
  check_scalar(jx_call(dg, args), W * cos(a_last[0]), "grad(g)");
  check_scalar(jx_call(djg, args), W * cos(a_last[0]), "grad(jit(g))");
  check_scalar(jx_call(ddg, args), -W * sin(a_last[0]), "grad(grad(g))");
  check_scalar(jx_call(dd_jg, args), -W * sin(a_last[0]), "grad(grad(jit(g)))");
  double want[3];
  for (int i = 0; i < 3; i++) want[i] = W * cos(a_last[i]);
  check_vector(jx_call(vdg, vargs), 3, want, "vmap(grad(g))");
  check_vector(jx_call(jvdg, vargs), 3, want, "jit(vmap(grad(g)))");
  jx_fn *all[] = {jvdg, vdg, dd_jg, ddg, djg, dg, jg, g};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) jx_fn_free(all[i]);
  jx_pool_pop();
}

/* ------------------------------------------------------------ out of memory */
/* The workload: eager, grad, grad of grad and vmap of the wide function
 * (no jit: its compiles would dominate). Each result is either an error
 * value or the right value. */
static int oom_workload(bool quiet) {
  int bad = 0;
  const double x0 = 0.37;
  jx_fn *f = jx_fn_new(wide_f, 1, NULL), *g = jx_grad(f, 0), *gg = jx_grad(g, 0), *vg = jx_vmap(g, NULL, 0);
  jx_fn *fs[3] = {f, g, gg};
  for (int order = 0; order < 4; order++) {
    jx_pool_push();
    jx_t r = order < 3 ? (fs[order] ? JX_CALL(fs[order], F64(x0)) : jx_error_new("no function"))
                       : (vg ? JX_CALL(vg, jx_array(JX_F64, JX_SHAPE(2), (double[]){x0, -x0}))
                             : jx_error_new("no function"));
    if (jx_ok(r)) {
      double got[2] = {0}, w = wide_f_deriv(order < 3 ? order : 1, x0);
      bool right = jx_read(r, JX_F64, got, sizeof got) == 0 && check_close(got[0], w, 1e-11, 1e-11);
      if (order == 3) right &= check_close(got[1], wide_f_deriv(1, -x0), 1e-11, 1e-11);
      if (!right) bad++;
      if (!right && !quiet) fprintf(stderr, "  step %d: wrong value %.17g, want %.17g\n", order, got[0], w);
    } else if (!jx_error(r) || !strstr(jx_error(r), "memory")) {
      bad++;
      if (!quiet) fprintf(stderr, "  step %d: error without its cause: %s\n", order, jx_error(r));
    }
    jx_pool_pop();
  }
  jx_fn_free(vg), jx_fn_free(gg), jx_fn_free(g), jx_fn_free(f);
  return bad;
}

static void test_oom_wide(void) {
  CHECK(oom_workload(false) == 0); /* warm: pool vectors grown */
  jx_buffer_cache_trim();
  long live0 = live;
  big_count = 0;
  CHECK(oom_workload(false) == 0);
  long nbig = big_count;
  jx_buffer_cache_trim();
  CHECKF(live == live0, "the workload left %ld blocks", live - live0);
  CHECKF(nbig > 4, "only %ld allocations of %d bytes or more: the workload does not reach the chunks", nbig,
         BIG);
  int failed_runs = 0, leaks = 0;
  for (long n = 1; n <= nbig; n++) {
    fail_big = n, big_count = 0, refused = 0;
    int bad = oom_workload(true);
    fail_big = 0;
    jx_buffer_cache_trim();
    if (bad || live != live0) {
      if (!failed_runs++) {
        fprintf(stderr, "failing large allocation %ld of %ld:\n", n, nbig);
        fail_big = n, big_count = 0;
        oom_workload(false);
        fail_big = 0;
        jx_buffer_cache_trim();
      }
      leaks += live != live0;
      live0 = live;
    }
  }
  CHECKF(!failed_runs, "%d of %ld runs with a large allocation failing went wrong (%d leaked)", failed_runs,
         nbig, leaks);
  CHECK(oom_workload(false) == 0); /* nothing corrupted */
  printf("out of memory: %ld large allocations failed in turn\n", nbig);
}

int main(void) {
  base_alloc = jx_get_allocator(&base_ud);
  jx_set_allocator(test_alloc, NULL);
  if (check_private_cache("scratch")) return 1;
  test_arena_basics();
  test_arena_growth();
  test_arena_nested();
  test_arena_oom();
  test_arena_threads();
  test_nested_wide();
  test_many_inputs();
  test_oom_wide();
  check_private_cache_remove();
  return check_report("scratch");
}
