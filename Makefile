# Two entry points a fresh machine needs: `make run` and `make test` (README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Tests run against PostgreSQL and Redis on this machine unless told otherwise.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/training
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test lint typecheck bench install migrate seed clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

# Web, worker, scheduler and the orchestrator emulator on the embedded defaults (Ctrl-C stops all).
run: seed
	$(VENV)/bin/honcho start -f Procfile

test: install
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		FAST_PASSWORD_HASHER=true $(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports  # the layers of DESIGN.md §2 (.importlinter)

typecheck: install
	$(VENV)/bin/mypy

bench: install
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(PY) bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf var
