"""Row blocks (`algorithms/row_blocks.py`): the blocks cover the rows once, run at once on
the granted threads, and a failing block fails the call after every block has finished."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from gamescale.algorithms.row_blocks import block_bounds, for_row_blocks, row_threads, using_row_threads


@pytest.mark.parametrize(("rows", "blocks"), [(40, 1), (40, 2), (40, 3), (7, 16), (1, 4), (0, 2)])
def test_block_bounds_cover_every_row_once_in_order(rows, blocks):
    bounds = block_bounds(rows, blocks)
    assert len(bounds) == max(1, min(blocks, rows))
    covered = [row for start, stop in bounds for row in range(start, stop)]
    assert covered == list(range(rows))
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_blocks_run_at_once_on_the_granted_threads_and_the_grant_is_restored():
    seen: list[tuple[int, int, str]] = []
    both_in = threading.Barrier(2, timeout=10)  # would time out if the blocks ran one after the other
    out = np.zeros(10)

    def work(start: int, stop: int) -> None:
        both_in.wait()
        out[start:stop] += 1.0
        seen.append((start, stop, threading.current_thread().name))

    assert row_threads() == 1
    with using_row_threads(2):
        assert row_threads() == 2
        for_row_blocks(work, 10)
    assert row_threads() == 1
    assert sorted((a, b) for a, b, _ in seen) == [(0, 5), (5, 10)]
    assert len({name for *_, name in seen}) == 2 and threading.current_thread().name in {n for *_, n in seen}
    np.testing.assert_array_equal(out, np.ones(10))


def test_a_failing_block_raises_after_every_block_finished():
    finished: list[int] = []

    def work(start: int, stop: int) -> None:
        if start == 0:
            raise RuntimeError("block zero failed")
        time.sleep(0.05)
        finished.append(start)

    with using_row_threads(3), pytest.raises(RuntimeError, match="block zero failed"):
        for_row_blocks(work, 9)
    assert sorted(finished) == [3, 6]


def test_a_grant_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        using_row_threads(0).__enter__()
