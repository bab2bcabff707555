/* oneDNN's convolution for f32, when jx is built with it (JX_HAVE_DNNL). */
#include "backend/cpu/conv.h"

#include <stdlib.h>
#include <string.h>

#ifndef JX_HAVE_DNNL
int jx_cpu_conv_dnnl(const jx_cpu_conv_desc *d, const void *lhs, const void *rhs, void *out) {
  (void)d, (void)lhs, (void)rhs, (void)out;
  return 1;
}
const char *jx_cpu_conv_backend(void) { return "own"; }
#endif
