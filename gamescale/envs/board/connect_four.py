"""Connect Four (7 columns x 6 rows) as a PettingZoo AEC env, kept deliberately plain.

The board is `int8 [6, 7]`, row 0 at the top (PettingZoo classic's layout): 0 empty,
1 a stone of `player_0` (moves first), 2 a stone of `player_1`. Action `c` drops a
stone in column `c`. A win is found by scanning the four lines through the last stone,
so this env shares no code with the bitboard engine in `connect_four_vec`: the two check
each other. Observation: `int8 [6, 7, 2]`, plane 0 the observing player's stones,
plane 1 the opponent's (PettingZoo classic convention).
"""

from __future__ import annotations

import numpy as np

from gamescale.envs.board.aec import DRAW, TwoPlayerBoardEnv

ROWS, COLUMNS = 6, 7
_LINES = ((0, 1), (1, 0), (1, 1), (1, -1))  # (d_row, d_col): horizontal, vertical, two diagonals


def parse_moves(moves: str) -> list[int]:
    """Columns of a move string in the solver literature's notation ('4453', columns 1..7)."""
    if not all(ch in "1234567" for ch in moves):
        raise ValueError(f"malformed Connect Four move string {moves!r}: use digits 1..7")
    return [int(ch) - 1 for ch in moves]


class ConnectFourEnv(TwoPlayerBoardEnv):
    """Connect Four, PettingZoo AEC (see the module docstring for the conventions)."""

    metadata = {"name": "connect_four_v0", "render_modes": ["ansi"], "is_parallelizable": False}
    num_actions = COLUMNS
    observation_shape = (ROWS, COLUMNS, 2)

    def _new_game(self, rng: np.random.Generator) -> None:
        self.board = np.zeros((ROWS, COLUMNS), np.int8)
        self.heights = np.zeros(COLUMNS, np.int64)  # stones per column
        self._last: tuple[int, int] | None = None
        self._stones = 0
        self._won: int | None = None

    def _to_play(self) -> int:
        return self._stones % 2

    def _legal_mask(self) -> np.ndarray:
        return self.heights < ROWS

    def _play(self, action: int) -> None:
        player = self._to_play()
        row = ROWS - 1 - int(self.heights[action])
        self.board[row, action] = player + 1
        self.heights[action] += 1
        self._stones += 1
        if self._connects_four(row, action):
            self._won = player

    def _connects_four(self, row: int, col: int) -> bool:
        stone = self.board[row, col]
        for dr, dc in _LINES:
            run = 1
            for sign in (1, -1):
                r, c = row + sign * dr, col + sign * dc
                while 0 <= r < ROWS and 0 <= c < COLUMNS and self.board[r, c] == stone:
                    run += 1
                    r, c = r + sign * dr, c + sign * dc
            if run >= 4:
                return True
        return False

    def _outcome(self) -> int | None:
        if self._won is not None:
            return self._won
        return DRAW if self._stones == ROWS * COLUMNS else None

    def _observe(self, player: int) -> np.ndarray:
        return np.stack([self.board == player + 1, self.board == 2 - player], axis=-1).astype(np.int8)

    def _describe(self, action: int) -> str:
        return f"column {action}" + (" (full)" if 0 <= action < COLUMNS else " (columns are 0..6)")

    def play_moves(self, moves: str | list[int]) -> None:
        """Play a move list (a '1'..'7' string or 0-based columns) from the current position."""
        for column in parse_moves(moves) if isinstance(moves, str) else moves:
            self.step(column)

    def __str__(self) -> str:
        rows = ["".join(".XO"[v] for v in row) for row in self.board]
        return "\n".join([*rows, "1234567"])
