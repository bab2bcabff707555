/* Parameters as .npz through the library (jx_npz_save / jx_npz_load): a
 * list of (W, b) tuples becomes W0.npy, b0.npy, W1.npy, ... (f32) in an
 * uncompressed zip, plus input_norm.npy when given, so that
 * numpy.load(path)["W0"] gives back the first weight matrix. */
#include "letters.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LT_MAX_LAYERS 32

int lt_npz_save(const char *path, jx_t params, const float *norm, lt_err *e) {
  if (!jx_ok(params) || jx_len(params) < 1) return lt_fail(e, "%s: no parameters to save", path);
  int nl = jx_len(params), n = 2 * nl + (norm != NULL);
  if (nl > LT_MAX_LAYERS) return lt_fail(e, "%s: more than %d layers", path, LT_MAX_LAYERS);
  char names[2 * LT_MAX_LAYERS + 1][16];
  const char *np[2 * LT_MAX_LAYERS + 1];
  jx_t arrays[2 * LT_MAX_LAYERS + 1];
  jx_pool_push();
  for (int i = 0; i < 2 * nl; i++) {
    snprintf(names[i], sizeof names[i], "%c%d", i % 2 ? 'b' : 'W', i / 2);
    arrays[i] = jx_astype(jx_at(jx_at(params, i / 2), i % 2), JX_F32);
  }
  if (norm)
    snprintf(names[2 * nl], sizeof names[0], "input_norm"),
        arrays[2 * nl] = jx_array(JX_F32, JX_SHAPE(2), norm);
  for (int i = 0; i < n; i++) np[i] = names[i];
  jx_t err = jx_npz_save(path, n, np, arrays);
  int rc = err ? lt_fail(e, "%s", jx_error(err)) : 0;
  jx_pool_pop();
  return rc;
}

/* W<l> / b<l> into leaves[2l], leaves[2l+1]; input_norm into norm */
static int take(const char *path, const char *name, jx_t a, jx_t *leaves, int *have, float *norm, lt_err *e) {
  int idx = -1;
  char kind = 0, rest = 0;
  if (sscanf(name, "%c%d%c", &kind, &idx, &rest) == 2 && (kind == 'W' || kind == 'b') && idx >= 0 &&
      idx < LT_MAX_LAYERS) {
    if (jx_dtype_of(a) != JX_F32 && jx_dtype_of(a) != JX_F64)
      return lt_fail(e, "%s: %s: only float32/float64 arrays are supported", path, name);
    leaves[2 * idx + (kind == 'b')] = jx_astype(a, JX_F32);
    if (2 * idx + 2 > *have) *have = 2 * idx + 2;
  } else if (strcmp(name, "input_norm") == 0 && norm) {
    if (jx_size(a) != 2 || jx_read(a, JX_F32, norm, 2 * sizeof(float)))
      return lt_fail(e, "%s: input_norm must hold two numbers (mean, std)", path);
  } /* other arrays in the archive are ignored */
  return 0;
}

int lt_npz_load(const char *path, jx_t *params, float *norm, lt_err *e) {
  char **names = NULL;
  jx_t all = jx_npz_load(path, &names);
  if (!jx_ok(all)) return lt_fail(e, "%s", jx_error(all));
  jx_t leaves[2 * LT_MAX_LAYERS] = {0};
  int have = 0, rc = 0;
  for (int i = 0; i < jx_len(all) && !rc; i++)
    rc = take(path, names[i], jx_at(all, i), leaves, &have, norm, e);
  free(names);
  if (rc) return rc;
  if (have == 0) return lt_fail(e, "%s: no W0.npy/b0.npy arrays in the archive", path);
  jx_t layers[LT_MAX_LAYERS];
  for (int l = 0; l < have / 2; l++) {
    jx_t W = leaves[2 * l], b = leaves[2 * l + 1];
    if (!W || !b) return lt_fail(e, "%s: layer %d is missing %s", path, l, W ? "b" : "W");
    if (jx_ndim(W) != 2 || jx_ndim(b) != 1 || jx_shape(b)[0] != jx_shape(W)[1] ||
        (l > 0 && jx_shape(W)[0] != jx_shape(leaves[2 * l - 2])[1]))
      return lt_fail(e, "%s: layer %d has inconsistent shapes", path, l);
    layers[l] = JX_TUPLE(W, b);
  }
  *params = jx_list(have / 2, layers);
  return 0;
}
