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
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON_DOWNLOADS := never

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

.PHONY: venv
venv: $(VENV)/.synced ## create .venv from uv.lock

.PHONY: run
run: venv ## serve the function on $PORT (default 8080)
	PORT=$(PORT) $(PY) -m handler

.PHONY: test
test: venv ## run the whole test suite with coverage
	$(PY) -m pytest --cov --cov-report=term

.PHONY: lint
lint: venv ## ruff, formatting and mypy strict
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

.PHONY: fmt
fmt: venv ## format and autofix
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

.PHONY: lock
lock: $(UV) ## re-resolve uv.lock and re-export requirements.txt
	$(UV) lock
	$(UV) export --frozen --no-dev --no-hashes --no-emit-project -o requirements.txt >/dev/null

.PHONY: requirements
requirements: $(UV) ## export requirements.txt from the lock
	$(UV) export --frozen --no-dev --no-hashes --no-emit-project -o requirements.txt >/dev/null

.PHONY: clean
clean: ## remove the environments and caches
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
