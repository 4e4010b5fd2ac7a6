#!/usr/bin/env bash
# `make secrets`: sets the production Worker's secrets with `wrangler secret put`,
# one by one, each value written to wrangler's stdin (never in an argument, never
# printed), from the secrets file ENV_FILE (default .env; .env.example describes it).
# Setting a secret again replaces it, so this is idempotent.
#
# DRY_RUN=1 checks the file and names the secrets it would set.
set -euo pipefail
cd "$(dirname "$0")/../.."
log_name=secrets
source scripts/deploy/lib.sh
source scripts/deploy/wrangler-config.sh
require_wrangler

[ -f "$ENV_FILE" ] || die "$ENV_FILE is missing: copy .env.example and run 'bash scripts/complete-env.sh $ENV_FILE'"

# Without these the Worker cannot start sessions or read stored keys.
required=(RUNNER_TOKEN_SECRET SANDBOX_BACKEND_TOKEN ENCRYPTION_KEY)
# Set when present: the first admin's invite code, LLM keys, OAuth client secrets.
optional=(SETUP_CODE LLM_API_KEY ANTHROPIC_API_KEY GITHUB_CLIENT_SECRET GOOGLE_CLIENT_SECRET)

names=()
for name in "${required[@]}"; do
  require_secret "$name" > /dev/null
  names+=("$name")
done
for name in "${optional[@]}"; do
  [ -z "$(secret "$name")" ] || names+=("$name")
done

if is_dry_run; then
  render_wrangler_config
  log "dry run: would set ${#names[@]} secrets from $ENV_FILE: ${names[*]}"
  exit 0
fi

require_cloudflare
render_wrangler_config
for name in "${names[@]}"; do
  secret "$name" \
    | wrangler secret put "$name" -c "$deploy_config" --env production > /dev/null \
    || die "wrangler secret put $name failed"
  log "set $name"
done
log "done: ${#names[@]} secrets set on the production Worker"
