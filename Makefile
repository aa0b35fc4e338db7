# Calcifer: `make run` sets up and starts the gateway; `make test` sets up and runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup clients run test lint types cov bench clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# The real clients the tests drive (coding-agent CLIs from the npm registry): one folder each under
# tests/clients/ with its package.json and package-lock.json, installed with `npm ci`.
CLIENT_LOCKS := $(wildcard tests/clients/*/package-lock.json)
CLIENT_STAMPS := $(CLIENT_LOCKS:package-lock.json=node_modules/.installed)

clients: $(CLIENT_STAMPS)

tests/clients/%/node_modules/.installed: tests/clients/%/package-lock.json tests/clients/%/package.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/clients/$* --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the tests that drive tests/clients/$* will skip"; fi

run: setup
	$(BIN)/calcifer serve

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

types: setup
	$(BIN)/mypy

test: setup clients lint types
	rm -f .coverage .coverage.*
	$(BIN)/pytest --cov --cov-branch --cov-report= -p no:cacheprovider
	$(BIN)/coverage combine -q || true
	$(BIN)/coverage report --include='src/calcifer/domain/*' --fail-under=99
	$(BIN)/coverage report --fail-under=90

bench: setup
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .coverage .coverage.* .mypy_cache .ruff_cache
