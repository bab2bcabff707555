/* Tree checkpoints: jx_save(path, tree) writes every leaf under its key
 * path, as jax.tree_util.keystr spells it ("[0][1]": item 1 of item 0;
 * "['w'][0]": item 0 of dict key 'w'; a tree that is a single array: ""
 * -- core/tree.c's jx_tree_paths), to .npz or
 * .safetensors by the file's suffix; jx_load(path, like) reads them back
 * into a tree shaped like `like`, checking every leaf's name, dtype and
 * shape. Saving is atomic (the writers never touch the target until the
 * rename), so a failed save leaves the previous checkpoint intact. */
#include "io/io.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
  int n;
  char **names; /* one block (jx_tree_paths) */
  jx_t *leaves;
} leaf_list;

static void leaf_list_free(leaf_list *l) {
  jx_free(l->names), jx_free(l->leaves);
  *l = (leaf_list){0};
}

/* the leaves of t with their key paths */
static jx_t named_leaves(const char *op, const char *path, jx_t t, leaf_list *l) {
  *l = (leaf_list){.n = jx_tree_leaves_to(t, NULL, 0)};
  l->leaves = jx_calloc((size_t)(l->n ? l->n : 1), sizeof(jx_t));
  int n = 0;
  l->names = l->leaves ? jx_tree_paths(t, &n) : NULL;
  if (!l->names || !l->leaves) {
    leaf_list_free(l);
    return jx_error_new("%s: %s: out of memory", op, path);
  }
  jx_tree_leaves_to(t, l->leaves, l->n);
  return NULL;
}

static bool has_suffix(const char *s, const char *suf) {
  size_t n = strlen(s), k = strlen(suf);
  return n >= k && !strcmp(s + n - k, suf);
}

static jx_t bad_suffix(const char *op, const char *path) {
  return jx_error_new("%s: %s: unknown format (the file name must end in .npz or .safetensors)", op, path);
}

jx_t jx_save(const char *path, jx_t tree) {
  const char *op = "jx_save";
  if (!path) return jx_error_new("%s: path is NULL", op);
  if (!tree) return jx_error_new("%s: %s: the tree is NULL", op, path);
  if (jx_is_error(tree)) return tree;
  bool npz = has_suffix(path, ".npz");
  if (!npz && !has_suffix(path, ".safetensors")) return bad_suffix(op, path);
  leaf_list l;
  jx_t e = named_leaves(op, path, tree, &l);
  for (int i = 0; i < l.n && !e; i++) {
    char what[200];
    snprintf(what, sizeof what, "leaf \"%s\"", l.names[i]);
    e = jx_io_check_array(op, path, what, l.leaves[i]);
  }
  if (!e)
    e = npz ? jx_npz_write(op, path, l.n, (const char *const *)l.names, l.leaves, false)
            : jx_safetensors_write(op, path, l.n, (const char *const *)l.names, l.leaves);
  leaf_list_free(&l);
  return e;
}

/* ------------------------------------------------------------ loading */
typedef struct {
  const char *name;
  int index;
} name_ix;
static int cmp_ix(const void *a, const void *b) {
  return strcmp(((const name_ix *)a)->name, ((const name_ix *)b)->name);
}

/* like's leaf i against the file's array x */
static jx_t check_leaf(const char *op, const char *path, const char *name, jx_t want, jx_t x) {
  if (!jx_is_array(want) && !jx_is_tracer(want))
    return jx_error_new("%s: %s: leaf \"%s\" of `like` is not an array", op, path, name);
  if (!jx_aval_eq(jx_aval_of(want), jx_aval_of(x))) {
    char a[200], b[200];
    return jx_error_new("%s: %s: leaf \"%s\": the file has %s, `like` has %s", op, path, name,
                        jx_aval_str(jx_aval_of(x), a, sizeof a), jx_aval_str(jx_aval_of(want), b, sizeof b));
  }
  return NULL;
}

/* the file's arrays (tuple `got`, names `names`) in like's leaf order */
static jx_t match(const char *op, const char *path, const leaf_list *l, jx_t got, char **names, jx_t *out) {
  int n = jx_len(got);
  name_ix *ix = jx_malloc(sizeof(name_ix) * (size_t)(n ? n : 1));
  if (!ix) return jx_error_new("%s: %s: out of memory", op, path);
  for (int i = 0; i < n; i++) ix[i] = (name_ix){names[i], i};
  qsort(ix, (size_t)n, sizeof *ix, cmp_ix);
  jx_t e = NULL;
  for (int i = 0; i < l->n && !e; i++) {
    name_ix key = {l->names[i], 0}, *hit = bsearch(&key, ix, (size_t)n, sizeof *ix, cmp_ix);
    if (!hit)
      e = jx_error_new("%s: %s: leaf \"%s\" is not in the file", op, path, l->names[i]);
    else if (!(e = check_leaf(op, path, l->names[i], l->leaves[i], jx_at(got, hit->index))))
      out[i] = jx_at(got, hit->index);
  }
  if (!e && n != l->n)
    e = jx_error_new("%s: %s: the file has %d arrays, `like` has %d leaves "
                     "(names are key paths such as \"[0][1]\")",
                     op, path, n, l->n);
  jx_free(ix);
  return e;
}

jx_t jx_load(const char *path, jx_t like) {
  const char *op = "jx_load";
  if (!path) return jx_error_new("%s: path is NULL", op);
  if (!like) return jx_error_new("%s: %s: `like` is NULL", op, path);
  if (jx_is_error(like)) return like;
  bool npz = has_suffix(path, ".npz");
  if (!npz && !has_suffix(path, ".safetensors")) return bad_suffix(op, path);
  char **names = NULL;
  jx_t got = npz ? jx_npz_read(op, path, &names) : jx_safetensors_read(op, path, &names);
  if (!jx_ok(got)) return got;
  leaf_list l;
  jx_t e = named_leaves(op, path, like, &l);
  jx_t *out = e ? NULL : jx_malloc(sizeof(jx_t) * (size_t)(l.n ? l.n : 1));
  if (!e && !out) e = jx_error_new("%s: %s: out of memory", op, path);
  if (!e) e = match(op, path, &l, got, names, out);
  jx_t r = e ? e : jx_tree_build(like, out);
  jx_free(out), jx_free(names);
  leaf_list_free(&l);
  return r;
}
