/* Effects in derived jaxprs (control/effects.c). */
#ifndef JX_EFFECTS_H
#define JX_EFFECTS_H

#include "ir/jaxpr.h"

/* j without its effects (+1 reference): j itself when it has none, else
 * a copy without its effectful equations, whose control flow runs pure
 * copies of its inner jaxprs (cached on j). NULL and *err on failure. */
jx_jaxpr *jx_derive_pure(jx_jaxpr *j, jx_t *err);

#endif
