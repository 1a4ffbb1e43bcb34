"""Road networks as arrays: links with BPR volume-delay costs, CSR adjacency, OD demand.

One `Network` serves the static assignment, the N-player dynamic game and (later) the
mean-field routing game: every per-link quantity is a `[num_links]` array indexed by link
id, every per-OD quantity a `[num_od]` array, so a population distribution over
(link, time-to-exit, destination) is just a dense array over these indices.

Volume-delay (BPR) convention, in the network's own time unit (minutes for Sioux Falls):

    t_l(x) = free_flow_time[l] + congestion_time[l] * (x / capacity[l]) ** power[l]

with `congestion_time = free_flow_time * b` for a TNTP file's BPR `b`. Holding the product
lets a link have zero free-flow time but a congestion term (Pigou's `x` link).
`x` is a flow in the demand's unit (vehicles/hour for TNTP files; a fraction of the
population for the built-in Pigou and Braess games, whose total demand is 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DATA_DIR = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Demand:
    """Origin-destination demand; all arrays `[num_od]`.

    origin, destination: internal node indices (int32).
    flow: demand in flow units (vehicles/hour for TNTP; population fraction built-in).
    departure_time: in the network's time unit, >= 0 (0 for static TNTP demand).
    source: the file the demand came from (or "<name>" for built-ins).
    source_line: 1-based line of each row in `source` (0 for built-ins).
    """

    origin: np.ndarray
    destination: np.ndarray
    flow: np.ndarray
    departure_time: np.ndarray
    source: str = "<built-in>"
    source_line: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    def __post_init__(self) -> None:
        n = len(self.origin)
        object.__setattr__(self, "origin", np.asarray(self.origin, np.int32))
        object.__setattr__(self, "destination", np.asarray(self.destination, np.int32))
        object.__setattr__(self, "flow", np.asarray(self.flow, np.float64))
        object.__setattr__(self, "departure_time", np.asarray(self.departure_time, np.float64))
        if len(self.source_line) != n:
            object.__setattr__(self, "source_line", np.zeros(n, np.int32))
        if not (len(self.destination) == len(self.flow) == len(self.departure_time) == n):
            raise ValueError(f"{self.source}: demand arrays have different lengths")

    @property
    def num_od(self) -> int:
        return len(self.origin)

    @property
    def total(self) -> float:
        return float(self.flow.sum())

    def where(self, row: int) -> str:
        """'file:line' of demand row `row`, for error messages."""
        line = int(self.source_line[row])
        return f"{self.source}:{line}" if line else f"{self.source} demand row {row}"


@dataclass(frozen=True)
class Network:
    """A directed road network; link arrays are `[num_links]`, node arrays `[num_nodes]`.

    node_ids: external node numbers (TNTP numbering), internal index i <-> node_ids[i].
    init_node, term_node: internal node index of each link's tail and head (int32).
    capacity: flow units per link (> 0). length: as given by the source (unused in costs).
    free_flow_time, congestion_time, power: the BPR cost above, network time unit.
    first_thru_node: internal index of the first node that may be passed through; nodes
      below it are zones that trips may start or end at but not cross (TNTP semantics).
    coordinates: `[num_nodes, 2]` node positions (x, y) in the source's unit, or None.
    out_ptr, out_links: CSR adjacency, the links leaving node v are
      out_links[out_ptr[v]:out_ptr[v+1]] (sorted by link id).
    """

    name: str
    node_ids: np.ndarray
    init_node: np.ndarray
    term_node: np.ndarray
    capacity: np.ndarray
    length: np.ndarray
    free_flow_time: np.ndarray
    congestion_time: np.ndarray
    power: np.ndarray
    demand: Demand
    first_thru_node: int = 0
    time_step: float = 1.0  # default dynamic-game time step, network time unit
    horizon: int = 100  # default dynamic-game number of time steps
    coordinates: np.ndarray | None = None  # [num_nodes, 2] (x, y) where known (TNTP _node file), else None
    out_ptr: np.ndarray = field(init=False, repr=False)
    out_links: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "node_ids", np.asarray(self.node_ids, np.int64))
        for name in ("init_node", "term_node"):
            set_(self, name, np.asarray(getattr(self, name), np.int32))
        for name in ("capacity", "length", "free_flow_time", "congestion_time", "power"):
            set_(self, name, np.asarray(getattr(self, name), np.float64))
        n, m = self.num_nodes, self.num_links
        if self.coordinates is not None:
            set_(self, "coordinates", np.asarray(self.coordinates, np.float64).reshape(n, 2))
        if m and (self.init_node.min() < 0 or max(self.init_node.max(), self.term_node.max()) >= n):
            raise ValueError(f"network {self.name}: a link refers to an unknown node")
        if np.any(self.capacity <= 0):
            raise ValueError(f"network {self.name}: link {int(np.argmax(self.capacity <= 0))} has capacity <= 0")
        order = np.lexsort((np.arange(m), self.init_node))
        set_(self, "out_links", order.astype(np.int32))
        set_(
            self, "out_ptr", np.concatenate([[0], np.cumsum(np.bincount(self.init_node, minlength=n))]).astype(np.int32)
        )

    @property
    def num_nodes(self) -> int:
        return len(self.node_ids)

    @property
    def num_links(self) -> int:
        return len(self.init_node)

    @property
    def b(self) -> np.ndarray:
        """TNTP's BPR b = congestion_time / free_flow_time (inf where free_flow_time is 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.free_flow_time > 0, self.congestion_time / self.free_flow_time, np.inf)

    def out_degree(self) -> np.ndarray:
        return np.diff(self.out_ptr)

    def link_cost(self, flow: np.ndarray) -> np.ndarray:
        """BPR travel time `[..., num_links]` at link flows `[..., num_links]`."""
        return link_cost(self, flow)

    def node_index(self, node_id: int) -> int:
        hit = np.flatnonzero(self.node_ids == node_id)
        if not len(hit):
            raise ValueError(f"network {self.name}: unknown node {node_id}")
        return int(hit[0])


def link_cost(net: Network, flow: np.ndarray) -> np.ndarray:
    """BPR travel time per link, network time unit; `flow` in demand units, shape `[..., L]`."""
    ratio = np.maximum(flow, 0.0) / net.capacity
    return net.free_flow_time + net.congestion_time * ratio**net.power


def link_cost_at(net: Network, links: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """BPR travel time of links `links` (any shape) at flows `flow` (same shape)."""
    ratio = np.maximum(flow, 0.0) / net.capacity[links]
    return net.free_flow_time[links] + net.congestion_time[links] * ratio ** net.power[links]


def link_cost_derivative(net: Network, flow: np.ndarray) -> np.ndarray:
    """d t_l / d x_l at `flow`, shape `[..., L]`."""
    ratio = np.maximum(flow, 0.0) / net.capacity
    with np.errstate(divide="ignore", invalid="ignore"):
        d = net.congestion_time * net.power * ratio ** (net.power - 1.0) / net.capacity
    return np.nan_to_num(d, nan=0.0, posinf=0.0)


def check_demand_reachable(net: Network) -> None:
    """Raise ValueError (file:line) for the first OD pair with positive demand and no path."""
    d = net.demand
    if d.num_od == 0:
        return
    from scipy.sparse import csr_matrix  # scipy.sparse is slow to import: only when used
    from scipy.sparse.csgraph import dijkstra

    # zones below first_thru_node may not be crossed: their out-links leave from a copy node
    n = net.num_nodes
    zones = min(max(net.first_thru_node, 0), n)
    copy_of = np.arange(n)
    copy_of[:zones] = n + np.arange(zones)
    graph = csr_matrix((np.ones(net.num_links), (copy_of[net.init_node], net.term_node)), shape=(n + zones,) * 2)
    origins, inverse = np.unique(d.origin, return_inverse=True)
    hops = dijkstra(graph, unweighted=True, indices=copy_of[origins])
    bad = np.flatnonzero(~np.isfinite(hops[inverse, d.destination]) & (d.flow > 0))
    if len(bad):
        r = int(bad[0])
        raise ValueError(
            f"{d.where(r)}: demand from node {net.node_ids[d.origin[r]]} to node "
            f"{net.node_ids[d.destination[r]]} but no path connects them"
        )


def _single_od(flow: float = 1.0, departure: float = 0.0) -> Demand:
    return Demand(origin=[0], destination=[1], flow=[flow], departure_time=[departure])


def pigou() -> Network:
    """Pigou's example: node 1 -> node 2 by a constant link (time 1) or a link whose time
    equals its flow (x, population fraction). UE: everyone on the x link, time 1;
    system optimum x = 1/2, average time 3/4."""
    return Network(
        name="pigou",
        node_ids=[1, 2],
        init_node=[0, 0],
        term_node=[1, 1],
        capacity=[1.0, 1.0],
        length=[1.0, 1.0],
        free_flow_time=[1.0, 0.0],
        congestion_time=[0.0, 1.0],
        power=[1.0, 1.0],
        demand=_single_od(),
        time_step=0.05,
        horizon=60,
    )


def braess(middle_link: bool = True) -> Network:
    """The Braess network of arXiv 2110.11943 (OpenSpiel's dynamic-routing data) without
    its dummy entry/exit links: A=1 -> D=4 with unit demand (population fraction).

    A->B: 1 + x, A->C: 2, B->C: 0.25 (the middle link), B->D: 2, C->D: 1 + x.
    Static UE: 3.75 with the middle link (routes ABD, ACD, ABCD used 1/4, 1/4, 1/2);
    3.5 without it (half on each side).
    """
    tails, heads = [0, 0, 1, 1, 2], [1, 2, 2, 3, 3]
    fft = [1.0, 2.0, 0.25, 2.0, 1.0]
    cong = [1.0, 0.0, 0.0, 0.0, 1.0]
    keep = [0, 1, 2, 3, 4] if middle_link else [0, 1, 3, 4]
    pick = lambda a: [a[i] for i in keep]  # noqa: E731
    return Network(
        name="braess" if middle_link else "braess_no_middle",
        node_ids=[1, 2, 3, 4],
        init_node=pick(tails),
        term_node=pick(heads),
        capacity=[1.0] * len(keep),
        length=[1.0] * len(keep),
        free_flow_time=pick(fft),
        congestion_time=pick(cong),
        power=[1.0] * len(keep),
        demand=Demand(origin=[0], destination=[3], flow=[1.0], departure_time=[0.0]),
        time_step=0.05,
        horizon=120,
    )


def sioux_falls() -> Network:
    """Sioux Falls from the TNTP files shipped in `data/` (24 nodes, 76 links, 360,600 trips)."""
    from gamescale.envs.routing.tntp import load_tntp

    return load_tntp(DATA_DIR / "SiouxFalls_net.tntp", DATA_DIR / "SiouxFalls_trips.tntp", name="sioux_falls")


def braess_tntp() -> Network:
    """The TNTP Braess file (link costs 10x, 50+x, 50+x, 10+x, 10x; 6 trips; UE time 92)."""
    from gamescale.envs.routing.tntp import load_tntp

    return load_tntp(DATA_DIR / "Braess_net.tntp", DATA_DIR / "Braess_trips.tntp", name="braess_tntp")


BUILT_IN = {
    "pigou": pigou,
    "braess": braess,
    "braess_no_middle": lambda: braess(middle_link=False),
    "sioux_falls": sioux_falls,
    "braess_tntp": braess_tntp,
}


def load_network(
    net: str, trips: str | None = None, grid: Any = None, toll_weight: float = 0.0, distance_weight: float = 0.0
) -> Network:
    """A built-in network by name, the synthetic city `grid` (parameters `grid`, a
    `GridConfig`), or a TNTP `_net` file (with `trips`, or the `_trips` file beside it;
    link costs generalised by `toll_weight` and `distance_weight`, see `load_tntp`).
    Demand must be reachable (checked)."""
    if net == "grid" and trips is None:
        from gamescale.envs.routing.grid import grid_network

        network = grid_network(grid)
    elif net in BUILT_IN and trips is None:
        network = BUILT_IN[net]()
    else:
        from gamescale.envs.routing.tntp import load_tntp

        path = Path(net)
        if not path.exists():
            raise ValueError(f"unknown network {net!r}: not a built-in ({', '.join(BUILT_IN)}, grid) nor a file")
        if trips is None:
            guess = path.with_name(path.name.replace("_net", "_trips"))
            if guess == path or not guess.exists():
                raise ValueError(f"{net}: no trips file given and none found beside it")
            trips = str(guess)
        network = load_tntp(path, Path(trips), toll_weight=toll_weight, distance_weight=distance_weight)
    check_demand_reachable(network)
    return network
