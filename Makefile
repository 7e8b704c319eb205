# The project's front door: `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION ?= 0.9.30
# uv on PATH, else the copy `make install` puts into this Python (`python3 -m uv`).
UV ?= $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PYTEST_ARGS ?=
SERVICES := orchestrator inventory payment notification

# Tests use the native infrastructure started by infra-up (see README, "Tests").
export SAGA_TEST_INFRA ?= local

# KAFKA_BROKERS=3 (on any target): a local 3-node Kafka cluster, and every service, tool and
# test started by make talks to all of its nodes. Unset: one node, and KAFKA_BOOTSTRAP_SERVERS
# is left to the environment or .env.
ifdef KAFKA_BROKERS
export KAFKA_BROKERS
ifeq ($(origin KAFKA_BOOTSTRAP_SERVERS),undefined)
export KAFKA_BOOTSTRAP_SERVERS := $(shell KAFKA_BROKERS=$(KAFKA_BROKERS) scripts/infra/kafka.sh bootstrap)
endif
endif

.PHONY: help
help: ## List every target with its one-line description
	@awk 'BEGIN {FS = ":.*## "; printf "Usage: make <target>\n\n"} \
	     /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# --- setup ---------------------------------------------------------------------------------------

.PHONY: install
install: ## Install uv (if missing) and every Python dependency from uv.lock into .venv
	@$(UV) --version >/dev/null 2>&1 || { echo "installing uv $(UV_VERSION)"; \
	  python3 -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"; }
	@$(UV) sync --frozen --quiet
	@echo "dependencies installed in .venv"

.env:
	cp .env.example .env

# --- infrastructure ------------------------------------------------------------------------------

# INFRA_PROMETHEUS=1 (on infra-up or demo): Prometheus too, scraping the services, with the alerts.
INFRA_PROMETHEUS ?=
export INFRA_PROMETHEUS
# INFRA_JAEGER=1 (on infra-up or demo): Jaeger too (OTLP receiver, UI); demo's services export to it.
INFRA_JAEGER ?=
export INFRA_JAEGER

.PHONY: infra-up
infra-up: install ## Start Kafka (KAFKA_BROKERS=3: a cluster), PostgreSQL, Redis, stripe-mock and SMTP natively (INFRA_PROMETHEUS=1: Prometheus, INFRA_JAEGER=1: Jaeger)
	@scripts/infra/up.sh

.PHONY: infra-down
infra-down: ## Stop the local infrastructure (data is kept; scripts/infra/down.sh --purge deletes it)
	@scripts/infra/down.sh

.PHONY: infra-status
infra-status: ## Show which infrastructure components are up
	@scripts/infra/status.sh

.PHONY: migrate
migrate: install ## Apply every service's database migrations (alembic upgrade head)
	@$(UV) run --frozen scripts/migrate.sh

# --- running -------------------------------------------------------------------------------------

.PHONY: run-orchestrator run-inventory run-payment run-notification
run-orchestrator: ## Run the orchestrator in the foreground (public API on :8000)
	@$(UV) run --frozen python -m orchestrator
run-inventory: ## Run the inventory service in the foreground (:8001)
	@$(UV) run --frozen python -m inventory
run-payment: ## Run the payment service in the foreground (:8002)
	@$(UV) run --frozen python -m payment
run-notification: ## Run the notification service in the foreground (:8003)
	@$(UV) run --frozen python -m notification

.PHONY: seed
seed: install ## Load the sample catalog into the inventory database (idempotent)
	@$(UV) run --frozen python -m inventory.entrypoints.seed

.PHONY: demo
demo: infra-up migrate seed ## From a fresh clone: everything up, four services in the background, a saga of every kind
	@if [ "$(INFRA_JAEGER)" = 1 ]; then \
	  export OTEL_EXPORTER_OTLP_ENDPOINT=$${OTEL_EXPORTER_OTLP_ENDPOINT:-http://127.0.0.1:$${JAEGER_OTLP_HTTP_PORT:-4318}}; fi; \
	  PAYMENT_GATEWAY=$${PAYMENT_GATEWAY:-simulated} scripts/services.sh start
	@echo
	@$(MAKE) --no-print-directory test-saga || true
	@echo
	@echo "System running. Order API: http://127.0.0.1:$${ORCHESTRATOR_HTTP_PORT:-8000}  (logs: .infra/logs/services/)"
	@echo "  try:  curl -s -XPOST localhost:$${ORCHESTRATOR_HTTP_PORT:-8000}/orders -H 'content-type: application/json' \\"
	@echo "          -d '{\"customer_id\":\"c1\",\"email\":\"me@example.com\",\"items\":[{\"product_id\":\"widget\",\"quantity\":1}],\"payment_method\":\"pm_card_visa\",\"currency\":\"USD\"}'"
	@if [ "$(INFRA_PROMETHEUS)" = 1 ]; then \
	  echo "Prometheus (metrics, alerts): http://127.0.0.1:$${PROMETHEUS_PORT:-9090}/alerts"; \
	else echo "Alerts in Prometheus's web UI: make demo INFRA_PROMETHEUS=1"; fi
	@if [ "$(INFRA_JAEGER)" = 1 ]; then \
	  echo "Jaeger (traces, one per order): http://127.0.0.1:$${JAEGER_UI_PORT:-16686}  (check: make traces-check)"; \
	else echo "Traces in Jaeger's UI: make demo INFRA_JAEGER=1"; fi
	@echo "Stop everything with: make down"
	@echo "Console: http://127.0.0.1:$${ORCHESTRATOR_HTTP_PORT:-8000}/console  (log in with your name and ADMIN_TOKEN, default local-admin-token)"

.PHONY: traces-check
traces-check: install ## Against `make demo INFRA_JAEGER=1`: one order, its trace fetched from Jaeger's API with spans of all four services
	@$(UV) run --frozen python scripts/traces_check.py

.PHONY: test-saga
test-saga: install ## Against running services: one live order of every kind, and a table of what happened
	@$(UV) run --frozen saga-test

BENCH_ORDERS ?= 2000
BENCH_CONCURRENCY ?= 256
BENCH_RATE ?=
BENCH_SECONDS ?= 60
BENCH_TIMEOUT ?= 600
BENCH_VIA ?= http
BENCH_BASE ?= HEAD~1
BENCH_SWEEP ?= 50,100,150,200,250,300,400
.PHONY: bench
bench: install ## Against running services: closed loop (BENCH_ORDERS), or open loop at BENCH_RATE/s for BENCH_SECONDS; JSON + PNG
	@$(UV) run --frozen saga-bench --via $(BENCH_VIA) --seconds $(BENCH_SECONDS) --timeout $(BENCH_TIMEOUT) \
	  $(if $(BENCH_RATE),--rate $(BENCH_RATE),--orders $(BENCH_ORDERS) --concurrency $(BENCH_CONCURRENCY))

.PHONY: bench-compare
bench-compare: install ## Is this commit slower than BENCH_BASE? Fresh stacks of both side by side, BENCH_RUNS alternate open loops at BENCH_RATE, medians and ratios
	@scripts/bench-compare.sh $(BENCH_BASE) HEAD

.PHONY: bench-sweep
bench-sweep: install ## Against running services: open loops at BENCH_SWEEP rates (20 s each): throughput and p99 vs offered + PNG
	@$(UV) run --frozen saga-bench --via $(BENCH_VIA) --sweep $(BENCH_SWEEP) --seconds 20 --timeout $(BENCH_TIMEOUT)

.PHONY: services-status
services-status: ## Show the background services started by `make demo`
	@scripts/services.sh status

.PHONY: down
down: ## Stop the background services and the infrastructure
	@scripts/services.sh stop
	@scripts/infra/down.sh

AUDIT_GRACE ?= 60
AUDIT_ARGS ?=
.PHONY: audit
audit: install ## Check the invariants across every service's database, the mailbox and the DLQ (exit 1 on a violation)
	@$(UV) run --frozen saga-audit --grace $(AUDIT_GRACE) $(AUDIT_ARGS)

# $(call on_kafka,N,COMMAND): COMMAND on the local N-node Kafka (started if needed), with
# KAFKA_BROKERS and that cluster's bootstrap list in its environment.
on_kafka = KAFKA_BROKERS=$(1) scripts/infra/up.sh && \
	KAFKA_BROKERS=$(1) KAFKA_BOOTSTRAP_SERVERS="$$(KAFKA_BROKERS=$(1) scripts/infra/kafka.sh bootstrap)" $(2)

CHAOS_DURATION ?= 300
CHAOS_RATE ?= 5
CHAOS_SEED ?= 1
CHAOS_KAFKA_BROKERS ?= 1
.PHONY: chaos
chaos: install ## Faults for CHAOS_DURATION s (kills, broker/db restarts, Redis outage, poison), then the audit
	@$(call on_kafka,$(CHAOS_KAFKA_BROKERS),$(UV) run --frozen saga-chaos \
	  --duration $(CHAOS_DURATION) --rate $(CHAOS_RATE) --seed $(CHAOS_SEED))

BROKER_FAILURE_RATE ?= 5
BROKER_FAILURE_ARGS ?=
.PHONY: broker-failure
broker-failure: install ## On a 3-broker cluster under load: kill the busiest leader, another, then two at once; audit
	@$(call on_kafka,3,$(UV) run --frozen saga-broker-failure \
	  --rate $(BROKER_FAILURE_RATE) $(BROKER_FAILURE_ARGS))

# --- published contracts and diagrams ------------------------------------------------------------

# The AsyncAPI CLI, pinned by tools/asyncapi/package-lock.json and installed there by npm (once).
ASYNCAPI_DIR := tools/asyncapi
ASYNCAPI := $(ASYNCAPI_DIR)/node_modules/.bin/asyncapi
# Its anonymous usage metrics stay off: a committed config file that says so.
ASYNCAPI_RUN := ASYNCAPI_METRICS_CONFIG_PATH=$(CURDIR)/$(ASYNCAPI_DIR)/analytics.json $(ASYNCAPI)
ACCEPT_BREAKING ?=

$(ASYNCAPI): $(ASYNCAPI_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "the AsyncAPI CLI needs Node.js 20+ and npm"; exit 1; }
	@echo "installing the AsyncAPI CLI into $(ASYNCAPI_DIR) (once, a few minutes)"
	@npm ci --prefix $(ASYNCAPI_DIR) --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: contracts
contracts: install $(ASYNCAPI) ## Generate docs/asyncapi.yaml and docs/schemas/ from the contracts, validate with the AsyncAPI CLI
	@$(UV) run --frozen saga-contracts write $(if $(ACCEPT_BREAKING),--accept-breaking)
	@$(ASYNCAPI_RUN) validate --fail-severity warn docs/asyncapi.yaml

.PHONY: diagrams
diagrams: install ## Draw every workflow definition as Mermaid in docs/workflows/ and the README
	@$(UV) run --frozen python -m orchestrator.entrypoints.diagrams

.PHONY: docs-check
docs-check: install $(ASYNCAPI) ## Contracts and diagrams current and compatible; AsyncAPI document valid
	@$(UV) run --frozen saga-contracts check
	@$(UV) run --frozen python -m orchestrator.entrypoints.diagrams --check
	@$(ASYNCAPI_RUN) validate --fail-severity warn docs/asyncapi.yaml

# --- quality -------------------------------------------------------------------------------------

.PHONY: lint
lint: install ## ruff + mypy --strict on code and tests, deptry per package, hadolint, alert rules, docs-check
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .
	@$(UV) run --frozen mypy
	@$(UV) run --frozen scripts/check-deps.sh
	@$(UV) run --frozen hadolint Dockerfile
	@scripts/alerts-check.sh
	@$(MAKE) --no-print-directory docs-check

.PHONY: format
format: install ## Format and auto-fix with ruff
	@$(UV) run --frozen ruff format .
	@$(UV) run --frozen ruff check --fix .

# Line coverage of every workspace package, measured in the test process (COVERAGE= turns it off).
COVERAGE ?= 1
COV_ARGS := $(if $(COVERAGE),$(foreach p,libs/sagakit/src/sagakit libs/sagaops/src/sagaops \
	$(foreach s,$(SERVICES),services/$(s)/src/$(s)),--cov=$(p)) --cov-report=)
.PHONY: test
test: infra-up alerts-check browser ## Every test (unit, integration, e2e, alert rules), starting the infrastructure if needed; coverage per package
	@status=0; $(UV) run --frozen pytest $(COV_ARGS) $(PYTEST_ARGS) || status=$$?; \
	  $(if $(COVERAGE),$(UV) run --frozen python scripts/coverage_summary.py || true;) exit $$status

.PHONY: alerts-check
alerts-check: ## Prometheus config and alert rules valid, each alert's promtool tests pass (installs promtool)
	@scripts/alerts-check.sh

.PHONY: browser
browser: ## Install Debian's chromium and chromium-driver for the console's browser tests (once)
	@scripts/install-browser.sh

.PHONY: console-screenshots
console-screenshots: infra-up browser ## Screenshots of the console's pages into docs/console/ (its browser test, run once)
	@CONSOLE_SCREENSHOTS=docs/console $(UV) run --frozen pytest tests/e2e/test_console.py -q -p no:cacheprovider $(PYTEST_ARGS)


.PHONY: test-unit
test-unit: install ## Unit tests only (no I/O, no infrastructure)
	@$(UV) run --frozen pytest -m unit $(PYTEST_ARGS)

# With SAGA_TEST_INFRA=testcontainers the tests start their own containers: no native infra-up.
.PHONY: test-integration
test-integration: $(if $(filter testcontainers,$(SAGA_TEST_INFRA)),install,infra-up) ## Integration tests on real Kafka, PostgreSQL, Redis, stripe-mock, SMTP (SAGA_TEST_INFRA=testcontainers: in containers)
	@$(UV) run --frozen pytest -m integration $(PYTEST_ARGS)

.PHONY: test-e2e
test-e2e: infra-up browser ## End-to-end tests: the services as real processes
	@$(UV) run --frozen pytest -m e2e $(PYTEST_ARGS)

PROPS_PROFILE ?= props
.PHONY: props
props: infra-up ## Property tests (hypothesis) with many more examples than in make test (HYPOTHESIS_PROFILE=props), the saga's on the real database too
	@HYPOTHESIS_PROFILE=$(PROPS_PROFILE) $(UV) run --frozen pytest -m "unit or integration" -k properties --timeout=0 \
	  -p no:cacheprovider $(PYTEST_ARGS)

FUZZ_EXAMPLES ?= 200
FUZZ_SCENARIOS ?= 100
FUZZ_STEPS ?= 20
.PHONY: fuzz
fuzz: infra-up ## Schemathesis on every service's OpenAPI (real processes): FUZZ_EXAMPLES new cases per operation, then FUZZ_SCENARIOS linked scenarios of FUZZ_STEPS calls
	@FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SCENARIOS=$(FUZZ_SCENARIOS) FUZZ_STEPS=$(FUZZ_STEPS) FUZZ_RANDOM=1 $(UV) run --frozen pytest tests/e2e/test_http_fuzz.py \
	  --timeout=0 -p no:cacheprovider -s $(PYTEST_ARGS)

# --- deployment (see README, "Deploying") -------------------------------------------------------

.PHONY: image
image: ## Build the services' image saga-shop:local (docker, or buildah without a Docker engine)
	@scripts/deploy/build-image.sh saga-shop:local

.PHONY: helm
helm: ## Build the pinned helm into .infra/bin with go install (once; then instant)
	@scripts/deploy/install-helm.sh

.PHONY: chart-check
chart-check: install ## helm lint and helm template of deploy/helm/saga-shop, and the chart's tests
	@helm="$$(scripts/deploy/install-helm.sh)" && \
	  "$$helm" lint --strict deploy/helm/saga-shop -f deploy/helm/saga-shop/ci/test-values.yaml && \
	  "$$helm" template shop deploy/helm/saga-shop -f deploy/helm/saga-shop/ci/test-values.yaml >/dev/null
	@$(UV) run --frozen pytest tests/deploy $(PYTEST_ARGS)
