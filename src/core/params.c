/* Params: the kinds' names, hashing, the inner jaxprs of higher-order
 * params, and the string buffer params print into. */
#include "core/core.h"

#include <stdio.h>

const char *const jx_params_kind_names[JX_PK_COUNT] = {
    [JX_PK_NONE] = "none",
    [JX_PK_CONVERT] = "convert",
    [JX_PK_REDUCE] = "reduce",
    [JX_PK_ARG] = "arg",
    [JX_PK_DOT] = "dot",
    [JX_PK_RESHAPE] = "reshape",
    [JX_PK_BCAST] = "bcast",
    [JX_PK_PERM] = "perm",
    [JX_PK_REV] = "rev",
    [JX_PK_SLICE] = "slice",
    [JX_PK_PAD] = "pad",
    [JX_PK_CONCAT] = "concat",
    [JX_PK_GATHER] = "gather",
    [JX_PK_SCATTER] = "scatter",
    [JX_PK_IOTA] = "iota",
    [JX_PK_CALL] = "call",
    [JX_PK_COND] = "cond",
    [JX_PK_WHILE] = "while",
    [JX_PK_SCAN] = "scan",
    /* [PMAP] */
    /* [PMAP] end */
    /* [CONV] */
    [JX_PK_CONV] = "conv",
    [JX_PK_WINDOW] = "window",
    /* [CONV] end */
    /* [INDEX] */
    /* [INDEX] end */
    /* [SORT] */
    /* [SORT] end */
    /* [MATH] */
    /* [MATH] end */
    /* [CUSTOM] */
    /* [CUSTOM] end */
};

const jx_params jx_params_none; /* static storage: every byte zero, kind NONE */

/* FNV-1a over the bytes: params are zero-initialised plain data. */
uint64_t jx_params_hash(const jx_params *p) { return jx_fnv1a(p, sizeof *p, JX_FNV_BASIS); }

int jx_params_jaxprs(const jx_params *p, struct jx_jaxpr **js) {
  int n = 0;
  switch (p->kind) {
    case JX_PK_CALL: js[n++] = p->call.jaxpr; break;
    case JX_PK_COND: js[n++] = p->cond.on_true, js[n++] = p->cond.on_false; break;
    case JX_PK_WHILE: js[n++] = p->while_.cond, js[n++] = p->while_.body; break;
    case JX_PK_SCAN: js[n++] = p->scan.body; break;
    /* [PMAP] */
    /* [PMAP] end */
    /* [CUSTOM] */
    /* [CUSTOM] end */
    default: break;
  }
  return n;
}

void jx_strbuf_vput(jx_strbuf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int k = vsnprintf(NULL, 0, fmt, ap);
  if (k < 0 || b->oom) {
    va_end(ap2);
    return;
  }
  if (b->n + (size_t)k + 1 > b->cap) {
    size_t cap = (b->n + (size_t)k + 1) * 2;
    char *s = jx_realloc(b->s, cap);
    if (!s) {
      b->oom = true;
      va_end(ap2);
      return;
    }
    b->s = s;
    b->cap = cap;
  }
  vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap2);
  va_end(ap2);
  b->n += (size_t)k;
}

void jx_strbuf_put(jx_strbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  jx_strbuf_vput(b, fmt, ap);
  va_end(ap);
}
