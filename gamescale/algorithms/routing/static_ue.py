"""Static user equilibrium (Wardrop) with BPR costs: path-based gradient projection (the
default) and link-based (conjugate) Frank-Wolfe, all on arrays.

Shortest paths come from scipy's Dijkstra, many origins at once; paths and all-or-nothing
loads are traced for every OD pair together by walking predecessor trees one hop per numpy
operation (no Python per OD pair). A block of origins is one shard (`shortest_path_shard`):
the gradient-projection step sends its Dijkstra work through `ctx.shards.map`, so with
`--workers N` it runs on N actors, with results identical to one process.

Metrics are measured at the flows a step returns:

    tstt = sum_l x_l t_l(x_l)                (total system travel time, flow x time units)
    relative_gap = 1 - sum_od d_od * shortest path cost / tstt
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from gamescale.algorithms.base import LearnerSpec, LocalShardRunner, State, StepContext, Stop, make_shard_tasks
from gamescale.algorithms.tables import annotate
from gamescale.envs.routing.network import Network, link_cost

_MIN_COST = 1e-12  # dijkstra needs strictly positive weights; zero-cost links get this
_NEW_PATH_TOL = 1e-12  # a shortest path joins a path set only if cheaper than all its paths by this (relative)


@dataclass(frozen=True)
class ShortestPathGraph:
    """The node numbering used for shortest paths, and the demand as a list of OD pairs.

    Zones below `first_thru_node` may not be crossed: their outgoing links are moved to a
    copy node `num_nodes + k`, which is where trips from that zone start. Fields:
    tails `[L]` (graph node of each link's tail), heads `[L]`, num_graph_nodes,
    origins `[O]` (network node of each origin), sources `[O]` (graph node to start from),
    od_row `[K]` (origin row of each OD pair, sorted), od_dest `[K]` (destination network
    node), od_flow `[K]` (flow units), od_ptr `[O + 1]` (OD pairs of origin row r are
    od_ptr[r]:od_ptr[r+1]); the graph's edges are the distinct (tail, head) pairs of the
    links, sorted: pair_of_link `[L]`, pair_tail `[E]`, pair_head `[E]`; in_table
    `[G * in_mod]` gives the pair of (tail, head) at head * in_mod + tail % in_mod (in_mod 0:
    no collision-free table, pairs are found by binary search).
    """

    tails: np.ndarray
    heads: np.ndarray
    num_graph_nodes: int
    origins: np.ndarray
    sources: np.ndarray
    od_row: np.ndarray
    od_dest: np.ndarray
    od_flow: np.ndarray
    od_ptr: np.ndarray
    pair_of_link: np.ndarray
    pair_tail: np.ndarray
    pair_head: np.ndarray
    in_mod: int
    in_table: np.ndarray

    @property
    def num_od(self) -> int:
        return len(self.od_flow)

    def pair_into(self, tail: np.ndarray, head: np.ndarray) -> np.ndarray:
        """Index of the (tail, head) pair `[...]` (each must be an edge of the graph): one
        lookup in a table of the in-neighbours of each head, keyed by tail mod `in_mod`."""
        if self.in_mod:
            return self.in_table[head * self.in_mod + tail % self.in_mod]
        keys = self.pair_tail.astype(np.int64) * self.num_graph_nodes + self.pair_head
        return np.searchsorted(keys, tail.astype(np.int64) * self.num_graph_nodes + head)


def shortest_path_graph(net: Network) -> ShortestPathGraph:
    n = net.num_nodes
    zones = np.arange(min(max(net.first_thru_node, 0), n))
    copy_of = np.full(n, -1, np.int64)
    copy_of[zones] = n + np.arange(len(zones))
    tails = np.where(copy_of[net.init_node] >= 0, copy_of[net.init_node], net.init_node).astype(np.int64)
    d = net.demand
    keep = d.flow > 0
    origins, row = np.unique(d.origin[keep], return_inverse=True)
    key = row.astype(np.int64) * n + d.destination[keep]
    pairs, inverse = np.unique(key, return_inverse=True)  # duplicate rows of one pair are summed
    flow = np.bincount(inverse, weights=d.flow[keep], minlength=len(pairs))
    od_row, od_dest = pairs // n, pairs % n
    od_ptr = np.searchsorted(od_row, np.arange(len(origins) + 1))
    sources = np.where(copy_of[origins] >= 0, copy_of[origins], origins).astype(np.int64)
    heads = net.term_node.astype(np.int64)
    g = n + len(zones)
    keys, pair_of_link = np.unique(tails * g + heads, return_inverse=True)
    pair_tail, pair_head = keys // g, keys % g
    in_mod, in_table = _in_table(pair_tail, pair_head, g)
    return ShortestPathGraph(
        tails, heads, g, origins, sources, od_row, od_dest, flow, od_ptr,
        pair_of_link.astype(np.int64), pair_tail, pair_head, in_mod, in_table,
    )  # fmt: skip


def _in_table(pair_tail: np.ndarray, pair_head: np.ndarray, g: int, max_mod: int = 256) -> tuple[int, np.ndarray]:
    """(m, table `[g * m]`): the smallest m for which the in-neighbours of every node differ
    mod m (so (tail, head) -> pair is one array lookup), table[head * m + tail % m] = pair;
    (0, empty) if no m <= max_mod works (then pairs are found by binary search)."""
    if not len(pair_head):
        return 0, np.zeros(0, np.int64)
    m = int(np.bincount(pair_head).max())
    while m <= max_mod:
        slot = pair_head * m + pair_tail % m
        if len(np.unique(slot)) == len(slot):
            table = np.full(g * m, -1, np.int64)
            table[slot] = np.arange(len(slot))
            return m, table
        m += 1
    return 0, np.zeros(0, np.int64)


@dataclass(frozen=True)
class ShortestPathTrees:
    """Dijkstra trees of origin rows `lo:hi` at given link costs.

    dist `[R, G]`, pred `[R, G]` (graph nodes, negative for none); pair_link `[E]`: the link
    each graph edge (tail, head) pair stands for at these costs (the cheapest of parallel links);
    min_cost: the cheapest edge cost (0: unknown).
    """

    lo: int
    dist: np.ndarray
    pred: np.ndarray
    pair_link: np.ndarray
    min_cost: float = 0.0

    def in_links(self, graph: ShortestPathGraph) -> np.ndarray:
        """Tree link into every node `[R, G]` (int64; -1 at the sources and unreached nodes)."""
        g, m = graph.num_graph_nodes, graph.in_mod
        if m and g * m < 2**31:  # whole-array int32 arithmetic: no compaction of the reached nodes
            tail = np.maximum(self.pred, 0)
            slot = np.arange(g, dtype=np.int32) * np.int32(m) + tail % np.int32(m)
            pair = graph.in_table[slot]
            return np.where((self.pred >= 0) & (pair >= 0), self.pair_link[np.maximum(pair, 0)], -1)
        out = np.full(self.pred.shape, -1, np.int64)
        reached = self.pred >= 0
        _, node = np.nonzero(reached)
        out[reached] = self.pair_link[graph.pair_into(self.pred[reached].astype(np.int64), node)]
        return out


@dataclass(frozen=True)
class CostGraph:
    """The graph at given link costs, ready for Dijkstra: matrix (CSR `[G, G]`), best `[E]`
    (the link of each edge pair: the cheapest of parallel links), min_cost (cheapest edge)."""

    matrix: csr_matrix
    best: np.ndarray
    min_cost: float


def cost_graph(graph: ShortestPathGraph, costs: np.ndarray) -> CostGraph:
    """`CostGraph` at link `costs` `[L]` (built once per cost vector, shared by the blocks)."""
    g = graph.num_graph_nodes
    c = np.maximum(costs, _MIN_COST)
    if len(graph.pair_tail) == len(c):  # no parallel links: pair k is link order[k]
        best = np.empty(len(c), np.int64)
        best[graph.pair_of_link] = np.arange(len(c))
    else:
        order = np.lexsort((c, graph.pair_of_link))
        first = np.ones(len(order), bool)
        first[1:] = graph.pair_of_link[order][1:] != graph.pair_of_link[order][:-1]
        best = order[first]  # the cheapest link of each pair, in pair order (= CSR order)
    out_ptr = np.searchsorted(graph.pair_tail, np.arange(g + 1))
    matrix = csr_matrix((c[best], graph.pair_head, out_ptr), shape=(g, g))
    return CostGraph(matrix, best, float(c[best].min()) if len(best) else 0.0)


def shortest_trees(
    graph: ShortestPathGraph,
    costs: np.ndarray,
    lo: int = 0,
    hi: int | None = None,
    at: CostGraph | None = None,
) -> ShortestPathTrees:
    """Dijkstra from the sources of origin rows `lo:hi` at link `costs` `[L]` (`at`: the
    `cost_graph` of these costs, if already built)."""
    hi = len(graph.sources) if hi is None else hi
    at = at or cost_graph(graph, costs)
    dist, pred = dijkstra(at.matrix, indices=graph.sources[lo:hi], return_predecessors=True)
    return ShortestPathTrees(lo, dist, pred, at.best, at.min_cost)


def shortest_paths(graph: ShortestPathGraph, costs: np.ndarray) -> tuple[np.ndarray, np.ndarray, ShortestPathTrees]:
    """(dist `[O, G]`, pred `[O, G]`, the trees) from every origin at once."""
    trees = shortest_trees(graph, costs)
    return trees.dist, trees.pred, trees


def trace_paths(
    graph: ShortestPathGraph, trees: ShortestPathTrees, rows: np.ndarray, dests: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Shortest paths of OD pairs (origin `rows` `[K]`, destination nodes `[K]`) as CSR:
    ptr `[K + 1]`, links `[ptr[-1]]` (int32 link ids from origin to destination).

    Two walks up the trees, all pairs at once: the first counts hops, the second writes
    each link straight into its place (memory: the output only)."""
    k = len(rows)
    g = graph.num_graph_nodes
    local = np.asarray(rows, np.int64) - trees.lo
    src = graph.sources[rows]
    pred = trees.pred.ravel()
    lengths = np.zeros(k, np.int64)
    ids, at, s = np.arange(k), local * g + np.asarray(dests, np.int64), src  # at: flat index (row, node)
    for _ in range(g + 1):
        if not len(ids):
            break
        p = pred[at].astype(np.int64)
        if np.any(p < 0):
            raise ValueError("an OD pair has no path at these link costs")
        lengths[ids] += 1
        go_on = p != s
        ids, at, s = ids[go_on], at[go_on] - at[go_on] % g + p[go_on], s[go_on]
    else:
        raise RuntimeError("shortest-path tree has a cycle")
    ptr = np.concatenate([[0], np.cumsum(lengths)])
    links = np.empty(ptr[-1], np.int32)
    # many hops: look up the link into every tree node once, [R, G], then index it
    in_link = trees.in_links(graph).ravel() if ptr[-1] > trees.pred.size // 4 else None
    at, s = local * g + np.asarray(dests, np.int64), src
    slot = ptr[1:] - 1  # the last link of each path first: fill backwards
    while len(at):
        p = pred[at].astype(np.int64)
        if in_link is None:
            links[slot] = trees.pair_link[graph.pair_into(p, at % g)]
        else:
            links[slot] = in_link[at]
        go_on = p != s
        at, s, slot = at[go_on] - at[go_on] % g + p[go_on], s[go_on], slot[go_on] - 1
    return ptr, links


def load_origins(graph: ShortestPathGraph, trees: ShortestPathTrees, num_links: int) -> tuple[np.ndarray, float]:
    """All-or-nothing load of the demand of the origin rows of `trees` on their trees.

    Returns (link flows `[L]`, sum of demand x shortest-path cost). The flow on the tree link
    into a node is the demand of the node's subtree (`subtree_sums`); the subtree sums of all
    trees are then summed per (node, tree link into it) and mapped to links once
    (`_tree_link_flows`): no Python per node or OD pair.
    """
    lo, r, g = trees.lo, trees.dist.shape[0], graph.num_graph_nodes
    k0, k1 = int(graph.od_ptr[lo]), int(graph.od_ptr[lo + r])
    rows, dests, flow = graph.od_row[k0:k1] - lo, graph.od_dest[k0:k1], graph.od_flow[k0:k1]
    sp = trees.dist[rows, dests]
    if not np.all(np.isfinite(sp)):
        raise ValueError("an OD pair has no path at these link costs")
    s = subtree_sums(trees, np.bincount(rows * g + dests, weights=flow, minlength=r * g))
    s[np.arange(r) * g + graph.sources[lo : lo + r]] = 0.0  # a source has no tree link into it
    return _tree_link_flows(graph, trees, s, num_links), float(np.dot(flow, sp))


_MAX_BUCKETS = 4096  # distance buckets for the reverse topological order; more: pointer doubling


def subtree_sums(trees: ShortestPathTrees, demand: np.ndarray) -> np.ndarray:
    """Demand of every node's subtree `[R * G]` (row-major (tree, node)), from the demand
    ending at each node `[R * G]` (overwritten).

    Children are settled by Dijkstra after their parent and at least the cheapest edge cost
    `c_min` further away, so floor(dist / (0.99 c_min)) is a topological order with few
    levels (a few hundred on a street grid): one radix sort of the (tree, node) entries by
    that key, then one vectorised push to the parents per level, from the farthest level in.
    Where the levels would be too many (zero-cost links), pointer doubling instead."""
    dist, pred = trees.dist, trees.pred
    if trees.min_cost > 0:
        dmax = float(dist.max())
        finite = np.isfinite(dmax)
        if not finite:
            dmax = float(np.max(dist, where=np.isfinite(dist), initial=0.0))
        inv = 1.0 / (0.99 * trees.min_cost)
        levels = int(dmax * inv) + 1
        if levels <= _MAX_BUCKETS:
            return _subtree_sums_by_level(dist, pred, demand, inv, levels, finite)
    return _subtree_sums_by_doubling(pred, demand)


def _subtree_sums_by_level(
    dist: np.ndarray, pred: np.ndarray, s: np.ndarray, inv: float, levels: int, finite: bool
) -> np.ndarray:
    r, g = pred.shape
    scaled = dist * inv
    if not finite:  # unreached nodes: level 0 (with the sources), they push nothing
        scaled[~np.isfinite(scaled)] = 0.0
    key = scaled.astype(np.int16).ravel()
    order = np.argsort(key, kind="stable")  # radix sort: one pass per key byte
    ends = np.cumsum(np.bincount(key, minlength=levels)).tolist()
    index = np.int32 if r * g < 2**31 else np.int64
    parent = (pred.astype(index, copy=False) + (np.arange(r, dtype=index) * g)[:, None]).ravel()
    for b in range(levels - 1, 0, -1):
        a, e = ends[b - 1], ends[b]
        if e > a:
            at = order[a:e]
            np.add.at(s, parent[at], s[at])  # several children of one parent in a level
    return s


def _subtree_sums_by_doubling(pred: np.ndarray, demand: np.ndarray) -> np.ndarray:
    """Subtree sums by pointer doubling, for all trees at once: with `anc` the 2^k-th
    ancestor of every node and `s` the demand of the descendants less than 2^k hops down,
    s += (s pushed up to anc), anc = anc[anc]; about log2(tree depth) numpy passes."""
    r, g = pred.shape
    width = g + 1  # column g of each row: where sources and unreached nodes point (a sink)
    index = np.int32 if r * width < 2**31 else np.int64
    base = (np.arange(r, dtype=index) * width)[:, None]
    sink = base[:, 0] + g
    anc = np.empty((r, width), index)
    anc[:, :g] = np.where(pred >= 0, pred, g) + base
    anc[:, g] = sink
    anc = anc.ravel()
    s = np.zeros((r, width))
    s[:, :g] = demand.reshape(r, g)
    s = s.ravel()
    while True:
        s += np.bincount(anc, weights=s, minlength=r * width)
        s[sink] = 0.0
        anc = anc[anc]
        if np.array_equal(anc[::width], sink) and np.all(anc.reshape(r, width) == sink[:, None]):
            break
    return s.reshape(r, width)[:, :g].ravel()


def _tree_link_flows(graph: ShortestPathGraph, trees: ShortestPathTrees, s: np.ndarray, num_links: int) -> np.ndarray:
    """Link flows `[L]` of subtree sums `s` `[R * G]` (zero at the sources): each entry's
    flow goes to the tree link into its node. With the in-neighbour table, the entries are
    summed per table slot (node, predecessor mod in_mod) and the slots mapped to links once."""
    g, m = graph.num_graph_nodes, graph.in_mod
    if m and g * m < 2**31:
        slot = trees.pred % np.int32(m)  # garbage where there is no predecessor: s is 0 there
        slot += np.arange(g, dtype=slot.dtype) * slot.dtype.type(m)
        per_slot = np.bincount(slot.ravel(), weights=s, minlength=g * m)
        pair = graph.in_table
        ok = pair >= 0
        return np.bincount(trees.pair_link[pair[ok]], weights=per_slot[ok], minlength=num_links)
    in_link = trees.in_links(graph).ravel()
    used = in_link >= 0
    return np.bincount(in_link[used], weights=s[used], minlength=num_links)


_BLOCK_ENTRIES = 1_500_000  # (origin, node) entries per Dijkstra call when loading: the arrays stay in cache


def all_or_nothing(
    graph: ShortestPathGraph, costs: np.ndarray, lo: int = 0, hi: int | None = None
) -> tuple[np.ndarray, float]:
    """Load the demand of origin rows `lo:hi` (default: all) on shortest paths at link
    `costs` `[L]`, in blocks of origins of about `_BLOCK_ENTRIES` tree nodes.

    Returns (link flows `[L]`, shortest-path total travel time sum_od d_od * dist_od).
    """
    hi = len(graph.sources) if hi is None else hi
    step = max(1, _BLOCK_ENTRIES // graph.num_graph_nodes)
    flows, sptt = np.zeros(len(costs)), 0.0
    at = cost_graph(graph, costs)
    for a in range(lo, hi, step):
        block_flows, block_sptt = load_origins(
            graph, shortest_trees(graph, costs, a, min(a + step, hi), at), len(costs)
        )
        flows += block_flows
        sptt += block_sptt
    return flows, sptt


@dataclass(frozen=True)
class BprCosts:
    """BPR link costs t(x) = fft + coef x^p and slopes t'(x) = p coef x^(p-1), with
    coef = congestion_time / capacity^p; where every link has the same integer power
    p >= 1 (4 in most cities) x^p is p - 1 multiplications instead of a `pow` per link."""

    fft: np.ndarray
    coef: np.ndarray
    power: np.ndarray
    int_power: int  # 0: mixed or fractional powers

    @staticmethod
    def of(net: Network) -> BprCosts:
        p = np.asarray(net.power, np.float64)
        uniform = len(p) > 0 and np.all(p == p[0]) and float(p[0]).is_integer() and 1 <= p[0] <= 8
        coef = net.congestion_time / net.capacity**p
        return BprCosts(net.free_flow_time, coef, p, int(p[0]) if uniform else 0)

    def _pow(self, x: np.ndarray, k: int) -> np.ndarray:
        out = x.copy() if k >= 1 else np.ones_like(x)
        for _ in range(k - 1):
            out *= x
        return out

    def cost(self, flow: np.ndarray) -> np.ndarray:
        x = np.maximum(flow, 0.0)
        if self.int_power:
            return self.fft + self.coef * self._pow(x, self.int_power)
        return self.fft + self.coef * x**self.power

    def cost_and_slope(self, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.maximum(flow, 0.0)
        if self.int_power:
            low = self._pow(x, self.int_power - 1)
            return self.fft + self.coef * low * x, (self.int_power * self.coef) * low
        with np.errstate(divide="ignore", invalid="ignore"):
            low = x ** (self.power - 1.0)
            slope = np.nan_to_num(self.power * self.coef * low, nan=0.0, posinf=0.0)
        return self.fft + self.coef * x**self.power, slope


def beckmann_line_search(net: Network | BprCosts, x: np.ndarray, d: np.ndarray, iters: int = 40) -> float:
    """Step in [0, 1] minimising the Beckmann objective along x + s d: safeguarded Newton
    on its slope t(x + s d) . d (convex: the slope rises), bisecting where Newton would
    leave the bracket; stops when the step moves by less than 1e-13."""
    bpr = net if isinstance(net, BprCosts) else BprCosts.of(net)
    g0 = float(np.dot(bpr.cost(x), d))
    if g0 >= 0:  # not a descent direction
        return 0.0
    if float(np.dot(bpr.cost(x + d), d)) <= 0:
        return 1.0
    lo, hi, a = 0.0, 1.0, 0.5
    for _ in range(iters):
        t, slope = bpr.cost_and_slope(x + a * d)
        g, h = float(np.dot(t, d)), float(np.dot(slope * d, d))
        if g > 0:
            hi = a
        else:
            lo = a
        nxt = a - g / h if h > 0 else 0.5 * (lo + hi)
        if not lo < nxt < hi:
            nxt = 0.5 * (lo + hi)
        if abs(nxt - a) < 1e-13 or hi - lo < 1e-13:
            return nxt
        a = nxt
    return a


def gap_and_tstt(net: Network, x: np.ndarray, sptt: float) -> tuple[float, float]:
    tstt = float(np.dot(x, link_cost(net, x)))
    return (1.0 - sptt / tstt if tstt > 0 else 0.0), tstt


# ----------------------------------------------------------------------------- shards

_GRAPHS: dict[int, tuple[Network, ShortestPathGraph]] = {}


def network_of(env: Any) -> Network:
    """The road network of a routing env (a `Network`, or an env holding `game.network`)."""
    if isinstance(env, Network):
        return env
    if hasattr(env, "game"):
        return env.game.network
    raise ValueError(f"static_user_equilibrium needs a routing env, got {type(env).__name__}")


def graph_of(net: Network) -> ShortestPathGraph:
    """`shortest_path_graph(net)`, built once per network object (per worker)."""
    hit = _GRAPHS.get(id(net))
    if hit is None or hit[0] is not net:
        if len(_GRAPHS) > 8:
            _GRAPHS.clear()
        hit = (net, shortest_path_graph(net))
        _GRAPHS[id(net)] = hit
    return hit[1]


def origin_blocks(num_origins: int, num_shards: int) -> list[tuple[int, int]]:
    """Origin rows split into at most `num_shards` contiguous, non-empty blocks."""
    edges = np.linspace(0, num_origins, max(1, min(num_shards, num_origins)) + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def shortest_path_shard(env: Any, shared: dict[str, Any], task: Any) -> pa.RecordBatch:
    """One block of origins: Dijkstra at `shared["costs"]` `[L]`, and the shortest path of
    each of its OD pairs that is cheaper than `shared["best"]` `[K]` (the cheapest known
    path; None: every OD pair).

    Returns one row per OD pair of the block: od (int64, global OD index), cost (shortest
    path cost), path (list<int32> of link ids, empty when not new).
    """
    net = network_of(env)
    graph = graph_of(net)
    lo, hi = task.payload
    trees = shortest_trees(graph, shared["costs"], lo, hi)
    k0, k1 = int(graph.od_ptr[lo]), int(graph.od_ptr[hi])
    rows, dests = graph.od_row[k0:k1], graph.od_dest[k0:k1]
    cost = trees.dist[rows - lo, dests]
    if not np.all(np.isfinite(cost)):
        bad = k0 + int(np.argmin(np.isfinite(cost)))
        raise ValueError(
            f"{net.name}: no path from node {net.node_ids[graph.origins[graph.od_row[bad]]]} "
            f"to node {net.node_ids[graph.od_dest[bad]]}"
        )
    best = shared.get("best")
    need = np.ones(k1 - k0, bool) if best is None else cost < best[k0:k1] * (1.0 - _NEW_PATH_TOL)
    ptr, links = trace_paths(graph, trees, rows[need], dests[need])
    lengths = np.zeros(k1 - k0, np.int64)
    lengths[need] = np.diff(ptr)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.RecordBatch.from_arrays(
        [pa.array(np.arange(k0, k1, dtype=np.int64)), pa.array(cost), pa.ListArray.from_arrays(offsets, links)],
        names=["od", "cost", "path"],
    )


def _column(batches: list[pa.RecordBatch], name: str) -> pa.Array:
    return pa.concat_arrays([b.column(name) for b in batches]) if batches else pa.array([])


# ----------------------------------------------------------------------------- solvers

_BLAS: list[Any] = []  # the threadpoolctl controller, made on first use (it scans the loaded libraries)


def _one_blas_thread() -> Any:
    """Context manager: BLAS limited to one thread inside it."""
    if not _BLAS:
        from threadpoolctl import ThreadpoolController

        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


class _StaticUEBase:
    """What every static UE solver shares: stopping, summary, output tables."""

    network: Network
    graph: ShortestPathGraph
    max_iterations: int
    target_gap: float

    def learner_specs(self) -> dict[str, LearnerSpec]:
        return {}

    def step(self, state: State, ctx: StepContext | None = None) -> tuple[State, dict[str, float]]:
        """One solver iteration (`_step`), with BLAS on one thread: its dot and matrix-vector
        products are a few hundred thousand numbers, and OpenBLAS threads that spin-wait
        for a busy core made them 7x slower on a shared 2-core machine."""
        with _one_blas_thread():
            return self._step(state, ctx)

    def _step(self, state: State, ctx: StepContext | None = None) -> tuple[State, dict[str, float]]:
        raise NotImplementedError

    def _finished(self, state: State) -> bool:
        return state["iteration"] >= self.max_iterations or (
            state["iteration"] > 0 and state["relative_gap"] <= self.target_gap
        )

    def should_stop(self, state: State, metrics: dict[str, float]) -> Stop | None:
        """Stop at the first state whose relative gap is at or below `target_gap` (reason
        "target"), at an exact equilibrium ("converged"), or after `max_iterations` ("budget")."""
        gap, it = float(state["relative_gap"]), int(state["iteration"])
        if it > 0 and self.target_gap > 0 and gap <= self.target_gap:
            return Stop("target", f"relative gap {gap:.3g} <= target {self.target_gap:g} after {it} iterations")
        if it > 0 and gap <= 0.0:
            return Stop("converged", f"relative gap {gap:.3g} (exact equilibrium) after {it} iterations")
        if it >= self.max_iterations:
            return Stop("budget", f"max_iterations {self.max_iterations} reached at relative gap {gap:.3g}")
        return None

    def summary(self, state: State) -> dict[str, Any]:
        return {"relative_gap": float(state["relative_gap"]), "tstt": float(state["tstt"])}

    def od_costs(self, state: State) -> np.ndarray:
        """Shortest-path cost `[K]` of every OD pair at the state's flows."""
        trees = shortest_trees(self.graph, link_cost(self.network, state["flows"]))
        return trees.dist[self.graph.od_row, self.graph.od_dest]

    def tables(self, state: State) -> dict[str, pa.Table]:
        """link_flows: init_node, term_node (TNTP numbers), flow, cost, voc, free_flow_time,
        and where the network has node coordinates init_x, init_y, term_x, term_y (NaN where
        a node has none; the report draws plots/voc_map.png from them);
        od_costs: origin, destination (TNTP numbers), demand, cost (shortest path at the flows)."""
        net, graph, x = self.network, self.graph, state["flows"]
        links = {
            "init_node": net.node_ids[net.init_node],
            "term_node": net.node_ids[net.term_node],
            "flow": x,
            "cost": link_cost(net, x),
            "voc": x / net.capacity,
            "free_flow_time": net.free_flow_time,
        }
        if net.coordinates is not None and np.isfinite(net.coordinates).any():
            for end, nodes in (("init", net.init_node), ("term", net.term_node)):
                links[f"{end}_x"], links[f"{end}_y"] = net.coordinates[nodes, 0], net.coordinates[nodes, 1]
        return {
            "link_flows": annotate(pa.table(links), network=net.name),
            "od_costs": pa.table(
                {
                    "origin": net.node_ids[graph.origins[graph.od_row]],
                    "destination": net.node_ids[graph.od_dest],
                    "demand": graph.od_flow,
                    "cost": self.od_costs(state),
                }
            ),
        }


def all_or_nothing_shard(env: Any, shared: dict[str, Any], task: Any) -> pa.RecordBatch:
    """One block of origins (`task.payload` = (lo, hi) origin rows): its all-or-nothing
    load at `shared["costs"]` `[L]`. Returns one row: flow (list<double> `[L]`), sptt (its
    demand x shortest-path cost)."""
    net = network_of(env)
    lo, hi = task.payload
    flows, sptt = all_or_nothing(graph_of(net), shared["costs"], lo, hi)
    return pa.RecordBatch.from_arrays(
        [pa.array([flows], pa.list_(pa.float64())), pa.array([sptt])], names=["flow", "sptt"]
    )


def _runner(network: Network, ctx: StepContext | None) -> tuple[Any, int, int, int]:
    """(shard runner, number of origin blocks, seed, iteration): one worker runs in this
    process (no actor to start) and gives the same numbers as N workers."""
    if ctx is None:
        return LocalShardRunner(network), 1, 0, 0
    runner = ctx.shards if ctx.shards.num_workers > 1 else LocalShardRunner(network)
    return runner, ctx.num_shards, ctx.seed, ctx.iteration


class StaticUserEquilibrium(_StaticUEBase):
    """Link-based Frank-Wolfe family for the static UE: plain Frank-Wolfe, conjugate FW
    (`mode="conjugate"`) and bi-conjugate FW (`mode="biconjugate"`, Mitradjieva & Lindberg
    2013, as AequilibraE's `bfw`). One step: a direction made conjugate to the previous
    one (two, for BFW) under the Hessian diag(t'(x)), an exact line search on the Beckmann
    objective, and the all-or-nothing load at the new costs (which also gives the gap).
    The all-or-nothing loads are one shard per block of origins (`all_or_nothing_shard`,
    through `ctx.shards.map`), summed in block order: identical for 1 and N workers.

    State: flows `[L]` (current link flows), aon `[L]` (all-or-nothing load at their
    costs), s1, s2 `[L]` (the last two search targets), last_step (the last step size),
    relative_gap, tstt, iteration (0: nothing loaded; the first step loads the free-flow
    shortest paths).
    """

    def __init__(
        self,
        network: Network,
        max_iterations: int = 200,
        conjugate: bool = True,
        target_gap: float = 0.0,
        mode: str | None = None,
    ):
        self.network = network
        self.max_iterations = max_iterations
        self.mode = mode or ("conjugate" if conjugate else "frank_wolfe")
        if self.mode not in ("frank_wolfe", "conjugate", "biconjugate"):
            raise ValueError(f"unknown Frank-Wolfe mode {self.mode!r}")
        self.target_gap = target_gap
        self.graph = shortest_path_graph(network)
        self.bpr = BprCosts.of(network)

    def init(self, seed: int) -> State:
        zeros = np.zeros(self.network.num_links)
        return {
            "flows": zeros, "aon": zeros, "s1": zeros, "s2": zeros, "last_step": 1.0,
            "relative_gap": 1.0, "tstt": 0.0, "iteration": 0,
        }  # fmt: skip

    def _aon(self, ctx: StepContext | None, costs: np.ndarray) -> tuple[np.ndarray, float]:
        runner, num_shards, seed, it = _runner(self.network, ctx)
        blocks = origin_blocks(len(self.graph.sources), num_shards)
        if not blocks:
            return np.zeros(len(costs)), 0.0
        batches = runner.map(all_or_nothing_shard, make_shard_tasks(seed, it, len(blocks), blocks), {"costs": costs})
        flows = np.zeros(len(costs))
        for batch in batches:  # in block order: the same sums however the blocks ran
            flows += batch.column("flow").flatten().to_numpy()
        return flows, float(sum(batch.column("sptt")[0].as_py() for batch in batches))

    def _direction(self, state: State) -> np.ndarray:
        """The search target s (the step goes from x toward s): bi-conjugate, else conjugate,
        else the all-or-nothing load y, whichever comes first that is a descent direction
        (t(x) . (s - x) < 0; y always is unless x is an equilibrium)."""
        it = int(state["iteration"])
        x, y, s1, s2, tau = state["flows"], state["aon"], state["s1"], state["s2"], float(state["last_step"])
        if self.mode == "frank_wolfe" or it <= 1 or not 0.0 < tau < 1.0 - 1e-9:
            return y  # after a zero or full step x sits on s1: no conjugate information, restart from FW
        t, h = self.bpr.cost_and_slope(x)
        descent = np.dot(t, y - x)
        if self.mode == "biconjugate" and it > 2:
            d1 = s1 - x  # the last direction
            d2 = tau * s1 + (1.0 - tau) * s2 - x  # the one before, seen from x
            den_mu, den_nu = np.dot(d2 * h, s2 - s1), np.dot(d1 * h, d1)
            if den_mu != 0 and den_nu != 0:
                mu = -np.dot(d2 * h, y - x) / den_mu
                nu = -np.dot(d1 * h, y - x) / den_nu + mu * tau / (1.0 - tau)
                mu, nu = max(0.0, mu), max(0.0, nu)
                if np.isfinite(mu) and np.isfinite(nu):
                    s = (y + nu * s1 + mu * s2) / (1.0 + mu + nu)
                    if np.dot(t, s - x) < 0:
                        return s
        # conjugate to the last direction only
        ds = s1 - x
        num, den = np.dot(ds * h, y - x), np.dot(ds * h, y - s1)
        alpha = num / den if den != 0 else 0.0
        alpha = float(np.clip(alpha, 0.0, 1.0 - 1e-6)) if np.isfinite(alpha) else 0.0
        s = alpha * s1 + (1.0 - alpha) * y
        return s if np.dot(t, s - x) < 0 or descent >= 0 else y

    def _step(self, state: State, ctx: StepContext | None = None) -> tuple[State, dict[str, float]]:
        net = self.network
        if self._finished(state):
            return state, {"relative_gap": state["relative_gap"], "tstt": state["tstt"]}
        if int(state["iteration"]) == 0:  # all demand on the free-flow shortest paths
            x, _ = self._aon(ctx, net.free_flow_time)
            target, step = x, 1.0
        else:
            target = self._direction(state)
            step = beckmann_line_search(self.bpr, state["flows"], target - state["flows"])
            x = state["flows"] + step * (target - state["flows"])
        t = self.bpr.cost(x)
        y, sptt = self._aon(ctx, t)
        tstt = float(np.dot(x, t))
        gap = 1.0 - sptt / tstt if tstt > 0 else 0.0
        state = {
            "flows": x, "aon": y, "s1": target, "s2": state["s1"], "last_step": step,
            "relative_gap": gap, "tstt": tstt, "iteration": int(state["iteration"]) + 1,
        }  # fmt: skip
        return state, {"relative_gap": gap, "tstt": tstt, "step": step}


class SimplicialDecomposition(StaticUserEquilibrium):
    """Restricted simplicial decomposition (Hearn, Lawphongpanich & Ventura 1987) for the
    static UE: the flows are a convex combination of stored all-or-nothing loads (the
    columns, at most `max_columns`); each iteration adds the newest load as a column, then
    re-balances the weights on the stored columns (the master problem) before the next
    all-or-nothing load. The master is solved like a path-based step with the columns as
    paths: all columns move weight toward the cheapest one at once, (g_j - g_best) /
    ((y_best - y_j)' diag(t') (y_best - y_j)) of it (Newton, clipped to the weight held),
    scaled by an exact Beckmann line search; at most `master_moves` moves, fewer once the
    excess cost sum_j w_j (g_j - g_best) is below `master_tolerance` x the last gap x TSTT.
    A full column store drops its oldest unused column, else restarts from the current
    flows as one column. Same shards and all-or-nothing loads as the Frank-Wolfe family
    (one per iteration), so identical for 1 and N workers.

    State: flows `[L]`, aon `[L]` (all-or-nothing load at their costs: the next column),
    columns `[k, L]`, weights `[k]`, relative_gap, tstt, iteration.
    """

    max_columns = 30
    master_moves = 30
    master_tolerance = 0.05

    def __init__(self, network: Network, max_iterations: int = 200, target_gap: float = 0.0):
        super().__init__(network, max_iterations=max_iterations, target_gap=target_gap, mode="frank_wolfe")

    def init(self, seed: int) -> State:
        zeros = np.zeros(self.network.num_links)
        return {
            "flows": zeros, "aon": zeros, "columns": np.zeros((0, len(zeros))), "weights": np.zeros(0),
            "relative_gap": 1.0, "tstt": 0.0, "iteration": 0,
        }  # fmt: skip

    def _add_column(self, cols: np.ndarray, w: np.ndarray, y: np.ndarray, x: np.ndarray):
        if len(cols) >= self.max_columns:
            unused = np.flatnonzero(w <= 0)
            if len(unused):
                keep = np.ones(len(w), bool)
                keep[unused[0]] = False
                cols, w = cols[keep], w[keep]
            else:  # every column carries weight: restart from the flows as one column
                cols, w = x[None, :], np.ones(1)
        return np.vstack([cols, y[None, :]]), np.append(w, 0.0)

    def _master(self, cols: np.ndarray, w: np.ndarray, last_gap: float) -> tuple[np.ndarray, np.ndarray]:
        """Re-balance the column weights (see the class docstring); returns (weights, flows)."""
        bpr = self.bpr
        w = w / w.sum()
        x = w @ cols
        squares = cols * cols  # (y_b - y_j)^2 . t' = y_b^2 . t' - 2 y_j . (y_b t') + y_j^2 . t'
        for _ in range(self.master_moves):
            t, slope = bpr.cost_and_slope(x)
            g = cols @ t
            best = int(np.argmin(g))
            excess = float(np.dot(w, g) - g[best])
            if excess <= self.master_tolerance * last_gap * float(np.dot(x, t)):
                break
            act = np.flatnonzero(w > 0)
            act = act[act != best]
            if not len(act):
                break
            sq = squares @ slope
            curv = (sq[act] + sq[best]) - 2.0 * (cols @ (cols[best] * slope))[act]
            with np.errstate(divide="ignore", invalid="ignore"):
                shift = np.where(curv > 0, np.minimum(w[act], (g[act] - g[best]) / curv), w[act])
            dw = np.zeros(len(w))
            dw[act] = -shift
            dw[best] = shift.sum()
            d = dw @ cols
            step = beckmann_line_search(bpr, x, d)
            if step <= 0:
                break
            w = np.maximum(w + step * dw, 0.0)
            x = x + step * d
        return w, x

    def _step(self, state: State, ctx: StepContext | None = None) -> tuple[State, dict[str, float]]:
        if self._finished(state):
            return state, {"relative_gap": state["relative_gap"], "tstt": state["tstt"]}
        if int(state["iteration"]) == 0:  # all demand on the free-flow shortest paths
            x, _ = self._aon(ctx, self.network.free_flow_time)
            cols, w = x[None, :], np.ones(1)
        else:
            cols, w = self._add_column(state["columns"], state["weights"], state["aon"], state["flows"])
            w, x = self._master(cols, w, float(state["relative_gap"]))
        t = self.bpr.cost(x)
        y, sptt = self._aon(ctx, t)
        tstt = float(np.dot(x, t))
        gap = 1.0 - sptt / tstt if tstt > 0 else 0.0
        state = {
            "flows": x, "aon": y, "columns": cols, "weights": w,
            "relative_gap": gap, "tstt": tstt, "iteration": int(state["iteration"]) + 1,
        }  # fmt: skip
        return state, {"relative_gap": gap, "tstt": tstt, "columns": float(len(w))}


@dataclass(frozen=True)
class _OriginPaths:
    """The multi-path OD pairs of one origin, fixed for one step.

    paths `[p]` (indices into the path arrays, sorted by OD pair); entry_path `[e]`,
    entry_u `[e]` (path and local link of each path-link entry); ulinks `[u]` (the links
    used) with their BPR parameters fft, ct, cap, pw `[u]`; group_start (first path of each
    OD pair), group `[p]` (OD pair of each path).
    """

    paths: np.ndarray
    entry_path: np.ndarray
    entry_u: np.ndarray
    ulinks: np.ndarray
    fft: np.ndarray
    ct: np.ndarray
    cap: np.ndarray
    pw: np.ndarray
    group_start: np.ndarray
    group: np.ndarray


def _line_search_on(blk: _OriginPaths, x: np.ndarray, d: np.ndarray, iters: int = 8) -> float:
    """Step in [0, 1] minimising the Beckmann objective along x + a d on the links of `blk`
    (x, d: their flows and direction): Illinois regula falsi on its slope."""

    def slope(a: float) -> float:
        return float(np.dot(blk.fft + blk.ct * (np.maximum(x + a * d, 0.0) / blk.cap) ** blk.pw, d))

    g1 = slope(1.0)
    if g1 <= 0:
        return 1.0
    a0, g0, a1 = 0.0, slope(0.0), 1.0
    if g0 >= 0:
        return 0.0
    side = 0
    for _ in range(iters):
        a = (a0 * g1 - a1 * g0) / (g1 - g0)
        g = slope(a)
        if g > 0:
            a1, g1 = a, g
            if side == -1:
                g0 *= 0.5
            side = -1
        else:
            a0, g0 = a, g
            if side == 1:
                g1 *= 0.5
            side = 1
        if a1 - a0 < 1e-6:
            break
    return a0  # the slope is still <= 0 there: the objective has not started to rise


class PathGradientProjection(_StaticUEBase):
    """Path-based UE by projected Newton steps (Jayakrishnan et al. 1994) on path sets held
    in arrays (CSR rows of link ids); Python loops over origins, never over OD pairs.

    One step: (1) Gauss-Seidel sweeps over the origins on the current path sets: all OD
    pairs of one origin at once move (c_p - c_s) / (sum_{l in p} t'_l + sum_{l in s} t'_l)
    of each path's flow to the cheapest path s of the pair (links shared by p and s count
    twice: an upper bound on the exact curvature, which damps the simultaneous moves of one
    origin's pairs), scaled by an exact Beckmann line search on the links they touch, and
    the link flows are updated before the next origin. After the first sweep only origins
    whose excess cost is above their share of the target move; the sweeps stop once the
    excess on the path sets, sum_p f_p (c_p - c_min), is at most `inner_tolerance` x the last
    relative gap x TSTT, or after `inner_iterations` sweeps. (2) Dijkstra at the new costs,
    one shard per block of origins through `ctx.shards.map`: gives the relative gap, and
    every shortest path cheaper than the known paths of its OD pair joins the set with zero
    flow. Paths left with zero flow are dropped.

    State (paths sorted by OD pair): path_ptr `[P + 1]`, path_links `[path_ptr[-1]]` (link
    ids, CSR rows), path_od `[P]`, path_flow `[P]`, flows `[L]`, relative_gap, tstt,
    iteration (0: no paths yet; the first step loads the free-flow shortest paths).
    """

    def __init__(
        self,
        network: Network,
        max_iterations: int = 200,
        target_gap: float = 0.0,
        inner_iterations: int = 10,
        inner_tolerance: float = 0.1,
    ):
        self.network = network
        self.max_iterations = max_iterations
        self.target_gap = target_gap
        self.inner_iterations = inner_iterations
        self.inner_tolerance = inner_tolerance
        self.graph = shortest_path_graph(network)

    def init(self, seed: int) -> State:
        return {
            "path_ptr": np.zeros(1, np.int64),
            "path_links": np.zeros(0, np.int32),
            "path_od": np.zeros(0, np.int32),
            "path_flow": np.zeros(0),
            "flows": np.zeros(self.network.num_links),
            "relative_gap": 1.0,
            "tstt": 0.0,
            "iteration": 0,
        }

    # -- shortest paths through the shard runner

    def _shortest_paths(
        self, ctx: StepContext | None, costs: np.ndarray, best: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(sp cost `[K]`, new-path OD `[N]`, new-path ptr `[N + 1]`, new-path links)."""
        runner, num_shards, seed, it = _runner(self.network, ctx)
        blocks = origin_blocks(len(self.graph.sources), num_shards)
        tasks = make_shard_tasks(seed, it, len(blocks), blocks)
        batches = runner.map(shortest_path_shard, tasks, {"costs": costs, "best": best})
        od = _column(batches, "od").to_numpy()
        cost = np.empty(self.graph.num_od)
        cost[od] = _column(batches, "cost").to_numpy()
        paths = _column(batches, "path")
        offsets = paths.offsets.to_numpy().astype(np.int64)
        links = paths.flatten().to_numpy(zero_copy_only=False).astype(np.int32)  # only new paths are non-empty
        lengths = np.diff(offsets)
        new = lengths > 0
        return cost, od[new], np.concatenate([[0], np.cumsum(lengths[new])]), links

    # -- path sets

    def _incidence(self, ptr: np.ndarray, links: np.ndarray) -> csr_matrix:
        p = len(ptr) - 1
        return csr_matrix((np.ones(len(links)), links, ptr), shape=(p, self.network.num_links))

    def _origin_blocks(self, ptr: np.ndarray, links: np.ndarray, od: np.ndarray) -> list[_OriginPaths]:
        """The multi-path OD pairs of each origin, as arrays for `_equilibrate_origin`
        (built origin by origin, so the temporaries stay the size of one origin's paths)."""
        net, num_links = self.network, self.network.num_links
        counts = np.bincount(od, minlength=self.graph.num_od)
        paths = np.flatnonzero(counts[od] > 1)  # single-path OD pairs cannot move
        if not len(paths):
            return []
        n = np.diff(ptr)[paths]
        row = self.graph.od_row[od[paths]]  # origin of each path (sorted)
        pod = od[paths]
        new_group = np.r_[True, pod[1:] != pod[:-1]]
        group = np.cumsum(new_group) - 1
        cut = np.flatnonzero(np.r_[True, row[1:] != row[:-1], True])
        used = np.zeros(num_links, bool)
        local = np.zeros(num_links, np.int32)
        blocks = []
        for a, b in zip(cut[:-1], cut[1:], strict=True):
            na = n[a:b]
            first = ptr[paths[a:b]]
            offsets = np.concatenate([[0], np.cumsum(na)[:-1]])
            el = links[np.repeat(first - offsets, na) + np.arange(int(na.sum()))]
            used[el] = True
            ul = np.flatnonzero(used)
            used[ul] = False
            local[ul] = np.arange(len(ul), dtype=np.int32)
            blocks.append(
                _OriginPaths(
                    paths[a:b],
                    np.repeat(np.arange(b - a, dtype=np.int32), na),
                    local[el],
                    ul,
                    net.free_flow_time[ul],
                    net.congestion_time[ul],
                    net.capacity[ul],
                    net.power[ul],
                    np.flatnonzero(new_group[a:b]),
                    group[a:b] - group[a],
                )
            )
        return blocks

    def _equilibrate_origin(self, blk: _OriginPaths, f: np.ndarray, x: np.ndarray) -> float:
        """One projected Newton move of one origin's path flows (in place on f and x), with
        an exact line search on the links it touches; returns its excess cost before the move."""
        u = blk.ulinks
        xu = x[u]
        ratio = np.maximum(xu, 0.0) / blk.cap
        tu = blk.fft + blk.ct * ratio**blk.pw
        with np.errstate(divide="ignore", invalid="ignore"):
            dtu = blk.ct * blk.pw * ratio ** (blk.pw - 1.0) / blk.cap
        dtu[~np.isfinite(dtu)] = 0.0
        np_ = len(blk.paths)
        fp = f[blk.paths]
        c = np.bincount(blk.entry_path, weights=tu[blk.entry_u], minlength=np_)
        cmin = np.minimum.reduceat(c, blk.group_start)
        positions = np.arange(np_)
        s = np.minimum.reduceat(np.where(c <= cmin[blk.group], positions, np_), blk.group_start)[blk.group]
        excess = float(np.dot(fp, c - c[s]))
        if excess <= 0:
            return 0.0
        slope = np.bincount(blk.entry_path, weights=dtu[blk.entry_u], minlength=np_)
        h = slope + slope[s]  # >= the curvature along p -> s (links shared by p and s count twice)
        with np.errstate(divide="ignore", invalid="ignore"):
            shift = np.where(h > 0, np.clip((c - c[s]) / h, 0.0, fp), np.where(c > c[s], fp, 0.0))
        shift[positions == s] = 0.0
        df = np.bincount(s, weights=shift, minlength=np_) - shift
        du = np.bincount(blk.entry_u, weights=df[blk.entry_path], minlength=len(u))
        step = _line_search_on(blk, xu, du)
        f[blk.paths] = np.maximum(fp + step * df, 0.0)
        x[u] = np.maximum(xu + step * du, 0.0)
        return excess

    def _equilibrate(self, ptr, links, od, f, last_gap) -> tuple[np.ndarray, int]:
        """Gauss-Seidel sweeps over origins on fixed path sets; returns (path flows, sweeps).

        The sweeps end once the excess cost on the path sets (sum_p f_p (c_p - c_min)) is
        at most `inner_tolerance` x the last relative gap x TSTT. After the first sweep only
        origins whose excess is above their share of that target (target / origins) move.
        """
        blocks = self._origin_blocks(ptr, links, od)
        f = f.copy()
        x = self._incidence(ptr, links).T @ f
        if not blocks:
            return f, 0
        target = self.inner_tolerance * last_gap * float(np.dot(x, link_cost(self.network, x)))
        excess = np.full(len(blocks), np.inf)
        sweeps = 0
        while sweeps < self.inner_iterations and excess.sum() > target:
            for i in np.flatnonzero(excess > target / len(blocks)):
                excess[i] = self._equilibrate_origin(blocks[i], f, x)
            sweeps += 1
        return f, sweeps

    def _step(self, state: State, ctx: StepContext | None = None) -> tuple[State, dict[str, float]]:
        net, graph = self.network, self.graph
        if self._finished(state):
            return state, {"relative_gap": state["relative_gap"], "tstt": state["tstt"]}
        ptr, links, od, f = state["path_ptr"], state["path_links"], state["path_od"], state["path_flow"]
        sweeps = 0
        if graph.num_od == 0:  # no demand: the empty assignment is the equilibrium
            state = {**state, "relative_gap": 0.0, "tstt": 0.0, "iteration": int(state["iteration"]) + 1}
            return state, {"relative_gap": 0.0, "tstt": 0.0, "paths": 0.0, "sweeps": 0.0}
        if len(od) == 0:  # first step: all demand on the free-flow shortest paths
            _, od, ptr, links = self._shortest_paths(ctx, net.free_flow_time, None)
            f = graph.od_flow[od].copy()
        else:
            f, sweeps = self._equilibrate(ptr, links, od, f, float(state["relative_gap"]))
        # drop paths without flow, then add the shortest paths at the new costs
        used = f > 0
        lengths = np.diff(ptr)[used]
        links = links[np.repeat(used, np.diff(ptr))]
        ptr, od, f = np.concatenate([[0], np.cumsum(lengths)]), od[used], f[used]
        inc = self._incidence(ptr, links)
        x = inc.T @ f
        t = link_cost(net, x)
        c = inc @ t
        best = np.full(graph.num_od, np.inf)
        np.minimum.at(best, od, c)
        sp, new_od, new_ptr, new_links = self._shortest_paths(ctx, t, best)
        gap, tstt = gap_and_tstt(net, x, float(np.dot(graph.od_flow, sp)))
        if len(new_od):
            all_od = np.concatenate([od, new_od])
            order = np.argsort(all_od, kind="stable")
            all_len = np.concatenate([np.diff(ptr), np.diff(new_ptr)])
            all_start = np.concatenate([ptr[:-1], len(links) + new_ptr[:-1]])
            pool = np.concatenate([links, new_links])
            lengths = all_len[order]
            ptr = np.concatenate([[0], np.cumsum(lengths)])
            gather = np.repeat(all_start[order] - ptr[:-1], lengths) + np.arange(ptr[-1])
            links = pool[gather]
            od = all_od[order]
            f = np.concatenate([f, np.zeros(len(new_od))])[order]
        iteration = int(state["iteration"]) + 1
        state = {
            "path_ptr": ptr.astype(np.int64),
            "path_links": links.astype(np.int32),
            "path_od": od.astype(np.int32),
            "path_flow": f,
            "flows": x,
            "relative_gap": gap,
            "tstt": tstt,
            "iteration": iteration,
        }
        return state, {"relative_gap": gap, "tstt": tstt, "paths": float(len(od)), "sweeps": float(sweeps)}


METHODS = (
    "auto", "gradient_projection", "simplicial_decomposition", "biconjugate_frank_wolfe", "conjugate_frank_wolfe",
    "frank_wolfe",
)  # fmt: skip
AUTO_PATH_MAX_OD = 250_000  # `auto`: path sets for at most this many OD pairs, simplicial decomposition above


def auto_method(network: Network) -> str:
    """`auto`'s choice: gradient_projection (few iterations, path sets in memory) for at most
    AUTO_PATH_MAX_OD OD pairs with demand, simplicial_decomposition (work per origin, not per
    OD pair and path) for denser demand."""
    num_od = int(np.count_nonzero(network.demand.flow > 0))
    return "gradient_projection" if num_od <= AUTO_PATH_MAX_OD else "simplicial_decomposition"


def make_solver(
    network: Network,
    method: str = "auto",
    max_iterations: int = 200,
    target_gap: float = 0.0,
    inner_iterations: int = 10,
    inner_tolerance: float = 0.1,
):
    """The static UE solver named `method` (one of METHODS; `auto`: see `auto_method`)."""
    if method == "auto":
        method = auto_method(network)
    if method == "gradient_projection":
        return PathGradientProjection(network, max_iterations, target_gap, inner_iterations, inner_tolerance)
    if method == "simplicial_decomposition":
        return SimplicialDecomposition(network, max_iterations=max_iterations, target_gap=target_gap)
    modes = {
        "biconjugate_frank_wolfe": "biconjugate",
        "conjugate_frank_wolfe": "conjugate",
        "frank_wolfe": "frank_wolfe",
    }
    if method in modes:
        return StaticUserEquilibrium(network, max_iterations=max_iterations, target_gap=target_gap, mode=modes[method])
    raise ValueError(f"unknown static UE method {method!r} (one of {', '.join(METHODS)})")


def solve_user_equilibrium(
    network: Network, target_gap: float = 1e-4, max_iterations: int = 10_000, method: str = "auto"
) -> State:
    """Run a solver to `target_gap` (or `max_iterations`) in this process; returns the state."""
    solver = make_solver(network, method, max_iterations=max_iterations, target_gap=target_gap)
    state = solver.init(0)
    while solver.should_stop(state, {}) is None:
        state, _ = solver.step(state)
    return state
