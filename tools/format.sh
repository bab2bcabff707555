#!/bin/bash
# format.sh fix|check FILE... - apply .clang-format, or fail listing the files that differ.
# The tree is formatted with clang-format 14 (Debian 12); other major versions break lines
# differently, so a check with another version is skipped with a message rather than failed.
set -u
mode=$1; shift
CF=${CLANG_FORMAT:-clang-format}
if ! command -v "$CF" >/dev/null; then
  echo "format: $CF not found; install it with: apt-get install clang-format" >&2
  exit 1
fi
major=$("$CF" --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
if [ "$mode" = check ] && [ "$major" != 14 ]; then
  echo "format: skipped: clang-format $major here, the tree is formatted with clang-format 14"
  exit 0
fi
if [ "$mode" = fix ]; then exec "$CF" -i "$@"; fi
bad=0
for f in "$@"; do
  if ! "$CF" "$f" | cmp -s - "$f"; then echo "format: $f differs from clang-format (run make format)"; bad=1; fi
done
[ $bad = 0 ] && echo "format: $# files formatted"
exit $bad
