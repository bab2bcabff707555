/* dot_general: contraction with batch dimensions, as lax.dot_general.
 * Output dims are (batch..., lhs free..., rhs free...). Eagerly it is one
 * batched GEMM: operands already in [B,M,K]/[B,K,M] (resp. [B,K,N]/[B,N,K])
 * layout are passed as they are (transposed ones via the GEMM's flags),
 * anything else is copied into that layout first. */
#include "prims/prims.h"

typedef struct {
  int nb, nc, nlf, nrf;
  int lb[JX_MAX_RANK], rb[JX_MAX_RANK], lc[JX_MAX_RANK], rc[JX_MAX_RANK];
  int lf[JX_MAX_RANK], rf[JX_MAX_RANK]; /* free dims, ascending */
} dims_t;

static void free_dims(int ndim, const int *a, int na, const int *b, int nbb, int *out, int *nout) {
  *nout = 0;
  for (int d = 0; d < ndim; d++) {
    bool used = false;
    for (int i = 0; i < na; i++) used |= a[i] == d;
    for (int i = 0; i < nbb; i++) used |= b[i] == d;
    if (!used) out[(*nout)++] = d;
  }
}

static jx_t get_dims(const jx_aval *in, const jx_params *pa, dims_t *d) {
  d->nb = pa->dot.nb;
  d->nc = pa->dot.nc;
  bool usedl[JX_MAX_RANK] = {0}, usedr[JX_MAX_RANK] = {0};
  for (int i = 0; i < d->nb + d->nc; i++) {
    int l = i < d->nb ? pa->dot.lb[i] : pa->dot.lc[i - d->nb];
    int r = i < d->nb ? pa->dot.rb[i] : pa->dot.rc[i - d->nb];
    if (l < 0 || l >= in[0].ndim || r < 0 || r >= in[1].ndim)
      return jx_rule_error("dot_general", in, 2, "dimension number out of range (%d, %d)", l, r);
    if (usedl[l] || usedr[r])
      return jx_rule_error("dot_general", in, 2, "dimension used twice (%d, %d)", l, r);
    usedl[l] = usedr[r] = true;
    if (in[0].shape[l] != in[1].shape[r])
      return jx_rule_error(
          "dot_general", in, 2, "%s dimension sizes differ: lhs dim %d is %lld, rhs dim %d is %lld",
          i < d->nb ? "batch" : "contracting", l, (long long)in[0].shape[l], r, (long long)in[1].shape[r]);
    if (i < d->nb)
      d->lb[i] = l, d->rb[i] = r;
    else
      d->lc[i - d->nb] = l, d->rc[i - d->nb] = r;
  }
  free_dims(in[0].ndim, d->lb, d->nb, d->lc, d->nc, d->lf, &d->nlf);
  free_dims(in[1].ndim, d->rb, d->nb, d->rc, d->nc, d->rf, &d->nrf);
  return NULL;
}

static jx_t dot_abstract(jx_prim p, const jx_aval *in, int nin, const jx_params *pa, jx_aval *out) {
  (void)p, (void)nin;
  if (in[0].dtype != in[1].dtype)
    return jx_rule_error("dot_general", in, 2, "operands must have the same dtype (promote first)");
  if (in[0].dtype == JX_BOOL) return jx_rule_error("dot_general", in, 2, "bool operands are not supported");
  dims_t d;
  jx_t e = get_dims(in, pa, &d);
  if (e) return e;
  if (d.nb + d.nlf + d.nrf > JX_MAX_RANK)
    return jx_rule_error("dot_general", in, 2, "result rank exceeds %d", JX_MAX_RANK);
  out[0] = (jx_aval){.dtype = in[0].dtype, .weak = in[0].weak && in[1].weak};
  if (pa->dot.pref) { /* [BF16] preferred_element_type: f32 of bf16/f16 operands only */
    if (!jx_dtype_is_half(in[0].dtype) || pa->dot.pref - 1 != JX_F32)
      return jx_rule_error("dot_general", in, 2, "preferred element type %s is taken only as f32 of bf16/f16",
                           jx_dtype_name((jx_dtype)(pa->dot.pref - 1)));
    out[0] = (jx_aval){.dtype = JX_F32};
  }
  for (int i = 0; i < d.nb; i++) out[0].shape[out[0].ndim++] = in[0].shape[d.lb[i]];
  for (int i = 0; i < d.nlf; i++) out[0].shape[out[0].ndim++] = in[0].shape[d.lf[i]];
  for (int i = 0; i < d.nrf; i++) out[0].shape[out[0].ndim++] = in[1].shape[d.rf[i]];
  return NULL;
}

static bool is_identity(const int *perm, int n) {
  for (int i = 0; i < n; i++)
    if (perm[i] != i) return false;
  return true;
}

static void concat3(int *out, const int *a, int na, const int *b, int nb, const int *c, int nc) {
  memcpy(out, a, sizeof(int) * (size_t)na);
  memcpy(out + na, b, sizeof(int) * (size_t)nb);
  memcpy(out + na + nb, c, sizeof(int) * (size_t)nc);
}

/* Bring x into the layout `perm` (output dim i = x dim perm[i]) unless it
 * already is; returns the data pointer to use (a temporary in *tmp). */
static const void *in_layout(jx_t x, const int *perm, jx_buffer **tmp) {
  const jx_aval *a = &x->aval;
  *tmp = NULL;
  if (is_identity(perm, a->ndim)) return jx_data(x);
  int64_t st[JX_MAX_RANK], shape[JX_MAX_RANK], pst[JX_MAX_RANK];
  jx_strides(a->ndim, a->shape, st);
  for (int i = 0; i < a->ndim; i++) shape[i] = a->shape[perm[i]], pst[i] = st[perm[i]];
  size_t es = jx_dtype_size(a->dtype);
  *tmp = jx_buffer_new((size_t)jx_aval_size(a) * es);
  if (!*tmp) return NULL;
  jx_cpu_strided_copy(es, a->ndim, shape, jx_data(x), 0, pst, (*tmp)->data);
  return (*tmp)->data;
}

static int64_t prod(const jx_aval *a, const int *dims, int n) {
  int64_t s = 1;
  for (int i = 0; i < n; i++) s *= a->shape[dims[i]];
  return s;
}

static jx_t dot_run(const jx_t *in, const jx_params *pa, jx_t *out, jx_cpu_rows_fn epi, void *epi_ctx);

static jx_t dot_impl(jx_prim p, const jx_t *in, int nin, const jx_params *pa, jx_t *out) {
  (void)p, (void)nin;
  return dot_run(in, pa, out, NULL, NULL);
}

/* dot_general (no batch dimensions) into out, calling epi on ranges
 * [lo, hi) of the result's elements as soon as they are final (whole rows
 * of the GEMM, each on the thread that made it): how jit runs a GEMM with
 * its fused epilogue (compile/exec.c). */
static jx_t dot_impl_epilogue(const jx_t *in, const jx_params *pa, jx_t out,
                              void (*epi)(void *ctx, int64_t lo, int64_t hi), void *ctx) {
  if (pa->dot.nb)
    return jx_error_new("dot_general: internal: an epilogue needs a product without batch dimensions");
  /* without batch dimensions the result is [M, N] row-major, whatever its
   * free dimensions: the GEMM's element ranges are the result's */
  return dot_run(in, pa, &out, epi, ctx);
}

/* [BF16] bf16/f16 operands: products summed in f32, rounded once to the
 * result's dtype (theirs, or f32: preferred_element_type) by
 * jx_cpu_gemm_half; an epilogue then runs over the finished result. */
typedef struct {
  jx_cpu_rows_fn epi;
  void *ctx;
} epi_job;
static void epi_task(void *ctx, int64_t lo, int64_t hi) {
  const epi_job *j = ctx;
  j->epi(j->ctx, lo, hi);
}

static jx_t dot_half(const jx_aval *av, jx_dtype odt, bool ta, bool tb, int64_t B, int64_t M, int64_t N,
                     int64_t K, const void *A, const void *Bm, jx_t out, jx_cpu_rows_fn epi, void *epi_ctx) {
  if (!jx_cpu_gemm_half(av[0].dtype, odt, ta, tb, B, M, N, K, A, Bm, jx_data(out))) {
    char s1[160], s2[160];
    return jx_error_new("dot_general(%s, %s): out of memory for the %s GEMM's f32 buffers",
                        jx_aval_str(&av[0], s1, sizeof s1), jx_aval_str(&av[1], s2, sizeof s2),
                        jx_dtype_name(av[0].dtype));
  }
  if (epi) {
    epi_job j = {epi, epi_ctx};
    jx_cpu_parallel_for(M * N, 16384, epi_task, &j);
  }
  return NULL;
}

static jx_t dot_run(const jx_t *in, const jx_params *pa, jx_t *out, jx_cpu_rows_fn epi, void *epi_ctx) {
  const jx_aval av[2] = {in[0]->aval, in[1]->aval};
  dims_t d;
  get_dims(av, pa, &d);
  int64_t B = prod(&av[0], d.lb, d.nb), M = prod(&av[0], d.lf, d.nlf);
  int64_t K = prod(&av[0], d.lc, d.nc), N = prod(&av[1], d.rf, d.nrf);
  int pl[JX_MAX_RANK], plt[JX_MAX_RANK], pr[JX_MAX_RANK], prt[JX_MAX_RANK];
  concat3(pl, d.lb, d.nb, d.lf, d.nlf, d.lc, d.nc);  /* [B,M,K] */
  concat3(plt, d.lb, d.nb, d.lc, d.nc, d.lf, d.nlf); /* [B,K,M] */
  concat3(pr, d.rb, d.nb, d.rc, d.nc, d.rf, d.nrf);  /* [B,K,N] */
  concat3(prt, d.rb, d.nb, d.rf, d.nrf, d.rc, d.nc); /* [B,N,K] */
  bool ta = !is_identity(pl, av[0].ndim) && is_identity(plt, av[0].ndim);
  bool tb = !is_identity(pr, av[1].ndim) && is_identity(prt, av[1].ndim);
  jx_buffer *ta_buf, *tb_buf;
  const void *A = in_layout(in[0], ta ? plt : pl, &ta_buf);
  const void *Bm = in_layout(in[1], tb ? prt : pr, &tb_buf);
  jx_t e = NULL;
  if (!A || !Bm) {
    e = jx_error_new("dot_general: out of memory for a layout copy");
  } else if (jx_dtype_is_half(av[0].dtype)) {
    e = dot_half(av, out[0]->aval.dtype, ta, tb, B, M, N, K, A, Bm, out[0], epi, epi_ctx);
  } else if (epi) {
    jx_cpu_gemm_epilogue(av[0].dtype, ta, tb, M, N, K, A, ta ? M : K, Bm, tb ? K : N, jx_data(out[0]), epi,
                         epi_ctx);
  } else {
    jx_cpu_gemm_batched(av[0].dtype, ta, tb, B, M, N, K, A, ta ? M : K, M * K, Bm, tb ? K : N, K * N,
                        jx_data(out[0]), N, M * N);
  }
  jx_buffer_release(ta_buf);
  jx_buffer_release(tb_buf);
  return e;
}

static jx_t dot_jvp(jx_prim p, const jx_t *x, const jx_t *t, int nin, const jx_params *pa, jx_t *out,
                    jx_t *tout) {
  (void)nin;
  jx_bind(p, 2, x, pa, 1, out);
  jx_t r = t[0] ? jx_bind1(p, 2, (jx_t[]){t[0], x[1]}, pa) : NULL;
  if (t[1]) r = jx_lax_add_any(r, jx_bind1(p, 2, (jx_t[]){x[0], t[1]}, pa));
  tout[0] = r;
  return NULL;
}

/* rank of v among the sorted values of a[0..n) */
static int rank_in(const int *a, int n, int v) {
  int r = 0;
  for (int i = 0; i < n; i++) r += a[i] < v;
  return r;
}

static jx_t dot_transpose(jx_prim p, const jx_t *ct, const jx_t *in, const jx_aval *av, int nin,
                          const jx_params *pa, jx_t *cts) {
  (void)p, (void)nin;
  if (!in[0] && !in[1]) return jx_error_new("dot_general: transpose with both operands linear");
  if (!ct[0]) return NULL;
  dims_t d;
  jx_t e = get_dims(av, pa, &d);
  if (e) return e;
  int cb[JX_MAX_RANK], cdims[JX_MAX_RANK], perm[JX_MAX_RANK];
  for (int i = 0; i < d.nb; i++) cb[i] = i;
  /* [BF16] an f32 cotangent of bf16/f16 operands (preferred f32): the
   * products in f32, the cotangents rounded to the operands' dtype */
  const jx_dtype cdt = ct[0]->aval.dtype;
  const jx_t x0 = in[0] && in[0]->aval.dtype != cdt ? jx_lax_convert(in[0], cdt) : in[0];
  const jx_t x1 = in[1] && in[1]->aval.dtype != cdt ? jx_lax_convert(in[1], cdt) : in[1];
  if (!in[0]) { /* ct_lhs = ct . rhs over rhs's free dims */
    for (int j = 0; j < d.nrf; j++) cdims[j] = d.nb + d.nlf + j;
    jx_t r = jx_lax_dot_general(ct[0], x1, d.nrf, cdims, d.rf, d.nb, cb, d.rb);
    for (int i = 0; i < d.nb; i++) perm[d.lb[i]] = i;
    for (int j = 0; j < d.nlf; j++) perm[d.lf[j]] = d.nb + j;
    for (int k = 0; k < d.nc; k++) perm[d.lc[k]] = d.nb + d.nlf + rank_in(d.rc, d.nc, d.rc[k]);
    cts[0] = jx_lax_transpose(r, perm);
    if (av[0].dtype != cdt) cts[0] = jx_lax_convert(cts[0], av[0].dtype);
  }
  if (!in[1]) { /* ct_rhs = lhs . ct over lhs's free dims: the result comes out as
                  [batch, lhs contracting dims, rhs free dims], which is the rhs's own
                  layout in the usual case (no transpose; under vmap a per-example
                  outer product is written straight into place) */
    for (int j = 0; j < d.nlf; j++) cdims[j] = d.nb + j;
    jx_t r = jx_lax_dot_general(x0, ct[0], d.nlf, d.lf, cdims, d.nb, d.lb, cb);
    for (int i = 0; i < d.nb; i++) perm[d.rb[i]] = i;
    for (int k = 0; k < d.nc; k++) perm[d.rc[k]] = d.nb + rank_in(d.lc, d.nc, d.lc[k]);
    for (int j = 0; j < d.nrf; j++) perm[d.rf[j]] = d.nb + d.nc + j;
    cts[1] = jx_lax_transpose(r, perm);
    if (av[1].dtype != cdt) cts[1] = jx_lax_convert(cts[1], av[1].dtype);
  }
  return NULL;
}

/* batching: a batch dim on both sides becomes a new leading batch
 * dimension of the contraction (one batched GEMM); on one side only it is
 * a free dimension of that side (a bigger GEMM). Never a loop. */
static jx_t dot_batch(jx_prim p, const jx_t *in, const int *bd, int nin, const jx_params *pa, jx_t *out,
                      int *obd) {
  (void)nin;
  jx_params q = *pa;
  int bl = bd[0], br = bd[1];
  for (int i = 0; i < pa->dot.nc; i++) {
    q.dot.lc[i] = (int8_t)jx_bdim_shift(pa->dot.lc[i], bl);
    q.dot.rc[i] = (int8_t)jx_bdim_shift(pa->dot.rc[i], br);
  }
  for (int i = 0; i < pa->dot.nb; i++) {
    q.dot.lb[i] = (int8_t)jx_bdim_shift(pa->dot.lb[i], bl);
    q.dot.rb[i] = (int8_t)jx_bdim_shift(pa->dot.rb[i], br);
  }
  if (bl != JX_NONE && br != JX_NONE) {
    if (pa->dot.nb + 1 > JX_MAX_RANK) return jx_error_new("dot_general: too many batch dims under vmap");
    memmove(q.dot.lb + 1, q.dot.lb, (size_t)pa->dot.nb);
    memmove(q.dot.rb + 1, q.dot.rb, (size_t)pa->dot.nb);
    q.dot.lb[0] = (int8_t)bl, q.dot.rb[0] = (int8_t)br;
    q.dot.nb++;
    obd[0] = 0;
  } else {
    /* the batch dim is a free dim of one side: its output position is
     * after the batch dims (and the lhs free dims, for the rhs), counting
     * the free dims before it */
    int side = bl != JX_NONE ? 0 : 1, b = side ? br : bl, rank = in[side]->aval.ndim, before = 0;
    const int8_t *c = side ? q.dot.rc : q.dot.lc, *bb = side ? q.dot.rb : q.dot.lb;
    for (int d = 0; d < b; d++) {
      bool used = false;
      for (int i = 0; i < q.dot.nc; i++) used |= c[i] == d;
      for (int i = 0; i < q.dot.nb; i++) used |= bb[i] == d;
      before += !used;
    }
    int nlf = in[0]->aval.ndim - pa->dot.nb - pa->dot.nc;
    (void)rank;
    obd[0] = pa->dot.nb + (side ? nlf : 0) + before;
  }
  out[0] = jx_bind1(p, 2, in, &q);
  return NULL;
}

static void dot_print(jx_strbuf *b, const jx_params *pa, const jx_aval *in, int nin) {
  (void)in, (void)nin;
  jx_strbuf_put(b, " dimension_numbers=((");
  jx_put_i8s(b, pa->dot.lc, pa->dot.nc), jx_strbuf_put(b, ", "), jx_put_i8s(b, pa->dot.rc, pa->dot.nc);
  jx_strbuf_put(b, "), (");
  jx_put_i8s(b, pa->dot.lb, pa->dot.nb), jx_strbuf_put(b, ", "), jx_put_i8s(b, pa->dot.rb, pa->dot.nb);
  jx_strbuf_put(b, "))");
  if (pa->dot.pref)
    jx_strbuf_put(b, " preferred_element_type=%s", jx_dtype_name((jx_dtype)(pa->dot.pref - 1)));
}

/* A GEMM (no batch dimensions) can finish its output slab by slab with a
 * pointwise epilogue (dot_impl_epilogue). */
static bool dot_takes_epilogue(const jx_params *pa) { return pa->dot.nb == 0; }

const jx_rules jx_rules_dot_general = {
    .name = "dot_general",
    .nin = 2,
    .nout = 1,
    .abstract_eval = dot_abstract,
    .impl = dot_impl,
    .jvp = dot_jvp,
    .transpose = dot_transpose,
    .batch = dot_batch,
    .params_kind = JX_PK_DOT,
    .print_params = dot_print,
    .lower = {.kind = JX_LOWER_CALL, .epilogue = dot_takes_epilogue, .impl_epilogue = dot_impl_epilogue}};
