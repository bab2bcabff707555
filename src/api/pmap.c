/* pmap, named vmap and shard_map.
 *
 * pmap(f) on concrete arguments: slice each mapped argument per device,
 * trace and compile f once through jit (the axis name bound in the axis
 * environment, so its collectives record their member count), then run
 * the compiled program on every device at once (dist/local.c: device 0
 * on this thread, the others on persistent workers, collectives meeting
 * at a rendezvous) and stack the results.
 * Under another transformation (grad, vmap, jit of a pmap: its arguments
 * are tracers) there is nothing to run yet: it is the named vmap it is
 * equal to, so the outer transformation sees the collectives' rules.
 * shard_map is the same launch over a mesh, with blocks instead of
 * slices. */
#include "api/pmap.h"
#include "backend/backend.h"
#include "dist/dist.h"
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
  /* device 0 runs on the caller's thread (dist/local.c): its cap comes back */
  int was = jx_backend_host()->set_thread_cap(c->threads);
  jx_t out = jx_call(c->jf, c->dargs[d]);
  jx_backend_host()->set_thread_cap(was);
  if (!jx_ok(out)) return out;
  c->outs[d] = jx_retain(out);
  return NULL;
}

/* What every process must agree on before a pmap runs across them: the
 * types of a device's arguments and the device count (the program follows
 * from them, f being the same program everywhere) */
static uint64_t signature(const jx_t *args, int nargs, int64_t ndev) {
  uint64_t h = jx_fnv1a(&ndev, sizeof ndev, JX_FNV_BASIS);
  for (int i = 0; i < nargs; i++) {
    jx_t small[16];
    int n = jx_tree_leaves_to(args[i], small, 16);
    for (int k = 0; k < n && k < 16; k++) {
      char s[160];
      jx_aval_str(&small[k]->aval, s, sizeof s);
      h = jx_fnv1a(s, strlen(s) + 1, h);
    }
    h = jx_fnv1a(&n, sizeof n, h);
  }
  return h;
}

/* The processes' signatures differ: say what this one passes. */
static jx_t disagree_error(jx_t e, const char *axis, const jx_t *args, int nargs) {
  char types[512] = "";
  size_t n = 0;
  for (int i = 0; i < nargs && n < sizeof types - 1; i++) {
    jx_t small[16];
    int k = jx_tree_leaves_to(args[i], small, 16);
    for (int j = 0; j < k && j < 16 && n < sizeof types - 1; j++) {
      char s[160];
      n += (size_t)snprintf(types + n, sizeof types - n, "%s%s", n ? ", " : "",
                            jx_aval_str(&small[j]->aval, s, sizeof s));
    }
  }
  return jx_error_new("pmap over axis '%s': process %d of %d passes (%s) per device: %s", axis,
                      jx_process_index(), jx_process_count(), types, jx_error(e));
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
  if (spans && jx_dist_active()) { /* also after a failed compile: the others must not wait for us */
    uint64_t sig = signature(dargs[0], cf->f->nargs, ndev);
    if (err) sig = jx_fnv1a("failed", 6, sig);
    jx_t e = jx_dist_agree(sig, "pmap");
    if (!err && e) err = disagree_error(e, names[0], dargs[0], cf->f->nargs);
  }
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

/* one device: its result with the device axis added, a view (no copy) */
static jx_t stack_leaves(const jx_t *leaves, void *u) {
  const int *n_axis = u;
  return n_axis[0] == 1 ? jx_expand_dims(leaves[0], n_axis[1]) : jx_stack(n_axis[0], leaves, n_axis[1]);
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
  jx_t r = err                      ? err
           : c->out_axis == JX_NONE ? outs[0] /* replicated: device 0's, no copy */
                                    : jx_tree_map_n(stack_leaves, ndev, outs, n_axis);
  jx_free(flat), jx_free(dargs), jx_free(outs);
  return r;
}

static jx_t member0(jx_t leaf, void *u) {
  (void)u;
  return jx_take(leaf, jx_scalar_int(0), 0);
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
  if (k.traced || jx_dynamic_trace()) { /* under grad, vmap, jit: the equal named vmap */
    jx_t r =
        jx_call(jx_vmap_ex(c->cf.f, c->in_axes, c->out_axis == JX_NONE ? 0 : c->out_axis, c->name), args);
    return c->out_axis == JX_NONE && jx_ok(r) ? jx_tree_map(member0, r, NULL) : r;
  }
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

/* ------------------------------------------------------------- shard_map */
struct jx_mesh {
  int ndim;
  int64_t shape[JX_MESH_MAX_DIMS];
  char names[JX_MESH_MAX_DIMS][JX_AXIS_NAME_CAP];
  char *err; /* bad arguments: shard_map reports this */
};

jx_mesh *jx_mesh_new(int ndim, const int *shape, const char *const *axis_names) {
  jx_mesh *m = jx_calloc(1, sizeof *m);
  if (!m) return NULL;
  char buf[200] = "";
  if (ndim < 1 || ndim > JX_MESH_MAX_DIMS || !shape || !axis_names)
    snprintf(buf, sizeof buf, "mesh: %d axes (1..%d, with a shape and names)", ndim, JX_MESH_MAX_DIMS);
  for (int a = 0; !buf[0] && a < ndim; a++) {
    const char *nm = axis_names[a];
    if (shape[a] < 1)
      snprintf(buf, sizeof buf, "mesh: axis %d has size %d", a, shape[a]);
    else if (!nm || !*nm || strchr(nm, ',') || strlen(nm) >= JX_AXIS_NAME_CAP)
      snprintf(buf, sizeof buf, "mesh: axis %d's name must be 1..%d bytes without ','", a,
               JX_AXIS_NAME_CAP - 1);
    for (int b = 0; !buf[0] && b < a; b++)
      if (!strcmp(m->names[b], nm)) snprintf(buf, sizeof buf, "mesh: axis name '%s' given twice", nm);
    if (buf[0]) break;
    m->shape[a] = shape[a];
    snprintf(m->names[a], JX_AXIS_NAME_CAP, "%s", nm);
  }
  m->ndim = ndim;
  if (buf[0] && !(m->err = jx_strdup(buf))) {
    jx_free(m);
    return NULL;
  }
  return m;
}

void jx_mesh_free(jx_mesh *m) {
  if (!m) return;
  jx_free(m->err);
  jx_free(m);
}

/* A spec: per array dim, the mesh axis it is split over, or -1. */
typedef struct {
  int n;
  int8_t axis[JX_MAX_RANK];
} spec_t;

static jx_t spec_parse(const jx_mesh *m, const char *s, spec_t *sp, const char *what) {
  sp->n = 0;
  if (!s) return NULL; /* NULL: replicated */
  unsigned used = 0;
  for (const char *p = s; *p || (p > s && p[-1] == ',');) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (sp->n == JX_MAX_RANK)
      return jx_error_new("shard_map: %s spec '%s' has more than %d dims", what, s, JX_MAX_RANK);
    int a = -1;
    for (int b = 0; len && b < m->ndim; b++)
      if (strlen(m->names[b]) == len && !strncmp(m->names[b], p, len)) a = b;
    if (len && a < 0)
      return jx_error_new("shard_map: %s spec '%s' names '%.*s', not a mesh axis", what, s, (int)len, p);
    if (a >= 0 && (used >> a & 1))
      return jx_error_new("shard_map: %s spec '%s' uses axis '%s' twice", what, s, m->names[a]);
    if (a >= 0) used |= 1u << a;
    sp->axis[sp->n++] = (int8_t)a;
    if (!e) break;
    p = e + 1;
    if (!*p) break; /* a trailing ',' ends the list */
  }
  return NULL;
}

typedef struct {
  compiled_fn cf;
  jx_mesh mesh;
  spec_t *in; /* per argument */
  spec_t out;
} shard_closure;

static void shard_free(void *u) {
  shard_closure *c = u;
  compiled_free(&c->cf);
  jx_free(c->in);
  jx_free(c);
}

typedef struct {
  const jx_mesh *m;
  const spec_t *sp;
  int arg;
  const int64_t *coord; /* NULL: only check */
  jx_t err;
  bool traced; /* a leaf is not a concrete array */
} block_ctx;

/* the device's block of a leaf (or, without coordinates, the checks) */
static jx_t block_leaf(jx_t leaf, void *u) {
  block_ctx *b = u;
  if (b->err) return b->err;
  int r = jx_ndim(leaf);
  char s[160];
  b->traced |= !jx_is_array(leaf);
  if (b->sp->n > r)
    return b->err = jx_error_new("shard_map: argument %d's spec has %d dims, but a leaf is %s", b->arg,
                                 b->sp->n, jx_aval_str(&leaf->aval, s, sizeof s));
  int64_t lo[JX_MAX_RANK] = {0}, hi[JX_MAX_RANK], st[JX_MAX_RANK];
  for (int k = 0; k < r; k++) {
    hi[k] = leaf->aval.shape[k], st[k] = 1;
    int a = k < b->sp->n ? b->sp->axis[k] : -1;
    if (a < 0) continue;
    int64_t parts = b->m->shape[a], size = leaf->aval.shape[k];
    if (size % parts)
      return b->err =
                 jx_error_new("shard_map: argument %d (%s): dim %d of size %lld does not split evenly over "
                              "mesh axis '%s' of size %lld",
                              b->arg, jx_aval_str(&leaf->aval, s, sizeof s), k, (long long)size,
                              b->m->names[a], (long long)parts);
    if (b->coord) lo[k] = b->coord[a] * (size / parts), hi[k] = lo[k] + size / parts;
  }
  return b->coord ? jx_lax_slice(leaf, lo, hi, st) : leaf;
}

typedef struct {
  const jx_mesh *m;
  const spec_t *sp;
} assemble_ctx;

/* the global output from the devices' blocks: concatenated along the dims
 * the spec splits, the mesh axes it does not name taken from coordinate 0
 * (their blocks are replicated) */
static jx_t assemble(const jx_t *blocks, void *u) {
  const assemble_ctx *c = u;
  const jx_mesh *m = c->m;
  int used[JX_MESH_MAX_DIMS], dim_of[JX_MESH_MAX_DIMS], nu = 0;
  char s[160];
  if (c->sp->n > jx_ndim(blocks[0]))
    return jx_error_new("shard_map: out_spec has %d dims, but an output is %s", c->sp->n,
                        jx_aval_str(&blocks[0]->aval, s, sizeof s));
  for (int k = 0; k < c->sp->n; k++)
    if (c->sp->axis[k] >= 0) used[nu] = c->sp->axis[k], dim_of[nu++] = k;
  int64_t combos = 1;
  for (int i = 0; i < nu; i++) combos *= m->shape[used[i]];
  jx_t *parts = jx_malloc(sizeof(jx_t) * (size_t)combos);
  if (!parts) return jx_error_new("shard_map: out of memory");
  for (int64_t q = 0; q < combos; q++) { /* q: row-major over the used axes */
    int64_t coord[JX_MESH_MAX_DIMS] = {0}, rest = q, d = 0;
    for (int i = nu; i-- > 0;) coord[used[i]] = rest % m->shape[used[i]], rest /= m->shape[used[i]];
    for (int a = 0; a < m->ndim; a++) d = d * m->shape[a] + coord[a];
    parts[q] = blocks[d];
  }
  for (int i = nu; i-- > 0;) { /* merge the innermost used axis first */
    int64_t k = m->shape[used[i]];
    combos /= k;
    for (int64_t q = 0; q < combos; q++) parts[q] = jx_concatenate((int)k, parts + q * k, dim_of[i]);
  }
  jx_t r = parts[0];
  jx_free(parts);
  return r;
}

/* mesh m's devices in this process: m itself, or with the first axis cut
 * by the processes when it spans them */
static jx_t shard_run(shard_closure *c, const jx_mesh *m, bool spans, const jx_t *args, int nargs,
                      int64_t ndev) {
  jx_t *flat = jx_calloc((size_t)ndev * (size_t)(nargs + 1), sizeof(jx_t));
  jx_t **dargs = jx_calloc((size_t)ndev, sizeof(jx_t *));
  jx_t *outs = jx_calloc((size_t)ndev, sizeof(jx_t));
  jx_t err = flat && dargs && outs ? NULL : jx_error_new("shard_map: out of memory");
  for (int64_t d = 0; !err && d < ndev; d++) {
    int64_t coord[JX_MESH_MAX_DIMS], rest = d;
    for (int a = m->ndim; a-- > 0;) coord[a] = rest % m->shape[a], rest /= m->shape[a];
    dargs[d] = flat + (size_t)d * (size_t)(nargs + 1);
    for (int i = 0; !err && i < nargs; i++) {
      block_ctx b = {m, &c->in[i], i, coord, NULL, false};
      dargs[d][i] = jx_tree_map(block_leaf, args[i], &b);
      if (!jx_ok(dargs[d][i])) err = dargs[d][i];
    }
  }
  if (!err) err = launch(&c->cf, m->ndim, m->shape, m->names, spans, dargs, outs);
  assemble_ctx ac = {m, &c->out};
  jx_t r = err ? err : jx_tree_map_n(assemble, (int)ndev, outs, &ac);
  jx_free(flat), jx_free(dargs), jx_free(outs);
  return r;
}

/* --- shard_map under another transformation: nested named vmaps, one per
 * mesh axis (outermost first), over each leaf reshaped so that the mesh
 * axes it is split over lead, in mesh order */
typedef struct {
  jx_fn *f;
  const jx_t *args; /* the original arguments: their tree structures */
  int nargs;
} inner_ctx;

/* the blocks as f's arguments, f applied */
static jx_t inner_body(const jx_t *leaves, void *u) {
  const inner_ctx *c = u;
  jx_t small[16], *a = c->nargs <= 16 ? small : jx_malloc(sizeof(jx_t) * (size_t)c->nargs);
  if (!a) return jx_error_new("shard_map: out of memory");
  for (int i = 0, k = 0; i < c->nargs; i++) {
    a[i] = jx_tree_build(c->args[i], leaves + k);
    k += jx_tree_leaves_to(c->args[i], NULL, 0);
  }
  jx_t r = jx_call(c->f, a);
  if (a != small) jx_free(a);
  return r;
}

/* leaf with each dim split over a mesh axis cut into (parts, block), the
 * parts dims moved to the front in mesh order; *mask: the axes it has */
static jx_t lead_mesh_dims(const jx_mesh *m, const spec_t *sp, jx_t leaf, unsigned *mask) {
  int r = jx_ndim(leaf), nr = 0, perm[JX_MAX_RANK], np = 0, pos_of[JX_MESH_MAX_DIMS];
  int64_t sh[JX_MAX_RANK];
  *mask = 0;
  for (int k = 0; k < r; k++) {
    int a = k < sp->n ? sp->axis[k] : -1;
    if (a >= 0 && nr < JX_MAX_RANK) *mask |= 1u << a, pos_of[a] = nr, sh[nr++] = m->shape[a];
    if (nr == JX_MAX_RANK) return jx_error_new("shard_map: a split argument's rank exceeds %d", JX_MAX_RANK);
    sh[nr++] = a >= 0 ? leaf->aval.shape[k] / m->shape[a] : leaf->aval.shape[k];
  }
  for (int a = 0; a < m->ndim; a++)
    if (*mask >> a & 1) perm[np++] = pos_of[a];
  for (int q = 0; q < nr; q++) {
    bool lead = false;
    for (int a = 0; a < m->ndim; a++) lead |= (*mask >> a & 1) && pos_of[a] == q;
    if (!lead) perm[np++] = q;
  }
  return jx_lax_transpose(jx_lax_reshape(leaf, nr, sh), perm);
}

/* an output leaf [mesh dims..., block dims...] as the global array */
static jx_t merge_mesh_dims(jx_t y, void *u) {
  const assemble_ctx *c = u;
  const jx_mesh *m = c->m;
  int nd = m->ndim, r = jx_ndim(y) - nd;
  if (c->sp->n > r)
    return jx_error_new("shard_map: out_spec has %d dims, but an output has rank %d", c->sp->n, r);
  bool used[JX_MESH_MAX_DIMS] = {0};
  for (int k = 0; k < c->sp->n; k++)
    if (c->sp->axis[k] >= 0) used[c->sp->axis[k]] = true;
  int lead[JX_MESH_MAX_DIMS], nl = 0; /* where each used axis's dim is, after the others go */
  for (int a = nd; a-- > 0;)
    if (!used[a]) y = jx_take(y, jx_scalar_int(0), a); /* replicated: member 0's */
  for (int a = 0; a < nd; a++)
    if (used[a]) lead[a] = nl++;
  int perm[JX_MAX_RANK], np = 0;
  int64_t sh[JX_MAX_RANK];
  for (int k = 0; k < r; k++) {
    int a = k < c->sp->n ? c->sp->axis[k] : -1;
    if (a >= 0) perm[np++] = lead[a];
    perm[np++] = nl + k;
    sh[k] = y->aval.shape[nl + k] * (a >= 0 ? m->shape[a] : 1);
  }
  return jx_lax_reshape(jx_lax_transpose(y, perm), r, sh);
}

static jx_t shard_traced(shard_closure *c, const jx_t *args, int nargs) {
  int L = 0;
  for (int i = 0; i < nargs; i++) L += jx_tree_leaves_to(args[i], NULL, 0);
  jx_t *leaves = jx_calloc((size_t)(L ? L : 1), sizeof(jx_t));
  int *axes = jx_calloc((size_t)(L ? L : 1), sizeof(int));
  unsigned *masks = jx_calloc((size_t)(L ? L : 1), sizeof(unsigned));
  jx_t err = leaves && axes && masks ? NULL : jx_error_new("shard_map: out of memory");
  for (int i = 0, k = 0; !err && i < nargs; i++) {
    int n = jx_tree_leaves_to(args[i], leaves + k, L - k);
    for (int j = k; j < k + n && !err; j++) {
      leaves[j] = lead_mesh_dims(&c->mesh, &c->in[i], leaves[j], &masks[j]);
      if (!jx_ok(leaves[j])) err = leaves[j];
    }
    k += n;
  }
  inner_ctx ic = {c->cf.f, args, nargs};
  jx_fn *g = err ? NULL : jx_fn_new(inner_body, L, &ic);
  for (int a = c->mesh.ndim; !err && a-- > 0;) {
    for (int j = 0; j < L; j++) axes[j] = (masks[j] >> a & 1) ? 0 : JX_NONE;
    g = jx_vmap_ex(g, axes, 0, c->mesh.names[a]);
  }
  jx_t out = err ? err : jx_call(g, leaves);
  assemble_ctx ac = {&c->mesh, &c->out};
  jx_t r = jx_ok(out) ? jx_tree_map(merge_mesh_dims, out, &ac) : out;
  jx_free(leaves), jx_free(axes), jx_free(masks);
  return r;
}

/* A mesh of all processes' devices (jx_device_count) whose first axis is
 * a multiple of the process count spans the processes, as pmap's axis
 * does: process R holds the first axis's coordinates [R L0, (R+1) L0)
 * (L0 = its size / processes), passes its part of every argument split
 * over it, and gets its part of an output split over it; collectives over
 * that axis cross processes. */
static jx_t shard_body(const jx_t *args, void *u) {
  shard_closure *c = u;
  int nargs = c->cf.f->nargs;
  int64_t ndev = 1;
  for (int a = 0; a < c->mesh.ndim; a++) ndev *= c->mesh.shape[a];
  const int procs = jx_dist_active() ? jx_process_count() : 1, local = jx_local_device_count();
  const bool spans = procs > 1 && ndev == (int64_t)local * procs && c->mesh.shape[0] % procs == 0;
  if (ndev != local && !spans)
    return jx_error_new("shard_map: the mesh has %lld devices, but there are %d local devices "
                        "(jx_local_device_count: JX_CPU_DEVICES or jx_set_cpu_devices)%s",
                        (long long)ndev, local,
                        procs > 1 ? " and the processes' devices do not make it with its first axis split "
                                    "evenly over the processes"
                                  : "");
  jx_mesh m = c->mesh;
  if (spans) m.shape[0] /= procs, ndev = local;
  bool traced = jx_dynamic_trace() != NULL;
  for (int i = 0; i < nargs; i++) { /* the checks, before any device starts */
    block_ctx b = {&m, &c->in[i], i, NULL, NULL, false};
    jx_tree_map(block_leaf, args[i], &b);
    if (b.err) return b.err;
    traced |= b.traced;
  }
  if (traced && spans)
    return jx_error_new("shard_map: a mesh across processes runs outside grad, vmap and jit (call jit, grad "
                        "or vmap inside the mapped function)");
  /* under grad, vmap, jit: the nested named vmaps it equals */
  return traced ? shard_traced(c, args, nargs) : shard_run(c, &m, spans, args, nargs, ndev);
}

jx_fn *jx_shard_map(jx_fn *f, jx_mesh *mesh, const char *const *in_specs, const char *out_spec) {
  jx_fn *bad = jx_fn_unusable("shard_map", f);
  if (bad) return bad;
  if (!mesh) return jx_fn_error_new("shard_map: no mesh (jx_mesh_new ran out of memory?)");
  if (mesh->err) return jx_fn_error_new("shard_map: %s", mesh->err);
  shard_closure *c = jx_calloc(1, sizeof *c);
  if (c && !(c->in = jx_calloc((size_t)(f->nargs ? f->nargs : 1), sizeof(spec_t)))) jx_free(c), c = NULL;
  if (!c) return jx_fn_error_new("shard_map: out of memory");
  c->mesh = *mesh;
  c->mesh.err = NULL;
  jx_t err = NULL;
  for (int i = 0; i < f->nargs && !err; i++)
    err = spec_parse(mesh, in_specs ? in_specs[i] : NULL, &c->in[i], "in");
  if (!err) err = spec_parse(mesh, out_spec, &c->out, "out");
  if (err) {
    jx_free(c->in), jx_free(c);
    return jx_fn_error_new("%s", jx_error(err));
  }
  compiled_init(&c->cf, f);
  return jx_fn_make(shard_body, f->nargs, c, shard_free, "shard_map");
}
