/* Diagnostics on stderr, enabled by JX_LOG (a list of topics, or "all").
 * In core so that every layer (the backend's GEMM choice, the compiler
 * driver, the executor) reports the same way. */
#include "core/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool jx_diag_enabled(const char *what) {
  const char *s = getenv("JX_LOG");
  return s && (strstr(s, what) || !strcmp(s, "all"));
}

void jx_diag(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "[jx] ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int64_t jx_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}
