/* Compiling a jaxpr and running the result.
 *
 * Running a program: buffers for arguments and constants are the arrays'
 * own; outputs are allocated as arrays when their kernel runs; temporaries
 * come from the caching allocator at their defining kernel and go back
 * after their last reader, so peak memory follows liveness. MAP/REDUCE
 * and LOOP kernels are the generated functions; CALL kernels run the
 * primitive's eager impl on the buffers (also when a generated loop calls
 * back for one, rt_call). Without a working C compiler the optimized
 * jaxpr is interpreted with the eager kernels instead. */
#include "compile/compile.h"
#include "compile/passes.h"
#include "prims/prims.h"
#include "trace/trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct jx_executable {
  jx_jaxpr *opt;
  jx_program *prog;
  jx_module *mod; /* NULL: interpret opt */
  const jx_backend *be;
  jx_profile *prof; /* JX_LOG=profile */
};

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* ---------------------------------------------------------- dumps */
void jx_dump(const char *name, const char *text) {
  const char *dir = getenv("JX_DUMP");
  if (!dir || !*dir || !text) return;
  static atomic_int counter;
  char path[4096];
  snprintf(path, sizeof path, "%s/%04d-%s", dir, atomic_fetch_add(&counter, 1), name);
  FILE *f = fopen(path, "w");
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

static void dump_jaxpr(const char *name, const jx_jaxpr *j) {
  if (!getenv("JX_DUMP")) return;
  char *s = jx_jaxpr_print(j);
  jx_dump(name, s);
  jx_free(s);
}

/* ------------------------------------------------------------- compiling */
/* Runs of executables, process-wide: generated code or interpreted. */
static atomic_long runs_compiled, runs_interpreted;
jx_exec_counts jx_exec_run_counts(void) {
  return (jx_exec_counts){atomic_load(&runs_compiled), atomic_load(&runs_interpreted)};
}

/* Interpreting instead of running generated code is many times slower,
 * which should never be silent: said once per process whatever JX_LOG
 * asks (but quiet); the message names the function by its signature and
 * gives the cause (a missing rendering names the primitive). */
static void say_fallback(const jx_jaxpr *j, jx_t cause) {
  static atomic_int told;
  const char *jlog = getenv("JX_LOG");
  if ((jlog && strstr(jlog, "quiet")) || atomic_exchange(&told, 1)) return;
  char sig[256] = "", a[64];
  size_t n = 0;
  for (int i = 0; i < j->nin && n + 8 < sizeof sig; i++) {
    jx_aval_str(&j->avals[j->invars[i]], a, sizeof a);
    n += (size_t)snprintf(sig + n, sizeof sig - n, "%s%s", i ? ", " : "", a);
  }
  jx_diag("jit: falling back to the interpreter (much slower) for the function of (%s), %d equation%s: %s", sig,
          j->neqn, j->neqn == 1 ? "" : "s", cause ? jx_error(cause) : "render failed");
}

static bool all_consts_concrete(const jx_jaxpr *j) {
  for (int i = 0; i < j->nconst; i++)
    if (!jx_is_array(j->consts[i])) return false;
  return true;
}

jx_executable *jx_compile(jx_jaxpr *j, const jx_backend *be, jx_t *err) {
  *err = NULL;
  double t0 = now_ms();
  jx_executable *x = jx_calloc(1, sizeof *x);
  if (!x) {
    *err = jx_error_new("jit: out of memory");
    return NULL;
  }
  x->be = be;
  dump_jaxpr("jaxpr-before.txt", j);
  x->opt = jx_optimize(j, err);
  if (!x->opt) {
    jx_free(x);
    return NULL;
  }
  dump_jaxpr("jaxpr-after.txt", x->opt);
  double t1 = now_ms();
  if (all_consts_concrete(x->opt)) {
    jx_t ferr;
    x->prog = jx_fuse(x->opt, &ferr);
    if (x->prog) {
      jx_t berr = NULL;
      /* a failed render or build is recovered from (interpretation): not a user error */
      bool quiet = jx_errors_quiet(true);
      char *src = be->render(x->prog, &berr);
      jx_dump("program.c", src);
      x->mod = src ? be->build(src, x->prog->nkernel, &berr) : NULL;
      jx_errors_quiet(quiet);
      if (x->mod) x->prof = jx_profile_new(x->prog);
      else say_fallback(x->opt, berr);
      jx_free(src);
    } else {
      say_fallback(x->opt, ferr);
    }
  }
  if (jx_diag_enabled("compile"))
    jx_diag("jit: %d equations -> %d after passes, %d kernels; passes %.2f ms, total %.1f ms", j->neqn, x->opt->neqn,
           x->prog ? x->prog->nkernel : 0, t1 - t0, now_ms() - t0);
  return x;
}

void jx_executable_free(jx_executable *x) {
  if (!x) return;
  jx_profile_free(x->prof);
  if (x->mod) x->be->module_free(x->mod);
  jx_program_free(x->prog);
  jx_jaxpr_release(x->opt);
  jx_free(x);
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
static jx_t run_owning_call(const jx_kernel *kn, const jx_program *p, jx_buffer **buf, char **data, jx_t *val) {
  jx_t small_in[16], small_out[16];
  jx_t *in = kn->nin <= 16 ? small_in : jx_malloc(sizeof(jx_t) * (size_t)kn->nin);
  jx_t *out = kn->nout <= 16 ? small_out : jx_malloc(sizeof(jx_t) * (size_t)kn->nout);
  jx_t err = in && out ? NULL : jx_error_new("jit: out of memory");
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
  if (!err) err = jx_prim_rules[kn->prim]->impl(kn->prim, in, kn->nin, &kn->params, out);
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
  if (in != small_in) jx_free(in);
  if (out != small_out) jx_free(out);
  return err;
}

/* ------------------------------------------- the runtime of generated loops */
typedef struct {
  const jx_program *root;
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
 * input and output, and the impl's argument arrays. On the stack for the
 * usual few operands (a loop may run the call millions of times), on the
 * heap for wide calls (a concatenate of 1,000 arrays). */
enum { CALL_SMALL = 16 };
typedef struct {
  jx_buffer *hb;
  struct jx_value *v;
  jx_t *in, *out;
} call_views;

static bool call_views_init(call_views *cv, int n, jx_buffer *hb, struct jx_value *v, jx_t *ptrs) {
  if (n > CALL_SMALL) {
    hb = jx_malloc(sizeof(jx_buffer) * (size_t)n);
    v = jx_malloc(sizeof(struct jx_value) * (size_t)n);
    ptrs = jx_malloc(sizeof(jx_t) * (size_t)n);
  }
  *cv = (call_views){hb, v, ptrs, ptrs};
  return hb && v && ptrs;
}

static void call_views_free(call_views *cv, int n) {
  if (n <= CALL_SMALL) return;
  jx_free(cv->hb), jx_free(cv->v), jx_free(cv->in);
}

/* A CALL kernel of program p on the data pointers (views over them), with
 * its fused epilogue's loop `epi` (over the pointers epi_data) or NULL.
 * Values the impl makes are released at once (a loop may run it millions
 * of times). */
static jx_t run_call(const jx_program *p, const jx_kernel *kn, char **data, jx_range_fn epi, char **epi_data) {
  int n = kn->nin + kn->nout;
  jx_buffer shb[CALL_SMALL];
  struct jx_value sv[CALL_SMALL];
  jx_t sp[CALL_SMALL];
  call_views cv;
  if (!call_views_init(&cv, n, shb, sv, sp)) {
    call_views_free(&cv, n);
    return jx_error_new("jit: out of memory for a %s call with %d operands", jx_prim_names[kn->prim], n);
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
  jx_t err = epi ? jx_dot_general_epilogue(cv.in, &kn->params, cv.out[0], run_epilogue, &ec)
                 : jx_prim_rules[kn->prim]->impl(kn->prim, cv.in, kn->nin, &kn->params, cv.out);
  if (err) jx_retain(err);
  jx_pool_release_to(mark);
  call_views_free(&cv, n);
  return err ? jx_pool_own(err) : NULL;
}

/* a loop body's CALL kernel (rt->call) */
static int rt_call(const jx_rt *rt, int prog, int kernel, char **data, void (*epi)(void *, int64_t, int64_t)) {
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

jx_t jx_executable_run(jx_executable *x, const jx_t *args, jx_t *outs) {
  atomic_fetch_add(x->mod ? &runs_compiled : &runs_interpreted, 1);
  if (!x->mod) return jx_eval_jaxpr(x->opt, args, outs);
  run_state rs = {x->prog, NULL};
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
  jx_t err = NULL;
  if (!buf || !data || !val) {
    err = jx_error_new("jit: out of memory");
    goto done;
  }
  for (int b = 0; b < nb; b++) {
    const jx_lbuf *lb = &p->bufs[b];
    buf[b] = NULL, data[b] = NULL, val[b] = NULL;
    if (lb->kind == JX_LB_ARG) buf[b] = args[lb->index]->u.arr.buf;
    else if (lb->kind == JX_LB_CONST) buf[b] = p->consts[lb->index]->u.arr.buf;
    if (buf[b]) data[b] = buf[b]->data;
  }
  int epi_ran = -1; /* the MAP kernel a GEMM just ran as its epilogue */
  for (int k = 0; k < p->nkernel && !err; k++) {
    const jx_kernel *kn = &p->kernels[k];
    bool own_outputs = kn->kind == JX_LK_CALL && jx_prim_rules[kn->prim]->impl_allocates;
    const int e = kn->epilogue - 1;
    int epi = kn->epilogue && (slot_kernel(x->mod, e) || x->mod->ranges[e]) ? e : -1;
    /* allocate what this kernel defines (and its epilogue) */
    for (int b = 0; b < nb && !err && !own_outputs && epi_ran != k; b++) {
      const jx_lbuf *lb = &p->bufs[b];
      if (lb->def != k && (epi < 0 || lb->def != epi)) continue;
      if (lb->kind == JX_LB_OUT) {
        val[b] = jx_array_new(&lb->aval);
        if (!jx_ok(val[b])) err = val[b];
        else buf[b] = val[b]->u.arr.buf;
      } else {
        buf[b] = jx_buffer_new((size_t)jx_aval_size(&lb->aval) * jx_dtype_size(lb->aval.dtype));
        if (!buf[b]) err = jx_error_new("jit: out of memory for a temporary %s", jx_dtype_name(lb->aval.dtype));
      }
      if (buf[b]) data[b] = buf[b]->data;
    }
    if (err) break;
    const double tk = x->prof ? now_ms() : 0;
    if (epi_ran == k) {
      /* done inside the GEMM before it */
    } else if (own_outputs) {
      err = run_owning_call(kn, p, buf, data, val);
    } else {
      err = run_kernel(x, k, epi, data, &rt);
      if (epi >= 0) epi_ran = epi;
    }
    if (x->prof && epi_ran != k) jx_profile_add(x->prof, k, (int64_t)((now_ms() - tk) * 1e6));
    /* temporaries whose last reader was this kernel go back to the cache */
    for (int b = 0; b < nb; b++)
      if (p->bufs[b].kind == JX_LB_TEMP && p->bufs[b].last <= k && buf[b]) {
        jx_buffer_release(buf[b]);
        buf[b] = NULL;
      }
  }
  if (x->prof && !err) jx_profile_run(x->prof);
  for (int i = 0; i < p->nout; i++) {
    int b = p->outs[i];
    const jx_lbuf *lb = &p->bufs[b];
    if (err) outs[i] = err;
    else if (lb->kind == JX_LB_ARG) outs[i] = args[lb->index];
    else if (lb->kind == JX_LB_CONST) { /* the program's: a reference of the caller's own */
      outs[i] = jx_pool_own(jx_retain(p->consts[lb->index]));
      if (!jx_ok(outs[i])) err = outs[i];
    } else outs[i] = val[b];
  }
  /* on error, temporaries still held are released */
  for (int b = 0; err && b < nb; b++)
    if (p->bufs[b].kind == JX_LB_TEMP && buf[b]) jx_buffer_release(buf[b]);
done:
  if (buf && buf != sb) jx_free(buf);
  if (data && data != sd) jx_free(data);
  if (val && val != sv) jx_free(val);
  if (err)
    for (int i = 0; i < (x->opt ? x->opt->nout : 0); i++) outs[i] = err;
  return err;
}
