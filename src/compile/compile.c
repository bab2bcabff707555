/* jx_compile: the jit pipeline, one step after the other (DESIGN §3):
 *
 *   optimize -> typecheck -> fuse -> verify program -> render -> build
 *
 * The passes (compile/pass_*.c, run by jx_optimize) and fusion
 * (compile/fuse.c) each live in their own file; the checks between them
 * (jx_jaxpr_typecheck after every pass, jx_program_verify after fusion)
 * run in debug and sanitizer builds (JX_DEBUG_CHECKS, set by
 * CMakeLists.txt), so that a pass that breaks its output is caught where
 * it does, with a message, instead of as wrong numbers or a crash later.
 * Rendering and building go through the backend; when either fails the
 * executable interprets the optimized jaxpr (compile/exec.c). */
#include "compile/executable.h"
#include "compile/passes.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifdef JX_DEBUG_CHECKS
enum { CHECKS = 1 };
#else
enum { CHECKS = 0 };
#endif

bool jx_compile_checks_enabled(void) { return CHECKS; }

double jx_now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* ---------------------------------------------------------- dumps */
void jx_dump(const char *name, const char *text) {
  const char *dir = getenv("JX_DUMP");
  if (!dir || !*dir || !text) return;
  static atomic_int counter;
  char path[4096];
  snprintf(path, sizeof path, "%s/%04d-%s", dir, atomic_fetch_add(&counter, 1), name);
  FILE *f = fopen(path, "w");
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

static void dump_jaxpr(const char *name, const jx_jaxpr *j) {
  if (!getenv("JX_DUMP")) return;
  char *s = jx_jaxpr_print(j);
  jx_dump(name, s);
  jx_free(s);
}

/* ------------------------------------------------------------- the steps */
static bool all_consts_concrete(const jx_jaxpr *j) {
  for (int i = 0; i < j->nconst; i++)
    if (!jx_is_array(j->consts[i])) return false;
  return true;
}

/* The checks between the steps: a failed one is a compiler bug, so an
 * error (not a fallback to the interpreter) naming the step. */
static bool typecheck(const jx_jaxpr *opt, jx_t *err) {
  jx_t e = CHECKS ? jx_jaxpr_typecheck(opt) : NULL;
  if (e) *err = jx_error_new("jit: the optimized jaxpr is ill-typed: %s", jx_error(e));
  return !e;
}

static bool verify(jx_program *p, jx_t *err) {
  jx_t e = CHECKS ? jx_program_verify(p) : NULL;
  if (e) *err = jx_error_new("jit: fusion made a malformed program: %s", jx_error(e));
  return !e;
}

/* A failed fusion, render or build is recovered from (the executable
 * interprets), so it is not a user error. But interpreting is many times
 * slower, which should never be silent: said once per process whatever
 * JX_LOG asks (but quiet), naming the function by its signature and the
 * cause (a missing rendering names the primitive). */
static void say_fallback(const jx_jaxpr *j, jx_t cause) {
  static atomic_int told;
  const char *jlog = getenv("JX_LOG");
  if ((jlog && strstr(jlog, "quiet")) || atomic_exchange(&told, 1)) return;
  char sig[256] = "", a[64];
  size_t n = 0;
  for (int i = 0; i < j->nin && n + 8 < sizeof sig; i++) {
    jx_aval_str(&j->avals[j->invars[i]], a, sizeof a);
    n += (size_t)snprintf(sig + n, sizeof sig - n, "%s%s", i ? ", " : "", a);
  }
  jx_diag("jit: falling back to the interpreter (much slower) for the function of (%s), %d equation%s: %s",
          sig, j->neqn, j->neqn == 1 ? "" : "s", cause ? jx_error(cause) : "render failed");
}

/* NULL: fusion failed, and the jaxpr is interpreted */
static jx_program *fuse(const jx_jaxpr *opt) {
  jx_t ferr = NULL;
  jx_program *p = jx_fuse(opt, &ferr);
  if (!p) say_fallback(opt, ferr);
  return p;
}

/* Render and build (NULL: interpret). */
static jx_module *render_and_build(const jx_backend *be, const jx_jaxpr *opt, const jx_program *p) {
  jx_t berr = NULL;
  bool quiet = jx_errors_quiet(true);
  char *src = be->render(p, &berr);
  jx_dump("program.c", src);
  jx_module *m = src ? be->build(src, p->nkernel, &berr) : NULL;
  jx_errors_quiet(quiet);
  if (!m) say_fallback(opt, berr);
  jx_free(src);
  return m;
}

jx_executable *jx_compile(jx_jaxpr *j, const jx_backend *be, const jx_compile_host *host, jx_t *err) {
  *err = NULL;
  double t0 = jx_now_ms();
  jx_executable *x = jx_calloc(1, sizeof *x);
  if (!x) {
    *err = jx_error_new("jit: out of memory");
    return NULL;
  }
  x->be = be, x->host = host;
  dump_jaxpr("jaxpr-before.txt", j);
  bool ok = (x->opt = jx_optimize(j, err)) && typecheck(x->opt, err);
  double t1 = jx_now_ms();
  if (ok) dump_jaxpr("jaxpr-after.txt", x->opt);
  if (ok && all_consts_concrete(x->opt)) x->prog = fuse(x->opt);
  ok = ok && (!x->prog || verify(x->prog, err));
  if (ok && x->prog) x->mod = render_and_build(be, x->opt, x->prog);
  if (!ok) {
    jx_executable_free(x);
    return NULL;
  }
  if (x->mod) x->prof = jx_profile_new(x->prog);
  if (jx_diag_enabled("compile"))
    jx_diag("jit: %d equations -> %d after passes, %d kernels; passes %.2f ms, total %.1f ms", j->neqn,
            x->opt->neqn, x->prog ? x->prog->nkernel : 0, t1 - t0, jx_now_ms() - t0);
  return x;
}

void jx_executable_free(jx_executable *x) {
  if (!x) return;
  jx_profile_free(x->prof);
  if (x->mod) x->be->module_free(x->mod);
  jx_program_free(x->prog);
  jx_jaxpr_release(x->opt);
  jx_free(x);
}
