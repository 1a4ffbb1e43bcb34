"""`gamescale submit` against a real Ray head started on 127.0.0.1 inside the test,
with Ray 2.60's token authentication left on."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

RAY = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"


@pytest.fixture(scope="module")
def head_node(tmp_path_factory, ports, background):
    """A separate single-node cluster (`ray start --head --block`), stopped at the end.

    `ray stop` would stop every Ray on the machine (the session's test cluster too), so the
    head runs in the foreground of its own process and is stopped with SIGTERM, which
    makes Ray drain and shut down exactly the processes it started.
    """
    # The cluster's `python` is the one with gamescale's dependencies, as on a real cluster.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PATH": path}
    env.pop("RAY_ADDRESS", None)
    gcs_port, dashboard_port, agent_port, client_port = ports(4)
    temp_dir = tmp_path_factory.mktemp("ray-head")
    start = [
        RAY, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs_port}",
        "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}", "--include-dashboard=true",
        "--num-cpus=2", f"--temp-dir={temp_dir}", "--disable-usage-stats",
        # Default agent ports are fixed numbers; the session's test cluster holds them.
        f"--dashboard-agent-listen-port={agent_port}", f"--ray-client-server-port={client_port}",
    ]  # fmt: skip
    address = f"http://127.0.0.1:{dashboard_port}"
    with background(start, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        assert wait_for_jobs_api(address, timeout_s=120), "the Ray head did not come up"
        yield address


def wait_for_jobs_api(address: str, timeout_s: float) -> bool:
    """True once the dashboard answers HTTP at all (401 included: token auth is on)."""
    import urllib.error
    import urllib.request

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{address}/api/version", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.5)
    return False


def test_submit_runs_the_experiment_on_the_cluster(head_node, tmp_path):
    address = head_node
    out = tmp_path / "submitted"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-m", "gamescale", "submit", "mfg-crowd-sampled-fp", "--address", address]
    command += ["--out", str(out), "--set", "run.iterations=4", "--set", "algorithm.num_particles=2000"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "submitted mfg-crowd-sampled-fp as job" in result.stdout
    assert "succeeded" in result.stdout
    assert f"run directory: {out}" in result.stdout  # the job's own log, followed here
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["final"]["iteration"] == 3


def test_submit_no_wait_prints_the_job_id_and_returns_before_the_job_ends(head_node, tmp_path, monkeypatch):
    """`--no-wait` returns once the job is accepted; the job then runs to completion on its own
    (followed here through the Ray Jobs SDK with the id the command printed)."""
    out = tmp_path / "detached"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-m", "gamescale", "submit", "mfg-crowd-sampled-fp", "--address", head_node, "--no-wait"]
    command += ["--out", str(out), "--set", "run.iterations=4", "--set", "algorithm.num_particles=2000"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=200)
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"submitted mfg-crowd-sampled-fp as job (\S+) to ", result.stdout)
    assert match, result.stdout
    assert "run directory:" not in result.stdout  # the job's log was not followed
    assert not (out / "summary.json").exists()  # returned before the run finished

    from gamescale.framework.submit import TERMINAL, client_for

    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # as `gamescale submit` sets it; undone after the test
    client = client_for(head_node)
    deadline = time.monotonic() + 400
    while (status := str(client.get_job_status(match.group(1))).split(".")[-1]) not in TERMINAL:
        assert time.monotonic() < deadline, f"job still {status}"
        time.sleep(1.0)
    assert status == "SUCCEEDED", client.get_job_logs(match.group(1))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["final"]["iteration"] == 3


def test_submit_to_nothing_is_one_line_exit_2(tmp_path):
    command = [sys.executable, "-m", "gamescale", "submit", "mfg-crowd-sampled-fp", "--address", "http://127.0.0.1:9"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().startswith("gamescale: error: cannot reach the Ray Jobs API")
    assert len(result.stderr.strip().splitlines()) == 1
