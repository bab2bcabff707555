/* .safetensors (Hugging Face's format): an 8-byte little-endian header
 * length N, N bytes of JSON
 *   {"__metadata__": {"k": "v"}, "name": {"dtype": "F32", "shape": [2, 3],
 *    "data_offsets": [0, 24]}, ...}
 * (padded with spaces), then the tensors' bytes, C order, little-endian;
 * data_offsets are relative to the end of the header. The header is read
 * by Debian's cJSON when the build found it (JX_HAVE_CJSON), else by a
 * small strict JSON reader of our own, never recursive; either way bounded
 * by N (at most 100 MB, as the reference implementation allows), and the
 * format's grammar is fixed, so anything else is an error. (The own reader
 * stays for builds without cJSON; jx_safetensors_force_reader picks it
 * for the tests and the fuzzer, which check both.) As in the reference
 * implementation the tensors must tile the data exactly (no overlap, no
 * hole, nothing after). Loading maps the file and copies each tensor once. */
#include "io/io.h"

#include <stdio.h>
#include <stdlib.h>

#define MAX_HEADER (100u << 20)

static const char *const st_names[] = {
    [JX_BOOL] = "BOOL", [JX_I32] = "I32",   [JX_I64] = "I64", [JX_U32] = "U32", [JX_F32] = "F32",
    [JX_F64] = "F64",   [JX_BF16] = "BF16", [JX_F16] = "F16", [JX_I8] = "I8",   [JX_U8] = "U8",
    [JX_I16] = "I16",   [JX_U16] = "U16",   [JX_U64] = "U64"};
_Static_assert(sizeof st_names / sizeof *st_names == JX_DTYPE_COUNT, "a dtype without its safetensors name");

/* ------------------------------------------------------------ JSON reader */
typedef struct {
  const char *s, *end;
  char *pool; /* decoded strings, appended (never longer than their source) */
  size_t used;
  const char *err; /* the first syntax error */
} js_t;

static bool fail(js_t *j, const char *why) {
  if (!j->err) j->err = why;
  return false;
}
static void jws(js_t *j) {
  while (j->s < j->end && (*j->s == ' ' || *j->s == '\t' || *j->s == '\n' || *j->s == '\r')) j->s++;
}
static bool jeat(js_t *j, char c) {
  jws(j);
  if (j->s < j->end && *j->s == c) return j->s++, true;
  return false;
}
static bool jexpect(js_t *j, char c) {
  if (jeat(j, c)) return true;
  return fail(j, c == ':'   ? "expected ':'"
                 : c == '{' ? "expected '{'"
                 : c == '[' ? "expected '['"
                            : "expected a delimiter");
}

static int hex4(const char *s) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    char c = s[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}
static size_t utf8_put(char *o, uint32_t cp) {
  if (cp < 0x80) return o[0] = (char)cp, 1;
  if (cp < 0x800) return o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3f)), 2;
  if (cp < 0x10000)
    return o[0] = (char)(0xe0 | cp >> 12), o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
           o[2] = (char)(0x80 | (cp & 0x3f)), 3;
  o[0] = (char)(0xf0 | cp >> 18), o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}
/* \uXXXX (a surrogate pair when it takes two): the code point or -1 */
static long junicode(js_t *j) {
  if (j->end - j->s < 5) return -1;
  long cp = hex4(j->s + 1);
  j->s += 5;
  if (cp >= 0xdc00 && cp <= 0xdfff) return -1;
  if (cp >= 0xd800 && cp <= 0xdbff) {
    if (j->end - j->s < 6 || j->s[0] != '\\' || j->s[1] != 'u') return -1;
    long lo = hex4(j->s + 2);
    if (lo < 0xdc00 || lo > 0xdfff) return -1;
    j->s += 6;
    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
  }
  return cp;
}
/* a string into the pool: its start, NUL-terminated; NULs inside refused */
static bool jstring(js_t *j, const char **out, size_t *len) {
  jws(j);
  if (j->s >= j->end || *j->s != '"') return fail(j, "expected a string");
  j->s++;
  char *o = j->pool + j->used, *start = o;
  while (j->s < j->end && *j->s != '"') {
    unsigned char c = (unsigned char)*j->s;
    if (c < 0x20) return fail(j, "control character in a string");
    if (c != '\\') {
      *o++ = (char)c, j->s++;
      continue;
    }
    if (j->end - j->s < 2) return fail(j, "unterminated string");
    char e = j->s[1], r = e == '"' || e == '\\' || e == '/' ? e
                          : e == 'b'                        ? '\b'
                          : e == 'f'                        ? '\f'
                          : e == 'n'                        ? '\n'
                          : e == 'r'                        ? '\r'
                          : e == 't'                        ? '\t'
                                                            : 0;
    if (r) {
      *o++ = r, j->s += 2;
      continue;
    }
    if (e != 'u') return fail(j, "bad escape in a string");
    j->s++;
    long cp = junicode(j);
    if (cp <= 0) return fail(j, "bad \\u escape in a string");
    o += utf8_put(o, (uint32_t)cp);
  }
  if (j->s >= j->end) return fail(j, "unterminated string");
  j->s++;
  *o = 0;
  *out = start, *len = (size_t)(o - start);
  j->used += *len + 1;
  return true;
}
static bool juint(js_t *j, uint64_t *v) {
  jws(j);
  if (j->s >= j->end || *j->s < '0' || *j->s > '9') return fail(j, "expected a non-negative integer");
  if (*j->s == '0' && j->end - j->s > 1 && j->s[1] >= '0' && j->s[1] <= '9')
    return fail(j, "leading zero in a number");
  uint64_t x = 0;
  while (j->s < j->end && *j->s >= '0' && *j->s <= '9')
    if (__builtin_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, (uint64_t)(*j->s++ - '0'), &x) ||
        x > INT64_MAX)
      return fail(j, "integer too large");
  if (j->s < j->end && (*j->s == '.' || *j->s == 'e' || *j->s == 'E')) return fail(j, "expected an integer");
  *v = x;
  return true;
}
/* [u, u, ...] into v (at most cap); the count in *n */
static bool juints(js_t *j, uint64_t *v, int cap, int *n) {
  *n = 0;
  if (!jexpect(j, '[')) return false;
  if (jeat(j, ']')) return true;
  do {
    if (*n == cap) return fail(j, "too many numbers in a list (rank over 8?)");
    if (!juint(j, &v[(*n)++])) return false;
  } while (jeat(j, ','));
  return jeat(j, ']') || fail(j, "expected ']'");
}

/* ------------------------------------------------------------ the header */
typedef struct {
  const char *name;
  size_t nlen;
  jx_dtype dt;
  int nd;
  int64_t shape[JX_MAX_RANK];
  uint64_t begin, end;
} st_entry;

typedef struct {
  const char *op, *path;
  st_entry *ents;
  int n, cap;
  char cause[256]; /* a semantic error (the JSON reader's are in js_t.err) */
} st_header;

static bool st_fail(js_t *j, st_header *h, const char *fmt, const char *arg) {
  if (!h->cause[0]) snprintf(h->cause, sizeof h->cause, fmt, arg);
  return fail(j, h->cause);
}

static bool st_dtype(js_t *j, st_header *h, st_entry *e) {
  const char *s;
  size_t n;
  if (!jstring(j, &s, &n)) return false;
  for (int i = 0; i < JX_DTYPE_COUNT; i++)
    if (!strcmp(s, st_names[i])) return e->dt = (jx_dtype)i, true;
  char shown[40];
  jx_io_shown(s, n, shown, sizeof shown);
  return st_fail(
      j, h, "dtype %s is not supported (jx has BOOL, I8/16/32/64, U8/16/32/64, BF16, F16, F32, F64)", shown);
}

/* {"dtype": ..., "shape": [...], "data_offsets": [b, e]}, each key once */
static bool st_tensor(js_t *j, st_header *h, st_entry *e) {
  unsigned seen = 0;
  if (!jexpect(j, '{')) return false;
  do {
    const char *k;
    size_t kn;
    if (!jstring(j, &k, &kn) || !jexpect(j, ':')) return false;
    unsigned bit = !strcmp(k, "dtype") ? 1 : !strcmp(k, "shape") ? 2 : !strcmp(k, "data_offsets") ? 4 : 0;
    if (!bit || (seen & bit)) return st_fail(j, h, "%s key in a tensor entry", bit ? "repeated" : "unknown");
    seen |= bit;
    uint64_t v[JX_MAX_RANK];
    int n;
    bool ok = bit == 1 ? st_dtype(j, h, e) : juints(j, v, bit == 2 ? JX_MAX_RANK : 2, &n);
    if (!ok) return false;
    if (bit == 2) {
      e->nd = n;
      for (int i = 0; i < n; i++) e->shape[i] = (int64_t)v[i];
    } else if (bit == 4) {
      if (n != 2) return st_fail(j, h, "data_offsets must be [begin, end]%s", "");
      e->begin = v[0], e->end = v[1];
    }
  } while (jeat(j, ','));
  if (!jeat(j, '}')) return fail(j, "expected '}' after a tensor entry");
  return seen == 7 || st_fail(j, h, "a tensor entry lacks dtype, shape or data_offsets%s", "");
}

/* "__metadata__": {"key": "value", ...}: strings only (read, not kept) */
static bool st_metadata(js_t *j) {
  if (!jexpect(j, '{')) return false;
  if (jeat(j, '}')) return true;
  do {
    const char *s;
    size_t n;
    if (!jstring(j, &s, &n) || !jexpect(j, ':') || !jstring(j, &s, &n)) return false;
  } while (jeat(j, ','));
  return jeat(j, '}') || fail(j, "expected '}' after __metadata__");
}

static bool st_add(js_t *j, st_header *h, st_entry **e) {
  if (h->n == h->cap) {
    int cap = h->cap ? 2 * h->cap : 16;
    st_entry *p = jx_realloc(h->ents, sizeof *p * (size_t)cap);
    if (!p) return st_fail(j, h, "out of memory%s", "");
    h->ents = p, h->cap = cap;
  }
  *e = &h->ents[h->n++];
  **e = (st_entry){0};
  return true;
}

/* one "name": value of the top object */
static bool st_member(js_t *j, st_header *h, bool *meta) {
  const char *k;
  size_t kn;
  if (!jstring(j, &k, &kn) || !jexpect(j, ':')) return false;
  if (!strcmp(k, "__metadata__")) {
    if (*meta) return st_fail(j, h, "__metadata__ appears twice%s", "");
    *meta = true;
    return st_metadata(j);
  }
  st_entry *e;
  if (!st_add(j, h, &e)) return false;
  e->name = k, e->nlen = kn;
  return st_tensor(j, h, e);
}

static bool st_object(js_t *j, st_header *h) {
  bool meta = false;
  if (!jexpect(j, '{')) return false;
  if (!jeat(j, '}')) {
    do
      if (!st_member(j, h, &meta)) return false;
    while (jeat(j, ','));
    if (!jeat(j, '}')) return fail(j, "expected '}' at the end of the header");
  }
  jws(j);
  return j->s == j->end || fail(j, "junk after the header object");
}

static int cmp_begin(const void *a, const void *b) {
  const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return (x->end > y->end) - (x->end < y->end);
}
static int cmp_ename(const void *a, const void *b) {
  return strcmp((*(const st_entry *const *)a)->name, (*(const st_entry *const *)b)->name);
}

static jx_t st_err(const st_header *h, const char *name, const char *cause) {
  char shown[128];
  jx_io_shown(name, strlen(name), shown, sizeof shown);
  return jx_error_new("%s: %s: tensor %s: %s", h->op, h->path, shown, cause);
}

/* each tensor's size from its shape and dtype, inside the data */
static jx_t st_check_sizes(const st_header *h, uint64_t data_len) {
  for (int i = 0; i < h->n; i++) {
    const st_entry *e = &h->ents[i];
    char err[256];
    if (jx_shape_check(e->nd, e->shape, e->dt, err, sizeof err)) return st_err(h, e->name, err);
    uint64_t count = 1;
    for (int k = 0; k < e->nd; k++) count *= (uint64_t)e->shape[k];
    uint64_t want = count * jx_dtype_size(e->dt);
    if (e->end < e->begin || e->end > data_len)
      return st_err(h, e->name, "data_offsets point outside the data");
    if (e->end - e->begin != want) {
      snprintf(err, sizeof err, "data_offsets span %llu bytes, its shape and dtype need %llu",
               (unsigned long long)(e->end - e->begin), (unsigned long long)want);
      return st_err(h, e->name, err);
    }
  }
  return NULL;
}

/* no name twice; the tensors tile [0, data_len) exactly */
static jx_t st_check_layout(const st_header *h, uint64_t data_len) {
  const st_entry **s = jx_malloc(sizeof(void *) * (size_t)(h->n ? h->n : 1));
  if (!s) return jx_error_new("%s: %s: out of memory", h->op, h->path);
  for (int i = 0; i < h->n; i++) s[i] = &h->ents[i];
  jx_t e = NULL;
  qsort(s, (size_t)h->n, sizeof(void *), cmp_ename);
  for (int i = 1; i < h->n && !e; i++)
    if (!strcmp(s[i - 1]->name, s[i]->name)) e = st_err(h, s[i]->name, "the name appears twice");
  qsort(s, (size_t)h->n, sizeof(void *), cmp_begin);
  uint64_t at = 0;
  for (int i = 0; i < h->n && !e; i++) {
    if (s[i]->begin < at)
      e = st_err(h, s[i]->name, "its data_offsets overlap another tensor's");
    else if (s[i]->begin > at)
      e = st_err(h, s[i]->name, "a hole before its data (data_offsets do not tile the data)");
    at = s[i]->end;
  }
  if (!e && at != data_len)
    e = jx_error_new("%s: %s: %llu bytes after the last tensor's data", h->op, h->path,
                     (unsigned long long)(data_len - at));
  jx_free(s);
  return e;
}

/* ------------------------------------------------ the header via cJSON */
static int force_own; /* test hook: the own reader even with cJSON */
void jx_safetensors_force_reader(int own) { force_own = own; }

#ifdef JX_HAVE_CJSON
#include <cjson/cJSON.h>

static bool cj_fail(st_header *h, const char *why) {
  if (!h->cause[0]) snprintf(h->cause, sizeof h->cause, "%s", why);
  return false;
}

/* an array of at most cap non-negative integers (exact in a double:
 * below 2^53, which is past any size the checks after allow) */
static bool cj_uints(st_header *h, const cJSON *a, uint64_t *v, int cap, int *n) {
  if (!cJSON_IsArray(a)) return cj_fail(h, "expected '['");
  *n = 0;
  for (const cJSON *x = a->child; x; x = x->next) {
    if (*n == cap) return cj_fail(h, "too many numbers in a list (rank over 8?)");
    double d = x->valuedouble;
    if (!cJSON_IsNumber(x) || !(d >= 0)) return cj_fail(h, "expected a non-negative integer");
    if (d >= 9007199254740992.0) return cj_fail(h, "integer too large");
    if (d != (double)(uint64_t)d) return cj_fail(h, "expected an integer");
    v[(*n)++] = (uint64_t)d;
  }
  return true;
}

static bool cj_tensor(st_header *h, const cJSON *o, st_entry *e) {
  if (!cJSON_IsObject(o)) return cj_fail(h, "expected '{' (a tensor entry is not an object)");
  unsigned seen = 0;
  for (const cJSON *k = o->child; k; k = k->next) {
    unsigned bit = !strcmp(k->string, "dtype")          ? 1
                   : !strcmp(k->string, "shape")        ? 2
                   : !strcmp(k->string, "data_offsets") ? 4
                                                        : 0;
    if (!bit || (seen & bit))
      return cj_fail(h, bit ? "repeated key in a tensor entry" : "unknown key in a tensor entry");
    seen |= bit;
    uint64_t v[JX_MAX_RANK];
    int n = 0;
    if (bit == 1) {
      if (!cJSON_IsString(k)) return cj_fail(h, "dtype is not a string");
      int i = 0;
      while (i < JX_DTYPE_COUNT && strcmp(k->valuestring, st_names[i])) i++;
      if (i == JX_DTYPE_COUNT) {
        char shown[40];
        jx_io_shown(k->valuestring, strlen(k->valuestring), shown, sizeof shown);
        snprintf(h->cause, sizeof h->cause,
                 "dtype %s is not supported (jx has BOOL, I32, I64, U32, F32, F64)", shown);
        return false;
      }
      e->dt = (jx_dtype)i;
    } else if (!cj_uints(h, k, v, bit == 2 ? JX_MAX_RANK : 2, &n)) {
      return false;
    } else if (bit == 2) {
      e->nd = n;
      for (int i = 0; i < n; i++) e->shape[i] = (int64_t)v[i];
    } else if (n != 2) {
      return cj_fail(h, "data_offsets must be [begin, end]");
    } else {
      e->begin = v[0], e->end = v[1];
    }
  }
  return seen == 7 || cj_fail(h, "a tensor entry lacks dtype, shape or data_offsets");
}

/* the top object: "__metadata__" (strings only) once, then tensors whose
 * names are copied into pool (a name is never longer than its source) */
static bool cj_object(st_header *h, const cJSON *top, char *pool) {
  bool meta = false;
  size_t used = 0;
  if (!cJSON_IsObject(top)) return cj_fail(h, "expected '{' (the header is not a JSON object)");
  for (const cJSON *m = top->child; m; m = m->next) {
    if (!strcmp(m->string, "__metadata__")) {
      if (meta) return cj_fail(h, "__metadata__ appears twice");
      meta = true;
      if (!cJSON_IsObject(m)) return cj_fail(h, "expected '{' (__metadata__ is not an object)");
      for (const cJSON *x = m->child; x; x = x->next)
        if (!cJSON_IsString(x)) return cj_fail(h, "expected a string (a __metadata__ value)");
      continue;
    }
    js_t j = {0};
    st_entry *e;
    if (!st_add(&j, h, &e)) return false;
    size_t len = strlen(m->string);
    memcpy(pool + used, m->string, len + 1);
    e->name = pool + used, e->nlen = len;
    used += len + 1;
    if (!cj_tensor(h, m, e)) return false;
  }
  return true;
}

/* NULL, or the error (cause, else the syntax error's byte) */
static jx_t cj_header(st_header *h, const char *text, size_t hn, char *pool) {
  const char *end = NULL;
  cJSON *top = cJSON_ParseWithLengthOpts(text, hn, &end, false);
  bool ok = top && cj_object(h, top, pool);
  cJSON_Delete(top);
  if (ok) {
    while (end < text + hn && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
    if (end == text + hn) return NULL;
    cj_fail(h, "junk after the header object");
  }
  if (h->cause[0]) return jx_error_new("%s: %s: bad header: %s", h->op, h->path, h->cause);
  size_t at = end && end >= text && end <= text + hn ? (size_t)(end - text) + 8 : 8;
  return jx_error_new("%s: %s: bad header at byte %zu: JSON syntax error", h->op, h->path, at);
}
#endif

static jx_t st_parse(st_header *h, const uint8_t *p, size_t n, char **pool, size_t *data_at) {
  if (n < 8) return jx_error_new("%s: %s: too short for a .safetensors file (%zu bytes)", h->op, h->path, n);
  uint64_t hn = jx_get64(p);
  if (hn > MAX_HEADER || hn > n - 8)
    return jx_error_new("%s: %s: header length %llu is past the end of the file or over 100 MB", h->op,
                        h->path, (unsigned long long)hn);
  *pool = jx_malloc((size_t)hn + 1);
  if (!*pool) return jx_error_new("%s: %s: out of memory", h->op, h->path);
#ifdef JX_HAVE_CJSON
  if (!force_own) {
    jx_t e = cj_header(h, (const char *)p + 8, (size_t)hn, *pool);
    if (e) return e;
    *data_at = 8 + (size_t)hn;
    e = st_check_sizes(h, n - *data_at);
    return e ? e : st_check_layout(h, n - *data_at);
  }
#endif
  js_t j = {.s = (const char *)p + 8, .end = (const char *)p + 8 + hn, .pool = *pool};
  if (!st_object(&j, h)) {
    size_t at = (size_t)(j.s - (const char *)p);
    return jx_error_new("%s: %s: bad header at byte %zu: %s", h->op, h->path, at,
                        j.err ? j.err : "syntax error");
  }
  *data_at = 8 + (size_t)hn;
  jx_t e = st_check_sizes(h, n - *data_at);
  return e ? e : st_check_layout(h, n - *data_at);
}

/* The file's tensors as a tuple in header order; *names (optional). */
jx_t jx_safetensors_read(const char *op, const char *path, char ***names) {
  if (names) *names = NULL;
  jx_io_map m;
  jx_t e = jx_io_map_open(&m, op, path);
  if (e) return e;
  st_header h = {.op = op, .path = path};
  char *pool = NULL;
  size_t data_at = 0;
  jx_t out = st_parse(&h, m.p, m.n, &pool, &data_at);
  jx_t *arrays = out ? NULL : jx_malloc(sizeof(jx_t) * (size_t)(h.n ? h.n : 1));
  if (!out && !arrays) out = jx_error_new("%s: %s: out of memory", op, path);
  for (int i = 0; i < h.n && !out; i++) {
    const st_entry *en = &h.ents[i];
    arrays[i] = jx_array(en->dt, en->nd, en->shape, m.p + data_at + en->begin);
    if (!jx_ok(arrays[i])) out = arrays[i];
  }
  if (!out && names) {
    const char **ns = jx_malloc(sizeof(char *) * (size_t)(h.n ? h.n : 1));
    size_t *lens = jx_malloc(sizeof(size_t) * (size_t)(h.n ? h.n : 1));
    for (int i = 0; ns && lens && i < h.n; i++) ns[i] = h.ents[i].name, lens[i] = h.ents[i].nlen;
    *names = ns && lens ? jx_io_names_pack(h.n, ns, lens) : NULL;
    jx_free(ns), jx_free(lens);
    if (!*names) out = jx_error_new("%s: %s: out of memory", op, path);
  }
  if (!out) out = jx_tuple(h.n, arrays);
  jx_free(arrays), jx_free(h.ents), jx_free(pool);
  jx_io_map_close(&m);
  return out;
}

jx_t jx_safetensors_load(const char *path, char ***names) {
  return jx_safetensors_read("jx_safetensors_load", path, names);
}

/* ------------------------------------------------------------ writing */
static bool utf8_valid(const unsigned char *s) {
  while (*s) {
    int k = *s < 0x80 ? 0 : (*s & 0xe0) == 0xc0 ? 1 : (*s & 0xf0) == 0xe0 ? 2 : (*s & 0xf8) == 0xf0 ? 3 : -1;
    if (k < 0 || (k == 1 && *s < 0xc2)) return false;
    s++;
    for (int i = 0; i < k; i++, s++)
      if ((*s & 0xc0) != 0x80) return false;
  }
  return true;
}

typedef struct {
  char *p;
  size_t n, cap;
  bool oom;
} sbuf;
static void sput(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = jx_realloc(b->p, cap);
    if (!p) return (void)(b->oom = true);
    b->p = p, b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
}
static void sputs(sbuf *b, const char *s) { sput(b, s, strlen(s)); }
static void sput_json(sbuf *b, const char *s) {
  sputs(b, "\"");
  for (; *s; s++) {
    char esc[8];
    if (*s == '"' || *s == '\\')
      snprintf(esc, sizeof esc, "\\%c", *s);
    else if ((unsigned char)*s < 0x20)
      snprintf(esc, sizeof esc, "\\u%04x", (unsigned)*s);
    else
      esc[0] = *s, esc[1] = 0;
    sputs(b, esc);
  }
  sputs(b, "\"");
}

/* the JSON header, padded with spaces so that the data starts 8-aligned */
static bool st_header_json(sbuf *b, int n, const char *const *names, const jx_t *arrays) {
  sputs(b, "{");
  uint64_t at = 0;
  for (int i = 0; i < n; i++) {
    char s[400];
    sput_json(b, names[i]);
    snprintf(s, sizeof s, ":{\"dtype\":\"%s\",\"shape\":[", st_names[jx_dtype_of(arrays[i])]);
    sputs(b, s);
    for (int k = 0; k < jx_ndim(arrays[i]); k++)
      snprintf(s, sizeof s, k ? ",%lld" : "%lld", (long long)jx_shape(arrays[i])[k]), sputs(b, s);
    uint64_t nb = jx_io_nbytes(arrays[i]);
    snprintf(s, sizeof s, "],\"data_offsets\":[%llu,%llu]}%s", (unsigned long long)at,
             (unsigned long long)(at + nb), i + 1 < n ? "," : "");
    sputs(b, s);
    at += nb;
  }
  sputs(b, "}");
  while ((8 + b->n) % 8) sputs(b, " ");
  return !b->oom;
}

jx_t jx_safetensors_save(const char *path, int n, const char *const *names, const jx_t *arrays) {
  return jx_safetensors_write("jx_safetensors_save", path, n, names, arrays);
}

jx_t jx_safetensors_write(const char *op, const char *path, int n, const char *const *names,
                          const jx_t *arrays) {
  jx_t e = jx_io_check_names(op, path, n, names, arrays);
  if (e) return e;
  for (int i = 0; i < n; i++) {
    if (!utf8_valid((const unsigned char *)names[i]))
      return jx_error_new("%s: %s: name %d is not valid UTF-8", op, path, i);
    if (!strcmp(names[i], "__metadata__"))
      return jx_error_new("%s: %s: \"__metadata__\" is reserved, not a tensor name", op, path);
  }
  sbuf b = {0};
  if (!st_header_json(&b, n, names, arrays) || b.n > MAX_HEADER)
    return jx_free(b.p), jx_error_new("%s: %s: out of memory (or a header over 100 MB)", op, path);
  jx_io_writer w;
  if ((e = jx_io_open(&w, op, path))) return jx_free(b.p), e;
  uint8_t len[8];
  jx_put64(len, b.n);
  jx_io_write(&w, len, 8);
  jx_io_write(&w, b.p, b.n);
  jx_free(b.p);
  for (int i = 0; i < n; i++) jx_io_write(&w, jx_data(arrays[i]), jx_io_nbytes(arrays[i]));
  return jx_io_commit(&w);
}
