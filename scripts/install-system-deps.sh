#!/usr/bin/env bash
# Installs the system packages ppml's setup needs on Debian or Ubuntu:
# Python's venv module, the GMP/MPFR/MPC headers in case pip has to build gmpy2 from source,
# Node.js for the browser client's tests, and Chromium for the page's browser tests.
set -euo pipefail
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install Python 3.11+ with its venv module, and libgmp/libmpfr/libmpc headers" >&2
    exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
$sudo apt-get install -y -qq python3-venv python3-dev libgmp-dev libmpfr-dev libmpc-dev
# An existing Node.js (18 or newer) is kept; Debian's is installed only where there is none.
command -v node >/dev/null 2>&1 || $sudo apt-get install -y -qq nodejs
# The browser tests drive Debian's Chromium at this path through Playwright; Playwright's own
# browser download is not used, so the tests need no network beyond the package mirror.
[ -x /usr/bin/chromium ] || $sudo apt-get install -y -qq chromium
