/* dtypes and JAX's type promotion.
 *
 * JAX promotes along a lattice, not a table: the result of a binary op is
 * the least upper bound of the two input types. Weakly typed values (Python
 * scalars; here jx_scalar) sit low in the lattice as "some int"/"some float",
 * so jx_mul(x_f32, jx_scalar(2.0)) stays f32 and jx_add(x_i32, 1) stays i32.
 * jx has both 32- and 64-bit types (JAX with x64 on), and f32 as the
 * default float: a weak float that meets only weak or integer types
 * becomes f32. */
#include "core.h"

static const struct {
  const char *name;
  size_t size;
} dtype_info[JX_DTYPE_COUNT] = {
    [JX_BOOL] = {"bool", 1}, [JX_I32] = {"i32", 4}, [JX_I64] = {"i64", 8},
    [JX_U32] = {"u32", 4},   [JX_F32] = {"f32", 4}, [JX_F64] = {"f64", 8},
};

const char *jx_dtype_name(jx_dtype d) {
  return (unsigned)d < JX_DTYPE_COUNT ? dtype_info[d].name : "invalid-dtype";
}
size_t jx_dtype_size(jx_dtype d) { return (unsigned)d < JX_DTYPE_COUNT ? dtype_info[d].size : 0; }
bool jx_dtype_is_float(jx_dtype d) { return d == JX_F32 || d == JX_F64; }
bool jx_dtype_is_int(jx_dtype d) { return d == JX_I32 || d == JX_I64 || d == JX_U32; }

/* Lattice nodes: the six dtypes plus the two weak kinds. */
enum { N_BOOL, N_I32, N_I64, N_U32, N_F32, N_F64, N_IWEAK, N_FWEAK, N_COUNT };

/* upper[n]: bit set of every node >= n (n included), written out from
 * JAX's lattice  bool < iweak < {i32, u32};  i32 < i64;  u32 < i64;
 * i64 < fweak < f32 < f64. */
#define B(n) (1u << (n))
static const unsigned upper[N_COUNT] = {
    [N_F64] = B(N_F64),
    [N_F32] = B(N_F32) | B(N_F64),
    [N_FWEAK] = B(N_FWEAK) | B(N_F32) | B(N_F64),
    [N_I64] = B(N_I64) | B(N_FWEAK) | B(N_F32) | B(N_F64),
    [N_I32] = B(N_I32) | B(N_I64) | B(N_FWEAK) | B(N_F32) | B(N_F64),
    [N_U32] = B(N_U32) | B(N_I64) | B(N_FWEAK) | B(N_F32) | B(N_F64),
    [N_IWEAK] = B(N_IWEAK) | B(N_I32) | B(N_U32) | B(N_I64) | B(N_FWEAK) | B(N_F32) | B(N_F64),
    [N_BOOL] = B(N_BOOL) | B(N_IWEAK) | B(N_I32) | B(N_U32) | B(N_I64) | B(N_FWEAK) | B(N_F32) | B(N_F64),
};

static int node_of(jx_dtype d, bool weak) {
  if (weak && jx_dtype_is_float(d)) return N_FWEAK;
  if (weak && jx_dtype_is_int(d)) return N_IWEAK;
  return (int)d; /* enum order matches N_BOOL..N_F64 */
}

jx_dtype jx_promote(jx_dtype a, bool aweak, jx_dtype b, bool bweak, bool *weak_out) {
  unsigned common = upper[node_of(a, aweak)] & upper[node_of(b, bweak)];
  /* The least upper bound is the common node whose upper set is largest. */
  int best = -1, bestcount = -1;
  for (int n = 0; n < N_COUNT; n++) {
    if (!(common & B(n))) continue;
    int c = __builtin_popcount(upper[n]);
    if (c > bestcount) best = n, bestcount = c;
  }
  bool weak = best == N_IWEAK || best == N_FWEAK;
  if (weak_out) *weak_out = weak;
  if (best == N_IWEAK) return JX_I32;
  if (best == N_FWEAK) return JX_F32;
  return (jx_dtype)best;
}
