"""RLlib sees gamescale environments by name: every decision problem builds and trains one
PPO iteration, the rest are refused with the reason; PPO on a mean-field crowd player and on
the N-player routing game beats the uniform (random) policy, on the session's local Ray."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from gamescale.algorithms.lm.model import torch_threads
from gamescale.algorithms.mfg.evaluation import best_response, policy_value, propagate, uniform_policy
from gamescale.envs.mfg.representative import RepresentativePlayerEnv
from gamescale.envs.registry import env_names, make_env
from gamescale.envs.routing.dynamic import link_steps
from gamescale.framework import storage
from gamescale.framework.board_rllib import BOARD_ENVS, board_selfplay_ppo_config
from gamescale.framework.errors import ConfigError
from gamescale.framework.rllib import (
    NOT_RL_ENVIRONMENTS,
    as_rllib_env,
    make_rllib_env,
    mean_field_ppo_config,
    policy_table,
    register_rllib_envs,
    rl_env_names,
    routing_ppo_config,
)

# Small instances, so that one PPO iteration on each takes about a second.
SMALL = {
    "crowd_modelling": {"size": 5, "horizon": 4},
    "crowd_modelling_2d": {"size": 7, "horizon": 4, "maze": "torus_four_rooms"},
    "linear_quadratic": {"size": 5, "horizon": 4},
    "mean_field_nfg": {},
    "periodic_aversion": {"size": 5, "horizon": 4},
    "predator_prey": {"size": 3, "horizon": 4, "population": 2},
    "routing_mean_field": {"net": "pigou", "horizon": 8},
    "routing_n_player": {"net": "braess", "num_vehicles": 2},
    "connect_four": {},
    "hex": {"size": 5},
    "chess": {},
    "chess960": {"start_index": 7},
}
GRID_CITY = {"net": "grid", "grid": {"rows": 3, "cols": 3, "zones": 2}, "num_vehicles": 4}


def test_every_environment_is_registered_and_the_others_are_refused_with_a_reason(ray_cluster):
    from ray.tune.registry import ENV_CREATOR, _global_registry

    names = register_rllib_envs()
    assert names == env_names() and "routing_n_player" in names
    assert all(_global_registry.contains(ENV_CREATOR, name) for name in names)
    assert set(rl_env_names()) == set(SMALL), "a new environment: list it in SMALL or NOT_RL_ENVIRONMENTS"
    assert set(rl_env_names()) | set(NOT_RL_ENVIRONMENTS) == set(names)
    for name in NOT_RL_ENVIRONMENTS:  # refused before anything is built (distill_lab trains a teacher)
        with pytest.raises(TypeError, match=f"{name} is not an RL environment: "):
            make_rllib_env(name)
    with pytest.raises(TypeError, match="static road network"):
        as_rllib_env(make_env("routing_network"), "routing_network")
    with pytest.raises(ConfigError, match="only to mean-field games"):
        make_rllib_env("routing_n_player", {"net": "braess", "mean_field": "uniform"})


def test_rllib_env_renames_masked_observations(ray_cluster):
    env = as_rllib_env(make_env("routing_n_player", net="braess", num_vehicles=3))
    observations, _ = env.reset(seed=0)
    first = next(iter(observations.values()))
    assert set(first) == {"observations", "action_mask"}
    assert first["action_mask"].dtype == np.float32 and first["action_mask"].sum() >= 1


def test_mean_field_from_a_policy_is_its_exact_flow():
    game = make_env("crowd_modelling", size=5, horizon=4)
    policy = uniform_policy(game)
    policy[..., 2] += 2.0
    policy /= policy.sum(axis=-1, keepdims=True)
    env = make_rllib_env("crowd_modelling", {"size": 5, "horizon": 4, "mean_field": policy})
    np.testing.assert_allclose(env.mean_field[0], propagate(game, policy))
    default = make_rllib_env("crowd_modelling", {"size": 5, "horizon": 4})
    np.testing.assert_allclose(default.mean_field[0], propagate(game, uniform_policy(game)))
    with pytest.raises(ConfigError, match="'uniform'"):
        make_rllib_env("crowd_modelling", {"mean_field": "uniformly"})


def test_mean_field_from_a_finished_run_and_its_checkpoint(tmp_path):
    from gamescale.framework.api import run

    finished = run("mfg-crowd-fp", overrides={"env.size": 5, "env.horizon": 4, "run.iterations": 3}, out=tmp_path)
    checkpoint = storage.latest_checkpoint(finished.dir)
    state = storage.load_checkpoint(checkpoint)[0]
    from_run = make_rllib_env("crowd_modelling", {"mean_field": str(finished.dir)})
    from_checkpoint = make_rllib_env("crowd_modelling", {"mean_field": checkpoint, "size": 5})
    # The run's game (size 5, not the default 10), and the flow of the run's final policy.
    assert from_run.game.num_states == 5 and from_run.horizon == 4
    np.testing.assert_allclose(from_run.mean_field[0], propagate(from_run.game, state["policy"][0]), atol=1e-12)
    np.testing.assert_allclose(from_checkpoint.mean_field, from_run.mean_field, atol=1e-12)
    with pytest.raises(ConfigError, match="differs from the run"):
        make_rllib_env("crowd_modelling", {"mean_field": str(finished.dir), "size": 6})
    with pytest.raises(ConfigError, match="played crowd_modelling, not linear_quadratic"):
        make_rllib_env("linear_quadratic", {"mean_field": str(finished.dir)})
    with pytest.raises(ConfigError, match="neither a run directory"):
        make_rllib_env("crowd_modelling", {"mean_field": str(tmp_path / "metrics")})


@pytest.mark.parametrize("name", sorted(SMALL))
def test_each_rl_environment_builds_and_trains_one_iteration(ray_cluster, name):
    from ray.rllib.algorithms.ppo import PPOConfig

    env_config = dict(SMALL[name])
    if name == "routing_n_player":
        config = routing_ppo_config(train_batch_size=64, **env_config)
    elif name in BOARD_ENVS:
        config = board_selfplay_ppo_config(name, train_batch_size=64, **env_config)
    elif isinstance(make_rllib_env(name, env_config), RepresentativePlayerEnv):
        game_kwargs = {k: v for k, v in env_config.items() if k != "population"}
        config = mean_field_ppo_config(
            name, population=env_config.get("population", 0), train_batch_size=64, **game_kwargs
        )
    else:  # pragma: no cover - every RL env today is one of the two kinds
        config = PPOConfig().environment(name, env_config=env_config)
    with torch_threads(1):
        algo = config.training(minibatch_size=32, num_epochs=1).build_algo()
        try:
            result = algo.train()
        finally:
            algo.stop()
    assert result["num_env_steps_sampled_lifetime"] >= 64
    modules = {k: v for k, v in result["learners"].items() if k != "__all_modules__"}
    assert modules and all(np.isfinite(m["total_loss"]) and m["num_module_steps_trained"] > 0 for m in modules.values())


def test_ppo_improves_a_crowd_player_over_the_uniform_policy(ray_cluster):
    """The trained module, read back as a policy table, is scored EXACTLY against the fixed
    flow: above the uniform policy's value by a quarter of the way to the best response."""
    game_kwargs = {"size": 5, "horizon": 5}
    env = make_rllib_env("crowd_modelling", game_kwargs)
    game, mu = env.game, env.mean_field[0]
    start = game.initial_distribution
    uniform_value = policy_value(game, uniform_policy(game), mu)[0] @ start
    best_value = best_response(game, mu)[1][0] @ start
    with torch_threads(1):
        algo = mean_field_ppo_config("crowd_modelling", **game_kwargs).debugging(seed=0).build_algo()
        try:
            for _ in range(10):
                algo.train()
            trained = policy_table(algo.get_module(), env)
        finally:
            algo.stop()
    np.testing.assert_allclose(trained.sum(axis=-1), 1.0)
    trained_value = policy_value(game, trained, mu)[0] @ start
    assert trained_value <= best_value + 1e-9
    assert trained_value >= uniform_value + (best_value - uniform_value) / 4, (uniform_value, trained_value, best_value)


def _random_routing_return(env_kwargs: dict, episodes: int, seed: int) -> np.ndarray:
    """Returns of the N-player routing game with every vehicle picking a legal link uniformly."""
    env = make_env("routing_n_player", **env_kwargs)
    rng = np.random.default_rng(seed)
    returns = np.zeros(episodes)
    for episode in range(episodes):
        observations, _ = env.reset()
        while env.agents:
            actions = {a: rng.choice(np.flatnonzero(observations[a]["action_mask"])) for a in env.agents}
            observations, rewards, _, _, _ = env.step(actions)
            returns[episode] += sum(rewards.values())
    return returns


def test_example_ppo_config_improves_routing_over_random_vehicles(ray_cluster):
    """On a 3 x 3 street grid, random drivers wander (many pay the late penalty); PPO's
    vehicles learn to drive to their destinations. The return is bounded above by every
    vehicle on its fastest route at free flow."""
    game = make_env("routing_n_player", **GRID_CITY).game
    net = game.network
    steps = link_steps(net, np.ones(net.num_links), game.vehicle_weight, game.time_step)  # one vehicle per link
    graph = csr_matrix((steps * game.time_step, (net.init_node, net.term_node)), shape=(net.num_nodes,) * 2)
    fastest = shortest_path(graph)[game.origin, game.destination].sum()
    random_returns = _random_routing_return(GRID_CITY, 100, 0)
    random_mean = random_returns.mean()
    config = routing_ppo_config(train_batch_size=200, **GRID_CITY)
    config = config.debugging(seed=0).reporting(metrics_num_episodes_for_smoothing=20)
    with torch_threads(1):
        algo = config.build_algo()
        try:
            for _ in range(4):
                result = algo.train()
        finally:
            algo.stop()
    trained = result["env_runners"]["episode_return_mean"]
    assert trained <= -fastest + 1e-9
    # Halfway from random play to the free-flow optimum (random: about -41, optimum -8).
    assert trained >= (random_mean - fastest) / 2, (random_mean, trained, -fastest)
