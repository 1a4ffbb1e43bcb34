"""Every built-in experiment validates, and runs end to end for a couple of iterations
with the run-directory contract (metrics rows from 0, the issue's metric names)."""

from __future__ import annotations

import pytest

import gamescale
from gamescale.framework.config import experiment_files, load_config
from tests.conftest import require_stockfish

EXPERIMENTS = sorted(experiment_files())
# The metric each family promises every iteration (issue texts).
PROMISED = {
    "mfg-cce": "cce_gap",
    "mfg-ce": "ce_gap",
    "routing-static-ue": "relative_gap",
    "routing-n-vs-mean-field": "distance",
    "bond-jeffreys": "kl_from_reference",
    "bond-vs-bon": "reward",
    "distill-offline": "golden_distance",
    "distill-online": "golden_distance",
    "distill-diversity-sweep": "golden_distance",
    "coop-wvg-least-core": "max_violation",
    "coop-isg-least-core": "max_violation",
    "coop-mcnet-least-core": "max_violation",
    "coop-xai-core": "max_violation",
    "coop-scaling": "epsilon",
    "clinic-medqa-baseline": "accuracy",
    "clinic-model-eval": "accuracy",
    "board-connect4-mcts": "elo_mcts8",
    "board-hex-mcts": "elo_mcts8",
    "board-chess-gauntlet": "elo_stockfish-n1",
    "board-connect4-model": "elo_puct4",
    "music-cfg-distill": "diversity",
}
# Smaller data for the two-iteration runs where an experiment's set-up dominates them.
_BOND_QUICK = {
    "algorithm.reward_model.num_pairs": 256,
    "algorithm.reward_model.num_eval_pairs": 64,
    "algorithm.reward_model.steps": 20,
    "algorithm.eval_prompts": 16,
    "algorithm.frontier_n": [1, 2],
    "algorithm.batch_size": 8,
}
# Two iterations check the wiring of the deep mean-field experiments, not their learning.
_DEEP_QUICK = {"algorithm.num_particles": 200, "algorithm.q_rounds": 2, "algorithm.q_steps_per_round": 5,
               "algorithm.batch_size": 64}
_AFP_QUICK = {**_DEEP_QUICK, "algorithm.br_particles": 100, "algorithm.policy_steps": 5}
QUICK = {
    **{name: _AFP_QUICK if "-afp" in name else _DEEP_QUICK for name in EXPERIMENTS if name.startswith("mfg-deep-")},
    **{name: {"env.teacher_steps": 20} for name in ("distill-offline", "distill-online", "distill-diversity-sweep")},
    **{name: {"env.teacher_steps": 20, "algorithm.student_sft_steps": 2} for name in ("distill-offline", "distill-online")},
    # 10 features: 512 samples can hold every binding coalition, and the LP then stops
    # "converged" (proven by enumeration) after one iteration; fewer samples leave a second one
    "coop-xai-core": {"algorithm.samples": 16, "algorithm.climbers": 1},
    # one learner actor per method: fewer methods, fewer actor start-ups
    "bond-jeffreys": {**_BOND_QUICK, "algorithm.methods": ["bond_jeffreys"]},
    "bond-vs-bon": {**_BOND_QUICK, "algorithm.kl_coefs": [1.0]},
    # the solver plays only the last plies; few, cheap MCTS bots
    "board-connect4-mcts": {
        "algorithm.simulations": [8],
        "algorithm.solver_min_plies": 30,
        "algorithm.solver_fallback_simulations": 8,
        "runtime.shards": 2,
    },
    # two cheap bots per tournament, one game per colour
    "board-hex-mcts": {"env.size": 5, "algorithm.bots": ["random", "mcts8"], "algorithm.games_per_pair": 2,
                       "runtime.shards": 2},
    # one iteration of data and training (a tiny model, a few steps), one tournament round
    "board-connect4-model": {
        "algorithm.games_per_shard": 2, "algorithm.label_simulations": 8, "algorithm.train_steps": 2,
        "algorithm.eval_positions": 4, "algorithm.holdout_every": 2, "algorithm.train_iterations": 1,
        "algorithm.model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
        "algorithm.bots": ["random", "puct4"], "algorithm.games_per_pair": 2,
        "algorithm.max_new_tokens": 12, "runtime.shards": 2,
    },
    "board-chess-gauntlet": {"algorithm.bots": ["stockfish-n1"], "algorithm.opponents": ["stockfish-elo1350"],
                             "algorithm.games_per_pair": 2, "algorithm.stockfish_nodes": 200,
                             "algorithm.chess_max_plies": 40, "runtime.shards": 1},
}
# Experiments that need the Stockfish binary (skipped without it, except under CI=true).
NEEDS_STOCKFISH = {"board-chess-gauntlet"}


def test_names_are_file_names_and_configs_validate():
    assert len(EXPERIMENTS) >= 10
    for name in EXPERIMENTS:
        config = load_config(name)
        assert config.name == name and config.description


# Experiments whose family test already runs them end to end for two iterations.
RUN_BY_FAMILY_TEST = {"music-cfg-distill"}  # tests/algorithms/music/test_cfg_distill.py


@pytest.mark.parametrize("name", [name for name in EXPERIMENTS if name not in RUN_BY_FAMILY_TEST])
def test_experiment_runs_two_iterations(ray_cluster, tmp_path, name):
    if name in NEEDS_STOCKFISH:
        require_stockfish()
    overrides = {"run.iterations": 2, "run.checkpoint_every": 1, **QUICK.get(name, {})}
    run = gamescale.run(name, overrides=overrides, out=tmp_path / name)
    assert run.finished
    table = run.metrics
    assert table["iteration"].to_pylist() == [0, 1]
    metric = PROMISED.get(name, "exploitability")
    assert metric in table.column_names, table.column_names
    if name.startswith("routing-") and name not in PROMISED:
        assert "avg_travel_time" in table.column_names
    assert (run.dir / "plots").is_dir()
