"""Mean-field game solvers side by side: OpenSpiel (python MFG), mfglib and gamescale.

Four sections, one table each, all in one run:

1. OpenSpiel side by side on OpenSpiel's 2D crowd modelling (default 20 x 20, horizon 20):
   K iterations of fictitious play (FP) and online mirror descent (OMD) per peer, each in a
   fresh subprocess with a time budget; seconds per iteration, exploitability after K
   (OpenSpiel's `nash_conv` for OpenSpiel, gamescale's exact evaluator otherwise: the two
   agree on this game) and the subprocess's peak resident memory. mfglib runs the same game
   translated to an mfglib `Environment` (below); its OMD is textbook OMD at OpenSpiel's
   learning rate 0.01, without OpenSpiel's lazy-evaluation quirk that gamescale replays.
2. mfglib on the same game: 2D crowd modelling with `action_cost="markov"` (the reward is a
   function of (t, s, a, mu_t) only) translated to mfglib's conventions; the translation is
   checked first (mfglib's own exploitability of the uniform and of a random policy equals
   gamescale's). Then mfglib and gamescale FP and OMD (same learning rate) for K iterations
   each: seconds per iteration, exploitability after K (gamescale's exact evaluator on each
   final policy; mfglib's own number alongside), and the wall time gamescale needs to reach
   the exploitability mfglib reached after K iterations.
3. Scaling: gamescale FP seconds per iteration from 10^2 to 10^6 states (cells x horizon).
4. Particle simulation throughput (agent-steps/s) with 1 and 2 Ray rollout workers
   (`benchmarks/runtime.py`'s `rollout_throughput`).
5. Deep runs (`gamescale run` in a subprocess): the peak memory summed over the run's whole
   process tree (driver, Ray's GCS, raylet and agents, rollout workers, learners; PSS and
   RSS, `benchmarks/footprint.py`) of the 10 x 10 crowd D-MOMD and D-AFP experiments, and
   seconds per iteration of the deep four-rooms experiments with 1 and 2 rollout workers
   and 1 and 2 gradient slices (with 2 slices and 2 workers the learners run as 2
   data-parallel replicas), the settings alternating with the load average recorded
   before each, as the first iteration (actor start-up) is left out of s/iteration.

mfglib conventions (checked in section 2): its `T` counts decisions like ours but adds a
final time t = T whose reward (our terminal reward, zero here) is collected after the last
move, so policies are `[T + 1, S, A]`; its reward and kernel take the state-action mean
field `L_t [S, A]` (marginalised to `mu_t = L_t.sum(-1)`), and its kernel is dense with the
destination first, `P_t [S', S, A]`. It runs in its default float32 (its float64 is ~10x
slower per FP iteration on this game) on one torch thread (`--mfglib-threads`; like
gamescale's numpy code, one core); the check is made in float64 and float32.

    python benchmarks/mfg.py [--quick] [--size 20] [--horizon 20] [--iterations 3]
                             [--mfglib-iterations 100] [--omd-lr 0.1] [--budget 240]
                             [--only-deep] [--deep-iterations 6] [--deep-repeats 2]

Prints the tables and writes benchmarks/results/mfg.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before any import of ray

RESULTS = Path(__file__).resolve().parent / "results" / "mfg.json"
OPENSPIEL_SPEED_UP_TARGET = 500.0
LOG_EPSILON = 1e-25  # gamescale.envs.mfg.crowd.LOG_EPSILON, inside the crowd-aversion log


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


# --------------------------------------------------------------------------- pure helpers


def dense_kernel(next_state: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """mfglib's dense kernel `P [S', S, A]` (destination first) from a sparse gamescale
    kernel `(next_state, prob)`, each `[S, A, K]`; duplicate successors are summed."""
    num_states, num_actions, _ = next_state.shape
    dense = np.zeros((num_states, num_states, num_actions))
    states = np.broadcast_to(np.arange(num_states)[:, None, None], next_state.shape)
    actions = np.broadcast_to(np.arange(num_actions)[None, :, None], next_state.shape)
    np.add.at(dense, (next_state, states, actions), prob)
    return dense


def crowd_reward_tables(game, seed: int = 0) -> np.ndarray:
    """`base [T + 1, S, A]` with `game.reward(t, mu) = base[t] - c * log(mu + 1e-25)[:, None]`
    for t < T (c = crowd-aversion coefficient) and `base[T]` = terminal reward (zero).

    Read off the game at the uniform distribution and verified at a random one; raises
    ValueError when the game's reward does not have this form (e.g. with congestion).
    """
    num_states, horizon = game.num_states, game.horizon
    coef = game.crowd_aversion_coef
    uniform = np.full(num_states, 1.0 / num_states)
    log_term = coef * np.log(uniform + LOG_EPSILON)[:, None]
    base = np.stack([np.asarray(game.reward(t, uniform)) + log_term for t in range(horizon)])
    mu = np.random.default_rng(seed).dirichlet(np.ones(num_states))
    for t in range(horizon):
        expected = base[t] - coef * np.log(mu + LOG_EPSILON)[:, None]
        if not np.allclose(game.reward(t, mu), expected, rtol=0.0, atol=1e-10):
            raise ValueError(f"{game!r}: reward at t={t} is not position/action terms minus c*log(mu)")
    if np.any(game.terminal_reward(mu) != 0.0):
        raise ValueError(f"{game!r}: a non-zero terminal reward is not translated")
    terminal = np.zeros((1, num_states, game.num_actions))
    return np.concatenate([base, terminal])


def seconds_to_reach(seconds: list[float], values: list[float], target: float) -> tuple[int, float] | None:
    """First `(iteration, cumulative seconds)` (1-based) with `values[i] <= target` (up to
    round-off), or None when never reached; `seconds[i]` is the cumulative time after i + 1."""
    bound = target + 1e-9 * max(1.0, abs(target))
    for i, value in enumerate(values):
        if value <= bound:
            return i + 1, seconds[i]
    return None


# --------------------------------------------------------------------------- games


def crowd_game(size: int, horizon: int, action_cost: str = "openspiel"):
    from gamescale.envs.mfg import CrowdModelling2D

    return CrowdModelling2D(size=size, horizon=horizon, action_cost=action_cost)


def mfglib_environment(game):
    """The gamescale crowd `game` as an `mfglib.env.Environment` (see module docstring)
    in torch's default dtype. Needs every action legal (mfglib has no action masks)."""
    import mfglib.alg  # noqa: F401  (mfglib.env -> mfglib.scoring import cycle needs it first)
    import torch
    from mfglib.env import Environment

    if not game.legal_actions.all():
        raise ValueError("mfglib has no illegal actions; use a game without forbidden cells")
    if game.transition_depends_on_mu:
        raise ValueError("only mu-independent kernels are translated")
    dtype = torch.get_default_dtype()
    horizon, coef = game.horizon, game.crowd_aversion_coef
    base = torch.tensor(crowd_reward_tables(game), dtype=dtype)  # [T + 1, S, A]
    kernel = torch.tensor(dense_kernel(*game.transition(0, game.initial_distribution)), dtype=dtype)

    def reward_fn(env, t: int, L_t: torch.Tensor) -> torch.Tensor:
        if t >= horizon:
            return base[horizon]
        mu_t = L_t.sum(dim=-1)  # [S]: L_t is the state-action mean field [S, A]
        return base[t] - coef * torch.log(mu_t + LOG_EPSILON)[:, None]

    def transition_fn(env, t: int, L_t: torch.Tensor) -> torch.Tensor:
        return kernel  # [S', S, A]

    r_max = float(base.abs().max()) + coef * abs(np.log(LOG_EPSILON))
    return Environment(
        T=horizon,
        S=(game.num_states,),
        A=(game.num_actions,),
        mu0=torch.tensor(game.initial_distribution, dtype=dtype),
        r_max=r_max,
        reward_fn=reward_fn,
        transition_fn=transition_fn,
    )


def from_mfglib_policy(pi, horizon: int) -> np.ndarray:
    """mfglib policy `[T + 1, S, A]` (any dtype) -> gamescale `[T, S, A]` float64, rows renormalised."""
    policy = pi[:horizon].double().numpy().clip(min=0.0)
    return policy / policy.sum(axis=-1, keepdims=True)


# --------------------------------------------------------------------------- peers (run in subprocesses)


def run_gamescale(
    algorithm: str,
    size: int,
    horizon: int,
    iterations: int,
    action_cost: str = "openspiel",
    learning_rate: float | None = None,
    target: float | None = None,
    max_iterations: int = 0,
) -> dict:
    """K iterations; with `target`, keep going (up to `max_iterations`) until the
    exploitability is <= target and report the time it took."""
    from gamescale.algorithms.mfg import FictitiousPlay, MirrorDescent
    from gamescale.algorithms.mfg.config import FictitiousPlayConfig, MirrorDescentConfig

    game = crowd_game(size, horizon, action_cost)
    if algorithm == "fp":
        solver = FictitiousPlay(FictitiousPlayConfig(), game)
    else:
        config = MirrorDescentConfig() if learning_rate is None else MirrorDescentConfig(learning_rate=learning_rate)
        solver = MirrorDescent(config, game)
    state = solver.init(0)
    seconds, values = [], []
    elapsed = 0.0
    for k in range(max(iterations, max_iterations if target is not None else 0)):
        start = time.perf_counter()
        state, metrics = solver.step(state)
        elapsed += time.perf_counter() - start
        seconds.append(elapsed)
        values.append(metrics["exploitability"])
        if k + 1 >= iterations and target is not None and seconds_to_reach(seconds, values, target):
            break
    result = {"seconds_per_iteration": seconds[iterations - 1] / iterations, "exploitability": values[iterations - 1]}
    if target is not None:
        reached = seconds_to_reach(seconds, values, target)
        result.update(
            target=target,
            iterations_run=len(values),
            iterations_to_target=None if reached is None else reached[0],
            seconds_to_target=None if reached is None else reached[1],
        )
    return result


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


def run_mfglib(
    algorithm: str,
    size: int,
    horizon: int,
    iterations: int,
    action_cost: str = "markov",
    learning_rate: float = 0.01,
    threads: int = 1,
) -> dict:
    """mfglib FP (weights 1 / (k + 1)) or OMD (`learning_rate`) on the translated game, in
    its default float32 with `threads` torch threads. Timing is mfglib's own (excludes scoring the initial policy; like
    gamescale's step, every iteration includes an exploitability evaluation)."""
    import torch
    from mfglib.alg import FictitiousPlay, OnlineMirrorDescent

    from gamescale.algorithms.mfg import exploitability

    torch.set_num_threads(threads)
    game = crowd_game(size, horizon, action_cost)
    env = mfglib_environment(game)
    solver = FictitiousPlay() if algorithm == "fp" else OnlineMirrorDescent(alpha=learning_rate)
    policies, values, runtimes = solver.solve(env, max_iter=iterations, atol=None, rtol=None)
    return {
        "seconds_per_iteration": runtimes[-1] / iterations,
        "seconds_total": runtimes[-1],
        "exploitability": exploitability(game, from_mfglib_policy(policies[-1], horizon)),
        "exploitability_mfglib": float(values[-1]),
    }


def check_translation(size: int, horizon: int, action_cost: str) -> dict:
    """mfglib's `exploitability_score` on the translated env vs gamescale's `exploitability`,
    for the uniform policy and a random one, in float64 and float32."""
    import mfglib.alg  # noqa: F401  (import cycle: before mfglib.scoring)
    import torch
    from mfglib.scoring import exploitability_score

    from gamescale.algorithms.mfg import exploitability, uniform_policy

    game = crowd_game(size, horizon, action_cost)
    random = np.random.default_rng(1).dirichlet(np.ones(game.num_actions), size=(horizon + 1, game.num_states))
    policies = {"uniform": np.concatenate([uniform_policy(game), uniform_policy(game)[:1]]), "random": random}
    result = {}
    for dtype in (torch.float64, torch.float32):
        torch.set_default_dtype(dtype)
        env = mfglib_environment(game)
        for name, policy in policies.items():
            ours = exploitability(game, policy[:horizon])
            theirs = exploitability_score(env, torch.tensor(policy, dtype=dtype))
            key = f"{name}_{str(dtype).removeprefix('torch.')}"
            result[key] = {"gamescale": ours, "mfglib": float(theirs), "difference": float(theirs) - ours}
    torch.set_default_dtype(torch.float32)
    return result


def run_throughput(workers: list[int], particles: int, size: int, horizon: int) -> dict:
    import ray
    from runtime import rollout_throughput  # benchmarks/runtime.py (its folder is on sys.path)

    from gamescale.framework.runtime import connect

    connect(None, num_cpus=os.cpu_count())
    try:
        rows = [
            {"workers": w, "agent_steps_per_s": rollout_throughput(w, particles, shards=8, size=size, horizon=horizon)}
            for w in workers
        ]
    finally:
        ray.shutdown()
    return {"rows": rows}


RUNNERS = {
    "gamescale": run_gamescale,
    "openspiel": run_openspiel,
    "mfglib": run_mfglib,
    "check": check_translation,
    "throughput": run_throughput,
}


def _child(queue, runner: str, kwargs: dict) -> None:
    try:
        result = RUNNERS[runner](**kwargs)
        result["peak_rss_mb"] = _peak_rss_mb()
        queue.put(result)
    except Exception as error:  # report, do not crash the benchmark
        queue.put({"error": f"{type(error).__name__}: {error}"})


def measure(runner: str, budget: float, **kwargs) -> dict:
    """Run one peer in a fresh process; 'did not finish' when it exceeds `budget` seconds."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(queue, runner, kwargs))
    process.start()
    deadline = time.monotonic() + budget
    result = None
    while result is None and time.monotonic() < deadline:  # read before join: big results block the pipe
        try:
            result = queue.get(timeout=min(1.0, max(deadline - time.monotonic(), 0.01)))
        except Exception:  # queue.Empty
            if not process.is_alive() and queue.empty():
                break
    if result is None:
        if process.is_alive():
            process.kill()
            process.join()
            return {"status": "did not finish", "budget_s": budget}
        return {"status": "failed"}
    process.join()
    result["status"] = "error" if "error" in result else "ok"
    return result


# --------------------------------------------------------------------------- sections


def _speed(peer: dict, ours: dict) -> float:
    if peer.get("status") != "ok" or ours.get("status") != "ok":
        return float("nan")
    return peer["seconds_per_iteration"] / ours["seconds_per_iteration"]


def openspiel_section(args) -> dict:
    rows = []
    for algorithm in ("fp", "omd"):
        for peer in ("openspiel", "mfglib", "gamescale"):
            kwargs = dict(algorithm=algorithm, size=args.size, horizon=args.horizon, iterations=args.iterations)
            if peer == "mfglib":
                kwargs.update(action_cost="openspiel", learning_rate=0.01, threads=args.mfglib_threads)
            rows.append({"peer": peer, "algorithm": algorithm, **measure(peer, args.budget, **kwargs)})
    by_key = {(r["peer"], r["algorithm"]): r for r in rows}
    print(
        f"\n[1] OpenSpiel's 2D crowd modelling {args.size}x{args.size}, horizon {args.horizon}, "
        f"{args.iterations} iterations (exploitability: OpenSpiel nash_conv / gamescale exact evaluator)"
    )
    print(f"{'peer':<10} {'alg':<4} {'s/iteration':>12} {'exploitability':>15} {'peak RSS MB':>12} {'gamescale x':>12}")
    for r in rows:
        if r["status"] != "ok":
            print(f"{r['peer']:<10} {r['algorithm']:<4} {r['status']:>12} {r.get('error', '')}")
            continue
        speed_up = _speed(r, by_key[("gamescale", r["algorithm"])])
        print(
            f"{r['peer']:<10} {r['algorithm']:<4} {r['seconds_per_iteration']:>12.5f} {r['exploitability']:>15.8f} "
            f"{r['peak_rss_mb']:>12.1f} {speed_up:>11.1f}x"
        )
    targets = {}
    for algorithm in ("fp", "omd"):
        speed_up = _speed(by_key[("openspiel", algorithm)], by_key[("gamescale", algorithm)])
        targets[algorithm] = {"speed_up": speed_up, "met": bool(speed_up >= OPENSPIEL_SPEED_UP_TARGET)}
        verdict = "met" if targets[algorithm]["met"] else "NOT met"
        print(f"target >= {OPENSPIEL_SPEED_UP_TARGET:.0f}x vs OpenSpiel ({algorithm}): {speed_up:.0f}x, {verdict}")
    return {"rows": rows, "openspiel_target": targets}


def mfglib_section(args) -> dict:
    size, horizon, k = args.size, args.horizon, args.mfglib_iterations
    check = measure("check", args.budget, size=size, horizon=horizon, action_cost="markov")
    print(f"\n[2] mfglib on the same game: 2D crowd modelling {size}x{size}, horizon {horizon}, action_cost=markov")
    if check["status"] != "ok":
        print(f"translation check: {check['status']} {check.get('error', '')}")
        worst64 = float("nan")
    else:
        worst64 = max(abs(check[f"{p}_float64"]["difference"]) for p in ("uniform", "random"))
        worst32 = max(abs(check[f"{p}_float32"]["difference"]) for p in ("uniform", "random"))
        u = check["uniform_float64"]
        print(
            f"translation check: uniform policy exploitability mfglib {u['mfglib']:.12f} vs gamescale "
            f"{u['gamescale']:.12f}; max |difference| (uniform, random policy) float64 {worst64:.2e}, "
            f"float32 {worst32:.2e} -> {'PASS' if worst64 <= 1e-6 else 'FAIL'} (tolerance 1e-6, float64)"
        )
    rows = []
    for algorithm in ("fp", "omd"):
        common = dict(algorithm=algorithm, size=size, horizon=horizon, iterations=k)
        theirs = measure(
            "mfglib",
            args.budget,
            action_cost="markov",
            learning_rate=args.omd_lr,
            threads=args.mfglib_threads,
            **common,
        )
        target = theirs.get("exploitability") if theirs["status"] == "ok" else None
        ours = measure(
            "gamescale",
            args.budget,
            action_cost="markov",
            learning_rate=args.omd_lr,
            target=target,
            max_iterations=args.cap_factor * k,
            **common,
        )
        rows += [
            {"peer": "mfglib", "algorithm": algorithm, **theirs},
            {"peer": "gamescale", "algorithm": algorithm, **ours},
        ]
    print(
        f"{k} iterations each; OMD learning rate {args.omd_lr} for both; exploitability by gamescale's exact evaluator"
    )
    print(
        f"{'peer':<10} {'alg':<4} {'s/iteration':>12} {'expl. after K':>14} {'mfglib own':>11} {'peak RSS MB':>12} "
        f"{'s to mfglib expl.':>18} {'speed-up @ equal expl.':>23}"
    )
    for r in rows:
        if r["status"] != "ok":
            print(f"{r['peer']:<10} {r['algorithm']:<4} {r['status']:>12} {r.get('error', '')}")
            continue
        own = f"{r['exploitability_mfglib']:>11.5f}" if "exploitability_mfglib" in r else f"{'':>11}"
        reach, gain = f"{'':>18}", ""
        if r["peer"] == "gamescale" and r.get("target") is not None:
            mfglib_row = next(x for x in rows if x["peer"] == "mfglib" and x["algorithm"] == r["algorithm"])
            if r["seconds_to_target"] is None:
                reach = f"{'never (' + str(r['iterations_run']) + ' it)':>18}"
            else:
                reach = f"{r['seconds_to_target']:>9.4f} ({r['iterations_to_target']:>3d} it)"
                r["speed_up_at_equal_exploitability"] = mfglib_row["seconds_total"] / r["seconds_to_target"]
                gain = f"{r['speed_up_at_equal_exploitability']:>22.1f}x"
        print(
            f"{r['peer']:<10} {r['algorithm']:<4} {r['seconds_per_iteration']:>12.5f} {r['exploitability']:>14.5f} "
            f"{own} {r['peak_rss_mb']:>12.1f} {reach} {gain}"
        )
    return {"translation_check": check, "translation_max_difference_float64": worst64, "rows": rows}


def scaling_section(sizes: list[tuple[int, int]], iterations: int) -> list[dict]:
    """gamescale FP seconds per iteration on grids of growing size x horizon (in process)."""
    print("\n[3] gamescale fictitious play, seconds per iteration (2D crowd, states = cells x horizon)")
    print(f"{'grid':>14} {'states':>10} {'s/iteration':>12}")
    rows = []
    for size, horizon in sizes:
        result = run_gamescale("fp", size, horizon, iterations)
        rows.append({"size": size, "horizon": horizon, "states": size * size * horizon, **result})
        grid = f"{size}x{size}x{horizon}"
        print(f"{grid:>14} {size * size * horizon:>10,d} {result['seconds_per_iteration']:>12.5f}")
    return rows


def throughput_section(args) -> dict:
    result = measure(
        "throughput", args.budget, workers=[1, 2], particles=args.particles, size=args.size, horizon=args.horizon
    )
    print(
        f"\n[4] particle simulation throughput, uniform policy, {args.particles:,d} particles, 8 shards, "
        f"{args.size}x{args.size}x{args.horizon} (Ray RolloutPool)"
    )
    if result["status"] != "ok":
        print(f"throughput: {result['status']} {result.get('error', '')}")
        return result
    print(f"{'workers':>8} {'agent-steps/s':>15}")
    for row in result["rows"]:
        print(f"{row['workers']:>8d} {row['agent_steps_per_s']:>15.3e}")
    return result


def deep_run(
    name: str, workers: int | None, iterations: int, out: Path, slices: int | None = None, memory: bool = True
) -> dict:
    """One `gamescale run NAME` in a subprocess under `footprint.measure_command`: peak summed
    PSS/RSS (with `memory`), CPU seconds, and seconds per iteration after the first (from
    the metrics). `slices` overrides the learners' gradient slices (None: the experiment's
    own). Timing runs pass `memory=False`: sampling memory every 0.2 s took 15% of a core."""
    import sys

    import pyarrow.parquet as pq
    from footprint import measure_command  # benchmarks/footprint.py (its folder is on sys.path)

    load = os.getloadavg()[0]
    command = [sys.executable, "-m", "gamescale.framework.cli", "run", name, "--no-progress", "--out", str(out)]
    command += ["--set", f"run.iterations={iterations}", "--set", f"run.checkpoint_every={iterations}"]
    if workers is not None:
        command += ["--workers", str(workers)]
    if slices is not None:
        command += ["--set", f"algorithm.gradient_slices={slices}"]
    result = measure_command(command, interval_s=0.2 if memory else 0.5, memory=memory)
    row = {
        "experiment": name,
        "workers": workers,
        "gradient_slices": slices,
        "load_before": round(load, 2),
        **{k: v for k, v in result.items() if k != "breakdown_at_peak"},
    }
    if result["returncode"] != 0:
        return {**row, "status": "error"}
    metrics = pq.read_table(sorted((out / "metrics").glob("*.parquet"))).to_pydict()
    times = metrics["time_s"]
    row.update(
        status="ok",
        first_iteration_s=round(times[0], 3),
        seconds_per_iteration=(times[-1] - times[0]) / max(len(times) - 1, 1),
        exploitability=metrics["exploitability"][-1],
    )
    return row


# (rollout workers, gradient slices K) of the four-rooms scaling runs: K = 1 is the plain
# learner (one process whatever the workers); K = 2 lets 2 workers' runs split every step
# between 2 learner replicas (runtime.learner_replicas: auto), with the same results as 1.
# The summary's headline is 1 vs 2 workers at the experiment's own K (D-MOMD: 1, D-AFP: 2).
DEEP_SCALING = ((1, 1), (2, 1), (1, 2), (2, 2))


def paired_speed_ups(rows: list[dict], name: str, slices: int) -> list[float]:
    """1-worker over 2-worker s/it of `name` at K = `slices`, per repeat (the two runs of a
    repeat are close in time, so slow drift of the machine cancels in their ratio)."""
    by_repeat: dict[int, dict[int, float]] = {}
    for r in rows:
        if (r["experiment"], r["gradient_slices"], r["status"]) == (name, slices, "ok"):
            by_repeat.setdefault(r["repeat"], {})[r["workers"]] = r["seconds_per_iteration"]
    return [runs[1] / runs[2] for _, runs in sorted(by_repeat.items()) if {1, 2} <= set(runs)]


def deep_section(args) -> dict:
    """Section 5: footprint of the 10 x 10 deep crowd runs; 1 vs 2 workers on four rooms."""
    import tempfile

    from gamescale.framework.config import load_config

    with tempfile.TemporaryDirectory(prefix="gamescale-deep-bench-") as tmp:
        footprint_rows = [
            deep_run(name, None, args.deep_iterations, Path(tmp) / f"fp-{name}")
            for name in ("mfg-deep-momd", "mfg-deep-afp")
        ]
        scaling_rows = []
        for repeat in range(args.deep_repeats):
            for name in ("mfg-deep-momd-four-rooms", "mfg-deep-afp-four-rooms"):
                iterations = args.deep_momd_iterations if name == "mfg-deep-momd-four-rooms" else args.deep_iterations
                for workers, slices in DEEP_SCALING:
                    out = Path(tmp) / f"sc-{name}-{workers}-{slices}-{repeat}"
                    row = deep_run(name, workers, iterations, out, slices, memory=False)
                    scaling_rows.append({"repeat": repeat, **row})
    print(
        f"\n[5] deep runs, {args.deep_iterations} iterations (D-MOMD scaling: {args.deep_momd_iterations}), "
        "memory summed over the run's processes (PSS, RSS)"
    )
    print(
        f"{'experiment':<26} {'peak PSS MiB':>12} {'peak RSS MiB':>12} {'processes':>9} {'torch procs':>11} {'s/it':>7}"
    )
    for r in footprint_rows:
        if r["status"] != "ok":
            print(f"{r['experiment']:<26} {r['status']} {r.get('stderr_tail', '')}")
            continue
        print(
            f"{r['experiment']:<26} {r['peak_pss_mib']:>12.0f} {r['peak_rss_mib']:>12.0f} {r['processes_at_peak']:>9d} "
            f"{r['torch_processes']:>11d} {r['seconds_per_iteration']:>7.2f}"
        )
    print(
        f"{'experiment':<26} {'workers':>7} {'slices':>6} {'repeat':>6} {'load before':>11} {'s/it (after 1st)':>17} "
        f"{'CPU s':>7} {'expl.':>10}"
    )
    for r in scaling_rows:
        head = f"{r['experiment']:<26} {r['workers']:>7d} {r['gradient_slices']:>6d} {r['repeat']:>6d}"
        if r["status"] != "ok":
            print(f"{head} {r['status']} {r.get('stderr_tail', '')}")
            continue
        print(
            f"{head} {r['load_before']:>11.2f} {r['seconds_per_iteration']:>17.2f} {r['cpu_s_total']:>7.1f} "
            f"{r['exploitability']:>10.4f}"
        )
    summary = {}
    for name in ("mfg-deep-momd-four-rooms", "mfg-deep-afp-four-rooms"):
        median = {
            setting: float(np.median(found))
            for setting in DEEP_SCALING
            if (found := [
                r["seconds_per_iteration"]
                for r in scaling_rows
                if (r["experiment"], r["workers"], r["gradient_slices"]) == (name, *setting) and r["status"] == "ok"
            ])
        }
        if len(median) < len(DEEP_SCALING):
            continue
        summary[name] = {f"s_per_it_{w}_workers_{k}_slices": v for (w, k), v in median.items()}
        best_one = min(v for (w, _), v in median.items() if w == 1)
        for slices in sorted({k for _, k in DEEP_SCALING}):
            if (1, slices) in median and (2, slices) in median:
                summary[name][f"speed_up_2_over_1_workers_{slices}_slices"] = median[(1, slices)] / median[(2, slices)]
                summary[name][f"speed_up_2_workers_{slices}_slices_over_best_1_worker"] = best_one / median[(2, slices)]
        print(f"{name}: median s/it " + ", ".join(f"{w} worker(s) K={k}: {v:.2f}" for (w, k), v in median.items()))
        own = int(load_config(name).algorithm.gradient_slices)
        headline = summary[name].get(f"speed_up_2_over_1_workers_{own}_slices")
        paired = paired_speed_ups(scaling_rows, name, own)
        summary[name].update(
            experiment_gradient_slices=own,
            speed_up_2_over_1_workers_as_configured=headline,
            speed_up_each_repeat_as_configured=paired,
            repeats_won_by_2_workers_as_configured=sum(ratio > 1.0 for ratio in paired),
        )
        if headline is not None:
            print(
                f"  as configured (K={own}): 2 workers {headline:.2f}x faster than 1 (medians); "
                f"per repeat {', '.join(f'{r:.2f}x' for r in paired)}"
            )
    return {"footprint": footprint_rows, "scaling": scaling_rows, "scaling_summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run of every section")
    parser.add_argument("--size", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=None, help="K of section 1 (default 3; quick 1)")
    parser.add_argument("--mfglib-iterations", type=int, default=None, help="K of section 2 (default 100; quick 10)")
    parser.add_argument("--omd-lr", type=float, default=0.1, help="OMD learning rate of section 2 (both peers)")
    parser.add_argument(
        "--mfglib-threads", type=int, default=1, help="torch threads for mfglib (2 is 4-8x slower on a busy 2-core box)"
    )
    parser.add_argument("--cap-factor", type=int, default=20, help="gamescale runs at most this x K to reach mfglib")
    parser.add_argument("--particles", type=int, default=None, help="section 4 (default 400,000; quick 50,000)")
    parser.add_argument("--budget", type=float, default=240.0, help="seconds per peer run")
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--only-deep", action="store_true", help="run section 5 only")
    parser.add_argument("--skip-deep", action="store_true")
    parser.add_argument("--deep-iterations", type=int, default=None, help="section 5 (default 6; quick 3)")
    parser.add_argument("--deep-repeats", type=int, default=None, help="section 5 alternations (default 2; quick 1)")
    parser.add_argument(
        "--deep-momd-iterations",
        type=int,
        default=None,
        help="section 5's D-MOMD scaling runs (default 24; quick 6): its iterations take about 0.6 s, and "
        "6 of them time too short a span on a machine whose speed wanders",
    )
    args = parser.parse_args()
    args.deep_iterations = args.deep_iterations or (3 if args.quick else 6)
    args.deep_repeats = args.deep_repeats or (1 if args.quick else 2)
    args.deep_momd_iterations = args.deep_momd_iterations or (6 if args.quick else 24)
    if args.only_deep:
        deep_only(args)
        return
    args.iterations = args.iterations or (1 if args.quick else 3)
    args.mfglib_iterations = args.mfglib_iterations or (10 if args.quick else 100)
    args.particles = args.particles or (50_000 if args.quick else 400_000)

    start = time.perf_counter()
    openspiel = openspiel_section(args)
    mfglib = mfglib_section(args)
    scaling_rows = []
    if not args.skip_scaling:
        sizes = [(5, 4), (10, 10), (22, 20), (46, 50)] + ([] if args.quick else [(100, 100)])
        scaling_rows = scaling_section(sizes, iterations=2)
    throughput = throughput_section(args)
    deep = {} if args.skip_deep else deep_section(args)
    total = time.perf_counter() - start
    print(f"\ntotal wall time {total:.0f} s on {mp.cpu_count()} CPUs")
    from machine import describe_machine  # benchmarks/machine.py (its folder is on sys.path)

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": describe_machine(),
                "config": vars(args),
                "wall_time_s": total,
                "openspiel_side_by_side": openspiel,
                "mfglib_same_game": mfglib,
                "scaling": scaling_rows,
                "particle_throughput": throughput,
                "deep": deep,
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS}")


def deep_only(args) -> None:
    """`--only-deep`: section 5 alone, written into the "deep" entry of the results file
    (the other sections' entries are kept)."""
    from machine import describe_machine  # benchmarks/machine.py (its folder is on sys.path)

    start = time.perf_counter()
    deep = deep_section(args)
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results["deep"] = {
        "machine": describe_machine(),
        "config": vars(args),
        "wall_time_s": time.perf_counter() - start,
        **deep,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"wrote the deep section into {RESULTS}")


if __name__ == "__main__":
    main()
