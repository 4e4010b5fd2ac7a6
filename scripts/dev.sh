#!/usr/bin/env bash
# Runs the whole stack on localhost: the sandbox backend on :8788 (local provider)
# and the Worker under `wrangler dev` on :8787 (local D1, R2 and Durable Objects,
# state in .wrangler/state), which also serves the app. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f .env ] || { echo ".env is missing: run 'make setup'" >&2; exit 1; }
set -a; source .env; set +a
export WRANGLER_SEND_METRICS=false
# Runners dial the Worker back here, never at whatever Host a request named.
export WORKER_URL="${WORKER_URL:-http://127.0.0.1:8787}"

npx wrangler d1 migrations apply DB --local >/dev/null

backend_pid=""
cleanup() { if [ -n "$backend_pid" ]; then kill "$backend_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT INT TERM

# Runners start OpenCode (npm opencode-ai) inside sandboxes: name its binary and make
# its directory visible there, unless .env already does.
for candidate in node_modules/opencode-linux-x64/bin/opencode node_modules/opencode-linux-arm64/bin/opencode; do
  if [ -x "$candidate" ]; then
    opencode_bin=$(readlink -f "$candidate")
    export NIGHTSHIFT_OPENCODE_BIN="${NIGHTSHIFT_OPENCODE_BIN:-$opencode_bin}"
    export SANDBOX_RO_BINDS="${SANDBOX_RO_BINDS:-$(dirname "$opencode_bin")}"
    break
  fi
done

RUNNER_BIN="$PWD/target/release/runner" ./target/release/sandbox-backend &
backend_pid=$!

echo
echo "  Nightshift is starting: open http://127.0.0.1:8787"
if [ -n "${SETUP_CODE:-}" ]; then
  echo "  The first admin signs in at http://127.0.0.1:8787/signin?invite=$SETUP_CODE"
  echo "  (the development sign-in on this machine works without it; so does ADMIN_EMAILS)"
fi
echo
npx wrangler dev --ip 127.0.0.1 --port 8787 --env-file .env --var "WORKER_URL:$WORKER_URL" \
  --show-interactive-dev-session=false
