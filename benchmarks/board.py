"""Board games side by side: random-playout steps per second for Connect Four and Hex 11x11
(PettingZoo classic, OpenSpiel's pyspiel, gamescale's AEC envs and batch engines), and
UCT simulations per second against OpenSpiel's MCTSBot from the empty Connect Four board
(gamescale: `b` trees per call, `w` selections per tree per rollout call).

Every random playout picks uniformly among legal moves and restarts a finished game, so
"steps" are moves played. pgx is not installed here (no jax-based pgx wheel in the venv):
its column reads n/a. PettingZoo has no Hex. Rollout workers (1 and 2) are not measured yet.

    python benchmarks/board.py [--seconds 2] [--batch 4096] [--sims 400]

Prints the tables and writes benchmarks/results/board.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "board.json"


def _rate(run: Callable[[], int], seconds: float) -> float:
    """Units per second of `run()` (which returns the units it did), repeated for `seconds`."""
    run()  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += run()
    return done / (time.perf_counter() - start)


def aec_steps(make: Callable[[], object], seconds: float, seed: int = 0) -> float:
    """Random legal moves in a PettingZoo AEC env (mask from the observation), games restarted."""
    env = make()
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)

    def one_game() -> int:
        env.reset()
        steps = 0
        for _agent in env.agent_iter():
            obs, _, term, trunc, _ = env.last()
            if term or trunc:
                env.step(None)
                continue
            env.step(int(rng.choice(np.flatnonzero(obs["action_mask"]))))
            steps += 1
        return steps

    return _rate(one_game, seconds)


def openspiel_steps(name: str, seconds: float, seed: int = 0, **params) -> float:
    import pyspiel

    game = pyspiel.load_game(name, params) if params else pyspiel.load_game(name)
    rng = np.random.default_rng(seed)

    def one_game() -> int:
        state, steps = game.new_initial_state(), 0
        while not state.is_terminal():
            actions = state.legal_actions()
            state.apply_action(actions[rng.integers(len(actions))])
            steps += 1
        return steps

    return _rate(one_game, seconds)


def batch_steps(game, batch: int, seconds: float, seed: int = 0) -> float:
    """Random playouts of `batch` games at once; every move of every game counts."""
    rng = np.random.default_rng(seed)

    def one_batch() -> int:
        state = game.random_playout(game.init(batch), rng)
        return int(state.plies.sum())

    return _rate(one_batch, seconds)


def openspiel_mcts_sims(sims: int, seconds: float) -> float:
    import pyspiel
    from open_spiel.python.algorithms import mcts

    game = pyspiel.load_game("connect_four")
    bot = mcts.MCTSBot(game, 1.4, sims, mcts.RandomRolloutEvaluator(1, np.random.RandomState(0)),
                       random_state=np.random.RandomState(0), solve=True)

    def one_search() -> int:
        bot.mcts_search(game.new_initial_state())
        return sims

    return _rate(one_search, seconds)


def gamescale_mcts_sims(batch: int, sims: int, seconds: float, parallel: int = 1) -> float:
    from gamescale.algorithms.board.mcts import uct_search
    from gamescale.envs.board import connect_four_vec

    game = connect_four_vec.game()
    rng = np.random.default_rng(0)

    def one_search() -> int:
        uct_search(game, game.init(batch), sims, rng, parallel=parallel)
        return batch * sims

    return _rate(one_search, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--batch", type=int, default=4096, help="games per batch-engine call")
    parser.add_argument("--sims", type=int, default=400, help="simulations per MCTS search")
    args = parser.parse_args()

    from gamescale import make_env
    from gamescale.envs.board import connect_four_vec, hex_vec

    has = {name: importlib.util.find_spec(name) is not None for name in ("pyspiel", "pgx", "pettingzoo")}
    steps: dict[str, dict[str, float | None]] = {"connect_four": {}, "hex11": {}}
    s = args.seconds
    if has["pettingzoo"]:
        from pettingzoo.classic import connect_four_v3

        steps["connect_four"]["pettingzoo"] = aec_steps(connect_four_v3.env, s)
    steps["hex11"]["pettingzoo"] = None
    steps["connect_four"]["openspiel"] = openspiel_steps("connect_four", s) if has["pyspiel"] else None
    steps["hex11"]["openspiel"] = openspiel_steps("hex", s, board_size=11) if has["pyspiel"] else None
    steps["connect_four"]["pgx"] = steps["hex11"]["pgx"] = None  # not installed
    steps["connect_four"]["gamescale_aec"] = aec_steps(lambda: make_env("connect_four"), s)
    steps["hex11"]["gamescale_aec"] = aec_steps(lambda: make_env("hex", size=11), s)
    steps["connect_four"]["gamescale_batch"] = batch_steps(connect_four_vec.game(), args.batch, s)
    steps["hex11"]["gamescale_batch"] = batch_steps(hex_vec.game(11), args.batch, s)

    mcts = {
        "openspiel_mctsbot": openspiel_mcts_sims(args.sims, s) if has["pyspiel"] else None,
        "gamescale_b1": gamescale_mcts_sims(1, args.sims, s),
        "gamescale_b1_w16": gamescale_mcts_sims(1, args.sims, s, parallel=16),
        "gamescale_b64": gamescale_mcts_sims(64, args.sims, s),
        "gamescale_b64_w8": gamescale_mcts_sims(64, args.sims, s, parallel=8),
    }

    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:,.0f}"

    columns = ["pettingzoo", "openspiel", "pgx", "gamescale_aec", "gamescale_batch"]
    print(f"random-playout steps/s (batch engine: {args.batch} games per call)")
    print(f"{'game':<14}" + "".join(f"{c:>17}" for c in columns))
    for game, row in steps.items():
        print(f"{game:<14}" + "".join(f"{fmt(row.get(c)):>17}" for c in columns))
    print(f"\nUCT simulations/s from the empty Connect Four board ({args.sims} per search, random rollouts)")
    for name, value in mcts.items():
        print(f"{name:<20}{fmt(value):>12}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": platform.platform(), "python": platform.python_version(), "args": vars(args),
        "peers_installed": has, "steps_per_s": steps, "mcts_sims_per_s": mcts,
    }, indent=2))
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
