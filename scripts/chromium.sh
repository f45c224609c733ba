#!/usr/bin/env bash
# Make sure /usr/bin/chromium exists, for the TS verifier's browser test (verifier/ts test:web).
# Installs the Debian package when it is missing (apt-get, with sudo when not root); fails with a
# clear message when it cannot.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "chromium.sh: $CHROMIUM is missing and this user can neither run apt-get as root nor sudo without a password." >&2
  echo "chromium.sh: install it yourself (Debian/Ubuntu: apt-get install -y chromium), then run again." >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium.sh: $CHROMIUM is missing and there is no apt-get here; install Chromium at $CHROMIUM yourself." >&2
  exit 1
fi

install() {
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends chromium >/dev/null
}

echo "chromium.sh: installing chromium (apt-get)" >&2
start=$(date +%s)
# A stale package index is the usual reason for a failed install: refresh it once and retry.
if ! install; then
  "${as_root[@]}" apt-get update -q >/dev/null
  install || {
    echo "chromium.sh: apt-get install chromium failed; see the output above." >&2
    exit 1
  }
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "chromium.sh: the chromium package is installed but $CHROMIUM is not there." >&2
  exit 1
fi
echo "chromium.sh: $("$CHROMIUM" --version 2>/dev/null || echo chromium) installed in $(($(date +%s) - start)) s" >&2
