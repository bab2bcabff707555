/* The loop IR: what the compiler hands a backend.
 *
 * A program is a list of kernels over numbered buffers. A kernel is either
 *   - MAP: a loop nest over an iteration space whose body is a small scalar
 *     expression DAG (loads through affine index maps, constants, and
 *     elementwise primitives), storing one value per point; or
 *   - REDUCE: the same, but the loop also runs over reduced dims and the
 *     body's value is accumulated (sum/max/min) into the output; or
 *   - CALL: a primitive run as a library call (GEMM, gather, ...) on whole
 *     buffers, by the runtime;
 *   - LOOP: structured control flow (scan, while, cond) whose bodies are
 *     programs of their own (`loop.sub`), rendered as real loops and branches
 *     around calls of the bodies' kernels. A body's temporaries are
 *     allocated once per loop, its carries ping-pong between two buffers
 *     (the last step writes the loop's output buffer; a carry updated by
 *     an in-place CALL such as dynamic_update_slice stays in that one
 *     buffer, backend/cpu/render_loop.c), its stacked outputs
 *     are written in place, and its constants become constants of the
 *     enclosing program (`bmap`).
 * Layout ops (transpose, broadcast, slice, reverse, reshape) never appear:
 * fusion turned them into the affine maps of loads. */
#ifndef JX_LOOP_H
#define JX_LOOP_H

#include "core/core.h"

typedef enum { JX_LX_LOAD, JX_LX_CONST, JX_LX_INDEX, JX_LX_OP } jx_lx_kind;

/* An affine function of the loop indices: off + sum_d coef[d] * i[d]. */
typedef struct jx_affine { /* (tagged: core.h's lowering rules name it) */
  int64_t off;
  int64_t coef[JX_MAX_RANK];
} jx_affine;

typedef struct {
  uint8_t kind;
  jx_dtype dtype; /* the value's dtype */
  int buf;        /* LOAD: buffer id */
  jx_affine at;   /* LOAD: element offset; INDEX: the value itself */
  double value;   /* CONST of a float dtype */
  int64_t ivalue; /* CONST of bool or an integer dtype: exact (i64 beyond 2^53) */
  jx_prim prim;   /* OP: an elementwise primitive (convert: to dtype) */
  int nargs;
  int args[3]; /* OP: expression ids (earlier in the kernel) */
} jx_lexpr;

typedef enum { JX_LK_MAP, JX_LK_REDUCE, JX_LK_CALL, JX_LK_LOOP } jx_lkind;

struct jx_program;

/* A LOOP kernel: its operands' counts and its bodies, filled by its
 * primitive's lowering rule (loop_fields); the kind is the primitive's
 * (kernel.call.prim), whose rule names the driver that renders it. The
 * operands (ins) are, by kind:
 *   SCAN:  nconst consts, ncarry carries, then the xs; `length` steps,
 *          last to first if `reverse`; outs: the carries, then the ys;
 *   WHILE: ncconst cond consts, nbconst body consts, then the carries;
 *   COND:  the predicate, then the operands of either branch.
 * sub: SCAN: sub[0] = body; WHILE: sub[0] = cond, sub[1] = body; COND:
 * sub[0] = true branch, sub[1] = false. bmap[s][b]: for each CONST buffer
 * b of sub[s], the enclosing program's buffer holding it (-1 otherwise). */
typedef struct jx_lloop {
  int nconst, ncarry;   /* SCAN */
  int64_t length;       /* SCAN */
  bool reverse;         /* SCAN */
  bool dyn;             /* SCAN: ins[0] is the step count (params scan.dyn) */
  int ncconst, nbconst; /* WHILE */
  int nsub;
  struct jx_program *sub[2];
  int *bmap[2];
} jx_lloop;

typedef struct {
  jx_lkind kind;
  struct { /* MAP/REDUCE: the loop nest */
    int ndim;
    int64_t shape[JX_MAX_RANK]; /* iteration space */
    bool reduced[JX_MAX_RANK];  /* REDUCE: the dims summed over */
    jx_prim reduce_op;          /* REDUCE: reduce_sum / reduce_max / reduce_min */
    int nexpr;
    jx_lexpr *exprs;
    int root; /* the expression stored (MAP) or accumulated (REDUCE) */
    int out;  /* output buffer: contiguous over the kept dims */
  };
  /* CALL and LOOP: operand and result buffer ids */
  int nin, nout;
  int *ins, *outs;
  struct { /* CALL: the primitive run (LOOP: the one it was made from) */
    jx_prim prim;
    jx_params params;
  } call;
  jx_lloop loop; /* LOOP */
  /* GEMM epilogues: a dot_general CALL whose result only the next MAP
   * kernel reads, point for point, runs that kernel on each slab of rows as
   * soon as the slab is done (epilogue = its index + 1; 0: none); the MAP
   * kernel is then `fused` and not run on its own. */
  int epilogue;
  bool fused;
} jx_kernel;

typedef enum { JX_LB_ARG, JX_LB_CONST, JX_LB_TEMP, JX_LB_OUT } jx_lbkind;

typedef struct {
  jx_aval aval;
  jx_lbkind kind;
  int index;     /* ARG: argument position; CONST: const position */
  int def, last; /* kernel that writes it, last kernel that reads it */
} jx_lbuf;

typedef struct jx_program {
  int nbuf;
  jx_lbuf *bufs;
  int nkernel;
  jx_kernel *kernels;
  int nout;
  int *outs; /* per program output: buffer id */
  int nconst;
  jx_t *consts; /* retained */
  /* The program and every loop body in it, depth first: `all[id]` (the
   * root is 0; set in the root only). Generated code names a body's
   * kernels by (id, kernel). */
  int id, nall;
  struct jx_program **all;
  struct jx_jaxpr *owner; /* a body's optimized jaxpr, kept for its params */
} jx_program;

void jx_program_free(jx_program *p);
/* Does MAP kernel kn load buffer buf only at the point it stores, in flat
 * order (element i of buf for its element i)? Then it may run on any range
 * of buf as soon as that range is final (a CALL's epilogue), or write into
 * buf's own memory (donation). (compile/fuse.c) */
bool jx_kernel_reads_pointwise(const jx_kernel *kn, int buf);
/* Text dump for JX_DUMP and tests. Caller frees. */
char *jx_program_print(const jx_program *p);

#endif
