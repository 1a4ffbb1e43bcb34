"""A loss that turns non-finite ends the run with one line and keeps the last good checkpoint."""

from __future__ import annotations

import math

import pytest

import gamescale
from gamescale.algorithms.registry import AlgorithmConfig, register_algorithm
from gamescale.framework import storage
from gamescale.framework.errors import TrainingError


class DivergingConfig(AlgorithmConfig):
    name: str = "test_diverging"
    diverge_at: int = 5


class Diverging:
    """A gradient step on f(x) = x^2 / 2 with a step size that makes it blow up to NaN at
    `diverge_at` (inf - inf), standing in for a learner whose loss explodes."""

    def __init__(self, config: DivergingConfig, env) -> None:
        self.config = config

    def learner_specs(self):
        return {}

    def init(self, seed: int):
        return {"x": 1.0, "iteration": 0}

    def step(self, state, ctx):
        x = state["x"] * 0.5
        if state["iteration"] + 1 >= self.config.diverge_at:
            x = math.inf - math.inf
        return {"x": x, "iteration": state["iteration"] + 1}, {"loss": 0.5 * x * x}


register_algorithm("test_diverging", DivergingConfig, Diverging, "test only: a loss that turns NaN")


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    out = tmp_path / "nan"
    config = {
        "name": "diverging",
        "env": {"name": "crowd_modelling", "size": 4, "horizon": 3},
        "algorithm": {"name": "test_diverging", "diverge_at": 5},
        "run": {"iterations": 10, "checkpoint_every": 2},
    }
    with pytest.raises(TrainingError) as info:
        gamescale.run(config, out=out)
    message = str(info.value)
    assert "loss is nan at iteration 4" in message and "\n" not in message
    assert not (out / storage.SUMMARY_FILE).exists()
    state, _, meta = storage.load_checkpoint(storage.latest_checkpoint(out))
    assert meta["next_iteration"] == 4 and math.isfinite(state["x"])
    assert gamescale.load_run(out).metrics["iteration"].to_pylist() == [0, 1, 2, 3]
