#!/usr/bin/env bash
# Runs every script test (scripts/tests/*.sh but this one and the sourced assert.sh)
# and, when shellcheck is installed, checks every script of scripts/. Exits non-zero
# if any test fails. `make test-scripts` runs it; so does e2e/tests/scripts.rs.
set -euo pipefail
cd "$(dirname "$0")/../.."

failed=0
for test in scripts/tests/*.sh; do
  case "$test" in */run.sh | */assert.sh) continue ;; esac
  echo "== $test"
  bash "$test" || { echo "FAILED: $test" >&2; failed=1; }
done

if command -v shellcheck >/dev/null; then
  echo "== shellcheck"
  shellcheck -x -P SCRIPTDIR scripts/*.sh scripts/*/*.sh || failed=1
else
  echo "== shellcheck not installed (apt-get install shellcheck): scripts not linted"
fi
exit "$failed"
