#!/usr/bin/env bash
# `make release`: everything from a checkout to a running deployment, in order:
#   typecheck, test, build, push-image, deploy-worker (D1 migrations applied remotely
#   first), secrets, deploy-backend, deploy-client
# Each step is the script `make <step>` runs and stops the release when it fails.
#
# DRY_RUN=1 runs every step that needs no Cloudflare account and nothing outside
# this machine: the checks, the builds, the Worker bundle with its size and bindings
# checked, migrations on a scratch D1, the Pages build, the image build when a Docker
# Engine runs. SKIP=step,step leaves steps out and says so (the test that runs this
# dry run skips `test`, which is what runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
log_name=release
source scripts/deploy/lib.sh

steps=(typecheck test build push-image deploy-worker secrets deploy-backend deploy-client)
skip=",${SKIP:-},"
for step in ${SKIP//,/ }; do
  [[ " ${steps[*]} " == *" $step "* ]] || die "SKIP names '$step', which is not a step (${steps[*]})"
done

run_step() {
  local step=$1
  if [[ $skip == *",$step,"* ]]; then
    log "== $step: skipped (SKIP)"
    return 0
  fi
  log "== $step"
  case "$step" in
    typecheck) bash scripts/typecheck.sh ;;
    test) ${MAKE:-make} --no-print-directory test ;;
    build)
      bash scripts/build-app.sh
      bash scripts/build-worker.sh
      cargo build --release -p sandbox-backend -p nightshift-runner -p nightshift-gateway
      ;;
    push-image) bash scripts/deploy/image.sh ;;
    deploy-worker) bash scripts/deploy/worker.sh ;;
    secrets) bash scripts/deploy/secrets.sh ;;
    deploy-backend) bash scripts/deploy/backend.sh ;;
    deploy-client) bash scripts/deploy/client.sh ;;
  esac
}

if is_dry_run; then
  log "dry run: nothing leaves this machine"
  # Settings that only a real deploy needs are filled with placeholders, each named
  # as it is used; a secrets file is made for the run when there is none.
  if [ ! -f "$ENV_FILE" ]; then
    tmp_env=$(mktemp)
    trap 'rm -f "$tmp_env"' EXIT
    cp .env.example "$tmp_env"
    bash scripts/complete-env.sh "$tmp_env" > /dev/null
    ENV_FILE=$tmp_env
    export ENV_FILE
    log "dry run: no $ENV_FILE; using .env.example with generated secrets"
  fi
fi
export DRY_RUN DEPLOY_ENV_FILE ENV_FILE

for step in "${steps[@]}"; do
  run_step "$step"
done
if is_dry_run; then
  log "dry run done: every step passed; nothing was deployed"
else
  log "done: Nightshift is deployed"
fi
