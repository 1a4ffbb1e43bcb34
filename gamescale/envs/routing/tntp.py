"""Reader for TNTP `_net` / `_trips` / `_node` files (Transportation Networks for Research format).

Every malformed row raises a one-line ValueError naming the file and line number.
Link rows: init_node term_node capacity length free_flow_time b power [speed toll type] ;
(7 to 10 fields, tabs or spaces, the trailing `;` required). Trips: `Origin i` blocks
followed by `j : flow;` entries (several per line allowed). Node file: a header line, then
`node x y [;]` rows.

Variants accepted, as found in the TNTP collection: node ids that are not 1..N (any
positive integers, at most <NUMBER OF NODES> distinct ones; internal indices follow the
sorted ids); power 0 or b 0 (a constant cost); capacity 1 with b already divided by
capacity^power; zones below <FIRST THRU NODE> that may not be driven through; metadata
lines with tabs, `~` comments anywhere; optional speed / toll / link type.
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
            text = line.split("~", 1)[0].strip()
            if text:
                raise ValueError(f"{path}:{i + 1}: expected a <KEY> value metadata line, got {text[:40]!r}")
            continue
        key = " ".join(m.group(1).split()).upper()
        if key == "END OF METADATA":
            body = [(j + 1, lines[j]) for j in range(i + 1, len(lines))]
            return meta, body
        meta[key] = m.group(2).split("~", 1)[0].strip()
    raise ValueError(f"{path}: no <END OF METADATA> line (truncated file?)")


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
    """Link arrays of a `_net` file; `init`, `term` are TNTP node ids, `line` `[L]` the
    1-based line of each link row; speed, toll, link_type 0 where absent."""
    meta, body = _read_metadata(path)
    num_nodes = _meta_int(meta, "NUMBER OF NODES", path)
    num_links = _meta_int(meta, "NUMBER OF LINKS", path)
    first_thru = _meta_int(meta, "FIRST THRU NODE", path, default=1)
    rows: list[list[float]] = []
    lines: list[int] = []
    for lineno, line in body:
        text = line.split("~", 1)[0].strip()
        if not text:
            continue
        where = f"{path}:{lineno}"
        if not text.endswith(";"):
            raise ValueError(f"{where}: link row does not end with ';' (truncated file?)")
        fields = text[:-1].split()
        if not 7 <= len(fields) <= 10:
            raise ValueError(f"{where}: link row has {len(fields)} fields, expected 7 to 10")
        try:
            values = [float(f) for f in fields] + [0.0] * (10 - len(fields))
        except ValueError:
            raise ValueError(f"{where}: link row has a non-numeric field: {text[:60]!r}") from None
        init, term, cap, length, fft, b, power = values[:7]
        for node, raw in ((init, fields[0]), (term, fields[1])):
            if node != int(node) or node < 1:
                raise ValueError(f"{where}: link refers to unknown node {raw} (node ids are positive integers)")
        if not all(np.isfinite(values)):
            raise ValueError(f"{where}: link row has a non-finite value: {text[:60]!r}")
        if cap <= 0:
            raise ValueError(f"{where}: capacity must be positive, got {cap:g}")
        if fft < 0 or b < 0 or power < 0 or length < 0:
            raise ValueError(f"{where}: length, free-flow time, b and power must be >= 0")
        rows.append(values)
        lines.append(lineno)
    if len(rows) != num_links:
        raise ValueError(f"{path}: metadata says {num_links} links, file has {len(rows)} link rows (truncated file?)")
    a = np.array(rows, dtype=np.float64).reshape(-1, 10)
    init, term = a[:, 0].astype(np.int64), a[:, 1].astype(np.int64)
    ids = np.unique(np.concatenate([init, term]))
    if len(ids) > num_nodes:  # more distinct ids than declared: name the first row outside 1..N
        outside = (init > num_nodes) | (term > num_nodes)
        k = int(np.argmax(outside)) if outside.any() else len(rows) - 1
        bad = int(init[k]) if init[k] > num_nodes else int(term[k])
        raise ValueError(
            f"{path}:{lines[k]}: link refers to unknown node {bad} (the file declares {num_nodes} nodes, "
            f"numbered 1..{num_nodes}, and the links name {len(ids)})"
        )
    return {
        "num_nodes": num_nodes,
        "first_thru_node": first_thru,
        "init": init,
        "term": term,
        "capacity": a[:, 2],
        "length": a[:, 3],
        "free_flow_time": a[:, 4],
        "b": a[:, 5],
        "power": a[:, 6],
        "speed": a[:, 7],
        "toll": a[:, 8],
        "link_type": a[:, 9],
        "line": np.asarray(lines, np.int32),
    }


def read_nodes(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(node ids `[N]`, coordinates `[N, 2]`) of a `_node` file (header line, then
    `node x y [;]` rows)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise ValueError(f"{path}: cannot read ({err.strerror})") from None
    ids, xy = [], []
    for lineno, line in enumerate(lines, start=1):
        text = line.split("~", 1)[0].replace(";", " ").strip()
        if not text or (not ids and not text[0].isdigit() and text[0] not in "+-."):
            continue  # blank, or the header
        fields = text.split()
        try:
            node, x, y = int(fields[0]), float(fields[1]), float(fields[2])
        except (ValueError, IndexError):
            raise ValueError(f"{path}:{lineno}: expected 'node x y', got {text[:40]!r}") from None
        ids.append(node)
        xy.append((x, y))
    return np.asarray(ids, np.int64), np.asarray(xy, np.float64).reshape(-1, 2)


def read_trips(path: Path, known: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(origin, destination, flow, line) of every positive off-diagonal entry, as TNTP node
    ids; every id must be in `known` (sorted node ids of the network)."""
    _, body = _read_metadata(path)
    known_set = set(known.tolist())
    shown = f"1..{len(known)}" if known[0] == 1 and known[-1] == len(known) else f"{len(known)} node ids"
    origin = None
    origins: list[int] = []
    dests: list[int] = []
    flows: list[float] = []
    where_line: list[int] = []
    for lineno, line in body:
        text = line.split("~", 1)[0].strip()
        where = f"{path}:{lineno}"
        if not text:
            continue
        if text.lower().startswith("origin"):
            parts = text.split()
            if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) not in known_set:
                raise ValueError(f"{where}: bad origin line {text[:40]!r} (nodes are {shown})")
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
            if dest not in known_set:
                raise ValueError(f"{where}: demand to unknown node {dest}")
            if flow < 0 or not np.isfinite(flow):
                raise ValueError(f"{where}: demand must be >= 0, got {flow_s}")
            if flow > 0 and dest != origin:
                origins.append(origin)
                dests.append(dest)
                flows.append(flow)
                where_line.append(lineno)
    return (
        np.asarray(origins, np.int64),
        np.asarray(dests, np.int64),
        np.asarray(flows, np.float64),
        np.asarray(where_line, np.int32),
    )


def load_tntp(
    net_path: str | Path,
    trips_path: str | Path,
    name: str | None = None,
    node_path: str | Path | None = None,
    toll_weight: float = 0.0,
    distance_weight: float = 0.0,
) -> Network:
    """A `Network` (with its static demand, departure time 0) from a TNTP pair of files.

    Node coordinates come from `node_path`, or the `_node.tntp` file beside the net file
    if there is one. With `toll_weight` or `distance_weight`, the cost of a link is the
    generalised cost t(x) + toll_weight * toll + distance_weight * length (in the file's
    time unit): the constant part is added to its free-flow time.
    """
    net_path, trips_path = Path(net_path), Path(trips_path)
    links = read_net(net_path)
    num_nodes = int(links["num_nodes"])
    init, term = links["init"], links["term"]
    if node_path is None:
        guess = net_path.with_name(net_path.name.replace("_net", "_node"))
        node_path = guess if guess != net_path and guess.exists() else None
    coords_ids, coords = (None, None) if node_path is None else read_nodes(Path(node_path))
    if max(init.max(initial=0), term.max(initial=0)) <= num_nodes:
        ids = np.arange(1, num_nodes + 1)  # the classic numbering: every node 1..N, used or not
    else:
        ids = np.unique(np.concatenate([init, term, coords_ids if coords_ids is not None else []]).astype(np.int64))
    o, d, flow, line = read_trips(trips_path, ids)
    index = lambda a: np.searchsorted(ids, a)  # noqa: E731 - TNTP id -> internal index
    coordinates = None
    if coords_ids is not None:
        coordinates = np.full((len(ids), 2), np.nan)
        inside = np.isin(coords_ids, ids)
        coordinates[index(coords_ids[inside])] = coords[inside]
    demand = Demand(
        origin=index(o),
        destination=index(d),
        flow=flow,
        departure_time=np.zeros(len(flow)),
        source=str(trips_path),
        source_line=line,
    )
    fft = links["free_flow_time"]
    fixed = toll_weight * links["toll"] + distance_weight * links["length"]
    return Network(
        name=name or net_path.name.replace("_net.tntp", ""),
        node_ids=ids,
        init_node=index(init),
        term_node=index(term),
        capacity=links["capacity"],
        length=links["length"],
        free_flow_time=fft + fixed,
        congestion_time=fft * links["b"],
        power=links["power"],
        demand=demand,
        first_thru_node=int(np.searchsorted(ids, int(links["first_thru_node"]))),
        time_step=1.0,
        horizon=100,
        coordinates=coordinates,
    )
