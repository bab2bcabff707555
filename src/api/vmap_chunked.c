/* jx_vmap_chunked: vmap over chunks of the mapped axis, the chunks run one
 * after another by a scan (functorch's vmap chunk_size, jax's
 * lax.map(batch_size=...)): the batched intermediates are those of one
 * chunk, not of the whole batch. The B examples split into B / chunk
 * full chunks (a scan over them, each a vmap of f) and a remainder (one
 * more vmap); the results are concatenated and the mapped axis moved to
 * out_axis. Equal to jx_vmap(f, in_axes, out_axis). */
#include "api/api.h"
#include "prims/prims.h"

typedef struct {
  jx_fn *f, *vf; /* f, and vmap(f) over the mapped args at axis 0 */
  int *in_axes;  /* NULL: all 0 */
  int out_axis;
  int64_t chunk;
} chunk_closure;

static void chunk_free(void *u) {
  chunk_closure *c = u;
  jx_fn_release(c->f);
  jx_fn_release(c->vf);
  jx_free(c->in_axes);
  jx_free(c);
}

static int axis_of(const chunk_closure *c, int i) { return c->in_axes ? c->in_axes[i] : 0; }

/* the mapped axis of each leaf moved to the front; the batch size */
typedef struct {
  int axis, arg;
  int64_t size;
  jx_t err;
} front_ctx;
static jx_t to_front(jx_t leaf, void *u) {
  front_ctx *w = u;
  if (w->err) return w->err;
  int r = jx_ndim(leaf), ax = w->axis < 0 ? w->axis + r : w->axis;
  char s[160];
  if (ax < 0 || ax >= r)
    return w->err = jx_error_new("vmap_chunked: in_axes %d is out of range for argument %d of shape %s",
                                 w->axis, w->arg, jx_aval_str(&leaf->aval, s, sizeof s));
  int64_t n = leaf->aval.shape[ax];
  if (w->size >= 0 && n != w->size)
    return w->err = jx_error_new("vmap_chunked: inconsistent sizes for the mapped axis: %lld and %lld",
                                 (long long)w->size, (long long)n);
  w->size = n;
  return jx_moveaxis(leaf, ax, 0);
}

/* rows [lo, hi) of a leaf (mapped axis in front), reshaped to (k, chunk, ...) when k > 0 */
typedef struct {
  int64_t lo, hi, k;
} rows_ctx;
static jx_t rows(jx_t leaf, void *u) {
  rows_ctx *r = u;
  int64_t start[JX_MAX_RANK] = {r->lo}, stop[JX_MAX_RANK] = {r->hi}, shape[JX_MAX_RANK + 1];
  for (int d = 1; d < jx_ndim(leaf); d++) start[d] = 0, stop[d] = jx_shape(leaf)[d];
  jx_t s = jx_slice(leaf, start, stop, NULL);
  if (!r->k) return s;
  shape[0] = r->k, shape[1] = (r->hi - r->lo) / r->k;
  for (int d = 1; d < jx_ndim(leaf); d++) shape[d + 1] = jx_shape(leaf)[d];
  return jx_reshape(s, jx_ndim(leaf) + 1, shape);
}

/* the scan's step: vmap(f) on one chunk of the mapped args */
typedef struct {
  const chunk_closure *c;
  const jx_t *args;
} step_ctx;
static jx_t chunk_step(const jx_t *a, void *u) {
  step_ctx *s = u;
  int n = s->c->f->nargs;
  jx_t small[16] = {0}, *all = n <= 16 ? small : jx_malloc(sizeof(jx_t) * (size_t)n);
  if (!all) return jx_error_new("vmap_chunked: out of memory");
  for (int i = 0, k = 0; i < n; i++) all[i] = axis_of(s->c, i) == JX_NONE ? s->args[i] : jx_at(a[1], k++);
  jx_t y = jx_call(s->c->vf, all);
  if (all != small) jx_free(all);
  return JX_TUPLE(a[0], y);
}

/* (k, chunk, ...) -> (k * chunk, ...) */
static jx_t merge(jx_t leaf, void *u) {
  (void)u;
  int64_t shape[JX_MAX_RANK];
  int r = jx_ndim(leaf);
  shape[0] = jx_shape(leaf)[0] * jx_shape(leaf)[1];
  for (int d = 2; d < r; d++) shape[d - 1] = jx_shape(leaf)[d];
  return jx_reshape(leaf, r - 1, shape);
}
static jx_t concat2(jx_t a, jx_t b, void *u) {
  (void)u;
  return jx_concatenate(2, (jx_t[]){a, b}, 0);
}
static jx_t to_out(jx_t leaf, void *u) {
  int out_axis = *(int *)u, r = jx_ndim(leaf), ax = out_axis < 0 ? out_axis + r : out_axis;
  if (ax < 0 || ax >= r)
    return jx_error_new("vmap_chunked: out_axis %d is out of range for rank %d", out_axis, r);
  return jx_moveaxis(leaf, 0, ax);
}

static jx_t chunk_body(const jx_t *args, void *u) {
  chunk_closure *c = u;
  int n = c->f->nargs, nm = 0;
  jx_t *front = jx_malloc(sizeof(jx_t) * (size_t)(n + 1)),
       *mapped = jx_malloc(sizeof(jx_t) * (size_t)(n + 1));
  front_ctx w = {.size = -1};
  if (!front || !mapped) w.err = jx_error_new("vmap_chunked: out of memory");
  for (int i = 0; i < n && !w.err; i++) {
    w.axis = axis_of(c, i), w.arg = i;
    front[i] = w.axis == JX_NONE ? args[i] : jx_tree_map(to_front, args[i], &w);
    if (w.axis != JX_NONE) mapped[nm++] = front[i];
  }
  if (!w.err && w.size < 0)
    w.err = jx_error_new("vmap_chunked: no argument is mapped (every in_axes is JX_NONE)");
  jx_t out = w.err;
  int64_t k = w.err ? 0 : w.size / c->chunk, lo = k * c->chunk;
  if (!out && k > 0) { /* the full chunks, by a scan */
    rows_ctx rc = {0, lo, k};
    jx_t xs = jx_tree_map(rows, jx_tuple(nm, mapped), &rc);
    step_ctx sc = {c, front};
    jx_fn *step = jx_fn_new(chunk_step, 2, &sc);
    jx_t r = jx_scan(step, jx_tuple(0, NULL), xs);
    jx_fn_free(step);
    out = jx_ok(r) ? jx_tree_map(merge, jx_at(r, 1), NULL) : r;
  }
  if ((!out || jx_ok(out)) && lo < w.size) { /* the remainder, by one more vmap */
    rows_ctx rc = {lo, w.size, 0};
    jx_t *rest = jx_malloc(sizeof(jx_t) * (size_t)(n + 1));
    for (int i = 0; rest && i < n; i++)
      rest[i] = axis_of(c, i) == JX_NONE ? front[i] : jx_tree_map(rows, front[i], &rc);
    jx_t y = rest ? jx_call(c->vf, rest) : jx_error_new("vmap_chunked: out of memory");
    out = !out ? y : jx_ok(y) ? jx_tree_map2(concat2, out, y, NULL) : y;
    jx_free(rest);
  }
  if (jx_ok(out)) out = jx_tree_map(to_out, out, &c->out_axis);
  jx_free(front), jx_free(mapped);
  return out;
}

jx_fn *jx_vmap_chunked(jx_fn *f, const int *in_axes, int out_axis, int64_t chunk_size) {
  jx_fn *bad = jx_fn_unusable("vmap_chunked", f);
  if (bad) return bad;
  if (chunk_size < 1)
    return jx_fn_error_new("vmap_chunked: chunk_size must be >= 1, got %lld", (long long)chunk_size);
  chunk_closure *c = jx_calloc(1, sizeof *c);
  if (!c) return jx_fn_error_new("vmap_chunked: out of memory");
  int *inner = jx_malloc(sizeof(int) * (size_t)(f->nargs + 1));
  if (in_axes) c->in_axes = jx_malloc(sizeof(int) * (size_t)(f->nargs + 1));
  if (!inner || (in_axes && !c->in_axes)) {
    jx_free(inner), jx_free(c->in_axes), jx_free(c);
    return jx_fn_error_new("vmap_chunked: out of memory");
  }
  for (int i = 0; i < f->nargs; i++) {
    if (in_axes) c->in_axes[i] = in_axes[i];
    inner[i] = in_axes && in_axes[i] == JX_NONE ? JX_NONE : 0; /* mapped leaves come with the axis in front */
  }
  jx_fn *vf = jx_vmap(f, inner, 0); /* checks in_axes' range too */
  jx_free(inner);
  jx_fn *chk = jx_vmap(f, in_axes, out_axis); /* the axes' checks */
  jx_t e = jx_fn_error_value("vmap_chunked", vf);
  if (!e) e = jx_fn_error_value("vmap_chunked", chk);
  jx_fn_free(chk);
  if (e) {
    jx_fn_free(vf);
    jx_free(c->in_axes), jx_free(c);
    return jx_fn_error_new("%s", jx_error(e));
  }
  c->f = jx_fn_ref(f), c->vf = jx_fn_ref(vf);
  jx_fn_free(vf);
  c->out_axis = out_axis, c->chunk = chunk_size;
  return jx_fn_make(chunk_body, f->nargs, c, chunk_free, "vmap_chunked");
}
