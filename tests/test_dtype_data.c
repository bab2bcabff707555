/* #19's "data in its own dtype": jx_idx_load keeps an IDX file's dtype
 * (MNIST's u8 images stay u8, a quarter of f32's bytes; .gz inflated),
 * .npz keeps u8 too, and a jitted training step that converts u8 -> f32
 * inside (jx_astype in the traced function) computes exactly what the
 * same step computes on images converted outside. Bad files give error
 * values naming the loader, the file and the cause. */
#include "check.h"
#include "core/core.h"

#include <stdint.h>
#include <unistd.h>

static char dir[] = "/tmp/jx-idx-XXXXXX";

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

/* an IDX file: header (type, dims big-endian) then the body as given */
static void write_idx(const char *name, uint8_t type, int nd, const uint32_t *dims, const void *body,
                      size_t n) {
  char p[128];
  path_of(p, sizeof p, name);
  FILE *f = fopen(p, "wb");
  if (!f) return;
  uint8_t h[4] = {0, 0, type, (uint8_t)nd};
  fwrite(h, 1, 4, f);
  for (int d = 0; d < nd; d++) {
    uint8_t b[4] = {(uint8_t)(dims[d] >> 24), (uint8_t)(dims[d] >> 16), (uint8_t)(dims[d] >> 8),
                    (uint8_t)dims[d]};
    fwrite(b, 1, 4, f);
  }
  if (n) fwrite(body, 1, n, f);
  fclose(f);
}

static jx_t load(const char *name) {
  char p[128];
  path_of(p, sizeof p, name);
  return jx_idx_load(p);
}

enum { N = 6, H = 4, W = 5, C = 3 };
static uint8_t images[N * H * W], labels[N];

static void check_load(void) {
  jx_pool_push();
  for (int i = 0; i < N * H * W; i++) images[i] = (uint8_t)(i * 37 + 11);
  for (int i = 0; i < N; i++) labels[i] = (uint8_t)(i % C);
  write_idx("img", 0x08, 3, (uint32_t[]){N, H, W}, images, sizeof images);
  write_idx("lab", 0x08, 1, (uint32_t[]){N}, labels, sizeof labels);
  jx_t x = load("img"), y = load("lab");
  CHECKF(jx_ok(x) && jx_dtype_of(x) == JX_U8 && jx_ndim(x) == 3 && jx_shape(x)[0] == N && jx_shape(x)[2] == W,
         "u8 images: %s", jx_error(x));
  CHECK(jx_ok(x) && !memcmp(jx_data(x), images, sizeof images));
  CHECK(jx_ok(y) && jx_dtype_of(y) == JX_U8 && !memcmp(jx_data(y), labels, sizeof labels));
  /* multi-byte types are big-endian in the file */
  uint8_t be16[4] = {0xff, 0xfe, 0x01, 0x02}, bef[4] = {0x3f, 0xc0, 0x00, 0x00}; /* -2, 258; 1.5f */
  write_idx("i16", 0x0B, 1, (uint32_t[]){2}, be16, 4);
  write_idx("f32", 0x0D, 1, (uint32_t[]){1}, bef, 4);
  jx_t s = load("i16"), f = load("f32");
  CHECKF(jx_ok(s) && jx_dtype_of(s) == JX_I16 && ((int16_t *)jx_data(s))[0] == -2 &&
             ((int16_t *)jx_data(s))[1] == 258,
         "i16: %s", jx_error(s));
  CHECKF(jx_ok(f) && jx_dtype_of(f) == JX_F32 && ((float *)jx_data(f))[0] == 1.5f, "f32: %s", jx_error(f));
  /* gzipped, as the sets ship (when jx has zlib; otherwise a clear error) */
  char cmd[400], p[128];
  path_of(p, sizeof p, "img");
  snprintf(cmd, sizeof cmd, "gzip -c %s > %s.gz 2>/dev/null", p, p);
  if (system(cmd) == 0) {
    jx_t z = load("img.gz");
    if (jx_ok(z))
      CHECK(jx_dtype_of(z) == JX_U8 && jx_size(z) == N * H * W && !memcmp(jx_data(z), images, sizeof images));
    else
      EXPECT_ERROR(z, "jx_idx_load", "img.gz", "zlib");
    snprintf(cmd, sizeof cmd, "head -c 40 %s.gz > %s.cut.gz", p, p);
    if (jx_ok(z) && system(cmd) == 0) EXPECT_ERROR(load("img.cut.gz"), "jx_idx_load", "img.cut.gz", "gzip");
  }
  jx_pool_pop();
}

static void check_bad_files(void) {
  jx_pool_push();
  uint8_t junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  write_idx("short", 0x08, 2, (uint32_t[]){3, 4}, images, 11); /* 12 expected */
  write_idx("long", 0x08, 1, (uint32_t[]){3}, images, 4);
  write_idx("type", 0x0A, 1, (uint32_t[]){2}, junk, 2);
  write_idx("huge", 0x08, 3, (uint32_t[]){0xffffffffu, 0xffffffffu, 0xffffffffu}, junk, 8);
  write_idx("rank", 0x08, 9, (uint32_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, junk, 1);
  char p[128];
  path_of(p, sizeof p, "magic");
  FILE *f = fopen(p, "wb");
  if (f) fwrite(junk, 1, 8, f), fclose(f);
  EXPECT_ERROR(load("short"), "jx_idx_load", "short", "11 data bytes");
  EXPECT_ERROR(load("long"), "jx_idx_load", "long", "4 data bytes");
  EXPECT_ERROR(load("type"), "jx_idx_load", "type", "0x0a");
  EXPECT_ERROR(load("huge"), "jx_idx_load", "huge", "dims");
  EXPECT_ERROR(load("rank"), "jx_idx_load", "rank", "9 dims");
  EXPECT_ERROR(load("magic"), "jx_idx_load", "magic", "not an IDX file");
  EXPECT_ERROR(load("missing"), "jx_idx_load", "missing");
  EXPECT_ERROR(jx_idx_load(NULL), "jx_idx_load", "NULL");
  jx_pool_pop();
}

/* .npz keeps u8 as u8 on the way in as well */
static void check_npz(void) {
  jx_pool_push();
  char p[128];
  path_of(p, sizeof p, "d.npz");
  jx_t x = jx_array(JX_U8, JX_SHAPE(N, H, W), images);
  jx_t e = jx_npz_save(p, 1, (const char *const[]){"x"}, &x);
  CHECKF(!e, "%s", jx_error(e));
  jx_t back = jx_npz_load(p, NULL);
  CHECK(jx_ok(back) && jx_len(back) == 1 && jx_dtype_of(jx_at(back, 0)) == JX_U8 &&
        !memcmp(jx_data(jx_at(back, 0)), images, sizeof images));
  jx_pool_pop();
}

/* one SGD step of softmax regression: (w, images, labels) -> (w', loss);
 * images u8 (converted here, inside the jit) or already f32 */
static jx_t loss_fn(const jx_t *a, void *u) {
  (void)u;
  jx_t x = jx_div(jx_astype(a[1], JX_F32), jx_scalar(255.0));
  x = jx_reshape(x, JX_SHAPE(N, H * W));
  jx_t lp = jx_log_softmax(jx_matmul(x, a[0]), 1);
  return jx_neg(jx_mean(jx_mul(lp, jx_one_hot(a[2], C))));
}
static jx_fn *g_vg;
static jx_t step(const jx_t *a, void *u) {
  (void)u;
  jx_t vg = jx_call(g_vg, a);
  jx_t g = jx_at(vg, 1);
  return JX_TUPLE(jx_sub(a[0], jx_mul(g, jx_scalar(0.5))), jx_at(vg, 0));
}

static bool same_bits(jx_t a, jx_t b) {
  return jx_ok(a) && jx_ok(b) && jx_dtype_of(a) == jx_dtype_of(b) && jx_size(a) == jx_size(b) &&
         !memcmp(jx_data(a), jx_data(b), (size_t)jx_size(a) * jx_dtype_size(jx_dtype_of(a)));
}

static void check_train_step(void) {
  jx_pool_push();
  g_vg = jx_value_and_grad(jx_fn_new(loss_fn, 3, NULL), 0);
  jx_fn *js = jx_jit(jx_fn_new(step, 3, NULL));
  float wv[H * W * C];
  for (int i = 0; i < H * W * C; i++) wv[i] = (float)((i * 7) % 13 - 6) * 0.01f;
  jx_t w = jx_array(JX_F32, JX_SHAPE(H * W, C), wv), w2 = w;
  jx_t x8 = load("img"), y8 = load("lab");
  jx_t x32 = jx_astype(x8, JX_F32); /* converted outside */
  CHECK(jx_ok(x8) && jx_size(x8) * (int64_t)jx_dtype_size(jx_dtype_of(x8)) * 4 ==
                         jx_size(x32) * (int64_t)jx_dtype_size(JX_F32)); /* 4x less memory */
  for (int it = 0; it < 3; it++) { /* three steps, the weights fed back */
    jx_t r8 = jx_call(js, (jx_t[]){w, x8, y8}), r32 = jx_call(js, (jx_t[]){w2, x32, y8});
    CHECKF(jx_ok(r8) && jx_ok(r32), "step %d: %s / %s", it, jx_error(r8), jx_error(r32));
    if (!jx_ok(r8) || !jx_ok(r32)) break;
    CHECKF(same_bits(jx_at(r8, 0), jx_at(r32, 0)) && same_bits(jx_at(r8, 1), jx_at(r32, 1)),
           "step %d: converting u8 inside the jit differs from converting outside", it);
    jx_t eager = jx_call(jx_fn_new(step, 3, NULL), (jx_t[]){w, x8, y8});
    CHECKF(jx_ok(eager) && fabs(jx_item(jx_at(eager, 1)) - jx_item(jx_at(r8, 1))) <= 1e-6,
           "step %d: jit vs eager loss", it);
    w = jx_at(r8, 0), w2 = jx_at(r32, 0);
  }
  jx_pool_pop();
}

int main(void) {
  check_private_cache("dtype_data");
  CHECK(mkdtemp(dir) != NULL);
  check_load();
  check_bad_files();
  check_npz();
  check_train_step();
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
  check_private_cache_remove();
  return check_report("test_dtype_data");
}
