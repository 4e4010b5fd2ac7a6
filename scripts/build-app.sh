#!/usr/bin/env bash
# Builds the web app into app/dist, which the Worker serves as static assets:
#   app/dist/index.html, app/dist/style.css, app/dist/pkg/nightshift_app{.js,_bg.wasm},
#   app/dist/vendor/ (xterm.js and noVNC for the session page's panels)
#
# 1. cargo builds the nightshift-app crate for wasm32 (release) with the rustc that
#    has a wasm32 std (see scripts/toolchain.sh), in its own target dir so it never
#    shares artifacts with native builds.
# 2. wasm-bindgen (the CLI, same version as the crate in Cargo.lock) writes the JS glue.
# 3. wasm-opt -Oz shrinks the wasm when the npm `binaryen` package is installed.
# 4. The static files are copied next to it, and the panels' libraries from
#    node_modules (package.json pins them; `npm ci` installs them) into vendor/:
#    xterm.js's ES module, its fit add-on and stylesheet, and noVNC's ES module
#    tree `core/` with the `vendor/pako` it imports by relative path.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/toolchain.sh

log() { printf '\033[1m[build-app]\033[0m %s\n' "$*"; }

require_wasm_toolchain

target_dir="$PWD/target/wasm"
out=app/dist
wasm="$target_dir/wasm32-unknown-unknown/release/nightshift_app.wasm"

log "cargo build (wasm32, release)"
# opt-level z (size) for the browser bundle only: it is about 8% smaller than the
# workspace's "s" after wasm-opt, and cargo keeps these artifacts apart from others.
CARGO_PROFILE_RELEASE_OPT_LEVEL=z RUSTC="$(wasm_rustc)" CARGO_TARGET_DIR="$target_dir" \
  cargo build -p nightshift-app --target wasm32-unknown-unknown --release

log "wasm-bindgen"
# Empty app/dist but keep the directory itself: a running `wrangler dev` watches it
# and stops serving assets if the directory is replaced.
mkdir -p "$out"
find "$out" -mindepth 1 -delete
mkdir -p "$out/pkg"
wasm-bindgen --target web --no-typescript --out-dir "$out/pkg" "$wasm"

bundle="$out/pkg/nightshift_app_bg.wasm"
if [ -x node_modules/.bin/wasm-opt ]; then
  log "wasm-opt -Oz"
  # The features match what the wasm32 target emits by default with this rustc.
  node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$bundle" -o "$bundle.opt"
  mv "$bundle.opt" "$bundle"
else
  log "node_modules/.bin/wasm-opt not found (npm ci installs it); skipping wasm-opt"
fi

cp app/index.html app/style.css "$out"/
vendor="$out/vendor"
for file in node_modules/@xterm/xterm/lib/xterm.mjs node_modules/@xterm/xterm/css/xterm.css \
  node_modules/@xterm/addon-fit/lib/addon-fit.mjs node_modules/@novnc/novnc/core/rfb.js \
  node_modules/@novnc/novnc/vendor/pako/lib/zlib/inflate.js; do
  [ -f "$file" ] || { echo "missing $file: run npm ci" >&2; exit 1; }
done
mkdir -p "$vendor/xterm" "$vendor/novnc/vendor"
cp node_modules/@xterm/xterm/lib/xterm.mjs node_modules/@xterm/xterm/css/xterm.css \
  node_modules/@xterm/addon-fit/lib/addon-fit.mjs node_modules/@xterm/xterm/LICENSE "$vendor/xterm/"
cp -r node_modules/@novnc/novnc/core "$vendor/novnc/"
cp -r node_modules/@novnc/novnc/vendor/pako "$vendor/novnc/vendor/"
cp node_modules/@novnc/novnc/LICENSE.txt "$vendor/novnc/"

if [ -d app/static ]; then
  cp -r app/static/. "$out"/
fi

raw=$(wc -c < "$bundle")
gz=$(gzip -9 -c "$bundle" | wc -c)
log "done: $out ($bundle: $raw bytes, $gz bytes gzipped)"
