"""Deep MFG methods start near the uniform policy: on the paper's four-rooms game the
policy the first iteration plays (D-MOMD's softmax(q / tau), D-AFP's average policy) has
the uniform policy's exploitability to within 1% (a random network's policy does not)."""

from __future__ import annotations

import pytest
import torch

from gamescale.algorithms.base import LocalShardRunner, StepContext
from gamescale.algorithms.learner import TorchLearner
from gamescale.algorithms.mfg import deep
from gamescale.algorithms.mfg.evaluation import exploitability, uniform_policy
from gamescale.algorithms.registry import algorithm_config, build_algorithm
from gamescale.envs.registry import make_env


def starting_policy(algorithm, learners):
    if isinstance(algorithm, deep.DeepAverageFictitiousPlay):
        ctx = StepContext(iteration=0, seed=0, shards=LocalShardRunner(algorithm.game), learners=learners)
        return algorithm.average_policy(ctx)
    return algorithm.policy(algorithm.evaluate_network(learners["q"].get_weights()))


@pytest.mark.parametrize("name", ["deep_afp", "deep_momd"])
def test_deep_methods_start_within_one_percent_of_uniform_on_four_rooms(name):
    game = make_env("crowd_modelling_2d", maze="four_rooms")
    algorithm = build_algorithm(algorithm_config({"name": name, "hidden_sizes": [128, 128]}), game)
    learners = {key: TorchLearner(spec) for key, spec in algorithm.learner_specs().items()}
    uniform = exploitability(game, uniform_policy(game))
    assert exploitability(game, starting_policy(algorithm, learners)) == pytest.approx(uniform, rel=0.01)


def test_random_head_is_not_near_uniform():
    """The check above can fail: the same network with a random output layer starts far off."""
    game = make_env("crowd_modelling_2d", maze="four_rooms")
    torch.manual_seed(0)
    net = deep.make_network(game.num_states, game.horizon, 5, (128, 128), game.legal_actions, zero_head=False)
    table = deep.NetworkTable(game.horizon, game.num_states)({k: v.numpy() for k, v in net.state_dict().items()})
    uniform = exploitability(game, uniform_policy(game))
    policy = deep.masked_softmax(table / 2.0, game.legal_actions)
    assert abs(exploitability(game, policy) / uniform - 1) > 0.01
