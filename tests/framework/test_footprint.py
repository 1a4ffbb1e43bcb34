"""A run's footprint: the driver caps its numeric threads while actors run, and the deep
mean-field runs (the 10 x 10 crowd, D-MOMD and D-AFP) stay under 1 GiB summed over every
process of the run, Ray's own included, with torch loaded in one process only (the
learners'). The memory is measured by `benchmarks/footprint.py` (PSS from smaps_rollup).
Every process of a run looks names up in the registries, so looking up every name and
building a deep mean-field run must not import other families' heavy dependencies."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gamescale.framework.runtime import driver_threads

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_registries_and_a_deep_mfg_build_import_no_other_familys_dependencies():
    import subprocess

    code = (
        "import sys\n"
        "from gamescale.algorithms.registry import algorithm_names\n"
        "from gamescale.envs.registry import env_names\n"
        "from gamescale.framework.config import load_config\n"
        "from gamescale.framework.loop import _build\n"
        "assert len(env_names()) > 10 and len(algorithm_names()) > 10\n"
        "_build(load_config('mfg-deep-momd'))\n"
        "heavy = ('torch', 'scipy', 'pettingzoo', 'gymnasium', 'chess', 'music21', 'sklearn', 'highspy', 'matplotlib')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_driver_threads_caps_blas_and_restores_it():
    import numpy  # noqa: F401  (loads its BLAS)

    from gamescale.algorithms.row_blocks import row_threads

    with driver_threads(3):  # the driver's row blocks get the same grant
        assert row_threads() == 3
    assert row_threads() == 1
    before = _blas_threads()
    if not before:
        pytest.skip("no BLAS thread pool visible to threadpoolctl")
    with driver_threads(1):
        assert _blas_threads() == [1] * len(before)
    assert _blas_threads() == before
    with driver_threads(None):
        assert _blas_threads() == before


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="needs Linux smaps_rollup")
@pytest.mark.parametrize("name", ["mfg-deep-momd", "mfg-deep-afp"])
def test_deep_crowd_runs_stay_under_one_gib(name, tmp_path):
    sys.path.insert(0, str(BENCHMARKS))
    from footprint import measure_command

    command = [sys.executable, "-m", "gamescale.framework.cli", "run", name, "--no-progress"]
    command += ["--out", str(tmp_path / name), "--set", "run.iterations=2"]
    result = measure_command(command, interval_s=0.1, timeout_s=600)
    assert result["returncode"] == 0, result["stderr_tail"]
    assert result["torch_processes"] == 1, result["breakdown_at_peak"]  # the learners' process only
    assert result["peak_pss_mib"] < 1024, result["breakdown_at_peak"]
