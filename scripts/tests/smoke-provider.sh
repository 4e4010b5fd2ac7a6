#!/usr/bin/env bash
# `make smoke-provider` refuses, before building or reaching anything, when the
# provider is not named or its credentials are missing; and it never prints a
# secret's value. Runs with a settings file of its own, so a developer's .env plays
# no part.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/tests/assert.sh

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: > "$tmp/empty.env"
export ENV_FILE="$tmp/empty.env" CARGO=false
unset MODAL_TOKEN_ID MODAL_TOKEN_SECRET MODAL_SERVER_URL RAILWAY_TOKEN RAILWAY_API_TOKEN \
  RAILWAY_ENVIRONMENT_ID SANDBOX_DOCKER_IMAGE

# `refuses WHAT EXPECTED-TEXT PROVIDER`: the script fails and says EXPECTED-TEXT.
refuses() {
  local what=$1 expected=$2 output
  if output=$(PROVIDER=$3 bash scripts/smoke-provider.sh 2>&1); then
    fail "$what ran: $output"
  fi
  [[ $output == *"$expected"* ]] || fail "$what: expected a refusal naming '$expected', got: $output"
  [[ $output != *"sekret"* ]] || fail "$what printed a secret: $output"
}

refuses "no provider" "say which provider" ""
refuses "an unknown provider" "PROVIDER=vercel is not modal, railway or docker" vercel
refuses "modal without a token" "MODAL_TOKEN_ID is not set" modal
refuses "railway without a token" "RAILWAY_ENVIRONMENT_ID is not set" railway
refuses "docker without an image" "SANDBOX_DOCKER_IMAGE is not set" docker

echo "MODAL_TOKEN_ID=ak-sekret-id" >> "$tmp/empty.env"
refuses "modal with half a token" "MODAL_TOKEN_SECRET is not set" modal
echo "MODAL_TOKEN_SECRET=as-sekret" >> "$tmp/empty.env"
echo "MODAL_SERVER_URL=http://127.0.0.1:1" >> "$tmp/empty.env"
refuses "modal pointed at a fake" "is not Modal's API" modal
echo "RAILWAY_ENVIRONMENT_ID=env-1" >> "$tmp/empty.env"
refuses "railway with no token" "neither RAILWAY_TOKEN" railway

# With everything set, the script goes on to cargo (here `false`, so nothing runs).
echo "RAILWAY_TOKEN=sekret-project-token" >> "$tmp/empty.env"
output=$(PROVIDER=railway bash scripts/smoke-provider.sh 2>&1) && fail "CARGO=false succeeded"
[[ $output == *"against the real railway service"* ]] || fail "railway did not start the suite: $output"
[[ $output != *"sekret"* ]] || fail "a secret was printed: $output"

ENV_FILE="$tmp/none.env"
refuses "a missing settings file" "none.env is missing" modal
echo "ok: smoke-provider refusals"
