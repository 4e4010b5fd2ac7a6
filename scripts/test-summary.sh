#!/usr/bin/env bash
# `scripts/test-summary.sh LOG`: one line adding up every test result in a test run's
# output: cargo test's `test result:` lines and cargo-nextest's
# `Summary [...] N tests run:` line (the end-to-end suite, scripts/test-e2e.sh), with
# nextest's timed-out tests counted as failed. `.ci/run` prints it.
set -euo pipefail
log=${1:?usage: scripts/test-summary.sh LOG}
results=$(grep -aE '^test result:|^ *Summary \[.*tests? run:' "$log" || true)
# The sum of every "<number> <what>" in the results; 0 when none says it.
count() {
  printf '%s\n' "$results" | { grep -oE "[0-9]+ $1" || true; } | awk '{s+=$1} END {print s+0}'
}
passed=$(count passed)
failed=$(count failed)
timed_out=$(count 'timed out')
echo "tests: $passed passed, $((failed + timed_out)) failed"
