/* Parameters as .npz: what numpy.savez writes, a zip archive of .npy files,
 * here stored uncompressed ("method 0"), so the container is a few headers
 * around the raw arrays and needs no compression library:
 *
 *   [local header, name, data] per file, then the central directory (one
 *   entry per file pointing back at its local header), then an end record.
 *
 * Each .npy is a magic string, a version, a Python-dict header
 * {'descr': '<f4', 'fortran_order': False, 'shape': (1296, 512), } padded
 * with spaces to a multiple of 64 bytes, then the little-endian data.
 * numpy.load(path)["W0"] gives back the first weight matrix. */
#include "letters.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef LT_HAVE_ZLIB
#include <zlib.h>
#endif

static uint32_t crc_table[256];
static uint32_t crc32_of(const uint8_t *p, size_t n) {
  if (!crc_table[1])
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      crc_table[i] = c;
    }
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

typedef struct {
  uint8_t *p;
  size_t n, cap;
  bool oom;
} buf_t;
static void put(buf_t *b, const void *src, size_t n) {
  if (b->oom) return;
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n) cap *= 2;
    uint8_t *np = realloc(b->p, cap);
    if (!np) {
      b->oom = true;
      return;
    }
    b->p = np, b->cap = cap;
  }
  memcpy(b->p + b->n, src, n);
  b->n += n;
}
static void put16(buf_t *b, uint32_t v) { put(b, (uint8_t[]){(uint8_t)v, (uint8_t)(v >> 8)}, 2); }
static void put32(buf_t *b, uint32_t v) {
  put(b, (uint8_t[]){(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)}, 4);
}
static uint32_t get16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* one .npy file (f32, C order) */
static void npy(buf_t *b, jx_t x) {
  char hdr[256], shape[128] = "";
  int nd = jx_ndim(x);
  for (int i = 0; i < nd; i++)
    snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%lld,%s", (long long)jx_shape(x)[i],
             i + 1 < nd ? " " : "");
  if (nd > 1) shape[strlen(shape) - 1] = 0; /* (1296, 512) but (512,) */
  int len = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", shape);
  int total = 10 + len + 1, pad = (64 - total % 64) % 64;
  put(b, "\x93NUMPY\x01\x00", 8);
  put16(b, (uint32_t)(len + pad + 1));
  put(b, hdr, (size_t)len);
  for (int i = 0; i < pad; i++) put(b, " ", 1);
  put(b, "\n", 1);
  size_t bytes = (size_t)jx_size(x) * 4;
  float *data = malloc(bytes ? bytes : 1);
  if (!data || jx_read(x, JX_F32, data, bytes)) {
    b->oom = true;
  } else {
    put(b, data, bytes); /* x86 and ARM are little-endian, as '<f4' says */
  }
  free(data);
}

int lt_npz_save(const char *path, jx_t params, const float *norm, lt_err *e) {
  if (!jx_ok(params) || jx_len(params) < 1) return lt_fail(e, "%s: no parameters to save", path);
  int nl = jx_len(params), nfiles = 2 * nl + (norm != NULL);
  buf_t zip = {0}, cd = {0};
  jx_pool_push();
  jx_t norm_arr = norm ? jx_array(JX_F32, JX_SHAPE(2), norm) : NULL;
  for (int i = 0; i < nfiles; i++) {
    jx_t leaf = i == 2 * nl ? norm_arr : jx_at(jx_at(params, i / 2), i % 2);
    if (jx_ndim(leaf) < 0) {
      free(zip.p), free(cd.p);
      jx_pool_pop();
      return lt_fail(e, "%s: parameter %d is not an array", path, i);
    }
    char name[32];
    int nlen = i == 2 * nl ? snprintf(name, sizeof name, "input_norm.npy")
                           : snprintf(name, sizeof name, "%c%d.npy", i % 2 ? 'b' : 'W', i / 2);
    buf_t file = {0};
    npy(&file, leaf);
    if (file.oom) {
      free(file.p), free(zip.p), free(cd.p);
      jx_pool_pop();
      return lt_fail(e, "%s: cannot read parameter %d (out of memory?)", path, i);
    }
    uint32_t crc = crc32_of(file.p, file.n), off = (uint32_t)zip.n;
    /* local file header: version 2.0, no flags, stored, fixed DOS time 1980-01-01 */
    put32(&zip, 0x04034b50), put16(&zip, 20), put16(&zip, 0), put16(&zip, 0);
    put16(&zip, 0), put16(&zip, 0x21);
    put32(&zip, crc), put32(&zip, (uint32_t)file.n), put32(&zip, (uint32_t)file.n);
    put16(&zip, (uint32_t)nlen), put16(&zip, 0), put(&zip, name, (size_t)nlen);
    put(&zip, file.p, file.n);
    /* its central directory entry */
    put32(&cd, 0x02014b50), put16(&cd, 20), put16(&cd, 20), put16(&cd, 0), put16(&cd, 0);
    put16(&cd, 0), put16(&cd, 0x21);
    put32(&cd, crc), put32(&cd, (uint32_t)file.n), put32(&cd, (uint32_t)file.n);
    put16(&cd, (uint32_t)nlen), put16(&cd, 0), put16(&cd, 0), put16(&cd, 0), put16(&cd, 0);
    put32(&cd, 0), put32(&cd, off), put(&cd, name, (size_t)nlen);
    free(file.p);
  }
  jx_pool_pop();
  uint32_t cd_off = (uint32_t)zip.n;
  put(&zip, cd.p, cd.n);
  put32(&zip, 0x06054b50), put16(&zip, 0), put16(&zip, 0), put16(&zip, (uint32_t)nfiles);
  put16(&zip, (uint32_t)nfiles), put32(&zip, (uint32_t)cd.n), put32(&zip, cd_off), put16(&zip, 0);
  free(cd.p);
  if (zip.oom || zip.n > 0xffffffffu) {
    free(zip.p);
    return lt_fail(e, "%s: out of memory (or over 4 GiB, which needs zip64)", path);
  }
  int rc = lt_write_atomic(path, zip.p, zip.n, e);
  free(zip.p);
  return rc;
}

/* ------------------------------------------------------------- loading */

/* parse a .npy held in p[0..n): f32 or f64, C order, rank <= 2 */
static int npy_parse(const char *path, const char *name, const uint8_t *p, size_t n, jx_t *out, lt_err *e) {
  if (n < 10 || memcmp(p, "\x93NUMPY", 6) != 0) return lt_fail(e, "%s: %s is not a .npy file", path, name);
  size_t hl = p[6] == 1 ? get16(p + 8) : get32(p + 8), start = p[6] == 1 ? 10 : 12;
  if (start + hl > n) return lt_fail(e, "%s: %s: truncated .npy header", path, name);
  char hdr[1024];
  snprintf(hdr, sizeof hdr, "%.*s", (int)(hl < sizeof hdr - 1 ? hl : sizeof hdr - 1), (const char *)p + start);
  int esize;
  if (strstr(hdr, "'<f4'"))
    esize = 4;
  else if (strstr(hdr, "'<f8'"))
    esize = 8;
  else
    return lt_fail(e, "%s: %s: only float32/float64 arrays are supported (header %s)", path, name, hdr);
  if (strstr(hdr, "'fortran_order': True"))
    return lt_fail(e, "%s: %s: Fortran-order arrays are not supported", path, name);
  const char *s = strstr(hdr, "'shape':");
  s = s ? strchr(s, '(') : NULL;
  if (!s) return lt_fail(e, "%s: %s: no shape in the .npy header", path, name);
  int64_t shape[JX_MAX_RANK];
  int nd = 0;
  for (s++; *s && *s != ')';) {
    while (*s == ' ' || *s == ',') s++;
    if (*s == ')') break;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || nd == JX_MAX_RANK || v < 0) return lt_fail(e, "%s: %s: bad shape in header %s", path, name, hdr);
    shape[nd++] = v, s = end;
  }
  int64_t count = 1;
  for (int i = 0; i < nd; i++) count *= shape[i];
  if (start + hl + (size_t)count * (size_t)esize != n)
    return lt_fail(e, "%s: %s: data size does not match its shape", path, name);
  *out = jx_array(esize == 4 ? JX_F32 : JX_F64, nd, shape, p + start + hl);
  if (esize == 8) *out = jx_astype(*out, JX_F32);
  return 0;
}

int lt_npz_load(const char *path, jx_t *params, float *norm, lt_err *e) {
  FILE *f = fopen(path, "rb");
  if (!f) return lt_fail(e, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *z = len > 0 ? malloc((size_t)len) : NULL;
  if (!z || fread(z, 1, (size_t)len, f) != (size_t)len) {
    fclose(f), free(z);
    return lt_fail(e, "%s: cannot read (empty?)", path);
  }
  fclose(f);
  int rc = -1;
  jx_t leaves[64] = {0};
  int have = 0;
  /* the end record is in the last 22 + 65535 bytes */
  long eocd = -1;
  for (long i = len - 22; i >= 0 && i >= len - 22 - 65535; i--)
    if (get32(z + i) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd < 0) {
    lt_fail(e, "%s: not a zip/.npz file (no end-of-central-directory record)", path);
    goto done;
  }
  uint32_t nent = get16(z + eocd + 10), cd_size = get32(z + eocd + 12), cd_off = get32(z + eocd + 16);
  if ((size_t)cd_off + cd_size > (size_t)eocd) {
    lt_fail(e, "%s: corrupt zip directory", path);
    goto done;
  }
  const uint8_t *c = z + cd_off;
  for (uint32_t k = 0; k < nent; k++) {
    if (c + 46 > z + eocd || get32(c) != 0x02014b50) {
      lt_fail(e, "%s: corrupt zip directory entry %u", path, k);
      goto done;
    }
    uint32_t method = get16(c + 10), crc = get32(c + 16), csize = get32(c + 20), usize = get32(c + 24);
    uint32_t nlen = get16(c + 28), xlen = get16(c + 30), clen = get16(c + 32), loff = get32(c + 42);
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(nlen < 255 ? nlen : 255), (const char *)c + 46);
    c += 46 + nlen + xlen + clen;
    if ((size_t)loff + 30 > (size_t)len || get32(z + loff) != 0x04034b50) {
      lt_fail(e, "%s: %s: bad local header", path, name);
      goto done;
    }
    size_t data = (size_t)loff + 30 + get16(z + loff + 26) + get16(z + loff + 28);
    if (data + csize > (size_t)len) {
      lt_fail(e, "%s: %s: truncated", path, name);
      goto done;
    }
    uint8_t *raw = z + data, *inflated = NULL;
    if (method == 8) {
#ifdef LT_HAVE_ZLIB
      inflated = malloc(usize ? usize : 1);
      z_stream s = {0};
      s.next_in = raw, s.avail_in = csize, s.next_out = inflated, s.avail_out = usize;
      int ok = inflated && inflateInit2(&s, -15) == Z_OK;
      if (ok) ok = inflate(&s, Z_FINISH) == Z_STREAM_END && s.total_out == usize, inflateEnd(&s);
      if (!ok) {
        free(inflated);
        lt_fail(e, "%s: %s: corrupt compressed data", path, name);
        goto done;
      }
      raw = inflated;
#else
      lt_fail(e, "%s: %s is compressed (numpy.savez_compressed); rebuild with zlib or save it with numpy.savez", path,
              name);
      goto done;
#endif
    } else if (method != 0 || csize != usize) {
      lt_fail(e, "%s: %s: unsupported zip compression method %u", path, name, method);
      goto done;
    }
    if (crc32_of(raw, usize) != crc) {
      free(inflated);
      lt_fail(e, "%s: %s: CRC mismatch (corrupt file)", path, name);
      goto done;
    }
    int idx = -1;
    char kind = 0;
    if (sscanf(name, "%c%d.npy", &kind, &idx) == 2 && (kind == 'W' || kind == 'b') && idx >= 0 && idx < 32) {
      jx_t a;
      int r = npy_parse(path, name, raw, usize, &a, e);
      free(inflated);
      if (r) goto done;
      leaves[2 * idx + (kind == 'b')] = a;
      if (2 * idx + 2 > have) have = 2 * idx + 2;
    } else if (strcmp(name, "input_norm.npy") == 0 && norm) {
      jx_t a;
      int r = npy_parse(path, name, raw, usize, &a, e);
      free(inflated);
      if (r) goto done;
      if (jx_size(a) != 2 || jx_read(a, JX_F32, norm, 2 * sizeof(float))) {
        lt_fail(e, "%s: input_norm must hold two numbers (mean, std)", path);
        goto done;
      }
    } else {
      free(inflated); /* other arrays in the archive are ignored */
    }
  }
  if (have == 0) {
    lt_fail(e, "%s: no W0.npy/b0.npy arrays in the archive", path);
    goto done;
  }
  jx_t layers[32];
  for (int l = 0; l < have / 2; l++) {
    jx_t W = leaves[2 * l], b = leaves[2 * l + 1];
    if (!W || !b) {
      lt_fail(e, "%s: layer %d is missing %s", path, l, W ? "b" : "W");
      goto done;
    }
    if (jx_ndim(W) != 2 || jx_ndim(b) != 1 || jx_shape(b)[0] != jx_shape(W)[1] ||
        (l > 0 && jx_shape(W)[0] != jx_shape(leaves[2 * l - 2])[1])) {
      lt_fail(e, "%s: layer %d has inconsistent shapes", path, l);
      goto done;
    }
    layers[l] = JX_TUPLE(W, b);
  }
  *params = jx_list(have / 2, layers);
  rc = 0;
done:
  free(z);
  return rc;
}
