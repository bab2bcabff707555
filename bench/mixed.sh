#!/bin/bash
# mixed.sh - bf16 mixed-precision training of the letters MLP against f32
# (issue 19): `letters --bf16` (bf16 inputs, activations and weight copies,
# products on the CPU's bf16 units; f32 loss and master weights) and the
# f32 run, same data, seed and schedule, alternated over the rounds
# (default 3); prints each run's epoch rate and test accuracy, the median
# rates' ratio and the accuracy difference (goal: within 0.5 points).
#   bash bench/mixed.sh [jx-build-dir] [rounds] [epochs]
set -u
cd "$(dirname "$0")/.."
JXB=${1:-build}
ROUNDS=${2:-3}
EPOCHS=${3:-10}
L=$JXB/examples/letters
cmake --build "$JXB" --target letters -j "$(nproc)" >/dev/null || { echo "mixed.sh: building letters failed"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export JX_CACHE_DIR=$tmp/cache
mkdir -m 700 "$JX_CACHE_DIR"
ARGS=(--epochs "$EPOCHS" --seed 3 --no-progress --no-save)
"$L" "${ARGS[@]}" --epochs 0 --out "$tmp" >"$tmp/render.txt" 2>&1 || { cat "$tmp/render.txt"; echo "mixed.sh: letters failed"; exit 1; }
ARGS+=(--data "$tmp/data/")
"$L" "${ARGS[@]}" --max-steps 2 >/dev/null 2>&1
"$L" "${ARGS[@]}" --max-steps 2 --bf16 >/dev/null 2>&1
run() { # name args...: "name rate accuracy"
  local name=$1; shift
  local out rate acc
  out=$("$L" "${ARGS[@]}" "$@" 2>&1)
  rate=$(echo "$out" | grep -oE '[0-9.]+ examples/s' | head -1 | cut -d' ' -f1)
  acc=$(echo "$out" | grep -oE 'test accuracy: [0-9.]+' | cut -d' ' -f3)
  echo "$name	${rate:-0}	${acc:-0}" | tee -a "$tmp/runs"
}
for r in $(seq "$ROUNDS"); do
  run f32
  run bf16 --bf16
done
med() { grep -E "^$1	" "$tmp/runs" | cut -f"$2" | sort -g | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]}'; }
awk -v f="$(med f32 2)" -v b="$(med bf16 2)" -v fa="$(med f32 3)" -v ba="$(med bf16 3)" 'BEGIN {
  printf "median examples/s (training, evaluation included): f32 %s, bf16 %s, ratio bf16/f32 %.2f\n", f, b, b / f
  printf "median test accuracy: f32 %s, bf16 %s, difference %+.2f points (goal: within 0.5)\n", fa, ba, 100 * (ba - fa) }'
