"""Mean-field game solvers side by side: OpenSpiel (python MFG), mfglib and gamescale.

For 2D crowd modelling (default 20 x 20 grid, horizon 20) each peer runs K iterations of
fictitious play (and OMD for OpenSpiel/gamescale) in a fresh subprocess with a time budget;
we report seconds per iteration, exploitability after K iterations and the subprocess's
peak resident memory. mfglib has no OpenSpiel crowd game, so it runs its own
`crowd_motion` preset on the same grid and horizon (a dense-kernel implementation; its
exploitability is for that game). Then a scaling table: gamescale FP seconds per iteration
from 10^2 to 10^6 states (grid cells x horizon).

    python benchmarks/mfg.py [--size 20] [--horizon 20] [--iterations 3] [--budget 120]

Prints a table and writes benchmarks/results/mfg.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "mfg.json"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_gamescale(algorithm: str, size: int, horizon: int, iterations: int) -> dict:
    from gamescale.algorithms.mfg import FictitiousPlay, MirrorDescent
    from gamescale.algorithms.mfg.config import FictitiousPlayConfig, MirrorDescentConfig
    from gamescale.envs.mfg import CrowdModelling2D

    game = CrowdModelling2D(size=size, horizon=horizon)
    if algorithm == "fp":
        solver = FictitiousPlay(FictitiousPlayConfig(), game)
    else:
        solver = MirrorDescent(MirrorDescentConfig(), game)
    state = solver.init(0)
    start = time.perf_counter()
    for _ in range(iterations):
        state, metrics = solver.step(state)
    elapsed = time.perf_counter() - start
    return {"seconds_per_iteration": elapsed / iterations, "exploitability": metrics["exploitability"]}


def run_openspiel(algorithm: str, size: int, horizon: int, iterations: int) -> dict:
    import pyspiel
    from open_spiel.python.mfg.algorithms import fictitious_play, mirror_descent, nash_conv

    game = pyspiel.load_game("mfg_crowd_modelling_2d", {"size": size, "horizon": horizon})
    solver = fictitious_play.FictitiousPlay(game) if algorithm == "fp" else mirror_descent.MirrorDescent(game)
    start = time.perf_counter()
    for _ in range(iterations):
        solver.iteration()
    elapsed = time.perf_counter() - start
    value = float(nash_conv.NashConv(game, solver.get_policy()).nash_conv())
    return {"seconds_per_iteration": elapsed / iterations, "exploitability": value}


def run_mfglib(algorithm: str, size: int, horizon: int, iterations: int) -> dict:
    from mfglib.alg import FictitiousPlay, OnlineMirrorDescent
    from mfglib.env import Environment

    env = Environment.crowd_motion(T=horizon, torus_l=size, torus_w=size)
    solver = FictitiousPlay() if algorithm == "fp" else OnlineMirrorDescent()
    start = time.perf_counter()
    _, expls, _ = solver.solve(env, max_iter=iterations, atol=None, rtol=None)
    elapsed = time.perf_counter() - start
    return {"seconds_per_iteration": elapsed / iterations, "exploitability": float(expls[-1])}


RUNNERS = {"gamescale": run_gamescale, "openspiel": run_openspiel, "mfglib": run_mfglib}


def _child(queue, peer: str, algorithm: str, size: int, horizon: int, iterations: int) -> None:
    try:
        result = RUNNERS[peer](algorithm, size, horizon, iterations)
        result["peak_rss_mb"] = _peak_rss_mb()
        queue.put(result)
    except Exception as error:  # report, do not crash the benchmark
        queue.put({"error": f"{type(error).__name__}: {error}"})


def measure(peer: str, algorithm: str, size: int, horizon: int, iterations: int, budget: float) -> dict:
    """Run one peer in a fresh process; 'did not finish' when it exceeds `budget` seconds."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(queue, peer, algorithm, size, horizon, iterations))
    process.start()
    process.join(budget)
    if process.is_alive():
        process.kill()
        process.join()
        return {"status": "did not finish", "budget_s": budget}
    if queue.empty():
        return {"status": "failed"}
    result = queue.get()
    result["status"] = "error" if "error" in result else "ok"
    return result


def scaling(sizes: list[tuple[int, int]], iterations: int) -> list[dict]:
    """gamescale FP seconds per iteration on grids of growing size x horizon (in process)."""
    rows = []
    for size, horizon in sizes:
        result = run_gamescale("fp", size, horizon, iterations)
        rows.append({"size": size, "horizon": horizon, "states": size * size * horizon, **result})
        print(
            f"  scaling {size}x{size}x{horizon} ({size * size * horizon:>9,d} states): {result['seconds_per_iteration']:.4f} s/it"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--budget", type=float, default=120.0, help="seconds per peer run")
    parser.add_argument("--skip-scaling", action="store_true")
    args = parser.parse_args()

    rows = []
    for algorithm in ("fp", "omd"):
        for peer in ("openspiel", "mfglib", "gamescale"):
            result = measure(peer, algorithm, args.size, args.horizon, args.iterations, args.budget)
            rows.append({"peer": peer, "algorithm": algorithm, **result})
            print(rows[-1])
    by_key = {(r["peer"], r["algorithm"]): r for r in rows}
    print(f"\n2D crowd modelling {args.size}x{args.size}, horizon {args.horizon}, {args.iterations} iterations")
    print(f"{'peer':<10} {'alg':<4} {'s/iteration':>12} {'exploitability':>15} {'peak RSS MB':>12} {'speed-up':>10}")
    for r in rows:
        if r["status"] != "ok":
            print(f"{r['peer']:<10} {r['algorithm']:<4} {r['status']:>12}")
            continue
        ours = by_key[("gamescale", r["algorithm"])]
        speed_up = (
            r["seconds_per_iteration"] / ours["seconds_per_iteration"] if ours.get("status") == "ok" else float("nan")
        )
        note = " (own crowd_motion game)" if r["peer"] == "mfglib" else ""
        print(
            f"{r['peer']:<10} {r['algorithm']:<4} {r['seconds_per_iteration']:>12.5f} {r['exploitability']:>15.8f} "
            f"{r['peak_rss_mb']:>12.1f} {speed_up:>9.0f}x{note}"
        )
    scaling_rows = []
    if not args.skip_scaling:
        print("\ngamescale fictitious play, seconds per iteration (2D crowd, states = cells x horizon)")
        scaling_rows = scaling([(5, 4), (10, 10), (22, 20), (46, 50), (100, 100)], iterations=2)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": {
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                    "cpus": mp.cpu_count(),
                },
                "config": vars(args),
                "peers": rows,
                "scaling": scaling_rows,
            },
            indent=2,
        )
    )
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
