#!/usr/bin/env bash
# Builds the sandbox image (docker/Dockerfile) offline, from what this host built and
# installed, once per change of its inputs; prints the image's tag on stdout.
#
#   scripts/sandbox-image.sh            build (or find) the image, print its tag
#   scripts/sandbox-image.sh size       ... and print its size in bytes instead
#
# The host is Debian bookworm, as the image is, so its binaries run there: the runner
# and the gateway from target/$PROFILE (`cargo build`), Node (`command -v node`) and
# code-server as `make setup` installed it (/usr/local/lib/nightshift/code-server,
# scripts/install-code-server.sh) are staged into a build context
# (a fresh directory under target/sandbox-image, hard links where possible) and built with
# `BINARIES=host` on BASE_IMAGE. The desktop's packages come from Debian's mirror:
# the build runs with `--network host` (the test Engine has no bridge).
#
# The tag is `nightshift-sandbox:<hash>`, the hash of every input (the Dockerfile,
# the entrypoint, the binaries, Node, code-server's version and install script, the
# base image's id); an image with that tag is reused, so a test run builds it only
# when one of them changed. `nightshift-sandbox:local` names the latest one.
#
# Settings: DOCKER_HOST (default: the test Engine, scripts/docker-engine.sh env),
# PROFILE (debug, what `make build` leaves; release), BASE_IMAGE
# (nightshift-test-base:bookworm), NIGHTSHIFT_CODE_SERVER_DIR
# (/usr/local/lib/nightshift/code-server).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[sandbox-image]\033[0m %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

if [ -z "${DOCKER_HOST:-}" ]; then
  DOCKER_HOST=$(bash scripts/docker-engine.sh env | sed -n 's/^NIGHTSHIFT_TEST_DOCKER_HOST=//p')
  export DOCKER_HOST
fi
# Debian's client (20.10) builds with BuildKit against the test Engine without a
# buildx plugin; a newer client without the plugin cannot.
docker_cli=/usr/bin/docker
[ -x "$docker_cli" ] || docker_cli=docker
docker() { DOCKER_BUILDKIT=1 "$docker_cli" "$@"; }

profile=${PROFILE:-debug}
base=${BASE_IMAGE:-nightshift-test-base:bookworm}
code_server=${NIGHTSHIFT_CODE_SERVER_DIR:-/usr/local/lib/nightshift/code-server}
target=${CARGO_TARGET_DIR:-target}
bin_dir=$target/$profile

for binary in runner nightshift-gateway; do
  [ -x "$bin_dir/$binary" ] || die "$bin_dir/$binary is missing: build it first (cargo build -p nightshift-runner -p nightshift-gateway${profile/debug/})"
done
node_bin=$(command -v node) || die "node is missing: run make setup"
node_bin=$(readlink -f "$node_bin")
code_server_version=$(node -e "console.log(require('$code_server/node_modules/code-server/package.json').version)" 2>/dev/null) \
  || die "code-server is not installed in $code_server: run make setup"
base_id=$(docker image inspect --format '{{.Id}}' "$base" 2>/dev/null) \
  || die "the base image $base is missing (scripts/docker-engine.sh up builds the test one)"

hash=$(
  {
    sha256sum docker/Dockerfile docker/entrypoint.sh scripts/install-code-server.sh \
      "$bin_dir/runner" "$bin_dir/nightshift-gateway" "$node_bin" | cut -d' ' -f1
    echo "code-server $code_server_version"
    echo "base $base_id"
  } | sha256sum | cut -c1-16
)
tag=nightshift-sandbox:$hash

report() {
  if [ "${1:-}" = size ]; then
    docker image inspect --format '{{.Size}}' "$tag"
  else
    echo "$tag"
  fi
}

if docker image inspect "$tag" > /dev/null 2>&1; then
  log "$tag is built (its inputs have not changed)"
  docker tag "$tag" nightshift-sandbox:local
  report "${1:-}"
  exit 0
fi

# A directory of its own per build: two builds at once (a test and a dry run) do not
# share one.
mkdir -p "$target/sandbox-image"
context=$(mktemp -d "$target/sandbox-image/context.XXXXXX")
trap 'rm -rf "$context"' EXIT
log "staging the build context in $context"
mkdir -p "$context/docker" "$context/host/bin" "$context/host/lib/nightshift"
cp docker/Dockerfile docker/entrypoint.sh "$context/docker/"
# Hard links cost nothing on one file system; a copy otherwise.
link_or_copy() { cp -al "$1" "$2" 2> /dev/null || cp -a "$1" "$2"; }
link_or_copy "$bin_dir/runner" "$context/host/bin/runner"
link_or_copy "$bin_dir/nightshift-gateway" "$context/host/bin/nightshift-gateway"
link_or_copy "$node_bin" "$context/host/bin/node"
link_or_copy "$code_server" "$context/host/lib/nightshift/code-server"

log "building $tag on $base (BINARIES=host, PROFILE=$profile)"
started=$(date +%s)
docker build --network host \
  -f "$context/docker/Dockerfile" \
  --build-arg BINARIES=host \
  --build-arg "BASE_IMAGE=$base" \
  --label "nightshift.inputs=$hash" \
  -t "$tag" "$context" >&2 || die "the sandbox image did not build"
docker tag "$tag" nightshift-sandbox:local
rm -rf "$context"
# Earlier builds' tags go (disk is finite); the build cache keeps their shared layers.
docker image ls --format '{{.Repository}}:{{.Tag}}' nightshift-sandbox \
  | grep -E '^nightshift-sandbox:[0-9a-f]{16}$' | grep -vx "$tag" \
  | xargs -r "$docker_cli" image rm > /dev/null 2>&1 || true
size=$(docker image inspect --format '{{.Size}}' "$tag")
log "built $tag in $(($(date +%s) - started)) s: $((size / 1024 / 1024)) MiB"
report "${1:-}"
