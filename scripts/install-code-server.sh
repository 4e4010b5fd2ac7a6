#!/usr/bin/env bash
# Installs code-server (the VS Code panel's server) from npm into
# /usr/local/lib/nightshift/code-server with a link at /usr/local/bin/code-server,
# skipping it when that version is already there. Shared by scripts/setup.sh and
# docker/Dockerfile, so the sandbox image runs the same code-server the tests run.
#
# code-server 4.100.3 is the last release that runs on Node 20. Its install reaches
# GitHub twice, which is unreachable here, so both are served locally:
#   - @vscode/ripgrep's postinstall first looks for a cached ripgrep archive in
#     $TMPDIR/vscode-ripgrep-cache-<version>/: an archive of Debian's `rg` is put there;
#   - node-pty's postinstall runs `npx node-gyp`, which asks before installing unless
#     npm_config_yes is set.
set -euo pipefail

VERSION="${CODE_SERVER_VERSION:-4.100.3}"
RIPGREP_PACKAGE_VERSION="1.15.11"
RIPGREP_ARCHIVE="ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz"
PREFIX="/usr/local/lib/nightshift/code-server"
LINK="/usr/local/bin/code-server"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

installed="$(node -e "try{console.log(require('$PREFIX/node_modules/code-server/package.json').version)}catch(e){}" 2>/dev/null || true)"
if [ "$installed" = "$VERSION" ] && [ -x "$LINK" ]; then
  log "code-server $VERSION: installed"
  exit 0
fi

if command -v apt-get >/dev/null; then
  missing=()
  for pkg in build-essential python3 pkg-config libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev ripgrep; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing code-server's build dependencies: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

log "installing code-server $VERSION into $PREFIX (about a minute)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/vscode-ripgrep-cache-$RIPGREP_PACKAGE_VERSION" "$scratch/rg"
cp "$(command -v rg)" "$scratch/rg/rg"
tar -C "$scratch/rg" -czf "$scratch/vscode-ripgrep-cache-$RIPGREP_PACKAGE_VERSION/$RIPGREP_ARCHIVE" rg

$SUDO mkdir -p "$PREFIX"
$SUDO env TMPDIR="$scratch" npm_config_yes=true \
  npm install --prefix "$PREFIX" --unsafe-perm --no-audit --no-fund --loglevel=error \
  "code-server@$VERSION"
$SUDO ln -sf "$PREFIX/node_modules/.bin/code-server" "$LINK"
"$LINK" --version >/dev/null
log "code-server $VERSION: installed"
