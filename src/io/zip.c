/* Zip archives, the container of .npz: per member a local header, its name
 * and its bytes; then the central directory (one entry per member pointing
 * back at its local header); then the end record. Zip64 records carry
 * sizes and offsets that do not fit in 32 bits. The reader trusts only the
 * central directory (sizes in local headers may be zero when a data
 * descriptor follows) and bounds every offset by the file's size. */
#include "io/io.h"

#include <stdio.h>

#ifdef JX_HAVE_ZLIB
#include <zlib.h>
#endif

#define SIG_LOCAL   0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_END     0x06054b50u
#define SIG_END64   0x06064b50u
#define SIG_LOC64   0x07064b50u
#define U32MAX      0xffffffffu
#define DOS_DATE    0x21 /* 1980-01-01, 00:00: the same bytes for the same arrays */

void jx_io_shown(const char *s, size_t n, char *out, size_t cap) {
  size_t k = 0;
  for (size_t i = 0; i < n && k + 1 < cap; i++) out[k++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
  out[k] = 0;
}

/* ------------------------------------------------------------ writing */
jx_t jx_zip_begin(jx_zip_writer *z, const char *op, const char *path) {
  *z = (jx_zip_writer){0};
  return jx_io_open(&z->w, op, path);
}

static bool big(uint64_t v) { return jx_io_test_force_zip64 || v >= U32MAX; }

#ifdef JX_HAVE_ZLIB
/* the parts deflated (raw, as zip wants) into a new buffer */
static jx_t deflate_parts(jx_zip_writer *z, int nparts, const void *const *parts, const size_t *sizes,
                          uint64_t usize, uint8_t **out, uint64_t *csize) {
  z_stream s = {0};
  if (deflateInit2(&s, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return jx_error_new("%s: %s: zlib's deflateInit2 failed", z->w.op, z->w.path);
  uLong cap = deflateBound(&s, (uLong)usize) + 64;
  uint8_t *buf = jx_malloc(cap);
  if (!buf) return deflateEnd(&s), jx_error_new("%s: %s: out of memory", z->w.op, z->w.path);
  s.next_out = buf;
  int rc = Z_OK;
  bool failed = false;
  for (int i = 0; i < nparts && !failed; i++) {
    const uint8_t *p = parts[i];
    size_t left = sizes[i];
    do { /* zlib counts in uInt: feed at most 1 GiB at a time */
      uInt k = left > (1u << 30) ? (1u << 30) : (uInt)left;
      bool fin = i == nparts - 1 && k == left;
      s.next_in = (Bytef *)p, s.avail_in = k;
      do {
        uLong room = cap - s.total_out;
        if (room == 0) {
          failed = true;
          break;
        }
        s.avail_out = room > (1u << 30) ? (1u << 30) : (uInt)room;
        rc = deflate(&s, fin ? Z_FINISH : Z_NO_FLUSH);
        if (rc == Z_STREAM_ERROR) failed = true;
      } while (!failed && (fin ? rc != Z_STREAM_END : s.avail_in > 0));
      p += k, left -= k;
    } while (left > 0 && !failed);
  }
  *csize = s.total_out;
  deflateEnd(&s);
  if (rc != Z_STREAM_END)
    return jx_free(buf), jx_error_new("%s: %s: deflate failed (%d)", z->w.op, z->w.path, rc);
  *out = buf;
  return NULL;
}
#endif

static void local_header(jx_zip_writer *z, const jx_zip_wentry *e, size_t nlen) {
  bool z64 = big(e->usize) || big(e->csize);
  uint8_t h[30 + 20];
  jx_put32(h, SIG_LOCAL), jx_put16(h + 4, z64 ? 45 : 20), jx_put16(h + 6, 0), jx_put16(h + 8, e->method);
  jx_put16(h + 10, 0), jx_put16(h + 12, DOS_DATE), jx_put32(h + 14, e->crc);
  jx_put32(h + 18, z64 ? U32MAX : (uint32_t)e->csize), jx_put32(h + 22, z64 ? U32MAX : (uint32_t)e->usize);
  jx_put16(h + 26, (uint32_t)nlen), jx_put16(h + 28, z64 ? 20 : 0);
  jx_io_write(&z->w, h, 30);
  jx_io_write(&z->w, e->name, nlen);
  if (z64) { /* the zip64 extra field: both sizes, always, in a local header */
    jx_put16(h, 1), jx_put16(h + 2, 16), jx_put64(h + 4, e->usize), jx_put64(h + 12, e->csize);
    jx_io_write(&z->w, h, 20);
  }
}

static jx_t add_entry(jx_zip_writer *z, const char *name, jx_zip_wentry **out) {
  if (z->n == z->cap) {
    int cap = z->cap ? 2 * z->cap : 16;
    jx_zip_wentry *p = jx_realloc(z->ents, sizeof *p * (size_t)cap);
    if (!p) return jx_error_new("%s: %s: out of memory", z->w.op, z->w.path);
    z->ents = p, z->cap = cap;
  }
  jx_zip_wentry *e = &z->ents[z->n];
  *e = (jx_zip_wentry){.name = jx_strdup(name), .off = z->w.written};
  if (!e->name) return jx_error_new("%s: %s: out of memory", z->w.op, z->w.path);
  z->n++;
  *out = e;
  return NULL;
}

jx_t jx_zip_add(jx_zip_writer *z, const char *name, int nparts, const void *const *parts, const size_t *sizes,
                bool deflate) {
  jx_zip_wentry *e = NULL;
  jx_t err = add_entry(z, name, &e);
  if (err) return err;
  for (int i = 0; i < nparts; i++) e->crc = jx_io_crc32(e->crc, parts[i], sizes[i]), e->usize += sizes[i];
  e->csize = e->usize;
  uint8_t *packed = NULL;
  if (deflate) {
#ifdef JX_HAVE_ZLIB
    e->method = 8;
    if ((err = deflate_parts(z, nparts, parts, sizes, e->usize, &packed, &e->csize))) return err;
#else
    return jx_error_new("%s: %s: compressed members need zlib and this jx was built without zlib", z->w.op,
                        z->w.path);
#endif
  }
  local_header(z, e, strlen(name));
  if (packed) {
    jx_io_write(&z->w, packed, e->csize);
    jx_free(packed);
  } else {
    for (int i = 0; i < nparts; i++) jx_io_write(&z->w, parts[i], sizes[i]);
  }
  return z->w.err;
}

static void central_entry(jx_zip_writer *z, const jx_zip_wentry *e) {
  uint8_t h[46], x[4 + 24];
  size_t nlen = strlen(e->name), xn = 4;
  bool bu = big(e->usize), bc = big(e->csize), bo = big(e->off);
  if (bu) jx_put64(x + xn, e->usize), xn += 8; /* zip64 fields: only those marked 0xffffffff, in this order */
  if (bc) jx_put64(x + xn, e->csize), xn += 8;
  if (bo) jx_put64(x + xn, e->off), xn += 8;
  jx_put16(x, 1), jx_put16(x + 2, (uint32_t)(xn - 4));
  bool z64 = xn > 4;
  jx_put32(h, SIG_CENTRAL), jx_put16(h + 4, z64 ? 45 : 20), jx_put16(h + 6, z64 ? 45 : 20);
  jx_put16(h + 8, 0), jx_put16(h + 10, e->method), jx_put16(h + 12, 0), jx_put16(h + 14, DOS_DATE);
  jx_put32(h + 16, e->crc), jx_put32(h + 20, bc ? U32MAX : (uint32_t)e->csize);
  jx_put32(h + 24, bu ? U32MAX : (uint32_t)e->usize), jx_put16(h + 28, (uint32_t)nlen);
  jx_put16(h + 30, z64 ? (uint32_t)xn : 0), jx_put16(h + 32, 0), jx_put16(h + 34, 0), jx_put16(h + 36, 0);
  jx_put32(h + 38, 0), jx_put32(h + 42, bo ? U32MAX : (uint32_t)e->off);
  jx_io_write(&z->w, h, 46);
  jx_io_write(&z->w, e->name, nlen);
  if (z64) jx_io_write(&z->w, x, xn);
}

static void end_records(jx_zip_writer *z, uint64_t cd_off, uint64_t cd_size) {
  uint64_t n = (uint64_t)z->n, end64 = z->w.written;
  bool z64 = big(cd_off) || big(cd_size) || n >= 0xffff;
  uint8_t h[56];
  if (z64) {
    jx_put32(h, SIG_END64), jx_put64(h + 4, 44), jx_put16(h + 12, 45), jx_put16(h + 14, 45);
    jx_put32(h + 16, 0), jx_put32(h + 20, 0), jx_put64(h + 24, n), jx_put64(h + 32, n);
    jx_put64(h + 40, cd_size), jx_put64(h + 48, cd_off);
    jx_io_write(&z->w, h, 56);
    jx_put32(h, SIG_LOC64), jx_put32(h + 4, 0), jx_put64(h + 8, end64), jx_put32(h + 16, 1);
    jx_io_write(&z->w, h, 20);
  }
  jx_put32(h, SIG_END), jx_put16(h + 4, 0), jx_put16(h + 6, 0);
  jx_put16(h + 8, z64 ? 0xffff : (uint32_t)n), jx_put16(h + 10, z64 ? 0xffff : (uint32_t)n);
  jx_put32(h + 12, z64 ? U32MAX : (uint32_t)cd_size), jx_put32(h + 16, z64 ? U32MAX : (uint32_t)cd_off);
  jx_put16(h + 20, 0);
  jx_io_write(&z->w, h, 22);
}

jx_t jx_zip_end(jx_zip_writer *z, jx_t e) {
  if (!e && z->w.fd >= 0) {
    uint64_t cd_off = z->w.written;
    for (int i = 0; i < z->n; i++) central_entry(z, &z->ents[i]);
    end_records(z, cd_off, z->w.written - cd_off);
    e = jx_io_commit(&z->w);
  } else {
    jx_io_abort(&z->w, NULL);
    if (!e) e = z->w.err ? z->w.err : jx_error_new("%s: the archive was not opened", z->w.op);
  }
  for (int i = 0; i < z->n; i++) jx_free(z->ents[i].name);
  jx_free(z->ents);
  *z = (jx_zip_writer){0};
  return e;
}

/* ------------------------------------------------------------ reading */
static jx_t zerr(const jx_zip *z, const char *cause) {
  return jx_error_new("%s: %s: not a valid zip/.npz archive: %s", z->op, z->path, cause);
}

typedef struct {
  uint64_t count, cd_off, cd_size;
  size_t limit; /* the central directory ends before this offset */
} end_info;

/* The zip64 end record, found through its locator just before the end record.
 */
static jx_t find_end64(const jx_zip *z, size_t at, end_info *ei) {
  const uint8_t *p = z->p;
  if (at < 20 || jx_get32(p + at - 20) != SIG_LOC64) return NULL; /* the 32-bit values stand */
  uint64_t e64 = jx_get64(p + at - 12);
  if (jx_get32(p + at - 16) != 0 || jx_get32(p + at - 4) > 1)
    return zerr(z, "multi-disk archives are not supported");
  if (e64 > at - 20 || at - 20 - e64 < 56 || jx_get32(p + e64) != SIG_END64)
    return zerr(z, "bad zip64 end record");
  if (jx_get32(p + e64 + 16) || jx_get32(p + e64 + 20))
    return zerr(z, "multi-disk archives are not supported");
  ei->count = jx_get64(p + e64 + 32), ei->cd_size = jx_get64(p + e64 + 40),
  ei->cd_off = jx_get64(p + e64 + 48);
  ei->limit = (size_t)e64;
  return NULL;
}

static jx_t find_end(const jx_zip *z, end_info *ei) {
  const uint8_t *p = z->p;
  if (z->n < 22) return zerr(z, "too short for a zip archive (no end record)");
  size_t at = SIZE_MAX, lo = z->n - 22 > 65535 ? z->n - 22 - 65535 : 0;
  for (size_t i = z->n - 22 + 1; i-- > lo;) /* the record ends the file, after its comment */
    if (jx_get32(p + i) == SIG_END && i + 22 + jx_get16(p + i + 20) == z->n) {
      at = i;
      break;
    }
  if (at == SIZE_MAX) return zerr(z, "no end-of-central-directory record (truncated, or not a zip file)");
  if (jx_get16(p + at + 4) || jx_get16(p + at + 6) || jx_get16(p + at + 8) != jx_get16(p + at + 10))
    return zerr(z, "multi-disk archives are not supported");
  ei->count = jx_get16(p + at + 10), ei->cd_size = jx_get32(p + at + 12), ei->cd_off = jx_get32(p + at + 16);
  ei->limit = at;
  if (ei->count == 0xffff || ei->cd_size == U32MAX || ei->cd_off == U32MAX) {
    jx_t e = find_end64(z, at, ei);
    if (e) return e;
  }
  if (ei->cd_off > ei->limit || ei->cd_size > ei->limit - ei->cd_off)
    return zerr(z, "the central directory lies outside the file");
  if (ei->count > ei->cd_size / 46) return zerr(z, "more entries than the central directory can hold");
  return NULL;
}

/* zip64 extra field (id 1): 64-bit values for the fields marked 0xffffffff */
static jx_t zip64_extra(const jx_zip *z, const uint8_t *x, size_t xn, jx_zip_entry *e) {
  bool need[3] = {e->usize == U32MAX, e->csize == U32MAX, e->loff == U32MAX};
  uint64_t *dst[3] = {&e->usize, &e->csize, &e->loff};
  while (xn >= 4) {
    uint32_t id = jx_get16(x), sz = jx_get16(x + 2);
    if (sz > xn - 4) return zerr(z, "an extra field overruns its entry");
    if (id == 1)
      for (int k = 0, q = 4; k < 3; k++)
        if (need[k]) {
          if ((uint32_t)q + 8 > sz + 4) return zerr(z, "zip64 extra field too short");
          *dst[k] = jx_get64(x + q), q += 8, need[k] = false;
        }
    x += 4 + sz, xn -= 4 + sz;
  }
  return NULL;
}

static jx_t parse_entry(const jx_zip *z, const uint8_t **cp, const uint8_t *end, jx_zip_entry *e) {
  const uint8_t *c = *cp;
  if (end - c < 46 || jx_get32(c) != SIG_CENTRAL) return zerr(z, "bad central directory entry");
  size_t nlen = jx_get16(c + 28), xlen = jx_get16(c + 30), clen = jx_get16(c + 32);
  if (46 + nlen + xlen + clen > (size_t)(end - c)) return zerr(z, "a central directory entry overruns it");
  *e = (jx_zip_entry){.name = (const char *)c + 46,
                      .nlen = nlen,
                      .flags = (uint16_t)jx_get16(c + 8),
                      .method = (uint16_t)jx_get16(c + 10),
                      .crc = jx_get32(c + 16),
                      .csize = jx_get32(c + 20),
                      .usize = jx_get32(c + 24),
                      .loff = jx_get32(c + 42)};
  jx_t err = zip64_extra(z, c + 46 + nlen, xlen, e);
  *cp = c + 46 + nlen + xlen + clen;
  return err;
}

jx_t jx_zip_open(jx_zip *z, const char *op, const char *path, const uint8_t *p, size_t n) {
  *z = (jx_zip){.op = op, .path = path, .p = p, .n = n};
  end_info ei = {0};
  jx_t e = find_end(z, &ei);
  if (e) return e;
  z->ents = jx_malloc(sizeof(jx_zip_entry) * (size_t)(ei.count ? ei.count : 1));
  if (!z->ents) return jx_error_new("%s: %s: out of memory", op, path);
  const uint8_t *c = p + ei.cd_off, *end = c + ei.cd_size;
  for (uint64_t i = 0; i < ei.count; i++, z->count++)
    if ((e = parse_entry(z, &c, end, &z->ents[i]))) return jx_zip_close(z), e;
  return NULL;
}

void jx_zip_close(jx_zip *z) {
  jx_free(z->ents);
  z->ents = NULL, z->count = 0;
}

static jx_t member_err(const jx_zip *z, const jx_zip_entry *e, const char *cause) {
  char shown[128];
  jx_io_shown(e->name, e->nlen, shown, sizeof shown);
  return jx_error_new("%s: %s: member %s: %s", z->op, z->path, shown, cause);
}

#ifdef JX_HAVE_ZLIB
static jx_t inflate_member(const jx_zip *z, const jx_zip_entry *e, const uint8_t *src, uint8_t **out) {
  /* deflate expands at most ~1032:1: a larger claim is a hostile header,
   * refused before allocating what it claims */
  if (e->usize / 1032 > e->csize + 64) return member_err(z, e, "its sizes are impossible for deflate");
  uint8_t *buf = jx_malloc(e->usize ? e->usize : 1);
  if (!buf) return member_err(z, e, "out of memory");
  z_stream s = {0};
  if (inflateInit2(&s, -15) != Z_OK) return jx_free(buf), member_err(z, e, "zlib's inflateInit2 failed");
  s.next_out = buf;
  uint64_t in_left = e->csize;
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (s.avail_in == 0) {
      uInt k = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
      s.next_in = (Bytef *)src, s.avail_in = k, src += k, in_left -= k;
    }
    uint64_t room = e->usize - s.total_out;
    s.avail_out = room > (1u << 30) ? (1u << 30) : (uInt)room;
    rc = inflate(&s, Z_NO_FLUSH);
    if (rc == Z_BUF_ERROR && (s.avail_in == 0 ? in_left == 0 : room == 0))
      break; /* stuck: input or room gone */
    if (rc == Z_BUF_ERROR) rc = Z_OK;
  }
  bool ok = rc == Z_STREAM_END && s.total_out == e->usize;
  inflateEnd(&s);
  if (!ok) return jx_free(buf), member_err(z, e, "corrupt deflated data");
  *out = buf;
  return NULL;
}
#endif

jx_t jx_zip_read(const jx_zip *z, int i, const uint8_t **data, uint8_t **owned) {
  const jx_zip_entry *e = &z->ents[i];
  *owned = NULL;
  if (e->flags & 1) return member_err(z, e, "encrypted members are not supported");
  if (e->loff > z->n || z->n - e->loff < 30 || jx_get32(z->p + e->loff) != SIG_LOCAL)
    return member_err(z, e, "bad local header");
  uint64_t start = e->loff + 30 + jx_get16(z->p + e->loff + 26) + jx_get16(z->p + e->loff + 28);
  if (start > z->n || e->csize > z->n - start)
    return member_err(z, e, "its data runs past the end of the file (truncated?)");
  const uint8_t *src = z->p + start;
  if (e->method == 0) {
    if (e->csize != e->usize) return member_err(z, e, "a stored member's two sizes differ");
    *data = src;
  } else if (e->method == 8) {
#ifdef JX_HAVE_ZLIB
    jx_t err = inflate_member(z, e, src, owned);
    if (err) return err;
    *data = *owned;
#else
    return member_err(z, e,
                      "it is deflated (numpy.savez_compressed) and this jx was "
                      "built without zlib");
#endif
  } else {
    char s[96];
    snprintf(s, sizeof s, "compression method %u is not supported (only stored and deflated)", e->method);
    return member_err(z, e, s);
  }
  if (jx_io_crc32(0, *data, e->usize) != e->crc) {
    jx_free(*owned), *owned = NULL;
    return member_err(z, e, "CRC mismatch (corrupt file)");
  }
  return NULL;
}
