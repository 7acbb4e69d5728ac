# django-unilink developer commands. `make test` and `make demo` do all set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: help venv services test test-sqlite test-postgres lint typecheck demo bench clean

help:
	@echo "make test      - install everything, start PostgreSQL+Redis on loopback, run the suite on SQLite and PostgreSQL"
	@echo "make demo      - run the example project (see README)"
	@echo "make lint      - ruff;  make typecheck - mypy with django-stubs"
	@echo "make bench     - run the benchmarks under benchmarks/"

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test,lint,browser]"
	touch $(STAMP)

venv: $(STAMP)

services:
	bash scripts/services.sh postgres redis chromium

test: venv services
	$(BIN)/python -m django makemigrations --check --dry-run --settings=tests.settings django_unilink
	$(MAKE) lint typecheck
	$(MAKE) test-sqlite
	$(MAKE) test-postgres

test-sqlite: venv
	UNILINK_TEST_DB=sqlite $(BIN)/pytest $(PYTEST_ARGS)

test-postgres: venv
	UNILINK_TEST_DB=postgres $(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check django_unilink tests benchmarks example_project

typecheck: venv
	$(BIN)/mypy django_unilink

demo: venv
	bash scripts/demo.sh

bench: venv services
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
