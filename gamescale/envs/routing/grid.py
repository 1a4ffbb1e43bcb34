"""A seeded synthetic city: a rows x cols street grid with BPR links, faster arterials,
randomly placed zones and gravity-model demand, so assignment can be tested at 10,000+
nodes without downloads.

Conventions: node (r, c) has id r * cols + c + 1 and coordinates (x, y) = (c, r) in
blocks; every pair of 4-neighbours is joined by two links (one per direction), each one
block long. Times are minutes, flows vehicles/hour. Local streets: free-flow time about
1 minute per block (+-20 %, seeded), capacity `local_capacity`; every `arterial_every`-th
row and column is an arterial: half the free-flow time, `arterial_capacity`. BPR b 0.15,
power 4. Zones are `zones` distinct nodes drawn with the seed; they may be driven
through. Each zone sends `trips_per_zone` x (a seeded weight in [0.5, 1.5]) trips,
spread over the other zones in proportion to their weight x exp(-distance / `decay`)
(distance in blocks, Manhattan).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gamescale.envs.routing.network import Demand, Network


class GridConfig(BaseModel):
    """Parameters of the synthetic grid city (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rows: int = Field(default=100, ge=2)
    cols: int = Field(default=100, ge=2)
    zones: int = Field(default=300, ge=2)
    trips_per_zone: float = Field(default=1500.0, gt=0)
    decay: float = Field(default=25.0, gt=0)
    arterial_every: int = Field(default=10, ge=1)
    local_capacity: float = Field(default=1200.0, gt=0)
    arterial_capacity: float = Field(default=3600.0, gt=0)
    seed: int = 0


def grid_network(cfg: GridConfig | None = None) -> Network:
    """The grid city of `cfg` (default: 100 x 100 nodes, 300 zones)."""
    cfg = cfg or GridConfig()
    rows, cols = cfg.rows, cfg.cols
    if cfg.zones > rows * cols:
        raise ValueError(f"grid: {cfg.zones} zones but only {rows * cols} nodes")
    rng = np.random.default_rng(cfg.seed)
    node = np.arange(rows * cols).reshape(rows, cols)
    r, c = np.divmod(np.arange(rows * cols), cols)
    # undirected street segments: horizontal then vertical, then both directions
    a = np.concatenate([node[:, :-1].ravel(), node[:-1, :].ravel()])
    b = np.concatenate([node[:, 1:].ravel(), node[1:, :].ravel()])
    horizontal = np.arange(len(a)) < rows * (cols - 1)
    on_arterial = np.where(horizontal, r[a] % cfg.arterial_every == 0, c[a] % cfg.arterial_every == 0)
    seg_time = rng.uniform(0.8, 1.2, len(a)) * np.where(on_arterial, 0.5, 1.0)
    seg_cap = np.where(on_arterial, cfg.arterial_capacity, cfg.local_capacity)
    init, term = np.concatenate([a, b]), np.concatenate([b, a])
    fft, cap = np.tile(seg_time, 2), np.tile(seg_cap, 2)
    # zones and gravity demand
    zones = np.sort(rng.choice(rows * cols, size=cfg.zones, replace=False))
    weight = rng.uniform(0.5, 1.5, cfg.zones)
    dist = np.abs(r[zones][:, None] - r[zones][None, :]) + np.abs(c[zones][:, None] - c[zones][None, :])
    attraction = weight[None, :] * np.exp(-dist / cfg.decay)
    np.fill_diagonal(attraction, 0.0)
    trips = cfg.trips_per_zone * weight[:, None] * attraction / attraction.sum(axis=1, keepdims=True)
    o, d = np.nonzero(trips > 0)
    name = f"grid{rows}x{cols}"
    demand = Demand(
        origin=zones[o], destination=zones[d], flow=trips[o, d], departure_time=np.zeros(len(o)), source=f"<{name}>"
    )
    return Network(
        name=name,
        node_ids=np.arange(1, rows * cols + 1),
        init_node=init,
        term_node=term,
        capacity=cap,
        length=np.ones(len(init)),
        free_flow_time=fft,
        congestion_time=0.15 * fft,
        power=np.full(len(init), 4.0),
        demand=demand,
        coordinates=np.stack([c, r], axis=1).astype(np.float64),
    )
