/* Runtime settings exposed in the public API. */
#include "backend/cpu/kernels.h"
#include "core/core.h"

int jx_num_threads(void) { return jx_cpu_num_threads(); }
void jx_set_num_threads(int n) { jx_cpu_set_num_threads(n); }
