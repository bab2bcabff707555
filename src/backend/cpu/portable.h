/* The portable C target (export): a program rendered as one dependency-free
 * C99 unit and its header (render_portable.c). Read by src/export/. */
#ifndef JX_CPU_PORTABLE_H
#define JX_CPU_PORTABLE_H

#include "ir/loop.h"

typedef struct {
  /* the program's constants (weights) are inputs after the arguments
   * instead of arrays in the source */
  bool consts_as_inputs;
  /* loops carry OpenMP pragmas (inside #ifdef _OPENMP) */
  bool openmp;
  /* matrix products carry AVX-512 / AVX2 paths inside #if */
  bool simd;
} jx_portable_opts;

typedef struct {
  char *src, *hdr;   /* name.c, name.h (caller frees both) */
  int64_t workspace; /* NAME_WORKSPACE_BYTES */
  int nin;           /* entry inputs: arguments, then constants taken as inputs */
  int nconst_in;     /* how many of them are constants */
  int *const_buf;    /* per constant input: its buffer id in the root program */
} jx_portable_unit;

/* Render root program p (nargs arguments) as the portable unit of entry
 * point `name` (a C identifier). NULL on success, else an error value
 * naming what cannot be rendered (a primitive with no portable rendering,
 * a loop whose body could not be compiled); *u is then empty. */
jx_t jx_cpu_render_portable(const jx_program *p, int nargs, const char *name, const jx_portable_opts *o,
                            jx_portable_unit *u);
void jx_portable_unit_free(jx_portable_unit *u);

#endif
