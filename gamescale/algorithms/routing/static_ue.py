"""Static user equilibrium (Wardrop) with BPR costs by conjugate Frank-Wolfe.

One step = one conjugate Frank-Wolfe iteration (Mitradjieva & Lindberg 2013): an
all-or-nothing load on shortest paths (scipy dijkstra from all origins at once), a
direction made conjugate to the previous one under the Hessian diag(t'(x)), and an exact
line search on the Beckmann objective. Metrics are measured at the new flows:

    tstt = sum_l x_l t_l(x_l)                (total system travel time, flow x time units)
    relative_gap = 1 - sum_od d_od * min path cost / tstt
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from gamescale.algorithms.base import LearnerSpec, State, StepContext
from gamescale.envs.routing.network import Network, link_cost, link_cost_derivative

_MIN_COST = 1e-12  # dijkstra needs strictly positive weights; zero-cost links get this


@dataclass(frozen=True)
class ShortestPathGraph:
    """The node numbering used for shortest paths.

    Zones below `first_thru_node` may not be crossed: their outgoing links are moved to a
    copy node `num_nodes + k`, which is where trips from that zone start. Fields:
    tails `[L]` (graph node of each link's tail), heads `[L]`, num_graph_nodes,
    origins `[O]` (network node of each origin), sources `[O]` (graph node to start from),
    demand `[O, num_nodes]` (flow units, destination by network node).
    """

    tails: np.ndarray
    heads: np.ndarray
    num_graph_nodes: int
    origins: np.ndarray
    sources: np.ndarray
    demand: np.ndarray


def shortest_path_graph(net: Network) -> ShortestPathGraph:
    n = net.num_nodes
    zones = np.arange(min(max(net.first_thru_node, 0), n))
    copy_of = np.full(n, -1, np.int64)
    copy_of[zones] = n + np.arange(len(zones))
    tails = np.where(copy_of[net.init_node] >= 0, copy_of[net.init_node], net.init_node).astype(np.int64)
    origins, row = np.unique(net.demand.origin, return_inverse=True)
    sources = np.where(copy_of[origins] >= 0, copy_of[origins], origins)
    demand = np.zeros((len(origins), n))
    np.add.at(demand, (row, net.demand.destination), net.demand.flow)
    return ShortestPathGraph(tails, net.term_node.astype(np.int64), n + len(zones), origins, sources, demand)


def shortest_paths(graph: ShortestPathGraph, costs: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    """Dijkstra from every origin at once at link `costs` `[L]`.

    Returns dist `[O, G]`, pred `[O, G]` (graph nodes) and {tail * G + head: link id} of
    the cheapest link of each node pair (parallel links: the cheapest one is used).
    """
    m, g = len(costs), graph.num_graph_nodes
    c = np.maximum(costs, _MIN_COST)
    pair = graph.tails * g + graph.heads
    order = np.lexsort((c, pair))
    first = np.ones(m, bool)
    first[1:] = pair[order][1:] != pair[order][:-1]
    best = order[first]
    matrix = csr_matrix((c[best], (graph.tails[best], graph.heads[best])), shape=(g, g))
    dist, pred = dijkstra(matrix, indices=graph.sources, return_predecessors=True)
    return dist, pred, dict(zip(pair[best].tolist(), best.tolist(), strict=False))


def all_or_nothing(graph: ShortestPathGraph, costs: np.ndarray) -> tuple[np.ndarray, float]:
    """Load all demand on shortest paths at link `costs` `[L]`.

    Returns (link flows `[L]`, shortest-path total travel time sum_od d_od * dist_od).
    """
    m, g = len(costs), graph.num_graph_nodes
    dist, pred, pair_link = shortest_paths(graph, costs)
    n = graph.demand.shape[1]
    sptt = float(np.sum(graph.demand * np.where(graph.demand > 0, dist[:, :n], 0.0)))
    # accumulate demand from the farthest node inward, all origins at once
    acc = np.zeros((len(graph.sources), g))
    acc[:, :n] = graph.demand
    far_first = np.argsort(-np.where(np.isfinite(dist), dist, -1.0), axis=1, kind="stable")
    rows = np.arange(len(graph.sources))
    link_keys, link_amount = [], []
    for r in range(g):
        v = far_first[:, r]
        p = pred[rows, v]
        ok = (p >= 0) & (acc[rows, v] > 0)
        if not ok.any():
            continue
        ro, vo, po = rows[ok], v[ok], p[ok]
        amount = acc[ro, vo]
        np.add.at(acc, (ro, po), amount)
        link_keys.append(po * g + vo)
        link_amount.append(amount)
    flows = np.zeros(m)
    if link_keys:
        keys = np.concatenate(link_keys)
        links = np.fromiter((pair_link[k] for k in keys.tolist()), np.int64, len(keys))
        flows = np.bincount(links, weights=np.concatenate(link_amount), minlength=m)
    return flows, sptt


def beckmann_line_search(net: Network, x: np.ndarray, d: np.ndarray, iters: int = 40) -> float:
    """Step in [0, 1] minimising the Beckmann objective along x + s d (bisection on its slope)."""
    lo, hi = 0.0, 1.0
    if np.dot(link_cost(net, x + d), d) <= 0:
        return 1.0
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if np.dot(link_cost(net, x + mid * d), d) > 0:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def gap_and_tstt(net: Network, x: np.ndarray, sptt: float) -> tuple[float, float]:
    tstt = float(np.dot(x, link_cost(net, x)))
    return (1.0 - sptt / tstt if tstt > 0 else 0.0), tstt


class StaticUserEquilibrium:
    """Conjugate Frank-Wolfe for the static UE (or plain Frank-Wolfe with `conjugate=False`).

    State: flows `[L]` (current link flows), target `[L]` (previous conjugate point),
    aon `[L]` (all-or-nothing load at the current costs), relative_gap, tstt, iteration.
    """

    def __init__(self, network: Network, max_iterations: int = 200, conjugate: bool = True, target_gap: float = 0.0):
        self.network = network
        self.max_iterations = max_iterations
        self.conjugate = conjugate
        self.target_gap = target_gap
        self.graph = shortest_path_graph(network)

    def learner_specs(self) -> dict[str, LearnerSpec]:
        return {}

    def init(self, seed: int) -> State:
        net = self.network
        x, _ = all_or_nothing(self.graph, net.free_flow_time)
        y, sptt = all_or_nothing(self.graph, link_cost(net, x))
        gap, tstt = gap_and_tstt(net, x, sptt)
        return {"flows": x, "target": y, "aon": y, "relative_gap": gap, "tstt": tstt, "iteration": 0}

    def step(self, state: State, ctx: StepContext | None = None) -> tuple[State, dict[str, float]]:
        net = self.network
        done = state["iteration"] >= self.max_iterations or state["relative_gap"] <= self.target_gap
        if done:
            return state, {"relative_gap": state["relative_gap"], "tstt": state["tstt"]}
        x, y, s_prev = state["flows"], state["aon"], state["target"]
        target = y
        if self.conjugate and state["iteration"] > 0:
            h = link_cost_derivative(net, x)
            dy, ds = y - x, s_prev - x
            num = np.dot(ds * h, dy)
            den = np.dot(ds * h, y - s_prev)
            alpha = num / den if den != 0 else 0.0
            alpha = float(np.clip(alpha, 0.0, 1.0 - 1e-6)) if np.isfinite(alpha) else 0.0
            target = alpha * s_prev + (1.0 - alpha) * y
        step = beckmann_line_search(net, x, target - x)
        x = x + step * (target - x)
        y, sptt = all_or_nothing(self.graph, link_cost(net, x))
        gap, tstt = gap_and_tstt(net, x, sptt)
        iteration = int(state["iteration"]) + 1
        state = {"flows": x, "target": target, "aon": y, "relative_gap": gap, "tstt": tstt, "iteration": iteration}
        return state, {"relative_gap": gap, "tstt": tstt}

    def summary(self, state: State) -> dict[str, Any]:
        return {"relative_gap": float(state["relative_gap"]), "tstt": float(state["tstt"])}

    def tables(self, state: State) -> dict[str, pa.Table]:
        """Link flows at the final state: init_node, term_node (TNTP numbers), flow, cost."""
        net, x = self.network, state["flows"]
        return {
            "link_flows": pa.table(
                {
                    "init_node": net.node_ids[net.init_node],
                    "term_node": net.node_ids[net.term_node],
                    "flow": x,
                    "cost": link_cost(net, x),
                }
            )
        }


def solve_user_equilibrium(
    network: Network, target_gap: float = 1e-4, max_iterations: int = 10_000, method: str = "gradient_projection"
) -> State:
    """Run a solver to `target_gap` (or `max_iterations`) in this process; returns the state."""
    solver = make_solver(network, method, max_iterations=max_iterations)
    state = solver.init(0)
    while state["relative_gap"] > target_gap and state["iteration"] < max_iterations:
        state, _ = solver.step(state)
    return state


def od_pairs(graph: ShortestPathGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(origin row `[K]`, destination node `[K]`, flow `[K]`) of every positive OD entry."""
    rows, dests = np.nonzero(graph.demand > 0)
    return rows, dests, graph.demand[rows, dests]


def extract_paths(
    graph: ShortestPathGraph, pred: np.ndarray, pair_link: dict[int, int], rows: np.ndarray, dests: np.ndarray
) -> np.ndarray:
    """Shortest paths as link ids `[K, M]` (padded with -1, from origin to destination)."""
    g = graph.num_graph_nodes
    cur = dests.astype(np.int64).copy()
    src = graph.sources[rows]
    hops: list[np.ndarray] = []
    while True:
        active = cur != src
        if not active.any():
            break
        p = np.where(active, pred[rows, cur], -1)
        keys = (p * g + cur)[active].tolist()
        link = np.full(len(cur), -1, np.int64)
        link[active] = [pair_link[k] for k in keys]
        hops.append(link)
        cur = np.where(active, p, cur)
        if len(hops) > g:
            raise RuntimeError("shortest-path tree has a cycle")
    if not hops:
        return np.full((len(rows), 1), -1, np.int32)
    backwards = np.stack(hops, axis=1)  # destination first; -1 once a path is done
    lengths = (backwards >= 0).sum(axis=1)
    out = np.full(backwards.shape, -1, np.int32)
    for k in range(backwards.shape[1]):
        take = k < lengths
        out[take, k] = backwards[take, lengths[take] - 1 - k]
    return out


def path_incidence(path_links: np.ndarray, num_links: int) -> csr_matrix:
    """`[P, L]` 0/1 matrix: path p uses link l."""
    p, k = np.nonzero(path_links >= 0)
    return csr_matrix((np.ones(len(p)), (p, path_links[p, k])), shape=(len(path_links), num_links))


class PathGradientProjection(StaticUserEquilibrium):
    """Path-based UE by projected Newton steps (Jayakrishnan et al. 1994), all OD pairs at once.

    Each step: shortest paths at current costs join the path sets; every other used path of
    an OD pair sends its flow excess (c_p - c_s) / sum_{l in p xor s} t'_l to the shortest
    path s; the combined move is scaled by an exact Beckmann line search (monotone descent).
    State: path_links `[P, M]` (link ids, -1 padded), path_od `[P]`, path_flow `[P]`,
    flows `[L]`, relative_gap, tstt, iteration.
    """

    def init(self, seed: int) -> State:
        net, graph = self.network, self.graph
        rows, dests, flow = od_pairs(graph)
        _, pred, pair_link = shortest_paths(graph, net.free_flow_time)
        paths = extract_paths(graph, pred, pair_link, rows, dests)
        x = path_incidence(paths, net.num_links).T @ flow
        gap, tstt = self._gap(x)
        return {
            "path_links": paths,
            "path_od": np.arange(len(rows), dtype=np.int32),
            "path_flow": flow.copy(),
            "flows": x,
            "relative_gap": gap,
            "tstt": tstt,
            "iteration": 0,
        }

    def _gap(self, x: np.ndarray) -> tuple[float, float]:
        dist, _, _ = shortest_paths(self.graph, link_cost(self.network, x))
        n = self.graph.demand.shape[1]
        sptt = float(np.sum(self.graph.demand * np.where(self.graph.demand > 0, dist[:, :n], 0.0)))
        return gap_and_tstt(self.network, x, sptt)

    def step(self, state: State, ctx: StepContext | None = None) -> tuple[State, dict[str, float]]:
        net, graph = self.network, self.graph
        if state["iteration"] >= self.max_iterations or state["relative_gap"] <= self.target_gap:
            return state, {"relative_gap": state["relative_gap"], "tstt": state["tstt"]}
        x = state["flows"]
        t, dt = link_cost(net, x), link_cost_derivative(net, x)
        rows, dests, _ = od_pairs(graph)
        _, pred, pair_link = shortest_paths(graph, t)
        new = extract_paths(graph, pred, pair_link, rows, dests)
        paths, path_od, f = state["path_links"], state["path_od"], state["path_flow"]
        width = max(paths.shape[1], new.shape[1])
        paths = np.pad(paths, ((0, 0), (0, width - paths.shape[1])), constant_values=-1)
        new = np.pad(new, ((0, 0), (0, width - new.shape[1])), constant_values=-1)
        known = {(int(od), row.tobytes()): i for i, (od, row) in enumerate(zip(path_od, paths, strict=False))}
        best = np.empty(len(rows), np.int64)
        added = []
        for k in range(len(rows)):
            key = (k, new[k].tobytes())
            if key not in known:
                known[key] = len(paths) + len(added)
                added.append(k)
            best[k] = known[key]
        if added:
            paths = np.concatenate([paths, new[added]])
            path_od = np.concatenate([path_od, np.asarray(added, np.int32)])
            f = np.concatenate([f, np.zeros(len(added))])
        inc = path_incidence(paths, net.num_links)
        cost = inc @ t
        s = best[path_od]
        slope = inc @ dt
        overlap = inc.multiply(inc[s]) @ dt
        curvature = np.maximum(slope + slope[s] - 2.0 * overlap, 1e-12)
        shift = np.where(np.arange(len(f)) == s, 0.0, np.clip((cost - cost[s]) / curvature, 0.0, f))
        df = -shift
        np.add.at(df, s, shift)
        step = beckmann_line_search(net, x, inc.T @ df)
        f = np.maximum(f + step * df, 0.0)
        x = inc.T @ f
        gap, tstt = self._gap(x)
        iteration = int(state["iteration"]) + 1
        state = {
            "path_links": paths.astype(np.int32),
            "path_od": path_od.astype(np.int32),
            "path_flow": f,
            "flows": x,
            "relative_gap": gap,
            "tstt": tstt,
            "iteration": iteration,
        }
        return state, {"relative_gap": gap, "tstt": tstt}


def make_solver(
    network: Network, method: str = "gradient_projection", max_iterations: int = 200, target_gap: float = 0.0
):
    """The static UE solver named `method`: gradient_projection, conjugate_frank_wolfe or frank_wolfe."""
    if method == "gradient_projection":
        return PathGradientProjection(network, max_iterations=max_iterations, target_gap=target_gap)
    if method in ("conjugate_frank_wolfe", "frank_wolfe"):
        return StaticUserEquilibrium(
            network, max_iterations=max_iterations, conjugate=method == "conjugate_frank_wolfe", target_gap=target_gap
        )
    raise ValueError(f"unknown static UE method {method!r}")
