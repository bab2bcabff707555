/* .npz: numpy.savez's format, a zip archive of .npy members named
 * "<name>.npy" (numpy.load(path)[name] gives the array back); stored, or
 * deflated as numpy.savez_compressed writes them. */
#include "io/io.h"

#include <stdio.h>
#include <stdlib.h>

jx_t jx_npz_write(const char *op, const char *path, int n, const char *const *names, const jx_t *arrays,
                  bool deflate) {
  jx_t e = jx_io_check_names(op, path, n, names, arrays);
  for (int i = 0; i < n && !e; i++) e = jx_npy_check_dtype(op, path, arrays[i]);
  if (e) return e;
  jx_zip_writer z;
  if ((e = jx_zip_begin(&z, op, path))) return e;
  for (int i = 0; i < n && !e; i++) {
    char hdr[512], *member = jx_asprintf("%s.npy", names[i]);
    if (!member) {
      e = jx_error_new("%s: %s: out of memory", op, path);
      break;
    }
    size_t sizes[2] = {jx_npy_header(arrays[i], hdr, sizeof hdr), jx_io_nbytes(arrays[i])};
    const void *parts[2] = {hdr, jx_data(arrays[i])};
    e = jx_zip_add(&z, member, 2, parts, sizes, deflate);
    jx_free(member);
  }
  return jx_zip_end(&z, e);
}

jx_t jx_npz_save(const char *path, int n, const char *const *names, const jx_t *arrays) {
  return jx_npz_write("jx_npz_save", path, n, names, arrays, false);
}
jx_t jx_npz_save_compressed(const char *path, int n, const char *const *names, const jx_t *arrays) {
  return jx_npz_write("jx_npz_save_compressed", path, n, names, arrays, true);
}

static int cmp_name(const void *a, const void *b) {
  const jx_zip_entry *x = *(const jx_zip_entry *const *)a, *y = *(const jx_zip_entry *const *)b;
  int c = memcmp(x->name, y->name, x->nlen < y->nlen ? x->nlen : y->nlen);
  return c ? c : (x->nlen > y->nlen) - (x->nlen < y->nlen);
}

/* every member a .npy, no name twice */
static jx_t check_members(const jx_zip *z) {
  char shown[128];
  for (int i = 0; i < z->count; i++) {
    const jx_zip_entry *e = &z->ents[i];
    jx_io_shown(e->name, e->nlen, shown, sizeof shown);
    if (e->nlen < 4 || memcmp(e->name + e->nlen - 4, ".npy", 4))
      return jx_error_new("%s: %s: member %s is not a .npy file", z->op, z->path, shown);
    if (memchr(e->name, 0, e->nlen))
      return jx_error_new("%s: %s: member %s has a NUL in its name", z->op, z->path, shown);
  }
  const jx_zip_entry **sorted = jx_malloc(sizeof(void *) * (size_t)(z->count ? z->count : 1));
  if (!sorted) return jx_error_new("%s: %s: out of memory", z->op, z->path);
  for (int i = 0; i < z->count; i++) sorted[i] = &z->ents[i];
  qsort(sorted, (size_t)z->count, sizeof(void *), cmp_name);
  jx_t err = NULL;
  for (int i = 1; i < z->count && !err; i++)
    if (!cmp_name(&sorted[i - 1], &sorted[i])) {
      jx_io_shown(sorted[i]->name, sorted[i]->nlen, shown, sizeof shown);
      err = jx_error_new("%s: %s: member %s appears twice", z->op, z->path, shown);
    }
  jx_free(sorted);
  return err;
}

static jx_t read_members(const jx_zip *z, jx_t *arrays) {
  for (int i = 0; i < z->count; i++) {
    const uint8_t *data;
    uint8_t *owned;
    jx_t e = jx_zip_read(z, i, &data, &owned);
    if (e) return e;
    char shown[128];
    jx_io_shown(z->ents[i].name, z->ents[i].nlen, shown, sizeof shown);
    arrays[i] = jx_npy_parse(z->op, z->path, shown, data, z->ents[i].usize);
    jx_free(owned);
    if (!jx_ok(arrays[i])) return arrays[i];
  }
  return NULL;
}

/* The archive's arrays as a tuple, in archive order; *names (optional)
 * their names without ".npy". */
jx_t jx_npz_read(const char *op, const char *path, char ***names) {
  if (names) *names = NULL;
  jx_io_map m;
  jx_t e = jx_io_map_open(&m, op, path);
  if (e) return e;
  jx_zip z;
  if ((e = jx_zip_open(&z, op, path, m.p, m.n))) return jx_io_map_close(&m), e;
  jx_t *arrays = jx_malloc(sizeof(jx_t) * (size_t)(z.count ? z.count : 1));
  const char **ns = jx_malloc(sizeof(char *) * (size_t)(z.count ? z.count : 1));
  size_t *lens = jx_malloc(sizeof(size_t) * (size_t)(z.count ? z.count : 1));
  jx_t out = !arrays || !ns || !lens ? jx_error_new("%s: %s: out of memory", op, path) : check_members(&z);
  if (!out) out = read_members(&z, arrays);
  if (!out && names) {
    for (int i = 0; i < z.count; i++) ns[i] = z.ents[i].name, lens[i] = z.ents[i].nlen - 4;
    *names = jx_io_names_pack(z.count, ns, lens);
    if (!*names) out = jx_error_new("%s: %s: out of memory", op, path);
  }
  if (!out) out = jx_tuple(z.count, arrays);
  jx_free(arrays), jx_free(ns), jx_free(lens);
  jx_zip_close(&z);
  jx_io_map_close(&m);
  if (!jx_ok(out) && names) jx_free(*names), *names = NULL;
  return out;
}

jx_t jx_npz_load(const char *path, char ***names) { return jx_npz_read("jx_npz_load", path, names); }
