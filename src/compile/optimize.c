/* jx_optimize: the passes in their order (compile/passes.h), each pass's
 * output type-checked where the checks are on (JX_DEBUG_CHECKS: debug and
 * sanitizer builds), so a pass that breaks a jaxpr is named. */
#include "compile/passes.h"

/* j (the output of `pass`), or NULL and *err when it does not type-check */
static jx_jaxpr *checked(jx_jaxpr *j, const char *pass, jx_t *err) {
#ifdef JX_DEBUG_CHECKS
  jx_t e = j ? jx_jaxpr_typecheck(j) : NULL;
  if (e) {
    *err = jx_error_new("optimize: after %s: %s", pass, jx_error(e));
    jx_jaxpr_release(j);
    return NULL;
  }
#else
  (void)pass, (void)err;
#endif
  return j;
}

jx_jaxpr *jx_optimize(const jx_jaxpr *in, jx_t *err) {
  static jx_jaxpr *(*const passes[])(const jx_jaxpr *, bool *, jx_t *) = {jx_pass_fold, jx_pass_simplify,
                                                                          jx_pass_cse, jx_pass_dce};
  static const char *const names[] = {"fold", "simplify", "cse", "dce"};
  *err = NULL;
  if (!in) {
    *err = jx_error_new("optimize: no jaxpr");
    return NULL;
  }
  jx_jaxpr *cur = checked(jx_pass_inline(in, NULL, err), "inline", err);
  /* every round removes or rewrites something; the bound is a backstop */
  for (int round = 0; cur && round < 64; round++) {
    bool any = false;
    for (size_t i = 0; cur && i < sizeof passes / sizeof *passes; i++) {
      bool c = false;
      jx_jaxpr *next = checked(passes[i](cur, &c, err), names[i], err);
      jx_jaxpr_release(cur);
      cur = next;
      any |= c;
    }
    if (!any) break;
  }
  return cur;
}
