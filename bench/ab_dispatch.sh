#!/bin/bash
# ab_dispatch.sh OLD_BUILD NEW_BUILD [ROUNDS] - eager dispatch of two builds of jx, side by side.
#
# Links bench/ab_dispatch.c against each build's libjx.a (with its own include/ dir: the build
# dir's parent), then runs the two binaries alternating, ROUNDS (default 9) times per case, and
# prints each case's minimum and median wall time: the minimum is the run the other jobs on a
# shared machine disturbed least. Used to check that a refactor lost no dispatch speed, e.g.
#   git worktree add /tmp/old <commit> && make -C /tmp/old lib && bash bench/ab_dispatch.sh /tmp/old/build build
set -eu
OLD=$(cd "$1" && pwd); NEW=$(cd "$2" && pwd); ROUNDS=${3:-9}
cd "$(dirname "$0")"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
libs="-lm -lpthread -ldl"
if pkg-config --exists openblas 2>/dev/null || [ -e /usr/lib/x86_64-linux-gnu/libopenblas.so ]; then libs="-lopenblas $libs"; fi
for side in old new; do
  b=$OLD; [ $side = new ] && b=$NEW
  gcc -O2 -std=c17 -I"$b/../include" ab_dispatch.c "$b/libjx.a" $libs -o "$T/ab-$side"
done
export JX_CACHE_DIR=$T/cache
echo "ab_dispatch: old=$OLD new=$NEW, $ROUNDS alternating rounds, load $(cut -d' ' -f1-3 /proc/loadavg)"
for c in "add 2000000" "grad 300000" "jitgrad 300000"; do
  for r in $(seq "$ROUNDS"); do
    for side in old new; do
      s=$(date +%s%N); "$T/ab-$side" $c; e=$(date +%s%N)
      echo $(( (e - s) / 1000000 )) >> "$T/${c%% *}-$side"
    done
  done
  for side in old new; do
    sort -n "$T/${c%% *}-$side" | awk -v c="${c%% *}" -v s=$side '{v[NR]=$1} END {
      printf "  %-8s %s: min %d ms  median %d ms\n", c, s, v[1], v[int((NR+1)/2)] }'
  done
done
