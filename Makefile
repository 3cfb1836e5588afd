# The README's two commands: `make run` and `make test`. Both set everything up themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export TOVPLUS_DATA_DIR ?= ./var

.PHONY: install run test test-sqlite test-postgres lint format bench services clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run: set up, seed demo data and start the whole system (embedded SQLite) on http://127.0.0.1:8000
run: install
	TOVPLUS_ALLOW_PRIVATE_URLS=true $(BIN)/tovplus demo
	TOVPLUS_ALLOW_PRIVATE_URLS=true exec $(BIN)/tovplus serve --host 127.0.0.1 --port 8000

## test: lint, then every test on SQLite and again on PostgreSQL
test: install services lint test-sqlite test-postgres

test-sqlite: install
	TOVPLUS_TEST_DB=sqlite $(BIN)/pytest

test-postgres: install services
	TOVPLUS_TEST_DB=postgresql $(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

## services: make sure the local PostgreSQL answers (CI machines have it; it may be stopped)
services:
	@scripts/ensure-services

bench: install services
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
