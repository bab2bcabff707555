/* The jit's compiler driver and disk cache (backend/cpu/cc.c), issue #14.
 * Each scenario runs this binary again as `test_cache --child MODE` with a
 * prepared environment (the cache directory and the compiler are read once
 * per process); the parent checks the exit status, the child's own check
 * report and its stderr (JX_LOG=compile lines, warnings):
 *   - security: an object and its checksum copied under another key are
 *     rejected and rebuilt (test_swapped_pair); the cache directory swapped
 *     for a symlink to another one after the process opened it is not
 *     followed (test_dir_swapped); an object replaced after it was verified
 *     still loads what was verified (test_load_by_fd);
 *   - a hanging compiler is killed at JX_CC_TIMEOUT with what it started,
 *     and jit interprets (test_timeout);
 *   - no global lock across a compile: two programs compile at once, a
 *     cached program loads while another compiles, one program compiled
 *     by two threads is built once (test_threads_compile);
 *   - falling back to the interpreter is said once on stderr, unless
 *     JX_LOG=quiet, with the cause (test_fallback_said);
 *   - the cache is capped by JX_JIT_CACHE_BYTES, least recently used
 *     first, and day-old temporaries of dead builds go (test_eviction); freed jitted functions unload their
 *     object, shared ones when the last goes (test_unload). */
#include "check.h"
#include "child.h"

#include "jx.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
int jx_cpu_module_count(void);
/* weak: this test also builds against a library without the hook (to see
 * the other scenarios fail there) */
extern void (*jx_cpu_cache_verified_hook)(const char *name) __attribute__((weak));

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* ============================================================ the programs */
/* Program k: one function at the argument shape [16 + k] (the shape is in
 * the generated C, so each k is its own object, all of about one size). */
static jx_t prog_body(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0];
  return jx_add(jx_mul(jx_tanh(x), jx_sin(x)), x);
}

static jx_t prog_arg(int k) { return jx_arange(JX_F32, -1.0, 1.0, 2.0 / (16 + k)); }

/* jit program k with a new jitted function: whether it agrees with eager */
static bool run_prog_quiet(int k) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(prog_body, 1, NULL), *jf = jx_jit(f);
  jx_t x = prog_arg(k);
  double d = jx_item(jx_max(jx_abs(jx_sub(JX_CALL(jf, x), JX_CALL(f, x)))));
  jx_fn_free(jf);
  jx_fn_free(f);
  jx_pool_pop();
  return d <= 1e-6;
}

static bool run_prog(int k) {
  bool ok = run_prog_quiet(k);
  CHECKF(ok, "program %d: jit and eager differ", k);
  return ok;
}

/* bytes of the cache's files (jx-*) in dir */
static long long cache_bytes(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  long long n = 0;
  while (d && (e = readdir(d))) {
    char p[600];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (!strncmp(e->d_name, "jx-", 3) && lstat(p, &st) == 0) n += st.st_size;
  }
  if (d) closedir(d);
  return n;
}

/* ================================================================ children */
/* the hook of mode "hook": the verified object replaced by garbage */
static void replace_object(const char *name) {
  const char *dir = getenv("JX_CACHE_DIR");
  char p[600], g[600];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  snprintf(g, sizeof g, "%s/garbage", dir);
  FILE *f = fopen(g, "w");
  if (f) fputs("not an object\n", f), fclose(f);
  chmod(g, 0600);
  CHECK(rename(g, p) == 0);
}

/* a compile in a thread (checked by the main thread: the check counters
 * are not atomic) */
typedef struct {
  int k;
  jx_fn *jf;
  char err[256];
  atomic_int done;
} compile_job;

static void *compile_thread(void *u) {
  compile_job *c = u;
  jx_pool_push();
  jx_t x = prog_arg(c->k);
  jx_t e = jx_jit_compile(c->jf, &x);
  if (e) snprintf(c->err, sizeof c->err, "%s", jx_error(e));
  atomic_store(&c->done, 1);
  jx_pool_pop();
  return NULL;
}

static void check_job(const compile_job *c) {
  CHECKF(atomic_load(&c->done) && !c->err[0], "jit_compile of program %d: %s", c->k, c->err);
}

static double compile_in_threads(compile_job *jobs, int n) {
  pthread_t th[4];
  double t0 = now_s();
  for (int i = 0; i < n; i++) pthread_create(&th[i], NULL, compile_thread, &jobs[i]);
  for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < n; i++) check_job(&jobs[i]);
  return now_s() - t0;
}

/* JX_CC sleeps 2 s before compiling. Two programs compiled by two threads
 * at once take well under twice one; a program the disk cache has (4,
 * built by the parent's earlier child) and one already loaded (40) load
 * while another thread is still compiling; one program compiled by two
 * threads at once is built once and right for both. */
static void child_threads(void) {
  jx_fn *f = jx_fn_new(prog_body, 1, NULL);
  compile_job one = {.k = 40, .jf = jx_jit(f)};
  double t1 = compile_in_threads(&one, 1);
  compile_job two[2] = {{.k = 41, .jf = jx_jit(f)}, {.k = 42, .jf = jx_jit(f)}};
  double t2 = compile_in_threads(two, 2);
  printf("one cold compile %.2f s, two in two threads %.2f s\n", t1, t2);
  CHECKF(t2 < 1.5 * t1, "two compiles in two threads took %.2f s, one %.2f s", t2, t1);

  compile_job slow = {.k = 43, .jf = jx_jit(f)};
  pthread_t th;
  pthread_create(&th, NULL, compile_thread, &slow);
  nanosleep(&(struct timespec){0, 300000000}, NULL); /* let it reach the compiler */
  double t0 = now_s();
  bool right = run_prog_quiet(4) && run_prog_quiet(40); /* from the disk cache; loaded in this process */
  double hit = now_s() - t0;
  const bool compiling = !atomic_load(&slow.done);
  pthread_join(th, NULL);
  check_job(&slow);
  CHECK(right);
  CHECKF(compiling && hit < 1.0, "cached programs took %.2f s while another compiled (%s)", hit,
         compiling ? "still compiling" : "it was done first");

  const int mods = jx_cpu_module_count();
  compile_job same[2] = {{.k = 44, .jf = jx_jit(f)}, {.k = 44, .jf = jx_jit(f)}};
  compile_in_threads(same, 2);
  CHECKF(jx_cpu_module_count() == mods + 1, "one program by two threads: %d objects loaded",
         jx_cpu_module_count() - mods);
  for (int i = 0; i < 2; i++) {
    jx_pool_push();
    jx_t x = prog_arg(44);
    double d = jx_item(jx_max(jx_abs(jx_sub(JX_CALL(same[i].jf, x), JX_CALL(f, x)))));
    CHECKF(d <= 1e-6, "one program by two threads, thread %d: differs by %g", i, d);
    jx_pool_pop();
  }
  jx_fn *all[] = {one.jf, two[0].jf, two[1].jf, slow.jf, same[0].jf, same[1].jf, f};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) jx_fn_free(all[i]);
}

/* /proc/self/maps lines naming the cache directory */
static int maps_in_cache(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  const char *dir = getenv("JX_CACHE_DIR");
  char line[4096];
  int n = 0;
  while (f && fgets(line, sizeof line, f)) n += strstr(line, dir) != NULL;
  if (f) fclose(f);
  return n;
}

/* A freed jitted function's object is unloaded; one shared by two jitted
 * functions stays until both are freed. */
static void child_unload(void) {
  const int mods = jx_cpu_module_count();
  jx_fn *f = jx_fn_new(prog_body, 1, NULL), *a = jx_jit(f), *b = jx_jit(f);
  jx_pool_push();
  jx_t x = prog_arg(50), want = JX_CALL(f, x);
  CHECK(jx_item(jx_max(jx_abs(jx_sub(JX_CALL(a, x), want)))) <= 1e-6);
  CHECK(jx_cpu_module_count() == mods + 1 && maps_in_cache() > 0);
  CHECK(jx_item(jx_max(jx_abs(jx_sub(JX_CALL(b, x), want)))) <= 1e-6);
  CHECK(jx_cpu_module_count() == mods + 1);
  jx_fn_free(a);
  CHECKF(jx_cpu_module_count() == mods + 1, "the object shared with a live function was unloaded");
  CHECK(jx_item(jx_max(jx_abs(jx_sub(JX_CALL(b, x), want)))) <= 1e-6);
  jx_pool_pop();
  jx_fn_free(b);
  CHECKF(jx_cpu_module_count() == mods, "%d objects still loaded after freeing the jitted functions",
         jx_cpu_module_count() - mods);
  CHECKF(maps_in_cache() == 0, "%d mappings of the cache's files remain", maps_in_cache());
  /* and loading it again works */
  run_prog(50);
  CHECK(jx_cpu_module_count() == mods);
  jx_fn_free(f);
}

/* Programs 30..35 under a small cap: after each compile the cache fits. */
static void child_many(void) {
  const char *cap = getenv("JX_JIT_CACHE_BYTES"), *dir = getenv("JX_CACHE_DIR");
  for (int k = 30; k < 36; k++) {
    run_prog(k);
    long long n = cache_bytes(dir);
    CHECKF(n <= atoll(cap), "after program %d the cache holds %lld bytes, cap %s", k, n, cap);
  }
}

static int child_main(const char *mode) {
  if (!strcmp(mode, "one")) {
    run_prog(1);
  } else if (!strcmp(mode, "two")) {
    run_prog(1), run_prog(2);
  } else if (!strcmp(mode, "three")) {
    run_prog(1), run_prog(2), run_prog(3);
  } else if (!strcmp(mode, "lru")) {
    run_prog(1), run_prog(4);
  } else if (!strcmp(mode, "swapdir")) {
    /* the cache directory, once opened, replaced by a symlink to another
     * directory (holding a valid object of program 1) */
    run_prog(3);
    const char *dir = getenv("JX_CACHE_DIR"), *other = getenv("TEST_OTHER_DIR");
    char old[600];
    snprintf(old, sizeof old, "%s.old", dir);
    CHECK(rename(dir, old) == 0 && symlink(other, dir) == 0);
    run_prog(1);
  } else if (!strcmp(mode, "hook")) {
    CHECKF(&jx_cpu_cache_verified_hook != NULL, "no test hook in the library");
    if (&jx_cpu_cache_verified_hook) jx_cpu_cache_verified_hook = replace_object;
    run_prog(1);
  } else if (!strcmp(mode, "fsize")) {
    /* every file write fails (as on a full disk) */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit r = {0, 0};
    CHECK(setrlimit(RLIMIT_FSIZE, &r) == 0);
    run_prog(1), run_prog(2);
  } else if (!strcmp(mode, "sigign")) {
    signal(SIGCHLD, SIG_IGN); /* children reap themselves: waiting for one fails */
    run_prog(1);
  } else if (!strcmp(mode, "threads")) {
    child_threads();
  } else if (!strcmp(mode, "unload")) {
    child_unload();
  } else if (!strcmp(mode, "many")) {
    child_many();
  } else {
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
  }
  return check_report(mode);
}

/* ================================================================= parent */
static char self_exe[4096];

/* Run `self --child mode` with the JX_* environment replaced by `set`; its
 * output into *out (caller frees); killed after `limit` seconds. Returns
 * the exit status (250: no clean check report, 254: killed), *secs the
 * time it took. */
static int spawn_child(const char *mode, const char *const *set, char **out, double limit, double *secs) {
  int nenv = 0, nset = 0, k = 0;
  while (environ[nenv]) nenv++;
  while (set[nset]) nset++;
  char **env = calloc((size_t)(nenv + nset + 1), sizeof *env);
  for (int i = 0; i < nenv; i++)
    if (strncmp(environ[i], "JX_", 3)) env[k++] = environ[i];
  for (int i = 0; i < nset; i++) env[k++] = (char *)set[i];
  int fd[2];
  if (pipe(fd)) return free(env), *out = strdup(""), -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fd[1], 2);
  posix_spawn_file_actions_addclose(&fa, fd[0]);
  char *argv[] = {self_exe, "--child", (char *)mode, NULL};
  pid_t pid;
  double t0 = now_s();
  int rc = posix_spawn(&pid, self_exe, &fa, NULL, argv, env);
  posix_spawn_file_actions_destroy(&fa);
  close(fd[1]);
  free(env);
  size_t n = 0, cap = 1 << 16;
  char *buf = malloc(cap);
  bool killed = false;
  for (;;) {
    struct pollfd p = {.fd = fd[0], .events = POLLIN};
    double left = limit - (now_s() - t0);
    if (!killed && left <= 0) kill(pid, SIGKILL), killed = true;
    if (killed && left < -5) break; /* what it started may hold the pipe */
    if (poll(&p, 1, killed ? 1000 : (int)(left * 1e3) + 1) <= 0) continue;
    ssize_t r = read(fd[0], buf + n, cap - n - 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
    if (cap - n < 1024) buf = realloc(buf, cap *= 2);
  }
  buf[n] = 0;
  close(fd[0]);
  *out = buf;
  int st = 0;
  while (rc == 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  *secs = now_s() - t0;
  if (rc) return -1;
  if (killed) return 254;
  rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  char pat[64];
  snprintf(pat, sizeof pat, "%s: ", mode);
  const char *q = strstr(buf, pat);
  int np, nf;
  bool clean = q && sscanf(q + strlen(pat), "%d passed, %d failed", &np, &nf) == 2 && nf == 0 && np > 0;
  return rc == 0 && !clean ? 250 : rc;
}

/* A child with JX_CACHE_DIR=dir, JX_LOG=compile and `extra` ("K=V"s) */
static int cache_child(const char *mode, const char *dir, const char *const *extra, char **out) {
  char cache[600];
  snprintf(cache, sizeof cache, "JX_CACHE_DIR=%s", dir);
  const char *set[12] = {"JX_LOG=compile", cache};
  int n = 2;
  for (int i = 0; extra && extra[i] && n < 11; i++) set[n++] = extra[i];
  set[n] = NULL;
  double secs;
  return spawn_child(mode, set, out, 120, &secs);
}

/* The objects' paths in the order a child's log says they were compiled. */
static int compiled_paths(const char *out, char paths[][512], int max) {
  int n = 0;
  for (const char *p = out; n < max && (p = strstr(p, "jit: compiled ")); n++) {
    p += strlen("jit: compiled ");
    const char *e = strstr(p, ".so ");
    if (!e) break;
    snprintf(paths[n], 512, "%.*s", (int)(e - p), p); /* the stem, without .so */
  }
  return n;
}

static bool copy_file(const char *from, const char *to) {
  FILE *a = fopen(from, "rb"), *b = a ? fopen(to, "wb") : NULL;
  char buf[65536];
  size_t k;
  bool ok = a && b;
  while (ok && (k = fread(buf, 1, sizeof buf, a)) > 0) ok = fwrite(buf, 1, k, b) == k;
  if (a) fclose(a);
  if (b) ok = fclose(b) == 0 && ok;
  return ok && chmod(to, 0600) == 0;
}

static bool exists(const char *stem, const char *ext) {
  char p[600];
  struct stat st;
  snprintf(p, sizeof p, "%s%s", stem, ext);
  return lstat(p, &st) == 0;
}

/* Program 1's object and checksum copied over program 2's: a valid pair,
 * but of another key. Program 2 must be rebuilt, not served program 1. */
static void test_swapped_pair(void) {
  char dir[64], *out = NULL, st[2][512];
  make_tmpdir(dir, sizeof dir);
  int rc = cache_child("two", dir, NULL, &out);
  CHECK_CHILD(rc == 0 && compiled_paths(out, st, 2) == 2, out, "first run: rc %d", rc);
  free(out);
  char from[600], to[600];
  snprintf(from, sizeof from, "%s.so", st[0]), snprintf(to, sizeof to, "%s.so", st[1]);
  CHECK(copy_file(from, to));
  snprintf(from, sizeof from, "%s.sum", st[0]), snprintf(to, sizeof to, "%s.sum", st[1]);
  CHECK(copy_file(from, to));
  rc = cache_child("two", dir, NULL, &out);
  CHECK_CHILD(rc == 0 && count_substr(out, "disk cache hit") == 1 &&
                  count_substr(out, "rejecting cached object") == 1 &&
                  count_substr(out, "jit: compiled ") == 1,
              out, "object and checksum of another key: rc %d", rc);
  free(out);
  rc = cache_child("two", dir, NULL, &out); /* rebuilt in place */
  CHECK_CHILD(rc == 0 && count_substr(out, "disk cache hit") == 2, out, "after the rebuild: rc %d", rc);
  free(out);
  rm_tree(dir);
}

/* The cache directory renamed away and replaced by a symlink to another
 * directory (with a valid object of program 1) after the process opened
 * it: the process goes on using the directory it opened. */
static void test_dir_swapped(void) {
  char dir[64], other[64], old[80], *out = NULL, env[600], st[2][512];
  make_tmpdir(dir, sizeof dir);
  make_tmpdir(other, sizeof other);
  int rc = cache_child("one", other, NULL, &out);
  CHECK_CHILD(rc == 0 && compiled_paths(out, st, 1) == 1, out, "filling the other directory: rc %d", rc);
  free(out);
  snprintf(env, sizeof env, "TEST_OTHER_DIR=%s", other);
  const char *extra[] = {env, NULL};
  rc = cache_child("swapdir", dir, extra, &out);
  CHECK_CHILD(rc == 0 && !count_substr(out, "disk cache hit") && count_substr(out, "jit: compiled ") == 2,
              out, "directory swapped for a symlink: rc %d (a disk hit came from the other directory)", rc);
  free(out);
  snprintf(old, sizeof old, "%s.old", dir);
  char names[600];
  snprintf(names, sizeof names, "%s/%s", old, strrchr(st[0], '/') + 1);
  CHECKF(exists(names, ".so"), "program 1 was not built into the directory the process opened");
  unlink(dir); /* the symlink */
  rm_tree(old);
  rm_tree(other);
  rm_tree(dir);
}

/* The object replaced by garbage after it was verified (a test hook):
 * what was verified is what is loaded. */
static void test_load_by_fd(void) {
  char dir[64], *out = NULL;
  make_tmpdir(dir, sizeof dir);
  int rc = cache_child("one", dir, NULL, &out);
  free(out);
  rc = cache_child("hook", dir, NULL, &out);
  CHECK_CHILD(rc == 0 && count_substr(out, "disk cache hit") == 1 && !count_substr(out, "rejecting"), out,
              "object replaced after verification: rc %d", rc);
  free(out);
  rm_tree(dir);
}

static bool write_script(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return false;
  fputs(text, f);
  fclose(f);
  return chmod(path, 0700) == 0;
}

static bool process_dead(pid_t pid) {
  char p[64], s[512] = "";
  snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(p, "r");
  if (!f) return true;
  bool zombie = fgets(s, sizeof s, f) && (strstr(s, ") Z ") || strstr(s, ") X "));
  fclose(f);
  return zombie;
}

/* dead within 5 s (a killed process finishes dying asynchronously) */
static bool process_gone(pid_t pid) {
  for (int i = 0; i < 500 && !process_dead(pid); i++) nanosleep(&(struct timespec){0, 10000000}, NULL);
  return process_dead(pid);
}

/* A compiler that never finishes (and starts another process that does
 * not either): with JX_CC_TIMEOUT=1 jit gives up after a second, kills
 * both, says so and interprets. */
static void test_timeout(void) {
  char dir[64], bin[64], cc[600], ccv[700], cache[600], script[1400], *out = NULL;
  make_tmpdir(dir, sizeof dir);
  make_tmpdir(bin, sizeof bin);
  snprintf(cc, sizeof cc, "%s/hangcc", bin);
  snprintf(script, sizeof script, "#!/bin/sh\nsleep 1000 &\necho $! > %s/grandchild\nwait\n", bin);
  CHECK(write_script(cc, script));
  snprintf(ccv, sizeof ccv, "JX_CC=%s", cc);
  snprintf(cache, sizeof cache, "JX_CACHE_DIR=%s", dir);
  const char *set[] = {ccv, cache, "JX_CC_TIMEOUT=1", NULL};
  double secs;
  int rc = spawn_child("one", set, &out, 60, &secs);
  CHECK_CHILD(rc == 0 && secs < 10 && count_substr(out, "falling back to the interpreter") == 1 &&
                  count_substr(out, "did not finish within JX_CC_TIMEOUT"),
              out, "hanging compiler: rc %d after %.1f s", rc, secs);
  char p[600];
  snprintf(p, sizeof p, "%s/grandchild", bin);
  FILE *f = fopen(p, "r");
  int pid = 0;
  CHECK(f && fscanf(f, "%d", &pid) == 1 && pid > 0);
  if (f) fclose(f);
  if (pid > 0) {
    CHECKF(process_gone(pid), "the compiler's process %d was left running", pid);
    if (!process_dead(pid)) kill(pid, SIGKILL);
  }
  DIR *d = opendir(dir);
  struct dirent *e;
  int left = 0;
  while (d && (e = readdir(d))) left += e->d_name[0] != '.';
  if (d) closedir(d);
  CHECKF(left == 0, "%d files left in the cache directory", left);
  free(out);
  rm_tree(dir);
  rm_tree(bin);
}

/* Threads compiling through a slow compiler (JX_CC sleeps 2 s first). */
static void test_threads_compile(void) {
  char dir[64], bin[64], cc[600], ccv[700], script[1400], *out = NULL;
  make_tmpdir(dir, sizeof dir);
  make_tmpdir(bin, sizeof bin);
  snprintf(cc, sizeof cc, "%s/slowcc", bin);
  const char *real = getenv("JX_CC");
  snprintf(script, sizeof script, "#!/bin/sh\nsleep 2\nexec %s \"$@\"\n", real && *real ? real : "cc");
  CHECK(write_script(cc, script));
  snprintf(ccv, sizeof ccv, "JX_CC=%s", cc);
  const char *extra[] = {ccv, NULL};
  /* program 4 into the disk cache, by the same compiler */
  int rc = cache_child("lru", dir, extra, &out);
  free(out);
  rc = cache_child("threads", dir, extra, &out);
  CHECK_CHILD(rc == 0, out, "compiles in threads: rc %d", rc);
  char *line = strstr(out, "one cold compile");
  if (line) printf("%.*s\n", (int)strcspn(line, "\n"), line);
  free(out);
  rm_tree(dir);
  rm_tree(bin);
}

/* jit falling back to the interpreter says so on stderr once, without
 * JX_LOG, naming the function (by its signature) and the cause; not with
 * JX_LOG=quiet. */
static void test_fallback_said(void) {
  char dir[64], bin[64], cc[600], ccv[700], cache[600], *out = NULL;
  make_tmpdir(dir, sizeof dir);
  make_tmpdir(bin, sizeof bin);
  snprintf(cache, sizeof cache, "JX_CACHE_DIR=%s", dir);
  double secs;
  const char *nocc[] = {"JX_CC=/nonexistent", cache, NULL};
  int rc = spawn_child("two", nocc, &out, 120, &secs);
  CHECK_CHILD(rc == 0 && count_substr(out, "falling back to the interpreter") == 1 &&
                  count_substr(out, "no working C compiler") &&
                  count_substr(out, "interpreter (much slower) for the function of ("),
              out, "no compiler (the message names the function by its signature): rc %d", rc);
  free(out);
  const char *quiet[] = {"JX_CC=/nonexistent", "JX_LOG=quiet", cache, NULL};
  rc = spawn_child("two", quiet, &out, 120, &secs);
  CHECK_CHILD(rc == 0 && !count_substr(out, "[jx]"), out, "JX_LOG=quiet: rc %d", rc);
  free(out);
  /* the compiler's own message when it runs out of space */
  snprintf(cc, sizeof cc, "%s/fullcc", bin);
  CHECK(write_script(cc, "#!/bin/sh\necho 'ld: final link failed: No space left on device' >&2\nexit 1\n"));
  snprintf(ccv, sizeof ccv, "JX_CC=%s", cc);
  const char *full[] = {ccv, cache, NULL};
  rc = spawn_child("two", full, &out, 120, &secs);
  CHECK_CHILD(rc == 0 && count_substr(out, "falling back to the interpreter") == 1 &&
                  count_substr(out, "final link failed: No space left on device") == 1,
              out, "compiler out of space: rc %d", rc);
  free(out);
  /* no file can be written (RLIMIT_FSIZE 0: as a full disk or a read-only
   * cache would refuse) */
  rc = spawn_child("fsize", (const char *[]){cache, NULL}, &out, 120, &secs);
  CHECK_CHILD(rc == 0 && count_substr(out, "falling back to the interpreter") == 1 &&
                  count_substr(out, "cannot write the source files"),
              out, "files cannot be written: rc %d", rc);
  free(out);
  rm_tree(dir);
  rm_tree(bin);
}

static long long file_size(const char *stem, const char *ext) {
  char p[600];
  struct stat st;
  snprintf(p, sizeof p, "%s%s", stem, ext);
  return lstat(p, &st) ? -1 : st.st_size;
}

/* A cap of the three objects' bytes and a little: loading program 1 then
 * compiling 4 evicts program 2, the least recently used. Then six programs
 * under a cap of about two: the cache stays under it throughout. */
static void test_eviction(void) {
  char dir[64], *out = NULL, st[3][512], capv[64];
  make_tmpdir(dir, sizeof dir);
  int rc = cache_child("three", dir, NULL, &out);
  CHECK_CHILD(rc == 0 && compiled_paths(out, st, 3) == 3, out, "three programs: rc %d", rc);
  free(out);
  long long total = cache_bytes(dir), one = file_size(st[0], ".so") + file_size(st[0], ".sum");
  snprintf(capv, sizeof capv, "JX_JIT_CACHE_BYTES=%lld", total + one / 2);
  const char *extra[] = {capv, NULL};
  rc = cache_child("lru", dir, extra, &out);
  CHECK_CHILD(rc == 0 && count_substr(out, "disk cache hit") == 1 && count_substr(out, "evicted") == 1, out,
              "lru: rc %d", rc);
  free(out);
  CHECKF(exists(st[0], ".so") && !exists(st[1], ".so") && !exists(st[1], ".sum") && exists(st[2], ".so"),
         "not the least recently used evicted: programs 1 %d, 2 %d, 3 %d", exists(st[0], ".so"),
         exists(st[1], ".so"), exists(st[2], ".so"));
  CHECK(cache_bytes(dir) <= total + one / 2);
  rm_tree(dir);

  make_tmpdir(dir, sizeof dir);
  snprintf(capv, sizeof capv, "JX_JIT_CACHE_BYTES=%lld", one * 5 / 2);
  /* with the temporaries of a build that died two days ago, and of one
   * under way */
  char old[600], fresh[600];
  snprintf(old, sizeof old, "%s/tmp-0123456789abcdef-1-0-0.c", dir);
  snprintf(fresh, sizeof fresh, "%s/tmp-0123456789abcdef-2-0-0.c", dir);
  CHECK(copy_file("/proc/self/comm", old) && copy_file("/proc/self/comm", fresh));
  struct timespec ago[2] = {{time(NULL) - 2 * 86400, 0}, {time(NULL) - 2 * 86400, 0}};
  CHECK(utimensat(AT_FDCWD, old, ago, 0) == 0);
  rc = cache_child("many", dir, extra, &out);
  CHECK_CHILD(rc == 0 && count_substr(out, "evicted") >= 3, out,
              "six programs under a cap of about two: rc %d", rc);
  free(out);
  CHECKF(!exists(old, "") && exists(fresh, ""), "stale temporaries %s, fresh ones %s",
         exists(old, "") ? "kept" : "deleted", exists(fresh, "") ? "kept" : "deleted");
  rm_tree(dir);
}

/* A program that ignores SIGCHLD (its children are reaped by the kernel):
 * jit neither hangs nor waits out the deadline; results stay right. */
static void test_sigchld_ignored(void) {
  char dir[64], cache[600], *out = NULL;
  make_tmpdir(dir, sizeof dir);
  snprintf(cache, sizeof cache, "JX_CACHE_DIR=%s", dir);
  double secs;
  int rc = spawn_child("sigign", (const char *[]){cache, NULL}, &out, 60, &secs);
  CHECK_CHILD(rc == 0 && secs < 30, out, "SIGCHLD ignored: rc %d after %.1f s", rc, secs);
  free(out);
  rm_tree(dir);
}

static void test_unload(void) {
  char dir[64], *out = NULL;
  make_tmpdir(dir, sizeof dir);
  int rc = cache_child("unload", dir, NULL, &out);
  CHECK_CHILD(rc == 0, out, "unload: rc %d", rc);
  free(out);
  rm_tree(dir);
}

/* whether $JX_CC (or cc) is there, as the library decides it */
static bool have_compiler(void) {
  char *out = NULL, dir[64];
  make_tmpdir(dir, sizeof dir);
  int rc = cache_child("one", dir, NULL, &out);
  bool ok = rc == 0 && count_substr(out, "jit: compiled ") == 1;
  free(out);
  rm_tree(dir);
  return ok;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 3 && !strcmp(argv[1], "--child")) return child_main(argv[2]);
  ssize_t k = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
  if (k <= 0)
    snprintf(self_exe, sizeof self_exe, "%s", argv[0]);
  else
    self_exe[k] = 0;
  if (argc >= 2 && !strcmp(argv[1], "threads")) { /* only the threads' scenario (make tsan) */
    if (have_compiler())
      test_threads_compile();
    else
      printf("no working C compiler: skipping the threads' compiles\n");
    return check_report("cache (threads)");
  }
  double t0 = now_s();
  test_fallback_said();
  if (have_compiler()) {
    test_swapped_pair();
    test_dir_swapped();
    test_load_by_fd();
    test_timeout();
    test_sigchld_ignored();
    test_eviction();
    test_unload();
    test_threads_compile();
  } else {
    printf("no working C compiler: skipping the compiled-object cache scenarios\n");
  }
  printf("total %.1f s\n", now_s() - t0);
  return check_report("cache");
}
