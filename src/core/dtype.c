/* dtypes and JAX's type promotion.
 *
 * JAX promotes along a lattice, not a table: the result of a binary op is
 * the least upper bound (join) of the two input types. Weakly typed values
 * (Python scalars; here jx_scalar) sit low in the lattice as "some int"
 * (i*) / "some float" (f*), so jx_mul(x_bf16, jx_scalar(2.0)) stays bf16
 * and jx_add(x_i8, jx_scalar_int(1)) stays i8. The lattice is the one of
 * https://docs.jax.dev/en/latest/type_promotion.html (complex types left
 * out: jx has none yet). jx has both 32- and 64-bit types (JAX with x64
 * on), and f32 as the default float: a join that lands on f* (say u64 with
 * i8) is a weak f32, and one on i* a weak i32. */
#include "core.h"

#include <math.h>
#include <string.h>

/* name (as JAX prints it in a jaxpr) and item size */
static const struct {
  const char *name;
  size_t size;
} dtype_info[] = {
    [JX_BOOL] = {"bool", 1}, [JX_I32] = {"i32", 4}, [JX_I64] = {"i64", 8},   [JX_U32] = {"u32", 4},
    [JX_F32] = {"f32", 4},   [JX_F64] = {"f64", 8}, [JX_BF16] = {"bf16", 2}, [JX_F16] = {"f16", 2},
    [JX_I8] = {"i8", 1},     [JX_U8] = {"u8", 1},   [JX_I16] = {"i16", 2},   [JX_U16] = {"u16", 2},
    [JX_U64] = {"u64", 8},
};
_Static_assert(sizeof dtype_info / sizeof *dtype_info == JX_DTYPE_COUNT, "a dtype without a name");

const char *jx_dtype_name(jx_dtype d) {
  return (unsigned)d < JX_DTYPE_COUNT ? dtype_info[d].name : "invalid-dtype";
}
size_t jx_dtype_size(jx_dtype d) { return (unsigned)d < JX_DTYPE_COUNT ? dtype_info[d].size : 0; }

#define DB(d) (1u << (d))
static const unsigned float_set = DB(JX_F32) | DB(JX_F64) | DB(JX_BF16) | DB(JX_F16);
static const unsigned uint_set = DB(JX_U8) | DB(JX_U16) | DB(JX_U32) | DB(JX_U64);
static const unsigned sint_set = DB(JX_I8) | DB(JX_I16) | DB(JX_I32) | DB(JX_I64);
static bool in_set(jx_dtype d, unsigned set) { return (unsigned)d < JX_DTYPE_COUNT && (set & DB(d)); }
bool jx_dtype_is_float(jx_dtype d) { return in_set(d, float_set); }
bool jx_dtype_is_int(jx_dtype d) { return in_set(d, uint_set | sint_set); }
bool jx_dtype_is_unsigned(jx_dtype d) { return in_set(d, uint_set); }
bool jx_dtype_is_half(jx_dtype d) { return d == JX_BF16 || d == JX_F16; }

/* Lattice nodes: the dtypes themselves, then the two weak kinds. */
enum { N_IWEAK = JX_DTYPE_COUNT, N_FWEAK, N_COUNT };
_Static_assert(N_COUNT <= 32, "lattice sets are 32-bit masks");

/* The lattice's edges, as drawn in JAX's type_promotion.rst: each node
 * and the nodes directly above it. */
#define B(n) (1u << (n))
static const unsigned above[N_COUNT] = {
    [JX_BOOL] = B(N_IWEAK),
    [N_IWEAK] = B(JX_U8) | B(JX_I8),
    [JX_U8] = B(JX_U16) | B(JX_I16),
    [JX_U16] = B(JX_U32) | B(JX_I32),
    [JX_U32] = B(JX_U64) | B(JX_I64),
    [JX_U64] = B(N_FWEAK),
    [JX_I8] = B(JX_I16),
    [JX_I16] = B(JX_I32),
    [JX_I32] = B(JX_I64),
    [JX_I64] = B(N_FWEAK),
    [N_FWEAK] = B(JX_BF16) | B(JX_F16),
    [JX_BF16] = B(JX_F32),
    [JX_F16] = B(JX_F32),
    [JX_F32] = B(JX_F64),
    [JX_F64] = 0,
};

/* every node >= n, n included: the edges' transitive closure */
static unsigned upper(int n) {
  unsigned s = B(n), prev = 0;
  while (s != prev) {
    prev = s;
    for (int k = 0; k < N_COUNT; k++)
      if (s & B(k)) s |= above[k];
  }
  return s;
}

static int node_of(jx_dtype d, bool weak) {
  if (weak && jx_dtype_is_float(d)) return N_FWEAK;
  if (weak && jx_dtype_is_int(d)) return N_IWEAK;
  return (int)d;
}

jx_dtype jx_promote(jx_dtype a, bool aweak, jx_dtype b, bool bweak, bool *weak_out) {
  unsigned common = upper(node_of(a, aweak)) & upper(node_of(b, bweak));
  /* The join is the common node that every other common node is above:
   * the one with the largest upper set. */
  int best = -1, bestcount = -1;
  for (int n = 0; n < N_COUNT; n++) {
    if (!(common & B(n))) continue;
    int c = __builtin_popcount(upper(n));
    if (c > bestcount) best = n, bestcount = c;
  }
  bool weak = best == N_IWEAK || best == N_FWEAK;
  if (weak_out) *weak_out = weak;
  if (best == N_IWEAK) return JX_I32;
  if (best == N_FWEAK) return JX_F32;
  return (jx_dtype)best;
}

/* ------------------------------------------- bf16/f16 <-> double (#19) */
/* The core's own copy of the roundings of backend/cpu/scalar_ops.h (the
 * core may not include the backend; that header must stay self-contained
 * for the jit): jx_scalar_of, jx_full and weak scalars convert through
 * these. tests/test_dtype.c checks that both give the same bits on every
 * 16-bit pattern and on a sweep of doubles. */
static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}
static float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* f64 -> f32 rounded to odd: then rounding to 8 or 11 bits is exact RNE */
static float to_f32_odd(double d) {
  float f = (float)d;
  if (d != d || (double)f == d) return f;
  uint32_t u = f32_bits(f);
  if (fabs((double)f) > fabs(d)) u -= 1u;
  return bits_f32(u | 1u);
}

static uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* NaN: quiet */
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static uint16_t f32_to_f16(float f) {
  uint32_t u = f32_bits(f), s = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(s | 0x7e00u | ((a >> 13) & 0x3ffu));
  if (a >= 0x477ff000u) return (uint16_t)(s | 0x7c00u);
  if (a >= 0x38800000u) return (uint16_t)(s | ((a - 0x38000000u + 0xfffu + ((a >> 13) & 1u)) >> 13));
  uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
  if (e < 102u) return (uint16_t)s;
  uint32_t sh = 126u - e, q = m >> sh, r = m & ((1u << sh) - 1u), half = 1u << (sh - 1u);
  q += (r > half) || (r == half && (q & 1u));
  return (uint16_t)(s | q);
}

uint16_t jx_half_round(jx_dtype dt, double v) {
  float f = to_f32_odd(v);
  return dt == JX_BF16 ? f32_to_bf16(f) : f32_to_f16(f);
}

float jx_half_widen(jx_dtype dt, uint16_t h) {
  if (dt == JX_BF16) return bits_f32((uint32_t)h << 16);
  uint32_t s = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0) {
    float f = (float)m * 0x1p-24f;
    return s ? -f : f;
  }
  if (e == 31) return bits_f32(s | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0u));
  return bits_f32(s | ((e + 112u) << 23) | (m << 13));
}

/* ------------------------------------------- which primitives take them */
/* The dtypes of #19 reach only the primitives whose kernels (eager and
 * generated) were written for them; any other primitive given one of them
 * fails in jx_abstract_eval (so eagerly, under jit and in every
 * transformation alike) with an error naming itself and the dtype, never
 * a kernel's invariant check. By family (primitives.def); a family's
 * accepted set may still be narrowed by the primitive's own dtype checks
 * (exp takes floats only, whatever its family takes). */
enum {
  EXT_NONE = 0,
  EXT_INTS = DB(JX_I8) | DB(JX_U8) | DB(JX_I16) | DB(JX_U16) | DB(JX_U64),
  EXT_ALL = EXT_INTS | DB(JX_BF16) | DB(JX_F16),
};
#define EXT_unary             EXT_ALL
#define EXT_binary            EXT_ALL
#define EXT_compare           EXT_ALL
#define EXT_bits              EXT_ALL
#define EXT_special           EXT_ALL
#define EXT_select            EXT_ALL
#define EXT_convert           EXT_ALL
#define EXT_layout            EXT_ALL /* kernels move bytes by element size */
#define EXT_call              EXT_ALL /* containers: their insides are checked when traced */
#define EXT_control           EXT_ALL
#define EXT_custom            EXT_ALL
#define EXT_reduce            EXT_ALL /* bf16/f16 computed in f32 (prims/reduce.c, math.c) */
#define EXT_window            EXT_ALL /* ints: C arithmetic on the type; bf16/f16: the f32 kernel, rounded once */
#define EXT_dot               EXT_ALL /* bf16/f16: f32 accumulation (prims/dot.c); ints wrap */
#define EXT_conv              EXT_ALL /* bf16/f16: widened to f32, rounded once; ints wrap (prims/conv.c) */
#define EXT_index             EXT_ALL /* data movement by element size; scatter combiners in f32 for bf16/f16 */
#define EXT_sort              EXT_ALL /* radix keys: bf16/f16 widened to f32, NaN last, -0 = +0 */
#define EXT_cumulative        EXT_ALL /* bf16/f16: an f32 running value, each output rounded once */
#define EXT_random            EXT_NONE /* threefry2x32 hashes u32 words; ops/random.c draws #19 dtypes from them */
#define EXT_coll              EXT_ALL  /* bytes by element size; sums in the type (dist/fold.h) */
#define EXT_linalg            EXT_NONE /* f32/f64 only (prims/linalg.c) */
#define EXT_debug             EXT_ALL  /* printed through jx_scalar_load, which reads every dtype */
#define JX_PRIM(name, family) [JX_P_##name] = EXT_##family,
static const unsigned ext_dtypes[] = {
#include "core/primitives.def"
};
#undef JX_PRIM
_Static_assert(sizeof ext_dtypes / sizeof *ext_dtypes == JX_PRIM_COUNT, "a primitive without a dtype set");

bool jx_prim_takes_dtype(jx_prim p, jx_dtype dt) {
  if ((unsigned)dt >= JX_DTYPE_COUNT || (unsigned)p >= JX_PRIM_COUNT) return false;
  return dt < JX_BF16 || (ext_dtypes[p] & DB(dt));
}

jx_dtype jx_promote_types(jx_dtype a, jx_dtype b) {
  if ((unsigned)a >= JX_DTYPE_COUNT || (unsigned)b >= JX_DTYPE_COUNT) return JX_DTYPE_COUNT;
  return jx_promote(a, false, b, false, NULL);
}
