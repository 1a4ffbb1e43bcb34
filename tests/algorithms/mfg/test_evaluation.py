"""Evaluators: propagation, best response, policy value and exploitability."""

from __future__ import annotations

import numpy as np
import pytest

from gamescale.algorithms.mfg import (
    best_response,
    exploitability,
    exploitability_per_population,
    policy_value,
    propagate,
    uniform_policy,
)
from gamescale.envs.mfg import CrowdModelling1D, CrowdModelling2D, LinearQuadratic, MeanFieldGame, PredatorPrey


def random_policy(game, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(game.horizon, game.num_states, game.num_actions)) * 3
    weights = np.exp(logits) * game.legal_actions[None]
    return weights / weights.sum(-1, keepdims=True)


def mu_independent_game(seed: int = 0) -> MeanFieldGame:
    """A random game whose reward ignores mu (an MDP), with a sparse random kernel."""
    rng = np.random.default_rng(seed)
    num_states, num_actions, k = 7, 3, 4
    next_state = rng.integers(0, num_states, size=(num_states, num_actions, k))
    prob = rng.dirichlet(np.ones(k), size=(num_states, num_actions))
    reward = rng.normal(size=(5, num_states, num_actions))
    return MeanFieldGame(
        num_states,
        num_actions,
        5,
        rng.dirichlet(np.ones(num_states)),
        kernel=(next_state, prob),
        reward_fn=lambda t, mu: reward[t],
    )


GAMES = [
    CrowdModelling1D(),
    CrowdModelling2D(size=6, horizon=5),
    LinearQuadratic(mean_revert=0.3),
    mu_independent_game(),
]


@pytest.mark.parametrize("game", GAMES, ids=lambda g: g.name)
def test_flow_of_random_policy_is_a_distribution(game):
    mu = propagate(game, random_policy(game, 1))
    assert mu.shape == (game.horizon + 1, game.num_states)
    assert (mu >= 0).all()
    np.testing.assert_allclose(mu.sum(-1), 1.0, atol=1e-12)


@pytest.mark.parametrize("game", GAMES, ids=lambda g: g.name)
def test_best_response_dominates_random_policies(game):
    mu = propagate(game, uniform_policy(game))
    br, br_value = best_response(game, mu)
    np.testing.assert_allclose(policy_value(game, br, mu), br_value, atol=1e-10)
    for seed in range(5):
        assert (br_value >= policy_value(game, random_policy(game, seed), mu) - 1e-10).all()


@pytest.mark.parametrize("game", GAMES, ids=lambda g: g.name)
def test_exploitability_is_non_negative(game):
    for seed in range(3):
        assert exploitability(game, random_policy(game, seed)) >= -1e-10


def test_best_response_has_zero_exploitability_when_reward_ignores_mu():
    game = mu_independent_game(3)
    br, _ = best_response(game, propagate(game, uniform_policy(game)))
    assert abs(exploitability(game, br)) < 1e-10


def test_exploitability_sums_populations():
    game = PredatorPrey()
    policy = uniform_policy(game)
    per_population = exploitability_per_population(game, policy)
    assert per_population.shape == (3,) and (per_population >= -1e-10).all()
    assert exploitability(game, policy) == pytest.approx(per_population.sum())


def test_bad_policy_is_rejected():
    game = CrowdModelling1D()
    with pytest.raises(ValueError):
        propagate(game, np.full((10, 10, 3), 0.5))
    with pytest.raises(ValueError):
        propagate(game, np.ones((3, 10, 3)) / 3)
