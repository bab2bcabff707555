#!/usr/bin/env bash
# pmap across processes (tests/test_pmap_mpi.c) under `mpirun -np 2` with 1
# and 2 devices per process, and `-np 3` with 1: every collective equals the
# named vmap over all devices, on every rank; processes that pass different
# shapes get an error value each, and go on. Exit 77 (skipped) when jx was
# built without MPI or mpirun is missing.
set -uo pipefail
BIN=$1 HAVE_MPI=${2:-OFF}
case "$HAVE_MPI" in ON | TRUE | 1 | YES) ;; *)
  echo "pmap mpi test: jx was built without MPI (apt-get install libopenmpi-dev openmpi-bin): skipped"
  exit 77 ;;
esac
command -v mpirun >/dev/null || { echo "pmap mpi test: mpirun missing (apt-get install openmpi-bin): skipped"; exit 77; }
# shared memory without CMA single copy: containers often forbid ptrace, which CMA needs
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
# run NP DEVICES: every rank must report 0 failed
run() {
  local np=$1 dev=$2 out="$tmp/np$1-dev$2.txt" rc
  echo "== mpirun -np $np, JX_CPU_DEVICES=$dev"
  JX_CPU_DEVICES=$dev timeout 300 mpirun --allow-run-as-root --oversubscribe -np "$np" "$BIN" >"$out" 2>&1
  rc=$?
  cat "$out"
  if [ $rc != 0 ] || [ "$(grep -c ', 0 failed' "$out")" != "$np" ]; then
    echo "pmap mpi test: FAILED: $np processes x $dev devices (exit $rc)"; fail=1
  fi
}
run 2 1
run 2 2
run 3 1
[ $fail = 0 ] && echo "pmap mpi test: passed"
exit $fail
