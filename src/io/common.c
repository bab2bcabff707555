/* What the file formats share: the atomic writer, the read-only map,
 * argument checks, CRC-32 and the packed name lists the loaders return. */
#include "io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef JX_HAVE_ZLIB
#include <zlib.h>
#endif

int64_t jx_io_test_fail_after = -1;
bool jx_io_test_force_zip64 = false;

static jx_t sys_error(const char *op, const char *path, const char *what, int err) {
  return jx_error_new("%s: %s: %s: %s", op, path, what, strerror(err));
}

/* The temporary file: "<path>.tmp.<pid>.<n>", created exclusively with mode
 * 0666 less the umask (what the final file gets), in path's directory so
 * that the rename stays within one file system. */
jx_t jx_io_open(jx_io_writer *w, const char *op, const char *path) {
  static atomic_uint counter;
  *w = (jx_io_writer){.op = op, .path = path, .fd = -1};
  for (int tries = 0; tries < 100; tries++) {
    jx_free(w->tmp);
    w->tmp = jx_asprintf("%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&counter, 1));
    if (!w->tmp) return w->err = jx_error_new("%s: %s: out of memory", op, path);
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (w->fd >= 0) return NULL;
    if (errno != EEXIST) break;
  }
  w->err = sys_error(op, path, "cannot create a temporary file beside it", errno);
  jx_free(w->tmp), w->tmp = NULL;
  return w->err;
}

void jx_io_write(jx_io_writer *w, const void *p, size_t n) {
  if (w->err) return;
  if (jx_io_test_fail_after >= 0 && w->written + n > (uint64_t)jx_io_test_fail_after) {
    w->err = sys_error(w->op, w->path, "write failed", ENOSPC);
    return;
  }
  const char *c = p;
  for (size_t done = 0; done < n;) {
    ssize_t k = write(w->fd, c + done, n - done > (1u << 30) ? (1u << 30) : n - done);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      w->err = sys_error(w->op, w->path, "write failed", k < 0 ? errno : ENOSPC);
      return;
    }
    done += (size_t)k;
  }
  w->written += n;
}

jx_t jx_io_abort(jx_io_writer *w, jx_t e) {
  if (w->fd >= 0) close(w->fd);
  if (w->tmp) unlink(w->tmp);
  jx_free(w->tmp);
  w->fd = -1, w->tmp = NULL;
  return e;
}

/* The directory entry of the rename must reach the disk too. Some file
 * systems refuse fsync on a directory (EINVAL): nothing more can be done. */
static jx_t fsync_dir(const char *op, const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? jx_asprintf("%.*s", (int)(slash == path ? 1 : slash - path), path) : jx_strdup(".");
  if (!dir) return jx_error_new("%s: %s: out of memory", op, path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  jx_free(dir);
  if (fd < 0)
    return NULL; /* the rename happened; an unreadable directory cannot be
                    synced */
  int rc = fsync(fd), err = errno;
  close(fd);
  if (rc && err != EINVAL) return sys_error(op, path, "fsync of its directory failed", err);
  return NULL;
}

jx_t jx_io_commit(jx_io_writer *w) {
  if (w->err) return jx_io_abort(w, w->err);
  if (fsync(w->fd)) return jx_io_abort(w, sys_error(w->op, w->path, "fsync failed", errno));
  int rc = close(w->fd);
  w->fd = -1;
  if (rc) return jx_io_abort(w, sys_error(w->op, w->path, "close failed", errno));
  if (rename(w->tmp, w->path)) return jx_io_abort(w, sys_error(w->op, w->path, "rename failed", errno));
  jx_free(w->tmp), w->tmp = NULL;
  return fsync_dir(w->op, w->path);
}

jx_t jx_io_map_open(jx_io_map *m, const char *op, const char *path) {
  *m = (jx_io_map){0};
  if (!path) return jx_error_new("%s: path is NULL", op);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sys_error(op, path, "cannot open", errno);
  struct stat st;
  if (fstat(fd, &st)) {
    int err = errno;
    close(fd);
    return sys_error(op, path, "cannot stat", err);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return jx_error_new("%s: %s: not a regular file", op, path);
  }
  if (st.st_size > 0) {
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      close(fd);
      return sys_error(op, path, "cannot map", err);
    }
    m->p = p, m->n = (size_t)st.st_size;
  }
  close(fd);
  return NULL;
}

void jx_io_map_close(jx_io_map *m) {
  if (m->p) munmap((void *)m->p, m->n);
  *m = (jx_io_map){0};
}

jx_t jx_io_check_array(const char *op, const char *path, const char *what, jx_t x) {
  if (!x) return jx_error_new("%s: %s: %s is NULL", op, path, what);
  if (jx_is_error(x)) return x;
  if (jx_is_tracer(x))
    return jx_error_new("%s: %s: %s is a traced value (save concrete arrays, "
                        "outside transformations)",
                        op, path, what);
  if (!jx_is_array(x)) return jx_error_new("%s: %s: %s is a tree, not an array", op, path, what);
  return NULL;
}

size_t jx_io_nbytes(jx_t x) { return (size_t)jx_size(x) * jx_dtype_size(jx_dtype_of(x)); }

#ifdef JX_HAVE_ZLIB
uint32_t jx_io_crc32(uint32_t crc, const void *p, size_t n) {
  const Bytef *b = p;
  while (n > 0) { /* zlib's length is a uInt */
    uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
    crc = (uint32_t)crc32(crc, b, k);
    b += k, n -= k;
  }
  return crc;
}
#else
static uint32_t crc_table[256];
static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
}
uint32_t jx_io_crc32(uint32_t crc, const void *p, size_t n) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, crc_init);
  const uint8_t *b = p;
  crc = ~crc;
  for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ b[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}
#endif

char **jx_io_names_pack(int n, const char *const *names, const size_t *lens) {
  size_t total = sizeof(char *) * (size_t)(n > 0 ? n : 1);
  for (int i = 0; i < n; i++) total += lens[i] + 1;
  char **out = jx_malloc(total);
  if (!out) return NULL;
  char *s = (char *)(out + (n > 0 ? n : 1));
  for (int i = 0; i < n; i++) {
    memcpy(s, names[i], lens[i]);
    s[lens[i]] = 0;
    out[i] = s;
    s += lens[i] + 1;
  }
  if (n == 0) out[0] = NULL;
  return out;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

jx_t jx_io_check_names(const char *op, const char *path, int n, const char *const *names,
                       const jx_t *arrays) {
  if (!path) return jx_error_new("%s: path is NULL", op);
  if (n < 0) return jx_error_new("%s: %s: n is negative (%d)", op, path, n);
  if (n > 0 && (!names || !arrays)) return jx_error_new("%s: %s: names or arrays is NULL", op, path);
  for (int i = 0; i < n; i++) {
    if (!names[i]) return jx_error_new("%s: %s: name %d is NULL", op, path, i);
    if (strlen(names[i]) > 60000) return jx_error_new("%s: %s: name %d is over 60000 bytes", op, path, i);
    char what[80];
    snprintf(what, sizeof what, "array %d", i);
    jx_t e = jx_io_check_array(op, path, what, arrays[i]);
    if (e) return e;
  }
  const char **sorted = jx_malloc(sizeof(char *) * (size_t)(n > 0 ? n : 1));
  if (!sorted) return jx_error_new("%s: %s: out of memory", op, path);
  if (n > 0) memcpy(sorted, names, sizeof(char *) * (size_t)n);
  qsort(sorted, (size_t)n, sizeof(char *), cmp_str);
  jx_t e = NULL;
  for (int i = 1; i < n && !e; i++)
    if (!strcmp(sorted[i - 1], sorted[i]))
      e = jx_error_new("%s: %s: the name \"%s\" appears twice", op, path, sorted[i]);
  jx_free(sorted);
  return e;
}
