/* bench_train: one training epoch of the demo's network, jx vs PyTorch eager.
 *
 * The network is the letter classifier's (examples/letters): a
 * 1296-512-512-26 tanh MLP, softmax cross-entropy, batch 128, params a list
 * of (W, b), predict and loss written as in JAX's README. One epoch is the
 * demo's: 268 steps of 128 examples (34,304, the rendered training set),
 * shuffled with jx_random_permutation, each batch converted from u8 pixels
 * to normalized f32 in C, then one call of the jitted step. Measured:
 *
 *   jx SGD   jit(value_and_grad(loss) + jx_sgd's update), the peer's exact work
 *   jx Adam  jit(value_and_grad(loss) + jx_adam's update), the demo's step
 *
 * The peer is ../shared/bench/peers/mlp_bench.py (the same network, batch,
 * loss and plain SGD in PyTorch eager, one fixed batch, no data loading);
 * its median ms/step times the steps of an epoch gives its epoch time. It
 * runs at the same thread count as jx (torch intra-op threads and OpenBLAS
 * threads = T, OMP_WAIT_POLICY=passive, else torch's OpenMP pool and
 * OpenBLAS spin against each other on a 2-core machine) and, for T > 1,
 * also in torch's default 1 + BLAS T configuration; the faster counts.
 *
 *   build/bench/bench_train [--rounds 3] [--no-peer]     (JX_NUM_THREADS sets T)
 *
 * Rounds interleave jx epochs and peer runs, so slow drift on a shared
 * machine hits both; the table gives the median and the minimum.
 * PEERS=dir: where mlp_bench.py is; PY: the Python with torch (/usr/bin/python3). */
#include <jx.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { B = 128, D = 1296, H = 512, C = 26, STEPS = 268 };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ------------------------------------------------ the demo's model (train.c) */
static jx_t predict(jx_t params, jx_t inputs) {
  jx_t outputs = NULL;
  for (int i = 0; i < jx_len(params); i++) {
    jx_t W = jx_at(jx_at(params, i), 0), b = jx_at(jx_at(params, i), 1);
    outputs = jx_add(jx_dot(inputs, W), b);
    inputs = jx_tanh(outputs);
  }
  return outputs;
}
static jx_t loss(const jx_t *a, void *u) {
  (void)u;
  jx_t logp = jx_log_softmax(predict(a[0], a[1]), -1);
  return jx_neg(jx_mean(jx_sum_axes(jx_mul(logp, jx_one_hot(a[2], C)), 1, (int[]){-1}, false)));
}

typedef struct {
  jx_fn *vg;
  jx_optimizer *opt; /* jx_sgd(0.01) (the peer's plain SGD) or jx_adam(1e-3) (the demo's) */
} ctx_t;

/* (params, state, x, y) -> (params, state, loss) */
static jx_t step_body(const jx_t *a, void *u) {
  ctx_t *c = u;
  jx_t vg = jx_call(c->vg, (jx_t[]){a[0], a[2], a[3]});
  jx_t r = jx_optim_update(c->opt, jx_at(vg, 1), a[1], a[0]);
  return JX_TUPLE(jx_apply_updates(a[0], jx_at(r, 0)), jx_at(r, 1), jx_at(vg, 0));
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* one jx training run: its functions, params, optimizer state, buffers */
typedef struct {
  jx_fn *lf, *vg, *jvg, *body, *step;
  ctx_t ctx;
  jx_t key, params, state;
  float *x;
  int32_t *y, *perm;
  const uint8_t *images, *labels;
  int64_t n;
  int epochs;
  double first_call_ms, loss;
} trainer;

static void trainer_init(trainer *t, bool adam, const uint8_t *images, const uint8_t *labels, int64_t n) {
  memset(t, 0, sizeof *t);
  t->images = images, t->labels = labels, t->n = n;
  t->lf = jx_fn_new(loss, 3, NULL), t->vg = jx_value_and_grad(t->lf, 0), t->jvg = jx_jit(t->vg);
  t->ctx = (ctx_t){t->jvg, adam ? jx_adam(jx_constant_schedule(1e-3), 0.9, 0.999, 1e-8)
                                : jx_sgd(jx_constant_schedule(0.01), 0, false)};
  t->body = jx_fn_new(step_body, 4, &t->ctx), t->step = jx_jit(t->body);
  t->key = jx_retain(jx_random_key(0));
  jx_pool_push();
  jx_t ks = jx_random_split(t->key, 3), W[3];
  const int64_t fan[4] = {D, H, H, C};
  for (int i = 0; i < 3; i++) {
    jx_t k = jx_reshape(jx_slice(ks, (int64_t[]){i, 0}, (int64_t[]){i + 1, 2}, NULL), JX_SHAPE(2));
    W[i] = jx_mul(jx_random_normal(k, JX_F32, JX_SHAPE(fan[i], fan[i + 1])),
                  jx_scalar(sqrt(2.0 / (double)(fan[i] + fan[i + 1]))));
  }
  t->params = jx_retain(JX_LIST(JX_TUPLE(W[0], jx_zeros(JX_F32, JX_SHAPE(H))),
                                JX_TUPLE(W[1], jx_zeros(JX_F32, JX_SHAPE(H))),
                                JX_TUPLE(W[2], jx_zeros(JX_F32, JX_SHAPE(C)))));
  t->state = jx_retain(jx_optim_init(t->ctx.opt, t->params));
  jx_pool_pop();
  t->x = malloc(sizeof(float) * B * D);
  t->y = malloc(sizeof(int32_t) * B), t->perm = malloc(sizeof(int32_t) * (size_t)n);
}

/* one epoch (steps < 0: the whole epoch) as the demo runs it: shuffle, build batches, step. Seconds, or NaN. */
static double trainer_epoch(trainer *t, int steps) {
  double t0 = now();
  jx_pool_push();
  jx_t p = jx_random_permutation(jx_random_fold_in(t->key, (uint32_t)t->epochs++), t->n);
  int bad = jx_read(p, JX_I32, t->perm, sizeof(int32_t) * (size_t)t->n);
  jx_pool_pop();
  if (bad) return NAN;
  if (steps < 0) steps = STEPS;
  for (int s = 0; s < steps; s++) {
    for (int i = 0; i < B; i++) {
      int64_t j = t->perm[s * B + i];
      t->y[i] = t->labels[j];
      for (int k = 0; k < D; k++)
        t->x[i * D + k] = (float)t->images[j * D + k] * (1.0f / 255.0f / 0.3f) - 0.5f;
    }
    double c0 = now();
    jx_pool_push();
    jx_t out = JX_CALL(t->step, t->params, t->state, jx_array(JX_F32, JX_SHAPE(B, D), t->x),
                       jx_array(JX_I32, JX_SHAPE(B), t->y));
    if (!jx_ok(out)) {
      fprintf(stderr, "bench_train: step failed: %s\n", jx_error(out));
      jx_pool_pop();
      return NAN;
    }
    t->loss = jx_item(jx_at(out, 2));
    jx_t np = jx_retain(jx_at(out, 0)), ns = jx_retain(jx_at(out, 1));
    jx_pool_pop();
    jx_release(t->params), jx_release(t->state);
    t->params = np, t->state = ns;
    if (t->first_call_ms == 0) t->first_call_ms = (now() - c0) * 1e3;
  }
  return now() - t0;
}

static void trainer_free(trainer *t) {
  jx_release(t->params), jx_release(t->state), jx_release(t->key);
  free(t->x), free(t->y), free(t->perm);
  jx_fn_free(t->step), jx_fn_free(t->body), jx_fn_free(t->jvg), jx_fn_free(t->vg), jx_fn_free(t->lf);
  jx_optim_free(t->ctx.opt);
}

/* the peer: median ms/step of mlp_bench.py's SGD train step, or NaN */
static double torch_step_ms(const char *py, const char *script, int threads, int blas, const char *policy,
                            char *cfg, size_t cap) {
  char cmd[2048], env[64] = "";
  if (policy) snprintf(env, sizeof env, "OMP_WAIT_POLICY=%s ", policy);
  snprintf(cmd, sizeof cmd, "%s'%s' '%s' --threads %d --blas-threads %d --no-pe --steps 15 --reps 9 2>&1",
           env, py, script, threads, blas);
  snprintf(cfg, cap, "%d thr + BLAS %d%s%s", threads, blas, policy ? ", OMP_WAIT_POLICY=" : "",
           policy ? policy : "");
  FILE *p = popen(cmd, "r");
  if (!p) return NAN;
  char line[1024];
  double ms = NAN;
  while (fgets(line, sizeof line, p)) {
    const char *m = strstr(line, "train step (fwd+bwd+SGD)");
    const char *med = m ? strstr(line, "median ") : NULL;
    if (med)
      ms = atof(med + 7);
    else if (strstr(line, "Error") || strstr(line, "error"))
      fprintf(stderr, "  peer: %s", line);
  }
  int st = pclose(p);
  return st == 0 ? ms : NAN;
}

typedef struct {
  const char *label;
  double v[64];
  int n;
} series;
static void add(series *s, double v) {
  if (!isnan(v) && s->n < 64) s->v[s->n++] = v;
}
static double med(series *s) {
  if (!s->n) return NAN;
  double t[64];
  memcpy(t, s->v, sizeof(double) * (size_t)s->n);
  qsort(t, (size_t)s->n, sizeof t[0], cmp);
  return t[s->n / 2];
}
static double lo(series *s) {
  double m = NAN;
  for (int i = 0; i < s->n; i++)
    if (isnan(m) || s->v[i] < m) m = s->v[i];
  return m;
}

int main(int argc, char **argv) {
  int rounds = 3;
  bool peer = true;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
      rounds = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--no-peer"))
      peer = false;
    else {
      fprintf(stderr, "usage: bench_train [--rounds N (3)] [--no-peer]\n");
      return 2;
    }
  }
  if (rounds < 1) rounds = 1;
  if (rounds > 64) rounds = 64;
  int T = jx_num_threads();
  int64_t n = (int64_t)STEPS * B;
  /* synthetic u8 "images" with the letters' statistics (mostly background) */
  uint8_t *images = malloc((size_t)n * D), *labels = malloc((size_t)n);
  uint64_t s = 88172645463325252ull;
  for (int64_t i = 0; i < n * D; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    images[i] = (s & 7) == 0 ? (uint8_t)(s >> 56) : (uint8_t)((s >> 60) & 7);
  }
  for (int64_t i = 0; i < n; i++) labels[i] = (uint8_t)(i % C);

  const char *py = getenv("PY") ? getenv("PY") : "/usr/bin/python3";
  char script[4400];
  const char *peers = getenv("PEERS");
  if (peers) {
    snprintf(script, sizeof script, "%s/mlp_bench.py", peers);
  } else { /* <repo>/bench/bench_train.c -> <repo>/../shared/bench/peers */
    char here[4096];
    snprintf(here, sizeof here, "%s", __FILE__);
    char *slash = strrchr(here, '/');
    if (slash) *slash = 0;
    snprintf(script, sizeof script, "%s/../../shared/bench/peers/mlp_bench.py", slash ? here : ".");
  }
  FILE *f = peer ? fopen(script, "r") : NULL;
  if (f) fclose(f);
  bool have_peer = f != NULL;

  printf("bench_train: one epoch = %d steps x batch %d (%lld examples), %d-%d-%d-%d tanh MLP, softmax CE, %d "
         "thread%s\n",
         STEPS, B, (long long)n, D, H, H, C, T, T == 1 ? "" : "s");
  printf("%d rounds, each: one jx SGD epoch, one jx Adam epoch, then the peer (interleaved: drift on a "
         "shared machine "
         "hits both)\n",
         rounds);
  if (!peer)
    printf("(peer skipped: --no-peer)\n");
  else if (!have_peer)
    printf("(peer skipped: %s not found; set PEERS=dir)\n", script);
  fflush(stdout);

  trainer sgd, adam;
  trainer_init(&sgd, false, images, labels, n);
  trainer_init(&adam, true, images, labels, n);
  /* warm up: trace + compile (or the disk cache), a few steps */
  trainer_epoch(&sgd, 5), trainer_epoch(&adam, 5);
  series js = {"jx   jit(value_and_grad + SGD), shuffled u8 batches", {0}, 0};
  series ja = {"jx   jit(value_and_grad + Adam), the demo's step", {0}, 0};
  series tp[2] = {{NULL, {0}, 0}, {NULL, {0}, 0}};
  char cfg[2][128] = {"", ""};
  int ncfg = have_peer ? (T > 1 ? 2 : 1) : 0;
  for (int r = 0; r < rounds; r++) {
    add(&js, trainer_epoch(&sgd, -1));
    add(&ja, trainer_epoch(&adam, -1));
    for (int c = 0; c < ncfg; c++) {
      double ms = c == 0 ? torch_step_ms(py, script, T, T, T > 1 ? "passive" : NULL, cfg[c], sizeof cfg[c])
                         : torch_step_ms(py, script, 1, T, NULL, cfg[c], sizeof cfg[c]);
      add(&tp[c], ms * STEPS / 1e3);
    }
    fprintf(stderr, "  round %d/%d done\n", r + 1, rounds);
  }

  printf("\n%-76s %8s %8s %8s %11s\n", "one training epoch (seconds)", "median", "min", "ms/step",
         "examples/s");
  series *all[4] = {&js, &ja, &tp[0], &tp[1]};
  char labels2[2][400];
  for (int c = 0; c < ncfg; c++) {
    snprintf(labels2[c], sizeof labels2[c], "torch eager SGD step x %d (%s)", STEPS, cfg[c]);
    tp[c].label = labels2[c];
  }
  for (int i = 0; i < 2 + ncfg; i++) {
    series *q = all[i];
    if (!q->n) {
      printf("%-76s %8s %8s %8s %11s  (failed)\n", q->label, "n/a", "n/a", "n/a", "n/a");
      continue;
    }
    double m = med(q);
    printf("%-76s %8.3f %8.3f %8.3f %11.0f\n", q->label, m, lo(q), m / STEPS * 1e3, (double)n / m);
  }
  printf("\njx first step (trace + compile, or the disk cache): SGD %.0f ms, Adam %.0f ms; final losses %.3f "
         "/ %.3f\n",
         sgd.first_call_ms, adam.first_call_ms, sgd.loss, adam.loss);
  int best = -1;
  for (int c = 0; c < ncfg; c++)
    if (tp[c].n && (best < 0 || med(&tp[c]) < med(&tp[best]))) best = c;
  if (best >= 0 && js.n)
    printf("ratio jx SGD epoch / torch SGD epoch, best torch config (%s): median %.2f, min %.2f  (< 1: jx "
           "faster)\n",
           cfg[best], med(&js) / med(&tp[best]), lo(&js) / lo(&tp[best]));
  int rc = js.n && ja.n ? 0 : 1;
  trainer_free(&sgd), trainer_free(&adam);
  free(images), free(labels);
  return rc;
}
