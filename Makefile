# The two set-up commands in the README: `make demo` and `make test`.
# Each builds the project's own environment first (idempotent), so a fresh machine needs nothing else.

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup docs bench web-assets clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/confide demo

test: setup
	bash scripts/ensure-postgres
	bash scripts/ensure-browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -n 2 -q --cov --cov-report=term:skip-covered

bench: setup
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .confide

docs: setup
	$(BIN)/python -m confide.cli.reference > docs/cli.md

web-assets:
	bash scripts/build-web-assets
