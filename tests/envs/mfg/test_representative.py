"""The representative-player Gymnasium env: passes Gymnasium's checker, and its sampled
returns agree with the exact evaluators (policy value, best-response value) against the
same fixed flow."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from gamescale.algorithms.mfg.evaluation import best_response, policy_value, propagate, uniform_policy
from gamescale.envs.mfg.representative import RepresentativePlayerEnv, one_hot_observations
from gamescale.envs.registry import make_env


def _sampled_return(env: RepresentativePlayerEnv, policy: np.ndarray, episodes: int, seed: int) -> np.ndarray:
    """Returns of `episodes` episodes playing `policy [T, S, A]` (read from the env's info)."""
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(policy, axis=-1)
    returns = np.zeros(episodes)
    env.reset(seed=seed)
    for episode in range(episodes):
        _, info = env.reset()
        done = False
        while not done:
            action = int(np.searchsorted(cdf[info["t"], info["state"]], rng.random(), side="right"))
            _, reward, done, truncated, info = env.step(action)
            assert not truncated
            returns[episode] += reward
    return returns


def _assert_agrees(returns: np.ndarray, exact: float) -> None:
    error = returns.std() / np.sqrt(len(returns))
    assert abs(returns.mean() - exact) <= 4 * error + 1e-9, (returns.mean(), exact, error)


def test_env_passes_gymnasium_checker_and_observes_state_and_time():
    game = make_env("crowd_modelling", size=5, horizon=4)
    env = RepresentativePlayerEnv(game, propagate(game, uniform_policy(game)))
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert obs.shape == (5 + 4 + 1,) and obs[info["state"]] == 1 and obs[5] == 1 and obs.sum() == 2
    np.testing.assert_array_equal(one_hot_observations(5, 4)[0, info["state"]], obs)
    for t in range(1, 5):
        obs, _, terminated, _, info = env.step(1)
        assert terminated == (t == 4) and obs[5 + t] == 1 and obs[info["state"]] == 1


def test_masked_game_observes_its_action_mask():
    game = make_env("crowd_modelling_2d", size=7, horizon=3, maze="torus_four_rooms")
    env = RepresentativePlayerEnv(game, propagate(game, uniform_policy(game)))
    assert env.masked
    # Not gymnasium's check_env: it steps with unmasked random actions, which this env refuses.
    for seed in range(20):
        obs, info = env.reset(seed=seed)
        assert env.observation_space.contains(obs)
        np.testing.assert_array_equal(obs["action_mask"], game.legal_actions[info["state"]].astype(np.float32))
        legal = int(np.flatnonzero(obs["action_mask"])[0])
        obs, reward, terminated, truncated, info = env.step(legal)
        assert env.observation_space.contains(obs) and np.isfinite(reward) and not truncated
    illegal = np.flatnonzero(~game.legal_actions.all(axis=1))
    env._s = int(illegal[0])
    with pytest.raises(ValueError, match="illegal"):
        env.step(int(np.flatnonzero(~game.legal_actions[illegal[0]])[0]))


@pytest.mark.parametrize("name, kwargs", [("crowd_modelling", {"size": 6, "horizon": 5}), ("linear_quadratic", {})])
def test_sampled_returns_match_exact_values(name, kwargs):
    """Uniform play returns `policy_value` of the uniform policy, best-response play the
    best-response value, both against a flow that is not the uniform one's."""
    game = make_env(name, **kwargs)
    skewed = uniform_policy(game)
    skewed[..., 0] += 1.0
    skewed /= skewed.sum(axis=-1, keepdims=True)
    mu = propagate(game, skewed)
    env = RepresentativePlayerEnv(game, mu)
    uniform = uniform_policy(game)
    _assert_agrees(_sampled_return(env, uniform, 2000, 0), policy_value(game, uniform, mu)[0] @ mu[0])
    best, best_value = best_response(game, mu)
    _assert_agrees(_sampled_return(env, best, 2000, 1), best_value[0] @ mu[0])


def test_each_population_of_a_multi_population_game():
    game = make_env("predator_prey", size=3, horizon=4)
    mu = propagate(game, uniform_policy(game))
    values = policy_value(game, uniform_policy(game), mu)
    for p in range(game.num_populations):
        env = RepresentativePlayerEnv(game, mu, population=p)
        policy = uniform_policy(game)[p]
        _assert_agrees(_sampled_return(env, policy, 1000, p), values[p, 0] @ game.initial_distribution[p])


def test_bad_mean_field_or_population_is_refused():
    game = make_env("crowd_modelling", size=5, horizon=4)
    mu = propagate(game, uniform_policy(game))
    with pytest.raises(ValueError, match="shape"):
        RepresentativePlayerEnv(game, mu[:-1])
    with pytest.raises(ValueError, match="sum to 1"):
        RepresentativePlayerEnv(game, mu * 2)
    with pytest.raises(ValueError, match="population"):
        RepresentativePlayerEnv(game, mu, population=1)
