/* pmap, named vmap and shard_map.
 *
 * pmap(f) on concrete arguments: slice each mapped argument per device,
 * trace and compile f once through jit (the axis name bound in the axis
 * environment, so its collectives record their member count), then run
 * the compiled program on every device at once (dist/local.c: one thread
 * per device, collectives meeting at a rendezvous) and stack the results.
 * Under another transformation (grad, vmap, jit of a pmap: its arguments
 * are tracers) there is nothing to run yet: it is the named vmap it is
 * equal to, so the outer transformation sees the collectives' rules.
 * shard_map is the same launch over a mesh, with blocks instead of
 * slices. */
#include "api/pmap.h"
#include "backend/backend.h"
#include "dist/local.h"
#include "prims/lax.h"
#include "trace/trace.h"

#include <pthread.h>
#include <stdio.h>

jx_fn *jx_vmap_named(jx_fn *f, const int *in_axes, int out_axis, const char *axis_name) {
  char names[JX_COLL_MAX_NAMES][JX_AXIS_NAME_CAP];
  int n;
  jx_t err = jx_axis_names_parse("vmap_named", axis_name, names, &n);
  if (!err && n != 1) err = jx_error_new("vmap_named: one axis name, got '%s'", axis_name);
  if (err) return jx_fn_error_new("%s", jx_error(err));
  return jx_vmap_ex(f, in_axes, out_axis, names[0]);
}

/* ------------------------------------------------------------- launching */
/* jit of f, made again when the device count changes (its trace records
 * the member counts) */
typedef struct {
  jx_fn *f;
  pthread_mutex_t lock;
  jx_fn *jf;
  int64_t jf_devices;
} compiled_fn;

static void compiled_init(compiled_fn *c, jx_fn *f) {
  c->f = jx_fn_ref(f);
  pthread_mutex_init(&c->lock, NULL);
  c->jf = NULL, c->jf_devices = 0;
}

static void compiled_free(compiled_fn *c) {
  if (c->jf) jx_fn_release(c->jf);
  jx_fn_release(c->f);
  pthread_mutex_destroy(&c->lock);
}

/* the jit of f for ndev devices (a reference of the caller's) */
static jx_fn *compiled_get(compiled_fn *c, int64_t ndev) {
  pthread_mutex_lock(&c->lock);
  if (!c->jf || c->jf_devices != ndev) {
    if (c->jf) jx_fn_release(c->jf);
    c->jf = jx_fn_ref(jx_jit(c->f));
    c->jf_devices = ndev;
  }
  jx_fn *jf = jx_fn_ref(c->jf);
  pthread_mutex_unlock(&c->lock);
  return jf;
}

typedef struct {
  jx_fn *jf;
  jx_t *const *dargs; /* per device: its arguments */
  jx_t *outs;         /* per device: its result (retained) */
  int threads;        /* per device: its group of the thread pool */
} launch_ctx;

static jx_t device_call(int d, void *u) {
  launch_ctx *c = u;
  jx_backend_host()->set_thread_cap(c->threads);
  jx_t out = jx_call(c->jf, c->dargs[d]);
  if (!jx_ok(out)) return out;
  c->outs[d] = jx_retain(out);
  return NULL;
}

/* Trace and compile f once (the mesh's axes bound), run it on every
 * device; outs[d] (the caller's pool) on success. */
static jx_t launch(compiled_fn *cf, int ndim, const int64_t *shape, const char names[][JX_AXIS_NAME_CAP],
                   bool spans, jx_t *const *dargs, jx_t *outs) {
  int64_t ndev = 1;
  for (int a = 0; a < ndim; a++) ndev *= shape[a];
  jx_fn *jf = compiled_get(cf, ndev);
  jx_t err = NULL;
  int pushed = 0;
  for (int a = 0; a < ndim && !err; a++, pushed++)
    err = jx_axis_push(names[a], shape[a] * (spans && a == 0 ? jx_process_count() : 1), NULL);
  if (!err) err = jx_jit_compile(jf, dargs[0]);
  while (pushed-- > 0) jx_axis_pop();
  int per = jx_backend_host()->num_threads() / (int)ndev;
  launch_ctx c = {jf, dargs, outs, per < 1 ? 1 : per};
  for (int64_t d = 0; d < ndev; d++) outs[d] = NULL;
  if (!err) err = jx_run_devices(ndim, shape, names, spans, device_call, &c);
  for (int64_t d = 0; d < ndev; d++) {
    if (!outs[d]) continue;
    if (err) {
      jx_release(outs[d]), outs[d] = NULL;
    } else {
      outs[d] = jx_pool_own(outs[d]);
      if (!jx_ok(outs[d])) err = outs[d];
    }
  }
  jx_fn_release(jf);
  return err;
}

/* ------------------------------------------------------------------ pmap */
typedef struct {
  compiled_fn cf;
  int *in_axes; /* NULL: all 0 */
  int out_axis;
  char name[JX_AXIS_NAME_CAP];
} pmap_closure;

static void pmap_free(void *u) {
  pmap_closure *c = u;
  compiled_free(&c->cf);
  jx_free(c->in_axes);
  jx_free(c);
}

typedef struct {
  int arg, axis, ndev;
  bool any_mapped, traced;
  jx_t err;
} check_ctx;

static jx_t check_leaf(jx_t leaf, void *u) {
  check_ctx *k = u;
  if (k->err) return k->err;
  if (!jx_is_array(leaf)) k->traced = true;
  if (k->axis == JX_NONE) return leaf;
  char s[160];
  int r = jx_ndim(leaf), ax = k->axis < 0 ? k->axis + r : k->axis;
  if (ax < 0 || ax >= r)
    return k->err = jx_error_new("pmap: in_axes %d is out of range for argument %d of shape %s", k->axis,
                                 k->arg, jx_aval_str(&leaf->aval, s, sizeof s));
  if (leaf->aval.shape[ax] != k->ndev)
    return k->err = jx_error_new(
               "pmap: argument %d has size %lld along its mapped axis %d (shape %s), but there "
               "are %d local devices (jx_local_device_count: JX_CPU_DEVICES or "
               "jx_set_cpu_devices)",
               k->arg, (long long)leaf->aval.shape[ax], ax, jx_aval_str(&leaf->aval, s, sizeof s), k->ndev);
  k->any_mapped = true;
  return leaf;
}

typedef struct {
  int axis;
  int64_t d;
} slice_ctx;

/* leaf's slice d along axis, that axis dropped */
static jx_t slice_leaf(jx_t leaf, void *u) {
  const slice_ctx *s = u;
  if (s->axis == JX_NONE) return leaf;
  int r = jx_ndim(leaf), ax = s->axis < 0 ? s->axis + r : s->axis;
  int64_t lo[JX_MAX_RANK] = {0}, hi[JX_MAX_RANK], st[JX_MAX_RANK], sh[JX_MAX_RANK];
  for (int i = 0, k = 0; i < r; i++) {
    hi[i] = leaf->aval.shape[i], st[i] = 1;
    if (i != ax) sh[k++] = leaf->aval.shape[i];
  }
  lo[ax] = s->d, hi[ax] = s->d + 1;
  return jx_lax_reshape(jx_lax_slice(leaf, lo, hi, st), r - 1, sh);
}

static jx_t stack_leaves(const jx_t *leaves, void *u) {
  const int *n_axis = u;
  return jx_stack(n_axis[0], leaves, n_axis[1]);
}

static jx_t pmap_run(pmap_closure *c, const jx_t *args, int nargs, int ndev) {
  jx_t *flat = jx_calloc((size_t)ndev * (size_t)(nargs + 1), sizeof(jx_t));
  jx_t **dargs = jx_calloc((size_t)ndev, sizeof(jx_t *));
  jx_t *outs = jx_calloc((size_t)ndev, sizeof(jx_t));
  jx_t err = flat && dargs && outs ? NULL : jx_error_new("pmap: out of memory");
  for (int d = 0; !err && d < ndev; d++) {
    dargs[d] = flat + (size_t)d * (size_t)(nargs + 1);
    for (int i = 0; !err && i < nargs; i++) {
      slice_ctx s = {c->in_axes ? c->in_axes[i] : 0, d};
      dargs[d][i] = jx_tree_map(slice_leaf, args[i], &s);
      if (!jx_ok(dargs[d][i])) err = dargs[d][i];
    }
  }
  int64_t shape[1] = {ndev};
  if (!err) err = launch(&c->cf, 1, shape, (const char(*)[JX_AXIS_NAME_CAP])c->name, true, dargs, outs);
  int n_axis[2] = {ndev, c->out_axis};
  jx_t r = err ? err : jx_tree_map_n(stack_leaves, ndev, outs, n_axis);
  jx_free(flat), jx_free(dargs), jx_free(outs);
  return r;
}

static jx_t pmap_body(const jx_t *args, void *u) {
  pmap_closure *c = u;
  int nargs = c->cf.f->nargs, ndev = jx_local_device_count();
  check_ctx k = {.ndev = ndev};
  for (int i = 0; i < nargs && !k.err; i++) {
    k.arg = i, k.axis = c->in_axes ? c->in_axes[i] : 0;
    jx_tree_map(check_leaf, args[i], &k);
  }
  if (k.err) return k.err;
  if (!k.any_mapped) return jx_error_new("pmap: no argument is mapped (every in_axes is JX_NONE)");
  if (k.traced || jx_dynamic_trace()) /* under grad, vmap, jit: the equal named vmap */
    return jx_call(jx_vmap_ex(c->cf.f, c->in_axes, c->out_axis, c->name), args);
  return pmap_run(c, args, nargs, ndev);
}

jx_fn *jx_pmap(jx_fn *f, const int *in_axes, int out_axis, const char *axis_name) {
  jx_fn *bad = jx_fn_unusable("pmap", f);
  if (bad) return bad;
  char names[JX_COLL_MAX_NAMES][JX_AXIS_NAME_CAP];
  int n;
  jx_t err = jx_axis_names_parse("pmap", axis_name, names, &n);
  if (!err && n != 1) err = jx_error_new("pmap: one axis name, got '%s'", axis_name);
  if (err) return jx_fn_error_new("%s", jx_error(err));
  for (int i = 0; in_axes && i < f->nargs; i++)
    if (in_axes[i] != JX_NONE && (in_axes[i] < -JX_MAX_RANK || in_axes[i] >= JX_MAX_RANK))
      return jx_fn_error_new("pmap: in_axes[%d] = %d is out of range for any array", i, in_axes[i]);
  pmap_closure *c = jx_calloc(1, sizeof *c);
  if (c && in_axes && !(c->in_axes = jx_malloc(sizeof(int) * (size_t)(f->nargs ? f->nargs : 1))))
    jx_free(c), c = NULL;
  if (!c) return jx_fn_error_new("pmap: out of memory");
  if (in_axes) memcpy(c->in_axes, in_axes, sizeof(int) * (size_t)f->nargs);
  compiled_init(&c->cf, f);
  c->out_axis = out_axis;
  memcpy(c->name, names[0], JX_AXIS_NAME_CAP);
  return jx_fn_make(pmap_body, f->nargs, c, pmap_free, "pmap");
}
