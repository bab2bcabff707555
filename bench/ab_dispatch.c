/* ab_dispatch.c - a fixed loop of eager dispatch, for comparing two builds of jx
 * (bench/ab_dispatch.sh links it against each and alternates the processes).
 *
 *   ab_dispatch add N        N x jx_add of two f32[] (each in a pool push/pop)
 *   ab_dispatch grad N       N calls of grad(tanh) on an f32[]
 *   ab_dispatch jitgrad N    N calls of jit(grad(tanh)) on an f32[]
 *
 * It prints nothing: the script times the whole process, so that two builds'
 * binaries run the very same work. */
#include "jx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static jx_t tanh_body(const jx_t *a, void *u) {
  (void)u;
  return jx_tanh(a[0]);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s add|grad|jitgrad N\n", argv[0]);
    return 2;
  }
  long n = atol(argv[2]);
  jx_t x = jx_full(JX_F32, 0, NULL, 0.5), y = jx_full(JX_F32, 0, NULL, 2.0);
  jx_fn *g = NULL;
  if (strcmp(argv[1], "add")) {
    g = jx_grad(jx_fn_new(tanh_body, 1, NULL), 0);
    if (!strcmp(argv[1], "jitgrad")) g = jx_jit(g);
  }
  for (long i = 0; i < n; i++) {
    jx_pool_push();
    jx_t r = g ? jx_call(g, &x) : jx_add(x, y);
    if (!jx_ok(r)) {
      fprintf(stderr, "ab_dispatch: %s\n", jx_error(r));
      return 1;
    }
    jx_pool_pop();
  }
  return 0;
}
