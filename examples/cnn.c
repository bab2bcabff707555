/* A LeNet-style CNN on Fashion-MNIST (or the letters demo's data), trained
 * the way a JAX user writes it:
 *
 *   def predict(params, x):                        # x: [B, H, W, 1] (NHWC)
 *     for W, b in params[:2]:                      # conv-relu-pool, twice
 *       x = lax.conv_general_dilated(x, W, (1, 1), "SAME",
 *                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))
 *       x = nn.max_pool(nn.relu(x + b), (2, 2), strides=(2, 2))
 *     x = x.reshape(B, -1)
 *     x = nn.relu(x @ params[2][0] + params[2][1])
 *     return x @ params[3][0] + params[3][1]
 *
 *   step = jit(value_and_grad(loss)) + optax.adam or adamw (cosine decay), one jitted step
 *
 *   build/examples/cnn [--data DIR] [--letters [DIR]] [--epochs N] [--batch N] [--lr X]
 *                      [--channels 16,32] [--hidden 128] [--shift N] [--wd X] [--smooth EPS]
 *                      [--ema D] [--cutout N] [--dropout P] [--seed N]
 *                      [--max-steps N] [--time-limit S] [--out DIR] [--export DIR]
 *
 * With no arguments it trains on Debian's dataset-fashion-mnist and ends
 * with "test accuracy: 0.9xxx". --letters reads the letters demo's cached
 * images (DIR, default build/letters/data: `make demo` makes them), or
 * renders them with the demo's defaults when that cache is missing. Its
 * test fonts are a family the training fonts lack, so the letters train
 * with shifts, cutout, AdamW, smoothed labels and the weights' moving
 * average by default (letter_defaults); the test accuracy is then
 * 0.971-0.987 over seeds 0-2 (docs/PERFORMANCE.md, issue #18).
 *
 * --export DIR: the trained predict (weights embedded) as dependency-free
 * C, DIR/cnn_predict.c/.h (jx_export_c), built with cc -std=c99 -pedantic
 * -Werror and run by a 30-line driver with no jx on 8 test images; its
 * logits must equal jit's to rounding (the export sums convolutions and
 * products in index order, jit's GEMM in blocks) and give the same labels. */
#include <jx.h>

#include "letters.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  const char *data, *out, *export_dir;
  bool letters;
  int epochs, batch, c1, c2, hidden, shift, cutout;
  unsigned seed;
  double lr, wd, smooth, dropout, ema, time_limit;
  int64_t max_steps;
} opts;

/* ---------------------------------------------------------------- model */
static const int64_t POOL[2] = {2, 2};

static jx_t conv_block(jx_t x, jx_t layer) {
  jx_t W = jx_at(layer, 0), b = jx_at(layer, 1);
  int64_t kh = jx_shape(W)[0], kw = jx_shape(W)[1];
  int64_t pad[4] = {(kh - 1) / 2, kh / 2, (kw - 1) / 2, kw / 2}; /* SAME at stride 1 */
  jx_t y = jx_conv_general_dilated(x, W, NULL, pad, NULL, NULL, "NHWC,HWIO,NHWC", 1);
  return jx_max_pool(jx_relu(jx_add(y, b)), 2, POOL, POOL, "VALID");
}

/* drop > 0 (training): inverted dropout on the hidden layer, its mask from key */
static jx_t predict_drop(jx_t params, jx_t x, jx_t key, double drop) {
  x = conv_block(conv_block(x, jx_at(params, 0)), jx_at(params, 1));
  x = jx_reshape(x, JX_SHAPE(jx_shape(x)[0], -1));
  jx_t d1 = jx_at(params, 2), d2 = jx_at(params, 3);
  x = jx_relu(jx_add(jx_dot(x, jx_at(d1, 0)), jx_at(d1, 1)));
  if (drop > 0) {
    jx_t keep = jx_random_bernoulli(key, 2, jx_shape(x), jx_scalar(1 - drop));
    x = jx_where(keep, jx_mul(x, jx_scalar(1 / (1 - drop))), jx_zeros_like(x));
  }
  return jx_add(jx_dot(x, jx_at(d2, 0)), jx_at(d2, 1));
}
static jx_t predict(jx_t params, jx_t x) { return predict_drop(params, x, NULL, 0); }

/* (params, x, labels, key) -> mean softmax cross-entropy against the
 * one-hot labels smoothed by eps = --smooth (optax.smooth_labels:
 * (1 - eps) one_hot + eps / nc); key draws the dropout mask */
static jx_t loss(const jx_t *a, void *u) {
  const opts *o = (const opts *)u;
  double eps = o->smooth;
  jx_t logits = predict_drop(a[0], a[1], a[3], o->dropout);
  int nc = (int)jx_shape(logits)[1];
  jx_t logp = jx_log_softmax(logits, -1), target = jx_one_hot(a[2], nc);
  if (eps > 0) target = jx_add(jx_mul(target, jx_scalar(1 - eps)), jx_scalar(eps / nc));
  const int last[1] = {-1};
  return jx_neg(jx_mean(jx_sum_axes(jx_mul(logp, target), 1, last, false)));
}

static jx_t predict_body(const jx_t *a, void *u) {
  (void)u;
  return predict(a[0], a[1]);
}

/* He-normal weights (fan in), zero biases */
static jx_t layer(jx_t key, int nd, const int64_t *shape, int64_t fan_in) {
  jx_t W = jx_mul(jx_random_normal(key, JX_F32, nd, shape), jx_scalar(sqrt(2.0 / (double)fan_in)));
  return JX_TUPLE(W, jx_zeros(JX_F32, 1, &shape[nd - 1]));
}
static jx_t init_params(uint64_t seed, const opts *o, int rows, int cols, int nclasses) {
  jx_t k = jx_random_key(seed);
  int64_t flat = (int64_t)(rows / 4) * (cols / 4) * o->c2;
  jx_t layers[4] = {
      layer(jx_random_fold_in(k, 0), JX_SHAPE(5, 5, 1, o->c1), 25),
      layer(jx_random_fold_in(k, 1), JX_SHAPE(5, 5, o->c1, o->c2), 25 * o->c1),
      layer(jx_random_fold_in(k, 2), JX_SHAPE(flat, o->hidden), flat),
      layer(jx_random_fold_in(k, 3), JX_SHAPE(o->hidden, nclasses), o->hidden),
  };
  return jx_list(4, layers);
}

/* ---------------------------------------------------------- training */
typedef struct {
  jx_optimizer *opt;
  jx_fn *vg;    /* jit(value_and_grad(loss)) */
  double decay; /* --ema: the weights' moving average, 0: none */
} step_ctx;

static jx_t zeros_leaf(jx_t x, void *u) { return (void)u, jx_zeros_like(x); }
static jx_t ema_leaf(jx_t avg, jx_t p, void *u) {
  double d = *(const double *)u;
  return jx_add(jx_mul(avg, jx_scalar(d)), jx_mul(p, jx_scalar(1 - d)));
}
static jx_t scale_leaf(jx_t x, void *u) { return jx_mul(x, jx_scalar(*(const double *)u)); }

/* (params, state, x, y, key[, avg]) -> (params, state, loss[, avg]): one
 * jitted step; with --ema D also avg = D avg + (1 - D) params (Polyak
 * averaging, optax.ema without the debias, applied when it is read) */
static jx_t train_step(const jx_t *a, void *u) {
  step_ctx *c = (step_ctx *)u;
  jx_t vg = JX_CALL(c->vg, a[0], a[2], a[3], a[4]);
  jx_t r = jx_optim_update(c->opt, jx_at(vg, 1), a[1], a[0]);
  jx_t p = jx_apply_updates(a[0], jx_at(r, 0));
  if (c->decay <= 0) return JX_TUPLE(p, jx_at(r, 1), jx_at(vg, 0));
  return JX_TUPLE(p, jx_at(r, 1), jx_at(vg, 0), jx_tree_map2(ema_leaf, a[5], p, &c->decay));
}

/* the average after t steps, debiased: avg / (1 - D^t) (a new reference) */
static jx_t ema_params(jx_t avg, double decay, int64_t t) {
  double k = 1 / (1 - pow(decay, (double)t));
  return jx_tree_map(scale_leaf, avg, &k);
}

/* the n x n square centred at (r0, c0), clipped to the image, set to bg */
static void cutout(float *img, int R, int C, int r0, int c0, int n, float bg) {
  for (int r = r0 - n / 2; r < r0 - n / 2 + n; r++)
    for (int c = c0 - n / 2; c < c0 - n / 2 + n; c++)
      if (r >= 0 && r < R && c >= 0 && c < C) img[r * C + c] = bg;
}

enum { EVAL_CHUNK = 500 };
static double evaluate(jx_fn *fwd, jx_t params, const lt_data *d, float mean, float stdv) {
  int64_t D = (int64_t)d->rows * d->cols, correct = 0;
  float *x = (float *)calloc((size_t)(EVAL_CHUNK * D), sizeof(float));
  int32_t pred[EVAL_CHUNK];
  for (int64_t s = 0; s < d->n; s += EVAL_CHUNK) {
    int64_t m = d->n - s < EVAL_CHUNK ? d->n - s : (int64_t)EVAL_CHUNK;
    lt_data view = *d;
    view.images = d->images + s * D;
    lt_to_input(&view, NULL, m, mean, stdv, x);
    jx_pool_push();
    jx_t X = jx_array(JX_F32, JX_SHAPE(EVAL_CHUNK, d->rows, d->cols, 1), x); /* one shape: one compile */
    jx_t am = jx_argmax(JX_CALL(fwd, params, X), 1, false);
    int bad = jx_read(am, JX_I32, pred, sizeof pred);
    if (bad) fprintf(stderr, "cnn: evaluation failed: %s\n", jx_error(am));
    jx_pool_pop();
    if (bad) break;
    for (int64_t i = 0; i < m; i++) correct += d->labels[s + i] == pred[i];
  }
  free(x);
  return d->n ? (double)correct / (double)d->n : 0;
}

static int train(const opts *o, const lt_data *tr, const lt_data *te, lt_result *r, lt_err *e) {
  int64_t D = (int64_t)tr->rows * tr->cols;
  int B = o->batch, nc = lt_data_classes(tr);
  if (lt_data_classes(te) > nc) nc = lt_data_classes(te);
  if (tr->n < B)
    return lt_fail(e, "%lld training images are fewer than one batch of %d", (long long)tr->n, B);
  double s1 = 0, s2 = 0;
  for (int64_t i = 0; i < tr->n * D; i++) s1 += tr->images[i], s2 += (double)tr->images[i] * tr->images[i];
  r->mean = (float)(s1 / (double)(tr->n * D) / 255.0);
  r->stdv = (float)sqrt(fmax(s2 / (double)(tr->n * D) / 65025.0 - (double)r->mean * r->mean, 1e-6));
  r->nclasses = nc;
  int64_t spe = tr->n / B, total = spe * o->epochs;
  if (o->max_steps > 0 && total > o->max_steps) total = o->max_steps;
  lt_train_opts to = {.epochs = o->epochs, .batch = B, .opt = "adam", .lr = o->lr, .weight_decay = o->wd};
  jx_optimizer *opt = lt_optimizer(&to, total);
  jx_fn *lf = jx_fn_new(loss, 4, (void *)o), *vg = jx_value_and_grad(lf, 0), *jvg = jx_jit(vg);
  step_ctx ctx = {opt, jvg, o->ema};
  jx_fn *sb = jx_fn_new(train_step, o->ema > 0 ? 6 : 5, &ctx), *step = jx_jit(sb);
  jx_fn *pb = jx_fn_new(predict_body, 2, NULL), *fwd = jx_jit(pb);
  jx_pool_push();
  /* seed s: weights from key s, shuffles and shifts from key s + 1 */
  jx_t params = jx_retain(init_params(o->seed, o, tr->rows, tr->cols, nc));
  jx_t state = jx_retain(jx_optim_init(opt, params));
  jx_t key = jx_retain(jx_random_key((uint64_t)o->seed + 1));
  jx_t avg = o->ema > 0 ? jx_retain(jx_tree_map(zeros_leaf, params, NULL)) : NULL;
  jx_pool_pop();
  float *x = (float *)malloc(sizeof(float) * (size_t)(B * D));
  int32_t *y = (int32_t *)malloc(sizeof(int32_t) * (size_t)B),
          *perm = (int32_t *)malloc(sizeof(int32_t) * (size_t)tr->n);
  int64_t *idx = (int64_t *)malloc(sizeof(int64_t) * (size_t)B), step_no = 0;
  int32_t *shifts = (int32_t *)malloc(sizeof(int32_t) * 2 * (size_t)B),
          *centres = (int32_t *)malloc(sizeof(int32_t) * 2 * (size_t)B);
  int rc = 0;
  double t_start = lt_now();
  bool tty = isatty(STDOUT_FILENO), out_of_time = false;
  for (int ep = 0; ep < o->epochs && !rc && step_no < total && !out_of_time; ep++) {
    jx_pool_push();
    jx_t p = jx_random_permutation(jx_random_fold_in(key, (uint32_t)ep), tr->n);
    if (jx_read(p, JX_I32, perm, sizeof(int32_t) * (size_t)tr->n))
      rc = lt_fail(e, "shuffle: %s", jx_error(p));
    jx_pool_pop();
    double t0 = lt_now(), lsum = 0, last = 0;
    int64_t n = 0;
    for (int64_t s = 0; s < spe && !rc && step_no < total; s++) {
      for (int i = 0; i < B; i++) idx[i] = perm[s * B + i], y[i] = tr->labels[idx[i]];
      jx_pool_push();
      if (o->shift > 0) { /* augmentation: every example moved by a random (dx, dy) */
        jx_t sh = jx_random_randint(jx_random_fold_in(key, (uint32_t)(1000003 + step_no)), JX_I32,
                                    JX_SHAPE(B, 2), -o->shift, o->shift + 1);
        if (jx_read(sh, JX_I32, shifts, sizeof(int32_t) * 2 * (size_t)B))
          memset(shifts, 0, sizeof(int32_t) * 2 * (size_t)B);
        lt_to_input_shifted(tr, idx, B, r->mean, r->stdv, shifts, x);
      } else {
        lt_to_input(tr, idx, B, r->mean, r->stdv, x);
      }
      if (o->cutout > 0) { /* cutout: an N x N square at a random centre set to background */
        jx_t c = jx_random_randint(jx_random_fold_in(key, (uint32_t)(2000003 + step_no)), JX_I32,
                                   JX_SHAPE(B, 2), 0, tr->rows > tr->cols ? tr->rows : tr->cols);
        if (jx_read(c, JX_I32, centres, sizeof(int32_t) * 2 * (size_t)B) == 0)
          for (int i = 0; i < B; i++)
            cutout(x + i * D, tr->rows, tr->cols, centres[2 * i], centres[2 * i + 1], o->cutout,
                   -r->mean / r->stdv);
      }
      jx_t X = jx_array(JX_F32, JX_SHAPE(B, tr->rows, tr->cols, 1), x), Y = jx_array(JX_I32, JX_SHAPE(B), y),
           K = jx_random_fold_in(key, (uint32_t)(3000003 + step_no));
      jx_t args[6] = {params, state, X, Y, K, avg};
      jx_t out = jx_call(step, args);
      double lv = jx_ok(out) ? jx_item(jx_at(out, 2)) : NAN;
      if (!isfinite(lv)) {
        rc = lt_fail(e, "step %lld: %s", (long long)step_no,
                     jx_ok(out) ? "the loss is not finite" : jx_error(out));
      } else {
        jx_t np = jx_retain(jx_at(out, 0)), ns = jx_retain(jx_at(out, 1));
        jx_release(params), jx_release(state);
        params = np, state = ns;
        if (avg) {
          jx_t na = jx_retain(jx_at(out, 3));
          jx_release(avg), avg = na;
        }
      }
      jx_pool_pop();
      lsum += lv, n++, step_no++;
      double now = lt_now();
      if (tty && now - last > 0.1)
        lt_progress(true, ep + 1, o->epochs, (s + 1) * B, spe * B, lsum / n,
                    (double)((s + 1) * B) / (now - t0), now - t_start, false),
            last = now;
      if (o->time_limit > 0 && now - t_start > o->time_limit) out_of_time = true;
      if (out_of_time) break;
    }
    if (rc) break;
    r->loss[ep] = lsum / (double)(n ? n : 1), r->epoch_s[ep] = lt_now() - t0;
    r->ex_per_s[ep] = (double)(n * B) / r->epoch_s[ep];
    jx_pool_push();
    jx_t ep_params = avg ? ema_params(avg, o->ema, step_no) : params;
    r->test_acc[ep] = evaluate(fwd, ep_params, te, r->mean, r->stdv);
    lt_data sample = *tr;
    sample.n = sample.n > 5000 ? 5000 : sample.n;
    r->train_acc[ep] = evaluate(fwd, ep_params, &sample, r->mean, r->stdv);
    jx_pool_pop();
    r->epochs = ep + 1;
    lt_progress(tty, ep + 1, o->epochs, n * B, spe * B, r->loss[ep], r->ex_per_s[ep], lt_now() - t_start,
                true);
    printf("  train acc %.4f  test acc %.4f%s\n", r->train_acc[ep], r->test_acc[ep],
           out_of_time ? "  (time limit reached)" : "");
    fflush(stdout);
  }
  r->total_s = lt_now() - t_start;
  r->test_accuracy = r->epochs ? r->test_acc[r->epochs - 1] : 0;
  if (avg) { /* the averaged weights are the result */
    jx_pool_push();
    jx_t final = jx_retain(ema_params(avg, o->ema, step_no));
    jx_pool_pop();
    jx_release(params), jx_release(avg), params = final;
  }
  r->params = params;
  jx_release(state), jx_release(key);
  free(x), free(y), free(perm), free(idx), free(shifts), free(centres);
  jx_fn_free(fwd), jx_fn_free(pb), jx_fn_free(step), jx_fn_free(sb), jx_fn_free(jvg), jx_fn_free(vg),
      jx_fn_free(lf);
  jx_optim_free(opt);
  return rc;
}

/* ------------------------------------------------------------ export */
enum { EXPORT_N = 8 };

static jx_t predict_closed(const jx_t *a, void *u) { return predict((jx_t)u, a[0]); }

/* the standalone driver: inputs from in.bin, logits to out.bin (no jx) */
static const char driver[] =
    "#include <stdio.h>\n#include <stdlib.h>\n#include \"cnn_predict.h\"\n"
    "int main(void) {\n"
    "  static float x[CNN_PREDICT_INPUT_0_SIZE], y[CNN_PREDICT_OUTPUT_0_SIZE];\n"
    "  const void *in[1];\n  void *out[1], *ws = malloc(CNN_PREDICT_WORKSPACE_BYTES + 1);\n"
    "  FILE *f = fopen(\"in.bin\", \"rb\");\n"
    "  if (!ws || !f || fread(x, sizeof x, 1, f) != 1) return 2;\n"
    "  fclose(f);\n  in[0] = x, out[0] = y;\n"
    "  if (cnn_predict(in, out, ws)) return 3;\n"
    "  f = fopen(\"out.bin\", \"wb\");\n"
    "  if (!f || fwrite(y, sizeof y, 1, f) != 1) return 4;\n"
    "  fclose(f);\n  free(ws);\n  return 0;\n}\n";

/* write, build and run the exported predict on x; its logits into got */
static int run_exported(const char *dir, const float *x, size_t nx, float *got, size_t ny, lt_err *e) {
  char p[4200], cmd[8800];
  snprintf(p, sizeof p, "%s/cnn_run.c", dir);
  FILE *f = fopen(p, "w");
  if (!f || fputs(driver, f) < 0 || fclose(f)) return lt_fail(e, "cannot write %s", p);
  snprintf(p, sizeof p, "%s/in.bin", dir);
  f = fopen(p, "wb");
  if (!f || fwrite(x, sizeof(float), nx, f) != nx || fclose(f)) return lt_fail(e, "cannot write %s", p);
  const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
  snprintf(
      cmd, sizeof cmd,
      "cd '%s' && %s -std=c99 -pedantic -Wall -Wextra -Werror -O2 -o cnn_run cnn_predict.c cnn_run.c -lm "
      "&& ./cnn_run",
      dir, cc);
  if (system(cmd)) return lt_fail(e, "building or running the exported predict failed: %s", cmd);
  snprintf(p, sizeof p, "%s/out.bin", dir);
  f = fopen(p, "rb");
  size_t got_n = f ? fread(got, sizeof(float), ny, f) : 0;
  if (f) fclose(f);
  return got_n == ny ? 0 : lt_fail(e, "%s: %zu logits, want %zu", p, got_n, ny);
}

/* export predict (params embedded), run it standalone on the first test
 * images, compare with jit */
static int export_predict(const char *dir, jx_t params, const lt_data *te, float mean, float stdv,
                          lt_err *e) {
  int64_t D = (int64_t)te->rows * te->cols, n = te->n < EXPORT_N ? (int64_t)te->n : (int64_t)EXPORT_N;
  float *x = (float *)calloc((size_t)(EXPORT_N * D), sizeof(float));
  lt_to_input(te, NULL, n, mean, stdv, x);
  mkdir(dir, 0777);
  jx_pool_push();
  jx_t X = jx_array(JX_F32, JX_SHAPE(EXPORT_N, te->rows, te->cols, 1), x);
  jx_fn *f = jx_fn_new(predict_closed, 1, params), *jf = jx_jit(f);
  jx_t want = jx_call(jf, &X), err = jx_export_c(f, &X, "cnn_predict", dir);
  int64_t ny = jx_ok(want) ? jx_size(want) : 0;
  float *w = (float *)malloc(sizeof(float) * (size_t)(ny + 1)),
        *g = (float *)malloc(sizeof(float) * (size_t)(ny + 1));
  int rc = err || !jx_ok(want) ? lt_fail(e, "export: %s", jx_error(err ? err : want))
           : jx_read(want, JX_F32, w, sizeof(float) * (size_t)ny)
               ? lt_fail(e, "reading jit's logits")
               : run_exported(dir, x, (size_t)(EXPORT_N * D), g, (size_t)ny, e);
  double diff = 0, scale = 0;
  int same = 0, nc = ny ? (int)(ny / EXPORT_N) : 1;
  for (int64_t i = 0; !rc && i < ny; i++)
    diff = fmax(diff, fabs((double)g[i] - w[i])), scale = fmax(scale, fabs(w[i]));
  for (int64_t i = 0; !rc && i < n; i++) {
    int a = 0, b = 0;
    for (int c = 1; c < nc; c++)
      a = g[i * nc + c] > g[i * nc + a] ? c : a, b = w[i * nc + c] > w[i * nc + b] ? c : b;
    same += a == b;
  }
  if (!rc) {
    printf("exported predict: %s/cnn_predict.c; on %lld test images max |export - jit| = %.3g (logits up to "
           "%.3g), "
           "same label %d/%lld\n",
           dir, (long long)n, diff, scale, same, (long long)n);
    if (!(diff <= 2 * scale / 65536) || same != n) rc = lt_fail(e, "the exported predict differs from jit's");
  }
  free(x), free(w), free(g);
  jx_fn_free(jf), jx_fn_free(f);
  jx_pool_pop();
  return rc;
}

/* ------------------------------------------------------------- data */
static int load_letters(const char *dir, lt_data *tr, lt_data *te, lt_err *e) {
  char f[4][4200];
  const char *names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                          "t10k-labels-idx1-ubyte"};
  for (int i = 0; i < 4; i++) snprintf(f[i], sizeof f[i], "%s/%s", dir, names[i]);
  if (lt_idx_load_pair(f[0], f[1], tr, e) == 0 && lt_idx_load_pair(f[2], f[3], te, e) == 0) {
    printf("data: the letters demo's images from %s\n", dir);
    return 0;
  }
  lt_data_free(tr), lt_data_free(te);
  printf("data: no letters cache in %s (%s); rendering with the demo's defaults\n", dir, e->msg);
  lt_glyph_opts g = {.font_dirs = "/usr/share/fonts/truetype:/usr/share/fonts/opentype",
                     .seed = 1,
                     .size = 36,
                     .threads = jx_num_threads()};
  return lt_glyph_generate(&g, tr, te, e);
}

/* The letters' test set is a font family the training set lacks (Lato's
 * two-story g, its straight-tailed y: docs/PERFORMANCE.md), so their
 * defaults regularize: shifts, cutout, AdamW's decay, smoothed labels and
 * the weights' moving average. Fashion-MNIST keeps plain Adam. An option
 * given on the command line wins. */
static void letter_defaults(opts *o) {
  bool l = o->letters;
  if (o->shift < 0) o->shift = l ? 2 : 0;
  if (o->cutout < 0) o->cutout = l ? 12 : 0;
  if (isnan(o->wd)) o->wd = l ? 0.3 : 0;
  if (isnan(o->smooth)) o->smooth = l ? 0.1 : 0;
  if (isnan(o->ema)) o->ema = l ? 0.998 : 0;
}

/* the options that take a value, by the field it sets */
typedef enum { O_STR, O_INT, O_DBL, O_U32, O_I64 } opt_kind;
static const struct {
  const char *name;
  opt_kind kind;
  size_t off;
} OPTIONS[] = {
    {"--data", O_STR, offsetof(opts, data)},
    {"--out", O_STR, offsetof(opts, out)},
    {"--export", O_STR, offsetof(opts, export_dir)},
    {"--epochs", O_INT, offsetof(opts, epochs)},
    {"--batch", O_INT, offsetof(opts, batch)},
    {"--hidden", O_INT, offsetof(opts, hidden)},
    {"--shift", O_INT, offsetof(opts, shift)},
    {"--cutout", O_INT, offsetof(opts, cutout)},
    {"--lr", O_DBL, offsetof(opts, lr)},
    {"--wd", O_DBL, offsetof(opts, wd)},
    {"--smooth", O_DBL, offsetof(opts, smooth)},
    {"--ema", O_DBL, offsetof(opts, ema)},
    {"--dropout", O_DBL, offsetof(opts, dropout)},
    {"--time-limit", O_DBL, offsetof(opts, time_limit)},
    {"--seed", O_U32, offsetof(opts, seed)},
    {"--max-steps", O_I64, offsetof(opts, max_steps)},
};

/* option a's value v into o; false: no such option */
static bool set_option(opts *o, const char *a, const char *v) {
  for (size_t k = 0; k < sizeof OPTIONS / sizeof *OPTIONS; k++) {
    if (strcmp(a, OPTIONS[k].name)) continue;
    char *f = (char *)o + OPTIONS[k].off;
    switch (OPTIONS[k].kind) {
      case O_STR: *(const char **)(void *)f = v; break;
      case O_INT: *(int *)(void *)f = atoi(v); break;
      case O_DBL: *(double *)(void *)f = atof(v); break;
      case O_U32: *(unsigned *)(void *)f = (unsigned)strtoul(v, NULL, 10); break;
      case O_I64: *(int64_t *)(void *)f = atoll(v); break;
    }
    return true;
  }
  return false;
}

static int parse(int argc, char **argv, opts *o) {
  *o = (opts){.data = "/usr/share/datasets/fashion-mnist",
              .epochs = 10,
              .batch = 128,
              .c1 = 16,
              .c2 = 32,
              .hidden = 128,
              .shift = -1, /* 2 for the letters, 0 for Fashion-MNIST */
              .cutout = -1,
              .lr = 2e-3,
              .wd = NAN, /* NAN: the letters' value, else 0 (see letter_defaults) */
              .smooth = NAN,
              .ema = NAN}; /* (in declaration order: C++ compiles this file too) */
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      printf(
          "usage: cnn [--data DIR] [--letters [DIR]] [--epochs N (10)] [--batch N (128)] [--lr X (2e-3)]\n"
          "           [--channels C1,C2 (16,32)] [--hidden N (128)] [--shift N (letters 2, else 0)]\n"
          "           [--wd X (letters 0.3, else 0: adam; > 0: adamw)] [--smooth EPS (letters 0.1, else 0)]\n"
          "           [--ema D (letters 0.998, else 0: none)] [--cutout N (letters 12, else 0)]\n"
          "           [--dropout P (0)] [--seed N (0)]\n"
          "           [--max-steps N] [--time-limit S]\n"
          "           [--out DIR (params.npz is not written; curve.svg is)] [--export DIR]\n");
      return -1;
    }
    if (!strcmp(a, "--letters")) {
      o->letters = true;
      o->data = v && v[0] != '-' ? argv[++i] : "build/letters/data";
      continue;
    }
    if (!v) return fprintf(stderr, "cnn: %s needs a value\n", a), 2;
    i++;
    if (!strcmp(a, "--channels")) {
      if (sscanf(v, "%d,%d", &o->c1, &o->c2) != 2) o->c1 = 0;
    } else if (!set_option(o, a, v)) {
      return fprintf(stderr, "cnn: unknown option %s (see --help)\n", a), 2;
    }
  }
  letter_defaults(o);
  if (o->epochs < 1 || o->epochs > 256 || o->batch < 1 || o->c1 < 1 || o->c2 < 1 || o->hidden < 1 ||
      !(o->lr > 0) || !(o->wd >= 0) || !(o->smooth >= 0 && o->smooth < 1) ||
      !(o->dropout >= 0 && o->dropout < 1) || !(o->ema >= 0 && o->ema < 1))
    return fprintf(stderr,
                   "cnn: bad --epochs/--batch/--channels/--hidden/--lr/--wd/--smooth/--dropout/--ema\n"),
           2;
  if (o->cutout > 64) return fprintf(stderr, "cnn: bad --cutout (0 to 64 pixels)\n"), 2;
  if (o->shift > 8) return fprintf(stderr, "cnn: bad --shift (0 to 8 pixels)\n"), 2;
  return 0;
}

int main(int argc, char **argv) {
  opts o;
  int pr = parse(argc, argv, &o);
  if (pr) return pr < 0 ? 0 : pr;
  lt_err e = {{0}};
  lt_data tr = {0}, te = {0};
  char ti[4096], tl[4096], si[4096], sl[4096];
  int rc = o.letters ? load_letters(o.data, &tr, &te, &e)
                     : (lt_idx_find(o.data, ti, tl, si, sl, sizeof ti, &e) ||
                        lt_idx_load_pair(ti, tl, &tr, &e) || lt_idx_load_pair(si, sl, &te, &e));
  if (rc || tr.rows != te.rows || tr.cols != te.cols || tr.rows % 4 || tr.cols % 4) {
    fprintf(stderr, "cnn: error: %s\n", rc ? e.msg : "images must share one size, a multiple of 4");
    if (!o.letters && rc) fprintf(stderr, "(install the data with: apt-get install dataset-fashion-mnist)\n");
    lt_data_free(&tr), lt_data_free(&te);
    return 1;
  }
  printf("%s: %lld training, %lld test images (%dx%d)\n", o.letters ? "letters" : "Fashion-MNIST",
         (long long)tr.n, (long long)te.n, tr.rows, tr.cols);
  printf(
      "model: conv5x5-%d relu maxpool2, conv5x5-%d relu maxpool2, dense %d relu, dense; %s lr %g (cosine), "
      "batch %d, %d epochs, random shifts up to %d px, cutout %d px, weight decay %g, label smoothing %g, "
      "dropout %g, "
      "weight average %g, seed %u, %d threads, conv kernel: %s\n",
      o.c1, o.c2, o.hidden, o.wd > 0 ? "adamw" : "adam", o.lr, o.batch, o.epochs, o.shift, o.cutout, o.wd,
      o.smooth, o.dropout, o.ema, o.seed, jx_num_threads(),
      getenv("JX_CONV") ? getenv("JX_CONV") : "default");
  fflush(stdout);
  lt_result r;
  memset(&r, 0, sizeof r);
  rc = train(&o, &tr, &te, &r, &e);
  if (rc) {
    fprintf(stderr, "cnn: error: %s\n", e.msg);
  } else {
    printf("training: %.1f s in all (%.0f examples/s in the last epoch)\n", r.total_s,
           r.ex_per_s[r.epochs - 1]);
    if (o.out) {
      char p[4200];
      snprintf(p, sizeof p, "%s/curve.svg", o.out);
      mkdir(o.out, 0777);
      if (lt_plot_svg(p, &r, o.letters ? "letters, CNN" : "Fashion-MNIST, CNN", &e))
        fprintf(stderr, "cnn: error: %s\n", e.msg), rc = 1;
      else
        printf("saved %s\n", p);
    }
    printf("test accuracy: %.4f\n", r.test_accuracy);
    if (o.export_dir && export_predict(o.export_dir, r.params, &te, r.mean, r.stdv, &e))
      fprintf(stderr, "cnn: error: %s\n", e.msg), rc = 1;
  }
  if (r.params) jx_release(r.params);
  lt_data_free(&tr), lt_data_free(&te);
  return rc ? 1 : 0;
}
