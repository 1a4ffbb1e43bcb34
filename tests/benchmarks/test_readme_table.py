"""README.md's benchmark table is exactly what `benchmarks/readme_table.py` renders from the
committed `benchmarks/results/*.json`: no number in it without a results file behind it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "readme_table.py"
_SPEC = importlib.util.spec_from_file_location("benchmarks_readme_table", _PATH)
readme_table = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(readme_table)


def test_readme_benchmark_table_matches_the_results_files():
    in_readme = readme_table.readme_table(readme_table.README.read_text())
    assert in_readme is not None, "README.md has no generated benchmark table"
    assert in_readme == readme_table.render(), "re-run: python benchmarks/readme_table.py, paste into README.md"


def test_every_row_names_its_command_and_results_file():
    lines = readme_table.render().splitlines()[3:-1]
    assert len(lines) >= 15
    for line in lines:
        source = line.rstrip(" |").rsplit(" | ", 1)[1]
        command, key = source.split(" → ")
        assert command.startswith("`") and ".py" in command
        name = key.split("`")[1]
        assert (readme_table.RESULTS / name).is_file(), name
