#!/usr/bin/env bash
# Assembles the app for Cloudflare Pages in target/pages/ (CLIENT_HOST=pages):
#   target/pages/wrangler.toml   pages/wrangler.toml with the project and Worker names
#   target/pages/functions/      the Functions forwarding /api/* and /auth/* to the Worker
#   target/pages/dist/           app/dist, plus _routes.json: only /api/* and /auth/*
#                                run a Function, everything else is a static file
# `make deploy-client` publishes it; `make release DRY_RUN=1` builds its Functions.
set -euo pipefail
cd "$(dirname "$0")/.."
log_name=build-pages
source scripts/deploy/lib.sh

[ -f app/dist/index.html ] || die "app/dist/index.html is missing; run 'make build-app'"
project=$(setting PAGES_PROJECT nightshift-app)
worker_name=$(setting WORKER_NAME nightshift)
[[ $project =~ ^[a-z0-9][a-z0-9-]{0,57}$ ]] || die "PAGES_PROJECT='$project' is not a Pages project name (lowercase letters, digits, '-')"
[[ $worker_name =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]] || die "WORKER_NAME='$worker_name' is not a Worker name"

out=target/pages
rm -rf "$out"
mkdir -p "$out/dist"
sed -e "s|@PAGES_PROJECT@|$project|g" -e "s|@WORKER_NAME@|$worker_name|g" pages/wrangler.toml > "$out/wrangler.toml"
cp -r pages/functions "$out/functions"
cp -r app/dist/. "$out/dist/"
# Only these paths reach a Function (and so the Worker); the rest is served as files,
# with index.html for the app's own routes.
cat > "$out/dist/_routes.json" <<'JSON'
{ "version": 1, "include": ["/api/*", "/auth/*"], "exclude": [] }
JSON
log "done: $out (Pages project $project, /api/* and /auth/* to the Worker $worker_name)"
