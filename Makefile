# Two entry points a fresh machine needs: `make run` and `make test` (README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# make run PORT=8001 EMULATOR_PORT=8766: the web and the orchestrator emulator listen there, and the
# callback base (PUBLIC_BASE_URL) and ORCHESTRATOR_URL follow unless they are set.
PORT ?= 8000
EMULATOR_PORT ?= 8765

# Where `make bench` runs when DATABASE_URL / REDIS_URL are unset (bench/RESULTS.md).
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/training
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test lint typecheck bench install migrate seed stop clean

# The only target that needs the network: everything after it works offline.
$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# With DATABASE_URL / REDIS_URL unset, the first of these starts the embedded PostgreSQL and Redis
# under var/ (config/embedded.py); they keep running for every later command until `make stop`.
migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

# Web, worker, scheduler and the orchestrator emulator (Ctrl-C stops them; `make stop` the servers).
run: seed
	WEB_PORT=$(PORT) EMULATOR_PORT=$(EMULATOR_PORT) \
	PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://127.0.0.1:$(PORT)} \
	ORCHESTRATOR_URL=$${ORCHESTRATOR_URL:-http://127.0.0.1:$(EMULATOR_PORT)} \
		$(VENV)/bin/honcho start -f Procfile

# Against DATABASE_URL / REDIS_URL when set; otherwise against embedded servers started for this
# run in a temporary directory and removed after it.
test: install
	FAST_PASSWORD_HASHER=true $(PY) -m config.embedded throwaway -- $(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports  # the layers of DESIGN.md §2 (.importlinter)

# mypy's Django plugin loads the settings but never connects: no embedded servers for it.
typecheck: install
	DATABASE_URL=$${DATABASE_URL:-postgres://typecheck@127.0.0.1/unused} \
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1/0} $(VENV)/bin/mypy

bench: install
	DATABASE_URL=$${DATABASE_URL:-$(BENCH_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(BENCH_REDIS_URL)} \
		$(PY) bench/run_all.py $(BENCH_ARGS)

# Stops the embedded PostgreSQL and Redis of this checkout (their data stays in var/).
stop:
	@if [ -x $(PY) ]; then $(PY) -m config.embedded stop; fi

# Stops them and deletes var/: database, Redis, uploads (docs/operations.md).
clean: stop
	rm -rf var
