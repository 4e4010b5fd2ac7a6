#!/usr/bin/env bash
# `make deploy-backend`: installs the sandbox backend and the runner (release builds
# from target/release) where BACKEND_DEPLOY says, then checks that it answers at
# SANDBOX_BACKEND_URL.
#   ssh   copies the binaries and the backend's settings to BACKEND_HOST over ssh
#         (binaries into BACKEND_DIR, settings into /etc/nightshift/sandbox-backend.env,
#         mode 600, written through stdin so no value is printed or in an argument)
#         and restarts the systemd unit nightshift-sandbox-backend there
#   none  the backend is run some other way (docs/DEPLOY.md): only the check
#
# DRY_RUN=1 checks the binaries and the settings and prints the commands it would run.
set -euo pipefail
cd "$(dirname "$0")/../.."
log_name=deploy-backend
source scripts/deploy/lib.sh

mode=$(setting BACKEND_DEPLOY ssh)
case "$mode" in ssh | none) ;; *) die "BACKEND_DEPLOY='$mode' must be ssh or none" ;; esac
bin_dir=${NIGHTSHIFT_RELEASE_DIR:-${CARGO_TARGET_DIR:-target}/release}

# The backend's secrets (from the secrets file) and settings (from the deploy file)
# that travel to its host when set (docs/CONFIG.md).
backend_secrets=(SANDBOX_BACKEND_TOKEN MODAL_TOKEN_ID MODAL_TOKEN_SECRET RAILWAY_TOKEN RAILWAY_API_TOKEN)
backend_settings=(
  SANDBOX_BACKEND_LISTEN SANDBOX_BACKEND_BEHIND_TLS_PROXY SANDBOX_BACKEND_TLS_CERT
  SANDBOX_BACKEND_TLS_KEY SANDBOX_LOCAL_PROVIDER
  SANDBOX_ALLOW_PRIVATE_NETWORK SANDBOX_ALLOW_UNLIMITED SANDBOX_HOST_UID SANDBOX_HOST_GID
  SANDBOX_PIDS_MAX SANDBOX_MEMORY_MAX SANDBOX_CPU_WEIGHT SANDBOX_CPU_MAX SANDBOX_TMP_MAX
  SANDBOX_DISK_MAX SANDBOX_FILE_MAX SANDBOX_WARM_POOL SANDBOX_RO_BINDS
  MODAL_APP MODAL_IMAGE MODAL_PORTS MODAL_ENVIRONMENT
  RAILWAY_ENVIRONMENT_ID RAILWAY_IDLE_TIMEOUT_MINUTES
  SANDBOX_DOCKER_IMAGE DOCKER_HOST SANDBOX_DOCKER_PIDS_LIMIT SANDBOX_DOCKER_MEMORY_MB
  SANDBOX_DOCKER_CPUS SANDBOX_DOCKER_TMP_MB SANDBOX_DOCKER_USER
)

# The backend's environment file, on stdout: the settings above that are set, with
# the data directory and runner path of the host layout.
backend_env() {
  local name value provider
  provider=$(setting SANDBOX_PROVIDER local)
  echo "# Written by scripts/deploy/backend.sh; rewritten on every deploy."
  echo "NIGHTSHIFT_DATA_DIR=/var/lib/nightshift"
  echo "RUNNER_BIN=$backend_dir/runner"
  echo "SANDBOX_DEFAULT_PROVIDER=$provider"
  for name in "${backend_settings[@]}"; do
    value=$(setting "$name")
    [ -z "$value" ] || printf '%s=%s\n' "$name" "$value"
  done
  for name in "${backend_secrets[@]}"; do
    value=$(secret "$name")
    [ -z "$value" ] || printf '%s=%s\n' "$name" "$value"
  done
}

check_health() {
  local url=$1
  if is_dry_run; then
    log "dry run: would check $url/v1/health"
    return 0
  fi
  log "checking $url/v1/health"
  curl -fsS --max-time 10 "$url/v1/health" > /dev/null \
    || die "the sandbox backend does not answer at $url/v1/health (docs/DEPLOY.md, troubleshooting)"
  log "the sandbox backend answers at $url"
}

if is_dry_run; then
  url=$(setting SANDBOX_BACKEND_URL https://sandboxes.example.com)
else
  url=$(require SANDBOX_BACKEND_URL "the sandbox backend's HTTPS address the Worker calls")
fi
backend_dir=$(setting BACKEND_DIR /opt/nightshift/bin)
[[ $backend_dir =~ ^/[A-Za-z0-9._/-]+$ ]] || die "BACKEND_DIR='$backend_dir' must be an absolute path of letters, digits, '.', '_', '-', '/'"
require_secret SANDBOX_BACKEND_TOKEN > /dev/null

if [ "$mode" = none ]; then
  log "BACKEND_DEPLOY=none: the sandbox backend is deployed outside this script"
  check_health "$url"
  exit 0
fi

for binary in sandbox-backend runner nightshift-gateway; do
  [ -x "$bin_dir/$binary" ] || die "$bin_dir/$binary is missing; run 'make build-native-release'"
done
# The hardened unit (deploy/systemd/), pointed at BACKEND_DIR; a backend without the
# local provider also gets the remote-only drop-in (its own user, no root).
unit_file=deploy/systemd/nightshift-sandbox-backend.service
dropin_file=deploy/systemd/remote-only.conf
remote_only() { [ "$(setting SANDBOX_LOCAL_PROVIDER true)" = false ]; }

if is_dry_run; then
  host=$(setting BACKEND_HOST nightshift@sandboxes.example.com)
  lines=$(backend_env | grep -c '=')
  log "dry run: would copy $bin_dir/{sandbox-backend,runner} to $host:$backend_dir"
  log "dry run: would write /etc/nightshift/sandbox-backend.env there ($lines settings)"
  log "dry run: would install $unit_file$(remote_only && echo " with $dropin_file") and restart nightshift-sandbox-backend"
  check_health "$url"
  log "dry run done: nothing was copied"
  exit 0
fi

host=$(require BACKEND_HOST "the ssh destination the backend runs on, e.g. nightshift@sandboxes.example.com")
log "copying sandbox-backend and runner to $host:$backend_dir"
# Upload beside the old binaries, then rename: a running backend keeps its file.
# BACKEND_DIR was checked above to hold no quote or space; it is expanded here on
# purpose, into the remote command.
# shellcheck disable=SC2029
ssh "$host" "mkdir -p '$backend_dir'"
scp -q "$bin_dir/sandbox-backend" "$host:$backend_dir/sandbox-backend.new"
scp -q "$bin_dir/runner" "$host:$backend_dir/runner.new"
# shellcheck disable=SC2029
ssh "$host" "mv '$backend_dir/sandbox-backend.new' '$backend_dir/sandbox-backend' && mv '$backend_dir/runner.new' '$backend_dir/runner'"
log "writing /etc/nightshift/sandbox-backend.env on $host"
backend_env | ssh "$host" "sudo install -d -m 700 /etc/nightshift && sudo sh -c 'umask 077; cat > /etc/nightshift/sandbox-backend.env'"
log "installing the systemd unit nightshift-sandbox-backend on $host"
sed "s#^ExecStart=/opt/nightshift/bin/sandbox-backend#ExecStart=$backend_dir/sandbox-backend#" "$unit_file" \
  | ssh "$host" "sudo sh -c 'cat > /etc/systemd/system/nightshift-sandbox-backend.service'"
if remote_only; then
  ssh "$host" "id -u nightshift >/dev/null 2>&1 || sudo useradd --system --no-create-home --shell /usr/sbin/nologin nightshift"
  ssh "$host" "sudo install -d /etc/systemd/system/nightshift-sandbox-backend.service.d && sudo sh -c 'cat > /etc/systemd/system/nightshift-sandbox-backend.service.d/remote-only.conf'" < "$dropin_file"
else
  ssh "$host" "sudo rm -f /etc/systemd/system/nightshift-sandbox-backend.service.d/remote-only.conf"
fi
ssh "$host" "sudo systemctl daemon-reload && sudo systemctl enable -q nightshift-sandbox-backend"
log "restarting nightshift-sandbox-backend on $host"
ssh "$host" "sudo systemctl restart nightshift-sandbox-backend" \
  || die "could not restart the unit nightshift-sandbox-backend on $host: install it first (docs/DEPLOY.md)"
check_health "$url"
