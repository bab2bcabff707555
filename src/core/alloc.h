/* The allocation functions every part of jx uses (kernels included): they
 * go through the one allocator a program can replace (jx_set_allocator). */
#ifndef JX_ALLOC_H
#define JX_ALLOC_H

#include <stddef.h>

void *jx_malloc(size_t n); /* NULL on failure; every allocation goes here */
void *jx_calloc(size_t n, size_t sz);
void *jx_realloc(void *p, size_t n);
void jx_free(void *p);
/* n bytes at a multiple of 64 (GEMM packing buffers); free with
 * jx_free_aligned. */
void *jx_malloc_aligned64(size_t n);
void jx_free_aligned64(void *p);

#endif
