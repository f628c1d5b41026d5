#!/usr/bin/env bash
# Runs every pqnode test, installing what the tests need first.
#
#   scripts/test.sh            everything (what CI runs through .ci/run)
#
# Steps: install test dependencies (apt, npm, pip) -> format check -> clippy
# with warnings as errors -> the Rust test suite (nextest) -> the real-client
# suite (headless Chromium, aiortc, PeerJS) against real pqnode processes ->
# every fuzz target for a bounded time (FUZZ_SECONDS each, default 20).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
step() { printf '\n==> %s\n' "$*"; }

step "installing test dependencies"
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi
scripts/install-test-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Rust tests (unit, property, simulator, multi-process)"
cargo nextest run --workspace --locked --no-fail-fast

step "real clients (Chromium, aiortc, PeerJS) against real nodes"
PQNODE_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/pqnode" tests/clients/run.sh

step "fuzzing every decoder (${FUZZ_SECONDS:-20} s per target)"
scripts/fuzz.sh
