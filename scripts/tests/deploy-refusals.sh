#!/usr/bin/env bash
# Every deploy target refuses, before doing anything, with a message naming the
# setting it misses; and none of them prints a secret's value. Runs with empty
# settings files, so a developer's own .env and .env.deploy play no part.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/tests/assert.sh

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: > "$tmp/deploy.env"
: > "$tmp/secrets.env"
export DEPLOY_ENV_FILE="$tmp/deploy.env" ENV_FILE="$tmp/secrets.env" NO_COLOR=1
unset DRY_RUN CLOUDFLARE_ACCOUNT_ID CLOUDFLARE_API_TOKEN SANDBOX_BACKEND_URL

# `refuses WHAT EXPECTED-TEXT COMMAND...`: the command fails and says EXPECTED-TEXT.
refuses() {
  local what=$1 expected=$2 output
  shift 2
  if output=$("$@" 2>&1); then
    fail "$what succeeded without its settings: $output"
  fi
  [[ $output == *"$expected"* ]] || fail "$what: expected a refusal naming '$expected', got: $output"
}

refuses deploy-worker "CLOUDFLARE_ACCOUNT_ID is not set" bash scripts/deploy/worker.sh
refuses "db-migrate DB=remote" "CLOUDFLARE_ACCOUNT_ID is not set" env DB=remote bash scripts/deploy/db.sh migrate
refuses db-seed "runs only on DB=local" env DB=remote bash scripts/deploy/db.sh seed
refuses db-reset "runs only on DB=local" env DB=remote bash scripts/deploy/db.sh reset
refuses secrets "RUNNER_TOKEN_SECRET is not set in $ENV_FILE" bash scripts/deploy/secrets.sh
refuses deploy-backend "SANDBOX_BACKEND_URL is not set" bash scripts/deploy/backend.sh
refuses "push-image (docker)" "SANDBOX_IMAGE is not set" env SANDBOX_PROVIDER=docker bash scripts/deploy/image.sh
refuses "deploy-client (pages)" "CLOUDFLARE_ACCOUNT_ID is not set" env CLIENT_HOST=pages bash scripts/deploy/client.sh
refuses "deploy-client (bad host)" "CLIENT_HOST='vercel' must be worker or pages" env CLIENT_HOST=vercel bash scripts/deploy/client.sh

# With the account set, the Worker's deploy names the next missing setting.
echo "CLOUDFLARE_ACCOUNT_ID=0123456789abcdef0123456789abcdef" >> "$tmp/deploy.env"
refuses "deploy-worker (no domain)" "WORKER_DOMAIN is not set" bash scripts/deploy/worker.sh
echo "WORKER_DOMAIN=nightshift.example.com" >> "$tmp/deploy.env"
refuses "deploy-worker (no database)" "D1_DATABASE_ID is not set" bash scripts/deploy/worker.sh
# A value that would break out of the rendered TOML is refused, not rendered.
refuses "deploy-worker (quoted domain)" "WORKER_DOMAIN='x\" evil' is not valid" \
  env WORKER_DOMAIN='x" evil' bash scripts/deploy/worker.sh
# The development sign-in never reaches a deployed Worker.
printf '%s\n' "D1_DATABASE_ID=00000000-0000-0000-0000-000000000001" \
  "SANDBOX_BACKEND_URL=https://sandboxes.example.com" "DEV_AUTH=true" >> "$tmp/deploy.env"
refuses "deploy-worker (DEV_AUTH)" "DEV_AUTH is set" bash scripts/deploy/worker.sh

# The dry run of `make secrets` names the secrets, never their values.
bash scripts/complete-env.sh "$tmp/secrets.env" > /dev/null
sed -i '/^DEV_AUTH=/d' "$tmp/deploy.env"
output=$(DRY_RUN=1 bash scripts/deploy/secrets.sh 2>&1) || fail "secrets dry run failed: $output"
[[ $output == *"would set 4 secrets"*"RUNNER_TOKEN_SECRET"* ]] || fail "secrets dry run: $output"
while IFS='=' read -r name value; do
  [ -n "$value" ] || continue
  [[ $output != *"$value"* ]] || fail "the secrets dry run printed the value of $name"
done < <(grep -E '^(RUNNER_TOKEN_SECRET|SANDBOX_BACKEND_TOKEN|ENCRYPTION_KEY|SETUP_CODE)=' "$tmp/secrets.env")
rm -f wrangler.deploy.toml

echo "ok: deploy-refusals"
