#!/usr/bin/env bash
# test_dist's multi-process scenarios under `mpirun -np 2` (tests/test_dist.c):
# every jx_dist_* function (also with 3 processes), a program that starts MPI
# itself, a process that finishes late, then the faults: rank 1 leaves an allreduce by
# exit(0), exit(3) or SIGKILL, or stalls in it; each time the job must end
# within 30 s with a message naming rank 1. Exit 77 (skipped) when jx was
# built without MPI or mpirun is missing.
set -uo pipefail
BIN=$1 HAVE_MPI=${2:-OFF}
case "$HAVE_MPI" in ON | TRUE | 1 | YES) ;; *)
  echo "dist mpi test: jx was built without MPI (apt-get install libopenmpi-dev openmpi-bin): skipped"
  exit 77 ;;
esac
command -v mpirun >/dev/null || { echo "dist mpi test: mpirun missing (apt-get install openmpi-bin): skipped"; exit 77; }
# as root (CI containers) mpirun wants --allow-run-as-root; 2 slots on any machine
MPIRUN=(mpirun --allow-run-as-root --oversubscribe -np 2)
# shared memory without CMA single copy: containers often forbid ptrace, which CMA needs
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

echo "== mpi: every collective and dtype, bad input, mismatched signatures"
timeout 120 "${MPIRUN[@]}" "$BIN" mpi >"$tmp/mpi.txt" 2>&1
rc=$?
cat "$tmp/mpi.txt"
if [ $rc != 0 ] || [ "$(grep -c ', 0 failed' "$tmp/mpi.txt")" != 2 ]; then
  echo "dist mpi test: FAILED: the two-process run (exit $rc)"; fail=1
fi

echo "== mpi, 3 processes (an odd ring; more blocks in alltoall)"
timeout 120 mpirun --allow-run-as-root --oversubscribe -np 3 "$BIN" mpi >"$tmp/mpi3.txt" 2>&1
rc=$?
cat "$tmp/mpi3.txt"
if [ $rc != 0 ] || [ "$(grep -c ', 0 failed' "$tmp/mpi3.txt")" != 3 ]; then
  echo "dist mpi test: FAILED: the three-process run (exit $rc)"; fail=1
fi

echo "== user: the program calls MPI_Init_thread and MPI_Finalize itself"
timeout 120 "${MPIRUN[@]}" "$BIN" user >"$tmp/user.txt" 2>&1
rc=$?
cat "$tmp/user.txt"
if [ $rc != 0 ] || [ "$(grep -c ', 0 failed' "$tmp/user.txt")" != 2 ]; then
  echo "dist mpi test: FAILED: the run that starts MPI itself (exit $rc)"; fail=1
fi

echo "== late: rank 1 finishes 3 s after rank 0 (JX_DIST_TIMEOUT=1): a clean end, no abort"
JX_DIST_TIMEOUT=1 timeout 60 "${MPIRUN[@]}" "$BIN" late >"$tmp/late.txt" 2>&1
rc=$?
cat "$tmp/late.txt"
if [ $rc != 0 ] || [ "$(grep -c ': done' "$tmp/late.txt")" != 2 ] || ! grep -q "still waits" "$tmp/late.txt"; then
  echo "dist mpi test: FAILED: the late finish (exit $rc)"; fail=1
fi

echo "== exitfirst: rank 1 has exited when rank 0 enters a collective: an error value, a clean end"
timeout 60 "${MPIRUN[@]}" "$BIN" exitfirst >"$tmp/exitfirst.txt" 2>&1
rc=$?
cat "$tmp/exitfirst.txt"
if [ $rc != 0 ] || ! grep -q "rank 0: psum after a peer left (jx_dist_allreduce): process 0 of 2: rank 1 has exited (status 0)" \
    "$tmp/exitfirst.txt"; then
  echo "dist mpi test: FAILED: the collective after a peer's exit (exit $rc)"; fail=1
fi

# fault NAME ENV PATTERN...: the job fails within 30 s and its output holds every pattern
fault() {
  local name=$1 env=$2; shift 2
  local t0 t1 rc
  t0=$(date +%s%N)
  env $env timeout 60 "${MPIRUN[@]}" "$BIN" "$name" >"$tmp/$name.txt" 2>&1
  rc=$?
  t1=$(date +%s%N)
  local ms=$(((t1 - t0) / 1000000)) secs
  secs=$((ms / 1000)).$(printf %03d $((ms % 1000)))
  echo "== $name: exit $rc after ${secs}s"
  local ok=1
  [ $rc != 0 ] && [ $rc != 124 ] || { echo "   expected a failed job, got exit $rc"; ok=0; }
  [ $ms -lt 30000 ] || { echo "   took ${secs}s (limit 30)"; ok=0; }
  grep -q "the fault was not seen" "$tmp/$name.txt" && { echo "   an allreduce returned"; ok=0; }
  for p in "$@"; do
    grep -qE "$p" "$tmp/$name.txt" || { echo "   output lacks /$p/"; ok=0; }
  done
  grep -E "^jx:|rank 1|process rank|Exit code" "$tmp/$name.txt" | head -6 | sed 's/^/   | /'
  if [ $ok = 0 ]; then
    echo "---- output ----"; cat "$tmp/$name.txt"; echo "---- end ----"; fail=1
  fi
}
# exit(0) mid-job: its exit notice reaches rank 0's watchdog, which names it
fault exit0 "" "psum over 'batch' of f32\[4\].*rank 1 exited \(status 0\)" "aborting the job \(MPI_Abort\)"
# exit(3): jx does not finalize; mpirun ends the job, naming the process
fault exit3 "" "process 1 of 2 exits with status 3"
# killed: mpirun sees the signal
fault kill "" "rank 1 .*exited on signal 9"
# stalled outside jx: rank 0's watchdog times out, asks, and names rank 1
fault hang "JX_DIST_TIMEOUT=2" "not done after 2 s \(JX_DIST_TIMEOUT\)" "rank 1: outside jx's collectives"
[ $fail = 0 ] && echo "dist mpi test: passed"
exit $fail
