#!/bin/sh
# Starts the sandbox's services, each bound to 127.0.0.1, and the gateway on :9000
# that authenticates every request before passing it on; then runs the command
# (`sleep infinity` by default) in the foreground.
#
#   SANDBOX_GATEWAY_TOKEN   required for the gateway; without it no port is exposed
#   SANDBOX_GATEWAY_PORT    default 9000
#   SANDBOX_SERVICES        which services to start, default "code desktop terminal"
#   SANDBOX_SCREEN          virtual screen size, default 1440x900x24
#   NIGHTSHIFT_STATE_DIR    pid files, logs and the gateway's config (default /run/nightshift)
set -eu

state="${NIGHTSHIFT_STATE_DIR:-/run/nightshift}"
template="${NIGHTSHIFT_GATEWAY_TEMPLATE:-/etc/nightshift/gateway.conf.template}"
mkdir -p "$state/logs"
services="${SANDBOX_SERVICES:-code desktop terminal}"
port="${SANDBOX_GATEWAY_PORT:-9000}"

log() { printf 'nightshift-entrypoint: %s\n' "$*" >&2; }

wants() {
    case " $services " in *" $1 "*) return 0 ;; *) return 1 ;; esac
}

start() {
    name="$1"
    shift
    "$@" >"$state/logs/$name.log" 2>&1 &
    echo $! >"$state/$name.pid"
}

if wants desktop; then
    start xvfb Xvfb "${DISPLAY:-:1}" -screen 0 "${SANDBOX_SCREEN:-1440x900x24}" -nolisten tcp
    # Wait for the X socket before starting clients of it.
    display_number="${DISPLAY#:}"
    for _ in $(seq 1 50); do
        [ -S "/tmp/.X11-unix/X${display_number%%.*}" ] && break
        sleep 0.1
    done
    start fluxbox fluxbox
    start x11vnc x11vnc -display "${DISPLAY:-:1}" -localhost -rfbport 5900 -forever -shared -nopw -quiet
    start novnc websockify --web /usr/share/novnc 127.0.0.1:6080 127.0.0.1:5900
fi

if wants terminal; then
    start ttyd ttyd --interface 127.0.0.1 --port 7681 --base-path /terminal --writable bash -l
fi

if wants code; then
    start code-server code-server --bind-addr 127.0.0.1:8080 --auth none \
        --disable-telemetry --disable-update-check /workspace
fi

if [ -n "${SANDBOX_GATEWAY_TOKEN:-}" ]; then
    case "$SANDBOX_GATEWAY_TOKEN" in
        *[!A-Za-z0-9_-]*)
            log "SANDBOX_GATEWAY_TOKEN may only contain letters, digits, _ and -; the gateway is not started"
            ;;
        *)
            export SANDBOX_GATEWAY_TOKEN SANDBOX_GATEWAY_PORT="$port" NIGHTSHIFT_STATE_DIR="$state"
            # Only these variables are substituted; nginx's own $variables stay.
            # shellcheck disable=SC2016
            envsubst '${SANDBOX_GATEWAY_TOKEN} ${SANDBOX_GATEWAY_PORT} ${NIGHTSHIFT_STATE_DIR}' \
                <"$template" >"$state/gateway.conf"
            start gateway nginx -c "$state/gateway.conf" -g 'daemon off;'
            ;;
    esac
else
    log "SANDBOX_GATEWAY_TOKEN is not set: the gateway on :$port is not started (services stay on 127.0.0.1)"
fi

exec "$@"
