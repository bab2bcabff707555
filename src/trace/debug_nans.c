/* JX_DEBUG_NANS for jitted programs: compiled code is not checked op by
 * op, so when a run's outputs have a NaN its inputs had not, the jaxpr is
 * run again in the interpreter, whose eager ops are checked (core/
 * debug_nans.c), and the first one that makes a NaN is named with its
 * line of the jaxpr. */
#include "trace/trace.h"

#include <string.h>

/* Equation e's line of j's text (its first line, when its params print
 * sub-jaxprs over several): top-level equations are the lines indented
 * by exactly four spaces. Caller frees; NULL when out of memory. */
static char *eqn_text(const jx_jaxpr *j, int e) {
  char *all = jx_jaxpr_print(j);
  if (!all) return NULL;
  int seen = -1;
  for (char *l = all; l && *l;) {
    char *nl = strchr(l, '\n');
    if (!strncmp(l, "    ", 4) && l[4] != ' ' && ++seen == e) {
      size_t n = nl ? (size_t)(nl - l - 4) : strlen(l + 4);
      char *s = jx_asprintf("%.*s", (int)n, l + 4);
      jx_free(all);
      return s;
    }
    l = nl ? nl + 1 : NULL;
  }
  jx_free(all);
  return NULL;
}

static bool is_nan_error(jx_t e) { return !strncmp(jx_error(e), "debug_nans:", 11); }

jx_t jx_debug_nans_jaxpr(const jx_jaxpr *j, const jx_t *in, const jx_t *out) {
  if (!jx_any_nan(j->nout, out) || jx_any_nan(j->nin, in)) return NULL;
  jx_scratch *s = jx_scratch_here();
  jx_scratch_mark m = jx_scratch_save(s);
  jx_t *env = jx_scratch_zeros(s, (size_t)j->nvars, sizeof(jx_t)), err = NULL;
  if (!env) err = jx_error_new("debug_nans: out of memory re-running a jitted program");
  for (int i = 0; env && i < j->nconst; i++) env[j->constvars[i]] = j->consts[i];
  for (int i = 0; env && i < j->nin; i++) env[j->invars[i]] = in[i];
  int e = 0;
  for (; env && e < j->neqn && !err; e++) err = jx_eval_eqn(&j->eqns[e], env);
  jx_scratch_release(s, m);
  if (!err)
    return jx_error_new("debug_nans: a jitted program's outputs have a NaN its inputs had not, but its "
                        "equations run one by one made none (the compiled code differs from the "
                        "interpreter here)");
  if (!is_nan_error(err)) return err;
  char *line = eqn_text(j, e - 1);
  jx_t r = jx_error_new("debug_nans: in a jitted program, equation %d made the first NaN: `%s` (%s)", e - 1,
                        line ? line : "?", jx_error(err) + 12);
  jx_free(line);
  return r;
}
