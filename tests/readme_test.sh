#!/usr/bin/env bash
# README.md's C code compiled and run exactly as printed (issue 21), so
# that the snippets cannot drift from the API. Every ```c block of the
# README follows a marker line saying what it is:
#   <!-- readme-test: program -->        a complete program: built and run
#   <!-- readme-test: fragment NAME -->  definitions and statements: lines
#       from one starting `static ` or `#include` to where its braces
#       close stay at file scope, the other lines become the body of a
#       main() that runs NAME's setup before them and NAME's check after
#       (both below). A block without a marker, or a name without a setup,
#       fails the test. Each line keeps its README line number (#line), so
#       a compiler error points into README.md.
set -euo pipefail
LIB=$1 ROOT=$2
FLAGS=${3:-} # e.g. -fsanitize=address,undefined for a sanitizer build
README=${4:-$ROOT/README.md}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CC=${CC:-cc}
W="-std=c17 -Wall -Wextra -Wno-unused-parameter -Werror"

# NAME's statements before and after the fragment's
setup() {
  case $1 in
  mlp) cat <<'C' ;;
  jx_t W1 = jx_full(JX_F32, JX_SHAPE(3, 5), 0.1), b1 = jx_zeros(JX_F32, JX_SHAPE(5));
  jx_t W2 = jx_full(JX_F32, JX_SHAPE(5, 2), -0.2), b2 = jx_ones(JX_F32, JX_SHAPE(2));
  jx_t inputs = jx_ones(JX_F32, JX_SHAPE(4, 3)), targets = jx_zeros(JX_F32, JX_SHAPE(4, 2));
C
  pmap) cat <<'C' ;;
  jx_t params = jx_full(JX_F32, JX_SHAPE(3, 2), 0.1);
  jx_t inputs = jx_reshape(jx_arange(JX_F32, 0, 12, 1), JX_SHAPE(2, 2, 3));
  jx_t targets = jx_ones(JX_F32, JX_SHAPE(2, 2, 2));
  jx_t X = jx_reshape(jx_arange(JX_F32, 0, 12, 1), JX_SHAPE(4, 3));
  jx_t W1 = jx_full(JX_F32, JX_SHAPE(3, 4), 0.1), W2 = jx_full(JX_F32, JX_SHAPE(4, 2), 0.2);
C
  fusion | tanh) ;;
  *) return 1 ;;
  esac
}
check() {
  case $1 in
  mlp) cat <<'C' ;;
  /* grads have params' tree; per-example ones a leading axis of 4 */
  jx_t W1g = jx_at(jx_at(g, 0), 0), W1pg = jx_at(jx_at(pg, 0), 0);
  if (jx_ndim(W1g) != 2 || jx_ndim(W1pg) != 3 || jx_shape(W1pg)[0] != 4) return 1;
C
  fusion) cat <<'C' ;;
  /* x*x*x + x*2*x + x at x = 1 */
  static float v[2000 * 2000];
  if (jx_read(y, JX_F32, v, sizeof v)) return 1;
  for (int i = 0; i < 2000 * 2000; i++)
    if (v[i] != 4) return 1;
  const char *want = "{ lambda ; a:f32[2000,2000]. let";
  if (!text || strncmp(text, want, strlen(want)) != 0) return 1;
  int muls = 0, adds = 0;
  for (const char *p = text; (p = strstr(p, " = mul ")); p++) muls++;
  for (const char *p = text; (p = strstr(p, " = add ")); p++) adds++;
  if (muls != 4 || adds != 2) return 1;
  jx_free_string(text);
C
  tanh) cat <<'C' ;;
  if (fabs(jx_item(JX_CALL(d3, jx_scalar(2.0))) - 0.2526544) > 1e-6) return 1;
C
  pmap) cat <<'C' ;;
  /* the devices' mean gradient is the whole batch's; the sharded MLP the plain one */
  jx_t gw = JX_CALL(jx_grad(jx_fn_new(loss, 3, NULL), 0), params, jx_reshape(inputs, JX_SHAPE(4, 3)),
                    jx_reshape(targets, JX_SHAPE(4, 2)));
  if (!jx_ok(g) || jx_item(jx_max(jx_abs(jx_sub(g, gw)))) > 1e-5) return 1;
  jx_t y = JX_CALL(tp, X, W1, W2), want = jx_matmul(jx_tanh(jx_matmul(X, W1)), W2);
  if (!jx_ok(y) || jx_item(jx_max(jx_abs(jx_sub(y, want)))) > 1e-5) return 1;
C
  *) return 1 ;;
  esac
}

# README -> $tmp/bN.c (each line after its #line) and $tmp/bN.kind
extract() {
  awk -v dir="$1" '
    /^<!-- readme-test: .* -->$/ { mark = $0; sub(/^<!-- readme-test: /, "", mark); sub(/ -->$/, "", mark);
                                   at = NR + 1; next }
    /^```c$/ { n++; if (NR != at) { print "README.md:" NR ": a C block without a readme-test marker";
                                    bad = 1 }
               f = dir "/b" n; print mark > (f ".kind"); close(f ".kind"); mark = ""; inside = 1; next }
    /^```/ && inside { inside = 0; close(f ".c"); next }
    inside { printf "#line %d \"README.md\"\n%s\n", NR, $0 > (f ".c") }
    END { print n + 0 > (dir "/count"); exit bad }' "$2"
}

# a fragment: its file-scope lines, then main(setup; statements; check)
wrap() {
  local frag=$1 name=$2
  printf '#include <jx.h>\n#include <math.h>\n#include <string.h>\n'
  awk '/^#line/ { l = $0; next }
       !top && /^(static |#include)/ { top = 1; depth = 0 }
       top { print l; print; o = gsub(/{/, "{"); c = gsub(/}/, "}"); depth += o - c;
             if (depth <= 0) top = 0; next }' "$frag"
  printf 'int main(void) {\n'
  setup "$name"
  awk '/^#line/ { l = $0; next }
       !top && /^(static |#include)/ { top = 1; depth = 0 }
       top { o = gsub(/{/, "{"); c = gsub(/}/, "}"); depth += o - c; if (depth <= 0) top = 0; next }
       { print l; print }' "$frag"
  printf '#line 1 "readme_test.sh check"\n'
  check "$name"
  printf '  return 0;\n}\n'
}

# self-test: an unmarked block must be caught
printf '# t\n\n```c\nint x;\n```\n' >"$tmp/fake.md"
mkdir "$tmp/fake"
if extract "$tmp/fake" "$tmp/fake.md" >/dev/null 2>&1; then
  echo "readme test: the extractor missed an unmarked block in its self-test"
  exit 1
fi

mkdir "$tmp/b"
extract "$tmp/b" "$README"
n=$(cat "$tmp/b/count")
[ "$n" -gt 0 ] || { echo "readme test: no C blocks found in $README"; exit 1; }
export JX_CACHE_DIR="$tmp/cache"
mkdir -m 700 "$JX_CACHE_DIR"
for i in $(seq 1 "$n"); do
  read -r kind name <"$tmp/b/b$i.kind"
  src=$tmp/p$i.c
  case $kind in
  program) cp "$tmp/b/b$i.c" "$src" ;;
  fragment)
    setup "$name" >/dev/null || { echo "readme test: block $i: no setup for fragment '$name'"; exit 1; }
    wrap "$tmp/b/b$i.c" "$name" >"$src"
    ;;
  *) echo "readme test: block $i: unknown kind '$kind'"; exit 1 ;;
  esac
  if ! $CC $W $FLAGS -I"$ROOT/include" "$src" -o "$tmp/p$i" "$LIB" -Wl,-rpath,"$(dirname "$LIB")" -lm; then
    echo "readme test: block $i ($kind ${name:-}) does not build; the program was:"
    cat -n "$src"
    exit 1
  fi
  if ! "$tmp/p$i"; then
    echo "readme test: block $i ($kind ${name:-}) failed its check"
    exit 1
  fi
  echo "readme test: block $i ($kind ${name:-}) built and ran"
done
echo "readme test: $n blocks passed"
