"""Sweeps on Ray Tune: one normal run directory per (grid point, seed) whose metrics equal
a single run with the same settings, sweep.parquet with the swept keys, a killed sweep
resumed without lost or duplicated rows, and bad input as one line."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

import gamescale
from gamescale.framework.cli import app
from gamescale.framework.sweep import TRIALS_DIR

runner = CliRunner()
SMALL = {"run.iterations": 6, "run.checkpoint_every": 2}
GRID = {"algorithm.learning_rate": [0.2, 0.5]}


def rows(table) -> list[dict]:
    return table.drop_columns(["time_s"]).to_pylist()


@pytest.fixture(scope="module")
def sweep(ray_cluster, tmp_path_factory):
    return gamescale.sweep(
        "mfg-crowd-fp", grid=GRID, seeds=2, overrides=SMALL, out=tmp_path_factory.mktemp("sweep") / "s"
    )


def test_sweep_has_one_run_per_point_and_seed_equal_to_single_runs(sweep, tmp_path):
    trials = sweep.trials
    assert len(trials) == 4 and all(t.finished for t in trials)
    settings = sorted((t.config.algorithm.learning_rate, t.config.run.seed) for t in trials)
    assert settings == [(0.2, 0), (0.2, 1), (0.5, 0), (0.5, 1)]
    for trial in trials:
        single = gamescale.run(
            "mfg-crowd-fp",
            overrides={**SMALL, "algorithm.learning_rate": trial.config.algorithm.learning_rate,
                       "run.seed": trial.config.run.seed},
            out=tmp_path / trial.dir.name,
        )
        assert rows(trial.metrics) == rows(single.metrics)


def test_sweep_table_has_every_row_with_swept_keys_and_seed(sweep):
    table = sweep.table
    assert table.column_names[:4] == ["trial", "algorithm.learning_rate", "seed", "iteration"]
    assert "exploitability" in table.column_names
    assert table.num_rows == 4 * SMALL["run.iterations"]
    for trial in sweep.trials:
        mine = table.filter(table["trial"].to_numpy(zero_copy_only=False) == trial.dir.name)
        assert mine["iteration"].to_pylist() == list(range(SMALL["run.iterations"]))
        assert set(mine["algorithm.learning_rate"].to_pylist()) == {trial.config.algorithm.learning_rate}
    summary = sweep.summary
    assert summary["status"] == "completed" and len(summary["final"]) == 2
    assert (sweep.dir / "plots" / "exploitability.png").is_file()


@pytest.mark.slow  # 38 s; the default set keeps the loop's killed-driver resume test (11 s)
def test_killed_sweep_resumes_without_lost_or_duplicated_rows(ray_cluster, tmp_path):
    out = tmp_path / "killed"
    # One short and one long grid point: the driver is killed once a short trial has
    # finished while the long ones are still running.
    command = [sys.executable, "-m", "gamescale", "sweep", "mfg-crowd-fp", "--address", ray_cluster,
               "--grid", "run.iterations=4,1500", "--seeds", "2", "--set", "run.checkpoint_every=50",
               "--out", str(out), "--no-progress"]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            finished = list(out.glob(f"{TRIALS_DIR}/*/summary.json"))
            checkpointed = list(out.glob(f"{TRIALS_DIR}/*/checkpoints/ckpt-*"))
            long_started = [c for c in checkpointed if "iterations=1500" in str(c)]
            if finished and long_started:
                break
            assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
            time.sleep(0.2)
        else:
            pytest.fail("the sweep made no progress")
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert not (out / "summary.json").exists()
    unfinished = [d for d in (out / TRIALS_DIR).iterdir() if not (d / "summary.json").exists()]
    assert unfinished, "the kill came too late to test resuming"
    resumed = gamescale.resume_sweep(out)
    assert resumed.summary["status"] == "completed"
    for trial in resumed.trials:
        n = trial.config.run.iterations
        assert trial.finished and trial.metrics["iteration"].to_pylist() == list(range(n))
        single = gamescale.run("mfg-crowd-fp", overrides={"run.iterations": n, "run.seed": trial.config.run.seed},
                               out=tmp_path / f"single-{trial.dir.name}")
        assert rows(trial.metrics) == rows(single.metrics)
    assert resumed.table.num_rows == 2 * (4 + 1500)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--grid", "algorithm.learning_rat=0.1,0.2"], "algorithm.learning_rat: unknown field"),
        (["--grid", "algorithm.learning_rate="], "empty value list"),
        (["--grid", "algorithm.learning_rate=0.1,,0.2"], "empty value"),
        (["--grid", "nonsense"], "expected KEY=V1,V2"),
        (["--seeds", "0"], "--seeds must be at least 1"),
        (["--grid", "run.seed=1,2"], "--seeds N"),
    ],
)
def test_bad_sweep_input_is_one_line_exit_2(tmp_path, args, needle):
    out = tmp_path / "bad"
    result = runner.invoke(app, ["sweep", "mfg-crowd-fp", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line]
    assert len(lines) == 1 and needle in lines[0], result.output
    assert not out.exists()


def test_a_trial_larger_than_the_cluster_is_refused_not_left_waiting(ray_cluster, tmp_path):
    out = tmp_path / "too-big"
    result = runner.invoke(app, ["sweep", "mfg-crowd-sampled-fp", "--workers", "3", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "needs 4 CPUs" in result.output and "the cluster has 2" in result.output
    assert not out.exists()
