#!/usr/bin/env bash
# The D1 database: `scripts/deploy/db.sh migrate|seed|reset` (`make db-migrate`,
# `make db-seed`, `make db-reset`).
#
#   migrate  applies the migrations not applied yet: DB=local (default; the
#            database `make dev` uses) or DB=remote (production, through the
#            rendered [env.production] config; needs the Cloudflare settings)
#   seed     migrates, then adds the demo team, users and sessions of
#            scripts/db/seed.sql (local only)
#   reset    deletes the local database and migrates it again from zero (local only;
#            sessions' Durable Objects are kept: `make clean-state` forgets them too)
#
# PERSIST_TO names another local state directory than .wrangler/state (the one
# `wrangler dev` uses by default; tests pass their stack's). All three are idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
log_name=db
source scripts/deploy/lib.sh

action=${1:-}
target=${DB:-local}
persist_to=${PERSIST_TO:-.wrangler/state}
require_wrangler

case "$target" in
  local | remote) ;;
  *) die "DB='$target' must be local or remote" ;;
esac

local_args=(--local --persist-to "$persist_to")

migrate_local() {
  log "applying the D1 migrations not applied yet to the local database ($persist_to)"
  local output applied
  output=$(wrangler d1 migrations apply DB "${local_args[@]}" < /dev/null 2>&1) \
    || { printf '%s\n' "$output" >&2; die "wrangler d1 migrations apply failed (above)"; }
  # wrangler prints one "commands executed successfully" per migration it applied.
  applied=$(grep -c 'commands executed successfully' <<< "$output" || true)
  log "applied $applied migration(s); the local database is at migrations/$(find migrations -name '*.sql' | sort | tail -n1 | xargs basename)"
}

case "$action" in
  migrate)
    if [ "$target" = remote ]; then
      source scripts/deploy/wrangler-config.sh
      if is_dry_run; then
        render_wrangler_config
        log "dry run: would run: wrangler d1 migrations apply DB --remote -c $deploy_config --env production"
        exit 0
      fi
      require_cloudflare
      render_wrangler_config
      log "applying the D1 migrations not applied yet to the production database"
      wrangler d1 migrations apply DB --remote -c "$deploy_config" --env production
    else
      migrate_local
    fi
    ;;
  seed)
    [ "$target" = local ] || die "db-seed writes demo data and runs only on DB=local"
    migrate_local
    log "adding the demo team, users and sessions (scripts/db/seed.sql; existing rows are kept)"
    wrangler d1 execute DB "${local_args[@]}" --file scripts/db/seed.sql > /dev/null < /dev/null \
      || die "seeding failed"
    log "done: sign in with the development sign-in as ada@demo.nightshift.test (admin) or max@demo.nightshift.test"
    ;;
  reset)
    [ "$target" = local ] || die "db-reset deletes data and runs only on DB=local; a production database is reset by hand (docs/DEPLOY.md)"
    if [ -d "$persist_to/v3/d1" ]; then
      rm -rf "$persist_to/v3/d1"
      log "deleted the local D1 database ($persist_to/v3/d1)"
    else
      log "no local D1 database in $persist_to; nothing to delete"
    fi
    migrate_local
    ;;
  *) die "usage: scripts/deploy/db.sh migrate|seed|reset (DB=local|remote)" ;;
esac
