/* Helpers for tests that export a function as C (jx_export_c), build the
 * unit with a standalone driver (no jx: the driver reads the inputs' bytes
 * from a file, runs the entry point `steps` times -- feeding the first
 * `feed` outputs back as the first inputs, a training loop -- and writes
 * the outputs' bytes), and compare with jx's own jit. */
#ifndef JX_TESTS_EXPORT_HARNESS_H
#define JX_TESTS_EXPORT_HARNESS_H

#include "check.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* the strict flags the exported files must pass (issue #20) */
#define EXPORT_STRICT "-std=c99 -pedantic -Wall -Wextra -Werror"

/* The driver's text for entry point `name` (caller frees). It uses only
 * the header's macros and the entry point. */
__attribute__((unused)) static char *export_driver(const char *name) {
  char up[80];
  size_t i = 0;
  for (; name[i] && i + 1 < sizeof up; i++)
    up[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
  up[i] = 0;
  const char *fmt =
      "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include \"%s.h\"\n"
      "int main(int argc, char **argv) {\n"
      "  static const long ib[] = %s_INPUT_BYTES_LIST, ob[] = %s_OUTPUT_BYTES_LIST;\n"
      "  void *in[%s_NUM_INPUTS + 1], *out[%s_NUM_OUTPUTS + 1], *ws;\n"
      "  long steps = argc > 3 ? atol(argv[3]) : 1, feed = argc > 4 ? atol(argv[4]) : 0, s;\n"
      "  int i, rc = 0;\n  FILE *f = fopen(argv[1], \"rb\"), *g;\n"
      "  if (!f) return 3;\n"
      "  for (i = 0; i < %s_NUM_INPUTS; i++) {\n"
      "    in[i] = malloc((size_t)ib[i] + 1);\n"
      "    if (!in[i] || fread(in[i], 1, (size_t)ib[i], f) != (size_t)ib[i]) return 4;\n  }\n"
      "  fclose(f);\n"
      "  for (i = 0; i < %s_NUM_OUTPUTS; i++) out[i] = malloc((size_t)ob[i] + 1);\n"
      "  ws = malloc((size_t)%s_WORKSPACE_BYTES + 1);\n"
      "  for (s = 0; s < steps && !rc; s++) {\n"
      "    rc = %s((const void *const *)in, out, ws);\n"
      "    for (i = 0; i < feed && s + 1 < steps; i++) memcpy(in[i], out[i], (size_t)ob[i]);\n  }\n"
      "  if (rc) return 5;\n"
      "  g = fopen(argv[2], \"wb\");\n  if (!g) return 6;\n"
      "  for (i = 0; i < %s_NUM_OUTPUTS; i++) fwrite(out[i], 1, (size_t)ob[i], g);\n"
      "  fclose(g);\n"
      "  for (i = 0; i < %s_NUM_INPUTS; i++) free(in[i]);\n"
      "  for (i = 0; i < %s_NUM_OUTPUTS; i++) free(out[i]);\n"
      "  free(ws);\n  return 0;\n}\n";
  size_t n = strlen(fmt) + 16 * strlen(up) + 64;
  char *s = malloc(n);
  if (s) snprintf(s, n, fmt, name, up, up, up, up, up, up, up, name, up, up, up);
  return s;
}

__attribute__((unused)) static int write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fputs(text, f);
  return fclose(f);
}

/* the leaves of tree t as one byte string (each in its own dtype) */
__attribute__((unused)) static char *leaves_bytes(jx_t t, size_t *n) {
  jx_t l = jx_tree_leaves(t);
  size_t total = 0;
  for (int i = 0; i < jx_len(l); i++) {
    jx_t x = jx_at(l, i);
    total += (size_t)jx_size(x) * jx_dtype_size(jx_dtype_of(x));
  }
  char *b = malloc(total + 1), *p = b;
  for (int i = 0; b && i < jx_len(l); i++) {
    jx_t x = jx_at(l, i);
    size_t k = (size_t)jx_size(x) * jx_dtype_size(jx_dtype_of(x));
    if (jx_read(x, jx_dtype_of(x), p, k + 1)) {
      free(b);
      return NULL;
    }
    p += k;
  }
  *n = total;
  return b;
}

__attribute__((unused)) static char *read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)(len > 0 ? len : 0) + 1);
  if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
    free(b);
    b = NULL;
  }
  if (b) b[len > 0 ? len : 0] = 0; /* text files are searched with strstr */
  fclose(f);
  *n = (size_t)len;
  return b;
}

/* element e of an f32 or f64 leaf at p (the leaves are packed: any alignment) */
__attribute__((unused)) static double elem(const char *p, jx_dtype dt, int64_t e) {
  if (dt == JX_F32) {
    float v;
    memcpy(&v, p + e * 4, 4);
    return v;
  }
  double v;
  memcpy(&v, p + e * 8, 8);
  return v;
}

/* values uniform in [-2, 2) from the linear congruential state *s, in
 * dtype dt: the export tests' shared generator (a seed gives the same
 * values in every test) */
__attribute__((unused)) static jx_t export_rand(uint64_t *s, jx_dtype dt, int nd, const int64_t *shape) {
  int64_t n = 1;
  for (int d = 0; d < nd; d++) n *= shape[d];
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; v && i < n; i++) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    v[i] = ((double)(*s >> 11) / 9007199254740992.0) * 4 - 2;
  }
  jx_t x = v ? jx_astype(jx_array(JX_F64, nd, shape, v), dt) : jx_error_new("export_rand: out of memory");
  free(v);
  return x;
}

/* Beside an exported unit in dir: main.c (the driver of entry point name)
 * and in.bin (the leaves of args, in order), what building and running it
 * needs. 0 on success. */
__attribute__((unused)) static int export_write_inputs(const char *dir, const char *name, jx_t args) {
  char path[1024];
  char *drv = export_driver(name);
  snprintf(path, sizeof path, "%s/main.c", dir);
  int rc = drv ? write_text(path, drv) : -1;
  free(drv);
  size_t nin = 0;
  char *in = leaves_bytes(args, &nin);
  snprintf(path, sizeof path, "%s/in.bin", dir);
  FILE *f = in ? fopen(path, "wb") : NULL;
  if (!f || fwrite(in, 1, nin, f) != nin) rc = -1;
  if (f && fclose(f)) rc = -1;
  free(in);
  return rc;
}

static int run_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run_cmd(const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int rc = system(cmd);
  if (rc) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
  return rc;
}

/* Export jitted jf at args (nargs arguments) into dir/name, build the
 * unit with the strict flags, run it, and check (CHECKF) that its
 * outputs' bytes are those of want, jit's result. */
__attribute__((unused)) static void export_check_bytes(jx_fn *jf, const jx_t *args, int nargs, jx_t want,
                                                       const char *dir, const char *name) {
  char sub[512], path[600];
  snprintf(sub, sizeof sub, "%s/%s", dir, name);
  mkdir(sub, 0700);
  jx_t err = jx_export_c(jf, args, name, sub);
  CHECKF(err == NULL && jx_ok(want), "%s: %s", name, err ? jx_error(err) : jx_error(want));
  if (err || !jx_ok(want)) return;
  CHECKF(!export_write_inputs(sub, name, jx_tuple(nargs, args)), "%s: driver files", name);
  CHECKF(!run_cmd("cd %s && cc " EXPORT_STRICT " -O2 -o prog %s.c main.c -lm && ./prog in.bin out.bin", sub,
                  name),
         "%s: build or run", name);
  size_t nout = 0, nw = 0;
  snprintf(path, sizeof path, "%s/out.bin", sub);
  char *got = read_file(path, &nout), *w = leaves_bytes(want, &nw);
  CHECKF(got && w && nout == nw && !memcmp(got, w, nw), "%s: the export differs from jit", name);
  free(got), free(w);
}

#endif
