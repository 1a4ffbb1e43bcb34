"""Training data of the Connect Four board model: labelled self-play positions and the
text sequences the model learns (torch-free: this runs on rollout workers).

A shard plays `games` MCTS self-play games side by side (seeded from the shard seed, so
1 or 2 workers produce the same table), records every position with its legal moves
(rules), the next state after each legal move (rules) and a value for every legal move
(the paper's multi-action value): from the exact solver where it finishes within its
node budget, otherwise the self-play search's root values (`value_source`). Values are
for the side to move, in [-1, 1] (null for an illegal move); the solver's are -1 / 0 / +1.

Sequences (the byte tokenizer reads them; `A` moves numbered 0..A-1, `-` an illegal one):

    knowledge: <state> L:01-3456 V:0=f 1=c 2=- 3=k ... N:3><next state>
    tree:      <state> T:3=k>4=a>3=k 0=f 5=e best:3

`V:` gives every move a value bucket (11 letters a..k for -1, -0.8, ..., +1; `-` for an
illegal move), `N:` one move (drawn per position) and the state after it. `T:` is a
linearised search tree for internal search: up to `candidates` moves by value, the best
first, followed by its principal line (`>reply=bucket`, each from the mover's view at
that point) where the self-play game continued along best moves, then `best:<move>`.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pyarrow as pa

from gamescale.algorithms.base import ShardTask
from gamescale.algorithms.board.mcts import uct_search
from gamescale.algorithms.board.solver import ConnectFourSolver, Position, SolverBudgetExceeded
from gamescale.envs.board import connect_four_vec
from gamescale.envs.board.batch import random_legal, take
from gamescale.envs.board.text import connect_four_texts

BUCKETS = "abcdefghijk"  # bucket k stands for the value -1 + 0.2 k
ILLEGAL = "-"


def bucket_of(values: np.ndarray) -> np.ndarray:
    """int [...]: the nearest bucket of each value in [-1, 1]."""
    return np.clip(np.rint((np.asarray(values, np.float64) + 1.0) * 5.0), 0, len(BUCKETS) - 1).astype(np.int64)


def bucket_values() -> np.ndarray:
    """float [11]: the value each bucket stands for."""
    return np.linspace(-1.0, 1.0, len(BUCKETS))


def legal_text(mask: np.ndarray) -> str:
    return "".join(str(a) if ok else ILLEGAL for a, ok in enumerate(mask))


def parse_legal(text: str, num_actions: int) -> np.ndarray:
    """bool [A] of a written legal-move string (anything unreadable counts as illegal)."""
    mask = np.zeros(num_actions, bool)
    for a, ch in enumerate(text[:num_actions]):
        mask[a] = ch == str(a)
    return mask


def value_block(mask: np.ndarray, values: np.ndarray) -> str:
    buckets = bucket_of(np.nan_to_num(values))
    return " ".join(f"{a}={BUCKETS[b] if ok else ILLEGAL}" for a, (ok, b) in enumerate(zip(mask, buckets, strict=True)))


def knowledge_prompt(state: str) -> str:
    """What precedes the legal moves: the model writes them after this."""
    return f"{state} L:"


def value_prompt(state: str, mask: np.ndarray) -> str:
    """What precedes the value block (legal moves from the rules)."""
    return f"{state} L:{legal_text(mask)} V:"


def knowledge_text(state: str, mask: np.ndarray, values: np.ndarray, move: int, next_state: str) -> str:
    return f"{value_prompt(state, mask)}{value_block(mask, values)} N:{move}>{next_state}"


def tree_prompt(state: str) -> str:
    return f"{state} T:"


def tree_text(state: str, candidates: list[tuple[int, float]], line: list[tuple[int, float]], best: int) -> str:
    """`candidates` (move, value) best first; `line` continues the first candidate."""
    parts = []
    for k, (move, value) in enumerate(candidates):
        text = f"{move}={BUCKETS[int(bucket_of(value))]}"
        if k == 0:
            text += "".join(f">{m}={BUCKETS[int(bucket_of(v))]}" for m, v in line)
        parts.append(text)
    return f"{tree_prompt(state)}{' '.join(parts)} best:{best}"


_BEST = re.compile(r"best:(\d+)")


def parse_best(text: str) -> int | None:
    """The move after `best:` in a written tree, or None when there is none."""
    match = _BEST.search(text)
    return int(match.group(1)) if match else None


# ---------------------------------------------------------------- labelling


def solver_values(stones: tuple[int, int], plies: int, max_nodes: int) -> np.ndarray | None:
    """float [7]: -1 / 0 / +1 per legal column for the side to move (nan illegal), or None
    when the solver needs more than `max_nodes` nodes."""
    player = plies % 2
    pos = Position(int(stones[player]), int(stones[0]) | int(stones[1]), int(plies))
    try:
        scores = ConnectFourSolver(max_nodes=max_nodes).move_scores(pos, weak=True)
    except SolverBudgetExceeded:
        return None
    return np.array([np.nan if s is None else float(s) for s in scores])


def best_move(mask: np.ndarray, values: np.ndarray, visits: np.ndarray) -> int:
    """The legal move of highest value; among equal values the most visited, then the most central."""
    centre = -np.abs(np.arange(len(mask)) - (len(mask) - 1) / 2.0)
    key = np.where(mask, np.nan_to_num(values, nan=-9.0) * 1e6 + visits + 1e-3 * centre, -np.inf)
    return int(np.argmax(key))


_COLUMNS = {
    "shard": pa.int32(), "game": pa.int32(), "ply": pa.int32(), "split": pa.string(), "state": pa.string(),
    "legal": pa.string(), "values": pa.list_(pa.float64()), "value_source": pa.string(),
    "next_states": pa.list_(pa.string()), "best": pa.int32(), "played": pa.int32(),
    "knowledge": pa.string(), "tree": pa.string(),
}


def label_shard(env: Any, shared: dict[str, Any], task: ShardTask) -> pa.RecordBatch:
    """Self-play games of one shard, every position labelled (see the module docstring).

    shared["config"]: games_per_shard, label_simulations, parallel, random_plies,
    solver_min_plies, solver_max_nodes, holdout_every, candidates, line_depth.
    """
    cfg = shared["config"]
    rng = task.rng()
    game = connect_four_vec.game()
    count = int(cfg["games_per_shard"])
    state = game.init(count)
    records: list[dict[str, Any]] = []  # one per (game, ply), in ply order
    for ply in range(game.max_plies):
        live = np.flatnonzero(~game.done(state))
        if not len(live):
            break
        sub = take(state, live)
        out = uct_search(game, sub, int(cfg["label_simulations"]), rng, parallel=int(cfg["parallel"]))
        mask = game.legal_mask(sub)
        texts = connect_four_texts(sub)
        actions = out.action if ply >= int(cfg["random_plies"]) else random_legal(mask, rng)
        for j, g in enumerate(live):
            records.append({
                "game": int(g), "ply": ply, "state": texts[j], "mask": mask[j], "values": out.values[j].copy(),
                "visits": out.visits[j].copy(), "stones": tuple(int(s) for s in sub.stones[j]), "played": int(actions[j]),
                "source": "mcts",
            })
        full = np.zeros(count, np.int64)
        full[live] = actions
        state = game.step(state, full)
    # the solver relabels the late positions it can finish within its budget
    for rec in records:
        if rec["ply"] >= int(cfg["solver_min_plies"]):
            exact = solver_values(rec["stones"], rec["ply"], int(cfg["solver_max_nodes"]))
            if exact is not None:
                rec["values"], rec["source"] = exact, "solver"
        rec["values"] = np.where(rec["mask"], np.nan_to_num(rec["values"], nan=0.0), np.nan)
        rec["best"] = best_move(rec["mask"], rec["values"], rec["visits"])
    # next states after every legal move, all positions at once (one engine call per move)
    by_key = {(r["game"], r["ply"]): r for r in records}
    stones = np.array([r["stones"] for r in records], np.uint64).reshape(-1, 2)
    base = connect_four_vec.ConnectFourState(stones, np.array([r["ply"] for r in records], np.int16),
                                             np.full(len(records), -1, np.int8))
    next_texts = [[""] * len(records) for _ in range(game.num_actions)]
    for a in range(game.num_actions):
        idx = np.flatnonzero([bool(r["mask"][a]) for r in records])
        if len(idx):
            for k, t in zip(idx, connect_four_texts(game.step(take(base, idx), np.full(len(idx), a))), strict=True):
                next_texts[a][k] = t
    rows: dict[str, list] = {c: [] for c in _COLUMNS}
    holdout = int(cfg["holdout_every"])
    for k, rec in enumerate(records):
        legal_moves = np.flatnonzero(rec["mask"])
        move = int(legal_moves[rng.integers(len(legal_moves))])
        nexts = [next_texts[a][k] for a in range(game.num_actions)]
        order = sorted(legal_moves.tolist(), key=lambda a: (a != rec["best"], -rec["values"][a]))
        candidates = [(a, float(rec["values"][a])) for a in order[: int(cfg["candidates"])]]
        line: list[tuple[int, float]] = []
        node = rec
        while len(line) < int(cfg["line_depth"]) and node["played"] == node["best"]:
            node = by_key.get((node["game"], node["ply"] + 1))
            if node is None:
                break
            line.append((node["best"], float(node["values"][node["best"]])))
        number = task.index * count + rec["game"]
        rows["shard"].append(task.index)
        rows["game"].append(rec["game"])
        rows["ply"].append(rec["ply"])
        rows["split"].append("test" if holdout and number % holdout == holdout - 1 else "train")
        rows["state"].append(rec["state"])
        rows["legal"].append(legal_text(rec["mask"]))
        rows["values"].append([None if np.isnan(v) else float(v) for v in rec["values"]])  # null: illegal
        rows["value_source"].append(rec["source"])
        rows["next_states"].append(nexts)
        rows["best"].append(rec["best"])
        rows["played"].append(rec["played"])
        rows["knowledge"].append(knowledge_text(rec["state"], rec["mask"], rec["values"], move, nexts[move]))
        rows["tree"].append(tree_text(rec["state"], candidates, line, rec["best"]))
    return pa.RecordBatch.from_pydict({c: pa.array(v, t) for (c, t), v in zip(_COLUMNS.items(), rows.values(),
                                                                               strict=True)})
