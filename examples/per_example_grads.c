/* Per-example gradients with vmap, and DP-SGD style gradient clipping.
 *
 * JAX's README:
 *
 *   batched_predict = vmap(predict, in_axes=(None, 0))
 *   per_example_grads = jit(vmap(grad_loss, in_axes=(None, 0, 0)))
 *
 * vmap(f, in_axes) turns a function written for ONE example into one that
 * takes a batch: in_axes says, per argument, which axis holds the batch
 * (JX_NONE: the argument is shared by every example, like params here).
 * Nothing runs in a C loop over examples: the function is traced once with
 * batched values and every op becomes its batched version (the per-example
 * dots of the backward pass become one matrix multiply).
 *
 * Differentially private SGD needs exactly that: clip each example's
 * gradient to a maximum L2 norm C, then average. We do the clipping with
 * jx ops too — a per-example clip function, vmapped over the batch of
 * gradient trees — and jit the whole private-gradient computation.
 * (Real DP-SGD also adds Gaussian noise to the average; jx's random API is
 * not there yet, so this example stops at clipping.)
 *
 * Run: build/examples/per_example_grads */
#include <jx.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* --- the model (see mlp_grad.c) ------------------------------------------ */

static jx_t predict(jx_t params, jx_t inputs) {
  jx_t outputs = NULL;
  for (int i = 0; i < jx_len(params); i++) {
    jx_t W = jx_at(jx_at(params, i), 0), b = jx_at(jx_at(params, i), 1);
    outputs = jx_add(jx_dot(inputs, W), b);
    inputs = jx_tanh(outputs);
  }
  return outputs;
}
static jx_t predict_body(const jx_t *args, void *user) {
  (void)user;
  return predict(args[0], args[1]);
}
static jx_t loss(const jx_t *args, void *user) { /* (params, inputs, targets) */
  (void)user;
  jx_t d = jx_sub(predict(args[0], args[1]), args[2]);
  return jx_sum(jx_mul(d, d));
}

/* --- data: xorshift64 pseudo-random f32 ---------------------------------- */

/* vmap's in_axes: params unmapped, the data mapped over its first axis
 * (named arrays rather than compound literals: this file also builds as
 * C++) */
static const int params_unmapped2[] = {JX_NONE, 0}, params_unmapped3[] = {JX_NONE, 0, 0};

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static jx_t random_array(float scale, int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  float *v = (float *)malloc(sizeof(float) * (size_t)n);
  for (int64_t i = 0; i < n; i++) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    v[i] = scale * (float)((double)(rng_state >> 40) / (double)(1 << 24) * 2 - 1);
  }
  jx_t x = jx_array(JX_F32, ndim, shape, v);
  free(v);
  return x;
}

/* --- clipping, written for ONE example's gradient tree -------------------- */

/* sum of squares of every leaf of a tree: a scalar */
static jx_t tree_sq_sum(jx_t t) {
  if (!jx_is_tree(t)) return jx_sum(jx_square(t));
  jx_t total = jx_scalar(0.0);
  for (int i = 0; i < jx_len(t); i++) total = jx_add(total, tree_sq_sum(jx_at(t, i)));
  return total;
}
static jx_t global_norm(const jx_t *args, void *user) {
  (void)user;
  return jx_sqrt(tree_sq_sum(args[0]));
}

static jx_t scale_leaf(jx_t leaf, void *factor) { return jx_mul(leaf, (jx_t)factor); }

/* g * min(1, C / |g|): gradients longer than C are shrunk to length C */
static jx_t clip(const jx_t *args, void *user) {
  double C = *(const double *)user;
  jx_t norm = jx_sqrt(tree_sq_sum(args[0]));
  jx_t factor = jx_minimum(jx_scalar(1.0), jx_div(jx_scalar(C), norm));
  return jx_tree_map(scale_leaf, args[0], factor);
}

/* --- the private gradient: per-example grads, clip each, average ---------- */

typedef struct {
  jx_fn *per_example_grads; /* (params, x[B,..], y[B,..]) -> tree with a leading B */
  jx_fn *batched_clip;      /* tree with a leading B -> the same, each example clipped */
} dp_fns;

static jx_t mean_over_batch(jx_t leaf, void *user) {
  (void)user;
  static const int axis0[] = {0};
  return jx_mean_axes(leaf, 1, axis0, false);
}
static jx_t private_grad(const jx_t *args, void *user) {
  dp_fns *fns = (dp_fns *)user;
  jx_t grads = jx_call(fns->per_example_grads, args);
  jx_t clipped = JX_CALL(fns->batched_clip, grads);
  return jx_tree_map(mean_over_batch, clipped, NULL);
}

static jx_t sgd_leaf(jx_t p, jx_t g, void *lr) { return jx_sub(p, jx_mul(jx_scalar(*(double *)lr), g)); }

int main(void) {
  enum { B = 8, IN = 4, HID = 8, OUT = 2 };
  jx_t params = JX_LIST(JX_TUPLE(random_array(0.5f, JX_SHAPE(IN, HID)), random_array(0.1f, JX_SHAPE(HID))),
                        JX_TUPLE(random_array(0.35f, JX_SHAPE(HID, OUT)), random_array(0.1f, JX_SHAPE(OUT))));
  jx_t x = random_array(1.0f, JX_SHAPE(B, IN));
  /* targets: mostly small, but example 3 is an outlier with a huge target,
   * so its gradient dominates an ordinary average */
  jx_t y = random_array(0.5f, JX_SHAPE(B, OUT));
  static const float outlier[] = {0, 0, 0, 1, 0, 0, 0, 0};
  jx_t is_outlier = jx_array(JX_F32, JX_SHAPE(B, 1), outlier);
  y = jx_add(y, jx_mul(jx_scalar(20.0), is_outlier)); /* broadcasts over the outputs */

  /* 1. Batched prediction: predict is written for one example; in_axes
   *    (None, 0) shares params and maps over the rows of x. */
  jx_fn *predict_fn = jx_fn_new(predict_body, 2, NULL);
  jx_fn *batched_predict = jx_vmap(predict_fn, params_unmapped2, 0);
  jx_t preds = JX_CALL(batched_predict, params, x);
  printf("batched_predict(params, x): f32[%lld,%lld], max |vmap - direct| = %g\n",
         (long long)jx_shape(preds)[0], (long long)jx_shape(preds)[1],
         jx_item(jx_max(jx_abs(jx_sub(preds, predict(params, x))))));

  /* 2. Per-example gradients: jit(vmap(grad_loss, in_axes=(None, 0, 0))).
   *    Each leaf of the result gets a leading batch axis: dW0 is [B,IN,HID]. */
  jx_fn *loss_fn = jx_fn_new(loss, 3, NULL);
  jx_fn *grad_fn = jx_grad(loss_fn, 0);
  jx_fn *grad_loss = jx_jit(grad_fn);
  jx_fn *vmapped = jx_vmap(grad_loss, params_unmapped3, 0);
  jx_fn *per_example_grads = jx_jit(vmapped);
  jx_t grads = JX_CALL(per_example_grads, params, x, y);
  if (!jx_ok(grads)) {
    fprintf(stderr, "per-example grads failed: %s\n", jx_error(grads));
    return 1;
  }
  jx_t dW0 = jx_at(jx_at(grads, 0), 0);
  printf("per-example dW0: f32[%lld,%lld,%lld]\n\n", (long long)jx_shape(dW0)[0], (long long)jx_shape(dW0)[1],
         (long long)jx_shape(dW0)[2]);

  /* 3. Clip each example's gradient to norm <= C. global_norm and clip are
   *    written for one gradient tree; vmap maps them over every leaf's axis 0. */
  double C = 1.0;
  jx_fn *norm_fn = jx_fn_new(global_norm, 1, NULL), *clip_fn = jx_fn_new(clip, 1, &C);
  jx_fn *batched_norm = jx_vmap(norm_fn, NULL, 0), *batched_clip = jx_vmap(clip_fn, NULL, 0);
  printf("per-example gradient norms, C = %.1f\n  before clipping: ", C);
  jx_print(JX_CALL(batched_norm, grads));
  printf("  after clipping:  ");
  jx_print(JX_CALL(batched_norm, JX_CALL(batched_clip, grads)));

  /* 4. One DP-SGD step: average the clipped gradients, update the params.
   *    private_grad composes the pieces; jit traces it all into one program. */
  dp_fns fns = {per_example_grads, batched_clip};
  jx_fn *dp = jx_fn_new(private_grad, 3, &fns);
  jx_fn *dp_grad = jx_jit(dp);
  jx_t g = JX_CALL(dp_grad, params, x, y);
  jx_t plain = JX_CALL(grad_fn, params, x, y);
  printf("\nnorm of the averaged clipped gradient: %.4f (unclipped mean: %.4f, dominated by example 3)\n",
         jx_item(jx_sqrt(tree_sq_sum(g))), jx_item(jx_sqrt(tree_sq_sum(plain))) / B);

  /* Per-example losses, again with vmap (loss is written for one example).
   * The step helps the ordinary examples; the outlier, whose influence the
   * clipping bounded, can no longer drag the whole model towards itself. */
  jx_fn *example_loss = jx_vmap(loss_fn, params_unmapped3, 0);
  double lr = 0.5;
  jx_t new_params = jx_tree_map2(sgd_leaf, params, g, &lr);
  printf("per-example losses before and after one DP-SGD step (lr = %.1f):\n  before: ", lr);
  jx_print(JX_CALL(example_loss, params, x, y));
  printf("  after:  ");
  jx_print(JX_CALL(example_loss, new_params, x, y));

  jx_fn_free(example_loss);
  jx_fn_free(dp_grad), jx_fn_free(dp);
  jx_fn_free(batched_clip), jx_fn_free(batched_norm), jx_fn_free(clip_fn), jx_fn_free(norm_fn);
  jx_fn_free(per_example_grads), jx_fn_free(vmapped), jx_fn_free(grad_loss), jx_fn_free(grad_fn);
  jx_fn_free(loss_fn);
  jx_fn_free(batched_predict), jx_fn_free(predict_fn);
  return 0;
}
