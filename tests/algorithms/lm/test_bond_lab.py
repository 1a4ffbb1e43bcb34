"""The BOND lab (gamescale/algorithms/lm/bond.py, reward.py, envs/bond): the reward model
learns the stated scoring rule, J-BOND beats the reference at bounded KL and matches
Best-of-N at lower inference cost, BOND-Jeffreys lands on its Best-of-N target, and a
resumed run repeats an uninterrupted one exactly. Driven in-process (no Ray)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import torch

from gamescale.algorithms.base import make_shard_tasks
from gamescale.algorithms.lm import bond
from gamescale.algorithms.registry import algorithm_config, build_algorithm
from gamescale.envs.registry import make_env
from gamescale.framework.pictures import draw_table

SMALL_RM = {"num_pairs": 1024, "num_eval_pairs": 512, "steps": 200}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the in-process learners too: tiny models only lose from threads
    yield
    torch.set_num_threads(threads)


def build(**overrides):
    env = make_env("bond_task")
    config = algorithm_config({"name": "bond", "reward_model": SMALL_RM, "eval_prompts": 256, **overrides})
    return build_algorithm(config, env), env


def test_reward_model_learns_the_scoring_rule():
    algorithm, env = build(methods=["jbond"], frontier_n=[1, 4, 16])
    state = algorithm.init(0)
    assert state["reward_model_accuracy"] > 0.8
    # Best-of-N selected by the learned reward raises the TRUE reward monotonically in N.
    true = state["frontier"]["true_reward"]
    assert np.all(np.diff(true) > 0), true
    np.testing.assert_allclose(state["frontier"]["kl"], [0.0, np.log(4) - 0.75, np.log(16) - 15 / 16])


def test_jbond_beats_reference_at_bounded_kl_and_matches_best_of_2_with_one_sample(drive, tmp_path):
    algorithm, env = build(methods=["jbond"], frontier_n=[1, 2, 4], batch_size=64)
    state, learners, rows = drive(algorithm, env, 30)
    final = bond.evaluate_policy(env, learners["jbond"].get_weights(), 1024, seed=5)
    reference = bond.evaluate_policy(env, bond._torch_weights(env.reference), 1024, seed=5)
    assert abs(reference["kl_from_reference"]) < 1e-4
    gain = final["reward"] - reference["reward"]
    assert gain > 4 * np.hypot(final["reward_se"], reference["reward_se"]), (final, reference)
    assert 0.0 < final["kl_from_reference"] < 3.0, final
    # One J-BOND sample is at least as good as the best of two reference samples.
    best_of_2 = state["frontier"]["true_reward"][1]
    assert final["reward"] >= best_of_2, (final, state["frontier"])
    assert all(np.isfinite(r["jbond.loss"]) for r in rows[1:])
    assert [r["jbond.lag"] for r in rows[1:3]] == [0.0, 1.0]  # trains on the previous batch
    # The report draws reward vs KL from the frontier table alone: training rows and the N points.
    frontier = algorithm.tables(state)["frontier"]
    best_of = frontier.filter(pc.equal(frontier["step"], -1))
    assert best_of["best_of_n"].to_pylist() == [1, 2, 4]
    assert best_of["reward"].to_pylist() == pytest.approx(state["frontier"]["true_reward"].tolist())
    assert draw_table("frontier", frontier, tmp_path) == [tmp_path / "reward_vs_kl.png"]


@pytest.mark.slow
def test_jbond_is_on_or_above_the_best_of_n_frontier_over_a_longer_run(drive):
    algorithm, env = build(methods=["jbond"], frontier_n=[1, 2, 4, 8, 16, 32, 64])
    frontier = None
    state, learners, compared = None, None, 0
    for chunk in range(4):
        state, learners, _ = drive(algorithm, env, 30, state=state, learners=learners, start=30 * chunk)
        frontier = state["frontier"]
        point = bond.evaluate_policy(env, learners["jbond"].get_weights(), 2048, seed=5 + chunk)
        if point["kl_from_reference"] <= frontier["kl"][-1]:
            # At equal KL J-BOND's reward is Best-of-N's or better (within 3 standard errors).
            at_same_kl = bond.best_of_n_at_kl(frontier, point["kl_from_reference"])
            assert point["reward"] >= at_same_kl - 3 * point["reward_se"], (chunk, point, at_same_kl)
            compared += 1
    assert compared >= 2, "J-BOND left the Best-of-N frontier's KL range too early to compare"
    # One J-BOND sample reaches the reward of Best-of-N with N >= 16 reference samples.
    matched = frontier["n"][frontier["true_reward"] <= point["reward"]]
    assert matched.max() >= 16, (point, frontier)


def test_bond_jeffreys_settles_near_its_best_of_n_target(drive):
    n = 4
    algorithm, env = build(methods=["bond_jeffreys"], n=n, frontier_n=[1, n], learning_rate=3e-4)
    state, learners, _ = drive(algorithm, env, 25)
    final = bond.evaluate_policy(env, learners["bond_jeffreys"].get_weights(), 1024, seed=5)
    # KL(pi_BoN || pi_ref) = log N - (N - 1) / N; the distilled policy sits near it,
    # and its reward near Best-of-N's, far above the reference's.
    assert final["kl_from_reference"] == pytest.approx(bond.best_of_n_kl_bound(n), abs=0.4)
    reference, best = state["frontier"]["true_reward"]
    assert abs(final["reward"] - best) < 0.4 * (best - reference), (final, state["frontier"])


def test_resumed_run_repeats_uninterrupted_losses(resume_repeats):
    algorithm, env = build(methods=["jbond", "reinforce_kl"], batch_size=16, frontier_n=[1])
    resume_repeats(algorithm, env, total=4, split=2)


def test_shards_do_not_depend_on_where_they_run():
    algorithm, env = build(methods=["bond_forward"], n=2, anchor_samples=3, frontier_n=[1])
    state = algorithm.init(0)
    shared = {
        "batch_size": 10,
        "methods": [("bond_forward", 3)],
        "policy": state["sampler"],
        "anchor": {"bond_forward": None},
    }
    tasks = make_shard_tasks(0, 0, 3)
    one = pa.Table.from_batches([bond.generate_shard(env, shared, t) for t in tasks])
    other_env = make_env("bond_task")
    two = pa.Table.from_batches([bond.generate_shard(other_env, shared, t) for t in reversed(tasks)][::-1])
    assert one.equals(two)
    assert one.num_rows == 10
    assert [len(x) for x in one.column("anchor_tokens").to_pylist()] == [3 * 8] * 10
    # Policy = reference at the start: its sampled log-probabilities are the reference's.
    np.testing.assert_allclose(one.column("policy_logprob").to_numpy(), one.column("ref_logprob").to_numpy(), atol=1e-4)


def test_true_reward_is_the_stated_rule():
    env = make_env("bond_task", vocab_size=4, completion_length=3, token_weight=2.0, ascending_weight=0.5)
    y = np.array([[0, 1, 2], [3, 0, 0]])
    v = env.token_values
    expected = [2.0 * v[[0, 1, 2]].mean() + 0.5 * 1.0, 2.0 * v[[3, 0, 0]].mean() + 0.5 * 0.5]
    np.testing.assert_allclose(env.true_reward(y), expected)
    with pytest.raises(ValueError, match="completions must be"):
        env.true_reward(np.zeros((2, 5), dtype=int))


def test_should_stop_at_the_target_reward():
    algorithm, _ = build(methods=["jbond"], target_reward=0.1)
    assert algorithm.should_stop({}, {"reward": 0.05}) is None
    stop = algorithm.should_stop({}, {"reward": 0.2})
    assert stop is not None and stop.reason == "target" and "jbond" in stop.message


def test_bad_configs_are_named():
    with pytest.raises(ValueError, match="unknown BOND method"):
        algorithm_config({"name": "bond", "methods": ["jbond", "ppo"]})
    with pytest.raises(ValueError, match="repeat"):
        algorithm_config({"name": "bond", "methods": ["jbond", "jbond"]})
    with pytest.raises(ValueError, match="not divisible"):
        make_env("bond_task", d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="bond_task"):
        bond.BondLab(algorithm_config({"name": "bond"}), object())


@pytest.mark.slow
def test_bond_jeffreys_experiment_beats_the_reference_at_moderate_kl(ray_cluster, tmp_path):
    import json

    import gamescale

    run = gamescale.run("bond-jeffreys", out=tmp_path / "bond-jeffreys")
    assert run.finished
    summary = json.loads((run.dir / "summary.json").read_text())
    final = summary["bond_jeffreys"]
    # Higher true reward than the reference policy, at a KL near Best-of-8's (1.2 nats).
    assert final["reward"] > summary["reference_reward"] + 0.2, summary
    assert 0.5 < final["kl_from_reference"] < 2.5, summary
    assert (run.dir / "plots" / "reward_vs_kl.png").is_file()
    assert (run.dir / "frontier.parquet").is_file()
