"""Traffic routing: road networks (TNTP), static demand, and the N-player dynamic routing
game of arXiv 2110.11943. Registers `routing_network` and `routing_n_player`."""

from __future__ import annotations

from gamescale.envs.registry import register_env
from gamescale.envs.routing.config import RoutingNetworkConfig, RoutingNPlayerConfig
from gamescale.envs.routing.dynamic import DynamicRoutingGame, RoutingParallelEnv, make_game
from gamescale.envs.routing.network import Demand, Network, load_network


def build_network(config: RoutingNetworkConfig) -> Network:
    return load_network(config.net, config.trips, config.grid, config.toll_weight, config.distance_weight)


def build_n_player(config: RoutingNPlayerConfig) -> RoutingParallelEnv:
    network = load_network(config.net, config.trips, config.grid, config.toll_weight, config.distance_weight)
    game = make_game(network, config.num_vehicles, config.time_step, config.horizon, config.late_penalty)
    return RoutingParallelEnv(game)


register_env("routing_network", RoutingNetworkConfig, build_network, "Road network with static OD demand (TNTP)")
register_env("routing_n_player", RoutingNPlayerConfig, build_n_player, "N-player dynamic routing game (PettingZoo)")

__all__ = ["Demand", "DynamicRoutingGame", "Network", "RoutingParallelEnv", "load_network", "make_game"]

# Mean-field routing game (arXiv 2110.11943): explicit MeanFieldGame + decision-point flow model.
from gamescale.envs.routing.mean_field import (  # noqa: E402
    MeanFieldRoutingGame,
    RoutingFlowModel,
    RoutingMeanFieldConfig,
    build_mean_field,
    make_flow_model,
)

register_env("routing_mean_field", RoutingMeanFieldConfig, build_mean_field, "Mean-field dynamic routing game (MFG)")
__all__ += ["MeanFieldRoutingGame", "RoutingFlowModel", "make_flow_model"]
