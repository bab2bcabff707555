/* NumPy's str() of an array, as jax.debug.print shows its arguments:
 * "[1.  2.5]", "[[1 2]\n [3 4]]", "2.0" for a 0-d float. The float rules
 * are NumPy's defaults (array2string, floatmode "maxprec", precision 8):
 * every element with its shortest digits that read back as the same value
 * in its dtype (at most 8 after the point), aligned on the point; the
 * exponent form when the largest magnitude is 1e8 or more, or the
 * smallest nonzero below 1e-4, or their ratio above 1e3. Arrays over 1000
 * elements show 3 items at each end of every axis; lines wrap at 75
 * columns. */
#include "core/numpy_str.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { PREC = 8, EDGE = 3, THRESHOLD = 1000, LINE = 75, MAXW = 64 };

/* does the text s read back as v in dtype dt? */
static bool reads_back(const char *s, double v, jx_dtype dt) {
  unsigned char tmp[16];
  jx_scalar_store(dt, strtod(s, NULL), tmp);
  return jx_scalar_load(dt, tmp) == v;
}

/* v's shortest form with at most maxp digits after the point (positional)
 * or in the mantissa (sci), rounded to maxp when none reads back */
static int shortest(char *s, size_t n, double v, jx_dtype dt, bool sci, int maxp) {
  int p = 0;
  for (; p <= maxp; p++) {
    snprintf(s, n, sci ? "%.*e" : "%.*f", p, v);
    if (reads_back(s, v, dt)) return p;
  }
  snprintf(s, n, sci ? "%.*e" : "%.*f", maxp, v);
  return maxp;
}

/* s (a positional number) without trailing zeros after its point, the
 * point kept ("2.", "1.5") */
static void trim_zeros(char *s) {
  char *dot = strchr(s, '.');
  if (!dot) {
    strcat(s, ".");
    return;
  }
  size_t n = strlen(s);
  while (n > (size_t)(dot - s) + 1 && s[n - 1] == '0') s[--n] = 0;
}

/* ------------------------------------------------------------- scalars */
/* Python's repr of a float of dtype dt (NumPy's str of its scalar):
 * positional from 1e-4 to 1e16 ("2.0", "0.1"), else "1e-05", "1.5e+20" */
static void put_float_scalar(jx_strbuf *b, double v, jx_dtype dt) {
  char s[MAXW + 32];
  if (isnan(v) || isinf(v)) {
    jx_strbuf_put(b, "%s", isnan(v) ? "nan" : v < 0 ? "-inf" : "inf");
    return;
  }
  double a = fabs(v);
  int digits = shortest(s, sizeof s, v, dt, true, 17); /* after the mantissa's point */
  if (v == 0 || (a >= 1e-4 && a < 1e16)) {             /* the same digits, positional */
    int frac = digits - atoi(strchr(s, 'e') + 1);
    snprintf(s, sizeof s, "%.*f", frac > 1 ? frac : 1, v);
  }
  jx_strbuf_put(b, "%s", s);
}

static void put_scalar(jx_strbuf *b, jx_dtype dt, const void *p) {
  if (dt == JX_BOOL)
    jx_strbuf_put(b, "%s", *(const uint8_t *)p ? "True" : "False");
  else if (dt == JX_I64)
    jx_strbuf_put(b, "%lld", (long long)*(const int64_t *)p);
  else if (jx_dtype_is_float(dt))
    put_float_scalar(b, jx_scalar_load(dt, p), dt);
  else
    jx_strbuf_put(b, "%.0f", jx_scalar_load(dt, p));
}

/* -------------------------------------------------------------- arrays */
/* How every element of one array prints (NumPy's FloatingFormat). */
typedef struct {
  jx_dtype dt;
  bool sci;        /* exponent form */
  int prec;        /* digits after the point (sci: zero-padded to it) */
  int left, right; /* positional: widest integer part, widest fraction */
  int exp_digits;  /* sci: the exponent's digits */
  int width;       /* the widest int, bool, nan or inf */
  bool summarize;  /* over THRESHOLD elements: EDGE items per end */
} efmt;

/* the element at linear offset i as text, before padding */
static void elem_text(const efmt *f, const char *data, int64_t i, char *s, size_t n) {
  const void *p = data + i * (int64_t)jx_dtype_size(f->dt);
  if (f->dt == JX_BOOL) {
    snprintf(s, n, "%s", *(const uint8_t *)p ? "True" : "False");
  } else if (f->dt == JX_I64) {
    snprintf(s, n, "%lld", (long long)*(const int64_t *)p);
  } else if (!jx_dtype_is_float(f->dt)) {
    snprintf(s, n, "%.0f", jx_scalar_load(f->dt, p));
  } else {
    double v = jx_scalar_load(f->dt, p);
    if (isnan(v) || isinf(v))
      snprintf(s, n, "%s", isnan(v) ? "nan" : v < 0 ? "-inf" : "inf");
    else if (f->sci)
      shortest(s, n, v, f->dt, true, PREC);
    else {
      shortest(s, n, v, f->dt, false, PREC);
      trim_zeros(s);
    }
  }
}

/* Visit the displayed elements (all, or EDGE per end of each axis). */
typedef void (*visit_fn)(void *ctx, int64_t off);
static void visit(const jx_aval *a, const int64_t *st, bool summ, int d, int64_t off, visit_fn fn,
                  void *ctx) {
  if (d == a->ndim) {
    fn(ctx, off);
    return;
  }
  int64_t n = a->shape[d];
  for (int64_t i = 0; i < n; i++) {
    if (summ && n > 2 * EDGE && i == EDGE) i = n - EDGE;
    visit(a, st, summ, d + 1, off + i * st[d], fn, ctx);
  }
}

typedef struct {
  efmt *f;
  const char *data;
  double maxa, mina; /* over finite nonzero magnitudes */
  bool any;
} scan_ctx;

static void scan_range(void *ctx, int64_t off) {
  scan_ctx *c = ctx;
  double v = fabs(jx_scalar_load(c->f->dt, c->data + off * (int64_t)jx_dtype_size(c->f->dt)));
  if (!(v > 0) || isinf(v)) return;
  c->maxa = c->any && c->maxa > v ? c->maxa : v;
  c->mina = c->any && c->mina < v ? c->mina : v;
  c->any = true;
}

/* widths: integer and fraction parts (positional), mantissa digits and
 * exponent digits (sci), whole texts (the rest) */
static void scan_width(void *ctx, int64_t off) {
  scan_ctx *c = ctx;
  efmt *f = c->f;
  char s[MAXW + 32];
  elem_text(f, c->data, off, s, sizeof s);
  int len = (int)strlen(s);
  if (!jx_dtype_is_float(f->dt) || !strpbrk(s, ".e")) { /* ints, bools, nan, inf */
    if (len > f->width) f->width = len;
    return;
  }
  const char *dot = strchr(s, '.'), *e = strchr(s, 'e');
  int ip = (int)((dot ? dot : e) - s);
  int fp = dot ? (int)((e ? e : s + len) - dot - 1) : 0;
  if (ip > f->left) f->left = ip;
  if (fp > (f->sci ? f->prec : f->right)) *(f->sci ? &f->prec : &f->right) = fp;
  if (e && (int)strlen(e + 2) > f->exp_digits) f->exp_digits = (int)strlen(e + 2);
}

/* a float element's width past its integer part: the point and fraction
 * (sci: and the exponent) */
static int nonfinite_offset(const efmt *f) { return f->sci ? f->prec + 3 + f->exp_digits : f->right + 1; }

static void plan(efmt *f, const jx_aval *a, const char *data, const int64_t *st) {
  memset(f, 0, sizeof *f);
  f->dt = a->dtype;
  f->summarize = jx_aval_size(a) > THRESHOLD;
  scan_ctx c = {f, data, 0, 0, false};
  if (jx_dtype_is_float(f->dt)) {
    visit(a, st, f->summarize, 0, 0, scan_range, &c);
    f->sci = c.any && (c.maxa >= 1e8 || c.mina < 1e-4 || c.maxa / c.mina > 1e3);
  }
  visit(a, st, f->summarize, 0, 0, scan_width, &c);
  if (jx_dtype_is_float(f->dt) && f->width > f->left + nonfinite_offset(f))
    f->left = f->width - nonfinite_offset(f); /* "-inf" widens every element's integer part */
}

/* one element, padded as f says */
static void put_elem(jx_strbuf *b, const efmt *f, const char *data, int64_t off) {
  char s[MAXW + 32];
  elem_text(f, data, off, s, sizeof s);
  if (!jx_dtype_is_float(f->dt)) {
    jx_strbuf_put(b, "%*s", f->width, s);
    return;
  }
  const char *dot = strchr(s, '.'), *e = strchr(s, 'e');
  if (!dot && !e) { /* nan, inf: right-aligned over the whole width */
    jx_strbuf_put(b, "%*s", f->left + nonfinite_offset(f), s);
    return;
  }
  int ip = (int)((dot ? dot : e) - s);
  jx_strbuf_put(b, "%*s", f->left - ip, "");
  if (!f->sci) {
    int fp = (int)strlen(dot) - 1;
    jx_strbuf_put(b, "%s%*s", s, f->right - fp, "");
    return;
  }
  /* mantissa zero-padded to prec digits, exponent to exp_digits */
  int fp = dot ? (int)(e - dot - 1) : 0;
  jx_strbuf_put(b, "%.*s%s%.*s", (int)(e - s), s, dot ? "" : ".", f->prec - fp, "00000000");
  jx_strbuf_put(b, "e%c%0*d", e[1], f->exp_digits, atoi(e + 2));
}

/* One array being written: its layout and where its text began in b
 * (NumPy wraps the array's own text at LINE columns, whatever precedes
 * it on the line). */
typedef struct {
  jx_strbuf *b;
  const efmt *f;
  const jx_aval *a;
  const char *data;
  const int64_t *st;
  size_t start;
  int elem_w; /* every element's padded width */
} arr_out;

/* the column b is at, counted from the array's start or the last newline */
static int column(const arr_out *o) {
  size_t k = o->b->n;
  while (k > o->start && o->b->s[k - 1] != '\n') k--;
  return (int)(o->b->n - k);
}

/* a word of the last axis, after a newline and the indent when it would
 * end past `limit` (NumPy's _extendLine: not on a line holding only the
 * indent) */
static void put_word(arr_out *o, const char *word, int64_t off, int limit, int indent) {
  int col = column(o), w = word ? (int)strlen(word) : o->elem_w;
  if (col + w > limit && col > indent) {
    while (o->b->n > o->start && o->b->s[o->b->n - 1] == ' ') o->b->s[--o->b->n] = 0;
    jx_strbuf_put(o->b, "\n%*s", indent, "");
  }
  if (word)
    jx_strbuf_put(o->b, "%s", word);
  else
    put_elem(o->b, o->f, o->data, off);
}

/* NumPy's _formatArray: the last axis as words wrapped at width - 1,
 * the others as rows separated by newlines (one more per axis below) */
static void put_nested(arr_out *o, int d, int64_t off, int width) {
  int64_t n = o->a->shape[d];
  int left = o->a->ndim - d, indent = d + 1; /* axes from here on; the hanging indent */
  bool summary = o->f->summarize && n > 2 * EDGE;
  jx_strbuf_put(o->b, "[");
  for (int64_t i = 0; i < n; i++) {
    if (summary && i == EDGE) {
      if (left == 1) put_word(o, "...", 0, width - 1, indent), jx_strbuf_put(o->b, " ");
      if (left > 1) jx_strbuf_put(o->b, "...%.*s%*s", left - 1, "\n\n\n\n\n\n\n\n", indent, "");
      i = n - EDGE;
    }
    if (left == 1)
      put_word(o, NULL, off + i * o->st[d], width - 1, indent);
    else
      put_nested(o, d + 1, off + i * o->st[d], width - 1);
    if (i + 1 < n && left == 1) jx_strbuf_put(o->b, " ");
    if (i + 1 < n && left > 1) jx_strbuf_put(o->b, "%.*s%*s", left - 1, "\n\n\n\n\n\n\n\n", indent, "");
  }
  jx_strbuf_put(o->b, "]");
}

void jx_numpy_str(jx_strbuf *b, jx_t x) {
  const jx_aval *a = &x->aval;
  if (a->ndim == 0) {
    put_scalar(b, a->dtype, jx_data(x));
    return;
  }
  int64_t st[JX_MAX_RANK];
  jx_strides(a->ndim, a->shape, st);
  efmt f;
  plan(&f, a, jx_data(x), st);
  int w = !jx_dtype_is_float(f.dt) ? f.width : f.left + nonfinite_offset(&f);
  arr_out o = {b, &f, a, jx_data(x), st, b->n, w};
  put_nested(&o, 0, 0, LINE);
}
