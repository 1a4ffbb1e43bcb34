"""The learner actor: trains from Arrow batches, serves weights, checkpoints as tensors."""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pytest
import torch

from gamescale.algorithms.base import LearnerSpec
from gamescale.algorithms.learner import TorchLearner


def linear_module(inputs: int) -> torch.nn.Module:
    return torch.nn.Linear(inputs, 1)


def regression_loss(module: torch.nn.Module, batch: pa.RecordBatch):
    x = torch.as_tensor(np.stack(batch.column("x").to_numpy(zero_copy_only=False)), dtype=torch.float32)
    y = torch.tensor(batch.column("y").to_numpy(), dtype=torch.float32)
    loss = torch.mean((module(x).squeeze(-1) - y) ** 2)
    return loss, {"mse": float(loss.detach())}


def regression_batch(rows: int = 256, seed: int = 0) -> pa.RecordBatch:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3
    return pa.RecordBatch.from_pydict({"x": list(x), "y": y})


SPEC = LearnerSpec(module_factory=functools.partial(linear_module, 3), loss_fn=regression_loss, learning_rate=0.05)


def expected_device() -> str:
    """The README's promise: the learner is on a GPU where the cluster has one, else on CPU."""
    import ray

    return "cuda" if ray.cluster_resources().get("GPU", 0) > 0 else "cpu"


def test_learner_is_on_the_gpu_when_the_cluster_has_one(ray_cluster):
    """Skipped, and reported as skipped, on a cluster without a GPU (the CPU case is asserted
    in the test below); on a GPU cluster the learner must train on cuda."""
    import ray

    from gamescale.framework.actors import RemoteLearner

    if ray.cluster_resources().get("GPU", 0) <= 0:
        pytest.skip("no GPU in the cluster: the learner-on-cuda check did not run")
    learner = RemoteLearner(SPEC, gpus="auto")
    try:
        assert learner.device == "cuda"
        result = learner.update(regression_batch(), num_steps=50, batch_size=64, seed=0)
        assert np.isfinite(result["loss"])
    finally:
        learner.shutdown()


def test_remote_learner_fits_serves_weights_and_restores(ray_cluster):
    from gamescale.framework.actors import RemoteLearner

    learner = RemoteLearner(SPEC, gpus="auto")
    try:
        assert learner.device == expected_device()
        batch = regression_batch()
        first = learner.update(batch, num_steps=1)
        last = learner.update(batch, num_steps=300, batch_size=64, seed=1)
        assert last["mse"] < 0.01 < first["mse"]
        weights = learner.get_weights()
        np.testing.assert_allclose(weights["weight"][0], [1.0, -2.0, 0.5], atol=0.05)
        snapshot = learner.save_bytes()
        after_a = learner.update(batch, num_steps=5, batch_size=32, seed=7)

        local = TorchLearner(SPEC)  # the same bytes restore into an in-process learner
        local.load_bytes(snapshot)
        after_b = local.update(batch, num_steps=5, batch_size=32, seed=7)
        assert after_a["loss"] == after_b["loss"]
        learner.set_weights({k: np.zeros_like(v) for k, v in weights.items()})
        assert all(not v.any() for v in learner.get_weights().values())
    finally:
        learner.shutdown()


def test_a_learner_gets_the_rollout_workers_per_replica_as_row_threads_at_most_its_cores(ray_cluster):
    """`runtime.learner_threads` auto = workers per learner replica; the actor caps the grant
    at its node's usable cores (its target tables run in that many row blocks)."""
    import ray

    from gamescale.algorithms.row_blocks import usable_cores
    from gamescale.framework.actors import start_learners
    from gamescale.framework.config import load_config
    from gamescale.framework.loop import _learner_threads

    assert _learner_threads(load_config("mfg-deep-momd", {"runtime.workers": 4}), 2) == 2
    assert _learner_threads(load_config("mfg-deep-momd", {"runtime.workers": 4}), 1) == 4
    assert _learner_threads(load_config("mfg-deep-momd", {"runtime.workers": 1}), 2) == 1
    assert _learner_threads(load_config("mfg-deep-momd", {"runtime.learner_threads": 3}), 1) == 3
    cores = usable_cores()
    for asked in (2, cores + 3):
        learner = start_learners({"q": SPEC}, gpus=0, threads=asked)["q"]
        try:
            assert ray.get(learner.actor.row_threads.remote()) == min(asked, cores)
        finally:
            learner.shutdown()


def test_checkpoint_bytes_load_with_weights_only():
    learner = TorchLearner(SPEC)
    learner.update(regression_batch(), num_steps=3)
    blob = learner.save_bytes()
    import io

    state = torch.load(io.BytesIO(blob), weights_only=True)  # data, never code
    assert set(state) == {"module", "optimizer", "num_updates"} and state["num_updates"] == 3


def mlp_module(inputs: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(inputs, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))


def sliced_spec(slices: int, optimizer: str = "adam") -> LearnerSpec:
    return LearnerSpec(
        module_factory=functools.partial(mlp_module, 3),
        loss_fn=regression_loss,
        learning_rate=0.01,
        optimizer=optimizer,
        seed=3,
        gradient_slices=slices,
    )


def deep_spec(slices: int) -> LearnerSpec:
    """A small deep mean-field `(t, s)` Q network trained through its hand-derived gradient."""
    from gamescale.algorithms.mfg import deep_networks

    legal = np.ones((12, 3), dtype=bool)
    legal[::3, 2] = False
    return LearnerSpec(
        functools.partial(deep_networks.make_network, 12, 5, 3, (16, 16), legal),
        deep_networks.regression_loss,
        0.01,
        seed=4,
        gradient_slices=slices,
        gradient_fn=deep_networks.regression_gradient,
        fused_adam=True,
    )


def crowd_batch(rows: int) -> pa.RecordBatch:
    rng = np.random.default_rng(8)
    return pa.RecordBatch.from_pydict(
        {
            "t": rng.integers(0, 5, rows).astype(np.int32),
            "state": rng.integers(0, 12, rows).astype(np.int32),
            "action": rng.integers(0, 2, rows).astype(np.int32),
            "target": rng.normal(size=rows).astype(np.float32),
        }
    )


def transitions(batch: pa.RecordBatch) -> pa.RecordBatch:
    """`crowd_batch` as transitions without targets: a reward and a next state per row."""
    state = batch.column("state").to_numpy()
    return pa.RecordBatch.from_pydict(
        {
            "t": batch.column("t"),
            "state": batch.column("state"),
            "action": batch.column("action"),
            "reward": (state % 3).astype(np.float64),
            "next_state": ((state + 1) % 12).astype(np.int32),
        }
    )


def chase_targets(weights: dict[str, np.ndarray], batch: pa.RecordBatch) -> np.ndarray:
    """A `fit` target from the weights: reward + the mean output at (t, next state), computed
    in numpy from the embedding sum and the head (the `deep_spec` network)."""
    t, s = batch.column("t").to_numpy(), batch.column("next_state").to_numpy()
    hidden = weights["time_embedding.weight"][t] + weights["state_embedding.weight"][s] + weights["bias"]
    for index in (1, 3):
        hidden = np.maximum(hidden, 0.0) @ weights[f"head.{index}.weight"].T + weights[f"head.{index}.bias"]
    return batch.column("reward").to_numpy() + 0.5 * hidden.mean(axis=1)


def test_fit_refreshes_the_target_from_the_weights_each_round_as_a_caller_would():
    """`fit` equals, bit for bit, the loop a caller writes with `get_weights` and `update`
    (targets recomputed before every round), moves the targets between rounds, and refuses a
    target of the wrong length."""
    batch = transitions(crowd_batch(300))
    inside, outside = TorchLearner(deep_spec(1)), TorchLearner(deep_spec(1))
    metrics = inside.fit(batch, chase_targets, [3, 4, 5], 12, 64)
    targets = []
    for seed in (3, 4, 5):
        targets.append(chase_targets(outside.get_weights(), batch).astype(np.float32))
        expected = outside.update(batch.append_column("target", pa.array(targets[-1])), 12, 64, seed)
    assert metrics == expected
    assert not np.array_equal(targets[0], targets[-1])  # the refresh saw the weights move
    for name, value in outside.get_weights().items():
        assert np.array_equal(inside.get_weights()[name], value)
    with pytest.raises(ValueError, match="target_fn gave 299 targets for a batch of 300 rows"):
        inside.fit(batch, lambda weights, rows: np.zeros(rows.num_rows - 1), [1], 1, 64)


def test_sliced_gradient_is_the_minibatch_gradient():
    """The row-weighted sum of slice gradients is the gradient of the minibatch mean loss,
    also for slices of unequal size (250 rows in 4 slices)."""
    batch = regression_batch(rows=250)
    whole, sliced = TorchLearner(sliced_spec(1, "sgd")), TorchLearner(sliced_spec(4, "sgd"))
    before = {k: v.copy() for k, v in whole.get_weights().items()}
    a = whole.update(batch, num_steps=1)
    b = sliced.update(batch, num_steps=1)
    assert a["mse"] == pytest.approx(b["mse"], rel=1e-5) and a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    wa, wb = whole.get_weights(), sliced.get_weights()
    for name in wa:
        step = wa[name] - before[name]
        assert np.abs(step).max() > 1e-4  # the step moved the weights, so the comparison means something
        np.testing.assert_allclose(wb[name] - before[name], step, rtol=1e-4, atol=1e-7)


def test_replica_split_must_be_even():
    from gamescale.algorithms.learner import ReplicaGroup

    with pytest.raises(ValueError, match="cannot split 3 gradient slices"):
        TorchLearner(sliced_spec(3), group=ReplicaGroup(0, 2))
    with pytest.raises(ValueError, match="gradient_slices must be a positive integer"):
        sliced_spec(0)


# the default set keeps the shared-memory gather these replicas use on one node; the gloo
# gather (replicas on several nodes) is the same fold of the same rows
@pytest.mark.parametrize("transport", ["auto", pytest.param("process_group", marks=pytest.mark.slow)])
def test_data_parallel_replicas_equal_one_process_bit_for_bit(ray_cluster, transport):
    """Two replica actors (a gloo group on 127.0.0.1) split 4 gradient slices; their weights
    after minibatch Adam steps equal, bit for bit, one in-process learner computing all 4
    slices; both replicas hold the same weights; restores and weight sets reach both. Both
    gradient transports: shared memory (the replicas share a node) and the gloo group.
    Learner "c" trains through a hand-derived `gradient_fn` that computes a replica's 2
    slices in one call, against the in-process learner's 4 in one call."""
    import ray

    from gamescale.framework.actors import start_learners

    spec, explicit = sliced_spec(4), deep_spec(4)
    learners = start_learners({"a": spec, "b": sliced_spec(2), "c": explicit}, gpus=0, replicas=2, transport=transport)
    try:
        local = TorchLearner(spec)
        batch = regression_batch(rows=512)
        for seed in range(3):
            remote = learners["a"].update(batch, num_steps=20, batch_size=128, seed=seed)
            here = local.update(batch, num_steps=20, batch_size=128, seed=seed)
            assert remote == here
        local_explicit, crowd = TorchLearner(explicit), crowd_batch(rows=512)
        for seed in range(2):
            remote = learners["c"].update(crowd, num_steps=20, batch_size=128, seed=seed)
            assert remote == local_explicit.update(crowd, num_steps=20, batch_size=128, seed=seed)
        # fitted rounds run in each replica, which refresh the targets from their own weights
        remote = learners["c"].fit(transitions(crowd), chase_targets, [5, 6, 7], 10, 128)
        assert remote == local_explicit.fit(transitions(crowd), chase_targets, [5, 6, 7], 10, 128)
        for name, value in local_explicit.get_weights().items():
            assert np.array_equal(learners["c"].get_weights()[name], value)
        replicas = learners["a"].replicas
        assert len({ray.get(r.pid.remote()) for r in replicas}) == 2

        # one node: "auto" gathered through shared memory, "process_group" over gloo
        def node_gathers(actor) -> list[bool]:
            return [gather is not None for gather in actor.learners["a"].group._node_gathers.values()]

        chosen = [ray.get(r.__ray_call__.remote(node_gathers)) for r in replicas]
        assert [set(c) for c in chosen] == [{transport == "auto"}] * 2  # a gather per block size ("a", "c")
        per_replica = [ray.get(r.get_weights.remote("a")) for r in replicas]
        for name, value in local.get_weights().items():
            for weights in per_replica:
                assert np.array_equal(weights[name], value)
        snapshot = local.save_bytes()
        local.update(batch, num_steps=3, batch_size=64, seed=9)
        learners["a"].load_bytes(snapshot)
        learners["a"].update(batch, num_steps=3, batch_size=64, seed=9)
        assert all(
            np.array_equal(ray.get(r.get_weights.remote("a"))[k], v)
            for r in replicas
            for k, v in local.get_weights().items()
        )
        zeros = {k: np.zeros_like(v) for k, v in local.get_weights().items()}
        learners["b"].set_weights(zeros)
        assert all(not v.any() for r in replicas for v in ray.get(r.get_weights.remote("b")).values())
    finally:
        for learner in learners.values():
            learner.shutdown()


@pytest.mark.slow  # 17 s: two full runs; the replica arithmetic itself is checked above in 5 s
def test_a_run_gives_the_same_rows_with_one_and_two_learner_replicas(ray_cluster, tmp_path):
    """`gamescale run` end to end: D-AFP with 2 gradient slices on 1 worker (auto: one replica)
    and on 2 workers (auto: two replicas) writes identical metric rows."""
    import pyarrow.parquet as pq

    from gamescale.framework.config import load_config
    from gamescale.framework.loop import _learner_replicas, start_run

    overrides = {
        "env.size": 6,
        "env.horizon": 5,
        "algorithm.hidden_sizes": [16, 16],
        "algorithm.num_particles": 200,
        "algorithm.br_particles": 100,
        "algorithm.q_rounds": 3,
        "algorithm.q_steps_per_round": 10,
        "algorithm.batch_size": 64,
        "algorithm.policy_steps": 10,
        "algorithm.policy_batch_size": 64,
        "algorithm.gradient_slices": 2,
        "run.iterations": 2,
    }
    rows = {}
    for workers in (1, 2):
        config = load_config("mfg-deep-afp", {**overrides, "runtime.workers": workers})
        specs = {"q": LearnerSpec(SPEC.module_factory, SPEC.loss_fn, gradient_slices=2)}
        assert _learner_replicas(config, specs) == workers
        run_dir = start_run(config, tmp_path / f"w{workers}", progress=False)
        table = pq.read_table(sorted((run_dir / "metrics").glob("*.parquet"))).to_pydict()
        rows[workers] = {k: v for k, v in table.items() if k != "time_s"}
    assert rows[1] == rows[2]
    assert len(rows[1]["exploitability"]) == 2


def linear_gradient(module: torch.nn.Module, columns: dict[str, torch.Tensor], num_slices: int):
    """`regression_loss`'s gradient by hand on `num_slices` equal slices at once (a pure
    function: no `.grad`, no autograd; every operation batched over the slice axis).
    `columns` are the learner's tensors: "x" (a list column) `[rows, 3]`, "y" `[rows]` float64."""
    x, y = columns["x"].float(), columns["y"].float()
    n = len(y) // num_slices
    x, y = x.view(num_slices, n, -1), y.view(num_slices, n)
    with torch.no_grad():
        error = torch.baddbmm(module.bias, x, module.weight.t().expand(num_slices, -1, -1))[..., 0] - y
        loss = (error**2).mean(1)
        d = 2.0 * error / n
        grads = {"weight": torch.bmm(d[:, None, :], x), "bias": d.sum(1, keepdim=True)}
    return [grads[name] for name, _ in module.named_parameters()], {"mse": loss, "loss": loss}


@pytest.mark.parametrize("slices", [1, 3, 7])
def test_a_gradient_fn_trains_as_autograd_does(slices):
    """A learner with a hand-derived `gradient_fn` follows the autograd learner of the same
    loss through Adam steps, whole or in slices (with replicas the slices are gathered alike);
    7 slices of a 240-row minibatch are unequal, so the learner calls them one by one."""
    batch = regression_batch(rows=600)
    fast = TorchLearner(
        LearnerSpec(
            functools.partial(linear_module, 3),
            regression_loss,
            0.01,
            seed=3,
            gradient_slices=slices,
            gradient_fn=linear_gradient,
        )
    )
    autograd = TorchLearner(LearnerSpec(functools.partial(linear_module, 3), regression_loss, 0.01, seed=3))
    before = {k: v.copy() for k, v in fast.get_weights().items()}
    for seed in range(3):
        mine = fast.update(batch, num_steps=15, batch_size=240, seed=seed)
        reference = autograd.update(batch, num_steps=15, batch_size=240, seed=seed)
        assert mine["mse"] == pytest.approx(reference["mse"], rel=1e-4)
        assert mine["loss"] == pytest.approx(reference["loss"], rel=1e-4)
    for name, value in fast.get_weights().items():
        assert np.abs(value - before[name]).max() > 1e-2  # training moved the weights
        np.testing.assert_allclose(value, autograd.get_weights()[name], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("slices", [1, 2])
def test_explicit_updates_do_not_depend_on_how_many_steps_are_converted_at_once(monkeypatch, slices):
    """The learner takes and converts the minibatches of many steps at once for a
    `gradient_fn`; chunks of 1, 3 or all 40 steps give bit-identical weights (the draws and
    the arithmetic are per step)."""
    from gamescale.algorithms import learner as learner_module

    batch = crowd_batch(300)
    weights = []
    for chunk_rows in (64, 3 * 64, learner_module.EXPLICIT_CHUNK_ROWS):
        monkeypatch.setattr(learner_module, "EXPLICIT_CHUNK_ROWS", chunk_rows)
        fast = TorchLearner(deep_spec(slices))
        fast.update(batch, num_steps=40, batch_size=64, seed=7)
        fast.update(batch, num_steps=2, seed=8)  # all rows every step: converted once
        weights.append(fast.get_weights())
    before = TorchLearner(deep_spec(slices)).get_weights()
    assert any(not np.array_equal(before[k], weights[0][k]) for k in before)  # the steps moved them
    for other in weights[1:]:
        assert all(np.array_equal(weights[0][k], other[k]) for k in weights[0])


def test_arrow_tensors_gives_index_columns_as_int64_and_refuses_ragged_lists():
    from gamescale.algorithms.learner import arrow_tensors

    batch = pa.RecordBatch.from_pydict(
        {
            "s": np.array([3, 1, 2], dtype=np.int32),
            "y": np.array([0.5, 1.5, 2.5], dtype=np.float32),
            "x": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
            "done": [True, False, True],
        }
    )
    columns = arrow_tensors(batch)
    assert columns["s"].dtype == torch.int64 and columns["s"].tolist() == [3, 1, 2]
    assert columns["y"].dtype == torch.float32
    assert columns["x"].shape == (3, 2) and columns["x"][2].tolist() == [5.0, 6.0]
    assert columns["done"].dtype == torch.bool
    ragged = pa.RecordBatch.from_pydict({"x": [[1.0], [2.0, 3.0]]})
    with pytest.raises(ValueError, match="column 'x' holds lists of several lengths"):
        arrow_tensors(ragged)


@pytest.mark.parametrize("slices", [1, 2])
def test_the_direct_fused_adam_step_is_torch_adams_step_and_survives_a_checkpoint(monkeypatch, slices):
    """The learner calls the fused Adam kernel itself after the first step (`_direct_adam`);
    its weights and optimizer state must equal those of `torch.optim.Adam(fused=True).step()`
    bit for bit, also across a save and load in the middle (the step counts, views of one
    tensor in the direct path, must save and load as counts)."""
    batch = crowd_batch(96)
    direct, plain = TorchLearner(deep_spec(slices)), TorchLearner(deep_spec(slices))
    monkeypatch.setattr(plain, "_direct_adam", lambda: None)  # always `optimizer.step()`
    for learner in (direct, plain):
        learner.update(batch, num_steps=7, batch_size=48, seed=1)
    assert direct._adam is not None, "the direct path did not run"
    restored = TorchLearner(deep_spec(slices))
    restored.load_bytes(direct.save_bytes())
    for learner in (restored, plain):
        learner.update(batch, num_steps=6, batch_size=48, seed=2)
    assert restored._adam is not None
    wr, wp = restored.get_weights(), plain.get_weights()
    assert all(np.array_equal(wr[name], wp[name]) for name in wp)
    sr, sp = restored.optimizer.state_dict()["state"], plain.optimizer.state_dict()["state"]
    for index, state in sp.items():
        assert float(sr[index]["step"]) == float(state["step"]) == 13.0
        assert torch.equal(sr[index]["exp_avg"], state["exp_avg"])
        assert torch.equal(sr[index]["exp_avg_sq"], state["exp_avg_sq"])
