"""The shared-memory gather of co-located learner replicas (`node_gather.NodeGather`)."""

from __future__ import annotations

import secrets
import threading
import time

import numpy as np
import pytest

from gamescale.algorithms.node_gather import NodeGather


def open_group(size: int, block: int, dtype=np.float32, spin_s: float = 200e-6) -> list[NodeGather]:
    """`size` ranks of one gather, set up in the order a process group would drive them."""
    name = f"gamescale-test-{secrets.token_hex(6)}"
    ranks = [NodeGather(name, rank, size, block, dtype, timeout_s=20, spin_s=spin_s) for rank in range(size)]
    for node in ranks:
        node.create()
    assert all(node.attach() for node in ranks)
    for node in ranks:
        node.seal()
    return ranks


@pytest.mark.parametrize("spin_s", [0.0, 200e-6, 5e-3], ids=["sleep-at-once", "spin-then-sleep", "spin-always"])
def test_every_rank_gets_every_block_in_rank_order_step_after_step(spin_s):
    """Three ranks in threads that run at uneven speeds: a rank a step ahead must neither
    overwrite a block still being read nor mistake a later signal for the current one,
    whether a waiting rank sleeps in `poll` at once, spins first or only spins (its
    peers' delays, up to 2 ms, are shorter than the 5 ms spin)."""
    size, block, steps = 3, 1000, 200
    ranks = open_group(size, block, spin_s=spin_s)
    assert not list(ranks[0].directory.glob(f"{ranks[0].name}.*")), "the names are unlinked once sealed"
    wrong: list[str] = []

    def run(node: NodeGather) -> None:
        rng = np.random.default_rng(node.rank)
        for step in range(steps):
            mine = np.full(block, node.rank * 10_000 + step, dtype=np.float32)
            mine[-1] = -mine[0]
            if rng.random() < 0.2:
                time.sleep(rng.random() * 2e-3)
            got = node.gather(mine)
            want = np.array([r * 10_000 + step for r in range(size)], dtype=np.float32)
            if not (np.array_equal(got[:, 0], want) and np.array_equal(got[:, -1], -want) and (got[:, 1] == want).all()):
                wrong.append(f"rank {node.rank} step {step}: {got[:, 0]}")

    threads = [threading.Thread(target=run, args=(node,)) for node in ranks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for node in ranks:
        node.close()
    assert not wrong, wrong[:3]


def test_a_rank_that_cannot_see_the_mapping_says_so():
    """Another node: the mapping does not exist there, so `attach` reports False (the group
    then keeps its process-group gather) rather than failing."""
    here = NodeGather(f"gamescale-test-{secrets.token_hex(6)}", 1, 2, 10, np.float32)
    here.create()
    try:
        assert not here.attach()
    finally:
        here.close()
    assert not list(here.directory.glob(f"{here.name}.*"))


def test_a_silent_peer_times_out_with_its_rank():
    ranks = open_group(2, 4, np.float64)
    ranks[0].timeout_s = 0.3
    try:
        with pytest.raises(TimeoutError, match=r"learner replicas \[1\] sent no gradients"):
            ranks[0].gather(np.zeros(4))
    finally:
        for node in ranks:
            node.close()
