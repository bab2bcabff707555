/* Gradients of a small MLP, the example from JAX's README:
 *
 *   def predict(params, inputs):
 *     for W, b in params:
 *       outputs = jnp.dot(inputs, W) + b
 *       inputs = jnp.tanh(outputs)
 *     return outputs                # no activation on the last layer
 *
 *   def loss(params, inputs, targets):
 *     preds = predict(params, inputs)
 *     return jnp.sum((preds - targets)**2)
 *
 *   grad_loss = jit(grad(loss))     # gradient w.r.t. params (argument 0)
 *
 * params is a *tree*: a list of (W, b) tuples. grad returns a tree of the
 * same structure, and jx_tree_map2 walks two such trees together — that is
 * all an SGD step needs.
 *
 * Run: build/examples/mlp_grad */
#include <jx.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* --- the model, line for line as above ---------------------------------- */

static jx_t predict(jx_t params, jx_t inputs) {
  jx_t outputs = NULL;
  for (int i = 0; i < jx_len(params); i++) {
    jx_t W = jx_at(jx_at(params, i), 0), b = jx_at(jx_at(params, i), 1);
    outputs = jx_add(jx_dot(inputs, W), b);
    inputs = jx_tanh(outputs);
  }
  return outputs;
}

/* loss(params, inputs, targets): a jx body gets its arguments as an array */
static jx_t loss(const jx_t *args, void *user) {
  (void)user;
  jx_t d = jx_sub(predict(args[0], args[1]), args[2]);
  return jx_sum(jx_mul(d, d));
}

/* --- deterministic pseudo-random data (xorshift64) ----------------------- */

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static float uniform(void) { /* in [-1, 1) */
  rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
  return (float)((double)(rng_state >> 40) / (double)(1 << 24) * 2 - 1);
}
static jx_t random_array(float scale, int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  float *v = (float *)malloc(sizeof(float) * (size_t)n);
  for (int64_t i = 0; i < n; i++) v[i] = scale * uniform();
  jx_t x = jx_array(JX_F32, ndim, shape, v);
  free(v);
  return x; /* jx_array copies, so the C buffer can go */
}

/* params = [(W0, b0), (W1, b1), ...] for the layer sizes given */
static jx_t init_params(int nlayers, const int64_t *sizes) {
  jx_t layers[8];
  for (int i = 0; i < nlayers; i++) {
    float scale = 1.0f / sqrtf((float)sizes[i]); /* keep tanh out of saturation */
    jx_t W = random_array(scale, JX_SHAPE(sizes[i], sizes[i + 1]));
    jx_t b = random_array(0.1f, JX_SHAPE(sizes[i + 1]));
    layers[i] = JX_TUPLE(W, b);
  }
  return jx_list(nlayers, layers);
}

/* --- helpers on gradient trees ------------------------------------------- */

/* The global L2 norm of a tree: sqrt of the sum of squares of every leaf. */
static jx_t tree_sq_sum(jx_t t) {
  if (!jx_is_tree(t)) return jx_sum(jx_square(t));
  jx_t total = jx_scalar(0.0);
  for (int i = 0; i < jx_len(t); i++) total = jx_add(total, tree_sq_sum(jx_at(t, i)));
  return total;
}

static void print_shape(const char *label, jx_t x) {
  printf("%s%s[", label, jx_dtype_name(jx_dtype_of(x)));
  for (int i = 0; i < jx_ndim(x); i++) printf(i ? ",%lld" : "%lld", (long long)jx_shape(x)[i]);
  printf("]");
}

/* One SGD step on one leaf: p - lr * g. jx_tree_map2 calls it per leaf. */
static jx_t sgd_leaf(jx_t p, jx_t g, void *user) {
  double lr = *(double *)user;
  return jx_sub(p, jx_mul(jx_scalar(lr), g));
}

int main(void) {
  /* A 3 -> 16 -> 16 -> 2 tanh MLP fitting y = (sin(x0 + x1), x1 * x2). */
  const int64_t sizes[] = {3, 16, 16, 2};
  const int nlayers = 3, batch = 64;
  jx_t params = init_params(nlayers, sizes);
  jx_t x = random_array(1.0f, JX_SHAPE(batch, 3));
  jx_t x0 = jx_take(x, jx_scalar_int(0), 1), x1 = jx_take(x, jx_scalar_int(1), 1);
  jx_t x2 = jx_take(x, jx_scalar_int(2), 1);
  jx_t cols[] = {jx_sin(jx_add(x0, x1)), jx_mul(x1, x2)}; /* (named arrays: this file also builds as C++) */
  jx_t y = jx_stack(2, cols, 1);                          /* f32[64,2] */

  jx_fn *loss_fn = jx_fn_new(loss, 3, NULL);
  jx_fn *grad_loss = jx_grad(loss_fn, 0); /* d loss / d params */
  jx_fn *fast_grad = jx_jit(grad_loss);   /* traced once per input shape, then cached */
  jx_fn *fast_loss = jx_jit(loss_fn);

  /* The gradient has the same structure as params: list of (dW, db). */
  jx_t g = JX_CALL(grad_loss, params, x, y);
  if (!jx_ok(g)) {
    fprintf(stderr, "grad failed: %s\n", jx_error(g));
    return 1;
  }
  printf("grad(loss)(params, x, y) is a list of %d (dW, db) tuples:\n", jx_len(g));
  for (int i = 0; i < jx_len(g); i++) {
    printf("  layer %d: ", i);
    print_shape("dW ", jx_at(jx_at(g, i), 0));
    print_shape("  db ", jx_at(jx_at(g, i), 1));
    printf("\n");
  }
  jx_t gnorm = jx_sqrt(tree_sq_sum(g));
  jx_t gj = JX_CALL(fast_grad, params, x, y);
  printf("global gradient norm: %.6f (jit: %.6f)\n\n", jx_item(gnorm), jx_item(jx_sqrt(tree_sq_sum(gj))));

  /* A few SGD steps. params must outlive each step's temporaries, so each
   * step runs in its own pool and keeps (jx_retain) only the new params. */
  double lr = 0.005;
  params = jx_retain(params);
  for (int step = 0; step <= 50; step++) {
    jx_pool_push();
    if (step % 10 == 0) printf("step %2d  loss %.5f\n", step, jx_item(JX_CALL(fast_loss, params, x, y)));
    jx_t grads = JX_CALL(fast_grad, params, x, y);
    jx_t updated = jx_retain(jx_tree_map2(sgd_leaf, params, grads, &lr));
    jx_pool_pop();      /* frees grads and every temporary of this step */
    jx_release(params); /* drop the old params ...                      */
    params = updated;   /* ... and keep the new ones                    */
  }
  jx_release(params);

  jx_fn_free(fast_loss), jx_fn_free(fast_grad), jx_fn_free(grad_loss), jx_fn_free(loss_fn);
  return 0;
}
