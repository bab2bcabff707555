/* The compile pipeline's checks and limits: the loop-IR verifier
 * (jx_program_verify) and the jaxpr typecheck each catch a corrupted
 * program or jaxpr with a message naming what is wrong (and pass the
 * uncorrupted ones); in a build with JX_DEBUG_CHECKS (Debug, sanitizers)
 * jx_compile and jx_optimize run them; the backend is chosen by
 * JX_BACKEND; and jit accepts equations of any width (1,000-input
 * concatenates, wide sums, folding of wide constant equations) as eager
 * does. */
#include "api/trace_fn.h"
#include "check.h"
#include "compile/compile.h"
#include "compile/passes.h"
#include "jit_build.h"
#include "prims/prims.h"
#include "trace/trace.h"

/* ------------------------------------------------------------- helpers */
/* an optimized jaxpr (kept in *opt: kernels point into it) fused */
static jx_program *program_of(const jx_jaxpr *j, jx_jaxpr **opt) {
  jx_t err = NULL;
  *opt = jx_optimize(j, &err);
  CHECKF(*opt != NULL, "optimize failed: %s", err ? jx_error(err) : "?");
  jx_program *p = *opt ? jx_fuse(*opt, &err) : NULL;
  CHECKF(p != NULL, "fuse failed: %s", err ? jx_error(err) : "?");
  return p;
}

static int find_kernel(const jx_program *p, jx_lkind kind) {
  for (int k = 0; k < p->nkernel; k++)
    if (p->kernels[k].kind == kind) return k;
  return -1;
}

/* the message of r contains sub (and r is an error) */
#define EXPECT_VERIFY(p, ...)    EXPECT_ERROR(jx_program_verify(p), "program verifier", __VA_ARGS__)
#define EXPECT_TYPECHECK(j, ...) EXPECT_ERROR(jx_jaxpr_typecheck(j), "typecheck", __VA_ARGS__)

/* ------------------------------------------------ the program verifier */
/* sum(tanh(x @ w) * (x @ w)) + sum(x): a GEMM CALL, MAP and REDUCE
 * kernels, temporaries read by later kernels */
static jx_t body_mixed(const jx_t *a, void *u) {
  (void)u;
  jx_t y = jx_matmul(a[0], a[1]);
  return jx_add(jx_sum(jx_mul(jx_tanh(y), y)), jx_sum(a[0]));
}

static jx_t fresh(int m, int n, double v) { return jx_full(JX_F32, 2, (int64_t[]){m, n}, v); }

/* kernel k's first load (expression index), or -1 */
static int first_load(const jx_kernel *kn) {
  for (int x = 0; x < kn->nexpr; x++)
    if (kn->exprs[x].kind == JX_LX_LOAD) return x;
  return -1;
}

static int first_op(const jx_kernel *kn) {
  for (int x = 0; x < kn->nexpr; x++)
    if (kn->exprs[x].kind == JX_LX_OP && kn->exprs[x].nargs > 0) return x;
  return -1;
}

/* a MAP or REDUCE kernel after the first kernel that loads a temporary */
static int reader_of_temp(const jx_program *p, int *xo) {
  for (int k = 1; k < p->nkernel; k++) {
    const jx_kernel *kn = &p->kernels[k];
    if (kn->kind != JX_LK_MAP && kn->kind != JX_LK_REDUCE) continue;
    for (int x = 0; x < kn->nexpr; x++)
      if (kn->exprs[x].kind == JX_LX_LOAD && p->bufs[kn->exprs[x].buf].kind == JX_LB_TEMP) return *xo = x, k;
  }
  return -1;
}

static void test_verify_kernels(jx_program *p) {
  int km = find_kernel(p, JX_LK_MAP), kc = find_kernel(p, JX_LK_CALL), x = 0, kr = reader_of_temp(p, &x);
  CHECKF(km >= 0 && kc >= 0 && kr > 0, "kernels: map %d call %d reader %d", km, kc, kr);
  if (km < 0 || kc < 0 || kr <= 0) return;
  jx_kernel *m = &p->kernels[km], *c = &p->kernels[kc], *r = &p->kernels[kr];
  int out = m->out;
  m->out = p->nbuf + 5;
  EXPECT_VERIFY(p, "kernel", "writes buffer", "out of range");
  m->out = out;
  /* a load reading a temporary after its last reader released it */
  jx_lbuf *tb = &p->bufs[r->exprs[x].buf];
  int last = tb->last;
  tb->last = kr - 1;
  EXPECT_VERIFY(p, "after its last reader");
  tb->last = last;
  /* a load of a buffer a later kernel writes */
  int lx = first_load(&p->kernels[0]), last_out = p->kernels[p->nkernel - 1].out;
  if (p->kernels[0].kind != JX_LK_CALL && lx >= 0) {
    int b = p->kernels[0].exprs[lx].buf;
    p->kernels[0].exprs[lx].buf = last_out;
    EXPECT_VERIFY(p, "kernel 0", "before any kernel writes it");
    p->kernels[0].exprs[lx].buf = b;
  }
  /* an expression argument that is not an earlier expression */
  int ox = first_op(r);
  CHECK(ox >= 0);
  if (ox >= 0) {
    int a0 = r->exprs[ox].args[0];
    r->exprs[ox].args[0] = ox;
    EXPECT_VERIFY(p, "not an earlier one");
    r->exprs[ox].args[0] = a0;
  }
  /* a load's dtype and offsets */
  jx_lexpr *ld = &r->exprs[x];
  jx_dtype dt = ld->dtype;
  ld->dtype = JX_F64;
  EXPECT_VERIFY(p, "loads f64 from buffer");
  ld->dtype = dt;
  int64_t off = ld->at.off;
  ld->at.off += jx_aval_size(&p->bufs[ld->buf].aval);
  EXPECT_VERIFY(p, "loads elements");
  ld->at.off = off;
  /* a MAP kernel storing fewer elements than its buffer holds */
  if (m->ndim > 0 && m->shape[0] > 1) {
    m->shape[0]--;
    EXPECT_VERIFY(p, "stores", "elements into buffer");
    m->shape[0]++;
  }
  /* an expression of no kind */
  uint8_t kind = m->exprs[0].kind;
  m->exprs[0].kind = 9;
  EXPECT_VERIFY(p, "expression 0 has kind 9");
  m->exprs[0].kind = kind;
  /* a CALL with the wrong operand count, or output type */
  int nin = c->nin;
  c->nin = 1;
  EXPECT_VERIFY(p, "has 1 inputs", "dot_general takes 2");
  c->nin = nin;
  jx_aval *oa = &p->bufs[c->outs[0]].aval;
  oa->shape[0]++;
  EXPECT_VERIFY(p, "output 0 goes to buffer", "dot_general gives");
  oa->shape[0]--;
  int epi = c->epilogue;
  c->epilogue = kc + 1;
  EXPECT_VERIFY(p, "epilogue");
  c->epilogue = epi;
}

static void test_verify_program(void) {
  jx_jaxpr *j = trace(body_mixed, 2, (jx_t[]){fresh(4, 3, 0.5), fresh(3, 5, 0.25)}, NULL);
  jx_jaxpr *opt = NULL;
  jx_program *p = j ? program_of(j, &opt) : NULL;
  if (!p) goto done;
  jx_t e = jx_program_verify(p);
  CHECKF(!e, "a good program fails: %s", jx_error(e));
  test_verify_kernels(p);
  int o = p->outs[0];
  p->outs[0] = -2;
  EXPECT_VERIFY(p, "output 0 is buffer -2");
  p->outs[0] = o;
  for (int b = 0; b < p->nbuf; b++) {
    if (p->bufs[b].kind != JX_LB_TEMP) continue;
    p->bufs[b].kind = JX_LB_CONST;
    p->bufs[b].index = 7;
    EXPECT_VERIFY(p, "is constant 7 of");
    p->bufs[b].kind = JX_LB_TEMP;
    p->bufs[b].index = -1;
    break;
  }
  int nall = p->nall;
  p->nall = 0;
  EXPECT_VERIFY(p, "table of programs");
  p->nall = nall;
  e = jx_program_verify(p);
  CHECKF(!e, "restored program fails: %s", jx_error(e));
  CHECK(jx_program_verify(NULL) != NULL);
done:
  jx_program_free(p);
  jx_jaxpr_release(opt);
  jx_jaxpr_release(j);
}

/* a loop: the body program is verified too, with its counts */
static jx_t loop_body(const jx_t *a, void *u) {
  (void)u;
  return jx_add(jx_mul(a[1], jx_scalar(1.5)), jx_tanh(a[1]));
}
static jx_t body_loop(const jx_t *a, void *u) {
  jx_fn *f = u;
  return jx_fori_loop(0, 5, f, jx_exp(a[0]));
}

static void test_verify_loop(void) {
  jx_fn *lb = jx_fn_new(loop_body, 2, NULL);
  jx_jaxpr *j = trace(body_loop, 1, (jx_t[]){fresh(3, 4, 0.1)}, lb);
  jx_jaxpr *opt = NULL;
  jx_program *p = j ? program_of(j, &opt) : NULL;
  int kl = p ? find_kernel(p, JX_LK_LOOP) : -1;
  CHECKF(kl >= 0, "no LOOP kernel");
  if (kl < 0) goto done;
  jx_kernel *k = &p->kernels[kl];
  jx_program *s = k->loop.sub[0];
  jx_t e = jx_program_verify(p);
  CHECKF(!e, "a good loop program fails: %s", jx_error(e));
  int nsub = k->loop.nsub;
  k->loop.nsub = 2;
  EXPECT_VERIFY(p, "has 2 bodies", "scan has 1");
  k->loop.nsub = nsub;
  int nout = s->nout;
  s->nout = nout + 1;
  EXPECT_VERIFY(p, "body 0 gives");
  s->nout = nout;
  int ks = -1, ox = -1;
  for (int i = 0; i < s->nkernel && ox < 0; i++)
    if (s->kernels[i].kind == JX_LK_MAP && (ox = first_op(&s->kernels[i])) >= 0) ks = i;
  CHECKF(ks >= 0, "no MAP kernel with an operation in the body");
  if (ks >= 0) {
    int a0 = s->kernels[ks].exprs[ox].args[0];
    s->kernels[ks].exprs[ox].args[0] = ox + 1;
    EXPECT_VERIFY(p, "body 0: program verifier: program 1 kernel", "not an earlier one");
    s->kernels[ks].exprs[ox].args[0] = a0;
  }
  e = jx_program_verify(p);
  CHECKF(!e, "restored loop program fails: %s", jx_error(e));
done:
  jx_program_free(p);
  jx_jaxpr_release(opt);
  jx_jaxpr_release(j);
  jx_fn_free(lb);
}

/* ------------------------------------------------------ the typecheck */
static jx_t body_chain(const jx_t *a, void *u) {
  (void)u;
  jx_t y = jx_mul(a[0], a[1]);
  return jx_add(jx_tanh(y), a[0]);
}

static jx_t chain_args[2];

static jx_jaxpr *chain_jaxpr(void) {
  chain_args[0] = fresh(2, 3, 1), chain_args[1] = fresh(2, 3, 2);
  return trace(body_chain, 2, chain_args, NULL);
}

static void test_typecheck(void) {
  jx_jaxpr *j = chain_jaxpr();
  if (!j) return;
  CHECK(j->neqn >= 3);
  jx_t e = jx_jaxpr_typecheck(j);
  CHECKF(!e, "a good jaxpr fails: %s", jx_error(e));
  jx_eqn *q0 = &j->eqns[0], *q1 = &j->eqns[1];
  jx_aval a = j->avals[q0->out[0]];
  j->avals[q0->out[0]].dtype = JX_F64;
  EXPECT_TYPECHECK(j, "equation 0 (mul) output 0 is f64[2,3] but abstract_eval gives f32[2,3]");
  j->avals[q0->out[0]] = a;
  int v = q1->in[0];
  q1->in[0] = j->nvars + 3;
  EXPECT_TYPECHECK(j, "equation 1", "out of range");
  q1->in[0] = j->eqns[2].out[0];
  EXPECT_TYPECHECK(j, "equation 1", "before its definition");
  q1->in[0] = v;
  int nin = q0->nin;
  q0->nin = 1;
  EXPECT_TYPECHECK(j, "equation 0 (mul) has 1 inputs");
  q0->nin = nin;
  int o = q0->out[0];
  q0->out[0] = j->invars[0];
  EXPECT_TYPECHECK(j, "binds variable");
  q0->out[0] = o;
  int ov = j->outvars[0];
  j->outvars[0] = jx_jaxpr_add_var(j, &a);
  EXPECT_TYPECHECK(j, "output 0 is undefined");
  j->outvars[0] = ov;
  e = jx_jaxpr_typecheck(j);
  CHECKF(!e, "restored jaxpr fails: %s", jx_error(e));
  jx_jaxpr_release(j);
}

/* ------------------------------------ the checks run inside jx_compile */
__attribute__((unused)) static const jx_compile_host host = {jx_eval_jaxpr};

static void test_checks_on(void) {
#ifdef JX_DEBUG_CHECKS
  CHECK(jx_compile_checks_enabled());
  jx_jaxpr *j = chain_jaxpr();
  if (!j) return;
  /* ill-typed: the first equation's output claims f64 */
  j->avals[j->eqns[0].out[0]].dtype = JX_F64;
  jx_t err = NULL;
  jx_jaxpr *o = jx_optimize(j, &err);
  CHECK(o == NULL);
  EXPECT_ERROR(err, "optimize: after inline: typecheck", "abstract_eval gives f32[2,3]");
  jx_executable *x = jx_compile(j, jx_backend_host(), &host, &err);
  CHECK(x == NULL);
  EXPECT_ERROR(err, "typecheck", "equation 0 (mul)");
  jx_executable_free(x);
  jx_jaxpr_release(o);
  jx_jaxpr_release(j);
#else
  CHECK(!jx_compile_checks_enabled());
#endif
}

/* --------------------------------------------------- choosing a backend */
static void test_backend_choice(void) {
  jx_t err = NULL;
  const jx_backend *be = jx_backend_get(&err);
  CHECK(be == jx_backend_host() && !err);
  setenv("JX_BACKEND", "tpu9", 1);
  CHECK(jx_backend_get(&err) == NULL);
  EXPECT_ERROR(err, "JX_BACKEND=tpu9", "no such backend", "cpu");
  /* a jit compiled under it reports it, not a crash */
  jx_fn *g = jx_fn_new(body_chain, 2, NULL), *f = jx_jit(g);
  jx_t r = JX_CALL(f, fresh(2, 2, 1), fresh(2, 2, 3));
  EXPECT_ERROR(r, "no such backend");
  setenv("JX_BACKEND", "cpu", 1);
  CHECK(jx_backend_get(&err) == jx_backend_host());
  jx_fn_free(f);
  f = jx_jit(g);
  r = JX_CALL(f, fresh(2, 2, 1), fresh(2, 2, 3));
  CHECK(jx_ok(r));
  if (jx_ok(r)) CHECK_CLOSE(jx_item(jx_sum(r)), 4 * (tanh(3.0) + 1), 1e-6, 0);
  jx_fn_free(f);
  jx_fn_free(g);
  unsetenv("JX_BACKEND");
}

/* ------------------------------------------------------- wide equations */
enum { WIDE = 1000 };

static jx_t body_concat(const jx_t *a, void *u) {
  int n = *(const int *)u;
  jx_t xs[WIDE];
  for (int i = 0; i < n; i++) xs[i] = jx_reshape(jx_reshape(a[i], 1, (int64_t[]){2}), 1, (int64_t[]){2});
  return jx_mul(jx_concatenate(n, xs, 0), jx_scalar(2.0));
}

static jx_t body_sum(const jx_t *a, void *u) {
  int n = *(const int *)u;
  jx_t s = a[0];
  for (int i = 1; i < n; i++) s = jx_add(s, a[i]);
  return s;
}

/* jit of body over n inputs gives eager's values */
static void check_jit_matches(jx_body body, int n, const char *what) {
  jx_t args[WIDE];
  for (int i = 0; i < n; i++) args[i] = jx_full(JX_F32, 1, (int64_t[]){2}, 0.5 * i - 3);
  jx_t want = body(args, &n);
  jx_fn *g = jx_fn_new(body, n, &n), *f = jx_jit(g);
  jx_t got = jx_call(f, args);
  CHECKF(jx_ok(got), "%s of %d: %s", what, n, jx_error(got));
  if (jx_ok(got) && jx_ok(want)) {
    CHECK(jx_aval_eq(&got->aval, &want->aval));
    CHECK_CLOSE(jx_item(jx_max(jx_abs(jx_sub(got, want)))), 0, 0, 1e-6 * n);
  }
  jx_fn_free(f);
  jx_fn_free(g);
}

/* folding a wide equation of constants, as a narrow one is folded */
static jx_t consts[WIDE];
static jx_t body_const_concat(const jx_t *a, void *u) {
  int n = *(const int *)u;
  return jx_add(jx_concatenate(n, consts, 0), a[0]);
}

static void test_wide(void) {
  check_jit_matches(body_concat, WIDE, "concatenate");
  check_jit_matches(body_sum, 200, "sum");
  for (int i = 0; i < WIDE; i++) consts[i] = jx_full(JX_F32, 1, (int64_t[]){2}, i);
  int ns[] = {2, 20, WIDE};
  for (int t = 0; t < 3; t++) {
    jx_jaxpr *j =
        trace(body_const_concat, 1, (jx_t[]){jx_full(JX_F32, 1, (int64_t[]){2 * ns[t]}, 1)}, &ns[t]);
    jx_t err = NULL;
    jx_jaxpr *o = j ? jx_optimize(j, &err) : NULL;
    CHECKF(o && o->neqn == 1 && o->eqns[0].prim == JX_P_add, "%d constants: %d equations after the passes",
           ns[t], o ? o->neqn : -1);
    jx_jaxpr_release(o);
    jx_jaxpr_release(j);
  }
}

int main(void) {
  if (check_private_cache("pipeline")) return 1;
  jx_pool_push();
  test_verify_program();
  test_verify_loop();
  test_typecheck();
  test_checks_on();
  test_backend_choice();
  test_wide();
  jx_pool_pop();
  check_private_cache_remove();
  return check_report("pipeline");
}
