/* The DLPack tensor ABI, version 0.8 layout, written out here from the
 * specification (dmlc/dlpack: "DLPack: open in-memory tensor structure")
 * so that jx needs no copy of the header. Only the names jx uses are
 * given; the layout (field order, widths, enum values) is the ABI, shared
 * with PyTorch, NumPy, CuPy, JAX and every other DLPack producer or
 * consumer, so a program may include the official dlpack.h instead: the
 * struct tag DLManagedTensor is the one jx.h declares. */
#ifndef JX_IO_DLPACK_H
#define JX_IO_DLPACK_H

#include <stdint.h>

/* where the data lives (jx reads only host memory) */
typedef enum {
  kDLCPU = 1,
  kDLCUDA = 2,
  kDLCUDAHost = 3, /* pinned host memory, but owned by a CUDA context */
  kDLOpenCL = 4,
  kDLVulkan = 7,
  kDLMetal = 8,
  kDLVPI = 9,
  kDLROCM = 10,
  kDLROCMHost = 11,
  kDLExtDev = 12,
  kDLCUDAManaged = 13,
  kDLOneAPI = 14,
  kDLWebGPU = 15,
  kDLHexagon = 16,
} DLDeviceType;

typedef struct {
  DLDeviceType device_type;
  int32_t device_id;
} DLDevice;

/* an element type: code, bits per lane, lanes (1 for scalars) */
typedef enum {
  kDLInt = 0,
  kDLUInt = 1,
  kDLFloat = 2,
  kDLOpaqueHandle = 3,
  kDLBfloat = 4,
  kDLComplex = 5,
  kDLBool = 6, /* added in 0.8: one byte per element */
} DLDataTypeCode;

typedef struct {
  uint8_t code; /* a DLDataTypeCode */
  uint8_t bits;
  uint16_t lanes;
} DLDataType;

typedef struct {
  void *data; /* the first element is at data + byte_offset */
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t *shape;
  int64_t *strides; /* in elements, not bytes; NULL: compact row-major */
  uint64_t byte_offset;
} DLTensor;

/* A tensor with its owner: the consumer calls deleter(self) once, when it
 * no longer needs the data (deleter may be NULL: nothing to free). */
typedef struct DLManagedTensor {
  DLTensor dl_tensor;
  void *manager_ctx;
  void (*deleter)(struct DLManagedTensor *self);
} DLManagedTensor;

#endif
