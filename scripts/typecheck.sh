#!/usr/bin/env bash
# `make typecheck`: `cargo check` of every crate for the targets it builds for: the
# native crates (with their tests, benches and binaries) natively, and the Worker and
# the app (with protocol and session-core under them) for wasm32 with the rustc that
# builds them (scripts/toolchain.sh), in its own target directory. Fast: no codegen.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/toolchain.sh
log() { printf '\033[1m[typecheck]\033[0m %s\n' "$*"; }

require_wasm_toolchain

log "native: cargo check --workspace --all-targets (but the wasm32 crates)"
cargo check -q --workspace --all-targets --exclude nightshift-worker --exclude nightshift-app

log "wasm32: cargo check -p nightshift-worker -p nightshift-app"
RUSTC="$(wasm_rustc)" CARGO_TARGET_DIR="$PWD/target/wasm" \
  cargo check -q -p nightshift-worker -p nightshift-app --target wasm32-unknown-unknown
log "done: every crate type-checks"
