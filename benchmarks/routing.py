"""Routing benchmark, side by side with the peers in one run: static user equilibrium time
to relative gap 1e-4 beside AequilibraE (Braess and Sioux Falls from `../shared/data/tntp/`),
N-player batch-simulator vehicle-steps per second in process and through the Ray
`RolloutPool` with 1 and 2 workers, and the mean-field routing game beside OpenSpiel's
`python_mfg_dynamic_routing` (online mirror descent, lr 1; OpenSpiel runs in a subprocess
with a time budget, its fictitious play fails on this game). On Braess gamescale's OMD runs
in both forms: the default (textbook) update and `openspiel_compatible`, which computes
OpenSpiel's iterates (same exploitability after 10 iterations, printed for both); the
speed ratio against OpenSpiel is taken on the compatible form (the same computation).

The mean-field model matches OpenSpiel's definitions (travel time floor(t / dt) steps from
the mass on the link after the moves, volume = vehicles x mass, cost = arrival step x dt,
-(T + 1) dt if not arrived); on Braess both give nash_conv 0.5 and value -3.5 for the
uniform policy. Sioux Falls differs in data: OpenSpiel ships its own BPR coefficients and
demand, gamescale reads the TNTP files (528 OD pairs, 14,000 vehicles here).

Relative gap everywhere: 1 - sum_od d_od * shortest path cost / TSTT (AequilibraE's
"rgap"); every solution, ours and AequilibraE's, is re-checked with one evaluator.
Seconds per iteration are the median over the timed iterations (this may run on a shared,
busy machine; the median is robust to another process taking the CPU for a while).

Run: .venv/bin/python benchmarks/routing.py [--quick]
     (prints one table: peer, case, metric, value; writes benchmarks/results/routing.json)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from gamescale.algorithms.routing.static_ue import (
    all_or_nothing,
    auto_method,
    gap_and_tstt,
    make_solver,
    shortest_path_graph,
    solve_user_equilibrium,
)
from gamescale.envs.routing.dynamic import make_game
from gamescale.envs.routing.network import DATA_DIR, Network, link_cost, load_network

TARGET_GAP = 1e-4
GAPS = (1e-4, 1e-6)
SHARED_TNTP = Path(__file__).resolve().parents[2] / "shared" / "data" / "tntp"
TNTP_FILES = {"braess": "Braess", "sioux_falls": "SiouxFalls", "chicago_sketch": "ChicagoSketch"}
STATIC_CASES = ("sioux_falls", "chicago_sketch", "grid", "grid_dense")
# grid: the generated 100 x 100 city (300 zones, 89,700 OD pairs); grid_dense: a 114 x 114
# city with 865 zones (747,360 OD pairs), shaped like the 13,000-node, 865-zone TNTP city of
# issue 9 (Berlin-Center-sized), about the grid's total demand (432,500 vs 450,000 trips) over more zones
CASE_GAPS = {"grid_dense": (1e-4,)}  # the gaps timed where not GAPS (BFW, both peers, would need hours to 1e-6)
GRID_CASES = {"grid": {}, "grid_dense": {"rows": 114, "cols": 114, "zones": 865, "trips_per_zone": 500.0}}
DATA = {"dir": SHARED_TNTP}  # --data


def tntp_network(case: str) -> Network:
    """`case`'s TNTP files from --data (default ../shared/data/tntp/; the package's copy of
    Braess and Sioux Falls if absent); `grid`: the default generated 10,000-node city."""
    if case in GRID_CASES:
        from gamescale.envs.routing.grid import GridConfig

        return load_network("grid", grid=GridConfig(**GRID_CASES[case]))
    folder = Path(DATA["dir"])
    if not (folder / f"{TNTP_FILES[case]}_net.tntp").exists():
        folder = DATA_DIR
    return load_network(str(folder / f"{TNTP_FILES[case]}_net.tntp"), str(folder / f"{TNTP_FILES[case]}_trips.tntp"))


def checked_gap(net: Network, flows: np.ndarray) -> tuple[float, float]:
    """(relative gap, TSTT) of link `flows`, by gamescale's all-or-nothing evaluator."""
    _, sptt = all_or_nothing(shortest_path_graph(net), link_cost(net, flows))
    return gap_and_tstt(net, flows, sptt)


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


# ----------------------------------------------------------------------------- static UE
# Each (peer, case) runs in a fresh child process (`--child`), so peak memory is its own
# and one peer's caches never help the other; cases alternate between the peers.


def gamescale_static_ue(case: str, workers: int, max_seconds: float) -> dict:
    """Default solver (`auto`: gradient projection, or simplicial decomposition for dense demand) from solver set-up until each gap in GAPS is
    first reached: seconds, iterations, TSTT; `workers` > 1 sends the shortest-path shards
    to Ray rollout actors (actors started and warmed before the clock starts)."""
    from gamescale.algorithms.base import LocalShardRunner, StepContext

    net = tntp_network(case)
    pool = None
    runner: object = LocalShardRunner(net)
    if workers > 1:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        from gamescale.framework.runtime import connect

        connect(None, num_cpus=max(workers, 2))
        from gamescale.framework.actors import RolloutPool

        env_cfg = (
            {"name": "routing_network", "net": "grid", "grid": GRID_CASES[case]}
            if case in GRID_CASES
            else {
                "name": "routing_network",
                "net": str(Path(DATA["dir"]) / f"{TNTP_FILES[case]}_net.tntp"),
                "trips": str(Path(DATA["dir"]) / f"{TNTP_FILES[case]}_trips.tntp"),
            }
        )
        pool = runner = RolloutPool(env_cfg, workers)
        pool.worker_pids()  # actors up, networks loaded
    start = time.perf_counter()
    method = auto_method(net)  # what the default (`auto`) runs
    gaps = CASE_GAPS.get(case, GAPS)
    solver = make_solver(net, method, max_iterations=10_000)
    state = solver.init(0)
    reached: dict[str, dict] = {}
    for i in range(10_000):
        state, metrics = solver.step(state, StepContext(iteration=i, seed=0, shards=runner, num_shards=max(4, workers)))
        for gap in gaps:
            if metrics["relative_gap"] <= gap and f"{gap:g}" not in reached:
                reached[f"{gap:g}"] = {
                    "seconds": time.perf_counter() - start,
                    "iterations": int(state["iteration"]),
                    "tstt": metrics["tstt"],
                    "checked_gap": checked_gap(net, state["flows"])[0],
                }
        if len(reached) == len(gaps) or time.perf_counter() - start > max_seconds:
            break
    if pool is not None:
        pool.shutdown()
    return {
        "peer": "gamescale",
        "solver": f"{method}, {workers} worker(s)",
        "case": case,
        "workers": workers,
        "reached": reached,
        "final_gap": float(state["relative_gap"]),
        "iterations": int(state["iteration"]),
        "seconds": time.perf_counter() - start,
        "peak_rss_mb": peak_rss_mb(),
    }


def _aequilibrae_assignment(net: Network, algorithm: str, gap: float = TARGET_GAP, max_iter: int = 100_000):
    """AequilibraE's TrafficAssignment on `net`: Graph from a DataFrame, in-memory matrix, one core."""
    import pandas as pd
    from aequilibrae.matrix import AequilibraeMatrix
    from aequilibrae.paths import Graph, TrafficAssignment, TrafficClass

    ids = net.node_ids
    fft = net.free_flow_time
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(fft > 0, net.congestion_time / fft, 0.0)  # TNTP's BPR b
    graph = Graph()
    graph.network = pd.DataFrame(
        {
            "link_id": np.arange(1, net.num_links + 1),
            "a_node": ids[net.init_node],
            "b_node": ids[net.term_node],
            "direction": np.ones(net.num_links, np.int8),
            "free_flow_time": np.maximum(fft, 1e-6),  # it refuses 0 (Chicago connectors); alpha 0 there
            "capacity": net.capacity,
            "alpha": alpha,
            "beta": net.power,
        }
    )
    graph.mode = "c"
    d = net.demand
    zones = np.unique(np.concatenate([ids[d.origin], ids[d.destination]])).astype(np.int64)
    graph.prepare_graph(zones)
    graph.set_graph("free_flow_time")
    graph.set_skimming(["free_flow_time"])
    graph.set_blocked_centroid_flows(net.first_thru_node > 0)  # TNTP: zones below it are not crossed
    matrix = AequilibraeMatrix()
    matrix.create_empty(zones=len(zones), matrix_names=["demand"], memory_only=True)
    matrix.index[:] = zones
    od = np.zeros((len(zones), len(zones)))
    np.add.at(od, (np.searchsorted(zones, ids[d.origin]), np.searchsorted(zones, ids[d.destination])), d.flow)
    matrix.matrices[:, :, 0] = od
    matrix.computational_view(["demand"])
    car = TrafficClass("car", graph, matrix)
    assignment = TrafficAssignment()
    assignment.set_classes([car])
    assignment.set_vdf("BPR")  # t = fft * (1 + alpha * (x / capacity) ** beta)
    assignment.set_vdf_parameters({"alpha": "alpha", "beta": "beta"})
    assignment.set_capacity_field("capacity")
    assignment.set_time_field("free_flow_time")
    assignment.set_algorithm(algorithm)
    assignment.set_cores(1)
    assignment.max_iter = max_iter
    assignment.rgap_target = gap
    return assignment


def aequilibrae_static_ue(case: str, algorithm: str, max_iter: int) -> dict:
    """AequilibraE `algorithm` (bfw) run once per gap in GAPS (its stopping rule is its rgap
    target): seconds of `execute()` (graph/matrix set-up reported apart), flows re-checked."""
    from importlib.metadata import version

    os.environ.setdefault("AEQ_SHOW_PROGRESS", "FALSE")
    net = tntp_network(case)
    reached: dict[str, dict] = {}
    setup = 0.0
    for gap in CASE_GAPS.get(case, GAPS):
        start = time.perf_counter()
        assignment = _aequilibrae_assignment(net, algorithm, gap, max_iter)
        setup = time.perf_counter() - start
        start = time.perf_counter()
        with np.errstate(divide="ignore", invalid="ignore"):
            assignment.execute(log_specification=False)
        seconds = time.perf_counter() - start
        result = assignment.results()  # one row per link_id (1-based link order here)
        loads = np.zeros(net.num_links)
        loads[result.index.to_numpy() - 1] = result["demand_tot"].to_numpy()
        checked, tstt = checked_gap(net, loads)
        rgap = float(assignment.assignment.rgap)
        row = {"seconds": seconds, "iterations": int(assignment.assignment.iter), "tstt": tstt, "checked_gap": checked}
        if rgap <= gap:
            reached[f"{gap:g}"] = row
        else:
            reached[f"{gap:g}"] = {**row, "not_reached": f"rgap {rgap:.2e} after max_iter {max_iter}"}
    return {
        "peer": f"aequilibrae {version('aequilibrae')}",
        "solver": f"{algorithm}, 1 core",
        "case": case,
        "setup_s": setup,
        "reached": reached,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_child(spec: dict) -> dict:
    DATA["dir"] = spec.get("data", DATA["dir"])
    if spec["peer"] == "gamescale":
        return gamescale_static_ue(spec["case"], spec["workers"], spec["max_seconds"])
    return aequilibrae_static_ue(spec["case"], "bfw", spec["max_iter"])


def static_ue_rows(quick: bool, cases: tuple[str, ...]) -> list[dict]:
    """Alternate peers case by case, each run in its own child process."""
    import subprocess
    import sys

    rows = []
    for case in cases:
        specs = [
            {"peer": "gamescale", "case": case, "workers": 1, "max_seconds": 1800},
            {"peer": "aequilibrae", "case": case, "max_iter": (300 if quick else 1000) if case in GRID_CASES else 2000},
            {"peer": "gamescale", "case": case, "workers": 2, "max_seconds": 1800},
        ]
        for spec in specs:
            spec["data"] = str(DATA["dir"])
            try:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", json.dumps(spec)],
                    capture_output=True,
                    text=True,
                    timeout=1800,
                    env={**os.environ, "AEQ_SHOW_PROGRESS": "FALSE"},
                )
                lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
                if out.returncode != 0 or not lines:
                    raise RuntimeError((out.stderr.strip().splitlines() or ["no output"])[-1][:200])
                rows.append(json.loads(lines[-1]))
            except Exception as err:  # noqa: BLE001 - recorded in the table, not hidden
                rows.append({"peer": spec["peer"], "case": case, "error": repr(err)[:200]})
            print(f"  static UE {spec['peer']} {case}: done", flush=True)
    return rows


def converged_tstt(case: str, gap: float = 1e-7) -> dict:
    """Reference: TSTT at a much smaller gap (gradient projection), to see how far the
    gap-1e-4 solutions are from the equilibrium's TSTT."""
    net = tntp_network(case)
    state = solve_user_equilibrium(net, gap, 2000)
    checked, tstt = checked_gap(net, state["flows"])
    return {"case": case, "gap": checked, "tstt": tstt, "iterations": int(state["iteration"])}


# ----------------------------------------------------------------------------- simulator


def simulator_throughput(case: str, num_vehicles: int, num_games: int) -> dict:
    """In process: random legal moves for every ready vehicle, `num_games` games at once."""
    net = load_network(case)
    game = make_game(net, num_vehicles, 1.0, 100)
    rng = np.random.default_rng(0)
    state = game.reset(num_games)
    start, steps = time.perf_counter(), 0
    while not game.done(state):
        ready = game.ready(state)
        deg = net.out_degree()[state.node]
        pick = net.out_ptr[state.node] + (rng.random(state.node.shape) * np.maximum(deg, 1)).astype(np.int64)
        actions = np.where(ready & (deg > 0), net.out_links[np.minimum(pick, net.num_links - 1)], -1)
        state = game.step(state, actions)
        steps += 1
    seconds = time.perf_counter() - start
    return {
        "peer": "gamescale",
        "case": case,
        "mode": "in process, random moves",
        "vehicles": num_vehicles,
        "games": num_games,
        "steps": steps,
        "seconds": seconds,
        "vehicle_steps_per_second": num_vehicles * num_games * steps / seconds,
    }


def ray_simulator_throughput(
    case: str, num_vehicles: int, games_per_shard: int, shards: int, worker_counts: tuple[int, ...], repeats: int
) -> list[dict]:
    """`simulate_shard` (route sampling + batch simulator) over a Ray `RolloutPool`."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import pyarrow as pa
    import ray

    from gamescale.algorithms.base import make_shard_tasks
    from gamescale.algorithms.routing.n_player import RoutingFictitiousPlay, simulate_shard
    from gamescale.framework.runtime import connect

    connect(None, num_cpus=2)
    from gamescale.framework.actors import RolloutPool

    env_cfg = {"name": "routing_n_player", "net": case, "num_vehicles": num_vehicles, "time_step": 1.0, "horizon": 100}
    game = make_game(load_network(case), num_vehicles, 1.0, 100)
    state = RoutingFictitiousPlay(game, games_per_shard=games_per_shard).init(0)  # free-flow shortest routes
    shared = {"routes": state["routes"], "probs": state["probs"], "games": games_per_shard}

    def vehicle_steps(batches) -> int:
        """Steps each shard simulated: until every vehicle of its games arrived, or the horizon."""
        total = 0
        for batch in batches:
            tt = np.asarray(pa.Table.from_batches([batch]).column("travel_time").combine_chunks().flatten())
            arrival = game.departure_step[None, :] + np.rint(tt.reshape(batch.num_rows, -1) / game.time_step)
            total += num_vehicles * batch.num_rows * int(min(game.horizon, arrival.max()))
        return total

    rows = []
    try:
        for workers in worker_counts:
            pool = RolloutPool(env_cfg, workers)
            pool.map(simulate_shard, make_shard_tasks(0, 0, workers), shared)  # warm-up: actors built
            best, count = 0.0, 0
            for r in range(repeats):
                start = time.perf_counter()
                batches = pool.map(simulate_shard, make_shard_tasks(0, r + 1, shards), shared)
                seconds = time.perf_counter() - start
                count = vehicle_steps(batches)
                best = max(best, count / seconds)
            pool.shutdown()
            rows.append(
                {
                    "peer": "gamescale",
                    "case": case,
                    "mode": f"Ray RolloutPool, {workers} worker(s)",
                    "workers": workers,
                    "vehicles": num_vehicles,
                    "games": games_per_shard * shards,
                    "shards": shards,
                    "vehicle_steps": count,
                    "vehicle_steps_per_second": best,
                }
            )
    finally:
        ray.shutdown()
    return rows


# ----------------------------------------------------------------------------- mean field

OPENSPIEL_BUDGET_S = 120.0  # per OpenSpiel case (set-up + iterations), then killed
MF_ITERATIONS = 10  # iterations behind each avg travel time (the same for both peers)


def _openspiel_case(case: str, iterations: int, out) -> None:
    """Child process: build OpenSpiel's game, run mirror descent, report timings (and FP's error)."""
    try:
        from open_spiel.python.games import dynamic_routing_data as data
        from open_spiel.python.mfg.algorithms import (
            distribution,
            fictitious_play,
            mirror_descent,
            nash_conv,
            policy_value,
        )
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
            fp_error = f"{type(err).__name__}: {str(err)[:40]}..."
    md = mirror_descent.MirrorDescent(game, lr=1.0)
    setup = time.perf_counter() - start
    out.put({"setup_s": setup})
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        md.iteration()
        times.append(time.perf_counter() - start)
    pol = md.get_policy()
    value = policy_value.PolicyValue(game, distribution.DistributionPolicy(game, pol), pol).value(
        game.new_initial_state()
    )
    out.put(
        {
            "setup_s": setup,
            "seconds_per_iteration": statistics.median(times),
            "mean_seconds_per_iteration": sum(times) / len(times),
            "avg_travel_time": -value,
            "exploitability": float(nash_conv.NashConv(game, pol).nash_conv()) if case == "braess" else None,
            "fp_error": fp_error,
        }
    )


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
    row = {"peer": "openspiel 2.0.2 (mirror descent)", "case": case, "iterations": iterations, "budget_s": budget_s}
    row.update(last)
    if not finished:
        row["status"] = f"did not finish in {budget_s:g} s" + (
            " (set-up done)" if "setup_s" in last else " (in set-up)"
        )
    return row


def gamescale_mean_field(
    net: str, iterations: int, timed: int, openspiel_compatible: bool = False, **env_kwargs
) -> dict:
    """OMD (lr 1): avg travel time after `iterations`; median seconds over `timed` iterations."""
    from gamescale.algorithms.registry import algorithm_config, build_algorithm
    from gamescale.envs.registry import make_env

    start = time.perf_counter()
    env = make_env("routing_mean_field", net=net, **env_kwargs)
    config = {"name": "routing_mean_field_omd", "learning_rate": 1.0, "openspiel_compatible": openspiel_compatible}
    alg = build_algorithm(algorithm_config(config), env)
    state = alg.init(0)
    setup = time.perf_counter() - start
    times, at_iterations = [], {}
    for i in range(max(iterations, timed)):
        start = time.perf_counter()
        state, metrics = alg.step(state)
        times.append(time.perf_counter() - start)
        if i + 1 == iterations:
            at_iterations = dict(metrics)
    return {
        "peer": "gamescale (routing_mean_field_omd" + (", openspiel_compatible)" if openspiel_compatible else ")"),
        "form": "openspiel_compatible" if openspiel_compatible else "default",
        "case": net,
        "iterations": iterations,
        "timed_iterations": len(times),
        "setup_s": setup,
        "seconds_per_iteration": statistics.median(times),
        "mean_seconds_per_iteration": sum(times) / len(times),
        "avg_travel_time": at_iterations["avg_travel_time"],
        "exploitability": at_iterations["exploitability"],
        "num_od": env.model.network.demand.num_od,
    }


def mean_field_rows(quick: bool) -> list[dict]:
    budget = 20.0 if quick else OPENSPIEL_BUDGET_S
    rows = [
        gamescale_mean_field("braess", MF_ITERATIONS, 50 if quick else 300, time_step=0.05, horizon=100),
        gamescale_mean_field(
            "braess", MF_ITERATIONS, 50 if quick else 300, openspiel_compatible=True, time_step=0.05, horizon=100
        ),
        openspiel_mean_field("braess", MF_ITERATIONS, budget),
        gamescale_mean_field(
            "sioux_falls", MF_ITERATIONS, 10 if quick else 30, num_vehicles=14000, time_step=1.0, horizon=100
        ),
        openspiel_mean_field("sioux_falls", 1, budget),
    ]
    if not quick:  # about 16 s per iteration after a long set-up
        rows.append(openspiel_mean_field("sioux_falls_2_pairs", 1, budget))
    return rows


# ----------------------------------------------------------------------------- report


def table_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """(peer, case, metric, value) rows of everything measured, then the targets."""
    out = []
    for r in results["static_ue"]:
        if "error" in r:
            out.append((r["peer"], r["case"], "static UE", r["error"]))
            continue
        peer = f"{r['peer']} {r['solver']}"
        for gap in CASE_GAPS.get(r["case"], GAPS):
            hit = r["reached"].get(f"{gap:g}")
            if hit is None or "not_reached" in hit:
                why = hit["not_reached"] if hit else f"not reached (final gap {r.get('final_gap', float('nan')):.2e})"
                out.append((peer, r["case"], f"static UE s to gap {gap:g}", why))
                continue
            out.append((peer, r["case"], f"static UE s to gap {gap:g}", f"{hit['seconds']:.3f}"))
            out.append((peer, r["case"], f"static UE iterations to {gap:g}", str(hit["iterations"])))
            out.append(
                (
                    peer,
                    r["case"],
                    f"static UE checked gap / TSTT at {gap:g}",
                    f"{hit['checked_gap']:.2e} / {hit['tstt']:.7g}",
                )
            )
        out.append((peer, r["case"], "static UE peak RSS MB", f"{r['peak_rss_mb']:.0f}"))
    for r in results["simulator"]:
        out.append((f"{r['peer']} ({r['mode']})", r["case"], "vehicle-steps/s", f"{r['vehicle_steps_per_second']:.3e}"))
    for r in results["mean_field"]:
        peer, case = r["peer"], r["case"]
        if r.get("error"):
            out.append((peer, case, "mean-field OMD", r["error"]))
            continue
        if r.get("status"):
            out.append((peer, case, "mean-field OMD", r["status"]))
        if r.get("setup_s") is not None:
            out.append((peer, case, "mean-field set-up s", f"{r['setup_s']:.3f}"))
        if r.get("seconds_per_iteration") is not None:
            out.append((peer, case, "mean-field s/iteration", f"{r['seconds_per_iteration']:.5f}"))
            out.append(
                (peer, case, f"mean-field avg travel time ({r['iterations']} it.)", f"{r['avg_travel_time']:.4f}")
            )
            if r.get("exploitability") is not None:
                out.append(
                    (peer, case, f"mean-field exploitability ({r['iterations']} it.)", f"{r['exploitability']:.6f}")
                )
        if r.get("fp_error"):
            out.append((peer, case, "fictitious play", r["fp_error"]))
    for r in results.get("reference_tstt", []):
        out.append(
            ("gamescale gradient_projection", r["case"], f"reference TSTT at gap {r['gap']:.0e}", f"{r['tstt']:.6g}")
        )
    for name, (met, detail) in results["targets"].items():
        out.append(("target", name, "met" if met else "NOT MET", detail))
    return out


def targets(results: dict) -> dict[str, tuple[bool, str]]:
    mf = {(r["peer"].split()[0], r["case"], r.get("form")): r for r in results["mean_field"]}
    out: dict[str, tuple[bool, str]] = {}
    sf = mf.get(("gamescale", "sioux_falls", "default"), {})
    if "seconds_per_iteration" in sf:
        out["sioux_falls MF iteration <= 1 s"] = (
            sf["seconds_per_iteration"] <= 1.0,
            f"{sf['seconds_per_iteration']:.4f} s",
        )
    # like with like: the form that computes OpenSpiel's iterates
    ours = mf.get(("gamescale", "braess", "openspiel_compatible"), {})
    theirs = mf.get(("openspiel", "braess", None), {})
    if "seconds_per_iteration" in ours and "seconds_per_iteration" in theirs:
        speedup = theirs["seconds_per_iteration"] / ours["seconds_per_iteration"]
        same = abs(ours["exploitability"] - theirs["exploitability"]) <= 1e-9
        out["braess MF (openspiel_compatible) >= 100x OpenSpiel"] = (
            speedup >= 100 and same,
            f"{speedup:.0f}x; exploitability after {ours['iterations']} it. "
            + ("equal" if same else f"differs: {ours['exploitability']:.6f} vs {theirs['exploitability']:.6f}"),
        )
    for case in {r["case"] for r in results["static_ue"]}:
        rows = [r for r in results["static_ue"] if r["case"] == case and "reached" in r]
        aeq = [r for r in rows if r["peer"].startswith("aequilibrae")]
        one = [r for r in rows if r["peer"] == "gamescale" and r["workers"] == 1]
        if not (aeq and one):
            continue
        for gap in CASE_GAPS.get(case, GAPS):
            ours, theirs = one[0]["reached"].get(f"{gap:g}"), aeq[0]["reached"].get(f"{gap:g}")
            if ours is None:
                out[f"{case} gap {gap:g} <= AequilibraE"] = (False, "gamescale did not reach it")
            elif theirs is None or "not_reached" in theirs:
                out[f"{case} gap {gap:g} <= AequilibraE"] = (
                    True,
                    f"{ours['seconds']:.2f} s; AequilibraE did not reach it",
                )
            else:
                ratio = theirs["seconds"] / ours["seconds"]
                out[f"{case} gap {gap:g} <= AequilibraE"] = (
                    ours["seconds"] <= theirs["seconds"],
                    f"{ours['seconds']:.2f} s vs {theirs['seconds']:.2f} s: {ratio:.1f}x; "
                    f"TSTT rel. diff {abs(ours['tstt'] - theirs['tstt']) / theirs['tstt']:.1e}",
                )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run: fewer repeats, OpenSpiel budget 20 s")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "routing.json"))
    parser.add_argument("--data", default=str(SHARED_TNTP), help="folder of the TNTP files (Chicago Sketch)")
    parser.add_argument("--only", choices=["static_ue", "mean_field"], help="run only this part")
    parser.add_argument("--cases", default=",".join(STATIC_CASES), help="static UE cases, comma-separated")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(json.loads(args.child)), default=str))
        return
    DATA["dir"] = Path(args.data)
    quick = args.quick
    started = time.perf_counter()
    results: dict = {
        "load_avg_at_start": os.getloadavg(),
        "quick": quick,
    }
    results["static_ue"], results["reference_tstt"] = [], []
    results["simulator"], results["mean_field"] = [], []
    if args.only == "mean_field":
        results["mean_field"] = mean_field_rows(quick)
        results["targets"] = targets(results)
        _report(results, args, started)
        return
    results["static_ue"] = static_ue_rows(quick, tuple(args.cases.split(",")))
    results["reference_tstt"] = [] if quick else [converged_tstt(c) for c in ("sioux_falls", "chicago_sketch")]
    if args.only == "static_ue":
        results["targets"] = targets(results)
        _report(results, args, started)
        return
    results["simulator"] = [simulator_throughput("sioux_falls", 14_000, 2 if quick else 8)]
    results["simulator"] += ray_simulator_throughput(
        "sioux_falls",
        14_000,
        games_per_shard=2 if quick else 4,
        shards=4 if quick else 8,
        worker_counts=(1, 2),
        repeats=1 if quick else 3,
    )
    results["mean_field"] = mean_field_rows(quick)
    results["targets"] = targets(results)
    _report(results, args, started)


def _report(results: dict, args: argparse.Namespace, started: float) -> None:
    rows = table_rows(results)
    widths = [max(len(r[i]) for r in [("peer", "case", "metric", "value"), *rows]) for i in range(4)]
    for row in [("peer", "case", "metric", "value"), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    results["table"] = [dict(zip(("peer", "case", "metric", "value"), r, strict=True)) for r in rows]
    results["wall_s"] = time.perf_counter() - started
    from machine import describe_machine  # benchmarks/machine.py (its folder is on sys.path)

    results = {"machine": describe_machine(), **results}
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\n{results['wall_s']:.0f} s; wrote {out}")


if __name__ == "__main__":
    main()
