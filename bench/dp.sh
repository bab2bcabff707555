#!/bin/bash
# dp.sh - the data-parallel letters epoch (issue 17), examples per second:
#   bash bench/dp.sh [jx-build-dir] [rounds]
# one process x 1 thread, `mpirun -np 2 letters --data-parallel` (2 processes
# x 1 thread) and `letters --devices 2` (2 in-process devices x 1 thread),
# same global batch (128) and seed, alternated over the rounds (default 3),
# after one short run of each that compiles its step into the jit cache;
# prints each run's epoch rate and the median ratios (goal >= 1.7).
# The 2-process run is skipped without MPI.
set -u
cd "$(dirname "$0")/.."
JXB=${1:-build}
ROUNDS=${2:-3}
L=$JXB/examples/letters
cmake --build "$JXB" --target letters -j "$(nproc)" >/dev/null || { echo "dp.sh: building letters failed"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export JX_CACHE_DIR=$tmp/cache JX_NUM_THREADS=1
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
mkdir -m 700 "$JX_CACHE_DIR"
ARGS=(--per-font 10 --test-per-font 2 --epochs 1 --batch 128 --opt sgd --seed 7 --no-progress --no-save)
"$L" "${ARGS[@]}" --out "$tmp" >"$tmp/render.txt" 2>&1 || { cat "$tmp/render.txt"; echo "dp.sh: letters failed"; exit 1; }
ARGS+=(--data "$tmp/data/")
mpi=0
command -v mpirun >/dev/null && "$L" --help | grep -q -- --data-parallel && mpi=1
# rate NAME CMD...: the epoch's examples/s from letters' epoch line
rate() {
  local name=$1; shift
  local r
  r=$("$@" 2>&1 | grep -oE '[0-9.]+ ex/s' | head -1 | cut -d' ' -f1)
  echo "$name	${r:-failed}"
  echo "$name	${r:-0}" >>"$tmp/rates"
}
# warm the jit cache first: an epoch's rate must not include compiling its step
"$L" "${ARGS[@]}" --max-steps 2 >/dev/null 2>&1
[ $mpi = 1 ] && mpirun --allow-run-as-root --oversubscribe -np 2 "$L" --data-parallel "${ARGS[@]}" --max-steps 2 >/dev/null 2>&1
"$L" --devices 2 "${ARGS[@]}" --max-steps 2 >/dev/null 2>&1
for r in $(seq "$ROUNDS"); do
  rate one_process_1_thread "$L" "${ARGS[@]}"
  [ $mpi = 1 ] && rate two_processes_1_thread mpirun --allow-run-as-root --oversubscribe -np 2 "$L" --data-parallel "${ARGS[@]}"
  rate two_devices_1_thread "$L" --devices 2 "${ARGS[@]}"
done
med() { grep -E "^$1	" "$tmp/rates" | cut -f2 | sort -g | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]}'; }
one=$(med one_process_1_thread) two=$(med two_processes_1_thread) dev=$(med two_devices_1_thread)
echo "median examples/s: 1 process x 1 thread $one, 2 processes x 1 thread ${two:-skipped}, 2 devices x 1 thread $dev"
awk -v o="$one" -v t="${two:-0}" -v d="$dev" 'BEGIN {
  if (t > 0) printf "ratio 2 processes / 1 %.2f (goal >= 1.7)\n", t / o
  printf "ratio 2 devices / 1 %.2f (goal >= 1.7)\n", d / o }'
