/* A tiny test harness: CHECK-style macros that count and report, and a
 * closing line "N passed, N failed" that CI reads. */
#ifndef JX_TEST_CHECK_H
#define JX_TEST_CHECK_H

#include "jx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                                                          \
  do {                                                                                                       \
    if (cond) {                                                                                              \
      check_passed++;                                                                                        \
    } else {                                                                                                 \
      check_failed++;                                                                                        \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                               \
    }                                                                                                        \
  } while (0)

#define CHECKF(cond, ...)                                                                                    \
  do {                                                                                                       \
    if (cond) {                                                                                              \
      check_passed++;                                                                                        \
    } else {                                                                                                 \
      check_failed++;                                                                                        \
      fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);                               \
      fprintf(stderr, __VA_ARGS__);                                                                          \
      fputc('\n', stderr);                                                                                   \
    }                                                                                                        \
  } while (0)

/* EXPECT_ERROR(r, "sub", ...): r must be an error value whose message
 * contains every substring given; check_verbose prints each message. */
__attribute__((unused)) static int check_verbose;
__attribute__((unused)) static void expect_error_(int line, const char *expr, jx_t r,
                                                  const char *const *subs) {
  const char *msg = jx_error(r);
  if (jx_ok(r) || !msg) {
    check_failed++;
    fprintf(stderr, "%s:%d: expected an error value from %s\n", __FILE__, line, expr);
    return;
  }
  if (check_verbose) printf("  %-60.60s -> %s\n", expr, msg);
  for (; *subs; subs++) {
    if (strstr(msg, *subs)) {
      check_passed++;
    } else {
      check_failed++;
      fprintf(stderr, "%s:%d: %s: message \"%s\" lacks \"%s\"\n", __FILE__, line, expr, msg, *subs);
    }
  }
}
#define EXPECT_ERROR(r, ...) expect_error_(__LINE__, #r, (r), (const char *const[]){__VA_ARGS__, NULL})

/* |a - b| <= atol + rtol * |b|, NaN == NaN */
static inline int check_close(double a, double b, double rtol, double atol) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  if (isinf(a) || isinf(b)) return a == b;
  return fabs(a - b) <= atol + rtol * fabs(b);
}
#define CHECK_CLOSE(a, b, rtol, atol)                                                                        \
  CHECKF(check_close((a), (b), (rtol), (atol)), "%.9g vs %.9g", (double)(a), (double)(b))

/* A private, empty jit cache directory for this test process (JX_CACHE_DIR,
 * read once per process, so call before any jit), removed by
 * check_private_cache_remove. */
#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>
static char check_cache_dir[64];
static inline int check_private_cache(const char *name) {
  snprintf(check_cache_dir, sizeof check_cache_dir, "/tmp/jx-%s-XXXXXX", name);
  if (!mkdtemp(check_cache_dir)) return perror("mkdtemp"), -1;
  return setenv("JX_CACHE_DIR", check_cache_dir, 1);
}
static inline void check_private_cache_remove(void) {
  DIR *d = opendir(check_cache_dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    char p[400];
    snprintf(p, sizeof p, "%s/%s", check_cache_dir, e->d_name);
    if (e->d_name[0] != '.') unlink(p);
  }
  if (d) closedir(d);
  rmdir(check_cache_dir);
}

static inline int check_report(const char *name) {
  printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
  return check_failed ? 1 : 0;
}

/* a and b arrays of one dtype and size with the same bytes (read through
 * jx_read: tracers and errors are never equal) */
__attribute__((unused)) static bool check_same_bits(jx_t a, jx_t b) {
  if (!jx_ok(a) || !jx_ok(b) || jx_dtype_of(a) != jx_dtype_of(b) || jx_size(a) != jx_size(b)) return false;
  size_t n = (size_t)jx_size(a) * jx_dtype_size(jx_dtype_of(a));
  char *p = malloc(n + 1), *q = malloc(n + 1);
  bool eq = p && q && !jx_read(a, jx_dtype_of(a), p, n + 1) && !jx_read(b, jx_dtype_of(b), q, n + 1) &&
            !memcmp(p, q, n);
  free(p), free(q);
  return eq;
}

#endif
