#!/usr/bin/env bash
# Installs Debian's Krita with its Python plug-in support for the Krita tests (tests/krita/).
# Idempotent: does nothing when kritarunner and PyQt5 are present. python3-pyqt5 and python3-sip are
# only Recommends of krita, so they are named explicitly (with --no-install-recommends the rest of
# the ~300 MB of recommends stays out). The tests run Krita under xvfb-run, hence xvfb and xauth.
set -euo pipefail

have() { command -v kritarunner >/dev/null 2>&1 && command -v xvfb-run >/dev/null 2>&1 \
    && /usr/bin/python3 -c 'import PyQt5.QtCore' >/dev/null 2>&1; }

if have; then
    echo "krita.sh: krita, kritarunner, PyQt5 and xvfb-run present, nothing to do."
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "krita.sh: skipping, no apt-get on this machine; install Krita 5 with python3-pyqt5 and" \
        "xvfb-run yourself or the Krita tests will skip."
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "krita.sh: skipping, not root (uid $(id -u)); run 'sudo apt-get install --no-install-recommends" \
        "krita python3-pyqt5 python3-sip xvfb xauth' or the Krita tests will skip."
    exit 0
fi
echo "krita.sh: installing Debian krita + python3-pyqt5 + python3-sip + xvfb (apt-get update first) ..."
export DEBIAN_FRONTEND=noninteractive
# another apt run (a parallel setup script) holds the lock: wait for it instead of failing
for _ in $(seq 1 60); do
    if apt-get update -qq 2>/dev/null; then break; fi
    echo "krita.sh: apt is busy, waiting ..."; sleep 10
done
for i in $(seq 1 60); do
    if apt-get install -y -qq --no-install-recommends krita python3-pyqt5 python3-sip xvfb xauth >/dev/null; then
        break
    fi
    [ "$i" -eq 60 ] && { echo "krita.sh: apt-get install failed" >&2; exit 1; }
    echo "krita.sh: apt is busy, waiting ..."; sleep 10
done
echo "krita.sh: installed krita $(dpkg-query -W -f '${Version}' krita 2>/dev/null)"
