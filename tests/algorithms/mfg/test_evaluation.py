"""Evaluators: propagation, best response, policy value and exploitability."""

from __future__ import annotations

import numpy as np
import pytest

from gamescale.algorithms.mfg import (
    best_response,
    exploitability,
    exploitability_per_population,
    policy_value,
    propagate,
    uniform_policy,
)
from gamescale.envs.mfg import CrowdModelling1D, CrowdModelling2D, LinearQuadratic, MeanFieldGame, PredatorPrey
from gamescale.envs.mfg.game import MultiPopulationGame
from tests.conftest import require_peer


def random_policy(game, seed: int) -> np.ndarray:
    """A random policy `[T, S, A]` (`[P, T, S, A]` for a multi-population game) over legal actions."""
    rng = np.random.default_rng(seed)
    populations = (game.num_populations,) if isinstance(game, MultiPopulationGame) else ()
    logits = rng.normal(size=(*populations, game.horizon, game.num_states, game.num_actions)) * 3
    weights = np.exp(logits) * game.legal_actions[..., None, :, :]
    return weights / weights.sum(-1, keepdims=True)


def mu_independent_game(seed: int = 0) -> MeanFieldGame:
    """A random game whose reward ignores mu (an MDP), with a sparse random kernel."""
    rng = np.random.default_rng(seed)
    num_states, num_actions, k = 7, 3, 4
    next_state = rng.integers(0, num_states, size=(num_states, num_actions, k))
    prob = rng.dirichlet(np.ones(k), size=(num_states, num_actions))
    reward = rng.normal(size=(5, num_states, num_actions))
    return MeanFieldGame(
        num_states,
        num_actions,
        5,
        rng.dirichlet(np.ones(num_states)),
        kernel=(next_state, prob),
        reward_fn=lambda t, mu: reward[t],
    )


GAMES = [
    CrowdModelling1D(),
    CrowdModelling2D(size=6, horizon=5),
    LinearQuadratic(mean_revert=0.3),
    mu_independent_game(),
]


@pytest.mark.parametrize("game", GAMES, ids=lambda g: g.name)
def test_flow_of_random_policy_is_a_distribution(game):
    mu = propagate(game, random_policy(game, 1))
    assert mu.shape == (game.horizon + 1, game.num_states)
    assert (mu >= 0).all()
    np.testing.assert_allclose(mu.sum(-1), 1.0, atol=1e-12)


@pytest.mark.parametrize("game", GAMES, ids=lambda g: g.name)
def test_best_response_dominates_random_policies(game):
    mu = propagate(game, uniform_policy(game))
    br, br_value = best_response(game, mu)
    np.testing.assert_allclose(policy_value(game, br, mu), br_value, atol=1e-10)
    for seed in range(5):
        assert (br_value >= policy_value(game, random_policy(game, seed), mu) - 1e-10).all()


@pytest.mark.parametrize("game", GAMES, ids=lambda g: g.name)
def test_exploitability_is_non_negative(game):
    for seed in range(3):
        assert exploitability(game, random_policy(game, seed)) >= -1e-10


def test_best_response_has_zero_exploitability_when_reward_ignores_mu():
    game = mu_independent_game(3)
    br, _ = best_response(game, propagate(game, uniform_policy(game)))
    assert abs(exploitability(game, br)) < 1e-10


def openspiel_array_policy(os_game, policy: np.ndarray, size: int):
    """An OpenSpiel policy that plays `policy [P, T, S, A]` (gamescale's move order) at each
    predator-prey decision node."""
    from open_spiel.python import policy as policy_lib
    from open_spiel.python.mfg.games import predator_prey as os_pp

    from gamescale.envs.mfg.crowd import MOVES_2D_X, MOVES_2D_Y

    ours = {(int(dx), int(dy)): a for a, (dx, dy) in enumerate(zip(MOVES_2D_X, MOVES_2D_Y, strict=True))}
    to_ours = {a: ours[tuple(int(v) for v in move)] for a, move in os_pp.MFGPredatorPreyState._ACTION_TO_MOVE.items()}

    class ArrayPolicy(policy_lib.Policy):
        def action_probabilities(self, state, player_id=None):
            x, y = (int(v) for v in state.pos)
            probs = policy[state.population, state.t, x * size + y]
            return {a: float(probs[to_ours[a]]) for a in state.legal_actions()}

    return ArrayPolicy(os_game, list(range(os_game.num_players())))


def test_predator_prey_exploitability_matches_openspiel_nash_conv():
    """Three populations on OpenSpiel's 5x5 predator-prey (torus, no noise: the settings where
    the two games coincide), each population's deviation gain against OpenSpiel's."""
    require_peer("pyspiel")
    import pyspiel
    from open_spiel.python.mfg import value
    from open_spiel.python.mfg.algorithms import nash_conv, policy_value
    from open_spiel.python.mfg.games import predator_prey as os_pp

    size = 5
    params = dict(os_pp.THREE_POPULATIONS, geometry=os_pp.Geometry.TORUS, noise_probability=0.0)
    os_game = pyspiel.load_game("python_mfg_predator_prey", params)
    init = os_pp.DEFAULT_INIT_DISTRIB_THREE_POPULATIONS.reshape(3, size * size)
    # OpenSpiel numbers an initial cell x + size * y (`merged_to_pos`)
    cells = [[(int(s) % size, int(s) // size) for s in np.flatnonzero(row)] for row in init]
    game = PredatorPrey(size=size, horizon=params["horizon"], initial_cells=cells)
    policy = random_policy(game, 7)  # not uniform: a transposed grid or a wrong move order would show

    os_policy = openspiel_array_policy(os_game, policy, size)
    conv = nash_conv.NashConv(os_game, os_policy)
    on_policy = policy_value.PolicyValue(os_game, conv.distribution, os_policy, value.TabularValueFunction(os_game))
    roots = os_game.new_initial_states()
    theirs = np.array([br - on_policy.eval_state(root) for br, root in zip(conv.br_values(), roots, strict=True)])
    np.testing.assert_allclose(exploitability_per_population(game, policy), theirs, rtol=1e-9, atol=1e-9)
    assert exploitability(game, policy) == pytest.approx(conv.nash_conv(), rel=1e-9)
    assert theirs.min() > 0.1  # every population has something to gain: the comparison is not 0 == 0


def test_bad_policy_is_rejected():
    game = CrowdModelling1D()
    with pytest.raises(ValueError):
        propagate(game, np.full((10, 10, 3), 0.5))
    with pytest.raises(ValueError):
        propagate(game, np.ones((3, 10, 3)) / 3)
