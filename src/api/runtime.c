/* Runtime settings exposed in the public API. */
#include "backend/backend.h"
#include "core/alloc.h"

/* the host backend's thread pool: the eager kernels' and jit's */
int jx_num_threads(void) { return jx_backend_host()->num_threads(); }
void jx_set_num_threads(int n) { jx_backend_host()->set_num_threads(n); }

/* the one way to free what jx hands the caller: its allocator's free */
void jx_free_string(void *s) { jx_free(s); }
