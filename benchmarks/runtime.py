"""Runtime benchmark: wall time of a cold exact run from the shell, the overhead per trial
of a 16-trial sweep on the embedded cluster, actor round trips, Arrow throughput through
the object store, and rollout throughput (particle agent-steps per second) with 1 and 2
rollout workers.

    python benchmarks/runtime.py [--json benchmarks/results/runtime.json] [--quick]

Prints a table and writes JSON. Runs on an embedded local Ray bound to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import ray  # noqa: E402

from gamescale.algorithms.base import make_shard_tasks  # noqa: E402
from gamescale.algorithms.mfg.particles import simulate_shard  # noqa: E402
from gamescale.envs.registry import make_env  # noqa: E402
from gamescale.framework.actors import RolloutPool  # noqa: E402
from gamescale.framework.runtime import connect  # noqa: E402


@ray.remote(num_cpus=0)
class Echo:
    def ping(self) -> int:
        return 0

    def batch(self, megabytes: float) -> pa.RecordBatch:
        rows = int(megabytes * 1e6 / 8)
        return pa.RecordBatch.from_arrays([pa.array(np.arange(rows, dtype=np.float64))], names=["x"])


def round_trip_ms(calls: int = 2000) -> float:
    actor = Echo.remote()
    ray.get(actor.ping.remote())
    start = time.perf_counter()
    for _ in range(calls):
        ray.get(actor.ping.remote())
    return (time.perf_counter() - start) / calls * 1e3


def arrow_throughput_mb_s(megabytes: float = 64.0, calls: int = 10, actor=None) -> float:
    """MB/s of Arrow batches fetched from `actor` (a new `Echo` on any node by default)."""
    actor = actor if actor is not None else Echo.remote()
    ray.get(actor.batch.remote(1.0))
    start = time.perf_counter()
    total = 0
    for _ in range(calls):
        total += ray.get(actor.batch.remote(megabytes)).nbytes
    return total / 1e6 / (time.perf_counter() - start)


def rollout_throughput(workers: int, particles: int, shards: int, size: int, horizon: int, repeats: int = 3) -> float:
    """Agent-steps per second of uniform-policy particles on crowd modelling 2D."""
    env_cfg = {"name": "crowd_modelling_2d", "size": size, "horizon": horizon}
    game = make_env(**env_cfg)
    policy = np.where(game.legal_actions, 1.0, 0.0)
    policy = np.broadcast_to(policy / policy.sum(1, keepdims=True), (horizon, *policy.shape)).copy()
    pool = RolloutPool(env_cfg, workers)
    shared = {"policy": policy, "num_particles": particles}
    pool.map(simulate_shard, make_shard_tasks(0, 0, shards), shared)  # warm-up: actors built
    best = 0.0
    for r in range(repeats):
        start = time.perf_counter()
        pool.map(simulate_shard, make_shard_tasks(0, r + 1, shards), shared)
        best = max(best, particles * horizon / (time.perf_counter() - start))
    pool.shutdown()
    return best


def _gamescale(*args: str) -> float:
    """Wall time of one `gamescale ...` command in a fresh process (cold: nothing cached)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gamescale", *args], check=True, capture_output=True)
    return time.perf_counter() - start


def cold_exact_run_s(repeats: int = 3) -> list[float]:
    """`gamescale run mfg-crowd-fp --set run.iterations=20` from the shell, each in a new process."""
    times = []
    for _ in range(repeats):
        folder = tempfile.mkdtemp(prefix="gamescale-bench-")
        try:
            times.append(_gamescale("run", "mfg-crowd-fp", "--set", "run.iterations=20", "--no-progress",
                                    "--out", f"{folder}/run"))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return times


def ray_start_s() -> float:
    """Starting (and stopping) the embedded cluster alone, in a fresh process."""
    code = "from gamescale.framework.runtime import connect; connect(); import ray; ray.shutdown()"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def sweep_overhead(trials: int = 16, iterations: int = 5) -> dict[str, float]:
    """A sweep of `trials` short exact trials on the embedded cluster, from the shell.

    Overhead per trial = (wall - cluster start - the trials' own work / concurrency) / trials,
    where the work is the sum of each trial's last `time_s` and concurrency is the number
    of CPUs (each exact trial asks for one).
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rates = ",".join(f"{0.05 * (i + 1):.2f}" for i in range(trials // 2))
    folder = tempfile.mkdtemp(prefix="gamescale-bench-")
    try:
        wall = _gamescale("sweep", "mfg-crowd-fp", "--grid", f"algorithm.learning_rate={rates}", "--seeds", "2",
                          "--set", f"run.iterations={iterations}", "--no-progress", "--out", f"{folder}/sweep")
        table = pq.read_table(f"{folder}/sweep/sweep.parquet")
        per_trial = table.group_by("trial").aggregate([("time_s", "max")])["time_s_max"]
        work = float(pc.sum(per_trial).as_py())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    start = ray_start_s()
    concurrency = os.cpu_count() or 1
    return {
        "trials": trials,
        "wall_s": wall,
        "ray_start_s": start,
        "trial_work_s": work,
        "overhead_per_trial_s": max(0.0, wall - start - work / concurrency) / trials,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="benchmarks/results/runtime.json")
    parser.add_argument("--particles", type=int, default=400_000)
    parser.add_argument("--quick", action="store_true", help="one cold run, a 8-trial sweep")
    parser.add_argument("--multinode-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.multinode_only:  # run in a child process: it owns its clusters
        print(json.dumps(multinode(args.particles)))
        return
    cold = cold_exact_run_s(1 if args.quick else 3)
    sweep = sweep_overhead(8 if args.quick else 16)
    connect(None, num_cpus=os.cpu_count())
    results = {
        "quick": args.quick,
        "cold_exact_run_s": {"median": statistics.median(cold), "all": cold},
        "sweep": sweep,
        "actor_round_trip_ms": round_trip_ms(),
        "arrow_batch_throughput_mb_s": arrow_throughput_mb_s(),
        "rollout": [],
    }
    for workers in (1, 2):
        steps = rollout_throughput(workers, args.particles, shards=8, size=20, horizon=20)
        results["rollout"].append({"workers": workers, "agent_steps_per_s": steps})
    ray.shutdown()
    child = subprocess.run(
        [sys.executable, __file__, "--multinode-only", "--particles", str(args.particles)],
        capture_output=True, text=True, check=True,
    )
    results["multinode"] = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"{'measure':40s} {'value':>14s}")
    print(f"{'cold 20-iteration exact run, shell (s)':40s} {results['cold_exact_run_s']['median']:14.2f}")
    label = f"sweep of {sweep['trials']} trials, wall (s)"
    print(f"{label:40s} {sweep['wall_s']:14.2f}")
    print(f"{'  of which embedded Ray start (s)':40s} {sweep['ray_start_s']:14.2f}")
    print(f"{'  overhead per trial (s)':40s} {sweep['overhead_per_trial_s']:14.3f}")
    print(f"{'actor call round trip (ms)':40s} {results['actor_round_trip_ms']:14.3f}")
    print(f"{'Arrow batch through object store (MB/s)':40s} {results['arrow_batch_throughput_mb_s']:14.1f}")
    for row in results["rollout"]:
        print(f"{'rollout agent-steps/s, ' + str(row['workers']) + ' worker(s)':40s} {row['agent_steps_per_s']:14.3e}")
    labels = {
        "rollout_agent_steps_per_s_one_node": "rollout, 2 workers, 1 node x 2 CPUs",
        "rollout_agent_steps_per_s_two_nodes": "rollout, 2 workers, 2 nodes x 1 CPU",
        "arrow_mb_s_same_node": "Arrow batches within a node (MB/s)",
        "arrow_mb_s_between_nodes": "Arrow batches between nodes (MB/s)",
        "node_death_to_progress_s": "worker node death to progress (s)",
    }
    for key, label in labels.items():
        value = results["multinode"][key]
        print(f"{label:40s} {value:14.3e}" if value > 1e4 else f"{label:40s} {value:14.2f}")
    from machine import describe_machine  # benchmarks/machine.py (its folder is on sys.path)

    results = {"machine": describe_machine(), **results}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.json}")



# ---------------------------------------------------------------- across nodes


def multinode(particles: int) -> dict[str, float]:
    """On `ray.cluster_utils.Cluster` (separate raylets and object stores on 127.0.0.1):
    rollout throughput with 2 workers on one node of 2 CPUs vs two nodes of 1 CPU, Arrow
    batch throughput within a node and between nodes, and the time from a worker node's
    death to the pool finishing work again (Ray's default failure detection)."""
    from ray.cluster_utils import Cluster
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    out: dict[str, float] = {}
    for label, layout in (("one_node", [2]), ("two_nodes", [1, 1])):
        cluster = Cluster(initialize_head=True, connect=True, head_node_args={"num_cpus": layout[0]})
        for cpus in layout[1:]:
            cluster.add_node(num_cpus=cpus)
        cluster.wait_for_nodes()
        out[f"rollout_agent_steps_per_s_{label}"] = rollout_throughput(2, particles, shards=8, size=20, horizon=20)
        if label == "two_nodes":
            head_id = ray.get_runtime_context().get_node_id()
            other = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeID"] != head_id)
            for where, node in (("same_node", head_id), ("between_nodes", other)):
                echo = Echo.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote()
                out[f"arrow_mb_s_{where}"] = arrow_throughput_mb_s(32.0, 6, actor=echo)
            out["node_death_to_progress_s"] = _node_death_to_progress(cluster, particles)
        ray.shutdown()
        cluster.shutdown()
    return out


def _node_death_to_progress(cluster, particles: int) -> float:
    """Kill the worker node's raylet while a 2-worker pool samples; seconds until the pool
    completes a call again (its lost worker restarted on the head, which gets a CPU back)."""
    import signal as _signal

    cluster.add_node(num_cpus=1)  # a spare node, so the lost worker has somewhere to go
    cluster.wait_for_nodes()
    env_cfg = {"name": "crowd_modelling_2d", "size": 20, "horizon": 20}
    game = make_env(**env_cfg)
    policy = np.where(game.legal_actions, 1.0, 0.0)
    policy = np.broadcast_to(policy / policy.sum(1, keepdims=True), (20, *policy.shape)).copy()
    pool = RolloutPool(env_cfg, 2, placement="spread", revive_timeout_s=120.0)
    shared = {"policy": policy, "num_particles": particles // 4}
    pool.map(simulate_shard, make_shard_tasks(0, 0, 4), shared)
    nodes = pool.worker_nodes()
    head_id = ray.get_runtime_context().get_node_id()[:12]
    victim = next(n for n in cluster.worker_nodes if n.node_id[:12] in {x.split("/")[1] for x in nodes}
                  and n.node_id[:12] != head_id)
    os.kill(victim.all_processes["raylet"][0].process.pid, _signal.SIGKILL)
    killed = time.perf_counter()
    pool.map(simulate_shard, make_shard_tasks(0, 1, 4), shared)
    elapsed = time.perf_counter() - killed
    pool.shutdown()
    cluster.remove_node(victim, allow_graceful=False)
    return elapsed


if __name__ == "__main__":
    main()
