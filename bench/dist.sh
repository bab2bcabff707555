#!/bin/bash
# dist.sh - the process layer against plain MPI (bench/bench_dist.c), 2 processes:
#   bash bench/dist.sh [jx-build-dir] [rounds]
# alternates three runs of bench_dist (jx_dist_allreduce and MPI_Allreduce of 3.76 MB
# in one program, then MPI latency and bandwidth) with bench_dist --plain (MPI_Allreduce
# in a plain MPI program), then prints the medians. Skipped without MPI.
set -u
cd "$(dirname "$0")/.."
JXB=${1:-build}
ROUNDS=${2:-41}
command -v mpirun >/dev/null || { echo "dist.sh: mpirun missing (apt-get install openmpi-bin): skipped"; exit 0; }
cmake --build "$JXB" --target bench_dist -j "$(nproc)" >/dev/null || { echo "dist.sh: building bench_dist failed"; exit 1; }
MPIRUN=(mpirun --allow-run-as-root --oversubscribe -np 2)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in 1 2 3; do
  "${MPIRUN[@]}" "$JXB/bench/bench_dist" "$ROUNDS" | sed "s/^/round $r  /" | tee -a "$out"
  "${MPIRUN[@]}" "$JXB/bench/bench_dist" --plain "$ROUNDS" | sed "s/^/round $r  /" | tee -a "$out"
done
grep -q "skipped\|one process" "$out" && exit 0
med() { grep -E "  $1	" "$out" | cut -f2 | sort -g | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]}'; }
jx=$(med jx_allreduce_3.76MB_ms) mpi=$(med mpi_allreduce_3.76MB_ms) plain=$(med plain_mpi_allreduce_3.76MB_ms)
echo "summary (median of 3 runs): jx_dist_allreduce $jx ms, MPI_Allreduce same program $mpi ms, plain MPI program $plain ms"
awk -v j="$jx" -v m="$mpi" -v p="$plain" 'BEGIN {printf "ratio jx / MPI same program %.3f, jx / plain MPI program %.3f (goal <= 1.1)\n", j / m, j / p}'
grep -E "  min_ms_jx_mpi" "$out" | sed 's/^/minima (jx, MPI, ms): /'
echo "MPI latency (8 B, half round trip) $(med mpi_latency_8B_us) us, bandwidth $(med mpi_bandwidth_GBps) GB/s," \
  "local f32 sum $(med mpi_reduce_local_GBps) GB/s; 8 B allreduce: MPI $(med mpi_allreduce_8B_us) us, jx $(med jx_allreduce_8B_us) us"
