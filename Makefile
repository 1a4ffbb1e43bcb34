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
# the peers stay optional: nothing in the package imports them. torch goes in first, so the
# bench extra's torch users (transformers, TRL and its accelerate/datasets) keep the CPU build.
# The clinic extra (local language models, Ray Serve) is tested too.
install-test: $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[test,bench,clinic]"

demo: install
	$(BIN)/gamescale run mfg-crowd2d-fp --out runs/demo-mfg-crowd2d-fp

test: install-test
	$(BIN)/python -m pytest -q

test-slow: install-test
	$(BIN)/python -m pytest -q -m slow

# Every benchmark writes benchmarks/results/<name>.json with the machine it ran on (CPU,
# memory, versions, GPU, load, date, git commit, command). The full set takes well over an
# hour on 2 cores; `make bench BENCH=--quick` runs the short version of each.
BENCH ?=
bench: install-test
	$(BIN)/python benchmarks/runtime.py $(BENCH)
	$(BIN)/python benchmarks/mfg.py $(BENCH)
	$(BIN)/python benchmarks/routing.py $(BENCH)
	$(BIN)/python benchmarks/lm.py $(BENCH)
	$(BIN)/python benchmarks/coalitions.py $(BENCH)

lint:
	$(BIN)/ruff check gamescale tests benchmarks
