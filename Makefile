# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test check lint format typecheck unit clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

run: install  ## start MLflow (UI) and seed the registry; Ctrl-C stops everything
	$(BIN)/lifecycle up

check: lint typecheck

lint: install
	$(BIN)/ruff check lifecycle registry monitoring serving retrain tests benchmarks
	$(BIN)/ruff format --check lifecycle registry monitoring serving retrain tests benchmarks

format: install
	$(BIN)/ruff format lifecycle registry monitoring serving retrain tests benchmarks
	$(BIN)/ruff check --fix lifecycle registry monitoring serving retrain tests benchmarks

typecheck: install
	$(BIN)/mypy

test: check  ## lint, type-check, then the whole suite (unit, integration, e2e; slow tests included)
	$(BIN)/python -m pytest

unit: install
	$(BIN)/python -m pytest tests/unit

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
