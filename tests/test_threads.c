/* Threads (DESIGN §5: tracing state is per thread; threads trace and run
 * independently). Run as is and under ThreadSanitizer (docs/RELIABILITY.md).
 *
 *   - NT threads at once, each with its own functions: eager ops, grad,
 *     vmap, jit (trace + optimize + fuse + render + compile + run), jit of
 *     grad and of vmap, control flow (scan, cond, while) under jit, random
 *     draws, make_jaxpr; every result checked against values computed in
 *     closed form or eagerly in the same thread;
 *   - one jitted function shared by every thread, called concurrently
 *     with the same signature (one trace races to fill the cache) and with
 *     signatures of their own (several traces fill it at once), plus its
 *     grad; results checked against the eager function;
 *   - arrays large enough that kernels split over the thread pool, from
 *     several threads at once (one dispatches, the others run inline);
 *   - values built in one thread and read in another (retained across).
 * Each thread's functions differ by a constant, so each compiles a program
 * of its own; the jit's cache goes to a private temporary directory. */
#include "check.h"

#include <jx.h>

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

enum { NT = 4, ROUNDS = 3 };

static atomic_int failures;
#define TCHECK(cond, ...)                                                                                    \
  do {                                                                                                       \
    if (!(cond)) {                                                                                           \
      atomic_fetch_add(&failures, 1);                                                                        \
      fprintf(stderr, "%s:%d: thread check failed: %s: ", __FILE__, __LINE__, #cond);                        \
      fprintf(stderr, __VA_ARGS__);                                                                          \
      fputc('\n', stderr);                                                                                   \
    }                                                                                                        \
  } while (0)

/* max |a - b| over every leaf; +inf when either is an error or shapes differ */
static double maxdiff(jx_t a, jx_t b) {
  if (!jx_ok(a) || !jx_ok(b)) return INFINITY;
  if (jx_is_tree(a) || jx_is_tree(b)) {
    if (jx_len(a) != jx_len(b)) return INFINITY;
    double m = 0;
    for (int i = 0; i < jx_len(a); i++) m = fmax(m, maxdiff(jx_at(a, i), jx_at(b, i)));
    return m;
  }
  if (jx_ndim(a) != jx_ndim(b)) return INFINITY;
  for (int d = 0; d < jx_ndim(a); d++)
    if (jx_shape(a)[d] != jx_shape(b)[d]) return INFINITY;
  if (jx_size(a) == 0) return 0;
  return jx_item(jx_max(jx_abs(jx_sub(jx_astype(a, JX_F64), jx_astype(b, JX_F64)))));
}

static const char *err_of(jx_t x) { return jx_ok(x) ? "ok" : jx_error(x); }

/* ------------------------------------------------- per-thread functions */
/* f(x, w) = sum(tanh(c * x) * w) + c, c from the user pointer */
static jx_t own_f(const jx_t *a, void *u) {
  double c = *(const double *)u;
  return jx_add(jx_sum(jx_mul(jx_tanh(jx_mul(a[0], jx_scalar(c))), a[1])), jx_scalar(c));
}

static jx_t scan_step(const jx_t *a, void *u) { /* (carry, x) -> (carry * c + x, carry) */
  double c = *(const double *)u;
  jx_t nc = jx_add(jx_mul(a[0], jx_scalar(c)), a[1]);
  return JX_TUPLE(nc, a[0]);
}
static jx_t br_pos(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(a[0], jx_scalar(2.0));
}
static jx_t br_neg(const jx_t *a, void *u) {
  (void)u;
  return jx_neg(a[0]);
}
static jx_t w_cond(const jx_t *a, void *u) {
  (void)u;
  return jx_lt(a[0], jx_scalar(100.0));
}
static jx_t w_body(const jx_t *a, void *u) {
  double c = *(const double *)u;
  return jx_mul(a[0], jx_scalar(1.0 + c));
}

/* scan of a linear recurrence, a cond on its result, a while loop */
static jx_t control(const jx_t *a, void *u) {
  jx_fn *s = jx_fn_new(scan_step, 2, u), *p = jx_fn_new(br_pos, 1, NULL), *n = jx_fn_new(br_neg, 1, NULL);
  jx_fn *wc = jx_fn_new(w_cond, 1, NULL), *wb = jx_fn_new(w_body, 1, u);
  jx_t r = jx_scan(s, jx_scalar_of(JX_F64, 0), a[0]);
  jx_t last = jx_at(r, 0);
  jx_t c = jx_cond(jx_gt(last, jx_scalar(0)), p, n, 1, &last);
  jx_t w = jx_while_loop(wc, wb, jx_scalar_of(JX_F64, 1));
  jx_fn_free(wb), jx_fn_free(wc), jx_fn_free(n), jx_fn_free(p), jx_fn_free(s);
  return JX_TUPLE(c, jx_sum(jx_at(r, 1)), w);
}

typedef struct {
  int id;
  double c;
  jx_fn *shared, *shared_grad, *shared_eager; /* one jitted function for every thread */
  jx_t handoff;                               /* a value made by this thread, read by the next */
} targ;

static jx_t rand_vec(int64_t n, double seed) {
  jx_t i = jx_arange(JX_F64, 0, (double)n, 1);
  return jx_sin(jx_add(jx_mul(i, jx_scalar(0.37)), jx_scalar(seed)));
}

static void own_functions(targ *t, int round) {
  double c = t->c;
  int64_t n = 5 + t->id; /* a signature per thread too */
  jx_fn *f = jx_fn_new(own_f, 2, &t->c), *jf = jx_jit(f), *g = jx_grad(f, 0), *jg = jx_jit(g);
  jx_fn *vg = jx_vmap(g, (int[]){0, JX_NONE}, 0), *jvg = jx_jit(vg);
  jx_fn *ctl = jx_fn_new(control, 1, &t->c), *jctl = jx_jit(ctl);
  jx_t x = rand_vec(n, t->id + 0.1 * round), w = jx_cos(rand_vec(n, 1.0));
  /* closed forms */
  double xv[16], wv[16], want = c, gx[16];
  jx_read(x, JX_F64, xv, sizeof xv);
  jx_read(w, JX_F64, wv, sizeof wv);
  for (int k = 0; k < n; k++) {
    want += tanh(c * xv[k]) * wv[k];
    double th = tanh(c * xv[k]);
    gx[k] = (1 - th * th) * c * wv[k];
  }
  jx_t e = JX_CALL(f, x, w), j = JX_CALL(jf, x, w);
  TCHECK(jx_ok(e) && fabs(jx_item(e) - want) < 1e-12, "thread %d eager: %s %.17g vs %.17g", t->id, err_of(e),
         jx_item(e), want);
  TCHECK(maxdiff(j, e) < 1e-12, "thread %d jit: %s", t->id, err_of(j));
  jx_t ge = JX_CALL(g, x, w), gj = JX_CALL(jg, x, w);
  TCHECK(maxdiff(ge, jx_array(JX_F64, 1, &n, gx)) < 1e-12, "thread %d grad: %s", t->id, err_of(ge));
  TCHECK(maxdiff(gj, ge) < 1e-12, "thread %d jit(grad): %s", t->id, err_of(gj));
  jx_t xs = jx_stack(3, (jx_t[]){x, jx_neg(x), jx_mul(x, jx_scalar(0.5))}, 0);
  jx_t ve = JX_CALL(vg, xs, w), vj = JX_CALL(jvg, xs, w);
  TCHECK(jx_ok(ve) && jx_ndim(ve) == 2 &&
             maxdiff(jx_squeeze(jx_slice(ve, (int64_t[]){0, 0}, (int64_t[]){1, JX_END}, NULL), 0), ge) <
                 1e-12,
         "thread %d vmap(grad): %s", t->id, err_of(ve));
  TCHECK(maxdiff(vj, ve) < 1e-12, "thread %d jit(vmap(grad)): %s", t->id, err_of(vj));
  jx_t ce = JX_CALL(ctl, x), cj = JX_CALL(jctl, x);
  double carry = 0, ysum = 0, wl = 1;
  for (int k = 0; k < n; k++) ysum += carry, carry = carry * c + xv[k];
  while (wl < 100) wl *= 1 + c;
  jx_t cwant = JX_TUPLE(jx_scalar_of(JX_F64, carry > 0 ? 2 * carry : -carry), jx_scalar_of(JX_F64, ysum),
                        jx_scalar_of(JX_F64, wl));
  TCHECK(maxdiff(ce, cwant) < 1e-9, "thread %d control flow: %s", t->id, err_of(ce));
  TCHECK(maxdiff(cj, ce) < 1e-12, "thread %d jit(control flow): %s", t->id, err_of(cj));
  char *text = jx_make_jaxpr(f, (jx_t[]){x, w});
  TCHECK(text && strstr(text, "tanh"), "thread %d make_jaxpr: %s", t->id, text ? text : "NULL");
  free(text);
  /* random: the same key gives the same draws in every thread */
  jx_t u = jx_random_normal(jx_random_fold_in(jx_random_key(7), 3), JX_F32, JX_SHAPE(1000));
  jx_t ref = jx_random_normal(jx_random_fold_in(jx_random_key(7), 3), JX_F32, JX_SHAPE(1000));
  TCHECK(maxdiff(u, ref) == 0, "thread %d random: %s", t->id, err_of(u));
  jx_fn_free(jctl), jx_fn_free(ctl), jx_fn_free(jvg), jx_fn_free(vg), jx_fn_free(jg), jx_fn_free(g);
  jx_fn_free(jf), jx_fn_free(f);
}

static void shared_function(targ *t, int round) {
  /* the same signature in every thread, then one per thread */
  int64_t sizes[2] = {8, 9 + t->id};
  for (int s = 0; s < 2; s++) {
    jx_t x = rand_vec(sizes[s], t->id + round), w = jx_full(JX_F64, 1, &sizes[s], 0.5);
    jx_t r = JX_CALL(t->shared, x, w), e = JX_CALL(t->shared_eager, x, w);
    TCHECK(maxdiff(r, e) < 1e-12, "thread %d shared jit, n=%lld: %s", t->id, (long long)sizes[s], err_of(r));
    jx_t g = JX_CALL(t->shared_grad, x, w);
    TCHECK(jx_ok(g) && jx_size(g) == sizes[s], "thread %d shared jit(grad): %s", t->id, err_of(g));
  }
}

/* big enough that elementwise ops and reductions split over the pool */
static void pool_kernels(targ *t) {
  jx_t x = jx_reshape(rand_vec(600 * 500, t->id), JX_SHAPE(600, 500));
  jx_t y = jx_exp(jx_mul(x, jx_scalar(0.5)));
  jx_t s = jx_sum_axes(y, 1, (int[]){0}, false);
  double host[500] = {0}, xv[1000];
  for (int64_t r = 0; r < 600; r += 2) { /* by rows: two at a time */
    jx_read(jx_slice(x, (int64_t[]){r, 0}, (int64_t[]){r + 2, 500}, NULL), JX_F64, xv, sizeof xv);
    for (int k = 0; k < 1000; k++) host[k % 500] += exp(0.5 * xv[k]);
  }
  TCHECK(maxdiff(s, jx_array(JX_F64, JX_SHAPE(500), host)) < 1e-9, "thread %d pooled reduction: %s", t->id,
         err_of(s));
  jx_t m = jx_matmul(x, jx_transpose(x, NULL));
  TCHECK(jx_ok(m) && jx_ndim(m) == 2 && jx_shape(m)[0] == 600, "thread %d pooled matmul: %s", t->id,
         err_of(m));
}

static void *thread_main(void *u) {
  targ *t = u;
  for (int round = 0; round < ROUNDS; round++) {
    jx_pool_push();
    own_functions(t, round);
    shared_function(t, round);
    if (round == 0) pool_kernels(t);
    jx_pool_pop();
  }
  jx_pool_push();
  t->handoff = jx_retain(jx_mul(rand_vec(6, t->id), jx_scalar(2.0)));
  jx_pool_pop();
  return NULL;
}

static jx_t shared_body(const jx_t *a, void *u) {
  (void)u;
  return jx_sum(jx_mul(jx_exp(jx_mul(a[0], a[1])), jx_sin(a[0])));
}

int jx_jit_trace_count(jx_fn *jitted);

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (check_private_cache("test-threads")) return 1;
  if (!getenv("JX_NUM_THREADS")) jx_set_num_threads(4); /* a pool even on a small machine */

  jx_fn *sf = jx_fn_new(shared_body, 2, NULL), *shared = jx_jit(sf), *sg = jx_grad(sf, 0), *jsg = jx_jit(sg);
  targ t[NT];
  pthread_t th[NT];
  for (int i = 0; i < NT; i++) {
    t[i] = (targ){.id = i, .c = 0.5 + 0.25 * i, .shared = shared, .shared_grad = jsg, .shared_eager = sf};
    CHECK(pthread_create(&th[i], NULL, thread_main, &t[i]) == 0);
  }
  for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
  CHECKF(atomic_load(&failures) == 0, "%d checks failed in the threads", atomic_load(&failures));
  /* 1 shared signature + 1 per thread; a race may trace one twice */
  int traces = jx_jit_trace_count(shared);
  CHECKF(traces >= 1 + NT && traces <= 2 * (1 + NT), "the shared function was traced %d times", traces);
  /* values made in the threads (now gone) are still good here */
  for (int i = 0; i < NT; i++) {
    CHECK(maxdiff(t[i].handoff, jx_mul(rand_vec(6, i), jx_scalar(2.0))) == 0);
    jx_release(t[i].handoff);
  }
  jx_fn_free(jsg), jx_fn_free(sg), jx_fn_free(shared), jx_fn_free(sf);
  check_private_cache_remove();
  return check_report("test_threads");
}
