"""Text states of every board game: FEN for chess and Chess960, a FEN-like string for
Connect Four and Hex. These are what the board model reads and writes.

Connect Four and Hex: the board's rows top first, each a string of `.` (empty), `x`
(a stone of player_0: Connect Four's first player, Hex's black) and `o` (player_1),
joined by `/`, then a space and the side to move (`x` or `o`). The empty Connect Four
board is `......./......./......./......./......./....... x`. A Hex position after the
swap rule's swap (a move that adds no stone) has the other side to move than the stone
count says: that is how the swap is read back, so every reachable position round-trips. Chess and Chess960:
python-chess's FEN (X-FEN castling letters in Chess960).

Batch functions take and return the batch engines' states (`connect_four_vec`,
`hex_vec`, `chess_batch`); a malformed string is a one-line `BoardInputError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from gamescale.envs.board.connect_four import COLUMNS, ROWS

SIDES = "xo"


class BoardInputError(ValueError):
    """A text state that names no legal position of its game."""


def grid_text(grid: np.ndarray, to_play: int) -> str:
    """One `[rows, cols]` int board (0 empty, 1 player_0, 2 player_1) and the mover as text."""
    return "/".join("".join(".xo"[v] for v in row) for row in grid) + " " + SIDES[int(to_play)]


def parse_grid(text: str, rows: int, cols: int, game: str) -> tuple[np.ndarray, int]:
    """(int8 [rows, cols] board, side to move) of a grid text; BoardInputError otherwise."""
    parts = text.split(" ")
    if len(parts) != 2 or parts[1] not in ("x", "o"):
        raise BoardInputError(f"malformed {game} state {text!r}: want '<rows joined by />' then ' x' or ' o'")
    lines = parts[0].split("/")
    if len(lines) != rows or any(len(line) != cols for line in lines):
        raise BoardInputError(f"malformed {game} state {text!r}: want {rows} rows of {cols} cells")
    if any(ch not in ".xo" for line in lines for ch in line):
        raise BoardInputError(f"malformed {game} state {text!r}: cells are '.', 'x' or 'o'")
    grid = np.array([[".xo".index(ch) for ch in line] for line in lines], np.int8)
    return grid, SIDES.index(parts[1])


# ---------------------------------------------------------------- Connect Four


def connect_four_texts(state: Any) -> list[str]:
    """The text of every game of a `connect_four_vec` state."""
    from gamescale.envs.board import connect_four_vec

    grids = connect_four_vec.boards(state)
    return [grid_text(g, p) for g, p in zip(grids, connect_four_vec.to_play(state), strict=True)]


def connect_four_grid(text: str) -> np.ndarray:
    """int8 [6, 7] board of one Connect Four text (row 0 at the top), checked: stones lie
    on stones, the counts alternate and the side to move follows from them."""
    grid, side = parse_grid(text, ROWS, COLUMNS, "Connect Four")
    filled = grid != 0
    if np.any(filled[:-1] & ~filled[1:]):  # a stone above an empty cell
        raise BoardInputError(f"Connect Four state {text!r} has a floating stone")
    x, o = int((grid == 1).sum()), int((grid == 2).sum())
    if x - o not in (0, 1) or side != x - o:
        raise BoardInputError(f"Connect Four state {text!r}: {x} x and {o} o stones with {SIDES[side]} to move")
    return grid


def connect_four_from_texts(texts: Sequence[str]) -> Any:
    """A `connect_four_vec` state holding the positions `texts` (winners recomputed)."""
    from gamescale.envs.board import connect_four_vec

    grids = np.stack([connect_four_grid(t) for t in texts]) if len(texts) else np.zeros((0, ROWS, COLUMNS), np.int8)
    # bit 7c + h is the stone at height h (from the bottom) of column c
    bits = np.uint64(1) << (np.arange(COLUMNS, dtype=np.uint64)[None, :] * np.uint64(ROWS + 1)
                           + np.arange(ROWS - 1, -1, -1, dtype=np.uint64)[:, None])  # [6, 7]
    stones = np.stack([np.bitwise_or.reduce(np.where(grids == p + 1, bits[None], np.uint64(0)).reshape(len(texts), -1),
                                            axis=1) for p in (0, 1)], axis=1).astype(np.uint64)
    plies = (grids != 0).sum(axis=(1, 2)).astype(np.int16)
    won = connect_four_vec.has_four(stones)  # [B, 2]
    winner = np.where(won[:, 0], 0, np.where(won[:, 1], 1, -1)).astype(np.int8)
    return connect_four_vec.ConnectFourState(stones, plies, winner)


# ---------------------------------------------------------------- Hex


def hex_texts(state: Any) -> list[str]:
    """The text of every game of a `hex_vec` state."""
    from gamescale.envs.board import hex_vec

    grids = hex_vec.boards(state)
    return [grid_text(g, p) for g, p in zip(grids, hex_vec.to_play(state), strict=True)]


def hex_from_texts(texts: Sequence[str], size: int) -> Any:
    """A `hex_vec` state holding the positions `texts` on a size x size board; groups and
    winners are rebuilt by placing the stones one cell at a time in every game at once."""
    from gamescale.envs.board import hex_vec

    grids, plies = [], []
    for text in texts:
        grid, side = parse_grid(text, size, size, f"Hex {size}x{size}")
        x, o = int((grid == 1).sum()), int((grid == 2).sum())
        # The swap is a move that adds no stone: after it, the side to move is the other one.
        swapped = side != (x + o) % 2
        if (o - x if swapped else x - o) not in (0, 1):
            raise BoardInputError(f"Hex state {text!r}: {x} x and {o} o stones with {SIDES[side]} to move")
        grids.append(grid.reshape(-1))
        plies.append(x + o + int(swapped))
    state = hex_vec.init(len(texts), size)
    board = np.array(grids, np.int8).reshape(len(texts), size * size)
    for cell in range(size * size):
        rows = np.flatnonzero(board[:, cell] != 0)
        if len(rows):
            state = hex_vec._place(state, rows, np.full(len(rows), cell, np.int64), board[rows, cell].astype(np.int64) - 1)
    return replace(state, plies=np.array(plies, np.int16))


# ---------------------------------------------------------------- chess


def chess_texts(state: Any) -> list[str]:
    """The FEN of every game of a `chess_batch` state."""
    return [board.fen() for board in state.boards]


def chess_from_texts(texts: Sequence[str], chess960: bool = False) -> Any:
    """A `chess_batch` state from FENs (no move history: repetitions start afresh)."""
    from gamescale.envs.board import chess_batch
    from gamescale.envs.board.chess_env import parse_fen

    try:
        return chess_batch.from_boards([parse_fen(t, chess960) for t in texts])
    except ValueError as err:  # parse_fen's BoardInputError is the chess env's own class
        raise BoardInputError(str(err)) from None


# ---------------------------------------------------------------- any game


def state_texts(kind: str, state: Any) -> list[str]:
    """Text of every game of a batch state of game `kind` (connect_four, hex, chess, chess960)."""
    if kind == "connect_four":
        return connect_four_texts(state)
    if kind == "hex":
        return hex_texts(state)
    if kind in ("chess", "chess960"):
        return chess_texts(state)
    raise BoardInputError(f"no text states for game {kind!r}")


def state_from_texts(kind: str, texts: Sequence[str], size: int = 11) -> Any:
    """The batch state of game `kind` holding `texts` (`size`: Hex only)."""
    if kind == "connect_four":
        return connect_four_from_texts(texts)
    if kind == "hex":
        return hex_from_texts(texts, size)
    if kind in ("chess", "chess960"):
        return chess_from_texts(texts, kind == "chess960")
    raise BoardInputError(f"no text states for game {kind!r}")
