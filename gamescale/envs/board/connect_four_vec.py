"""Batch-first Connect Four on bitboards: thousands of games advance per numpy call.

Layout (Pascal Pons's): each player's stones are one `uint64`; column `c` occupies bits
`7c .. 7c+5` (row 0 = bottom) and bit `7c+6` is an always-empty sentinel, so shifts by
1 (vertical), 7 (horizontal), 6 and 8 (diagonals) never wrap between columns. A state
holds `B` games; games that are over ignore further actions, so a batch can be stepped
until every game has finished.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from gamescale.envs.board.batch import BatchGame, random_legal
from gamescale.envs.board.connect_four import COLUMNS, ROWS

NUM_ACTIONS = COLUMNS
MAX_PLIES = ROWS * COLUMNS
_U1 = np.uint64(1)
_COL_SHIFT = np.arange(COLUMNS, dtype=np.uint64) * np.uint64(ROWS + 1)  # [7] bit offset of each column
_BOTTOM = _U1 << _COL_SHIFT  # [7] bottom cell of each column
_TOP = _U1 << (_COL_SHIFT + np.uint64(ROWS - 1))  # [7] top cell of each column
_COLUMN = ((_U1 << np.uint64(ROWS)) - _U1) << _COL_SHIFT  # [7] all six cells of each column
_SHIFTS = tuple(np.uint64(s) for s in (1, ROWS + 1, ROWS, ROWS + 2))


@dataclass(frozen=True)
class ConnectFourState:
    """`B` Connect Four games.

    stones: uint64 [B, 2]  stones of player_0 and player_1 (absolute, not side-to-move)
    plies:  int16 [B]      stones on the board; player `plies % 2` is to move
    winner: int8 [B]       0 or 1 once a player has connected four, else -1
    """

    stones: np.ndarray
    plies: np.ndarray
    winner: np.ndarray

    @property
    def batch_size(self) -> int:
        return self.plies.shape[0]


def init(batch_size: int) -> ConnectFourState:
    """`batch_size` empty boards, player_0 to move."""
    return ConnectFourState(
        np.zeros((batch_size, 2), np.uint64), np.zeros(batch_size, np.int16), np.full(batch_size, -1, np.int8)
    )


def to_play(state: ConnectFourState) -> np.ndarray:
    """int64 [B]: the player to move (meaningless once a game is over)."""
    return state.plies.astype(np.int64) % 2


def done(state: ConnectFourState) -> np.ndarray:
    """bool [B]: won or full."""
    return (state.winner >= 0) | (state.plies >= MAX_PLIES)


def legal_mask(state: ConnectFourState) -> np.ndarray:
    """bool [B, 7]: columns with room, all False once a game is over."""
    occupied = state.stones[:, 0] | state.stones[:, 1]
    return ((occupied[:, None] & _TOP[None, :]) == 0) & ~done(state)[:, None]


def has_four(stones: np.ndarray) -> np.ndarray:
    """bool [...]: whether each bitboard holds four in a row in any direction."""
    found = np.zeros(stones.shape, bool)
    for s in _SHIFTS:
        pairs = stones & (stones >> s)
        found |= (pairs & (pairs >> (s + s))) != 0
    return found


def step(state: ConnectFourState, actions: np.ndarray) -> ConnectFourState:
    """Drop a stone in column `actions[b]` of every unfinished game `b` (finished games stay)."""
    actions = np.asarray(actions, np.int64)
    live = ~done(state)
    if np.any(live & ((actions < 0) | (actions >= COLUMNS))):
        raise ValueError(f"Connect Four columns are 0..{COLUMNS - 1}, got {actions[live].min()}..{actions[live].max()}")
    column = np.clip(actions, 0, COLUMNS - 1)
    occupied = state.stones[:, 0] | state.stones[:, 1]
    if np.any(live & ((occupied & _TOP[column]) != 0)):
        bad = int(np.flatnonzero(live & ((occupied & _TOP[column]) != 0))[0])
        raise ValueError(f"illegal move: column {int(actions[bad])} is full in game {bad}")
    # Adding the column's bottom bit to the occupied cells carries into the first empty cell.
    new_bit = (occupied + _BOTTOM[column]) & _COLUMN[column]
    new_bit = np.where(live, new_bit, np.uint64(0))
    player = to_play(state)
    stones = state.stones.copy()
    rows = np.arange(state.batch_size)
    stones[rows, player] |= new_bit
    won = live & has_four(stones[rows, player])
    winner = np.where(won, player, state.winner).astype(np.int8)
    return replace(state, stones=stones, plies=(state.plies + live).astype(np.int16), winner=winner)


def outcome(state: ConnectFourState) -> np.ndarray:
    """int8 [B]: the winner (0/1), -1 for a draw, -2 for a game still going."""
    result = state.winner.copy()
    result[(result < 0) & ~done(state)] = -2
    return result


def random_actions(state: ConnectFourState, rng: np.random.Generator) -> np.ndarray:
    """int64 [B]: a uniformly random legal column per game (0 for finished games)."""
    return random_legal(legal_mask(state), rng)


def random_playout(state: ConnectFourState, rng: np.random.Generator) -> tuple[ConnectFourState, np.ndarray]:
    """Play uniformly random moves until every game is over.

    Returns the final state and the moves, int8 [B, 42] (-1 after a game ended).
    """
    moves = np.full((state.batch_size, MAX_PLIES), -1, np.int8)
    for ply in range(MAX_PLIES):
        live = ~done(state)
        if not live.any():
            break
        actions = random_actions(state, rng)
        moves[:, ply] = np.where(live, actions, -1)
        state = step(state, actions)
    return state, moves


def random_rollout(state: ConnectFourState, rng: np.random.Generator) -> np.ndarray:
    """Winners (int8 [B]: 0 / 1, -1 draw) of uniformly random play to the end of every game.

    The fast path of search rollouts: the stones of the side to move and of the other side
    swap each ply, finished games leave the working arrays at once, and no state object is
    built per move. Same move distribution as `random_playout`.
    """
    winner = state.winner.copy()
    live = np.flatnonzero(~done(state))
    side = state.plies[live].astype(np.int64) % 2
    mover = state.stones[live, side]
    other = state.stones[live, 1 - side]
    occupied = mover | other
    plies = state.plies[live].astype(np.int64)
    while live.size:
        actions = random_legal((occupied[:, None] & _TOP[None, :]) == 0, rng)
        new_bit = (occupied + _BOTTOM[actions]) & _COLUMN[actions]
        mover = mover | new_bit
        occupied = occupied | new_bit
        plies += 1
        won = has_four(mover)
        winner[live[won]] = (plies[won] - 1) % 2
        keep = ~won & (plies < MAX_PLIES)
        live, mover, other, occupied, plies = live[keep], other[keep], mover[keep], occupied[keep], plies[keep]
    return winner


def boards(state: ConnectFourState) -> np.ndarray:
    """int8 [B, 6, 7]: 0 empty, 1 player_0, 2 player_1, row 0 at the top (the AEC env's layout)."""
    bit = _U1 << (_COL_SHIFT[None, :] + np.arange(ROWS - 1, -1, -1, dtype=np.uint64)[:, None])  # [6, 7]
    own = [(state.stones[:, p, None, None] & bit[None]) != 0 for p in (0, 1)]
    return (own[0] * 1 + own[1] * 2).astype(np.int8)


def from_moves(moves: list[list[int]]) -> ConnectFourState:
    """The positions after each move list (0-based columns); lists may differ in length."""
    batch = len(moves)
    length = max((len(m) for m in moves), default=0)
    padded = np.full((batch, length), -1, np.int64)
    for b, m in enumerate(moves):
        padded[b, : len(m)] = m
    state = init(batch)
    for ply in range(length):
        live = padded[:, ply] >= 0
        if np.any(live & done(state)):
            raise ValueError(f"a move list continues after its game ended (ply {ply + 1})")
        # Games whose list has ended are marked finished for this call only.
        frozen = replace(state, winner=np.where(live, state.winner, 2).astype(np.int8))
        stepped = step(frozen, np.where(live, padded[:, ply], 0))
        state = replace(stepped, winner=np.where(live, stepped.winner, state.winner).astype(np.int8))
    return state


def game() -> BatchGame:
    """This engine as a `BatchGame` (for search)."""
    return BatchGame(
        "connect_four", NUM_ACTIONS, MAX_PLIES, init, legal_mask, step, done, to_play, lambda s: s.winner, random_rollout
    )
