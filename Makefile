# Cerniq Outreach — every target creates the environment it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast lint fmt bench lock clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP) ## build .venv/ from the lock file (the CLI is .venv/bin/cerniq-outreach)

run: $(STAMP) ## start the embedded default with demo data (SQLite, in-process, sandbox)
	$(BIN)/cerniq-outreach serve --embedded --demo

test: $(STAMP) ## run the whole test suite (services from CERNIQ_TEST_* or testcontainers)
	$(BIN)/python -m pytest

test-fast: $(STAMP) ## unit and property tests only, no services
	$(BIN)/python -m pytest tests/unit tests/property

lint: $(STAMP) ## ruff (lint + format check), mypy strict on src/, import-linter contracts
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP) ## format and auto-fix
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP) ## run the benchmarks in bench/ (RESULT lines)
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

lock: ## re-resolve requirements.lock from pyproject.toml (needs network)
	$(PYTHON) -m venv .lockenv && .lockenv/bin/pip install --quiet pip-tools
	.lockenv/bin/pip-compile --quiet --extra dev --generate-hashes --allow-unsafe --strip-extras -o requirements.lock pyproject.toml

clean: ## remove the environment and caches
	rm -rf $(VENV) .lockenv .mypy_cache .ruff_cache .pytest_cache .hypothesis var
