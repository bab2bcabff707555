/* In-process devices: the device count, the axis environment seen while
 * tracing, and the runs of a program on every device at once, whose
 * collectives meet at a rendezvous (local.c). The process layer (dist.h)
 * is called from here, by one thread per process. */
#ifndef JX_DIST_LOCAL_H
#define JX_DIST_LOCAL_H

#include "core/core.h"

enum { JX_MESH_MAX_DIMS = 4, JX_MAX_DEVICES = 256 };

/* ----------------------------------------------------- the axis environment */
/* While a transformation runs f, the names it binds: a named vmap (batch:
 * its trace) or devices (batch NULL: pmap, shard_map). Thread-local stack;
 * the innermost binding of a name wins. */
typedef struct {
  char name[JX_AXIS_NAME_CAP];
  int64_t size;
  jx_trace *batch;
  jx_trace *dynamic; /* the dynamic trace when it was bound (below batch) */
} jx_axis_frame;

jx_t jx_axis_push(const char *name, int64_t size, jx_trace *batch); /* NULL or an error */
void jx_axis_pop(void);
const jx_axis_frame *jx_axis_find(const char *name);

/* Split "a,b" into names (at most JX_COLL_MAX_NAMES, each checked for
 * length); an error naming op otherwise. */
jx_t jx_axis_names_parse(const char *op, const char *list, char names[][JX_AXIS_NAME_CAP], int *n);

/* ------------------------------------------------------------------- runs */
/* One call of a program on every device of a mesh (ndim axes, row-major
 * device order); spans_processes: its first axis continues across the
 * processes (pmap under jx_distributed_init). */
typedef struct jx_run jx_run;
typedef jx_t (*jx_device_fn)(int device, void *ctx);

/* Run fn(d, ctx) for every device d at once, each on its own thread (fn
 * gives it its share of the thread pool): device 0 on the caller's, the
 * others on persistent workers (or, when another run has them, on threads
 * started for this one); returns NULL or the first error any device gave
 * (the others were stopped at their next collective). fn runs in a pool of
 * its own and must leave the caller's thread state as it found it. */
jx_t jx_run_devices(int ndim, const int64_t *shape, const char names[][JX_AXIS_NAME_CAP],
                    bool spans_processes, jx_device_fn fn, void *ctx);

/* A collective's impl: this thread's device meets the other members of its
 * group (the devices that differ only along the named axes). */
jx_t jx_coll_run(jx_prim p, const jx_params *pa, const jx_t *in, jx_t out);

/* Tests: a thread-local group of one device binding `name` (the rules
 * harness runs the collectives' impls outside any pmap); NULL unbinds. */
void jx_coll_bind_single(const char *name);

#endif
