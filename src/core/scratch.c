/* Scratch arenas (declared in core/alloc.h): a bump pointer over the
 * arena's inline block, then over chunks from jx_malloc, each linked to
 * the one before so that a release can free back to its mark. */
#include "core/alloc.h"

#include <stdalign.h>
#include <stdint.h>
#include <string.h>

struct jx_scratch_chunk {
  jx_scratch_chunk *prev;
  size_t cap;
  alignas(max_align_t) unsigned char data[];
};

/* Chunks start at this size and double with each chunk held at once (a
 * step that needs a megabyte does not take a hundred chunks). */
enum { CHUNK_MIN = 4 * JX_SCRATCH_INLINE, ALIGN = alignof(max_align_t) };

static unsigned char *base(jx_scratch *s) { return s->chunk ? s->chunk->data : s->first; }

void jx_scratch_init(jx_scratch *s) {
  s->chunk = NULL;
  s->used = 0;
  s->cap = JX_SCRATCH_INLINE;
}

jx_scratch_mark jx_scratch_save(const jx_scratch *s) { return (jx_scratch_mark){s->chunk, s->used}; }

void jx_scratch_release(jx_scratch *s, jx_scratch_mark m) {
  while (s->chunk != m.chunk) {
    jx_scratch_chunk *c = s->chunk;
    s->chunk = c->prev;
    jx_free(c);
  }
  s->used = m.used;
  s->cap = s->chunk ? s->chunk->cap : JX_SCRATCH_INLINE;
}

void jx_scratch_clear(jx_scratch *s) { jx_scratch_release(s, (jx_scratch_mark){NULL, 0}); }

/* A new chunk for a block of n bytes (what is left of the current one
 * stays unused until a release). */
static void *grow(jx_scratch *s, size_t n) {
  size_t cap = s->chunk ? 2 * s->chunk->cap : CHUNK_MIN;
  if (cap < n) cap = n;
  if (cap > SIZE_MAX - sizeof(jx_scratch_chunk)) return NULL;
  jx_scratch_chunk *c = jx_malloc(sizeof *c + cap);
  if (!c) return NULL;
  c->prev = s->chunk;
  c->cap = cap;
  s->chunk = c;
  s->cap = cap;
  s->used = n;
  return c->data;
}

void *jx_scratch_alloc(jx_scratch *s, size_t n) {
  if (n > SIZE_MAX - ALIGN) return NULL;
  n = (n + ALIGN - 1) / ALIGN * ALIGN;
  if (n > s->cap - s->used) return grow(s, n);
  void *p = base(s) + s->used;
  s->used += n;
  return p;
}

void *jx_scratch_array(jx_scratch *s, size_t n, size_t size) {
  if (size && n > SIZE_MAX / size) return NULL;
  return jx_scratch_alloc(s, n * size);
}

void *jx_scratch_zeros(jx_scratch *s, size_t n, size_t size) {
  void *p = jx_scratch_array(s, n, size);
  if (p) memset(p, 0, n * size);
  return p;
}

/* Zero-initialized thread storage is a valid empty arena but for its
 * capacity, which the first use sets. */
static _Thread_local jx_scratch here;

jx_scratch *jx_scratch_here(void) {
  if (!here.cap && !here.chunk) jx_scratch_init(&here);
  return &here;
}
