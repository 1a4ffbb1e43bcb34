"""Batch-first Hex: `B` games on `[B, n*n]` arrays, connections by a batched union-find.

Every stone points to a parent stone of its group; a group's root remembers which of its
player's two edges the group touches (bit 0 near, bit 1 far). Placing a stone finds the
roots of its (at most six) same-coloured neighbours for all games at once, by pointer
jumping with path halving, and hangs them under the new stone. A player wins when a root
touches both edges. No step loops over games in Python. Conventions (cells, edges, swap rule) are those of `gamescale.envs.board.hex`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache, partial

import numpy as np

from gamescale.envs.board.batch import BatchGame, random_legal
from gamescale.envs.board.hex import NEIGHBOUR_OFFSETS, check_size

_EMPTY = -1  # parent of an empty cell


@dataclass(frozen=True)
class HexState:
    """`B` Hex games on an n x n board (N = n*n cells, padded with one dummy cell).

    board:  int8 [B, N+1]   0 empty, 1 player_0, 2 player_1 (cell N: dummy, always 0)
    labels: int16 [B, N+1]  union-find parent of each stone (itself at a root), -1 on empty cells
    edges:  uint8 [B, N+1]  edge bits of the group rooted at that cell (valid at roots)
    plies:  int16 [B]       moves made (a swap counts as a move)
    winner: int8 [B]        0 / 1 once a player has connected, else -1
    """

    board: np.ndarray
    labels: np.ndarray
    edges: np.ndarray
    plies: np.ndarray
    winner: np.ndarray

    @property
    def batch_size(self) -> int:
        return self.plies.shape[0]

    @property
    def size(self) -> int:
        return int(round((self.board.shape[1] - 1) ** 0.5))


@cache
def _tables(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """neighbours int64 [N, 6] (N = the dummy cell where off-board), edge bits uint8 [2, N], transpose [N]."""
    n = size
    cells = np.arange(n * n)
    r, c = np.divmod(cells, n)
    neighbours = np.full((n * n, 6), n * n, np.int64)
    for k, (dr, dc) in enumerate(NEIGHBOUR_OFFSETS):
        ok = (0 <= r + dr) & (r + dr < n) & (0 <= c + dc) & (c + dc < n)
        neighbours[ok, k] = ((r + dr) * n + c + dc)[ok]
    edge = np.stack([(r == 0) * 1 + (r == n - 1) * 2, (c == 0) * 1 + (c == n - 1) * 2]).astype(np.uint8)
    return neighbours, edge, c * n + r


def init(batch_size: int, size: int = 11) -> HexState:
    cells = check_size(size) ** 2 + 1
    return HexState(
        np.zeros((batch_size, cells), np.int8),
        np.full((batch_size, cells), _EMPTY, np.int16),
        np.zeros((batch_size, cells), np.uint8),
        np.zeros(batch_size, np.int16),
        np.full(batch_size, -1, np.int8),
    )


def to_play(state: HexState) -> np.ndarray:
    return state.plies.astype(np.int64) % 2


def done(state: HexState) -> np.ndarray:
    return state.winner >= 0


def legal_mask(state: HexState, swap_rule: bool = False) -> np.ndarray:
    """bool [B, N (+1 with the swap rule)]: empty cells (and swap on ply 1), all False once over."""
    mask = (state.board[:, :-1] == 0) & ~done(state)[:, None]
    if swap_rule:
        mask = np.concatenate([mask, ((state.plies == 1) & ~done(state))[:, None]], axis=1)
    return mask


def _roots(parent: np.ndarray, rows: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Union-find roots of `cells` [k, m] in games `rows` [k, 1], halving the paths walked."""
    while True:
        up = parent[rows, cells]
        if np.array_equal(up, cells):
            return cells
        parent[rows, cells] = parent[rows, up]
        cells = up


def _place(state: HexState, rows: np.ndarray, cells: np.ndarray, players: np.ndarray) -> HexState:
    """Put a stone of `players[i]` on `cells[i]` of game `rows[i]` and merge its groups."""
    neighbours, edge, _ = _tables(state.size)
    board, parent, edges = state.board.copy(), state.labels.copy(), state.edges.copy()
    colour = (players + 1).astype(np.int8)
    board[rows, cells] = colour
    parent[rows, cells] = cells
    around = neighbours[cells]  # [k, 6]; the dummy cell N where off the board
    same = board[rows[:, None], around] == colour[:, None]
    roots = _roots(parent, rows[:, None], np.where(same, around, cells[:, None]))
    bits = edge[players, cells] | np.bitwise_or.reduce(np.where(same, edges[rows[:, None], roots], 0), axis=1)
    parent[rows[:, None], roots] = cells[:, None]  # the new stone becomes the root of the merged group
    edges[rows, cells] = bits
    winner = state.winner.copy()
    winner[rows] = np.where(bits == 3, players, winner[rows])
    return replace(state, board=board, labels=parent, edges=edges, winner=winner)


def step(state: HexState, actions: np.ndarray, swap_rule: bool = False) -> HexState:
    """Play `actions[b]` in every unfinished game `b` (finished games stay as they are)."""
    actions = np.asarray(actions, np.int64)
    n_cells = state.board.shape[1] - 1
    live = ~done(state)
    mask = legal_mask(state, swap_rule)
    in_range = (actions >= 0) & (actions < mask.shape[1])
    ok = in_range & mask[np.arange(state.batch_size), np.clip(actions, 0, mask.shape[1] - 1)]
    if np.any(live & ~ok):
        bad = int(np.flatnonzero(live & ~ok)[0])
        raise ValueError(f"illegal Hex move {int(actions[bad])} in game {bad}")
    swap = live & (actions == n_cells)
    place = live & ~swap
    if swap.any():  # clear black's stone, then put white's on the mirrored cell
        rows = np.flatnonzero(swap)
        first = np.argmax(state.board[rows, :-1] != 0, axis=1)
        board, labels, edges = state.board.copy(), state.labels.copy(), state.edges.copy()
        board[rows, first], labels[rows, first], edges[rows, first] = 0, _EMPTY, 0
        cleared = replace(state, board=board, labels=labels, edges=edges)
        state = _place(cleared, rows, _tables(state.size)[2][first], np.ones(len(rows), np.int64))
    if place.any():
        rows = np.flatnonzero(place)
        state = _place(state, rows, actions[rows], to_play(state)[rows])
    return replace(state, plies=(state.plies + live).astype(np.int16))


def outcome(state: HexState) -> np.ndarray:
    """int8 [B]: the winner (0/1), or -2 for a game still going (Hex has no draws)."""
    return np.where(done(state), state.winner, -2).astype(np.int8)


def random_actions(state: HexState, rng: np.random.Generator, swap_rule: bool = False) -> np.ndarray:
    return random_legal(legal_mask(state, swap_rule), rng)


def random_playout(
    state: HexState, rng: np.random.Generator, swap_rule: bool = False
) -> tuple[HexState, np.ndarray]:
    """Random legal moves until every game is won; returns the state and moves int16 [B, N+1] (-1 after the end)."""
    n_cells = state.board.shape[1] - 1
    moves = np.full((state.batch_size, n_cells + 1), -1, np.int16)
    for ply in range(n_cells + 1):
        live = ~done(state)
        if not live.any():
            break
        actions = random_actions(state, rng, swap_rule)
        moves[:, ply] = np.where(live, actions, -1)
        state = step(state, actions, swap_rule)
    return state, moves


def boards(state: HexState) -> np.ndarray:
    """int8 [B, n, n]: the AEC env's board layout."""
    n = state.size
    return state.board[:, :-1].reshape(-1, n, n)


def winner_of(board: np.ndarray) -> np.ndarray:
    """int8 [B]: who has connected on each `[B, n, n]` board (0 / 1, -1 nobody), by flood fill.

    Independent of the incremental engine: used for crafted positions and to check it.
    """
    board = np.asarray(board)
    result = np.full(board.shape[0], -1, np.int8)
    for player in (0, 1):
        stones = board == player + 1
        if player == 1:
            stones = stones.transpose(0, 2, 1)  # white joins left-right: transpose to top-bottom
        reach = np.zeros_like(stones)
        reach[:, 0] = stones[:, 0]
        while True:
            grown = reach.copy()
            grown[:, 1:, :] |= reach[:, :-1, :]  # from (r-1, c)
            grown[:, 1:, :-1] |= reach[:, :-1, 1:]  # from (r-1, c+1)
            grown[:, :, 1:] |= reach[:, :, :-1]  # from (r, c-1)
            grown[:, :, :-1] |= reach[:, :, 1:]  # from (r, c+1)
            grown[:, :-1, 1:] |= reach[:, 1:, :-1]  # from (r+1, c-1)
            grown[:, :-1, :] |= reach[:, 1:, :]  # from (r+1, c)
            grown &= stones
            if np.array_equal(grown, reach):
                break
            reach = grown
        result[(result < 0) & reach[:, -1].any(axis=1)] = player
    return result


def game(size: int = 11, swap_rule: bool = False) -> BatchGame:
    """This engine on a size x size board as a `BatchGame` (for search)."""
    cells = check_size(size) ** 2
    return BatchGame(
        f"hex{size}",
        cells + int(swap_rule),
        cells + 1,
        partial(init, size=size),
        partial(legal_mask, swap_rule=swap_rule),
        partial(step, swap_rule=swap_rule),
        done,
        to_play,
        lambda s: s.winner,
    )
