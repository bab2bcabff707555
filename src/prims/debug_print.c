/* debug_print: jax.debug.print as a primitive (JAX's debug_callback with
 * its print callback). No outputs; its effect (jx_rules.effect) keeps
 * every pass from dropping, merging, folding or reordering it. params.print
 * holds the format (prims/print_format.c). Its rules:
 *   impl       format the values and hand the line to the sink
 *              (core/print_sink.c): eagerly, and under jit as a CALL
 *              kernel each time the program runs, inside generated loops
 *              through rt->call like any other call;
 *   jvp        print the primals (JAX's rule); no tangent;
 *   batch      one print per batch element, in order, each reading its
 *              slice of the mapped arguments (JAX unrolls the same way);
 *   transpose  none: it has no linear inputs (the tangent half of a jvp
 *              never holds it: control/effects.c). */
#include "core/print_sink.h"
#include "prims/prims.h"
#include "prims/print_format.h"

#include <stdio.h>

static jx_t print_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  (void)p, (void)out;
  if (!memchr(pa->print.fmt, 0, sizeof pa->print.fmt))
    return jx_error_new("debug_print: format not terminated");
  return jx_print_format(pa->print.fmt, nin, in, NULL, NULL);
}

static jx_t print_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)out;
  jx_strbuf b = {0};
  jx_t e = jx_print_format(pa->print.fmt, nin, NULL, in, &b);
  if (!e && b.oom) e = jx_error_new("jx_debug_print: out of memory formatting \"%s\"", pa->print.fmt);
  if (!e) jx_print_emit(b.s ? b.s : "");
  jx_free(b.s);
  return e;
}

static jx_t print_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                      jx_t *tout) {
  (void)t, (void)out, (void)tout;
  return jx_bind(p, nin, x, pa, 0, NULL);
}

/* x[i] along axis bd, that axis dropped (lax.index_in_dim) */
static jx_t index_in_dim(jx_t x, int bd, int64_t i) {
  const jx_aval *a = &x->aval;
  int64_t start[JX_MAX_RANK] = {0}, limit[JX_MAX_RANK], stride[JX_MAX_RANK], shape[JX_MAX_RANK];
  for (int d = 0, k = 0; d < a->ndim; d++) {
    start[d] = d == bd ? i : 0, limit[d] = d == bd ? i + 1 : a->shape[d], stride[d] = 1;
    if (d != bd) shape[k++] = a->shape[d];
  }
  return jx_lax_reshape(jx_lax_slice(x, start, limit, stride), a->ndim - 1, shape);
}

static jx_t print_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                        int *obd) {
  (void)out, (void)obd;
  int64_t n = jx_batch_size(in, bd, nin);
  jx_scratch *sc = jx_scratch_here();
  jx_scratch_mark sm = jx_scratch_save(sc);
  jx_t *args = JX_SCRATCH(sc, jx_t, nin);
  jx_t err = args ? NULL : jx_error_new("debug_print: out of memory under vmap");
  for (int64_t i = 0; i < n && !err; i++) {
    size_t mark = jx_pool_mark(); /* a batch of 10^5 leaves no slices behind */
    for (int a = 0; a < nin; a++) args[a] = bd[a] == JX_NONE ? in[a] : index_in_dim(in[a], bd[a], i);
    err = jx_bind(p, nin, args, pa, 0, NULL);
    if (err) jx_retain(err);
    jx_pool_release_to(mark);
    if (err) err = jx_pool_own(err);
  }
  jx_scratch_release(sc, sm);
  return err;
}

/* fmt="..." (escaped as Python's repr would), ordered=True when it is */
static void print_params(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  jx_strbuf_put(b, " fmt=\"");
  for (const char *c = pa->print.fmt; *c; c++) {
    if (*c == '"' || *c == '\\')
      jx_strbuf_put(b, "\\%c", *c);
    else if (*c == '\n')
      jx_strbuf_put(b, "\\n");
    else
      jx_strbuf_put(b, "%c", *c);
  }
  jx_strbuf_put(b, "\"%s", pa->print.ordered ? " ordered=True" : "");
}

const jx_rules jx_rules_debug_print = {.name = "debug_print",
                                       .nin = -1,
                                       .nout = 0,
                                       .abstract_eval = print_abstract,
                                       .impl = print_impl,
                                       .jvp = print_jvp,
                                       .batch = print_batch,
                                       .params_kind = JX_PK_PRINT,
                                       .print_params = print_params,
                                       .lower = {.kind = JX_LOWER_CALL},
                                       .effect = true};
