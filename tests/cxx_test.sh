#!/usr/bin/env bash
# jx.h from other compilers and languages: it compiles as C99, C11 and C17
# with -pedantic -Werror under gcc and clang, as C++17 under g++ and
# clang++ (the examples that use only the public API, with -pedantic; the
# letters application and the examples built on it, examples/letters/*.c,
# cnn.c, demo.c, export.c, fashion_mnist.c; and a small C++ program,
# tests/cxx/hello.cpp, which is also linked against libjx.so and run; and
# examples/classify/classify.c over an exported model's header). A compiler that is missing is skipped with a message; exit 77
# (skipped) when neither C++ compiler exists.
set -euo pipefail
LIB=$1 ROOT=$2
FLAGS=${3:-} # e.g. -fsanitize=address,undefined for a sanitizer build
INC=$ROOT/include
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
have() { command -v "$1" >/dev/null 2>&1 || { echo "cxx test: $1 missing: skipped"; return 1; }; }
W="-Wall -Wextra -pedantic -Werror"

# the header in C, with the macros a user needs
cat >"$tmp/use.c" <<'C'
#include <jx.h>
static jx_t body(const jx_t *a, void *u) { (void)u; return jx_sum(jx_mul(a[0], a[0])); }
int main(void) {
  jx_t x = jx_ones(JX_F32, JX_SHAPE(2, 3));
  jx_fn *g = jx_grad(jx_fn_new(body, 1, NULL), 0);
  return jx_ok(JX_TUPLE(x, JX_LIST(x), JX_CALL(g, x))) && !JX_DEBUG_PRINT("{}", x) ? 0 : 1;
}
C
for cc in gcc clang; do
  have "$cc" || continue
  for std in c99 c11 c17; do
    "$cc" -std=$std $W -I"$INC" -fsyntax-only "$tmp/use.c"
  done
  echo "cxx test: jx.h compiles with $cc -std=c99/c11/c17 $W"
done

# examples that include nothing but jx.h and the standard headers
examples=$(grep -L '#include "' "$ROOT"/examples/*.c)
# the letters application (its test, test_letters.c, is a C test) and the examples built on it
letters="$(ls "$ROOT"/examples/letters/*.c | grep -v test_letters.c) $(grep -l '#include "letters.h"' "$ROOT"/examples/*.c)"
ncxx=0
for cxx in g++ clang++; do
  have "$cxx" || continue
  ncxx=$((ncxx + 1))
  for ex in $examples; do
    "$cxx" -x c++ -std=c++17 $W -I"$INC" -c "$ex" -o "$tmp/$(basename "$ex" .c).o"
  done
  echo "cxx test: $(echo $examples | wc -w) examples build as C++17 with $cxx"
  # the letters application and its users: idiomatic C with designated
  # initializers that leave members out, which g++ (not gcc, not clang++)
  # reports under -Wextra in C++ only: that one warning is off
  for ex in $letters; do
    "$cxx" -x c++ -std=c++17 -Wall -Wextra -Werror -Wno-missing-field-initializers -I"$INC" -I"$ROOT/examples/letters" \
      -c "$ex" -o "$tmp/letters_$(basename "$ex" .c).o"
  done
  echo "cxx test: $(echo $letters | wc -w) files of the letters examples build as C++17 with $cxx"
  if [ -n "$FLAGS" ] && [ "$cxx" = clang++ ]; then
    # a sanitizer build's libjx.so carries gcc's ASan runtime, which
    # clang's cannot share a process with: compile only
    "$cxx" -std=c++17 $W -I"$INC" -c "$ROOT/tests/cxx/hello.cpp" -o "$tmp/hello.o"
    echo "cxx test: hello.cpp compiles with $cxx (not run: sanitizer runtimes differ)"
    continue
  fi
  "$cxx" -std=c++17 $W $FLAGS -I"$INC" "$ROOT/tests/cxx/hello.cpp" -o "$tmp/hello_$cxx" "$LIB" \
    -Wl,-rpath,"$(dirname "$LIB")"
  "$tmp/hello_$cxx"
done
[ "$ncxx" -gt 0 ] || { echo "cxx test: no C++ compiler (apt-get install g++ or clang): skipped"; exit 77; }

# examples/classify/classify.c (no jx: it includes an exported model's
# header) as C++ too, against the header jx_export_c writes for a model of
# the letters model's signature (f32[1296] pixels -> f32[26] logits)
cat >"$tmp/gen.c" <<'C'
#include <jx.h>
static jx_t model(const jx_t *a, void *u) {
  (void)u;
  return jx_dot(a[0], jx_full(JX_F32, JX_SHAPE(1296, 26), 1e-3));
}
int main(int argc, char **argv) {
  jx_t x = jx_zeros(JX_F32, JX_SHAPE(1296));
  jx_t e = argc > 1 ? jx_export_c(jx_fn_new(model, 1, NULL), &x, "letters_model", argv[1]) : NULL;
  return e ? 1 : 0;
}
C
mkdir "$tmp/model"
gcc -std=c17 $FLAGS -I"$INC" "$tmp/gen.c" -o "$tmp/gen" "$LIB" -Wl,-rpath,"$(dirname "$LIB")"
ASAN_OPTIONS=detect_leaks=0 "$tmp/gen" "$tmp/model" # makes a header; leak checks are the tests' job
for cxx in g++ clang++; do
  command -v "$cxx" >/dev/null 2>&1 || continue
  "$cxx" -x c++ -std=c++17 $W -I"$tmp/model" -c "$ROOT/examples/classify/classify.c" -o "$tmp/classify_$cxx.o"
  echo "cxx test: examples/classify/classify.c builds as C++17 with $cxx"
done
echo "cxx test: passed"
