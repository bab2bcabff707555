/* bench_export: code exported by jx_export_c against jx's own jit, one
 * thread each (issue #20):
 *   - the letters model's predict (1296-512-512-26 tanh MLP, weights
 *     embedded) at batch 1 and batch 128: median time per call, the ratio
 *     export / jit (goal <= 1.1);
 *   - its training step (value_and_grad of softmax cross-entropy + adam,
 *     batch 128): time per step, the same ratio;
 *   - each twice: the portable export, and with the simd option (matrix
 *     products' AVX-512 / AVX2 paths, which -march=native turns on);
 *   - for both: the exported source's bytes, the built object's bytes and
 *     NAME_WORKSPACE_BYTES.
 * The exported unit is built as a shared object with $CC (default cc)
 * -std=c99 -O3 -march=native (what jit's objects get, less its threads)
 * and loaded with dlopen, so both sides run in this process.
 *   bench_export [--reps N] */
#include <jx.h>

#include "bench_time.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { D = 1296, H = 512, C = 26 };
typedef int (*entry_fn)(const void *const *, void *const *, void *);

static double median(double *t, int n) {
  qsort(t, (size_t)n, sizeof *t, cmp);
  return t[n / 2];
}

static jx_t randn(uint64_t seed, int nd, const int64_t *shape, double scale) {
  return jx_mul(jx_random_normal(jx_random_key(seed), JX_F32, nd, shape), jx_scalar(scale));
}

static jx_t predict(jx_t params, jx_t x) {
  for (int i = 0; i < jx_len(params); i++) {
    jx_t y = jx_add(jx_matmul(x, jx_at(jx_at(params, i), 0)), jx_at(jx_at(params, i), 1));
    x = i + 1 < jx_len(params) ? jx_tanh(y) : y;
  }
  return x;
}

static jx_t g_params;
static jx_t predict_body(const jx_t *a, void *u) {
  (void)u;
  return predict(g_params, a[0]);
}

static jx_t loss(const jx_t *a, void *u) { /* (params, x, labels) */
  (void)u;
  jx_t logp = jx_log_softmax(predict(a[0], a[1]), -1);
  return jx_neg(jx_mean(jx_sum_axes(jx_mul(logp, jx_one_hot(a[2], C)), 1, (int[]){-1}, false)));
}

static jx_optimizer *g_opt;
static jx_fn *g_vg;
static jx_t step_body(const jx_t *a, void *u) { /* (params, state, x, labels) -> (params', state', loss) */
  (void)u;
  jx_t vg = jx_call(g_vg, (jx_t[]){a[0], a[2], a[3]});
  jx_t up = jx_optim_update(g_opt, jx_at(vg, 1), a[1], a[0]);
  return JX_TUPLE(jx_apply_updates(a[0], jx_at(up, 0)), jx_at(up, 1), jx_at(vg, 0));
}

static long file_bytes(const char *path) {
  struct stat st;
  return stat(path, &st) ? -1 : (long)st.st_size;
}

/* export f at args as `name` into dir, build it as a shared object and
 * load its entry point; prints the sizes */
static entry_fn build(jx_fn *f, const jx_t *args, const char *name, const char *dir, bool simd, long *ws) {
  jx_t err = jx_export_c_ex(f, args, name, dir, &(jx_export_options){.simd = simd});
  if (err) {
    fprintf(stderr, "bench_export: %s\n", jx_error(err));
    return NULL;
  }
  char cmd[4096], src[512], so[512], hdr[512];
  snprintf(src, sizeof src, "%s/%s.c", dir, name);
  snprintf(so, sizeof so, "%s/%s.so", dir, name);
  snprintf(hdr, sizeof hdr, "%s/%s.h", dir, name);
  const char *cc = getenv("CC") && strlen(getenv("CC")) < 512 ? getenv("CC") : "cc";
  double t0 = now_ms();
  snprintf(cmd, sizeof cmd, "%s -std=c99 -O3 -march=native -fPIC -shared -o %s %s -lm", cc, so, src);
  if (system(cmd)) return NULL;
  double build_ms = now_ms() - t0;
  FILE *h = fopen(hdr, "r");
  char line[512], key[128];
  *ws = -1;
  snprintf(key, sizeof key, "_WORKSPACE_BYTES ");
  while (h && fgets(line, sizeof line, h))
    if (strstr(line, "#define") && strstr(line, key)) *ws = atol(strstr(line, key) + strlen(key));
  if (h) fclose(h);
  printf("%-22s source %8.1f KB, object %7.1f KB, workspace %8ld bytes, build %.1f s\n", name,
         file_bytes(src) / 1024.0, file_bytes(so) / 1024.0, *ws, build_ms / 1e3);
  void *lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  return lib ? (entry_fn)dlsym(lib, name) : NULL;
}

/* the leaves of a tree, as pointers to their data (kept alive by the tree) */
static int leaf_ptrs(jx_t t, const void **p, int cap, void **copies) {
  jx_t l = jx_tree_leaves(t);
  int n = jx_len(l);
  for (int i = 0; i < n && i < cap; i++) {
    jx_t x = jx_at(l, i);
    size_t bytes = (size_t)jx_size(x) * jx_dtype_size(jx_dtype_of(x));
    copies[i] = malloc(bytes + 1);
    jx_read(x, jx_dtype_of(x), copies[i], bytes);
    p[i] = copies[i];
  }
  return n;
}

static void compare(const char *what, jx_fn *jf, const jx_t *args, const entry_fn e[2], int nin_leaves,
                    int nout, long ws, int reps) {
  const void *in[64];
  void *copies[64], *out[64];
  int nin = leaf_ptrs(jx_tuple(nin_leaves, args), in, 64, copies);
  jx_t r = jx_call(jf, args); /* compile, and the outputs' sizes */
  jx_t rl = jx_tree_leaves(r);
  for (int i = 0; i < nout; i++) {
    jx_t x = jx_at(rl, i);
    out[i] = malloc((size_t)jx_size(x) * jx_dtype_size(jx_dtype_of(x)) + 1);
  }
  void *wsp = malloc((size_t)ws + 1);
  double tj[256], te[2][256];
  for (int k = 0; k < reps; k++) { /* alternating, so drift hits all three */
    jx_pool_push();
    double t0 = now_ms();
    jx_t y = jx_call(jf, args);
    if (jx_ok(y)) jx_item(jx_sum(jx_at(jx_tree_leaves(y), 0)));
    tj[k] = now_ms() - t0;
    jx_pool_pop();
    for (int v = 0; v < 2; v++) {
      t0 = now_ms();
      if (e[v] && e[v](in, out, wsp)) fprintf(stderr, "bench_export: %s failed\n", what);
      te[v][k] = now_ms() - t0;
    }
  }
  double mj = median(tj, reps), me = median(te[0], reps), ms = median(te[1], reps);
  printf("%-22s jit %9.3f ms   export %9.3f ms   export/jit %.2fx   simd export %9.3f ms   simd/jit %.2fx\n",
         what, mj, me, me / mj, ms, ms / mj);
  for (int i = 0; i < nin; i++) free(copies[i]);
  for (int i = 0; i < nout; i++) free(out[i]);
  free(wsp);
}

int main(int argc, char **argv) {
  int reps = 41;
  for (int i = 1; i + 1 < argc; i++)
    if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
  if (reps < 1 || reps > 256) reps = 41;
  jx_set_num_threads(1);
  char dir[] = "/tmp/jx_bench_export_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  printf("bench_export: exported C vs jit, 1 thread, median of %d (load: see bench/run.sh)\n", reps);
  g_params =
      jx_retain(JX_LIST(JX_TUPLE(randn(1, 2, (int64_t[]){D, H}, 0.03), randn(2, 1, (int64_t[]){H}, 0.1)),
                        JX_TUPLE(randn(3, 2, (int64_t[]){H, H}, 0.04), randn(4, 1, (int64_t[]){H}, 0.1)),
                        JX_TUPLE(randn(5, 2, (int64_t[]){H, C}, 0.04), randn(6, 1, (int64_t[]){C}, 0.1))));
  jx_fn *pf = jx_fn_new(predict_body, 1, NULL), *jpf = jx_jit(pf);
  int batches[2] = {1, 128};
  for (int b = 0; b < 2; b++) {
    char name[64];
    snprintf(name, sizeof name, "letters_predict_b%d", batches[b]);
    jx_t x = randn(7, 2, (int64_t[]){batches[b], D}, 1);
    long ws;
    char sname[80];
    snprintf(sname, sizeof sname, "%s_simd", name);
    entry_fn e[2] = {build(pf, &x, name, dir, false, &ws), build(pf, &x, sname, dir, true, &ws)};
    if (e[0] && e[1]) compare(name, jpf, &x, e, 1, 1, ws, reps);
  }
  g_opt = jx_adam(jx_constant_schedule(1e-3), 0.9, 0.999, 1e-8);
  jx_fn *lf = jx_fn_new(loss, 3, NULL);
  g_vg = jx_value_and_grad(lf, 0);
  jx_fn *sf = jx_fn_new(step_body, 4, NULL), *jsf = jx_jit(sf);
  jx_t state = jx_optim_init(g_opt, g_params);
  jx_t x = randn(8, 2, (int64_t[]){128, D}, 1);
  int32_t lab[128];
  for (int i = 0; i < 128; i++) lab[i] = i % C;
  jx_t y = jx_array(JX_I32, 1, (int64_t[]){128}, lab);
  jx_t args[4] = {g_params, state, x, y};
  long ws;
  entry_fn e[2] = {build(sf, args, "letters_train_step", dir, false, &ws),
                   build(sf, args, "letters_train_step_simd", dir, true, &ws)};
  int nout = jx_tree_num_leaves(jx_call(jsf, args));
  if (e[0] && e[1]) compare("letters_train_step", jsf, args, e, 4, nout, ws, reps < 15 ? reps : 15);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) return 1;
  return 0;
}
