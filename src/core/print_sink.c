/* Where jx_debug_print's lines go (jx_set_print_sink): a process-wide
 * sink, stdout by default. One lock serializes the lines, so prints from
 * several threads never interleave within a line. */
#include "core/print_sink.h"

#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static jx_print_sink sink_fn;
static void *sink_ctx;

void jx_set_print_sink(jx_print_sink fn, void *ctx) {
  pthread_mutex_lock(&sink_lock);
  sink_fn = fn;
  sink_ctx = ctx;
  pthread_mutex_unlock(&sink_lock);
}

void jx_print_emit(const char *line) {
  pthread_mutex_lock(&sink_lock);
  if (sink_fn) {
    sink_fn(line, sink_ctx);
  } else { /* flushed per line: a crash right after still shows it */
    fputs(line, stdout);
    fputc('\n', stdout);
    fflush(stdout);
  }
  pthread_mutex_unlock(&sink_lock);
}
