# Nightshift. `make dev` sets up, builds and runs the whole stack locally;
# `make test` runs every test. See README.md.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo

.PHONY: help setup build build-native build-native-release build-worker build-app dev test test-unit test-e2e test-browser lint fmt bench clean-state

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-22s %s\n", $$1, $$2}'

setup: ## install everything needed (idempotent: skips what is there)
	@bash scripts/setup.sh

build: build-native build-app build-worker ## build every part

build-native: ## the runner, the sandbox backend, the sandbox gateway and the nightshift CLI (debug)
	$(CARGO) build -p sandbox-backend -p nightshift-runner -p nightshift-gateway -p nightshift-cli

build-native-release:
	$(CARGO) build --release -p sandbox-backend -p nightshift-runner -p nightshift-gateway

build-worker: ## the Worker (wasm, via worker-build)
	@bash scripts/build-worker.sh

build-app: ## the Leptos app into app/dist
	@bash scripts/build-app.sh

dev: setup build-app build-worker build-native-release ## set up, build and run everything on localhost
	@bash scripts/dev.sh

test: setup build ## every test: unit, integration (real stack) and browser
	$(MAKE) --no-print-directory test-unit test-e2e

test-unit: ## unit tests of the native crates and the plain logic
	$(CARGO) test --workspace --exclude nightshift-e2e

test-e2e: ## integration and browser tests against the real stack
	$(CARGO) test -p nightshift-e2e -- --test-threads=2

lint: ## formatting and clippy, native and wasm32
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --exclude nightshift-worker --exclude nightshift-app --all-targets -- -D warnings
	@bash scripts/clippy-wasm.sh

fmt:
	$(CARGO) fmt --all

bench: setup build-app build-worker build-native-release ## the latency and fan-out benchmark (figures for BENCHMARKS.md)
	NIGHTSHIFT_BIN_DIR=$(CURDIR)/target/release $(CARGO) run --release -p nightshift-e2e --bin bench
	$(CARGO) run --release -p sandbox-backend --bin sandbox-bench

clean-state: ## forget local sessions, sandboxes and D1/DO state
	rm -rf .wrangler/state .nightshift
