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
    [JX_PK_COLL] = "coll",
    /* [PMAP] end */
    /* [CONV] */
    [JX_PK_CONV] = "conv",
    [JX_PK_WINDOW] = "window",
    /* [CONV] end */
    /* [INDEX] */
    [JX_PK_DSLICE] = "dslice",
    /* [INDEX] end */
    /* [SORT] */
    [JX_PK_SORT] = "sort",
    [JX_PK_CUMULATIVE] = "cumulative",
    /* [SORT] end */
    /* [MATH] */
    [JX_PK_SVD] = "svd",
    /* [MATH] end */
    /* [CUSTOM] */
    [JX_PK_CUSTOM] = "custom",
    [JX_PK_REMAT] = "remat",
    [JX_PK_NAME] = "name",
    [JX_PK_BWHILE] = "bwhile",
    /* [CUSTOM] end */
    /* [PRINT] */
    [JX_PK_PRINT] = "print",
    /* [PRINT] end */
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
    case JX_PK_CUSTOM: /* the rule carrier first: the harness reads the last */
      if (p->custom.rule) js[n++] = p->custom.rule;
      if (p->custom.fun) js[n++] = p->custom.fun;
      break;
    case JX_PK_REMAT: js[n++] = p->remat.jaxpr; break;
    case JX_PK_BWHILE:
      js[n++] = p->bwhile.cond, js[n++] = p->bwhile.body;
      break;
      /* [CUSTOM] end */
      /* [PRINT] */
      /* [PRINT] end */
    default: break;
  }
  return n;
}

/* The fields jx_params_jaxprs reads, in its order (keep the two in step:
 * tests/test_debug_print.c round-trips every kind that has jaxprs). */
void jx_params_set_jaxprs(jx_params *p, struct jx_jaxpr *const *js) {
  int n = 0;
  switch (p->kind) {
    case JX_PK_CALL: p->call.jaxpr = js[n++]; break;
    case JX_PK_COND: p->cond.on_true = js[n++], p->cond.on_false = js[n++]; break;
    case JX_PK_WHILE: p->while_.cond = js[n++], p->while_.body = js[n++]; break;
    case JX_PK_SCAN: p->scan.body = js[n++]; break;
    case JX_PK_CUSTOM:
      if (p->custom.rule) p->custom.rule = js[n++];
      if (p->custom.fun) p->custom.fun = js[n++];
      break;
    case JX_PK_REMAT: p->remat.jaxpr = js[n++]; break;
    case JX_PK_BWHILE: p->bwhile.cond = js[n++], p->bwhile.body = js[n++]; break;
    default: break;
  }
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

/* take along one axis, as jx_take builds it: clip mode, one collapsed dim
 * that is also the one mapped, the indices' batch dims where that axis was
 * and whole slices elsewhere (a scatter: its transpose, the updates shaped
 * as that take's result). The kernels and the portable renderer have a
 * plain row loop for it. */
int jx_gather_take_axis(const jx_params *pa, const jx_aval *x, const jx_aval *idx, const jx_aval *upd) {
  if (pa->kind != JX_PK_GATHER && pa->kind != JX_PK_SCATTER) return -1;
  const __typeof__(pa->gather) *d = pa->kind == JX_PK_GATHER ? &pa->gather : &pa->scatter;
  if (d->mode != JX_GATHER_CLIP || d->ncollapsed != 1 || d->nmap != 1 || d->collapsed[0] != d->map[0])
    return -1;
  if (d->ivd != idx->ndim && d->ivd != idx->ndim - 1) return -1;
  int a = d->collapsed[0], nbd = idx->ndim - (d->ivd < idx->ndim);
  if (upd && upd->ndim != x->ndim - 1 + nbd) return -1;
  for (int k = 0, j = 0; k < x->ndim; k++) {
    if (k == a) continue;
    int at = k < a ? k : k - 1 + nbd; /* where dim k sits in the take's result */
    if (d->offset[j] != at) return -1;
    if (upd ? upd->shape[at] != x->shape[k] : d->slice[k] != x->shape[k]) return -1;
    j++;
  }
  for (int k = 0, i = 0; upd && k < idx->ndim; k++) /* the indices' batch dims */
    if (k != d->ivd && upd->shape[a + i++] != idx->shape[k]) return -1;
  return a;
}
