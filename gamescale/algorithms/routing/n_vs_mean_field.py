"""How close the N-player routing equilibrium gets to the mean-field one as N grows
(arXiv 2110.11943, Pigou and Braess experiments).

`init` solves the mean-field game of the env (`routing_mean_field`) by online mirror
descent. Iteration i takes N = n_grid[i % len(n_grid)] (later passes over the grid are
extra seeds), runs `fp_iterations` of the N-player fictitious play
(`routing_fictitious_play` machinery; its games simulated over `ctx.shards`) on the same
network, time step and horizon, and measures

    distance = |avg travel time of the N-player FP outcome - mean-field equilibrium avg travel time|

in network time units, the N-player outcome being the realised mean travel time over the
sampled games of the last `tail` FP iterations. Both games use the same congestion
scaling (a vehicle is total demand / N flow units), so the gap is the finite-N effect
plus the FP sampling noise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import Field

from gamescale.algorithms.base import LearnerSpec, Metrics, ShardTask, State, StepContext
from gamescale.algorithms.registry import AlgorithmConfig
from gamescale.algorithms.routing.mean_field import RoutingMeanFieldOMD, RoutingMeanFieldOMDConfig, model_of
from gamescale.algorithms.routing.n_player import RoutingFictitiousPlay
from gamescale.algorithms.tables import annotate
from gamescale.envs.routing.dynamic import DynamicRoutingGame, make_game

DEFAULT_GRID = (2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)


class NVsMeanFieldConfig(AlgorithmConfig):
    """N grid, N-player FP iterations per N (last `tail` averaged), games per shard,
    mean-field OMD iterations and learning rate."""

    name: str = "routing_n_vs_mean_field"
    n_grid: list[int] = Field(default_factory=lambda: list(DEFAULT_GRID), min_length=1)
    fp_iterations: int = Field(default=20, ge=1)
    tail: int = Field(default=5, ge=1)
    games_per_shard: int = Field(default=4, ge=1)
    max_routes_per_od: int = Field(default=8, ge=1)
    mf_iterations: int = Field(default=100, ge=1)
    mf_learning_rate: float = Field(default=1.0, gt=0)


_GAMES: dict[tuple[int, int], DynamicRoutingGame] = {}


def _n_player_game(env: Any, num_vehicles: int) -> DynamicRoutingGame:
    """The N-player game on the env's network, time step and horizon (cached per worker)."""
    key = (id(env), num_vehicles)
    if key not in _GAMES:
        m = model_of(env)
        late = m.horizon * m.time_step  # the N-player simulator's default late penalty
        if len(_GAMES) > 16:
            _GAMES.clear()
        _GAMES[key] = make_game(m.network, num_vehicles, m.time_step, m.horizon, late)
    return _GAMES[key]


def simulate_n_player_shard(env: Any, shared: dict[str, Any], task: ShardTask) -> Any:
    """Shard function: the N-player FP's shard function `shared["shard_fn"]` (e.g.
    `n_player.simulate_shard`) on the N-player game with `shared["num_vehicles"]`."""
    return shared["shard_fn"](_n_player_game(env, int(shared["num_vehicles"])), shared, task)


class _NPlayerShards:
    """A shard runner that runs the N-player FP's shard functions on the N-player game."""

    def __init__(self, inner: Any, num_vehicles: int):
        self.inner, self.num_vehicles = inner, num_vehicles
        self.num_workers = getattr(inner, "num_workers", 1)

    def map(self, fn: Any, tasks: Any, shared: Any = None) -> list[pa.RecordBatch]:
        shared = {**shared, "shard_fn": fn, "num_vehicles": self.num_vehicles}
        return self.inner.map(simulate_n_player_shard, tasks, shared=shared)


class NVsMeanField:
    """State: `mf_travel_time`, `mf_exploitability`, per-iteration rows (`rows_n`,
    `rows_distance`, `rows_n_player_tt`, `rows_n_player_exploitability`), `iteration`."""

    def __init__(self, config: NVsMeanFieldConfig, env: Any):
        self.config = config
        self.env = env
        self.model = model_of(env)

    def learner_specs(self) -> dict[str, LearnerSpec]:
        return {}

    def init(self, seed: int) -> State:
        omd = RoutingMeanFieldOMD(RoutingMeanFieldOMDConfig(learning_rate=self.config.mf_learning_rate), self.model)
        state = omd.init(seed)
        for _ in range(self.config.mf_iterations):
            state, _ = omd.step(state)
        empty = np.zeros(0)
        return {
            "mf_travel_time": float(state["avg_travel_time"]),
            "mf_exploitability": float(state["exploitability"]),
            "rows_n": np.zeros(0, np.int64),
            "rows_distance": empty,
            "rows_n_player_tt": empty,
            "rows_n_player_exploitability": empty,
            "iteration": 0,
        }

    def n_player_outcome(self, num_vehicles: int, ctx: StepContext) -> tuple[float, float]:
        """(mean realised travel time, mean regret) over the last `tail` FP iterations."""
        c = self.config
        game = _n_player_game(self.env, num_vehicles)
        fp = RoutingFictitiousPlay(game, c.games_per_shard, c.max_routes_per_od)
        shards = _NPlayerShards(ctx.shards, num_vehicles)
        state, history = fp.init(ctx.seed), []
        for j in range(c.fp_iterations):
            inner = StepContext(
                iteration=ctx.iteration * 100_003 + j, seed=ctx.seed, shards=shards, num_shards=ctx.num_shards
            )
            state, metrics = fp.step(state, inner)
            history.append(metrics)
        last = history[-min(c.tail, len(history)) :]
        return float(np.mean([m["avg_travel_time"] for m in last])), float(np.mean([m["exploitability"] for m in last]))

    def step(self, state: State, ctx: StepContext) -> tuple[State, Metrics]:
        n = int(self.config.n_grid[ctx.iteration % len(self.config.n_grid)])
        tt, regret = self.n_player_outcome(n, ctx)
        distance = abs(tt - state["mf_travel_time"])
        new = dict(state)
        new["rows_n"] = np.append(state["rows_n"], n)
        new["rows_distance"] = np.append(state["rows_distance"], distance)
        new["rows_n_player_tt"] = np.append(state["rows_n_player_tt"], tt)
        new["rows_n_player_exploitability"] = np.append(state["rows_n_player_exploitability"], regret)
        new["iteration"] = int(state["iteration"]) + 1
        metrics = {
            "num_vehicles": float(n),
            "distance": distance,
            "n_player_travel_time": tt,
            "mean_field_travel_time": float(state["mf_travel_time"]),
            "n_player_exploitability": regret,
        }
        return new, metrics

    def comparison(self, state: State) -> pa.Table:
        """One row per N (averaged over passes): N, mean distance, its std, passes, travel times."""
        ns = np.asarray(state["rows_n"])
        rows = {k: [] for k in ("num_vehicles", "distance", "distance_std", "passes", "n_player_travel_time")}
        for n in sorted(set(ns.tolist())):
            hit = ns == n
            rows["num_vehicles"].append(int(n))
            rows["distance"].append(float(state["rows_distance"][hit].mean()))
            rows["distance_std"].append(float(state["rows_distance"][hit].std()))
            rows["passes"].append(int(hit.sum()))
            rows["n_player_travel_time"].append(float(state["rows_n_player_tt"][hit].mean()))
        table = pa.table(rows)
        mf = np.full(table.num_rows, float(state["mf_travel_time"]))
        return table.append_column("mean_field_travel_time", pa.array(mf))

    def tables(self, state: State) -> dict[str, pa.Table]:
        """`n_vs_mean_field`: the comparison, annotated with the network's name (the
        report draws plots/n_vs_mean_field.png from it)."""
        return {"n_vs_mean_field": annotate(self.comparison(state), network=self.model.network.name)}

    def summary(self, state: State) -> dict[str, Any]:
        t = self.comparison(state).to_pydict()
        return {"mean_field_travel_time": float(state["mf_travel_time"]), "comparison": t}


def build_n_vs_mean_field(config: NVsMeanFieldConfig, env: Any) -> NVsMeanField:
    return NVsMeanField(config, env)
