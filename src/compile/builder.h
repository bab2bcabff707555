/* The builder the jaxpr passes share (compile/pass_*.c): a forward walk
 * over a source jaxpr that builds a fresh one, mapping each source
 * variable to a variable of the new one (see compile/builder.c). Private
 * to the passes; passes.h is their public interface. */
#ifndef JX_BUILDER_H
#define JX_BUILDER_H

#include "compile/passes.h"

/* The new jaxpr's constants, found by pointer (and, for cse, by contents)
 * in O(1): folding can make thousands of them. Open addressing; a slot
 * holds var + 1 (0: empty), the key is the var's constant. */
typedef struct {
  int *slot;
  int cap, count;
} ctab;

typedef struct {
  jx_jaxpr *j;
  jx_t *cval; /* new var -> its constant (borrowed from j->consts) or NULL */
  int *def;   /* new var -> index in j->eqns of the equation defining it, or -1 */
  int nsync, cap;
  bool merge_consts; /* merge constants by contents (cse) */
  bool changed;
  jx_t err;
  ctab byptr, bycontents;
} bld;

/* how one source jaxpr's variables map into the builder's */
typedef struct {
  const jx_jaxpr *src;
  int *map;  /* src var -> new var, -1 = not yet */
  int *cidx; /* src var -> index in src->consts, -1 = not a constant */
} srcmap;

/* The source equation's inputs, mapped (into a buffer that stays valid
 * until the next call). NULL on error. */
typedef struct {
  int *v;
  int cap;
} ibuf;

void b_oom(bld *b);
bool same_aval(const jx_aval *a, const jx_aval *b);
/* The var holding constant x in the new jaxpr (added on first use). */
int b_const(bld *b, jx_t x);
/* Append an equation; its outputs' new vars go to outs. */
bool b_eqn(bld *b, jx_prim p, const jx_params *params, int nin, const int *in, int nout, const jx_aval *avals,
           int *outs);
bool sm_init(bld *b, srcmap *s, const jx_jaxpr *src);
void sm_free(srcmap *s);
/* new var of source var v (constants are brought over on first use) */
int sm_get(bld *b, srcmap *s, int v);
/* The source equation's inputs, mapped (into buf). NULL on error. */
int *map_ins(bld *b, srcmap *s, const jx_eqn *q, ibuf *buf);
/* Emit q (with inputs ins, already mapped) unchanged and map its outputs. */
bool emit_copy(bld *b, srcmap *s, const jx_eqn *q, const int *ins);

typedef void (*pass_body)(bld *b, srcmap *s);
/* Run one pass: a fresh jaxpr with the same invars, the body maps the
 * equations, the outputs are mapped last (see builder.c). */
jx_jaxpr *run_pass(const jx_jaxpr *in, pass_body body, bool merge_consts, bool *changed, jx_t *err);

#endif
