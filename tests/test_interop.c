/* Zero-copy interop: jx_from_buffer (aliasing when the layout allows,
 * copies otherwise, the deleter called exactly once on every path), the
 * kernels on memory that is not 64-byte aligned (the evidence for wrapping
 * it: eager and jitted ops give the same bits as on jx's own copies),
 * jx_data_ptr, DLPack export and import (round trips of every dtype,
 * strides, byte offsets, deleters, hostile tensors), and, when PyTorch is
 * installed, arrays handed to torch and back without a copy
 * (tests/interop_torch.py through ctypes). */
#include "check.h"
#include "io/dlpack.h"

#include <jx.h>
#include <stdint.h>

static int deleted;
static void *deleted_ptr;
static void count_deleter(void *p, void *ctx) {
  deleted++;
  deleted_ptr = p;
  if (ctx) free(ctx); /* the tests that pass ctx hand over a malloc'd block */
}

static double num(jx_t x) { return jx_ok(x) ? jx_item(x) : NAN; }

/* the jx_fn a test makes, freed at its end (outermost first) */
static jx_fn *fns[32];
static int nfns;
static jx_fn *keep(jx_fn *f) { return fns[nfns++] = f; }
static void free_fns(void) {
  while (nfns) jx_fn_free(fns[--nfns]);
}

static bool values_are(jx_t x, int n, const double *want) {
  double got[64];
  if (n > 64 || jx_read(x, JX_F64, got, sizeof(double) * (size_t)n)) return false;
  for (int i = 0; i < n; i++)
    if (got[i] != want[i]) return fprintf(stderr, "  element %d: %g, wanted %g\n", i, got[i], want[i]), false;
  return true;
}

static void test_wrap(void) {
  jx_pool_push();
  float *buf = aligned_alloc(64, 64);
  for (int i = 0; i < 6; i++) buf[i] = (float)i;
  deleted = 0;
  jx_t x = jx_from_buffer(JX_F32, JX_SHAPE(2, 3), NULL, buf, count_deleter, NULL);
  CHECK(jx_ok(x) && jx_data_ptr(x) == buf && deleted == 0);
  CHECK(num(jx_sum(x)) == 15);
  buf[0] = 100; /* documented: the array aliases the memory */
  CHECK(num(jx_sum(x)) == 115);
  jx_retain(x);
  jx_pool_pop();
  CHECK(deleted == 0 && num(jx_sum(x)) == 115); /* the caller's reference holds the memory */
  jx_release(x);
  CHECK(deleted == 1 && deleted_ptr == buf);
  free(buf);

  /* explicit contiguous byte strides, and extent-1 dims with any stride */
  jx_pool_push();
  double d[6] = {1, 2, 3, 4, 5, 6};
  jx_t c = jx_from_buffer(JX_F64, JX_SHAPE(1, 2, 3), (const int64_t[]){999, 24, 8}, d, NULL, NULL);
  CHECK(jx_ok(c) && jx_data_ptr(c) == d);
  jx_pool_pop();
}

static void test_copies(void) {
  jx_pool_push();
  double d[6] = {1, 2, 3, 4, 5, 6}; /* a 2x3 row-major matrix */
  /* its transpose, 3x2, through strides: copied, deleter called at once */
  deleted = 0;
  jx_t t = jx_from_buffer(JX_F64, JX_SHAPE(3, 2), (const int64_t[]){8, 24}, d, count_deleter, NULL);
  CHECK(jx_ok(t) && jx_data_ptr(t) != d && deleted == 1);
  CHECK(values_are(t, 6, (double[]){1, 4, 2, 5, 3, 6}));
  d[0] = 50; /* a copy does not see later writes */
  CHECK(values_are(t, 6, (double[]){1, 4, 2, 5, 3, 6}));
  /* negative strides walk backwards; zero strides broadcast */
  jx_t r = jx_from_buffer(JX_F64, JX_SHAPE(2, 3), (const int64_t[]){-24, -8}, d + 5, NULL, NULL);
  CHECK(values_are(r, 6, (double[]){6, 5, 4, 3, 2, 50}));
  jx_t b = jx_from_buffer(JX_F64, JX_SHAPE(2, 3), (const int64_t[]){0, 8}, d, NULL, NULL);
  CHECK(values_are(b, 6, (double[]){50, 2, 3, 50, 2, 3}));
  /* misaligned for the element type: copied */
  _Alignas(64) unsigned char raw[64] = {0};
  float one = 1.5f;
  memcpy(raw + 1, &one, 4);
  deleted = 0;
  jx_t m = jx_from_buffer(JX_F32, JX_SHAPE(1), NULL, raw + 1, count_deleter, NULL);
  CHECK(jx_ok(m) && jx_data_ptr(m) != raw + 1 && num(m) == 1.5 && deleted == 1);
  /* bools: clean 0/1 memory is wrapped, anything else normalised in a copy */
  uint8_t clean[4] = {0, 1, 1, 0}, dirty[4] = {0, 2, 255, 1};
  jx_t bc = jx_from_buffer(JX_BOOL, JX_SHAPE(4), NULL, clean, NULL, NULL);
  jx_t bd = jx_from_buffer(JX_BOOL, JX_SHAPE(4), NULL, dirty, NULL, NULL);
  CHECK(jx_data_ptr(bc) == clean && jx_data_ptr(bd) != dirty);
  CHECK(values_are(bd, 4, (double[]){0, 1, 1, 1}) && num(jx_sum(jx_astype(bd, JX_I32))) == 3);
  /* empty: nothing to alias, ptr may be NULL */
  deleted = 0;
  jx_t e = jx_from_buffer(JX_F32, JX_SHAPE(0, 3), NULL, NULL, count_deleter, NULL);
  CHECK(jx_ok(e) && jx_size(e) == 0 && deleted == 1);
  jx_pool_pop();
}

/* a dimension of extent 1 may have any stride, even one that would leave
 * the address range if it were ever stepped (fuzz_loaders: UBSan saw the
 * copy step past its last element) */
static void test_extent_one(void) {
  jx_pool_push();
  float f[4] = {5, 0, 6, 0};
  jx_t x = jx_from_buffer(JX_F32, JX_SHAPE(1, 2), (const int64_t[]){-(INT64_MAX / 2), 8}, f, NULL, NULL);
  CHECKF(values_are(x, 2, (double[]){5, 6}), "%s", jx_error(x));
  jx_pool_pop();
}

static void test_errors(void) {
  jx_pool_push();
  float f[4] = {0};
  deleted = 0;
  struct {
    jx_t r;
    const char *want;
  } cases[] = {
      {jx_from_buffer((jx_dtype)99, JX_SHAPE(4), NULL, f, count_deleter, malloc(8)), "invalid dtype"},
      {jx_from_buffer(JX_F32, JX_SHAPE(-1), NULL, f, count_deleter, malloc(8)), "negative"},
      {jx_from_buffer(JX_F32, 9, (const int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, NULL, f, count_deleter,
                      malloc(8)),
       "rank"},
      {jx_from_buffer(JX_F32, JX_SHAPE(4), NULL, NULL, count_deleter, malloc(8)), "ptr is NULL"},
      {jx_from_buffer(JX_F32, 2, NULL, NULL, f, count_deleter, malloc(8)), "shape"},
      {jx_from_buffer(JX_F32, JX_SHAPE(INT64_MAX / 2, 4), NULL, f, count_deleter, malloc(8)), "from_buffer"},
      {jx_from_buffer(JX_F32, JX_SHAPE(3, 2), (const int64_t[]){INT64_MAX / 2, 4}, f, count_deleter,
                      malloc(8)),
       "address"},
      {jx_from_buffer(JX_F32, JX_SHAPE(2), (const int64_t[]){-64}, (void *)(uintptr_t)16, count_deleter,
                      malloc(8)),
       "address"}, /* below address 0 */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    EXPECT_ERROR(cases[i].r, "from_buffer", cases[i].want);
  CHECK(deleted == (int)(sizeof cases / sizeof *cases)); /* once each; ctx freed by it (LSan) */
  jx_pool_pop();
}

/* ------------------------------------------------- alignment evidence */
static jx_t ops_of(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0], m = a[1], n = a[2];
  jx_t ew = jx_add(jx_mul(jx_exp(jx_neg(jx_square(x))), x), jx_scalar(0.5));
  jx_t red = jx_sum_axes(m, 1, (int[]){1}, false);
  jx_t mm = jx_matmul(m, n);
  jx_t lay = jx_reshape(jx_transpose(m, NULL), JX_SHAPE(-1));
  jx_t sl = jx_slice(x, (int64_t[]){3}, (int64_t[]){JX_END}, (int64_t[]){2});
  return JX_TUPLE(ew, red, mm, lay, sl, jx_sum(x), jx_max(m));
}

static bool same_bits(jx_t a, jx_t b) {
  jx_t la = jx_tree_leaves(a), lb = jx_tree_leaves(b);
  if (!jx_ok(la) || !jx_ok(lb) || jx_len(la) != jx_len(lb)) return false;
  for (int i = 0; i < jx_len(la); i++) {
    jx_t x = jx_at(la, i), y = jx_at(lb, i);
    size_t nb = (size_t)jx_size(x) * jx_dtype_size(jx_dtype_of(x));
    if (jx_size(x) != jx_size(y) || memcmp(jx_data_ptr(x), jx_data_ptr(y), nb)) return false;
  }
  return true;
}

/* fill n elements of dt at p with a pattern */
static void fill(jx_dtype dt, void *p, int64_t n, int salt) {
  for (int64_t i = 0; i < n; i++) {
    double v = (double)((i * 37 + salt) % 101) / 50.0 - 1.0;
    if (dt == JX_F32)
      ((float *)p)[i] = (float)v;
    else
      ((double *)p)[i] = v;
  }
}

static void test_alignment(void) {
  enum { N = 1003, R = 67, K = 45, C = 33 };
  jx_fn *f = jx_fn_new(ops_of, 3, NULL), *jf = jx_jit(f);
  jx_dtype dts[2] = {JX_F32, JX_F64};
  for (int k = 0; k < 2; k++) {
    size_t es = jx_dtype_size(dts[k]);
    for (size_t off = 1; off < 64 / es; off++) { /* every element offset from a 64-byte boundary */
      jx_pool_push();
      char *mem[3];
      int64_t counts[3] = {N, R * K, K * C};
      jx_t w[3], c[3];
      for (int i = 0; i < 3; i++) {
        mem[i] =
            aligned_alloc(64, ((size_t)(counts[i] + 16) * es + 63) / 64 * 64); /* a multiple of 64 (C11) */
        void *p = mem[i] + off * es;
        fill(dts[k], p, counts[i], i);
        w[i] = i == 0   ? jx_from_buffer(dts[k], JX_SHAPE(N), NULL, p, NULL, NULL)
               : i == 1 ? jx_from_buffer(dts[k], JX_SHAPE(R, K), NULL, p, NULL, NULL)
                        : jx_from_buffer(dts[k], JX_SHAPE(K, C), NULL, p, NULL, NULL);
        c[i] = jx_add(w[i], jx_zeros(dts[k], 0, NULL)); /* jx's own, aligned buffer */
        CHECK(jx_data_ptr(w[i]) == p && ((uintptr_t)jx_data_ptr(c[i]) & 63) == 0);
      }
      CHECKF(same_bits(jx_call(f, w), jx_call(f, c)), "eager, %s at +%zu elements", jx_dtype_name(dts[k]),
             off);
      CHECKF(same_bits(jx_call(jf, w), jx_call(jf, c)), "jit, %s at +%zu elements", jx_dtype_name(dts[k]),
             off);
      jx_pool_pop();
      for (int i = 0; i < 3; i++) free(mem[i]);
    }
  }
  jx_fn_free(jf);
  jx_fn_free(f);
}

/* ------------------------------------------------------------ data_ptr */
static jx_t reads_ptr(const jx_t *a, void *u) {
  (void)u;
  CHECK(jx_data_ptr(a[0]) == NULL); /* a tracer */
  return jx_mul(a[0], a[0]);
}

static void test_data_ptr(void) {
  jx_pool_push();
  jx_t x = jx_array(JX_F32, JX_SHAPE(2), (float[]){1, 2});
  const float *p = jx_data_ptr(x);
  CHECK(p && p[0] == 1 && p[1] == 2);
  CHECK(jx_data_ptr(NULL) == NULL && jx_data_ptr(JX_TUPLE(x)) == NULL &&
        jx_data_ptr(jx_error_new("e")) == NULL);
  EXPECT_ERROR(jx_call(keep(jx_jit(keep(jx_fn_new(reads_ptr, 1, NULL)))), &x), "data_ptr");
  EXPECT_ERROR(
      jx_call(keep(jx_grad(keep(jx_fn_new(reads_ptr, 1, NULL)), 0)), (jx_t[]){jx_scalar_of(JX_F32, 2)}),
      "data_ptr");
  free_fns(); /* before the pop: the pool owns them too (jx_fn_free takes its reference back) */
  jx_pool_pop();
}

/* --------------------------------------------------------------- DLPack */
static void test_export(void) {
  jx_dtype dts[] = {JX_BOOL, JX_I32, JX_I64, JX_U32, JX_F32, JX_F64};
  uint8_t codes[] = {kDLBool, kDLInt, kDLInt, kDLUInt, kDLFloat, kDLFloat};
  for (int k = 0; k < 6; k++) {
    jx_pool_push();
    jx_t x = jx_astype(jx_arange(JX_F64, 0, 6, 1), dts[k]);
    x = jx_reshape(x, JX_SHAPE(2, 3));
    DLManagedTensor *t = jx_to_dlpack(x);
    CHECK(t && t->deleter && t->dl_tensor.data == jx_data_ptr(x) && t->dl_tensor.byte_offset == 0);
    CHECK(t && t->dl_tensor.device.device_type == kDLCPU && t->dl_tensor.ndim == 2);
    CHECK(t && t->dl_tensor.shape[0] == 2 && t->dl_tensor.shape[1] == 3);
    CHECK(t && t->dl_tensor.strides[0] == 3 && t->dl_tensor.strides[1] == 1);
    CHECK(t && t->dl_tensor.dtype.code == codes[k] && t->dl_tensor.dtype.lanes == 1 &&
          t->dl_tensor.dtype.bits == 8 * jx_dtype_size(dts[k]));
    jx_t want = jx_retain(x);
    jx_pool_pop(); /* the tensor keeps the buffer alive past its array */
    jx_pool_push();
    jx_t back = jx_from_dlpack(t); /* zero-copy round trip */
    CHECK(jx_ok(back) && jx_data_ptr(back) == jx_data_ptr(want) && jx_dtype_of(back) == dts[k]);
    CHECK(num(jx_sum(jx_astype(jx_eq(back, want), JX_I32))) == 6);
    jx_release(want);
    jx_pool_pop(); /* releases back: its deleter frees the tensor (LSan) */
  }
  jx_pool_push();
  CHECK(jx_to_dlpack(NULL) == NULL && jx_to_dlpack(JX_TUPLE(jx_scalar(1))) == NULL);
  CHECK(jx_to_dlpack(jx_error_new("e")) == NULL);
  DLManagedTensor *s = jx_to_dlpack(jx_scalar(2)); /* rank 0 */
  CHECK(s && s->dl_tensor.ndim == 0 && *(float *)s->dl_tensor.data == 2);
  if (s) s->deleter(s);
  jx_pool_pop();
}

/* A DLPack producer of our own: a tensor over a malloc'd block */
typedef struct {
  DLManagedTensor t;
  int64_t shape[9], strides[9];
  void *mem;
} producer;
static int dl_deleted;
static void producer_deleter(DLManagedTensor *t) {
  producer *p = (producer *)t;
  dl_deleted++;
  free(p->mem);
  free(p);
}
static DLManagedTensor *produce(DLDataType dt, int ndim, const int64_t *shape, const int64_t *strides,
                                size_t bytes) {
  producer *p = calloc(1, sizeof *p);
  p->mem = aligned_alloc(64, bytes < 64 ? 64 : (bytes + 63) / 64 * 64);
  memcpy(p->shape, shape, sizeof(int64_t) * (size_t)ndim);
  if (strides) memcpy(p->strides, strides, sizeof(int64_t) * (size_t)ndim);
  p->t.dl_tensor = (DLTensor){p->mem, {kDLCPU, 0}, ndim, dt, p->shape, strides ? p->strides : NULL, 0};
  p->t.deleter = producer_deleter;
  return &p->t;
}

static void test_import(void) {
  jx_pool_push();
  DLDataType f64 = {kDLFloat, 64, 1};
  /* compact, strides NULL: wrapped, deleter when the array goes */
  DLManagedTensor *t = produce(f64, 2, (int64_t[]){2, 3}, NULL, 48);
  for (int i = 0; i < 6; i++) ((double *)t->dl_tensor.data)[i] = i;
  dl_deleted = 0;
  jx_pool_push();
  jx_t x = jx_from_dlpack(t);
  CHECK(jx_ok(x) && jx_data_ptr(x) == t->dl_tensor.data && num(jx_sum(x)) == 15 && dl_deleted == 0);
  jx_pool_pop();
  CHECK(dl_deleted == 1);
  /* transposed element strides and a byte offset: copied, deleter at once */
  t = produce(f64, 2, (int64_t[]){3, 2}, (int64_t[]){1, 3}, 64);
  for (int i = 0; i < 6; i++) ((double *)t->dl_tensor.data)[i + 1] = i + 1;
  t->dl_tensor.byte_offset = 8;
  dl_deleted = 0;
  x = jx_from_dlpack(t);
  CHECK(dl_deleted == 1 && values_are(x, 6, (double[]){1, 4, 2, 5, 3, 6}));
  /* a byte offset on compact data is still zero-copy */
  t = produce((DLDataType){kDLInt, 32, 1}, 1, (int64_t[]){3}, (int64_t[]){1}, 16);
  for (int i = 0; i < 4; i++) ((int32_t *)t->dl_tensor.data)[i] = 10 * i;
  t->dl_tensor.byte_offset = 4;
  x = jx_from_dlpack(t);
  CHECK(jx_data_ptr(x) == (char *)t->dl_tensor.data + 4 && values_are(x, 3, (double[]){10, 20, 30}));
  /* hostile tensors: an error value, the deleter still called once */
  struct {
    DLDataType dt;
    int dev, ndim;
    int64_t shape0;
    bool null_shape;
    const char *want;
  } bad[] = {
      {{kDLFloat, 8, 1}, kDLCPU, 1, 4, false, "unsupported dtype (code 2, 8 bits"},
      {{kDLBfloat, 32, 1}, kDLCPU, 1, 4, false, "unsupported dtype"},
      {{kDLFloat, 32, 4}, kDLCPU, 1, 4, false, "4 lanes"},
      {{kDLComplex, 64, 1}, kDLCPU, 1, 4, false, "unsupported dtype"},
      {{kDLFloat, 32, 1}, kDLCUDA, 1, 4, false, "device type 2"},
      {{kDLFloat, 32, 1}, kDLCPU, 9, 4, false, "rank 9"},
      {{kDLFloat, 32, 1}, kDLCPU, -1, 4, false, "rank -1"},
      {{kDLFloat, 32, 1}, kDLCPU, 1, -4, false, "negative"},
      {{kDLFloat, 32, 1}, kDLCPU, 1, 4, true, "shape is NULL"},
  };
  dl_deleted = 0;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    DLManagedTensor *h = produce(bad[i].dt, 1, (int64_t[]){bad[i].shape0}, NULL, 64);
    h->dl_tensor.device.device_type = (DLDeviceType)bad[i].dev;
    h->dl_tensor.ndim = bad[i].ndim;
    if (bad[i].null_shape) h->dl_tensor.shape = NULL;
    EXPECT_ERROR(jx_from_dlpack(h), "from_dlpack", bad[i].want);
  }
  CHECK(dl_deleted == (int)(sizeof bad / sizeof *bad));
  t = produce(f64, 1, (int64_t[]){2}, (int64_t[]){INT64_MAX / 4}, 16);
  EXPECT_ERROR(jx_from_dlpack(t), "from_dlpack", "overflows");
  /* strides each in range whose sum over the shape is not (fuzz_loaders
   * found jx reading wild memory here), and an offset that wraps the
   * address space */
  t = produce((DLDataType){kDLBool, 8, 1}, 5, (int64_t[]){2, 1, 4, 2, 3},
              (int64_t[]){513732761614337967, 159578247911423511, 3530822107858468864, 0, 0}, 16);
  EXPECT_ERROR(jx_from_dlpack(t), "from_buffer", "strides", "address");
  t = produce(f64, 1, (int64_t[]){2}, NULL, 16);
  t->dl_tensor.byte_offset = (uint64_t)INTPTR_MAX + 1;
  EXPECT_ERROR(jx_from_dlpack(t), "from_dlpack", "byte_offset");
  EXPECT_ERROR(jx_from_dlpack(NULL), "from_dlpack", "NULL");
  /* no deleter: nothing to call */
  double keep[2] = {3, 4};
  DLManagedTensor plain = {{keep, {kDLCPU, 0}, 1, f64, (int64_t[]){2}, NULL, 0}, NULL, NULL};
  x = jx_from_dlpack(&plain);
  CHECK(jx_data_ptr(x) == keep && num(jx_sum(x)) == 7);
  jx_pool_pop();
}

/* ----------------------------------------------------------- PyTorch */
static void test_torch(void) {
#ifdef JX_SHARED_LIB
  const char *py = NULL;
  if (system("python3 -c 'import torch' 2>/dev/null") == 0)
    py = "python3";
  else if (system("/usr/bin/python3 -c 'import torch' 2>/dev/null") == 0)
    py = "/usr/bin/python3";
  if (!py) {
    printf("test_interop: python3-torch not installed: the PyTorch round trip is skipped\n");
    return;
  }
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s interop_torch.py '%s'", py, JX_SHARED_LIB);
  CHECKF(system(cmd) == 0, "%s failed", cmd);
#else
  printf("test_interop: no shared library in this build (sanitizers): the PyTorch round trip is skipped\n");
#endif
}

int main(void) {
  if (check_private_cache("interop")) return 1;
  test_wrap();
  test_copies();
  test_errors();
  test_extent_one();
  test_alignment();
  test_data_ptr();
  test_export();
  test_import();
  test_torch();
  check_private_cache_remove();
  printf("test_interop: %d passed, %d failed\n", check_passed, check_failed);
  return check_failed != 0;
}
