/* Memory: the one allocator every jx allocation goes through, and the
 * caching buffer allocator behind arrays.
 *
 * Why a cache: on this class of machine a fresh 4 KiB page costs ~3 us to
 * fault in, so a 16 MB result in fresh pages costs more than the whole
 * computation that fills it. Large blocks are therefore kept on size-class
 * free lists (bounded by JX_CACHE_BYTES, default 1 GiB) and reused. Small
 * blocks go straight to malloc, whose thread caches are already fast. */
#include "core.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

/* ----------------------------------------------------------- allocator */
/* NULL stands for the C library's: the path every eager op takes stays a
 * direct malloc behind one predictable branch. */
static jx_alloc_fn alloc_fn;
static void *alloc_ud;

static void *libc_alloc(void *ud, void *p, size_t n) {
  (void)ud;
  if (n == 0) {
    free(p);
    return NULL;
  }
  return realloc(p, n);
}

void jx_set_allocator(jx_alloc_fn alloc, void *ud) {
  alloc_fn = alloc == libc_alloc ? NULL : alloc;
  alloc_ud = ud;
}

jx_alloc_fn jx_get_allocator(void **ud) {
  if (ud) *ud = alloc_ud;
  return alloc_fn ? alloc_fn : libc_alloc;
}

/* Sizes of 0 become 1 so that NULL always means failure. */
void *jx_malloc(size_t n) {
  if (!n) n = 1;
  return alloc_fn ? alloc_fn(alloc_ud, NULL, n) : malloc(n);
}

void *jx_calloc(size_t n, size_t sz) {
  if (!n) n = 1;
  if (!sz) sz = 1;
  if (!alloc_fn) return calloc(n, sz);
  if (n > SIZE_MAX / sz) return NULL;
  void *p = alloc_fn(alloc_ud, NULL, n * sz);
  if (p) memset(p, 0, n * sz);
  return p;
}

void *jx_realloc(void *p, size_t n) {
  if (!n) n = 1;
  return alloc_fn ? alloc_fn(alloc_ud, p, n) : realloc(p, n);
}

void jx_free(void *p) {
  if (!alloc_fn)
    free(p);
  else if (p)
    alloc_fn(alloc_ud, p, 0);
}

/* The block's start is kept just below the aligned address. */
void *jx_malloc_aligned64(size_t n) {
  if (n > SIZE_MAX - 64 - sizeof(void *)) return NULL;
  char *base = jx_malloc(n + 64 + sizeof(void *));
  if (!base) return NULL;
  uintptr_t a = ((uintptr_t)base + sizeof(void *) + 63) & ~(uintptr_t)63;
  ((void **)a)[-1] = base;
  return (void *)a;
}

void jx_free_aligned64(void *p) {
  if (p) jx_free(((void **)p)[-1]);
}

char *jx_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = jx_malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* ------------------------------------------------------------ buffers */
enum { ALIGN = 64, SMALL_MAX = 4096, NCLASS = 64 * 4 };

/* A buffer block is [jx_buffer header | pad to 64 | data]. `base` is what
 * malloc returned; `cls` is the size class for cached blocks, -1 else. */
typedef struct block {
  jx_buffer hdr;
  void *base;
  int cls;
  struct block *next; /* free-list link while cached */
} block;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static block *cache_head[NCLASS];
/* Bytes of the size-classed buffers in use (not cached): the working set
 * the eager kernels weigh when they choose streaming stores. */
static _Atomic size_t live_bytes;
static size_t cache_bytes, cache_limit = (size_t)1 << 30;
static int cache_limit_read;

/* Size classes above SMALL_MAX: 4 per power of two (<= 25% waste). */
static int size_class(size_t n, size_t *rounded) {
  int e = 63 - __builtin_clzll((unsigned long long)(n - 1)); /* 2^e < n <= 2^(e+1) */
  size_t quarter = (size_t)1 << (e - 1);
  size_t lo = (size_t)1 << e;
  size_t k = (n - lo + quarter - 1) / quarter; /* 1..4 */
  *rounded = lo + k * quarter;
  return e * 4 + (int)k - 1;
}

static size_t read_cache_limit(void) {
  if (!cache_limit_read) {
    const char *s = getenv("JX_CACHE_BYTES");
    if (s && *s) cache_limit = (size_t)strtoull(s, NULL, 10);
    cache_limit_read = 1;
  }
  return cache_limit;
}

/* Blocks of HUGE_MIN bytes and more (from the C library's allocator, not a
 * user's) start on a 2 MiB boundary and are marked for transparent huge
 * pages (Linux, where THP is in "madvise" mode as on this machine; NumPy
 * does the same for its large arrays): one page-table entry per 2 MiB
 * instead of 512 -- fewer TLB misses when ops stream through big arrays,
 * and a first touch that faults once per 2 MiB rather than every 4 KiB. */
enum { HUGE_MIN = 4 << 20, HUGE_PAGE = 2 << 20 };

static void advise_huge(uintptr_t d, size_t n) {
#ifdef MADV_HUGEPAGE
  if (n >= HUGE_PAGE) madvise((void *)d, n / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);
#else
  (void)d, (void)n;
#endif
}

static block *block_alloc(size_t data_bytes, int cls) {
  size_t hdr = (sizeof(block) + ALIGN - 1) / ALIGN * ALIGN;
  const bool huge = data_bytes >= HUGE_MIN && !alloc_fn;
  const size_t align = huge ? HUGE_PAGE : ALIGN;
  if (data_bytes > SIZE_MAX - hdr - align) return NULL;
  void *base = jx_malloc(hdr + data_bytes + align);
  if (!base) return NULL;
  uintptr_t d = ((uintptr_t)base + sizeof(block) + align - 1) / align * align;
  if (huge) advise_huge(d, data_bytes);
  block *b = (block *)(d - sizeof(block));
  b->base = base;
  b->cls = cls;
  b->hdr.data = (void *)d;
  return b;
}

jx_buffer *jx_buffer_new(size_t nbytes) {
  block *b = NULL;
  if (nbytes <= SMALL_MAX) {
    b = block_alloc(nbytes, -1);
  } else {
    size_t rounded;
    int cls = size_class(nbytes, &rounded);
    if (cls < NCLASS) {
      pthread_mutex_lock(&cache_lock);
      b = cache_head[cls];
      if (b) {
        cache_head[cls] = b->next;
        cache_bytes -= rounded;
      }
      pthread_mutex_unlock(&cache_lock);
      if (!b) b = block_alloc(rounded, cls);
      if (b) atomic_fetch_add_explicit(&live_bytes, rounded, memory_order_relaxed);
    } else {
      b = block_alloc(nbytes, -1);
    }
  }
  if (!b) return NULL;
  atomic_init(&b->hdr.refs, 1);
  b->hdr.nbytes = nbytes;
  b->hdr.external = false;
  b->hdr.borrowed = false;
  b->hdr.deleter = NULL;
  return &b->hdr;
}

/* The caller's memory: a bare header (no block around it), so release
 * tells the two apart by `external`. */
jx_buffer *jx_buffer_wrap(void *data, size_t nbytes, void (*deleter)(void *, void *), void *ctx) {
  jx_buffer *h = jx_malloc(sizeof *h);
  if (!h) return NULL;
  atomic_init(&h->refs, 1);
  h->nbytes = nbytes;
  h->data = data;
  h->external = true;
  h->borrowed = false;
  h->deleter = deleter;
  h->ctx = ctx;
  return h;
}

void jx_buffer_release(jx_buffer *h) {
  if (!h || atomic_fetch_sub(&h->refs, 1) != 1) return;
  if (h->external) {
    void (*deleter)(void *, void *) = h->deleter;
    void *data = h->data, *ctx = h->ctx;
    jx_free(h);
    if (deleter) deleter(data, ctx);
    return;
  }
  block *b = (block *)h;
  if (b->cls >= 0) {
    size_t rounded;
    size_class(h->nbytes, &rounded);
    atomic_fetch_sub_explicit(&live_bytes, rounded, memory_order_relaxed);
    pthread_mutex_lock(&cache_lock);
    if (cache_bytes + rounded <= read_cache_limit()) {
      b->next = cache_head[b->cls];
      cache_head[b->cls] = b;
      cache_bytes += rounded;
      b = NULL;
    }
    pthread_mutex_unlock(&cache_lock);
    if (!b) return;
  }
  jx_free(b->base);
}

size_t jx_buffer_live_bytes(void) { return atomic_load_explicit(&live_bytes, memory_order_relaxed); }

/* Drop every cached block (at exit, so leak checkers see a clean heap). */
void jx_buffer_cache_trim(void) {
  pthread_mutex_lock(&cache_lock);
  for (int c = 0; c < NCLASS; c++) {
    while (cache_head[c]) {
      block *b = cache_head[c];
      cache_head[c] = b->next;
      jx_free(b->base);
    }
  }
  cache_bytes = 0;
  pthread_mutex_unlock(&cache_lock);
}

_Noreturn void jx_internal_fail(const char *file, int line, const char *what) {
  fprintf(stderr, "jx: internal error at %s:%d: %s\n", file, line, what);
  abort();
}
