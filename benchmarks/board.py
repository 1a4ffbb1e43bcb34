"""Board games side by side: random-playout steps per second for Connect Four and Hex 11x11
(PettingZoo classic, OpenSpiel's pyspiel, pgx on CPU, gamescale's AEC envs and batch
engines), UCT simulations per second against OpenSpiel's MCTSBot from the empty Connect
Four board (gamescale: `b` trees per call, `w` selections per tree per rollout call), and
MCTS games per second on 1 and 2 Ray rollout workers.

Every random playout picks uniformly among legal moves and restarts a finished game, so
"steps" are moves played. pgx runs jit-compiled and vmapped over the same batch as
gamescale's batch engine, `--pgx-unroll` steps per compiled call, with pgx's own
`auto_reset` restarting finished games (compilation is left out of the timing).
PettingZoo has no Hex.

The worker rows play `board-connect4-mcts`'s shard function (MCTS with 64 simulations
against the random bot, both colours) over 8 shards, on a local Ray with 1 and then 2
rollout workers; the pool is warmed up first, so actor start-up is left out.

    python benchmarks/board.py [--seconds 2] [--batch 4096] [--sims 400] [--quick]

Prints the tables and writes benchmarks/results/board.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
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


def pgx_steps(env_id: str, batch: int, seconds: float, unroll: int = 32, seed: int = 0) -> float:
    """Random playouts in pgx: `batch` games vmapped, `unroll` moves per jit-compiled call."""
    import jax
    import jax.numpy as jnp
    import pgx
    from pgx.experimental import auto_reset

    env = pgx.make(env_id)
    step = jax.vmap(auto_reset(env.step, env.init))

    def one_move(_, carry):
        state, key = carry
        key, act_key, reset_key = jax.random.split(key, 3)
        logits = jnp.where(state.legal_action_mask, 0.0, -jnp.inf)
        action = jax.random.categorical(act_key, logits, axis=-1)
        return step(state, action, jax.random.split(reset_key, batch)), key

    run = jax.jit(lambda state, key: jax.lax.fori_loop(0, unroll, one_move, (state, key)))
    key = jax.random.PRNGKey(seed)
    carry = (jax.jit(jax.vmap(env.init))(jax.random.split(key, batch)), key)
    jax.block_until_ready(run(*carry))  # compile outside the timing

    def one_call() -> int:
        nonlocal carry
        carry = run(*carry)
        jax.block_until_ready(carry)
        return batch * unroll

    return _rate(one_call, seconds)


def worker_games(workers: int, seconds: float, shards: int = 8, games_per_shard: int = 16) -> dict[str, float]:
    """MCTS (64 simulations) vs random games per second over `workers` rollout workers."""
    from gamescale.algorithms.base import make_shard_tasks
    from gamescale.algorithms.board.strength import play_shard
    from gamescale.framework.actors import RolloutPool

    shared = {"simulations": [64], "opponents": ["random"], "games_per_shard": games_per_shard, "parallel": 1,
              "solver_max_nodes": 0, "solver_min_plies": 0, "solver_fallback_simulations": 0, "iteration": 0}
    pool = RolloutPool({"name": "connect_four"}, workers)
    try:
        pool.map(play_shard, make_shard_tasks(0, 0, shards), shared)  # warm-up: actors built
        rounds, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or rounds == 0:
            rounds += 1
            pool.map(play_shard, make_shard_tasks(0, rounds, shards), shared)
        elapsed = time.perf_counter() - start
    finally:
        pool.shutdown()
    games = rounds * shards * games_per_shard
    return {"workers": workers, "games_per_s": games / elapsed, "seconds": elapsed, "games": games}


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
    parser.add_argument("--pgx-unroll", type=int, default=32, help="pgx moves per compiled call")
    parser.add_argument("--worker-seconds", type=float, default=20.0, help="time per rollout-worker measurement")
    parser.add_argument("--quick", action="store_true", help="0.5 s per measurement (5 s per worker row)")
    args = parser.parse_args()
    if args.quick:
        args.seconds = min(args.seconds, 0.5)
        args.worker_seconds = min(args.worker_seconds, 5.0)

    from gamescale import make_env
    from gamescale.envs.board import connect_four_vec, hex_vec

    # Ray first: its processes start before jax (pgx) is imported and threads are running
    from gamescale.framework.runtime import connect

    connect()  # the embedded local Ray, as `gamescale run` starts it
    workers = [worker_games(w, args.worker_seconds, games_per_shard=4 if args.quick else 16) for w in (1, 2)]

    has = {name: importlib.util.find_spec(name) is not None for name in ("pyspiel", "pgx", "pettingzoo")}
    steps: dict[str, dict[str, float | None]] = {"connect_four": {}, "hex11": {}}
    s = args.seconds
    if has["pettingzoo"]:
        from pettingzoo.classic import connect_four_v3

        steps["connect_four"]["pettingzoo"] = aec_steps(connect_four_v3.env, s)
    steps["hex11"]["pettingzoo"] = None
    steps["connect_four"]["openspiel"] = openspiel_steps("connect_four", s) if has["pyspiel"] else None
    steps["hex11"]["openspiel"] = openspiel_steps("hex", s, board_size=11) if has["pyspiel"] else None
    steps["connect_four"]["pgx"] = pgx_steps("connect_four", args.batch, s, args.pgx_unroll) if has["pgx"] else None
    steps["hex11"]["pgx"] = pgx_steps("hex", args.batch, s, args.pgx_unroll) if has["pgx"] else None
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
        "gamescale_b256": gamescale_mcts_sims(256, args.sims, s),
        "gamescale_b1024": gamescale_mcts_sims(1024, args.sims, s),
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
        ratio = "" if not mcts["openspiel_mctsbot"] or value is None else f"  ({value / mcts['openspiel_mctsbot']:.1f}x OpenSpiel)"
        print(f"{name:<20}{fmt(value):>12}{ratio}")
    print("\nMCTS (64 simulations) vs random, Connect Four games/s on Ray rollout workers")
    for row in workers:
        print(f"{row['workers']:>2d} worker(s) {row['games_per_s']:>10.1f} games/s  ({row['games']} games in {row['seconds']:.1f} s)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    from machine import describe_machine  # benchmarks/machine.py (its folder is on sys.path)

    RESULTS.write_text(json.dumps({
        "machine": describe_machine(), "args": vars(args),
        "peers_installed": has, "steps_per_s": steps, "mcts_sims_per_s": mcts, "rollout_workers": workers,
    }, indent=2))
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
