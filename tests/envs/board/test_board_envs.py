"""The four board games through `make_env`: PettingZoo's api_test, rewards, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo.test import api_test

from gamescale import make_env
from gamescale.envs.board import IllegalMoveError

ENVS = [
    ("connect_four", {}),
    ("hex", {"size": 5, "swap_rule": True}),
    ("hex", {}),
    ("chess", {}),
    ("chess960", {}),
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("name", "kwargs"), ENVS, ids=[f"{n}{k.get('size', '')}" for n, k in ENVS])
def test_api_test_passes(name, kwargs):
    env = make_env(name, **kwargs)
    api_test(env, num_cycles=200)


def _play(env, actions):
    for action in actions:
        env.step(action)


def test_connect_four_vertical_win_rewards_and_masks():
    env = make_env("connect_four")
    env.reset()
    _play(env, [3, 4, 3, 4, 3, 4])
    obs, _, _, _, _ = env.last()
    assert env.agent_selection == "player_0" and obs["action_mask"].tolist() == [1] * 7
    assert env.observe("player_1")["action_mask"].sum() == 0  # not its turn
    # Plane 0 is the observer's own stones: player_0 sees its three in column 3.
    assert obs["observation"][:, 3, 0].tolist() == [0, 0, 0, 1, 1, 1]
    env.step(3)
    assert env.winner() == 0 and all(env.terminations.values())
    assert env.rewards == {"player_0": 1.0, "player_1": -1.0}


def test_connect_four_full_board_is_a_draw():
    # Columns filled in pairs (0,1), (2,3), (4,5) then 6, shifting the pattern so no four lines up.
    env = make_env("connect_four")
    env.reset()
    order = []
    for pair in ((0, 1), (2, 3), (4, 5)):
        a, b = pair
        order += [a, b, a, b, a, b] + [b, a, b, a, b, a]
    order += [6] * 6
    _play(env, order)
    assert env.winner() == -1 and all(env.terminations.values())
    assert env.rewards == {"player_0": 0.0, "player_1": 0.0}


def test_illegal_moves_are_one_line_errors():
    env = make_env("connect_four")
    env.reset()
    _play(env, [0] * 6)
    with pytest.raises(IllegalMoveError, match=r"illegal move column 0 \(full\)") as err:
        env.step(0)
    assert "\n" not in str(err.value)
    with pytest.raises(IllegalMoveError, match="columns are 0..6"):
        env.step(7)
    hex_env = make_env("hex", size=5, swap_rule=True)
    hex_env.reset()
    hex_env.step(0)
    hex_env.step(1)
    with pytest.raises(IllegalMoveError, match="swap"):
        hex_env.step(25)
    with pytest.raises(IllegalMoveError, match="a1 \\(occupied\\)"):
        hex_env.step(0)


def test_hex_swap_moves_the_stone_to_the_mirrored_cell_of_white():
    env = make_env("hex", size=5, swap_rule=True)
    env.reset()
    env.step(1 * 5 + 3)  # black at (1, 3)
    env.step(25)  # white swaps
    assert env.board[3, 1] == 2 and np.count_nonzero(env.board) == 1
    assert env.agent_selection == "player_0" and env.observe("player_0")["action_mask"][25] == 0


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match="size"):
        make_env("hex", size=4)
    with pytest.raises(ValueError, match="0..959"):
        make_env("chess960", start_index=960)
    with pytest.raises(ValueError, match="malformed FEN"):
        make_env("chess", fen="not a fen")
