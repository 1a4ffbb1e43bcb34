"""Clinic dialogues per second: the retrieval doctor and a tiny local causal LM as doctor
(in the worker's process, and through `gamescale serve`'s endpoint on Ray Serve), with 0
(in this process), 1 and 2 rollout actors; and the retrieval baseline's accuracy with its
95% Wilson interval on the MedQA and extended case sets.

The tiny model (GPT-2 shape, 2 layers, width 32, a byte-level BPE of 512 tokens trained
here) is built in a temporary directory; its replies are noise, so its dialogues run to the
turn budget: the numbers measure the harness and generation, not medicine.

    python benchmarks/clinic.py [--quick]

Prints the tables and writes benchmarks/results/clinic.json.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before any import of ray

RESULTS = Path(__file__).resolve().parent / "results" / "clinic.json"


def accuracy_table() -> list[dict]:
    """The retrieval baseline on every case of both sets, in this process."""
    from gamescale.algorithms.base import LocalShardRunner, StepContext
    from gamescale.algorithms.registry import algorithm_config, build_algorithm
    from gamescale.envs.registry import make_env

    rows = []
    for case_set in ("medqa", "extended"):
        env = make_env("clinic", case_set=case_set)
        algorithm = build_algorithm(algorithm_config({"name": "clinic_eval", "cases_per_iteration": 400}), env)
        start = time.perf_counter()
        state, m = algorithm.step(algorithm.init(0), StepContext(0, 0, LocalShardRunner(env), num_shards=1))
        seconds = time.perf_counter() - start
        rows.append(
            {
                "case_set": case_set,
                "cases": int(m["cases"]),
                "accuracy": m["accuracy"],
                "low": m["accuracy_low"],
                "high": m["accuracy_high"],
                "mean_turns": m["mean_turns"],
                "tests_requested": m["tests_requested"],
                "chance": algorithm.summary(state)["chance"],
                "dialogues_per_s_in_process": m["cases"] / seconds,
            }
        )
        r = rows[-1]
        print(
            f"{case_set:9s} n={r['cases']:3d} accuracy={r['accuracy']:.3f} [{r['low']:.3f}, {r['high']:.3f}] "
            f"turns={r['mean_turns']:.2f} tests={r['tests_requested']:.2f} chance={r['chance']:.4f}",
            flush=True,
        )
    return rows


def _shared(doctor: dict) -> dict:
    from gamescale.envs.clinic.cases import load_cases

    pool = sorted({c.diagnosis for s in ("medqa", "extended") for c in load_cases(s)})
    players = {"doctor": doctor, "patient": {"kind": "retrieval"}, "moderator": {"kind": "rules"}}
    return {"players": players, "pool": pool, "threshold": 0.85}


def _rate(runner, env_cases: int, shared: dict, num_cases: int, shards: int) -> float:
    from gamescale.algorithms.base import make_shard_tasks
    from gamescale.algorithms.clinic.evaluate import evaluate_shard

    warm = [[i] for i in range(shards)]  # loads models / imports in every worker
    runner.map(evaluate_shard, make_shard_tasks(0, 0, shards, warm), shared)
    blocks = [b.tolist() for b in np.array_split(np.arange(num_cases) % env_cases, shards)]
    start = time.perf_counter()
    batches = runner.map(evaluate_shard, make_shard_tasks(0, 1, shards, blocks), shared)
    seconds = time.perf_counter() - start
    assert sum(b.num_rows for b in batches) == num_cases
    assert all(s == "ok" for b in batches for s in b.column("status").to_pylist())
    return num_cases / seconds


def throughput(quick: bool) -> list[dict]:
    import ray

    from gamescale.algorithms.base import LocalShardRunner
    from gamescale.envs.clinic.models import build_tiny_model
    from gamescale.envs.registry import make_env
    from gamescale.framework.actors import RolloutPool
    from gamescale.framework.serve import start_server, stop_server

    max_turns, tokens = 6, 16
    env_cfg = {"name": "clinic", "case_set": "medqa", "max_turns": max_turns}
    model_dir = build_tiny_model(Path(tempfile.mkdtemp(prefix="clinic-bench-")) / "tiny")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    out = []
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = start_server(model_dir, port=port, num_cpus=0)
        doctors = {
            "retrieval": ({"kind": "retrieval"}, 107),
            "tiny-local": (
                {"kind": "local", "model_dir": str(model_dir), "max_new_tokens": tokens},
                8 if quick else 32,
            ),
            "tiny-served": ({"kind": "endpoint", "base_url": url, "max_new_tokens": tokens}, 8 if quick else 32),
        }
        for name, (doctor, cases) in doctors.items():
            shared = _shared(doctor)
            env = make_env(**env_cfg)
            for workers in (0, 1, 2):
                if workers == 0:
                    rate = _rate(LocalShardRunner(env), len(env.cases), shared, cases, 4)
                else:
                    pool = RolloutPool(env_cfg, workers)
                    try:
                        rate = _rate(pool, len(env.cases), shared, cases, 4)
                    finally:
                        pool.shutdown()
                out.append({"doctor": name, "actors": workers, "cases": cases, "dialogues_per_s": rate})
                where = "in process" if workers == 0 else f"{workers} actor(s)"
                print(
                    f"{name:12s} {where:12s} dialogues/s={rate:9.2f}  ({cases} cases, max_turns={max_turns})",
                    flush=True,
                )
        stop_server()
    finally:
        ray.shutdown()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    accuracy = accuracy_table()
    rates = throughput(args.quick)
    from machine import write_results  # benchmarks/machine.py (its folder is on sys.path)

    print(f"wrote {write_results('clinic', {'accuracy': accuracy, 'throughput': rates})}")


if __name__ == "__main__":
    main()
