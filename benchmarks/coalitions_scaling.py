"""The `coop-scaling` table: full LP vs iterative coalition sampling, 10 to 200 players, for
each family, one `gamescale run coop-scaling` per family (one after another, so the families
do not share the cores), with one BLAS thread per process.

    python benchmarks/coalitions_scaling.py [--families weighted_voting,induced_subgraph,mc_net]
        [--sizes 10,15,20,25,50,100,200] [--cutting 120] [--lp 30]

Prints a table per family (best known value and how it is known, the proven bracket, the
iterative run's time to within 1% of the bracket's lower end or its value after its budget) and
writes benchmarks/results/coalitions_scaling.json. docs/coalitions.md explains the columns.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

FAMILIES = ("weighted_voting", "induced_subgraph", "mc_net")
SIZES = (10, 15, 20, 25, 50, 100, 200)


def run_family(family: str, sizes: list[int], cutting: float, lp: float) -> dict:
    """One coop-scaling run; returns its command, wall seconds and scaling table."""
    gamescale = str(Path(sys.executable).with_name("gamescale"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        settings = [
            f"algorithm.family={family}",
            f"algorithm.sizes=[{','.join(map(str, sizes))}]",
            f"run.iterations={len(sizes)}",
            f"algorithm.cutting_time_limit={cutting:g}",
            f"algorithm.lp_time_limit={lp:g}",
        ]
        command = [gamescale, "run", "coop-scaling", "--no-progress", "--out", str(out)]
        for setting in settings:
            command += ["--set", setting]
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        start = time.perf_counter()
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        summary = json.loads((out / "summary.json").read_text())
    shown = " ".join(f"--set {s}" for s in settings)
    return {
        "family": family,
        "command": f"OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 gamescale run coop-scaling {shown}",
        "wall_seconds": seconds,
        "scaling": summary["scaling"],
    }


def _cell(value, digits: int = 4) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}g}"


def print_table(run: dict) -> None:
    s = run["scaling"]
    print(f"\n{run['family']} ({run['wall_seconds']:.0f} s)")
    print(f"{'n':>4} {'best known':>11} {'kind':>24} {'bracket':>22} {'iterative':>10} {'seconds':>8} {'reached':>7}")
    for i, n in enumerate(s["num_players"]):
        bracket = f"[{_cell(s['bracket_lower'][i])}, {_cell(s['bracket_upper'][i])}]"
        print(
            f"{int(n):>4} {_cell(s['best_known'][i]):>11} {s['best_known_kind'][i]:>24} {bracket:>22} "
            f"{_cell(s['epsilon'][i]):>10} {_cell(s['iterative_seconds'][i], 3):>8} {bool(s['reached'][i]):>7}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument(
        "--cutting", type=float, default=120.0, help="seconds of cutting planes (and of the reference bundle run)"
    )
    parser.add_argument("--lp", type=float, default=30.0, help="seconds for the full LP")
    parser.add_argument("--merge", action="store_true", help="keep the results file's runs of other families")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    runs = []
    started = time.strftime("%H:%M", time.gmtime())
    for family in args.families.split(","):
        runs.append(run_family(family, sizes, args.cutting, args.lp))
        print_table(runs[-1])
    from machine import write_results  # benchmarks/machine.py

    note = f"{', '.join(r['family'] for r in runs)} one after another, {started}-{time.strftime('%H:%M', time.gmtime())} UTC"
    notes = [note]
    path = HERE / "results" / "coalitions_scaling.json"
    if args.merge and path.is_file():  # earlier runs of the other families stay, with their notes
        earlier = json.loads(path.read_text())
        done = {r["family"] for r in runs}
        runs = [r for r in earlier["runs"] if r["family"] not in done] + runs
        notes = [*earlier.get("notes", [earlier.get("note", "")]), note]
    runs.sort(key=lambda r: FAMILIES.index(r["family"]) if r["family"] in FAMILIES else len(FAMILIES))
    print(f"wrote {write_results('coalitions_scaling', {'runs': runs, 'notes': notes})}")


if __name__ == "__main__":
    main()
