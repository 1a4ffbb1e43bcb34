"""Hex on an n x n rhombus (n = 5..13, default 11) as a PettingZoo AEC env.

Cell `(r, c)` is action `r * n + c`; its six neighbours are `(r-1, c), (r-1, c+1),
(r, c-1), (r, c+1), (r+1, c-1), (r+1, c)`. `player_0` (black, first) joins the top row
to the bottom row, `player_1` (white) the left column to the right column. Hex has no
draws. With the swap rule, `player_1`'s first move may be action `n * n` ("swap"):
black's stone at `(r, c)` becomes a white stone at `(c, r)` (the swap-pieces form, so
each player keeps their pair of edges) and black moves next.

Connections are tracked with a plain union-find over the cells plus four virtual edge
cells; the batch engine (`hex_vec`) relabels groups instead, so the two check each other.
Observation: `int8 [n, n, 3]`: the observer's stones, the opponent's, and a plane of
ones when the observer is `player_1` (who joins left and right).
"""

from __future__ import annotations

import numpy as np

from gamescale.envs.board.aec import TwoPlayerBoardEnv

MIN_SIZE, MAX_SIZE = 5, 13
NEIGHBOUR_OFFSETS = ((-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0))


def check_size(size: int) -> int:
    if not MIN_SIZE <= int(size) <= MAX_SIZE:
        raise ValueError(f"hex size must be {MIN_SIZE}..{MAX_SIZE}, got {size}")
    return int(size)


def cell_name(size: int, action: int) -> str:
    """'a1'-style name: column letter, row number (1-based)."""
    if action == size * size:
        return "swap"
    r, c = divmod(action, size)
    return f"{'abcdefghijklm'[c]}{r + 1}"


class HexEnv(TwoPlayerBoardEnv):
    """Hex, PettingZoo AEC (see the module docstring for the conventions)."""

    metadata = {"name": "hex_v0", "render_modes": ["ansi"], "is_parallelizable": False}

    def __init__(self, size: int = 11, swap_rule: bool = False, **kwargs):
        self.size = check_size(size)
        self.swap_rule = bool(swap_rule)
        self.num_cells = self.size * self.size
        self.num_actions = self.num_cells + int(self.swap_rule)
        self.observation_shape = (self.size, self.size, 3)
        super().__init__(**kwargs)

    # Union-find over cells 0..n*n-1 and the virtual edges: n*n + 2p (near) and n*n + 2p + 1 (far)
    # for player p. Path halving keeps `_find` short.
    def _find(self, x: int) -> int:
        parent = self._parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def _union(self, a: int, b: int) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra != rb:
            self._parent[ra] = rb

    def _new_game(self, rng: np.random.Generator) -> None:
        self.board = np.zeros((self.size, self.size), np.int8)  # 0 empty, 1 player_0, 2 player_1
        self._parent = list(range(self.num_cells + 4))
        self._stones = 0
        self._swapped = False
        self._won: int | None = None

    def _to_play(self) -> int:
        return (self._stones + int(self._swapped)) % 2

    def _legal_mask(self) -> np.ndarray:
        mask = np.zeros(self.num_actions, bool)
        mask[: self.num_cells] = self.board.reshape(-1) == 0
        if self.swap_rule:
            mask[self.num_cells] = self._stones == 1 and not self._swapped
        return mask

    def _place(self, player: int, r: int, c: int) -> None:
        n = self.size
        self.board[r, c] = player + 1
        cell = r * n + c
        along = r if player == 0 else c  # the coordinate running between this player's edges
        if along == 0:
            self._union(cell, self.num_cells + 2 * player)
        if along == n - 1:
            self._union(cell, self.num_cells + 2 * player + 1)
        for dr, dc in NEIGHBOUR_OFFSETS:
            rr, cc = r + dr, c + dc
            if 0 <= rr < n and 0 <= cc < n and self.board[rr, cc] == player + 1:
                self._union(cell, rr * n + cc)
        if self._find(self.num_cells + 2 * player) == self._find(self.num_cells + 2 * player + 1):
            self._won = player

    def _play(self, action: int) -> None:
        if action == self.num_cells:  # swap: black's only stone becomes white's, mirrored
            (r,), (c,) = np.nonzero(self.board)
            self.board[r, c] = 0
            self._parent = list(range(self.num_cells + 4))
            self._place(1, int(c), int(r))
            self._swapped = True
            return
        player = self._to_play()
        self._place(player, *divmod(action, self.size))
        self._stones += 1

    def _outcome(self) -> int | None:
        return self._won

    def _observe(self, player: int) -> np.ndarray:
        side = np.full(self.board.shape, player, np.int8)
        return np.stack([self.board == player + 1, self.board == 2 - player, side], axis=-1).astype(np.int8)

    def _describe(self, action: int) -> str:
        if not 0 <= action < self.num_actions:
            return f"{action} (actions are 0..{self.num_actions - 1})"
        if action == self.num_cells:
            return "swap (only player_1's first move may swap)"
        return f"{cell_name(self.size, action)} (occupied)"

    def __str__(self) -> str:
        lines = [" " * r + " ".join(".XO"[v] for v in row) for r, row in enumerate(self.board)]
        return "\n".join(lines)
