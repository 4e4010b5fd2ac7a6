#!/usr/bin/env bash
# clippy for the wasm32 crates (the Worker and the app), with the same rustc that
# builds them (see scripts/toolchain.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/toolchain.sh
export CARGO_TARGET_DIR="$PWD/target/wasm-clippy"
if [ "$(wasm_rustc)" = /usr/bin/rustc ]; then
  # Debian's rustc-web ships its own clippy (package rust-web-clippy).
  RUSTC=/usr/bin/rustc /usr/bin/cargo-clippy clippy -p nightshift-worker -p nightshift-app \
    --target wasm32-unknown-unknown -- -D warnings
else
  cargo clippy -p nightshift-worker -p nightshift-app --target wasm32-unknown-unknown -- -D warnings
fi
