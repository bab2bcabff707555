/* The benches' clock and sort order: milliseconds on the monotonic clock,
 * and doubles ascending for qsort (medians). */
#ifndef JX_BENCH_TIME_H
#define JX_BENCH_TIME_H

#include <time.h>

static inline double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static inline int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

#endif
