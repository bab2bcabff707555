/* Trees with names and the public tree API: dicts (sorted keys, lookup,
 * hostile input), flatten order as JAX's, structures (printing as JAX's
 * PyTreeDef, comparison, unflatten round trips), key paths as
 * jax.tree_util.keystr writes them, tree_map over several trees, and dicts
 * through grad, jit (its cache tells key sets apart), vmap, scan carries
 * and checkpoints. */
#include "check.h"

#include <jx.h>
#include <unistd.h>

#define F64(v) jx_scalar_of(JX_F64, (v))
static double num(jx_t x) { return jx_ok(x) ? jx_item(x) : NAN; }

/* the jx_fn a test makes, freed at its end (outermost first) */
static jx_fn *fns[32];
static int nfns;
static jx_fn *keep(jx_fn *f) { return fns[nfns++] = f; }
static void free_fns(void) {
  while (nfns) jx_fn_free(fns[--nfns]);
}

static bool str_is(jx_t x, const char *want) {
  char *s = jx_to_string(x);
  bool ok = s && !strcmp(s, want);
  if (!ok) fprintf(stderr, "  printed %s\n  wanted  %s\n", s ? s : "(null)", want);
  free(s);
  return ok;
}

/* {'b': 1, 'a': [2, 3], 'c': {'z': 4, 'y': 5}} given out of order */
static jx_t sample(void) {
  jx_t c = jx_dict(2, (const char *[]){"z", "y"}, (jx_t[]){F64(4), F64(5)});
  return jx_dict(3, (const char *[]){"b", "a", "c"}, (jx_t[]){F64(1), JX_LIST(F64(2), F64(3)), c});
}

static void test_dicts(void) {
  jx_pool_push();
  char key[] = "w";
  jx_t d = jx_dict(2, (const char *[]){key, "b"}, (jx_t[]){F64(1), F64(2)});
  key[0] = 'x'; /* keys are copied */
  CHECK(jx_ok(d) && jx_is_tree(d) && jx_len(d) == 2);
  CHECK(jx_key_at(d, 0) && !strcmp(jx_key_at(d, 0), "b") && !strcmp(jx_key_at(d, 1), "w"));
  CHECK(jx_key_at(d, 2) == NULL && jx_key_at(d, -1) == NULL && jx_key_at(JX_TUPLE(F64(1)), 0) == NULL);
  CHECK(num(jx_at(d, 0)) == 2 && num(jx_at(d, 1)) == 1);
  CHECK(num(jx_get(d, "w")) == 1 && num(jx_get(d, "b")) == 2);
  EXPECT_ERROR(jx_get(d, "x"), "get", "no key 'x'");
  EXPECT_ERROR(jx_get(d, NULL), "get", "NULL");
  EXPECT_ERROR(jx_get(JX_LIST(F64(1)), "w"), "get", "'w'", "list, not a dict");
  EXPECT_ERROR(jx_get(F64(1), "w"), "get", "not a dict");
  jx_t e = jx_error_new("boom");
  CHECK(jx_get(e, "w") == e);
  EXPECT_ERROR(jx_dict(2, (const char *[]){"a", "a"}, (jx_t[]){F64(1), F64(2)}), "dict", "duplicate key 'a'");
  EXPECT_ERROR(jx_dict(1, (const char *[]){NULL}, (jx_t[]){F64(1)}), "dict", "key 0 is NULL");
  EXPECT_ERROR(jx_dict(1, NULL, (jx_t[]){F64(1)}), "dict", "keys is NULL");
  EXPECT_ERROR(jx_dict(1, (const char *[]){"a"}, NULL), "dict", "values is NULL");
  EXPECT_ERROR(jx_dict(-1, NULL, NULL), "dict", "negative");
  CHECK(jx_dict(2, (const char *[]){"a", "b"}, (jx_t[]){F64(1), e}) == e);
  EXPECT_ERROR(jx_dict(1, (const char *[]){"a"}, (jx_t[]){NULL}), "null");
  jx_t empty = jx_dict(0, NULL, NULL);
  CHECK(jx_ok(empty) && jx_len(empty) == 0);
  /* byte order, like Python's sorted() of str: 'B' < 'a' < '\xc3\xa9' (é) */
  jx_t u = jx_dict(3, (const char *[]){"\xc3\xa9", "a", "B"}, (jx_t[]){F64(1), F64(2), F64(3)});
  CHECK(!strcmp(jx_key_at(u, 0), "B") && !strcmp(jx_key_at(u, 1), "a") &&
        !strcmp(jx_key_at(u, 2), "\xc3\xa9"));
  CHECK(str_is(JX_TUPLE(d, jx_dict(1, (const char *[]){"it's"}, (jx_t[]){JX_TUPLE(F64(7))})),
               "({'b': 2 f64[], 'w': 1 f64[]}, {\"it's\": (7 f64[],)})"));
  jx_pool_pop();
}

static void test_flatten(void) {
  jx_pool_push();
  jx_t t = sample(), s = NULL;
  jx_t leaves = jx_tree_flatten(t, &s);
  CHECK(jx_ok(leaves) && jx_len(leaves) == 5 && jx_tree_num_leaves(t) == 5 && jx_tree_num_leaves(s) == 5);
  double want[] = {2, 3, 1, 5, 4}; /* a[0], a[1], b, c.y, c.z: keys sorted at every level */
  for (int i = 0; i < 5; i++) CHECKF(num(jx_at(leaves, i)) == want[i], "leaf %d", i);
  CHECK(str_is(s, "PyTreeDef({'a': [*, *], 'b': *, 'c': {'y': *, 'z': *}})"));
  CHECK(str_is(jx_tree_structure(JX_TUPLE(F64(1))), "PyTreeDef((*,))"));
  CHECK(str_is(jx_tree_structure(F64(1)), "PyTreeDef(*)"));
  CHECK(str_is(jx_tree_structure(JX_TUPLE()), "PyTreeDef(())"));
  /* round trip: the same leaves in the same places */
  jx_t back = jx_tree_unflatten(s, leaves);
  CHECK(jx_tree_structure_eq(back, t) && jx_tree_structure_eq(back, s));
  CHECK(jx_at(jx_get(back, "a"), 1) == jx_at(jx_get(t, "a"), 1) &&
        jx_get(jx_get(back, "c"), "z") == jx_get(jx_get(t, "c"), "z"));
  CHECK(jx_len(jx_tree_leaves(t)) == 5 && jx_at(jx_tree_leaves(t), 2) == jx_get(t, "b"));
  CHECK(jx_tree_structure(s) == s);
  /* a bare leaf */
  jx_t ls = NULL, x = F64(9), lv = jx_tree_flatten(x, &ls);
  CHECK(jx_len(lv) == 1 && jx_at(lv, 0) == x && jx_tree_unflatten(ls, lv) == x);
  /* subtrees may stand at leaf positions, as in JAX */
  jx_t nested =
      jx_tree_unflatten(jx_tree_structure(JX_TUPLE(F64(0), F64(0))), JX_LIST(JX_LIST(F64(1)), F64(2)));
  CHECK(jx_tree_structure_eq(nested, JX_TUPLE(JX_LIST(F64(0)), F64(0))));
  /* structures differ by kind, length and keys */
  jx_t ab = jx_dict(2, (const char *[]){"a", "b"}, (jx_t[]){F64(1), F64(2)});
  jx_t ac = jx_dict(2, (const char *[]){"a", "c"}, (jx_t[]){F64(1), F64(2)});
  CHECK(!jx_tree_structure_eq(ab, ac) && !jx_tree_structure_eq(jx_tree_structure(ab), jx_tree_structure(ac)));
  CHECK(!jx_tree_structure_eq(ab, JX_LIST(F64(1), F64(2))) &&
        !jx_tree_structure_eq(ab, JX_TUPLE(F64(1), F64(2))));
  CHECK(jx_tree_structure_eq(ab, jx_dict(2, (const char *[]){"b", "a"}, (jx_t[]){F64(5), F64(6)})));
  /* hostile input */
  EXPECT_ERROR(jx_tree_unflatten(s, JX_LIST(F64(1))), "tree_unflatten", "5 leaves, 1 were given");
  EXPECT_ERROR(jx_tree_unflatten(s, F64(1)), "tree_unflatten", "list or tuple");
  EXPECT_ERROR(jx_tree_unflatten(NULL, leaves), "tree_unflatten", "NULL");
  EXPECT_ERROR(jx_tree_unflatten(s, NULL), "tree_unflatten", "NULL");
  EXPECT_ERROR(jx_tree_flatten(NULL, &ls), "tree_leaves", "NULL");
  CHECK(!jx_ok(ls));
  CHECK(jx_tree_num_leaves(NULL) == -1 && !jx_tree_structure_eq(NULL, NULL));
  /* a structure is opaque: no items, never inside a tree, not an operand */
  CHECK(jx_len(s) == -1);
  EXPECT_ERROR(jx_at(s, 0), "at", "structure");
  EXPECT_ERROR(JX_TUPLE(F64(1), s), "tuple", "item 1 is a tree structure");
  EXPECT_ERROR(jx_dict(1, (const char *[]){"s"}, &s), "dict", "tree structure");
  EXPECT_ERROR(jx_add(s, F64(1)), "add");
  CHECK(jx_len(jx_tree_leaves(s)) == 0);
  jx_pool_pop();
}

static bool paths_are(jx_t t, int n, const char *const *want) {
  char **p = NULL;
  jx_t lv = jx_tree_flatten_with_path(t, &p, NULL);
  bool ok = jx_ok(lv) && p && jx_len(lv) == n;
  for (int i = 0; ok && i < n; i++) {
    ok = !strcmp(p[i], want[i]);
    if (!ok) fprintf(stderr, "  path %d: %s, wanted %s\n", i, p[i], want[i]);
  }
  free(p);
  return ok;
}

static void test_paths(void) {
  jx_pool_push();
  CHECK(
      paths_are(sample(), 5, (const char *[]){"['a'][0]", "['a'][1]", "['b']", "['c']['y']", "['c']['z']"}));
  CHECK(paths_are(JX_TUPLE(F64(1), JX_LIST(F64(2), F64(3))), 3, (const char *[]){"[0]", "[1][0]", "[1][1]"}));
  CHECK(paths_are(F64(1), 1, (const char *[]){""}));
  CHECK(paths_are(JX_TUPLE(), 0, NULL));
  /* Python's repr of the keys: the quote that needs no escape, escapes */
  jx_t odd = jx_dict(4, (const char *[]){"it's", "say \"hi\"", "a\\b\n", "both'\""},
                     (jx_t[]){F64(1), F64(2), F64(3), F64(4)});
  CHECK(
      paths_are(odd, 4, (const char *[]){"['a\\\\b\\n']", "['both\\'\"']", "[\"it's\"]", "['say \"hi\"']"}));
  char **p = (char **)1;
  EXPECT_ERROR(jx_tree_flatten_with_path(NULL, &p, NULL), "NULL");
  CHECK(p == NULL);
  jx_pool_pop();
}

static jx_t add3(const jx_t *l, void *u) { return jx_add(jx_add(l[0], l[1]), jx_mul(l[2], *(jx_t *)u)); }
static jx_t negate(jx_t x, void *u) {
  (void)u;
  return jx_neg(x);
}

static void test_map(void) {
  jx_pool_push();
  jx_t t = sample(), ten = F64(10);
  jx_t r = jx_tree_map_n(add3, 3, (jx_t[]){t, t, t}, &ten); /* 12 x each leaf */
  jx_t lv = jx_tree_leaves(r);
  CHECK(jx_tree_structure_eq(r, t) && num(jx_at(lv, 0)) == 24 && num(jx_at(lv, 4)) == 48);
  jx_t n1 = jx_tree_map(negate, t, NULL);
  CHECK(jx_tree_structure_eq(n1, t) && num(jx_get(jx_get(n1, "c"), "y")) == -5);
  jx_t ab = jx_dict(2, (const char *[]){"a", "b"}, (jx_t[]){F64(1), F64(2)});
  jx_t ac = jx_dict(2, (const char *[]){"a", "c"}, (jx_t[]){F64(1), F64(2)});
  EXPECT_ERROR(jx_tree_map_n(add3, 3, (jx_t[]){ab, ab, ac}, &ten), "tree_map_n", "different structures",
               "tree 2");
  EXPECT_ERROR(jx_tree_map_n(add3, 0, NULL, NULL), "tree_map_n", "at least one");
  EXPECT_ERROR(jx_tree_map_n(NULL, 1, &ab, NULL), "tree_map_n", "NULL");
  EXPECT_ERROR(jx_tree_map2(NULL, ab, ac, NULL), "tree_map2", "structure");
  jx_pool_pop();
}

/* loss({'b': b, 'w': w}, x) = sum((x * w + b)^2) */
static jx_t loss(const jx_t *a, void *u) {
  (void)u;
  jx_t y = jx_add(jx_mul(a[1], jx_get(a[0], "w")), jx_get(a[0], "b"));
  return jx_sum(jx_square(y));
}

static int traces;
static jx_t count_neg(const jx_t *a, void *u) {
  (void)u;
  traces++;
  return jx_tree_map(negate, a[0], NULL);
}

static jx_t sum_leaves(const jx_t *a, void *u) {
  (void)u;
  jx_t lv = jx_tree_leaves(a[0]), s = jx_sum(jx_at(lv, 0));
  for (int i = 1; i < jx_len(lv); i++) s = jx_add(s, jx_sum(jx_at(lv, i)));
  return s;
}

static void test_transformations(void) {
  jx_pool_push();
  jx_t x = jx_array(JX_F64, JX_SHAPE(3), (double[]){1, 2, 3});
  jx_t P = jx_dict(2, (const char *[]){"w", "b"}, (jx_t[]){F64(2), F64(0.5)});
  jx_fn *L = keep(jx_fn_new(loss, 2, NULL));
  jx_t g = jx_call(keep(jx_grad(L, 0)), (jx_t[]){P, x});
  /* d/dw = sum(2 (x w + b) x) = 2 (2.5 + 9 + 19.5) = 62; d/db = 2 (2.5 + 4.5 + 6.5) = 27 */
  CHECK(jx_tree_structure_eq(g, P));
  CHECK_CLOSE(num(jx_get(g, "w")), 62, 1e-12, 0);
  CHECK_CLOSE(num(jx_get(g, "b")), 27, 1e-12, 0);
  jx_t gj = jx_call(keep(jx_jit(keep(jx_grad(L, 0)))), (jx_t[]){P, x});
  CHECK(jx_tree_structure_eq(gj, P) && num(jx_get(gj, "w")) == num(jx_get(g, "w")));

  /* jit's cache key holds the keys: {'a','b'} and {'a','c'} trace apart */
  jx_fn *J = keep(jx_jit(keep(jx_fn_new(count_neg, 1, NULL))));
  jx_t ab = jx_dict(2, (const char *[]){"a", "b"}, (jx_t[]){F64(1), F64(2)});
  jx_t ac = jx_dict(2, (const char *[]){"a", "c"}, (jx_t[]){F64(1), F64(2)});
  jx_t r1 = jx_call(J, &ab), r2 = jx_call(J, &ab);
  CHECK(traces == 1 && jx_tree_structure_eq(r1, ab) && jx_tree_structure_eq(r2, ab));
  jx_t r3 = jx_call(J, &ac);
  CHECK(traces == 2 && jx_tree_structure_eq(r3, ac) && num(jx_get(r3, "c")) == -2);
  jx_t lst = JX_LIST(F64(1), F64(2)), r4 = jx_call(J, &lst); /* a list of the same leaves */
  CHECK(traces == 3 && jx_tree_structure_eq(r4, lst));
  jx_t ab2 = jx_dict(1, (const char *[]){"a;1:b"}, (jx_t[]){F64(1)}),
       a1 = jx_dict(1, (const char *[]){"a"}, (jx_t[]){F64(1)});
  jx_call(J, &ab2), jx_call(J, &a1);
  CHECK(traces == 5);

  /* vmap over a dict of batched leaves */
  jx_t B = jx_dict(2, (const char *[]){"u", "v"},
                   (jx_t[]){jx_array(JX_F64, JX_SHAPE(2, 2), (double[]){1, 2, 3, 4}),
                            jx_array(JX_F64, JX_SHAPE(2), (double[]){10, 20})});
  jx_t vs = jx_call(keep(jx_vmap(keep(jx_fn_new(sum_leaves, 1, NULL)), NULL, 0)), &B);
  double got[2] = {0};
  CHECK(jx_read(vs, JX_F64, got, sizeof got) == 0 && got[0] == 13 && got[1] == 27);
  free_fns(); /* before the pop: the pool owns them too (jx_fn_free takes its reference back) */
  jx_pool_pop();
}

/* carry {'n': count, 's': sum}; y = x * 2 */
static jx_t step(const jx_t *a, void *u) {
  (void)u;
  jx_t c = a[0], x = a[1];
  jx_t nc = jx_dict(2, (const char *[]){"s", "n"},
                    (jx_t[]){jx_add(jx_get(c, "s"), x), jx_add(jx_get(c, "n"), F64(1))});
  return JX_TUPLE(nc, jx_mul(x, F64(2)));
}
static jx_t step_bad(const jx_t *a, void *u) {
  (void)u;
  return JX_TUPLE(jx_dict(2, (const char *[]){"s", "m"}, (jx_t[]){a[1], a[1]}), a[1]);
}

static void test_scan(void) {
  jx_pool_push();
  jx_t init = jx_dict(2, (const char *[]){"n", "s"}, (jx_t[]){F64(0), F64(0)});
  jx_t xs = jx_array(JX_F64, JX_SHAPE(4), (double[]){1, 2, 3, 4});
  jx_t r = jx_scan(keep(jx_fn_new(step, 2, NULL)), init, xs);
  jx_t c = jx_at(r, 0);
  CHECK(jx_tree_structure_eq(c, init) && num(jx_get(c, "n")) == 4 && num(jx_get(c, "s")) == 10);
  EXPECT_ERROR(jx_scan(keep(jx_fn_new(step_bad, 2, NULL)), init, xs), "scan");
  free_fns(); /* before the pop: the pool owns them too (jx_fn_free takes its reference back) */
  jx_pool_pop();
}

static void test_checkpoint(void) {
  jx_pool_push();
  char dir[] = "/tmp/jx-trees-XXXXXX", path[64], path2[64];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/ck.npz", dir);
  snprintf(path2, sizeof path2, "%s/ck.safetensors", dir);
  jx_t W = jx_array(JX_F32, JX_SHAPE(2), (float[]){1, 2});
  jx_t tree = jx_dict(2, (const char *[]){"w", "b"}, (jx_t[]){JX_LIST(W, W), jx_scalar_of(JX_I32, 3)});
  CHECK(jx_save(path, tree) == NULL && jx_save(path2, tree) == NULL);
  char **names = NULL;
  jx_t got = jx_npz_load(path, &names);
  CHECK(jx_len(got) == 3 && names);
  int seen = 0;
  for (int i = 0; names && i < jx_len(got); i++)
    seen += !strcmp(names[i], "['b']") || !strcmp(names[i], "['w'][0]") || !strcmp(names[i], "['w'][1]");
  CHECK(seen == 3);
  free(names);
  for (int k = 0; k < 2; k++) {
    jx_t back = jx_load(k ? path2 : path, tree);
    CHECK(jx_tree_structure_eq(back, tree) && num(jx_get(back, "b")) == 3);
    CHECK(num(jx_sum(jx_at(jx_get(back, "w"), 1))) == 3);
  }
  jx_t other = jx_dict(2, (const char *[]){"v", "b"}, (jx_t[]){JX_LIST(W, W), jx_scalar_of(JX_I32, 3)});
  EXPECT_ERROR(jx_load(path, other), "jx_load", "leaf \"['v'][0]\" is not in the file");
  unlink(path), unlink(path2), rmdir(dir);
  jx_pool_pop();
}

int main(void) {
  if (check_private_cache("trees")) return 1;
  test_dicts();
  test_flatten();
  test_paths();
  test_map();
  test_transformations();
  test_scan();
  test_checkpoint();
  check_private_cache_remove();
  printf("test_trees: %d passed, %d failed\n", check_passed, check_failed);
  return check_failed != 0;
}
