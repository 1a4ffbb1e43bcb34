# Two commands set gamescale up on a fresh machine with Python 3.11:
#   make demo   venv + install + the flagship experiment on an embedded local Ray
#   make test   venv + install (with test extras) + the default test suite
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch, installed before anything that depends on torch.
TORCH ?= torch==2.13.0

.PHONY: demo test test-slow install install-test bench lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e .

# The test set compares against peers (OpenSpiel, mfglib), so it installs the bench extra too;
# the peers stay optional: nothing in the package imports them. The clinic extra (local
# language models, Ray Serve) is tested too.
install-test: $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[test,bench,clinic]"

demo: install
	$(BIN)/gamescale run mfg-crowd2d-fp --out runs/demo-mfg-crowd2d-fp

test: install-test
	$(BIN)/python -m pytest -q

test-slow: install-test
	$(BIN)/python -m pytest -q -m slow

bench: install-test
	$(BIN)/python benchmarks/runtime.py
	$(BIN)/python benchmarks/mfg.py
	$(BIN)/python benchmarks/routing.py

lint:
	$(BIN)/ruff check gamescale tests benchmarks
