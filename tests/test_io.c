/* Saving and loading: .npy/.npz/.safetensors round trips of every dtype and
 * rank 0..4 (empty dims included), NumPy-written fixtures (stored,
 * deflated, zip64; tests/golden/gen_io_fixtures.py), forced zip64 writing,
 * truncation at every byte, corrupted and hostile headers, checkpoints of
 * trees with their mismatches, atomic saves, NULL arguments, and a read
 * back of jx's files by NumPy when python3-numpy is installed. */
#include "check.h"
#include "io/io.h"
#include "jx.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static bool have_zlib; /* deflate built in (probed: a jx without zlib refuses it) */
static const char *tmp(const char *name) {
  static char p[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
  return p[k];
}

/* element i of a test array (gen_io_fixtures.py's value()) */
static void fixture_value(jx_dtype dt, int64_t i, void *dst) {
  int64_t k = (i * 7) % 11 - 3;
  switch (dt) {
    case JX_BOOL: *(uint8_t *)dst = i % 3 == 0; break;
    case JX_I32: *(int32_t *)dst = (int32_t)k; break;
    case JX_I64: *(int64_t *)dst = k * ((int64_t)1 << 40); break;
    case JX_U32: *(uint32_t *)dst = (uint32_t)((i * 7) % 11 + 4000000000u); break;
    case JX_F32: *(float *)dst = (float)k + 0.25f; break;
    case JX_F64: *(double *)dst = (double)k / 8.0 + (i == 5 ? 1e-300 : 0); break;
    default: break;
  }
}
static jx_t fixture(jx_dtype dt, int nd, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= shape[i];
  uint8_t buf[256 * 8];
  for (int64_t i = 0; i < n; i++) fixture_value(dt, i, buf + i * (int64_t)jx_dtype_size(dt));
  return jx_array(dt, nd, shape, buf);
}

static const char *const dt_code[] = {"b1", "i4", "i8", "u4", "f4", "f8"};
static const struct {
  const char *name;
  int nd;
  int64_t shape[4];
} shapes[] = {{"r0", 0, {0}},       {"r1", 1, {5}},          {"r2", 2, {2, 3}},
              {"r3", 3, {2, 1, 3}}, {"r4", 4, {1, 2, 2, 2}}, {"e", 2, {0, 3}}};
#define NSHAPES 6
#define NDT     6 /* the golden files' dtypes: bool..f64 (dt_code) */
#define NFIX    (NDT * NSHAPES)

/* the fixture set: names "f4_r2" ... and arrays */
static char fix_names[NFIX][16];
static const char *fix_name_p[NFIX];
static jx_t fix_arrays[NFIX];
static void make_fixtures(void) {
  for (int d = 0; d < NDT; d++)
    for (int s = 0; s < NSHAPES; s++) {
      int i = d * NSHAPES + s;
      snprintf(fix_names[i], sizeof fix_names[i], "%s_%s", dt_code[d], shapes[s].name);
      fix_name_p[i] = fix_names[i];
      fix_arrays[i] = jx_retain(fixture((jx_dtype)d, shapes[s].nd, shapes[s].shape));
    }
}
static jx_t fixture_named(const char *name) {
  for (int i = 0; i < NFIX; i++)
    if (!strcmp(fix_names[i], name)) return fix_arrays[i];
  return NULL;
}

/* same dtype, shape and bytes */
static bool same(jx_t a, jx_t b) {
  if (!jx_ok(a) || !jx_ok(b) || jx_dtype_of(a) != jx_dtype_of(b) || jx_ndim(a) != jx_ndim(b)) return false;
  for (int i = 0; i < jx_ndim(a); i++)
    if (jx_shape(a)[i] != jx_shape(b)[i]) return false;
  size_t n = (size_t)jx_size(a) * jx_dtype_size(jx_dtype_of(a));
  uint8_t *x = malloc(n + 1), *y = malloc(n + 1);
  bool ok = !jx_read(a, jx_dtype_of(a), x, n) && !jx_read(b, jx_dtype_of(b), y, n) && !memcmp(x, y, n);
  free(x), free(y);
  return ok;
}

static bool err_has(jx_t e, const char *what) {
  const char *m = jx_error(e);
  if (m && strstr(m, what)) return true;
  fprintf(stderr, "  expected an error containing \"%s\", got: %s\n", what, m ? m : "(no error)");
  return false;
}

static uint8_t *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *p = malloc((size_t)len + 1);
  *n = fread(p, 1, (size_t)len, f);
  fclose(f);
  return p;
}
static void spit(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (n) fwrite(p, 1, n, f);
  fclose(f);
}

/* ------------------------------------------------------------ round trips */
static void test_npy_roundtrip(void) {
  for (int i = 0; i < NFIX; i++) {
    jx_pool_push();
    CHECKF(jx_npy_save(tmp("x.npy"), fix_arrays[i]) == NULL, "%s", fix_names[i]);
    jx_t back = jx_npy_load(tmp("x.npy"));
    CHECKF(same(back, fix_arrays[i]), "%s: %s", fix_names[i], jx_error(back) ? jx_error(back) : "differs");
    jx_pool_pop();
  }
}

static void check_all_fixtures(const char *path, jx_t got, char **names) {
  CHECKF(jx_ok(got) && names, "%s: %s", path, jx_error(got));
  if (!jx_ok(got) || !names) return;
  CHECKF(jx_len(got) == NFIX, "%s: %d arrays", path, jx_len(got));
  for (int i = 0; i < jx_len(got); i++) {
    jx_t want = fixture_named(names[i]);
    CHECKF(want && same(jx_at(got, i), want), "%s: member %s", path, names[i]);
  }
}

static void test_npz_roundtrip(void) {
  jx_pool_push();
  for (int compressed = 0; compressed < 2; compressed++) {
    const char *p = tmp(compressed ? "compressed.npz" : "stored.npz");
    jx_t e = compressed ? jx_npz_save_compressed(p, NFIX, fix_name_p, fix_arrays)
                        : jx_npz_save(p, NFIX, fix_name_p, fix_arrays);
    if (compressed && !have_zlib) {
      CHECK(err_has(e, "built without zlib"));
      continue;
    }
    CHECKF(e == NULL, "%s", jx_error(e));
    char **names = NULL;
    jx_t got = jx_npz_load(p, &names);
    check_all_fixtures(p, got, names);
    for (int i = 0; names && i < NFIX; i++) CHECK(!strcmp(names[i], fix_names[i])); /* archive order */
    free(names);
  }
  /* an empty archive, names optional */
  CHECK(jx_npz_save(tmp("empty.npz"), 0, NULL, NULL) == NULL);
  jx_t got = jx_npz_load(tmp("empty.npz"), NULL);
  CHECK(jx_ok(got) && jx_len(got) == 0);
  jx_pool_pop();
}

static void test_safetensors_roundtrip(void) {
  jx_pool_push();
  const char *p = tmp("t.safetensors");
  CHECK(jx_safetensors_save(p, NFIX, fix_name_p, fix_arrays) == NULL);
  size_t n;
  uint8_t *raw = slurp(p, &n);
  CHECK(raw && n > 8 && (8 + raw[0]) % 8 == 0); /* the data starts 8-aligned */
  free(raw);
  char **names = NULL;
  jx_t got = jx_safetensors_load(p, &names);
  check_all_fixtures(p, got, names);
  free(names);
  /* names that need JSON escapes, and an empty file of tensors */
  const char *odd[] = {"q\"uote\\d \xc3\xa9", "tab\tnl\n"};
  jx_t two[] = {fix_arrays[0], fix_arrays[1]};
  CHECK(jx_safetensors_save(tmp("odd.safetensors"), 2, odd, two) == NULL);
  got = jx_safetensors_load(tmp("odd.safetensors"), &names);
  CHECK(jx_ok(got) && names && !strcmp(names[0], odd[0]) && !strcmp(names[1], odd[1]));
  free(names);
  CHECK(jx_safetensors_save(tmp("none.safetensors"), 0, NULL, NULL) == NULL);
  got = jx_safetensors_load(tmp("none.safetensors"), NULL);
  CHECK(jx_ok(got) && jx_len(got) == 0);
  jx_pool_pop();
}

/* ------------------------------------------------------------ fixtures */
static void test_numpy_fixtures(void) {
  jx_pool_push();
  const char *files[] = {"golden/io/numpy_savez.npz", "golden/io/numpy_compressed.npz"};
  for (int f = 0; f < 2; f++) {
    char **names = NULL;
    jx_t got = jx_npz_load(files[f], &names);
    if (f == 0 || have_zlib)
      check_all_fixtures(files[f], got, names);
    else
      CHECK(err_has(got, "this jx was built without zlib"));
    free(names);
  }
  jx_t x = jx_npy_load("golden/io/f4_r3.npy");
  CHECK(same(x, fixture_named("f4_r3")));
  /* what jx refuses, each with its cause */
  CHECK(err_has(jx_npy_load("golden/io/bigendian.npy"), "big-endian"));
  CHECK(err_has(jx_npy_load("golden/io/bigendian.npy"), "golden/io/bigendian.npy"));
  CHECK(err_has(jx_npy_load("golden/io/fortran.npy"), "Fortran"));
  /* (#19) f16 is read since jx has it: NumPy's values exactly */
  {
    jx_t h = jx_npy_load("golden/io/float16.npy");
    float hv[6];
    CHECK(jx_dtype_of(h) == JX_F16 && !jx_read(h, JX_F32, hv, sizeof hv) && hv[0] == -2.75f &&
          hv[5] == -0.75f);
  }
  CHECK(err_has(jx_npy_load("golden/io/object.npy"), "object arrays"));
  CHECK(err_has(jx_npz_load("golden/io/not_npy_member.npz", NULL), "readme.txt is not a .npy"));
  /* safetensors as its reference writer lays it out, with escapes and metadata
   */
  char **names = NULL;
  jx_t st = jx_safetensors_load("golden/io/reference.safetensors", &names);
  CHECKF(jx_ok(st) && jx_len(st) == 4, "%s", jx_error(st));
  if (jx_ok(st) && names) {
    CHECK(!strcmp(names[0], "f4_r2") && same(jx_at(st, 0), fixture_named("f4_r2")));
    CHECK(!strcmp(names[1], "i8_r1") && same(jx_at(st, 1), fixture_named("i8_r1")));
    CHECK(!strcmp(names[2], "q\"uote\\d \xc3\xa9") && same(jx_at(st, 2), fixture_named("b1_r3")));
    CHECK(!strcmp(names[3], "u4_e") && same(jx_at(st, 3), fixture_named("u4_e")));
  }
  free(names);
  jx_pool_pop();
}

/* a zip64 archive read; zip64 records written (forced, as past 4 GiB) */
static void test_zip64(void) {
  jx_pool_push();
  char **names = NULL;
  jx_t got = jx_npz_load("golden/io/zip64.npz", &names);
  CHECKF(jx_ok(got) && jx_len(got) == 2, "%s", jx_error(got));
  if (jx_ok(got) && names) {
    CHECK(!strcmp(names[0], "f4_r2") && same(jx_at(got, 0), fixture_named("f4_r2")));
    CHECK(!strcmp(names[1], "i8_r1") && same(jx_at(got, 1), fixture_named("i8_r1")));
  }
  free(names);
  jx_io_test_force_zip64 = true;
  CHECK(jx_npz_save(tmp("zip64.npz"), NFIX, fix_name_p, fix_arrays) == NULL);
  jx_io_test_force_zip64 = false;
  size_t n;
  uint8_t *raw = slurp(tmp("zip64.npz"), &n);
  /* the zip64 end record, its locator, and 0xffffffff in the 32-bit fields */
  CHECK(raw && n > 98 && jx_get32(raw + n - 22 - 20 - 56) == 0x06064b50 &&
        jx_get32(raw + n - 22 - 20) == 0x07064b50);
  CHECK(raw && jx_get32(raw + n - 22 + 12) == 0xffffffffu && jx_get32(raw + n - 22 + 16) == 0xffffffffu);
  CHECK(raw && jx_get32(raw + 18) == 0xffffffffu && jx_get16(raw + 28) == 20); /* local: sizes in the extra */
  free(raw);
  got = jx_npz_load(tmp("zip64.npz"), &names);
  check_all_fixtures("forced zip64", got, names);
  free(names);
  jx_pool_pop();
}

/* ------------------------------------------------------------ hostile files */
typedef jx_t (*loader)(const char *path);
static jx_t load_npy(const char *p) { return jx_npy_load(p); }
static jx_t load_npz(const char *p) { return jx_npz_load(p, NULL); }
static jx_t load_st(const char *p) { return jx_safetensors_load(p, NULL); }
static jx_t load_ckpt(const char *p) {
  jx_t like = JX_TUPLE(JX_LIST(fixture_named("f4_r0"), fixture_named("i4_r2")), fixture_named("b1_e"));
  return jx_load(p, like);
}

/* every proper prefix of a good file is an error value, never a crash */
static void truncate_all(const char *good, const char *name, loader load) {
  size_t n;
  uint8_t *raw = slurp(good, &n);
  CHECKF(raw != NULL, "%s", good);
  int bad = 0;
  for (size_t k = 0; raw && k < n; k++) {
    jx_pool_push();
    spit(tmp(name), raw, k);
    jx_t x = load(tmp(name));
    if (jx_ok(x) || !strstr(jx_error(x), tmp(name))) {
      if (bad++ < 3)
        fprintf(stderr, "  %s cut to %zu bytes: %s\n", good, k, jx_ok(x) ? "loaded" : jx_error(x));
    }
    jx_pool_pop();
  }
  CHECKF(bad == 0, "%s: %d truncations not refused", good, bad);
  /* and the whole file loads */
  jx_pool_push();
  spit(tmp(name), raw, n);
  CHECKF(jx_ok(load(tmp(name))), "%s", good);
  jx_pool_pop();
  free(raw);
}

static void test_truncated(void) {
  jx_pool_push();
  jx_t three[] = {fixture_named("f4_r2"), fixture_named("i8_r0"), fixture_named("b1_e")};
  const char *names[] = {"a", "b", "c"};
  CHECK(jx_npy_save(tmp("g.npy"), three[0]) == NULL);
  CHECK(jx_npz_save(tmp("g.npz"), 3, names, three) == NULL);
  CHECK(!have_zlib || jx_npz_save_compressed(tmp("gz.npz"), 3, names, three) == NULL);
  CHECK(jx_safetensors_save(tmp("g.safetensors"), 3, names, three) == NULL);
  jx_t tree = JX_TUPLE(JX_LIST(fixture_named("f4_r0"), fixture_named("i4_r2")), fixture_named("b1_e"));
  CHECK(jx_save(tmp("ck.npz"), tree) == NULL);
  CHECK(jx_save(tmp("ck.safetensors"), tree) == NULL);
  jx_pool_pop();
  truncate_all(tmp("g.npy"), "cut.npy", load_npy);
  truncate_all(tmp("g.npz"), "cut.npz", load_npz);
  if (have_zlib) truncate_all(tmp("gz.npz"), "cut.npz", load_npz);
  truncate_all(tmp("g.safetensors"), "cut.safetensors", load_st);
  truncate_all(tmp("ck.npz"), "cut.npz", load_ckpt);
  truncate_all(tmp("ck.safetensors"), "cut.safetensors", load_ckpt);
}

/* a .safetensors file with this header and data_len zero bytes of data */
static jx_t st_with(const char *json, size_t data_len) {
  size_t hn = strlen(json);
  uint8_t *f = calloc(1, 8 + hn + data_len);
  jx_put64(f, hn);
  memcpy(f + 8, json, hn);
  spit(tmp("bad.safetensors"), f, 8 + hn + data_len);
  free(f);
  return jx_safetensors_load(tmp("bad.safetensors"), NULL);
}
/* which JSON reader loads .safetensors headers in this pass: cJSON (when
 * built in and not forced off) or jx's own (main runs the tests with each) */
static bool reader_cjson;
void jx_safetensors_force_reader(int own);
/* a JSON syntax error: the own reader names it, cJSON gives its position */
static bool err_syntax(jx_t e, const char *own) {
  return err_has(e, reader_cjson ? "JSON syntax error" : own);
}
#define T(name, shape, offs) "\"" name "\":{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":" offs "}"

static void test_bad_safetensors(void) {
  jx_pool_push();
  CHECK(jx_ok(st_with("{" T("a", "[2]", "[0,8]") "}", 8)));
  spit(tmp("bad.safetensors"), "\x10\0\0", 3);
  CHECK(err_has(jx_safetensors_load(tmp("bad.safetensors"), NULL), "too short"));
  spit(tmp("bad.safetensors"), "\xff\xff\xff\xff\xff\xff\xff\xff{}", 10);
  CHECK(err_has(jx_safetensors_load(tmp("bad.safetensors"), NULL), "past the end"));
  CHECK(err_has(st_with("{" T("a", "[2]", "[0,16]") "}", 8), "outside the data"));
  CHECK(err_has(st_with("{" T("a", "[2]", "[8,0]") "}", 8), "outside the data"));
  CHECK(err_has(st_with("{" T("a", "[2]", "[0,8]") "," T("b", "[2]", "[4,12]") "}", 12), "overlap"));
  CHECK(err_has(st_with("{" T("a", "[2]", "[0,8]") "," T("b", "[2]", "[12,20]") "}", 20), "hole"));
  CHECK(err_has(st_with("{" T("a", "[2]", "[0,8]") "}", 12), "4 bytes after the last"));
  CHECK(err_has(st_with("{" T("a", "[3]", "[0,8]") "}", 8), "span 8 bytes, its shape and dtype need 12"));
  CHECK(err_has(st_with("{" T("a", "[4294967296,4294967296,4294967296]", "[0,8]") "}", 8), "overflows"));
  CHECK(err_has(st_with("{" T("a", "[1,1,1,1,1,1,1,1,1]", "[0,4]") "}", 4), "rank over 8"));
  CHECK(err_has(st_with("{" T("a", "[99999999999999999999]", "[0,4]") "}", 4), "too large"));
  CHECK(err_has(st_with("{" T("a", "[-1]", "[0,4]") "}", 4), "non-negative"));
  CHECK(err_has(st_with("{" T("a", "[2]", "[0,8]") "," T("a", "[2]", "[8,16]") "}", 16), "appears twice"));
  CHECK(err_has(st_with("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2),
                "F8_E4M3 is not supported"));
  CHECK(err_has(st_with("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_"
                        "offsets\":[0,8],\"x\":1}}",
                        8),
                "unknown key"));
  CHECK(err_has(st_with("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":"
                        "[2],\"data_offsets\":[0,8]}}",
                        8),
                "repeated key"));
  CHECK(err_has(st_with("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8), "lacks"));
  CHECK(
      err_has(st_with("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", 8), "too many"));
  CHECK(err_has(st_with("[]", 0), "expected '{'"));
  CHECK(err_has(st_with("{}x", 0), "junk after"));
  CHECK(err_syntax(st_with("{\"a", 0), "unterminated"));
  CHECK(err_syntax(st_with("{\"a\\x\":{}}", 0), "bad escape"));
  CHECK(err_syntax(st_with("{\"\\ud800\":{}}", 0), "bad \\u escape"));
  CHECK(err_has(st_with("{\"\\u0000\":{}}", 0), reader_cjson ? "lacks" : "bad \\u escape"));
  CHECK(err_has(st_with("{\"__metadata__\":{\"a\":1}}", 0), "expected a string"));
  CHECK(err_has(st_with("{\"__metadata__\":{},\"__metadata__\":{}}", 0), "twice"));
  CHECK(jx_ok(st_with("{\"__metadata__\":{\"k\":\"v\"}}   ", 0)));
  CHECK(err_syntax(st_with("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8),
                   "expected '}'"));
  jx_pool_pop();
}

/* Both readers give the same verdict on the same header (a differential
 * check; run when cJSON is built in). cJSON reads numbers with strtod, so
 * it accepts the forms the own reader refuses (2.0, 2e0, a leading zero):
 * listed apart, loaded, with the same meaning. */
static void test_readers_agree(void) {
  const char *hdr[] = {
      "{" T("a", "[2]", "[0,8]") "}",
      "{" T("a", "[2]", "[0,8]") "," T("b", "[0]", "[8,8]") "}",
      "{\"__metadata__\":{\"k\":\"v\"}," T("a", "[2]", "[0,8]") "}  ",
      "{" T("\\u00e9\\n\\\"", "[2]", "[0,8]") "}",
      "{" T("a", "[2]", "[0,16]") "}",
      "{" T("a", "[3]", "[0,8]") "}",
      "{" T("a", "[-2]", "[0,8]") "}",
      "{" T("a", "[2]", "[0]") "}",
      "{" T("a", "2", "[0,8]") "}",
      "{" T("a", "[2]", "[0,8]") "," T("a", "[2]", "[8,16]") "}",
      "{\"a\":{\"dtype\":3,\"shape\":[2],\"data_offsets\":[0,8]}}",
      "{\"a\":[]}",
      "{\"__metadata__\":[]}",
      "{\"__metadata__\":{\"k\":null}}",
      "{}",
      "{} x",
      "[]",
      "",
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],}}",
      "{\"a\":{\"dtype\":\"F32\" \"shape\":[2],\"data_offsets\":[0,8]}}",
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}}",
      "{\"\\ud800\":{}}",
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{}}",
  };
  const char *lenient[] = {"{" T("a", "[2.0]", "[0,8]") "}", "{" T("a", "[2e0]", "[0,8]") "}",
                           "{" T("a", "[02]", "[0,8]") "}"};
  jx_pool_push();
  for (size_t i = 0; i < sizeof hdr / sizeof *hdr; i++) {
    jx_safetensors_force_reader(0);
    jx_t c = st_with(hdr[i], 8);
    jx_safetensors_force_reader(1);
    jx_t o = st_with(hdr[i], 8);
    CHECKF(jx_ok(c) == jx_ok(o), "header %s: cJSON %s, own reader %s", hdr[i],
           jx_ok(c) ? "loads" : jx_error(c), jx_ok(o) ? "loads" : jx_error(o));
  }
  for (size_t i = 0; i < sizeof lenient / sizeof *lenient; i++) {
    jx_safetensors_force_reader(0);
    jx_t c = st_with(lenient[i], 8);
    CHECKF(jx_ok(c) && jx_ndim(c) == -1 && jx_shape(jx_at(c, 0))[0] == 2, "cJSON on %s", lenient[i]);
    jx_safetensors_force_reader(1);
    CHECK(!jx_ok(st_with(lenient[i], 8)));
  }
  jx_safetensors_force_reader(0);
  jx_pool_pop();
}

/* a .npy with this header dict and data_len bytes of data */
static jx_t npy_with(const char *dict, size_t data_len) {
  size_t hn = strlen(dict);
  uint8_t *f = calloc(1, 10 + hn + data_len);
  memcpy(f, "\x93NUMPY\x01\x00", 8);
  jx_put16(f + 8, (uint32_t)hn);
  memcpy(f + 10, dict, hn);
  spit(tmp("bad.npy"), f, 10 + hn + data_len);
  free(f);
  return jx_npy_load(tmp("bad.npy"));
}

static void test_bad_npy(void) {
  jx_pool_push();
  CHECK(jx_ok(npy_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", 8)));
  CHECK(jx_ok(npy_with("{\"shape\": (), \"descr\": \"<i8\", \"fortran_order\": True}", 8)));
  spit(tmp("bad.npy"), "\x93NUMPX\x01\x00\x00\x00", 10);
  CHECK(err_has(jx_npy_load(tmp("bad.npy")), "bad magic"));
  spit(tmp("bad.npy"), "\x93NUMPY\x01\x00\xff\xff{}", 12);
  CHECK(err_has(jx_npy_load(tmp("bad.npy")), "truncated"));
  spit(tmp("bad.npy"), "\x93NUMPY\x07\x00\x00\x00", 10);
  CHECK(err_has(jx_npy_load(tmp("bad.npy")), "version"));
  CHECK(
      err_has(npy_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 12), "data is 12 bytes"));
  CHECK(err_has(npy_with("{'descr': '<f4', 'fortran_order': False, 'shape': "
                         "(4611686018427387904, 4), }",
                         0),
                "overflows"));
  CHECK(err_has(npy_with("{'descr': '<f4', 'fortran_order': False, 'shape': "
                         "(99999999999999999999,), }",
                         0),
                "bad 'shape'"));
  CHECK(err_has(npy_with("{'descr': '<f4', 'fortran_order': False, 'shape': "
                         "(1,1,1,1,1,1,1,1,1), }",
                         4),
                "rank"));
  CHECK(err_has(npy_with("{'descr': '<f4', 'shape': (2,), }", 8), "lacks"));
  CHECK(err_has(npy_with("{'descr': '<f4', 'descr': '<f4', 'fortran_order': "
                         "False, 'shape': (2,), }",
                         8),
                "twice"));
  CHECK(err_has(npy_with("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8),
                "structured"));
  CHECK(err_has(npy_with("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", 8), "fortran_order"));
  CHECK(
      err_has(npy_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8), "unknown key"));
  CHECK(err_has(npy_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk", 8), "junk"));
  CHECK(err_has(npy_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", 8), "bad 'shape'"));
  CHECK(err_has(npy_with("{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", 24),
                "'<U3' is not supported"));
  /* bool data other than 0/1 reads as true, as NumPy's view of it would */
  jx_t b = npy_with("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", 2);
  CHECK(jx_ok(b));
  jx_pool_pop();
}

/* one stored member "a.npy", then a patch at offset `at` of the central
 * directory entry (rel = 1) or the file (rel = 0) */
static jx_t zip_patched(bool compressed, int rel, size_t at, const void *bytes, size_t nb) {
  jx_t one[] = {fixture_named("f4_r2")};
  const char *names[] = {"a"};
  if (compressed)
    jx_npz_save_compressed(tmp("z.npz"), 1, names, one);
  else
    jx_npz_save(tmp("z.npz"), 1, names, one);
  size_t n;
  uint8_t *raw = slurp(tmp("z.npz"), &n);
  size_t cd = jx_get32(raw + n - 22 + 16), off = rel == 1 ? cd + at : rel == 2 ? n - 22 + at : at;
  memcpy(raw + off, bytes, nb);
  spit(tmp("z.npz"), raw, n);
  free(raw);
  return jx_npz_load(tmp("z.npz"), NULL);
}

static void test_bad_zip(void) {
  jx_pool_push();
  uint8_t ff[4] = {0xff, 0xff, 0xff, 0x7f}, x = 0x5a, m12[2] = {12, 0}, one[2] = {1, 0};
  CHECK(err_has(zip_patched(false, 0, 100, &x, 1), "CRC mismatch"));
  CHECK(err_has(zip_patched(false, 2, 16, ff, 4), "central directory lies outside"));
  CHECK(err_has(zip_patched(false, 2, 8, (uint8_t[]){9, 0, 9, 0}, 4), "more entries"));
  CHECK(err_has(zip_patched(false, 2, 4, one, 2), "multi-disk"));
  CHECK(err_has(zip_patched(false, 1, 42, ff, 4), "bad local header"));
  CHECK(err_has(zip_patched(false, 1, 20, ff, 4), "past the end"));
  CHECK(err_has(zip_patched(false, 1, 24, (uint8_t[]){1, 0, 0, 0}, 4), "two sizes differ"));
  CHECK(err_has(zip_patched(false, 1, 10, m12, 2), "compression method 12"));
  CHECK(err_has(zip_patched(false, 1, 8, one, 2), "encrypted"));
  CHECK(err_has(zip_patched(false, 1, 0, &x, 1), "bad central directory entry"));
  CHECK(err_has(zip_patched(false, 1, 28, (uint8_t[]){0xff, 0xff}, 2), "overruns"));
  CHECK(err_has(zip_patched(false, 0, 0, &x, 1), "bad local header"));
  if (have_zlib) {
    CHECK(err_has(zip_patched(true, 1, 24, ff, 4), "impossible for deflate"));
    CHECK(err_has(zip_patched(true, 1, 24, (uint8_t[]){1, 0, 0, 0}, 4), "corrupt deflated data"));
    CHECK(err_has(zip_patched(true, 0, 40, (uint8_t[]){0xff, 0xff, 0xff, 0xff}, 4), "member a.npy"));
  }
  spit(tmp("z.npz"), "PK\5\6", 4);
  CHECK(err_has(jx_npz_load(tmp("z.npz"), NULL), "no end record"));
  spit(tmp("z.npz"), "", 0);
  CHECK(err_has(jx_npz_load(tmp("z.npz"), NULL), "no end record"));
  CHECK(err_has(jx_npz_load(tmp("missing.npz"), NULL), "cannot open"));
  CHECK(err_has(jx_npz_load(dir, NULL), "not a regular file"));
  jx_pool_pop();
}

/* ------------------------------------------------------------ checkpoints */
static void test_checkpoint(void) {
  jx_pool_push();
  jx_t W = fixture_named("f4_r2"), b = fixture_named("f4_r1"), k = fixture_named("u4_r1");
  jx_t tree = JX_TUPLE(JX_LIST(JX_TUPLE(W, b), JX_TUPLE(fixture_named("f8_r4"), fixture_named("b1_e"))), k,
                       JX_TUPLE());
  const char *files[] = {"ck.npz", "ck.safetensors"};
  for (int f = 0; f < 2; f++) {
    const char *p = tmp(files[f]);
    jx_t e = jx_save(p, tree);
    CHECKF(e == NULL, "%s", jx_error(e));
    jx_t back = jx_load(p, tree);
    CHECKF(jx_ok(back), "%s", jx_error(back));
    CHECK(same(jx_at(jx_at(jx_at(back, 0), 0), 1), b) && same(jx_at(back, 1), k));
    CHECK(same(jx_at(jx_at(jx_at(back, 0), 1), 0), fixture_named("f8_r4")));
    CHECK(jx_len(jx_at(back, 2)) == 0 && jx_len(jx_at(back, 0)) == 2);
    /* the leaves' names are JAX key paths */
    char **names = NULL;
    jx_t raw = f ? jx_safetensors_load(p, &names) : jx_npz_load(p, &names);
    CHECK(jx_ok(raw) && jx_len(raw) == 5 && names);
    if (names)
      CHECK(!strcmp(names[0], "[0][0][0]") && !strcmp(names[3], "[0][1][1]") && !strcmp(names[4], "[1]"));
    free(names);
    /* like's leaves disagree: dtype, shape, a missing leaf, an extra leaf */
    jx_t bad = JX_TUPLE(
        JX_LIST(JX_TUPLE(jx_astype(W, JX_F64), b), JX_TUPLE(fixture_named("f8_r4"), fixture_named("b1_e"))),
        k, JX_TUPLE());
    CHECK(err_has(jx_load(p, bad), "leaf \"[0][0][0]\": the file has f32[2,3], `like` has f64[2,3]"));
    bad = JX_TUPLE(
        JX_LIST(JX_TUPLE(W, fixture_named("f4_r0")), JX_TUPLE(fixture_named("f8_r4"), fixture_named("b1_e"))),
        k, JX_TUPLE());
    CHECK(err_has(jx_load(p, bad), "leaf \"[0][0][1]\": the file has f32[5], `like` has f32[]"));
    bad = JX_TUPLE(JX_LIST(JX_TUPLE(W, b), JX_TUPLE(fixture_named("f8_r4"), fixture_named("b1_e"))), k,
                   JX_TUPLE(k));
    CHECK(err_has(jx_load(p, bad), "leaf \"[2][0]\" is not in the file"));
    bad = JX_TUPLE(JX_LIST(JX_TUPLE(W, b), JX_TUPLE(fixture_named("f8_r4"), fixture_named("b1_e"))));
    CHECK(err_has(jx_load(p, bad), "the file has 5 arrays, `like` has 4 leaves"));
    CHECK(err_has(jx_load(p, W), "leaf \"\" is not in the file"));
  }
  /* a bare array is the leaf "" */
  CHECK(jx_save(tmp("one.npz"), W) == NULL);
  CHECK(same(jx_load(tmp("one.npz"), W), W));
  /* what cannot be saved */
  CHECK(err_has(jx_save(tmp("ck.txt"), tree), "must end in .npz or .safetensors"));
  CHECK(err_has(jx_load(tmp("ck.txt"), tree), "must end in .npz or .safetensors"));
  CHECK(err_has(jx_save(tmp("x.npz"), JX_TUPLE(W, NULL)), "null"));
  jx_t err = jx_error_new("earlier failure");
  CHECK(jx_save(tmp("x.npz"), JX_TUPLE(W, err)) == err);
  CHECK(jx_save(tmp("x.npz"), err) == err && jx_load(tmp("ck.npz"), err) == err);
  CHECK(access(tmp("x.npz"), F_OK) != 0);
  jx_pool_pop();
}

static int count_files(void) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  if (d) closedir(d);
  return n;
}

/* a save that fails part-way leaves the old file as it was, and no temporary */
static void test_atomic(void) {
  jx_pool_push();
  jx_t a = JX_TUPLE(fixture_named("f4_r2"), fixture_named("i4_r1")),
       b = JX_TUPLE(jx_neg(fixture_named("f4_r2")), fixture_named("i4_r1"));
  const char *files[] = {"at.npz", "at.safetensors"};
  for (int f = 0; f < 2; f++) {
    const char *p = tmp(files[f]);
    CHECK(jx_save(p, a) == NULL);
    int before = count_files();
    struct stat st;
    CHECK(stat(p, &st) == 0 && st.st_size > 100);
    for (int64_t cut = 0; cut < (int64_t)st.st_size; cut += 37) {
      jx_io_test_fail_after = cut;
      CHECK(err_has(jx_save(p, b), "No space left on device"));
      jx_io_test_fail_after = -1;
      jx_t back = jx_load(p, a);
      CHECK(same(jx_at(back, 0), fixture_named("f4_r2")));
      CHECK(count_files() == before);
    }
    CHECK(jx_save(p, b) == NULL);
    CHECK(same(jx_at(jx_load(p, a), 0), jx_at(b, 0)));
  }
  jx_io_test_fail_after = 10;
  CHECK(err_has(jx_npy_save(tmp("at.npy"), fixture_named("f4_r2")), "No space"));
  jx_io_test_fail_after = -1;
  CHECK(access(tmp("at.npy"), F_OK) != 0);
  /* a directory that does not exist */
  CHECK(err_has(jx_save(tmp("nodir/x.npz"), a), "cannot create a temporary file"));
  jx_pool_pop();
}

static void test_null_args(void) {
  jx_pool_push();
  jx_t x = fixture_named("f4_r2");
  const char *nm[] = {"a", "b"};
  jx_t two[] = {x, x};
  CHECK(err_has(jx_npy_save(NULL, x), "path is NULL"));
  CHECK(err_has(jx_npy_save(tmp("n.npy"), NULL), "the array is NULL"));
  CHECK(err_has(jx_npy_save(tmp("n.npy"), JX_TUPLE(x)), "a tree, not an array"));
  CHECK(err_has(jx_npy_load(NULL), "path is NULL"));
  CHECK(err_has(jx_npz_save(NULL, 1, nm, two), "path is NULL"));
  CHECK(err_has(jx_npz_save(tmp("n.npz"), 1, NULL, two), "names or arrays is NULL"));
  CHECK(err_has(jx_npz_save(tmp("n.npz"), 1, nm, NULL), "names or arrays is NULL"));
  CHECK(err_has(jx_npz_save(tmp("n.npz"), -1, nm, two), "negative"));
  CHECK(err_has(jx_npz_save(tmp("n.npz"), 2, (const char *[]){"a", NULL}, two), "name 1 is NULL"));
  CHECK(err_has(jx_npz_save(tmp("n.npz"), 2, (const char *[]){"a", "a"}, two), "appears twice"));
  CHECK(err_has(jx_npz_save(tmp("n.npz"), 2, nm, (jx_t[]){x, NULL}), "array 1 is NULL"));
  char **names = (char **)1;
  CHECK(err_has(jx_npz_load(NULL, &names), "path is NULL") && names == NULL);
  CHECK(err_has(jx_safetensors_save(NULL, 1, nm, two), "path is NULL"));
  CHECK(err_has(jx_safetensors_save(tmp("n.safetensors"), 1, (const char *[]){"__metadata__"}, two),
                "reserved"));
  CHECK(err_has(jx_safetensors_save(tmp("n.safetensors"), 1, (const char *[]){"\xff"}, two), "UTF-8"));
  CHECK(err_has(jx_safetensors_load(NULL, NULL), "path is NULL"));
  CHECK(err_has(jx_save(NULL, x), "path is NULL") && err_has(jx_save(tmp("n.npz"), NULL), "tree is NULL"));
  CHECK(err_has(jx_load(NULL, x), "path is NULL") && err_has(jx_load(tmp("n.npz"), NULL), "`like` is NULL"));
  CHECK(count_files() > 0 && access(tmp("n.npz"), F_OK) != 0 && access(tmp("n.safetensors"), F_OK) != 0);
  jx_pool_pop();
}

/* random corruption of small good files: error values or arrays, never a
 * crash (ASan/UBSan runs of this test make it a small fuzzer) */
static void test_corruption_fuzz(void) {
  const char *files[] = {"g.npy", "g.npz", "gz.npz", "g.safetensors"};
  loader loads[] = {load_npy, load_npz, load_npz, load_st};
  const char *cut[] = {"f.npy", "f.npz", "f.npz", "f.safetensors"};
  uint64_t s = 0x9e3779b97f4a7c15ull;
  for (int f = 0; f < 4; f++) {
    size_t n;
    uint8_t *raw = slurp(tmp(files[f]), &n);
    if (!raw) continue;
    int loaded = 0;
    for (int it = 0; it < 1500; it++) {
      uint8_t *c = malloc(n);
      memcpy(c, raw, n);
      for (int k = 0; k < 1 + it % 4; k++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        c[(s >> 33) % n] = (uint8_t)(s >> 13);
      }
      spit(tmp(cut[f]), c, n);
      free(c);
      jx_pool_push();
      loaded += jx_ok(loads[f](tmp(cut[f])));
      jx_pool_pop();
    }
    free(raw);
    CHECKF(loaded < 1500, "%s: %d of 1500 corruptions loaded", files[f], loaded);
  }
}

/* NumPy (and PyTorch, when installed) read jx's files back */
static void test_numpy_readback(void) {
  jx_pool_push();
  jx_io_test_force_zip64 = true;
  CHECK(jx_npz_save(tmp("zip64.npz"), NFIX, fix_name_p, fix_arrays) == NULL);
  jx_io_test_force_zip64 = false;
  CHECK(jx_npz_save(tmp("stored.npz"), NFIX, fix_name_p, fix_arrays) == NULL);
  CHECK(!have_zlib || jx_npz_save_compressed(tmp("compressed.npz"), NFIX, fix_name_p, fix_arrays) == NULL);
  CHECK(jx_safetensors_save(tmp("t.safetensors"), NFIX, fix_name_p, fix_arrays) == NULL);
  CHECK(jx_npy_save(tmp("x.npy"), fixture_named("f8_r3")) == NULL);
  CHECK(jx_save(tmp("tree.npz"), JX_TUPLE(JX_TUPLE(fixture_named("b1_r1"), fixture_named("i4_r2")),
                                          fixture_named("f4_r0"))) == NULL);
  jx_pool_pop();
  if (!have_zlib) {
    printf("test_io: built without zlib: NumPy read-back skipped\n");
    return;
  }
  const char *py = NULL;
  if (system("python3 -c 'import numpy' 2>/dev/null") == 0)
    py = "python3";
  else if (system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") == 0)
    py = "/usr/bin/python3";
  if (!py) {
    printf("test_io: python3-numpy not installed: NumPy read-back skipped\n");
    return;
  }
  char cmd[512];
  snprintf(cmd, sizeof cmd, "%s golden/io_readback.py %s", py, dir);
  CHECKF(system(cmd) == 0, "%s", cmd);
}

static void remove_dir(void) {
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  if (d) closedir(d);
  rmdir(dir);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/jx-io-XXXXXX");
  if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
  make_fixtures();
  jx_pool_push();
  have_zlib = jx_npz_save_compressed(tmp("probe.npz"), 1, fix_name_p, fix_arrays) == NULL;
  jx_pool_pop();
  printf("test_io: zlib %s\n", have_zlib ? "built in" : "not built in (deflated members are refused)");
  test_npy_roundtrip();
  test_npz_roundtrip();
  test_safetensors_roundtrip();
  test_numpy_fixtures();
  test_zip64();
  test_truncated();
  /* the safetensors tests again with the other reader (the own one when
   * cJSON is built in: both stay checked) */
  jx_pool_push();
  reader_cjson = jx_ok(st_with("{" T("a", "[2.0]", "[0,8]") "}", 8)); /* only cJSON reads 2.0 */
  jx_pool_pop();
  printf("test_io: .safetensors headers read by %s\n", reader_cjson ? "cJSON" : "jx's own JSON reader");
  test_bad_safetensors();
  if (reader_cjson) {
    test_readers_agree();
    jx_safetensors_force_reader(1);
    reader_cjson = false;
    test_safetensors_roundtrip();
    test_numpy_fixtures();
    test_bad_safetensors();
    jx_safetensors_force_reader(0);
    reader_cjson = true;
  }
  test_bad_npy();
  test_bad_zip();
  test_checkpoint();
  test_atomic();
  test_null_args();
  test_corruption_fuzz();
  test_numpy_readback();
  for (int i = 0; i < NFIX; i++) jx_release(fix_arrays[i]);
  remove_dir();
  return check_report("test_io");
}
