#!/bin/bash
# gemm_ab.sh - jx's built-in GEMM against another jx build and OpenBLAS on its best kernel for this
# CPU, one process per measurement, alternating (base, new, OpenBLAS) round by round; medians.
#
#   bash bench/gemm_ab.sh [NEW-BUILD [BASE-BUILD [ROUNDS]]]
#
# NEW-BUILD (default build) and BASE-BUILD: jx build directories (BASE-BUILD: e.g. an older commit
# built from `git archive <commit> | tar -x -C /tmp/jx-base; cmake -S /tmp/jx-base -B
# /tmp/jx-base/build; cmake --build /tmp/jx-base/build --target jx_static`); this tree's
# bench_gemm.c is linked against each build's libjx.a, so both sides run the same harness
# (`bench_gemm --one`). Without BASE-BUILD only jx and OpenBLAS alternate. ROUNDS default 5.
# ALT="ENV=VALUE ..." adds a fourth side, this tree's build run under those variables (e.g.
# ALT="JX_GEMM_SMALL=0": small-M products on the blocked path). SPECS_LIST="dt M K N threads reps
# [ta tb];..." replaces the shape list (e.g. SPECS_LIST="f32 4096 512 64 2 51;f32 64 512 4096 2 51").
# Prints the machine and load, every line, and a table: ratio = jx speed / OpenBLAS speed
# (columns new, base, alt: that side's ratio).
set -u
cd "$(dirname "$0")/.."
NEW=${1:-build}; BASE=${2:-}; R=${3:-5}
OUT=${OUT:-/tmp/jx-gemm-ab-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
CORE=$(bash bench/cpu_info.sh --openblas-core)
INC=$(pkg-config --cflags openblas 2>/dev/null)
build_one() { # build-dir out-binary
  gcc -O2 -std=c17 -D_GNU_SOURCE -DJX_BENCH_HAVE_CBLAS=1 -Isrc -Iinclude -Ibench $INC bench/bench_gemm.c "$1/libjx.a" \
    $(pkg-config --libs openblas 2>/dev/null || echo -lopenblas) -lm -lpthread -ldl -o "$2"
}
build_one "$NEW" "$OUT/gemm_new" || exit 1
[ -n "$BASE" ] && { build_one "$BASE" "$OUT/gemm_base" || exit 1; }
{
  echo "gemm_ab.sh $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "cpu: $(bash bench/cpu_info.sh); OpenBLAS with OPENBLAS_CORETYPE=$CORE"
  echo "new: $NEW ($(git log -1 --format=%h 2>/dev/null))  base: ${BASE:-none}"
} | tee "$OUT/head.txt"
ALT=${ALT:-}
SPECS=("f32 2000 2000 2000 1 5" "f32 2000 2000 2000 2 7" "f32 128 1296 512 1 101" "f32 128 1296 512 2 101"
  "f64 2000 2000 2000 1 3" "f64 2000 2000 2000 2 5" "f32 1 1296 512 1 201" "f32 2000 2000 1 1 51"
  "f32 8 1296 512 1 201" "f32 32 1296 512 1 201" "f32 8 1296 512 2 201" "f32 32 1296 512 2 201"
  "f32 1296 128 512 2 101 1 0" "f32 128 512 1296 2 101 0 1"
  "f32 4096 512 64 1 51" "f32 4096 512 64 2 51" "f32 64 512 4096 1 51" "f32 64 512 4096 2 51"
  "f32 2000 1 2000 1 51" "f32 2000 1 2000 2 51")
[ -n "${SPECS_LIST:-}" ] && IFS=";" read -r -a SPECS <<<"$SPECS_LIST"
for spec in "${SPECS[@]}"; do
  for r in $(seq "$R"); do
    echo "round $r load $(cut -d' ' -f1 /proc/loadavg)"
    # shellcheck disable=SC2086
    [ -n "$BASE" ] && "$OUT/gemm_base" --one jx $spec | sed 's/^jx /base /'
    # shellcheck disable=SC2086
    "$OUT/gemm_new" --one jx $spec | sed 's/^jx /new /'
    # shellcheck disable=SC2086
    [ -n "$ALT" ] && env $ALT "$OUT/gemm_new" --one jx $spec | sed 's/^jx /alt /'
    # shellcheck disable=SC2086
    OPENBLAS_CORETYPE=$CORE "$OUT/gemm_new" --one blas $spec
  done
done | tee "$OUT/raw.txt"
echo "end $(date -u '+%H:%M:%S'), load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/head.txt"
python3 - "$OUT/raw.txt" <<'PY'
import collections, re, statistics, sys
d = collections.defaultdict(lambda: collections.defaultdict(list))
best = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    m = re.match(r'(base|new|alt|blas) (f\d\d) (\S+) ta=(\d) tb=(\d) thr=(\d) median ([\d.]+) ms.*best ([\d.]+)\)',
                 line)
    if m:
        d[m.group(2, 3, 4, 5, 6)][m.group(1)].append(float(m.group(7)))
        best[m.group(2, 3, 4, 5, 6)][m.group(1)].append(float(m.group(8)))
print("ratios: OpenBLAS time / that side's time by medians, then (pk) by peak speed: the fastest call")
print("of any round, less hurt by neighbours' load")
print("%-4s %-16s %-5s %3s %9s %9s %9s %9s %6s %6s %6s %6s %6s %6s" % (
    "dt", "MxKxN", "ta/tb", "thr", "base ms", "new ms", "alt ms", "blas ms", "new", "base", "alt", "new pk",
    "basepk", "alt pk"))
nan = float('nan')
for k, v in d.items():
    med = {w: statistics.median(t) for w, t in v.items()}
    pk = {w: max(t) for w, t in best[k].items()}
    b, n, a, o = med.get('base', nan), med['new'], med.get('alt', nan), med['blas']
    r = lambda w: pk[w] / pk['blas'] if w in pk else nan
    print("%-4s %-16s %-5s %3s %9.3f %9.3f %9.3f %9.3f %6.2f %6.2f %6.2f %6.2f %6.2f %6.2f" % (
        k[0], k[1], k[2] + "/" + k[3], k[4], b, n, a, o, o / n, o / b, o / a, r('new'), r('base'), r('alt')))
PY
