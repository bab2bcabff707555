/* jax.debug.print's format strings: Python's str.format over positional
 * arguments. "{}" takes the next argument, "{2}" argument 2 (the two
 * numberings do not mix), "{{" and "}}" are braces, "{:spec}" formats a
 * 0-d argument with a format spec ([[fill]align][sign][0][width]
 * [.precision][type], type one of d x X o for integers and e E f F g G %
 * for numbers). An argument prints as NumPy's str() (core/numpy_str.c).
 * The same walk checks a format (no values) and renders it (values). */
#include "prims/print_format.h"

#include "core/numpy_str.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
  const char *fmt;
  int n;
  const jx_aval *av;
  const jx_t *vals;
  jx_strbuf *out; /* NULL: check only */
  int next;       /* the next automatic index */
  int numbering;  /* 0: none yet, 1: automatic, 2: manual */
} walk;

static jx_t bad(const walk *w, const char *cause) {
  return jx_error_new("jx_debug_print: format \"%s\": %s", w->fmt, cause);
}

/* ------------------------------------------------------------- specs */
typedef struct {
  char fill, align, sign, type;
  bool zero;
  int width, prec; /* -1: none */
} spec;

static bool parse_spec(const char *s, size_t n, spec *sp) {
  const char *e = s + n;
  *sp = (spec){' ', 0, '-', 0, false, -1, -1};
  if (e - s >= 2 && strchr("<>^=", s[1]))
    sp->fill = s[0], sp->align = s[1], s += 2;
  else if (s < e && strchr("<>^=", *s))
    sp->align = *s++;
  if (s < e && strchr("+- ", *s)) sp->sign = *s++;
  if (s < e && *s == '0') sp->zero = true, s++;
  for (; s < e && isdigit((unsigned char)*s); s++)
    sp->width = (sp->width < 0 ? 0 : sp->width) * 10 + (*s - '0');
  if (s < e && *s == '.') {
    if (++s == e || !isdigit((unsigned char)*s)) return false;
    for (sp->prec = 0; s < e && isdigit((unsigned char)*s); s++) sp->prec = sp->prec * 10 + (*s - '0');
  }
  if (s < e && strchr("dxXoeEfFgG%", *s)) sp->type = *s++;
  return s == e && sp->width < 1000 && sp->prec < 100;
}

/* the spec fits the argument: 0-d, and a number type for numbers */
static const char *spec_misfit(const spec *sp, const jx_aval *a) {
  if (a->ndim) return "a format spec needs a 0-d argument (NumPy's arrays take none)";
  if (a->dtype == JX_BOOL) return "a format spec on a bool argument is not supported";
  if (sp->type && strchr("dxXo", sp->type) && jx_dtype_is_float(a->dtype))
    return "an integer format code for a float argument";
  if (!sp->type && sp->prec >= 0) return "a precision needs a type (f, e, g or %)";
  return NULL;
}

/* value v (of dtype dt) as sp says, into b */
static void put_number(jx_strbuf *b, const spec *sp, jx_t v) {
  jx_dtype dt = v->aval.dtype;
  double d = jx_scalar_load(dt, jx_data(v));
  long long i = dt == JX_I64 ? (long long)*(const int64_t *)jx_data(v) : (long long)d;
  bool neg = jx_dtype_is_float(dt) ? signbit(d) && !isnan(d) : i < 0;
  char body[160], t = sp->type;
  int p = sp->prec >= 0 ? sp->prec : 6;
  if (!t) {
    jx_strbuf s = {0};
    jx_numpy_str(&s, v);
    snprintf(body, sizeof body, "%s", s.s && (s.s[0] == '-') ? s.s + 1 : s.s ? s.s : "");
    jx_free(s.s);
  } else if (strchr("dxXo", t)) {
    unsigned long long u = i < 0 ? 0ull - (unsigned long long)i : (unsigned long long)i;
    snprintf(body, sizeof body, t == 'd' ? "%llu" : t == 'x' ? "%llx" : t == 'X' ? "%llX" : "%llo", u);
  } else if (t == '%') {
    snprintf(body, sizeof body, "%.*f%%", p, fabs(d) * 100);
  } else {
    char f[8] = {'%', '.', '*', t, 0};
    snprintf(body, sizeof body, f, p, fabs(d));
  }
  char sign[2] = {neg ? '-' : sp->sign == '+' ? '+' : sp->sign == ' ' ? ' ' : 0, 0};
  int len = (int)(strlen(sign) + strlen(body)), pad = sp->width > len ? sp->width - len : 0;
  char align = sp->align ? sp->align : sp->zero ? '=' : '>', fill = sp->zero && !sp->align ? '0' : sp->fill;
  int before = align == '<' ? 0 : align == '^' ? pad / 2 : pad;
  if (align == '=') {
    jx_strbuf_put(b, "%s", sign);
    for (int k = 0; k < pad; k++) jx_strbuf_put(b, "%c", fill);
    jx_strbuf_put(b, "%s", body);
    return;
  }
  for (int k = 0; k < before; k++) jx_strbuf_put(b, "%c", fill);
  jx_strbuf_put(b, "%s%s", sign, body);
  for (int k = before; k < pad; k++) jx_strbuf_put(b, "%c", fill);
}

/* ------------------------------------------------------------ fields */
/* The field at s (after its "{"); *end: past its "}". */
static jx_t field(walk *w, const char *s, const char **end) {
  const char *close = s;
  while (*close && *close != '}' && *close != '{') close++;
  if (*close == '{') return bad(w, "a '{' inside a field (nested fields are not supported)");
  if (!*close) return bad(w, "expected '}' before the end of the string");
  *end = close + 1;
  const char *colon = memchr(s, ':', (size_t)(close - s));
  const char *name_end = colon ? colon : close;
  if (memchr(s, '!', (size_t)(name_end - s))) return bad(w, "conversions (!r, !s) are not supported");
  int idx;
  if (name_end == s) {
    if (w->numbering == 2) return bad(w, "cannot switch from manual field numbering to automatic");
    w->numbering = 1, idx = w->next++;
  } else {
    for (const char *c = s; c < name_end; c++)
      if (!isdigit((unsigned char)*c))
        return bad(w, "named fields take keyword arguments, which jx_debug_print does not: use {} or {0}");
    if (w->numbering == 1) return bad(w, "cannot switch from automatic field numbering to manual");
    w->numbering = 2, idx = name_end - s > 6 ? 1 << 30 : atoi(s);
  }
  if (idx >= w->n) {
    char m[120];
    snprintf(m, sizeof m, "replacement index %d out of range for %d argument%s", idx, w->n,
             w->n == 1 ? "" : "s");
    return bad(w, m);
  }
  spec sp;
  if (colon && !parse_spec(colon + 1, (size_t)(close - colon - 1), &sp))
    return bad(w, "a format spec it cannot read");
  const jx_aval *a = w->av ? &w->av[idx] : &w->vals[idx]->aval;
  const char *misfit = colon && close > colon + 1 ? spec_misfit(&sp, a) : NULL;
  if (misfit) return bad(w, misfit);
  if (!w->out) return NULL;
  if (colon && close > colon + 1)
    put_number(w->out, &sp, w->vals[idx]);
  else
    jx_numpy_str(w->out, w->vals[idx]);
  return NULL;
}

jx_t jx_print_format(const char *fmt, int n, const jx_aval *av, const jx_t *vals, jx_strbuf *out) {
  walk w = {fmt, n, av, vals, out, 0, 0};
  for (const char *s = fmt; *s;) {
    if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
      if (out) jx_strbuf_put(out, "%c", s[0]);
      s += 2;
    } else if (*s == '}') {
      return bad(&w, "a single '}' (write '}}' for a brace)");
    } else if (*s == '{') {
      jx_t e = field(&w, s + 1, &s);
      if (e) return e;
    } else {
      size_t k = strcspn(s, "{}");
      if (out) jx_strbuf_put(out, "%.*s", (int)k, s);
      s += k;
    }
  }
  return NULL;
}
