#!/bin/bash
# conv.sh - the convolution benchmarks side by side: jx (bench/bench_conv.c) and PyTorch 1.13 eager
# (bench/conv_torch.py), alternating in one run, then the ratios (jx time / PyTorch time; below 1:
# jx is faster). Both at JX_NUM_THREADS / torch's thread count = nproc.
#   bash bench/conv.sh [jx-build-dir (build)] [reps (9)] [rounds (2)]
set -u
cd "$(dirname "$0")/.."
B=${1:-build}; REPS=${2:-9}; ROUNDS=${3:-2}
cmake --build "$B" --target bench_conv -j "$(nproc)" >/dev/null || { echo "conv.sh: build failed"; exit 1; }
OUT=$(mktemp -d)
echo "machine: nproc=$(nproc) $(bash bench/cpu_info.sh) load: $(cut -d' ' -f1-3 /proc/loadavg); jx conv kernel: ${JX_CONV:-default}"
for r in $(seq "$ROUNDS"); do
  "$B/bench/bench_conv" "$REPS" >"$OUT/jx$r.txt" || exit 1
  OMP_NUM_THREADS=$(nproc) /usr/bin/python3 bench/conv_torch.py "$REPS" >"$OUT/torch$r.txt" || { echo "conv.sh: PyTorch side failed"; exit 1; }
done
printf "%-22s %10s %10s %7s   (medians over rounds of medians, ms)\n" bench jx torch ratio
for name in cnn_step_b128 conv3x3_fwd conv3x3_grad_input conv3x3_grad_weight; do
  j=$(cat "$OUT"/jx*.txt | awk -v n=$name '$1==n{print $2}' | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  t=$(cat "$OUT"/torch*.txt | awk -v n=$name '$1==n{print $2}' | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  awk -v n=$name -v j="$j" -v t="$t" 'BEGIN{printf "%-22s %10.2f %10.2f %7.2f\n", n, j, t, j/t}'
done
rm -rf "$OUT"
