"""Fictitious play over routes for the N-player dynamic routing game, sampled over shards.

Each vehicle holds a mixed strategy over a small pool of routes of its OD pair (the
average of its past best responses). One step:

1. every shard samples `games_per_shard` joint route profiles from the strategies with its
   own rng, plays them in the batch simulator and returns one Arrow row per game
   (occupancy trace `[horizon * L]`, per-vehicle travel time `[N]`);
2. from the mean occupancy n(t, l) the learner builds the link-time table a deviating
   vehicle would face, k(t, l) = link_steps(n(t, l) + 1), and solves a time-dependent
   shortest path (backward DP over steps) for every destination;
3. each vehicle's best response (a route from its origin at its departure step) joins the
   pool, and its strategy moves to it with weight 1 / (iteration + 2).

Metrics: avg_travel_time (mean realised cost over sampled games and vehicles, time units)
and exploitability = mean over vehicles of (realised mean cost - best-response cost), the
empirical regret of unilateral deviation; the "+1" treats the deviator as an extra vehicle,
an O(1/N) approximation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from gamescale.algorithms.base import LearnerSpec, ShardTask, State, StepContext
from gamescale.envs.routing.dynamic import DynamicRoutingGame, link_steps

_INF = 1 << 40  # "never": keeps _INF * (L + 1) inside int64


def game_of(env: Any) -> DynamicRoutingGame:
    return env if isinstance(env, DynamicRoutingGame) else env.game


def sample_routes(game: DynamicRoutingGame, routes: np.ndarray, probs: np.ndarray, num_games: int, rng) -> np.ndarray:
    """Route links `[G, N, M]` sampled per vehicle from `probs` `[N, K]` over `routes` `[OD, K, M]`."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random((num_games, probs.shape[0], 1)) * cum[None, :, -1:]
    slot = np.minimum((u > cum[None]).sum(axis=2), probs.shape[1] - 1)
    return routes[game.od_row[None, :], slot]


def simulate_shard(env: Any, shared: dict[str, Any], task: ShardTask) -> pa.RecordBatch:
    """Shard function: play `shared["games"]` sampled games; one row per game."""
    game = game_of(env)
    rng = task.rng()
    chosen = sample_routes(game, shared["routes"], shared["probs"], int(shared["games"]), rng)
    state, trace = game.simulate_routes(chosen)
    tt = game.travel_time(state).astype(np.float32)
    g = tt.shape[0]
    occ = trace.reshape(g, -1).astype(np.float32)
    return pa.RecordBatch.from_arrays(
        [
            pa.array(np.full(g, task.index, np.int32)),
            pa.FixedSizeListArray.from_arrays(pa.array(occ.ravel()), occ.shape[1]),
            pa.FixedSizeListArray.from_arrays(pa.array(tt.ravel()), tt.shape[1]),
        ],
        names=["shard", "occupancy", "travel_time"],
    )


def best_response_tables(
    game: DynamicRoutingGame, steps: np.ndarray, destinations: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Time-dependent shortest paths to each destination on a link-time table.

    steps `[T, L]`: steps a vehicle entering link l at step t stays. Returns arrival
    `[D, T + 1, n]` (earliest arrival step from node v ready at step t; _INF if none by
    the horizon) and choice `[D, T, n]` (the link to take; -1 at the destination / none).
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
    for t in range(T - 1, -1, -1):
        exit_t = t + steps[t]  # [L]
        reach = exit_t <= T
        cand = np.full((D, L), _INF, np.int64)
        cand[:, reach] = arrival[:, exit_t[reach], net.term_node[reach]]
        key = cand[:, net.out_links] * (L + 1) + np.arange(L)[None, :]
        best = np.minimum.reduceat(key, starts, axis=1)  # [D, nodes with out-links]
        value, pos = best // (L + 1), best % (L + 1)
        nodes = np.flatnonzero(has_out)
        ok = value < _INF
        arr_t = arrival[:, t, :]
        ch_t = choice[:, t, :]
        upd = ok & (nodes[None, :] != destinations[:, None])
        arr_t[:, nodes] = np.where(upd, value, arr_t[:, nodes])
        ch_t[:, nodes] = np.where(upd, net.out_links[pos], -1)
    return arrival, choice


def follow_choice(
    game: DynamicRoutingGame,
    steps: np.ndarray,
    choice: np.ndarray,
    dest_row: np.ndarray,
    origin: np.ndarray,
    dep: np.ndarray,
    width: int,
) -> np.ndarray:
    """Routes `[R, width]` (-1 padded) obtained by following `choice` from (origin, dep)."""
    net = game.network
    R = len(origin)
    out = np.full((R, width), -1, np.int32)
    node, t = origin.copy(), dep.astype(np.int64).copy()
    alive = np.ones(R, bool)
    for h in range(width):
        alive &= t < game.horizon
        link = np.where(alive, choice[dest_row, np.minimum(t, game.horizon - 1), node], -1)
        alive &= link >= 0
        if not alive.any():
            break
        out[alive, h] = link[alive]
        t = np.where(alive, t + steps[np.minimum(t, game.horizon - 1), np.maximum(link, 0)], t)
        node = np.where(alive, net.term_node[np.maximum(link, 0)], node)
    return out


class RoutingFictitiousPlay:
    """Fictitious play over route pools (`max_routes_per_od` slots per OD pair).

    State: routes `[OD, K, M]` link ids (-1 padded), route_count `[OD]`, probs `[N, K]`
    (each vehicle's mixed strategy), iteration.
    """

    def __init__(self, env: Any, games_per_shard: int = 4, max_routes_per_od: int = 8):
        self.game = game_of(env)
        self.games_per_shard = games_per_shard
        self.max_routes = max_routes_per_od
        net = self.game.network
        self.width = net.num_nodes + 1
        self.destinations, self.dest_row_of_od = np.unique(net.demand.destination, return_inverse=True)

    def learner_specs(self) -> dict[str, LearnerSpec]:
        return {}

    def _best_responses(self, occupancy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(routes `[OD, width]`, arrival step `[OD]` per OD row, steps table) vs `occupancy` `[T, L]`."""
        g = self.game
        steps = link_steps(g.network, occupancy + 1.0, g.vehicle_weight, g.time_step)
        arrival, choice = best_response_tables(g, steps, self.destinations)
        d = g.network.demand
        dep = np.floor(d.departure_time / g.time_step + 1e-9).astype(np.int64)
        routes = follow_choice(g, steps, choice, self.dest_row_of_od, d.origin.astype(np.int64), dep, self.width)
        return routes, arrival[self.dest_row_of_od, dep, d.origin], steps

    def init(self, seed: int) -> State:
        g = self.game
        num_od = g.network.demand.num_od
        br, _, _ = self._best_responses(np.zeros((g.horizon, g.network.num_links)))
        routes = np.full((num_od, self.max_routes, self.width), -1, np.int32)
        routes[:, 0] = br
        probs = np.zeros((g.num_vehicles, self.max_routes))
        probs[:, 0] = 1.0
        return {"routes": routes, "route_count": np.ones(num_od, np.int32), "probs": probs, "iteration": 0}

    def step(self, state: State, ctx: StepContext) -> tuple[State, dict[str, float]]:
        g = self.game
        shared = {"routes": state["routes"], "probs": state["probs"], "games": self.games_per_shard}
        batches = ctx.shards.map(simulate_shard, ctx.shard_tasks(), shared=shared)
        table = pa.Table.from_batches(batches)
        num_games = table.num_rows
        occ = np.asarray(table.column("occupancy").combine_chunks().flatten()).reshape(num_games, g.horizon, -1)
        tt = np.asarray(table.column("travel_time").combine_chunks().flatten()).reshape(num_games, -1)
        br_routes, br_arrival, _ = self._best_responses(occ.mean(axis=0))
        d = g.network.demand
        dep = np.floor(d.departure_time / g.time_step + 1e-9).astype(np.int64)
        br_cost = np.where(br_arrival <= g.horizon, (br_arrival - dep) * g.time_step, g.late_penalty)
        realised = tt.mean(axis=0).astype(np.float64)
        regret = np.maximum(realised - br_cost[g.od_row], 0.0)

        routes, count = state["routes"].copy(), state["route_count"].copy()
        slot = np.empty(d.num_od, np.int64)
        for od in range(d.num_od):
            same = np.flatnonzero(np.all(routes[od, : count[od]] == br_routes[od], axis=1))
            if len(same):
                slot[od] = same[0]
            elif count[od] < self.max_routes:
                routes[od, count[od]] = br_routes[od]
                slot[od] = count[od]
                count[od] += 1
            else:  # pool full: the route its vehicles used least
                mass = state["probs"][g.od_row == od].sum(axis=0)[: count[od]]
                slot[od] = int(np.argmin(mass))
                routes[od, slot[od]] = br_routes[od]
        k = int(state["iteration"]) + 1
        probs = state["probs"] * (k / (k + 1.0))
        probs[np.arange(g.num_vehicles), slot[g.od_row]] += 1.0 / (k + 1.0)
        new_state = {"routes": routes, "route_count": count, "probs": probs, "iteration": k}
        metrics = {
            "avg_travel_time": float(realised.mean()),
            "exploitability": float(regret.mean()),
            "max_regret": float(regret.max()),
            "num_routes": float(count.sum()),
        }
        return new_state, metrics

    def summary(self, state: State) -> dict[str, Any]:
        return {"num_routes": int(state["route_count"].sum()), "iterations": int(state["iteration"])}
