"""`gamescale serve` (gamescale/framework/serve.py): a tiny random causal LM built here
(nothing downloaded) served on Ray Serve at 127.0.0.1 gives the same greedy transcript as
the same model in process, and the clinic-model-eval experiment runs against it."""

from __future__ import annotations

import json
import socket
import urllib.request

import pyarrow.parquet as pq
import pytest

import gamescale

pytest.importorskip("transformers")
pytest.importorskip("ray.serve")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from gamescale.envs.clinic.models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("clinic-model") / "tiny", seed=0)


@pytest.fixture(scope="module")
def served(ray_cluster, tiny_model):
    from gamescale.framework.serve import start_server, stop_server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = start_server(tiny_model, port=port, num_cpus=0)
    yield url
    stop_server()


def _players(model_player):
    from gamescale.envs.clinic import MeasurementAgent, RetrievalPatient, RulesModerator

    return {
        "doctor": model_player,
        "patient": RetrievalPatient(),
        "measurement": MeasurementAgent(),
        "moderator": RulesModerator(),
    }


def test_local_and_served_model_give_the_same_greedy_transcript(served, tiny_model):
    from gamescale.envs.clinic import play
    from gamescale.envs.clinic.models import EndpointChatModel, LocalChatModel, ModelPlayer
    from gamescale.envs.registry import make_env

    with urllib.request.urlopen(f"{served}/models", timeout=10) as reply:
        assert json.loads(reply.read())["data"][0]["id"] == "tiny"
    env = make_env("clinic", max_turns=4)
    local = play(env, _players(ModelPlayer(LocalChatModel(tiny_model), max_new_tokens=12)), 3, seed=1)
    remote = play(env, _players(ModelPlayer(EndpointChatModel(served), max_new_tokens=12)), 3, seed=1)
    assert len(local.transcript) == 8  # 4 doctor turns, 3 answers, the verdict
    assert remote.transcript == local.transcript
    assert any(t.speaker == "doctor" and t.text for t in local.transcript)


def test_model_eval_experiment_runs_against_the_endpoint(served, tmp_path):
    overrides = {
        "algorithm.doctor.kind": "endpoint",
        "algorithm.doctor.base_url": served,
        "algorithm.doctor.max_new_tokens": 8,
        "algorithm.max_cases": 2,
        "env.max_turns": 3,
        "runtime.shards": 2,
    }
    run = gamescale.run("clinic-model-eval", overrides=overrides, workers=1, out=tmp_path / "eval")
    cases = pq.read_table(run.dir / "cases.parquet")
    assert cases["status"].to_pylist() == ["ok", "ok"] and cases["doctor_turns"].to_pylist() == [3, 3]
    assert pq.read_table(run.dir / "transcripts.parquet").num_rows == 2 * (3 + 2 + 1)


def test_a_model_directory_without_weights_is_refused(tmp_path, tiny_model):
    from gamescale.framework.errors import ConfigError
    from gamescale.framework.serve import start_server

    (tmp_path / "config.json").write_text((tiny_model / "config.json").read_text())
    with pytest.raises(ConfigError, match=r"has no weights \(\*\.safetensors or pytorch_model\*\.bin\)"):
        start_server(tmp_path)


def test_serve_cli_refuses_a_directory_without_a_model_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from gamescale.framework.cli import app

    result = CliRunner().invoke(app, ["serve", str(tmp_path / "missing")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [f"gamescale: error: model directory {tmp_path / 'missing'} does not exist"]
