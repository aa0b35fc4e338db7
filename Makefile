# Calcifer: `make run` sets up and starts the gateway; `make test` sets up and runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup clients browser console-assets run test lint types cov bench clean

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

# Debian's Chromium for the console's browser tests (tests/console/test_browser.py, Playwright): installed
# with apt-get where it is missing and apt-get can run; elsewhere those tests skip, loudly (and fail in CI,
# CALCIFER_REQUIRE_SERVICES=1).
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
		|| (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium) \
		|| echo "could not install chromium: the console's browser tests will skip"; \
	else echo "chromium not found and apt-get unavailable here: the console's browser tests will skip"; fi

# The console's charting library: pinned by frontend/package-lock.json, its built file vendored into the
# package (so `make run` needs no Node). Run after changing frontend/package.json.
console-assets:
	npm ci --prefix frontend --no-audit --no-fund --loglevel=error
	cp frontend/node_modules/chart.js/dist/chart.umd.min.js src/calcifer/console/static/chart.umd.min.js
	cp frontend/node_modules/chart.js/LICENSE.md src/calcifer/console/static/chart.js.LICENSE.md

run: setup
	CALCIFER_LEDGER_JOURNAL=$${CALCIFER_LEDGER_JOURNAL-calcifer-journal} $(BIN)/calcifer serve

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

types: setup
	$(BIN)/mypy

test: setup clients browser lint types
	rm -f .coverage .coverage.*
	$(BIN)/pytest --cov --cov-branch --cov-report= -p no:cacheprovider
	$(BIN)/coverage combine -q || true
	$(BIN)/coverage report --include='src/calcifer/domain/*' --fail-under=99
	$(BIN)/coverage report --fail-under=90

bench: setup
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .coverage .coverage.* .mypy_cache .ruff_cache
