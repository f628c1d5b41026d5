#!/usr/bin/env bash
# Installs what tests/clients needs on a fresh Debian machine: Chromium (apt),
# the npm packages of tests/clients (from its lock file: peerjs, peer,
# playwright-core, ws, yjs, y-websocket and the reference Yjs server
# @y/websocket-server, whose leveldb comes prebuilt: nothing is compiled) and
# Python aiortc.
# Idempotent and non-interactive: each step is skipped when already done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ -x /usr/bin/chromium ] && command -v chromedriver >/dev/null 2>&1; then
  echo "chromium: already installed ($(/usr/bin/chromium --version 2>/dev/null || echo unknown))"
else
  echo "chromium: installing with apt"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver
fi

if ! command -v node >/dev/null 2>&1; then
  echo "node is missing: install Node.js >= 20 first" >&2
  exit 1
fi
if [ -d "$ROOT/tests/clients/node_modules" ] \
  && [ "$ROOT/tests/clients/node_modules/.package-lock.json" -nt "$ROOT/tests/clients/package-lock.json" ]; then
  echo "npm: tests/clients is up to date"
else
  echo "npm: installing tests/clients from package-lock.json"
  (cd "$ROOT/tests/clients" && npm ci --no-audit --no-fund)
fi

PYTHON="${PYTHON:-python3}"
if "$PYTHON" -c "import aiortc, websockets" >/dev/null 2>&1; then
  echo "aiortc: already installed ($("$PYTHON" -c 'import aiortc; print(aiortc.__version__)'))"
else
  echo "aiortc: installing aiortc and websockets with pip"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore aiortc websockets
fi
echo "test dependencies ready"
