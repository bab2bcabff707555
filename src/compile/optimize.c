/* jx_optimize: the passes in their order (compile/passes.h). */
#include "compile/passes.h"

jx_jaxpr *jx_optimize(const jx_jaxpr *in, jx_t *err) {
  static jx_jaxpr *(*const passes[])(const jx_jaxpr *, bool *, jx_t *) = {
      jx_pass_fold, jx_pass_simplify, jx_pass_cse, jx_pass_dce};
  *err = NULL;
  if (!in) {
    *err = jx_error_new("optimize: no jaxpr");
    return NULL;
  }
  jx_jaxpr *cur = jx_pass_inline(in, NULL, err);
  /* every round removes or rewrites something; the bound is a backstop */
  for (int round = 0; cur && round < 64; round++) {
    bool any = false;
    for (size_t i = 0; cur && i < sizeof passes / sizeof *passes; i++) {
      bool c = false;
      jx_jaxpr *next = passes[i](cur, &c, err);
      jx_jaxpr_release(cur);
      cur = next;
      any |= c;
    }
    if (!any) break;
  }
  return cur;
}
