#!/usr/bin/env bash
# A Debian 13 root with a real GIMP 3 for the headless plug-in test (tests/gimp/).
#
# Why a chroot: GIMP 3 is not packaged for the Debian 12 hosts we run on, and a plain debootstrap
# root (measured recipe: ../shared/reference/gimp3/HEADLESS.md) needs no X, dbus or mounts.
# Idempotent: a finished root carries a marker and is reused (about 1.5-3 min to build, ~800 MB).
# Xvfb + xdotool come along (52 MB) so that the test can also press OK in the plug-in's dialog.
# When the machine does not allow it (not root, not Linux, no debootstrap and no apt) it prints
# "oldphoto-gimp3-root: skip: <why>" and exits 0, so `make test` goes on; tests/gimp then skips with
# the same reason. A build that should work but fails exits non-zero: that is a real failure.
#
# Usage: tests/setup/gimp3-root.sh [ROOT]   (default $OLDPHOTO_GIMP3_ROOT or /var/cache/oldphoto-gimp3root)
set -euo pipefail
ROOT=${1:-${OLDPHOTO_GIMP3_ROOT:-/var/cache/oldphoto-gimp3root}}
MARK="$ROOT/.oldphoto-gimp3-ready"
skip() { echo "oldphoto-gimp3-root: skip: $*"; exit 0; }

PACKAGES="gimp xvfb xauth xdotool"
ready() { [ -f "$MARK" ] && [ -x "$ROOT/usr/bin/gimp-console-3.0" ] && [ -x "$ROOT/usr/bin/Xvfb" ] && [ -x "$ROOT/usr/bin/xdotool" ]; }
if ready; then
    echo "oldphoto-gimp3-root: ready at $ROOT"
    exit 0
fi
[ "$(uname -s)" = Linux ] || skip "the real-GIMP test needs Linux (debootstrap + chroot)"
[ "$(id -u)" = 0 ] || skip "the real-GIMP test needs root (debootstrap and chroot); run the tests as root, as CI does"
command -v chroot >/dev/null || skip "no chroot command"
export DEBIAN_FRONTEND=noninteractive
if ! command -v debootstrap >/dev/null; then
    command -v apt-get >/dev/null || skip "debootstrap is missing and there is no apt-get to install it"
    apt-get update -q >/dev/null && apt-get install -y -q debootstrap >/dev/null \
        || skip "debootstrap is missing and 'apt-get install debootstrap' failed"
fi

mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
flock 9                                   # make and pytest may both ask for it
if ready; then echo "oldphoto-gimp3-root: ready at $ROOT"; exit 0; fi
if [ -f "$MARK" ]; then                   # a root from an older version of this script: add what is new
    echo "oldphoto-gimp3-root: adding $PACKAGES to $ROOT"
    { chroot "$ROOT" apt-get update -q && chroot "$ROOT" apt-get install -y -q --no-install-recommends $PACKAGES \
        && chroot "$ROOT" apt-get clean; } >>"$ROOT.log" 2>&1 \
        || { echo "oldphoto-gimp3-root: installing $PACKAGES failed, see $ROOT.log" >&2; exit 1; }
    ready && { echo "oldphoto-gimp3-root: ready at $ROOT"; exit 0; }
    echo "oldphoto-gimp3-root: $ROOT is still incomplete, see $ROOT.log" >&2
    exit 1
fi

if [ -e "$ROOT" ]; then                   # an interrupted build: remove it, but never through a mount
    if findmnt -rn -o TARGET | grep -q "^$ROOT"; then
        echo "oldphoto-gimp3-root: $ROOT is incomplete and has mounts under it; unmount them first" >&2
        exit 1
    fi
    rm -rf "$ROOT"
fi

# The Debian mirror the host's apt already uses (read at run time, never hard-coded).
mirror() { apt-get indextargets --format '$(REPO_URI)' 2>/dev/null | grep -E '/debian/?$' | sort -u | head -1; }
MIRROR=$(mirror || true)
if [ -z "$MIRROR" ]; then apt-get update -q >/dev/null || true; MIRROR=$(mirror || true); fi
MIRROR=${MIRROR:-http://deb.debian.org/debian/}

start=$(date +%s)
echo "oldphoto-gimp3-root: building Debian 13 + GIMP 3 at $ROOT from $MIRROR (1.5-3 min)"
TMP="$ROOT.partial"
rm -rf "$TMP"
debootstrap --variant=minbase trixie "$TMP" "$MIRROR" >"$ROOT.log" 2>&1 \
    || { echo "oldphoto-gimp3-root: debootstrap failed, see $ROOT.log" >&2; tail -5 "$ROOT.log" >&2; exit 1; }
# dbus gets pulled in: never start services inside the root.
printf '#!/bin/sh\nexit 101\n' >"$TMP/usr/sbin/policy-rc.d"
chmod +x "$TMP/usr/sbin/policy-rc.d"
{
    chroot "$TMP" apt-get update -q
    chroot "$TMP" apt-get install -y -q --no-install-recommends $PACKAGES
    chroot "$TMP" apt-get clean
} >>"$ROOT.log" 2>&1 || { echo "oldphoto-gimp3-root: installing gimp failed, see $ROOT.log" >&2; tail -5 "$ROOT.log" >&2; exit 1; }
chroot "$TMP" gimp-console-3.0 --version
mv "$TMP" "$ROOT"
touch "$MARK"
echo "oldphoto-gimp3-root: ready at $ROOT ($(( $(date +%s) - start )) s)"
