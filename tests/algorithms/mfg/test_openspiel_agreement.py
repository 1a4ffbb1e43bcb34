"""Exploitability of gamescale FP and OMD agrees with OpenSpiel's python MFG algorithms."""

from __future__ import annotations

import numpy as np
import pytest

from gamescale.algorithms.mfg import FictitiousPlay, MirrorDescent
from gamescale.algorithms.mfg.config import FictitiousPlayConfig, MirrorDescentConfig
from gamescale.envs.mfg import CrowdModelling1D, CrowdModelling2D
from tests.conftest import require_peer

pyspiel = require_peer("pyspiel")  # skips without OpenSpiel; fails under CI=true
from open_spiel.python.mfg.algorithms import fictitious_play, mirror_descent, nash_conv  # noqa: E402

_CACHE: dict[tuple[str, str, int], list[float]] = {}


def openspiel_curve(game_name: str, algorithm: str, iterations: int) -> list[float]:
    """OpenSpiel's nash_conv after each of the first `iterations` iterations (memoised)."""
    for (name, algo, n), curve in _CACHE.items():
        if (name, algo) == (game_name, algorithm) and n >= iterations:
            return curve[:iterations]
    game = pyspiel.load_game(game_name)
    solver = fictitious_play.FictitiousPlay(game) if algorithm == "fp" else mirror_descent.MirrorDescent(game)
    curve = []
    for _ in range(iterations):
        solver.iteration()
        curve.append(float(nash_conv.NashConv(game, solver.get_policy()).nash_conv()))
    _CACHE[(game_name, algorithm, iterations)] = curve
    return curve


def gamescale_curve(game, algorithm: str, iterations: int) -> list[float]:
    solver = (
        FictitiousPlay(FictitiousPlayConfig(), game)
        if algorithm == "fp"
        else MirrorDescent(MirrorDescentConfig(), game)
    )
    state = solver.init(0)
    curve = []
    for _ in range(iterations):
        state, metrics = solver.step(state)
        curve.append(metrics["exploitability"])
    return curve


def check_agreement(game_name: str, game, algorithm: str, checkpoints: list[int]) -> None:
    n = max(checkpoints)
    ours = gamescale_curve(game, algorithm, n)
    theirs = openspiel_curve(game_name, algorithm, n)
    for k in checkpoints:
        assert ours[k - 1] == pytest.approx(theirs[k - 1], abs=1e-6), f"{algorithm} iteration {k}"


@pytest.mark.parametrize("algorithm", ["fp", "md"])
def test_crowd_1d_matches_openspiel_at_1_10_50(algorithm):
    check_agreement("mfg_crowd_modelling", CrowdModelling1D(), algorithm, [1, 10, 50])


# OpenSpiel walks the 2D game tree in Python (about 1 s per iteration), so the default set
# checks the first 5 iterations and the slow set goes on to 50.
@pytest.mark.parametrize("algorithm", ["fp", "md"])
def test_crowd_2d_matches_openspiel_at_1_and_5(algorithm):
    check_agreement("mfg_crowd_modelling_2d", CrowdModelling2D(), algorithm, [1, 5])


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["fp", "md"])
def test_crowd_2d_matches_openspiel_at_1_10_50(algorithm):
    check_agreement("mfg_crowd_modelling_2d", CrowdModelling2D(), algorithm, [1, 10, 50])


def test_uniform_policy_nash_conv_matches_openspiel():
    from open_spiel.python import policy as policy_lib

    from gamescale.algorithms.mfg import exploitability, uniform_policy

    for name, game in [("mfg_crowd_modelling", CrowdModelling1D()), ("mfg_crowd_modelling_2d", CrowdModelling2D())]:
        os_game = pyspiel.load_game(name)
        theirs = nash_conv.NashConv(os_game, policy_lib.UniformRandomPolicy(os_game)).nash_conv()
        assert exploitability(game, uniform_policy(game)) == pytest.approx(theirs, abs=1e-9)


def test_distribution_matches_openspiel_bitwise():
    from open_spiel.python import policy as policy_lib
    from open_spiel.python.mfg.algorithms import distribution

    from gamescale.algorithms.mfg import propagate, uniform_policy

    game = CrowdModelling2D()
    os_game = pyspiel.load_game("mfg_crowd_modelling_2d")
    dist = distribution.DistributionPolicy(os_game, policy_lib.UniformRandomPolicy(os_game))
    n = game.size
    theirs = np.array([[dist.value_str(f"({s // n}, {s % n}, {t})", 0.0) for s in range(n * n)] for t in range(10)])
    np.testing.assert_array_equal(propagate(game, uniform_policy(game))[:10], theirs)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ({"name": "fixed_point"}, {"algorithm": "fixed_point"}),
        ({"name": "fixed_point", "temperature": 0.2}, {"algorithm": "fixed_point", "temperature": 0.2}),
        ({"name": "boltzmann", "learning_rate": 0.2}, {"algorithm": "boltzmann", "lr": 0.2}),
        ({"name": "boltzmann", "learning_rate": 1.0}, {"algorithm": "boltzmann", "lr": 1.0}),
    ],
    ids=["fixed_point-greedy", "fixed_point-softmax", "boltzmann-0.2", "boltzmann-1"],
)
def test_fixed_point_and_boltzmann_match_openspiel_every_iteration(ours, theirs):
    """15 iterations on 1D crowd modelling, run live in both: every exploitability agrees
    (measured to ~1e-13; the undamped maps cycle, so this compares curves, not limits)."""
    from open_spiel.python.mfg.algorithms import boltzmann_policy_iteration, fixed_point

    from gamescale.algorithms.registry import algorithm_config, build_algorithm

    theirs = dict(theirs)
    os_game = pyspiel.load_game("mfg_crowd_modelling")
    if theirs.pop("algorithm") == "fixed_point":
        os_solver = fixed_point.FixedPoint(os_game, **theirs)
    else:
        os_solver = boltzmann_policy_iteration.BoltzmannPolicyIteration(os_game, **theirs)
    solver = build_algorithm(algorithm_config(ours), CrowdModelling1D())
    state = solver.init(0)
    for k in range(15):
        os_solver.iteration()
        state, metrics = solver.step(state)
        expected = nash_conv.NashConv(os_game, os_solver.get_policy()).nash_conv()
        assert metrics["exploitability"] == pytest.approx(expected, rel=1e-10, abs=1e-10), f"iteration {k + 1}"
