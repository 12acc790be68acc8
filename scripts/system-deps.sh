#!/usr/bin/env bash
# Install the Debian packages Talkie needs, only those missing, only when we can (root + apt).
# Usage: scripts/system-deps.sh PKG...
# Never fails the build because of a missing privilege: it says what to run instead.
set -euo pipefail

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
else
  echo "system-deps: not a Debian/Ubuntu system (no dpkg); make sure these are installed: $*" >&2
  exit 0
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: WARNING: missing Debian packages: ${missing[*]}" >&2
  echo "system-deps: not root, so not installing them; run: sudo apt-get install -y ${missing[*]}" >&2
  echo "system-deps: (features that need them will fail or be skipped until then)" >&2
  exit 0
fi

echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
