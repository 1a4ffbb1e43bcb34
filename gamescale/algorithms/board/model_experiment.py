"""`board_model`: the Connect Four board model from data to tournament (issue 10, the
paper's multi-action-value model with external and internal search).

Iterations before `train_iterations`: rollout shards play labelled self-play games
(`model_data.label_shard`), the learner trains the model on every training sequence so
far, and the held-out positions measure what it knows. Later iterations: one round of a
round-robin tournament (`tournament.Tournament.play_round`) in which the model's bots
call the learner actor through a `ModelClient` from the rollout workers.

Metrics (every iteration, the latest measurement): `legal_precision`, `legal_recall`
(the legal-move string the model writes), `next_state_accuracy` (exact next state for
every legal move), `value_bucket_accuracy` and `best_move_agreement` (against the
labels), `solver_sign_accuracy` and `solver_best_move_agreement` (on solver-labelled
positions only: win / draw / loss of every move, and a move of the best solver value),
`internal_legal_rate` and `internal_best_agreement` (the move written after `best:`),
then `elo_<bot>` and `internal_fallbacks` once the tournament plays. Tables: `data`
(every labelled position), and the tournament's `games`, `elo`, `crosstable`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from gamescale.algorithms.base import Deferred, LearnerSpec, StepContext
from gamescale.algorithms.board import model_data
from gamescale.algorithms.board.config import TournamentConfig
from gamescale.algorithms.board.model_bots import decode, encode
from gamescale.algorithms.board.tournament import Tournament, game_spec

MODEL = "gamescale.algorithms.board.knowledge_model"
_TEXT = ("split", "state", "legal", "value_source", "knowledge", "tree")
_INT = ("iteration", "shard", "game", "ply", "best", "played")
ACCURACIES = ("legal_precision", "legal_recall", "next_state_accuracy", "value_bucket_accuracy", "best_move_agreement",
              "solver_sign_accuracy", "solver_best_move_agreement", "internal_legal_rate", "internal_best_agreement")


class BoardModelAlgorithm:
    """See the module docstring. State: `data` (columns of every labelled position),
    `tournament` (the tournament's game columns) and `accuracy` (latest metrics)."""

    uses_rollout_workers = True

    def __init__(self, env: Any, config: Any):
        self.config = config
        if game_spec(env)["kind"] != "connect_four":
            raise ValueError("board_model trains its model on connect_four; set env.name: connect_four")
        tcfg = TournamentConfig(bots=list(config.bots), schedule="round_robin", games_per_pair=config.games_per_pair,
                                reference=config.reference, reference_elo=config.reference_elo,
                                virtual_draws=config.virtual_draws, parallel=config.parallel)
        self.tournament = Tournament(env, tcfg, with_model=True)

    def learner_specs(self) -> dict[str, LearnerSpec]:
        cfg = self.config
        return {"model": LearnerSpec(Deferred(f"{MODEL}:build_board_model", (cfg.model.model_dump(),)),
                                     Deferred(f"{MODEL}:sequence_loss"), cfg.learning_rate, "adam", seed=0)}

    def init(self, seed: int) -> dict[str, Any]:
        data: dict[str, Any] = {c: np.zeros(0, "<U1") for c in _TEXT}
        data.update({c: np.zeros(0, np.int64) for c in _INT})
        data["values"] = np.zeros((0, 7))
        data["next_states"] = np.zeros((0, 7), "<U1")
        return {"data": data, "tournament": self.tournament.init(seed),
                "accuracy": {name: float("nan") for name in ACCURACIES}, "train": {"loss": float("nan"),
                                                                                   "token_accuracy": float("nan")}}

    def _model(self, ctx: StepContext) -> dict[str, Any]:
        cfg = self.config
        return {"client": ctx.learners["model"].client(), "temperature": cfg.temperature, "c_puct": cfg.c_puct,
                "parallel": cfg.parallel, "max_new_tokens": cfg.max_new_tokens}

    def step(self, state: dict[str, Any], ctx: StepContext) -> tuple[dict[str, Any], dict[str, float]]:
        cfg = self.config
        state = dict(state)
        metrics: dict[str, float] = {}
        if ctx.iteration < cfg.train_iterations:
            shared = {"config": cfg.model_dump()}
            batches = ctx.shards.map(model_data.label_shard, ctx.shard_tasks(), shared=shared)
            state["data"] = append_data(state["data"], pa.Table.from_batches(batches), ctx.iteration)
            train = training_batch(state["data"])
            state["train"] = ctx.learners["model"].update(train, cfg.train_steps, cfg.batch_size,
                                                          seed=ctx.seed * 1000 + ctx.iteration)
            state["accuracy"] = evaluate(ctx.learners["model"].client(), held_out(state["data"], cfg.eval_positions),
                                         cfg.max_new_tokens)
        else:
            state["tournament"], played = self.tournament.play_round(state["tournament"], ctx, self._model(ctx))
            metrics.update(played)
            metrics["internal_fallbacks"] = float(state["tournament"]["model_fallbacks"].sum())
        data = state["data"]
        metrics["data_positions"] = float(len(data["state"]))
        metrics["solver_labelled"] = float(np.mean(data["value_source"] == "solver")) if len(data["state"]) else 0.0
        metrics.update({k: float(v) for k, v in state["train"].items()})
        metrics.update(state["accuracy"])
        return state, metrics

    def tables(self, state: dict[str, Any]) -> dict[str, pa.Table]:
        data = state["data"]
        columns = {c: data[c] for c in (*_INT, *_TEXT)}
        columns["values"] = [[None if np.isnan(v) else float(v) for v in row] for row in data["values"]]
        columns["next_states"] = [list(row) for row in data["next_states"]]
        out = {"data": pa.table(columns)}
        out.update(self.tournament.tables(state["tournament"]))
        return out

    def summary(self, state: dict[str, Any]) -> dict[str, Any]:
        out = {"data_positions": int(len(state["data"]["state"])),
               "accuracy": {k: None if np.isnan(v) else round(float(v), 4) for k, v in state["accuracy"].items()}}
        out.update(self.tournament.summary(state["tournament"]))
        return out


# ---------------------------------------------------------------- data


def append_data(data: dict[str, np.ndarray], table: pa.Table, iteration: int) -> dict[str, np.ndarray]:
    """The state's data columns with the shard tables' rows appended."""
    new = {c: np.asarray(table[c].to_pylist()) for c in _TEXT if c in table.column_names}
    new.update({c: np.asarray(table[c].to_pylist(), np.int64) for c in _INT if c in table.column_names})
    new["iteration"] = np.full(table.num_rows, iteration, np.int64)
    new["values"] = np.array([[np.nan if v is None else v for v in row] for row in table["values"].to_pylist()],
                             np.float64).reshape(-1, 7)
    new["next_states"] = np.array(table["next_states"].to_pylist()).reshape(-1, 7)
    out = {}
    for c, old in data.items():
        out[c] = np.concatenate([old.astype(new[c].dtype) if old.size == 0 else old, new[c]])
    return out


def training_batch(data: dict[str, np.ndarray]) -> pa.RecordBatch:
    """Every knowledge and tree sequence of the training split, with the state's length
    (the part the loss skips)."""
    train = data["split"] == "train"
    texts = [*data["knowledge"][train].tolist(), *data["tree"][train].tolist()]
    skips = [len(s) for s in data["state"][train].tolist()] * 2
    return pa.RecordBatch.from_pydict({"text": pa.array(texts, pa.string()), "skip": pa.array(skips, pa.int32())})


def held_out(data: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
    """The first `count` held-out positions (a fixed set while the data grows)."""
    rows = np.flatnonzero(data["split"] == "test")[:count]
    return {c: v[rows] for c, v in data.items()}


# ---------------------------------------------------------------- accuracies


def _generate(client: Any, prompts: list[str], count: int) -> list[str]:
    if not prompts:
        return []
    ids = client.infer("generate", prompts=encode(prompts), max_new_tokens=np.int64(count))
    return [decode(row) for row in ids]


def evaluate(client: Any, rows: dict[str, np.ndarray], max_new_tokens: int) -> dict[str, float]:
    """The model's accuracies on labelled positions `rows` (see the module docstring)."""
    out = {name: float("nan") for name in ACCURACIES}
    states = rows["state"].tolist()
    if not states:
        return out
    num_actions = rows["values"].shape[1]
    legal = np.array([model_data.parse_legal(t, num_actions) for t in rows["legal"]])
    values = rows["values"]
    # legal moves, as written after `<state> L:`
    written = np.array([model_data.parse_legal(t, num_actions)
                        for t in _generate(client, [model_data.knowledge_prompt(s) for s in states], num_actions)])
    hits = (written & legal).sum()
    out["legal_precision"] = float(hits / max(written.sum(), 1))
    out["legal_recall"] = float(hits / max(legal.sum(), 1))
    # next state after every legal move, written after the (labelled) value block and `N:<move>>`
    pairs = [(k, a) for k in range(len(states)) for a in np.flatnonzero(legal[k])]
    prompts = [f"{model_data.value_prompt(states[k], legal[k])}{model_data.value_block(legal[k], values[k])} N:{a}>"
               for k, a in pairs]
    nexts = _generate(client, prompts, len(states[0]))
    truth = rows["next_states"]
    out["next_state_accuracy"] = float(np.mean([n[: len(states[0])] == truth[k, a] for (k, a), n in
                                                zip(pairs, nexts, strict=True)]))
    # move values
    result = client.infer("move_values", states=np.array([list(s.encode()) for s in states], np.uint8), legal=legal)
    buckets, model_values = np.asarray(result["buckets"]), np.asarray(result["values"])
    labels = model_data.bucket_of(np.nan_to_num(values))
    out["value_bucket_accuracy"] = float(np.mean((buckets == labels)[legal]))
    best_label = np.max(np.where(legal, values, -np.inf), axis=1)
    chosen = np.argmax(np.where(legal, model_values, -np.inf), axis=1)
    optimal = values[np.arange(len(states)), chosen] >= best_label - 1e-9
    out["best_move_agreement"] = float(np.mean(optimal))
    solver = rows["value_source"] == "solver"
    if solver.any():
        written_sign = np.sign(np.rint(model_data.bucket_values()[np.maximum(buckets, 0)] * 5.0))  # bucket f = draw
        out["solver_sign_accuracy"] = float(np.mean((written_sign == values)[legal & solver[:, None]]))
        out["solver_best_move_agreement"] = float(np.mean(optimal[solver]))
    # internal search: the move written after `best:`
    trees = _generate(client, [model_data.tree_prompt(s) for s in states], max_new_tokens)
    moves = [model_data.parse_best(t) for t in trees]
    ok = np.array([m is not None and 0 <= m < num_actions and bool(legal[k, m]) for k, m in enumerate(moves)])
    out["internal_legal_rate"] = float(np.mean(ok))
    agree = [bool(ok[k]) and values[k, moves[k]] >= best_label[k] - 1e-9 for k in range(len(states))]
    out["internal_best_agreement"] = float(np.mean(agree))
    return out
