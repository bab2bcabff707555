#!/usr/bin/env bash
# The data-parallel letters demo (issue 17): one epoch of a small letters run
# as one process, as two processes (`mpirun -np 2 letters --data-parallel`)
# and as two in-process devices (`letters --devices 2`), same global batch and
# seed (and both at once: 2 processes x 2 devices): the saved parameters
# agree (max relative difference <= 1e-5, per array) and the
# test accuracy printed is the same. Exit 77 (skipped) without MPI, mpirun,
# FreeType (rendering), NumPy (the comparison), or while letters lacks the
# flags; each mode is skipped alone when only its flag is missing.
set -uo pipefail
LETTERS=$1 HAVE_MPI=${2:-OFF}
PY=/usr/bin/python3
command -v "$PY" >/dev/null || PY=python3
help=$("$LETTERS" --help 2>&1)
has_dp=0 has_dev=0
grep -q -- "--data-parallel" <<<"$help" && has_dp=1
grep -q -- "--devices" <<<"$help" && has_dev=1
case "$HAVE_MPI" in ON | TRUE | 1 | YES) command -v mpirun >/dev/null || has_dp=0 ;; *) has_dp=0 ;; esac
[ $has_dp = 1 ] || [ $has_dev = 1 ] || {
  echo "letters dp test: letters has no --data-parallel (with MPI and mpirun) nor --devices: skipped"; exit 77; }
"$PY" -c "import numpy" 2>/dev/null || { echo "letters dp test: NumPy missing (apt-get install python3-numpy): skipped"; exit 77; }
# shared memory without CMA single copy: containers often forbid ptrace, which CMA needs
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
# Under a sanitizer build, OpenMPI's plugins (dlopen'd, unloaded at exit, so their
# frames are "<unknown module>") leave allocations LeakSanitizer cannot attribute:
# leak checking is off for the mpirun ranks only. The same program's leaks are
# checked in one process by test_letters, and jx's MPI paths by test_dist_mpi and
# test_pmap_mpi_np, which suppress MPI's libraries by name.
MPI_ASAN="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export JX_CACHE_DIR=$tmp/cache
mkdir -m 700 "$JX_CACHE_DIR"
# small and quick: few images, one epoch, plain SGD (no per-process optimizer state to drift)
ARGS=(--per-font 4 --test-per-font 2 --epochs 1 --batch 64 --opt sgd --seed 7 --shift 0 --no-progress)
# the single-process reference; it also renders the data set the others reuse
if ! "$LETTERS" "${ARGS[@]}" --out "$tmp/one" --save "$tmp/one.npz" >"$tmp/one.txt" 2>&1; then
  if grep -qi "freetype" "$tmp/one.txt"; then echo "letters dp test: no FreeType to render letters: skipped"; exit 77; fi
  cat "$tmp/one.txt"; echo "letters dp test: the single-process run failed"; exit 1
fi
acc=$(grep "^test accuracy" "$tmp/one.txt")
fail=0
# compare NAME: NAME.npz against one.npz, and NAME.txt's accuracy line
compare() {
  local name=$1
  "$PY" - "$tmp/one.npz" "$tmp/$name.npz" <<'PY' || fail=1
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
worst = 0.0
assert sorted(a.files) == sorted(b.files), (a.files, b.files)
# per array, relative to its largest magnitude (as test_letters measures):
# sums split over shards round differently, by an ulp of the array's scale,
# which elementwise ratios would inflate on its near-zero entries
for k in a.files:
    x, y = a[k].astype(np.float64), b[k].astype(np.float64)
    assert x.shape == y.shape, (k, x.shape, y.shape)
    scale = float(np.max(np.abs(x))) if x.size else 0.0
    d = float(np.max(np.abs(x - y))) / (scale if scale > 0 else 1.0) if x.size else 0.0
    worst = d if not d <= worst else worst  # NaN counts as worst
print(f"  max relative difference {worst:.3g} (limit 1e-5)")
sys.exit(0 if worst <= 1e-5 else 1)
PY
  local acc2
  acc2=$(grep "^test accuracy" "$tmp/$name.txt" | head -1)
  [ "$acc2" = "$acc" ] || { echo "  accuracy differs: '$acc2' vs '$acc'"; fail=1; }
}
DATA=(--data "$tmp/one/data/")
if [ $has_dp = 1 ]; then
  echo "== mpirun -np 2 letters --data-parallel"
  if ASAN_OPTIONS=$MPI_ASAN timeout 600 mpirun --allow-run-as-root --oversubscribe -np 2 "$LETTERS" --data-parallel "${ARGS[@]}" "${DATA[@]}" \
      --out "$tmp/dp" --save "$tmp/dp.npz" >"$tmp/dp.txt" 2>&1; then
    compare dp
  else
    cat "$tmp/dp.txt"; echo "  the two-process run failed"; fail=1
  fi
  if [ $has_dev = 1 ]; then
    echo "== mpirun -np 2 letters --data-parallel --devices 2 (4 shards)"
    if ASAN_OPTIONS=$MPI_ASAN timeout 600 mpirun --allow-run-as-root --oversubscribe -np 2 "$LETTERS" --data-parallel --devices 2 "${ARGS[@]}" \
        "${DATA[@]}" --out "$tmp/dp4" --save "$tmp/dp4.npz" >"$tmp/dp4.txt" 2>&1; then
      compare dp4
    else
      cat "$tmp/dp4.txt"; echo "  the two-process, two-device run failed"; fail=1
    fi
  fi
else
  echo "== letters --data-parallel: not available (no flag, or no MPI): skipped"
fi
if [ $has_dev = 1 ]; then
  echo "== letters --devices 2"
  if timeout 600 "$LETTERS" --devices 2 "${ARGS[@]}" "${DATA[@]}" --out "$tmp/dev" --save "$tmp/dev.npz" \
      >"$tmp/dev.txt" 2>&1; then
    compare dev
  else
    cat "$tmp/dev.txt"; echo "  the two-device run failed"; fail=1
  fi
fi
[ $fail = 0 ] && echo "letters dp test: passed ($acc)"
exit $fail
