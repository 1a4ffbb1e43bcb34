"""Mean-field (coarse) correlated equilibria: gap definitions, learners, and the coop game
where the learned correlated equilibria beat every Nash equilibrium in welfare."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from scipy.optimize import brentq

import gamescale.algorithms.mfg.correlated as cor
import gamescale.envs.mfg.normal_form as nf
from gamescale.algorithms.base import LocalShardRunner, StepContext
from gamescale.algorithms.mfg.evaluation import exploitability, policy_value
from gamescale.algorithms.registry import algorithm_config, build_algorithm
from gamescale.envs.registry import env_config, make_env
from gamescale.framework.storage import load_checkpoint, save_checkpoint


def random_policies(game, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(count, game.horizon, game.num_states, game.num_actions)) * 2.0
    weights = np.exp(logits) * game.legal_actions
    return weights / weights.sum(axis=-1, keepdims=True)


def run(algorithm: dict, env_name: str, env_kwargs: dict, iterations: int):
    env = make_env(env_name, **env_kwargs)
    solver = build_algorithm(algorithm_config(algorithm), env)
    state = solver.init(0)
    rows = []
    for i in range(iterations):
        state, metrics = solver.step(state, StepContext(iteration=i, seed=0, shards=LocalShardRunner(env)))
        rows.append(metrics)
    return solver, state, rows


def coop_nash_equilibria() -> list[np.ndarray]:
    """Every Nash equilibrium `nu [3]` of `coop`, by support enumeration (closed forms).

    Pure profiles and supports {0, 1}, {1, 2} admit none. Support {0, 2} (y = 0, x = 1 - z):
    f_0 = f_2 <=> 4400 z^2 - 2290 z + 90 = 0. Full support: f_0 = f_2 is linear in x for
    fixed z, giving x(z); the roots of f_1 - f_2 along that curve are bracketed on a fine
    grid and refined with brentq. Each candidate is kept if it lies in the simplex and no
    action outside its support pays more.
    """
    candidates = []
    disc = np.sqrt(2290.0**2 - 4 * 4400.0 * 90.0)
    candidates += [np.array([1.0 - z, 0.0, z]) for z in ((2290.0 - disc) / 8800.0, (2290.0 + disc) / 8800.0)]

    def x_of(z):
        return (20 - 20 * z - 2200 * z * z / 9) / (30 - 2200 * z / 9)

    def residual(z):
        x = x_of(z)
        return 20 * (2 * x + z - 1) - 2380 * z - 2000 / 9 * (x - z) * z

    grid = np.linspace(1e-6, 1 - 1e-6, 20001)
    values = residual(grid)
    for k in np.where(np.sign(values[:-1]) != np.sign(values[1:]))[0]:
        if abs(30 - 2200 * grid[k] / 9) < 0.1:  # pole of x(z), not a root
            continue
        z = brentq(residual, grid[k], grid[k + 1])
        candidates.append(np.array([x_of(z), 1 - x_of(z) - z, z]))
    equilibria = []
    for nu in candidates:
        payoff = nf.coop_payoff(nu)
        if nu.min() >= -1e-12 and payoff.max() - nu @ payoff < 1e-8:
            equilibria.append(nu)
    return equilibria


def coop_best_nash_welfare() -> float:
    return max(float(nu @ nf.coop_payoff(nu)) for nu in coop_nash_equilibria())


def coop_nash_policy() -> np.ndarray:
    """Closed-form Nash of `coop` on the edge y = 0: f_0 = f_2 at x = 1 - z gives
    4400 z^2 - 2290 z + 90 = 0; the smaller root z ~ 0.0428 (f_1 is far lower there)."""
    z = (2290.0 - np.sqrt(2290.0**2 - 4 * 4400.0 * 90.0)) / 8800.0
    game = nf.MeanFieldNormalFormGame("coop")
    policy = np.tile(np.array([1.0 - z, 0.0, z]), (1, game.num_states, 1))
    return policy


# --------------------------------------------------------------------------- definitions


@pytest.mark.parametrize("identity", [True, False])
def test_gaps_nonnegative_and_cce_below_ce(identity):
    game = make_env("crowd_modelling")
    policies = random_policies(game, 4, seed=1)
    rng = np.random.default_rng(2)
    rho = rng.dirichlet(np.ones(4 if identity else 5))
    nus = None if identity else rng.dirichlet(np.ones(4), size=5)
    cce, ce = cor.cce_gap(game, policies, rho, nus), cor.ce_gap(game, policies, rho, nus)
    assert cce >= 0.0 and ce >= 0.0
    assert cce <= ce + 1e-12
    assert cce > 1e-3  # random policies are far from any equilibrium


def test_single_point_device_gaps_equal_exploitability():
    game = make_env("crowd_modelling")
    policy = random_policies(game, 1, seed=3)
    expected = exploitability(game, policy[0])
    assert cor.cce_gap(game, policy, np.ones(1)) == pytest.approx(expected, abs=1e-10)
    assert cor.ce_gap(game, policy, np.ones(1)) == pytest.approx(expected, abs=1e-10)


def test_ce_gap_of_single_policy_recommendations_is_mean_exploitability():
    game = make_env("crowd_modelling")
    policies = random_policies(game, 3, seed=4)
    rho = np.array([0.5, 0.3, 0.2])
    expected = sum(r * exploitability(game, pi) for r, pi in zip(rho, policies, strict=True))
    assert cor.ce_gap(game, policies, rho) == pytest.approx(expected, abs=1e-10)


def test_payoffs_and_joint_best_response_match_direct_formulas():
    game = nf.MeanFieldNormalFormGame("coop")
    policies = random_policies(game, 3, seed=5)
    nus = np.array([[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]])
    mus = cor.mean_fields(game, policies, nus)
    # in the static game, the mean field at T = 1 is the action distribution of the mixture
    actions = np.einsum("mn,na->ma", nus, policies[:, 0, 0])
    np.testing.assert_allclose(mus[:, 1, 1:], actions, atol=1e-12)
    payoffs = cor.payoff_matrix(game, policies, mus)
    direct = np.array([[policies[n, 0, 0] @ nf.coop_payoff(actions[m]) for n in range(3)] for m in range(2)])
    np.testing.assert_allclose(payoffs, direct, atol=1e-10)
    for m in range(2):  # engine reference
        assert payoffs[m, 1] == pytest.approx(policy_value(game, policies[1], mus[m])[0] @ game.initial_distribution)
    weights = np.array([0.7, 0.3])
    _, value = cor.joint_best_response(game, mus, weights)
    assert value == pytest.approx(max(weights @ np.stack([nf.coop_payoff(a) for a in actions])))


def test_coop_nash_enumeration():
    game = nf.MeanFieldNormalFormGame("coop")
    equilibria = coop_nash_equilibria()
    assert len(equilibria) == 3
    welfare = sorted(float(nu @ nf.coop_payoff(nu)) for nu in equilibria)
    np.testing.assert_allclose(welfare, [0.4335, 4.7488, 8.7016], atol=1e-3)
    for nu in equilibria:  # each is an exact Nash of the array game (engine's exploitability)
        assert exploitability(game, np.tile(nu, (1, game.num_states, 1))) < 1e-8


def test_closed_form_nash_is_a_ce_and_cce():
    game = nf.MeanFieldNormalFormGame("coop")
    nash = coop_nash_policy()
    assert exploitability(game, nash) < 1e-9
    assert cor.cce_gap(game, nash[None], np.ones(1)) < 1e-9
    assert cor.ce_gap(game, nash[None], np.ones(1)) < 1e-9


def test_fictitious_play_nash_gaps_match_its_exploitability():
    _, state, rows = run({"name": "fictitious_play"}, "crowd_modelling", {}, 200)
    game = make_env("crowd_modelling")
    policy = state["policy"][0]
    expl = exploitability(game, policy)
    assert expl < 0.05
    assert cor.cce_gap(game, policy[None], np.ones(1)) == pytest.approx(expl, abs=1e-10)
    assert cor.ce_gap(game, policy[None], np.ones(1)) == pytest.approx(expl, abs=1e-10)


def test_mu_dependent_kernel_is_refused():
    from gamescale.envs.mfg.game import MeanFieldGame

    kernel = (np.zeros((2, 2, 1), dtype=np.int64), np.ones((2, 2, 1)))
    game = MeanFieldGame(
        2,
        2,
        2,
        np.array([0.5, 0.5]),
        transition_fn=lambda t, mu: kernel,
        reward_fn=lambda t, mu: np.zeros((2, 2)),
        transition_depends_on_mu=True,
    )
    with pytest.raises(ValueError, match="depend on mu"):
        cor.cce_gap(game, random_policies(game, 2, 0), np.array([0.5, 0.5]))


# --------------------------------------------------------------------------- learners


def test_state_is_checkpointable_and_resumes_identically(tmp_path):
    """The state after 3 steps goes through a checkpoint file; a fresh solver continues from it."""
    solver, state, _ = run({"name": "mf_cce", "max_policies": 8, "max_outcomes": 8}, "crowd_modelling", {}, 3)
    for key, value in state.items():
        assert isinstance(value, (np.ndarray, int, float, dict)), key
    restored, _, _ = load_checkpoint(save_checkpoint(tmp_path, 3, state, {}, {}, keep=1))
    fresh, _, _ = run({"name": "mf_cce", "max_policies": 8, "max_outcomes": 8}, "crowd_modelling", {}, 0)
    a, ma = solver.step(state)
    b, mb = fresh.step(restored)
    assert ma == mb
    np.testing.assert_array_equal(a["policies"], b["policies"])


@pytest.mark.parametrize(("name", "gap", "bound"), [("mf_cce", "cce_gap", 0.1), ("mf_ce", "ce_gap", 0.15)])
def test_learned_gap_falls_below_bound_on_crowd_modelling(name, gap, bound):
    _, _, rows = run({"name": name, "max_policies": 41, "max_outcomes": 41}, "crowd_modelling", {}, 40)
    curve = [r[gap] for r in rows]
    assert curve[-1] < bound < curve[0]
    assert all(r["cce_gap"] <= r["ce_gap"] + 1e-9 for r in rows)
    assert all(r["cce_gap"] >= 0.0 for r in rows)


def test_full_population_is_an_error():
    with pytest.raises(ValueError, match="max_policies"):
        run({"name": "mf_cce", "max_policies": 3, "max_outcomes": 10}, "crowd_modelling", {}, 5)


def test_mf_cce_on_coop_beats_every_nash_in_welfare():
    nash_welfare = coop_best_nash_welfare()
    assert nash_welfare == pytest.approx(8.70, abs=0.01)  # Nash welfares ~8.70, ~4.75, ~0.43
    _, state, rows = run(
        {"name": "mf_cce", "pure_outcomes": True, "max_policies": 21, "max_outcomes": 50},
        "mean_field_nfg",
        {"reward_function": "coop"},
        20,
    )
    last = rows[-1]
    assert last["cce_gap"] < 1e-4
    assert last["welfare"] > nash_welfare + 1.0  # ~9.92
    # every outcome the device recommends is far from a Nash equilibrium ...
    assert last["min_outcome_exploitability"] > 1.0
    # ... and the device is a CCE but not a CE
    assert last["ce_gap"] > 1.0


def test_mf_ce_on_coop_beats_every_nash_in_welfare():
    nash_welfare = coop_best_nash_welfare()
    _, _, rows = run(
        {"name": "mf_ce", "pure_outcomes": True, "learning_rate": 0.1, "max_policies": 21, "max_outcomes": 50},
        "mean_field_nfg",
        {"reward_function": "coop"},
        20,
    )
    last = rows[-1]
    assert last["ce_gap"] < 1e-4 and last["cce_gap"] < 1e-4
    assert last["welfare"] > nash_welfare + 1.0  # ~9.97
    assert last["min_outcome_exploitability"] > 1.0


@pytest.mark.parametrize("name", ["mfg-cce", "mfg-ce"])
def test_experiment_spec_validates_and_runs(name):
    from importlib.resources import files

    spec = yaml.safe_load(files("gamescale.experiments").joinpath(f"{name}.yaml").read_text())
    env_cfg = env_config(spec["env"])
    algo = algorithm_config(spec["algorithm"])
    env = make_env(**env_cfg.model_dump())
    solver = build_algorithm(algo, env)
    state = solver.init(spec["run"]["seed"])
    for i in range(spec["run"]["iterations"]):
        state, metrics = solver.step(state, StepContext(iteration=i, seed=0, shards=LocalShardRunner(env)))
    gap = "cce_gap" if algo.name == "mf_cce" else "ce_gap"
    assert metrics[gap] < 1e-4
    assert metrics["welfare"] > coop_best_nash_welfare() + 1.0
