/* jit, end to end (DESIGN §3):
 *   - trace caching: same signature never retraces; new shapes, dtypes,
 *     weak-vs-strong scalars and tree structures do;
 *   - ~100 seeded random programs (chains of 5-15 ops over small shapes with
 *     0-d, size-0 and size-1 dims; f32, f64, i32) jit vs eager;
 *   - compositions: grad/jit, vmap/jit, jit(vmap(grad)) per-example
 *     gradients of a tanh MLP, jit inside jit, grad of grad through jit,
 *     value_and_grad under jit, jit of a closure over an outer tracer;
 *   - reading a traced value (jx_item) inside jit: NaN + an error message;
 *   - the compiled-object cache, in child processes (the cache directory and
 *     JX_CC are read once per process): a disk hit in a second process,
 *     corrupted/truncated objects rebuilt, a world-writable directory not
 *     used, a symlinked object rejected, a directory owned by another user
 *     not used, objects and checksums planted by another user rejected, two
 *     processes compiling the same functions at once both succeeding;
 *   - the compiler's identity in the cache key: a compiler changed on disk,
 *     or another one named, gets no objects built by the first;
 *   - no C compiler (JX_CC=/nonexistent): jit interprets, results correct;
 *   - slow_f fuses to a single kernel (no temporaries);
 *   - outputs that are inputs or constants, a 0-argument function, and
 *     threads sharing one jitted function.
 *
 * The process-level scenarios run this binary again as
 * `test_jit --child MODE` with a prepared environment; the parent checks the
 * exit status, the child's check report and the JX_LOG=compile output read
 * through a pipe. For debugging: `test_jit --program SEED` runs and prints
 * one random program, `test_jit --random N FIRST` runs N from seed FIRST. */
#include "api/trace_fn.h"
#include "backend/cpu/conv.h"
#include "check.h"
#include "child.h"
#include "compile/compile.h"
#include "compile/passes.h"
#include "jit_build.h"
#include "seed_mlp.h"
#include "trace/trace.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
int jx_jit_trace_count(jx_fn *jitted);

/* ------------------------------------------------------------- helpers */
static uint64_t rng_state;
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static int rint_(int n) { return n > 0 ? (int)(rnd() % (uint64_t)n) : 0; }
static double unif(double lo, double hi) {
  return lo + (hi - lo) * (double)(rnd() >> 11) / 9007199254740992.0;
}
static bool chance(double p) { return unif(0, 1) < p; }

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int64_t shape_size(int nd, const int64_t *s) {
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= s[i];
  return n;
}

/* random values: floats uniform in [lo, hi], ints in [-4, 4] */
static jx_t rand_array(jx_dtype dt, int nd, const int64_t *shape, double lo, double hi) {
  int64_t n = shape_size(nd, shape);
  double *d = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) d[i] = dt == JX_I32 ? (double)(rint_(9) - 4) : unif(lo, hi);
  jx_t x = jx_array(JX_F64, nd, shape, d);
  free(d);
  return dt == JX_F64 ? x : jx_astype(x, dt);
}

/* Values of an array as doubles (caller frees); NULL for errors/trees. */
static double *values(jx_t x, int64_t *n) {
  *n = jx_size(x);
  if (*n < 0) return NULL;
  double *d = malloc(sizeof(double) * (size_t)(*n + 1));
  if (jx_read(x, JX_F64, d, sizeof(double) * (size_t)(*n + 1))) {
    free(d);
    return NULL;
  }
  return d;
}

static double max_abs(jx_t x) {
  int64_t n;
  double *d = values(x, &n), m = 0;
  if (!d) return NAN;
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(d[i]))
      m = INFINITY;
    else if (fabs(d[i]) > m)
      m = fabs(d[i]);
  }
  free(d);
  return m;
}

/* Same tree structure, dtypes, shapes, weak flags; values within
 * |a-b| <= atol + rtol |b| (exact for ints and bools). Returns 1 if equal. */
static int same_value(jx_t a, jx_t b, double rtol, double atol, const char *what) {
  if (!jx_ok(a) || !jx_ok(b)) {
    fprintf(stderr, "  %s: error: %s / %s\n", what, jx_ok(a) ? "-" : jx_error(a),
            jx_ok(b) ? "-" : jx_error(b));
    return 0;
  }
  if (jx_is_tree(a) || jx_is_tree(b)) {
    if (jx_is_tree(a) != jx_is_tree(b) || jx_len(a) != jx_len(b)) {
      fprintf(stderr, "  %s: tree structure differs\n", what);
      return 0;
    }
    int ok = 1;
    for (int i = 0; i < jx_len(a); i++) ok &= same_value(jx_at(a, i), jx_at(b, i), rtol, atol, what);
    return ok;
  }
  char sa[200], sb[200];
  snprintf(sa, sizeof sa, "%s", jx_dtype_name(jx_dtype_of(a)));
  snprintf(sb, sizeof sb, "%s", jx_dtype_name(jx_dtype_of(b)));
  bool shape_ok = jx_ndim(a) == jx_ndim(b);
  for (int i = 0; shape_ok && i < jx_ndim(a); i++) shape_ok = jx_shape(a)[i] == jx_shape(b)[i];
  if (!shape_ok || jx_dtype_of(a) != jx_dtype_of(b) || jx_is_weak(a) != jx_is_weak(b)) {
    fprintf(stderr, "  %s: type differs: %s ndim %d weak %d vs %s ndim %d weak %d\n", what, sa, jx_ndim(a),
            jx_is_weak(a), sb, jx_ndim(b), jx_is_weak(b));
    return 0;
  }
  bool exact = jx_dtype_of(a) != JX_F32 && jx_dtype_of(a) != JX_F64;
  int64_t n, m;
  double *x = values(a, &n), *y = values(b, &m);
  int ok = x && y && n == m;
  for (int64_t i = 0; ok && i < n; i++) {
    ok = exact ? (x[i] == y[i]) : check_close(x[i], y[i], rtol, atol);
    if (!ok) fprintf(stderr, "  %s: element %lld: %.17g vs %.17g\n", what, (long long)i, x[i], y[i]);
  }
  free(x);
  free(y);
  return ok;
}

/* ======================================================= random programs */
enum { MAXSLOT = 32, MAXARGS = 6, MAXELEMS = 2048 };

typedef enum {
  S_INPUT,
  S_ADD,
  S_SUB,
  S_MUL,
  S_DIV,
  S_MAXIMUM,
  S_SCALAR,
  S_EXP,
  S_TANH,
  S_LOG,
  S_SIGMOID,
  S_CMP,
  S_WHERE,
  S_ASTYPE,
  S_SUM,
  S_RMAX,
  S_TRANSPOSE,
  S_RESHAPE,
  S_BCAST,
  S_SLICE,
  S_CONCAT,
  S_DOT,
  S_MATMUL,
  S_TAKE,
  S_ONEHOT,
  S_NOPS
} sop;
static const char *const sop_names[S_NOPS] = {
    "input",        "add",     "sub",         "mul",   "div",    "maximum", "scalar", "exp",       "tanh",
    "log",          "sigmoid", "cmp",         "where", "astype", "sum",     "max",    "transpose", "reshape",
    "broadcast_to", "slice",   "concatenate", "dot",   "matmul", "take",    "one_hot"};

typedef struct {
  sop op;
  int a, b, c; /* operand slots, -1: none (S_CMP b -1: compare with the scalar s) */
  int arg;     /* S_INPUT: argument position */
  int sub;     /* S_SCALAR: add/mul/sub/maximum/rsub; S_CMP: lt/le/gt/ge/eq/ne */
  double s;    /* scalar constant */
  bool sint;   /* S_SCALAR: a weak int scalar */
  jx_dtype dt; /* S_INPUT, S_ASTYPE */
  int ndim;    /* S_INPUT / S_RESHAPE / S_BCAST target; S_TAKE/S_ONEHOT constant indices */
  int64_t shape[JX_MAX_RANK];
  int naxes; /* S_SUM/S_RMAX axes; S_TRANSPOSE perm (naxes = ndim) */
  int axes[JX_MAX_RANK];
  bool keep, perm_null;
  int64_t start[JX_MAX_RANK], stop[JX_MAX_RANK], step[JX_MAX_RANK];
  int axis, n; /* S_CONCAT axis and count; S_TAKE axis; S_ONEHOT classes */
  int idx;     /* S_TAKE/S_ONEHOT: indices from this slot, -1: the constant idata */
  int32_t idata[16];
} slot;

typedef struct {
  int nslot, nargs;
  slot s[MAXSLOT];
  int nout, outs[3];
  bool tuple_out;
  bool has_f32; /* some value is f32: f32 tolerance */
  double scale; /* largest |value| of any float intermediate */
} program;

static jx_t apply(const slot *s, const jx_t *v) {
  jx_t a = s->a >= 0 ? v[s->a] : NULL, b = s->b >= 0 ? v[s->b] : NULL;
  switch (s->op) {
    case S_ADD: return jx_add(a, b);
    case S_SUB: return jx_sub(a, b);
    case S_MUL: return jx_mul(a, b);
    case S_DIV: return jx_div(a, jx_add(jx_abs(b), jx_scalar(1.0)));
    case S_MAXIMUM: return jx_maximum(a, b);
    case S_SCALAR: {
      jx_t k = s->sint ? jx_scalar_int((int64_t)s->s) : jx_scalar(s->s);
      switch (s->sub) {
        case 0: return jx_add(a, k);
        case 1: return jx_mul(k, a);
        case 2: return jx_sub(a, k);
        case 3: return jx_maximum(a, k);
        default: return jx_sub(k, a);
      }
    }
    case S_EXP: return jx_exp(a);
    case S_TANH: return jx_tanh(a);
    case S_LOG: return jx_log(jx_add(jx_abs(a), jx_scalar(1.0)));
    case S_SIGMOID: return jx_sigmoid(a);
    case S_CMP: {
      jx_t k = b ? b : jx_scalar(s->s);
      switch (s->sub) {
        case 0: return jx_lt(a, k);
        case 1: return jx_le(a, k);
        case 2: return jx_gt(a, k);
        case 3: return jx_ge(a, k);
        case 4: return jx_eq(a, k);
        default: return jx_ne(a, k);
      }
    }
    case S_WHERE: return jx_where(v[s->c], a, b);
    case S_ASTYPE: return jx_astype(a, s->dt);
    case S_SUM: return jx_sum_axes(a, s->naxes, s->axes, s->keep);
    case S_RMAX: return jx_max_axes(a, s->naxes, s->axes, s->keep);
    case S_TRANSPOSE: return jx_transpose(a, s->perm_null ? NULL : s->axes);
    case S_RESHAPE: return jx_reshape(a, s->ndim, s->shape);
    case S_BCAST: return jx_broadcast_to(a, s->ndim, s->shape);
    case S_SLICE: return jx_slice(a, s->start, s->stop, s->step);
    case S_CONCAT: {
      jx_t xs[3] = {a, b, s->c >= 0 ? v[s->c] : NULL};
      return jx_concatenate(s->n, xs, s->axis);
    }
    case S_DOT: return jx_dot(a, b);
    case S_MATMUL: return jx_matmul(a, b);
    case S_TAKE:
    case S_ONEHOT: {
      jx_t ix = s->idx >= 0 ? v[s->idx] : jx_array(JX_I32, s->ndim, s->shape, s->idata);
      return s->op == S_TAKE ? jx_take(a, ix, s->axis) : jx_one_hot(ix, s->n);
    }
    default: return jx_error_new("test: bad op %d", (int)s->op);
  }
}

static jx_t prog_body(const jx_t *args, void *u) {
  const program *p = u;
  jx_t v[MAXSLOT];
  for (int i = 0; i < p->nslot; i++) v[i] = p->s[i].op == S_INPUT ? args[p->s[i].arg] : apply(&p->s[i], v);
  if (!p->tuple_out) return v[p->outs[0]];
  jx_t o[3];
  for (int i = 0; i < p->nout; i++) o[i] = v[p->outs[i]];
  return jx_tuple(p->nout, o);
}

static void print_program(const program *p, const jx_t *gv) {
  for (int i = 0; i < p->nslot; i++) {
    const slot *s = &p->s[i];
    char t[200] = "?";
    if (gv && gv[i]) {
      jx_t x = gv[i];
      int k = snprintf(t, sizeof t, "%s[", jx_dtype_name(jx_dtype_of(x)));
      for (int d = 0; d < jx_ndim(x); d++)
        k += snprintf(t + k, sizeof t - (size_t)k, d ? ",%lld" : "%lld", (long long)jx_shape(x)[d]);
      snprintf(t + k, sizeof t - (size_t)k, "]%s", jx_is_weak(x) ? "{weak}" : "");
    }
    fprintf(stderr, "    v%d = %s(", i, sop_names[s->op]);
    if (s->op == S_INPUT)
      fprintf(stderr, "arg %d", s->arg);
    else {
      fprintf(stderr, "v%d", s->a);
      if (s->b >= 0) fprintf(stderr, ", v%d", s->b);
      if (s->c >= 0) fprintf(stderr, ", v%d", s->c);
      if (s->op == S_SCALAR || s->op == S_CMP)
        fprintf(stderr, "; sub %d s %g%s", s->sub, s->s, s->sint ? " int" : "");
      if (s->op == S_SUM || s->op == S_RMAX) {
        fprintf(stderr, "; axes");
        for (int k = 0; k < s->naxes; k++) fprintf(stderr, " %d", s->axes[k]);
        fprintf(stderr, " keep %d", s->keep);
      }
      if (s->op == S_TRANSPOSE && !s->perm_null) {
        fprintf(stderr, "; perm");
        for (int k = 0; k < s->naxes; k++) fprintf(stderr, " %d", s->axes[k]);
      }
      if (s->op == S_RESHAPE || s->op == S_BCAST) {
        fprintf(stderr, "; shape");
        for (int k = 0; k < s->ndim; k++) fprintf(stderr, " %lld", (long long)s->shape[k]);
      }
      if (s->op == S_SLICE)
        for (int k = 0; gv && k < jx_ndim(gv[s->a]); k++)
          fprintf(stderr, "; %lld:%lld:%lld", (long long)s->start[k], (long long)s->stop[k],
                  (long long)s->step[k]);
      if (s->op == S_CONCAT || s->op == S_TAKE || s->op == S_ONEHOT)
        fprintf(stderr, "; axis %d n %d idx %d", s->axis, s->n, s->idx);
      if (s->op == S_ASTYPE) fprintf(stderr, "; %s", jx_dtype_name(s->dt));
    }
    fprintf(stderr, ") : %s\n", t);
  }
  fprintf(stderr, "    outputs:");
  for (int i = 0; i < p->nout; i++) fprintf(stderr, " v%d", p->outs[i]);
  fprintf(stderr, "%s\n", p->tuple_out ? " (tuple)" : "");
}

/* ------------------------------------------------------------ generator
 * The generator evaluates as it goes (gv: concrete values per slot), so
 * every choice is made on real shapes and magnitudes: ops whose result is
 * an error, too big, or numerically wild (|v| > 1e4) are dropped. */
typedef struct {
  program *p;
  jx_t *gv;   /* per slot: the value on the generator's arguments */
  jx_t *args; /* per argument */
  int rejects[S_NOPS];
  char first_reject[S_NOPS][160];
} gen;

static bool is_bool(jx_t x) { return jx_dtype_of(x) == JX_BOOL; }

static int add_input(gen *g, jx_dtype dt, int nd, const int64_t *shape) {
  program *p = g->p;
  if (p->nargs >= MAXARGS || p->nslot >= MAXSLOT) return -1;
  slot *s = &p->s[p->nslot];
  memset(s, 0, sizeof *s);
  s->op = S_INPUT, s->a = s->b = s->c = s->idx = -1;
  s->arg = p->nargs;
  s->dt = dt, s->ndim = nd;
  memcpy(s->shape, shape, sizeof(int64_t) * (size_t)nd);
  g->args[p->nargs++] = g->gv[p->nslot] = rand_array(dt, nd, shape, -2, 2);
  return p->nslot++;
}

static int rand_dim(void) {
  double r = unif(0, 1);
  return r < 0.035 ? 0 : r < 0.3 ? 1 : 2 + rint_(3);
}

static void rand_shape(int *nd, int64_t *shape) {
  double r = unif(0, 1);
  *nd = r < 0.12 ? 0 : r < 0.4 ? 1 : r < 0.8 ? 2 : 3;
  for (int i = 0; i < *nd; i++) shape[i] = rand_dim();
}

static jx_dtype rand_dtype(jx_dtype base) {
  if (chance(0.8)) return base;
  jx_dtype all[3] = {JX_F32, JX_F64, JX_I32};
  return all[rint_(3)];
}

/* a random non-bool slot, biased to the most recent */
static int pick_operand(gen *g) {
  program *p = g->p;
  int cand[MAXSLOT], n = 0;
  for (int i = 0; i < p->nslot; i++)
    if (!is_bool(g->gv[i])) cand[n++] = i;
  if (!n) return -1;
  return chance(0.55) ? cand[n - 1] : cand[rint_(n)];
}

static bool broadcastable(jx_t a, jx_t b) {
  int na = jx_ndim(a), nb = jx_ndim(b), n = na > nb ? na : nb;
  int64_t out = 1;
  for (int i = 0; i < n; i++) {
    int64_t da = i < n - na ? 1 : jx_shape(a)[i - (n - na)], db = i < n - nb ? 1 : jx_shape(b)[i - (n - nb)];
    if (da != db && da != 1 && db != 1) return false;
    out *= da == 1 ? db : da;
  }
  return out <= MAXELEMS;
}

/* a second operand for a binary op on slot a: a compatible slot, a new
 * input of a compatible shape, or a itself */
static int pick_partner(gen *g, int a, bool allow_bool) {
  program *p = g->p;
  jx_t x = g->gv[a];
  double r = unif(0, 1);
  if (r < 0.45) {
    int cand[MAXSLOT], n = 0;
    for (int i = 0; i < p->nslot; i++)
      if ((allow_bool || !is_bool(g->gv[i])) && broadcastable(x, g->gv[i])) cand[n++] = i;
    if (n) return cand[rint_(n)];
  }
  if (r < 0.8 && p->nargs < MAXARGS) {
    int nd = jx_ndim(x), drop = nd ? rint_(nd + 1) : 0;
    int64_t shape[JX_MAX_RANK];
    for (int i = drop; i < nd; i++) shape[i - drop] = chance(0.3) ? 1 : jx_shape(x)[i];
    jx_dtype dt = is_bool(x) ? JX_F32 : rand_dtype(jx_dtype_of(x));
    int k = add_input(g, dt, nd - drop, shape);
    if (k >= 0) return k;
  }
  return a;
}

static int bool_slot_for(gen *g, int a) {
  int cand[MAXSLOT], n = 0;
  for (int i = 0; i < g->p->nslot; i++)
    if (is_bool(g->gv[i]) && broadcastable(g->gv[a], g->gv[i])) cand[n++] = i;
  return n ? cand[rint_(n)] : -1;
}

/* random factorization of n into nd dims (n == 0: one dim is 0) */
static void rand_factor_shape(int64_t n, int *ndim, int64_t *shape) {
  int nd = rint_(4);
  if (n == 0 && nd == 0) nd = 1;
  for (int i = 0; i < nd; i++) shape[i] = 1;
  if (n == 0) {
    for (int i = 0; i < nd; i++) shape[i] = rint_(3) + 1;
    shape[rint_(nd)] = 0;
  } else if (nd > 0) {
    int64_t m = n;
    for (int64_t f = 2; m > 1;) {
      if (m % f == 0) {
        shape[rint_(nd)] *= f;
        m /= f;
      } else {
        f++;
      }
    }
    if (chance(0.3)) shape[rint_(nd)] = -1;
  } else if (n != 1) {
    nd = 1, shape[0] = n;
  }
  *ndim = nd;
}

static bool fill_slot(gen *g, slot *s) {
  program *p = g->p;
  int a = pick_operand(g);
  if (a < 0) return false;
  s->a = a;
  jx_t x = g->gv[a];
  int nd = jx_ndim(x);
  const int64_t *sh = jx_shape(x);
  switch (s->op) {
    case S_ADD:
    case S_SUB:
    case S_MUL:
    case S_DIV:
    case S_MAXIMUM:
      s->b = pick_partner(g, a, false);
      if (chance(0.5)) {
        int t = s->a;
        s->a = s->b;
        s->b = t;
      }
      return true;
    case S_SCALAR:
      s->sub = rint_(5);
      s->sint = jx_dtype_of(x) == JX_I32 && chance(0.6);
      s->s = s->sint ? (double)(rint_(5) - 2) : (double)(rint_(9) - 4) * 0.5 + 0.25;
      return true;
    case S_EXP: return max_abs(x) < 6;
    case S_TANH:
    case S_LOG:
    case S_SIGMOID: return true;
    case S_CMP:
      s->sub = rint_(6);
      if (chance(0.4))
        s->b = -1, s->s = unif(-1, 1);
      else
        s->b = pick_partner(g, a, false);
      return true;
    case S_WHERE:
      s->b = pick_partner(g, a, false);
      s->c = bool_slot_for(g, a);
      if (s->c < 0 && p->nslot < MAXSLOT - 2) { /* make a condition: compare a slot with a scalar */
        slot *c = &p->s[p->nslot];
        memset(c, 0, sizeof *c);
        c->op = S_CMP, c->a = chance(0.5) ? a : s->b, c->b = c->c = c->idx = -1;
        c->sub = rint_(4), c->s = unif(-1, 1);
        jx_t cv = apply(c, g->gv);
        if (!jx_ok(cv)) return false;
        g->gv[p->nslot] = cv;
        s->c = p->nslot++;
      }
      return s->c >= 0 && broadcastable(g->gv[s->a], g->gv[s->c]) && broadcastable(g->gv[s->b], g->gv[s->c]);
    case S_ASTYPE: {
      for (int i = p->nslot - 1; i >= 0 && chance(0.5); i--)
        if (is_bool(g->gv[i])) {
          s->a = i;
          break;
        }
      jx_dtype from = jx_dtype_of(g->gv[s->a]);
      /* float -> int would turn tiny reduction-order differences into unit ones */
      jx_dtype to[3] = {JX_F32, JX_F64, JX_I32};
      s->dt = to[rint_(from == JX_BOOL || from == JX_I32 ? 3 : 2)];
      return s->dt != from;
    }
    case S_SUM:
    case S_RMAX: {
      s->keep = chance(0.5);
      s->naxes = 0;
      for (int d = 0; d < nd; d++)
        if (chance(0.5)) s->axes[s->naxes++] = chance(0.3) ? d - nd : d;
      if (nd && !s->naxes && chance(0.8)) s->axes[s->naxes++] = rint_(nd);
      return true;
    }
    case S_TRANSPOSE: {
      if (nd < 2 && chance(0.8)) return false;
      s->perm_null = chance(0.2);
      s->naxes = nd;
      for (int d = 0; d < nd; d++) s->axes[d] = d;
      for (int d = nd - 1; d > 0; d--) {
        int k = rint_(d + 1), t = s->axes[d];
        s->axes[d] = s->axes[k], s->axes[k] = t;
      }
      return true;
    }
    case S_RESHAPE: rand_factor_shape(jx_size(x), &s->ndim, s->shape); return true;
    case S_BCAST: {
      int lead = rint_(3);
      if (nd + lead > 4) lead = 0;
      s->ndim = nd + lead;
      for (int i = 0; i < lead; i++) s->shape[i] = 1 + rint_(3);
      for (int i = 0; i < nd; i++) s->shape[lead + i] = sh[i] == 1 ? rint_(4) : sh[i];
      return shape_size(s->ndim, s->shape) <= MAXELEMS;
    }
    case S_SLICE: {
      if (nd == 0) return false;
      static const int64_t steps[] = {1, 1, 1, 2, 3, -1, -2};
      for (int d = 0; d < nd; d++) {
        int64_t n = sh[d];
        s->step[d] = steps[rint_(7)];
        s->start[d] = chance(0.2) ? (s->step[d] > 0 ? 0 : -1) : (int64_t)rint_((int)(2 * n + 3)) - n - 1;
        s->stop[d] = chance(0.3) ? JX_END : (int64_t)rint_((int)(2 * n + 3)) - n - 1;
      }
      return true;
    }
    case S_CONCAT: {
      if (nd == 0) return false;
      s->axis = rint_(nd);
      s->n = 2 + (chance(0.3) ? 1 : 0);
      int *parts[2] = {&s->b, &s->c};
      for (int k = 0; k < s->n - 1; k++) {
        int cand[MAXSLOT], n = 0;
        for (int i = 0; i < p->nslot; i++) {
          jx_t y = g->gv[i];
          if (is_bool(y) || jx_ndim(y) != nd) continue;
          bool ok = true;
          for (int d = 0; d < nd && ok; d++) ok = d == s->axis || jx_shape(y)[d] == sh[d];
          if (ok) cand[n++] = i;
        }
        if (n && chance(0.6)) {
          *parts[k] = cand[rint_(n)];
        } else {
          int64_t shape[JX_MAX_RANK];
          memcpy(shape, sh, sizeof(int64_t) * (size_t)nd);
          shape[s->axis] = chance(0.1) ? 0 : 1 + rint_(2);
          *parts[k] = add_input(g, rand_dtype(jx_dtype_of(x)), nd, shape);
          if (*parts[k] < 0) *parts[k] = a;
        }
      }
      return true;
    }
    case S_DOT:
    case S_MATMUL: {
      if (nd == 0 || nd > (s->op == S_DOT ? 2 : 3)) return false;
      int64_t k = sh[nd - 1];
      int cand[MAXSLOT], n = 0;
      for (int i = 0; i < p->nslot; i++) {
        jx_t y = g->gv[i];
        int ny = jx_ndim(y);
        if (is_bool(y) || ny < 1 || ny > 2) continue;
        if (jx_shape(y)[ny == 1 ? 0 : ny - 2] == k) cand[n++] = i;
      }
      if (n && chance(0.5)) {
        s->b = cand[rint_(n)];
      } else {
        int64_t shape[3];
        int nb;
        if (chance(0.3)) {
          nb = 1, shape[0] = k;
        } else if (s->op == S_MATMUL && chance(0.35)) { /* batched [B, k, n] */
          nb = 3, shape[0] = nd == 3 && chance(0.7) ? sh[0] : 1 + rint_(3), shape[1] = k,
          shape[2] = 1 + rint_(3);
        } else {
          nb = 2, shape[0] = k, shape[1] = 1 + rint_(3);
        }
        s->b = add_input(g, rand_dtype(jx_dtype_of(x)), nb, shape);
        if (s->b < 0) return false;
      }
      return true;
    }
    case S_TAKE:
    case S_ONEHOT: {
      if (s->op == S_TAKE) {
        if (nd == 0) return false;
        s->axis = rint_(nd);
      } else {
        s->n = 1 + rint_(4);
      }
      int64_t lim = s->op == S_TAKE ? sh[s->axis] : s->n;
      s->idx = -1;
      for (int i = p->nslot - 1; i >= 0; i--)
        if (jx_dtype_of(g->gv[i]) == JX_I32 && chance(0.5)) {
          s->idx = i;
          break;
        }
      if (s->idx < 0) {
        s->ndim = rint_(3);
        for (int d = 0; d < s->ndim; d++) s->shape[d] = rint_(3) + (d == 0);
        int64_t m = shape_size(s->ndim, s->shape);
        for (int64_t i = 0; i < m; i++) s->idata[i] = (int32_t)(rint_((int)(2 * lim + 4)) - lim - 2);
      }
      if (s->op == S_ONEHOT) s->a = -1; /* labels only */
      return true;
    }
    default: return false;
  }
}

static const double op_weight[S_NOPS] = {
    [S_ADD] = 3,         [S_SUB] = 2,       [S_MUL] = 3,     [S_DIV] = 1.5,   [S_MAXIMUM] = 1.5,
    [S_SCALAR] = 3,      [S_EXP] = 1,       [S_TANH] = 1.5,  [S_LOG] = 1,     [S_SIGMOID] = 1,
    [S_CMP] = 1.5,       [S_WHERE] = 2,     [S_ASTYPE] = 1,  [S_SUM] = 2.5,   [S_RMAX] = 1.5,
    [S_TRANSPOSE] = 1.5, [S_RESHAPE] = 1.5, [S_BCAST] = 1.5, [S_SLICE] = 2,   [S_CONCAT] = 1.5,
    [S_DOT] = 1.5,       [S_MATMUL] = 1,    [S_TAKE] = 1.5,  [S_ONEHOT] = 0.7};

static sop pick_op(void) {
  double tot = 0;
  for (int i = 0; i < S_NOPS; i++) tot += op_weight[i];
  double r = unif(0, tot);
  for (int i = 1; i < S_NOPS; i++) {
    if (r < op_weight[i]) return (sop)i;
    r -= op_weight[i];
  }
  return S_ADD;
}

static void note_value(program *p, jx_t v) {
  jx_dtype dt = jx_dtype_of(v);
  if (dt == JX_F32) p->has_f32 = true;
  if (dt == JX_F32 || dt == JX_F64) {
    double m = max_abs(v);
    if (m > p->scale) p->scale = m;
  }
}

/* Build a program of 5..15 ops; args gets one array per argument. All
 * values live in the caller's pool. */
static void gen_program(gen *g, program *p, jx_t *gv, jx_t *args, uint64_t seed) {
  rng_state = seed * 0x51ED27u + 17;
  memset(p, 0, sizeof *p);
  g->p = p, g->gv = gv, g->args = args;
  jx_dtype base = chance(0.42) ? JX_F32 : chance(0.75) ? JX_F64 : JX_I32;
  int nd;
  int64_t shape[JX_MAX_RANK];
  rand_shape(&nd, shape);
  add_input(g, base, nd, shape);
  if (chance(0.4)) {
    rand_shape(&nd, shape);
    add_input(g, rand_dtype(base), nd, shape);
  }
  int target = 5 + rint_(11), ops = 0;
  for (int attempt = 0; ops < target && attempt < 400 && p->nslot < MAXSLOT - 4; attempt++) {
    int nslot0 = p->nslot, nargs0 = p->nargs;
    slot s;
    memset(&s, 0, sizeof s);
    s.a = s.b = s.c = s.idx = -1;
    s.op = pick_op();
    bool ok = fill_slot(g, &s);
    jx_t v = ok ? apply(&s, gv) : NULL;
    if (ok && !jx_ok(v)) {
      if (!g->rejects[s.op]++)
        snprintf(g->first_reject[s.op], sizeof g->first_reject[s.op], "%s", jx_error(v));
      ok = false;
    }
    if (ok && jx_size(v) > MAXELEMS) ok = false;
    /* keep size-0 values an edge case, not the rule (random slices are often empty) */
    if (ok && jx_size(v) == 0 && s.a >= 0 && jx_size(gv[s.a]) > 0 && chance(0.7)) ok = false;
    if (ok && !is_bool(v)) {
      double m = max_abs(v);
      ok = m <= 1e4; /* also rejects inf/nan */
    }
    if (!ok) { /* roll back inputs made for this op */
      p->nslot = nslot0, p->nargs = nargs0;
      continue;
    }
    p->s[p->nslot] = s;
    gv[p->nslot++] = v;
    ops++;
  }
  for (int i = 0; i < p->nslot; i++) note_value(p, gv[i]);
  /* outputs: the last value, sometimes another intermediate, an input or a duplicate */
  p->outs[p->nout++] = p->nslot - 1;
  if (chance(0.35)) p->outs[p->nout++] = rint_(p->nslot);
  if (chance(0.1)) p->outs[p->nout++] = p->nslot - 1;
  p->tuple_out = p->nout > 1 || chance(0.1);
}

/* Run program k: jit vs eager on the generator's arguments, and (for some)
 * again on fresh values of the same shapes, which must not retrace. */
static int gen_rejects[S_NOPS];
static char gen_first_reject[S_NOPS][160];
static int op_counts[S_NOPS];
static int prog_has[5]; /* programs with a size-0 value, a 0-d value, an i32, an f64, an f32 value */

static int run_random_program(uint64_t seed, bool verbose) {
  jx_pool_push();
  program *p = calloc(1, sizeof *p);
  jx_t gv[MAXSLOT], args[MAXARGS];
  gen g;
  memset(&g, 0, sizeof g);
  gen_program(&g, p, gv, args, seed);
  for (int i = 0; i < S_NOPS; i++) {
    if (g.rejects[i] && !gen_rejects[i])
      snprintf(gen_first_reject[i], sizeof gen_first_reject[i], "%s", g.first_reject[i]);
    gen_rejects[i] += g.rejects[i];
  }
  for (int i = 0; i < p->nslot; i++) op_counts[p->s[i].op]++;
  bool has[5] = {0};
  for (int i = 0; i < p->nslot; i++) {
    jx_t v = gv[i];
    has[0] |= jx_size(v) == 0, has[1] |= jx_ndim(v) == 0, has[2] |= jx_dtype_of(v) == JX_I32;
    has[3] |= jx_dtype_of(v) == JX_F64, has[4] |= jx_dtype_of(v) == JX_F32;
  }
  for (int i = 0; i < 5; i++) prog_has[i] += has[i];
  double rtol = p->has_f32 ? 1e-5 : 1e-12, atol = rtol * (p->scale > 1 ? p->scale : 1);
  jx_fn *f = jx_fn_new(prog_body, p->nargs, p);
  jx_fn *jf = jx_jit(f);
  int ok = 1;
  for (int round = 0; round < (seed % 4 == 0 ? 2 : 1); round++) {
    if (round) /* new values, same shapes and dtypes */
      for (int i = 0; i < p->nslot; i++)
        if (p->s[i].op == S_INPUT)
          args[p->s[i].arg] = rand_array(p->s[i].dt, p->s[i].ndim, p->s[i].shape, -2, 2);
    jx_t e = jx_call(f, args), j = jx_call(jf, args);
    char what[64];
    snprintf(what, sizeof what, "program %llu round %d", (unsigned long long)seed, round);
    int same = jx_ok(e) && same_value(j, e, rtol, atol, what);
    CHECKF(jx_ok(e), "program %llu: eager failed: %s", (unsigned long long)seed, jx_error(e));
    CHECKF(same, "program %llu round %d: jit differs from eager (rtol %g atol %g)", (unsigned long long)seed,
           round, rtol, atol);
    if (!same) {
      print_program(p, gv);
      char *jp = jx_make_jaxpr(f, args);
      fprintf(stderr, "%s\n", jp ? jp : "(no jaxpr)");
      free(jp);
    }
    ok &= same;
  }
  CHECKF(jx_jit_trace_count(jf) == 1, "program %llu traced %d times", (unsigned long long)seed,
         jx_jit_trace_count(jf));
  if (verbose) print_program(p, gv);
  jx_fn_free(jf);
  jx_fn_free(f);
  free(p);
  jx_pool_pop();
  return ok;
}

static void test_random_programs(int nprog, uint64_t first) {
  double t0 = now_s();
  int bad = 0;
  for (int k = 0; k < nprog; k++) bad += !run_random_program(first + (uint64_t)k, false);
  printf("random programs: %d run, %d differ, %.1f s\n", nprog, bad, now_s() - t0);
  printf("  programs with a size-0 value %d, a 0-d value %d, i32 %d, f64 %d, f32 %d\n", prog_has[0],
         prog_has[1], prog_has[2], prog_has[3], prog_has[4]);
  printf("  ops used:");
  for (int i = 1; i < S_NOPS; i++) printf(" %s %d", sop_names[i], op_counts[i]);
  printf("\n");
  for (int i = 1; i < S_NOPS; i++)
    if (gen_rejects[i])
      printf("  generator dropped %d %s (eager error), e.g. %s\n", gen_rejects[i], sop_names[i],
             gen_first_reject[i]);
}

/* ========================================================== trace counts */
static jx_t poly(const jx_t *a, void *u) {
  (void)u;
  return jx_add(jx_mul(a[0], a[0]), jx_mul(a[1], jx_scalar(3.0)));
}
/* f(tree) = sum of its leaves (any structure) */
static jx_t tree_sum_leaves(jx_t t) {
  if (!jx_is_tree(t)) return jx_sum(t);
  jx_t acc = jx_scalar(0.0);
  for (int i = 0; i < jx_len(t); i++) acc = jx_add(acc, tree_sum_leaves(jx_at(t, i)));
  return acc;
}
static jx_t tree_fn(const jx_t *a, void *u) {
  (void)u;
  return tree_sum_leaves(a[0]);
}

static void test_trace_counts(void) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(poly, 2, NULL), *jf = jx_jit(f);
  jx_t x = rand_array(JX_F32, JX_SHAPE(3, 4), -1, 1), y = rand_array(JX_F32, JX_SHAPE(4), -1, 1);
  for (int i = 0; i < 3; i++) {
    jx_t r = JX_CALL(jf, x, y);
    CHECK(same_value(r, JX_CALL(f, x, y), 0, 0, "poly"));
  }
  CHECK(jx_jit_trace_count(jf) == 1);
  /* different values, same avals: no retrace */
  JX_CALL(jf, rand_array(JX_F32, JX_SHAPE(3, 4), -1, 1), rand_array(JX_F32, JX_SHAPE(4), -1, 1));
  CHECK(jx_jit_trace_count(jf) == 1);
  /* new shape */
  JX_CALL(jf, rand_array(JX_F32, JX_SHAPE(2, 4), -1, 1), y);
  CHECK(jx_jit_trace_count(jf) == 2);
  /* new dtype */
  JX_CALL(jf, jx_astype(x, JX_F64), y);
  CHECK(jx_jit_trace_count(jf) == 3);
  /* 0-d: weak vs strong f32 scalars are different signatures, as in JAX */
  jx_t weak = jx_scalar(2.0), strong = jx_scalar_of(JX_F32, 2.0);
  CHECK(jx_is_weak(weak) && !jx_is_weak(strong));
  jx_t rw = JX_CALL(jf, weak, weak);
  int n0 = jx_jit_trace_count(jf);
  CHECK(n0 == 4);
  jx_t rs = JX_CALL(jf, strong, strong);
  CHECK(jx_jit_trace_count(jf) == 5);
  JX_CALL(jf, jx_scalar(5.0), jx_scalar(-1.0));
  JX_CALL(jf, jx_scalar_of(JX_F32, 5.0), jx_scalar_of(JX_F32, 5.0));
  CHECK(jx_jit_trace_count(jf) == 5);
  /* the result keeps the weak type through jit, like eager */
  CHECK(same_value(rw, JX_CALL(f, weak, weak), 0, 0, "weak scalars"));
  CHECK(same_value(rs, JX_CALL(f, strong, strong), 0, 0, "strong scalars"));
  CHECK(jx_is_weak(rw) && !jx_is_weak(rs));
  /* weak int scalar vs strong i32 */
  JX_CALL(jf, jx_scalar_int(2), jx_scalar_int(3));
  JX_CALL(jf, jx_scalar_of(JX_I32, 2), jx_scalar_of(JX_I32, 3));
  CHECK(jx_jit_trace_count(jf) == 7);
  /* earlier signatures are still cached */
  JX_CALL(jf, x, y);
  JX_CALL(jf, jx_astype(x, JX_F64), y);
  CHECK(jx_jit_trace_count(jf) == 7);
  /* grad and vmap of the jitted function at a cached signature trace the
   * jaxpr's derivatives, not f again */
  jx_fn *sf = jx_fn_new(tree_fn, 1, NULL), *jsf = jx_jit(sf);
  jx_t a = rand_array(JX_F64, JX_SHAPE(3), -1, 1), b = rand_array(JX_F64, JX_SHAPE(2, 2), -1, 1);
  jx_t t1 = JX_TUPLE(a, b), l1 = JX_LIST(a, b), t2 = JX_TUPLE(a, JX_TUPLE(b)), t3 = JX_TUPLE(b, a);
  double want = jx_item(jx_add(jx_sum(a), jx_sum(b)));
  CHECK_CLOSE(jx_item(JX_CALL(jsf, t1)), want, 1e-14, 0);
  CHECK(jx_jit_trace_count(jsf) == 1);
  CHECK_CLOSE(jx_item(JX_CALL(jsf, JX_TUPLE(jx_add(a, jx_scalar(0.0)), b))), want, 1e-14, 0);
  CHECK(jx_jit_trace_count(jsf) == 1);
  CHECK_CLOSE(jx_item(JX_CALL(jsf, l1)), want, 1e-14, 0);
  CHECK(jx_jit_trace_count(jsf) == 2); /* list vs tuple */
  CHECK_CLOSE(jx_item(JX_CALL(jsf, t2)), want, 1e-14, 0);
  CHECK(jx_jit_trace_count(jsf) == 3); /* nesting */
  CHECK_CLOSE(jx_item(JX_CALL(jsf, t3)), want, 1e-14, 0);
  CHECK(jx_jit_trace_count(jsf) == 4); /* leaf order */
  CHECK_CLOSE(jx_item(JX_CALL(jsf, JX_TUPLE(a, b, a))), want + jx_item(jx_sum(a)), 1e-14, 0);
  CHECK(jx_jit_trace_count(jsf) == 5); /* arity */
  JX_CALL(jsf, t1), JX_CALL(jsf, l1), JX_CALL(jsf, t2);
  CHECK(jx_jit_trace_count(jsf) == 5);
  /* under grad/vmap the avals are unchanged: no retrace */
  jx_fn *gj = jx_grad(jsf, 0);
  jx_t gt = JX_CALL(gj, t1);
  CHECK(same_value(gt, JX_TUPLE(jx_ones_like(a), jx_ones_like(b)), 0, 0, "grad(jit(sum of leaves))"));
  CHECK(jx_jit_trace_count(jsf) == 5);
  jx_fn *vf = jx_vmap(jf, NULL, 0);
  JX_CALL(vf, rand_array(JX_F32, JX_SHAPE(5, 3, 4), -1, 1), rand_array(JX_F32, JX_SHAPE(5, 4), -1, 1));
  CHECK(jx_jit_trace_count(jf) == 7);
  jx_fn_free(vf), jx_fn_free(gj), jx_fn_free(jsf), jx_fn_free(sf), jx_fn_free(jf), jx_fn_free(f);
  jx_pool_pop();
}

/* ========================================================== compositions */
static jx_t smooth(const jx_t *a, void *u) { /* f64 scalar of (x[3,4], y[4]) */
  (void)u;
  jx_t x = a[0], y = a[1];
  jx_t t = jx_mul(jx_tanh(jx_mul(x, y)), jx_exp(jx_neg(x)));
  return jx_sum(jx_add(t, jx_log(jx_add(jx_abs(x), jx_scalar(1.0)))));
}

static jx_t per_example(const jx_t *a, void *u) { /* x[3], w[3,2] -> [2] */
  (void)u;
  return jx_add(jx_tanh(jx_dot(a[0], a[1])), jx_sum(jx_mul(a[0], a[0])));
}

/* the seed's MLP */
static jx_t mlp_params(void) {
  jx_t w1 = rand_array(JX_F64, JX_SHAPE(3, 5), -1, 1), b1 = rand_array(JX_F64, JX_SHAPE(5), -1, 1);
  jx_t w2 = rand_array(JX_F64, JX_SHAPE(5, 2), -1, 1), b2 = rand_array(JX_F64, JX_SHAPE(2), -1, 1);
  return JX_LIST(JX_TUPLE(w1, b1), JX_TUPLE(w2, b2));
}

static jx_t x2sin(const jx_t *a, void *u) { /* x^2 sin x */
  (void)u;
  return jx_mul(jx_mul(a[0], a[0]), jx_sin(a[0]));
}

static jx_t outer_body(const jx_t *a, void *u) { /* calls a jitted fn at two shapes */
  jx_fn *inner = u;
  jx_t x = a[0];
  jx_t head = jx_slice(x, (int64_t[]){0}, (int64_t[]){2}, NULL);
  return jx_add(JX_CALL(inner, x), jx_sum(JX_CALL(inner, head)));
}
static jx_t inner_body(const jx_t *a, void *u) {
  (void)u;
  return jx_sin(jx_mul(a[0], jx_scalar(2.0)));
}

/* a jitted function closing over an outer transformation's tracer */
static jx_t times_y(const jx_t *a, void *u) {
  jx_t y = *(jx_t *)u;
  return jx_sum(jx_mul(jx_sin(a[0]), y));
}
static jx_t closes_over(const jx_t *a, void *u) { /* (y 0-d, x[4]) */
  (void)u;
  jx_t y = a[0];
  jx_fn *f = jx_fn_new(times_y, 1, &y), *jf = jx_jit(f);
  jx_t r = JX_CALL(jf, a[1]);
  jx_fn_free(jf), jx_fn_free(f);
  return r;
}

static void test_closure_over_tracer(void) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(closes_over, 2, NULL);
  jx_fn *gy = jx_grad(f, 0), *gx = jx_grad(f, 1), *jgy = jx_jit(gy), *jf = jx_jit(f);
  jx_fn *vf = jx_vmap(f, (int[]){0, JX_NONE}, 0);
  jx_t y = jx_scalar_of(JX_F64, 1.7), x = rand_array(JX_F64, JX_SHAPE(4), -1, 1);
  jx_t sinsum = jx_sum(jx_sin(x));
  CHECK_CLOSE(jx_item(JX_CALL(f, y, x)), 1.7 * jx_item(sinsum), 1e-14, 0);
  CHECK_CLOSE(jx_item(JX_CALL(jf, y, x)), 1.7 * jx_item(sinsum), 1e-14, 0);
  CHECK_CLOSE(jx_item(JX_CALL(gy, y, x)), jx_item(sinsum), 1e-14, 0);
  CHECK_CLOSE(jx_item(JX_CALL(jgy, y, x)), jx_item(sinsum), 1e-14, 0);
  CHECK(same_value(JX_CALL(gx, y, x), jx_mul(jx_cos(x), y), 1e-14, 1e-15, "grad x of a closure over y"));
  jx_t ys = jx_array(JX_F64, JX_SHAPE(3), (double[]){1, 2, -1});
  jx_t vr = JX_CALL(vf, ys, x);
  CHECK(same_value(vr, jx_mul(ys, sinsum), 1e-14, 1e-15, "vmap over the closed-over value"));
  jx_fn_free(vf), jx_fn_free(jf), jx_fn_free(jgy), jx_fn_free(gx), jx_fn_free(gy), jx_fn_free(f);
  jx_pool_pop();
}

static void test_compositions(void) {
  jx_pool_push();
  const double tol = 1e-12;
  /* grad(jit(f)) == jit(grad(f)) == grad(f) == jit(grad(jit(f))) */
  jx_fn *f = jx_fn_new(smooth, 2, NULL), *jf = jx_jit(f);
  jx_fn *g = jx_grad(f, 0), *gj = jx_grad(jf, 0), *jg = jx_jit(g), *jgj0 = jx_grad(jf, 0),
        *jgj = jx_jit(jgj0);
  jx_fn *g1 = jx_grad(jf, 1);
  jx_t x = rand_array(JX_F64, JX_SHAPE(3, 4), -1, 1), y = rand_array(JX_F64, JX_SHAPE(4), -1, 1);
  jx_t ref = JX_CALL(g, x, y);
  CHECK(jx_ok(ref) && jx_ndim(ref) == 2 && jx_dtype_of(ref) == JX_F64);
  CHECK(same_value(JX_CALL(gj, x, y), ref, tol, tol, "grad(jit(f))"));
  CHECK(same_value(JX_CALL(jg, x, y), ref, tol, tol, "jit(grad(f))"));
  CHECK(same_value(JX_CALL(jgj, x, y), ref, tol, tol, "jit(grad(jit(f)))"));
  jx_fn *g1e = jx_grad(f, 1);
  CHECK(same_value(JX_CALL(g1, x, y), JX_CALL(g1e, x, y), tol, tol, "grad(jit(f), 1)"));
  CHECK(jx_jit_trace_count(jf) == 1 && jx_jit_trace_count(jg) == 1);
  jx_fn_free(g1e), jx_fn_free(g1), jx_fn_free(jgj), jx_fn_free(jgj0), jx_fn_free(jg), jx_fn_free(gj);
  jx_fn_free(g), jx_fn_free(jf), jx_fn_free(f);

  /* vmap(jit(f)) == jit(vmap(f)) == vmap(f) == a loop; mapped on axis 0 and 1 */
  jx_fn *pe = jx_fn_new(per_example, 2, NULL), *jpe = jx_jit(pe);
  int axes0[2] = {0, JX_NONE}, axes1[2] = {1, JX_NONE};
  jx_fn *v = jx_vmap(pe, axes0, 0), *vj = jx_vmap(jpe, axes0, 0), *jv = jx_jit(v);
  jx_fn *v1 = jx_vmap(jpe, axes1, 1), *v1e = jx_vmap(pe, axes1, 1);
  jx_t xs = rand_array(JX_F64, JX_SHAPE(4, 3), -1, 1), w = rand_array(JX_F64, JX_SHAPE(3, 2), -1, 1);
  jx_t vr = JX_CALL(v, xs, w);
  CHECK(jx_ok(vr) && jx_ndim(vr) == 2 && jx_shape(vr)[0] == 4 && jx_shape(vr)[1] == 2);
  CHECK(same_value(JX_CALL(vj, xs, w), vr, tol, tol, "vmap(jit(f))"));
  CHECK(same_value(JX_CALL(jv, xs, w), vr, tol, tol, "jit(vmap(f))"));
  for (int i = 0; i < 4; i++) {
    jx_t xi = jx_take(xs, jx_scalar_int(i), 0);
    jx_t want = JX_CALL(pe, xi, w), got = jx_take(vr, jx_scalar_int(i), 0);
    CHECK(same_value(got, want, tol, tol, "vmap vs loop"));
  }
  jx_t xt = jx_transpose(xs, NULL);
  CHECK(same_value(JX_CALL(v1, xt, w), JX_CALL(v1e, xt, w), tol, tol, "vmap(jit(f)) in_axes 1 out_axis 1"));
  CHECK(same_value(JX_CALL(v1, xt, w), jx_transpose(vr, NULL), tol, tol, "vmap axis 1 vs axis 0"));
  CHECK(jx_jit_trace_count(jpe) == 1);
  jx_fn_free(v1e), jx_fn_free(v1), jx_fn_free(jv), jx_fn_free(vj), jx_fn_free(v), jx_fn_free(jpe),
      jx_fn_free(pe);

  /* the seed's per-example gradients: jit(vmap(grad(loss), (None, 0, 0))) */
  jx_fn *loss = jx_fn_new(seed_loss, 3, NULL), *gl = jx_grad(loss, 0), *jgl = jx_jit(gl);
  jx_fn *vgl = jx_vmap(jgl, (int[]){JX_NONE, 0, 0}, 0), *perex = jx_jit(vgl);
  jx_t params = mlp_params();
  jx_t inputs = rand_array(JX_F64, JX_SHAPE(6, 3), -1, 1),
       targets = rand_array(JX_F64, JX_SHAPE(6, 2), -1, 1);
  jx_t pg = JX_CALL(perex, params, inputs, targets);
  CHECKF(jx_ok(pg) && jx_len(pg) == 2 && jx_len(jx_at(pg, 0)) == 2, "per-example grads: %s",
         jx_ok(pg) ? "bad structure" : jx_error(pg));
  for (int i = 0; i < 6 && jx_ok(pg); i++) {
    jx_t xi = jx_take(inputs, jx_scalar_int(i), 0), ti = jx_take(targets, jx_scalar_int(i), 0);
    jx_t gi = JX_CALL(gl, params, xi, ti);
    for (int l = 0; l < 2; l++)
      for (int k = 0; k < 2; k++) {
        jx_t got = jx_take(jx_at(jx_at(pg, l), k), jx_scalar_int(i), 0);
        CHECK(same_value(got, jx_at(jx_at(gi, l), k), tol, tol, "per-example grad vs loop"));
      }
  }
  JX_CALL(perex, params, inputs, targets);
  CHECK(jx_jit_trace_count(perex) == 1);
  /* and the batch gradient is the sum of the per-example ones */
  jx_t bg = JX_CALL(jgl, params, inputs, targets);
  CHECK(jx_ok(bg) &&
        same_value(jx_at(jx_at(bg, 0), 0), jx_sum_axes(jx_at(jx_at(pg, 0), 0), 1, (int[]){0}, false), tol,
                   tol, "batch grad = sum of per-example"));

  /* value_and_grad under jit: (value, grad tree) */
  jx_fn *vg = jx_value_and_grad(loss, 0), *jvg = jx_jit(vg);
  jx_t out = JX_CALL(jvg, params, inputs, targets), eout = JX_CALL(vg, params, inputs, targets);
  CHECKF(jx_ok(out) && jx_is_tree(out) && jx_len(out) == 2, "jit(value_and_grad): %s",
         jx_ok(out) ? "not a pair" : jx_error(out));
  if (jx_ok(out) && jx_len(out) == 2) {
    CHECK(jx_ndim(jx_at(out, 0)) == 0);
    CHECK_CLOSE(jx_item(jx_at(out, 0)), jx_item(JX_CALL(loss, params, inputs, targets)), tol, 0);
    jx_t gt = jx_at(out, 1);
    CHECK(jx_is_tree(gt) && jx_len(gt) == 2 && jx_len(jx_at(gt, 0)) == 2 && jx_len(jx_at(gt, 1)) == 2);
    CHECK(same_value(out, eout, tol, tol, "jit(value_and_grad) vs value_and_grad"));
    CHECK(same_value(gt, JX_CALL(gl, params, inputs, targets), tol, tol, "value_and_grad's grad vs grad"));
  }
  jx_fn_free(jvg), jx_fn_free(vg), jx_fn_free(perex), jx_fn_free(vgl), jx_fn_free(jgl), jx_fn_free(gl);
  jx_fn_free(loss);

  /* jit inside jit: the inner function traces once per signature, also
   * when it is later called directly at a signature seen inside */
  jx_fn *in_f = jx_fn_new(inner_body, 1, NULL), *jin = jx_jit(in_f);
  jx_fn *out_f = jx_fn_new(outer_body, 1, jin), *jout = jx_jit(out_f);
  jx_t v5 = rand_array(JX_F32, JX_SHAPE(5), -2, 2);
  jx_t want = JX_CALL(out_f, v5); /* outer eager, inner jitted */
  jx_t got = JX_CALL(jout, v5);
  CHECK(same_value(got, want, 1e-6, 1e-6, "jit inside jit"));
  jx_t manual =
      jx_add(jx_sin(jx_mul(v5, jx_scalar(2.0))),
             jx_sum(jx_sin(jx_mul(jx_slice(v5, (int64_t[]){0}, (int64_t[]){2}, NULL), jx_scalar(2.0)))));
  CHECK(same_value(got, manual, 1e-6, 1e-6, "jit inside jit vs by hand"));
  JX_CALL(jout, rand_array(JX_F32, JX_SHAPE(5), -2, 2));
  CHECK(jx_jit_trace_count(jout) == 1);
  CHECK(jx_jit_trace_count(jin) == 2);
  JX_CALL(jin, rand_array(JX_F32, JX_SHAPE(2), -1, 1));
  CHECK(jx_jit_trace_count(jin) == 2);
  /* grad through nested jit */
  jx_fn *sum_out = jx_jit(jout); /* jit(jit(...)) */
  CHECK(same_value(JX_CALL(sum_out, v5), got, 0, 0, "jit(jit(f))"));
  jx_fn_free(sum_out), jx_fn_free(jout), jx_fn_free(out_f), jx_fn_free(jin), jx_fn_free(in_f);

  /* grad of grad (and a third) through jit, against the closed forms */
  jx_fn *h = jx_fn_new(x2sin, 1, NULL), *jh = jx_jit(h);
  jx_fn *d1 = jx_grad(jh, 0), *d2 = jx_grad(d1, 0), *d3 = jx_grad(d2, 0);
  jx_fn *e1 = jx_grad(h, 0), *e2 = jx_grad(e1, 0), *je2 = jx_jit(e2);
  jx_fn *jd1 = jx_jit(d1), *d2j = jx_grad(jd1, 0), *jd2j = jx_jit(d2j); /* jit(grad(jit(grad(jit f)))) */
  for (int i = 0; i < 3; i++) {
    double t = -1.3 + 1.1 * i;
    jx_t xt0 = jx_scalar_of(JX_F64, t);
    double f2 = 2 * sin(t) + 4 * t * cos(t) - t * t * sin(t);
    double f3 = 6 * cos(t) - 6 * t * sin(t) - t * t * cos(t);
    CHECK_CLOSE(jx_item(JX_CALL(d1, xt0)), 2 * t * sin(t) + t * t * cos(t), 1e-13, 1e-15);
    CHECK_CLOSE(jx_item(JX_CALL(d2, xt0)), f2, 1e-13, 1e-15);
    CHECK_CLOSE(jx_item(JX_CALL(je2, xt0)), f2, 1e-13, 1e-15);
    CHECK_CLOSE(jx_item(JX_CALL(jd2j, xt0)), f2, 1e-13, 1e-15);
    CHECK_CLOSE(jx_item(JX_CALL(d3, xt0)), f3, 1e-13, 1e-14);
  }
  CHECK(jx_jit_trace_count(jh) == 1 && jx_jit_trace_count(jd2j) == 1);
  jx_fn_free(jd2j), jx_fn_free(d2j), jx_fn_free(jd1), jx_fn_free(je2), jx_fn_free(e2), jx_fn_free(e1);
  jx_fn_free(d3), jx_fn_free(d2), jx_fn_free(d1), jx_fn_free(jh), jx_fn_free(h);
  jx_pool_pop();
}

/* ========================================== reading a traced value in jit */
static char handler_msg[4096]; /* every message since the last reset, one a line */
static int handler_calls;
static void capture(const char *msg, void *u) {
  (void)u;
  handler_calls++;
  size_t n = strlen(handler_msg);
  snprintf(handler_msg + n, sizeof handler_msg - n, "%s\n", msg);
}

typedef struct {
  double item;
  int read_rc;
} read_seen;

static jx_t reads_item(const jx_t *a, void *u) {
  read_seen *r = u;
  double buf[64];
  r->item = jx_item(jx_sum(a[0]));
  r->read_rc = jx_read(a[0], JX_F64, buf, sizeof buf);
  return jx_mul(a[0], jx_scalar(r->item)); /* NaN under a transformation */
}
static jx_t branches_on_value(const jx_t *a, void *u) {
  (void)u;
  if (jx_item(jx_sum(a[0])) > 0) return jx_mul(a[0], jx_scalar(2.0)); /* NaN > 0 is false */
  return jx_neg(a[0]);
}
static jx_t bad_shapes(const jx_t *a, void *u) {
  (void)u;
  return jx_add(a[0], jx_ones(JX_F32, JX_SHAPE(3)));
}

static void test_tracer_read(void) {
  jx_pool_push();
  read_seen seen = {0, 0};
  jx_fn *f = jx_fn_new(reads_item, 1, &seen), *jf = jx_jit(f);
  jx_t x = jx_array(JX_F32, JX_SHAPE(3), (float[]){1, 2, 3});
  /* eagerly the read works */
  jx_t e = JX_CALL(f, x);
  CHECK(seen.item == 6 && seen.read_rc == 0 && jx_ok(e));
  jx_set_error_handler(capture, NULL);
  handler_calls = 0, handler_msg[0] = 0;
  jx_t r = JX_CALL(jf, x);
  jx_set_error_handler(NULL, NULL);
  CHECK(isnan(seen.item));
  CHECK(seen.read_rc != 0);
  CHECKF(!jx_ok(r), "jit of a function reading a tracer: a result instead of the read's error");
  CHECK(handler_calls >= 1);
  CHECKF(strstr(handler_msg, "item") && strstr(handler_msg, "trace") &&
             (strstr(handler_msg, "jx_where") || strstr(handler_msg, "outside")),
         "messages: '%s'", handler_msg);
  /* the same under grad and vmap */
  jx_fn *f2 = jx_fn_new(reads_item, 1, &seen), *gf = jx_grad(f2, 0);
  handler_calls = 0, handler_msg[0] = 0;
  jx_set_error_handler(capture, NULL);
  seen.item = 0;
  jx_t gr = JX_CALL(gf, jx_scalar_of(JX_F64, 2.0));
  jx_set_error_handler(NULL, NULL);
  CHECK(isnan(seen.item) && handler_calls >= 1);
  CHECK(!jx_ok(gr));
  jx_fn_free(gf), jx_fn_free(f2);
  /* control flow on a traced value: no crash, and no result computed from
   * the NaN branch; the read's error, on a second call too (issue #14;
   * more in test_regress_scalars) */
  jx_fn *b = jx_fn_new(branches_on_value, 1, NULL), *jb = jx_jit(b);
  jx_t rb = JX_CALL(jb, x);
  CHECKF(!jx_ok(rb) && strstr(jx_error(rb), "jx_item") && strstr(jx_error(rb), "jit"), "branch on NaN: %s",
         jx_ok(rb) ? "a result" : jx_error(rb));
  CHECK(!jx_ok(JX_CALL(jb, x)));
  /* an error inside the traced function comes back as an error value */
  jx_fn *bs = jx_fn_new(bad_shapes, 1, NULL), *jbs = jx_jit(bs);
  jx_t er = JX_CALL(jbs, jx_ones(JX_F32, JX_SHAPE(4)));
  CHECKF(!jx_ok(er) && strstr(jx_error(er), "add"), "%s", jx_ok(er) ? "no error" : jx_error(er));
  jx_t okr = JX_CALL(jbs, jx_ones(JX_F32, JX_SHAPE(3)));
  CHECK(jx_ok(okr) && jx_item(jx_sum(okr)) == 6);
  jx_fn_free(jbs), jx_fn_free(bs), jx_fn_free(jb), jx_fn_free(b), jx_fn_free(jf), jx_fn_free(f);
  jx_pool_pop();
}

/* ====================================== outputs that are inputs or constants */
static jx_t passthrough(const jx_t *a, void *u) {
  (void)u;
  jx_t c = jx_array(JX_F32, JX_SHAPE(2, 2), (float[]){1, 2, 3, 4}); /* a constant of the jaxpr */
  return JX_TUPLE(a[0], c, jx_mul(a[0], jx_scalar(2.0)), a[0], jx_scalar(3.0));
}
static jx_t no_args(const jx_t *a, void *u) {
  (void)a, (void)u;
  return jx_mul(jx_arange(JX_F32, 0, 5, 1), jx_scalar(2.0));
}

static void test_output_ownership(void) {
  jx_fn *f = jx_fn_new(passthrough, 1, NULL), *jf = jx_jit(f);
  jx_fn *z = jx_fn_new(no_args, 0, NULL), *jz = jx_jit(z);
  jx_t keep = NULL;
  for (int round = 0; round < 4; round++) {
    jx_pool_push();
    jx_t x = rand_array(JX_F32, JX_SHAPE(3), -1, 1);
    jx_t r = JX_CALL(jf, x), e = JX_CALL(f, x);
    CHECK(same_value(r, e, 0, 0, "pass-through and constant outputs"));
    if (jx_ok(r) && jx_len(r) == 5) {
      CHECK(jx_item(jx_sum(jx_at(r, 1))) == 10 && jx_item(jx_at(r, 4)) == 3);
      if (round == 1) keep = jx_retain(jx_at(r, 1)); /* outlives its pool */
    }
    jx_t rz = jx_call(jz, NULL);
    CHECKF(jx_ok(rz) && jx_size(rz) == 5 && jx_item(jx_sum(rz)) == 20, "jit of a 0-argument function: %s",
           jx_ok(rz) ? "wrong value" : jx_error(rz));
    jx_pool_pop();
  }
  CHECK(keep && jx_item(jx_sum(keep)) == 10);
  jx_release(keep);
  CHECK(jx_jit_trace_count(jf) == 1 && jx_jit_trace_count(jz) == 1);
  jx_fn_free(jz), jx_fn_free(z), jx_fn_free(jf), jx_fn_free(f);
}

/* ========================== threads tracing and running one jitted fn */
typedef struct {
  jx_fn *jf, *f;
  int64_t n;
  int ok;
} thread_arg;
static void *thread_main(void *u) {
  thread_arg *t = u;
  jx_pool_push();
  t->ok = 1;
  for (int i = 0; i < 5; i++) {
    double v[64];
    for (int64_t k = 0; k < t->n; k++) v[k] = 0.1 * (double)(k + i) - 1;
    jx_t x = jx_array(JX_F64, 1, (int64_t[]){t->n}, v), y = jx_full(JX_F64, JX_SHAPE(1), 0.5);
    jx_t r = JX_CALL(t->jf, x, y), e = JX_CALL(t->f, x, y);
    t->ok &= jx_ok(r) && jx_ok(e) && jx_item(jx_max(jx_abs(jx_sub(r, e)))) == 0;
  }
  jx_pool_pop();
  return NULL;
}
static void test_threads(void) {
  jx_fn *f = jx_fn_new(poly, 2, NULL), *jf = jx_jit(f);
  thread_arg ta[3] = {{jf, f, 7, 0}, {jf, f, 9, 0}, {jf, f, 7, 0}};
  pthread_t th[3];
  for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, thread_main, &ta[i]);
  for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
  CHECK(ta[0].ok && ta[1].ok && ta[2].ok);
  int n = jx_jit_trace_count(jf);
  CHECKF(n >= 2 && n <= 3, "traced %d times for 2 signatures", n); /* a race may trace one twice */
  jx_fn_free(jf), jx_fn_free(f);
}

/* ============================================= slow_f: one kernel, no temps */
static jx_t slow_f(const jx_t *a, void *u) {
  (void)u;
  jx_t x = a[0];
  return jx_add(jx_add(jx_mul(jx_mul(x, x), x), jx_mul(jx_mul(x, jx_scalar(2.0)), x)), x);
}

/* Large outputs are streamed out of a stack tile (render_c.c, streams()):
 * rows of odd lengths (not a multiple of the tile or the vector), inputs
 * read through transposes and broadcasts, f32 and f64 -- against eager, and
 * the generated C does stream. */
static jx_t stream_body(const jx_t *a, void *u) {
  (void)u;
  return jx_add(jx_mul(jx_tanh(a[0]), jx_transpose(a[1], NULL)), jx_mul(a[2], jx_scalar(0.5)));
}

static void test_streamed_outputs(void) {
  jx_pool_push();
  const jx_dtype dts[2] = {JX_F32, JX_F64};
  const int64_t shapes[2][2] = {{1031, 1029}, {517, 1283}};
  for (int t = 0; t < 2; t++) {
    const int64_t *sh = shapes[t];
    jx_t x = rand_array(dts[t], 2, sh, -2, 2), y = rand_array(dts[t], 2, (int64_t[]){sh[1], sh[0]}, -1, 1);
    jx_t row = rand_array(dts[t], 1, (int64_t[]){sh[1]}, -1, 1); /* broadcast along the rows */
    jx_fn *f = jx_fn_new(stream_body, 3, NULL), *jf = jx_jit(f);
    jx_t args[3] = {x, y, row};
    jx_t want = jx_call(f, args), got = jx_call(jf, args);
    CHECKF(jx_ok(got), "%s", jx_error(got));
    double d = jx_item(jx_max(jx_abs(jx_sub(want, got))));
    CHECKF(d <= (t ? 1e-15 : 1e-6), "streamed %s output differs by %g", t ? "f64" : "f32", d);
    built bp = build(f, args);
    jx_t rerr;
    char *src = bp.p ? jx_cpu_backend.render(bp.p, &rerr) : NULL;
    CHECKF(src && strstr(src, "jx_stream(out + row + t0"), "the output is not streamed");
    jx_free(src);
    built_free(&bp);
    jx_fn_free(jf), jx_fn_free(f);
  }
  jx_pool_pop();
}

/* The same layer many times over (x @ W_i, then tanh(. + 1) and a sum):
 * kernels that differ only in the buffers they touch share one compiled
 * function (render_c.c, p0_s<k>). a[1] is a list of the W_i. */
enum { SHARED_LAYERS = 32 };
static jx_t shared_layers(const jx_t *a, void *u) {
  (void)u;
  jx_t acc = jx_scalar(0.0);
  for (int i = 0; i < jx_len(a[1]); i++)
    acc = jx_add(acc, jx_sum(jx_tanh(jx_add(jx_matmul(a[0], jx_at(a[1], i)), jx_scalar(1.0)))));
  return acc;
}

static jx_t shared_weights(void) {
  jx_t w[SHARED_LAYERS];
  for (int i = 0; i < SHARED_LAYERS; i++) w[i] = rand_array(JX_F32, JX_SHAPE(24, 16), -0.5, 0.5);
  return jx_list(SHARED_LAYERS, w);
}

/* One kernel reading more buffers than the slot list holds (70 inputs
 * fused into one sum): rendered the direct way, b[<buffer>]. */
static jx_t many_inputs(const jx_t *a, void *u) {
  (void)u;
  jx_t acc = jx_at(a[0], 0);
  for (int i = 1; i < jx_len(a[0]); i++) acc = jx_add(acc, jx_mul(jx_at(a[0], i), jx_scalar(i + 1.0)));
  return acc;
}

static void test_many_buffer_kernel(void) {
  jx_pool_push();
  jx_t xs[70];
  for (int i = 0; i < 70; i++) xs[i] = rand_array(JX_F32, JX_SHAPE(33), -1, 1);
  jx_t args[1] = {jx_list(70, xs)};
  jx_fn *f = jx_fn_new(many_inputs, 1, NULL), *jf = jx_jit(f);
  CHECK(same_value(jx_call(jf, args), jx_call(f, args), 1e-4, 1e-5, "70 inputs"));
  built bp = build(f, args);
  jx_t rerr;
  char *src = bp.p ? jx_cpu_backend.render(bp.p, &rerr) : NULL;
  CHECKF(src && bp.p->nkernel == 1 && !strstr(src, "p0_k0_sl") && strstr(src, "b[70]"),
         "%d kernels; the 70-input kernel should be rendered direct", bp.p ? bp.p->nkernel : -1);
  jx_free(src);
  built_free(&bp);
  jx_fn_free(jf), jx_fn_free(f);
  jx_pool_pop();
}

static void test_shared_kernels(void) {
  jx_pool_push();
  jx_t x = rand_array(JX_F32, JX_SHAPE(20, 24), -1, 1), ws = shared_weights();
  jx_fn *f = jx_fn_new(shared_layers, 2, NULL), *jf = jx_jit(f);
  jx_t args[2] = {x, ws};
  CHECK(same_value(jx_call(jf, args), jx_call(f, args), 1e-4, 1e-5, "shared layers"));
  built bp = build(f, args);
  const jx_program *p = bp.p;
  jx_t rerr;
  char *src = p ? jx_cpu_backend.render(p, &rerr) : NULL;
  int kernels = 0;
  for (int k = 0; p && k < p->nkernel; k++) kernels += p->kernels[k].kind != JX_LK_CALL;
  /* one definition per distinct body (a layer's fused tanh + sum, the
   * final sum); a kernel is a slot list and a row of jx_slot_table, with
   * no function of its own (render_c.c, put_slot_table) */
  const int defs = src ? count_substr(src, "__attribute__((noinline)) void p0_s") : -1;
  const int lists = src ? count_substr(src, "static const int p0_k") : -1;
  const int rows = src ? count_substr(src, "  {p0_s") : -1;
  const int functions =
      src ? count_substr(src, "_range(void *ctx") + count_substr(src, "JX_ENTRY int p0_k") : -1;
  CHECKF(src && kernels > SHARED_LAYERS && defs >= 1 && defs <= 3 && lists == kernels && rows == kernels &&
             functions == 0,
         "%d kernels, %d shared definitions, %d slot lists, %d table rows, %d kernel functions", kernels,
         defs, lists, rows, functions);
  jx_free(src);
  built_free(&bp);
  jx_fn_free(jf), jx_fn_free(f);
  jx_pool_pop();
}

/* GEMM epilogues (fuse.c, mark_epilogues): bias + tanh after a matmul run
 * inside the GEMM on each slab of rows. Sizes from tiny (no threading) to
 * large enough for the row slabs, f32 and f64, a transposed operand;
 * against eager, and the program marks the epilogue. */
static jx_t dense_tanh(const jx_t *a, void *u) {
  bool tr = u != NULL;
  jx_t W = tr ? jx_transpose(a[1], NULL) : a[1];
  return jx_tanh(jx_add(jx_matmul(a[0], W), a[2]));
}

/* GEMM epilogues marked in the program jit builds for f at args (each a
 * GEMM kernel k whose MAP kernel k + 1 it runs); -1 if fusion failed */
static int count_epilogues(jx_fn *f, const jx_t *args) {
  built bp = build(f, args);
  const jx_program *p = bp.p;
  int marked = p ? 0 : -1;
  for (int k = 0; p && k < p->nkernel; k++)
    marked += p->kernels[k].epilogue == k + 2 && p->kernels[k + 1].fused;
  built_free(&bp);
  return marked;
}

static void test_gemm_epilogue(void) {
  jx_pool_push();
  const int64_t sizes[4][3] = {{3, 5, 4}, {64, 96, 80}, {128, 300, 512}, {257, 131, 129}};
  for (int t = 0; t < 8; t++) {
    const int64_t *z = sizes[t % 4];
    jx_dtype dt = t < 4 ? JX_F32 : JX_F64;
    bool tr = t % 2;
    jx_t x = rand_array(dt, 2, (int64_t[]){z[0], z[1]}, -1, 1);
    jx_t W = tr ? rand_array(dt, 2, (int64_t[]){z[2], z[1]}, -0.2, 0.2)
                : rand_array(dt, 2, (int64_t[]){z[1], z[2]}, -0.2, 0.2);
    jx_t b = rand_array(dt, 1, (int64_t[]){z[2]}, -1, 1);
    jx_fn *f = jx_fn_new(dense_tanh, 3, tr ? (void *)1 : NULL), *jf = jx_jit(f);
    jx_t args[3] = {x, W, b};
    jx_t want = jx_call(f, args), got = jx_call(jf, args);
    CHECKF(jx_ok(got), "%s", jx_error(got));
    double d = jx_item(jx_max(jx_abs(jx_sub(want, got))));
    CHECKF(d <= (dt == JX_F64 ? 1e-13 : 1e-5), "epilogue %lldx%lldx%lld: differs by %g", (long long)z[0],
           (long long)z[1], (long long)z[2], d);
    const int marked = count_epilogues(f, args);
    CHECKF(marked == 1, "%d epilogues marked", marked);
    jx_fn_free(jf), jx_fn_free(f);
  }
  jx_pool_pop();
}

/* Convolution epilogues (the same marking; conv.c's conv_takes_epilogue):
 * bias + relu after a 3x3 convolution run on each oneDNN batch part as it
 * finishes, or after jx's own kernel. Batch-major outputs (NHWC, NCHW)
 * take it, an output with its batch dim inside (HNWC) does not; against
 * eager on both backends, f32, f64 and bf16 (its kernel widened to f32:
 * the epilogue must wait for the narrowed output; the same bits as
 * eager), batches of 1, 5 and 16. */
typedef struct {
  const char *dn;
  bool bias_last; /* the bias broadcasts along the last dim (NHWC) */
} conv_case;

static jx_t conv_bias_relu(const jx_t *a, void *u) {
  const conv_case *c = u;
  const int64_t pad[4] = {1, 1, 1, 1};
  jx_t y = jx_conv_general_dilated(a[0], a[1], NULL, pad, NULL, NULL, c->dn, 1);
  jx_t b = c->bias_last ? a[2] : jx_reshape(a[2], JX_SHAPE(jx_shape(a[2])[0], 1, 1));
  return jx_relu(jx_add(y, b));
}

static void test_conv_epilogue(void) {
  jx_pool_push();
  const conv_case cases[3] = {{"NHWC,HWIO,NHWC", true}, {"NCHW,OIHW,NCHW", false}, {"NHWC,HWIO,HNWC", true}};
  for (int t = 0; t < 3 * 3 * 4; t++) {
    const conv_case *c = &cases[t % 3];
    const int64_t n = (int64_t[]){1, 5, 16}[t / 3 % 3];
    const int mode = t / 9; /* 0: oneDNN when built in, 1: jx's kernel, 2: f64, 3: bf16 (widened) */
    const jx_dtype dt = mode == 2 ? JX_F64 : mode == 3 ? JX_BF16 : JX_F32;
    jx_cpu_conv_force(mode == 1 ? "own" : NULL);
    const bool nhwc = c->bias_last;
    jx_t x = nhwc ? rand_array(dt, 4, (int64_t[]){n, 9, 11, 6}, -1, 1)
                  : rand_array(dt, 4, (int64_t[]){n, 6, 9, 11}, -1, 1);
    jx_t W = nhwc ? rand_array(dt, 4, (int64_t[]){3, 3, 6, 8}, -0.3, 0.3)
                  : rand_array(dt, 4, (int64_t[]){8, 6, 3, 3}, -0.3, 0.3);
    jx_t b = rand_array(dt, 1, (int64_t[]){8}, -0.5, 0.5);
    jx_fn *f = jx_fn_new(conv_bias_relu, 3, (void *)c), *jf = jx_jit(f);
    jx_t args[3] = {x, W, b};
    jx_t want = jx_call(f, args), got = jx_call(jf, args);
    CHECKF(jx_ok(got), "%s: %s", c->dn, jx_error(got));
    double d = jx_item(jx_max(jx_abs(jx_sub(jx_astype(want, JX_F64), jx_astype(got, JX_F64)))));
    CHECKF(d <= (dt == JX_F64    ? 1e-12
                 : dt == JX_BF16 ? 0
                                 : 1e-5),
           "conv epilogue %s, batch %lld, mode %d: differs by %g", c->dn, (long long)n, mode, d);
    const int marked = count_epilogues(f, args), expect = strcmp(c->dn, "NHWC,HWIO,HNWC") != 0;
    CHECKF(marked == expect, "%s batch %lld mode %d: %d epilogues marked", c->dn, (long long)n, mode, marked);
    jx_fn_free(jf), jx_fn_free(f);
  }
  jx_cpu_conv_force(NULL);
  jx_pool_pop();
}

/* An SGD-like update of a GEMM's result written after unrelated work (as
 * a backward pass computes a gradient long before the update): the update
 * is scheduled right after the GEMM and becomes its epilogue. With
 * `late` it also reads a value made after the GEMM, so it must stay put. */
static jx_t late_update(const jx_t *a, void *u) {
  const bool late = u != NULL;
  jx_t g = jx_matmul(jx_transpose(a[1], NULL), a[2]); /* [n, m] */
  jx_t other = jx_sum(jx_tanh(a[2]));                 /* unrelated kernels in between */
  jx_t lr = late ? jx_mul(other, jx_scalar(1e-3)) : jx_scalar(0.01);
  return JX_TUPLE(jx_sub(a[0], jx_mul(g, lr)), other);
}

static void test_epilogue_schedule(void) {
  jx_pool_push();
  for (int late = 0; late < 2; late++) {
    jx_t w = rand_array(JX_F32, 2, (int64_t[]){48, 40}, -1, 1);
    jx_t x = rand_array(JX_F32, 2, (int64_t[]){32, 48}, -1, 1),
         y = rand_array(JX_F32, 2, (int64_t[]){32, 40}, -1, 1);
    jx_fn *f = jx_fn_new(late_update, 3, late ? (void *)1 : NULL), *jf = jx_jit(f);
    jx_t args[3] = {w, x, y};
    CHECK(same_value(jx_call(jf, args), jx_call(f, args), 1e-5, 1e-5, late ? "late update" : "update"));
    const int marked = count_epilogues(f, args);
    CHECKF(marked == (late ? 0 : 1), "%s: %d epilogues", late ? "late update" : "update", marked);
    jx_fn_free(jf), jx_fn_free(f);
  }
  jx_pool_pop();
}

static void test_slow_f_fusion(void) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(slow_f, 1, NULL);
  jx_t x = rand_array(JX_F32, JX_SHAPE(1000, 1000), -1, 1);
  built bp = build(f, &x);
  const jx_program *p = bp.p;
  CHECKF(p != NULL, "%s", bp.err ? jx_error(bp.err) : "?");
  if (p) {
    int temps = 0;
    for (int b = 0; b < p->nbuf; b++) temps += p->bufs[b].kind == JX_LB_TEMP;
    CHECKF(p->nkernel == 1 && p->kernels[0].kind == JX_LK_MAP, "%d kernels", p->nkernel);
    CHECKF(temps == 0 && p->nbuf == 2, "%d buffers, %d temporaries", p->nbuf, temps);
  }
  built_free(&bp);
  jx_fn_free(f);
  jx_pool_pop();
}

/* Reductions that keep the innermost dim (a bias gradient): the generated
 * loop accumulates a tile of outputs along it at once; tiles of 256 and
 * partial tiles, several kept and reduced dims, every reduce op. */
typedef struct {
  int op, naxes, axes[3];
  bool keep;
} red_case;
static jx_t reduce_expr(const jx_t *a, void *u) {
  const red_case *c = u;
  jx_t v = jx_add(jx_mul(a[0], jx_scalar(1.5)), jx_scalar(0.25)); /* an expression the reduction absorbs */
  return c->op == 0   ? jx_sum_axes(v, c->naxes, c->axes, c->keep)
         : c->op == 1 ? jx_max_axes(v, c->naxes, c->axes, c->keep)
                      : jx_min_axes(v, c->naxes, c->axes, c->keep);
}

static void test_inner_kept_reductions(void) {
  jx_pool_push();
  static const struct {
    int nd;
    int64_t shape[4];
    jx_dtype dt;
    red_case c;
  } cases[] = {
      {2, {128, 512}, JX_F32, {0, 1, {0}, false}},        {2, {128, 512}, JX_F32, {1, 1, {0}, false}},
      {3, {3, 5, 700}, JX_F32, {0, 1, {1}, false}},       {3, {3, 5, 700}, JX_I32, {2, 1, {1}, true}},
      {2, {4, 300}, JX_F64, {0, 1, {0}, true}},           {4, {2, 3, 4, 5}, JX_F32, {0, 2, {0, 2}, false}},
      {4, {2, 3, 4, 257}, JX_I32, {0, 2, {1, 2}, false}}, {2, {9, 1}, JX_F64, {1, 1, {0}, false}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    jx_fn *f = jx_fn_new(reduce_expr, 1, (void *)&cases[i].c), *jf = jx_jit(f);
    jx_t x = rand_array(cases[i].dt, cases[i].nd, cases[i].shape, -2, 2);
    char what[64];
    snprintf(what, sizeof what, "inner-kept reduction case %zu", i);
    const double tol = cases[i].dt == JX_F32 ? 1e-5 : cases[i].dt == JX_F64 ? 1e-12 : 0;
    CHECK(same_value(JX_CALL(jf, x), JX_CALL(f, x), tol, tol, what));
    jx_fn_free(jf), jx_fn_free(f);
  }
  jx_pool_pop();
}

/* jx_jit_compile: ahead of time, then the call neither traces nor builds */
int jx_cpu_module_count(void);

static void test_aot_compile(void) {
  jx_pool_push();
  jx_fn *f = jx_fn_new(slow_f, 1, NULL), *jf = jx_jit(f);
  jx_t x = rand_array(JX_F32, JX_SHAPE(37, 5), -1, 1);
  const int mods = jx_cpu_module_count();
  jx_t e = jx_jit_compile(jf, &x);
  CHECKF(e == NULL, "jit_compile: %s", e ? jx_error(e) : "");
  CHECK(jx_jit_trace_count(jf) == 1);
  const int built = jx_cpu_module_count();
  CHECK(built >= mods); /* == mods when compiled by an earlier test or without a compiler */
  CHECK(same_value(JX_CALL(jf, x), JX_CALL(f, x), 0, 0, "slow_f after jit_compile"));
  CHECK(jx_jit_trace_count(jf) == 1 && jx_cpu_module_count() == built);
  /* compiling again is a lookup */
  CHECK(jx_jit_compile(jf, &x) == NULL && jx_jit_trace_count(jf) == 1);
  /* errors are values naming the cause */
  e = jx_jit_compile(f, &x);
  CHECKF(e && !jx_ok(e) && strstr(jx_error(e), "jit_compile"), "%s", e ? jx_error(e) : "no error");
  jx_fn *g = jx_fn_new(bad_shapes, 1, NULL), *jg = jx_jit(g);
  e = jx_jit_compile(jg, &x);
  CHECKF(e && !jx_ok(e) && strstr(jx_error(e), "add") && strstr(jx_error(e), "[37,5]"), "%s",
         e ? jx_error(e) : "no error");
  jx_t bad = jx_error_new("upstream");
  e = jx_jit_compile(jf, &bad);
  CHECKF(e && !jx_ok(e) && strstr(jx_error(e), "upstream"), "%s", e ? jx_error(e) : "no error");
  jx_fn_free(jg), jx_fn_free(g), jx_fn_free(jf), jx_fn_free(f);
  jx_pool_pop();
}

/* =================================================== child-process modes */
/* many kernels: a source the compiler driver builds in parallel units,
 * with loops among them (a LOOP kernel's body programs must land in the
 * same unit as the kernel) */
static jx_t wide_step(const jx_t *a, void *u) { /* (carry, x) -> (carry', y) */
  (void)u;
  jx_t c = jx_add(jx_tanh(a[0]), jx_mul(jx_scalar(0.5), a[1]));
  return JX_TUPLE(c, jx_sum(c));
}

static jx_t wide_f(const jx_t *a, void *u) {
  jx_fn *step = u;
  jx_t acc = jx_sum(a[0]);
  for (int i = 1; i < 24; i++) {
    acc = jx_add(acc, jx_mul(jx_scalar(1.0 / i), jx_sum(jx_tanh(jx_mul(a[0], jx_scalar(i))))));
    if (i % 8 == 0) { /* a scan over the rows, from a different start each time */
      jx_t r = jx_scan(step, jx_mul(jx_scalar(0.1 * i), jx_sum_axes(a[0], 1, (int[]){0}, false)), a[0]);
      acc = jx_add(acc, jx_add(jx_sum(jx_at(r, 0)), jx_sum(jx_at(r, 1))));
    }
  }
  return acc;
}

static void cache_workload(void) {
  jx_fn *f = jx_fn_new(slow_f, 1, NULL), *jf = jx_jit(f);
  jx_t x = rand_array(JX_F32, JX_SHAPE(8), -1, 1);
  CHECK(same_value(JX_CALL(jf, x), JX_CALL(f, x), 1e-6, 1e-6, "slow_f"));
  jx_fn *loss = jx_fn_new(seed_loss, 3, NULL), *gl = jx_grad(loss, 0), *jgl = jx_jit(gl);
  jx_t params = mlp_params();
  jx_t in = rand_array(JX_F64, JX_SHAPE(4, 3), -1, 1), tg = rand_array(JX_F64, JX_SHAPE(4, 2), -1, 1);
  CHECK(same_value(JX_CALL(jgl, params, in, tg), JX_CALL(gl, params, in, tg), 1e-12, 1e-12, "mlp grad"));
  jx_fn *ws = jx_fn_new(wide_step, 2, NULL), *w = jx_fn_new(wide_f, 1, ws), *jw = jx_jit(w);
  x = rand_array(JX_F32, JX_SHAPE(3, 50), -1, 1);
  CHECK(same_value(JX_CALL(jw, x), JX_CALL(w, x), 1e-5, 1e-5, "wide_f"));
  /* shared kernel bodies: defined in one unit, called from the other */
  jx_fn *sl = jx_fn_new(shared_layers, 2, NULL), *jsl = jx_jit(sl);
  jx_t sargs[2] = {rand_array(JX_F32, JX_SHAPE(20, 24), -1, 1), shared_weights()};
  CHECK(same_value(jx_call(jsl, sargs), jx_call(sl, sargs), 1e-4, 1e-5, "shared layers"));
  jx_fn_free(jsl), jx_fn_free(sl);
  jx_fn_free(jw), jx_fn_free(w), jx_fn_free(ws);
  jx_fn_free(jgl), jx_fn_free(gl), jx_fn_free(loss), jx_fn_free(jf), jx_fn_free(f);
}

static int child_main(const char *mode) {
  rng_state = 42;
  double t0 = now_s();
  if (!strcmp(mode, "cache")) {
    jx_set_num_threads(2); /* so that the wide program is built in parallel units */
    cache_workload();
  } else if (!strcmp(mode, "fallback")) {
    cache_workload();
    test_compositions();
    test_trace_counts();
    for (uint64_t k = 0; k < 25; k++) run_random_program(1 + k, false); /* the parent's first 25 */
  } else if (!strcmp(mode, "handler")) {
    /* jit without a compiler works (it interprets), so a fail-fast error
     * handler must not hear of the compile that was given up on */
    jx_fn *f = jx_fn_new(slow_f, 1, NULL), *jf = jx_jit(f);
    jx_t x = rand_array(JX_F32, JX_SHAPE(8), -1, 1);
    handler_calls = 0, handler_msg[0] = 0;
    jx_set_error_handler(capture, NULL);
    jx_t r = JX_CALL(jf, x);
    jx_set_error_handler(NULL, NULL);
    CHECK(same_value(r, JX_CALL(f, x), 0, 0, "slow_f interpreted"));
    CHECKF(handler_calls == 0, "the error handler was called %d times for a jit call that succeeded: %s",
           handler_calls, handler_msg);
    jx_fn_free(jf), jx_fn_free(f);
  } else if (!strcmp(mode, "slow_f")) {
    jx_fn *f = jx_fn_new(slow_f, 1, NULL), *jf = jx_jit(f);
    jx_t x = rand_array(JX_F32, JX_SHAPE(1000, 1000), -1, 1);
    CHECK(same_value(JX_CALL(jf, x), JX_CALL(f, x), 0, 0, "slow_f [1000,1000]"));
    jx_fn_free(jf), jx_fn_free(f);
  } else {
    fprintf(stderr, "unknown child mode %s\n", mode);
    return 2;
  }
  printf("child %s: %.2f s\n", mode, now_s() - t0);
  return check_report(mode);
}

/* the child's "MODE: N passed, M failed" line: N if M == 0, else -1 */
static int child_passed(const char *out, const char *mode) {
  char pat[64];
  snprintf(pat, sizeof pat, "%s: ", mode);
  for (const char *q = out; (q = strstr(q, pat)); q++) {
    int np, nf;
    if (sscanf(q + strlen(pat), "%d passed, %d failed", &np, &nf) == 2) return nf ? -1 : np;
  }
  return -1;
}

/* ------------------------------------------ spawning this binary as a child */
static char self_exe[4096];

/* A child started and not yet collected. */
typedef struct {
  pid_t pid;
  int fd, rc;
  const char *mode;
} child;

/* Start `self --child mode` with the JX_* environment replaced by `set`
 * (NULL-terminated "K=V" strings); its stdout+stderr go to a pipe. */
static child start_child(const char *mode, const char *const *set) {
  child c = {.pid = -1, .fd = -1, .rc = -1, .mode = mode};
  int nenv = 0, nset = 0;
  while (environ[nenv]) nenv++;
  while (set[nset]) nset++;
  char **env = calloc((size_t)(nenv + nset + 1), sizeof *env);
  int k = 0;
  for (int i = 0; i < nenv; i++)
    if (strncmp(environ[i], "JX_LOG=", 7) && strncmp(environ[i], "JX_CC=", 6) &&
        strncmp(environ[i], "JX_CACHE_DIR=", 13) && strncmp(environ[i], "JX_DUMP=", 8))
      env[k++] = environ[i];
  for (int i = 0; i < nset; i++) env[k++] = (char *)set[i];
  env[k] = NULL;
  int fd[2];
  if (pipe(fd)) {
    free(env);
    return c;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fd[1], 2);
  posix_spawn_file_actions_addclose(&fa, fd[0]);
  char *argv[] = {self_exe, "--child", (char *)mode, NULL};
  c.rc = posix_spawn(&c.pid, self_exe, &fa, NULL, argv, env);
  posix_spawn_file_actions_destroy(&fa);
  close(fd[1]);
  free(env);
  c.fd = fd[0];
  return c;
}

/* Read a started child's output into *out (caller frees) and wait for it.
 * Returns the exit status, or 128+signal. */
static int finish_child(child c, char **out) {
  size_t n = 0, cap = 4096;
  char *buf = malloc(cap);
  ssize_t r;
  int rc = c.rc;
  while (rc == 0 && (r = read(c.fd, buf + n, cap - n - 1)) != 0) {
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    n += (size_t)r;
    if (cap - n < 1024) buf = realloc(buf, cap *= 2);
  }
  buf[n] = 0;
  if (c.fd >= 0) close(c.fd);
  *out = buf;
  if (rc) return -1;
  int st;
  while (waitpid(c.pid, &st, 0) < 0)
    if (errno != EINTR) return -1;
  rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  return rc == 0 && child_passed(buf, c.mode) <= 0 ? 250 : rc; /* 250: no clean check report */
}

static int spawn_child(const char *mode, const char *const *set, char **out) {
  return finish_child(start_child(mode, set), out);
}

/* names of files in dir matching prefix/suffix (up to max) */
static int list_files(const char *dir, const char *prefix, const char *suffix, char names[][512], int max) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)) && n < max) {
    size_t l = strlen(e->d_name), ls = strlen(suffix);
    if (!strncmp(e->d_name, prefix, strlen(prefix)) && l >= ls && !strcmp(e->d_name + l - ls, suffix))
      snprintf(names[n++], 512, "%s/%s", dir, e->d_name);
  }
  if (d) closedir(d);
  return n;
}

/* one child run with JX_LOG=compile and JX_CACHE_DIR=dir (+ extra) */
static int run_cache_child(const char *mode, const char *dir, const char *extra, char **out) {
  char cache[600];
  snprintf(cache, sizeof cache, "JX_CACHE_DIR=%s", dir);
  const char *set[] = {"JX_LOG=compile", cache, extra, NULL};
  int rc = spawn_child(mode, set, out);
  return rc;
}

static bool copy_file(const char *from, const char *to) {
  FILE *a = fopen(from, "rb"), *b = a ? fopen(to, "wb") : NULL;
  char buf[65536];
  size_t k;
  bool ok = a && b;
  while (ok && (k = fread(buf, 1, sizeof buf, a)) > 0) ok = fwrite(buf, 1, k, b) == k;
  if (a) fclose(a);
  if (b) ok = fclose(b) == 0 && ok;
  return ok;
}

static int workload_reloads; /* disk hits of the cache workload in a process that built it all */

/* (e) a cache directory owned by another user is not used; (f) objects and
 * checksum files planted by another user (valid bytes, valid checksum) are
 * rejected and rebuilt. Needs root, to give files away. */
static void test_cache_owners(void) {
  struct passwd *pw = getpwnam("nobody");
  if (geteuid() != 0 || !pw) {
    printf("not root or no user 'nobody': skipping the other-owner cache scenarios\n");
    return;
  }
  char dir[64], *out = NULL, so[8][512];
  make_tmpdir(dir, sizeof dir);
  CHECK(chown(dir, pw->pw_uid, pw->pw_gid) == 0);
  int rc = run_cache_child("cache", dir, NULL, &out);
  CHECK_CHILD(rc == 0 && count_substr(out, "not using it") == 1 && count_substr(out, "jit: compiled ") >= 2,
              out, "directory owned by nobody: rc %d", rc);
  CHECK(list_files(dir, "", "", so, 8) == 2); /* only . and .. */
  free(out);
  rm_tree(dir);

  make_tmpdir(dir, sizeof dir);
  rc = run_cache_child("cache", dir, NULL, &out);
  free(out);
  int nso = list_files(dir, "jx-", ".so", so, 8);
  CHECK(rc == 0 && nso >= 2);
  if (nso >= 2) {
    char sum[520];
    snprintf(sum, sizeof sum, "%.*s.sum", (int)(strlen(so[1]) - 3), so[1]);
    CHECK(chown(so[0], pw->pw_uid, pw->pw_gid) == 0 && chown(sum, pw->pw_uid, pw->pw_gid) == 0);
    rc = run_cache_child("cache", dir, NULL, &out);
    CHECK_CHILD(rc == 0 && count_substr(out, "rejecting cached object") == 2 &&
                    count_substr(out, "jit: compiled ") == 2 &&
                    count_substr(out, "disk cache hit") == nso - 2 + workload_reloads,
                out, "objects planted by nobody: rc %d", rc);
    free(out);
    struct stat st;
    CHECK(stat(so[0], &st) == 0 && st.st_uid == geteuid() && stat(sum, &st) == 0 && st.st_uid == geteuid());
  }
  rm_tree(dir);
}

/* (g) two processes compiling the same functions into one cache at once:
 * both succeed, and what they leave is a valid cache (a third process
 * loads every object from it). */
static void test_cache_concurrent(void) {
  char dir[64], cache[600], *out[2] = {NULL, NULL}, so[8][512];
  make_tmpdir(dir, sizeof dir);
  snprintf(cache, sizeof cache, "JX_CACHE_DIR=%s", dir);
  const char *set[] = {"JX_LOG=compile", cache, NULL};
  int ok = 0;
  for (int round = 0; round < 3; round++) { /* a few times: the interleavings differ */
    rm_tree(dir);
    mkdir(dir, 0700);
    child c[2] = {start_child("cache", set), start_child("cache", set)};
    int rc[2];
    for (int i = 0; i < 2; i++) rc[i] = finish_child(c[i], &out[i]);
    for (int i = 0; i < 2; i++) {
      int got = count_substr(out[i], "jit: compiled ") + count_substr(out[i], "disk cache hit");
      CHECK_CHILD(rc[i] == 0 && got >= 2 && !count_substr(out[i], "could not install"), out[i],
                  "concurrent process %d: rc %d", i, rc[i]);
      ok += rc[i] == 0;
      free(out[i]);
    }
    int nso = list_files(dir, "jx-", ".so", so, 8);
    int rc3 = run_cache_child("cache", dir, NULL, &out[0]);
    CHECK_CHILD(rc3 == 0 && nso >= 2 && count_substr(out[0], "disk cache hit") == nso + workload_reloads &&
                    !count_substr(out[0], "jit: compiled ") && !count_substr(out[0], "rejecting"),
                out[0], "after two concurrent processes: rc %d, %d objects", rc3, nso);
    free(out[0]);
    CHECK(list_files(dir, "tmp-", "", so, 8) == 0); /* no temporaries left */
  }
  printf("concurrent compiles: %d of 6 processes succeeded\n", ok);
  rm_tree(dir);
}

static void test_cache_processes(void) {
  double t0 = now_s();
  char dir[64], *out = NULL;
  char so[8][512];

  /* (a) a second process gets disk cache hits for the same functions */
  make_tmpdir(dir, sizeof dir);
  int rc = run_cache_child("cache", dir, NULL, &out);
  int compiled = count_substr(out, "jit: compiled ");
  /* objects freed and needed again are loaded again (they are unloaded
   * when the last function using them is freed): each later run of the
   * workload loads that many more than it has objects */
  workload_reloads = count_substr(out, "disk cache hit");
  /* wide_f built in 2 units (its bodies defined in one, named by the
   * tables in the other). The shared layers' 33 kernels are rows of the
   * slot table over 2 bodies: small enough for one unit. */
  CHECK_CHILD(rc == 0 && compiled >= 3 && workload_reloads <= 2 && count_substr(out, "(2 units)") == 1, out,
              "first process: rc %d, %d compiled, one in 2 units", rc, compiled);
  int nso = list_files(dir, "jx-", ".so", so, 8);
  CHECKF(nso == compiled, "%d objects in the cache, %d compiles", nso, compiled);
  CHECKF(list_files(dir, "tmp-", "", so, 8) == 0, "temporary build files left in %s", dir);
  struct stat st;
  CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700);
  free(out);
  rc = run_cache_child("cache", dir, NULL, &out);
  CHECK_CHILD(rc == 0 && count_substr(out, "disk cache hit") == compiled + workload_reloads &&
                  !count_substr(out, "jit: compiled "),
              out, "second process: rc %d, %d disk hits", rc, count_substr(out, "disk cache hit"));
  free(out);
  rm_tree(dir);

  /* (b) a corrupted and a truncated object are rejected and rebuilt */
  make_tmpdir(dir, sizeof dir);
  rc = run_cache_child("cache", dir, NULL, &out);
  free(out);
  nso = list_files(dir, "jx-", ".so", so, 8);
  CHECK(rc == 0 && nso >= 2);
  if (nso >= 2) {
    int fd = open(so[0], O_WRONLY);
    CHECK(fd >= 0 && pwrite(fd, "corrupted!corrupted!corrupted!", 30, 200) == 30);
    if (fd >= 0) close(fd);
    CHECK(stat(so[1], &st) == 0 && truncate(so[1], st.st_size / 2) == 0);
    rc = run_cache_child("cache", dir, NULL, &out);
    int rej = count_substr(out, "rejecting cached object");
    CHECK_CHILD(rc == 0 && rej == 2 && count_substr(out, "jit: compiled ") == 2 &&
                    count_substr(out, "disk cache hit") == nso - 2 + workload_reloads,
                out, "corrupted objects: rc %d, %d rejected", rc, rej);
    free(out);
    /* rebuilt in place: a third process hits them all */
    rc = run_cache_child("cache", dir, NULL, &out);
    CHECK_CHILD(rc == 0 && count_substr(out, "disk cache hit") == nso + workload_reloads, out,
                "after rebuild: rc %d", rc);
    free(out);
    /* a garbage object with a garbage checksum is rejected too */
    char sum[520];
    snprintf(sum, sizeof sum, "%.*s.sum", (int)(strlen(so[0]) - 3), so[0]);
    FILE *fp = fopen(so[0], "wb");
    if (fp) fputs("not an ELF file", fp), fclose(fp);
    fp = fopen(sum, "wb");
    if (fp) fputs("zzzz\n", fp), fclose(fp);
    rc = run_cache_child("cache", dir, NULL, &out);
    CHECK_CHILD(rc == 0 && count_substr(out, "jit: compiled ") == 1, out, "garbage object: rc %d", rc);
    free(out);
  }
  rm_tree(dir);

  /* (c) a world-writable cache directory is not used; results still right */
  make_tmpdir(dir, sizeof dir);
  chmod(dir, 0777);
  rc = run_cache_child("cache", dir, NULL, &out);
  CHECK_CHILD(rc == 0 && count_substr(out, "not using it") == 1 && count_substr(out, "jit: compiled ") >= 2,
              out, "world-writable dir: rc %d", rc);
  CHECK(list_files(dir, "", "", so, 8) == 2); /* only . and .. */
  free(out);
  /* group-readable is not private either */
  chmod(dir, 0750);
  rc = run_cache_child("cache", dir, NULL, &out);
  CHECK_CHILD(rc == 0 && count_substr(out, "not using it") == 1, out, "group-readable dir: rc %d", rc);
  free(out);
  /* nor is a symlink to a private directory */
  chmod(dir, 0700);
  char link[600];
  snprintf(link, sizeof link, "%s-link", dir);
  CHECK(symlink(dir, link) == 0);
  rc = run_cache_child("cache", link, NULL, &out);
  CHECK_CHILD(rc == 0 && count_substr(out, "not using it") == 1, out, "symlinked dir: rc %d", rc);
  CHECK(list_files(dir, "jx-", "", so, 8) == 0);
  free(out);
  unlink(link);
  rm_tree(dir);

  /* (d) a cached object replaced by a symlink (even to identical bytes) is
   * rejected and replaced by a regular file */
  make_tmpdir(dir, sizeof dir);
  char other[64];
  make_tmpdir(other, sizeof other);
  rc = run_cache_child("cache", dir, NULL, &out);
  free(out);
  nso = list_files(dir, "jx-", ".so", so, 8);
  CHECK(rc == 0 && nso >= 2);
  if (nso >= 2) {
    char copy[600];
    snprintf(copy, sizeof copy, "%s/evil.so", other);
    CHECK(copy_file(so[0], copy));
    chmod(copy, 0600);
    CHECK(unlink(so[0]) == 0 && symlink(copy, so[0]) == 0);
    rc = run_cache_child("cache", dir, NULL, &out);
    CHECK_CHILD(rc == 0 && count_substr(out, "rejecting cached object") == 1 &&
                    count_substr(out, "jit: compiled ") == 1,
                out, "symlinked object: rc %d", rc);
    free(out);
    CHECK(lstat(so[0], &st) == 0 && S_ISREG(st.st_mode));
    /* the same with a checksum file that says "0", which is file_hash's
     * error value (O_NOFOLLOW refused the link) */
    char sum[520], copy1[600];
    snprintf(sum, sizeof sum, "%.*s.sum", (int)(strlen(so[1]) - 3), so[1]);
    snprintf(copy1, sizeof copy1, "%s/evil1.so", other);
    CHECK(copy_file(so[1], copy1));
    chmod(copy1, 0600);
    CHECK(unlink(so[1]) == 0 && symlink(copy1, so[1]) == 0);
    int fd = open(sum, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0 && write(fd, "0000000000000000\n", 17) == 17);
    if (fd >= 0) close(fd);
    rc = run_cache_child("cache", dir, NULL, &out);
    CHECK_CHILD(rc == 0 && count_substr(out, "rejecting cached object") == 1 &&
                    count_substr(out, "disk cache hit") == nso - 1 + workload_reloads,
                out, "symlinked object with a zero checksum must be rejected, not loaded: rc %d", rc);
    free(out);
    CHECK(lstat(so[1], &st) == 0 && S_ISREG(st.st_mode));
  }
  rm_tree(dir);
  rm_tree(other);

  test_cache_owners();
  test_cache_concurrent();
  printf("cache scenarios: %.1f s\n", now_s() - t0);
}

static void test_no_compiler(void) {
  double t0 = now_s();
  char dir[64], cache[600], *out = NULL;
  make_tmpdir(dir, sizeof dir);
  snprintf(cache, sizeof cache, "JX_CACHE_DIR=%s", dir);
  const char *set[] = {"JX_LOG=compile", "JX_CC=/nonexistent", cache, NULL};
  int rc = spawn_child("fallback", set, &out);
  int nocc = count_substr(out, "no working C compiler (/nonexistent)");
  int fallbacks = count_substr(out, "falling back to the interpreter");
  CHECK_CHILD(rc == 0 && nocc == 1 && !count_substr(out, "jit: compiled ") &&
                  child_passed(out, "fallback") > 150,
              out, "no compiler: rc %d, 'no working C compiler' %d times", rc, nocc);
  printf("no-compiler child: %d checks passed\n", child_passed(out, "fallback"));
  CHECKF(fallbacks <= 1, "the fallback is reported %d times (once per compiled jaxpr), not once", fallbacks);
  char names[1][512];
  CHECK(list_files(dir, "jx-", "", names, 1) == 0);
  free(out);
  /* the recovered compile failure must not reach a fail-fast error handler */
  rc = spawn_child("handler", set, &out);
  CHECK_CHILD(rc == 0, out, "no compiler, error handler set: rc %d", rc);
  free(out);
  rm_tree(dir);
  printf("no-compiler fallback: %.1f s\n", now_s() - t0);
}

/* A compiler that runs but fails every build (split builds included): jit
 * says why once, interprets, and leaves nothing behind in the cache. */
static void test_failing_compiler(void) {
  char dir[64], bin[64], cc[600], ccv[700], cache[600], *out = NULL;
  make_tmpdir(dir, sizeof dir);
  make_tmpdir(bin, sizeof bin);
  snprintf(cc, sizeof cc, "%s/fakecc", bin);
  FILE *f = fopen(cc, "w");
  CHECK(f != NULL);
  if (!f) return;
  fputs("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'fakecc 1.0'; exit 0; fi\n"
        "echo 'fakecc: refusing to compile' >&2\nexit 3\n",
        f);
  fclose(f);
  chmod(cc, 0700);
  snprintf(ccv, sizeof ccv, "JX_CC=%s", cc);
  snprintf(cache, sizeof cache, "JX_CACHE_DIR=%s", dir);
  const char *set[] = {"JX_LOG=compile", ccv, cache, NULL};
  int rc = spawn_child("cache", set, &out);
  CHECK_CHILD(rc == 0 && count_substr(out, "falling back to the interpreter") == 1 &&
                  count_substr(out, "the C compiler failed (exit 3): fakecc: refusing to compile") == 1 &&
                  !count_substr(out, "jit: compiled "),
              out, "failing compiler: rc %d", rc);
  char names[1][512];
  CHECKF(list_files(dir, "", ".c", names, 1) == 0 && list_files(dir, "", ".o", names, 1) == 0 &&
             list_files(dir, "", ".log", names, 1) == 0 && list_files(dir, "jx-", "", names, 1) == 0,
         "files left in %s after failed builds", dir);
  free(out);
  rm_tree(dir);
  rm_tree(bin);
}

/* The compiler's identity is part of the cache key: objects built through
 * one compiler are not served once that compiler has changed on disk (its
 * modification time here) or when another compiler is named. */
static void test_compiler_identity(void) {
  char dir[64], bin[64], cc[600], ccv[700], cache[600], *out = NULL;
  make_tmpdir(dir, sizeof dir);
  make_tmpdir(bin, sizeof bin);
  snprintf(cc, sizeof cc, "%s/wrapcc", bin);
  const char *real = getenv("JX_CC");
  FILE *f = fopen(cc, "w");
  CHECK(f != NULL);
  if (!f) return;
  fprintf(f, "#!/bin/sh\nexec %s \"$@\"\n", real && *real ? real : "cc");
  fclose(f);
  chmod(cc, 0700);
  snprintf(ccv, sizeof ccv, "JX_CC=%s", cc);
  snprintf(cache, sizeof cache, "JX_CACHE_DIR=%s", dir);
  const char *set[] = {"JX_LOG=compile", ccv, cache, NULL};
  const char *what[] = {"first build", "same compiler", "compiler changed on disk"};
  for (int round = 0; round < 3; round++) {
    if (round == 2) { /* the wrapper "upgraded": a new modification time */
      struct stat st;
      CHECK(stat(cc, &st) == 0);
      struct timespec ts[2] = {st.st_atim, st.st_mtim};
      ts[1].tv_sec += 10;
      CHECK(utimensat(AT_FDCWD, cc, ts, 0) == 0);
    }
    int rc = spawn_child("slow_f", set, &out);
    const int hit = round == 1;
    CHECK_CHILD(rc == 0 && count_substr(out, "disk cache hit") == hit &&
                    count_substr(out, "jit: compiled ") == !hit,
                out, "%s: rc %d", what[round], rc);
    free(out);
  }
  /* another compiler (the one the wrapper runs) on the same cache: built anew */
  const char *set2[] = {"JX_LOG=compile", cache, NULL};
  int rc = spawn_child("slow_f", set2, &out);
  CHECK_CHILD(rc == 0 && !count_substr(out, "disk cache hit") && count_substr(out, "jit: compiled ") == 1,
              out, "another compiler: rc %d", rc);
  free(out);
  rm_tree(dir);
  rm_tree(bin);
}

static void test_slow_f_log(void) {
  char dir[64], dump[64], cache[600], dumpv[600], *out = NULL;
  make_tmpdir(dir, sizeof dir);
  make_tmpdir(dump, sizeof dump);
  snprintf(cache, sizeof cache, "JX_CACHE_DIR=%s", dir);
  snprintf(dumpv, sizeof dumpv, "JX_DUMP=%s", dump);
  const char *set[] = {"JX_LOG=compile,profile", cache, dumpv, NULL};
  int rc = spawn_child("slow_f", set, &out);
  CHECK_CHILD(rc == 0 && count_substr(out, ", 1 kernels;") == 1, out, "slow_f: rc %d", rc);
  /* JX_LOG=profile: the program's one kernel, timed over its one run */
  CHECK_CHILD(count_substr(out, "[jx] profile: program of 1 kernels, 2 buffers; 1 runs") == 1 &&
                  count_substr(out, "k0   map") == 1 && count_substr(out, "[1000,1000]") == 1,
              out, "profile of slow_f");
  char names[4][512];
  int n = list_files(dump, "", "program.c", names, 4);
  CHECK(n == 1);
  if (n == 1) {
    FILE *f = fopen(names[0], "r");
    char line[256] = "";
    if (f) {
      if (!fgets(line, sizeof line, f)) line[0] = 0;
      fclose(f);
    }
    CHECKF(strstr(line, "1 kernels, 2 buffers"), "program.c starts: %s", line);
  }
  CHECK(list_files(dump, "", "jaxpr-before.txt", names, 4) == 1);
  CHECK(list_files(dump, "", "jaxpr-after.txt", names, 4) == 1);
  free(out);
  rm_tree(dir);
  rm_tree(dump);
}

/* whether $JX_CC (or cc) runs, as the library decides it */
static bool compiler_runs(void) {
  const char *cc = getenv("JX_CC");
  char *argv[] = {(char *)(cc && *cc ? cc : "cc"), "--version", NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int st = -1, rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc) return false;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0); /* keep lines if a sanitizer aborts at exit */
  /* outputs from 4 MiB on are streamed, as on a machine with a small L3,
     so that the streamed kernels are rendered and checked on every machine
     (inherited by the child processes, whose sources must match) */
  setenv("JX_STREAM_MIN_BYTES", "4194304", 1);
  if (argc >= 3 && !strcmp(argv[1], "--child")) return child_main(argv[2]);
  ssize_t k = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
  if (k <= 0)
    snprintf(self_exe, sizeof self_exe, "%s", argv[0]);
  else
    self_exe[k] = 0;
  double t0 = now_s();
  rng_state = 7;
  if (argc >= 3 && !strcmp(argv[1], "--program")) { /* debugging: one program, printed */
    uint64_t seed = strtoull(argv[2], NULL, 10);
    run_random_program(seed, true);
    return check_report("jit");
  }
  if (argc >= 4 && !strcmp(argv[1], "--random")) { /* debugging: N programs from seed FIRST */
    test_random_programs(atoi(argv[2]), strtoull(argv[3], NULL, 10));
    return check_report("jit");
  }
  test_trace_counts();
  test_compositions();
  test_closure_over_tracer();
  test_tracer_read();
  test_output_ownership();
  test_threads();
  test_slow_f_fusion();
  test_aot_compile();
  test_inner_kept_reductions();
  test_gemm_epilogue();
  test_conv_epilogue();
  test_epilogue_schedule();
  test_streamed_outputs();
  test_shared_kernels();
  test_many_buffer_kernel();
  test_random_programs(100, 1);
  if (compiler_runs()) {
    test_slow_f_log();
    test_cache_processes();
    test_failing_compiler();
    test_compiler_identity();
  } else {
    printf("no working C compiler: skipping the compiled-object cache scenarios\n");
  }
  test_no_compiler();
  printf("total %.1f s\n", now_s() - t0);
  return check_report("jit");
}
