"""MCTS strength against simulation count: UCT bots play the random bot and the Connect
Four solver, games spread over rollout workers as shards, every game kept as a row.

One iteration is one round: each shard plays `games_per_shard` games of every (MCTS
simulations, opponent) matchup, half with MCTS moving first, all games of a matchup as one
batch. Metrics are cumulative scores (win 1, draw 1/2) per matchup and the Elo of every MCTS bot
(`elo_mcts<N>`, maximum likelihood over all games so far with `elo_reference` fixed at
`reference_elo`); the `games` table (one row per game) is written as `games.parquet`, with
`elo` and `crosstable` tables beside it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from gamescale.algorithms.base import ShardTask, StepContext
from gamescale.algorithms.board.bots import ConnectFourSolverBot, MCTSBot, RandomBot, play_games
from gamescale.algorithms.board.elo import fit_elo
from gamescale.algorithms.board.tournament import crosstable, elo_table
from gamescale.envs.board import connect_four_vec

OPPONENTS = ("random", "solver")
_COLUMNS = ("iteration", "shard", "simulations", "opponent", "mcts_player", "winner", "score")


def _opponent(name: str, cfg: dict[str, Any]):
    if name == "random":
        return RandomBot()
    return ConnectFourSolverBot(
        max_nodes=cfg["solver_max_nodes"],
        min_plies=cfg["solver_min_plies"],
        fallback=MCTSBot(cfg["solver_fallback_simulations"], parallel=cfg["parallel"]),
    )


def play_shard(env: Any, shared: dict[str, Any], task: ShardTask) -> pa.RecordBatch:
    """Every matchup's games of one shard (env unused: the batch engine plays)."""
    rng = task.rng()
    game = connect_four_vec.game()
    half = shared["games_per_shard"] // 2
    rows: dict[str, list] = {c: [] for c in _COLUMNS}
    solved = fallback = 0
    for sims in shared["simulations"]:
        for name in shared["opponents"]:
            mcts, other = MCTSBot(sims, parallel=shared["parallel"]), _opponent(name, shared)
            for mcts_player, (first, second) in enumerate(((mcts, other), (other, mcts))):
                winners = play_games(game, first, second, half, rng)
                score = np.where(winners < 0, 0.5, (winners == mcts_player).astype(float))
                rows["winner"] += winners.tolist()
                rows["score"] += score.tolist()
                rows["mcts_player"] += [mcts_player] * half
                rows["simulations"] += [sims] * half
                rows["opponent"] += [name] * half
            if isinstance(other, ConnectFourSolverBot):
                solved, fallback = solved + other.solved_moves, fallback + other.fallback_moves
    n = len(rows["score"])
    rows["iteration"], rows["shard"] = [shared["iteration"]] * n, [task.index] * n
    batch = pa.RecordBatch.from_pydict(
        {
            "iteration": pa.array(rows["iteration"], pa.int32()),
            "shard": pa.array(rows["shard"], pa.int32()),
            "simulations": pa.array(rows["simulations"], pa.int32()),
            "opponent": pa.array(rows["opponent"], pa.string()),
            "mcts_player": pa.array(rows["mcts_player"], pa.int8()),
            "winner": pa.array(rows["winner"], pa.int8()),
            "score": pa.array(rows["score"], pa.float64()),
        }
    )
    return batch.replace_schema_metadata({"solved_moves": str(solved), "fallback_moves": str(fallback)})


class MCTSStrength:
    """See the module docstring. State: one array per game column (all games so far)."""

    uses_rollout_workers = True

    def __init__(self, env: Any, config: Any):
        unknown = sorted(set(config.opponents) - set(OPPONENTS))
        if unknown:
            raise ValueError(f"unknown bot name(s) {unknown}; known opponents: {list(OPPONENTS)}")
        if config.elo_reference not in config.opponents:
            raise ValueError(f"elo_reference {config.elo_reference!r} is not among the opponents {config.opponents}")
        if config.games_per_shard % 2:
            raise ValueError(f"games_per_shard must be even (both colours), got {config.games_per_shard}")
        self.config = config

    def learner_specs(self) -> dict:
        return {}

    def init(self, seed: int) -> dict[str, Any]:
        state: dict[str, Any] = {c: np.zeros(0, np.float64 if c == "score" else np.int64) for c in _COLUMNS}
        state["opponent"] = np.zeros(0, np.int64)  # index into config.opponents
        state["solved_moves"], state["fallback_moves"] = 0, 0
        return state

    def step(self, state: dict[str, Any], ctx: StepContext) -> tuple[dict[str, Any], dict[str, float]]:
        cfg = self.config
        shared = {**cfg.model_dump(), "iteration": ctx.iteration}
        batches = ctx.shards.map(play_shard, ctx.shard_tasks(), shared=shared)
        table = pa.Table.from_batches(batches)
        new = dict(state)
        for c in _COLUMNS:
            values = table.column(c).to_pylist()
            if c == "opponent":
                values = [cfg.opponents.index(v) for v in values]
            new[c] = np.concatenate([state[c], np.asarray(values, state[c].dtype)])
        for b in batches:
            meta = b.schema.metadata or {}
            new["solved_moves"] += int(meta.get(b"solved_moves", 0))
            new["fallback_moves"] += int(meta.get(b"fallback_moves", 0))
        metrics: dict[str, float] = {"games": float(len(new["score"]))}
        for k, name in enumerate(cfg.opponents):
            for sims in cfg.simulations:
                pick = (new["opponent"] == k) & (new["simulations"] == sims)
                metrics[f"score_vs_{name}_s{sims}"] = float(new["score"][pick].mean())
            top = (new["opponent"] == k) & (new["simulations"] == max(cfg.simulations))
            metrics[f"score_vs_{name}"] = float(new["score"][top].mean())
        fit = self.fit(new)
        metrics.update({f"elo_{p}": float(r) for p, r in zip(fit.players, fit.rating, strict=True)
                        if p.startswith("mcts")})
        attempts = new["solved_moves"] + new["fallback_moves"]
        if attempts:
            metrics["solver_solved_fraction"] = new["solved_moves"] / attempts
        return new, metrics

    def players(self) -> list[str]:
        return [f"mcts{n}" for n in self.config.simulations] + list(self.config.opponents)

    def _pairs(self, state: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(first, second, score of first) of every game, as indices into `players()`."""
        cfg = self.config
        mcts = np.array([cfg.simulations.index(int(n)) for n in state["simulations"]], np.int64)
        other = len(cfg.simulations) + state["opponent"].astype(np.int64)
        mcts_first = state["mcts_player"] == 0
        first, second = np.where(mcts_first, mcts, other), np.where(mcts_first, other, mcts)
        return first, second, np.where(mcts_first, state["score"], 1.0 - state["score"])

    def fit(self, state: dict[str, Any]):
        """Elo of the MCTS bots and the opponents from all games so far (`elo.fit_elo`)."""
        first, second, score = self._pairs(state)
        return fit_elo(self.players(), first, second, score, self.config.elo_reference, self.config.reference_elo)

    def tables(self, state: dict[str, Any]) -> dict[str, pa.Table]:
        cols = {c: state[c] for c in _COLUMNS}
        cols["opponent"] = np.asarray(self.config.opponents, dtype=object)[state["opponent"].astype(int)]
        out = {"games": pa.table(cols)}
        if len(state["score"]):
            fit = self.fit(state)
            first, second, score = self._pairs(state)
            out["elo"] = elo_table(fit, self.config.elo_reference, self.config.reference_elo, 1.0)
            out["crosstable"] = crosstable(self.players(), first, second, score, fit)
        return out

    def summary(self, state: dict[str, Any]) -> dict[str, Any]:
        return {"games": int(len(state["score"]))}
