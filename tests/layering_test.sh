#!/usr/bin/env bash
# The layers of src/ include only downward (docs/DESIGN.md §1): a back edge
# (a lower layer including a higher one) fails this test, naming the line.
# The rules, one per line: the directory, then what it must not include.
# First a self-test on a made-up tree, so that the checker itself is known
# to catch an edge.
set -euo pipefail
SRC=${1:?usage: layering_test.sh SRC_DIR}

RULES='
core     prims/|trace/|ops/|api/|compile/|control/|ir/|backend/|io/|optim/
prims    ops/|api/
trace    ops/|api/
compile  trace/|prims/|backend/cpu/|control/|api/|ops/
api      backend/cpu/
control  backend/cpu/
ir       compile/|backend/
dist     prims/|trace/|ops/|api/|compile/|control/|ir/|backend/|io/|optim/
optim    prims/|trace/|api/|compile/|control/|ir/|backend/|io/
'

# check DIR: prints each back edge, returns 1 if there is one
check() {
  local root=$1 bad=0 dir deny
  while read -r dir deny; do
    [ -n "$dir" ] || continue
    [ -d "$root/$dir" ] || continue
    if grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*\"($deny)" "$root/$dir" \
        --include='*.c' --include='*.h' --include='*.def'; then
      bad=1
    fi
  done <<<"$RULES"
  return $bad
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/core" "$tmp/compile"
printf '#include "core/core.h"\n' >"$tmp/core/ok.c"
printf '#include "trace/trace.h"\n' >"$tmp/compile/bad.c"
if check "$tmp" >/dev/null; then
  echo "layering test: the checker missed a back edge in its self-test"
  exit 1
fi

if ! check "$SRC"; then
  echo "layering test: the includes above go against the layers (see tests/layering_test.sh)"
  exit 1
fi
echo "layering test: no back edges"
