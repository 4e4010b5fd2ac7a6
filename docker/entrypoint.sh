#!/bin/sh
# Starts the sandbox's gateway (nightshift-gateway), which starts and supervises the
# sandbox's services on 127.0.0.1 and is the only listener beyond it; then runs the
# command (`sleep infinity` by default) in the foreground.
#
#   SANDBOX_GATEWAY_SESSION  the session id the gateway serves
#   SANDBOX_GATEWAY_KEY      that session's gateway key (hex), as the Worker derives it
#   SANDBOX_GATEWAY_LISTEN   default 0.0.0.0:9000 (a provider's tunnel reaches it there)
#   SANDBOX_GATEWAY_ARGS     more flags for `nightshift-gateway serve` (e.g. --services)
#   NIGHTSHIFT_STATE_DIR     the gateway's log, pid and key hand-off (default /run/nightshift)
#
# Without a session and a key no gateway starts, and nothing listens beyond 127.0.0.1.
set -eu

state="${NIGHTSHIFT_STATE_DIR:-/run/nightshift}"
listen="${SANDBOX_GATEWAY_LISTEN:-0.0.0.0:9000}"
mkdir -p "$state/logs"

log() { printf 'nightshift-entrypoint: %s\n' "$*" >&2; }

if [ -n "${SANDBOX_GATEWAY_SESSION:-}" ] && [ -n "${SANDBOX_GATEWAY_KEY:-}" ]; then
    # The key reaches the gateway through a file only it reads (it deletes it), not
    # through its environment or command line.
    key_file="$state/gateway.key"
    (umask 077 && printf '%s\n' "$SANDBOX_GATEWAY_KEY" >"$key_file")
    # The gateway (and the shells and services it starts) do not inherit the key
    # either: it is read from the file once.
    # shellcheck disable=SC2086 # SANDBOX_GATEWAY_ARGS is a list of flags.
    env -u SANDBOX_GATEWAY_KEY nightshift-gateway serve --listen "$listen" --session "$SANDBOX_GATEWAY_SESSION" \
        --key-file "$key_file" ${SANDBOX_GATEWAY_ARGS:-} >"$state/logs/gateway.log" 2>&1 &
    echo $! >"$state/gateway.pid"
else
    log "SANDBOX_GATEWAY_SESSION and SANDBOX_GATEWAY_KEY are not set: no gateway is started"
fi

# The command does not inherit the key.
unset SANDBOX_GATEWAY_KEY
exec "$@"
