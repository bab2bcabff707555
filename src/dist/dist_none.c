/* The process layer without MPI: one process, and a clear error for every
 * cross-process request. (dist_mpi.c replaces this file's functions when
 * the build finds MPI.) */
#include "dist/dist.h"

#include <jx.h>

int jx_process_index(void) { return 0; }
int jx_process_count(void) { return 1; }
bool jx_dist_active(void) { return false; }

static jx_t not_built(const char *what) {
  return jx_error_new("%s: jx was built without MPI (install libopenmpi-dev and rebuild)", what);
}

jx_t jx_distributed_init(void) { return not_built("jx_distributed_init"); }

jx_t jx_dist_allreduce(void *buf, int64_t count, jx_dtype dt, jx_dist_op op, const char *what) {
  (void)buf, (void)count, (void)dt, (void)op;
  return not_built(what);
}
jx_t jx_dist_allreduce_into(const void *send, void *recv, int64_t count, jx_dtype dt, jx_dist_op op,
                            const char *what) {
  (void)send, (void)recv, (void)count, (void)dt, (void)op;
  return not_built(what);
}
jx_t jx_dist_allgather(const void *send, void *recv, int64_t bytes, const char *what) {
  (void)send, (void)recv, (void)bytes;
  return not_built(what);
}
jx_t jx_dist_alltoall(const void *send, void *recv, int64_t bytes_per_rank, const char *what) {
  (void)send, (void)recv, (void)bytes_per_rank;
  return not_built(what);
}
jx_t jx_dist_sendrecv(const void *send, int dst, void *recv, int src, int64_t bytes, const char *what) {
  (void)send, (void)dst, (void)recv, (void)src, (void)bytes;
  return not_built(what);
}
jx_t jx_dist_agree(uint64_t signature, const char *what) {
  (void)signature;
  return not_built(what);
}
