"""Routing benchmark: static UE time to relative gap 1e-4 (Braess, Sioux Falls), beside
AequilibraE when importable, and N-player batch-simulator vehicle-steps per second.

Run: .venv/bin/python benchmarks/routing.py   (prints a table, writes benchmarks/results/routing.json)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from gamescale.algorithms.routing.static_ue import make_solver
from gamescale.envs.routing.dynamic import make_game
from gamescale.envs.routing.network import load_network

TARGET_GAP = 1e-4


def time_static_ue(net_name: str, method: str) -> dict:
    net = load_network(net_name)
    start = time.perf_counter()
    solver = make_solver(net, method, max_iterations=100_000)
    state = solver.init(0)
    while state["relative_gap"] > TARGET_GAP and state["iteration"] < 100_000:
        state, _ = solver.step(state)
    return {
        "network": net_name,
        "solver": f"gamescale/{method}",
        "seconds": time.perf_counter() - start,
        "iterations": int(state["iteration"]),
        "relative_gap": float(state["relative_gap"]),
        "tstt": float(state["tstt"]),
    }


def aequilibrae_rows() -> list[dict]:
    try:
        import aequilibrae  # noqa: F401
    except ImportError:
        print("AequilibraE not importable: skipping the side-by-side (pip install aequilibrae to compare)")
        return []
    print("AequilibraE is importable but its project setup is not wired here yet: skipping")
    return []


def simulator_throughput(net_name: str, num_vehicles: int, num_games: int) -> dict:
    net = load_network(net_name)
    game = make_game(net, num_vehicles)
    rng = np.random.default_rng(0)
    state = game.reset(num_games)
    start, steps = time.perf_counter(), 0
    while not game.done(state):
        ready = game.ready(state)
        # random legal next link for every ready vehicle, vectorised over the CSR arrays
        deg = net.out_degree()[state.node]
        pick = net.out_ptr[state.node] + (rng.random(state.node.shape) * np.maximum(deg, 1)).astype(np.int64)
        actions = np.where(ready & (deg > 0), net.out_links[np.minimum(pick, net.num_links - 1)], -1)
        state = game.step(state, actions)
        steps += 1
    seconds = time.perf_counter() - start
    return {
        "network": net_name,
        "vehicles": num_vehicles,
        "games": num_games,
        "steps": steps,
        "seconds": seconds,
        "vehicle_steps_per_second": num_vehicles * num_games * steps / seconds,
    }


def main() -> None:
    ue = [
        time_static_ue(n, m)
        for n in ("braess", "sioux_falls")
        for m in ("gradient_projection", "conjugate_frank_wolfe")
    ]
    ue += aequilibrae_rows()
    sim = [simulator_throughput("sioux_falls", 14_000, 8), simulator_throughput("braess", 1000, 64)]
    print(f"\nstatic UE to relative gap {TARGET_GAP:g}")
    print(f"{'network':<12} {'solver':<36} {'iters':>6} {'seconds':>9} {'gap':>10} {'TSTT':>14}")
    for r in ue:
        print(
            f"{r['network']:<12} {r['solver']:<36} {r['iterations']:>6} {r['seconds']:>9.3f} {r['relative_gap']:>10.2e} {r['tstt']:>14.6g}"
        )
    print("\nN-player batch simulator (random legal moves)")
    print(f"{'network':<12} {'vehicles':>9} {'games':>6} {'steps':>6} {'veh-steps/s':>14}")
    for r in sim:
        print(
            f"{r['network']:<12} {r['vehicles']:>9} {r['games']:>6} {r['steps']:>6} {r['vehicle_steps_per_second']:>14.3g}"
        )
    out = Path(__file__).parent / "results" / "routing.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"static_ue": ue, "simulator": sim}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
