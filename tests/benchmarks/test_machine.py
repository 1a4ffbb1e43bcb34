"""`benchmarks/machine.py`: the description every results JSON carries."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "machine.py"
_SPEC = importlib.util.spec_from_file_location("benchmarks_machine", _PATH)
machine = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(machine)


def test_description_names_the_machine_the_versions_and_the_commit():
    described = json.loads(json.dumps(machine.describe_machine()))  # JSON-ready as it is
    assert described["cpus"] == os.cpu_count() and described["cpus_usable"] >= 1
    assert described["cpu_model"] and described["os"] and described["memory_gib"] > 0
    assert set(described["libraries"]) >= {"numpy", "torch", "ray"}
    assert described["libraries"]["numpy"] == __import__("numpy").__version__
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_PATH.parents[1], capture_output=True, text=True)
    if head.returncode == 0:  # a source checkout
        assert described["git_commit"].split("+")[0] == head.stdout.strip()
    assert isinstance(described["gpus"], list) and described["date_utc"].endswith("+00:00")
