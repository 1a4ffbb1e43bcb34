"""Deep mean-field RL side by side with OpenSpiel's JAX implementations, at equal wall time.

For each game and method, OpenSpiel and gamescale run at the same time, each pinned to a
core of its own (OpenSpiel's XLA limited to one thread; gamescale with one rollout worker,
its whole Ray process tree on the other core), for `--budget` seconds of run time:

| game | OpenSpiel | gamescale |
| --- | --- | --- |
| crowd 10 x 10, horizon 10 | `mfg_crowd_modelling_2d` (size 10, horizon 10) | `mfg-deep-momd`, `mfg-deep-afp` |
| four rooms (13 x 13, horizon 40) | setting `crowd_modelling_2d_four_rooms` | `mfg-deep-momd-four-rooms`, `mfg-deep-afp-four-rooms` |

OpenSpiel runs its example scripts' settings (`mfg_munchausen_domd_jax.py`: 1000 episodes
per iteration, tau 10, alpha 0.99, lr 0.01, 128 x 128; `mfg_average_network_fp_jax.py`:
3000 DQN episodes and 2000 average-policy steps per iteration, softmax(logits / 10)),
and after each iteration its own `NashConv` of the current policy, as those scripts log.
gamescale runs the named experiments with `run.time_budget_s` (its exploitability is
exact and is checked equal to OpenSpiel's `nash_conv` on these games in the test suite).
The clock starts after set-up (OpenSpiel: game, envs and agents built; gamescale: Ray
and the learners started) and counts training and evaluation. The value "at the budget"
is the last one logged within it, or the first iteration's where even that took longer
(marked with its iteration count). Peak memory is summed over each side's process tree
(PSS, `benchmarks/footprint.py`). The OpenSpiel side needs `pip install -e ".[bench,bench-deep]"`
(OpenSpiel's JAX algorithms import haiku, rlax, chex, flax and orbax, which open-spiel
itself does not require); `make bench` installs both.

    python benchmarks/mfg_deep.py [--budget 300] [--only crowd-momd,four-rooms-afp,...] [--results NAME]

Prints the table and writes benchmarks/results/mfg_deep.json (or NAME.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CASES = {
    # name: (OpenSpiel game args, OpenSpiel method, gamescale experiment)
    "crowd-momd": ("crowd10", "momd", "mfg-deep-momd"),
    "crowd-afp": ("crowd10", "afp", "mfg-deep-afp"),
    "four-rooms-momd": ("four_rooms", "momd", "mfg-deep-momd-four-rooms"),
    "four-rooms-afp": ("four_rooms", "afp", "mfg-deep-afp-four-rooms"),
}
LABELS = {"crowd10": "crowd 10 x 10, horizon 10", "four_rooms": "four rooms 13 x 13, horizon 40"}


# --------------------------------------------------------------------------- OpenSpiel side


def _openspiel_game(name: str):
    import pyspiel
    from open_spiel.python.mfg.games import factory

    if name == "crowd10":
        return pyspiel.load_game("mfg_crowd_modelling_2d", {"size": 10, "horizon": 10})
    return factory.create_game_with_setting("mfg_crowd_modelling_2d", "crowd_modelling_2d_four_rooms")


def openspiel_worker(game_name: str, method: str, budget_s: float, out: Path) -> None:
    """Runs in its own process: OpenSpiel's deep method with its example settings until the
    budget is spent; writes one JSON line per iteration to `out`."""
    from open_spiel.python import policy as policy_std
    from open_spiel.python import rl_environment
    from open_spiel.python.jax import dqn
    from open_spiel.python.mfg.algorithms import (
        average_network_fictitious_play,
        distribution,
        munchausen_deep_mirror_descent,
        nash_conv,
    )
    from open_spiel.python.utils import training

    game = _openspiel_game(game_name)
    uniform = distribution.DistributionPolicy(game, policy_std.UniformRandomPolicy(game))
    envs = [rl_environment.Environment(game, mfg_distribution=uniform, mfg_population=p,
                                       observation_type=rl_environment.ObservationType.OBSERVATION)
            for p in range(game.num_players())]
    info_state_size = envs[0].observation_spec()["info_state"][0]
    num_actions = envs[0].action_spec()["num_actions"]
    if method == "momd":
        agents = [munchausen_deep_mirror_descent.MunchausenDQN(
            p, info_state_size, num_actions, batch_size=128, learn_every=64, learning_rate=0.01,
            hidden_layers_sizes=[128, 128], epsilon_start=0.1, epsilon_end=0.1, epsilon_decay_duration=100000,
            discount_factor=1.0, replay_buffer_capacity=40000, min_buffer_size_to_learn=1000,
            update_target_network_every=200, tau=10.0, alpha=0.99, with_munchausen=True, loss="mse",
            reset_replay_buffer_on_update=False,
            optimizer="adam", seed=42) for p in range(game.num_players())]
        solver = munchausen_deep_mirror_descent.DeepOnlineMirrorDescent(
            game, envs, agents, eval_every=200, num_episodes_per_iteration=1000)

        def iterate():
            solver.iteration()
            return solver.policy
    else:
        agents = [dqn.DQN(p, info_state_size, num_actions, batch_size=128, discount_factor=1.0,
                          epsilon_decay_duration=int(20e6), epsilon_start=0.1, epsilon_end=0.1,
                          gradient_clipping=40, hidden_layers_sizes=[128, 128], learn_every=40,
                          learning_rate=0.001, loss_str="mse", min_buffer_size_to_learn=200,
                          optimizer_str="adam", replay_buffer_capacity=5000, seed=42,
                          update_target_network_every=200) for p in range(game.num_players())]
        solver = average_network_fictitious_play.AverageNetworkFictitiousPlay(
            game, envs, agents, 100, 2000, eval_every=200, batch_size=128, hidden_layers_sizes=[128, 128],
            reservoir_buffer_capacity=100000000, learning_rate=0.01, min_buffer_size_to_learn=100,
            optimizer_str="sgd", gradient_clipping=100, seed=42, tau=10.0)

        def iterate():
            training.run_episodes(envs, agents, num_episodes=3000, is_evaluation=False)
            solver.iteration()
            return solver.policy

    start = time.perf_counter()
    with out.open("w") as log:
        iteration = 0
        while True:
            policy = iterate()
            trained = time.perf_counter()
            value = nash_conv.NashConv(game, policy).nash_conv()
            now = time.perf_counter()
            iteration += 1
            log.write(json.dumps({"iteration": iteration, "time_s": now - start, "train_s": trained - start,
                                  "exploitability": float(value)}) + "\n")
            log.flush()
            if now - start >= budget_s:
                return


# --------------------------------------------------------------------------- both sides


def _pinned(core: int | None, command: list[str]) -> list[str]:
    return command if core is None else ["taskset", "-c", str(core), *command]


def run_openspiel(game: str, method: str, budget_s: float, core: int | None, tmp: Path) -> dict:
    from footprint import measure_command

    log = tmp / f"openspiel-{game}-{method}.jsonl"
    env_threads = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    os.environ["XLA_FLAGS"] = env_threads  # inherited by the subprocess
    command = _pinned(core, [sys.executable, __file__, "--openspiel-worker", game, method, str(budget_s), str(log)])
    result = measure_command(command, interval_s=0.5)
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return {"footprint": result, "rows": rows}


def run_gamescale(experiment: str, budget_s: float, core: int | None, tmp: Path) -> dict:
    import pyarrow.parquet as pq
    from footprint import measure_command

    out = tmp / f"gamescale-{experiment}"
    command = _pinned(core, [
        sys.executable, "-m", "gamescale.framework.cli", "run", experiment, "--no-progress", "--out", str(out),
        "--workers", "1", "--set", "run.iterations=100000", "--set", f"run.time_budget_s={budget_s}",
        "--set", "run.checkpoint_every=100000",
    ])
    result = measure_command(command, interval_s=0.5)
    rows = []
    if result["returncode"] == 0:
        table = pq.read_table(sorted((out / "metrics").glob("*.parquet"))).to_pydict()
        keep = [k for k in ("iteration", "time_s", "exploitability", "br_regret") if k in table]
        rows = [dict(zip(keep, values, strict=True)) for values in zip(*(table[k] for k in keep), strict=True)]
    return {"footprint": result, "rows": rows}


def at_budget(rows: list[dict], budget_s: float) -> dict:
    """The last row logged within the budget (the first row if none was)."""
    if not rows:
        return {}
    within = [r for r in rows if r["time_s"] <= budget_s] or rows[:1]
    last = within[-1]
    times = [r["time_s"] for r in rows]
    # s/iteration over the whole run: the first iteration includes JIT / actor warm-up
    per_it = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else times[0]
    return {
        "exploitability": last["exploitability"],
        "iterations_within": sum(r["time_s"] <= budget_s for r in rows),
        "best_within": min(r["exploitability"] for r in within),
        "seconds_per_iteration": per_it,
        "first_iteration_s": times[0],
    }


def run_case(name: str, budget_s: float, tmp: Path) -> dict:
    game, method, experiment = CASES[name]
    cores = sorted(os.sched_getaffinity(0))
    peer_core, our_core = (cores[0], cores[1]) if len(cores) >= 2 else (None, None)
    results: dict[str, dict] = {}
    load = os.getloadavg()[0]
    threads = [
        threading.Thread(target=lambda: results.__setitem__("openspiel", run_openspiel(game, method, budget_s, peer_core, tmp))),
        threading.Thread(target=lambda: results.__setitem__("gamescale", run_gamescale(experiment, budget_s, our_core, tmp))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    row = {"case": name, "game": LABELS[game], "method": "D-MOMD" if method == "momd" else "D-AFP",
           "experiment": experiment, "load_before": round(load, 2)}
    for side in ("openspiel", "gamescale"):
        footprint = results[side]["footprint"]
        row[side] = {
            **at_budget(results[side]["rows"], budget_s),
            "peak_pss_gib": round(footprint.get("peak_pss_mib", 0.0) / 1024, 3),
            "returncode": footprint["returncode"],
            "stderr_tail": footprint.get("stderr_tail", ""),
            "rows": results[side]["rows"],
        }
    return row


def print_table(rows: list[dict], budget_s: float) -> None:
    print(f"\ndeep MFG side by side, {budget_s:g} s each, one core each (OpenSpiel / gamescale)")
    header = f"{'game':<32} {'method':<7} {'s/it OS':>9} {'s/it gs':>9} {'expl. OS (it)':>18} {'expl. gs (it)':>18} {'PSS GiB':>12}"
    print(header)
    print("-" * len(header))
    for r in rows:
        os_, gs = r["openspiel"], r["gamescale"]
        if os_["returncode"] or gs["returncode"]:
            print(f"{r['game']:<32} {r['method']:<7} failed: {os_['stderr_tail'][-200:]} {gs['stderr_tail'][-200:]}")
            continue
        print(
            f"{r['game']:<32} {r['method']:<7} {os_['seconds_per_iteration']:>9.2f} {gs['seconds_per_iteration']:>9.2f} "
            f"{os_['exploitability']:>12.4g} ({os_['iterations_within']:>3d}) {gs['exploitability']:>12.4g} "
            f"({gs['iterations_within']:>3d}) {os_['peak_pss_gib']:>5.2f}/{gs['peak_pss_gib']:<5.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300.0, help="seconds of run time per side")
    parser.add_argument("--only", default=",".join(CASES), help="comma-separated cases: " + ", ".join(CASES))
    parser.add_argument("--results", default="mfg_deep", help="results file name (benchmarks/results/NAME.json)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the results file's other cases (each case records when it ran)")
    parser.add_argument("--openspiel-worker", nargs=4, metavar=("GAME", "METHOD", "BUDGET", "LOG"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.openspiel_worker:
        game, method, budget, log = args.openspiel_worker
        openspiel_worker(game, method, float(budget), Path(log))
        return
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; known: {list(CASES)}")
    from machine import REPO, command_line, write_results

    path = REPO / "benchmarks" / "results" / f"{args.results}.json"
    kept: list[dict] = []
    if args.merge and path.is_file():
        earlier = json.loads(path.read_text())
        if earlier.get("budget_s") != args.budget:
            parser.error(f"--merge: {path} holds {earlier.get('budget_s')} s runs, not {args.budget:g} s")
        kept = [case for case in earlier["cases"] if case["case"] not in names]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="gamescale-mfg-deep-") as tmp:
        for name in names:
            started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            # the command is kept per case: a --merge file holds cases from several commands
            rows.append({**run_case(name, args.budget, Path(tmp)), "started": started, "command": command_line()})
            print_table(rows[-1:], args.budget)
            # written after every case, so a run stopped part-way keeps the cases it finished
            cases = sorted(kept + rows, key=lambda case: list(CASES).index(case["case"]))
            path = write_results(args.results, {"budget_s": args.budget, "cases": cases})
    print_table(rows, args.budget)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
