/* The checkpoint measurement shared by tests/test_remat.c (small sizes)
 * and bench/bench_remat.c (the issue's: 32 layers, 1024 wide, batch 256):
 * the grad of a tanh MLP's loss with respect to its parameters, each
 * layer run plainly or through jx_checkpoint, and the peak bytes a
 * counting allocator (jx_set_allocator) sees live during the call, above
 * what was live before it (the inputs). */
#ifndef JX_REMAT_MLP_H
#define JX_REMAT_MLP_H

#include "core/core.h"

#include <jx.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------- the counting allocator */
static atomic_size_t rm_live, rm_peak;

static void *rm_alloc(void *ud, void *p, size_t n) {
  (void)ud;
  size_t old = 0;
  char *h = p ? (char *)p - 16 : NULL;
  if (h) memcpy(&old, h, sizeof old);
  if (n == 0) {
    atomic_fetch_sub(&rm_live, old);
    free(h);
    return NULL;
  }
  char *q = realloc(h, n + 16);
  if (!q) return NULL;
  memcpy(q, &n, sizeof n);
  size_t live = atomic_fetch_add(&rm_live, n) + n - old;
  atomic_fetch_sub(&rm_live, old);
  size_t pk = atomic_load(&rm_peak);
  while (live > pk && !atomic_compare_exchange_weak(&rm_peak, &pk, live)) {}
  return q + 16;
}
__attribute__((unused)) static void rm_install(void) { jx_set_allocator(rm_alloc, NULL); }

/* --------------------------------------------------------------- the MLP */
typedef struct {
  jx_fn *layer; /* (W, b, h) -> tanh(h W + b), plain or checkpointed */
  jx_fn *block; /* NULL, or (list of k (W, b), h) -> h through k layers, checkpointed */
  int k;
} rm_model;

static jx_t rm_layer(const jx_t *a, void *u) {
  (void)u;
  return jx_tanh(jx_add(jx_matmul(a[2], a[0]), a[1]));
}
/* k plain layers: (list of k (W, b), h) -> h */
static jx_t rm_layers(const jx_t *a, void *u) {
  (void)u;
  jx_t h = a[1];
  for (int i = 0; i < jx_len(a[0]); i++)
    h = rm_layer((jx_t[]){jx_at(jx_at(a[0], i), 0), jx_at(jx_at(a[0], i), 1), h}, NULL);
  return h;
}
static jx_t rm_loss(const jx_t *a, void *u) { /* (params list of (W, b), x) */
  rm_model *m = u;
  jx_t h = a[1];
  const int n = jx_len(a[0]);
  for (int i = 0; i < n;) {
    if (m->block) { /* the next k layers (fewer at the end) through one checkpoint */
      jx_t part[64];
      int k = 0;
      for (; k < m->k && k < 64 && i + k < n; k++) part[k] = jx_at(a[0], i + k);
      h = JX_CALL(m->block, jx_list(k, part), h), i += k;
    } else {
      h = JX_CALL(m->layer, jx_at(jx_at(a[0], i), 0), jx_at(jx_at(a[0], i), 1), h), i++;
    }
  }
  return jx_sum(jx_mul(h, h));
}

static jx_t rm_rand(int ndim, const int64_t *shape, double scale, uint64_t *s) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  float *d = malloc(sizeof(float) * (size_t)n);
  for (int64_t i = 0; i < n; i++) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    d[i] = (float)(((double)(*s >> 11) / 9007199254740992.0 * 2 - 1) * scale);
  }
  jx_t x = jx_array(JX_F32, ndim, shape, d);
  free(d);
  return x;
}

/* params (a list of (W, b)) and inputs, retained */
static void rm_init(int layers, int64_t width, int64_t batch, jx_t *params, jx_t *x) {
  uint64_t s = 7;
  jx_t *l = malloc(sizeof(jx_t) * (size_t)layers);
  for (int i = 0; i < layers; i++)
    l[i] = JX_TUPLE(rm_rand(JX_SHAPE(width, width), 1.5 / sqrt((double)width), &s),
                    rm_rand(JX_SHAPE(width), 0.1, &s));
  *params = jx_retain(jx_list(layers, l));
  *x = jx_retain(rm_rand(JX_SHAPE(batch, width), 1.0, &s));
  free(l);
}

/* The gradient function: grad of the loss over params, each layer
 * checkpointed (policy) or not (policy < 0), jitted or eager. */
static jx_fn *rm_grad(rm_model *m, int policy, bool jit) {
  jx_fn *layer = jx_fn_new(rm_layer, 3, NULL);
  m->block = NULL, m->k = 1;
  m->layer = policy < 0 ? layer : jx_checkpoint(layer, (jx_remat_policy)policy);
  jx_fn *g = jx_grad(jx_fn_new(rm_loss, 2, m), 0);
  return jit ? jx_jit(g) : g;
}

/* The same, every k layers checkpointed together (JX_REMAT_NOTHING):
 * only each block's input is kept for the backward pass. */
__attribute__((unused)) static jx_fn *rm_grad_blocks(rm_model *m, int k, bool jit) {
  m->layer = jx_fn_new(rm_layer, 3, NULL);
  m->block = jx_checkpoint(jx_fn_new(rm_layers, 2, NULL), JX_REMAT_NOTHING), m->k = k;
  jx_fn *g = jx_grad(jx_fn_new(rm_loss, 2, m), 0);
  return jit ? jx_jit(g) : g;
}

/* Peak bytes live during one call of g above those live before it; the
 * result (retained) into *out when out is given. */
static size_t rm_peak_bytes(jx_fn *g, jx_t params, jx_t x, jx_t *out) {
  jx_buffer_cache_trim(); /* freed buffers jx keeps for reuse count as live */
  size_t before = atomic_load(&rm_live);
  atomic_store(&rm_peak, before);
  jx_pool_push();
  jx_t r = JX_CALL(g, params, x);
  if (out) *out = jx_retain(r);
  jx_pool_pop();
  size_t peak = atomic_load(&rm_peak);
  jx_buffer_cache_trim();
  return peak - before;
}

#endif
