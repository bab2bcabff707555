/* What the user sees: the progress bar, the confusion summary and the
 * training curve (an SVG file: two panels, loss and accuracy per epoch). */
#include "letters.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lt_progress(bool redraw, int epoch, int epochs, int64_t done, int64_t total, double loss,
                 double ex_per_s, double elapsed_s, bool final) {
  if (!redraw && !final) return;
  enum { W = 24 };
  char bar[W + 1];
  int fill = total > 0 ? (int)((double)W * (double)done / (double)total) : W;
  for (int i = 0; i < W; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
  bar[W] = 0;
  int wd = snprintf(NULL, 0, "%lld", (long long)total);
  printf("%sepoch %*d/%d [%s] %*lld/%lld  loss %.4f  %6.0f ex/s  %6.1fs%s", redraw ? "\r" : "",
         epochs >= 10 ? 2 : 1, epoch, epochs, bar, wd, (long long)done, (long long)total, loss, ex_per_s,
         elapsed_s, final ? "\n" : "");
  fflush(stdout);
}

/* names: one character per class ("abc..."), or '|'-separated ("Coat|Bag|...") */
static void name_of(const char *names, int c, char *out, size_t cap) {
  if (names && strchr(names, '|')) {
    const char *p = names;
    for (int i = 0; i < c && p; i++) p = strchr(p, '|'), p = p ? p + 1 : NULL;
    if (p) {
      snprintf(out, cap, "%.*s", (int)strcspn(p, "|"), p);
      return;
    }
  } else if (names && (int)strlen(names) > c) {
    snprintf(out, cap, "%c", names[c]);
    return;
  }
  snprintf(out, cap, "%d", c);
}

void lt_confusion_summary(const int64_t *cm, int n, const char *names, int top) {
  typedef struct {
    int a, b;
    int64_t ab, ba;
  } pair;
  int np = n * (n - 1) / 2, k = 0;
  pair *ps = (pair *)malloc(sizeof(pair) * (size_t)(np ? np : 1));
  for (int a = 0; a < n; a++)
    for (int b = a + 1; b < n; b++) ps[k++] = (pair){a, b, cm[a * n + b], cm[b * n + a]};
  /* partial selection sort: the `top` largest a<->b totals */
  printf("most confused pairs (held-out set):\n");
  int shown = 0;
  for (int t = 0; t < top && t < np; t++) {
    int best = t;
    for (int i = t + 1; i < np; i++)
      if (ps[i].ab + ps[i].ba > ps[best].ab + ps[best].ba) best = i;
    pair tmp = ps[t];
    ps[t] = ps[best], ps[best] = tmp;
    if (ps[t].ab + ps[t].ba == 0) break;
    char x[64], y[64];
    name_of(names, ps[t].a, x, sizeof x), name_of(names, ps[t].b, y, sizeof y);
    int64_t na = 0, nb = 0;
    for (int j = 0; j < n; j++) na += cm[ps[t].a * n + j], nb += cm[ps[t].b * n + j];
    printf("  %s <-> %s: %4lld   (%s read as %s: %lld of %lld, %s read as %s: %lld of %lld)\n", x, y,
           (long long)(ps[t].ab + ps[t].ba), x, y, (long long)ps[t].ab, (long long)na, y, x,
           (long long)ps[t].ba, (long long)nb);
    shown++;
  }
  if (!shown) printf("  (none: every held-out example is classified correctly)\n");
  /* the hardest classes */
  printf("lowest per-class accuracy:");
  int *order = (int *)malloc(sizeof(int) * (size_t)n);
  double *acc = (double *)malloc(sizeof(double) * (size_t)n);
  int m = 0;
  for (int c = 0; c < n; c++) {
    int64_t tot = 0;
    for (int j = 0; j < n; j++) tot += cm[c * n + j];
    if (tot) acc[c] = (double)cm[c * n + c] / (double)tot, order[m++] = c;
  }
  for (int t = 0; t < 3 && t < m; t++) {
    int best = t;
    for (int i = t + 1; i < m; i++)
      if (acc[order[i]] < acc[order[best]]) best = i;
    int tmp = order[t];
    order[t] = order[best], order[best] = tmp;
    char x[64];
    name_of(names, order[t], x, sizeof x);
    printf("  %s %.3f", x, acc[order[t]]);
  }
  printf("\n");
  free(order), free(acc), free(ps);
}

/* ------------------------------------------------------------------ SVG */

typedef struct {
  char *p;
  size_t n, cap;
} sbuf;
static void sb(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void sb(sbuf *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if (b->p && b->n + (size_t)k < b->cap) {
      b->n += (size_t)k;
      return;
    }
    size_t cap = b->cap ? b->cap * 2 : 8192;
    while (cap < b->n + (size_t)k + 1) cap *= 2;
    char *np = (char *)realloc(b->p, cap);
    if (!np) return;
    b->p = np, b->cap = cap;
  }
}

/* a nice tick step for a range */
static double tick_step(double range) {
  double raw = range / 5, mag = pow(10, floor(log10(raw))), f = raw / mag;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

static void panel(sbuf *b, double x0, double y0, double w, double h, const char *title, int n,
                  const double *ys[], const char *labels[], const char *colors[], int nseries, double lo,
                  double hi, bool legend_low) {
  sb(b, "<g>\n<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='white' stroke='#888'/>\n", x0, y0, w,
     h);
  sb(b, "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='14'>%s</text>\n", x0 + w / 2, y0 - 8, title);
  if (hi <= lo) hi = lo + 1;
  double st = tick_step(hi - lo);
  for (double t = ceil(lo / st) * st; t <= hi + 1e-9; t += st) {
    double y = y0 + h - (t - lo) / (hi - lo) * h;
    sb(b, "<line x1='%.1f' x2='%.1f' y1='%.1f' y2='%.1f' stroke='#e4e4e4'/>\n", x0, x0 + w, y, y);
    sb(b, "<text x='%.1f' y='%.1f' text-anchor='end' font-size='11'>%g</text>\n", x0 - 4, y + 4, t);
  }
  int xstep = n <= 10 ? 1 : (int)ceil(n / 10.0);
  for (int i = 1; i <= n; i += xstep) {
    double x = n > 1 ? x0 + (i - 1) * w / (n - 1) : x0 + w / 2;
    sb(b, "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='11'>%d</text>\n", x, y0 + h + 15, i);
  }
  sb(b, "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='12'>epoch</text>\n", x0 + w / 2,
     y0 + h + 32);
  for (int s = 0; s < nseries; s++) {
    sb(b, "<polyline fill='none' stroke='%s' stroke-width='2' points='", colors[s]);
    for (int i = 0; i < n; i++) {
      double x = n > 1 ? x0 + i * w / (n - 1) : x0 + w / 2, y = y0 + h - (ys[s][i] - lo) / (hi - lo) * h;
      sb(b, "%.1f,%.1f ", x, y);
    }
    sb(b, "'/>\n");
    for (int i = 0; i < n; i++) {
      double x = n > 1 ? x0 + i * w / (n - 1) : x0 + w / 2, y = y0 + h - (ys[s][i] - lo) / (hi - lo) * h;
      sb(b, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>\n", x, y, colors[s]);
    }
    double ly = legend_low ? y0 + h - 14 - 16 * (nseries - 1 - s) : y0 + 14 + 16 * s;
    sb(b, "<rect x='%.1f' y='%.1f' width='14' height='3' fill='%s'/>", x0 + w - 130, ly, colors[s]);
    sb(b, "<text x='%.1f' y='%.1f' font-size='11'>%s</text>\n", x0 + w - 110, ly + 5, labels[s]);
  }
  sb(b, "</g>\n");
}

int lt_plot_svg(const char *path, const lt_result *r, const char *title, lt_err *e) {
  if (r->epochs < 1) return lt_fail(e, "%s: nothing to plot (no epochs)", path);
  sbuf b = {0};
  int n = r->epochs;
  sb(&b, "<?xml version='1.0' encoding='UTF-8'?>\n<svg xmlns='http://www.w3.org/2000/svg' width='860' "
         "height='380' "
         "font-family='sans-serif'>\n<rect width='100%%' height='100%%' fill='#fafafa'/>\n");
  sb(&b, "<text x='430' y='24' text-anchor='middle' font-size='16' font-weight='bold'>%s</text>\n", title);
  double lo = 1e300, hi = -1e300;
  for (int i = 0; i < n; i++) lo = fmin(lo, r->loss[i]), hi = fmax(hi, r->loss[i]);
  double pad = (hi - lo) * 0.1 + 1e-3;
  const double *loss[1] = {r->loss}, *acc[2] = {r->train_acc, r->test_acc};
  const char *loss_names[1] = {"loss"}, *loss_colors[1] = {"#d62728"};
  const char *acc_names[2] = {"train (sample)", "held-out"}, *acc_colors[2] = {"#1f77b4", "#2ca02c"};
  panel(&b, 70, 60, 320, 260, "training loss (mean over the epoch)", n, loss, loss_names, loss_colors, 1,
        fmax(0, lo - pad), hi + pad, false);
  double alo = 1;
  for (int i = 0; i < n; i++) alo = fmin(alo, fmin(r->train_acc[i], r->test_acc[i]));
  alo = floor(alo * 20) / 20;
  panel(&b, 500, 60, 320, 260, "accuracy", n, acc, acc_names, acc_colors, 2, alo, 1.0, true);
  sb(&b, "</svg>\n");
  int rc = b.p ? lt_write_atomic(path, b.p, b.n, e) : lt_fail(e, "%s: out of memory", path);
  free(b.p);
  return rc;
}
