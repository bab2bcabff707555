/* Running a compiled jaxpr (compile/compile.c makes it).
 *
 * Running a program: buffers for arguments and constants are the arrays'
 * own; outputs are allocated as arrays when their kernel runs; temporaries
 * come from the caching allocator at their defining kernel and go back
 * after their last reader, so peak memory follows liveness. MAP/REDUCE
 * and LOOP kernels are the generated functions; CALL kernels run the
 * primitive's eager impl on the buffers (also when a generated loop calls
 * back for one, rt_call). Without a working C compiler the optimized
 * jaxpr is interpreted with the eager kernels instead. */
#include "compile/executable.h"

#include <limits.h>

/* Runs of executables, process-wide: generated code or interpreted. */
static atomic_long runs_compiled, runs_interpreted;
jx_exec_counts jx_exec_run_counts(void) {
  return (jx_exec_counts){atomic_load(&runs_compiled), atomic_load(&runs_interpreted)};
}

/* --------------------------------------------------------------- running */
/* A stack array value over a buffer, for CALL kernels' impl rules. */
static struct jx_value view(const jx_aval *a, jx_buffer *b) {
  struct jx_value v;
  memset(&v, 0, sizeof v);
  v.kind = JX_VK_ARRAY;
  v.aval = *a;
  v.u.arr.buf = b;
  return v;
}

/* A call whose impl makes its own outputs (control flow, nested jit): it
 * gets real values (sharing the buffers) and its results' buffers become
 * the program's. */
static jx_t run_owning_call(const jx_kernel *kn, const jx_program *p, jx_buffer **buf, char **data,
                            jx_t *val) {
  jx_scratch *s = jx_scratch_here();
  jx_scratch_mark m = jx_scratch_save(s);
  jx_t *in = JX_SCRATCH(s, jx_t, (size_t)kn->nin + (size_t)kn->nout), *out = in ? in + kn->nin : NULL;
  jx_t err = in ? NULL : jx_error_new("jit: out of memory");
  for (int a = 0; !err && a < kn->nin; a++) {
    jx_buffer *b = buf[kn->ins[a]];
    in[a] = jx_value_new(JX_VK_ARRAY);
    if (!in[a]) {
      err = jx_error_new("jit: out of memory");
      break;
    }
    in[a]->aval = p->bufs[kn->ins[a]].aval;
    in[a]->u.arr.buf = b;
    atomic_fetch_add(&b->refs, 1);
  }
  if (!err) err = jx_prim_rules[kn->call.prim]->impl(kn->call.prim, in, kn->nin, &kn->call.params, out);
  for (int o = 0; !err && o < kn->nout; o++) {
    int b = kn->outs[o];
    jx_buffer *ob = out[o]->u.arr.buf;
    if (p->bufs[b].kind == JX_LB_OUT) {
      val[b] = out[o];
    } else {
      atomic_fetch_add(&ob->refs, 1);
    }
    buf[b] = ob;
    data[b] = ob->data;
  }
  jx_scratch_release(s, m);
  return err;
}

/* ------------------------------------------- the runtime of generated loops */
typedef struct {
  const jx_program *root;
  const jx_compile_host *host;
  jx_t err; /* the first failure inside a generated loop */
} run_state;

static void run_fail(run_state *rs, jx_t err) {
  if (!rs->err) rs->err = err;
}

/* a fused GEMM epilogue: the MAP kernel's loop over the finished elements */
typedef struct {
  jx_range_fn fn;
  char **data;
} epi_ctx;
static void run_epilogue(void *ctx, int64_t lo, int64_t hi) {
  const epi_ctx *e = ctx;
  e->fn(e->data, lo, hi);
}

/* Scratch for one CALL kernel's views: a buffer header and a value per
 * input and output, and the impl's argument arrays. In the thread's
 * scratch arena (a loop may run the call millions of times; a wide call,
 * a concatenate of 1,000 arrays, takes a chunk). */
typedef struct {
  jx_buffer *hb;
  struct jx_value *v;
  jx_t *in, *out;
} call_views;

static bool call_views_init(call_views *cv, int n, jx_scratch *s) {
  jx_buffer *hb = JX_SCRATCH(s, jx_buffer, n);
  struct jx_value *v = hb ? JX_SCRATCH(s, struct jx_value, n) : NULL;
  jx_t *ptrs = v ? JX_SCRATCH(s, jx_t, n) : NULL;
  *cv = (call_views){hb, v, ptrs, ptrs};
  return ptrs != NULL;
}

/* A CALL kernel of program p on the data pointers (views over them), with
 * its fused epilogue's loop `epi` (over the pointers epi_data) or NULL.
 * Values the impl makes are released at once (a loop may run it millions
 * of times). */
static jx_t run_call(const jx_program *p, const jx_kernel *kn, char **data, jx_range_fn epi,
                     char **epi_data) {
  int n = kn->nin + kn->nout;
  jx_scratch *s = jx_scratch_here();
  jx_scratch_mark sm = jx_scratch_save(s);
  call_views cv;
  if (!call_views_init(&cv, n, s)) {
    jx_scratch_release(s, sm);
    return jx_error_new("jit: out of memory for a %s call with %d operands", jx_prim_names[kn->call.prim], n);
  }
  cv.out = cv.in + kn->nin;
  /* buffer headers in scratch memory: a reference count that never reaches
   * 0, so an impl that retains and releases one (a value sharing it)
   * cannot free it */
  for (int i = 0; i < n; i++) {
    int b = i < kn->nin ? kn->ins[i] : kn->outs[i - kn->nin];
    jx_buffer *h = &cv.hb[i];
    *h = (jx_buffer){.nbytes = (size_t)jx_aval_size(&p->bufs[b].aval) * jx_dtype_size(p->bufs[b].aval.dtype),
                     .data = data[b]};
    atomic_init(&h->refs, 1 << 30);
    cv.v[i] = view(&p->bufs[b].aval, h);
    cv.in[i] = &cv.v[i];
  }
  size_t mark = jx_pool_mark();
  epi_ctx ec = {epi, epi_data};
  jx_t err =
      epi ? jx_prim_rules[kn->call.prim]->lower.impl_epilogue(cv.in, &kn->call.params, cv.out[0],
                                                              run_epilogue, &ec)
          : jx_prim_rules[kn->call.prim]->impl(kn->call.prim, cv.in, kn->nin, &kn->call.params, cv.out);
  if (err) jx_retain(err);
  jx_pool_release_to(mark);
  jx_scratch_release(s, sm);
  return err ? jx_pool_own(err) : NULL;
}

/* a loop body's CALL kernel (rt->call) */
static int rt_call(const jx_rt *rt, int prog, int kernel, char **data,
                   void (*epi)(void *, int64_t, int64_t)) {
  run_state *rs = rt->ctx;
  const jx_program *p = rs->root->all[prog];
  jx_t err = run_call(p, &p->kernels[kernel], data, epi, data);
  if (!err) return 0;
  run_fail(rs, err);
  return 1;
}

static void *rt_alloc(const jx_rt *rt, int64_t bytes, char **data) {
  jx_buffer *b = jx_buffer_new((size_t)bytes);
  if (!b) {
    run_fail(rt->ctx, jx_error_new("jit: out of memory for a loop's buffers"));
    return NULL;
  }
  *data = b->data;
  return b;
}

static void rt_release(void *h) { jx_buffer_release(h); }

/* root kernel k in slot form (jx_slot_kernel), or NULL */
static const jx_slot_kernel *slot_kernel(const jx_module *m, int k) {
  return m->slots && m->slots[k].fn && m->slots[k].nslot <= JX_MAX_SLOTS ? &m->slots[k] : NULL;
}

/* its buffers, in slot order */
static void gather_slots(const jx_slot_kernel *s, char **data, char **r) {
  for (int64_t i = 0; i < s->nslot; i++) r[i] = data[s->slots[i]];
}

/* Kernel k of the compiled root program (not a CALL that allocates its
 * outputs): a CALL with its epilogue kernel `epi` (-1: none), a kernel in
 * slot form, or one with a generated entry. */
static jx_t run_kernel(const jx_executable *x, int k, int epi, char **data, const jx_rt *rt) {
  const jx_program *p = x->prog;
  const jx_kernel *kn = &p->kernels[k];
  char *r[JX_MAX_SLOTS];
  if (kn->kind == JX_LK_CALL) {
    const jx_slot_kernel *es = epi >= 0 ? slot_kernel(x->mod, epi) : NULL;
    if (es) gather_slots(es, data, r);
    return run_call(p, kn, data, es ? es->fn : epi >= 0 ? x->mod->ranges[epi] : NULL, es ? r : data);
  }
  const jx_slot_kernel *sk = slot_kernel(x->mod, k);
  if (sk) {
    gather_slots(sk, data, r);
    rt->parallel_for(sk->items, sk->grain, sk->fn, r);
    return NULL;
  }
  if (!x->mod->kernels[k](data, rt)) return NULL;
  const run_state *rs = rt->ctx;
  return rs->err ? rs->err : jx_error_new("jit: a compiled loop failed");
}

/* The running program's buffers, by buffer id: their handles, data
 * pointers, and the OUT buffers' arrays. */
typedef struct {
  jx_buffer **buf;
  char **data;
  jx_t *val;
  int *donor; /* per OUT buffer: the donated ARG buffer it is written into, -1: none (NULL: none at all) */
} run_bufs;

/* arguments' and constants' buffers are the arrays' own */
static void bind_inputs(const jx_program *p, const jx_t *args, run_bufs *rb) {
  for (int b = 0; b < p->nbuf; b++) {
    const jx_lbuf *lb = &p->bufs[b];
    rb->buf[b] = NULL, rb->data[b] = NULL, rb->val[b] = NULL;
    if (lb->kind == JX_LB_ARG)
      rb->buf[b] = args[lb->index]->u.arr.buf;
    else if (lb->kind == JX_LB_CONST)
      rb->buf[b] = p->consts[lb->index]->u.arr.buf;
    if (rb->buf[b]) rb->data[b] = rb->buf[b]->data;
  }
}

/* In-place CALLs (lower.inplace): the temporary input 0 of CALL kernel k
 * whose buffer its output b takes, or -1. The input must be read by
 * nothing after k (nor twice by k) and hold as many bytes of the dtype. */
static _Atomic int64_t inplace_calls;
int64_t jx_exec_inplace_calls(void) { return atomic_load(&inplace_calls); }

static int inplace_source(const jx_program *p, int k, int b, const run_bufs *rb) {
  const jx_kernel *kn = &p->kernels[k];
  if (kn->kind != JX_LK_CALL || !jx_prim_rules[kn->call.prim]->lower.inplace || kn->nin < 1 || kn->nout < 1 ||
      kn->outs[0] != b)
    return -1;
  const int a = kn->ins[0];
  const jx_lbuf *la = &p->bufs[a], *lb = &p->bufs[b];
  if (la->kind != JX_LB_TEMP || la->last != k || !rb->buf[a] || la->aval.dtype != lb->aval.dtype ||
      jx_aval_size(&la->aval) != jx_aval_size(&lb->aval))
    return -1;
  for (int i = 1; i < kn->nin; i++)
    if (kn->ins[i] == a) return -1;
  return a;
}

/* output or temporary b takes temporary a's buffer (and its reference) */
static jx_t take_buffer(const jx_lbuf *lb, int b, int a, run_bufs *rb) {
  if (lb->kind == JX_LB_OUT) {
    rb->val[b] = jx_value_new(JX_VK_ARRAY);
    if (!rb->val[b]) return jx_error_new("jit: out of memory");
    rb->val[b]->aval = lb->aval;
    rb->val[b]->u.arr.buf = rb->buf[a];
  }
  rb->buf[b] = rb->buf[a];
  rb->buf[a] = NULL; /* not released after its last reader: b's now */
  atomic_fetch_add(&inplace_calls, 1);
  return NULL;
}

/* allocate what kernel k defines (and its epilogue kernel epi, -1: none):
 * outputs as arrays, temporaries from the caching allocator, or a dead
 * input's buffer (inplace_source) */
static jx_t alloc_defined(const jx_program *p, int k, int epi, run_bufs *rb) {
  jx_t err = NULL;
  for (int b = 0; b < p->nbuf && !err; b++) {
    const jx_lbuf *lb = &p->bufs[b];
    if (lb->def != k && (epi < 0 || lb->def != epi)) continue;
    const int src = lb->def == k ? inplace_source(p, k, b, rb) : -1;
    if (src >= 0) {
      err = take_buffer(lb, b, src, rb);
    } else if (lb->kind == JX_LB_OUT && rb->donor && rb->donor[b] >= 0) {
      rb->val[b] = jx_value_new(JX_VK_ARRAY);
      if (!rb->val[b]) {
        err = jx_error_new("jit: out of memory");
        break;
      }
      rb->val[b]->aval = lb->aval;
      rb->buf[b] = rb->val[b]->u.arr.buf = rb->buf[rb->donor[b]];
      atomic_fetch_add(&rb->buf[b]->refs, 1);
    } else if (lb->kind == JX_LB_OUT) {
      rb->val[b] = jx_array_new(&lb->aval);
      if (!jx_ok(rb->val[b]))
        err = rb->val[b];
      else
        rb->buf[b] = rb->val[b]->u.arr.buf;
    } else {
      rb->buf[b] = jx_buffer_new((size_t)jx_aval_size(&lb->aval) * jx_dtype_size(lb->aval.dtype));
      if (!rb->buf[b])
        err = jx_error_new("jit: out of memory for a temporary %s", jx_dtype_name(lb->aval.dtype));
    }
    if (rb->buf[b]) rb->data[b] = rb->buf[b]->data;
  }
  return err;
}

/* temporaries whose last reader was kernel k (every one, k = INT_MAX) go
 * back to the cache */
static void release_temps(const jx_program *p, int k, run_bufs *rb) {
  for (int b = 0; b < p->nbuf; b++)
    if (p->bufs[b].kind == JX_LB_TEMP && p->bufs[b].last <= k && rb->buf[b]) {
      jx_buffer_release(rb->buf[b]);
      rb->buf[b] = NULL;
    }
}

/* the root program's kernels in order */
static jx_t run_kernels(const jx_executable *x, const jx_rt *rt, run_bufs *rb) {
  const jx_program *p = x->prog;
  jx_t err = NULL;
  int epi_ran = -1; /* the MAP kernel a GEMM just ran as its epilogue */
  for (int k = 0; k < p->nkernel && !err; k++) {
    const jx_kernel *kn = &p->kernels[k];
    bool own_outputs = kn->kind == JX_LK_CALL && jx_prim_rules[kn->call.prim]->impl_allocates;
    const int e = kn->epilogue - 1;
    int epi = kn->epilogue && (slot_kernel(x->mod, e) || x->mod->ranges[e]) ? e : -1;
    if (!own_outputs && epi_ran != k) err = alloc_defined(p, k, epi, rb);
    if (err) break;
    const double tk = x->prof ? jx_now_ms() : 0;
    if (epi_ran == k) {
      /* done inside the GEMM before it */
    } else if (own_outputs) {
      err = run_owning_call(kn, p, rb->buf, rb->data, rb->val);
    } else {
      err = run_kernel(x, k, epi, rb->data, rt);
      if (epi >= 0) epi_ran = epi;
    }
    if (x->prof && epi_ran != k) jx_profile_add(x->prof, k, (int64_t)((jx_now_ms() - tk) * 1e6));
    release_temps(p, k, rb);
  }
  return err;
}

/* the program's outputs (err: each is err); returns the error */
static jx_t give_outputs(const jx_program *p, const jx_t *args, jx_t err, const run_bufs *rb, jx_t *outs) {
  for (int i = 0; i < p->nout; i++) {
    int b = p->outs[i];
    const jx_lbuf *lb = &p->bufs[b];
    if (err)
      outs[i] = err;
    else if (lb->kind == JX_LB_ARG)
      outs[i] = args[lb->index];
    else if (lb->kind == JX_LB_CONST) { /* the program's: a reference of the caller's own */
      outs[i] = jx_pool_own(jx_retain(p->consts[lb->index]));
      if (!jx_ok(outs[i])) err = outs[i];
    } else
      outs[i] = rb->val[b];
  }
  return err;
}

/* ------------------------------------------------------------ donation */
/* May OUT buffer b be written into the donated ARG buffer a (each point of
 * its MAP kernel reads its element of a before it overwrites it)? Not the
 * caller's memory (jx_from_buffer/DLPack promise never to write it), same
 * dtype and size, a's buffer held by this array alone (no view shares it) and
 * by no other argument, a not itself an output, and no kernel reading a
 * after b's (a MAP kernel, not a GEMM's epilogue, reading a pointwise). */
static bool can_donate(const jx_program *p, const jx_t *args, int b, int a) {
  const jx_lbuf *lo = &p->bufs[b], *la = &p->bufs[a];
  jx_buffer *ab = args[la->index]->u.arr.buf;
  if (ab->external) return false;
  if (lo->aval.dtype != la->aval.dtype || jx_aval_size(&lo->aval) != jx_aval_size(&la->aval)) return false;
  if (atomic_load(&ab->refs) != 1 || lo->def < 0 || la->last > lo->def) return false;
  for (int i = 0; i < p->nout; i++)
    if (p->outs[i] == a) return false;
  for (int c = 0; c < p->nbuf; c++)
    if (c != a && p->bufs[c].kind == JX_LB_ARG && args[p->bufs[c].index]->u.arr.buf == ab) return false;
  const jx_kernel *kn = &p->kernels[lo->def];
  return kn->kind == JX_LK_MAP && !kn->fused && jx_kernel_reads_pointwise(kn, a);
}

/* donor[b] for each OUT buffer b (-1: allocate); the number reused */
static int plan_donation(const jx_program *p, const jx_t *args, const bool *donate, int *donor) {
  int n = 0;
  for (int b = 0; b < p->nbuf; b++) {
    donor[b] = -1;
    if (p->bufs[b].kind != JX_LB_OUT) continue;
    for (int a = 0; a < p->nbuf && donor[b] < 0; a++) {
      if (p->bufs[a].kind != JX_LB_ARG || !donate[p->bufs[a].index]) continue;
      bool taken = false;
      for (int c = 0; c < b; c++) taken |= donor[c] == a;
      if (!taken && can_donate(p, args, b, a)) donor[b] = a, n++;
    }
  }
  return n;
}

jx_t jx_executable_run(jx_executable *x, const jx_t *args, jx_t *outs) {
  return jx_executable_run_donated(x, args, NULL, outs, NULL);
}

jx_t jx_executable_run_donated(jx_executable *x, const jx_t *args, const bool *donate, jx_t *outs,
                               int *reused) {
  if (reused) *reused = 0;
  atomic_fetch_add(x->mod ? &runs_compiled : &runs_interpreted, 1);
  if (!x->mod) return x->host->eval_jaxpr(x->opt, args, outs);
  run_state rs = {x->prog, x->host, NULL};
  jx_rt rt = *x->be->rt;
  rt.ctx = &rs, rt.call = rt_call, rt.alloc = rt_alloc, rt.release = rt_release;
  const jx_program *p = x->prog;
  enum { S = 64 };
  jx_buffer *sb[S];
  char *sd[S];
  jx_t sv[S];
  int nb = p->nbuf;
  jx_buffer **buf = nb <= S ? sb : jx_calloc((size_t)nb, sizeof *buf);
  char **data = nb <= S ? sd : jx_calloc((size_t)nb, sizeof *data);
  jx_t *val = nb <= S ? sv : jx_calloc((size_t)nb, sizeof *val); /* OUT buffers' arrays */
  jx_scratch *sc = jx_scratch_here();
  jx_scratch_mark sm = jx_scratch_save(sc);
  run_bufs rb = {buf, data, val, donate ? JX_SCRATCH(sc, int, nb) : NULL};
  jx_t err = NULL;
  if (!buf || !data || !val || (donate && !rb.donor)) {
    err = jx_error_new("jit: out of memory");
    goto done;
  }
  bind_inputs(p, args, &rb);
  if (donate) {
    int n = plan_donation(p, args, donate, rb.donor);
    if (reused) *reused = n;
  }
  err = run_kernels(x, &rt, &rb);
  if (x->prof && !err) jx_profile_run(x->prof);
  err = give_outputs(p, args, err, &rb, outs);
  if (err) release_temps(p, INT_MAX, &rb); /* on error, temporaries still held */
done:
  jx_scratch_release(sc, sm);
  if (buf && buf != sb) jx_free(buf);
  if (data && data != sd) jx_free(data);
  if (val && val != sv) jx_free(val);
  if (err)
    for (int i = 0; i < (x->opt ? x->opt->nout : 0); i++) outs[i] = err;
  return err;
}
