"""Mean-field game models: kernels are stochastic, registration works, bad input fails."""

from __future__ import annotations

import numpy as np
import pytest

from gamescale.algorithms.mfg import propagate, uniform_policy
from gamescale.envs.mfg import (
    CrowdModelling1D,
    CrowdModelling2D,
    LinearQuadratic,
    MeanFieldGame,
    PeriodicAversion,
    PredatorPrey,
    as_multi_population,
    torus_four_rooms_walls,
)
from gamescale.envs.registry import make_env

ALL_GAMES = [
    ("crowd_modelling", {}),
    ("crowd_modelling_2d", {}),
    ("crowd_modelling_2d", {"size": 9, "horizon": 6, "maze": "torus_four_rooms", "positional_reward": [[2, 2, 1.0]]}),
    ("linear_quadratic", {}),
    ("linear_quadratic", {"mean_revert": 0.5}),
    ("periodic_aversion", {}),
    ("predator_prey", {}),
]


@pytest.mark.parametrize(("name", "kwargs"), ALL_GAMES)
def test_registered_games_have_stochastic_kernels_and_finite_rewards(name, kwargs):
    game = as_multi_population(make_env(name, **kwargs))
    mu = propagate(game, uniform_policy(game))  # [P, T + 1, S]
    for t in range(game.horizon):
        next_state, prob = game.transition(t, mu[:, t])
        assert next_state.shape == prob.shape
        assert next_state.shape[:3] == (game.num_populations, game.num_states, game.num_actions)
        assert next_state.min() >= 0 and next_state.max() < game.num_states
        np.testing.assert_allclose(prob.sum(-1), 1.0, atol=1e-12)
        reward = game.reward(t, mu[:, t])
        assert reward.shape == (game.num_populations, game.num_states, game.num_actions)
        assert np.isfinite(reward[game.legal_actions]).all()


@pytest.mark.parametrize(("name", "kwargs"), ALL_GAMES)
def test_uniform_flow_is_a_distribution_at_every_step(name, kwargs):
    game = make_env(name, **kwargs)
    mu = propagate(game, uniform_policy(game))
    assert (mu >= 0).all()
    np.testing.assert_allclose(mu.sum(-1), 1.0, atol=1e-12)


def test_crowd_2d_default_matches_openspiel_rewards_and_noise():
    game = CrowdModelling2D()
    mu = np.full(100, 0.01)
    # OpenSpiel: reward at (3, 0, t=0) under the uniform distribution is 5.205170185988091
    assert game.reward(0, mu)[3 * 10 + 0, 0] == pytest.approx(5.205170185988091, abs=1e-12)
    next_state, prob = game.transition(0, mu)
    assert next_state.shape == (100, 5, 5)
    np.testing.assert_allclose(prob[55, 2], 0.2)


def test_maze_walls_carry_no_mass_and_block_moves():
    game = CrowdModelling2D(size=9, horizon=8, forbidden_states=torus_four_rooms_walls(9))
    mu = propagate(game, uniform_policy(game))
    assert np.all(mu[:, game.forbidden] == 0.0)
    next_state, prob = game.transition(0, mu[0])
    free_legal = game.legal_actions & ~game.forbidden[:, None]  # [S, A]
    reachable = next_state[free_legal][prob[free_legal] > 0]
    assert not game.forbidden[reachable].any()


def test_large_crowd_grid_builds_and_propagates():
    game = CrowdModelling2D(size=100, horizon=100)
    mu = propagate(game, uniform_policy(game))
    assert mu.shape == (101, 10_000)
    np.testing.assert_allclose(mu.sum(-1), 1.0, atol=1e-9)


def test_predator_prey_has_three_populations():
    game = PredatorPrey()
    assert game.num_populations == 3 and game.initial_distribution.shape == (3, 25)


@pytest.mark.parametrize(
    "build",
    [
        lambda: CrowdModelling1D(size=0),
        lambda: CrowdModelling1D(size=10, horizon=0),
        lambda: CrowdModelling2D(size=-3),
        lambda: CrowdModelling2D(size=5, forbidden_states=[(7, 7)]),
        lambda: LinearQuadratic(horizon=-1),
        lambda: PeriodicAversion(size=0),
        lambda: PredatorPrey(payoff=[[0.0, 1.0]]),
        lambda: MeanFieldGame(
            3, 1, 2, np.array([0.5, 0.6, -0.1]), kernel=(np.zeros((3, 1, 1), int), np.ones((3, 1, 1)))
        ),
        lambda: MeanFieldGame(3, 1, 2, np.ones(3) / 3, kernel=(np.zeros((3, 1, 2), int), np.full((3, 1, 2), 0.4))),
        lambda: MeanFieldGame(3, 1, 2, np.ones(3) / 3, kernel=(np.full((3, 1, 1), 5), np.ones((3, 1, 1)))),
    ],
)
def test_bad_input_raises_value_error(build):
    with pytest.raises(ValueError):
        build()


def test_bad_config_field_is_rejected():
    with pytest.raises(ValueError):
        make_env("crowd_modelling", size=10, not_a_field=1)
    with pytest.raises(ValueError):
        make_env("crowd_modelling_2d", size=0)
