#!/bin/bash
# cpu_info.sh - the CPU a benchmark ran on, in one line: model, family/model numbers, the widest
# vector extension, and the cache sizes (from sysfs), plus OpenBLAS's core as it detects it.
#   bash bench/cpu_info.sh                   the line
#   bash bench/cpu_info.sh --openblas-core   the OpenBLAS core type with the widest kernels this
#                                            CPU runs (for OPENBLAS_CORETYPE): SkylakeX with
#                                            AVX-512, Zen or Haswell with AVX2, else Prescott
flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { [[ " $flags " == *" $1 "* ]]; }
vendor=$(grep -m1 vendor_id /proc/cpuinfo | awk '{print $3}')
if [ "${1:-}" = --openblas-core ]; then
  if has avx512f && has avx512bw && has avx512vl; then echo SkylakeX
  elif has avx2 && has fma; then [ "$vendor" = AuthenticAMD ] && echo Zen || echo Haswell
  else echo Prescott; fi
  exit 0
fi
vec=sse2
has avx2 && has fma && vec=avx2
has avx512f && vec=avx512
has amx_tile && vec="$vec+amx"
cache() { # level type -> size
  for d in /sys/devices/system/cpu/cpu0/cache/index*; do
    [ "$(cat "$d/level" 2>/dev/null)" = "$1" ] && [ "$(cat "$d/type" 2>/dev/null)" = "$2" ] && cat "$d/size" && return
  done
  echo "?"
}
model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
fam=$(grep -m1 'cpu family' /proc/cpuinfo | awk '{print $4}')
num=$(grep -m1 '^model\s' /proc/cpuinfo | awk '{print $3}')
core=""
for lib in /usr/lib/x86_64-linux-gnu/libopenblas.so.0 /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0; do
  [ -e "$lib" ] || continue
  core=$(python3 -c "import ctypes; l=ctypes.CDLL('$lib'); l.openblas_get_corename.restype=ctypes.c_char_p; print(l.openblas_get_corename().decode())" 2>/dev/null)
  [ -n "$core" ] && break
done
echo "$model (family $fam model $num), $vec, L1d $(cache 1 Data), L2 $(cache 2 Unified), L3 $(cache 3 Unified)${core:+, OpenBLAS detects \"$core\"}"
