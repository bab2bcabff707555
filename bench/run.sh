#!/bin/bash
# run.sh - jx's benchmarks side by side with the peers, and a summary table of ratios.
#
#   bash bench/run.sh [jx-build-dir]      (`make bench` runs `bash bench/run.sh build`)
#   bash bench/run.sh --summary OUTDIR    (reprint the summary table of an earlier run)
#
# Builds the benchmarks if needed, builds the C peers into $BUILD (default /tmp/peers-build), then
# runs, alternating jx and peer processes so that slow drift on the shared box hits both sides:
#   peers dispatch+fusion -> jx bench_eager (+ a --memory pass) -> peers mlp -> jx bench_gemm
#   -> peers sgemm -> eager slow_f: bench_eager and slowf_numpy.py, 5 alternating rounds
#   -> jx_matmul and sgemm.c at jx's thread count, 5 alternating rounds
#   -> scan RNN: jx loops / jx JX_JIT_LOOPS=0 / rnn_torch.py, 3 rounds, and compile time at 100
#   and 1000 steps -> bench_train (an epoch vs PyTorch, 3 rounds) -> bench_pmap (2 devices vs 1)
#   -> bench_export (exported C vs jit, and bench/export_torch.py) -> remat/jacobian/bounded-loop benches -> bench/dp.sh
#   (letters epoch, 2 processes and 2 devices vs 1) -> bench/dist.sh (allreduce vs MPI) ->
#   bench_pmap_mpi (psum in pmap vs MPI) -> bench_scatter (scatter-add of 1M updates vs a copy
#   loop's bandwidth, scatter.txt) -> bench_einsum (einsum vs matmul, einsum.txt) -> bench/conv.sh
# (~10 min on the 2-core box). Everything is logged to $OUT (default /tmp/jx-bench-<UTC time>/):
# run.txt (all output), eager.tsv, memory.tsv, gemm.txt, sf<r>.tsv, np_sf<r>.txt, mm<r>.tsv and
# sgemm_t<r>.txt (the alternating rounds), scan.txt, train.txt and the peers' <section>.txt.
# JX_BENCH_QUICK=1 skips the scan and training parts.
# Environment: JX_BENCH_REPS (bench_eager --reps, default 21), JX_GEMM_SCALE (bench_gemm scale,
# default 0.5), JX_BENCH_QUICK=1 (bench_eager --quick, peers unchanged), PEERS (peer scripts dir).
# A peer that cannot run (numpy/torch/numba or OpenBLAS missing) is skipped with a message and its
# ratios show as n/a. Ratios are jx time / peer time of medians: below 1 means jx is faster.
set -u
cd "$(dirname "$0")/.."
SUMMARY_ONLY=0
if [ "${1:-}" = --summary ]; then   # bash bench/run.sh --summary /tmp/jx-bench-...: reprint a run's table
  SUMMARY_ONLY=1; OUT=${2:?usage: run.sh --summary OUTDIR}
else
JXB=${1:-build}
export BUILD=${BUILD:-/tmp/peers-build}
OUT=${OUT:-/tmp/jx-bench-$(date -u +%Y%m%dT%H%M%SZ)}
export RESULTS=$OUT
mkdir -p "$OUT"
exec > >(tee "$OUT/run.txt") 2>&1

echo "=== jx bench/run.sh  $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine: nproc=$(nproc)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cpu: $(bash bench/cpu_info.sh)"
# OpenBLAS's best kernel for this CPU, for the GEMM peers (it may not recognize the CPU itself)
BLAS_BEST=$(bash bench/cpu_info.sh --openblas-core)
echo "jx: $(git log -1 --format='%h %s' 2>/dev/null | cut -c1-80)$(git diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
echo "output: $OUT"

# ---------------------------------------------------------------- build
if [ ! -f "$JXB/Makefile" ] && [ ! -f "$JXB/build.ninja" ]; then
  cmake -S . -B "$JXB" >/dev/null || { echo "run.sh: cmake configure failed"; exit 1; }
fi
if ! cmake --build "$JXB" --target bench_eager bench_gemm bench_scan bench_train bench_pmap bench_scatter bench_einsum -j "$(nproc)" >"$OUT/build.log" 2>&1; then
  tail -20 "$OUT/build.log"
  echo "run.sh: building bench_eager/bench_gemm failed (log: $OUT/build.log)"
  exit 1
fi
bash bench/peers.sh build

EAGER_ARGS=(--tsv "$OUT/eager.tsv" --no-matmul)   # jx_matmul: its own section below
[ -n "${JX_BENCH_REPS:-}" ] && EAGER_ARGS+=(--reps "$JX_BENCH_REPS")
[ "${JX_BENCH_QUICK:-0}" = 1 ] && EAGER_ARGS+=(--quick)

# ---------------------------------------------------------------- run, alternating
bash bench/peers.sh dispatch fusion
echo; echo "=== jx: bench_eager ${EAGER_ARGS[*]} ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))"
# a fresh compile cache: the "first call" rows then include a cold C compile
JX_LOG=cache JX_CACHE_DIR="$OUT/jx-cache" "$JXB/bench/bench_eager" "${EAGER_ARGS[@]}" 2>"$OUT/eager.progress" || { cat "$OUT/eager.progress"; echo "bench_eager FAILED"; }
grep -E "WARNING|note:|cache (budget|probe)" "$OUT/eager.progress"
echo; echo "=== jx: bench_eager --compile-only x3 (new processes on that cache: jx_jit_compile of the MLP step loads it from disk)"
for r in 1 2 3; do
  JX_CACHE_DIR="$OUT/jx-cache" "$JXB/bench/bench_eager" --compile-only --reps 1 --tsv "$OUT/reload$r.tsv" 2>/dev/null | grep -E "^mlp_compile"
done
echo; echo "=== jx: bench_eager --only pe --memory (peak bytes of the per-example call; counting allocator, no buffer cache)"
JX_CACHE_DIR="$OUT/jx-cache" "$JXB/bench/bench_eager" --only pe --memory --reps 1 --tsv "$OUT/memory.tsv" 2>/dev/null | grep -E "^pe_(bytes|peak|kept)" || echo "bench_eager --memory FAILED"
bash bench/peers.sh mlp
echo; echo "=== jx: bench_gemm ${JX_GEMM_SCALE:-0.5} ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))"
# twice: OpenBLAS on its best kernel for this CPU (gemm.txt, what the summary reads), then as it
# detects the CPU by itself (gemm_detected.txt)
echo "OpenBLAS with OPENBLAS_CORETYPE=$BLAS_BEST:"
OPENBLAS_CORETYPE=$BLAS_BEST "$JXB/bench/bench_gemm" "${JX_GEMM_SCALE:-0.5}" | tee "$OUT/gemm.txt" || echo "bench_gemm FAILED"
echo "OpenBLAS as it detects the CPU (OPENBLAS_CORETYPE unset):"
env -u OPENBLAS_CORETYPE "$JXB/bench/bench_gemm" "${JX_GEMM_SCALE:-0.5}" | tee "$OUT/gemm_detected.txt" || echo "bench_gemm FAILED"
bash bench/peers.sh sgemm
# jx_matmul (jx's default GEMM path) against cblas_sgemm at jx's thread count: the two in separate
# processes, alternated round by round (OpenBLAS's threaded calls disturb jx's pool when they share
# a process; see bench_eager.c's bench_matmul), both timed back to back after 3 untimed calls
# eager slow_f against NumPy the same way: bench_eager's slow_f section and bench/slowf_numpy.py (the
# same timing protocol; glibc keeps NumPy's 16 MB blocks, so NumPy runs without page faults, at its
# best), alternated process by process
PYB=${PY:-/usr/bin/python3}
if "$PYB" -c "import numpy" >/dev/null 2>&1; then
  echo; echo "=== eager slow_f: jx bench_eager vs NumPy, alternating processes, 5 rounds ($(date -u +%H:%M:%S))"
  for r in 1 2 3 4 5; do
    "$JXB/bench/bench_eager" --only slowf --no-peer --reps 7 --tsv "$OUT/sf$r.tsv" 2>/dev/null | grep -E "^slowf_eager" | sed "s/^/round $r  /"
    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=1073741824 \
      "$PYB" bench/slowf_numpy.py 7 | tee "$OUT/np_sf$r.txt" | sed "s/^/round $r  /"
    if "$PYB" -c "import torch" >/dev/null 2>&1; then
      GLIBC_TUNABLES=glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=1073741824 \
        "$PYB" bench/slowf_numpy.py 7 torch | tee "$OUT/torch_sf$r.txt" | sed "s/^/round $r  /"
    fi
  done
fi
T=${JX_NUM_THREADS:-$(nproc)}
echo; echo "=== jx_matmul vs OpenBLAS sgemm.c (OPENBLAS_CORETYPE=$BLAS_BEST) at $T threads, alternating processes, 5 rounds ($(date -u +%H:%M:%S))"
for r in 1 2 3 4 5; do
  "$JXB/bench/bench_eager" --only matmul --tsv "$OUT/mm$r.tsv" 2>"$OUT/mm.progress" | grep -E "^mm" | sed "s/^/round $r  /"
  if [ -x "$BUILD/sgemm" ]; then
    OPENBLAS_CORETYPE=$BLAS_BEST OPENBLAS_NUM_THREADS=$T "$BUILD/sgemm" 7 51 2>&1 | grep -E "^openblas" | tee "$OUT/sgemm_t$r.txt" | sed "s/^/round $r  /"
  fi
done
if [ "${JX_BENCH_QUICK:-0}" != 1 ]; then
  # the scan RNN (issue 6): compiled loops, the runtime loop (JX_JIT_LOOPS=0) and PyTorch's
  # Python loop, interleaved; then compile time at 100 and 1000 steps
  echo; echo "=== scan RNN: jx (loops in generated C), jx JX_JIT_LOOPS=0, PyTorch eager loop ($(date -u +%H:%M:%S))"
  for r in 1 2 3; do
    "$JXB/bench/bench_scan" 9 | grep median | sed 's/^/loops  /' | tee -a "$OUT/scan.txt"
    JX_JIT_LOOPS=0 "$JXB/bench/bench_scan" 9 | grep median | sed 's/^/calls  /' | tee -a "$OUT/scan.txt"
    ${PY:-/usr/bin/python3} bench/rnn_torch.py 9 "$(nproc)" 2>&1 | grep -i median | sed 's/^/torch  /' | tee -a "$OUT/scan.txt"
  done
  for n in 100 1000; do "$JXB/bench/bench_scan" 3 $n | grep "compile" | tee -a "$OUT/scan.txt"; done
  # one training epoch of the demo network against PyTorch eager (issue 7)
  echo; echo "=== jx: bench_train vs PyTorch ($(date -u +%H:%M:%S))"
  "$JXB/bench/bench_train" --rounds 3 2>/dev/null | tee "$OUT/train.txt"
  echo; echo "=== jx: bench_pmap, data parallel on 2 in-process devices ($(date -u +%H:%M:%S))"
  "$JXB/bench/bench_pmap" --steps 40 --rounds 3 2>/dev/null | tee "$OUT/pmap.txt"
  # exported C (jx_export_c) vs jit, one thread: letters predict at batch 1 and 128, the
  # training step; code size and workspace bytes (issue 20)
  echo; echo "=== jx: bench_export, exported C vs jit ($(date -u +%H:%M:%S))"
  cmake --build "$JXB" --target bench_export -j "$(nproc)" >>"$OUT/build.log" 2>&1 &&
    "$JXB/bench/bench_export" --reps 41 2>&1 | tee "$OUT/export.txt"
  # the same predict in PyTorch eager, one thread (issue 20 asks for the batch-1 comparison)
  if "${PY:-/usr/bin/python3}" -c "import torch" >/dev/null 2>&1; then
    "${PY:-/usr/bin/python3}" bench/export_torch.py 41 2>&1 | grep median | tee -a "$OUT/export.txt"
  fi
  # issue 19: checkpoint (peak bytes, time), batched Jacobians, bounded while's backward pass
  echo; echo "=== jx: checkpoint, jacobians, while_loop_bounded ($(date -u +%H:%M:%S))"
  cmake --build "$JXB" --target bench_remat bench_jac bench_bounded -j "$(nproc)" >>"$OUT/build.log" 2>&1
  { "$JXB/bench/bench_remat" 32 1024 256 3; "$JXB/bench/bench_jac" 100 21; "$JXB/bench/bench_bounded" 21; } | tee "$OUT/custom.txt"
  # issue 19: bf16 mixed-precision training of the letters MLP vs f32 (one round of 10 epochs each)
  echo; echo "=== jx: bench/mixed.sh, letters in bf16 mixed precision vs f32 ($(date -u +%H:%M:%S))"
  bash bench/mixed.sh "$JXB" 1 10 | tee "$OUT/mixed.txt"
  echo; echo "=== jx: bench/dp.sh, letters epoch: 2 processes / 2 devices x 1 thread vs 1 ($(date -u +%H:%M:%S))"
  bash bench/dp.sh "$JXB" | tee "$OUT/dp.txt"
fi
# the process layer against plain MPI, 2 processes (issue 17; skipped without MPI)
echo; echo "=== jx: bench/dist.sh (jx_dist_allreduce vs MPI_Allreduce, MPI latency/bandwidth) ($(date -u +%H:%M:%S))"
bash bench/dist.sh "$JXB" | tee "$OUT/dist.txt"
echo; echo "=== jx: bench_pmap_mpi, psum of the MLP's gradients in pmap vs MPI_Allreduce ($(date -u +%H:%M:%S))"
if command -v mpirun >/dev/null && cmake --build "$JXB" --target bench_pmap_mpi -j "$(nproc)" >/dev/null; then
  OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none} \
    mpirun --allow-run-as-root --oversubscribe -np 2 "$JXB/bench/bench_pmap_mpi" 41 | tee "$OUT/pmap_mpi.txt"
else
  echo "bench_pmap_mpi: no mpirun (or the build failed): skipped"
fi
echo; echo "=== jx: bench_scatter: scatter-add of 1M f32 updates vs a copy loop's bandwidth ($(date -u +%H:%M:%S))"
"$JXB/bench/bench_scatter" 15 | tee "$OUT/scatter.txt"
echo; echo "=== jx: bench_kvcache: a KV-cache scan under jit, per-step cost by T (in-place dynamic_update_slice) ($(date -u +%H:%M:%S))"
cmake --build "$JXB" --target bench_kvcache -j "$(nproc)" >/dev/null && "$JXB/bench/bench_kvcache" 21 256 256 1024 4096 | tee "$OUT/kvcache.txt"
# einsum vs the hand-written matmuls on the same shapes (issue 18), eager and jit
echo; echo "=== jx: bench_einsum ($(date -u +%H:%M:%S))"
"$JXB/bench/bench_einsum" 21 | tee "$OUT/einsum.txt" || echo "bench_einsum FAILED"
# convolutions and the CNN training step vs PyTorch eager, alternating (issue 18)
echo; echo "=== jx: bench/conv.sh (conv layer, its gradients, the CNN step vs PyTorch) ($(date -u +%H:%M:%S))"
bash bench/conv.sh "$JXB" | tee "$OUT/conv.txt"
echo; echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min; 2 cores: above ~0.5 another job shares the box)"
fi

# ---------------------------------------------------------------- summary
PYS=/usr/bin/python3
command -v $PYS >/dev/null || PYS=python3
echo
$PYS - "$OUT" <<'EOF'
import os, re, sys
out = sys.argv[1]
def read(name):
    try:
        with open(os.path.join(out, name), encoding="utf-8", errors="replace") as f: return f.read()
    except OSError: return ""
jx = {}
for name, keys in (("eager.tsv", None), ("memory.tsv", ("pe_peak_mb", "pe_kept_mb"))):
    for line in read(name).splitlines():  # memory.tsv: only its memory rows (its timings ran without the buffer cache)
        p = line.split("\t")
        if len(p) >= 2 and (keys is None or p[0] in keys):
            try: jx[p[0]] = float(p[1])
            except ValueError: pass
def grab(text, pat, group=1):
    m = re.search(pat, text, re.M)
    return float(m.group(group)) if m else None
disp, fus, mlp, gemm = read("dispatch.txt"), read("fusion.txt"), read("mlp.txt"), read("gemm.txt")
np_add0 = grab(disp, r"^numpy  add 0-d float32 arrays\s+median\s+([\d.]+)")
np_add1k = grab(disp, r"^numpy  add 1000-elem float32 arrays\s+median\s+([\d.]+)")
th_add0 = grab(disp, r"^torch  add 0-d float32 tensors\s+median\s+([\d.]+)")
th_bwd = grab(disp, r"^torch  tanh\(x\); y\.backward\(\)\s+\(0-d\)\s+median\s+([\d.]+)")
th_agrad = grab(disp, r"^torch  autograd\.grad\(tanh\(x\), x\)\s+\(0-d\)\s+median\s+([\d.]+)")
def fz(name): return grab(fus, r"^" + re.escape(name) + r"\s+([\d.]+)")
np_slow, c_malloc, c_copy = fz("numpy eager"), fz("C 2 threads malloc/free"), fz("LB: C copy 16MB->16MB 2 threads")
th_slow2 = fz("torch eager 2 threads")
steps, fwds, pev, pel = {}, {}, {}, {}
for m in re.finditer(r"^train step \(fwd\+bwd\+SGD\) \[torch_threads=(\d+) blas_threads=(\d+) OMP_WAIT_POLICY=(\S+)\]: median ([\d.]+)", mlp, re.M):
    steps[(m.group(1), m.group(2), m.group(3))] = float(m.group(4))
for m in re.finditer(r"^forward only \(no_grad\)\s+\[torch_threads=(\d+) blas_threads=(\d+) OMP_WAIT_POLICY=(\S+)\]: median ([\d.]+)", mlp, re.M):
    fwds[(m.group(1), m.group(2), m.group(3))] = float(m.group(4))
for m in re.finditer(r"^per-example grads functorch\.vmap\(grad\) B=128 \[torch_threads=(\d+) blas_threads=(\d+) OMP_WAIT_POLICY=(\S+)\]: median ([\d.]+)", mlp, re.M):
    pev[(m.group(1), m.group(2), m.group(3))] = float(m.group(4))
for m in re.finditer(r"^per-example grads naive loop of 128 backward passes \[torch_threads=(\d+) blas_threads=(\d+) OMP_WAIT_POLICY=(\S+)\]: median ([\d.]+)", mlp, re.M):
    pel[(m.group(1), m.group(2), m.group(3))] = float(m.group(4))
def cfgname(k): return f"{k[0]} thr + BLAS {k[1]}" + ("" if k[2] == "(unset)" else f", OMP_WAIT_POLICY={k[2]}")
def best(d):
    if not d: return None, None
    k = min(d, key=d.get); return d[k], cfgname(k)
gemm_rows = []
for line in gemm.splitlines():
    m = re.match(r"^(\S.{0,17}?)\s+(\d+)\s+([\d.]+)\s+[\d.]+\s+([\d.]+)\s+[\d.]+\s+(\d+)%", line)
    if m: gemm_rows.append((m.group(1).strip(), int(m.group(2)), float(m.group(3)), float(m.group(4))))

T = jx.get("threads")
m = re.search(r"jx_matmul f32 \(GEMM backend: ([^)]*)\)", read("mm.progress"))
jx_gemm = m.group(1) if m else None
rows = []
def add(what, jv, pv, unit, peer, note=""):
    rows.append((what, jv, pv, unit, peer, note))
add("0-d f32 add, per op", jx.get("add0d"), np_add0, "us", "NumPy 0-d float32 add")
add("1000-elem f32 add, per op", jx.get("add1k"), np_add1k, "us", "NumPy 1000-elem add")
add("0-d f32 add, per op", jx.get("add0d"), th_add0, "us", "torch 0-d add")
add("slow_f eager (2000x2000 f32)", jx.get("slowf_eager"), np_slow, "ms", "NumPy eager slow_f")
add("slow_f eager (2000x2000 f32)", jx.get("slowf_eager"), th_slow2, "ms", "torch eager, 2 threads")
add("jit(slow_f)", jx.get("slowf_jit"), jx.get("c_fused_malloc2"), "ms", "fused.c malloc/free 2 thr", "same process")
add("jit(slow_f)", jx.get("slowf_jit"), c_malloc, "ms", "fused.c malloc/free 2 thr", "fusion_bench.py run")
add("jit(slow_f)", jx.get("slowf_jit"), jx.get("c_copy16mb2"), "ms", "16 MB->16 MB copy 2 thr", "same process")
add("jit(slow_f)", jx.get("slowf_jit"), c_copy, "ms", "16 MB->16 MB copy 2 thr", "fusion_bench.py run")
add("grad(tanh) 0-d, per call", jx.get("grad_tanh"), th_bwd, "us", "torch tanh(x).backward()")
add("jit(grad(tanh)) 0-d, per call", jx.get("jit_grad_tanh"), th_bwd, "us", "torch tanh(x).backward()")
add("grad(tanh) 0-d, per call", jx.get("grad_tanh"), th_agrad, "us", "torch autograd.grad")
for key, what in (("mlp_eager", "MLP step, eager"), ("mlp_jit", "MLP step, jit(value_and_grad)+eager SGD"),
                  ("mlp_jitstep", "MLP step, jit(whole step)")):
    v, c = best(steps); add(what, jx.get(key), v, "ms", "torch eager step, best: " + (c or "n/a"))
add("MLP step, jit(whole step)", jx.get("mlp_jitstep"), jx.get("mlp_gemm_floor"), "ms", "its 8 GEMMs alone, cblas direct", "same process")
for key, what in (("mlp_fwd", "MLP forward+loss, eager"), ("mlp_jitfwd", "MLP forward+loss, jit")):
    v, c = best(fwds); add(what, jx.get(key), v, "ms", "torch no_grad fwd, best: " + (c or "n/a"))
v, c = best(pev); add("per-example grads jit(vmap(grad))", jx.get("pe_vmap"), v, "ms", "functorch vmap(grad), best: " + (c or "n/a"))
v, c = best(pel); add("per-example grads, 128-grad loop", jx.get("pe_loop"), v, "ms", "torch naive loop, best: " + (c or "n/a"))
for r in gemm_rows:
    if r[0] in ("2000x2000x2000", "128x1296x512"):
        add(f"GEMM builtin {r[0]}, {r[1]} thr", r[2], r[3], "ms", "OpenBLAS sgemm", "bench_gemm, same process")
    if r[0] == "bf16 2000^3":  # [BF16] bf16 x bf16 -> f32, default kernel, against jx's own f32
        add(f"GEMM bf16->f32 2000^3, {r[1]} thr", r[2], r[3], "ms", "jx f32 built-in", "bench_gemm, same process")
def median(v):
    v = sorted(v); n = len(v)
    return None if not n else (v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2]))
mm_rounds, sg_rounds = {}, {}
for r in range(1, 6):
    for line in read(f"mm{r}.tsv").splitlines():
        p = line.split("\t")
        if len(p) >= 2 and p[0] in ("mm2000", "mm_mlp"): mm_rounds.setdefault(p[0], []).append(float(p[1]))
    for m in re.finditer(r"^openblas sgemm (\d+)x\d+ @ \d+x\d+ threads=(\d+)\s+median ([\d.]+) ms", read(f"sgemm_t{r}.txt"), re.M):
        sg_rounds.setdefault(m.group(1), []).append(float(m.group(3)))
sf_jx = [float(l.split("\t")[1]) for r in range(1, 6) for l in read(f"sf{r}.tsv").splitlines() if l.startswith("slowf_eager\t")]
sf_np = [float(m.group(1)) for r in range(1, 6) for m in re.finditer(r"^numpy slow_f eager \S+\s+median ([\d.]+)", read(f"np_sf{r}.txt"), re.M)]
sf_tc = [float(m.group(1)) for r in range(1, 6) for m in re.finditer(r"^torch slow_f eager \S+\s+median ([\d.]+)", read(f"torch_sf{r}.txt"), re.M)]
if sf_jx or sf_np:
    add("slow_f eager (2000x2000 f32)", median(sf_jx), median(sf_np), "ms", "NumPy eager, no page faults",
        f"alternating processes, median of {len(sf_jx)} rounds")
if sf_jx and sf_tc:
    add("slow_f eager (2000x2000 f32)", median(sf_jx), median(sf_tc), "ms", "torch eager 2 thr, no page faults",
        f"alternating processes, median of {len(sf_tc)} rounds")
for shp, key in (("2000", "mm2000"), ("128", "mm_mlp")):
    n = len(mm_rounds.get(key, []))
    add(f"jx_matmul {'2000^3' if shp == '2000' else '128x1296x512'}", median(mm_rounds.get(key, [])),
        median(sg_rounds.get(shp, [])), "ms", f"OpenBLAS sgemm.c, {int(T or 2)} thr",
        f"alternating processes, median of {n} rounds")

scan = read("scan.txt")
def med(tag):
    v = sorted(float(m.group(1)) for m in re.finditer(r"^" + tag + r"\s.*?median\s+([\d.]+)", scan, re.M))
    return v[len(v) // 2] if v else None
add("scan RNN fwd+bwd, jit, loops in C", med("loops"), med("torch"), "ms", "PyTorch eager Python loop", "bench_scan / rnn_torch.py")
add("scan RNN fwd+bwd, jit, JX_JIT_LOOPS=0", med("calls"), med("loops"), "ms", "jx loops in C", "same run")
tr = read("train.txt")
m = re.search(r"ratio jx SGD epoch / torch SGD epoch.*?median ([\d.]+)", tr)
train_ratio = float(m.group(1)) if m else None
def f(x): return "n/a" if x is None else (f"{x:.3f}" if x < 100 else f"{x:.1f}")
print(f"=== summary: medians; ratio = jx / peer (< 1: jx faster); jx threads = {int(T) if T else '?'}; "
      f"jx_matmul uses jx's default GEMM path ({jx_gemm or '?'})")
hdr = f"{'measurement':42s} {'jx':>9s} {'peer':>9s} {'unit':4s} {'ratio':>7s}  peer (note)"
print(hdr); print("-" * len(hdr))
for what, jv, pv, unit, peer, note in rows:
    ratio = f"{jv / pv:.2f}" if jv and pv else "n/a"
    print(f"{what:42s} {f(jv):>9s} {f(pv):>9s} {unit:4s} {ratio:>7s}  {peer}{'  (' + note + ')' if note else ''}")
extra = []
if "pe_loop_over_vmap" in jx: extra.append(f"jx per-example: loop/vmap = {jx['pe_loop_over_vmap']:.2f}x")
if pev and pel:
    k = min(pev, key=pev.get)
    if k in pel: extra.append(f"torch per-example: loop/vmap = {pel[k] / pev[k]:.2f}x ({cfgname(k)})")
if "pe_bytes" in jx: extra.append(f"per-example gradients: {jx['pe_bytes']:.1f} MB")
if "mlp_compile" in jx: extra.append(f"jx_jit_compile(jit(step)), cold cache (trace + passes + C build): {jx['mlp_compile']:.1f} ms")
reload = sorted(float(l.split("\t")[1]) for r in (1, 2, 3) for l in read(f"reload{r}.tsv").splitlines() if l.startswith("mlp_compile\t"))
if reload: extra.append(f"jx_jit_compile(jit(step)) in a new process, from the disk cache: median {reload[len(reload) // 2]:.1f} ms of {len(reload)} processes")
if "pe_peak_mb" in jx and "pe_bytes" in jx:
    extra.append(f"per-example call peak allocation: {jx['pe_peak_mb']:.1f} MB = {jx['pe_peak_mb'] / jx['pe_bytes']:.2f}x the gradients "
                 f"({jx.get('pe_kept_mb', 0):.1f} MB still held as the result)")
for k, lbl in (("slowf_jit_first", "jit(slow_f) first call"), ("mlp_jit_first", "jit(value_and_grad) first call"),
               ("pe_first", "jit(vmap(grad)) first call")):
    if k in jx: extra.append(f"{lbl} (trace + cold compile + run): {jx[k]:.1f} ms")
for m in re.finditer(r"^jx trace \+ compile,\s+(\d+) steps:\s+([\d.]+) ms", scan, re.M):
    extra.append(f"scan RNN trace + compile at {m.group(1)} steps: {float(m.group(2)):.1f} ms")
if train_ratio is not None: extra.append(f"one training epoch, jx SGD / torch SGD (median of rounds): {train_ratio:.2f}")
for e in extra: print("  " + e)
EOF
[ $SUMMARY_ONLY = 1 ] || { echo; echo "full log: $OUT/run.txt"; }
