/* Saving and loading (.npy, .npz, .safetensors, tree checkpoints): the
 * pieces the formats share. Files are written atomically through a
 * jx_io_writer (a temporary file in the target's directory, fsync, rename,
 * fsync of the directory) and read through a read-only memory map. Every
 * failure is an error value naming the operation, the file and the cause. */
#ifndef JX_IO_H
#define JX_IO_H

#include "core/core.h"

#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "jx's file formats are little-endian and so is the in-memory layout they assume"
#endif

/* ------------------------------------------------------------ writing */
typedef struct {
  const char *op, *path;
  char *tmp; /* the temporary file's name (jx_malloc) */
  int fd;
  uint64_t written; /* bytes so far (zip offsets) */
  jx_t err;         /* the first failure, or NULL */
} jx_io_writer;

/* Creates the temporary file; NULL, or the error (also in w->err). */
jx_t jx_io_open(jx_io_writer *w, const char *op, const char *path);
/* Appends n bytes; after a failure it does nothing (check w->err once). */
void jx_io_write(jx_io_writer *w, const void *p, size_t n);
/* fsync, rename over path, fsync the directory: NULL or the error. On
 * any earlier failure it removes the temporary file and returns w->err. */
jx_t jx_io_commit(jx_io_writer *w);
/* Removes the temporary file (the target is untouched); returns e. */
jx_t jx_io_abort(jx_io_writer *w, jx_t e);

/* Tests only: the writer fails (as a full disk would) once this many bytes
 * have been written in all; negative (the default) never. */
extern int64_t jx_io_test_fail_after;
/* Tests only: the zip writer uses zip64 records for every member and the
 * end of the archive, as it must for members or offsets past 4 GiB. */
extern bool jx_io_test_force_zip64;

/* little-endian stores/loads */
static inline void jx_put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static inline void jx_put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void jx_put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t jx_get16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static inline uint32_t jx_get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t jx_get64(const uint8_t *p) {
  return (uint64_t)jx_get32(p) | (uint64_t)jx_get32(p + 4) << 32;
}

/* ------------------------------------------------------------ reading */
typedef struct {
  const uint8_t *p; /* the whole file (NULL when empty) */
  size_t n;
} jx_io_map;
/* Maps path read-only: NULL or the error. */
jx_t jx_io_map_open(jx_io_map *m, const char *op, const char *path);
void jx_io_map_close(jx_io_map *m);

/* ------------------------------------------------------------ arrays */
/* NULL when x is a concrete array that can be saved; else the error (x
 * itself when x is an error value). `what` names x in the message. */
jx_t jx_io_check_array(const char *op, const char *path, const char *what, jx_t x);
size_t jx_io_nbytes(jx_t x);

/* CRC-32 (zip's), continuing from crc (start from 0) */
uint32_t jx_io_crc32(uint32_t crc, const void *p, size_t n);

/* A list of names in one block, as the loaders hand it back: n pointers
 * followed by the strings, freed with one free(). */
char **jx_io_names_pack(int n, const char *const *names, const size_t *lens);

/* .npy: the header for x (magic, version, dict, padding, newline) into
 * buf; returns its length (a multiple of 64). */
size_t jx_npy_header(jx_t x, char *buf, size_t cap);
/* NULL, or the error for a dtype .npy cannot hold (bf16) */
jx_t jx_npy_check_dtype(const char *op, const char *path, jx_t x);
/* Parses one .npy held in p[0..n): an array or an error naming op, path
 * and (for an archive member) member. */
jx_t jx_npy_parse(const char *op, const char *path, const char *member, const uint8_t *p, size_t n);

/* Validates the names of a save: NULL or the error. */
jx_t jx_io_check_names(const char *op, const char *path, int n, const char *const *names, const jx_t *arrays);

/* ------------------------------------------------------------ zip */
/* A zip archive as .npz uses it: members stored (method 0) or deflated
 * (8, with zlib), zip64 records where sizes or offsets pass 4 GiB. */
typedef struct {
  char *name;
  uint32_t crc;
  uint64_t csize, usize, off;
  uint16_t method;
} jx_zip_wentry;
typedef struct {
  jx_io_writer w;
  jx_zip_wentry *ents;
  int n, cap;
} jx_zip_writer;
jx_t jx_zip_begin(jx_zip_writer *z, const char *op, const char *path);
/* One member made of nparts byte ranges, deflated when asked (an error
 * when zlib was not built in). */
jx_t jx_zip_add(jx_zip_writer *z, const char *name, int nparts, const void *const *parts, const size_t *sizes,
                bool deflate);
/* The central directory and end records, then the atomic commit; frees z.
 * With e (an earlier failure) it only cleans up and returns e. */
jx_t jx_zip_end(jx_zip_writer *z, jx_t e);

typedef struct {
  const char *name; /* into the archive, not NUL-terminated */
  size_t nlen;
  uint16_t method, flags;
  uint32_t crc;
  uint64_t csize, usize, loff;
} jx_zip_entry;
typedef struct {
  const char *op, *path;
  const uint8_t *p;
  size_t n;
  jx_zip_entry *ents;
  int count;
} jx_zip;
/* Parses the central directory of the archive p[0..n): NULL or the error. */
jx_t jx_zip_open(jx_zip *z, const char *op, const char *path, const uint8_t *p, size_t n);
/* Member i's bytes, CRC-checked: *data points into the archive (stored) or
 * at *owned (inflated; jx_free it). NULL or the error. */
jx_t jx_zip_read(const jx_zip *z, int i, const uint8_t **data, uint8_t **owned);
void jx_zip_close(jx_zip *z);
/* name made printable for messages (at most cap-1 bytes) */
void jx_io_shown(const char *s, size_t n, char *out, size_t cap);

/* The formats with the operation's name for messages (jx_save and jx_load
 * go through them): NULL or the error on writing; a tuple of the arrays in
 * file order (names in *names, optional: jx_io_names_pack) on reading. */
jx_t jx_npz_write(const char *op, const char *path, int n, const char *const *names, const jx_t *arrays,
                  bool deflate);
jx_t jx_npz_read(const char *op, const char *path, char ***names);
jx_t jx_safetensors_write(const char *op, const char *path, int n, const char *const *names,
                          const jx_t *arrays);
jx_t jx_safetensors_read(const char *op, const char *path, char ***names);
/* Test hook: nonzero makes the safetensors loader use its own JSON reader
 * even in a build with cJSON (the tests and the fuzzer check both). */
void jx_safetensors_force_reader(int own);

#endif
