"""Text states (envs/board/text.py): every position of seeded random games round-trips
through its text, in the batch engines' own states, and malformed texts are one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from gamescale.envs.board import connect_four_vec, hex_vec
from gamescale.envs.board.batch import BatchGame
from gamescale.envs.board.text import BoardInputError, state_from_texts, state_texts


def _positions(game: BatchGame, games: int, seed: int) -> list:
    """Every position (batch states, one per ply) of `games` random games."""
    rng = np.random.default_rng(seed)
    state, out = game.init(games), []
    for _ in range(game.max_plies + 1):
        out.append(state)
        mask = game.legal_mask(state)
        if not mask.any():
            break
        from gamescale.envs.board.batch import random_legal

        state = game.step(state, random_legal(mask, rng))
    return out


def _same(a, b) -> None:
    for name in a.__dataclass_fields__:
        if name not in ("labels", "edges"):  # union-find internals depend on the order of placing
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_connect_four_round_trip():
    game = connect_four_vec.game()
    for state in _positions(game, 64, 0):
        texts = state_texts("connect_four", state)
        back = state_from_texts("connect_four", texts)
        _same(state, back)
        assert state_texts("connect_four", back) == texts
        np.testing.assert_array_equal(game.legal_mask(back), game.legal_mask(state))
    assert state_texts("connect_four", connect_four_vec.init(1)) == ["/".join(["......."] * 6) + " x"]


@pytest.mark.parametrize("size,swap", [(5, True), (7, False)])
def test_hex_round_trip_with_groups(size, swap):
    game = hex_vec.game(size, swap)
    rng = np.random.default_rng(1)
    for state in _positions(game, 48, size):
        texts = state_texts("hex", state)
        back = state_from_texts("hex", texts, size)
        _same(state, back)
        # the rebuilt groups play on like the originals: same winners after random play
        moves = [hex_vec.random_actions(state, rng, swap) for _ in range(3)]
        a, b = state, back
        for m in moves:
            m = np.where(game.legal_mask(a)[np.arange(len(m)), m], m, np.argmax(game.legal_mask(a), axis=1))
            a, b = game.step(a, m), game.step(b, m)
        np.testing.assert_array_equal(a.winner, b.winner)


def test_hex_swap_is_read_back():
    game = hex_vec.game(5, True)
    state = game.step(game.step(game.init(1), np.array([7])), np.array([25]))  # black c2, white swaps
    text = state_texts("hex", state)[0]
    assert text.endswith(" x") and text.count("o") == 1 and "x" not in text[:-2]  # one white stone
    back = state_from_texts("hex", [text], 5)
    assert int(back.plies[0]) == 2 and not game.legal_mask(back)[0, 25]


@pytest.mark.parametrize("kind", ["chess", "chess960"])
def test_chess_fen_round_trip(kind):
    import chess

    from gamescale.envs.board import chess_batch

    rng = np.random.default_rng(2)
    for start in (518, 0, 959) if kind == "chess960" else (None,):
        board = chess.Board.from_chess960_pos(start) if start is not None else chess.Board()
        for _ in range(60):
            moves = list(board.legal_moves)
            if not moves:
                break
            board.push(moves[int(rng.integers(len(moves)))])
            state = chess_batch.from_boards([board])
            texts = state_texts(kind, state)
            back = state_from_texts(kind, texts)
            assert texts == [board.fen()] and back.boards[0].fen() == board.fen()
            assert set(back.boards[0].legal_moves) == set(board.legal_moves)


@pytest.mark.parametrize("kind,text", [
    ("connect_four", "......./......./......./......./......./...x... x"),  # x moved, x to move
    ("connect_four", "......./......./......./......./...x.../......o o"),  # floating stone
    ("connect_four", "......./......./......./.......  x"),
    ("connect_four", "......./......./......./......./......./...q... o"),
    ("hex", "...../...../...../...../..xx. o"),
    ("chess", "not a fen"),
])
def test_malformed_texts_are_one_line_errors(kind, text):
    with pytest.raises(BoardInputError) as err:
        state_from_texts(kind, [text], 5)
    assert "\n" not in str(err.value)
