/* Training, written the way JAX's README and examples write it.
 *
 *   def predict(params, inputs):
 *     for W, b in params:
 *       outputs = jnp.dot(inputs, W) + b
 *       inputs = jnp.tanh(outputs)
 *     return outputs
 *
 *   def loss(params, inputs, labels):          # softmax cross-entropy
 *     logp = jax.nn.log_softmax(predict(params, inputs))
 *     return -jnp.mean(jnp.sum(logp * one_hot(labels), axis=-1))
 *
 *   grad_loss = jit(value_and_grad(loss))
 *   opt = optax.adam(lr)                        # or sgd with momentum
 *   updates, state = opt.update(grads, state, params)
 *   params = optax.apply_updates(params, updates)
 *
 * in C with jx's optimizers, which are optax's: jx_adam(lr), jx_optim_update,
 * jx_apply_updates. The whole training step (value_and_grad, the optimizer,
 * the update) is one jitted function, so the optimizer's elementwise
 * arithmetic fuses into a few loops.
 *
 * With --dp-clip C the gradient is DP-SGD's: per-example gradients from
 * jit(vmap(grad_loss, (None, 0, 0))), each clipped to L2 norm <= C,
 * summed, plus Gaussian noise of std sigma*C (jx_random), over the batch.
 *
 * Memory: params and optimizer state live outside every pool (jx_retain);
 * each step runs in its own jx_pool_push/pop, keeps the new params and
 * state with jx_retain and releases the old ones. */
#include "letters.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- model */

jx_t lt_predict(jx_t params, jx_t inputs) { return lt_predict_in(params, inputs, JX_F32); }

/* In bf16 (mixed precision) the casts are part of the function: grad
 * takes the f32 master weights' gradients through them (a cast's
 * transpose casts back), so the optimizer never sees bf16. */
jx_t lt_predict_in(jx_t params, jx_t inputs, jx_dtype ct) {
  jx_t outputs = NULL;
  if (ct != JX_F32) inputs = jx_astype(inputs, ct);
  for (int i = 0; i < jx_len(params); i++) {
    jx_t W = jx_at(jx_at(params, i), 0), b = jx_at(jx_at(params, i), 1);
    if (ct != JX_F32) W = jx_astype(W, ct), b = jx_astype(b, ct);
    outputs = jx_add(jx_dot(inputs, W), b);
    inputs = jx_tanh(outputs);
  }
  return ct != JX_F32 ? jx_astype(outputs, JX_F32) : outputs;
}

/* (params, inputs f32[B, D], labels i32[B]); also one example: f32[D], i32[].
 * user: NULL, or the compute dtype (const jx_dtype *: JX_BF16) */
jx_t lt_loss(const jx_t *args, void *user) {
  jx_t logits = lt_predict_in(args[0], args[1], user ? *(const jx_dtype *)user : JX_F32);
  int nclasses = (int)jx_shape(logits)[jx_ndim(logits) - 1];
  jx_t logp = jx_log_softmax(logits, -1);
  const int last[1] = {-1};
  jx_t picked = jx_sum_axes(jx_mul(logp, jx_one_hot(args[2], nclasses)), 1, last, false);
  return jx_neg(jx_mean(picked));
}

static jx_t predict_body(const jx_t *args, void *user) {
  return lt_predict_in(args[0], args[1], user ? *(const jx_dtype *)user : JX_F32);
}

static const jx_dtype bf16_compute = JX_BF16;

/* Glorot-normal weights (stddev sqrt(2 / (fan_in + fan_out))), zero biases */
jx_t lt_init_params(jx_t key, int nlayers, const int *sizes) {
  jx_t layers[32];
  jx_t keys = jx_random_split(key, nlayers);
  for (int i = 0; i < nlayers; i++) {
    int64_t start[2] = {i, 0}, limit[2] = {i + 1, 2};
    jx_t k = jx_reshape(jx_slice(keys, start, limit, NULL), JX_SHAPE(2));
    double scale = sqrt(2.0 / (sizes[i] + sizes[i + 1]));
    jx_t W = jx_mul(jx_random_normal(k, JX_F32, JX_SHAPE(sizes[i], sizes[i + 1])), jx_scalar(scale));
    jx_t b = jx_zeros(JX_F32, JX_SHAPE(sizes[i + 1]));
    layers[i] = JX_TUPLE(W, b);
  }
  return jx_list(nlayers, layers);
}

void lt_to_input(const lt_data *d, const int64_t *idx, int64_t n, float mean, float stdv, float *out) {
  int64_t D = (int64_t)d->rows * d->cols;
  float a = 1.0f / (255.0f * stdv), b = -mean / stdv;
  for (int64_t i = 0; i < n; i++) {
    const uint8_t *src = d->images + (idx ? idx[i] : i) * D;
    float *dst = out + i * D;
    for (int64_t j = 0; j < D; j++) dst[j] = (float)src[j] * a + b;
  }
}

void lt_to_input_shifted(const lt_data *d, const int64_t *idx, int64_t n, float mean, float stdv,
                         const int32_t *shifts, float *out) {
  int R = d->rows, C = d->cols;
  float a = 1.0f / (255.0f * stdv), b = -mean / stdv;
  for (int64_t i = 0; i < n; i++) {
    const uint8_t *src = d->images + idx[i] * R * C;
    float *dst = out + i * R * C;
    int dx = shifts[2 * i], dy = shifts[2 * i + 1];
    for (int r = 0; r < R; r++) {
      int sr = r - dy;
      for (int c = 0; c < C; c++) {
        int sc = c - dx;
        dst[r * C + c] = (sr >= 0 && sr < R && sc >= 0 && sc < C ? (float)src[sr * C + sc] : 0.0f) * a + b;
      }
    }
  }
}

static jx_t leaf_scale(jx_t x, void *s) { return jx_mul(x, (jx_t)s); }

/* ---------------------------------------------------------- train steps */

typedef struct {
  jx_optimizer *opt;
  jx_fn *value_and_grad; /* jit(value_and_grad(loss)) */
  jx_fn *perex_grads;    /* jit(vmap(grad(loss), (None, 0, 0))) */
  jx_fn *batched_norm;   /* vmap(global norm of one example's gradient tree) */
  double dp_clip, dp_noise;
} step_ctx;

/* (params, state, x, y) -> (params, state, loss) */
static jx_t train_step(const jx_t *args, void *user) {
  step_ctx *c = (step_ctx *)user;
  jx_t vg = JX_CALL(c->value_and_grad, args[0], args[2], args[3]);
  jx_t r = jx_optim_update(c->opt, jx_at(vg, 1), args[1], args[0]);
  return JX_TUPLE(jx_apply_updates(args[0], jx_at(r, 0)), jx_at(r, 1), jx_at(vg, 0));
}

/* Data parallel, as jax.pmap writes it: each device takes its shard of the
 * global batch, the loss and gradients are averaged over the devices
 * (pmean), and every device applies the same update to its replica.
 *   (params, state, x [B/n, D], y [B/n]) -> (params, state, loss) per device */
static jx_t dp_train_step(const jx_t *args, void *user) {
  step_ctx *c = (step_ctx *)user;
  jx_t vg = JX_CALL(c->value_and_grad, args[0], args[2], args[3]);
  jx_t grads = jx_pmean(jx_at(vg, 1), "batch");
  jx_t r = jx_optim_update(c->opt, grads, args[1], args[0]);
  return JX_TUPLE(jx_apply_updates(args[0], jx_at(r, 0)), jx_at(r, 1), jx_pmean(jx_at(vg, 0), "batch"));
}

/* one example's gradient norm (vmapped over the batch: per-example norms) */
static jx_t global_norm(const jx_t *args, void *user) {
  (void)user;
  return jx_global_norm(args[0]);
}
/* sum_b w[b] * leaf[b]: the batch axis contracted with a dot (one GEMV over
 * the contiguous per-example rows, rather than an elementwise scale and a
 * reduction over the leading axis) */
static jx_t weighted_batch_sum(jx_t leaf, void *w) {
  const int64_t *sh = jx_shape(leaf);
  int nd = jx_ndim(leaf);
  jx_t flat = jx_reshape(leaf, JX_SHAPE(sh[0], -1));
  return jx_reshape(jx_dot((jx_t)w, flat), nd - 1, sh + 1);
}
typedef struct {
  jx_t key;
  int i;
  double std;
} noise_ctx;
static jx_t add_noise(jx_t g, void *u) {
  noise_ctx *n = (noise_ctx *)u;
  jx_t k = jx_random_fold_in(n->key, (uint32_t)n->i++);
  return jx_add(g, jx_mul(jx_random_normal(k, JX_F32, jx_ndim(g), jx_shape(g)), jx_scalar(n->std)));
}

/* DP-SGD: (params, state, x, y, key) -> (params, state, loss).
 * Per-example gradients g_b from jit(vmap(grad(loss), (None, 0, 0))), each
 * scaled by min(1, C / |g_b|) so its norm is at most C, summed, noised,
 * averaged. The scaled sum is one dot per leaf: sum_b factor_b * g_b. */
static jx_t dp_step(const jx_t *args, void *user) {
  step_ctx *c = (step_ctx *)user;
  jx_t grads = JX_CALL(c->perex_grads, args[0], args[2], args[3]);
  jx_t norms = JX_CALL(c->batched_norm, grads); /* f32[B] */
  jx_t factor =
      jx_minimum(jx_scalar(1.0), jx_div(jx_scalar(c->dp_clip), jx_maximum(norms, jx_scalar(1e-12))));
  jx_t total = jx_tree_map(weighted_batch_sum, grads, factor);
  if (c->dp_noise > 0) {
    noise_ctx n = {args[4], 0, c->dp_noise * c->dp_clip};
    total = jx_tree_map(add_noise, total, &n);
  }
  double B = (double)jx_shape(args[2])[0];
  jx_t g = jx_tree_map(leaf_scale, total, jx_scalar(1.0 / B));
  jx_t r = jx_optim_update(c->opt, g, args[1], args[0]);
  jx_t loss_args[3] = {args[0], args[2], args[3]}, loss = lt_loss(loss_args, NULL);
  return JX_TUPLE(jx_apply_updates(args[0], jx_at(r, 0)), jx_at(r, 1), jx_stop_gradient(loss));
}

/* ------------------------------------------------------------ evaluation */

#define EVAL_CHUNK 500

static double evaluate_with(jx_fn *fwd, jx_t params, const lt_data *d, float mean, float stdv, int nclasses,
                            int64_t *confusion) {
  int64_t D = (int64_t)d->rows * d->cols, correct = 0;
  float *x = (float *)malloc(sizeof(float) * (size_t)(EVAL_CHUNK * D));
  int32_t pred[EVAL_CHUNK];
  if (confusion) memset(confusion, 0, sizeof(int64_t) * (size_t)nclasses * nclasses);
  for (int64_t s = 0; s < d->n; s += EVAL_CHUNK) {
    int64_t m = d->n - s < EVAL_CHUNK ? d->n - s : EVAL_CHUNK;
    lt_data view = *d;
    view.images = d->images + s * D;
    lt_to_input(&view, NULL, m, mean, stdv, x);
    if (m < EVAL_CHUNK)
      memset(x + m * D, 0, sizeof(float) * (size_t)((EVAL_CHUNK - m) * D)); /* one shape: one compile */
    jx_pool_push();
    jx_t logits = JX_CALL(fwd, params, jx_array(JX_F32, JX_SHAPE(EVAL_CHUNK, D), x));
    jx_t am = jx_argmax(logits, 1, false);
    int bad = jx_read(am, JX_I32, pred, sizeof pred);
    if (bad) fprintf(stderr, "evaluation failed: %s\n", jx_ok(logits) ? "read" : jx_error(logits));
    jx_pool_pop();
    if (bad) break;
    for (int64_t i = 0; i < m; i++) {
      int t = d->labels[s + i], p = pred[i];
      correct += t == p;
      if (confusion && t < nclasses && p >= 0 && p < nclasses) confusion[t * nclasses + p]++;
    }
  }
  free(x);
  return d->n ? (double)correct / (double)d->n : 0.0;
}

double lt_evaluate(jx_t params, const lt_data *d, float mean, float stdv, int nclasses, int64_t *confusion) {
  jx_fn *p = jx_fn_new(predict_body, 2, NULL), *fwd = jx_jit(p);
  double acc = evaluate_with(fwd, params, d, mean, stdv, nclasses, confusion);
  jx_fn_free(fwd), jx_fn_free(p);
  return acc;
}

/* ------------------------------------------------------------- training */

/* The optimizer, as optax builds it: the learning rate decays to 0 over
 * the run on a cosine (constant when the run has no steps); adam, adamw
 * (adam with decoupled weight decay) or sgd with momentum, which with
 * weight decay is chain(momentum, add_decayed_weights, learning rate). */
jx_optimizer *lt_optimizer(const lt_train_opts *o, int64_t total_steps) {
  jx_schedule *lr =
      total_steps > 0 ? jx_cosine_decay_schedule(o->lr, total_steps, 0.0) : jx_constant_schedule(o->lr);
  double wd = o->weight_decay;
  if (strcmp(o->opt, "sgd") != 0)
    return wd > 0 ? jx_adamw(lr, 0.9, 0.999, 1e-8, wd, NULL) : jx_adam(lr, 0.9, 0.999, 1e-8);
  if (wd <= 0) return jx_sgd(lr, o->momentum, false);
  jx_optimizer *parts[3] = {jx_momentum(o->momentum, false), jx_add_decayed_weights(wd, NULL),
                            jx_scale_by_learning_rate(lr)};
  return jx_chain(3, parts);
}

void lt_result_free(lt_result *r) {
  free(r->confusion);
  if (r->params) jx_release(r->params);
  memset(r, 0, sizeof *r);
}

int lt_train(const lt_data *train, const lt_data *test, const lt_train_opts *o, jx_t params_in, lt_result *r,
             lt_err *e) {
  memset(r, 0, sizeof *r);
  int64_t D = (int64_t)train->rows * train->cols;
  int B = o->batch;
  if (test->rows != train->rows || test->cols != train->cols)
    return lt_fail(e, "wrong image size: training images are %dx%d but test images are %dx%d", train->rows,
                   train->cols, test->rows, test->cols);
  if (o->epochs > 0 && train->n < B)
    return lt_fail(e, "%lld training examples are fewer than one batch of %d", (long long)train->n, B);
  int nclasses = lt_data_classes(train), tc = lt_data_classes(test);
  if (tc > nclasses) nclasses = tc;
  if (nclasses < 2) return lt_fail(e, "the labels name fewer than two classes");
  if (o->epochs > 256) return lt_fail(e, "at most 256 epochs");
  /* data parallel: nshards = processes x local devices; this process takes
   * the B / procs examples from proc_off of every global batch */
  int ndev = o->devices > 1 ? o->devices : 1, procs = o->processes ? jx_process_count() : 1;
  int nshards = ndev * procs, proc_off = o->processes ? jx_process_index() * (B / procs) : 0;
  if (nshards > 1 && B % nshards)
    return lt_fail(e, "the batch of %d does not split evenly over %d processes x %d devices", B, procs, ndev);
  if (nshards > 1 && o->dp_clip > 0)
    return lt_fail(e, "--devices or --data-parallel with --dp-clip is not supported");
  if (nshards > 1) {
    jx_pool_push();
    jx_t derr = jx_set_cpu_devices(ndev);
    int bad = derr != NULL ? lt_fail(e, "%s", jx_error(derr)) : 0;
    jx_pool_pop();
    if (bad) return bad;
  }

  /* input normalization from the training pixels (kept with the params) */
  double s1 = 0, s2 = 0;
  int64_t cnt = train->n * D;
  for (int64_t i = 0; i < cnt; i++) s1 += train->images[i], s2 += (double)train->images[i] * train->images[i];
  r->mean = (float)(s1 / cnt / 255.0);
  r->stdv = (float)sqrt(fmax(s2 / cnt / 65025.0 - (double)r->mean * r->mean, 1e-6));
  if (o->have_norm) r->mean = o->norm[0], r->stdv = o->norm[1];
  r->nclasses = nclasses;

  jx_t key = jx_retain(jx_random_key(o->seed));
  jx_t params;
  if (params_in) {
    jx_t W0 = jx_at(jx_at(params_in, 0), 0), last = jx_at(params_in, jx_len(params_in) - 1);
    if (jx_ndim(W0) != 2 || jx_shape(W0)[0] != D) {
      jx_release(key);
      return lt_fail(
          e, "wrong image size: the loaded parameters take %lld inputs, the images have %dx%d = %lld pixels",
          jx_ndim(W0) == 2 ? (long long)jx_shape(W0)[0] : -1LL, train->rows, train->cols, (long long)D);
    }
    if (jx_shape(jx_at(last, 1))[0] < nclasses) {
      jx_release(key);
      return lt_fail(e, "the loaded parameters have %lld outputs, the data has %d classes",
                     (long long)jx_shape(jx_at(last, 1))[0], nclasses);
    }
    nclasses = (int)jx_shape(jx_at(last, 1))[0];
    r->nclasses = nclasses;
    params = jx_retain(params_in);
  } else {
    int sizes[34], nl = 0;
    sizes[nl++] = (int)D;
    for (int i = 0; i < o->nhidden && i < 30; i++) sizes[nl++] = o->hidden[i];
    sizes[nl++] = nclasses;
    jx_pool_push();
    params = jx_retain(lt_init_params(jx_random_fold_in(key, 0), nl - 1, sizes));
    jx_pool_pop();
  }

  int64_t steps_per_epoch = train->n / B, total_steps = steps_per_epoch * o->epochs;
  if (o->max_steps > 0 && total_steps > o->max_steps) total_steps = o->max_steps;
  jx_optimizer *opt = lt_optimizer(o, total_steps);
  void *prec = o->bf16 ? (void *)&bf16_compute : NULL;
  jx_fn *loss_fn = jx_fn_new(lt_loss, 3, prec);
  jx_fn *vg = jx_value_and_grad(loss_fn, 0), *jvg = jx_jit(vg);
  jx_fn *grad = NULL, *jgrad = NULL, *vm = NULL, *pe = NULL, *norm_fn = NULL, *bnorm = NULL;
  step_ctx ctx = {opt, jvg, NULL, NULL, o->dp_clip, o->dp_noise};
  bool dp = o->dp_clip > 0;
  if (dp) {
    grad = jx_grad(loss_fn, 0), jgrad = jx_jit(grad);
    const int per_example[3] = {JX_NONE, 0, 0}; /* params shared, the batch split */
    vm = jx_vmap(jgrad, per_example, 0), pe = jx_jit(vm);
    norm_fn = jx_fn_new(global_norm, 1, NULL), bnorm = jx_vmap(norm_fn, NULL, 0);
    ctx.perex_grads = pe, ctx.batched_norm = bnorm;
  }
  jx_fn *step_body = jx_fn_new(dp ? dp_step : nshards > 1 ? dp_train_step : train_step, dp ? 5 : 4, &ctx);
  /* out_axis JX_NONE (JAX's out_axes=None): the replicas are equal, device 0's is the result */
  const int sharded[4] = {JX_NONE, JX_NONE, 0, 0};
  jx_fn *step = nshards > 1 ? jx_pmap(step_body, sharded, JX_NONE, "batch") : jx_jit(step_body);
  jx_fn *pbody = jx_fn_new(predict_body, 2, prec), *fwd = jx_jit(pbody);

  jx_pool_push();
  jx_t state = jx_retain(jx_optim_init(opt, params));
  jx_pool_pop();

  float *x = (float *)malloc(sizeof(float) * (size_t)(B * D));
  int32_t *y = (int32_t *)malloc(sizeof(int32_t) * (size_t)B),
          *perm = (int32_t *)malloc(sizeof(int32_t) * (size_t)train->n);
  int64_t *idx = (int64_t *)malloc(sizeof(int64_t) * (size_t)B);
  int32_t *shifts = (int32_t *)malloc(sizeof(int32_t) * 2 * (size_t)B);
  int rc = 0;
  int64_t global_step = 0;
  int Bp = B / procs; /* this process's examples of each global batch */
  double t_start = lt_now();
  /* a sample of the training set to report training accuracy on */
  lt_data sample = *train;
  if (sample.n > 5000) sample.n = 5000;

  for (int ep = 0; ep < o->epochs && rc == 0 && (o->max_steps <= 0 || global_step < total_steps); ep++) {
    jx_pool_push();
    jx_t ekey = jx_random_fold_in(jx_random_fold_in(key, 1), (uint32_t)ep);
    jx_t p = jx_random_permutation(ekey, train->n);
    if (jx_read(p, JX_I32, perm, sizeof(int32_t) * (size_t)train->n))
      rc = lt_fail(e, "shuffle failed: %s", jx_ok(p) ? "read" : jx_error(p));
    jx_pool_pop();
    if (rc) break;
    double t0 = lt_now(), last_draw = 0, loss_sum = 0;
    int64_t nsteps = 0;
    for (int64_t s = 0; s < steps_per_epoch && (o->max_steps <= 0 || global_step < total_steps); s++) {
      for (int i = 0; i < B; i++) idx[i] = perm[s * B + i], y[i] = train->labels[idx[i]];
      jx_pool_push();
      if (o->shift > 0) { /* augmentation: every example moved by a random (dx, dy) */
        jx_t k = jx_random_fold_in(jx_random_fold_in(key, 3), (uint32_t)global_step);
        jx_t sh = jx_random_randint(k, JX_I32, JX_SHAPE(B, 2), -o->shift, o->shift + 1);
        if (jx_read(sh, JX_I32, shifts, sizeof(int32_t) * 2 * (size_t)B))
          memset(shifts, 0, sizeof(int32_t) * 2 * (size_t)B);
        lt_to_input_shifted(train, idx + proc_off, Bp, r->mean, r->stdv, shifts + 2 * proc_off, x);
      } else {
        lt_to_input(train, idx + proc_off, Bp, r->mean, r->stdv, x);
      }
      jx_t X = jx_array(JX_F32, JX_SHAPE(Bp, D), x), Y = jx_array(JX_I32, JX_SHAPE(Bp), y + proc_off);
      jx_t out;
      if (dp) {
        out = JX_CALL(step, params, state, X, Y,
                      jx_random_fold_in(jx_random_fold_in(key, 2), (uint32_t)global_step));
      } else if (nshards > 1) { /* local device k takes examples [k Bp/ndev, (k+1) Bp/ndev) of ours */
        out = JX_CALL(step, params, state, jx_reshape(X, JX_SHAPE(ndev, Bp / ndev, D)),
                      jx_reshape(Y, JX_SHAPE(ndev, Bp / ndev)));
      } else {
        out = JX_CALL(step, params, state, X, Y);
      }
      double lv = jx_ok(out) ? jx_item(jx_at(out, 2)) : NAN;
      if (!jx_ok(out) || !isfinite(lv)) {
        rc = lt_fail(e, "training step %lld failed: %s", (long long)global_step,
                     jx_ok(out) ? "the loss is not finite" : jx_error(out));
        jx_pool_pop();
        break;
      }
      jx_t np = jx_retain(jx_at(out, 0)), ns = jx_retain(jx_at(out, 1));
      jx_pool_pop();
      jx_release(params), jx_release(state);
      params = np, state = ns;
      loss_sum += lv, nsteps++, global_step++;
      double now = lt_now();
      if (!o->quiet && o->progress && now - last_draw > 0.1) {
        lt_progress(true, ep + 1, o->epochs, (s + 1) * B, steps_per_epoch * B, loss_sum / nsteps,
                    (double)((s + 1) * B) / (now - t0), now - t_start, false);
        last_draw = now;
      }
    }
    if (rc) break;
    double t1 = lt_now();
    r->loss[ep] = loss_sum / (nsteps ? nsteps : 1);
    r->epoch_s[ep] = t1 - t0;
    r->ex_per_s[ep] = (double)(nsteps * B) / (t1 - t0);
    r->test_acc[ep] = evaluate_with(fwd, params, test, r->mean, r->stdv, nclasses, NULL);
    r->train_acc[ep] = evaluate_with(fwd, params, &sample, r->mean, r->stdv, nclasses, NULL);
    r->epochs = ep + 1;
    if (!o->quiet) {
      lt_progress(o->progress, ep + 1, o->epochs, nsteps * B, steps_per_epoch * B, r->loss[ep],
                  r->ex_per_s[ep], lt_now() - t_start, true);
      printf("  train acc %.4f  held-out acc %.4f\n", r->train_acc[ep], r->test_acc[ep]);
      fflush(stdout);
    }
  }
  if (rc == 0) {
    r->confusion = (int64_t *)calloc((size_t)nclasses * nclasses, sizeof(int64_t));
    r->test_accuracy = evaluate_with(fwd, params, test, r->mean, r->stdv, nclasses, r->confusion);
    r->total_s = lt_now() - t_start;
    r->params = params;
  } else {
    jx_release(params);
  }
  jx_release(state);
  jx_release(key);
  free(x), free(y), free(perm), free(idx), free(shifts);
  jx_fn_free(fwd), jx_fn_free(pbody), jx_fn_free(step), jx_fn_free(step_body);
  if (dp)
    jx_fn_free(bnorm), jx_fn_free(norm_fn), jx_fn_free(pe), jx_fn_free(vm), jx_fn_free(jgrad),
        jx_fn_free(grad);
  jx_fn_free(jvg), jx_fn_free(vg), jx_fn_free(loss_fn);
  jx_optim_free(opt);
  return rc;
}
