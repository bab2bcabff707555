/* What the tests that run themselves as child processes share (test_jit's
 * and test_cache's cache scenarios): temporary directories, their removal,
 * counting lines in a child's output, and a check that shows that output
 * when it fails. */
#ifndef JX_TEST_CHILD_H
#define JX_TEST_CHILD_H

#include "check.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

__attribute__((unused)) static int count_substr(const char *s, const char *pat) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, pat)); p += strlen(pat)) n++;
  return n;
}

/* rm -rf path (directories made unreadable by a test are opened first) */
__attribute__((unused)) static void rm_tree(const char *path) {
  struct stat st;
  if (lstat(path, &st)) return;
  if (S_ISDIR(st.st_mode)) {
    chmod(path, 0700);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      char sub[4096];
      snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
      rm_tree(sub);
    }
    if (d) closedir(d);
    rmdir(path);
  } else {
    unlink(path);
  }
}

/* a fresh directory under /tmp, or "" */
__attribute__((unused)) static void make_tmpdir(char *dir, size_t n) {
  snprintf(dir, n, "/tmp/jx-test-XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    dir[0] = 0;
  }
}

#define CHECK_CHILD(cond, out, ...)                                                                          \
  do {                                                                                                       \
    CHECKF(cond, __VA_ARGS__);                                                                               \
    if (!(cond)) fprintf(stderr, "---- child output ----\n%s---- end ----\n", out);                          \
  } while (0)

#endif
