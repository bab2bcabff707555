/* IDX files, the format of MNIST, EMNIST and Fashion-MNIST (#19's "data
 * in its own dtype"): two zero bytes, a type byte, the number of dims,
 * each dim as a big-endian u32, then the data row-major and big-endian.
 * The array keeps the file's dtype: the sets' images are u8 and stay u8
 * (a quarter of the f32 bytes), converted inside the jitted step. A
 * gzipped file (the sets ship as .gz) is inflated when jx has zlib. */
#include "io/io.h"

#ifdef JX_HAVE_ZLIB
#include <zlib.h>
#endif

static const char *const OP = "jx_idx_load";

/* the IDX type byte -> dtype (0x08..0x0E; 0x0A is unassigned) */
static jx_dtype idx_dtype(uint8_t t) {
  switch (t) {
    case 0x08: return JX_U8;
    case 0x09: return JX_I8;
    case 0x0B: return JX_I16;
    case 0x0C: return JX_I32;
    case 0x0D: return JX_F32;
    case 0x0E: return JX_F64;
    default: return JX_DTYPE_COUNT;
  }
}

/* the file's bytes inflated (gzip) into *out (jx_free it); NULL or the error */
static jx_t gunzip(const char *path, const uint8_t *p, size_t n, uint8_t **out, size_t *nout) {
#ifdef JX_HAVE_ZLIB
  z_stream s = {0};
  if (inflateInit2(&s, 16 + MAX_WBITS) != Z_OK)
    return jx_error_new("%s: %s: zlib's inflateInit2 failed", OP, path);
  size_t cap = n * 4 + 1024, len = 0;
  uint8_t *buf = jx_malloc(cap);
  const char *why = buf ? NULL : "out of memory";
  s.next_in = (Bytef *)(uintptr_t)p, s.avail_in = (uInt)(n < UINT32_MAX ? n : UINT32_MAX);
  while (!why) {
    if (len == cap) { /* full: double */
      uint8_t *b2 = cap > SIZE_MAX / 2 ? NULL : jx_realloc(buf, cap * 2);
      if (!b2) {
        why = "out of memory";
        break;
      }
      buf = b2, cap *= 2;
    }
    size_t room = cap - len < UINT32_MAX ? cap - len : UINT32_MAX;
    s.next_out = buf + len, s.avail_out = (uInt)room;
    int rc = inflate(&s, Z_NO_FLUSH);
    len += room - s.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc == Z_BUF_ERROR && s.avail_out)
      why = "truncated gzip data";
    else if (rc != Z_OK && rc != Z_BUF_ERROR)
      why = s.msg ? s.msg : "corrupt gzip data";
  }
  inflateEnd(&s);
  if (why) {
    jx_t e = jx_error_new("%s: %s: %s", OP, path, why);
    jx_free(buf);
    return e;
  }
  *out = buf, *nout = len;
  return NULL;
#else
  (void)p, (void)n, (void)out, (void)nout;
  return jx_error_new("%s: %s: a gzip file, and jx was built without zlib (gunzip it first)", OP, path);
#endif
}

/* parses the IDX bytes p[0..n) into an array */
static jx_t parse(const char *path, const uint8_t *p, size_t n) {
  if (n < 4 || p[0] || p[1])
    return jx_error_new("%s: %s: not an IDX file (it must start with two zero bytes)", OP, path);
  jx_dtype dt = idx_dtype(p[2]);
  int nd = p[3];
  if (dt == JX_DTYPE_COUNT) return jx_error_new("%s: %s: unknown IDX data type 0x%02x", OP, path, p[2]);
  if (nd > JX_MAX_RANK) return jx_error_new("%s: %s: %d dims (at most %d)", OP, path, nd, JX_MAX_RANK);
  if (n < 4 + 4 * (size_t)nd) return jx_error_new("%s: %s: truncated header (%zu bytes)", OP, path, n);
  int64_t shape[JX_MAX_RANK];
  size_t count = 1, es = jx_dtype_size(dt), body = n - 4 - 4 * (size_t)nd;
  for (int d = 0; d < nd; d++) {
    const uint8_t *q = p + 4 + 4 * d;
    shape[d] = (int64_t)((uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3]);
    if (shape[d] && count > body / (size_t)shape[d]) /* more elements than bytes: stop before overflowing */
      return jx_error_new("%s: %s: dims larger than the file's %zu data bytes", OP, path, body);
    count *= (size_t)shape[d];
  }
  if (count * es != body)
    return jx_error_new("%s: %s: %zu data bytes for %zu elements of %s (%zu expected)", OP, path, body, count,
                        jx_dtype_name(dt), count * es);
  jx_t x = jx_array_new_shape(dt, nd, shape);
  if (!jx_ok(x)) return x;
  uint8_t *dst = jx_data(x);
  const uint8_t *src = p + 4 + 4 * (size_t)nd;
  for (size_t i = 0; i < count; i++) /* big-endian elements */
    for (size_t b = 0; b < es; b++) dst[i * es + b] = src[i * es + es - 1 - b];
  return x;
}

jx_t jx_idx_load(const char *path) {
  jx_io_map m;
  jx_t e = jx_io_map_open(&m, OP, path);
  if (e) return e;
  uint8_t *owned = NULL;
  const uint8_t *p = m.p;
  size_t n = m.n;
  if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) e = gunzip(path, m.p, m.n, &owned, &n), p = owned;
  jx_t x = e ? e : parse(path, p, n);
  jx_free(owned);
  jx_io_map_close(&m);
  return x;
}
