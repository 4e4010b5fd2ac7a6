#!/usr/bin/env bash
# `make smoke-provider PROVIDER=modal|railway|docker`: the provider conformance suite
# against the real service, with the credentials in ENV_FILE (default .env), so an
# operator can check an account before deploying. It creates real sandboxes (which may
# cost money) and destroys them after each case. Not run in CI.
#
# Refuses, before building anything, when PROVIDER is not one of the three or its
# settings are missing. CONFORMANCE_ONLY=case,case runs some cases only.
set -euo pipefail
cd "$(dirname "$0")/.."

provider=${PROVIDER:-}
env_file=${ENV_FILE:-.env}

refuse() {
  echo "smoke-provider: $*" >&2
  exit 2
}

case "$provider" in
  modal | railway | docker) ;;
  '') refuse "say which provider: make smoke-provider PROVIDER=modal|railway|docker" ;;
  *) refuse "PROVIDER=$provider is not modal, railway or docker" ;;
esac

[ -f "$env_file" ] || refuse "$env_file is missing: the provider's credentials are read from it (ENV_FILE=...)"
set -a
# shellcheck disable=SC1090 # the operator's settings file
source "$env_file"
set +a

# `need NAME...`: every NAME is set and not empty, or a refusal naming the first missing.
need() {
  local name
  for name in "$@"; do
    [ -n "${!name:-}" ] || refuse "$name is not set in $env_file (needed for PROVIDER=$provider; docs/PROVIDERS.md)"
  done
}

case "$provider" in
  modal)
    need MODAL_TOKEN_ID MODAL_TOKEN_SECRET
    case "${MODAL_SERVER_URL:-https://api.modal.com:443}" in
      https://*) ;;
      *) refuse "MODAL_SERVER_URL=$MODAL_SERVER_URL is not Modal's API (https://...)" ;;
    esac
    ;;
  railway)
    need RAILWAY_ENVIRONMENT_ID
    [ -n "${RAILWAY_TOKEN:-}${RAILWAY_API_TOKEN:-}" ] \
      || refuse "neither RAILWAY_TOKEN (a project token) nor RAILWAY_API_TOKEN (an account token) is set in $env_file"
    ;;
  docker)
    need SANDBOX_DOCKER_IMAGE
    ;;
esac

echo "smoke-provider: the conformance suite against the real $provider service (real sandboxes are created and destroyed)"
export SMOKE_PROVIDER=$provider
exec ${CARGO:-cargo} test -p sandbox-backend --test conformance_suite -- \
  --ignored --exact providers::live::live_provider_conforms --nocapture
