#!/bin/bash
# peers.sh - the peer baselines jx is compared with, at reduced repetition counts (~2-3 min in all).
#
#   bash bench/peers.sh [section ...]     sections: build dispatch fusion mlp sgemm   (default: all)
#
# Runs the read-only scripts in $PEERS (default /work/shared/bench/peers): dispatch_bench.py,
# fusion_bench.py (short), mlp_bench.py --threads 1 and --threads 2, and the OpenBLAS sgemm program,
# building the C peers into $BUILD (default /tmp/peers-build) when needed. Each section's output goes
# to $RESULTS/<section>.txt (default /tmp/jx-peers) and to stdout. A peer whose Python modules are
# missing is skipped with a message; where the full script cannot run, a small numpy-only stand-in
# measures the numpy number that bench/run.sh's summary needs (and says so).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
PEERS=${PEERS:-$HERE/../../shared/bench/peers}
[ -d "$PEERS" ] || PEERS=/work/shared/bench/peers
export BUILD=${BUILD:-/tmp/peers-build}
RESULTS=${RESULTS:-/tmp/jx-peers}
PY=${PY:-/usr/bin/python3}
mkdir -p "$RESULTS"

have_py() { "$PY" -c "import $1" >/dev/null 2>&1; }
banner() { echo; echo "=== peers: $* ($(date -u +%H:%M:%S), load $(cut -d" " -f1 /proc/loadavg))"; }

sec_build() {
  # The peers' Debian packages (their README's setup line), installed when this runs as root with
  # apt-get and one is missing; JX_BENCH_NO_INSTALL=1 skips it. Without them the peers are skipped.
  if [ "${JX_BENCH_NO_INSTALL:-0}" != 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null &&
     ! { have_py numpy && have_py torch && have_py numba && pkg-config --exists openblas 2>/dev/null; }; then
    echo "installing the peers' packages (python3-numpy python3-torch python3-numba libopenblas-dev; a few minutes)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-numpy python3-torch python3-numba \
        libopenblas-dev; } >/dev/null 2>&1 || echo "peers.sh: apt-get install failed; peers that need them are skipped"
  fi
  if [ -x "$BUILD/sgemm" ] && [ -f "$BUILD/libfused.so" ] && [ -x "$BUILD/fused" ]; then
    echo "peers already built in $BUILD"
  else
    (cd "$PEERS" && BUILD="$BUILD" sh ./build.sh) || echo "SKIP: peer C build failed (gcc/libopenblas-dev missing?)"
  fi
}

sec_dispatch() {
  banner "dispatch_bench.py (numpy/torch 0-d and 1000-elem add; torch grad(tanh))"
  if have_py numpy && have_py torch; then
    "$PY" "$PEERS/dispatch_bench.py" --ops 30000 --reps 7
  elif have_py numpy; then
    echo "SKIP: torch not importable by $PY (apt-get install -y python3-torch); numpy-only stand-in:"
    "$PY" - <<'EOF'
import numpy as np, statistics, time
a, b = np.array(1.5, np.float32), np.array(2.5, np.float32)
c, d = np.ones(1000, np.float32), np.ones(1000, np.float32)
for name, x, y in (("numpy  add 0-d float32 arrays", a, b), ("numpy  add 1000-elem float32 arrays", c, d)):
    per = []
    for r in range(9):
        t0 = time.perf_counter()
        for _ in range(30000): x + y
        if r >= 2: per.append((time.perf_counter() - t0) / 30000 * 1e6)
    print(f"{name:44s} median {statistics.median(per):7.3f} µs  (min {min(per):7.3f} max {max(per):7.3f})")
EOF
  else
    echo "SKIP: numpy not importable by $PY (apt-get install -y python3-numpy)"
  fi
}

sec_fusion() {
  banner "fusion_bench.py (slow_f on f32[2000,2000]: numpy, torch, numba, C via ctypes), short"
  if have_py numpy && have_py torch && have_py numba && [ -f "$BUILD/libfused.so" ]; then
    "$PY" "$PEERS/fusion_bench.py" --rounds 5 --per 3 --lib "$BUILD/libfused.so" | grep -v '^# compile'
  elif have_py numpy; then
    echo "SKIP: fusion_bench.py needs numpy, torch, numba and $BUILD/libfused.so; numpy-only stand-in:"
    "$PY" - <<'EOF'
import numpy as np, statistics, time
x = np.ones((2000, 2000), np.float32)
f = lambda x: x * x * x + x * 2.0 * x + x
t = []
for r in range(16):
    t0 = time.perf_counter(); f(x); dt = time.perf_counter() - t0
    if r >= 1: t.append(dt * 1e3)
print(f"{'numpy eager':34s} {statistics.median(t):8.3f} {min(t):8.3f} {max(t):8.3f}  (stand-in, ms)")
EOF
  else
    echo "SKIP: numpy not importable by $PY"
  fi
}

sec_mlp() {
  banner "mlp_bench.py (1296-512-512-26 tanh MLP, batch 128, CE, SGD; per-example grads)"
  if ! have_py torch; then echo "SKIP: torch not importable by $PY (apt-get install -y python3-torch)"; return; fi
  local common="--steps 5 --reps 5 --pe-reps 3"
  "$PY" "$PEERS/mlp_bench.py" --threads 1 $common
  # 2 torch threads + 2 OpenBLAS threads spin-wait against each other on 2 cores unless passive
  OMP_WAIT_POLICY=passive "$PY" "$PEERS/mlp_bench.py" --threads 2 $common
  # torch's own default on this box: 1 intra-op thread, OpenBLAS 2 threads
  "$PY" "$PEERS/mlp_bench.py" --threads 1 --blas-threads 2 --no-pe --steps 5 --reps 5
}

sec_sgemm() {
  banner "sgemm (OpenBLAS cblas_sgemm, C)"
  if [ ! -x "$BUILD/sgemm" ]; then echo "SKIP: $BUILD/sgemm not built (libopenblas-dev missing?)"; return; fi
  for t in 1 2; do OPENBLAS_NUM_THREADS=$t "$BUILD/sgemm" 5 31; done
}

sections=("$@")
[ ${#sections[@]} -gt 0 ] || sections=(build dispatch fusion mlp sgemm)
for s in "${sections[@]}"; do
  case $s in
    build) sec_build ;;
    dispatch|fusion|mlp|sgemm)
      sec_build >/dev/null 2>&1
      "sec_$s" 2>&1 | tee "$RESULTS/$s.txt" ;;
    *) echo "peers.sh: unknown section '$s' (build dispatch fusion mlp sgemm)" >&2; exit 2 ;;
  esac
done
