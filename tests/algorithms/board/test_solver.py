"""The Connect Four solver against Pascal Pons's published end-game scores and against a
brute-force minimax (no pruning, no bitboards) on positions with at most 12 empty cells."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from gamescale.algorithms.board.solver import ConnectFourSolver, Position, SolverBudgetExceeded
from gamescale.envs.board import connect_four_vec as c4

# Test_L3_R1 ("end-easy") of Pons's Connect Four solver tutorial: move string, score.
PUBLISHED = [
    ("2252576253462244111563365343671351441", -1),
    ("7422341735647741166133573473242566", 1),
    ("23163416124767223154467471272416755633", 0),
    ("71255763773133525731261364622167124446454", 0),
    ("65214673556155731566316327373221417", -1),
    ("52677675164321472411331752454", 0),
    ("3135151421347443544172316522225776773566", 0),
    ("562154564361751726662253737734213275114", 0),
    ("233377345754465174223731671122611552", 1),
    ("6763525635134453444361412671365712", -1),
    ("211376455663355325112113664364524722", 0),
    ("3146762114467714356347741621375222", -1),
    ("67152117737262713366376314254", 6),
]


@pytest.mark.parametrize(("moves", "score"), PUBLISHED)
def test_published_end_game_scores(moves, score):
    solver = ConnectFourSolver()
    assert solver.solve(moves) == score
    assert solver.solve(moves, weak=True) == int(np.sign(score))


def _brute_force(columns: tuple[tuple[int, ...], ...], mover: int) -> int:
    """Pons score by exhaustive minimax over a plain column-list board."""

    @cache
    def value(cols: tuple[tuple[int, ...], ...], player: int) -> int:
        stones = sum(len(c) for c in cols)
        if stones == 42:
            return 0
        best = -99
        for x in range(7):
            if len(cols[x]) == 6:
                continue
            new = cols[:x] + (cols[x] + (player,),) + cols[x + 1 :]
            if _four_through(new, x, len(cols[x])):
                score = (43 - stones) // 2
            else:
                score = -value(new, 1 - player)
            best = max(best, score)
        return best

    return value(columns, mover)


def _four_through(cols, x, y) -> bool:
    player = cols[x][y]

    def run(dx, dy):
        k = 1
        while 0 <= x + k * dx < 7 and 0 <= y + k * dy < len(cols[x + k * dx]) and cols[x + k * dx][y + k * dy] == player:
            k += 1
        return k - 1

    return any(1 + run(dx, dy) + run(-dx, -dy) >= 4 for dx, dy in ((1, 0), (0, 1), (1, 1), (1, -1)))


def _late_positions(count: int, empty: range, seed: int) -> list[list[int]]:
    """Move lists of unfinished random games with a number of empty cells in `empty`."""
    rng = np.random.default_rng(seed)
    state, moves = c4.random_playout(c4.init(4000), rng)
    found = []
    for b in np.flatnonzero(state.plies >= 42 - empty.stop + 2):
        cut = 42 - int(rng.integers(empty.start, empty.stop))
        if cut < state.plies[b]:  # the game was still going after `cut` moves
            found.append(moves[b, :cut].tolist())
        if len(found) == count:
            break
    return found


def test_solver_agrees_with_brute_force_on_late_positions():
    positions = _late_positions(40, range(8, 13), seed=1)
    assert len(positions) == 40
    solver = ConnectFourSolver()
    outcomes = set()
    for moves in positions:
        cols = [[] for _ in range(7)]
        for ply, x in enumerate(moves):
            cols[x].append(ply % 2)
        expected = _brute_force(tuple(tuple(c) for c in cols), len(moves) % 2)
        assert solver.solve(Position.from_moves(moves)) == expected, moves
        outcomes.add(int(np.sign(expected)))
    assert outcomes == {-1, 0, 1}  # wins, draws and losses were all checked


def test_move_scores_and_best_move():
    solver = ConnectFourSolver()
    for moves, score in PUBLISHED[:6]:
        scores = solver.move_scores(moves)
        best = solver.best_move(moves)
        assert max(s for s in scores if s is not None) == scores[best] == score
    # An immediate win scores 22 - (the winner's stones): player_0's 4th stone in column 4.
    assert ConnectFourSolver().solve("454545") == 22 - 4


def test_budget_and_bad_input():
    with pytest.raises(SolverBudgetExceeded, match="more than 100 nodes"):
        ConnectFourSolver(max_nodes=100).solve("")
    with pytest.raises(ValueError, match="ends the game"):
        Position.from_moves("4545454")
    with pytest.raises(ValueError, match="illegal move 1 at ply 7"):
        Position.from_moves("1111111")
    with pytest.raises(ValueError, match="digits 1..7"):
        Position.from_moves("48")
