#!/usr/bin/env bash
# Puts upstream Darknet's source, checksum-verified, into DEST (an ignored build folder).
#   darknet/fetch.sh DEST
# Source: Debian's source package `darknet` (pinned in darknet/darknet.version), or, when DARKNET_SRC is set,
# an upstream checkout of the same commit that the user already has (a cluster without package access).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:?usage: darknet/fetch.sh DEST}
mkdir -p "$(dirname "$dest")"; dest="$(cd "$(dirname "$dest")" && pwd)/$(basename "$dest")"
# shellcheck source=/dev/null
. <(grep -E '^DARKNET_[A-Z0-9_]+=' "$here/darknet.version")

die() { echo "darknet/fetch.sh: error: $*" >&2; exit 1; }

if [ -f "$dest/.fetched" ]; then exit 0; fi
rm -rf "$dest" "$dest.tmp"
mkdir -p "$dest.tmp"

if [ -n "${DARKNET_SRC:-}" ]; then
  [ -f "$DARKNET_SRC/src/parser.c" ] && [ -f "$DARKNET_SRC/include/darknet.h" ] ||
    die "DARKNET_SRC=$DARKNET_SRC is not a Darknet checkout (no src/parser.c or include/darknet.h)"
  if [ -d "$DARKNET_SRC/.git" ] && command -v git >/dev/null; then
    head=$(git -C "$DARKNET_SRC" rev-parse HEAD 2>/dev/null || true)
    case "$head" in
      "$DARKNET_COMMIT"*) ;;
      *) die "DARKNET_SRC=$DARKNET_SRC is at commit ${head:-unknown}, expected $DARKNET_COMMIT" ;;
    esac
  else
    echo "darknet/fetch.sh: warning: DARKNET_SRC has no git metadata; cannot confirm commit $DARKNET_COMMIT" >&2
  fi
  (cd "$DARKNET_SRC" && tar --exclude=.git -cf - .) | (cd "$dest.tmp" && tar -xf -)
  echo "DARKNET_SRC $DARKNET_SRC" > "$dest.tmp/.fetched"
else
  dl="$dest.download"
  mkdir -p "$dl"
  if [ ! -f "$dl/$DARKNET_ORIG" ]; then
    command -v apt-get >/dev/null || die "no apt-get here and DARKNET_SRC is unset: point DARKNET_SRC at an upstream checkout of commit $DARKNET_COMMIT"
    if ! apt-cache showsrc darknet 2>/dev/null | grep -q "^Version: $DARKNET_DEB_VERSION\$"; then
      die "Debian source package darknet=$DARKNET_DEB_VERSION is not known to apt. Run scripts/setup.sh (adds a deb-src entry and runs apt-get update), or set DARKNET_SRC to an upstream checkout of commit $DARKNET_COMMIT"
    fi
    (cd "$dl" && apt-get source --download-only "darknet=$DARKNET_DEB_VERSION" >/dev/null 2>"$dl/apt.log") ||
      die "apt-get source darknet=$DARKNET_DEB_VERSION failed (see $dl/apt.log)"
  fi
  sum=$(sha256sum "$dl/$DARKNET_ORIG" | cut -d' ' -f1)
  if [ "$sum" != "$DARKNET_ORIG_SHA256" ]; then
    rm -f "$dl/$DARKNET_ORIG"
    die "checksum mismatch for $DARKNET_ORIG: got $sum, expected $DARKNET_ORIG_SHA256 (file removed)"
  fi
  tar -xJf "$dl/$DARKNET_ORIG" -C "$dest.tmp" --strip-components=1
  [ -f "$dest.tmp/src/parser.c" ] || die "$DARKNET_ORIG did not unpack to a Darknet tree"
  echo "debian $DARKNET_DEB_VERSION sha256 $sum" > "$dest.tmp/.fetched"
fi
mv "$dest.tmp" "$dest"
echo "darknet/fetch.sh: Darknet source in $dest ($(cat "$dest/.fetched"))"
