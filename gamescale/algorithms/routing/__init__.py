"""Traffic routing algorithms: static user equilibrium (path-based gradient projection,
Frank-Wolfe variants), fictitious play for the N-player dynamic routing game, mean-field
routing (FP / OMD, arXiv 2110.11943) and the N-player vs mean-field comparison. The solvers
(scipy, PettingZoo) are imported when a run builds one or a name is asked for, not with the
package."""

from __future__ import annotations

from typing import Any

from gamescale.algorithms.registry import register_algorithm
from gamescale.algorithms.routing.config import RoutingFictitiousPlayConfig, StaticUEConfig
from gamescale.envs.registry import lazy_exports

__getattr__ = lazy_exports(
    __name__,
    {
        "RoutingFictitiousPlay": f"{__name__}.n_player",
        **dict.fromkeys(["make_solver", "solve_user_equilibrium"], f"{__name__}.static_ue"),
        **dict.fromkeys(["RoutingMeanFieldFP", "RoutingMeanFieldOMD", "avg_travel_time"], f"{__name__}.mean_field"),
        "NVsMeanField": f"{__name__}.n_vs_mean_field",
    },
)


def build_static_ue(config: StaticUEConfig, env: Any):
    from gamescale.algorithms.routing.static_ue import make_solver, network_of

    return make_solver(
        network_of(env),
        config.method,
        config.max_iterations,
        config.target_gap,
        inner_iterations=config.inner_iterations,
        inner_tolerance=config.inner_tolerance,
    )


def build_fictitious_play(config: RoutingFictitiousPlayConfig, env: Any):
    from gamescale.algorithms.routing.n_player import RoutingFictitiousPlay

    if not hasattr(env, "game"):
        raise ValueError("routing_fictitious_play needs the routing_n_player env")
    return RoutingFictitiousPlay(env, config.games_per_shard, config.max_routes_per_od, config.deviations)


register_algorithm("static_user_equilibrium", StaticUEConfig, build_static_ue, "Static traffic assignment (UE, BPR)")
register_algorithm(
    "routing_fictitious_play", RoutingFictitiousPlayConfig, build_fictitious_play, "Fictitious play, N-player routing"
)
_MEAN_FIELD = f"{__name__}.mean_field"
register_algorithm(
    "routing_mean_field_fp", f"{_MEAN_FIELD}:RoutingMeanFieldFPConfig", f"{_MEAN_FIELD}:build_fp",
    "Fictitious play, mean-field routing",
)
register_algorithm(
    "routing_mean_field_omd", f"{_MEAN_FIELD}:RoutingMeanFieldOMDConfig", f"{_MEAN_FIELD}:build_omd",
    "Mirror descent, mean-field routing",
)
register_algorithm(
    "routing_n_vs_mean_field", f"{__name__}.n_vs_mean_field:NVsMeanFieldConfig",
    f"{__name__}.n_vs_mean_field:build_n_vs_mean_field", "N-player vs mean-field equilibrium gap",
)

__all__ = [
    "NVsMeanField",
    "RoutingFictitiousPlay",
    "RoutingMeanFieldFP",
    "RoutingMeanFieldOMD",
    "avg_travel_time",
    "make_solver",
    "solve_user_equilibrium",
]
