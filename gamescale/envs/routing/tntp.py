"""Reader for TNTP `_net` / `_trips` files (Transportation Networks for Research format).

Every malformed row raises a one-line ValueError naming the file and line number.
Link rows: init_node term_node capacity length free_flow_time b power [speed toll type] ;
Trips: `Origin i` blocks followed by `j : flow;` entries (several per line allowed).
Node numbers are 1..<NUMBER OF NODES>; internal indices are node number - 1.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from gamescale.envs.routing.network import Demand, Network

_META = re.compile(r"^\s*<([^>]+)>\s*(.*?)\s*$")
_ENTRY = re.compile(r"\s*([^\s:;]+)\s*:\s*([^\s:;]+)\s*;")


def _read_metadata(path: Path) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """Split a TNTP file into its metadata and its numbered body lines (1-based)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise ValueError(f"{path}: cannot read ({err.strerror})") from None
    meta: dict[str, str] = {}
    for i, line in enumerate(lines):
        m = _META.match(line)
        if m is None:
            if line.strip():
                raise ValueError(f"{path}:{i + 1}: expected a <KEY> value metadata line, got {line.strip()[:40]!r}")
            continue
        key = m.group(1).strip().upper()
        if key == "END OF METADATA":
            body = [(j + 1, lines[j]) for j in range(i + 1, len(lines))]
            return meta, body
        meta[key] = m.group(2)
    raise ValueError(f"{path}: no <END OF METADATA> line")


def _meta_int(meta: dict[str, str], key: str, path: Path, default: int | None = None) -> int:
    if key not in meta:
        if default is None:
            raise ValueError(f"{path}: metadata <{key}> is missing")
        return default
    try:
        return int(float(meta[key]))
    except ValueError:
        raise ValueError(f"{path}: metadata <{key}> is not a number: {meta[key]!r}") from None


def read_net(path: Path) -> dict[str, np.ndarray | int]:
    """Link arrays of a `_net` file, nodes as 1-based TNTP numbers."""
    meta, body = _read_metadata(path)
    num_nodes = _meta_int(meta, "NUMBER OF NODES", path)
    num_links = _meta_int(meta, "NUMBER OF LINKS", path)
    first_thru = _meta_int(meta, "FIRST THRU NODE", path, default=1)
    rows: list[list[float]] = []
    for lineno, line in body:
        text = line.split("~", 1)[0].strip()
        if not text:
            continue
        where = f"{path}:{lineno}"
        if not text.endswith(";"):
            raise ValueError(f"{where}: link row does not end with ';'")
        fields = text[:-1].split()
        if len(fields) < 7:
            raise ValueError(f"{where}: link row has {len(fields)} fields, expected at least 7")
        try:
            values = [float(f) for f in fields[:7]]
        except ValueError:
            raise ValueError(f"{where}: link row has a non-numeric field: {text[:60]!r}") from None
        init, term, cap, length, fft, b, power = values
        for node, raw in ((init, fields[0]), (term, fields[1])):
            if node != int(node) or not 1 <= node <= num_nodes:
                raise ValueError(f"{where}: link refers to unknown node {raw} (nodes are 1..{num_nodes})")
        if cap <= 0:
            raise ValueError(f"{where}: capacity must be positive, got {cap:g}")
        if fft < 0 or b < 0 or power < 0 or length < 0:
            raise ValueError(f"{where}: length, free-flow time, b and power must be >= 0")
        rows.append(values)
    if len(rows) != num_links:
        raise ValueError(f"{path}: metadata says {num_links} links, file has {len(rows)} link rows")
    a = np.array(rows, dtype=np.float64).reshape(-1, 7)
    return {
        "num_nodes": num_nodes,
        "first_thru_node": first_thru,
        "init": a[:, 0].astype(np.int64),
        "term": a[:, 1].astype(np.int64),
        "capacity": a[:, 2],
        "length": a[:, 3],
        "free_flow_time": a[:, 4],
        "b": a[:, 5],
        "power": a[:, 6],
    }


def read_trips(path: Path, num_nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(origin, destination, flow, line) of every positive off-diagonal entry, 1-based nodes."""
    _, body = _read_metadata(path)
    origin = None
    out: list[tuple[int, int, float, int]] = []
    for lineno, line in body:
        text = line.split("~", 1)[0].strip()
        where = f"{path}:{lineno}"
        if not text:
            continue
        if text.lower().startswith("origin"):
            parts = text.split()
            if len(parts) != 2 or not parts[1].isdigit() or not 1 <= int(parts[1]) <= num_nodes:
                raise ValueError(f"{where}: bad origin line {text[:40]!r} (nodes are 1..{num_nodes})")
            origin = int(parts[1])
            continue
        if origin is None:
            raise ValueError(f"{where}: demand entry before any 'Origin' line")
        entries = _ENTRY.findall(text)
        if not entries or _ENTRY.sub("", text).strip():
            raise ValueError(f"{where}: malformed demand row {text[:60]!r} (expected 'dest : flow;' entries)")
        for dest_s, flow_s in entries:
            try:
                dest, flow = int(dest_s), float(flow_s)
            except ValueError:
                raise ValueError(f"{where}: malformed demand entry {dest_s!r} : {flow_s!r}") from None
            if not 1 <= dest <= num_nodes:
                raise ValueError(f"{where}: demand to unknown node {dest}")
            if flow < 0 or not np.isfinite(flow):
                raise ValueError(f"{where}: demand must be >= 0, got {flow_s}")
            if flow > 0 and dest != origin:
                out.append((origin, dest, flow, lineno))
    a = np.array(out, dtype=np.float64).reshape(-1, 4)
    return a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2], a[:, 3].astype(np.int32)


def load_tntp(net_path: str | Path, trips_path: str | Path, name: str | None = None) -> Network:
    """A `Network` (with its static demand, departure time 0) from a TNTP pair of files."""
    net_path, trips_path = Path(net_path), Path(trips_path)
    links = read_net(net_path)
    n = int(links["num_nodes"])
    o, d, flow, line = read_trips(trips_path, n)
    demand = Demand(
        origin=o - 1,
        destination=d - 1,
        flow=flow,
        departure_time=np.zeros(len(flow)),
        source=str(trips_path),
        source_line=line,
    )
    fft = links["free_flow_time"]
    return Network(
        name=name or net_path.name.replace("_net.tntp", ""),
        node_ids=np.arange(1, n + 1),
        init_node=links["init"] - 1,
        term_node=links["term"] - 1,
        capacity=links["capacity"],
        length=links["length"],
        free_flow_time=fft,
        congestion_time=fft * links["b"],
        power=links["power"],
        demand=demand,
        first_thru_node=int(links["first_thru_node"]) - 1,
        time_step=1.0,
        horizon=100,
    )
