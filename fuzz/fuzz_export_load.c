/* libFuzzer target: bytes -> jx_export_load_text (the serialized-jaxpr
 * format, src/export/load.c), then a call of what loads on as many f32[3]
 * ones as it takes arguments (the seeds in fuzz/corpus_export take f32[3]
 * leaves, so mutations reach the rules and the compiled code too). The
 * target checks that nothing crashes or leaks (ASan/UBSan/LSan) and that a
 * failure is an error value with a message. A file with a while loop is
 * loaded but not run: a valid while loop may legitimately never end (as in
 * JAX), which is the program's doing, not the loader's (the first campaign
 * found exactly that: a mutated constant kept a loop's condition true).
 * Build and run: fuzz/run.sh export SECONDS. */
#include <jx.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  jx_pool_push();
  jx_fn *g = jx_export_load_text((const char *)data, size);
  int n = jx_fn_nargs(g);
  jx_t args[8];
  for (int i = 0; i < 8; i++) args[i] = jx_ones(JX_F32, 1, (int64_t[]){3});
  bool has_while = false;
  for (size_t i = 0; i + 7 <= size && !has_while; i++)
    has_while =
        !memcmp(data + i, "\nwhile ", 7) || (i + 15 <= size && !memcmp(data + i, "\nwhile_bounded ", 15));
  if (n >= 0 && n <= 8 && !has_while) {
    jx_t r = jx_call(g, args);
    if (!jx_ok(r) && (!jx_error(r) || !*jx_error(r))) abort();
  }
  jx_fn_free(g);
  jx_pool_pop();
  return 0;
}
