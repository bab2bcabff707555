/* Fashion-MNIST with the letter classifier's training code (examples/letters):
 * the same tanh MLP written as in JAX's README, jit(value_and_grad(loss)),
 * Adam, minibatches shuffled with jx_random, read from the IDX files that
 * Debian's dataset-fashion-mnist package installs:
 *
 *   apt-get install dataset-fashion-mnist
 *   build/examples/fashion_mnist [--data DIR] [--epochs N] [--hidden 512,512] [--out DIR]
 *
 * It reports the test accuracy and the time per epoch next to the MLP
 * baselines the package documents (its README's benchmark table and the
 * MLPClassifier grid of benchmark/baselines.json). */
#include <jx.h>

#include "letters.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *CLASSES = "T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot";

/* doc/name (or doc/name.gz when gz) as a NUL-terminated string; NULL with
 * e set when it cannot be read */
static char *read_text(const char *doc, const char *name, bool gz, lt_err *e) {
  char p[4096];
  uint8_t *text = NULL;
  size_t n = 0;
  snprintf(p, sizeof p, "%s/%s%s", doc, name, gz ? ".gz" : "");
  if (lt_read_file(p, &text, &n, e) != 0) return NULL;
  char *s = (char *)realloc(text, n + 1);
  if (!s) {
    free(text);
    snprintf(e->msg, sizeof e->msg, "out of memory");
    return NULL;
  }
  s[n] = 0;
  return s;
}

/* the README's benchmark rows that mention an MLP */
static void readme_baselines(const char *doc) {
  lt_err e;
  char *s = read_text(doc, "README.md", true, &e);
  if (!s) s = read_text(doc, "README.md", false, &e);
  if (!s) {
    printf("  README table: not found (%s)\n", e.msg);
    return;
  }
  int rows = 0;
  for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
    if (line[0] != '|' || !strstr(line, "MLP")) continue;
    /* | Classifier | Preprocessing | Fashion test accuracy | MNIST test accuracy | Submitter | Code | */
    char *f[8] = {0};
    int k = 0;
    for (char *c = line + 1; *c && k < 8; k++) {
      f[k] = c;
      char *bar = strchr(c, '|');
      if (!bar) break;
      *bar = 0;
      c = bar + 1;
    }
    for (int i = 0; i < k && f[i]; i++) { /* trim */
      while (isspace((unsigned char)*f[i])) f[i]++;
      char *end = f[i] + strlen(f[i]);
      while (end > f[i] && isspace((unsigned char)end[-1])) *--end = 0;
    }
    if (k >= 5 && f[2] && f[4]) {
      char who[64];
      snprintf(who, sizeof who, "%s", f[4]);
      char *br = strchr(who, ']');
      if (who[0] == '[' && br) *br = 0, memmove(who, who + 1, strlen(who));
      printf("  %-34s %-8s (README table, preprocessing: %s, by %s)\n", f[0], f[2], f[1], who);
      rows++;
    }
  }
  if (!rows) printf("  README table: no MLP rows\n");
  free(s);
}

/* the MLPClassifier entry of baselines.json (the grid scikit-learn searched) */
static void json_baselines(const char *doc) {
  lt_err e;
  char *s = read_text(doc, "benchmark/baselines.json", false, &e);
  if (!s) {
    printf("  baselines.json: not found (%s)\n", e.msg);
    return;
  }
  char *m = strstr(s, "\"MLPClassifier\"");
  if (!m) {
    printf("  baselines.json: no MLPClassifier entry\n");
    free(s);
    return;
  }
  /* the value: from the first '[' to its matching ']', whitespace squeezed */
  char *c = strchr(m, '['), out[1024];
  int depth = 0, k = 0;
  for (; c && *c && k < (int)sizeof out - 1; c++) {
    if (*c == '[' || *c == '{') depth++;
    if (*c == ']' || *c == '}') depth--;
    if (!isspace((unsigned char)*c))
      out[k++] = *c;
    else if (k && out[k - 1] != ' ' && out[k - 1] != '[' && out[k - 1] != '{')
      out[k++] = ' ';
    if (depth == 0) break;
  }
  out[k] = 0;
  printf("  %-34s %-8s (baselines.json: the scikit-learn grid %s;\n  %-34s %-8s  its accuracies are on the "
         "benchmark "
         "website, not in the package)\n",
         "MLPClassifier", "-", out, "", "");
  free(s);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  const char *data = "/usr/share/datasets/fashion-mnist", *doc = "/usr/share/doc/dataset-fashion-mnist",
             *out = NULL;
  int epochs = 15, batch = 128, hidden[16] = {512, 512}, nhidden = 2, shift = 0;
  double lr = 1e-3;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      printf("usage: fashion_mnist [--data DIR (%s)] [--doc DIR (%s)] [--epochs N (15)] [--batch N (128)]\n"
             "                     [--hidden 512,512] [--lr X (1e-3)] [--shift N (0)] [--out DIR]\n",
             data, doc);
      return 0;
    }
    if (!v) {
      fprintf(stderr, "fashion_mnist: %s needs a value (see --help)\n", a);
      return 2;
    }
    i++;
    if (!strcmp(a, "--data"))
      data = v;
    else if (!strcmp(a, "--doc"))
      doc = v;
    else if (!strcmp(a, "--out"))
      out = v;
    else if (!strcmp(a, "--epochs"))
      epochs = atoi(v);
    else if (!strcmp(a, "--batch"))
      batch = atoi(v);
    else if (!strcmp(a, "--shift"))
      shift = atoi(v);
    else if (!strcmp(a, "--lr"))
      lr = atof(v);
    else if (!strcmp(a, "--hidden")) {
      nhidden = 0;
      for (const char *p = v; *p && nhidden < 16;) {
        char *end;
        long h = strtol(p, &end, 10);
        if (end == p || h < 1) break;
        hidden[nhidden++] = (int)h;
        p = *end == ',' ? end + 1 : end;
      }
    } else {
      fprintf(stderr, "fashion_mnist: unknown option %s (see --help)\n", a);
      return 2;
    }
  }
  if (epochs < 1 || epochs > 256 || batch < 1 || nhidden < 1) {
    fprintf(stderr, "fashion_mnist: bad --epochs/--batch/--hidden\n");
    return 2;
  }

  lt_err e;
  char ti[4096], tl[4096], si[4096], sl[4096];
  lt_data train = {0}, test = {0};
  if (lt_idx_find(data, ti, tl, si, sl, sizeof ti, &e) || lt_idx_load_pair(ti, tl, &train, &e) ||
      lt_idx_load_pair(si, sl, &test, &e)) {
    fprintf(stderr,
            "fashion_mnist: error: %s\n(install the data with: apt-get install dataset-fashion-mnist)\n",
            e.msg);
    lt_data_free(&train);
    return 1;
  }
  if (train.rows != test.rows || train.cols != test.cols) {
    fprintf(stderr, "fashion_mnist: error: wrong image size: training %dx%d, test %dx%d\n", train.rows,
            train.cols, test.rows, test.cols);
    lt_data_free(&train), lt_data_free(&test);
    return 1;
  }
  int nc = lt_data_classes(&train);
  printf("Fashion-MNIST: %lld training, %lld test images (%dx%d, %d classes) from %s\n", (long long)train.n,
         (long long)test.n, train.rows, train.cols, nc, data);
  char arch[256];
  int k = snprintf(arch, sizeof arch, "%d", train.rows * train.cols);
  for (int i = 0; i < nhidden; i++) k += snprintf(arch + k, sizeof arch - (size_t)k, "-%d", hidden[i]);
  snprintf(arch + k, sizeof arch - (size_t)k, "-%d", nc);
  printf("model: tanh MLP %s, adam lr %g (cosine decay), batch %d, %d epochs, %d threads\n", arch, lr, batch,
         epochs, jx_num_threads());
  fflush(stdout);

  lt_train_opts o = {.epochs = epochs,
                     .batch = batch,
                     .hidden = hidden,
                     .nhidden = nhidden,
                     .opt = "adam",
                     .lr = lr,
                     .shift = shift,
                     .seed = 0,
                     .progress = isatty(STDOUT_FILENO) != 0};
  lt_result r;
  if (lt_train(&train, &test, &o, NULL, &r, &e)) {
    fprintf(stderr, "fashion_mnist: error: %s\n", e.msg);
    lt_data_free(&train), lt_data_free(&test);
    return 1;
  }
  printf("test accuracy: %.4f\n", r.test_accuracy);
  lt_confusion_summary(r.confusion, r.nclasses, nc == 10 ? CLASSES : NULL, 4);
  double t[256];
  for (int i = 0; i < r.epochs; i++) t[i] = r.epoch_s[i];
  qsort(t, (size_t)r.epochs, sizeof t[0], cmp_double);
  double med = t[r.epochs / 2];
  printf("time per epoch: %.2f s median over %d epochs (%.0f examples/s; training steps only, %d threads; "
         "the first epoch, with the jit compile: %.2f s)\n",
         med, r.epochs, (double)(train.n / batch * batch) / med, jx_num_threads(), r.epoch_s[0]);

  printf("\nMLP baselines from the dataset-fashion-mnist package (%s):\n", doc);
  printf("  %-34s %-8s\n", "classifier", "accuracy");
  readme_baselines(doc);
  json_baselines(doc);
  char mine[300];
  snprintf(mine, sizeof mine, "jx tanh MLP %s", arch);
  printf("  %-34s %-8.4f (this run: %d epochs, %.2f s/epoch on %d threads)\n", mine, r.test_accuracy,
         r.epochs, med, jx_num_threads());

  int rc = 0;
  if (out) {
    char p1[4200], p2[4200];
    snprintf(p1, sizeof p1, "%s/params.npz", out);
    snprintf(p2, sizeof p2, "%s/curve.svg", out);
    float norm[2] = {r.mean, r.stdv};
    mkdir(out, 0777); /* if it is missing; an error shows when writing */
    if (lt_npz_save(p1, r.params, norm, &e) || lt_plot_svg(p2, &r, "Fashion-MNIST, tanh MLP", &e)) {
      fprintf(stderr, "fashion_mnist: error: %s\n", e.msg);
      rc = 1;
    } else {
      printf("saved %s and %s\n", p1, p2);
    }
  }
  lt_result_free(&r);
  lt_data_free(&train), lt_data_free(&test);
  return rc;
}
