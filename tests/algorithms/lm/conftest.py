"""What the sequence-model lab tests share: a driver that runs an algorithm's steps in
this process, and the resume check (a run cut in two, its state and learner bytes saved
and loaded as a checkpoint would be, repeats the uninterrupted run's metrics exactly)."""

from __future__ import annotations

import pytest

from gamescale.algorithms.base import LocalShardRunner, StepContext
from gamescale.algorithms.learner import TorchLearner
from gamescale.framework.storage import flatten_state, unflatten_state


def run_steps(algorithm, env, iterations, state=None, learners=None, start=0, num_shards=2, seed=0):
    """`iterations` steps from iteration `start` (from `init(seed)` when no state is given):
    (state, learners, metric rows)."""
    state = algorithm.init(seed) if state is None else state
    learners = learners or {name: TorchLearner(spec) for name, spec in algorithm.learner_specs().items()}
    runner = LocalShardRunner(env)
    rows = []
    for iteration in range(start, start + iterations):
        ctx = StepContext(iteration=iteration, seed=seed, shards=runner, num_shards=num_shards, learners=learners)
        state, metrics = algorithm.step(state, ctx)
        rows.append(metrics)
    return state, learners, rows


def check_resume_repeats(algorithm, env, total: int, split: int) -> None:
    """Run `total` steps straight; then `split` steps, a checkpoint round trip (state
    flattened as on disk, learners reloaded from their bytes into fresh ones), and the
    rest: the metric rows are identical."""
    _, _, straight = run_steps(algorithm, env, total)
    state, learners, first = run_steps(algorithm, env, split)
    saved_state = unflatten_state(flatten_state(state))
    blobs = {name: learner.save_bytes() for name, learner in learners.items()}
    fresh = {name: TorchLearner(spec) for name, spec in algorithm.learner_specs().items()}
    for name, learner in fresh.items():
        learner.load_bytes(blobs[name])
    _, _, rest = run_steps(algorithm, env, total - split, state=saved_state, learners=fresh, start=split)
    assert first + rest == straight


@pytest.fixture
def drive():
    """`run_steps`: drive an algorithm in this process."""
    return run_steps


@pytest.fixture
def resume_repeats():
    """`check_resume_repeats`: a resumed run repeats the uninterrupted one."""
    return check_resume_repeats
