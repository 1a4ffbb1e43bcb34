"""Traffic routing: road networks (TNTP), static demand, the N-player dynamic routing game
and the mean-field routing game of arXiv 2110.11943. Registers `routing_network`,
`routing_n_player` and `routing_mean_field`. The network code (scipy) and the PettingZoo
env are imported when an env is built or a name is asked for, not with the package."""

from __future__ import annotations

from typing import Any

from gamescale.envs.registry import lazy_exports, register_env
from gamescale.envs.routing.config import RoutingNetworkConfig, RoutingNPlayerConfig

__getattr__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(["DynamicRoutingGame", "RoutingParallelEnv", "make_game"], f"{__name__}.dynamic"),
        **dict.fromkeys(["Demand", "Network", "load_network"], f"{__name__}.network"),
        **dict.fromkeys(
            ["MeanFieldRoutingGame", "RoutingFlowModel", "RoutingMeanFieldConfig", "build_mean_field", "make_flow_model"],
            f"{__name__}.mean_field",
        ),
    },
)


def build_network(config: RoutingNetworkConfig) -> Any:
    from gamescale.envs.routing.network import load_network

    return load_network(config.net, config.trips, config.grid, config.toll_weight, config.distance_weight)


def build_n_player(config: RoutingNPlayerConfig) -> Any:
    from gamescale.envs.routing.dynamic import RoutingParallelEnv, make_game

    network = build_network(config)
    game = make_game(network, config.num_vehicles, config.time_step, config.horizon, config.late_penalty)
    return RoutingParallelEnv(game)


register_env("routing_network", RoutingNetworkConfig, build_network, "Road network with static OD demand (TNTP)")
register_env("routing_n_player", RoutingNPlayerConfig, build_n_player, "N-player dynamic routing game (PettingZoo)")
register_env(
    "routing_mean_field",
    f"{__name__}.mean_field:RoutingMeanFieldConfig",
    f"{__name__}.mean_field:build_mean_field",
    "Mean-field dynamic routing game (MFG)",
)

__all__ = [
    "Demand",
    "DynamicRoutingGame",
    "MeanFieldRoutingGame",
    "Network",
    "RoutingFlowModel",
    "RoutingParallelEnv",
    "load_network",
    "make_flow_model",
    "make_game",
]
