/* jaxprs: typed SSA programs over primitives.
 *
 *   { lambda a:f32[3] ; b:f32[3]. let c:f32[3] = mul b a in (c) }
 *
 * Variables are small integers indexing `avals`. Inputs come in two kinds:
 * constants (arrays the traced function read from outside its arguments,
 * passed as values at run time, never pasted into code) and arguments.
 * 0-d constants print inline as literals. */
#ifndef JX_JAXPR_H
#define JX_JAXPR_H

#include "core/core.h"

typedef struct jx_eqn {
  jx_prim prim;
  jx_params params;
  int nin, nout;
  int *in;  /* var ids */
  int *out; /* var ids */
} jx_eqn;

typedef struct jx_jaxpr {
  atomic_int refs;
  int nvars, capvars;
  jx_aval *avals;       /* per var */
  int nconst, capconst; /* capconst: of constvars and consts both */
  int *constvars;
  jx_t *consts; /* retained values (concrete arrays, or tracers of outer traces) */
  int nin;
  int *invars;
  int neqn, capeqn;
  jx_eqn *eqns;
  int nout;
  int *outvars; /* var ids; an output may be an input or a constant */
  /* what jit compiled from this jaxpr (owned; freed with it) */
  void *compiled;
  void (*free_compiled)(void *);
} jx_jaxpr;

jx_jaxpr *jx_jaxpr_new(void);
void jx_jaxpr_retain(jx_jaxpr *j);
void jx_jaxpr_release(jx_jaxpr *j);

/* Building (return -1 on out of memory). */
int jx_jaxpr_add_var(jx_jaxpr *j, const jx_aval *a);
int jx_jaxpr_add_invar(jx_jaxpr *j, const jx_aval *a);
int jx_jaxpr_add_const(jx_jaxpr *j, jx_t value); /* retains value */
int jx_jaxpr_add_eqn(jx_jaxpr *j, jx_prim p, const jx_params *params, int nin, const int *in, int nout,
                     const jx_aval *out_avals, int *out_vars);
int jx_jaxpr_set_outs(jx_jaxpr *j, int n, const int *vars);

/* A copy whose inputs are, in order, j's input order[i] (order[i] >= 0)
 * or a new unused input of aval extra[-order[i]-1] (order[i] < 0). Inputs
 * of j not listed must be unused. NULL on out of memory. */
jx_jaxpr *jx_jaxpr_rebind(const jx_jaxpr *j, int n, const int *order, const jx_aval *extra);
/* Turn j's constants into leading inputs (in place; j must not be shared).
 * *consts receives the values (ownership moves to the caller: release each
 * and free the array). Returns their count, -1 on out of memory. */
int jx_jaxpr_hoist_consts(jx_jaxpr *j, jx_t **consts);

/* Effects (jx_rules.effect): whether equation q acts on the world, by its
 * primitive or an equation of one of its inner jaxprs (a scan whose body
 * prints); whether any equation of j does. */
bool jx_eqn_has_effects(const jx_eqn *q);
bool jx_jaxpr_has_effects(const jx_jaxpr *j);

/* Text in JAX's form. Caller frees. */
char *jx_jaxpr_print(const jx_jaxpr *j);
/* Re-derive every equation's output types with abstract_eval and compare;
 * NULL when well typed, else an error value saying where. */
jx_t jx_jaxpr_typecheck(const jx_jaxpr *j);

#endif
