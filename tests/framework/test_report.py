"""Reports: every metric readable on a narrow console, runs compared in one plot per
metric, and pictures of the population drawn from the table the solver returns."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
from rich.console import Console
from typer.testing import CliRunner

import gamescale
from gamescale.framework.cli import app
from gamescale.framework.report import report

runner = CliRunner()


def _console(width: int) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=width, force_terminal=False, color_system=None), buffer


def test_every_metric_is_readable_on_a_narrow_console(ray_cluster, tmp_path):
    run = gamescale.run("mfg-cce", overrides={"run.iterations": 3}, out=tmp_path / "cce")
    console, buffer = _console(80)
    report(run.dir, console=console)
    text = buffer.getvalue()
    last = run.metrics.slice(run.metrics.num_rows - 1).to_pylist()[0]
    metrics = [k for k in last if k not in ("iteration",)]
    assert len(metrics) > 4  # the case that used to be cut to "0.32…"
    for name in metrics:
        assert name in text, name
        assert f"{last[name]:.6g}" in text, (name, text)
    assert not any("…" in line and any(c.isdigit() for c in line.split("…")[0][-1:]) for line in text.splitlines())


def test_headline_metrics_come_first(tmp_path):
    probe = gamescale.run("mfg-cce", overrides={"run.iterations": 1}, out=tmp_path / "probe")
    last_metric = probe.metrics.column_names[-1]
    run = gamescale.run(
        "mfg-cce", overrides={"run.iterations": 1, "report.headline": [last_metric]}, out=tmp_path / "r"
    )
    console, buffer = _console(400)
    report(run.dir, console=console)
    header = next(line for line in buffer.getvalue().splitlines() if "time_s" in line)
    names = [c.strip() for c in header.replace("┃", "|").split("|") if c.strip()]
    assert names[:2] == ["iteration", last_metric] and names[-1] == "time_s"


def test_report_overlays_runs_and_load_runs_tags_them(tmp_path):
    fp = gamescale.run("mfg-crowd-fp", overrides={"run.iterations": 4}, out=tmp_path / "fp")
    omd = gamescale.run("mfg-crowd-omd", overrides={"run.iterations": 6}, out=tmp_path / "omd")
    out = tmp_path / "compare"
    result = runner.invoke(app, ["report", str(fp.dir), str(omd.dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "exploitability.png").is_file()
    assert "mfg-crowd-fp" in result.output and "mfg-crowd-omd" in result.output
    table = gamescale.load_runs([fp.dir, omd.dir])
    assert table.column_names[0] == "run"
    assert table["run"].to_pylist() == ["mfg-crowd-fp"] * 4 + ["mfg-crowd-omd"] * 6
    omd_rows = table.filter(table["run"].to_numpy(zero_copy_only=False) == "mfg-crowd-omd")
    assert omd_rows["exploitability"].to_pylist() == omd.metrics["exploitability"].to_pylist()


def test_report_of_missing_directories_is_one_line(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path / "a"), str(tmp_path / "b")])
    assert result.exit_code == 2 and "is not a run or sweep directory" in result.output


def test_1d_crowd_picture_from_the_final_mean_field(tmp_path):
    run = gamescale.run("mfg-crowd-fp", overrides={"run.iterations": 3}, out=tmp_path / "one")
    table = pq.read_table(run.dir / "mean_field.parquet")
    assert {"t", "state", "x", "mass"} <= set(table.column_names) and "y" not in table.column_names
    mass = table["mass"].to_numpy().reshape(run.config.env.horizon + 1, run.config.env.size)
    np.testing.assert_allclose(mass.sum(axis=1), 1.0, atol=1e-9)
    assert (run.dir / "plots" / "mean_field.png").is_file()


def test_2d_maze_pictures_and_report_redraws_them(tmp_path):
    run = gamescale.run("mfg-torus-four-rooms-omd", overrides={"run.iterations": 2}, out=tmp_path / "maze")
    table = pq.read_table(run.dir / "mean_field.parquet")
    walls = table.filter(table["wall"])
    assert walls.num_rows > 0 and np.all(walls["mass"].to_numpy() == 0.0)  # nobody stands in a wall
    size = run.config.env.size
    assert table["x"].to_numpy().max() == size - 1 and table["y"].to_numpy().max() == size - 1
    png, gif = run.dir / "plots" / "mean_field.png", run.dir / "plots" / "mean_field.gif"
    assert png.is_file() and gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    png.unlink()
    gif.unlink()
    result = runner.invoke(app, ["report", str(run.dir)])
    assert result.exit_code == 0, result.output
    assert png.is_file() and gif.is_file()
