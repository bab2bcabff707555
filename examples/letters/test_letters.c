/* Tests of the letter classifier's pieces (ctest: test_letters):
 *   - IDX: write/read round trip, gzip (when zlib and gzip are there),
 *     corrupt and truncated files, label/image count mismatch, finding sets
 *   - npz: the zip container and .npy headers checked byte by byte (what
 *     numpy.load relies on), the load round trip, a corrupted file
 *   - the rendered data set (when FreeType and fonts are there): counts,
 *     labels, the split by family
 *   - a tiny training run (Adam and SGD, and DP-SGD clipping) on a
 *     synthetic set: held-out accuracy must rise well above chance
 *   - the program on bad input: clear message, exit status 1 (2 for a bad
 *     command line), nothing left in the output folder
 * usage: test_letters [path/to/letters]   (the binary tests are skipped without it) */
#include "letters.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp[256];

static char *path(const char *name) {
  static char buf[8][512];
  static int k;
  char *b = buf[k++ % 8];
  snprintf(b, 512, "%s/%s", tmp, name);
  return b;
}

static void write_bytes(const char *p, const void *data, size_t n) {
  FILE *f = fopen(p, "wb");
  fwrite(data, 1, n, f);
  fclose(f);
}

static size_t file_size(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 ? (size_t)st.st_size : 0;
}

static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t crc32_ref(const uint8_t *p, size_t n) { /* bitwise, independent of npz.c's table */
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
  }
  return ~c;
}

/* ------------------------------------------------------------------ IDX */
static void test_idx(void) {
  lt_err e;
  lt_data d = {.n = 5, .rows = 3, .cols = 4};
  d.images = malloc(60), d.labels = malloc(5);
  for (int i = 0; i < 60; i++) d.images[i] = (uint8_t)(i * 7);
  for (int i = 0; i < 5; i++) d.labels[i] = (uint8_t)i;
  CHECK(lt_idx_save_pair(path("train-images-idx3-ubyte"), path("train-labels-idx1-ubyte"), &d, &e) == 0);
  CHECK(file_size(path("train-images-idx3-ubyte")) == 16 + 60);
  lt_data r;
  CHECKF(lt_idx_load_pair(path("train-images-idx3-ubyte"), path("train-labels-idx1-ubyte"), &r, &e) == 0,
         "%s", e.msg);
  CHECK(r.n == 5 && r.rows == 3 && r.cols == 4);
  CHECK(r.images && memcmp(r.images, d.images, 60) == 0 && memcmp(r.labels, d.labels, 5) == 0);
  CHECK(lt_data_classes(&r) == 5);
  lt_data_free(&r);

  /* gzip: the same set, compressed by the gzip tool */
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "gzip -c '%s' > '%s' 2>/dev/null && gzip -c '%s' > '%s' 2>/dev/null",
           path("train-images-idx3-ubyte"), path("gz-images-idx3-ubyte.gz"), path("train-labels-idx1-ubyte"),
           path("gz-labels-idx1-ubyte.gz"));
  if (system(cmd) == 0) {
    int rc = lt_idx_load_pair(path("gz-images-idx3-ubyte.gz"), path("gz-labels-idx1-ubyte.gz"), &r, &e);
    if (lt_have_zlib()) {
      CHECKF(rc == 0 && r.n == 5 && memcmp(r.images, d.images, 60) == 0, "%s", e.msg);
      lt_data_free(&r);
      /* truncated gzip stream */
      size_t n = file_size(path("gz-images-idx3-ubyte.gz"));
      CHECK(truncate(path("gz-images-idx3-ubyte.gz"), (off_t)(n - 6)) == 0);
      CHECK(lt_idx_load_pair(path("gz-images-idx3-ubyte.gz"), path("gz-labels-idx1-ubyte.gz"), &r, &e) != 0);
      CHECKF(strstr(e.msg, "gzip") || strstr(e.msg, "corrupt"), "%s", e.msg);
    } else {
      CHECKF(rc != 0 && strstr(e.msg, "zlib"), "%s", e.msg);
    }
    unlink(path("gz-images-idx3-ubyte.gz")), unlink(path("gz-labels-idx1-ubyte.gz"));
  }

  /* corrupt files */
  int nd;
  int64_t dims[4];
  uint8_t *data = NULL;
  write_bytes(path("bad"), "\x00\x00\x08\x03\x00\x00\x00\x05\x00\x00\x00\x03\x00\x00\x00\x04xyz", 19);
  CHECK(lt_idx_read(path("bad"), &nd, dims, &data, &e) != 0);
  CHECKF(strstr(e.msg, "corrupt") && strstr(e.msg, "60"), "%s", e.msg);
  write_bytes(path("bad"), "P5\n3 4\n255\n", 11);
  CHECK(lt_idx_read(path("bad"), &nd, dims, &data, &e) != 0);
  CHECKF(strstr(e.msg, "not an IDX file"), "%s", e.msg);
  write_bytes(path("bad"), "\x00\x00\x0d\x01\x00\x00\x00\x01\x00\x00\x00\x00", 12);
  CHECK(lt_idx_read(path("bad"), &nd, dims, &data, &e) != 0);
  CHECKF(strstr(e.msg, "0x0d"), "%s", e.msg);
  write_bytes(path("bad"), "", 0);
  CHECK(lt_idx_read(path("bad"), &nd, dims, &data, &e) != 0);
  CHECK(lt_idx_read(path("missing"), &nd, dims, &data, &e) != 0);
  CHECKF(strstr(e.msg, "missing") && strstr(e.msg, "No such file"), "%s", e.msg);
  /* labels that do not match the images */
  CHECK(lt_idx_write(path("few-labels"), 1, (int64_t[]){4}, d.labels, &e) == 0);
  CHECK(lt_idx_load_pair(path("train-images-idx3-ubyte"), path("few-labels"), &r, &e) != 0);
  CHECKF(strstr(e.msg, "4 labels") && strstr(e.msg, "5 images"), "%s", e.msg);
  CHECK(lt_idx_load_pair(path("train-labels-idx1-ubyte"), path("train-labels-idx1-ubyte"), &r, &e) != 0);
  CHECKF(strstr(e.msg, "rank-1"), "%s", e.msg);
  unlink(path("bad")), unlink(path("few-labels"));

  /* finding a set in a folder */
  char a[512], b[512], c[512], dd[512];
  CHECK(lt_idx_find(tmp, a, b, c, dd, sizeof a, &e) != 0);
  CHECKF(strstr(e.msg, "no test images"), "%s", e.msg);
  CHECK(lt_idx_save_pair(path("t10k-images-idx3-ubyte"), path("t10k-labels-idx1-ubyte"), &d, &e) == 0);
  CHECKF(lt_idx_find(tmp, a, b, c, dd, sizeof a, &e) == 0, "%s", e.msg);
  CHECK(strstr(a, "train-images") && strstr(b, "train-labels") && strstr(c, "t10k-images") &&
        strstr(dd, "t10k-labels"));
  /* two sets in one folder: ambiguous unless a prefix picks one */
  CHECK(lt_idx_save_pair(path("other-train-images-idx3-ubyte"), path("other-train-labels-idx1-ubyte"), &d,
                         &e) == 0);
  CHECK(lt_idx_save_pair(path("other-test-images-idx3-ubyte"), path("other-test-labels-idx1-ubyte"), &d,
                         &e) == 0);
  CHECK(lt_idx_find(tmp, a, b, c, dd, sizeof a, &e) != 0);
  CHECKF(strstr(e.msg, "prefix") && strstr(e.msg, "other"), "%s", e.msg);
  CHECKF(lt_idx_find(path("other"), a, b, c, dd, sizeof a, &e) == 0 && strstr(c, "other-test-images"), "%s",
         e.msg);
  const char *others[4] = {"other-train-images-idx3-ubyte", "other-train-labels-idx1-ubyte",
                           "other-test-images-idx3-ubyte", "other-test-labels-idx1-ubyte"};
  for (int i = 0; i < 4; i++) unlink(path(others[i]));
  lt_data_free(&d);
  /* no temporary files left behind by the atomic writes */
  char cmd2[600];
  snprintf(cmd2, sizeof cmd2, "ls '%s' | grep -q '\\.tmp\\.'", tmp);
  CHECK(system(cmd2) != 0);
}

/* ------------------------------------------------------------------ npz */
static void test_npz(void) {
  lt_err e;
  jx_pool_push();
  float w0[6] = {1, 2, 3, 4, 5, 6}, b0[3] = {-1, 0, 1}, w1[3] = {0.5f, 0.25f, 0.125f}, b1[1] = {7};
  jx_t params = JX_LIST(JX_TUPLE(jx_array(JX_F32, JX_SHAPE(2, 3), w0), jx_array(JX_F32, JX_SHAPE(3), b0)),
                        JX_TUPLE(jx_array(JX_F32, JX_SHAPE(3, 1), w1), jx_array(JX_F32, JX_SHAPE(1), b1)));
  float norm[2] = {0.25f, 0.5f};
  CHECKF(lt_npz_save(path("p.npz"), params, norm, &e) == 0, "%s", e.msg);

  /* the container, byte by byte */
  size_t n = file_size(path("p.npz"));
  uint8_t *z = malloc(n);
  FILE *f = fopen(path("p.npz"), "rb");
  CHECK(f && fread(z, 1, n, f) == n);
  if (f) fclose(f);
  CHECK(n > 22 && rd32(z + n - 22) == 0x06054b50); /* end of central directory, no comment */
  uint32_t entries = rd16(z + n - 22 + 10), cd_size = rd32(z + n - 22 + 12), cd_off = rd32(z + n - 22 + 16);
  CHECK(entries == 5 && cd_off + cd_size == n - 22);
  const char *want[5] = {"W0.npy", "b0.npy", "W1.npy", "b1.npy", "input_norm.npy"};
  const char *shape[5] = {"(2, 3)", "(3,)", "(3, 1)", "(1,)", "(2,)"};
  const float *vals[5] = {w0, b0, w1, b1, norm};
  int counts[5] = {6, 3, 3, 1, 2};
  const uint8_t *c = z + cd_off;
  for (uint32_t k = 0; k < entries && k < 5; k++) {
    CHECK(rd32(c) == 0x02014b50 && rd16(c + 10) == 0); /* stored */
    uint32_t crc = rd32(c + 16), size = rd32(c + 20), nlen = rd16(c + 28), loff = rd32(c + 42);
    CHECK(rd32(c + 24) == size);
    CHECK(nlen == strlen(want[k]) && memcmp(c + 46, want[k], nlen) == 0);
    const uint8_t *l = z + loff;
    CHECK(rd32(l) == 0x04034b50 && rd32(l + 14) == crc && rd32(l + 18) == size && rd16(l + 26) == nlen);
    const uint8_t *npy = l + 30 + nlen + rd16(l + 28);
    CHECK(crc32_ref(npy, size) == crc);
    CHECK(memcmp(npy, "\x93NUMPY\x01\x00", 8) == 0);
    uint32_t hl = rd16(npy + 8);
    CHECK((10 + hl) % 64 == 0 && npy[10 + hl - 1] == '\n');
    char hdr[256];
    snprintf(hdr, sizeof hdr, "%.*s", (int)hl, (const char *)npy + 10);
    CHECKF(strstr(hdr, "'descr': '<f4'") && strstr(hdr, "'fortran_order': False") && strstr(hdr, shape[k]),
           "%s", hdr);
    CHECK(size == 10 + hl + 4 * (uint32_t)counts[k] &&
          memcmp(npy + 10 + hl, vals[k], 4 * (size_t)counts[k]) == 0);
    c += 46 + nlen + rd16(c + 30) + rd16(c + 32);
  }

  /* load it back */
  jx_t back = NULL;
  float nb[2] = {0, 0};
  CHECKF(lt_npz_load(path("p.npz"), &back, nb, &e) == 0, "%s", e.msg);
  CHECK(back && jx_len(back) == 2 && nb[0] == 0.25f && nb[1] == 0.5f);
  if (back && jx_len(back) == 2) {
    float got[6];
    CHECK(jx_read(jx_at(jx_at(back, 0), 0), JX_F32, got, sizeof got) == 0 && memcmp(got, w0, sizeof w0) == 0);
    CHECK(jx_ndim(jx_at(jx_at(back, 1), 0)) == 2 && jx_shape(jx_at(jx_at(back, 1), 0))[1] == 1);
  }
  /* a flipped byte in the data: the CRC catches it */
  z[rd32(z + cd_off + 42) + 30 + 6 + 80] ^= 0x40;
  write_bytes(path("bad.npz"), z, n);
  CHECK(lt_npz_load(path("bad.npz"), &back, NULL, &e) != 0);
  CHECKF(strstr(e.msg, "CRC"), "%s", e.msg);
  write_bytes(path("bad.npz"), "not a zip file at all, just text, long enough to scan", 52);
  CHECK(lt_npz_load(path("bad.npz"), &back, NULL, &e) != 0);
  CHECKF(strstr(e.msg, "not a zip"), "%s", e.msg);
  free(z);
  unlink(path("p.npz")), unlink(path("bad.npz"));
  jx_pool_pop();
}

/* ------------------------------------------------------ rendered letters */
static void test_glyphs(void) {
  if (!lt_have_freetype()) {
    printf("  (FreeType not built in: rendering skipped)\n");
    return;
  }
  lt_glyph_opts o = {.font_dirs = "/usr/share/fonts/truetype:/usr/share/fonts/opentype",
                     .train_per_font = 2,
                     .test_per_font = 1,
                     .seed = 7,
                     .size = 36,
                     .threads = 2};
  lt_err e;
  char *m = NULL;
  if (lt_glyph_manifest(&o, &m, &e) != 0) {
    printf("  (no usable fonts: rendering skipped: %s)\n", e.msg);
    return;
  }
  CHECK(strstr(m, "train families: ") && strstr(m, "test families: "));
  free(m);
  lt_data tr, te;
  CHECKF(lt_glyph_generate(&o, &tr, &te, &e) == 0, "%s", e.msg);
  CHECK(tr.n > 0 && te.n > 0 && tr.n % 52 == 0 && te.n % 26 == 0 && tr.rows == 36 && te.cols == 36);
  CHECK(lt_data_classes(&tr) == 26 && lt_data_classes(&te) == 26);
  /* every image has some ink and some background */
  int blank = 0;
  for (int64_t i = 0; i < te.n; i++) {
    int lo = 255, hi = 0;
    for (int k = 0; k < 36 * 36; k++) {
      int v = te.images[i * 1296 + k];
      lo = v < lo ? v : lo, hi = v > hi ? v : hi;
    }
    blank += hi - lo < 100;
  }
  CHECK(blank == 0);
  /* deterministic: the same seed gives the same images */
  lt_data tr2, te2;
  o.threads = 1;
  CHECK(lt_glyph_generate(&o, &tr2, &te2, &e) == 0);
  CHECK(tr2.n == tr.n && memcmp(tr2.images, tr.images, (size_t)tr.n * 1296) == 0);
  lt_data_free(&tr2), lt_data_free(&te2);
  lt_data_free(&tr), lt_data_free(&te);
  o.test_families = "No Such Family";
  CHECK(lt_glyph_generate(&o, &tr, &te, &e) != 0);
  CHECKF(strstr(e.msg, "No Such Family") && strstr(e.msg, "found:"), "%s", e.msg);
  o.test_families = NULL;
  o.font_dirs = tmp; /* no fonts here */
  CHECK(lt_glyph_generate(&o, &tr, &te, &e) != 0);
  CHECKF(strstr(e.msg, "no fonts found"), "%s", e.msg);
}

/* ------------------------------------------------------------ training */

/* 4 classes of 8x8 images: a bright bar in one of four places, plus noise */
static lt_data synthetic(int n, uint32_t seed) {
  lt_data d = {.n = n, .rows = 8, .cols = 8};
  d.images = malloc((size_t)n * 64), d.labels = malloc((size_t)n);
  uint32_t s = seed;
  for (int i = 0; i < n; i++) {
    int c = i % 4;
    d.labels[i] = (uint8_t)c;
    for (int k = 0; k < 64; k++) {
      s = s * 1664525u + 1013904223u;
      int r = k / 8, col = k % 8;
      bool on = c == 0 ? r == 2 : c == 1 ? r == 5 : c == 2 ? col == 2 : col == 5;
      int v = (on ? 160 : 0) + (int)(s >> 26);
      d.images[i * 64 + k] = (uint8_t)(v > 255 ? 255 : v);
    }
  }
  return d;
}

static void test_training(void) {
  lt_data tr = synthetic(512, 1), te = synthetic(128, 2);
  lt_err e;
  int hidden[1] = {16};
  /* adam with shifts, sgd, adam with DP-SGD, adam in bf16 mixed precision */
  const char *opts[4] = {"adam", "sgd", "adam", "adam"};
  for (int k = 0; k < 4; k++) {
    lt_train_opts o = {.epochs = 3,
                       .batch = 32,
                       .hidden = hidden,
                       .nhidden = 1,
                       .opt = opts[k],
                       .lr = k == 1 ? 0.1 : 0.01,
                       .momentum = 0.9,
                       .seed = 3,
                       .quiet = true,
                       .shift = k == 0 ? 1 : 0,
                       .dp_clip = k == 2 ? 1.0 : 0,
                       .dp_noise = k == 2 ? 0.1 : 0,
                       .bf16 = k == 3};
    /* accuracy of the initial parameters */
    jx_pool_push();
    int sizes[3] = {64, 16, 4};
    jx_t p0 = lt_init_params(jx_random_key(3), 2, sizes);
    double before = lt_evaluate(p0, &te, 0.2f, 0.3f, 4, NULL);
    jx_pool_pop();
    lt_result r;
    int rc = lt_train(&tr, &te, &o, NULL, &r, &e);
    CHECKF(rc == 0, "%s: %s", opts[k], e.msg);
    if (rc) continue;
    CHECKF(r.test_accuracy > 0.9 && r.test_accuracy > before + 0.3, "%s%s: before %.3f after %.3f", opts[k],
           k == 2   ? " + dp-clip"
           : k == 3 ? " in bf16"
                    : "",
           before, r.test_accuracy);
    if (k == 3) /* mixed precision keeps f32 master weights */
      for (int l = 0; l < jx_len(r.params); l++)
        CHECK(jx_dtype_of(jx_at(jx_at(r.params, l), 0)) == JX_F32 &&
              jx_dtype_of(jx_at(jx_at(r.params, l), 1)) == JX_F32);
    CHECK(r.epochs == 3 && r.loss[2] < r.loss[0]);
    int64_t total = 0;
    for (int i = 0; i < 16; i++) total += r.confusion[i];
    CHECK(total == te.n);
    if (k == 0) { /* the plot, and saved params evaluate the same after loading */
      CHECK(lt_plot_svg(path("c.svg"), &r, "test <&>", &e) == 0 && file_size(path("c.svg")) > 500);
      float norm[2] = {r.mean, r.stdv}, nb[2];
      CHECK(lt_npz_save(path("t.npz"), r.params, norm, &e) == 0);
      jx_pool_push();
      jx_t back;
      CHECK(lt_npz_load(path("t.npz"), &back, nb, &e) == 0);
      CHECK_CLOSE(lt_evaluate(back, &te, nb[0], nb[1], 4, NULL), r.test_accuracy, 0, 1e-12);
      jx_pool_pop();
      unlink(path("c.svg")), unlink(path("t.npz"));
    }
    lt_result_free(&r);
  }
  /* a test set whose images have another size */
  lt_data odd = {.n = 4, .rows = 4, .cols = 16, .images = te.images, .labels = te.labels};
  lt_train_opts o = {
      .epochs = 1, .batch = 32, .hidden = hidden, .nhidden = 1, .opt = "adam", .lr = 0.01, .quiet = true};
  lt_result r;
  CHECK(lt_train(&tr, &odd, &o, NULL, &r, &e) != 0);
  CHECKF(strstr(e.msg, "wrong image size"), "%s", e.msg);
  lt_data_free(&tr), lt_data_free(&te);
}

/* data parallel over 2 in-process devices (jx_pmap, pmean'd gradients)
 * ends where one device does with the same global batch and seed */
static double max_rel_diff(jx_t a, jx_t b) {
  jx_pool_push();
  jx_t la = jx_tree_leaves(a), lb = jx_tree_leaves(b);
  double worst = jx_len(la) == jx_len(lb) ? 0 : 1e300;
  for (int i = 0; i < jx_len(la) && i < jx_len(lb); i++) {
    jx_t x = jx_astype(jx_at(la, i), JX_F64), y = jx_astype(jx_at(lb, i), JX_F64);
    double d = jx_item(jx_max(jx_abs(jx_sub(x, y)))), s = jx_item(jx_max(jx_abs(y)));
    double r = d / (s > 0 ? s : 1);
    if (!(r <= worst)) worst = r; /* NaN counts as worst */
  }
  jx_pool_pop();
  return worst;
}

static void test_data_parallel(void) {
  lt_data tr = synthetic(256, 5), te = synthetic(64, 6);
  lt_err e;
  int hidden[1] = {16};
  lt_result r[2];
  for (int k = 0; k < 2; k++) {
    lt_train_opts o = {.epochs = 1,
                       .batch = 32,
                       .hidden = hidden,
                       .nhidden = 1,
                       .opt = "adam",
                       .lr = 0.01,
                       .seed = 7,
                       .quiet = true,
                       .devices = k ? 2 : 1};
    int rc = lt_train(&tr, &te, &o, NULL, &r[k], &e);
    CHECKF(rc == 0, "devices %d: %s", k + 1, e.msg);
    if (rc) {
      if (k) lt_result_free(&r[0]);
      lt_data_free(&tr), lt_data_free(&te);
      return;
    }
  }
  double d = max_rel_diff(r[1].params, r[0].params);
  printf("  2 devices vs 1 after one epoch: max relative parameter difference %.3g, accuracy %.4f vs %.4f\n",
         d, r[1].test_accuracy, r[0].test_accuracy);
  CHECKF(d <= 1e-5, "2 devices vs 1: parameters differ by %g (relative)", d);
  CHECK(r[1].test_accuracy == r[0].test_accuracy);
  lt_train_opts odd = {.epochs = 1,
                       .batch = 31,
                       .hidden = hidden,
                       .nhidden = 1,
                       .opt = "adam",
                       .lr = 0.01,
                       .quiet = true,
                       .devices = 2};
  lt_result rr;
  CHECK(lt_train(&tr, &te, &odd, NULL, &rr, &e) != 0);
  CHECKF(strstr(e.msg, "does not split evenly"), "%s", e.msg);
  lt_result_free(&r[0]), lt_result_free(&r[1]);
  jx_set_cpu_devices(0);
  lt_data_free(&tr), lt_data_free(&te);
}

/* ------------------------------------------------- the program, bad input */
static int run(const char *exe, const char *args, char *err, size_t cap) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s'", exe, args, path("stdout"), path("stderr"));
  int st = system(cmd);
  err[0] = 0;
  FILE *f = fopen(path("stderr"), "r");
  if (f) {
    size_t n = fread(err, 1, cap - 1, f);
    err[n] = 0;
    fclose(f);
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

static void test_program(const char *exe) {
  char err[4096], args[1024];
  lt_err e;
  char out[512];
  snprintf(out, sizeof out, "%s", path("out"));
  /* missing data folder */
  snprintf(args, sizeof args, "--data '%s' --out '%s'", path("nowhere/set"), out);
  CHECK(run(exe, args, err, sizeof err) == 1);
  CHECKF(strstr(err, "error") && strstr(err, "nowhere"), "%s", err);
  CHECK(!exists(out));
  /* a corrupt (truncated) IDX file */
  mkdir(path("set"), 0777);
  lt_data d = synthetic(64, 5);
  CHECK(lt_idx_save_pair(path("set/train-images-idx3-ubyte"), path("set/train-labels-idx1-ubyte"), &d, &e) ==
        0);
  CHECK(lt_idx_save_pair(path("set/t10k-images-idx3-ubyte"), path("set/t10k-labels-idx1-ubyte"), &d, &e) ==
        0);
  CHECK(truncate(path("set/train-images-idx3-ubyte"), 100) == 0);
  snprintf(args, sizeof args, "--data '%s' --out '%s'", path("set"), out);
  CHECK(run(exe, args, err, sizeof err) == 1);
  CHECKF(strstr(err, "corrupt") && strstr(err, "train-images"), "%s", err);
  CHECK(!exists(out));
  /* test images of another size than the training images */
  CHECK(lt_idx_save_pair(path("set/train-images-idx3-ubyte"), path("set/train-labels-idx1-ubyte"), &d, &e) ==
        0);
  lt_data wide = {.n = 16, .rows = 4, .cols = 16, .images = d.images, .labels = d.labels};
  CHECK(lt_idx_save_pair(path("set/t10k-images-idx3-ubyte"), path("set/t10k-labels-idx1-ubyte"), &wide, &e) ==
        0);
  CHECK(run(exe, args, err, sizeof err) == 1);
  CHECKF(strstr(err, "wrong image size") && strstr(err, "8x8") && strstr(err, "4x16"), "%s", err);
  CHECK(!exists(out));
  /* saved parameters for another image size */
  CHECK(lt_idx_save_pair(path("set/t10k-images-idx3-ubyte"), path("set/t10k-labels-idx1-ubyte"), &d, &e) ==
        0);
  jx_pool_push();
  jx_t p = lt_init_params(jx_random_key(0), 1, (int[]){1296, 4});
  CHECK(lt_npz_save(path("p36.npz"), p, NULL, &e) == 0);
  jx_pool_pop();
  snprintf(args, sizeof args, "--data '%s' --out '%s' --load '%s' --epochs 1 --batch 16", path("set"), out,
           path("p36.npz"));
  CHECK(run(exe, args, err, sizeof err) == 1);
  CHECKF(strstr(err, "wrong image size") && strstr(err, "1296"), "%s", err);
  CHECK(!exists(out));
  /* a corrupt .npz */
  write_bytes(path("junk.npz"), "PK\x03\x04 this is not really a zip archive .......................", 60);
  snprintf(args, sizeof args, "--data '%s' --out '%s' --load '%s'", path("set"), out, path("junk.npz"));
  CHECK(run(exe, args, err, sizeof err) == 1);
  CHECKF(strstr(err, "junk.npz"), "%s", err);
  CHECK(!exists(out));
  /* no fonts */
  mkdir(path("nofonts"), 0777);
  snprintf(args, sizeof args, "--fonts '%s' --out '%s'", path("nofonts"), out);
  CHECK(run(exe, args, err, sizeof err) == 1);
  CHECKF(strstr(err, lt_have_freetype() ? "no fonts found" : "FreeType"), "%s", err);
  CHECK(!exists(out));
  /* bad command lines */
  CHECK(run(exe, "--epochs many", err, sizeof err) == 2 && strstr(err, "--epochs"));
  CHECK(run(exe, "--frobnicate 1", err, sizeof err) == 2 && strstr(err, "unknown option"));
  CHECK(run(exe, "--help", err, sizeof err) == 0);
  /* and a good run: quick, on the small set; writes params and plot */
  snprintf(args, sizeof args, "--data '%s' --out '%s' --epochs 2 --batch 16 --hidden 8 --no-progress",
           path("set"), out);
  CHECKF(run(exe, args, err, sizeof err) == 0, "%s", err);
  CHECK(exists(path("out/params.npz")) && exists(path("out/curve.svg")));
  FILE *f = fopen(path("stdout"), "r");
  char text[8192] = "";
  if (f) {
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
  }
  CHECKF(strstr(text, "test accuracy: 0.") || strstr(text, "test accuracy: 1.0000"), "%s", text);
  CHECK(strstr(text, "most confused") != NULL);
  snprintf(args, sizeof args, "--data '%s' --out '%s' --load '%s' --epochs 0", path("set"), out,
           path("out/params.npz"));
  CHECKF(run(exe, args, err, sizeof err) == 0, "%s", err);
  lt_data_free(&d);
}

int main(int argc, char **argv) {
  snprintf(tmp, sizeof tmp, "/tmp/jx-test-letters-XXXXXX");
  if (!mkdtemp(tmp)) {
    perror("mkdtemp");
    return 1;
  }
  printf("idx\n");
  test_idx();
  printf("npz\n");
  test_npz();
  printf("glyphs\n");
  test_glyphs();
  printf("training\n");
  test_training();
  printf("data parallel\n");
  test_data_parallel();
  if (argc > 1) {
    printf("program: %s\n", argv[1]);
    test_program(argv[1]);
  } else {
    printf("program: skipped (no path given)\n");
  }
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
  return check_report("test_letters");
}
