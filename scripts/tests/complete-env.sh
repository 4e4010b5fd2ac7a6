#!/usr/bin/env bash
# `make setup` completes an existing .env: every generated secret that is missing or
# empty gets a value, every one that is set keeps its own, other lines stay as they
# are. The case that once broke every session: a .env copied from .env.example with
# only an LLM key filled in kept RUNNER_TOKEN_SECRET empty.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/tests/assert.sh

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
generated=(RUNNER_TOKEN_SECRET SANDBOX_BACKEND_TOKEN ENCRYPTION_KEY SETUP_CODE)

# 1. Through `make setup` itself (scripts/setup.sh), on a copy of .env.example with
#    only an LLM key filled in, as a newcomer makes it.
sed 's/^LLM_API_KEY=.*/LLM_API_KEY=sk-newcomer/' .env.example > "$tmp/copied.env"
ENV_FILE="$tmp/copied.env" bash scripts/setup.sh > "$tmp/setup.log" 2>&1 \
  || fail "scripts/setup.sh failed: $(cat "$tmp/setup.log")"
for name in "${generated[@]}"; do
  value=$(value_of "$tmp/copied.env" "$name")
  [ "${#value}" -ge 24 ] || fail "setup left $name empty or short in a copied .env ('$value')"
  assert_eq 1 "$(grep -c "^$name=" "$tmp/copied.env")" "$name assigned exactly once"
done
assert_eq sk-newcomer "$(value_of "$tmp/copied.env" LLM_API_KEY)" "the LLM key is kept"
assert_eq true "$(value_of "$tmp/copied.env" DEV_AUTH)" "DEV_AUTH as copied"
# The values are fresh, not a constant: two secrets never match.
[ "$(value_of "$tmp/copied.env" RUNNER_TOKEN_SECRET)" != "$(value_of "$tmp/copied.env" SANDBOX_BACKEND_TOKEN)" ] \
  || fail "two generated secrets are equal"
# The Worker decodes ENCRYPTION_KEY as 32 bytes of base64.
assert_eq 32 "$(value_of "$tmp/copied.env" ENCRYPTION_KEY | base64 -d | wc -c)" "ENCRYPTION_KEY decodes to 32 bytes"
grep -q "$(value_of "$tmp/copied.env" RUNNER_TOKEN_SECRET)" "$tmp/setup.log" \
  && fail "setup printed a secret's value"

# 2. Set values are never touched; empty ones (also quoted) are filled; missing ones
#    appended; comments and other lines kept byte for byte.
cat > "$tmp/partial.env" <<'ENV'
# a comment about RUNNER_TOKEN_SECRET=
RUNNER_TOKEN_SECRET=keep-this-runner-secret
SANDBOX_BACKEND_TOKEN=""
LLM_MODEL=some-model
ENCRYPTION_KEY=
ENV
printf 'SETUP_CODE=kept-code' >> "$tmp/partial.env" # no final newline
bash scripts/complete-env.sh "$tmp/partial.env" > "$tmp/partial.log"
assert_eq keep-this-runner-secret "$(value_of "$tmp/partial.env" RUNNER_TOKEN_SECRET)" "a set secret is kept"
assert_eq kept-code "$(value_of "$tmp/partial.env" SETUP_CODE)" "a set secret without a newline is kept"
[ "$(value_of "$tmp/partial.env" SANDBOX_BACKEND_TOKEN | wc -c)" -ge 24 ] || fail "a quoted empty secret was not filled"
[ "$(value_of "$tmp/partial.env" ENCRYPTION_KEY | wc -c)" -ge 24 ] || fail "an empty secret was not filled"
assert_eq "# a comment about RUNNER_TOKEN_SECRET=" "$(head -n1 "$tmp/partial.env")" "comments stay"
assert_eq some-model "$(value_of "$tmp/partial.env" LLM_MODEL)" "other settings stay"
assert_eq 6 "$(wc -l < "$tmp/partial.env")" "nothing appended when every name is present"

# 3. Idempotent: a second run changes nothing.
cp "$tmp/partial.env" "$tmp/before.env"
bash scripts/complete-env.sh "$tmp/partial.env" > /dev/null
cmp -s "$tmp/before.env" "$tmp/partial.env" || fail "a second run changed the file"

# 4. A missing file is written from .env.example, complete.
bash scripts/complete-env.sh "$tmp/new.env" > /dev/null
for name in "${generated[@]}"; do
  [ -n "$(value_of "$tmp/new.env" "$name")" ] || fail "a new file lacks $name"
done

echo "ok: complete-env"
