/* The C renderer's prelude (backend/cpu/render_prelude.c): a generated
 * program pastes only the parts of scalar_ops.h it calls.
 *
 * - every part, pasted alone (with what it declares it needs), compiles
 *   and defines every function it lists, and only the streaming part
 *   brings in emmintrin.h;
 * - a function no part defines is an error at render time naming it, not
 *   a C compiler failure (which jit would silently interpret around);
 * - programs calling ops of every dtype, conversions, selects, reductions
 *   and tanh are compiled (a module is built, not interpreted) and agree
 *   with eager;
 * - a program that streams no output does not include emmintrin.h. */
#include "backend/cpu/render.h"
#include "check.h"
#include "jit_build.h"
#include "jx.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int jx_cpu_module_count(void);

static const char *compiler(void) {
  const char *cc = getenv("JX_CC");
  return cc && *cc ? cc : "cc";
}

static bool have_compiler(void) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "%s --version >/dev/null 2>&1", compiler());
  return system(cmd) == 0;
}

/* the functions of a part's list, into names[] (strings in `store`) */
static int split_list(const char *s, size_t n, char *store, size_t cap, const char **names, int max) {
  int k = 0;
  size_t w = 0;
  for (size_t i = 0; i < n && k < max;) {
    while (i < n && strchr(" \t\n*", s[i])) i++;
    size_t j = i;
    while (j < n && !strchr(" \t\n*", s[j])) j++;
    if (j > i && w + (j - i) + 1 <= cap) {
      memcpy(store + w, s + i, j - i);
      store[w + (j - i)] = 0;
      names[k++] = store + w;
      w += j - i + 1;
    }
    i = j;
  }
  return k;
}

/* whether `src` compiles (syntax and semantics, no code) as the jit's C */
static bool compiles(const char *src) {
  char path[] = "/tmp/jx-test-render-XXXXXX.c";
  int fd = mkstemps(path, 2);
  if (fd < 0) return false;
  size_t n = strlen(src);
  bool ok = write(fd, src, n) == (ssize_t)n;
  close(fd);
  char cmd[600];
  snprintf(cmd, sizeof cmd,
           "%s -std=c17 -march=native -fsyntax-only -Werror=implicit-function-declaration %s", compiler(),
           path);
  ok = ok && system(cmd) == 0;
  unlink(path);
  return ok;
}

static void test_parts_stand_alone(bool cc) {
  jx_scalar_part pt[JX_MAX_SCALAR_PARTS];
  size_t base;
  const int np = jx_cpu_scalar_parts(pt, JX_MAX_SCALAR_PARTS, &base);
  CHECKF(np > 20, "%d parts", np);
  int with_fns = 0;
  for (int i = 0; i < np; i++) {
    char store[2048];
    const char *names[64];
    const int n = split_list(pt[i].fns, pt[i].flen, store, sizeof store, names, 64);
    if (!n) continue; /* always pasted */
    with_fns++;
    jx_t err;
    char *pre = jx_cpu_prelude(names, n, &err);
    CHECKF(pre != NULL, "part %.*s: %s", (int)pt[i].nlen, pt[i].name, pre ? "" : jx_error(err));
    if (!pre) continue;
    const bool stream = pt[i].nlen == 6 && !memcmp(pt[i].name, "stream", 6);
    CHECKF(stream == (strstr(pre, "#include <emmintrin.h>") != NULL), "part %.*s: emmintrin.h %s",
           (int)pt[i].nlen, pt[i].name, stream ? "missing" : "pasted");
    sb b = {0};
    put(&b, "%s\nvoid *const jx_use[] = {", pre);
    for (int k = 0; k < n; k++) put(&b, "%s(void *)&%s", k ? ", " : "", names[k]);
    put(&b, "};\n");
    CHECKF(!b.oom && (!cc || compiles(b.s)), "part %.*s does not define its list alone", (int)pt[i].nlen,
           pt[i].name);
    jx_free(b.s);
    jx_free(pre);
  }
  CHECKF(with_fns > 20, "%d parts list functions", with_fns);
}

static void test_missing_function(void) {
  jx_t err = NULL;
  const char *names[] = {"add_f32", "sin_i32"};
  char *pre = jx_cpu_prelude(names, 2, &err);
  CHECKF(!pre && err && strstr(jx_error(err), "no C rendering for sin_i32"), "%s",
         err ? jx_error(err) : "no error");
  jx_free(pre);
  /* a whole name, not a prefix of a listed one */
  const char *prefix[] = {"add_f3"};
  pre = jx_cpu_prelude(prefix, 1, &err);
  CHECKF(!pre && err && strstr(jx_error(err), "add_f3"), "%s", err ? jx_error(err) : "no error");
  jx_free(pre);
}

/* float and int arithmetic, comparisons, select, conversions both ways,
 * tanh, and reductions */
static jx_t mixed(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0], n = a[1];
  jx_t i = jx_add(jx_mul(n, n), jx_astype(jx_floor(jx_mul(x, jx_scalar(4))), JX_I32));
  jx_t y = jx_where(jx_lt(x, jx_scalar(0)), jx_tanh(x), jx_exp(jx_neg(x)));
  jx_t z = jx_add(y, jx_astype(i, JX_F32));
  jx_t d = jx_astype(jx_sum(jx_astype(z, JX_F64)), JX_F32);
  return jx_tuple(3, (jx_t[]){jx_add(z, d), jx_max(i), jx_astype(jx_gt(z, jx_scalar(1)), JX_F32)});
}

static void test_programs_compile(bool cc) {
  jx_pool_push();
  jx_t x = jx_arange(JX_F32, -3, 3, 0.25);
  jx_t n = jx_arange(JX_I32, -12, 12, 1);
  jx_t args[2] = {x, n};
  jx_fn *f = jx_fn_new(mixed, 2, NULL), *jf = jx_jit(f);
  const int mods = jx_cpu_module_count();
  jx_t got = jx_call(jf, args), want = jx_call(f, args);
  CHECKF(jx_ok(got), "%s", jx_error(got));
  if (cc)
    CHECKF(jx_cpu_module_count() == mods + 1, "not compiled (%d modules, had %d)", jx_cpu_module_count(),
           mods);
  for (int k = 0; k < 3 && jx_ok(got); k++) {
    jx_t d = jx_max(jx_abs(jx_sub(jx_astype(jx_at(got, k), JX_F64), jx_astype(jx_at(want, k), JX_F64))));
    CHECKF(jx_item(d) <= 1e-5, "output %d differs by %g", k, jx_item(d));
  }
  /* nothing here streams: no emmintrin.h, no part it does not call */
  built bp = build(f, args);
  jx_t rerr = NULL;
  char *src = bp.p ? jx_cpu_backend.render(bp.p, &rerr) : NULL;
  CHECKF(src, "render: %s", rerr ? jx_error(rerr) : bp.err ? jx_error(bp.err) : "failed");
  CHECK(src && !strstr(src, "#include <emmintrin.h>") && !strstr(src, "erf_inv_f32(") &&
        strstr(src, "tanh_f32("));
  jx_free(src);
  built_free(&bp);
  jx_fn_free(jf), jx_fn_free(f);
  jx_pool_pop();
}

int main(void) {
  if (check_private_cache("render")) return 1;
  const bool cc = have_compiler();
  if (!cc) printf("test_render: no C compiler: only rendering is checked\n");
  test_parts_stand_alone(cc);
  test_missing_function();
  test_programs_compile(cc);
  check_private_cache_remove();
  return check_report("test_render");
}
