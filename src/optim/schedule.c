/* Learning-rate schedules (optax.schedules): step -> value, written with
 * ops so that the step may be traced (the optimizer's count inside a
 * jitted training step). Arithmetic is in f64 (the step count is exact to
 * 2^53; torch's schedulers compute in double too) and jx_schedule_value
 * rounds once to f32; the optimizers round it once to each leaf's dtype. */
#include "optim/optim.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef enum { S_CONSTANT, S_LINEAR, S_COSINE, S_WARMUP_COSINE, S_EXPONENTIAL, S_PIECEWISE } sched_kind;

struct jx_schedule {
  sched_kind kind;
  atomic_int refs; /* < 0: the static out-of-memory sentinel */
  double v[4];     /* per kind, in the constructor's argument order */
  int64_t i[2];
  bool staircase;
  int n; /* piecewise: n boundaries, n + 1 values */
  int64_t *bounds;
  double *values;
  char *error;
};

static jx_schedule oom_schedule = {.refs = -1, .error = "schedule: out of memory"};

static jx_schedule *sched_new(sched_kind k) {
  jx_schedule *s = jx_malloc(sizeof *s);
  if (!s) return &oom_schedule;
  memset(s, 0, sizeof *s);
  s->kind = k;
  atomic_init(&s->refs, 1);
  return s;
}

static jx_schedule *sched_bad(jx_schedule *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static jx_schedule *sched_bad(jx_schedule *s, const char *fmt, ...) {
  if (s == &oom_schedule) return s;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  s->error = jx_strdup(msg);
  if (!s->error) {
    jx_schedule_free(s);
    return &oom_schedule;
  }
  return s;
}

jx_schedule *jx_schedule_retain(jx_schedule *s) {
  if (s && atomic_load(&s->refs) >= 0) atomic_fetch_add(&s->refs, 1);
  return s;
}

void jx_schedule_free(jx_schedule *s) {
  if (!s || atomic_load(&s->refs) < 0 || atomic_fetch_sub(&s->refs, 1) != 1) return;
  jx_free(s->bounds), jx_free(s->values), jx_free(s->error);
  jx_free(s);
}

/* ------------------------------------------------------------ constructors */

jx_schedule *jx_constant_schedule(double value) {
  jx_schedule *s = sched_new(S_CONSTANT);
  if (s != &oom_schedule) s->v[0] = value;
  return s;
}

jx_schedule *jx_linear_schedule(double init_value, double end_value, int64_t transition_steps,
                                int64_t transition_begin) {
  jx_schedule *s = sched_new(S_LINEAR);
  if (s == &oom_schedule) return s;
  s->v[0] = init_value, s->v[1] = end_value, s->i[0] = transition_steps, s->i[1] = transition_begin;
  if (transition_begin < 0)
    return sched_bad(s, "linear_schedule: transition_begin is %lld, must be >= 0",
                     (long long)transition_begin);
  return s;
}

jx_schedule *jx_cosine_decay_schedule(double init_value, int64_t decay_steps, double alpha) {
  jx_schedule *s = sched_new(S_COSINE);
  if (s == &oom_schedule) return s;
  s->v[0] = init_value, s->v[1] = alpha, s->i[0] = decay_steps;
  if (decay_steps <= 0)
    return sched_bad(s, "cosine_decay_schedule: decay_steps is %lld, must be positive",
                     (long long)decay_steps);
  return s;
}

jx_schedule *jx_warmup_cosine_decay_schedule(double init_value, double peak_value, int64_t warmup_steps,
                                             int64_t decay_steps, double end_value) {
  jx_schedule *s = sched_new(S_WARMUP_COSINE);
  if (s == &oom_schedule) return s;
  s->v[0] = init_value, s->v[1] = peak_value, s->v[2] = end_value, s->i[0] = warmup_steps;
  s->i[1] = decay_steps;
  if (warmup_steps < 0 || decay_steps <= warmup_steps)
    return sched_bad(s,
                     "warmup_cosine_decay_schedule: warmup_steps %lld and decay_steps %lld: need 0 <= "
                     "warmup_steps < decay_steps",
                     (long long)warmup_steps, (long long)decay_steps);
  return s;
}

jx_schedule *jx_exponential_decay(double init_value, int64_t transition_steps, double decay_rate,
                                  int64_t transition_begin, bool staircase, double end_value) {
  jx_schedule *s = sched_new(S_EXPONENTIAL);
  if (s == &oom_schedule) return s;
  s->v[0] = init_value, s->v[1] = decay_rate, s->v[2] = end_value;
  s->i[0] = transition_steps, s->i[1] = transition_begin, s->staircase = staircase;
  if (transition_steps <= 0 || transition_begin < 0 || !(decay_rate > 0) || !isfinite(decay_rate))
    return sched_bad(s,
                     "exponential_decay: transition_steps %lld (must be positive), transition_begin %lld "
                     "(must be >= 0), decay_rate %g (must be positive and finite)",
                     (long long)transition_steps, (long long)transition_begin, decay_rate);
  return s;
}

/* value after the k-th boundary: init * scales[0] * ... * scales[k-1],
 * computed here in double, so each step's value is rounded once */
jx_schedule *jx_piecewise_constant_schedule(double init_value, int n, const int64_t *boundaries,
                                            const double *scales) {
  jx_schedule *s = sched_new(S_PIECEWISE);
  if (s == &oom_schedule) return s;
  if (n < 0 || (n > 0 && (!boundaries || !scales)))
    return sched_bad(s, "piecewise_constant_schedule: %d boundaries (boundaries or scales NULL)", n);
  for (int k = 1; k < n; k++)
    if (boundaries[k] <= boundaries[k - 1])
      return sched_bad(
          s, "piecewise_constant_schedule: boundaries must increase (boundary %d is %lld, %d is %lld)", k - 1,
          (long long)boundaries[k - 1], k, (long long)boundaries[k]);
  s->bounds = jx_malloc(sizeof(int64_t) * (size_t)(n + 1));
  s->values = jx_malloc(sizeof(double) * (size_t)(n + 1));
  if (!s->bounds || !s->values) {
    jx_schedule_free(s);
    return &oom_schedule;
  }
  s->n = n, s->values[0] = init_value;
  for (int k = 0; k < n; k++) s->bounds[k] = boundaries[k], s->values[k + 1] = s->values[k] * scales[k];
  return s;
}

const char *jx_optim_schedule_error(const jx_schedule *s) {
  return !s ? "the learning rate schedule is NULL" : s->error;
}

/* -------------------------------------------------------------- evaluation */

static jx_t f64(double v) { return jx_scalar_of(JX_F64, v); }

/* 0.5 (1 + cos(pi t / T)) for t in [0, T], as sin^2(pi/2 (T - t) / T):
 * T - t is exact, so the value keeps its relative precision as it nears 0 */
static jx_t cosine_frac(jx_t t, int64_t T) {
  jx_t c = jx_minimum(jx_maximum(t, f64(0)), f64((double)T));
  jx_t x = jx_mul(jx_sub(f64((double)T), c), f64(M_PI / 2 / (double)T));
  return jx_square(jx_sin(x));
}

static jx_t linear(double a, double b, int64_t T, int64_t begin, jx_t t) {
  if (T <= 0) return f64(a); /* optax: a constant schedule */
  jx_t frac =
      jx_div(jx_minimum(jx_maximum(jx_sub(t, f64((double)begin)), f64(0)), f64((double)T)), f64((double)T));
  return jx_add(f64(a), jx_mul(f64(b - a), frac));
}

static jx_t exponential(const jx_schedule *s, jx_t t) {
  jx_t p = jx_div(jx_maximum(jx_sub(t, f64((double)s->i[1])), f64(0)), f64((double)s->i[0]));
  if (s->staircase) p = jx_floor(p);
  jx_t v = jx_mul(f64(s->v[0]), jx_exp(jx_mul(p, f64(log(s->v[1])))));
  if (s->v[2] != 0) /* end_value bounds the decay (0: no bound) */
    v = s->v[1] < 1 ? jx_maximum(v, f64(s->v[2])) : jx_minimum(v, f64(s->v[2]));
  return v;
}

static jx_t eval_constant(const jx_schedule *s, jx_t t) {
  (void)t;
  return f64(s->v[0]);
}
static jx_t eval_linear(const jx_schedule *s, jx_t t) {
  return linear(s->v[0], s->v[1], s->i[0], s->i[1], t);
}
static jx_t eval_cosine(const jx_schedule *s, jx_t t) {
  return jx_mul(f64(s->v[0]), jx_add(jx_mul(cosine_frac(t, s->i[0]), f64(1 - s->v[1])), f64(s->v[1])));
}
/* optax: join_schedules(linear(init, peak, W), cosine_decay(peak, T - W, end / peak)) at W */
static jx_t eval_warmup_cosine(const jx_schedule *s, jx_t t) {
  int64_t W = s->i[0];
  jx_t frac = cosine_frac(jx_sub(t, f64((double)W)), s->i[1] - W);
  jx_t cos = jx_add(jx_mul(frac, f64(s->v[1] - s->v[2])), f64(s->v[2]));
  return W > 0 ? jx_where(jx_lt(t, f64((double)W)), linear(s->v[0], s->v[1], W, 0, t), cos) : cos;
}
static jx_t eval_piecewise(const jx_schedule *s, jx_t t) {
  jx_t v = f64(s->values[0]);
  for (int k = 0; k < s->n; k++) v = jx_where(jx_ge(t, f64((double)s->bounds[k])), f64(s->values[k + 1]), v);
  return v;
}

static jx_t (*const evaluate[])(const jx_schedule *, jx_t) = {
    [S_CONSTANT] = eval_constant,           [S_LINEAR] = eval_linear,      [S_COSINE] = eval_cosine,
    [S_WARMUP_COSINE] = eval_warmup_cosine, [S_EXPONENTIAL] = exponential, [S_PIECEWISE] = eval_piecewise,
};

jx_t jx_optim_schedule_f64(jx_schedule *s, jx_t step) {
  if (!s) return jx_error_new("schedule: the schedule is NULL");
  if (s->error) return jx_error_new("%s", s->error);
  if (jx_is_error(step)) return step ? step : jx_error_new("schedule: step is NULL");
  if (jx_is_tree(step) || jx_ndim(step) != 0) {
    char b[64] = "a tree";
    if (!jx_is_tree(step)) jx_aval_str(jx_aval_of(step), b, sizeof b);
    return jx_error_new("schedule: the step must be a 0-d array, not %s", b);
  }
  return evaluate[s->kind](s, jx_astype(step, JX_F64));
}

jx_t jx_schedule_value(jx_schedule *s, jx_t step) {
  return jx_astype(jx_optim_schedule_f64(s, step), JX_F32);
}
