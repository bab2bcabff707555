/* jx_export_load: a serialized function (serialize.c, docs/API.md
 * "Export") back as a jx_fn. It binds jit_call on the loaded jaxpr, so it
 * runs compiled and every transformation applies (jit_call's rules).
 *
 * The file is hostile until proven otherwise: see serialize.c's comment for
 * what is checked. Errors name the line. */
#include "export/format.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
  const char *s, *end;
  int line;
  int version; /* the file's format version */
  jx_t err;
} rd;

static bool fail(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(rd *r, const char *fmt, ...) {
  if (r->err) return false;
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  r->err = jx_error_new("export_load: line %d: %s", r->line, msg);
  return false;
}

/* the next blank-separated token of this line into w (NUL-terminated) */
static bool word(rd *r, char *w, size_t cap) {
  while (r->s < r->end && *r->s == ' ') r->s++;
  size_t n = 0;
  while (r->s < r->end && *r->s != ' ' && *r->s != '\n') {
    if (n + 1 >= cap) return fail(r, "token too long");
    w[n++] = *r->s++;
  }
  w[n] = 0;
  return n > 0 ? true : fail(r, "a token is missing");
}

static bool num(rd *r, int64_t lo, int64_t hi, int64_t *v) {
  char w[32], *e;
  if (!word(r, w, sizeof w)) return false;
  errno = 0;
  long long x = strtoll(w, &e, 10);
  if (*e || errno || x < lo || x > hi)
    return fail(r, "'%s' is not a number in [%lld, %lld]", w, (long long)lo, (long long)hi);
  *v = x;
  return true;
}

static bool inum(rd *r, int64_t lo, int64_t hi, int *v) {
  int64_t x;
  if (!num(r, lo, hi, &x)) return false;
  *v = (int)x;
  return true;
}

static bool eol(rd *r) {
  while (r->s < r->end && *r->s == ' ') r->s++;
  if (r->s >= r->end || *r->s != '\n') return fail(r, "expected the end of the line");
  r->s++, r->line++;
  return true;
}

static bool keyword(rd *r, const char *kw) {
  char w[32];
  if (!word(r, w, sizeof w)) return false;
  return strcmp(w, kw) ? fail(r, "expected '%s', found '%s'", kw, w) : true;
}

/* how many more lines the file can hold: bounds every count */
static int64_t room(const rd *r) { return (int64_t)(r->end - r->s) + 1; }

static bool dtype_of(rd *r, jx_dtype *dt) {
  char w[32];
  if (!word(r, w, sizeof w)) return false;
  for (int d = 0; d < JX_DTYPE_COUNT; d++)
    if (!strcmp(w, jx_dtype_name((jx_dtype)d))) return *dt = (jx_dtype)d, true;
  return fail(r, "unknown dtype '%s'", w);
}

static bool aval_line(rd *r, jx_aval *a) {
  int weak, nd;
  *a = (jx_aval){0};
  if (!dtype_of(r, &a->dtype) || !inum(r, 0, 1, &weak) || !inum(r, 0, JX_MAX_RANK, &nd)) return false;
  a->weak = weak, a->ndim = (int8_t)nd;
  for (int d = 0; d < nd; d++)
    if (!num(r, 0, INT64_C(1) << 48, &a->shape[d])) return false;
  char err[200];
  if (jx_shape_check(a->ndim, a->shape, a->dtype, err, sizeof err)) return fail(r, "%s", err);
  return eol(r);
}

/* ------------------------------------------------------------- jaxprs */
typedef struct {
  jx_jaxpr **js;
  int n, cap;
} loaded;

typedef struct {
  jx_jaxpr *j;
  int nvars;
  jx_aval *avals;
  int *map; /* file var -> jaxpr var, -1: not defined yet */
} block;

static bool fresh_var(rd *r, block *b, int *v) {
  if (!inum(r, 0, b->nvars - 1, v)) return false;
  return b->map[*v] < 0 ? true : fail(r, "variable %d defined twice", *v);
}

static bool used_var(rd *r, block *b, int *v) {
  int f;
  if (!inum(r, 0, b->nvars - 1, &f)) return false;
  if (b->map[f] < 0) return fail(r, "variable %d used before it is defined", f);
  *v = b->map[f];
  return true;
}

static int hexval(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool const_line(rd *r, block *b) {
  int v;
  if (!fresh_var(r, b, &v)) return false;
  const jx_aval *a = &b->avals[v];
  size_t n = (size_t)jx_aval_size(a) * jx_dtype_size(a->dtype);
  while (r->s < r->end && *r->s == ' ') r->s++;
  if ((size_t)(r->end - r->s) < 2 * n) return fail(r, "constant %d: the file ends inside its bytes", v);
  unsigned char *d = jx_malloc(n ? n : 1);
  if (!d) return fail(r, "out of memory");
  for (size_t i = 0; i < n; i++) {
    int hi = hexval(r->s[2 * i]), lo = hexval(r->s[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      jx_free(d);
      return fail(r, "constant %d: byte %zu is not two lowercase hex digits", v, i);
    }
    d[i] = (unsigned char)(hi * 16 + lo);
  }
  r->s += 2 * n;
  if (!n && r->s < r->end && *r->s == '-') r->s++;
  if (a->dtype == JX_BOOL)
    for (size_t i = 0; i < n; i++) d[i] = d[i] != 0; /* bool bytes are 0 or 1 */
  jx_t x = jx_array(a->dtype, a->ndim, a->shape, d);
  jx_free(d);
  if (!jx_ok(x)) return fail(r, "constant %d: %s", v, jx_error(x));
  x->aval.weak = a->weak;
  b->map[v] = jx_jaxpr_add_const(b->j, x);
  return b->map[v] < 0 ? fail(r, "out of memory") : eol(r);
}

static bool read_params(rd *r, const loaded *L, jx_prim p, jx_params *pa) {
  const jx_rules *ru = jx_prim_rules[p];
  const jx_xfield *f = jx_xf_kind_fields[ru->params_kind];
  char w[32];
  if (!word(r, w, sizeof w)) return false;
  if (!f || strcmp(w, jx_params_kind_names[ru->params_kind]))
    return fail(r, "%s takes params of kind %s, not '%s'", ru->name, jx_params_kind_names[ru->params_kind],
                w);
  jx_params_init(pa, ru->params_kind);
  for (int i = 0; f[i].len; i++)
    for (int k = 0; k < f[i].len && jx_xf_field_since(ru->params_kind, &f[i]) <= r->version; k++) {
      char *at = (char *)pa + f[i].off;
      int64_t v = 0;
      jx_dtype dt = JX_F32;
      if (f[i].t == F_DTYPE) {
        if (!dtype_of(r, &dt)) return false;
        ((jx_dtype *)at)[k] = dt;
        continue;
      }
      if (f[i].t == F_JAXPR) {
        if (!num(r, 0, L->n - 1, &v)) return fail(r, "an inner jaxpr must be one of the %d before", L->n);
        ((jx_jaxpr **)at)[k] = L->js[v];
        continue;
      }
      if (!num(r, f[i].lo, f[i].hi, &v)) return false;
      if (f[i].t == F_I8) ((int8_t *)at)[k] = (int8_t)v;
      if (f[i].t == F_I32) ((int32_t *)at)[k] = (int32_t)v;
      if (f[i].t == F_I64) ((int64_t *)at)[k] = v;
      if (f[i].t == F_BOOL) ((bool *)at)[k] = v != 0;
      if (f[i].t == F_BITS64) memcpy(at + 8 * k, &v, 8);
    }
  return true;
}

/* operand counts against the rules and the inner jaxprs' arities: what
 * the rules assume before they look (abstract_eval writes one aval per
 * inner output) */
static bool check_arity(rd *r, jx_prim p, const jx_params *pa, int nin, int nout) {
  const jx_rules *ru = jx_prim_rules[p];
  if (ru->nin >= 0 ? nin != ru->nin : nin < 1)
    return fail(r, "%s takes %d inputs, not %d", ru->name, ru->nin, nin);
  if (ru->nout >= 0 && nout != ru->nout)
    return fail(r, "%s has %d outputs, not %d", ru->name, ru->nout, nout);
  const jx_jaxpr *a, *b;
  switch (pa->kind) {
    case JX_PK_CALL:
      a = pa->call.jaxpr;
      return a->nin == nin && a->nout == nout ? true
                                              : fail(r, "jit_call's jaxpr does not match its operands");
    case JX_PK_COND:
      a = pa->cond.on_true, b = pa->cond.on_false;
      return a->nin == nin - 1 && b->nin == nin - 1 && a->nout == nout && b->nout == nout
                 ? true
                 : fail(r, "cond's branches do not match its operands");
    case JX_PK_WHILE:
    case JX_PK_BWHILE: { /* while_bounded's params start with while's fields */
      int nc = pa->while_.ncconst, nb = pa->while_.nbconst, n = nin - nc - nb;
      a = pa->while_.cond, b = pa->while_.body;
      return n >= 0 && a->nin == nc + n && a->nout == 1 && b->nin == nb + n && b->nout == n && nout == n
                 ? true
                 : fail(r, "while's jaxprs do not match its operands");
    }
    case JX_PK_SCAN:
      a = pa->scan.body;
      return pa->scan.nconst + pa->scan.ncarry <= nin && a->nin == nin && a->nout == nout &&
                     nout >= pa->scan.ncarry
                 ? true
                 : fail(r, "scan's body does not match its operands");
    default: return true;
  }
}

static bool eqn_line(rd *r, const loaded *L, block *b, int *scratch, jx_aval *oav) {
  char w[64];
  if (!word(r, w, sizeof w)) return false;
  int p = -1, nin, nout;
  for (int i = 0; i < JX_PRIM_COUNT && p < 0; i++)
    if (!strcmp(w, jx_prim_names[i])) p = i;
  if (p < 0) return fail(r, "unknown primitive '%s'", w);
  if (!inum(r, 0, b->nvars, &nin)) return false;
  for (int i = 0; i < nin; i++)
    if (!used_var(r, b, &scratch[i])) return false;
  int *outs = scratch + nin, *ofile = outs + b->nvars + 1;
  if (!inum(r, 0, b->nvars, &nout)) return false;
  for (int i = 0; i < nout; i++) {
    if (!fresh_var(r, b, &ofile[i])) return false;
    for (int k = 0; k < i; k++)
      if (ofile[k] == ofile[i]) return fail(r, "variable %d defined twice", ofile[i]);
    oav[i] = b->avals[ofile[i]];
  }
  jx_params pa;
  if (!read_params(r, L, (jx_prim)p, &pa) || !check_arity(r, (jx_prim)p, &pa, nin, nout)) return false;
  if (jx_jaxpr_add_eqn(b->j, (jx_prim)p, &pa, nin, scratch, nout, oav, outs) < 0)
    return fail(r, "out of memory");
  for (int i = 0; i < nout; i++) b->map[ofile[i]] = outs[i];
  return eol(r);
}

static bool var_list(rd *r, block *b, const char *kw, bool define) {
  int n, v;
  if (!keyword(r, kw) || !inum(r, 0, b->nvars, &n)) return false;
  int *vars = jx_malloc(sizeof(int) * (size_t)(n ? n : 1));
  if (!vars) return fail(r, "out of memory");
  bool ok = true;
  for (int i = 0; ok && i < n; i++) {
    if (define) {
      ok = fresh_var(r, b, &v);
      if (ok) b->map[v] = vars[i] = jx_jaxpr_add_invar(b->j, &b->avals[v]);
      ok = ok && vars[i] >= 0;
    } else
      ok = used_var(r, b, &vars[i]);
  }
  if (ok && !define && jx_jaxpr_set_outs(b->j, n, vars) < 0) ok = fail(r, "out of memory");
  jx_free(vars);
  return ok && eol(r);
}

static bool block_body(rd *r, const loaded *L, block *b) {
  int n;
  if (!keyword(r, "consts") || !inum(r, 0, b->nvars, &n) || !eol(r)) return false;
  for (int c = 0; c < n; c++)
    if (!const_line(r, b)) return false;
  if (!var_list(r, b, "in", true)) return false;
  if (!keyword(r, "eqns") || !inum(r, 0, room(r), &n) || !eol(r)) return false;
  int *scratch = jx_malloc(sizeof(int) * (3 * (size_t)b->nvars + 3));
  jx_aval *oav = jx_malloc(sizeof(jx_aval) * ((size_t)b->nvars + 1));
  bool ok = scratch && oav ? true : fail(r, "out of memory");
  for (int e = 0; ok && e < n; e++) ok = eqn_line(r, L, b, scratch, oav);
  jx_free(scratch);
  jx_free(oav);
  return ok && var_list(r, b, "out", false) && keyword(r, "end") && eol(r);
}

/* one "jaxpr ... end" block, typechecked */
static jx_jaxpr *read_jaxpr(rd *r, const loaded *L) {
  block b = {.j = jx_jaxpr_new()};
  bool ok = b.j && keyword(r, "vars") && inum(r, 0, room(r), &b.nvars) && eol(r);
  if (ok) {
    b.avals = jx_malloc(sizeof(jx_aval) * (size_t)(b.nvars + 1));
    b.map = jx_malloc(sizeof(int) * (size_t)(b.nvars + 1));
    ok = b.avals && b.map ? true : fail(r, "out of memory");
  }
  for (int v = 0; ok && v < b.nvars; v++) b.map[v] = -1, ok = aval_line(r, &b.avals[v]);
  ok = ok && block_body(r, L, &b);
  jx_t e = ok ? jx_jaxpr_typecheck(b.j) : NULL;
  if (e) ok = fail(r, "%s", jx_error(e));
  jx_free(b.avals);
  jx_free(b.map);
  if (!ok) {
    jx_jaxpr_release(b.j);
    if (!r->err) fail(r, "out of memory");
    return NULL;
  }
  return b.j;
}

/* ------------------------------------------------------------ the function */
typedef struct {
  jx_jaxpr *j;
  char *out_tree;
  int nargs;
} loaded_fn;

static void loaded_free(void *u) {
  loaded_fn *l = u;
  jx_jaxpr_release(l->j);
  jx_free(l->out_tree);
  jx_free(l);
}

/* the output tree from its skeleton text and the flat outputs */
static jx_t build_tree(const char **t, const jx_t *outs, int n, int *used, int depth) {
  char c = **t;
  if (c == '*') {
    (*t)++;
    return *used < n ? outs[(*used)++] : jx_error_new("export_load: the output tree has too many leaves");
  }
  char close = c == '(' ? ')' : c == '[' ? ']' : c == '{' ? '}' : 0;
  if (!close || depth > JX_XF_MAX_DEPTH) return jx_error_new("export_load: a malformed output tree");
  (*t)++;
  jx_t items[64];
  char *keys[64];
  const char *kp[64];
  int k = 0;
  jx_t err = NULL;
  while (!err && **t != close) {
    if (k && *(*t)++ != ',') err = jx_error_new("export_load: a malformed output tree");
    if (!err && k == 64) err = jx_error_new("export_load: an output tree node with over 64 items");
    if (err) break;
    keys[k] = NULL;
    if (close == '}') { /* hex key, then ':' */
      size_t m = strcspn(*t, ":");
      keys[k] = (*t)[m] == ':' && m % 2 == 0 ? jx_malloc(m / 2 + 1) : NULL;
      for (size_t i = 0; keys[k] && i < m / 2; i++) {
        int hi = hexval((*t)[2 * i]), lo = hexval((*t)[2 * i + 1]);
        keys[k][i] = (char)(hi * 16 + lo);
        if (hi < 0 || lo < 0 || !keys[k][i]) jx_free(keys[k]), keys[k] = NULL;
      }
      if (!keys[k]) {
        err = jx_error_new("export_load: a malformed dict key in the output tree");
        break;
      }
      keys[k][m / 2] = 0;
      *t += m + 1;
    }
    items[k] = build_tree(t, outs, n, used, depth + 1);
    kp[k] = keys[k];
    if (!jx_ok(items[k])) err = items[k];
    k++;
  }
  if (!err) (*t)++;
  jx_t r = err            ? err
           : close == ')' ? jx_tuple(k, items)
           : close == ']' ? jx_list(k, items)
                          : jx_dict(k, kp, items);
  for (int i = 0; close == '}' && i < k; i++) jx_free(keys[i]);
  return r;
}

static jx_t loaded_body(const jx_t *args, void *u) {
  const loaded_fn *l = u;
  const jx_jaxpr *j = l->j;
  jx_t all = jx_tuple(l->nargs, args);
  int n = jx_ok(all) ? jx_tree_leaves_to(all, NULL, 0) : -1;
  if (n != j->nin)
    return jx_ok(all) ? jx_error_new("export_load: the function takes %d leaves, given %d", j->nin, n) : all;
  jx_t *leaf = jx_malloc(sizeof(jx_t) * (size_t)(n + j->nout + 1)), *outs = leaf + n;
  if (!leaf) return jx_error_new("export_load: out of memory");
  jx_tree_leaves_to(all, leaf, n);
  jx_t err = NULL;
  for (int i = 0; i < n && !err; i++) {
    const jx_aval *want = &j->avals[j->invars[i]];
    jx_aval got = leaf[i]->aval;
    got.weak = want->weak;
    if (!jx_aval_eq(&got, want)) {
      char s1[160], s2[160];
      err = jx_error_new("export_load: leaf %d is %s, the function takes %s", i,
                         jx_aval_str(&leaf[i]->aval, s1, sizeof s1), jx_aval_str(want, s2, sizeof s2));
    } else if (leaf[i]->aval.weak && !want->weak) /* a weak scalar where the trace had a strong one */
      leaf[i] = jx_astype(leaf[i], want->dtype);
  }
  jx_params pa;
  jx_params_init(&pa, JX_PK_CALL);
  pa.call.jaxpr = l->j;
  if (!err) err = jx_bind(JX_P_jit_call, n, leaf, &pa, j->nout, outs);
  int used = 0;
  const char *t = l->out_tree;
  jx_t r = err ? err : build_tree(&t, outs, j->nout, &used, 0);
  if (jx_ok(r) && (used != j->nout || *t))
    r = jx_error_new("export_load: the output tree does not match the outputs");
  jx_free(leaf);
  return r;
}

/* ------------------------------------------------------------- the file */
static bool read_header(rd *r, int *nargs, char *in_tree, char *out_tree, size_t cap) {
  int64_t v;
  if (!keyword(r, "jx-export") || !num(r, 0, 1000000, &v)) return false;
  if (v < 1 || v > JX_XF_VERSION)
    return fail(r, "format version %lld, this jx reads versions 1 to %d", (long long)v, JX_XF_VERSION);
  r->version = (int)v;
  return eol(r) && keyword(r, "fn") && inum(r, 0, 1 << 16, nargs) && word(r, in_tree, cap) &&
         word(r, out_tree, cap) && eol(r);
}

static loaded_fn *load_text(rd *r) {
  size_t cap = (size_t)(r->end - r->s) + 1;
  char *in_tree = jx_malloc(cap), *out_tree = jx_malloc(cap);
  loaded L = {0};
  int nargs = 0;
  jx_jaxpr *top = NULL;
  bool ok = in_tree && out_tree ? read_header(r, &nargs, in_tree, out_tree, cap) : fail(r, "out of memory");
  while (ok && r->s < r->end) {
    ok = keyword(r, "jaxpr") && eol(r);
    jx_jaxpr *j = ok ? read_jaxpr(r, &L) : NULL;
    if (j && L.n == L.cap) {
      int c = L.cap ? 2 * L.cap : 8;
      jx_jaxpr **q = jx_realloc(L.js, sizeof *q * (size_t)c);
      if (q) L.js = q, L.cap = c;
    }
    if (j && L.n < L.cap)
      L.js[L.n++] = j;
    else if (j)
      jx_jaxpr_release(j), ok = fail(r, "out of memory");
    ok = ok && j;
  }
  if (ok && !L.n) ok = fail(r, "no jaxpr");
  if (ok) top = L.js[L.n - 1], jx_jaxpr_retain(top);
  for (int i = 0; i < L.n; i++) jx_jaxpr_release(L.js[i]); /* inner ones live on in their equations' params */
  jx_free(L.js);
  jx_free(in_tree);
  loaded_fn *l = ok ? jx_malloc(sizeof *l) : NULL;
  if (l) *l = (loaded_fn){top, out_tree, nargs};
  if (!l) {
    jx_jaxpr_release(top);
    jx_free(out_tree);
    if (ok) fail(r, "out of memory");
    return NULL;
  }
  return l;
}

enum { MAX_FILE = 1 << 30 };

jx_fn *jx_export_load(const char *path) {
  if (!path) return jx_fn_error_new("export_load: no path (NULL)");
  FILE *f = fopen(path, "rb");
  if (!f) return jx_fn_error_new("export_load: cannot open %s", path);
  long n = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
  char *text = n >= 0 && n <= MAX_FILE && !fseek(f, 0, SEEK_SET) ? jx_malloc((size_t)n + 1) : NULL;
  bool ok = text && fread(text, 1, (size_t)n, f) == (size_t)n;
  fclose(f);
  if (!ok) {
    jx_free(text);
    return jx_fn_error_new("export_load: cannot read %s (or it is over %d bytes)", path, MAX_FILE);
  }
  text[n] = 0;
  jx_fn *fn = jx_export_load_text(text, (size_t)n);
  jx_free(text);
  return fn;
}

jx_fn *jx_export_load_text(const char *text, size_t n) {
  /* the work in a pool of its own; the function is made after it, in the
   * caller's pool (a jx_fn belongs to the pool it is made in) */
  jx_pool_push();
  rd r = {text, text + n, 1, 0, NULL};
  loaded_fn *l = text ? load_text(&r) : NULL;
  jx_t err = l ? NULL : r.err ? r.err : jx_error_new("export_load: no text");
  char *msg = err ? jx_strdup(jx_error(err)) : NULL;
  jx_pool_pop();
  if (l) return jx_fn_make(loaded_body, l->nargs, l, loaded_free, "export_load");
  jx_fn *e = jx_fn_error_new("%s", msg ? msg : "export_load: out of memory");
  jx_free(msg);
  return e;
}
