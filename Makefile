# Two commands set gamescale up on a fresh machine with Python 3.11:
#   make demo   venv + install + the flagship experiment on an embedded local Ray
#   make test   venv + install (with test extras) + the default test suite
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch, installed before anything that depends on torch.
TORCH ?= torch==2.13.0

.PHONY: demo test test-slow install install-test bench lint stockfish system-packages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e .

# System programs some tests use: Stockfish (the board games' chess engine) and FluidSynth with
# a General MIDI soundfont (music's WAV output). apt-get where apt exists and we are root (or
# have password-less sudo), otherwise a line saying how. Never fails the set-up; without them
# their tests skip (and fail under CI=true).
APT_PACKAGES := stockfish fluidsynth timgm6mb-soundfont
APT_INSTALL := apt-get install -y -q --no-install-recommends $(APT_PACKAGES) || (apt-get update -q && apt-get install -y -q --no-install-recommends $(APT_PACKAGES))
HAVE_SYSTEM := (command -v stockfish || ls /usr/games/stockfish) >/dev/null 2>&1 && command -v fluidsynth >/dev/null 2>&1 && ls /usr/share/sounds/sf2/*.sf2 >/dev/null 2>&1
system-packages:
	@if $(HAVE_SYSTEM); then \
		echo "system packages: Stockfish and FluidSynth found"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		( $(APT_INSTALL) ) || echo "system packages: apt-get failed; the Stockfish and WAV tests will be skipped"; \
	elif command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		( sudo -n sh -c '$(APT_INSTALL)' ) || echo "system packages: apt-get failed; the Stockfish and WAV tests will be skipped"; \
	else \
		echo "system packages: install Stockfish ('apt-get install stockfish', 'brew install stockfish', or set STOCKFISH=/path) and FluidSynth with a General MIDI soundfont ('apt-get install fluidsynth timgm6mb-soundfont', 'brew install fluid-synth', or set GAMESCALE_SOUNDFONT=/path.sf2)"; \
	fi

stockfish: system-packages


# The test set compares against peers (OpenSpiel, mfglib), so it installs the bench extra too;
# the peers stay optional: nothing in the package imports them. torch goes in first, so the
# bench extra's torch users (transformers, TRL and its accelerate/datasets) keep the CPU build.
# The clinic extra (local language models, Ray Serve) is tested too.
install-test: system-packages $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[test,bench,clinic]"

demo: install
	$(BIN)/gamescale run mfg-crowd2d-fp --out runs/demo-mfg-crowd2d-fp

test: install-test
	$(BIN)/python -m pytest -q --durations=25

test-slow: install-test
	$(BIN)/python -m pytest -q -m slow

# Every benchmark writes benchmarks/results/<name>.json with the machine it ran on (CPU,
# memory, versions, GPU, load, date, git commit, command). The full set takes well over an
# hour on 2 cores; `make bench BENCH=--quick` runs the short version of each.
BENCH ?=
bench: install-test
	$(BIN)/pip install --quiet -e ".[bench-deep]"
	$(BIN)/python benchmarks/runtime.py $(BENCH)
	$(BIN)/python benchmarks/learners.py $(BENCH)
	$(BIN)/python benchmarks/mfg.py $(BENCH)
	$(BIN)/python benchmarks/routing.py $(BENCH)
	$(BIN)/python benchmarks/lm.py $(BENCH)
	$(BIN)/python benchmarks/coalitions.py $(BENCH)
	$(BIN)/python benchmarks/board.py $(BENCH)
	$(BIN)/python benchmarks/clinic.py $(BENCH)
	$(BIN)/python benchmarks/music.py $(BENCH)

lint:
	$(BIN)/ruff check gamescale tests benchmarks
