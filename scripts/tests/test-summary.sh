#!/usr/bin/env bash
# scripts/test-summary.sh (the line `.ci/run` ends with) adds up cargo test's and
# nextest's results, and answers a green run too: a run with no failure and no
# timed-out test once made `.ci/run` exit 1 without printing anything.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/tests/assert.sh

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A green run: two cargo test binaries and nextest's summary, no "timed out" anywhere.
cat > "$tmp/green.log" <<'LOG'
test result: ok. 124 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.09s
test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 144 filtered out; finished in 10.90s
        PASS [   0.101s] (100/137) nightshift-e2e::release_dry_run a_dry_run_stops_at_the_first_step_that_fails
     Summary [1003.173s] 137 tests run: 137 passed, 0 skipped
LOG
out=$(bash scripts/test-summary.sh "$tmp/green.log") || fail "a green run's summary exited non-zero"
assert_eq "tests: 264 passed, 0 failed" "$out" "a green run"

# A red one: a failed cargo test, and nextest's failures and timeouts.
cat > "$tmp/red.log" <<'LOG'
test result: FAILED. 40 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s
     Summary [1165.863s] 136 tests run: 133 passed (1 slow), 2 failed, 1 timed out, 0 skipped
LOG
assert_eq "tests: 173 passed, 5 failed" "$(bash scripts/test-summary.sh "$tmp/red.log")" "a red run"

# A run that stopped before any test.
: > "$tmp/empty.log"
assert_eq "tests: 0 passed, 0 failed" "$(bash scripts/test-summary.sh "$tmp/empty.log")" "no results"
echo "test-summary: ok"
