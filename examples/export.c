/* Export the letter classifier as dependency-free C (jx_export_c):
 *
 *   export --params P.npz --data DIR --out OUT
 *
 * loads the parameters `letters`/`make demo` trained (P.npz, with the
 * input normalization), exports predict on one 36x36 image -- raw pixels
 * in, the normalization and the tanh MLP inside, 26 logits out, the
 * weights embedded -- as OUT/letters_model.c and OUT/letters_model.h, and
 * writes the first test image of DIR (the rendered IDX files) as
 * OUT/glyph.pgm with its true letter on stdout. examples/classify/classify.c
 * (no jx) then builds against the two files and classifies the PGM; `make
 * demo` does both. */
#include <jx.h>

#include "letters.h"

#include <stdio.h>
#include <string.h>

typedef struct {
  jx_t params;
  float norm[2]; /* mean, std of pixel/255 */
} model;

/* pixels f32[1, 1296] (0..255) -> logits f32[1, 26] */
static jx_t predict_pixels(const jx_t *a, void *u) {
  const model *m = (const model *)u;
  jx_t x = jx_div(jx_sub(jx_div(a[0], jx_scalar(255)), jx_scalar(m->norm[0])), jx_scalar(m->norm[1]));
  return lt_predict(m->params, x);
}

static int write_pgm(const char *path, const uint8_t *img, int rows, int cols) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  fprintf(f, "P5\n%d %d\n255\n", cols, rows);
  size_t n = (size_t)rows * (size_t)cols;
  int rc = fwrite(img, 1, n, f) == n ? 0 : -1;
  return fclose(f) || rc ? -1 : 0;
}

int main(int argc, char **argv) {
  const char *params = NULL, *data = NULL, *out = ".";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--params")) params = argv[i + 1];
    if (!strcmp(argv[i], "--data")) data = argv[i + 1];
    if (!strcmp(argv[i], "--out")) out = argv[i + 1];
  }
  if (!params || !data) {
    fprintf(stderr,
            "usage: export --params P.npz --data DIR [--out DIR] (make demo trains and writes both)\n");
    return 2;
  }
  lt_err e = {{0}};
  model m = {.norm = {0, 1}};
  char ti[1024], tl[1024], xi[1024], xl[1024], path[2048];
  lt_data test = {0};
  if (lt_npz_load(params, &m.params, m.norm, &e) || lt_idx_find(data, ti, tl, xi, xl, sizeof ti, &e) ||
      lt_idx_load_pair(xi, xl, &test, &e)) {
    fprintf(stderr, "export: %s\n", e.msg);
    return 1;
  }
  int D = test.rows * test.cols;
  jx_fn *f = jx_fn_new(predict_pixels, 1, &m);
  jx_t x = jx_zeros(JX_F32, JX_SHAPE(1, D));
  jx_t err = jx_export_c(f, &x, "letters_model", out);
  if (err) {
    fprintf(stderr, "%s\n", jx_error(err));
    return 1;
  }
  snprintf(path, sizeof path, "%s/glyph.pgm", out);
  if (write_pgm(path, test.images, test.rows, test.cols)) {
    fprintf(stderr, "export: cannot write %s\n", path);
    return 1;
  }
  printf("exported predict to %s/letters_model.c and .h; %s is a '%c'\n", out, path, 'a' + test.labels[0]);
  jx_fn_free(f);
  lt_data_free(&test);
  return 0;
}
