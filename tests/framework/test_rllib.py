"""RLlib sees gamescale environments by name; the example PPO config trains on the
N-player routing game with masked actions on the session's local Ray."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path

from gamescale.envs.registry import env_names, make_env
from gamescale.framework.rllib import as_rllib_env, register_rllib_envs, routing_ppo_config


def test_every_environment_is_registered_and_array_models_are_refused(ray_cluster):
    from ray.tune.registry import ENV_CREATOR, _global_registry

    names = register_rllib_envs()
    assert names == env_names() and "routing_n_player" in names
    assert all(_global_registry.contains(ENV_CREATOR, name) for name in names)
    with pytest.raises(TypeError, match="array model"):
        as_rllib_env(make_env("crowd_modelling"), "crowd_modelling")


def test_rllib_env_renames_masked_observations(ray_cluster):
    env = as_rllib_env(make_env("routing_n_player", net="braess", num_vehicles=3))
    observations, _ = env.reset(seed=0)
    first = next(iter(observations.values()))
    assert set(first) == {"observations", "action_mask"}
    assert first["action_mask"].dtype == np.float32 and first["action_mask"].sum() >= 1


def test_example_ppo_config_trains_on_routing(ray_cluster):
    num_vehicles = 8
    game = make_env("routing_n_player", net="braess", num_vehicles=num_vehicles).game
    net = game.network
    graph = csr_matrix((net.free_flow_time + 1e-12, (net.init_node, net.term_node)), shape=(net.num_nodes,) * 2)
    fastest = shortest_path(graph)[net.demand.origin[0], net.demand.destination[0]]
    algo = routing_ppo_config(net="braess", num_vehicles=num_vehicles, train_batch_size=200).build_algo()
    try:
        result = {}
        for _ in range(2):
            result = algo.train()
    finally:
        algo.stop()
    runners = result["env_runners"]
    assert runners["num_episodes"] >= 1
    # An episode's return is minus the vehicles' total travel time: no better than all on
    # the free-flow fastest route, no worse than all paying the late penalty.
    assert -num_vehicles * game.late_penalty <= runners["episode_return_mean"] <= -num_vehicles * fastest
