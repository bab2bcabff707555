/* Typed params: equal params hash equal however they were built (and CSE
 * merges their equations), each params kind prints as JAX writes it, a
 * primitive bound with params of another kind is an error naming it, and
 * the inner jaxprs of higher-order params are listed by their fields. */
#include "check.h"
#include "compile/passes.h"
#include "ir/jaxpr.h"
#include "prims/lax.h"

/* --------------------------------------------------------------- hashing */
/* Params built in different orders, over stack memory dirtied first (so
 * padding that init did not zero would show), hash and compare equal. */
static void test_hash_orders(void) {
  jx_params a, b;
  memset(&a, 0xA5, sizeof a);
  memset(&b, 0x5A, sizeof b);
  jx_params_init(&a, JX_PK_SCAN);
  jx_params_init(&b, JX_PK_SCAN);
  a.scan.nconst = 2, a.scan.ncarry = 1, a.scan.length = 7, a.scan.reverse = true;
  b.scan.reverse = true, b.scan.length = 7, b.scan.ncarry = 1, b.scan.nconst = 2;
  CHECK(jx_params_hash(&a) == jx_params_hash(&b));
  CHECK(!memcmp(&a, &b, sizeof a));
  b.scan.reverse = false;
  CHECK(jx_params_hash(&a) != jx_params_hash(&b));

  memset(&a, 0xFF, sizeof a);
  memset(&b, 0x00, sizeof b);
  jx_params_init(&a, JX_PK_CONVERT);
  jx_params_init(&b, JX_PK_CONVERT);
  a.convert.dtype = JX_F32, a.convert.weak = true; /* bool next to an enum: padding */
  b.convert.weak = true, b.convert.dtype = JX_F32;
  CHECK(jx_params_hash(&a) == jx_params_hash(&b));

  /* same bytes, another kind: not equal */
  jx_params_init(&a, JX_PK_CONCAT);
  jx_params_init(&b, JX_PK_GATHER);
  a.concat.axis = 1, b.gather.noffset = 1;
  CHECK(jx_params_hash(&a) != jx_params_hash(&b));
  /* the primitives without params share one all-zero value */
  jx_params_init(&a, JX_PK_NONE);
  CHECK(!memcmp(&a, &jx_params_none, sizeof a));
}

/* Two reduce_sum equations over the same input whose params were built in
 * different orders (over dirtied memory) are one equation after CSE; a
 * third with other axes stays. */
static void test_cse_merges(void) {
  jx_pool_push();
  jx_jaxpr *j = jx_jaxpr_new();
  jx_aval a = {.dtype = JX_F32, .ndim = 3, .shape = {2, 3, 4}},
          r = {.dtype = JX_F32, .ndim = 1, .shape = {3}};
  jx_aval r2 = {.dtype = JX_F32, .ndim = 2, .shape = {2, 3}};
  int x = jx_jaxpr_add_invar(j, &a), o[3];
  jx_params p1, p2, p3;
  memset(&p1, 0x11, sizeof p1), memset(&p2, 0xEE, sizeof p2);
  jx_params_init(&p1, JX_PK_REDUCE);
  jx_params_init(&p2, JX_PK_REDUCE);
  jx_params_init(&p3, JX_PK_REDUCE);
  p1.reduce.naxes = 2, p1.reduce.axes[0] = 0, p1.reduce.axes[1] = 2;
  p2.reduce.axes[1] = 2, p2.reduce.axes[0] = 0, p2.reduce.naxes = 2;
  p3.reduce.naxes = 1, p3.reduce.axes[0] = 2;
  CHECK(!jx_jaxpr_add_eqn(j, JX_P_reduce_sum, &p1, 1, &x, 1, &r, &o[0]));
  CHECK(!jx_jaxpr_add_eqn(j, JX_P_reduce_sum, &p2, 1, &x, 1, &r, &o[1]));
  CHECK(!jx_jaxpr_add_eqn(j, JX_P_reduce_sum, &p3, 1, &x, 1, &r2, &o[2]));
  CHECK(!jx_jaxpr_set_outs(j, 3, o));
  CHECK(!jx_jaxpr_typecheck(j));
  bool ch = false;
  jx_t err = NULL;
  jx_jaxpr *c = jx_pass_cse(j, &ch, &err);
  CHECKF(c != NULL, "cse: %s", err ? jx_error(err) : "?");
  if (c) {
    CHECKF(ch && c->neqn == 2, "%d equations after cse (want 2)", c->neqn);
    CHECK(c->outvars[0] == c->outvars[1] && c->outvars[0] != c->outvars[2]);
    jx_jaxpr_release(c);
  }
  jx_jaxpr_release(j);
  jx_pool_pop();
}

/* -------------------------------------------------------------- printing */
/* The text of a one-equation jaxpr of prim on inputs of avals in. */
static char *print_one(jx_prim prim, const jx_params *pa, int nin, const jx_aval *in) {
  jx_aval out[4];
  if (jx_abstract_eval(prim, in, nin, pa, 1, out)) return NULL;
  jx_jaxpr *j = jx_jaxpr_new();
  int v[4], o;
  for (int i = 0; i < nin; i++) v[i] = jx_jaxpr_add_invar(j, &in[i]);
  char *s = NULL;
  if (!jx_jaxpr_add_eqn(j, prim, pa, nin, v, 1, out, &o) && !jx_jaxpr_set_outs(j, 1, &o))
    s = jx_jaxpr_print(j);
  jx_jaxpr_release(j);
  return s;
}

static void expect_print(jx_prim prim, const jx_params *pa, int nin, const jx_aval *in, const char *want) {
  char *s = print_one(prim, pa, nin, in);
  CHECKF(s && strstr(s, want), "%s prints\n%s\nwhich lacks \"%s\"", jx_prim_names[prim], s ? s : "(nothing)",
         want);
  free(s);
}

static void test_print(void) {
  jx_pool_push();
  const jx_aval f23 = {.dtype = JX_F32, .ndim = 2, .shape = {2, 3}},
                f34 = {.dtype = JX_F32, .ndim = 2, .shape = {3, 4}};
  const jx_aval f0 = {.dtype = JX_F32}, i5 = {.dtype = JX_I32, .ndim = 1, .shape = {5}};
  jx_params p;

  expect_print(JX_P_add, &jx_params_none, 2, (jx_aval[]){f23, f23}, "c:f32[2,3] = add a b\n");
  jx_params_init(&p, JX_PK_CONVERT);
  p.convert.dtype = JX_F64;
  expect_print(JX_P_convert, &p, 1, &f23, "b:f64[2,3] = convert[new_dtype=f64 weak_type=False] a\n");
  jx_params_init(&p, JX_PK_REDUCE);
  p.reduce.naxes = 1, p.reduce.axes[0] = 1;
  expect_print(JX_P_reduce_max, &p, 1, &f23, "b:f32[2] = reduce_max[axes=(1,)] a\n");
  jx_params_init(&p, JX_PK_ARG);
  p.arg.axis = 0, p.arg.dtype = JX_I32;
  expect_print(JX_P_argmin, &p, 1, &f23, "b:i32[3] = argmin[axes=(0,) index_dtype=i32] a\n");
  expect_print(JX_P_argsort, &p, 1, &f23, "b:i32[2,3] = argsort a\n");
  jx_params_init(&p, JX_PK_DOT);
  p.dot.nc = 1, p.dot.lc[0] = 1, p.dot.rc[0] = 0;
  expect_print(JX_P_dot_general, &p, 2, (jx_aval[]){f23, f34},
               "c:f32[2,4] = dot_general[dimension_numbers=(([1], [0]), ([], []))] a b\n");
  jx_params_init(&p, JX_PK_RESHAPE);
  p.reshape.ndim = 1, p.reshape.shape[0] = 6;
  expect_print(JX_P_reshape, &p, 1, &f23, "b:f32[6] = reshape[new_sizes=(6,)] a\n");
  jx_params_init(&p, JX_PK_BCAST);
  p.bcast.ndim = 3, p.bcast.shape[0] = 4, p.bcast.shape[1] = 2, p.bcast.shape[2] = 3;
  p.bcast.naxes = 2, p.bcast.axes[0] = 1, p.bcast.axes[1] = 2;
  expect_print(JX_P_broadcast_in_dim, &p, 1, &f23,
               "b:f32[4,2,3] = broadcast_in_dim[broadcast_dimensions=(1, 2) shape=(4, 2, 3)] a\n");
  jx_params_init(&p, JX_PK_PERM);
  p.perm.naxes = 2, p.perm.axes[0] = 1, p.perm.axes[1] = 0;
  expect_print(JX_P_transpose, &p, 1, &f23, "b:f32[3,2] = transpose[permutation=(1, 0)] a\n");
  jx_params_init(&p, JX_PK_REV);
  p.rev.naxes = 1, p.rev.axes[0] = 1;
  expect_print(JX_P_rev, &p, 1, &f23, "b:f32[2,3] = rev[dimensions=(1,)] a\n");
  jx_params_init(&p, JX_PK_SLICE);
  p.slice.start[1] = 1, p.slice.limit[0] = 2, p.slice.limit[1] = 3, p.slice.stride[0] = 1,
  p.slice.stride[1] = 2;
  expect_print(JX_P_slice, &p, 1, &f23,
               "b:f32[2,1] = slice[start_indices=(0, 1) limit_indices=(2, 3) strides=(1, 2)] a\n");
  jx_params_init(&p, JX_PK_PAD);
  p.pad.lo[0] = 1, p.pad.hi[1] = 2, p.pad.interior[1] = 1;
  expect_print(JX_P_pad, &p, 2, (jx_aval[]){f23, f0},
               "c:f32[3,7] = pad[padding_config=((1, 0, 0), (0, 2, 1))] a b\n");
  jx_params_init(&p, JX_PK_CONCAT);
  p.concat.axis = 1;
  expect_print(JX_P_concatenate, &p, 2, (jx_aval[]){f23, f23}, "c:f32[2,6] = concatenate[dimension=1] a b\n");
  jx_params_init(&p, JX_PK_GATHER);
  p.gather.noffset = p.gather.ncollapsed = p.gather.nmap = 1, p.gather.ivd = 1; /* take along dim 1 */
  p.gather.collapsed[0] = p.gather.map[0] = 1, p.gather.slice[0] = 2, p.gather.slice[1] = 1;
  expect_print(JX_P_gather, &p, 2, (jx_aval[]){f23, i5},
               "c:f32[2,5] = gather[offset_dims=(0,) collapsed_slice_dims=(1,) start_index_map=(1,) "
               "index_vector_dim=1 slice_sizes=(2, 1) mode=clip] a b\n");
  jx_params_init(&p, JX_PK_SCATTER);
  p.scatter.noffset = p.scatter.ncollapsed = p.scatter.nmap = 1, p.scatter.ivd = 1, p.scatter.offset[0] = 1;
  p.scatter.mode = JX_GATHER_FILL_OR_DROP;
  expect_print(JX_P_scatter_add, &p, 3,
               (jx_aval[]){{.dtype = JX_F32, .ndim = 2, .shape = {4, 3}},
                           i5,
                           {.dtype = JX_F32, .ndim = 2, .shape = {5, 3}}},
               "d:f32[4,3] = scatter_add[update_window_dims=(1,) inserted_window_dims=(0,) "
               "scatter_dims_to_operand_dims=(0,) index_vector_dim=1 mode=drop] a b c\n");
  jx_params_init(&p, JX_PK_IOTA);
  p.iota.axis = 1, p.iota.dtype = JX_I32, p.iota.ndim = 2, p.iota.shape[0] = 2, p.iota.shape[1] = 3;
  expect_print(JX_P_iota, &p, 0, NULL, "a:i32[2,3] = iota[dimension=1 dtype=i32 shape=(2, 3)]\n");
  jx_pool_pop();
}

/* Higher-order params print no brackets (as before) and list their jaxprs
 * by their typed fields; the equation holds a reference to each. */
static jx_t neg1(const jx_t *a, void *u) {
  (void)u;
  return jx_neg(a[0]);
}
static void test_higher_order(void) {
  jx_pool_push();
  jx_t x = jx_array(JX_F32, JX_SHAPE(3), (float[]){1, 2, 3});
  jx_fn *f = jx_fn_new(neg1, 1, NULL);
  jx_fn *jf = jx_jit(f);
  char *s = jx_make_jaxpr(jf, &x);
  CHECKF(s && strstr(s, "= jit_call a\n"), "%s", s ? s : "(nothing)");
  free(s);
  jx_fn_free(jf), jx_fn_free(f);

  jx_jaxpr *b1 = jx_jaxpr_new(), *b2 = jx_jaxpr_new(), *js[2];
  jx_params p;
  jx_params_init(&p, JX_PK_WHILE);
  p.while_.cond = b1, p.while_.body = b2;
  CHECK(jx_params_jaxprs(&p, js) == 2 && js[0] == b1 && js[1] == b2);
  jx_params_init(&p, JX_PK_COND);
  p.cond.on_true = b2, p.cond.on_false = b1;
  CHECK(jx_params_jaxprs(&p, js) == 2 && js[0] == b2 && js[1] == b1);
  jx_params_init(&p, JX_PK_SCAN);
  p.scan.body = b1;
  CHECK(jx_params_jaxprs(&p, js) == 1 && js[0] == b1);
  jx_params_init(&p, JX_PK_CALL);
  p.call.jaxpr = b2;
  CHECK(jx_params_jaxprs(&p, js) == 1 && js[0] == b2);
  jx_params_init(&p, JX_PK_SLICE);
  CHECK(jx_params_jaxprs(&p, js) == 0);
  /* an equation retains its inner jaxprs and its jaxpr releases them */
  jx_jaxpr *outer = jx_jaxpr_new();
  jx_params_init(&p, JX_PK_COND);
  p.cond.on_true = b1, p.cond.on_false = b2;
  jx_aval pa = {.dtype = JX_BOOL};
  int v = jx_jaxpr_add_invar(outer, &pa), o;
  CHECK(!jx_jaxpr_add_eqn(outer, JX_P_cond, &p, 1, &v, 0, NULL, &o));
  CHECK(atomic_load(&b1->refs) == 2 && atomic_load(&b2->refs) == 2);
  jx_jaxpr_release(outer);
  CHECK(atomic_load(&b1->refs) == 1 && atomic_load(&b2->refs) == 1);
  jx_jaxpr_release(b1), jx_jaxpr_release(b2);
  jx_pool_pop();
}

/* ------------------------------------------------------------ wrong kind */
static jx_t bad_transpose(const jx_t *a, void *u) { return jx_bind1(JX_P_transpose, 1, a, u); }
static void test_wrong_kind(void) {
  jx_pool_push();
  jx_t x = jx_array(JX_F32, JX_SHAPE(2, 3), (float[]){1, 2, 3, 4, 5, 6});
  jx_params p;
  jx_params_init(&p, JX_PK_SLICE); /* a slice's params for a reshape */
  p.slice.limit[0] = 6, p.slice.stride[0] = 1;
  EXPECT_ERROR(jx_bind1(JX_P_reshape, 1, &x, &p), "reshape", "slice params", "reshape params");
  EXPECT_ERROR(jx_bind1(JX_P_reduce_sum, 1, &x, &jx_params_none), "reduce_sum", "none params");
  jx_params_init(&p, JX_PK_REDUCE);
  EXPECT_ERROR(jx_bind1(JX_P_neg, 1, &x, &p), "neg", "reduce params");
  /* perm and rev share a layout but are different kinds */
  jx_params_init(&p, JX_PK_REV);
  p.rev.naxes = 2, p.rev.axes[0] = 1, p.rev.axes[1] = 0;
  EXPECT_ERROR(jx_bind1(JX_P_transpose, 1, &x, &p), "transpose", "rev params");
  /* under transformations too: bind checks before it dispatches */
  jx_fn *f = jx_fn_new(bad_transpose, 1, &p);
  jx_fn *jf = jx_jit(f), *vf = jx_vmap(f, (int[]){0}, 0);
  EXPECT_ERROR(jx_call(jf, &x), "transpose", "rev params");
  EXPECT_ERROR(jx_call(vf, &x), "transpose", "rev params");
  jx_fn_free(vf), jx_fn_free(jf), jx_fn_free(f);
  /* the jaxpr typecheck rejects an equation of the wrong kind */
  jx_jaxpr *j = jx_jaxpr_new();
  jx_aval a = x->aval, o = {.dtype = JX_F32, .ndim = 2, .shape = {3, 2}};
  int v = jx_jaxpr_add_invar(j, &a), out;
  CHECK(!jx_jaxpr_add_eqn(j, JX_P_transpose, &p, 1, &v, 1, &o, &out));
  CHECK(!jx_jaxpr_set_outs(j, 1, &out));
  EXPECT_ERROR(jx_jaxpr_typecheck(j), "transpose", "rev params");
  jx_jaxpr_release(j);
  jx_pool_pop();
}

int main(void) {
  test_hash_orders();
  test_cse_merges();
  test_print();
  test_higher_order();
  test_wrong_kind();
  return check_report("params");
}
