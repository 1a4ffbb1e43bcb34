"""Least core side by side: OpenSpiel's `coalitional_games` (LP via cvxpy, Lagrangian via jax)
and gamescale (HiGHS LP, cutting planes, iterative coalition sampling), one run.

1. For weighted voting games (quota 60% of the total weight, integer weights 1..20) and
   induced subgraph games (edge probability min(1, 8/n), integer weights in [-5, 10], so v(N) >= 0) with
   n players: the best known least-core value under OpenSpiel's definition (payoffs >= 0),
   exact where it can be computed (full LP, or cutting planes with the subset-sum oracle or
   the separation MILP), else the proven bracket [best_known_lower, best_known] that cutting
   planes reach in the budget; then for every solver, in a fresh subprocess with a time
   budget, the seconds until a payoff whose largest excess (measured exactly, or bounded
   above by the MILP) is within 1% of best_known, and the subprocess's peak memory. OpenSpiel's Lagrangian runs with the settings of its
   own test (Adam 1e-2, batch 8, mu_init 1000) and its saved payoffs are measured here.
2. Coalition evaluations per second with 1 and 2 Ray rollout workers (MC-net and the XAI game).

    python benchmarks/coalitions.py [--quick] [--budget 60] [--sizes 20,25,50] [--no-throughput]

Prints the tables and writes benchmarks/results/coalitions.json. BLAS runs one thread per
process: on a shared 2-core machine its threads only contend (10x slower small products).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import resource
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy
    os.environ.setdefault(_var, "1")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before any import of ray

import numpy as np  # noqa: E402

WITHIN = 0.01
ORACLE_SECONDS = 60.0  # one separation MILP measuring a payoff


def make_game(family: str, n: int, seed: int = 0):
    from gamescale.algorithms.coalitions.scaling import FAMILIES
    from gamescale.envs.coalitions import random_induced_subgraph

    if family == "weighted_voting":  # the coop-scaling voting games (where proportional payoffs miss)
        return FAMILIES[family](n, seed)
    return random_induced_subgraph(n, seed, edge_probability=min(1.0, 8.0 / n), min_weight=-5, max_weight=10)


def true_excess(game, payoff: np.ndarray, above: float = math.inf) -> tuple[float, str]:
    """Largest excess of a payoff over all proper coalitions: exact when possible (enumeration,
    subset-sum, or the MILP within ORACLE_SECONDS up to 50 players), else the long tabu search
    that also stands behind the best known value (`certify_by_search`, "search"). Where a MILP
    would be needed and a sampled coalition already exceeds `above`, that (lower) value is
    returned: the payoff misses anyway."""
    from gamescale.algorithms.coalitions.cutting import certify_by_search
    from gamescale.algorithms.coalitions.lp import has_exact_separation, most_violated_exact

    if hasattr(game, "separate") and game.num_players > 20:
        sampled = sampled_excess(game, payoff)
        if sampled > above:
            return sampled, "sampled"
        if game.num_players <= 50:
            found = game.separate(payoff, 1, ORACLE_SECONDS)
            if found.optimal:
                return found.upper_bound, "exact"
        _, ex = certify_by_search(game, payoff, 0)
        return max(float(ex[0]), sampled), "search"
    if has_exact_separation(game, 20):
        return float(most_violated_exact(game, payoff, 1, 20)[1][0]), "exact"
    return sampled_excess(game, payoff), "sampled"


def sampled_excess(game, payoff: np.ndarray) -> float:
    """The largest excess among 20,000 random coalitions and 50 tabu moves from the best 256."""
    from gamescale.algorithms.coalitions.sampling import sample_coalitions
    from gamescale.algorithms.coalitions.tabu import TabuSettings, tabu_search

    rng = np.random.default_rng(12345)
    c = sample_coalitions(rng, game.num_players, 20000)
    v = game.values(c)
    top = np.argsort(-(v - c @ payoff))[:256]
    found = tabu_search(game, payoff, c[top], rng, TabuSettings(iterations=50))
    return float(max(np.max(v - c @ payoff), found.best))


def best_known(game, budget: float) -> tuple[float, float, str]:
    """(lower, value, kind): the least-core value (payoffs >= 0), exact, or the LP value that a
    long tabu search finds nothing above (lp_and_heuristic_search), or the proven bracket's upper end."""
    from gamescale.algorithms.coalitions.cutting import CERTIFY_ROUNDS, solve_cutting_planes
    from gamescale.algorithms.coalitions.lp import exact_least_core

    if game.num_players <= 18:
        eps = exact_least_core(game, nonnegative=True).epsilon
        return eps, eps, "exact"
    if game.has_exact_oracle:
        found = solve_cutting_planes(
            game, nonnegative=True, time_limit=budget, bound_time_limit=budget / 2, certify_rounds=CERTIFY_ROUNDS
        )
        return found.lower, found.best_known, found.kind
    return math.nan, math.nan, "bracket"


# -- solvers, each run in a child process ---------------------------------------------------
def _openspiel_game(game):
    from open_spiel.python.coalitional_games import coalitional_game

    class Wrapped(coalitional_game.CoalitionalGame):
        def __init__(self):
            super().__init__(game.num_players)

        def coalition_value(self, coalition):
            return float(game.values(np.asarray(coalition, bool)[None])[0])

        def coalition_values(self, coalitions):
            return game.values(np.asarray(coalitions, bool))

    return Wrapped()


def run_openspiel_lp(family, n, target, budget):
    from open_spiel.python.coalitional_games import least_core_lp

    game = make_game(family, n)
    start = time.perf_counter()
    x, eps = least_core_lp.solve_least_core_lp(_openspiel_game(game), least_core_lp.add_all_constraints)
    seconds = time.perf_counter() - start
    value, _ = true_excess(game, np.asarray(x, float))
    return {"seconds": seconds, "epsilon": value, "reached": value <= target + WITHIN * abs(target)}


def run_openspiel_lagrangian(family, n, target, budget):
    """One `CoreLagrangian.solve` sized to the budget (each call starts afresh), payoffs saved 50
    times; the time to the first saved payoff within 1% is read off its iteration."""
    import optax
    from open_spiel.python.coalitional_games import least_core_lagrangian

    game = make_game(family, n)
    solver = least_core_lagrangian.CoreLagrangian(_openspiel_game(game), optax.adam(1e-2), optax.adam(1e-2))
    kwargs = {"batch_size": 8, "gamma": 1e-8, "mu_init": 1000.0, "seed": 0}
    calib = 500
    start = time.perf_counter()
    solver.solve(n_iter=calib, save_every=calib, evaluate_every=10 * calib, **kwargs)
    per_iter = (time.perf_counter() - start) / calib
    n_iter = max(int(0.6 * budget / per_iter) // 50 * 50, 50)
    payoffs, _, _, duration = solver.solve(n_iter=n_iter, save_every=n_iter // 50, evaluate_every=10 * n_iter, **kwargs)
    best = math.inf
    for k, x in enumerate(payoffs):
        value, _ = true_excess(game, np.asarray(x, float), above=target + WITHIN * abs(target))
        best = min(best, value)
        if value <= target + WITHIN * abs(target):
            return {"seconds": duration * k / 50, "epsilon": value, "reached": True, "iterations": k * (n_iter // 50)}
    return {"seconds": math.nan, "epsilon": best, "reached": False, "iterations": n_iter}


def run_gamescale(family, n, target, budget, update="lp"):
    """The iterative sampler until its stop rule (proven by the subset-sum oracle or the MILP) or,
    where no MILP proof is within reach (MILP families above 50 players), until the long tabu
    search agrees that its payoff is within 1% (`timed_iterative`, checks off the clock)."""
    from gamescale.algorithms.coalitions.config import LeastCoreSamplingConfig
    from gamescale.algorithms.coalitions.scaling import timed_iterative

    game = make_game(family, n)
    searched = hasattr(game, "separate") and n > 50
    config = LeastCoreSamplingConfig(
        update=update,
        nonnegative=True,
        shapley="none",
        reference="none",
        target_epsilon=None if searched else target,
        stop_within=None if searched else WITHIN,
        oracle_time_limit=ORACLE_SECONDS,
    )
    bound = target + WITHIN * abs(target)
    run = timed_iterative(game, config, 0, 4, budget, bound, 0 if searched else None)
    if math.isnan(run.seconds):
        value = run.checked if searched else float(run.state["best_epsilon"])
        return {"seconds": math.nan, "epsilon": value, "reached": False, "iterations": run.iterations}
    value, how = true_excess(game, run.state["payoff" if searched else "best_payoff"])
    return {
        "seconds": run.seconds,
        "cpu_seconds": run.cpu_seconds,
        "epsilon": value,
        "reached": value <= bound,
        "iterations": run.iterations,
        "certified": how,
    }


RUNNERS = {
    "openspiel_lp": run_openspiel_lp,
    "openspiel_lagrangian": run_openspiel_lagrangian,
    "gamescale_sampling_lp": lambda *a: run_gamescale(*a, update="lp"),
    "gamescale_saddle_point": lambda *a: run_gamescale(*a, update="saddle_point"),
    "gamescale_bundle": lambda *a: run_gamescale(*a, update="bundle"),
}


def _child(name, args, queue):
    try:
        out = RUNNERS[name](*args)
    except Exception as exc:  # reported in the table, not raised
        out = {"error": f"{type(exc).__name__}: {exc}"[:120]}
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    queue.put(out)


def in_subprocess(name, args, budget):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(name, args, queue))
    proc.start()
    proc.join(2 * budget + 2 * ORACLE_SECONDS + 30)  # the solver's budget, then measuring its payoff
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return {"error": f"no answer in {budget:.0f} s", "reached": False}
    return queue.get() if not queue.empty() else {"error": f"exit code {proc.exitcode}", "reached": False}


def side_by_side(sizes, budget, openspiel_lp_max):
    rows = []
    for family in ("weighted_voting", "induced_subgraph"):
        for n in sizes:
            game = make_game(family, n)
            start = time.perf_counter()
            lower, target, kind = best_known(game, budget)  # target: the best known value
            known_s = time.perf_counter() - start
            methods = ["gamescale_sampling_lp", "gamescale_bundle", "gamescale_saddle_point", "openspiel_lagrangian"]
            if n <= openspiel_lp_max:
                methods.insert(0, "openspiel_lp")
            results = {}
            if not math.isfinite(target):  # nothing proven: the best any solver certifies
                results["gamescale_sampling_lp"] = in_subprocess(
                    "gamescale_sampling_lp", (family, n, -1e9, budget), budget
                )
                target = results["gamescale_sampling_lp"].get("epsilon", math.nan)
            for m in methods:
                if m not in results:
                    results[m] = in_subprocess(m, (family, n, target, budget), budget)
                r = results[m]
                known = {
                    "best_known": target,
                    "best_known_lower": lower,
                    "best_known_kind": kind,
                    "exact": kind == "exact",
                    "best_known_s": known_s,
                }
                rows.append({"family": family, "n": n, **known, "solver": m, **r})
                print(
                    f"{family:17s} n={n:4d} best=[{lower:.6g}, {target:.6g}] {kind}  "
                    f"{m:24s} "
                    f"s={r.get('seconds', math.nan):8.2f} eps={r.get('epsilon', math.nan):10.5g} "
                    f"reached={r.get('reached')} peakMB={r.get('peak_mb', math.nan):7.0f} {r.get('error', '')}",
                    flush=True,
                )
    return rows


def evaluation_throughput(workers_list=(1, 2), rows_per_call=200_000):
    import ray

    from gamescale.algorithms.base import make_shard_tasks
    from gamescale.algorithms.coalitions.sampling import evaluate_shard, sample_coalitions
    from gamescale.envs.coalitions.game import pack
    from gamescale.framework.actors import RolloutPool

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    out = []
    try:
        for env, count in (
            ({"name": "mc_net", "num_players": 200, "seed": 0}, rows_per_call),
            ({"name": "xai_features"}, rows_per_call // 10),
        ):
            c = sample_coalitions(np.random.default_rng(0), 200 if env["name"] == "mc_net" else 10, count)
            chunks = np.array_split(pack(c), 8)
            for workers in workers_list:
                pool = RolloutPool(env, workers)
                try:
                    pool.map(evaluate_shard, make_shard_tasks(0, 0, 2, [chunks[0][:10]] * 2))  # warm up
                    start = time.perf_counter()
                    pool.map(evaluate_shard, make_shard_tasks(0, 1, 8, chunks))
                    rate = count / (time.perf_counter() - start)
                finally:
                    pool.shutdown()
                out.append({"game": env["name"], "workers": workers, "evaluations_per_s": rate})
                print(f"{env['name']:14s} workers={workers} evaluations/s={rate:12.0f}", flush=True)
    finally:
        ray.shutdown()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--sizes", type=str, default=None, help="comma-separated player counts")
    parser.add_argument("--no-throughput", action="store_true")
    args = parser.parse_args()
    sizes = [10, 15] if args.quick else [10, 15, 20, 25, 50, 100, 200]
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    budget = 30.0 if args.quick else args.budget
    rows = side_by_side(sizes, budget, openspiel_lp_max=16)
    throughput = [] if args.no_throughput else evaluation_throughput(rows_per_call=20_000 if args.quick else 200_000)
    from machine import write_results  # benchmarks/machine.py (its folder is on sys.path)

    data = {"quick": args.quick, "budget_s": budget, "least_core": rows, "throughput": throughput}
    print(f"wrote {write_results('coalitions', data)}")


if __name__ == "__main__":
    main()
