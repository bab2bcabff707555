/* The jaxpr optimization passes: each pass alone and jx_optimize on traced
 * functions (equation counts drop as expected, the result type-checks and
 * computes the same values), inlining of hand-built jit_call equations and
 * of nested jx_jit, constants that are tracers of an outer jvp, and ~200
 * random programs run through every pass. */
#include "api/trace_fn.h"
#include "check.h"
#include "compile/passes.h"
#include "jit_build.h"
#include "prims/lax.h"
#include "trace/trace.h"

#include <stdint.h>

/* ------------------------------------------------------------- helpers */
static uint64_t rng_state = 0x1234567u;
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double unif(void) { return (double)(rnd() >> 11) / 9007199254740992.0 * 2 - 1; }

static jx_t rand_array(jx_dtype dt, int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  double *d = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) d[i] = unif();
  jx_t x = jx_astype(jx_array(JX_F64, ndim, shape, d), dt);
  free(d);
  return x;
}

static int count_prim(const jx_jaxpr *j, jx_prim p) {
  int n = 0;
  for (int e = 0; e < j->neqn; e++) n += j->eqns[e].prim == p;
  return n;
}

/* jit_call equations, counting those inside callees too */
static int count_calls_deep(const jx_jaxpr *j) {
  int n = 0;
  for (int e = 0; e < j->neqn; e++)
    if (j->eqns[e].prim == JX_P_jit_call) n += 1 + count_calls_deep(j->eqns[e].params.call.jaxpr);
  return n;
}

static void dump(const char *what, const jx_jaxpr *j) {
  char *s = jx_jaxpr_print(j);
  fprintf(stderr, "%s:\n%s\n", what, s ? s : "(null)");
  jx_free(s);
}

static bool same_aval_w(const jx_aval *a, const jx_aval *b) { return jx_aval_eq(a, b) && a->weak == b->weak; }

/* The same interface: invars and outputs with the same avals. */
static bool same_signature(const jx_jaxpr *a, const jx_jaxpr *b) {
  if (a->nin != b->nin || a->nout != b->nout) return false;
  for (int i = 0; i < a->nin; i++)
    if (!same_aval_w(&a->avals[a->invars[i]], &b->avals[b->invars[i]])) return false;
  for (int i = 0; i < a->nout; i++)
    if (!same_aval_w(&a->avals[a->outvars[i]], &b->avals[b->outvars[i]])) return false;
  return true;
}

static int close_values(jx_t a, jx_t b, double rtol, double atol) {
  if (!jx_ok(a) || !jx_ok(b) || jx_ndim(a) != jx_ndim(b)) return 0;
  for (int i = 0; i < jx_ndim(a); i++)
    if (jx_shape(a)[i] != jx_shape(b)[i]) return 0;
  int64_t n = jx_size(a);
  double *x = malloc(sizeof(double) * (size_t)(n + 1)), *y = malloc(sizeof(double) * (size_t)(n + 1));
  int ok = !jx_read(a, JX_F64, x, sizeof(double) * (size_t)(n + 1)) &&
           !jx_read(b, JX_F64, y, sizeof(double) * (size_t)(n + 1));
  for (int64_t i = 0; ok && i < n; i++) {
    ok = check_close(x[i], y[i], rtol, atol);
    if (!ok) fprintf(stderr, "  element %lld: %.9g vs %.9g\n", (long long)i, x[i], y[i]);
  }
  free(x);
  free(y);
  return ok;
}

/* opt type-checks, has orig's signature, and computes orig's outputs on
 * args (ref: reference outputs instead of evaluating orig). */
static int check_equiv(const char *what, const jx_jaxpr *orig, const jx_jaxpr *opt, const jx_t *args,
                       const jx_t *ref) {
  int ok = 1;
  jx_t te = jx_jaxpr_typecheck(opt);
  CHECKF(te == NULL, "%s: %s", what, te ? jx_error(te) : "");
  ok &= te == NULL;
  int sig = same_signature(orig, opt);
  CHECKF(sig, "%s: signature changed", what);
  ok &= sig;
  if (!sig) return 0;
  jx_t *o1 = malloc(sizeof(jx_t) * (size_t)(orig->nout + 1));
  jx_t *o2 = malloc(sizeof(jx_t) * (size_t)(orig->nout + 1));
  jx_t e1 = ref ? NULL : jx_eval_jaxpr(orig, args, o1);
  jx_t e2 = jx_eval_jaxpr(opt, args, o2);
  CHECKF(!e1 && !e2, "%s: eval failed: %s", what, e1 ? jx_error(e1) : e2 ? jx_error(e2) : "");
  ok &= !e1 && !e2;
  for (int i = 0; !e1 && !e2 && i < orig->nout; i++) {
    int c = close_values(o2[i], ref ? ref[i] : o1[i], 1e-6, 1e-6);
    CHECKF(c, "%s: output %d differs", what, i);
    ok &= c;
  }
  free(o1);
  free(o2);
  return ok;
}

typedef jx_jaxpr *(*pass_fn)(const jx_jaxpr *, bool *, jx_t *);

/* run one pass; NULL (and a failed check) on error */
static jx_jaxpr *run1(pass_fn p, const jx_jaxpr *j, bool *changed) {
  jx_t err = NULL;
  jx_jaxpr *o = p(j, changed, &err);
  CHECKF(o != NULL, "pass failed: %s", err ? jx_error(err) : "?");
  if (o) CHECK(o != j && atomic_load(&o->refs) == 1);
  return o;
}
static jx_jaxpr *opt_pass(const jx_jaxpr *j, bool *changed, jx_t *err) {
  if (changed) *changed = true;
  return jx_optimize(j, err);
}

/* ------------------------------------------------------ identities */
static jx_t f_identities(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0];
  x = jx_add(jx_mul(x, jx_scalar(1.0)), jx_scalar(0.0)); /* x*1 + 0 */
  x = jx_mul(jx_scalar(1.0), x);                         /* 1*x */
  x = jx_add(jx_scalar(0.0), x);                         /* 0+x */
  x = jx_sub(x, jx_scalar(0.0));                         /* x-0 */
  x = jx_div(x, jx_scalar(1.0));                         /* x/1 */
  x = jx_mul(x, jx_ones(JX_F32, 2, (int64_t[]){2, 3}));  /* uniform 1s of x's shape */
  x = jx_neg(jx_neg(x));
  x = jx_lax_convert(x, JX_F32);
  x = jx_lax_broadcast_in_dim(x, 2, (int64_t[]){2, 3}, (int[]){0, 1});
  x = jx_lax_transpose(x, (int[]){0, 1});
  x = jx_reshape(x, 2, (int64_t[]){2, 3});
  return x;
}

static void test_identities(void) {
  jx_pool_push();
  jx_t x = rand_array(JX_F32, 2, (int64_t[]){2, 3});
  jx_jaxpr *j = trace(f_identities, 1, &x, NULL);
  if (j) {
    CHECK(j->neqn >= 10);
    jx_jaxpr *o = run1(opt_pass, j, NULL);
    if (o) {
      CHECKF(o->neqn == 0, "%d equations left", o->neqn);
      CHECK(o->nconst == 0);
      CHECK(o->nout == 1 && o->outvars[0] == o->invars[0]);
      check_equiv("identities", j, o, &x, NULL);
      if (o->neqn) dump("identities", o);
    }
    jx_jaxpr_release(o);
    /* x*1 + 0 alone with simplify + dce: no equation */
    jx_jaxpr *s = run1(jx_pass_simplify, j, NULL);
    jx_jaxpr *d = s ? run1(jx_pass_dce, s, NULL) : NULL;
    if (d) CHECK(d->neqn < j->neqn);
    jx_jaxpr_release(s);
    jx_jaxpr_release(d);
  }
  jx_jaxpr_release(j);
  jx_pool_pop();
}

static jx_t f_x1_0(const jx_t *a, void *u) {
  (void)u;
  return jx_add(jx_mul(a[0], jx_scalar(1.0)), jx_scalar(0.0));
}

static void test_x1_0(void) {
  jx_pool_push();
  jx_t x = rand_array(JX_F32, 1, (int64_t[]){5});
  jx_jaxpr *j = trace(f_x1_0, 1, &x, NULL);
  if (j) {
    CHECK(j->neqn == 2);
    bool ch = false;
    jx_jaxpr *s = run1(jx_pass_simplify, j, &ch);
    CHECK(ch);
    jx_jaxpr *d = s ? run1(jx_pass_dce, s, &ch) : NULL;
    if (d) {
      CHECK(d->neqn == 0 && d->nconst == 0);
      check_equiv("x*1+0", j, d, &x, NULL);
    }
    jx_jaxpr_release(s);
    jx_jaxpr_release(d);
  }
  jx_jaxpr_release(j);
  jx_pool_pop();
}

/* rewrites that must NOT happen */
static jx_t f_not_identities(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0];                                              /* f32[3] */
  jx_t r1 = jx_mul(x, jx_ones(JX_F32, 2, (int64_t[]){2, 3})); /* broadcasts: shape changes */
  jx_t r2 = jx_add(x, jx_zeros(JX_F64, 1, (int64_t[]){3}));   /* promotes to f64 */
  jx_t r3 = jx_mul(x, jx_scalar(0.0));                        /* x*0 is not 0 (NaN, inf) */
  jx_t r4 = jx_sub(jx_scalar(0.0), x);                        /* 0-x */
  jx_t r5 = jx_div(jx_scalar(1.0), x);                        /* 1/x */
  jx_t r6 = jx_add(x, jx_array(JX_F32, 1, (int64_t[]){3}, (float[]){0, 1, 0})); /* not uniform */
  jx_t r7 = jx_lax_broadcast_in_dim(x, 2, (int64_t[]){1, 3}, (int[]){1});       /* not identity */
  return jx_tuple(7, (jx_t[]){r1, r2, r3, r4, r5, r6, r7});
}

static void test_not_identities(void) {
  jx_pool_push();
  jx_t x = rand_array(JX_F32, 1, (int64_t[]){3});
  jx_jaxpr *j = trace(f_not_identities, 1, &x, NULL);
  jx_jaxpr *o = j ? run1(opt_pass, j, NULL) : NULL;
  if (o) {
    check_equiv("not identities", j, o, &x, NULL);
    for (int i = 0; i < o->nout; i++) CHECKF(o->outvars[i] != o->invars[0], "output %d became x", i);
    CHECK(count_prim(o, JX_P_mul) == 2);
    CHECK(count_prim(o, JX_P_sub) == 1);
    CHECK(count_prim(o, JX_P_div) == 1);
    CHECK(count_prim(o, JX_P_broadcast_in_dim) == 1);
    /* x:f32[3] + f32[2,3] ones stays a mul that broadcasts */
    CHECK(o->avals[o->outvars[0]].ndim == 2);
  }
  jx_jaxpr_release(o);
  jx_jaxpr_release(j);
  jx_pool_pop();
}

/* ---------------------------------------------------------------- cse */
static jx_t f_cse(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0], y = a[1];
  jx_t t1 = jx_tanh(jx_mul(x, y)), t2 = jx_tanh(jx_mul(x, y));
  jx_t s1 = jx_mul(x, jx_scalar(2.0)), s2 = jx_mul(x, jx_scalar(2.0)); /* two equal constants */
  return jx_tuple(2, (jx_t[]){jx_add(t1, t2), jx_sub(s1, s2)});
}

static void test_cse(void) {
  jx_pool_push();
  jx_t args[2] = {rand_array(JX_F32, 2, (int64_t[]){2, 3}), rand_array(JX_F32, 1, (int64_t[]){3})};
  jx_jaxpr *j = trace(f_cse, 2, args, NULL);
  if (j) {
    CHECK(count_prim(j, JX_P_tanh) == 2 && count_prim(j, JX_P_mul) == 4 && j->nconst == 2);
    bool ch = false;
    jx_jaxpr *c = run1(jx_pass_cse, j, &ch);
    if (c) {
      CHECK(ch);
      CHECKF(count_prim(c, JX_P_tanh) == 1, "%d tanh", count_prim(c, JX_P_tanh));
      CHECKF(count_prim(c, JX_P_mul) == 2, "%d mul", count_prim(c, JX_P_mul));
      CHECKF(c->nconst == 1, "%d consts", c->nconst);
      CHECK(c->neqn == 5);
      check_equiv("cse", j, c, args, NULL);
      /* a second run finds nothing */
      jx_jaxpr *c2 = run1(jx_pass_cse, c, &ch);
      CHECK(!ch && c2 && c2->neqn == c->neqn);
      jx_jaxpr_release(c2);
    }
    jx_jaxpr_release(c);
  }
  jx_jaxpr_release(j);
  jx_pool_pop();
}

/* ---------------------------------------------------------------- dce */
static jx_t f_dce(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0];
  jx_t dead1 = jx_exp(jx_mul(x, jx_array(JX_F32, 1, (int64_t[]){3}, (float[]){1, 2, 3})));
  jx_t dead2 = jx_sum(dead1);
  (void)dead2;
  return jx_tanh(x);
}

static void test_dce(void) {
  jx_pool_push();
  jx_t x = rand_array(JX_F32, 1, (int64_t[]){3});
  jx_jaxpr *j = trace(f_dce, 1, &x, NULL);
  if (j) {
    CHECK(j->neqn == 4 && j->nconst == 1);
    bool ch = false;
    jx_jaxpr *d = run1(jx_pass_dce, j, &ch);
    if (d) {
      CHECK(ch);
      CHECK(d->neqn == 1 && d->eqns[0].prim == JX_P_tanh);
      CHECK(d->nconst == 0);
      check_equiv("dce", j, d, &x, NULL);
      jx_jaxpr *d2 = run1(jx_pass_dce, d, &ch);
      CHECK(!ch);
      jx_jaxpr_release(d2);
    }
    jx_jaxpr_release(d);
  }
  jx_jaxpr_release(j);
  jx_pool_pop();
}

/* ------------------------------------------------------------- layout */
static jx_t f_layout(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0];                                       /* f32[2,3,4] */
  jx_t t2 = jx_transpose(jx_transpose(x, NULL), NULL); /* identity */
  jx_t t3 = jx_lax_transpose(jx_lax_transpose(jx_lax_transpose(x, (int[]){1, 0, 2}), (int[]){0, 2, 1}),
                             (int[]){2, 1, 0});                                       /* one transpose */
  jx_t r2 = jx_reshape(jx_reshape(x, 1, (int64_t[]){24}), 2, (int64_t[]){6, 4});      /* one reshape */
  jx_t r3 = jx_reshape(jx_reshape(x, 2, (int64_t[]){4, 6}), 3, (int64_t[]){2, 3, 4}); /* none */
  jx_t b2 = jx_lax_broadcast_in_dim(jx_lax_broadcast_in_dim(a[1], 2, (int64_t[]){1, 4}, (int[]){1}), 4,
                                    (int64_t[]){2, 5, 3, 4}, (int[]){2, 3}); /* one bid */
  return jx_tuple(5, (jx_t[]){jx_exp(t2), t3, r2, r3, b2});
}

static void test_layout(void) {
  jx_pool_push();
  jx_t args[2] = {rand_array(JX_F32, 3, (int64_t[]){2, 3, 4}), rand_array(JX_F32, 1, (int64_t[]){4})};
  jx_jaxpr *j = trace(f_layout, 2, args, NULL);
  if (j) {
    CHECK(count_prim(j, JX_P_transpose) == 5 && count_prim(j, JX_P_reshape) == 4);
    jx_jaxpr *s = run1(jx_pass_simplify, j, NULL);
    jx_jaxpr *d = s ? run1(jx_pass_dce, s, NULL) : NULL;
    jx_jaxpr *o = run1(opt_pass, j, NULL);
    for (int k = 0; k < 2; k++) {
      jx_jaxpr *r = k ? o : d;
      if (!r) continue;
      CHECKF(count_prim(r, JX_P_transpose) == 1, "%d transposes", count_prim(r, JX_P_transpose));
      CHECKF(count_prim(r, JX_P_reshape) == 1, "%d reshapes", count_prim(r, JX_P_reshape));
      CHECK(count_prim(r, JX_P_broadcast_in_dim) == 1);
      CHECK(r->neqn == 4); /* exp, transpose, reshape, broadcast */
      CHECK(r->outvars[3] == r->invars[0]);
      check_equiv(k ? "layout optimize" : "layout simplify", j, r, args, NULL);
    }
    jx_jaxpr_release(s);
    jx_jaxpr_release(d);
    jx_jaxpr_release(o);
  }
  jx_jaxpr_release(j);
  jx_pool_pop();
}

/* --------------------------------------------------------------- fold */
static jx_t f_fold(const jx_t *a, void *u) {
  (void)u;
  jx_t c = jx_exp(jx_arange(JX_F32, 0, 4, 1)); /* small: folded */
  jx_t d = jx_sum(jx_tanh(jx_array(JX_F32, 2, (int64_t[]){1, 4}, (float[]){1, 2, 3, 4})));
  jx_t big = jx_broadcast_to(jx_scalar(2.0), 2, (int64_t[]){2000, 2000}); /* big: stays */
  return jx_tuple(3, (jx_t[]){jx_add(jx_mul(a[0], c), d), big, jx_sum(jx_mul(big, big))});
}

static void test_fold(void) {
  jx_pool_push();
  jx_t x = rand_array(JX_F32, 1, (int64_t[]){4});
  jx_jaxpr *j = trace(f_fold, 1, &x, NULL);
  if (j) {
    bool ch = false;
    jx_jaxpr *f = run1(jx_pass_fold, j, &ch);
    if (f) {
      CHECK(ch);
      CHECK(count_prim(f, JX_P_exp) == 0 && count_prim(f, JX_P_tanh) == 0 && count_prim(f, JX_P_iota) == 0);
      CHECK(count_prim(f, JX_P_broadcast_in_dim) >= 1); /* the 2000x2000 broadcast stays */
      for (int i = 0; i < f->nconst; i++)
        CHECKF(jx_size(f->consts[i]) <= JX_FOLD_MAX_ELEMS, "folded a %lld-element constant",
               (long long)jx_size(f->consts[i]));
      CHECK(count_prim(f, JX_P_mul) == 2); /* x*c, big*big (4M elements) */
      check_equiv("fold", j, f, &x, NULL);
    }
    jx_jaxpr *o = run1(opt_pass, j, NULL);
    if (o) {
      CHECKF(o->neqn == 5, "%d equations", o->neqn); /* mul add, bid, mul(2, bid) sum */
      CHECK(count_prim(o, JX_P_broadcast_in_dim) == 1);
      for (int i = 0; i < o->nconst; i++) CHECK(jx_size(o->consts[i]) <= JX_FOLD_MAX_ELEMS);
      check_equiv("fold optimize", j, o, &x, NULL);
      if (o->neqn != 5) dump("fold optimize", o);
    }
    jx_jaxpr_release(f);
    jx_jaxpr_release(o);
  }
  jx_jaxpr_release(j);
  jx_pool_pop();
}

/* only the big broadcast: fold must leave it */
static jx_t f_big(const jx_t *a, void *u) {
  (void)a, (void)u;
  return jx_broadcast_to(jx_scalar(2.0), 2, (int64_t[]){2000, 2000});
}

static void test_big_broadcast(void) {
  jx_pool_push();
  jx_t x = jx_scalar(0.0);
  jx_jaxpr *j = trace(f_big, 1, &x, NULL);
  jx_jaxpr *o = j ? run1(opt_pass, j, NULL) : NULL;
  if (o) {
    CHECK(o->neqn == 1 && o->eqns[0].prim == JX_P_broadcast_in_dim);
    CHECK(o->nconst == 1 && jx_size(o->consts[0]) == 1);
    check_equiv("big broadcast", j, o, &x, NULL);
  }
  jx_jaxpr_release(o);
  jx_jaxpr_release(j);
  jx_pool_pop();
}

/* ---------------------------------------------------- broadcast folding */
static jx_t f_bfold(const jx_t *a, void *u) {
  (void)u;
  jx_t y = a[0], s = a[1], v = a[2]; /* f32[200,300], f32[], f32[300] */
  jx_t sb = jx_broadcast_to(s, 2, (int64_t[]){200, 300});
  jx_t vb = jx_broadcast_to(v, 2, (int64_t[]){200, 300});
  jx_t r1 = jx_add(y, sb);
  jx_t r2 = jx_mul(sb, y);
  jx_t r3 = jx_where(jx_gt(y, sb), vb, y);
  jx_t r4 = jx_mul(jx_broadcast_to(jx_scalar(3.0), 2, (int64_t[]){200, 300}), y); /* const */
  jx_t r5 = jx_mul(y, jx_broadcast_to(jx_scalar(1.0), 2, (int64_t[]){200, 300})); /* -> y */
  return jx_tuple(5, (jx_t[]){r1, r2, r3, r4, r5});
}

static void test_broadcast_folding(void) {
  jx_pool_push();
  jx_t args[3] = {rand_array(JX_F32, 2, (int64_t[]){200, 300}), rand_array(JX_F32, 0, NULL),
                  rand_array(JX_F32, 1, (int64_t[]){300})};
  jx_jaxpr *j = trace(f_bfold, 3, args, NULL);
  if (j) {
    CHECK(count_prim(j, JX_P_broadcast_in_dim) == 4);
    jx_jaxpr *o = run1(opt_pass, j, NULL);
    if (o) {
      CHECKF(count_prim(o, JX_P_broadcast_in_dim) == 0, "%d broadcasts left",
             count_prim(o, JX_P_broadcast_in_dim));
      CHECK(o->outvars[4] == o->invars[0]);
      CHECK(o->neqn == 5); /* add mul gt select mul */
      check_equiv("broadcast folding", j, o, args, NULL);
      if (o->neqn != 5) dump("broadcast folding", o);
    }
    jx_jaxpr_release(o);
  }
  jx_jaxpr_release(j);
  jx_pool_pop();
}

/* a broadcast whose result would change the op's shape is kept */
static jx_t f_bkeep(const jx_t *a, void *u) {
  (void)u;
  jx_t s = a[0], v = a[1]; /* f32[], f32[3] */
  jx_t sb = jx_broadcast_to(s, 2, (int64_t[]){2, 3});
  return jx_tuple(2, (jx_t[]){jx_add(sb, v), jx_add(jx_broadcast_to(s, 1, (int64_t[]){3}), s)});
}

static void test_broadcast_kept(void) {
  jx_pool_push();
  jx_t args[2] = {rand_array(JX_F32, 0, NULL), rand_array(JX_F32, 1, (int64_t[]){3})};
  jx_jaxpr *j = trace(f_bkeep, 2, args, NULL);
  jx_jaxpr *o = j ? run1(opt_pass, j, NULL) : NULL;
  if (o) {
    CHECK(count_prim(o, JX_P_broadcast_in_dim) == 2);
    check_equiv("broadcast kept", j, o, args, NULL);
  }
  jx_jaxpr_release(o);
  jx_jaxpr_release(j);
  jx_pool_pop();
}

/* ------------------------------------------------------------- inline */
static jx_t g_inner(const jx_t *a, void *u) { return jx_tanh(jx_add(jx_mul(a[0], a[1]), (jx_t)u)); }
static jx_t g_inner_eager(jx_t a, jx_t b, jx_t c) { return jx_tanh(jx_add(jx_mul(a, b), c)); }

/* a jit_call equation calling `sub` on vars ins */
static void add_call(jx_jaxpr *j, jx_jaxpr *sub, const int *ins, int *outs) {
  jx_params p;
  jx_params_init(&p, JX_PK_CALL);
  p.call.jaxpr = sub;
  jx_aval av[8];
  for (int k = 0; k < sub->nout; k++) av[k] = sub->avals[sub->outvars[k]];
  CHECK(!jx_jaxpr_add_eqn(j, JX_P_jit_call, &p, sub->nin, ins, sub->nout, av, outs));
}

/* a jaxpr whose one equation calls j (and releases the caller's j) */
static jx_jaxpr *wrap_call(jx_jaxpr *j) {
  jx_jaxpr *w = jx_jaxpr_new();
  int ins[8], outs[8];
  for (int i = 0; i < j->nin; i++) ins[i] = jx_jaxpr_add_invar(w, &j->avals[j->invars[i]]);
  add_call(w, j, ins, outs);
  jx_jaxpr_set_outs(w, j->nout, outs);
  jx_jaxpr_release(j);
  return w;
}

static void test_inline_by_hand(void) {
  jx_pool_push();
  jx_aval a23 = {.dtype = JX_F32, .ndim = 2, .shape = {2, 3}};
  jx_t C = rand_array(JX_F32, 2, (int64_t[]){2, 3});
  jx_t args[2] = {rand_array(JX_F32, 2, (int64_t[]){2, 3}), rand_array(JX_F32, 2, (int64_t[]){2, 3})};
  /* J1(a, b) = tanh(a*b + C) */
  jx_jaxpr *J1 = trace(g_inner, 2, args, C);
  /* J2(p, q) = J1(p, q) + p */
  jx_jaxpr *J2 = jx_jaxpr_new();
  int p = jx_jaxpr_add_invar(J2, &a23), q = jx_jaxpr_add_invar(J2, &a23), r, s;
  add_call(J2, J1, (int[]){p, q}, &r);
  CHECK(!jx_jaxpr_add_eqn(J2, JX_P_add, &jx_params_none, 2, (int[]){r, p}, 1, &a23, &s));
  jx_jaxpr_set_outs(J2, 1, &s);
  /* J3(x, y) = (J1(J2(x, y), y), J2(x, y), y) */
  jx_jaxpr *J3 = jx_jaxpr_new();
  int x = jx_jaxpr_add_invar(J3, &a23), y = jx_jaxpr_add_invar(J3, &a23), t, u;
  add_call(J3, J2, (int[]){x, y}, &t);
  add_call(J3, J1, (int[]){t, y}, &u);
  jx_jaxpr_set_outs(J3, 3, (int[]){u, t, y});

  jx_t t_ref = jx_add(g_inner_eager(args[0], args[1], C), args[0]);
  jx_t ref[3] = {g_inner_eager(t_ref, args[1], C), t_ref, args[1]};
  CHECK(J1 && J1->neqn == 3 && J1->nconst == 1);

  bool ch = false;
  jx_jaxpr *I = run1(jx_pass_inline, J3, &ch);
  if (I) {
    CHECK(ch);
    CHECK(count_prim(I, JX_P_jit_call) == 0);
    CHECKF(I->neqn == 7, "%d equations", I->neqn);
    CHECKF(I->nconst == 1 && I->consts[0] == C, "%d consts", I->nconst); /* deduped by pointer */
    check_equiv("inline", J3, I, args, ref);
    jx_jaxpr *I2 = run1(jx_pass_inline, I, &ch);
    CHECK(!ch);
    jx_jaxpr_release(I2);
  }
  jx_jaxpr *O = run1(opt_pass, J3, NULL);
  if (O) {
    CHECK(count_prim(O, JX_P_jit_call) == 0);
    CHECK(O->neqn == 7);
    check_equiv("inline optimize", J3, O, args, ref);
  }
  /* the inputs are untouched */
  CHECK(J3->neqn == 2 && count_prim(J3, JX_P_jit_call) == 2 && J2->neqn == 2);
  /* a malformed call is an error, not a crash */
  jx_jaxpr *bad = jx_jaxpr_new();
  int bx = jx_jaxpr_add_invar(bad, &a23), bo;
  {
    jx_params pp;
    jx_params_init(&pp, JX_PK_CALL);
    pp.call.jaxpr = J1;
    CHECK(!jx_jaxpr_add_eqn(bad, JX_P_jit_call, &pp, 1, &bx, 1, &a23, &bo)); /* J1 takes 2 */
  }
  jx_jaxpr_set_outs(bad, 1, &bo);
  jx_t err = NULL;
  jx_jaxpr *B = jx_optimize(bad, &err);
  CHECK(B == NULL && err && jx_error(err));
  jx_jaxpr_release(bad);
  jx_jaxpr_release(I);
  jx_jaxpr_release(O);
  jx_jaxpr_release(J3);
  jx_jaxpr_release(J2);
  jx_jaxpr_release(J1);
  jx_pool_pop();
}

/* jx_jit of a function calling another jitted function */
static jx_t nj_inner(const jx_t *a, void *u) {
  (void)u;
  return jx_mul(jx_tanh(a[0]), jx_scalar(1.0));
}
static jx_t nj_outer(const jx_t *a, void *u) {
  jx_fn *inner = u;
  jx_t h = jx_call(inner, (jx_t[]){jx_add(a[0], jx_scalar(0.0))});
  return jx_add(jx_call(inner, (jx_t[]){h}), jx_call(inner, (jx_t[]){h}));
}

static void test_nested_jit(void) {
  jx_pool_push();
  jx_fn *fi = jx_fn_new(nj_inner, 1, NULL);
  jx_fn *ji = jx_jit(fi);
  jx_fn *fo = jx_fn_new(nj_outer, 1, ji);
  jx_fn *jo = jx_jit(fo);
  jx_t x = rand_array(JX_F32, 1, (int64_t[]){7});
  jx_t err = NULL;
  jx_jaxpr *j = jx_trace_to_jaxpr(jo, &x, NULL, &err);
  CHECKF(j != NULL, "%s", err ? jx_error(err) : "");
  jx_jaxpr *o = j ? run1(opt_pass, j, NULL) : NULL;
  if (o) {
    jx_t ref = JX_CALL(fo, x); /* no jit at all (the inner call still jits) */
    jx_t h = jx_tanh(x);
    jx_t ref2 = jx_add(jx_tanh(h), jx_tanh(h));
    CHECK(close_values(ref, ref2, 1e-6, 1e-6));
    int calls = count_prim(j, JX_P_jit_call);
    bool can_eval = !calls || jx_prim_rules[JX_P_jit_call]->impl;
    printf("nested jit: %d jit_call equations traced (%d with nested ones; %s); %d equations -> %d\n", calls,
           count_calls_deep(j), calls ? "all inlined" : "jit inlines at trace time", j->neqn, o->neqn);
    CHECK(count_prim(o, JX_P_jit_call) == 0);
    CHECKF(o->neqn == 3, "%d equations", o->neqn); /* tanh, tanh, add (the two inner calls cse'd) */
    check_equiv("nested jit", j, o, &x, can_eval ? NULL : &ref);
    if (o->neqn != 3) dump("nested jit", o);
  }
  jx_jaxpr_release(o);
  jx_jaxpr_release(j);
  jx_fn_free(jo);
  jx_fn_free(fo);
  jx_fn_free(ji);
  jx_fn_free(fi);
  jx_pool_pop();
}

/* -------------------------------------- constants that are outer tracers */
static int tc_exp_after_fold = -1, tc_tracer_const = -1, tc_eqns_after_opt = -1;
static jx_t tc_inner(const jx_t *a, void *u) {
  jx_t c = u; /* a jvp tracer of the enclosing jx_jvp */
  return jx_add(jx_exp(jx_mul(c, jx_scalar(1.0))), a[0]);
}
static jx_t tc_body(const jx_t *a, void *u) {
  (void)u;
  jx_fn *inner = jx_fn_new(tc_inner, 1, a[0]);
  jx_t err = NULL, out = NULL;
  jx_jaxpr *j = jx_trace_to_jaxpr(inner, &a[1], NULL, &err);
  jx_fn_free(inner);
  if (!j) return err;
  tc_tracer_const = 0;
  for (int i = 0; i < j->nconst; i++) tc_tracer_const += jx_is_tracer(j->consts[i]);
  jx_jaxpr *f = jx_pass_fold(j, NULL, &err);
  if (f) tc_exp_after_fold = count_prim(f, JX_P_exp);
  jx_jaxpr *o = jx_optimize(j, &err);
  if (o) {
    tc_eqns_after_opt = o->neqn;
    err = jx_eval_jaxpr(o, &a[1], &out);
  }
  jx_jaxpr_release(f);
  jx_jaxpr_release(o);
  jx_jaxpr_release(j);
  return o ? (err ? err : out) : err;
}

static void test_tracer_consts(void) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(tc_body, 2, NULL);
  jx_t x = rand_array(JX_F32, 1, (int64_t[]){4}), y = rand_array(JX_F32, 1, (int64_t[]){4});
  jx_t tx = rand_array(JX_F32, 1, (int64_t[]){4}), ty = rand_array(JX_F32, 1, (int64_t[]){4});
  jx_t r = jx_jvp(f, (jx_t[]){x, y}, (jx_t[]){tx, ty});
  CHECKF(jx_ok(r), "%s", jx_error(r));
  CHECK(tc_tracer_const == 1);
  CHECK(tc_exp_after_fold == 1); /* exp of a tracer constant is not folded */
  CHECK(tc_eqns_after_opt == 2); /* exp, add (the *1 is gone) */
  if (jx_ok(r)) {
    jx_t ex = jx_exp(x);
    CHECK(close_values(jx_at(r, 0), jx_add(ex, y), 1e-6, 1e-6));
    CHECK(close_values(jx_at(r, 1), jx_add(jx_mul(ex, tx), ty), 1e-5, 1e-6));
  }
  jx_fn_free(f);
  jx_pool_pop();
}

/* ---------------------------------------------------- random programs */
enum { MAXV = 96, MAXSIZE = 256 };
typedef struct {
  uint64_t seed;
} prog;

static uint64_t prng; /* the generator's own stream, seeded per program */
static uint64_t prand(void) {
  uint64_t z = (prng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static int pick(int n) { return (int)(prand() % (uint64_t)n); }

static bool broadcastable(jx_t a, jx_t b) {
  int ra = jx_ndim(a), rb = jx_ndim(b), r = ra > rb ? ra : rb;
  int64_t n = 1;
  for (int d = 0; d < r; d++) {
    int ka = d - (r - ra), kb = d - (r - rb);
    int64_t sa = ka >= 0 ? jx_shape(a)[ka] : 1, sb = kb >= 0 ? jx_shape(b)[kb] : 1;
    if (sa != sb && sa != 1 && sb != 1) return false;
    n *= sa > sb ? sa : sb;
  }
  return n <= MAXSIZE;
}

static jx_t small_const(jx_t like) {
  int64_t n = jx_size(like);
  float *d = malloc(sizeof(float) * (size_t)(n + 1));
  bool uniform = pick(3) == 0;
  float v = (float)unif();
  for (int64_t i = 0; i < n; i++) d[i] = uniform ? v : (float)unif();
  jx_t c = jx_array(JX_F32, jx_ndim(like), jx_shape(like), d);
  free(d);
  return c;
}

static jx_t scalar_const(void) {
  switch (pick(4)) {
    case 0: return jx_scalar(0.0);
    case 1: return jx_scalar(1.0);
    case 2: return jx_scalar_of(JX_F32, 1.0);
    default: return jx_scalar(unif());
  }
}

static jx_t rand_perm_transpose(jx_t a) {
  int r = jx_ndim(a), p[JX_MAX_RANK];
  for (int i = 0; i < r; i++) p[i] = i;
  for (int i = r - 1; i > 0; i--) {
    int k = pick(i + 1), t = p[i];
    p[i] = p[k], p[k] = t;
  }
  return jx_lax_transpose(a, p);
}

static jx_t rand_reshape(jx_t a) {
  int r = jx_ndim(a);
  int64_t s[JX_MAX_RANK], n = jx_size(a);
  switch (pick(4)) {
    case 0: return jx_reshape(a, 1, &n);
    case 1:
      for (int i = 0; i < r; i++) s[i] = jx_shape(a)[r - 1 - i];
      return jx_reshape(a, r, s);
    case 2:
      if (r >= 4) return jx_reshape(a, 1, &n);
      s[0] = 1;
      for (int i = 0; i < r; i++) s[i + 1] = jx_shape(a)[i];
      return jx_reshape(a, r + 1, s);
    default:
      if (n % 2 == 0 && n > 2) return jx_reshape(a, 2, (int64_t[]){2, n / 2});
      return jx_reshape(a, r, jx_shape(a)); /* to its own shape */
  }
}

static jx_t rand_broadcast(jx_t a) {
  int r = jx_ndim(a);
  int64_t s[JX_MAX_RANK], k = 1 + pick(3);
  if (r >= 4 || jx_size(a) * k > MAXSIZE) return jx_broadcast_to(a, r, jx_shape(a));
  s[0] = k;
  for (int i = 0; i < r; i++) s[i + 1] = jx_shape(a)[i];
  return jx_broadcast_to(a, r + 1, s);
}

static jx_t rand_program(const jx_t *args, void *u) {
  prog *pg = u;
  prng = pg->seed;
  jx_t v[MAXV];
  int n = 0;
  for (int i = 0; i < 4; i++) v[n++] = args[i];
  int steps = 4 + pick(20);
  for (int st = 0; st < steps && n < MAXV - 4; st++) {
    /* operands: mostly recent values, so that chains form */
    int ia = pick(3) ? n - 1 - pick(n < 4 ? n : 4) : pick(n);
    jx_t a = v[ia], b = NULL;
    for (int t = 0; t < 8 && !b; t++) {
      jx_t c = v[pick(n)];
      if (broadcastable(a, c)) b = c;
    }
    if (!b) b = scalar_const();
    jx_t r = NULL;
    switch (pick(17)) {
      case 0: r = jx_add(a, b); break;
      case 1: r = jx_mul(a, b); break;
      case 2: r = jx_sub(a, b); break;
      case 3: r = jx_exp(jx_tanh(a)); break;
      case 4: r = jx_tanh(a); break;
      case 5: r = rand_perm_transpose(a); break;
      case 6: r = rand_reshape(a); break;
      case 7: r = rand_broadcast(a); break;
      case 8:
        if (jx_ndim(a) == 0)
          r = jx_neg(a);
        else
          r = jx_sum_axes(a, 1, (int[]){pick(jx_ndim(a))}, pick(2));
        break;
      case 9: /* identities */
        switch (pick(8)) {
          case 0: r = jx_mul(a, jx_scalar(1.0)); break;
          case 1: r = jx_add(jx_scalar(0.0), a); break;
          case 2: r = jx_sub(a, jx_scalar(0.0)); break;
          case 3: r = jx_div(a, jx_scalar(1.0)); break;
          case 4: r = jx_neg(jx_neg(a)); break;
          case 5: r = jx_transpose(jx_transpose(a, NULL), NULL); break;
          case 6: r = jx_lax_convert(a, JX_F32); break;
          default: r = jx_mul(jx_ones(JX_F32, jx_ndim(a), jx_shape(a)), a); break;
        }
        break;
      case 10: /* common subexpressions */
        v[n++] = jx_tanh(jx_mul(a, b));
        r = jx_tanh(jx_mul(a, b));
        break;
      case 11: r = jx_add(a, small_const(a)); break;
      case 12: r = jx_mul(a, jx_exp(small_const(a))); break; /* folds */
      case 13: /* a broadcast constant bigger than the folding limit */
        r = jx_add(jx_sum(jx_broadcast_to(scalar_const(), 2, (int64_t[]){80, 64})), a);
        break;
      case 14: /* a 0-d value broadcast into an elementwise op */
        r = jx_mul(jx_broadcast_to(v[3], jx_ndim(a), jx_shape(a)), a);
        break;
      case 15: r = jx_where(jx_gt(a, b), a, jx_broadcast_to(jx_sum(a), jx_ndim(a), jx_shape(a))); break;
      default: r = rand_reshape(rand_perm_transpose(a)); break;
    }
    if (!jx_ok(r)) return r;
    v[n++] = r;
  }
  int nout = 1 + pick(3);
  jx_t outs[3];
  for (int i = 0; i < nout; i++) outs[i] = v[pick(2) ? n - 1 - pick(n < 3 ? n : 3) : pick(n)];
  return jx_tuple(nout, outs);
}

static void test_random_programs(int nprog) {
  static const struct {
    const char *name;
    pass_fn fn;
  } passes[] = {{"inline", jx_pass_inline}, {"dce", jx_pass_dce},           {"cse", jx_pass_cse},
                {"fold", jx_pass_fold},     {"simplify", jx_pass_simplify}, {"optimize", opt_pass}};
  long before = 0, after = 0;
  int nchanged[sizeof passes / sizeof *passes] = {0};
  int failed_progs = 0;
  for (int pi = 0; pi < nprog; pi++) {
    jx_pool_push();
    prog pg = {.seed = 0xC0FFEEull + (uint64_t)pi * 7919u};
    jx_t args[4] = {rand_array(JX_F32, 2, (int64_t[]){2, 3}), rand_array(JX_F32, 1, (int64_t[]){3}),
                    rand_array(JX_F32, 3, (int64_t[]){2, 1, 3}), rand_array(JX_F32, 0, NULL)};
    jx_jaxpr *j = trace(rand_program, 4, args, &pg);
    if (!j) {
      jx_pool_pop();
      continue;
    }
    before += j->neqn;
    bool bad = false;
    char *text0 = jx_jaxpr_print(j);
    for (size_t k = 0; k < sizeof passes / sizeof *passes; k++) {
      bool ch = false;
      jx_jaxpr *o = run1(passes[k].fn, j, &ch);
      nchanged[k] += ch;
      if (!o) {
        bad = true;
        continue;
      }
      char what[64];
      snprintf(what, sizeof what, "program %d, %s", pi, passes[k].name);
      if (!check_equiv(what, j, o, args, NULL)) bad = true;
      if (passes[k].fn == opt_pass) {
        after += o->neqn;
        CHECKF(o->neqn <= j->neqn, "program %d grew", pi);
        for (int i = 0; i < o->nconst; i++) CHECK(jx_size(o->consts[i]) <= JX_FOLD_MAX_ELEMS);
        /* fixed point: optimizing again changes nothing */
        jx_t err = NULL;
        jx_jaxpr *o2 = jx_optimize(o, &err);
        CHECKF(o2 && o2->neqn == o->neqn && o2->nconst == o->nconst, "program %d: not a fixed point", pi);
        jx_jaxpr_release(o2);
      }
      if (bad && passes[k].fn == opt_pass) dump("optimized", o);
      jx_jaxpr_release(o);
    }
    if (pi % 4 == 0) { /* the program called through two levels of jit_call */
      jx_jaxpr_retain(j);
      jx_jaxpr *w = wrap_call(wrap_call(j));
      jx_t *ref = malloc(sizeof(jx_t) * (size_t)j->nout);
      jx_t e = jx_eval_jaxpr(j, args, ref);
      jx_jaxpr *o = run1(opt_pass, w, NULL);
      if (o && !e) {
        CHECK(count_prim(o, JX_P_jit_call) == 0);
        char what[64];
        snprintf(what, sizeof what, "program %d through jit_call", pi);
        if (!check_equiv(what, w, o, args, ref)) bad = true;
      }
      free(ref);
      jx_jaxpr_release(o);
      jx_jaxpr_release(w);
    }
    char *text1 = jx_jaxpr_print(j);
    CHECKF(text0 && text1 && !strcmp(text0, text1) && atomic_load(&j->refs) == 1,
           "program %d: a pass modified its input", pi);
    jx_free(text0);
    jx_free(text1);
    if (bad) {
      failed_progs++;
      dump("original", j);
    }
    jx_jaxpr_release(j);
    jx_pool_pop();
  }
  printf("random programs: %d run, %d failed; %ld equations -> %ld after jx_optimize\n", nprog, failed_progs,
         before, after);
  printf("programs each pass alone changed:");
  for (size_t k = 0; k + 1 < sizeof passes / sizeof *passes; k++)
    printf(" %s %d", passes[k].name, nchanged[k]);
  printf("\n");
  CHECK(nchanged[1] > nprog / 2 && nchanged[2] > nprog / 4 && nchanged[3] > nprog / 4 &&
        nchanged[4] > nprog / 2);
}

int main(void) {
  jx_pool_push();
  test_x1_0();
  test_identities();
  test_not_identities();
  test_cse();
  test_dce();
  test_layout();
  test_fold();
  test_big_broadcast();
  test_broadcast_folding();
  test_broadcast_kept();
  test_inline_by_hand();
  test_nested_jit();
  test_tracer_consts();
  test_random_programs(200);
  jx_pool_pop();
  return check_report("passes");
}
