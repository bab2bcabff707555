/* The cache budget measured, for machines whose cache sizes cannot be
 * read (cache_info.c says what the budget decides and why CPUID's L3 is
 * not believed in a VM).
 *
 * The question is the one the streaming rule asks: does a working set of
 * W bytes stay in the last-level cache from one kernel to the next? A copy
 * of W/2 bytes into a buffer the last copy wrote answers it. If the W
 * bytes stay cached, plain stores hit lines already in the cache and beat
 * streamed stores, which go to memory; if they do not, every plain store
 * first reads its line from memory and the streamed copy wins. The copies
 * run on the thread pool as the kernels do, best of PROBE_REPS each,
 * alternated, for W = 8, 16 and 32 MiB; the budget is the largest W where
 * streaming did not win clearly (PROBE_MARGIN) at any size up to it. Cost:
 * ~10 ms and two 16 MiB buffers, which go back to the buffer cache, once
 * per process. */
#include "backend/cpu/kernels.h"
#include "core/core.h"

#include <string.h>

/* jx_stream, the kernels' own streamed stores */
#include "backend/cpu/scalar_ops.h"

enum { PROBE_MIN = 4 << 20, PROBE_MAX = 16 << 20, PROBE_REPS = 5, PROBE_CHUNK = 64 << 10 };

/* The two mistakes cost differently: streaming a working set that would
 * have stayed cached made jit(slow_f) ~1.2-1.4x a copy on the Zen 5 guest,
 * plain stores where it does not stay cached cost the read-for-ownership,
 * ~5% at the boundary (32 MiB there: plain 0.473 against streamed 0.449
 * ms in one run, 0.346 against 0.429 in another, as its neighbours' use of
 * the shared L3 came and went). So a working set counts as cached unless
 * streaming wins by more than this factor. */
#define PROBE_MARGIN 1.15

typedef struct {
  char *dst;
  const char *src;
  bool stream;
} probe_copy;

static void copy_range(void *ctx, int64_t lo, int64_t hi) {
  const probe_copy *c = ctx;
  for (int64_t i = lo; i < hi; i++) {
    char *d = c->dst + i * PROBE_CHUNK;
    const char *s = c->src + i * PROBE_CHUNK;
    if (c->stream)
      jx_stream(d, s, PROBE_CHUNK);
    else
      memcpy(d, s, PROBE_CHUNK);
  }
  if (c->stream) jx_stream_fence();
}

static double copy_seconds(probe_copy *c, int64_t bytes) {
  const int64_t t0 = jx_now_ns();
  jx_cpu_parallel_for(bytes / PROBE_CHUNK, 1, copy_range, c);
  return (double)(jx_now_ns() - t0) * 1e-9;
}

/* plain-store and streamed best times for a copy of `bytes` */
static void time_copies(char *dst, const char *src, int64_t bytes, double best[2]) {
  probe_copy c[2] = {{dst, src, false}, {dst, src, true}};
  best[0] = best[1] = 1e30;
  copy_seconds(&c[0], bytes); /* the working set into the cache, threads awake */
  for (int r = 0; r < PROBE_REPS; r++)
    for (int k = 0; k < 2; k++) {
      const double t = copy_seconds(&c[k], bytes);
      if (t < best[k]) best[k] = t;
    }
}

int64_t jx_cpu_probe_cache_budget(void) {
  jx_buffer *a = jx_buffer_new(PROBE_MAX), *b = jx_buffer_new(PROBE_MAX);
  int64_t budget = 0;
  if (a && b) {
    memset(a->data, 1, PROBE_MAX); /* fault the pages in before timing */
    memset(b->data, 0, PROBE_MAX);
    for (int64_t half = PROBE_MIN; half <= PROBE_MAX; half *= 2) {
      double best[2];
      time_copies(b->data, a->data, half, best);
      if (jx_diag_enabled("cache"))
        jx_diag("cache probe: %lld MiB working set: plain %.3f ms, streamed %.3f ms",
                (long long)(2 * half >> 20), 1e3 * best[0], 1e3 * best[1]);
      if (best[0] > PROBE_MARGIN * best[1]) break;
      budget = 2 * half;
    }
  }
  jx_buffer_release(a);
  jx_buffer_release(b);
  return budget;
}
