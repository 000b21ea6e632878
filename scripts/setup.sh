#!/usr/bin/env bash
# Installs the Debian packages that the build, tests and demo need, and only those that are missing.
#   scripts/setup.sh [build|test|demo|bench]   (default: build)
# As root it runs apt-get; otherwise it prints the exact command and stops. Env: GPU, BLAS, SETUP (0|1).
# A GPU host without package access builds with BLAS=0 and an already unpacked Darknet source: nothing to install.
set -euo pipefail
what=${1:-build}
# SETUP=0 (e.g. a GPU host without package access): install nothing; the build's own checks still report gaps.
[ "${SETUP:-1}" = 0 ] && exit 0
here=$(cd "$(dirname "$0")/.." && pwd)
BLAS=${BLAS:-1}

pkgs=()
pkgs+=(zlib1g-dev)
[ "$BLAS" = 1 ] && pkgs+=(libopenblas-dev liblapacke-dev)
need_src=1
[ -f "$here/build/darknet-src/.fetched" ] && need_src=0
[ -n "${DARKNET_SRC:-}" ] && need_src=0
[ "$need_src" = 1 ] && pkgs+=(xz-utils)
case $what in
  build) ;;
  test)  pkgs+=(python3-faiss python3-numpy python3-pil dataset-fashion-mnist openmpi-bin libopenmpi-dev clang libclang-rt-14-dev) ;;
  demo)  pkgs+=(dataset-fashion-mnist gnuplot-nox) ;;
  bench) pkgs+=(python3-faiss python3-numpy dataset-fashion-mnist python3-torch python3-venv hyperfine python3-scipy python3-matplotlib) ;;
  *) echo "usage: scripts/setup.sh [build|test|demo|bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

# Debian's source package for Darknet needs a deb-src entry for the archive apt already uses.
deb_src=/etc/apt/sources.list.d/gsl-darknet-src.sources
need_debsrc=0
if [ "$need_src" = 1 ] && ! apt-cache showsrc darknet 2>/dev/null | grep -q '^Version: '; then need_debsrc=1; fi

[ ${#missing[@]} = 0 ] && [ "$need_debsrc" = 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "scripts/setup.sh: missing: ${missing[*]:-}$( [ $need_debsrc = 1 ] && echo ' (and a deb-src entry for the darknet source package)')" >&2
  echo "run as root:  sudo scripts/setup.sh $what" >&2
  [ ${#missing[@]} = 0 ] || echo "  or:         sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
command -v apt-get >/dev/null || { echo "scripts/setup.sh: no apt-get here; install: ${missing[*]}" >&2; exit 1; }

if [ "$need_debsrc" = 1 ]; then
  # Mirror the first deb entry's archive and suite (deb822 or one-line format).
  uri=$(grep -rhsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
  suite=$(grep -rhsE '^Suites:' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
  if [ -z "$uri" ]; then
    read -r _ uri suite _ < <(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | head -1) || true
  fi
  [ -n "$uri" ] && [ -n "$suite" ] || { echo "scripts/setup.sh: cannot find the Debian archive apt uses" >&2; exit 1; }
  printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" "$suite" > "$deb_src"
  echo "scripts/setup.sh: added $deb_src ($uri $suite)"
fi
echo "scripts/setup.sh: installing ${missing[*]:-nothing}"
apt-get update -qq
[ ${#missing[@]} = 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
