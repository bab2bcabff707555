/* The portable target's debug_print (export): the exported unit does no
 * I/O of its own, so a print becomes a call to a hook the user may define
 * when building the unit, and nothing otherwise:
 *
 *   cc -DJX_EXPORT_DEBUG_PRINT=my_print ... name.c
 *   void my_print(const char *fmt, int n, const void *const *values);
 *
 * gets, each time the print runs, its format (as given to jx_debug_print)
 * and its operands' data in order (dense, row-major; their shapes and
 * dtypes are in the comment above the call). Built without the macro the
 * call is compiled out: the unit stays free of stdio, and its outputs are
 * the same either way (a print has none). */
#include "backend/cpu/render_call.h"

/* fmt as the body of a C string literal (inside a comment too: no "* /") */
static void put_c_string(sb *b, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '\\' || c == '"')
      put(b, "\\%c", c);
    else if (c == '\n')
      put(b, "\\n");
    else if (c < 32 || c >= 127 || (c == '/' && s[1] == '*') || (c == '*' && s[1] == '/') || c == '?')
      put(b, "\\%03o", c); /* ("?": no trigraphs) */
    else
      put(b, "%c", c);
  }
}

void jx_cpu_render_print(sb *b, const jx_program *p, const jx_kernel *k, int id) {
  const jx_params *pa = &k->call.params;
  put(b, "static int p%d_k%d(char **b, const jx_rt *rt) { /* debug_print */\n  (void)b, (void)rt;\n", p->id,
      id);
  put(b, "#ifdef JX_EXPORT_DEBUG_PRINT\n  {\n    /* \"");
  put_c_string(b, pa->print.fmt);
  put(b, "\"");
  for (int i = 0; i < k->nin; i++) {
    char s[160];
    put(b, "%s%s", i ? ", " : " of ", jx_aval_str(jx_cpu_bav(p, k->ins[i]), s, sizeof s));
  }
  put(b, " */\n    void JX_EXPORT_DEBUG_PRINT(const char *, int, const void *const *);\n");
  put(b, "    const void *const v[%d] = {", k->nin ? k->nin : 1);
  for (int i = 0; i < k->nin; i++) put(b, "%sb[%d]", i ? ", " : "", k->ins[i]);
  if (!k->nin) put(b, "0");
  put(b, "};\n    JX_EXPORT_DEBUG_PRINT(\"");
  put_c_string(b, pa->print.fmt);
  put(b, "\", %d, v);\n  }\n#endif\n  return 0;\n}\n\n", k->nin);
}
