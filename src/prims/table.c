/* The primitive table: one rules struct per primitive, indexed by jx_prim.
 * Generated from primitives.def, so a primitive without rules fails to link. */
#include "prims/prims.h"

#define JX_PRIM(name, family) extern const jx_rules jx_rules_##name;
#include "core/primitives.def"
#undef JX_PRIM

const jx_rules *const jx_prim_rules[JX_PRIM_COUNT] = {
#define JX_PRIM(name, family) [JX_P_##name] = &jx_rules_##name,
#include "core/primitives.def"
#undef JX_PRIM
};
