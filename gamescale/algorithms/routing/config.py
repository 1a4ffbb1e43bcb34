"""Typed configs of the routing algorithms."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gamescale.algorithms.registry import AlgorithmConfig


class StaticUEConfig(AlgorithmConfig):
    """Static user equilibrium; one step = one solver iteration (no-op once done).

    method: auto (default: gradient_projection for at most 250,000 OD pairs with demand,
      simplicial_decomposition above, see `static_ue.auto_method`), gradient_projection
      (path-based), simplicial_decomposition (restricted, on stored all-or-nothing loads),
      biconjugate_frank_wolfe, conjugate_frank_wolfe, frank_wolfe.
    target_gap: the run stops at the first iteration whose relative gap is at or below it
      (0: never); max_iterations: it stops after this many iterations in any case.
    inner_iterations, inner_tolerance (gradient_projection): at most this many sweeps over
      the origins on the current path sets per iteration, fewer once the excess cost on
      them is below inner_tolerance x the last relative gap.
    """

    name: str = "static_user_equilibrium"
    max_iterations: int = Field(default=200, ge=0)
    method: Literal[
        "auto",
        "gradient_projection",
        "simplicial_decomposition",
        "biconjugate_frank_wolfe",
        "conjugate_frank_wolfe",
        "frank_wolfe",
    ] = "auto"
    target_gap: float = Field(default=0.0, ge=0)
    inner_iterations: int = Field(default=10, ge=1)
    inner_tolerance: float = Field(default=0.1, gt=0)


class RoutingFictitiousPlayConfig(AlgorithmConfig):
    """Fictitious play over route pools for the N-player dynamic routing game.

    deviations: how a candidate route's cost against the others is measured: `simulate`
    (each sampled game played again with one vehicle of the class on the candidate: exact
    in expectation), `replay` (the route walked through the sampled games' link counts,
    the others' timings held fixed: fast, exact on parallel links, O(1/N) off otherwise),
    `auto` (simulate when OD rows with vehicles x (max_routes_per_od + 1) x vehicles <= 4096).
    """

    name: str = "routing_fictitious_play"
    games_per_shard: int = Field(default=4, ge=1)
    max_routes_per_od: int = Field(default=8, ge=1)
    deviations: Literal["auto", "replay", "simulate"] = "auto"
