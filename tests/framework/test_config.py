"""Config validation: every kind of mistake is one line naming the file and the field,
exit code 2 from the CLI, and no run directory left behind."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gamescale.framework.cli import app
from gamescale.framework.config import load_config
from gamescale.framework.errors import ConfigError

runner = CliRunner()


def write(tmp_path, text, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = """
name: tiny
env: {name: crowd_modelling, size: 6, horizon: 4}
algorithm: {name: sampled_fictitious_play, num_particles: 100}
run: {iterations: 2}
"""


def test_builtin_and_file_configs_validate(tmp_path):
    config = load_config("mfg-crowd-sampled-fp", {"env.size": 12, "run.iterations": 3})
    assert config.env.size == 12 and config.run.iterations == 3
    assert load_config(write(tmp_path, GOOD)).algorithm.num_particles == 100


@pytest.mark.parametrize(
    ("text", "overrides", "needle"),
    [
        (GOOD.replace("size: 6", "sise: 6"), None, "env.sise: unknown field"),
        (GOOD.replace("size: 6", "size: six"), None, "env.size: Input should be a valid integer"),
        (
            GOOD.replace("iterations: 2", "iterations: 0"),
            None,
            "run.iterations: Input should be greater than or equal to 1",
        ),
        (GOOD + "extra_section: 1\n", None, "extra_section: unknown field"),
        (GOOD.replace("crowd_modelling", "crowd_modeling"), None, "env.name: unknown environment 'crowd_modeling'"),
        (GOOD.replace("sampled_fictitious_play", "sampled_fp"), None, "algorithm.name: unknown algorithm 'sampled_fp'"),
        (GOOD, {"runtime.workers": 0}, "runtime.workers: Input should be greater than or equal to 1"),
        (GOOD, {"algorithm.num_particels": 5}, "algorithm.num_particels: unknown field"),
        ("name: [unclosed\n", None, "is not valid YAML"),
        ("- a list\n", None, "expected a mapping of sections"),
    ],
)
def test_mistakes_are_one_line_naming_file_and_field(tmp_path, text, overrides, needle):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    message = str(info.value)
    assert needle in message and "\n" not in message
    assert str(path) in message


def test_unknown_experiment_and_missing_file():
    with pytest.raises(ConfigError, match="unknown experiment 'no-such-experiment'"):
        load_config("no-such-experiment")
    with pytest.raises(ConfigError, match="config file missing.yaml does not exist"):
        load_config("missing.yaml")


@pytest.mark.parametrize(
    "args",
    [
        ["run", "no-such-experiment"],
        ["run", "mfg-crowd-sampled-fp", "--set", "env.size=-3"],
        ["run", "mfg-crowd-sampled-fp", "--set", "env.bogus=1"],
        ["run", "mfg-crowd-sampled-fp", "--set", "novalue"],
        ["run", "does/not/exist.yaml"],
        ["run", "mfg-crowd-sampled-fp", "--address", "127.0.0.1:1"],
        ["run", "mfg-crowd-sampled-fp", "--set", "runtime.learner_replicas=0"],
        ["run", "mfg-deep-afp-four-rooms", "--set", "algorithm.gradient_slices=2", "--set", "runtime.learner_replicas=3"],
    ],
)
def test_cli_errors_exit_2_with_one_line_and_no_run_dir(tmp_path, args):
    out = tmp_path / "run"
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("gamescale: error: "), result.output
    assert not out.exists()


def test_resume_and_report_of_a_non_run_directory_exit_2(tmp_path):
    for command in ("resume", "report"):
        result = runner.invoke(app, [command, str(tmp_path)])
        assert result.exit_code == 2 and "is not a run directory" in result.output
