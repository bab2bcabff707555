/* Zero-copy interop: arrays over the caller's memory (jx_from_buffer),
 * the data pointer of a concrete array, and DLPack export and import.
 *
 * Alignment. jx's own buffers start on 64 bytes, but no kernel relies on
 * it: the eager kernels, GEMM (packing copies; streamed stores align their
 * own head), the layout copies and the generated C code read through
 * plain element pointers, and eager scan already hands the kernels slices
 * at any element offset. tests/test_interop.c runs eager and jitted ops
 * on arrays wrapped at every element offset from a 64-byte boundary and
 * checks them against copies (UBSan checks the accesses in the sanitizer
 * build). What the C code does rely on is the element type's own
 * alignment, so a pointer that is not a multiple of the element size is
 * copied. */
#include "io/dlpack.h"
#include "io/io.h"

#include <stdio.h>
#include <stdlib.h>

typedef void (*deleter_fn)(void *, void *);

/* The error e after handing ptr back to its deleter (ownership passed to
 * jx on the call, so every failure path releases it once). */
static jx_t fail(jx_t e, deleter_fn del, void *ptr, void *ctx) {
  if (del) del(ptr, ctx);
  return e;
}

/* whether `strides` (bytes) are those of a row-major contiguous array; a
 * dimension of extent 1 may have any stride (NumPy's rule) */
static bool is_contiguous(int ndim, const int64_t *shape, const int64_t *strides, size_t es) {
  if (!strides) return true;
  int64_t want = (int64_t)es;
  for (int d = ndim - 1; d >= 0; d--) {
    if (shape[d] != 1 && strides[d] != want) return false;
    want *= shape[d];
  }
  return true;
}

/* bool memory holds only 0 and 1 (what jx's kernels assume) */
static bool bools_clean(const uint8_t *p, int64_t n) {
  uint8_t bad = 0;
  for (int64_t i = 0; i < n; i++) bad |= p[i] & 0xfe;
  return !bad;
}

/* whether the elements strides (bytes) reach from ptr lie within int64
 * offsets and the address space: every (shape - 1) * stride summed
 * without overflow (a hostile stride would otherwise make strided_copy
 * read wild memory) */
static bool span_ok(int ndim, const int64_t *shape, const int64_t *strides, size_t es, const void *ptr) {
  int64_t lo = 0, hi = (int64_t)es, t;
  for (int d = 0; d < ndim; d++) {
    if (__builtin_mul_overflow(strides[d], shape[d] - 1, &t)) return false;
    if (t < 0 ? __builtin_add_overflow(lo, t, &lo) : __builtin_add_overflow(hi, t, &hi)) return false;
  }
  uintptr_t p = (uintptr_t)ptr;
  return (uint64_t)0 - (uint64_t)lo <= p && (uint64_t)hi <= UINTPTR_MAX - p;
}

/* y (fresh, row-major) from the strided source at p */
static void strided_copy(jx_t y, const char *p, const int64_t *strides) {
  const jx_aval *a = jx_aval_of(y);
  size_t es = jx_dtype_size(a->dtype);
  int64_t n = jx_aval_size(a), idx[JX_MAX_RANK] = {0};
  char *dst = jx_data(y);
  for (int64_t i = 0; i < n; i++) {
    memcpy(dst + (size_t)i * es, p, es);
    if (a->dtype == JX_BOOL) dst[i] = dst[i] != 0;
    for (int d = a->ndim - 1; d >= 0; d--) { /* next index, odometer style; p never */
      if (++idx[d] < a->shape[d]) {          /* leaves the span span_ok checked */
        p += strides[d];
        break;
      }
      p -= strides[d] * (a->shape[d] - 1);
      idx[d] = 0;
    }
  }
}

static jx_t wrap(const jx_aval *a, void *ptr, size_t nbytes, deleter_fn del, void *ctx) {
  jx_buffer *b = jx_buffer_wrap(ptr, nbytes, del, ctx);
  jx_t v = b ? jx_value_new(JX_VK_ARRAY) : NULL;
  if (!v) {
    if (b) jx_free(b); /* not jx_buffer_release: that would call the deleter too */
    return fail(jx_error_new("from_buffer: out of memory"), del, ptr, ctx);
  }
  v->aval = *a;
  v->u.arr.buf = b;
  return v;
}

jx_t jx_from_buffer(jx_dtype dt, int ndim, const int64_t *shape, const int64_t *strides, void *ptr,
                    deleter_fn del, void *ctx) {
  const char *op = "from_buffer";
  if ((unsigned)dt >= JX_DTYPE_COUNT)
    return fail(jx_error_new("%s: invalid dtype %d", op, (int)dt), del, ptr, ctx);
  char err[256];
  if (jx_shape_check(ndim, shape, dt, err, sizeof err))
    return fail(jx_error_new("%s: %s", op, err), del, ptr, ctx);
  jx_aval a = {.dtype = dt, .ndim = (int8_t)ndim};
  for (int d = 0; d < ndim; d++) a.shape[d] = shape[d];
  int64_t n = jx_aval_size(&a);
  size_t es = jx_dtype_size(dt), nbytes = (size_t)n * es;
  if (n > 0 && !ptr) {
    jx_shape_str(ndim, shape, err, sizeof err);
    return fail(jx_error_new("%s: ptr is NULL for %s%s (%zu bytes)", op, jx_dtype_name(dt), err, nbytes), del,
                ptr, ctx);
  }
  if (n > 0 && strides && !span_ok(ndim, shape, strides, es, ptr)) {
    jx_shape_str(ndim, shape, err, sizeof err);
    return fail(jx_error_new("%s: the strides of %s%s address bytes beyond the int64 or address range", op,
                             jx_dtype_name(dt), err),
                del, ptr, ctx);
  }
  bool zero_copy = n > 0 && is_contiguous(ndim, shape, strides, es) && (uintptr_t)ptr % es == 0 &&
                   (dt != JX_BOOL || bools_clean(ptr, n));
  if (zero_copy) return wrap(&a, ptr, nbytes, del, ctx);
  int64_t st[JX_MAX_RANK];
  if (!strides) { /* contiguous but misaligned or bools to normalise */
    jx_strides(ndim, shape, st);
    for (int d = 0; d < ndim; d++) st[d] *= (int64_t)es;
    strides = st;
  }
  jx_t y = jx_array_new(&a);
  if (jx_ok(y) && n > 0) strided_copy(y, ptr, strides);
  return fail(y, del, ptr, ctx);
}

const void *jx_data_ptr(jx_t x) {
  if (jx_is_tracer(x)) jx_trace_read_error("data_ptr", x);
  return jx_is_array(x) ? jx_data(x) : NULL;
}

/* ------------------------------------------------------------ DLPack */
/* jx dtype <-> DLPack (code, bits), in jx_dtype order */
static const DLDataType dl_types[] = {
    [JX_BOOL] = {kDLBool, 8, 1},    [JX_I32] = {kDLInt, 32, 1},   [JX_I64] = {kDLInt, 64, 1},
    [JX_U32] = {kDLUInt, 32, 1},    [JX_F32] = {kDLFloat, 32, 1}, [JX_F64] = {kDLFloat, 64, 1},
    [JX_BF16] = {kDLBfloat, 16, 1}, [JX_F16] = {kDLFloat, 16, 1}, [JX_I8] = {kDLInt, 8, 1},
    [JX_U8] = {kDLUInt, 8, 1},      [JX_I16] = {kDLInt, 16, 1},   [JX_U16] = {kDLUInt, 16, 1},
    [JX_U64] = {kDLUInt, 64, 1},
};
_Static_assert(sizeof dl_types / sizeof *dl_types == JX_DTYPE_COUNT, "a dtype without its DLPack type");

/* an exported tensor: the struct, then its shape and strides, in one block;
 * manager_ctx is the shared buffer (one reference) */
static void export_deleter(DLManagedTensor *t) {
  jx_buffer_release(t->manager_ctx);
  jx_free(t);
}

DLManagedTensor *jx_to_dlpack(jx_t x) {
  const char *op = "to_dlpack";
  if (!jx_is_array(x)) {
    if (jx_is_tracer(x))
      jx_trace_read_error(op, x);
    else
      jx_error_new("%s: %s is not a concrete array", op,
                   !x               ? "NULL"
                   : jx_is_error(x) ? "an error value"
                                    : "a tree");
    return NULL;
  }
  const jx_aval *a = jx_aval_of(x);
  DLManagedTensor *t = jx_malloc(sizeof *t + 2 * sizeof(int64_t) * (size_t)(a->ndim ? a->ndim : 1));
  if (!t) {
    jx_error_new("%s: out of memory", op);
    return NULL;
  }
  int64_t *shape = (int64_t *)(t + 1), *strides = shape + (a->ndim ? a->ndim : 1);
  memcpy(shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
  jx_strides(a->ndim, a->shape, strides); /* explicit: older consumers read them unconditionally */
  jx_buffer *b = x->u.arr.buf;
  atomic_fetch_add(&b->refs, 1);
  *t = (DLManagedTensor){
      .dl_tensor = {.data = b->data,
                    .device = {kDLCPU, 0},
                    .ndim = a->ndim,
                    .dtype = dl_types[a->dtype],
                    .shape = shape,
                    .strides = strides,
                    .byte_offset = 0},
      .manager_ctx = b,
      .deleter = export_deleter,
  };
  return t;
}

static void import_deleter(void *ptr, void *ctx) {
  (void)ptr;
  DLManagedTensor *t = ctx;
  if (t->deleter) t->deleter(t);
}

/* the jx dtype of a DLPack type, or -1 */
static int dl_dtype(DLDataType d) {
  for (int i = 0; i < JX_DTYPE_COUNT; i++)
    if (dl_types[i].code == d.code && dl_types[i].bits == d.bits && d.lanes == 1) return i;
  return -1;
}

/* the checks before the tensor's fields are trusted: NULL or the error */
static jx_t dl_check(const DLTensor *d, int *dt) {
  const char *op = "from_dlpack";
  if (d->device.device_type != kDLCPU)
    return jx_error_new("%s: the tensor is on device type %d (id %d); jx reads only CPU memory (kDLCPU)", op,
                        (int)d->device.device_type, (int)d->device.device_id);
  if ((*dt = dl_dtype(d->dtype)) < 0)
    return jx_error_new("%s: unsupported dtype (code %d, %d bits, %d lanes): jx takes bool, int32, int64, "
                        "uint32, float32 and float64",
                        op, d->dtype.code, d->dtype.bits, d->dtype.lanes);
  if (d->ndim < 0 || d->ndim > JX_MAX_RANK)
    return jx_error_new("%s: rank %d is outside 0..%d", op, (int)d->ndim, JX_MAX_RANK);
  if (d->ndim > 0 && !d->shape) return jx_error_new("%s: shape is NULL for rank %d", op, (int)d->ndim);
  char err[256];
  if (jx_shape_check(d->ndim, d->shape, (jx_dtype)*dt, err, sizeof err))
    return jx_error_new("%s: %s", op, err);
  int64_t es = (int64_t)jx_dtype_size((jx_dtype)*dt);
  for (int i = 0; d->strides && i < d->ndim; i++)
    if (d->strides[i] > INT64_MAX / es || d->strides[i] < -(INT64_MAX / es))
      return jx_error_new("%s: stride %lld of dimension %d overflows a byte offset", op,
                          (long long)d->strides[i], i);
  if (d->byte_offset > (uint64_t)INTPTR_MAX || (d->data && d->byte_offset > UINTPTR_MAX - (uintptr_t)d->data))
    return jx_error_new("%s: byte_offset is out of range", op);
  return NULL;
}

jx_t jx_from_dlpack(DLManagedTensor *t) {
  if (!t) return jx_error_new("from_dlpack: the tensor is NULL");
  const DLTensor *d = &t->dl_tensor;
  int dt = -1;
  jx_t e = dl_check(d, &dt);
  if (e) return fail(e, import_deleter, NULL, t);
  int64_t st[JX_MAX_RANK], es = (int64_t)jx_dtype_size((jx_dtype)dt);
  for (int i = 0; d->strides && i < d->ndim; i++) st[i] = d->strides[i] * es;
  char *p = d->data ? (char *)d->data + d->byte_offset : NULL;
  return jx_from_buffer((jx_dtype)dt, d->ndim, d->shape, d->strides ? st : NULL, p, import_deleter, t);
}
