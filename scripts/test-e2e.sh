#!/usr/bin/env bash
# The end-to-end suite (integration and browser tests against the real stack).
#
# With cargo-nextest when the machine has it: the tests of every file share the
# slots, so a file of one test does not leave a slot idle while the next file waits
# (cargo test runs one file after another), and a test stuck for 10 minutes is
# killed (.config/nextest.toml). Without it, cargo test, one file at a time.
# E2E_JOBS (default 2) is how many tests run at once, each with a stack of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}
jobs=${E2E_JOBS:-2}
if "$cargo" nextest --version >/dev/null 2>&1; then
  exec "$cargo" nextest run -p nightshift-e2e --test-threads "$jobs"
fi
exec "$cargo" test -p nightshift-e2e -- --test-threads="$jobs"
