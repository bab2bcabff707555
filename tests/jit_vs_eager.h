/* max |jit(f)(args) - f(args)| over every leaf of the results (compared
 * in f64); -1 if either failed (both errors printed) or the trees differ.
 * Shared by the loop tests (test_loops.c, test_loop_dus.c). */
#ifndef JX_TESTS_JIT_VS_EAGER_H
#define JX_TESTS_JIT_VS_EAGER_H

#include <jx.h>
#include <stdio.h>

static inline double jit_vs_eager(jx_fn *f, const jx_t *args) {
  enum { MAX_LEAVES = 32 };
  jx_fn *jf = jx_jit(f);
  jx_t want = jx_call(f, args), got = jx_call(jf, args);
  jx_fn_free(jf);
  if (!jx_ok(want) || !jx_ok(got)) {
    fprintf(stderr, "  eager: %s, jit: %s\n", jx_error(want) ? jx_error(want) : "ok",
            jx_error(got) ? jx_error(got) : "ok");
    return -1;
  }
  jx_t wl[MAX_LEAVES], gl[MAX_LEAVES];
  int nw = jx_tree_leaves_to(want, wl, MAX_LEAVES), ng = jx_tree_leaves_to(got, gl, MAX_LEAVES);
  if (nw != ng || nw > MAX_LEAVES) return -1;
  double worst = 0;
  for (int i = 0; i < nw; i++) {
    if (jx_ndim(wl[i]) != jx_ndim(gl[i]) || jx_size(wl[i]) != jx_size(gl[i])) return -1;
    if (!jx_size(wl[i])) continue;
    double d = jx_item(jx_max(jx_abs(jx_sub(jx_astype(wl[i], JX_F64), jx_astype(gl[i], JX_F64)))));
    if (!(d <= worst)) worst = d;
  }
  return worst;
}

#endif
