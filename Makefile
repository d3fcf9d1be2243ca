# cardvault — two commands: `make serve` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install serve cluster test test-fast fuzz bench docs lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Start the service on 127.0.0.1:8000 with SQLite in ./.cardvault/
serve: $(STAMP)
	$(BIN)/cardvault serve

## Three nodes (2 workers each) on PostgreSQL (127.0.0.1:5432) behind nginx on
## 127.0.0.1:8080, until Ctrl-C (deploy/, docs/operations.md "Running several nodes");
## options: make cluster CLUSTER_ARGS="--nodes 2 --port 9000" (python -m deploy.cluster -h)
cluster: $(STAMP)
	@command -v nginx >/dev/null || (apt-get update -qq && apt-get install -y -qq nginx-light)
	$(BIN)/python -m deploy.cluster $(CLUSTER_ARGS)

## Run the whole suite (SQLite and PostgreSQL; browser tests in headless Chromium)
test: $(STAMP)
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)
	@command -v nginx >/dev/null || (apt-get update -qq && apt-get install -y -qq nginx-light)
	$(BIN)/pytest -n 2 --dist loadgroup

## Fuzz every API, management and OAuth route for 10 minutes (SQLite and PostgreSQL):
## schemathesis on /openapi.json, stateful scenarios, OAuth forms; prints cases, minutes, failures
FUZZ_MINUTES ?= 10
fuzz: $(STAMP)
	CARDVAULT_FUZZ_MINUTES=$(FUZZ_MINUTES) $(BIN)/pytest -n 0 -q tests/fuzz

## Token endpoint and API figures with a real load generator (wrk)
bench: $(STAMP)
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/bulk.py

## The documentation site in ./site/ (the reference pages are rendered from the code)
docs: $(STAMP)
	$(BIN)/python docs/hooks.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

lint: $(STAMP)
	$(BIN)/ruff check src tests bench docs deploy
	$(BIN)/ruff format --check src tests bench docs deploy
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) .cardvault .cardvault-cluster .pytest_cache .mypy_cache .ruff_cache site
