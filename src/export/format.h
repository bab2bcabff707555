/* The serialized-jaxpr format (docs/API.md, "Export"): what the saver
 * (serialize.c) and the loader (load.c) share. */
#ifndef JX_EXPORT_FORMAT_H
#define JX_EXPORT_FORMAT_H

#include "api/api.h"
#include "ir/jaxpr.h"

#include <stddef.h>

/* 2: scan's dyn (a file of version 1 has no such field: it reads as false) */
#define JX_XF_VERSION 2
enum { JX_XF_MAX_DEPTH = 64 }; /* jaxprs inside jaxprs, trees inside trees */

/* A params field: its type, place in jx_params, array length (1: a
 * scalar) and the range a loaded value must lie in. */
/* F_BITS64: a 64-bit field (a double) written as its bit pattern, exact */
typedef enum { F_I8 = 1, F_I32, F_I64, F_BOOL, F_DTYPE, F_JAXPR, F_BITS64 } jx_xftype;
typedef struct {
  jx_xftype t;
  size_t off;
  int len;
  int64_t lo, hi;
} jx_xfield;

/* per params kind, its fields in file order (ended by len 0); NULL: a kind
 * with no serialized form in this version (saving it fails, naming it) */
extern const jx_xfield *const jx_xf_kind_fields[JX_PK_COUNT];

/* the first format version that has field f of params kind k (1: all) */
int jx_xf_field_since(jx_params_kind k, const jx_xfield *f);

#endif
