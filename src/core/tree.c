/* Trees (pytrees): tuples, lists and dicts of values, nested freely, and
 * their structures (JAX's PyTreeDef). A dict keeps its keys sorted, so
 * its leaves flatten in key order as JAX's do; every walker below (map,
 * flatten, rebuild, paths) treats the three node kinds alike. */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>

/* The leaf of every structure: immortal (its count never reaches 0). */
static struct jx_value star = {.refs = 1 << 30, .kind = JX_VK_TREE, .u.tree.tkind = JX_TREE_STAR};

/* A node with items (a structure's STAR stands for a leaf). */
static bool is_node(jx_t x) { return jx_is_tree(x) && x->u.tree.tkind != JX_TREE_STAR; }
/* A DEF node's skeleton; anything else is itself. */
static jx_t skeleton(jx_t x) {
  return jx_is_tree(x) && x->u.tree.tkind == JX_TREE_DEF ? x->u.tree.items[0] : x;
}

static const char *const kind_names[] = {"tuple", "list", "dict", "structure", "structure"};

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

/* n keys in one block: the pointers, then the strings. */
static char **keys_copy(int n, const char *const *keys) {
  size_t bytes = sizeof(char *) * (size_t)n;
  for (int i = 0; i < n; i++) bytes += strlen(keys[i]) + 1;
  char **out = jx_malloc(bytes ? bytes : 1);
  if (!out) return NULL;
  char *s = (char *)(out + n);
  for (int i = 0; i < n; i++) {
    size_t k = strlen(keys[i]) + 1;
    out[i] = memcpy(s, keys[i], k);
    s += k;
  }
  return out;
}

/* A node of kind k over items (retained) and, for a dict, keys already
 * sorted (copied). DEF nodes skip the limits: they wrap a checked tree. */
/* A structure never sits inside a tree (so every walker agrees on where
 * the leaves are): only a skeleton (skel) holds STARs, only a DEF node a
 * skeleton. */
static jx_t tree_new_keys(jx_tree_kind k, int n, const jx_t *items, const char *const *keys, bool skel) {
  const char *what = kind_names[k];
  if (n < 0) return jx_error_new("%s: negative length %d", what, n);
  if (n > 0 && !items) return jx_error_new("%s: items is NULL", what);
  jx_t e = jx_first_error(n, items);
  if (e) return e;
  for (int i = 0; i < n && k != JX_TREE_DEF; i++) {
    uint8_t ik = jx_is_tree(items[i]) ? items[i]->u.tree.tkind : JX_TREE_TUPLE;
    if (ik == JX_TREE_DEF || (ik == JX_TREE_STAR && !skel))
      return jx_error_new("%s: item %d is a tree structure (from jx_tree_structure), which cannot be "
                          "part of a tree",
                          what, i);
  }
  int depth = 1, nleaves = 0;
  if (k != JX_TREE_DEF && (e = tree_measure(what, n, items, &depth, &nleaves))) return e;
  jx_t *copy = jx_malloc(sizeof(jx_t) * (size_t)(n ? n : 1));
  char **kc = k == JX_TREE_DICT ? keys_copy(n, keys) : NULL;
  jx_t v = copy && (kc || k != JX_TREE_DICT) ? jx_value_new(JX_VK_TREE) : NULL;
  if (!v) {
    jx_free(copy), jx_free(kc);
    return jx_error_new("%s: out of memory", what);
  }
  for (int i = 0; i < n; i++) copy[i] = jx_retain(items[i]);
  v->u.tree.tkind = (uint8_t)k;
  v->u.tree.n = n;
  v->u.tree.depth = depth;
  v->u.tree.nleaves = nleaves;
  v->u.tree.items = copy;
  v->u.tree.keys = kc;
  return v;
}

/* A node like `like` (its kind and keys) over new items. */
static jx_t node_like(jx_t like, const jx_t *items, bool skel) {
  return tree_new_keys((jx_tree_kind)like->u.tree.tkind, like->u.tree.n, items,
                       (const char *const *)like->u.tree.keys, skel);
}

jx_t jx_tuple(int n, const jx_t *items) { return tree_new_keys(JX_TREE_TUPLE, n, items, NULL, false); }
jx_t jx_list(int n, const jx_t *items) { return tree_new_keys(JX_TREE_LIST, n, items, NULL, false); }
bool jx_is_tree(jx_t x) { return x && x->kind == JX_VK_TREE; }
/* A structure is opaque: print it, compare it, unflatten with it. */
static bool is_def(jx_t x) { return jx_is_tree(x) && x->u.tree.tkind == JX_TREE_DEF; }
int jx_len(jx_t t) { return jx_is_tree(t) && !is_def(t) ? t->u.tree.n : -1; }

jx_t jx_at(jx_t t, int i) {
  if (jx_is_error(t)) return t ? t : jx_error_new("at: tree is NULL");
  if (!jx_is_tree(t)) return jx_error_new("at: value is an array, not a tuple, list or dict");
  if (is_def(t)) return jx_error_new("at: value is a tree structure, which has no items");
  if (i < 0 || i >= t->u.tree.n)
    return jx_error_new("at: index %d out of range for a %s of length %d", i, kind_names[t->u.tree.tkind],
                        t->u.tree.n);
  return t->u.tree.items[i];
}

/* ------------------------------------------------------------------ dicts */
typedef struct {
  const char *key;
  int index;
} key_ix;
static int cmp_key_ix(const void *a, const void *b) {
  return strcmp(((const key_ix *)a)->key, ((const key_ix *)b)->key);
}

jx_t jx_dict(int n, const char *const *keys, const jx_t *values) {
  if (n < 0) return jx_error_new("dict: negative length %d", n);
  if (n > 0 && (!keys || !values)) return jx_error_new("dict: %s is NULL", keys ? "values" : "keys");
  for (int i = 0; i < n; i++)
    if (!keys[i]) return jx_error_new("dict: key %d is NULL", i);
  jx_t e = jx_first_error(n, values);
  if (e) return e;
  key_ix *ix = jx_malloc(sizeof(key_ix) * (size_t)(n ? n : 1));
  jx_t *vals = jx_malloc(sizeof(jx_t) * (size_t)(n ? n : 1));
  const char **ks = jx_malloc(sizeof(char *) * (size_t)(n ? n : 1));
  jx_t r = NULL;
  if (!ix || !vals || !ks) r = jx_error_new("dict: out of memory");
  for (int i = 0; !r && i < n; i++) ix[i] = (key_ix){keys[i], i};
  if (!r) qsort(ix, (size_t)n, sizeof *ix, cmp_key_ix);
  for (int i = 0; !r && i < n; i++) {
    if (i > 0 && !strcmp(ix[i].key, ix[i - 1].key)) {
      char s[128];
      jx_key_repr(ix[i].key, s, sizeof s);
      r = jx_error_new("dict: duplicate key %s (keys %d and %d)", s, ix[i - 1].index, ix[i].index);
    }
    ks[i] = ix[i].key, vals[i] = values[ix[i].index];
  }
  if (!r) r = tree_new_keys(JX_TREE_DICT, n, vals, ks, false);
  jx_free(ix), jx_free(vals), jx_free(ks);
  return r;
}

static int dict_find(jx_t d, const char *key) {
  int lo = 0, hi = d->u.tree.n;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2, c = strcmp(d->u.tree.keys[mid], key);
    if (!c) return mid;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

jx_t jx_get(jx_t d, const char *key) {
  if (jx_is_error(d)) return d ? d : jx_error_new("get: dict is NULL");
  if (!key) return jx_error_new("get: key is NULL");
  char s[128];
  jx_key_repr(key, s, sizeof s);
  if (!jx_is_tree(d) || d->u.tree.tkind != JX_TREE_DICT)
    return jx_error_new("get: key %s: the value is a%s %s, not a dict", s, jx_is_tree(d) ? "" : "n",
                        jx_is_tree(d) ? kind_names[d->u.tree.tkind] : "array");
  int i = dict_find(d, key);
  if (i < 0) return jx_error_new("get: no key %s in a dict of %d keys", s, d->u.tree.n);
  return d->u.tree.items[i];
}

const char *jx_key_at(jx_t d, int i) {
  if (!jx_is_tree(d) || d->u.tree.tkind != JX_TREE_DICT || i < 0 || i >= d->u.tree.n) return NULL;
  return d->u.tree.keys[i];
}

/* Python's repr of a str: single quotes unless the key holds a ' and no
 * ", backslash escapes for the quote, backslash and control bytes; other
 * bytes (UTF-8 included) as they are. */
static void put_c(char *out, size_t cap, size_t *n, const char *s) {
  for (; *s; s++, ++*n)
    if (*n + 1 < cap) out[*n] = *s;
}

size_t jx_key_repr(const char *key, char *out, size_t cap) {
  char q[2] = {strchr(key, '\'') && !strchr(key, '"') ? '"' : '\'', 0};
  size_t n = 0;
  put_c(out, cap, &n, q);
  for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
    unsigned c = *p;
    char s[8] = {(char)c, 0};
    if (c == '\\' || c == (unsigned char)q[0])
      s[0] = '\\', s[1] = (char)c;
    else if (c == '\n' || c == '\r' || c == '\t')
      s[0] = '\\', s[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
    else if (c < 0x20 || c == 0x7f)
      snprintf(s, sizeof s, "\\x%02x", c);
    put_c(out, cap, &n, s);
  }
  put_c(out, cap, &n, q);
  if (cap) out[n < cap ? n : cap - 1] = 0;
  return n;
}

/* ------------------------------------------------------------------ walkers */
/* The walkers below recurse: trees are at most JX_MAX_TREE_DEPTH deep
 * (checked when they are made), which bounds the stack they use. */

/* Structure equality: same nesting, kinds, lengths and keys. */
bool jx_tree_same_structure(jx_t a, jx_t b) {
  a = skeleton(a), b = skeleton(b);
  if (is_node(a) != is_node(b)) return false;
  if (!is_node(a)) return true;
  if (a->u.tree.tkind != b->u.tree.tkind || a->u.tree.n != b->u.tree.n) return false;
  for (int i = 0; a->u.tree.keys && i < a->u.tree.n; i++)
    if (strcmp(a->u.tree.keys[i], b->u.tree.keys[i])) return false;
  for (int i = 0; i < a->u.tree.n; i++)
    if (!jx_tree_same_structure(a->u.tree.items[i], b->u.tree.items[i])) return false;
  return true;
}

/* tree_map over k trees: one callback form per public function */
typedef struct {
  const char *op;
  int k;
  jx_t (*f1)(jx_t, void *);
  jx_t (*f2)(jx_t, jx_t, void *);
  jx_t (*fn)(const jx_t *, void *);
  void *u;
} mapper;

/* ts: k trees of one structure (checked once, by map_run) */
static jx_t map_rec(const mapper *m, const jx_t *ts) {
  if (!is_node(ts[0]))
    return m->f1 ? m->f1(ts[0], m->u) : m->f2 ? m->f2(ts[0], ts[1], m->u) : m->fn(ts, m->u);
  int n = ts[0]->u.tree.n;
  jx_t small[16] = {0}, *out = n <= 16 ? small : jx_malloc(sizeof(jx_t) * (size_t)n);
  jx_t sub_small[8], *sub = m->k <= 8 ? sub_small : jx_malloc(sizeof(jx_t) * (size_t)m->k);
  jx_t r = NULL;
  if (!out || !sub) r = jx_error_new("%s: out of memory", m->op);
  for (int i = 0; !r && i < n; i++) {
    for (int j = 0; j < m->k; j++) sub[j] = ts[j]->u.tree.items[i];
    out[i] = map_rec(m, sub);
    if (jx_is_error(out[i])) r = out[i] ? out[i] : jx_error_new("%s: the function returned NULL", m->op);
  }
  if (!r) r = node_like(ts[0], out, false);
  if (out != small) jx_free(out);
  if (sub != sub_small) jx_free(sub);
  return r;
}

static jx_t map_run(const mapper *m, const jx_t *ts) {
  jx_t e = jx_first_error(m->k, ts);
  if (e) return e;
  for (int j = 1; j < m->k; j++)
    if (!jx_tree_same_structure(ts[0], ts[j]))
      return jx_error_new("%s: the trees have different structures (tree 0 and tree %d)", m->op, j);
  if (!m->f1 && !m->f2 && !m->fn) return jx_error_new("%s: the function is NULL", m->op);
  if (is_def(ts[0])) return ts[0]; /* no leaves to map */
  return map_rec(m, ts);
}

jx_t jx_tree_map(jx_t (*f)(jx_t, void *), jx_t t, void *u) {
  return map_run(&(mapper){"tree_map", 1, f, NULL, NULL, u}, &t);
}

jx_t jx_tree_map2(jx_t (*f)(jx_t, jx_t, void *), jx_t a, jx_t b, void *u) {
  return map_run(&(mapper){"tree_map2", 2, NULL, f, NULL, u}, (jx_t[]){a, b});
}

jx_t jx_tree_map_n(jx_t (*f)(const jx_t *leaves, void *u), int n, const jx_t *trees, void *u) {
  if (n < 1 || !trees) return jx_error_new("tree_map_n: needs at least one tree (n = %d)", n);
  return map_run(&(mapper){"tree_map_n", n, NULL, NULL, f, u}, trees);
}

/* Flatten to leaves (depth first). Returns the number of leaves; writes at
 * most cap of them. */
int jx_tree_leaves_to(jx_t t, jx_t *leaves, int cap) {
  if (!jx_is_tree(t)) {
    if (cap > 0) leaves[0] = t;
    return 1;
  }
  int n = 0;
  for (int i = 0; i < t->u.tree.n; i++) /* leaves may be NULL (cap 0): only count */
    n += jx_tree_leaves_to(t->u.tree.items[i], n < cap ? leaves + n : NULL, n < cap ? cap - n : 0);
  return n;
}

/* Rebuild a tree shaped like `like` from leaves (consumed in order). */
static jx_t build_rec(jx_t like, const jx_t *leaves, int *pos) {
  if (!is_node(like)) return leaves[(*pos)++];
  int n = like->u.tree.n;
  jx_t small[16] = {0}, *out = n <= 16 ? small : jx_malloc(sizeof(jx_t) * (size_t)n);
  if (!out) return jx_error_new("tree: out of memory");
  for (int i = 0; i < n; i++) out[i] = build_rec(like->u.tree.items[i], leaves, pos);
  jx_t r = node_like(like, out, false);
  if (out != small) jx_free(out);
  return r;
}
jx_t jx_tree_build(jx_t like, const jx_t *leaves) {
  int pos = 0;
  return build_rec(skeleton(like), leaves, &pos);
}

/* ------------------------------------------------------------ public API */
/* t's skeleton: its nodes, every leaf replaced by the STAR */
static jx_t skeleton_of(jx_t t) {
  if (!is_node(t)) return &star;
  int n = t->u.tree.n;
  jx_t small[16] = {0}, *out = n <= 16 ? small : jx_malloc(sizeof(jx_t) * (size_t)n);
  jx_t r = out ? NULL : jx_error_new("tree_structure: out of memory");
  for (int i = 0; !r && i < n; i++)
    if (jx_is_error(out[i] = skeleton_of(t->u.tree.items[i]))) r = out[i];
  if (!r) r = node_like(t, out, true);
  if (out != small) jx_free(out);
  return r;
}

static jx_t check_tree(const char *op, jx_t t) {
  if (!t) return jx_error_new("%s: tree is NULL", op);
  return jx_is_error(t) ? t : NULL;
}

jx_t jx_tree_structure(jx_t t) {
  jx_t e = check_tree("tree_structure", t);
  if (e) return e;
  if (is_def(t)) return t;
  jx_t sk = skeleton_of(t);
  jx_t d = jx_is_error(sk) ? sk : tree_new_keys(JX_TREE_DEF, 1, &sk, NULL, true);
  if (jx_ok(d)) d->u.tree.nleaves = jx_tree_leaves_to(t, NULL, 0);
  return d;
}

int jx_tree_num_leaves(jx_t t) {
  if (jx_is_error(t)) return -1;
  if (is_def(t)) return t->u.tree.nleaves;
  return jx_tree_leaves_to(t, NULL, 0);
}

bool jx_tree_structure_eq(jx_t a, jx_t b) {
  return !jx_is_error(a) && !jx_is_error(b) && jx_tree_same_structure(a, b);
}

jx_t jx_tree_leaves(jx_t t) {
  jx_t e = check_tree("tree_leaves", t);
  if (e) return e;
  int n = jx_tree_leaves_to(t, NULL, 0);
  jx_t *v = jx_malloc(sizeof(jx_t) * (size_t)(n ? n : 1));
  if (!v) return jx_error_new("tree_leaves: out of memory for %d leaves", n);
  jx_tree_leaves_to(t, v, n);
  jx_t r = jx_list(n, v);
  jx_free(v);
  return r;
}

jx_t jx_tree_flatten(jx_t t, jx_t *structure) {
  jx_t leaves = jx_tree_leaves(t), s = jx_ok(leaves) ? jx_tree_structure(t) : leaves;
  if (structure) *structure = s;
  return jx_ok(s) ? leaves : s;
}

jx_t jx_tree_unflatten(jx_t structure, jx_t leaves) {
  const char *op = "tree_unflatten";
  jx_t e = check_tree(op, structure);
  if (e || (e = check_tree(op, leaves))) return e;
  if (!jx_is_tree(leaves) || (leaves->u.tree.tkind != JX_TREE_LIST && leaves->u.tree.tkind != JX_TREE_TUPLE))
    return jx_error_new("%s: the leaves must be a list or tuple, not a%s", op,
                        jx_is_tree(leaves) ? " dict or structure" : "n array");
  int want = jx_tree_num_leaves(structure), got = leaves->u.tree.n;
  if (want != got) return jx_error_new("%s: the structure has %d leaves, %d were given", op, want, got);
  return jx_tree_build(structure, leaves->u.tree.items);
}

/* ------------------------------------------------------------------ paths */
typedef struct {
  jx_strbuf prefix, all; /* the path so far; every leaf's path, NUL-separated */
  size_t *at;            /* each leaf's path's offset into all */
  int n;
} path_walk;

static void put_key(jx_strbuf *b, const char *key) {
  size_t k = jx_key_repr(key, NULL, 0), at = b->n;
  jx_strbuf_put(b, "%*s", (int)k, ""); /* room, then the repr over it */
  if (!b->oom) jx_key_repr(key, b->s + at, k + 1);
}

static void paths_rec(path_walk *w, jx_t t) {
  if (!is_node(t)) {
    w->at[w->n++] = w->all.n;
    jx_strbuf_put(&w->all, "%s%c", w->prefix.s ? w->prefix.s : "", 0);
    return;
  }
  for (int i = 0; i < t->u.tree.n; i++) {
    size_t mark = w->prefix.n;
    if (t->u.tree.keys) {
      jx_strbuf_put(&w->prefix, "[");
      put_key(&w->prefix, t->u.tree.keys[i]);
      jx_strbuf_put(&w->prefix, "]");
    } else {
      jx_strbuf_put(&w->prefix, "[%d]", i);
    }
    paths_rec(w, t->u.tree.items[i]);
    if (w->prefix.s) w->prefix.s[w->prefix.n = mark] = 0;
  }
}

char **jx_tree_paths(jx_t t, int *n) {
  int count = jx_tree_num_leaves(t);
  path_walk w = {.at = jx_malloc(sizeof(size_t) * (size_t)(count ? count : 1))};
  jx_strbuf_put(&w.prefix, "%s", "");
  if (w.at) paths_rec(&w, skeleton(t));
  char **out = NULL;
  if (w.at && !w.prefix.oom && !w.all.oom) out = jx_malloc(sizeof(char *) * (size_t)count + w.all.n + 1);
  if (out) {
    char *s = (char *)(out + count);
    if (w.all.n) memcpy(s, w.all.s, w.all.n);
    for (int i = 0; i < count; i++) out[i] = s + w.at[i];
    *n = count;
  }
  jx_free(w.at), jx_free(w.prefix.s), jx_free(w.all.s);
  return out;
}

jx_t jx_tree_flatten_with_path(jx_t t, char ***paths, jx_t *structure) {
  if (paths) *paths = NULL;
  jx_t leaves = jx_tree_flatten(t, structure);
  if (!jx_ok(leaves) || !paths) return leaves;
  int n = 0;
  *paths = jx_tree_paths(t, &n);
  if (*paths) return leaves;
  jx_t e = jx_error_new("tree_flatten_with_path: out of memory");
  if (structure) *structure = e;
  return e;
}
