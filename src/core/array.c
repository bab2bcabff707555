/* Concrete arrays at the API boundary: creation from user data, queries,
 * and printing. */
#include "core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* v clamped to [lo, hi], NaN -> 0, then truncated: as convert_element_type */
static double sat(double v, double lo, double hi) { return isnan(v) ? 0 : v < lo ? lo : v > hi ? hi : v; }

void jx_scalar_store(jx_dtype dt, double v, void *dst) {
  switch (dt) {
    case JX_BOOL: *(uint8_t *)dst = v != 0; break;
    case JX_I8: *(int8_t *)dst = (int8_t)sat(v, -128.0, 127.0); break;
    case JX_U8: *(uint8_t *)dst = (uint8_t)sat(v, 0, 255.0); break;
    case JX_I16: *(int16_t *)dst = (int16_t)sat(v, -32768.0, 32767.0); break;
    case JX_U16: *(uint16_t *)dst = (uint16_t)sat(v, 0, 65535.0); break;
    case JX_I32: *(int32_t *)dst = (int32_t)sat(v, -2147483648.0, 2147483647.0); break;
    case JX_U32: *(uint32_t *)dst = (uint32_t)sat(v, 0, 4294967295.0); break;
    case JX_I64: /* 2^63 is not below INT64_MAX: compare, not clamp */
      *(int64_t *)dst = isnan(v) ? 0 : v >= 0x1p63 ? INT64_MAX : v <= -0x1p63 ? INT64_MIN : (int64_t)v;
      break;
    case JX_U64: *(uint64_t *)dst = isnan(v) || v <= 0 ? 0 : v >= 0x1p64 ? UINT64_MAX : (uint64_t)v; break;
    case JX_F32: *(float *)dst = (float)v; break;
    case JX_F64: *(double *)dst = v; break;
    case JX_BF16:
    case JX_F16: *(uint16_t *)dst = jx_half_round(dt, v); break;
    default: break;
  }
}

double jx_scalar_load(jx_dtype dt, const void *src) {
  switch (dt) {
    case JX_BOOL: return *(const uint8_t *)src;
    case JX_I8: return *(const int8_t *)src;
    case JX_U8: return *(const uint8_t *)src;
    case JX_I16: return *(const int16_t *)src;
    case JX_U16: return *(const uint16_t *)src;
    case JX_I32: return *(const int32_t *)src;
    case JX_I64: return (double)*(const int64_t *)src;
    case JX_U32: return *(const uint32_t *)src;
    case JX_U64: return (double)*(const uint64_t *)src;
    case JX_F32: return *(const float *)src;
    case JX_F64: return *(const double *)src;
    case JX_BF16:
    case JX_F16: return jx_half_widen(dt, *(const uint16_t *)src);
    default: return NAN;
  }
}

jx_t jx_array(jx_dtype dt, int ndim, const int64_t *shape, const void *data) {
  char err[256];
  if (jx_shape_check(ndim, shape, dt, err, sizeof err)) return jx_error_new("array: %s", err);
  jx_t x = jx_array_new_shape(dt, ndim, shape);
  if (!jx_ok(x)) return x;
  size_t nbytes = (size_t)jx_size(x) * jx_dtype_size(dt);
  if (nbytes && !data) return jx_error_new("array: data is NULL for %zu bytes", nbytes);
  if (nbytes) memcpy(jx_data(x), data, nbytes);
  if (dt == JX_BOOL) { /* normalise to 0/1 */
    uint8_t *b = jx_data(x);
    for (size_t i = 0; i < nbytes; i++) b[i] = b[i] != 0;
  }
  return x;
}

static jx_t scalar_new(jx_dtype dt, bool weak, double v) {
  jx_aval a = {.dtype = dt, .weak = weak};
  jx_t x = jx_array_new(&a);
  if (jx_ok(x)) jx_scalar_store(dt, v, jx_data(x));
  return x;
}
jx_t jx_scalar(double v) {
  jx_t x = scalar_new(JX_F32, true, v);
  if (jx_ok(x)) x->u.arr.exact = JX_EXACT_FLOAT, x->u.arr.exact_f = v;
  return x;
}
jx_t jx_scalar_int(int64_t v) {
  jx_t x = scalar_new(JX_I32, true, (double)v);
  if (jx_ok(x)) x->u.arr.exact = JX_EXACT_INT, x->u.arr.exact_i = v;
  return x;
}

/* ------------------------------------------- weak scalars' exact values */
static bool int_fits(int64_t v, jx_dtype dt) {
  switch (dt) {
    case JX_I8: return v >= INT8_MIN && v <= INT8_MAX;
    case JX_U8: return v >= 0 && v <= UINT8_MAX;
    case JX_I16: return v >= INT16_MIN && v <= INT16_MAX;
    case JX_U16: return v >= 0 && v <= UINT16_MAX;
    case JX_I32: return v >= INT32_MIN && v <= INT32_MAX;
    case JX_U32: return v >= 0 && v <= (int64_t)UINT32_MAX;
    case JX_U64: return v >= 0;
    default: return true; /* i64 holds it, floats round it, bool tests it */
  }
}

void jx_exact_store(jx_t x, jx_dtype dt, void *dst) {
  if (x->u.arr.exact != JX_EXACT_INT) {
    jx_scalar_store(dt, x->u.arr.exact_f, dst);
    return;
  }
  int64_t v = x->u.arr.exact_i;
  switch (dt) {
    /* int64 -> float directly: rounded once (through double could round twice) */
    case JX_F32: *(float *)dst = (float)v; break;
    case JX_F64: *(double *)dst = (double)v; break;
    case JX_I64: *(int64_t *)dst = v; break;
    case JX_U64: *(uint64_t *)dst = (uint64_t)v; break; /* v >= 0: int_fits */
    case JX_BOOL: *(uint8_t *)dst = v != 0; break;
    default: jx_scalar_store(dt, (double)v, dst); break; /* i32/u32: exact when it fits */
  }
}

jx_t jx_exact_check(const char *op, jx_t x) {
  if (!jx_has_exact(x) || x->u.arr.exact != JX_EXACT_INT) return NULL;
  return jx_exact_fits(op, x, x->aval.dtype);
}

jx_t jx_exact_fits(const char *op, jx_t x, jx_dtype dt) {
  if (x->u.arr.exact != JX_EXACT_INT || !jx_dtype_is_int(dt) || int_fits(x->u.arr.exact_i, dt)) return NULL;
  return jx_error_new(
      "%s: the Python int %lld (jx_scalar_int) is too large for %s; combine it with an i64 value "
      "or make it with jx_scalar_of(JX_I64, ...)",
      op, (long long)x->u.arr.exact_i, jx_dtype_name(dt));
}

jx_t jx_exact_cast(const char *op, jx_t x, jx_dtype dt, bool weak) {
  jx_t e = jx_exact_fits(op, x, dt);
  if (e) return e;
  if (x->aval.dtype == dt && x->aval.weak == weak) return x;
  jx_aval a = {.dtype = dt, .weak = weak};
  jx_t y = jx_array_new(&a);
  if (!jx_ok(y)) return y;
  jx_exact_store(x, dt, jx_data(y));
  /* still weak: still a Python number, which a later promotion converts */
  if (weak)
    y->u.arr.exact = x->u.arr.exact, y->u.arr.exact_f = x->u.arr.exact_f, y->u.arr.exact_i = x->u.arr.exact_i;
  return y;
}
jx_t jx_scalar_of(jx_dtype dt, double v) {
  if ((unsigned)dt >= JX_DTYPE_COUNT) return jx_error_new("scalar_of: invalid dtype %d", (int)dt);
  return scalar_new(dt, false, v);
}

int jx_ndim(jx_t x) { return x && (x->kind == JX_VK_ARRAY || x->kind == JX_VK_TRACER) ? x->aval.ndim : -1; }
const int64_t *jx_shape(jx_t x) {
  return x && (x->kind == JX_VK_ARRAY || x->kind == JX_VK_TRACER) ? x->aval.shape : NULL;
}
int64_t jx_size(jx_t x) {
  return x && (x->kind == JX_VK_ARRAY || x->kind == JX_VK_TRACER) ? jx_aval_size(&x->aval) : -1;
}
jx_dtype jx_dtype_of(jx_t x) {
  return x && (x->kind == JX_VK_ARRAY || x->kind == JX_VK_TRACER) ? x->aval.dtype : JX_DTYPE_COUNT;
}
bool jx_is_weak(jx_t x) { return x && (x->kind == JX_VK_ARRAY || x->kind == JX_VK_TRACER) && x->aval.weak; }

/* ------------------------------------------------------------- printing */
typedef struct {
  char *s;
  size_t n, cap;
  bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_put(sbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char tmp[128];
  int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (k < 0 || b->oom) return;
  if (b->n + (size_t)k + 1 > b->cap) {
    size_t cap = (b->cap + (size_t)k + 1) * 2;
    char *s = jx_realloc(b->s, cap);
    if (!s) {
      b->oom = true;
      return;
    }
    b->s = s;
    b->cap = cap;
  }
  memcpy(b->s + b->n, tmp, (size_t)k + 1);
  b->n += (size_t)k;
}

static void put_elem(sbuf *b, jx_dtype dt, const void *p) {
  double v = jx_scalar_load(dt, p);
  switch (dt) {
    case JX_BOOL: sb_put(b, "%s", v ? "true" : "false"); break;
    case JX_I64: sb_put(b, "%lld", (long long)*(const int64_t *)p); break;
    case JX_U64: sb_put(b, "%llu", (unsigned long long)*(const uint64_t *)p); break;
    case JX_F32: sb_put(b, "%.7g", v); break;
    case JX_F64: sb_put(b, "%.15g", v); break;
    /* enough digits to tell neighbours apart: bf16 has 8 bits, f16 11 */
    case JX_BF16: sb_put(b, "%.4g", v); break;
    case JX_F16: sb_put(b, "%.5g", v); break;
    default: sb_put(b, "%.0f", v); break; /* the smaller integers: exact in a double */
  }
}

static void put_array(sbuf *b, const jx_aval *a, const char *data, int d, int64_t off, const int64_t *st) {
  if (d == a->ndim) {
    put_elem(b, a->dtype, data + off * (int64_t)jx_dtype_size(a->dtype));
    return;
  }
  sb_put(b, "[");
  int64_t n = a->shape[d];
  for (int64_t i = 0; i < n; i++) {
    if (n > 12 && i == 6) {
      sb_put(b, "..., ");
      i = n - 6;
    }
    put_array(b, a, data, d + 1, off + i * st[d], st);
    if (i + 1 < n) sb_put(b, d + 1 < a->ndim ? ",\n%*s" : ", ", d + 1 < a->ndim ? d + 1 : 0, "");
  }
  sb_put(b, "]");
}

/* n bytes of s, whatever their length (sb_put formats at most 127) */
static void sb_putn(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = (b->n + n + 1) * 2;
    char *q = jx_realloc(b->s, cap);
    if (!q) {
      b->oom = true;
      return;
    }
    b->s = q;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->s[b->n += n] = 0;
}

static void put_value(sbuf *b, jx_t x);

/* Python's spelling: (a, b), (a,), [a, b], {'k': v}; a structure as JAX
 * prints a PyTreeDef: PyTreeDef((*, {'k': *})). */
static void put_tree(sbuf *b, jx_t x) {
  /* by jx_tree_kind: tuple, list, dict, a structure's leaf, a structure */
  static const char *const open[] = {"(", "[", "{", "*", "PyTreeDef("};
  static const char *const close[] = {")", "]", "}", "", ")"};
  int k = x->u.tree.tkind, n = x->u.tree.n;
  sb_put(b, "%s", open[k]);
  for (int i = 0; i < n; i++) {
    if (i) sb_put(b, ", ");
    if (k == JX_TREE_DICT) {
      size_t len = jx_key_repr(jx_tree_key(x, i), NULL, 0);
      char small[128], *s = len < sizeof small ? small : jx_malloc(len + 1);
      if (!s) b->oom = true;
      if (s) sb_putn(b, s, jx_key_repr(jx_tree_key(x, i), s, len + 1));
      if (s != small) jx_free(s);
      sb_put(b, ": ");
    }
    put_value(b, x->u.tree.items[i]);
  }
  sb_put(b, "%s%s", k == JX_TREE_TUPLE && n == 1 ? "," : "", close[k]);
}

static void put_value(sbuf *b, jx_t x) {
  char s[256];
  if (!x) {
    sb_put(b, "<null>");
    return;
  }
  switch ((jx_vkind)x->kind) {
    case JX_VK_ERROR:
      sb_put(b, "<error: ");
      sb_put(b, "%.100s", x->u.err.msg);
      sb_put(b, ">");
      return;
    /* A description, not the value (which is not known), as JAX's repr of a
   * tracer: printing while debugging a transformed function is allowed. */
    case JX_VK_TRACER:
      sb_put(b, "<%s tracer %s>", x->u.tr.trace->label, jx_aval_str(&x->aval, s, sizeof s));
      return;
    case JX_VK_TREE: put_tree(b, x); return;
    case JX_VK_ARRAY: {
      int64_t st[JX_MAX_RANK];
      jx_strides(x->aval.ndim, x->aval.shape, st);
      put_array(b, &x->aval, jx_data(x), 0, 0, st);
      sb_put(b, " %s", jx_aval_str(&x->aval, s, sizeof s));
      return;
    }
  }
}

char *jx_to_string(jx_t x) {
  sbuf b = {0};
  put_value(&b, x);
  if (b.oom) {
    jx_free(b.s);
    return NULL;
  }
  return b.s ? b.s : jx_strdup("");
}

void jx_print(jx_t x) {
  char *s = jx_to_string(x);
  printf("%s\n", s ? s : "<out of memory>");
  jx_free(s);
}
