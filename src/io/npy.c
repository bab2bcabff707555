/* .npy (NumPy's format, versions 1.0-3.0): the magic "\x93NUMPY", a
 * version, a header length, then a Python dict literal
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and a newline to a multiple of 64 bytes, then the
 * data, C order, little-endian. The header is parsed strictly (it is
 * untrusted input): known keys once each, literal values only. */
#include "io/io.h"

#include <stdio.h>

/* NumPy has no bf16 (ml_dtypes' bfloat16 saves as an anonymous '<V2'):
 * bf16 has no descr, and saving it is refused (safetensors has BF16) */
static const char *const descrs[] = {
    [JX_BOOL] = "|b1", [JX_I32] = "<i4", [JX_I64] = "<i8", [JX_U32] = "<u4", [JX_F32] = "<f4",
    [JX_F64] = "<f8",  [JX_BF16] = NULL, [JX_F16] = "<f2", [JX_I8] = "|i1",  [JX_U8] = "|u1",
    [JX_I16] = "<i2",  [JX_U16] = "<u2", [JX_U64] = "<u8"};
_Static_assert(sizeof descrs / sizeof *descrs == JX_DTYPE_COUNT, "a dtype without its npy entry");

jx_t jx_npy_check_dtype(const char *op, const char *path, jx_t x) {
  if (descrs[jx_dtype_of(x)]) return NULL;
  return jx_error_new("%s: %s: NumPy's .npy has no %s dtype (save it as .safetensors, or convert it)", op,
                      path, jx_dtype_name(jx_dtype_of(x)));
}

size_t jx_npy_header(jx_t x, char *buf, size_t cap) {
  char shape[JX_MAX_RANK * 24 + 4] = "(";
  int nd = jx_ndim(x);
  for (int i = 0; i < nd; i++)
    snprintf(shape + strlen(shape), sizeof shape - strlen(shape), i ? ", %lld" : "%lld",
             (long long)jx_shape(x)[i]);
  strcat(shape, nd == 1 ? ",)" : ")");
  char dict[400];
  int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     descrs[jx_dtype_of(x)], shape);
  size_t total = 10 + (size_t)len + 1, pad = (64 - total % 64) % 64;
  JX_CHECK(total + pad <= cap && total + pad - 10 <= 0xffff);
  memcpy(buf, "\x93NUMPY\x01\x00", 8);
  jx_put16((uint8_t *)buf + 8, (uint32_t)(total + pad - 10));
  memcpy(buf + 10, dict, (size_t)len);
  memset(buf + 10 + len, ' ', pad);
  buf[total + pad - 1] = '\n';
  return total + pad;
}

/* ------------------------------------------------------------ parsing */
typedef struct {
  const char *s, *end;
  const char *op, *path, *member;
} hdr_t;

static jx_t hdr_err(const hdr_t *h, const char *fmt, const char *arg) {
  char cause[300];
  snprintf(cause, sizeof cause, fmt, arg);
  if (h->member) return jx_error_new("%s: %s: member %s: %s", h->op, h->path, h->member, cause);
  return jx_error_new("%s: %s: %s", h->op, h->path, cause);
}
static void ws(hdr_t *h) {
  while (h->s < h->end && (*h->s == ' ' || *h->s == '\t' || *h->s == '\n' || *h->s == '\r')) h->s++;
}
static bool eat(hdr_t *h, char c) {
  ws(h);
  if (h->s < h->end && *h->s == c) return h->s++, true;
  return false;
}
/* a quoted string without escapes (descr names and keys have none) */
static bool str(hdr_t *h, const char **p, size_t *n) {
  ws(h);
  if (h->s >= h->end || (*h->s != '\'' && *h->s != '"')) return false;
  char q = *h->s++;
  const char *start = h->s;
  while (h->s < h->end && *h->s != q && *h->s != '\\') h->s++;
  if (h->s >= h->end || *h->s != q) return false;
  *p = start, *n = (size_t)(h->s++ - start);
  return true;
}
static bool word(hdr_t *h, const char *w) {
  ws(h);
  size_t n = strlen(w);
  if ((size_t)(h->end - h->s) < n || memcmp(h->s, w, n)) return false;
  h->s += n;
  return true;
}
static bool int64v(hdr_t *h, int64_t *v) {
  ws(h);
  if (h->s >= h->end || *h->s < '0' || *h->s > '9') return false;
  int64_t x = 0;
  while (h->s < h->end && *h->s >= '0' && *h->s <= '9')
    if (__builtin_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, *h->s++ - '0', &x)) return false;
  if (h->s < h->end && *h->s == 'L') h->s++; /* Python 2's long literals */
  *v = x;
  return true;
}
static jx_t shape_tuple(hdr_t *h, int *nd, int64_t *shape) {
  if (!eat(h, '(')) return hdr_err(h, "bad 'shape' in the header (%s)", "not a tuple");
  *nd = 0;
  while (!eat(h, ')')) {
    if (*nd == JX_MAX_RANK) return hdr_err(h, "rank over %s is not supported", "8");
    if (!int64v(h, &shape[*nd])) return hdr_err(h, "bad 'shape' in the header (%s)", "not a tuple of sizes");
    (*nd)++;
    if (!eat(h, ',')) {
      if (!eat(h, ')')) return hdr_err(h, "bad 'shape' in the header (%s)", "unterminated");
      break;
    }
  }
  return NULL;
}
static jx_t descr_dtype(hdr_t *h, const char *d, size_t n, jx_dtype *dt) {
  char s[64];
  snprintf(s, sizeof s, "%.*s", (int)(n < 60 ? n : 60), d);
  for (int i = 0; i < JX_DTYPE_COUNT; i++)
    if (descrs[i] && !strcmp(s, descrs[i])) return *dt = (jx_dtype)i, NULL;
  if (s[0] == '>') return hdr_err(h, "dtype '%s' is big-endian (jx reads little-endian data only)", s);
  if (strchr(s, 'O'))
    return hdr_err(h, "dtype '%s': object arrays (pickled Python objects) are not supported", s);
  return hdr_err(h,
                 "dtype '%s' is not supported (jx has bool, int8/16/32/64, uint8/16/32/64, "
                 "float16/32/64)",
                 s);
}

typedef struct {
  jx_dtype dt;
  bool fortran;
  int nd;
  int64_t shape[JX_MAX_RANK];
} npy_info;

static jx_t one_key(hdr_t *h, npy_info *info, unsigned *seen) {
  const char *k, *v;
  size_t kn, vn;
  if (!str(h, &k, &kn) || !eat(h, ':')) return hdr_err(h, "bad header dict (%s)", "expected 'key':");
  unsigned bit = kn == 5 && !memcmp(k, "descr", 5)             ? 1
                 : kn == 13 && !memcmp(k, "fortran_order", 13) ? 2
                 : kn == 5 && !memcmp(k, "shape", 5)           ? 4
                                                               : 0;
  if (!bit) return hdr_err(h, "unknown key in the header (%s)", "not descr, fortran_order or shape");
  if (*seen & bit) return hdr_err(h, "a key appears twice in the header%s", "");
  *seen |= bit;
  if (bit == 1) {
    ws(h);
    if (h->s < h->end && (*h->s == '[' || *h->s == '{'))
      return hdr_err(h, "structured dtypes are not supported%s", "");
    if (!str(h, &v, &vn)) return hdr_err(h, "bad 'descr' in the header%s", "");
    return descr_dtype(h, v, vn, &info->dt);
  }
  if (bit == 2) {
    if (word(h, "True")) return info->fortran = true, NULL;
    if (word(h, "False")) return info->fortran = false, NULL;
    return hdr_err(h, "bad 'fortran_order' in the header%s", "");
  }
  return shape_tuple(h, &info->nd, info->shape);
}

static jx_t parse_dict(hdr_t *h, npy_info *info) {
  unsigned seen = 0;
  if (!eat(h, '{')) return hdr_err(h, "the header is not a dict%s", "");
  while (!eat(h, '}')) {
    jx_t e = one_key(h, info, &seen);
    if (e) return e;
    if (!eat(h, ',')) {
      if (!eat(h, '}')) return hdr_err(h, "bad header dict (%s)", "expected , or }");
      break;
    }
  }
  if (seen != 7) return hdr_err(h, "the header lacks descr, fortran_order or shape%s", "");
  ws(h);
  if (h->s != h->end) return hdr_err(h, "junk after the header dict%s", "");
  return NULL;
}

jx_t jx_npy_parse(const char *op, const char *path, const char *member, const uint8_t *p, size_t n) {
  hdr_t h = {.op = op, .path = path, .member = member};
  if (n < 10 || memcmp(p, "\x93NUMPY", 6)) return hdr_err(&h, "not a .npy file (bad magic)%s", "");
  if (p[6] < 1 || p[6] > 3 || p[7] != 0) return hdr_err(&h, "unsupported .npy version%s", "");
  size_t start = p[6] == 1 ? 10 : 12;
  if (n < start) return hdr_err(&h, "truncated .npy header%s", "");
  size_t hl = p[6] == 1 ? jx_get16(p + 8) : jx_get32(p + 8);
  if (hl > n - start) return hdr_err(&h, "truncated .npy header%s", "");
  h.s = (const char *)p + start, h.end = h.s + hl;
  npy_info info = {0};
  jx_t e = parse_dict(&h, &info);
  if (e) return e;
  if (info.fortran && info.nd > 1)
    return hdr_err(&h,
                   "Fortran-order arrays are not supported (save with "
                   "numpy.ascontiguousarray)%s",
                   "");
  char err[256];
  if (jx_shape_check(info.nd, info.shape, info.dt, err, sizeof err)) return hdr_err(&h, "%s", err);
  int64_t count = 1;
  for (int i = 0; i < info.nd; i++) count *= info.shape[i];
  size_t want = (size_t)count * jx_dtype_size(info.dt), have = n - start - hl;
  if (want != have) {
    char s[160];
    snprintf(s, sizeof s, "data is %zu bytes, its shape and dtype need %zu", have, want);
    return hdr_err(&h, "%s", s);
  }
  return jx_array(info.dt, info.nd, info.shape, p + start + hl);
}

/* ------------------------------------------------------------ files */
jx_t jx_npy_save(const char *path, jx_t x) {
  const char *op = "jx_npy_save";
  if (!path) return jx_error_new("%s: path is NULL", op);
  jx_t e = jx_io_check_array(op, path, "the array", x);
  if (!e) e = jx_npy_check_dtype(op, path, x);
  if (e) return e;
  char hdr[512];
  size_t hn = jx_npy_header(x, hdr, sizeof hdr);
  jx_io_writer w;
  if ((e = jx_io_open(&w, op, path))) return e;
  jx_io_write(&w, hdr, hn);
  jx_io_write(&w, jx_data(x), jx_io_nbytes(x));
  return jx_io_commit(&w);
}

jx_t jx_npy_load(const char *path) {
  jx_io_map m;
  jx_t e = jx_io_map_open(&m, "jx_npy_load", path);
  if (e) return e;
  jx_t x = jx_npy_parse("jx_npy_load", path, NULL, m.p, m.n);
  jx_io_map_close(&m);
  return x;
}
