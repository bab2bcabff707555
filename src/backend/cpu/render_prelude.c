/* The prelude of a generated program: scalar_ops.h, less the parts the
 * program does not call. Every generated unit is parsed by the C compiler
 * from scratch, so what it does not call is paid for on every build (all
 * of scalar_ops.h with emmintrin.h: ~18 ms of CPU per unit, ~4 ms without
 * emmintrin.h, which only streaming stores need). The parts are cut from
 * the same embedded text the eager kernels compile (gen/scalar_ops_text.h):
 * one definition of every scalar function. */
#include "backend/cpu/kernels.h"
#include "backend/cpu/render.h"
#include "gen/scalar_ops_text.h"

#include <string.h>

/* The scalar functions of the op list (core/elementwise.def): each row's
 * <name>_<dtype> at every dtype of its row. The eager kernels call them
 * all; test_lowering checks that a part of scalar_ops.h lists each, so
 * that rendering any of them finds it. */
#define FN_NAME(S, T, name)              #name "_" #S,
#define JX_UNARY(name, K, dtypes, cheap) JX_FOR_##dtypes(FN_NAME, name)
#define JX_BINARY(name, K, dtypes)       JX_FOR_##dtypes(FN_NAME, name)
#define JX_COMPARE(name, K, dtypes)      JX_FOR_##dtypes(FN_NAME, name)
#define JX_BITS(name, K, dtypes, cheap)  JX_FOR_##dtypes(FN_NAME, name)
#define JX_SPECIAL(name, K, dtypes)      JX_FOR_##dtypes(FN_NAME, name)
const char *const jx_cpu_ew_functions[] = {
#include "core/elementwise.def"
    NULL};
#undef JX_UNARY
#undef JX_BINARY
#undef JX_COMPARE
#undef JX_BITS
#undef JX_SPECIAL
#undef FN_NAME

static const char part_mark[] = "/*@jx-part ", end_mark[] = "/*@jx-end*/";

/* One marker at m: NAME, then +DEP names, a colon, the functions, the comment end; false if malformed. */
static bool parse_marker(const char *m, jx_scalar_part *pt) {
  const char *p = m + strlen(part_mark), *close = strstr(p, "*/"), *colon = strchr(p, ':');
  if (!close || !colon || colon > close) return false;
  pt->name = p;
  pt->nlen = strcspn(p, " :");
  pt->deps = p + pt->nlen;
  pt->dlen = (size_t)(colon - pt->deps);
  pt->fns = colon + 1;
  pt->flen = (size_t)(close - pt->fns);
  pt->text = close + 2;
  return pt->nlen > 0;
}

int jx_cpu_scalar_parts(jx_scalar_part *out, int max, size_t *base) {
  const char *t = jx_scalar_ops_text, *m = strstr(t, part_mark), *end = strstr(t, end_mark);
  if (!m || !end || end < m) return -1;
  *base = (size_t)(m - t);
  int n = 0;
  while (m && m < end) {
    if (n == max || !parse_marker(m, &out[n])) return -1;
    const char *next = strstr(out[n].text, part_mark);
    const char *stop = next && next < end ? next : end;
    if (out[n].text > stop) return -1;
    out[n].tlen = (size_t)(stop - out[n].text);
    n++;
    m = next;
  }
  return n;
}

/* whether the list [s, s + n) (separated by blanks or '*') holds `word` */
static bool lists(const char *s, size_t n, const char *word, size_t wn) {
  const char *e = s + n;
  while (s < e) {
    while (s < e && strchr(" \t\n*+", *s)) s++;
    size_t k = 0;
    while (s + k < e && !strchr(" \t\n*+", s[k])) k++;
    if (k && k == wn && !memcmp(s, word, k)) return true;
    s += k;
  }
  return false;
}

static bool lists_any(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!strchr(" \t\n*", s[i])) return true;
  return false;
}

/* use part i and, first, the earlier parts it needs */
static jx_t mark(const jx_scalar_part *pt, int i, bool *use) {
  if (use[i]) return NULL;
  use[i] = true;
  const char *s = pt[i].deps, *e = s + pt[i].dlen;
  for (;;) {
    while (s < e && strchr(" \t\n+", *s)) s++;
    if (s >= e) return NULL;
    size_t k = strcspn(s, " \t\n+:");
    int d = -1;
    for (int j = 0; j < i && d < 0; j++)
      if (pt[j].nlen == k && !memcmp(pt[j].name, s, k)) d = j;
    if (d < 0)
      return jx_error_new("jit: scalar_ops.h part '%.*s' needs '%.*s', no earlier part", (int)pt[i].nlen,
                          pt[i].name, (int)k, s);
    jx_t err = mark(pt, d, use);
    if (err) return err;
    s += k;
  }
}

/* the parts the names need into use[]; an error names the first missing */
static jx_t select_parts(const jx_scalar_part *pt, int np, const char *const *names, int n, bool *use) {
  for (int i = 0; i < np; i++)
    if (!lists_any(pt[i].fns, pt[i].flen)) use[i] = true; /* always pasted */
  for (int x = 0; x < n; x++) {
    int found = -1;
    for (int i = 0; i < np && found < 0; i++)
      if (lists(pt[i].fns, pt[i].flen, names[x], strlen(names[x]))) found = i;
    if (found < 0)
      return jx_error_new("jit: no C rendering for %s (no part of scalar_ops.h defines it)", names[x]);
    jx_t err = mark(pt, found, use);
    if (err) return err;
  }
  return NULL;
}

char *jx_cpu_prelude(const char *const *names, int n, jx_t *err) {
  jx_scalar_part pt[JX_MAX_SCALAR_PARTS];
  bool use[JX_MAX_SCALAR_PARTS] = {0};
  size_t base;
  const int np = jx_cpu_scalar_parts(pt, JX_MAX_SCALAR_PARTS, &base);
  *err = np < 0 ? jx_error_new("jit: scalar_ops.h has a malformed part marker")
                : select_parts(pt, np, names, n, use);
  if (*err) return NULL;
  sb b = {0};
  put(&b, "%.*s", (int)base, jx_scalar_ops_text);
  for (int i = 0; i < np; i++)
    if (use[i]) put(&b, "%.*s", (int)pt[i].tlen, pt[i].text);
  put(&b, "%s", strstr(jx_scalar_ops_text, end_mark) + strlen(end_mark));
  if (b.oom) {
    jx_free(b.s);
    *err = jx_error_new("jit: out of memory rendering the prelude");
    return NULL;
  }
  return b.s;
}

void jx_cpu_put_call(sb *b, const char *fmt, ...) {
  char name[64];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  put(b, "%s(", name);
  jx_needs *nd = b->need;
  if (!nd) return;
  for (int i = 0; i < nd->n; i++)
    if (!strcmp(nd->name[i], name)) return;
  if (nd->n == nd->cap) {
    int cap = nd->cap ? 2 * nd->cap : 32;
    char **q = jx_realloc(nd->name, sizeof *q * (size_t)cap);
    if (!q) {
      b->oom = true;
      return;
    }
    nd->name = q, nd->cap = cap;
  }
  if (!(nd->name[nd->n] = jx_strdup(name)))
    b->oom = true;
  else
    nd->n++;
}
