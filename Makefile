# Calcifer: `make run` sets up and starts the gateway; `make test` sets up and runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint types cov bench clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

run: setup
	$(BIN)/calcifer serve

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

types: setup
	$(BIN)/mypy

test: setup lint types
	rm -f .coverage .coverage.*
	$(BIN)/pytest --cov --cov-branch --cov-report= -p no:cacheprovider
	$(BIN)/coverage combine -q || true
	$(BIN)/coverage report --include='src/calcifer/domain/*' --fail-under=99
	$(BIN)/coverage report --fail-under=90

bench: setup
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .coverage .coverage.* .mypy_cache .ruff_cache
