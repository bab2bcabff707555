/* The process layer of pmap: collectives across processes on contiguous
 * buffers, called by one thread per process (the in-process devices reduce
 * among themselves first). Implemented over MPI when the build found it
 * (dist_mpi.c); without MPI there is one process and every cross-process
 * call reports that MPI was not built in. Every function returns NULL on
 * success or an error value naming `what` (the collective and its axis),
 * the ranks involved and the cause; a failure is reported on every process,
 * never a hang. */
#ifndef JX_DIST_H
#define JX_DIST_H

#include "core/core.h"

typedef enum { JX_DIST_SUM, JX_DIST_MAX, JX_DIST_MIN } jx_dist_op;

/* true once jx_distributed_init succeeded with more than one process */
bool jx_dist_active(void);

/* in place: buf (count elements of dt) becomes the reduction over processes */
jx_t jx_dist_allreduce(void *buf, int64_t count, jx_dtype dt, jx_dist_op op, const char *what);
/* the same from send into recv (send == recv: in place), sparing a copy
 * where the caller's input and output are different buffers */
jx_t jx_dist_allreduce_into(const void *send, void *recv, int64_t count, jx_dtype dt, jx_dist_op op,
                            const char *what);
/* recv = every process's `bytes` bytes of send, in process order */
jx_t jx_dist_allgather(const void *send, void *recv, int64_t bytes, const char *what);
/* send holds process_count blocks of bytes_per_rank; block j goes to process j */
jx_t jx_dist_alltoall(const void *send, void *recv, int64_t bytes_per_rank, const char *what);
/* send `bytes` to process dst while receiving as many from process src
 * (either may be -1: nothing sent / nothing received) */
jx_t jx_dist_sendrecv(const void *send, int dst, void *recv, int src, int64_t bytes, const char *what);
/* every process passes the signature of the program it is about to run
 * (shapes, dtypes, collectives): an error on all of them if they differ */
jx_t jx_dist_agree(uint64_t signature, const char *what);

#endif
