# supportgate's front door. `make help` lists the targets.
#
# Builds are cached outside the work tree so that fresh clones (and CI) reuse them:
# the Rust target dir and the Go-built control plane live under $(SUPPORTGATE_CACHE).
# One target dir serves every checkout: dependencies stay warm, and build.rs (keyed by the
# checkout path that .cargo/config.toml sets) rebuilds only this crate when the checkout changes,
# so no checkout runs test binaries built from another one's sources (README, "The test control plane").

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

export SUPPORTGATE_CACHE ?= $(HOME)/.cache/supportgate
export CARGO_TARGET_DIR ?= $(SUPPORTGATE_CACHE)/target
# Two cores: the e2e binaries each start an apiserver; run them one at a time.
E2E_THREADS ?= 1

BIN := $(CARGO_TARGET_DIR)/release/supportgate
# Every test target that needs no control plane: tests/*.rs but the e2e_* ones, so a new one
# cannot be left out of `make test`.
UNIT_TESTS := $(patsubst tests/%.rs,--test %,$(filter-out tests/e2e_%,$(wildcard tests/*.rs)))

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## install system packages the build and tests need (Debian; idempotent)
	@hack/install-deps.sh

.PHONY: tools
tools: deps ## build the pinned kube-apiserver, etcd, kubectl, helm and the Kyverno peer from source (cached)
	@hack/controlplane/build.sh
	@hack/kyverno/build.sh

.PHONY: build
build: deps ## build the release binary
	cargo build --release --locked

.PHONY: image
image: build ## the image the Dockerfile describes, as an OCI archive, with neither Docker nor a registry
	hack/image.sh --bin $(BIN)

.PHONY: run
run: build tools ## the whole product locally: control plane, CRDs, default policy, webhook + controller, examples applied; stays up
	SUPPORTGATE_BIN=$(BIN) hack/run-local.sh

.PHONY: run-cluster
run-cluster: build tools ## the product installed by Helm from the locally built image into a local node (kubelet + containerd); stays up
	SUPPORTGATE_BIN=$(BIN) hack/run-cluster.sh

.PHONY: unit
unit: deps ## unit tests and CLI tests (no control plane)
	cargo test --locked -p supportgate-engine
	cargo test --locked --lib --bins $(UNIT_TESTS)

.PHONY: e2e
e2e: tools ## end-to-end tests against a real kube-apiserver + etcd, and (e2e_node) a real node
	cargo test --locked --no-fail-fast --test 'e2e_*' -- --test-threads=$(E2E_THREADS)

.PHONY: rules
rules: deps ## check the alert rules and run their unit tests (promtool)
	promtool check rules charts/supportgate/files/prometheus-rules.yaml
	cd hack/prometheus && promtool test rules rules-test.yaml

.PHONY: test
test: lint rules unit e2e ## everything CI runs: lint, alert rules, unit, end-to-end

.PHONY: lint
lint: deps ## rustfmt and clippy, warnings are errors
	cargo fmt --all --check
	cargo clippy --workspace --locked --all-targets -- -D warnings

.PHONY: crds
crds: ## regenerate crds/ from the Rust types
	cargo run --quiet --locked -- crd SupportPolicy > crds/supportgate.dev_supportpolicies.yaml
	cargo run --quiet --locked -- crd SupportException > crds/supportgate.dev_supportexceptions.yaml

.PHONY: manifests
manifests: tools ## regenerate manifests/ and the chart templates made from crds/ and examples/
	hack/render-manifests.sh

.PHONY: bench
bench: tools ## benchmarks with figures and ratios against same-run baselines (docs/performance.md)
	cargo bench --locked --bench engine
	cargo bench --locked --bench exceptions
	cargo bench --locked --bench webhook
	cargo bench --locked --bench apiserver
	cargo bench --locked --bench controller
	cargo bench --locked --bench check_inputs

.PHONY: fuzz
fuzz: deps ## run every cargo-fuzz target for FUZZ_SECONDS (default 60) each; installs nightly and cargo-fuzz if missing
	fuzz/run.sh

.PHONY: controlplane
controlplane: tools ## start a local kube-apiserver + etcd in the foreground (Ctrl-C stops it)
	hack/controlplane/up --foreground
