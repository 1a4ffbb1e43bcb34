"""The batch engines agree with the AEC envs move for move on seeded random games, and Hex
finds the winner on crafted boards."""

from __future__ import annotations

import numpy as np
import pytest

from gamescale import make_env
from gamescale.envs.board import connect_four_vec as c4
from gamescale.envs.board import hex_vec


def _random_games(engine, state, rng, max_plies, **kw):
    """Step a batch with random legal moves; record boards, masks and moves at every ply."""
    boards, masks, moves = [engine.boards(state)], [], []
    for _ in range(max_plies):
        mask = engine.legal_mask(state, **kw)
        if not mask.any():
            break
        actions = engine.random_actions(state, rng, **kw)
        masks.append(mask)
        moves.append(np.where(mask.any(axis=1), actions, -1))
        state = engine.step(state, actions, **kw)
        boards.append(engine.boards(state))
    return state, np.stack(boards, 1), np.stack(masks, 1), np.stack(moves, 1)


def _replay(env, moves, boards, masks):
    """Replay one game's moves in the AEC env, checking board and legal mask before each."""
    env.reset()
    for ply, action in enumerate(moves):
        if action < 0:
            break
        assert np.array_equal(env.legal_actions(), np.flatnonzero(masks[ply]))
        env.step(int(action))
        assert np.array_equal(env.board, boards[ply + 1])
    return env.winner(), ply if action < 0 else len(moves)


def test_connect_four_batch_agrees_with_aec_on_2000_games():
    rng = np.random.default_rng(7)
    state, boards, masks, moves = _random_games(c4, c4.init(2000), rng, c4.MAX_PLIES)
    assert c4.done(state).all()
    outcome = c4.outcome(state)
    assert set(np.unique(outcome)) <= {-1, 0, 1} and (outcome == 0).sum() > (outcome == 1).sum() > 0
    env = make_env("connect_four")
    for b in range(state.batch_size):
        winner, plies = _replay(env, moves[b], boards[b], masks[b])
        assert winner == outcome[b] and plies == state.plies[b], f"game {b}"


def test_connect_four_from_moves_and_illegal_input():
    state = c4.from_moves([[3, 4, 3, 4, 3, 4, 3], [0] * 6, []])
    assert c4.outcome(state).tolist() == [0, -2, -2]
    assert c4.legal_mask(state)[1].tolist() == [False] + [True] * 6
    with pytest.raises(ValueError, match="column 0 is full"):
        c4.step(state, np.array([0, 0, 0]))
    with pytest.raises(ValueError, match="columns are 0..6"):
        c4.step(state, np.array([0, 9, 0]))


@pytest.mark.parametrize(("size", "games", "swap_rule"), [(5, 1000, True), (7, 300, False), (11, 60, False)])
def test_hex_batch_agrees_with_aec(size, games, swap_rule):
    rng = np.random.default_rng(size)
    state, boards, masks, moves = _random_games(
        hex_vec, hex_vec.init(games, size), rng, size * size + 1, swap_rule=swap_rule
    )
    assert hex_vec.done(state).all()  # Hex has no draws
    env = make_env("hex", size=size, swap_rule=swap_rule)
    for b in range(games):
        winner, plies = _replay(env, moves[b], boards[b], masks[b])
        assert winner == state.winner[b] and plies == state.plies[b], f"game {b}"
    # Independent flood fill: the final boards are won by the engine's winner, and the
    # boards one move earlier by nobody (the game stopped at the first connection).
    final = boards[np.arange(games), state.plies]
    before = boards[np.arange(games), state.plies - 1]
    assert np.array_equal(hex_vec.winner_of(final), state.winner)
    assert (hex_vec.winner_of(before) == -1).all()
    if swap_rule:
        assert (moves[:, 1] == size * size).sum() > 10  # the swap was exercised


def _board(rows: list[str]) -> np.ndarray:
    return np.array([[".XO".index(ch) for ch in row.split()] for row in rows], np.int8)


CRAFTED = {  # 5 x 5; X = player_0 (top-bottom), O = player_1 (left-right)
    "black column": (["X . . . .", "X . . . .", "X . . . .", "X . . . .", "X . . . ."], 0),
    "black anti-diagonal (neighbours)": (["X X . . .", ". X . . .", ". X X . .", ". . X . .", ". . X . ."], 0),
    "black (r+1, c-1) chain": ([". . . . X", ". . . X .", ". . X . .", ". X . . .", "X . . . ."], 0),
    "black main diagonal is no chain": (["X . . . .", ". X . . .", ". . X . .", ". . . X .", ". . . . X"], -1),
    "white row": ([". . . . .", ". . . . .", "O O O O O", ". . . . .", ". . . . ."], 1),
    "white bent path": (["O O . . .", ". O . . .", ". O O O .", ". . . O O", ". . . . ."], 1),
    "white main diagonal is no chain": (["O . . . .", ". O . . .", ". . O . .", ". . . O .", ". . . . O"], -1),
    "white corners count for white's edges": (["O O O O O", ". . . . .", ". . . . .", ". . . . .", ". . . . ."], 1),
    "black touches one edge only": (["X . . . .", "X . . . .", "X . . . .", "X . . . .", ". . . . ."], -1),
    "both blocked, one gap each": (["X O . . .", "X O . . .", ". O . . .", "X O . . .", "X . . . ."], -1),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_hex_winner_on_crafted_boards(case):
    rows, expected = CRAFTED[case]
    board = _board(rows)
    assert hex_vec.winner_of(board[None])[0] == expected
    # Play the board's stones alternately (fillers on free cells when one side runs out): after
    # every move both incremental engines agree with the flood fill, and the winner's last
    # stone is the one that ends the game.
    n = board.shape[0]
    mover = expected if expected >= 0 else 0
    mine = list(np.flatnonzero(board.reshape(-1) == mover + 1))
    theirs = list(np.flatnonzero(board.reshape(-1) == 2 - mover))
    filler = iter(np.flatnonzero(board.reshape(-1) == 0)[::-1])
    order = []
    for stone in mine:
        opponent = theirs.pop() if theirs else next(filler)
        order += [stone, opponent] if mover == 0 else [opponent, stone]
    env = make_env("hex", size=n)
    env.reset()
    state = hex_vec.init(1, n)
    ended_at = None
    for ply, action in enumerate(order):
        env.step(int(action))
        state = hex_vec.step(state, np.array([action]))
        flood = hex_vec.winner_of(env.board[None])[0]
        assert state.winner[0] == (-1 if env.winner() is None else env.winner()) == flood
        if env.winner() is not None:
            ended_at = ply
            break
    if expected >= 0:  # the winner's last stone connects, not an earlier one
        assert env.winner() == expected and ended_at == order.index(mine[-1])
    else:  # the crafted stones alone connect nobody; only fillers may end the game
        assert ended_at is None or order[ended_at] not in mine
