/*
 * jx — JAX's composable function transformations, in C.
 *
 * A short tour
 * ------------
 *   jx_t x = jx_array(JX_F32, JX_SHAPE(3), (float[]){1, 2, 3});
 *   jx_t y = jx_add(jx_mul(x, x), jx_scalar(1.0));      // f32[3]: 2 5 10
 *
 * Every jx_t is an array (concrete, or a tracer while a transformation runs),
 * a tree (tuple/list/dict of jx_t), or an error value.
 *
 * Ownership. Every jx_t returned by the API belongs to the innermost pool
 * open on the calling thread (a root pool always exists). jx_pool_pop()
 * releases everything created since the matching jx_pool_push(). jx_retain()
 * adds a reference the caller owns (the value then outlives its pool) and
 * jx_release() drops it. Inside a function handed to a transformation never
 * free anything: the transformation runs it inside a pool.
 *
 * Errors. Bad input never aborts: the op returns an error value whose
 * message names the operation, the shapes and the cause. Every op given an
 * error value returns it unchanged, so one check at the end suffices:
 *   if (!jx_ok(y)) fprintf(stderr, "%s\n", jx_error(y));
 *
 * Transformations. A function is a jx_fn (a body plus user data); grad,
 * vmap, jit, ... take a jx_fn and return a new one, which composes freely.
 */
#ifndef JX_H
#define JX_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#include <initializer_list>
extern "C" {
#endif

/* Everything this header declares is libjx.so's exported API; the library
 * is built with -fvisibility=hidden, so nothing else is exported. */
#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(default)
#endif

typedef struct jx_value *jx_t; /* array (concrete or traced), tree, or error */
typedef struct jx_fn jx_fn;

/* JAX's names: bool int32 int64 uint32 float32 float64, then (#19, appended
 * so the first six keep their values) bfloat16 float16 int8 uint8 int16
 * uint16 uint64. docs/API.md lists them with their promotion. */
typedef enum {
  JX_BOOL,
  JX_I32,
  JX_I64,
  JX_U32,
  JX_F32,
  JX_F64,
  JX_BF16,
  JX_F16,
  JX_I8,
  JX_U8,
  JX_I16,
  JX_U16,
  JX_U64,
  JX_DTYPE_COUNT
} jx_dtype;

#define JX_MAX_RANK 8
#define JX_NONE     INT_MIN /* vmap: this argument is not mapped */

/* JX_SHAPE(2, 3) expands to `2, (const int64_t[]){2, 3}` (ndim, shape). In
 * C++ (no compound literals) to the count and a braced list's array, which
 * lives to the end of the full expression as a compound literal lives to
 * the end of its block (see jx_cxx_ at the end of this header). */
#ifdef __cplusplus
#define JX_NARGS_(...) ((int)sizeof(jx_cxx_::count(__VA_ARGS__)))
#define JX_SHAPE(...)  JX_NARGS_(__VA_ARGS__), std::initializer_list<int64_t>{__VA_ARGS__}.begin()
#else
#define JX_NARGS_(...) (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define JX_SHAPE(...)                                                                                        \
  JX_NARGS_(__VA_ARGS__), (const int64_t[]) { __VA_ARGS__ }
#endif
#define JX_SCALAR_SHAPE 0, NULL

/* ---------------------------------------------------------------- arrays */
jx_t jx_array(jx_dtype dtype, int ndim, const int64_t *shape, const void *data); /* copies */
jx_t jx_scalar(double v);                    /* weakly typed float (like a Python float): f32 */
jx_t jx_scalar_int(int64_t v);               /* weakly typed int (like a Python int): i32 */
jx_t jx_scalar_of(jx_dtype dtype, double v); /* strongly typed 0-d array */
jx_t jx_zeros(jx_dtype dtype, int ndim, const int64_t *shape);
jx_t jx_ones(jx_dtype dtype, int ndim, const int64_t *shape);
jx_t jx_full(jx_dtype dtype, int ndim, const int64_t *shape, double v);
jx_t jx_arange(jx_dtype dtype, double start, double stop, double step);
jx_t jx_zeros_like(jx_t x);
jx_t jx_ones_like(jx_t x);
int jx_ndim(jx_t x);             /* -1 for a tree or an error */
const int64_t *jx_shape(jx_t x); /* NULL for a tree or an error */
int64_t jx_size(jx_t x);         /* number of elements; -1 for a tree or an error */
jx_dtype jx_dtype_of(jx_t x);
bool jx_is_weak(jx_t x);
const char *jx_dtype_name(jx_dtype dtype);
size_t jx_dtype_size(jx_dtype dtype);
/* Copy x, converted to `as`, into dst; nbytes is dst's capacity. 0 on success,
 * nonzero if dst is too small or x is an error, a tree or a tracer. */
int jx_read(jx_t x, jx_dtype as, void *dst, size_t nbytes);
double jx_item(jx_t x); /* size-1 array to double; NaN (+ error) otherwise */
/* Human-readable rendering, like numpy's repr. Free with jx_free_string. */
char *jx_to_string(jx_t x);
void jx_print(jx_t x);

/* ---------------------------------------------- ops: broadcasting, JAX promotion */
jx_t jx_add(jx_t a, jx_t b);
jx_t jx_sub(jx_t a, jx_t b);
jx_t jx_mul(jx_t a, jx_t b);
jx_t jx_div(jx_t a, jx_t b); /* true division: ints promote to float */
jx_t jx_pow(jx_t a, jx_t b);
jx_t jx_maximum(jx_t a, jx_t b);
jx_t jx_minimum(jx_t a, jx_t b);

jx_t jx_neg(jx_t x);
jx_t jx_abs(jx_t x);
jx_t jx_exp(jx_t x);
jx_t jx_log(jx_t x);
jx_t jx_log1p(jx_t x);
jx_t jx_expm1(jx_t x);
jx_t jx_sqrt(jx_t x);
jx_t jx_rsqrt(jx_t x);
jx_t jx_tanh(jx_t x);
jx_t jx_sin(jx_t x);
jx_t jx_cos(jx_t x);
jx_t jx_sigmoid(jx_t x);
jx_t jx_square(jx_t x);
jx_t jx_sign(jx_t x);
jx_t jx_floor(jx_t x);
jx_t jx_relu(jx_t x);
jx_t jx_logical_not(jx_t x);

jx_t jx_eq(jx_t a, jx_t b); /* comparisons give bool */
jx_t jx_ne(jx_t a, jx_t b);
jx_t jx_lt(jx_t a, jx_t b);
jx_t jx_le(jx_t a, jx_t b);
jx_t jx_gt(jx_t a, jx_t b);
jx_t jx_ge(jx_t a, jx_t b);
jx_t jx_where(jx_t cond, jx_t a, jx_t b);
jx_t jx_astype(jx_t x, jx_dtype dtype);
jx_t jx_stop_gradient(jx_t x);

/* reductions over all axes */
jx_t jx_sum(jx_t x);
jx_t jx_mean(jx_t x);
jx_t jx_max(jx_t x);
jx_t jx_min(jx_t x);
/* reductions over chosen axes (negative axes count from the end) */
jx_t jx_sum_axes(jx_t x, int naxes, const int *axes, bool keepdims);
jx_t jx_mean_axes(jx_t x, int naxes, const int *axes, bool keepdims);
jx_t jx_max_axes(jx_t x, int naxes, const int *axes, bool keepdims);
jx_t jx_min_axes(jx_t x, int naxes, const int *axes, bool keepdims);
jx_t jx_argmax(jx_t x, int axis, bool keepdims); /* i32 indices, like jnp.argmax */
jx_t jx_argmin(jx_t x, int axis, bool keepdims);

jx_t jx_dot(jx_t a, jx_t b);    /* numpy.dot */
jx_t jx_matmul(jx_t a, jx_t b); /* numpy.matmul (batched) */

/* shapes and layout */
jx_t jx_reshape(jx_t x, int ndim, const int64_t *shape); /* one -1 allowed */
jx_t jx_transpose(jx_t x, const int *perm /* NULL: reverse the axes */);
jx_t jx_broadcast_to(jx_t x, int ndim, const int64_t *shape);
jx_t jx_expand_dims(jx_t x, int axis);
jx_t jx_squeeze(jx_t x, int axis);
/* start/stop/step per axis (NULL step: all 1). Python slice semantics:
 * negative indices count from the end, out-of-range bounds clip, negative
 * steps walk backwards. Use JX_END as a stop for "to the end" whatever the
 * sign of the step. */
#define JX_END INT64_MAX
jx_t jx_slice(jx_t x, const int64_t *start, const int64_t *stop, const int64_t *step);
jx_t jx_concatenate(int n, const jx_t *xs, int axis);
jx_t jx_stack(int n, const jx_t *xs, int axis);
jx_t jx_take(jx_t x, jx_t indices, int axis); /* negative indices wrap; out of range clamps (JAX) */
jx_t jx_one_hot(jx_t labels, int n);          /* f32[..., n] */

/* nn */
jx_t jx_logsumexp(jx_t x, int axis);
jx_t jx_softmax(jx_t x, int axis);
jx_t jx_log_softmax(jx_t x, int axis);

/* ------------------------------------------------------------ trees */
/* Limits that keep every tree walker (tree_map, flattening, printing, the
 * transformations' argument handling) bounded: jx_tuple/jx_list give an
 * error value for a tree nested deeper than JX_MAX_TREE_DEPTH levels (a
 * tuple of arrays has depth 1) or with more than JX_MAX_TREE_LEAVES leaves
 * (a subtree that appears k times counts k times). Transformations wrap
 * their arguments in a tuple or two, so pass them trees a few levels
 * shallower than the limit. */
#define JX_MAX_TREE_DEPTH  1000
#define JX_MAX_TREE_LEAVES (1 << 24)
jx_t jx_tuple(int n, const jx_t *items);
jx_t jx_list(int n, const jx_t *items);
int jx_len(jx_t tree); /* -1 if not a tree */
jx_t jx_at(jx_t tree, int i);
bool jx_is_tree(jx_t x);
jx_t jx_tree_map(jx_t (*f)(jx_t leaf, void *u), jx_t tree, void *u);
jx_t jx_tree_map2(jx_t (*f)(jx_t a, jx_t b, void *u), jx_t ta, jx_t tb, void *u);
#ifdef __cplusplus
#define JX_TUPLE(...) jx_cxx_::tuple({__VA_ARGS__})
#define JX_LIST(...)  jx_cxx_::list({__VA_ARGS__})
#else
#define JX_TUPLE(...) jx_tuple((int)(sizeof((jx_t[]){__VA_ARGS__}) / sizeof(jx_t)), (jx_t[]){__VA_ARGS__})
#define JX_LIST(...)  jx_list((int)(sizeof((jx_t[]){__VA_ARGS__}) / sizeof(jx_t)), (jx_t[]){__VA_ARGS__})
#endif

/* ---------------------------------------- functions and transformations */
typedef jx_t (*jx_body)(const jx_t *args, void *user);
jx_fn *jx_fn_new(jx_body body, int nargs, void *user);
int jx_fn_nargs(jx_fn *f); /* -1 for NULL or an error function */
jx_t jx_call(jx_fn *f, const jx_t *args);
#ifdef __cplusplus
#define JX_CALL(f, ...) jx_cxx_::call((f), {__VA_ARGS__})
#else
#define JX_CALL(f, ...) jx_call((f), (jx_t[]){__VA_ARGS__})
#endif
jx_fn *jx_grad(jx_fn *f, int argnum);           /* scalar float output required */
jx_fn *jx_value_and_grad(jx_fn *f, int argnum); /* -> (value, grad) */
jx_fn *jx_jacfwd(jx_fn *f, int argnum);
jx_fn *jx_jacrev(jx_fn *f, int argnum);
jx_fn *jx_hessian(jx_fn *f, int argnum);
jx_t jx_jvp(jx_fn *f, const jx_t *primals, const jx_t *tangents); /* -> (out, tangent_out) */
jx_t jx_vjp(jx_fn *f, const jx_t *primals, jx_fn **vjp_fn);       /* -> out; (*vjp_fn)(ct) -> tuple */
jx_fn *jx_jit(jx_fn *f);
/* jax.jit(f).lower(*args).compile(): trace the jitted function for the
 * signature of args and compile it (or load it from the disk cache)
 * without running it; later calls with that signature run it at once.
 * NULL on success, else an error value. */
jx_t jx_jit_compile(jx_fn *jitted, const jx_t *args);
jx_fn *jx_vmap(jx_fn *f, const int *in_axes, int out_axis);
jx_fn *jx_partial(jx_fn *f, int nbound, const jx_t *bound); /* binds leading args */
char *jx_make_jaxpr(jx_fn *f, const jx_t *args);            /* free with jx_free_string */
void jx_fn_free(jx_fn *f);

/* -------------------------------------- function ownership, jit options */
/* Ownership of functions is that of values: a jx_fn returned by the API
 * (jx_fn_new, every transformation, jx_vjp's pullback) belongs to the
 * innermost pool open when it was made, so a function made inside
 * jx_pool_push/jx_pool_pop goes with the pop (with whatever it wraps:
 * transformed functions hold references to their inner functions), and
 * one made in the root pool lives for the program, like a C global.
 * jx_fn_retain keeps f past its pool, jx_fn_release drops that reference.
 * jx_fn_free(f) drops one reference the caller holds: the pool's if f is
 * still in a pool of this thread (f then leaves the pool, which never
 * drops it again: no double free), else one taken with jx_fn_retain; on
 * another thread than the one whose pool holds f it does nothing (that
 * pool frees f). So code that frees the functions it makes keeps working.
 * A transformation given bad arguments (a NULL or error function, an
 * argnum out of range, ...) returns an error function: every call gives
 * an error value with the cause, and transformations of it pass the
 * error on. */
jx_fn *jx_fn_retain(jx_fn *f);
void jx_fn_release(jx_fn *f);
const char *jx_fn_error(jx_fn *f); /* NULL if f is usable, else why not */
/* Strings and blocks jx hands the caller (jx_to_string, jx_make_jaxpr,
 * the loaders' name arrays, ...) are freed with jx_free_string, through
 * the allocator (jx_set_allocator) like every block jx makes. NULL is
 * ignored. */
void jx_free_string(void *s);

/* jax.jit's static_argnums and donate_argnums. A static argument is a
 * concrete value (array or tree of arrays) that f sees as a constant,
 * not a tracer (so f may read it with jx_item and branch on it): its
 * dtype, shape and bytes are part of the cache key, so a new value traces
 * and compiles again. A donated argument (array or tree) is given up by
 * the caller: the compiled program may write an output of the same dtype
 * and shape into its buffer instead of allocating one, and after an
 * eager call the donated arrays are deleted (every later use of them
 * gives an error value, as in JAX). Donation is ignored where jit runs
 * under another transformation. Argument numbers may be negative (from
 * the end); out of range, or both static and donated, gives an error
 * function. NULL options: plain jx_jit. */
typedef struct {
  int nstatic;
  const int *static_argnums;
  int ndonate;
  const int *donate_argnums;
} jx_jit_options;
jx_fn *jx_jit_ex(jx_fn *f, const jx_jit_options *options);

/* ---------------------------------------------------------- control flow */
/* Traceable, differentiable, batchable; compiled under jit (bodies traced
 * once, loops never unrolled). Operands and carries are trees. */
/* on_true/on_false take n arguments (the operands) and return the same types */
jx_t jx_cond(jx_t pred, jx_fn *on_true, jx_fn *on_false, int n, const jx_t *operands);
/* branches[clamp(index)](operands...) */
jx_t jx_switch(jx_t index, int nbranches, jx_fn **branches, int n, const jx_t *operands);
/* while cond(carry): carry = body(carry). Forward-mode only (use scan or
 * fori_loop for reverse mode). */
jx_t jx_while_loop(jx_fn *cond, jx_fn *body, jx_t init);
/* carry = body(i, carry) for i in [lo, hi): a scan, so reverse mode works */
jx_t jx_fori_loop(int64_t lo, int64_t hi, jx_fn *body, jx_t init);
/* f(carry, x) -> (carry, y) over the leading axis of xs -> (carry, ys) */
jx_t jx_scan(jx_fn *f, jx_t init, jx_t xs);
/* lax.scan's keywords: `length` steps (-1: the xs' leading dimension; xs
 * may be NULL with a length, the body's x is then an empty tuple),
 * `reverse` walks the xs from the end (ys stay in xs order) */
jx_t jx_scan_ex(jx_fn *f, jx_t init, jx_t xs, int64_t length, bool reverse);

/* ---------------------------------------------------------------- random */
/* jax.random, bit for bit: the threefry2x32 PRNG with JAX's default layout
 * since JAX 0.5 (jax_threefry_partitionable=True). A key is a u32[2] array,
 * so keys are ordinary values under jit and vmap (vmap over a u32[n, 2]
 * array of keys draws per key). The samplers are built from primitives:
 * under grad their draws are constants. f64 draws match JAX run with
 * jax_enable_x64. normal/truncated_normal/gumbel/categorical also go
 * through erf_inv (XLA's polynomial), erf (XLA:CPU's f32 rational) and log:
 * their last bit can differ from JAX where libm's log1p/log/erf and XLA's
 * own differ. Shapes are (ndim, shape) as elsewhere. Every sampler takes
 * (key, dtype, ndim, shape, then its parameters), dropping what it lacks. */
jx_t jx_random_key(uint64_t seed);       /* jax.random.PRNGKey(seed): [seed >> 32, seed & 0xffffffff] */
jx_t jx_random_split(jx_t key, int num); /* u32[num, 2] */
jx_t jx_random_fold_in(jx_t key, uint32_t data);
jx_t jx_random_bits(jx_t key, int ndim, const int64_t *shape); /* u32 */
/* bf16/f16/f32/f64 in [minval, maxval) */
jx_t jx_random_uniform(jx_t key, jx_dtype dtype, int ndim, const int64_t *shape, double minval,
                       double maxval);
jx_t jx_random_normal(jx_t key, jx_dtype dtype, int ndim, const int64_t *shape);
/* standard normal truncated to the open interval (lower, upper) */
jx_t jx_random_truncated_normal(jx_t key, jx_dtype dtype, int ndim, const int64_t *shape, double lower,
                                double upper);
jx_t jx_random_gumbel(jx_t key, jx_dtype dtype, int ndim, const int64_t *shape);
/* bool draws, true with probability p (a float array broadcastable to shape,
 * e.g. jx_scalar(0.3)); ndim < 0: the shape of p */
jx_t jx_random_bernoulli(jx_t key, int ndim, const int64_t *shape, jx_t p);
/* i32 category indices along `axis` of unnormalized log-probabilities; the
 * result drops that axis (broadcast logits for several draws per row) */
jx_t jx_random_categorical(jx_t key, jx_t logits, int axis);
/* integers in [minval, maxval) (bounds clipped to the dtype), any integer dtype but bool */
jx_t jx_random_randint(jx_t key, jx_dtype dtype, int ndim, const int64_t *shape, int64_t minval,
                       int64_t maxval);
jx_t jx_random_permutation(jx_t key, int64_t n);    /* a shuffled arange(n), i32 (i64 past 2^31) */
jx_t jx_random_permute(jx_t key, jx_t x, int axis); /* x shuffled along axis: permutation(key, x, axis) */

/* ---------------------------------------------------- saving and loading */
/* NumPy's .npy/.npz and Hugging Face's .safetensors, readable by numpy.load,
 * numpy.savez/savez_compressed's files read back, and tree checkpoints.
 * dtypes: bool, i32, i64, u32, f32, f64 (NumPy '|b1' '<i4' '<i8' '<u4' '<f4'
 * '<f8'; safetensors BOOL I32 I64 U32 F32 F64). Saves are atomic (a
 * temporary file beside path, fsync, rename): NULL on success, else an error
 * value, and a failed save leaves an existing file as it was. Loads check
 * everything (a truncated or hostile file is an error value naming the
 * file and the cause). Loaders that return names hand back one block: n
 * pointers then the strings, freed with one jx_free_string (as for
 * jx_to_string). */
jx_t jx_npy_save(const char *path, jx_t x); /* numpy.save */
jx_t jx_npy_load(const char *path);         /* numpy.load of a .npy: the array */
/* numpy.savez(path, **{names[i]: arrays[i]}): members "<name>.npy", stored */
jx_t jx_npz_save(const char *path, int n, const char *const *names, const jx_t *arrays);
/* numpy.savez_compressed: deflated members (an error value without zlib) */
jx_t jx_npz_save_compressed(const char *path, int n, const char *const *names, const jx_t *arrays);
/* numpy.load of a .npz: a tuple of its arrays in archive order; *names
 * (optional, NULL on error) their names without ".npy" */
jx_t jx_npz_load(const char *path, char ***names);
/* safetensors.numpy.save_file / load_file, with the same conventions */
jx_t jx_safetensors_save(const char *path, int n, const char *const *names, const jx_t *arrays);
jx_t jx_safetensors_load(const char *path, char ***names);
/* Checkpoints of a tree, by the suffix of path (.npz or .safetensors):
 * each leaf is named by its key path as jax.tree_util.keystr writes it,
 * "[0][1]" for item 1 of item 0 (a bare array: ""). jx_load returns a
 * tree shaped like `like` and checks every leaf's name, dtype and shape
 * against it (and that the file holds nothing else). */
jx_t jx_save(const char *path, jx_t tree); /* NULL on success */
jx_t jx_load(const char *path, jx_t like);

/* ------------------------------------------- optimizers and schedules (optax) */
/* optax's design: an optimizer is a pure pair init(params) -> state and
 * update(grads, state, params) -> (updates, new_state) over trees, the
 * state itself a tree of arrays, everything computed with jx ops, so an
 * update runs eagerly, under jit (a whole training step in one jit), vmap
 * and grad. A learning rate is a schedule of the step count (a traced i32
 * in the state). Constructors never return NULL: bad arguments give an
 * object whose init/update return an error value naming it. A constructor
 * given schedules or optimizers takes them over (the outer object frees
 * them): free only what you keep, with jx_optim_free / jx_schedule_free
 * (jx_*_retain to share one). See docs/API.md, "Optimizers". */
typedef struct jx_schedule jx_schedule;
typedef struct jx_optimizer jx_optimizer;

/* schedules (optax.constant_schedule, linear_schedule, cosine_decay_schedule,
 * warmup_cosine_decay_schedule, exponential_decay, piecewise_constant_schedule) */
jx_schedule *jx_constant_schedule(double value);
jx_schedule *jx_linear_schedule(double init_value, double end_value, int64_t transition_steps,
                                int64_t transition_begin);
jx_schedule *jx_cosine_decay_schedule(double init_value, int64_t decay_steps, double alpha);
jx_schedule *jx_warmup_cosine_decay_schedule(double init_value, double peak_value, int64_t warmup_steps,
                                             int64_t decay_steps, double end_value);
/* end_value bounds the decay (a floor when decay_rate < 1); 0: no bound */
jx_schedule *jx_exponential_decay(double init_value, int64_t transition_steps, double decay_rate,
                                  int64_t transition_begin, bool staircase, double end_value);
/* the value is init_value * scales[0] * ... * scales[k-1] from boundaries[k-1] on */
jx_schedule *jx_piecewise_constant_schedule(double init_value, int n, const int64_t *boundaries,
                                            const double *scales);
jx_t jx_schedule_value(jx_schedule *s, jx_t step); /* f32[] at a 0-d step (may be traced) */
jx_schedule *jx_schedule_retain(jx_schedule *s);
void jx_schedule_free(jx_schedule *s);

/* optimizers (optax.sgd, adam, adamw, rmsprop, lion); each takes lr over */
jx_optimizer *jx_sgd(jx_schedule *lr, double momentum, bool nesterov);
jx_optimizer *jx_adam(jx_schedule *lr, double b1, double b2, double eps);
/* mask: NULL (decay every leaf) or a tree like params of bool arrays */
jx_optimizer *jx_adamw(jx_schedule *lr, double b1, double b2, double eps, double weight_decay, jx_t mask);
jx_optimizer *jx_rmsprop(jx_schedule *lr, double decay, double eps, double momentum, bool centered);
jx_optimizer *jx_lion(jx_schedule *lr, double b1, double b2, double weight_decay, jx_t mask);
/* gradient transformations (optax's of the same names), composed with chain */
jx_optimizer *jx_scale_by_learning_rate(jx_schedule *lr); /* updates * -lr(count) */
jx_optimizer *jx_scale_by_adam(double b1, double b2, double eps);
jx_optimizer *jx_momentum(double decay, bool nesterov); /* optax.trace */
jx_optimizer *jx_add_decayed_weights(double weight_decay, jx_t mask);
jx_optimizer *jx_clip_by_global_norm(double max_norm);
jx_optimizer *jx_chain(int n, jx_optimizer *const *parts); /* takes the parts over */

jx_t jx_optim_init(jx_optimizer *opt, jx_t params); /* -> state */
/* -> (updates, new_state); params may be NULL for optimizers that never
 * read them (not adamw, lion, add_decayed_weights) */
jx_t jx_optim_update(jx_optimizer *opt, jx_t grads, jx_t state, jx_t params);
jx_t jx_apply_updates(jx_t params, jx_t updates); /* params + updates, in params' dtypes */
jx_t jx_global_norm(jx_t tree);                   /* optax.global_norm */
jx_optimizer *jx_optim_retain(jx_optimizer *opt);
void jx_optim_free(jx_optimizer *opt);

/* ------------------------------------- named trees, tree API, interop */
/* Dicts: string keys (any C string, copied), kept sorted by strcmp (for
 * UTF-8 keys Python's sorted() order), so a dict's leaves flatten in key
 * order as JAX's do; jx_len/jx_at see the items in that order. Duplicate
 * or NULL keys are error values. Every transformation takes dicts where it
 * takes tuples and lists (grad over a dict of params, jit's cache key
 * includes the keys, vmap, scan carries, jx_save/jx_load). */
jx_t jx_dict(int n, const char *const *keys, const jx_t *values);
jx_t jx_get(jx_t dict, const char *key); /* d[key]; an error value if absent */
const char *jx_key_at(jx_t dict, int i); /* key of item i (sorted); NULL if not a dict or out of range */
/* jax.tree_util. A structure (PyTreeDef) is an opaque jx_t owned like any
 * other: jx_to_string/jx_print show it as JAX does ("PyTreeDef((*, {'b':
 * *}))"), jx_tree_structure_eq compares, jx_tree_unflatten uses it; it
 * cannot be an item of a tree or an argument of an op. */
jx_t jx_tree_flatten(jx_t tree, jx_t *structure);    /* -> list of leaves; *structure (optional) */
jx_t jx_tree_unflatten(jx_t structure, jx_t leaves); /* leaves: a list/tuple (items may be trees) */
jx_t jx_tree_leaves(jx_t tree);                      /* -> list */
jx_t jx_tree_structure(jx_t tree);
bool jx_tree_structure_eq(jx_t a, jx_t b);      /* trees or structures; false for errors */
int jx_tree_num_leaves(jx_t tree_or_structure); /* -1 for an error */
/* tree_flatten_with_path: the leaves, and in *paths (optional) their key
 * paths as jax.tree_util.keystr writes them ("['w'][0]": item 0 of key
 * 'w'; a bare leaf: ""), one block of n pointers then the strings, freed
 * with one free() (through the allocator when one is set). */
jx_t jx_tree_flatten_with_path(jx_t tree, char ***paths, jx_t *structure);
/* tree_map over n trees of one structure: f(leaves[0..n), u) per leaf */
jx_t jx_tree_map_n(jx_t (*f)(const jx_t *leaves, void *u), int n, const jx_t *trees, void *u);

/* Zero-copy interop. jx_from_buffer wraps the caller's memory (dtype,
 * shape, byte strides: NULL = row-major contiguous) without a copy when it
 * is row-major contiguous and ptr is aligned to the dtype's size; other
 * layouts (transposed, negative or zero strides, misaligned) are copied.
 * Ownership of ptr passes to jx in every case: deleter(ptr, ctx), if not
 * NULL, is called exactly once -- when the last array sharing the memory
 * is released, or before jx_from_buffer returns when it copied or failed.
 * A wrapped array aliases the memory: jx never writes to it, and writes
 * the caller makes while the array lives are seen by later reads (do not
 * write while a computation may be reading it). */
jx_t jx_from_buffer(jx_dtype dtype, int ndim, const int64_t *shape, const int64_t *strides, void *ptr,
                    void (*deleter)(void *ptr, void *ctx), void *ctx);
/* The data of a concrete array, row-major (read-only: arrays are values,
 * possibly shared). NULL for trees, errors and tracers (a tracer's read
 * also fails its transformation, as jx_read does). */
const void *jx_data_ptr(jx_t x);
/* DLPack (the dlpack.h ABI, v0.8 layout; include dlpack.h for the struct).
 * jx_to_dlpack shares x's buffer: the consumer calls the tensor's deleter
 * once when done and must not write to it. NULL (and an error through the
 * error handler) for anything but a concrete array. jx_from_dlpack takes
 * the tensor over (CPU, lanes 1, dtypes bool/int32/int64/uint32/float32/
 * float64): zero-copy when compact row-major and aligned, else copied; its
 * deleter is called exactly once (when the array is released, at once
 * after a copy, or on an error value). */
struct DLManagedTensor;
struct DLManagedTensor *jx_to_dlpack(jx_t x);
jx_t jx_from_dlpack(struct DLManagedTensor *tensor);

/* ------------------------------------------------------ memory and errors */
void jx_pool_push(void);
void jx_pool_pop(void);
jx_t jx_retain(jx_t x);
void jx_release(jx_t x);
bool jx_ok(jx_t x);
const char *jx_error(jx_t x); /* NULL if x is not an error */
#if defined(__GNUC__)
jx_t jx_error_new(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#else
jx_t jx_error_new(const char *fmt, ...);
#endif
void jx_set_error_handler(void (*h)(const char *msg, void *u), void *u);

/* Every allocation jx makes goes through one function, like Lua's lua_Alloc
 * (without the old size): alloc(ud, NULL, n) returns n bytes, alloc(ud, p, n)
 * resizes p (keeping it on failure), both NULL on failure with malloc's
 * alignment; alloc(ud, p, 0) frees p. n > 0 otherwise. Set it before any
 * other jx call and before starting threads: blocks made earlier (and the
 * strings jx returns for the caller to free) are later freed through the
 * allocator current then, so a later switch must keep accepting them (a
 * wrapper around jx_get_allocator's function does). NULL restores malloc.
 * A failed allocation gives an error value ("out of memory"), never an
 * abort. (Memory inside OpenBLAS, the C library and the C compiler is
 * theirs.) */
typedef void *(*jx_alloc_fn)(void *ud, void *ptr, size_t n);
void jx_set_allocator(jx_alloc_fn alloc, void *ud);
jx_alloc_fn jx_get_allocator(void **ud); /* the current one (never NULL) */

/* ----------------------------------------------------------- runtime */
int jx_num_threads(void);
void jx_set_num_threads(int n); /* default: JX_NUM_THREADS or all cores */

/* -------------------------------------------------------- debugging (#21) */
/* jax_debug_nans. While on, an op whose result has a NaN that its inputs
 * had not gives an error value naming the primitive and its jaxpr line
 * ("debug_nans: div made a NaN from inputs without one: c:f32[] = div
 * a:f32[] b:f32[]"); a jitted program whose outputs have a new NaN is run
 * again op by op in the interpreter, and the error names the equation of
 * its jaxpr that made the first one. Off unless the environment variable
 * JX_DEBUG_NANS is set (and not "0") when first asked; jx_set_debug_nans
 * switches it for the process and returns the previous setting. The check
 * reads every float result, so it costs time; donation is off while on. */
bool jx_set_debug_nans(bool on);
/* A function's name, used in messages: an error raised while f runs
 * (traced or not) says which functions it ran in, outermost first, e.g.
 * "... (in grad(vmap(jit(loss))))". jx_fn_new's functions are called
 * "function" until named; transformations are called by theirs. The name
 * is copied. Ignored for NULL f or name. */
void jx_fn_set_name(jx_fn *f, const char *name);
const char *jx_fn_name(jx_fn *f);
/* jax.make_jaxpr(f)(*args) as a value: a function (owned like any jx_fn:
 * by the current pool, retained or freed as the ownership rules above
 * say) holding f's jaxpr for args' signature; calling it evaluates the
 * jaxpr with the interpreter (jax.core.jaxpr_as_fun), on arguments of that
 * signature (others give an error value). It can be transformed like any
 * function. On a bad f or a failed trace it is an error function.
 * jx_jaxpr_fn_str prints its jaxpr as jx_make_jaxpr does (free with
 * jx_free_string); NULL when jf is not such a function. */
jx_fn *jx_make_jaxpr_fn(jx_fn *f, const jx_t *args);
char *jx_jaxpr_fn_str(jx_fn *jf);
/* Weight-decay masks as functions (optax's callable masks): mask_fn
 * (one argument, params) returns a tree like params of bool arrays; it is
 * called at every update (under jit, traced with it) and retained by the
 * optimizer. Otherwise as jx_add_decayed_weights, jx_adamw and jx_lion
 * with a tree mask. */
jx_optimizer *jx_add_decayed_weights_mask_fn(double weight_decay, jx_fn *mask_fn);
jx_optimizer *jx_adamw_mask_fn(jx_schedule *lr, double b1, double b2, double eps, double weight_decay,
                               jx_fn *mask_fn);
jx_optimizer *jx_lion_mask_fn(jx_schedule *lr, double b1, double b2, double weight_decay, jx_fn *mask_fn);

/* ================================ [PMAP] devices, pmap, named vmap, shard_map, collectives (#17) */
/* Devices: this process's CPU devices split its thread pool into groups
 * (JX_CPU_DEVICES=N, like XLA's --xla_force_host_platform_device_count, or
 * jx_set_cpu_devices; default 1). jx_device_count counts every process's. */
int jx_device_count(void);
int jx_local_device_count(void);
jx_t jx_set_cpu_devices(int n); /* NULL on success; n < 1: back to the default */
/* pmap: f runs once per local device on its slice of the leading (in_axes)
 * axis, which must equal jx_local_device_count(); traced and compiled once
 * (as jit), each copy on its device's threads; collectives over axis_name
 * meet across the copies. in_axes NULL: all 0; JX_NONE: replicated.
 * out_axis JX_NONE (JAX's out_axes=None): the outputs are replicated (the
 * same on every device) and device 0's is the result, unstacked. */
jx_fn *jx_pmap(jx_fn *f, const int *in_axes, int out_axis, const char *axis_name);
/* vmap whose mapped axis is named: the same collectives over the batch. */
jx_fn *jx_vmap_named(jx_fn *f, const int *in_axes, int out_axis, const char *axis_name);
/* Collectives (inside pmap, shard_map or a named vmap). axis_name may list
 * several names, comma-separated ("data,model"), for psum/pmean/pmax/pmin
 * and axis_index/axis_size. x may be a tree (psum, pmean, pmax, pmin). */
jx_t jx_psum(jx_t x, const char *axis_name);
jx_t jx_pmean(jx_t x, const char *axis_name);
jx_t jx_pmax(jx_t x, const char *axis_name);
jx_t jx_pmin(jx_t x, const char *axis_name);
jx_t jx_all_gather(jx_t x, const char *axis_name, int axis, bool tiled);
jx_t jx_psum_scatter(jx_t x, const char *axis_name, int scatter_dimension, bool tiled);
jx_t jx_all_to_all(jx_t x, const char *axis_name, int split_axis, int concat_axis, bool tiled);
jx_t jx_ppermute(jx_t x, const char *axis_name, int npairs, const int (*pairs)[2]);
jx_t jx_axis_index(const char *axis_name); /* i32 scalar */
jx_t jx_axis_size(const char *axis_name);  /* i32 scalar, concrete (a static size) */
/* Meshes: the local devices arranged with named axes (product of the shape
 * = jx_local_device_count()), or, after jx_distributed_init, every
 * process's (= jx_device_count(), the first axis a multiple of the process
 * count: it spans the processes, docs/API.md). Owned by the caller:
 * jx_mesh_free. */
typedef struct jx_mesh jx_mesh;
jx_mesh *jx_mesh_new(int ndim, const int *shape, const char *const *axis_names);
void jx_mesh_free(jx_mesh *mesh);
/* shard_map: each spec names one mesh axis (or "") per array dim,
 * comma-separated: "data," shards dim 0 over `data`; "" replicates. f sees
 * the per-device blocks; out_spec says how its outputs' blocks make the
 * global result (an axis not named there must be replicated). */
jx_fn *jx_shard_map(jx_fn *f, jx_mesh *mesh, const char *const *in_specs, const char *out_spec);
/* [PMAP] end */

/* ================================ [DIST] distributed: processes over MPI (#17) */
/* Processes (multi-process pmap over MPI; without MPI one process). */
int jx_process_index(void);
int jx_process_count(void);
jx_t jx_distributed_init(void); /* NULL on success, else an error value */
/* [DIST] end */

/* ================================ [CONV] convolution, windows, pooling (#18) */
/* lax.conv_general_dilated. lhs, rhs: rank 2 + nspatial (1-D, 2-D, 3-D, ...).
 * Per spatial dim (in the rhs spec's order): window_strides (NULL: 1),
 * padding as lo, hi pairs (NULL: 0; negative crops; jx_padtype_to_pads
 * makes SAME/VALID), lhs_dilation (transposed convolutions) and
 * rhs_dilation (atrous), NULL: 1. dimension_numbers: letters per dim of
 * lhs, rhs, out, comma-separated: "NCHW,OIHW,NCHW" (NULL: every operand in
 * that canonical order, any rank), "NHWC,HWIO,NHWC", "NCH,OIH,NCH", ...
 * feature_group_count G: lhs features = G x rhs in-features (G = features:
 * depthwise). Operands are promoted to one dtype. */
jx_t jx_conv_general_dilated(jx_t lhs, jx_t rhs, const int64_t *window_strides, const int64_t *padding,
                             const int64_t *lhs_dilation, const int64_t *rhs_dilation,
                             const char *dimension_numbers, int feature_group_count);
/* The same with batch_group_count (lhs batch split into that many groups,
 * each convolved with its share of the output features). */
jx_t jx_conv_general_dilated_ex(jx_t lhs, jx_t rhs, const int64_t *window_strides, const int64_t *padding,
                                const int64_t *lhs_dilation, const int64_t *rhs_dilation,
                                const char *dimension_numbers, int feature_group_count,
                                int batch_group_count);
/* lax.conv: NCHW-style lhs, OIHW-style rhs, padding "SAME" or "VALID". */
jx_t jx_conv(jx_t lhs, jx_t rhs, const int64_t *window_strides, const char *padding);
/* lax.conv_transpose: padding "SAME"/"VALID", or NULL to use pads (lo, hi
 * per spatial dim); dimension_numbers NULL: "NHWC,HWIO,NHWC" (by rank);
 * transpose_kernel flips the window and swaps the kernel's I and O. */
jx_t jx_conv_transpose(jx_t lhs, jx_t rhs, const int64_t *strides, const char *padding, const int64_t *pads,
                       const int64_t *rhs_dilation, const char *dimension_numbers, bool transpose_kernel);
/* lax.padtype_to_pads: "SAME" or "VALID" into n (lo, hi) pairs in pads
 * (strides NULL: 1); NULL on success, else an error value. */
jx_t jx_padtype_to_pads(int n, const int64_t *in_shape, const int64_t *window, const int64_t *strides,
                        const char *padding, int64_t *pads);
/* lax.reduce_window with op "sum", "max" or "min" (init: its identity),
 * one entry per dim of x: window, strides (NULL: 1), padding lo/hi pairs
 * (NULL: 0), base_dilation and window_dilation (NULL: 1). */
jx_t jx_reduce_window(jx_t x, const char *op, const int64_t *window, const int64_t *strides,
                      const int64_t *padding, const int64_t *base_dilation, const int64_t *window_dilation);
/* flax.linen.max_pool / avg_pool: x is [batch,] spatial..., features (NHWC
 * style); window and strides (NULL: 1) per spatial dim; padding "VALID" or
 * "SAME". avg_pool counts padding as zeros (count_include_pad). */
jx_t jx_max_pool(jx_t x, int nspatial, const int64_t *window, const int64_t *strides,
                 const char *padding /* "VALID" | "SAME" */);
jx_t jx_avg_pool(jx_t x, int nspatial, const int64_t *window, const int64_t *strides, const char *padding);
/* [CONV] end */

/* ================================ [INDEX] dynamic slicing, gather/scatter, .at[] updates (#18) */
/* lax.dynamic_slice / dynamic_update_slice: one start per dim (0-d integer
 * arrays, traced or not). A negative start counts from the end once; then
 * each start is clamped into [0, dim - size], as JAX does. */
jx_t jx_dynamic_slice(jx_t x, const jx_t *start_indices, const int64_t *sizes);
jx_t jx_dynamic_update_slice(jx_t x, jx_t update, const jx_t *start_indices);
jx_t jx_dynamic_slice_in_dim(jx_t x, jx_t start, int64_t size, int axis);
jx_t jx_dynamic_update_slice_in_dim(jx_t x, jx_t update, jx_t start, int axis);
jx_t jx_dynamic_index_in_dim(jx_t x, jx_t index, int axis, bool keepdims);

/* lax.gather / lax.scatter*: JAX's dimension numbers (dims are 0-based;
 * index_vector_dim: the dim of the indices holding each index vector, -1
 * for the last (JAX's fixed choice), the indices' rank for an implicit
 * trailing 1). Modes as lax.GatherScatterMode: CLIP clamps every start
 * into the operand; FILL_OR_DROP fills an out-of-bounds gather window with
 * fill_value and drops an out-of-bounds scatter window;
 * PROMISE_IN_BOUNDS is CLIP here. */
typedef enum { JX_GATHER_CLIP, JX_GATHER_FILL_OR_DROP, JX_GATHER_PROMISE_IN_BOUNDS } jx_gather_mode;
typedef struct {
  int noffset_dims, offset_dims[JX_MAX_RANK];
  int ncollapsed_slice_dims, collapsed_slice_dims[JX_MAX_RANK];
  int nstart_index_map, start_index_map[JX_MAX_RANK];
  int index_vector_dim;
} jx_gather_dnums;
typedef struct {
  int nupdate_window_dims, update_window_dims[JX_MAX_RANK];
  int ninserted_window_dims, inserted_window_dims[JX_MAX_RANK];
  int nscatter_dims_to_operand_dims, scatter_dims_to_operand_dims[JX_MAX_RANK];
  int index_vector_dim;
} jx_scatter_dnums;
jx_t jx_gather(jx_t operand, jx_t start_indices, const jx_gather_dnums *dnums, const int64_t *slice_sizes,
               jx_gather_mode mode, double fill_value);
/* Updates of one element apply in the updates' row-major order
 * (jx_scatter: the last one wins). */
jx_t jx_scatter(jx_t operand, jx_t indices, jx_t updates, const jx_scatter_dnums *dnums, jx_gather_mode mode);
jx_t jx_scatter_add(jx_t operand, jx_t indices, jx_t updates, const jx_scatter_dnums *dnums,
                    jx_gather_mode mode);
jx_t jx_scatter_mul(jx_t operand, jx_t indices, jx_t updates, const jx_scatter_dnums *dnums,
                    jx_gather_mode mode);
jx_t jx_scatter_min(jx_t operand, jx_t indices, jx_t updates, const jx_scatter_dnums *dnums,
                    jx_gather_mode mode);
jx_t jx_scatter_max(jx_t operand, jx_t indices, jx_t updates, const jx_scatter_dnums *dnums,
                    jx_gather_mode mode);

/* x.at[idx].op(values) with idx indexing `axis` (x.at[:, ..., idx]): the
 * updates have shape x.shape[:axis] + idx.shape + x.shape[axis+1:] (values
 * broadcast to it and cast to x's dtype). Negative indices count from the
 * end once; out-of-bounds updates are dropped (JAX's default). */
jx_t jx_at_add(jx_t x, jx_t indices, jx_t values, int axis);
jx_t jx_at_set(jx_t x, jx_t indices, jx_t values, int axis);
jx_t jx_at_mul(jx_t x, jx_t indices, jx_t values, int axis);
jx_t jx_at_min(jx_t x, jx_t indices, jx_t values, int axis);
jx_t jx_at_max(jx_t x, jx_t indices, jx_t values, int axis);
jx_t jx_at_get(jx_t x, jx_t indices, int axis); /* = jx_take: out of range clamps */
/* np.take_along_axis: indices of x's rank, broadcast against x off axis */
jx_t jx_take_along_axis(jx_t x, jx_t indices, int axis);
/* jax.ops.segment_sum / segment_max along dim 0: ids outside
 * [0, num_segments) are dropped; an empty segment's max is the dtype's
 * lowest value (-inf) */
jx_t jx_segment_sum(jx_t data, jx_t segment_ids, int64_t num_segments);
jx_t jx_segment_max(jx_t data, jx_t segment_ids, int64_t num_segments);
/* lax.pad: lo/hi per dim (negative crops), interior >= 0 between elements */
jx_t jx_pad(jx_t x, jx_t padding_value, const int64_t *lo, const int64_t *hi, const int64_t *interior);
/* [INDEX] end */

/* ================================ [SORT] sorting, cumulative ops, contractions (#18) */
/* Sorting (stable; floats in JAX's order: -0.0 equals 0.0, NaN after +inf).
 * Axes may be negative. */
jx_t jx_sort(jx_t x, int axis);    /* jnp.sort(x, axis) */
jx_t jx_argsort(jx_t x, int axis); /* jnp.argsort(x, axis, stable=True): i32 indices */
/* lax.sort(operands, dimension=axis, num_keys): n operands of one shape
 * sorted together, ordered by the first num_keys; -> tuple of n arrays */
jx_t jx_sort_multi(int n, const jx_t *operands, int axis, int num_keys);
/* lax.top_k(x, k): the k largest along the last axis, largest first (ties
 * in index order, NaN largest); -> tuple (values, i32 indices) */
jx_t jx_top_k(jx_t x, int k);
/* jnp.searchsorted(a, v, side): a sorted 1-D; side "left" (NULL) or
 * "right"; i32 indices shaped like v */
jx_t jx_searchsorted(jx_t a, jx_t v, const char *side);

/* Cumulative ops along axis (jnp.cumsum & co.; reverse as lax.cumsum's).
 * Integer sums and products wrap; bool sums count (i32). */
jx_t jx_cumsum(jx_t x, int axis);                     /* jnp.cumsum(x, axis) */
jx_t jx_cumsum_ex(jx_t x, int axis, bool reverse);    /* lax.cumsum(x, axis, reverse) */
jx_t jx_cumprod(jx_t x, int axis, bool reverse);      /* lax.cumprod */
jx_t jx_cummax(jx_t x, int axis, bool reverse);       /* lax.cummax */
jx_t jx_cummin(jx_t x, int axis, bool reverse);       /* lax.cummin */
jx_t jx_cumlogsumexp(jx_t x, int axis, bool reverse); /* lax.cumlogsumexp */
/* lax.associative_scan(fn, elems, reverse, axis): fn(a, b) (2 args, trees
 * shaped like elems) an associative operator; elems an array or a tree
 * of arrays of one length along axis */
jx_t jx_associative_scan(jx_fn *fn, jx_t elems, int axis, bool reverse);

/* Contractions. */
/* lax.dot_general: contracting and batch dims (negative allowed); result
 * dims (batch..., lhs free..., rhs free...); preferred: NULL, or
 * preferred_element_type */
jx_t jx_dot_general(jx_t lhs, jx_t rhs, int ncontract, const int *lhs_contract, const int *rhs_contract,
                    int nbatch, const int *lhs_batch, const int *rhs_batch, const jx_dtype *preferred);
/* jnp.tensordot(a, b, axes): a_axes/b_axes NULL: the last naxes of a with
 * the first naxes of b (axes=naxes) */
jx_t jx_tensordot(jx_t a, jx_t b, int naxes, const int *a_axes, const int *b_axes);
/* jnp.einsum(spec, *operands): implicit or explicit output, '...',
 * repeated labels (diagonals), contraction order by cost (greedy) */
jx_t jx_einsum(const char *spec, int n, const jx_t *operands);
/* [SORT] end */

/* ================================ [MATH] math, nn functions, reductions, creation ops (#18) */
/* Elementwise math (jax.numpy / jax.lax names; docs/API.md, "Math"). Ints
 * and bool promote to f32 where jnp promotes to inexact. */
jx_t jx_erf(jx_t x);     /* lax.erf */
jx_t jx_erfc(jx_t x);    /* lax.erfc */
jx_t jx_erfinv(jx_t x);  /* lax.erf_inv */
jx_t jx_lgamma(jx_t x);  /* lax.lgamma: log|Gamma(x)| */
jx_t jx_digamma(jx_t x); /* lax.digamma (NaN at 0, -1, -2, ...) */
/* jax.scipy.special.polygamma(n, x): the n-th derivative of digamma (n a
 * non-negative integer, else NaN; n = 0 is digamma); d/dx is
 * polygamma(n + 1, x); n is not differentiated */
jx_t jx_polygamma(jx_t n, jx_t x);
jx_t jx_tan(jx_t x);
jx_t jx_asin(jx_t x);          /* jnp.arcsin */
jx_t jx_acos(jx_t x);          /* jnp.arccos */
jx_t jx_atan(jx_t x);          /* jnp.arctan */
jx_t jx_atan2(jx_t a, jx_t b); /* jnp.arctan2(a, b) */
jx_t jx_sinh(jx_t x);
jx_t jx_cosh(jx_t x);
jx_t jx_asinh(jx_t x);
jx_t jx_acosh(jx_t x);
jx_t jx_atanh(jx_t x);
jx_t jx_log2(jx_t x);
jx_t jx_exp2(jx_t x);
jx_t jx_ceil(jx_t x);                   /* ints and bool unchanged */
jx_t jx_round(jx_t x);                  /* jnp.round: half to even; ints and bool unchanged */
jx_t jx_clip(jx_t x, jx_t lo, jx_t hi); /* jnp.clip; NULL: no bound on that side */
jx_t jx_remainder(jx_t a, jx_t b);      /* jnp.remainder / jnp.mod: the divisor's sign */
jx_t jx_fmod(jx_t a, jx_t b);           /* jnp.fmod / lax.rem: the dividend's sign */
jx_t jx_isnan(jx_t x);
jx_t jx_isinf(jx_t x);
jx_t jx_isfinite(jx_t x);
jx_t jx_integer_pow(jx_t x, int n); /* lax.integer_pow; n < 0 for floats only */
/* bitwise ops on bool and the integer dtypes (jnp names). Shifts by a
 * negative amount or by >= the bit width give 0 (left, logical) or the
 * sign fill (arithmetic), as XLA. */
jx_t jx_bitwise_and(jx_t a, jx_t b);
jx_t jx_bitwise_or(jx_t a, jx_t b);
jx_t jx_bitwise_xor(jx_t a, jx_t b);
jx_t jx_bitwise_not(jx_t x); /* jnp.invert */
jx_t jx_left_shift(jx_t a, jx_t b);
jx_t jx_right_shift(jx_t a, jx_t b);            /* arithmetic for signed, logical for unsigned */
jx_t jx_shift_right_logical(jx_t a, jx_t b);    /* lax.shift_right_logical */
jx_t jx_shift_right_arithmetic(jx_t a, jx_t b); /* lax.shift_right_arithmetic */

/* Reductions (jnp names). axes == NULL: every axis (axis=None); negative
 * axes count from the end; keepdims keeps reduced axes as size 1. */
jx_t jx_prod(jx_t x); /* all axes; bool counts as i32 */
jx_t jx_prod_axes(jx_t x, int naxes, const int *axes, bool keepdims);
jx_t jx_var(jx_t x, int naxes, const int *axes, int ddof, bool keepdims); /* / (N - ddof) */
jx_t jx_std(jx_t x, int naxes, const int *axes, int ddof, bool keepdims);
jx_t jx_any(jx_t x, int naxes, const int *axes, bool keepdims); /* bool */
jx_t jx_all(jx_t x, int naxes, const int *axes, bool keepdims);
/* jnp.linalg.norm: ord NULL (2-norm; Frobenius for two axes), "1", "2",
 * "inf", "-inf", "0", "fro" or any number p (vectors: sum(|x|^p)^(1/p));
 * one axis: vector norms, two: matrix norms (fro, 1, -1, inf, -inf) */
jx_t jx_norm(jx_t x, const char *ord, int naxes, const int *axes, bool keepdims);
jx_t jx_logsumexp_axes(jx_t x, int naxes, const int *axes, bool keepdims); /* jax.nn.logsumexp */

/* jax.nn functions; ints promote to f32 */
jx_t jx_gelu(jx_t x, bool approximate);            /* approximate: the tanh form (JAX's default) */
jx_t jx_silu(jx_t x);                              /* x * sigmoid(x), jax.nn.swish */
jx_t jx_softplus(jx_t x);                          /* log(1 + exp(x)) */
jx_t jx_log_sigmoid(jx_t x);                       /* -softplus(-x) */
jx_t jx_elu(jx_t x, double alpha);                 /* JAX's default alpha: 1.0 */
jx_t jx_leaky_relu(jx_t x, double negative_slope); /* JAX's default: 0.01 */
/* (x - mean) / sqrt(var + epsilon) over axes (NULL: the last axis; JAX's
 * default epsilon: 1e-5), the normalization of LayerNorm */
jx_t jx_standardize(jx_t x, int naxes, const int *axes, double epsilon);

/* jax.nn.initializers: samples for a parameter of the given shape, drawn
 * from key with jx_random_* (bit for bit JAX's where those are). mode:
 * "fan_in", "fan_out", "fan_avg"; distribution: "truncated_normal",
 * "normal", "uniform"; in_axis/out_axis (JAX: -2, -1) name the fan dims,
 * the others form the receptive field. */
jx_t jx_variance_scaling(jx_t key, jx_dtype dtype, int ndim, const int64_t *shape, double scale,
                         const char *mode, const char *distribution, int in_axis, int out_axis);
jx_t jx_glorot_uniform(jx_t key, jx_dtype dtype, int ndim, const int64_t *shape); /* xavier_uniform */
jx_t jx_glorot_normal(jx_t key, jx_dtype dtype, int ndim, const int64_t *shape);  /* truncated normal */
jx_t jx_lecun_uniform(jx_t key, jx_dtype dtype, int ndim, const int64_t *shape);
jx_t jx_lecun_normal(jx_t key, jx_dtype dtype, int ndim, const int64_t *shape);
jx_t jx_he_uniform(jx_t key, jx_dtype dtype, int ndim, const int64_t *shape); /* kaiming_uniform */
jx_t jx_he_normal(jx_t key, jx_dtype dtype, int ndim, const int64_t *shape);

/* Creation and shape ops (jnp names). axis JX_NONE: the flattened array
 * (JAX's axis=None). */
jx_t jx_linspace(jx_dtype dtype, double start, double stop, int64_t num, bool endpoint);
jx_t jx_eye(jx_dtype dtype, int64_t n, int64_t m, int64_t k); /* m < 0: n; k-th diagonal */
jx_t jx_tri(jx_dtype dtype, int64_t n, int64_t m, int64_t k); /* ones at and below diagonal k */
jx_t jx_tril(jx_t x, int64_t k);                              /* last two dims */
jx_t jx_triu(jx_t x, int64_t k);
jx_t jx_split(jx_t x, int sections, int axis);                          /* a list of equal parts */
jx_t jx_split_indices(jx_t x, int n, const int64_t *indices, int axis); /* n + 1 parts */
jx_t jx_tile(jx_t x, int n, const int64_t *reps);
jx_t jx_repeat(jx_t x, int64_t repeats, int axis);
jx_t jx_repeat_counts(jx_t x, int n, const int64_t *counts, int axis); /* a count per element */
jx_t jx_roll(jx_t x, int64_t shift, int axis);
jx_t jx_flip(jx_t x, int naxes, const int *axes); /* axes NULL: every axis */
/* jnp.linalg.svd(x, full_matrices=False, compute_uv): x [..., m, n] (ints
 * promoted to float), the leading dims a batch; k = min(m, n). compute_uv:
 * the tuple (u [..., m, k], s [..., k], vt [..., k, n]) with x = u diag(s)
 * vt; else s alone. s descends and is >= 0. Differentiable as in JAX (u and
 * vt need distinct singular values). */
jx_t jx_svd(jx_t x, bool compute_uv);
/* [MATH] end */

/* ================================ [CUSTOM] custom derivatives, remat, grad options, bounded loops (#19) */
/* Custom derivative rules (jax.custom_jvp, jax.custom_vjp). The rules are
 * called lazily, when a transformation needs them; they may call the
 * custom function itself. jvp_rule(primals tuple, tangents tuple) -> (out,
 * tangent out), both shaped and typed like f's output; under grad of grad
 * the rule is differentiated like any code. fwd(args...) -> (out,
 * residuals: any tree); bwd(residuals, cotangent of out) -> a tuple of
 * one cotangent per argument, typed like it. The _ex forms take
 * nondiff_argnums (jax's nondiff_argnums): those arguments are not
 * differentiated and come first to the rule, jvp_rule(nondiff...,
 * primals, tangents) / bwd(nondiff..., residuals, ct) (fwd takes every
 * argument), and primals, tangents and bwd's result cover only the others.
 * A rule returning the wrong structure, shapes or dtypes gives an error
 * value naming the rule and the mismatch. A value the function reads
 * from outside its arguments cannot be differentiated through it (an
 * error, as in JAX): pass it as an argument. */
jx_fn *jx_custom_jvp(jx_fn *f, jx_fn *jvp_rule);
jx_fn *jx_custom_jvp_ex(jx_fn *f, jx_fn *jvp_rule, int nnondiff, const int *nondiff_argnums);
jx_fn *jx_custom_vjp(jx_fn *f, jx_fn *fwd, jx_fn *bwd);
jx_fn *jx_custom_vjp_ex(jx_fn *f, jx_fn *fwd, jx_fn *bwd, int nnondiff, const int *nondiff_argnums);
/* Rematerialization (jax.checkpoint / jax.remat): under differentiation,
 * f's intermediate values are not kept for the backward pass but
 * recomputed there from f's inputs, except those the policy saves:
 * JX_REMAT_NOTHING (jax.checkpoint_policies.nothing_saveable),
 * JX_REMAT_EVERYTHING (everything_saveable: no recomputation),
 * JX_REMAT_DOTS (dots_saveable: matrix products' results),
 * JX_REMAT_NAMES (save_only_these_names: the values named with
 * jx_checkpoint_name; jx_checkpoint_ex gives the names, at most 4 of up
 * to 31 bytes). Under jit the recomputation stays (it is not merged with
 * the forward computation). */
typedef enum { JX_REMAT_NOTHING, JX_REMAT_EVERYTHING, JX_REMAT_DOTS, JX_REMAT_NAMES } jx_remat_policy;
jx_fn *jx_checkpoint(jx_fn *f, jx_remat_policy saveable);
jx_fn *jx_checkpoint_ex(jx_fn *f, jx_remat_policy saveable, int nnames, const char *const *names);
jx_t jx_checkpoint_name(jx_t x, const char *name); /* jax.ad_checkpoint.checkpoint_name: x, named */
/* Gradients of several arguments, with auxiliary outputs (jax.grad and
 * jax.value_and_grad with argnums as a tuple and has_aux): the result is
 * a tuple of gradients, one per argnum (argnums NULL: (0,)); with has_aux
 * f returns (value, aux) and grad_ex gives (grads, aux), value_and_grad_ex
 * ((value, aux), grads); without it value_and_grad_ex gives (value, grads). */
jx_fn *jx_grad_ex(jx_fn *f, int nargnums, const int *argnums, bool has_aux);
jx_fn *jx_value_and_grad_ex(jx_fn *f, int nargnums, const int *argnums, bool has_aux);
/* jax.linearize: f's output at primals (returned), and *jvp_fn(tangents...)
 * -> the output's tangent, the linear map evaluated from saved residuals
 * (one per primal argument, shaped like it). On failure *jvp_fn is an
 * error function. */
jx_t jx_linearize(jx_fn *f, const jx_t *primals, jx_fn **jvp_fn);
/* A while loop of at most max_steps steps (cond(carry) and the bound both
 * hold), differentiable in reverse mode (jax.lax.while_loop is not: JAX
 * issue #2469), with a backward pass in proportion to the steps taken
 * when the loop's inputs are known while differentiating (grad, eagerly):
 * the steps are counted, and differentiated as a scan of that length.
 * Under jit or vmap the count is not known while tracing: the derivative
 * is then that of a scan of max_steps guarded steps (correct, but every
 * step is visited backward). */
jx_t jx_while_loop_bounded(jx_fn *cond, jx_fn *body, jx_t init, int64_t max_steps);
/* vmap in chunks (functorch's vmap chunk_size; jax.lax.map with
 * batch_size): f vmapped over chunk_size examples at a time, the chunks
 * run in turn by a scan (and the remainder by one more vmap), so the
 * batched intermediates are one chunk's. Equal to jx_vmap(f, in_axes,
 * out_axis). */
jx_fn *jx_vmap_chunked(jx_fn *f, const int *in_axes, int out_axis, int64_t chunk_size);
/* [CUSTOM] end */

/* ================================ [EXPORT] export as C, serialized jaxprs (#20) */
/* jx_export_c: trace f at the shapes/dtypes of args (trees allowed; f need
 * not be jitted: it is compiled as jit would) and write dir/name.c and
 * dir/name.h, a dependency-free C99 unit (libm only: no jx, no malloc, no
 * threads, no writable globals) with the entry point
 *   int name(const void *const *inputs, void *const *outputs, void *workspace);
 * over the flattened leaves (dense row-major, in their dtypes) and
 * NAME_WORKSPACE_BYTES (NAME = name in upper case); the header lists each
 * leaf's shape and dtype as macros and comments. NULL on success; an error
 * value (no file written) naming what cannot be exported. name: a C
 * identifier of at most 64 characters. See docs/API.md, "Export". */
jx_t jx_export_c(jx_fn *jitted, const jx_t *args, const char *name, const char *dir);
typedef struct {
  /* the function's constants (closed-over weights) become entry inputs
   * after the arguments' leaves, instead of arrays in name.c; their values
   * are written to dir/name_consts.bin (each leaf's bytes, in order) */
  bool consts_as_inputs;
  /* the loops worth it (large maps and reductions, matrix products'
   * column panels, convolutions' output features) carry `#pragma omp
   * parallel for` inside `#ifdef _OPENMP`: built with -fopenmp the entry
   * point runs them on OpenMP's threads (same results: each output is
   * computed as without); built without, nothing changes */
  bool openmp;
  /* matrix products (f32, f64) also carry x86 paths inside #if on the
   * compiler's target macros: AVX-512F, else AVX2 with FMA. Built with
   * -march=native (or -mavx512f, or -mavx2 -mfma) they run at jit's speed;
   * built without, the portable loops compile as before. Bit-identical
   * to the portable loops built with the same flags (the same fused
   * multiply-adds in the same order); -DJX_EXPORT_NO_SIMD turns them off */
  bool simd;
} jx_export_options;
jx_t jx_export_c_ex(jx_fn *jitted, const jx_t *args, const char *name, const char *dir,
                    const jx_export_options *opts /* NULL: defaults */);
/* jx_export_save: trace f at args (as jx_export_c) and write its jaxprs as
 * a versioned text file (docs/API.md, "Export", has the format) that
 * jx_export_load reads back, in any process, as a jx_fn taking arguments
 * with the same leaves (shapes and dtypes) and returning the same tree:
 * it runs compiled and can be jitted, differentiated and vmapped
 * (jax.export.export / deserialize). NULL on success. A corrupt, truncated
 * or hostile file gives a function whose every call returns an error value
 * naming the line (never a crash). */
jx_t jx_export_save(jx_fn *jitted, const jx_t *args, const char *path);
jx_fn *jx_export_load(const char *path);
jx_fn *jx_export_load_text(const char *text, size_t n); /* the same from memory */
/* [EXPORT] end */

/* ================================ [PRINT] debug printing inside traced code (#21) */
/* jax.debug.print: format fmt with args and print it as one line, at run
 * time: eagerly at once; under jit each time the compiled function runs
 * (with that run's values), also inside scan/while/cond bodies; under vmap
 * once per batch element, in order; under grad/jvp the primal values, once
 * per forward evaluation (the backward pass never prints). fmt is Python's
 * str.format: "{}" takes the next argument, "{0}" argument 0, "{{" and "}}"
 * are braces; a 0-d argument takes a spec ("{:.3f}"). Values print as
 * NumPy's str() does ("[1.  2.5]", "3"). NULL on success; an error value
 * (nothing printed) for a bad format (an unclosed brace, an index past
 * nargs, mixed "{}" and "{0}") or bad args. Inside traced code it stages an
 * effectful primitive, debug_print, that no pass removes, merges or
 * reorders. fmt is kept in the primitive's params: at most
 * JX_DEBUG_PRINT_FMT_MAX bytes. */
#define JX_DEBUG_PRINT_FMT_MAX 175
jx_t jx_debug_print(const char *fmt, int nargs, const jx_t *args);
/* ordered = true: jax.debug.print(..., ordered=True). jx runs every print
 * in program order, so both forms keep their order; the flag is kept (and
 * shown in the jaxpr) for JAX's semantics. */
jx_t jx_debug_print_ex(const char *fmt, int nargs, const jx_t *args, bool ordered);
#ifdef __cplusplus
#define JX_DEBUG_PRINT(fmt, ...)                                                                             \
  jx_debug_print((fmt), JX_NARGS_(__VA_ARGS__), std::initializer_list<jx_t>{__VA_ARGS__}.begin())
#else
#define JX_DEBUG_PRINT(fmt, ...)                                                                             \
  jx_debug_print((fmt), (int)(sizeof((jx_t[]){__VA_ARGS__}) / sizeof(jx_t)), (jx_t[]){__VA_ARGS__})
#endif
/* Where printed lines go: fn(line, ctx) per print (line without its
 * newline; calls are serialized under a lock, so fn must not print
 * through jx itself). NULL fn: the default, stdout with a newline,
 * flushed per line. Process-wide. */
typedef void (*jx_print_sink)(const char *line, void *ctx);
void jx_set_print_sink(jx_print_sink fn, void *ctx);
/* [PRINT] end */

/* ================================ [LIB] library items: optimizers, C++ (#21) */
/* Adafactor (optax.adafactor) and its parts. The options carry optax's
 * keyword arguments; start from jx_adafactor_defaults() (optax's defaults)
 * and change fields. A 0 for clipping_threshold, momentum or
 * weight_decay_rate is optax's None (that part left out of the chain).
 * jx_adafactor(lr, NULL) uses the defaults; lr NULL is optax's
 * learning_rate=None (no learning-rate scaling). The mask (retained) or
 * mask function applies only with a weight decay rate. */
typedef struct {
  bool factored;                    /* true: factored second moments where a leaf allows */
  double decay_rate;                /* 0.8: decay_rate_t = 1 - (t + 1)^-decay_rate */
  int64_t decay_offset;             /* 0: t = count - decay_offset (held >= 0) */
  int64_t min_dim_size_to_factor;   /* 128 */
  double eps;                       /* 1e-30: added to the squared gradients */
  bool multiply_by_parameter_scale; /* true: steps relative to each leaf's rms */
  double clipping_threshold;        /* 1.0: clip each leaf's update rms (0: no clipping) */
  double momentum;                  /* 0: none; else an ema of the updates */
  double weight_decay_rate;         /* 0: none */
  jx_t weight_decay_mask;           /* NULL, or a tree like params of bool arrays */
  jx_fn *weight_decay_mask_fn;      /* NULL, or params -> such a tree */
} jx_adafactor_options;
jx_adafactor_options jx_adafactor_defaults(void);
jx_optimizer *jx_adafactor(jx_schedule *lr, const jx_adafactor_options *opts); /* takes lr over */
/* optax.scale_by_factored_rms: state (count, v_row, v_col, v) */
jx_optimizer *jx_scale_by_factored_rms(bool factored, double decay_rate, int64_t step_offset,
                                       int64_t min_dim_size_to_factor, double epsilon);
jx_optimizer *jx_clip_by_block_rms(double threshold);        /* u / max(1, rms(u) / threshold) */
jx_optimizer *jx_scale_by_param_block_rms(double min_scale); /* u * max(rms(p), min_scale) */
jx_optimizer *jx_ema(double decay, bool debias);             /* optax.ema: state (count, ema) */
jx_optimizer *jx_scale(double step_size);                    /* optax.scale: u * step_size */
/* jnp.roll(x, shifts, axes) with tuples: n (shift, axis) pairs in turn */
jx_t jx_roll_axes(jx_t x, int n, const int64_t *shifts, const int *axes);
/* [LIB] end */

/* ================================ [DTYPE] low-precision and small integer dtypes (#19) */
/* jnp.promote_types(a, b) of two strongly typed dtypes: their join on
 * JAX's lattice (docs/API.md); where JAX's answer is its weak default
 * float (u64 with a signed int) this is f32, jx's default float.
 * JX_DTYPE_COUNT for an invalid dtype. */
jx_dtype jx_promote_types(jx_dtype a, jx_dtype b);
/* An IDX file (MNIST, EMNIST, Fashion-MNIST; .gz read when jx has zlib)
 * as an array of the file's own dtype: u8 images stay u8 (a quarter of
 * f32's bytes; jx_astype inside the jitted step widens them), i8 i16 i32
 * f32 f64 as stored. An error value naming the file and the cause for a
 * bad header, an unknown type, or sizes that do not match the data. */
jx_t jx_idx_load(const char *path);
/* [DTYPE] end */
/* [RAND] random draws in #19's dtypes */
/* jax.random.bits(key, shape, dtype): dtype u8, u16, u32 or u64 (the low
 * bits of the 32-bit draw; u64: both threefry words, first word high) */
jx_t jx_random_bits_ex(jx_t key, jx_dtype dtype, int ndim, const int64_t *shape);
/* [RAND] end */

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}

/* C++ forms of the macros above: each argument evaluated once (a braced
 * list), the count taken in an unevaluated sizeof. */
namespace jx_cxx_ {
template <class... T> char (&count(T...))[sizeof...(T)];
inline jx_t tuple(std::initializer_list<jx_t> l) { return jx_tuple((int)l.size(), l.begin()); }
inline jx_t list(std::initializer_list<jx_t> l) { return jx_list((int)l.size(), l.begin()); }
inline jx_t call(jx_fn *f, std::initializer_list<jx_t> l) { return jx_call(f, l.begin()); }
} // namespace jx_cxx_
#endif
#endif /* JX_H */
