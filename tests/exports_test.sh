#!/usr/bin/env bash
# libjx.so exports exactly the functions include/jx.h declares: every
# exported function symbol is declared there, and every declared function
# is exported. Exit 77 (skipped) without nm.
set -euo pipefail
LIB=$1 HDR=$2
CC=${CC:-cc}
command -v nm >/dev/null || { echo "exports test: nm missing (binutils): skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# exported functions (T), data (D/B/R) too: nothing but the API may leak
nm -D --defined-only "$LIB" | awk '$2 ~ /^[TDBRW]$/ {print $3}' | grep -v '^_' | sort -u >"$tmp/exported"
# declared functions: identifiers before '(' in the preprocessed header,
# comments gone; 'jx_t (*name)(' typedefs and macros excluded
"$CC" -E -P "$HDR" | tr -s ' \t\n' ' ' | tr ';' '\n' | grep -v '^ *typedef' |
  grep -oE '\b[a-z_][a-z0-9_]* ?\(' | tr -d ' (' | grep "^jx_" | grep -v "_t$" | sort -u >"$tmp/declared"
extra=$(comm -23 "$tmp/exported" "$tmp/declared")
missing=$(comm -13 "$tmp/exported" "$tmp/declared")
[ -z "$extra" ] || { echo "exported but not declared in jx.h:"; echo "$extra"; }
[ -z "$missing" ] || { echo "declared in jx.h but not exported:"; echo "$missing"; }
[ -z "$extra$missing" ] || exit 1
echo "exports test: $(wc -l <"$tmp/exported") symbols, all in jx.h"
