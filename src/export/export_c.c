/* jx_export_c: a function as a dependency-free C unit (DESIGN §6b).
 *
 * The jit pipeline up to its loop IR (trace, the passes, fusion), then the
 * CPU renderer's portable target (backend/cpu/render_portable.c) instead
 * of the jit's runtime target. Everything is rendered in memory first and
 * the files are written atomically (a temporary renamed into place), so a
 * failure never leaves a broken or half-written file. */
#include "api/api.h"
#include "api/trace_fn.h"
#include "backend/cpu/portable.h"
#include "compile/compile.h"
#include "compile/passes.h"

#include <stdio.h>
#include <unistd.h>

enum { MAX_NAME = 64 };

static bool is_identifier(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > MAX_NAME || (s[0] >= '0' && s[0] <= '9')) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  }
  return true;
}

/* C's keywords and the names of <math.h>, <string.h> and <stdint.h> that
 * an entry point would collide with (the unit includes those headers) */
static const char *const reserved[] = {
    "auto",     "break",     "case",     "char",      "const",  "continue",  "default", "do",     "double",
    "else",     "enum",      "extern",   "float",     "for",    "goto",      "if",      "inline", "int",
    "long",     "register",  "restrict", "return",    "short",  "signed",    "sizeof",  "static", "struct",
    "switch",   "typedef",   "union",    "unsigned",  "void",   "volatile",  "while",   "main",   "memcpy",
    "memset",   "memmove",   "memcmp",   "strlen",    "acos",   "asin",      "atan",    "atan2",  "cos",
    "sin",      "tan",       "cosh",     "sinh",      "tanh",   "acosh",     "asinh",   "atanh",  "exp",
    "exp2",     "expm1",     "log",      "log10",     "log1p",  "log2",      "logb",    "pow",    "sqrt",
    "cbrt",     "hypot",     "erf",      "erfc",      "lgamma", "tgamma",    "ceil",    "floor",  "round",
    "trunc",    "fabs",      "fmod",     "remainder", "fma",    "fmax",      "fmin",    "fdim",   "nan",
    "frexp",    "ldexp",     "modf",     "scalbn",    "ilogb",  "nearbyint", "rint",    "lrint",  "lround",
    "copysign", "nextafter", "bool",     "true",      "false"};

/* Whether the name could clash: a keyword, a library name, reserved by C
 * (a leading underscore), or jx's prefix. (The renderer also refuses a
 * name that the unit's own code uses.) */
static bool is_reserved(const char *s) {
  for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++) {
    size_t k = strlen(reserved[i]);
    /* float variants of libm (sinf, expf) and long double ones (sinl) too */
    if (!strncmp(s, reserved[i], k) && (!s[k] || (!s[k + 1] && (s[k] == 'f' || s[k] == 'l')))) return true;
  }
  if (s[0] == '_' || !strncmp(s, "jx_", 3) || !strncmp(s, "JX_", 3)) return true;
  return false;
}

/* Write n bytes (two parts, the second may be NULL) to path via a
 * temporary in the same directory, renamed into place. */
static jx_t write_atomic(const char *path, const void *a, size_t na, const void *b, size_t nb) {
  char *tmp = jx_asprintf("%s.tmp%ld", path, (long)getpid());
  if (!tmp) return jx_error_new("export: out of memory");
  FILE *f = fopen(tmp, "wb");
  bool ok = f && fwrite(a, 1, na, f) == na && (!nb || fwrite(b, 1, nb, f) == nb);
  if (f && fclose(f)) ok = false;
  if (ok && rename(tmp, path)) ok = false;
  jx_t err = ok ? NULL : jx_error_new("export: cannot write %s", path);
  if (!ok) remove(tmp);
  jx_free(tmp);
  return err;
}

static int64_t bytes_of(const jx_program *p, int b) {
  return jx_aval_size(&p->bufs[b].aval) * (int64_t)jx_dtype_size(p->bufs[b].aval.dtype);
}

/* the constants taken as inputs, their bytes one after the other */
static jx_t write_consts(const jx_program *p, const jx_portable_unit *u, const char *path) {
  size_t total = 0;
  for (int i = 0; i < u->nconst_in; i++) total += (size_t)bytes_of(p, u->const_buf[i]);
  char *all = jx_malloc(total ? total : 1);
  if (!all) return jx_error_new("export: out of memory");
  size_t at = 0;
  for (int i = 0; i < u->nconst_in; i++) {
    const jx_lbuf *lb = &p->bufs[u->const_buf[i]];
    size_t n = (size_t)bytes_of(p, u->const_buf[i]);
    if (n) memcpy(all + at, jx_data(p->consts[lb->index]), n);
    at += n;
  }
  jx_t err = write_atomic(path, all, total, NULL, 0);
  jx_free(all);
  return err;
}

static jx_t write_unit(const jx_program *p, const jx_portable_unit *u, const char *name, const char *dir) {
  char *c = jx_asprintf("%s/%s.c", dir, name), *h = jx_asprintf("%s/%s.h", dir, name);
  char *k = u->nconst_in ? jx_asprintf("%s/%s_consts.bin", dir, name) : NULL;
  jx_t err = !c || !h || (u->nconst_in && !k) ? jx_error_new("export: out of memory") : NULL;
  if (!err && k) err = write_consts(p, u, k);
  if (!err) err = write_atomic(h, u->hdr, strlen(u->hdr), NULL, 0);
  if (!err) err = write_atomic(c, u->src, strlen(u->src), NULL, 0);
  jx_free(c);
  jx_free(h);
  jx_free(k);
  return err;
}

static bool consts_concrete(const jx_jaxpr *j) {
  for (int i = 0; i < j->nconst; i++)
    if (!jx_is_array(j->consts[i])) return false;
  return true;
}

/* trace, optimize, fuse, render, write (inside the caller's pool push) */
static jx_t export_in_pool(jx_fn *f, const jx_t *args, const char *name, const char *dir,
                           const jx_export_options *o) {
  jx_t err = NULL;
  jx_jaxpr *j = jx_trace_to_jaxpr_for("export", f, args, NULL, &err);
  if (!j) return err;
  jx_jaxpr *opt = jx_optimize(j, &err);
  jx_jaxpr_release(j);
  if (!opt) return err;
  if (!consts_concrete(opt)) {
    jx_jaxpr_release(opt);
    return jx_error_new(
        "export: the function closes over a traced value (export it outside any transformation)");
  }
  jx_program *p = jx_fuse(opt, &err);
  if (p) {
    jx_portable_opts po = {
        .consts_as_inputs = o && o->consts_as_inputs, .openmp = o && o->openmp, .simd = o && o->simd};
    jx_portable_unit u;
    err = jx_cpu_render_portable(p, opt->nin, name, &po, &u);
    if (!err) err = write_unit(p, &u, name, dir);
    jx_portable_unit_free(&u);
  }
  jx_program_free(p);
  jx_jaxpr_release(opt);
  return err;
}

jx_t jx_export_c_ex(jx_fn *f, const jx_t *args, const char *name, const char *dir,
                    const jx_export_options *o) {
  if (!f) return jx_error_new("export: no function (NULL)");
  if (!name || !is_identifier(name))
    return jx_error_new("export: the name '%s' is not a C identifier of at most %d characters",
                        name ? name : "(null)", MAX_NAME);
  if (is_reserved(name))
    return jx_error_new(
        "export: the name '%s' is reserved in C or in the exported unit (a keyword, a libc/libm "
        "name, a leading '_' or 'jx_')",
        name);
  if (!dir || !*dir) return jx_error_new("export: no directory");
  jx_pool_push();
  jx_t err = export_in_pool(f, args, name, dir, o);
  if (err) jx_retain(err);
  jx_pool_pop();
  return err ? jx_pool_own(err) : NULL;
}

jx_t jx_export_c(jx_fn *f, const jx_t *args, const char *name, const char *dir) {
  return jx_export_c_ex(f, args, name, dir, NULL);
}
