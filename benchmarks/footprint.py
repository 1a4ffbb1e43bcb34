"""Peak memory of a run summed over its whole process tree (driver, Ray's own processes,
rollout workers, learners): PSS from /proc/PID/smaps_rollup (shared pages split between
the processes that map them, so the sum is the memory the run really holds) and RSS
(each process's resident pages counted in full, so shared libraries count many times).

Linux only. A local `gamescale run` starts Ray's GCS, raylet and agents as children of
the driver and the workers as children of the raylet, so the descendants of the command
are the run's processes; a process that daemonises out of the tree is not counted (Ray
2.60's local processes do not).

    python benchmarks/footprint.py [--interval 0.2] -- gamescale run mfg-deep-momd --no-progress

prints the peak summed PSS and RSS, the number of processes at the PSS peak, the
per-process breakdown at that moment, CPU seconds per process and how many processes
loaded torch.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

MIB = 1024.0 * 1024.0


def children_map() -> dict[int, list[int]]:
    """parent pid -> child pids, from /proc/PID/stat of every live process."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])  # the name may hold spaces and ')'
        children.setdefault(parent, []).append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    """`root` and all its live descendants."""
    children = children_map()
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, []))
    return tree


def memory_kib(pid: int) -> tuple[int, int] | None:
    """(PSS, RSS) of one process in KiB, or None when it is gone or unreadable."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("Pss", "Rss"):
            values[key] = int(rest.split()[0])
    if "Pss" not in values:
        return None  # a kernel thread or a zombie
    return values["Pss"], values["Rss"]


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds the process has used so far (None when gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)


def maps_torch(pid: int) -> bool:
    """Whether the process has torch's CPU library mapped (imported torch)."""
    try:
        return "libtorch_cpu" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def process_name(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [w.decode(errors="replace") for w in argv if w]
    if not words:
        return "?"
    # Ray's workers name themselves "ray::ClassName.method" in argv[0]; daemons show a path.
    head = Path(words[0]).name
    if head.startswith("python") and len(words) > 1:
        head = " ".join(Path(w).name for w in words[1:3])
    return head[:60]


@dataclass
class Footprint:
    """Peak summed memory of a process tree over its life."""

    peak_pss_mib: float = 0.0
    peak_rss_mib: float = 0.0
    processes_at_peak: int = 0
    max_processes: int = 0
    breakdown_at_peak: list[dict] = field(default_factory=list)  # per process at the PSS peak
    samples: int = 0
    cpu_s: dict[int, tuple[str, float]] = field(default_factory=dict)  # pid -> (name, CPU seconds so far)
    torch_pids: set[int] = field(default_factory=set)  # processes seen with torch loaded

    def add_cpu(self, pid: int, name: str) -> None:
        seconds = cpu_seconds(pid)
        if seconds is not None:
            self.cpu_s[pid] = (name, seconds)

    def cpu_by_name(self) -> dict[str, float]:
        """CPU seconds per process name (as last sampled; a process's last fraction of a
        second before it exits is missed)."""
        out: dict[str, float] = {}
        for name, seconds in self.cpu_s.values():
            key = name.split(".")[0]  # ray::LearnerActor.update -> ray::LearnerActor
            out[key] = round(out.get(key, 0.0) + seconds, 2)
        return dict(sorted(out.items(), key=lambda item: -item[1]))

    def add(self, rows: list[tuple[int, str, int, int]]) -> None:
        """One sample: `(pid, name, pss KiB, rss KiB)` per process of the tree."""
        pss = sum(r[2] for r in rows) / 1024.0
        rss = sum(r[3] for r in rows) / 1024.0
        self.samples += 1
        self.max_processes = max(self.max_processes, len(rows))
        self.peak_rss_mib = max(self.peak_rss_mib, rss)
        if pss > self.peak_pss_mib:
            self.peak_pss_mib = pss
            self.processes_at_peak = len(rows)
            self.breakdown_at_peak = [
                {"pid": pid, "name": name, "pss_mib": round(p / 1024.0, 1), "rss_mib": round(r / 1024.0, 1)}
                for pid, name, p, r in sorted(rows, key=lambda row: -row[2])
            ]

    def as_dict(self) -> dict:
        return {
            "peak_pss_mib": round(self.peak_pss_mib, 1),
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "processes_at_peak": self.processes_at_peak,
            "max_processes": self.max_processes,
            "samples": self.samples,
            "breakdown_at_peak": self.breakdown_at_peak,
            "torch_processes": len(self.torch_pids),
            "cpu_s_total": round(sum(seconds for _, seconds in self.cpu_s.values()), 2),
            "cpu_s_by_process": self.cpu_by_name(),
        }


def sample_tree(root: int, names: dict[int, str], memory: bool = True) -> list[tuple[int, str, int, int]]:
    """`(pid, name, PSS KiB, RSS KiB)` of every live process of the tree (0, 0 without `memory`)."""
    rows = []
    for pid in process_tree(root):
        sizes = memory_kib(pid) if memory else (0, 0)  # the tree was just read: its pids are live
        if sizes is None:
            continue
        if pid not in names:
            names[pid] = process_name(pid)
        rows.append((pid, names[pid], *sizes))
    return rows


def measure_command(
    command: list[str], interval_s: float = 0.2, timeout_s: float | None = None, memory: bool = True
) -> dict:
    """Run `command` and sample its process tree every `interval_s` until it exits.

    Returns the footprint, the exit status and the wall time. The names of Ray's workers
    change once they host an actor, so a name is read again while it is still generic
    (the name at the peak may still be `ray::IDLE` for a worker between two calls).

    `memory=False` samples CPU seconds only (the memory fields stay 0): reading a process's
    smaps_rollup walks its page tables, about 3.5 ms per Ray process here, so sampling the
    memory of a 2-worker run every 0.2 s took 15% of a core from the run it measured (a
    timing run on a 2-core machine should not pay that).
    """
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    footprint = Footprint()
    names: dict[int, str] = {}
    try:
        while process.poll() is None:
            for pid, name in list(names.items()):
                if "default_worker" in name or name.startswith("ray::IDLE") or name == "?":
                    del names[pid]  # re-read: the worker may host an actor now
            rows = sample_tree(process.pid, names, memory)
            footprint.add(rows)
            for pid, name, _, _ in rows:
                footprint.add_cpu(pid, name)
                if memory and pid not in footprint.torch_pids and maps_torch(pid):
                    footprint.torch_pids.add(pid)
            if timeout_s is not None and time.perf_counter() - start > timeout_s:
                process.kill()
                break
            time.sleep(interval_s)
    finally:
        stderr = process.communicate()[1].decode(errors="replace")
    return {
        **footprint.as_dict(),
        "returncode": process.returncode,
        "wall_s": round(time.perf_counter() - start, 2),
        "stderr_tail": stderr[-400:] if process.returncode else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between samples")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run (after --)")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("footprint: error: give a command after --", file=sys.stderr)
        sys.exit(2)
    result = measure_command(command, args.interval)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"peak PSS {result['peak_pss_mib']:.0f} MiB ({result['processes_at_peak']} processes), "
        f"peak RSS {result['peak_rss_mib']:.0f} MiB, {result['wall_s']:.1f} s, exit {result['returncode']}"
    )
    for row in result["breakdown_at_peak"]:
        print(f"  {row['pss_mib']:8.1f} {row['rss_mib']:8.1f}  {row['name']}")
    cpu = ", ".join(f"{name} {seconds:.1f}" for name, seconds in result["cpu_s_by_process"].items())
    print(f"CPU seconds {result['cpu_s_total']:.1f}: {cpu}; processes with torch: {result['torch_processes']}")
    if result["returncode"]:
        print(result["stderr_tail"], file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
