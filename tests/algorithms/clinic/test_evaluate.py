"""The clinic evaluation (gamescale/algorithms/clinic/evaluate.py): the same tables with 1
and 2 workers, failed endpoint calls kept as failed cases, retries, the Wilson interval,
and bad input as one line with exit 2."""

from __future__ import annotations

import http.server
import json
import re
import threading

import pyarrow.parquet as pq
import pytest

import gamescale
from gamescale.algorithms.base import LocalShardRunner, StepContext
from gamescale.algorithms.clinic.evaluate import wilson_interval
from gamescale.algorithms.registry import algorithm_config, build_algorithm
from gamescale.envs.registry import make_env


def test_wilson_interval_matches_scipy():
    from scipy.stats import binomtest

    for k, n in [(0, 10), (23, 107), (41, 214), (9, 9)]:
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_results_are_identical_with_one_and_two_workers(ray_cluster, tmp_path):
    overrides = {"algorithm.max_cases": 12, "algorithm.cases_per_iteration": 6, "runtime.shards": 3}
    runs = [
        gamescale.run("clinic-medqa-baseline", overrides=overrides, workers=w, out=tmp_path / f"w{w}") for w in (1, 2)
    ]
    tables = [{name: pq.read_table(run.dir / f"{name}.parquet") for name in ("transcripts", "cases")} for run in runs]
    assert tables[0]["cases"].num_rows == 12 and tables[0]["transcripts"].num_rows > 12 * 10
    assert tables[0]["transcripts"].equals(tables[1]["transcripts"])
    assert tables[0]["cases"].equals(tables[1]["cases"])
    assert runs[0].metrics["accuracy"].to_pylist() == runs[1].metrics["accuracy"].to_pylist()
    assert {"test_requests.png", "accuracy_by_case_set.png"} <= {p.name for p in (runs[0].dir / "plots").iterdir()}
    summary = json.loads((runs[0].dir / "summary.json").read_text())
    assert summary["stopped"]["reason"] == "budget"
    turns = tables[0]["transcripts"]
    # one row per turn, numbered from 0 within each case
    first = turns.filter(turns["case_index"].to_numpy() == 0)
    assert first["turn"].to_pylist() == list(range(first.num_rows))
    assert first["speaker"].to_pylist()[-1] == "moderator"


class _Endpoint(http.server.BaseHTTPRequestHandler):
    """/models answers; /chat/completions fails `fail_first` times, then replies."""

    fail_first = 0
    calls = 0

    def log_message(self, *args):
        pass

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send(200, {"data": [{"id": "fake"}]})

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).calls += 1
        if type(self).calls <= type(self).fail_first:
            self._send(503, {"error": "busy"})
        else:
            self._send(200, {"choices": [{"message": {"content": "DIAGNOSIS READY: Myasthenia gravis"}}]})


@pytest.fixture
def endpoint():
    handler = type("Handler", (_Endpoint,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _evaluate(base_url: str, retries: int, cases: int = 2):
    env = make_env("clinic", max_turns=3)
    config = algorithm_config(
        {
            "name": "clinic_eval",
            "max_cases": cases,
            "doctor": {"kind": "endpoint", "base_url": base_url, "retries": retries},
        }
    )
    algorithm = build_algorithm(config, env)
    state = algorithm.init(0)
    state, metrics = algorithm.step(state, StepContext(iteration=0, seed=0, shards=LocalShardRunner(env), num_shards=2))
    return algorithm, state, metrics


def test_a_failing_endpoint_case_is_recorded_as_failed(endpoint):
    handler, url = endpoint
    handler.fail_first = 10**6
    algorithm, state, metrics = _evaluate(url, retries=1)
    assert metrics["failed"] == 2 and metrics["cases"] == 2 and metrics["accuracy"] == 0.0
    assert handler.calls == 2 * 2  # one call and one retry per case, then the case fails
    cases = algorithm.tables(state)["cases"]
    assert cases["status"].to_pylist() == ["failed", "failed"]
    assert all(re.search(r"EndpointError: .* failed after 2 attempts", e) for e in cases["error"].to_pylist())


def test_a_slow_start_is_retried_within_the_bound(endpoint):
    handler, url = endpoint
    handler.fail_first = 2
    _, state, metrics = _evaluate(url, retries=2, cases=1)
    assert metrics["failed"] == 0 and metrics["accuracy"] == 1.0  # case 0 is myasthenia gravis
    assert handler.calls == 3


@pytest.mark.parametrize(
    "sets, message",
    [
        (["env.max_turns=0"], r"max_turns"),
        (["env.case_set={bad}"], r"bad\.jsonl:2: malformed case: not JSON"),
        (["algorithm.doctor.kind=local", "algorithm.doctor.model_dir={empty}"], r"has no config\.json"),
        (
            ["algorithm.doctor.kind=endpoint", "algorithm.doctor.base_url=http://127.0.0.1:9/v1"],
            r"endpoint .* unreachable",
        ),
    ],
)
def test_bad_input_is_one_line_with_exit_2(tmp_path, sets, message):
    from typer.testing import CliRunner

    from gamescale.framework.cli import app

    bad = tmp_path / "bad.jsonl"
    bad.write_text(_first_medqa_line() + "\n{oops\n")
    (tmp_path / "empty").mkdir()
    args = ["run", "clinic-medqa-baseline"]
    for item in sets:
        args += ["--set", item.format(bad=bad, empty=tmp_path / "empty")]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and re.search(message, lines[0]), result.output
    assert not (tmp_path / "run").exists()


def _first_medqa_line() -> str:
    from gamescale.envs.clinic.cases import case_path

    return case_path("medqa").read_text().splitlines()[0]
