/* libFuzzer target: bytes -> a file, loaded by every jx loader, or a
 * DLPack tensor handed to jx_from_dlpack.
 *
 * The first byte picks the loader (jx_npy_load, jx_npz_load,
 * jx_safetensors_load, jx_load of a small tree from .npz or
 * .safetensors); the rest is the file. A first byte >= 0xF0 instead makes
 * the rest a DLManagedTensor (fuzz_dlpack below: device, ndim, dtype code,
 * bits and lanes, shape, strides, byte_offset, NULL pointers, all hostile
 * at times). A .safetensors file is loaded by
 * both header readers (cJSON's and jx's own). The target checks that nothing
 * crashes or leaks (ASan/UBSan/LSan), that a failure is an error value
 * with a message, and that what loads is an array or a tuple of arrays
 * whose sizes match their shapes and dtypes (the bytes can be read back).
 * Build and run: fuzz/run.sh loaders SECONDS (seeds in fuzz/corpus_loaders). */
#include <jx.h>

#include "../src/io/dlpack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[5][64];
/* test hook (src/io/io.h): nonzero: .safetensors headers through jx's own
 * JSON reader even in a build with cJSON, so that both are fuzzed */
void jx_safetensors_force_reader(int own);

static void check_array(jx_t x) {
  if (jx_ndim(x) < 0) abort();
  int64_t n = 1;
  for (int i = 0; i < jx_ndim(x); i++) n *= jx_shape(x)[i];
  if (n != jx_size(x)) abort();
  size_t bytes = (size_t)n * jx_dtype_size(jx_dtype_of(x));
  void *buf = malloc(bytes ? bytes : 1);
  if (jx_read(x, jx_dtype_of(x), buf, bytes)) abort();
  free(buf);
}

static void check_result(jx_t r) {
  if (!jx_ok(r)) {
    const char *m = jx_error(r);
    if (!m || !*m) abort();
    return;
  }
  if (!jx_is_tree(r)) return check_array(r);
  for (int i = 0; i < jx_len(r); i++) check_result(jx_at(r, i));
}

static jx_t like_tree(void) {
  return JX_TUPLE(JX_LIST(jx_zeros(JX_F32, JX_SHAPE(2, 3)), jx_zeros(JX_I32, JX_SHAPE(3))),
                  jx_zeros(JX_BOOL, JX_SHAPE(0)));
}

/* ------------------------------------------------------------ DLPack */
typedef struct {
  const uint8_t *p;
  size_t n;
} rd;
static uint64_t take(rd *r, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v = v << 8 | (r->n ? (r->n--, *r->p++) : 0);
  return v;
}

typedef struct {
  DLManagedTensor t; /* first: the deleter gets this block back */
  int64_t shape[16], strides[16];
  char *buf;
} owned;
static int deleted;
/* counts only: the harness frees the block after the pool is popped, so
 * that it can still compare values when jx copied and let go at once */
static void dl_deleter(DLManagedTensor *self) {
  (void)self;
  deleted++;
}

/* the bytes the tensor addresses from data + byte_offset, as lo..hi
 * (relative, hi exclusive), and its element count; false when that does
 * not fit an int64 (or a dimension is negative) */
static bool extent(const DLTensor *t, int64_t es, int64_t *lo, int64_t *hi, int64_t *size) {
  int64_t n = 1, a = 0, b = 0, st = 1;
  for (int d = 0; d < t->ndim; d++)
    if (t->shape[d] < 0) return false;
  for (int d = 0; d < t->ndim; d++)
    if (t->shape[d] == 0) return *size = 0, true; /* empty: nothing is addressed */
  for (int d = t->ndim - 1; d >= 0; d--) {
    int64_t s = t->shape[d], k = t->strides ? t->strides[d] : st, off;
    if (__builtin_mul_overflow(n, s, &n) || __builtin_mul_overflow(k, es, &k) ||
        __builtin_mul_overflow(s - 1, k, &off) ||
        (off < 0 ? __builtin_add_overflow(a, off, &a) : __builtin_add_overflow(b, off, &b)))
      return false;
    if (!t->strides && __builtin_mul_overflow(st, s, &st)) return false;
  }
  /* checked before the end is formed: b + es itself may overflow */
  if (__builtin_mul_overflow(n, es, &st) || __builtin_add_overflow(b, es, &st)) return false;
  *lo = a, *hi = st, *size = n;
  return true;
}

/* the array's elements against the buffer read through the tensor's strides */
static void check_values(jx_t x, const DLTensor *t, const char *base, int64_t es) {
  int64_t n = jx_size(x), idx[16] = {0};
  if ((int64_t)jx_dtype_size(jx_dtype_of(x)) != es || jx_dtype_of(x) == JX_BOOL) return;
  char *got = malloc((size_t)(n * es + 1));
  if (jx_read(x, jx_dtype_of(x), got, (size_t)(n * es))) abort();
  for (int64_t i = 0; i < n; i++) {
    int64_t off = 0, st = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
      off += idx[d] * (t->strides ? t->strides[d] : st) * es;
      st *= t->shape[d];
    }
    if (memcmp(got + i * es, base + off, (size_t)es)) abort();
    for (int d = t->ndim - 1; d >= 0 && ++idx[d] == t->shape[d]; d--) idx[d] = 0;
  }
  free(got);
}

static void fuzz_dlpack(const uint8_t *data, size_t size) {
  rd r = {data, size};
  owned *o = calloc(1, sizeof *o);
  DLTensor *t = &o->t.dl_tensor;
  unsigned f = (unsigned)take(&r, 2);
  t->device.device_type = (f & 7) ? kDLCPU : (DLDeviceType)take(&r, 1);
  t->device.device_id = (int32_t)(int8_t)take(&r, 1);
  t->ndim = f & 8 ? (int32_t)take(&r, 4) : (int32_t)(take(&r, 1) % 6);
  static const uint8_t bits[] = {8, 32, 64, 32, 16, 1, 0, 128};
  t->dtype.code = (uint8_t)(f & 16 ? take(&r, 1) : take(&r, 1) % 7);
  t->dtype.bits = f & 32 ? (uint8_t)take(&r, 1) : bits[take(&r, 1) % 8];
  t->dtype.lanes = f & 64 ? (uint16_t)take(&r, 2) : 1;
  int nd = t->ndim < 0 ? 0 : t->ndim > 16 ? 16 : t->ndim; /* what the harness provides */
  for (int d = 0; d < nd; d++) o->shape[d] = f & 128 ? (int64_t)take(&r, 8) : (int64_t)(take(&r, 1) % 5);
  for (int d = 0; d < nd; d++) o->strides[d] = f & 256 ? (int64_t)take(&r, 8) : (int8_t)take(&r, 1);
  t->shape = f & 512 ? NULL : o->shape;
  t->strides = f & 1024 ? o->strides : NULL;
  t->byte_offset = f & 2048 ? take(&r, 8) : take(&r, 1) % 16;
  o->t.deleter = dl_deleter;
  /* the memory it addresses, when the description is valid and small */
  int64_t es = (int64_t)((t->dtype.bits + 7) / 8) * (int64_t)t->dtype.lanes, lo = 0, hi = 0, n = 0;
  bool ok_desc =
      t->ndim >= 0 && t->ndim <= 16 && (t->shape || t->ndim == 0) && extent(t, es ? es : 1, &lo, &hi, &n);
  bool null_data = f & 4096, must_fail = !ok_desc || (n > 0 && null_data);
  if (ok_desc && n > 0 && !null_data) {
    int64_t span;
    if (__builtin_sub_overflow(hi, lo, &span) || span > (1 << 20) || t->byte_offset > (1 << 20) ||
        n > (1 << 22)) {
      /* valid but too large to back (or, with zero strides, to copy under ASan's allocator): skipped */
      free(o);
      return;
    }
    size_t bytes = (size_t)(hi - lo) + t->byte_offset;
    o->buf = malloc(bytes);
    for (size_t i = 0; i < bytes; i++) o->buf[i] = (char)(i * 131 + 7);
    t->data = o->buf - lo; /* so that data + byte_offset + lo is buf */
  } else if (!null_data) {
    o->buf = malloc(16), t->data = o->buf; /* a small buffer the tensor may claim is larger */
    must_fail = must_fail || n > 0;
  }
  if (getenv("FUZZ_VERBOSE")) {
    fprintf(stderr,
            "dlpack: device %d ndim %d dtype (%d,%d,%d) offset %llu data %s, must fail %d, shape/strides:",
            (int)t->device.device_type, t->ndim, t->dtype.code, t->dtype.bits, t->dtype.lanes,
            (unsigned long long)t->byte_offset, t->data ? "set" : "NULL", must_fail);
    for (int d = 0; d < nd; d++)
      fprintf(stderr, " %lld/%lld", (long long)o->shape[d], t->strides ? (long long)t->strides[d] : 0LL);
    fprintf(stderr, "\n");
  }
  deleted = 0;
  jx_pool_push();
  jx_t x = jx_from_dlpack(&o->t);
  check_result(x);
  if (jx_ok(x) && must_fail) abort(); /* accepted an impossible or unbacked tensor */
  if (jx_ok(x) && n > 0) check_values(x, t, (const char *)t->data + t->byte_offset, es);
  jx_pool_pop();
  if (deleted != 1) abort(); /* jx takes the tensor over: its deleter runs once */
  free(o->buf);
  free(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size >= 1 && data[0] >= 0xF0) {
    fuzz_dlpack(data + 1, size - 1);
    return 0;
  }
  if (!path[0][0]) {
    const char *sfx[5] = {"npy", "npz", "safetensors", "npz", "safetensors"};
    for (int i = 0; i < 5; i++)
      snprintf(path[i], sizeof path[i], "/tmp/jx-fuzz-loaders-%d.%d.%s", (int)getpid(), i, sfx[i]);
  }
  if (size < 1) return 0;
  int which = data[0] % 5;
  FILE *f = fopen(path[which], "wb");
  if (!f) return 0;
  if (size > 1) fwrite(data + 1, 1, size - 1, f);
  fclose(f);
  jx_pool_push();
  char **names = NULL;
  jx_t r;
  switch (which) {
    case 0: r = jx_npy_load(path[0]); break;
    case 1: r = jx_npz_load(path[1], &names); break;
    case 2: r = jx_safetensors_load(path[2], &names); break;
    default: {
      r = jx_load(path[which], like_tree());
    }
  }
  check_result(r);
  if (jx_ok(r) && (which == 1 || which == 2)) { /* one name per array, each a string */
    if (!names) abort();
    for (int i = 0; i < jx_len(r); i++)
      if (!names[i] || strlen(names[i]) > size) abort();
  }
  free(names);
  if (which == 2 || which == 4) { /* the own JSON reader too, when cJSON is the default */
    jx_safetensors_force_reader(1);
    check_result(which == 2 ? jx_safetensors_load(path[2], NULL) : jx_load(path[4], like_tree()));
    jx_safetensors_force_reader(0);
  }
  jx_pool_pop();
  unlink(path[which]);
  return 0;
}
