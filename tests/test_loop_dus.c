/* A carry updated by dynamic_update_slice inside a jitted loop (a KV
 * cache: C = dynamic_update_slice(C, row_t, (t, 0)) each step) is updated
 * in place by the generated loop driver (render_loop.c, carry_in_place)
 * instead of being copied into the other buffer of its ping-pong pair each
 * step. Values: scans forward and reverse, one and two rows per step,
 * starts clamped at both edges, a while loop, grad (the transpose of DUS
 * runs in the backward scan) and vmap, and the cases that must keep the
 * copy -- the old carry read after the update, the old carry returned as
 * a y, the update's operand read by a later kernel -- each jitted, against
 * eager, with loops compiled and with JX_JIT_LOOPS=0. Structure: the
 * rendered C says which carries are updated in place, so the test fails if
 * the optimization stops applying (or applies where it must not). */
#include "check.h"
#include "jit_build.h"
#include "jit_vs_eager.h"

#include <stdlib.h>
#include <string.h>

#define I32(v)  jx_scalar_of(JX_I32, (v))
#define F64S(v) jx_scalar_of(JX_F64, (v))

enum { T = 5, D = 3 };

/* the generated C's marks (render_loop.c) */
static const char CARRY[] = ": updated in place */", TEMP[] = "/* a temporary computed in place */";

/* what a body does besides C = dus(C, x, (start(t), 0)) */
typedef enum {
  PLAIN,      /* carry (C, t); y = t */
  READ_OLD,   /* y = sum(C_old * C_new): the old value read after the update */
  Y_OLD,      /* y = C_old: the old carry is also an output */
  Y_NEW,      /* y = C_new: the new carry is also an output (copied from it) */
  TWO_CACHES, /* carry (C, C2, t), both updated: the same initial array */
  DECAY,      /* C = dus(C * 0.5, x, ...): the operand is a temporary */
  DECAY_READ, /* the same, y = sum(temporary * C_new): read after the update */
} mode;

typedef struct {
  mode m;
  bool reverse;
} kv_opts;

/* a start that runs past both edges: 3t - 7 (negative starts wrap once,
 * as in jnp; then JAX clamps into [0, T - rows]) */
static jx_t start_of(jx_t t) { return jx_add(jx_mul(t, I32(3)), I32(-7)); }

static jx_t kv_body(const jx_t *a, void *u) {
  const kv_opts *o = u;
  jx_t C = jx_at(a[0], 0), t = jx_at(a[0], o->m == TWO_CACHES ? 2 : 1), x = a[1];
  jx_t Cd = o->m == DECAY || o->m == DECAY_READ ? jx_mul(C, F64S(0.5)) : C;
  jx_t Cn = jx_dynamic_update_slice(Cd, x, (jx_t[]){start_of(t), I32(0)});
  jx_t tn = jx_add(t, I32(1));
  switch (o->m) {
    case PLAIN:
    case DECAY: return JX_TUPLE(JX_TUPLE(Cn, tn), t);
    case DECAY_READ: return JX_TUPLE(JX_TUPLE(Cn, tn), jx_sum(jx_mul(Cd, Cn)));
    case READ_OLD: return JX_TUPLE(JX_TUPLE(Cn, tn), jx_sum(jx_mul(C, Cn)));
    case Y_OLD: return JX_TUPLE(JX_TUPLE(Cn, tn), C);
    case Y_NEW: return JX_TUPLE(JX_TUPLE(Cn, tn), Cn);
    case TWO_CACHES: {
      jx_t C2 = jx_at(a[0], 1);
      jx_t C2n = jx_dynamic_update_slice(C2, jx_mul(x, x), (jx_t[]){t, I32(0)});
      return JX_TUPLE(JX_TUPLE(Cn, C2n, tn), t);
    }
  }
  return NULL;
}

/* kv(C0, xs): the scan's final carries and ys, and C0 itself (it must not
 * have been written) */
static jx_t kv(const jx_t *a, void *u) {
  const kv_opts *o = u;
  jx_fn *s = jx_fn_new(kv_body, 2, u);
  jx_t init = o->m == TWO_CACHES ? JX_TUPLE(a[0], a[0], I32(0)) : JX_TUPLE(a[0], I32(0));
  jx_t r = jx_scan_ex(s, init, a[1], -1, o->reverse);
  jx_fn_free(s);
  return JX_TUPLE(r, a[0]);
}

/* a scalar loss of the final cache, for grad */
static jx_t kv_loss(const jx_t *a, void *u) {
  jx_t C = jx_at(jx_at(jx_at(kv(a, u), 0), 0), 0);
  return jx_sum(jx_mul(jx_sin(C), C));
}

/* while t < n: C = dus(C, full row of t, (t, 0)); t += 1 */
static jx_t w_cond(const jx_t *a, void *u) { return jx_lt(jx_at(a[0], 1), I32(*(const int *)u)); }
static jx_t w_body(const jx_t *a, void *u) {
  (void)u;
  jx_t C = jx_at(a[0], 0), t = jx_at(a[0], 1);
  jx_t row = jx_mul(jx_ones(JX_F64, JX_SHAPE(1, D)), jx_astype(jx_add(t, I32(1)), JX_F64));
  return JX_TUPLE(jx_dynamic_update_slice(C, row, (jx_t[]){t, I32(0)}), jx_add(t, I32(1)));
}
static jx_t kv_while(const jx_t *a, void *u) {
  jx_fn *c = jx_fn_new(w_cond, 1, u), *b = jx_fn_new(w_body, 1, NULL);
  jx_t r = jx_while_loop(c, b, JX_TUPLE(a[0], I32(0)));
  jx_fn_free(c), jx_fn_free(b);
  return r;
}

#define CHECK_JIT(f, ...)                                                                                    \
  do {                                                                                                       \
    double d_ = jit_vs_eager((f), (jx_t[]){__VA_ARGS__});                                                    \
    CHECKF(d_ >= 0 && d_ < 1e-12, "%s: jit vs eager differ by %g", #f, d_);                                  \
  } while (0)

static jx_t arange(int64_t n, double scale) {
  return jx_mul(jx_arange(JX_F64, 0, (double)n, 1), F64S(scale));
}

/* xs of n steps of `rows` rows each */
static jx_t xs_of(int n, int rows) {
  return jx_add(jx_reshape(arange((int64_t)n * rows * D, 0.5), JX_SHAPE(n, rows, D)), F64S(1));
}

/* the number of carries the rendered C of f at args updates in place,
 * and of temporaries it computes in a loop output's destination (-1: it
 * did not render) */
static int in_place_count(jx_fn *f, const jx_t *args, const char *what) {
  built b = build(f, args);
  jx_t rerr = NULL;
  char *src = b.p ? jx_cpu_backend.render(b.p, &rerr) : NULL;
  CHECKF(src != NULL, "render: %s", b.err ? jx_error(b.err) : rerr ? jx_error(rerr) : "failed");
  int n = src ? 0 : -1;
  for (const char *s = src; s && (s = strstr(s, what)); s++) n++;
  jx_free(src);
  built_free(&b);
  return n;
}

static void test_values(void) {
  jx_pool_push();
  jx_t C0 = jx_reshape(arange(T * D, -0.25), JX_SHAPE(T, D));
  static const mode modes[] = {PLAIN, READ_OLD, Y_OLD, Y_NEW, TWO_CACHES, DECAY, DECAY_READ};
  for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
    for (int rev = 0; rev < 2; rev++)
      for (int rows = 1; rows <= 2; rows++)
        for (int n = 0; n <= 7; n += n == 1 ? 3 : n ? 3 : 1) { /* 0, 1, 4, 7 steps: both parities, past T */
          if (modes[i] == TWO_CACHES && rows == 2) continue;   /* its second update is x * x: rows rows too */
          kv_opts o = {modes[i], rev};
          jx_fn *f = jx_fn_new(kv, 2, &o);
          double d = jit_vs_eager(f, (jx_t[]){C0, xs_of(n, rows)});
          CHECKF(d >= 0 && d < 1e-12, "mode %d reverse %d rows %d steps %d: jit vs eager differ by %g",
                 (int)modes[i], rev, rows, n, d);
          jx_fn_free(f);
        }
  /* grad through the updates (the backward scan runs DUS's transpose) and vmap */
  for (int rev = 0; rev < 2; rev++) {
    kv_opts o = {PLAIN, rev};
    jx_fn *f = jx_fn_new(kv_loss, 2, &o), *g = jx_grad_ex(f, 2, (int[]){0, 1}, false);
    CHECK_JIT(g, C0, xs_of(6, 1));
    jx_fn_free(g), jx_fn_free(f);
    f = jx_fn_new(kv, 2, &o);
    jx_fn *vf = jx_vmap(f, (int[]){0, 0}, 0);
    jx_t Cb = jx_reshape(arange(2 * T * D, 0.125), JX_SHAPE(2, T, D));
    jx_t xb = jx_reshape(arange(2 * 6 * D, -0.5), JX_SHAPE(2, 6, 1, D));
    CHECK_JIT(vf, Cb, xb);
    jx_fn_free(vf), jx_fn_free(f);
  }
  for (int n = 0; n <= T; n++) { /* 0 to T iterations */
    jx_fn *f = jx_fn_new(kv_while, 1, &n);
    CHECK_JIT(f, C0);
    jx_fn_free(f);
  }
  jx_pool_pop();
}

/* which carries the generated C updates in place */
static void test_in_place(void) {
  jx_pool_push();
  jx_t C0 = jx_reshape(arange(T * D, -0.25), JX_SHAPE(T, D)), xs = xs_of(6, 1);
  static const struct {
    mode m;
    int want, want_temps;
  } cases[] = {
      {PLAIN, 1, 0},      /* the cache */
      {READ_OLD, 0, 0},   /* the old value is read after the update: ping-pong */
      {Y_OLD, 0, 0},      /* the old value is a y, copied after the body runs */
      {Y_NEW, 1, 0},      /* the y is copied from the new value */
      {TWO_CACHES, 2, 0}, /* both, though they start from the same array */
      {DECAY, 0, 1},      /* C * 0.5 computed in the carry's next buffer */
      {DECAY_READ, 0, 0}, /* ... but not when read after the update */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    for (int rev = 0; rev < 2; rev++) {
      kv_opts o = {cases[i].m, rev};
      jx_fn *f = jx_fn_new(kv, 2, &o);
      int n = in_place_count(f, (jx_t[]){C0, xs}, CARRY);
      CHECKF(n == cases[i].want, "mode %d reverse %d: %d carries updated in place, want %d", (int)cases[i].m,
             rev, n, cases[i].want);
      n = in_place_count(f, (jx_t[]){C0, xs}, TEMP);
      CHECKF(n == cases[i].want_temps, "mode %d reverse %d: %d temporaries computed in place, want %d",
             (int)cases[i].m, rev, n, cases[i].want_temps);
      jx_fn_free(f);
    }
  kv_opts o = {PLAIN, false};
  jx_fn *f = jx_fn_new(kv, 2, &o), *vf = jx_vmap(f, (int[]){0, 0}, 0);
  jx_t Cb = jx_reshape(arange(2 * T * D, 0.125), JX_SHAPE(2, T, D));
  int n = in_place_count(vf, (jx_t[]){Cb, jx_reshape(arange(2 * 6 * D, -0.5), JX_SHAPE(2, 6, 1, D))}, CARRY);
  CHECKF(n == 1, "vmap: %d carries updated in place, want 1", n);
  jx_fn_free(vf), jx_fn_free(f);
  int steps = 3;
  f = jx_fn_new(kv_while, 1, &steps);
  n = in_place_count(f, &C0, CARRY);
  CHECKF(n == 1, "while: %d carries updated in place, want 1", n);
  jx_fn_free(f);
  jx_pool_pop();
}

/* Outside loops: an update of a temporary nothing reads later runs in
 * the temporary's buffer (compile/exec.c, lower.inplace), one of a value
 * read later does not; both against eager. */
static jx_t root_dead(const jx_t *a, void *u) {
  (void)u;
  jx_t C = jx_mul(a[0], F64S(2));
  return jx_sin(jx_dynamic_update_slice(C, a[1], (jx_t[]){I32(T - 1), I32(1)}));
}
static jx_t root_live(const jx_t *a, void *u) {
  jx_t C = jx_mul(a[0], F64S(2));
  return jx_add(root_dead(a, u), C);
}
static void test_root(void) {
  jx_pool_push();
  jx_t C0 = jx_reshape(arange(T * D, -0.25), JX_SHAPE(T, D)), x = xs_of(1, 2);
  x = jx_reshape(x, JX_SHAPE(2, D)); /* start (T - 1, 1) clamps to (T - 2, 0) */
  const jx_body bodies[2] = {root_dead, root_live};
  for (int i = 0; i < 2; i++) {
    jx_fn *f = jx_fn_new(bodies[i], 2, NULL);
    const int64_t before = jx_exec_inplace_calls(), runs = jx_exec_run_counts().compiled;
    CHECK_JIT(f, C0, x);
    if (jx_exec_run_counts().compiled > runs)
      CHECKF(jx_exec_inplace_calls() - before == (i == 0), "%s: %lld updates in place", i ? "live" : "dead",
             (long long)(jx_exec_inplace_calls() - before));
    jx_fn_free(f);
  }
  jx_pool_pop();
}

int main(void) {
  if (check_private_cache("test-loop-dus")) return 1;
  test_in_place();
  test_root();
  test_values();
  setenv("JX_JIT_LOOPS", "0", 1); /* the same values with loops run by the runtime */
  test_values();
  unsetenv("JX_JIT_LOOPS");
  check_private_cache_remove();
  return check_report("loop_dus");
}
