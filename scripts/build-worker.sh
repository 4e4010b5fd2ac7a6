#!/usr/bin/env bash
# Builds the Worker (crate nightshift-worker) into worker/build/ with worker-build:
#   worker/build/index.js (the module wrangler.toml's `main` points at) and its wasm.
#
# - The wasm32 rustc comes from scripts/toolchain.sh and builds in target/wasm, its own
#   target dir, so it never shares artifacts with the native toolchain.
# - worker-build would download wasm-bindgen, esbuild and wasm-opt; it is pointed at
#   the local ones instead: the wasm-bindgen CLI (same version as in Cargo.lock) and
#   the npm packages `esbuild` and `binaryen` (npm ci installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/toolchain.sh

log() { printf '\033[1m[build-worker]\033[0m %s\n' "$*"; }

require_wasm_toolchain
command -v worker-build >/dev/null || {
  echo "worker-build is missing; run scripts/setup.sh first" >&2
  exit 1
}
for tool in esbuild wasm-opt; do
  [ -x "node_modules/.bin/$tool" ] || { echo "node_modules/.bin/$tool is missing; run npm ci" >&2; exit 1; }
done

RUSTC="$(wasm_rustc)"
CARGO_TARGET_DIR="$PWD/target/wasm"
WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
WASM_OPT_BIN="$PWD/node_modules/.bin/wasm-opt"
export RUSTC CARGO_TARGET_DIR WASM_BINDGEN_BIN ESBUILD_BIN WASM_OPT_BIN

log "worker-build --release"
(cd worker && worker-build --release)

wasm=$(find worker/build -maxdepth 1 -name '*.wasm' | sort | head -n1)
raw=$(wc -c < "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
log "done: worker/build ($wasm: $raw bytes, $gz bytes gzipped)"
