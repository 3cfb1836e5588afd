# The README's two commands: `make run` and `make test`. Both set everything up themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export TOVPLUS_DATA_DIR ?= ./var
# Three test processes on two cores: many tests wait on subprocesses, sockets and the database.
PYTEST_ARGS ?= -n 3

.PHONY: install run test test-sqlite test-postgres lint format bench services clean browser screenshots soak

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run: set up, start the partner simulator on http://127.0.0.1:8100 (the printer, and the messaging
## partner under /messaging) and wait for it, seed demo data (the messaging connection is authorized
## at the simulator, which keeps nothing across restarts, so every run authorizes it again), then
## start the whole system (embedded SQLite) on http://127.0.0.1:8000 (the simulator stops with it);
## the demo connections sync against it every minute (TOVPLUS_SYNC_INTERVAL_SECONDS).
run: install
	@$(BIN)/tovplus partner-sim --host 127.0.0.1 --port 8100 & sim=$$!; \
	trap 'kill -TERM $$sim 2>/dev/null' EXIT; \
	for i in $$(seq 1 100); do \
	  $(BIN)/python -c "import httpx; httpx.get('http://127.0.0.1:8100/healthz', timeout=1).raise_for_status()" \
	    2>/dev/null && break; \
	  kill -0 $$sim 2>/dev/null || { echo "the partner simulator did not start" >&2; exit 1; }; sleep 0.1; \
	done; \
	TOVPLUS_ALLOW_PRIVATE_URLS=true $(BIN)/tovplus demo || exit $$?; \
	TOVPLUS_ALLOW_PRIVATE_URLS=true TOVPLUS_SYNC_INTERVAL_SECONDS=$${TOVPLUS_SYNC_INTERVAL_SECONDS:-60} \
	  TOVPLUS_SYNC_RETRY_DELAYS=$${TOVPLUS_SYNC_RETRY_DELAYS:-10,20,30} \
	  $(BIN)/tovplus serve --host 127.0.0.1 --port 8000 & srv=$$!; \
	trap 'kill -TERM $$srv 2>/dev/null' INT TERM HUP; \
	status=0; while kill -0 $$srv 2>/dev/null; do wait $$srv; status=$$?; done; \
	kill -TERM $$sim 2>/dev/null; wait $$sim 2>/dev/null; exit $$status

## test: lint, then every test on SQLite and again on PostgreSQL
test: install services browser lint test-sqlite test-postgres

test-sqlite: install browser
	TOVPLUS_TEST_DB=sqlite $(BIN)/pytest $(PYTEST_ARGS)

test-postgres: install services
	TOVPLUS_TEST_DB=postgresql $(BIN)/pytest $(PYTEST_ARGS)

## lint: ruff; the layer contracts in pyproject.toml (import-linter); the facade and no-cycle rules
## (scripts/check_architecture.py); mypy --strict on all of src/ (docs/architecture.md)
lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	PYTHONPATH=src $(BIN)/lint-imports --no-cache
	$(BIN)/python scripts/check_architecture.py
	$(BIN)/mypy

format: install
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

## browser: Debian's Chromium for the page tests and screenshots (installed only when missing;
## Playwright drives it through executable_path, nothing is downloaded by Playwright itself)
browser:
	@test -x /usr/bin/chromium || { apt-get update && apt-get install -y chromium; }

## screenshots: PNGs of the planner's and the admin's pages, with demo data, into docs/screenshots/
screenshots: install browser
	$(BIN)/python scripts/screenshots.py

## services: make sure the local PostgreSQL and Redis answer (CI machines have them; they may be stopped)
services:
	@scripts/ensure-services

bench: install services
	$(BIN)/python -m bench

## soak: serve + partner simulator under mixed load on loopback (default 10 minutes; SOAK_SECONDS=60
## for a short one), then a one-line verdict; exits non-zero on failure. Not part of `make test`.
soak: install
	$(BIN)/python scripts/soak.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
