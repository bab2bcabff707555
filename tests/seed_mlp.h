/* The seed's tanh MLP and squared-error loss, as JAX's README writes them:
 * params is a list of (W, b); predict applies tanh between layers. Shared by
 * the tests that check grad, vmap and jit on it (the examples keep their
 * own copy, so each reads on its own). */
#ifndef JX_TESTS_SEED_MLP_H
#define JX_TESTS_SEED_MLP_H

#include <jx.h>

static inline jx_t seed_predict(jx_t params, jx_t inputs) {
  jx_t outputs = NULL;
  for (int i = 0; i < jx_len(params); i++) {
    jx_t W = jx_at(jx_at(params, i), 0), b = jx_at(jx_at(params, i), 1);
    outputs = jx_add(jx_dot(inputs, W), b);
    inputs = jx_tanh(outputs);
  }
  return outputs;
}

/* loss(params, inputs, targets) = sum((predict - targets)^2) */
static inline jx_t seed_loss(const jx_t *a, void *u) {
  (void)u;
  jx_t d = jx_sub(seed_predict(a[0], a[1]), a[2]);
  return jx_sum(jx_mul(d, d));
}

#endif
