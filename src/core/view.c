/* Views: an array over a contiguous run of another array's buffer, sharing
 * it instead of copying. pmap hands each device its block of a mapped
 * argument this way, and returns a single device's result with the device
 * axis added without a copy.
 *
 * The view's buffer is an external header over base's memory whose
 * deleter releases base's buffer, so base's memory lives as long as any
 * view of it. External buffers are never written in place (jit's
 * donation refuses them), which is what makes sharing safe: every other
 * writer makes a fresh buffer. A borrowed base (scan's per-step x slice)
 * is copied instead: its memory belongs to the scan, not to the header. */
#include "core/core.h"

static void release_base(void *data, void *ctx) {
  (void)data;
  jx_buffer_release(ctx);
}

jx_t jx_array_view(jx_t base, size_t byte_off, const jx_aval *a) {
  jx_buffer *bb = base->u.arr.buf;
  size_t nbytes = (size_t)jx_aval_size(a) * jx_dtype_size(a->dtype);
  JX_CHECK(byte_off + nbytes <= bb->nbytes);
  if (bb->borrowed) {
    jx_t c = jx_array_new(a);
    if (jx_ok(c) && nbytes) memcpy(jx_data(c), (char *)bb->data + byte_off, nbytes);
    return c;
  }
  atomic_fetch_add(&bb->refs, 1);
  jx_buffer *b = jx_buffer_wrap((char *)bb->data + byte_off, nbytes, release_base, bb);
  jx_t v = b ? jx_value_new(JX_VK_ARRAY) : NULL;
  if (!v) {
    if (b) jx_free(b); /* a bare header: releasing it would release bb twice */
    jx_buffer_release(bb);
    return jx_error_new("view: out of memory");
  }
  v->aval = *a;
  v->u.arr.buf = b;
  return v;
}
