/* A tiny test harness: CHECK-style macros that count and report, and a
 * closing line "N passed, N failed" that CI reads. */
#ifndef JX_TEST_CHECK_H
#define JX_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                                \
  do {                                                                             \
    if (cond) {                                                                    \
      check_passed++;                                                              \
    } else {                                                                       \
      check_failed++;                                                              \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);    \
    }                                                                              \
  } while (0)

#define CHECKF(cond, ...)                                                          \
  do {                                                                             \
    if (cond) {                                                                    \
      check_passed++;                                                              \
    } else {                                                                       \
      check_failed++;                                                              \
      fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);    \
      fprintf(stderr, __VA_ARGS__);                                                \
      fputc('\n', stderr);                                                         \
    }                                                                              \
  } while (0)

/* |a - b| <= atol + rtol * |b|, NaN == NaN */
static inline int check_close(double a, double b, double rtol, double atol) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  if (isinf(a) || isinf(b)) return a == b;
  return fabs(a - b) <= atol + rtol * fabs(b);
}
#define CHECK_CLOSE(a, b, rtol, atol)                                               \
  CHECKF(check_close((a), (b), (rtol), (atol)), "%.9g vs %.9g", (double)(a), (double)(b))

static inline int check_report(const char *name) {
  printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
  return check_failed ? 1 : 0;
}

#endif
