"""Tests of the pure helpers of `benchmarks/mfg.py`: the gamescale -> mfglib translation
(dense kernel, reward tables) and the time-to-target search."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from gamescale.envs.mfg import CrowdModelling2D
from gamescale.envs.mfg.game import push_forward

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "mfg.py"
_SPEC = importlib.util.spec_from_file_location("benchmarks_mfg", _PATH)
mfg = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(mfg)


@pytest.mark.parametrize("action_cost", ["markov", "openspiel"])
def test_dense_kernel_pushes_like_sparse_kernel(action_cost):
    game = CrowdModelling2D(size=5, horizon=3, action_cost=action_cost)
    next_state, prob = game.transition(0, game.initial_distribution)
    dense = mfg.dense_kernel(next_state, prob)  # [S', S, A]
    assert dense.shape == (25, 25, 5)
    np.testing.assert_allclose(dense.sum(axis=0), 1.0, atol=1e-12)
    rng = np.random.default_rng(0)
    mu = rng.dirichlet(np.ones(25))
    policy = rng.dirichlet(np.ones(5), size=25)
    expected = push_forward(mu, policy, next_state, prob)
    np.testing.assert_allclose(np.einsum("tsa,s,sa->t", dense, mu, policy), expected, atol=1e-14)


@pytest.mark.parametrize("action_cost", ["markov", "openspiel"])
def test_crowd_reward_tables_reproduce_reward(action_cost):
    game = CrowdModelling2D(size=5, horizon=4, action_cost=action_cost)
    base = mfg.crowd_reward_tables(game)
    assert base.shape == (5, 25, 5)
    assert np.all(base[-1] == 0.0)
    mu = np.random.default_rng(3).dirichlet(np.ones(25))
    for t in range(4):
        np.testing.assert_allclose(game.reward(t, mu), base[t] - np.log(mu + 1e-25)[:, None], atol=1e-12)


def test_crowd_reward_tables_reject_congestion():
    game = CrowdModelling2D(size=5, horizon=3, with_congestion=True, action_cost="markov")
    with pytest.raises(ValueError, match="not position/action terms"):
        mfg.crowd_reward_tables(game)


def test_seconds_to_reach():
    seconds, values = [0.1, 0.2, 0.3], [5.0, 2.0, 1.0]
    assert mfg.seconds_to_reach(seconds, values, 2.0) == (2, 0.2)
    assert mfg.seconds_to_reach(seconds, values, 2.0 - 1e-12) == (2, 0.2)  # round-off counts as equal
    assert mfg.seconds_to_reach(seconds, values, 0.5) is None


def test_paired_speed_ups_pair_the_runs_of_each_repeat():
    """Per repeat, 1-worker over 2-worker seconds per iteration of one experiment at one K;
    failed runs and other experiments or K are left out, in repeat order."""
    def row(repeat, workers, slices, seconds, status="ok", experiment="a"):
        return {"experiment": experiment, "repeat": repeat, "workers": workers, "gradient_slices": slices,
                "seconds_per_iteration": seconds, "status": status}

    rows = [row(1, 1, 2, 9.0), row(1, 2, 2, 10.0), row(0, 2, 2, 5.0), row(0, 1, 2, 10.0),
            row(0, 1, 1, 1.0), row(0, 2, 1, 4.0), row(2, 1, 2, 3.0), row(2, 2, 2, 1.0, status="error"),
            row(0, 2, 2, 1.0, experiment="b")]
    assert mfg.paired_speed_ups(rows, "a", 2) == [2.0, 0.9]
    assert mfg.paired_speed_ups(rows, "a", 1) == [0.25]
