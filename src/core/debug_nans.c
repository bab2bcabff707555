/* JX_DEBUG_NANS (jax_debug_nans): an op whose result has a NaN that its
 * inputs did not have is an error value naming it. Eager ops are checked
 * here, after their impl (bind.c); a jitted program is checked on its
 * outputs and, when they have a new NaN, re-run op by op to find the
 * equation that made it (trace/debug_nans.c). Off by default: the check
 * reads every float output. */
#include "core.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_int nans_state = -1; /* -1: JX_DEBUG_NANS not read yet */

bool jx_debug_nans_on(void) {
  int s = atomic_load_explicit(&nans_state, memory_order_relaxed);
  if (s < 0) {
    const char *e = getenv("JX_DEBUG_NANS");
    s = e && *e && strcmp(e, "0") != 0;
    atomic_store_explicit(&nans_state, s, memory_order_relaxed);
  }
  return s != 0;
}

bool jx_set_debug_nans(bool on) {
  bool was = jx_debug_nans_on();
  atomic_store_explicit(&nans_state, on, memory_order_relaxed);
  return was;
}

bool jx_has_nan(jx_t x) {
  if (!jx_is_array(x) || !jx_dtype_is_float(x->aval.dtype)) return false;
  int64_t n = jx_aval_size(&x->aval);
  if (x->aval.dtype == JX_F32) {
    const float *p = jx_data(x);
    for (int64_t i = 0; i < n; i++)
      if (p[i] != p[i]) return true;
  } else if (x->aval.dtype == JX_F64) {
    const double *p = jx_data(x);
    for (int64_t i = 0; i < n; i++)
      if (p[i] != p[i]) return true;
  } else { /* bf16/f16: a NaN's magnitude bits are above Inf's */
    const uint16_t *p = jx_data(x), inf = x->aval.dtype == JX_BF16 ? 0x7f80 : 0x7c00;
    for (int64_t i = 0; i < n; i++)
      if ((p[i] & 0x7fff) > inf) return true;
  }
  return false;
}

bool jx_any_nan(int n, const jx_t *xs) {
  for (int i = 0; i < n; i++)
    if (jx_has_nan(xs[i])) return true;
  return false;
}

/* "c:f32[3] = div a:f32[3] b:f32[3]": the eager op as the jaxpr line it
 * would be (variables named in order; params left out) */
static void eqn_line(jx_prim p, int nin, const jx_t *in, int nout, const jx_t *out, char *buf, size_t cap) {
  size_t n = 0;
  char s[160];
  for (int k = 0; k < nout && n < cap; k++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%c:%s", k ? " " : "", 'a' + (nin + k) % 26,
                          jx_aval_str(&out[k]->aval, s, sizeof s));
  if (n < cap) n += (size_t)snprintf(buf + n, cap - n, " = %s", jx_prim_names[p]);
  for (int i = 0; i < nin && n < cap; i++)
    n += (size_t)snprintf(buf + n, cap - n, " %c:%s", 'a' + i % 26, jx_aval_str(&in[i]->aval, s, sizeof s));
}

jx_t jx_debug_nans_check(jx_prim p, int nin, const jx_t *in, int nout, const jx_t *out) {
  if (!jx_any_nan(nout, out) || jx_any_nan(nin, in)) return NULL;
  char line[600];
  eqn_line(p, nin, in, nout, out, line, sizeof line);
  return jx_error_new("debug_nans: %s made a NaN from inputs without one: %s", jx_prim_names[p], line);
}
