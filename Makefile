# Every target bootstraps what it needs: a fresh machine with only python3 and make is enough.
# uv lives in .tools/ (a tiny venv of its own), the project in .venv/, both in the project root.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
PORT ?= 8080
TOOLS := .tools
UV := $(TOOLS)/bin/uv
UV_VERSION := 0.13.9
VENV := .venv
PY := $(VENV)/bin/python
# Poetry and Locust are tools, each in a venv of its own under .tools/: Poetry is the other way
# to install the project (uv stays the one `make` uses), Locust drives `make loadtest`; neither
# belongs in the project's lock.
POETRY_HOME := $(TOOLS)/poetry
POETRY := $(POETRY_HOME)/bin/poetry
POETRY_VERSION := 2.5.1
POETRY_EXPORT_VERSION := 1.10.1
LOCUST_HOME := $(TOOLS)/locust
LOCUST := $(LOCUST_HOME)/bin/locust
LOCUST_VERSION := 2.47.0
LOADTEST_ARGS ?= --run-time 10s --users 20 --spawn-rate 10
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON_DOWNLOADS := never

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# --compile-bytecode: every installed module ships its .pyc, as in the image, so cold start does
# not depend on PYTHONDONTWRITEBYTECODE (set in many containers and CI runners).
$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --extra ui --compile-bytecode --python $(PYTHON)
	@touch $@

.PHONY: venv
venv: $(VENV)/.synced ## create .venv from uv.lock

.PHONY: run
run: venv ## serve the function on $PORT (default 8080)
	@$(PY) -m compileall -q eventfn handler schemas
	PORT=$(PORT) $(PY) -m eventfn

UI_PORT ?= 8501
.PHONY: ui
ui: venv ## serve the Streamlit console on $UI_PORT (default 8501; BACKEND_URL, default http://localhost:8080)
	$(PY) -m streamlit run ui/app.py --server.port $(UI_PORT) --server.headless true --browser.gatherUsageStats false --client.toolbarMode minimal

.PHONY: chromium
chromium: ## apt-install Debian's chromium for the optional browser end-to-end test
	command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

.PHONY: wrk
wrk: ## apt-install wrk, the load generator of `make bench` (tests run the bench's script with it)
	command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

.PHONY: redis-servers
redis-servers: ## apt-install redis-server, redis-cli and redis-sentinel (the Cluster and Sentinel tests start their own)
	command -v redis-server >/dev/null && command -v redis-cli >/dev/null && command -v redis-sentinel >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools redis-sentinel >/dev/null; }

.PHONY: test
test: venv ## run the whole test suite with coverage
	$(PY) -m pytest --cov --cov-report=term

.PHONY: chaos
chaos: venv ## run the fault suite alone (make test runs it too)
	$(PY) -m pytest -m chaos

.PHONY: lint
lint: venv ## ruff, formatting, mypy strict, import contracts, hadolint, manifests and requirements fresh, the manual builds
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/hadolint Dockerfile
	$(MAKE) --no-print-directory manifests-check requirements-check
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

.PHONY: docs
docs: venv ## serve the manual (docs/, mkdocs.yml) on http://localhost:8000, rebuilt on save
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

.PHONY: docs-reference
docs-reference: venv ## regenerate docs/reference/{configuration,metrics}.md from Settings and the metrics
	$(PY) scripts/gen_reference.py

.PHONY: fmt
fmt: venv ## format and autofix
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

$(POETRY):
	$(PYTHON) -m venv $(POETRY_HOME)
	$(POETRY_HOME)/bin/pip install --quiet --disable-pip-version-check \
		"poetry==$(POETRY_VERSION)" "poetry-plugin-export==$(POETRY_EXPORT_VERSION)"

.PHONY: poetry
poetry: $(POETRY) ## install Poetry and its export plugin into .tools/poetry
	@$(POETRY) --version

$(LOCUST):
	$(PYTHON) -m venv $(LOCUST_HOME)
	$(LOCUST_HOME)/bin/pip install --quiet --disable-pip-version-check "locust==$(LOCUST_VERSION)"

.PHONY: locust
locust: $(LOCUST) ## install Locust into .tools/locust
	@$(LOCUST) --version

.PHONY: lock
lock: $(UV) $(POETRY) ## re-resolve uv.lock, re-export requirements.txt, make poetry.lock follow
	$(UV) lock
	$(UV) export --frozen --no-dev --no-hashes --no-emit-project -o requirements.txt >/dev/null
	$(PYTHON) scripts/poetry_lock.py $(UV) $(POETRY)

.PHONY: requirements
requirements: $(UV) ## export requirements.txt from the lock
	$(UV) export --frozen --no-dev --no-hashes --no-emit-project -o requirements.txt >/dev/null

.PHONY: requirements-check
requirements-check: $(UV) ## fail if requirements.txt is not the export of uv.lock
	@diff <($(UV) export --frozen --no-dev --no-hashes --no-emit-project --no-header) \
		<(grep -v '^#' requirements.txt) || { echo "requirements.txt is stale: make requirements"; exit 1; }

.PHONY: manifests
manifests: venv ## render eventing/ from the event catalogue and settings defaults
	$(PY) -m manifests

.PHONY: manifests-check
manifests-check: venv ## fail if eventing/ differs from what `make manifests` renders
	@$(PY) -m manifests --check || { echo "eventing/ is stale: make manifests"; exit 1; }

.PHONY: bench
bench: venv ## benchmark the ingress vs bare ASGI and FastAPI (wrk; see docs/internals/performance.md)
	$(PY) -m bench.run $(BENCH_ARGS)

.PHONY: bench-coldstart
bench-coldstart: venv ## cold start of `python -m eventfn` vs FastAPI hello (docs/internals/performance.md)
	$(PY) -m bench.run --cold-start-only $(BENCH_ARGS)

.PHONY: bench-sweep
bench-sweep: venv ## one pod's events/s and p99 at 1..128 connections as eventing/ deploys it (SWEEP_ARGS)
	$(PY) -m bench.sweep $(SWEEP_ARGS)

.PHONY: bench-kpa
bench-kpa: venv ## Knative's autoscaler simulated on the sweep under a ramp to 2,000 events/s (KPA_ARGS)
	$(PY) -m bench.kpa $(KPA_ARGS)

.PHONY: kubectl
kubectl: ## apt-install kubectl (Debian's kubernetes-client): tests/repo/test_rollout.py builds eventing/ with it
	command -v kubectl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >/dev/null; }

.PHONY: loadtest
loadtest: venv $(LOCUST) ## Locust headless against a local `python -m eventfn` (LOADTEST_ARGS)
	$(PY) -m loadtest.run --locust $(LOCUST) $(LOADTEST_ARGS)

.PHONY: bench-instructions
bench-instructions: venv ## CPU instructions per event of the ingress (callgrind; deterministic)
	command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
	$(PY) -m bench.instructions

.PHONY: bench-filters
bench-filters: venv ## a Trigger filter's cost per event beside decoding it (FILTERS_ARGS=--instructions: callgrind)
	$(PY) -m bench.filters $(FILTERS_ARGS)

.PHONY: clean
clean: ## remove the environments and caches
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
