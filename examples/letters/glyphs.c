/* The data set, made on this machine: the 26 lowercase letters rendered
 * from the installed TrueType/OpenType fonts, each drawn many times with
 * random jitter, split by font family.
 *
 * Per font and letter, FreeType renders the glyph once, large (4x the
 * output resolution). We turn that bitmap into a signed distance field
 * (SDF: for every pixel, the distance to the glyph's outline, negative
 * inside). Every jittered copy then samples the SDF through a random
 * affine map (rotation, scale, shear, shift) and thresholds it:
 *
 *   ink = clamp(0.5 - (d - delta) / softness)
 *
 * where delta moves the threshold: delta > 0 dilates the strokes (bolder),
 * delta < 0 erodes them (thinner) -- morphology with a disk, which is what
 * thresholding a distance field is -- and softness sets the blur of the
 * edge (anti-aliasing). Then contrast and Gaussian noise, and the result is
 * quantized to u8 in a size x size image (ink bright on black, like MNIST).
 *
 * Split: a "family" is FreeType's family name (DejaVu Sans, DejaVu Serif,
 * Lato, ...). Families that share their first word (DejaVu Sans and DejaVu
 * Sans Mono) share a design, so the default split holds out whole groups
 * of families by first word: the test set is the last group in alphabetical
 * order (when there are 2-3 groups), or every fourth group counting back
 * from the last (4 or more); with a single group it falls back to holding
 * out the last family. --test-families overrides the rule. Test images
 * therefore come from typefaces never seen in training.
 *
 * The jitter has its own small generator (splitmix64, one stream per image,
 * so the result does not depend on the number of threads): this is data
 * generation, separate from the model's jx_random keys. */
#include "letters.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#ifdef LT_HAVE_FREETYPE
#include <ft2build.h>
#include FT_FREETYPE_H
#endif

#define NLETTERS 26
#define SS       4   /* supersampling of the rendered glyphs */
#define EM_FRAC  0.8 /* em size as a fraction of the output size */
#define MARGIN   16  /* hi-res pixels of empty border around each glyph */

bool lt_have_freetype(void) {
#ifdef LT_HAVE_FREETYPE
  return true;
#else
  return false;
#endif
}

#ifndef LT_HAVE_FREETYPE

static int no_freetype(lt_err *e) {
  return lt_fail(e, "rendering letters needs FreeType, and this program was built without it "
                    "(install libfreetype-dev and pkg-config, then re-run cmake), "
                    "or train on an existing MNIST-format set with --data DIR");
}
int lt_glyph_manifest(const lt_glyph_opts *o, char **manifest, lt_err *e) {
  (void)o;
  *manifest = NULL;
  return no_freetype(e);
}
int lt_glyph_generate(const lt_glyph_opts *o, lt_data *train, lt_data *test, lt_err *e) {
  (void)o;
  memset(train, 0, sizeof *train);
  memset(test, 0, sizeof *test);
  return no_freetype(e);
}

#else

/* ------------------------------------------------------ font discovery */

typedef struct {
  char *path;
  int face;
  char family[128], style[128];
  int group; /* index into the first-word groups */
  bool test;
} font_t;

typedef struct {
  font_t *v;
  int n, cap;
} fontlist;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int cmp_name(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

/* all font files under dir, recursively (paths appended to *files) */
static void walk(const char *dir, char ***files, int *n, int *cap, int depth) {
  if (depth > 8) return;
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *ent;
  while ((ent = readdir(d))) {
    if (ent->d_name[0] == '.') continue;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, ent->d_name) >= (int)sizeof path) continue;
    struct stat st;
    if (stat(path, &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      walk(path, files, n, cap, depth + 1);
      continue;
    }
    const char *dot = strrchr(ent->d_name, '.');
    if (!dot ||
        !(strcasecmp(dot, ".ttf") == 0 || strcasecmp(dot, ".otf") == 0 || strcasecmp(dot, ".ttc") == 0))
      continue;
    if (*n == *cap) {
      *cap = *cap ? *cap * 2 : 64;
      *files = realloc(*files, sizeof(char *) * (size_t)*cap);
    }
    (*files)[(*n)++] = strdup(path);
  }
  closedir(d);
}

static void fonts_free(fontlist *fl) {
  for (int i = 0; i < fl->n; i++) free(fl->v[i].path);
  free(fl->v);
  memset(fl, 0, sizeof *fl);
}

/* A usable face: scalable, with 26 distinct lowercase glyphs that have ink. */
static bool usable(FT_Face f) {
  if (!FT_IS_SCALABLE(f)) return false;
  FT_UInt idx[NLETTERS];
  for (int c = 0; c < NLETTERS; c++) {
    idx[c] = FT_Get_Char_Index(f, (FT_ULong)('a' + c));
    if (idx[c] == 0) return false;
    for (int k = 0; k < c; k++)
      if (idx[k] == idx[c]) return false;
  }
  if (FT_Set_Pixel_Sizes(f, 0, 32)) return false;
  for (int c = 0; c < NLETTERS; c++)
    if (FT_Load_Glyph(f, idx[c], FT_LOAD_NO_BITMAP) || f->glyph->outline.n_points == 0) return false;
  return true;
}

static int group_key(const char *family, char *out, size_t cap) {
  size_t k = strcspn(family, " -_");
  snprintf(out, cap, "%.*s", (int)k, family);
  return 0;
}

/* Scan the font folders, keep usable faces, and decide the split. */
static int scan_fonts(const lt_glyph_opts *o, fontlist *fl, lt_err *e) {
  memset(fl, 0, sizeof *fl);
  char **files = NULL;
  int nf = 0, capf = 0;
  char dirs[4096];
  snprintf(dirs, sizeof dirs, "%s", o->font_dirs);
  for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save))
    walk(d, &files, &nf, &capf, 0);
  if (nf == 0) {
    free(files);
    return lt_fail(e,
                   "no fonts found: no .ttf/.otf/.ttc files under %s (install fonts-dejavu-core and "
                   "fonts-lato, or point --fonts at a folder of fonts)",
                   o->font_dirs);
  }
  qsort(files, (size_t)nf, sizeof *files, cmp_str);
  FT_Library lib;
  if (FT_Init_FreeType(&lib)) {
    for (int i = 0; i < nf; i++) free(files[i]);
    free(files);
    return lt_fail(e, "FreeType failed to initialize");
  }
  for (int i = 0; i < nf; i++) {
    for (int fi = 0, nfaces = 1; fi < nfaces && fi < 64; fi++) {
      FT_Face face;
      if (FT_New_Face(lib, files[i], fi, &face)) break;
      nfaces = (int)face->num_faces;
      if (usable(face) && face->family_name) {
        if (fl->n == fl->cap) {
          fl->cap = fl->cap ? fl->cap * 2 : 64;
          fl->v = realloc(fl->v, sizeof(font_t) * (size_t)fl->cap);
        }
        font_t *ft = &fl->v[fl->n++];
        memset(ft, 0, sizeof *ft);
        ft->path = strdup(files[i]);
        ft->face = fi;
        snprintf(ft->family, sizeof ft->family, "%s", face->family_name);
        snprintf(ft->style, sizeof ft->style, "%s", face->style_name ? face->style_name : "");
      } else if (o->verbose) {
        fprintf(stderr, "  skipping %s (face %d): no usable a-z glyphs\n", files[i], fi);
      }
      FT_Done_Face(face);
    }
    free(files[i]);
  }
  free(files);
  FT_Done_FreeType(lib);
  if (fl->n == 0)
    return lt_fail(e, "no usable fonts under %s: none of the font files has outline glyphs for all of a-z",
                   o->font_dirs);

  /* families and their first-word groups, sorted by name */
  char groups[256][128];
  int ng = 0;
  for (int i = 0; i < fl->n; i++) {
    char g[128];
    group_key(fl->v[i].family, g, sizeof g);
    int k = 0;
    while (k < ng && strcmp(groups[k], g) != 0) k++;
    if (k == ng && ng < 256) snprintf(groups[ng++], sizeof groups[0], "%s", g);
  }
  qsort(groups, (size_t)ng, sizeof groups[0], cmp_name);
  for (int i = 0; i < fl->n; i++) {
    char g[128];
    group_key(fl->v[i].family, g, sizeof g);
    for (int k = 0; k < ng; k++)
      if (strcmp(groups[k], g) == 0) fl->v[i].group = k;
  }
  int ntest = 0, ntrain = 0;
  if (o->test_families && o->test_families[0]) {
    char list[1024];
    snprintf(list, sizeof list, "%s", o->test_families);
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
      while (*t == ' ') t++;
      bool hit = false;
      for (int i = 0; i < fl->n; i++)
        if (strcasecmp(fl->v[i].family, t) == 0) fl->v[i].test = hit = true;
      if (!hit) {
        char avail[1024] = "";
        for (int i = 0; i < fl->n; i++)
          if (!strstr(avail, fl->v[i].family) && strlen(avail) + strlen(fl->v[i].family) + 4 < sizeof avail)
            snprintf(avail + strlen(avail), sizeof avail - strlen(avail), "%s%s", avail[0] ? ", " : "",
                     fl->v[i].family);
        fonts_free(fl);
        return lt_fail(e, "--test-families: no font family named \"%s\" (found: %s)", t, avail);
      }
    }
  } else if (ng >= 2) {
    for (int i = 0; i < fl->n; i++)
      fl->v[i].test = ng <= 3 ? fl->v[i].group == ng - 1 : (ng - 1 - fl->v[i].group) % 4 == 0;
  } else { /* one design group: hold out its last family */
    const char *last = fl->v[0].family;
    for (int i = 1; i < fl->n; i++)
      if (strcmp(fl->v[i].family, last) > 0) last = fl->v[i].family;
    for (int i = 0; i < fl->n; i++) fl->v[i].test = strcmp(fl->v[i].family, last) == 0;
  }
  for (int i = 0; i < fl->n; i++) fl->v[i].test ? ntest++ : ntrain++;
  if (ntest == 0 || ntrain == 0) {
    int n = fl->n;
    fonts_free(fl);
    return lt_fail(e,
                   "need fonts from at least two families to split train/test by family (found %d usable "
                   "font%s in %s family)",
                   n, n == 1 ? "" : "s", ntest ? "the test" : "one");
  }
  return 0;
}

/* "DejaVu Sans (9), DejaVu Serif (8)" for the fonts on one side of the split */
static void family_list(const fontlist *fl, bool test, char *out, size_t cap) {
  out[0] = 0;
  for (int i = 0; i < fl->n; i++) {
    if (fl->v[i].test != test) continue;
    bool seen = false;
    for (int k = 0; k < i; k++)
      seen |= fl->v[k].test == test && strcmp(fl->v[k].family, fl->v[i].family) == 0;
    if (seen) continue;
    int cnt = 0;
    for (int k = i; k < fl->n; k++)
      cnt += fl->v[k].test == test && strcmp(fl->v[k].family, fl->v[i].family) == 0;
    snprintf(out + strlen(out), cap - strlen(out), "%s%s (%d)", out[0] ? ", " : "", fl->v[i].family, cnt);
  }
}

/* Images per letter per font: as asked, or (0) what keeps the sets near
 * 34,320 training and 5,616 test images whatever the number of fonts
 * (60 and 12 per letter with the 22 + 18 fonts of DejaVu and Lato). */
static void per_font(const lt_glyph_opts *o, const fontlist *fl, int *train, int *test) {
  int ntr = 0, nte = 0;
  for (int i = 0; i < fl->n; i++) fl->v[i].test ? nte++ : ntr++;
  *train = o->train_per_font > 0 ? o->train_per_font : (int)lrint(34320.0 / (NLETTERS * (ntr ? ntr : 1)));
  *test = o->test_per_font > 0 ? o->test_per_font : (int)lrint(5616.0 / (NLETTERS * (nte ? nte : 1)));
  if (o->train_per_font <= 0) *train = *train < 2 ? 2 : *train > 400 ? 400 : *train;
  if (o->test_per_font <= 0) *test = *test < 1 ? 1 : *test > 100 ? 100 : *test;
}

int lt_glyph_manifest(const lt_glyph_opts *o, char **manifest, lt_err *e) {
  fontlist fl;
  if (scan_fonts(o, &fl, e)) return -1;
  int ptr, pte;
  per_font(o, &fl, &ptr, &pte);
  char tr[2048], te[2048], *m = NULL;
  size_t len = 0;
  family_list(&fl, false, tr, sizeof tr);
  family_list(&fl, true, te, sizeof te);
  FILE *f = open_memstream(&m, &len);
  if (!f) {
    fonts_free(&fl);
    return lt_fail(e, "out of memory");
  }
  fprintf(f,
          "jx letters v4\nsize %d\ntrain_per_font %d\ntest_per_font %d\nseed %llu\ntrain families: %s\n"
          "test families: %s\n",
          o->size, ptr, pte, (unsigned long long)o->seed, tr, te);
  for (int i = 0; i < fl.n; i++) {
    struct stat st;
    long long sz = stat(fl.v[i].path, &st) == 0 ? (long long)st.st_size : -1;
    long long mt = sz >= 0 ? (long long)st.st_mtime : 0;
    fprintf(f, "%s %s#%d %lld %lld %s | %s\n", fl.v[i].test ? "test " : "train", fl.v[i].path, fl.v[i].face,
            sz, mt, fl.v[i].family, fl.v[i].style);
  }
  fclose(f);
  fonts_free(&fl);
  *manifest = m;
  return 0;
}

/* --------------------------------------------------- distance transform */

/* 1-D squared Euclidean distance transform (Felzenszwalb & Huttenlocher) */
static void edt1(const float *f, float *d, int n, int *v, float *z) {
  int k = 0;
  v[0] = 0, z[0] = -INFINITY, z[1] = INFINITY;
  for (int q = 1; q < n; q++) {
    float s;
    for (;;) { /* drop the parabolas the new one hides; z[0] = -inf stops the loop */
      int p = v[k];
      s = ((f[q] + (float)q * q) - (f[p] + (float)p * p)) / (2.0f * (float)(q - p));
      if (s <= z[k])
        k--;
      else
        break;
    }
    k++;
    v[k] = q, z[k] = s, z[k + 1] = INFINITY;
  }
  k = 0;
  for (int q = 0; q < n; q++) {
    while (z[k + 1] < (float)q) k++;
    float dq = (float)(q - v[k]);
    d[q] = dq * dq + f[v[k]];
  }
}

/* squared distance from each pixel to the nearest pixel where feat != 0 */
static void edt2(const uint8_t *feat, int w, int h, float *out) {
  const float BIG = 1e20f;
  int m = w > h ? w : h;
  float *f = calloc((size_t)m, sizeof(float)), *d = calloc((size_t)m, sizeof(float));
  float *z = malloc(sizeof(float) * (size_t)(m + 1));
  int *v = malloc(sizeof(int) * (size_t)m);
  for (int x = 0; x < w; x++) {
    for (int y = 0; y < h; y++) f[y] = feat[y * w + x] ? 0 : BIG;
    edt1(f, d, h, v, z);
    for (int y = 0; y < h; y++) out[y * w + x] = d[y];
  }
  for (int y = 0; y < h; y++) {
    for (int x = 0; x < w; x++) f[x] = out[y * w + x];
    edt1(f, d, w, v, z);
    for (int x = 0; x < w; x++) out[y * w + x] = d[x];
  }
  free(f), free(d), free(z), free(v);
}

typedef struct {
  int w, h;
  float *sdf;   /* hi-res pixels, > 0 outside the ink */
  float cx, cy; /* centre of the ink's bounding box */
  float maxin;  /* largest inside distance: half the thickest stroke */
} glyph_t;

/* Ink where the glyph's coverage reaches `threshold`, placed MARGIN pixels
 * in; box (x0, y0, x1, y1) grows to contain it. */
static void mark_ink(const FT_Bitmap *bm, int threshold, uint8_t *ink, int w, int box[4]) {
  for (unsigned y = 0; y < bm->rows; y++)
    for (unsigned x = 0; x < bm->width; x++)
      if (bm->buffer[(long)y * bm->pitch + x] >= threshold) {
        int X = (int)x + MARGIN, Y = (int)y + MARGIN;
        ink[Y * w + X] = 1;
        if (X < box[0]) box[0] = X;
        if (Y < box[1]) box[1] = Y;
        if (X > box[2]) box[2] = X;
        if (Y > box[3]) box[3] = Y;
      }
}

static int render_glyph(FT_Face face, int c, glyph_t *g) {
  memset(g, 0, sizeof *g);
  if (FT_Load_Char(face, (FT_ULong)('a' + c), FT_LOAD_RENDER | FT_LOAD_NO_HINTING | FT_LOAD_NO_BITMAP))
    return -1;
  FT_Bitmap *bm = &face->glyph->bitmap;
  if (bm->pixel_mode != FT_PIXEL_MODE_GRAY || bm->rows == 0 || bm->width == 0) return -1;
  int w = (int)bm->width + 2 * MARGIN, h = (int)bm->rows + 2 * MARGIN;
  uint8_t *ink = calloc((size_t)w * h, 1), *bg = malloc((size_t)w * h);
  float *din = malloc(sizeof(float) * (size_t)w * h);
  g->sdf = malloc(sizeof(float) * (size_t)w * h);
  int box[4] = {w, h, -1, -1}; /* x0 y0 x1 y1 */
  mark_ink(bm, 128, ink, w, box);
  if (box[2] < 0)
    mark_ink(bm, 32, ink, w, box); /* nothing above half coverage (a hairline at this size): take any ink */
  int x0 = box[0], y0 = box[1], x1 = box[2], y1 = box[3];
  if (x1 < 0) {
    free(ink), free(bg), free(din), free(g->sdf);
    g->sdf = NULL;
    return -1;
  }
  for (int i = 0; i < w * h; i++) bg[i] = !ink[i];
  edt2(ink, w, h, g->sdf); /* squared distance to ink (0 inside) */
  edt2(bg, w, h, din);     /* squared distance to background (0 outside) */
  g->maxin = 0;
  for (int i = 0; i < w * h; i++) {
    float s = ink[i] ? -(sqrtf(din[i]) - 0.5f) : sqrtf(g->sdf[i]) - 0.5f;
    g->sdf[i] = s;
    if (-s > g->maxin) g->maxin = -s;
  }
  g->w = w, g->h = h;
  g->cx = 0.5f * (float)(x0 + x1 + 1), g->cy = 0.5f * (float)(y0 + y1 + 1);
  free(ink), free(bg), free(din);
  return 0;
}

/* SDF at a hi-res point, bilinear; beyond the border: border value + distance */
static float sample(const glyph_t *g, float x, float y) {
  float extra = 0;
  float cxl = fminf(fmaxf(x, 0.0f), (float)(g->w - 1)), cyl = fminf(fmaxf(y, 0.0f), (float)(g->h - 1));
  if (cxl != x || cyl != y) extra = hypotf(x - cxl, y - cyl), x = cxl, y = cyl;
  int x0 = (int)x, y0 = (int)y;
  if (x0 > g->w - 2) x0 = g->w - 2;
  if (y0 > g->h - 2) y0 = g->h - 2;
  float fx = x - (float)x0, fy = y - (float)y0;
  const float *r0 = g->sdf + (size_t)y0 * g->w + x0, *r1 = r0 + g->w;
  return extra + (1 - fy) * ((1 - fx) * r0[0] + fx * r0[1]) + fy * ((1 - fx) * r1[0] + fx * r1[1]);
}

/* ------------------------------------------------------ jittered images */

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double unif(uint64_t *s, double lo, double hi) {
  return lo + (hi - lo) * (double)(splitmix(s) >> 11) * (1.0 / 9007199254740992.0);
}
static double gauss(uint64_t *s) {
  double u = unif(s, 1e-12, 1.0), v = unif(s, 0.0, 1.0);
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* One jittered image of glyph g into out[size*size]. */
static void draw(const glyph_t *g, int size, uint64_t seed, uint8_t *out) {
  uint64_t s = seed;
  const double deg = 3.141592653589793 / 180.0;
  double rot = unif(&s, -12, 12) * deg, shear = unif(&s, -0.28, 0.28);
  double scale = exp(unif(&s, log(0.78), log(1.18))), aspect = exp(unif(&s, log(0.88), log(1.12)));
  double sx = scale * sqrt(aspect), sy = scale / sqrt(aspect);
  double dx = unif(&s, -2.5, 2.5), dy = unif(&s, -2.5, 2.5);
  double soft = unif(&s, 0.7, 1.6), ink = unif(&s, 0.7, 1.0), bg = unif(&s, 0.0, 0.12);
  double noise = unif(&s, 0.0, 0.09);
  /* output pixels per hi-res pixel at scale 1 */
  double k = 1.0 / SS;
  /* stroke: dilate up to 1.1 px, erode at most 45% of the thickest stroke's
   * half-width, and never below a half-width of 0.45 px (hairline faces
   * stay visible) */
  double maxin_out = g->maxin * k * scale;
  double delta = unif(&s, -0.55, 1.1);
  if (delta < -0.45 * maxin_out) delta = -0.45 * maxin_out;
  if (delta < 0.45 - maxin_out) delta = 0.45 - maxin_out;
  /* forward map (glyph -> image, output px): A = R(rot) * Shear * diag(sx, sy); invert it */
  double c = cos(rot), sn = sin(rot);
  double a00 = c * sx, a01 = c * shear * sy - sn * sy, a10 = sn * sx, a11 = sn * shear * sy + c * sy;
  double det = a00 * a11 - a01 * a10;
  double i00 = a11 / det, i01 = -a01 / det, i10 = -a10 / det, i11 = a00 / det;
  double unit = sqrt(fabs(det)); /* output px per glyph px (area-averaged) */
  double half = 0.5 * size;
  for (int v = 0; v < size; v++)
    for (int u = 0; u < size; u++) {
      double px = u + 0.5 - half - dx, py = v + 0.5 - half - dy;
      double gx = (i00 * px + i01 * py) * SS + g->cx, gy = (i10 * px + i11 * py) * SS + g->cy;
      double d = sample(g, (float)gx, (float)gy) * k * unit; /* in output px */
      double a = 0.5 - (d - delta) / soft;
      a = a < 0 ? 0 : a > 1 ? 1 : a;
      double val = bg + (ink - bg) * a + noise * gauss(&s);
      val = val < 0 ? 0 : val > 1 ? 1 : val;
      out[v * size + u] = (uint8_t)lrint(val * 255.0);
    }
}

typedef struct {
  const glyph_t *glyphs; /* [font][letter] */
  const int *fonts;      /* font indices of this split */
  int nfonts, per, size;
  uint64_t seed;
  uint64_t salt;
  lt_data *out;
  int tid, nthreads;
} job_t;

static void *worker(void *arg) {
  job_t *j = arg;
  int64_t per_font = (int64_t)NLETTERS * j->per;
  for (int64_t i = j->tid; i < j->out->n; i += j->nthreads) {
    int fi = (int)(i / per_font), rem = (int)(i % per_font), letter = rem / j->per, var = rem % j->per;
    int font = j->fonts[fi];
    uint64_t s = j->seed ^ j->salt;
    s ^= splitmix(&s) + (uint64_t)font * 0x100000001B3ull;
    s ^= splitmix(&s) + (uint64_t)(letter * 100003 + var);
    splitmix(&s);
    draw(&j->glyphs[font * NLETTERS + letter], j->size, s, j->out->images + i * j->size * j->size);
    j->out->labels[i] = (uint8_t)letter;
  }
  return NULL;
}

static int make_split(const glyph_t *glyphs, const int *fonts, int nfonts, int per, const lt_glyph_opts *o,
                      uint64_t salt, lt_data *out, lt_err *e) {
  out->n = (int64_t)nfonts * NLETTERS * per;
  out->rows = out->cols = o->size;
  out->images = malloc((size_t)out->n * o->size * o->size + 1);
  out->labels = malloc((size_t)out->n + 1);
  if (!out->images || !out->labels) {
    lt_data_free(out);
    return lt_fail(e, "out of memory for %lld images", (long long)out->n);
  }
  int nt = o->threads > 0 ? o->threads : 1;
  if (nt > 16) nt = 16;
  pthread_t th[16];
  job_t jobs[16];
  for (int t = 0; t < nt; t++) {
    jobs[t] = (job_t){glyphs, fonts, nfonts, per, o->size, o->seed, salt, out, t, nt};
    if (t > 0) pthread_create(&th[t], NULL, worker, &jobs[t]);
  }
  worker(&jobs[0]);
  for (int t = 1; t < nt; t++) pthread_join(th[t], NULL);
  return 0;
}

int lt_glyph_generate(const lt_glyph_opts *o, lt_data *train, lt_data *test, lt_err *e) {
  memset(train, 0, sizeof *train);
  memset(test, 0, sizeof *test);
  if (o->size < 8 || o->size > 256) return lt_fail(e, "image size %d is out of range (8 to 256)", o->size);
  fontlist fl;
  if (scan_fonts(o, &fl, e)) return -1;
  int rc = -1;
  glyph_t *glyphs = calloc((size_t)fl.n * NLETTERS, sizeof(glyph_t));
  int *trf = malloc(sizeof(int) * (size_t)fl.n), *tef = malloc(sizeof(int) * (size_t)fl.n), ntr = 0, nte = 0;
  FT_Library lib;
  if (FT_Init_FreeType(&lib)) {
    lt_fail(e, "FreeType failed to initialize");
    goto done;
  }
  int px = (int)lrint(EM_FRAC * o->size * SS);
  for (int i = 0; i < fl.n; i++) {
    FT_Face face;
    bool ok = FT_New_Face(lib, fl.v[i].path, fl.v[i].face, &face) == 0;
    if (ok) {
      ok = FT_Set_Pixel_Sizes(face, 0, (FT_UInt)px) == 0;
      for (int c = 0; ok && c < NLETTERS; c++) ok = render_glyph(face, c, &glyphs[i * NLETTERS + c]) == 0;
      FT_Done_Face(face);
    }
    if (!ok) {
      FT_Done_FreeType(lib);
      lt_fail(e, "%s: FreeType could not render all of a-z", fl.v[i].path);
      goto done;
    }
    if (fl.v[i].test)
      tef[nte++] = i;
    else
      trf[ntr++] = i;
  }
  FT_Done_FreeType(lib);
  int ptr, pte;
  per_font(o, &fl, &ptr, &pte);
  if (make_split(glyphs, trf, ntr, ptr, o, 0x7261696eull, train, e) ||
      make_split(glyphs, tef, nte, pte, o, 0x74657374ull, test, e)) {
    lt_data_free(train);
    goto done;
  }
  rc = 0;
done:
  for (int i = 0; i < fl.n * NLETTERS; i++) free(glyphs[i].sdf);
  free(glyphs), free(trf), free(tef);
  fonts_free(&fl);
  return rc;
}

#endif /* LT_HAVE_FREETYPE */
