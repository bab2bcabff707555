/* jax.debug.print: jx_debug_print binds the debug_print primitive
 * (prims/debug_print.c), whose rules print at run time under every
 * transformation. */
#include "core/core.h"

jx_t jx_debug_print_ex(const char *fmt, int nargs, const jx_t *args, bool ordered) {
  if (!fmt) return jx_error_new("jx_debug_print: the format is NULL");
  if (nargs < 0 || (nargs > 0 && !args))
    return jx_error_new("jx_debug_print: nargs is %d %s", nargs,
                        nargs < 0 ? "(negative)" : "but args is NULL");
  size_t len = strlen(fmt);
  if (len > JX_DEBUG_PRINT_FMT_MAX)
    return jx_error_new("jx_debug_print: a format of %zu bytes; at most %d are kept (JX_DEBUG_PRINT_FMT_MAX)",
                        len, JX_DEBUG_PRINT_FMT_MAX);
  for (int i = 0; i < nargs; i++) {
    if (jx_is_error(args[i]))
      return args[i] ? args[i] : jx_error_new("jx_debug_print: argument %d is NULL", i);
    if (args[i]->kind == JX_VK_TREE)
      return jx_error_new("jx_debug_print: argument %d is a tree; pass its leaves (jx_tree_flatten)", i);
  }
  jx_params pa;
  jx_params_init(&pa, JX_PK_PRINT);
  memcpy(pa.print.fmt, fmt, len + 1);
  pa.print.ordered = ordered;
  return jx_bind(JX_P_debug_print, nargs, args, &pa, 0, NULL);
}

jx_t jx_debug_print(const char *fmt, int nargs, const jx_t *args) {
  return jx_debug_print_ex(fmt, nargs, args, false);
}
