/* The backend registry: which backend jit compiles for. A new backend
 * adds itself to the table; nothing above backend/ names one. */
#include "backend/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const jx_backend *const backends[] = {&jx_cpu_backend};
enum { NBACKENDS = sizeof backends / sizeof *backends };

const jx_backend *jx_backend_host(void) { return backends[0]; }

const jx_backend *jx_backend_get(jx_t *err) {
  *err = NULL;
  const char *name = getenv("JX_BACKEND");
  if (!name || !*name) return backends[0];
  char have[256] = "";
  for (int i = 0; i < NBACKENDS; i++) {
    if (!strcmp(backends[i]->name, name)) return backends[i];
    size_t n = strlen(have);
    snprintf(have + n, sizeof have - n, "%s%s", i ? ", " : "", backends[i]->name);
  }
  *err = jx_error_new("jit: JX_BACKEND=%s: no such backend (there is: %s)", name, have);
  return NULL;
}
