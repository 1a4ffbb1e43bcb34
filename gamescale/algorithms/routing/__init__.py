"""Traffic routing algorithms: static user equilibrium (path-based gradient projection,
conjugate Frank-Wolfe) and fictitious play for the N-player dynamic routing game.
Registers `static_user_equilibrium` and `routing_fictitious_play`."""

from __future__ import annotations

from typing import Any

from gamescale.algorithms.registry import register_algorithm
from gamescale.algorithms.routing.config import RoutingFictitiousPlayConfig, StaticUEConfig
from gamescale.algorithms.routing.n_player import RoutingFictitiousPlay
from gamescale.algorithms.routing.static_ue import make_solver, network_of, solve_user_equilibrium


def build_static_ue(config: StaticUEConfig, env: Any):
    return make_solver(
        network_of(env),
        config.method,
        config.max_iterations,
        config.target_gap,
        inner_iterations=config.inner_iterations,
        inner_tolerance=config.inner_tolerance,
    )


def build_fictitious_play(config: RoutingFictitiousPlayConfig, env: Any) -> RoutingFictitiousPlay:
    if not hasattr(env, "game"):
        raise ValueError("routing_fictitious_play needs the routing_n_player env")
    return RoutingFictitiousPlay(env, config.games_per_shard, config.max_routes_per_od, config.deviations)


register_algorithm("static_user_equilibrium", StaticUEConfig, build_static_ue, "Static traffic assignment (UE, BPR)")
register_algorithm(
    "routing_fictitious_play", RoutingFictitiousPlayConfig, build_fictitious_play, "Fictitious play, N-player routing"
)

__all__ = ["RoutingFictitiousPlay", "make_solver", "solve_user_equilibrium"]

# Mean-field routing (arXiv 2110.11943): FP / OMD with exploitability and avg_travel_time.
from gamescale.algorithms.routing.mean_field import (  # noqa: E402
    RoutingMeanFieldFP,
    RoutingMeanFieldFPConfig,
    RoutingMeanFieldOMD,
    RoutingMeanFieldOMDConfig,
    avg_travel_time,
    build_fp,
    build_omd,
)

register_algorithm("routing_mean_field_fp", RoutingMeanFieldFPConfig, build_fp, "Fictitious play, mean-field routing")
register_algorithm("routing_mean_field_omd", RoutingMeanFieldOMDConfig, build_omd, "Mirror descent, mean-field routing")
__all__ += ["RoutingMeanFieldFP", "RoutingMeanFieldOMD", "avg_travel_time"]

# N-player vs mean-field comparison (arXiv 2110.11943, Pigou and Braess).
from gamescale.algorithms.routing.n_vs_mean_field import NVsMeanField, NVsMeanFieldConfig, build_n_vs_mean_field  # noqa: E402

register_algorithm(
    "routing_n_vs_mean_field", NVsMeanFieldConfig, build_n_vs_mean_field, "N-player vs mean-field equilibrium gap"
)
__all__ += ["NVsMeanField"]
