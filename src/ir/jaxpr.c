/* jaxprs: construction, printing and type checking. */
#include "ir/jaxpr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

jx_jaxpr *jx_jaxpr_new(void) {
  jx_jaxpr *j = jx_calloc(1, sizeof *j);
  if (j) atomic_init(&j->refs, 1);
  return j;
}

void jx_jaxpr_retain(jx_jaxpr *j) {
  if (j) atomic_fetch_add(&j->refs, 1);
}

void jx_jaxpr_release(jx_jaxpr *j) {
  if (!j || atomic_fetch_sub(&j->refs, 1) != 1) return;
  if (j->free_compiled) j->free_compiled(j->compiled);
  for (int i = 0; i < j->nconst; i++) jx_release(j->consts[i]);
  for (int i = 0; i < j->neqn; i++) {
    jx_jaxpr *js[2]; /* inner jaxprs (jit_call, cond, ...) */
    for (int k = jx_params_jaxprs(&j->eqns[i].params, js); k-- > 0;) jx_jaxpr_release(js[k]);
    jx_free(j->eqns[i].in);
    jx_free(j->eqns[i].out);
  }
  jx_free(j->eqns);
  jx_free(j->avals);
  jx_free(j->constvars);
  jx_free(j->consts);
  jx_free(j->invars);
  jx_free(j->outvars);
  jx_free(j);
}

static int grow(void **p, int *cap, int need, size_t elem) {
  if (need <= *cap) return 0;
  int c = *cap ? *cap * 2 : 16;
  while (c < need) c *= 2;
  void *q = jx_realloc(*p, (size_t)c * elem);
  if (!q) return -1;
  *p = q;
  *cap = c;
  return 0;
}

int jx_jaxpr_add_var(jx_jaxpr *j, const jx_aval *a) {
  if (grow((void **)&j->avals, &j->capvars, j->nvars + 1, sizeof(jx_aval))) return -1;
  j->avals[j->nvars] = *a;
  return j->nvars++;
}

/* append v to a plain int array of length *n (no capacity: lists are short
 * or appended rarely) */
static int push_int(int **arr, int *n, int v) {
  int *q = jx_realloc(*arr, sizeof(int) * (size_t)(*n + 1));
  if (!q) return -1;
  q[(*n)++] = v;
  *arr = q;
  return 0;
}

int jx_jaxpr_add_invar(jx_jaxpr *j, const jx_aval *a) {
  int v = jx_jaxpr_add_var(j, a);
  if (v < 0 || push_int(&j->invars, &j->nin, v)) return -1;
  return v;
}

int jx_jaxpr_add_const(jx_jaxpr *j, jx_t value) {
  int v = jx_jaxpr_add_var(j, &value->aval);
  if (v < 0) return -1;
  if (j->nconst == j->capconst) { /* doubling: folding can add thousands */
    int cap = j->capconst ? 2 * j->capconst : 8;
    jx_t *c = jx_realloc(j->consts, sizeof(jx_t) * (size_t)cap);
    if (!c) return -1;
    j->consts = c;
    int *cv = jx_realloc(j->constvars, sizeof(int) * (size_t)cap);
    if (!cv) return -1;
    j->constvars = cv;
    j->capconst = cap;
  }
  j->constvars[j->nconst] = v;
  j->consts[j->nconst++] = jx_retain(value);
  return v;
}

int jx_jaxpr_add_eqn(jx_jaxpr *j, jx_prim p, const jx_params *params, int nin, const int *in, int nout,
                     const jx_aval *out_avals, int *out_vars) {
  if (grow((void **)&j->eqns, &j->capeqn, j->neqn + 1, sizeof(jx_eqn))) return -1;
  jx_eqn *e = &j->eqns[j->neqn];
  e->prim = p;
  memcpy(&e->params, params, sizeof *params); /* every byte: CSE compares them */
  e->nin = nin;
  e->nout = nout;
  e->in = jx_malloc(sizeof(int) * (size_t)(nin ? nin : 1));
  e->out = jx_malloc(sizeof(int) * (size_t)(nout ? nout : 1));
  if (!e->in || !e->out) {
    jx_free(e->in);
    jx_free(e->out);
    return -1;
  }
  memcpy(e->in, in, sizeof(int) * (size_t)nin);
  for (int k = 0; k < nout; k++) {
    int v = jx_jaxpr_add_var(j, &out_avals[k]);
    if (v < 0) {
      jx_free(e->in);
      jx_free(e->out);
      return -1;
    }
    e->out[k] = out_vars[k] = v;
  }
  jx_jaxpr *js[2];
  for (int k = jx_params_jaxprs(params, js); k-- > 0;) jx_jaxpr_retain(js[k]);
  j->neqn++;
  return 0;
}

int jx_jaxpr_set_outs(jx_jaxpr *j, int n, const int *vars) {
  int *o = jx_malloc(sizeof(int) * (size_t)(n ? n : 1));
  if (!o) return -1;
  memcpy(o, vars, sizeof(int) * (size_t)n);
  jx_free(j->outvars);
  j->outvars = o;
  j->nout = n;
  return 0;
}

/* ---------------------------------------------------------------- effects */
bool jx_eqn_has_effects(const jx_eqn *q) {
  if (jx_prim_rules[q->prim]->effect) return true;
  jx_jaxpr *js[2];
  for (int i = jx_params_jaxprs(&q->params, js); i-- > 0;)
    if (js[i] && jx_jaxpr_has_effects(js[i])) return true;
  return false;
}

bool jx_jaxpr_has_effects(const jx_jaxpr *j) {
  for (int e = 0; e < j->neqn; e++)
    if (jx_eqn_has_effects(&j->eqns[e])) return true;
  return false;
}

/* --------------------------------------------------------------- printing */
typedef jx_strbuf sb;

static void put(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sb *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  jx_strbuf_vput(b, fmt, ap);
  va_end(ap);
}

/* JAX names variables a, b, ..., z, ba, bb, ... */
static void var_name(int v, char *buf) {
  char tmp[16];
  int n = 0;
  do {
    tmp[n++] = (char)('a' + v % 26);
    v /= 26;
  } while (v > 0);
  for (int i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
  buf[n] = 0;
}

/* Params as their rule prints them: " name=value" items, bracketed. */
static void put_params(sb *b, const jx_jaxpr *j, const jx_eqn *e) {
  const jx_rules *r = jx_prim_rules[e->prim];
  if (!r->print_params) return;
  jx_aval in[1]; /* the printers read at most the first input's aval */
  int nin = e->nin < 1 ? e->nin : 1;
  for (int i = 0; i < nin; i++) in[i] = j->avals[e->in[i]];
  size_t n0 = b->n;
  put(b, "[");
  size_t n1 = b->n;
  r->print_params(b, &e->params, in, nin);
  if (b->n == n1) {
    b->n = n0; /* no params: no brackets */
    if (b->s) b->s[b->n] = 0;
  } else {
    b->s[n1] = '['; /* drop the leading space */
    memmove(b->s + n1 - 1, b->s + n1, b->n - n1 + 1);
    b->n--;
    put(b, "]");
  }
}

/* index in consts of var v, or -1 */
static int const_index(const jx_jaxpr *j, int v) {
  for (int i = 0; i < j->nconst; i++)
    if (j->constvars[i] == v) return i;
  return -1;
}

/* A float as Python's repr writes it: the fewest digits that read back
 * to the same value at its precision (f32 or f64). */
/* the fewest digits that read back to x in dt (f64: x itself) */
static bool same_in(jx_dtype dt, double r, double x) {
  if (dt == JX_F32) return (float)r == (float)x;
  if (dt == JX_BF16 || dt == JX_F16) return jx_half_round(dt, r) == jx_half_round(dt, x);
  return r == x;
}
static void put_float(sb *b, double x, jx_dtype dt) {
  char s[48];
  for (int p = 1; p <= 17; p++) {
    snprintf(s, sizeof s, "%.*g", p, x);
    if (same_in(dt, strtod(s, NULL), x)) break;
  }
  put(b, "%s%s", s, strpbrk(s, ".eni") ? "" : ".0");
}

/* A 0-d constant's value; a weak scalar's exact value (the one promotion
 * converts from) rather than its rounded storage. */
static void put_literal(sb *b, jx_t c) {
  jx_dtype dt = c->aval.dtype;
  if (c->u.arr.exact == JX_EXACT_INT)
    put(b, "%lld", (long long)c->u.arr.exact_i);
  else if (c->u.arr.exact == JX_EXACT_FLOAT)
    put_float(b, c->u.arr.exact_f, JX_F64);
  else if (dt == JX_BOOL)
    put(b, "%s", *(const uint8_t *)jx_data(c) ? "True" : "False");
  else if (dt == JX_I64)
    put(b, "%lld", (long long)*(const int64_t *)jx_data(c));
  else if (dt == JX_U64)
    put(b, "%llu", (unsigned long long)*(const uint64_t *)jx_data(c));
  else if (jx_dtype_is_float(dt))
    put_float(b, jx_scalar_load(dt, jx_data(c)), dt);
  else
    put(b, "%.0f", jx_scalar_load(dt, jx_data(c)));
  put(b, ":%s[]", jx_dtype_name(dt));
}

static void put_atom(sb *b, const jx_jaxpr *j, int v, const int *names) {
  int ci = const_index(j, v);
  if (ci >= 0 && j->avals[v].ndim == 0 && jx_is_array(j->consts[ci])) {
    put_literal(b, j->consts[ci]);
    return;
  }
  char nm[16];
  var_name(names[v], nm);
  put(b, "%s", nm);
}

static void put_binder(sb *b, const jx_jaxpr *j, int v, const int *names) {
  char nm[16], ty[160];
  var_name(names[v], nm);
  put(b, "%s:%s", nm, jx_aval_str(&j->avals[v], ty, sizeof ty));
}

char *jx_jaxpr_print(const jx_jaxpr *j) {
  sb b = {0};
  /* names in order of appearance, skipping inline literals */
  int *names = jx_malloc(sizeof(int) * (size_t)(j->nvars ? j->nvars : 1));
  if (!names) return NULL;
  int next = 0;
  for (int i = 0; i < j->nvars; i++) names[i] = -1;
  bool any_const = false;
  for (int i = 0; i < j->nconst; i++) {
    int v = j->constvars[i];
    if (j->avals[v].ndim == 0 && jx_is_array(j->consts[i])) continue;
    names[v] = next++;
    any_const = true;
  }
  for (int i = 0; i < j->nin; i++) names[j->invars[i]] = next++;
  for (int e = 0; e < j->neqn; e++)
    for (int k = 0; k < j->eqns[e].nout; k++) names[j->eqns[e].out[k]] = next++;
  put(&b, "{ lambda ");
  for (int i = 0, first = 1; i < j->nconst; i++) {
    int v = j->constvars[i];
    if (j->avals[v].ndim == 0 && jx_is_array(j->consts[i])) continue;
    put(&b, first ? "" : " ");
    put_binder(&b, j, v, names);
    first = 0;
  }
  put(&b, any_const ? "; " : "; ");
  for (int i = 0; i < j->nin; i++) {
    put(&b, i ? " " : "");
    put_binder(&b, j, j->invars[i], names);
  }
  put(&b, ". let\n");
  for (int e = 0; e < j->neqn; e++) {
    const jx_eqn *q = &j->eqns[e];
    put(&b, "    ");
    for (int k = 0; k < q->nout; k++) {
      put(&b, k ? " " : "");
      put_binder(&b, j, q->out[k], names);
    }
    put(&b, q->nout ? " = %s" : "%s", jx_prim_names[q->prim]); /* no outputs: an effect, as JAX prints it */
    put_params(&b, j, q);
    for (int k = 0; k < q->nin; k++) {
      put(&b, " ");
      put_atom(&b, j, q->in[k], names);
    }
    put(&b, "\n");
  }
  put(&b, "  in (");
  for (int i = 0; i < j->nout; i++) {
    put(&b, i ? ", " : "");
    put_atom(&b, j, j->outvars[i], names);
  }
  put(&b, j->nout == 1 ? ",) }" : ") }");
  jx_free(names);
  if (b.oom) {
    jx_free(b.s);
    return NULL;
  }
  return b.s;
}

/* The most inputs or outputs of any one equation of j (at least 1):
 * scratch arrays sized by it hold any equation, however wide. */
static int widest_eqn(const jx_jaxpr *j) {
  int w = 1;
  for (int e = 0; e < j->neqn; e++) {
    if (j->eqns[e].nin > w) w = j->eqns[e].nin;
    if (j->eqns[e].nout > w) w = j->eqns[e].nout;
  }
  return w;
}

/* ------------------------------------------------------------ type check */
/* the jaxpr's own lists: counts, variable ids in range, inputs and
 * constants defined once (marked in `defined`) */
static jx_t typecheck_vars(const jx_jaxpr *j, char *defined) {
  if (j->nin < 0 || j->nconst < 0 || j->nout < 0 || j->neqn < 0)
    return jx_error_new("typecheck: %d inputs, %d constants, %d outputs, %d equations", j->nin, j->nconst,
                        j->nout, j->neqn);
  for (int i = 0; i < j->nconst + j->nin; i++) {
    bool c = i < j->nconst;
    int v = c ? j->constvars[i] : j->invars[i - j->nconst];
    if (v < 0 || v >= j->nvars)
      return jx_error_new("typecheck: %s %d is variable %d, out of range [0, %d)", c ? "constant" : "input",
                          c ? i : i - j->nconst, v, j->nvars);
    if (defined[v]) return jx_error_new("typecheck: variable %d is bound twice", v);
    defined[v] = 1;
  }
  for (int i = 0; i < j->nout; i++)
    if (j->outvars[i] < 0 || j->outvars[i] >= j->nvars)
      return jx_error_new("typecheck: output %d is variable %d, out of range [0, %d)", i, j->outvars[i],
                          j->nvars);
  return NULL;
}

/* equation e's primitive, counts and variables; its input avals to in */
static jx_t typecheck_operands(const jx_jaxpr *j, int e, const char *defined, jx_aval *in) {
  const jx_eqn *q = &j->eqns[e];
  if ((unsigned)q->prim >= JX_PRIM_COUNT)
    return jx_error_new("typecheck: equation %d has primitive %d", e, (int)q->prim);
  const jx_rules *r = jx_prim_rules[q->prim];
  if (q->nin < 0 || q->nout < 0 || (r->nin >= 0 && q->nin != r->nin) || (r->nout >= 0 && q->nout != r->nout))
    return jx_error_new(
        "typecheck: equation %d (%s) has %d inputs and %d outputs; %s takes %d and gives %d (-1: any)", e,
        r->name, q->nin, q->nout, r->name, r->nin, r->nout);
  jx_jaxpr *inner[2];
  if (r->nout < 0 && q->params.kind == r->params_kind && !jx_params_jaxprs(&q->params, inner)) {
    int want = r->nout_of ? r->nout_of(&q->params) : q->nin;
    if (q->nout != want && !r->nout_of)
      return jx_error_new(
          "typecheck: equation %d (%s) has %d inputs and %d outputs; %s gives one output per input", e,
          r->name, q->nin, q->nout, r->name);
    if (q->nout != want)
      return jx_error_new("typecheck: equation %d (%s) has %d outputs; its params give %d", e, r->name,
                          q->nout, want);
  }
  if (q->params.kind != r->params_kind)
    return jx_error_new("typecheck: equation %d (%s) has %s params, expected %s", e, r->name,
                        q->params.kind < JX_PK_COUNT ? jx_params_kind_names[q->params.kind] : "corrupt",
                        jx_params_kind_names[r->params_kind]);
  for (int k = 0; k < q->nin; k++) {
    int v = q->in[k];
    if (v < 0 || v >= j->nvars)
      return jx_error_new("typecheck: equation %d (%s) input %d is variable %d, out of range [0, %d)", e,
                          r->name, k, v, j->nvars);
    if (!defined[v])
      return jx_error_new("typecheck: equation %d (%s) uses variable %d before its definition", e, r->name,
                          v);
    in[k] = j->avals[v];
  }
  for (int k = 0; k < q->nout; k++) {
    int v = q->out[k];
    if (v < 0 || v >= j->nvars)
      return jx_error_new("typecheck: equation %d (%s) output %d is variable %d, out of range [0, %d)", e,
                          r->name, k, v, j->nvars);
    if (defined[v]) return jx_error_new("typecheck: equation %d (%s) binds variable %d again", e, r->name, v);
  }
  return NULL;
}

jx_t jx_jaxpr_typecheck(const jx_jaxpr *j) {
  char *defined = jx_calloc((size_t)(j->nvars ? j->nvars : 1), 1);
  jx_aval *in = jx_malloc(sizeof(jx_aval) * 2 * (size_t)widest_eqn(j)), *out = in ? in + widest_eqn(j) : NULL;
  if (!defined || !in) {
    jx_free(defined), jx_free(in);
    return jx_error_new("typecheck: out of memory");
  }
  jx_t err = typecheck_vars(j, defined);
  for (int e = 0; e < j->neqn && !err; e++) {
    const jx_eqn *q = &j->eqns[e];
    if ((err = typecheck_operands(j, e, defined, in))) break;
    const jx_rules *r = jx_prim_rules[q->prim]; /* q->prim checked above */
    /* through jx_abstract_eval: a loaded jaxpr meets the dtype table too */
    jx_t e2 = jx_abstract_eval(q->prim, in, q->nin, &q->params, q->nout, out);
    if (e2) {
      err = jx_error_new("typecheck: equation %d: %s", e, jx_error(e2));
      break;
    }
    for (int k = 0; k < q->nout; k++) {
      if (!jx_aval_eq(&out[k], &j->avals[q->out[k]])) {
        char s1[160], s2[160];
        err = jx_error_new("typecheck: equation %d (%s) output %d is %s but abstract_eval gives %s", e,
                           r->name, k, jx_aval_str(&j->avals[q->out[k]], s1, sizeof s1),
                           jx_aval_str(&out[k], s2, sizeof s2));
        break;
      }
      defined[q->out[k]] = 1;
    }
  }
  for (int i = 0; i < j->nout && !err; i++)
    if (!defined[j->outvars[i]]) err = jx_error_new("typecheck: output %d is undefined", i);
  jx_free(defined);
  jx_free(in);
  return err;
}

/* ------------------------------------------------------------- reshaping */
jx_jaxpr *jx_jaxpr_rebind(const jx_jaxpr *j, int n, const int *order, const jx_aval *extra) {
  jx_jaxpr *r = jx_jaxpr_new();
  if (!r) return NULL;
  int *map = jx_malloc(sizeof(int) * (size_t)(j->nvars ? j->nvars : 1));
  int w = widest_eqn(j);
  int *in = jx_malloc(sizeof(int) * 2 * (size_t)w), *out = in ? in + w : NULL;
  jx_aval *oav = jx_malloc(sizeof(jx_aval) * (size_t)w);
  bool ok = map && in && oav;
  for (int v = 0; ok && v < j->nvars; v++) map[v] = -1;
  for (int i = 0; ok && i < j->nconst; i++) {
    int v = jx_jaxpr_add_const(r, j->consts[i]);
    ok = v >= 0;
    if (ok) map[j->constvars[i]] = v;
  }
  for (int i = 0; ok && i < n; i++) {
    int v = jx_jaxpr_add_invar(r, order[i] >= 0 ? &j->avals[j->invars[order[i]]] : &extra[-order[i] - 1]);
    ok = v >= 0;
    if (ok && order[i] >= 0) map[j->invars[order[i]]] = v;
  }
  /* inputs that are dropped are not allowed to be used: give them fresh
   * vars so the jaxpr stays well formed if they are (they are not) */
  for (int i = 0; ok && i < j->nin; i++)
    if (map[j->invars[i]] < 0) {
      int v = jx_jaxpr_add_var(r, &j->avals[j->invars[i]]);
      ok = v >= 0;
      map[j->invars[i]] = v;
    }
  for (int e = 0; ok && e < j->neqn; e++) {
    const jx_eqn *q = &j->eqns[e];
    for (int k = 0; k < q->nin; k++) in[k] = map[q->in[k]];
    for (int k = 0; k < q->nout; k++) oav[k] = j->avals[q->out[k]];
    ok = jx_jaxpr_add_eqn(r, q->prim, &q->params, q->nin, in, q->nout, oav, out) == 0;
    for (int k = 0; ok && k < q->nout; k++) map[q->out[k]] = out[k];
  }
  int *outs = ok ? jx_malloc(sizeof(int) * (size_t)(j->nout ? j->nout : 1)) : NULL;
  ok = ok && outs;
  for (int k = 0; ok && k < j->nout; k++) outs[k] = map[j->outvars[k]];
  ok = ok && jx_jaxpr_set_outs(r, j->nout, outs) == 0;
  jx_free(outs);
  jx_free(map);
  jx_free(in);
  jx_free(oav);
  if (!ok) {
    jx_jaxpr_release(r);
    return NULL;
  }
  return r;
}

int jx_jaxpr_hoist_consts(jx_jaxpr *j, jx_t **consts) {
  int n = j->nconst;
  int *inv = jx_malloc(sizeof(int) * (size_t)(n + j->nin ? n + j->nin : 1));
  *consts = NULL; /* on failure the jaxpr keeps its constants */
  if (!inv) return -1;
  *consts = j->consts;
  if (n) memcpy(inv, j->constvars, sizeof(int) * (size_t)n);
  if (j->nin) memcpy(inv + n, j->invars, sizeof(int) * (size_t)j->nin);
  jx_free(j->invars);
  jx_free(j->constvars);
  j->invars = inv;
  j->nin += n;
  j->constvars = NULL;
  j->consts = NULL;
  j->nconst = j->capconst = 0;
  return n;
}
