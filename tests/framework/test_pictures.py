"""Pictures from result tables (gamescale/framework/pictures.py): `gamescale report RUN_DIR`
redraws exactly the pictures a finished run drew, from its tables alone; unknown tables are
left alone; and no algorithm or environment module imports matplotlib."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import gamescale
from gamescale.algorithms.tables import annotate, annotations
from gamescale.framework.cli import app
from gamescale.framework.pictures import DRAWERS, draw_run_tables, draw_table

runner = CliRunner()

IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
import gamescale.algorithms, gamescale.envs
names = []
for package in (gamescale.algorithms, gamescale.envs):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
        names.append(info.name)
print(len(names), sorted(m for m in sys.modules if m.split(".")[0] == "matplotlib"))
"""


def test_no_algorithm_or_env_module_imports_matplotlib():
    """Import every module under gamescale.algorithms and gamescale.envs in a fresh
    interpreter: matplotlib is not among the loaded modules."""
    out = subprocess.run([sys.executable, "-c", IMPORT_EVERY_MODULE], capture_output=True, text=True, check=True)
    count, loaded = out.stdout.split(" ", 1)
    assert int(count) > 40  # every family's modules were imported, not an empty walk
    assert loaded.strip() == "[]", loaded


@pytest.mark.parametrize(
    "experiment, overrides, pictures",
    [
        ("routing-braess", {"run.iterations": 2}, {"link_flows.png"}),
        # exact solvers in the driver: no Ray to start
        ("routing-static-ue", {"run.iterations": 3, "algorithm.method": "conjugate_frank_wolfe"}, {"voc_map.png"}),
        (
            "coop-isg-least-core",
            {
                "algorithm": {"name": "least_core_lp", "shapley": "closed_form"},
                "env.num_players": 8,
                "run.iterations": 2,
            },
            {"allocations.png", "least_core_convergence.png"},
        ),
    ],
)
def test_report_redraws_the_same_pictures_from_the_run_dir(tmp_path, experiment, overrides, pictures):
    run = gamescale.run(experiment, overrides=overrides, out=tmp_path / "run")
    plots = run.dir / "plots"
    drawn = {p.name: p.read_bytes() for p in plots.iterdir()}
    assert pictures <= set(drawn), sorted(drawn)
    for path in plots.iterdir():
        path.unlink()
    result = runner.invoke(app, ["report", str(run.dir)])
    assert result.exit_code == 0, result.output
    redrawn = {p.name: p.read_bytes() for p in plots.iterdir()}
    assert set(redrawn) == set(drawn)
    for name in drawn:  # the same pictures, byte for byte
        assert redrawn[name] == drawn[name], name


def test_unknown_tables_are_ignored_and_annotations_survive_parquet(tmp_path):
    allocations = annotate(
        pa.table({"player": [0, 1], "least_core": [0.5, 0.5], "shapley": [0.4, 0.6], "shapley_half_width": [0.0, 0.0]}),
        shapley_method="exact",
    )
    pq.write_table(allocations, tmp_path / "allocations.parquet")
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "not_a_picture.parquet")
    assert "not_a_picture" not in DRAWERS
    assert draw_run_tables(tmp_path) == [tmp_path / "plots" / "allocations.png"]
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["allocations.png"]
    assert annotations(pq.read_table(tmp_path / "allocations.parquet")) == {"shapley_method": "exact"}
    assert draw_table("not_a_picture", pa.table({"x": [1]}), tmp_path) == []


def test_distill_drawer_marks_the_onset_and_skips_missing_laws(tmp_path):
    step = np.arange(1.0, 11.0)
    table = pa.table(
        {
            "step": step,
            "proxy_distance": 1.0 / step,
            "golden_distance": 0.5 + (step - 5.0) ** 2 / 100,
            "proxy_law": 1.0 / step,
            "golden_law": np.full(10, np.nan),
        }
    )
    notes = {"teacher_golden_distance": 0.4, "proxy_law": {"a": 1.0, "b": 1.0}, "golden_law": None}
    without = draw_table("distill_curves", annotate(table, **notes, hacking_onset_step=None), tmp_path / "a")
    with_onset = draw_table("distill_curves", annotate(table, **notes, hacking_onset_step=5.0), tmp_path / "b")
    assert [p.name for p in without] == [p.name for p in with_onset] == ["distill_loglog.png"]
    assert without[0].read_bytes() != with_onset[0].read_bytes()  # the onset line is drawn
    assert draw_table("distill_curves", annotate(table.slice(0, 1), **notes), tmp_path / "c") == []
