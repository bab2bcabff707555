#!/usr/bin/env bash
# Build the libFuzzer target with clang (ASan + UBSan + LSan, coverage) in
# build-fuzz/ and run it.
#   fuzz/run.sh SECONDS [libFuzzer options...]   fuzz for SECONDS (default 60)
#   fuzz/run.sh build                            only build
#   fuzz/run.sh merge                            minimize build-fuzz/corpus into fuzz/corpus
#   fuzz/run.sh save | restore                   build-fuzz/corpus to / from fuzz/corpus_grown.tar.xz
#                                                (the campaigns' corpus, kept across sessions)
#   fuzz/run.sh loaders SECONDS                  fuzz the file loaders (fuzz/fuzz_loaders.c;
#                                                seeds fuzz/corpus_loaders, new inputs
#                                                build-fuzz/corpus_loaders)
#   fuzz/run.sh export SECONDS                   fuzz jx_export_load (fuzz/fuzz_export_load.c;
#                                                seeds fuzz/corpus_export)
#   fuzz/run.sh optim SECONDS                    fuzz the optimizers (fuzz/fuzz_optim.c; seeds
#                                                fuzz/corpus_optim, new inputs build-fuzz/corpus_optim)
# New inputs go to build-fuzz/corpus (fuzz/corpus, the committed seeds, is
# read only); crashes to build-fuzz/crash-*. See docs/RELIABILITY.md.
set -euo pipefail
cd "$(dirname "$0")/.."
B=build-fuzz
CC=${CLANG:-clang}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
JOBS=${JOBS:-2}

# The grown corpus, kept across machines in fuzz/corpus_grown.tar.xz (CI fuzzes from the 1,000
# small seeds in fuzz/corpus instead: replaying the whole corpus would take its minute).
case "${1:-}" in
save)
  tar -C $B -cJf fuzz/corpus_grown.tar.xz corpus
  echo "fuzz/corpus_grown.tar.xz: $(ls $B/corpus | wc -l) inputs, $(du -h fuzz/corpus_grown.tar.xz | cut -f1)"
  exit 0 ;;
restore)
  mkdir -p $B
  tar -C $B -xJf fuzz/corpus_grown.tar.xz
  echo "$B/corpus: $(ls $B/corpus | wc -l) inputs"
  exit 0 ;;
esac

# The library with coverage for the fuzzer; the built-in GEMM (no BLAS) so
# that the fuzzer also covers jx's own kernel.
# oneDNN and MPI off: the targets link libjx.a by hand with the libraries below, and
# neither library is on the paths fuzzed (conv falls back to jx's own kernel)
cmake -S . -B $B -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DJX_BUILD_TESTS=OFF -DJX_BLAS=OFF \
  -DJX_DNNL=OFF -DJX_MPI=OFF \
  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link $SAN" >/dev/null
cmake --build $B --target jx_static -j "$JOBS" >/dev/null
LIBS="-lm -lpthread -ldl $(pkg-config --libs zlib 2>/dev/null || true) $(pkg-config --libs libcjson 2>/dev/null || true)"
"$CC" -g -O1 $SAN -fsanitize=fuzzer -Iinclude fuzz/fuzz_programs.c $B/libjx.a $LIBS -o $B/fuzz_programs
"$CC" -g -O1 $SAN -fsanitize=fuzzer -Iinclude fuzz/fuzz_loaders.c $B/libjx.a $LIBS -o $B/fuzz_loaders
"$CC" -g -O1 $SAN -fsanitize=fuzzer -Iinclude fuzz/fuzz_export_load.c $B/libjx.a $LIBS -o $B/fuzz_export_load
"$CC" -g -O1 $SAN -fsanitize=fuzzer -Iinclude fuzz/fuzz_optim.c $B/libjx.a $LIBS -o $B/fuzz_optim

mkdir -p $B/corpus fuzz/corpus
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
case "${1:-60}" in
build) exit 0 ;;
loaders)
  mkdir -p $B/corpus_loaders
  $B/fuzz_loaders -max_total_time="${2:-60}" -max_len=12000 -timeout=10 -rss_limit_mb=3000 -print_final_stats=1 \
    -artifact_prefix=$B/loaders- $B/corpus_loaders fuzz/corpus_loaders ;;
export)
  mkdir -p $B/corpus_export
  $B/fuzz_export_load -max_total_time="${2:-60}" -max_len=8000 -timeout=10 -rss_limit_mb=3000 -print_final_stats=1 \
    -artifact_prefix=$B/export- $B/corpus_export fuzz/corpus_export ;;
optim)
  mkdir -p $B/corpus_optim
  $B/fuzz_optim -max_total_time="${2:-60}" -max_len=1024 -timeout=20 -rss_limit_mb=3000 -print_final_stats=1 \
    -artifact_prefix=$B/optim- $B/corpus_optim fuzz/corpus_optim ;;
merge)
  mkdir -p $B/merged
  # -timeout: inputs slower than that (third derivatives) are left out, so
  # that CI's short run spends its time fuzzing, not replaying seeds
  $B/fuzz_programs -merge=1 -max_len=512 -timeout=1 $B/merged fuzz/corpus $B/corpus
  rm -rf fuzz/corpus && mv $B/merged fuzz/corpus
  echo "fuzz/corpus: $(ls fuzz/corpus | wc -l) inputs, $(du -sh fuzz/corpus | cut -f1)" ;;
*)
  secs=${1:-60}
  shift || true
  # -len_control=0: programs need most of max_len from the start; -timeout=60:
  # a third derivative (jacfwd^3) of a 16-element input takes seconds under
  # the sanitizers (about 1 s in a release build), which is not a hang
  $B/fuzz_programs -max_total_time="$secs" -max_len=512 -len_control=0 -timeout=60 -rss_limit_mb=3000 -print_final_stats=1 \
    -artifact_prefix=$B/ "$@" $B/corpus fuzz/corpus ;;
esac
