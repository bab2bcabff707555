/* letters_main: the command line, the data set cache, the whole run.
 *
 *   letters                      render letters from the installed fonts (cached
 *                                as IDX files), train, report, save
 *   letters --data DIR           the same on any MNIST-format set (EMNIST letters,
 *                                MNIST, Fashion-MNIST): IDX files, .gz or not
 *   letters --dp-clip 1.0        DP-SGD: per-example gradients, clipped
 *   letters --load P.npz --epochs 0   evaluate saved parameters
 *
 * Exit status: 0 on success, 1 on bad input or a failed run (with a message
 * on stderr), 2 on a bad command line. Output files are written atomically
 * and only after the run succeeded. */
#include "letters.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *usage_text =
    "usage: letters [options]\n"
    "data:\n"
    "  --data DIR            train on an MNIST-format set (train-/t10k- images/labels IDX files, .gz ok);\n"
    "                        DIR may be a prefix to pick one set, e.g. ~/emnist/emnist-letters\n"
    "  --fonts DIRS          font folders, ':'-separated (default "
    "/usr/share/fonts/truetype:/usr/share/fonts/opentype)\n"
    "  --test-families LIST  font families held out for testing, ','-separated (default: the last group of\n"
    "                        families by first word, e.g. Lato when DejaVu and Lato are installed)\n"
    "  --per-font N          jittered training images per letter per font (default: ~34k images in all,\n"
    "                        60 per letter with the 22 DejaVu fonts)\n"
    "  --test-per-font N     jittered test images per letter per test font (default: ~5.6k in all, 12 for "
    "Lato)\n"
    "  --size N              rendered image size (default 36)\n"
    "  --data-seed N         seed of the jitter (default 1)\n"
    "  --regenerate          render again even when the cached set is current\n"
    "training:\n"
    "  --epochs N (default 10)   --batch N (128)   --hidden 512,512   --seed N (0)\n"
    "  --opt adam|sgd (adam)     --lr X (adam 1e-3, sgd 0.05, cosine decay)   --momentum X (0.9)\n"
    "  --wd X                weight decay (AdamW-style, decoupled; default 0)\n"
    "  --shift N             augmentation: shift each training image by up to N pixels (default 2)\n"
    "  --dp-clip C           per-example gradient clipping to norm C (DP-SGD via jit(vmap(grad)))\n"
    "  --dp-noise S          with --dp-clip: Gaussian noise of std S*C added to the summed gradient\n"
    "  --load FILE.npz       start from saved parameters (--epochs 0: just evaluate them)\n"
    "  --max-steps N         stop after N steps in total\n"
    "  --devices N           data parallel over N in-process devices (jx_pmap; each takes batch/N\n"
    "                        examples of every global batch, gradients averaged with pmean)\n"
    "  --bf16                mixed precision: forward and backward in bf16 (bf16 copies of the\n"
    "                        weights, products on the CPU's bf16 units), loss and weights in f32\n"
    "  --data-parallel       data parallel over the processes of an MPI job (mpirun -np P letters\n"
    "                        --data-parallel: each process takes batch/P examples of every global batch,\n"
    "                        gradients averaged with pmean across them; rank 0 alone prints and saves)\n"
    "output:\n"
    "  --out DIR             where the cache, parameters and plot go (default letters-out):\n"
    "                        DIR/data/*-idx?-ubyte, DIR/params.npz, DIR/curve.svg\n"
    "  --save FILE / --plot FILE   override those two; --no-save skips both\n"
    "  --no-progress         one line per epoch instead of a redrawn progress bar\n"
    "  --quiet               only the final lines\n";

typedef struct {
  const char *data, *fonts, *test_families, *out, *save, *plot, *load, *opt;
  int per_font, test_per_font, size, epochs, batch, devices;
  int hidden[16], nhidden;
  double lr, momentum, wd, dp_clip, dp_noise;
  int shift;
  uint64_t seed, data_seed;
  int64_t max_steps;
  bool regenerate, no_save, no_progress, quiet, data_parallel, bf16;
} opts_t;

static int bad_number(const char *opt, const char *v) {
  fprintf(stderr, "letters: %s expects a number, got \"%s\"\n", opt, v);
  return 2;
}

static int parse(int argc, char **argv, opts_t *o) {
  *o = (opts_t){.fonts = "/usr/share/fonts/truetype:/usr/share/fonts/opentype",
                .out = "letters-out",
                .opt = "adam",
                .per_font = 0,
                .test_per_font = 0,
                .size = 36,
                .epochs = 10,
                .batch = 128,
                .hidden = {512, 512},
                .nhidden = 2,
                .lr = -1,
                .momentum = 0.9,
                .shift = 2,
                .seed = 0,
                .data_seed = 1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(usage_text, stdout);
      return -1;
    }
    bool flag = true;
    if (!strcmp(a, "--regenerate"))
      o->regenerate = true;
    else if (!strcmp(a, "--no-save"))
      o->no_save = true;
    else if (!strcmp(a, "--no-progress"))
      o->no_progress = true;
    else if (!strcmp(a, "--quiet"))
      o->quiet = true;
    else if (!strcmp(a, "--data-parallel"))
      o->data_parallel = true;
    else if (!strcmp(a, "--bf16"))
      o->bf16 = true;
    else
      flag = false;
    if (flag) continue;
    if (strncmp(a, "--", 2) != 0) {
      fprintf(stderr, "letters: unexpected argument \"%s\" (see --help)\n", a);
      return 2;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "letters: %s needs a value (see --help)\n", a);
      return 2;
    }
    const char *v = argv[++i];
    char *end = NULL;
    errno = 0;
    if (!strcmp(a, "--data"))
      o->data = v;
    else if (!strcmp(a, "--fonts"))
      o->fonts = v;
    else if (!strcmp(a, "--test-families"))
      o->test_families = v;
    else if (!strcmp(a, "--out"))
      o->out = v;
    else if (!strcmp(a, "--save"))
      o->save = v;
    else if (!strcmp(a, "--plot"))
      o->plot = v;
    else if (!strcmp(a, "--load"))
      o->load = v;
    else if (!strcmp(a, "--opt")) {
      if (strcmp(v, "adam") && strcmp(v, "sgd")) {
        fprintf(stderr, "letters: --opt is adam or sgd, not \"%s\"\n", v);
        return 2;
      }
      o->opt = v;
    } else if (!strcmp(a, "--hidden")) {
      o->nhidden = 0;
      for (const char *p = v; *p;) {
        long h = strtol(p, &end, 10);
        if (end == p || h < 1 || h > 65536 || o->nhidden == 16) return bad_number(a, v);
        o->hidden[o->nhidden++] = (int)h;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return bad_number(a, v);
      }
    } else if (!strcmp(a, "--lr") || !strcmp(a, "--momentum") || !strcmp(a, "--dp-clip") ||
               !strcmp(a, "--dp-noise") || !strcmp(a, "--wd")) {
      double d = strtod(v, &end);
      if (end == v || *end || errno || d < 0) return bad_number(a, v);
      *(!strcmp(a, "--lr")         ? &o->lr
        : !strcmp(a, "--momentum") ? &o->momentum
        : !strcmp(a, "--wd")       ? &o->wd
        : !strcmp(a, "--dp-clip")  ? &o->dp_clip
                                   : &o->dp_noise) = d;
    } else {
      long long n = strtoll(v, &end, 10);
      if (end == v || *end || errno || n < 0) return bad_number(a, v);
      if (!strcmp(a, "--per-font"))
        o->per_font = (int)n;
      else if (!strcmp(a, "--test-per-font"))
        o->test_per_font = (int)n;
      else if (!strcmp(a, "--size"))
        o->size = (int)n;
      else if (!strcmp(a, "--epochs"))
        o->epochs = (int)n;
      else if (!strcmp(a, "--batch"))
        o->batch = (int)n;
      else if (!strcmp(a, "--seed"))
        o->seed = (uint64_t)n;
      else if (!strcmp(a, "--data-seed"))
        o->data_seed = (uint64_t)n;
      else if (!strcmp(a, "--max-steps"))
        o->max_steps = n;
      else if (!strcmp(a, "--shift"))
        o->shift = (int)n;
      else if (!strcmp(a, "--devices"))
        o->devices = (int)n;
      else {
        fprintf(stderr, "letters: unknown option %s (see --help)\n", a);
        return 2;
      }
    }
  }
  if (o->batch < 1 || o->batch > 65536) return fprintf(stderr, "letters: --batch must be 1..65536\n"), 2;
  if (o->epochs > 256) return fprintf(stderr, "letters: --epochs must be at most 256\n"), 2;
  if (o->per_font > 100000 || o->test_per_font > 100000)
    return fprintf(stderr, "letters: --per-font/--test-per-font must be at most 100000\n"), 2;
  if (o->dp_noise > 0 && o->dp_clip <= 0) return fprintf(stderr, "letters: --dp-noise needs --dp-clip\n"), 2;
  if (o->devices > 256) return fprintf(stderr, "letters: --devices must be at most 256\n"), 2;
  if (o->devices > 1 && o->batch % o->devices)
    return fprintf(stderr, "letters: --batch %d does not split evenly over --devices %d\n", o->batch,
                   o->devices),
           2;
  if (o->lr < 0) o->lr = strcmp(o->opt, "sgd") == 0 ? 0.05 : 1e-3;
  return 0;
}

static int mkdirs(const char *path, lt_err *e) {
  char p[4096];
  snprintf(p, sizeof p, "%s", path);
  for (char *s = p + 1;; s++) {
    char c = *s;
    if (c == '/' || c == 0) {
      *s = 0;
      if (mkdir(p, 0777) != 0 && errno != EEXIST)
        return lt_fail(e, "cannot create %s: %s", p, strerror(errno));
      *s = c;
    }
    if (!c) break;
  }
  return 0;
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = n >= 0 ? (char *)malloc((size_t)n + 1) : NULL;
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) free(s), s = NULL;
  if (s) s[n] = 0;
  fclose(f);
  return s;
}

/* The rendered set: from the cache when its manifest matches, else rendered
 * and saved (IDX files first, the manifest last, so an interrupted write is
 * never mistaken for a complete cache). */
static int font_data(const opts_t *o, bool write_cache, lt_data *train, lt_data *test, lt_err *e) {
  lt_glyph_opts g = {.font_dirs = o->fonts,
                     .test_families = o->test_families,
                     .train_per_font = o->per_font,
                     .test_per_font = o->test_per_font,
                     .seed = o->data_seed,
                     .size = o->size,
                     .threads = jx_num_threads()};
  char *manifest = NULL;
  if (lt_glyph_manifest(&g, &manifest, e)) return -1;
  char dir[4096], f[4][4200], mpath[4200];
  snprintf(dir, sizeof dir, "%s/data", o->out);
  const char *names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                          "t10k-labels-idx1-ubyte"};
  for (int i = 0; i < 4; i++) snprintf(f[i], sizeof f[i], "%s/%s", dir, names[i]);
  snprintf(mpath, sizeof mpath, "%s/manifest.txt", dir);
  const char *tr = strstr(manifest, "train families: "), *te = strstr(manifest, "test families: ");
  if (!o->quiet && tr && te)
    printf("fonts: train %.*s\n       test  %.*s\n", (int)strcspn(tr + 16, "\n"), tr + 16,
           (int)strcspn(te + 15, "\n"), te + 15);
  if (!o->regenerate) {
    char *old = read_text(mpath);
    bool same = old && strcmp(old, manifest) == 0;
    free(old);
    if (same) {
      lt_err e2;
      if (lt_idx_load_pair(f[0], f[1], train, &e2) == 0 && lt_idx_load_pair(f[2], f[3], test, &e2) == 0 &&
          train->rows == o->size && test->rows == o->size) {
        if (!o->quiet)
          printf("data: %lld training and %lld test images from the cache in %s\n", (long long)train->n,
                 (long long)test->n, dir);
        free(manifest);
        return 0;
      }
      lt_data_free(train), lt_data_free(test);
      if (!o->quiet) printf("data: the cache in %s is damaged (%s); rendering again\n", dir, e2.msg);
    }
  }
  double t0 = lt_now();
  if (lt_glyph_generate(&g, train, test, e)) {
    free(manifest);
    return -1;
  }
  if (!o->quiet)
    printf("data: rendered %lld training + %lld test images (%dx%d) in %.1fs; caching them in %s\n",
           (long long)train->n, (long long)test->n, o->size, o->size, lt_now() - t0, dir);
  int rc = 0;
  if (!write_cache) return free(manifest), 0; /* another process of the job writes it */
  unlink(mpath);
  if (mkdirs(dir, e) || lt_idx_save_pair(f[0], f[1], train, e) || lt_idx_save_pair(f[2], f[3], test, e) ||
      lt_write_atomic(mpath, manifest, strlen(manifest), e)) {
    for (int i = 0; i < 4; i++) unlink(f[i]);
    rc = -1;
  }
  if (rc) {
    lt_data_free(train), lt_data_free(test);
  }
  free(manifest);
  return rc;
}

static void svg_safe(char *s) {
  for (; *s; s++)
    if (*s == '<' || *s == '>' || *s == '&' || *s == '\'' || *s == '"') *s = '_';
}

/* what lt_train takes from the command line */
static lt_train_opts train_opts(const opts_t *o) {
  lt_train_opts to = {.epochs = o->epochs,
                      .batch = o->batch,
                      .hidden = o->hidden,
                      .nhidden = o->nhidden,
                      .opt = o->opt,
                      .lr = o->lr,
                      .momentum = o->momentum,
                      .weight_decay = o->wd,
                      .shift = o->shift,
                      .dp_clip = o->dp_clip,
                      .dp_noise = o->dp_noise,
                      .seed = o->seed,
                      .progress = !o->no_progress && isatty(STDOUT_FILENO),
                      .quiet = o->quiet,
                      .max_steps = o->max_steps,
                      .devices = o->devices,
                      .processes = o->data_parallel,
                      .bf16 = o->bf16};
  return to;
}

int letters_main(int argc, char **argv) {
  opts_t o;
  int pr = parse(argc, argv, &o);
  if (pr) return pr < 0 ? 0 : pr;
  lt_err e = {{0}};
  lt_data train = {0}, test = {0};
  double t0 = lt_now();
  int status = 1;
  const char *names = NULL;
  int procs = 1;
  double t_data; /* set below: declared before the gotos, which C++ may not jump over initializations */
  jx_t loaded;
  lt_train_opts to;
  int trc;
  if (o.data_parallel) { /* mpirun: every process runs this; rank 0 alone prints and writes */
    jx_t derr = jx_distributed_init();
    if (derr) {
      fprintf(stderr, "letters: --data-parallel: %s\n", jx_error(derr));
      return 1;
    }
    procs = jx_process_count();
    if (jx_process_index() != 0) o.quiet = true, o.no_save = true;
    if (o.batch % (procs * (o.devices > 1 ? o.devices : 1))) {
      fprintf(stderr, "letters: --batch %d does not split evenly over %d processes x %d devices\n", o.batch,
              procs, o.devices > 1 ? o.devices : 1);
      return 2;
    }
  }
  bool lead = !o.data_parallel || jx_process_index() == 0;

  /* ---- data */
  if (o.data) {
    char ti[4096], tl[4096], si[4096], sl[4096];
    if (lt_idx_find(o.data, ti, tl, si, sl, sizeof ti, &e) || lt_idx_load_pair(ti, tl, &train, &e) ||
        lt_idx_load_pair(si, sl, &test, &e))
      goto fail;
    if (train.rows != test.rows || train.cols != test.cols) {
      lt_fail(&e, "wrong image size: %s holds %dx%d images but %s holds %dx%d", ti, train.rows, train.cols,
              si, test.rows, test.cols);
      goto fail;
    }
    int nc = lt_data_classes(&train);
    if (nc == 26) names = "abcdefghijklmnopqrstuvwxyz";
    if (nc == 27) names = "?abcdefghijklmnopqrstuvwxyz"; /* EMNIST letters: labels 1..26 */
    if (!o.quiet)
      printf("data: %lld training and %lld test images (%dx%d, %d classes) from %s\n", (long long)train.n,
             (long long)test.n, train.rows, train.cols, nc, o.data);
  } else {
    if (font_data(&o, lead, &train, &test, &e)) goto fail;
    names = "abcdefghijklmnopqrstuvwxyz";
  }
  t_data = lt_now() - t0;

  /* ---- parameters to start from */
  loaded = NULL;
  to = train_opts(&o);
  if (o.load) {
    if (lt_npz_load(o.load, &loaded, to.norm, &e)) goto fail;
    to.have_norm = to.norm[1] > 0;
    loaded = jx_retain(loaded);
  }
  if (!o.quiet) {
    char arch[256];
    int n = snprintf(arch, sizeof arch, "%d", train.rows * train.cols);
    if (loaded) {
      for (int i = 0; i < jx_len(loaded); i++)
        n += snprintf(arch + n, sizeof arch - (size_t)n, "-%lld",
                      (long long)jx_shape(jx_at(jx_at(loaded, i), 1))[0]);
    } else {
      for (int i = 0; i < o.nhidden; i++)
        n += snprintf(arch + n, sizeof arch - (size_t)n, "-%d", o.hidden[i]);
      int nc = lt_data_classes(&train), tc = lt_data_classes(&test);
      snprintf(arch + n, sizeof arch - (size_t)n, "-%d", nc > tc ? nc : tc);
    }
    char aug[64] = "";
    if (o.shift > 0) snprintf(aug, sizeof aug, ", random shifts up to %d px", o.shift);
    printf("model: tanh MLP %s, %s lr %g (cosine decay)%s, batch %d%s, %d epochs, %d threads%s%s\n", arch,
           o.opt, o.lr, o.wd > 0 ? " + weight decay" : "", o.batch, aug, o.epochs, jx_num_threads(),
           o.dp_clip > 0 ? ", DP-SGD (per-example clipping)" : "", o.bf16 ? ", bf16 mixed precision" : "");
    if (o.devices > 1 || procs > 1) {
      int ndev = o.devices > 1 ? o.devices : 1;
      printf("       data parallel over %d process%s x %d device%s, %d examples each per step\n", procs,
             procs > 1 ? "es" : "", ndev, ndev > 1 ? "s" : "", o.batch / (procs * ndev));
    }
    if (o.dp_clip > 0)
      printf("       per-example gradients clipped to norm %g, noise multiplier %g\n", o.dp_clip, o.dp_noise);
    fflush(stdout);
  }

  /* ---- train */
  lt_result r;
  trc = lt_train(&train, &test, &to, loaded, &r, &e);
  if (loaded) jx_release(loaded);
  if (trc) goto fail;

  if (lead) printf("test accuracy: %.4f\n", r.test_accuracy);
  if (!o.quiet) {
    lt_confusion_summary(r.confusion, r.nclasses, names, 5);
    double ex = 0;
    for (int i = 0; i < r.epochs; i++) ex += r.ex_per_s[i] * r.epoch_s[i];
    printf("time: data %.1fs, training %.1fs (%.0f examples/s, evaluation included in the total)\n", t_data,
           r.total_s, r.total_s > 0 ? ex / r.total_s : 0);
  }

  /* ---- outputs, only now that everything worked */
  if (!o.no_save) {
    char save[4200], plot[4200];
    snprintf(save, sizeof save, "%s", o.save ? o.save : "");
    snprintf(plot, sizeof plot, "%s", o.plot ? o.plot : "");
    if (!o.save) snprintf(save, sizeof save, "%s/params.npz", o.out);
    if (!o.plot) snprintf(plot, sizeof plot, "%s/curve.svg", o.out);
    if ((!o.save || !o.plot) && mkdirs(o.out, &e)) {
      lt_result_free(&r);
      goto fail;
    }
    float norm[2] = {r.mean, r.stdv};
    char title[512];
    snprintf(title, sizeof title, "%s: test accuracy %.4f",
             o.data ? o.data : "letters from unseen font families", r.test_accuracy);
    svg_safe(title);
    if (lt_npz_save(save, r.params, norm, &e) || (r.epochs > 0 && lt_plot_svg(plot, &r, title, &e))) {
      lt_result_free(&r);
      goto fail;
    }
    if (!o.quiet)
      printf("saved %s (numpy.load reads it)%s%s\n", save, r.epochs > 0 ? " and " : "",
             r.epochs > 0 ? plot : "");
  }
  lt_result_free(&r);
  status = 0;
fail:
  if (status) fprintf(stderr, "letters: error: %s\n", e.msg);
  lt_data_free(&train), lt_data_free(&test);
  return status;
}
