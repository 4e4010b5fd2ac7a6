#!/usr/bin/env bash
# `make push-image`: builds the sandbox image (docker/Dockerfile) as SANDBOX_IMAGE and
# pushes it to its registry, for the remote providers (docker, modal, railway) that
# start sandboxes from an image. With SANDBOX_PROVIDER=local there is no image.
#
# DRY_RUN=1 builds the image, without pushing, only when a Docker Engine answers
# (`docker info`), and says it skipped the build otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."
log_name=push-image
source scripts/deploy/lib.sh

provider=$(setting SANDBOX_PROVIDER local)
case "$provider" in local | docker | modal | railway) ;; *) die "SANDBOX_PROVIDER='$provider' must be local, docker, modal or railway" ;; esac

engine_running() { command -v docker > /dev/null && docker info > /dev/null 2>&1; }

if is_dry_run; then
  if ! engine_running; then
    log "dry run: skipped the sandbox image build: no Docker Engine is running here (docker info failed)"
    exit 0
  fi
  log "dry run: docker build -f docker/Dockerfile -t nightshift-sandbox:dry-run . (not pushed)"
  docker build -q -f docker/Dockerfile -t nightshift-sandbox:dry-run . || die "the sandbox image did not build"
  log "dry run done: built nightshift-sandbox:dry-run; nothing was pushed"
  exit 0
fi

if [ "$provider" = local ]; then
  log "SANDBOX_PROVIDER=local runs sandboxes under bubblewrap on the backend's host: no image to push"
  exit 0
fi
image=$(require SANDBOX_IMAGE "the registry name of the sandbox image, e.g. ghcr.io/you/nightshift-sandbox:1")
command -v docker > /dev/null || die "the docker CLI is missing; install Docker to build and push the sandbox image"
engine_running || die "no Docker Engine answers (docker info failed); start one to build the sandbox image"
log "building $image from docker/Dockerfile"
docker build -f docker/Dockerfile -t "$image" .
log "pushing $image (docker login to its registry first if this is refused)"
docker push "$image"
log "done: $image pushed; the backend starts sandboxes from it (SANDBOX_DOCKER_IMAGE / MODAL_IMAGE)"
