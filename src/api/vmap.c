/* vmap: automatic vectorization. Mapped argument leaves become batch
 * tracers (value, mapped axis); the function runs once; each output leaf
 * gets its batch dim moved to out_axis (unmapped outputs are broadcast). */
#include "api/api.h"
#include "api/pmap.h"
#include "dist/local.h"
#include "prims/lax.h"
#include "prims/prims.h"
#include "trace/trace.h"

#include <stdio.h>

typedef struct {
  jx_fn *f;
  int *in_axes; /* NULL: all 0 */
  int out_axis;
  char name[JX_AXIS_NAME_CAP]; /* jx_vmap_named's axis name, else "" */
} vmap_closure;

static void vmap_free(void *u) {
  vmap_closure *c = u;
  jx_free(c->in_axes);
  jx_fn_release(c->f);
  jx_free(c);
}

typedef struct {
  jx_trace *t;
  int axis; /* JX_NONE: unmapped */
  int arg;
  int64_t size;
  jx_t err;
  int size_arg;
} wrap_ctx;

static jx_t wrap_leaf(jx_t leaf, void *u) {
  wrap_ctx *w = u;
  if (w->err) return w->err;
  if (w->axis == JX_NONE) return leaf;
  char s[160];
  int r = jx_ndim(leaf);
  if (r == 0) {
    w->err = jx_error_new("vmap: argument %d is 0-d (%s) but in_axes asks to map its axis %d; use JX_NONE "
                          "for unmapped arguments",
                          w->arg, jx_aval_str(&leaf->aval, s, sizeof s), w->axis);
    return w->err;
  }
  int ax = w->axis < 0 ? w->axis + r : w->axis;
  if (ax < 0 || ax >= r) {
    w->err = jx_error_new("vmap: in_axes %d is out of range for argument %d of shape %s", w->axis, w->arg,
                          jx_aval_str(&leaf->aval, s, sizeof s));
    return w->err;
  }
  int64_t n = leaf->aval.shape[ax];
  if (w->size < 0) {
    w->size = n, w->size_arg = w->arg;
  } else if (n != w->size) {
    w->err = jx_error_new("vmap got inconsistent sizes for the mapped axis: argument %d has size %lld along "
                          "axis %d (shape %s), but argument %d has size %lld",
                          w->arg, (long long)n, ax, jx_aval_str(&leaf->aval, s, sizeof s), w->size_arg,
                          (long long)w->size);
    return w->err;
  }
  return w->t ? jx_batch_tracer(w->t, leaf, ax) : leaf;
}

typedef struct {
  jx_trace *t;
  int out_axis;
  int64_t size;
  jx_t err;
} unwrap_ctx;

static jx_t unwrap_leaf(jx_t leaf, void *u) {
  unwrap_ctx *w = u;
  if (w->err) return w->err;
  jx_t v;
  int bd;
  jx_batch_unpack(w->t, leaf, &v, &bd);
  if (jx_is_error(v)) return w->err = v;
  int r = v->aval.ndim + (bd == JX_NONE);
  int ax = w->out_axis < 0 ? w->out_axis + r : w->out_axis;
  if (ax < 0 || ax >= r) {
    char s[160];
    return w->err =
               jx_error_new("vmap: out_axis %d is out of range for an output of rank %d (%s per example)",
                            w->out_axis, r, jx_aval_str(&leaf->aval, s, sizeof s));
  }
  if (bd == JX_NONE) v = jx_batch_to_front(v, JX_NONE, w->size), bd = 0;
  return jx_moveaxis(v, bd, ax);
}

static jx_t vmap_body(const jx_t *args, void *u) {
  vmap_closure *c = u;
  int n = c->f->nargs;
  /* first pass: validate and find the size */
  wrap_ctx w = {.size = -1};
  for (int i = 0; i < n && !w.err; i++) {
    w.arg = i;
    w.axis = c->in_axes ? c->in_axes[i] : 0;
    jx_tree_map(wrap_leaf, args[i], &w);
  }
  if (w.err) return w.err;
  if (w.size < 0) return jx_error_new("vmap: no argument is mapped (every in_axes is JX_NONE)");
  jx_t small[16] = {0}, *a = n <= 16 ? small : jx_malloc(sizeof(jx_t) * (size_t)n);
  if (!a) return jx_error_new("vmap: out of memory");
  w.t = c->name[0] ? jx_batch_begin_named(w.size, c->name) : jx_batch_begin(w.size);
  if (!w.t) {
    if (a != small) jx_free(a);
    return jx_error_new("vmap: %s", jx_trace_push_failure());
  }
  jx_t aerr = c->name[0] ? jx_axis_push(c->name, w.size, w.t) : NULL; /* collectives see the name */
  if (aerr) w.err = aerr;
  for (int i = 0; i < n && !w.err; i++) {
    w.arg = i;
    w.axis = c->in_axes ? c->in_axes[i] : 0;
    a[i] = jx_tree_map(wrap_leaf, args[i], &w);
  }
  w.t->label = "vmap";
  jx_t out = w.err ? w.err : jx_call(c->f, a);
  unwrap_ctx uw = {w.t, c->out_axis, w.size, NULL};
  jx_t r = jx_ok(out) ? jx_tree_map(unwrap_leaf, out, &uw) : out;
  if (uw.err) r = uw.err;
  jx_t poison = jx_trace_poisoned(w.t); /* a read of a traced value inside f */
  if (poison) r = poison;
  if (c->name[0] && !aerr) jx_axis_pop();
  jx_batch_end(w.t);
  if (a != small) jx_free(a);
  return r;
}

jx_fn *jx_vmap(jx_fn *f, const int *in_axes, int out_axis) { return jx_vmap_ex(f, in_axes, out_axis, NULL); }

jx_fn *jx_vmap_ex(jx_fn *f, const int *in_axes, int out_axis, const char *axis_name) {
  jx_fn *bad = jx_fn_unusable("vmap", f);
  if (bad) return bad;
  /* every axis is valid for some rank; ranks are checked per call */
  if (in_axes)
    for (int i = 0; i < f->nargs; i++)
      if (in_axes[i] != JX_NONE && (in_axes[i] < -JX_MAX_RANK || in_axes[i] >= JX_MAX_RANK))
        return jx_fn_error_new("vmap: in_axes[%d] = %d is out of range for any array (rank <= %d)", i,
                               in_axes[i], JX_MAX_RANK);
  if (out_axis < -JX_MAX_RANK || out_axis >= JX_MAX_RANK)
    return jx_fn_error_new("vmap: out_axis %d is out of range for any array (rank <= %d)", out_axis,
                           JX_MAX_RANK);
  vmap_closure *c = jx_calloc(1, sizeof *c);
  if (!c) return jx_fn_error_new("vmap: out of memory");
  if (in_axes) {
    c->in_axes = jx_malloc(sizeof(int) * (size_t)(f->nargs ? f->nargs : 1));
    if (!c->in_axes) {
      jx_free(c);
      return jx_fn_error_new("vmap: out of memory");
    }
    memcpy(c->in_axes, in_axes, sizeof(int) * (size_t)f->nargs);
  }
  c->f = jx_fn_ref(f);
  c->out_axis = out_axis;
  if (axis_name) snprintf(c->name, sizeof c->name, "%s", axis_name);
  return jx_fn_make(vmap_body, f->nargs, c, vmap_free, "vmap");
}
