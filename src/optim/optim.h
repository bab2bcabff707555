/* Optimizers and schedules (optax's design): what the files of src/optim
 * share.
 *
 *   schedule.c    jx_schedule: step -> learning rate, built from ops
 *   optimizer.c   jx_optimizer objects, chain, the public init/update entry
 *                 points (argument checks, errors named after the
 *                 optimizer), apply_updates, global_norm, the leafwise map
 *   transforms.c  the gradient transformations (trace, scale_by_adam, ...)
 *                 and the optimizers composed from them (sgd, adam, ...)
 *   adafactor.c   adafactor and its parts (scale_by_factored_rms,
 *                 clip_by_block_rms, scale_by_param_block_rms, ema, scale)
 *
 * Everything an update computes is a jx op, so an update runs eagerly,
 * under jit, vmap and grad alike; the state is a tree of arrays. */
#ifndef JX_OPTIM_H
#define JX_OPTIM_H

#include "core/core.h"

/* One kind of gradient transformation: optax's (init, update) pair. */
typedef struct {
  const char *name;
  jx_t (*init)(const jx_optimizer *o, jx_t params);
  /* -> (updates, new_state); the arguments are checked non-error trees */
  jx_t (*update)(const jx_optimizer *o, jx_t grads, jx_t state, jx_t params);
} optim_kind;

struct jx_optimizer {
  const optim_kind *kind;
  const char *name; /* what errors call it: the kind's, or the composite's ("adamw") */
  atomic_int refs;  /* < 0: a static sentinel, never freed */
  double h[3];      /* hyperparameters, per kind */
  int64_t ih[2];    /* integer hyperparameters, per kind */
  bool flag;        /* nesterov, centered, factored, debias, no sign flip */
  jx_schedule *lr;  /* owned */
  jx_t mask;        /* retained, or NULL */
  jx_fn *mask_fn;   /* retained, or NULL: params -> the mask (optax's callable masks) */
  int n;            /* chain */
  jx_optimizer **parts;
  char *error; /* bad arguments: every init/update returns this message */
};

/* f64 0-d learning rate at `step` (any real 0-d array, possibly traced) */
jx_t jx_optim_schedule_f64(jx_schedule *s, jx_t step);
/* Why s cannot be used (NULL, or made with bad arguments), else NULL. */
const char *jx_optim_schedule_error(const jx_schedule *s);
/* A new optimizer object of kind k (jx_malloc); NULL on OOM. */
jx_optimizer *jx_optim_new(const optim_kind *k);
/* An optimizer whose init/update give the error "<name>: <msg>". */
jx_optimizer *jx_optim_bad(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Chain of parts (taken over) named `name` (NULL: "chain"). */
jx_optimizer *jx_optim_chain_named(const char *name, int n, jx_optimizer *const *parts);

/* Leafwise map: fn(in, out, u) per leaf, in[i] the leaf of ins[i] (NULL
 * inputs give NULL leaves), out[j] the leaf of output j. Returns a tuple of
 * nout trees shaped like ins[0]. Every non-NULL input must have ins[0]'s
 * structure and leaf shapes: otherwise an error naming o, names[i] and the
 * shapes. */
typedef void (*optim_leaf_fn)(const jx_t *in, jx_t *out, void *u);
jx_t jx_optim_map(const jx_optimizer *o, int nin, const jx_t *ins, const char *const *names, int nout,
                  optim_leaf_fn fn, void *u);
/* Check that tree has like's structure and leaf shapes (NULL if so). */
jx_t jx_optim_check_like(const jx_optimizer *o, const char *what, jx_t tree, const char *like_what,
                         jx_t like);
/* A tree of zeros shaped like params */
jx_t jx_optim_zeros_like(jx_t params);
/* NULL if state is a tuple of n items (n < 0: a 0-d i32 count), else an
 * error naming o and saying that it should be `what` */
jx_t jx_optim_check_state(const jx_optimizer *o, jx_t state, int n, const char *what);
/* scale_by_learning_rate; flip: -lr (optax's default), else +lr. Takes lr
 * over. */
jx_optimizer *jx_optim_scale_by_lr(jx_schedule *lr, bool flip);
/* count + 1, saturating at INT32_MAX (optax's safe_int32_increment) */
jx_t jx_optim_increment(jx_t count);

#endif
