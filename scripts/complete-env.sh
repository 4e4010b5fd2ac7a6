#!/usr/bin/env bash
# Completes an env file with the secrets Nightshift generates, so a `.env` copied by
# hand from .env.example (often with only an LLM key filled in) works at once:
#
#   scripts/complete-env.sh [FILE]      (default .env; `make setup` runs it on .env)
#
# - FILE missing: it is written from .env.example.
# - Each generated secret (RUNNER_TOKEN_SECRET, SANDBOX_BACKEND_TOKEN, ENCRYPTION_KEY,
#   SETUP_CODE) that is missing or empty (`NAME=` or `NAME=""`) gets a fresh random
#   value: an empty line is filled in place, a missing one is appended.
# - A secret that is set is never touched, nor is any other line.
# Values are never printed; only the names of what was filled in.
set -euo pipefail
# FILE is relative to where this was run from; .env.example to the repository.
file=$(realpath -m "${1:-.env}")
cd "$(dirname "$0")/.."
log() { printf '\033[1m[complete-env]\033[0m %s\n' "$*"; }

hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
base64_bytes() { head -c "$1" /dev/urandom | base64 -w0; }

# The generated secrets and how each is made (the Worker and the backend read them).
generate() {
  case "$1" in
    RUNNER_TOKEN_SECRET) hex 32 ;;   # HMAC key of runner tokens
    SANDBOX_BACKEND_TOKEN) hex 32 ;; # the Worker's bearer token to the sandbox backend
    ENCRYPTION_KEY) base64_bytes 32 ;; # AES-256-GCM key of stored LLM keys
    SETUP_CODE) hex 18 ;;            # the first admin's invite code
    *) return 1 ;;
  esac
}
names=(RUNNER_TOKEN_SECRET SANDBOX_BACKEND_TOKEN ENCRYPTION_KEY SETUP_CODE)

if [ ! -f "$file" ]; then
  cp .env.example "$file"
  chmod 600 "$file"
  log "wrote $file from .env.example"
fi

# 0: set to something; 1: present but empty; 2: absent. The last assignment counts,
# as it does for the programs that read the file.
state_of() {
  local name=$1 line state=2 value
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      "$name="*)
        value=${line#"$name="}
        value=${value%$'\r'}
        case "$value" in '' | '""' | "''") state=1 ;; *) state=0 ;; esac
        ;;
    esac
  done < "$file"
  return "$state"
}

filled=0
for name in "${names[@]}"; do
  state=0
  state_of "$name" || state=$?
  case "$state" in
    0) continue ;;
    1)
      value=$(generate "$name")
      # Replace the empty assignments in place (awk, so no value is ever parsed as a
      # pattern); every other line is copied unchanged.
      tmp=$(mktemp "$file.XXXXXX")
      NAME="$name" VALUE="$value" awk '
        BEGIN { name = ENVIRON["NAME"]; value = ENVIRON["VALUE"] }
        {
          line = $0; sub(/\r$/, "", line)
          if (line == name "=" || line == name "=\"\"" || line == name "='"''"'") { print name "=" value } else { print }
        }' "$file" > "$tmp"
      chmod --reference="$file" "$tmp"
      mv "$tmp" "$file"
      ;;
    2)
      value=$(generate "$name")
      # A file that does not end with a newline would glue the new line to its last.
      if [ -s "$file" ] && [ "$(tail -c1 "$file" | od -An -c | tr -d ' ')" != '\n' ]; then
        echo >> "$file"
      fi
      printf '%s=%s\n' "$name" "$value" >> "$file"
      ;;
  esac
  log "generated $name in $file"
  filled=$((filled + 1))
done
if [ "$filled" = 0 ]; then
  log "$file has every generated secret; nothing changed"
fi
