/* JX_LOG=profile: where a compiled program's time goes, kernel by kernel.
 *
 * Each executable built while profiling is on gets a table of per-kernel
 * nanoseconds (atomic: several threads may run one executable at once).
 * The table is printed to stderr when the executable is freed, and at exit
 * for those still alive, heaviest kernels first. A GEMM's time includes the
 * epilogue it runs; a LOOP kernel's includes its bodies. The cost when off
 * is one branch per kernel. */
#include "compile/compile.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

struct jx_profile {
  int nkernel, nbuf;
  char (*what)[96]; /* per kernel: kind, op and shape, said when made */
  _Atomic int64_t *ns;
  _Atomic int64_t runs;
  struct jx_profile *next;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static jx_profile *registry;
static int exit_hooked;

static void describe(const jx_program *p, int k, char *s, size_t n) {
  const jx_kernel *kn = &p->kernels[k];
  static const char *const kind[] = {"map", "reduce", "call", "loop"};
  int w = snprintf(s, n, "%-6s %-12s [", kind[kn->kind],
                   kn->kind == JX_LK_MAP      ? ""
                   : kn->kind == JX_LK_REDUCE ? jx_prim_names[kn->reduce_op]
                                              : jx_prim_names[kn->call.prim]);
  const jx_aval *a = kn->kind == JX_LK_CALL || kn->kind == JX_LK_LOOP
                         ? (kn->nout ? &p->bufs[kn->outs[0]].aval : NULL)
                         : NULL;
  const int nd = a ? a->ndim : kn->ndim;
  for (int d = 0; d < nd && w > 0 && (size_t)w < n; d++)
    w += snprintf(s + w, n - (size_t)w, "%s%lld", d ? "," : "", (long long)(a ? a->shape[d] : kn->shape[d]));
  if (w > 0 && (size_t)w < n) w += snprintf(s + w, n - (size_t)w, "]");
  if (kn->epilogue && w > 0 && (size_t)w < n)
    snprintf(s + w, n - (size_t)w, " + epilogue k%d", kn->epilogue - 1);
}

static void print(jx_profile *pr) {
  const int64_t runs = atomic_load(&pr->runs);
  if (runs == 0) return;
  int *order = jx_malloc(sizeof(int) * (size_t)(pr->nkernel ? pr->nkernel : 1));
  if (!order) return;
  int64_t total = 0;
  for (int k = 0; k < pr->nkernel; k++) order[k] = k, total += atomic_load(&pr->ns[k]);
  for (int i = 1; i < pr->nkernel; i++) /* heaviest first (insertion sort: tens of kernels) */
    for (int j = i; j > 0 && atomic_load(&pr->ns[order[j]]) > atomic_load(&pr->ns[order[j - 1]]); j--) {
      int t = order[j];
      order[j] = order[j - 1], order[j - 1] = t;
    }
  fprintf(stderr, "[jx] profile: program of %d kernels, %d buffers; %lld runs, %.3f ms per run in kernels\n",
          pr->nkernel, pr->nbuf, (long long)runs, total / 1e6 / (double)runs);
  for (int i = 0; i < pr->nkernel; i++) {
    const int k = order[i];
    const int64_t ns = atomic_load(&pr->ns[k]);
    if (ns == 0) continue; /* epilogues (run by their GEMM) */
    fprintf(stderr, "[jx]   k%-3d %-48s %8.3f ms/run %5.1f%%\n", k, pr->what[k], ns / 1e6 / (double)runs,
            total ? 100.0 * (double)ns / (double)total : 0.0);
  }
  jx_free(order);
}

static void print_all_at_exit(void) {
  pthread_mutex_lock(&reg_lock);
  for (jx_profile *pr = registry; pr; pr = pr->next) {
    print(pr);
    atomic_store(&pr->runs, 0); /* an executable freed later (a destructor) prints nothing again */
  }
  pthread_mutex_unlock(&reg_lock);
}

jx_profile *jx_profile_new(const jx_program *p) {
  if (!p || !jx_diag_enabled("profile")) return NULL;
  jx_profile *pr = jx_calloc(1, sizeof *pr);
  if (!pr) return NULL;
  pr->nkernel = p->nkernel, pr->nbuf = p->nbuf;
  const size_t n = (size_t)(p->nkernel ? p->nkernel : 1);
  pr->what = jx_calloc(n, sizeof *pr->what);
  pr->ns = jx_calloc(n, sizeof *pr->ns);
  if (!pr->what || !pr->ns) {
    jx_free(pr->what), jx_free((void *)pr->ns), jx_free(pr);
    return NULL;
  }
  for (int k = 0; k < p->nkernel; k++) describe(p, k, pr->what[k], sizeof pr->what[k]);
  pthread_mutex_lock(&reg_lock);
  if (!exit_hooked) exit_hooked = atexit(print_all_at_exit) == 0 ? 1 : -1;
  pr->next = registry;
  registry = pr;
  pthread_mutex_unlock(&reg_lock);
  return pr;
}

void jx_profile_add(jx_profile *pr, int kernel, int64_t ns) {
  atomic_fetch_add_explicit(&pr->ns[kernel], ns, memory_order_relaxed);
}

void jx_profile_run(jx_profile *pr) { atomic_fetch_add_explicit(&pr->runs, 1, memory_order_relaxed); }

void jx_profile_free(jx_profile *pr) {
  if (!pr) return;
  pthread_mutex_lock(&reg_lock);
  for (jx_profile **q = &registry; *q; q = &(*q)->next)
    if (*q == pr) {
      *q = pr->next;
      break;
    }
  pthread_mutex_unlock(&reg_lock);
  print(pr);
  jx_free(pr->what);
  jx_free((void *)pr->ns);
  jx_free(pr);
}
