# Nightshift. `make dev` sets up, builds and runs the whole stack locally;
# `make test` runs every test; `make release` deploys (docs/DEPLOY.md). See README.md.
# Deploy targets read .env.deploy and .env (DEPLOY_ENV_FILE, ENV_FILE) and take
# DRY_RUN=1; their logic is in scripts/deploy/.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
DB ?= local

.PHONY: help setup build smoke-provider build-native build-native-release build-worker build-app build-pages dev test test-unit test-scripts test-e2e test-browser lint fmt bench clean-state \
	typecheck release deploy-worker deploy-backend deploy-client push-image secrets db-migrate db-seed db-reset

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

build-pages: build-app ## the app for Cloudflare Pages into target/pages (CLIENT_HOST=pages)
	@bash scripts/build-pages.sh

typecheck: ## cargo check of every crate, native and wasm32
	@bash scripts/typecheck.sh

dev: setup build-app build-worker build-native-release ## set up, build and run everything on localhost
	@bash scripts/dev.sh

test: setup build ## every test: unit, integration (real stack) and browser
	$(MAKE) --no-print-directory test-unit test-e2e

test-unit: test-scripts ## unit tests of the native crates, the plain logic and the scripts (with a real Docker Engine: scripts/docker-engine.sh, DOCKER_TESTS=skip opts out; Modal's official api.proto from PyPI, MODAL_PROTO_TESTS=skip opts out; Railway's SDK operations from npm, RAILWAY_SDK_TESTS=skip opts out)
	@bash scripts/docker-engine.sh run -- $(CARGO) test --workspace --exclude nightshift-e2e
	@# OpenCode's conversation tests start several real `opencode serve`: alone, after the rest.
	$(CARGO) test -p nightshift-runner --lib -- --ignored --test-threads=1 agent::opencode::tests::memory

smoke-provider: ## the provider conformance suite against the real service with .env's credentials (PROVIDER=modal|railway|docker; creates real sandboxes; not in CI)
	@PROVIDER=$(PROVIDER) CARGO=$(CARGO) bash scripts/smoke-provider.sh

test-scripts: ## the scripts' own tests (scripts/tests/) and shellcheck
	@bash scripts/tests/run.sh

test-e2e: ## integration and browser tests against the real stack (with the real Docker Engine for the docker provider's session and the release's image)
	@CARGO=$(CARGO) bash scripts/docker-engine.sh run -- bash scripts/test-e2e.sh

lint: ## formatting and clippy, native and wasm32
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --exclude nightshift-worker --exclude nightshift-app --all-targets -- -D warnings
	@bash scripts/clippy-wasm.sh

fmt:
	$(CARGO) fmt --all

bench: setup build-app build-worker build-native-release ## the latency and fan-out benchmark (figures for BENCHMARKS.md)
	NIGHTSHIFT_BIN_DIR=$(CURDIR)/target/release $(CARGO) run --release -p nightshift-e2e --bin bench
	$(CARGO) run --release -p sandbox-backend --bin sandbox-bench
	NIGHTSHIFT_BIN_DIR=$(CURDIR)/target/release $(CARGO) run --release -p nightshift-e2e --bin gateway-bench
	NIGHTSHIFT_BIN_DIR=$(CURDIR)/target/release bash scripts/docker-engine.sh run -- $(CARGO) run --release -p nightshift-e2e --bin docker-bench

clean-state: ## forget local sessions, sandboxes and D1/DO state
	rm -rf .wrangler/state .nightshift

# --- Deploying (docs/DEPLOY.md) -------------------------------------------------------
release: ## typecheck, test, build, push-image, deploy-worker, secrets, deploy-backend, deploy-client (DRY_RUN=1, SKIP=step,..)
	@bash scripts/release.sh

deploy-worker: build-app build-worker ## D1 migrations (remote), then the Worker with the app as its assets
	@bash scripts/deploy/worker.sh

secrets: ## the production Worker's secrets from ENV_FILE (default .env), with wrangler secret put
	@bash scripts/deploy/secrets.sh

deploy-backend: build-native-release ## the sandbox backend and runner to BACKEND_HOST (BACKEND_DEPLOY=ssh|none)
	@bash scripts/deploy/backend.sh

deploy-client: build-app ## the app on Pages when CLIENT_HOST=pages (the Worker serves it otherwise)
	@bash scripts/deploy/client.sh

push-image: ## build and push the sandbox image (docker/Dockerfile) as SANDBOX_IMAGE
	@bash scripts/deploy/image.sh

db-migrate: ## apply the D1 migrations not applied yet (DB=local|remote)
	@DB=$(DB) bash scripts/deploy/db.sh migrate

db-seed: ## a demo team, users and sessions in the local D1 (scripts/db/seed.sql)
	@DB=$(DB) bash scripts/deploy/db.sh seed

db-reset: ## delete the local D1 and migrate it again from zero
	@DB=$(DB) bash scripts/deploy/db.sh reset
