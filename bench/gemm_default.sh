#!/bin/bash
# gemm_default.sh - which GEMM path is fastest on this machine, shape by shape: the evidence for
# AUTO's rule (gemm.c auto_mode, docs/DESIGN.md "GEMM"). One process per measurement,
# alternating round by round:
#   builtin    jx's built-in kernel (what AUTO runs unless told otherwise)
#   cblas-det  jx's CBLAS path with OpenBLAS as it detects this CPU (no OPENBLAS_CORETYPE)
#   cblas-best jx's CBLAS path with OPENBLAS_CORETYPE set to its best core for this CPU
#   blas-best  (reference) cblas_*gemm called directly with OpenBLAS's own threads, best core
# The CBLAS sides run as jx runs CBLAS (OpenBLAS single-threaded, slabs on jx's pool; M = 1,
# N = 1 and K = 1 products stay on jx's own loops there too). Then, per shape, the fastest of
# the three jx paths, and its margin over the next.
#
#   bash bench/gemm_default.sh [BUILD [ROUNDS]]      (BUILD default build, ROUNDS default 5)
#   SPECS_LIST="f32 2000 2000 2000 2 7;..." bash bench/gemm_default.sh   (other shapes:
#                                                   dt M K N threads reps [ta tb])
#   DET=0 bash bench/gemm_default.sh     (skips the as-detected side: on a CPU OpenBLAS does not
#                                           know it is ~4x slower and takes most of the time)
#   TIER=avx2 bash bench/gemm_default.sh   (an AVX2-only CPU, emulated: jx's AVX2 kernel against
#                                           OpenBLAS's Haswell (Intel) / Zen (AMD) kernels)
# Also prints what AUTO picks with OpenBLAS as detected and with the best core. Run it on a quiet
# machine: the margins that decide are ~10%.
set -u
cd "$(dirname "$0")/.."
B=${1:-build}; R=${2:-5}
OUT=${OUT:-/tmp/jx-gemm-default-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
CORE=$(bash bench/cpu_info.sh --openblas-core)
TIER=${TIER:-}
if [ "$TIER" = avx2 ]; then
  grep -q AuthenticAMD /proc/cpuinfo && CORE=Zen || CORE=Haswell
fi
INC=$(pkg-config --cflags openblas 2>/dev/null)
gcc -O2 -std=c17 -D_GNU_SOURCE -DJX_BENCH_HAVE_CBLAS=1 -Isrc -Iinclude -Ibench $INC bench/bench_gemm.c "$B/libjx.a" \
  $(pkg-config --libs openblas 2>/dev/null || echo -lopenblas) -lm -lpthread -ldl -o "$OUT/gemm" || exit 1
X="$OUT/gemm"
{
  echo "gemm_default.sh $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "cpu: $(bash bench/cpu_info.sh); best OpenBLAS core: $CORE; jx kernel: ${TIER:-best}"
  echo "build: $B ($(git log -1 --format=%h 2>/dev/null))"
  echo "AUTO picks: OpenBLAS as detected: $(env -u OPENBLAS_CORETYPE JX_GEMM= "$X" --auto-backend)," \
    "OPENBLAS_CORETYPE=$CORE: $(OPENBLAS_CORETYPE=$CORE JX_GEMM= "$X" --auto-backend)"
} | tee "$OUT/head.txt"
SPECS=("f32 2000 2000 2000 1 5" "f32 2000 2000 2000 2 7" "f32 128 1296 512 1 101" "f32 128 1296 512 2 101"
  "f64 2000 2000 2000 1 3" "f64 2000 2000 2000 2 5"
  "f32 4096 512 64 1 51" "f32 4096 512 64 2 51" "f32 64 512 4096 1 51" "f32 64 512 4096 2 51"
  "f32 8 1296 512 1 201" "f32 8 1296 512 2 201" "f32 32 1296 512 1 201" "f32 32 1296 512 2 201"
  "f32 1 1296 512 1 201" "f32 2000 1 2000 1 51" "f32 2000 1 2000 2 51"
  "f32 1296 128 512 2 101 1 0" "f32 128 512 1296 2 101 0 1")
[ -n "${SPECS_LIST:-}" ] && IFS=";" read -r -a SPECS <<<"$SPECS_LIST"
for spec in "${SPECS[@]}"; do
  for r in $(seq "$R"); do
    echo "round $r load $(cut -d' ' -f1 /proc/loadavg)"
    # shellcheck disable=SC2086
    JX_GEMM=$TIER "$X" --one jx $spec | sed 's/^jx /builtin /'
    # shellcheck disable=SC2086
    [ "${DET:-1}" != 0 ] && env -u OPENBLAS_CORETYPE JX_GEMM= "$X" --one jxcblas $spec | sed 's/^jxcblas /cblas-det /'
    # shellcheck disable=SC2086
    OPENBLAS_CORETYPE=$CORE JX_GEMM= "$X" --one jxcblas $spec | sed 's/^jxcblas /cblas-best /'
    # shellcheck disable=SC2086
    OPENBLAS_CORETYPE=$CORE JX_GEMM= "$X" --one blas $spec | sed 's/^blas /blas-best /'
  done
done | tee "$OUT/raw.txt"
echo "end $(date -u '+%H:%M:%S'), load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/head.txt"
python3 - "$OUT/raw.txt" <<'PY' | tee "$OUT/table.txt"
import collections, re, statistics, sys
d = collections.defaultdict(lambda: collections.defaultdict(list))
best = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    m = re.match(r'(builtin|cblas-det|cblas-best|blas-best) (f\d\d) (\S+) ta=(\d) tb=(\d) thr=(\d) median ([\d.]+) ms'
                 r'.*best ([\d.]+)\)', line)
    if m:
        d[m.group(2, 3, 4, 5, 6)][m.group(1)].append(float(m.group(7)))
        best[m.group(2, 3, 4, 5, 6)][m.group(1)].append(float(m.group(8)))
sides = ['builtin', 'cblas-det', 'cblas-best', 'blas-best']
def fastest(v):
    ranked = sorted((v[s], s) for s in sides[:3] if s in v)
    margin = ranked[1][0] / ranked[0][0] - 1 if len(ranked) > 1 else float('nan')
    return "%s (+%.0f%%)" % (ranked[0][1], 100 * margin)
print("medians of the per-process medians, ms; fastest jx path by medians and by peak speed (the")
print("fastest call of any round: less hurt by neighbours' load), with its margin over the next")
print("%-4s %-15s %-5s %3s %9s %9s %10s %9s  %-22s %s" % ("dt", "MxKxN", "ta/tb", "thr", *[s + " ms" for s in sides],
                                                       "fastest (median)", "fastest (peak)"))
for k, v in d.items():
    med = {w: statistics.median(t) for w, t in v.items()}
    peak = {w: 1 / max(t) for w, t in best[k].items()}  # GFLOP/s -> inverse: smaller is faster
    print("%-4s %-15s %-5s %3s %9.3f %9.3f %10.3f %9.3f  %-22s %s" % (
        k[0], k[1], k[2] + "/" + k[3], k[4], *[med.get(s, float('nan')) for s in sides], fastest(med),
        fastest(peak)))
PY
