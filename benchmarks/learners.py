"""Data-parallel learner replicas: training throughput with 1 and 2 replicas.

A learner whose `LearnerSpec.gradient_slices` is K computes every minibatch gradient as the
sum of K slice gradients; `runtime.learner_replicas` R actors split the slices and gather
them over a gloo group (docs/architecture.md, "Data-parallel learners"). This measures
Adam steps per second of the deep mean-field `(t, s)` network on a real embedded Ray, for a
small network (the four-rooms Q network: 128 x 128, minibatch 1024, the per-step overhead
dominates) and a large one (1024 x 1024, minibatch 4096, the arithmetic dominates), with
K = 1 on one actor (the plain learner) and K = 2 on 1 and 2 replicas (2 replicas gathering
through shared memory and through the gloo group), and checks that the weights after the
timed steps are bit-identical for all K = 2 settings. Last, the cost of one gather of a
44k-float row (the four-rooms gradient) between 2 replica processes, for both transports. Settings alternate
over `--repeats` rounds and the table gives the median.

    python benchmarks/learners.py [--json benchmarks/results/learners.json] [--quick]

Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gamescale.algorithms.base import Deferred, LearnerSpec  # noqa: E402
from gamescale.framework.runtime import connect  # noqa: E402

NETWORKS = "gamescale.algorithms.mfg.deep_networks"
STATES, HORIZON, ACTIONS, ROWS = 169, 40, 5, 80_000
MODELS = {
    # name: (hidden sizes, minibatch rows, timed steps, timed steps when --quick)
    "small (128 x 128, batch 1024)": ((128, 128), 1024, 600, 200),
    "large (1024 x 1024, batch 4096)": ((1024, 1024), 4096, 16, 6),
}
# (gradient slices K, replicas R, gradient transport): the replicas share this node, so "auto"
# gathers through shared memory; "process_group" is the gloo exchange replicas on several
# nodes use
SETTINGS = ((1, 1, "auto"), (2, 1, "auto"), (2, 2, "process_group"), (2, 2, "auto"))


def regression_batch(seed: int = 0) -> pa.RecordBatch:
    rng = np.random.default_rng(seed)
    return pa.RecordBatch.from_pydict(
        {
            "t": rng.integers(0, HORIZON, ROWS).astype(np.int32),
            "state": rng.integers(0, STATES, ROWS).astype(np.int32),
            "action": rng.integers(0, ACTIONS, ROWS).astype(np.int32),
            "target": rng.normal(size=ROWS).astype(np.float32),
        }
    )


def spec(hidden: tuple[int, ...], slices: int) -> LearnerSpec:
    legal = np.ones((STATES, ACTIONS), bool)
    return LearnerSpec(
        Deferred(f"{NETWORKS}:make_network", (STATES, HORIZON, ACTIONS, hidden, legal)),
        Deferred(f"{NETWORKS}:regression_loss"),
        1e-3,
        "adam",
        seed=1,
        gradient_slices=slices,
        gradient_fn=Deferred(f"{NETWORKS}:regression_gradient"),  # as the deep MFG learners train
    )


def measure(
    hidden: tuple[int, ...], rows: int, steps: int, slices: int, replicas: int, transport: str, batch
) -> dict:
    from gamescale.framework.actors import start_learners

    learner = start_learners({"q": spec(hidden, slices)}, gpus=0, replicas=replicas, transport=transport)["q"]
    try:
        learner.update(batch, 3, rows, 0)  # warm-up: allocator, gloo buffers
        calls = 4
        start = time.perf_counter()
        for call in range(calls):
            learner.update(batch, max(steps // calls, 1), rows, call + 1)
        seconds = time.perf_counter() - start
        weights = learner.get_weights()
    finally:
        learner.shutdown()
    done = calls * max(steps // calls, 1)
    return {"steps": done, "seconds": seconds, "steps_per_s": done / seconds, "weights": weights}


def _gather_replica(rank: int, size: int, port: int, transport: str, numel: int, repeats: int, queue) -> None:
    """One process of `gather_latency`: joins a gloo group and times back-to-back gathers."""
    import torch
    import torch.distributed as dist

    from gamescale.algorithms.learner import ReplicaGroup

    torch.set_num_threads(1)
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=size)
    group = ReplicaGroup(rank, size, transport)
    mine = torch.full((1, numel), float(rank))
    for _ in range(20):  # sets up the shared-memory gather on the first call, then warms up
        group.gather(mine)
    start = time.perf_counter()
    for _ in range(repeats):
        group.gather(mine)
    queue.put((time.perf_counter() - start) / repeats)
    dist.destroy_process_group()


def gather_latency(transport: str, numel: int = 44_000, repeats: int = 500) -> float:
    """Milliseconds per gather of a `[1, numel]` float32 row between 2 replica processes on
    this node (no Ray), back to back: the transport's own cost per training step."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    queue = mp.get_context("spawn").SimpleQueue()
    mp.start_processes(
        _gather_replica, args=(2, port, transport, numel, repeats, queue), nprocs=2, start_method="spawn"
    )
    return 1e3 * max(queue.get(), queue.get())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=str(HERE / "results" / "learners.json"))
    parser.add_argument("--quick", action="store_true", help="fewer timed steps, one repeat")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats; the table gives the median")
    args = parser.parse_args()
    from machine import describe_machine  # benchmarks/machine.py

    started, load = time.perf_counter(), os.getloadavg()
    connect(None, None)
    batch = regression_batch()
    rows_out = []
    for model, (hidden, rows, steps, quick_steps) in MODELS.items():
        runs: dict[tuple[int, int, str], list[dict]] = {setting: [] for setting in SETTINGS}
        for _ in range(1 if args.quick else args.repeats):  # settings alternate, so drift hits all alike
            for setting in SETTINGS:
                timed = quick_steps if args.quick else steps
                runs[setting].append(measure(hidden, rows, timed, *setting, batch))
        results = {
            setting: {**done[0], "steps_per_s": float(np.median([r["steps_per_s"] for r in done])),
                      "all_steps_per_s": [r["steps_per_s"] for r in done]}
            for setting, done in runs.items()
        }
        one = results[(2, 1, "auto")]["weights"]
        identical = all(
            np.array_equal(one[k], results[setting]["weights"][k]) for setting in SETTINGS[2:] for k in one
        )
        for (slices, replicas, transport), r in results.items():
            rows_out.append(
                {
                    "model": model,
                    "gradient_slices": slices,
                    "replicas": replicas,
                    "transport": transport if replicas > 1 else None,
                    "steps": r["steps"],
                    "steps_per_s": r["steps_per_s"],
                    "steps_per_s_each_repeat": r["all_steps_per_s"],
                    "rows_per_s": r["steps_per_s"] * rows,
                    "speedup_vs_plain": r["steps_per_s"] / results[(1, 1, "auto")]["steps_per_s"],
                    "identical_to_one_replica": identical if slices == 2 else None,
                }
            )
    print(
        f"{'model':<34} {'K':>2} {'R':>2} {'gather':>13} {'steps/s':>9} {'rows/s':>11} {'vs K=1':>7} {'R=1 == R=2':>11}"
    )
    for r in rows_out:
        same = "" if r["identical_to_one_replica"] is None else str(r["identical_to_one_replica"])
        print(
            f"{r['model']:<34} {r['gradient_slices']:>2} {r['replicas']:>2} {r['transport'] or '':>13} "
            f"{r['steps_per_s']:>9.1f} "
            f"{r['rows_per_s']:>11.3g} {r['speedup_vs_plain']:>7.2f} {same:>11}"
        )
    gathers = {transport: gather_latency(transport) for transport in ("process_group", "auto")}
    print(
        "\ngather of a 44,000-float row between 2 replica processes: "
        + ", ".join(f"{t} {ms:.3f} ms" for t, ms in gathers.items())
    )
    out = {
        "gather_ms_44k_floats_2_replicas": gathers,
        "machine": describe_machine(),
        "load_avg_at_start": load,
        "quick": args.quick,
        "rows": rows_out,
        "wall_s": time.perf_counter() - started,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2))
    print(f"\n{out['wall_s']:.0f} s; wrote {args.json}")


if __name__ == "__main__":
    main()
