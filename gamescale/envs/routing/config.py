"""Typed configs of the routing environments (validated by `make_env`)."""

from __future__ import annotations

from pydantic import Field

from gamescale.envs.registry import EnvConfig
from gamescale.envs.routing.grid import GridConfig


class RoutingNetworkConfig(EnvConfig):
    """A road network with its static OD demand.

    net: a built-in name (pigou, braess, braess_no_middle, braess_tntp, sioux_falls), `grid`
    (the seeded synthetic city whose parameters are `grid`), or the path of a TNTP `_net`
    file; trips: its `_trips` file (default: the one beside it). toll_weight,
    distance_weight (TNTP files): generalised link cost t(x) + toll_weight * toll +
    distance_weight * length, in the file's time unit (0: travel time only).
    """

    name: str = "routing_network"
    net: str = "braess"
    trips: str | None = None
    grid: GridConfig = GridConfig()
    toll_weight: float = Field(default=0.0, ge=0)
    distance_weight: float = Field(default=0.0, ge=0)


class RoutingNPlayerConfig(RoutingNetworkConfig):
    """The N-player dynamic routing game on `net` (PettingZoo Parallel env).

    time_step: network time units per step and horizon: steps (default: the network's own,
    0.05 x 120 for braess); late_penalty: cost of a vehicle not arrived by the horizon
    (default horizon x time_step).
    """

    name: str = "routing_n_player"
    num_vehicles: int = Field(default=8, ge=1)
    time_step: float | None = Field(default=None, gt=0)
    horizon: int | None = Field(default=None, ge=1)
    late_penalty: float | None = Field(default=None, ge=0)
