# Two commands set gamescale up on a fresh machine with Python 3.11:
#   make demo   venv + install + the flagship experiment on an embedded local Ray
#   make test   venv + install (with test extras) + the default test suite
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch, installed before anything that depends on torch.
TORCH ?= torch==2.13.0

.PHONY: demo test test-slow install install-test bench lint stockfish

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e .

# Stockfish, the chess engine of the board games: apt-get where apt exists and we are root
# (or have password-less sudo), otherwise a line saying how. Never fails the set-up; without
# it the Stockfish tests skip (and fail under CI=true).
APT_STOCKFISH := apt-get install -y -q stockfish || (apt-get update -q && apt-get install -y -q stockfish)
stockfish:
	@if command -v stockfish >/dev/null 2>&1 || [ -x /usr/games/stockfish ]; then \
		echo "stockfish: found"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		( $(APT_STOCKFISH) ) || echo "stockfish: apt-get failed; the Stockfish tests will be skipped"; \
	elif command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		( sudo -n sh -c '$(APT_STOCKFISH)' ) || echo "stockfish: apt-get failed; the Stockfish tests will be skipped"; \
	else \
		echo "stockfish: not installed; install it with 'apt-get install stockfish' (Debian/Ubuntu) or 'brew install stockfish', or set STOCKFISH=/path/to/stockfish"; \
	fi


# The test set compares against peers (OpenSpiel, mfglib), so it installs the bench extra too;
# the peers stay optional: nothing in the package imports them. torch goes in first, so the
# bench extra's torch users (transformers, TRL and its accelerate/datasets) keep the CPU build.
# The clinic extra (local language models, Ray Serve) is tested too.
install-test: stockfish $(BIN)/python
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
	$(BIN)/python benchmarks/board.py $(BENCH)
	$(BIN)/python benchmarks/clinic.py $(BENCH)
	$(BIN)/python benchmarks/music.py $(BENCH)

lint:
	$(BIN)/ruff check gamescale tests benchmarks
