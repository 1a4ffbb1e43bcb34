"""Algorithms that say they are done: the loop stops at the first iteration that meets the
target, records why in summary.json, and a killed run resumes to the same rows."""

from __future__ import annotations

import json

import pytest

import gamescale
from gamescale.framework import storage

BASE = {"run.iterations": 60, "run.checkpoint_every": 2}


class Killed(Exception):
    """Stands in for a crash of the driver between two iterations."""


def rows(run) -> list[dict]:
    return run.metrics.drop_columns(["time_s"]).to_pylist()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return gamescale.run("mfg-crowd-omd", overrides=BASE, out=tmp_path_factory.mktemp("ref") / "run")


def _target_and_first_hit(reference) -> tuple[float, int]:
    values = reference.metrics["exploitability"].to_pylist()
    target = values[25] * 1.0000001  # a level first reached somewhere after the start
    first = next(i for i, v in enumerate(values) if v <= target)
    return target, first


def test_solver_stops_at_the_first_iteration_that_meets_its_target(reference, tmp_path):
    target, first = _target_and_first_hit(reference)
    run = gamescale.run(
        "mfg-crowd-omd", overrides={**BASE, "algorithm.target_exploitability": target}, out=tmp_path / "stop"
    )
    assert run.finished
    assert rows(run) == rows(reference)[: first + 1]
    summary = run.summary
    assert summary["stopped"]["reason"] == "target" and summary["stopped"]["iteration"] == first
    assert summary["iterations"] == first + 1
    assert "target" in summary["stopped"]["message"]


def test_a_run_without_a_target_records_that_it_ran_its_iterations(reference):
    assert reference.summary["stopped"]["reason"] == "iterations"
    assert reference.summary["iterations"] == BASE["run.iterations"]


def test_killed_before_the_target_resumes_to_identical_rows(reference, tmp_path):
    target, first = _target_and_first_hit(reference)
    overrides = {**BASE, "algorithm.target_exploitability": target}
    out = tmp_path / "killed"

    def crash(ctx):
        if ctx.iteration == first - 4:
            raise Killed

    with pytest.raises(Killed):
        gamescale.run("mfg-crowd-omd", overrides=overrides, out=out, callbacks=[crash])
    assert not (out / storage.SUMMARY_FILE).exists()
    resumed = gamescale.resume(out)
    assert resumed.finished and resumed.summary["stopped"]["reason"] == "target"
    assert rows(resumed) == rows(reference)[: first + 1]


def test_killed_after_stopping_but_before_the_summary_adds_no_row(reference, tmp_path):
    target, first = _target_and_first_hit(reference)
    run = gamescale.run(
        "mfg-crowd-omd", overrides={**BASE, "algorithm.target_exploitability": target}, out=tmp_path / "late"
    )
    (run.dir / storage.SUMMARY_FILE).unlink()  # as if killed right after the last checkpoint
    resumed = gamescale.resume(run.dir)
    assert rows(resumed) == rows(reference)[: first + 1]
    assert json.loads((run.dir / storage.SUMMARY_FILE).read_text())["stopped"]["iteration"] == first


def test_time_budget_ends_the_run_after_the_first_iteration_past_it(reference, tmp_path):
    import time

    def slow(ctx):  # every iteration takes at least 0.1 s more than the solver needs
        time.sleep(0.1)

    budget = 0.45
    run = gamescale.run(
        "mfg-crowd-omd", overrides={**BASE, "run.time_budget_s": budget}, out=tmp_path / "budget", callbacks=[slow]
    )
    times = run.metrics["time_s"].to_pylist()
    assert run.finished and run.summary["stopped"]["reason"] == "budget"
    assert times[-1] >= budget and all(t < budget for t in times[:-1])
    assert 4 <= len(times) < BASE["run.iterations"]
    assert rows(run) == rows(reference)[: len(times)]
