# shellcheck shell=bash
# Shared by the deploy scripts (scripts/deploy/*.sh, scripts/release.sh): logging,
# reading the settings files, refusing clearly when a setting is missing, and the
# DRY_RUN switch. Source it after `cd` to the repository root; it exports nothing.
#
# Settings come from two files, read as data (never executed as shell):
#   DEPLOY_ENV_FILE (default .env.deploy)  where and how to deploy (.env.deploy.example)
#   ENV_FILE        (default .env)         the secrets (.env.example)
# A variable already set in the environment wins over both files. Settings are read
# only from the deploy file and secrets only from the secrets file: a local .env
# also holds local addresses (SANDBOX_BACKEND_URL=http://127.0.0.1:8788), which must
# never reach a deployment.

DEPLOY_ENV_FILE="${DEPLOY_ENV_FILE:-.env.deploy}"
ENV_FILE="${ENV_FILE:-.env}"
DRY_RUN="${DRY_RUN:-}"

# `log <what>`: one line naming the script (set `log_name` before sourcing).
log() { printf '\033[1m[%s]\033[0m %s\n' "${log_name:-deploy}" "$*"; }

die() {
  printf '\033[1m[%s]\033[0m error: %s\n' "${log_name:-deploy}" "$*" >&2
  exit 1
}

is_dry_run() { [ -n "$DRY_RUN" ] && [ "$DRY_RUN" != 0 ]; }

# `env_file_value FILE NAME`: the value NAME has in FILE (the last assignment wins),
# without evaluating anything: quotes around the whole value are removed, nothing else.
env_file_value() {
  local file=$1 name=$2 line value=""
  [ -f "$file" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      "$name="*) value=${line#"$name="} ;;
    esac
  done < "$file"
  value=${value%$'\r'}
  case "$value" in
    \"*\") value=${value#\"}; value=${value%\"} ;;
    \'*\') value=${value#\'}; value=${value%\'} ;;
  esac
  printf '%s' "$value"
}

# `setting NAME [DEFAULT]`: the environment's value, else the deploy file's, else
# DEFAULT.
setting() {
  local name=$1 default=${2:-} value
  value=${!name:-}
  [ -n "$value" ] || value=$(env_file_value "$DEPLOY_ENV_FILE" "$name")
  [ -n "$value" ] || value=$default
  printf '%s' "$value"
}

# `secret NAME`: the environment's value, else the secrets file's.
secret() {
  local name=$1 value
  value=${!name:-}
  [ -n "$value" ] || value=$(env_file_value "$ENV_FILE" "$name")
  printf '%s' "$value"
}

# `require NAME WHY`: the setting's value, or a refusal naming it and where to set it.
require() {
  local name=$1 why=$2 value
  value=$(setting "$name")
  [ -n "$value" ] || die "$name is not set ($why); set it in $DEPLOY_ENV_FILE (see .env.deploy.example) or in the environment"
  printf '%s' "$value"
}

# `require_secret NAME`: like `require`, for a value of the secrets file.
require_secret() {
  local name=$1 value
  value=$(secret "$name")
  [ -n "$value" ] || die "$name is not set in $ENV_FILE; run 'bash scripts/complete-env.sh $ENV_FILE' (or 'make setup' for .env) to generate it"
  printf '%s' "$value"
}

wrangler() {
  WRANGLER_SEND_METRICS=false node_modules/.bin/wrangler "$@"
}

require_wrangler() {
  [ -x node_modules/.bin/wrangler ] || die "node_modules/.bin/wrangler is missing; run 'make setup'"
}

# Real deploys need an account: CLOUDFLARE_ACCOUNT_ID, and CLOUDFLARE_API_TOKEN (from
# the environment or the secrets file) unless `wrangler login` was run.
require_cloudflare() {
  CLOUDFLARE_ACCOUNT_ID=$(require CLOUDFLARE_ACCOUNT_ID "the Cloudflare account to deploy to")
  export CLOUDFLARE_ACCOUNT_ID
  # Without a token wrangler uses the account of `wrangler login`.
  CLOUDFLARE_API_TOKEN=$(secret CLOUDFLARE_API_TOKEN)
  if [ -n "$CLOUDFLARE_API_TOKEN" ]; then export CLOUDFLARE_API_TOKEN; else unset CLOUDFLARE_API_TOKEN; fi
}
