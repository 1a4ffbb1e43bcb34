"""Routing benchmark: static UE time to relative gap 1e-4 (Braess, Sioux Falls), beside
AequilibraE when importable, N-player batch-simulator vehicle-steps per second, and the
mean-field routing game side by side with OpenSpiel's `python_mfg_dynamic_routing`
(online mirror descent, lr 1; OpenSpiel runs in a subprocess with a time budget).

The mean-field model matches OpenSpiel's definitions (travel time floor(t / dt) steps from
the mass on the link after the moves, volume = vehicles x mass, cost = arrival step x dt,
-(T + 1) dt if not arrived); on Braess both give nash_conv 0.5 and value -3.5 for the
uniform policy. Sioux Falls differs in data: OpenSpiel ships its own BPR coefficients and
demand, gamescale reads the TNTP files (528 OD pairs, 14,000 vehicles here).

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


OPENSPIEL_BUDGET_S = 120.0  # per OpenSpiel case (set-up + iterations), then killed
MF_ITERATIONS = 10


def _openspiel_case(case: str, iterations: int, out) -> None:
    """Child process: build OpenSpiel's game, run mirror descent, report timings (and FP's error)."""
    try:
        from open_spiel.python.games import dynamic_routing_data as data
        from open_spiel.python.mfg.algorithms import distribution, fictitious_play, mirror_descent, policy_value
        from open_spiel.python.mfg.games import dynamic_routing
    except ImportError as err:  # the `bench` extra is not installed
        out.put({"error": f"open_spiel not importable: {err}"})
        return
    start = time.perf_counter()
    if case == "braess":
        params, net, od = (
            {"max_num_time_step": 100, "time_step_length": 0.05},
            data.BRAESS_NETWORK,
            data.BRAESS_NETWORK_OD_DEMAND,
        )
    elif case == "sioux_falls":
        params, net, od = (
            {"max_num_time_step": 100, "time_step_length": 0.5},
            data.SIOUX_FALLS_NETWORK,
            data.SIOUX_FALLS_OD_DEMAND,
        )
    else:  # OpenSpiel's 2-pair Sioux Falls demand (14,000 vehicles)
        params, net, od = (
            {"max_num_time_step": 100, "time_step_length": 0.5},
            data.SIOUX_FALLS_NETWORK,
            data.SIOUX_FALLS_DUMMY_OD_DEMAND,
        )
    game = dynamic_routing.MeanFieldRoutingGame(params, network=net, od_demand=od, perform_sanity_checks=False)
    fp_error = None
    if case == "braess":
        try:
            fictitious_play.FictitiousPlay(game).iteration()
        except Exception as err:  # noqa: BLE001 - recorded, not hidden
            fp_error = f"{type(err).__name__}: {str(err)[:120]}"
    md = mirror_descent.MirrorDescent(game, lr=1.0)
    setup = time.perf_counter() - start
    out.put({"setup_s": setup})
    start = time.perf_counter()
    for _ in range(iterations):
        md.iteration()
    per_iter = (time.perf_counter() - start) / iterations
    pol = md.get_policy()
    value = policy_value.PolicyValue(game, distribution.DistributionPolicy(game, pol), pol).value(
        game.new_initial_state()
    )
    out.put({"setup_s": setup, "seconds_per_iteration": per_iter, "avg_travel_time": -value, "fp_error": fp_error})


def openspiel_mean_field(case: str, iterations: int, budget_s: float = OPENSPIEL_BUDGET_S) -> dict:
    """Run `_openspiel_case` in a subprocess; kill it after `budget_s` seconds."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_openspiel_case, args=(case, iterations, out), daemon=True)
    start = time.perf_counter()
    proc.start()
    last: dict = {}
    while proc.is_alive() and time.perf_counter() - start < budget_s:
        proc.join(timeout=0.5)
        while not out.empty():
            last = out.get()
    while not out.empty():
        last = out.get()
    finished = "seconds_per_iteration" in last or "error" in last
    if proc.is_alive():
        proc.kill()
        proc.join()
    row = {"solver": "openspiel/mirror_descent", "case": case, "iterations": iterations, "budget_s": budget_s, **last}
    if not finished:
        row["status"] = f"did not finish in {budget_s:g} s" + (
            " (set-up done)" if "setup_s" in last else " (in set-up)"
        )
    return row


def gamescale_mean_field(net: str, iterations: int, **env_kwargs) -> dict:
    from gamescale.algorithms.registry import algorithm_config, build_algorithm
    from gamescale.envs.registry import make_env

    start = time.perf_counter()
    env = make_env("routing_mean_field", net=net, **env_kwargs)
    alg = build_algorithm(algorithm_config({"name": "routing_mean_field_omd", "learning_rate": 1.0}), env)
    state = alg.init(0)
    setup = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(iterations):
        state, metrics = alg.step(state)
    return {
        "solver": "gamescale/routing_mean_field_omd",
        "case": net,
        "iterations": iterations,
        "setup_s": setup,
        "seconds_per_iteration": (time.perf_counter() - start) / iterations,
        "avg_travel_time": metrics["avg_travel_time"],
        "exploitability": metrics["exploitability"],
        "num_od": env.model.network.demand.num_od,
    }


def mean_field_rows(budget_s: float = OPENSPIEL_BUDGET_S) -> list[dict]:
    return [
        gamescale_mean_field("braess", MF_ITERATIONS, time_step=0.05, horizon=100),
        openspiel_mean_field("braess", MF_ITERATIONS, budget_s),
        gamescale_mean_field("sioux_falls", MF_ITERATIONS, num_vehicles=14000, time_step=1.0, horizon=100),
        openspiel_mean_field("sioux_falls", 1, budget_s),
        openspiel_mean_field("sioux_falls_2_pairs", 1, budget_s),
    ]


def print_mean_field(rows: list[dict]) -> None:
    print(
        f"\nmean-field routing, online mirror descent (lr 1), {MF_ITERATIONS} iterations (1 for OpenSpiel Sioux Falls)"
    )
    print(f"{'case':<22} {'solver':<34} {'setup s':>9} {'s/iter':>10} {'avg tt':>9}  note")
    for r in rows:
        note = r.get("status") or r.get("error") or (f"FP: {r['fp_error']}" if r.get("fp_error") else "")
        per = r.get("seconds_per_iteration")
        tt = r.get("avg_travel_time")
        setup = r.get("setup_s")
        print(
            f"{r['case']:<22} {r['solver']:<34} {'' if setup is None else f'{setup:.3f}':>9} "
            f"{'-' if per is None else f'{per:.4f}':>10} {'-' if tt is None else f'{tt:.4f}':>9}  {note}"
        )
    ours = {r["case"]: r for r in rows if r["solver"].startswith("gamescale")}
    theirs = {r["case"]: r for r in rows if r["solver"].startswith("openspiel")}
    if "seconds_per_iteration" in theirs.get("braess", {}):
        speedup = theirs["braess"]["seconds_per_iteration"] / ours["braess"]["seconds_per_iteration"]
        print(f"Braess speed-up per iteration: {speedup:.0f}x")


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
    mf = mean_field_rows()
    print_mean_field(mf)
    out = Path(__file__).parent / "results" / "routing.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"static_ue": ue, "simulator": sim, "mean_field": mf}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
