"""Typed configs of the routing algorithms."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gamescale.algorithms.registry import AlgorithmConfig


class StaticUEConfig(AlgorithmConfig):
    """Static user equilibrium; one step = one solver iteration (no-op once done).

    method: gradient_projection (path-based, default), conjugate_frank_wolfe, frank_wolfe.
    target_gap: stop improving once the relative gap is at or below it (0: never).
    """

    name: str = "static_user_equilibrium"
    max_iterations: int = Field(default=200, ge=0)
    method: Literal["gradient_projection", "conjugate_frank_wolfe", "frank_wolfe"] = "gradient_projection"
    target_gap: float = Field(default=0.0, ge=0)


class RoutingFictitiousPlayConfig(AlgorithmConfig):
    """Fictitious play over route pools for the N-player dynamic routing game."""

    name: str = "routing_fictitious_play"
    games_per_shard: int = Field(default=4, ge=1)
    max_routes_per_od: int = Field(default=8, ge=1)
