#!/usr/bin/env bash
# What `make demo` needs beyond gcc, make and cmake: pkg-config, FreeType
# (renders the letters), fonts (the 22 DejaVu faces of fonts-dejavu-core
# and -extra train, Lato is the unseen test family) and zlib (gzipped IDX files). Installs what is
# missing when run as root with apt-get (JX_NO_INSTALL=1 skips that);
# otherwise prints the exact install line and exits 1.
# Exit status: 0 nothing was missing, 1 still missing, 10 installed something
# (the build must re-run its library checks).
set -u
FONT_DIRS="/usr/share/fonts/truetype /usr/share/fonts/opentype"

missing() {
  local m=""
  command -v pkg-config >/dev/null || m="$m pkg-config"
  if command -v pkg-config >/dev/null; then
    pkg-config --exists freetype2 || m="$m libfreetype-dev"
    pkg-config --exists zlib || m="$m zlib1g-dev"
  else
    m="$m libfreetype-dev zlib1g-dev"
  fi
  # shellcheck disable=SC2086
  find $FONT_DIRS -iname 'DejaVuSans.ttf' 2>/dev/null | grep -q . || m="$m fonts-dejavu-core"
  # shellcheck disable=SC2086
  find $FONT_DIRS -iname 'DejaVuSans-ExtraLight.ttf' 2>/dev/null | grep -q . || m="$m fonts-dejavu-extra"
  # shellcheck disable=SC2086
  find $FONT_DIRS -iname 'Lato-*.ttf' 2>/dev/null | grep -q . || m="$m fonts-lato"
  echo "$m"
}

need=$(missing)
[ -z "$need" ] && exit 0
echo "make demo: missing:$need"
if [ "${JX_NO_INSTALL:-0}" != 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "make demo: installing them with apt-get (JX_NO_INSTALL=1 skips this)"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  if { apt-get update -qq && apt-get install -y -qq $need; } >/dev/null 2>&1 && [ -z "$(missing)" ]; then
    exit 10
  fi
  echo "make demo: apt-get could not install everything; still missing:$(missing)"
fi
echo "make demo: install them first, e.g.:"
echo "    sudo apt-get install$need"
echo "(or run build/examples/demo --data DIR with an MNIST-format data set)"
exit 1
