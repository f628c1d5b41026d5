#!/usr/bin/env bash
# Runs every real-client test (peerjs differential, two browsers on two nodes,
# aiortc with Chromium, npm Yjs clients on /sync) and ends with one line:
# "N passed, N failed".
#
# Environment:
#   PQNODE_BIN            pqnode binary (default: target/debug/pqnode)
#   PQNODE_SIGNALING_URL  an already running PeerJS endpoint for the differential
#                         test (default: a pqnode from PQNODE_BIN, else
#                         crates/pqnode-peerjs' serve example)
#   PQNODE_PEERJS_SERVE   use this serve example binary instead of pqnode
#   YJS_SERVER=reference  run the Yjs test against npm @y/websocket-server
#                         instead of pqnode (checks the test itself)
#   VERBOSE=1             show server output and observations
# Install what they need first: scripts/install-test-deps.sh
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$HERE"

if [ ! -d node_modules ]; then
  echo "tests/clients/node_modules is missing: run scripts/install-test-deps.sh" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
if [ -z "${PQNODE_SIGNALING_URL:-}" ] && [ -z "${PQNODE_PEERJS_SERVE:-}" ] \
  && [ ! -x "${PQNODE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/pqnode}" ] \
  && [ ! -x "${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/serve" ]; then
  (cd "$ROOT" && cargo build -q -p pqnode-peerjs --example serve) || true
fi

passed=0
failed=0
for file in peerjs-differential.test.js browser-two-nodes.test.js aiortc-chromium.test.js yjs-sync.test.js yjs-peers.test.js yjs-two-nodes.test.js dashboard.test.js; do
  echo "== $file"
  output="$(node --test --test-reporter=tap "$file" 2>&1)"
  status=$?
  echo "$output" | grep -E '^(not )?ok |^# (Subtest|pass|fail)|^\s+(error|expected|actual|message):|Error' | head -60
  p=$(echo "$output" | sed -n 's/^# pass \([0-9]*\)$/\1/p' | tail -1)
  f=$(echo "$output" | sed -n 's/^# fail \([0-9]*\)$/\1/p' | tail -1)
  p=${p:-0}
  f=${f:-0}
  # A file that crashed before reporting counts as one failure.
  if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p))
  failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
