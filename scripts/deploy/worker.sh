#!/usr/bin/env bash
# `make deploy-worker`: applies the D1 migrations to the production database (only
# those not applied yet) and deploys the Worker built in worker/build/ (with the app
# in app/dist/ as its static assets) with wrangler.toml's `[env.production]`.
#
# DRY_RUN=1 needs no account: it bundles the Worker with `wrangler deploy --dry-run
# --outdir`, checks the bundle's gzip size against the Workers plan (WORKER_PLAN:
# free 3 MiB, paid 10 MiB) and that every binding is in it, and applies every
# migration to a scratch local D1 from zero.
set -euo pipefail
cd "$(dirname "$0")/../.."
log_name=deploy-worker
source scripts/deploy/lib.sh
source scripts/deploy/wrangler-config.sh

require_wrangler
require_builds() {
  [ -f worker/build/index.js ] || die "worker/build/index.js is missing; run 'make build-worker'"
  [ -f app/dist/index.html ] || die "app/dist/index.html is missing; run 'make build-app'"
}

# The bindings the Worker's code expects (worker/src), each must be in the bundle.
bindings=(SESSION_AGENT EVENT_BUS API_KEYS DB FILES ASSETS SANDBOX_BACKEND_URL WORKER_URL PUBLIC_URL)

if ! is_dry_run; then
  require_cloudflare
  render_wrangler_config
  require_builds
  log "applying D1 migrations to the production database (those not applied yet)"
  wrangler d1 migrations apply DB --remote -c "$deploy_config" --env production
  log "deploying the Worker"
  wrangler deploy -c "$deploy_config" --env production "${worker_var_args[@]}"
  log "done: the Worker is deployed; secrets are set separately with 'make secrets'"
  exit 0
fi

render_wrangler_config
require_builds
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

log "dry run: wrangler deploy --dry-run --outdir (nothing is uploaded)"
if ! wrangler deploy --dry-run --outdir "$out/bundle" -c "$deploy_config" --env production \
    "${worker_var_args[@]}" > "$out/deploy.log" 2>&1; then
  cat "$out/deploy.log" >&2
  die "wrangler deploy --dry-run failed (above)"
fi
for binding in "${bindings[@]}"; do
  # wrangler lists each binding as `env.NAME` in its table.
  grep -Eq "env\.$binding( |$)" "$out/deploy.log" \
    || { cat "$out/deploy.log" >&2; die "the bundle lacks the binding $binding (wrangler's output above)"; }
done
log "bindings present: ${bindings[*]}"

# Cloudflare limits a Worker's compressed size (its script and modules, gzip): 3 MiB
# on the free plan, 10 MiB on a paid one.
plan=$(setting WORKER_PLAN free)
case "$plan" in
  free) limit=$((3 * 1024 * 1024)) ;;
  paid) limit=$((10 * 1024 * 1024)) ;;
  *) die "WORKER_PLAN='$plan' must be free or paid" ;;
esac
raw=0
gz=0
while IFS= read -r -d '' file; do
  raw=$((raw + $(wc -c < "$file")))
  gz=$((gz + $(gzip -9 -c "$file" | wc -c)))
done < <(find "$out/bundle" -type f ! -name '*.map' ! -name 'README.md' -print0)
[ "$gz" -gt 0 ] || die "the bundle in $out/bundle is empty"
log "bundle: $raw bytes, $gz bytes gzipped (the $plan plan allows $limit)"
[ "$gz" -le "$limit" ] || die "the bundle is $gz bytes gzipped, over the $plan plan's $limit"

log "dry run: applying every migration to a scratch local D1 from zero"
if ! wrangler d1 migrations apply DB --local --persist-to "$out/d1" -c "$deploy_config" \
    --env production > "$out/migrate.log" 2>&1 < /dev/null; then
  cat "$out/migrate.log" >&2
  die "the migrations failed on a fresh database (above)"
fi
expected=$(find migrations -name '*.sql' | wc -l)
applied=$(wrangler d1 execute DB --local --persist-to "$out/d1" -c "$deploy_config" --env production \
  --json --command "SELECT COUNT(*) AS n FROM d1_migrations" 2>/dev/null \
  | grep -Eo '"n": *[0-9]+' | grep -Eo '[0-9]+$' || true)
[ "$applied" = "$expected" ] || die "$expected migrations in migrations/, but the scratch D1 recorded ${applied:-none}"
log "migrations: $applied of $expected applied to an empty database"
log "dry run done: nothing was deployed"
