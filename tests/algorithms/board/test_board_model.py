"""The Connect Four board model (algorithms/board/model_data, knowledge_model, model_bots,
model_experiment): labelled data shards that do not depend on the workers, inference on a
learner actor (also from a rollout worker) equal to in-process inference, the sequence
formats, model bots in tournaments, and (slow) a trained model's search beating random."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from gamescale.algorithms.base import Deferred, LearnerSpec, LocalShardRunner, StepContext, make_shard_tasks
from gamescale.algorithms.board import model_data
from gamescale.algorithms.board.config import BoardModelConfig, TournamentConfig
from gamescale.algorithms.board.model_bots import values_shard
from gamescale.algorithms.board.tournament import Tournament, UnknownBotError
from gamescale.envs.board import connect_four_vec
from gamescale.envs.board.text import connect_four_from_texts
from gamescale.envs.registry import make_env

TINY = {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "context_length": 160}
DATA = dict(games_per_shard=3, label_simulations=12, parallel=4, random_plies=4, solver_min_plies=24,
            solver_max_nodes=2000, holdout_every=3, candidates=3, line_depth=2)
MODEL = "gamescale.algorithms.board.knowledge_model"


def _spec(shape=TINY, lr=1e-3) -> LearnerSpec:
    return LearnerSpec(Deferred(f"{MODEL}:build_board_model", (shape,)), Deferred(f"{MODEL}:sequence_loss"), lr)


def _shards(runner, count: int = 2) -> list[pa.RecordBatch]:
    return runner.map(model_data.label_shard, make_shard_tasks(7, 0, count), shared={"config": DATA})


def test_labelled_positions_follow_the_rules_and_the_solver():
    from gamescale.algorithms.board.solver import ConnectFourSolver, Position

    table = pa.Table.from_batches(_shards(LocalShardRunner(None)))
    game = connect_four_vec.game()
    rows = table.to_pylist()
    states = connect_four_from_texts([r["state"] for r in rows])
    mask = game.legal_mask(states)
    assert [model_data.legal_text(m) for m in mask] == [r["legal"] for r in rows]
    for k, r in enumerate(rows[:40]):
        for a in np.flatnonzero(mask[k]):  # the next state of every legal move, by the rules
            after = game.step(connect_four_from_texts([r["state"]]), np.array([a]))
            from gamescale.envs.board.text import connect_four_texts

            assert connect_four_texts(after)[0] == r["next_states"][a]
        assert r["knowledge"].startswith(model_data.value_prompt(r["state"], mask[k]))
        assert model_data.parse_best(r["tree"]) == r["best"] and mask[k, r["best"]]
    solved = [r for r in rows if r["value_source"] == "solver"]
    assert solved and {r["split"] for r in rows} == {"train", "test"}
    for r in solved[:5]:  # weak solver values, checked again from scratch
        stones = connect_four_from_texts([r["state"]]).stones[0]
        player = r["ply"] % 2
        pos = Position(int(stones[player]), int(stones[0]) | int(stones[1]), r["ply"])
        expect = ConnectFourSolver(None).move_scores(pos, weak=True)
        assert [None if v is None else float(v) for v in expect] == r["values"]


def test_sequences_round_trip_their_fields():
    state = "......./......./......./......./......./...x... o"
    mask = np.array([1, 1, 1, 1, 1, 1, 0], bool)
    values = np.array([-1.0, -0.2, 0.0, 0.4, 1.0, 0.05, np.nan])
    text = model_data.knowledge_text(state, mask, values, 3, "next")
    assert text == f"{state} L:012345- V:0=a 1=e 2=f 3=h 4=k 5=f 6=- N:3>next"
    assert model_data.parse_legal(text[len(state) + 3:], 7).tolist() == mask.tolist()
    tree = model_data.tree_text(state, [(4, 1.0), (3, 0.4)], [(2, -1.0)], 4)
    assert tree == f"{state} T:4=k>2=a 3=h best:4" and model_data.parse_best(tree) == 4
    assert model_data.parse_best("garbage") is None


@pytest.fixture(scope="module")
def two_workers(ray_cluster):
    from gamescale.framework.actors import RolloutPool

    pool = RolloutPool({"name": "connect_four"}, 2)
    yield pool
    pool.shutdown()


def test_data_shards_on_two_workers_equal_one_process(two_workers):
    """Two shards of labelled games: the same table in one process and on 2 workers."""
    local, remote = _shards(LocalShardRunner(None)), _shards(two_workers)
    assert [b.equals(a) for a, b in zip(local, remote, strict=True)] == [True, True]


def test_inference_on_a_learner_actor_equals_in_process(two_workers):
    """The model's inference on the learner actor, called from the driver and from a
    rollout worker through the picklable client, equals the in-process learner's."""
    from gamescale.algorithms.learner import TorchLearner
    from gamescale.framework.actors import RemoteLearner

    spec = _spec()
    here = TorchLearner(spec)
    there = RemoteLearner(spec, gpus=0)
    try:
        there.set_weights(here.get_weights())
        states = connect_four_vec.from_moves([[], [3], [3, 3, 2], [0, 1, 2, 3, 4, 5, 6, 0]] * 4)
        legal = connect_four_vec.legal_mask(states)
        inputs = {"states": np.array([list(t.encode()) for t in _texts(states)], np.uint8), "legal": legal}
        a, b = here.client().infer("move_values", **inputs), there.client().infer("move_values", **inputs)
        np.testing.assert_allclose(a["values"], b["values"], atol=1e-5)
        np.testing.assert_array_equal(a["buckets"], b["buckets"])
        prompts = np.array([[256, *t.encode()] for t in _texts(states)], np.int64)
        np.testing.assert_array_equal(here.infer("generate", {"prompts": prompts, "max_new_tokens": np.int64(5)}),
                                      there.infer("generate", {"prompts": prompts, "max_new_tokens": np.int64(5)}))
        batch = two_workers.map(values_shard, make_shard_tasks(0, 0, 1),
                                shared={"client": there.client(), "texts": _texts(states)})[0]
        np.testing.assert_allclose(np.array(batch["values"].to_pylist()), a["values"], atol=1e-5)
        with pytest.raises(ValueError, match="no inference method"):
            here.infer("_secret", {})
    finally:
        there.shutdown()


def _texts(states) -> list[str]:
    from gamescale.envs.board.text import connect_four_texts

    return connect_four_texts(states)


def test_model_bots_need_the_model_and_connect_four():
    for name in ("policy", "puct16", "internal"):
        with pytest.raises(UnknownBotError, match="trained board model") as err:
            Tournament(make_env("connect_four"), TournamentConfig(bots=["random", name]))
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="unknown bot name 'puct0'"):
        from gamescale.algorithms.board.model_experiment import BoardModelAlgorithm

        BoardModelAlgorithm(make_env("connect_four"), BoardModelConfig(bots=["random", "puct0"]))
    with pytest.raises(ValueError, match="connect_four"):
        BoardModelAlgorithm(make_env("hex", size=5), BoardModelConfig())


def _train(steps: int, games: int, shape: dict, seed: int = 0):
    """A board model trained in-process on `games` labelled games per shard (2 shards)."""
    import torch

    from gamescale.algorithms.board.model_experiment import BoardModelAlgorithm
    from gamescale.algorithms.learner import TorchLearner
    from gamescale.algorithms.lm.model import torch_threads

    cfg = BoardModelConfig(**{**DATA, "games_per_shard": games, "label_simulations": 64, "solver_min_plies": 20},
                           model=shape, train_steps=steps, eval_positions=60, learning_rate=2e-3,
                           bots=["random", "puct16"], train_iterations=1)
    env = make_env("connect_four")
    algo = BoardModelAlgorithm(env, cfg)
    with torch_threads(1):
        torch.manual_seed(seed)
        learners = {"model": TorchLearner(algo.learner_specs()["model"])}
        ctx = StepContext(iteration=0, seed=seed, shards=LocalShardRunner(env), num_shards=2, learners=learners)
        state, metrics = algo.step(algo.init(seed), ctx)
    return algo, state, metrics, learners


@pytest.mark.slow
def test_trained_model_search_beats_random_and_knows_the_rules():
    from gamescale.algorithms.board.bots import RandomBot, play_games
    from gamescale.algorithms.board.model_bots import PUCTBot
    from gamescale.algorithms.lm.model import torch_threads

    _, _, metrics, learners = _train(steps=300, games=16, shape={**TINY, "d_model": 64, "n_layers": 2, "d_ff": 128})
    assert metrics["legal_precision"] > 0.8 and metrics["legal_recall"] > 0.8, metrics
    assert metrics["internal_legal_rate"] > 0.8, metrics
    game, client = connect_four_vec.game(), learners["model"].client()
    with torch_threads(1):
        first = play_games(game, PUCTBot(client, 32, parallel=4), RandomBot(), 10, np.random.default_rng(1))
        second = play_games(game, RandomBot(), PUCTBot(client, 32, parallel=4), 10, np.random.default_rng(2))
    wins = int((first == 0).sum() + (second == 1).sum())
    assert wins >= 18, (first, second)


def test_board_model_algorithm_in_one_process():
    """Two iterations in one process: data and training, then a round in which the greedy
    policy and internal search play through the in-process learner's client; the tables
    agree with the metrics."""
    import torch

    from gamescale.algorithms.board.model_experiment import ACCURACIES, BoardModelAlgorithm
    from gamescale.algorithms.learner import TorchLearner
    from gamescale.algorithms.lm.model import torch_threads

    cfg = BoardModelConfig(**{**DATA, "games_per_shard": 2, "holdout_every": 2, "label_simulations": 4}, model=TINY,
                           train_steps=2,
                           eval_positions=4, train_iterations=1, bots=["random", "policy", "internal"],
                           games_per_pair=2, max_new_tokens=12)
    env = make_env("connect_four")
    algo = BoardModelAlgorithm(env, cfg)
    with torch_threads(1):
        torch.manual_seed(0)
        learners = {"model": TorchLearner(algo.learner_specs()["model"])}
        state = algo.init(0)
        rows = []
        for it in range(2):
            ctx = StepContext(iteration=it, seed=0, shards=LocalShardRunner(env), num_shards=2, learners=learners)
            state, metrics = algo.step(state, ctx)
            rows.append(metrics)
    assert set(ACCURACIES) <= set(rows[0]) and 0 <= rows[0]["legal_precision"] <= 1
    assert "elo_internal" not in rows[0] and rows[1]["games"] == 6
    tables = algo.tables(state)
    assert tables["data"].num_rows == rows[1]["data_positions"]
    games = tables["games"]
    assert sorted(games["game"].to_pylist()) == list(range(6))
    assert sum(games["model_fallbacks"].to_pylist()) == rows[1]["internal_fallbacks"]
    assert set(tables["elo"]["player"].to_pylist()) == {"random", "policy", "internal"}
