/* Trees (pytrees): tuples and lists of values, nested freely. */
#include "core.h"

/* The depth and leaf count of a tree of these items, checked against the
 * documented limits (which bound the recursion of every tree walker). */
static jx_t tree_measure(const char *what, int n, const jx_t *items, int *depth, int *nleaves) {
  int64_t d = 0, leaves = 0;
  for (int i = 0; i < n; i++) {
    bool t = jx_is_tree(items[i]);
    if (t && items[i]->u.tree.depth > d) d = items[i]->u.tree.depth;
    leaves += t ? items[i]->u.tree.nleaves : 1;
    if (leaves > JX_MAX_TREE_LEAVES)
      return jx_error_new("%s: the tree would have more than %d leaves (JX_MAX_TREE_LEAVES)", what,
                          JX_MAX_TREE_LEAVES);
  }
  if (d + 1 > JX_MAX_TREE_DEPTH)
    return jx_error_new("%s: the tree would nest deeper than %d levels (JX_MAX_TREE_DEPTH)", what,
                        JX_MAX_TREE_DEPTH);
  *depth = (int)d + 1;
  *nleaves = (int)leaves;
  return NULL;
}

static jx_t tree_new(jx_tree_kind k, int n, const jx_t *items) {
  const char *what = k == JX_TREE_TUPLE ? "tuple" : "list";
  if (n < 0) return jx_error_new("%s: negative length %d", what, n);
  if (n > 0 && !items) return jx_error_new("%s: items is NULL", what);
  jx_t e = jx_first_error(n, items);
  if (e) return e;
  int depth = 0, nleaves = 0;
  if ((e = tree_measure(what, n, items, &depth, &nleaves))) return e;
  jx_t *copy = jx_malloc(sizeof(jx_t) * (size_t)(n ? n : 1));
  jx_t v = copy ? jx_value_new(JX_VK_TREE) : NULL;
  if (!v) {
    jx_free(copy);
    return jx_error_new("tree: out of memory");
  }
  for (int i = 0; i < n; i++) copy[i] = jx_retain(items[i]);
  v->u.tree.tkind = (uint8_t)k;
  v->u.tree.n = n;
  v->u.tree.depth = depth;
  v->u.tree.nleaves = nleaves;
  v->u.tree.items = copy;
  return v;
}

jx_t jx_tuple(int n, const jx_t *items) { return tree_new(JX_TREE_TUPLE, n, items); }
jx_t jx_list(int n, const jx_t *items) { return tree_new(JX_TREE_LIST, n, items); }
bool jx_is_tree(jx_t x) { return x && x->kind == JX_VK_TREE; }
int jx_len(jx_t t) { return jx_is_tree(t) ? t->u.tree.n : -1; }

jx_t jx_at(jx_t t, int i) {
  if (jx_is_error(t)) return t ? t : jx_error_new("at: tree is NULL");
  if (!jx_is_tree(t)) return jx_error_new("at: value is an array, not a tuple or list");
  if (i < 0 || i >= t->u.tree.n)
    return jx_error_new("at: index %d out of range for a tree of length %d", i, t->u.tree.n);
  return t->u.tree.items[i];
}

/* The walkers below recurse: trees are at most JX_MAX_TREE_DEPTH deep
 * (checked when they are made), which bounds the stack they use. */
jx_t jx_tree_map(jx_t (*f)(jx_t, void *), jx_t t, void *u) {
  if (jx_is_error(t)) return t ? t : jx_error_new("tree_map: tree is NULL");
  if (!f) return jx_error_new("tree_map: the function is NULL");
  if (!jx_is_tree(t)) return f(t, u);
  int n = t->u.tree.n;
  jx_t small[16] = {0}, *out = n <= 16 ? small : jx_malloc(sizeof(jx_t) * (size_t)n);
  if (!out) return jx_error_new("tree_map: out of memory");
  for (int i = 0; i < n; i++) out[i] = jx_tree_map(f, t->u.tree.items[i], u);
  jx_t r = tree_new((jx_tree_kind)t->u.tree.tkind, n, out);
  if (out != small) jx_free(out);
  return r;
}

/* Structure equality: same nesting, kinds and lengths. */
bool jx_tree_same_structure(jx_t a, jx_t b) {
  if (jx_is_tree(a) != jx_is_tree(b)) return false;
  if (!jx_is_tree(a)) return true;
  if (a->u.tree.tkind != b->u.tree.tkind || a->u.tree.n != b->u.tree.n) return false;
  for (int i = 0; i < a->u.tree.n; i++)
    if (!jx_tree_same_structure(a->u.tree.items[i], b->u.tree.items[i])) return false;
  return true;
}

jx_t jx_tree_map2(jx_t (*f)(jx_t, jx_t, void *), jx_t a, jx_t b, void *u) {
  if (jx_is_error(a)) return a ? a : jx_error_new("tree_map2: tree is NULL");
  if (jx_is_error(b)) return b ? b : jx_error_new("tree_map2: tree is NULL");
  bool leaves = !jx_is_tree(a) && !jx_is_tree(b);
  if (!leaves && !jx_tree_same_structure(a, b))
    return jx_error_new("tree_map2: the two trees have different structures");
  if (!f) return jx_error_new("tree_map2: the function is NULL");
  if (leaves) return f(a, b, u);
  int n = a->u.tree.n;
  jx_t small[16] = {0}, *out = n <= 16 ? small : jx_malloc(sizeof(jx_t) * (size_t)n);
  if (!out) return jx_error_new("tree_map2: out of memory");
  for (int i = 0; i < n; i++) out[i] = jx_tree_map2(f, a->u.tree.items[i], b->u.tree.items[i], u);
  jx_t r = tree_new((jx_tree_kind)a->u.tree.tkind, n, out);
  if (out != small) jx_free(out);
  return r;
}

/* Flatten to leaves (depth first). Returns the number of leaves; writes at
 * most cap of them. */
int jx_tree_flatten(jx_t t, jx_t *leaves, int cap) {
  if (!jx_is_tree(t)) {
    if (cap > 0) leaves[0] = t;
    return 1;
  }
  int n = 0;
  for (int i = 0; i < t->u.tree.n; i++) /* leaves may be NULL (cap 0): only count */
    n += jx_tree_flatten(t->u.tree.items[i], n < cap ? leaves + n : NULL, n < cap ? cap - n : 0);
  return n;
}

/* Rebuild a tree shaped like `like` from leaves (consumed in order). */
static jx_t unflatten_rec(jx_t like, const jx_t *leaves, int *pos) {
  if (!jx_is_tree(like)) return leaves[(*pos)++];
  int n = like->u.tree.n;
  jx_t small[16] = {0}, *out = n <= 16 ? small : jx_malloc(sizeof(jx_t) * (size_t)n);
  if (!out) return jx_error_new("tree: out of memory");
  for (int i = 0; i < n; i++) out[i] = unflatten_rec(like->u.tree.items[i], leaves, pos);
  jx_t r = tree_new((jx_tree_kind)like->u.tree.tkind, n, out);
  if (out != small) jx_free(out);
  return r;
}
jx_t jx_tree_unflatten(jx_t like, const jx_t *leaves) {
  int pos = 0;
  return unflatten_rec(like, leaves, &pos);
}
