# Quick start:  make demo   (the main job)   |   make test   (the test suite)
# Both create or reuse the virtual environment in .venv by themselves.

PYTHON ?= $(shell command -v python3.12 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test test-fast lint format bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "problogreg needs Python >= 3.12 (PyMC 6 requires it); install it, or set PYTHON=/path/to/python3.12")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev,dask]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/problogreg study

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# The inner loop: everything but the tests marked slow (NUTS sampling, notebooks, the study).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_map.py

clean:
	rm -rf $(VENV)
