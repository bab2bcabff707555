/* Internal to the C renderer (render_c.c: kernels and the unit;
 * render_loop.c: LOOP kernels' drivers): the growing source text. */
#ifndef JX_CPU_RENDER_H
#define JX_CPU_RENDER_H

#include "backend/backend.h"

#include <stdarg.h>
#include <stdio.h>

/* The scalar functions (scalar_ops.h) a program calls, by name: the
 * prelude pastes only the parts that define them. */
typedef struct {
  char **name;
  int n, cap;
  /* the first primitive found without a C rendering (its rules' lowering
   * lacks what the renderer needs): jx_cpu_render then fails naming it */
  const char *missing;
} jx_needs;

/* Record that primitive p has no C rendering (the first one wins). */
static inline void jx_cpu_no_rendering(jx_needs *need, jx_prim p) {
  if (need && !need->missing) need->missing = jx_prim_names[p];
}

/* Out of memory sets oom; the renderer then returns NULL. Helper calls
 * (put_call) are recorded in *need, which nested buffers share. */
typedef struct {
  char *s;
  size_t n, cap;
  bool oom;
  jx_needs *need;
  /* the portable target (export, render_portable.c): no runtime calls,
   * no threads, no streaming stores, no compiler extensions; CALL
   * kernels rendered as C (jx_cpu_render_call) */
  bool portable;
  /* portable only (the export's openmp option): the loops worth it carry
   * `#pragma omp parallel for` inside `#ifdef _OPENMP` (JX_OMP_FOR) */
  bool openmp;
  /* portable only (the export's simd option): matrix products carry x86
   * paths inside #if (render_dot_simd.c) */
  bool simd;
} sb;

/* The pragma line of an OpenMP loop (after `#ifdef _OPENMP`): a unit
 * built without -fopenmp does not see it (-Wunknown-pragmas stays quiet). */
#define JX_OMP_FOR(clauses) "#ifdef _OPENMP\n#pragma omp parallel for" clauses "\n#endif\n"

static inline void put(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void put(sb *b, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int k = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (k >= 0 && !b->oom && b->n + (size_t)k + 1 > b->cap) {
    size_t cap = (b->n + (size_t)k + 1) * 2;
    char *q = jx_realloc(b->s, cap);
    if (!q)
      b->oom = true;
    else
      b->s = q, b->cap = cap;
  }
  if (k >= 0 && !b->oom) {
    vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap2);
    b->n += (size_t)k;
  }
  va_end(ap2);
}

/* `<helper>(`: the name (formatted) is written and recorded in b->need */
void jx_cpu_put_call(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The text pasted before a program calling names[0..n): scalar_ops.h's
 * includes and macros and only the parts defining those functions (with
 * the parts they need). NULL and *err (naming the function) when a name
 * is defined by no part: that is a renderer defect, reported here rather
 * than as a C compiler failure. Caller frees. */
char *jx_cpu_prelude(const char *const *names, int n, jx_t *err);

/* The op list's scalar functions, NULL-terminated (render_prelude.c). */
extern const char *const jx_cpu_ew_functions[];

/* A part of scalar_ops.h (see there): its name, the parts it needs and
 * the functions it defines (lists separated by blanks or '*'), its text. */
typedef struct {
  const char *name, *deps, *fns, *text;
  size_t nlen, dlen, flen, tlen;
} jx_scalar_part;
enum { JX_MAX_SCALAR_PARTS = 128 }; /* scalar_ops.h has 60 (#19 added 23) */

/* scalar_ops.h's parts in order (at most `max`): their count, -1 if a
 * marker is malformed. *base: the length of the text before the first. */
int jx_cpu_scalar_parts(jx_scalar_part *out, int max, size_t *base);

/* bytes of buffer b of program p */
static inline long long buf_bytes(const jx_program *p, int b) {
  return (long long)(jx_aval_size(&p->bufs[b].aval) * (int64_t)jx_dtype_size(p->bufs[b].aval.dtype));
}

/* The root program's kernels are the module's entry points (named by its
 * tables) and may be compiled in a different unit from the tables when cc.c
 * splits a large source for a parallel build: they get external, hidden
 * linkage. Everything else stays static. */
static inline const char *linkage(const jx_program *p) { return p->id == 0 ? "JX_ENTRY " : "static "; }

/* Markers cc.c splits a source at (comments: the text compiles whole):
 * before each root kernel, and before the prototypes and tables. */
#define JX_SPLIT_MARK  "/*@jx-split*/\n"
#define JX_TABLES_MARK "/*@jx-tables*/\n"
/* the end of a source's first line: it has compiled loops (cc.c builds it at -O3) */
#define JX_O3_MARK     "/*@jx-O3*/"

/* A program's kernels (bodies first) and its p<id>_run, which runs them
 * in order (render_c.c). The portable target renders its root this way. */
void jx_cpu_render_program(sb *b, const jx_program *p);

/* Portable target: CALL kernel `id` of program p as the C function
 * p<pid>_k<id>(char **b, const jx_rt *rt) (render_call.c). A primitive it
 * has no portable rendering for is recorded as missing (need->missing). */
void jx_cpu_render_call(sb *b, const jx_program *p, const jx_kernel *k, int id);

/* The C function p<outer>_k<id> running LOOP kernel k (scan, while, cond)
 * of program outer; its bodies' p<id>_run are rendered before it. */
void jx_cpu_render_loop(sb *b, const jx_program *outer, const jx_kernel *k, int id);

#endif
