/* The allocation functions every part of jx uses (kernels included): they
 * go through the one allocator a program can replace (jx_set_allocator). */
#ifndef JX_ALLOC_H
#define JX_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

void *jx_malloc(size_t n); /* NULL on failure; every allocation goes here */
void *jx_calloc(size_t n, size_t sz);
void *jx_realloc(void *p, size_t n);
void jx_free(void *p);
/* n bytes at a multiple of 64 (GEMM packing buffers); free with
 * jx_free_aligned. */
void *jx_malloc_aligned64(size_t n);
void jx_free_aligned64(void *p);
/* Bytes of array buffers larger than a page now in use (neither freed nor
 * in the buffer cache): the live working set, which decides streaming
 * stores (backend/cpu/cache_info.c). */
size_t jx_buffer_live_bytes(void);

/* Scratch memory: a bump allocator for the temporary arrays of an
 * interpreter step (a primitive's inputs' primals and tangents, avals, var
 * ids), which are as wide as the equation: usually a few, sometimes 1,000.
 * Each trace has one (jx_trace.scratch) and each thread one for code that
 * runs outside any trace (jx_scratch_here); like traces, an arena belongs
 * to one thread. The first JX_SCRATCH_INLINE bytes are inside the arena
 * itself (no allocation for the usual narrow step); beyond them it grows
 * by chunks from jx_malloc.
 *
 * Discipline: take a mark, allocate, release to the mark before returning,
 * in stack order. Code nested inside (a rule that binds, a nested trace)
 * may use the same arena: it releases to its own, later mark, so what
 * the caller allocated stays intact. Release frees the chunks made since
 * the mark (an arena at rest holds no heap memory). */
enum { JX_SCRATCH_INLINE = 4096 };
typedef struct jx_scratch_chunk jx_scratch_chunk;
typedef struct jx_scratch {
  jx_scratch_chunk *chunk; /* the chunk in use, NULL: the inline block */
  size_t used, cap;        /* bytes used and available in it */
  _Alignas(max_align_t) unsigned char first[JX_SCRATCH_INLINE];
} jx_scratch;
typedef struct {
  jx_scratch_chunk *chunk;
  size_t used;
} jx_scratch_mark;

void jx_scratch_init(jx_scratch *s);
/* Release everything (the arena can be used again). */
void jx_scratch_clear(jx_scratch *s);
jx_scratch_mark jx_scratch_save(const jx_scratch *s);
void jx_scratch_release(jx_scratch *s, jx_scratch_mark m);
/* n bytes aligned for any type, NULL when out of memory (never for n = 0);
 * valid until the arena is released to a mark taken before. */
void *jx_scratch_alloc(jx_scratch *s, size_t n);
/* n elements of `size` bytes (NULL on overflow, also for n < 0 passed as
 * a size_t), zeroed or not. */
void *jx_scratch_array(jx_scratch *s, size_t n, size_t size);
void *jx_scratch_zeros(jx_scratch *s, size_t n, size_t size);
/* this thread's arena for code outside any trace's process (eval, the
 * backward pass, the executor) */
jx_scratch *jx_scratch_here(void);
#define JX_SCRATCH(s, type, n) ((type *)jx_scratch_array((s), (size_t)(n), sizeof(type)))

#endif
