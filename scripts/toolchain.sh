# shellcheck shell=bash
# Shared by scripts/setup.sh and the Makefile's wasm builds: which rustc builds wasm32.
# Source it; it defines functions and exports nothing by itself.
# shellcheck disable=SC2034 # read by the scripts that source this file
WORKER_BUILD_VERSION=0.8.7

# The version of a crate in Cargo.lock.
locked_version() {
  awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

# The rustc that builds wasm32: rustup's when it has the target, else Debian's rustc-web.
wasm_rustc() {
  if command -v rustup >/dev/null && rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
    rustup which rustc
  elif [ -x /usr/bin/rustc ]; then
    echo /usr/bin/rustc
  else
    echo rustc
  fi
}

wasm_target_ready() {
  local rustc libdir
  rustc=$(wasm_rustc)
  libdir=$("$rustc" --print target-libdir --target wasm32-unknown-unknown 2>/dev/null) || return 1
  ls "$libdir"/libstd-*.rlib >/dev/null 2>&1
}

# Debian ships rustc-web without a wasm32 std but with its exact sources
# (rust-web-src): build std once and copy it into the sysroot.
build_wasm_std_into_sysroot() {
  local tmp libdir
  tmp=$(mktemp -d)
  cargo init -q --lib --name wasmstd "$tmp/wasmstd"
  printf '\n[lib]\ncrate-type = ["cdylib"]\n' >> "$tmp/wasmstd/Cargo.toml"
  (cd "$tmp/wasmstd" && RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTFLAGS=-Cembed-bitcode=yes \
     cargo build -q -Z build-std=std,panic_abort --target wasm32-unknown-unknown --release)
  libdir=$(/usr/bin/rustc --print target-libdir --target wasm32-unknown-unknown)
  mkdir -p "$libdir"
  cp "$tmp"/wasmstd/target/wasm32-unknown-unknown/release/deps/lib*.rlib "$libdir"/
  rm -rf "$tmp"
}

# Fails with a hint unless the wasm32 target and the wasm-bindgen CLI at the exact
# version in Cargo.lock are installed (scripts/setup.sh installs both).
require_wasm_toolchain() {
  wasm_target_ready || {
    echo "the wasm32 target is not installed; run scripts/setup.sh first" >&2
    return 1
  }
  local want have
  want=$(locked_version wasm-bindgen)
  have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
  if [ "$have" != "$want" ]; then
    echo "wasm-bindgen CLI ${have:-missing}, but Cargo.lock has $want; run scripts/setup.sh" >&2
    return 1
  fi
}
