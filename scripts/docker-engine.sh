#!/usr/bin/env bash
# The Docker Engine the docker provider's tests run against, set up idempotently and
# left as it was found.
#
#   scripts/docker-engine.sh up            install docker.io and debootstrap when missing,
#                                          start a daemon of our own when none answers on
#                                          our socket, build the test image once
#   scripts/docker-engine.sh down          stop the daemon, only if `up` started it
#   scripts/docker-engine.sh run -- CMD..  `up`, CMD with the variables below, then `down`
#                                          if this call started the daemon
#   scripts/docker-engine.sh env           print the variables the tests read
#
# The daemon is our own (socket, data root, exec root and containerd namespace under
# NIGHTSHIFT_DOCKER_DIR and /run/nightshift-docker), so it neither clashes with a
# Docker the machine already runs nor leaves anything in it: no bridge (`--bridge
# none`: sandboxes get network `none`) and no iptables rules. Its data root is kept
# between runs as a cache of the image.
#
# The image (NIGHTSHIFT_TEST_DOCKER_IMAGE) is Debian bookworm from `debootstrap
# --variant=minbase` (no registry is reachable; Debian's mirror is) plus procps and a
# `sandbox` user (uid 1000, what the provider runs as) owning /workspace: the suite
# needs bash, coreutils' base64/realpath/timeout and util-linux's `setsid -w`, which a
# busybox image lacks. It is built once: its tag carries a label with the hash of this
# recipe, and the root filesystem's tarball is kept beside the data root.
set -euo pipefail
cd "$(dirname "$0")/.."

state_dir=${NIGHTSHIFT_DOCKER_DIR:-/var/lib/nightshift-docker}
run_dir=/run/nightshift-docker
socket=$run_dir/docker.sock
image=nightshift-test-base:bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Everything the image is made of; its hash decides whether it is rebuilt.
recipe="debootstrap --variant=minbase --include=procps bookworm; useradd -u 1000 -m -s /bin/bash sandbox; /workspace 1000:1000; v1"
recipe_hash=$(printf %s "$recipe" | sha256sum | cut -c1-16)

log() { printf '\033[1m[docker-engine]\033[0m %s\n' "$*" >&2; }
docker_cli() { docker -H "unix://$socket" "$@"; }

install_packages() {
  local missing=()
  for pkg in docker.io debootstrap; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    local sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

answers() { docker_cli version --format '{{.Server.APIVersion}}' >/dev/null 2>&1; }

start_daemon() {
  if answers; then
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    log "no Docker Engine answers on $socket and starting one needs root"
    return 1
  fi
  mkdir -p "$state_dir/data" "$run_dir"
  log "starting dockerd on $socket (data root $state_dir/data)"
  setsid dockerd \
    --host "unix://$socket" \
    --data-root "$state_dir/data" \
    --exec-root "$run_dir/exec" \
    --pidfile "$run_dir/dockerd.pid" \
    --containerd-namespace nightshift \
    --containerd-plugins-namespace nightshift-plugins \
    --bridge none --iptables=false --ip-masq=false --ip-forward=false \
    >"$run_dir/dockerd.log" 2>&1 < /dev/null &
  echo $! > "$run_dir/started-by-us"
  for _ in $(seq 1 150); do
    if answers; then
      return 0
    fi
    sleep 0.2
  done
  log "dockerd did not answer within 30 s; its log:"
  tail -20 "$run_dir/dockerd.log" >&2
  return 1
}

stop_daemon() {
  [ -f "$run_dir/started-by-us" ] || return 0
  local pid
  pid=$(cat "$run_dir/started-by-us")
  rm -f "$run_dir/started-by-us"
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping the dockerd this script started (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || return 0
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

build_image() {
  local have
  have=$(docker_cli image inspect --format '{{index .Config.Labels "nightshift.recipe"}}' "$image" 2>/dev/null || true)
  if [ "$have" = "$recipe_hash" ]; then
    return 0
  fi
  local tarball=$state_dir/rootfs-$recipe_hash.tar
  if [ ! -f "$tarball" ]; then
    log "building the test image's root filesystem with debootstrap (once, about a minute)"
    local root
    root=$(mktemp -d "$state_dir/rootfs.XXXXXX")
    debootstrap --variant=minbase --include=procps bookworm "$root" "$mirror" >"$state_dir/debootstrap.log" 2>&1 \
      || { tail -20 "$state_dir/debootstrap.log" >&2; rm -rf "$root"; return 1; }
    chroot "$root" useradd -u 1000 -m -s /bin/bash sandbox
    mkdir -p "$root/workspace"
    chown 1000:1000 "$root/workspace"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    rm -rf "$root"
  fi
  log "importing $image"
  docker_cli import \
    --change "LABEL nightshift.recipe=$recipe_hash" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'WORKDIR /workspace' \
    --change 'CMD ["bash"]' \
    "$tarball" "$image" >/dev/null
}

print_env() {
  echo "NIGHTSHIFT_TEST_DOCKER_HOST=unix://$socket"
  echo "NIGHTSHIFT_TEST_DOCKER_IMAGE=$image"
}

up() {
  install_packages
  mkdir -p "$state_dir"
  start_daemon
  build_image
}

case "${1:-}" in
  up) up ;;
  down) stop_daemon ;;
  env) print_env ;;
  run)
    shift
    [ "${1:-}" = "--" ] && shift
    [ $# -gt 0 ] || { echo "usage: $0 run -- COMMAND..." >&2; exit 2; }
    if [ "${DOCKER_TESTS:-}" = skip ]; then
      log "DOCKER_TESTS=skip: the docker provider's tests against a real Engine are skipped"
      exec "$@"
    fi
    # A marker whose daemon is gone is stale (a run that was killed).
    if [ -f "$run_dir/started-by-us" ] && ! kill -0 "$(cat "$run_dir/started-by-us")" 2>/dev/null; then
      rm -f "$run_dir/started-by-us"
    fi
    already=$([ -f "$run_dir/started-by-us" ] && echo yes || echo no)
    if [ "$already" = no ]; then
      trap stop_daemon EXIT
    fi
    # Without an Engine the command still runs: the tests that need one then fail
    # saying so, and the others run as usual.
    bash scripts/docker-engine.sh up || log "no Docker Engine could be set up; the docker provider's tests will fail (DOCKER_TESTS=skip opts out)"
    while IFS='=' read -r name value; do
      export "$name=$value"
    done < <(print_env)
    "$@"
    ;;
  *)
    echo "usage: $0 up|down|env|run -- COMMAND..." >&2
    exit 2
    ;;
esac
