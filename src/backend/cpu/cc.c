/* The compiler driver and the persistent cache of built objects.
 *
 * Source is built with the system C compiler (`cc`, or $JX_CC) into a
 * shared object and loaded with dlopen. Objects are cached in memory and on
 * disk ($JX_CACHE_DIR, else $XDG_CACHE_HOME/jx, else ~/.cache/jx), keyed by
 * a hash of the source, the compiler's identity, the CPU's identity (the
 * flags say -march=native) and the flags.
 *
 * Cache safety: the directory is created 0700 and opened once per process
 * (O_NOFOLLOW); it is used only if what was opened is a directory owned by
 * us and not accessible to group or others. From then on every file in it
 * is reached through that descriptor (openat, renameat; the compiler runs
 * with it as its working directory), so replacing the directory, or one
 * above it, later changes nothing. Objects are built under a temporary
 * name, loaded from it, then renamed into place (atomic; processes building
 * the same object at once each load their own), with a sidecar recording
 * their key and a hash of their bytes seeded by the key (an object and its
 * sidecar copied under another key do not verify). A cached object must be
 * a regular file owned by us, not writable by others, and hash to the
 * recorded value; it is then loaded through the descriptor that was
 * verified (/proc/self/fd/N), never by its name — anything else is
 * rebuilt, never loaded. With an unsafe directory jx builds in a private
 * temporary directory.
 *
 * The compiler runs in its own process group, its output read through a
 * pipe (a full disk keeps its message), under a deadline ($JX_CC_TIMEOUT
 * seconds, default 300): past it the group is killed and jit interprets.
 * No lock is held while compiling or loading: concurrent builds of one
 * program in a process wait for the first (per key), others proceed.
 *
 * The disk cache is capped at $JX_JIT_CACHE_BYTES (default 1 GiB): after
 * each install the least recently used objects (access time, set on each
 * load) are deleted, and the temporaries of builds that died a day ago. Another process that already opened one still loads
 * it through its descriptor; one that has not sees a miss and rebuilds.
 * Loaded objects are shared by the executables built from the same source
 * (reference counted) and unloaded when the last one is freed. */
#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/render.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
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
static const char *const cflags[] = {
    "-std=c17",           "-march=native", "-ffp-contract=off", "-fno-math-errno",
    "-fno-trapping-math", "-fPIC",         "-shared",           "-w"};
enum { NFLAGS = sizeof cflags / sizeof cflags[0] };
/* The optimization level. -O3 for a program with compiled loops (render.h:
 * JX_O3_MARK), whose bodies it makes faster; for straight-line programs
 * -O2 with -O3's vectorizer (dynamic cost model) makes the same kernels
 * (elementwise maps, reductions, GEMM calls) and skips -O3's loop
 * versioning, unswitching, peeling and distribution: the MLP step's cold
 * build took ~15% less time (Zen 5, gcc 12: 385 -> 330 ms, its run
 * unchanged), while the scan RNN's loops ran ~3% slower without -O3. */
static const char *const opt_loops[] = {"-O3"};
static const char *const opt_plain[] = {"-O2", "-ftree-vectorize", "-fvect-cost-model=dynamic"};
enum { NOPT_MAX = 3 };

typedef struct {
  const char *const *f;
  int n;
} opt_flags;

static opt_flags opt_for(const char *src) { /* the mark ends the first line (render_c.c) */
  const char *nl = strchr(src, '\n');
  const size_t k = sizeof JX_O3_MARK - 1;
  if (nl && (size_t)(nl - src) >= k && !memcmp(nl - k, JX_O3_MARK, k))
    return (opt_flags){opt_loops, sizeof opt_loops / sizeof *opt_loops};
  return (opt_flags){opt_plain, sizeof opt_plain / sizeof *opt_plain};
}
/* LINK_STRIP: objects are linked with -s (no .symtab; dlsym reads
 * .dynsym). The symbol table names the temporary source file, which is
 * unique per process, so without -s two processes building the same key
 * made objects whose bytes differed, and when their renames of the object
 * and of its checksum interleaved, the cache held one's object with the
 * other's checksum (rejected and rebuilt by the next process: test_jit's
 * concurrent-cache check caught it under load). Stripped, the bytes are
 * the same whoever builds them. */

static const char *compiler(void) {
  const char *cc = getenv("JX_CC");
  return cc && *cc ? cc : "cc";
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Guards the loaded-module list and the once-per-process state below; never
 * held while a compiler runs or an object is read or loaded. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t built_cond = PTHREAD_COND_INITIALIZER; /* a build in flight ended */
static char cc_ident[PATH_MAX + 128];                        /* the compiler, as the file system tells it */
static char cc_path[2 * PATH_MAX];                           /* the file to execute (absolute) */
static char cpu_ident[256];                                  /* the CPU the objects are built for */
static int cc_state;                                         /* 0 unknown, 1 found, -1 missing */
enum { PART_MIN_BYTES = 4096, MAX_PARTS = 8, MAX_PROCS = MAX_PARTS };

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
  if (__get_cpuid(1, &r[0], &r[1], &r[2], &r[3]))
    w[k++] = r[0], w[k++] = r[2], w[k++] = r[3]; /* not ebx: APIC id */
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
/* Whether there is a compiler, and what identifies it: its resolved path,
 * size, modification time and inode, read from the file system rather than
 * by running `cc --version` (spawning the driver took ~6 ms of the ~7 ms a
 * reload from the disk cache cost). Installing or upgrading a compiler
 * rewrites the file, so objects built by another compiler are not served;
 * one that is present but does not work fails its first build, and jit
 * interprets (saying why once). The CPU's identity, the key's other part
 * that is fixed for the process, is read here too. Called under `lock`. */
static bool compiler_works(void) {
  if (cc_state) return cc_state > 0;
  char path[PATH_MAX], real[PATH_MAX], cwd[PATH_MAX];
  struct stat st;
  if (find_program(compiler(), path, sizeof path) && realpath(path, real) && stat(real, &st) == 0) {
    snprintf(cc_ident, sizeof cc_ident, "%s %lld %lld.%09ld %llu", real, (long long)st.st_size,
             (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec, (unsigned long long)st.st_ino);
    /* the compiler runs in the cache directory: a relative name is made
     * absolute (not resolved: a ccache-style link dispatches on its name) */
    if (path[0] == '/' || !getcwd(cwd, sizeof cwd))
      snprintf(cc_path, sizeof cc_path, "%s", path);
    else
      snprintf(cc_path, sizeof cc_path, "%s/%s", cwd, path);
    read_cpu_ident();
    cc_state = 1;
  } else {
    cc_state = -1;
    if (jx_diag_enabled("compile"))
      jx_diag("jit: no working C compiler (%s); jit runs by interpreting the optimized jaxpr", compiler());
  }
  return cc_state > 0;
}

/* ---------------------------------------------------- running the compiler */
/* A compiler process: its own process group (so that a timeout kills what
 * it started too), stdout and stderr into a pipe we read. */
typedef struct {
  pid_t pid; /* -1 once reaped */
  int fd;    /* read end, -1 once closed */
  int status;
  size_t n;
  char buf[4096];
} proc;

static int spawn_proc(char *const argv[], int dfd, proc *p) {
  int pfd[2];
  p->pid = -1, p->fd = -1, p->status = -1, p->n = 0, p->buf[0] = 0;
  if (pipe2(pfd, O_CLOEXEC)) { /* CLOEXEC: no other child holds our pipe open */
    snprintf(p->buf, sizeof p->buf, "cannot make a pipe: %s", strerror(errno));
    return -1;
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
  posix_spawn_file_actions_addfchdir_np(&fa, dfd);
  posix_spawnattr_init(&at);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&at, 0);
  int rc = posix_spawn(&p->pid, cc_path, &fa, &at, argv, environ);
  posix_spawnattr_destroy(&at);
  posix_spawn_file_actions_destroy(&fa);
  close(pfd[1]);
  if (rc) {
    close(pfd[0]);
    p->pid = -1;
    snprintf(p->buf, sizeof p->buf, "cannot run %.1000s: %s", cc_path, strerror(rc));
    return -1;
  }
  fcntl(pfd[0], F_SETFL, O_NONBLOCK);
  p->fd = pfd[0];
  return 0;
}

/* read what is there; close at end of file */
static void drain(proc *p) {
  char junk[1024];
  for (;;) {
    bool room = p->n + 1 < sizeof p->buf;
    ssize_t k = room ? read(p->fd, p->buf + p->n, sizeof p->buf - 1 - p->n) : read(p->fd, junk, sizeof junk);
    if (k > 0) {
      if (room) p->n += (size_t)k, p->buf[p->n] = 0;
      continue;
    }
    if (k < 0 && errno == EINTR) continue;
    if (k == 0 || errno != EAGAIN) close(p->fd), p->fd = -1;
    return;
  }
}

/* Whether the process exited (not reaped: its pid, and so its group's id,
 * stays ours until reap). ECHILD (the program ignores SIGCHLD, so children
 * reap themselves) counts as exited: reap then reports a failure. */
static bool exited(pid_t pid) {
  siginfo_t si;
  si.si_pid = 0;
  if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) return errno == ECHILD;
  return si.si_pid == pid;
}

/* Kill what is left of the process's group, then collect it: its exit
 * status, -1 if it did not exit normally. */
static int reap(proc *p) {
  int st;
  siginfo_t si;
  si.si_pid = 0; /* a pid already reaped may be reused: signal only one still ours */
  if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0) kill(-p->pid, SIGKILL);
  pid_t pid = p->pid;
  p->pid = -1;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) {
      if (errno == ECHILD && !p->n)
        snprintf(p->buf, sizeof p->buf, "its exit status is lost (SIGCHLD ignored?)");
      return -1;
    }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Wait for every process, reading their output, until `deadline` (ms of
 * now_ms); past it every group is killed. False on a timeout. */
static bool wait_procs(proc *p, int n, double deadline) {
  for (;;) {
    struct pollfd pf[MAX_PROCS];
    int idx[MAX_PROCS], npf = 0;
    bool running = false;
    for (int i = 0; i < n; i++) {
      if (p[i].pid > 0 && exited(p[i].pid)) { /* its group killed: what it left holds no pipe */
        p[i].status = reap(&p[i]);
        if (p[i].fd >= 0) drain(&p[i]);
        if (p[i].fd >= 0) close(p[i].fd), p[i].fd = -1;
      }
      running |= p[i].pid > 0;
      if (p[i].fd >= 0) pf[npf] = (struct pollfd){.fd = p[i].fd, .events = POLLIN}, idx[npf++] = i;
    }
    if (!running) break;
    double left = deadline - now_ms();
    if (left <= 0) {
      for (int i = 0; i < n; i++) {
        if (p[i].pid > 0) reap(&p[i]), p[i].status = -1;
        if (p[i].fd >= 0) close(p[i].fd), p[i].fd = -1;
      }
      return false;
    }
    /* with a pipe open, its end of file says the compiler is done (the
     * exit follows at once); the 100 ms cap is for a process that exits
     * while one it started holds the pipe */
    int ms = npf ? (left < 100 ? (int)left + 1 : 100) : 1;
    if (npf) {
      if (poll(pf, (nfds_t)npf, ms) > 0)
        for (int k = 0; k < npf; k++)
          if (pf[k].revents) drain(&p[idx[k]]);
    } else {
      nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
  }
  for (int i = 0; i < n; i++)
    if (p[i].fd >= 0) close(p[i].fd), p[i].fd = -1;
  return true;
}

/* How long a build may take: $JX_CC_TIMEOUT seconds, default 300 (a large
 * program at -O3 on a loaded machine takes tens of seconds). */
static double cc_timeout_s(void) {
  const char *s = getenv("JX_CC_TIMEOUT");
  char *end;
  double t = s && *s ? strtod(s, &end) : 0;
  return !s || !*s || *end || !(t > 0) || t > 1e7 ? 300 : t;
}

/* ------------------------------------------------------------- cache dir */
static char cache_path[4096]; /* for messages only: files are reached through cache_fd */
static int cache_fd = -1;

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

/* The directory at `path` opened (not through a symlink), if it is ours and
 * private; else -1. The checks are made on what was opened. */
static int open_private_dir(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fd >= 0 && (fstat(fd, &st) || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))) {
    close(fd);
    fd = -1;
  }
  return fd;
}

/* The cache directory's descriptor if it is safe to use, else -1 (logged
 * once). Opened once per process, under `lock`. */
static int cache_dir(void) {
  static int state; /* 0 unknown, 1 ok, -1 unusable */
  if (state) return cache_fd;
  const char *env = getenv("JX_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  char *dir = cache_path;
  if (env && *env)
    snprintf(dir, sizeof cache_path, "%s", env);
  else if (xdg && *xdg)
    snprintf(dir, sizeof cache_path, "%s/jx", xdg);
  else if (home && *home)
    snprintf(dir, sizeof cache_path, "%s/.cache/jx", home);
  else
    dir[0] = 0;
  cache_fd = dir[0] && mkdirs(dir) == 0 ? open_private_dir(dir) : -1;
  state = cache_fd >= 0 ? 1 : -1;
  if (state < 0 && jx_diag_enabled("compile"))
    jx_diag("jit: cache directory '%s' is missing, not ours, a symlink or accessible to others: not using it",
            dir);
  return cache_fd;
}

/* A regular file owned by us and unwritable by others. */
static bool private_file(int fd, struct stat *st) {
  return fstat(fd, st) == 0 && S_ISREG(st->st_mode) && st->st_uid == geteuid() && !(st->st_mode & 022);
}

/* Hash of an open file's bytes, seeded by the key (so that a checksum
 * verifies only the object of its own key); 0 on a read error. */
static uint64_t fd_hash(int fd, uint64_t key) {
  uint64_t h = jx_fnv1a(&key, sizeof key, JX_FNV_BASIS);
  char buf[65536];
  ssize_t k;
  off_t off = 0;
  while ((k = pread(fd, buf, sizeof buf, off)) > 0) h = jx_fnv1a(buf, (size_t)k, h), off += k;
  if (k < 0) return 0;
  return h ? h : 1; /* 0 means "unreadable", never a hash */
}

static bool write_at(int dfd, const char *name, const void *data, size_t n) {
  int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const char *p = data;
  while (n) {
    ssize_t k = write(fd, p, n);
    if (k <= 0) {
      int e = k < 0 ? errno : ENOSPC;
      close(fd);
      errno = e;
      return false;
    }
    p += k, n -= (size_t)k;
  }
  return close(fd) == 0;
}

/* The checksum file `name`: "key hash"; true if it is private, names `key`
 * and gives a hash. */
static bool read_sum(int dfd, const char *name, uint64_t key, uint64_t *sum) {
  int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  char buf[64] = {0};
  bool ok = private_file(fd, &st) && read(fd, buf, sizeof buf - 1) > 0;
  close(fd);
  unsigned long long k, h;
  return ok && sscanf(buf, "%16llx %16llx", &k, &h) == 2 && k == key && (*sum = h) != 0;
}

/* ------------------------------------------------------------- building */
/* A large source is split at the renderer's markers (render.h) into units
 * compiled at once and linked: the C compiler is most of a first jit call
 * (a training step of 30 kernels: ~0.55 s whole, ~0.37 s in two halves on
 * 2 cores). One unit per thread of jx's pool (at most MAX_PARTS), and at
 * least PART_MIN_BYTES of kernels each: every unit repeats the prelude (the
 * scalar ops the program calls: render_prelude.c; ~70 M instructions of
 * cc1 for the MLP step's, ~130 M when all were pasted) and the link costs
 * ~25 ms (link_flags), while gcc -O3
 * takes ~40 ms per KB of these kernels. (The per-example gradients' 10.5 KB
 * program, whole vs in two units, alternated 3 times: 391-430 ms vs
 * 248-399.) The object's cache key is the whole source's: the split
 * changes how it is built, not what it computes. */
static const char split_mark[] = JX_SPLIT_MARK, tables_mark[] = JX_TABLES_MARK;

/* the unit prelude + [a, b) (+ the rest of the source when last) */
static bool write_unit(int dfd, const char *name, const char *src, const char *first, const char *a,
                       const char *b) {
  unlinkat(dfd, name, 0);
  size_t np = (size_t)(first - src), nb = (size_t)(b - a);
  char *t = jx_malloc(np + nb + 1);
  if (!t) return errno = ENOMEM, false;
  memcpy(t, src, np);
  memcpy(t + np, a, nb);
  bool ok = write_at(dfd, name, t, np + nb);
  int e = errno;
  jx_free(t);
  errno = e;
  return ok;
}

/* where the source is cut into nparts units: cut[0..nparts] */
static int split_source(const char *src, const char **cut, const char **first_out) {
  const char *first = strstr(src, split_mark), *tables = first ? strstr(first, tables_mark) : NULL;
  int nparts = jx_cpu_num_threads();
  if (nparts > MAX_PARTS) nparts = MAX_PARTS;
  const long by_size = tables ? (long)(tables - first) / PART_MIN_BYTES : 0;
  if (nparts > by_size) nparts = by_size < 1 ? 1 : (int)by_size;
  if (nparts == 1) first = src; /* one unit: the whole text */
  cut[0] = first;
  for (int i = 1; i < nparts; i++) { /* at the first marker past an equal share */
    const char *m = strstr(first + (size_t)(tables - first) * (size_t)i / (size_t)nparts, split_mark);
    cut[i] = !m || m > tables ? tables : m;
    if (cut[i] < cut[i - 1]) cut[i] = cut[i - 1];
  }
  cut[nparts] = src + strlen(src);
  *first_out = first;
  return nparts;
}

/* The link's libraries, after the objects. -nostdlib: no C runtime start
 * files and no libc link script to read; an object that dlopen loads
 * needs neither (no constructors are generated), and the C library it
 * calls (memcpy, memset) is always loaded in the calling process. libm
 * stays a dependency (recorded when used), so its symbols resolve even
 * where jx itself was loaded with RTLD_LOCAL; libgcc (static) supplies the
 * compiler's helpers. The link took ~57 ms with the defaults and ~25 ms
 * so, on the MLP step's two units (Zen 5). -s: see LINK_STRIP. */
static int link_flags(char **argv, int a) {
  argv[a++] = "-nostdlib";
  argv[a++] = "-lm";
  argv[a++] = "-lgcc";
  argv[a++] = "-s";
  return a;
}

/* the first failure among procs [0, n): its output into out, its status */
static int first_failure(const proc *p, int n, char *out, size_t outn) {
  for (int i = 0; i < n; i++)
    if (p[i].status) {
      snprintf(out, outn, "%s", p[i].buf);
      return p[i].status;
    }
  return 0;
}

/* Build src into the shared object `so` (files stem*, in the directory
 * dfd, where the compiler runs); 0 on success, the compiler's exit status
 * (-1: killed or could not start) with its output in out, -2 if a file
 * could not be written (why in out), -3 past the deadline. */
static int build_object(const char *src, int dfd, const char *stem, const char *so, char *out, size_t outn,
                        int *units) {
  const char *cut[MAX_PARTS + 1], *first;
  const int nparts = split_source(src, cut, &first);
  const opt_flags opt = opt_for(src);
  const double deadline = now_ms() + cc_timeout_s() * 1e3;
  char path[MAX_PARTS][128], obj[MAX_PARTS][128];
  proc pr[MAX_PARTS];
  int n = 0, rc = 0;
  for (int i = 0; i < nparts && !rc; i++) {
    if (cut[i] == cut[i + 1]) continue;
    snprintf(path[n], sizeof path[n], "%s-%d.c", stem, i);
    snprintf(obj[n], sizeof obj[n], "%s-%d.o", stem, i);
    if (!write_unit(dfd, path[n], src, first, cut[i], cut[i + 1])) {
      snprintf(out, outn, "%s", strerror(errno));
      unlinkat(dfd, path[n], 0);
      rc = -2;
      break;
    }
    char *argv[NFLAGS + NOPT_MAX + 12];
    int a = 0;
    argv[a++] = (char *)compiler();
    for (int f = 0; f < opt.n; f++) argv[a++] = (char *)opt.f[f];
    for (int f = 0; f < NFLAGS; f++)
      if (nparts == 1 || strcmp(cflags[f], "-shared")) argv[a++] = (char *)cflags[f];
    argv[a++] = nparts == 1 ? "-o" : "-c";
    argv[a++] = nparts == 1 ? (char *)so : obj[n];
    argv[a++] = path[n];
    if (nparts == 1) a = link_flags(argv, a);
    argv[a] = NULL;
    spawn_proc(argv, dfd, &pr[n++]); /* a failed start leaves status -1 and the reason */
  }
  *units = n;
  bool in_time = wait_procs(pr, n, deadline);
  if (!rc) rc = in_time ? first_failure(pr, n, out, outn) : -3;
  for (int i = 0; i < n; i++) unlinkat(dfd, path[i], 0);
  if (!rc && nparts > 1) { /* link */
    char *argv[MAX_PARTS + 12];
    int a = 0;
    argv[a++] = (char *)compiler();
    argv[a++] = "-shared";
    argv[a++] = "-o";
    argv[a++] = (char *)so;
    for (int i = 0; i < n; i++) argv[a++] = obj[i];
    a = link_flags(argv, a);
    argv[a] = NULL;
    spawn_proc(argv, dfd, &pr[0]);
    rc = wait_procs(pr, 1, deadline) ? first_failure(pr, 1, out, outn) : -3;
  }
  if (nparts > 1)
    for (int i = 0; i < n; i++) unlinkat(dfd, obj[i], 0);
  return rc;
}

/* --------------------------------------------------------------- modules */
/* A loaded object, or one being built (state 0; other threads wanting the
 * same key wait for it), or a failed build its waiters have not yet seen
 * (state -1). Shared by every executable built from the same source. */
typedef struct loaded {
  uint64_t key;
  int state;   /* 0 building, 1 loaded, -1 failed */
  int refs;    /* executables using it */
  int waiters; /* threads waiting for the build */
  int name_fd; /* the N of /proc/self/fd/N it was loaded as, -1 if none */
  char msg[512];
  jx_module m;
  struct loaded *next;
} loaded;
static loaded *modules;
static int nmodules;

/* Test hook: called after a cached object was verified, before it is
 * loaded, with its file name in the cache directory. */
void (*jx_cpu_cache_verified_hook)(const char *name);

/* Loaded objects, one block each: tests that count blocks (test_oom)
 * subtract them. */
int jx_cpu_module_count(void) {
  pthread_mutex_lock(&lock);
  int n = nmodules;
  pthread_mutex_unlock(&lock);
  return n;
}

static void unlink_module(loaded *l) { /* under lock */
  for (loaded **p = &modules; *p; p = &(*p)->next)
    if (*p == l) {
      *p = l->next;
      nmodules--;
      return;
    }
}

/* A descriptor number for `fd` that no object we have loaded is named by:
 * the dynamic loader matches a path it has loaded before by name, so a
 * reused /proc/self/fd/N would give the old object. Reserved in l. */
static int unique_name(int fd, loaded *l) {
  pthread_mutex_lock(&lock);
  int cand = fd;
  for (bool again = true; again && cand >= 0;) {
    again = false;
    for (loaded *o = modules; o && !again; o = o->next) again = o->name_fd == cand;
    if (again) {
      int d = fcntl(fd, F_DUPFD_CLOEXEC, cand + 1);
      if (cand != fd) close(cand);
      cand = d;
    }
  }
  l->name_fd = cand;
  pthread_mutex_unlock(&lock);
  return cand;
}

/* Load the verified object open as fd into l (through the descriptor, not
 * its name: the file at the name may have changed since). */
static bool load_fd(int fd, const char *what, int nkernel, loaded *l, jx_t *err) {
  int name = unique_name(fd, l);
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", name);
  void *h = name >= 0 ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
  const char *why = h ? NULL : name >= 0 ? dlerror() : strerror(errno);
  if (name >= 0 && name != fd) close(name);
  jx_kernel_fn *table = h ? (jx_kernel_fn *)dlsym(h, "jx_kernel_table") : NULL;
  jx_range_fn *ranges = h ? (jx_range_fn *)dlsym(h, "jx_range_table") : NULL;
  const jx_slot_kernel *slots = h ? (const jx_slot_kernel *)dlsym(h, "jx_slot_table") : NULL;
  if (!table || !ranges) {
    if (h) dlclose(h);
    pthread_mutex_lock(&lock);
    l->name_fd = -1;
    pthread_mutex_unlock(&lock);
    *err = h ? jx_error_new("jit: %s has no kernel table", what)
             : jx_error_new("jit: dlopen of %s failed: %s", what, why);
    return false;
  }
  l->m = (jx_module){h, nkernel, table, ranges, slots};
  return true;
}

/* Load the object of `key` from the cache directory if it verifies. */
static bool load_cached(int dfd, uint64_t key, int nkernel, loaded *l, jx_t *err) {
  char so[64], sum[64], what[4200];
  snprintf(so, sizeof so, "jx-%016llx.so", (unsigned long long)key);
  snprintf(sum, sizeof sum, "jx-%016llx.sum", (unsigned long long)key);
  snprintf(what, sizeof what, "%s/%s", cache_path, so);
  double t0 = now_ms();
  int fd = openat(dfd, so, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return false; /* a miss */
  uint64_t want = 0;
  struct stat st;
  bool ok = fd >= 0 && read_sum(dfd, sum, key, &want) && private_file(fd, &st) && fd_hash(fd, key) == want;
  if (ok && jx_cpu_cache_verified_hook) jx_cpu_cache_verified_hook(so);
  jx_t lerr = NULL;
  ok = ok && load_fd(fd, what, nkernel, l, &lerr);
  if (ok) { /* the access time orders eviction: least recently loaded first */
    futimens(fd, (const struct timespec[2]){{0, UTIME_NOW}, {0, UTIME_OMIT}});
    if (jx_diag_enabled("compile")) jx_diag("jit: disk cache hit %s (%.1f ms)", what, now_ms() - t0);
  } else if (jx_diag_enabled("compile")) {
    jx_diag("jit: rejecting cached object %s (%s): rebuilding", what,
            lerr ? jx_error(lerr) : "hash mismatch, wrong key, owner or permissions");
  }
  if (fd >= 0) close(fd);
  (void)err;
  return ok;
}

/* ------------------------------------------------------------- eviction */
typedef struct {
  char name[64];
  struct timespec atime;
  off_t bytes; /* the object and its checksum */
} cached;

static int by_atime(const void *a, const void *b) {
  const struct timespec *x = &((const cached *)a)->atime, *y = &((const cached *)b)->atime;
  return x->tv_sec != y->tv_sec ? (x->tv_sec < y->tv_sec ? -1 : 1)
                                : (x->tv_nsec < y->tv_nsec ? -1 : x->tv_nsec > y->tv_nsec);
}

static unsigned long long cache_cap(void) {
  const char *s = getenv("JX_JIT_CACHE_BYTES");
  char *end;
  unsigned long long v = s && *s ? strtoull(s, &end, 10) : 0;
  return s && *s && !*end && v ? v : 1ull << 30;
}

/* The cached objects (jx-*.so) with their sizes and access times; *total
 * is their bytes. Caller frees. Deletes stale temporaries on the way. */
static cached *list_cached(int dfd, int *n, unsigned long long *total) {
  *n = 0, *total = 0;
  int d2 = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = d2 >= 0 ? fdopendir(d2) : NULL;
  if (!d) {
    if (d2 >= 0) close(d2);
    return NULL;
  }
  cached *v = NULL;
  int cap = 0;
  struct dirent *e;
  const double day = 86400, limit = cc_timeout_s() > day ? cc_timeout_s() : day;
  const time_t stale = time(NULL) - (time_t)limit;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    struct stat st, ss;
    /* a build's temporaries a day old (or JX_CC_TIMEOUT, if longer) were
     * left by a process that died */
    if (!strncmp(e->d_name, "tmp-", 4) && !fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) &&
        st.st_mtime < stale)
      unlinkat(dfd, e->d_name, 0);
    if (strncmp(e->d_name, "jx-", 3) || len < 6 || len >= 60 || strcmp(e->d_name + len - 3, ".so") ||
        fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW))
      continue;
    if (*n == cap) {
      cached *w = jx_realloc(v, sizeof *v * (size_t)(cap = cap ? 2 * cap : 64));
      if (!w) break;
      v = w;
    }
    cached *c = &v[(*n)++];
    snprintf(c->name, sizeof c->name, "%.*s", (int)(len - 3), e->d_name); /* the stem */
    char sum[72];
    snprintf(sum, sizeof sum, "%s.sum", c->name);
    c->atime = st.st_atim;
    c->bytes = st.st_size + (fstatat(dfd, sum, &ss, AT_SYMLINK_NOFOLLOW) ? 0 : ss.st_size);
    *total += (unsigned long long)c->bytes;
  }
  closedir(d);
  return v;
}

/* Delete the least recently used objects until the cache fits its cap
 * ($JX_JIT_CACHE_BYTES), sparing `keep` (the stem just installed). Another
 * process loading one of them already holds it open, or misses. */
static void evict(int dfd, const char *keep) {
  int n;
  unsigned long long total, cap = cache_cap();
  cached *v = list_cached(dfd, &n, &total);
  if (v && total > cap) {
    qsort(v, (size_t)n, sizeof *v, by_atime);
    for (int i = 0; i < n && total > cap; i++) {
      if (!strcmp(v[i].name, keep)) continue;
      char f[80];
      snprintf(f, sizeof f, "%s.so", v[i].name);
      unlinkat(dfd, f, 0);
      snprintf(f, sizeof f, "%s.sum", v[i].name);
      unlinkat(dfd, f, 0);
      total -= (unsigned long long)v[i].bytes;
      if (jx_diag_enabled("compile")) jx_diag("jit: evicted %s/%s.so from the cache", cache_path, v[i].name);
    }
  }
  jx_free(v);
}

/* ------------------------------------------------------- build and load */
/* Install the built object tmpso (open as fd, hash h) as the cached object
 * of key in dfd, with its checksum; false if it could not be. */
static bool install(int dfd, const char *tmpso, uint64_t key, uint64_t h) {
  char line[64], tmpsum[128], so[64], sum[64];
  int n = snprintf(line, sizeof line, "%016llx %016llx\n", (unsigned long long)key, (unsigned long long)h);
  snprintf(tmpsum, sizeof tmpsum, "%s.sum", tmpso);
  snprintf(so, sizeof so, "jx-%016llx.so", (unsigned long long)key);
  snprintf(sum, sizeof sum, "jx-%016llx.sum", (unsigned long long)key);
  unlinkat(dfd, tmpsum, 0);
  bool ok = write_at(dfd, tmpsum, line, (size_t)n) && renameat(dfd, tmpso, dfd, so) == 0 &&
            renameat(dfd, tmpsum, dfd, sum) == 0;
  unlinkat(dfd, tmpsum, 0);
  return ok;
}

/* Compile src into dfd under a unique temporary name and load it; when
 * `cache`, install it in the cache. */
static bool compile_into(const char *src, uint64_t key, int nkernel, int dfd, bool cache, loaded *l,
                         jx_t *err) {
  static atomic_uint seq;
  const double t0 = now_ms();
  char stem[96], tmpso[112], out[8192] = "";
  snprintf(stem, sizeof stem, "tmp-%016llx-%d-%u", (unsigned long long)key, (int)getpid(),
           atomic_fetch_add(&seq, 1));
  snprintf(tmpso, sizeof tmpso, "%s.so", stem);
  unlinkat(dfd, tmpso, 0);
  int units = 0, rc = build_object(src, dfd, stem, tmpso, out, sizeof out, &units);
  if (rc) {
    unlinkat(dfd, tmpso, 0);
    if (rc == -3)
      *err = jx_error_new("jit: the C compiler did not finish within JX_CC_TIMEOUT (%g s): killed",
                          cc_timeout_s());
    else if (rc == -2)
      *err = jx_error_new("jit: cannot write the source files under %s: %s", cache_path, out);
    else
      *err = jx_error_new("jit: the C compiler failed (exit %d): %.2000s", rc, out);
    return false;
  }
  /* Load what this process built, under its private name, before installing
   * it: another process compiling the same source may rename its object
   * over ours at any time, which then only concerns the cache. */
  int fd = openat(dfd, tmpso, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  uint64_t h = fd >= 0 && private_file(fd, &st) ? fd_hash(fd, key) : 0;
  bool ok = h && load_fd(fd, tmpso, nkernel, l, err);
  if (!h) *err = jx_error_new("jit: cannot read the built object %s", tmpso);
  if (fd >= 0) close(fd);
  if (ok && cache && !install(dfd, tmpso, key, h) && jx_diag_enabled("compile"))
    jx_diag("jit: could not install %s/jx-%016llx.so in the cache", cache_path, (unsigned long long)key);
  unlinkat(dfd, tmpso, 0);
  if (ok && jx_diag_enabled("compile"))
    jx_diag("jit: compiled %s/jx-%016llx.so in %.1f ms (%d unit%s)", cache ? cache_path : "(private)",
            (unsigned long long)key, now_ms() - t0, units, units == 1 ? "" : "s");
  if (ok && cache) {
    snprintf(stem, sizeof stem, "jx-%016llx", (unsigned long long)key);
    evict(dfd, stem);
  }
  return ok;
}

/* Build (or load from the disk cache) the object of `key` into l. */
static bool build_key(const char *src, uint64_t key, int nkernel, int dfd, loaded *l, jx_t *err) {
  if (dfd >= 0) {
    if (load_cached(dfd, key, nkernel, l, err)) return true;
    return compile_into(src, key, nkernel, dfd, true, l, err);
  }
  /* unsafe or missing cache: a private directory for this build */
  char tmpdir[64] = "/tmp/jx-build-XXXXXX";
  int tfd = mkdtemp(tmpdir) ? open_private_dir(tmpdir) : -1;
  if (tfd < 0) {
    if (tmpdir[0]) rmdir(tmpdir);
    *err = jx_error_new("jit: cannot create a build directory: %s", strerror(errno));
    return false;
  }
  bool ok = compile_into(src, key, nkernel, tfd, false, l, err);
  close(tfd);
  rmdir(tmpdir); /* the loaded object needs no file */
  return ok;
}

static uint64_t source_key(const char *src) {
  uint64_t key = jx_fnv1a(src, strlen(src), JX_FNV_BASIS);
  key = jx_fnv1a(cc_ident, strlen(cc_ident) + 1, key);
  key = jx_fnv1a(cpu_ident, strlen(cpu_ident) + 1, key);
  for (int i = 0; i < NFLAGS; i++) key = jx_fnv1a(cflags[i], strlen(cflags[i]) + 1, key);
  const opt_flags opt = opt_for(src);
  for (int i = 0; i < opt.n; i++) key = jx_fnv1a(opt.f[i], strlen(opt.f[i]) + 1, key);
  return key;
}

/* Wait (under lock) for another thread's build of l; its module, or NULL
 * with its error. */
static jx_module *wait_for(loaded *l, jx_t *err) {
  if (l->state > 0) {
    l->refs++;
    pthread_mutex_unlock(&lock);
    return &l->m;
  }
  l->waiters++;
  while (l->state == 0) pthread_cond_wait(&built_cond, &lock);
  l->waiters--;
  if (l->state > 0) { /* the builder counted us in (the object cannot go before we wake) */
    pthread_mutex_unlock(&lock);
    return &l->m;
  }
  char msg[sizeof l->msg];
  snprintf(msg, sizeof msg, "%s", l->msg);
  if (!l->waiters) unlink_module(l), jx_free(l);
  pthread_mutex_unlock(&lock);
  *err = jx_error_new("%s", msg);
  return NULL;
}

static jx_module *cpu_build(const char *src, int nkernel, jx_t *err) {
  *err = NULL;
  pthread_mutex_lock(&lock);
  if (!compiler_works()) {
    pthread_mutex_unlock(&lock);
    *err = jx_error_new("jit: no working C compiler ('%s')", compiler());
    return NULL;
  }
  const int dfd = cache_dir();
  const uint64_t key = source_key(src);
  for (loaded *l = modules; l; l = l->next)
    if (l->key == key && l->state >= 0) return wait_for(l, err); /* unlocks */
  loaded *l = jx_calloc(1, sizeof *l);
  if (l) {
    *l = (loaded){.key = key, .name_fd = -1, .next = modules};
    modules = l;
    nmodules++;
  }
  pthread_mutex_unlock(&lock);
  if (!l) {
    *err = jx_error_new("jit: out of memory");
    return NULL;
  }
  const bool ok = build_key(src, key, nkernel, dfd, l, err);
  pthread_mutex_lock(&lock);
  l->state = ok ? 1 : -1;
  l->refs = ok ? 1 + l->waiters : 0; /* ours and each waiter's */
  if (!ok) snprintf(l->msg, sizeof l->msg, "%s", *err ? jx_error(*err) : "jit: build failed");
  if (!ok && !l->waiters) unlink_module(l), jx_free(l);
  pthread_cond_broadcast(&built_cond);
  pthread_mutex_unlock(&lock);
  return ok ? &l->m : NULL;
}

/* The last executable using an object unloads it (under the lock: until
 * the loader has forgotten it, its /proc/self/fd name stays reserved). */
static void cpu_module_free(jx_module *m) {
  if (!m) return;
  loaded *l = (loaded *)((char *)m - offsetof(loaded, m));
  pthread_mutex_lock(&lock);
  if (--l->refs == 0) {
    unlink_module(l);
    dlclose(l->m.handle);
    jx_free(l);
  }
  pthread_mutex_unlock(&lock);
}

/* At unload, the modules no executable uses. One still in use is left to
 * its executables: for libjx.so this destructor can run before the root
 * pool's atexit release, which frees the jitted functions held there and,
 * through cpu_module_free, their modules (freeing them here was a use
 * after free at exit). */
__attribute__((destructor)) static void unload_all(void) {
  pthread_mutex_lock(&lock);
  for (loaded **p = &modules; *p;) {
    loaded *l = *p;
    if (l->refs > 0) {
      p = &l->next;
      continue;
    }
    *p = l->next;
    nmodules--;
    if (l->state > 0) dlclose(l->m.handle);
    jx_free(l);
  }
  pthread_mutex_unlock(&lock);
}

char *jx_cpu_render(const jx_program *p, jx_t *err);
static const jx_rt cpu_rt = {.parallel_for = jx_cpu_parallel_for};
const jx_backend jx_cpu_backend = {.name = "cpu",
                                   .render = jx_cpu_render,
                                   .build = cpu_build,
                                   .module_free = cpu_module_free,
                                   .rt = &cpu_rt,
                                   .num_threads = jx_cpu_num_threads,
                                   .set_num_threads = jx_cpu_set_num_threads,
                                   .set_thread_cap = jx_cpu_set_thread_cap};
