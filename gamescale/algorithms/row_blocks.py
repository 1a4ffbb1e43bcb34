"""Row-parallel numpy work inside one process, on the threads the framework grants it.

Some work between an algorithm's serial steps is wide and row-separable: a deep mean-field
learner evaluates its network on every `(t, s)` of the grid each time it refreshes its
regression targets (`mfg.deep.NetworkTable`), a dozen times per iteration, while the
rollout workers that sampled its batch wait. `for_row_blocks` splits such work into
contiguous blocks of rows, one per granted thread, and runs them at once (numpy releases
the GIL in its loops and in BLAS).

Results do not depend on the thread count when every row is computed from that row alone
by calls whose per-row result does not depend on the block around it: elementwise ufuncs,
and `np.matmul` over a stacked leading axis (one BLAS call per stacked matrix, the same
call in any block). The callers keep to that, and their tests compare the blocks' result
with one thread's bit for bit.

The grant is per process and set by whoever owns the process's cores: the framework
grants a learner actor the cores of the rollout workers it waits on
(`runtime.learner_threads`) and the driver its `runtime.driver_threads`. Code that runs
outside a run (a notebook, a unit test) gets 1 thread, so nothing changes there.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

_granted = 1


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the OS reports one."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def row_threads() -> int:
    """The threads this process may use for row blocks (1 unless granted more)."""
    return _granted


def set_row_threads(threads: int) -> None:
    """Grant this process `threads` threads for row blocks (the caller's own included)."""
    global _granted
    if threads < 1:
        raise ValueError(f"row threads must be at least 1, got {threads}")
    _granted = int(threads)


@contextlib.contextmanager
def using_row_threads(threads: int) -> Iterator[None]:
    """`set_row_threads(threads)` inside the block; the previous grant after it."""
    before = row_threads()
    set_row_threads(threads)
    try:
        yield
    finally:
        set_row_threads(before)


def block_bounds(num_rows: int, num_blocks: int) -> list[tuple[int, int]]:
    """`[start, stop)` of up to `num_blocks` contiguous, non-empty blocks covering `num_rows`
    rows, sizes differing by at most one (the larger first)."""
    blocks = max(1, min(num_blocks, num_rows))
    size, extra = divmod(num_rows, blocks)
    bounds, start = [], 0
    for index in range(blocks):
        stop = start + size + (index < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


@functools.cache
def _helpers() -> ThreadPoolExecutor:
    """The threads beside the caller's: one per other usable core, started as blocks need them
    (blocks beyond that wait for a free one; more threads than cores would only take turns)."""
    return ThreadPoolExecutor(max_workers=max(1, usable_cores() - 1), thread_name_prefix="row-block")


def for_row_blocks(work: Callable[[int, int], None], num_rows: int) -> None:
    """`work(start, stop)` over blocks of `range(num_rows)`, one block per granted thread, at
    once (up to the usable cores); the calling thread runs the first block. `work` writes its
    rows in place (into arrays it closes over) and must not depend on which block a row is in."""
    bounds = block_bounds(num_rows, row_threads())
    if len(bounds) == 1:
        work(0, num_rows)
        return
    others = [_helpers().submit(work, start, stop) for start, stop in bounds[1:]]
    try:
        work(*bounds[0])
    finally:
        for future in others:  # every block finishes (and raises) before the rows are read
            future.result()
