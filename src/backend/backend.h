/* The backend interface: how the compiler turns loop IR into something it
 * can run, without knowing any backend's internals. */
#ifndef JX_BACKEND_H
#define JX_BACKEND_H

#include "ir/loop.h"

/* The runtime table generated code receives: the library's one thread
 * pool, and for loops (LOOP kernels) a way to run a body's CALL kernels and
 * to allocate a body's buffers. The renderer writes the same struct into
 * the generated source; the two must stay in step. */
typedef struct jx_rt {
  void (*parallel_for)(int64_t n, int64_t grain, void (*fn)(void *ctx, int64_t lo, int64_t hi), void *ctx);
  void *ctx; /* the running program's state (compile/exec.c) */
  /* run CALL kernel `kernel` of program all[prog] on these data pointers,
   * with `epi` (the range function of its fused epilogue kernel, see
   * ir/loop.h) or NULL; nonzero on failure (the error is kept in ctx) */
  int (*call)(const struct jx_rt *rt, int prog, int kernel, char **data,
              void (*epi)(void *, int64_t, int64_t));
  /* a buffer of `bytes` (its data in *data): a handle for release, NULL
   * when out of memory (the error is kept in ctx) */
  void *(*alloc)(const struct jx_rt *rt, int64_t bytes, char **data);
  void (*release)(void *handle);
} jx_rt;

/* A generated kernel: runs MAP/REDUCE/LOOP kernel `k` of its program over
 * the buffers' data pointers; nonzero when a LOOP failed (see jx_rt).
 * CALL kernels have no entry (the runtime runs them). */
typedef int (*jx_kernel_fn)(char **bufs, const jx_rt *rt);

/* A MAP kernel's loop over part [lo, hi) of its flattened iteration space:
 * what a GEMM calls as the epilogue fused into it. */
typedef void (*jx_range_fn)(void *bufs, int64_t lo, int64_t hi);

/* A root MAP or REDUCE kernel rendered as data (backend/cpu/render_c.c):
 * the runtime runs its body `fn` over [0, items) in chunks of `grain` on
 * the buffers data[slots[0..nslot)], in that order (fn's ctx). Kernels
 * that only differ in their buffers share one compiled body, and a kernel
 * costs the C compiler no function of its own. fn NULL: not in this form.
 * The generated source writes the same struct. */
typedef struct jx_slot_kernel {
  jx_range_fn fn;
  const int *slots;
  int64_t nslot, items, grain;
} jx_slot_kernel;
enum { JX_MAX_SLOTS = 64 };

typedef struct jx_module {
  void *handle;
  int nkernel;
  jx_kernel_fn *kernels; /* per program kernel; NULL for CALL kernels and slot kernels */
  jx_range_fn *ranges;   /* per program kernel: MAP kernels' loops, NULL otherwise (and for slot kernels) */
  const jx_slot_kernel *slots; /* per program kernel (fn NULL if not one), or NULL */
} jx_module;

typedef struct jx_backend {
  const char *name;
  /* Render the program as source text (caller frees); NULL and *err when
   * it cannot (a scalar function without a C rendering, out of memory). */
  char *(*render)(const jx_program *p, jx_t *err);
  /* Build (or fetch from the cache) and load. NULL + *err on failure. */
  jx_module *(*build)(const char *source, int nkernel, jx_t *err);
  void (*module_free)(jx_module *m);
  const jx_rt *rt;
  /* the thread pool its kernels (and the eager kernels) run on */
  int (*num_threads)(void);
  void (*set_num_threads)(int n);
  /* this thread's loops use at most n of them (a pmap device's group); n < 1:
   * all; returns the cap it replaces (0: none) */
  int (*set_thread_cap)(int n);
} jx_backend;

extern const jx_backend jx_cpu_backend;

/* The backends (backend/backend.c), chosen by name: the first is the
 * default and the host's (the eager kernels run on its thread pool). */
/* The backend jit compiles for: JX_BACKEND's (by name) when set, else the
 * default; NULL and *err (naming the ones there are) for an unknown name. */
const jx_backend *jx_backend_get(jx_t *err);
/* The host backend (the default). */
const jx_backend *jx_backend_host(void);

#endif
