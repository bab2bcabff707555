/* The letter classifier (examples/letters): what its files share.
 *
 *   idx.c     IDX (MNIST/EMNIST) files: load (plain or .gz), save atomically
 *   npz.c     parameters as .npz (an uncompressed zip of .npy files) and back
 *   glyphs.c  the 26 lowercase letters rendered with FreeType, with random
 *             affine jitter, stroke weight and noise; split by font family
 *   train.c   the model (the seed's predict and loss), the training loop with
 *             jx's optimizers (jx_adam, jx_sgd, ...), DP-SGD, evaluation
 *   report.c  progress bar, confusion summary, the training curve as SVG
 *   cli.c     letters_main: options, the dataset cache, the whole run
 *
 * Everything reports failure with a message in an lt_err and a nonzero
 * return; nothing here exits the process. */
#ifndef LETTERS_H
#define LETTERS_H

#include <jx.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  char msg[512];
} lt_err;
int lt_fail(lt_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3))); /* returns -1 */

/* ------------------------------------------------------------- datasets */
typedef struct {
  int64_t n;       /* examples */
  int rows, cols;  /* image size */
  uint8_t *images; /* n * rows * cols, row-major, 0 = background */
  uint8_t *labels; /* n */
} lt_data;
void lt_data_free(lt_data *d);
int lt_data_classes(const lt_data *d); /* max label + 1 */

/* ------------------------------------------------------------------ IDX */
/* One IDX file: magic 0x0000 (type 0x08 = u8) (ndim), big-endian dims, data.
 * Files ending in .gz (or starting with the gzip magic) are inflated with
 * zlib when it was found at build time, otherwise refused with a message. */
/* A whole file, inflated if it is gzipped (needs zlib). */
int lt_read_file(const char *path, uint8_t **out, size_t *len, lt_err *e);
int lt_idx_read(const char *path, int *ndim, int64_t dims[4], uint8_t **data, lt_err *e);
/* Writes path atomically (a temporary file renamed over it), never gzipped. */
int lt_idx_write(const char *path, int ndim, const int64_t *dims, const uint8_t *data, lt_err *e);
/* images (n, rows, cols) + labels (n), checked against each other */
int lt_idx_load_pair(const char *images, const char *labels, lt_data *out, lt_err *e);
int lt_idx_save_pair(const char *images, const char *labels, const lt_data *d, lt_err *e);
/* Finds the train/test files of an MNIST-format set in dir: names containing
 * "train" / "t10k" or "test", and "images" / "labels" ("-idx3-ubyte"...),
 * optionally .gz. dir may also be a path prefix ("emnist/emnist-letters")
 * to pick one set out of a folder holding several. */
int lt_idx_find(const char *dir, char train_images[], char train_labels[], char test_images[],
                char test_labels[], size_t cap, lt_err *e);
bool lt_have_zlib(void);

/* ------------------------------------------------------------------ npz */
/* A list of (W, b) tuples saved as W0.npy, b0.npy, W1.npy, ... (f32), in
 * an uncompressed zip: numpy.load(path) reads it. norm (optional): the
 * input normalization (mean, std of pixel/255), saved as input_norm.npy.
 * Atomic. */
int lt_npz_save(const char *path, jx_t params, const float *norm, lt_err *e);
/* Loads such a file back into a new list of (W, b) tuples (in the current
 * pool); norm (optional) receives input_norm when the file has it. */
int lt_npz_load(const char *path, jx_t *params, float *norm, lt_err *e);

/* --------------------------------------------------------------- glyphs */
typedef struct {
  const char *font_dirs;     /* ':'-separated folders searched recursively */
  const char *test_families; /* ','-separated family names; NULL: the default rule */
  int train_per_font;        /* jittered images per letter per training font (0: ~34k images in all) */
  int test_per_font;         /* per letter per test font (0: ~5.6k images in all) */
  uint64_t seed;             /* the jitter's own generator (data, not model) */
  int size;                  /* output images are size x size */
  int threads;
  bool verbose;
} lt_glyph_opts;
bool lt_have_freetype(void);
/* A text describing the fonts the options select (paths, families, split)
 * and the generation parameters: the cache key. Caller frees. */
int lt_glyph_manifest(const lt_glyph_opts *o, char **manifest, lt_err *e);
int lt_glyph_generate(const lt_glyph_opts *o, lt_data *train, lt_data *test, lt_err *e);

/* ---------------------------------------------------------------- train */
/* the seed's model */
jx_t lt_predict(jx_t params, jx_t inputs);
/* the same computed in dtype ct (JX_BF16: mixed precision), logits in f32 */
jx_t lt_predict_in(jx_t params, jx_t inputs, jx_dtype ct);
jx_t lt_loss(const jx_t *args, void *user); /* (params, inputs f32[B,D], labels i32[B]) */
jx_t lt_init_params(jx_t key, int nlayers, const int *sizes);
/* inputs as the network sees them: (pixel/255 - mean) / std */
void lt_to_input(const lt_data *d, const int64_t *idx, int64_t n, float mean, float stdv, float *out);
/* the same with example i moved by (dx, dy) = shifts[2i], shifts[2i+1] pixels
 * (what moves in from outside is background): augmentation */
void lt_to_input_shifted(const lt_data *d, const int64_t *idx, int64_t n, float mean, float stdv,
                         const int32_t *shifts, float *out);

typedef struct {
  int epochs, batch;
  const int *hidden; /* hidden layer widths */
  int nhidden;
  const char *opt; /* "adam" or "sgd" */
  double lr, momentum, weight_decay;
  int shift;                /* augmentation: random shifts of up to this many pixels (jx_random) */
  double dp_clip, dp_noise; /* dp_clip > 0: per-example clipping (DP-SGD) */
  uint64_t seed;
  bool progress; /* redraw a progress bar (a terminal); else one line per epoch */
  bool quiet;
  int64_t max_steps; /* stop after this many steps in total (0: no limit) */
  int devices;       /* > 1: data parallel over that many in-process devices (jx_pmap, gradients pmean'd) */
  bool processes;    /* data parallel over the processes too (after jx_distributed_init) */
  bool have_norm;    /* use norm (from loaded params) instead of the data's mean/std */
  float norm[2];
  /* mixed precision: the forward and backward passes in bf16 (inputs,
   * activations and bf16 copies of the weights; products on the CPU's
   * bf16 units), the loss and the master weights in f32 */
  bool bf16;
} lt_train_opts;

typedef struct {
  int epochs;
  double loss[256], train_acc[256], test_acc[256], epoch_s[256], ex_per_s[256];
  double test_accuracy, total_s;
  int nclasses;
  int64_t *confusion; /* nclasses^2, [true][predicted], test set */
  jx_t params;        /* retained by the caller's pool owner: caller jx_release()s */
  float mean, stdv;
} lt_result;
/* params_in: NULL to initialize from the seed (jx_random), else trained further */
/* the run's optimizer (jx's optax-style ones, see lt_optimizer in train.c);
 * the caller jx_optim_free()s it */
jx_optimizer *lt_optimizer(const lt_train_opts *o, int64_t total_steps);
int lt_train(const lt_data *train, const lt_data *test, const lt_train_opts *o, jx_t params_in, lt_result *r,
             lt_err *e);
void lt_result_free(lt_result *r);
/* accuracy of params on d; confusion (nclasses^2) optional */
double lt_evaluate(jx_t params, const lt_data *d, float mean, float stdv, int nclasses, int64_t *confusion);

/* --------------------------------------------------------------- report */
void lt_progress(bool redraw, int epoch, int epochs, int64_t done, int64_t total, double loss,
                 double ex_per_s, double elapsed_s, bool final);
/* names: one character per class ("abc..."), '|'-separated words, or NULL (numbers) */
void lt_confusion_summary(const int64_t *confusion, int nclasses, const char *names, int top);
int lt_plot_svg(const char *path, const lt_result *r, const char *title, lt_err *e);

/* files: write to path.tmp.PID, then rename (nothing half-written) */
int lt_write_atomic(const char *path, const void *data, size_t n, lt_err *e);
double lt_now(void); /* seconds, monotonic */

int letters_main(int argc, char **argv);

#endif
