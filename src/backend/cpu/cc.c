/* The compiler driver and the persistent cache of built objects.
 *
 * Source is built with the system C compiler (`cc`, or $JX_CC) into a
 * shared object and loaded with dlopen. Objects are cached in memory and on
 * disk ($JX_CACHE_DIR, else $XDG_CACHE_HOME/jx, else ~/.cache/jx), keyed by
 * a hash of the source, the compiler's identity, the CPU's identity (the
 * flags say -march=native) and the flags.
 *
 * Cache safety: the directory is created 0700 and used only if it is a
 * real directory (not a symlink) owned by us and not accessible to group or
 * others. Objects are built under a temporary name, loaded from it, then
 * renamed into place (atomic; processes building the same object at once
 * each load their own), with a sidecar recording a hash of their bytes.
 * Before loading a cached object, it must be a regular file owned by us,
 * not writable by others, and hash to the recorded value — anything else
 * is rebuilt, never loaded.
 * With an unsafe directory jx builds in a private temporary directory. */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <cpuid.h>
#endif

extern char **environ;

/* Fixed flags: optimize for this CPU; ISO C keeps floating point exact
 * (no contraction into FMA), as in the eager kernels; -fno-math-errno lets
 * sqrt inline and -fno-trapping-math lets selects with a division or a
 * comparison on one side (tanh, NaN-aware max) vectorize, as in the eager
 * kernels (results are unchanged: jx never reads the exception flags). */
static const char *const cflags[] = {"-std=c17",        "-O3",    "-march=native", "-ffp-contract=off",
                                     "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-shared", "-w"};
enum { NFLAGS = sizeof cflags / sizeof cflags[0] };

static const char *compiler(void) {
  const char *cc = getenv("JX_CC");
  return cc && *cc ? cc : "cc";
}

/* ------------------------------------------------------ process spawning */
/* Start argv[0] with stdout and stderr into the file `log` (NULL: keep
 * ours); returns the pid, or -1. */
static pid_t spawn_logged(char *const argv[], const char *log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (log) {
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
  }
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc ? -1 : pid;
}

/* exit status of a spawned child, -1 if it did not exit normally */
static int wait_child(pid_t pid) {
  int st;
  if (pid < 0) return -1;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run(char *const argv[], char *out, size_t outn) {
  int pipefd[2] = {-1, -1};
  if (out && pipe(pipefd)) return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (out) {
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
  }
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (out) {
    close(pipefd[1]);
    size_t n = 0;
    ssize_t k;
    while (rc == 0 && (k = read(pipefd[0], out + n, outn - 1 - n)) > 0) n += (size_t)k;
    out[n] = 0;
    close(pipefd[0]);
  }
  return rc ? -1 : wait_child(pid);
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char cc_ident[PATH_MAX + 128]; /* the compiler, as the file system tells it */
static char cpu_ident[256];           /* the CPU the objects are built for */
static int cc_state;                  /* 0 unknown, 1 found, -1 missing */

/* The executable a command name runs: the name itself if it has a slash,
 * else the first executable regular file of that name in $PATH. */
static bool find_program(const char *name, char *out, size_t n) {
  struct stat st;
  if (strchr(name, '/')) {
    snprintf(out, n, "%s", name);
    return stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0;
  }
  const char *path = getenv("PATH");
  if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
  for (const char *p = path;; p++) {
    const char *end = strchr(p, ':');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if ((size_t)snprintf(out, n, "%.*s%s%s", (int)len, p, len ? "/" : "", name) < n && stat(out, &st) == 0 &&
        S_ISREG(st.st_mode) && access(out, X_OK) == 0)
      return true;
    if (!end) return false;
    p = end;
  }
}

/* The CPU's identity: objects are built with -march=native, so one built
 * for this CPU may not run on another that shares the cache directory
 * (a home directory on a network file system, a container image). On x86
 * the vendor, family/model/stepping and feature words from CPUID; elsewhere
 * the lines of /proc/cpuinfo that name the core and its features. */
static void read_cpu_ident(void) {
  uint64_t h = JX_FNV_BASIS;
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
  unsigned r[4], w[12] = {0};
  int k = 0;
  if (__get_cpuid(0, &r[0], &r[1], &r[2], &r[3])) w[k++] = r[1], w[k++] = r[3], w[k++] = r[2];
  if (__get_cpuid(1, &r[0], &r[1], &r[2], &r[3])) w[k++] = r[0], w[k++] = r[2], w[k++] = r[3]; /* not ebx: APIC id */
  if (__get_cpuid_count(7, 0, &r[0], &r[1], &r[2], &r[3])) w[k++] = r[1], w[k++] = r[2], w[k++] = r[3];
  if (__get_cpuid(0x80000001u, &r[0], &r[1], &r[2], &r[3])) w[k++] = r[2], w[k++] = r[3];
  h = jx_fnv1a(w, sizeof w, h);
#else
  FILE *f = fopen("/proc/cpuinfo", "r");
  char line[4096];
  while (f && fgets(line, sizeof line, f)) {
    if (!strncmp(line, "processor", 9) && h != JX_FNV_BASIS) break; /* the first CPU is enough */
    if (!strncmp(line, "Features", 8) || !strncmp(line, "CPU ", 4) || !strncmp(line, "isa", 3) ||
        !strncmp(line, "uarch", 5) || !strncmp(line, "model name", 10))
      h = jx_fnv1a(line, strlen(line), h);
  }
  if (f) fclose(f);
#endif
  snprintf(cpu_ident, sizeof cpu_ident, "cpu %016llx", (unsigned long long)h);
}

/* Whether there is a compiler, and what identifies it: its resolved path,
 * size, modification time and inode, read from the file system rather than
 * by running `cc --version` (spawning the driver took ~6 ms of the ~7 ms a
 * reload from the disk cache cost). Installing or upgrading a compiler
 * rewrites the file, so objects built by another compiler are not served;
 * one that is present but does not work fails its first build, and jit
 * interprets (with the compiler's message under JX_LOG=compile). The CPU's
 * identity, the key's other part that is fixed for the process, is read
 * here too. */
static bool compiler_works(void) {
  if (cc_state) return cc_state > 0;
  char path[PATH_MAX], real[PATH_MAX];
  struct stat st;
  if (find_program(compiler(), path, sizeof path) && realpath(path, real) && stat(real, &st) == 0) {
    snprintf(cc_ident, sizeof cc_ident, "%s %lld %lld.%09ld %llu", real, (long long)st.st_size,
             (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec, (unsigned long long)st.st_ino);
    read_cpu_ident();
    cc_state = 1;
  } else {
    cc_state = -1;
    if (jx_diag_enabled("compile"))
      jx_diag("jit: no working C compiler (%s); jit runs by interpreting the optimized jaxpr", compiler());
  }
  return cc_state > 0;
}

/* ------------------------------------------------------------- cache dir */
static bool dir_safe(const char *d) {
  struct stat st;
  return lstat(d, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() && (st.st_mode & 077) == 0;
}

static int mkdirs(const char *path) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    mkdir(tmp, 0700);
    *p = '/';
  }
  return mkdir(tmp, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* The cache directory if it is safe to use, else NULL (logged once). */
static const char *cache_dir(void) {
  static char dir[4096];
  static int state; /* 0 unknown, 1 ok, -1 unusable */
  if (state) return state > 0 ? dir : NULL;
  const char *env = getenv("JX_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  if (env && *env) snprintf(dir, sizeof dir, "%s", env);
  else if (xdg && *xdg) snprintf(dir, sizeof dir, "%s/jx", xdg);
  else if (home && *home) snprintf(dir, sizeof dir, "%s/.cache/jx", home);
  else dir[0] = 0;
  state = dir[0] && mkdirs(dir) == 0 && dir_safe(dir) ? 1 : -1;
  if (state < 0 && jx_diag_enabled("compile"))
    jx_diag("jit: cache directory '%s' is missing, not ours, a symlink or accessible to others: not using it", dir);
  return state > 0 ? dir : NULL;
}

/* Hash of a file's bytes; 0 on error or if it is not a regular file owned
 * by us and unwritable by others. */
static uint64_t file_hash(const char *path) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return 0;
  struct stat st;
  uint64_t h = 0;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() && !(st.st_mode & 022)) {
    h = JX_FNV_BASIS;
    char buf[65536];
    ssize_t k;
    while ((k = read(fd, buf, sizeof buf)) > 0) h = jx_fnv1a(buf, (size_t)k, h);
    if (k < 0) h = 0;
    else if (h == 0) h = 1; /* 0 means "unreadable", never a hash */
  }
  close(fd);
  return h;
}

static bool write_file(const char *path, const void *data, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const char *p = data;
  while (n) {
    ssize_t k = write(fd, p, n);
    if (k <= 0) {
      close(fd);
      return false;
    }
    p += k, n -= (size_t)k;
  }
  return close(fd) == 0;
}

static bool read_sum(const char *path, uint64_t *sum) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  char buf[64] = {0};
  bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() && !(st.st_mode & 022) &&
            read(fd, buf, sizeof buf - 1) > 0;
  close(fd);
  return ok && sscanf(buf, "%16llx", (unsigned long long *)sum) == 1 && *sum != 0;
}

/* ------------------------------------------------------------- building */
/* A large source is split at the renderer's markers (render.h) into units
 * compiled at once and linked: the C compiler is most of a first jit call
 * (a training step of 30 kernels: ~0.55 s whole, ~0.37 s in two halves on
 * 2 cores). One unit per thread of jx's pool (at most MAX_PARTS), and at
 * least PART_MIN_BYTES of kernels each: every unit repeats the prelude (the
 * scalar ops, ~50 ms to parse) and the link costs ~35 ms, while gcc -O3
 * takes ~40 ms per KB of these kernels. (The per-example gradients' 10.5 KB
 * program, whole vs in two units, alternated 3 times: 391-430 ms vs
 * 248-399.) The object's cache key is the whole source's: the split
 * changes how it is built, not what it computes. */
enum { PART_MIN_BYTES = 4096, MAX_PARTS = 8 };
static const char split_mark[] = "/*@jx-split*/\n", tables_mark[] = "/*@jx-tables*/\n";

static void read_log(const char *path, char *out, size_t outn) {
  out[0] = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return;
  ssize_t k = read(fd, out, outn - 1);
  out[k > 0 ? k : 0] = 0;
  close(fd);
}

/* the unit prelude + [a, b) (+ the rest of the source when last) */
static bool write_unit(const char *path, const char *src, const char *first, const char *a, const char *b) {
  unlink(path);
  size_t np = (size_t)(first - src), nb = (size_t)(b - a);
  char *t = jx_malloc(np + nb + 1);
  if (!t) return false;
  memcpy(t, src, np);
  memcpy(t + np, a, nb);
  bool ok = write_file(path, t, np + nb);
  jx_free(t);
  return ok;
}

/* Build src into the shared object `so` (files stem*); 0 on success, the
 * compiler's exit status with its output in out, or -2 if a file could
 * not be written. */
static int build_object(const char *src, const char *stem, const char *so, char *out, size_t outn, int *units) {
  const char *first = strstr(src, split_mark), *tables = first ? strstr(first, tables_mark) : NULL;
  int nparts = jx_cpu_num_threads();
  if (nparts > MAX_PARTS) nparts = MAX_PARTS;
  const long by_size = tables ? (long)(tables - first) / PART_MIN_BYTES : 0;
  if (nparts > by_size) nparts = by_size < 1 ? 1 : (int)by_size;
  const char *cut[MAX_PARTS + 1];
  if (nparts == 1) first = src; /* one unit: the whole text */
  cut[0] = first;
  for (int i = 1; i < nparts; i++) { /* at the first marker past an equal share */
    const char *m = strstr(first + (size_t)(tables - first) * (size_t)i / (size_t)nparts, split_mark);
    cut[i] = !m || m > tables ? tables : m;
    if (cut[i] < cut[i - 1]) cut[i] = cut[i - 1];
  }
  cut[nparts] = src + strlen(src);
  char path[MAX_PARTS][4300], obj[MAX_PARTS][4300], log[MAX_PARTS][4300];
  pid_t pid[MAX_PARTS];
  int n = 0, rc = 0;
  for (int i = 0; i < nparts; i++) {
    if (cut[i] == cut[i + 1]) continue;
    snprintf(path[n], sizeof path[n], "%s-%d.c", stem, i);
    snprintf(obj[n], sizeof obj[n], "%s-%d.o", stem, i);
    snprintf(log[n], sizeof log[n], "%s-%d.log", stem, i);
    if (!write_unit(path[n], src, first, cut[i], cut[i + 1])) {
      unlink(path[n]);
      rc = -2;
      break;
    }
    char *argv[NFLAGS + 6];
    int a = 0;
    argv[a++] = (char *)compiler();
    for (int f = 0; f < NFLAGS; f++)
      if (nparts == 1 || strcmp(cflags[f], "-shared")) argv[a++] = (char *)cflags[f];
    argv[a++] = nparts == 1 ? "-o" : "-c";
    if (nparts == 1) argv[a++] = (char *)so;
    else argv[a++] = "-o", argv[a++] = obj[n];
    argv[a++] = path[n];
    if (nparts == 1) argv[a++] = "-lm";
    argv[a] = NULL;
    unlink(log[n]);
    pid[n] = spawn_logged(argv, log[n]);
    n++;
  }
  *units = n;
  for (int i = 0; i < n; i++) { /* wait for every child, keep the first failure's output */
    int r = wait_child(pid[i]);
    if (r && !rc) {
      rc = r;
      read_log(log[i], out, outn);
    }
    unlink(path[i]);
    unlink(log[i]);
  }
  if (!rc && nparts > 1) { /* link */
    char *argv[MAX_PARTS + 8];
    int a = 0;
    argv[a++] = (char *)compiler();
    argv[a++] = "-shared";
    argv[a++] = "-o";
    argv[a++] = (char *)so;
    for (int i = 0; i < n; i++) argv[a++] = obj[i];
    argv[a++] = "-lm";
    argv[a] = NULL;
    rc = run(argv, out, outn);
  }
  if (nparts > 1)
    for (int i = 0; i < n; i++) unlink(obj[i]);
  return rc;
}

/* --------------------------------------------------------------- modules */
typedef struct loaded {
  uint64_t key;
  jx_module m;
  struct loaded *next;
} loaded;
static loaded *modules;
static int nmodules;

/* Loaded objects stay for the life of the process, one block each: tests
 * that count blocks (test_oom) subtract them. */
int jx_cpu_module_count(void) {
  pthread_mutex_lock(&lock);
  int n = nmodules;
  pthread_mutex_unlock(&lock);
  return n;
}

static jx_module *open_module(const char *path, uint64_t key, int nkernel, jx_t *err) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    *err = jx_error_new("jit: dlopen of %s failed: %s", path, dlerror());
    return NULL;
  }
  jx_kernel_fn *table = (jx_kernel_fn *)dlsym(h, "jx_kernel_table");
  jx_range_fn *ranges = (jx_range_fn *)dlsym(h, "jx_range_table");
  const jx_slot_kernel *slots = (const jx_slot_kernel *)dlsym(h, "jx_slot_table");
  loaded *l = table && ranges ? jx_calloc(1, sizeof *l) : NULL;
  if (!l) {
    dlclose(h);
    *err = jx_error_new("jit: %s has no kernel table", path);
    return NULL;
  }
  l->key = key;
  l->m = (jx_module){h, nkernel, table, ranges, slots};
  l->next = modules;
  modules = l;
  nmodules++;
  return &l->m;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static jx_module *build_locked(const char *src, int nkernel, jx_t *err) {
  *err = NULL;
  if (!compiler_works()) {
    *err = jx_error_new("jit: no working C compiler ('%s')", compiler());
    return NULL;
  }
  uint64_t key = jx_fnv1a(src, strlen(src), JX_FNV_BASIS);
  key = jx_fnv1a(cc_ident, strlen(cc_ident) + 1, key);
  key = jx_fnv1a(cpu_ident, strlen(cpu_ident) + 1, key);
  for (int i = 0; i < NFLAGS; i++) key = jx_fnv1a(cflags[i], strlen(cflags[i]) + 1, key);
  for (loaded *l = modules; l; l = l->next)
    if (l->key == key) return &l->m;

  double t0 = now_ms();
  const char *dir = cache_dir();
  char tmpdir[64] = "";
  if (!dir) { /* unsafe or missing cache: a private directory for this build */
    snprintf(tmpdir, sizeof tmpdir, "/tmp/jx-build-XXXXXX");
    if (!mkdtemp(tmpdir)) {
      *err = jx_error_new("jit: cannot create a build directory");
      return NULL;
    }
    dir = tmpdir;
  }
  char so[4200], sum[4200], tmpso[4300];
  snprintf(so, sizeof so, "%s/jx-%016llx.so", dir, (unsigned long long)key);
  snprintf(sum, sizeof sum, "%s/jx-%016llx.sum", dir, (unsigned long long)key);
  uint64_t want;
  if (!tmpdir[0] && read_sum(sum, &want) && file_hash(so) == want) {
    jx_module *m = open_module(so, key, nkernel, err);
    if (m && jx_diag_enabled("compile")) jx_diag("jit: disk cache hit %s (%.1f ms)", so, now_ms() - t0);
    if (m) return m;
  } else if (!tmpdir[0] && access(so, F_OK) == 0 && jx_diag_enabled("compile")) {
    jx_diag("jit: rejecting cached object %s (hash mismatch, wrong owner or permissions): rebuilding", so);
  }
  /* build under unique temporary names, then rename into place */
  char stem[4200];
  snprintf(stem, sizeof stem, "%s/tmp-%016llx-%d", dir, (unsigned long long)key, (int)getpid());
  snprintf(tmpso, sizeof tmpso, "%s.so", stem);
  unlink(tmpso);
  char out[8192];
  int units = 0;
  int rc = build_object(src, stem, tmpso, out, sizeof out, &units);
  if (rc != 0) {
    unlink(tmpso);
    if (tmpdir[0]) rmdir(tmpdir);
    *err = rc == -2 ? jx_error_new("jit: cannot write the source files under %s", dir)
                    : jx_error_new("jit: the C compiler failed (exit %d): %.2000s", rc, out);
    return NULL;
  }
  /* Load what this process built, under its private name, before installing
   * it: another process compiling the same source may rename its object
   * over ours at any time, which then only concerns the cache. */
  uint64_t h = file_hash(tmpso);
  jx_module *m = h ? open_module(tmpso, key, nkernel, err) : NULL;
  if (!h) *err = jx_error_new("jit: cannot read the built object %s", tmpso);
  char line[32];
  int n = snprintf(line, sizeof line, "%016llx\n", (unsigned long long)h);
  char tmpsum[4400];
  snprintf(tmpsum, sizeof tmpsum, "%s.sum", tmpso);
  unlink(tmpsum);
  bool installed = m && write_file(tmpsum, line, (size_t)n) && rename(tmpso, so) == 0 && rename(tmpsum, sum) == 0;
  if (m && !installed && !tmpdir[0] && jx_diag_enabled("compile"))
    jx_diag("jit: could not install %s in the cache", so);
  unlink(tmpso);
  unlink(tmpsum);
  if (tmpdir[0]) { /* a private build: the loaded object needs no file */
    unlink(so);
    unlink(sum);
    rmdir(tmpdir);
  }
  if (m && jx_diag_enabled("compile")) jx_diag("jit: compiled %s in %.1f ms (%d unit%s)", so, now_ms() - t0, units, units == 1 ? "" : "s");
  return m;
}

static jx_module *cpu_build(const char *src, int nkernel, jx_t *err) {
  pthread_mutex_lock(&lock);
  jx_module *m = build_locked(src, nkernel, err);
  pthread_mutex_unlock(&lock);
  return m;
}

/* Modules stay loaded for the life of the process (they are shared by
 * every executable built from the same source). */
static void cpu_module_free(jx_module *m) { (void)m; }

__attribute__((destructor)) static void unload_all(void) {
  while (modules) {
    loaded *l = modules;
    modules = l->next;
    dlclose(l->m.handle);
    jx_free(l);
  }
}

char *jx_cpu_render(const jx_program *p, jx_t *err);
static const jx_rt cpu_rt = {.parallel_for = jx_cpu_parallel_for};
const jx_backend jx_cpu_backend = {
    .name = "cpu", .render = jx_cpu_render, .build = cpu_build, .module_free = cpu_module_free, .rt = &cpu_rt};
