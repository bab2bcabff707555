/* The backend interface: how the compiler turns loop IR into something it
 * can run, without knowing any backend's internals. */
#ifndef JX_BACKEND_H
#define JX_BACKEND_H

#include "ir/loop.h"

/* The runtime table generated code receives: the library's one thread pool. */
typedef struct jx_rt {
  void (*parallel_for)(int64_t n, int64_t grain, void (*fn)(void *ctx, int64_t lo, int64_t hi), void *ctx);
} jx_rt;

/* A generated kernel: runs MAP/REDUCE kernel `k` of its program over the
 * buffers' data pointers. CALL kernels have no entry (the runtime runs them). */
typedef void (*jx_kernel_fn)(char **bufs, const jx_rt *rt);

typedef struct jx_module {
  void *handle;
  int nkernel;
  jx_kernel_fn *kernels; /* per program kernel; NULL for CALL kernels */
} jx_module;

typedef struct jx_backend {
  const char *name;
  /* Render the program as source text. Caller frees. */
  char *(*render)(const jx_program *p);
  /* Build (or fetch from the cache) and load. NULL + *err on failure. */
  jx_module *(*build)(const char *source, int nkernel, jx_t *err);
  void (*module_free)(jx_module *m);
  const jx_rt *rt;
} jx_backend;

extern const jx_backend jx_cpu_backend;

#endif
