#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests (tests/browser/). Idempotent: does nothing when
# /usr/bin/chromium exists. Playwright's own browser download does not work on the project machines,
# so the tests drive this system browser through the Python playwright client instead.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "chromium.sh: /usr/bin/chromium present, nothing to do."
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium.sh: skipping, no apt-get on this machine; install Chromium at /usr/bin/chromium" \
        "yourself or the browser tests will skip."
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "chromium.sh: skipping, not root (uid $(id -u)); run 'sudo apt-get install chromium'" \
        "or the browser tests will skip."
    exit 0
fi
echo "chromium.sh: installing Debian chromium (apt-get update first) ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version 2>/dev/null || true
