/* Checkpointing (jx_checkpoint) against plain reverse mode: the grad of a
 * tanh MLP's loss over its parameters, every layer checkpointed
 * (JX_REMAT_NOTHING, and JX_REMAT_DOTS), every 4 layers checkpointed
 * together (JX_REMAT_NOTHING), or not, eager and jitted: peak bytes
 * allocated during the call above the inputs (a counting allocator:
 * deterministic), the same above the gradients the call returns (they
 * are as large as the parameters, whatever the policy), and the median
 * time.
 *
 * usage: bench_remat [layers=32] [width=1024] [batch=256] [reps=3] */
#include "../tests/remat_mlp.h"
#include "bench_time.h"

#include <stdio.h>
#include <time.h>

int main(int argc, char **argv) {
  rm_install();
  int layers = argc > 1 ? atoi(argv[1]) : 32, reps = argc > 4 ? atoi(argv[4]) : 3;
  int64_t width = argc > 2 ? atoll(argv[2]) : 1024, batch = argc > 3 ? atoll(argv[3]) : 256;
  jx_t params, x;
  rm_init(layers, width, batch, &params, &x);
  printf("checkpoint: grad of a %d-layer tanh MLP, width %lld, batch %lld, f32, over its parameters\n",
         layers, (long long)width, (long long)batch);
  const char *names[] = {"plain", "checkpoint(nothing)", "checkpoint(dots)", "nothing, 4-layer blocks"};
  const int policies[] = {-1, JX_REMAT_NOTHING, JX_REMAT_DOTS, JX_REMAT_NOTHING};
  for (int jit = 0; jit < 2; jit++) {
    double base_ms = 0;
    size_t base_peak = 0;
    for (int p = 0; p < 4; p++) {
      rm_model m;
      jx_fn *g = p == 3 ? rm_grad_blocks(&m, 4, jit) : rm_grad(&m, policies[p], jit);
      jx_t r;
      size_t peak = rm_peak_bytes(g, params, x, &r); /* (jit: includes the compile) */
      if (!jx_ok(r)) {
        printf("error: %s\n", jx_error(r));
        return 1;
      }
      jx_release(r);
      if (jit) peak = rm_peak_bytes(g, params, x, NULL);
      double t[16];
      for (int k = 0; k < reps && k < 16; k++) {
        double t0 = now_ms();
        jx_pool_push();
        jx_t o = JX_CALL(g, params, x);
        (void)jx_item(jx_at(jx_at(o, 0), 0) ? jx_sum(jx_at(jx_at(o, 0), 1)) : o);
        jx_pool_pop();
        t[k] = now_ms() - t0;
      }
      qsort(t, (size_t)(reps < 16 ? reps : 16), sizeof *t, cmp);
      double ms = t[(reps < 16 ? reps : 16) / 2];
      if (p == 0) base_ms = ms, base_peak = peak;
      const double outs = (double)layers * (double)(width * width + width) * 4, mib = 1048576.0;
      printf("%-6s %-24s peak %7.1f MiB (%.3f of plain); above the gradients %6.1f MiB (%.3f)  time %8.1f ms "
             "(%.2fx)\n",
             jit ? "jit" : "eager", names[p], peak / mib, (double)peak / (double)base_peak,
             (peak - outs) / mib, (peak - outs) / ((double)base_peak - outs), ms, ms / base_ms);
      jx_fn_free(g);
    }
  }
  jx_release(params), jx_release(x);
  return 0;
}
