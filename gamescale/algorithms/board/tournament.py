"""Tournaments between board-game bots: round-robin and gauntlet schedules played as the
framework's shards, every game kept, Elo by maximum likelihood (`elo.fit_elo`).

One iteration is one round: every pairing plays `games_per_pair` games, half with each
bot moving first. The games of a round are cut into contiguous blocks, one per shard; a shard plays the
games of one (first, second) pairing as one batch (Connect Four, Hex), or chess games
one at a time. Every game draws its randomness from the shard seed and its own number,
so a shard re-issued after its worker died, and a chess game replayed after its engine
died, play exactly the same moves (Stockfish under a node or depth limit is restarted
with a fresh hash per game; UCI_Elo and Skill Level play randomly by design).

Outputs: metrics `elo_<bot>` (all games so far) and `games` per iteration; tables
`games` (one row per game, with its moves and final position), `elo` (rating,
interval, games, score) and `crosstable` (score of each row bot against each column bot,
as `points/games`), and for chess one PGN file per round under `pgn/` plus SVG pictures
of sample final positions under `positions/`.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pyarrow as pa

from gamescale.algorithms.base import ShardTask, StepContext
from gamescale.algorithms.board.bots import ConnectFourSolverBot, MCTSBot, PlayedGames, RandomBot, play_recorded
from gamescale.algorithms.board.elo import EloFit, fit_elo
from gamescale.algorithms.tables import annotate
from gamescale.envs.board.batch import BatchGame

CHESS = ("chess", "chess960")
_MCTS = re.compile(r"mcts(\d+)")
_STOCKFISH = re.compile(r"stockfish(?:-elo(\d+))?(?:-skill(\d+))?(?:-n(\d+))?(?:-d(\d+))?")
_PUCT = re.compile(r"puct(\d+)")
KNOWN_BOTS = "random, mcts<N>, solver (connect_four), stockfish[-elo<E>][-skill<S>][-n<nodes>][-d<depth>] (chess)"
MODEL_BOTS = "policy, puct<N>, internal (connect_four, with a trained board model: board-connect4-model)"


class UnknownBotError(ValueError):
    """A bot name that names no bot for this game."""


# ---------------------------------------------------------------- games and bots


def game_spec(env: Any) -> dict[str, Any]:
    """What a shard needs to rebuild the run's game as a batch engine, from its AEC env."""
    name = str(getattr(env, "metadata", {}).get("name", ""))
    if name.startswith("connect_four"):
        return {"kind": "connect_four"}
    if name.startswith("hex"):
        return {"kind": "hex", "size": int(env.size), "swap_rule": bool(env.swap_rule)}
    if name.startswith("chess"):
        return {
            "kind": "chess960" if env.chess960 else "chess",
            "fen": env.start_fen,
            "start_index": env.start_index,
        }
    raise ValueError(f"tournaments are played on connect_four, hex, chess or chess960, not {name or env!r}")


def batch_game(spec: dict[str, Any], cfg: dict[str, Any], fen: str | None = None) -> BatchGame:
    """The batch engine of `spec` (chess: from `fen` when given)."""
    kind = spec["kind"]
    if kind == "connect_four":
        from gamescale.envs.board import connect_four_vec

        return connect_four_vec.game()
    if kind == "hex":
        from gamescale.envs.board import hex_vec

        return hex_vec.game(spec["size"], spec["swap_rule"])
    from gamescale.envs.board import chess_batch

    return chess_batch.game(
        fen=fen if fen is not None else spec.get("fen"),
        chess960=kind == "chess960",
        start_index=None if fen is not None or spec.get("fen") else spec.get("start_index"),
        max_plies=cfg["chess_max_plies"],
        rollout_plies=cfg["rollout_plies"],
    )


def is_model_bot(name: str) -> bool:
    """Whether `name` is a bot that plays with the board model (policy, puct<N>, internal)."""
    match = _PUCT.fullmatch(name)
    return name in ("policy", "internal") or match is not None and int(match.group(1)) >= 1


def check_bot_name(name: str, kind: str, with_model: bool = False) -> None:
    """UnknownBotError (one line) unless `name` is a bot of game `kind`; model bots need
    `with_model` (a run that trains the board model) and Connect Four."""
    if is_model_bot(name):
        if with_model and kind == "connect_four":
            return
        raise UnknownBotError(f"bot {name!r} plays with a trained board model: it needs connect_four and the "
                              f"algorithm board_model (experiment board-connect4-model); known here: {KNOWN_BOTS}")
    ok = (
        name == "random"
        or _MCTS.fullmatch(name) is not None and int(_MCTS.fullmatch(name).group(1)) >= 1
        or name == "solver" and kind == "connect_four"
        or _STOCKFISH.fullmatch(name) is not None and kind in CHESS
    )
    if not ok:
        raise UnknownBotError(f"unknown bot name {name!r} for {kind}; known: {KNOWN_BOTS}")


def make_bot(name: str, kind: str, cfg: dict[str, Any], model: dict[str, Any] | None = None) -> Any:
    """The bot called `name` (see `KNOWN_BOTS`); Stockfish bots own an engine process.
    `model` (model bots): {"client": a ModelClient, "temperature", "c_puct", "parallel",
    "max_new_tokens"}."""
    check_bot_name(name, kind, model is not None)
    if is_model_bot(name):
        from gamescale.algorithms.board import model_bots

        client = model["client"]
        if name == "policy":
            return model_bots.PolicyBot(client)
        if name == "internal":
            return model_bots.InternalSearchBot(client, max_new_tokens=model["max_new_tokens"])
        return model_bots.PUCTBot(client, int(_PUCT.fullmatch(name).group(1)), parallel=model["parallel"],
                                  c_puct=model["c_puct"], temperature=model["temperature"])
    if name == "random":
        return RandomBot()
    if match := _MCTS.fullmatch(name):
        return MCTSBot(int(match.group(1)), parallel=cfg["parallel"], name=name)
    if name == "solver":
        return ConnectFourSolverBot(
            max_nodes=cfg["solver_max_nodes"],
            min_plies=cfg["solver_min_plies"],
            fallback=MCTSBot(cfg["solver_fallback_simulations"], parallel=cfg["parallel"]),
            name=name,
        )
    from gamescale.algorithms.board.stockfish import StockfishBot

    elo, skill, nodes, depth = (None if g is None else int(g) for g in _STOCKFISH.fullmatch(name).groups())
    if nodes is None and depth is None:
        nodes = cfg["stockfish_nodes"]
    return StockfishBot(elo=elo, skill_level=skill, nodes=nodes, depth=depth, path=cfg["stockfish_path"], name=name)


# ---------------------------------------------------------------- schedule


def players_of(bots: list[str], schedule: str, opponents: list[str]) -> list[str]:
    """Everyone who plays: the bots, then (gauntlet) the opponents not among them."""
    return list(dict.fromkeys([*bots, *(opponents if schedule == "gauntlet" else [])]))


def pairings(players: list[str], bots: list[str], schedule: str, opponents: list[str]) -> list[tuple[int, int]]:
    """Pairs of player indices that meet every round."""
    index = {p: i for i, p in enumerate(players)}
    if schedule == "round_robin":
        return [(i, j) for i in range(len(players)) for j in range(i + 1, len(players))]
    return [(index[b], index[o]) for b in bots for o in opponents if b != o]


def round_games(pairs: list[tuple[int, int]], games_per_pair: int) -> np.ndarray:
    """int64 [G, 3]: (game number, first player, second player) of one round; each pairing's
    games alternate colours."""
    rows = [(a, b) if k % 2 == 0 else (b, a) for a, b in pairs for k in range(games_per_pair)]
    return np.array([(g, a, b) for g, (a, b) in enumerate(rows)], np.int64).reshape(-1, 3)


# ---------------------------------------------------------------- playing


def _describe(spec: dict[str, Any], played: PlayedGames) -> tuple[list[str], list[str], list[str]]:
    """(moves, final position, termination) of every game as text.

    Connect Four: moves are columns 0..6, the final position is six rows (top first) of
    `.`, `x` (first player), `o`, joined by `/`. Hex: cells `r*n + c` (n*n: swap), the
    board's rows `.`/`x` (black, first)/`o`. Chess: UCI moves and the final FEN.
    """
    kind, count = spec["kind"], len(played.winners)
    if kind in CHESS:
        moves, finals, ends = [], [], []
        for board in played.final.boards:
            moves.append(" ".join(m.uci() for m in board.move_stack))
            finals.append(board.fen())
            outcome = board.outcome(claim_draw=False)
            ends.append(outcome.termination.name.lower() if outcome is not None else "max_plies")
        return moves, finals, ends
    if kind == "connect_four":
        from gamescale.envs.board import connect_four_vec

        grids = connect_four_vec.boards(played.final)
    else:
        from gamescale.envs.board import hex_vec

        grids = hex_vec.boards(played.final)
    moves = [" ".join(str(a) for a in row[: n]) for row, n in zip(played.moves, played.plies, strict=True)]
    finals = ["/".join("".join(".xo"[v] for v in row) for row in grid) for grid in grids]
    ends = ["win" if w >= 0 else "draw" for w in played.winners]
    assert len(moves) == len(finals) == count
    return moves, finals, ends


_COLUMNS = {
    "iteration": pa.int32(), "game": pa.int32(), "shard": pa.int32(), "first": pa.int32(), "second": pa.int32(),
    "winner": pa.int8(), "score_first": pa.float64(), "plies": pa.int32(), "engine_restarts": pa.int32(),
    "start": pa.string(), "moves": pa.string(), "final": pa.string(), "termination": pa.string(),
    "model_fallbacks": pa.int32(),
}


def _play_chess_game(game, bots, first, second, rng_seed, key, max_restarts) -> tuple[PlayedGames, int]:
    """One chess game; when an engine process dies mid-game the game is replayed from the
    start with the same seed (a fresh engine, a fresh hash), at most `max_restarts` times."""
    import chess.engine

    restarts = 0
    while True:
        for bot in bots.values():
            if hasattr(bot, "new_game"):
                bot.new_game((key, restarts))
        try:
            return play_recorded(game, bots[first], bots[second], 1, np.random.default_rng(rng_seed)), restarts
        except chess.engine.EngineTerminatedError:
            restarts += 1
            if restarts > max_restarts:
                raise


def play_shard(env: Any, shared: dict[str, Any], task: ShardTask) -> pa.RecordBatch:
    """The games `task.payload` ([k, 4]: number, first, second; chess also a start FEN) of one round."""
    spec, cfg, players = shared["game"], shared["config"], shared["players"]
    games = task.payload["games"]
    starts = task.payload.get("starts") or [None] * len(games)
    kind = spec["kind"]
    rows: dict[str, list] = {c: [] for c in _COLUMNS}
    names = sorted({players[int(i)] for g in games for i in g[1:3]})
    bots: dict[str, Any] = {}
    try:
        for name in names:
            bots[name] = make_bot(name, kind, cfg, shared.get("model"))
        groups: dict[tuple, list[int]] = {}
        for k, (number, first, second) in enumerate(games):
            key = (int(first), int(second), starts[k]) if kind not in CHESS else (int(number),)
            groups.setdefault(key, []).append(k)
        for members in groups.values():
            number, first, second = (int(x) for x in games[members[0]])
            start = starts[members[0]]
            game = batch_game(spec, cfg, start)
            seed = [task.seed, shared["iteration"], number]
            if kind in CHESS:
                played, restarts = _play_chess_game(
                    game, bots, players[first], players[second], seed, (shared["iteration"], number),
                    cfg["max_restarts"])
                fallbacks = 0
            else:
                before = sum(getattr(b, "fallbacks", 0) for b in bots.values())
                played = play_recorded(game, bots[players[first]], bots[players[second]], len(members),
                                       np.random.default_rng(seed))
                restarts = 0
                # internal search's illegal writes in this batch of games (on its first row)
                fallbacks = sum(getattr(b, "fallbacks", 0) for b in bots.values()) - before
            moves, finals, ends = _describe(spec, played)
            for j, k in enumerate(members):
                w = int(played.winners[j])
                rows["iteration"].append(shared["iteration"])
                rows["game"].append(int(games[k][0]))
                rows["shard"].append(task.index)
                rows["first"].append(first)
                rows["second"].append(second)
                rows["winner"].append(w)
                rows["score_first"].append(0.5 if w < 0 else float(w == 0))
                rows["plies"].append(int(played.plies[j]))
                rows["engine_restarts"].append(restarts)
                rows["start"].append(start or "")
                rows["moves"].append(moves[j])
                rows["final"].append(finals[j])
                rows["termination"].append(ends[j])
                rows["model_fallbacks"].append(fallbacks if j == 0 else 0)
    finally:
        for bot in bots.values():
            if hasattr(bot, "close"):
                bot.close()
    return pa.RecordBatch.from_pydict({c: pa.array(v, t) for (c, t), v in zip(_COLUMNS.items(), rows.values(), strict=True)})


# ---------------------------------------------------------------- the algorithm


def crosstable(players: list[str], first: np.ndarray, second: np.ndarray, score_first: np.ndarray,
               fit: EloFit) -> pa.Table:
    """One row per player, strongest first, numbered `1.`, `2.`, ...: its `points/games`
    against the player of each number (columns `1`, `2`, ...; short, so the table stays
    narrow enough for a console), its total score and its Elo with the 95% half-width."""
    from gamescale.algorithms.board.elo import pair_counts

    games, points = pair_counts(first, second, score_first, len(players))
    order = np.argsort(-fit.rating, kind="stable")
    columns: dict[str, list] = {"player": [f"{k + 1}. {players[i]}" for k, i in enumerate(order)]}
    for k, j in enumerate(order):
        columns[str(k + 1)] = [
            "" if i == j or games[i, j] == 0 else f"{points[i, j]:g}/{games[i, j]:g}" for i in order
        ]
    columns["score"] = [f"{fit.score[i]:g}/{fit.games[i]}" for i in order]
    columns["elo"] = [f"{fit.rating[i]:.0f} ± {fit.upper[i] - fit.rating[i]:.0f}" for i in order]
    return pa.table(columns)


def elo_table(fit: EloFit, reference: str, reference_elo: float, virtual_draws: float) -> pa.Table:
    table = pa.table({
        "player": fit.players,
        "elo": fit.rating,
        "lower": fit.lower,
        "upper": fit.upper,
        "sd": fit.sd,
        "games": fit.games,
        "score": fit.score,
    })
    return annotate(
        table,
        reference=reference,
        reference_elo=reference_elo,
        method="Bradley-Terry maximum likelihood, draws as half points; 95% intervals from the observed information",
        virtual_draws=virtual_draws,
    )


class Tournament:
    """See the module docstring. State: one array per `games` column (all rounds so far)."""

    uses_rollout_workers = True

    def __init__(self, env: Any, config: Any, with_model: bool = False):
        self.config = config
        self.spec = game_spec(env)
        kind = self.spec["kind"]
        if config.schedule == "gauntlet" and not config.opponents:
            raise ValueError("a gauntlet needs `opponents` for the bots to play")
        self.players = players_of(list(config.bots), config.schedule, list(config.opponents))
        for name in self.players:
            check_bot_name(name, kind, with_model)
        if len(self.players) < 2:
            raise ValueError(f"a tournament needs two bots, got {self.players}")
        if config.reference not in self.players:
            raise ValueError(f"reference bot {config.reference!r} does not play; players: {self.players}")
        if config.games_per_pair % 2:
            raise ValueError(f"games_per_pair must be even (both colours), got {config.games_per_pair}")
        if any(n.startswith("stockfish") for n in self.players):
            from gamescale.algorithms.board.stockfish import EngineNotFoundError, find_stockfish

            try:
                find_stockfish(config.stockfish_path)
            except EngineNotFoundError as err:
                raise ValueError(str(err)) from None
        self.pairs = pairings(self.players, list(config.bots), config.schedule, list(config.opponents))

    def learner_specs(self) -> dict:
        return {}

    def init(self, seed: int) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for name, kind in _COLUMNS.items():
            state[name] = np.zeros(0, "<U1" if kind == pa.string() else np.float64 if name == "score_first" else np.int64)
        return state

    def _starts(self, ctx: StepContext, schedule: np.ndarray) -> list[str | None]:
        """Chess960 without a fixed position: one random start per pairing and round, the
        same for both colours."""
        if self.spec["kind"] != "chess960" or self.spec.get("fen") or self.spec.get("start_index") is not None:
            return [None] * len(schedule)
        from gamescale.envs.board.chess_env import chess960_board

        rng = np.random.default_rng([ctx.seed, ctx.iteration, 960])
        per_pair = rng.integers(960, size=len(self.pairs))
        g = self.config.games_per_pair
        return [chess960_board(int(per_pair[k // g])).fen() for k in range(len(schedule))]

    def step(self, state: dict[str, Any], ctx: StepContext) -> tuple[dict[str, Any], dict[str, float]]:
        return self.play_round(state, ctx)

    def play_round(self, state: dict[str, Any], ctx: StepContext,
                   model: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, float]]:
        """One round; `model` (see `make_bot`) lets model bots play (board_model runs)."""
        cfg = self.config
        schedule = round_games(self.pairs, cfg.games_per_pair)
        starts = self._starts(ctx, schedule)
        # contiguous blocks: a pairing's games (same colour) stay together, as one batch
        blocks = np.array_split(np.arange(len(schedule)), ctx.num_shards)
        payloads = [{"games": schedule[b].tolist(), "starts": [starts[k] for k in b]} for b in blocks]
        shared = {"game": self.spec, "config": cfg.model_dump(), "players": self.players, "iteration": ctx.iteration,
                  "model": model}
        batches = ctx.shards.map(play_shard, ctx.shard_tasks(payloads), shared=shared)
        table = pa.Table.from_batches(batches, schema=batches[0].schema).sort_by("game")
        played = table["game"].to_numpy()
        if not np.array_equal(played, schedule[:, 0]):  # every scheduled game exactly once
            raise RuntimeError(f"round {ctx.iteration} returned games {played.tolist()}, scheduled {len(schedule)}")
        new = {c: np.concatenate([state[c], np.asarray(table[c].to_pylist(), dtype=None if c in (
            "start", "moves", "final", "termination") else state[c].dtype)]) for c in _COLUMNS}
        fit = self.fit(new)
        metrics = {f"elo_{p}": float(r) for p, r in zip(fit.players, fit.rating, strict=True)}
        metrics["games"] = float(len(new["game"]))
        metrics["engine_restarts"] = float(new["engine_restarts"].sum())
        return new, metrics

    def fit(self, state: dict[str, Any]) -> EloFit:
        cfg = self.config
        return fit_elo(self.players, state["first"], state["second"], state["score_first"], cfg.reference,
                       cfg.reference_elo, cfg.virtual_draws)

    def tables(self, state: dict[str, Any]) -> dict[str, pa.Table]:
        cfg = self.config
        columns = {c: state[c] for c in _COLUMNS}
        names = np.asarray(self.players, dtype=object)
        columns["first"] = names[state["first"].astype(int)]
        columns["second"] = names[state["second"].astype(int)]
        games = annotate(pa.table(columns), game=self.spec["kind"], players=self.players,
                         sample_games=cfg.sample_games)
        out = {"games": games}
        if len(state["game"]):
            fit = self.fit(state)
            out["elo"] = elo_table(fit, cfg.reference, cfg.reference_elo, cfg.virtual_draws)
            out["crosstable"] = crosstable(self.players, state["first"], state["second"], state["score_first"], fit)
        return out

    def files(self, state: dict[str, Any]) -> dict[str, bytes]:
        """Chess: `pgn/round_<k>.pgn` per round, and SVG boards of sample final positions."""
        if self.spec["kind"] not in CHESS or not len(state["game"]):
            return {}
        from gamescale.algorithms.board.chess_records import pgn_text, svg_board

        out: dict[str, bytes] = {}
        chess960 = self.spec["kind"] == "chess960"
        for it in np.unique(state["iteration"]):
            rows = np.flatnonzero(state["iteration"] == it)
            texts = [
                pgn_text(
                    white=self.players[int(state["first"][r])], black=self.players[int(state["second"][r])],
                    moves=str(state["moves"][r]), start=str(state["start"][r]) or self.spec.get("fen"),
                    chess960=chess960, round_number=int(it) + 1, game_number=int(state["game"][r]) + 1,
                    termination=str(state["termination"][r]),
                )
                for r in rows
            ]
            out[f"pgn/round_{int(it) + 1:03d}.pgn"] = "\n\n".join(texts).encode() + b"\n"
        for r in sample_rows(state["iteration"], state["first"], state["second"], self.config.sample_games):
            name = f"positions/round{int(state['iteration'][r]) + 1}_game{int(state['game'][r]) + 1}.svg"
            out[name] = svg_board(str(state["final"][r])).encode()
        return out

    def summary(self, state: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"games": int(len(state["game"])), "engine_restarts": int(state["engine_restarts"].sum())}
        if len(state["game"]):
            fit = self.fit(state)
            out["elo"] = {p: {"elo": round(float(r), 1), "sd": round(float(s), 1)}
                          for p, r, s in zip(fit.players, fit.rating, fit.sd, strict=True)}
        return out


def sample_rows(iteration: np.ndarray, first: np.ndarray, second: np.ndarray, count: int) -> list[int]:
    """Up to `count` games of the last round, one per pairing first (for pictures)."""
    if not len(iteration) or count <= 0:
        return []
    last = np.flatnonzero(iteration == iteration.max())
    seen: set = set()
    picked = []
    for r in last:
        pair = tuple(sorted((str(first[r]), str(second[r]))))
        if pair not in seen:
            seen.add(pair)
            picked.append(int(r))
    picked += [int(r) for r in last if int(r) not in picked]
    return picked[:count]
