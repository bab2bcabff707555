/* jx_cpu_run_widened: a kernel run on copies of its operands in a wider
 * dtype, its output narrowed back once (kernels.h says when and why). */
#include "backend/cpu/kernels.h"
#include "core/core.h"

enum { WIDEN_MAX_IN = 4 };

void *jx_cpu_scratch(size_t nbytes, jx_buffer **h) {
  *h = jx_buffer_new(nbytes ? nbytes : 1);
  return *h ? (*h)->data : NULL;
}

void jx_cpu_scratch_free(jx_buffer *h) {
  if (h) jx_buffer_release(h);
}

int jx_cpu_run_widened(jx_dtype dt, jx_dtype wide, int nin, const void *const *in, const int64_t *n,
                       void *out, int64_t nout, jx_cpu_wide_fn fn, void *ctx) {
  if (nin < 0 || nin > WIDEN_MAX_IN) return -1;
  const size_t es = jx_dtype_size(wide);
  void *w[WIDEN_MAX_IN + 1] = {NULL};
  jx_buffer *h[WIDEN_MAX_IN + 1] = {NULL};
  int rc = 0;
  for (int i = 0; i <= nin && !rc; i++) {
    int64_t cnt = i < nin ? n[i] : nout;
    if (!(w[i] = jx_cpu_scratch(es * (size_t)(cnt > 0 ? cnt : 1), &h[i]))) rc = -1;
  }
  if (!rc) {
    for (int i = 0; i < nin; i++) jx_cpu_convert(dt, wide, n[i], in[i], w[i]);
    rc = fn(ctx, (const void *const *)w, w[nin]);
    if (!rc) jx_cpu_convert(wide, dt, nout, w[nin], out);
  }
  for (int i = 0; i <= nin; i++) jx_cpu_scratch_free(h[i]);
  return rc;
}
