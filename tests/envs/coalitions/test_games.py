"""The cooperative games: values against their definitions written as plain loops, the
coalition encodings, the exact weighted-voting oracle against enumeration, and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gamescale.envs.coalitions import (
    AirportGame,
    GloveGame,
    InducedSubgraphGame,
    MajorityGame,
    MCNet,
    WeightedVotingGame,
    all_coalitions,
    as_coalitions,
    pack,
    random_airport,
    random_induced_subgraph,
    random_mc_net,
    random_weighted_voting,
    to_bitmasks,
    unpack,
)
from gamescale.envs.registry import make_env
from tests.conftest import require_peer


def _rows(n):
    return [np.array(bits, bool) for bits in itertools.product([0, 1], repeat=n)]


def test_values_match_definitions():
    wvg = random_weighted_voting(7, seed=3, quota_fraction=0.55)
    isg = random_induced_subgraph(7, seed=3)
    net = random_mc_net(7, seed=3, max_negative=2)
    air = random_airport(7, seed=3)
    glove = GloveGame(3, 2)
    rows = np.array(_rows(7))
    expect = {
        "wvg": [float(sum(wvg.weights[s]) >= wvg.quota) for s in rows],
        "isg": [sum(isg.weights[i, j] for i in range(7) for j in range(i + 1, 7) if s[i] and s[j]) for s in rows],
        "net": [
            sum(
                val
                for p, q, val in zip(net.positive, net.negative, net.rule_values, strict=True)
                if np.all(s[p]) and not np.any(s[q])
            )
            for s in rows
        ],
        "air": [air.costs[s].sum() - air.costs[s].max() if s.any() else 0.0 for s in rows],
    }
    for name, game in (("wvg", wvg), ("isg", isg), ("net", net), ("air", air)):
        np.testing.assert_allclose(game.values(rows), expect[name], atol=1e-12, err_msg=name)
    rows5 = np.array(_rows(5))
    np.testing.assert_array_equal(glove.values(rows5), [min(s[:3].sum(), s[3:].sum()) for s in rows5])


def test_encodings_round_trip():
    n = 11
    rows = all_coalitions(n)
    masks = to_bitmasks(rows)
    np.testing.assert_array_equal(masks, np.arange(1 << n))
    np.testing.assert_array_equal(as_coalitions(masks, n), rows)
    np.testing.assert_array_equal(unpack(pack(rows), n), rows)
    game = random_mc_net(n, seed=1)
    np.testing.assert_array_equal(game.values(masks), game.values(rows))
    np.testing.assert_array_equal(game.values(rows.astype(np.int8)), game.values(rows))


def test_random_games_are_seeded():
    a, b, c = random_mc_net(9, seed=4), random_mc_net(9, seed=4), random_mc_net(9, seed=5)
    rows = all_coalitions(9)
    np.testing.assert_array_equal(a.values(rows), b.values(rows))
    assert not np.array_equal(a.values(rows), c.values(rows))
    big = random_weighted_voting(300, seed=0)
    assert big.num_players == 300 and big.has_exact_oracle


@pytest.mark.parametrize("seed", range(4))
def test_voting_oracle_is_exact(seed):
    rng = np.random.default_rng(seed)
    game = random_weighted_voting(10, seed=seed, max_weight=9, quota_fraction=rng.uniform(0.3, 0.9))
    x = rng.normal(size=10) * 0.2
    x += (1 - x.sum()) / 10
    rows = all_coalitions(10)[1:-1]
    ex = game.values(rows) - rows @ x
    found, found_ex = game.most_violated(x, k=3)
    assert found_ex[0] == pytest.approx(ex.max(), abs=1e-12)
    np.testing.assert_allclose(game.values(found) - found @ x, found_ex, atol=1e-12)
    sizes = found.sum(axis=1)
    assert np.all((sizes > 0) & (sizes < 10))
    assert np.all(np.diff(found_ex) <= 1e-12)


def test_make_env_builds_every_family():
    for name, n in (
        ("weighted_voting", 12),
        ("majority_game", 5),
        ("induced_subgraph", 12),
        ("mc_net", 12),
        ("glove_game", 3),
        ("airport_game", 6),
    ):
        game = make_env(name)
        assert game.num_players == n
        assert game.values(np.zeros((1, n), bool))[0] == 0.0
    game = make_env(
        "mc_net",
        num_players=3,
        rules=[{"positive": [0, 1], "value": 2.0}, {"positive": [2], "negative": [0], "value": 1.0}],
    )
    np.testing.assert_array_equal(game.values(np.array([[1, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1]])), [2, 1, 0, 2])


def test_xai_game_is_a_model_on_real_data():
    require_peer("sklearn")
    game = make_env("xai_features", dataset="diabetes", instance=3)
    assert game.num_players == 10
    full = game.values(np.ones((1, 10), bool))[0]
    pred = game.model.predict(game.instance[None])[0] - game.model.predict(game.baseline[None])[0]
    assert full == pytest.approx(pred)
    assert game.values(np.zeros((1, 10), bool))[0] == 0.0
    assert np.std(game.values(all_coalitions(10))) > 0


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: WeightedVotingGame([1, -2, 3], 2), "non-negative"),
        (lambda: WeightedVotingGame([1, 2, 3], 7), "quota 7"),
        (lambda: WeightedVotingGame([1, 2, 3], 0), "quota 0"),
        (lambda: WeightedVotingGame([5], 1), "at least two players"),
        (lambda: MajorityGame(1), "at least two players"),
        (lambda: MCNet.from_rules(3, [{"positive": [0, 5], "value": 1.0}]), "unknown player 5"),
        (lambda: InducedSubgraphGame.from_edges(3, [(0, 3, 1.0)]), "names player 3"),
        (lambda: AirportGame([1.0, -1.0]), "non-negative"),
        (lambda: random_weighted_voting(5).most_violated(np.zeros(4)), "payoff has shape"),
        (lambda: make_env("weighted_voting", num_players=1), "greater than or equal to 2"),
        (lambda: make_env("weighted_voting", weights=[1, 2], quota=5), "quota 5"),
    ],
)
def test_bad_input_is_one_line(build, message):
    with pytest.raises(ValueError) as info:
        build()
    assert message in str(info.value)
    assert "\n" not in str(info.value).strip() or "validation error" in str(info.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"env.weights": [1] * 13 + [-2]}, "non-negative"),
        ({"env.weights": [1] * 14, "env.quota": 15}, "quota 15"),
        ({"env.weights": [1, 2, 3]}, "num_players is 14 but 3"),
        ({"env.num_players": 1}, "num_players"),
    ],
)
def test_bad_input_through_the_config_layer_is_one_config_error_line(tmp_path, override, message):
    import gamescale
    from gamescale.framework.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        gamescale.run("coop-wvg-least-core", overrides=override, out=tmp_path / "run")
    assert message in str(info.value) and "\n" not in str(info.value)
