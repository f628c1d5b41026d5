#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time and reports, per
# target, how many inputs it executed and whether it crashed.
#
#   scripts/fuzz.sh                 # every target, FUZZ_SECONDS (default 20) each
#   FUZZ_SECONDS=600 scripts/fuzz.sh dht_message
#
# Installs what it needs: the nightly toolchain (cargo-fuzz builds with
# -Zsanitizer flags) and cargo-fuzz. The seeds in fuzz/seeds/<target> are kept
# in the repository; what a run discovers goes to fuzz/corpus/<target> (not
# kept). A crash leaves its input in fuzz/artifacts/<target>/: turn it into a
# regression test beside the decoder, then fix it.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${FUZZ_SECONDS:-20}"

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

cd "$root/fuzz"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

# No sanitizer: the code under test has no `unsafe`; what fuzzing looks for
# is a panic, an overflow check (debug assertions are on) or runaway memory.
cargo +nightly fuzz build -s none --debug-assertions

failed=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "seeds/$target"
  log="$(mktemp)"
  if cargo +nightly fuzz run -s none --debug-assertions "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
    status="ok"
  else
    status="CRASH (input in fuzz/artifacts/$target/)"
    failed=1
    grep -E "panicked|ERROR|SUMMARY" "$log" | head -5 || true
  fi
  runs="$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)"
  echo "fuzz: $target: ${runs:-?} executions in ${seconds} s, $status"
  rm -f "$log"
done
exit "$failed"
