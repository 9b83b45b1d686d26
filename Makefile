# The two commands: `make demo` and `make test`. Both install what they need on a fresh Debian machine.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: env demo test check bench clean

env:
	bash scripts/bootstrap.sh

demo: env
	$(VENV)/bin/duecourse demo

test: env
	url=$$(bash scripts/pg.sh start) && DUECOURSE_TEST_PG_URL=$$url $(VENV)/bin/pytest

check: env
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy src
	$(VENV)/bin/lint-imports

bench: env
	$(PY) bench/cycle.py --loans 100000

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
