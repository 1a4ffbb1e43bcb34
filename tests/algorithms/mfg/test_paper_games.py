"""The paper's named 2D crowd games (`maze: four_rooms`, `maze: maze`) are OpenSpiel's
`crowd_modelling_2d_four_rooms` / `crowd_modelling_2d_maze`: same walls, size, horizon,
start and reward, so exploitability agrees with OpenSpiel's `nash_conv` to 1e-9."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gamescale.algorithms.mfg import MirrorDescent, exploitability, uniform_policy
from gamescale.algorithms.mfg.config import MirrorDescentConfig
from gamescale.envs.mfg import MAZE_SETTINGS
from gamescale.envs.registry import make_env
from tests.conftest import require_peer

pyspiel = require_peer("pyspiel")  # skips without OpenSpiel; fails under CI=true
from open_spiel.python import policy as policy_lib  # noqa: E402
from open_spiel.python.mfg.algorithms import mirror_descent, nash_conv  # noqa: E402
from open_spiel.python.mfg.games import crowd_modelling_2d, factory  # noqa: E402

# OpenSpiel 2.0.2's nash_conv of the uniform policy on crowd_modelling_2d_maze (69 s of
# Python tree walks on a loaded 2-core machine, so the live check is slow-marked).
OPENSPIEL_MAZE_UNIFORM = 2019.5033302327174


def openspiel_game(maze: str):
    return factory.create_game_with_setting("mfg_crowd_modelling_2d", f"crowd_modelling_2d_{maze}")


def openspiel_omd_curve(maze: str, learning_rate: float, iterations: int) -> list[float]:
    game = openspiel_game(maze)
    solver = mirror_descent.MirrorDescent(game, lr=learning_rate)
    curve = []
    for _ in range(iterations):
        solver.iteration()
        curve.append(float(nash_conv.NashConv(game, solver.get_policy()).nash_conv()))
    return curve


def gamescale_omd_curve(maze: str, learning_rate: float, iterations: int) -> list[float]:
    game = make_env("crowd_modelling_2d", maze=maze)
    solver = MirrorDescent(MirrorDescentConfig(learning_rate=learning_rate), game)
    state, curve = solver.init(0), []
    for _ in range(iterations):
        state, metrics = solver.step(state)
        curve.append(metrics["exploitability"])
    return curve


@pytest.mark.parametrize("maze", ["four_rooms", "maze"])
def test_walls_are_openspiels(maze):
    """Our wall cells are exactly OpenSpiel's `x|y` forbidden-state string."""
    ours = "[" + ";".join(f"{x}|{y}" for x, y in sorted(MAZE_SETTINGS[maze].walls(), key=lambda c: (c[1], c[0]))) + "]"
    theirs = {"four_rooms": crowd_modelling_2d.FOUR_ROOMS, "maze": crowd_modelling_2d.MAZE}[maze]
    assert ours == theirs["forbidden_states"]
    game = make_env("crowd_modelling_2d", maze=maze)
    assert (game.size, game.horizon) == (int(theirs["size"]), int(theirs["horizon"]))
    assert game.initial_distribution[1 * game.size + 1] == 1.0


def test_four_rooms_uniform_policy_matches_openspiel():
    game = make_env("crowd_modelling_2d", maze="four_rooms")
    os_game = openspiel_game("four_rooms")
    theirs = nash_conv.NashConv(os_game, policy_lib.UniformRandomPolicy(os_game)).nash_conv()
    assert theirs == pytest.approx(167.6604464714278, abs=1e-9)  # the OpenSpiel value
    assert exploitability(game, uniform_policy(game)) == pytest.approx(theirs, abs=1e-9)


def test_four_rooms_omd_iterates_match_openspiel():
    theirs = openspiel_omd_curve("four_rooms", 0.1, 2)
    ours = gamescale_omd_curve("four_rooms", 0.1, 2)
    assert ours == pytest.approx(theirs, abs=1e-9)


def test_maze_uniform_policy_matches_openspiels_recorded_value():
    game = make_env("crowd_modelling_2d", maze="maze")
    assert exploitability(game, uniform_policy(game)) == pytest.approx(OPENSPIEL_MAZE_UNIFORM, abs=1e-9)


@pytest.mark.slow
def test_maze_uniform_policy_matches_openspiel_live():
    os_game = openspiel_game("maze")
    theirs = nash_conv.NashConv(os_game, policy_lib.UniformRandomPolicy(os_game)).nash_conv()
    assert theirs == pytest.approx(OPENSPIEL_MAZE_UNIFORM, abs=1e-9)


@pytest.mark.slow
@pytest.mark.timeout(3600)  # OpenSpiel's OMD walks the maze's tree in Python: > 10 min per iterate, loaded
def test_maze_first_omd_iterate_matches_openspiel_live():
    assert gamescale_omd_curve("maze", 0.1, 1) == pytest.approx(openspiel_omd_curve("maze", 0.1, 1), abs=1e-9)


def test_named_maze_settings_can_be_overridden_but_not_resized():
    game = make_env("crowd_modelling_2d", maze="four_rooms", horizon=5, initial_cells=[[2, 2], [3, 3]])
    assert game.horizon == 5 and game.initial_distribution.max() == 0.5
    with pytest.raises(ValidationError, match="13x13"):
        make_env("crowd_modelling_2d", maze="four_rooms", size=10)
    torus = make_env("crowd_modelling_2d", maze="torus_four_rooms", size=9)
    assert torus.size == 9 and torus.horizon == 10


@pytest.mark.parametrize("maze, slug", [("four_rooms", "four-rooms"), ("maze", "maze")])
def test_paper_game_experiments_load_and_name_the_game(maze, slug):
    from gamescale.framework.config import load_config

    for name in (f"mfg-{slug}-omd", f"mfg-deep-momd-{slug}", f"mfg-deep-afp-{slug}"):
        config = load_config(name)
        assert config.env.maze == maze and config.env.size == MAZE_SETTINGS[maze].size, name
