"""Runs across nodes on a real multi-node Ray cluster (`ray.cluster_utils.Cluster`: a head
and a worker node, each with its own raylet and object store, on 127.0.0.1).

The test process does not connect to this cluster: every run's driver is a `gamescale`
subprocess that joins it with `--address`, as a user's would, so the session's
single-node cluster (`ray_cluster`) stays the test process's own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gamescale
from gamescale.framework import storage

SAMPLED = {"run.checkpoint_every": 3, "algorithm.num_particles": 20000, "runtime.shards": 4}


def head_node_args(ports) -> dict:
    """A 2-CPU head on 127.0.0.1 that does not collide with other local heads."""
    agent_port, client_port, runtime_env_port, metrics_port = ports(4)
    return {
        "num_cpus": 2,
        "node_ip_address": "127.0.0.1",
        "include_dashboard": False,
        # The default agent ports are fixed numbers that other local heads may hold.
        "dashboard_agent_listen_port": agent_port,
        "ray_client_server_port": client_port,
        "runtime_env_agent_port": runtime_env_port,
        "metrics_agent_port": metrics_port,
        # Notice a dead node in about 3 s rather than Ray's default 15 s, so the lost
        # worker comes back while the run is still going.
        "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 3},
    }


def new_cluster(ports, worker_nodes: int):
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray.cluster_utils import Cluster

    instance = Cluster(initialize_head=True, connect=False, head_node_args=head_node_args(ports))
    for _ in range(worker_nodes):
        instance.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    instance.wait_for_nodes()
    return instance


@pytest.fixture(scope="module")
def cluster(ports):
    """Head (2 CPUs) + one worker node (1 CPU); torn down at the end."""
    instance = new_cluster(ports, worker_nodes=1)
    try:
        yield instance
    finally:
        instance.shutdown()


def gamescale_cli(*args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gamescale", *args], capture_output=True, text=True, timeout=timeout)


def run_args(name: str, address: str, out: Path, overrides: dict, workers: int) -> list[str]:
    args = ["run", name, "--address", address, "--out", str(out), "--no-progress", "--workers", str(workers)]
    for key, value in overrides.items():
        args += ["--set", f"{key}={value}"]
    return args


def rows(run) -> list[dict]:
    return run.metrics.drop_columns(["time_s"]).to_pylist()


def worker_nodes(run) -> list[list[str]]:
    return [w["nodes"] for w in run.summary["placement"]["pools"]["rollout"]["workers"]]


def test_workers_spread_over_nodes_and_results_match_one_node(cluster, ray_cluster, tmp_path):
    overrides = {**SAMPLED, "run.iterations": 4}
    result = gamescale_cli(*run_args("mfg-crowd-sampled-fp", cluster.address, tmp_path / "two", overrides, 2))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ran on 2 node(s): 2 rollout workers (spread)" in result.stdout
    two_nodes = gamescale.load_run(tmp_path / "two")
    placed = worker_nodes(two_nodes)
    assert len({nodes[0] for nodes in placed}) == 2  # one worker on each node
    one_node = gamescale.run("mfg-crowd-sampled-fp", overrides=overrides, workers=2, out=tmp_path / "one")
    assert len(one_node.summary["placement"]["nodes"]) == 1
    assert rows(two_nodes) == rows(one_node)


def test_pack_keeps_workers_on_one_node(cluster, tmp_path):
    overrides = {**SAMPLED, "run.iterations": 2, "runtime.placement": "pack"}
    result = gamescale_cli(*run_args("mfg-crowd-sampled-fp", cluster.address, tmp_path / "pack", overrides, 2))
    assert result.returncode == 0, result.stderr[-2000:]
    placed = worker_nodes(gamescale.load_run(tmp_path / "pack"))
    assert len({nodes[0] for nodes in placed}) == 1


def _raylet_pid(node) -> int:
    return node.all_processes["raylet"][0].process.pid


def start_driver(address: str, out: Path, overrides: dict, workers: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gamescale", *run_args("mfg-crowd-sampled-fp", address, out, overrides, workers)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_first_checkpoint(driver: subprocess.Popen, out: Path, iterations: int) -> None:
    deadline = time.monotonic() + 240
    while not storage.checkpoint_dirs(out):
        assert driver.poll() is None, driver.stderr.read()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.1)
    assert len(gamescale.load_run(out).metrics) < iterations  # the run is still going


def run_and_lose_the_worker_node(cluster, out: Path, overrides: dict, workers: int) -> tuple[int, str]:
    """Run a driver against `cluster`, kill the worker node's raylet once the run has its
    first checkpoint (the node dies, not its workers politely), let the run finish, then
    give the cluster a fresh worker node for the module's other tests. Returns the driver's
    exit code and stderr."""
    driver = start_driver(cluster.address, out, overrides, workers)
    worker_node = next(iter(cluster.worker_nodes))
    try:
        wait_for_first_checkpoint(driver, out, overrides["run.iterations"])
        os.kill(_raylet_pid(worker_node), signal.SIGKILL)
        _, stderr = driver.communicate(timeout=400)
    finally:
        if driver.poll() is None:
            driver.kill()
        cluster.remove_node(worker_node, allow_graceful=False)
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
    return driver.returncode, stderr


def test_losing_a_worker_node_after_a_checkpoint_loses_nothing(cluster, ray_cluster, tmp_path):
    overrides = {**SAMPLED, "run.iterations": 60}
    out = tmp_path / "lost"
    returncode, stderr = run_and_lose_the_worker_node(cluster, out, overrides, workers=2)
    assert returncode == 0, stderr[-2000:]
    run = gamescale.load_run(out)
    assert run.finished
    assert run.metrics["iteration"].to_pylist() == list(range(overrides["run.iterations"]))
    assert run.summary["shards_reissued"] >= 1
    placed = worker_nodes(run)
    assert any(len(nodes) == 2 for nodes in placed), placed  # the lost worker came back elsewhere
    reference = gamescale.run("mfg-crowd-sampled-fp", overrides=overrides, workers=2, out=tmp_path / "reference")
    assert rows(run) == rows(reference)


def test_with_no_capacity_left_the_pool_shrinks_and_the_run_completes(cluster, tmp_path):
    """Three workers fill the cluster (2 + 1 CPUs); the worker node dies and nothing can
    take its worker: it is dropped with a warning after the revive timeout, the other two
    finish the run, and the rows equal an undisturbed run's."""
    overrides = {**SAMPLED, "run.iterations": 150, "runtime.worker_revive_timeout_s": 2}
    out = tmp_path / "shrunk"
    returncode, stderr = run_and_lose_the_worker_node(cluster, out, overrides, workers=3)
    assert returncode == 0, stderr[-2000:]
    run = gamescale.load_run(out)
    assert "continuing with fewer workers" in stderr, (stderr[-2000:], run.summary["placement"])
    assert run.summary["placement"]["pools"]["rollout"]["dropped_workers"] == 1
    assert run.metrics["iteration"].to_pylist() == list(range(overrides["run.iterations"]))
    reference = gamescale.run("mfg-crowd-sampled-fp", overrides=overrides, workers=2, out=tmp_path / "reference")
    assert rows(run) == rows(reference)


def test_losing_the_head_stops_the_run_and_resume_continues_it_on_another_cluster(
    cluster, ray_cluster, ports, tmp_path
):
    """The head of the cluster a run is on dies (all of its processes, as when its machine
    goes): the driver stops within `runtime.head_timeout_s` with one line that says so and
    how to resume, the run directory keeps its newest checkpoint and is not complete, and
    `gamescale resume --address` finishes it on another cluster with the rows of an
    undisturbed run."""
    overrides = {**SAMPLED, "run.iterations": 30, "runtime.head_timeout_s": 2}
    out = tmp_path / "headless"
    doomed = new_cluster(ports, worker_nodes=0)
    driver = start_driver(doomed.address, out, overrides, workers=2)
    try:
        wait_for_first_checkpoint(driver, out, overrides["run.iterations"])
        lost_at = time.monotonic()
        doomed.remove_node(doomed.head_node, allow_graceful=False)
        _, stderr = driver.communicate(timeout=120)
        noticed_s = time.monotonic() - lost_at
    finally:
        if driver.poll() is None:
            driver.kill()
        doomed.shutdown()
    assert driver.returncode == 2, stderr[-2000:]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "lost the Ray cluster: its head stopped answering" in lines[0], stderr[-2000:]
    assert f"gamescale resume {out} --address" in lines[0]
    assert noticed_s < 30  # Ray alone would end the driver after 60 s, with no word of resuming
    assert not gamescale.load_run(out).finished and storage.checkpoint_dirs(out)

    resumed = gamescale_cli("resume", str(out), "--address", cluster.address, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    run = gamescale.load_run(out)
    assert run.finished and run.config.runtime.address == cluster.address
    assert run.metrics["iteration"].to_pylist() == list(range(overrides["run.iterations"]))
    reference = gamescale.run("mfg-crowd-sampled-fp", overrides=overrides, workers=2, out=tmp_path / "reference")
    assert rows(run) == rows(reference)


def test_bad_input_against_the_multi_node_cluster(cluster, tmp_path):
    too_many = gamescale_cli("run", "mfg-crowd-sampled-fp", "--address", cluster.address, "--workers", "5",
                             "--out", str(tmp_path / "too-many"), "--no-progress")
    assert too_many.returncode == 2
    lines = too_many.stderr.strip().splitlines()
    assert len(lines) == 1 and "5 rollout workers need 5 CPUs but the cluster has 3" in lines[0], too_many.stderr

    bad = gamescale_cli("run", "mfg-crowd-sampled-fp", "--address", cluster.address, "--set",
                        "runtime.placement=scatter", "--out", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "runtime.placement" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()


@pytest.fixture(scope="module")
def jobs_cluster(background):
    """A head with the Jobs API and one worker node, held by `cluster_keeper.py`."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PATH": path}  # the job's `python` is the one with gamescale, as on a real cluster
    keeper_script = [sys.executable, str(Path(__file__).with_name("cluster_keeper.py"))]
    with background(keeper_script, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env) as keeper:
        line = keeper.stdout.readline()
        assert line, "the cluster keeper did not start"
        yield json.loads(line)


def test_submit_spreads_the_job_over_the_multi_node_cluster(jobs_cluster, tmp_path):
    """`gamescale submit` to a two-node cluster, shipping this checkout as the job's code
    and then with `--no-ship` (the cluster's own gamescale, as in an image): each job's two
    rollout workers run on both nodes."""
    for ship in ("--ship", "--no-ship"):
        out = tmp_path / f"submitted{ship}"
        result = gamescale_cli("submit", "mfg-crowd-sampled-fp", "--address", jobs_cluster["dashboard"], ship,
                               "--out", str(out), "--set", "run.iterations=2", "--set", "algorithm.num_particles=2000",
                               "--workers", "2")  # fmt: skip
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert "ran on 2 node(s): 2 rollout workers (spread)" in result.stdout  # the job's own log, followed
        summary = json.loads((out / "summary.json").read_text())
        assert summary["status"] == "completed" and len(summary["placement"]["nodes"]) == 2
