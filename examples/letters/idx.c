/* IDX files, the format of MNIST, EMNIST and Fashion-MNIST, and the small
 * helpers every part of the example shares.
 *
 * An IDX file is: two zero bytes, a type byte (0x08: unsigned bytes, the
 * only type these sets use), the number of dimensions, each dimension as a
 * big-endian u32, then the data, row-major. The sets are usually shipped
 * gzipped; with zlib (found by CMake) we read .gz directly. */
#include "letters.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef LT_HAVE_ZLIB
#include <zlib.h>
#endif

/* ------------------------------------------------------------- helpers */

int lt_fail(lt_err *e, const char *fmt, ...) {
  if (e) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
  }
  return -1;
}

double lt_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void lt_data_free(lt_data *d) {
  free(d->images);
  free(d->labels);
  memset(d, 0, sizeof *d);
}

int lt_data_classes(const lt_data *d) {
  int m = 0;
  for (int64_t i = 0; i < d->n; i++)
    if (d->labels[i] + 1 > m) m = d->labels[i] + 1;
  return m;
}

bool lt_have_zlib(void) {
#ifdef LT_HAVE_ZLIB
  return true;
#else
  return false;
#endif
}

/* Write to a temporary name in the same folder, then rename: a reader (or a
 * later run) sees the old file or the complete new one, never half of it. */
int lt_write_atomic(const char *path, const void *data, size_t n, lt_err *e) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
    return lt_fail(e, "%s: path too long", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) return lt_fail(e, "cannot write %s: %s", path, strerror(errno));
  size_t w = n ? fwrite(data, 1, n, f) : 0;
  int err = (w != n) ? errno : 0;
  if (fclose(f) != 0 && !err) err = errno ? errno : EIO;
  if (err || rename(tmp, path) != 0) {
    if (!err) err = errno;
    unlink(tmp);
    return lt_fail(e, "cannot write %s: %s", path, strerror(err));
  }
  return 0;
}

/* ------------------------------------------------------------- reading */

/* The whole file in memory, inflated if gzipped. */
int lt_read_file(const char *path, uint8_t **out, size_t *len, lt_err *e) {
  struct stat st;
  if (stat(path, &st) != 0) return lt_fail(e, "%s: %s", path, strerror(errno));
  if (!S_ISREG(st.st_mode)) return lt_fail(e, "%s: not a regular file", path);
  FILE *f = fopen(path, "rb");
  if (!f) return lt_fail(e, "%s: %s", path, strerror(errno));
  uint8_t magic[2] = {0, 0};
  size_t nm = fread(magic, 1, 2, f);
  fclose(f);
  bool gz = nm == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
#ifndef LT_HAVE_ZLIB
  if (gz)
    return lt_fail(e,
                   "%s is gzip-compressed, but this program was built without zlib "
                   "(install zlib1g-dev and rebuild, or gunzip the file)",
                   path);
#endif
  size_t cap = gz ? (size_t)st.st_size * 4 + 4096 : (size_t)st.st_size + 1, n = 0;
  uint8_t *buf = (uint8_t *)malloc(cap);
  if (!buf) return lt_fail(e, "%s: out of memory", path);
#ifdef LT_HAVE_ZLIB
  if (gz) {
    gzFile g = gzopen(path, "rb");
    if (!g) {
      free(buf);
      return lt_fail(e, "%s: cannot open: %s", path, strerror(errno));
    }
    gzbuffer(g, 1 << 17);
    for (;;) {
      if (n == cap) {
        if (cap > ((size_t)1 << 34)) {
          gzclose(g), free(buf);
          return lt_fail(e, "%s: inflates to more than 16 GiB", path);
        }
        uint8_t *nb = realloc(buf, cap * 2);
        if (!nb) {
          gzclose(g), free(buf);
          return lt_fail(e, "%s: out of memory", path);
        }
        buf = nb, cap *= 2;
      }
      unsigned want = (unsigned)((cap - n) > (1u << 30) ? (1u << 30) : (cap - n));
      int r = gzread(g, buf + n, want);
      if (r < 0) {
        int code;
        char msg[256];
        snprintf(msg, sizeof msg, "%s", gzerror(g, &code));
        gzclose(g), free(buf);
        return lt_fail(e, "%s: corrupt gzip data (%s)", path, msg);
      }
      if (r == 0) break;
      n += (size_t)r;
    }
    /* gzread stops quietly at a truncated stream; gzclose_r reports it */
    int rc = gzclose(g);
    if (rc != Z_OK) {
      free(buf);
      return lt_fail(e, "%s: corrupt or truncated gzip data", path);
    }
    *out = buf, *len = n;
    return 0;
  }
#endif
  f = fopen(path, "rb");
  if (!f) {
    free(buf);
    return lt_fail(e, "%s: %s", path, strerror(errno));
  }
  n = fread(buf, 1, (size_t)st.st_size, f);
  fclose(f);
  if (n != (size_t)st.st_size) {
    free(buf);
    return lt_fail(e, "%s: read error", path);
  }
  *out = buf, *len = n;
  return 0;
}

int lt_idx_read(const char *path, int *ndim, int64_t dims[4], uint8_t **data, lt_err *e) {
  uint8_t *buf;
  size_t len;
  if (lt_read_file(path, &buf, &len, e)) return -1;
  int rc = -1, nd;
  uint64_t total = 1;
  size_t hdr;
  if (len < 4 || buf[0] != 0 || buf[1] != 0) {
    lt_fail(e, "%s: not an IDX file (it must start with two zero bytes, a type and a rank)", path);
    goto done;
  }
  if (buf[2] != 0x08) {
    lt_fail(e, "%s: IDX element type 0x%02x is not supported (only 0x08, unsigned bytes)", path, buf[2]);
    goto done;
  }
  nd = buf[3];
  if (nd < 1 || nd > 4) {
    lt_fail(e, "%s: IDX rank %d is not supported (1 to 4)", path, nd);
    goto done;
  }
  if (len < 4 + 4 * (size_t)nd) {
    lt_fail(e, "%s: truncated IDX header", path);
    goto done;
  }
  for (int i = 0; i < nd; i++) {
    const uint8_t *p = buf + 4 + 4 * i;
    dims[i] = (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
    total *= (uint64_t)dims[i];
    if (total > ((uint64_t)1 << 36)) {
      lt_fail(e, "%s: IDX dimensions too large", path);
      goto done;
    }
  }
  hdr = 4 + 4 * (size_t)nd;
  if (len - hdr != total) {
    lt_fail(e, "%s: corrupt IDX file: its header promises %llu bytes of data, it has %llu%s", path,
            (unsigned long long)total, (unsigned long long)(len - hdr),
            len - hdr < total ? " (truncated?)" : "");
    goto done;
  }
  *ndim = nd;
  *data = (uint8_t *)malloc(total ? total : 1);
  if (!*data) {
    lt_fail(e, "%s: out of memory", path);
    goto done;
  }
  memcpy(*data, buf + hdr, total);
  rc = 0;
done:
  free(buf);
  return rc;
}

int lt_idx_write(const char *path, int ndim, const int64_t *dims, const uint8_t *data, lt_err *e) {
  size_t total = 1;
  for (int i = 0; i < ndim; i++) {
    if (dims[i] < 0 || dims[i] > 0xffffffffLL) return lt_fail(e, "%s: dimension out of range", path);
    total *= (size_t)dims[i];
  }
  size_t hdr = 4 + 4 * (size_t)ndim;
  uint8_t *buf = (uint8_t *)malloc(hdr + total);
  if (!buf) return lt_fail(e, "%s: out of memory", path);
  buf[0] = buf[1] = 0, buf[2] = 0x08, buf[3] = (uint8_t)ndim;
  for (int i = 0; i < ndim; i++) {
    uint32_t d = (uint32_t)dims[i];
    uint8_t *p = buf + 4 + 4 * i;
    p[0] = (uint8_t)(d >> 24), p[1] = (uint8_t)(d >> 16), p[2] = (uint8_t)(d >> 8), p[3] = (uint8_t)d;
  }
  if (total) memcpy(buf + hdr, data, total);
  int rc = lt_write_atomic(path, buf, hdr + total, e);
  free(buf);
  return rc;
}

int lt_idx_load_pair(const char *images, const char *labels, lt_data *out, lt_err *e) {
  int nd1, nd2;
  int64_t d1[4], d2[4];
  uint8_t *img = NULL, *lab = NULL;
  memset(out, 0, sizeof *out);
  if (lt_idx_read(images, &nd1, d1, &img, e)) return -1;
  if (nd1 != 3) {
    free(img);
    return lt_fail(e, "%s: expected images (count, rows, columns), found a rank-%d IDX array", images, nd1);
  }
  if (d1[1] <= 0 || d1[2] <= 0 || d1[1] > 4096 || d1[2] > 4096) {
    free(img);
    return lt_fail(e, "%s: implausible image size %lldx%lld", images, (long long)d1[1], (long long)d1[2]);
  }
  if (lt_idx_read(labels, &nd2, d2, &lab, e)) {
    free(img);
    return -1;
  }
  if (nd2 != 1 || d2[0] != d1[0]) {
    free(img), free(lab);
    if (nd2 != 1) return lt_fail(e, "%s: expected labels (a rank-1 IDX array), found rank %d", labels, nd2);
    return lt_fail(e, "%s has %lld labels but %s has %lld images", labels, (long long)d2[0], images,
                   (long long)d1[0]);
  }
  out->n = d1[0], out->rows = (int)d1[1], out->cols = (int)d1[2];
  out->images = img, out->labels = lab;
  return 0;
}

int lt_idx_save_pair(const char *images, const char *labels, const lt_data *d, lt_err *e) {
  int64_t image_dims[3] = {d->n, d->rows, d->cols}, label_dims[1] = {d->n};
  if (lt_idx_write(images, 3, image_dims, d->images, e)) return -1;
  if (lt_idx_write(labels, 1, label_dims, d->labels, e)) {
    unlink(images);
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------- finding */

static bool has(const char *name, const char *word) {
  char low[1024];
  size_t i = 0;
  for (; name[i] && i + 1 < sizeof low; i++) low[i] = (char)tolower((unsigned char)name[i]);
  low[i] = 0;
  return strstr(low, word) != NULL;
}

int lt_idx_find(const char *dir, char train_images[], char train_labels[], char test_images[],
                char test_labels[], size_t cap, lt_err *e) {
  char folder[4096], prefix[1024] = "";
  struct stat st;
  if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
    snprintf(folder, sizeof folder, "%s", dir);
  } else { /* a prefix: folder/name-start */
    const char *slash = strrchr(dir, '/');
    if (slash) {
      snprintf(folder, sizeof folder, "%.*s", (int)(slash - dir), dir);
      if (!folder[0]) snprintf(folder, sizeof folder, "/");
      snprintf(prefix, sizeof prefix, "%s", slash + 1);
    } else {
      snprintf(folder, sizeof folder, ".");
      snprintf(prefix, sizeof prefix, "%s", dir);
    }
    if (stat(folder, &st) != 0 || !S_ISDIR(st.st_mode)) return lt_fail(e, "--data %s: no such folder", dir);
  }
  DIR *d = opendir(folder);
  if (!d) return lt_fail(e, "--data %s: %s", folder, strerror(errno));
  char *found[4] = {train_images, train_labels, test_images, test_labels};
  int count[4] = {0, 0, 0, 0};
  char first[4][256] = {"", "", "", ""}, second[4][256] = {"", "", "", ""};
  struct dirent *ent;
  while ((ent = readdir(d))) {
    const char *nm = ent->d_name;
    if (nm[0] == '.' || strncmp(nm, prefix, strlen(prefix)) != 0 || strstr(nm, ".tmp.")) continue;
    bool images = has(nm, "images") || has(nm, "idx3"), labels = has(nm, "labels") || has(nm, "idx1");
    bool train = has(nm, "train"), test = has(nm, "t10k") || has(nm, "test");
    if (images == labels || train == test) continue;
    int role = (train ? 0 : 2) + (labels ? 1 : 0);
    if (count[role]++ == 0) {
      snprintf(first[role], sizeof first[role], "%s", nm);
      snprintf(found[role], cap, "%s/%s", folder, nm);
    } else if (count[role] == 2) {
      snprintf(second[role], sizeof second[role], "%s", nm);
    }
  }
  closedir(d);
  static const char *what[4] = {"training images", "training labels", "test images", "test labels"};
  for (int r = 0; r < 4; r++) {
    if (count[r] == 0)
      return lt_fail(e, "--data %s: no %s file (looked for names like %s)", dir, what[r],
                     (const char *[]){"train-images-idx3-ubyte[.gz]", "train-labels-idx1-ubyte[.gz]",
                                      "t10k-images-idx3-ubyte[.gz]", "t10k-labels-idx1-ubyte[.gz]"}[r]);
    if (count[r] > 1) {
      /* suggest the part of the first name before "train"/"test"/"t10k": emnist-letters */
      const char *words[3] = {"train", "t10k", "test"};
      int k = 0;
      for (; first[r][k]; k++) {
        bool hit = false;
        for (int w = r >= 2 ? 1 : 0; w < (r >= 2 ? 3 : 1); w++)
          hit |= strncasecmp(first[r] + k, words[w], 4) == 0;
        if (hit) break;
      }
      if (!first[r][k]) k = 0;
      while (k > 0 && (first[r][k - 1] == '-' || first[r][k - 1] == '_')) k--;
      return lt_fail(e,
                     "--data %s: %d files could be the %s (%s, %s%s); pass a prefix that picks one set, "
                     "e.g. --data %s/%.*s",
                     dir, count[r], what[r], first[r], second[r], count[r] > 2 ? ", ..." : "", folder,
                     k ? k : (int)strlen(first[r]), first[r]);
    }
  }
  return 0;
}
