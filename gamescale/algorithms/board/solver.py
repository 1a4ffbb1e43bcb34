"""Exact Connect Four solver: bitboard negamax with alpha-beta, a transposition table,
threat-first move ordering and a null-window search on the score.

Scores follow Pascal Pons's convention, so published test positions can be checked as
they are: 0 for a draw; a side that wins with its k-th stone scores 22 - k (positive for
the side to move when it wins, negative when it loses): the sooner the win, the larger.
Bitboards are Python ints with the layout of `gamescale.envs.board.connect_four_vec`
(7 bits per column, bottom row first, a sentinel bit on top of each column). The solver
counts the nodes it visits and gives up with `SolverBudgetExceeded` past `max_nodes`,
so callers can solve only the positions that finish within a budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from gamescale.envs.board.connect_four import COLUMNS, ROWS, parse_moves

_H = ROWS + 1
_CELLS = ROWS * COLUMNS
_BOTTOM = sum(1 << (c * _H) for c in range(COLUMNS))
_BOARD = _BOTTOM * ((1 << ROWS) - 1)
_COLUMN = [((1 << ROWS) - 1) << (c * _H) for c in range(COLUMNS)]
_TOP = [1 << (ROWS - 1 + c * _H) for c in range(COLUMNS)]
_BOTTOM_OF = [1 << (c * _H) for c in range(COLUMNS)]
_ORDER = (3, 2, 4, 1, 5, 0, 6)  # centre columns first: they take part in the most lines


def _half(x: int) -> int:
    """x / 2 rounded toward zero (the score bounds are defined with truncating division)."""
    return -(-x // 2) if x < 0 else x // 2


class SolverBudgetExceeded(RuntimeError):
    """The position needs more nodes than the solver was allowed."""


@dataclass(frozen=True)
class Position:
    """A Connect Four position: `current` the stones of the side to move, `mask` all stones."""

    current: int = 0
    mask: int = 0
    moves: int = 0

    @classmethod
    def from_moves(cls, moves: str | list[int]) -> Position:
        """From a '1'..'7' move string or 0-based columns; an illegal or game-ending list is an error."""
        columns = parse_moves(moves) if isinstance(moves, str) else list(moves)
        position = cls()
        for i, column in enumerate(columns):
            if not 0 <= column < COLUMNS or not position.can_play(column):
                raise ValueError(f"illegal move {column + 1} at ply {i + 1}")
            if position.is_winning_move(column):
                raise ValueError(f"move {column + 1} at ply {i + 1} ends the game; the solver takes open positions")
            position = position.play(column)
        return position

    def can_play(self, column: int) -> bool:
        return not self.mask & _TOP[column]

    def play(self, column: int) -> Position:
        new_mask = self.mask | (self.mask + _BOTTOM_OF[column])
        return Position(self.current ^ self.mask, new_mask, self.moves + 1)

    def is_winning_move(self, column: int) -> bool:
        move = (self.mask + _BOTTOM_OF[column]) & _COLUMN[column]
        return bool(_winning_cells(self.current, self.mask) & move)

    def key(self) -> int:
        return self.current + self.mask  # unique: mask's bottom-up fill plus the mover's stones


def _winning_cells(stones: int, mask: int) -> int:
    """Empty cells that would complete four of `stones` (any direction), as a bitboard."""
    # vertical: three stacked stones and the cell above them
    r = (stones << 1) & (stones << 2) & (stones << 3)
    for shift in (_H, _H - 1, _H + 1):  # horizontal and the two diagonals
        p = (stones << shift) & (stones << 2 * shift)
        r |= p & (stones << 3 * shift)  # three to the right of the cell ...
        r |= p & (stones >> shift)  # ... or two right and one left
        p = (stones >> shift) & (stones >> 2 * shift)
        r |= p & (stones >> 3 * shift)
        r |= p & (stones << shift)
    return r & (_BOARD ^ mask)


class ConnectFourSolver:
    """Strong solver (exact scores). One instance keeps its transposition table across calls."""

    def __init__(self, max_nodes: int | None = 2_000_000):
        self.max_nodes = max_nodes
        self.nodes = 0
        self._upper: dict[int, int] = {}  # key -> upper bound on the score

    def _negamax(self, pos: Position, alpha: int, beta: int) -> int:
        self.nodes += 1
        if self.max_nodes is not None and self.nodes > self.max_nodes:
            raise SolverBudgetExceeded(f"position needs more than {self.max_nodes} nodes")
        mask, current = pos.mask, pos.current
        if pos.moves == _CELLS:
            return 0
        possible = (mask + _BOTTOM) & _BOARD
        if _winning_cells(current, mask) & possible:
            return _half(_CELLS + 1 - pos.moves)
        # Moves that do not lose at once: never under an opponent threat, and block a forced one.
        opponent_wins = _winning_cells(current ^ mask, mask)
        forced = possible & opponent_wins
        if forced:
            if forced & (forced - 1):
                return _half(pos.moves - _CELLS)  # two threats: lost next move
            possible = forced
        candidates = possible & ~(opponent_wins >> 1)
        if not candidates:
            return _half(pos.moves - _CELLS)
        low = _half(pos.moves + 2 - _CELLS)
        if alpha < low:
            alpha = low
            if alpha >= beta:
                return alpha
        high = _half(_CELLS - 1 - pos.moves)
        key = pos.key()
        high = min(high, self._upper.get(key, high))
        if beta > high:
            beta = high
            if alpha >= beta:
                return beta
        children = []
        for rank, column in enumerate(_ORDER):
            move = candidates & _COLUMN[column]
            if move:
                after = current | move
                threats = bin(_winning_cells(after, mask | move)).count("1")
                children.append((-threats, rank, column))
        children.sort()
        for _, _, column in children:
            score = -self._negamax(pos.play(column), -beta, -alpha)
            if score >= beta:
                return score
            alpha = max(alpha, score)
        self._upper[key] = alpha
        return alpha

    def solve(self, pos: Position | str, weak: bool = False) -> int:
        """The exact score of `pos` for the side to move (weak: only its sign, -1 / 0 / 1)."""
        if isinstance(pos, str):
            pos = Position.from_moves(pos)
        for column in range(COLUMNS):
            if pos.can_play(column) and pos.is_winning_move(column):
                score = _half(_CELLS + 1 - pos.moves)
                return 1 if weak else score
        low, high = (-1, 1) if weak else (_half(pos.moves - _CELLS), _half(_CELLS + 1 - pos.moves))
        while low < high:  # null-window probes narrow [low, high] to the exact score
            mid = low + (high - low) // 2
            if mid <= 0 and _half(low) < mid:  # probe nearer zero first: most scores are small
                mid = _half(low)
            elif mid >= 0 and _half(high) > mid:
                mid = _half(high)
            result = self._negamax(pos, mid, mid + 1)
            if result <= mid:
                high = result
            else:
                low = result
        return max(-1, min(1, low)) if weak else low

    def move_scores(self, pos: Position | str, weak: bool = False) -> list[int | None]:
        """Score of each column for the side to move (None where the column is full);
        weak: only -1 / 0 / 1 (much cheaper away from the end of the game)."""
        if isinstance(pos, str):
            pos = Position.from_moves(pos)
        scores: list[int | None] = []
        for column in range(COLUMNS):
            if not pos.can_play(column):
                scores.append(None)
            elif pos.is_winning_move(column):
                scores.append(1 if weak else _half(_CELLS + 1 - pos.moves))
            elif pos.moves + 1 == _CELLS:
                scores.append(0)
            else:
                scores.append(-self.solve(pos.play(column), weak))
        return scores

    def best_move(self, pos: Position | str, weak: bool = False) -> int:
        """A column with the best score (the most central among equals)."""
        scores = self.move_scores(pos, weak)
        return max(_ORDER, key=lambda c: (-999 if scores[c] is None else scores[c], -_ORDER.index(c)))
