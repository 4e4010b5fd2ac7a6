# shellcheck shell=bash
# Assertions for the script tests in scripts/tests/ (sourced). Each failure names
# what was expected and exits non-zero, so `scripts/tests/run.sh` and the cargo test
# that runs it fail.

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# `assert_eq EXPECTED ACTUAL WHAT`
assert_eq() {
  [ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
}

# `value_of FILE NAME`: NAME's last value in an env file, quotes removed.
value_of() {
  local value
  value=$(grep "^$2=" "$1" | tail -n1 | cut -d= -f2-)
  value=${value#\"}
  value=${value%\"}
  printf '%s' "$value"
}
