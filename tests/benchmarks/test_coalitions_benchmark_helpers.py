"""Tests of `benchmarks/coalitions.py`'s measuring helpers: the excess it credits a payoff with
agrees with the exact largest excess (enumeration) where that is computable, and its gamescale
child run reaches a small game's exact value (the benchmark once broke on a removed import)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from gamescale.algorithms.coalitions.lp import exact_least_core, max_excess_enumerated

_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(_DIR))  # the benchmark imports its sibling `machine`
_SPEC = importlib.util.spec_from_file_location("benchmarks_coalitions", _DIR / "coalitions.py")
coalitions = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(coalitions)


@pytest.mark.parametrize("family", ["weighted_voting", "induced_subgraph"])
def test_measured_excess_is_the_largest_excess(family):
    game = coalitions.make_game(family, 14)
    rng = np.random.default_rng(1)
    for _ in range(3):
        payoff = rng.dirichlet(np.ones(14)) * game.grand_value()
        exact = float(max_excess_enumerated(game, payoff)[1][0])
        assert coalitions.true_excess(game, payoff)[0] == pytest.approx(exact, abs=1e-9)
        assert coalitions.sampled_excess(game, payoff) <= exact + 1e-9


@pytest.mark.parametrize("update", ["lp", "bundle"])
def test_gamescale_run_reaches_the_exact_value(update):
    game = coalitions.make_game("induced_subgraph", 12)
    exact = exact_least_core(game, nonnegative=True).epsilon
    row = coalitions.run_gamescale("induced_subgraph", 12, exact, 30.0, update=update)
    assert row["reached"] and row["epsilon"] <= exact + coalitions.WITHIN * abs(exact) + 1e-9
