"""Fictitious play over routes for the N-player dynamic routing game, sampled over shards.

Vehicles of one OD row (same origin, destination and departure step) form a class and
share one mixed strategy over a small pool of routes of their OD pair: the average of the
class's past best responses. One step:

1. every shard samples `games_per_shard` joint route profiles from the strategies with its
   own rng, plays them in the batch simulator and returns one Arrow row per game: the
   entrant counts n_g(t, l) (vehicles on link l during step t, as the simulator counts
   them for a vehicle entering l at t), each vehicle's travel time, and the trajectory of
   one representative vehicle per class (its sampled pool slot, the entry and exit step of
   each hop);
2. a vehicle of class c deviating to route r faces the *others* of game g: the counts
   minus the representative's own presence, own_gc(t, l) in {0, 1} (not the mean
   occupancy plus one, which counts the deviator twice where it already is: at N = 2 on
   Pigou it made a shared x link look 1.5 vehicles long). Its table of expected link
   steps, mean over games of k_l(n_g(t, l) - own_gc(t, l) + 1), gives by a time-dependent
   shortest path (backward DP over steps) one fresh candidate route per class;
3. the candidates of a class (its pool routes and the fresh one) are costed against the
   others' mixed strategies, mean over the sampled games of either
   - `simulate` (small games, `deviations="auto"` below SIMULATED_DEVIATION_BUDGET): the
     same games played again on the shards with the representative on the candidate
     (`deviation_shard`): exact in expectation;
   - `replay` (large games): the candidate walked through the game's counts with its own
     presence removed (`replay_costs`). It holds the others' timings fixed: exact when a
     deviation cannot change when they reach a link the deviator uses later (parallel
     links, as Pigou; the representative's own route always), off by the deviator's
     effect on them otherwise, which shrinks as 1/N;
   the best response is the candidate of least expected cost (ties: the route the class
   plays most); it joins the pool and the class strategy moves to it with weight
   1 / (iteration + 2).

Metrics: avg_travel_time (mean realised cost over sampled games and vehicles, time units);
exploitability = mean over vehicles of (expected cost of its class's strategy - that of
its best candidate), both from the same sampled games and estimator: the gain of the best
unilateral deviation (checked against an exact enumeration at N = 2 - 4);
max_regret (its maximum over classes); num_routes (routes in all pools).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from gamescale.algorithms.base import LearnerSpec, ShardTask, State, StepContext
from gamescale.envs.routing.dynamic import DynamicRoutingGame, SimState, link_steps

_INF = 1 << 40  # "never": keeps _INF * (L + 1) inside int64
# deviations="auto" simulates the deviated games when classes x (max_routes_per_od + 1)
# candidates x vehicles is at most this (each sampled game is then played up to that many
# vehicle-times again); decided once per game, so a run never switches estimators
SIMULATED_DEVIATION_BUDGET = 4096


def game_of(env: Any) -> DynamicRoutingGame:
    return env if isinstance(env, DynamicRoutingGame) else env.game


def class_representatives(game: DynamicRoutingGame) -> tuple[np.ndarray, np.ndarray]:
    """(classes `[C]`: the OD rows that have vehicles, rep `[C]`: the first vehicle of each).
    Vehicles are apportioned to OD rows in row order, so `od_row` is sorted."""
    rep = np.flatnonzero(np.diff(game.od_row, prepend=-1) != 0)
    return game.od_row[rep].astype(np.int64), rep


def sample_slots(probs: np.ndarray, num_games: int, rng) -> np.ndarray:
    """Pool slots `[G, N]` sampled per vehicle from `probs` `[N, K]`."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random((num_games, probs.shape[0], 1)) * cum[None, :, -1:]
    return np.minimum((u > cum[None]).sum(axis=2), probs.shape[1] - 1)


def sample_routes(game: DynamicRoutingGame, routes: np.ndarray, probs: np.ndarray, num_games: int, rng) -> np.ndarray:
    """Route links `[G, N, M]` sampled per vehicle from `probs` `[N, K]` over `routes` `[OD, K, M]`."""
    return routes[game.od_row[None, :], sample_slots(probs, num_games, rng)]


def play_routes(game: DynamicRoutingGame, routes: np.ndarray) -> tuple[SimState, np.ndarray]:
    """Play G games where vehicle i follows `routes[g, i]` (link ids `[G, N, M]`, -1
    padded). Returns (final state, entry `[G, N, M]`: the step each hop's link was entered,
    -1 if never). Steps in which nothing but waiting happens are skipped in one go."""
    state = game.reset(routes.shape[0])
    entry = np.full(routes.shape, -1, np.int32)
    m = routes.shape[2]
    while not game.done(state):
        state = game.skip_quiet_steps(state)
        if game.done(state):
            break
        hop = np.minimum(state.hops, m - 1)
        actions = np.take_along_axis(routes, hop[..., None], axis=2)[..., 0]
        new = game.step(state, actions)
        g, i = np.nonzero(new.hops > state.hops)
        entry[g, i, state.hops[g, i]] = state.time
        state = new
    return state, entry


def hop_exits(entry: np.ndarray, arrival_step: np.ndarray, horizon: int) -> np.ndarray:
    """Step each hop's link was left `[G, N, M]` (-1 where not entered): the next hop's entry,
    the arrival step after the last hop, the horizon if still on it. A vehicle is on the
    link (counted by entrants) during steps entry .. exit - 1."""
    nxt = np.concatenate([entry[..., 1:], np.full(entry.shape[:-1] + (1,), -1, entry.dtype)], axis=-1)
    last = np.where(arrival_step >= 0, arrival_step, horizon)[..., None]
    return np.where(entry < 0, -1, np.where(nxt >= 0, nxt, last)).astype(np.int32)


def entrant_counts(
    game: DynamicRoutingGame, links: np.ndarray, entry: np.ndarray, exit_step: np.ndarray
) -> np.ndarray:
    """Vehicles on each link during each step `[G, T, L]` (float64), from the hops' links,
    entries and exits `[G, N, M]`: what a vehicle entering link l at step t counts besides
    itself if it is not already among them (the simulator's n_l before arrivals)."""
    G, T, L = links.shape[0], game.horizon, game.network.num_links
    on = entry >= 0
    g = np.broadcast_to(np.arange(G)[:, None, None], links.shape)[on]
    lk, start, stop = links[on].astype(np.int64), entry[on].astype(np.int64), exit_step[on].astype(np.int64)
    flat = np.concatenate([(g * (T + 1) + start) * L + lk, (g * (T + 1) + stop) * L + lk])
    sign = np.concatenate([np.ones(len(lk)), -np.ones(len(lk))])
    diff = np.bincount(flat, weights=sign, minlength=G * (T + 1) * L).reshape(G, T + 1, L)
    return np.cumsum(diff, axis=1)[:, :T]


def simulate_shard(env: Any, shared: dict[str, Any], task: ShardTask) -> pa.RecordBatch:
    """Shard function: play `shared["games"]` sampled games; one row per game with the
    entrant counts `[T * L]`, travel times `[N]` and, per class representative `[C]`, its
    pool slot and the entry / exit step of each hop `[C * M]`."""
    game = game_of(env)
    rng = task.rng()
    slots = sample_slots(shared["probs"], int(shared["games"]), rng)
    chosen = shared["routes"][game.od_row[None, :], slots]
    final, entry = play_routes(game, chosen)
    exits = hop_exits(entry, final.arrival_step, game.horizon)
    counts = entrant_counts(game, chosen, entry, exits).astype(np.float32)
    tt = game.travel_time(final).astype(np.float32)
    _, rep = class_representatives(game)
    g = tt.shape[0]

    def column(a: np.ndarray) -> pa.Array:
        flat = a.reshape(g, -1)
        return pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), flat.shape[1])

    return pa.RecordBatch.from_arrays(
        [
            pa.array(np.full(g, task.index, np.int32)),
            column(counts),
            column(tt),
            column(slots[:, rep].astype(np.int32)),
            column(entry[:, rep]),
            column(exits[:, rep]),
        ],
        names=["shard", "counts", "travel_time", "rep_slot", "rep_entry", "rep_exit"],
    )


def deviation_shard(env: Any, shared: dict[str, Any], task: ShardTask) -> pa.RecordBatch:
    """Shard function: the games of `simulate_shard` for the same task (same draws), each
    played again once per pair (class `shared["pair_class"]` `[P]`, route
    `shared["pair_route"]` `[P, M]`) with the class representative on that route; one row
    per game with the representative's cost per pair `[P]`."""
    game = game_of(env)
    slots = sample_slots(shared["probs"], int(shared["games"]), task.rng())
    chosen = shared["routes"][game.od_row[None, :], slots]  # [G, N, M]
    _, rep = class_representatives(game)
    who = rep[shared["pair_class"]]
    G, P = chosen.shape[0], len(who)
    played = np.repeat(chosen, P, axis=0)  # [G * P, N, M], game-major
    rows, vehicles = np.arange(G * P), np.tile(who, G)
    played[rows, vehicles] = np.tile(shared["pair_route"], (G, 1))
    final, _ = play_routes(game, played)
    cost = game.travel_time(final)[rows, vehicles].reshape(G, P)
    return pa.RecordBatch.from_arrays(
        [pa.FixedSizeListArray.from_arrays(pa.array(cost.ravel()), P)], names=["deviation_cost"]
    )


def replay_costs(
    game: DynamicRoutingGame,
    counts: np.ndarray,
    own: tuple[np.ndarray, np.ndarray, np.ndarray],
    candidates: np.ndarray,
    departure: np.ndarray,
) -> np.ndarray:
    """Cost `[G, C, R]` (time units) of one vehicle of each class following each candidate
    route `[C, R, M]` (-1 padded) from its departure step `[C]`, against the others of each
    game: `counts` `[G, T, L]` minus its class representative's presence, given by `own` =
    (links, entry, exit) `[G, C, H]`. Late (not arrived by the horizon): late_penalty."""
    T = game.horizon
    own_links, own_entry, own_exit = (a[:, :, None, :] for a in own)  # [G, C, 1, H]
    G, (C, R, M) = counts.shape[0], candidates.shape
    t = np.broadcast_to(departure.astype(np.int64)[None, :, None], (G, C, R)).copy()
    late = np.zeros((G, C, R), bool)
    g_idx = np.arange(G)[:, None, None]
    for h in range(M):
        link = np.broadcast_to(candidates[None, :, :, h], (G, C, R))
        if not (link >= 0).any():
            break
        late |= (link >= 0) & (t >= T)
        go = (link >= 0) & ~late
        lk, tc = np.maximum(link, 0), np.minimum(t, T - 1)
        mine = (own_links == lk[..., None]) & (own_entry <= tc[..., None]) & (tc[..., None] < own_exit)
        others = counts[g_idx, tc, lk] - mine.any(axis=3)
        k = link_steps(game.network, others + 1.0, game.vehicle_weight, game.time_step, lk)
        t = np.where(go, t + k, t)
    late |= t > T
    return np.where(late, game.late_penalty, (t - departure[None, :, None]) * game.time_step)


def class_step_tables(
    game: DynamicRoutingGame, counts: np.ndarray, own: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected steps a vehicle of class c entering link l at step t stays: the mean over
    games of k_l(counts - own + 1), `own` as in `replay_costs`. The own presence is sparse
    (the representative's hops) and, with many vehicles, rarely changes k, so the result
    is (base `[T, L]`: the mean of k_l(counts + 1), classes `[C']`: those it changes,
    their tables `[C', T, L]`)."""
    net, T, L = game.network, game.horizon, game.network.num_links
    G = counts.shape[0]
    base = link_steps(net, counts + 1.0, game.vehicle_weight, game.time_step).mean(axis=0)
    links, entry, exit_step = own
    g, c, h = np.nonzero(entry >= 0)
    start = entry[g, c, h].astype(np.int64)
    length = np.minimum(exit_step[g, c, h], T) - start
    cell = np.repeat(np.arange(len(g)), length)
    offset = np.arange(len(cell)) - np.repeat(np.cumsum(length) - length, length)
    t, lk, cls = start[cell] + offset, links[g, c, h].astype(np.int64)[cell], c[cell]
    n = counts[g[cell], t, lk]
    delta = link_steps(net, n, game.vehicle_weight, game.time_step, lk).astype(np.float64)
    delta -= link_steps(net, n + 1.0, game.vehicle_weight, game.time_step, lk)
    hit = delta != 0
    changed, row = np.unique(cls[hit], return_inverse=True)
    corr = np.bincount((row * T + t[hit]) * L + lk[hit], weights=delta[hit] / G, minlength=len(changed) * T * L)
    return base, changed, base[None] + corr.reshape(len(changed), T, L)


def best_response_tables(
    game: DynamicRoutingGame, steps: np.ndarray, destinations: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Time-dependent shortest paths on link-step tables, one per row.

    steps `[D, T, L]` (int): steps a vehicle entering link l at step t stays, for a vehicle
    heading to destinations `[D]`. Returns arrival `[D, T + 1, n]` (earliest arrival step
    from node v ready at step t; _INF if none by the horizon) and choice `[D, T, n]` (the
    link to take; -1 at the destination / none).
    """
    net = game.network
    T, L, n = game.horizon, net.num_links, net.num_nodes
    D = len(destinations)
    arrival = np.full((D, T + 1, n), _INF, np.int64)
    choice = np.full((D, T, n), -1, np.int64)
    d_idx = np.arange(D)
    arrival[d_idx, :, destinations] = np.arange(T + 1)[None, :]
    has_out = net.out_degree() > 0
    starts = net.out_ptr[:-1][has_out]
    nodes = np.flatnonzero(has_out)
    for t in range(T - 1, -1, -1):
        exit_t = t + steps[:, t].astype(np.int64)  # [D, L]
        reached = arrival[d_idx[:, None], np.minimum(exit_t, T), net.term_node[None, :]]
        cand = np.where(exit_t <= T, reached, _INF)
        key = cand[:, net.out_links] * (L + 1) + np.arange(L)[None, :]
        best = np.minimum.reduceat(key, starts, axis=1)  # [D, nodes with out-links]
        value, pos = best // (L + 1), best % (L + 1)
        upd = (value < _INF) & (nodes[None, :] != destinations[:, None])
        arrival[:, t, nodes] = np.where(upd, value, arrival[:, t, nodes])
        choice[:, t, nodes] = np.where(upd, net.out_links[pos], -1)
    return arrival, choice


def follow_choice(
    game: DynamicRoutingGame,
    steps: np.ndarray,
    choice: np.ndarray,
    row: np.ndarray,
    origin: np.ndarray,
    dep: np.ndarray,
    width: int,
) -> np.ndarray:
    """Routes `[R, width]` (-1 padded) obtained by following `choice[row]` on `steps[row]`
    (`[D, T, n]`, `[D, T, L]`) from (origin, dep) `[R]`."""
    net = game.network
    out = np.full((len(origin), width), -1, np.int32)
    node, t = origin.copy(), dep.astype(np.int64).copy()
    alive = np.ones(len(origin), bool)
    for h in range(width):
        alive &= t < game.horizon
        tc = np.minimum(t, game.horizon - 1)
        link = np.where(alive, choice[row, tc, node], -1)
        alive &= link >= 0
        if not alive.any():
            break
        out[alive, h] = link[alive]
        lk = np.maximum(link, 0)
        t = np.where(alive, t + steps[row, tc, lk], t)
        node = np.where(alive, net.term_node[lk], node)
    return out


class RoutingFictitiousPlay:
    """Fictitious play over route pools (`max_routes_per_od` slots per OD pair).

    State: routes `[OD, K, M]` link ids (-1 padded), route_count `[OD]`, probs `[N, K]`
    (each vehicle's mixed strategy, the same for all vehicles of an OD row), iteration.
    """

    def __init__(self, env: Any, games_per_shard: int = 4, max_routes_per_od: int = 8, deviations: str = "auto"):
        if deviations not in ("auto", "replay", "simulate"):
            raise ValueError(f"deviations must be auto, replay or simulate, got {deviations!r}")
        self.game = game_of(env)
        self.games_per_shard = games_per_shard
        self.max_routes = max_routes_per_od
        self.width = self.game.network.num_nodes + 1
        self.classes, self.rep = class_representatives(self.game)
        d = self.game.network.demand
        self.departure = self.game.departure_step[self.rep].astype(np.int64)  # [C]
        self.origin = d.origin[self.classes].astype(np.int64)
        pairs = len(self.classes) * (max_routes_per_od + 1) * self.game.num_vehicles
        self.simulate = deviations == "simulate" or (deviations == "auto" and pairs <= SIMULATED_DEVIATION_BUDGET)
        self.destination = d.destination[self.classes].astype(np.int64)

    def learner_specs(self) -> dict[str, LearnerSpec]:
        return {}

    def _shortest_routes(self, base: np.ndarray, changed: np.ndarray, tables: np.ndarray) -> np.ndarray:
        """Each class's time-dependent shortest route `[C, width]`: on the shared table
        `base` `[T, L]` (one DP per destination), or on its own table `tables[i]` `[T, L]`
        for the classes `changed[i]`."""
        dest, dest_row = np.unique(self.destination, return_inverse=True)
        row = dest_row.copy()
        row[changed] = len(dest) + np.arange(len(changed))
        steps = np.concatenate([np.broadcast_to(base, (len(dest),) + base.shape), tables])
        steps = np.maximum(1, np.rint(steps)).astype(np.int64)
        _, choice = best_response_tables(self.game, steps, np.concatenate([dest, self.destination[changed]]))
        return follow_choice(self.game, steps, choice, row, self.origin, self.departure, self.width)

    def init(self, seed: int) -> State:
        g = self.game
        num_od = g.network.demand.num_od
        free = link_steps(g.network, np.ones(g.network.num_links), g.vehicle_weight, g.time_step)
        routes = np.full((num_od, self.max_routes, self.width), -1, np.int32)
        base = np.broadcast_to(free.astype(np.float64), (g.horizon, len(free)))
        routes[self.classes, 0] = self._shortest_routes(base, np.zeros(0, np.int64), np.zeros((0,) + base.shape))
        probs = np.zeros((g.num_vehicles, self.max_routes))
        probs[:, 0] = 1.0
        return {"routes": routes, "route_count": np.ones(num_od, np.int32), "probs": probs, "iteration": 0}

    def step(self, state: State, ctx: StepContext) -> tuple[State, dict[str, float]]:
        g, C = self.game, len(self.classes)
        shared = {"routes": state["routes"], "probs": state["probs"], "games": self.games_per_shard}
        table = pa.Table.from_batches(ctx.shards.map(simulate_shard, ctx.shard_tasks(), shared=shared))
        G = table.num_rows

        def column(name: str, dtype) -> np.ndarray:
            return np.asarray(table.column(name).combine_chunks().flatten(), dtype).reshape(G, -1)

        counts = column("counts", np.float64).reshape(G, g.horizon, -1)
        tt = column("travel_time", np.float64)
        rep_slot = column("rep_slot", np.int64)
        own_links = state["routes"][self.classes[None, :], rep_slot]  # [G, C, M]
        hops = max(1, int((own_links >= 0).sum(axis=2).max()))
        own = (
            own_links[..., :hops],
            column("rep_entry", np.int64).reshape(G, C, -1)[..., :hops],
            column("rep_exit", np.int64).reshape(G, C, -1)[..., :hops],
        )

        pools, count = state["routes"][self.classes], state["route_count"][self.classes]
        fresh = self._shortest_routes(*class_step_tables(g, counts, own))  # [C, M]
        K = pools.shape[1]
        in_pool = np.arange(K)[None, :] < count[:, None]  # [C, K]
        known = (np.all(pools == fresh[:, None], axis=2) & in_pool).any(axis=1)
        candidates = np.concatenate([pools, fresh[:, None]], axis=1)  # [C, K + 1, M]
        valid = np.concatenate([in_pool, ~known[:, None]], axis=1)
        cost = self._candidate_costs(counts, own, candidates, valid, shared, ctx)  # [C, K + 1], inf: not a candidate
        best = cost.min(axis=1)
        play = state["probs"][self.rep]  # [C, K]
        expected = (play * np.where(in_pool, cost[:, :K], 0.0)).sum(axis=1)
        regret = np.maximum(expected - best, 0.0)
        # ties: the route the class plays most (the fresh route only if strictly better)
        tied = cost <= best[:, None] + 1e-9 * np.maximum(1.0, np.abs(best[:, None]))
        pick = np.argmax(np.where(tied, np.concatenate([play, np.full((C, 1), -1.0)], axis=1), -2.0), axis=1)
        class_size = np.bincount(g.od_row, minlength=g.network.demand.num_od)[self.classes]

        routes, route_count = state["routes"].copy(), state["route_count"].copy()
        slot = np.zeros(g.network.demand.num_od, np.int64)
        for c, od in enumerate(self.classes):
            slot[od] = pick[c] if pick[c] < K else self._place(routes, route_count, state["probs"], od, fresh[c])
        k = int(state["iteration"]) + 1
        probs = state["probs"] * (k / (k + 1.0))
        probs[np.arange(g.num_vehicles), slot[g.od_row]] += 1.0 / (k + 1.0)
        new_state = {"routes": routes, "route_count": route_count, "probs": probs, "iteration": k}
        metrics = {
            "avg_travel_time": float(tt.mean()),
            "exploitability": float(regret @ class_size / g.num_vehicles),
            "max_regret": float(regret.max()),
            "num_routes": float(route_count.sum()),
        }
        return new_state, metrics

    def _candidate_costs(
        self,
        counts: np.ndarray,
        own: tuple[np.ndarray, np.ndarray, np.ndarray],
        candidates: np.ndarray,
        valid: np.ndarray,
        shared: dict[str, Any],
        ctx: StepContext,
    ) -> np.ndarray:
        """Expected cost `[C, R]` of one vehicle of each class on each candidate route
        `[C, R, M]` against the others (inf where not `valid`): by simulating the deviated
        games on the shards (`self.simulate`), else by `replay_costs`."""
        pair_class, pair_slot = np.nonzero(valid)
        cost = np.full(valid.shape, np.inf)
        if self.simulate:
            extra = {"pair_class": pair_class, "pair_route": candidates[pair_class, pair_slot]}
            table = pa.Table.from_batches(ctx.shards.map(deviation_shard, ctx.shard_tasks(), shared={**shared, **extra}))
            sampled = np.asarray(table.column("deviation_cost").combine_chunks().flatten(), np.float64)
            cost[pair_class, pair_slot] = sampled.reshape(table.num_rows, -1).mean(axis=0)
            return cost
        width = max(1, int((candidates >= 0).sum(axis=2).max()))
        replayed = replay_costs(self.game, counts, own, candidates[..., :width], self.departure).mean(axis=0)
        return np.where(valid, replayed, np.inf)

    def _place(self, routes: np.ndarray, count: np.ndarray, probs: np.ndarray, od: int, route: np.ndarray) -> int:
        """Pool slot of `route` in OD row `od` (added; when the pool is full it replaces the
        route its vehicles used least). Updates `routes` and `count` in place."""
        same = np.flatnonzero(np.all(routes[od, : count[od]] == route, axis=1))
        if len(same):
            return int(same[0])
        if count[od] < routes.shape[1]:
            routes[od, count[od]] = route
            count[od] += 1
            return int(count[od] - 1)
        slot = int(np.argmin(probs[self.game.od_row == od].sum(axis=0)[: count[od]]))
        routes[od, slot] = route
        return slot

    def summary(self, state: State) -> dict[str, Any]:
        return {"num_routes": int(state["route_count"].sum()), "iterations": int(state["iteration"])}
