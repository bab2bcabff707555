/* Contractions: jnp.einsum, jnp.tensordot and lax.dot_general, all as
 * dot_general (src/prims/dot.c) plus layout ops.
 *
 * einsum parses its spec into one label per operand dim (letters by their
 * character code, the dims an ellipsis stands for as labels from 128 on,
 * aligned from the right as numpy aligns them), takes diagonals for labels
 * repeated within one operand, sums labels no one else needs, then
 * contracts pairs in the order opt_einsum's greedy strategy would pick
 * them (the cheapest pair by FLOPs first), each pair one dot_general whose
 * batch dims are the labels both share and still need. */
#include "ops/ops.h"
#include "prims/prims.h"

#include <stdio.h>
#include <stdlib.h>

enum { ELL = 128, NLAB = ELL + JX_MAX_RANK, MAXOPS = 64 };

typedef struct {
  int n;
  int lab[JX_MAX_RANK];
} terms;

typedef struct {
  const char *spec;
  int nops;
  const jx_t *ops;
  terms in[MAXOPS], out;
  int64_t size[NLAB];
  int nell; /* dims of the widest ellipsis */
} einsum_t;

/* "einsum('ij,jk', f32[2,3], f32[3,4]): cause" */
static jx_t einsum_error(const einsum_t *es, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static jx_t einsum_error(const einsum_t *es, const char *fmt, ...) {
  char cause[256], shapes[1024] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cause, sizeof cause, fmt, ap);
  va_end(ap);
  size_t k = 0;
  for (int i = 0; i < es->nops && k < sizeof shapes - 200; i++) {
    char s[160];
    jx_t x = es->ops[i];
    k += (size_t)snprintf(shapes + k, sizeof shapes - k, ", %s",
                          jx_is_array(x) || jx_is_tracer(x) ? jx_aval_str(&x->aval, s, sizeof s) : "?");
  }
  return jx_error_new("einsum('%s'%s): %s", es->spec, shapes, cause);
}

static bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* one term [s, end) into t; rank: the operand's rank, or -1 for the
 * output (whose ellipsis is nell dims wide). Returns the ellipsis width in
 * *ne. */
static jx_t parse_term(einsum_t *es, const char *s, const char *end, int rank, terms *t, int *ne) {
  int tok[64], nt = 0, ell = -1;
  for (const char *c = s; c < end; c++) {
    if (nt == 64) return einsum_error(es, "a term has too many labels");
    if (is_letter(*c)) {
      tok[nt++] = (unsigned char)*c;
    } else if (*c == '.' && end - c >= 3 && c[1] == '.' && c[2] == '.' && ell < 0) {
      ell = nt, tok[nt++] = -1, c += 2;
    } else {
      return einsum_error(es, "unexpected '%c' in the spec (letters, ',', '->' and one '...' per term)", *c);
    }
  }
  int nlet = nt - (ell >= 0);
  *ne = ell < 0 ? 0 : rank < 0 ? es->nell : rank - nlet;
  if (rank >= 0 && (*ne < 0 || (ell < 0 && nlet != rank)))
    return einsum_error(es, "term '%.*s' has %d labels for an operand of rank %d", (int)(end - s), s, nlet,
                        rank);
  if (rank < 0 && ell < 0 && es->nell > 0)
    return einsum_error(es, "the output has no '...' but the operands' ellipses have %d dims", es->nell);
  if (nlet + *ne > JX_MAX_RANK) return einsum_error(es, "a term's rank exceeds %d", JX_MAX_RANK);
  t->n = 0;
  for (int k = 0; k < nt; k++) {
    if (tok[k] >= 0)
      t->lab[t->n++] = tok[k];
    else /* the ellipsis dims, right-aligned against the widest */
      for (int j = 0; j < *ne; j++) t->lab[t->n++] = ELL + JX_MAX_RANK - *ne + j;
  }
  return NULL;
}

static void label_name(int l, char *buf) {
  if (l < ELL)
    buf[0] = (char)l, buf[1] = 0;
  else
    snprintf(buf, 16, "...[%d]", l - ELL - JX_MAX_RANK);
}

/* the operands' terms, the label sizes and the output term */
static jx_t parse(einsum_t *es) {
  const char *arrow = strstr(es->spec, "->"), *ins_end = arrow ? arrow : es->spec + strlen(es->spec);
  if (arrow && strstr(arrow + 2, "->")) return einsum_error(es, "more than one '->'");
  for (int l = 0; l < NLAB; l++) es->size[l] = -1;
  const char *s = es->spec;
  int i = 0;
  for (;; i++) {
    const char *e = memchr(s, ',', (size_t)(ins_end - s));
    if (!e) e = ins_end;
    if (i >= es->nops) return einsum_error(es, "the spec has more terms than the %d operands", es->nops);
    int ne;
    jx_t err = parse_term(es, s, e, es->ops[i]->aval.ndim, &es->in[i], &ne);
    if (err) return err;
    es->nell = ne > es->nell ? ne : es->nell;
    for (int d = 0; d < es->in[i].n; d++) {
      int l = es->in[i].lab[d];
      int64_t z = es->ops[i]->aval.shape[d], *have = &es->size[l];
      if (*have >= 0 && *have != z && !(l >= ELL && (*have == 1 || z == 1))) {
        char nm[16];
        label_name(l, nm);
        return einsum_error(es, "label '%s' has size %lld in one place and %lld in another", nm,
                            (long long)*have, (long long)z);
      }
      if (*have < z) *have = z;
    }
    if (e == ins_end) break;
    s = e + 1;
  }
  if (i + 1 != es->nops) return einsum_error(es, "the spec has %d terms for %d operands", i + 1, es->nops);
  int cnt[NLAB] = {0};
  for (int k = 0; k < es->nops; k++)
    for (int d = 0; d < es->in[k].n; d++) cnt[es->in[k].lab[d]]++;
  if (arrow) {
    int ne;
    jx_t err = parse_term(es, arrow + 2, arrow + 2 + strlen(arrow + 2), -1, &es->out, &ne);
    if (err) return err;
    bool seen[NLAB] = {0};
    for (int d = 0; d < es->out.n; d++) {
      int l = es->out.lab[d];
      char nm[16];
      label_name(l, nm);
      if (seen[l]) return einsum_error(es, "output label '%s' repeated", nm);
      if (!cnt[l] && l < ELL) return einsum_error(es, "output label '%s' is in no operand", nm);
      seen[l] = true;
    }
  } else { /* numpy's implicit output: the ellipsis, then labels seen once, sorted */
    es->out.n = 0;
    for (int j = 0; j < es->nell; j++) es->out.lab[es->out.n++] = ELL + JX_MAX_RANK - es->nell + j;
    for (int l = 0; l < ELL; l++)
      if (cnt[l] == 1) {
        if (es->out.n == JX_MAX_RANK) return einsum_error(es, "the output rank exceeds %d", JX_MAX_RANK);
        es->out.lab[es->out.n++] = l;
      }
  }
  for (int d = 0; d < es->out.n; d++) /* ellipsis dims no operand has are size 1 */
    if (es->size[es->out.lab[d]] < 0) es->size[es->out.lab[d]] = 1;
  return NULL;
}

/* ------------------------------------------------------- execution */
static int find(const terms *t, int l) {
  for (int d = 0; d < t->n; d++)
    if (t->lab[d] == l) return d;
  return -1;
}
static void drop(terms *t, int d) {
  memmove(t->lab + d, t->lab + d + 1, sizeof(int) * (size_t)(t->n - d - 1));
  t->n--;
}

/* x with the dims of t marked in `sum` summed away */
static jx_t sum_dims(jx_t x, terms *t, const bool *sum) {
  int axes[JX_MAX_RANK], na = 0;
  for (int d = t->n - 1; d >= 0; d--)
    if (sum[d]) axes[na++] = d, drop(t, d);
  return na ? jx_lax_reduce(JX_P_reduce_sum, x, na, axes) : x;
}

/* size-1 ellipsis dims broadcast to their label's size, then diagonals
 * for labels repeated within the operand */
static jx_t prepare(const einsum_t *es, jx_t x, terms *t) {
  int64_t shape[JX_MAX_RANK];
  int dims[JX_MAX_RANK];
  bool bc = false;
  for (int d = 0; d < t->n; d++)
    shape[d] = es->size[t->lab[d]], dims[d] = d, bc |= shape[d] != x->aval.shape[d];
  if (bc) x = jx_lax_broadcast_in_dim(x, t->n, shape, dims);
  for (int d1 = 0; d1 < t->n && jx_ok(x); d1++)
    for (int d2 = t->n - 1; d2 > d1; d2--) {
      if (t->lab[d2] != t->lab[d1]) continue;
      const jx_aval *a = &x->aval;
      jx_t on = jx_lax_binary(JX_P_eq, jx_lax_iota(JX_I32, a->ndim, a->shape, d1),
                              jx_lax_iota(JX_I32, a->ndim, a->shape, d2));
      jx_t zero = jx_lax_broadcast_to_aval(jx_lax_const(a->dtype, 0), a);
      x = jx_lax_reduce(JX_P_reduce_sum, jx_lax_select(on, x, zero), 1, &d2);
      drop(t, d2);
    }
  return x;
}

/* whether label l is needed outside operands i and j (the output, or
 * another live operand) */
static bool needed(const einsum_t *es, const terms *t, const bool *live, int nt, int i, int j, int l) {
  if (find(&es->out, l) >= 0) return true;
  for (int k = 0; k < nt; k++)
    if (live[k] && k != i && k != j && find(&t[k], l) >= 0) return true;
  return false;
}

/* one pairwise contraction: shared labels still needed are batch dims,
 * the other shared ones contract; labels of one side only that nobody
 * needs are summed first */
static jx_t contract(const einsum_t *es, terms *t, const bool *live, int nt, jx_t *x, int i, int j,
                     terms *rt) {
  for (int s = 0; s < 2; s++) {
    int me = s ? j : i, other = s ? i : j;
    bool sum[JX_MAX_RANK] = {0};
    for (int d = 0; d < t[me].n; d++)
      sum[d] = find(&t[other], t[me].lab[d]) < 0 && !needed(es, t, live, nt, i, j, t[me].lab[d]);
    x[me] = sum_dims(x[me], &t[me], sum);
  }
  int lc[JX_MAX_RANK], rc[JX_MAX_RANK], lb[JX_MAX_RANK], rb[JX_MAX_RANK], nc = 0, nb = 0;
  bool lused[JX_MAX_RANK] = {0}, rused[JX_MAX_RANK] = {0};
  rt->n = 0;
  for (int d = 0; d < t[i].n; d++) {
    int l = t[i].lab[d], e = find(&t[j], l);
    if (e < 0) continue;
    lused[d] = rused[e] = true;
    if (needed(es, t, live, nt, i, j, l))
      lb[nb] = d, rb[nb++] = e, rt->lab[rt->n++] = l;
    else
      lc[nc] = d, rc[nc++] = e;
  }
  for (int d = 0; d < t[i].n; d++)
    if (!lused[d]) rt->lab[rt->n++] = t[i].lab[d];
  for (int d = 0; d < t[j].n; d++)
    if (!rused[d]) rt->lab[rt->n++] = t[j].lab[d];
  if (rt->n > JX_MAX_RANK) return einsum_error(es, "an intermediate's rank exceeds %d", JX_MAX_RANK);
  return jx_lax_dot_general(x[i], x[j], nc, lc, rc, nb, lb, rb);
}

static double term_size(const einsum_t *es, const int *labs, int n) {
  double s = 1;
  for (int d = 0; d < n; d++) s *= (double)es->size[labs[d]];
  return s;
}

/* opt_einsum's greedy path, by FLOPs: the pair whose contraction costs
 * least (then whose result is smallest) goes next */
static void pick_pair(const einsum_t *es, const terms *t, const bool *live, int nt, int *bi, int *bj) {
  double best = -1, best_out = 0;
  for (int i = 0; i < nt; i++)
    for (int j = i + 1; j < nt; j++) {
      if (!live[i] || !live[j]) continue;
      int u[2 * JX_MAX_RANK], nu = 0, kept[2 * JX_MAX_RANK], nk = 0;
      for (int s = 0; s < 2; s++) {
        const terms *a = &t[s ? j : i];
        for (int d = 0; d < a->n; d++) {
          int l = a->lab[d];
          bool dup = false;
          for (int k = 0; k < nu; k++) dup |= u[k] == l;
          if (dup) continue;
          u[nu++] = l;
          if (needed(es, t, live, nt, i, j, l)) kept[nk++] = l;
        }
      }
      double cost = term_size(es, u, nu), out = term_size(es, kept, nk);
      if (best < 0 || cost < best || (cost == best && out < best_out))
        best = cost, best_out = out, *bi = i, *bj = j;
    }
}

static jx_t run(einsum_t *es, jx_t *x, terms *t) {
  int nt = es->nops;
  bool live[2 * MAXOPS] = {0};
  for (int i = 0; i < nt; i++) {
    x[i] = prepare(es, x[i], &t[i]);
    live[i] = true;
  }
  for (int i = 0; i < nt; i++) { /* labels only this operand has */
    bool sum[JX_MAX_RANK] = {0};
    for (int d = 0; d < t[i].n; d++) sum[d] = !needed(es, t, live, nt, i, i, t[i].lab[d]);
    x[i] = sum_dims(x[i], &t[i], sum);
  }
  for (int left = es->nops; left > 1; left--) {
    int i = 0, j = 1;
    pick_pair(es, t, live, nt, &i, &j);
    x[nt] = contract(es, t, live, nt, x, i, j, &t[nt]);
    if (!jx_ok(x[nt])) return x[nt];
    live[i] = live[j] = false, live[nt++] = true;
  }
  int last = nt - 1;
  bool sum[JX_MAX_RANK] = {0};
  for (int d = 0; d < t[last].n; d++) sum[d] = find(&es->out, t[last].lab[d]) < 0;
  jx_t r = sum_dims(x[last], &t[last], sum);
  int perm[JX_MAX_RANK];
  bool ident = true;
  for (int d = 0; d < es->out.n; d++) perm[d] = find(&t[last], es->out.lab[d]), ident &= perm[d] == d;
  return ident ? r : jx_lax_transpose(r, perm);
}

jx_t jx_einsum(const char *spec, int n, const jx_t *operands) {
  if (!spec) return jx_error_new("einsum: spec is NULL");
  if (n < 1 || n > MAXOPS || !operands)
    return jx_error_new("einsum('%s'): takes 1 to %d operands, got %d", spec, MAXOPS, n);
  for (int i = 0; i < n; i++) {
    jx_t e = jx_op_check_array("einsum", operands[i]);
    if (e) return e;
  }
  einsum_t *es = calloc(1, sizeof *es);
  jx_t *x = malloc(sizeof(jx_t) * 2 * MAXOPS);
  terms *t = malloc(sizeof(terms) * 2 * MAXOPS);
  if (!es || !x || !t) {
    free(es), free(x), free(t);
    return jx_error_new("einsum: out of memory");
  }
  es->spec = spec, es->nops = n, es->ops = operands;
  jx_t r = parse(es);
  if (!r) {
    bool weak = operands[0]->aval.weak;
    jx_dtype dt = operands[0]->aval.dtype;
    for (int i = 1; i < n; i++)
      dt = jx_promote(dt, weak, operands[i]->aval.dtype, operands[i]->aval.weak, &weak);
    if (dt == JX_BOOL) dt = JX_I32; /* like matmul: bool products count */
    for (int i = 0; i < n; i++) x[i] = jx_op_cast_for("einsum", operands[i], dt, weak), t[i] = es->in[i];
    r = run(es, x, t);
  }
  free(es), free(x), free(t);
  return r;
}

/* ------------------------------------------------ tensordot, dot_general */
static jx_t norm_dims(const char *op, jx_t x, int n, const int *in, int *out) {
  char s[160];
  for (int i = 0; i < n; i++)
    if ((out[i] = jx_norm_axis(in[i], x->aval.ndim)) < 0)
      return jx_error_new("%s(%s): dimension %d out of range", op, jx_aval_str(&x->aval, s, sizeof s), in[i]);
  return NULL;
}

static jx_t promote_both(const char *op, jx_t *a, jx_t *b) {
  jx_t e = jx_op_check_array(op, *a);
  if (!e) e = jx_op_check_array(op, *b);
  if (e) return e;
  bool weak;
  jx_dtype dt = jx_promote((*a)->aval.dtype, (*a)->aval.weak, (*b)->aval.dtype, (*b)->aval.weak, &weak);
  if (dt == JX_BOOL) dt = JX_I32;
  *a = jx_op_cast_for(op, *a, dt, weak), *b = jx_op_cast_for(op, *b, dt, weak);
  return NULL;
}

jx_t jx_tensordot(jx_t a, jx_t b, int naxes, const int *a_axes, const int *b_axes) {
  jx_t e = promote_both("tensordot", &a, &b);
  if (e) return e;
  char s1[160], s2[160];
  if (naxes < 0 || naxes > a->aval.ndim || naxes > b->aval.ndim || (!a_axes) != (!b_axes))
    return jx_error_new("tensordot(%s, %s): %d axes (both axis lists or neither)",
                        jx_aval_str(&a->aval, s1, sizeof s1), jx_aval_str(&b->aval, s2, sizeof s2), naxes);
  int lc[JX_MAX_RANK], rc[JX_MAX_RANK];
  if (a_axes) {
    if ((e = norm_dims("tensordot", a, naxes, a_axes, lc)) ||
        (e = norm_dims("tensordot", b, naxes, b_axes, rc)))
      return e;
  } else { /* the last naxes of a against the first of b */
    for (int i = 0; i < naxes; i++) lc[i] = a->aval.ndim - naxes + i, rc[i] = i;
  }
  return jx_lax_dot_general(a, b, naxes, lc, rc, 0, NULL, NULL);
}

jx_t jx_dot_general(jx_t lhs, jx_t rhs, int ncontract, const int *lhs_contract, const int *rhs_contract,
                    int nbatch, const int *lhs_batch, const int *rhs_batch, const jx_dtype *preferred) {
  jx_t e = promote_both("dot_general", &lhs, &rhs);
  if (e) return e;
  if (ncontract < 0 || ncontract > JX_MAX_RANK || nbatch < 0 || nbatch > JX_MAX_RANK ||
      (ncontract && (!lhs_contract || !rhs_contract)) || (nbatch && (!lhs_batch || !rhs_batch)))
    return jx_error_new("dot_general: bad dimension numbers (%d contracting, %d batch)", ncontract, nbatch);
  int lc[JX_MAX_RANK], rc[JX_MAX_RANK], lb[JX_MAX_RANK], rb[JX_MAX_RANK];
  if ((e = norm_dims("dot_general", lhs, ncontract, lhs_contract, lc)) ||
      (e = norm_dims("dot_general", rhs, ncontract, rhs_contract, rc)) ||
      (e = norm_dims("dot_general", lhs, nbatch, lhs_batch, lb)) ||
      (e = norm_dims("dot_general", rhs, nbatch, rhs_batch, rb)))
    return e;
  /* preferred_element_type: compute in it when it is at least as wide as
   * the operands' type (as XLA accumulates), else convert the result */
  jx_dtype dt = lhs->aval.dtype;
  if (preferred && (unsigned)*preferred >= JX_DTYPE_COUNT)
    return jx_error_new("dot_general: preferred element type %d is not a dtype", (int)*preferred);
  /* bf16/f16 -> f32: the GEMM accumulates in f32 anyway and writes it as it is */
  if (preferred && *preferred == JX_F32 && jx_dtype_is_half(dt))
    return jx_lax_dot_general_pref(lhs, rhs, ncontract, lc, rc, nbatch, lb, rb, JX_F32);
  bool widen = preferred && *preferred != dt && jx_promote(dt, false, *preferred, false, NULL) == *preferred;
  if (widen) lhs = jx_op_cast(lhs, *preferred, false), rhs = jx_op_cast(rhs, *preferred, false);
  jx_t r = jx_lax_dot_general(lhs, rhs, ncontract, lc, rc, nbatch, lb, rb);
  return preferred && !widen && *preferred != dt ? jx_op_cast(r, *preferred, false) : r;
}
