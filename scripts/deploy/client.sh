#!/usr/bin/env bash
# `make deploy-client`: publishes the app where CLIENT_HOST says.
#   worker (default)  the Worker serves app/dist as its static assets: `make
#                     deploy-worker` publishes it, so there is nothing more to do
#   pages             Cloudflare Pages (project PAGES_PROJECT) with /api/* and /auth/*
#                     forwarded to the Worker by a service binding (scripts/build-pages.sh)
#
# DRY_RUN=1 builds the Pages directory and its Functions whatever CLIENT_HOST is,
# and checks that only /api/* and /auth/* reach them; nothing is published.
set -euo pipefail
cd "$(dirname "$0")/../.."
log_name=deploy-client
source scripts/deploy/lib.sh
require_wrangler

client=$(setting CLIENT_HOST worker)
case "$client" in worker | pages) ;; *) die "CLIENT_HOST='$client' must be worker or pages" ;; esac

if is_dry_run; then
  bash scripts/build-pages.sh
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  log "dry run: wrangler pages functions build (nothing is published)"
  if ! (cd target/pages && WRANGLER_SEND_METRICS=false ../../node_modules/.bin/wrangler pages functions build functions \
      --outdir "$tmp/functions" --output-routes-path "$tmp/_routes.json" > "$tmp/build.log" 2>&1); then
    cat "$tmp/build.log" >&2
    die "the Pages Functions did not build (above)"
  fi
  for route in '"/api/\*"' '"/auth/\*"'; do
    grep -q "$route" "$tmp/_routes.json" || die "the built Functions do not serve $route ($(cat "$tmp/_routes.json"))"
  done
  grep -q 'service = "' target/pages/wrangler.toml || die "target/pages/wrangler.toml has no service binding"
  [ -f target/pages/dist/index.html ] || die "target/pages/dist has no index.html"
  log "Pages build: target/pages ($(find target/pages/dist -type f | wc -l) files; Functions for $(tr -d '\n ' < "$tmp/_routes.json"))"
  log "dry run done (CLIENT_HOST=$client): nothing was published"
  exit 0
fi

if [ "$client" = worker ]; then
  log "CLIENT_HOST=worker: the Worker serves the app (app/dist) and 'make deploy-worker' published it; nothing to do"
  exit 0
fi

require_cloudflare
project=$(setting PAGES_PROJECT nightshift-app)
require PAGES_DOMAIN "the app's domain on Pages; OAuth callbacks and PUBLIC_URL use it" > /dev/null
bash scripts/build-pages.sh
if wrangler pages project list 2>/dev/null | grep -q " $project "; then
  log "Pages project $project exists"
else
  log "creating the Pages project $project"
  wrangler pages project create "$project" --production-branch main
fi
log "publishing target/pages to Pages ($project)"
(cd target/pages && WRANGLER_SEND_METRICS=false ../../node_modules/.bin/wrangler pages deploy --project-name "$project" --branch main)
log "done: attach PAGES_DOMAIN to the project once in the dashboard (docs/DEPLOY.md)"
