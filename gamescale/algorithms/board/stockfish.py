"""Stockfish (or any UCI engine) as a chess bot, through python-chess's UCI driver.

Strength: `elo` sets `UCI_LimitStrength` and `UCI_Elo` (Stockfish accepts 1350..2850),
`skill_level` sets `Skill Level` (0..20), and `nodes` / `movetime_s` / `depth` limit the
search of every move. The binary is `path`, else `$STOCKFISH`, else `stockfish` on the
PATH, else the Debian package's `/usr/games/stockfish`; a missing one is a one-line
`EngineNotFoundError` that says how to install it. Use as a context manager, or `close()`.
`act` makes it a batch `Bot` on `gamescale.envs.board.chess_batch` states, and
`new_game(key)` starts a new game in the engine (ucinewgame: a fresh hash table).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import chess
import chess.engine
import numpy as np

DEBIAN_PATH = "/usr/games/stockfish"
INSTALL_HINT = "install it with `apt-get install stockfish` (Debian/Ubuntu) or `brew install stockfish`, or set $STOCKFISH"


class EngineNotFoundError(FileNotFoundError):
    """No engine binary where one was looked for."""

    def __str__(self) -> str:
        return str(self.args[0])


def find_stockfish(path: str | None = None) -> str:
    """The engine binary to run (see the module docstring), or EngineNotFoundError."""
    if path is not None:
        found = shutil.which(path)
        if found is None:
            raise EngineNotFoundError(f"chess engine binary {path!r} not found or not executable; {INSTALL_HINT}")
        return found
    for candidate in (os.environ.get("STOCKFISH"), "stockfish", DEBIAN_PATH):
        if candidate and (found := shutil.which(candidate)):
            return found
    raise EngineNotFoundError(f"Stockfish not found (looked at $STOCKFISH, PATH, {DEBIAN_PATH}); {INSTALL_HINT}")


@dataclass
class StockfishBot:
    """A UCI engine playing one move at a time on python-chess boards."""

    elo: int | None = None
    skill_level: int | None = None
    nodes: int | None = None
    movetime_s: float | None = None
    depth: int | None = None
    threads: int = 1
    hash_mb: int = 16
    path: str | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.nodes is None and self.depth is None and self.movetime_s is None:
            self.nodes = 10_000  # always bounded: `go` without a limit would search forever
        self.name = self.name or "stockfish" + (f"-elo{self.elo}" if self.elo else "") + (
            f"-skill{self.skill_level}" if self.skill_level is not None else "") + (
            f"-n{self.nodes}" if self.nodes else "")
        self.binary = find_stockfish(self.path)
        self._engine: chess.engine.SimpleEngine | None = None
        self.game_key: object = None  # a new key makes the engine start a new game (ucinewgame)

    def _options(self, engine: chess.engine.SimpleEngine) -> dict:
        options: dict = {"Threads": self.threads, "Hash": self.hash_mb}
        if self.elo is not None:
            low, high = engine.options["UCI_Elo"].min, engine.options["UCI_Elo"].max
            if not low <= self.elo <= high:
                raise ValueError(f"elo {self.elo} is outside this engine's UCI_Elo range {low}..{high}")
            options.update({"UCI_LimitStrength": True, "UCI_Elo": self.elo})
        if self.skill_level is not None:
            options["Skill Level"] = self.skill_level
        return options

    @property
    def engine(self) -> chess.engine.SimpleEngine:
        """The running engine process, (re)started on demand (after a crash too)."""
        if self._engine is None:
            engine = chess.engine.SimpleEngine.popen_uci(self.binary)
            try:
                engine.configure(self._options(engine))
            except Exception:
                engine.quit()
                raise
            self._engine = engine
        return self._engine

    def limit(self) -> chess.engine.Limit:
        return chess.engine.Limit(nodes=self.nodes, time=self.movetime_s, depth=self.depth)

    def move(self, board: chess.Board) -> chess.Move:
        """The engine's move in `board` (Chess960 boards are sent as Chess960)."""
        if board.is_game_over(claim_draw=False):
            raise ValueError(f"no move to make: the game is over in {board.fen()}")
        try:
            result = self.engine.play(board, self.limit(), game=self.game_key)
        except chess.engine.EngineTerminatedError:
            self._engine = None  # died mid-move: the next call starts a fresh process
            raise
        return result.move

    def new_game(self, key: object) -> None:
        """Start a new game called `key`: the engine forgets its hash table, so a game replays
        move for move under a node or depth limit (UCI_Elo and Skill Level draw at random)."""
        self.game_key = key

    def act(self, game, state, rng) -> np.ndarray:
        """The Bot interface on a batch of chess games (`gamescale.envs.board.chess_batch`)."""
        from gamescale.envs.board.chess_env import encode_move

        actions = np.zeros(state.batch_size, np.int64)
        for i, (board, over) in enumerate(zip(state.boards, game.done(state), strict=True)):
            if not over:
                actions[i] = encode_move(self.move(board), board.turn)
        return actions

    def close(self) -> None:
        if self._engine is not None:
            try:
                self._engine.quit()
            except chess.engine.EngineTerminatedError:
                pass
            self._engine = None

    def __enter__(self) -> StockfishBot:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
