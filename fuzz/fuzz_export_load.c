/* libFuzzer target: bytes -> jx_export_load_text (the serialized-jaxpr
 * format, src/export/load.c), then a call of what loads on as many f32[3]
 * ones as it takes arguments (the seeds in fuzz/corpus_export take f32[3]
 * leaves, so mutations reach the rules and the compiled code too). The
 * target checks that nothing crashes or leaks (ASan/UBSan/LSan) and that a
 * failure is an error value with a message.
 * Build and run: fuzz/run.sh export SECONDS. */
#include <jx.h>

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  jx_pool_push();
  jx_fn *g = jx_export_load_text((const char *)data, size);
  int n = jx_fn_nargs(g);
  jx_t args[8];
  for (int i = 0; i < 8; i++) args[i] = jx_ones(JX_F32, 1, (int64_t[]){3});
  if (n >= 0 && n <= 8) {
    jx_t r = jx_call(g, args);
    if (!jx_ok(r) && (!jx_error(r) || !*jx_error(r))) abort();
  }
  jx_fn_free(g);
  jx_pool_pop();
  return 0;
}
