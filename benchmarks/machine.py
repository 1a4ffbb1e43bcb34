"""The machine a benchmark ran on, recorded beside its numbers in `benchmarks/results/*.json`:
CPU model and cores, memory, OS, Python and library versions, GPU, load, date, git commit
and the command line, so every number in the README can be traced to how it was measured."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LIBRARIES = ("numpy", "torch", "ray", "pyarrow", "open-spiel", "mfglib", "aequilibrae")


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else what `platform` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def gpus() -> list[str]:
    """GPU names as torch sees them (empty without torch or without CUDA)."""
    if "torch" not in sys.modules:  # do not pay for importing torch just to say "none"
        try:
            import torch  # noqa: F401
        except ImportError:
            return []
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def git_commit() -> str | None:
    """HEAD of the checkout, with `+dirty` when tracked files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def describe_machine() -> dict[str, Any]:
    """One JSON-ready description of this machine and run."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "memory_gib": memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": versions(),
        "gpus": gpus(),
        "load_avg_at_end": [round(v, 2) for v in os.getloadavg()],
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "command": command_line(),
    }


def command_line() -> str:
    """This benchmark's command line, as run from the repository root."""
    return " ".join(["python", os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])


def write_results(name: str, data: dict[str, Any]) -> Path:
    """`benchmarks/results/<name>.json`: this machine's description, then `data`."""
    import json

    path = REPO / "benchmarks" / "results" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": describe_machine(), **data}, indent=1, default=float) + "\n")
    return path


if __name__ == "__main__":
    import json

    print(json.dumps(describe_machine(), indent=2))
