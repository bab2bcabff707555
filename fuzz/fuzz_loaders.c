/* libFuzzer target: bytes -> a file, loaded by every jx loader.
 *
 * The first byte picks the loader (jx_npy_load, jx_npz_load,
 * jx_safetensors_load, jx_load of a small tree from .npz or
 * .safetensors); the rest is the file. A .safetensors file is loaded by
 * both header readers (cJSON's and jx's own). The target checks that nothing
 * crashes or leaks (ASan/UBSan/LSan), that a failure is an error value
 * with a message, and that what loads is an array or a tuple of arrays
 * whose sizes match their shapes and dtypes (the bytes can be read back).
 * Build and run: fuzz/run.sh loaders SECONDS (seeds in fuzz/corpus_loaders). */
#include <jx.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[5][64];
/* test hook (src/io/io.h): nonzero: .safetensors headers through jx's own
 * JSON reader even in a build with cJSON, so that both are fuzzed */
void jx_safetensors_force_reader(int own);

static void check_array(jx_t x) {
  if (jx_ndim(x) < 0) abort();
  int64_t n = 1;
  for (int i = 0; i < jx_ndim(x); i++) n *= jx_shape(x)[i];
  if (n != jx_size(x)) abort();
  size_t bytes = (size_t)n * jx_dtype_size(jx_dtype_of(x));
  void *buf = malloc(bytes ? bytes : 1);
  if (jx_read(x, jx_dtype_of(x), buf, bytes)) abort();
  free(buf);
}

static void check_result(jx_t r) {
  if (!jx_ok(r)) {
    const char *m = jx_error(r);
    if (!m || !*m) abort();
    return;
  }
  if (!jx_is_tree(r)) return check_array(r);
  for (int i = 0; i < jx_len(r); i++) check_result(jx_at(r, i));
}

static jx_t like_tree(void) {
  return JX_TUPLE(JX_LIST(jx_zeros(JX_F32, JX_SHAPE(2, 3)), jx_zeros(JX_I32, JX_SHAPE(3))),
                  jx_zeros(JX_BOOL, JX_SHAPE(0)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!path[0][0]) {
    const char *sfx[5] = {"npy", "npz", "safetensors", "npz", "safetensors"};
    for (int i = 0; i < 5; i++)
      snprintf(path[i], sizeof path[i], "/tmp/jx-fuzz-loaders-%d.%d.%s", (int)getpid(), i, sfx[i]);
  }
  if (size < 1) return 0;
  int which = data[0] % 5;
  FILE *f = fopen(path[which], "wb");
  if (!f) return 0;
  if (size > 1) fwrite(data + 1, 1, size - 1, f);
  fclose(f);
  jx_pool_push();
  char **names = NULL;
  jx_t r;
  switch (which) {
    case 0: r = jx_npy_load(path[0]); break;
    case 1: r = jx_npz_load(path[1], &names); break;
    case 2: r = jx_safetensors_load(path[2], &names); break;
    default: {
      r = jx_load(path[which], like_tree());
    }
  }
  check_result(r);
  if (jx_ok(r) && (which == 1 || which == 2)) { /* one name per array, each a string */
    if (!names) abort();
    for (int i = 0; i < jx_len(r); i++)
      if (!names[i] || strlen(names[i]) > size) abort();
  }
  free(names);
  if (which == 2 || which == 4) { /* the own JSON reader too, when cJSON is the default */
    jx_safetensors_force_reader(1);
    check_result(which == 2 ? jx_safetensors_load(path[2], NULL) : jx_load(path[4], like_tree()));
    jx_safetensors_force_reader(0);
  }
  jx_pool_pop();
  unlink(path[which]);
  return 0;
}
