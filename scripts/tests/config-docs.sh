#!/usr/bin/env bash
# docs/CONFIG.md cannot drift from the code: every environment variable a part of
# Nightshift reads is documented there, and every variable documented there is read
# by some part (its code, wrangler.toml, the scripts and the Makefile) or is a
# setting of .env.deploy.example. .env.example and .env.deploy.example hold only
# documented variables.
#
# "Read by the code" is every string literal shaped like a variable name
# (`"SOME_NAME"`) in the non-test Rust sources of the Worker, the runner, the sandbox
# backend and session-core, plus the OAuth settings the Worker builds from a
# provider prefix (`Kind::Github.var(env, "API_URL", ..)` reads GITHUB_API_URL), minus
# the names below that are not settings. A new `var(env, "NEW_SETTING")` without a
# row in CONFIG.md fails this test; so does a row for a setting nothing reads.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/tests/assert.sh

# Literals that name something else than a setting the part reads: Durable Object
# bindings, variables the code sets for the processes it starts, and cargo's own.
not_settings='^(SESSION_AGENT|EVENT_BUS|API_KEYS|HTTP_PROXY|HTTPS_PROXY|ALL_PROXY|NO_PROXY|XDG_[A-Z]+_HOME|OPENCODE_SERVER_PASSWORD|GIT_ASKPASS|GIT_TERMINAL_PROMPT|GIT_SSL_CAINFO|SSH_ASKPASS|CARGO_[A-Z_]+|RUST_BACKTRACE)$'

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Rust sources without their test modules (everything from `#[cfg(test)]` on; this
# codebase keeps them last) and without comments.
for file in $(find worker/src runner/src sandbox-backend/src session-core/src -name '*.rs' | sort); do
  awk '/^#\[cfg\(test\)\]/ { exit } { sub(/\/\/.*/, ""); print }' "$file"
done > "$tmp/sources"

{
  grep -oE '"[A-Z][A-Z0-9]*_[A-Z0-9_]+"' "$tmp/sources" | tr -d '"'
  # OAuth: `Kind::Github => self.var(env, "TOKEN_URL", ..)` and
  # `Kind::Google.var(env, "USERINFO_URL", ..)` read <PROVIDER>_<SUFFIX>;
  # `format!("{}_CLIENT_ID", kind.prefix())` reads it for both providers.
  perl -0777 -ne '
    while (/Kind::(Github|Google)(?:\s*=>\s*self)?\.var\(\s*env,\s*"([A-Z_]+)"/g) { print uc($1) . "_$2\n" }
    while (/format!\("\{\}_([A-Z_]+)",\s*kind\.prefix\(\)\)/g) { print "GITHUB_$1\nGOOGLE_$1\n" }
  ' worker/src/auth/oauth.rs
} | grep -Ev "$not_settings" | sort -u > "$tmp/read"
# The suffixes alone are not settings.
grep -vxE 'AUTHORIZE_URL|TOKEN_URL|API_URL|USERINFO_URL' "$tmp/read" > "$tmp/code" || true

# What CONFIG.md documents: the first cell of its table rows, `NAME`.
# shellcheck disable=SC2016 # the backquotes are Markdown, not a command
grep -oE '^\| `[A-Z][A-Z0-9_]+`' docs/CONFIG.md | grep -oE '[A-Z][A-Z0-9_]+' | sort -u > "$tmp/documented"
[ -s "$tmp/documented" ] || fail "docs/CONFIG.md documents no variable"

# Every variable the code reads is documented.
missing=$(comm -23 "$tmp/code" "$tmp/documented")
[ -z "$missing" ] || fail "read by the code but not in docs/CONFIG.md: $(tr '\n' ' ' <<< "$missing")"

# Every documented variable is read somewhere: the code, wrangler.toml, the deploy
# and build scripts, the Makefile, or it is a deploy setting.
{
  cat "$tmp/code"
  grep -ohE '\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b|\b[A-Z]{2,}\b' wrangler.toml Makefile scripts/*.sh scripts/deploy/*.sh \
    docker/entrypoint.sh e2e/src/*.rs sandbox-backend/src/bin/*.rs
  grep -oE '^#? ?[A-Z][A-Z0-9_]+=' .env.deploy.example | grep -oE '[A-Z][A-Z0-9_]+'
} | sort -u > "$tmp/known"
stale=$(comm -13 "$tmp/known" "$tmp/documented")
[ -z "$stale" ] || fail "in docs/CONFIG.md but read by nothing: $(tr '\n' ' ' <<< "$stale")"

# The example files hold only documented variables (commented-out ones included).
for example in .env.example .env.deploy.example; do
  grep -oE '^#? ?[A-Z][A-Z0-9_]+=' "$example" | grep -oE '[A-Z][A-Z0-9_]+' | sort -u > "$tmp/example"
  undocumented=$(comm -23 "$tmp/example" "$tmp/documented")
  [ -z "$undocumented" ] || fail "in $example but not in docs/CONFIG.md: $(tr '\n' ' ' <<< "$undocumented")"
done

echo "ok: config-docs ($(wc -l < "$tmp/documented") variables documented, $(wc -l < "$tmp/code") read by the code)"
