"""Ray starts only when an actor is needed: an exact solver runs in-process and starts no
Ray processes; a run with rollout workers still starts (or joins) Ray, a lean one: no
autoscaler monitor and no log monitor on an embedded local node."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, os, sys
from pathlib import Path
import gamescale

def descendants(pid):
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        try:  # the command line names Python daemons (monitor.py), whose comm is "python"
            name += " " + (stat.parent / "cmdline").read_bytes().replace(b"\\0", b" ").decode(errors="replace")
        except OSError:
            pass
        parents[int(stat.parent.name)] = (ppid, name)
    found, frontier = [], {pid}
    while frontier:
        kids = {p for p, (pp, _) in parents.items() if pp in frontier}
        found += [parents[p][1] for p in kids]
        frontier = kids
    return found

run = gamescale.run(sys.argv[1], overrides={"run.iterations": 2}, out=sys.argv[2])
ray = sys.modules.get("ray")
children = descendants(os.getpid())
print(json.dumps({
    "finished": run.finished,
    "ray_imported": ray is not None,
    "ray_initialized": bool(ray is not None and ray.is_initialized()),
    "ray_processes": [n for n in children if "raylet" in n or "gcs_server" in n],
    "children": children,
}))
"""


def _run(name: str, out) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, name, str(out)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_exact_solver_run_starts_no_ray(tmp_path):
    seen = _run("mfg-crowd-fp", tmp_path / "exact")
    assert seen["finished"]
    assert not seen["ray_imported"] and not seen["ray_initialized"]
    assert seen["ray_processes"] == []


def test_run_with_rollout_workers_starts_ray(tmp_path):
    seen = _run("mfg-crowd-sampled-fp", tmp_path / "sampled")
    assert seen["finished"] and seen["ray_initialized"]
    assert seen["ray_processes"], "a sampling run must start a local Ray node"
    # The embedded node is lean: nothing to autoscale, and worker logs are not forwarded.
    daemons = [n for n in seen["children"] if "monitor.py" in n]
    assert daemons == [], daemons
    assert any("dashboard" in n for n in seen["children"]), "the command lines were not read"
