/* The public collectives: psum, pmean, pmax, pmin (on trees), all_gather,
 * psum_scatter, all_to_all, ppermute, axis_index, axis_size. Each checks
 * its axis names against the axis environment (the named axes of the
 * enclosing pmap, shard_map or named vmaps) and records their size. */
#include "prims/collectives.h"
#include "dist/local.h"
#include "prims/lax.h"
#include "trace/trace.h"

#include <stdio.h>

/* params for op over axis_name (a comma-separated list when multi) */
static jx_t coll_params(const char *op, const char *axis_name, bool multi, jx_params *pa) {
  jx_params_init(pa, JX_PK_COLL);
  memset(pa->coll.perm, -1, sizeof pa->coll.perm);
  int n;
  jx_t err = jx_axis_names_parse(op, axis_name, pa->coll.names, &n);
  if (err) return err;
  if (n > 1 && !multi) return jx_error_new("%s: takes one axis name, got '%s'", op, axis_name);
  pa->coll.nnames = (int8_t)n;
  pa->coll.size = 1;
  for (int k = 0; k < n; k++) {
    const jx_axis_frame *f = jx_axis_find(pa->coll.names[k]);
    if (!f)
      return jx_error_new("%s: unbound axis name '%s': a collective runs inside jx_pmap, jx_shard_map or "
                          "jx_vmap_named with that axis name",
                          op, pa->coll.names[k]);
    pa->coll.size *= f->size;
  }
  return NULL;
}

typedef struct {
  jx_prim p;
  jx_params pa;
} tree_ctx;

static jx_t coll_leaf(jx_t leaf, void *u) {
  tree_ctx *c = u;
  return jx_coll_bind(c->p, leaf, &c->pa);
}

static jx_t reduce_tree(const char *op, jx_prim p, jx_t x, const char *axis_name) {
  if (!jx_ok(x)) return x;
  tree_ctx c = {.p = p};
  jx_t err = coll_params(op, axis_name, true, &c.pa);
  return err ? err : jx_tree_map(coll_leaf, x, &c);
}

jx_t jx_psum(jx_t x, const char *axis_name) { return reduce_tree("psum", JX_P_psum, x, axis_name); }
jx_t jx_pmax(jx_t x, const char *axis_name) { return reduce_tree("pmax", JX_P_pmax, x, axis_name); }
jx_t jx_pmin(jx_t x, const char *axis_name) { return reduce_tree("pmin", JX_P_pmin, x, axis_name); }

static jx_t mean_leaf(jx_t leaf, void *u) {
  tree_ctx *c = u;
  return jx_div(jx_coll_bind(JX_P_psum, leaf, &c->pa), jx_scalar_int(c->pa.coll.size));
}

jx_t jx_pmean(jx_t x, const char *axis_name) {
  if (!jx_ok(x)) return x;
  tree_ctx c = {.p = JX_P_psum};
  jx_t err = coll_params("pmean", axis_name, true, &c.pa);
  return err ? err : jx_tree_map(mean_leaf, x, &c);
}

/* one array through a collective with an axis parameter (negative axes
 * count from the end of rank r) */
static jx_t axis_op(const char *op, jx_prim p, jx_t x, const char *axis_name, int axis, int axis2, bool tiled,
                    int r_extra) {
  if (!jx_ok(x)) return x;
  if (!jx_is_array(x) && !jx_is_tracer(x)) return jx_error_new("%s: x must be an array, not a tree", op);
  jx_params pa;
  jx_t err = coll_params(op, axis_name, false, &pa);
  if (err) return err;
  int r = x->aval.ndim;
  pa.coll.axis = axis < 0 ? axis + r + r_extra : axis;
  pa.coll.axis2 = axis2 < 0 ? axis2 + r : axis2;
  pa.coll.tiled = tiled;
  return jx_coll_bind(p, x, &pa);
}

jx_t jx_all_gather(jx_t x, const char *axis_name, int axis, bool tiled) {
  return axis_op("all_gather", JX_P_all_gather, x, axis_name, axis, 0, tiled, !tiled);
}
jx_t jx_psum_scatter(jx_t x, const char *axis_name, int scatter_dimension, bool tiled) {
  return axis_op("psum_scatter", JX_P_psum_scatter, x, axis_name, scatter_dimension, 0, tiled, 0);
}
jx_t jx_all_to_all(jx_t x, const char *axis_name, int split_axis, int concat_axis, bool tiled) {
  return axis_op("all_to_all", JX_P_all_to_all, x, axis_name, split_axis, concat_axis, tiled, 0);
}

jx_t jx_ppermute(jx_t x, const char *axis_name, int npairs, const int (*pairs)[2]) {
  if (!jx_ok(x)) return x;
  jx_params pa;
  jx_t err = coll_params("ppermute", axis_name, false, &pa);
  if (err) return err;
  if (npairs < 0 || (npairs && !pairs)) return jx_error_new("ppermute: %d pairs with a NULL list", npairs);
  if (pa.coll.size > JX_COLL_MAX_PERM)
    return jx_error_new("ppermute over axis '%s': at most %d members, the axis has %lld", pa.coll.names[0],
                        JX_COLL_MAX_PERM, (long long)pa.coll.size);
  for (int i = 0; i < npairs; i++) {
    int s = pairs[i][0], d = pairs[i][1];
    if (s < 0 || d < 0 || s >= pa.coll.size || d >= pa.coll.size)
      return jx_error_new("ppermute over axis '%s' (%lld members): pair %d (%d, %d) is out of range",
                          pa.coll.names[0], (long long)pa.coll.size, i, s, d);
    if (pa.coll.perm[s] >= 0)
      return jx_error_new("ppermute over axis '%s': member %d is a source twice", pa.coll.names[0], s);
    pa.coll.perm[s] = (int8_t)d;
  }
  return jx_coll_bind(JX_P_ppermute, x, &pa); /* a destination twice: abstract eval says */
}

/* the index along one name: a named vmap's is the iota of its batch */
static jx_t index_one(const char *name) {
  jx_params pa;
  jx_t err = coll_params("axis_index", name, false, &pa);
  if (err) return err;
  const jx_axis_frame *f = jx_axis_find(name);
  if (f->batch) {
    if (!f->batch->active) return jx_error_new("axis_index: the named vmap over '%s' has ended", name);
    /* made below the batch trace (staged where the vmap was entered, not
     * in a jit traced inside it) */
    jx_trace *saved;
    jx_set_dynamic_trace(f->dynamic, &saved);
    jx_t iota = jx_lax_iota(JX_I32, 1, &f->size, 0);
    jx_set_dynamic_trace(saved, &saved);
    return jx_batch_tracer(f->batch, iota, 0);
  }
  return jx_coll_bind(JX_P_axis_index, NULL, &pa);
}

/* several names: row-major over them, like JAX */
jx_t jx_axis_index(const char *axis_name) {
  jx_params pa;
  jx_t err = coll_params("axis_index", axis_name, true, &pa);
  if (err) return err;
  jx_t idx = NULL;
  for (int k = 0; k < pa.coll.nnames; k++) {
    jx_t ik = index_one(pa.coll.names[k]);
    int64_t size = jx_axis_find(pa.coll.names[k])->size;
    idx = idx ? jx_add(jx_mul(idx, jx_scalar_of(JX_I32, (double)size)), ik) : ik;
  }
  return idx;
}

jx_t jx_axis_size(const char *axis_name) {
  jx_params pa;
  jx_t err = coll_params("axis_size", axis_name, true, &pa);
  return err ? err : jx_scalar_of(JX_I32, (double)pa.coll.size);
}
