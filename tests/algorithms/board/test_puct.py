"""PUCT (algorithms/board/puct.py) with fixed, non-learned evaluators: it takes an immediate
win, blocks an immediate loss, follows a strong prior, and batches every wave's leaves into
one evaluator call."""

from __future__ import annotations

import numpy as np
import pytest

from gamescale.algorithms.board.puct import puct_search, uniform_evaluator
from gamescale.envs.board import connect_four_vec

GAME = connect_four_vec.game()
# x (first) has three in the bottom row at columns 1-3 and moves: 0 or 4 wins at once.
WIN = [1, 1, 2, 2, 3, 6]
# o holds 3, 4, 5 in the bottom row (6 is x's), x to move: only column 2 stops o's four.
BLOCK = [0, 3, 0, 4, 6, 5]


def _loses_at_once(moves: list[int], column: int) -> bool:
    """Whether after `column` the opponent has a winning reply (checked move by move)."""
    after = moves + [column]
    return any(connect_four_vec.from_moves([after + [reply]]).winner[0] >= 0
               for reply in range(7) if connect_four_vec.legal_mask(connect_four_vec.from_moves([after]))[0, reply])


def test_takes_an_immediate_win_in_every_tree():
    root = connect_four_vec.from_moves([WIN] * 8)
    out = puct_search(GAME, root, 48, uniform_evaluator, np.random.default_rng(0), parallel=4)
    assert set(out.action.tolist()) <= {0, 4}


def test_blocks_an_immediate_loss():
    assert [c for c in range(7) if not _loses_at_once(BLOCK, c)] == [2]
    root = connect_four_vec.from_moves([BLOCK] * 8)
    out = puct_search(GAME, root, 64, uniform_evaluator, np.random.default_rng(1), parallel=4)
    assert (out.action == 2).all(), out.action


def test_follows_a_confident_prior_and_batches_leaves():
    calls = []

    def column_three(game, states):
        calls.append(game.done(states).shape[0])
        mask = game.legal_mask(states)
        p = np.where(mask, 0.01, 0.0)
        p[:, 3] = np.where(mask[:, 3], 1.0, 0.0)
        return p / p.sum(axis=1, keepdims=True), np.zeros(mask.shape[0])

    root = connect_four_vec.init(16)
    out = puct_search(GAME, root, 32, column_three, np.random.default_rng(2), parallel=8)
    assert (out.action == 3).all()
    assert calls[0] == 16 and max(calls) > 16  # the root, then waves of up to 16 * 8 leaves
    assert len(calls) <= 1 + 32 // 8
    np.testing.assert_allclose(out.visits.sum(axis=1), 32)


def test_bad_arguments():
    with pytest.raises(ValueError):
        puct_search(GAME, connect_four_vec.init(1), 0, uniform_evaluator, np.random.default_rng(0))
