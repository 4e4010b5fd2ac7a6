#!/usr/bin/env bash
# `make push-image`: builds the sandbox image (docker/Dockerfile) as SANDBOX_IMAGE and
# pushes it to its registry, for the remote providers (docker, modal, railway) that
# start sandboxes from an image. With SANDBOX_PROVIDER=local there is no image.
#
# With SANDBOX_IMAGE_BASE (a local Debian bookworm image) the image is built offline
# from the release binaries, Node and code-server of this host
# (scripts/sandbox-image.sh); without it, everything is built in the image from the
# registry's base images.
#
# DRY_RUN=1 builds the image, without pushing, only when a Docker Engine answers
# (`docker info`; the test Engine of scripts/docker-engine.sh when DOCKER_HOST names
# none and that one runs), and says it skipped the build otherwise. On the test
# Engine, which reaches no registry, it builds offline on its base image.
set -euo pipefail
cd "$(dirname "$0")/../.."
log_name=push-image
source scripts/deploy/lib.sh

provider=$(setting SANDBOX_PROVIDER local)
case "$provider" in local | docker | modal | railway) ;; *) die "SANDBOX_PROVIDER='$provider' must be local, docker, modal or railway" ;; esac

test_engine=unix:///run/nightshift-docker/docker.sock
test_base=nightshift-test-base:bookworm
engine_running() { command -v docker > /dev/null && docker info > /dev/null 2>&1; }
if [ -z "${DOCKER_HOST:-}" ] && ! engine_running \
  && DOCKER_HOST=$test_engine docker info > /dev/null 2>&1; then
  export DOCKER_HOST=$test_engine
fi

base=$(setting SANDBOX_IMAGE_BASE)
if [ -z "$base" ] && is_dry_run && engine_running && docker image inspect "$test_base" > /dev/null 2>&1; then
  base=$test_base
fi

# `build TAG`: the image, offline on $base or from the registry.
build() {
  local tag=$1 built
  if [ -n "$base" ]; then
    if [ ! -x target/release/runner ] || [ ! -x target/release/nightshift-gateway ]; then
      cargo build --release -p nightshift-runner -p nightshift-gateway
    fi
    log "building the sandbox image offline on $base from this host's release binaries"
    built=$(PROFILE=release BASE_IMAGE=$base bash scripts/sandbox-image.sh) || die "the sandbox image did not build"
    docker tag "$built" "$tag"
    log "$tag is $built ($(($(docker image inspect --format '{{.Size}}' "$tag") / 1024 / 1024)) MiB)"
  else
    log "docker build -f docker/Dockerfile -t $tag ."
    DOCKER_BUILDKIT=1 docker build -q -f docker/Dockerfile -t "$tag" . || die "the sandbox image did not build"
  fi
}

if is_dry_run; then
  if ! engine_running; then
    log "dry run: skipped the sandbox image build: no Docker Engine is running here (docker info failed)"
    exit 0
  fi
  build nightshift-sandbox:dry-run
  log "dry run: built nightshift-sandbox:dry-run; nothing was pushed"
  exit 0
fi

if [ "$provider" = local ]; then
  log "SANDBOX_PROVIDER=local runs sandboxes under bubblewrap on the backend's host: no image to push"
  exit 0
fi
image=$(require SANDBOX_IMAGE "the registry name of the sandbox image, e.g. ghcr.io/you/nightshift-sandbox:1")
command -v docker > /dev/null || die "the docker CLI is missing; install Docker to build and push the sandbox image"
engine_running || die "no Docker Engine answers (docker info failed); start one to build the sandbox image"
build "$image"
log "pushing $image (docker login to its registry first if this is refused)"
docker push "$image"
log "done: $image pushed; the backend starts sandboxes from it (SANDBOX_DOCKER_IMAGE / MODAL_IMAGE)"
