/* The core: values, abstract values, params, the primitive rules struct,
 * traces and bind. Everything else in jx is written against this header.
 * (In JAX terms this is core.py: Primitive, Tracer, Trace, bind.) */
#ifndef JX_CORE_H
#define JX_CORE_H

#include "core/alloc.h"
#include "jx.h"

#include <assert.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>

/* Invariants the library itself guarantees (never user input) are checked
 * always, release builds included. */
#define JX_CHECK(c)                                                                                          \
  do {                                                                                                       \
    if (!(c)) jx_internal_fail(__FILE__, __LINE__, #c);                                                      \
  } while (0)
_Noreturn void jx_internal_fail(const char *file, int line, const char *what);

/* ------------------------------------------------------------- primitives */
typedef enum {
#define JX_PRIM(name, family) JX_P_##name,
#include "primitives.def"
#undef JX_PRIM
  JX_PRIM_COUNT
} jx_prim;

extern const char *const jx_prim_names[JX_PRIM_COUNT];

/* ------------------------------------------------------ abstract values */
typedef struct jx_aval {
  jx_dtype dtype;
  int8_t ndim;
  bool weak; /* weakly typed (a Python-scalar-like constant) */
  int64_t shape[JX_MAX_RANK];
} jx_aval;

int64_t jx_aval_size(const jx_aval *a);
bool jx_aval_eq(const jx_aval *a, const jx_aval *b); /* dtype and shape (not weak) */
/* "f32[2,3]" into buf (always NUL-terminated); returns buf. */
char *jx_aval_str(const jx_aval *a, char *buf, size_t n);
/* shape into buf as "[2,3]" */
char *jx_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);
/* Validate a user shape: rank, negative dims, overflow of the element count
 * and of the byte size. On failure writes a cause into err and returns -1. */
int jx_shape_check(int ndim, const int64_t *shape, jx_dtype dt, char *err, size_t n);
/* The same checks on an aval (every result aval passes them: bind). */
int jx_aval_check(const jx_aval *a, char *err, size_t n);
void jx_strides(int ndim, const int64_t *shape, int64_t *strides); /* in elements */

/* dtypes and promotion (JAX's lattice, weak types included) */
bool jx_dtype_is_float(jx_dtype d);
bool jx_dtype_is_int(jx_dtype d); /* signed or unsigned integer, not bool */
bool jx_dtype_is_unsigned(jx_dtype d);
bool jx_dtype_is_half(jx_dtype d); /* bf16 or f16: stored in 16 bits, computed in f32 */
jx_dtype jx_promote(jx_dtype a, bool aweak, jx_dtype b, bool bweak, bool *weak_out);
/* dt = bf16 or f16: v rounded once to nearest even (NaN quiet, overflow
 * Inf); and a pattern widened exactly (scalar_ops.h's jx_f64_to_bf16 ...) */
uint16_t jx_half_round(jx_dtype dt, double v);
float jx_half_widen(jx_dtype dt, uint16_t h);

/* --------------------------------------------------------------- params */
/* A primitive's static parameters: a tagged union, one small struct per
 * primitive family. Each rule declares the kind it takes (jx_rules
 * .params_kind) and bind rejects any other. Plain data, initialised by
 * jx_params_init (every byte zeroed, padding included) so that params hash
 * and compare bytewise (they key CSE and the jit cache). */
typedef enum {
  JX_PK_NONE,    /* elementwise, select, stop_gradient, threefry2x32 */
  JX_PK_CONVERT, /* convert */
  JX_PK_REDUCE,  /* reduce_sum/max/min */
  JX_PK_ARG,     /* argmax, argmin, argsort */
  JX_PK_DOT,     /* dot_general */
  JX_PK_RESHAPE,
  JX_PK_BCAST, /* broadcast_in_dim */
  JX_PK_PERM,  /* transpose */
  JX_PK_REV,
  JX_PK_SLICE,
  JX_PK_PAD,
  JX_PK_CONCAT, /* concatenate */
  JX_PK_GATHER,
  JX_PK_SCATTER, /* scatter_add */
  JX_PK_IOTA,
  JX_PK_CALL, /* jit_call */
  JX_PK_COND,
  JX_PK_WHILE,
  JX_PK_SCAN,
  /* [PMAP] */
  JX_PK_COLL, /* collectives: psum ... axis_index */
  /* [PMAP] end */
  /* [CONV] */
  JX_PK_CONV,   /* conv_general_dilated */
  JX_PK_WINDOW, /* reduce_window_*, select_and_gather_add, select_and_scatter_add */
  /* [CONV] end */
  /* [INDEX] */
  JX_PK_DSLICE, /* dynamic_slice */
  /* [INDEX] end */
  /* [SORT] */
  JX_PK_SORT,       /* sort */
  JX_PK_CUMULATIVE, /* cumsum, cumprod, cummax, cummin, cumlogsumexp */
  /* [SORT] end */
  /* [MATH] */
  JX_PK_SVD, /* svd */
  /* [MATH] end */
  /* [CUSTOM] */
  JX_PK_CUSTOM, /* custom_jvp_call, custom_vjp_call, custom_lin */
  JX_PK_REMAT,  /* remat (checkpoint) */
  JX_PK_NAME,   /* checkpoint_name */
  JX_PK_BWHILE, /* while_bounded */
  /* [CUSTOM] end */
  /* [PRINT] */
  JX_PK_PRINT, /* debug_print */
  /* [PRINT] end */
  /* [DTYPE] */
  /* [DTYPE] end */
  JX_PK_COUNT
} jx_params_kind;

extern const char *const jx_params_kind_names[JX_PK_COUNT];

struct jx_jaxpr;

/* A list of axes: reductions, transpose's permutation, rev's dimensions. */
typedef struct {
  int8_t naxes;
  int32_t axes[JX_MAX_RANK];
} jx_axes_params;

typedef struct jx_params {
  jx_params_kind kind;
  union {
    struct {
      jx_dtype dtype;
      bool weak; /* the result is weakly typed */
    } convert;
    jx_axes_params reduce; /* the axes reduced */
    struct {
      int32_t axis;   /* the axis searched or sorted */
      jx_dtype dtype; /* of the indices */
    } arg;
    struct { /* contracting (c) and batch (b) dims of the left and right side */
      int8_t nc, nb;
      int8_t lc[JX_MAX_RANK], rc[JX_MAX_RANK], lb[JX_MAX_RANK], rb[JX_MAX_RANK];
      int8_t pref; /* [BF16] 0, or 1 + the result dtype (preferred_element_type f32 of bf16/f16) */
    } dot;
    struct {
      int8_t ndim;
      int64_t shape[JX_MAX_RANK];
    } reshape;
    struct { /* operand dim i -> result dim axes[i] of shape */
      int8_t ndim, naxes;
      int64_t shape[JX_MAX_RANK];
      int32_t axes[JX_MAX_RANK];
    } bcast;
    jx_axes_params perm; /* result dim i = operand dim axes[i] */
    jx_axes_params rev;  /* the dims reversed */
    struct {             /* per operand dim (its rank) */
      int64_t start[JX_MAX_RANK], limit[JX_MAX_RANK], stride[JX_MAX_RANK];
    } slice;
    struct { /* per operand dim: padding before, after and between elements */
      int64_t lo[JX_MAX_RANK], hi[JX_MAX_RANK], interior[JX_MAX_RANK];
    } pad;
    struct {
      int32_t axis;
    } concat;
    struct { /* 0, 1, ... along axis of shape */
      int32_t axis;
      jx_dtype dtype;
      int8_t ndim;
      int64_t shape[JX_MAX_RANK];
    } iota;
    /* Higher-order primitives: each equation holds a reference to each of
     * its inner jaxprs (jx_params_jaxprs lists them). */
    struct {
      struct jx_jaxpr *jaxpr;
    } call;
    struct { /* cond(pred, ops...) */
      struct jx_jaxpr *on_true, *on_false;
    } cond;
    struct { /* while(cconsts, bconsts, carries) */
      struct jx_jaxpr *cond, *body;
      int32_t ncconst, nbconst; /* the constants of cond and of body */
    } while_;
    struct { /* scan(consts, carries, xs) */
      struct jx_jaxpr *body;
      int32_t nconst, ncarry;
      int64_t length;
      bool reverse;
      /* dyn: consts[0] is an integer scalar n, and only the steps
       * [0, clamp(n, 0, length)) run (in reverse order when reverse); the
       * carries pass the other steps through and their ys rows are zero.
       * The body takes n as its first constant too. while_loop_bounded's
       * derivatives under jit are scans of this kind, so their cost follows
       * the steps taken, not the bound. */
      bool dyn;
    } scan;
    /* [PMAP] */
/* axis names are stored inline (params hash bytewise): at most
 * JX_AXIS_NAME_CAP - 1 bytes each, JX_COLL_MAX_NAMES per collective;
 * ppermute's permutation covers at most JX_COLL_MAX_PERM members */
#define JX_AXIS_NAME_CAP  16
#define JX_COLL_MAX_NAMES 4
#define JX_COLL_MAX_PERM  64
    struct {
      char names[JX_COLL_MAX_NAMES][JX_AXIS_NAME_CAP];
      int8_t nnames;
      bool tiled;
      /* all_gather: the new (or grown) dim; psum_scatter: the scattered dim;
       * all_to_all: the split dim (axis) and the concatenated one (axis2) */
      int32_t axis, axis2;
      int64_t size;                  /* the members: product of the named axes' sizes */
      int8_t perm[JX_COLL_MAX_PERM]; /* ppermute: perm[src] = dst, -1 none */
    } coll;
    /* [PMAP] end */
    /* [CONV] */
    /* conv_general_dilated, as lax's: the specs are JAX's
     * ConvDimensionNumbers (lhs: batch dim, feature dim, spatial dims;
     * rhs: out-feature dim, in-feature dim, spatial dims; out: as lhs),
     * then per spatial dim (nsp of them, in the specs' order) the window
     * strides, padding (lo, hi; negative crops), lhs and rhs dilation. */
    struct {
      int8_t nsp;
      int8_t lhs[JX_MAX_RANK], rhs[JX_MAX_RANK], out[JX_MAX_RANK];
      int32_t stride[JX_MAX_RANK - 2], lo[JX_MAX_RANK - 2], hi[JX_MAX_RANK - 2];
      int32_t lhs_dil[JX_MAX_RANK - 2], rhs_dil[JX_MAX_RANK - 2];
      int32_t fgc, bgc; /* feature_group_count, batch_group_count */
    } conv;
    /* windows over every operand dim (reduce_window, select_and_*):
     * sizes, strides, padding, base and window dilation; select_and_*
     * pick the max (select 0: ge) or the min (1: le) of each window */
    struct {
      int32_t window[JX_MAX_RANK], stride[JX_MAX_RANK], lo[JX_MAX_RANK], hi[JX_MAX_RANK];
      int32_t base_dil[JX_MAX_RANK], win_dil[JX_MAX_RANK];
      int8_t select;
    } window;
    /* [CONV] end */
    /* [INDEX] */
    /* gather and the scatters: JAX's dimension numbers. gather: offset_dims,
     * collapsed_slice_dims, start_index_map, slice_sizes; scatter:
     * update_window_dims, inserted_window_dims, scatter_dims_to_operand_dims
     * (slice unused). ivd: index_vector_dim (the indices' rank: an implicit
     * trailing 1). mode (jx_gather_mode): JX_GATHER_CLIP clamps each start into the operand;
     * JX_GATHER_FILL_OR_DROP gives `fill` for an out-of-bounds gather window, drops an
     * out-of-bounds scatter window. */
    struct {
      int8_t noffset, ncollapsed, nmap, ivd, mode;
      int8_t offset[JX_MAX_RANK], collapsed[JX_MAX_RANK], map[JX_MAX_RANK];
      int64_t slice[JX_MAX_RANK];
      double fill;
    } gather, scatter;
    struct { /* dynamic_slice: the slice's shape (starts are operands) */
      int64_t sizes[JX_MAX_RANK];
    } dslice;
    /* [INDEX] end */
    /* [SORT] */
    struct { /* lax.sort: stable, along axis, keyed by the first num_keys operands */
      int32_t axis, num_keys;
    } sort;
    struct { /* lax.cumsum & co.: along axis, from the end when reverse */
      int32_t axis;
      bool reverse;
    } cumulative;
    /* [SORT] end */
    /* [MATH] */
    struct { /* lax.linalg.svd with full_matrices=False: s only, or (s, u, vt) */
      bool compute_uv;
    } svd;
    /* [MATH] end */
    /* [CUSTOM] */
    struct { /* custom_jvp_call / custom_vjp_call(consts, args); custom_lin(residuals, tangents) */
      struct jx_jaxpr *fun;  /* the function (custom_lin: NULL) */
      struct jx_jaxpr *rule; /* a carrier of the rules (control/custom.h) */
      int32_t nconst;        /* leading inputs that are the function's constants */
    } custom;
    struct { /* remat(ins): the function; what its derivative needs is recomputed */
      struct jx_jaxpr *jaxpr;
      int32_t policy; /* jx_remat_policy: what is saved instead */
      int8_t nnames;  /* JX_REMAT_NAMES: the names saved */
      char names[4][32];
    } remat;
    struct {
      char name[32]; /* checkpoint_name: a name for a saving policy */
    } name;
    struct { /* while_bounded: while_'s fields first (while's rules read them), then the bound */
      struct jx_jaxpr *cond, *body;
      int32_t ncconst, nbconst;
      int64_t max_steps; /* the carries start with the step count, which cond bounds */
    } bwhile;
    /* [CUSTOM] end */
    /* [PRINT] */
    struct { /* debug_print: the format, inline (params hash bytewise), NUL-terminated */
      char fmt[JX_DEBUG_PRINT_FMT_MAX + 1];
      bool ordered; /* jax.debug.print's ordered=True */
    } print;
    /* [PRINT] end */
    /* [DTYPE] */
    /* [DTYPE] end */
  };
} jx_params;

/* Zero every byte of *p and set its kind. */
static inline void jx_params_init(jx_params *p, jx_params_kind kind) {
  memset(p, 0, sizeof *p);
  p->kind = kind;
}
/* The params of the primitives that take none. */
extern const jx_params jx_params_none;
uint64_t jx_params_hash(const jx_params *p);
/* The inner jaxprs of p (at most 2) into js; returns their count. */
int jx_params_jaxprs(const jx_params *p, struct jx_jaxpr **js);
/* Replace them, in jx_params_jaxprs's order, by js (no references taken). */
void jx_params_set_jaxprs(jx_params *p, struct jx_jaxpr *const *js);
/* gather params that take along one axis (jx_take's form), or scatter
 * params of its transpose (upd: the updates; NULL for a gather): that
 * axis, else -1 */
int jx_gather_take_axis(const jx_params *pa, const jx_aval *x, const jx_aval *idx, const jx_aval *upd);

/* A growing string (params printing, jaxpr text). oom latches. */
typedef struct {
  char *s;
  size_t n, cap;
  bool oom;
} jx_strbuf;
void jx_strbuf_put(jx_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void jx_strbuf_vput(jx_strbuf *b, const char *fmt, va_list ap);

/* FNV-1a over n bytes, continuing from h (start from JX_FNV_BASIS): params
 * hashes, jit cache keys and object checksums, shared kernel bodies. */
#define JX_FNV_BASIS 1469598103934665603ull
static inline uint64_t jx_fnv1a(const void *p, size_t n, uint64_t h) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

/* ---------------------------------------------------------------- values */
enum { JX_EXACT_NONE, JX_EXACT_FLOAT, JX_EXACT_INT };
typedef enum { JX_VK_ARRAY, JX_VK_TRACER, JX_VK_TREE, JX_VK_ERROR } jx_vkind;
/* Tree nodes. A dict keeps its keys sorted (strcmp: byte order, which for
 * UTF-8 is Python's sorted() of str, so leaves flatten in JAX's order).
 * STAR and DEF make structures (jx_tree_structure, JAX's PyTreeDef): a
 * DEF node holds one item, the tree's skeleton, whose leaves are all the
 * one immortal STAR node ("*"); both are trees without leaves, so every
 * tree walker passes them through unchanged. */
typedef enum { JX_TREE_TUPLE, JX_TREE_LIST, JX_TREE_DICT, JX_TREE_STAR, JX_TREE_DEF } jx_tree_kind;

typedef struct jx_buffer {
  atomic_int refs;
  size_t nbytes;
  void *data; /* 64-byte aligned, except the caller's memory (external) */
  /* jx_from_buffer / jx_from_dlpack: memory jx does not own. The last
   * release frees only the header and calls deleter(data, ctx) once. */
  bool external;
  /* a header over memory another frame owns for a while (scan's per-step
   * x slices): never shared by a view, which could outlive the memory */
  bool borrowed;
  void (*deleter)(void *data, void *ctx);
  void *ctx;
} jx_buffer;

typedef struct jx_trace jx_trace;

struct jx_value {
  atomic_int refs;
  uint8_t kind;
  jx_aval aval; /* arrays and tracers */
  union {
    struct {
      jx_buffer *buf;
      /* A weak scalar from jx_scalar/jx_scalar_int keeps the Python-number
       * value it was given (JX_EXACT_*): its buffer holds that value
       * rounded to the weak default dtype, and promotion converts from the
       * exact value once (as JAX converts a Python scalar), so that
       * f64 + jx_scalar(0.1) adds 0.1, not (float)0.1. */
      uint8_t exact;
      double exact_f;
      int64_t exact_i;
    } arr;
    struct {
      jx_trace *trace;
      jx_t a, b; /* trace-specific: jvp (primal, tangent); batch (value, -) */
      int64_t i; /* trace-specific: batch dim; stage var id */
      void *p;   /* trace-specific */
    } tr;
    struct {
      uint8_t tkind;
      int n;
      int depth;   /* nesting: 1 + the deepest item's (a leaf's is 0) */
      int nleaves; /* leaves counted with repetition (shared subtrees each time);
                      a DEF node: its structure's leaves */
      jx_t *items;
      char **keys; /* a dict's n keys, sorted, one block (pointers, then strings) */
    } tree;
    struct {
      char *msg;
      bool located; /* msg names the functions it was raised in (jx_call) */
    } err;
  } u;
};

static inline bool jx_is_array(jx_t x) { return x && x->kind == JX_VK_ARRAY; }
static inline bool jx_is_tracer(jx_t x) { return x && x->kind == JX_VK_TRACER; }
static inline bool jx_is_error(jx_t x) { return !x || x->kind == JX_VK_ERROR; }
static inline void *jx_data(jx_t x) { return x->u.arr.buf->data; }
static inline const jx_aval *jx_aval_of(jx_t x) { return &x->aval; }

/* Creation: the new value carries one reference, owned by the current pool. */
jx_t jx_value_new(jx_vkind kind);
/* A fresh array of aval with an uninitialised buffer (error on OOM). */
jx_t jx_array_new(const jx_aval *aval);
jx_t jx_array_new_shape(jx_dtype dt, int ndim, const int64_t *shape);
/* Errors: jx_error_new (public) formats a message and calls the error
 * handler; jx_verror_new is its va_list form. */
jx_t jx_verror_new(const char *fmt, va_list ap);
/* While on (this thread), new error values skip the user's handler: for
 * failures the library recovers from. Returns the previous setting. */
bool jx_errors_quiet(bool on);
/* The first error among xs (NULL counts as one), else NULL. */
jx_t jx_first_error(int n, const jx_t *xs);

/* Buffers: 64-byte aligned, size-class cached (see backend/cpu/alloc). */
jx_buffer *jx_buffer_new(size_t nbytes);
void jx_buffer_release(jx_buffer *b);
/* A buffer over the caller's memory (external); NULL when out of memory
 * (the deleter is then not called: the caller decides). */
jx_buffer *jx_buffer_wrap(void *data, size_t nbytes, void (*deleter)(void *, void *), void *ctx);
/* An array of aval over base's buffer from byte_off on, sharing it (no
 * copy; core/view.c); an error value when out of memory. base: a concrete
 * array whose buffer holds the bytes. */
jx_t jx_array_view(jx_t base, size_t byte_off, const jx_aval *a);

/* Pools: a thread-local stack of owned references. */
size_t jx_pool_mark(void);
void jx_pool_release_to(size_t mark);
/* The current pool takes over one reference the caller holds (typically
 * one taken with jx_retain before a jx_pool_release_to). Returns x. */
jx_t jx_pool_own(jx_t x);
/* JX_DEBUG_NANS (core/debug_nans.c). jx_debug_nans_check: an error
 * naming p when out has a NaN that in had not, else NULL. */
bool jx_debug_nans_on(void);
bool jx_has_nan(jx_t x);
bool jx_any_nan(int n, const jx_t *xs);
jx_t jx_debug_nans_check(jx_prim p, int nin, const jx_t *in, int nout, const jx_t *out);
/* A new error (of the current pool) saying where e was raised: "MSG (in
 * WHERE)"; e itself when out of memory. (jx_call locates errors.) */
jx_t jx_error_located(jx_t e, const char *where);
/* Pools own jx_fn too (api/fn.c): jx_pool_own_fn appends f's pool
 * reference at *slot (false when out of memory); popping the pool calls
 * jx_fn_pool_drop(f) (defined in api/fn.c). jx_pool_forget_fn clears that
 * entry (f freed early by jx_fn_free): false if slot is not f's in this
 * thread's pools. jx_pool_thread identifies this thread's pools. */
bool jx_pool_own_fn(jx_fn *f, size_t *slot);
bool jx_pool_forget_fn(jx_fn *f, size_t slot);
void jx_fn_pool_drop(jx_fn *f);
const void *jx_pool_thread(void);

/* ------------------------------------------------------------ lowering */
/* How the jit lowers a primitive: compile/fuse.c and the renderers read
 * only this part of its rules (a test walks the table: every primitive has
 * a kind, every EW one a scalar function per accepted dtype). */
typedef enum {
  JX_LOWER_NONE,    /* no lowering: jit reports "no C rendering for X" */
  JX_LOWER_EW,      /* elementwise: a scalar function (stem), fused into loop bodies */
  JX_LOWER_FORWARD, /* its first operand, unchanged (stop_gradient) */
  JX_LOWER_LAYOUT,  /* fused as index arithmetic (index_map) */
  JX_LOWER_RESHAPE, /* reads its materialized operand in the same linear order */
  JX_LOWER_IOTA,    /* the loop index along params.axis, converted */
  JX_LOWER_REDUCE,  /* a REDUCE kernel over params.axes (combine, identity) */
  JX_LOWER_CALL,    /* a library call on whole buffers: its impl */
  JX_LOWER_LOOP,    /* control flow: a LOOP kernel when its bodies compile, else a CALL */
} jx_lower_kind;

/* The scalar function of an EW op: <stem>_<operand dtype> (most),
 * <stem>_<from>_<to> (convert), <stem>_<result dtype> (select). */
typedef enum { JX_NAME_ARG, JX_NAME_CVT, JX_NAME_RESULT } jx_name_form;
/* A reduction's identity: 0, or the dtype's lowest / highest value
 * (-inf / +inf for floats). */
typedef enum { JX_ID_ZERO, JX_ID_LOWEST, JX_ID_HIGHEST } jx_identity;

typedef struct jx_affine jx_affine; /* ir/loop.h */
typedef struct jx_lloop jx_lloop;   /* ir/loop.h */

typedef struct jx_lowering {
  jx_lower_kind kind;
  /* EW: the scalar function's name (scalar_ops.h) */
  const char *stem;
  jx_name_form form;
  /* LAYOUT: the operand's index (affine in the loop indices) at output
   * index out[0..out ndim); in[0..operand ndim) comes zeroed. */
  void (*index_map)(const jx_params *p, const jx_aval *operand, const jx_affine *out, jx_affine *in);
  /* REDUCE: the monoid, as the scalar function combining two values (its
   * stem, e.g. "add" renders add_f64(acc, v)) and its identity */
  const char *combine;
  jx_identity identity;
  /* LOOP: the name of the loop driver its LOOP kernel renders with (a
   * backend's table of drivers, like the scalar functions: "scan"), and
   * how many bodies it has (the jaxprs jx_params_jaxprs lists) */
  const char *loop;
  int nbody;
  /* LOOP: fill the LOOP kernel's counts (its operands' groups, a scan's
   * length and direction) from the params */
  void (*loop_fields)(const jx_params *p, jx_lloop *l);
  /* CALL: whether a pointwise consumer of its one output may run as its
   * epilogue (GEMM and convolution epilogues, ir/loop.h); NULL: never */
  bool (*epilogue)(const jx_params *p);
  /* CALL with `epilogue`: impl, calling epi(ctx, lo, hi) on each range of
   * the output's flat elements as soon as it is final (every element once,
   * before it returns) */
  jx_t (*impl_epilogue)(const jx_t *in, const jx_params *p, jx_t out,
                        void (*epi)(void *ctx, int64_t lo, int64_t hi), void *ctx);
  /* CALL: under jit its output 0 may be written into input 0's buffer when
   * that input is a temporary nothing reads later (same bytes); the impl
   * then sees the two share data and writes only what changes
   * (compile/exec.c, alloc_defined; in a loop body also a carry read last
   * by the CALL, backend/cpu/render_loop.c: dynamic_update_slice's window) */
  bool inplace;
} jx_lowering;

/* --------------------------------------------------------------- rules */
/* A value seen by a rule is any jx_t; rules compute with ops (which bind),
 * never with buffers, except impl, which runs kernels on concrete arrays. */
typedef struct jx_rules {
  const char *name;
  int nin;  /* number of inputs, -1: variadic (>= 1) */
  int nout; /* number of outputs, -1: decided by params (higher-order) */
  /* nout -1 without inner jaxprs: the count the params give (svd: 1 or
   * 3); NULL: one output per input (sort). The typecheck holds every
   * equation to it. */
  int (*nout_of)(const jx_params *p);
  /* Every rule gets the primitive it serves, so one rule function can
   * serve a family (all binary ops share their rules). */
  /* Shapes/dtypes of the outputs. On bad input, return an error value
   * (naming the op, the shapes, the cause); NULL on success. */
  jx_t (*abstract_eval)(jx_prim prim, const jx_aval *in, int nin, const jx_params *p, jx_aval *out);
  /* Eager execution on concrete arrays; `out` arrays are allocated by bind
   * from abstract_eval's avals. Returns NULL or an error value. */
  jx_t (*impl)(jx_prim prim, const jx_t *in, int nin, const jx_params *p, jx_t *out);
  /* Forward mode: tangents[i] == NULL means a symbolic zero. Fill out
   * primals and tangents (NULL allowed for a zero tangent). */
  jx_t (*jvp)(jx_prim prim, const jx_t *primals, const jx_t *tangents, int nin, const jx_params *p, jx_t *out,
              jx_t *tout);
  /* Reverse mode. in[i] == NULL marks an input the primitive is linear in
   * whose value is unknown (only its aval is given); the others are known
   * values. Given output cotangents (NULL = zero), fill cts_in[i] for the
   * linear inputs (NULL = zero); leave the others NULL. */
  jx_t (*transpose)(jx_prim prim, const jx_t *cts, const jx_t *in, const jx_aval *avals, int nin,
                    const jx_params *p, jx_t *cts_in);
  /* vmap: bdims[i] is the mapped axis of in[i] or JX_NONE. Fill out values
   * and their mapped axes. */
  jx_t (*batch)(jx_prim prim, const jx_t *in, const int *bdims, int nin, const jx_params *p, jx_t *out,
                int *out_bdims);
  /* The kind of params it takes (bind and the jaxpr typecheck reject any
   * other) and how they print in jaxpr text: " name=value" items (NULL:
   * none, and no brackets). in: the input avals. */
  jx_params_kind params_kind;
  void (*print_params)(jx_strbuf *b, const jx_params *p, const jx_aval *in, int nin);
  /* impl makes its own outputs (bind does not preallocate them): for
   * primitives whose outputs may alias inputs or come from elsewhere. */
  bool impl_allocates;
  /* how jit lowers it (see jx_lowering) */
  jx_lowering lower;
  /* It acts on the world (debug_print): its equations are never dropped
   * (DCE), merged (CSE), folded at compile time or reordered with one
   * another, and a jaxpr derived to recompute primal values (jvp's tangent
   * half) leaves them out, since the primal half has run them. An equation
   * whose inner jaxprs hold one has the effect too (jx_eqn_has_effects). */
  bool effect;
} jx_rules;

/* whether primitive p has kernels for dtype dt (the dtypes of #19 reach
 * only those written for them: core/dtype.c); jx_abstract_eval checks it */
bool jx_prim_takes_dtype(jx_prim p, jx_dtype dt);
extern const jx_rules *const jx_prim_rules[JX_PRIM_COUNT];

/* ---------------------------------------------------------------- traces */
typedef struct jx_trace_vt {
  const char *name;
  /* Apply primitive p to inputs already raised to this trace. */
  jx_t (*process)(jx_trace *t, jx_prim p, int nin, const jx_t *in, const jx_params *params, int nout,
                  jx_t *out);
  /* Lift a value from below this trace (a concrete array or a tracer of a
   * lower level) into a tracer of this trace. */
  jx_t (*pure)(jx_trace *t, jx_t x);
  /* Release trace-specific parts of a tracer (its fields a, b, p). */
  void (*free_tracer)(jx_t tracer);
} jx_trace_vt;

struct jx_trace {
  const jx_trace_vt *vt;
  atomic_int refs; /* the stack's + one per live tracer */
  int level;       /* position in the thread's trace stack, >= 1 */
  bool active;     /* false once popped: its tracers have escaped */
  void *state;     /* the interpreter's own data */
  /* For messages: the transformation that runs this trace ("jit", "grad",
   * "vmap", ...; the interpreter's name until the transformation says). */
  const char *label;
  /* The error of a read of one of its tracers' values (jx_item, jx_read):
   * the transformation returns it instead of its result (retained). */
  jx_t poison;
  /* The temporaries of its process steps (and of bind raising inputs into
   * it): see core/alloc.h. Emptied when the trace is popped. */
  jx_scratch scratch;
};

/* Push a new trace at the top of this thread's stack and return it (NULL
 * when out of memory; jx_trace_push_failure() then says why, for the
 * caller's error). Nesting has no fixed limit. */
jx_trace *jx_trace_push(const jx_trace_vt *vt, void *state);
const char *jx_trace_push_failure(void);
/* Pop it (must be the top). The struct lives on while tracers refer to it
 * (marked inactive, so a use of an escaped tracer is a clear error). */
void jx_trace_pop(jx_trace *t);
/* Drop one reference to t (the stack's or a tracer's); frees it at zero. */
void jx_trace_unref(jx_trace *t);
/* A read of tracer x's value by `read` (jx_item, jx_read): JAX's
 * concretization error. Returns an error value naming the read, x's type
 * and the transformation, and poisons x's trace with it (first read wins)
 * so that the transformation fails even when the caller drops it. */
jx_t jx_trace_read_error(const char *read, jx_t x);
/* The poison error of t (owned by the current pool), or NULL. Every
 * transformation that runs user code checks it before returning. */
jx_t jx_trace_poisoned(const jx_trace *t);
/* The innermost trace that stages every op (jit/make_jaxpr), or NULL. */
jx_trace *jx_dynamic_trace(void);
void jx_set_dynamic_trace(jx_trace *t, jx_trace **saved);

/* New tracer for trace t with aval; fields filled by the caller. */
jx_t jx_tracer_new(jx_trace *t, const jx_aval *aval);

/* bind: the single point where ops dispatch. Outputs go to out[0..nout). On
 * any error every out[i] is the error value and it is also returned. */
jx_t jx_bind(jx_prim p, int nin, const jx_t *in, const jx_params *params, int nout, jx_t *out);
jx_t jx_bind1(jx_prim p, int nin, const jx_t *in, const jx_params *params);

/* The eval "trace": abstract_eval + allocate + impl, on concrete arrays. */
jx_t jx_eval_prim(jx_prim p, int nin, const jx_t *in, const jx_params *params, int nout, jx_t *out);
/* A primitive's abstract_eval, then every result aval checked (rank,
 * element and byte counts in range: jx_aval_check). Traces call this,
 * not the rule, so that no result shape can overflow a size computation. */
jx_t jx_abstract_eval(jx_prim p, const jx_aval *in, int nin, const jx_params *params, int nout, jx_aval *out);

/* --------------------------------------------------------------- misc */
char *jx_strdup(const char *s);
char *jx_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* JX_LOG=compile (or all): diagnostics on stderr. */
bool jx_diag_enabled(const char *what);
void jx_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* CLOCK_MONOTONIC in nanoseconds (spin deadlines, timings) */
int64_t jx_now_ns(void);

/* --------------------------------------------------------------- trees */
/* Same nesting, kinds, lengths and dict keys (a structure's STAR matches
 * any leaf; a DEF node compares as its skeleton). */
bool jx_tree_same_structure(jx_t a, jx_t b);
/* Leaves depth-first (dicts in key order); returns the count, writes at
 * most cap. (The public jx_tree_flatten returns them as a list.) */
int jx_tree_leaves_to(jx_t t, jx_t *leaves, int cap);
/* A tree shaped like `like` (a tree or a structure) holding leaves[0..)
 * in order. */
jx_t jx_tree_build(jx_t like, const jx_t *leaves);
/* The key paths of t's leaves as jax.tree_util.keystr writes them
 * ("['w'][0]"), in leaf order: one block of *n pointers then the strings
 * (jx_free), NULL when out of memory. */
char **jx_tree_paths(jx_t t, int *n);
/* Python's repr of key into out (cap bytes, NUL-terminated when cap > 0);
 * returns the length of the whole repr, like snprintf. */
size_t jx_key_repr(const char *key, char *out, size_t cap);
/* A dict node's key i. */
static inline const char *jx_tree_key(jx_t t, int i) { return t->u.tree.keys[i]; }
void jx_buffer_cache_trim(void);
/* Weak scalars' exact values (see jx_value.u.arr.exact). */
static inline bool jx_has_exact(jx_t x) { return jx_is_array(x) && x->u.arr.exact != JX_EXACT_NONE; }
/* x (a value with jx_has_exact) as a 0-d array of dt converted from its
 * exact value, weak as asked; x itself when that is what it already is.
 * An integer that dt cannot hold is an error naming op (JAX's
 * OverflowError for a Python int too large for the dtype). */
jx_t jx_exact_cast(const char *op, jx_t x, jx_dtype dt, bool weak);
/* NULL, or the error for an exact integer its own dtype cannot hold
 * (jx_exact_check) or dt cannot hold (jx_exact_fits). */
jx_t jx_exact_check(const char *op, jx_t x);
jx_t jx_exact_fits(const char *op, jx_t x, jx_dtype dt);
/* Store x's exact value into one element of dt at dst (x has one). */
void jx_exact_store(jx_t x, jx_dtype dt, void *dst);
/* one element of dtype dt from/to a double (saturating, NaN -> 0 for ints) */
void jx_scalar_store(jx_dtype dt, double v, void *dst);
double jx_scalar_load(jx_dtype dt, const void *src);
#endif
