/* What jx_compile (compile/compile.c) hands the executor (compile/exec.c).
 * Private to compile/. */
#ifndef JX_EXECUTABLE_H
#define JX_EXECUTABLE_H

#include "compile/compile.h"

struct jx_executable {
  jx_jaxpr *opt;
  jx_program *prog;
  jx_module *mod; /* NULL: interpret opt */
  const jx_backend *be;
  const jx_compile_host *host; /* the interpreter and the GEMM epilogue */
  jx_profile *prof;            /* JX_LOG=profile */
};

double jx_now_ms(void);

#endif
