"""The `gamescale` command itself, run as a user runs it (a new Python process): `list`,
`run` then a successful `report`, and static user equilibrium on a TNTP file of the user's."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml

import gamescale

EXPERIMENTS = Path(gamescale.__file__).parent / "experiments"
TNTP = Path(gamescale.__file__).parent / "envs" / "routing" / "data"


def gamescale_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gamescale", *args], capture_output=True, text=True, timeout=timeout)


def test_list_shows_every_built_in_experiment_with_its_description():
    result = gamescale_cli("list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    files = sorted(EXPERIMENTS.glob("*.yaml"), key=lambda path: path.stem)
    assert len(lines) == len(files) > 10
    for path, line in zip(files, lines, strict=True):  # sorted by name, one line each
        name, description = line.split(maxsplit=1)
        assert name == path.stem
        assert description == yaml.safe_load(path.read_text())["description"]


def test_run_then_report_redraws_the_plot_and_prints_the_final_row(tmp_path):
    out = tmp_path / "fp"
    ran = gamescale_cli("run", "mfg-crowd-fp", "--set", "run.iterations=3", "--out", str(out), "--no-progress")
    assert ran.returncode == 0, ran.stderr
    plot = out / "plots" / "exploitability.png"
    plot.unlink()
    reported = gamescale_cli("report", str(out))
    assert reported.returncode == 0, reported.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    final = gamescale.load_run(out).metrics.to_pylist()[-1]
    assert final["iteration"] == 2
    assert f"{final['exploitability']:.6g}" in reported.stdout


def test_static_ue_on_a_user_tntp_file_writes_the_equilibrium_link_flows(tmp_path):
    """Braess's network as a user's own TNTP pair (6 trips, links 10x, 50 + x, 50 + x, 10 + x,
    10x): at user equilibrium every route takes 92 and the link flows are 4, 2, 2, 2, 4."""
    net = tmp_path / "MyTown_net.tntp"
    shutil.copy(TNTP / "Braess_net.tntp", net)
    shutil.copy(TNTP / "Braess_trips.tntp", tmp_path / "MyTown_trips.tntp")  # found beside the net file
    out = tmp_path / "ue"
    result = gamescale_cli(
        "run", "routing-static-ue", "--set", f"env.net={net}", "--set", "algorithm.target_gap=1e-9",
        "--out", str(out), "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    flows = pq.read_table(out / "link_flows.parquet")
    links = list(zip(flows["init_node"].to_pylist(), flows["term_node"].to_pylist(), strict=True))
    assert links == [(1, 3), (1, 4), (3, 2), (3, 4), (4, 2)]
    np.testing.assert_allclose(flows["flow"].to_numpy(), [4, 2, 2, 2, 4], atol=1e-3)
    od = pq.read_table(out / "od_costs.parquet")
    np.testing.assert_allclose(od["cost"].to_numpy(), 92, rtol=1e-5)


def test_an_address_nobody_listens_on_is_one_line_and_leaves_no_run_directory(ports, tmp_path):
    closed = f"127.0.0.1:{ports(1)[0]}"  # a free port: nothing accepts connections there
    result = gamescale_cli("run", "mfg-crowd-sampled-fp", "--address", closed, "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"gamescale: error: cannot reach Ray cluster at {closed}: ")
    assert not (tmp_path / "run").exists()
